/*
 * Repair: stor_shard_rebuild() gives back every shard byte for byte, from
 * every set of survivors of every random k + m scheme, with no key; and it
 * refuses too few shards, corrupt ones, and shards of another chunk, scheme
 * or encoding.
 */
#include <stdlib.h>

#include "helpers.h"
#include "stor_int.h"

/* Rebuilds every shard not in given_mask from the shards in it (shuffled), and compares. */
static void assert_rebuilds(const struct stor_chunk *chunk,
                            uint32_t given_mask,
                            struct cn_rand *rand,
                            uint8_t *out)
{
    const uint8_t *shards[STOR_SHARD_COUNT_MAX];
    size_t lens[STOR_SHARD_COUNT_MAX];
    unsigned n = (unsigned)(chunk->k + chunk->m);
    unsigned count = 0;

    for (unsigned i = 0; i < n; i++) {
        if (given_mask & (1u << i)) {
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
    for (unsigned target = 0; target < n; target++) {
        size_t len = 0;
        uint32_t bad = 1;

        if (given_mask & (1u << target)) {
            continue;
        }
        memset(out, 0xa5, chunk->shard_size);
        ASSERT_OK(stor_shard_rebuild(&chunk->id, shards, lens, count, target, out,
                                     STOR_SHARD_SIZE_MAX, &len, &bad));
        ASSERT_EQ(len, chunk->shard_size);
        ASSERT_EQ(bad, 0);
        ASSERT_MEM_EQ(out, chunk->shards[target], chunk->shard_size);
    }
}

/* Every set of at most m missing shards, given all the others. */
static void assert_every_missing_set(const struct stor_chunk *chunk,
                                     struct cn_rand *rand,
                                     uint8_t *out)
{
    unsigned n = (unsigned)(chunk->k + chunk->m);
    uint32_t all = (1u << n) - 1;

    for (uint32_t missing = 0; missing <= all; missing++) {
        if ((unsigned)__builtin_popcount(missing) <= chunk->m) {
            assert_rebuilds(chunk, all & ~missing, rand, out);
        }
    }
}

TEST(rebuild, every_missing_set_random_schemes, NULL, NULL)
{
    uint64_t seed = cn_test_seed();
    uint8_t *random = helper_random(seed, STOR_CHUNK_SIZE_MAX);
    uint8_t *text = helper_text(seed, STOR_CHUNK_SIZE_MAX);
    uint8_t *out = cn_xmalloc(STOR_SHARD_SIZE_MAX);
    struct stor_keys keys;
    struct cn_rand rand;

    helper_keys(&keys, 41);
    cn_rand_seed(&rand, seed);
    for (unsigned t = 0; t < 12; t++) {
        unsigned k = 1 + (unsigned)cn_rand_below(&rand, STOR_K_MAX);
        unsigned m = t < 2 ? STOR_M_MAX : (unsigned)cn_rand_below(&rand, STOR_M_MAX + 1);
        struct stor_codec_config config = {.keys = &keys,
                                           .k = (uint8_t)k,
                                           .m = (uint8_t)m,
                                           .cipher = t % 3 == 0 ? STOR_CIPHER_XCHACHA20POLY1305
                                                                : STOR_CIPHER_AUTO,
                                           .compress = true};
        /* Wide schemes have many missing sets: keep their chunks small. */
        size_t cap = k + m > 12 ? 24 << 10 : STOR_CHUNK_SIZE_AVG;
        size_t len = (size_t)cn_rand_below(&rand, cap + 1);
        struct stor_codec *codec;
        struct stor_chunk chunk;

        ASSERT_OK(stor_codec_new(&config, &codec));
        ASSERT_OK(stor_codec_encode(codec, t % 2 ? text : random, len, &chunk));
        assert_every_missing_set(&chunk, &rand, out);
        stor_codec_free(codec);
    }
    free(random);
    free(text);
    free(out);
}

TEST(rebuild, largest_chunk_and_only_k_given, NULL, NULL)
{
    uint8_t *plain = helper_random(cn_test_seed(), STOR_CHUNK_SIZE_MAX);
    uint8_t *out = cn_xmalloc(STOR_SHARD_SIZE_MAX);
    struct stor_keys keys;
    struct cn_rand rand;

    helper_keys(&keys, 42);
    cn_rand_seed(&rand, cn_test_seed());
    for (unsigned k = 1; k <= 4; k += 3) {
        struct stor_codec_config config = {.keys = &keys, .k = (uint8_t)k, .m = 2};
        struct stor_codec *codec;
        struct stor_chunk chunk;
        uint32_t all = (1u << (k + 2)) - 1;

        ASSERT_OK(stor_codec_new(&config, &codec));
        ASSERT_OK(stor_codec_encode(codec, plain, STOR_CHUNK_SIZE_MAX, &chunk));
        /* Exactly k given, every choice of them. */
        for (uint32_t given = 0; given <= all; given++) {
            if ((unsigned)__builtin_popcount(given) == k) {
                assert_rebuilds(&chunk, given, &rand, out);
            }
        }
        stor_codec_free(codec);
    }
    free(plain);
    free(out);
}

TEST(rebuild, rebuilt_shards_decode, NULL, NULL)
{
    uint8_t *plain = helper_text(cn_test_seed(), STOR_CHUNK_SIZE_AVG);
    uint8_t *rebuilt[2];
    uint8_t *out = cn_xmalloc(STOR_CHUNK_SIZE_MAX);
    struct stor_codec_config config;
    struct stor_keys keys;
    struct stor_codec *encoder;
    struct stor_codec *decoder;
    struct stor_chunk chunk;
    const uint8_t *shards[4];
    size_t lens[4];
    size_t len = 0;
    uint32_t bad = 0;

    helper_keys(&keys, 43);
    config = (struct stor_codec_config){.keys = &keys, .k = 4, .m = 2, .compress = true};
    ASSERT_OK(stor_codec_new(&config, &encoder));
    ASSERT_OK(stor_codec_new(&config, &decoder));
    ASSERT_OK(stor_codec_encode(encoder, plain, STOR_CHUNK_SIZE_AVG, &chunk));
    /* Data shards 0 and 1 lost: rebuild them from 2, 3 and the parity. */
    for (unsigned i = 0; i < 4; i++) {
        shards[i] = chunk.shards[i + 2];
        lens[i] = chunk.shard_size;
    }
    for (unsigned i = 0; i < 2; i++) {
        rebuilt[i] = cn_xmalloc(STOR_SHARD_SIZE_MAX);
        ASSERT_OK(stor_shard_rebuild(&chunk.id, shards, lens, 4, i, rebuilt[i], STOR_SHARD_SIZE_MAX,
                                     &len, NULL));
    }
    /* The chunk decodes from the rebuilt data shards and the survivors. */
    shards[0] = rebuilt[0];
    shards[1] = rebuilt[1];
    ASSERT_OK(stor_codec_decode(decoder, &chunk.id, shards, lens, 4, out, STOR_CHUNK_SIZE_MAX, &len,
                                &bad));
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(len, STOR_CHUNK_SIZE_AVG);
    ASSERT_MEM_EQ(out, plain, len);
    stor_codec_free(encoder);
    stor_codec_free(decoder);
    free(rebuilt[0]);
    free(rebuilt[1]);
    free(plain);
    free(out);
}

struct bad_fixture {
    struct stor_keys keys;
    struct stor_keys keys_v2; /* the same keys, the next key version */
    uint8_t *plain;
    uint8_t *out;
    struct stor_codec *codecs[4];
    struct stor_chunk chunks[4]; /* 4+2; another chunk 4+2; same chunk 4+2, key v2; 3+3 */
};

static void *bad_setup(void)
{
    struct bad_fixture *f = cn_xcalloc(1, sizeof(*f));
    static const unsigned schemes[4][2] = {{4, 2}, {4, 2}, {4, 2}, {3, 3}};

    helper_keys(&f->keys, 44);
    f->keys_v2 = f->keys;
    f->keys_v2.key_version++;
    f->plain = helper_random(44, 200000);
    f->out = cn_xmalloc(STOR_SHARD_SIZE_MAX);
    for (unsigned i = 0; i < 4; i++) {
        struct stor_codec_config config = {.keys = i == 2 ? &f->keys_v2 : &f->keys,
                                           .k = (uint8_t)schemes[i][0],
                                           .m = (uint8_t)schemes[i][1]};

        CN_ASSERT(stor_codec_new(&config, &f->codecs[i]) == 0);
        /* Chunk 1 is other bytes; chunk 2 the same bytes, sealed under another
         * key version (so another key and nonce: another encoding). */
        CN_ASSERT(stor_codec_encode(f->codecs[i], f->plain + (i == 1 ? 1 : 0), 100000,
                                    &f->chunks[i]) == 0);
    }
    return f;
}

static void bad_teardown(void *data)
{
    struct bad_fixture *f = data;

    for (unsigned i = 0; i < 4; i++) {
        stor_codec_free(f->codecs[i]);
    }
    free(f->plain);
    free(f->out);
    free(f);
}

/* Rebuilds shard 0 of chunk 0 from shards 1..4 of chunk 0, with shard slot `at` swapped for other.
 */
static int rebuild_with(
    struct bad_fixture *f, unsigned at, const uint8_t *other, size_t other_len, uint32_t *bad)
{
    const uint8_t *shards[4];
    size_t lens[4];
    size_t len = 0;

    for (unsigned i = 0; i < 4; i++) {
        shards[i] = f->chunks[0].shards[i + 1];
        lens[i] = f->chunks[0].shard_size;
    }
    if (other != NULL) {
        shards[at] = other;
        lens[at] = other_len;
    }
    *bad = 0;
    return stor_shard_rebuild(&f->chunks[0].id, shards, lens, 4, 0, f->out, STOR_SHARD_SIZE_MAX,
                              &len, bad);
}

TEST(rebuild, bad_inputs_refused, bad_setup, bad_teardown)
{
    struct bad_fixture *f = data;
    struct stor_chunk *c = &f->chunks[0];
    uint8_t *copy = cn_xmalloc(c->shard_size);
    const uint8_t *shards[STOR_SHARD_COUNT_MAX + 13];
    size_t lens[STOR_SHARD_COUNT_MAX + 13];
    size_t len = 0;
    uint32_t bad = 0;

    ASSERT_OK(rebuild_with(f, 0, NULL, 0, &bad));
    ASSERT_MEM_EQ(f->out, c->shards[0], c->shard_size);

    /* Another chunk's shard, the same chunk sealed again, another scheme: EINVAL. */
    ASSERT_ERR(rebuild_with(f, 2, f->chunks[1].shards[3], f->chunks[1].shard_size, &bad),
               CAIRN_EINVAL);
    ASSERT_EQ(bad, 1u << 2);
    ASSERT_ERR(rebuild_with(f, 1, f->chunks[2].shards[2], f->chunks[2].shard_size, &bad),
               CAIRN_EINVAL);
    ASSERT_EQ(bad, 1u << 1);
    ASSERT_ERR(rebuild_with(f, 3, f->chunks[3].shards[4], f->chunks[3].shard_size, &bad),
               CAIRN_EINVAL);
    ASSERT_EQ(bad, 1u << 3);
    /* The first shard given sets the encoding: the others are then the odd ones. */
    shards[0] = f->chunks[2].shards[1];
    lens[0] = f->chunks[2].shard_size;
    for (unsigned i = 1; i < 4; i++) {
        shards[i] = c->shards[i + 1];
        lens[i] = c->shard_size;
    }
    ASSERT_ERR(
        stor_shard_rebuild(&c->id, shards, lens, 4, 0, f->out, STOR_SHARD_SIZE_MAX, &len, &bad),
        CAIRN_EINVAL);
    ASSERT_EQ(bad, 0xeu);

    /* A flipped payload byte, a flipped header byte, a truncated shard: ECORRUPT. */
    memcpy(copy, c->shards[2], c->shard_size);
    copy[STOR_SHARD_HEADER_SIZE + 77] ^= 1;
    ASSERT_ERR(rebuild_with(f, 1, copy, c->shard_size, &bad), CAIRN_ECORRUPT);
    ASSERT_EQ(bad, 1u << 1);
    memcpy(copy, c->shards[2], c->shard_size);
    copy[50] ^= 0x80;
    ASSERT_ERR(rebuild_with(f, 1, copy, c->shard_size, &bad), CAIRN_ECORRUPT);
    memcpy(copy, c->shards[2], c->shard_size);
    ASSERT_ERR(rebuild_with(f, 1, copy, c->shard_size - 1, &bad), CAIRN_ECORRUPT);
    ASSERT_ERR(rebuild_with(f, 1, copy, 0, &bad), CAIRN_ECORRUPT);

    /* Fewer than k distinct shards (duplicates do not count), or none. */
    for (unsigned i = 0; i < 4; i++) {
        shards[i] = c->shards[1 + i % 3];
        lens[i] = c->shard_size;
    }
    ASSERT_ERR(
        stor_shard_rebuild(&c->id, shards, lens, 4, 0, f->out, STOR_SHARD_SIZE_MAX, &len, &bad),
        CAIRN_EUNAVAIL);
    ASSERT_EQ(bad, 0);
    ASSERT_ERR(
        stor_shard_rebuild(&c->id, shards, lens, 3, 0, f->out, STOR_SHARD_SIZE_MAX, &len, &bad),
        CAIRN_EUNAVAIL);
    ASSERT_ERR(
        stor_shard_rebuild(&c->id, shards, lens, 0, 0, f->out, STOR_SHARD_SIZE_MAX, &len, &bad),
        CAIRN_EUNAVAIL);

    /* An index past k + m, a buffer too small, too many shards. */
    for (unsigned i = 0; i < 4; i++) {
        shards[i] = c->shards[i + 1];
    }
    ASSERT_ERR(
        stor_shard_rebuild(&c->id, shards, lens, 4, 6, f->out, STOR_SHARD_SIZE_MAX, &len, &bad),
        CAIRN_EINVAL);
    ASSERT_ERR(
        stor_shard_rebuild(&c->id, shards, lens, 4, 0, f->out, c->shard_size - 1, &len, &bad),
        CAIRN_ETOOBIG);
    ASSERT_OK(stor_shard_rebuild(&c->id, shards, lens, 4, 0, f->out, c->shard_size, &len, NULL));
    for (unsigned i = 0; i < CN_ARRAY_SIZE(shards); i++) {
        shards[i] = c->shards[i % 6];
        lens[i] = c->shard_size;
    }
    ASSERT_ERR(stor_shard_rebuild(&c->id, shards, lens, CN_ARRAY_SIZE(shards), 0, f->out,
                                  STOR_SHARD_SIZE_MAX, &len, &bad),
               CAIRN_EINVAL);
    /* A given shard is returned as it is. */
    ASSERT_OK(
        stor_shard_rebuild(&c->id, shards, lens, 6, 5, f->out, STOR_SHARD_SIZE_MAX, &len, &bad));
    ASSERT_MEM_EQ(f->out, c->shards[5], c->shard_size);
    free(copy);
}
