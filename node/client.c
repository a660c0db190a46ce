/*
 * A client of one node address: one connection, reused by every call and
 * re-established by the next call after it is lost; each call has a request
 * id, a deadline timer and exactly one callback.
 *
 * The happy path: node_client_call() connects if needed, queues the request
 * frame (sent when the channel opens), and waits; the reply frame carrying
 * the same request id completes the call.
 *
 * Possible failure modes, each completing the affected calls once:
 * - too many calls in flight: the new call is refused with CAIRN_EBUSY;
 * - the deadline passes: CAIRN_ETIMEOUT (a late reply is dropped);
 * - the peer does not hold the secret, or refuses ours: CAIRN_EAUTH;
 * - the connection is lost: CAIRN_EIO for every call on it;
 * - the peer answers with an ErrorReply: its code (or CAIRN_EPROTO if the
 *   reply is malformed or carries an unknown code);
 * - node_client_free(): CAIRN_ESHUTDOWN.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"

struct call {
    struct node_client *client;
    uint64_t request_id;
    uv_timer_t timer;
    node_call_cb cb;
    void *data;
    struct call *next;
};

struct node_client {
    uv_loop_t *loop;
    char address[64];
    uint8_t secret[NODE_SECRET_SIZE];
    struct node_rpc_options options;
    struct node_conn *conn;
    struct call *calls;
    unsigned call_count;
    unsigned handle_count; /* call timers and the connection, still closing */
    uint64_t next_request_id;
    bool freeing;
};

static void maybe_free(struct node_client *client)
{
    if (client->freeing && client->handle_count == 0) {
        sodium_memzero(client->secret, sizeof(client->secret));
        free(client);
    }
}

static void call_timer_close_cb(uv_handle_t *handle)
{
    struct call *call = handle->data;
    struct node_client *client = call->client;

    free(call);
    client->handle_count--;
    maybe_free(client);
}

/* Unlinks call, calls its callback once, and frees it once its timer closed. */
static void call_finish(struct call *call,
                        int rv,
                        const struct proto_frame_header *header,
                        const uint8_t *payload)
{
    struct node_client *client = call->client;
    struct call **link = &client->calls;

    while (*link != call) {
        link = &(*link)->next;
    }
    *link = call->next;
    client->call_count--;
    uv_timer_stop(&call->timer);
    call->cb(call->data, rv, header, payload);
    uv_close((uv_handle_t *)&call->timer, call_timer_close_cb);
}

static void call_timer_cb(uv_timer_t *timer)
{
    call_finish(timer->data, CAIRN_ETIMEOUT, NULL, NULL);
}

static int error_reply_code(const struct proto_frame_header *header, const uint8_t *payload)
{
    Cairn__Wire__ErrorReply *reply =
        cairn__wire__error_reply__unpack(NULL, header->length, payload);
    int rv = CAIRN_EPROTO;

    if (reply != NULL) {
        bool known = reply->code < 0 && strcmp(cairn_errname(reply->code), "CAIRN_EUNKNOWN") != 0;
        rv = known ? reply->code : CAIRN_EPROTO;
        cairn__wire__error_reply__free_unpacked(reply, NULL);
    }
    return rv;
}

static void reply_cb(void *data,
                     struct node_conn *conn,
                     const struct proto_frame_header *header,
                     const uint8_t *payload)
{
    struct node_client *client = data;

    (void)conn;
    if ((header->flags & PROTO_FLAG_REPLY) == 0) {
        return; /* servers do not call clients on this connection */
    }
    for (struct call *call = client->calls; call != NULL; call = call->next) {
        if (call->request_id == header->request_id) {
            if ((header->flags & PROTO_FLAG_ERROR) != 0) {
                call_finish(call, error_reply_code(header, payload), NULL, NULL);
            } else {
                call_finish(call, 0, header, payload);
            }
            return;
        }
    }
    /* A reply to a call that already timed out: dropped. */
}

static void conn_closed(struct node_conn *conn)
{
    struct node_client *client = conn->owner;
    int rv = conn->close_reason;

    /* hello.len is 0 once the hello went out: the peer hung up on it. */
    if (!node_channel_is_open(&conn->channel) && (rv == CAIRN_EIO || rv == CAIRN_EPROTO) &&
        conn->hello.len == 0) {
        rv = CAIRN_EAUTH; /* the peer hung up on our hello */
    }
    if (client->conn == conn) {
        client->conn = NULL;
    }
    while (client->calls != NULL) {
        call_finish(client->calls, rv != 0 ? rv : CAIRN_EIO, NULL, NULL);
    }
    client->handle_count--;
    maybe_free(client);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct node_conn *conn = req->data;

    free(req);
    if (conn->state == NODE_CONN_CLOSING) {
        return;
    }
    if (status != 0) {
        conn->was_quiet_close = true;
        CN_LOG(CN_WARN, "connect failed", "peer=%s err=%s", conn->peer, uv_strerror(status));
        node__conn_close(conn, CAIRN_EIO);
        return;
    }
    if (node__conn_start(conn) != 0) {
        node__conn_close(conn, CAIRN_EIO);
    }
}

static int connect_peer(struct node_client *client)
{
    struct sockaddr_in addr;
    struct node_conn *conn;
    uv_connect_t *req;

    if (node__parse_address(client->address, &addr) != 0) {
        return CAIRN_EINVAL;
    }
    conn = node__conn_new(client->loop, &client->options, client->secret, true);
    conn->owner = client;
    conn->on_frame = reply_cb;
    conn->frame_data = client;
    conn->on_close = conn_closed;
    snprintf(conn->peer, sizeof(conn->peer), "%s", client->address);
    client->conn = conn;
    client->handle_count++;
    req = cn_xmalloc(sizeof(*req));
    req->data = conn;
    if (uv_tcp_connect(req, &conn->tcp, (const struct sockaddr *)&addr, connect_cb) != 0) {
        free(req);
        node__conn_close(conn, CAIRN_EIO);
    }
    return 0;
}

struct node_client *node_client_new(uv_loop_t *loop,
                                    const char *address,
                                    const uint8_t secret[NODE_SECRET_SIZE],
                                    const struct node_rpc_options *options)
{
    struct node_client *client = cn_xcalloc(1, sizeof(*client));

    CN_ASSERT(strlen(address) < sizeof(client->address));
    client->loop = loop;
    snprintf(client->address, sizeof(client->address), "%s", address);
    memcpy(client->secret, secret, NODE_SECRET_SIZE);
    client->options = *options;
    client->next_request_id = 1;
    return client;
}

int node_client_call(struct node_client *client,
                     uint16_t type,
                     const void *payload,
                     size_t length,
                     uint64_t timeout_ms,
                     node_call_cb cb,
                     void *data)
{
    struct call *call;
    int rv;

    CN_ASSERT(!client->freeing);
    if (client->call_count >= client->options.calls_in_flight_max) {
        return CAIRN_EBUSY;
    }
    if (client->conn == NULL || client->conn->state == NODE_CONN_CLOSING) {
        rv = connect_peer(client);
        if (rv != 0) {
            return rv;
        }
    }
    rv = node_conn_send(client->conn, type, 0, client->next_request_id, payload, length);
    if (rv != 0) {
        return rv;
    }
    call = cn_xcalloc(1, sizeof(*call));
    call->client = client;
    call->request_id = client->next_request_id++;
    call->cb = cb;
    call->data = data;
    CN_ASSERT(uv_timer_init(client->loop, &call->timer) == 0);
    call->timer.data = call;
    CN_ASSERT(uv_timer_start(&call->timer, call_timer_cb, timeout_ms, 0) == 0);
    call->next = client->calls;
    client->calls = call;
    client->call_count++;
    client->handle_count++;
    return 0;
}

void node_client_free(struct node_client *client)
{
    client->freeing = true;
    while (client->calls != NULL) {
        call_finish(client->calls, CAIRN_ESHUTDOWN, NULL, NULL);
    }
    if (client->conn != NULL) {
        client->conn->was_quiet_close = true;
        node__conn_close(client->conn, 0);
    }
    maybe_free(client);
}
