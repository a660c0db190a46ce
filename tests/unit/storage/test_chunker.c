/*
 * The chunker: sizes within bounds, boundaries independent of how the input
 * is split, an edit moves only the chunks around it, and boundaries frozen
 * forever (a regression value computed once).
 */
#include <stdlib.h>

#include "helpers.h"

#define MIB (1u << 20)

static void assert_sizes_in_bounds(const struct helper_cuts *cuts)
{
    size_t start = 0;

    for (size_t i = 0; i < cuts->count; i++) {
        size_t size = cuts->ends[i] - start;

        ASSERT_CMP(size, <=, STOR_CHUNK_SIZE_MAX);
        if (i + 1 < cuts->count) {
            ASSERT_CMP(size, >=, STOR_CHUNK_SIZE_MIN); /* Only the last may be short. */
        }
        start = cuts->ends[i];
    }
}

TEST(chunker, sizes_in_bounds_random, NULL, NULL)
{
    size_t len = 64 * MIB;
    uint8_t *bytes = helper_random(cn_test_seed(), len);
    struct helper_cuts cuts;

    helper_chunk(bytes, len, 0, &cuts);
    assert_sizes_in_bounds(&cuts);
    /* Normalized chunking keeps the average near 1 MiB: 64 MiB is 40..80 chunks. */
    ASSERT_CMP(cuts.count, >=, 40);
    ASSERT_CMP(cuts.count, <=, 80);
    helper_cuts_close(&cuts);
    free(bytes);
}

TEST(chunker, zeros_give_max_chunks, NULL, NULL)
{
    size_t len = 10 * MIB;
    uint8_t *bytes = cn_xcalloc(1, len);
    struct helper_cuts cuts;

    helper_chunk(bytes, len, 0, &cuts);
    assert_sizes_in_bounds(&cuts);
    ASSERT_EQ(cuts.count, 3);
    ASSERT_EQ(cuts.ends[0], STOR_CHUNK_SIZE_MAX);
    ASSERT_EQ(cuts.ends[1], 2 * STOR_CHUNK_SIZE_MAX);
    ASSERT_EQ(cuts.ends[2], len);
    helper_cuts_close(&cuts);
    free(bytes);
}

TEST(chunker, split_invariant, NULL, NULL)
{
    size_t len = 24 * MIB;
    uint64_t seed = cn_test_seed();
    uint8_t *bytes = helper_text(seed, len);
    struct helper_cuts whole;
    struct helper_cuts split;

    helper_chunk(bytes, len, 0, &whole);
    for (uint64_t s = 1; s <= 3; s++) {
        helper_chunk(bytes, len, seed + s, &split);
        ASSERT_EQ(split.count, whole.count);
        ASSERT_MEM_EQ(split.ends, whole.ends, whole.count * sizeof(size_t));
        helper_cuts_close(&split);
    }
    helper_cuts_close(&whole);
    free(bytes);
}

/* How many chunks of b (by content) are not chunks of a. */
static size_t new_chunks(const uint8_t *a,
                         const struct helper_cuts *ca,
                         const uint8_t *b,
                         const struct helper_cuts *cb)
{
    size_t count = 0;
    size_t start_b = 0;

    for (size_t i = 0; i < cb->count; i++) {
        size_t size_b = cb->ends[i] - start_b;
        bool found = false;
        size_t start_a = 0;

        for (size_t j = 0; j < ca->count && !found; j++) {
            size_t size_a = ca->ends[j] - start_a;

            found = size_a == size_b && memcmp(a + start_a, b + start_b, size_b) == 0;
            start_a = ca->ends[j];
        }
        count += found ? 0 : 1;
        start_b = cb->ends[i];
    }
    return count;
}

TEST(chunker, insert_moves_at_most_3_chunks, NULL, NULL)
{
    size_t len = 64 * MIB;
    uint64_t seed = cn_test_seed();
    uint8_t *a = helper_random(seed, len);
    uint8_t *b = cn_xmalloc(len + 1);
    struct helper_cuts ca;
    struct helper_cuts cb;
    size_t middle = len / 2 + (size_t)(seed % 4096);

    memcpy(b, a, middle);
    b[middle] = 0x5a;
    memcpy(b + middle + 1, a + middle, len - middle);
    helper_chunk(a, len, 0, &ca);
    helper_chunk(b, len + 1, 0, &cb);
    assert_sizes_in_bounds(&cb);
    ASSERT_CMP(new_chunks(a, &ca, b, &cb), >=, 1);
    ASSERT_CMP(new_chunks(a, &ca, b, &cb), <=, 3);
    helper_cuts_close(&ca);
    helper_cuts_close(&cb);
    free(a);
    free(b);
}

/*
 * The boundaries of a fixed input, computed once when the gear table was
 * frozen. If this fails, the chunker changed: every stored file would stop
 * deduplicating against new uploads. Do not update the numbers; fix the code.
 */
TEST(chunker, boundaries_frozen, NULL, NULL)
{
    static const size_t expected[] = {1050611,  3722367,  4854063,  5980050,  7142195,
                                      8229847,  10085668, 11152669, 12810504, 14189592,
                                      15286420, 16482820, 16777216};
    size_t len = 16 * MIB;
    uint8_t *bytes = helper_random(42, len);
    struct helper_cuts cuts;

    helper_chunk(bytes, len, 0, &cuts);
    ASSERT_EQ(cuts.count, CN_ARRAY_SIZE(expected));
    ASSERT_MEM_EQ(cuts.ends, expected, sizeof(expected));
    helper_cuts_close(&cuts);
    free(bytes);
}

TEST(chunker, empty_and_tiny, NULL, NULL)
{
    struct stor_chunker chunker;
    uint8_t byte = 7;
    bool boundary = true;

    stor_chunker_init(&chunker);
    ASSERT_EQ(stor_chunker_next(&chunker, NULL, 0, &boundary), 0);
    ASSERT_FALSE(boundary);
    ASSERT_EQ(stor_chunker_next(&chunker, &byte, 1, &boundary), 1);
    ASSERT_FALSE(boundary);
}
