/*
 * GET /health and GET /metrics of cairn-gateway (no token needed; put them
 * behind the balancer's own rules if they must not be public).
 *
 * /health: 200 {"status":"ok", ...} once the cluster map was read and at least
 * one node is up; 503 {"status":"starting"|"degraded"|"stopping"} otherwise,
 * so that a balancer sends no traffic to a gateway that cannot serve it.
 * /metrics: Prometheus text, built on the loop from counters (no I/O).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "app.h"

static bool exact_path(struct gw_req *req, const char *path)
{
    if (strcmp(gw_req_path(req), path) != 0) {
        gw_respond_error(req, CAIRN_ENOENT, "no such resource");
        return false;
    }
    return true;
}

static void health_handler(struct gw_req *req, void *data)
{
    struct gw_app *app = data;
    const char *status = "ok";
    json_t *body;

    if (!exact_path(req, "/health")) {
        return;
    }
    if (app->stopping) {
        status = "stopping";
    } else if (app->data_groups == 0) {
        status = "starting";
    } else if (app->member_up_count == 0) {
        status = "degraded";
    }
    body = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "status", status, "map_epoch",
                     (json_int_t)app->map_epoch, "nodes", (json_int_t)app->member_count, "nodes_up",
                     (json_int_t)app->member_up_count, "data_groups", (json_int_t)app->data_groups,
                     "k", (json_int_t)app->k, "m", (json_int_t)app->m);
    if (body == NULL) {
        gw_respond_error(req, CAIRN_ENOMEM, "cannot build the answer");
        return;
    }
    gw_respond_json(req, strcmp(status, "ok") == 0 ? 200 : 503, body);
    json_decref(body);
}

static void metric(struct cn_buf *out, const char *name, const char *type, uint64_t value)
{
    char line[256];
    int len;

    len = snprintf(line, sizeof(line), "# TYPE %s %s\n%s %" PRIu64 "\n", name, type, name, value);
    CN_ASSERT(len > 0 && (size_t)len < sizeof(line));
    (void)cn_buf_append(out, line, (size_t)len);
}

static void metrics_handler(struct gw_req *req, void *data)
{
    struct gw_app *app = data;
    const struct gw_app_stats *s = &app->stats;
    struct gw_server_stats http;
    struct cn_buf out;

    if (!exact_path(req, "/metrics")) {
        return;
    }
    gw_server_stats(app->server, &http);
    cn_buf_init(&out);
    metric(&out, "cairn_gateway_http_connections", "gauge", http.conn_count);
    metric(&out, "cairn_gateway_http_requests_total", "counter", http.request_count);
    metric(&out, "cairn_gateway_http_rejected_total", "counter", http.reject_count);
    metric(&out, "cairn_gateway_http_timeouts_total", "counter", http.timeout_count);
    metric(&out, "cairn_gateway_logins_total", "counter", s->logins);
    metric(&out, "cairn_gateway_login_failures_total", "counter", s->login_failures);
    metric(&out, "cairn_gateway_token_checks_total", "counter", s->token_checks);
    metric(&out, "cairn_gateway_token_cache_hits_total", "counter", s->token_cache_hits);
    metric(&out, "cairn_gateway_uploads_total", "counter", s->uploads);
    metric(&out, "cairn_gateway_upload_bytes_total", "counter", s->upload_bytes);
    metric(&out, "cairn_gateway_upload_failures_total", "counter", s->upload_failures);
    metric(&out, "cairn_gateway_downloads_total", "counter", s->downloads);
    metric(&out, "cairn_gateway_download_bytes_total", "counter", s->download_bytes);
    metric(&out, "cairn_gateway_chunk_puts_total", "counter", s->chunk_puts);
    metric(&out, "cairn_gateway_chunk_dedups_total", "counter", s->chunk_dedups);
    metric(&out, "cairn_gateway_chunk_gets_total", "counter", s->chunk_gets);
    metric(&out, "cairn_gateway_meta_calls_total", "counter", s->meta_calls);
    metric(&out, "cairn_gateway_meta_errors_total", "counter", s->meta_errors);
    metric(&out, "cairn_gateway_map_refreshes_total", "counter", s->map_refreshes);
    metric(&out, "cairn_gateway_map_failures_total", "counter", s->map_failures);
    metric(&out, "cairn_gateway_change_polls_total", "counter", s->polls);
    metric(&out, "cairn_gateway_calls", "gauge", s->calls_alive);
    metric(&out, "cairn_gateway_uploads_active", "gauge", s->uploads_active);
    metric(&out, "cairn_gateway_downloads_active", "gauge", s->downloads_active);
    metric(&out, "cairn_gateway_busy_refusals_total", "counter", s->busy_refusals);
    metric(&out, "cairn_gateway_watches", "gauge", app->watch_count);
    metric(&out, "cairn_gateway_nodes_up", "gauge", app->member_up_count);
    metric(&out, "cairn_gateway_map_epoch", "gauge", app->map_epoch);
    gw_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", out.base, out.len);
    cn_buf_close(&out);
}

/* GET /v1/admin/status (admins): the cluster map, fresh from a node (the
 * system group's leader's view): nodes with state, usage and repair progress;
 * groups with leader, voters and each replica's lag (the leader's commit
 * index minus what the replica applied, as of its last heartbeat); this
 * gateway's scheme and counters. */
static const char *state_name(Cairn__Wire__NodeState state)
{
    switch (state) {
    case CAIRN__WIRE__NODE_STATE__NODE_UP:
        return "up";
    case CAIRN__WIRE__NODE_STATE__NODE_SUSPECT:
        return "suspect";
    case CAIRN__WIRE__NODE_STATE__NODE_DOWN:
        return "down";
    case CAIRN__WIRE__NODE_STATE__NODE_DRAINING:
        return "draining";
    case CAIRN__WIRE__NODE_STATE__NODE_REMOVED:
        return "removed";
    default:
        return "unknown";
    }
}

static json_t *id_array(const uint64_t *ids, size_t count)
{
    json_t *out = json_array();

    for (size_t i = 0; i < count; i++) {
        json_array_append_new(out, json_integer((json_int_t)ids[i]));
    }
    return out;
}

static json_t *status_nodes(const Cairn__Wire__ClusterMap *map)
{
    json_t *nodes = json_array();

    for (size_t i = 0; i < map->n_nodes; i++) {
        const Cairn__Wire__MapNode *n = map->nodes[i];
        const Cairn__Wire__RepairProgress *p = n->repair;
        json_t *node = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "id", (json_int_t)n->id,
                                 "address", n->address != NULL ? n->address : "", "domain",
                                 n->failure_domain != NULL ? n->failure_domain : "", "state",
                                 state_name(n->state), "bytes_used", (json_int_t)n->bytes_used,
                                 "bytes_free", (json_int_t)n->bytes_free);

        if (p != NULL) {
            json_object_set_new(
                node, "repair",
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "passes",
                          (json_int_t)p->passes, "chunks_checked", (json_int_t)p->chunks_checked,
                          "chunks_repaired", (json_int_t)p->chunks_repaired, "shards_rebuilt",
                          (json_int_t)p->shards_rebuilt, "shards_moved",
                          (json_int_t)p->shards_moved, "chunks_waiting",
                          (json_int_t)p->chunks_waiting, "chunks_degraded",
                          (json_int_t)p->chunks_degraded, "in_flight", (json_int_t)p->in_flight));
        }
        json_array_append_new(nodes, node);
    }
    return nodes;
}

static json_t *status_groups(const Cairn__Wire__ClusterMap *map)
{
    json_t *groups = json_array();

    for (size_t i = 0; i < map->n_groups; i++) {
        const Cairn__Wire__MapGroup *g = map->groups[i];
        json_t *replicas = json_array();

        for (size_t j = 0; j < map->n_nodes; j++) {
            const Cairn__Wire__MapNode *n = map->nodes[j];
            for (size_t r = 0; r < n->n_replicas; r++) {
                uint64_t applied = n->replicas[r]->applied_index;
                if (n->replicas[r]->group != g->id) {
                    continue;
                }
                json_array_append_new(
                    replicas,
                    json_pack(
                        "{s:I, s:I, s:I}", "node", (json_int_t)n->id, "applied",
                        (json_int_t)applied, "lag",
                        (json_int_t)(g->commit_index > applied ? g->commit_index - applied : 0)));
            }
        }
        json_array_append_new(groups, json_pack("{s:I, s:I, s:o, s:o, s:I, s:I, s:o}", "id",
                                                (json_int_t)g->id, "leader", (json_int_t)g->leader,
                                                "voters", id_array(g->voters, g->n_voters),
                                                "others", id_array(g->others, g->n_others), "term",
                                                (json_int_t)g->term, "commit_index",
                                                (json_int_t)g->commit_index, "replicas", replicas));
    }
    return groups;
}

static void status_map_cb(void *data, int rv, const Cairn__Wire__ClusterMap *map)
{
    struct gw_call *call = data;
    struct gw_app *app;
    json_t *body;

    if (!gw__call_release(call)) {
        return;
    }
    if (rv != 0) {
        gw__call_error(call, rv, "cannot read the cluster map");
        return;
    }
    app = call->app;
    body = json_pack("{s:I, s:I, s:o, s:o, s:{s:I, s:I}, s:I, s:I}", "map_epoch",
                     (json_int_t)map->epoch, "data_groups", (json_int_t)map->data_groups, "nodes",
                     status_nodes(map), "groups", status_groups(map), "scheme", "k",
                     (json_int_t)app->k, "m", (json_int_t)app->m, "uploads",
                     (json_int_t)app->stats.uploads, "downloads", (json_int_t)app->stats.downloads);
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void status_authed(struct gw_call *call)
{
    int rv;

    if (!call->admin) {
        gw__call_error(call, CAIRN_EPERM, "admins only");
        return;
    }
    call->app->stats.meta_calls++;
    rv = node_meta_cluster_map(call->app->meta, call->app->config.meta_timeout_ms, status_map_cb,
                               call);
    if (rv != 0) {
        gw__call_error(call, rv, "cannot read the cluster map");
        return;
    }
    gw__call_hold(call);
}

static void status_handler(struct gw_req *req, void *data)
{
    if (strcmp(gw_req_path(req), "/v1/admin/status") != 0) {
        gw_respond_error(req, CAIRN_ENOENT, "no such resource");
        return;
    }
    gw__call_auth(data, req, status_authed);
}

int gw__obs_routes(struct gw_app *app)
{
    int rv;

    rv = gw_router_add(app->router, "GET", "/health", health_handler, app);
    rv = rv != 0 ? rv : gw_router_add(app->router, "GET", "/v1/admin/status", status_handler, app);
    return rv != 0 ? rv : gw_router_add(app->router, "GET", "/metrics", metrics_handler, app);
}
