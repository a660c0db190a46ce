/*
 * Internal to node/: the loop-free parts of scrub and observability, so that
 * they are unit-tested as plain functions (STYLE §13): the scrub's pacing
 * (a token bucket driven by an injected clock's milliseconds), the RPC
 * counters and latency histograms, and the Prometheus text rendering of a
 * metrics snapshot. Nothing here touches libuv, a disk or a thread; the
 * daemon's scrub.c and admin.c feed them.
 */
#ifndef NODE_OBS_H
#define NODE_OBS_H

#include <stdbool.h>
#include <stdint.h>

#include "cn.h"

/* ---- Scrub pacing ---- */

#define NODE_SCRUB_RATE_DEFAULT (16ull << 20) /* bytes per second: modest, ~1.4 TB a day */
#define NODE_SCRUB_RATE_MAX     (1ull << 40)  /* 1 TiB/s: far above any disk */
#define NODE_PACE_ELAPSED_MAX   1000000ull    /* ms of refill considered at once (1000 s) */
#define NODE_PACE_CHARGE_MAX    (1ull << 40)  /* bytes charged at once */
static_assert(NODE_SCRUB_RATE_DEFAULT <= NODE_SCRUB_RATE_MAX, "scrub rate bounds");
/* elapsed * rate must not overflow a u64 in node__pace_charge(). */
static_assert(NODE_PACE_ELAPSED_MAX <= UINT64_MAX / NODE_SCRUB_RATE_MAX, "pace refill overflow");

/*
 * A token bucket in bytes: it fills at rate bytes per second up to burst and
 * every shard read is charged after the fact. A shard larger than the balance
 * puts it in debt, and the reader waits until the debt is paid; so over any
 * long stretch the bytes read stay within rate * time + burst.
 */
struct node_pace {
    uint64_t rate;       /* bytes per second, 1..NODE_SCRUB_RATE_MAX */
    uint64_t burst;      /* most bytes that may be read without waiting */
    int64_t tokens;      /* bytes that may be read now; negative: debt */
    uint64_t last_ms;    /* clock time of the last refill */
    uint64_t millibytes; /* refill remainder below one byte, in 1/1000 bytes */
};

/* Starts a full bucket at now_ms. rate in 1..NODE_SCRUB_RATE_MAX, burst >= 1. */
void node__pace_init(struct node_pace *pace, uint64_t rate, uint64_t burst, uint64_t now_ms);
/* Charges bytes just read at now_ms (monotonic, never behind the last call)
 * and returns how many milliseconds to wait before the next read (0: go on). */
uint64_t node__pace_charge(struct node_pace *pace, uint64_t bytes, uint64_t now_ms);
/* How long to wait at now_ms without reading anything (after a sleep that may
 * have been cut short). */
uint64_t node__pace_wait_ms(struct node_pace *pace, uint64_t now_ms);

/* ---- Scrub progress, as metrics show it ---- */

struct node_scrub_progress {
    uint64_t rate;             /* bytes per second; 0: scrub disabled */
    uint64_t pass;             /* current pass, 1 for the first; 0 before it starts */
    uint64_t passes_completed; /* passes that walked every shard */
    uint64_t shards_checked;   /* this pass */
    uint64_t bytes_checked;    /* this pass */
    uint64_t corrupt;          /* corrupt shards found (and removed) this pass */
    uint64_t corrupt_total;    /* since the node started */
    uint64_t errors_total;     /* shards that could not be read (CAIRN_EIO, ...) */
    uint64_t shards_total;     /* shards verified since the node started */
    uint64_t bytes_total;      /* bytes verified since the node started */
};

/* ---- Repair and rebalance progress (the chunk driver, chunks.c) ---- */

struct node_repair_progress {
    uint64_t passes;          /* complete walks over every led group's chunk index */
    uint64_t chunks_checked;  /* chunks whose shards were verified */
    uint64_t chunks_repaired; /* chunks brought back to full redundancy */
    uint64_t shards_rebuilt;
    uint64_t shards_moved;    /* by rebalance */
    uint64_t chunks_waiting;  /* put off: a shard on a suspect node (grace period) */
    uint64_t chunks_degraded; /* in the last pass: could not be repaired */
    uint64_t in_flight;
    uint64_t hinted_waiting; /* repair hints held: for a suspect node, or to go again */
};

/* ---- RPC counters and latency histograms ---- */

enum node_rpc_kind {
    NODE_RPC_SHARD_PUT,
    NODE_RPC_SHARD_GET,
    NODE_RPC_SHARD_DELETE,
    NODE_RPC_SHARD_VERIFY,
    NODE_RPC_SHARD_LIST,
    NODE_RPC_PING,
    NODE_RPC_NODE_INFO,
    NODE_RPC_OTHER, /* unknown types, answered CAIRN_EUNSUPPORTED */
    NODE_RPC_KIND_COUNT
};

/* Results are counted per CAIRN_E* code: slot 0 is success, slot n is code
 * -n, and codes past the table share the last slot ("other"). */
#define NODE_RESULT_SLOTS 64
/* Latency bucket upper bounds in microseconds (Prometheus "le", in seconds). */
#define NODE_HISTOGRAM_BUCKETS 16

struct node_histogram {
    uint64_t buckets[NODE_HISTOGRAM_BUCKETS]; /* non-cumulative: observations in (le[i-1], le[i]] */
    uint64_t overflow;                        /* over the last bound (only in +Inf) */
    uint64_t count;
    uint64_t sum_us;
};

struct node_rpc_stats {
    uint64_t results[NODE_RPC_KIND_COUNT][NODE_RESULT_SLOTS];
    struct node_histogram latency[NODE_RPC_KIND_COUNT];
};

/* The kind of a frame type (MSG_*). */
enum node_rpc_kind node__rpc_kind(uint16_t type);
/* The label of a kind: "shard_put", ... */
const char *node__rpc_kind_name(enum node_rpc_kind kind);
/* Counts one finished request: its result code and latency. */
void node__rpc_record(struct node_rpc_stats *stats,
                      enum node_rpc_kind kind,
                      int rv,
                      uint64_t latency_us);
/* Adds one observation to a histogram. */
void node__histogram_observe(struct node_histogram *histogram, uint64_t value_us);
/* The upper bound of bucket i, in microseconds. */
uint64_t node__histogram_bound_us(unsigned i);

/* ---- Metrics snapshot and its text ---- */

#define NODE_METRICS_DIRS_MAX 16

/* One data directory, as read for a scrape. */
struct node_dir_metrics {
    const char *path; /* borrowed */
    bool cold;
    int rv; /* of stor_store_usage(): the numbers below are valid only when 0 */
    uint64_t shard_count;
    uint64_t shard_bytes;
    uint64_t disk_free;
    uint64_t disk_total;
};

/* One hosted Raft group, as read for a scrape. */
struct node_group_metrics {
    uint64_t group;
    unsigned role; /* NODE_GROUP_ROLE_*: follower, candidate, leader (0: unavailable) */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t voters;
};
#define NODE_GROUP_ROLE_FOLLOWER  1
#define NODE_GROUP_ROLE_CANDIDATE 2
#define NODE_GROUP_ROLE_LEADER    3

/* Everything one /metrics answer shows; every pointer is borrowed. */
struct node_metrics {
    uint64_t node_id;
    const char *cluster_id; /* hex */
    uint64_t start_time_ms; /* wall clock */
    struct node_dir_metrics dirs[NODE_METRICS_DIRS_MAX];
    unsigned dir_count;
    struct node_scrub_progress scrub;
    struct node_repair_progress repair; /* zeros on a node that leads no data group */
    const struct node_rpc_stats *rpc;
    unsigned connections;
    uint64_t connections_rejected;
    unsigned calls_retrying;                 /* metadata calls waiting to route again */
    const struct node_group_metrics *groups; /* the hosted Raft groups */
    unsigned group_count;
};

/* Appends m in the Prometheus text exposition format (version 0.0.4) to out.
 * CAIRN_ENOMEM. */
int node__metrics_render(const struct node_metrics *m, struct cn_buf *out);
/* Appends a label value with \\, \" and \n escaped. CAIRN_ENOMEM. */
int node__metrics_label_value(struct cn_buf *out, const char *value);

#endif /* NODE_OBS_H */
