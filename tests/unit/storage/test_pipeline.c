/*
 * The pipelines: whole streams (10 MiB random and text, every scheme, 1 and 2
 * threads) go through the encoder and back through the decoder, also with
 * shards missing; chunks come out in order at the chunker's boundaries; an
 * error from the callback stops the stream; and a freed stream's buffers
 * serve the next stream under that stream's own keys and settings.
 */
#include <stdlib.h>

#include "helpers.h"
#include "stor_int.h"

#define STREAM_SIZE (10u << 20)

struct sink {
    struct cn_buf plain;
    unsigned calls;
    unsigned fail_at;  /* 0: never */
    uint32_t bad_seen; /* Union of the bad masks reported */
};

static int sink_cb(void *data, const uint8_t *plain, size_t len, uint32_t bad)
{
    struct sink *sink = data;

    sink->calls++;
    sink->bad_seen |= bad;
    if (sink->fail_at != 0 && sink->calls == sink->fail_at) {
        return CAIRN_ECANCELED;
    }
    return cn_buf_append(&sink->plain, plain, len);
}

/* Encodes data in uneven writes; the stream's chunks land in stream. */
static void encode_stream(const struct stor_pipeline_config *config,
                          const uint8_t *bytes,
                          size_t len,
                          struct helper_stream *stream)
{
    struct stor_encoder *encoder;
    size_t at = 0;
    size_t piece = 100000;

    memset(stream, 0, sizeof(*stream));
    ASSERT_OK(stor_encoder_new(config, helper_stream_cb, stream, &encoder));
    while (at < len) {
        size_t n = CN_MIN(piece, len - at);

        ASSERT_OK(stor_encoder_write(encoder, bytes + at, n));
        at += n;
        piece = piece * 3 % 700001 + 1;
    }
    ASSERT_OK(stor_encoder_finish(encoder));
    stor_encoder_free(encoder);
}

/* Decodes the stream, dropping `drop` shards of each chunk (the first ones: data shards). */
static void decode_stream(const struct stor_pipeline_config *config,
                          const struct helper_stream *stream,
                          unsigned drop,
                          struct sink *sink)
{
    struct stor_decoder *decoder;

    ASSERT_OK(stor_decoder_new(config, sink_cb, sink, &decoder));
    for (size_t c = 0; c < stream->count; c++) {
        const struct helper_chunk *chunk = &stream->chunks[c];
        size_t lens[STOR_SHARD_COUNT_MAX];

        for (unsigned i = 0; i < chunk->shard_count; i++) {
            lens[i] = chunk->shard_size;
        }
        ASSERT_OK(stor_decoder_push(decoder, &chunk->id,
                                    (const uint8_t *const *)chunk->shards + drop, lens + drop,
                                    chunk->shard_count - drop));
    }
    ASSERT_OK(stor_decoder_finish(decoder));
    stor_decoder_free(decoder);
}

static void assert_stream_round_trip(const uint8_t *bytes, unsigned k, unsigned m, unsigned threads)
{
    struct stor_keys keys;
    struct stor_pipeline_config config = {
        .codec = {.keys = &keys, .k = (uint8_t)k, .m = (uint8_t)m, .compress = true},
        .thread_count = threads};
    struct helper_stream stream;
    struct helper_cuts cuts;
    struct sink sink = {0};

    helper_keys(&keys, 21);
    encode_stream(&config, bytes, STREAM_SIZE, &stream);
    /* Chunks arrive in order, at the chunker's boundaries. */
    helper_chunk(bytes, STREAM_SIZE, 0, &cuts);
    ASSERT_EQ(stream.count, cuts.count);
    for (size_t c = 0, start = 0; c < cuts.count; start = cuts.ends[c++]) {
        ASSERT_EQ(stream.chunks[c].plain_size, cuts.ends[c] - start);
    }
    cn_buf_init(&sink.plain);
    decode_stream(&config, &stream, m, &sink);
    ASSERT_EQ(sink.plain.len, STREAM_SIZE);
    ASSERT_MEM_EQ(sink.plain.base, bytes, STREAM_SIZE);
    cn_buf_close(&sink.plain);
    helper_cuts_close(&cuts);
    helper_stream_close(&stream);
}

TEST(pipeline, round_trip_random, NULL, NULL)
{
    static const unsigned schemes[][2] = {{1, 0}, {2, 1}, {4, 2}, {8, 3}};
    uint8_t *bytes = helper_random(cn_test_seed(), STREAM_SIZE);

    for (size_t s = 0; s < CN_ARRAY_SIZE(schemes); s++) {
        assert_stream_round_trip(bytes, schemes[s][0], schemes[s][1], s % 2 == 0 ? 1 : 2);
    }
    assert_stream_round_trip(bytes, 4, 2, 3);
    free(bytes);
}

TEST(pipeline, round_trip_text, NULL, NULL)
{
    static const unsigned schemes[][2] = {{1, 0}, {2, 1}, {4, 2}, {8, 3}};
    uint8_t *bytes = helper_text(cn_test_seed(), STREAM_SIZE);

    for (size_t s = 0; s < CN_ARRAY_SIZE(schemes); s++) {
        assert_stream_round_trip(bytes, schemes[s][0], schemes[s][1], s % 2 == 0 ? 2 : 1);
    }
    free(bytes);
}

TEST(pipeline, empty_stream_has_no_chunks, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_pipeline_config config = {.codec = {.keys = &keys, .k = 2, .m = 1},
                                          .thread_count = 2};
    struct helper_stream stream;

    helper_keys(&keys, 22);
    encode_stream(&config, NULL, 0, &stream);
    ASSERT_EQ(stream.count, 0);
    helper_stream_close(&stream);
}

static int fail_third(void *data, const struct stor_chunk *chunk)
{
    unsigned *calls = data;

    (void)chunk;
    return ++*calls == 3 ? CAIRN_ECANCELED : 0;
}

TEST(pipeline, callback_error_stops_the_stream, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_pipeline_config config = {.codec = {.keys = &keys, .k = 2, .m = 1},
                                          .thread_count = 2};
    uint8_t *bytes = cn_xcalloc(1, STREAM_SIZE); /* Zeros: 4 MiB chunks, 3 of them */
    struct stor_encoder *encoder;
    unsigned calls = 0;
    int rv = 0;

    helper_keys(&keys, 23);
    ASSERT_OK(stor_encoder_new(&config, fail_third, &calls, &encoder));
    for (int i = 0; i < 4 && rv == 0; i++) {
        rv = stor_encoder_write(encoder, bytes, STREAM_SIZE);
    }
    if (rv == 0) {
        rv = stor_encoder_finish(encoder);
    }
    ASSERT_ERR(rv, CAIRN_ECANCELED);
    ASSERT_EQ(calls, 3);
    ASSERT_ERR(stor_encoder_finish(encoder), CAIRN_ECANCELED); /* Sticky */
    stor_encoder_free(encoder);
    free(bytes);
}

TEST(pipeline, decoder_reports_unavailable_chunk, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_pipeline_config config = {.codec = {.keys = &keys, .k = 4, .m = 2},
                                          .thread_count = 2};
    uint8_t *bytes = helper_random(cn_test_seed(), 3u << 20);
    struct helper_stream stream;
    struct stor_decoder *decoder;
    struct sink sink = {0};
    size_t lens[6];
    int rv = 0;

    helper_keys(&keys, 24);
    encode_stream(&config, bytes, 3u << 20, &stream);
    ASSERT_CMP(stream.count, >=, 2);
    cn_buf_init(&sink.plain);
    ASSERT_OK(stor_decoder_new(&config, sink_cb, &sink, &decoder));
    for (size_t c = 0; c < stream.count && rv == 0; c++) {
        for (unsigned i = 0; i < 6; i++) {
            lens[i] = stream.chunks[c].shard_size;
        }
        /* The second chunk gets only 3 of its shards. */
        rv = stor_decoder_push(decoder, &stream.chunks[c].id,
                               (const uint8_t *const *)stream.chunks[c].shards, lens,
                               c == 1 ? 3 : 6);
    }
    if (rv == 0) {
        rv = stor_decoder_finish(decoder);
    }
    ASSERT_ERR(rv, CAIRN_EUNAVAIL);
    ASSERT_EQ(sink.calls, 1); /* The first chunk, and nothing after the failed one. */
    stor_decoder_free(decoder);
    cn_buf_close(&sink.plain);
    helper_stream_close(&stream);
    free(bytes);
}

TEST(pipeline, bad_config, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_pipeline_config config = {.codec = {.keys = &keys, .k = 4, .m = 2},
                                          .thread_count = 0};
    struct stor_encoder *encoder;

    helper_keys(&keys, 25);
    ASSERT_ERR(stor_encoder_new(&config, helper_stream_cb, NULL, &encoder), CAIRN_EINVAL);
    config.thread_count = STOR_THREADS_MAX + 1;
    ASSERT_ERR(stor_encoder_new(&config, helper_stream_cb, NULL, &encoder), CAIRN_EINVAL);
    config.thread_count = 2;
    config.codec.k = 0;
    ASSERT_ERR(stor_encoder_new(&config, helper_stream_cb, NULL, &encoder), CAIRN_EINVAL);
}

TEST(pipeline, abandoned_stream_gets_no_callbacks, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_pipeline_config config = {.codec = {.keys = &keys, .k = 2, .m = 1},
                                          .thread_count = 2};
    uint8_t *bytes = cn_xcalloc(1, STREAM_SIZE); /* Zeros: 4 MiB chunks */
    struct stor_encoder *encoder;
    unsigned calls = 0;

    helper_keys(&keys, 26);
    ASSERT_OK(stor_encoder_new(&config, fail_third, &calls, &encoder));
    ASSERT_OK(stor_encoder_write(encoder, bytes, 2 * STOR_CHUNK_SIZE_MAX + 1));
    stor_encoder_free(encoder); /* Two whole chunks may still be in flight. */
    ASSERT_CMP(calls, <=, 2);
    ASSERT_OK(stor_encoder_new(&config, fail_third, &calls, &encoder));
    ASSERT_OK(stor_encoder_finish(encoder));
    ASSERT_ERR(stor_encoder_write(encoder, bytes, 1), CAIRN_EINVAL);
    stor_encoder_free(encoder);
    free(bytes);
}

/* Whole streams of every size at and around the chunk-size bounds, for every scheme. */
TEST(pipeline, round_trip_bound_sizes, NULL, NULL)
{
    static const unsigned schemes[][2] = {{1, 0}, {2, 1}, {4, 2}, {8, 3}};
    static const size_t sizes[] = {0,
                                   1,
                                   STOR_CHUNK_SIZE_MIN - 1,
                                   STOR_CHUNK_SIZE_MIN,
                                   STOR_CHUNK_SIZE_MIN + 1,
                                   STOR_CHUNK_SIZE_AVG - 1,
                                   STOR_CHUNK_SIZE_AVG,
                                   STOR_CHUNK_SIZE_AVG + 1,
                                   STOR_CHUNK_SIZE_MAX - 1,
                                   STOR_CHUNK_SIZE_MAX,
                                   STOR_CHUNK_SIZE_MAX + 1};
    uint8_t *random = helper_random(cn_test_seed(), STOR_CHUNK_SIZE_MAX + 1);
    uint8_t *zeros = cn_xcalloc(1, STOR_CHUNK_SIZE_MAX + 1); /* Cut only at the maximum */
    struct stor_keys keys;

    helper_keys(&keys, 27);
    for (size_t s = 0; s < CN_ARRAY_SIZE(schemes); s++) {
        struct stor_pipeline_config config = {.codec = {.keys = &keys,
                                                        .k = (uint8_t)schemes[s][0],
                                                        .m = (uint8_t)schemes[s][1],
                                                        .compress = true},
                                              .thread_count = 1 + (unsigned)(s % 2)};

        for (size_t i = 0; i < CN_ARRAY_SIZE(sizes); i++) {
            const uint8_t *inputs[2] = {random, zeros};

            for (unsigned d = 0; d < 2; d++) {
                struct helper_stream stream;
                struct sink sink = {0};

                cn_buf_init(&sink.plain);
                encode_stream(&config, inputs[d], sizes[i], &stream);
                decode_stream(&config, &stream, schemes[s][1], &sink);
                ASSERT_EQ(sink.plain.len, sizes[i]);
                if (sizes[i] > 0) {
                    ASSERT_MEM_EQ(sink.plain.base, inputs[d], sizes[i]);
                }
                if (d == 1 && sizes[i] > STOR_CHUNK_SIZE_MAX) {
                    ASSERT_EQ(stream.count, 2);
                }
                cn_buf_close(&sink.plain);
                helper_stream_close(&stream);
            }
        }
    }
    free(random);
    free(zeros);
}

/* Two streams share one pool, their writes interleaved; each comes back whole. */
TEST(pipeline, shared_pool, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_pool *pool;
    struct stor_pipeline_config config = {
        .codec = {.keys = &keys, .k = 4, .m = 2, .compress = true}, .thread_count = 2};
    uint8_t *a = helper_random(cn_test_seed(), STREAM_SIZE);
    uint8_t *b = helper_text(cn_test_seed(), STREAM_SIZE);
    struct helper_stream streams[2];
    struct stor_encoder *encoders[2];
    struct sink sink = {0};

    helper_keys(&keys, 28);
    ASSERT_ERR(stor_pool_new(0, &pool), CAIRN_EINVAL);
    ASSERT_OK(stor_pool_new(2, &pool));
    config.pool = pool;
    memset(streams, 0, sizeof(streams));
    ASSERT_OK(stor_encoder_new(&config, helper_stream_cb, &streams[0], &encoders[0]));
    ASSERT_OK(stor_encoder_new(&config, helper_stream_cb, &streams[1], &encoders[1]));
    for (size_t at = 0; at < STREAM_SIZE; at += 300000) {
        size_t n = CN_MIN(300000, STREAM_SIZE - at);

        ASSERT_OK(stor_encoder_write(encoders[0], a + at, n));
        ASSERT_OK(stor_encoder_write(encoders[1], b + at, n));
    }
    ASSERT_OK(stor_encoder_finish(encoders[1]));
    ASSERT_OK(stor_encoder_finish(encoders[0]));
    stor_encoder_free(encoders[0]);
    stor_encoder_free(encoders[1]);
    for (unsigned i = 0; i < 2; i++) {
        cn_buf_init(&sink.plain);
        decode_stream(&config, &streams[i], 2, &sink);
        ASSERT_EQ(sink.plain.len, STREAM_SIZE);
        ASSERT_MEM_EQ(sink.plain.base, i == 0 ? a : b, STREAM_SIZE);
        cn_buf_close(&sink.plain);
        helper_stream_close(&streams[i]);
    }
    stor_pool_free(pool);
    free(a);
    free(b);
}

/* A corrupt shard is read around, and its position reported to the callback. */
TEST(pipeline, decoder_reports_bad_shards, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_pipeline_config config = {.codec = {.keys = &keys, .k = 2, .m = 1},
                                          .thread_count = 2};
    uint8_t *bytes = helper_random(cn_test_seed(), 2u << 20);
    struct helper_stream stream;
    struct sink sink = {0};

    helper_keys(&keys, 29);
    encode_stream(&config, bytes, 2u << 20, &stream);
    stream.chunks[0].shards[1][STOR_SHARD_HEADER_SIZE + 5] ^= 0x10;
    cn_buf_init(&sink.plain);
    decode_stream(&config, &stream, 0, &sink);
    ASSERT_EQ(sink.bad_seen, 1u << 1);
    ASSERT_EQ(sink.plain.len, 2u << 20);
    ASSERT_MEM_EQ(sink.plain.base, bytes, 2u << 20);
    cn_buf_close(&sink.plain);
    helper_stream_close(&stream);
    free(bytes);
}

/* Asserts every shard of the stream says cipher and compression (or any compression: -1). */
static void assert_stream_fields(const struct helper_stream *stream,
                                 unsigned cipher,
                                 int compression)
{
    struct stor_shard_header header;

    for (size_t c = 0; c < stream->count; c++) {
        for (unsigned i = 0; i < stream->chunks[c].shard_count; i++) {
            ASSERT_OK(stor_shard_parse(stream->chunks[c].shards[i], stream->chunks[c].shard_size,
                                       &header));
            ASSERT_EQ(header.cipher, cipher);
            if (compression >= 0) {
                ASSERT_EQ(header.compression, (unsigned)compression);
            }
        }
    }
}

/*
 * A freed stream's slots serve the next stream of the same k and m, with that
 * stream's keys, cipher and compression (not the old ones'); the cache stays
 * within its bound and can be released.
 */
TEST(pipeline, reused_buffers_take_the_new_config, NULL, NULL)
{
    uint8_t *text = helper_text(cn_test_seed(), 3u << 20);
    struct stor_keys keys_a;
    struct stor_keys keys_b;
    struct stor_pipeline_config a = {.codec = {.keys = &keys_a,
                                               .k = 4,
                                               .m = 2,
                                               .cipher = STOR_CIPHER_AES256GCM,
                                               .compress = true},
                                     .thread_count = 2};
    struct stor_pipeline_config b = {.codec = {.keys = &keys_b,
                                               .k = 4,
                                               .m = 2,
                                               .cipher = STOR_CIPHER_XCHACHA20POLY1305,
                                               .compress = false},
                                     .thread_count = 2};
    struct helper_stream stream;
    struct stor_id id;
    struct sink sink = {0};
    struct stor_decoder *decoder;
    size_t lens[STOR_SHARD_COUNT_MAX];

    helper_keys(&keys_a, 61);
    helper_keys(&keys_b, 62);
    stor_pipeline_cache_release();
    ASSERT_EQ(stor__pipeline_cache_count(), 0);
    encode_stream(&a, text, 3u << 20, &stream);
    assert_stream_fields(&stream, STOR_CIPHER_AES256GCM, STOR_COMPRESSION_ZSTD);
    helper_stream_close(&stream);
    ASSERT_EQ(stor__pipeline_cache_count(), 4); /* 2 * thread_count slots */

    /* The same slots, now with keys b, XChaCha and no compression. */
    encode_stream(&b, text, 3u << 20, &stream);
    ASSERT_EQ(stor__pipeline_cache_count(), 4);
    assert_stream_fields(&stream, STOR_CIPHER_XCHACHA20POLY1305, STOR_COMPRESSION_NONE);
    ASSERT_OK(stor_chunk_id(&keys_b, text, stream.chunks[0].plain_size, &id));
    ASSERT_MEM_EQ(id.bytes, stream.chunks[0].id.bytes, STOR_ID_SIZE);
    cn_buf_init(&sink.plain);
    decode_stream(&b, &stream, 2, &sink);
    ASSERT_MEM_EQ(sink.plain.base, text, 3u << 20);
    cn_buf_close(&sink.plain);

    /* A decoder from the cache holding keys a does not open b's chunks. */
    ASSERT_OK(stor_decoder_new(&a, sink_cb, &sink, &decoder));
    for (unsigned i = 0; i < 6; i++) {
        lens[i] = stream.chunks[0].shard_size;
    }
    ASSERT_OK(stor_decoder_push(decoder, &stream.chunks[0].id,
                                (const uint8_t *const *)stream.chunks[0].shards, lens, 6));
    ASSERT_ERR(stor_decoder_finish(decoder), CAIRN_EKEY);
    stor_decoder_free(decoder);
    helper_stream_close(&stream);

    /* Other schemes get fresh slots; the cache never holds more than 8. */
    for (unsigned k = 1; k <= 3; k++) {
        struct stor_pipeline_config c = {.codec = {.keys = &keys_a, .k = (uint8_t)k, .m = 1},
                                         .thread_count = 3};

        encode_stream(&c, text, 1u << 20, &stream);
        helper_stream_close(&stream);
        ASSERT_CMP(stor__pipeline_cache_count(), <=, 8);
    }
    stor_pipeline_cache_release();
    ASSERT_EQ(stor__pipeline_cache_count(), 0);
    free(text);
}

/* What an encoder delivered: each chunk's size and id, in order. */
struct chunk_log {
    size_t count;
    uint32_t sizes[4096];
    struct stor_id ids[4096];
};

static int log_chunk(void *data, const struct stor_chunk *chunk)
{
    struct chunk_log *log = data;

    CN_ASSERT(log->count < CN_ARRAY_SIZE(log->sizes));
    log->sizes[log->count] = chunk->plain_size;
    log->ids[log->count++] = chunk->id;
    return 0;
}

/* Fills data with a 128-byte pattern under which the cut condition holds at
 * some phase: the strict one (chunks end just after the minimum, at varied
 * offsets) or only the loose one (just after the average). Either way there
 * is a candidate every 128 bytes: more than a region scan keeps. */
static void fill_dense(uint8_t *data, size_t len, struct cn_rand *rand, bool strict)
{
    uint8_t pattern[2 * 128];
    bool small;
    bool large;

    do {
        uint64_t hash;

        cn_rand_fill(rand, pattern, 128);
        memcpy(pattern + 128, pattern, 128);
        hash = stor__gear_roll(0, pattern, 128);
        small = false;
        large = false;
        for (size_t i = 128; i < sizeof(pattern); i++) {
            hash = stor__gear_roll(hash, &pattern[i], 1);
            small = small || stor__gear_cuts(hash, true);
            large = large || stor__gear_cuts(hash, false);
        }
    } while (strict ? !small : (small || !large));
    for (size_t at = 0; at < len; at++) {
        data[at] = pattern[at % 128];
    }
}

/*
 * The encoder with workers finds chunks from its ring's region scans: the
 * boundaries and ids must be the sequential chunker's, over streams that wrap
 * the ring several times, with writes from 1 byte to larger than the ring,
 * on random data, dense candidates (regions that overflow) and a mix.
 */
TEST(pipeline, ring_boundaries_match_the_chunker, NULL, NULL)
{
    static const size_t size = 60u << 20;
    uint64_t seed = cn_test_seed();
    uint8_t *bytes = helper_random(seed, size);
    struct chunk_log *log = cn_xcalloc(1, sizeof(*log));
    struct stor_keys keys;
    struct cn_rand rand;
    struct stor_pool *pool;

    helper_keys(&keys, 71);
    cn_rand_seed(&rand, seed);
    ASSERT_OK(stor_pool_new(2, &pool));
    for (unsigned kind = 0; kind < 3; kind++) {
        /* Three workers or more: the encoder chunks on them, from its ring. */
        struct stor_pipeline_config config = {.codec = {.keys = &keys, .k = 2, .m = 1},
                                              .thread_count = kind == 1 ? 4 : 3,
                                              .pool = kind == 2 ? pool : NULL};
        struct stor_encoder *encoder;
        struct helper_cuts cuts;
        size_t at = 0;

        if (kind == 1) {
            fill_dense(bytes, size, &rand, true);
        } else if (kind == 2) {
            /* Strict and loose stretches among random ones, at odd offsets. */
            for (size_t s = 0; s < size; s += 5u << 20) {
                fill_dense(bytes + s, CN_MIN(size - s, 2234567u + s % 3000u), &rand,
                           s % (10u << 20) == 0);
            }
        }
        memset(log, 0, sizeof(*log));
        ASSERT_OK(stor_encoder_new(&config, log_chunk, log, &encoder));
        while (at < size) {
            uint64_t pick = cn_rand_below(&rand, 8);
            size_t n = pick == 0   ? 1 + cn_rand_below(&rand, 100)
                       : pick == 1 ? 30u << 20 /* more than the ring */
                                   : 1 + cn_rand_below(&rand, 3u << 20);

            n = CN_MIN(n, size - at);
            ASSERT_OK(stor_encoder_write(encoder, bytes + at, n));
            at += n;
        }
        ASSERT_OK(stor_encoder_finish(encoder));
        stor_encoder_free(encoder);

        helper_chunk(bytes, size, 0, &cuts);
        ASSERT_EQ(log->count, cuts.count);
        for (size_t c = 0, start = 0; c < cuts.count; start = cuts.ends[c++]) {
            struct stor_id id;

            ASSERT_EQ(log->sizes[c], cuts.ends[c] - start);
            ASSERT_OK(stor_chunk_id(&keys, bytes + start, cuts.ends[c] - start, &id));
            ASSERT_MEM_EQ(id.bytes, log->ids[c].bytes, STOR_ID_SIZE);
        }
        helper_cuts_close(&cuts);
    }
    stor_pool_free(pool);
    free(log);
    free(bytes);
}
