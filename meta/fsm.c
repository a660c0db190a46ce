/*
 * The bridge between libraft and a group's state machine: a struct raft_fsm
 * (version 3, with asynchronous snapshots) over a struct meta_sm.
 *
 * The happy path:
 *   1. apply: libraft hands over a committed command. Its index is the one
 *      after raft_last_applied() (libraft advances last_applied only after
 *      the fsm returns; barrier and configuration entries advance it without
 *      calling us, so the indexes we see may skip). meta_sm_apply() does the
 *      rest; the outcome is left in fsm->result, and *result points at it:
 *      libraft calls the proposer's raft_apply_cb at once, in the same
 *      stack, so the pointer is valid exactly for that callback.
 *   2. snapshot (on the loop thread): take a RocksDB snapshot handle — cheap.
 *   3. snapshot_async (in libuv's thread pool): serialise the group's keys as
 *      of that handle into one buffer (meta__snapshot_at()). Without
 *      async_snapshots (raft_fixture's I/O has no async_work, and libraft
 *      then refuses an async fsm) step 2 does this itself.
 *   4. snapshot_finalize (on the loop, after libraft stored the snapshot or
 *      failed to): free the buffer and release the handle.
 *   5. restore: at start-up or from a leader's InstallSnapshot. A snapshot
 *      no newer than what RocksDB already holds is not restored again (the
 *      applied index in RocksDB says how far we are), so a restart does not
 *      move the state backwards; a newer one replaces the group's keys in
 *      one WriteBatch.
 *
 * Possible failure modes:
 *   - The store fails in apply or restore: RAFT_IOERR goes back to libraft,
 *     and the replica must be stopped (meta_sm_errmsg() says why): going on
 *     would diverge from the other replicas. libraft only tries the entry
 *     again, forever, so the first failure is kept (meta__fsm_failure()) for
 *     meta_group_failed().
 *   - A snapshot cannot be made (memory, store): RAFT_NOMEM/RAFT_IOERR;
 *     libraft tries again at the next threshold.
 *   - A malformed snapshot arrives: RAFT_CORRUPT, nothing changes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <raft.h>

#include "meta_int.h"

struct meta_fsm {
    struct raft_fsm fsm;
    struct meta_sm *sm;
    struct raft *raft;
    struct meta_result result;          /* of the last apply */
    const rocksdb_snapshot_t *snapshot; /* between snapshot and finalize */
    struct raft_buffer *bufs;           /* the one buffer handed to libraft */
    struct meta_snapshot_probe probe;   /* tests */
    unsigned threshold_base;            /* entries between snapshots, at least */
    meta__applied_cb applied_cb;        /* group.c's watches */
    void *applied_data;
    char failure[CN_ERRMSG_SIZE]; /* the first failed apply or restore */
};

static int raft_code(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case CAIRN_ENOMEM:
        return RAFT_NOMEM;
    case CAIRN_ECORRUPT:
        return RAFT_CORRUPT;
    default:
        return RAFT_IOERR;
    }
}

static int fsm_apply(struct raft_fsm *raft_fsm, const struct raft_buffer *buf, void **result)
{
    struct meta_fsm *fsm = raft_fsm->data;
    meta_index index;
    int rv;

    CN_ASSERT(fsm->raft != NULL); /* meta_fsm_attach() came first */
    index = raft_last_applied(fsm->raft) + 1;
    rv = meta_sm_apply(fsm->sm, index, buf->base, buf->len, &fsm->result);
    *result = &fsm->result;
    if (rv == 0 && fsm->applied_cb != NULL) {
        fsm->applied_cb(fsm->applied_data, fsm->sm);
    }
    if (rv != 0 && fsm->failure[0] == '\0') {
        snprintf(fsm->failure, sizeof(fsm->failure), "apply of entry %llu: %s",
                 (unsigned long long)index, meta_sm_errmsg(fsm->sm));
    }
    return raft_code(rv);
}

/* A snapshot copies the whole group, so one every threshold entries whatever
 * the state's size would have a large group copy and write itself over and
 * over (a gigabyte every 1024 commits, with libraft's default). After each
 * snapshot the threshold becomes at least one entry per this many bytes of
 * it: each entry then pays for about that much copying, whatever the size. */
#define SNAPSHOT_BYTES_PER_ENTRY 1024

/* Tests: waits while the probe holds snapshots (at most 10 s). */
static void probe_wait(struct meta_snapshot_probe *probe)
{
    struct timespec pause = {.tv_nsec = 1000000};

    if (!atomic_load(&probe->hold)) {
        return;
    }
    atomic_fetch_add(&probe->waiting, 1);
    for (int i = 0; i < 10000 && atomic_load(&probe->hold); i++) {
        nanosleep(&pause, NULL);
    }
    atomic_fetch_sub(&probe->waiting, 1);
}

/* Serialises the group as of fsm->snapshot into fsm->bufs[0]: in libuv's
 * thread pool (snapshot_async), touching nothing the loop writes. */
static int snapshot_fill(struct meta_fsm *fsm)
{
    char errmsg[CN_ERRMSG_SIZE];
    struct cn_buf out;
    int rv;

    probe_wait(&fsm->probe);
    cn_buf_init(&out);
    rv = meta__snapshot_at(fsm->sm, fsm->snapshot, &out, errmsg);
    if (rv != 0) {
        /* libraft tries again at the next threshold; the log keeps growing
         * until one succeeds, which only memory or a broken store stops.
         * (One write per line: the log is safe from this thread.) */
        CN_LOG(CN_WARN, "snapshot not made", "group=%llu err=%s %s",
               (unsigned long long)fsm->sm->group_id, cairn_errname(rv), errmsg);
        cn_buf_close(&out);
        return raft_code(rv);
    }
    /* cn_buf memory is malloc'd; libraft never frees it (we do, in finalize). */
    fsm->bufs[0].base = out.base;
    fsm->bufs[0].len = out.len;
    atomic_store(&fsm->probe.bytes, out.len);
    atomic_fetch_add(&fsm->probe.copies, 1);
    return 0;
}

static int fsm_snapshot(struct raft_fsm *raft_fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct meta_fsm *fsm = raft_fsm->data;
    int rv;

    CN_ASSERT(fsm->snapshot == NULL); /* libraft takes one snapshot at a time */
    rv = meta__flush(fsm->sm);        /* the snapshot covers every applied entry */
    if (rv != 0) {
        return raft_code(rv);
    }
    fsm->bufs = raft_calloc(1, sizeof(*fsm->bufs));
    if (fsm->bufs == NULL) {
        return RAFT_NOMEM;
    }
    fsm->snapshot = rocksdb_create_snapshot(fsm->sm->store->db);
    *bufs = fsm->bufs;
    *n_bufs = 1;
    if (raft_fsm->snapshot_async != NULL) {
        return 0; /* the copy happens in the thread pool */
    }
    return snapshot_fill(fsm); /* on failure libraft still calls finalize */
}

static int fsm_snapshot_async(struct raft_fsm *raft_fsm,
                              struct raft_buffer *bufs[],
                              unsigned *n_bufs)
{
    struct meta_fsm *fsm = raft_fsm->data;

    CN_ASSERT(fsm->snapshot != NULL && *bufs == fsm->bufs && *n_bufs == 1);
    return snapshot_fill(fsm);
}

static int fsm_snapshot_finalize(struct raft_fsm *raft_fsm,
                                 struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    struct meta_fsm *fsm = raft_fsm->data;

    CN_ASSERT(*bufs == fsm->bufs);
    if (fsm->threshold_base != 0 && fsm->raft != NULL && fsm->bufs[0].base != NULL) {
        size_t want =
            CN_MAX((size_t)fsm->threshold_base, fsm->bufs[0].len / SNAPSHOT_BYTES_PER_ENTRY);
        raft_set_snapshot_threshold(fsm->raft, (unsigned)CN_MIN(want, (size_t)UINT_MAX));
    }
    free(fsm->bufs[0].base);
    raft_free(fsm->bufs);
    fsm->bufs = NULL;
    *bufs = NULL;
    *n_bufs = 0;
    if (fsm->snapshot != NULL) {
        rocksdb_release_snapshot(fsm->sm->store->db, fsm->snapshot);
        fsm->snapshot = NULL;
    }
    return 0;
}

static int fsm_restore(struct raft_fsm *raft_fsm, struct raft_buffer *buf)
{
    struct meta_fsm *fsm = raft_fsm->data;
    meta_index index;
    int rv;

    rv = meta__snapshot_index(buf->base, buf->len, &index);
    if (rv == 0 && index > fsm->sm->applied) {
        rv = meta_sm_restore(fsm->sm, buf->base, buf->len);
    }
    if (rv != 0) {
        if (rv != CAIRN_ECORRUPT && fsm->failure[0] == '\0') { /* a bad snapshot changes nothing */
            snprintf(fsm->failure, sizeof(fsm->failure), "restore of a snapshot: %s",
                     meta_sm_errmsg(fsm->sm));
        }
        return raft_code(rv);
    }
    raft_free(buf->base); /* on success the buffer is ours to free */
    return 0;
}

int meta_fsm_new(struct meta_sm *sm, bool async_snapshots, struct meta_fsm **out)
{
    struct meta_fsm *fsm = cn_xcalloc(1, sizeof(*fsm));

    atomic_init(&fsm->probe.hold, false);
    atomic_init(&fsm->probe.waiting, 0);
    atomic_init(&fsm->probe.copies, 0);
    atomic_init(&fsm->probe.bytes, 0);
    fsm->sm = sm;
    fsm->fsm.version = 3;
    fsm->fsm.data = fsm;
    fsm->fsm.apply = fsm_apply;
    fsm->fsm.snapshot = fsm_snapshot;
    fsm->fsm.snapshot_async = async_snapshots ? fsm_snapshot_async : NULL;
    fsm->fsm.snapshot_finalize = fsm_snapshot_finalize;
    fsm->fsm.restore = fsm_restore;
    *out = fsm;
    return 0;
}

void meta_fsm_free(struct meta_fsm *fsm)
{
    CN_ASSERT(fsm->snapshot == NULL); /* no snapshot in flight */
    free(fsm);
}

struct raft_fsm *meta_fsm_raft(struct meta_fsm *fsm)
{
    return &fsm->fsm;
}

void meta__fsm_on_applied(struct meta_fsm *fsm, meta__applied_cb cb, void *data)
{
    fsm->applied_cb = cb;
    fsm->applied_data = data;
}

const char *meta__fsm_failure(const struct meta_fsm *fsm)
{
    return fsm->failure[0] != '\0' ? fsm->failure : NULL;
}

void meta_fsm_threshold_base(struct meta_fsm *fsm, unsigned entries)
{
    fsm->threshold_base = entries;
}

struct meta_snapshot_probe *meta_fsm_snapshot_probe(struct meta_fsm *fsm)
{
    return &fsm->probe;
}

void meta_fsm_attach(struct meta_fsm *fsm, struct raft *raft)
{
    fsm->raft = raft;
}
