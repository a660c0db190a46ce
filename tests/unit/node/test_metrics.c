/* Metrics: RPC counting and histograms, and the Prometheus text of a
 * snapshot — families declared once with HELP and TYPE, label values
 * escaped, cumulative buckets ending in +Inf equal to _count. */
#include "obs.h"
#include "test.h"
#include "wire.pb-c.h"

struct fixture {
    struct node_rpc_stats rpc;
    struct node_metrics m;
    struct cn_buf out;
};

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    f->m.node_id = 7;
    f->m.cluster_id = "00112233445566778899aabbccddeeff";
    f->m.start_time_ms = 1700000000123;
    f->m.rpc = &f->rpc;
    cn_buf_init(&f->out);
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    cn_buf_close(&f->out);
    free(f);
}

/* Renders the snapshot into f->out as a NUL-terminated string. */
static const char *render(struct fixture *f)
{
    cn_buf_reset(&f->out);
    ASSERT_OK(node__metrics_render(&f->m, &f->out));
    ASSERT_OK(cn_buf_append(&f->out, "", 1));
    return (const char *)f->out.base;
}

#define ASSERT_HAS_LINE(text, line)                                                   \
    do {                                                                              \
        const char *hit_ = strstr((text), line "\n");                                 \
        if (hit_ == NULL || (hit_ != (text) && hit_[-1] != '\n')) {                   \
            cn_test_fail(__FILE__, __LINE__, "no line \"%s\" in:\n%s", line, (text)); \
        }                                                                             \
    } while (0)

#define ASSERT_NO_TEXT(text, needle) ASSERT_TRUE(strstr((text), needle) == NULL)

TEST(metrics, rpc_kinds_and_results, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_EQ(node__rpc_kind(CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT), NODE_RPC_SHARD_PUT);
    ASSERT_EQ(node__rpc_kind(CAIRN__WIRE__MSG_TYPE__MSG_SHARD_LIST), NODE_RPC_SHARD_LIST);
    ASSERT_EQ(node__rpc_kind(CAIRN__WIRE__MSG_TYPE__MSG_NODE_INFO), NODE_RPC_NODE_INFO);
    ASSERT_EQ(node__rpc_kind(999), NODE_RPC_OTHER);
    ASSERT_STR_EQ(node__rpc_kind_name(NODE_RPC_SHARD_GET), "shard_get");
    node__rpc_record(&f->rpc, NODE_RPC_SHARD_GET, 0, 80);
    node__rpc_record(&f->rpc, NODE_RPC_SHARD_GET, 0, 300);
    node__rpc_record(&f->rpc, NODE_RPC_SHARD_GET, CAIRN_ENOENT, 120);
    node__rpc_record(&f->rpc, NODE_RPC_SHARD_GET, CAIRN_ECORRUPT, 2000);
    node__rpc_record(&f->rpc, NODE_RPC_OTHER, -1000, 5); /* a code past the table */
    const char *text = render(f);
    ASSERT_HAS_LINE(text, "cairn_node_rpc_requests_total{type=\"shard_get\",result=\"ok\"} 2");
    ASSERT_HAS_LINE(text,
                    "cairn_node_rpc_requests_total{type=\"shard_get\",result=\"CAIRN_ENOENT\"} 1");
    ASSERT_HAS_LINE(
        text, "cairn_node_rpc_requests_total{type=\"shard_get\",result=\"CAIRN_ECORRUPT\"} 1");
    ASSERT_HAS_LINE(text, "cairn_node_rpc_requests_total{type=\"other\",result=\"other\"} 1");
    /* Kinds never seen have no samples. */
    ASSERT_NO_TEXT(text, "type=\"shard_put\"");
}

TEST(metrics, histogram_is_cumulative, setup, teardown)
{
    struct fixture *f = data;
    struct node_histogram *h = &f->rpc.latency[NODE_RPC_SHARD_PUT];

    node__histogram_observe(h, 100);      /* le 0.0001: bounds are inclusive */
    node__histogram_observe(h, 101);      /* le 0.00025 */
    node__histogram_observe(h, 4000);     /* le 0.005 */
    node__histogram_observe(h, 60000000); /* over 10 s: +Inf only */
    h = &f->rpc.latency[NODE_RPC_SHARD_PUT];
    ASSERT_EQ(h->count, 4);
    ASSERT_EQ(h->overflow, 1);
    ASSERT_EQ(node__histogram_bound_us(0), 100);
    ASSERT_EQ(node__histogram_bound_us(NODE_HISTOGRAM_BUCKETS - 1), 10000000);
    const char *text = render(f);
    ASSERT_HAS_LINE(text, "# TYPE cairn_node_rpc_duration_seconds histogram");
    ASSERT_HAS_LINE(text,
                    "cairn_node_rpc_duration_seconds_bucket{type=\"shard_put\",le=\"0.0001\"} 1");
    ASSERT_HAS_LINE(text,
                    "cairn_node_rpc_duration_seconds_bucket{type=\"shard_put\",le=\"0.00025\"} 2");
    ASSERT_HAS_LINE(text,
                    "cairn_node_rpc_duration_seconds_bucket{type=\"shard_put\",le=\"0.0025\"} 2");
    ASSERT_HAS_LINE(text,
                    "cairn_node_rpc_duration_seconds_bucket{type=\"shard_put\",le=\"0.005\"} 3");
    ASSERT_HAS_LINE(text, "cairn_node_rpc_duration_seconds_bucket{type=\"shard_put\",le=\"10\"} 3");
    ASSERT_HAS_LINE(text,
                    "cairn_node_rpc_duration_seconds_bucket{type=\"shard_put\",le=\"+Inf\"} 4");
    ASSERT_HAS_LINE(text, "cairn_node_rpc_duration_seconds_sum{type=\"shard_put\"} 60.004201");
    ASSERT_HAS_LINE(text, "cairn_node_rpc_duration_seconds_count{type=\"shard_put\"} 4");
}

TEST(metrics, label_values_are_escaped, setup, teardown)
{
    struct fixture *f = data;

    f->m.dir_count = 1;
    f->m.dirs[0] = (struct node_dir_metrics){
        .path = "/srv/a \"b\"\\c\nd", .shard_count = 3, .shard_bytes = 300, .disk_free = 9};
    const char *text = render(f);
    ASSERT_HAS_LINE(text, "cairn_node_shards{dir=\"/srv/a \\\"b\\\"\\\\c\\nd\",tier=\"hot\"} 3");
    ASSERT_HAS_LINE(text,
                    "cairn_node_used_bytes{dir=\"/srv/a \\\"b\\\"\\\\c\\nd\",tier=\"hot\"} 300");
}

TEST(metrics, directories_and_identity, setup, teardown)
{
    struct fixture *f = data;

    f->m.dir_count = 2;
    f->m.dirs[0] = (struct node_dir_metrics){
        .path = "/hot", .shard_count = 10, .shard_bytes = 1000, .disk_free = 50, .disk_total = 100};
    f->m.dirs[1] = (struct node_dir_metrics){.path = "/cold", .cold = true, .rv = CAIRN_EIO};
    f->m.connections = 4;
    f->m.connections_rejected = 2;
    const char *text = render(f);
    ASSERT_HAS_LINE(text, "cairn_node_info{node_id=\"7\",cluster_id="
                          "\"00112233445566778899aabbccddeeff\"} 1");
    ASSERT_HAS_LINE(text, "cairn_node_start_time_seconds 1700000000.123");
    ASSERT_HAS_LINE(text, "cairn_node_dir_up{dir=\"/hot\",tier=\"hot\"} 1");
    ASSERT_HAS_LINE(text, "cairn_node_dir_up{dir=\"/cold\",tier=\"cold\"} 0");
    ASSERT_HAS_LINE(text, "cairn_node_shards{dir=\"/hot\",tier=\"hot\"} 10");
    ASSERT_HAS_LINE(text, "cairn_node_free_bytes{dir=\"/hot\",tier=\"hot\"} 50");
    ASSERT_HAS_LINE(text, "cairn_node_size_bytes{dir=\"/hot\",tier=\"hot\"} 100");
    /* An unreadable directory has no numbers, only dir_up 0. */
    ASSERT_NO_TEXT(text, "cairn_node_shards{dir=\"/cold\"");
    ASSERT_HAS_LINE(text, "cairn_node_connections 4");
    ASSERT_HAS_LINE(text, "cairn_node_connections_rejected_total 2");
}

TEST(metrics, scrub_progress, setup, teardown)
{
    struct fixture *f = data;

    f->m.scrub = (struct node_scrub_progress){.rate = 64 << 20,
                                              .pass = 3,
                                              .passes_completed = 2,
                                              .shards_checked = 11,
                                              .bytes_checked = 12345,
                                              .corrupt = 1,
                                              .corrupt_total = 4,
                                              .errors_total = 5};
    const char *text = render(f);
    ASSERT_HAS_LINE(text, "# TYPE cairn_node_scrub_corrupt_total counter");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_rate_bytes_per_second 67108864");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_pass 3");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_passes_completed_total 2");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_pass_shards_checked 11");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_pass_bytes_checked 12345");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_pass_corrupt 1");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_corrupt_total 4");
    ASSERT_HAS_LINE(text, "cairn_node_scrub_errors_total 5");
}

TEST(metrics, repair_progress, setup, teardown)
{
    struct fixture *f = data;

    f->m.repair = (struct node_repair_progress){.passes = 7,
                                                .chunks_checked = 900,
                                                .chunks_repaired = 12,
                                                .shards_rebuilt = 13,
                                                .shards_moved = 40,
                                                .chunks_waiting = 3,
                                                .chunks_degraded = 2,
                                                .in_flight = 4,
                                                .hinted_waiting = 5};
    const char *text = render(f);
    ASSERT_HAS_LINE(text, "# TYPE cairn_node_repair_shards_rebuilt_total counter");
    ASSERT_HAS_LINE(text, "# TYPE cairn_node_repair_chunks_degraded gauge");
    ASSERT_HAS_LINE(text, "cairn_node_repair_passes_total 7");
    ASSERT_HAS_LINE(text, "cairn_node_repair_chunks_checked_total 900");
    ASSERT_HAS_LINE(text, "cairn_node_repair_chunks_repaired_total 12");
    ASSERT_HAS_LINE(text, "cairn_node_repair_shards_rebuilt_total 13");
    ASSERT_HAS_LINE(text, "cairn_node_rebalance_shards_moved_total 40");
    ASSERT_HAS_LINE(text, "cairn_node_repair_chunks_waiting_total 3");
    ASSERT_HAS_LINE(text, "cairn_node_repair_chunks_degraded 2");
    ASSERT_HAS_LINE(text, "cairn_node_repair_in_flight 4");
    ASSERT_HAS_LINE(text, "# TYPE cairn_node_repair_hinted_waiting gauge");
    ASSERT_HAS_LINE(text, "cairn_node_repair_hinted_waiting 5");
}

TEST(metrics, raft_groups, setup, teardown)
{
    struct fixture *f = data;
    struct node_group_metrics groups[2] = {
        {.group = 0,
         .role = NODE_GROUP_ROLE_LEADER,
         .term = 3,
         .commit_index = 40,
         .applied_index = 40,
         .last_index = 41,
         .voters = 3},
        {.group = 2,
         .role = NODE_GROUP_ROLE_FOLLOWER,
         .term = 5,
         .commit_index = 9,
         .applied_index = 8,
         .last_index = 9,
         .voters = 3},
    };
    const char *text = render(f);

    ASSERT_NO_TEXT(text, "cairn_group_"); /* no groups, no families */
    f->m.groups = groups;
    f->m.group_count = 2;
    text = render(f);
    ASSERT_HAS_LINE(text, "# TYPE cairn_group_role gauge");
    ASSERT_HAS_LINE(text, "cairn_group_role{group=\"0\"} 3");
    ASSERT_HAS_LINE(text, "cairn_group_role{group=\"2\"} 1");
    ASSERT_HAS_LINE(text, "cairn_group_term{group=\"2\"} 5");
    ASSERT_HAS_LINE(text, "cairn_group_commit_index{group=\"0\"} 40");
    ASSERT_HAS_LINE(text, "cairn_group_apply_index{group=\"2\"} 8");
    ASSERT_HAS_LINE(text, "cairn_group_last_index{group=\"0\"} 41");
    ASSERT_HAS_LINE(text, "cairn_group_voters{group=\"0\"} 3");
}

/* Every line is a HELP, a TYPE or a sample; every family is declared once,
 * HELP then TYPE, before its samples; the text ends with a newline. */
TEST(metrics, text_is_well_formed, setup, teardown)
{
    struct fixture *f = data;
    char declared[64][96];
    unsigned declared_count = 0;

    f->m.dir_count = 1;
    f->m.dirs[0] = (struct node_dir_metrics){.path = "/d"};
    node__rpc_record(&f->rpc, NODE_RPC_PING, 0, 10);
    const char *text = render(f);
    ASSERT_EQ(text[strlen(text) - 1], '\n');
    for (const char *line = text; *line != '\0';) {
        const char *end = strchr(line, '\n');
        char name[96] = {0};
        ASSERT_TRUE(end != NULL);
        if (strncmp(line, "# HELP ", 7) == 0) {
            ASSERT_EQ(sscanf(line + 7, "%95s", name), 1);
            for (unsigned i = 0; i < declared_count; i++) {
                ASSERT_TRUE(strcmp(declared[i], name) != 0); /* declared once */
            }
            ASSERT_CMP(declared_count, <, CN_ARRAY_SIZE(declared));
            snprintf(declared[declared_count++], sizeof(declared[0]), "%s", name);
            const char *type = end + 1;
            ASSERT_TRUE(strncmp(type, "# TYPE ", 7) == 0);
            ASSERT_TRUE(strncmp(type + 7, name, strlen(name)) == 0);
        } else if (strncmp(line, "# TYPE ", 7) != 0) {
            /* A sample: its name starts with the last declared family. */
            ASSERT_CMP(declared_count, >, 0);
            const char *family = declared[declared_count - 1];
            ASSERT_TRUE(strncmp(line, family, strlen(family)) == 0);
            ASSERT_TRUE(memchr(line, ' ', (size_t)(end - line)) != NULL);
        }
        line = end + 1;
    }
    ASSERT_CMP(declared_count, >=, 20);
}
