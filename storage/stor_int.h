/*
 * Internal to storage/: the stages of the codec, shared between its files.
 * Nothing here is part of the module's public face (storage.h).
 */
#ifndef STOR_INT_H
#define STOR_INT_H

#include "storage.h"

/* Byte offsets in the shard header (docs/storage.md has the table). */
#define STOR__MAGIC           "CNSH"
#define STOR__VERSION         1
#define STOR__OFF_AAD_END     84 /* Bytes [0, 84) are the chunk's header: the AEAD's AAD. */
#define STOR__OFF_INDEX       84
#define STOR__OFF_PAYLOAD_CRC 88
#define STOR__OFF_HEADER_CRC  124

static_assert(STOR__OFF_HEADER_CRC + 4 == STOR_SHARD_HEADER_SIZE, "header layout");

/* The nonce sizes of the two AEADs; the header has room for the larger. */
#define STOR__NONCE_SIZE_GCM     12
#define STOR__NONCE_SIZE_XCHACHA 24

/* Payload bytes per shard for a sealed chunk of sealed_size bytes split k ways. */
static inline uint32_t stor__payload_size(uint32_t sealed_size, unsigned k)
{
    return (uint32_t)((sealed_size + k - 1) / k);
}

/* Writes the header of every shard of an encoded chunk; header holds the chunk's fields. */
void stor__shard_header_write(uint8_t *shard, const struct stor_shard_header *header);

/* Derives the chunk's encryption key from the master key, its version and the chunk id. */
void stor__chunk_key(const struct stor_keys *keys, const struct stor_id *id, uint8_t key[32]);

/* Reed-Solomon (ISA-L, Cauchy). Tables for one k + m, computed once. */
struct stor__ec {
    uint8_t k;
    uint8_t m;
    uint8_t matrix[STOR_SHARD_COUNT_MAX * STOR_K_MAX];
    uint8_t tables[STOR_K_MAX * STOR_M_MAX * 32];
};

void stor__ec_init(struct stor__ec *ec, unsigned k, unsigned m);
/* Computes the m parity shards from the k data shards, len bytes each. */
void stor__ec_encode(const struct stor__ec *ec, size_t len, uint8_t **data, uint8_t **parity);
/*
 * Rebuilds the missing data shards. present[i] is shard i (NULL if missing),
 * for i < k + m; out[j] receives data shard j when present[j] is NULL. At least
 * k shards must be present. CAIRN_EUNAVAIL otherwise, CAIRN_EINTERNAL if the
 * matrix does not invert (it always does for Cauchy matrices).
 */
int stor__ec_decode(const struct stor__ec *ec, size_t len, uint8_t *const *present, uint8_t **out);
/*
 * Computes shard index (data or parity) from the first k present shards
 * (present[i] is shard i or NULL, for i < k + m) into out, len bytes.
 * CAIRN_EUNAVAIL with fewer than k present, CAIRN_EINTERNAL as above.
 */
int stor__ec_rebuild(
    const struct stor__ec *ec, size_t len, uint8_t *const *present, unsigned index, uint8_t *out);

/* Makes a codec of the same k and m serve config (keys, cipher, level may change),
 * keeping its buffers and their pages; false (codec unchanged) if it cannot. */
bool stor__codec_reuse(struct stor_codec *codec, const struct stor_codec_config *config);

/*
 * The chunker's gear hash, for the pipeline's parallel scan (pipeline.c). The
 * hash at a byte depends only on the STOR__GEAR_WINDOW bytes up to it, so any
 * stretch of a stream can be scanned on its own after rolling over the window
 * before it. stor__gear_roll rolls hash over data. stor__gear_candidates
 * rolls *hash over data and records, in order, the offsets where the loose
 * (after-average) cut condition holds, and in small[] whether the strict one
 * holds too; past cap it stops and sets *overflow. stor__gear_cuts: does hash
 * meet the strict (small) or loose condition?
 */
#define STOR__GEAR_WINDOW 64
uint64_t stor__gear_roll(uint64_t hash, const uint8_t *data, size_t len);
size_t stor__gear_candidates(uint64_t *hash,
                             const uint8_t *data,
                             size_t len,
                             uint32_t *offsets,
                             uint8_t *small,
                             size_t cap,
                             bool *overflow);
bool stor__gear_cuts(uint64_t hash, bool small);

/* Tests only: how many slots the pipelines' cache holds. */
unsigned stor__pipeline_cache_count(void);

/* Tests only: every disk call of put and delete ticks fault, and fails with
 * CAIRN_EIO when it fires (STYLE §19). NULL turns it off. */
void stor__store_set_fault(struct stor_store *store, struct cn_fault *fault);

#endif /* STOR_INT_H */
