/*
 * libcairn: the C SDK for Cairn's Drive REST API (docs/api.md).
 *
 * One struct cairn_client holds an endpoint ("http://host:port"), a bearer
 * token and one libcurl handle, so calls on it reuse the connection. A client
 * is not thread-safe: use one per thread.
 *
 * Every call returns 0 or a negative CAIRN_E* code (cairn_err.h). The server's
 * own words for a failure ("base version 3 is stale (current 4)"), or the
 * transport's ("Couldn't connect to server"), are kept in
 * cairn_client_errmsg() until the next call. HTTP statuses map to codes as in
 * docs/api.md: 401 CAIRN_EAUTH, 403 CAIRN_EPERM, 404 CAIRN_ENOENT, 409/412
 * CAIRN_ECONFLICT (CAIRN_EEXIST when the server says so), 410 CAIRN_EEXPIRED,
 * 413 CAIRN_ETOOBIG, 416 CAIRN_ERANGE, 429 CAIRN_EBUSY, 503 CAIRN_EUNAVAIL,
 * 504 CAIRN_ETIMEOUT, 507 CAIRN_EQUOTA; no answer at all is CAIRN_EUNAVAIL.
 *
 * Paths are paths in the caller's drive, "/" separated, with or without a
 * leading "/" ("Photos/2026/a b.jpg"); the SDK percent-encodes each segment.
 * cairn_client_set_root() makes them relative to an item shared with the
 * caller (the `root` of a struct cairn_shared).
 *
 * Memory: the structs passed to callbacks are borrowed until the callback
 * returns; everything else is caller-owned, except what says otherwise.
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn_err.h"

#define CAIRN_API __attribute__((visibility("default")))

#define CAIRN_NAME_SIZE   256u  /* a name (255 bytes) and its NUL */
#define CAIRN_PATH_SIZE   4097u /* a decoded path (4096 bytes) and its NUL */
#define CAIRN_ID_SIZE     24u   /* a decimal inode id or upload id */
#define CAIRN_ETAG_SIZE   64u   /* a quoted strong ETag */
#define CAIRN_USER_SIZE   128u  /* a user name */
#define CAIRN_URL_SIZE    2048u /* an endpoint or an upload URL */
#define CAIRN_CURSOR_SIZE 128u  /* a change cursor */
#define CAIRN_TOKEN_SIZE  512u  /* a bearer token */

struct cairn_client;

/* An item (docs/api.md, "Addressing"). */
struct cairn_entry {
    char name[CAIRN_NAME_SIZE];
    char path[CAIRN_PATH_SIZE];
    char id[CAIRN_ID_SIZE];
    bool folder;
    bool trashed;
    uint64_t size;
    uint64_t version; /* 0 for a folder or a file without a version */
    uint64_t modified_ms;
    char etag[CAIRN_ETAG_SIZE];
};

struct cairn_version {
    uint64_t version;
    uint64_t size;
    uint64_t time_ms;
    char etag[CAIRN_ETAG_SIZE];
    char author[CAIRN_USER_SIZE];
};

struct cairn_grant {
    char user[CAIRN_USER_SIZE];
    char role[16]; /* "viewer", "editor" */
};

/* An item someone shared with the caller (GET /v1/shared). */
struct cairn_shared {
    char root[CAIRN_PATH_SIZE];
    char name[CAIRN_NAME_SIZE];
    char owner[CAIRN_USER_SIZE];
    char role[16];
    bool folder;
};

/* A change event (GET /v1/changes). Absent fields are "" or 0. */
struct cairn_event {
    char kind[16]; /* created, modified, deleted, moved, shared, unshared, purged */
    char id[CAIRN_ID_SIZE];
    char path[CAIRN_PATH_SIZE];
    char name[CAIRN_NAME_SIZE];
    char user[CAIRN_USER_SIZE];
    uint64_t version;
    uint64_t time_ms;
};

/* Callbacks for listings: return 0 to go on, anything else to stop the
 * listing, which then returns that value. */
typedef int (*cairn_entry_cb)(void *data, const struct cairn_entry *entry);
typedef int (*cairn_version_cb)(void *data, const struct cairn_version *version);
typedef int (*cairn_grant_cb)(void *data, const struct cairn_grant *grant);
typedef int (*cairn_shared_cb)(void *data, const struct cairn_shared *shared);
typedef int (*cairn_event_cb)(void *data, const struct cairn_event *event);
/* Transfer progress: done of total bytes (total 0: unknown). */
typedef void (*cairn_progress_cb)(void *data, uint64_t done, uint64_t total);

/* ---- The client ---- */

/* A client for endpoint ("http://127.0.0.1:8080", no trailing path); token may
 * be NULL (only login works then). CAIRN_EINVAL for an endpoint that is not
 * http:// or https://, CAIRN_ENOMEM. */
CAIRN_API int cairn_client_new(const char *endpoint, const char *token, struct cairn_client **out);
CAIRN_API void cairn_client_free(struct cairn_client *client);
/* The last failure's message (the server's JSON "message" when it sent one); "" after success. */
CAIRN_API const char *cairn_client_errmsg(const struct cairn_client *client);
/* The last HTTP status, 0 when no answer came. */
CAIRN_API int cairn_client_status(const struct cairn_client *client);
/* Replaces the token (NULL: none). */
CAIRN_API int cairn_client_set_token(struct cairn_client *client, const char *token);
/* Makes paths relative to a shared item's root (NULL: the caller's drive). */
CAIRN_API int cairn_client_set_root(struct cairn_client *client, const char *root);
/* Gives up on a request that moves no byte for this long (default 60 s; 0: never). */
CAIRN_API void cairn_client_set_stall_timeout(struct cairn_client *client, unsigned seconds);

/* ---- Sign-in and users ---- */

/* POST /v1/auth/login. On success the client uses the new token, which is
 * also copied into token (CAIRN_TOKEN_SIZE). device may be NULL. */
CAIRN_API int cairn_login(struct cairn_client *client,
                          const char *user,
                          const char *password,
                          const char *device,
                          char *token);
/* POST /v1/auth/logout: revokes the client's token. */
CAIRN_API int cairn_logout(struct cairn_client *client);
/* POST /v1/admin/users. quota_bytes 0: the server's default. user_id
 * (CAIRN_ID_SIZE) may be NULL. */
CAIRN_API int cairn_admin_user_add(struct cairn_client *client,
                                   const char *name,
                                   const char *password,
                                   uint64_t quota_bytes,
                                   bool admin,
                                   char *user_id);
/* GET /v1/admin/status: the answer's JSON text, malloc'd, in *json (free()). */
CAIRN_API int cairn_admin_status(struct cairn_client *client, char **json);
/* GET /v1/me: the answer's JSON text, malloc'd, in *json (free()). */
CAIRN_API int cairn_me(struct cairn_client *client, char **json);

/* ---- Files and folders ---- */

CAIRN_API int cairn_stat(struct cairn_client *client, const char *path, struct cairn_entry *entry);
/* Every entry of a folder, in name order, page by page. */
CAIRN_API int cairn_list(struct cairn_client *client,
                         const char *path,
                         cairn_entry_cb cb,
                         void *data);
/* POST /v1/folders/{path}; entry may be NULL. CAIRN_EEXIST when it exists. */
CAIRN_API int cairn_mkdir(struct cairn_client *client, const char *path, struct cairn_entry *entry);
/* POST /v1/move; entry may be NULL. */
CAIRN_API int cairn_move(struct cairn_client *client,
                         const char *from,
                         const char *to,
                         struct cairn_entry *entry);
/* DELETE /v1/files/{path}: to the trash. */
CAIRN_API int cairn_remove(struct cairn_client *client, const char *path);
CAIRN_API int cairn_trash_list(struct cairn_client *client, cairn_entry_cb cb, void *data);
/* POST /v1/trash/{id}/restore; entry may be NULL. */
CAIRN_API int cairn_trash_restore(struct cairn_client *client,
                                  const char *id,
                                  struct cairn_entry *entry);
/* DELETE /v1/trash/{id}, or the whole trash when id is NULL. */
CAIRN_API int cairn_trash_purge(struct cairn_client *client, const char *id);
CAIRN_API int cairn_versions(struct cairn_client *client,
                             const char *path,
                             cairn_version_cb cb,
                             void *data);
/* POST /v1/versions/{path} {"restore":version}; base 0: any; entry may be NULL. */
CAIRN_API int cairn_version_restore(struct cairn_client *client,
                                    const char *path,
                                    uint64_t version,
                                    uint64_t base,
                                    struct cairn_entry *entry);

/* ---- Sharing ---- */

/* role: "viewer" or "editor". */
CAIRN_API int cairn_share(struct cairn_client *client,
                          const char *path,
                          const char *user,
                          const char *role);
CAIRN_API int cairn_unshare(struct cairn_client *client, const char *path, const char *user);
CAIRN_API int cairn_grants(struct cairn_client *client,
                           const char *path,
                           cairn_grant_cb cb,
                           void *data);
CAIRN_API int cairn_shared_list(struct cairn_client *client, cairn_shared_cb cb, void *data);

/* ---- Changes ---- */

/* GET /v1/changes/latest into cursor (CAIRN_CURSOR_SIZE). */
CAIRN_API int cairn_changes_latest(struct cairn_client *client, char *cursor);
/* One long poll: GET /v1/changes?cursor=...&timeout=timeout_s. Calls cb per
 * event, then stores the next cursor in cursor (in place, CAIRN_CURSOR_SIZE)
 * and the server's requested pause before the next poll in *backoff_s (may be
 * NULL). CAIRN_EEXPIRED when the cursor is too old: list again and take
 * cairn_changes_latest(). */
CAIRN_API int cairn_changes(struct cairn_client *client,
                            char *cursor,
                            unsigned timeout_s,
                            cairn_event_cb cb,
                            void *data,
                            unsigned *backoff_s);

/* ---- Transfers ---- */

struct cairn_get_options {
    uint64_t version; /* 0: the current version */
    uint64_t offset;  /* > 0: ask for the bytes from here on (Range) */
    const char *etag; /* with offset: If-Match, so the rest is of the same version */
    cairn_progress_cb progress;
    void *progress_data;
};

struct cairn_get_result {
    int status;       /* 200: the whole content follows; 206: from options->offset */
    uint64_t size;    /* the whole content's size, when the server said it */
    uint64_t written; /* bytes written to fd by this call */
    uint64_t version; /* from Cairn-Version, 0 if absent */
    char etag[CAIRN_ETAG_SIZE];
};

/* GET /v1/files/{path}: streams the content into fd at its current position,
 * never holding more than one network buffer. With options->offset > 0 the
 * file behind fd already holds the bytes before offset and fd is positioned
 * there; if the server answers 200 (the whole content, e.g. it ignored Range),
 * the SDK truncates fd to 0 and writes from the start (result->status says
 * which happened). With an etag that no longer matches: CAIRN_ECONFLICT.
 * CAIRN_EIO when writing to fd fails. */
CAIRN_API int cairn_get_fd(struct cairn_client *client,
                           const char *path,
                           const struct cairn_get_options *options,
                           int fd,
                           struct cairn_get_result *result);

struct cairn_put_options {
    const char *if_match; /* an ETag: refuse (CAIRN_ECONFLICT) unless it is current */
    uint64_t base;        /* or a base version (0: none) */
    cairn_progress_cb progress;
    void *progress_data;
};

/* PUT /v1/files/{path}: streams size bytes from fd (from its current
 * position). entry may be NULL. */
CAIRN_API int cairn_put_fd(struct cairn_client *client,
                           const char *path,
                           int fd,
                           uint64_t size,
                           const struct cairn_put_options *options,
                           struct cairn_entry *entry);

/* tus 1.0 at /v1/uploads. url (CAIRN_URL_SIZE) is the upload's absolute URL. */
CAIRN_API int cairn_upload_create(
    struct cairn_client *client, const char *path, uint64_t size, uint64_t base, char *url);
/* HEAD: the bytes the server holds. CAIRN_ENOENT (or CAIRN_EEXPIRED) when the
 * upload is gone. */
CAIRN_API int cairn_upload_offset(struct cairn_client *client, const char *url, uint64_t *offset);

struct cairn_upload_result {
    uint64_t offset;  /* the server's Upload-Offset after the PATCH */
    uint64_t version; /* Cairn-Version when this PATCH committed the file, else 0 */
    char etag[CAIRN_ETAG_SIZE];
};

/* One PATCH of len bytes read with pread() from fd at offset. */
CAIRN_API int cairn_upload_patch(struct cairn_client *client,
                                 const char *url,
                                 int fd,
                                 uint64_t offset,
                                 uint64_t len,
                                 cairn_progress_cb progress,
                                 void *progress_data,
                                 struct cairn_upload_result *result);
CAIRN_API int cairn_upload_abort(struct cairn_client *client, const char *url);

#endif /* CAIRN_H */
