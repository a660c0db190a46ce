/*
 * Fuzz target: the shard parser and the decoder behind it. Any bytes given as
 * a shard must be rejected with a CAIRN_E* code, or parse into a header whose
 * sizes match the input, and decoding it must never read out of bounds or
 * return plaintext that does not hash to the chunk id.
 *
 * The seed corpus (corpus/shard/) holds real shards sealed under the fixed
 * keys below, so the fuzzer starts past the checksums and into the AEAD,
 * the erasure decoder and zstd.
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
