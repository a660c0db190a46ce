/*
 * cairn-bench: shared helpers for the subcommands (timing, throughput, JSON).
 * Each subcommand is one file with an entry point listed in main.c.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Entry points: argv[0] is the subcommand's name. Return the exit status. */
int bench_pipeline_main(int argc, char **argv);
int bench_store_main(int argc, char **argv);
int bench_meta_main(int argc, char **argv);
int bench_http_main(int argc, char **argv);

/* Throughput and latency of a request/response run (latency.c). */
struct bench_latency {
    double rate;   /* completed operations per second */
    double p50_ms; /* median latency */
    double p99_ms;
    double cpu_us;          /* CPU time of this process per operation, all threads */
    double leader_cpu_us;   /* of the leader's thread (its loop) per operation */
    double follower_cpu_us; /* of the busier follower's thread per operation */
};
/* Sorts latency_ns[0..count) and summarises a run of seconds. */
void bench_latency_summarise(uint64_t *latency_ns,
                             size_t count,
                             double seconds,
                             struct bench_latency *out);
/* A server of the meta and raft benches: its own libuv loop on its own thread,
 * as each server is its own machine in production (latency.c). */
struct bench_server {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_timer_t tick;
    uv_sem_t called;
    atomic_bool leader; /* what is_leader said at the last tick (5 ms) */
    bool (*is_leader)(struct bench_server *server);
    void (*call)(struct bench_server *server, void *data);
    void *call_data;
    bool stop;
    bool initialised;
    bool running;
    double cpu; /* seconds, by bench_server_cpu() */
};
/* Sets the loop up; start the libraft I/O on server->loop, then run it. */
void bench_server_init(struct bench_server *server, bool (*is_leader)(struct bench_server *));
void bench_server_run(struct bench_server *server);
/* Runs fn(server, data) on the server's thread and waits until it returned. */
void bench_server_call(struct bench_server *server,
                       void (*fn)(struct bench_server *, void *),
                       void *data);
/* Runs fn (which closes the server's own handles) on its thread, then lets the
 * loop end and joins the thread. Also for a server that never ran. */
void bench_server_stop(struct bench_server *server,
                       void (*fn)(struct bench_server *, void *),
                       void *data);
/* The first of count servers that is leader, within seconds; NULL if none. */
struct bench_server *bench_servers_leader(struct bench_server **servers,
                                          unsigned count,
                                          double seconds);
/* The CPU seconds the server's own thread has used so far (its loop: raft,
 * apply, the clients on the leader), read on that thread. */
double bench_server_cpu(struct bench_server *server);
/* Per-thread CPU of a run: _begin before the clients start, _end after they
 * finished fills out->leader_cpu_us and out->follower_cpu_us (count <= 8). */
void bench_servers_cpu_begin(struct bench_server **servers, unsigned count, double *before);
void bench_servers_cpu_end(struct bench_server **servers,
                           unsigned count,
                           const struct bench_server *leader,
                           const double *before,
                           size_t ops,
                           struct bench_latency *out);
/* CPU seconds (user + system) of this process, every thread. */
double bench_cpu_seconds(void);

/* "127.0.0.1:PORT" of a port that was free a moment ago. */
void bench_free_port(char *address, size_t size);

/* The yardsticks of `meta` (raft.c, etcd.c): clients each keep one entry of
 * entry_size bytes in flight, ops in all. 0, or -1 with a message on stderr. */
int bench_raft_measure(const char *base_dir,
                       size_t entry_size,
                       unsigned clients,
                       unsigned ops,
                       struct bench_latency *out);
int bench_etcd_measure(const char *base_dir,
                       size_t value_size,
                       unsigned clients,
                       unsigned ops,
                       struct bench_latency *out);

/* Monotonic seconds. */
double bench_now(void);

/*
 * Runs fn(arg) repeatedly: 3 trials of at least min_seconds each; returns the
 * best trial's throughput in MB/s (10^6 bytes/s), bytes being what one call
 * processes.
 */
double bench_rate(void (*fn)(void *arg), void *arg, size_t bytes, double min_seconds);

/* One result line: "name  1234.5 MB/s" or a JSON member, as chosen with bench_out_begin. */
void bench_out_begin(bool json);
void bench_out_section(const char *name);
void bench_out_rate(const char *name, double mbps);
void bench_out_number(const char *name, double value);
void bench_out_end(void);

#endif
