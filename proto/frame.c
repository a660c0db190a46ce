/*
 * Frames: encode and decode the 24-byte header, and a streaming reader.
 *
 * The reader's happy path is: collect 24 header bytes; validate magic,
 * version, flags and length (before any allocation); allocate exactly
 * length bytes; collect the payload; verify the CRC-32C over header and
 * payload; call back; start over.
 *
 * Possible failure modes, all sticky for the stream (a peer that sent one bad
 * frame is not trusted to be in sync any more):
 * - wrong magic, version or flags: CAIRN_EPROTO;
 * - a length over the limit: CAIRN_ETOOBIG, nothing allocated;
 * - a checksum mismatch (a flipped bit, a truncated frame followed by other
 *   bytes): CAIRN_ECORRUPT;
 * - out of memory for a valid length: CAIRN_ENOMEM.
 * A stream that simply ends mid-frame leaves the reader waiting; the caller's
 * idle timeout closes it.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static uint32_t frame_crc(const uint8_t *header_bytes, const void *payload, uint32_t length)
{
    uint32_t crc = cn_crc32c(0, header_bytes, 20);

    return cn_crc32c(crc, payload, length);
}

void proto_frame_encode_header(uint8_t out[PROTO_FRAME_HEADER_SIZE],
                               uint16_t type,
                               uint8_t flags,
                               uint64_t request_id,
                               const void *payload,
                               uint32_t length)
{
    CN_ASSERT(length <= PROTO_FRAME_PAYLOAD_MAX);
    CN_ASSERT((flags & ~PROTO_FLAGS_KNOWN) == 0);
    cn_put_u32(out, PROTO_FRAME_MAGIC);
    out[4] = PROTO_FRAME_VERSION;
    out[5] = flags;
    cn_put_u16(out + 6, type);
    cn_put_u64(out + 8, request_id);
    cn_put_u32(out + 16, length);
    cn_put_u32(out + 20, frame_crc(out, payload, length));
}

int proto_frame_decode_header(const uint8_t *data,
                              size_t len,
                              uint32_t payload_max,
                              struct proto_frame_header *header)
{
    CN_ASSERT(payload_max <= PROTO_FRAME_PAYLOAD_MAX);
    if (len < PROTO_FRAME_HEADER_SIZE) {
        return CAIRN_EAGAIN;
    }
    if (cn_get_u32(data) != PROTO_FRAME_MAGIC || data[4] != PROTO_FRAME_VERSION) {
        return CAIRN_EPROTO;
    }
    if ((data[5] & ~PROTO_FLAGS_KNOWN) != 0) {
        return CAIRN_EPROTO;
    }
    header->version = data[4];
    header->flags = data[5];
    header->type = cn_get_u16(data + 6);
    header->request_id = cn_get_u64(data + 8);
    header->length = cn_get_u32(data + 16);
    header->crc = cn_get_u32(data + 20);
    if (header->length > payload_max) {
        return CAIRN_ETOOBIG;
    }
    return 0;
}

int proto_frame_check(const uint8_t header_bytes[PROTO_FRAME_HEADER_SIZE],
                      const struct proto_frame_header *header,
                      const void *payload)
{
    if (frame_crc(header_bytes, payload, header->length) != header->crc) {
        return CAIRN_ECORRUPT;
    }
    return 0;
}

int proto_frame_append(struct cn_buf *out,
                       uint16_t type,
                       uint8_t flags,
                       uint64_t request_id,
                       const void *payload,
                       size_t length)
{
    uint8_t header[PROTO_FRAME_HEADER_SIZE];
    int rv;

    if (length > PROTO_FRAME_PAYLOAD_MAX) {
        return CAIRN_ETOOBIG;
    }
    rv = cn_buf_reserve(out, PROTO_FRAME_HEADER_SIZE + length);
    if (rv != 0) {
        return rv;
    }
    proto_frame_encode_header(header, type, flags, request_id, payload, (uint32_t)length);
    cn_buf_append(out, header, sizeof(header));
    cn_buf_append(out, payload, length);
    return 0;
}

int proto_frame_append_msg(struct cn_buf *out,
                           uint16_t type,
                           uint8_t flags,
                           uint64_t request_id,
                           const ProtobufCMessage *msg)
{
    size_t length = protobuf_c_message_get_packed_size(msg);
    uint8_t *payload;
    uint8_t header[PROTO_FRAME_HEADER_SIZE];
    int rv;

    if (length > PROTO_FRAME_PAYLOAD_MAX) {
        return CAIRN_ETOOBIG;
    }
    rv = cn_buf_reserve(out, PROTO_FRAME_HEADER_SIZE + length);
    if (rv != 0) {
        return rv;
    }
    /* Pack in place after the header's slot, then fill the header in. */
    payload = out->base + out->len + PROTO_FRAME_HEADER_SIZE;
    protobuf_c_message_pack(msg, payload);
    proto_frame_encode_header(header, type, flags, request_id, payload, (uint32_t)length);
    memcpy(out->base + out->len, header, sizeof(header));
    out->len += PROTO_FRAME_HEADER_SIZE + length;
    return 0;
}

void proto_reader_init(struct proto_reader *reader, uint32_t payload_max)
{
    CN_ASSERT(payload_max <= PROTO_FRAME_PAYLOAD_MAX);
    memset(reader, 0, sizeof(*reader));
    reader->payload_max = payload_max;
}

void proto_reader_close(struct proto_reader *reader)
{
    free(reader->payload);
    reader->payload = NULL;
}

/* Takes header bytes; on a whole header, validates it and allocates the payload. */
static size_t feed_header(struct proto_reader *reader, const uint8_t *data, size_t len)
{
    size_t take = CN_MIN(len, PROTO_FRAME_HEADER_SIZE - reader->header_len);
    int rv;

    memcpy(reader->header_bytes + reader->header_len, data, take);
    reader->header_len += take;
    if (reader->header_len < PROTO_FRAME_HEADER_SIZE) {
        return take;
    }
    rv = proto_frame_decode_header(reader->header_bytes, PROTO_FRAME_HEADER_SIZE,
                                   reader->payload_max, &reader->header);
    if (rv != 0) {
        reader->error = rv;
        return take;
    }
    /* +1 so a zero-length payload still has a valid pointer. */
    reader->payload = malloc((size_t)reader->header.length + 1);
    if (reader->payload == NULL) {
        reader->error = CAIRN_ENOMEM;
    }
    reader->payload_len = 0;
    return take;
}

/* Verifies a whole frame, hands it to cb, and resets for the next one. */
static int finish_frame(struct proto_reader *reader, proto_reader_cb cb, void *cb_data)
{
    int rv = proto_frame_check(reader->header_bytes, &reader->header, reader->payload);

    if (rv == 0) {
        rv = cb(cb_data, &reader->header, reader->payload);
    }
    free(reader->payload);
    reader->payload = NULL;
    reader->header_len = 0;
    reader->error = rv;
    return rv;
}

int proto_reader_feed(
    struct proto_reader *reader, const void *data, size_t len, proto_reader_cb cb, void *cb_data)
{
    const uint8_t *bytes = data;

    while (reader->error == 0) {
        size_t take;

        if (reader->payload == NULL) {
            if (len == 0) {
                break;
            }
            take = feed_header(reader, bytes, len);
            bytes += take;
            len -= take;
            continue;
        }
        take = CN_MIN(len, reader->header.length - reader->payload_len);
        memcpy(reader->payload + reader->payload_len, bytes, take);
        reader->payload_len += take;
        bytes += take;
        len -= take;
        if (reader->payload_len < reader->header.length) {
            break; /* All input consumed; wait for more. */
        }
        finish_frame(reader, cb, cb_data);
    }
    return reader->error;
}
