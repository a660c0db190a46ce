/*
 * cairn-bench meta [--json] [--ops N] [--dir DIR] [--groups S] [--no-etcd]
 * [--no-raft] [--no-meta]: file commits through one metadata group of three
 * servers in this process, each on its own thread with its own libuv loop and
 * RocksDB (as each is its own machine in production), with libraft's libuv
 * disk I/O in a temporary folder under DIR (/tmp by default: pass a folder on
 * the disk you mean to measure) and TCP on loopback. Runs 1, 16 and 128
 * concurrent clients (on the leader's loop), each committing new versions of
 * its own file against its last version, and reports commits/s, p50/p99
 * latency, and CPU per commit: the whole process's, the leader thread's and
 * the busier follower thread's.
 *
 * Then S groups (3 by default; --groups 1 skips it) on the same three
 * servers: each server holds a replica of every group (its own Raft folder and
 * port, every state machine in the server's one RocksDB), the leaders spread
 * (group g to server g mod 3, by leader transfer), and the 16 and 128 clients
 * split evenly between the groups, each group's on its leader's loop.
 *
 * In the same run, with the same entry size and concurrency: a bare libraft
 * cluster with a trivial state machine (raft.c: the ceiling) and etcd-server
 * as a 3-member cluster (etcd.c: the yardstick), and the ratios against them.
 *
 * --apply: the state machine alone, for steadier A/B figures on a shared
 * machine: one store in DIR, the same namespace, files and commit commands
 * (CLIENTS_MAX files in turn), applied on this thread with no Raft and no
 * loop; reports this thread's CPU per apply.
 */
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
#define GROUPS_MAX  8
#define CLIENTS_MAX 128
#define NS          1
#define ROOT        1

/* One server's replica of one group. */
struct replica {
    char raft_dir[360];
    char address[32];
    struct meta_sm *sm;
    struct raft_uv_transport transport;
    struct meta_group *group;
    bool running;
};

struct server {
    struct bench_server thread; /* first: the loop, the thread, the wake-ups */
    char dir[320];
    struct meta_store *store; /* one per server, every group's state machine in it */
    unsigned group_count;
    struct replica replicas[GROUPS_MAX];
    atomic_uint leads; /* bit g: this server leads group g (at the last tick) */
};

struct client {
    struct meta_propose req;
    struct lane *lane;
    uint64_t inode;
    uint64_t version;
    uint64_t start_ns;
};

/* One group's share of a run: its clients live on its leader's thread, and
 * everything here but the atomics is touched only there. */
struct lane {
    unsigned index;
    struct server *leader_server;
    struct meta_group *leader;
    struct meta_transfer transfer;
    struct client *clients;
    unsigned client_count;
    unsigned ops;
    unsigned issued;
    unsigned done;
    unsigned failed;
    unsigned setup_done;
    uint64_t *latency_ns; /* ops of them */
    uint64_t request_seq;
    double start, end;
    atomic_bool setup_finished;
    atomic_bool finished;
};

struct run {
    char dir[300];
    struct server servers[SERVERS];
    struct meta_server config[GROUPS_MAX][SERVERS];
    struct client clients[CLIENTS_MAX];
    struct lane lanes[GROUPS_MAX];
    unsigned group_count;
    uint64_t *latency_ns;
};

/* On the server's thread, every 5 ms: which groups it leads. */
static bool is_leader(struct bench_server *thread)
{
    struct server *s = (struct server *)thread;
    unsigned leads = 0;

    for (unsigned g = 0; g < s->group_count; g++) {
        if (s->replicas[g].running && meta_group_is_leader(s->replicas[g].group)) {
            leads |= 1u << g;
        }
    }
    atomic_store(&s->leads, leads);
    return leads != 0;
}

static int server_start(struct run *run, unsigned i)
{
    struct server *s = &run->servers[i];
    char errmsg[CN_ERRMSG_SIZE] = "";

    bench_server_init(&s->thread, is_leader);
    if (meta_store_open(s->dir, &s->store, errmsg) != 0) {
        fprintf(stderr, "meta: server %u: %s\n", i, errmsg);
        return -1;
    }
    s->group_count = run->group_count;
    for (unsigned g = 0; g < run->group_count; g++) {
        struct replica *r = &s->replicas[g];
        struct meta_group_config config = {0};

        if (meta_sm_new(s->store, 1 + g, NULL, &r->sm) != 0 ||
            raft_uv_tcp_init(&r->transport, &s->thread.loop) != 0) {
            fprintf(stderr, "meta: server %u: group %u: no state machine or transport\n", i, g);
            return -1;
        }
        config.id = i + 1;
        config.address = r->address;
        config.dir = r->raft_dir;
        config.transport = &r->transport;
        config.snapshot_threshold = 4096;
        config.snapshot_trailing = 1024;
        if (meta_group_new(&s->thread.loop, r->sm, &config, &r->group, errmsg) != 0) {
            fprintf(stderr, "meta: server %u: %s\n", i, errmsg);
            raft_uv_tcp_close(&r->transport);
            return -1;
        }
        r->running = true;
        if (meta_group_bootstrap(r->group, run->config[g], SERVERS, errmsg) != 0 ||
            meta_group_start(r->group, errmsg) != 0) {
            fprintf(stderr, "meta: server %u: %s\n", i, errmsg);
            return -1;
        }
    }
    return 0;
}

static void replica_closed_cb(void *data)
{
    struct replica *r = data;

    raft_uv_tcp_close(&r->transport);
}

static void server_close(struct bench_server *thread, void *data)
{
    struct server *s = (struct server *)thread;

    (void)data;
    for (unsigned g = 0; g < s->group_count; g++) {
        if (s->replicas[g].running) {
            meta_group_close(s->replicas[g].group, replica_closed_cb, &s->replicas[g]);
        }
    }
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void header_fill(uint64_t *seq, Cairn__Cmd__Header *header, uint8_t *request_id)
{
    memset(request_id, 0, META_REQUEST_ID_SIZE);
    cn_put_u64(request_id, ++*seq);
    header->request_id.data = request_id;
    header->request_id.len = META_REQUEST_ID_SIZE;
    header->time_ms = 1700000000000ull;
    header->actor_user = 1;
}

static void finish(struct lane *lane)
{
    lane->end = bench_now();
    atomic_store(&lane->finished, true);
}

static void commit_cb(struct meta_propose *req, const struct meta_result *result);

/* Proposes the client's next version: one 4 MiB chunk, like a small file. */
static void commit_next(struct client *client)
{
    struct lane *lane = client->lane;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Commit commit = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef chunk = CAIRN__CMD__CHUNK_REF__INIT, *chunks[1] = {&chunk};
    uint8_t request_id[META_REQUEST_ID_SIZE], chunk_id[META_CHUNK_ID_SIZE], hash[32];

    memset(chunk_id, (int)lane->issued, sizeof(chunk_id));
    memset(hash, 0x5a, sizeof(hash));
    header_fill(&lane->request_seq, &header, request_id);
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
    lane->issued++;
    if (meta_group_propose(lane->leader, &client->req, &cmd, commit_cb) != 0) {
        lane->failed++;
        lane->done++;
    }
}

static void commit_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct client *client = req->data;
    struct lane *lane = client->lane;

    lane->latency_ns[lane->done++] = uv_hrtime() - client->start_ns;
    if (result->rv != 0) {
        lane->failed++;
    } else {
        client->version = result->value;
        if (lane->issued < lane->ops) {
            commit_next(client);
        }
    }
    if (lane->done == lane->issued) {
        finish(lane); /* every client is idle: all done, or the rest failed */
    }
}

/* On the lane's leader's thread: its clients start. */
static void clients_start(struct bench_server *thread, void *data)
{
    struct lane *lane = data;

    (void)thread;
    lane->start = bench_now();
    for (unsigned i = 0; i < lane->client_count && lane->issued < lane->ops; i++) {
        lane->clients[i] = (struct client){.lane = lane, .inode = 2 + i};
        commit_next(&lane->clients[i]);
    }
    if (lane->done == lane->issued) {
        finish(lane);
    }
}

static void setup_next(struct lane *lane);

static void setup_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct lane *lane = req->data;

    free(req);
    lane->setup_done++;
    lane->failed += result->rv != 0;
    setup_next(lane);
}

/* The namespace and one file per client, one proposal at a time. */
static void setup_next(struct lane *lane)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__NamespaceCreate ns = CAIRN__CMD__NAMESPACE_CREATE__INIT;
    Cairn__Cmd__Create create = CAIRN__CMD__CREATE__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    struct meta_propose *req;
    unsigned i = lane->setup_done;
    char name[32];

    if (lane->failed != 0 || i > lane->client_count) {
        atomic_store(&lane->setup_finished, true);
        return;
    }
    cmd.header = &header;
    header_fill(&lane->request_seq, &header, request_id);
    if (i == 0) {
        ns.ns = NS;
        ns.kind = CAIRN__CMD__NAMESPACE_KIND__NS_DRIVE;
        ns.owner = 1;
        ns.root_inode = ROOT;
        ns.name = "bench";
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
    req = calloc(1, sizeof(*req));
    req->data = lane;
    if (meta_group_propose(lane->leader, req, &cmd, setup_cb) != 0) {
        free(req);
        lane->failed++;
        atomic_store(&lane->setup_finished, true);
    }
}

static void setup_start(struct bench_server *thread, void *data)
{
    (void)thread;
    setup_next(data);
}

static void run_close(struct run *run)
{
    for (unsigned i = 0; i < SERVERS; i++) {
        struct server *s = &run->servers[i];

        bench_server_stop(&s->thread, server_close, NULL);
        for (unsigned g = 0; g < s->group_count; g++) {
            if (s->replicas[g].sm != NULL) {
                meta_sm_free(s->replicas[g].sm);
            }
        }
        if (s->store != NULL) {
            meta_store_close(s->store);
        }
    }
    nftw(run->dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    for (unsigned g = 0; g < run->group_count; g++) {
        free(run->lanes[g].latency_ns);
    }
    free(run->latency_ns);
}

static const char *base_dir = "/tmp";

static int run_open(struct run *run)
{
    snprintf(run->dir, sizeof(run->dir), "%s/cairn-bench-meta-XXXXXX", base_dir);
    if (mkdtemp(run->dir) == NULL) {
        return -1;
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        struct server *s = &run->servers[i];

        snprintf(s->dir, sizeof(s->dir), "%s/%u", run->dir, i + 1);
        mkdir(s->dir, 0700);
        atomic_init(&s->leads, 0);
        for (unsigned g = 0; g < run->group_count; g++) {
            struct replica *r = &s->replicas[g];

            /* From run->dir, not s->dir: gcc's -Wrestrict cannot tell the fields apart. */
            snprintf(r->raft_dir, sizeof(r->raft_dir), "%s/%u/raft%u", run->dir, i + 1, g + 1);
            mkdir(r->raft_dir, 0700);
            bench_free_port(r->address, sizeof(r->address));
            run->config[g][i].id = i + 1;
            run->config[g][i].address = r->address;
        }
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        if (server_start(run, i) != 0) {
            return -1;
        }
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        bench_server_run(&run->servers[i].thread);
    }
    return 0;
}

/* Waits (on the main thread) until flag is set, at most seconds. */
static bool wait_flag(atomic_bool *flag, double seconds)
{
    struct timespec pause = {.tv_nsec = 10000000}; /* 10 ms: the end is timed on the leader */

    for (double start = bench_now(); !atomic_load(flag) && bench_now() - start < seconds;) {
        nanosleep(&pause, NULL);
    }
    return atomic_load(flag);
}

/* The server that leads group g (by the last ticks), or NULL. */
static struct server *group_leader(struct run *run, unsigned g)
{
    for (unsigned i = 0; i < SERVERS; i++) {
        if (atomic_load(&run->servers[i].leads) & (1u << g)) {
            return &run->servers[i];
        }
    }
    return NULL;
}

static void transfer_cb(struct meta_transfer *req)
{
    (void)req; /* the main thread watches the leads */
}

static void transfer_start(struct bench_server *thread, void *data)
{
    struct server *s = (struct server *)thread;
    struct lane *lane = data;
    uint64_t target = 1 + lane->index % SERVERS;

    meta_group_transfer(s->replicas[lane->index].group, &lane->transfer, target, transfer_cb);
}

/* Waits until every group has a leader; with several groups, spreads them
 * first (group g to server g mod 3, as a cluster balances its leaders), so
 * every server's loop leads and follows. false if a group has none. */
static bool leaders_find(struct run *run)
{
    struct timespec pause = {.tv_nsec = 1000000};
    double start = bench_now();
    unsigned g = 0;

    while (g < run->group_count && bench_now() - start < 10) {
        if (group_leader(run, g) != NULL) {
            g++;
        } else {
            nanosleep(&pause, NULL);
        }
    }
    if (g < run->group_count) {
        return false;
    }
    for (g = 0; g < run->group_count && run->group_count > 1; g++) {
        struct server *want = &run->servers[g % SERVERS], *now = group_leader(run, g);

        if (now != want && now != NULL) {
            bench_server_call(&now->thread, transfer_start, &run->lanes[g]);
            for (start = bench_now(); group_leader(run, g) != want && bench_now() - start < 10;) {
                nanosleep(&pause, NULL);
            }
        }
    }
    for (g = 0; g < run->group_count; g++) {
        struct lane *lane = &run->lanes[g];

        lane->leader_server = group_leader(run, g);
        if (lane->leader_server == NULL) {
            return false;
        }
        lane->leader = lane->leader_server->replicas[g].group;
    }
    return true;
}

/* One measurement over groups groups: commits/s, p50/p99 latency in ms, CPU
 * per commit. The clients and the ops are split evenly between the groups.
 * *leading: how many servers led a group. */
static int measure(
    unsigned groups, unsigned clients, unsigned ops, struct bench_latency *out, unsigned *leading)
{
    struct run *run = calloc(1, sizeof(*run));
    struct bench_server *threads[SERVERS];
    double thread_cpu[SERVERS], cpu, start = 0, end = 0;
    unsigned done = 0, failed = 0, first_client = 0;
    int rv = -1;

    run->group_count = groups;
    for (unsigned g = 0; g < groups; g++) {
        struct lane *lane = &run->lanes[g];
        unsigned lane_clients = clients / groups + (g < clients % groups);

        *lane = (struct lane){.index = g};
        lane->clients = &run->clients[first_client];
        lane->client_count = lane_clients;
        lane->ops = ops / groups + (g < ops % groups);
        lane->latency_ns = calloc(lane->ops + 1, sizeof(*lane->latency_ns));
        atomic_init(&lane->setup_finished, false);
        atomic_init(&lane->finished, false);
        first_client += lane_clients;
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        threads[i] = &run->servers[i].thread;
    }
    if (run_open(run) != 0) {
        goto out;
    }
    if (!leaders_find(run)) {
        fprintf(stderr, "meta: a group without a leader within 10 s\n");
        goto out;
    }
    for (unsigned g = 0; g < groups; g++) {
        struct lane *lane = &run->lanes[g];

        bench_server_call(&lane->leader_server->thread, setup_start, lane);
        if (!wait_flag(&lane->setup_finished, 60) || lane->failed != 0) {
            fprintf(stderr, "meta: setup of group %u failed\n", g + 1);
            goto out;
        }
    }
    bench_servers_cpu_begin(threads, SERVERS, thread_cpu);
    cpu = bench_cpu_seconds();
    for (unsigned g = 0; g < groups; g++) {
        bench_server_call(&run->lanes[g].leader_server->thread, clients_start, &run->lanes[g]);
    }
    for (unsigned g = 0; g < groups; g++) {
        wait_flag(&run->lanes[g].finished, 120);
    }
    cpu = bench_cpu_seconds() - cpu;
    run->latency_ns = calloc(ops + 1, sizeof(*run->latency_ns));
    for (unsigned g = 0; g < groups; g++) {
        struct lane *lane = &run->lanes[g];

        if (!atomic_load(&lane->finished)) {
            fprintf(stderr, "meta: group %u did not finish\n", g + 1);
            goto out;
        }
        memcpy(run->latency_ns + done, lane->latency_ns, lane->done * sizeof(*lane->latency_ns));
        done += lane->done;
        failed += lane->failed;
        start = g == 0 || lane->start < start ? lane->start : start;
        end = lane->end > end ? lane->end : end;
    }
    if (failed != 0 || done == 0) {
        fprintf(stderr, "meta: %u of %u commits failed\n", failed, done);
        goto out;
    }
    bench_latency_summarise(run->latency_ns, done, end - start, out);
    out->cpu_us = cpu * 1e6 / done;
    bench_servers_cpu_end(threads, SERVERS, &run->lanes[0].leader_server->thread, thread_cpu, done,
                          out);
    *leading = 0;
    for (unsigned i = 0; i < SERVERS; i++) {
        for (unsigned g = 0; g < groups; g++) {
            if (run->lanes[g].leader_server == &run->servers[i]) {
                ++*leading;
                break;
            }
        }
    }
    rv = 0;
out:
    run_close(run);
    free(run);
    return rv;
}

static double thread_cpu(void)
{
    struct timespec now;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Encodes cmd with a fresh header and applies it at the next index. */
static int apply_one(uint64_t *seq,
                     struct meta_sm *sm,
                     meta_index *index,
                     Cairn__Cmd__Command *cmd,
                     struct cn_buf *buf,
                     struct meta_result *result)
{
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    int rv;

    header_fill(seq, &header, request_id);
    cmd->header = &header;
    rv = meta_command_encode(cmd, buf);
    if (rv == 0) {
        rv = meta_sm_apply(sm, ++*index, buf->base, buf->len, result);
    }
    cmd->header = NULL;
    return rv != 0 ? rv : result->rv;
}

/* --apply: see the top of this file. */
static int apply_measure(unsigned ops)
{
    struct run *run = calloc(1, sizeof(*run));
    struct meta_store *store = NULL;
    struct meta_sm *sm = NULL;
    struct meta_result result;
    char errmsg[CN_ERRMSG_SIZE] = "";
    uint64_t versions[CLIENTS_MAX] = {0};
    uint8_t chunk_id[META_CHUNK_ID_SIZE], hash[32];
    meta_index index = 0;
    uint64_t seq = 0;
    struct cn_buf buf;
    double cpu;
    char name[32];
    int rv;

    cn_buf_init(&buf);
    snprintf(run->dir, sizeof(run->dir), "%s/cairn-bench-apply-XXXXXX", base_dir);
    rv = mkdtemp(run->dir) != NULL ? meta_store_open(run->dir, &store, errmsg) : -1;
    if (rv == 0) {
        rv = meta_sm_new(store, 1, NULL, &sm);
    }
    for (unsigned i = 0; rv == 0 && i <= CLIENTS_MAX; i++) {
        Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
        Cairn__Cmd__NamespaceCreate ns = CAIRN__CMD__NAMESPACE_CREATE__INIT;
        Cairn__Cmd__Create create = CAIRN__CMD__CREATE__INIT;

        if (i == 0) {
            ns.ns = NS;
            ns.kind = CAIRN__CMD__NAMESPACE_KIND__NS_DRIVE;
            ns.owner = 1;
            ns.root_inode = ROOT;
            ns.name = "bench";
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
        rv = apply_one(&seq, sm, &index, &cmd, &buf, &result);
    }
    memset(hash, 0x5a, sizeof(hash));
    cpu = thread_cpu();
    for (unsigned i = 0; rv == 0 && i < ops; i++) {
        Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
        Cairn__Cmd__Commit commit = CAIRN__CMD__COMMIT__INIT;
        Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
        Cairn__Cmd__ChunkRef chunk = CAIRN__CMD__CHUNK_REF__INIT, *chunks[1] = {&chunk};
        unsigned c = i % CLIENTS_MAX;

        memset(chunk_id, (int)i, sizeof(chunk_id));
        chunk.chunk_id.data = chunk_id;
        chunk.chunk_id.len = sizeof(chunk_id);
        chunk.size = 4u << 20;
        version.size = chunk.size;
        version.content_hash.data = hash;
        version.content_hash.len = sizeof(hash);
        version.n_chunks = 1;
        version.chunks = chunks;
        commit.ns = NS;
        commit.inode = 2 + c;
        commit.base_version = versions[c];
        commit.version = &version;
        cmd.op_case = CAIRN__CMD__COMMAND__OP_COMMIT;
        cmd.commit = &commit;
        rv = apply_one(&seq, sm, &index, &cmd, &buf, &result);
        versions[c] = result.value;
    }
    cpu = thread_cpu() - cpu;
    if (rv != 0) {
        fprintf(stderr, "meta --apply: %s (%s)\n", cairn_errname(rv),
                sm != NULL ? meta_sm_errmsg(sm) : errmsg);
    } else {
        bench_out_number("apply_ops", (double)ops);
        bench_out_number("apply_cpu_us", cpu * 1e6 / ops);
    }
    if (sm != NULL) {
        meta_sm_free(sm);
    }
    if (store != NULL) {
        meta_store_close(store);
    }
    nftw(run->dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    cn_buf_close(&buf);
    free(run);
    return rv != 0 ? 1 : 0;
}

/* The size of the commit command the clients propose, padded as in the log. */
static size_t commit_entry_size(void)
{
    uint64_t seq = 0;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Commit commit = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef chunk = CAIRN__CMD__CHUNK_REF__INIT, *chunks[1] = {&chunk};
    uint8_t request_id[META_REQUEST_ID_SIZE], chunk_id[META_CHUNK_ID_SIZE] = {0}, hash[32] = {0};
    struct cn_buf buf;
    size_t size;

    header_fill(&seq, &header, request_id);
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
    if (l->cpu_us > 0) {
        snprintf(name, sizeof(name), "%s_cpu_us_%u", system, clients);
        bench_out_number(name, l->cpu_us);
        snprintf(name, sizeof(name), "%s_leader_cpu_us_%u", system, clients);
        bench_out_number(name, l->leader_cpu_us);
        snprintf(name, sizeof(name), "%s_follower_cpu_us_%u", system, clients);
        bench_out_number(name, l->follower_cpu_us);
    }
}

int bench_meta_main(int argc, char **argv)
{
    static const unsigned concurrency[] = {1, 16, 128};
    struct bench_latency meta[3], raft[3], etcd[3], multi[3];
    unsigned ops = 5000, groups = 3, leading = 0;
    bool json = false, with_etcd = true, with_raft = true, with_meta = true, apply_only = false;
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
        } else if (strcmp(argv[i], "--no-raft") == 0) {
            with_raft = false; /* for profiling one system alone */
        } else if (strcmp(argv[i], "--no-meta") == 0) {
            with_meta = false;
        } else if (strcmp(argv[i], "--groups") == 0 && i + 1 < argc) {
            groups = (unsigned)atoi(argv[++i]); /* 0 or 1: no run with several */
            if (groups > GROUPS_MAX) {
                fprintf(stderr, "cairn-bench meta: at most %d groups\n", GROUPS_MAX);
                return 2;
            }
        } else if (strcmp(argv[i], "--apply") == 0) {
            apply_only = true; /* the state machine alone, on this thread */
        } else {
            fprintf(stderr, "usage: cairn-bench meta [--json] [--ops N] [--dir DIR] [--groups S] "
                            "[--no-etcd] [--no-raft] [--no-meta] [--apply]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    entry_size = commit_entry_size();
    bench_out_begin(json);
    if (apply_only) {
        int rv;

        bench_out_section("meta --apply: file commits applied to one state machine, no Raft");
        rv = apply_measure(ops);
        bench_out_end();
        return rv;
    }
    bench_out_section("meta: file commits, 1 group of 3 servers (libuv disk I/O, loopback TCP)");
    bench_out_number("entry_bytes", (double)entry_size);
    for (size_t i = 0; i < 3 && with_meta; i++) {
        if (measure(1, concurrency[i], ops, &meta[i], &leading) != 0) {
            return 1;
        }
        out_latency("commits", concurrency[i], &meta[i]);
    }
    if (with_meta && groups > 1) {
        char title[128];

        snprintf(title, sizeof(title),
                 "meta: %u groups on the same 3 servers, leaders spread, clients split evenly",
                 groups);
        bench_out_section(title);
        bench_out_number("groups", groups);
        for (size_t i = 1; i < 3; i++) {
            if (measure(groups, concurrency[i], ops, &multi[i], &leading) != 0) {
                return 1;
            }
            out_latency("groups", concurrency[i], &multi[i]);
            snprintf(title, sizeof(title), "groups_leading_servers_%zu", (size_t)concurrency[i]);
            bench_out_number(title, leading);
        }
    }
    bench_out_section("raft: bare libraft, 3 servers, a counting state machine, same entries");
    for (size_t i = 0; i < 3 && with_raft; i++) {
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
    if (!with_meta) {
        bench_out_end();
        return 0;
    }
    if (with_etcd) {
        bench_out_number("ratio_vs_etcd_16", meta[1].rate / etcd[1].rate);
        bench_out_number("ratio_vs_etcd_128", meta[2].rate / etcd[2].rate);
        bench_out_number("p99_ratio_vs_etcd_16", meta[1].p99_ms / etcd[1].p99_ms);
        bench_out_number("p99_ratio_vs_etcd_128", meta[2].p99_ms / etcd[2].p99_ms);
    }
    if (groups > 1) {
        /* What several groups add on the same machines: one leader's loop
         * no longer carries every commit. */
        bench_out_number("groups_vs_1_group_128", multi[2].rate / meta[2].rate);
    }
    if (with_raft) {
        bench_out_number("ratio_vs_raft_128", meta[2].rate / raft[2].rate);
        /* CPU per commit is steadier than rates on a shared machine; the
         * leader's thread is what bounds a cluster of separate machines. */
        bench_out_number("cpu_ratio_vs_raft_128", raft[2].cpu_us / meta[2].cpu_us);
        bench_out_number("leader_cpu_ratio_vs_raft_128",
                         raft[2].leader_cpu_us / meta[2].leader_cpu_us);
    }
    bench_out_end();
    return 0;
}
