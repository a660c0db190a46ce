/*
 * node_rpc over real loopback TCP, server and clients on one libuv loop:
 * calls and replies, errors, deadlines, back-pressure, limits, and peers that
 * are wrong in every way the issue lists — no secret, random bytes, silence —
 * while the server goes on serving everyone else.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node_rpc.h"
#include "test.h"

#define TYPE_ECHO       100
#define TYPE_FAIL       101
#define TYPE_IGNORE     102
#define RUN_DEADLINE_MS 20000

struct fixture {
    uv_loop_t loop;
    uint8_t secret[NODE_SECRET_SIZE];
    struct node_rpc_options options;
    struct node_server *server;
    char address[64];
    int served;
};

struct result {
    bool done;
    int rv;
    char payload[256];
    size_t len;
};

static void serve(void *data,
                  struct node_conn *conn,
                  const struct proto_frame_header *header,
                  const uint8_t *payload)
{
    struct fixture *f = data;

    f->served++;
    if (header->type == TYPE_ECHO) {
        CN_ASSERT(node_conn_send(conn, TYPE_ECHO, PROTO_FLAG_REPLY, header->request_id, payload,
                                 header->length) == 0);
    } else if (header->type == TYPE_FAIL) {
        CN_ASSERT(node_conn_send_error(conn, TYPE_FAIL, header->request_id, CAIRN_ENOENT,
                                       "no such chunk") == 0);
    }
}

static void start_server(struct fixture *f, const char *address)
{
    char errmsg[CN_ERRMSG_SIZE];

    CN_ASSERT(node_server_start(&f->loop, address, f->secret, &f->options, serve, f, &f->server,
                                errmsg) == 0);
    snprintf(f->address, sizeof(f->address), "127.0.0.1:%d", node_server_port(f->server));
}

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    cn_log_set_level(CN_ERROR); /* the refusals below are expected */
    CN_ASSERT(uv_loop_init(&f->loop) == 0);
    randombytes_buf(f->secret, sizeof(f->secret));
    node_rpc_options_init(&f->options);
    f->options.handshake_timeout_ms = 500;
    f->options.stall_timeout_ms = 500;
    start_server(f, "127.0.0.1:0");
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    if (f->server != NULL) {
        node_server_stop(f->server, NULL, NULL);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    CN_ASSERT(uv_loop_close(&f->loop) == 0);
    cn_log_set_level(CN_INFO);
    free(f);
}

static void on_reply(void *data,
                     int rv,
                     const struct proto_frame_header *header,
                     const uint8_t *payload)
{
    struct result *result = data;

    CN_ASSERT(!result->done); /* exactly once */
    result->done = true;
    result->rv = rv;
    if (rv == 0) {
        result->len = CN_MIN(header->length, sizeof(result->payload));
        memcpy(result->payload, payload, result->len);
    }
}

/* Runs the loop until *flag is true, or fails the test after a generous deadline. */
static void run_until(struct fixture *f, bool (*cond)(void *), void *arg)
{
    uint64_t deadline = uv_now(&f->loop) + RUN_DEADLINE_MS;

    while (!cond(arg)) {
        uv_update_time(&f->loop);
        if (uv_now(&f->loop) > deadline) {
            cn_test_fail(__FILE__, __LINE__, "condition not reached in %d ms", RUN_DEADLINE_MS);
        }
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static bool result_done(void *arg)
{
    return ((struct result *)arg)->done;
}

static int call_sync(struct fixture *f,
                     struct node_client *client,
                     uint16_t type,
                     const char *text,
                     struct result *result)
{
    int rv;

    memset(result, 0, sizeof(*result));
    rv = node_client_call(client, type, text, strlen(text), 5000, on_reply, result);
    if (rv != 0) {
        return rv;
    }
    run_until(f, result_done, result);
    return result->rv;
}

TEST(rpc, call_and_reply, setup, teardown)
{
    struct fixture *f = data;
    struct node_client *client = node_client_new(&f->loop, f->address, f->secret, &f->options);
    struct result result;

    ASSERT_OK(call_sync(f, client, TYPE_ECHO, "hello node", &result));
    ASSERT_EQ(result.len, 10);
    ASSERT_MEM_EQ(result.payload, "hello node", 10);
    /* The connection is reused. */
    ASSERT_OK(call_sync(f, client, TYPE_ECHO, "again", &result));
    ASSERT_EQ(node_server_connection_count(f->server), 1);
    node_client_free(client);
}

struct many {
    struct result results[100];
};

static bool many_done(void *arg)
{
    struct many *many = arg;

    for (size_t i = 0; i < CN_ARRAY_SIZE(many->results); i++) {
        if (!many->results[i].done) {
            return false;
        }
    }
    return true;
}

TEST(rpc, many_concurrent_calls_match_their_replies, setup, teardown)
{
    struct fixture *f = data;
    struct node_client *client = node_client_new(&f->loop, f->address, f->secret, &f->options);
    struct many *many = cn_xcalloc(1, sizeof(*many));
    char text[32];

    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "call %d", i);
        ASSERT_OK(node_client_call(client, TYPE_ECHO, text, strlen(text), 5000, on_reply,
                                   &many->results[i]));
    }
    run_until(f, many_done, many);
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof(text), "call %d", i);
        ASSERT_OK(many->results[i].rv);
        ASSERT_EQ(many->results[i].len, strlen(text));
        ASSERT_MEM_EQ(many->results[i].payload, text, strlen(text));
    }
    free(many);
    node_client_free(client);
}

TEST(rpc, error_reply_carries_the_code, setup, teardown)
{
    struct fixture *f = data;
    struct node_client *client = node_client_new(&f->loop, f->address, f->secret, &f->options);
    struct result result;

    ASSERT_ERR(call_sync(f, client, TYPE_FAIL, "chunk 7", &result), CAIRN_ENOENT);
    node_client_free(client);
}

TEST(rpc, deadline_passes, setup, teardown)
{
    struct fixture *f = data;
    struct node_client *client = node_client_new(&f->loop, f->address, f->secret, &f->options);
    struct result result = {0};

    ASSERT_OK(node_client_call(client, TYPE_IGNORE, "x", 1, 100, on_reply, &result));
    run_until(f, result_done, &result);
    ASSERT_ERR(result.rv, CAIRN_ETIMEOUT);
    /* The connection still serves the next call. */
    ASSERT_OK(call_sync(f, client, TYPE_ECHO, "still here", &result));
    node_client_free(client);
}

TEST(rpc, back_pressure_refuses_calls_over_the_limit, setup, teardown)
{
    struct fixture *f = data;
    struct node_rpc_options options = f->options;
    struct node_client *client;
    struct result results[5] = {0};

    options.calls_in_flight_max = 4;
    client = node_client_new(&f->loop, f->address, f->secret, &options);
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(node_client_call(client, TYPE_ECHO, "x", 1, 5000, on_reply, &results[i]));
    }
    ASSERT_ERR(node_client_call(client, TYPE_ECHO, "x", 1, 5000, on_reply, &results[4]),
               CAIRN_EBUSY);
    run_until(f, result_done, &results[3]);
    ASSERT_OK(call_sync(f, client, TYPE_ECHO, "room again", &results[4]));
    node_client_free(client);
}

TEST(rpc, client_without_secret_is_refused, setup, teardown)
{
    struct fixture *f = data;
    uint8_t wrong[NODE_SECRET_SIZE];
    struct node_client *stranger, *member;
    struct result result;

    randombytes_buf(wrong, sizeof(wrong));
    stranger = node_client_new(&f->loop, f->address, wrong, &f->options);
    ASSERT_ERR(call_sync(f, stranger, TYPE_ECHO, "let me in", &result), CAIRN_EAUTH);
    ASSERT_EQ(f->served, 0); /* no command of theirs was read */
    ASSERT_CMP(node_server_rejected_count(f->server), >=, 1);
    member = node_client_new(&f->loop, f->address, f->secret, &f->options);
    ASSERT_OK(call_sync(f, member, TYPE_ECHO, "member", &result));
    node_client_free(stranger);
    node_client_free(member);
}

static int raw_connect(const struct fixture *f)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CN_ASSERT(fd >= 0);
    addr.sin_port = htons((uint16_t)node_server_port(f->server));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    CN_ASSERT(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    return fd;
}

struct watch {
    struct fixture *f;
    uint64_t rejected_before;
};

static bool one_more_rejected(void *arg)
{
    struct watch *watch = arg;

    return node_server_rejected_count(watch->f->server) > watch->rejected_before;
}

/* Sends bytes on a raw socket and waits until the server cuts it off. */
static void expect_cut_off(struct fixture *f, const void *bytes, size_t len)
{
    struct watch watch = {f, node_server_rejected_count(f->server)};
    int fd = raw_connect(f);
    char buf[16];

    if (len > 0) {
        CN_ASSERT(write(fd, bytes, len) == (ssize_t)len);
    }
    run_until(f, one_more_rejected, &watch);
    CN_ASSERT(read(fd, buf, sizeof(buf)) <= 0); /* closed by the server */
    close(fd);
}

TEST(rpc, bad_peers_are_cut_off_and_others_served, setup, teardown)
{
    struct fixture *f = data;
    struct node_client *member = node_client_new(&f->loop, f->address, f->secret, &f->options);
    uint8_t noise[4096];
    struct cn_rand rand;
    struct result result;

    ASSERT_OK(call_sync(f, member, TYPE_ECHO, "before", &result));
    cn_rand_seed(&rand, cn_test_seed());
    cn_rand_fill(&rand, noise, sizeof(noise));
    expect_cut_off(f, noise, sizeof(noise)); /* random bytes */
    expect_cut_off(f,
                   "GET / HTTP/1.1\r\n\r\n"
                   "................................................"
                   ".............",
                   72);           /* another protocol */
    expect_cut_off(f, "CRNH", 4); /* a truncated hello */
    expect_cut_off(f, NULL, 0);   /* silence */
    ASSERT_EQ(f->served, 1);
    ASSERT_OK(call_sync(f, member, TYPE_ECHO, "after", &result));
    ASSERT_MEM_EQ(result.payload, "after", 5);
    node_client_free(member);
}

TEST(rpc, connection_limit, setup, teardown)
{
    struct fixture *f = data;
    struct node_client *clients[3];
    struct result result;

    node_server_stop(f->server, NULL, NULL);
    f->options.connections_max = 2;
    start_server(f, "127.0.0.1:0");
    for (int i = 0; i < 3; i++) {
        clients[i] = node_client_new(&f->loop, f->address, f->secret, &f->options);
    }
    ASSERT_OK(call_sync(f, clients[0], TYPE_ECHO, "one", &result));
    ASSERT_OK(call_sync(f, clients[1], TYPE_ECHO, "two", &result));
    ASSERT_NE(call_sync(f, clients[2], TYPE_ECHO, "three", &result), 0);
    ASSERT_EQ(node_server_connection_count(f->server), 2);
    node_client_free(clients[0]);
    ASSERT_OK(call_sync(f, clients[1], TYPE_ECHO, "two again", &result));
    for (int i = 1; i < 3; i++) {
        node_client_free(clients[i]);
    }
}

static bool server_stopped(void *arg)
{
    return *(bool *)arg;
}

static void mark_stopped(void *arg)
{
    *(bool *)arg = true;
}

TEST(rpc, reconnects_after_the_server_returns, setup, teardown)
{
    struct fixture *f = data;
    struct node_client *client = node_client_new(&f->loop, f->address, f->secret, &f->options);
    char address[64];
    bool stopped = false;
    struct result result;

    ASSERT_OK(call_sync(f, client, TYPE_ECHO, "first", &result));
    snprintf(address, sizeof(address), "%s", f->address);
    node_server_stop(f->server, mark_stopped, &stopped);
    run_until(f, server_stopped, &stopped);
    f->server = NULL;
    ASSERT_NE(call_sync(f, client, TYPE_ECHO, "nobody home", &result), 0);
    start_server(f, address);
    ASSERT_OK(call_sync(f, client, TYPE_ECHO, "back", &result));
    ASSERT_MEM_EQ(result.payload, "back", 4);
    node_client_free(client);
}

TEST(rpc, bad_address, setup, teardown)
{
    struct fixture *f = data;
    struct node_server *server;
    char errmsg[CN_ERRMSG_SIZE];
    struct node_client *client = node_client_new(&f->loop, "nowhere", f->secret, &f->options);
    struct result result;

    ASSERT_ERR(
        node_server_start(&f->loop, "localhost", f->secret, &f->options, serve, f, &server, errmsg),
        CAIRN_EINVAL);
    ASSERT_ERR(
        node_server_start(&f->loop, f->address, f->secret, &f->options, serve, f, &server, errmsg),
        CAIRN_EIO); /* in use */
    ASSERT_ERR(node_client_call(client, TYPE_ECHO, "x", 1, 100, on_reply, &result), CAIRN_EINVAL);
    node_client_free(client);
}
