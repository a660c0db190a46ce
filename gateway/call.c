/*
 * One API request (struct gw_call, app.h): authentication, metadata calls
 * with continuations, JSON bodies, and the request's end.
 *
 * Lifetime: a call lives while its request does or while a callback of ours
 * is still to come (call->pending). The request's on_done clears call->req;
 * whichever of the two ends last frees the call. Continuations run only while
 * the request lives: a reply that arrives after the client left is dropped.
 *
 * Possible failure modes: a metadata call fails (no node answers:
 * CAIRN_EUNAVAIL 503; a timeout 504); the client leaves mid-chain (the chain
 * stops at its next step); a JSON body over GW_JSON_BODY_MAX (413) or
 * malformed (400).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app.h"

static void call_maybe_free(struct gw_call *call)
{
    if (call->req != NULL || call->pending > 0 || call->headless) {
        return;
    }
    if (call->op_free != NULL) {
        call->op_free(call);
    }
    if (call->json != NULL) {
        json_decref(call->json);
    }
    cn_buf_close(&call->body);
    call->app->stats.calls_alive--;
    free(call);
}

static void call_done(struct gw_req *req, int rv)
{
    struct gw_call *call = gw_req_data(req);

    (void)rv;
    CN_ASSERT(call != NULL);
    CN_ASSERT(call->req == req);
    call->req = NULL;
    if (call->on_gone != NULL) {
        call->on_gone(call);
    }
    call_maybe_free(call);
}

struct gw_call *gw__call_new(struct gw_app *app, struct gw_req *req)
{
    struct gw_call *call = cn_xcalloc(1, sizeof(*call));

    call->app = app;
    call->req = req;
    cn_buf_init(&call->body);
    app->stats.calls_alive++;
    gw_req_set_data(req, call);
    gw_req_on_done(req, call_done);
    return call;
}

bool gw__call_live(const struct gw_call *call)
{
    return call->req != NULL && !gw_req_responded(call->req);
}

void gw__call_hold(struct gw_call *call)
{
    call->pending++;
}

void gw__call_finish(struct gw_call *call)
{
    CN_ASSERT(call->headless);
    call->headless = false;
    call_maybe_free(call);
}

bool gw__call_release(struct gw_call *call)
{
    CN_ASSERT(call->pending > 0);
    call->pending--;
    if (call->req == NULL && !call->headless) {
        call_maybe_free(call);
        return false;
    }
    return true;
}

void gw__call_error(struct gw_call *call, int rv, const char *fmt, ...)
{
    char message[512];
    va_list args;

    if (!gw__call_live(call)) {
        return;
    }
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    gw_respond_error(call->req, rv, "%s", message);
}

void gw__call_json(struct gw_call *call, int status, json_t *json)
{
    if (!gw__call_live(call)) {
        return;
    }
    if (json == NULL) {
        gw_respond_error(call->req, CAIRN_ENOMEM, "cannot build the answer");
        return;
    }
    gw_respond_json(call->req, status, json);
}

void gw__call_status(struct gw_call *call, int status)
{
    if (gw__call_live(call)) {
        gw_respond(call->req, status, NULL, NULL, 0);
    }
}

int gw__hide_perm(int rv)
{
    return rv == CAIRN_EPERM ? CAIRN_ENOENT : rv;
}

uint64_t gw__random_id(bool small)
{
    uint64_t id;

    do {
        randombytes_buf(&id, sizeof(id));
        if (small) {
            id &= (1ull << 56) - 1;
        }
    } while (id == 0);
    return id;
}

uint64_t gw__call_drive(const struct gw_call *call)
{
    CN_ASSERT(call->user != 0);
    CN_ASSERT(call->app->data_groups > 0);
    return node_drive_ns(call->user, call->app->data_groups);
}

/* ---- Auth ---- */

struct auth_step {
    gw_call_fn next;
};

void gw__call_auth(struct gw_app *app, struct gw_req *req, gw_call_fn next)
{
    struct gw_call *call = gw__call_new(app, req);

    if (app->data_groups == 0) {
        gw__call_error(call, CAIRN_EUNAVAIL, "the gateway has not reached the cluster yet");
        return;
    }
    gw__auth_check(call, next);
}

/* ---- Metadata calls ---- */

struct read_ctx {
    struct gw_call *call;
    gw_read_fn cb;
};

static void read_cb(void *data, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct read_ctx ctx = *(struct read_ctx *)data;

    free(data);
    if (rv != 0) {
        ctx.call->app->stats.meta_errors++;
    }
    if (!gw__call_release(ctx.call)) {
        return;
    }
    if (rv == 0 && reply->rv == CAIRN_EPERM) {
        rv = CAIRN_ENOENT;
    }
    ctx.cb(ctx.call, rv != 0 ? rv : reply->rv, rv == 0 ? reply : NULL);
}

static void call_read(struct gw_call *call, Cairn__Wire__MetaRead *query, gw_read_fn cb)
{
    struct read_ctx *ctx = cn_xmalloc(sizeof(*ctx));
    int rv;

    ctx->call = call;
    ctx->cb = cb;
    call->app->stats.meta_calls++;
    rv = node_meta_read(call->app->meta, query, call->app->config.meta_timeout_ms, read_cb, ctx);
    if (rv != 0) {
        free(ctx);
        cb(call, rv, NULL);
        return;
    }
    gw__call_hold(call);
}

void gw__call_read(struct gw_call *call, Cairn__Wire__MetaRead *query, gw_read_fn cb)
{
    query->actor = call->user;
    call_read(call, query, cb);
}

void gw__call_read_system(struct gw_call *call, Cairn__Wire__MetaRead *query, gw_read_fn cb)
{
    query->actor = 0;
    call_read(call, query, cb);
}

struct propose_ctx {
    struct gw_call *call;
    gw_propose_fn cb;
};

static void propose_cb(void *data, int rv, const Cairn__Wire__MetaProposeReply *reply)
{
    struct propose_ctx ctx = *(struct propose_ctx *)data;
    uint64_t value = 0;

    free(data);
    if (rv != 0) {
        ctx.call->app->stats.meta_errors++;
    } else {
        rv = reply->rv;
        value = reply->value;
    }
    if (!gw__call_release(ctx.call)) {
        return;
    }
    ctx.cb(ctx.call, rv, value);
}

void gw__call_propose(struct gw_call *call,
                      uint64_t group,
                      Cairn__Cmd__Command *cmd,
                      gw_propose_fn cb)
{
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    struct propose_ctx *ctx;
    uint8_t request_id[16];
    int rv;

    randombytes_buf(request_id, sizeof(request_id));
    header.request_id.data = request_id;
    header.request_id.len = sizeof(request_id);
    header.time_ms = cn_clock_system()->wall_ms(cn_clock_system());
    header.actor_user = call->user;
    cmd->header = &header;
    ctx = cn_xmalloc(sizeof(*ctx));
    ctx->call = call;
    ctx->cb = cb;
    call->app->stats.meta_calls++;
    rv = node_meta_propose(call->app->meta, group, cmd, call->app->config.meta_timeout_ms,
                           propose_cb, ctx);
    cmd->header = NULL;
    if (rv != 0) {
        free(ctx);
        cb(call, rv, 0);
        return;
    }
    gw__call_hold(call);
}

/* ---- JSON bodies ---- */

static void json_body(struct gw_req *req, const uint8_t *data, size_t len)
{
    struct gw_call *call = gw_req_data(req);

    if (call->body.len + len > GW_JSON_BODY_MAX) {
        gw_respond_error(req, CAIRN_ETOOBIG, "a JSON body is at most %u bytes", GW_JSON_BODY_MAX);
        return;
    }
    cn_buf_append(&call->body, data, len);
}

static void json_end(struct gw_req *req, int rv)
{
    struct gw_call *call = gw_req_data(req);
    json_error_t error;

    if (rv != 0) {
        return; /* the server answers */
    }
    call->json =
        json_loadb((const char *)call->body.base, call->body.len, JSON_REJECT_DUPLICATES, &error);
    if (call->json == NULL || !json_is_object(call->json)) {
        gw_respond_error(req, CAIRN_EINVAL, "the body must be a JSON object: %s",
                         call->json == NULL ? error.text : "not an object");
        return;
    }
    call->after_body(call);
}

void gw__call_read_json(struct gw_call *call, gw_call_fn next)
{
    int64_t declared = gw_req_content_length(call->req);

    if (declared > (int64_t)GW_JSON_BODY_MAX) {
        gw__call_error(call, CAIRN_ETOOBIG, "a JSON body is at most %u bytes", GW_JSON_BODY_MAX);
        return;
    }
    call->after_body = next;
    gw_req_read_body(call->req, json_body, json_end);
}

/* ---- Targets ---- */

/* Parses "?root=NS.INODE" (decimal). */
static int parse_root(const char *text, uint64_t *ns, uint64_t *inode)
{
    const char *dot = strchr(text, '.');
    char ns_text[24];

    if (dot == NULL || (size_t)(dot - text) >= sizeof(ns_text)) {
        return CAIRN_EINVAL;
    }
    memcpy(ns_text, text, (size_t)(dot - text));
    ns_text[dot - text] = '\0';
    if (gw_parse_id(ns_text, ns) != 0 || gw_parse_id(dot + 1, inode) != 0) {
        return CAIRN_EINVAL;
    }
    return 0;
}

bool gw__call_target(struct gw_call *call, const char *prefix)
{
    const char *path = gw_req_path(call->req);
    size_t len = strlen(prefix);
    char root[64];
    int rv;

    CN_ASSERT(strncmp(path, prefix, len) == 0);
    rv = gw_path_decode(path + len, call->path, sizeof(call->path));
    if (rv != 0) {
        gw__call_error(call, CAIRN_EINVAL,
                       "bad path: names are 1..255 bytes, without NUL, "
                       "'/', '.' or '..'");
        return false;
    }
    rv = gw_query_get(gw_req_query(call->req), "root", root, sizeof(root));
    if (rv == CAIRN_ENOENT) {
        call->ns = gw__call_drive(call);
        call->root = GW_DRIVE_ROOT;
        return true;
    }
    if (rv != 0 || parse_root(root, &call->ns, &call->root) != 0 || node_ns_group(call->ns) == 0 ||
        node_ns_group(call->ns) > call->app->data_groups) {
        gw__call_error(call, CAIRN_EINVAL, "bad root (want the root of an entry of /v1/shared)");
        return false;
    }
    return true;
}

void gw__resolve(struct gw_call *call, const char *path, gw_read_fn cb)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__PathQuery resolve = CAIRN__WIRE__PATH_QUERY__INIT;

    resolve.ns = call->ns;
    resolve.root = call->root;
    resolve.path = (char *)path;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_RESOLVE;
    query.resolve = &resolve;
    gw__call_read(call, &query, cb);
}
