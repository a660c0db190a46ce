/*
 * cairn-http-testd: a test server for the HTTP core, used ONLY by
 * tests/process/test_gateway_http.py. It is not the gateway and not a stub of
 * it: its handlers exist to drive every path of gw_http.h from real clients.
 *
 *   GET  /echo            the request head as JSON
 *   POST /echo            the body echoed back (at most 1 MiB, else 413)
 *   PUT  /upload          streams the body, answers {"bytes": n, "pattern_ok": b}
 *                         ?max=N     refuse a declared body over N (413, before reading:
 *                                    with Expect: 100-continue no body byte is sent)
 *                         ?slow=1    pause after every piece, resume 1 ms later
 *                         (pattern: byte i of the body is i % 251)
 *   GET  /download?size=N streams N pattern bytes; &chunked=1 without a length;
 *                         &wait=1 the producer has nothing every other call
 *   GET  /stats           the server's counters as JSON
 *   GET  /hang            never answers, as a long poll with no news; logs
 *                         "hang ended err=..." when the request ends
 *
 * Flags set the gw_config limits: --port, --body-max, --head-max, --url-max,
 * --header-count-max, --conn-max, --idle-ms, --head-timeout-ms,
 * --body-timeout-ms, --write-timeout-ms, --linger-ms; --drain-ms is how long
 * SIGTERM lets requests in flight finish (default 0). It prints
 * "listening port=N" when ready and stops cleanly on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn.h"
#include "gw_http.h"

#define PATTERN_MOD   251u
#define ECHO_BODY_MAX (1u << 20)

struct demo {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct gw_router *router;
    struct gw_server *server;
    uint64_t drain_ms; /* --drain-ms: how long SIGTERM lets requests finish */
    uint8_t pattern[PATTERN_MOD + GW_OUT_SIZE];
};

/* ---- Query helpers ---- */

static bool query_u64(const char *query, const char *key, uint64_t *value)
{
    size_t key_len = strlen(key);
    const char *p = query;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, key, key_len) == 0 && p[key_len] == '=') {
            *value = strtoull(p + key_len + 1, NULL, 10);
            return true;
        }
        p = strchr(p, '&');
        p = p != NULL ? p + 1 : NULL;
    }
    return false;
}

static bool query_flag(const char *query, const char *key)
{
    uint64_t value = 0;

    return query_u64(query, key, &value) && value != 0;
}

/* ---- /echo ---- */

static void echo_head(struct gw_req *req)
{
    json_t *json = json_object();
    json_t *headers = json_object();
    size_t i;

    json_object_set_new(json, "method", json_string(gw_req_method(req)));
    json_object_set_new(json, "path", json_string(gw_req_path(req)));
    json_object_set_new(json, "query", json_string(gw_req_query(req)));
    json_object_set_new(json, "peer", json_string(gw_req_peer(req)));
    for (i = 0; i < gw_req_header_count(req); i++) {
        const struct gw_header *header = gw_req_header_at(req, i);
        json_object_set_new(headers, header->name, json_string(header->value));
    }
    json_object_set_new(json, "headers", headers);
    gw_respond_json(req, 200, json);
    json_decref(json);
}

static void echo_body_cb(struct gw_req *req, const uint8_t *data, size_t len)
{
    struct cn_buf *body = gw_req_data(req);

    if (body->len + len > ECHO_BODY_MAX) {
        gw_respond_error(req, CAIRN_ETOOBIG, "echo bodies are at most %u bytes", ECHO_BODY_MAX);
        return;
    }
    CN_ASSERT(cn_buf_append(body, data, len) == 0);
}

static void echo_end_cb(struct gw_req *req, int rv)
{
    struct cn_buf *body = gw_req_data(req);

    if (rv == 0) {
        gw_respond(req, 200, "application/octet-stream", body->base, body->len);
    }
}

static void echo_done_cb(struct gw_req *req, int rv)
{
    struct cn_buf *body = gw_req_data(req);

    (void)rv;
    if (body != NULL) {
        cn_buf_close(body);
    }
}

static void echo_handler(struct gw_req *req, void *data)
{
    struct cn_buf *body;

    (void)data;
    if (strcmp(gw_req_method(req), "GET") == 0 || strcmp(gw_req_method(req), "HEAD") == 0) {
        echo_head(req);
        return;
    }
    body = gw_req_alloc(req, sizeof(*body));
    cn_buf_init(body);
    gw_req_set_data(req, body);
    gw_req_on_done(req, echo_done_cb);
    gw_req_read_body(req, echo_body_cb, echo_end_cb);
}

/* ---- /upload ---- */

struct upload {
    uv_timer_t timer;   /* Resumes a slow upload; closed in upload_done_cb */
    struct gw_req *req; /* NULL once the request is over */
    uint64_t bytes;
    bool pattern_ok;
    bool slow;
};

static void upload_timer_cb(uv_timer_t *timer)
{
    struct upload *upload = CN_CONTAINER_OF(timer, struct upload, timer);

    if (upload->req != NULL) {
        gw_req_resume(upload->req);
    }
}

static void upload_body_cb(struct gw_req *req, const uint8_t *data, size_t len)
{
    struct upload *upload = gw_req_data(req);
    size_t i;

    for (i = 0; i < len && upload->pattern_ok; i++) {
        upload->pattern_ok = data[i] == (uint8_t)((upload->bytes + i) % PATTERN_MOD);
    }
    upload->bytes += len;
    if (upload->slow) {
        gw_req_pause(req);
        uv_timer_start(&upload->timer, upload_timer_cb, 1, 0);
    }
}

static void upload_end_cb(struct gw_req *req, int rv)
{
    struct upload *upload = gw_req_data(req);
    json_t *json;

    if (rv != 0) {
        CN_LOG(CN_INFO, "upload aborted", "bytes=%llu err=%s", (unsigned long long)upload->bytes,
               cairn_errname(rv));
        return; /* The server answers. */
    }
    json = json_pack("{s:I, s:b}", "bytes", (json_int_t)upload->bytes, "pattern_ok",
                     upload->pattern_ok);
    gw_respond_json(req, 200, json);
    json_decref(json);
}

static void upload_free_cb(uv_handle_t *handle)
{
    free(CN_CONTAINER_OF(handle, struct upload, timer));
}

static void upload_done_cb(struct gw_req *req, int rv)
{
    struct upload *upload = gw_req_data(req);

    (void)rv;
    upload->req = NULL;
    uv_close((uv_handle_t *)&upload->timer, upload_free_cb);
}

static void upload_handler(struct gw_req *req, void *data)
{
    struct demo *demo = data;
    struct upload *upload;
    uint64_t max;

    if (query_u64(gw_req_query(req), "max", &max) && gw_req_content_length(req) > (int64_t)max) {
        gw_respond_error(req, CAIRN_ETOOBIG, "declared %lld bytes, over this upload's %llu",
                         (long long)gw_req_content_length(req), (unsigned long long)max);
        return;
    }
    upload = cn_xcalloc(1, sizeof(*upload));
    uv_timer_init(&demo->loop, &upload->timer);
    upload->req = req;
    upload->pattern_ok = true;
    upload->slow = query_flag(gw_req_query(req), "slow");
    gw_req_set_data(req, upload);
    gw_req_on_done(req, upload_done_cb);
    gw_req_read_body(req, upload_body_cb, upload_end_cb);
}

/* ---- /download ---- */

struct download {
    uv_timer_t timer; /* Wakes a waiting producer; closed in download_done_cb */
    struct gw_req *req;
    struct demo *demo;
    uint64_t size, offset;
    bool wait, gave;
};

static void download_timer_cb(uv_timer_t *timer)
{
    struct download *download = CN_CONTAINER_OF(timer, struct download, timer);

    if (download->req != NULL) {
        gw_resp_wake(download->req);
    }
}

static int download_produce(struct gw_req *req, uint8_t *buf, size_t cap, size_t *len, bool *eof)
{
    struct download *download = gw_req_data(req);
    size_t n = (size_t)CN_MIN((uint64_t)cap, download->size - download->offset);

    if (download->wait && download->gave) {
        /* Nothing this time: wake the server in a millisecond. */
        download->gave = false;
        *len = 0;
        *eof = false;
        uv_timer_start(&download->timer, download_timer_cb, 1, 0);
        return 0;
    }
    download->gave = true;
    memcpy(buf, download->demo->pattern + download->offset % PATTERN_MOD, n);
    download->offset += n;
    *len = n;
    *eof = download->offset == download->size;
    return 0;
}

static void download_free_cb(uv_handle_t *handle)
{
    free(CN_CONTAINER_OF(handle, struct download, timer));
}

static void download_done_cb(struct gw_req *req, int rv)
{
    struct download *download = gw_req_data(req);

    if (rv != 0) {
        CN_LOG(CN_INFO, "download aborted", "offset=%llu err=%s",
               (unsigned long long)download->offset, cairn_errname(rv));
    }
    download->req = NULL;
    uv_close((uv_handle_t *)&download->timer, download_free_cb);
}

static void download_handler(struct gw_req *req, void *data)
{
    struct demo *demo = data;
    struct download *download;
    uint64_t size = 0;

    if (!query_u64(gw_req_query(req), "size", &size)) {
        gw_respond_error(req, CAIRN_EINVAL, "size= is required");
        return;
    }
    download = cn_xcalloc(1, sizeof(*download));
    uv_timer_init(&demo->loop, &download->timer);
    download->req = req;
    download->demo = demo;
    download->size = size;
    download->wait = query_flag(gw_req_query(req), "wait");
    gw_req_set_data(req, download);
    gw_req_on_done(req, download_done_cb);
    gw_respond_stream(req, 200, query_flag(gw_req_query(req), "chunked") ? -1 : (int64_t)size,
                      size > 0 ? download_produce : NULL);
}

/* ---- /stats ---- */

static void stats_handler(struct gw_req *req, void *data)
{
    struct demo *demo = data;
    struct gw_server_stats stats;
    json_t *json;

    gw_server_stats(demo->server, &stats);
    json =
        json_pack("{s:i, s:I, s:I, s:I, s:I}", "conn_count", (int)stats.conn_count, "accept_count",
                  (json_int_t)stats.accept_count, "reject_count", (json_int_t)stats.reject_count,
                  "request_count", (json_int_t)stats.request_count, "timeout_count",
                  (json_int_t)stats.timeout_count);
    gw_respond_json(req, 200, json);
    json_decref(json);
}

/* ---- /hang ---- */

static void hang_done_cb(struct gw_req *req, int rv)
{
    (void)req;
    CN_LOG(CN_INFO, "hang ended", "err=%s", rv == 0 ? "none" : cairn_errname(rv));
}

static void hang_handler(struct gw_req *req, void *data)
{
    (void)data;
    gw_req_on_done(req, hang_done_cb);
}

/* ---- Program ---- */

static void on_server_closed(struct gw_server *server, void *data)
{
    struct demo *demo = data;

    (void)server;
    demo->server = NULL;
    uv_close((uv_handle_t *)&demo->sigterm, NULL);
    uv_close((uv_handle_t *)&demo->sigint, NULL);
}

static void on_signal(uv_signal_t *signal, int signum)
{
    struct demo *demo = signal->data;

    CN_LOG(CN_INFO, "stopping", "signal=%d", signum);
    if (demo->server != NULL) {
        uv_signal_stop(&demo->sigterm);
        uv_signal_stop(&demo->sigint);
        gw_server_close(demo->server, demo->drain_ms, on_server_closed, demo);
    }
}

static int parse_flag(struct gw_config *config, const char *flag, const char *text)
{
    uint64_t value;

    if (cn_parse_size(text, &value) != 0) {
        return CAIRN_EINVAL;
    }
#define FLAG(NAME, FIELD, TYPE)      \
    if (strcmp(flag, NAME) == 0) {   \
        config->FIELD = (TYPE)value; \
        return 0;                    \
    }
    FLAG("--port", port, uint16_t)
    FLAG("--body-max", body_size_max, uint64_t)
    FLAG("--head-max", head_size_max, size_t)
    FLAG("--url-max", url_size_max, size_t)
    FLAG("--header-count-max", header_count_max, unsigned)
    FLAG("--conn-max", conn_count_max, unsigned)
    FLAG("--idle-ms", idle_timeout_ms, uint64_t)
    FLAG("--head-timeout-ms", head_timeout_ms, uint64_t)
    FLAG("--body-timeout-ms", body_timeout_ms, uint64_t)
    FLAG("--write-timeout-ms", write_timeout_ms, uint64_t)
    FLAG("--linger-ms", linger_timeout_ms, uint64_t)
#undef FLAG
    return CAIRN_EINVAL;
}

static int demo_routes(struct demo *demo)
{
    int rv = 0;

    demo->router = gw_router_new();
    rv = rv != 0 ? rv : gw_router_add(demo->router, NULL, "/echo", echo_handler, demo);
    rv = rv != 0 ? rv : gw_router_add(demo->router, "PUT", "/upload", upload_handler, demo);
    rv = rv != 0 ? rv : gw_router_add(demo->router, "POST", "/upload", upload_handler, demo);
    rv = rv != 0 ? rv : gw_router_add(demo->router, "GET", "/download", download_handler, demo);
    rv = rv != 0 ? rv : gw_router_add(demo->router, "HEAD", "/download", download_handler, demo);
    rv = rv != 0 ? rv : gw_router_add(demo->router, "GET", "/stats", stats_handler, demo);
    rv = rv != 0 ? rv : gw_router_add(demo->router, "GET", "/hang", hang_handler, demo);
    return rv;
}

int main(int argc, char **argv)
{
    static struct demo demo;
    struct gw_config config;
    char errmsg[CN_ERRMSG_SIZE] = "";
    int i, rv;

    gw_config_init(&config);
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--drain-ms") == 0) {
            demo.drain_ms = strtoull(argv[i + 1], NULL, 10);
            continue;
        }
        if (parse_flag(&config, argv[i], argv[i + 1]) != 0) {
            fprintf(stderr, "cairn-http-testd: bad flag %s %s\n", argv[i], argv[i + 1]);
            return 2;
        }
    }
    for (i = 0; i < (int)sizeof(demo.pattern); i++) {
        demo.pattern[i] = (uint8_t)(i % PATTERN_MOD);
    }
    CN_ASSERT(uv_loop_init(&demo.loop) == 0);
    CN_ASSERT(demo_routes(&demo) == 0);
    rv = gw_server_new(&demo.loop, &config, demo.router, &demo.server, errmsg);
    if (rv != 0) {
        fprintf(stderr, "cairn-http-testd: %s\n", errmsg);
        return 1;
    }
    uv_signal_init(&demo.loop, &demo.sigterm);
    uv_signal_init(&demo.loop, &demo.sigint);
    demo.sigterm.data = demo.sigint.data = &demo;
    uv_signal_start(&demo.sigterm, on_signal, SIGTERM);
    uv_signal_start(&demo.sigint, on_signal, SIGINT);
    printf("listening port=%u\n", gw_server_port(demo.server));
    fflush(stdout);
    uv_run(&demo.loop, UV_RUN_DEFAULT);
    gw_router_free(demo.router);
    CN_ASSERT(uv_loop_close(&demo.loop) == 0);
    return 0;
}
