/* The server in-process, over loopback: the loop runs on the test's thread,
 * a client thread speaks raw HTTP with blocking sockets. What the handlers
 * saw (bytes, on_end and on_done codes) is checked after the loop ends, so
 * these tests also give the sanitizer build a look at conn.c and req.c:
 * pausing and resuming, waiting producers, 100-continue refusals, timeouts
 * of each phase, and closing the server under open requests. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gw_int.h"
#include "test.h"

#define RESPONSE_MAX (1u << 20)

struct fixture {
    uv_loop_t loop;
    uv_async_t client_done;
    uv_async_t close_now; /* The client asks for gw_server_close() mid-request */
    uv_timer_t timer;     /* Resumes a paused upload, wakes a waiting producer */
    struct gw_config config;
    struct gw_router *router;
    struct gw_server *server;
    uint16_t port;
    bool closing;
    uint64_t drain_ms; /* For gw_server_close() */
    bool wake_inline;  /* The producer wakes itself from inside produce() */
    pthread_t thread;
    void (*client)(struct fixture *f);
    /* What the client saw */
    char response[RESPONSE_MAX];
    size_t response_len;
    size_t read_total; /* All bytes read, also past RESPONSE_MAX */
    /* What the handlers saw */
    struct gw_req *req;
    uint64_t body_bytes;
    int end_rv;
    int done_rv;
    unsigned done_count;
    unsigned end_count;
    bool producer_gave;
    uint64_t produced, download_size;
};

/* ---- Client side (its own thread) ---- */

static int client_connect(struct fixture *f)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CN_ASSERT(fd >= 0);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CN_ASSERT(connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
    return fd;
}

static void client_send(int fd, const void *data, size_t len)
{
    CN_ASSERT(send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Reads until EOF (or an error), keeping the first RESPONSE_MAX bytes. */
static void client_read_all(struct fixture *f, int fd)
{
    char sink[65536];
    ssize_t n;

    f->response_len = 0;
    while ((n = recv(fd, sink, sizeof(sink), 0)) > 0) {
        f->read_total += (size_t)n;
        size_t keep = CN_MIN((size_t)n, RESPONSE_MAX - 1 - f->response_len);
        memcpy(f->response + f->response_len, sink, keep);
        f->response_len += keep;
    }
    f->response[f->response_len] = '\0';
}

static void *client_main(void *arg)
{
    struct fixture *f = arg;

    f->client(f);
    uv_async_send(&f->client_done);
    return NULL;
}

/* ---- Server side (the loop) ---- */

static void on_closed(struct gw_server *server, void *data)
{
    struct fixture *f = data;

    (void)server;
    f->server = NULL;
    uv_close((uv_handle_t *)&f->client_done, NULL);
    uv_close((uv_handle_t *)&f->close_now, NULL);
    uv_close((uv_handle_t *)&f->timer, NULL);
}

static void on_client_done(uv_async_t *async)
{
    struct fixture *f = async->data;

    if (f->server != NULL && !f->closing) {
        f->closing = true;
        gw_server_close(f->server, f->drain_ms, on_closed, f);
    }
}

static void on_close_now(uv_async_t *async)
{
    on_client_done(async);
}

static void done_cb(struct gw_req *req, int rv)
{
    struct fixture *f = gw_req_data(req);

    f->done_rv = rv;
    __atomic_add_fetch(&f->done_count, 1, __ATOMIC_RELEASE);
    f->req = NULL;
    uv_timer_stop(&f->timer);
}

static void resume_timer_cb(uv_timer_t *timer)
{
    struct fixture *f = timer->data;

    if (f->req != NULL) {
        gw_req_resume(f->req);
    }
}

static void upload_body_cb(struct gw_req *req, const uint8_t *data, size_t len)
{
    struct fixture *f = gw_req_data(req);

    (void)data;
    __atomic_add_fetch(&f->body_bytes, len, __ATOMIC_RELEASE);
    gw_req_pause(req); /* A slow consumer: resume on the next loop turn. */
    uv_timer_start(&f->timer, resume_timer_cb, 0, 0);
}

static void upload_end_cb(struct gw_req *req, int rv)
{
    struct fixture *f = gw_req_data(req);

    f->end_count++;
    f->end_rv = rv;
    if (rv == 0) {
        gw_respond(req, 200, "text/plain", "stored", 6);
    }
}

static void upload_handler(struct gw_req *req, void *data)
{
    struct fixture *f = data;

    f->req = req;
    gw_req_set_data(req, f);
    gw_req_on_done(req, done_cb);
    if (gw_req_content_length(req) > 100000) {
        gw_respond_error(req, CAIRN_ETOOBIG, "at most 100000 bytes here");
        return;
    }
    gw_req_read_body(req, upload_body_cb, upload_end_cb);
}

static void wake_timer_cb(uv_timer_t *timer)
{
    struct fixture *f = timer->data;

    if (f->req != NULL) {
        gw_resp_wake(f->req);
    }
}

static int download_produce(struct gw_req *req, uint8_t *buf, size_t cap, size_t *len, bool *eof)
{
    struct fixture *f = gw_req_data(req);
    size_t n = (size_t)CN_MIN((uint64_t)cap, f->download_size - f->produced);

    if (f->producer_gave) {
        f->producer_gave = false; /* Nothing every other time: wake later. */
        *len = 0;
        *eof = false;
        if (f->wake_inline) {
            gw_resp_wake(req); /* Data "arrived" already: must not be lost. */
        } else {
            uv_timer_start(&f->timer, wake_timer_cb, 1, 0);
        }
        return 0;
    }
    f->producer_gave = true;
    memset(buf, 'd', n);
    f->produced += n;
    *len = n;
    *eof = f->produced == f->download_size;
    return 0;
}

static void download_handler(struct gw_req *req, void *data)
{
    struct fixture *f = data;

    f->req = req;
    gw_req_set_data(req, f);
    gw_req_on_done(req, done_cb);
    gw_respond_stream(req, 200,
                      strcmp(gw_req_query(req), "chunked") == 0 ? -1 : (int64_t)f->download_size,
                      download_produce);
}

/* Never answers: a long poll with no news. */
static void hang_handler(struct gw_req *req, void *data)
{
    struct fixture *f = data;

    f->req = req;
    gw_req_set_data(req, f);
    gw_req_on_done(req, done_cb);
}

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    gw_config_init(&f->config);
    /* Timeouts stay at their defaults (seconds) unless a test is about one:
     * a loaded machine must not make the others time out. */
    f->config.linger_timeout_ms = 300;
    CN_ASSERT(uv_loop_init(&f->loop) == 0);
    f->router = gw_router_new();
    ASSERT_OK(gw_router_add(f->router, "PUT", "/upload", upload_handler, f));
    ASSERT_OK(gw_router_add(f->router, "GET", "/download", download_handler, f));
    ASSERT_OK(gw_router_add(f->router, "GET", "/hang", hang_handler, f));
    uv_async_init(&f->loop, &f->client_done, on_client_done);
    uv_async_init(&f->loop, &f->close_now, on_close_now);
    uv_timer_init(&f->loop, &f->timer);
    f->client_done.data = f->close_now.data = f->timer.data = f;
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    gw_router_free(f->router);
    CN_ASSERT(uv_loop_close(&f->loop) == 0);
    free(f);
}

/* Starts the server, runs client on its thread and the loop here until the
 * server is closed. */
static void run(struct fixture *f, void (*client)(struct fixture *f))
{
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_OK(gw_server_new(&f->loop, &f->config, f->router, &f->server, errmsg));
    f->port = gw_server_port(f->server);
    f->client = client;
    CN_ASSERT(pthread_create(&f->thread, NULL, client_main, f) == 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    CN_ASSERT(pthread_join(f->thread, NULL) == 0);
    ASSERT_TRUE(f->server == NULL);
}

static int response_status(const struct fixture *f)
{
    int status = 0;

    sscanf(f->response, "HTTP/1.1 %d", &status);
    return status;
}

/* ---- Tests ---- */

static void client_upload_paused(struct fixture *f)
{
    static char body[100000];
    char head[256];
    int fd = client_connect(f);

    memset(body, 'u', sizeof(body));
    snprintf(head, sizeof(head),
             "PUT /upload HTTP/1.1\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             sizeof(body));
    client_send(fd, head, strlen(head));
    client_send(fd, body, sizeof(body));
    client_read_all(f, fd);
    close(fd);
}

TEST(server, upload_with_pause_and_resume, setup, teardown)
{
    struct fixture *f = data;

    run(f, client_upload_paused);
    ASSERT_EQ(response_status(f), 200);
    ASSERT_TRUE(strstr(f->response, "\r\n\r\nstored") != NULL);
    ASSERT_EQ(f->body_bytes, 100000);
    ASSERT_EQ(f->end_count, 1);
    ASSERT_EQ(f->end_rv, 0);
    ASSERT_EQ(f->done_count, 1);
    ASSERT_EQ(f->done_rv, 0);
}

static void client_expect_refused(struct fixture *f)
{
    const char *head = "PUT /upload HTTP/1.1\r\nContent-Length: 200000\r\n"
                       "Expect: 100-continue\r\n\r\n";
    int fd = client_connect(f);

    client_send(fd, head, strlen(head));
    client_read_all(f, fd); /* Never sends the body: the server must answer and close. */
    close(fd);
}

TEST(server, expect_continue_refused_without_reading, setup, teardown)
{
    struct fixture *f = data;

    run(f, client_expect_refused);
    ASSERT_EQ(response_status(f), 413);
    ASSERT_TRUE(strstr(f->response, "100 Continue") == NULL);
    ASSERT_TRUE(strstr(f->response, "\"payload_too_large\"") != NULL);
    ASSERT_EQ(f->body_bytes, 0);
    ASSERT_EQ(f->end_count, 0);
    ASSERT_EQ(f->done_count, 1);
    ASSERT_EQ(f->done_rv, 0);
}

static void client_download(struct fixture *f, const char *target)
{
    char head[256];
    int fd = client_connect(f);

    snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nConnection: close\r\n\r\n", target);
    client_send(fd, head, strlen(head));
    client_read_all(f, fd);
    close(fd);
}

static void client_download_chunked(struct fixture *f)
{
    client_download(f, "/download?chunked");
}

TEST(server, chunked_download_with_waiting_producer, setup, teardown)
{
    struct fixture *f = data;
    const char *body;
    size_t total = 0;

    f->download_size = 300000;
    run(f, client_download_chunked);
    ASSERT_EQ(response_status(f), 200);
    ASSERT_TRUE(strstr(f->response, "Transfer-Encoding: chunked\r\n") != NULL);
    /* Walk the chunks: sizes add up and the last chunk ends the body. */
    body = strstr(f->response, "\r\n\r\n") + 4;
    for (;;) {
        char *end;
        unsigned long size = strtoul(body, &end, 16);
        ASSERT_TRUE(end[0] == '\r' && end[1] == '\n');
        if (size == 0) {
            ASSERT_STR_EQ(end, "\r\n\r\n");
            break;
        }
        total += size;
        body = end + 2 + size;
        ASSERT_TRUE(body[0] == '\r' && body[1] == '\n');
        body += 2;
    }
    ASSERT_EQ(total, 300000);
    ASSERT_EQ(f->done_rv, 0);
}

static void client_never_reads(struct fixture *f)
{
    const char *head = "GET /download HTTP/1.1\r\n\r\n";
    int fd = client_connect(f);
    int small = 4096;
    char byte;

    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    client_send(fd, head, strlen(head));
    /* Do not read: the server's write stalls, its write timeout closes us. */
    usleep(100 * 1000);
    while (recv(fd, &byte, 1, MSG_PEEK) > 0 &&
           __atomic_load_n(&f->done_count, __ATOMIC_ACQUIRE) == 0) {
        usleep(50 * 1000);
    }
    close(fd);
}

TEST(server, write_timeout_ends_a_stalled_download, setup, teardown)
{
    struct fixture *f = data;

    f->config.write_timeout_ms = 300;
    f->download_size = 1ull << 30;
    run(f, client_never_reads);
    ASSERT_EQ(f->done_count, 1);
    ASSERT_ERR(f->done_rv, CAIRN_ETIMEOUT);
    ASSERT_CMP(f->produced, <, f->download_size);
}

static void client_short_body(struct fixture *f)
{
    const char *req = "PUT /upload HTTP/1.1\r\nContent-Length: 100\r\n\r\nonly-ten..";
    int fd = client_connect(f);

    client_send(fd, req, strlen(req));
    client_read_all(f, fd); /* The body timeout answers 408 and closes. */
    close(fd);
}

TEST(server, body_timeout_is_408, setup, teardown)
{
    struct fixture *f = data;

    f->config.body_timeout_ms = 300;
    run(f, client_short_body);
    ASSERT_EQ(response_status(f), 408);
    ASSERT_EQ(f->end_count, 1);
    ASSERT_ERR(f->end_rv, CAIRN_ETIMEOUT);
    ASSERT_EQ(f->done_count, 1);
}

static void client_slow_head(struct fixture *f)
{
    const char *head = "GET /download HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int fd = client_connect(f);
    size_t i;

    for (i = 0; i < strlen(head); i++) {
        if (send(fd, head + i, 1, MSG_NOSIGNAL) != 1) {
            break;
        }
        usleep(20 * 1000); /* 36 bytes over ~0.7 s: past the 300 ms head deadline */
    }
    client_read_all(f, fd);
    close(fd);
}

TEST(server, slow_head_is_408, setup, teardown)
{
    struct fixture *f = data;

    f->config.head_timeout_ms = 300;
    run(f, client_slow_head);
    ASSERT_EQ(response_status(f), 408);
    ASSERT_EQ(f->done_count, 0); /* No handler ever saw it. */
}

static void client_close_mid_upload(struct fixture *f)
{
    const char *req = "PUT /upload HTTP/1.1\r\nContent-Length: 1000\r\n\r\nsome";
    int fd = client_connect(f);

    client_send(fd, req, strlen(req));
    while (__atomic_load_n(&f->body_bytes, __ATOMIC_ACQUIRE) == 0) {
        usleep(1000); /* Until the handler has the first piece */
    }
    uv_async_send(&f->close_now);
    client_read_all(f, fd); /* The server closes the connection. */
    close(fd);
}

TEST(server, close_with_a_request_in_flight, setup, teardown)
{
    struct fixture *f = data;

    run(f, client_close_mid_upload);
    ASSERT_EQ(f->end_count, 1);
    ASSERT_ERR(f->end_rv, CAIRN_ECANCELED);
    ASSERT_EQ(f->done_count, 1);
    ASSERT_ERR(f->done_rv, CAIRN_ECANCELED);
    ASSERT_EQ(f->response_len, 0);
}

static void client_leaves_long_poll(struct fixture *f)
{
    const char *req = "GET /hang HTTP/1.1\r\n\r\nGET /hang HTTP/1.1\r\n\r\n";
    int fd = client_connect(f);

    client_send(fd, req, strlen(req)); /* The second waits, unparsed, behind the first. */
    usleep(50 * 1000);
    close(fd);
    while (__atomic_load_n(&f->done_count, __ATOMIC_ACQUIRE) == 0) {
        usleep(1000);
    }
}

TEST(server, client_leaving_a_long_poll_ends_it, setup, teardown)
{
    struct fixture *f = data;

    run(f, client_leaves_long_poll);
    ASSERT_EQ(f->done_count, 1); /* Only the first request was ever parsed. */
    ASSERT_ERR(f->done_rv, CAIRN_ECANCELED);
}

static void client_download_during_drain(struct fixture *f)
{
    const char *head = "GET /download HTTP/1.1\r\n\r\n";
    char first[1024];
    int fd = client_connect(f);
    ssize_t n;

    client_send(fd, head, strlen(head));
    n = recv(fd, first, sizeof(first), 0);
    CN_ASSERT(n > 0); /* The answer has begun. */
    f->read_total += (size_t)n;
    uv_async_send(&f->close_now);
    client_read_all(f, fd); /* The rest of it, then the close. */
    close(fd);
}

TEST(server, close_drains_a_download_in_flight, setup, teardown)
{
    struct fixture *f = data;

    f->drain_ms = 30000;
    f->download_size = 5u << 20;
    run(f, client_download_during_drain);
    ASSERT_EQ(f->done_count, 1);
    ASSERT_EQ(f->done_rv, 0);
    ASSERT_EQ(f->produced, f->download_size);
    /* The whole body arrived, after a head of a few dozen bytes. */
    ASSERT_CMP(f->read_total, >, f->download_size);
    ASSERT_CMP(f->read_total, <, f->download_size + 512);
}

TEST(server, producer_waking_itself_inline, setup, teardown)
{
    struct fixture *f = data;

    f->download_size = 1u << 20;
    f->wake_inline = true;
    run(f, client_download_chunked);
    ASSERT_EQ(response_status(f), 200);
    ASSERT_EQ(f->produced, f->download_size);
    ASSERT_EQ(f->done_rv, 0);
}
