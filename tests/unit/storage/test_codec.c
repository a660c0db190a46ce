/*
 * The codec: round trips for every size bound and scheme, decoding from every
 * k-subset of shards, and every way the input can be wrong — corrupt,
 * foreign, forged, the wrong key, a decompression bomb — rejected cleanly.
 */
#include <sodium.h>
#include <stdlib.h>
#include <zstd.h>

#include "helpers.h"
#include "stor_int.h"

struct fixture {
    struct stor_keys keys;
    struct stor_codec *encoder; /* Its output is decoded by another codec: decode reuses buffers. */
    struct stor_codec *decoder;
    uint8_t *out;
};

static struct fixture *fixture_new(unsigned k, unsigned m, enum stor_cipher cipher)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));
    struct stor_codec_config config = {
        .keys = &f->keys, .k = (uint8_t)k, .m = (uint8_t)m, .cipher = cipher, .compress = true};

    helper_keys(&f->keys, 11);
    CN_ASSERT(stor_codec_new(&config, &f->encoder) == 0);
    CN_ASSERT(stor_codec_new(&config, &f->decoder) == 0);
    f->out = cn_xmalloc(STOR_CHUNK_SIZE_MAX);
    return f;
}

static void fixture_free(struct fixture *f)
{
    stor_codec_free(f->encoder);
    stor_codec_free(f->decoder);
    free(f->out);
    free(f);
}

static void *setup_4_2(void)
{
    return fixture_new(4, 2, STOR_CIPHER_AUTO);
}

static void teardown(void *data)
{
    fixture_free(data);
}

/* Decodes the shards whose bits are in mask, in a shuffled order. */
static int decode_mask(struct fixture *f,
                       const struct stor_chunk *chunk,
                       uint32_t mask,
                       struct cn_rand *rand,
                       size_t *len,
                       uint32_t *bad)
{
    const uint8_t *shards[STOR_SHARD_COUNT_MAX];
    size_t lens[STOR_SHARD_COUNT_MAX];
    unsigned count = 0;

    for (unsigned i = 0; i < (unsigned)(chunk->k + chunk->m); i++) {
        if (mask & (1u << i)) {
            shards[count] = chunk->shards[i];
            lens[count++] = chunk->shard_size;
        }
    }
    for (unsigned i = count; i > 1; i--) {
        unsigned j = (unsigned)cn_rand_below(rand, i);
        const uint8_t *tmp = shards[i - 1];

        shards[i - 1] = shards[j];
        shards[j] = tmp;
    }
    return stor_codec_decode(f->decoder, &chunk->id, shards, lens, count, f->out,
                             STOR_CHUNK_SIZE_MAX, len, bad);
}

static void assert_round_trip(struct fixture *f,
                              const uint8_t *data,
                              size_t len,
                              struct cn_rand *rand)
{
    struct stor_chunk chunk;
    unsigned n;
    size_t out_len = 0;
    uint32_t bad = 0;

    ASSERT_OK(stor_codec_encode(f->encoder, data, len, &chunk));
    ASSERT_EQ(chunk.plain_size, len);
    n = (unsigned)(chunk.k + chunk.m);
    /* All shards, then without the first m (data shards: forces a rebuild). */
    ASSERT_OK(decode_mask(f, &chunk, (1u << n) - 1, rand, &out_len, &bad));
    ASSERT_EQ(out_len, len);
    ASSERT_EQ(bad, 0);
    ASSERT_MEM_EQ(f->out, data, len);
    ASSERT_OK(
        decode_mask(f, &chunk, ((1u << n) - 1) & ~((1u << chunk.m) - 1), rand, &out_len, &bad));
    ASSERT_EQ(out_len, len);
    ASSERT_MEM_EQ(f->out, data, len);
}

TEST(codec, round_trip_sizes_and_schemes, NULL, NULL)
{
    static const unsigned schemes[][2] = {{1, 0}, {2, 1}, {4, 2}, {8, 3}};
    static const size_t sizes[] = {0,
                                   1,
                                   STOR_CHUNK_SIZE_MIN - 1,
                                   STOR_CHUNK_SIZE_MIN,
                                   STOR_CHUNK_SIZE_MIN + 1,
                                   STOR_CHUNK_SIZE_AVG - 1,
                                   STOR_CHUNK_SIZE_AVG + 1,
                                   STOR_CHUNK_SIZE_MAX - 1,
                                   STOR_CHUNK_SIZE_MAX};
    uint64_t seed = cn_test_seed();
    uint8_t *random = helper_random(seed, STOR_CHUNK_SIZE_MAX);
    uint8_t *text = helper_text(seed, STOR_CHUNK_SIZE_MAX);
    struct cn_rand rand;

    cn_rand_seed(&rand, seed);
    for (size_t s = 0; s < CN_ARRAY_SIZE(schemes); s++) {
        struct fixture *f = fixture_new(schemes[s][0], schemes[s][1], STOR_CIPHER_AUTO);

        for (size_t i = 0; i < CN_ARRAY_SIZE(sizes); i++) {
            assert_round_trip(f, random, sizes[i], &rand);
            assert_round_trip(f, text, sizes[i], &rand);
        }
        fixture_free(f);
    }
    free(random);
    free(text);
}

TEST(codec, round_trip_wide_schemes_and_xchacha, NULL, NULL)
{
    static const unsigned schemes[][2] = {{16, 4}, {16, 0}, {3, 4}, {1, 4}};
    uint64_t seed = cn_test_seed();
    uint8_t *random = helper_random(seed, STOR_CHUNK_SIZE_AVG);
    struct cn_rand rand;

    cn_rand_seed(&rand, seed);
    for (size_t s = 0; s < CN_ARRAY_SIZE(schemes); s++) {
        struct fixture *f =
            fixture_new(schemes[s][0], schemes[s][1], STOR_CIPHER_XCHACHA20POLY1305);

        assert_round_trip(f, random, STOR_CHUNK_SIZE_AVG, &rand);
        assert_round_trip(f, random, 17, &rand); /* Fewer sealed bytes than k * payload. */
        fixture_free(f);
    }
    free(random);
}

/* Copies a chunk's shards (the codec reuses its buffers at the next encode). */
static uint8_t *shards_copy(const struct stor_chunk *chunk)
{
    unsigned n = (unsigned)chunk->k + chunk->m;
    uint8_t *copy = cn_xmalloc(n * chunk->shard_size);

    for (unsigned i = 0; i < n; i++) {
        memcpy(copy + i * chunk->shard_size, chunk->shards[i], chunk->shard_size);
    }
    return copy;
}

/* Synthetic nonces: the same chunk encoded the same way is the same shards,
 * byte for byte, on any codec (so two uploads racing to store one chunk write
 * identical files); any other header (scheme, key version) gets another nonce. */
TEST(codec, encodings_are_deterministic, NULL, NULL)
{
    static const enum stor_cipher ciphers[] = {STOR_CIPHER_AES256GCM,
                                               STOR_CIPHER_XCHACHA20POLY1305};
    uint8_t *text = helper_text(cn_test_seed(), 300000);

    for (size_t c = 0; c < CN_ARRAY_SIZE(ciphers); c++) {
        struct fixture *a = fixture_new(4, 2, ciphers[c]), *b = fixture_new(4, 2, ciphers[c]);
        struct fixture *other = fixture_new(3, 2, ciphers[c]);
        struct stor_shard_header ha, hother;
        struct stor_chunk chunk;
        uint8_t *first;
        size_t len = 0;

        ASSERT_OK(stor_codec_encode(a->encoder, text, 300000, &chunk));
        first = shards_copy(&chunk);
        ASSERT_OK(stor_shard_header_parse(chunk.shards[0], chunk.shard_size, &ha));
        ASSERT_OK(stor_codec_encode(b->encoder, text, 300000, &chunk)); /* another codec */
        for (unsigned i = 0; i < 6; i++) {
            ASSERT_MEM_EQ(chunk.shards[i], first + i * chunk.shard_size, chunk.shard_size);
        }
        ASSERT_OK(
            stor_codec_decode(b->decoder, &chunk.id, (const uint8_t *const *)chunk.shards,
                              (size_t[]){chunk.shard_size, chunk.shard_size, chunk.shard_size,
                                         chunk.shard_size, chunk.shard_size, chunk.shard_size},
                              6, b->out, STOR_CHUNK_SIZE_MAX, &len, NULL));
        ASSERT_EQ(len, 300000);
        ASSERT_MEM_EQ(b->out, text, len);
        ASSERT_OK(stor_codec_encode(other->encoder, text, 300000, &chunk)); /* 3+2 */
        ASSERT_OK(stor_shard_header_parse(chunk.shards[0], chunk.shard_size, &hother));
        ASSERT_TRUE(memcmp(ha.nonce, hother.nonce, sizeof(ha.nonce)) != 0);
        free(first);
        fixture_free(a);
        fixture_free(b);
        fixture_free(other);
    }
    free(text);
}

static void assert_every_subset(unsigned k, unsigned m)
{
    struct fixture *f = fixture_new(k, m, STOR_CIPHER_AUTO);
    uint8_t *data = helper_random(cn_test_seed(), STOR_CHUNK_SIZE_MIN + 12345);
    struct stor_chunk chunk;
    struct cn_rand rand;
    size_t len = 0;
    uint32_t bad = 0;

    cn_rand_seed(&rand, cn_test_seed());
    ASSERT_OK(stor_codec_encode(f->encoder, data, STOR_CHUNK_SIZE_MIN + 12345, &chunk));
    for (uint32_t mask = 0; mask < (1u << (k + m)); mask++) {
        int rv = decode_mask(f, &chunk, mask, &rand, &len, &bad);

        if ((unsigned)__builtin_popcount(mask) >= k) {
            ASSERT_OK(rv);
            ASSERT_EQ(len, STOR_CHUNK_SIZE_MIN + 12345);
            ASSERT_MEM_EQ(f->out, data, len);
        } else {
            ASSERT_ERR(rv, CAIRN_EUNAVAIL);
        }
    }
    free(data);
    fixture_free(f);
}

TEST(codec, every_subset_decodes_2_1, NULL, NULL)
{
    assert_every_subset(2, 1);
}

TEST(codec, every_subset_decodes_4_2, NULL, NULL)
{
    assert_every_subset(4, 2);
}

TEST(codec, random_subsets_decode_8_3, NULL, NULL)
{
    struct fixture *f = fixture_new(8, 3, STOR_CIPHER_AUTO);
    uint8_t *plain = helper_text(cn_test_seed(), STOR_CHUNK_SIZE_AVG);
    struct stor_chunk chunk;
    struct cn_rand rand;
    size_t len = 0;
    uint32_t bad = 0;

    cn_rand_seed(&rand, cn_test_seed());
    ASSERT_OK(stor_codec_encode(f->encoder, plain, STOR_CHUNK_SIZE_AVG, &chunk));
    for (unsigned t = 0; t < 40; t++) {
        uint32_t mask = (1u << 11) - 1;

        for (unsigned drop = 0; drop < 3; drop++) {
            mask &= ~(1u << cn_rand_below(&rand, 11));
        }
        ASSERT_OK(decode_mask(f, &chunk, mask, &rand, &len, &bad));
        ASSERT_MEM_EQ(f->out, plain, STOR_CHUNK_SIZE_AVG);
    }
    free(plain);
    fixture_free(f);
}

TEST(codec, compression_only_when_it_pays, setup_4_2, teardown)
{
    struct fixture *f = data;
    uint8_t *random = helper_random(1, STOR_CHUNK_SIZE_AVG);
    uint8_t *text = helper_text(1, STOR_CHUNK_SIZE_AVG);
    struct stor_chunk chunk;

    ASSERT_OK(stor_codec_encode(f->encoder, random, STOR_CHUNK_SIZE_AVG, &chunk));
    ASSERT_EQ(chunk.compression, STOR_COMPRESSION_NONE);
    ASSERT_EQ(chunk.stored_size, STOR_CHUNK_SIZE_AVG);
    ASSERT_OK(stor_codec_encode(f->encoder, text, STOR_CHUNK_SIZE_AVG, &chunk));
    ASSERT_EQ(chunk.compression, STOR_COMPRESSION_ZSTD);
    ASSERT_CMP(chunk.stored_size, <, STOR_CHUNK_SIZE_AVG / 2);
    free(random);
    free(text);
}

/* A copy of all k + m shards, to damage. */
struct copies {
    uint8_t *shards[STOR_SHARD_COUNT_MAX];
    size_t lens[STOR_SHARD_COUNT_MAX];
    unsigned count;
};

static void copies_make(struct copies *c, const struct stor_chunk *chunk)
{
    c->count = (unsigned)(chunk->k + chunk->m);
    for (unsigned i = 0; i < c->count; i++) {
        c->shards[i] = cn_xmalloc(chunk->shard_size);
        memcpy(c->shards[i], chunk->shards[i], chunk->shard_size);
        c->lens[i] = chunk->shard_size;
    }
}

static void copies_free(struct copies *c)
{
    for (unsigned i = 0; i < c->count; i++) {
        free(c->shards[i]);
    }
}

static int decode_copies(struct fixture *f,
                         const struct stor_id *id,
                         struct copies *c,
                         unsigned first,
                         unsigned count,
                         uint32_t *bad)
{
    size_t len;

    return stor_codec_decode(f->decoder, id, (const uint8_t *const *)c->shards + first,
                             c->lens + first, count, f->out, STOR_CHUNK_SIZE_MAX, &len, bad);
}

TEST(codec, corrupt_shard_read_around, setup_4_2, teardown)
{
    struct fixture *f = data;
    uint8_t *plain = helper_random(2, STOR_CHUNK_SIZE_MIN);
    struct stor_chunk chunk;
    struct copies c;
    uint32_t bad = 0;

    ASSERT_OK(stor_codec_encode(f->encoder, plain, STOR_CHUNK_SIZE_MIN, &chunk));
    copies_make(&c, &chunk);
    c.shards[0][STOR_SHARD_HEADER_SIZE + 100] ^= 0x40; /* payload */
    c.shards[3][50] ^= 0x01;                           /* header */
    c.lens[5] -= 1;                                    /* truncated */
    ASSERT_ERR(decode_copies(f, &chunk.id, &c, 0, 6, &bad), CAIRN_EUNAVAIL);
    ASSERT_EQ(bad, (1u << 0) | (1u << 3) | (1u << 5));
    c.lens[5] += 1;
    ASSERT_OK(decode_copies(f, &chunk.id, &c, 0, 6, &bad));
    ASSERT_EQ(bad, (1u << 0) | (1u << 3));
    ASSERT_MEM_EQ(f->out, plain, STOR_CHUNK_SIZE_MIN);
    copies_free(&c);
    free(plain);
}

TEST(codec, foreign_shards_skipped, setup_4_2, teardown)
{
    struct fixture *f = data;
    uint8_t *a = helper_random(3, 1000);
    uint8_t *b = helper_random(4, 1000);
    struct stor_chunk chunk;
    struct copies ca;
    struct copies cb;
    const uint8_t *mixed[6];
    size_t lens[6];
    struct stor_id id_a;
    size_t len;
    uint32_t bad = 0;

    ASSERT_OK(stor_codec_encode(f->encoder, a, 1000, &chunk));
    copies_make(&ca, &chunk);
    id_a = chunk.id;
    ASSERT_OK(stor_codec_encode(f->encoder, b, 1000, &chunk));
    copies_make(&cb, &chunk);
    for (unsigned i = 0; i < 6; i++) {
        mixed[i] = i % 3 == 0 ? cb.shards[i] : ca.shards[i]; /* b's 0 and 3, a's 1, 2, 4, 5 */
        lens[i] = ca.lens[i];
    }
    ASSERT_OK(stor_codec_decode(f->decoder, &id_a, mixed, lens, 6, f->out, STOR_CHUNK_SIZE_MAX,
                                &len, &bad));
    ASSERT_EQ(bad, (1u << 0) | (1u << 3));
    ASSERT_MEM_EQ(f->out, a, 1000);
    mixed[1] = cb.shards[1];
    ASSERT_ERR(stor_codec_decode(f->decoder, &id_a, mixed, lens, 6, f->out, STOR_CHUNK_SIZE_MAX,
                                 &len, &bad),
               CAIRN_EUNAVAIL);
    copies_free(&ca);
    copies_free(&cb);
    free(a);
    free(b);
}

TEST(codec, wrong_keys_rejected, setup_4_2, teardown)
{
    struct fixture *f = data;
    struct fixture *other = fixture_new(4, 2, STOR_CIPHER_AUTO);
    uint8_t *plain = helper_text(5, 5000);
    struct stor_chunk chunk;
    struct copies c;
    uint32_t bad = 0;

    ASSERT_OK(stor_codec_encode(f->encoder, plain, 5000, &chunk));
    copies_make(&c, &chunk);
    other->keys.master_key[0] ^= 1;
    ASSERT_ERR(decode_copies(other, &chunk.id, &c, 0, 6, &bad), CAIRN_EKEY);
    other->keys.master_key[0] ^= 1;
    other->keys.dedup_key[0] ^= 1;
    ASSERT_ERR(decode_copies(other, &chunk.id, &c, 0, 6, &bad), CAIRN_ECORRUPT);
    other->keys.dedup_key[0] ^= 1;
    other->keys.key_version = 2; /* A master key version other than the shard's. */
    ASSERT_ERR(decode_copies(other, &chunk.id, &c, 0, 6, &bad), CAIRN_EKEY);
    other->keys.key_version = 1;
    ASSERT_OK(decode_copies(other, &chunk.id, &c, 0, 6, &bad));
    copies_free(&c);
    fixture_free(other);
    free(plain);
}

/* A forger who recomputes the checksums still fails the AEAD: the header is its AAD. */
TEST(codec, forged_header_rejected, setup_4_2, teardown)
{
    struct fixture *f = data;
    uint8_t *plain = helper_random(6, 3000);
    struct stor_chunk chunk;
    struct copies c;
    uint32_t bad = 0;

    ASSERT_OK(stor_codec_encode(f->encoder, plain, 3000, &chunk));
    copies_make(&c, &chunk);
    for (unsigned i = 0; i < c.count; i++) {
        cn_put_u32(c.shards[i] + 40, 99); /* key version */
        cn_put_u32(c.shards[i] + STOR__OFF_HEADER_CRC,
                   cn_crc32c(0, c.shards[i], STOR__OFF_HEADER_CRC));
    }
    ASSERT_ERR(decode_copies(f, &chunk.id, &c, 0, 6, &bad), CAIRN_EKEY);
    ASSERT_EQ(bad, 0);
    copies_free(&c);
    free(plain);
}

/* Seals stored[0..len) as a 1+0 XChaCha shard claiming plain_size; returns the shard. */
static uint8_t *forge_shard(const struct stor_keys *keys,
                            const struct stor_id *id,
                            const uint8_t *stored,
                            uint32_t stored_size,
                            uint32_t plain_size,
                            size_t *shard_len)
{
    struct stor_shard_header h = {.id = *id,
                                  .key_version = keys->key_version,
                                  .k = 1,
                                  .cipher = STOR_CIPHER_XCHACHA20POLY1305,
                                  .compression = STOR_COMPRESSION_ZSTD,
                                  .plain_size = plain_size,
                                  .stored_size = stored_size,
                                  .payload_size = stored_size + STOR_AEAD_TAG_SIZE};
    uint8_t *shard = cn_xcalloc(1, STOR_SHARD_HEADER_SIZE + h.payload_size);
    uint8_t key[32];

    stor__chunk_key(keys, id, key);
    stor__shard_header_write(shard, &h);
    crypto_aead_xchacha20poly1305_ietf_encrypt(shard + STOR_SHARD_HEADER_SIZE, NULL, stored,
                                               stored_size, shard, STOR__OFF_AAD_END, NULL, h.nonce,
                                               key);
    h.payload_crc = cn_crc32c(0, shard + STOR_SHARD_HEADER_SIZE, h.payload_size);
    stor__shard_header_write(shard, &h);
    *shard_len = STOR_SHARD_HEADER_SIZE + h.payload_size;
    return shard;
}

/* 4 MiB of zeros compressed, claiming to be 1000 bytes: zstd stops at 1000. */
TEST(codec, decompression_bomb_rejected, setup_4_2, teardown)
{
    struct fixture *f = data;
    uint8_t *zeros = cn_xcalloc(1, STOR_CHUNK_SIZE_MAX);
    uint8_t *packed = cn_xmalloc(ZSTD_compressBound(STOR_CHUNK_SIZE_MAX));
    size_t packed_size = ZSTD_compress(packed, ZSTD_compressBound(STOR_CHUNK_SIZE_MAX), zeros,
                                       STOR_CHUNK_SIZE_MAX, 1);
    const uint8_t *shards[1];
    struct stor_id id;
    size_t shard_len;
    size_t len;
    uint32_t bad = 0;

    ASSERT_FALSE(ZSTD_isError(packed_size));
    ASSERT_CMP(packed_size, <, 1000);
    ASSERT_OK(stor_chunk_id(&f->keys, zeros, 1000, &id));
    shards[0] = forge_shard(&f->keys, &id, packed, (uint32_t)packed_size, 1000, &shard_len);
    ASSERT_ERR(stor_codec_decode(f->decoder, &id, shards, &shard_len, 1, f->out, 1000, &len, &bad),
               CAIRN_ECORRUPT);
    ASSERT_EQ(bad, 0); /* The shard itself was well-formed: it is the content that lies. */
    ASSERT_ERR(stor_codec_decode(f->decoder, &id, shards, &shard_len, 1, f->out, 999, &len, &bad),
               CAIRN_ETOOBIG);
    free((void *)shards[0]);
    free(packed);
    free(zeros);
}

TEST(codec, bad_arguments, setup_4_2, teardown)
{
    struct fixture *f = data;
    struct stor_codec_config config = {.keys = &f->keys, .k = 0, .m = 2};
    struct stor_codec *codec;
    struct stor_chunk chunk;

    ASSERT_ERR(stor_codec_new(&config, &codec), CAIRN_EINVAL);
    config.k = 17;
    ASSERT_ERR(stor_codec_new(&config, &codec), CAIRN_EINVAL);
    config.k = 4;
    config.m = 5;
    ASSERT_ERR(stor_codec_new(&config, &codec), CAIRN_EINVAL);
    config.m = 2;
    config.cipher = (enum stor_cipher)7;
    ASSERT_ERR(stor_codec_new(&config, &codec), CAIRN_EINVAL);
    ASSERT_ERR(stor_codec_encode(f->encoder, f->out, STOR_CHUNK_SIZE_MAX + 1, &chunk),
               CAIRN_EINVAL);
}
