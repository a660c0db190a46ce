/*
 * The request and response API that handlers use (gw_http.h). It records
 * what the handler wants and kicks the connection (conn.c), which does the
 * I/O on its next pump; nothing here calls a handler back.
 *
 * The happy path: conn.c makes a gw_req at the first byte of a request,
 * fills it from the parsed head (gw__req_take_head), and calls the handler.
 * The handler reads the head, maybe asks for the body (gw_req_read_body),
 * and answers once (gw_respond*), which formats nothing yet: the head is
 * formatted when the connection is ready to write it (gw__req_format_head).
 * conn.c calls gw__req_free() once the response is written, which calls
 * on_done and frees the arena.
 *
 * Possible failure modes:
 * - a target libhttp-parser cannot split into path and query: CAIRN_EPROTO,
 *   answered 400 by conn.c;
 * - a handler header with CR, LF or NUL (response splitting): CAIRN_EINVAL,
 *   or over GW_RESP_HEAD_MAX: CAIRN_ETOOBIG;
 * - a handler that answers while the body is still arriving: the rest of the
 *   body is dropped and the connection closes after the answer, since its
 *   bytes cannot be told apart from the next request's;
 * - misuse (two answers, reading the body twice): CN_ASSERT.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gw_int.h"

#define ERROR_MESSAGE_MAX 512

struct gw_req *gw__req_new(struct gw__conn *conn)
{
    struct gw_req *req = cn_xcalloc(1, sizeof(*req));

    req->conn = conn;
    gw__arena_init(&req->arena);
    cn_buf_init(&req->resp_headers);
    /* Until a head is parsed, a request is answered as a bad one. */
    req->method = "";
    req->path = "";
    req->query = "";
    req->body = GW__BODY_NONE;
    req->resp = GW__RESP_NONE;
    req->close_after = true;
    return req;
}

static const char *url_field(struct gw_req *req,
                             const char *url,
                             const struct http_parser_url *u,
                             enum http_parser_url_fields field,
                             const char *absent)
{
    char *copy;

    if (!(u->field_set & (1u << field))) {
        return absent;
    }
    copy = gw__arena_alloc(&req->arena, u->field_data[field].len + 1u);
    memcpy(copy, url + u->field_data[field].off, u->field_data[field].len);
    copy[u->field_data[field].len] = '\0';
    return copy;
}

int gw__req_take_head(struct gw_req *req, const struct gw__parse *parse)
{
    const char *url = gw__parse_url(parse);
    struct http_parser_url u;
    bool is_connect = parse->parser.method == HTTP_CONNECT;

    req->method = gw__parse_method(parse);
    req->headers = parse->headers;
    req->header_count = parse->header_count;
    req->content_length = gw__parse_content_length(parse);
    req->body = req->content_length != 0 ? GW__BODY_UNREAD : GW__BODY_NONE;
    req->expect_continue = gw__parse_header(parse, "Expect") != NULL;
    req->is_head = parse->parser.method == HTTP_HEAD;
    req->http10 = parse->parser.http_minor == 0;
    req->keep_alive = gw__parse_keep_alive(parse);
    /* Upgrade (WebSocket, h2c) is not served: answer, then close. */
    req->close_after = parse->parser.upgrade;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, strlen(url), is_connect, &u) != 0) {
        return CAIRN_EPROTO;
    }
    req->path = url_field(req, url, &u, UF_PATH, "/");
    req->query = url_field(req, url, &u, UF_QUERY, "");
    return 0;
}

void gw__req_end_body(struct gw_req *req, int rv)
{
    CN_ASSERT(req->body == GW__BODY_READING);
    req->body = rv == 0 ? GW__BODY_DONE : GW__BODY_ABORTED;
    if (req->on_end != NULL) {
        req->on_end(req, rv);
    }
}

void gw__req_free(struct gw_req *req, int rv)
{
    if (req->on_done != NULL) {
        req->on_done(req, rv);
    }
    gw__arena_close(&req->arena);
    cn_buf_close(&req->resp_headers);
    free(req);
}

static void format_date(char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

void gw__req_format_head(struct gw_req *req, struct cn_buf *out)
{
    char date[64];
    int rv;

    CN_ASSERT(req->resp == GW__RESP_HEAD);
    format_date(date, sizeof(date));
    rv = cn_buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", req->status,
                       gw_status_reason(req->status), date);
    if (req->status == 204 || req->status == 304) {
        /* No length at all. */
    } else if (req->chunked) {
        rv = rv != 0 ? rv : cn_buf_printf(out, "Transfer-Encoding: chunked\r\n");
    } else if (req->resp_length >= 0) {
        rv = rv != 0 ? rv
                     : cn_buf_printf(out, "Content-Length: %lld\r\n", (long long)req->resp_length);
    }
    if (req->close_after) {
        rv = rv != 0 ? rv : cn_buf_printf(out, "Connection: close\r\n");
    } else if (req->http10) {
        rv = rv != 0 ? rv : cn_buf_printf(out, "Connection: keep-alive\r\n");
    }
    rv = rv != 0 ? rv : cn_buf_append(out, req->resp_headers.base, req->resp_headers.len);
    rv = rv != 0 ? rv : cn_buf_append(out, "\r\n", 2);
    CN_ASSERT(rv == 0); /* cn_buf fails only on OOM; the head is a few KiB. */
}

/* ---- Head accessors ---- */

const char *gw_req_method(const struct gw_req *req)
{
    return req->method;
}

const char *gw_req_path(const struct gw_req *req)
{
    return req->path;
}

const char *gw_req_query(const struct gw_req *req)
{
    return req->query;
}

const char *gw_req_header(const struct gw_req *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->header_count; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0) {
            return req->headers[i].value;
        }
    }
    return NULL;
}

size_t gw_req_header_count(const struct gw_req *req)
{
    return req->header_count;
}

const struct gw_header *gw_req_header_at(const struct gw_req *req, size_t index)
{
    CN_ASSERT(index < req->header_count);
    return &req->headers[index];
}

const char *gw_req_peer(struct gw_req *req)
{
    struct sockaddr_storage addr;
    int addr_size = sizeof(addr);
    char ip[64];
    uint16_t port;

    if (req->peer != NULL) {
        return req->peer;
    }
    req->peer = "";
    if (uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&addr, &addr_size) != 0) {
        return req->peer;
    }
    if (addr.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&addr, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&addr, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
    }
    req->peer = gw__arena_alloc(&req->arena, sizeof(ip) + 8);
    snprintf((char *)req->peer, sizeof(ip) + 8, "%s:%u", ip, port);
    return req->peer;
}

int64_t gw_req_content_length(const struct gw_req *req)
{
    return req->content_length;
}

bool gw_req_expects_continue(const struct gw_req *req)
{
    return req->expect_continue;
}

void *gw_req_alloc(struct gw_req *req, size_t size)
{
    return gw__arena_alloc(&req->arena, size);
}

char *gw_req_strdup(struct gw_req *req, const char *text)
{
    size_t size = strlen(text) + 1;
    char *copy = gw__arena_alloc(&req->arena, size);

    memcpy(copy, text, size);
    return copy;
}

void gw_req_set_data(struct gw_req *req, void *data)
{
    req->data = data;
}

void *gw_req_data(const struct gw_req *req)
{
    return req->data;
}

void gw_req_on_done(struct gw_req *req, gw_done_cb cb)
{
    req->on_done = cb;
}

/* ---- Body ---- */

void gw_req_read_body(struct gw_req *req, gw_body_cb on_body, gw_body_end_cb on_end)
{
    CN_ASSERT(on_body != NULL);
    CN_ASSERT(on_end != NULL);
    CN_ASSERT(req->body == GW__BODY_NONE || req->body == GW__BODY_UNREAD);
    CN_ASSERT(req->resp == GW__RESP_NONE);
    CN_ASSERT(req->on_body == NULL);
    req->on_body = on_body;
    req->on_end = on_end;
    req->continue_due = req->expect_continue && req->body == GW__BODY_UNREAD;
    req->body = GW__BODY_READING;
    req->conn->last_io_ms = uv_now(req->conn->server->loop); /* The body clock starts now. */
    gw__conn_kick(req->conn);
}

void gw_req_pause(struct gw_req *req)
{
    req->paused = true;
    gw__conn_kick(req->conn);
}

void gw_req_resume(struct gw_req *req)
{
    if (!req->paused) {
        return;
    }
    req->paused = false;
    req->conn->last_io_ms = uv_now(req->conn->server->loop); /* Our wait is not the client's. */
    gw__conn_kick(req->conn);
}

/* ---- Response ---- */

static bool header_text_ok(const char *text)
{
    return text[strcspn(text, "\r\n")] == '\0';
}

int gw_resp_header(struct gw_req *req, const char *name, const char *value)
{
    CN_ASSERT(req->resp == GW__RESP_NONE);
    if (name[0] == '\0' || strchr(name, ':') != NULL || !header_text_ok(name) ||
        !header_text_ok(value)) {
        return CAIRN_EINVAL;
    }
    if (req->resp_headers.len + strlen(name) + strlen(value) + 4 > GW_RESP_HEAD_MAX) {
        return CAIRN_ETOOBIG;
    }
    return cn_buf_printf(&req->resp_headers, "%s: %s\r\n", name, value);
}

static int mem_produce(struct gw_req *req, uint8_t *buf, size_t cap, size_t *len, bool *eof)
{
    size_t n = CN_MIN(cap, req->mem_size - req->mem_offset);

    memcpy(buf, req->mem + req->mem_offset, n);
    req->mem_offset += n;
    *len = n;
    *eof = req->mem_offset == req->mem_size;
    return 0;
}

void gw_respond_stream(struct gw_req *req,
                       int status,
                       int64_t content_length,
                       gw_produce_cb produce)
{
    CN_ASSERT(req->resp == GW__RESP_NONE);
    CN_ASSERT(status >= 200 && status <= 599);
    CN_ASSERT(content_length >= -1);
    CN_ASSERT(produce != NULL || content_length == 0);
    req->status = status;
    req->resp_length = content_length;
    req->produce = produce;
    req->no_body = req->is_head || status == 204 || status == 304;
    if (req->body == GW__BODY_READING && !req->complete) {
        req->body = GW__BODY_ABORTED; /* No more on_body, no on_end. */
    }
    if (req->body == GW__BODY_UNREAD || req->body == GW__BODY_ABORTED) {
        req->close_after = true; /* Its unread bytes are not a next request. */
    }
    if (content_length < 0 && req->http10 && !req->no_body) {
        req->close_after = true; /* HTTP/1.0 has no chunks: the close ends the body. */
    }
    if (!req->keep_alive || req->conn->broken || req->conn->server->closing) {
        req->close_after = true;
    }
    req->chunked = content_length < 0 && !req->http10 && !req->no_body;
    req->continue_due = false;
    req->resp = GW__RESP_HEAD;
    gw__conn_kick(req->conn);
}

void gw_respond(
    struct gw_req *req, int status, const char *content_type, const void *body, size_t len)
{
    uint8_t *copy = NULL;
    int rv;

    if (content_type != NULL) {
        rv = gw_resp_header(req, "Content-Type", content_type);
        CN_ASSERT(rv == 0);
    }
    if (len > 0) {
        copy = gw__arena_alloc(&req->arena, len);
        memcpy(copy, body, len);
    }
    req->mem = copy;
    req->mem_size = len;
    req->mem_offset = 0;
    gw_respond_stream(req, status, (int64_t)len, len > 0 ? mem_produce : NULL);
}

void gw_respond_json(struct gw_req *req, int status, json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT);

    CN_ASSERT(text != NULL);
    gw_respond(req, status, "application/json", text, strlen(text));
    free(text);
}

void gw_respond_status(struct gw_req *req, int status, const char *code, const char *message)
{
    char *body = gw_error_body(status, code, message);

    gw_respond(req, status, "application/json", body, strlen(body));
    free(body);
}

void gw_respond_error(struct gw_req *req, int rv, const char *fmt, ...)
{
    char message[ERROR_MESSAGE_MAX];
    va_list args;

    CN_ASSERT(rv < 0);
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    gw_respond_status(req, gw_error_status(rv), gw_error_code(rv), message);
}

void gw_resp_wake(struct gw_req *req)
{
    if (req->producer_waiting) {
        req->producer_waiting = false;
        gw__conn_kick(req->conn);
    }
}

bool gw_req_responded(const struct gw_req *req)
{
    return req->resp != GW__RESP_NONE;
}
