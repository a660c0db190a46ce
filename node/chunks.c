/*
 * The chunk driver: repair and rebalance, run by the daemon itself.
 *
 * Every data group's chunk index records, per chunk, its scheme and the node
 * of each shard (Chunk.nodes). The leader of a group walks that index a page
 * at a time (meta_list_chunks), at most chunks_per_tick chunks a tick, and
 * for each chunk:
 *
 *   1. skips it while one of its nodes is suspect (the grace period: a node
 *      is given up on only once the system group says it is down);
 *   2. repairs it (node_blocks_repair: verify every shard, rebuild the bad
 *      ones from any k) and records the new homes (ChunkRecord) if any moved;
 *   3. rebalances it (node_blocks_rebalance: shards off draining nodes and
 *      onto joined ones), records the new homes, and only once that record
 *      is committed deletes the old copies.
 *
 * Every record is conditional: it applies only if the index still holds the
 * homes the job started from (ChunkRecord.if_nodes). A job that read the
 * index before another writer moved the chunk (a gateway storing the same
 * content again, a former leader's job still running) gets CAIRN_ECONFLICT,
 * records nothing and deletes nothing.
 *
 * A pass ends when every led group's index was walked; the next begins at
 * once. Members and their states come from the cluster map the node keeps
 * (refreshed by its heartbeats). One node_blocks carries every call.
 */
#include <stdlib.h>
#include <string.h>

#include "chunks.h"
#include "cluster.h"
#include "node_repair.h"

#define PAGE_MAX        64
#define CALL_TIMEOUT_MS 30000
#define URGENT_MAX      64
#define URGENT_RETRIES  8    /* undelivered hints or unreachable shards, then the walk */
#define HINT_TIMEOUT_MS 5000 /* a hint that takes longer goes again, to a fresher leader */

struct job;

struct node_chunks {
    struct node_cluster *cluster;
    struct node_blocks *blocks;
    unsigned per_tick;
    uint64_t group; /* the group being walked; 0 before the first */
    uint8_t after[32];
    bool has_after;
    unsigned in_flight;
    unsigned hints_in_flight; /* RepairHint calls sent, not yet answered */
    bool stopping;
    uint64_t suspect[NODE_MEMBERS_MAX];
    unsigned suspect_count;
    uint64_t degraded_this_pass;
    struct node_repair_progress progress;
    struct urgent {
        uint64_t group;
        uint8_t id[32];
        unsigned retries; /* failures so far (a suspect node's grace period is not one) */
    } urgent[URGENT_MAX]; /* hinted chunks waiting: for a suspect node, or to go again */
    unsigned urgent_count;
};

struct job {
    struct node_chunks *chunks;
    uint64_t group;
    Cairn__Cmd__Chunk *record;          /* a copy, with nodes[] updated as shards move */
    uint64_t recorded[NODE_SHARDS_MAX]; /* the nodes the index holds (what a record expects) */
    uint64_t from[NODE_SHARDS_MAX];     /* rebalance: old homes to delete once recorded */
    unsigned deletes;
    unsigned moved; /* rebalance: shards copied to new homes, counted once recorded */
    bool rebalanced;
    bool partial_view;  /* a shard's node did not answer the check */
    bool hinted;        /* started from hint: tried again if not repaired */
    bool again;         /* not repaired (a node did not answer, a step failed) */
    struct urgent hint; /* when hinted */
    struct meta_propose propose;
};

/* Frees a stopping driver once nothing of it is in flight (the block client
 * was freed by node__chunks_stop()). */
static void chunks_release(struct node_chunks *chunks)
{
    if (chunks->stopping && chunks->in_flight == 0 && chunks->hints_in_flight == 0) {
        free(chunks);
    }
}

static void urgent_add(struct node_chunks *chunks, const struct urgent *hint);

static void job_end(struct job *job)
{
    struct node_chunks *chunks = job->chunks;

    if (job->hinted && job->again && !chunks->stopping) {
        job->hint.retries++;
        urgent_add(chunks, &job->hint);
    }
    meta_record_free(job->record);
    free(job);
    chunks->in_flight--;
    chunks_release(chunks);
}

/* ---- log fields ---- */

/* "1,4,2": the node of each shard. */
static const char *nodes_text(const uint64_t *ids, size_t n, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++) {
        int w =
            snprintf(buf + len, size - len, "%s%llu", i > 0 ? "," : "", (unsigned long long)ids[i]);
        len += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

/* The first 8 bytes of a chunk id in hex: enough to grep the logs by. */
static const char *id_text(const uint8_t *id, char buf[17])
{
    cn_hex_encode(id, 8, buf);
    return buf;
}

/* ---- members, from the cluster map ---- */

static void members_refresh(struct node_chunks *chunks)
{
    const Cairn__Wire__ClusterMap *map = chunks->cluster->map;
    struct node_member *members;
    unsigned count = 0;

    if (map == NULL) {
        return;
    }
    members = cn_xcalloc(map->n_nodes + 1, sizeof(*members));
    chunks->suspect_count = 0;
    for (size_t i = 0; i < map->n_nodes && count < NODE_BLOCKS_MEMBERS_MAX; i++) {
        const Cairn__Wire__MapNode *node = map->nodes[i];
        struct node_member *m = &members[count];
        Cairn__Wire__NodeState state = node->state;

        if (state == CAIRN__WIRE__NODE_STATE__NODE_REMOVED || node->address == NULL ||
            strlen(node->address) >= sizeof(m->address)) {
            continue;
        }
        m->node_id = node->id;
        m->domain = node_domain_id(node->id, node->failure_domain);
        snprintf(m->address, sizeof(m->address), "%s", node->address);
        m->up = state == CAIRN__WIRE__NODE_STATE__NODE_UP ||
                state == CAIRN__WIRE__NODE_STATE__NODE_SUSPECT ||
                state == CAIRN__WIRE__NODE_STATE__NODE_DRAINING;
        m->draining = state == CAIRN__WIRE__NODE_STATE__NODE_DRAINING;
        if (state == CAIRN__WIRE__NODE_STATE__NODE_SUSPECT &&
            chunks->suspect_count < NODE_MEMBERS_MAX) {
            chunks->suspect[chunks->suspect_count++] = node->id;
        }
        count++;
    }
    CN_ASSERT(node_blocks_set_members(chunks->blocks, members, count) == 0);
    free(members);
}

static bool on_suspect_node(const struct node_chunks *chunks, const Cairn__Cmd__Chunk *chunk)
{
    for (size_t i = 0; i < chunk->n_nodes; i++) {
        for (unsigned j = 0; j < chunks->suspect_count; j++) {
            if (chunk->nodes[i] == chunks->suspect[j]) {
                return true;
            }
        }
    }
    return false;
}

/* A hosted replica this node leads and may work on. */
static bool usable(const struct node_group *g)
{
    return g != NULL && g->group != NULL && !g->closing && !g->dropping &&
           meta_group_is_leader(g->group);
}

/* ---- one chunk ---- */

static void rebalance_start(struct job *job);

static void deleted_cb(void *data, int rv)
{
    struct job *job = data;

    /* A copy that stays (node down) is an extra, not a loss. */
    if (rv != 0) {
        char id[17];
        CN_LOG(CN_DEBUG, "old copy not deleted", "chunk=%s err=%s",
               id_text(job->record->id.data, id), cairn_errname(rv));
    }
    if (--job->deletes == 0) {
        job_end(job);
    }
}

static void delete_old_copies(struct job *job)
{
    char id[17], from[128];

    CN_LOG(CN_DEBUG, "deleting old copies", "chunk=%s group=%llu from=%s",
           id_text(job->record->id.data, id), (unsigned long long)job->group,
           nodes_text(job->from, job->record->n_nodes, from, sizeof(from)));
    job->deletes = 1; /* held until every delete is sent */
    for (unsigned i = 0; i < job->record->n_nodes && !job->chunks->stopping; i++) {
        if (job->from[i] != 0 &&
            node_blocks_delete(job->chunks->blocks, job->from[i], job->record->id.data, i,
                               CALL_TIMEOUT_MS, deleted_cb, job) == 0) {
            job->deletes++;
        }
    }
    deleted_cb(job, 0);
}

static void recorded_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct job *job = req->data;
    char id[17], nodes[128];

    CN_LOG(CN_DEBUG, "chunk homes recorded", "chunk=%s group=%llu nodes=%s epoch=%llu err=%s",
           id_text(job->record->id.data, id), (unsigned long long)job->group,
           nodes_text(job->record->nodes, job->record->n_nodes, nodes, sizeof(nodes)),
           (unsigned long long)job->record->placement_epoch, cairn_errname(result->rv));
    if (result->rv != 0 || job->chunks->stopping) {
        /* Not recorded (also CAIRN_ECONFLICT: the homes changed since this
         * job read them): keep every copy; the next pass sees the index's
         * homes and finds the new copies as extras. */
        job_end(job);
        return;
    }
    memcpy(job->recorded, job->record->nodes, job->record->n_nodes * sizeof(uint64_t));
    if (job->rebalanced) {
        /* Counted here, not at the copy: a copy whose record lost (another
         * leader's job, a gateway's store) is made again by the next pass. */
        job->chunks->progress.shards_moved += job->moved;
        delete_old_copies(job);
    } else if (job->partial_view) {
        job_end(job); /* some shard's node did not answer: no moves this pass */
    } else {
        rebalance_start(job);
    }
}

/* Proposes the job's record (with its new homes) to the group. */
static void record(struct job *job)
{
    struct node_group *g = node__group_find(job->chunks->cluster, job->group);
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__ChunkRecord op = CAIRN__CMD__CHUNK_RECORD__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];

    if (!usable(g) || job->chunks->stopping) {
        job_end(job);
        return;
    }
    node__command_header(job->chunks->cluster, &header, request_id);
    job->record->placement_epoch++;
    op.chunk = job->record;
    op.if_nodes = true; /* only over the homes this job started from */
    op.expect_nodes = job->recorded;
    op.n_expect_nodes = job->record->n_nodes;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_CHUNK_RECORD;
    cmd.chunk_record = &op;
    job->propose.data = job;
    if (meta_group_propose(g->group, &job->propose, &cmd, recorded_cb) != 0) {
        job_end(job); /* leadership moved: the new leader's walk takes over */
    }
}

static void rebalanced_cb(void *data, int rv, const struct node_rebalance_result *result)
{
    struct job *job = data;
    struct node_chunks *chunks = job->chunks;
    char id[17], from[128], to[128];

    /* Moves that failed are tried again next pass. */
    if (result->moved > 0 || rv != 0) {
        CN_LOG(CN_DEBUG, "chunk rebalanced", "chunk=%s group=%llu from=%s to=%s moved=%u err=%s",
               id_text(job->record->id.data, id), (unsigned long long)job->group,
               nodes_text(job->record->nodes, job->record->n_nodes, from, sizeof(from)),
               nodes_text(result->node_ids, result->shard_count, to, sizeof(to)), result->moved,
               cairn_errname(rv));
    }
    if (result->moved == 0 || chunks->stopping) {
        job_end(job);
        return;
    }
    job->moved = result->moved;
    for (unsigned i = 0; i < result->shard_count && i < job->record->n_nodes; i++) {
        job->record->nodes[i] = result->node_ids[i];
        job->from[i] = result->from[i];
    }
    job->rebalanced = true;
    record(job);
}

static void rebalance_start(struct job *job)
{
    if (job->chunks->stopping ||
        node_blocks_rebalance(job->chunks->blocks, job->record->id.data, job->record->nodes,
                              (unsigned)job->record->n_nodes, NULL, 0, CALL_TIMEOUT_MS,
                              rebalanced_cb, job) != 0) {
        job_end(job); /* too few nodes to place on: nothing to move to */
    }
}

static void repaired_cb(void *data, int rv, const struct node_repair_result *result)
{
    struct job *job = data;
    struct node_chunks *chunks = job->chunks;
    bool moved = false;
    char id[17], from[128], to[128];

    if (chunks->stopping) {
        job_end(job);
        return;
    }
    chunks->progress.chunks_checked++;
    chunks->progress.shards_rebuilt += result->rebuilt;
    nodes_text(job->record->nodes, job->record->n_nodes, from, sizeof(from));
    nodes_text(result->node_ids, result->shard_count, to, sizeof(to));
    if (result->missing > 0 && rv == 0) {
        chunks->progress.chunks_repaired++;
        CN_LOG(CN_DEBUG, "chunk repaired", "chunk=%s group=%llu from=%s to=%s bad=%#x lost=%#x",
               id_text(job->record->id.data, id), (unsigned long long)job->group, from, to,
               result->bad, result->lost);
    } else if (rv != 0) {
        chunks->degraded_this_pass++;
        CN_LOG(CN_WARN, "chunk not repaired",
               "chunk=%s group=%llu nodes=%s to=%s bad=%#x lost=%#x missing=%u rebuilt=%u "
               "step=%s err=%s",
               id_text(job->record->id.data, id), (unsigned long long)job->group, from, to,
               result->bad, result->lost, result->missing, result->rebuilt,
               result->step != NULL ? result->step : "-", cairn_errname(rv));
    }
    for (unsigned i = 0; i < result->shard_count && i < job->record->n_nodes; i++) {
        moved |= job->record->nodes[i] != result->node_ids[i];
        job->record->nodes[i] = result->node_ids[i];
    }
    if (result->unreachable > 0) {
        chunks->progress.chunks_waiting++;
        job->partial_view = true;
    }
    job->again = rv != 0 || result->unreachable > 0;
    if (moved) {
        record(job); /* then rebalance, once the new homes are committed */
    } else if (rv == 0 && !job->partial_view) {
        rebalance_start(job);
    } else {
        job_end(job);
    }
}

/* Checks and repairs one chunk of group's index; hint: the hinted chunk's
 * entry, when it comes from one (NULL from the walk). */
static void job_start(struct node_chunks *chunks,
                      uint64_t group,
                      const Cairn__Cmd__Chunk *chunk,
                      const struct urgent *hint)
{
    uint8_t *packed;
    size_t len = cairn__cmd__chunk__get_packed_size(chunk);
    struct job *job;

    if (chunk->id.len != 32 ||
        chunk->n_nodes != (size_t)chunk->data_shards + chunk->parity_shards ||
        chunk->data_shards < 1 || chunk->n_nodes > NODE_SHARDS_MAX) {
        return; /* no placement recorded (or not one we understand): nothing to check */
    }
    if (on_suspect_node(chunks, chunk)) {
        chunks->progress.chunks_waiting++;
        return;
    }
    job = cn_xcalloc(1, sizeof(*job));
    job->chunks = chunks;
    job->group = group;
    job->hinted = hint != NULL;
    if (hint != NULL) {
        job->hint = *hint;
    }
    packed = cn_xmalloc(len);
    cairn__cmd__chunk__pack(chunk, packed);
    job->record = cairn__cmd__chunk__unpack(NULL, len, packed);
    free(packed);
    CN_ASSERT(job->record != NULL);
    memcpy(job->recorded, chunk->nodes, chunk->n_nodes * sizeof(uint64_t));
    chunks->in_flight++;
    if (node_blocks_repair(chunks->blocks, job->record->id.data, job->record->nodes,
                           job->record->data_shards, job->record->parity_shards, CALL_TIMEOUT_MS,
                           repaired_cb, job) != 0) {
        job_end(job);
    }
}

/* ---- the walk ---- */

struct page {
    struct node_chunks *chunks;
    uint64_t group;
    unsigned count;
};

static int page_chunk(void *data, const Cairn__Cmd__Chunk *chunk)
{
    struct page *page = data;

    job_start(page->chunks, page->group, chunk, NULL);
    memcpy(page->chunks->after, chunk->id.data, 32);
    page->chunks->has_after = true;
    page->count++;
    return 0;
}

/* The next data group after `group` that this node leads, or 0. */
static uint64_t next_led_group(struct node_chunks *chunks, uint64_t group)
{
    uint64_t best = 0;

    for (struct node_group *g = chunks->cluster->groups; g != NULL; g = g->next) {
        if (g->id > group && usable(g) && (best == 0 || g->id < best)) {
            best = g->id;
        }
    }
    return best;
}

/* Moves the walk on to the next data group this node leads; after the last,
 * a pass is complete. */
static void next_group(struct node_chunks *chunks)
{
    chunks->group = next_led_group(chunks, chunks->group);
    chunks->has_after = false;
    if (chunks->group == 0) {
        chunks->progress.passes++;
        chunks->progress.chunks_degraded = chunks->degraded_this_pass;
        chunks->degraded_this_pass = 0;
    }
}

/* ---- hints: a chunk with a shard set aside, checked now ---- */

/* Starts the hinted chunk's job if it may start now: true when done with it
 * (a job started, or nothing to do), false to try again on a later tick (a
 * shard on a suspect node: the grace period). */
static bool urgent_try(struct node_chunks *chunks, const struct urgent *hint)
{
    struct node_group *g = node__group_find(chunks->cluster, hint->group);
    Cairn__Cmd__Chunk *record = NULL;
    bool done = true;

    if (usable(g) && meta_get_chunk(g->sm, hint->id, &record) == 0) {
        done = !on_suspect_node(chunks, record);
        if (done) {
            job_start(chunks, hint->group, record, hint);
        }
    }
    meta_record_free(record);
    return done;
}

/* Puts a hint on the list (once), to be tried on the next ticks; past
 * URGENT_MAX entries or URGENT_RETRIES failures, the walk comes to it. */
static void urgent_add(struct node_chunks *chunks, const struct urgent *hint)
{
    for (unsigned i = 0; i < chunks->urgent_count; i++) {
        if (chunks->urgent[i].group == hint->group &&
            memcmp(chunks->urgent[i].id, hint->id, 32) == 0) {
            return;
        }
    }
    if (hint->retries <= URGENT_RETRIES && chunks->urgent_count < URGENT_MAX) {
        chunks->urgent[chunks->urgent_count++] = *hint;
    }
}

struct hint_call {
    struct node_chunks *chunks;
    struct urgent hint;
};

static void hint_cb(void *data,
                    int rv,
                    const struct proto_frame_header *header,
                    const uint8_t *payload)
{
    struct hint_call *call = data;
    struct node_chunks *chunks = call->chunks;

    (void)header;
    (void)payload;
    /* Lost on the way (the leader named by a stale map, paused, or gone
     * before it answered): sent again on a later tick, to the leader the
     * map names then. */
    if (rv != 0 && !chunks->stopping) {
        CN_LOG(CN_DEBUG, "repair hint not delivered", "group=%llu err=%s",
               (unsigned long long)call->hint.group, cairn_errname(rv));
        call->hint.retries++;
        urgent_add(chunks, &call->hint);
    }
    free(call);
    chunks->hints_in_flight--;
    chunks_release(chunks);
}

/* Sends RepairHint{group, id} to the group's leader named by the map
 * (another node): false if it could not be sent. */
static bool hint_send(struct node_chunks *chunks, uint64_t leader, const struct urgent *hint)
{
    struct node_cluster *cluster = chunks->cluster;
    const Cairn__Wire__ClusterMap *map = cluster->map;
    Cairn__Wire__RepairHint msg = CAIRN__WIRE__REPAIR_HINT__INIT;
    struct node_client *client = NULL;
    struct hint_call *call;
    uint8_t packed[64];

    for (size_t j = 0; map != NULL && j < map->n_nodes && client == NULL; j++) {
        if (map->nodes[j]->id == leader && map->nodes[j]->address != NULL) {
            client = node__peer(cluster, map->nodes[j]->address);
        }
    }
    if (client == NULL) {
        return false;
    }
    msg.group = hint->group;
    msg.chunk_id.data = (uint8_t *)hint->id;
    msg.chunk_id.len = 32;
    CN_ASSERT(cairn__wire__repair_hint__get_packed_size(&msg) <= sizeof(packed));
    call = cn_xcalloc(1, sizeof(*call));
    call->chunks = chunks;
    call->hint = *hint;
    if (node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_REPAIR_HINT, packed,
                         cairn__wire__repair_hint__pack(&msg, packed), HINT_TIMEOUT_MS, hint_cb,
                         call) != 0) {
        free(call);
        return false;
    }
    chunks->hints_in_flight++;
    return true;
}

/* group's entry in the cluster map, or NULL. */
static const Cairn__Wire__MapGroup *map_group(const struct node_cluster *cluster, uint64_t group)
{
    const Cairn__Wire__ClusterMap *map = cluster->map;

    for (size_t i = 0; map != NULL && i < map->n_groups; i++) {
        if (map->groups[i]->id == group) {
            return map->groups[i];
        }
    }
    return NULL;
}

/* One step for a hint this node holds: true when done with it. Its group's
 * leader here checks it now (or keeps it through a suspect node's grace
 * period); otherwise it goes to the leader the map names (leadership moved
 * while it waited, or it was not delivered): dropped, it would wait for the
 * walk there. */
static bool urgent_step(struct node_chunks *chunks, struct urgent *hint)
{
    struct node_cluster *cluster = chunks->cluster;
    const Cairn__Wire__MapGroup *entry;

    if (usable(node__group_find(cluster, hint->group))) {
        return urgent_try(chunks, hint);
    }
    if ((entry = map_group(cluster, hint->group)) == NULL) {
        return true; /* the group is gone */
    }
    if (entry->leader == 0 || entry->leader == cluster->node->node_id) {
        return false; /* no other leader known yet */
    }
    if (!hint_send(chunks, entry->leader, hint)) {
        hint->retries++;
        return hint->retries > URGENT_RETRIES;
    }
    return true; /* in flight: back on the list if it is not delivered */
}

/* The hints this node holds, each tried again. */
static void urgent_tick(struct node_chunks *chunks)
{
    struct urgent list[URGENT_MAX];
    unsigned count = chunks->urgent_count;

    memcpy(list, chunks->urgent, count * sizeof(list[0]));
    chunks->urgent_count = 0; /* a step may add to it (a job that ends at once) */
    for (unsigned i = 0; i < count; i++) {
        if (!urgent_step(chunks, &list[i])) {
            urgent_add(chunks, &list[i]);
        }
    }
}

void node__chunks_hint(struct node_cluster *cluster, const uint8_t id[32])
{
    const Cairn__Wire__ClusterMap *map = cluster->map;
    struct node_chunks *chunks = cluster->chunks;

    if (chunks == NULL || chunks->stopping) {
        return;
    }
    members_refresh(chunks);
    for (size_t i = 0; map != NULL && i < map->n_groups; i++) {
        struct urgent hint = {.group = map->groups[i]->id};

        if (hint.group == 0) {
            continue; /* the system group holds no chunks */
        }
        memcpy(hint.id, id, 32);
        if (!urgent_step(chunks, &hint)) {
            urgent_add(chunks, &hint); /* no leader known yet, a suspect node, not sent */
        }
    }
}

void node__chunks_urgent(struct node_chunks *chunks, struct node_group *g, const uint8_t id[32])
{
    struct urgent hint = {0};

    if (chunks == NULL || chunks->stopping || !usable(g) || g->id == 0) {
        return;
    }
    members_refresh(chunks);
    hint.group = g->id;
    memcpy(hint.id, id, 32);
    if (!urgent_try(chunks, &hint)) {
        urgent_add(chunks, &hint);
    }
}

void node__chunks_tick(struct node_chunks *chunks)
{
    struct node_group *g;
    struct page page = {chunks, 0, 0};
    bool more = false;

    if (chunks->stopping) {
        return;
    }
    members_refresh(chunks);
    urgent_tick(chunks);
    if (chunks->in_flight > 0) {
        return; /* one page at a time */
    }
    g = chunks->group != 0 ? node__group_find(chunks->cluster, chunks->group) : NULL;
    if (!usable(g)) {
        next_group(chunks); /* (group 0, the system group, holds no chunks) */
        g = chunks->group != 0 ? node__group_find(chunks->cluster, chunks->group) : NULL;
        if (g == NULL) {
            return; /* nothing led here, or a pass just ended: the next tick goes on */
        }
    }
    page.group = chunks->group;
    if (meta_list_chunks(g->sm, chunks->has_after ? chunks->after : NULL, chunks->per_tick,
                         page_chunk, &page, &more) != 0 ||
        !more) {
        next_group(chunks);
    }
}

struct node_chunks *node__chunks_new(struct node_cluster *cluster, unsigned chunks_per_tick)
{
    struct node_chunks *chunks = cn_xcalloc(1, sizeof(*chunks));
    struct node_rpc_options options;

    node_rpc_options_init(&options);
    chunks->cluster = cluster;
    chunks->per_tick = chunks_per_tick < 1          ? 1
                       : chunks_per_tick > PAGE_MAX ? PAGE_MAX
                                                    : chunks_per_tick;
    chunks->blocks = node_blocks_new(cluster->node->loop, cluster->node->secret, &options);
    return chunks;
}

void node__chunks_stop(struct node_chunks *chunks)
{
    struct node_blocks *blocks = chunks->blocks;

    chunks->stopping = true;
    chunks->in_flight++; /* held: the calls below may end jobs right away */
    chunks->blocks = NULL;
    node_blocks_free(blocks); /* block calls in flight end with CAIRN_ESHUTDOWN */
    /* Jobs waiting on a proposal end when the groups close; hints in
     * flight, when the peers' clients are freed. */
    chunks->in_flight--;
    chunks_release(chunks);
}

void node__chunks_progress(const struct node_chunks *chunks, struct node_repair_progress *out)
{
    *out = chunks->progress;
    out->in_flight = chunks->in_flight;
    out->hinted_waiting = chunks->urgent_count;
}
