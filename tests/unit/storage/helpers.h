/*
 * Shared by the storage tests: keys, test data (random and text-like), and a
 * way to encode whole streams into memory.
 */
#ifndef STORAGE_TEST_HELPERS_H
#define STORAGE_TEST_HELPERS_H

#include "storage.h"
#include "test.h"

/* Deterministic keys from a seed. */
void helper_keys(struct stor_keys *keys, uint64_t seed);

/* len bytes of random data, or of text (words and spaces: compresses about 3:1). */
uint8_t *helper_random(uint64_t seed, size_t len);
uint8_t *helper_text(uint64_t seed, size_t len);

/* Chunk boundaries (end offsets) of data, fed in one buffer or in random pieces. */
struct helper_cuts {
    size_t *ends;
    size_t count;
};
void helper_chunk(const uint8_t *data, size_t len, uint64_t split_seed, struct helper_cuts *cuts);
void helper_cuts_close(struct helper_cuts *cuts);

/* A whole stream, encoded: every chunk's shards, copied out of the encoder's callback. */
struct helper_chunk {
    struct stor_id id;
    uint32_t plain_size;
    size_t shard_size;
    unsigned shard_count;
    uint8_t *shards[STOR_SHARD_COUNT_MAX];
};
struct helper_stream {
    struct helper_chunk *chunks;
    size_t count;
    size_t cap;
};
int helper_stream_cb(void *data, const struct stor_chunk *chunk);
void helper_stream_close(struct helper_stream *stream);

#endif
