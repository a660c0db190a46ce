/*
 * `cairn-node run` and `cairn-node join`: the serving loop and its shutdown.
 *
 * run: load the secret, check the data directories' identity, open (and lock)
 * their stores, start scrub (scrub.c), listen, serve the admin port if asked
 * (admin.c), and answer frames: block RPCs (blocks.c), ping and node info,
 * each counted with its latency for /metrics. SIGTERM or SIGINT stops the
 * listener, every connection, the admin port and scrub; libuv then finishes
 * work in flight (its replies go nowhere), scrub's thread is joined, and the
 * stores close with every acknowledged shard durable. A Raft group whose
 * storage failed (a full or failing disk, meta_group_failed()) stops the node
 * at once, as kill -9 would, with exit code NODE_EXIT_STORAGE (4).
 *
 * join: one call to the given member, which proves both hold the secret and
 * tells the cluster id; then the identity is written.
 */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cluster.h"

#define EXIT_RUNTIME    1
#define EXIT_USAGE      2
#define EXIT_FOREIGN    3
#define JOIN_TIMEOUT_MS 10000

static void reply_msg(struct node_conn *conn,
                      const struct proto_frame_header *header,
                      const ProtobufCMessage *msg)
{
    struct cn_buf out;

    cn_buf_init(&out);
    if (cn_buf_reserve(&out, protobuf_c_message_get_packed_size(msg)) == 0) {
        out.len = protobuf_c_message_pack(msg, out.base);
        node_conn_send(conn, header->type, PROTO_FLAG_REPLY, header->request_id, out.base, out.len);
    }
    cn_buf_close(&out);
}

/* The replicas this node hosts, with their applied index and digest (a scan
 * of each group: an admin call). Arrays freed by node_info_groups_free(). */
static void node_info_groups(struct node *node, Cairn__Wire__NodeInfo *info)
{
    struct node_cluster *cluster = node->cluster;
    unsigned count = 0;

    if (cluster == NULL) {
        return;
    }
    for (struct node_group *g = cluster->groups; g != NULL; g = g->next) {
        count++;
    }
    info->groups = cn_xcalloc(count + 1, sizeof(*info->groups));
    for (struct node_group *g = cluster->groups; g != NULL; g = g->next) {
        Cairn__Wire__MapGroup *out = cn_xcalloc(1, sizeof(*out));
        if (g->closing) {
            free(out);
            continue;
        }
        node__group_fill(cluster, g, out);
        out->applied_index = meta_sm_applied(g->sm);
        out->digest.data = cn_xmalloc(META_DIGEST_SIZE);
        out->digest.len = META_DIGEST_SIZE;
        if (meta_sm_digest(g->sm, out->digest.data) != 0) {
            out->digest.len = 0;
        }
        info->groups[info->n_groups++] = out;
    }
}

static void node_info_groups_free(Cairn__Wire__NodeInfo *info)
{
    for (size_t i = 0; i < info->n_groups; i++) {
        node__group_fill_free(info->groups[i]);
        free(info->groups[i]->digest.data);
        free(info->groups[i]);
    }
    free(info->groups);
}

static void node_info(struct node *node,
                      struct node_conn *conn,
                      const struct proto_frame_header *header)
{
    Cairn__Wire__NodeInfo info = CAIRN__WIRE__NODE_INFO__INIT;
    struct stor_store_usage usage;

    info.cluster_id.data = node->cluster_id;
    info.cluster_id.len = sizeof(node->cluster_id);
    info.node_id = node->node_id;
    info.address = node->config.listen;
    info.failure_domain = node->config.failure_domain;
    for (unsigned i = 0; i < node->config.dir_count; i++) {
        /* A walk of the store: fine for an admin call, not for a hot path. */
        if (stor_store_usage(node->config.dirs[i].store, &usage) == 0) {
            info.shard_count += usage.shard_count;
            info.bytes_used += usage.shard_bytes;
            info.bytes_free += usage.disk_free;
        }
    }
    node_info_groups(node, &info);
    reply_msg(conn, header, &info.base);
    node_info_groups_free(&info);
}

static void on_frame(void *data,
                     struct node_conn *conn,
                     const struct proto_frame_header *header,
                     const uint8_t *payload)
{
    struct node *node = data;
    uint64_t start_ns = uv_hrtime();
    int rv = 0;

    if ((header->flags & PROTO_FLAG_REPLY) != 0) {
        return; /* nobody here called; drop */
    }
    if (node__blocks_handle(node, conn, header, payload)) {
        return; /* counted when answered */
    }
    if (node->cluster != NULL && node__cluster_handle(node, conn, header, payload)) {
        return; /* metadata and Raft: answered by cluster.c */
    }
    switch (header->type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_PING:
        node_conn_send(conn, header->type, PROTO_FLAG_REPLY, header->request_id, payload,
                       header->length);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_NODE_INFO:
        node_info(node, conn, header);
        break;
    default:
        rv = CAIRN_EUNSUPPORTED;
        node_conn_send_error(conn, header->type, header->request_id, rv, "unknown request type");
    }
    node__rpc_record(&node->rpc, node__rpc_kind(header->type), rv, (uv_hrtime() - start_ns) / 1000);
}

static void stop(struct node *node)
{
    if (node->stopping) {
        return;
    }
    node->stopping = true;
    CN_LOG(CN_INFO, "stopping", "work_in_flight=%u", node->work_in_flight);
    node_server_stop(node->server, NULL, NULL);
    node__cluster_stop(node, NULL);
    node__admin_stop(node);
    node__scrub_stop(node);
    uv_close((uv_handle_t *)&node->sigterm, NULL);
    uv_close((uv_handle_t *)&node->sigint, NULL);
}

void node__storage_failed(uint64_t group, const char *why)
{
    CN_LOG(CN_ERROR, "storage failed: stopping the node; start it again once the disk works",
           "group=%llu err=%s exit_code=%d", (unsigned long long)group, why, NODE_EXIT_STORAGE);
    /* At once, as kill -9 would: a clean stop writes to the disk that just
     * failed (libraft closes its segments), and everything here is built to
     * survive a kill at any point. */
    _exit(NODE_EXIT_STORAGE);
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    (void)signum;
    stop(handle->data);
}

/* Exit code for a failure to start. */
static int start_failure(int rv, const char *what, const char *errmsg)
{
    fprintf(stderr, "cairn-node: %s: %s\n", what, errmsg);
    if (rv == CAIRN_ELOCKED || rv == CAIRN_EEXIST) {
        return EXIT_FOREIGN;
    }
    return rv == CAIRN_EINVAL || rv == CAIRN_EPERM || rv == CAIRN_ENOENT ? EXIT_USAGE
                                                                         : EXIT_RUNTIME;
}

int node__run(struct node *node)
{
    struct node_rpc_options options;
    char errmsg[CN_ERRMSG_SIZE], hex[2 * NODE_CLUSTER_ID_SIZE + 1];
    int rv;

    node->clock = cn_clock_system();
    node->start_time_ms = node->clock->wall_ms(node->clock);
    rv = node_secret_load(node->config.secret_path, node->secret, errmsg);
    if (rv != 0) {
        return start_failure(rv, "secret", errmsg);
    }
    rv = node__identity_load(node, errmsg);
    if (rv != 0) {
        return rv == CAIRN_EINVAL ? (fprintf(stderr, "cairn-node: %s\n", errmsg), EXIT_FOREIGN)
                                  : start_failure(rv, "data", errmsg);
    }
    rv = node__stores_open(node, errmsg);
    if (rv != 0) {
        return start_failure(rv, "store", errmsg);
    }
    node->loop = uv_default_loop();
    node_rpc_options_init(&options);
    options.frame_payload_max = STOR_SHARD_SIZE_MAX + 4096; /* a whole shard and its envelope */
    rv = node_server_start(node->loop, node->config.listen, node->secret, &options, on_frame, node,
                           &node->server, errmsg);
    if (rv != 0) {
        node__stores_close(node);
        return start_failure(rv, "listen", errmsg);
    }
    rv = node__cluster_start(node, errmsg);
    if (rv != 0) {
        node__cluster_stop(node, NULL);
        goto err_stop_server;
    }
    rv = node__admin_start(node, errmsg);
    if (rv != 0) {
        node__cluster_stop(node, NULL);
        goto err_stop_server;
    }
    rv = node__scrub_start(node, errmsg);
    if (rv != 0) {
        node__admin_stop(node);
        node__cluster_stop(node, NULL);
        goto err_stop_server;
    }
    uv_signal_init(node->loop, &node->sigterm);
    uv_signal_init(node->loop, &node->sigint);
    node->sigterm.data = node->sigint.data = node;
    uv_signal_start(&node->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&node->sigint, signal_cb, SIGINT);
    cn_hex_encode(node->cluster_id, sizeof(node->cluster_id), hex);
    if (node->config.debug_stale_reads) {
        CN_LOG(CN_WARN,
               "DEBUG BUILD: metadata reads answered from any replica without a read barrier; "
               "never in production",
               "flag=%s", "--debug-stale-reads");
    }
    CN_LOG(CN_INFO, "node ready",
           "listen=127.0.0.1:%d node=%llu cluster=%s dirs=%u scrub_rate=%llu",
           node_server_port(node->server), (unsigned long long)node->node_id, hex,
           node->config.dir_count, (unsigned long long)node->config.scrub_rate);
    uv_run(node->loop, UV_RUN_DEFAULT);
    node__scrub_join(node);
    node__stores_close(node);
    uv_loop_close(node->loop);
    CN_LOG(CN_INFO, "stopped", "node=%llu", (unsigned long long)node->node_id);
    return 0;

err_stop_server:
    node_server_stop(node->server, NULL, NULL);
    uv_run(node->loop, UV_RUN_DEFAULT);
    node__stores_close(node);
    uv_loop_close(node->loop);
    return start_failure(rv, rv == CAIRN_EINVAL ? "admin" : "start", errmsg);
}

struct join_result {
    bool done;
    int rv;
    uint8_t cluster_id[NODE_CLUSTER_ID_SIZE];
    uint64_t node_id;
    char seeds[NODE_SEEDS_MAX][64]; /* the member joined through, then the map's */
    unsigned seed_count;
    bool map_done;
};

/* The map after joining: its nodes become the seeds, so that the new node
 * finds the system group even if the member it joined through is gone. */
static void join_map_cb(void *data,
                        int rv,
                        const struct proto_frame_header *header,
                        const uint8_t *payload)
{
    struct join_result *result = data;
    Cairn__Wire__ClusterMap *map = NULL;

    result->map_done = true;
    if (rv == 0) {
        map = cairn__wire__cluster_map__unpack(NULL, header->length, payload);
    }
    for (size_t i = 0; map != NULL && i < map->n_nodes && result->seed_count < NODE_SEEDS_MAX;
         i++) {
        if (map->nodes[i]->id != result->node_id && strlen(map->nodes[i]->address) < 64 &&
            strcmp(map->nodes[i]->address, result->seeds[0]) != 0) {
            strcpy(result->seeds[result->seed_count++], map->nodes[i]->address);
        }
    }
    if (map != NULL) {
        cairn__wire__cluster_map__free_unpacked(map, NULL);
    }
}

/* The legacy answer (MSG_NODE_INFO, with --node-id): the cluster id. */
static void info_cb(void *data,
                    int rv,
                    const struct proto_frame_header *header,
                    const uint8_t *payload)
{
    struct join_result *result = data;
    Cairn__Wire__NodeInfo *info = NULL;

    result->done = true;
    result->rv = rv;
    if (rv == 0) {
        info = cairn__wire__node_info__unpack(NULL, header->length, payload);
        result->rv =
            info != NULL && info->cluster_id.len == NODE_CLUSTER_ID_SIZE ? 0 : CAIRN_EPROTO;
        if (result->rv == 0) {
            memcpy(result->cluster_id, info->cluster_id.data, NODE_CLUSTER_ID_SIZE);
        }
        cairn__wire__node_info__free_unpacked(info, NULL);
    }
}

/* MSG_NODE_JOIN's answer: the cluster id and the id NodeAdd gave us. */
static void join_cb(void *data,
                    int rv,
                    const struct proto_frame_header *header,
                    const uint8_t *payload)
{
    struct join_result *result = data;
    Cairn__Wire__NodeJoinReply *reply = NULL;

    result->done = true;
    result->rv = rv;
    if (rv == 0) {
        reply = cairn__wire__node_join_reply__unpack(NULL, header->length, payload);
        result->rv =
            reply != NULL && reply->cluster_id.len == NODE_CLUSTER_ID_SIZE && reply->node_id >= 2
                ? 0
                : CAIRN_EPROTO;
        if (result->rv == 0) {
            memcpy(result->cluster_id, reply->cluster_id.data, NODE_CLUSTER_ID_SIZE);
            result->node_id = reply->node_id;
        }
        cairn__wire__node_join_reply__free_unpacked(reply, NULL);
    }
}

static int join_call(struct node_client *client,
                     const struct node_config *config,
                     uint64_t node_id,
                     struct join_result *result)
{
    Cairn__Wire__NodeJoin join = CAIRN__WIRE__NODE_JOIN__INIT;
    uint8_t packed[256];
    size_t len;

    if (node_id != 0) {
        result->node_id = node_id;
        return node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_NODE_INFO, NULL, 0,
                                JOIN_TIMEOUT_MS, info_cb, result);
    }
    join.address = (char *)(config->advertise[0] != '\0' ? config->advertise : config->listen);
    join.failure_domain = (char *)config->failure_domain;
    len = cairn__wire__node_join__pack(&join, packed);
    return node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_NODE_JOIN, packed, len,
                            JOIN_TIMEOUT_MS, join_cb, result);
}

int node__join(struct node_config *config, const char *address, uint64_t node_id)
{
    uint8_t secret[NODE_SECRET_SIZE];
    char errmsg[CN_ERRMSG_SIZE];
    struct node_rpc_options options;
    struct join_result result = {0};
    struct node_client *client;
    uv_loop_t loop;
    int rv;

    rv = node_secret_load(config->secret_path, secret, errmsg);
    if (rv != 0) {
        return start_failure(rv, "secret", errmsg);
    }
    uv_loop_init(&loop);
    node_rpc_options_init(&options);
    client = node_client_new(&loop, address, secret, &options);
    snprintf(result.seeds[0], sizeof(result.seeds[0]), "%s", address);
    result.seed_count = 1;
    rv = join_call(client, config, node_id, &result);
    while (rv == 0 && !result.done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    rv = rv != 0 ? rv : result.rv;
    if (rv == 0 && node_id == 0 &&
        node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_CLUSTER_MAP, NULL, 0, JOIN_TIMEOUT_MS,
                         join_map_cb, &result) == 0) {
        while (!result.map_done) {
            uv_run(&loop, UV_RUN_ONCE); /* best effort: the seed alone also works */
        }
    }
    node_client_free(client);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rv != 0) {
        fprintf(stderr, "cairn-node: join %s: %s (%s)\n", address, cairn_strerror(rv),
                cairn_errname(rv));
        return rv == CAIRN_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    rv = node__identity_create(config, result.cluster_id, result.node_id, errmsg);
    if (rv == 0) {
        const char *seeds[NODE_SEEDS_MAX];
        for (unsigned i = 0; i < result.seed_count; i++) {
            seeds[i] = result.seeds[i];
        }
        rv = node__seed_save(config, seeds, result.seed_count, errmsg);
    }
    if (rv != 0) {
        return start_failure(rv, "join", errmsg);
    }
    printf("joined the cluster of %s as node %llu\n", address, (unsigned long long)result.node_id);
    return 0;
}
