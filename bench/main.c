/*
 * cairn-bench: measurements of Cairn's parts on this machine, run by hand.
 *
 *   cairn-bench pipeline [--json] [--size MiB]
 *   cairn-bench store [DIR]
 *   cairn-bench meta [--json] [--ops N] [--dir DIR]
 *   cairn-bench http [--json] [--size SIZE] [--streams N] [--dir DIR]
 *
 * Each subcommand lives in its own file (pipeline.c, store.c, meta.c, http.c)
 * and is listed in the table below. Figures go into docs/benchmarks.md.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static const struct {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"pipeline", bench_pipeline_main, "kernels, storage stages, encode/decode pipelines"},
    {"store", bench_store_main, "durable puts: file per shard vs an append-only segment [DIR]"},
    {"meta", bench_meta_main, "metadata commits through one Raft group"},
    {"http", bench_http_main, "the Drive API through a gateway on a local 3-node cluster"},
};

double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_rate(void (*fn)(void *arg), void *arg, size_t bytes, double min_seconds)
{
    double best = 0;

    for (int trial = 0; trial < 3; trial++) {
        double start = bench_now();
        double elapsed;
        uint64_t calls = 0;

        do {
            fn(arg);
            calls++;
            elapsed = bench_now() - start;
        } while (elapsed < min_seconds);
        if ((double)bytes * (double)calls / elapsed / 1e6 > best) {
            best = (double)bytes * (double)calls / elapsed / 1e6;
        }
    }
    return best;
}

static bool out_json;
static bool out_first;

void bench_out_begin(bool json)
{
    out_json = json;
    out_first = true;
    if (json) {
        printf("{");
    }
}

static void json_sep(void)
{
    printf("%s", out_first ? "" : ",");
    out_first = false;
}

void bench_out_section(const char *name)
{
    if (!out_json) {
        printf("\n%s\n", name);
    }
}

void bench_out_rate(const char *name, double mbps)
{
    if (out_json) {
        json_sep();
        printf("\"%s_mbps\":%.1f", name, mbps);
    } else {
        printf("  %-40s %9.1f MB/s\n", name, mbps);
    }
    fflush(stdout);
}

void bench_out_number(const char *name, double value)
{
    if (out_json) {
        json_sep();
        printf("\"%s\":%.3f", name, value);
    } else {
        printf("  %-40s %9.3f\n", name, value);
    }
}

void bench_out_end(void)
{
    if (out_json) {
        printf("}\n");
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: cairn-bench COMMAND [options]\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(stderr, "  %-10s %s\n", commands[i].name, commands[i].help);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].main(argc - 1, argv + 1);
        }
    }
    usage();
    return 2;
}
