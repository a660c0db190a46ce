/*
 * The chunker: FastCDC (Xia et al., 2016/2020) with normalized chunking.
 *
 * The happy path for one chunk: the first STOR_CHUNK_SIZE_MIN bytes are taken
 * without looking at them; from there a gear hash (h = (h << 1) + gear[byte])
 * rolls over the bytes, and the chunk ends after the first byte where the
 * hash's top bits are all zero. Before STOR_CHUNK_SIZE_AVG the mask is strict
 * (MASK_SMALL, 22 bits), after it loose (MASK_LARGE, 18 bits): this
 * "normalization" pulls chunk sizes towards the average. At STOR_CHUNK_SIZE_MAX
 * the chunk ends whatever the hash says.
 *
 * Streaming: the whole state is the hash and the position in the chunk, so
 * feeding the bytes in any split gives the boundaries of one big buffer. The
 * gear table is a constant generated once (gear.inc): boundaries are part of
 * the dedup contract between machines and releases, so it never changes.
 *
 * Possible failure modes: none; any input is valid.
 */
#include "stor_int.h"

/* Top bits of the gear hash: the top bit depends on the last 64 bytes. */
#define MASK_SMALL (~0ull << (64 - 22))
#define MASK_LARGE (~0ull << (64 - 18))

static_assert(STOR_CHUNK_SIZE_AVG == 1u << 20, "the masks are tuned for a 1 MiB average");

static const uint64_t gear[256] = {
#include "gear.inc"
};

void stor_chunker_init(struct stor_chunker *chunker)
{
    chunker->hash = 0;
    chunker->position = 0;
}

/* One step of the gear hash; true if the chunk may end after this byte. */
#define GEAR_STEP(h, byte, mask) ((h) = ((h) << 1) + gear[(byte)], ((h) & (mask)) == 0)

/*
 * Rolls the hash over data[0..len); returns the bytes taken, the cut byte
 * included if there is one. Unrolled by four, every byte still tested: the
 * loop's own counting was a third of its instructions.
 */
static size_t roll(uint64_t *hash, const uint8_t *data, size_t len, uint64_t mask, bool *cut)
{
    uint64_t h = *hash;
    size_t i = 0;

    for (; i + 4 <= len; i += 4) {
        if (GEAR_STEP(h, data[i], mask)) {
            i += 1;
            goto found;
        }
        if (GEAR_STEP(h, data[i + 1], mask)) {
            i += 2;
            goto found;
        }
        if (GEAR_STEP(h, data[i + 2], mask)) {
            i += 3;
            goto found;
        }
        if (GEAR_STEP(h, data[i + 3], mask)) {
            i += 4;
            goto found;
        }
    }
    for (; i < len; i++) {
        if (GEAR_STEP(h, data[i], mask)) {
            i += 1;
            goto found;
        }
    }
    *hash = h;
    return len;

found:
    *cut = true;
    *hash = h;
    return i;
}

size_t stor_chunker_next(struct stor_chunker *chunker,
                         const uint8_t *data,
                         size_t len,
                         bool *boundary)
{
    uint64_t position = chunker->position;
    size_t taken = 0;
    size_t n;
    bool cut = false;

    CN_ASSERT(position < STOR_CHUNK_SIZE_MAX);
    CN_ASSERT(data != NULL || len == 0);
    if (position < STOR_CHUNK_SIZE_MIN) {
        n = (size_t)CN_MIN((uint64_t)len, STOR_CHUNK_SIZE_MIN - position);
        taken += n;
        position += n;
    }
    if (position >= STOR_CHUNK_SIZE_MIN && position < STOR_CHUNK_SIZE_AVG && taken < len) {
        n = (size_t)CN_MIN((uint64_t)(len - taken), STOR_CHUNK_SIZE_AVG - position);
        n = roll(&chunker->hash, data + taken, n, MASK_SMALL, &cut);
        taken += n;
        position += n;
    }
    if (!cut && position >= STOR_CHUNK_SIZE_AVG && taken < len) {
        n = (size_t)CN_MIN((uint64_t)(len - taken), STOR_CHUNK_SIZE_MAX - position);
        n = roll(&chunker->hash, data + taken, n, MASK_LARGE, &cut);
        taken += n;
        position += n;
    }
    CN_ASSERT(position <= STOR_CHUNK_SIZE_MAX);
    *boundary = cut || position == STOR_CHUNK_SIZE_MAX;
    if (*boundary) {
        stor_chunker_init(chunker);
    } else {
        chunker->position = position;
    }
    return taken;
}

uint64_t stor__gear_roll(uint64_t hash, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        hash = (hash << 1) + gear[data[i]];
    }
    return hash;
}

size_t stor__gear_candidates(uint64_t *hash,
                             const uint8_t *data,
                             size_t len,
                             uint32_t *offsets,
                             uint8_t *small,
                             size_t cap,
                             bool *overflow)
{
    size_t count = 0;
    size_t at = 0;

    while (at < len) {
        bool cut = false;

        at += roll(hash, data + at, len - at, MASK_LARGE, &cut);
        if (!cut) {
            break;
        }
        if (count == cap) {
            *overflow = true;
            break;
        }
        offsets[count] = (uint32_t)(at - 1);
        small[count] = (*hash & MASK_SMALL) == 0;
        count++;
    }
    return count;
}

bool stor__gear_cuts(uint64_t hash, bool small)
{
    return (hash & (small ? MASK_SMALL : MASK_LARGE)) == 0;
}
