/* Internal to node/: the daemon's state, shared by main.c, run.c, daemon.c,
 * blocks.c, scrub.c and admin.c. */
#ifndef NODE_NODE_H
#define NODE_NODE_H

#include "node_rpc.h"
#include "obs.h"
#include "storage.h"
#include "wire.pb-c.h"

#define NODE_DATA_DIRS_MAX   16
#define NODE_CLUSTER_ID_SIZE 16
#define NODE_SHARD_LOCKS     64 /* stripes serialising writers of one shard */
static_assert(NODE_DATA_DIRS_MAX <= NODE_METRICS_DIRS_MAX, "every directory has metrics");

struct gw_server;
struct gw_router;
struct node_scrub;
struct node_cluster;

enum node_tier {
    NODE_TIER_HOT,
    NODE_TIER_COLD
};

struct node_data_dir {
    char path[512];
    enum node_tier tier;
    struct stor_store *store;
};

/* Everything `cairn-node run` reads from flags and its config file. */
struct node_config {
    char listen[64];
    char secret_path[512];
    char failure_domain[64];
    struct node_data_dir dirs[NODE_DATA_DIRS_MAX];
    unsigned dir_count;
    enum cn_log_level log_level;
    char admin[64];              /* "IP:PORT" of the admin HTTP port; "" for none */
    uint64_t scrub_rate;         /* bytes per second; 0 disables scrub */
    bool scrub_rate_set;         /* given by a flag or the file (else the default) */
    char advertise[64];          /* "IP:PORT" peers reach this node at; "" = listen */
    uint64_t suspect_after_ms;   /* silent this long: suspect (system leader) */
    uint64_t down_after_ms;      /* silent this long: NodeSetState{down} */
    unsigned snapshot_threshold; /* Raft: entries between snapshots (0: libraft's) */
    unsigned snapshot_trailing;  /* Raft: entries kept after one (0: libraft's) */
    unsigned repair_rate;        /* chunks checked per second by repair; 0 disables */
    bool repair_rate_set;        /* given by a flag (else the default) */
    uint64_t reserve;            /* bytes a shard put leaves free on a data dir's disk */
    bool reserve_set;            /* given (else node__reserve_auto() of each disk) */
    bool debug_stale_reads;      /* only in CAIRN_DEBUG_STALE_READS builds (tests of the tests) */
};

/* The daemon. One per process, passed explicitly (STYLE §11). */
struct node {
    uv_loop_t *loop;
    struct node_config config;
    uint8_t secret[NODE_SECRET_SIZE];
    uint8_t cluster_id[NODE_CLUSTER_ID_SIZE];
    uint64_t node_id;
    struct node_server *server;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    unsigned work_in_flight; /* block operations on the thread pool */
    bool stopping;
    struct cn_clock *clock;    /* monotonic for pacing, wall for the start time */
    uint64_t start_time_ms;    /* wall clock */
    struct node_rpc_stats rpc; /* counted on the loop thread */
    struct node_scrub *scrub;  /* NULL when scrub is disabled */
    struct gw_server *admin;   /* NULL without --admin */
    struct gw_router *admin_router;
    struct node_cluster *cluster; /* the Raft groups and metadata RPCs (cluster.c) */
    char admin_host[64];          /* borrowed by the admin server's config */
    /* Taken around a shard's put, delete, and scrub's removal of a corrupt
     * shard, so that scrub never deletes a good copy a put just wrote. */
    uv_mutex_t shard_locks[NODE_SHARD_LOCKS];
};

/* The free space shard puts leave on a data directory's filesystem when no
 * --reserve is given: 1 % of it, at least 256 MiB, at most 4 GiB, and never
 * more than a tenth of a small filesystem. It keeps room for what must not
 * fail on a full disk: the Raft logs (libraft preallocates 8 MiB segments),
 * RocksDB's flushes and compactions, and the temporary files of repairs. */
uint64_t node__reserve_auto(uint64_t disk_total);

/* CAIRN_ENOSPACE if len more bytes would leave less than the reserve free on
 * dir's filesystem (--reserve, else node__reserve_auto()): shards must not
 * take the space the metadata on that disk needs to go on. */
int node__reserve_check(struct node *node, const struct node_data_dir *dir, size_t len);

/* cairn-node's exit code when its storage failed while it ran (a full or
 * failing disk under a Raft group): start it again once the disk works. */
#define NODE_EXIT_STORAGE 4

/* Ends the process at once, with exit code NODE_EXIT_STORAGE, because a
 * Raft group's storage failed (its log or state machine could not be written,
 * meta_group_failed()), after logging why at error level. */
void node__storage_failed(uint64_t group, const char *why);

/* Parses "PATH" or "PATH:hot" / "PATH:cold" into dir. CAIRN_EINVAL. */
int node__parse_data_dir(const char *text, struct node_data_dir *dir);

/* Writes the identity files of a new node into each data directory.
 * CAIRN_EEXIST if one already belongs to a cluster. */
int node__identity_create(const struct node_config *config,
                          const uint8_t cluster_id[NODE_CLUSTER_ID_SIZE],
                          uint64_t node_id,
                          char *errmsg);
/* Reads and cross-checks the identity of every data directory. CAIRN_ENOENT
 * (not initialised), CAIRN_EINVAL (directories of different clusters or nodes). */
int node__identity_load(struct node *node, char *errmsg);

/* Opens each data directory's shard store (locking it). */
int node__stores_open(struct node *node, char *errmsg);
void node__stores_close(struct node *node);

/* Handles a block RPC frame (MSG_SHARD_*); false if the type is not one. */
bool node__blocks_handle(struct node *node,
                         struct node_conn *conn,
                         const struct proto_frame_header *header,
                         const uint8_t *payload);

/* The stripe lock of a shard (see struct node). */
uv_mutex_t *node__shard_lock(struct node *node, const struct stor_id *id, unsigned index);

/* Starts the scrub thread when config.scrub_rate > 0 (node->scrub stays NULL
 * otherwise). The stores must be open. CAIRN_EIO (no thread), with errmsg. */
int node__scrub_start(struct node *node, char *errmsg);
/* Asks the scrub thread to stop; returns at once (callable on the loop). */
void node__scrub_stop(struct node *node);
/* Waits for the scrub thread to end and frees it; before the stores close. */
void node__scrub_join(struct node *node);
/* Takes up to max ids of chunks with a shard scrub set aside since the last
 * call (the loop sends them to the chunks' leaders: RepairHint). */
unsigned node__scrub_take_found(struct node *node, struct stor_id *out, unsigned max);
/* A copy of the scrub's progress (rate 0 when disabled). */
void node__scrub_progress(struct node *node, struct node_scrub_progress *progress);

/* Serves GET /metrics and GET /health on config.admin, on the node's loop.
 * CAIRN_EINVAL (bad address), CAIRN_EIO (bind), with errmsg. */
int node__admin_start(struct node *node, char *errmsg);
/* Closes the admin port (requests in flight may finish briefly). */
void node__admin_stop(struct node *node);

#endif /* NODE_NODE_H */
