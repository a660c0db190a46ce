/*
 * Framing: round trips through the header codec and the streaming reader, and
 * every way a frame can be bad — corrupted, truncated, oversized, foreign.
 */
#include <stdlib.h>

#include "proto.h"
#include "test.h"
#include "wire.pb-c.h"

#define FRAMES_MAX 16

struct seen {
    int count;
    struct proto_frame_header headers[FRAMES_MAX];
    uint8_t *payloads[FRAMES_MAX];
};

static int collect(void *data, const struct proto_frame_header *header, const uint8_t *payload)
{
    struct seen *seen = data;

    CN_ASSERT(seen->count < FRAMES_MAX);
    seen->headers[seen->count] = *header;
    seen->payloads[seen->count] = malloc(header->length + 1);
    memcpy(seen->payloads[seen->count], payload, header->length);
    seen->count++;
    return 0;
}

static void seen_free(struct seen *seen)
{
    for (int i = 0; i < seen->count; i++) {
        free(seen->payloads[i]);
    }
}

TEST(frame, header_round_trip, NULL, NULL)
{
    uint8_t bytes[PROTO_FRAME_HEADER_SIZE];
    struct proto_frame_header header;

    proto_frame_encode_header(bytes, 7, PROTO_FLAG_REPLY, 0x1122334455667788ull, "hello", 5);
    ASSERT_OK(proto_frame_decode_header(bytes, sizeof(bytes), 1024, &header));
    ASSERT_EQ(header.type, 7);
    ASSERT_EQ(header.flags, PROTO_FLAG_REPLY);
    ASSERT_EQ(header.request_id, 0x1122334455667788ll);
    ASSERT_EQ(header.length, 5);
    ASSERT_OK(proto_frame_check(bytes, &header, "hello"));
    ASSERT_ERR(proto_frame_decode_header(bytes, PROTO_FRAME_HEADER_SIZE - 1, 1024, &header),
               CAIRN_EAGAIN);
}

TEST(frame, reader_round_trip_any_split, NULL, NULL)
{
    struct cn_buf stream;
    const char *payloads[] = {"", "a", "some longer payload with bytes \x01\x02"};

    cn_buf_init(&stream);
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(proto_frame_append(&stream, (uint16_t)(i + 1), 0, (uint64_t)i, payloads[i],
                                     strlen(payloads[i])));
    }
    /* Feeding in pieces of every size gives the same frames as one feed. */
    for (size_t piece = 1; piece <= stream.len; piece++) {
        struct proto_reader reader;
        struct seen seen = {0};

        proto_reader_init(&reader, 1024);
        for (size_t off = 0; off < stream.len; off += piece) {
            size_t n = CN_MIN(piece, stream.len - off);
            ASSERT_OK(proto_reader_feed(&reader, stream.base + off, n, collect, &seen));
        }
        ASSERT_EQ(seen.count, 3);
        for (int i = 0; i < 3; i++) {
            ASSERT_EQ(seen.headers[i].type, i + 1);
            ASSERT_EQ(seen.headers[i].request_id, i);
            ASSERT_EQ(seen.headers[i].length, strlen(payloads[i]));
            ASSERT_MEM_EQ(seen.payloads[i], payloads[i], strlen(payloads[i]));
        }
        seen_free(&seen);
        proto_reader_close(&reader);
    }
    cn_buf_close(&stream);
}

TEST(frame, protobuf_message_round_trip, NULL, NULL)
{
    Cairn__Wire__ErrorReply reply = CAIRN__WIRE__ERROR_REPLY__INIT;
    Cairn__Wire__ErrorReply *back;
    struct proto_reader reader;
    struct seen seen = {0};
    struct cn_buf stream;

    reply.code = CAIRN_ENOTLEADER;
    reply.message = "not the leader";
    reply.leader_hint = "127.0.0.1:7001";
    cn_buf_init(&stream);
    ASSERT_OK(proto_frame_append_msg(&stream, CAIRN__WIRE__MSG_TYPE__MSG_ERROR,
                                     PROTO_FLAG_REPLY | PROTO_FLAG_ERROR, 9,
                                     (const ProtobufCMessage *)&reply));
    proto_reader_init(&reader, 1024);
    ASSERT_OK(proto_reader_feed(&reader, stream.base, stream.len, collect, &seen));
    ASSERT_EQ(seen.count, 1);
    back = cairn__wire__error_reply__unpack(NULL, seen.headers[0].length, seen.payloads[0]);
    ASSERT_TRUE(back != NULL);
    ASSERT_EQ(back->code, CAIRN_ENOTLEADER);
    ASSERT_STR_EQ(back->leader_hint, "127.0.0.1:7001");
    cairn__wire__error_reply__free_unpacked(back, NULL);
    seen_free(&seen);
    proto_reader_close(&reader);
    cn_buf_close(&stream);
}

TEST(frame, corrupted_frame_rejected, NULL, NULL)
{
    struct cn_buf frame;

    cn_buf_init(&frame);
    ASSERT_OK(proto_frame_append(&frame, 3, 0, 1, "payload bytes", 13));
    /* Flip each bit of the frame in turn: every flip is caught. */
    for (size_t bit = 0; bit < frame.len * 8; bit++) {
        struct proto_reader reader;
        struct seen seen = {0};
        int rv;

        frame.base[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        proto_reader_init(&reader, 1024);
        rv = proto_reader_feed(&reader, frame.base, frame.len, collect, &seen);
        frame.base[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ASSERT_EQ(seen.count, 0);
        /* A flip in the length may make the frame look longer: then it waits. */
        ASSERT_TRUE(rv == CAIRN_ECORRUPT || rv == CAIRN_EPROTO || rv == CAIRN_ETOOBIG ||
                    (rv == 0 && bit / 8 >= 16 && bit / 8 < 20));
        proto_reader_close(&reader);
    }
    cn_buf_close(&frame);
}

TEST(frame, truncated_frame_rejected, NULL, NULL)
{
    struct cn_buf stream;
    struct proto_reader reader;
    struct seen seen = {0};

    /* A frame cut short, then the next frame's bytes arrive: the checksum fails. */
    cn_buf_init(&stream);
    ASSERT_OK(proto_frame_append(&stream, 3, 0, 1, "0123456789", 10));
    stream.len -= 4;
    ASSERT_OK(proto_frame_append(&stream, 3, 0, 2, "abcdefghij", 10));
    proto_reader_init(&reader, 1024);
    ASSERT_ERR(proto_reader_feed(&reader, stream.base, stream.len, collect, &seen), CAIRN_ECORRUPT);
    ASSERT_EQ(seen.count, 0);
    /* Sticky: the stream is no longer trusted. */
    ASSERT_ERR(proto_reader_feed(&reader, "x", 1, collect, &seen), CAIRN_ECORRUPT);
    proto_reader_close(&reader);
    cn_buf_close(&stream);
}

TEST(frame, truncated_frame_waits_without_delivering, NULL, NULL)
{
    struct cn_buf stream;
    struct proto_reader reader;
    struct seen seen = {0};

    cn_buf_init(&stream);
    ASSERT_OK(proto_frame_append(&stream, 3, 0, 1, "0123456789", 10));
    proto_reader_init(&reader, 1024);
    ASSERT_OK(proto_reader_feed(&reader, stream.base, stream.len - 1, collect, &seen));
    ASSERT_EQ(seen.count, 0);
    ASSERT_OK(proto_reader_feed(&reader, stream.base + stream.len - 1, 1, collect, &seen));
    ASSERT_EQ(seen.count, 1);
    seen_free(&seen);
    proto_reader_close(&reader);
    cn_buf_close(&stream);
}

TEST(frame, oversized_length_rejected_without_allocating, NULL, NULL)
{
    uint8_t bytes[PROTO_FRAME_HEADER_SIZE];
    struct proto_frame_header header;
    struct proto_reader reader;
    struct seen seen = {0};

    /* Claim 4 GiB - 1: the reader must refuse it from the header alone. */
    proto_frame_encode_header(bytes, 3, 0, 1, "", 0);
    cn_put_u32(bytes + 16, UINT32_MAX);
    ASSERT_ERR(proto_frame_decode_header(bytes, sizeof(bytes), PROTO_FRAME_PAYLOAD_MAX, &header),
               CAIRN_ETOOBIG);
    proto_reader_init(&reader, 4096);
    ASSERT_ERR(proto_reader_feed(&reader, bytes, sizeof(bytes), collect, &seen), CAIRN_ETOOBIG);
    ASSERT_TRUE(reader.payload == NULL); /* nothing allocated for it */
    ASSERT_EQ(seen.count, 0);
    proto_reader_close(&reader);
    /* Just over a reader's own limit is refused too. */
    cn_put_u32(bytes + 16, 4097);
    ASSERT_ERR(proto_frame_decode_header(bytes, sizeof(bytes), 4096, &header), CAIRN_ETOOBIG);
    ASSERT_ERR(
        proto_frame_append(&(struct cn_buf){0}, 1, 0, 1, bytes, PROTO_FRAME_PAYLOAD_MAX + 1ull),
        CAIRN_ETOOBIG);
}

TEST(frame, foreign_bytes_rejected, NULL, NULL)
{
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    uint8_t bytes[PROTO_FRAME_HEADER_SIZE];
    struct proto_frame_header header;
    struct proto_reader reader;
    struct seen seen = {0};

    proto_reader_init(&reader, 4096);
    ASSERT_ERR(proto_reader_feed(&reader, http, strlen(http), collect, &seen), CAIRN_EPROTO);
    proto_reader_close(&reader);
    proto_frame_encode_header(bytes, 3, 0, 1, "", 0);
    bytes[4] = PROTO_FRAME_VERSION + 1;
    ASSERT_ERR(proto_frame_decode_header(bytes, sizeof(bytes), 4096, &header), CAIRN_EPROTO);
    bytes[4] = PROTO_FRAME_VERSION;
    bytes[5] = 0x80; /* unknown flag */
    ASSERT_ERR(proto_frame_decode_header(bytes, sizeof(bytes), 4096, &header), CAIRN_EPROTO);
}

static int refuse(void *data, const struct proto_frame_header *header, const uint8_t *payload)
{
    (void)data;
    (void)header;
    (void)payload;
    return CAIRN_EPERM;
}

TEST(frame, callback_error_stops_the_stream, NULL, NULL)
{
    struct cn_buf stream;
    struct proto_reader reader;

    cn_buf_init(&stream);
    ASSERT_OK(proto_frame_append(&stream, 1, 0, 1, "a", 1));
    ASSERT_OK(proto_frame_append(&stream, 1, 0, 2, "b", 1));
    proto_reader_init(&reader, 1024);
    ASSERT_ERR(proto_reader_feed(&reader, stream.base, stream.len, refuse, NULL), CAIRN_EPERM);
    proto_reader_close(&reader);
    cn_buf_close(&stream);
}

TEST(frame, command_padding, NULL, NULL)
{
    ASSERT_EQ(proto_command_padded_size(0), 0);
    ASSERT_EQ(proto_command_padded_size(1), 8);
    ASSERT_EQ(proto_command_padded_size(100), 104);
    ASSERT_EQ(proto_command_padded_size(104), 104);
}
