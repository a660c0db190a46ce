/*
 * Cairn's error codes: one negative int, from one table.
 *
 * Success is 0; every failure is one of the CAIRN_E* values below. The numbers
 * travel in RPC replies and are shown to users by libcairn, so a number is
 * never reused or renumbered: new codes are appended.
 */
#ifndef CAIRN_ERR_H
#define CAIRN_ERR_H

#define CAIRN_ERR_MAP(X)                                                   \
    X(NOMEM, 1, "out of memory")                                           \
    X(IO, 2, "I/O error")                                                  \
    X(CORRUPT, 3, "stored data failed its checksum")                       \
    X(BUSY, 4, "resource exhausted, retry later")                          \
    X(INVAL, 5, "invalid argument")                                        \
    X(NOENT, 6, "no such object")                                          \
    X(EXIST, 7, "object already exists")                                   \
    X(AGAIN, 8, "more input needed")                                       \
    X(TOOBIG, 9, "size over its limit")                                    \
    X(PROTO, 10, "protocol violation")                                     \
    X(CONFLICT, 11, "conflict: the object changed since its base version") \
    X(PERM, 12, "permission denied")                                       \
    X(AUTH, 13, "not authenticated")                                       \
    X(NOTLEADER, 14, "not the leader")                                     \
    X(TIMEOUT, 15, "timed out")                                            \
    X(SHUTDOWN, 16, "shutting down")                                       \
    X(NOSPACE, 17, "no space left on device")                              \
    X(NOTDIR, 18, "not a folder")                                          \
    X(ISDIR, 19, "is a folder")                                            \
    X(NOTEMPTY, 20, "folder not empty")                                    \
    X(QUOTA, 21, "quota exceeded")                                         \
    X(UNAVAIL, 22, "not enough nodes available")                           \
    X(CANCELED, 23, "operation canceled")                                  \
    X(RANGE, 24, "range not satisfiable")                                  \
    X(KEY, 25, "wrong key or forged data")                                 \
    X(EXPIRED, 26, "expired or too old to serve")                          \
    X(UNSUPPORTED, 27, "not supported")                                    \
    X(LOCKED, 28, "resource locked by another process")                    \
    X(INTERNAL, 29, "internal error")

enum cairn_err {
    CAIRN_OK = 0,
#define X(NAME, N, TEXT) CAIRN_E##NAME = -(N),
    CAIRN_ERR_MAP(X)
#undef X
};

/* A sentence for rv ("I/O error"); never NULL, also for unknown codes. */
const char *cairn_strerror(int rv);

/* The code's name ("CAIRN_EIO"); never NULL, also for unknown codes. */
const char *cairn_errname(int rv);

#endif /* CAIRN_ERR_H */
