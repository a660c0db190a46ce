/*
 * The Raft groups inside cairn-node, and the metadata RPCs
 * (docs/cluster.md, docs/node.md "Groups in the node").
 *
 * The happy path:
 *   1. node__cluster_start(): one RocksDB per node (meta_store under the
 *      first data directory, DATA/meta), one meta_mux whose connector and
 *      acceptor are the node port's secure channel (raft_link.c), and a
 *      meta_group for every folder under DATA/raft/<group>, all on the
 *      node's loop. After `cairn-node init`, DATA/raft/BOOTSTRAP names S:
 *      groups 0..S are bootstrapped with this node as their only voter, and
 *      once group 0 has a leader it commits ClusterInit (the cluster id, S,
 *      node 1); the file is removed then.
 *   2. A metadata call (MSG_META_PROPOSE, _READ, _WATCH, MSG_CLUSTER_MAP,
 *      MSG_NODE_JOIN, MSG_HEARTBEAT, MSG_GROUP_CHANGE) is checked where it
 *      arrives (a malformed one is refused at once), then routed to its
 *      group's leader: served here if this node leads the group, otherwise
 *      forwarded over node_client to the leader this node knows of (libraft
 *      for hosted groups, the cluster map for the others) and the reply
 *      relayed byte for byte.
 *   3. A tick (every NODE_TICK_MS) sends this node's heartbeat to the system
 *      group's leader (driver.c runs there) and keeps the map it answers.
 *
 * Possible failure modes:
 *   - No leader known, or the leader unreachable: the call waits and retries
 *     (every CALL_RETRY_MS) until CALL_BUDGET_MS passed: CAIRN_EUNAVAIL.
 *   - Leadership lost under a proposal (CAIRN_ENOTLEADER: outcome unknown):
 *     routed again, at most CALL_ATTEMPTS_MAX times in all; the request id
 *     makes the retry exactly-once.
 *   - The connection of the caller closed meanwhile: the answer is dropped.
 *   - Shutdown: every call in flight ends with CAIRN_ESHUTDOWN.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"

#define NODE_TICK_MS      500u
#define CALL_BUDGET_MS    6000u
#define CALL_RETRY_MS     100u
#define CALL_ATTEMPTS_MAX 3u
#define WATCH_MAX_MS      120000u
#define BOOTSTRAP_FILE    "BOOTSTRAP"
#define SEED_FILE         "SEED"

/* One metadata call, from its arrival to its answer. Holds the caller's
 * connection until call_finish(). */
/* A call waiting on its retry timer is on cluster->retrying, so a stop can
 * end it: its timer must never fire into a freed cluster. */
struct node_call_link {
    struct node_call_link *prev;
    struct node_call_link *next;
};

struct call {
    struct node_call_link retry; /* first: the list holds &call->retry */
    bool retrying;
    struct node_cluster *cluster;
    struct node_conn *conn;
    uint16_t type;
    uint64_t request_id;
    uint8_t *payload;
    size_t len;
    uint64_t group;       /* routed to this group's leader */
    uint64_t deadline_ms; /* loop time */
    unsigned attempts;
    uv_timer_t timer; /* retry pauses, watch timeouts */
    bool finished;
    bool watching;
    bool assigning;         /* GroupChange: the add is done, the promotion runs */
    struct node_group *grp; /* while a local operation runs on it */
    void *request;          /* the unpacked request, for local handlers */
    union {
        struct meta_propose propose;
        struct meta_read read;
        struct meta_watch watch;
        struct meta_change change;
        struct meta_transfer transfer;
    } op;
};

static void call_route(struct call *call);
static void retries_end(struct node_cluster *cluster);

/* ---- Paths ---- */

static void raft_path(const struct node_config *config, char *out, size_t size, const char *leaf)
{
    snprintf(out, size, "%s/raft%s%s", config->dirs[0].path, leaf[0] != '\0' ? "/" : "", leaf);
}

int node__cluster_init(const struct node_config *config,
                       const char *address,
                       uint32_t data_groups,
                       char *errmsg)
{
    char path[700];
    FILE *f;

    (void)address;
    raft_path(config, path, sizeof(path), "");
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return cn_errmsgf(errmsg, CAIRN_EIO, "mkdir(%s): %s", path, strerror(errno));
    }
    raft_path(config, path, sizeof(path), BOOTSTRAP_FILE);
    f = fopen(path, "w");
    if (f == NULL || fprintf(f, "%u\n", data_groups) < 0 || fclose(f) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EIO, "write %s: %s", path, strerror(errno));
    }
    return 0;
}

/* ---- Peers ---- */

struct node_client *node__peer(struct node_cluster *cluster, const char *address)
{
    struct node_rpc_options options;
    struct node_peer *peer;

    for (peer = cluster->peers; peer != NULL; peer = peer->next) {
        if (strcmp(peer->address, address) == 0) {
            return peer->client;
        }
    }
    if (strlen(address) >= sizeof(peer->address)) {
        return NULL;
    }
    node_rpc_options_init(&options);
    peer = cn_xcalloc(1, sizeof(*peer));
    snprintf(peer->address, sizeof(peer->address), "%s", address);
    peer->client = node_client_new(cluster->node->loop, address, cluster->node->secret, &options);
    peer->next = cluster->peers;
    cluster->peers = peer;
    return peer->client;
}

/* ---- Groups ---- */

struct node_group *node__group_find(struct node_cluster *cluster, uint64_t id)
{
    for (struct node_group *g = cluster->groups; g != NULL; g = g->next) {
        if (g->id == id && !g->closing) {
            return g;
        }
    }
    return NULL;
}

/* The group's Raft log cannot be written: the node stops before anything
 * else is (meta_group_failed()). */
static void group_storage_failed(void *data, const char *why)
{
    struct node_group *g = data;

    node__storage_failed(g->id, why);
}

int node__group_host(struct node_cluster *cluster, uint64_t id, bool bootstrap, char *errmsg)
{
    struct meta_group_config config = {0};
    struct meta_server self;
    struct node_group *g;
    char leaf[32];
    int rv;

    if (node__group_find(cluster, id) != NULL) {
        return 0;
    }
    for (g = cluster->groups; g != NULL; g = g->next) {
        if (g->id == id) {
            return cn_errmsgf(errmsg, CAIRN_EBUSY, "group %llu is being dropped",
                              (unsigned long long)id);
        }
    }
    if (id >= NODE_GROUPS_MAX) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "group %llu over the limit",
                          (unsigned long long)id);
    }
    g = cn_xcalloc(1, sizeof(*g));
    g->cluster = cluster;
    g->id = id;
    snprintf(leaf, sizeof(leaf), "%llu", (unsigned long long)id);
    raft_path(&cluster->node->config, g->dir, sizeof(g->dir), leaf);
    if (mkdir(g->dir, 0700) != 0 && errno != EEXIST) {
        rv = cn_errmsgf(errmsg, CAIRN_EIO, "mkdir(%s): %s", g->dir, strerror(errno));
        goto err_free;
    }
    rv = meta_sm_new(cluster->store, id, NULL, &g->sm);
    if (rv != 0) {
        cn_errmsgf(errmsg, rv, "group %llu: %s", (unsigned long long)id, cairn_strerror(rv));
        goto err_free;
    }
    CN_ASSERT(meta_mux_transport_init(cluster->mux, id, &g->transport) == 0);
    config.id = cluster->node->node_id;
    config.address = cluster->address;
    config.dir = g->dir;
    config.transport = &g->transport;
    config.snapshot_threshold = cluster->node->config.snapshot_threshold;
    config.snapshot_trailing = cluster->node->config.snapshot_trailing;
    config.failed_cb = group_storage_failed;
    config.failed_data = g;
    rv = meta_group_new(cluster->node->loop, g->sm, &config, &g->group, errmsg);
    if (rv != 0) {
        goto err_free_sm; /* libraft did not take the transport: see below */
    }
    if (bootstrap) {
        self.id = cluster->node->node_id;
        self.address = cluster->address;
        rv = meta_group_bootstrap(g->group, &self, 1, errmsg);
        if (rv != 0 && rv != CAIRN_EEXIST) {
            return rv; /* fatal at start-up: the node exits */
        }
    }
    rv = meta_group_start(g->group, errmsg);
    if (rv != 0) {
        return rv; /* fatal at start-up */
    }
    g->next = cluster->groups;
    cluster->groups = g;
    CN_LOG(CN_INFO, "group hosted", "group=%llu bootstrap=%d", (unsigned long long)id, bootstrap);
    return 0;

err_free_sm:
    meta_sm_free(g->sm);
err_free:
    free(g);
    return rv;
}

/* Starts every group with a folder under DATA/raft. */
static int groups_open(struct node_cluster *cluster, char *errmsg)
{
    char path[700];
    struct dirent *entry;
    DIR *dir;
    int rv = 0;

    raft_path(&cluster->node->config, path, sizeof(path), "");
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return cn_errmsgf(errmsg, CAIRN_EIO, "mkdir(%s): %s", path, strerror(errno));
    }
    dir = opendir(path);
    if (dir == NULL) {
        return cn_errmsgf(errmsg, CAIRN_EIO, "opendir(%s): %s", path, strerror(errno));
    }
    while (rv == 0 && (entry = readdir(dir)) != NULL) {
        char *end;
        unsigned long long id = strtoull(entry->d_name, &end, 10);
        if (entry->d_name[0] >= '0' && entry->d_name[0] <= '9' && *end == '\0') {
            rv = node__group_host(cluster, id, false, errmsg);
        }
    }
    closedir(dir);
    return rv;
}

/* After init: DATA/raft/BOOTSTRAP holds S; groups 0..S start as ours alone. */
static int groups_bootstrap(struct node_cluster *cluster, char *errmsg)
{
    char path[700];
    unsigned groups = 0;
    FILE *f;
    int rv = 0;

    raft_path(&cluster->node->config, path, sizeof(path), BOOTSTRAP_FILE);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%u", &groups) != 1 || groups == 0 || groups >= NODE_GROUPS_MAX) {
        fclose(f);
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: want a group count", path);
    }
    fclose(f);
    cluster->data_groups = groups;
    cluster->init_pending = true;
    for (unsigned g = 0; rv == 0 && g <= groups; g++) {
        rv = node__group_host(cluster, g, true, errmsg);
    }
    return rv;
}

static void seed_load(struct node_cluster *cluster)
{
    char path[700];
    FILE *f;

    raft_path(&cluster->node->config, path, sizeof(path), SEED_FILE);
    f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    while (cluster->seed_count < NODE_SEEDS_MAX &&
           fscanf(f, "%63s", cluster->seeds[cluster->seed_count]) == 1) {
        cluster->seed_count++;
    }
    fclose(f);
}

int node__seed_save(const struct node_config *config,
                    const char *const *addresses,
                    unsigned count,
                    char *errmsg)
{
    char path[700];
    FILE *f;
    int rv = 0;

    raft_path(config, path, sizeof(path), "");
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return cn_errmsgf(errmsg, CAIRN_EIO, "mkdir(%s): %s", path, strerror(errno));
    }
    raft_path(config, path, sizeof(path), SEED_FILE);
    f = fopen(path, "w");
    for (unsigned i = 0; f != NULL && rv >= 0 && i < count && i < NODE_SEEDS_MAX; i++) {
        rv = fprintf(f, "%s\n", addresses[i]);
    }
    if (f == NULL || rv < 0 || fclose(f) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EIO, "write %s: %s", path, strerror(errno));
    }
    return 0;
}

static void tick_cb(uv_timer_t *timer);

int node__cluster_start(struct node *node, char *errmsg)
{
    struct node_cluster *cluster = cn_xcalloc(1, sizeof(*cluster));
    char path[700];
    int rv;

    node->cluster = cluster;
    cluster->node = node;
    cluster->heartbeat_ms = NODE_TICK_MS;
    cluster->suspect_after_ms = node->config.suspect_after_ms;
    cluster->down_after_ms = node->config.down_after_ms;
    if (node->config.advertise[0] != '\0') {
        snprintf(cluster->address, sizeof(cluster->address), "%s", node->config.advertise);
    } else {
        snprintf(cluster->address, sizeof(cluster->address), "%s", node->config.listen);
    }
    snprintf(path, sizeof(path), "%s/meta", node->config.dirs[0].path);
    rv = meta_store_open(path, &cluster->store, errmsg);
    if (rv != 0) {
        return rv;
    }
    node__link_connector_init(cluster);
    rv = meta_mux_new(node->loop, node->node_id, cluster->address, &cluster->connector,
                      &cluster->mux);
    if (rv != 0) {
        return cn_errmsgf(errmsg, rv, "bad advertised address %s", cluster->address);
    }
    seed_load(cluster);
    rv = groups_bootstrap(cluster, errmsg);
    if (rv == 0) {
        rv = groups_open(cluster, errmsg);
    }
    if (rv != 0) {
        return rv;
    }
    CN_ASSERT(uv_timer_init(node->loop, &cluster->tick) == 0);
    cluster->tick.data = cluster;
    CN_ASSERT(uv_timer_start(&cluster->tick, tick_cb, NODE_TICK_MS, NODE_TICK_MS) == 0);
    cluster->tick_started = true;
    if (node->config.repair_rate > 0) {
        /* Chunks per tick: the rate, spread over the ticks of a second. */
        unsigned per_tick = (node->config.repair_rate * NODE_TICK_MS + 999) / 1000;
        cluster->chunks = node__chunks_new(cluster, per_tick);
    }
    return 0;
}

/* Frees the cluster once its groups closed and its last link is gone. */
void node__cluster_maybe_free(struct node_cluster *cluster)
{
    struct node *node = cluster->node;
    void (*cb)(struct node * node) = cluster->stopped_cb;

    /* The tick handle lives inside the cluster: libuv must be done with it. */
    if (!cluster->groups_closed || cluster->links != NULL || cluster->tick_closing) {
        return;
    }
    meta_mux_free(cluster->mux);
    meta_store_close(cluster->store);
    node__map_free(cluster->map);
    node->cluster = NULL;
    free(cluster);
    if (cb != NULL) {
        cb(node);
    }
}

static void group_closed_cb(void *data)
{
    struct node_cluster *cluster = data;

    CN_ASSERT(cluster->groups_closing > 0);
    if (--cluster->groups_closing > 0) {
        return;
    }
    while (cluster->groups != NULL) {
        struct node_group *g = cluster->groups;
        cluster->groups = g->next;
        meta_sm_free(g->sm);
        free(g);
    }
    cluster->groups_closed = true;
    node__links_close(cluster); /* each frees itself once both its ends closed */
    node__cluster_maybe_free(cluster);
}

static void tick_closed_cb(uv_handle_t *handle)
{
    struct node_cluster *cluster = handle->data;

    cluster->tick_closing = false;
    node__cluster_maybe_free(cluster);
}

void node__cluster_stop(struct node *node, void (*cb)(struct node *node))
{
    struct node_cluster *cluster = node->cluster;

    if (cluster == NULL || cluster->stopping) {
        return;
    }
    cluster->stopping = true;
    cluster->stopped_cb = cb;
    retries_end(cluster);
    if (cluster->chunks != NULL) {
        node__chunks_stop(cluster->chunks); /* frees itself once its jobs end */
        cluster->chunks = NULL;
    }
    if (cluster->tick_started) {
        cluster->tick_closing = true;
        uv_close((uv_handle_t *)&cluster->tick, tick_closed_cb);
    }
    while (cluster->peers != NULL) {
        struct node_peer *peer = cluster->peers;
        cluster->peers = peer->next;
        node_client_free(peer->client); /* calls in flight end: CAIRN_ESHUTDOWN */
        free(peer);
    }
    /* Held until every close was started; drops under way count too. */
    cluster->groups_closing = 1 + cluster->drops_pending;
    for (struct node_group *g = cluster->groups; g != NULL; g = g->next) {
        if (g->dropping) {
            continue;
        }
        g->closing = true;
        if (g->group != NULL) {
            cluster->groups_closing++;
            meta_group_close(g->group, group_closed_cb, cluster);
        }
    }
    group_closed_cb(cluster);
}

/* ---- Calls: answer, forward, retry ---- */

static void call_timer_close_cb(uv_handle_t *handle)
{
    struct call *call = handle->data;

    free(call->payload);
    free(call);
}

static void retry_unlink(struct call *call)
{
    if (!call->retrying) {
        return;
    }
    call->retrying = false;
    call->cluster->retrying_count--;
    if (call->retry.prev != NULL) {
        call->retry.prev->next = call->retry.next;
    } else {
        call->cluster->retrying = call->retry.next;
    }
    if (call->retry.next != NULL) {
        call->retry.next->prev = call->retry.prev;
    }
}

/* Answers the caller (when still connected) and ends the call. Exactly once. */
static void call_finish(struct call *call, int rv, const uint8_t *reply, size_t len)
{
    CN_ASSERT(!call->finished);
    call->finished = true;
    retry_unlink(call);
    if (node_conn_release(call->conn)) {
        if (rv == 0) {
            node_conn_send(call->conn, call->type, PROTO_FLAG_REPLY, call->request_id, reply, len);
        } else {
            node_conn_send_error(call->conn, call->type, call->request_id, rv, cairn_strerror(rv));
        }
    }
    if (call->request != NULL) {
        protobuf_c_message_free_unpacked(call->request, NULL);
    }
    uv_timer_stop(&call->timer);
    uv_close((uv_handle_t *)&call->timer, call_timer_close_cb);
}

/* Answers with a packed message. */
static void call_reply(struct call *call, const ProtobufCMessage *msg)
{
    struct cn_buf out;

    cn_buf_init(&out);
    if (cn_buf_reserve(&out, protobuf_c_message_get_packed_size(msg)) != 0) {
        call_finish(call, CAIRN_ENOMEM, NULL, 0);
    } else {
        out.len = protobuf_c_message_pack(msg, out.base);
        call_finish(call, 0, out.base, out.len);
    }
    cn_buf_close(&out);
}

static void call_retry_cb(uv_timer_t *timer)
{
    struct call *call = timer->data;

    retry_unlink(call);
    call_route(call);
}

/* No leader reachable now: try again shortly, until the budget is spent. */
static void call_retry_later(struct call *call)
{
    uint64_t now = uv_now(call->cluster->node->loop);

    if (call->cluster->stopping) {
        call_finish(call, CAIRN_ESHUTDOWN, NULL, 0);
    } else if (now >= call->deadline_ms) {
        call_finish(call, CAIRN_EUNAVAIL, NULL, 0);
    } else {
        CN_ASSERT(!call->retrying);
        call->retrying = true;
        call->cluster->retrying_count++;
        call->retry.prev = NULL;
        call->retry.next = call->cluster->retrying;
        if (call->retry.next != NULL) {
            call->retry.next->prev = &call->retry;
        }
        call->cluster->retrying = &call->retry;
        CN_ASSERT(uv_timer_start(&call->timer, call_retry_cb, CALL_RETRY_MS, 0) == 0);
    }
}

/* Stop: every call waiting to route again ends now (CAIRN_ESHUTDOWN). */
static void retries_end(struct node_cluster *cluster)
{
    while (cluster->retrying != NULL) {
        call_finish((struct call *)cluster->retrying, CAIRN_ESHUTDOWN, NULL, 0);
    }
}

static void forward_cb(void *data,
                       int rv,
                       const struct proto_frame_header *header,
                       const uint8_t *payload)
{
    struct call *call = data;
    bool retry = rv == CAIRN_EIO || rv == CAIRN_ETIMEOUT || rv == CAIRN_ENOTLEADER ||
                 rv == CAIRN_EUNAVAIL || rv == CAIRN_EAUTH;

    if (rv == 0) {
        call_finish(call, 0, payload, header->length);
    } else if (retry && !call->cluster->stopping) {
        call_retry_later(call); /* bounded by the call's budget: then CAIRN_EUNAVAIL */
    } else {
        call_finish(call, rv == CAIRN_ETIMEOUT || rv == CAIRN_ENOTLEADER ? CAIRN_EUNAVAIL : rv,
                    NULL, 0);
    }
}

/* A request this node forwards says so, so that a node that is not the
 * leader answers CAIRN_ENOTLEADER instead of forwarding it on (two nodes
 * with stale views would pass it back and forth); this node then retries
 * with fresher knowledge of the leader. */
static protobuf_c_boolean *call_forwarded_flag(struct call *call)
{
    switch (call->type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_META_PROPOSE:
        return &((Cairn__Wire__MetaPropose *)call->request)->forwarded;
    case CAIRN__WIRE__MSG_TYPE__MSG_META_READ:
        return &((Cairn__Wire__MetaRead *)call->request)->forwarded;
    case CAIRN__WIRE__MSG_TYPE__MSG_META_WATCH:
        return &((Cairn__Wire__MetaWatch *)call->request)->forwarded;
    default:
        return NULL;
    }
}

static void call_mark_forwarded(struct call *call)
{
    protobuf_c_boolean *forwarded = call_forwarded_flag(call);
    size_t len;

    if (forwarded == NULL || *forwarded) {
        return;
    }
    *forwarded = true;
    len = protobuf_c_message_get_packed_size(call->request);
    free(call->payload);
    call->payload = cn_xmalloc(len + 1);
    call->len = protobuf_c_message_pack(call->request, call->payload);
}

static void call_forward(struct call *call, const char *address)
{
    struct node_client *client = node__peer(call->cluster, address);
    uint64_t now = uv_now(call->cluster->node->loop);
    uint64_t timeout_ms = call->deadline_ms > now ? call->deadline_ms - now : 1;
    int rv;

    if (call->type == CAIRN__WIRE__MSG_TYPE__MSG_META_WATCH) {
        timeout_ms += ((Cairn__Wire__MetaWatch *)call->request)->timeout_ms;
    }
    if (timeout_ms < 1000) {
        timeout_ms = 1000; /* a forward gets a fair chance even late in the budget */
    }
    call->attempts++;
    call_mark_forwarded(call);
    rv = client == NULL ? CAIRN_EINVAL
                        : node_client_call(client, call->type, call->payload, call->len, timeout_ms,
                                           forward_cb, call);
    if (rv != 0) {
        call_retry_later(call);
    }
}

/* The leader of a group this node does not host, from the last map. */
static uint64_t map_leader(struct node_cluster *cluster, uint64_t group, const char **address)
{
    Cairn__Wire__ClusterMap *map = cluster->map;

    if (map == NULL) {
        return 0;
    }
    for (size_t i = 0; i < map->n_groups; i++) {
        if (map->groups[i]->id != group || map->groups[i]->leader == 0) {
            continue;
        }
        for (size_t j = 0; j < map->n_nodes; j++) {
            if (map->nodes[j]->id == map->groups[i]->leader) {
                *address = map->nodes[j]->address;
                return map->nodes[j]->id;
            }
        }
    }
    return 0;
}

uint64_t node__group_leader(struct node_cluster *cluster, uint64_t group, const char **address)
{
    struct node_group *g = node__group_find(cluster, group);

    *address = NULL;
    if (g != NULL) {
        uint64_t id = meta_group_leader(g->group, address);
        if (id != 0) {
            return id;
        }
    }
    return map_leader(cluster, group, address);
}

static void call_local(struct call *call, struct node_group *g);
static void read_cb(struct meta_read *req, int rv);

static void call_route(struct call *call)
{
    struct node_cluster *cluster = call->cluster;
    struct node_group *g = node__group_find(cluster, call->group);
    const char *address = NULL;
    uint64_t leader;

    if (cluster->stopping) {
        call_finish(call, CAIRN_ESHUTDOWN, NULL, 0);
        return;
    }
#ifdef CAIRN_DEBUG_STALE_READS
    if (cluster->node->config.debug_stale_reads &&
        call->type == CAIRN__WIRE__MSG_TYPE__MSG_META_READ && g != NULL && g->group != NULL &&
        !g->closing) {
        /* BROKEN ON PURPOSE (debug builds only): this replica's state as it
         * is, no barrier, no leader: a follower answers with what it has. */
        call->grp = g;
        call->op.read.data = call;
        read_cb(&call->op.read, 0);
        return;
    }
#endif
    if (g != NULL && meta_group_is_leader(g->group)) {
        call->attempts++;
        call_local(call, g);
        return;
    }
    if (call->attempts == 0 && call_forwarded_flag(call) != NULL && *call_forwarded_flag(call)) {
        call_finish(call, CAIRN_ENOTLEADER, NULL, 0); /* the forwarder retries */
        return;
    }
    leader = node__group_leader(cluster, call->group, &address);
    if (leader == 0 || leader == cluster->node->node_id || address == NULL || address[0] == '\0') {
        call_retry_later(call);
        return;
    }
    call_forward(call, address);
}

/* A local operation ended with leadership lost: route again, or give up. */
static void call_lost_leader(struct call *call)
{
    call->grp = NULL;
    if (call->attempts < CALL_ATTEMPTS_MAX) {
        call_retry_later(call);
    } else {
        call_finish(call, CAIRN_EUNAVAIL, NULL, 0);
    }
}

/* ---- Local handlers (this node leads the call's group) ---- */

static void propose_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct call *call = req->data;
    Cairn__Wire__MetaProposeReply reply = CAIRN__WIRE__META_PROPOSE_REPLY__INIT;

    if (result->rv == CAIRN_ENOTLEADER) {
        call_lost_leader(call);
        return;
    }
    if (result->rv == CAIRN_ESHUTDOWN) {
        call_finish(call, CAIRN_ESHUTDOWN, NULL, 0);
        return;
    }
    reply.rv = result->rv;
    reply.value = result->value;
    reply.duplicate = result->duplicate;
    call_reply(call, &reply.base);
}

static void propose_local(struct call *call, struct node_group *g)
{
    Cairn__Wire__MetaPropose *req = call->request;
    Cairn__Cmd__Command *cmd;
    int rv;

    rv = meta_command_decode(req->command.data, req->command.len, &cmd);
    CN_ASSERT(rv == 0); /* checked on arrival */
    call->op.propose.data = call;
    rv = meta_group_propose(g->group, &call->op.propose, cmd, propose_cb);
    meta_record_free(cmd);
    if (rv == CAIRN_ENOTLEADER) {
        call_lost_leader(call);
    } else if (rv != 0) {
        call_finish(call, rv, NULL, 0);
    }
}

static void read_cb(struct meta_read *req, int rv)
{
    struct call *call = req->data;
    Cairn__Wire__MetaReadReply reply = CAIRN__WIRE__META_READ_REPLY__INIT;

    if (rv == CAIRN_ENOTLEADER) {
        call_lost_leader(call);
        return;
    }
    if (rv != 0) {
        call_finish(call, rv, NULL, 0);
        return;
    }
    rv = node__meta_query(call->grp->sm, call->request, &reply);
    if (rv != 0) {
        call_finish(call, rv, NULL, 0); /* the store failed */
    } else {
        call_reply(call, &reply.base);
    }
    node__meta_query_free(&reply);
}

static void watch_answer(struct call *call, uint64_t seq)
{
    Cairn__Wire__MetaWatchReply reply = CAIRN__WIRE__META_WATCH_REPLY__INIT;

    reply.journal_seq = seq;
    call_reply(call, &reply.base);
}

static void watch_cb(struct meta_watch *watch, int rv, uint64_t seq)
{
    struct call *call = watch->data;

    call->watching = false;
    if (rv != 0) {
        call_finish(call, rv, NULL, 0);
    } else {
        watch_answer(call, seq);
    }
}

static void watch_timeout_cb(uv_timer_t *timer)
{
    struct call *call = timer->data;
    Cairn__Wire__MetaWatch *req = call->request;
    Cairn__Cmd__Namespace *ns = NULL;
    uint64_t seq = req->cursor;

    if (!call->watching) {
        return;
    }
    call->watching = false;
    meta_group_unwatch(call->grp->group, &call->op.watch);
    if (meta_get_namespace(call->grp->sm, req->ns, &ns) == 0) {
        seq = ns->journal_seq;
    }
    meta_record_free(ns);
    watch_answer(call, seq);
}

static void watch_local(struct call *call, struct node_group *g)
{
    Cairn__Wire__MetaWatch *req = call->request;
    Cairn__Cmd__Role role = CAIRN__CMD__ROLE__ROLE_NONE;
    uint64_t seq = 0;
    int rv;

    rv = meta_role(g->sm, req->ns, req->actor, &role);
    if (rv == 0 && role == CAIRN__CMD__ROLE__ROLE_NONE) {
        rv = CAIRN_ENOENT; /* existence does not leak */
    }
    if (rv != 0) {
        call_finish(call, rv, NULL, 0);
        return;
    }
    call->op.watch.data = call;
    rv = meta_group_watch(g->group, &call->op.watch, req->ns, req->cursor, watch_cb, &seq);
    if (rv != 0) {
        call_finish(call, rv, NULL, 0);
    } else if (seq > req->cursor) {
        watch_answer(call, seq); /* past the cursor already: not registered */
    } else {
        call->watching = true;
        CN_ASSERT(uv_timer_start(&call->timer, watch_timeout_cb,
                                 CN_MIN(req->timeout_ms, WATCH_MAX_MS), 0) == 0);
    }
}

static void map_local(struct call *call)
{
    Cairn__Wire__ClusterMap *map = node__map_build(call->cluster);

    call_reply(call, &map->base);
    node__map_free(map);
}

static void heartbeat_local(struct call *call)
{
    node__driver_heartbeat(call->cluster, call->request);
    map_local(call);
}

static void join_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct call *call = req->data;
    Cairn__Wire__NodeJoinReply reply = CAIRN__WIRE__NODE_JOIN_REPLY__INIT;

    if (result->rv == CAIRN_ENOTLEADER) {
        call_lost_leader(call);
        return;
    }
    if (result->rv != 0) {
        call_finish(call, result->rv, NULL, 0);
        return;
    }
    reply.cluster_id.data = call->cluster->node->cluster_id;
    reply.cluster_id.len = NODE_CLUSTER_ID_SIZE;
    reply.node_id = result->value;
    node__driver_joined(call->cluster, call->request, result->value);
    call_reply(call, &reply.base);
}

static void join_local(struct call *call, struct node_group *g)
{
    Cairn__Wire__NodeJoin *req = call->request;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__NodeAdd add = CAIRN__CMD__NODE_ADD__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    Cairn__Cmd__Cluster *record = NULL;
    int rv;

    rv = meta_get_cluster(g->sm, &record);
    meta_record_free(record);
    if (rv == CAIRN_ENOENT) {
        call_retry_later(call); /* ClusterInit not committed yet (a new cluster) */
        return;
    }
    node__command_header(call->cluster, &header, request_id);
    add.address = req->address;
    add.failure_domain = req->failure_domain;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_NODE_ADD;
    cmd.node_add = &add;
    call->op.propose.data = call;
    rv = meta_group_propose(g->group, &call->op.propose, &cmd, join_cb);
    if (rv == CAIRN_ENOTLEADER) {
        call_lost_leader(call);
    } else if (rv != 0) {
        call_finish(call, rv, NULL, 0);
    }
}

static void change_cb(struct meta_change *req, int rv)
{
    struct call *call = req->data;
    Cairn__Wire__GroupChange *change = call->request;
    Cairn__Wire__Empty empty = CAIRN__WIRE__EMPTY__INIT;

    if (rv == 0 && !change->remove && !change->transfer && !call->assigning) {
        /* Added as a spare: now make it a voter (libraft catches it up first). */
        call->assigning = true;
        rv = meta_group_assign(call->grp->group, &call->op.change, change->node_id, RAFT_VOTER,
                               change_cb);
        if (rv == 0) {
            return;
        }
    }
    if (rv != 0) {
        call_finish(call, rv, NULL, 0);
    } else {
        call_reply(call, &empty.base);
    }
}

static void transfer_cb(struct meta_transfer *req)
{
    struct call *call = req->data;
    Cairn__Wire__Empty empty = CAIRN__WIRE__EMPTY__INIT;

    call_reply(call, &empty.base);
}

static void change_local(struct call *call, struct node_group *g)
{
    Cairn__Wire__GroupChange *change = call->request;
    int rv;

    call->op.change.data = call;
    if (change->transfer) {
        call->op.transfer.data = call;
        rv = meta_group_transfer(g->group, &call->op.transfer, change->node_id, transfer_cb);
    } else if (change->remove) {
        rv = meta_group_remove(g->group, &call->op.change, change->node_id, change_cb);
    } else {
        rv =
            meta_group_add(g->group, &call->op.change, change->node_id, change->address, change_cb);
        if (rv == CAIRN_EEXIST) { /* a spare already (an earlier attempt): promote it */
            call->assigning = true;
            rv = meta_group_assign(g->group, &call->op.change, change->node_id, RAFT_VOTER,
                                   change_cb);
        }
    }
    if (rv == CAIRN_ENOTLEADER) {
        call_lost_leader(call);
    } else if (rv != 0) {
        call_finish(call, rv, NULL, 0);
    }
}

static void call_local(struct call *call, struct node_group *g)
{
    call->grp = g;
    switch (call->type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_META_PROPOSE:
        propose_local(call, g);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_META_READ:
        call->op.read.data = call;
        if (meta_group_read(g->group, &call->op.read, read_cb) != 0) {
            call_lost_leader(call);
        }
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_META_WATCH:
        watch_local(call, g);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_CLUSTER_MAP:
        map_local(call);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_HEARTBEAT:
        heartbeat_local(call);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_NODE_JOIN:
        join_local(call, g);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_GROUP_CHANGE:
        change_local(call, g);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_REPAIR_HINT: {
        Cairn__Wire__Empty empty = CAIRN__WIRE__EMPTY__INIT;
        node__chunks_urgent(call->cluster->chunks, g,
                            ((Cairn__Wire__RepairHint *)call->request)->chunk_id.data);
        call_reply(call, &empty.base);
        break;
    }
    default:
        CN_ASSERT(false);
    }
}

/* ---- Arrival: check the request, then route it ---- */

static const ProtobufCMessageDescriptor *call_descriptor(uint16_t type)
{
    switch (type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_META_PROPOSE:
        return &cairn__wire__meta_propose__descriptor;
    case CAIRN__WIRE__MSG_TYPE__MSG_META_READ:
        return &cairn__wire__meta_read__descriptor;
    case CAIRN__WIRE__MSG_TYPE__MSG_META_WATCH:
        return &cairn__wire__meta_watch__descriptor;
    case CAIRN__WIRE__MSG_TYPE__MSG_CLUSTER_MAP:
        return &cairn__wire__empty__descriptor;
    case CAIRN__WIRE__MSG_TYPE__MSG_NODE_JOIN:
        return &cairn__wire__node_join__descriptor;
    case CAIRN__WIRE__MSG_TYPE__MSG_HEARTBEAT:
        return &cairn__wire__heartbeat__descriptor;
    case CAIRN__WIRE__MSG_TYPE__MSG_GROUP_CHANGE:
        return &cairn__wire__group_change__descriptor;
    case CAIRN__WIRE__MSG_TYPE__MSG_REPAIR_HINT:
        return &cairn__wire__repair_hint__descriptor;
    default:
        return NULL;
    }
}

/* The group a request goes to, or a CAIRN_E* code for a bad request. */
static int call_check(struct node_cluster *cluster, struct call *call)
{
    uint32_t groups = cluster->data_groups;
    Cairn__Cmd__Command *cmd = NULL;

    switch (call->type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_META_PROPOSE: {
        Cairn__Wire__MetaPropose *req = call->request;
        call->group = req->group;
        if (meta_command_decode(req->command.data, req->command.len, &cmd) != 0) {
            return CAIRN_EPROTO;
        }
        meta_record_free(cmd);
        break;
    }
    case CAIRN__WIRE__MSG_TYPE__MSG_META_READ:
        call->group = ((Cairn__Wire__MetaRead *)call->request)->group;
        if (((Cairn__Wire__MetaRead *)call->request)->query_case ==
            CAIRN__WIRE__META_READ__QUERY__NOT_SET) {
            return CAIRN_EINVAL;
        }
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_META_WATCH:
        call->group = ((Cairn__Wire__MetaWatch *)call->request)->group;
        if (((Cairn__Wire__MetaWatch *)call->request)->timeout_ms > WATCH_MAX_MS) {
            ((Cairn__Wire__MetaWatch *)call->request)->timeout_ms = WATCH_MAX_MS;
        }
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_GROUP_CHANGE:
        call->group = ((Cairn__Wire__GroupChange *)call->request)->group;
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_REPAIR_HINT: {
        Cairn__Wire__RepairHint *hint = call->request;
        call->group = hint->group;
        if (hint->group == 0 || hint->chunk_id.len != 32) {
            return CAIRN_EINVAL; /* a data group's chunk */
        }
        break;
    }
    default:
        call->group = 0; /* the system group's leader answers */
    }
    if (groups != 0 && call->group > groups) {
        return CAIRN_EINVAL; /* no such group */
    }
    if (groups == 0 && call->group >= NODE_GROUPS_MAX) {
        return CAIRN_EINVAL;
    }
    return 0;
}

static void call_start(struct node_cluster *cluster,
                       struct node_conn *conn,
                       const struct proto_frame_header *header,
                       const uint8_t *payload)
{
    const ProtobufCMessageDescriptor *desc = call_descriptor(header->type);
    struct call *call = cn_xcalloc(1, sizeof(*call));
    int rv;

    call->cluster = cluster;
    call->conn = conn;
    node_conn_hold(conn);
    call->type = header->type;
    call->request_id = header->request_id;
    call->len = header->length;
    call->payload = cn_xmalloc(call->len + 1);
    if (call->len > 0) {
        memcpy(call->payload, payload, call->len);
    }
    CN_ASSERT(uv_timer_init(cluster->node->loop, &call->timer) == 0);
    call->timer.data = call;
    call->deadline_ms = uv_now(cluster->node->loop) + CALL_BUDGET_MS;
    call->request = protobuf_c_message_unpack(desc, NULL, call->len, call->payload);
    rv = call->request == NULL ? CAIRN_EPROTO : call_check(cluster, call);
    if (rv != 0) {
        call_finish(call, rv, NULL, 0);
        return;
    }
    call_route(call);
}

static void group_closed_cb(void *data);

/* A dropped replica closed: its folder is set aside (DATA/raft/<g>.dropped-
 * <ms>, for forensics; its RocksDB keys stay and are harmless: a replica
 * hosted again skips or restores by index), and its memory goes. */
static void group_dropped_cb(void *data)
{
    struct node_group *g = data;
    struct node_cluster *cluster = g->cluster;
    char aside[700];

    snprintf(aside, sizeof(aside), "%s.dropped-%llu", g->dir,
             (unsigned long long)cluster->node->clock->wall_ms(cluster->node->clock));
    if (rename(g->dir, aside) != 0) {
        CN_LOG(CN_WARN, "dropped replica's folder kept", "dir=%s err=%s", g->dir, strerror(errno));
    }
    CN_LOG(CN_INFO, "group dropped", "group=%llu", (unsigned long long)g->id);
    for (struct node_group **p = &cluster->groups; *p != NULL; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            break;
        }
    }
    meta_sm_free(g->sm);
    free(g);
    CN_ASSERT(cluster->drops_pending > 0);
    cluster->drops_pending--;
    if (cluster->stopping) {
        group_closed_cb(cluster); /* the stop counted this close */
    }
}

/* Stops hosting a replica the group no longer counts (the system leader
 * asks, from the group's configuration). Idempotent. */
static int group_drop(struct node_cluster *cluster, uint64_t id)
{
    struct node_group *g = node__group_find(cluster, id);

    if (g == NULL) {
        return 0;
    }
    if (meta_group_is_leader(g->group)) {
        return CAIRN_EBUSY; /* a leader is in its group by definition: a stale ask */
    }
    g->closing = true;
    g->dropping = true;
    cluster->drops_pending++;
    meta_group_close(g->group, group_dropped_cb, g);
    return 0;
}

static void group_host_handle(struct node_cluster *cluster,
                              struct node_conn *conn,
                              const struct proto_frame_header *header,
                              const uint8_t *payload)
{
    Cairn__Wire__GroupHost *req = cairn__wire__group_host__unpack(NULL, header->length, payload);
    char errmsg[CN_ERRMSG_SIZE];
    int rv;

    if (req == NULL || req->group >= NODE_GROUPS_MAX) {
        rv = CAIRN_EPROTO;
    } else if (req->drop) {
        rv = group_drop(cluster, req->group);
    } else {
        rv = node__group_host(cluster, req->group, false, errmsg);
        if (rv != 0) {
            CN_LOG(CN_WARN, "group host failed", "group=%llu err=%s msg=\"%s\"",
                   (unsigned long long)req->group, cairn_errname(rv), errmsg);
        }
    }
    if (rv == 0) {
        node_conn_send(conn, header->type, PROTO_FLAG_REPLY, header->request_id, NULL, 0);
    } else {
        node_conn_send_error(conn, header->type, header->request_id, rv, cairn_strerror(rv));
    }
    cairn__wire__group_host__free_unpacked(req, NULL);
}

bool node__cluster_handle(struct node *node,
                          struct node_conn *conn,
                          const struct proto_frame_header *header,
                          const uint8_t *payload)
{
    struct node_cluster *cluster = node->cluster;

    if (header->type == CAIRN__WIRE__MSG_TYPE__MSG_HELLO) {
        node__link_accept(cluster, conn, header, payload);
        return true;
    }
    if (header->type == CAIRN__WIRE__MSG_TYPE__MSG_GROUP_HOST) {
        group_host_handle(cluster, conn, header, payload);
        return true;
    }
    if (call_descriptor(header->type) == NULL) {
        return false;
    }
    if (cluster->stopping) {
        node_conn_send_error(conn, header->type, header->request_id, CAIRN_ESHUTDOWN, "stopping");
        return true;
    }
    call_start(cluster, conn, header, payload);
    return true;
}

/* ---- The tick: bootstrap's ClusterInit, heartbeats ---- */

void node__command_header(struct node_cluster *cluster,
                          Cairn__Cmd__Header *header,
                          uint8_t request_id[META_REQUEST_ID_SIZE])
{
    randombytes_buf(request_id, META_REQUEST_ID_SIZE);
    header->request_id.data = request_id;
    header->request_id.len = META_REQUEST_ID_SIZE;
    header->time_ms = cluster->node->clock->wall_ms(cluster->node->clock);
    header->actor_user = 0;
}

static void init_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct node_cluster *cluster = req->data;
    char path[700];

    cluster->init_proposing = false;
    if (result->rv == 0 || result->rv == CAIRN_EEXIST) {
        cluster->init_pending = false;
        raft_path(&cluster->node->config, path, sizeof(path), BOOTSTRAP_FILE);
        unlink(path);
        CN_LOG(CN_INFO, "cluster initialised", "groups=%u", cluster->data_groups);
    } else if (result->rv != CAIRN_ESHUTDOWN) {
        CN_LOG(CN_WARN, "cluster init failed", "err=%s", cairn_errname(result->rv));
    }
}

static void init_propose(struct node_cluster *cluster)
{
    struct node_group *g = node__group_find(cluster, 0);
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__ClusterInit init = CAIRN__CMD__CLUSTER_INIT__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];

    if (g == NULL || cluster->init_proposing || !meta_group_is_leader(g->group)) {
        return;
    }
    node__command_header(cluster, &header, request_id);
    init.cluster_id.data = cluster->node->cluster_id;
    init.cluster_id.len = NODE_CLUSTER_ID_SIZE;
    init.data_groups = cluster->data_groups;
    init.address = cluster->address;
    init.failure_domain = cluster->node->config.failure_domain;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_CLUSTER_INIT;
    cmd.cluster_init = &init;
    cluster->init_req.data = cluster;
    if (meta_group_propose(g->group, &cluster->init_req, &cmd, init_cb) == 0) {
        cluster->init_proposing = true;
    }
}

/* A group whose storage failed can make no progress again in this process
 * (meta_group_failed()): the node stops, to be started again once its disk
 * works, rather than linger as a replica that answers but never moves. */
static bool storage_failed(struct node_cluster *cluster)
{
    char errmsg[CN_ERRMSG_SIZE];

    for (struct node_group *g = cluster->groups; g != NULL; g = g->next) {
        if (!g->closing && meta_group_failed(g->group, errmsg)) {
            node__storage_failed(g->id, errmsg);
            return true;
        }
    }
    return false;
}

/* Shards this node's scrub set aside: their chunks' leaders check them now. */
static void repair_hints(struct node_cluster *cluster)
{
    struct stor_id found[16];
    unsigned n = node__scrub_take_found(cluster->node, found, CN_ARRAY_SIZE(found));

    for (unsigned i = 0; i < n; i++) {
        node__chunks_hint(cluster, found[i].bytes);
    }
}

static void tick_cb(uv_timer_t *timer)
{
    struct node_cluster *cluster = timer->data;

    if (cluster->stopping || storage_failed(cluster)) {
        return;
    }
    if (cluster->init_pending) {
        init_propose(cluster);
    }
    node__heartbeat_send(cluster);
    node__driver_tick(cluster);
    if (cluster->chunks != NULL) {
        node__chunks_tick(cluster->chunks);
    }
    repair_hints(cluster);
    node__outbox_tick(cluster);
}
