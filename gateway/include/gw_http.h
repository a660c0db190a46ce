/*
 * gw_http: the gateway's HTTP/1.1 server core, on libuv and Debian's
 * libhttp-parser. The Drive API, the S3 API and the web UI's files are
 * handlers registered on a router; this header is all they see.
 *
 * A request's life, from a handler's side:
 *
 *   1. The server parses the request head, checks the limits (gw_config),
 *      routes by method and path prefix, and calls the handler once, with the
 *      body not yet read. For `Expect: 100-continue` nothing has been sent.
 *   2. The handler looks at the head (gw_req_method(), gw_req_header(), ...).
 *      It may reject at once (gw_respond_error(req, CAIRN_ETOOBIG, ...): the
 *      client's body is never read, and the connection closes after the
 *      answer), or call gw_req_read_body(): the server sends "100 Continue"
 *      if the client asked for it, and body bytes arrive through on_body.
 *      gw_req_pause()/gw_req_resume() stop and restart reading, so a slow
 *      consumer (the storage pipeline) pushes back on the client through TCP.
 *   3. The handler answers exactly once: gw_respond() for a small body held in
 *      memory, or gw_respond_stream() with a producer that the server calls
 *      whenever its one output buffer is free. A producer with nothing to give
 *      yet returns no bytes, and the handler calls gw_resp_wake() when it has
 *      some. Memory per connection stays bounded whatever the body size.
 *   4. The server calls the on_done callback exactly once, when the response
 *      is written or the connection failed. The request and its arena are
 *      freed right after it: the handler must cancel or detach anything of
 *      its own that still points at req.
 *
 * All calls happen on the server's loop thread. on_done, on_body and on_end
 * are only ever called from the loop, never from inside a gw_* call made by
 * the handler, so a handler may touch req after any gw_* call until on_done.
 *
 * Memory (STYLE §10): each request has an arena (gw_req_alloc), freed with the
 * request. Connection buffers are fixed-size: GW_IN_SIZE to read, GW_OUT_SIZE
 * to write, and the request head is at most gw_config.head_size_max.
 *
 * Errors are CAIRN_E* codes; gw_error_status() maps them to HTTP statuses and
 * every error response has the same JSON body:
 *   {"error": {"code": "not_found", "message": "...", "status": 404}}
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#define GW_IN_SIZE          (64u << 10)  /* Read buffer per connection */
#define GW_OUT_SIZE         (128u << 10) /* Body bytes per write, per connection */
#define GW_RESP_HEAD_MAX    (8u << 10)   /* Headers a handler may add to a response */
#define GW_ROUTE_COUNT_MAX  256
#define GW_ROUTE_PREFIX_MAX 256

struct gw_server;
struct gw_router;
struct gw_req;

/* Settings of one server; gw_config_init() gives the defaults. */
struct gw_config {
    const char *host;           /* Address to bind: "127.0.0.1" */
    uint16_t port;              /* 0: any free port, see gw_server_port() */
    unsigned conn_count_max;    /* Over it, new connections get 503 and are closed: 1024 */
    uint64_t body_size_max;     /* Request body limit, 413 beyond: 10 GiB */
    size_t url_size_max;        /* Request target limit, 414 beyond: 8 KiB */
    size_t head_size_max;       /* Target, names and values together, 431 beyond: 32 KiB */
    unsigned header_count_max;  /* 431 beyond: 100 */
    uint64_t idle_timeout_ms;   /* A kept-alive connection with no request: 60 s */
    uint64_t head_timeout_ms;   /* Whole request head from its first byte (slowloris), and a
                                 * new connection's wait for its first byte: 10 s */
    uint64_t body_timeout_ms;   /* No body byte while the handler reads: 30 s, then 408 */
    uint64_t write_timeout_ms;  /* No write progress (a client that stops reading): 30 s */
    uint64_t linger_timeout_ms; /* After "Connection: close", reading what the client still
                                 * sends so that it sees the answer, not a reset: 2 s */
};

void gw_config_init(struct gw_config *config);

/* One request header; both strings NUL-terminated, valid until on_done. */
struct gw_header {
    const char *name;
    const char *value;
};

/* Called once the request head is parsed; data is the route's. */
typedef void (*gw_handler_fn)(struct gw_req *req, void *data);
/* Body bytes, borrowed: valid until the callback returns. Never len 0. */
typedef void (*gw_body_cb)(struct gw_req *req, const uint8_t *data, size_t len);
/* The body ended: 0 when complete, else CAIRN_ETOOBIG (over the limit),
 * CAIRN_EPROTO (malformed chunk), CAIRN_ETIMEOUT (client too slow) or
 * CAIRN_ECANCELED (client gone, server closing). Not called when the handler
 * responded before the body ended. After an error the server answers for the
 * handler (413, 400, 408) unless the handler responds from this callback. */
typedef void (*gw_body_end_cb)(struct gw_req *req, int rv);
/* Fills up to cap bytes of buf and sets *len; *len = 0 with *eof false means
 * "nothing yet, I will call gw_resp_wake()". Sets *eof with the last bytes.
 * A CAIRN_E* return aborts the response: the connection is closed, since
 * HTTP/1.1 has no other way to say that a body broke off. */
typedef int (*gw_produce_cb)(struct gw_req *req, uint8_t *buf, size_t cap, size_t *len, bool *eof);
/* The request is over: 0 after the whole response was written, else why not.
 * req is freed when this returns. */
typedef void (*gw_done_cb)(struct gw_req *req, int rv);
typedef void (*gw_server_close_cb)(struct gw_server *server, void *data);

/* ---- Router: method + path prefix -> handler ---- */

struct gw_router *gw_router_new(void);
void gw_router_free(struct gw_router *router);
/* Adds a route. method NULL matches any method; prefix starts with '/' and
 * matches whole segments ("/v1/files" matches "/v1/files" and "/v1/files/a",
 * not "/v1/filesx"). The longest matching prefix wins. CAIRN_EINVAL for a bad
 * prefix, CAIRN_EEXIST for a duplicate, CAIRN_ETOOBIG over GW_ROUTE_COUNT_MAX. */
int gw_router_add(struct gw_router *router,
                  const char *method,
                  const char *prefix,
                  gw_handler_fn handler,
                  void *data);
/* Finds the handler for method and path (without query). CAIRN_ENOENT when
 * no prefix matches (404), CAIRN_EUNSUPPORTED when one matches but not for
 * this method (405). */
int gw_router_match(const struct gw_router *router,
                    const char *method,
                    const char *path,
                    gw_handler_fn *handler,
                    void **data);

/* ---- Server ---- */

/* Binds and listens on loop. router is borrowed, valid until the close
 * callback. CAIRN_EINVAL for a bad config or address, CAIRN_EIO (errmsg says
 * why) when the address cannot be bound. */
int gw_server_new(uv_loop_t *loop,
                  const struct gw_config *config,
                  const struct gw_router *router,
                  struct gw_server **server,
                  char *errmsg);
uint16_t gw_server_port(const struct gw_server *server);

struct gw_server_stats {
    unsigned conn_count;    /* Open now */
    uint64_t accept_count;  /* Accepted since start */
    uint64_t reject_count;  /* Refused with 503: over conn_count_max */
    uint64_t request_count; /* Requests whose head was parsed */
    uint64_t timeout_count; /* Connections cut by a timeout */
};
void gw_server_stats(const struct gw_server *server, struct gw_server_stats *stats);

/* Stops listening. Requests in flight get drain_ms to finish: their
 * connections close after the answer, idle ones at once, and new requests on
 * open connections get 503. Then every connection left is closed and its
 * request ends with CAIRN_ECANCELED; drain_ms 0 does that at once. cb runs
 * once everything is closed, and the server is freed after it returns. */
void gw_server_close(struct gw_server *server,
                     uint64_t drain_ms,
                     gw_server_close_cb cb,
                     void *data);

/* ---- Request: the head, valid until on_done ---- */

const char *gw_req_method(const struct gw_req *req); /* "GET" */
const char *gw_req_path(const struct gw_req *req);   /* "/v1/files/a", not decoded */
const char *gw_req_query(const struct gw_req *req);  /* After '?', "" if none */
/* The first header named name (case-insensitive), or NULL. */
const char *gw_req_header(const struct gw_req *req, const char *name);
size_t gw_req_header_count(const struct gw_req *req);
const struct gw_header *gw_req_header_at(const struct gw_req *req, size_t index);
/* The client's address as "ip:port" (the balancer's, behind one); "" if unknown. */
const char *gw_req_peer(struct gw_req *req);
/* The declared body size; -1 for a chunked body; 0 without a body. */
int64_t gw_req_content_length(const struct gw_req *req);
bool gw_req_expects_continue(const struct gw_req *req);

/* Arena memory, freed with the request; aborts on OOM as daemon memory does. */
void *gw_req_alloc(struct gw_req *req, size_t size);
char *gw_req_strdup(struct gw_req *req, const char *text);
void gw_req_set_data(struct gw_req *req, void *data);
void *gw_req_data(const struct gw_req *req);
void gw_req_on_done(struct gw_req *req, gw_done_cb cb);

/* ---- Request body ---- */

/* Starts reading the body (sends "100 Continue" if asked for). on_end is
 * called once, also for a request without a body. Call at most once. */
void gw_req_read_body(struct gw_req *req, gw_body_cb on_body, gw_body_end_cb on_end);
/* Stops on_body calls until gw_req_resume(); callable from on_body. */
void gw_req_pause(struct gw_req *req);
void gw_req_resume(struct gw_req *req);

/* ---- Response: exactly one gw_respond*() per request ---- */

/* Adds a response header (copied). The server writes Date, Content-Length
 * or Transfer-Encoding, and Connection itself. CAIRN_EINVAL for CR, LF or NUL
 * in name or value, CAIRN_ETOOBIG over GW_RESP_HEAD_MAX. */
int gw_resp_header(struct gw_req *req, const char *name, const char *value);
/* A body held in memory, copied; content_type may be NULL. */
void gw_respond(
    struct gw_req *req, int status, const char *content_type, const void *body, size_t len);
/* A JSON body; json is borrowed. */
void gw_respond_json(struct gw_req *req, int status, json_t *json);
/* The JSON error body for a CAIRN_E* code, with its status from the table. */
void gw_respond_error(struct gw_req *req, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The JSON error body with an explicit status and code ("payload_too_large"). */
void gw_respond_status(struct gw_req *req, int status, const char *code, const char *message);
/* A streamed body: content_length bytes, or chunked when -1. */
void gw_respond_stream(struct gw_req *req,
                       int status,
                       int64_t content_length,
                       gw_produce_cb produce);
/* The producer has bytes again after returning none; also callable from
 * inside the producer. A no-op when the server is not waiting. */
void gw_resp_wake(struct gw_req *req);
bool gw_req_responded(const struct gw_req *req);

/* ---- URL helpers (pure) ---- */

/* Percent-decodes text into out (out_size bytes, NUL-terminated); '+' is
 * kept as is (paths), unless plus_is_space (query values). CAIRN_EINVAL for
 * a bad escape or an encoded NUL, CAIRN_ETOOBIG if out is too small. */
int gw_url_decode(const char *text, size_t len, bool plus_is_space, char *out, size_t out_size);
/* Finds key in a query string ("a=1&b=x%20y") and decodes its value into
 * out. CAIRN_ENOENT if absent; else as gw_url_decode(). A key without '='
 * has the value "". */
int gw_query_get(const char *query, const char *key, char *out, size_t out_size);

/* ---- Errors: one table ---- */

/* HTTP status for a CAIRN_E* code (500 for unknown codes). */
int gw_error_status(int rv);
/* The snake_case code of the error body for rv ("not_found"). */
const char *gw_error_code(int rv);
/* Reason phrase for a status ("Not Found"); "Unknown" if none. */
const char *gw_status_reason(int status);
/* The code used when a status is sent without a CAIRN_E* code ("payload_too_large"). */
const char *gw_status_code(int status);
/* {"error": {"code": ..., "message": ..., "status": ...}} as a malloc'ed
 * string; free() it. */
char *gw_error_body(int status, const char *code, const char *message);

#endif /* GW_HTTP_H */
