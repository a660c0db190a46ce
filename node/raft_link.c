/*
 * Raft streams over the node port: the mux's connector and acceptor
 * (docs/metadata.md, "Transport"), on the node's one port and its
 * authenticated, encrypted channel (channel.c).
 *
 * libraft reads and writes a uv_stream, so each Raft connection is bridged:
 * libraft gets one end of a socketpair (a uv_pipe_t, raft_malloc'ed: libraft
 * frees the streams it owns), and a link pumps bytes between the other end
 * and the secure channel.
 *
 * The happy path, connecting (libraft sends on the connections it opens):
 *   1. The mux asks for a stream to ADDRESS for group G: a client connection
 *      (conn.c) is opened, the channel handshake proves the secret both ways.
 *   2. The first frame is MSG_HELLO{cluster_id, node_id, PURPOSE_RAFT, G,
 *      address}; the peer answers with its own Hello (PROTO_FLAG_REPLY).
 *   3. The connection switches to raw bytes (node__conn_set_raw()), the
 *      socketpair is made and libraft gets its end.
 * Accepting (run.c hands every MSG_HELLO here):
 *   1. The Hello is checked: purpose, our cluster id, a node id, a group we
 *      host. We answer with our Hello, switch to raw bytes, and give libraft
 *      its end through meta_mux_accept() with the peer's id and address.
 * Neither side sends raw bytes before the Hellos crossed; a frame after the
 * switch is a protocol error (the connection closes).
 *
 * Back-pressure: at most LINK_QUEUE_MAX bytes wait in either direction; past
 * it the side that feeds the queue stops reading (the pipe, or the TCP
 * connection) until the queue falls under half.
 *
 * Possible failure modes:
 *   - A peer without the secret: the channel refuses it before any frame.
 *   - A Hello with another purpose, cluster or an unhosted group: an
 *     ErrorReply, then the connection closes.
 *   - The connection or the handshake fails before the stream was handed
 *     over, or the peer's Hello does not come within LINK_HELLO_TIMEOUT_MS
 *     (a peer that lost the connection, or a stopped process): the mux gets
 *     CAIRN_EIO (libraft retries later).
 *   - Either end closes afterwards (libraft closed its stream, the peer hung
 *     up, a write failed): the link closes both, so libraft sees EOF.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define LINK_QUEUE_MAX (1u << 20)
#define LINK_READ_SIZE (64u << 10)
#define LINK_HELLO_MAX 1024u
/* The connecting side waits this long for the peer's Hello after the channel
 * opened. libraft has no deadline on a connect: a Hello that never comes
 * back would leave its client to that peer "connecting" for good, and every
 * message to the peer dropped (jepsen's wedge after a heal). */
#define LINK_HELLO_TIMEOUT_MS 10000u

struct node_link {
    struct node_cluster *cluster;
    struct node_conn *conn; /* NULL once it closed */
    uv_pipe_t pipe;         /* our end of the socketpair */
    bool pipe_open;
    bool pipe_closing;
    bool pipe_paused;   /* not reading from libraft: the connection is full */
    bool net_paused;    /* not reading the connection: the pipe is full */
    size_t pipe_queued; /* bytes written to the pipe, not yet completed */
    uint64_t group_id;
    meta_mux_connect_done done; /* connecting side, until called */
    void *done_data;
    uint8_t read_buf[LINK_READ_SIZE];
    struct node_link *next;
};

struct pipe_write {
    uv_write_t req;
    size_t len;
    uint8_t bytes[];
};

static void link_maybe_free(struct node_link *link)
{
    struct node_cluster *cluster = link->cluster;
    struct node_link **p;

    if (link->conn != NULL || link->pipe_open || link->done != NULL) {
        return;
    }
    for (p = &cluster->links; *p != NULL; p = &(*p)->next) {
        if (*p == link) {
            *p = link->next;
            break;
        }
    }
    free(link);
    if (cluster->stopping) {
        node__cluster_maybe_free(cluster); /* the last link may hold up shutdown */
    }
}

static void pipe_close_cb(uv_handle_t *handle)
{
    struct node_link *link = handle->data;

    link->pipe_open = false;
    link_maybe_free(link);
}

/* Ends the link: both sides close; memory goes once both did. */
static void link_shutdown(struct node_link *link)
{
    if (link->conn != NULL) {
        link->conn->was_quiet_close = true;
        node__conn_close(link->conn, 0);
    }
    if (link->pipe_open && !link->pipe_closing) {
        link->pipe_closing = true;
        uv_close((uv_handle_t *)&link->pipe, pipe_close_cb);
    }
}

/* The connection closed (raw_closed, or the client's on_close). */
static void link_conn_gone(void *data)
{
    struct node_link *link = data;

    link->conn = NULL;
    if (link->done != NULL) {
        meta_mux_connect_done done = link->done;
        link->done = NULL;
        done(link->done_data, NULL, CAIRN_EIO);
    }
    link_shutdown(link);
    link_maybe_free(link);
}

static void client_conn_closed(struct node_conn *conn)
{
    link_conn_gone(conn->owner);
}

/* ---- libraft -> peer ---- */

static void pipe_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct node_link *link = handle->data;

    (void)suggested;
    buf->base = (char *)link->read_buf;
    buf->len = sizeof(link->read_buf);
}

static void pipe_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct node_link *link = stream->data;

    if (nread == 0) {
        return;
    }
    if (nread < 0 || link->conn == NULL ||
        node__conn_write_raw(link->conn, (const uint8_t *)buf->base, (size_t)nread) != 0) {
        link_shutdown(link); /* libraft closed its end, or the connection failed */
        return;
    }
    if (link->conn->queued_bytes > LINK_QUEUE_MAX) {
        uv_read_stop(stream);
        link->pipe_paused = true;
    }
}

/* A write to the peer completed: resume reading libraft when there is room. */
static void link_drained(void *data)
{
    struct node_link *link = data;

    if (link->pipe_paused && link->pipe_open && !link->pipe_closing &&
        link->conn->queued_bytes < LINK_QUEUE_MAX / 2) {
        link->pipe_paused = false;
        if (uv_read_start((uv_stream_t *)&link->pipe, pipe_alloc_cb, pipe_read_cb) != 0) {
            link_shutdown(link);
        }
    }
}

/* ---- peer -> libraft ---- */

static void pipe_write_cb(uv_write_t *req, int status)
{
    struct pipe_write *write = CN_CONTAINER_OF(req, struct pipe_write, req);
    struct node_link *link = req->data;

    link->pipe_queued -= write->len;
    free(write);
    if (status != 0) {
        link_shutdown(link);
        return;
    }
    if (link->net_paused && link->conn != NULL && link->pipe_queued < LINK_QUEUE_MAX / 2) {
        link->net_paused = false;
        node__conn_pause(link->conn, false);
    }
}

static void link_net_cb(void *data, const uint8_t *bytes, size_t len)
{
    struct node_link *link = data;
    struct pipe_write *write;
    uv_buf_t buf;

    if (!link->pipe_open || link->pipe_closing) {
        return;
    }
    write = cn_xmalloc(sizeof(*write) + len);
    memcpy(write->bytes, bytes, len);
    write->len = len;
    write->req.data = link;
    buf = uv_buf_init((char *)write->bytes, (unsigned)len);
    link->pipe_queued += len;
    if (uv_write(&write->req, (uv_stream_t *)&link->pipe, &buf, 1, pipe_write_cb) != 0) {
        link->pipe_queued -= len;
        free(write);
        link_shutdown(link);
        return;
    }
    if (link->pipe_queued > LINK_QUEUE_MAX && link->conn != NULL) {
        link->net_paused = true;
        node__conn_pause(link->conn, true);
    }
}

/* Makes the socketpair: our end starts reading, libraft's end is returned. */
static int link_pipes(struct node_link *link, uv_stream_t **raft_end)
{
    uv_loop_t *loop = link->cluster->node->loop;
    uv_os_sock_t fds[2];
    uv_pipe_t *theirs;

    if (uv_socketpair(SOCK_STREAM, 0, fds, 0, 0) != 0) {
        return CAIRN_EIO;
    }
    theirs = raft_malloc(sizeof(*theirs));
    CN_ASSERT(theirs != NULL);
    CN_ASSERT(uv_pipe_init(loop, theirs, 0) == 0);
    CN_ASSERT(uv_pipe_init(loop, &link->pipe, 0) == 0);
    link->pipe.data = link;
    link->pipe_open = true;
    if (uv_pipe_open(theirs, fds[0]) != 0 || uv_pipe_open(&link->pipe, fds[1]) != 0 ||
        uv_read_start((uv_stream_t *)&link->pipe, pipe_alloc_cb, pipe_read_cb) != 0) {
        uv_close((uv_handle_t *)theirs, (uv_close_cb)raft_free);
        return CAIRN_EIO;
    }
    *raft_end = (uv_stream_t *)theirs;
    return 0;
}

static struct node_link *link_new(struct node_cluster *cluster, uint64_t group_id)
{
    struct node_link *link = cn_xcalloc(1, sizeof(*link));

    link->cluster = cluster;
    link->group_id = group_id;
    link->next = cluster->links;
    cluster->links = link;
    return link;
}

static int hello_pack(struct node_cluster *cluster, uint64_t group_id, struct cn_buf *out)
{
    Cairn__Wire__Hello hello = CAIRN__WIRE__HELLO__INIT;

    hello.cluster_id.data = cluster->node->cluster_id;
    hello.cluster_id.len = NODE_CLUSTER_ID_SIZE;
    hello.node_id = cluster->node->node_id;
    hello.purpose = CAIRN__WIRE__PURPOSE__PURPOSE_RAFT;
    hello.group_id = group_id;
    hello.address = cluster->address;
    cn_buf_reset(out);
    if (cn_buf_reserve(out, cairn__wire__hello__get_packed_size(&hello)) != 0) {
        return CAIRN_ENOMEM;
    }
    out->len = cairn__wire__hello__pack(&hello, out->base);
    return 0;
}

/* Checks a peer's Hello: 0 with *hello (free it), or CAIRN_EPROTO/EAUTH/ENOENT. */
static int hello_check(struct node_cluster *cluster,
                       const struct proto_frame_header *header,
                       const uint8_t *payload,
                       Cairn__Wire__Hello **out)
{
    Cairn__Wire__Hello *hello;

    if (header->length > LINK_HELLO_MAX) {
        return CAIRN_EPROTO;
    }
    hello = cairn__wire__hello__unpack(NULL, header->length, payload);
    if (hello == NULL) {
        return CAIRN_EPROTO;
    }
    if (hello->purpose != CAIRN__WIRE__PURPOSE__PURPOSE_RAFT || hello->node_id == 0 ||
        hello->address == NULL || strlen(hello->address) >= META_ADDRESS_MAX) {
        cairn__wire__hello__free_unpacked(hello, NULL);
        return CAIRN_EPROTO;
    }
    if (hello->cluster_id.len != NODE_CLUSTER_ID_SIZE ||
        memcmp(hello->cluster_id.data, cluster->node->cluster_id, NODE_CLUSTER_ID_SIZE) != 0) {
        cairn__wire__hello__free_unpacked(hello, NULL);
        return CAIRN_EAUTH; /* another cluster with the same secret */
    }
    *out = hello;
    return 0;
}

/* ---- Connecting ---- */

static void link_frame_cb(void *data,
                          struct node_conn *conn,
                          const struct proto_frame_header *header,
                          const uint8_t *payload)
{
    struct node_link *link = data;
    Cairn__Wire__Hello *hello = NULL;
    meta_mux_connect_done done = link->done;
    uv_stream_t *stream;
    int rv;

    if (done == NULL || header->type != CAIRN__WIRE__MSG_TYPE__MSG_HELLO ||
        (header->flags & (PROTO_FLAG_REPLY | PROTO_FLAG_ERROR)) != PROTO_FLAG_REPLY) {
        node__conn_close(conn, CAIRN_EPROTO); /* refused, or not a Cairn node */
        return;
    }
    rv = hello_check(link->cluster, header, payload, &hello);
    if (rv == 0 && hello->group_id != link->group_id) {
        rv = CAIRN_EPROTO;
    }
    cairn__wire__hello__free_unpacked(hello, NULL);
    if (rv == 0) {
        rv = link_pipes(link, &stream);
    }
    if (rv != 0) {
        node__conn_close(conn, rv);
        return;
    }
    node__conn_set_raw(conn, link_net_cb, NULL, link_drained, link);
    conn->options.idle_timeout_ms = 0; /* libraft's peer answers on its own stream */
    link->done = NULL;
    done(link->done_data, stream, 0);
}

static void link_connect_cb(uv_connect_t *req, int status)
{
    struct node_conn *conn = req->data;

    free(req);
    if (conn->state == NODE_CONN_CLOSING) {
        return;
    }
    if (status != 0) {
        conn->was_quiet_close = true; /* libraft retries: no warning per attempt */
        node__conn_close(conn, CAIRN_EIO);
        return;
    }
    if (node__conn_start(conn) != 0) {
        node__conn_close(conn, CAIRN_EIO);
    }
}

static int link_connect(struct meta_mux_connector *connector,
                        struct meta_mux *mux,
                        uint64_t group_id,
                        const char *address,
                        meta_mux_connect_done done,
                        void *done_data)
{
    struct node_cluster *cluster = CN_CONTAINER_OF(connector, struct node_cluster, connector);
    struct node_rpc_options options;
    struct sockaddr_in addr;
    struct node_link *link;
    struct node_conn *conn;
    struct cn_buf hello;
    uv_connect_t *req;

    (void)mux;
    if (cluster->stopping || node__parse_address(address, &addr) != 0) {
        return CAIRN_EINVAL;
    }
    node_rpc_options_init(&options);
    options.idle_timeout_ms = LINK_HELLO_TIMEOUT_MS; /* until the Hello is answered */
    link = link_new(cluster, group_id);
    conn = node__conn_new(cluster->node->loop, &options, cluster->node->secret, true);
    conn->owner = link;
    conn->quiet_connect = true; /* libraft retries: no warning per attempt */
    conn->on_frame = link_frame_cb;
    conn->frame_data = link;
    conn->on_close = client_conn_closed;
    snprintf(conn->peer, sizeof(conn->peer), "%s", address);
    link->conn = conn;
    link->done = done;
    link->done_data = done_data;
    cn_buf_init(&hello);
    CN_ASSERT(hello_pack(cluster, group_id, &hello) == 0);
    node_conn_send(conn, CAIRN__WIRE__MSG_TYPE__MSG_HELLO, 0, 1, hello.base, hello.len);
    cn_buf_close(&hello);
    req = cn_xmalloc(sizeof(*req));
    req->data = conn;
    if (uv_tcp_connect(req, &conn->tcp, (const struct sockaddr *)&addr, link_connect_cb) != 0) {
        free(req);
        conn->was_quiet_close = true;
        node__conn_close(conn, CAIRN_EIO); /* done() runs from the close */
    }
    return 0;
}

void node__link_connector_init(struct node_cluster *cluster)
{
    cluster->connector.connect = link_connect;
}

/* ---- Accepting ---- */

void node__link_accept(struct node_cluster *cluster,
                       struct node_conn *conn,
                       const struct proto_frame_header *header,
                       const uint8_t *payload)
{
    Cairn__Wire__Hello *hello = NULL;
    struct node_link *link;
    struct cn_buf reply;
    uv_stream_t *stream;
    int rv;

    rv = hello_check(cluster, header, payload, &hello);
    if (rv == 0 && (cluster->stopping || node__group_find(cluster, hello->group_id) == NULL)) {
        rv = CAIRN_ENOENT;
    }
    if (rv != 0) {
        CN_LOG(CN_DEBUG, "raft hello refused", "peer=%s err=%s", node_conn_peer(conn),
               cairn_errname(rv));
        node_conn_send_error(conn, header->type, header->request_id, rv, "raft hello refused");
        cairn__wire__hello__free_unpacked(hello, NULL);
        return; /* the peer hangs up on the error */
    }
    cn_buf_init(&reply);
    CN_ASSERT(hello_pack(cluster, hello->group_id, &reply) == 0);
    node_conn_send(conn, header->type, PROTO_FLAG_REPLY, header->request_id, reply.base, reply.len);
    cn_buf_close(&reply);
    link = link_new(cluster, hello->group_id);
    link->conn = conn;
    rv = link_pipes(link, &stream);
    if (rv != 0) {
        link->conn = NULL;
        node__conn_close(conn, rv);
        link_shutdown(link);
        link_maybe_free(link);
    } else {
        node__conn_set_raw(conn, link_net_cb, link_conn_gone, link_drained, link);
        meta_mux_accept(cluster->mux, hello->group_id, hello->node_id, hello->address, stream);
    }
    cairn__wire__hello__free_unpacked(hello, NULL);
}

void node__links_close(struct node_cluster *cluster)
{
    struct node_link *link = cluster->links;

    while (link != NULL) {
        struct node_link *next = link->next;
        link_shutdown(link);
        link = next;
    }
}
