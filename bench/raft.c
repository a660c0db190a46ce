/*
 * The ceiling for `cairn-bench meta`: a bare libraft cluster of three servers
 * in this process (libuv disk I/O in a temporary folder, TCP on loopback), a
 * state machine that only counts, and clients that each keep one entry of a
 * given size in flight. Everything our metadata adds (protobuf, RocksDB,
 * checks) is missing here, so meta's commits/s divided by this is the share of
 * libraft's speed that our state machine keeps.
 *
 * Each server runs on its own thread with its own libuv loop, as each is its
 * own machine in production (bench_servers, latency.c); the clients live on
 * the leader's loop. meta.c runs its servers the same way, so the ratio
 * between the two compares state machines, not schedulers.
 */
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "bench.h"

#define SERVERS     3
#define CLIENTS_MAX 128

struct server {
    struct bench_server thread; /* first: the loop, the thread, the wake-ups */
    char dir[320];
    char address[32];
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    uint64_t applied;
    bool running;
};

struct client {
    struct raft_apply req;
    struct run *run;
    int leader;
    uint64_t start_ns;
};

struct run {
    char dir[300];
    struct server servers[SERVERS];
    struct client clients[CLIENTS_MAX];
    size_t entry_size;
    unsigned client_count;
    unsigned ops;
    unsigned issued; /* these on the leader's thread while the clients run */
    unsigned done;
    unsigned failed;
    uint64_t *latency_ns;
    double start, end;
    atomic_bool finished;
};

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct server *s = fsm->data;

    (void)buf;
    s->applied++;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct server *s = fsm->data;

    *bufs = raft_malloc(sizeof(**bufs));
    if (*bufs == NULL) {
        return RAFT_NOMEM;
    }
    (*bufs)[0].len = sizeof(s->applied);
    (*bufs)[0].base = raft_malloc(sizeof(s->applied));
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, &s->applied, sizeof(s->applied));
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct server *s = fsm->data;

    if (buf->len == sizeof(s->applied)) {
        memcpy(&s->applied, buf->base, sizeof(s->applied));
    }
    raft_free(buf->base);
    return 0;
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static bool is_leader(struct bench_server *thread)
{
    struct server *s = (struct server *)thread;

    return raft_state(&s->raft) == RAFT_LEADER;
}

static int server_start(struct run *run, unsigned i, struct raft_configuration *conf)
{
    struct server *s = &run->servers[i];

    s->fsm = (struct raft_fsm){.version = 1,
                               .data = s,
                               .apply = fsm_apply,
                               .snapshot = fsm_snapshot,
                               .restore = fsm_restore};
    bench_server_init(&s->thread, is_leader);
    if (raft_uv_tcp_init(&s->transport, &s->thread.loop) != 0 ||
        raft_uv_init(&s->io, &s->thread.loop, s->dir, &s->transport) != 0 ||
        raft_init(&s->raft, &s->io, &s->fsm, i + 1, s->address) != 0) {
        fprintf(stderr, "raft: server %u would not start\n", i + 1);
        return -1;
    }
    s->running = true;
    /* The same snapshot settings as meta's bench, so both pay for snapshots alike. */
    raft_set_snapshot_threshold(&s->raft, 4096);
    raft_set_snapshot_trailing(&s->raft, 1024);
    if (raft_bootstrap(&s->raft, conf) != 0 || raft_start(&s->raft) != 0) {
        fprintf(stderr, "raft: server %u: %s\n", i + 1, raft_errmsg(&s->raft));
        return -1;
    }
    return 0;
}

static void finish(struct run *run)
{
    run->end = bench_now();
    atomic_store(&run->finished, true);
}

static void apply_cb(struct raft_apply *req, int status, void *result);

static void propose_next(struct client *client)
{
    struct run *run = client->run;
    struct raft_buffer buf = {.len = run->entry_size, .base = raft_malloc(run->entry_size)};

    run->issued++;
    if (buf.base == NULL) {
        run->failed++;
        run->done++;
        return;
    }
    memset(buf.base, 0x5a, buf.len);
    client->req.data = client;
    client->start_ns = uv_hrtime();
    if (raft_apply(&run->servers[client->leader].raft, &client->req, &buf, 1, apply_cb) != 0) {
        raft_free(buf.base);
        run->failed++;
        run->done++;
    }
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct client *client = req->data;
    struct run *run = client->run;

    (void)result;
    run->latency_ns[run->done++] = uv_hrtime() - client->start_ns;
    if (status != 0) {
        run->failed++;
    } else if (run->issued < run->ops) {
        propose_next(client);
    }
    if (run->done == run->issued) {
        finish(run); /* every client is idle: all done, or the rest failed */
    }
}

/* On the leader's thread: the clients start. */
static void clients_start(struct bench_server *thread, void *data)
{
    struct run *run = data;
    int leader = (int)((struct server *)thread - run->servers);

    run->start = bench_now();
    for (unsigned i = 0; i < run->client_count && run->issued < run->ops; i++) {
        run->clients[i] = (struct client){.run = run, .leader = leader};
        propose_next(&run->clients[i]);
    }
    if (run->done == run->issued) {
        finish(run);
    }
}

static void server_closed_cb(struct raft *raft)
{
    struct server *s = raft->data;

    raft_uv_close(&s->io);
    raft_uv_tcp_close(&s->transport);
}

static void server_close(struct bench_server *thread, void *data)
{
    struct server *s = (struct server *)thread;

    (void)data;
    if (s->running) {
        s->raft.data = s;
        raft_close(&s->raft, server_closed_cb);
    }
}

static void run_close(struct run *run)
{
    for (unsigned i = 0; i < SERVERS; i++) {
        bench_server_stop(&run->servers[i].thread, server_close, NULL);
    }
    nftw(run->dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(run->latency_ns);
}

int bench_raft_measure(const char *base_dir,
                       size_t entry_size,
                       unsigned clients,
                       unsigned ops,
                       struct bench_latency *out)
{
    struct run *run = calloc(1, sizeof(*run));
    struct bench_server *threads[SERVERS], *leader;
    double thread_cpu[SERVERS];
    struct raft_configuration conf;
    struct timespec pause = {.tv_nsec = 10000000}; /* 10 ms: the end is timed on the leader */
    unsigned started = 0;                          /* servers whose start was tried */
    double cpu = 0;
    int rv = -1;

    if (run == NULL || clients > CLIENTS_MAX) {
        free(run);
        return -1;
    }
    run->entry_size = entry_size;
    run->client_count = clients;
    run->ops = ops;
    run->latency_ns = calloc(ops, sizeof(*run->latency_ns));
    atomic_init(&run->finished, false);
    snprintf(run->dir, sizeof(run->dir), "%s/cairn-bench-raft-XXXXXX", base_dir);
    raft_configuration_init(&conf);
    if (mkdtemp(run->dir) == NULL) {
        goto out;
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        struct server *s = &run->servers[i];
        snprintf(s->dir, sizeof(s->dir), "%s/%u", run->dir, i + 1);
        mkdir(s->dir, 0700);
        bench_free_port(s->address, sizeof(s->address));
        threads[i] = &s->thread;
        if (raft_configuration_add(&conf, i + 1, s->address, RAFT_VOTER) != 0) {
            goto out;
        }
    }
    for (; started < SERVERS; started++) {
        if (server_start(run, started, &conf) != 0) {
            goto out;
        }
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        bench_server_run(threads[i]);
    }
    leader = bench_servers_leader(threads, SERVERS, 10);
    if (leader == NULL) {
        fprintf(stderr, "raft: no leader within 10 s\n");
        goto out;
    }
    bench_servers_cpu_begin(threads, SERVERS, thread_cpu);
    cpu = bench_cpu_seconds();
    bench_server_call(leader, clients_start, run);
    for (double start = bench_now(); !atomic_load(&run->finished) && bench_now() - start < 120;) {
        nanosleep(&pause, NULL);
    }
    cpu = bench_cpu_seconds() - cpu;
    if (!atomic_load(&run->finished) || run->failed != 0 || run->done == 0) {
        fprintf(stderr, "raft: %u of %u entries failed\n", run->failed, run->done);
        goto out;
    }
    bench_latency_summarise(run->latency_ns, run->done, run->end - run->start, out);
    out->cpu_us = cpu * 1e6 / run->done;
    bench_servers_cpu_end(threads, SERVERS, leader, thread_cpu, run->done, out);
    rv = 0;
out:
    raft_configuration_close(&conf);
    run_close(run);
    free(run);
    return rv;
}
