/*
 * One Raft group on a libuv loop: libraft with its libuv disk I/O, a
 * transport handed in by the caller, and the group's state machine.
 *
 * The happy path:
 *   1. meta_group_new(): raft_uv_init() on the group's own folder, raft_init()
 *      with a meta_fsm over the group's meta_sm; thresholds and timeouts from
 *      the config.
 *   2. meta_group_bootstrap() on a brand-new group writes the first
 *      configuration (a group with state already refuses, which is fine);
 *      meta_group_start() loads the snapshot and log and joins the cluster.
 *   3. meta_group_propose(): the command is encoded (padded to 8 bytes) into
 *      a raft_malloc() buffer and raft_apply()'d; the callback gets the
 *      replicated outcome once the entry is applied here.
 *   4. meta_group_read(): a strong read. Reads that arrive while a barrier is
 *      in flight wait for the next one; when a barrier completes, every read
 *      that was waiting on it is answered at once, so many concurrent reads
 *      share one round trip. A barrier entry committed in the leader's term
 *      proves it was the leader after the read arrived, and that everything
 *      committed before is applied: the read then sees a linearizable state.
 *   5. meta_group_watch(): a watch waits for a namespace's journal to pass
 *      a cursor; after each apply (on any replica) the watches of the
 *      namespace the entry journaled to are woken with the new sequence
 *      number, once.
 *   6. Membership: meta_group_add() (joins as a spare), meta_group_assign()
 *      (to voter or standby), meta_group_remove(), meta_group_transfer()
 *      (leadership), each a thin wrapper over libraft's one-at-a-time
 *      configuration changes; the system group's assignments drive them.
 *   7. meta_group_close(): raft_close(), then the I/O's memory is released.
 *
 * Possible failure modes:
 *   - Not the leader: CAIRN_ENOTLEADER at once (meta_group_leader() names the
 *     one we know of).
 *   - Leadership lost while a proposal was in flight: CAIRN_ENOTLEADER too,
 *     but the outcome is unknown: the entry may still commit. Clients retry
 *     with the same request id, and apply's dedup makes that safe.
 *   - The group is closing: CAIRN_ESHUTDOWN.
 *   - libraft fails to init or start (disk, corrupt log): CAIRN_EIO with
 *     libraft's text in errmsg.
 *   - The disk fails under a running group (full, EIO): the log or the state
 *     machine cannot be written, and the replica stops making progress for
 *     good; meta_group_failed() says so and why (below), and the node stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>

#include "meta_int.h"
#include "meta_raft.h"

struct meta_group {
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport *transport; /* borrowed */
    struct meta_fsm *fsm;
    struct meta_sm *sm;
    struct meta_read *reads_waiting;  /* for the next barrier */
    struct meta_read *reads_inflight; /* answered by the current barrier */
    struct meta_watch *watches;       /* waiting for a journal to pass a cursor */
    struct raft_barrier barrier;
    bool barrier_running;
    /* Leadership transfers use this one request, which lives as long as the
     * group: libraft 0.15 queues the TimeoutNow message with the request's
     * embedded raft_io_send, and that message can outlive the transfer (the
     * target unreachable: the transfer times out, the message stays queued
     * until the connection gives up and reads send.cb). A request freed at
     * the transfer's callback was read after free there: a SEGV found by
     * jepsen/run (canonical/raft#396, fixed upstream after 0.15). */
    struct raft_transfer transfer;
    struct meta_transfer *transfer_req; /* the caller's, while one runs */
    /* The next barrier starts on the next loop turn, never from inside a
     * libraft callback: re-entering raft_barrier() from a barrier's callback
     * while libraft fails its requests on a leadership change dereferences
     * leader state it is tearing down (a SEGV found by jepsen/run). */
    uv_timer_t kick;
    bool kick_pending;
    unsigned closes_pending; /* the kick timer and libraft, when closing */
    bool closing;
    meta_group_close_cb close_cb;
    void *close_data;
    struct cn_buf buf;
    char errmsg[CN_ERRMSG_SIZE];
    /* The log's writes, in order, and storage failures (below): the libuv
     * I/O's own functions, and what waits for them. */
    int (*io_append)(struct raft_io *io,
                     struct raft_io_append *req,
                     const struct raft_entry entries[],
                     unsigned n,
                     raft_io_append_cb cb);
    int (*io_truncate)(struct raft_io *io, raft_index index);
    int (*io_snapshot_put)(struct raft_io *io,
                           unsigned trailing,
                           struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb);
    void (*io_close)(struct raft_io *io, raft_io_close_cb cb);
    unsigned works;               /* async_work in libuv's thread pool */
    raft_io_close_cb io_close_cb; /* a close waiting for them */
    struct group_op *queue;       /* waiting for the I/O, in libraft's order */
    struct group_op **queue_tail;
    unsigned io_held;  /* appends and snapshot puts the I/O holds */
    uint64_t io_since; /* when io_held last went from 0 to 1 (loop ms) */
    bool put_held;     /* what the I/O holds is an installed snapshot */
    bool io_closing;
    struct raft_io_append batch_req; /* appends handed to the I/O as one */
    struct group_op *batch;          /* its appends, in order */
    struct raft_entry *batch_entries;
    size_t batch_cap;
    uint64_t io_stuck_ms;
    struct group_op *stalled;    /* tests: an append never handed to the I/O */
    struct cn_fault stall_fault; /* tests only */
    void (*failed_cb)(void *data, const char *why);
    void *failed_data;
    bool started;
    char failure[CN_ERRMSG_SIZE + RAFT_ERRMSG_BUF_SIZE]; /* the first failed write; "" if none */
    struct cn_fault append_fault;                        /* tests only */
};

static int from_raft(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return CAIRN_ENOMEM;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return CAIRN_ENOTLEADER;
    case RAFT_SHUTDOWN:
        return CAIRN_ESHUTDOWN;
    case RAFT_TOOBIG:
        return CAIRN_ETOOBIG;
    case RAFT_CORRUPT:
        return CAIRN_ECORRUPT;
    case RAFT_CANTCHANGE:
        return CAIRN_EBUSY; /* another membership change is in progress */
    case RAFT_BADID:
    case RAFT_BADROLE:
    case RAFT_NOTFOUND:
        return CAIRN_EINVAL;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return CAIRN_EEXIST;
    default:
        return CAIRN_EIO;
    }
}

/* After each apply: wake the watches of the namespace whose journal moved. */
static void watches_wake(void *data, struct meta_sm *sm)
{
    struct meta_group *group = data;
    struct meta_watch **p = &group->watches;

    if (sm->event_ns == 0) {
        return;
    }
    while (*p != NULL) {
        struct meta_watch *watch = *p;
        if (watch->ns == sm->event_ns && sm->event_seq > watch->cursor) {
            *p = watch->next;
            watch->next = NULL;
            watch->cb(watch, 0, sm->event_seq);
        } else {
            p = &watch->next;
        }
    }
}

static void group_tune(struct meta_group *group, const struct meta_group_config *config)
{
    if (config->election_timeout_ms != 0) {
        raft_set_election_timeout(&group->raft, config->election_timeout_ms);
    }
    if (config->heartbeat_timeout_ms != 0) {
        raft_set_heartbeat_timeout(&group->raft, config->heartbeat_timeout_ms);
    }
    if (config->snapshot_threshold != 0) {
        raft_set_snapshot_threshold(&group->raft, config->snapshot_threshold);
    }
    if (config->snapshot_trailing != 0) {
        raft_set_snapshot_trailing(&group->raft, config->snapshot_trailing);
    }
    meta_fsm_threshold_base(group->fsm, group->raft.snapshot.threshold);
    raft_set_pre_vote(&group->raft, true);
}

/* ---- Storage failures, and the log's writes in order ----
 *
 * libraft 0.15's libuv I/O marks itself errored at the first failed write of
 * the log (a full disk, EIO) and refuses every write after it until the
 * process restarts, and libraft retries a failed apply forever: either way
 * the replica stops making progress, and neither says so. Every append goes
 * through group_append(), which keeps the first failure; meta_group_failed()
 * reports it (or the fsm's), and config->failed_cb hears of it at once (the
 * node stops then, before more is written).
 *
 * That I/O also leaves a hole in the log when a new segment cannot be
 * created: the append waiting for the segment is neither written nor failed,
 * while appends it is handed afterwards that fit in the old segment are
 * written there, and after a restart every entry behind the hole loads at the
 * wrong index (a replica that silently skipped committed commands, found by
 * test_a_full_disk_stops_the_node_and_a_restart_heals_it). So the I/O is
 * handed new work only when it holds none:
 *
 * - appends, truncates and installed snapshots (a put with no trailing
 *   entries: it replaces the whole log) wait here, in libraft's order, while
 *   the I/O holds an append or such a put; when it holds nothing, the appends
 *   at the head of the queue go to it together (it writes them as one batch,
 *   as it would have), a truncate runs once the appends before it are
 *   written, and an installed snapshot goes alone. Our own snapshots (puts
 *   with trailing entries) go straight to the I/O: they only remove segments
 *   older than entries already applied;
 * - an append that never completes holds back everything after it, so the
 *   log on disk is always a prefix of what libraft wrote; meta_group_failed()
 *   reports an append outstanding for IO_STUCK_MS as a failure (the node
 *   stops, and a restart loads a log without a hole). An installed snapshot
 *   is not timed: a large one may take long to write.
 *
 * The I/O itself orders truncate and snapshot_put only against the appends it
 * holds, which is why all three wait in one queue. */

#define IO_STUCK_MS      30000
#define APPEND_BATCH_MAX ((size_t)4 << 20) /* bytes; a libuv segment is 8 MiB */

enum group_op_kind {
    OP_APPEND,
    OP_TRUNCATE,
    OP_SNAPSHOT_PUT
};

struct group_op {
    enum group_op_kind kind;
    struct meta_group *group;
    struct group_op *next;
    /* OP_APPEND */
    struct raft_io_append append; /* ours, handed to the libuv I/O */
    struct raft_io_append *append_outer;
    raft_io_append_cb append_cb;
    const struct raft_entry *entries;
    unsigned n;
    /* OP_TRUNCATE */
    raft_index index;
    /* OP_SNAPSHOT_PUT */
    struct raft_io_snapshot_put put; /* ours */
    struct raft_io_snapshot_put *put_outer;
    raft_io_snapshot_put_cb put_cb;
    const struct raft_snapshot *snapshot;
    unsigned trailing;
};

static void storage_failed(struct meta_group *group, const char *what, int status)
{
    if (group->failure[0] != '\0') {
        return;
    }
    snprintf(group->failure, sizeof(group->failure), "the Raft log cannot be written: %s (%s)",
             what != NULL             ? what
             : status == RAFT_NOSPACE ? "no space left"
                                      : "I/O error",
             group->io.errmsg[0] != '\0' ? group->io.errmsg : "no detail");
    if (group->failed_cb != NULL) {
        group->failed_cb(group->failed_data, group->failure);
    }
}

static void op_failed(struct meta_group *group, int status)
{
    /* Only the disk's failures, after which the I/O refuses every write: a
     * cancellation at close, an append too big for a segment or a failed
     * allocation leave the log writable. */
    if (status == RAFT_IOERR || status == RAFT_NOSPACE) {
        storage_failed(group, NULL, status);
    }
}

static void queue_run(struct meta_group *group);
static void op_finish(struct group_op *op, int status);

static void io_done(struct meta_group *group)
{
    CN_ASSERT(group->io_held > 0);
    group->io_held--;
}

/* The I/O finished what it held: its callbacks run first, so that what
 * libraft asks for inside them waits and goes out together afterwards. */
static void op_done(struct group_op *op, int status)
{
    struct meta_group *group = op->group;

    if (status != 0) {
        op_failed(group, status);
    }
    op_finish(op, status);
    io_done(group);
    queue_run(group);
}

static void op_append_cb(struct raft_io_append *req, int status)
{
    op_done(CN_CONTAINER_OF(req, struct group_op, append), status);
}

static void op_put_cb(struct raft_io_snapshot_put *req, int status)
{
    struct group_op *op = CN_CONTAINER_OF(req, struct group_op, put);

    op->group->put_held = false;
    op_done(op, status);
}

static void batch_cb(struct raft_io_append *req, int status)
{
    struct meta_group *group = CN_CONTAINER_OF(req, struct meta_group, batch_req);
    struct group_op *list = group->batch;

    group->batch = NULL;
    if (status != 0) {
        op_failed(group, status);
    }
    while (list != NULL) {
        struct group_op *op = list;
        list = op->next;
        op_finish(op, status);
    }
    io_done(group);
    queue_run(group);
}

static void io_held_one(struct meta_group *group)
{
    if (group->io_held++ == 0) {
        group->io_since = uv_now(group->kick.loop);
    }
}

/* Hands op to the I/O: 0, or the I/O's error (op is then still ours). */
static int op_submit(struct meta_group *group, struct group_op *op)
{
    int rv;

    if (op->kind == OP_TRUNCATE) {
        return group->io_truncate(&group->io, op->index);
    }
    if (op->kind == OP_APPEND && cn_fault_tick(&group->append_fault)) {
        snprintf(group->io.errmsg, sizeof(group->io.errmsg), "injected fault");
        return RAFT_IOERR;
    }
    if (op->kind == OP_APPEND && group->stalled == NULL && cn_fault_tick(&group->stall_fault)) {
        group->stalled = op; /* held as the I/O holds one it cannot place */
        rv = 0;
    } else {
        rv = op->kind == OP_APPEND
                 ? group->io_append(&group->io, &op->append, op->entries, op->n, op_append_cb)
                 : group->io_snapshot_put(&group->io, op->trailing, &op->put, op->snapshot,
                                          op_put_cb);
    }
    if (rv == 0) {
        io_held_one(group);
        group->put_held = op->kind == OP_SNAPSHOT_PUT;
    }
    return rv;
}

/* Ends an op that will not reach the I/O, as the I/O would have. */
static void op_finish(struct group_op *op, int status)
{
    if (op->kind == OP_APPEND) {
        op->append_outer->cb = op->append_cb;
        op->append_cb(op->append_outer, status);
    } else if (op->kind == OP_SNAPSHOT_PUT) {
        op->put_outer->cb = op->put_cb;
        op->put_cb(op->put_outer, status);
    }
    free(op);
}

/* Hands the appends at the head of the queue (up to APPEND_BATCH_MAX bytes)
 * to the I/O as one append. It would have written them as one batch; handed
 * one by one from inside its own write callback, they went out as two (the
 * first alone), which cost a quarter of the commits at 16 clients. */
static void batch_submit(struct meta_group *group)
{
    struct group_op **tail = &group->batch;
    struct group_op *op;
    size_t count = 0, bytes = 0;
    int rv;

    CN_ASSERT(group->batch == NULL);
    while ((op = group->queue) != NULL && op->kind == OP_APPEND) {
        size_t size = 0;

        for (unsigned i = 0; i < op->n; i++) {
            size += op->entries[i].buf.len;
        }
        if (count > 0 && bytes + size > APPEND_BATCH_MAX) {
            break; /* the next batch's */
        }
        group->queue = op->next;
        op->next = NULL;
        *tail = op;
        tail = &op->next;
        if (count + op->n > group->batch_cap) {
            group->batch_cap = 2 * (count + op->n);
            group->batch_entries =
                cn_xrealloc(group->batch_entries, group->batch_cap * sizeof(struct raft_entry));
        }
        memcpy(group->batch_entries + count, op->entries, op->n * sizeof(struct raft_entry));
        count += op->n;
        bytes += size;
    }
    if (group->queue == NULL) {
        group->queue_tail = &group->queue;
    }
    if (cn_fault_tick(&group->append_fault)) {
        snprintf(group->io.errmsg, sizeof(group->io.errmsg), "injected fault");
        rv = RAFT_IOERR;
    } else {
        rv = group->io_append(&group->io, &group->batch_req, group->batch_entries, (unsigned)count,
                              batch_cb);
    }
    if (rv == 0) {
        io_held_one(group);
        return;
    }
    op_failed(group, rv);
    op = group->batch;
    group->batch = NULL;
    while (op != NULL) {
        struct group_op *next = op->next;
        op_finish(op, rv);
        op = next;
    }
}

/* Hands the I/O what may go now (see above): only when it holds nothing. */
static void queue_run(struct meta_group *group)
{
    struct group_op *op;
    int rv;

    while (group->io_held == 0 && !group->io_closing && (op = group->queue) != NULL) {
        if (op->kind == OP_APPEND && op->next != NULL && op->next->kind == OP_APPEND) {
            batch_submit(group);
            continue;
        }
        group->queue = op->next;
        if (group->queue == NULL) {
            group->queue_tail = &group->queue;
        }
        rv = op_submit(group, op);
        if (op->kind == OP_TRUNCATE) {
            if (rv != 0) {
                storage_failed(group, "a truncate failed", rv);
            }
            free(op);
        } else if (rv != 0) {
            op_failed(group, rv);
            op_finish(op, rv);
        }
    }
}

/* Runs op now if nothing waits and the I/O holds nothing (its error is then
 * libraft's to see), else queues it. Takes op: freed here unless queued or
 * held by the I/O. */
static int op_start(struct meta_group *group, struct group_op *op)
{
    int rv;

    if (group->queue != NULL || group->io_held > 0) {
        op->next = NULL;
        *group->queue_tail = op;
        group->queue_tail = &op->next;
        return 0;
    }
    rv = op_submit(group, op);
    if (rv != 0) {
        op_failed(group, rv);
    }
    if (rv != 0 || op->kind == OP_TRUNCATE) {
        free(op);
    }
    return rv;
}

static struct group_op *op_new(struct meta_group *group, enum group_op_kind kind)
{
    struct group_op *op = cn_xcalloc(1, sizeof(*op));

    op->kind = kind;
    op->group = group;
    return op;
}

static int group_append(struct raft_io *io,
                        struct raft_io_append *req,
                        const struct raft_entry entries[],
                        unsigned n,
                        raft_io_append_cb cb)
{
    struct meta_group *group = CN_CONTAINER_OF(io, struct meta_group, io);
    struct group_op *op = op_new(group, OP_APPEND);

    op->append_outer = req;
    op->append_cb = cb;
    op->entries = entries;
    op->n = n;
    return op_start(group, op);
}

static int group_truncate(struct raft_io *io, raft_index index)
{
    struct meta_group *group = CN_CONTAINER_OF(io, struct meta_group, io);
    struct group_op *op = op_new(group, OP_TRUNCATE);

    op->index = index;
    return op_start(group, op);
}

static int group_snapshot_put(struct raft_io *io,
                              unsigned trailing,
                              struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot,
                              raft_io_snapshot_put_cb cb)
{
    struct meta_group *group = CN_CONTAINER_OF(io, struct meta_group, io);
    struct group_op *op;

    if (trailing > 0) {
        /* A snapshot of our own, of entries applied here: it only removes
         * segments older than it, and runs beside the appends. */
        return group->io_snapshot_put(io, trailing, req, snapshot, cb);
    }
    op = op_new(group, OP_SNAPSHOT_PUT);
    op->put_outer = req;
    op->put_cb = cb;
    op->snapshot = snapshot;
    op->trailing = trailing;
    return op_start(group, op);
}

/* ---- Work off the loop: libraft's async_work ---- */

/* libraft 0.15's libuv I/O is raft_io version 1, without async_work; this is
 * it, over libuv's thread pool, so that a snapshot's copy of the state (the
 * whole group) runs off the loop while it goes on applying and answering
 * (docs/metadata.md, "Snapshots"). A close waits for the work in flight, whose
 * callback then reaches libraft as canceled. */
struct group_work {
    uv_work_t req;
    struct meta_group *group;
    struct raft_io_async_work *work;
    raft_io_async_work_cb cb;
    int status;
};

static void work_run(uv_work_t *req)
{
    struct group_work *w = CN_CONTAINER_OF(req, struct group_work, req);

    w->status = w->work->work(w->work);
}

static void work_after(uv_work_t *req, int status)
{
    struct group_work *w = CN_CONTAINER_OF(req, struct group_work, req);
    struct meta_group *group = w->group;
    raft_io_close_cb close_cb = group->io_close_cb;

    group->works--;
    w->cb(w->work, status != 0 || group->io_closing ? RAFT_CANCELED : w->status);
    free(w);
    if (group->works == 0 && close_cb != NULL) {
        group->io_close_cb = NULL;
        group->io_close(&group->io, close_cb);
    }
}

static int group_async_work(struct raft_io *io,
                            struct raft_io_async_work *work,
                            raft_io_async_work_cb cb)
{
    struct meta_group *group = CN_CONTAINER_OF(io, struct meta_group, io);
    struct group_work *w;

    if (group->io_closing) {
        return RAFT_CANCELED;
    }
    w = cn_xcalloc(1, sizeof(*w));
    w->group = group;
    w->work = work;
    w->cb = cb;
    if (uv_queue_work(group->kick.loop, &w->req, work_run, work_after) != 0) {
        free(w);
        return RAFT_IOERR;
    }
    group->works++;
    return 0;
}

/* libraft closes its I/O: what still waits here is canceled, as the I/O
 * cancels the appends it has not written yet. */
static void group_io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct meta_group *group = CN_CONTAINER_OF(io, struct meta_group, io);
    struct group_op *list = group->queue;

    group->io_closing = true;
    group->queue = NULL;
    group->queue_tail = &group->queue;
    if (group->stalled != NULL) {
        group->io_held--;
        op_finish(group->stalled, RAFT_CANCELED);
        group->stalled = NULL;
    }
    while (list != NULL) {
        struct group_op *op = list;
        list = op->next;
        op_finish(op, RAFT_CANCELED);
    }
    if (group->works > 0) {
        group->io_close_cb = cb; /* the last work_after() closes the I/O */
        return;
    }
    group->io_close(io, cb);
}

bool meta_group_failed(struct meta_group *group, char *errmsg)
{
    const char *fsm_failure = meta__fsm_failure(group->fsm);

    if (fsm_failure != NULL) {
        cn_errmsgf(errmsg, CAIRN_EIO, "the state machine failed: %s", fsm_failure);
        return true;
    }
    /* An installed snapshot is not timed: a large one may take long to write. */
    if (group->failure[0] == '\0' && group->io_held > 0 && !group->io_closing && !group->put_held &&
        uv_now(group->kick.loop) - group->io_since > group->io_stuck_ms) {
        char what[64];
        snprintf(what, sizeof(what), "a write outstanding for %llu ms",
                 (unsigned long long)group->io_stuck_ms);
        storage_failed(group, what, RAFT_IOERR);
    }
    if (group->failure[0] != '\0') {
        cn_errmsgf(errmsg, CAIRN_EIO, "%.*s", CN_ERRMSG_SIZE - 1, group->failure);
        return true;
    }
    if (group->started && !group->closing && raft_state(&group->raft) == RAFT_UNAVAILABLE) {
        cn_errmsgf(errmsg, CAIRN_EIO, "libraft stopped the group: %s", raft_errmsg(&group->raft));
        return true;
    }
    return false;
}

struct cn_fault *meta_group_append_fault(struct meta_group *group)
{
    return &group->append_fault;
}

struct cn_fault *meta_group_stall_fault(struct meta_group *group)
{
    return &group->stall_fault;
}

struct meta_snapshot_probe *meta_group_snapshot_probe(struct meta_group *group)
{
    return meta_fsm_snapshot_probe(group->fsm);
}

unsigned meta_group_snapshot_threshold(struct meta_group *group)
{
    return group->raft.snapshot.threshold;
}

int meta_group_new(struct uv_loop_s *loop,
                   struct meta_sm *sm,
                   const struct meta_group_config *config,
                   struct meta_group **out,
                   char *errmsg)
{
    struct meta_group *group = cn_xcalloc(1, sizeof(*group));
    int rv;

    CN_ASSERT(config->transport != NULL && config->id != 0);
    group->sm = sm;
    group->transport = config->transport;
    cn_buf_init(&group->buf);
    meta_fsm_new(sm, true, &group->fsm);
    rv = raft_uv_init(&group->io, loop, config->dir, config->transport);
    if (rv != 0) {
        cn_errmsgf(errmsg, CAIRN_EIO, "raft_uv_init(%s): %s", config->dir, group->io.errmsg);
        goto err_free;
    }
    cn_fault_init(&group->append_fault);
    group->io_append = group->io.append;
    group->io_truncate = group->io.truncate;
    group->io_snapshot_put = group->io.snapshot_put;
    group->io_close = group->io.close;
    group->io.append = group_append;
    group->io.truncate = group_truncate;
    group->io.snapshot_put = group_snapshot_put;
    group->io.close = group_io_close;
    /* Debian's libraft 0.15 libuv I/O is version 1 (no async_work), and
     * raft_init() refuses an fsm with snapshot_async over it: ours adds it. */
    group->io.version = 2;
    group->io.async_work = group_async_work;
    group->queue_tail = &group->queue;
    group->io_stuck_ms = config->io_stuck_ms != 0 ? config->io_stuck_ms : IO_STUCK_MS;
    cn_fault_init(&group->stall_fault);
    group->failed_cb = config->failed_cb;
    group->failed_data = config->failed_data;
    rv =
        raft_init(&group->raft, &group->io, meta_fsm_raft(group->fsm), config->id, config->address);
    if (rv != 0) {
        cn_errmsgf(errmsg, CAIRN_EIO, "raft_init: %s", raft_errmsg(&group->raft));
        goto err_close_io;
    }
    meta_fsm_attach(group->fsm, &group->raft);
    meta__fsm_on_applied(group->fsm, watches_wake, group);
    group->raft.data = group;
    group_tune(group, config);
    CN_ASSERT(uv_timer_init(loop, &group->kick) == 0);
    group->kick.data = group;
    *out = group;
    return 0;

err_close_io:
    raft_uv_close(&group->io);
err_free:
    meta_fsm_free(group->fsm);
    free(group);
    return from_raft(rv) == CAIRN_ENOMEM ? CAIRN_ENOMEM : CAIRN_EIO;
}

int meta_group_bootstrap(struct meta_group *group,
                         const struct meta_server *servers,
                         unsigned n,
                         char *errmsg)
{
    struct raft_configuration conf;
    int rv = 0;

    raft_configuration_init(&conf);
    for (unsigned i = 0; rv == 0 && i < n; i++) {
        rv = raft_configuration_add(&conf, servers[i].id, servers[i].address, RAFT_VOTER);
    }
    if (rv == 0) {
        rv = raft_bootstrap(&group->raft, &conf);
    }
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP) {
        return CAIRN_EEXIST; /* the group has state already */
    }
    if (rv != 0) {
        return cn_errmsgf(errmsg, from_raft(rv), "raft_bootstrap: %s", raft_errmsg(&group->raft));
    }
    return 0;
}

int meta_group_start(struct meta_group *group, char *errmsg)
{
    int rv = raft_start(&group->raft);

    if (rv != 0) {
        return cn_errmsgf(errmsg, from_raft(rv), "raft_start: %s", raft_errmsg(&group->raft));
    }
    group->started = true;
    return 0;
}

static void group_closed(struct meta_group *group)
{
    if (--group->closes_pending > 0) {
        return;
    }
    if (group->close_cb != NULL) {
        group->close_cb(group->close_data);
    }
    free(group);
}

static void group_raft_close_cb(struct raft *raft)
{
    struct meta_group *group = raft->data;

    CN_ASSERT(group->reads_waiting == NULL && group->reads_inflight == NULL);
    CN_ASSERT(group->watches == NULL);
    raft_uv_close(&group->io);
    free(group->batch_entries);
    meta_fsm_free(group->fsm);
    cn_buf_close(&group->buf);
    group_closed(group);
}

static void kick_close_cb(uv_handle_t *handle)
{
    group_closed(handle->data);
}

static void reads_finish(struct meta_read **list, int rv)
{
    while (*list != NULL) {
        struct meta_read *read = *list;
        *list = read->next;
        read->next = NULL;
        read->cb(read, rv);
    }
}

void meta_group_close(struct meta_group *group, meta_group_close_cb cb, void *data)
{
    CN_ASSERT(!group->closing);
    group->closing = true;
    group->close_cb = cb;
    group->close_data = data;
    /* Waiting reads never got a barrier: fail them now. In-flight ones get
     * their barrier's callback (RAFT_SHUTDOWN) during raft_close(). */
    reads_finish(&group->reads_waiting, CAIRN_ESHUTDOWN);
    group->closes_pending = 2;
    uv_close((uv_handle_t *)&group->kick, kick_close_cb);
    while (group->watches != NULL) {
        struct meta_watch *watch = group->watches;
        group->watches = watch->next;
        watch->next = NULL;
        watch->cb(watch, CAIRN_ESHUTDOWN, 0);
    }
    raft_close(&group->raft, group_raft_close_cb);
}

struct meta_sm *meta_group_sm(struct meta_group *group)
{
    return group->sm;
}

meta_index meta_group_last_index(struct meta_group *group)
{
    return raft_last_index(&group->raft);
}

bool meta_group_is_leader(struct meta_group *group)
{
    return raft_state(&group->raft) == RAFT_LEADER;
}

uint64_t meta_group_leader(struct meta_group *group, const char **address)
{
    raft_id id;

    raft_leader(&group->raft, &id, address);
    return id;
}

/* ---- Proposals ---- */

static void propose_cb(struct raft_apply *apply, int status, void *result)
{
    struct meta_propose *req = CN_CONTAINER_OF(apply, struct meta_propose, apply);
    struct meta_result failed = {.rv = from_raft(status)};

    req->cb(req, status == 0 ? result : &failed);
}

int meta_group_propose(struct meta_group *group,
                       struct meta_propose *req,
                       const Cairn__Cmd__Command *cmd,
                       meta_propose_cb cb)
{
    struct raft_buffer buf;
    int rv;

    if (group->closing) {
        return CAIRN_ESHUTDOWN;
    }
    if (raft_state(&group->raft) != RAFT_LEADER) {
        return CAIRN_ENOTLEADER;
    }
    rv = meta_command_encode(cmd, &group->buf);
    if (rv != 0) {
        return rv;
    }
    buf.len = group->buf.len;
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL) {
        return CAIRN_ENOMEM;
    }
    memcpy(buf.base, group->buf.base, buf.len);
    req->cb = cb;
    req->apply.data = req;
    rv = raft_apply(&group->raft, &req->apply, &buf, 1, propose_cb);
    if (rv != 0) {
        raft_free(buf.base);
        return from_raft(rv);
    }
    return 0;
}

/* ---- Strong reads: one barrier per batch ---- */

static void barrier_start(struct meta_group *group);
static void kick_cb(uv_timer_t *timer);

/* Starts the next barrier on the next loop turn (see struct meta_group). */
static void kick_schedule(struct meta_group *group)
{
    if (!group->kick_pending && !group->closing) {
        group->kick_pending = true;
        CN_ASSERT(uv_timer_start(&group->kick, kick_cb, 0, 0) == 0);
    }
}

static void kick_cb(uv_timer_t *timer)
{
    struct meta_group *group = timer->data;

    group->kick_pending = false;
    if (group->closing || group->barrier_running || group->reads_waiting == NULL) {
        return;
    }
    if (raft_state(&group->raft) != RAFT_LEADER) {
        reads_finish(&group->reads_waiting, CAIRN_ENOTLEADER);
        return;
    }
    barrier_start(group);
}

static void barrier_cb(struct raft_barrier *barrier, int status)
{
    struct meta_group *group = CN_CONTAINER_OF(barrier, struct meta_group, barrier);

    CN_ASSERT(group->barrier_running);
    group->barrier_running = false;
    reads_finish(&group->reads_inflight, from_raft(status)); /* 0: all may read now */
    if (group->reads_waiting != NULL) {
        kick_schedule(group);
    }
}

static void barrier_start(struct meta_group *group)
{
    int rv;

    CN_ASSERT(!group->barrier_running && group->reads_inflight == NULL);
    group->reads_inflight = group->reads_waiting;
    group->reads_waiting = NULL;
    group->barrier.data = group;
    rv = raft_barrier(&group->raft, &group->barrier, barrier_cb);
    if (rv != 0) {
        reads_finish(&group->reads_inflight, from_raft(rv));
        return;
    }
    group->barrier_running = true;
}

int meta_group_read(struct meta_group *group, struct meta_read *req, meta_read_cb cb)
{
    if (group->closing) {
        return CAIRN_ESHUTDOWN;
    }
    if (raft_state(&group->raft) != RAFT_LEADER) {
        return CAIRN_ENOTLEADER;
    }
    req->cb = cb;
    req->next = group->reads_waiting;
    group->reads_waiting = req;
    if (!group->barrier_running) {
        kick_schedule(group); /* reads arriving this turn share one barrier */
    }
    return 0;
}

/* ---- Watches ---- */

int meta_group_watch(struct meta_group *group,
                     struct meta_watch *watch,
                     uint64_t ns,
                     uint64_t cursor,
                     meta_watch_cb cb,
                     uint64_t *seq)
{
    Cairn__Cmd__Namespace *record;
    int rv;

    if (group->closing) {
        return CAIRN_ESHUTDOWN;
    }
    rv = meta_get_namespace(group->sm, ns, &record);
    if (rv != 0) {
        return rv;
    }
    *seq = record->journal_seq;
    meta_record_free(record);
    if (*seq > cursor) {
        return 0; /* passed already: not registered */
    }
    watch->ns = ns;
    watch->cursor = cursor;
    watch->cb = cb;
    watch->next = group->watches;
    group->watches = watch;
    return 0;
}

void meta_group_unwatch(struct meta_group *group, struct meta_watch *watch)
{
    for (struct meta_watch **p = &group->watches; *p != NULL; p = &(*p)->next) {
        if (*p == watch) {
            *p = watch->next;
            watch->next = NULL;
            return;
        }
    }
}

/* ---- Membership ---- */

static void change_cb(struct raft_change *change, int status)
{
    struct meta_change *req = CN_CONTAINER_OF(change, struct meta_change, change);

    req->cb(req, from_raft(status));
}

static int change_check(struct meta_group *group, struct meta_change *req, meta_change_cb cb)
{
    if (group->closing) {
        return CAIRN_ESHUTDOWN;
    }
    req->cb = cb;
    req->change.data = req;
    return 0;
}

int meta_group_add(struct meta_group *group,
                   struct meta_change *req,
                   uint64_t id,
                   const char *address,
                   meta_change_cb cb)
{
    int rv = change_check(group, req, cb);

    if (rv == 0) {
        rv = from_raft(raft_add(&group->raft, &req->change, id, address, change_cb));
    }
    return rv;
}

int meta_group_assign(
    struct meta_group *group, struct meta_change *req, uint64_t id, int role, meta_change_cb cb)
{
    int rv = change_check(group, req, cb);

    if (rv == 0) {
        rv = from_raft(raft_assign(&group->raft, &req->change, id, role, change_cb));
    }
    return rv;
}

int meta_group_remove(struct meta_group *group,
                      struct meta_change *req,
                      uint64_t id,
                      meta_change_cb cb)
{
    int rv = change_check(group, req, cb);

    if (rv == 0) {
        rv = from_raft(raft_remove(&group->raft, &req->change, id, change_cb));
    }
    return rv;
}

static void transfer_cb(struct raft_transfer *transfer)
{
    struct meta_group *group = transfer->data;
    struct meta_transfer *req = group->transfer_req;

    group->transfer_req = NULL;
    req->cb(req);
}

int meta_group_transfer(struct meta_group *group,
                        struct meta_transfer *req,
                        uint64_t id,
                        meta_transfer_cb cb)
{
    int rv;

    if (group->closing) {
        return CAIRN_ESHUTDOWN;
    }
    if (group->transfer_req != NULL) {
        return CAIRN_EBUSY; /* libraft runs one transfer at a time */
    }
    req->cb = cb;
    group->transfer.data = group;
    group->transfer_req = req;
    rv = from_raft(raft_transfer(&group->raft, &group->transfer, id, transfer_cb));
    if (rv != 0) {
        group->transfer_req = NULL;
    }
    return rv;
}

const struct raft *meta_group_raft(const struct meta_group *group)
{
    return &group->raft;
}
