/*
 * Heartbeats, the cluster map, and the system group's leader driving the
 * groups toward their wanted layout (docs/cluster.md, "Joining and the
 * cluster map").
 *
 * The happy path:
 *   1. Every tick each node sends MSG_HEARTBEAT{id, address, the groups it
 *      leads with their voters, spares, term and commit index} to the
 *      system group's leader, and keeps the ClusterMap it answers with:
 *      that map tells it the leaders of groups it does not host.
 *   2. The leader of group 0 keeps heartbeats in memory (never in Raft): a
 *      node silent for suspect_after is suspect (map only); for down_after
 *      it proposes NodeSetState{down} to group 0 (and {up} when it is heard
 *      again). Its grace starts when it became leader.
 *   3. The driver, one change at a time over the whole cluster: a group
 *      with fewer than R = min(3, up nodes) voters on up nodes gets a new
 *      replica on the up node holding fewest (MSG_GROUP_HOST to it, then
 *      MSG_GROUP_CHANGE to the group's leader: add as spare, assign voter);
 *      a group with more than 3 voters drops one on a down node; when one
 *      node leads at least two groups more than another that is a voter of
 *      one of them, leadership of that group is transferred.
 *
 * Possible failure modes:
 *   - No leader for group 0 yet: heartbeats go to the seeds (the members
 *     known at join) or any node of the last map, which forwards them; failures are retried
 *     on the next tick.
 *   - A change fails half way (the new node is hosting but not added): the
 *     group still lacks a voter, so the next pass adds it again; GroupHost
 *     is idempotent and an existing spare is promoted.
 *   - The system leader changes: the new one starts with no heartbeats and
 *     waits down_after from its election before calling anyone down.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cluster.h"
#include "meta_raft.h"

#define VIEW_FRESH_MS        3000u /* a group view older than this is not acted on */
#define CHANGE_WAIT_MS       2000u /* a group just changed: wait for its new view */
#define DRIVE_TIMEOUT_MS     15000u
#define HEARTBEAT_TIMEOUT_MS 2000u /* well under suspect_after: one lost beat costs little */

/* ---- Group facts from libraft ---- */

/* Fills out from a hosted group's libraft state. Pieces are cn_xmalloc'ed. */
void node__group_fill(struct node_cluster *cluster,
                      struct node_group *g,
                      Cairn__Wire__MapGroup *out)
{
    const struct raft *raft = meta_group_raft(g->group);
    const char *address;

    cairn__wire__map_group__init(out);
    out->id = g->id;
    out->leader = meta_group_leader(g->group, &address);
    out->commit_index = raft->commit_index;
    out->term = raft->current_term;
    out->voters = cn_xcalloc(raft->configuration.n + 1, sizeof(uint64_t));
    out->others = cn_xcalloc(raft->configuration.n + 1, sizeof(uint64_t));
    for (unsigned i = 0; i < raft->configuration.n; i++) {
        const struct raft_server *s = &raft->configuration.servers[i];
        if (s->role == RAFT_VOTER) {
            out->voters[out->n_voters++] = s->id;
        } else {
            out->others[out->n_others++] = s->id;
        }
    }
    (void)cluster;
}

void node__group_fill_free(Cairn__Wire__MapGroup *group)
{
    free(group->voters);
    free(group->others);
}

/* ---- Heartbeats: the system leader's side ---- */

static struct node_map_member *member_find(struct node_cluster *cluster, uint64_t id, bool add)
{
    for (unsigned i = 0; i < cluster->member_count; i++) {
        if (cluster->members[i].id == id) {
            return &cluster->members[i];
        }
    }
    if (!add || cluster->member_count == NODE_MEMBERS_MAX) {
        return NULL;
    }
    memset(&cluster->members[cluster->member_count], 0, sizeof(cluster->members[0]));
    cluster->members[cluster->member_count].id = id;
    return &cluster->members[cluster->member_count++];
}

static void view_record(struct node_cluster *cluster,
                        const Cairn__Wire__MapGroup *led,
                        uint64_t now)
{
    struct node_group_view *view;

    if (led->id >= NODE_GROUPS_MAX) {
        return;
    }
    view = &cluster->views[led->id];
    if (led->term < view->term && now - view->seen_ms < VIEW_FRESH_MS) {
        return; /* a deposed leader's late report */
    }
    view->leader = led->leader;
    view->term = led->term;
    view->commit_index = led->commit_index;
    view->voter_count = (unsigned)CN_MIN(led->n_voters, CN_ARRAY_SIZE(view->voters));
    for (unsigned i = 0; i < view->voter_count; i++) {
        view->voters[i] = led->voters[i];
    }
    view->other_count = (unsigned)CN_MIN(led->n_others, CN_ARRAY_SIZE(view->others));
    for (unsigned i = 0; i < view->other_count; i++) {
        view->others[i] = led->others[i];
    }
    view->seen_ms = now;
}

void node__driver_heartbeat(struct node_cluster *cluster, const Cairn__Wire__Heartbeat *beat)
{
    uint64_t now = uv_now(cluster->node->loop);
    struct node_map_member *member;

    if (beat->node_id == 0) {
        return;
    }
    member = member_find(cluster, beat->node_id, true);
    if (member != NULL) {
        member->last_heartbeat_ms = now;
        member->bytes_used = beat->bytes_used;
        member->bytes_free = beat->bytes_free;
        memset(&member->repair, 0, sizeof(member->repair));
        if (beat->repair != NULL) {
            const Cairn__Wire__RepairProgress *p = beat->repair;
            member->repair = (struct node_repair_progress){
                .passes = p->passes,
                .chunks_checked = p->chunks_checked,
                .chunks_repaired = p->chunks_repaired,
                .shards_rebuilt = p->shards_rebuilt,
                .shards_moved = p->shards_moved,
                .chunks_waiting = p->chunks_waiting,
                .chunks_degraded = p->chunks_degraded,
                .in_flight = p->in_flight,
            };
        }
        member->replica_count = 0;
        for (size_t i = 0; i < beat->n_replicas && i < NODE_REPLICAS_REPORTED; i++) {
            member->replicas[i].group = beat->replicas[i]->group;
            member->replicas[i].applied = beat->replicas[i]->applied_index;
            member->replica_count++;
        }
        if (beat->address != NULL) {
            snprintf(member->address, sizeof(member->address), "%s", beat->address);
        }
        memset(member->hosted, 0, sizeof(member->hosted));
        for (size_t i = 0; i < beat->n_hosted; i++) {
            if (beat->hosted[i] < NODE_GROUPS_MAX) {
                member->hosted[beat->hosted[i] / 8] |= (uint8_t)(1u << (beat->hosted[i] % 8));
            }
        }
    }
    for (size_t i = 0; i < beat->n_led; i++) {
        view_record(cluster, beat->led[i], now);
    }
}

void node__driver_joined(struct node_cluster *cluster,
                         const Cairn__Wire__NodeJoin *join,
                         uint64_t node_id)
{
    struct node_map_member *member = member_find(cluster, node_id, true);

    if (member != NULL) {
        member->last_heartbeat_ms = uv_now(cluster->node->loop);
        snprintf(member->address, sizeof(member->address), "%s", join->address);
    }
}

/* ---- The map ---- */

struct map_build {
    struct node_cluster *cluster;
    Cairn__Wire__ClusterMap *map;
    uint64_t now;
    uint64_t wall_now;
};

/* What a node's last heartbeat said of it: usage, repair, replicas. */
static void map_node_report(Cairn__Wire__MapNode *node, const struct node_map_member *member)
{
    Cairn__Wire__RepairProgress *p = cn_xcalloc(1, sizeof(*p));

    node->bytes_used = member->bytes_used;
    node->bytes_free = member->bytes_free;
    cairn__wire__repair_progress__init(p);
    p->passes = member->repair.passes;
    p->chunks_checked = member->repair.chunks_checked;
    p->chunks_repaired = member->repair.chunks_repaired;
    p->shards_rebuilt = member->repair.shards_rebuilt;
    p->shards_moved = member->repair.shards_moved;
    p->chunks_waiting = member->repair.chunks_waiting;
    p->chunks_degraded = member->repair.chunks_degraded;
    p->in_flight = member->repair.in_flight;
    node->repair = p;
    node->replicas = cn_xcalloc(member->replica_count + 1, sizeof(*node->replicas));
    for (unsigned i = 0; i < member->replica_count; i++) {
        Cairn__Wire__ReplicaState *r = cn_xcalloc(1, sizeof(*r));
        cairn__wire__replica_state__init(r);
        r->group = member->replicas[i].group;
        r->applied_index = member->replicas[i].applied;
        node->replicas[node->n_replicas++] = r;
    }
}

static int map_node_cb(void *data, const Cairn__Cmd__Node *record)
{
    struct map_build *b = data;
    struct node_cluster *cluster = b->cluster;
    Cairn__Wire__MapNode *node;
    struct node_map_member *member;
    uint64_t since;

    if (b->map->n_nodes == NODE_MEMBERS_MAX) {
        return 0;
    }
    node = cn_xcalloc(1, sizeof(*node));
    cairn__wire__map_node__init(node);
    node->id = record->id;
    node->address = cn_xstrdup(record->address);
    node->failure_domain = cn_xstrdup(record->failure_domain);
    node->state = (Cairn__Wire__NodeState)record->state;
    member = member_find(cluster, record->id, false);
    if (member != NULL && member->last_heartbeat_ms != 0) {
        node->last_heartbeat_ms = b->wall_now - (b->now - member->last_heartbeat_ms);
    }
    since = member != NULL ? member->last_heartbeat_ms : 0;
    if (since < cluster->lead_since_ms) {
        since = cluster->lead_since_ms;
    }
    if (node->state == CAIRN__WIRE__NODE_STATE__NODE_UP && since != 0 &&
        b->now - since > cluster->suspect_after_ms) {
        node->state = CAIRN__WIRE__NODE_STATE__NODE_SUSPECT;
    }
    if (member != NULL) {
        map_node_report(node, member);
    }
    b->map->nodes[b->map->n_nodes++] = node;
    return 0;
}

/* The groups as this node knows them: hosted groups it leads from libraft,
 * the others from the views its heartbeats brought (system leader). */
static void map_groups(struct node_cluster *cluster, Cairn__Wire__ClusterMap *map, uint64_t now)
{
    uint32_t groups = cluster->data_groups;

    map->groups = cn_xcalloc(groups + 1, sizeof(*map->groups));
    for (uint64_t id = 0; id <= groups; id++) {
        struct node_group *g = node__group_find(cluster, id);
        struct node_group_view *view = &cluster->views[id];
        Cairn__Wire__MapGroup *out = cn_xcalloc(1, sizeof(*out));

        if (g != NULL && meta_group_is_leader(g->group)) {
            node__group_fill(cluster, g, out);
        } else {
            cairn__wire__map_group__init(out);
            out->id = id;
            out->leader = now - view->seen_ms < VIEW_FRESH_MS ? view->leader : 0;
            out->term = view->term;
            out->commit_index = view->commit_index;
            out->voters = cn_xcalloc(view->voter_count + 1, sizeof(uint64_t));
            out->others = cn_xcalloc(view->other_count + 1, sizeof(uint64_t));
            out->n_voters = view->voter_count;
            memcpy(out->voters, view->voters, view->voter_count * sizeof(uint64_t));
            out->n_others = view->other_count;
            memcpy(out->others, view->others, view->other_count * sizeof(uint64_t));
        }
        map->groups[map->n_groups++] = out;
    }
}

Cairn__Wire__ClusterMap *node__map_build(struct node_cluster *cluster)
{
    Cairn__Wire__ClusterMap *map = cn_xcalloc(1, sizeof(*map));
    struct node_group *g0 = node__group_find(cluster, 0);
    Cairn__Cmd__Cluster *record = NULL;
    struct map_build b = {.cluster = cluster, .map = map};

    cairn__wire__cluster_map__init(map);
    b.now = uv_now(cluster->node->loop);
    b.wall_now = cluster->node->clock->wall_ms(cluster->node->clock);
    map->cluster_id.data = cn_xmalloc(NODE_CLUSTER_ID_SIZE);
    memcpy(map->cluster_id.data, cluster->node->cluster_id, NODE_CLUSTER_ID_SIZE);
    map->cluster_id.len = NODE_CLUSTER_ID_SIZE;
    map->nodes = cn_xcalloc(NODE_MEMBERS_MAX, sizeof(*map->nodes));
    if (g0 != NULL && meta_get_cluster(g0->sm, &record) == 0) {
        map->epoch = record->epoch;
        cluster->data_groups = record->data_groups;
        meta_list_nodes(g0->sm, map_node_cb, &b);
    }
    meta_record_free(record);
    map->data_groups = cluster->data_groups;
    map_groups(cluster, map, b.now);
    return map;
}

void node__map_free(Cairn__Wire__ClusterMap *map)
{
    if (map != NULL) {
        protobuf_c_message_free_unpacked(&map->base, NULL);
    }
}

/* ---- Heartbeats: every node's side ---- */

static void heartbeat_cb(void *data,
                         int rv,
                         const struct proto_frame_header *header,
                         const uint8_t *payload)
{
    struct node_cluster *cluster = data;
    Cairn__Wire__ClusterMap *map;

    cluster->heartbeat_in_flight = false;
    if ((rv != 0) != cluster->heartbeat_failed) { /* log transitions only */
        CN_LOG(rv != 0 ? CN_WARN : CN_INFO, rv != 0 ? "heartbeat failed" : "heartbeat answered",
               "err=%s", rv != 0 ? cairn_errname(rv) : "0");
    }
    cluster->heartbeat_failed = rv != 0;
    if (rv != 0 || cluster->stopping) {
        return;
    }
    map = cairn__wire__cluster_map__unpack(NULL, header->length, payload);
    if (map == NULL) {
        return;
    }
    node__map_free(cluster->map);
    cluster->map = map;
    if (cluster->data_groups == 0 && map->data_groups < NODE_GROUPS_MAX) {
        cluster->data_groups = map->data_groups;
    }
}

/* Where to send the heartbeat: group 0's leader, else (or after a failed
 * heartbeat: the leader we know of may be gone) the next node of the map in
 * turn, which forwards it, else the seed. */
static const char *heartbeat_target(struct node_cluster *cluster)
{
    const char *address = NULL;
    Cairn__Wire__ClusterMap *map = cluster->map;

    if (!cluster->heartbeat_failed && node__group_leader(cluster, 0, &address) != 0 &&
        address != NULL) {
        return address;
    }
    if (map != NULL) {
        for (size_t i = 0; i < map->n_nodes; i++) {
            Cairn__Wire__MapNode *n = map->nodes[cluster->heartbeat_next++ % map->n_nodes];
            if (n->id != cluster->node->node_id && n->state != CAIRN__WIRE__NODE_STATE__NODE_DOWN) {
                return n->address;
            }
        }
    }
    if (cluster->seed_count > 0) {
        return cluster->seeds[cluster->heartbeat_next++ % cluster->seed_count];
    }
    return NULL;
}

/* The node's data filesystems: bytes in use and free (statvfs; cheap). */
static void heartbeat_usage(struct node_cluster *cluster, Cairn__Wire__Heartbeat *beat)
{
    for (unsigned i = 0; i < cluster->node->config.dir_count; i++) {
        struct statvfs fs;
        if (statvfs(cluster->node->config.dirs[i].path, &fs) == 0) {
            beat->bytes_free += (uint64_t)fs.f_bavail * fs.f_frsize;
            beat->bytes_used += (uint64_t)(fs.f_blocks - fs.f_bfree) * fs.f_frsize;
        }
    }
}

void node__heartbeat_send(struct node_cluster *cluster)
{
    Cairn__Wire__Heartbeat beat = CAIRN__WIRE__HEARTBEAT__INIT;
    Cairn__Wire__MapGroup led[NODE_GROUPS_MAX], *led_ptrs[NODE_GROUPS_MAX];
    Cairn__Wire__RepairProgress repair = CAIRN__WIRE__REPAIR_PROGRESS__INIT;
    Cairn__Wire__ReplicaState replicas[NODE_REPLICAS_REPORTED];
    Cairn__Wire__ReplicaState *replica_ptrs[NODE_REPLICAS_REPORTED];
    struct node_repair_progress progress;
    uint64_t hosted[NODE_GROUPS_MAX];
    struct node_group *g0 = node__group_find(cluster, 0);
    struct node_client *client;
    const char *target;
    struct cn_buf out;

    beat.node_id = cluster->node->node_id;
    beat.address = cluster->address;
    beat.failure_domain = cluster->node->config.failure_domain;
    beat.led = led_ptrs;
    beat.hosted = hosted;
    beat.replicas = replica_ptrs;
    heartbeat_usage(cluster, &beat);
    if (cluster->chunks != NULL) {
        node__chunks_progress(cluster->chunks, &progress);
        repair.passes = progress.passes;
        repair.chunks_checked = progress.chunks_checked;
        repair.chunks_repaired = progress.chunks_repaired;
        repair.shards_rebuilt = progress.shards_rebuilt;
        repair.shards_moved = progress.shards_moved;
        repair.chunks_waiting = progress.chunks_waiting;
        repair.chunks_degraded = progress.chunks_degraded;
        repair.in_flight = progress.in_flight;
        beat.repair = &repair;
    }
    for (struct node_group *g = cluster->groups; g != NULL; g = g->next) {
        if (!g->closing && beat.n_hosted < NODE_GROUPS_MAX) {
            hosted[beat.n_hosted++] = g->id;
        }
        if (!g->closing && g->sm != NULL && beat.n_replicas < NODE_REPLICAS_REPORTED) {
            cairn__wire__replica_state__init(&replicas[beat.n_replicas]);
            replicas[beat.n_replicas].group = g->id;
            replicas[beat.n_replicas].applied_index = meta_sm_applied(g->sm);
            replica_ptrs[beat.n_replicas] = &replicas[beat.n_replicas];
            beat.n_replicas++;
        }
        if (!g->closing && meta_group_is_leader(g->group) && beat.n_led < NODE_GROUPS_MAX) {
            node__group_fill(cluster, g, &led[beat.n_led]);
            led_ptrs[beat.n_led] = &led[beat.n_led];
            beat.n_led++;
        }
    }
    if (g0 != NULL && meta_group_is_leader(g0->group)) {
        node__driver_heartbeat(cluster, &beat); /* the leader hears itself */
        node__map_free(cluster->map);
        cluster->map = node__map_build(cluster);
    } else if (!cluster->heartbeat_in_flight && (target = heartbeat_target(cluster)) != NULL &&
               (client = node__peer(cluster, target)) != NULL) {
        cn_buf_init(&out);
        CN_ASSERT(cn_buf_reserve(&out, cairn__wire__heartbeat__get_packed_size(&beat)) == 0);
        out.len = cairn__wire__heartbeat__pack(&beat, out.base);
        if (node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_HEARTBEAT, out.base, out.len,
                             HEARTBEAT_TIMEOUT_MS, heartbeat_cb, cluster) == 0) {
            cluster->heartbeat_in_flight = true;
        } else {
            cluster->heartbeat_failed = true;
        }
        cn_buf_close(&out);
    }
    for (size_t i = 0; i < beat.n_led; i++) {
        node__group_fill_free(&led[i]);
    }
}

/* ---- The driver (system leader only) ---- */

struct drive {
    struct node_cluster *cluster;
    uint64_t group;
    uint64_t node_id;
    char address[64];        /* the new replica's node */
    char leader_address[64]; /* the group's leader */
    bool remove;
    bool transfer;
    bool drop; /* GroupHost{drop} to the node, nothing else */
    bool hosted;
};

static void drive_end(struct drive *drive, int rv, const char *what)
{
    if (rv != 0 && rv != CAIRN_ESHUTDOWN) {
        CN_LOG(CN_WARN, "replica change failed", "step=%s group=%llu node=%llu err=%s", what,
               (unsigned long long)drive->group, (unsigned long long)drive->node_id,
               cairn_errname(rv));
    } else if (rv == 0) {
        CN_LOG(CN_INFO, "replica change done", "step=%s group=%llu node=%llu", what,
               (unsigned long long)drive->group, (unsigned long long)drive->node_id);
    }
    if (rv != CAIRN_ESHUTDOWN) {
        drive->cluster->driving = false;
        drive->cluster->views[drive->group].busy_until_ms =
            uv_now(drive->cluster->node->loop) + CHANGE_WAIT_MS;
    }
    free(drive);
}

static void change_reply_cb(void *data,
                            int rv,
                            const struct proto_frame_header *h,
                            const uint8_t *p)
{
    struct drive *drive = data;

    (void)h;
    (void)p;
    drive_end(drive, rv, drive->transfer ? "transfer" : drive->remove ? "remove" : "add");
}

static void drive_change(struct drive *drive)
{
    Cairn__Wire__GroupChange change = CAIRN__WIRE__GROUP_CHANGE__INIT;
    struct node_client *client = node__peer(drive->cluster, drive->leader_address);
    uint8_t packed[256];
    size_t len;

    change.group = drive->group;
    change.node_id = drive->node_id;
    change.address = drive->address;
    change.remove = drive->remove;
    change.transfer = drive->transfer;
    len = cairn__wire__group_change__pack(&change, packed);
    if (client == NULL || node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_GROUP_CHANGE, packed,
                                           len, DRIVE_TIMEOUT_MS, change_reply_cb, drive) != 0) {
        drive_end(drive, CAIRN_EIO, "change");
    }
}

static void host_reply_cb(void *data, int rv, const struct proto_frame_header *h, const uint8_t *p)
{
    struct drive *drive = data;

    (void)h;
    (void)p;
    if (rv != 0 || drive->drop) {
        drive_end(drive, rv, drive->drop ? "drop" : "host");
        return;
    }
    drive_change(drive);
}

static void drive_start(struct drive *drive)
{
    Cairn__Wire__GroupHost host = CAIRN__WIRE__GROUP_HOST__INIT;
    struct node_cluster *cluster = drive->cluster;
    struct node_client *client;
    uint8_t packed[64];
    size_t len;

    cluster->driving = true;
    CN_LOG(CN_INFO, "replica change", "group=%llu node=%llu op=%s",
           (unsigned long long)drive->group, (unsigned long long)drive->node_id,
           drive->transfer ? "transfer"
           : drive->remove ? "remove"
           : drive->drop   ? "drop"
                           : "add");
    if (drive->remove || drive->transfer) {
        drive_change(drive);
        return;
    }
    host.group = drive->group;
    host.drop = drive->drop;
    len = cairn__wire__group_host__pack(&host, packed);
    client = node__peer(cluster, drive->address);
    if (client == NULL || node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_GROUP_HOST, packed,
                                           len, DRIVE_TIMEOUT_MS, host_reply_cb, drive) != 0) {
        drive_end(drive, CAIRN_EIO, "host");
    }
}

static bool ids_has(const uint64_t *ids, unsigned n, uint64_t id)
{
    for (unsigned i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

static const Cairn__Wire__MapNode *map_node(const Cairn__Wire__ClusterMap *map, uint64_t id)
{
    for (size_t i = 0; i < map->n_nodes; i++) {
        if (map->nodes[i]->id == id) {
            return map->nodes[i];
        }
    }
    return NULL;
}

static bool node_up(const Cairn__Wire__ClusterMap *map, uint64_t id)
{
    const Cairn__Wire__MapNode *n = map_node(map, id);

    return n != NULL && n->state == CAIRN__WIRE__NODE_STATE__NODE_UP;
}

static struct drive *drive_new(struct node_cluster *cluster,
                               const Cairn__Wire__MapGroup *group,
                               const Cairn__Wire__MapNode *target,
                               const Cairn__Wire__MapNode *leader)
{
    struct drive *drive = cn_xcalloc(1, sizeof(*drive));

    drive->cluster = cluster;
    drive->group = group->id;
    drive->node_id = target->id;
    snprintf(drive->address, sizeof(drive->address), "%s", target->address);
    snprintf(drive->leader_address, sizeof(drive->leader_address), "%s", leader->address);
    return drive;
}

/* One group: add a voter, drop one on a down node, or nothing. */
static bool drive_group(struct node_cluster *cluster,
                        const Cairn__Wire__ClusterMap *map,
                        const Cairn__Wire__MapGroup *group,
                        unsigned up_count,
                        const unsigned *replicas)
{
    const Cairn__Wire__MapNode *leader = map_node(map, group->leader), *best = NULL;
    size_t best_index = 0;
    unsigned want = CN_MIN(NODE_REPLICAS, up_count), voters_up = 0;
    struct drive *drive;

    if (leader == NULL) {
        return false;
    }
    for (size_t i = 0; i < group->n_voters; i++) {
        voters_up += node_up(map, group->voters[i]);
    }
    if (voters_up < want) {
        for (size_t i = 0; i < map->n_nodes; i++) {
            const Cairn__Wire__MapNode *n = map->nodes[i];
            if (n->state != CAIRN__WIRE__NODE_STATE__NODE_UP ||
                ids_has(group->voters, group->n_voters, n->id)) {
                continue;
            }
            if (best == NULL || replicas[i] < replicas[best_index]) {
                best = n;
                best_index = i;
            }
        }
        if (best == NULL) {
            return false;
        }
        drive_start(drive_new(cluster, group, best, leader));
        return true;
    }
    if (group->n_voters > NODE_REPLICAS) {
        for (size_t i = 0; i < group->n_voters; i++) {
            const Cairn__Wire__MapNode *n = map_node(map, group->voters[i]);
            if (n != NULL && n->state == CAIRN__WIRE__NODE_STATE__NODE_DOWN) {
                drive = drive_new(cluster, group, n, leader);
                drive->remove = true;
                drive_start(drive);
                return true;
            }
        }
    }
    return false;
}

/* A replica its group no longer counts (removed while its node was down,
 * or hosted by a change that failed half way) is dropped: GroupHost{drop} to
 * its node. Only from fresh facts: the member's last heartbeat and the
 * group's leader's report, neither under a change. */
static bool drive_drops(struct node_cluster *cluster, const Cairn__Wire__ClusterMap *map)
{
    uint64_t now = uv_now(cluster->node->loop);
    struct drive *drive;

    for (size_t i = 0; i < map->n_nodes; i++) {
        const Cairn__Wire__MapNode *n = map->nodes[i];
        struct node_map_member *member = member_find(cluster, n->id, false);
        if (member == NULL || n->state != CAIRN__WIRE__NODE_STATE__NODE_UP ||
            now - member->last_heartbeat_ms > VIEW_FRESH_MS) {
            continue;
        }
        for (size_t g = 0; g < map->n_groups; g++) {
            const Cairn__Wire__MapGroup *group = map->groups[g];
            if (group->id >= NODE_GROUPS_MAX ||
                (member->hosted[group->id / 8] & (1u << (group->id % 8))) == 0 ||
                group->leader == 0 || group->n_voters == 0 ||
                now < cluster->views[group->id].busy_until_ms ||
                ids_has(group->voters, group->n_voters, n->id) ||
                ids_has(group->others, group->n_others, n->id)) {
                continue;
            }
            drive = drive_new(cluster, group, n, n);
            drive->drop = true;
            drive_start(drive);
            return true;
        }
    }
    return false;
}

/* Leaders spread: the node leading most groups hands one to the node leading
 * fewest, if that one is a voter of it and the gap is at least two. */
static bool drive_spread(struct node_cluster *cluster, const Cairn__Wire__ClusterMap *map)
{
    unsigned leads[NODE_MEMBERS_MAX] = {0};
    size_t most = 0, fewest = 0;
    struct drive *drive;

    for (size_t g = 0; g < map->n_groups; g++) {
        for (size_t i = 0; i < map->n_nodes; i++) {
            leads[i] += map->nodes[i]->id == map->groups[g]->leader;
        }
    }
    for (size_t i = 0; i < map->n_nodes; i++) {
        if (map->nodes[i]->state != CAIRN__WIRE__NODE_STATE__NODE_UP) {
            continue;
        }
        if (leads[i] > leads[most] || map->nodes[most]->state != CAIRN__WIRE__NODE_STATE__NODE_UP) {
            most = i;
        }
        if (leads[i] < leads[fewest] ||
            map->nodes[fewest]->state != CAIRN__WIRE__NODE_STATE__NODE_UP) {
            fewest = i;
        }
    }
    if (map->n_nodes == 0 || leads[most] < leads[fewest] + 2) {
        return false;
    }
    for (size_t g = 0; g < map->n_groups; g++) {
        const Cairn__Wire__MapGroup *group = map->groups[g];
        if (group->leader != map->nodes[most]->id || group->id == 0 ||
            !ids_has(group->voters, group->n_voters, map->nodes[fewest]->id) ||
            uv_now(cluster->node->loop) < cluster->views[group->id].busy_until_ms) {
            continue;
        }
        drive = drive_new(cluster, group, map->nodes[fewest], map->nodes[most]);
        drive->transfer = true;
        drive_start(drive);
        return true;
    }
    return false;
}

static void state_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct node_cluster *cluster = req->data;

    free(req);
    if (result->rv != CAIRN_ESHUTDOWN) {
        cluster->driving = false;
    }
}

/* Proposes NodeSetState for a node whose silence (or return) changed it. */
static bool drive_states(struct node_cluster *cluster, const Cairn__Wire__ClusterMap *map)
{
    struct node_group *g0 = node__group_find(cluster, 0);
    uint64_t now = uv_now(cluster->node->loop);
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__NodeSetState set = CAIRN__CMD__NODE_SET_STATE__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    struct meta_propose *req;

    for (size_t i = 0; i < map->n_nodes && g0 != NULL; i++) {
        const Cairn__Wire__MapNode *n = map->nodes[i];
        struct node_map_member *member = member_find(cluster, n->id, false);
        uint64_t since = member != NULL ? member->last_heartbeat_ms : 0;
        bool silent;
        if (since < cluster->lead_since_ms) {
            since = cluster->lead_since_ms;
        }
        silent = now - since > cluster->down_after_ms;
        if (n->state == CAIRN__WIRE__NODE_STATE__NODE_SUSPECT && silent) {
            set.state = CAIRN__CMD__NODE_STATE__NODE_DOWN;
        } else if (n->state == CAIRN__WIRE__NODE_STATE__NODE_DOWN && member != NULL &&
                   now - member->last_heartbeat_ms < cluster->suspect_after_ms) {
            set.state = CAIRN__CMD__NODE_STATE__NODE_UP;
        } else {
            continue;
        }
        set.node_id = n->id;
        node__command_header(cluster, &header, request_id);
        cmd.header = &header;
        cmd.op_case = CAIRN__CMD__COMMAND__OP_NODE_SET_STATE;
        cmd.node_set_state = &set;
        req = cn_xcalloc(1, sizeof(*req));
        req->data = cluster;
        if (meta_group_propose(g0->group, req, &cmd, state_cb) != 0) {
            free(req);
            return false;
        }
        CN_LOG(CN_INFO, "node state", "node=%llu state=%s", (unsigned long long)n->id,
               set.state == CAIRN__CMD__NODE_STATE__NODE_DOWN ? "down" : "up");
        cluster->driving = true;
        return true;
    }
    return false;
}

void node__driver_tick(struct node_cluster *cluster)
{
    struct node_group *g0 = node__group_find(cluster, 0);
    Cairn__Wire__ClusterMap *map;
    unsigned replicas[NODE_MEMBERS_MAX] = {0}, up_count = 0;
    uint64_t now = uv_now(cluster->node->loop);

    if (g0 == NULL || !meta_group_is_leader(g0->group)) {
        cluster->lead_since_ms = 0;
        return;
    }
    if (cluster->lead_since_ms == 0) {
        cluster->lead_since_ms = now;
    }
    if (cluster->driving || cluster->init_pending || cluster->map == NULL) {
        return;
    }
    map = cluster->map; /* rebuilt by this tick's heartbeat */
    if (drive_states(cluster, map)) {
        return;
    }
    for (size_t i = 0; i < map->n_nodes; i++) {
        up_count += map->nodes[i]->state == CAIRN__WIRE__NODE_STATE__NODE_UP;
        for (size_t g = 0; g < map->n_groups; g++) {
            replicas[i] +=
                ids_has(map->groups[g]->voters, map->groups[g]->n_voters, map->nodes[i]->id);
        }
    }
    for (size_t g = 0; g < map->n_groups; g++) {
        const Cairn__Wire__MapGroup *group = map->groups[g];
        if (group->id >= NODE_GROUPS_MAX || now < cluster->views[group->id].busy_until_ms ||
            group->leader == 0) {
            continue;
        }
        if (drive_group(cluster, map, group, up_count, replicas)) {
            return;
        }
    }
    if (!drive_drops(cluster, map)) {
        drive_spread(cluster, map);
    }
}

unsigned node__cluster_metrics(struct node *node, struct node_group_metrics *out, unsigned max)
{
    struct node_cluster *cluster = node->cluster;
    unsigned count = 0;

    if (cluster == NULL || cluster->stopping) {
        return 0;
    }
    for (struct node_group *g = cluster->groups; g != NULL && count < max; g = g->next) {
        const struct raft *raft;
        struct node_group_metrics *m;
        if (g->closing) {
            continue;
        }
        raft = meta_group_raft(g->group);
        m = &out[count++];
        memset(m, 0, sizeof(*m));
        m->group = g->id;
        switch (raft->state) {
        case RAFT_FOLLOWER:
            m->role = NODE_GROUP_ROLE_FOLLOWER;
            break;
        case RAFT_CANDIDATE:
            m->role = NODE_GROUP_ROLE_CANDIDATE;
            break;
        case RAFT_LEADER:
            m->role = NODE_GROUP_ROLE_LEADER;
            break;
        default:
            m->role = 0;
        }
        m->term = raft->current_term;
        m->commit_index = raft->commit_index;
        m->applied_index = meta_sm_applied(g->sm);
        m->last_index = meta_group_last_index(g->group);
        for (unsigned i = 0; i < raft->configuration.n; i++) {
            m->voters += raft->configuration.servers[i].role == RAFT_VOTER;
        }
    }
    return count;
}
