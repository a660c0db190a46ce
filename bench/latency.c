/* Shared by the request/response benchmarks (meta, raft, etcd): ports and latency summaries. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <sys/resource.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "bench.h"

void bench_free_port(char *address, size_t size)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        fprintf(stderr, "bench: no free port\n");
        exit(1);
    }
    snprintf(address, size, "127.0.0.1:%u", ntohs(addr.sin_port));
    close(fd);
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

void bench_latency_summarise(uint64_t *latency_ns,
                             size_t count,
                             double seconds,
                             struct bench_latency *out)
{
    qsort(latency_ns, count, sizeof(*latency_ns), compare_u64);
    out->rate = (double)count / seconds;
    out->p50_ms = (double)latency_ns[count / 2] / 1e6;
    out->p99_ms = (double)latency_ns[(size_t)((double)count * 0.99)] / 1e6;
}

/* ---- Servers on their own threads ---- */

static void server_tick_cb(uv_timer_t *timer)
{
    struct bench_server *server = timer->data;

    if (server->is_leader != NULL) {
        atomic_store(&server->leader, server->is_leader(server));
    }
}

static void server_wake_cb(uv_async_t *async)
{
    struct bench_server *server = async->data;

    if (server->call == NULL) {
        return;
    }
    if (server->stop) {
        server->is_leader = NULL;
        atomic_store(&server->leader, false);
    }
    server->call(server, server->call_data);
    server->call = NULL;
    if (server->stop) {
        uv_close((uv_handle_t *)&server->tick, NULL);
        uv_close((uv_handle_t *)&server->wake, NULL);
    }
    uv_sem_post(&server->called);
}

static void server_thread(void *data)
{
    struct bench_server *server = data;

    uv_run(&server->loop, UV_RUN_DEFAULT);
}

void bench_server_init(struct bench_server *server, bool (*is_leader)(struct bench_server *))
{
    uv_loop_init(&server->loop);
    uv_async_init(&server->loop, &server->wake, server_wake_cb);
    server->wake.data = server;
    uv_timer_init(&server->loop, &server->tick);
    server->tick.data = server;
    uv_timer_start(&server->tick, server_tick_cb, 5, 5);
    uv_sem_init(&server->called, 0);
    atomic_init(&server->leader, false);
    server->is_leader = is_leader;
    server->initialised = true;
}

void bench_server_run(struct bench_server *server)
{
    if (uv_thread_create(&server->thread, server_thread, server) != 0) {
        fprintf(stderr, "bench: no thread for a server\n");
        exit(1);
    }
    server->running = true;
}

void bench_server_call(struct bench_server *server,
                       void (*fn)(struct bench_server *, void *),
                       void *data)
{
    server->call_data = data;
    server->call = fn;
    if (!server->running) {
        server_wake_cb(&server->wake);
        return;
    }
    uv_async_send(&server->wake);
    uv_sem_wait(&server->called);
}

void bench_server_stop(struct bench_server *server,
                       void (*fn)(struct bench_server *, void *),
                       void *data)
{
    if (!server->initialised) {
        return;
    }
    server->stop = true;
    bench_server_call(server, fn, data);
    if (server->running) {
        uv_thread_join(&server->thread);
        server->running = false;
    } else {
        uv_run(&server->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&server->loop);
    uv_sem_destroy(&server->called);
}

static void server_cpu_cb(struct bench_server *server, void *data)
{
    struct timespec now;

    (void)data;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    server->cpu = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

double bench_server_cpu(struct bench_server *server)
{
    bench_server_call(server, server_cpu_cb, NULL);
    return server->cpu;
}

struct bench_server *bench_servers_leader(struct bench_server **servers,
                                          unsigned count,
                                          double seconds)
{
    struct timespec pause = {.tv_nsec = 1000000};

    for (double start = bench_now(); bench_now() - start < seconds;) {
        for (unsigned i = 0; i < count; i++) {
            if (atomic_load(&servers[i]->leader)) {
                return servers[i];
            }
        }
        nanosleep(&pause, NULL);
    }
    return NULL;
}

double bench_cpu_seconds(void)
{
    struct rusage usage;

    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 +
           (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
}

void bench_servers_cpu_begin(struct bench_server **servers, unsigned count, double *before)
{
    for (unsigned i = 0; i < count; i++) {
        before[i] = bench_server_cpu(servers[i]);
    }
}

void bench_servers_cpu_end(struct bench_server **servers,
                           unsigned count,
                           const struct bench_server *leader,
                           const double *before,
                           size_t ops,
                           struct bench_latency *out)
{
    out->leader_cpu_us = 0;
    out->follower_cpu_us = 0;
    for (unsigned i = 0; i < count; i++) {
        double us = (bench_server_cpu(servers[i]) - before[i]) * 1e6 / (double)ops;
        if (servers[i] == leader) {
            out->leader_cpu_us = us;
        } else if (us > out->follower_cpu_us) {
            out->follower_cpu_us = us;
        }
    }
}
