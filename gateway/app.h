/*
 * cairn-gateway's insides (docs/gateway.md): one struct gw_app per process,
 * hung off nothing global, and the Drive API's handlers on it.
 *
 * Threads: everything runs on the app's loop, except the work queued on
 * libuv's pool (password checks, chunk encoding and decoding), whose results
 * come back to the loop.
 *
 * A request's life (struct gw_call, call.c): the route's handler makes a call,
 * which authenticates the bearer token (cached briefly, auth.c), then runs the
 * operation as a chain of metadata calls and block puts or gets, each with a
 * continuation. The client may leave at any point: the call then outlives its
 * request until the last callback in flight returns, and frees itself.
 *
 * Memory (STYLE §10): calls and their state are daemon bookkeeping
 * (cn_xmalloc); an upload or a download holds at most
 * chunks_in_flight_max encoded chunks, whatever the file size.
 */
#ifndef GW_APP_H
#define GW_APP_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "api.h"
#include "gw_http.h"
#include "node_meta.h"
#include "node_rpc.h"
#include "storage.h"

#define GW_TOKEN_SIZE      32u   /* random bytes of a bearer token, sent as 64 hex */
#define GW_TOKEN_CACHE_MAX 1024u /* tokens remembered (token_cache_ms each) */
#define GW_JSON_BODY_MAX   (64u << 10)
#define GW_DRIVE_ROOT      1u    /* the root inode of every drive namespace */
#define GW_WATCH_MAX       4096u /* namespaces watched at once */
#define GW_DRAIN_MS        5000u

struct gw_call;

/* A token checked recently: who it is, and until when we trust it. */
struct gw_token_entry {
    uint8_t hash[32];
    uint64_t user;
    bool admin;
    uint64_t until_ms; /* loop time */
};

/* Counters for /metrics. */
struct gw_app_stats {
    uint64_t logins;
    uint64_t login_failures;
    uint64_t token_cache_hits;
    uint64_t token_checks;
    uint64_t uploads;
    uint64_t upload_bytes;
    uint64_t upload_failures;
    uint64_t downloads;
    uint64_t download_bytes;
    uint64_t chunk_puts;
    uint64_t chunk_dedups; /* chunks an upload found stored already */
    uint64_t chunk_gets;
    uint64_t meta_calls;
    uint64_t meta_errors;
    uint64_t map_refreshes;
    uint64_t map_failures;
    uint64_t polls;
    uint64_t calls_alive;
    uint64_t uploads_active;
    uint64_t downloads_active;
    uint64_t busy_refusals;
};

struct gw_watch; /* changes.c: one node watch per namespace, shared by waiters */

struct gw_app {
    uv_loop_t *loop;
    struct gw_app_config config;
    uint8_t secret[NODE_SECRET_SIZE];
    struct stor_keys keys;
    struct node_meta *meta;
    struct node_blocks *blocks;
    struct gw_router *router;
    struct gw_server *server;
    char host[GW_ADDRESS_SIZE];
    uv_timer_t map_timer;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    bool stopping;
    bool map_in_flight;
    uint64_t map_epoch;
    struct node_member *members; /* the last map's, NODE_BLOCKS_MEMBERS_MAX slots */
    unsigned member_count;
    unsigned member_up_count;
    uint32_t data_groups; /* S, 0 until the first map */
    uint8_t k;            /* erasure scheme for new chunks, from the member count */
    uint8_t m;
    uint64_t start_ms;
    struct gw_token_entry tokens[GW_TOKEN_CACHE_MAX];
    struct gw_watch *watches; /* list */
    unsigned watch_count;
    struct gw_app_stats stats;
    const char *admin_user; /* --admin-user: created at start if missing */
    char admin_password[256];
    bool admin_done;
    bool admin_in_flight;
};

/* ---- cluster.c ---- */
int gw__cluster_start(struct gw_app *app);
void gw__cluster_stop(struct gw_app *app);

/* Where the shards of a chunk are: node_ids[i] holds shard i. From the
 * record when it has its placement, else node_place() over the members that
 * are up (as node_blocks_put() chose). CAIRN_EUNAVAIL. */
int gw__chunk_nodes(struct gw_app *app,
                    const Cairn__Cmd__Chunk *chunk,
                    uint64_t *node_ids,
                    unsigned shard_count);

/* ---- obs.c: /health, /metrics ---- */
int gw__obs_routes(struct gw_app *app);

/* ---- call.c: one API request ---- */

typedef void (*gw_call_fn)(struct gw_call *call);
typedef void (*gw_read_fn)(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply);
typedef void (*gw_propose_fn)(struct gw_call *call, int rv, uint64_t value);

struct gw_call {
    struct gw_app *app;
    struct gw_req *req; /* NULL once the request is over */
    unsigned pending;   /* callbacks still to come (meta, blocks, pool) */
    bool headless;      /* made by the gateway itself, without a request */
    uint64_t user;      /* the authenticated actor; 0 before */
    bool admin;
    uint8_t token_hash[32];
    uint64_t ns;   /* where {path} lives: the drive, or a shared item's namespace */
    uint64_t root; /* the inode {path} starts from */
    char path[GW_PATH_SIZE_MAX + 1];
    struct cn_buf body; /* a JSON body, at most GW_JSON_BODY_MAX */
    json_t *json;       /* the parsed body */
    gw_call_fn after_body;
    void *op;                              /* the operation's own state */
    void (*op_free)(struct gw_call *call); /* frees op; called once */
    void (*on_gone)(struct gw_call *call); /* the request ended (answered or not) */
    /* Scratch the chains keep between steps. */
    uint64_t inode;
    uint64_t parent;
    uint64_t version;
    uint64_t value;
    char name[GW_NAME_SIZE_MAX + 1];
    Cairn__Cmd__Inode rec; /* a kept copy of an inode (rec.name points to rec_name) */
    char rec_name[GW_NAME_SIZE_MAX + 1];
    int status;
};

/* Makes a call for req, sets its on_done, and authenticates it: next runs
 * with call->user set, or the request is answered 401. */
void gw__call_auth(struct gw_app *app, struct gw_req *req, gw_call_fn next);
/* Makes a call without authentication (login). */
struct gw_call *gw__call_new(struct gw_app *app, struct gw_req *req);
/* Ends a headless call: it is freed once nothing is in flight. */
void gw__call_finish(struct gw_call *call);
/* True while the client still waits for an answer. */
bool gw__call_live(const struct gw_call *call);
/* Answers with an error, unless the client left. */
void gw__call_error(struct gw_call *call, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers with json (borrowed), unless the client left. */
void gw__call_json(struct gw_call *call, int status, json_t *json);
void gw__call_status(struct gw_call *call, int status); /* an empty answer (204) */
/* A strong read as the caller (query->actor = call->user). */
void gw__call_read(struct gw_call *call, Cairn__Wire__MetaRead *query, gw_read_fn cb);
/* A strong read as the system (actor 0): only for sign-in, token checks and
 * looking up a user by name or id. */
void gw__call_read_system(struct gw_call *call, Cairn__Wire__MetaRead *query, gw_read_fn cb);
/* Proposes one operation (cmd->op_case and its field set by the caller) to
 * group, with a fresh header (request id, time, actor = call->user). */
void gw__call_propose(struct gw_call *call,
                      uint64_t group,
                      Cairn__Cmd__Command *cmd,
                      gw_propose_fn cb);
/* Reads a JSON body (at most GW_JSON_BODY_MAX) into call->json, then next. 400 for
 * malformed JSON or anything but an object. */
void gw__call_read_json(struct gw_call *call, gw_call_fn next);
/* Holds and releases the call across an asynchronous step of our own. */
void gw__call_hold(struct gw_call *call);
/* Ends a hold; false if the call was freed (the request is over). */
bool gw__call_release(struct gw_call *call);
/* The drive namespace of the caller. */
uint64_t gw__call_drive(const struct gw_call *call);
/* Sets call->ns, root and path from the request path after prefix and the
 * ?root= query; answers 400 and returns false on a bad one. */
bool gw__call_target(struct gw_call *call, const char *prefix);
/* A random, non-zero 64-bit id below 2^56 when small, for users; inodes use all bits. */
uint64_t gw__random_id(bool small);
/* A CAIRN_E* code to the 404 the API shows for what the caller may not see. */
int gw__hide_perm(int rv);

/* ---- auth.c ---- */
int gw__auth_routes(struct gw_app *app);
/* Checks the token of call->req; next runs with call->user set. */
void gw__auth_check(struct gw_call *call, gw_call_fn next);
/* Drops a token from the cache (logout). */
void gw__auth_forget(struct gw_app *app, const uint8_t hash[32]);
/* Creates the --admin-user once the cluster map is known. */
void gw__auth_bootstrap(struct gw_app *app);

/* ---- files.c, transfer.c, tus.c, share.c, changes.c ---- */
int gw__files_routes(struct gw_app *app);
int gw__transfer_routes(struct gw_app *app);
int gw__tus_routes(struct gw_app *app);
int gw__share_routes(struct gw_app *app);
int gw__changes_routes(struct gw_app *app);
void gw__changes_stop(struct gw_app *app);

/* files.c: keeps a copy of inode in call->rec; answers call->rec's entry. */
void gw__keep_inode(struct gw_call *call, const Cairn__Cmd__Inode *inode);
void gw__answer_kept(struct gw_call *call, int status);
/* Reads inode afresh and answers its entry with status. */
void gw__answer_inode(struct gw_call *call, int status, uint64_t inode);
void gw__files_delete(struct gw_req *req, void *data);

/* Resolves call->path from call->root in call->ns; cb gets the reply (inode,
 * parent). */
void gw__resolve(struct gw_call *call, const char *path, gw_read_fn cb);

#endif /* GW_APP_H */
