/*
 * The per-request arena (STYLE §10b): what a request allocates lives as long
 * as the request, and is freed in one go with it.
 *
 * The happy path: allocations bump a pointer inside a 4 KiB block; when a
 * block is full a new one is chained in front; an allocation larger than a
 * quarter block gets a block of its own behind the head, so the head keeps
 * its free space. gw__arena_close() frees the chain.
 *
 * Possible failure modes: out of memory aborts (cn_xmalloc), as for all
 * daemon bookkeeping; what a request can allocate is bounded by the request
 * limits, not here.
 */
#include <stdlib.h>

#include "gw_int.h"

#define ALIGN 16u

struct gw__arena_block {
    struct gw__arena_block *next;
    size_t size; /* Usable bytes after the header */
    _Alignas(16) unsigned char data[];
};

static_assert(GW__ARENA_BLOCK_SIZE % ALIGN == 0, "blocks keep alignment");

void gw__arena_init(struct gw__arena *arena)
{
    arena->head = NULL;
    arena->used = 0;
    arena->total_size = 0;
}

void gw__arena_close(struct gw__arena *arena)
{
    struct gw__arena_block *block = arena->head;

    while (block != NULL) {
        struct gw__arena_block *next = block->next;
        free(block);
        block = next;
    }
    gw__arena_init(arena);
}

static struct gw__arena_block *block_new(size_t size)
{
    struct gw__arena_block *block = cn_xmalloc(sizeof(*block) + size);

    block->next = NULL;
    block->size = size;
    return block;
}

void *gw__arena_alloc(struct gw__arena *arena, size_t size)
{
    struct gw__arena_block *block;
    size_t rounded = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);

    CN_ASSERT(rounded >= size); /* no overflow */
    arena->total_size += rounded;
    if (rounded > GW__ARENA_BLOCK_SIZE / 4) {
        /* A big one: its own block, behind the head, which keeps its room. */
        block = block_new(rounded);
        if (arena->head == NULL) {
            arena->head = block;
            arena->used = rounded;
        } else {
            block->next = arena->head->next;
            arena->head->next = block;
        }
        return block->data;
    }
    if (arena->head == NULL || arena->head->size - arena->used < rounded) {
        block = block_new(GW__ARENA_BLOCK_SIZE);
        block->next = arena->head;
        arena->head = block;
        arena->used = 0;
    }
    CN_ASSERT(arena->used + rounded <= arena->head->size);
    arena->used += rounded;
    return arena->head->data + arena->used - rounded;
}
