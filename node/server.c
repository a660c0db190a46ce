/*
 * The node port's listener: accepts connections up to a limit, runs each
 * through the channel handshake, and hands every verified frame to the owner.
 *
 * Possible failure modes: a connection over connections_max is accepted and
 * closed at once (counted in rejected); a connection that fails its
 * handshake or sends a bad frame is closed by conn.c (also counted) while
 * every other connection goes on being served.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

struct node_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct node_rpc_options options;
    uint8_t secret[NODE_SECRET_SIZE];
    node_frame_cb on_frame;
    void *data;
    struct node_conn *conns;
    unsigned conn_count;
    uint64_t rejected_count;
    bool listener_open;
    bool stopping;
    void (*stop_cb)(void *data);
    void *stop_data;
};

int node__parse_address(const char *address, struct sockaddr_in *addr)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    char *end;
    long port;

    if (colon == NULL || (size_t)(colon - address) >= sizeof(host) || colon == address) {
        return CAIRN_EINVAL;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535) {
        return CAIRN_EINVAL;
    }
    return uv_ip4_addr(host, (int)port, addr) == 0 ? 0 : CAIRN_EINVAL;
}

static void maybe_finish_stop(struct node_server *server)
{
    if (!server->stopping || server->listener_open || server->conn_count > 0) {
        return;
    }
    if (server->stop_cb != NULL) {
        server->stop_cb(server->stop_data);
    }
    sodium_memzero(server->secret, sizeof(server->secret));
    free(server);
}

static void conn_closed(struct node_conn *conn)
{
    struct node_server *server = conn->owner;
    struct node_conn **link = &server->conns;

    while (*link != conn) {
        link = &(*link)->next;
    }
    *link = conn->next;
    server->conn_count--;
    if (conn->close_reason != 0 && conn->close_reason != CAIRN_EIO) {
        server->rejected_count++;
    }
    maybe_finish_stop(server);
}

static void refused_close_cb(uv_handle_t *handle)
{
    free(handle);
}

static void connection_cb(uv_stream_t *listener, int status)
{
    struct node_server *server = listener->data;
    struct node_conn *conn;

    if (status != 0 || server->stopping) {
        return;
    }
    if (server->conn_count >= server->options.connections_max) {
        uv_tcp_t *refused = cn_xmalloc(sizeof(*refused));
        uv_tcp_init(server->loop, refused);
        if (uv_accept(listener, (uv_stream_t *)refused) == 0) {
            CN_LOG(CN_WARN, "connection refused", "reason=limit connections=%u",
                   server->conn_count);
        }
        server->rejected_count++;
        uv_close((uv_handle_t *)refused, refused_close_cb);
        return;
    }
    conn = node__conn_new(server->loop, &server->options, server->secret, false);
    conn->owner = server;
    conn->on_frame = server->on_frame;
    conn->frame_data = server->data;
    conn->on_close = conn_closed;
    conn->next = server->conns;
    server->conns = conn;
    server->conn_count++;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0 || node__conn_start(conn) != 0) {
        node__conn_close(conn, CAIRN_EIO);
    }
}

int node_server_start(uv_loop_t *loop,
                      const char *address,
                      const uint8_t secret[NODE_SECRET_SIZE],
                      const struct node_rpc_options *options,
                      node_frame_cb on_frame,
                      void *data,
                      struct node_server **out,
                      char *errmsg)
{
    struct node_server *server;
    struct sockaddr_in addr;
    int rv;

    if (node__parse_address(address, &addr) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "bad address %s (want ip:port)", address);
    }
    server = cn_xcalloc(1, sizeof(*server));
    server->loop = loop;
    server->options = *options;
    memcpy(server->secret, secret, NODE_SECRET_SIZE);
    server->on_frame = on_frame;
    server->data = data;
    CN_ASSERT(uv_tcp_init(loop, &server->listener) == 0);
    server->listener.data = server;
    server->listener_open = true;
    rv = uv_tcp_bind(&server->listener, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&server->listener, 511, connection_cb);
    }
    if (rv != 0) {
        cn_errmsgf(errmsg, CAIRN_EIO, "listen(%s): %s", address, uv_strerror(rv));
        server->stopping = true;
        node_server_stop(server, NULL, NULL);
        return CAIRN_EIO;
    }
    *out = server;
    return 0;
}

int node_server_port(const struct node_server *server)
{
    struct sockaddr_in addr;
    int len = sizeof(addr);

    if (uv_tcp_getsockname(&server->listener, (struct sockaddr *)&addr, &len) != 0) {
        return -1;
    }
    return ntohs(addr.sin_port);
}

unsigned node_server_connection_count(const struct node_server *server)
{
    return server->conn_count;
}

uint64_t node_server_rejected_count(const struct node_server *server)
{
    return server->rejected_count;
}

static void listener_close_cb(uv_handle_t *handle)
{
    struct node_server *server = handle->data;

    server->listener_open = false;
    maybe_finish_stop(server);
}

void node_server_stop(struct node_server *server, void (*cb)(void *data), void *data)
{
    server->stopping = true;
    server->stop_cb = cb;
    server->stop_data = data;
    for (struct node_conn *conn = server->conns; conn != NULL; conn = conn->next) {
        conn->was_quiet_close = true;
        node__conn_close(conn, 0);
    }
    uv_close((uv_handle_t *)&server->listener, listener_close_cb);
}
