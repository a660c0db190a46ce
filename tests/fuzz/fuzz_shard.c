/*
 * Fuzz target: the shard parser and the decoder behind it. Any bytes given as
 * a shard must be rejected with a CAIRN_E* code, or parse into a header whose
 * sizes match the input, and decoding it must never read out of bounds or
 * return plaintext that does not hash to the chunk id.
 *
 * The seed corpus (corpus/shard/) holds real shards sealed under the fixed
 * keys below, so the fuzzer starts past the checksums and into the AEAD,
 * the erasure decoder and zstd. An input starting with 'M' is several
 * length-prefixed shards of one chunk, for the erasure decoder.
 */
#include <stdlib.h>
#include <string.h>

#include "storage.h"

static struct stor_keys keys;
static struct stor_codec *codec;
static uint8_t *out;

static void init(void)
{
    struct stor_codec_config config = {.keys = &keys, .k = 1, .m = 0, .compress = true};

    memset(keys.master_key, 0x11, sizeof(keys.master_key));
    memset(keys.dedup_key, 0x22, sizeof(keys.dedup_key));
    keys.key_version = 1;
    CN_ASSERT(stor_codec_new(&config, &codec) == 0);
    out = malloc(STOR_CHUNK_SIZE_MAX);
    CN_ASSERT(out != NULL);
}

/* Input "M" then (u32 length, bytes)...: up to 8 shards of one chunk, for the
 * erasure decoder; the chunk id is taken from the first shard's header bytes. */
static void decode_many(const uint8_t *data, size_t size)
{
    const uint8_t *shards[8];
    size_t lens[8];
    unsigned count = 0;
    struct stor_id id;
    size_t len = 0;
    uint32_t bad = 0;
    int rv;

    data++;
    size--;
    while (count < 8 && size >= 4) {
        size_t n = cn_get_u32(data);

        data += 4;
        size -= 4;
        n = n < size ? n : size;
        shards[count] = data;
        lens[count++] = n;
        data += n;
        size -= n;
    }
    if (count == 0 || lens[0] < 8 + STOR_ID_SIZE) {
        return;
    }
    memcpy(id.bytes, shards[0] + 8, STOR_ID_SIZE);
    rv = stor_codec_decode(codec, &id, shards, lens, count, out, STOR_CHUNK_SIZE_MAX, &len, &bad);
    if (rv == 0) {
        CN_ASSERT(len <= STOR_CHUNK_SIZE_MAX);
        CN_ASSERT(bad < (1u << count));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct stor_shard_header header;
    const uint8_t *shards[1] = {data};
    size_t len = 0;
    uint32_t bad = 0;
    int rv;

    if (codec == NULL) {
        init();
    }
    if (size > 0 && data[0] == 'M') {
        decode_many(data, size);
        return 0;
    }
    rv = stor_shard_header_parse(data, size, &header);
    if (rv == 0) {
        CN_ASSERT(header.k >= 1 && header.k <= STOR_K_MAX);
        CN_ASSERT(header.plain_size <= STOR_CHUNK_SIZE_MAX);
    }
    rv = stor_shard_parse(data, size, &header);
    if (rv != 0) {
        CN_ASSERT(rv == CAIRN_ECORRUPT || rv == CAIRN_EUNSUPPORTED);
        return 0;
    }
    CN_ASSERT(size == STOR_SHARD_HEADER_SIZE + (size_t)header.payload_size);
    rv = stor_codec_decode(codec, &header.id, shards, &size, 1, out, STOR_CHUNK_SIZE_MAX, &len,
                           &bad);
    if (rv == 0) {
        CN_ASSERT(len == header.plain_size);
        CN_ASSERT(header.k == 1);
    }
    return 0;
}
