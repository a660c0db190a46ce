/*
 * Repair: rebuilds one shard of a chunk, byte for byte as it was written,
 * from any k of its other shards, without any key.
 *
 * The happy path: parse and verify every shard given; check that they all are
 * of the chunk asked for and of one encoding (bytes [0, 84) of the header, the
 * AEAD's AAD, are the same in every shard of an encoding: id, key version,
 * scheme, cipher, sizes, nonce); take the first k distinct indexes; compute
 * the wanted shard's payload with Reed-Solomon (any shard, data or parity, is
 * a linear combination of any k others); write its header from the same
 * fields with its own index and payload CRC. Nothing is decrypted or
 * re-encrypted, so a node can repair holding no key, and the result is the
 * original shard (re-encoding the plaintext would draw a new nonce).
 *
 * Possible failure modes:
 * - a shard that does not verify (checksum, truncation): CAIRN_ECORRUPT, and
 *   its bit in *bad, so the caller drops it and asks another node;
 * - a shard of another chunk, or of another encoding of this one (a race
 *   between two uploads of the same chunk): CAIRN_EINVAL, its bit in *bad;
 * - fewer than k distinct shards: CAIRN_EUNAVAIL;
 * - shards that verify but were forged: the rebuilt shard carries the forgery,
 *   its CRCs are fine, and the AEAD catches it when the chunk is decoded.
 */
#include <string.h>

#include "stor_int.h"

#define REBUILD_SHARDS_MAX 32 /* bits of *bad */

/* Checks every shard; fills present[] and the reference header. */
static int gather_shards(const struct stor_id *id,
                         const uint8_t *const *shards,
                         const size_t *shard_lens,
                         unsigned shard_count,
                         struct stor_shard_header *ref,
                         const uint8_t **present,
                         uint32_t *bad)
{
    const uint8_t *aad = NULL;
    struct stor_shard_header header;
    unsigned distinct = 0;
    int rv = 0;

    for (unsigned i = 0; i < shard_count; i++) {
        if (stor_shard_parse(shards[i], shard_lens[i], &header) != 0) {
            *bad |= 1u << i;
            rv = CAIRN_ECORRUPT;
            continue;
        }
        if (memcmp(header.id.bytes, id->bytes, STOR_ID_SIZE) != 0 ||
            (aad != NULL && memcmp(aad, shards[i], STOR__OFF_AAD_END) != 0)) {
            *bad |= 1u << i;
            rv = rv != 0 ? rv : CAIRN_EINVAL;
            continue;
        }
        if (aad == NULL) {
            aad = shards[i];
            *ref = header;
        }
        if (present[header.index] == NULL) {
            present[header.index] = shards[i];
            distinct++;
        }
    }
    if (rv != 0) {
        return rv;
    }
    return aad != NULL && distinct >= ref->k ? 0 : CAIRN_EUNAVAIL;
}

int stor_shard_rebuild(const struct stor_id *id,
                       const uint8_t *const *shards,
                       const size_t *shard_lens,
                       unsigned shard_count,
                       unsigned index,
                       uint8_t *out,
                       size_t cap,
                       size_t *len,
                       uint32_t *bad)
{
    const uint8_t *present[STOR_SHARD_COUNT_MAX] = {0};
    uint8_t *payloads[STOR_SHARD_COUNT_MAX];
    struct stor_shard_header header = {0};
    struct stor__ec ec;
    uint32_t bad_mask = 0;
    size_t shard_size;
    int rv;

    if (shard_count > REBUILD_SHARDS_MAX) {
        return CAIRN_EINVAL;
    }
    rv = gather_shards(id, shards, shard_lens, shard_count, &header, present, &bad_mask);
    if (bad != NULL) {
        *bad = bad_mask;
    }
    if (rv != 0) {
        return rv;
    }
    if (index >= (unsigned)(header.k + header.m)) {
        return CAIRN_EINVAL;
    }
    shard_size = STOR_SHARD_HEADER_SIZE + (size_t)header.payload_size;
    if (cap < shard_size) {
        return CAIRN_ETOOBIG;
    }
    if (present[index] != NULL) {
        memmove(out, present[index], shard_size); /* Given and verified: it is the original. */
        *len = shard_size;
        return 0;
    }
    for (unsigned i = 0; i < STOR_SHARD_COUNT_MAX; i++) {
        payloads[i] = present[i] != NULL ? (uint8_t *)present[i] + STOR_SHARD_HEADER_SIZE : NULL;
    }
    stor__ec_init(&ec, header.k, header.m);
    rv = stor__ec_rebuild(&ec, header.payload_size, payloads, index, out + STOR_SHARD_HEADER_SIZE);
    if (rv != 0) {
        return rv;
    }
    header.index = (uint8_t)index;
    header.payload_crc = cn_crc32c(0, out + STOR_SHARD_HEADER_SIZE, header.payload_size);
    stor__shard_header_write(out, &header);
    CN_DEBUG_ASSERT(stor_shard_parse(out, shard_size, &header) == 0);
    *len = shard_size;
    return 0;
}
