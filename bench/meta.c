/*
 * cairn-bench meta [--json] [--ops N] [--dir DIR]: file commits through one
 * metadata group of three servers in this process, with libraft's libuv disk
 * I/O in a temporary folder under DIR (/tmp by default: pass a folder on the
 * disk you mean to measure) and TCP on loopback. Runs 1, 16 and 128
 * concurrent clients, each committing new versions of its own file against
 * its last version, and reports commits/s and p50/p99 latency for each.
 *
 * In the same run, with the same entry size and concurrency: a bare libraft
 * cluster with a trivial state machine (raft.c: the ceiling) and etcd-server
 * as a 3-member cluster (etcd.c: the yardstick), and the ratios against them.
 * Not yet measured here: S groups.
 */
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "bench.h"
#include "meta.h"

#define SERVERS     3
#define CLIENTS_MAX 128
#define NS          1
#define ROOT        1

struct server {
    char dir[320];
    char raft_dir[340];
    char address[32];
    struct meta_store *store;
    struct meta_sm *sm;
    struct raft_uv_transport transport;
    struct meta_group *group;
    bool running;
};

struct client {
    struct meta_propose req;
    struct run *run;
    uint64_t inode;
    uint64_t version;
    uint64_t start_ns;
};

struct run {
    uv_loop_t loop;
    uv_timer_t tick;
    char dir[300];
    struct server servers[SERVERS];
    struct meta_server config[SERVERS];
    struct client clients[CLIENTS_MAX];
    unsigned client_count;
    unsigned ops;
    unsigned issued;
    unsigned done;
    unsigned failed;
    uint64_t *latency_ns;
    uint64_t request_seq;
};

static void tick_cb(uv_timer_t *timer)
{
    (void)timer;
}

static int server_start(struct run *run, unsigned i)
{
    struct server *s = &run->servers[i];
    struct meta_group_config config = {0};
    char errmsg[CN_ERRMSG_SIZE] = "";
    int rv;

    rv = meta_store_open(s->dir, &s->store, errmsg);
    if (rv == 0) {
        rv = meta_sm_new(s->store, 1, NULL, &s->sm);
    }
    if (rv != 0 || raft_uv_tcp_init(&s->transport, &run->loop) != 0) {
        fprintf(stderr, "meta: server %u: %s\n", i, errmsg);
        return -1;
    }
    config.id = i + 1;
    config.address = s->address;
    config.dir = s->raft_dir;
    config.transport = &s->transport;
    config.snapshot_threshold = 4096;
    config.snapshot_trailing = 1024;
    if (meta_group_new(&run->loop, s->sm, &config, &s->group, errmsg) != 0 ||
        meta_group_bootstrap(s->group, run->config, SERVERS, errmsg) != 0 ||
        meta_group_start(s->group, errmsg) != 0) {
        fprintf(stderr, "meta: server %u: %s\n", i, errmsg);
        return -1;
    }
    s->running = true;
    return 0;
}

static void server_closed_cb(void *data)
{
    struct server *s = data;

    raft_uv_tcp_close(&s->transport);
    s->running = false;
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int leader_of(struct run *run)
{
    for (unsigned i = 0; i < SERVERS; i++) {
        if (meta_group_is_leader(run->servers[i].group)) {
            return (int)i;
        }
    }
    return -1;
}

static void header_fill(struct run *run, Cairn__Cmd__Header *header, uint8_t *request_id)
{
    memset(request_id, 0, META_REQUEST_ID_SIZE);
    cn_put_u64(request_id, ++run->request_seq);
    header->request_id.data = request_id;
    header->request_id.len = META_REQUEST_ID_SIZE;
    header->time_ms = 1700000000000ull;
    header->actor_user = 1;
}

static void commit_cb(struct meta_propose *req, const struct meta_result *result);

/* Proposes the client's next version: one 4 MiB chunk, like a small file. */
static void commit_next(struct client *client, int leader)
{
    struct run *run = client->run;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Commit commit = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef chunk = CAIRN__CMD__CHUNK_REF__INIT, *chunks[1] = {&chunk};
    uint8_t request_id[META_REQUEST_ID_SIZE], chunk_id[META_CHUNK_ID_SIZE], hash[32];

    memset(chunk_id, (int)run->issued, sizeof(chunk_id));
    memset(hash, 0x5a, sizeof(hash));
    header_fill(run, &header, request_id);
    chunk.chunk_id.data = chunk_id;
    chunk.chunk_id.len = sizeof(chunk_id);
    chunk.size = 4u << 20;
    version.size = chunk.size;
    version.content_hash.data = hash;
    version.content_hash.len = sizeof(hash);
    version.n_chunks = 1;
    version.chunks = chunks;
    commit.ns = NS;
    commit.inode = client->inode;
    commit.base_version = client->version;
    commit.version = &version;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_COMMIT;
    cmd.commit = &commit;
    client->req.data = client;
    client->start_ns = uv_hrtime();
    if (meta_group_propose(run->servers[leader].group, &client->req, &cmd, commit_cb) != 0) {
        run->failed++;
        run->done++;
        return;
    }
    run->issued++;
}

static void commit_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct client *client = req->data;
    struct run *run = client->run;
    int leader;

    run->latency_ns[run->done++] = uv_hrtime() - client->start_ns;
    if (result->rv != 0) {
        run->failed++;
        return;
    }
    client->version = result->value;
    leader = leader_of(run);
    if (run->issued < run->ops && leader >= 0) {
        commit_next(client, leader);
    }
}

static void setup_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct run *run = req->data;

    run->done++;
    run->failed += result->rv != 0;
}

/* The namespace and one file per client, one proposal at a time. */
static int setup_files(struct run *run, int leader)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__NamespaceCreate ns = CAIRN__CMD__NAMESPACE_CREATE__INIT;
    Cairn__Cmd__Create create = CAIRN__CMD__CREATE__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    struct meta_propose req = {.data = run};
    char name[32];

    cmd.header = &header;
    ns.ns = NS;
    ns.kind = CAIRN__CMD__NAMESPACE_KIND__NS_DRIVE;
    ns.owner = 1;
    ns.root_inode = ROOT;
    ns.name = "bench";
    for (unsigned i = 0; i <= run->client_count; i++) {
        header_fill(run, &header, request_id);
        if (i == 0) {
            cmd.op_case = CAIRN__CMD__COMMAND__OP_NAMESPACE_CREATE;
            cmd.namespace_create = &ns;
        } else {
            snprintf(name, sizeof(name), "file%u", i);
            create.ns = NS;
            create.parent = ROOT;
            create.name = name;
            create.inode = 1 + i;
            cmd.op_case = CAIRN__CMD__COMMAND__OP_CREATE;
            cmd.create = &create;
        }
        if (meta_group_propose(run->servers[leader].group, &req, &cmd, setup_cb) != 0) {
            return -1;
        }
        while (run->done <= i) {
            uv_run(&run->loop, UV_RUN_ONCE);
        }
    }
    return run->failed == 0 ? 0 : -1;
}

static void run_close(struct run *run)
{
    for (unsigned i = 0; i < SERVERS; i++) {
        struct server *s = &run->servers[i];
        if (s->running) {
            meta_group_close(s->group, server_closed_cb, s);
            while (s->running) {
                uv_run(&run->loop, UV_RUN_ONCE);
            }
        }
        if (s->sm != NULL) {
            meta_sm_free(s->sm);
        }
        if (s->store != NULL) {
            meta_store_close(s->store);
        }
    }
    uv_close((uv_handle_t *)&run->tick, NULL);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    uv_loop_close(&run->loop);
    nftw(run->dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(run->latency_ns);
}

static const char *base_dir = "/tmp";

static int run_open(struct run *run)
{
    uv_loop_init(&run->loop);
    uv_timer_init(&run->loop, &run->tick);
    uv_timer_start(&run->tick, tick_cb, 5, 5);
    snprintf(run->dir, sizeof(run->dir), "%s/cairn-bench-meta-XXXXXX", base_dir);
    if (mkdtemp(run->dir) == NULL) {
        return -1;
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        struct server *s = &run->servers[i];
        snprintf(s->dir, sizeof(s->dir), "%s/%u", run->dir, i + 1);
        /* From run->dir, not s->dir: gcc's -Wrestrict cannot tell the fields apart. */
        snprintf(s->raft_dir, sizeof(s->raft_dir), "%s/%u/raft", run->dir, i + 1);
        mkdir(s->dir, 0700);
        mkdir(s->raft_dir, 0700);
        bench_free_port(s->address, sizeof(s->address));
        run->config[i].id = i + 1;
        run->config[i].address = s->address;
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        if (server_start(run, i) != 0) {
            return -1;
        }
    }
    return 0;
}

/* One measurement: commits/s, and p50/p99 latency in ms. */
static int measure(unsigned clients, unsigned ops, struct bench_latency *out)
{
    struct run *run = calloc(1, sizeof(*run));
    double start, elapsed;
    int leader = -1, rv = -1;

    run->client_count = clients;
    run->ops = ops;
    run->latency_ns = calloc(ops, sizeof(*run->latency_ns));
    if (run_open(run) != 0) {
        goto out;
    }
    for (start = bench_now(); leader < 0 && bench_now() - start < 10;) {
        uv_run(&run->loop, UV_RUN_ONCE);
        leader = leader_of(run);
    }
    if (leader < 0 || setup_files(run, leader) != 0) {
        goto out;
    }
    run->done = 0;
    start = bench_now();
    for (unsigned i = 0; i < clients && run->issued < ops; i++) {
        run->clients[i] = (struct client){.run = run, .inode = 2 + i};
        commit_next(&run->clients[i], leader);
    }
    while (run->done < run->issued && bench_now() - start < 120) {
        uv_run(&run->loop, UV_RUN_ONCE);
    }
    elapsed = bench_now() - start;
    if (run->failed != 0 || run->done == 0) {
        fprintf(stderr, "meta: %u of %u commits failed\n", run->failed, run->done);
        goto out;
    }
    bench_latency_summarise(run->latency_ns, run->done, elapsed, out);
    rv = 0;
out:
    run_close(run);
    free(run);
    return rv;
}

/* The size of the commit command the clients propose, padded as in the log. */
static size_t commit_entry_size(void)
{
    struct client client = {0};
    struct run run = {.client_count = 1};
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Commit commit = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef chunk = CAIRN__CMD__CHUNK_REF__INIT, *chunks[1] = {&chunk};
    uint8_t request_id[META_REQUEST_ID_SIZE], chunk_id[META_CHUNK_ID_SIZE] = {0}, hash[32] = {0};
    struct cn_buf buf;
    size_t size;

    (void)client;
    header_fill(&run, &header, request_id);
    chunk.chunk_id.data = chunk_id;
    chunk.chunk_id.len = sizeof(chunk_id);
    chunk.size = 4u << 20;
    version.size = chunk.size;
    version.content_hash.data = hash;
    version.content_hash.len = sizeof(hash);
    version.n_chunks = 1;
    version.chunks = chunks;
    commit.ns = NS;
    commit.inode = 2;
    commit.base_version = 1;
    commit.version = &version;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_COMMIT;
    cmd.commit = &commit;
    cn_buf_init(&buf);
    size = meta_command_encode(&cmd, &buf) == 0 ? buf.len : 128;
    cn_buf_close(&buf);
    return size;
}

static void out_latency(const char *system, unsigned clients, const struct bench_latency *l)
{
    char name[96];

    snprintf(name, sizeof(name), "%s_per_s_%u", system, clients);
    bench_out_number(name, l->rate);
    snprintf(name, sizeof(name), "%s_p50_ms_%u", system, clients);
    bench_out_number(name, l->p50_ms);
    snprintf(name, sizeof(name), "%s_p99_ms_%u", system, clients);
    bench_out_number(name, l->p99_ms);
}

int bench_meta_main(int argc, char **argv)
{
    static const unsigned concurrency[] = {1, 16, 128};
    struct bench_latency meta[3], raft[3], etcd[3];
    unsigned ops = 5000;
    bool json = false, with_etcd = true;
    size_t entry_size;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
            ops = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            base_dir = argv[++i];
        } else if (strcmp(argv[i], "--no-etcd") == 0) {
            with_etcd = false;
        } else {
            fprintf(stderr, "usage: cairn-bench meta [--json] [--ops N] [--dir DIR] [--no-etcd]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    entry_size = commit_entry_size();
    bench_out_begin(json);
    bench_out_section("meta: file commits, 1 group of 3 servers (libuv disk I/O, loopback TCP)");
    bench_out_number("entry_bytes", (double)entry_size);
    for (size_t i = 0; i < 3; i++) {
        if (measure(concurrency[i], ops, &meta[i]) != 0) {
            return 1;
        }
        out_latency("commits", concurrency[i], &meta[i]);
    }
    bench_out_section("raft: bare libraft, 3 servers, a counting state machine, same entries");
    for (size_t i = 0; i < 3; i++) {
        if (bench_raft_measure(base_dir, entry_size, concurrency[i], ops, &raft[i]) != 0) {
            return 1;
        }
        out_latency("raft", concurrency[i], &raft[i]);
    }
    if (with_etcd) {
        bench_out_section(
            "etcd: etcd-server, 3 members, /v3/kv/put to the leader, same value size");
        for (size_t i = 0; i < 3; i++) {
            if (bench_etcd_measure(base_dir, entry_size, concurrency[i], ops, &etcd[i]) != 0) {
                return 1;
            }
            out_latency("etcd", concurrency[i], &etcd[i]);
        }
    }
    bench_out_section("ratios (goals: >= 2 against etcd at 16 and 128, >= 0.7 of bare libraft)");
    if (with_etcd) {
        bench_out_number("ratio_vs_etcd_16", meta[1].rate / etcd[1].rate);
        bench_out_number("ratio_vs_etcd_128", meta[2].rate / etcd[2].rate);
        bench_out_number("p99_ratio_vs_etcd_16", meta[1].p99_ms / etcd[1].p99_ms);
        bench_out_number("p99_ratio_vs_etcd_128", meta[2].p99_ms / etcd[2].p99_ms);
    }
    bench_out_number("ratio_vs_raft_128", meta[2].rate / raft[2].rate);
    bench_out_end();
    return 0;
}
