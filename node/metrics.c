/*
 * RPC counters, latency histograms, and the Prometheus text of a metrics
 * snapshot (the text exposition format, version 0.0.4).
 *
 * The daemon counts on its loop thread (node__rpc_record() after each reply),
 * takes a snapshot on a scrape (admin.c), and this file turns the snapshot
 * into text: for each family a "# HELP" and a "# TYPE" line, then its samples,
 * label values escaped (\\, \", \n). Histograms are cumulative buckets with
 * an "le" bound in seconds, then +Inf, _sum and _count.
 *
 * Possible failure modes: out of memory while appending (CAIRN_ENOMEM; the
 * scrape answers 500). Everything else is a programmer error and asserted.
 */
#include <inttypes.h>
#include <stdio.h>

#include "obs.h"
#include "wire.pb-c.h"

/* Upper bounds of the latency buckets, in microseconds: 100 us to 10 s. */
static const uint64_t bounds_us[NODE_HISTOGRAM_BUCKETS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static const char *const kind_names[NODE_RPC_KIND_COUNT] = {
    "shard_put",  "shard_get", "shard_delete", "shard_verify",
    "shard_list", "ping",      "node_info",    "other",
};

enum node_rpc_kind node__rpc_kind(uint16_t type)
{
    switch (type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT:
        return NODE_RPC_SHARD_PUT;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_GET:
        return NODE_RPC_SHARD_GET;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_DELETE:
        return NODE_RPC_SHARD_DELETE;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_VERIFY:
        return NODE_RPC_SHARD_VERIFY;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_LIST:
        return NODE_RPC_SHARD_LIST;
    case CAIRN__WIRE__MSG_TYPE__MSG_PING:
        return NODE_RPC_PING;
    case CAIRN__WIRE__MSG_TYPE__MSG_NODE_INFO:
        return NODE_RPC_NODE_INFO;
    default:
        return NODE_RPC_OTHER;
    }
}

const char *node__rpc_kind_name(enum node_rpc_kind kind)
{
    CN_ASSERT(kind < NODE_RPC_KIND_COUNT);
    return kind_names[kind];
}

uint64_t node__histogram_bound_us(unsigned i)
{
    CN_ASSERT(i < NODE_HISTOGRAM_BUCKETS);
    return bounds_us[i];
}

void node__histogram_observe(struct node_histogram *histogram, uint64_t value_us)
{
    unsigned i = 0;

    while (i < NODE_HISTOGRAM_BUCKETS && value_us > bounds_us[i]) {
        i++;
    }
    if (i == NODE_HISTOGRAM_BUCKETS) {
        histogram->overflow++;
    } else {
        histogram->buckets[i]++;
    }
    histogram->count++;
    histogram->sum_us += value_us;
}

static unsigned result_slot(int rv)
{
    CN_ASSERT(rv <= 0);
    return -(int64_t)rv < NODE_RESULT_SLOTS - 1 ? (unsigned)-rv : NODE_RESULT_SLOTS - 1;
}

void node__rpc_record(struct node_rpc_stats *stats,
                      enum node_rpc_kind kind,
                      int rv,
                      uint64_t latency_us)
{
    CN_ASSERT(kind < NODE_RPC_KIND_COUNT);
    stats->results[kind][result_slot(rv)]++;
    node__histogram_observe(&stats->latency[kind], latency_us);
}

/* ---- Text ---- */

int node__metrics_label_value(struct cn_buf *out, const char *value)
{
    int rv = 0;

    for (const char *p = value; *p != '\0' && rv == 0; p++) {
        switch (*p) {
        case '\\':
            rv = cn_buf_append(out, "\\\\", 2);
            break;
        case '"':
            rv = cn_buf_append(out, "\\\"", 2);
            break;
        case '\n':
            rv = cn_buf_append(out, "\\n", 2);
            break;
        default:
            rv = cn_buf_append(out, p, 1);
        }
    }
    return rv;
}

static int family(struct cn_buf *out, const char *name, const char *type, const char *help)
{
    return cn_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name{label="value"} number; label NULL for none. */
static int sample(
    struct cn_buf *out, const char *name, const char *label, const char *value, uint64_t number)
{
    int rv = cn_buf_printf(out, "%s", name);

    if (rv == 0 && label != NULL) {
        rv = cn_buf_printf(out, "{%s=\"", label);
        rv = rv != 0 ? rv : node__metrics_label_value(out, value);
        rv = rv != 0 ? rv : cn_buf_append(out, "\"}", 2);
    }
    return rv != 0 ? rv : cn_buf_printf(out, " %" PRIu64 "\n", number);
}

static int render_identity(const struct node_metrics *m, struct cn_buf *out)
{
    int rv = family(out, "cairn_node_info", "gauge", "This node's id and cluster, as labels.");

    rv = rv != 0 ? rv
                 : cn_buf_printf(out, "cairn_node_info{node_id=\"%" PRIu64 "\",cluster_id=\"",
                                 m->node_id);
    rv = rv != 0 ? rv : node__metrics_label_value(out, m->cluster_id);
    rv = rv != 0 ? rv : cn_buf_printf(out, "\"} 1\n");
    rv = rv != 0 ? rv
                 : family(out, "cairn_node_start_time_seconds", "gauge",
                          "When the node started, in seconds since the Unix epoch.");
    return rv != 0 ? rv
                   : cn_buf_printf(out, "cairn_node_start_time_seconds %" PRIu64 ".%03u\n",
                                   m->start_time_ms / 1000, (unsigned)(m->start_time_ms % 1000));
}

/* One per-directory family; field picks the number from each directory. */
static int render_dir_family(const struct node_metrics *m,
                             struct cn_buf *out,
                             const char *name,
                             const char *help,
                             size_t field)
{
    int rv = family(out, name, "gauge", help);

    for (unsigned i = 0; i < m->dir_count && rv == 0; i++) {
        const struct node_dir_metrics *dir = &m->dirs[i];
        if (dir->rv != 0) {
            continue; /* unreadable: cairn_node_dir_up says so */
        }
        rv = cn_buf_printf(out, "%s{dir=\"", name);
        rv = rv != 0 ? rv : node__metrics_label_value(out, dir->path);
        rv = rv != 0
                 ? rv
                 : cn_buf_printf(out, "\",tier=\"%s\"} %" PRIu64 "\n", dir->cold ? "cold" : "hot",
                                 *(const uint64_t *)((const char *)dir + field));
    }
    return rv;
}

static int render_dirs(const struct node_metrics *m, struct cn_buf *out)
{
    int rv;

    CN_ASSERT(m->dir_count <= NODE_METRICS_DIRS_MAX);
    rv = family(out, "cairn_node_dir_up", "gauge",
                "1 if the data directory's usage could be read, else 0.");
    for (unsigned i = 0; i < m->dir_count && rv == 0; i++) {
        rv = cn_buf_printf(out, "cairn_node_dir_up{dir=\"");
        rv = rv != 0 ? rv : node__metrics_label_value(out, m->dirs[i].path);
        rv = rv != 0 ? rv
                     : cn_buf_printf(out, "\",tier=\"%s\"} %d\n", m->dirs[i].cold ? "cold" : "hot",
                                     m->dirs[i].rv == 0);
    }
    rv = rv != 0 ? rv
                 : render_dir_family(m, out, "cairn_node_shards", "Shards stored.",
                                     offsetof(struct node_dir_metrics, shard_count));
    rv = rv != 0 ? rv
                 : render_dir_family(m, out, "cairn_node_used_bytes", "Bytes of stored shards.",
                                     offsetof(struct node_dir_metrics, shard_bytes));
    rv = rv != 0 ? rv
                 : render_dir_family(m, out, "cairn_node_free_bytes",
                                     "Bytes available to the node on the directory's filesystem.",
                                     offsetof(struct node_dir_metrics, disk_free));
    return rv != 0 ? rv
                   : render_dir_family(m, out, "cairn_node_size_bytes",
                                       "Size of the directory's filesystem.",
                                       offsetof(struct node_dir_metrics, disk_total));
}

/* One family of one sample per row, each a uint64_t field of base. */
struct row {
    const char *name;
    const char *type;
    const char *help;
    size_t field;
};

static int render_rows(struct cn_buf *out, const struct row *rows, size_t count, const void *base)
{
    int rv = 0;

    for (size_t i = 0; i < count && rv == 0; i++) {
        rv = family(out, rows[i].name, rows[i].type, rows[i].help);
        rv = rv != 0 ? rv
                     : sample(out, rows[i].name, NULL, NULL,
                              *(const uint64_t *)((const char *)base + rows[i].field));
    }
    return rv;
}

static int render_scrub(const struct node_metrics *m, struct cn_buf *out)
{
    static const struct row rows[] = {
#define ROW(NAME, TYPE, HELP, FIELD) {NAME, TYPE, HELP, offsetof(struct node_scrub_progress, FIELD)}
        ROW("cairn_node_scrub_rate_bytes_per_second", "gauge",
            "Scrub's read budget; 0 when scrub is disabled.", rate),
        ROW("cairn_node_scrub_pass", "gauge", "The scrub pass under way (1 for the first).", pass),
        ROW("cairn_node_scrub_passes_completed_total", "counter",
            "Scrub passes that verified every shard.", passes_completed),
        ROW("cairn_node_scrub_pass_shards_checked", "gauge", "Shards verified in this pass.",
            shards_checked),
        ROW("cairn_node_scrub_pass_bytes_checked", "gauge", "Bytes verified in this pass.",
            bytes_checked),
        ROW("cairn_node_scrub_pass_corrupt", "gauge", "Corrupt shards found in this pass.",
            corrupt),
        ROW("cairn_node_scrub_corrupt_total", "counter",
            "Corrupt shards found and removed by scrub, awaiting repair.", corrupt_total),
        ROW("cairn_node_scrub_errors_total", "counter",
            "Shards scrub could not read (I/O errors), left in place.", errors_total),
        ROW("cairn_node_scrub_shards_total", "counter", "Shards verified by scrub.", shards_total),
        ROW("cairn_node_scrub_bytes_total", "counter", "Bytes verified by scrub.", bytes_total),
#undef ROW
    };

    return render_rows(out, rows, CN_ARRAY_SIZE(rows), &m->scrub);
}

static int render_repair(const struct node_metrics *m, struct cn_buf *out)
{
    static const struct row rows[] = {
#define ROW(NAME, TYPE, HELP, FIELD) \
    {NAME, TYPE, HELP, offsetof(struct node_repair_progress, FIELD)}
        ROW("cairn_node_repair_passes_total", "counter",
            "Walks over the chunk index of every data group this node leads.", passes),
        ROW("cairn_node_repair_chunks_checked_total", "counter",
            "Chunks whose shards were verified on their nodes.", chunks_checked),
        ROW("cairn_node_repair_chunks_repaired_total", "counter",
            "Chunks brought back to full redundancy.", chunks_repaired),
        ROW("cairn_node_repair_shards_rebuilt_total", "counter",
            "Shards rebuilt from other shards and stored.", shards_rebuilt),
        ROW("cairn_node_rebalance_shards_moved_total", "counter",
            "Shards moved to the nodes placement wants (joins, drains), once recorded.",
            shards_moved),
        ROW("cairn_node_repair_chunks_waiting_total", "counter",
            "Chunks put off because a node holding one of their shards is suspect.",
            chunks_waiting),
        ROW("cairn_node_repair_chunks_degraded", "gauge",
            "Chunks the last pass could not bring back to full redundancy.", chunks_degraded),
        ROW("cairn_node_repair_in_flight", "gauge", "Chunks being checked or repaired now.",
            in_flight),
        ROW("cairn_node_repair_hinted_waiting", "gauge",
            "Repair hints this node holds: chunks with a shard scrub set aside that wait for a "
            "suspect node holding one of their shards, or to be sent again; tried every tick.",
            hinted_waiting),
#undef ROW
    };

    return render_rows(out, rows, CN_ARRAY_SIZE(rows), &m->repair);
}

static int render_results(const struct node_rpc_stats *stats, struct cn_buf *out)
{
    int rv = family(out, "cairn_node_rpc_requests_total", "counter",
                    "Requests answered on the node port, by type and result.");

    for (unsigned kind = 0; kind < NODE_RPC_KIND_COUNT && rv == 0; kind++) {
        for (unsigned slot = 0; slot < NODE_RESULT_SLOTS && rv == 0; slot++) {
            uint64_t n = stats->results[kind][slot];
            const char *result = slot == 0                       ? "ok"
                                 : slot == NODE_RESULT_SLOTS - 1 ? "other"
                                                                 : cairn_errname(-(int)slot);
            if (n > 0) {
                rv = cn_buf_printf(out,
                                   "cairn_node_rpc_requests_total{type=\"%s\",result=\"%s\"} "
                                   "%" PRIu64 "\n",
                                   kind_names[kind], result, n);
            }
        }
    }
    return rv;
}

static int render_histogram(const struct node_histogram *h, const char *type, struct cn_buf *out)
{
    const char *name = "cairn_node_rpc_duration_seconds";
    uint64_t cumulative = 0;
    int rv = 0;

    for (unsigned i = 0; i < NODE_HISTOGRAM_BUCKETS && rv == 0; i++) {
        cumulative += h->buckets[i];
        rv = cn_buf_printf(out, "%s_bucket{type=\"%s\",le=\"%g\"} %" PRIu64 "\n", name, type,
                           (double)bounds_us[i] / 1e6, cumulative);
    }
    CN_ASSERT(rv != 0 || cumulative + h->overflow == h->count);
    rv = rv != 0 ? rv
                 : cn_buf_printf(out, "%s_bucket{type=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name,
                                 type, h->count);
    rv = rv != 0 ? rv
                 : cn_buf_printf(out, "%s_sum{type=\"%s\"} %" PRIu64 ".%06u\n", name, type,
                                 h->sum_us / 1000000, (unsigned)(h->sum_us % 1000000));
    return rv != 0
               ? rv
               : cn_buf_printf(out, "%s_count{type=\"%s\"} %" PRIu64 "\n", name, type, h->count);
}

static int render_rpc(const struct node_metrics *m, struct cn_buf *out)
{
    int rv = render_results(m->rpc, out);

    rv = rv != 0 ? rv
                 : family(out, "cairn_node_rpc_duration_seconds", "histogram",
                          "Time from a request's arrival to its reply, by type.");
    for (unsigned kind = 0; kind < NODE_RPC_KIND_COUNT && rv == 0; kind++) {
        if (m->rpc->latency[kind].count > 0) {
            rv = render_histogram(&m->rpc->latency[kind], kind_names[kind], out);
        }
    }
    rv = rv != 0
             ? rv
             : family(out, "cairn_node_connections", "gauge", "Connections open on the node port.");
    rv = rv != 0 ? rv : sample(out, "cairn_node_connections", NULL, NULL, m->connections);
    rv = rv != 0 ? rv
                 : family(out, "cairn_node_connections_rejected_total", "counter",
                          "Connections refused or cut (over the limit, bad handshake, "
                          "bad frame, timeout).");
    rv = rv != 0 ? rv
                 : sample(out, "cairn_node_connections_rejected_total", NULL, NULL,
                          m->connections_rejected);
    rv = rv != 0 ? rv
                 : family(out, "cairn_node_meta_calls_retrying", "gauge",
                          "Metadata calls waiting to be routed again (no leader reachable yet).");
    return rv != 0 ? rv
                   : sample(out, "cairn_node_meta_calls_retrying", NULL, NULL, m->calls_retrying);
}

/* One gauge family over the hosted groups, labelled group="N". */
static int render_group_family(const struct node_metrics *m,
                               struct cn_buf *out,
                               const char *name,
                               const char *help,
                               size_t offset)
{
    char label[24];
    int rv = family(out, name, "gauge", help);

    for (unsigned i = 0; i < m->group_count && rv == 0; i++) {
        const struct node_group_metrics *g = &m->groups[i];
        uint64_t value = *(const uint64_t *)((const char *)g + offset);
        snprintf(label, sizeof(label), "%" PRIu64, g->group);
        rv = sample(out, name, "group", label, value);
    }
    return rv;
}

static int render_groups(const struct node_metrics *m, struct cn_buf *out)
{
    char label[24];
    int rv;

    if (m->group_count == 0) {
        return 0;
    }
    rv = family(out, "cairn_group_role", "gauge",
                "This node's role in the group: 1 follower, 2 candidate, 3 leader, 0 unavailable.");
    for (unsigned i = 0; i < m->group_count && rv == 0; i++) {
        snprintf(label, sizeof(label), "%" PRIu64, m->groups[i].group);
        rv = sample(out, "cairn_group_role", "group", label, m->groups[i].role);
    }
    rv = rv != 0 ? rv
                 : render_group_family(m, out, "cairn_group_term", "The group's current term here.",
                                       offsetof(struct node_group_metrics, term));
    rv = rv != 0 ? rv
                 : render_group_family(m, out, "cairn_group_commit_index",
                                       "The highest log index known committed here.",
                                       offsetof(struct node_group_metrics, commit_index));
    rv = rv != 0 ? rv
                 : render_group_family(m, out, "cairn_group_apply_index",
                                       "The last index applied to the state machine here.",
                                       offsetof(struct node_group_metrics, applied_index));
    rv = rv != 0 ? rv
                 : render_group_family(m, out, "cairn_group_last_index",
                                       "The last index in this replica's log.",
                                       offsetof(struct node_group_metrics, last_index));
    return rv != 0 ? rv
                   : render_group_family(
                         m, out, "cairn_group_voters",
                         "Voters in the group's configuration as this replica knows it.",
                         offsetof(struct node_group_metrics, voters));
}

int node__metrics_render(const struct node_metrics *m, struct cn_buf *out)
{
    int rv;

    CN_ASSERT(m->cluster_id != NULL);
    CN_ASSERT(m->rpc != NULL);
    rv = render_identity(m, out);
    rv = rv != 0 ? rv : render_dirs(m, out);
    rv = rv != 0 ? rv : render_scrub(m, out);
    rv = rv != 0 ? rv : render_repair(m, out);
    rv = rv != 0 ? rv : render_rpc(m, out);
    return rv != 0 ? rv : render_groups(m, out);
}
