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
    /* Storage failures (below): every log write goes through group_append(). */
    int (*uv_append)(struct raft_io *io,
                     struct raft_io_append *req,
                     const struct raft_entry entries[],
                     unsigned n,
                     raft_io_append_cb cb);
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
    raft_set_pre_vote(&group->raft, true);
}

/* ---- Storage failures ----
 *
 * libraft 0.15's libuv I/O marks itself errored at the first failed write of
 * the log (a full disk, EIO) and refuses every write after it until the
 * process restarts, and libraft retries a failed apply forever: either way
 * the replica stops making progress, and neither says so. Every append goes
 * through group_append(), which keeps the first failure; meta_group_failed()
 * reports it (or the fsm's), and config->failed_cb hears of it at once (the
 * node stops then, before more is written).
 *
 * Not covered: when a new segment cannot be created, that I/O can leave the
 * append waiting for it neither written nor failed while smaller appends
 * after it are written into the old segment (a hole; after a restart the
 * entries behind it load at the wrong indexes). Handing the I/O one append
 * at a time would prevent it, but appends must then stay ordered with the
 * I/O's truncate and snapshot_put as libraft issued them (docs/node.md,
 * "Storage failures"). */

struct group_append {
    struct raft_io_append req;    /* ours, handed to the libuv I/O */
    struct raft_io_append *outer; /* libraft's */
    raft_io_append_cb cb;         /* libraft's */
    struct meta_group *group;
};

static void append_failed(struct meta_group *group, int status)
{
    /* Only the disk's failures, after which the I/O refuses every write: a
     * cancellation at close, an append too big for a segment or a failed
     * allocation leave the log writable. */
    if (group->failure[0] != '\0' || (status != RAFT_IOERR && status != RAFT_NOSPACE)) {
        return;
    }
    snprintf(group->failure, sizeof(group->failure), "the Raft log cannot be written: %s (%s)",
             status == RAFT_NOSPACE ? "no space left" : "I/O error",
             group->io.errmsg[0] != '\0' ? group->io.errmsg : "no detail");
    if (group->failed_cb != NULL) {
        group->failed_cb(group->failed_data, group->failure);
    }
}

static void group_append_cb(struct raft_io_append *req, int status)
{
    struct group_append *append = CN_CONTAINER_OF(req, struct group_append, req);
    struct raft_io_append *outer = append->outer;
    raft_io_append_cb cb = append->cb;

    if (status != 0) {
        append_failed(append->group, status);
    }
    free(append);
    outer->cb = cb;
    cb(outer, status);
}

static int group_append(struct raft_io *io,
                        struct raft_io_append *req,
                        const struct raft_entry entries[],
                        unsigned n,
                        raft_io_append_cb cb)
{
    struct meta_group *group = CN_CONTAINER_OF(io, struct meta_group, io);
    struct group_append *append = cn_xmalloc(sizeof(*append));
    int rv;

    append->outer = req;
    append->cb = cb;
    append->group = group;
    if (cn_fault_tick(&group->append_fault)) {
        rv = RAFT_IOERR;
        snprintf(io->errmsg, sizeof(io->errmsg), "injected fault");
    } else {
        rv = group->uv_append(io, &append->req, entries, n, group_append_cb);
    }
    if (rv != 0) {
        append_failed(group, rv);
        free(append);
    }
    return rv;
}

bool meta_group_failed(struct meta_group *group, char *errmsg)
{
    const char *fsm_failure = meta__fsm_failure(group->fsm);

    if (fsm_failure != NULL) {
        cn_errmsgf(errmsg, CAIRN_EIO, "the state machine failed: %s", fsm_failure);
        return true;
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
    /* Debian's libraft 0.15 libuv I/O has no async_work (io->version 1), and
     * raft_init() refuses an fsm with snapshot_async then: snapshots are made
     * on the loop for now (docs/metadata.md, "Snapshots"). */
    meta_fsm_new(sm, false, &group->fsm);
    rv = raft_uv_init(&group->io, loop, config->dir, config->transport);
    if (rv != 0) {
        cn_errmsgf(errmsg, CAIRN_EIO, "raft_uv_init(%s): %s", config->dir, group->io.errmsg);
        goto err_free;
    }
    cn_fault_init(&group->append_fault);
    group->uv_append = group->io.append;
    group->io.append = group_append;
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
