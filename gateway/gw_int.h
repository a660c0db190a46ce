/*
 * Internal to gateway/: the pieces behind gw_http.h. This file is private to
 * the gateway module.
 *
 *   arena.c   per-request bump allocator
 *   parse.c   request parsing and limits over libhttp-parser; no I/O
 *   router.c  method + prefix routing; no I/O
 *   error.c   CAIRN_E* -> HTTP status and the JSON error body
 *   url.c     percent-decoding and query lookup for handlers
 *   conn.c    one connection on libuv: reading, writing, timers, the pump
 *   req.c     the request and response API handlers use
 *   server.c  listening, accepting, the connection limit, closing
 */
#ifndef GW_INT_H
#define GW_INT_H

#include <http_parser.h>

#include "cn.h"
#include "gw_http.h"

/* ---- arena.c ---- */

struct gw__arena_block;

/* A bump allocator: blocks of GW__ARENA_BLOCK_SIZE, larger requests get
 * their own block; everything is freed at once by gw__arena_close(). */
struct gw__arena {
    struct gw__arena_block *head;
    size_t used; /* In head */
    size_t total_size;
};

#define GW__ARENA_BLOCK_SIZE 4096u

void gw__arena_init(struct gw__arena *arena);
void gw__arena_close(struct gw__arena *arena);
/* Aligned to 16; aborts on OOM (daemon memory, STYLE §10c). */
void *gw__arena_alloc(struct gw__arena *arena, size_t size);

/* ---- parse.c ---- */

enum gw__parse_state {
    GW__PARSE_IDLE,  /* Between requests */
    GW__PARSE_HEAD,  /* Inside a request head */
    GW__PARSE_BODY,  /* Head done, body (if any) being parsed */
    GW__PARSE_DONE,  /* Message complete; the owner resets by parsing on */
    GW__PARSE_ERROR, /* Final: status and reason say why */
};

struct gw__parse;

/* What the parser reports to its owner. To stop parsing (for the handler,
 * or one request at a time), a callback calls gw__parse_pause(). */
struct gw__parse_cbs {
    void (*on_begin)(struct gw__parse *parse);
    void (*on_head)(struct gw__parse *parse);
    void (*on_body)(struct gw__parse *parse, const uint8_t *data, size_t len);
    void (*on_complete)(struct gw__parse *parse);
};

struct gw__span {
    uint32_t name_offset;
    uint32_t value_offset;
};

/* One connection's request parser: libhttp-parser plus the request head
 * kept in one bounded buffer, and the limits of gw_config. */
struct gw__parse {
    http_parser parser;
    const struct gw_config *config; /* Borrowed */
    const struct gw__parse_cbs *cbs;
    void *data;
    enum gw__parse_state state;
    struct cn_buf head;        /* url\0name\0value\0... at most head_size_max + NULs */
    size_t url_size;           /* Bytes of the target so far */
    size_t field_size;         /* Names and values so far */
    bool url_done;             /* The target's NUL is written */
    bool in_value;             /* The last header callback was a value */
    struct gw__span *spans;    /* header_count_max of them */
    struct gw_header *headers; /* Resolved at on_head */
    unsigned header_count;
    uint64_t body_size; /* Body bytes so far */
    int status;         /* HTTP status of the error that stopped parsing, or 0 */
    const char *reason; /* Its message */
};

void gw__parse_init(struct gw__parse *parse,
                    const struct gw_config *config,
                    const struct gw__parse_cbs *cbs,
                    void *data);
void gw__parse_close(struct gw__parse *parse);
/* Parses up to len bytes (len > 0), setting *consumed; fewer are consumed
 * when a callback paused. CAIRN_EPROTO (or CAIRN_ETOOBIG for 413) with
 * parse->status and parse->reason set when the request is refused. */
int gw__parse_feed(struct gw__parse *parse, const uint8_t *data, size_t len, size_t *consumed);
void gw__parse_pause(struct gw__parse *parse);
void gw__parse_resume(struct gw__parse *parse);
bool gw__parse_paused(const struct gw__parse *parse);
/* The head, valid from on_head until the next on_begin. */
const char *gw__parse_url(const struct gw__parse *parse);
const char *gw__parse_method(const struct gw__parse *parse);
/* -1 for chunked, else the declared size (0 when absent). */
int64_t gw__parse_content_length(const struct gw__parse *parse);
bool gw__parse_keep_alive(const struct gw__parse *parse);
/* Looks a header up in the parsed head (case-insensitive). */
const char *gw__parse_header(const struct gw__parse *parse, const char *name);

/* ---- error.c ---- */

/* The canned answer to a connection over the limit. */
extern const char gw__reject_response[];

/* ---- conn.c ---- */

enum gw__conn_state {
    GW__CONN_OPEN,    /* Serving requests */
    GW__CONN_LINGER,  /* Write side shut; discarding input until EOF or timeout */
    GW__CONN_CLOSING, /* Handles closing; freed in the last close callback */
};

enum gw__timer_phase {
    GW__TIMER_NONE,
    GW__TIMER_IDLE,
    GW__TIMER_HEAD,
    GW__TIMER_BODY,
    GW__TIMER_WRITE,
    GW__TIMER_LINGER,
};

/* One accepted connection. Owns its buffers and at most one request. */
struct gw__conn {
    struct gw_server *server;
    struct gw__conn *prev, *next; /* In server->conns */
    uv_tcp_t tcp;
    uv_timer_t timer; /* The one deadline of the current phase */
    uv_write_t write;
    uv_shutdown_t shutdown;
    enum gw__conn_state state;
    struct gw__parse parse;
    struct gw_req *req; /* The request being served, or NULL */
    uint8_t *in;        /* GW_IN_SIZE bytes; [in_start, in_end) not yet parsed */
    size_t in_start, in_end;
    uint8_t *out;         /* GW_OUT_SIZE body bytes, allocated on first use */
    struct cn_buf prefix; /* "100 Continue", the response head, a chunk size line */
    uv_buf_t bufs[3];     /* The write in flight: prefix, body, suffix */
    bool writing;         /* A uv_write is in flight */
    bool reading;         /* uv_read_start is active */
    bool eof;             /* The client shut its side */
    bool broken;          /* No more parsing: a parse error or timeout */
    bool in_pump, pump_again;
    int fail_rv;             /* Set by conn_fail(): tear down at the next safe point */
    unsigned close_pending;  /* Handles not yet closed */
    uint64_t request_count;  /* Requests begun on this connection */
    uint64_t last_io_ms;     /* Last read or write progress, for the idle and body phases */
    uint64_t phase_start_ms; /* Start of the head, a write, or the linger */
};

/* Called by server.c for an accepted connection. */
void gw__conn_start(struct gw_server *server, struct gw__conn *conn);
/* Ends the connection now (server closing): requests end with rv. */
void gw__conn_fail(struct gw__conn *conn, int rv);
/* Re-evaluates what the connection should do; safe from any context. */
void gw__conn_kick(struct gw__conn *conn);
/* The body output buffer, allocated on first use. */
uint8_t *gw__conn_out(struct gw__conn *conn);

/* ---- req.c ---- */

enum gw__body_state {
    GW__BODY_NONE,    /* The request has no body */
    GW__BODY_UNREAD,  /* It has one; the handler has not asked for it */
    GW__BODY_READING, /* on_body calls are being made */
    GW__BODY_DONE,    /* Ended with on_end(0) */
    GW__BODY_ABORTED, /* Ended early: error, or the handler responded */
};

enum gw__resp_state {
    GW__RESP_NONE,  /* The handler has not answered */
    GW__RESP_HEAD,  /* Head formatted, not yet handed to a write */
    GW__RESP_BODY,  /* Producing */
    GW__RESP_FLUSH, /* Everything produced; waiting for the last write */
    GW__RESP_DONE,  /* Written */
};

struct gw_req {
    struct gw__conn *conn;
    struct gw__arena arena;
    const char *method, *path, *query;
    const struct gw_header *headers;
    size_t header_count;
    int64_t content_length;
    bool expect_continue;
    bool continue_due; /* "100 Continue" must be written */
    bool is_head;      /* HEAD: no response body */
    bool http10;       /* HTTP/1.0 client: no chunked encoding */
    bool keep_alive;   /* The client allows another request */
    bool close_after;  /* Close the connection after this response */
    bool complete;     /* The whole request was parsed */
    enum gw__body_state body;
    bool paused;
    gw_body_cb on_body;
    gw_body_end_cb on_end;
    enum gw__resp_state resp;
    struct cn_buf resp_headers; /* "Name: value\r\n" lines added by the handler */
    int status;
    int64_t resp_length; /* -1: chunked */
    uint64_t resp_sent;  /* Body bytes produced */
    bool chunked;
    bool no_body; /* HEAD, 1xx, 204, 304 */
    gw_produce_cb produce;
    bool producer_waiting;
    const uint8_t *mem; /* gw_respond(): the body, in the arena */
    size_t mem_size, mem_offset;
    gw_done_cb on_done;
    void *data;
    const char *peer;  /* gw_req_peer(), made on first use */
    uint64_t start_ms; /* First byte, for the access log */
};

struct gw_req *gw__req_new(struct gw__conn *conn);
/* Fills the request from the parsed head; CAIRN_EPROTO for a bad target. */
int gw__req_take_head(struct gw_req *req, const struct gw__parse *parse);
/* Ends the request body with rv, calling on_end if the handler reads it. */
void gw__req_end_body(struct gw_req *req, int rv);
/* Calls on_done once and frees the request. */
void gw__req_free(struct gw_req *req, int rv);
/* Formats the response head into out. */
void gw__req_format_head(struct gw_req *req, struct cn_buf *out);

/* ---- server.c ---- */

struct gw_server {
    uv_loop_t *loop;
    struct gw_config config;
    const struct gw_router *router;
    uv_tcp_t listen;
    uv_timer_t drain_timer; /* Ends the drain of gw_server_close() */
    bool drain_closing;     /* drain_timer is being closed */
    uint16_t port;
    bool closing;
    unsigned close_pending;
    struct gw__conn *conns; /* Open connections, a doubly linked list */
    struct gw_server_stats stats;
    gw_server_close_cb close_cb;
    void *close_data;
};

/* A connection's handles are closed: unlink and free it. */
void gw__server_conn_closed(struct gw_server *server, struct gw__conn *conn);

/* Translates a libuv status to a CAIRN_E* code, keeping the text in errmsg. */
int gw__err_from_uv(int status, char *errmsg, const char *what);

#endif /* GW_INT_H */
