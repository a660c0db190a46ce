/*
 * Scrub: every shard on this node is read and verified again, pass after
 * pass, at a set rate, so that rot is found before a read needs the shard.
 *
 * The happy path, on a dedicated thread (it never touches the loop):
 *   1. A pass starts: its number goes up and its counters are reset.
 *   2. For each data directory, the shard list is taken (stor_store_iterate),
 *      then each shard is read and verified (stor_store_get checks the header
 *      and payload checksums).
 *   3. After each shard its bytes are charged to the pacer (pace.c), and the
 *      thread sleeps for as long as the pacer says, so reads stay within
 *      scrub_rate bytes per second.
 *   4. At the end of the pass the completed count goes up; the next pass
 *      starts after at least PASS_GAP_MS, so an empty store is not walked in
 *      a tight loop.
 *
 * Possible failure modes:
 *   - A shard fails verification (CAIRN_ECORRUPT): under the shard's stripe
 *     lock it is read once more (a put may just have replaced it), and if
 *     still corrupt it is moved to the directory's quarantine (never served,
 *     listed or counted as a shard; kept for a look later), and counted and
 *     logged once (chunk, shard index, directory). The loop sends the
 *     chunk's id to the leaders of the data groups (node__scrub_take_found(),
 *     RepairHint), whose repair driver (chunks.c) rebuilds it in place from
 *     the chunk's other shards at once, not when its walk comes to it.
 *   - A shard vanished since the listing (deleted by a client): skipped.
 *   - A shard cannot be read (CAIRN_EIO, ...), or the listing fails: counted
 *     as an error, logged, left in place; the pass goes on.
 *   - Stop: node__scrub_stop() wakes any sleep; the thread finishes the shard
 *     it is on and exits; node__scrub_join() waits for it before the stores
 *     close.
 */
#include <stdlib.h>
#include <string.h>

#include "node.h"

#define PASS_GAP_MS       1000
#define SCRUB_BURST_BYTES (STOR_SHARD_SIZE_MAX) /* one largest shard at once */
#define SCRUB_FOUND_MAX   64

struct scrub_ref {
    struct stor_id id;
    unsigned index;
    uint64_t size;
};

struct scrub_list {
    struct scrub_ref *refs;
    size_t count;
    size_t cap;
};

struct node_scrub {
    struct node *node;
    struct cn_clock *clock;
    struct node_pace pace;
    uv_thread_t thread;
    uv_mutex_t mutex; /* guards stopping and progress */
    uv_cond_t wake;   /* signalled by node__scrub_stop() */
    bool stopping;
    struct node_scrub_progress progress;
    struct cn_buf shard; /* the shard being verified: scrub thread only */
    /* Chunks with a shard set aside, until the loop takes them (mutex);
     * past SCRUB_FOUND_MAX the repair walk finds the rest. */
    struct stor_id found[SCRUB_FOUND_MAX];
    unsigned found_count;
};

uv_mutex_t *node__shard_lock(struct node *node, const struct stor_id *id, unsigned index)
{
    return &node->shard_locks[(cn_get_u32(id->bytes) + index) % NODE_SHARD_LOCKS];
}

/* Sleeps ms or until stopped; true when stopping. */
static bool sleep_ms(struct node_scrub *scrub, uint64_t ms)
{
    bool stopping;

    uv_mutex_lock(&scrub->mutex);
    if (!scrub->stopping && ms > 0) {
        (void)uv_cond_timedwait(&scrub->wake, &scrub->mutex, ms * 1000000);
    }
    stopping = scrub->stopping;
    uv_mutex_unlock(&scrub->mutex);
    return stopping;
}

/* Charges bytes to the pacer and sleeps until it allows the next read. */
static bool pace(struct node_scrub *scrub, uint64_t bytes)
{
    /* A file's size is input (a stray huge file): clamp it, never assert on it. */
    uint64_t wait_ms = node__pace_charge(&scrub->pace, CN_MIN(bytes, NODE_PACE_CHARGE_MAX),
                                         scrub->clock->now_ms(scrub->clock));

    while (wait_ms > 0) {
        if (sleep_ms(scrub, wait_ms)) {
            return true;
        }
        wait_ms = node__pace_wait_ms(&scrub->pace, scrub->clock->now_ms(scrub->clock));
    }
    return sleep_ms(scrub, 0);
}

static int collect(void *data, const struct stor_id *id, unsigned index, uint64_t size)
{
    struct scrub_list *list = data;

    if (list->count == list->cap) {
        list->cap = list->cap == 0 ? 1024 : list->cap * 2;
        list->refs = cn_xrealloc(list->refs, list->cap * sizeof(*list->refs));
    }
    list->refs[list->count++] = (struct scrub_ref){.id = *id, .index = index, .size = size};
    return 0;
}

static void count(struct node_scrub *scrub, uint64_t shards, uint64_t bytes, uint64_t corrupt)
{
    uv_mutex_lock(&scrub->mutex);
    scrub->progress.shards_checked += shards;
    scrub->progress.shards_total += shards;
    scrub->progress.bytes_checked += bytes;
    scrub->progress.bytes_total += bytes;
    scrub->progress.corrupt += corrupt;
    scrub->progress.corrupt_total += corrupt;
    uv_mutex_unlock(&scrub->mutex);
}

static void count_error(struct node_scrub *scrub)
{
    uv_mutex_lock(&scrub->mutex);
    scrub->progress.errors_total++;
    uv_mutex_unlock(&scrub->mutex);
}

/* Quarantines a shard found corrupt, unless a put replaced it meanwhile.
 * Returns the shard's state after: 0 (good now), CAIRN_ECORRUPT (set aside),
 * or an error that left it in place. */
static int remove_corrupt(struct node_scrub *scrub,
                          struct stor_store *store,
                          const struct scrub_ref *ref)
{
    uv_mutex_t *lock = node__shard_lock(scrub->node, &ref->id, ref->index);
    int rv;

    uv_mutex_lock(lock);
    rv = stor_store_get(store, &ref->id, ref->index, &scrub->shard);
    if (rv == CAIRN_ECORRUPT) {
        int moved = stor_store_quarantine(store, &ref->id, ref->index);
        rv = moved == 0 || moved == CAIRN_ENOENT ? CAIRN_ECORRUPT : moved;
    }
    uv_mutex_unlock(lock);
    return rv;
}

static void report(const struct scrub_ref *ref, const char *dir, const char *what, int rv)
{
    char hex[2 * STOR_ID_SIZE + 1];

    cn_hex_encode(ref->id.bytes, STOR_ID_SIZE, hex);
    CN_LOG(CN_WARN, what, "chunk=%s shard=%u dir=%s err=%s", hex, ref->index, dir,
           cairn_errname(rv));
}

/* Verifies one shard; returns how many bytes it read. */
static uint64_t verify(struct node_scrub *scrub,
                       const struct node_data_dir *dir,
                       const struct scrub_ref *ref)
{
    int rv = stor_store_get(dir->store, &ref->id, ref->index, &scrub->shard);

    if (rv == CAIRN_ECORRUPT) {
        rv = remove_corrupt(scrub, dir->store, ref);
        if (rv == CAIRN_ECORRUPT) {
            report(ref, dir->path, "scrub: corrupt shard quarantined, awaiting repair", rv);
            count(scrub, 1, ref->size, 1);
            uv_mutex_lock(&scrub->mutex);
            if (scrub->found_count < SCRUB_FOUND_MAX) {
                scrub->found[scrub->found_count++] = ref->id;
            }
            uv_mutex_unlock(&scrub->mutex);
            return ref->size;
        }
    }
    if (rv == 0) {
        count(scrub, 1, scrub->shard.len, 0);
        return scrub->shard.len;
    }
    if (rv != CAIRN_ENOENT) {
        report(ref, dir->path, "scrub: shard unreadable", rv);
        count_error(scrub);
    }
    return ref->size;
}

/* Walks one directory; true when stopping. */
static bool scrub_dir(struct node_scrub *scrub, const struct node_data_dir *dir)
{
    struct scrub_list list = {0};
    bool stopping = false;
    int rv;

    rv = stor_store_iterate(dir->store, collect, &list);
    if (rv != 0) {
        CN_LOG(CN_WARN, "scrub: cannot list shards", "dir=%s err=%s", dir->path, cairn_errname(rv));
        count_error(scrub);
    }
    for (size_t i = 0; i < list.count && !stopping; i++) {
        stopping = pace(scrub, verify(scrub, dir, &list.refs[i]));
    }
    free(list.refs);
    return stopping;
}

static void pass_begin(struct node_scrub *scrub)
{
    uv_mutex_lock(&scrub->mutex);
    scrub->progress.pass++;
    scrub->progress.shards_checked = 0;
    scrub->progress.bytes_checked = 0;
    scrub->progress.corrupt = 0;
    uv_mutex_unlock(&scrub->mutex);
}

static void pass_end(struct node_scrub *scrub)
{
    uv_mutex_lock(&scrub->mutex);
    scrub->progress.passes_completed++;
    CN_LOG(CN_DEBUG, "scrub: pass done", "pass=%llu shards=%llu bytes=%llu corrupt=%llu",
           (unsigned long long)scrub->progress.pass,
           (unsigned long long)scrub->progress.shards_checked,
           (unsigned long long)scrub->progress.bytes_checked,
           (unsigned long long)scrub->progress.corrupt);
    uv_mutex_unlock(&scrub->mutex);
}

static void scrub_thread(void *arg)
{
    struct node_scrub *scrub = arg;
    struct node *node = scrub->node;
    bool stopping = false;

    while (!stopping) {
        uint64_t started_ms = scrub->clock->now_ms(scrub->clock), elapsed_ms;
        pass_begin(scrub);
        for (unsigned i = 0; i < node->config.dir_count && !stopping; i++) {
            stopping = scrub_dir(scrub, &node->config.dirs[i]);
        }
        if (stopping) {
            break;
        }
        pass_end(scrub);
        elapsed_ms = scrub->clock->now_ms(scrub->clock) - started_ms;
        stopping = sleep_ms(scrub, elapsed_ms < PASS_GAP_MS ? PASS_GAP_MS - elapsed_ms : 0);
    }
}

int node__scrub_start(struct node *node, char *errmsg)
{
    struct node_scrub *scrub;
    int rv;

    CN_ASSERT(node->scrub == NULL);
    CN_ASSERT(node->config.scrub_rate <= NODE_SCRUB_RATE_MAX);
    if (node->config.scrub_rate == 0) {
        return 0;
    }
    scrub = cn_xcalloc(1, sizeof(*scrub));
    scrub->node = node;
    scrub->clock = node->clock;
    scrub->progress.rate = node->config.scrub_rate;
    cn_buf_init(&scrub->shard);
    node__pace_init(&scrub->pace, node->config.scrub_rate, SCRUB_BURST_BYTES,
                    scrub->clock->now_ms(scrub->clock));
    CN_ASSERT(uv_mutex_init(&scrub->mutex) == 0);
    CN_ASSERT(uv_cond_init(&scrub->wake) == 0);
    rv = uv_thread_create(&scrub->thread, scrub_thread, scrub);
    if (rv != 0) {
        goto err_free;
    }
    node->scrub = scrub;
    return 0;

err_free:
    uv_cond_destroy(&scrub->wake);
    uv_mutex_destroy(&scrub->mutex);
    free(scrub);
    return cn_errmsgf(errmsg, CAIRN_EIO, "uv_thread_create(): %s", uv_strerror(rv));
}

void node__scrub_stop(struct node *node)
{
    struct node_scrub *scrub = node->scrub;

    if (scrub == NULL) {
        return;
    }
    uv_mutex_lock(&scrub->mutex);
    scrub->stopping = true;
    uv_cond_signal(&scrub->wake);
    uv_mutex_unlock(&scrub->mutex);
}

void node__scrub_join(struct node *node)
{
    struct node_scrub *scrub = node->scrub;

    if (scrub == NULL) {
        return;
    }
    node__scrub_stop(node);
    CN_ASSERT(uv_thread_join(&scrub->thread) == 0);
    uv_cond_destroy(&scrub->wake);
    uv_mutex_destroy(&scrub->mutex);
    cn_buf_close(&scrub->shard);
    free(scrub);
    node->scrub = NULL;
}

unsigned node__scrub_take_found(struct node *node, struct stor_id *out, unsigned max)
{
    struct node_scrub *scrub = node->scrub;
    unsigned n;

    if (scrub == NULL) {
        return 0;
    }
    uv_mutex_lock(&scrub->mutex);
    n = scrub->found_count < max ? scrub->found_count : max;
    memcpy(out, scrub->found, n * sizeof(*out));
    memmove(scrub->found, scrub->found + n, (scrub->found_count - n) * sizeof(*out));
    scrub->found_count -= n;
    uv_mutex_unlock(&scrub->mutex);
    return n;
}

void node__scrub_progress(struct node *node, struct node_scrub_progress *progress)
{
    struct node_scrub *scrub = node->scrub;

    if (scrub == NULL) {
        memset(progress, 0, sizeof(*progress));
        return;
    }
    uv_mutex_lock(&scrub->mutex);
    *progress = scrub->progress;
    uv_mutex_unlock(&scrub->mutex);
}
