/*
 * The streaming pipelines: an encoder (plaintext in, encoded chunks out) and
 * a decoder (shards in, plaintext out), with the codec's work on a pool of
 * worker threads so one stream uses every core.
 *
 * The happy path to encode: the caller's thread runs the chunker (cheap and
 * sequential by nature) and copies each chunk into a free slot; a full slot
 * is queued; a worker encodes it with the slot's own codec (so its output
 * stays valid until delivered); the caller's thread delivers finished slots
 * to the callback strictly in order, and reuses them. There are 2 * N slots
 * for N workers: enough to keep every worker busy while one slot is being
 * filled and one delivered, and a hard bound on memory whatever the file
 * size. With thread_count 1 and no pool, the caller's thread encodes. The
 * workers are a struct stor_pool: the stream's own, or one shared by many
 * streams (a worker touches a slot only between dequeuing it and marking it
 * done under its stream's lock).
 *
 * The decoder is the same machine the other way: push copies a chunk's shards
 * into a slot, a worker decodes, the caller's thread delivers in order.
 *
 * Possible failure modes: a codec or callback error is sticky: the stream
 * stops, the error is returned by this and every later write/push/finish,
 * and free() still waits for the stream's slots and releases everything.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "stor_int.h"

enum slot_state {
    SLOT_FREE,    /* Owned by the caller's thread, empty */
    SLOT_FILLING, /* Owned by the caller's thread, being filled */
    SLOT_QUEUED,  /* Owned by the pool until DONE */
    SLOT_DONE,    /* Back with the caller's thread, to deliver */
};

/*
 * Encoders with this many workers or more chunk on the workers, from a ring
 * (see struct stor_encoder); with fewer, on the caller's thread. The caller's
 * chunking (~0.3 ms per MB with its copy) bounds a stream once the workers'
 * share of the encode (~0.9 ms per MB over N workers) is smaller, from N = 3;
 * below that the ring only adds work (measured at 2 threads: the same
 * throughput, 5-8% more CPU; docs/benchmarks.md).
 */
#define RING_THREADS_MIN 3

/* The encoder with a ring scans it in regions of this size, one job each. */
#define SCAN_REGION     (1u << 20)
#define SCAN_CANDIDATES 256 /* Kept per region; past them the caller rescans it itself */

struct pipe;

struct slot {
    enum slot_state state;
    struct pipe *owner;
    struct slot *next_queued;
    struct stor_codec *codec;
    uint8_t *plain; /* STOR_CHUNK_SIZE_MAX bytes, or NULL for an encoder with a ring */
    size_t plain_len;
    const uint8_t *input; /* Encoder: the chunk's bytes (plain, the ring or its bounce buffer) */
    uint64_t start;       /* Encoder with a ring: the chunk's or region's first stream byte */
    /* A region scan (encoder with a ring): where the loose cut condition holds. */
    bool scan;
    size_t region_len;
    size_t cand_count;
    bool cand_overflow;
    uint32_t cands[SCAN_CANDIDATES]; /* Offsets in the region, ascending */
    uint8_t cand_small[SCAN_CANDIDATES];
    struct stor_chunk chunk; /* Encoder output */
    struct cn_buf shards;    /* Decoder input: copies of the shards */
    size_t shard_lens[32];
    unsigned shard_count;
    struct stor_id id;
    uint32_t bad; /* Decoder: the shards that were unusable */
    int rv;
};

/* Worker threads and their queue of slots, from any number of streams. */
struct stor_pool {
    pthread_mutex_t mutex;
    pthread_cond_t work_cond;
    struct slot *queue_head;
    struct slot *queue_tail;
    bool stopping;
    unsigned started;
    pthread_t threads[STOR_THREADS_MAX];
};

/* One stream's slots, shared by both directions. */
struct pipe {
    struct stor_codec_config codec_config;
    bool decoding;
    unsigned slot_count;
    struct slot *slots;
    struct stor_pool *pool; /* NULL: everything on the caller's thread */
    bool own_pool;          /* Started for this stream, stopped with it */
    uint64_t filled;        /* Slots handed to the pool (or encoded inline) so far */
    uint64_t delivered;     /* Slots delivered so far, in order */
    int error;              /* Sticky */
    pthread_mutex_t mutex;  /* Guards the slots' state once queued */
    pthread_cond_t done_cond;
    uint64_t done_gen; /* Counts slot_done() calls, under mutex */
    /* Encoder with a pool: the stream's bytes, by position modulo ring_size. */
    const uint8_t *ring;
    size_t ring_size;
};

/* Copies len bytes of the stream from position at out of the ring. */
static void ring_copy(const struct pipe *pipe, uint64_t at, uint8_t *out, size_t len)
{
    size_t offset = (size_t)(at % pipe->ring_size);
    size_t first = CN_MIN(len, pipe->ring_size - offset);

    memcpy(out, pipe->ring + offset, first);
    memcpy(out + first, pipe->ring, len - first);
}

/* A region job: the cut candidates of ring bytes [start, start + region_len). */
static void scan_region(struct pipe *pipe, struct slot *region)
{
    uint8_t window[STOR__GEAR_WINDOW];
    size_t warm = (size_t)CN_MIN(region->start, (uint64_t)STOR__GEAR_WINDOW);
    uint64_t hash;

    /* The window before the region makes the hash exact from its first byte on. */
    ring_copy(pipe, region->start - warm, window, warm);
    hash = stor__gear_roll(0, window, warm);
    CN_ASSERT(region->start % pipe->ring_size + region->region_len <= pipe->ring_size);
    region->cand_overflow = false;
    region->cand_count = stor__gear_candidates(
        &hash, pipe->ring + region->start % pipe->ring_size, region->region_len, region->cands,
        region->cand_small, SCAN_CANDIDATES, &region->cand_overflow);
}

static void slot_run(struct pipe *pipe, struct slot *slot)
{
    const uint8_t *shards[32];
    size_t offset = 0;

    if (slot->scan) {
        scan_region(pipe, slot);
        return;
    }
    if (!pipe->decoding) {
        slot->rv = stor_codec_encode(slot->codec, slot->input, slot->plain_len, &slot->chunk);
        return;
    }
    for (unsigned i = 0; i < slot->shard_count; i++) {
        shards[i] = slot->shards.base + offset;
        offset += slot->shard_lens[i];
    }
    slot->rv =
        stor_codec_decode(slot->codec, &slot->id, shards, slot->shard_lens, slot->shard_count,
                          slot->plain, STOR_CHUNK_SIZE_MAX, &slot->plain_len, &slot->bad);
}

/* Marks a slot done and wakes its stream; after the unlock the worker never touches it. */
static void slot_done(struct slot *slot)
{
    struct pipe *pipe = slot->owner;

    pthread_mutex_lock(&pipe->mutex);
    slot->state = SLOT_DONE;
    pipe->done_gen++;
    pthread_cond_broadcast(&pipe->done_cond);
    pthread_mutex_unlock(&pipe->mutex);
}

static void *worker_main(void *arg)
{
    struct stor_pool *pool = arg;
    struct slot *slot;

    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (pool->queue_head == NULL && !pool->stopping) {
            pthread_cond_wait(&pool->work_cond, &pool->mutex);
        }
        if (pool->queue_head == NULL) {
            break;
        }
        slot = pool->queue_head;
        CN_ASSERT(slot->state == SLOT_QUEUED);
        pool->queue_head = slot->next_queued;
        if (pool->queue_head == NULL) {
            pool->queue_tail = NULL;
        }
        pthread_mutex_unlock(&pool->mutex);
        slot_run(slot->owner, slot);
        slot_done(slot);
        pthread_mutex_lock(&pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

void stor_pool_free(struct stor_pool *pool)
{
    if (pool == NULL) {
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    CN_ASSERT(pool->queue_head == NULL); /* Every stream was freed first. */
    pool->stopping = true;
    pthread_cond_broadcast(&pool->work_cond);
    pthread_mutex_unlock(&pool->mutex);
    for (unsigned i = 0; i < pool->started; i++) {
        pthread_join(pool->threads[i], NULL);
    }
    pthread_cond_destroy(&pool->work_cond);
    pthread_mutex_destroy(&pool->mutex);
    free(pool);
}

int stor_pool_new(unsigned thread_count, struct stor_pool **out)
{
    struct stor_pool *pool;

    if (thread_count < 1 || thread_count > STOR_THREADS_MAX) {
        return CAIRN_EINVAL;
    }
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL) {
        return CAIRN_ENOMEM;
    }
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->work_cond, NULL);
    for (unsigned i = 0; i < thread_count; i++) {
        if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0) {
            stor_pool_free(pool);
            return CAIRN_EIO;
        }
        pool->started++;
    }
    *out = pool;
    return 0;
}

/*
 * Buffers of freed streams, kept for the next streams: a slot's codec and
 * chunk buffer are about 20 MiB of address space whose pages a fresh stream
 * faults in one by one (about 2 us each here: 15% of the CPU time of a
 * 2-thread encode of 64 MiB was page faults). At most CACHE_SLOTS slots are
 * kept, process-wide; stor_pipeline_cache_release() frees them.
 */
#define CACHE_SLOTS      8
#define CACHE_SHARDS_MAX (2 * (size_t)STOR_SHARD_SIZE_MAX)

struct cached_slot {
    struct stor_codec *codec;
    uint8_t *plain;
    struct cn_buf shards;
};

static pthread_mutex_t cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct cached_slot cache[CACHE_SLOTS];
static unsigned cache_count;

/* And the rings of encoders with workers (ring and bounce buffer in one allocation). */
#define CACHE_RINGS 2

struct cached_ring {
    uint8_t *base;
    size_t size;
};

static struct cached_ring ring_cache[CACHE_RINGS];
static unsigned ring_cache_count;

static uint8_t *ring_take(size_t size)
{
    uint8_t *base = NULL;

    pthread_mutex_lock(&cache_mutex);
    for (unsigned i = 0; i < ring_cache_count && base == NULL; i++) {
        if (ring_cache[i].size == size) {
            base = ring_cache[i].base;
            ring_cache[i] = ring_cache[--ring_cache_count];
        }
    }
    pthread_mutex_unlock(&cache_mutex);
    return base != NULL ? base : malloc(size);
}

static void ring_give(uint8_t *base, size_t size)
{
    if (base == NULL) {
        return;
    }
    pthread_mutex_lock(&cache_mutex);
    if (ring_cache_count < CACHE_RINGS) {
        ring_cache[ring_cache_count++] = (struct cached_ring){base, size};
        base = NULL;
    }
    pthread_mutex_unlock(&cache_mutex);
    free(base);
}

/* Gives the slot a cached codec and buffers that fit config; false if none does. */
static bool cache_take(struct slot *slot, const struct stor_codec_config *config)
{
    bool found = false;

    pthread_mutex_lock(&cache_mutex);
    for (unsigned i = cache_count; i > 0 && !found; i--) {
        struct cached_slot *cached = &cache[i - 1];

        if (stor__codec_reuse(cached->codec, config)) {
            slot->codec = cached->codec;
            slot->plain = cached->plain;
            slot->shards = cached->shards;
            *cached = cache[--cache_count];
            found = true;
        }
    }
    pthread_mutex_unlock(&cache_mutex);
    return found;
}

/* Keeps the slot's codec and buffers for a later stream, or frees them. */
static void cache_give(struct slot *slot)
{
    bool kept = false;

    /* A decoder's shard copies grow with what was pushed (up to 32 shards):
     * keep only what a 16+4 chunk needs, so the cache stays bounded. */
    if (slot->shards.cap > CACHE_SHARDS_MAX) {
        cn_buf_close(&slot->shards);
    }
    if (slot->codec != NULL) {
        pthread_mutex_lock(&cache_mutex);
        if (cache_count < CACHE_SLOTS) {
            cache[cache_count++] = (struct cached_slot){
                .codec = slot->codec, .plain = slot->plain, .shards = slot->shards};
            kept = true;
        }
        pthread_mutex_unlock(&cache_mutex);
    }
    if (!kept) {
        stor_codec_free(slot->codec);
        free(slot->plain);
        cn_buf_close(&slot->shards);
    }
    slot->codec = NULL;
    slot->plain = NULL;
}

unsigned stor__pipeline_cache_count(void)
{
    unsigned count;

    pthread_mutex_lock(&cache_mutex);
    count = cache_count;
    pthread_mutex_unlock(&cache_mutex);
    return count;
}

void stor_pipeline_cache_release(void)
{
    pthread_mutex_lock(&cache_mutex);
    while (cache_count > 0) {
        struct cached_slot *cached = &cache[--cache_count];

        stor_codec_free(cached->codec);
        free(cached->plain);
        cn_buf_close(&cached->shards);
    }
    while (ring_cache_count > 0) {
        free(ring_cache[--ring_cache_count].base);
    }
    pthread_mutex_unlock(&cache_mutex);
}

static void pipe_close(struct pipe *pipe)
{
    if (pipe->own_pool) {
        stor_pool_free(pipe->pool);
    }
    for (unsigned i = 0; pipe->slots != NULL && i < pipe->slot_count; i++) {
        cache_give(&pipe->slots[i]);
    }
    free(pipe->slots);
    pthread_cond_destroy(&pipe->done_cond);
    pthread_mutex_destroy(&pipe->mutex);
}

static int pipe_init_slots(struct pipe *pipe,
                           const struct stor_pipeline_config *config,
                           bool need_plain)
{
    pipe->slots = calloc(pipe->slot_count, sizeof(*pipe->slots));
    if (pipe->slots == NULL) {
        return CAIRN_ENOMEM;
    }
    for (unsigned i = 0; i < pipe->slot_count; i++) {
        struct slot *slot = &pipe->slots[i];
        int rv;

        slot->owner = pipe;
        cn_buf_init(&slot->shards);
        if (!cache_take(slot, &config->codec)) {
            rv = stor_codec_new(&config->codec, &slot->codec);
            if (rv != 0) {
                return rv;
            }
        }
        if (need_plain && slot->plain == NULL) {
            slot->plain = malloc(STOR_CHUNK_SIZE_MAX);
            if (slot->plain == NULL) {
                return CAIRN_ENOMEM;
            }
        }
    }
    return 0;
}

static int pipe_init(struct pipe *pipe, const struct stor_pipeline_config *config, bool decoding)
{
    int rv;

    if (config->thread_count < 1 || config->thread_count > STOR_THREADS_MAX) {
        return CAIRN_EINVAL;
    }
    memset(pipe, 0, sizeof(*pipe));
    pthread_mutex_init(&pipe->mutex, NULL);
    pthread_cond_init(&pipe->done_cond, NULL);
    pipe->codec_config = config->codec;
    pipe->decoding = decoding;
    pipe->pool = config->pool;
    pipe->slot_count =
        config->thread_count == 1 && config->pool == NULL ? 1 : 2 * config->thread_count;
    /* An encoder with a ring reads chunks from it, not from slots. */
    rv = pipe_init_slots(pipe, config, decoding || config->thread_count < RING_THREADS_MIN);
    if (rv == 0 && pipe->pool == NULL && config->thread_count > 1) {
        rv = stor_pool_new(config->thread_count, &pipe->pool);
        pipe->own_pool = rv == 0;
    }
    if (rv != 0) {
        pipe_close(pipe);
    }
    return rv;
}

/* The slot to fill next; NULL if it is still in flight. */
static struct slot *next_fill(struct pipe *pipe)
{
    if (pipe->filled - pipe->delivered >= pipe->slot_count) {
        return NULL;
    }
    return &pipe->slots[pipe->filled % pipe->slot_count];
}

/* Queues a slot (a chunk or a region scan) on the pool. */
static void pool_push(struct stor_pool *pool, struct slot *slot)
{
    /* No worker can see the slot before it is queued, so QUEUED needs no lock. */
    slot->state = SLOT_QUEUED;
    slot->next_queued = NULL;
    pthread_mutex_lock(&pool->mutex);
    if (pool->queue_tail != NULL) {
        pool->queue_tail->next_queued = slot;
    } else {
        pool->queue_head = slot;
    }
    pool->queue_tail = slot;
    pthread_cond_signal(&pool->work_cond);
    pthread_mutex_unlock(&pool->mutex);
}

/* Hands the filling slot to the pool, or runs it here without one. */
static void submit(struct pipe *pipe, struct slot *slot)
{
    CN_ASSERT(slot == &pipe->slots[pipe->filled % pipe->slot_count]);
    CN_ASSERT(slot->state == SLOT_FILLING || slot->state == SLOT_FREE);
    CN_ASSERT(pipe->filled - pipe->delivered < pipe->slot_count);
    pipe->filled++;
    if (pipe->pool == NULL) {
        slot_run(pipe, slot);
        slot->state = SLOT_DONE;
        return;
    }
    pool_push(pipe->pool, slot);
}

typedef int (*deliver_fn)(struct pipe *pipe, struct slot *slot);

/* Delivers the oldest slot in flight, waiting for it if wait; 0 and nothing if none. */
static int deliver_oldest(struct pipe *pipe, bool wait, deliver_fn deliver)
{
    struct slot *slot;
    bool done;
    int rv;

    if (pipe->delivered == pipe->filled) {
        return 0;
    }
    slot = &pipe->slots[pipe->delivered % pipe->slot_count];
    pthread_mutex_lock(&pipe->mutex);
    while (wait && slot->state != SLOT_DONE) {
        pthread_cond_wait(&pipe->done_cond, &pipe->mutex);
    }
    done = slot->state == SLOT_DONE;
    pthread_mutex_unlock(&pipe->mutex);
    if (!done) {
        return 0;
    }
    CN_ASSERT(pipe->delivered < pipe->filled);
    pipe->delivered++;
    slot->state = SLOT_FREE;
    rv = slot->rv != 0 ? slot->rv : (pipe->error == 0 ? deliver(pipe, slot) : 0);
    if (rv != 0 && pipe->error == 0) {
        pipe->error = rv;
    }
    return pipe->error;
}

/* A free slot to fill, delivering older ones until there is one. */
static int acquire(struct pipe *pipe, deliver_fn deliver, struct slot **out)
{
    struct slot *slot;
    int rv;

    while ((slot = next_fill(pipe)) == NULL) {
        rv = deliver_oldest(pipe, true, deliver);
        if (rv != 0) {
            return rv;
        }
    }
    /* Deliver what is already done, so the callback runs as early as it can. */
    while (pipe->delivered < pipe->filled) {
        uint64_t before = pipe->delivered;

        rv = deliver_oldest(pipe, false, deliver);
        if (rv != 0) {
            return rv;
        }
        if (pipe->delivered == before) {
            break;
        }
    }
    *out = slot;
    return 0;
}

static int drain(struct pipe *pipe, deliver_fn deliver)
{
    int rv = pipe->error;

    while (rv == 0 && pipe->delivered < pipe->filled) {
        rv = deliver_oldest(pipe, true, deliver);
    }
    /* After an error, still wait for the workers to hand every slot back. */
    while (pipe->delivered < pipe->filled) {
        deliver_oldest(pipe, true, deliver);
    }
    return rv != 0 ? rv : pipe->error;
}

/*
 * The encoder has three modes. Without workers (thread_count 1, no pool) the
 * caller's thread chunks each write into a slot and encodes it in place.
 * With 2 workers it chunks into slots that the workers encode.
 *
 * With RING_THREADS_MIN workers or more, the caller's thread only copies:
 * writes go into a ring of ring_size bytes, addressed by stream position
 * modulo its size. Each full
 * SCAN_REGION of the ring is a job: a worker rolls the gear hash over it and
 * lists where the cut condition holds (a few per MiB; the hash at a byte
 * depends only on the 64 bytes before it, so regions are scanned apart and in
 * parallel). The caller's thread then finds each chunk's end from those lists
 * in a few steps (resolve: the exact hash for the 63 bytes after the
 * minimum, then the first candidate that meets the mask for its position),
 * and queues the chunk, which a worker encodes straight from the ring (a
 * chunk that wraps around the ring's end is first copied into the bounce
 * buffer: at most one is in flight). Boundaries are exactly the chunker's
 * (the pipeline tests compare them). Bytes are kept from the oldest chunk not
 * yet delivered (or region not yet scanned) on: ring_size holds the slots'
 * chunks, one more chunk and two regions, so the caller can always go on
 * when it waits; memory is about (2N + 1) * 4 MiB + 2 MiB for the ring, and a
 * 4 MiB bounce buffer.
 */
struct stor_encoder {
    struct pipe pipe;
    struct stor_chunker chunker;
    bool finished;
    struct slot *filling;
    stor_encoder_cb cb;
    void *data;
    /* With workers: */
    uint8_t *ring; /* ring_size bytes, then the bounce buffer (STOR_CHUNK_SIZE_MAX) */
    size_t ring_size;
    uint64_t head;           /* Stream bytes copied in */
    uint64_t start;          /* The next chunk's first byte */
    uint64_t regions_queued; /* Regions handed to the pool (region g: [g, g + 1) * SCAN_REGION) */
    unsigned region_count;
    struct slot *regions; /* Region g uses regions[g % region_count] */
};

static int deliver_chunk(struct pipe *pipe, struct slot *slot)
{
    struct stor_encoder *encoder = CN_CONTAINER_OF(pipe, struct stor_encoder, pipe);

    return encoder->cb(encoder->data, &slot->chunk);
}

static int ring_init(struct stor_encoder *e)
{
    struct pipe *pipe = &e->pipe;

    e->ring_size = (size_t)(pipe->slot_count + 1) * STOR_CHUNK_SIZE_MAX + 2 * SCAN_REGION;
    e->region_count = (unsigned)(e->ring_size / SCAN_REGION) + 2;
    static_assert(STOR_CHUNK_SIZE_MAX % SCAN_REGION == 0, "regions never wrap");
    e->ring = ring_take(e->ring_size + STOR_CHUNK_SIZE_MAX);
    e->regions = calloc(e->region_count, sizeof(*e->regions));
    if (e->ring == NULL || e->regions == NULL) {
        return CAIRN_ENOMEM;
    }
    for (unsigned i = 0; i < e->region_count; i++) {
        e->regions[i].owner = pipe;
        e->regions[i].scan = true;
        cn_buf_init(&e->regions[i].shards);
    }
    pipe->ring = e->ring;
    pipe->ring_size = e->ring_size;
    return 0;
}

static bool slot_busy(struct pipe *pipe, const struct slot *slot)
{
    bool busy;

    pthread_mutex_lock(&pipe->mutex);
    busy = slot->state == SLOT_QUEUED;
    pthread_mutex_unlock(&pipe->mutex);
    return busy;
}

static uint64_t done_gen(struct pipe *pipe)
{
    uint64_t gen;

    pthread_mutex_lock(&pipe->mutex);
    gen = pipe->done_gen;
    pthread_mutex_unlock(&pipe->mutex);
    return gen;
}

/* Waits until some slot or region is done after gen was read. */
static void wait_done(struct pipe *pipe, uint64_t gen)
{
    pthread_mutex_lock(&pipe->mutex);
    while (pipe->done_gen == gen) {
        pthread_cond_wait(&pipe->done_cond, &pipe->mutex);
    }
    pthread_mutex_unlock(&pipe->mutex);
}

/* The oldest stream byte still needed: by a chunk in flight, the resolver, or a scan. */
static uint64_t ring_tail(struct stor_encoder *e)
{
    struct pipe *pipe = &e->pipe;
    uint64_t tail = pipe->delivered < pipe->filled
                        ? pipe->slots[pipe->delivered % pipe->slot_count].start
                        : e->start;
    uint64_t g = e->regions_queued > e->region_count ? e->regions_queued - e->region_count : 0;

    for (; g < e->regions_queued; g++) {
        if (slot_busy(pipe, &e->regions[g % e->region_count])) {
            uint64_t first = g * SCAN_REGION;

            tail = CN_MIN(tail, first - CN_MIN(first, (uint64_t)STOR__GEAR_WINDOW));
            break;
        }
    }
    return tail;
}

/* Queues every region the ring holds whole (or, at the end, the last part). */
static bool queue_regions(struct stor_encoder *e)
{
    bool progress = false;

    for (;;) {
        uint64_t first = e->regions_queued * SCAN_REGION;
        struct slot *region = &e->regions[e->regions_queued % e->region_count];
        size_t len;

        if (first + SCAN_REGION <= e->head) {
            len = SCAN_REGION;
        } else if (e->finished && first < e->head) {
            len = (size_t)(e->head - first);
        } else {
            break;
        }
        if (slot_busy(&e->pipe, region)) {
            break; /* Its previous region is still being scanned. */
        }
        region->start = first;
        region->region_len = len;
        pool_push(e->pipe.pool, region);
        e->regions_queued++;
        progress = true;
    }
    return progress;
}

/* Rolls the exact hash over [from, to) and finds the first cut for a chunk from s. */
static bool scan_serially(
    struct stor_encoder *e, uint64_t s, uint64_t from, uint64_t to, uint64_t *end)
{
    uint8_t buf[4096];
    size_t warm = (size_t)CN_MIN(from - s - STOR_CHUNK_SIZE_MIN, (uint64_t)STOR__GEAR_WINDOW);
    uint64_t hash;

    /* Hashing starts at the chunk's minimum: no byte before it counts. */
    ring_copy(&e->pipe, from - warm, buf, warm);
    hash = stor__gear_roll(0, buf, warm);
    while (from < to) {
        size_t n = (size_t)CN_MIN(to - from, (uint64_t)sizeof(buf));

        ring_copy(&e->pipe, from, buf, n);
        for (size_t i = 0; i < n; i++) {
            hash = stor__gear_roll(hash, &buf[i], 1);
            if (stor__gear_cuts(hash, from + i - s < STOR_CHUNK_SIZE_AVG)) {
                *end = from + i + 1;
                return true;
            }
        }
        from += n;
    }
    return false;
}

/*
 * Finds the end of the chunk that starts at e->start, as stor_chunker_next
 * would: false while it needs more bytes or scans. Before the average the
 * strict mask applies, after it the loose one; at the maximum the chunk ends.
 */
static bool resolve(struct stor_encoder *e, uint64_t *end)
{
    uint64_t s = e->start;
    uint64_t limit = s + STOR_CHUNK_SIZE_MAX;
    uint64_t hashed = s + STOR_CHUNK_SIZE_MIN;          /* First byte hashed */
    uint64_t windowed = hashed + STOR__GEAR_WINDOW - 1; /* From here the window hash is exact */
    uint64_t stop;

    CN_ASSERT(s < e->head);
    if (e->head < CN_MIN(windowed, limit) && !e->finished) {
        return false;
    }
    /* The first 63 hashed bytes: their hash is not yet a full window. */
    if (scan_serially(e, s, hashed, CN_MIN(windowed, e->head), end)) {
        return true;
    }
    if (e->head <= windowed) {
        if (!e->finished) {
            return false;
        }
        *end = e->head; /* The stream's last chunk, shorter than that. */
        return true;
    }
    stop = CN_MIN(limit, e->head);
    for (uint64_t g = windowed / SCAN_REGION; g * SCAN_REGION < stop; g++) {
        const struct slot *region = &e->regions[g % e->region_count];
        uint64_t first = g * SCAN_REGION;

        if (g >= e->regions_queued || slot_busy(&e->pipe, region)) {
            return false;
        }
        CN_ASSERT(region->start == first);
        if (region->cand_overflow) {
            if (scan_serially(e, s, CN_MAX(windowed, first),
                              CN_MIN(first + region->region_len, stop), end)) {
                return true;
            }
            continue;
        }
        for (size_t i = 0; i < region->cand_count; i++) {
            uint64_t at = first + region->cands[i];

            if (at < windowed) {
                continue;
            }
            if (at >= stop) {
                break;
            }
            if (at - s >= STOR_CHUNK_SIZE_AVG || region->cand_small[i]) {
                *end = at + 1;
                return true;
            }
        }
    }
    if (stop == limit || e->finished) {
        *end = stop;
        return true;
    }
    return false;
}

/* Queues the chunk [e->start, end) for encoding, from the ring. */
static void queue_chunk(struct stor_encoder *e, uint64_t end)
{
    struct slot *slot = next_fill(&e->pipe);
    size_t len = (size_t)(end - e->start);
    size_t offset = (size_t)(e->start % e->ring_size);

    CN_ASSERT(slot != NULL && len > 0 && len <= STOR_CHUNK_SIZE_MAX);
    slot->start = e->start;
    slot->plain_len = len;
    if (offset + len <= e->ring_size) {
        slot->input = e->ring + offset;
    } else {
        /* Wraps: one chunk at most is in flight across the ring's end. */
        ring_copy(&e->pipe, e->start, e->ring + e->ring_size, len);
        slot->input = e->ring + e->ring_size;
    }
    submit(&e->pipe, slot);
    e->start = end;
}

/* Moves the stream along without waiting: scans, chunks, deliveries. */
static int pump(struct stor_encoder *e, bool *progress)
{
    struct pipe *pipe = &e->pipe;
    uint64_t end;
    int rv;

    *progress = queue_regions(e);
    while (pipe->error == 0 && e->start < e->head && next_fill(pipe) != NULL && resolve(e, &end)) {
        queue_chunk(e, end);
        *progress = true;
    }
    while (pipe->delivered < pipe->filled) {
        uint64_t before = pipe->delivered;

        rv = deliver_oldest(pipe, false, deliver_chunk);
        if (rv != 0) {
            return rv;
        }
        if (pipe->delivered == before) {
            break;
        }
        *progress = true;
    }
    return pipe->error;
}

static int ring_write(struct stor_encoder *e, const uint8_t *bytes, size_t len)
{
    bool progress;
    int rv = e->pipe.error;

    while (len > 0 && rv == 0) {
        uint64_t gen = done_gen(&e->pipe);
        uint64_t space = e->ring_size - (e->head - ring_tail(e));
        size_t n;

        if (space == 0) {
            rv = pump(e, &progress);
            if (rv == 0 && !progress) {
                wait_done(&e->pipe, gen);
            }
            continue;
        }
        /* Up to the next region's end, so that its scan starts at once. */
        n = (size_t)CN_MIN(space, (uint64_t)len);
        n = CN_MIN(n, (size_t)(SCAN_REGION - e->head % SCAN_REGION));
        memcpy(e->ring + e->head % e->ring_size, bytes, n);
        e->head += n;
        bytes += n;
        len -= n;
        if (e->head % SCAN_REGION == 0) {
            rv = pump(e, &progress);
        }
    }
    return rv;
}

static int ring_finish(struct stor_encoder *e)
{
    bool progress;
    int rv = e->pipe.error;

    while (rv == 0 && (e->start < e->head || e->pipe.delivered < e->pipe.filled)) {
        uint64_t gen = done_gen(&e->pipe);

        rv = pump(e, &progress);
        if (rv == 0 && !progress) {
            wait_done(&e->pipe, gen);
        }
    }
    return rv;
}

/* Waits for the region scans still in flight (before freeing them). */
static void wait_regions(struct stor_encoder *e)
{
    for (unsigned i = 0; e->regions != NULL && i < e->region_count; i++) {
        uint64_t gen = done_gen(&e->pipe);

        if (slot_busy(&e->pipe, &e->regions[i])) {
            wait_done(&e->pipe, gen);
            i--; /* Look at it again. */
        }
    }
}

int stor_encoder_new(const struct stor_pipeline_config *config,
                     stor_encoder_cb cb,
                     void *data,
                     struct stor_encoder **out)
{
    struct stor_encoder *encoder = calloc(1, sizeof(*encoder));
    int rv;

    if (encoder == NULL) {
        return CAIRN_ENOMEM;
    }
    rv = pipe_init(&encoder->pipe, config, false);
    if (rv != 0) {
        free(encoder);
        return rv;
    }
    if (config->thread_count >= RING_THREADS_MIN) {
        rv = ring_init(encoder);
        if (rv != 0) {
            stor_encoder_free(encoder);
            return rv;
        }
    }
    stor_chunker_init(&encoder->chunker);
    encoder->cb = cb;
    encoder->data = data;
    *out = encoder;
    return 0;
}

int stor_encoder_write(struct stor_encoder *encoder, const void *data, size_t len)
{
    const uint8_t *bytes = data;
    struct slot *slot;
    bool boundary;
    size_t n;
    int rv;

    if (encoder->finished) {
        return CAIRN_EINVAL;
    }
    if (encoder->ring != NULL) {
        return ring_write(encoder, bytes, len);
    }
    while (len > 0 && encoder->pipe.error == 0) {
        if (encoder->filling == NULL) {
            rv = acquire(&encoder->pipe, deliver_chunk, &encoder->filling);
            if (rv != 0) {
                return rv;
            }
            encoder->filling->state = SLOT_FILLING;
            encoder->filling->plain_len = 0;
        }
        slot = encoder->filling;
        n = stor_chunker_next(&encoder->chunker, bytes, len, &boundary);
        CN_ASSERT(slot->plain_len + n <= STOR_CHUNK_SIZE_MAX);
        memcpy(slot->plain + slot->plain_len, bytes, n);
        slot->input = slot->plain;
        slot->plain_len += n;
        bytes += n;
        len -= n;
        if (boundary) {
            submit(&encoder->pipe, slot);
            encoder->filling = NULL;
        }
    }
    return encoder->pipe.error;
}

int stor_encoder_finish(struct stor_encoder *encoder)
{
    int rv;

    if (encoder->ring != NULL && !encoder->finished) {
        encoder->finished = true;
        rv = ring_finish(encoder);
        if (rv != 0 && encoder->pipe.error == 0) {
            encoder->pipe.error = rv;
        }
        wait_regions(encoder);
        return drain(&encoder->pipe, deliver_chunk);
    }
    encoder->finished = true;
    if (encoder->filling != NULL && encoder->pipe.error == 0) {
        CN_ASSERT(encoder->filling->plain_len > 0);
        submit(&encoder->pipe, encoder->filling);
        encoder->filling = NULL;
    }
    return drain(&encoder->pipe, deliver_chunk);
}

void stor_encoder_free(struct stor_encoder *encoder)
{
    if (encoder == NULL) {
        return;
    }
    /* Abandoned streams get no more callbacks: wait for the workers, deliver nothing. */
    if (encoder->pipe.error == 0) {
        encoder->pipe.error = CAIRN_ECANCELED;
    }
    drain(&encoder->pipe, deliver_chunk);
    wait_regions(encoder);
    pipe_close(&encoder->pipe);
    free(encoder->regions);
    ring_give(encoder->ring, encoder->ring_size + STOR_CHUNK_SIZE_MAX);
    free(encoder);
}

struct stor_decoder {
    struct pipe pipe;
    stor_decoder_cb cb;
    void *data;
};

static int deliver_plain(struct pipe *pipe, struct slot *slot)
{
    struct stor_decoder *decoder = CN_CONTAINER_OF(pipe, struct stor_decoder, pipe);

    return decoder->cb(decoder->data, slot->plain, slot->plain_len, slot->bad);
}

int stor_decoder_new(const struct stor_pipeline_config *config,
                     stor_decoder_cb cb,
                     void *data,
                     struct stor_decoder **out)
{
    struct stor_decoder *decoder = calloc(1, sizeof(*decoder));
    int rv;

    if (decoder == NULL) {
        return CAIRN_ENOMEM;
    }
    rv = pipe_init(&decoder->pipe, config, true);
    if (rv != 0) {
        free(decoder);
        return rv;
    }
    decoder->cb = cb;
    decoder->data = data;
    *out = decoder;
    return 0;
}

/* Copies the shards into the slot; one over the size limit is kept empty (it will fail to parse).
 */
static int copy_shards(struct slot *slot,
                       const uint8_t *const *shards,
                       const size_t *shard_lens,
                       unsigned shard_count)
{
    int rv;

    cn_buf_reset(&slot->shards);
    for (unsigned i = 0; i < shard_count; i++) {
        slot->shard_lens[i] = shard_lens[i] <= STOR_SHARD_SIZE_MAX ? shard_lens[i] : 0;
        rv = cn_buf_append(&slot->shards, shards[i], slot->shard_lens[i]);
        if (rv != 0) {
            return rv;
        }
    }
    slot->shard_count = shard_count;
    return 0;
}

int stor_decoder_push(struct stor_decoder *decoder,
                      const struct stor_id *id,
                      const uint8_t *const *shards,
                      const size_t *shard_lens,
                      unsigned shard_count)
{
    struct slot *slot;
    int rv;

    if (shard_count > CN_ARRAY_SIZE(slot->shard_lens)) {
        return CAIRN_EINVAL;
    }
    if (decoder->pipe.error != 0) {
        return decoder->pipe.error;
    }
    rv = acquire(&decoder->pipe, deliver_plain, &slot);
    if (rv != 0) {
        return rv;
    }
    rv = copy_shards(slot, shards, shard_lens, shard_count);
    if (rv != 0) {
        return rv;
    }
    slot->id = *id;
    submit(&decoder->pipe, slot);
    return decoder->pipe.error;
}

int stor_decoder_finish(struct stor_decoder *decoder)
{
    return drain(&decoder->pipe, deliver_plain);
}

void stor_decoder_free(struct stor_decoder *decoder)
{
    if (decoder == NULL) {
        return;
    }
    if (decoder->pipe.error == 0) {
        decoder->pipe.error = CAIRN_ECANCELED;
    }
    drain(&decoder->pipe, deliver_plain);
    pipe_close(&decoder->pipe);
    free(decoder);
}
