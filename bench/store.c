/*
 * cairn-bench store: the two on-disk layouts the shard store could use, on
 * this machine's disk, for durable puts.
 *
 * (a) files: Cairn's shard store (storage/store.c): a file per shard,
 *     written, fdatasynced, renamed, and the folder fsynced by group commit;
 * (b) segment: a minimal append-only segment: each put appends the shard to
 *     one open file under a lock and joins a group commit, whose leader runs
 *     one fdatasync for every append so far (the index would live in memory
 *     and in a log; it is not written here, so (b) is an upper bound).
 *
 * Each runs with 1 and 4 writer threads, for 64 KiB and 256 KiB shards
 * (a 1 MiB chunk in 4+2 gives 256 KiB shards). Reports puts/s and MB/s.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cn.h"
#include "storage.h"

#define PUTS_PER_THREAD 48
#define THREADS_MAX     4

struct segment {
    int fd;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    uint64_t requested;
    uint64_t synced;
    bool syncing;
};

/* (c) a file per shard, written and renamed without fsync; the leader's one syncfs() covers all. */
static int syncfs_put(
    struct segment *seg, const char *dir, unsigned n, const uint8_t *shard, size_t len)
{
    char tmp[600];
    char path[600];
    uint64_t mine;
    uint64_t target;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s/%u.tmp", dir, n);
    snprintf(path, sizeof(path), "%s/%u", dir, n);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, shard, len) != (ssize_t)len || close(fd) != 0 ||
        rename(tmp, path) != 0) {
        return CAIRN_EIO;
    }
    pthread_mutex_lock(&seg->mutex);
    mine = ++seg->requested;
    while (seg->synced < mine) {
        if (seg->syncing) {
            pthread_cond_wait(&seg->cond, &seg->mutex);
            continue;
        }
        seg->syncing = true;
        target = seg->requested;
        pthread_mutex_unlock(&seg->mutex);
        syncfs(seg->fd);
        pthread_mutex_lock(&seg->mutex);
        seg->syncing = false;
        seg->synced = target;
        pthread_cond_broadcast(&seg->cond);
    }
    pthread_mutex_unlock(&seg->mutex);
    return 0;
}

static int segment_put(struct segment *seg, const uint8_t *shard, size_t len)
{
    uint64_t mine;
    uint64_t target;

    pthread_mutex_lock(&seg->mutex);
    if (write(seg->fd, shard, len) != (ssize_t)len) {
        pthread_mutex_unlock(&seg->mutex);
        return CAIRN_EIO;
    }
    mine = ++seg->requested;
    while (seg->synced < mine) {
        if (seg->syncing) {
            pthread_cond_wait(&seg->cond, &seg->mutex);
            continue;
        }
        seg->syncing = true;
        target = seg->requested;
        pthread_mutex_unlock(&seg->mutex);
        fdatasync(seg->fd);
        pthread_mutex_lock(&seg->mutex);
        seg->syncing = false;
        seg->synced = target;
        pthread_cond_broadcast(&seg->cond);
    }
    pthread_mutex_unlock(&seg->mutex);
    return 0;
}

struct run {
    const char *dir;          /* (c) when set */
    struct stor_store *store; /* (a), or NULL for (b) */
    struct segment *segment;
    uint8_t **shards; /* PUTS_PER_THREAD * THREADS_MAX distinct shards */
    size_t shard_size;
    unsigned thread;
};

static void *writer_main(void *arg)
{
    struct run *run = arg;

    for (unsigned i = 0; i < PUTS_PER_THREAD; i++) {
        const uint8_t *shard = run->shards[run->thread * PUTS_PER_THREAD + i];

        if (run->dir != NULL) {
            CN_ASSERT(syncfs_put(run->segment, run->dir, run->thread * PUTS_PER_THREAD + i, shard,
                                 run->shard_size) == 0);
        } else if (run->store != NULL) {
            CN_ASSERT(stor_store_put(run->store, shard, run->shard_size) == 0);
        } else {
            CN_ASSERT(segment_put(run->segment, shard, run->shard_size) == 0);
        }
    }
    return NULL;
}

/* Makes distinct, valid shards of about shard_size bytes (1+0 chunks of random data). */
static uint8_t **make_shards(size_t payload, size_t *shard_size)
{
    struct stor_keys keys = {.key_version = 1};
    struct stor_codec_config config = {.keys = &keys, .k = 1, .m = 0};
    uint8_t **shards = cn_xcalloc(PUTS_PER_THREAD * THREADS_MAX, sizeof(*shards));
    uint8_t *plain = cn_xmalloc(payload);
    struct stor_codec *codec;
    struct stor_chunk chunk;
    struct cn_rand rand;

    cn_rand_seed(&rand, payload);
    CN_ASSERT(stor_codec_new(&config, &codec) == 0);
    for (unsigned i = 0; i < PUTS_PER_THREAD * THREADS_MAX; i++) {
        cn_rand_fill(&rand, plain, payload);
        CN_ASSERT(stor_codec_encode(codec, plain, payload, &chunk) == 0);
        shards[i] = cn_xmalloc(chunk.shard_size);
        memcpy(shards[i], chunk.shards[0], chunk.shard_size);
        *shard_size = chunk.shard_size;
    }
    stor_codec_free(codec);
    free(plain);
    return shards;
}

enum layout {
    FILES,
    SEGMENT,
    SYNCFS
};
static const char *layout_names[] = {"files", "segment", "files_syncfs"};

static double run_layout(
    const char *dir, enum layout layout, unsigned threads, uint8_t **shards, size_t shard_size)
{
    struct run runs[THREADS_MAX];
    pthread_t ids[THREADS_MAX];
    struct segment segment = {.synced = 0};
    struct stor_store *store = NULL;
    char errmsg[CN_ERRMSG_SIZE];
    char path[600];
    double start;
    double elapsed;

    if (layout == FILES) {
        CN_ASSERT(stor_store_open(dir, &store, errmsg) == 0);
    } else {
        snprintf(path, sizeof(path), "%s/segment", dir);
        segment.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        CN_ASSERT(segment.fd >= 0);
        pthread_mutex_init(&segment.mutex, NULL);
        pthread_cond_init(&segment.cond, NULL);
    }
    start = bench_now();
    for (unsigned t = 0; t < threads; t++) {
        runs[t] =
            (struct run){layout == SYNCFS ? dir : NULL, store, &segment, shards, shard_size, t};
        CN_ASSERT(pthread_create(&ids[t], NULL, writer_main, &runs[t]) == 0);
    }
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
    }
    elapsed = bench_now() - start;
    if (layout == FILES) {
        stor_store_close(store);
    } else {
        close(segment.fd);
        pthread_mutex_destroy(&segment.mutex);
        pthread_cond_destroy(&segment.cond);
    }
    return (double)threads * PUTS_PER_THREAD / elapsed;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int bench_store_main(int argc, char **argv)
{
    static const size_t payloads[] = {64 << 10, 256 << 10};
    const char *base = argc > 1 ? argv[1] : ".";
    char dir[512];
    char name[64];

    snprintf(dir, sizeof(dir), "%s/cairn-bench-store.XXXXXX", base);
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "cairn-bench store: mkdtemp(%s): %s\n", dir, strerror(errno));
        return 1;
    }
    bench_out_begin(false);
    bench_out_section("durable puts (puts/s; MB/s = puts/s * shard size)");
    for (size_t p = 0; p < sizeof(payloads) / sizeof(payloads[0]); p++) {
        size_t shard_size = 0;
        uint8_t **shards = make_shards(payloads[p], &shard_size);

        for (unsigned threads = 1; threads <= THREADS_MAX; threads *= 4) {
            for (int layout = FILES; layout <= SYNCFS; layout++) {
                double rate = run_layout(dir, (enum layout)layout, threads, shards, shard_size);

                snprintf(name, sizeof(name), "%s_%zuKiB_%u_thread%s_puts_per_s",
                         layout_names[layout], payloads[p] >> 10, threads, threads > 1 ? "s" : "");
                bench_out_number(name, rate);
                snprintf(name, sizeof(name), "%s_%zuKiB_%u_thread%s", layout_names[layout],
                         payloads[p] >> 10, threads, threads > 1 ? "s" : "");
                bench_out_rate(name, rate * (double)shard_size / 1e6);
            }
        }
        for (unsigned i = 0; i < PUTS_PER_THREAD * THREADS_MAX; i++) {
            free(shards[i]);
        }
        free(shards);
    }
    bench_out_end();
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : 1;
}
