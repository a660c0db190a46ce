/*
 * One HTTP/1.1 connection on libuv: reading, parsing, calling the handler,
 * writing, and the one timer that holds the current phase's deadline.
 *
 * Everything goes through conn_pump(), which looks at the state and does
 * what is due, in order: tear down after a failure; deliver a pending body
 * end; parse buffered input while the request may move on; hand the next
 * bytes to a write; finish the request once its response is written; then
 * start or stop reading and re-arm the timer. libuv callbacks (read, write,
 * timer) call the pump directly. Handlers' gw_* calls only kick it: inside
 * a pump the pump loops once more, outside one the timer fires at once. So
 * handler callbacks run only from a pump entered from the loop, never from
 * inside a gw_* call.
 *
 * The happy path for one request:
 *   1. Reading is on; bytes land in `in` and are parsed. The first byte
 *      makes the request (on_begin) and starts the head deadline.
 *   2. on_head: the request is routed and the handler called. A request
 *      with a body pauses the parser until the handler calls
 *      gw_req_read_body(); until then nothing more is read from the socket,
 *      so TCP pushes back on the client.
 *   3. on_body hands bytes over; the handler's pause stops the parser and
 *      reading; its resume starts them again. on_complete ends the body and
 *      pauses the parser: one request at a time (pipelined requests wait in
 *      `in`, then in the socket).
 *   4. The response: "100 Continue" if due, the head, then body bytes from
 *      the producer into `out`, one uv_write at a time (prefix, body, chunk
 *      suffix), so a connection holds at most GW_IN_SIZE + GW_OUT_SIZE.
 *   5. Once the last write completes the request is freed (on_done) and,
 *      with keep-alive, parsing goes on with what is buffered.
 *
 * Possible failure modes:
 * - the parser refuses the request (limits, bad syntax): the handler's body
 *   read ends with an error, the server answers 4xx with the JSON error body
 *   unless the handler has answered, and the connection closes;
 * - the head is not complete within head_timeout_ms of its first byte
 *   (slowloris): 408 and close; no body byte for body_timeout_ms while the
 *   handler reads: the body ends with CAIRN_ETIMEOUT, 408, close;
 * - a write makes no progress for write_timeout_ms, or fails: the request
 *   ends with CAIRN_ETIMEOUT / CAIRN_EIO and the connection is dropped;
 * - the client goes away mid-request: CAIRN_ECANCELED, dropped; after a
 *   complete request, the answer is still written;
 * - a producer fails or ends short of its Content-Length: dropped, since
 *   HTTP/1.1 cannot say "this body is broken" otherwise;
 * - closing after an answer: the write side is shut and input is read and
 *   discarded until EOF or linger_timeout_ms, so that unread request bytes
 *   do not turn our close into a reset that destroys the answer;
 * - the server drains (gw_server_close() with a drain time): a connection
 *   between requests closes at once, a busy one after its answer.
 */
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_pump(struct gw__conn *conn);

static uint64_t conn_now(const struct gw__conn *conn)
{
    return uv_now(conn->server->loop);
}

/* Records the first failure; the pump tears the connection down. */
static void conn_fail(struct gw__conn *conn, int rv)
{
    CN_ASSERT(rv < 0);
    if (conn->fail_rv == 0) {
        conn->fail_rv = rv;
    }
    conn->pump_again = true;
}

static void conn_close_cb(uv_handle_t *handle)
{
    struct gw__conn *conn = handle->data;

    CN_ASSERT(conn->state == GW__CONN_CLOSING);
    CN_ASSERT(conn->close_pending > 0);
    if (--conn->close_pending > 0) {
        return;
    }
    gw__parse_close(&conn->parse);
    cn_buf_close(&conn->prefix);
    free(conn->in);
    free(conn->out);
    gw__server_conn_closed(conn->server, conn);
}

static void conn_close(struct gw__conn *conn)
{
    CN_ASSERT(conn->req == NULL);
    if (conn->state == GW__CONN_CLOSING) {
        return;
    }
    conn->state = GW__CONN_CLOSING;
    conn->close_pending = 2;
    conn->tcp.data = conn;
    conn->timer.data = conn;
    uv_close((uv_handle_t *)&conn->tcp, conn_close_cb);
    uv_close((uv_handle_t *)&conn->timer, conn_close_cb);
}

/* Ends the request (if any) with fail_rv and closes at once. */
static void conn_teardown(struct gw__conn *conn)
{
    struct gw_req *req = conn->req;
    int rv = conn->fail_rv;

    CN_ASSERT(rv < 0);
    if (req != NULL) {
        if (req->body == GW__BODY_READING) {
            gw__req_end_body(req, rv);
        }
        conn->req = NULL;
        gw__req_free(req, rv);
    }
    conn_close(conn);
}

static void conn_shutdown_cb(uv_shutdown_t *shutdown, int status)
{
    (void)shutdown;
    (void)status; /* Lingering ends by EOF or timeout either way. */
}

/* Shuts our side and discards input until EOF or the linger deadline. */
static void conn_linger(struct gw__conn *conn)
{
    int rv;

    CN_ASSERT(conn->req == NULL);
    CN_ASSERT(conn->state == GW__CONN_OPEN);
    if (conn->eof) {
        conn_close(conn);
        return;
    }
    rv = uv_shutdown(&conn->shutdown, (uv_stream_t *)&conn->tcp, conn_shutdown_cb);
    if (rv != 0) {
        conn_close(conn);
        return;
    }
    conn->state = GW__CONN_LINGER;
    conn->phase_start_ms = conn_now(conn);
    conn->in_start = conn->in_end = 0;
}

/* Whether the parser may run: the request may move on without the handler. */
static bool conn_runnable(const struct gw__conn *conn)
{
    const struct gw_req *req = conn->req;

    if (conn->state != GW__CONN_OPEN || conn->broken || conn->fail_rv != 0) {
        return false;
    }
    if (req == NULL) {
        return true; /* Between requests */
    }
    if (req->complete) {
        return false; /* One request at a time */
    }
    switch (req->body) {
    case GW__BODY_NONE:
        return true; /* Inside the head, or a body-less request completing */
    case GW__BODY_READING:
        return !req->paused;
    default:
        return false;
    }
}

/* ---- Parser callbacks ---- */

static void conn_on_begin(struct gw__parse *parse)
{
    struct gw__conn *conn = parse->data;

    CN_ASSERT(conn->req == NULL);
    conn->req = gw__req_new(conn);
    conn->phase_start_ms = conn_now(conn);
    conn->req->start_ms = conn->phase_start_ms;
    conn->request_count++;
}

static void conn_route(struct gw__conn *conn, struct gw_req *req)
{
    gw_handler_fn handler;
    void *data;
    int rv;

    if (conn->server->closing) {
        gw_respond_error(req, CAIRN_ESHUTDOWN, "the server is shutting down");
        return;
    }
    rv = gw_router_match(conn->server->router, req->method, req->path, &handler, &data);
    if (rv == CAIRN_ENOENT) {
        gw_respond_status(req, 404, "not_found", "no such resource");
        return;
    }
    if (rv == CAIRN_EUNSUPPORTED) {
        gw_respond_status(req, 405, "method_not_allowed", "method not allowed here");
        return;
    }
    CN_ASSERT(rv == 0);
    handler(req, data);
}

static void conn_on_head(struct gw__parse *parse)
{
    struct gw__conn *conn = parse->data;
    struct gw_req *req = conn->req;
    int rv;

    CN_ASSERT(req != NULL);
    conn->server->stats.request_count++;
    rv = gw__req_take_head(req, parse);
    if (rv != 0) {
        gw_respond_status(req, 400, "bad_request", "malformed request target");
    } else {
        conn_route(conn, req);
    }
    if (req->body == GW__BODY_UNREAD) {
        gw__parse_pause(parse); /* Until the handler asks for the body. */
    }
}

static void conn_on_body(struct gw__parse *parse, const uint8_t *data, size_t len)
{
    struct gw__conn *conn = parse->data;
    struct gw_req *req = conn->req;

    CN_ASSERT(req != NULL);
    if (req->body == GW__BODY_READING) {
        req->on_body(req, data, len);
    }
    if (req->body != GW__BODY_READING || req->paused) {
        gw__parse_pause(parse);
    }
}

static void conn_on_complete(struct gw__parse *parse)
{
    struct gw__conn *conn = parse->data;
    struct gw_req *req = conn->req;

    CN_ASSERT(req != NULL);
    req->complete = true;
    if (req->body == GW__BODY_READING) {
        gw__req_end_body(req, 0);
    }
    gw__parse_pause(parse);
}

static const struct gw__parse_cbs conn_parse_cbs = {
    .on_begin = conn_on_begin,
    .on_head = conn_on_head,
    .on_body = conn_on_body,
    .on_complete = conn_on_complete,
};

/* The parser refused the request: answer for it and close afterwards. */
static void conn_refuse(struct gw__conn *conn, int rv)
{
    struct gw_req *req = conn->req;
    int status = conn->parse.status;

    CN_ASSERT(status >= 400);
    conn->broken = true;
    if (req == NULL) {
        req = conn->req = gw__req_new(conn);
    }
    if (req->body == GW__BODY_READING) {
        gw__req_end_body(req, rv);
    }
    if (req->resp == GW__RESP_NONE) {
        gw_respond_status(req, status, gw_status_code(status), conn->parse.reason);
    }
    req->close_after = true;
    CN_LOG(CN_DEBUG, "request refused", "status=%d reason=\"%s\"", status, conn->parse.reason);
}

static void conn_parse(struct gw__conn *conn)
{
    size_t consumed;
    int rv;

    while (conn->in_start < conn->in_end && conn_runnable(conn)) {
        gw__parse_resume(&conn->parse);
        rv = gw__parse_feed(&conn->parse, conn->in + conn->in_start, conn->in_end - conn->in_start,
                            &consumed);
        conn->in_start += consumed;
        if (rv != 0) {
            conn_refuse(conn, rv);
            break;
        }
    }
    if (conn->in_start == conn->in_end) {
        conn->in_start = conn->in_end = 0;
    }
}

/* A body end that became due outside the parser: read_body after completion. */
static void conn_deliver(struct gw__conn *conn)
{
    struct gw_req *req = conn->req;

    if (req != NULL && req->body == GW__BODY_READING && req->complete) {
        gw__req_end_body(req, 0);
    }
}

/* ---- Writing ---- */

uint8_t *gw__conn_out(struct gw__conn *conn)
{
    if (conn->out == NULL) {
        conn->out = cn_xmalloc(GW_OUT_SIZE);
    }
    return conn->out;
}

static void conn_write_cb(uv_write_t *write, int status)
{
    struct gw__conn *conn = CN_CONTAINER_OF(write, struct gw__conn, write);

    CN_ASSERT(conn->writing);
    conn->writing = false;
    if (conn->state == GW__CONN_CLOSING) {
        return; /* Canceled by the close. */
    }
    if (status < 0) {
        conn_fail(conn, gw__err_from_uv(status, NULL, "write"));
    }
    conn->last_io_ms = conn_now(conn);
    conn_pump(conn);
}

/* Asks the producer for the next body bytes; sets the chunk framing. */
static int conn_produce(struct gw__conn *conn, struct gw_req *req, size_t *len, const char **suffix)
{
    size_t cap = GW_OUT_SIZE;
    bool eof = false;
    int rv;

    if (!req->chunked && req->resp_length >= 0) {
        cap = (size_t)CN_MIN((uint64_t)cap, (uint64_t)req->resp_length - req->resp_sent);
    }
    CN_ASSERT(cap > 0);
    /* Set before the call: a producer may call gw_resp_wake() from inside. */
    req->producer_waiting = true;
    rv = req->produce(req, gw__conn_out(conn), cap, len, &eof);
    if (rv != 0) {
        return rv;
    }
    if (*len > 0 || eof) {
        req->producer_waiting = false;
    }
    CN_ASSERT(*len <= cap);
    req->resp_sent += *len;
    if (!req->chunked && req->resp_length >= 0) {
        if (eof && req->resp_sent < (uint64_t)req->resp_length) {
            return CAIRN_EPROTO; /* Short of its Content-Length */
        }
        eof = req->resp_sent == (uint64_t)req->resp_length;
    }
    if (req->chunked && *len > 0) {
        rv = cn_buf_printf(&conn->prefix, "%zx\r\n", *len);
        CN_ASSERT(rv == 0);
        *suffix = eof ? "\r\n0\r\n\r\n" : "\r\n";
    } else if (req->chunked && eof) {
        *suffix = "0\r\n\r\n";
    }
    if (eof) {
        req->resp = GW__RESP_FLUSH;
    }
    return 0;
}

/* Fills the prefix (continue line, head, chunk size) and the body buffer. */
static int conn_fill(struct gw__conn *conn, struct gw_req *req, size_t *len, const char **suffix)
{
    int rv;

    if (req->continue_due) {
        rv = cn_buf_append(&conn->prefix, continue_line, sizeof(continue_line) - 1);
        CN_ASSERT(rv == 0);
        req->continue_due = false;
    }
    if (req->resp == GW__RESP_HEAD) {
        gw__req_format_head(req, &conn->prefix);
        req->resp = (req->no_body || req->resp_length == 0) ? GW__RESP_FLUSH : GW__RESP_BODY;
    }
    if (req->resp == GW__RESP_BODY && !req->producer_waiting) {
        return conn_produce(conn, req, len, suffix);
    }
    return 0;
}

static void conn_flush(struct gw__conn *conn)
{
    struct gw_req *req = conn->req;
    const char *suffix = NULL;
    size_t len = 0;
    unsigned nbufs = 0;
    int rv;

    if (conn->writing || req == NULL || conn->state != GW__CONN_OPEN || conn->fail_rv != 0) {
        return;
    }
    cn_buf_reset(&conn->prefix);
    rv = conn_fill(conn, req, &len, &suffix);
    if (rv != 0) {
        CN_LOG(CN_WARN, "response aborted", "path=%s err=%s", req->path, cairn_errname(rv));
        conn_fail(conn, rv);
        return;
    }
    if (conn->prefix.len > 0) {
        conn->bufs[nbufs++] = uv_buf_init((char *)conn->prefix.base, (unsigned)conn->prefix.len);
    }
    if (len > 0) {
        conn->bufs[nbufs++] = uv_buf_init((char *)conn->out, (unsigned)len);
    }
    if (suffix != NULL) {
        conn->bufs[nbufs++] = uv_buf_init((char *)suffix, (unsigned)strlen(suffix));
    }
    if (nbufs == 0) {
        return;
    }
    rv = uv_write(&conn->write, (uv_stream_t *)&conn->tcp, conn->bufs, nbufs, conn_write_cb);
    if (rv != 0) {
        conn_fail(conn, gw__err_from_uv(rv, NULL, "uv_write"));
        return;
    }
    conn->writing = true;
    conn->phase_start_ms = conn_now(conn);
}

/* The response is written: free the request, then keep alive or close. */
static void conn_maybe_finish(struct gw__conn *conn)
{
    struct gw_req *req = conn->req;
    bool close;

    if (req == NULL || req->resp != GW__RESP_FLUSH || conn->writing || conn->fail_rv != 0) {
        return;
    }
    if (req->body == GW__BODY_NONE && !req->complete && !conn->broken) {
        return; /* Cannot last: a body-less request completes right after its head. */
    }
    req->resp = GW__RESP_DONE;
    CN_LOG(CN_DEBUG, "request", "method=%s path=%s status=%d bytes=%llu ms=%llu", req->method,
           req->path, req->status, (unsigned long long)req->resp_sent,
           (unsigned long long)(conn_now(conn) - req->start_ms));
    close =
        req->close_after || !req->complete || conn->broken || conn->eof || conn->server->closing;
    conn->req = NULL;
    gw__req_free(req, 0);
    conn->last_io_ms = conn_now(conn);
    if (close) {
        conn_linger(conn);
    } else {
        conn->pump_again = true; /* A pipelined request may wait in `in`. */
    }
}

/* The server drains: a connection between requests closes now. */
static void conn_maybe_drain(struct gw__conn *conn)
{
    if (conn->server->closing && conn->state == GW__CONN_OPEN && conn->req == NULL) {
        conn_close(conn);
    }
}

/* ---- Reading ---- */

static void conn_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct gw__conn *conn = handle->data;

    (void)suggested;
    if (conn->state == GW__CONN_LINGER || conn->in_start == conn->in_end) {
        conn->in_start = conn->in_end = 0; /* Lingering input is discarded. */
    } else if (conn->in_start > 0) {
        /* Unparsed bytes (a pipelined request) move to the front. */
        memmove(conn->in, conn->in + conn->in_start, conn->in_end - conn->in_start);
        conn->in_end -= conn->in_start;
        conn->in_start = 0;
    }
    CN_ASSERT(conn->in_end < GW_IN_SIZE); /* conn_update_reading() stops reading when full */
    *buf = uv_buf_init((char *)conn->in + conn->in_end, (unsigned)(GW_IN_SIZE - conn->in_end));
}

static void conn_on_eof(struct gw__conn *conn)
{
    conn->eof = true;
    if (conn->state == GW__CONN_LINGER || conn->req == NULL) {
        conn_close(conn); /* Nothing half-done: a quiet close. */
        return;
    }
    if (!conn->req->complete || conn->req->resp == GW__RESP_NONE) {
        /* The client left mid-request, or while the handler worked (a long
         * poll): nobody is left to answer. */
        conn_fail(conn, CAIRN_ECANCELED);
    }
    /* Else the answer that has begun is still written, then the connection closes. */
}

static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct gw__conn *conn = stream->data;

    (void)buf;
    if (nread == 0 || conn->state == GW__CONN_CLOSING) {
        return;
    }
    if (nread == UV_EOF) {
        conn_on_eof(conn);
    } else if (nread < 0) {
        conn->eof = true;
        if (conn->state == GW__CONN_LINGER || conn->req == NULL) {
            conn_close(conn);
        } else {
            conn_fail(conn, gw__err_from_uv((int)nread, NULL, "read"));
        }
    } else if (conn->state == GW__CONN_LINGER) {
        return; /* Discarded */
    } else {
        conn->in_end += (size_t)nread;
        conn->last_io_ms = conn_now(conn);
    }
    if (conn->state != GW__CONN_CLOSING) {
        conn_pump(conn);
    }
}

/* While the handler works on a complete request, reading goes on without
 * parsing, until `in` is full: the next pipelined request waits there, and
 * a client that leaves (EOF) is noticed at once, not at the next write. */
static bool conn_peeking(const struct gw__conn *conn)
{
    return conn->req != NULL && conn->req->complete && conn->in_end < GW_IN_SIZE;
}

static void conn_update_reading(struct gw__conn *conn)
{
    bool want = conn->state == GW__CONN_LINGER || (conn->state == GW__CONN_OPEN && !conn->eof &&
                                                   (conn_runnable(conn) || conn_peeking(conn)));
    int rv;

    if (want && !conn->reading) {
        rv = uv_read_start((uv_stream_t *)&conn->tcp, conn_alloc_cb, conn_read_cb);
        if (rv != 0) {
            conn_fail(conn, gw__err_from_uv(rv, NULL, "uv_read_start"));
            return;
        }
        conn->reading = true;
    } else if (!want && conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
    }
}

/* ---- Timer ---- */

static enum gw__timer_phase conn_phase(const struct gw__conn *conn, uint64_t *deadline_ms)
{
    const struct gw_config *config = &conn->server->config;
    const struct gw_req *req = conn->req;

    if (conn->state == GW__CONN_LINGER) {
        *deadline_ms = conn->phase_start_ms + config->linger_timeout_ms;
        return GW__TIMER_LINGER;
    }
    if (conn->writing) {
        *deadline_ms = conn->phase_start_ms + config->write_timeout_ms;
        return GW__TIMER_WRITE;
    }
    if (req == NULL) {
        /* A new connection gets the head timeout for its first request, so
         * that silent connections cannot hold slots for the idle timeout. */
        *deadline_ms = conn->last_io_ms + (conn->request_count == 0 ? config->head_timeout_ms
                                                                    : config->idle_timeout_ms);
        return GW__TIMER_IDLE;
    }
    if (conn->parse.state == GW__PARSE_HEAD && !conn->broken) {
        *deadline_ms = conn->phase_start_ms + config->head_timeout_ms;
        return GW__TIMER_HEAD;
    }
    if (req->body == GW__BODY_READING && conn_runnable(conn)) {
        *deadline_ms = conn->last_io_ms + config->body_timeout_ms;
        return GW__TIMER_BODY;
    }
    return GW__TIMER_NONE; /* The handler's turn */
}

static void conn_on_timeout(struct gw__conn *conn, enum gw__timer_phase phase)
{
    struct gw_req *req = conn->req;
    static const char *const names[] = {"none", "idle", "head", "body", "write", "linger"};

    if (phase == GW__TIMER_IDLE || phase == GW__TIMER_LINGER) {
        conn_close(conn);
        return;
    }
    conn->server->stats.timeout_count++;
    CN_LOG(CN_INFO, "client too slow", "phase=%s", names[phase]);
    if (phase == GW__TIMER_WRITE) {
        conn_fail(conn, CAIRN_ETIMEOUT);
        return;
    }
    CN_ASSERT(req != NULL);
    conn->broken = true;
    if (phase == GW__TIMER_BODY) {
        gw__req_end_body(req, CAIRN_ETIMEOUT);
    }
    if (req->resp == GW__RESP_NONE) {
        gw_respond_status(req, 408, "request_timeout", "the request did not arrive in time");
    }
    req->close_after = true;
}

static void conn_timer_cb(uv_timer_t *timer)
{
    struct gw__conn *conn = CN_CONTAINER_OF(timer, struct gw__conn, timer);
    enum gw__timer_phase phase;
    uint64_t deadline_ms;

    if (conn->state == GW__CONN_CLOSING) {
        return;
    }
    phase = conn_phase(conn, &deadline_ms);
    if (phase != GW__TIMER_NONE && conn_now(conn) >= deadline_ms) {
        conn_on_timeout(conn, phase);
        if (conn->state == GW__CONN_CLOSING) {
            return;
        }
    }
    conn_pump(conn);
}

static void conn_arm_timer(struct gw__conn *conn)
{
    uint64_t deadline_ms = 0;
    uint64_t now = conn_now(conn);
    enum gw__timer_phase phase = conn_phase(conn, &deadline_ms);

    if (phase == GW__TIMER_NONE) {
        uv_timer_stop(&conn->timer);
        return;
    }
    uv_timer_start(&conn->timer, conn_timer_cb, deadline_ms > now ? deadline_ms - now : 0, 0);
}

/* ---- The pump ---- */

static void conn_pump(struct gw__conn *conn)
{
    CN_ASSERT(!conn->in_pump);
    CN_ASSERT(conn->state != GW__CONN_CLOSING);
    conn->in_pump = true;
    do {
        conn->pump_again = false;
        if (conn->fail_rv != 0) {
            conn_teardown(conn);
            break;
        }
        if (conn->state != GW__CONN_OPEN) {
            break;
        }
        conn_deliver(conn);
        conn_parse(conn);
        conn_flush(conn);
        conn_maybe_finish(conn);
        conn_maybe_drain(conn);
    } while (conn->pump_again && conn->state != GW__CONN_CLOSING);
    if (conn->state != GW__CONN_CLOSING) {
        conn_update_reading(conn);
        conn_arm_timer(conn);
    }
    conn->in_pump = false;
    if (conn->state != GW__CONN_CLOSING && conn->fail_rv != 0) {
        conn_teardown(conn); /* uv_read_start failed just above */
    }
}

void gw__conn_kick(struct gw__conn *conn)
{
    if (conn->state == GW__CONN_CLOSING) {
        return;
    }
    if (conn->in_pump) {
        conn->pump_again = true;
        return;
    }
    /* Outside a pump we may be inside a handler: pump from the loop, at once. */
    uv_timer_start(&conn->timer, conn_timer_cb, 0, 0);
}

void gw__conn_fail(struct gw__conn *conn, int rv)
{
    if (conn->state == GW__CONN_CLOSING) {
        return;
    }
    if (conn->fail_rv == 0) {
        conn->fail_rv = rv;
    }
    gw__conn_kick(conn);
}

void gw__conn_start(struct gw_server *server, struct gw__conn *conn)
{
    int rv;

    conn->server = server;
    conn->state = GW__CONN_OPEN;
    conn->tcp.data = conn;
    rv = uv_timer_init(server->loop, &conn->timer);
    CN_ASSERT(rv == 0);
    conn->timer.data = conn;
    conn->in = cn_xmalloc(GW_IN_SIZE);
    cn_buf_init(&conn->prefix);
    gw__parse_init(&conn->parse, &server->config, &conn_parse_cbs, conn);
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->last_io_ms = conn_now(conn);
    conn_pump(conn);
}
