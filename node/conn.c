/*
 * Connections on the node port: a secure channel (channel.c) under a frame
 * reader (proto.h), on a libuv TCP handle.
 *
 * The happy path: a server accepts, or a client connects and sends its
 * hello; bytes read go through node_channel_feed(), whose handshake answers
 * are written raw and whose plaintext goes through the frame reader to the
 * owner's frame callback. Frames sent before the channel is open wait in
 * `early` and are sealed when it opens.
 *
 * Possible failure modes, each closing the connection with a reason that is
 * logged once, here, with the peer's address:
 * - a handshake that fails or does not finish in time (no secret, another
 *   protocol, a silent peer): CAIRN_EAUTH / CAIRN_EPROTO / CAIRN_ETIMEOUT;
 *   a client's TCP connect counts against that time, and one that does not
 *   complete in it (our SYN dropped by a partition) is a failed connect,
 *   CAIRN_EIO;
 * - a bad frame or record (oversize, corrupt, forged): its CAIRN_E* code;
 * - a frame begun but not finished within stall_timeout_ms, or no traffic at
 *   all for idle_timeout_ms: CAIRN_ETIMEOUT;
 * - a read or write error, or the peer closing: CAIRN_EIO.
 * A connection's memory is freed in the close callback of its last handle.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"

#define TIMER_INTERVAL_MS 250

struct conn_write {
    uv_write_t req;
    struct cn_buf buf;
};

void node_rpc_options_init(struct node_rpc_options *options)
{
    options->frame_payload_max = PROTO_FRAME_PAYLOAD_MAX;
    options->handshake_timeout_ms = 5000;
    options->stall_timeout_ms = 10000;
    options->idle_timeout_ms = 0;
    options->connections_max = 1024;
    options->calls_in_flight_max = 256;
}

const char *node_conn_peer(const struct node_conn *conn)
{
    return conn->peer;
}

static void write_cb(uv_write_t *req, int status)
{
    struct conn_write *write = CN_CONTAINER_OF(req, struct conn_write, req);
    struct node_conn *conn = req->data;

    conn->queued_bytes -= write->buf.len;
    cn_buf_close(&write->buf);
    free(write);
    if (status != 0 && status != UV_ECANCELED) {
        node__conn_close(conn, CAIRN_EIO);
        return;
    }
    if (conn->raw_drained != NULL && conn->state != NODE_CONN_CLOSING) {
        conn->raw_drained(conn->raw_data);
    }
}

/* Writes the bytes of buf (takes ownership of its memory). */
static int write_raw(struct node_conn *conn, struct cn_buf *buf)
{
    struct conn_write *write;
    uv_buf_t uv_buf;
    int rv;

    if (buf->len == 0) {
        cn_buf_close(buf);
        return 0;
    }
    write = cn_xmalloc(sizeof(*write));
    write->buf = *buf;
    cn_buf_init(buf);
    write->req.data = conn;
    uv_buf = uv_buf_init((char *)write->buf.base, (unsigned)write->buf.len);
    conn->queued_bytes += write->buf.len;
    rv = uv_write(&write->req, (uv_stream_t *)&conn->tcp, &uv_buf, 1, write_cb);
    if (rv != 0) {
        conn->queued_bytes -= write->buf.len;
        cn_buf_close(&write->buf);
        free(write);
        return CAIRN_EIO;
    }
    return 0;
}

/* Seals plaintext frames and writes them. */
static int write_sealed(struct node_conn *conn, const uint8_t *bytes, size_t len)
{
    struct cn_buf out;
    int rv;

    cn_buf_init(&out);
    rv = node_channel_seal(&conn->channel, bytes, len, &out);
    if (rv != 0) {
        cn_buf_close(&out);
        return rv;
    }
    return write_raw(conn, &out);
}

int node_conn_send(struct node_conn *conn,
                   uint16_t type,
                   uint8_t flags,
                   uint64_t request_id,
                   const void *payload,
                   size_t length)
{
    uint8_t header[PROTO_FRAME_HEADER_SIZE];
    struct iovec parts[2];
    struct cn_buf out;
    int rv;

    if (conn->state == NODE_CONN_CLOSING) {
        return CAIRN_ESHUTDOWN;
    }
    if (length > conn->options.frame_payload_max) {
        return CAIRN_ETOOBIG;
    }
    if (!node_channel_is_open(&conn->channel)) {
        return proto_frame_append(&conn->early, type, flags, request_id, payload, length);
    }
    /* The header and the payload are sealed straight into the records: the
     * payload (a shard, often) is not copied into a frame first. */
    proto_frame_encode_header(header, type, flags, request_id, payload, (uint32_t)length);
    parts[0].iov_base = header;
    parts[0].iov_len = sizeof(header);
    parts[1].iov_base = (void *)payload;
    parts[1].iov_len = length;
    cn_buf_init(&out);
    rv = node_channel_sealv(&conn->channel, parts, 2, &out);
    if (rv != 0) {
        cn_buf_close(&out);
        return rv;
    }
    return write_raw(conn, &out);
}

int node_conn_send_error(
    struct node_conn *conn, uint16_t type, uint64_t request_id, int rv, const char *message)
{
    Cairn__Wire__ErrorReply reply = CAIRN__WIRE__ERROR_REPLY__INIT;
    uint8_t packed[512];
    size_t len;

    reply.code = rv;
    reply.message = (char *)message;
    CN_ASSERT(strlen(message) < 400);
    len = cairn__wire__error_reply__pack(&reply, packed);
    return node_conn_send(conn, type, PROTO_FLAG_REPLY | PROTO_FLAG_ERROR, request_id, packed, len);
}

static int deliver_frame(void *data,
                         const struct proto_frame_header *header,
                         const uint8_t *payload)
{
    struct node_conn *conn = data;

    if (conn->raw_cb != NULL) {
        return CAIRN_EPROTO; /* a frame after the switch to raw bytes */
    }
    if (conn->state != NODE_CONN_CLOSING) {
        conn->on_frame(conn->frame_data, conn, header, payload);
    }
    return 0;
}

/* The channel just opened: seal what waited for it. */
static int on_open(struct node_conn *conn)
{
    int rv = 0;

    conn->state = NODE_CONN_OPEN;
    if (conn->early.len > 0) {
        rv = write_sealed(conn, conn->early.base, conn->early.len);
    }
    cn_buf_close(&conn->early);
    if (conn->on_open != NULL) {
        conn->on_open(conn);
    }
    return rv;
}

static int on_bytes(struct node_conn *conn, const uint8_t *bytes, size_t len)
{
    struct cn_buf out;
    bool was_open = node_channel_is_open(&conn->channel);
    int rv;

    cn_buf_init(&out);
    rv = node_channel_feed(&conn->channel, bytes, len, &out, &conn->plain);
    if (out.len > 0 && rv == 0) {
        rv = write_raw(conn, &out);
    }
    cn_buf_close(&out);
    if (rv == 0 && !was_open && node_channel_is_open(&conn->channel)) {
        rv = on_open(conn);
    }
    if (rv == 0 && conn->plain.len > 0 && conn->raw_cb != NULL) {
        conn->raw_cb(conn->raw_data, conn->plain.base, conn->plain.len);
        cn_buf_reset(&conn->plain);
    } else if (rv == 0 && conn->plain.len > 0) {
        rv = proto_reader_feed(&conn->reader, conn->plain.base, conn->plain.len, deliver_frame,
                               conn);
        cn_buf_reset(&conn->plain);
    }
    return rv;
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct node_conn *conn = handle->data;

    (void)suggested;
    buf->base = (char *)conn->read_buf;
    buf->len = sizeof(conn->read_buf);
}

static bool frame_in_progress(const struct node_conn *conn)
{
    return conn->reader.header_len > 0 || conn->channel.in.len > 0;
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct node_conn *conn = stream->data;
    int rv;

    if (nread == 0 || conn->state == NODE_CONN_CLOSING) {
        return;
    }
    if (nread < 0) {
        /* The peer hanging up between frames is a normal end: no warning. */
        conn->was_quiet_close = nread == UV_EOF && !frame_in_progress(conn);
        node__conn_close(conn, CAIRN_EIO);
        return;
    }
    conn->last_read_ms = uv_now(conn->loop);
    rv = on_bytes(conn, (const uint8_t *)buf->base, (size_t)nread);
    if (rv != 0) {
        node__conn_close(conn, rv);
    }
}

static void timer_cb(uv_timer_t *timer)
{
    struct node_conn *conn = timer->data;
    uint64_t now = uv_now(conn->loop);
    uint64_t quiet = now - conn->last_read_ms;

    if (conn->state == NODE_CONN_CONNECTING &&
        now - conn->started_ms > conn->options.handshake_timeout_ms) {
        /* No answer to our SYN (a partition, a host gone): the kernel would
         * try for two minutes. A failed connect, as a refused one: the
         * owner's calls move on to another node, libraft tries again. */
        conn->was_quiet_close = conn->quiet_connect;
        node__conn_close(conn, CAIRN_EIO);
    } else if (conn->state != NODE_CONN_OPEN &&
               now - conn->started_ms > conn->options.handshake_timeout_ms) {
        node__conn_close(conn, CAIRN_ETIMEOUT);
    } else if (frame_in_progress(conn) && quiet > conn->options.stall_timeout_ms) {
        node__conn_close(conn, CAIRN_ETIMEOUT);
    } else if (conn->options.idle_timeout_ms != 0 && quiet > conn->options.idle_timeout_ms) {
        node__conn_close(conn, CAIRN_ETIMEOUT);
    }
}

struct node_conn *node__conn_new(uv_loop_t *loop,
                                 const struct node_rpc_options *options,
                                 const uint8_t secret[NODE_SECRET_SIZE],
                                 bool is_client)
{
    struct node_conn *conn = cn_xcalloc(1, sizeof(*conn));
    struct cn_buf hello;

    conn->loop = loop;
    conn->options = *options;
    conn->state = is_client ? NODE_CONN_CONNECTING : NODE_CONN_HANDSHAKE;
    conn->started_ms = conn->last_read_ms = uv_now(loop);
    cn_buf_init(&conn->plain);
    cn_buf_init(&conn->early);
    cn_buf_init(&conn->hello);
    proto_reader_init(&conn->reader, options->frame_payload_max);
    cn_buf_init(&hello);
    CN_ASSERT(node_channel_init(&conn->channel, secret, is_client, &hello) == 0);
    conn->hello = hello;
    CN_ASSERT(uv_tcp_init(loop, &conn->tcp) == 0);
    CN_ASSERT(uv_timer_init(loop, &conn->timer) == 0);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->handle_count = 2;
    snprintf(conn->peer, sizeof(conn->peer), "?");
    if (is_client) { /* the TCP connect counts against the handshake's time */
        CN_ASSERT(uv_timer_start(&conn->timer, timer_cb, TIMER_INTERVAL_MS, TIMER_INTERVAL_MS) ==
                  0);
    }
    return conn;
}

/* Starts reading and the timer; a client also sends its hello. */
int node__conn_start(struct node_conn *conn)
{
    struct sockaddr_storage addr;
    int len = sizeof(addr);
    char ip[INET6_ADDRSTRLEN] = "?";

    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&addr, &len) == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        uv_ip4_name(in, ip, sizeof(ip));
        snprintf(conn->peer, sizeof(conn->peer), "%s:%d", ip, ntohs(in->sin_port));
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    CN_ASSERT(uv_timer_start(&conn->timer, timer_cb, TIMER_INTERVAL_MS, TIMER_INTERVAL_MS) == 0);
    if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb) != 0) {
        return CAIRN_EIO;
    }
    if (conn->state == NODE_CONN_CONNECTING) {
        conn->state = NODE_CONN_HANDSHAKE;
        return write_raw(conn, &conn->hello);
    }
    return 0;
}

static void conn_free(struct node_conn *conn)
{
    CN_ASSERT(conn->handle_count == 0 && conn->hold_count == 0);
    proto_reader_close(&conn->reader);
    node_channel_close(&conn->channel);
    cn_buf_close(&conn->plain);
    cn_buf_close(&conn->early);
    cn_buf_close(&conn->hello);
    free(conn);
}

static void handle_close_cb(uv_handle_t *handle)
{
    struct node_conn *conn = handle->data;

    CN_ASSERT(conn->handle_count > 0);
    if (--conn->handle_count > 0) {
        return;
    }
    if (conn->raw_closed != NULL) {
        conn->raw_closed(conn->raw_data);
    }
    if (conn->on_close != NULL) {
        conn->on_close(conn);
    }
    if (conn->hold_count == 0) {
        conn_free(conn);
    }
}

void node_conn_hold(struct node_conn *conn)
{
    conn->hold_count++;
}

bool node_conn_release(struct node_conn *conn)
{
    bool open = conn->state != NODE_CONN_CLOSING;

    CN_ASSERT(conn->hold_count > 0);
    if (--conn->hold_count == 0 && conn->handle_count == 0) {
        conn_free(conn);
    }
    return open;
}

void node__conn_close(struct node_conn *conn, int reason)
{
    if (conn->state == NODE_CONN_CLOSING) {
        return;
    }
    conn->state = NODE_CONN_CLOSING;
    conn->close_reason = reason;
    if (reason != 0 && !(reason == CAIRN_EIO && conn->was_quiet_close)) {
        CN_LOG(CN_WARN, "connection closed", "peer=%s err=%s", conn->peer, cairn_errname(reason));
    }
    uv_close((uv_handle_t *)&conn->tcp, handle_close_cb);
    uv_close((uv_handle_t *)&conn->timer, handle_close_cb);
}

void node__conn_set_raw(struct node_conn *conn,
                        void (*raw_cb)(void *raw_data, const uint8_t *bytes, size_t len),
                        void (*raw_closed)(void *raw_data),
                        void (*raw_drained)(void *raw_data),
                        void *raw_data)
{
    CN_ASSERT(conn->raw_cb == NULL && raw_cb != NULL);
    conn->raw_cb = raw_cb;
    conn->raw_closed = raw_closed;
    conn->raw_drained = raw_drained;
    conn->raw_data = raw_data;
}

int node__conn_write_raw(struct node_conn *conn, const uint8_t *bytes, size_t len)
{
    if (conn->state != NODE_CONN_OPEN) {
        return CAIRN_ESHUTDOWN;
    }
    return write_sealed(conn, bytes, len);
}

void node__conn_pause(struct node_conn *conn, bool pause)
{
    if (conn->state == NODE_CONN_CLOSING || pause == conn->reading_paused) {
        return;
    }
    conn->reading_paused = pause;
    if (pause) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
    } else if (uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb) != 0) {
        node__conn_close(conn, CAIRN_EIO);
    }
}
