/*
 * The ceiling for `cairn-bench meta`: a bare libraft cluster of three servers
 * in this process (libuv disk I/O in a temporary folder, TCP on loopback), a
 * state machine that only counts, and clients that each keep one entry of a
 * given size in flight. Everything our metadata adds (protobuf, RocksDB,
 * checks) is missing here, so meta's commits/s divided by this is the share of
 * libraft's speed that our state machine keeps.
 */
#include <ftw.h>
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
    uint64_t start_ns;
};

struct run {
    uv_loop_t loop;
    uv_timer_t tick;
    char dir[300];
    struct server servers[SERVERS];
    struct client clients[CLIENTS_MAX];
    size_t entry_size;
    unsigned ops;
    unsigned issued;
    unsigned done;
    unsigned failed;
    uint64_t *latency_ns;
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

static void tick_cb(uv_timer_t *timer)
{
    (void)timer;
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int server_start(struct run *run, unsigned i, struct raft_configuration *conf)
{
    struct server *s = &run->servers[i];

    s->fsm = (struct raft_fsm){.version = 1,
                               .data = s,
                               .apply = fsm_apply,
                               .snapshot = fsm_snapshot,
                               .restore = fsm_restore};
    if (raft_uv_tcp_init(&s->transport, &run->loop) != 0 ||
        raft_uv_init(&s->io, &run->loop, s->dir, &s->transport) != 0 ||
        raft_init(&s->raft, &s->io, &s->fsm, i + 1, s->address) != 0) {
        fprintf(stderr, "raft: server %u would not start\n", i + 1);
        return -1;
    }
    /* The same snapshot settings as meta's bench, so both pay for snapshots alike. */
    raft_set_snapshot_threshold(&s->raft, 4096);
    raft_set_snapshot_trailing(&s->raft, 1024);
    if (raft_bootstrap(&s->raft, conf) != 0 || raft_start(&s->raft) != 0) {
        fprintf(stderr, "raft: server %u: %s\n", i + 1, raft_errmsg(&s->raft));
        return -1;
    }
    s->running = true;
    return 0;
}

static int leader_of(struct run *run)
{
    for (unsigned i = 0; i < SERVERS; i++) {
        if (raft_state(&run->servers[i].raft) == RAFT_LEADER) {
            return (int)i;
        }
    }
    return -1;
}

static void apply_cb(struct raft_apply *req, int status, void *result);

static void propose_next(struct client *client, int leader)
{
    struct run *run = client->run;
    struct raft_buffer buf = {.len = run->entry_size, .base = raft_malloc(run->entry_size)};

    if (buf.base == NULL) {
        run->failed++;
        return;
    }
    memset(buf.base, 0x5a, buf.len);
    client->req.data = client;
    client->start_ns = uv_hrtime();
    if (raft_apply(&run->servers[leader].raft, &client->req, &buf, 1, apply_cb) != 0) {
        raft_free(buf.base);
        run->failed++;
        return;
    }
    run->issued++;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct client *client = req->data;
    struct run *run = client->run;
    int leader;

    (void)result;
    run->latency_ns[run->done++] = uv_hrtime() - client->start_ns;
    if (status != 0) {
        run->failed++;
        return;
    }
    leader = leader_of(run);
    if (run->issued < run->ops && leader >= 0) {
        propose_next(client, leader);
    }
}

static void server_closed_cb(struct raft *raft)
{
    struct server *s = raft->data;

    raft_uv_close(&s->io);
    raft_uv_tcp_close(&s->transport);
    s->running = false;
}

static void run_close(struct run *run)
{
    for (unsigned i = 0; i < SERVERS; i++) {
        struct server *s = &run->servers[i];
        if (s->running) {
            s->raft.data = s;
            raft_close(&s->raft, server_closed_cb);
            while (s->running) {
                uv_run(&run->loop, UV_RUN_ONCE);
            }
        }
    }
    uv_close((uv_handle_t *)&run->tick, NULL);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    uv_loop_close(&run->loop);
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
    struct raft_configuration conf;
    double start;
    int leader = -1, rv = -1;

    if (run == NULL || clients > CLIENTS_MAX) {
        free(run);
        return -1;
    }
    run->entry_size = entry_size;
    run->ops = ops;
    run->latency_ns = calloc(ops, sizeof(*run->latency_ns));
    uv_loop_init(&run->loop);
    uv_timer_init(&run->loop, &run->tick);
    uv_timer_start(&run->tick, tick_cb, 5, 5);
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
        if (raft_configuration_add(&conf, i + 1, s->address, RAFT_VOTER) != 0) {
            goto out;
        }
    }
    for (unsigned i = 0; i < SERVERS; i++) {
        if (server_start(run, i, &conf) != 0) {
            goto out;
        }
    }
    for (start = bench_now(); leader < 0 && bench_now() - start < 10;) {
        uv_run(&run->loop, UV_RUN_ONCE);
        leader = leader_of(run);
    }
    if (leader < 0) {
        fprintf(stderr, "raft: no leader within 10 s\n");
        goto out;
    }
    start = bench_now();
    for (unsigned i = 0; i < clients && run->issued < ops; i++) {
        run->clients[i] = (struct client){.run = run};
        propose_next(&run->clients[i], leader);
    }
    while (run->done < run->issued && bench_now() - start < 120) {
        uv_run(&run->loop, UV_RUN_ONCE);
    }
    if (run->failed != 0 || run->done == 0) {
        fprintf(stderr, "raft: %u of %u entries failed\n", run->failed, run->done);
        goto out;
    }
    bench_latency_summarise(run->latency_ns, run->done, bench_now() - start, out);
    rv = 0;
out:
    raft_configuration_close(&conf);
    run_close(run);
    free(run);
    return rv;
}
