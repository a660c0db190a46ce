/*
 * The shard format: a good shard parses; any flipped byte, any truncation and
 * every bad field value (even with its checksum recomputed, as a forger
 * would) is rejected with CAIRN_ECORRUPT, never a crash or an over-read.
 */
#include <stdlib.h>

#include "helpers.h"
#include "stor_int.h"

struct fixture {
    struct stor_keys keys;
    struct stor_codec *codec;
    uint8_t *plain;
    struct stor_chunk chunk;
    uint8_t *shard; /* A copy of shard 1 */
    size_t len;
};

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));
    struct stor_codec_config config = {
        .keys = &f->keys, .k = 4, .m = 2, .cipher = STOR_CIPHER_AES256GCM, .compress = true};

    helper_keys(&f->keys, 7);
    CN_ASSERT(stor_codec_new(&config, &f->codec) == 0);
    f->plain = helper_text(7, 300 << 10);
    CN_ASSERT(stor_codec_encode(f->codec, f->plain, 300 << 10, &f->chunk) == 0);
    f->len = f->chunk.shard_size;
    f->shard = cn_xmalloc(f->len);
    memcpy(f->shard, f->chunk.shards[1], f->len);
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    stor_codec_free(f->codec);
    free(f->plain);
    free(f->shard);
    free(f);
}

static void fix_header_crc(uint8_t *shard)
{
    cn_put_u32(shard + STOR__OFF_HEADER_CRC, cn_crc32c(0, shard, STOR__OFF_HEADER_CRC));
}

/* Parses a copy of the shard with one u8/u32 field set to value, header CRC fixed. */
static int parse_with(struct fixture *f, size_t offset, unsigned width, uint32_t value)
{
    uint8_t *copy = cn_xmalloc(f->len);
    struct stor_shard_header header;
    int rv;

    memcpy(copy, f->shard, f->len);
    if (width == 1) {
        copy[offset] = (uint8_t)value;
    } else if (width == 2) {
        cn_put_u16(copy + offset, (uint16_t)value);
    } else {
        cn_put_u32(copy + offset, value);
    }
    fix_header_crc(copy);
    rv = stor_shard_parse(copy, f->len, &header);
    free(copy);
    return rv;
}

TEST(shard, good_shard_parses, setup, teardown)
{
    struct fixture *f = data;
    struct stor_shard_header header;

    ASSERT_OK(stor_shard_parse(f->shard, f->len, &header));
    ASSERT_EQ(header.index, 1);
    ASSERT_EQ(header.k, 4);
    ASSERT_EQ(header.m, 2);
    ASSERT_EQ(header.plain_size, 300 << 10);
    ASSERT_EQ(header.compression, STOR_COMPRESSION_ZSTD);
    ASSERT_CMP(header.stored_size, <, 300 << 10);
    ASSERT_MEM_EQ(header.id.bytes, f->chunk.id.bytes, STOR_ID_SIZE);
}

TEST(shard, every_flipped_header_byte_rejected, setup, teardown)
{
    struct fixture *f = data;
    struct stor_shard_header header;

    for (size_t i = 0; i < STOR_SHARD_HEADER_SIZE; i++) {
        f->shard[i] ^= 0x01;
        ASSERT_ERR(stor_shard_parse(f->shard, f->len, &header), CAIRN_ECORRUPT);
        f->shard[i] ^= 0x01;
    }
    ASSERT_OK(stor_shard_parse(f->shard, f->len, &header));
}

TEST(shard, flipped_payload_byte_rejected, setup, teardown)
{
    struct fixture *f = data;
    struct stor_shard_header header;
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    for (unsigned i = 0; i < 64; i++) {
        size_t at = STOR_SHARD_HEADER_SIZE + cn_rand_below(&rand, f->len - STOR_SHARD_HEADER_SIZE);
        uint8_t bit = (uint8_t)(1u << cn_rand_below(&rand, 8));

        f->shard[at] ^= bit;
        ASSERT_ERR(stor_shard_parse(f->shard, f->len, &header), CAIRN_ECORRUPT);
        ASSERT_OK(
            stor_shard_header_parse(f->shard, f->len, &header)); /* The header alone is fine. */
        f->shard[at] ^= bit;
    }
}

TEST(shard, truncated_rejected, setup, teardown)
{
    struct fixture *f = data;
    struct stor_shard_header header;

    for (size_t len = 0; len < f->len; len += (len < 256 ? 1 : 4093)) {
        /* An exact-size copy, so ASan catches any read past the end. */
        uint8_t *copy = cn_xmalloc(len + 1);

        memcpy(copy, f->shard, len);
        ASSERT_ERR(stor_shard_parse(copy, len, &header), CAIRN_ECORRUPT);
        free(copy);
    }
    ASSERT_ERR(stor_shard_parse(f->shard, f->len - 1, &header), CAIRN_ECORRUPT);
}

TEST(shard, bad_field_values_rejected, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_ERR(parse_with(f, 44, 1, 0), CAIRN_ECORRUPT);          /* k = 0 */
    ASSERT_ERR(parse_with(f, 44, 1, 17), CAIRN_ECORRUPT);         /* k > 16 */
    ASSERT_ERR(parse_with(f, 44, 1, 255), CAIRN_ECORRUPT);        /* k = 255 */
    ASSERT_ERR(parse_with(f, 45, 1, 5), CAIRN_ECORRUPT);          /* m > 4 */
    ASSERT_ERR(parse_with(f, 84, 1, 6), CAIRN_ECORRUPT);          /* index >= k + m */
    ASSERT_ERR(parse_with(f, 46, 1, 0), CAIRN_ECORRUPT);          /* cipher AUTO */
    ASSERT_ERR(parse_with(f, 46, 1, 9), CAIRN_ECORRUPT);          /* unknown cipher */
    ASSERT_ERR(parse_with(f, 47, 1, 2), CAIRN_ECORRUPT);          /* unknown compression */
    ASSERT_ERR(parse_with(f, 48, 4, UINT32_MAX), CAIRN_ECORRUPT); /* plain size overflows */
    ASSERT_ERR(parse_with(f, 48, 4, STOR_CHUNK_SIZE_MAX + 1), CAIRN_ECORRUPT);
    ASSERT_ERR(parse_with(f, 52, 4, UINT32_MAX), CAIRN_ECORRUPT);      /* stored size overflows */
    ASSERT_ERR(parse_with(f, 52, 4, UINT32_MAX - 15), CAIRN_ECORRUPT); /* + tag wraps to 0 */
    ASSERT_ERR(parse_with(f, 52, 4, 0), CAIRN_ECORRUPT);
    ASSERT_ERR(parse_with(f, 56, 4, UINT32_MAX), CAIRN_ECORRUPT); /* payload size */
    ASSERT_ERR(parse_with(f, 56, 4, 0), CAIRN_ECORRUPT);
    ASSERT_ERR(parse_with(f, 6, 2, 64), CAIRN_ECORRUPT);    /* header size */
    ASSERT_ERR(parse_with(f, 85, 1, 1), CAIRN_ECORRUPT);    /* reserved byte */
    ASSERT_ERR(parse_with(f, 100, 1, 1), CAIRN_ECORRUPT);   /* reserved byte */
    ASSERT_ERR(parse_with(f, 75, 1, 1), CAIRN_ECORRUPT);    /* GCM nonce tail */
    ASSERT_ERR(parse_with(f, 4, 2, 2), CAIRN_EUNSUPPORTED); /* a newer version */
    ASSERT_ERR(parse_with(f, 4, 2, 0), CAIRN_ECORRUPT);
    ASSERT_OK(parse_with(f, 84, 1, 2)); /* The control: the same edit, a good value. */
}
