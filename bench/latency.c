/* Shared by the request/response benchmarks (meta, raft, etcd): ports and latency summaries. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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
