/*
 * cairn-node: the program every storage machine runs.
 *
 *   cairn-node init --data DIR[:hot|:cold]... --secret FILE [--groups S]
 *   cairn-node join ADDR --listen IP:PORT --data DIR... --secret FILE
 *   cairn-node run  --listen IP:PORT --data DIR... --secret FILE [--config FILE]
 *                   [--admin IP:PORT] [--scrub-rate SIZE]
 *
 * init creates a cluster: a new cluster id, the cluster secret file (mode
 * 0600; kept if it exists, so every node of a cluster can be given the same
 * one) and the data directories' identity as node 1. join makes a new node of
 * the cluster that ADDR belongs to: it proves the secret to ADDR, learns the
 * cluster id from it and writes its identity. run serves the node port until
 * SIGTERM or SIGINT, then stops cleanly: no new work, work in flight answered,
 * stores closed.
 *
 * Exit codes: 0 success; 1 a runtime failure (I/O, a refused peer); 2 bad
 * usage or configuration; 3 a data directory of another cluster or one locked
 * by another process.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2
#define EXIT_FOREIGN 3

static const char usage[] =
    "usage: cairn-node init --data DIR[:hot|:cold]... --secret FILE [--groups S]\n"
    "       cairn-node join ADDR --listen IP:PORT --data DIR... --secret FILE\n"
    "       cairn-node run --listen IP:PORT --data DIR... --secret FILE [options]\n"
    "options:\n"
    "  --config FILE       INI file with a [node] section (docs/config.md); flags win\n"
    "  --domain LABEL      failure domain (rack, host) for placement\n"
    "  --admin IP:PORT     serve GET /metrics and GET /health over HTTP there\n"
    "  --scrub-rate SIZE   bytes per second scrub re-verifies shards at (e.g. 64MiB;\n"
    "                      0 disables; default 16MiB)\n"
    "  --log-level LEVEL   debug, info, warn, error (default info)\n"
    "  --groups S          init: data groups 1..S besides the system group (default 4)\n"
    "  --advertise IP:PORT the address peers reach this node at (default: --listen)\n"
    "  --suspect-after MS  system leader: a node silent this long is suspect (5000)\n"
    "  --reserve SIZE      free space shard puts leave on each data directory's disk\n"
    "                      for the metadata (e.g. 1GiB; default 1% of it, 256MiB..4GiB)\n"
    "  --repair-rate N     chunks per second repair checks on the groups this node\n"
    "                      leads (0 disables; default 32)\n"
    "  --down-after MS     system leader: a node silent this long is down (30000)\n"
    "  --node-id N         join: take id N instead of asking the system group (old way)\n"
    "  --snapshot-threshold N, --snapshot-trailing N\n"
    "                      Raft: entries between snapshots (at least: one per KiB of\n"
    "                      the last), entries kept after one (libraft's defaults\n"
    "                      otherwise; small values for tests)\n"
    "exit codes: 0 ok, 1 runtime failure, 2 usage or config, 3 foreign or locked data dir,\n"
    "  4 storage failed while running (a data directory full or failing): start it again\n"
    "  once the disk works\n";

struct args {
    const char *command;
    const char *join_address;
    uint64_t node_id;
    uint32_t groups;
    const char *config_path;
    bool listen_set;
};

static int fail(int code, const char *what, const char *errmsg)
{
    fprintf(stderr, "cairn-node: %s: %s\n", what, errmsg);
    return code;
}

static int add_data_dir(struct node_config *config, const char *text)
{
    if (config->dir_count == NODE_DATA_DIRS_MAX ||
        node__parse_data_dir(text, &config->dirs[config->dir_count]) != 0) {
        fprintf(stderr, "cairn-node: bad --data %s (want DIR, DIR:hot or DIR:cold)\n", text);
        return EXIT_USAGE;
    }
    config->dir_count++;
    return 0;
}

/* Copies a file's value into a setting that no flag set. */
static void set_unless_flag(char *setting, size_t size, const char *value)
{
    if (setting[0] == '\0' && value != NULL) {
        snprintf(setting, size, "%s", value);
    }
}

/* Parses a scrub rate ("64MiB", "0"). EXIT_USAGE if bad or over the maximum. */
static int set_scrub_rate(struct node_config *config, const char *text)
{
    uint64_t rate;

    if (cn_parse_size(text, &rate) != 0 || rate > NODE_SCRUB_RATE_MAX) {
        fprintf(stderr, "cairn-node: bad scrub rate %s (want bytes per second: 64MiB, 0 = off)\n",
                text);
        return EXIT_USAGE;
    }
    config->scrub_rate = rate;
    config->scrub_rate_set = true;
    return 0;
}

/* Parses a reserve ("1GiB", "0"). EXIT_USAGE if bad. */
static int set_reserve(struct node_config *config, const char *text)
{
    if (cn_parse_size(text, &config->reserve) != 0) {
        fprintf(stderr, "cairn-node: bad reserve %s (want a size: 1GiB, 0 = none)\n", text);
        return EXIT_USAGE;
    }
    config->reserve_set = true;
    return 0;
}

/* Applies the admin, scrub and reserve keys of the [node] section under the
 * flags. */
static int load_config_obs(struct node_config *config, struct cn_config *file)
{
    /* Every key is read even when a flag wins, so they count as known. */
    const char *rate = cn_config_get(file, "node", "scrub_rate");
    const char *reserve = cn_config_get(file, "node", "reserve");
    int rv = 0;

    set_unless_flag(config->admin, sizeof(config->admin), cn_config_get(file, "node", "admin"));
    if (rate != NULL && !config->scrub_rate_set) {
        rv = set_scrub_rate(config, rate);
    }
    if (rv == 0 && reserve != NULL && !config->reserve_set) {
        rv = set_reserve(config, reserve);
    }
    return rv;
}

/* Applies the [node] section of a config file under what flags already set. */
static int load_config_file(struct node_config *config, const char *path)
{
    struct cn_config file;
    char errmsg[CN_ERRMSG_SIZE];
    const char *value;
    int rv;

    rv = cn_config_load(&file, path, errmsg);
    if (rv != 0) {
        return fail(EXIT_USAGE, "config", errmsg);
    }
    /* Each key is read even when a flag wins, so that it counts as known. */
    set_unless_flag(config->listen, sizeof(config->listen), cn_config_get(&file, "node", "listen"));
    set_unless_flag(config->secret_path, sizeof(config->secret_path),
                    cn_config_get(&file, "node", "secret"));
    set_unless_flag(config->failure_domain, sizeof(config->failure_domain),
                    cn_config_get(&file, "node", "domain"));
    set_unless_flag(config->advertise, sizeof(config->advertise),
                    cn_config_get(&file, "node", "advertise"));
    if ((value = cn_config_get(&file, "node", "data")) != NULL && config->dir_count == 0) {
        char *copy = cn_xstrdup(value), *save = NULL;
        for (char *dir = strtok_r(copy, " ", &save); dir != NULL && rv == 0;
             dir = strtok_r(NULL, " ", &save)) {
            rv = add_data_dir(config, dir);
        }
        free(copy);
    }
    if (rv == 0) {
        rv = load_config_obs(config, &file);
    }
    if ((value = cn_config_get(&file, "node", "log_level")) != NULL &&
        cn_log_level_parse(value, &config->log_level) != 0) {
        rv = fail(EXIT_USAGE, "config", "log_level: want debug, info, warn or error");
    }
    if (rv == 0 && cn_config_check_unused(&file, errmsg) != 0) {
        rv = fail(EXIT_USAGE, "config", errmsg);
    }
    cn_config_close(&file);
    return rv;
}

/* Applies one option; 0, or the exit code of a bad one. */
static int apply_option(int opt, const char *value, struct args *args, struct node_config *config)
{
    switch (opt) {
    case 'd':
        return add_data_dir(config, value);
    case 's':
        snprintf(config->secret_path, sizeof(config->secret_path), "%s", value);
        return 0;
    case 'l':
        snprintf(config->listen, sizeof(config->listen), "%s", value);
        return 0;
    case 'c':
        args->config_path = value;
        return 0;
    case 'f':
        snprintf(config->failure_domain, sizeof(config->failure_domain), "%s", value);
        return 0;
    case 'v':
        if (cn_log_level_parse(value, &config->log_level) != 0) {
            return fail(EXIT_USAGE, "--log-level", "want debug, info, warn or error");
        }
        return 0;
    case 'n':
        args->node_id = strtoull(value, NULL, 10);
        return 0;
    case 'a':
        snprintf(config->admin, sizeof(config->admin), "%s", value);
        return 0;
    case 'r':
        return set_scrub_rate(config, value);
    case 'F':
        return set_reserve(config, value);
    case 'g':
        args->groups = (uint32_t)strtoul(value, NULL, 10);
        if (args->groups == 0 || args->groups >= 255) {
            return fail(EXIT_USAGE, "--groups", "want 1..254");
        }
        return 0;
    case 'A':
        snprintf(config->advertise, sizeof(config->advertise), "%s", value);
        return 0;
    case 'S':
        config->suspect_after_ms = strtoull(value, NULL, 10);
        return 0;
    case 'D':
        config->down_after_ms = strtoull(value, NULL, 10);
        return 0;
    case 'T':
        config->snapshot_threshold = (unsigned)strtoul(value, NULL, 10);
        return 0;
    case 'R':
        config->snapshot_trailing = (unsigned)strtoul(value, NULL, 10);
        return 0;
#ifdef CAIRN_DEBUG_STALE_READS
    case 'X':
        config->debug_stale_reads = true;
        return 0;
#endif
    case 'P': {
        char *end;
        unsigned long rate = strtoul(value, &end, 10);
        if (*end != '\0' || end == value || rate > 100000) {
            return fail(EXIT_USAGE, "--repair-rate", "want chunks per second, 0..100000");
        }
        config->repair_rate = (unsigned)rate;
        config->repair_rate_set = true;
        return 0;
    }
    default:
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
}

static int parse_args(int argc, char **argv, struct args *args, struct node_config *config)
{
    static const struct option options[] = {
        {"data", required_argument, NULL, 'd'},
        {"secret", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"config", required_argument, NULL, 'c'},
        {"domain", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'v'},
        {"node-id", required_argument, NULL, 'n'},
        {"admin", required_argument, NULL, 'a'},
        {"scrub-rate", required_argument, NULL, 'r'},
        {"groups", required_argument, NULL, 'g'},
        {"advertise", required_argument, NULL, 'A'},
        {"suspect-after", required_argument, NULL, 'S'},
        {"down-after", required_argument, NULL, 'D'},
        {"snapshot-threshold", required_argument, NULL, 'T'},
        {"snapshot-trailing", required_argument, NULL, 'R'},
        {"repair-rate", required_argument, NULL, 'P'},
        {"reserve", required_argument, NULL, 'F'},
#ifdef CAIRN_DEBUG_STALE_READS
        {"debug-stale-reads", no_argument, NULL, 'X'},
#endif
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt, rv;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : -1;
    }
    args->command = argv[1];
    optind = 2;
    if (strcmp(args->command, "join") == 0 && argc > 2 && argv[2][0] != '-') {
        args->join_address = argv[2];
        optind = 3;
    }
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if ((rv = apply_option(opt, optarg, args, config)) != 0) {
            return rv;
        }
    }
    if (optind != argc) {
        return fail(EXIT_USAGE, "unexpected argument", argv[optind]);
    }
    if (args->config_path != NULL && (rv = load_config_file(config, args->config_path)) != 0) {
        return rv;
    }
    if (config->dir_count == 0 || config->secret_path[0] == '\0') {
        return fail(EXIT_USAGE, args->command, "--data and --secret are required");
    }
    return 0;
}

int node__cluster_init(const struct node_config *config,
                       const char *address,
                       uint32_t data_groups,
                       char *errmsg);

static int cmd_init(struct node_config *config, uint32_t groups)
{
    uint8_t secret[NODE_SECRET_SIZE], cluster_id[NODE_CLUSTER_ID_SIZE];
    char errmsg[CN_ERRMSG_SIZE], hex[2 * NODE_CLUSTER_ID_SIZE + 1];
    int rv;

    rv = node_secret_load(config->secret_path, secret, errmsg);
    if (rv == CAIRN_ENOENT) {
        rv = node_secret_create(config->secret_path, secret, errmsg);
    }
    if (rv != 0) {
        return fail(rv == CAIRN_EPERM || rv == CAIRN_EINVAL ? EXIT_USAGE : EXIT_RUNTIME, "secret",
                    errmsg);
    }
    randombytes_buf(cluster_id, sizeof(cluster_id));
    rv = node__identity_create(config, cluster_id, 1, errmsg);
    if (rv != 0) {
        return fail(rv == CAIRN_EEXIST ? EXIT_FOREIGN : EXIT_RUNTIME, "init", errmsg);
    }
    rv = node__cluster_init(config, NULL, groups, errmsg);
    if (rv != 0) {
        return fail(EXIT_RUNTIME, "init", errmsg);
    }
    cn_hex_encode(cluster_id, sizeof(cluster_id), hex);
    printf("cluster %s created with %u data groups; this is node 1\n", hex, groups);
    return 0;
}

int node__run(struct node *node);
int node__join(struct node_config *config, const char *address, uint64_t node_id);

int main(int argc, char **argv)
{
    struct node_config config = {.log_level = CN_INFO};
    struct args args = {0};
    struct node node = {0};
    int rv;

    /* A peer that hangs up must cost a write error (EPIPE), not the process. */
    signal(SIGPIPE, SIG_IGN);
    (void)cn_crash_report_install(); /* a death leaves a backtrace in the log */
    rv = parse_args(argc, argv, &args, &config);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    cn_log_set_level(config.log_level);
    if (strcmp(args.command, "init") == 0) {
        return cmd_init(&config, args.groups != 0 ? args.groups : 4);
    }
    if (strcmp(args.command, "join") == 0) {
        if (args.join_address == NULL ||
            (args.node_id == 0 && config.listen[0] == '\0' && config.advertise[0] == '\0')) {
            return fail(EXIT_USAGE, "join", "want: join ADDR --listen IP:PORT");
        }
        if (args.node_id == 1) {
            return fail(EXIT_USAGE, "join", "--node-id must be 2 or more");
        }
        return node__join(&config, args.join_address, args.node_id);
    }
    if (strcmp(args.command, "run") == 0) {
        if (config.listen[0] == '\0') {
            return fail(EXIT_USAGE, "run", "--listen IP:PORT is required");
        }
        if (!config.scrub_rate_set) {
            config.scrub_rate = NODE_SCRUB_RATE_DEFAULT;
        }
        if (config.suspect_after_ms == 0) {
            config.suspect_after_ms = 5000;
        }
        if (config.down_after_ms == 0) {
            config.down_after_ms = 30000;
        }
        if (!config.repair_rate_set) {
            config.repair_rate = 32;
        }
        node.config = config;
        return node__run(&node);
    }
    return fail(EXIT_USAGE, "unknown command", args.command);
}
