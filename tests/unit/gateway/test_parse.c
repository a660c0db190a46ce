/* Request parsing and its limits (parse.c), fed bytes directly: whole, byte
 * by byte, pipelined, with pauses, and over every limit. */
#include <stdlib.h>

#include "gw_int.h"
#include "test.h"

struct fixture {
    struct gw_config config;
    struct gw__parse parse;
    unsigned begin_count, head_count, complete_count;
    struct cn_buf body;
    char url[256];
    char host[64];
    int64_t content_length;
    bool pause_on_body; /* Pause after each body piece, as a slow handler does */
    unsigned pauses;
};

static void on_begin(struct gw__parse *parse)
{
    struct fixture *f = parse->data;

    f->begin_count++;
}

static void on_head(struct gw__parse *parse)
{
    struct fixture *f = parse->data;
    const char *host = gw__parse_header(parse, "host");

    f->head_count++;
    snprintf(f->url, sizeof(f->url), "%s %s", gw__parse_method(parse), gw__parse_url(parse));
    snprintf(f->host, sizeof(f->host), "%s", host != NULL ? host : "(none)");
    f->content_length = gw__parse_content_length(parse);
}

static void on_body(struct gw__parse *parse, const uint8_t *data, size_t len)
{
    struct fixture *f = parse->data;

    ASSERT_OK(cn_buf_append(&f->body, data, len));
    if (f->pause_on_body) {
        gw__parse_pause(parse);
    }
}

static void on_complete(struct gw__parse *parse)
{
    struct fixture *f = parse->data;

    f->complete_count++;
    gw__parse_pause(parse); /* One request at a time, as conn.c does. */
}

static const struct gw__parse_cbs cbs = {on_begin, on_head, on_body, on_complete};

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    gw_config_init(&f->config);
    f->config.url_size_max = 64;
    f->config.head_size_max = 256;
    f->config.header_count_max = 8;
    f->config.body_size_max = 1000;
    gw__parse_init(&f->parse, &f->config, &cbs, f);
    cn_buf_init(&f->body);
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    gw__parse_close(&f->parse);
    cn_buf_close(&f->body);
    free(f);
}

/* Feeds text step bytes at a time, resuming after every pause; returns the
 * first error. */
static int feed(struct fixture *f, const char *text, size_t step)
{
    size_t len = strlen(text), offset = 0, consumed;
    int rv;

    while (offset < len) {
        size_t n = CN_MIN(step, len - offset);
        gw__parse_resume(&f->parse);
        rv = gw__parse_feed(&f->parse, (const uint8_t *)text + offset, n, &consumed);
        if (rv != 0) {
            return rv;
        }
        if (consumed < n) {
            ASSERT_TRUE(gw__parse_paused(&f->parse));
            f->pauses++;
        }
        offset += consumed;
    }
    return 0;
}

#define SIMPLE_GET "GET /v1/files?x=1 HTTP/1.1\r\nHost: example\r\nX-A: b\r\n\r\n"

TEST(parse, simple_get_whole_and_byte_by_byte, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(feed(f, SIMPLE_GET, 1));
    ASSERT_EQ(f->head_count, 1);
    ASSERT_EQ(f->complete_count, 1);
    ASSERT_STR_EQ(f->url, "GET /v1/files?x=1");
    ASSERT_STR_EQ(f->host, "example");
    ASSERT_EQ(f->parse.header_count, 2);
    ASSERT_STR_EQ(f->parse.headers[1].name, "X-A");
    ASSERT_STR_EQ(f->parse.headers[1].value, "b");
    ASSERT_EQ(f->content_length, 0);
    ASSERT_TRUE(gw__parse_keep_alive(&f->parse));
    /* The same request again, whole, on the same parser (keep-alive). */
    ASSERT_OK(feed(f, SIMPLE_GET, 1000));
    ASSERT_EQ(f->head_count, 2);
    ASSERT_STR_EQ(f->host, "example");
}

TEST(parse, pipelined_requests_one_at_a_time, setup, teardown)
{
    struct fixture *f = data;
    const char *two = "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz";

    ASSERT_OK(feed(f, two, 1000));
    ASSERT_EQ(f->complete_count, 2);
    ASSERT_EQ(f->pauses, 1); /* Paused after the first, resumed for the second. */
    ASSERT_STR_EQ(f->url, "POST /b");
    ASSERT_EQ(f->body.len, 3);
    ASSERT_MEM_EQ(f->body.base, "xyz", 3);
}

TEST(parse, chunked_body_with_pauses_and_trailers, setup, teardown)
{
    struct fixture *f = data;
    const char *req = "PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";

    f->pause_on_body = true;
    ASSERT_OK(feed(f, req, 7));
    ASSERT_EQ(f->content_length, -1);
    ASSERT_EQ(f->complete_count, 1);
    ASSERT_EQ(f->body.len, 11);
    ASSERT_MEM_EQ(f->body.base, "hello world", 11);
    /* Trailers are not added to the head. */
    ASSERT_TRUE(gw__parse_header(&f->parse, "X-Trailer") == NULL);
}

TEST(parse, identity_body_paused_at_every_piece, setup, teardown)
{
    struct fixture *f = data;

    f->pause_on_body = true;
    ASSERT_OK(feed(
        f, "POST /e HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\n\r\n", 3));
    ASSERT_EQ(f->body.len, 10);
    ASSERT_MEM_EQ(f->body.base, "0123456789", 10);
    ASSERT_EQ(f->complete_count, 2);
    ASSERT_STR_EQ(f->url, "GET /");
}

/* Feeds text and checks it is refused with status. */
#define ASSERT_REFUSED(f, text, step, status_)                    \
    do {                                                          \
        int rv_ = feed((f), (text), (step));                      \
        ASSERT_TRUE(rv_ == CAIRN_EPROTO || rv_ == CAIRN_ETOOBIG); \
        ASSERT_EQ((f)->parse.status, (status_));                  \
        ASSERT_EQ((f)->parse.state, GW__PARSE_ERROR);             \
        ASSERT_TRUE((f)->parse.reason != NULL);                   \
    } while (0)

TEST(parse, url_over_limit_is_414, setup, teardown)
{
    struct fixture *f = data;
    char req[512];

    snprintf(req, sizeof(req), "GET /%0100d HTTP/1.1\r\n\r\n", 0);
    ASSERT_REFUSED(f, req, 1, 414);
    ASSERT_EQ(f->head_count, 0);
}

TEST(parse, head_over_limit_is_431, setup, teardown)
{
    struct fixture *f = data;
    char req[1024];

    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: %0300d\r\n\r\n", 0);
    ASSERT_REFUSED(f, req, 5, 431);
    ASSERT_EQ(f->head_count, 0);
}

TEST(parse, many_small_headers_are_431, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_REFUSED(f,
                   "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n"
                   "G: 7\r\nH: 8\r\nI: 9\r\n\r\n",
                   1000, 431);
}

TEST(parse, exactly_at_the_header_count_limit_is_fine, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(feed(f,
                   "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\n"
                   "G: 7\r\nH: 8\r\n\r\n",
                   1));
    ASSERT_EQ(f->parse.header_count, 8);
    ASSERT_STR_EQ(f->parse.headers[7].value, "8");
}

TEST(parse, declared_body_over_limit_is_413_before_the_body, setup, teardown)
{
    struct fixture *f = data;
    int rv = feed(f, "PUT /u HTTP/1.1\r\nContent-Length: 1001\r\n\r\nabc", 1000);

    ASSERT_ERR(rv, CAIRN_ETOOBIG);
    ASSERT_EQ(f->parse.status, 413);
    ASSERT_EQ(f->head_count, 0); /* The handler never sees it. */
    ASSERT_EQ(f->body.len, 0);
}

TEST(parse, chunked_body_over_limit_is_413_at_the_byte, setup, teardown)
{
    struct fixture *f = data;
    struct cn_buf req;
    int i, rv;

    cn_buf_init(&req);
    ASSERT_OK(cn_buf_printf(&req, "PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"));
    for (i = 0; i < 20; i++) {
        ASSERT_OK(cn_buf_printf(&req, "64\r\n%0100d\r\n", i));
    }
    ASSERT_OK(cn_buf_append(&req, "", 1));
    rv = feed(f, (const char *)req.base, 1000);
    ASSERT_ERR(rv, CAIRN_ETOOBIG);
    ASSERT_EQ(f->parse.status, 413);
    ASSERT_EQ(f->body.len, 1000); /* Exactly up to the limit, not a byte more. */
    cn_buf_close(&req);
}

TEST(parse, expect_other_than_continue_is_417, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_REFUSED(f, "PUT /u HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\n", 1000,
                   417);
}

TEST(parse, expect_continue_is_accepted, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(
        feed(f, "PUT /u HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", 1000));
    ASSERT_EQ(f->head_count, 1);
}

TEST(parse, http2_is_505, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_REFUSED(f, "GET / HTTP/2.0\r\n\r\n", 1000, 505);
}

/* A fresh parser per case: a refused parser stays refused. */
static void check_refused_alone(const char *text, size_t step, int status)
{
    struct fixture *f = setup();
    int rv = feed(f, text, step);
    int got = f->parse.status;

    teardown(f);
    ASSERT_ERR(rv, CAIRN_EPROTO);
    ASSERT_EQ(got, status);
}

TEST(parse, garbage_and_smuggling_are_400, NULL, NULL)
{
    check_refused_alone("\x16\x03\x01 hello\r\n\r\n", 1000, 400);
    check_refused_alone(
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 1000, 400);
    check_refused_alone("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 1000,
                        400);
    check_refused_alone("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1, 400);
    check_refused_alone("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 1, 400);
}

TEST(parse, http10_without_keep_alive_closes, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(feed(f, "GET / HTTP/1.0\r\n\r\n", 1000));
    ASSERT_FALSE(gw__parse_keep_alive(&f->parse));
}
