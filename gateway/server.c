/*
 * The listening socket: accepting connections, the connection limit, and
 * closing the server.
 *
 * The happy path: gw_server_new() binds and listens; each accepted
 * connection is linked into server->conns and handed to conn.c; when its
 * handles are closed, conn.c calls gw__server_conn_closed(), which unlinks
 * and frees it. gw_server_close() stops listening and fails every
 * connection; its callback runs once the listener and the last connection
 * are closed (the one gate, server_maybe_fire_close_cb()). With a drain
 * time, requests in flight may finish first (rolling restarts behind the
 * balancer lose no upload that was nearly done).
 *
 * Possible failure modes:
 * - a bad config or address: CAIRN_EINVAL; the address in use: CAIRN_EIO,
 *   with the text in errmsg;
 * - more than conn_count_max connections: the new one is answered with a
 *   canned 503 (written without blocking, it fits the socket buffer) and
 *   closed; whatever the client had sent is drained first, so that the close
 *   is a FIN, not a reset that would destroy the 503;
 * - accept failing (out of file descriptors): logged, the listener goes on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gw_int.h"

#define LISTEN_BACKLOG 511

static void server_end_drain(struct gw_server *server);

void gw_config_init(struct gw_config *config)
{
    memset(config, 0, sizeof(*config));
    config->host = "127.0.0.1";
    config->port = 0;
    config->conn_count_max = 1024;
    config->body_size_max = 10ull << 30;
    config->url_size_max = 8u << 10;
    config->head_size_max = 32u << 10;
    config->header_count_max = 100;
    config->idle_timeout_ms = 60000;
    config->head_timeout_ms = 10000;
    config->body_timeout_ms = 30000;
    config->write_timeout_ms = 30000;
    config->linger_timeout_ms = 2000;
}

static int config_check(const struct gw_config *config, char *errmsg)
{
    if (config->host == NULL || config->conn_count_max == 0 || config->header_count_max == 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL,
                          "gateway config: host, connection and header "
                          "limits must be set");
    }
    if (config->url_size_max == 0 || config->url_size_max > config->head_size_max ||
        config->head_size_max > UINT32_MAX / 2) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL,
                          "gateway config: need 0 < url_size_max <= "
                          "head_size_max < 2 GiB");
    }
    if (config->idle_timeout_ms == 0 || config->head_timeout_ms == 0 ||
        config->body_timeout_ms == 0 || config->write_timeout_ms == 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "gateway config: timeouts must be positive");
    }
    return 0;
}

static void server_maybe_fire_close_cb(struct gw_server *server)
{
    if (!server->closing || server->close_pending > 0 || server->conns != NULL) {
        return;
    }
    if (server->close_cb != NULL) {
        server->close_cb(server, server->close_data);
    }
    free(server);
}

void gw__server_conn_closed(struct gw_server *server, struct gw__conn *conn)
{
    CN_ASSERT(server->stats.conn_count > 0);
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        CN_ASSERT(server->conns == conn);
        server->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    server->stats.conn_count--;
    free(conn);
    if (server->closing && server->conns == NULL) {
        server_end_drain(server); /* Drained before the deadline */
    }
    server_maybe_fire_close_cb(server);
}

static void free_handle_cb(uv_handle_t *handle)
{
    free(handle);
}

/* Over the limit: the canned 503, then close. Best effort, by design. */
static void server_reject(struct gw_server *server, uv_tcp_t *tcp)
{
    uv_buf_t buf = uv_buf_init((char *)gw__reject_response, (unsigned)strlen(gw__reject_response));
    char sink[4096];
    uv_os_fd_t fd;
    int i;

    server->stats.reject_count++;
    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0) {
        /* Drain what already arrived, so the close is not a reset. */
        for (i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++) {
        }
    }
    (void)uv_try_write((uv_stream_t *)tcp, &buf, 1);
    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0) {
        shutdown(fd, SHUT_WR);
    }
    uv_close((uv_handle_t *)tcp, free_handle_cb);
}

static void free_conn_cb(uv_handle_t *handle)
{
    free(CN_CONTAINER_OF(handle, struct gw__conn, tcp));
}

/* Accepts a connection only to refuse it. */
static void server_refuse(struct gw_server *server, uv_stream_t *listen)
{
    uv_tcp_t *tcp = cn_xmalloc(sizeof(*tcp));
    int rv;

    rv = uv_tcp_init(server->loop, tcp);
    CN_ASSERT(rv == 0);
    if (uv_accept(listen, (uv_stream_t *)tcp) == 0 && !server->closing) {
        server_reject(server, tcp);
        return;
    }
    uv_close((uv_handle_t *)tcp, free_handle_cb);
}

static void server_on_connection(uv_stream_t *listen, int status)
{
    struct gw_server *server = listen->data;
    struct gw__conn *conn;
    int rv;

    if (status < 0) {
        CN_LOG(CN_WARN, "accept failed", "err=%s", uv_strerror(status));
        return;
    }
    if (server->closing || server->stats.conn_count >= server->config.conn_count_max) {
        server_refuse(server, listen);
        return;
    }
    conn = cn_xcalloc(1, sizeof(*conn));
    rv = uv_tcp_init(server->loop, &conn->tcp);
    CN_ASSERT(rv == 0);
    rv = uv_accept(listen, (uv_stream_t *)&conn->tcp);
    if (rv != 0) {
        CN_LOG(CN_WARN, "accept failed", "err=%s", uv_strerror(rv));
        uv_close((uv_handle_t *)&conn->tcp, free_conn_cb);
        return;
    }
    conn->next = server->conns;
    if (server->conns != NULL) {
        server->conns->prev = conn;
    }
    server->conns = conn;
    server->stats.conn_count++;
    server->stats.accept_count++;
    gw__conn_start(server, conn);
}

static int server_bind(struct gw_server *server, char *errmsg)
{
    struct sockaddr_storage addr;
    int namelen = sizeof(addr);
    int rv;

    rv = uv_ip4_addr(server->config.host, server->config.port, (struct sockaddr_in *)&addr);
    if (rv != 0) {
        rv = uv_ip6_addr(server->config.host, server->config.port, (struct sockaddr_in6 *)&addr);
    }
    if (rv != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "gateway: bad address \"%s\"", server->config.host);
    }
    rv = uv_tcp_bind(&server->listen, (const struct sockaddr *)&addr, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&server->listen, LISTEN_BACKLOG, server_on_connection);
    }
    if (rv == 0) {
        rv = uv_tcp_getsockname(&server->listen, (struct sockaddr *)&addr, &namelen);
    }
    if (rv != 0) {
        return gw__err_from_uv(rv, errmsg, "listen");
    }
    server->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                    : ((struct sockaddr_in *)&addr)->sin_port);
    return 0;
}

static void server_free_cb(uv_handle_t *handle)
{
    free(CN_CONTAINER_OF(handle, struct gw_server, listen));
}

int gw_server_new(uv_loop_t *loop,
                  const struct gw_config *config,
                  const struct gw_router *router,
                  struct gw_server **out,
                  char *errmsg)
{
    struct gw_server *server;
    int rv;

    CN_ASSERT(loop != NULL);
    CN_ASSERT(router != NULL);
    rv = config_check(config, errmsg);
    if (rv != 0) {
        return rv;
    }
    server = cn_xcalloc(1, sizeof(*server));
    server->loop = loop;
    server->config = *config;
    server->router = router;
    rv = uv_tcp_init(loop, &server->listen);
    CN_ASSERT(rv == 0);
    server->listen.data = server;
    rv = server_bind(server, errmsg);
    if (rv != 0) {
        goto err_close_listen;
    }
    *out = server;
    return 0;

err_close_listen:
    uv_close((uv_handle_t *)&server->listen, server_free_cb);
    return rv;
}

uint16_t gw_server_port(const struct gw_server *server)
{
    return server->port;
}

void gw_server_stats(const struct gw_server *server, struct gw_server_stats *stats)
{
    *stats = server->stats;
}

static void server_handle_close_cb(uv_handle_t *handle)
{
    struct gw_server *server = handle->data;

    CN_ASSERT(server->close_pending > 0);
    server->close_pending--;
    server_maybe_fire_close_cb(server);
}

/* Ends the drain: the timer goes, and so does every connection left. */
static void server_end_drain(struct gw_server *server)
{
    struct gw__conn *conn;

    if (server->drain_closing) {
        return;
    }
    server->drain_closing = true;
    uv_close((uv_handle_t *)&server->drain_timer, server_handle_close_cb);
    for (conn = server->conns; conn != NULL; conn = conn->next) {
        gw__conn_fail(conn, CAIRN_ECANCELED);
    }
}

static void server_drain_timer_cb(uv_timer_t *timer)
{
    struct gw_server *server = timer->data;

    CN_LOG(CN_INFO, "drain over", "conns=%u", server->stats.conn_count);
    server_end_drain(server);
}

void gw_server_close(struct gw_server *server, uint64_t drain_ms, gw_server_close_cb cb, void *data)
{
    struct gw__conn *conn;
    int rv;

    CN_ASSERT(!server->closing);
    server->closing = true;
    server->close_cb = cb;
    server->close_data = data;
    server->close_pending = 2; /* The listener and the drain timer */
    uv_close((uv_handle_t *)&server->listen, server_handle_close_cb);
    rv = uv_timer_init(server->loop, &server->drain_timer);
    CN_ASSERT(rv == 0);
    server->drain_timer.data = server;
    if (drain_ms == 0 || server->conns == NULL) {
        server_end_drain(server);
        return;
    }
    uv_timer_start(&server->drain_timer, server_drain_timer_cb, drain_ms, 0);
    for (conn = server->conns; conn != NULL; conn = conn->next) {
        gw__conn_kick(conn); /* Idle ones close; busy ones close after their answer. */
    }
}
