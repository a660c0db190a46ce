/*
 * The admin HTTP port: GET /metrics (Prometheus text) and GET /health (JSON),
 * served by the gateway's HTTP core (cairn_gateway_http) on the node's loop.
 *
 * /metrics, the happy path:
 *   1. The handler allocates a scrape (one request struct) and queues it on
 *      libuv's thread pool, since reading each store's usage walks its
 *      directory: never on the loop.
 *   2. On the loop again, the scrape takes the rest of the snapshot (RPC
 *      counters, connections, scrub progress), renders it (metrics.c) and
 *      answers.
 * /health answers at once: 200 {"status": "ok", "node_id": N, "cluster_id": hex}.
 *
 * Possible failure modes:
 *   - The client leaves while the scrape is on the pool: on_done detaches the
 *     scrape from the request, and the scrape frees itself when it returns.
 *   - A store's usage cannot be read: that directory shows
 *     cairn_node_dir_up 0 and no numbers; the rest is served.
 *   - Out of memory while rendering: 500 with the JSON error body.
 *   - Unknown paths (404), other methods (405), bad requests (400, 431, ...):
 *     answered by the HTTP core with its JSON error shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "gw_http.h"

#define ADMIN_CONNECTIONS_MAX 64
#define ADMIN_DRAIN_MS        1000

/* One /metrics request while its usage is read on the pool. */
struct scrape {
    uv_work_t work;
    struct node *node;
    struct gw_req *req; /* NULL once the client left: then nobody answers */
    struct node_metrics metrics;
};

static void scrape_work_cb(uv_work_t *work)
{
    struct scrape *scrape = CN_CONTAINER_OF(work, struct scrape, work);
    struct node *node = scrape->node;

    for (unsigned i = 0; i < node->config.dir_count; i++) {
        struct node_dir_metrics *dir = &scrape->metrics.dirs[i];
        struct stor_store_usage usage;

        dir->path = node->config.dirs[i].path;
        dir->cold = node->config.dirs[i].tier == NODE_TIER_COLD;
        dir->rv = stor_store_usage(node->config.dirs[i].store, &usage);
        if (dir->rv == 0) {
            dir->shard_count = usage.shard_count;
            dir->shard_bytes = usage.shard_bytes;
            dir->disk_free = usage.disk_free;
            dir->disk_total = usage.disk_total;
        }
    }
    scrape->metrics.dir_count = node->config.dir_count;
}

static void respond_metrics(struct scrape *scrape, struct gw_req *req)
{
    struct node *node = scrape->node;
    char hex[2 * NODE_CLUSTER_ID_SIZE + 1];
    struct node_group_metrics *groups = cn_xcalloc(NODE_GROUPS_MAX, sizeof(*groups));
    struct cn_buf text;

    cn_hex_encode(node->cluster_id, sizeof(node->cluster_id), hex);
    scrape->metrics.node_id = node->node_id;
    scrape->metrics.cluster_id = hex;
    scrape->metrics.start_time_ms = node->start_time_ms;
    scrape->metrics.rpc = &node->rpc;
    scrape->metrics.connections =
        node->server != NULL ? node_server_connection_count(node->server) : 0;
    scrape->metrics.connections_rejected =
        node->server != NULL ? node_server_rejected_count(node->server) : 0;
    node__scrub_progress(node, &scrape->metrics.scrub);
    scrape->metrics.calls_retrying = node->cluster != NULL ? node->cluster->retrying_count : 0;
    if (node->cluster != NULL && node->cluster->chunks != NULL) {
        node__chunks_progress(node->cluster->chunks, &scrape->metrics.repair);
    }
    scrape->metrics.groups = groups;
    scrape->metrics.group_count = node__cluster_metrics(node, groups, NODE_GROUPS_MAX);
    cn_buf_init(&text);
    if (node__metrics_render(&scrape->metrics, &text) != 0) {
        gw_respond_error(req, CAIRN_ENOMEM, "cannot render metrics");
    } else {
        gw_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text.base, text.len);
    }
    cn_buf_close(&text);
    free(groups);
}

static void scrape_after_work_cb(uv_work_t *work, int status)
{
    struct scrape *scrape = CN_CONTAINER_OF(work, struct scrape, work);

    CN_ASSERT(status == 0);
    if (scrape->req != NULL) {
        gw_req_set_data(scrape->req, NULL);
        respond_metrics(scrape, scrape->req);
    }
    free(scrape);
}

static void metrics_done(struct gw_req *req, int rv)
{
    struct scrape *scrape = gw_req_data(req);

    (void)rv;
    if (scrape != NULL) {
        scrape->req = NULL; /* still on the pool: it frees itself */
    }
}

static bool exact_path(struct gw_req *req, const char *path)
{
    if (strcmp(gw_req_path(req), path) != 0) {
        gw_respond_error(req, CAIRN_ENOENT, "no such resource");
        return false;
    }
    return true;
}

static void metrics_handler(struct gw_req *req, void *data)
{
    struct node *node = data;
    struct scrape *scrape;

    if (!exact_path(req, "/metrics")) {
        return;
    }
    scrape = cn_xcalloc(1, sizeof(*scrape));
    scrape->node = node;
    scrape->req = req;
    if (uv_queue_work(node->loop, &scrape->work, scrape_work_cb, scrape_after_work_cb) != 0) {
        free(scrape);
        gw_respond_error(req, CAIRN_EBUSY, "cannot queue the scrape");
        return;
    }
    gw_req_set_data(req, scrape);
    gw_req_on_done(req, metrics_done);
}

static void health_handler(struct gw_req *req, void *data)
{
    struct node *node = data;
    char hex[2 * NODE_CLUSTER_ID_SIZE + 1];
    json_t *body;

    if (!exact_path(req, "/health")) {
        return;
    }
    cn_hex_encode(node->cluster_id, sizeof(node->cluster_id), hex);
    body = json_pack("{s:s, s:I, s:s}", "status", node->stopping ? "stopping" : "ok", "node_id",
                     (json_int_t)node->node_id, "cluster_id", hex);
    if (body == NULL) {
        gw_respond_error(req, CAIRN_ENOMEM, "cannot build the answer");
        return;
    }
    gw_respond_json(req, node->stopping ? 503 : 200, body);
    json_decref(body);
}

/* Splits "IP:PORT" into host and port. CAIRN_EINVAL. */
static int parse_address(const char *address, char *host, size_t host_size, uint16_t *port)
{
    const char *colon = strrchr(address, ':');
    char *end;
    unsigned long value;

    if (colon == NULL || colon == address || (size_t)(colon - address) >= host_size) {
        return CAIRN_EINVAL;
    }
    value = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || value > 65535) {
        return CAIRN_EINVAL;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    *port = (uint16_t)value;
    return 0;
}

int node__admin_start(struct node *node, char *errmsg)
{
    struct gw_config config;
    char *host = node->admin_host; /* the server borrows it */
    int rv;

    CN_ASSERT(node->admin == NULL);
    CN_ASSERT(node->loop != NULL);
    if (node->config.admin[0] == '\0') {
        return 0;
    }
    gw_config_init(&config);
    if (parse_address(node->config.admin, host, sizeof(node->admin_host), &config.port) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "bad admin address %s (want IP:PORT)",
                          node->config.admin);
    }
    config.host = host;
    config.conn_count_max = ADMIN_CONNECTIONS_MAX;
    config.body_size_max = 0; /* GETs only */
    node->admin_router = gw_router_new();
    rv = gw_router_add(node->admin_router, "GET", "/metrics", metrics_handler, node);
    rv = rv != 0 ? rv : gw_router_add(node->admin_router, "GET", "/health", health_handler, node);
    CN_ASSERT(rv == 0);
    rv = gw_server_new(node->loop, &config, node->admin_router, &node->admin, errmsg);
    if (rv != 0) {
        goto err_free_router;
    }
    CN_LOG(CN_INFO, "admin ready", "admin=%s:%u", host, gw_server_port(node->admin));
    return 0;

err_free_router:
    gw_router_free(node->admin_router);
    node->admin_router = NULL;
    node->admin = NULL;
    return rv;
}

static void admin_close_cb(struct gw_server *server, void *data)
{
    struct node *node = data;

    (void)server;
    gw_router_free(node->admin_router);
    node->admin_router = NULL;
}

void node__admin_stop(struct node *node)
{
    if (node->admin == NULL) {
        return;
    }
    gw_server_close(node->admin, ADMIN_DRAIN_MS, admin_close_cb, node);
    node->admin = NULL;
}
