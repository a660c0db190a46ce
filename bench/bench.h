/*
 * cairn-bench: shared helpers for the subcommands (timing, throughput, JSON).
 * Each subcommand is one file with an entry point listed in main.c.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Entry points: argv[0] is the subcommand's name. Return the exit status. */
int bench_pipeline_main(int argc, char **argv);
int bench_store_main(int argc, char **argv);
int bench_meta_main(int argc, char **argv);

/* Throughput and latency of a request/response run (latency.c). */
struct bench_latency {
    double rate;   /* completed operations per second */
    double p50_ms; /* median latency */
    double p99_ms;
};
/* Sorts latency_ns[0..count) and summarises a run of seconds. */
void bench_latency_summarise(uint64_t *latency_ns,
                             size_t count,
                             double seconds,
                             struct bench_latency *out);
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
