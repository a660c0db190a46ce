/*
 * The shard format: a 128-byte header, then the payload.
 *
 *   0  magic "CNSH"        4   version u16, header size u16
 *   8  chunk id [32]       40  key version u32
 *   44 k, m, cipher, compression (u8 each)
 *   48 plain size u32      52  stored size u32 (after compression)
 *   56 payload size u32    60  nonce [24] (GCM uses the first 12)
 *   84 shard index u8, 3 zero bytes
 *   88 payload crc32c u32  92  32 zero bytes
 *   124 header crc32c u32 over bytes [0, 124)
 *
 * Bytes [0, 84) are the same in every shard of a chunk and are the AEAD's
 * associated data, so a header edited to match a forged checksum still fails
 * authentication. Integers are little-endian.
 *
 * Parsing treats every byte as hostile: each field is checked against its
 * limit and against the others (the payload size must be what k and the
 * stored size imply) before any size is used, and both checksums are
 * verified. Possible failure modes: any mismatch is CAIRN_ECORRUPT; a version
 * newer than ours is CAIRN_EUNSUPPORTED.
 */
#include <string.h>

#include "stor_int.h"

static bool all_zero(const uint8_t *p, size_t len)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < len; i++) {
        acc |= p[i];
    }
    return acc == 0;
}

void stor__shard_header_write(uint8_t *shard, const struct stor_shard_header *header)
{
    CN_ASSERT(header->k >= 1 && header->k <= STOR_K_MAX);
    CN_ASSERT(header->m <= STOR_M_MAX);
    CN_ASSERT(header->index < header->k + header->m);
    memset(shard, 0, STOR_SHARD_HEADER_SIZE);
    memcpy(shard, STOR__MAGIC, 4);
    cn_put_u16(shard + 4, STOR__VERSION);
    cn_put_u16(shard + 6, STOR_SHARD_HEADER_SIZE);
    memcpy(shard + 8, header->id.bytes, STOR_ID_SIZE);
    cn_put_u32(shard + 40, header->key_version);
    shard[44] = header->k;
    shard[45] = header->m;
    shard[46] = header->cipher;
    shard[47] = header->compression;
    cn_put_u32(shard + 48, header->plain_size);
    cn_put_u32(shard + 52, header->stored_size);
    cn_put_u32(shard + 56, header->payload_size);
    memcpy(shard + 60, header->nonce, sizeof(header->nonce));
    shard[STOR__OFF_INDEX] = header->index;
    cn_put_u32(shard + STOR__OFF_PAYLOAD_CRC, header->payload_crc);
    cn_put_u32(shard + STOR__OFF_HEADER_CRC, cn_crc32c(0, shard, STOR__OFF_HEADER_CRC));
}

static void read_fields(const uint8_t *shard, struct stor_shard_header *header)
{
    memcpy(header->id.bytes, shard + 8, STOR_ID_SIZE);
    header->key_version = cn_get_u32(shard + 40);
    header->k = shard[44];
    header->m = shard[45];
    header->cipher = shard[46];
    header->compression = shard[47];
    header->plain_size = cn_get_u32(shard + 48);
    header->stored_size = cn_get_u32(shard + 52);
    header->payload_size = cn_get_u32(shard + 56);
    memcpy(header->nonce, shard + 60, sizeof(header->nonce));
    header->index = shard[STOR__OFF_INDEX];
    header->payload_crc = cn_get_u32(shard + STOR__OFF_PAYLOAD_CRC);
}

/* Each field within its limits, and consistent with the others. */
static bool fields_valid(const struct stor_shard_header *header)
{
    if (header->k < 1 || header->k > STOR_K_MAX || header->m > STOR_M_MAX) {
        return false;
    }
    if (header->index >= header->k + header->m) {
        return false;
    }
    if (header->cipher != STOR_CIPHER_AES256GCM &&
        header->cipher != STOR_CIPHER_XCHACHA20POLY1305) {
        return false;
    }
    if (header->plain_size > STOR_CHUNK_SIZE_MAX) {
        return false;
    }
    if (header->compression == STOR_COMPRESSION_NONE) {
        if (header->stored_size != header->plain_size) {
            return false;
        }
    } else if (header->compression == STOR_COMPRESSION_ZSTD) {
        /* Compression is kept only when it shrinks the chunk. */
        if (header->stored_size == 0 || header->stored_size >= header->plain_size) {
            return false;
        }
    } else {
        return false;
    }
    if (header->cipher == STOR_CIPHER_AES256GCM &&
        !all_zero(header->nonce + STOR__NONCE_SIZE_GCM,
                  sizeof(header->nonce) - STOR__NONCE_SIZE_GCM)) {
        return false;
    }
    return header->payload_size ==
           stor__payload_size(header->stored_size + STOR_AEAD_TAG_SIZE, header->k);
}

int stor_shard_header_parse(const uint8_t *shard, size_t len, struct stor_shard_header *header)
{
    CN_ASSERT(shard != NULL || len == 0);
    if (len < STOR_SHARD_HEADER_SIZE || memcmp(shard, STOR__MAGIC, 4) != 0) {
        return CAIRN_ECORRUPT;
    }
    if (cn_get_u32(shard + STOR__OFF_HEADER_CRC) != cn_crc32c(0, shard, STOR__OFF_HEADER_CRC)) {
        return CAIRN_ECORRUPT;
    }
    if (cn_get_u16(shard + 4) != STOR__VERSION) {
        return cn_get_u16(shard + 4) > STOR__VERSION ? CAIRN_EUNSUPPORTED : CAIRN_ECORRUPT;
    }
    if (cn_get_u16(shard + 6) != STOR_SHARD_HEADER_SIZE) {
        return CAIRN_ECORRUPT;
    }
    if (!all_zero(shard + STOR__OFF_INDEX + 1, 3) ||
        !all_zero(shard + STOR__OFF_PAYLOAD_CRC + 4,
                  STOR__OFF_HEADER_CRC - STOR__OFF_PAYLOAD_CRC - 4)) {
        return CAIRN_ECORRUPT;
    }
    read_fields(shard, header);
    return fields_valid(header) ? 0 : CAIRN_ECORRUPT;
}

int stor_shard_parse(const uint8_t *shard, size_t len, struct stor_shard_header *header)
{
    int rv = stor_shard_header_parse(shard, len, header);

    if (rv != 0) {
        return rv;
    }
    CN_ASSERT(header->payload_size <= STOR_SHARD_PAYLOAD_MAX);
    if (len != STOR_SHARD_HEADER_SIZE + (size_t)header->payload_size) {
        return CAIRN_ECORRUPT;
    }
    if (cn_crc32c(0, shard + STOR_SHARD_HEADER_SIZE, header->payload_size) != header->payload_crc) {
        return CAIRN_ECORRUPT;
    }
    return 0;
}
