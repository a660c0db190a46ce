/* Test helpers for the storage tests (helpers.h). */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

void helper_keys(struct stor_keys *keys, uint64_t seed)
{
    struct cn_rand rand;

    cn_rand_seed(&rand, seed);
    cn_rand_fill(&rand, keys->master_key, sizeof(keys->master_key));
    cn_rand_fill(&rand, keys->dedup_key, sizeof(keys->dedup_key));
    keys->key_version = 1;
}

uint8_t *helper_random(uint64_t seed, size_t len)
{
    struct cn_rand rand;
    uint8_t *data = cn_xmalloc(len + 1);

    cn_rand_seed(&rand, seed);
    cn_rand_fill(&rand, data, len);
    return data;
}

uint8_t *helper_text(uint64_t seed, size_t len)
{
    static const char *words[] = {"the",    "cairn", "stores",  "files",  "on",    "your",
                                  "own",    "disks", "and",     "chunks", "them",  "into",
                                  "shards", "with",  "parity",  "so",     "a",     "node",
                                  "may",    "fail",  "without", "losing", "data",  "encrypted",
                                  "at",     "rest",  "lorem",   "ipsum",  "dolor", "sit"};
    struct cn_rand rand;
    uint8_t *data = cn_xmalloc(len + 1);
    size_t at = 0;

    cn_rand_seed(&rand, seed);
    while (at < len) {
        const char *word = words[cn_rand_below(&rand, CN_ARRAY_SIZE(words))];
        size_t n = CN_MIN(strlen(word), len - at);

        memcpy(data + at, word, n);
        at += n;
        if (at < len) {
            data[at++] = cn_rand_below(&rand, 12) == 0 ? '\n' : ' ';
        }
    }
    return data;
}

static void cuts_add(struct helper_cuts *cuts, size_t end)
{
    cuts->ends = cn_xrealloc(cuts->ends, (cuts->count + 1) * sizeof(*cuts->ends));
    cuts->ends[cuts->count++] = end;
}

void helper_chunk(const uint8_t *data, size_t len, uint64_t split_seed, struct helper_cuts *cuts)
{
    struct stor_chunker chunker;
    struct cn_rand rand;
    size_t at = 0;
    size_t piece_end = len;
    bool boundary;

    memset(cuts, 0, sizeof(*cuts));
    cn_rand_seed(&rand, split_seed);
    stor_chunker_init(&chunker);
    while (at < len) {
        if (split_seed != 0) {
            /* Pieces from 1 byte to 600 KiB, tiny ones often. */
            size_t piece = cn_rand_below(&rand, 4) == 0 ? 1 + cn_rand_below(&rand, 64)
                                                        : 1 + cn_rand_below(&rand, 600 << 10);
            piece_end = CN_MIN(len, at + piece);
        }
        at += stor_chunker_next(&chunker, data + at, piece_end - at, &boundary);
        if (boundary) {
            cuts_add(cuts, at);
        }
    }
    if (cuts->count == 0 || cuts->ends[cuts->count - 1] != len) {
        if (len > 0) {
            cuts_add(cuts, len);
        }
    }
}

void helper_cuts_close(struct helper_cuts *cuts)
{
    free(cuts->ends);
    memset(cuts, 0, sizeof(*cuts));
}

int helper_stream_cb(void *data, const struct stor_chunk *chunk)
{
    struct helper_stream *stream = data;
    struct helper_chunk *copy;

    if (stream->count == stream->cap) {
        stream->cap = stream->cap == 0 ? 8 : 2 * stream->cap;
        stream->chunks = cn_xrealloc(stream->chunks, stream->cap * sizeof(*stream->chunks));
    }
    copy = &stream->chunks[stream->count++];
    memset(copy, 0, sizeof(*copy));
    copy->id = chunk->id;
    copy->plain_size = chunk->plain_size;
    copy->shard_size = chunk->shard_size;
    copy->shard_count = (unsigned)(chunk->k + chunk->m);
    for (unsigned i = 0; i < copy->shard_count; i++) {
        copy->shards[i] = cn_xmalloc(chunk->shard_size);
        memcpy(copy->shards[i], chunk->shards[i], chunk->shard_size);
    }
    return 0;
}

void helper_stream_close(struct helper_stream *stream)
{
    for (size_t c = 0; c < stream->count; c++) {
        for (unsigned i = 0; i < stream->chunks[c].shard_count; i++) {
            free(stream->chunks[c].shards[i]);
        }
    }
    free(stream->chunks);
    memset(stream, 0, sizeof(*stream));
}
