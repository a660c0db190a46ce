/* The per-request arena: alignment, big and small allocations, reuse after close. */
#include "gw_int.h"
#include "test.h"

TEST(arena, small_and_large_allocations, NULL, NULL)
{
    struct gw__arena arena;
    uint8_t *small[200];
    uint8_t *big;
    int i;

    gw__arena_init(&arena);
    for (i = 0; i < 200; i++) {
        small[i] = gw__arena_alloc(&arena, (size_t)i + 1);
        ASSERT_EQ((uintptr_t)small[i] % 16, 0);
        memset(small[i], i, (size_t)i + 1);
    }
    big = gw__arena_alloc(&arena, 100000);
    ASSERT_EQ((uintptr_t)big % 16, 0);
    memset(big, 0xee, 100000);
    /* Earlier allocations are untouched by later ones. */
    for (i = 0; i < 200; i++) {
        ASSERT_EQ(small[i][0], (uint8_t)i);
        ASSERT_EQ(small[i][i], (uint8_t)i);
    }
    ASSERT_CMP(arena.total_size, >=, 100000);
    gw__arena_close(&arena);
    ASSERT_TRUE(arena.head == NULL);
    ASSERT_EQ(arena.total_size, 0);
    /* Usable again after close. */
    ASSERT_TRUE(gw__arena_alloc(&arena, 10) != NULL);
    gw__arena_close(&arena);
}

TEST(arena, big_first_then_small, NULL, NULL)
{
    struct gw__arena arena;
    uint8_t *big, *small;

    gw__arena_init(&arena);
    big = gw__arena_alloc(&arena, 5000);
    small = gw__arena_alloc(&arena, 16);
    ASSERT_TRUE(small < big || small >= big + 5000);
    memset(big, 1, 5000);
    memset(small, 2, 16);
    ASSERT_EQ(big[4999], 1);
    gw__arena_close(&arena);
}
