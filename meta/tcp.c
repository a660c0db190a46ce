/*
 * The plain-TCP connector and listener for the mux (mux.c), until the node
 * daemon hands in its authenticated connections. Not encrypted: for tests
 * and single-host development only.
 *
 * The happy path, connecting:
 *   1. uv_tcp_connect() to the peer's "ip:port".
 *   2. Write one frame: MSG_HELLO with Hello{node_id, PURPOSE_RAFT, group_id,
 *      address}.
 *   3. Read exactly one frame back, the peer's Hello, stop reading, and hand
 *      the stream to the mux (which gives it to libraft).
 * Accepting:
 *   1. Accept, read exactly one frame: the Hello.
 *   2. Check its purpose and that the group is hosted here; write our Hello.
 *   3. meta_mux_accept() with the peer's id and address.
 * Neither side writes anything after its Hello until the other has answered,
 * so neither reads past the handshake into libraft's bytes.
 *
 * Possible failure modes: connection refused or reset, a bad or oversized
 * frame, a wrong purpose, an unknown group: the stream is closed; a
 * connecting side reports CAIRN_EIO to the mux (libraft retries later).
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "meta_int.h"
#include "proto.h"
#include "wire.pb-c.h"

#define HELLO_PAYLOAD_MAX 1024u
#define READ_BUF_SIZE     2048u

/* One handshake, on either side. Owns itself until hello_finish(). */
struct hello {
    uv_tcp_t *tcp; /* raft_malloc'ed: libraft frees the streams it owns */
    uv_connect_t connect;
    uv_write_t write;
    struct cn_buf out;
    struct proto_reader reader;
    struct meta_mux *mux;
    uint64_t group_id;
    bool accepting;
    bool received;
    uint64_t peer_id;
    char peer_address[META_ADDRESS_MAX];
    meta_mux_connect_done done; /* connecting side */
    void *done_data;
    char read_buf[READ_BUF_SIZE];
};

static void tcp_close_cb(uv_handle_t *handle)
{
    raft_free(handle);
}

/* Ends the handshake: the stream goes on (rv 0) or is closed. */
static void hello_finish(struct hello *hello, int rv)
{
    struct uv_stream_s *stream = (struct uv_stream_s *)hello->tcp;

    uv_read_stop(stream);
    if (rv != 0) {
        uv_close((uv_handle_t *)hello->tcp, tcp_close_cb);
        stream = NULL;
    }
    if (hello->accepting) {
        if (stream != NULL) {
            meta_mux_accept(hello->mux, hello->group_id, hello->peer_id, hello->peer_address,
                            stream);
        }
    } else {
        hello->done(hello->done_data, stream, rv);
    }
    proto_reader_close(&hello->reader);
    cn_buf_close(&hello->out);
    free(hello);
}

static struct hello *hello_new(struct meta_mux *mux, bool accepting)
{
    struct hello *hello = cn_xcalloc(1, sizeof(*hello));

    hello->mux = mux;
    hello->accepting = accepting;
    cn_buf_init(&hello->out);
    proto_reader_init(&hello->reader, HELLO_PAYLOAD_MAX);
    hello->tcp = raft_malloc(sizeof(*hello->tcp));
    CN_ASSERT(hello->tcp != NULL);
    hello->tcp->data = hello;
    return hello;
}

static int hello_frame_cb(void *data,
                          const struct proto_frame_header *header,
                          const uint8_t *payload)
{
    struct hello *hello = data;
    Cairn__Wire__Hello *msg;
    int rv = 0;

    if (header->type != CAIRN__WIRE__MSG_TYPE__MSG_HELLO || hello->received) {
        return CAIRN_EPROTO;
    }
    msg = cairn__wire__hello__unpack(NULL, header->length, payload);
    if (msg == NULL) {
        return CAIRN_EPROTO;
    }
    if (msg->purpose != CAIRN__WIRE__PURPOSE__PURPOSE_RAFT || msg->node_id == 0 ||
        strlen(msg->address) >= sizeof(hello->peer_address) ||
        (!hello->accepting && msg->group_id != hello->group_id)) {
        rv = CAIRN_EPROTO;
    } else {
        hello->received = true;
        hello->peer_id = msg->node_id;
        hello->group_id = msg->group_id;
        strcpy(hello->peer_address, msg->address);
    }
    cairn__wire__hello__free_unpacked(msg, NULL);
    return rv;
}

static void hello_alloc_cb(uv_handle_t *handle, size_t size, uv_buf_t *buf)
{
    struct hello *hello = handle->data;

    (void)size;
    *buf = uv_buf_init(hello->read_buf, sizeof(hello->read_buf));
}

static void hello_write_cb(uv_write_t *write, int status);

static int hello_send(struct hello *hello)
{
    Cairn__Wire__Hello msg = CAIRN__WIRE__HELLO__INIT;
    uv_buf_t buf;
    int rv;

    msg.node_id = meta__mux_node_id(hello->mux);
    msg.purpose = CAIRN__WIRE__PURPOSE__PURPOSE_RAFT;
    msg.group_id = hello->group_id;
    msg.address = (char *)meta__mux_address(hello->mux);
    rv = proto_frame_append_msg(&hello->out, CAIRN__WIRE__MSG_TYPE__MSG_HELLO, 0, 0, &msg.base);
    if (rv != 0) {
        return rv;
    }
    buf = uv_buf_init((char *)hello->out.base, (unsigned)hello->out.len);
    hello->write.data = hello;
    return uv_write(&hello->write, (uv_stream_t *)hello->tcp, &buf, 1, hello_write_cb) == 0
               ? 0
               : CAIRN_EIO;
}

static void hello_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct hello *hello = stream->data;
    int rv;

    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        hello_finish(hello, CAIRN_EIO);
        return;
    }
    rv = proto_reader_feed(&hello->reader, buf->base, (size_t)nread, hello_frame_cb, hello);
    if (rv != 0) {
        hello_finish(hello, rv);
        return;
    }
    if (!hello->received) {
        return; /* more of the frame to come */
    }
    uv_read_stop(stream);
    if (!hello->accepting) {
        hello_finish(hello, 0); /* the peer answered: the stream is libraft's */
        return;
    }
    if (!meta__mux_hosts(hello->mux, hello->group_id)) {
        hello_finish(hello, CAIRN_ENOENT);
        return;
    }
    rv = hello_send(hello); /* the answer; accepted in hello_write_cb() */
    if (rv != 0) {
        hello_finish(hello, rv);
    }
}

static void hello_write_cb(uv_write_t *write, int status)
{
    struct hello *hello = write->data;

    if (status != 0) {
        hello_finish(hello, CAIRN_EIO);
        return;
    }
    if (hello->accepting) {
        hello_finish(hello, 0);
        return;
    }
    if (uv_read_start((uv_stream_t *)hello->tcp, hello_alloc_cb, hello_read_cb) != 0) {
        hello_finish(hello, CAIRN_EIO);
    }
}

static void hello_connect_cb(uv_connect_t *connect, int status)
{
    struct hello *hello = connect->data;
    int rv;

    if (status != 0) {
        hello_finish(hello, CAIRN_EIO);
        return;
    }
    rv = hello_send(hello);
    if (rv != 0) {
        hello_finish(hello, rv);
    }
}

/* Parses "a.b.c.d:port". */
static int parse_address(const char *address, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    size_t host_len;

    if (colon == NULL || (host_len = (size_t)(colon - address)) >= sizeof(host)) {
        return CAIRN_EINVAL;
    }
    memcpy(host, address, host_len);
    host[host_len] = '\0';
    return uv_ip4_addr(host, atoi(colon + 1), addr) == 0 ? 0 : CAIRN_EINVAL;
}

static int tcp_connect(struct meta_mux_connector *connector,
                       struct meta_mux *mux,
                       uint64_t group_id,
                       const char *address,
                       meta_mux_connect_done done,
                       void *done_data)
{
    struct sockaddr_in addr;
    struct hello *hello;
    int rv;

    (void)connector;
    rv = parse_address(address, &addr);
    if (rv != 0) {
        return rv;
    }
    hello = hello_new(mux, false);
    hello->group_id = group_id;
    hello->done = done;
    hello->done_data = done_data;
    uv_tcp_init(meta__mux_loop(mux), hello->tcp);
    hello->connect.data = hello;
    if (uv_tcp_connect(&hello->connect, hello->tcp, (struct sockaddr *)&addr, hello_connect_cb) !=
        0) {
        /* Fail later, through the same path, so the mux sees one callback. */
        hello_finish(hello, CAIRN_EIO);
    }
    return 0;
}

void meta_tcp_connector_init(struct meta_mux_connector *connector)
{
    connector->connect = tcp_connect;
}

static void listener_connection_cb(uv_stream_t *listener, int status)
{
    struct meta_mux *mux = listener->data;
    struct hello *hello;

    if (status != 0) {
        return;
    }
    hello = hello_new(mux, true);
    uv_tcp_init(meta__mux_loop(mux), hello->tcp);
    if (uv_accept(listener, (uv_stream_t *)hello->tcp) != 0 ||
        uv_read_start((uv_stream_t *)hello->tcp, hello_alloc_cb, hello_read_cb) != 0) {
        hello_finish(hello, CAIRN_EIO);
    }
}

int meta__tcp_listen(struct meta_mux *mux, uv_tcp_t *listener, const char *address, char *errmsg)
{
    struct sockaddr_in addr;
    int rv;

    if (parse_address(address, &addr) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "listen: bad address %s", address);
    }
    uv_tcp_init(meta__mux_loop(mux), listener);
    listener->data = mux;
    rv = uv_tcp_bind(listener, (struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)listener, 128, listener_connection_cb);
    }
    if (rv != 0) {
        return cn_errmsgf(errmsg, CAIRN_EIO, "listen(%s): %s", address, uv_strerror(rv));
    }
    return 0;
}
