/*
 * proto: the bytes that travel between Cairn's processes.
 *
 * Every message on a node's port is a frame: a fixed 24-byte header followed
 * by a payload (usually a protobuf-c message from wire.proto or command.proto).
 *
 *   offset size field
 *        0    4 magic       "CRNF"
 *        4    1 version     PROTO_FRAME_VERSION
 *        5    1 flags       PROTO_FLAG_*
 *        6    2 type        what the payload is (enum proto_msg_type)
 *        8    8 request_id  pairs a reply with its request
 *       16    4 length      payload bytes, at most the reader's limit
 *       20    4 crc32c      over bytes 0..19 and the payload
 *
 * All integers are little-endian. A reader checks the magic, version and
 * length before it allocates anything for the payload, and the checksum
 * before it hands the payload on.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "cn.h"

#define PROTO_FRAME_MAGIC       0x464e5243u /* "CRNF" read as little-endian */
#define PROTO_FRAME_VERSION     1
#define PROTO_FRAME_HEADER_SIZE 24
#define PROTO_FRAME_PAYLOAD_MAX (16u << 20) /* hard ceiling; readers may set lower */

/* Flags. */
#define PROTO_FLAG_REPLY  0x01 /* A reply to request_id. */
#define PROTO_FLAG_ERROR  0x02 /* The payload is a Cairn__ErrorReply. */
#define PROTO_FLAG_STREAM 0x04 /* More frames of the same request follow. */
#define PROTO_FLAGS_KNOWN 0x07

struct proto_frame_header {
    uint8_t version;
    uint8_t flags;
    uint16_t type;
    uint64_t request_id;
    uint32_t length;
    uint32_t crc;
};

/* Writes the 24-byte header for payload into out, with its checksum. */
void proto_frame_encode_header(uint8_t out[PROTO_FRAME_HEADER_SIZE],
                               uint16_t type,
                               uint8_t flags,
                               uint64_t request_id,
                               const void *payload,
                               uint32_t length);

/* Reads a header from the first len bytes of data.
 * CAIRN_EAGAIN: fewer than PROTO_FRAME_HEADER_SIZE bytes;
 * CAIRN_EPROTO: bad magic, unknown version or unknown flags;
 * CAIRN_ETOOBIG: length over payload_max (nothing is allocated for it). */
int proto_frame_decode_header(const uint8_t *data,
                              size_t len,
                              uint32_t payload_max,
                              struct proto_frame_header *header);

/* Checks the payload against the header's checksum: 0 or CAIRN_ECORRUPT. */
int proto_frame_check(const uint8_t header_bytes[PROTO_FRAME_HEADER_SIZE],
                      const struct proto_frame_header *header,
                      const void *payload);

/* Appends one frame (header + payload) to out. CAIRN_ENOMEM or CAIRN_ETOOBIG. */
int proto_frame_append(struct cn_buf *out,
                       uint16_t type,
                       uint8_t flags,
                       uint64_t request_id,
                       const void *payload,
                       size_t length);

/* Appends one frame whose payload is the packed protobuf-c message. */
int proto_frame_append_msg(struct cn_buf *out,
                           uint16_t type,
                           uint8_t flags,
                           uint64_t request_id,
                           const ProtobufCMessage *msg);

/*
 * A streaming frame reader: feed it bytes as they arrive, in any pieces, and
 * it calls back once per whole, verified frame. It holds at most one frame's
 * payload (bounded by payload_max) at a time.
 */
typedef int (*proto_reader_cb)(void *data,
                               const struct proto_frame_header *header,
                               const uint8_t *payload);

struct proto_reader {
    uint32_t payload_max;
    uint8_t header_bytes[PROTO_FRAME_HEADER_SIZE];
    size_t header_len; /* bytes of header_bytes filled */
    struct proto_frame_header header;
    uint8_t *payload;   /* allocated once the header is valid */
    size_t payload_len; /* bytes of payload filled */
    int error;          /* sticky: once a stream is bad, it stays bad */
};

void proto_reader_init(struct proto_reader *reader, uint32_t payload_max);
void proto_reader_close(struct proto_reader *reader);
/* Consumes len bytes. Returns 0, the first framing error (CAIRN_EPROTO,
 * CAIRN_ETOOBIG, CAIRN_ECORRUPT, CAIRN_ENOMEM), or the first non-zero value a
 * callback returned; after an error the reader refuses further input. */
int proto_reader_feed(
    struct proto_reader *reader, const void *data, size_t len, proto_reader_cb cb, void *cb_data);

/* Rounds a Raft command buffer up to a multiple of 8 bytes: libraft 0.15
 * cannot reload entries of other lengths (canonical/raft #180, #304). */
static inline size_t proto_command_padded_size(size_t len)
{
    return (len + 7) & ~(size_t)7;
}

#endif /* PROTO_H */
