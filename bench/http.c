/*
 * cairn-bench http [--json] [--size SIZE] [--multi-size SIZE] [--streams N]
 * [--notify N] [--dir DIR] [--bin DIR] [--keep]: the Drive API through a real
 * cairn-gateway, against a local cluster this command starts itself: 3
 * cairn-node (init, join, run) and 1 cairn-gateway from the same build's bin/
 * folder (--bin, default: this program's folder), on 127.0.0.1, with their
 * data in a temporary folder under DIR (/tmp by default), every process
 * stopped by PID at the end (the folder removed unless --keep; on SIGINT or
 * SIGTERM the processes get SIGTERM and the folder stays).
 *
 * Measured, in one run:
 * - upload (PUT /v1/files) and download (GET) of one file of SIZE (1GiB by
 *   default) and of N (8) files of --multi-size (SIZE by default) at once,
 *   each on its own connection; MB/s of file bytes (10^6 bytes/s). The content
 *   is xoshiro output made on the fly in curl's read callback (never held
 *   whole); each file's crc32c is compared with what comes back;
 * - the gateway's peak RSS during each phase: its VmHWM, reset through
 *   /proc/PID/clear_refs at the phase's start, and VmRSS sampled every 10 ms;
 * - notification latency: one connection long-polls GET /v1/changes while
 *   another PUTs a 1 KiB file; the time from the PUT's answer to the poll's
 *   answer, p50/p99 over --notify (200) commits;
 * - the ceilings: the storage encode pipeline (stor_encoder, as bench/pipeline.c
 *   runs it, with the cluster's k+m, compression on, random data) with 1 and
 *   2 threads, and loopback TCP (one sender thread, one receiver).
 *
 * Ratios: upload_1_vs_pipeline = 1-stream upload / 1-thread encode pipeline
 * (an upload's chunks go through one codec, one chunk at a time; goal >= 0.7),
 * notify_p99_ms (goal <= 100), gateway_rss_mib = the peak over all phases
 * (goal <= 256 for a 10 GiB file). The client, the gateway and the nodes share
 * this machine's cores: the figures are the system's, not the gateway's alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <sodium.h>
#include <uv.h>

#include "bench.h"
#include "cn.h"
#include "storage.h"

#define NODES       3
#define STREAMS_MAX 64
#define READY_S     60.0

struct cluster {
    char dir[300];
    char bin[300];
    char secret[340];
    char keys[340];
    char password_file[340];
    char node_addr[NODES][32];
    pid_t node_pid[NODES];
    char gw_addr[32];
    char url[64];
    pid_t gw_pid;
    char password[64];
    unsigned k, m;
};

struct answer {
    char text[16384];
    size_t len;
};

/* ---- Processes ---- */

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);

        setsid();
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int run_cmd(char *const argv[], const char *log)
{
    int status;
    pid_t pid = spawn(argv, log);

    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void stop_pid(pid_t *pid)
{
    if (*pid <= 0) {
        return;
    }
    kill(*pid, SIGTERM);
    for (double start = bench_now(); bench_now() - start < 10;) {
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0;
            return;
        }
        usleep(20 * 1000); /* another process's exit: nothing to wait on but its PID */
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

/* Waits until the log holds want (the process prints it when ready). */
static int wait_log(const char *log, pid_t pid, const char *want)
{
    static char text[1 << 16];

    for (double start = bench_now(); bench_now() - start < READY_S;) {
        FILE *file = fopen(log, "r");
        size_t n = 0;

        if (file != NULL) {
            n = fread(text, 1, sizeof(text) - 1, file);
            fclose(file);
        }
        text[n] = '\0';
        if (strstr(text, want) != NULL) {
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "http: %s: the process exited during start-up\n", log);
            return -1;
        }
        usleep(50 * 1000); /* polling another process's log: no way to be notified */
    }
    fprintf(stderr, "http: %s: no \"%s\" after %.0f s\n", log, want, READY_S);
    return -1;
}

/* Ctrl-C or SIGTERM mid-run: the children were started in their own sessions,
 * so they would outlive us; send them SIGTERM (async-signal-safe) and leave. */
static struct cluster *running_cluster;

static void on_signal(int sig)
{
    struct cluster *c = running_cluster;

    if (c != NULL) {
        if (c->gw_pid > 0) {
            kill(c->gw_pid, SIGTERM);
        }
        for (unsigned i = 0; i < NODES; i++) {
            if (c->node_pid[i] > 0) {
                kill(c->node_pid[i], SIGTERM);
            }
        }
    }
    _exit(128 + sig);
}

/* ---- HTTP ---- */

static size_t answer_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    struct answer *a = data;
    size_t n = size * nmemb, room = sizeof(a->text) - 1 - a->len;

    memcpy(a->text + a->len, ptr, n < room ? n : room);
    a->len += n < room ? n : room;
    a->text[a->len] = '\0';
    return n;
}

/* A request with an optional JSON or small body; the status, or -1. */
static long http(
    const char *method, const char *url, const char *token, const char *body, struct answer *answer)
{
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = NULL;
    char auth[128];
    long status = -1;

    answer->len = 0;
    answer->text[0] = '\0';
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, answer_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 30000L);
    if (curl_easy_perform(easy) == CURLE_OK) {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    return status;
}

static int json_string(const char *text, const char *name, char *out, size_t size)
{
    char key[64];
    const char *p, *end;

    snprintf(key, sizeof(key), "\"%s\":", name);
    p = strstr(text, key);
    if (p == NULL) {
        return -1;
    }
    p += strlen(key);
    while (*p == ' ') {
        p++;
    }
    if (*p++ != '"' || (end = strchr(p, '"')) == NULL || (size_t)(end - p) >= size) {
        return -1;
    }
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 0;
}

static int json_number(const char *text, const char *name, double *out)
{
    char key[64];
    const char *p;

    snprintf(key, sizeof(key), "\"%s\":", name);
    p = strstr(text, key);
    if (p == NULL) {
        return -1;
    }
    *out = strtod(p + strlen(key), NULL);
    return 0;
}

/* Signs in; the token, or -1. */
static int login(struct cluster *c, const char *user, const char *password, char *token)
{
    struct answer a;
    char url[128], body[256];

    snprintf(url, sizeof(url), "%s/v1/auth/login", c->url);
    snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\"}", user, password);
    for (double start = bench_now(); bench_now() - start < READY_S;) {
        long status = http("POST", url, NULL, body, &a);
        if (status == 200) {
            return json_string(a.text, "token", token, 80);
        }
        if (status != 503 && status != 504 && status != -1) {
            fprintf(stderr, "http: login %s: %ld %s\n", user, status, a.text);
            return -1;
        }
        usleep(200 * 1000); /* the cluster settling: retry as a client would */
    }
    return -1;
}

/* ---- The cluster ---- */

static void cluster_stop(struct cluster *c)
{
    stop_pid(&c->gw_pid);
    for (unsigned i = 0; i < NODES; i++) {
        stop_pid(&c->node_pid[i]);
    }
}

static int node_start(struct cluster *c, unsigned i)
{
    char data[340], log[340];
    char *argv[] = {NULL,       "run",     "--listen", c->node_addr[i], "--data", data,
                    "--secret", c->secret, NULL};
    char exe[340];

    snprintf(exe, sizeof(exe), "%s/cairn-node", c->bin);
    argv[0] = exe;
    snprintf(data, sizeof(data), "%s/node%u", c->dir, i + 1);
    snprintf(log, sizeof(log), "%s/node%u.log", c->dir, i + 1);
    c->node_pid[i] = spawn(argv, log);
    return c->node_pid[i] > 0 ? wait_log(log, c->node_pid[i], "node ready") : -1;
}

static int cluster_start(struct cluster *c)
{
    char exe[340], data[340], log[340], nodes[128], url[128];
    struct answer a;
    FILE *file;

    for (unsigned i = 0; i < NODES; i++) {
        bench_free_port(c->node_addr[i], sizeof(c->node_addr[i]));
    }
    bench_free_port(c->gw_addr, sizeof(c->gw_addr));
    snprintf(c->url, sizeof(c->url), "http://%s", c->gw_addr);
    snprintf(c->secret, sizeof(c->secret), "%s/secret", c->dir);
    snprintf(c->keys, sizeof(c->keys), "%s/keys", c->dir);
    snprintf(c->password_file, sizeof(c->password_file), "%s/admin-password", c->dir);
    snprintf(log, sizeof(log), "%s/setup.log", c->dir);
    snprintf(exe, sizeof(exe), "%s/cairn-node", c->bin);
    snprintf(data, sizeof(data), "%s/node1", c->dir);
    {
        char *argv[] = {exe, "init", "--data", data, "--secret", c->secret, "--groups", "4", NULL};
        if (run_cmd(argv, log) != 0) {
            fprintf(stderr, "http: cairn-node init failed (%s)\n", log);
            return -1;
        }
    }
    if (node_start(c, 0) != 0) {
        return -1;
    }
    for (unsigned i = 1; i < NODES; i++) {
        char *argv[] = {exe,      "join", c->node_addr[0], "--listen", c->node_addr[i],
                        "--data", data,   "--secret",      c->secret,  NULL};
        snprintf(data, sizeof(data), "%s/node%u", c->dir, i + 1);
        if (run_cmd(argv, log) != 0) {
            fprintf(stderr, "http: cairn-node join failed (%s)\n", log);
            return -1;
        }
        if (node_start(c, i) != 0) {
            return -1;
        }
    }
    snprintf(exe, sizeof(exe), "%s/cairn-blocks", c->bin);
    {
        char *argv[] = {exe, "keygen", c->keys, NULL};
        if (run_cmd(argv, log) != 0) {
            fprintf(stderr, "http: cairn-blocks keygen failed (%s)\n", log);
            return -1;
        }
    }
    {
        uint8_t raw[18];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2hex(c->password, sizeof(c->password), raw, sizeof(raw));
    }
    file = fopen(c->password_file, "w");
    if (file == NULL) {
        return -1;
    }
    fchmod(fileno(file), 0600);
    fprintf(file, "%s\n", c->password);
    fclose(file);
    snprintf(nodes, sizeof(nodes), "%s,%s,%s", c->node_addr[0], c->node_addr[1], c->node_addr[2]);
    snprintf(exe, sizeof(exe), "%s/cairn-gateway", c->bin);
    snprintf(log, sizeof(log), "%s/gateway.log", c->dir);
    {
        char *argv[] = {exe,
                        "--listen",
                        c->gw_addr,
                        "--nodes",
                        nodes,
                        "--secret",
                        c->secret,
                        "--keys",
                        c->keys,
                        "--admin-user",
                        "admin",
                        "--admin-password-file",
                        c->password_file,
                        NULL};
        c->gw_pid = spawn(argv, log);
        if (c->gw_pid <= 0 || wait_log(log, c->gw_pid, "admin user ready") != 0) {
            return -1;
        }
    }
    /* Every node up in the gateway's map, and the scheme. */
    snprintf(url, sizeof(url), "%s/health", c->url);
    for (double start = bench_now();; usleep(100 * 1000)) {
        double up = 0, k = 0, m = 0;
        if (http("GET", url, NULL, NULL, &a) == 200 && json_number(a.text, "nodes_up", &up) == 0 &&
            up >= NODES && json_number(a.text, "k", &k) == 0 && json_number(a.text, "m", &m) == 0) {
            c->k = (unsigned)k;
            c->m = (unsigned)m;
            return 0;
        }
        if (bench_now() - start > READY_S) {
            fprintf(stderr, "http: the gateway is not healthy: %s\n", a.text);
            return -1;
        }
    }
}

/* ---- Transfers ---- */

struct stream {
    CURL *easy;
    struct curl_slist *headers;
    struct cn_rand rand;
    uint64_t size;
    uint64_t done;
    uint32_t crc_up;
    uint32_t crc_down;
    long status;
    CURLcode result;
    struct answer answer; /* the upload's JSON answer */
};

static size_t upload_read(char *buffer, size_t size, size_t nitems, void *data)
{
    struct stream *s = data;
    size_t n = size * nitems;

    if (n > s->size - s->done) {
        n = (size_t)(s->size - s->done);
    }
    cn_rand_fill(&s->rand, buffer, n);
    s->crc_up = cn_crc32c(s->crc_up, buffer, n);
    s->done += n;
    return n;
}

static size_t download_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    struct stream *s = data;
    size_t n = size * nmemb;

    s->crc_down = cn_crc32c(s->crc_down, ptr, n);
    s->done += n;
    return n;
}

/* kB from "NAME:  123 kB" in /proc/PID/status; 0 if unreadable. */
static double proc_kb(pid_t pid, const char *name)
{
    char path[64], line[256];
    double kb = 0;
    FILE *file;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    file = fopen(path, "r");
    if (file == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), file) != NULL) {
        if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':') {
            kb = strtod(line + strlen(name) + 1, NULL);
        }
    }
    fclose(file);
    return kb;
}

/* Resets the process's VmHWM to its current RSS (Linux >= 4.0). */
static void reset_peak(pid_t pid)
{
    char path[64];
    FILE *file;

    snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
    file = fopen(path, "w");
    if (file != NULL) {
        fputs("5", file);
        fclose(file);
    }
}

/* CPU seconds (user + system) of a process, or of one of its threads. */
static double stat_cpu(const char *path)
{
    char text[1024];
    unsigned long long utime = 0, stime = 0;
    FILE *file = fopen(path, "r");
    const char *p;
    size_t n;

    if (file == NULL) {
        return 0;
    }
    n = fread(text, 1, sizeof(text) - 1, file);
    fclose(file);
    text[n] = '\0';
    p = strrchr(text, ')');
    /* after the name: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                            &stime) != 2) {
        return 0;
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy seconds of the whole machine so far (/proc/stat), as pipeline.c reads them. */
static double machine_busy(void)
{
    unsigned long long v[7] = {0};
    FILE *file = fopen("/proc/stat", "r");
    double busy = 0;

    if (file == NULL) {
        return 0;
    }
    if (fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6]) == 7) {
        busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / (double)sysconf(_SC_CLK_TCK);
    }
    fclose(file);
    return busy;
}

/* Where the CPU went: the gateway's loop thread (its main thread) and its
 * other threads (libuv's pool: the codec), the nodes, this client, the machine. */
struct cpu_snap {
    double gw_loop;
    double gw_pool;
    double nodes;
    double client;
    double busy;
};

static void cpu_snap(const struct cluster *c, struct cpu_snap *snap)
{
    char path[96];
    struct timespec ts;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)c->gw_pid, (int)c->gw_pid);
    snap->gw_loop = stat_cpu(path);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->gw_pid);
    snap->gw_pool = stat_cpu(path) - snap->gw_loop;
    snap->nodes = 0;
    for (unsigned i = 0; i < NODES; i++) {
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->node_pid[i]);
        snap->nodes += stat_cpu(path);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    snap->client = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    snap->busy = machine_busy();
}

struct phase {
    struct cpu_snap cpu; /* seconds used during the phase */
    double mbps;
    double seconds;
    double rss_peak_mib;    /* VmHWM after a reset at the start */
    double rss_sampled_mib; /* the largest VmRSS sample */
};

/* Uploads (or downloads) count files of size bytes at once, files
 * "PREFIX-i.bin"; 0, or -1 with a message. */
static int transfer(struct cluster *c,
                    const char *token,
                    const char *prefix,
                    struct stream *streams,
                    unsigned count,
                    uint64_t size,
                    bool upload,
                    struct phase *out)
{
    CURLM *multi = curl_multi_init();
    char auth[128], url[256];
    double start, last_sample = 0;
    struct cpu_snap before;
    unsigned left = count;
    int running, rv = 0;

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < count; i++) {
        struct stream *s = &streams[i];
        if (upload) {
            memset(s, 0, sizeof(*s));
            /* no two files alike: the store might skip a shard it holds */
            cn_rand_seed(&s->rand, 0x5eed0000u + i + (uint64_t)size + ((uint64_t)prefix[0] << 40));
        }
        s->size = size;
        s->done = 0;
        s->easy = curl_easy_init();
        s->headers = curl_slist_append(NULL, auth);
        snprintf(url, sizeof(url), "%s/v1/files/%s-%u.bin", c->url, prefix, i);
        curl_easy_setopt(s->easy, CURLOPT_URL, url);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        if (upload) {
            s->headers = curl_slist_append(s->headers, "Content-Type: application/octet-stream");
            curl_easy_setopt(s->easy, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(s->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
            curl_easy_setopt(s->easy, CURLOPT_READFUNCTION, upload_read);
            curl_easy_setopt(s->easy, CURLOPT_READDATA, s);
            curl_easy_setopt(s->easy, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
            curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, answer_write);
            curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &s->answer);
        } else {
            curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, download_write);
            curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
            curl_easy_setopt(s->easy, CURLOPT_BUFFERSIZE, 512L * 1024);
        }
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
    }
    reset_peak(c->gw_pid);
    cpu_snap(c, &before);
    start = bench_now();
    for (unsigned i = 0; i < count; i++) {
        curl_multi_add_handle(multi, streams[i].easy);
    }
    while (left > 0) {
        CURLMsg *msg;
        int queued;
        double now;

        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
            struct stream *s;
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            s->result = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &s->status);
            left--;
        }
        now = bench_now();
        if (now - last_sample >= 0.01) {
            double rss = proc_kb(c->gw_pid, "VmRSS") / 1024;
            out->rss_sampled_mib = CN_MAX(out->rss_sampled_mib, rss);
            last_sample = now;
        }
        if (left > 0) {
            curl_multi_poll(multi, NULL, 0, 10, NULL);
        }
    }
    out->seconds = bench_now() - start;
    cpu_snap(c, &out->cpu);
    out->cpu.gw_loop -= before.gw_loop;
    out->cpu.gw_pool -= before.gw_pool;
    out->cpu.nodes -= before.nodes;
    out->cpu.client -= before.client;
    out->cpu.busy -= before.busy;
    out->rss_peak_mib = proc_kb(c->gw_pid, "VmHWM") / 1024;
    out->mbps = (double)size * count / out->seconds / 1e6;
    for (unsigned i = 0; i < count; i++) {
        struct stream *s = &streams[i];
        bool ok = s->result == CURLE_OK && s->done == size &&
                  (upload ? s->status == 200 || s->status == 201
                          : s->status == 200 && s->crc_down == s->crc_up);
        if (!ok && rv == 0) {
            fprintf(stderr, "http: %s %s-%u: curl %d, status %ld, %llu of %llu bytes%s %s\n",
                    upload ? "upload" : "download", prefix, i, (int)s->result, s->status,
                    (unsigned long long)s->done, (unsigned long long)size,
                    !upload && s->crc_down != s->crc_up ? ", content differs" : "",
                    upload ? s->answer.text : "");
            rv = -1;
        }
        curl_multi_remove_handle(multi, s->easy);
        curl_easy_cleanup(s->easy);
        curl_slist_free_all(s->headers);
    }
    curl_multi_cleanup(multi);
    return rv;
}

/* ---- Notification latency ---- */

struct call {
    CURL *easy;
    struct curl_slist *headers;
    struct answer answer;
    double done_at;
    long status;
    CURLcode result;
};

static void call_init(struct call *call, const char *url, const char *token)
{
    char auth[128];

    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    call->headers = curl_slist_append(NULL, auth);
    call->easy = curl_easy_init();
    curl_easy_setopt(call->easy, CURLOPT_URL, url);
    curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(call->easy, CURLOPT_WRITEFUNCTION, answer_write);
    curl_easy_setopt(call->easy, CURLOPT_WRITEDATA, &call->answer);
    curl_easy_setopt(call->easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt(call->easy, CURLOPT_TIMEOUT_MS, 60000L);
}

static void call_free(struct call *call)
{
    curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
}

/* Drives multi until want calls are done (or seconds pass); each done call
 * gets its done_at. The calls still running. */
static unsigned drive(CURLM *multi, unsigned want, double seconds)
{
    double start = bench_now();
    int running = 1;

    while (want > 0 && bench_now() - start < seconds) {
        CURLMsg *msg;
        int queued;

        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &queued)) != NULL) {
            struct call *call;
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
            call->done_at = bench_now();
            call->result = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &call->status);
            curl_multi_remove_handle(multi, msg->easy_handle);
            want--;
        }
        if (want > 0) {
            curl_multi_poll(multi, NULL, 0, 1, NULL);
        }
    }
    return want;
}

static int notify_measure(struct cluster *c,
                          const char *poll_token,
                          const char *put_token,
                          unsigned count,
                          struct bench_latency out[4],
                          unsigned *early)
{
    static const char body[1024] = "cairn-bench notify";
    uint64_t *latency_ns = calloc(count, sizeof(*latency_ns));
    uint64_t *from_start_ns = calloc(count, sizeof(*from_start_ns));
    uint64_t *put_ns = calloc(count, sizeof(*put_ns));
    uint64_t *lead_ns = calloc(count, sizeof(*lead_ns));
    CURLM *multi = curl_multi_init();
    struct call poll = {0}, put = {0};
    char url[256];
    double cursor = 0, start, put_start;
    struct answer a;
    unsigned done = 0;
    int rv = -1;

    *early = 0;
    snprintf(url, sizeof(url), "%s/v1/files/notify.txt", c->url);
    call_init(&put, url, put_token);
    curl_easy_setopt(put.easy, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(put.easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(put.easy, CURLOPT_POSTFIELDSIZE, (long)sizeof(body));
    start = bench_now();
    while (done < count) {
        snprintf(url, sizeof(url), "%s/v1/changes/latest", c->url);
        if (http("GET", url, poll_token, NULL, &a) != 200 ||
            json_number(a.text, "cursor", &cursor) != 0) {
            fprintf(stderr, "http: changes/latest: %s\n", a.text);
            goto out;
        }
        snprintf(url, sizeof(url), "%s/v1/changes?cursor=%.0f&timeout=30", c->url, cursor);
        if (poll.easy == NULL) {
            call_init(&poll, url, poll_token);
        } else {
            curl_easy_setopt(poll.easy, CURLOPT_URL, url);
        }
        poll.answer.len = 0;
        poll.done_at = 0;
        put.answer.len = 0;
        put.done_at = 0;
        curl_multi_add_handle(multi, poll.easy);
        /* Let the poll reach the gateway and wait there (it is on a warm
         * connection: well under this); an answer now would be a failure. */
        if (drive(multi, 1, 0.05) == 0) {
            fprintf(stderr, "http: the poll answered before any change: %ld %s\n", poll.status,
                    poll.answer.text);
            goto out;
        }
        put_start = bench_now();
        curl_multi_add_handle(multi, put.easy);
        if (drive(multi, 2, 35) != 0 || put.result != CURLE_OK ||
            (put.status != 200 && put.status != 201) || poll.result != CURLE_OK ||
            poll.status != 200 || strstr(poll.answer.text, "\"seq\"") == NULL) {
            fprintf(stderr, "http: notify round %u: put %d/%ld %s, poll %d/%ld %s\n", done,
                    (int)put.result, put.status, put.answer.text, (int)poll.result, poll.status,
                    poll.answer.text);
            goto out;
        }
        if (poll.done_at < put.done_at) {
            (*early)++; /* the event came before the commit's answer */
        }
        latency_ns[done] =
            poll.done_at > put.done_at ? (uint64_t)((poll.done_at - put.done_at) * 1e9) : 0;
        from_start_ns[done] = (uint64_t)((poll.done_at - put_start) * 1e9);
        lead_ns[done] =
            put.done_at > poll.done_at ? (uint64_t)((put.done_at - poll.done_at) * 1e9) : 0;
        put_ns[done++] = (uint64_t)((put.done_at - put_start) * 1e9);
    }
    bench_latency_summarise(latency_ns, done, bench_now() - start, &out[0]);
    bench_latency_summarise(from_start_ns, done, bench_now() - start, &out[1]);
    bench_latency_summarise(put_ns, done, bench_now() - start, &out[2]);
    bench_latency_summarise(lead_ns, done, bench_now() - start, &out[3]);
    rv = 0;
out:
    call_free(&put);
    if (poll.easy != NULL) {
        call_free(&poll);
    }
    curl_multi_cleanup(multi);
    free(latency_ns);
    free(from_start_ns);
    free(put_ns);
    free(lead_ns);
    return rv;
}

/* ---- Ceilings ---- */

struct encode_ctx {
    struct stor_keys keys;
    uint8_t *data;
    size_t size;
    unsigned threads;
    uint64_t calls;
    uint8_t k, m;
};

static int discard_chunk(void *data, const struct stor_chunk *chunk)
{
    (void)data;
    (void)chunk;
    return 0;
}

/* The whole encode pipeline, as bench/pipeline.c's p_encode runs it. */
static void encode_pipeline(void *arg)
{
    struct encode_ctx *e = arg;
    struct stor_pipeline_config config = {
        .codec = {.keys = &e->keys, .k = e->k, .m = e->m, .compress = true},
        .thread_count = e->threads};
    struct stor_encoder *encoder;

    CN_ASSERT(stor_encoder_new(&config, discard_chunk, NULL, &encoder) == 0);
    for (size_t at = 0; at < e->size; at += 1u << 20) {
        CN_ASSERT(stor_encoder_write(encoder, e->data + at, CN_MIN(1u << 20, e->size - at)) == 0);
    }
    CN_ASSERT(stor_encoder_finish(encoder) == 0);
    stor_encoder_free(encoder);
    e->calls++;
}

/* bench_rate of the encode pipeline, and its MB per CPU second of this
 * process (what it costs, however busy the machine). */
static double encode_rate(struct encode_ctx *e, double *cpu_rate)
{
    struct timespec t0, t1;
    double rate, calls;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    rate = bench_rate(encode_pipeline, e, e->size, 0.5);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    calls = (double)e->calls;
    *cpu_rate = calls * (double)e->size / 1e6 /
                ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    e->calls = 0;
    return rate;
}

#define TCP_BUF (1u << 20)

struct tcp_sender {
    int fd;
    uint64_t bytes;
};

static void tcp_send(void *arg)
{
    struct tcp_sender *t = arg;
    uint8_t *buf = cn_xmalloc(TCP_BUF);
    uint64_t sent = 0;

    memset(buf, 0x5a, TCP_BUF);
    while (sent < t->bytes) {
        ssize_t n = send(t->fd, buf, (size_t)CN_MIN((uint64_t)TCP_BUF, t->bytes - sent), 0);
        if (n <= 0) {
            break;
        }
        sent += (uint64_t)n;
    }
    close(t->fd);
    free(buf);
}

/* One TCP connection on 127.0.0.1, one sender thread, this thread receiving;
 * the best MB/s of 3 runs of bytes. */
static double tcp_loopback(uint64_t bytes)
{
    double best = 0;

    for (int trial = 0; trial < 3; trial++) {
        struct sockaddr_in addr = {.sin_family = AF_INET};
        socklen_t len = sizeof(addr);
        int lfd = socket(AF_INET, SOCK_STREAM, 0), cfd = socket(AF_INET, SOCK_STREAM, 0), sfd;
        uint8_t *buf = cn_xmalloc(TCP_BUF);
        struct tcp_sender sender = {.bytes = bytes};
        uv_thread_t thread;
        uint64_t got = 0;
        double start;

        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(lfd, 1) != 0 ||
            getsockname(lfd, (struct sockaddr *)&addr, &len) != 0 ||
            connect(cfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
            (sfd = accept(lfd, NULL, NULL)) < 0) {
            fprintf(stderr, "http: loopback socket: %s\n", strerror(errno));
            exit(1);
        }
        sender.fd = sfd;
        start = bench_now();
        uv_thread_create(&thread, tcp_send, &sender);
        for (;;) {
            ssize_t n = recv(cfd, buf, TCP_BUF, 0);
            if (n <= 0) {
                break;
            }
            got += (uint64_t)n;
        }
        uv_thread_join(&thread);
        best = CN_MAX(best, (double)got / (bench_now() - start) / 1e6);
        close(cfd);
        close(lfd);
        free(buf);
    }
    return best;
}

/* Sequential writes of bytes (1 MiB each) to a file in dir, then fdatasync;
 * MB/s. The nodes fdatasync every shard file they store. */
static double disk_write(const char *dir, uint64_t bytes)
{
    char path[400];
    uint8_t *buf = cn_xmalloc(TCP_BUF);
    uint64_t done = 0;
    double start, rate = 0;
    int fd;

    snprintf(path, sizeof(path), "%.300s/disk-test", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    randombytes_buf(buf, TCP_BUF);
    start = bench_now();
    while (fd >= 0 && done < bytes && write(fd, buf, TCP_BUF) == (ssize_t)TCP_BUF) {
        done += TCP_BUF;
    }
    if (fd >= 0 && done == bytes && fdatasync(fd) == 0) {
        rate = (double)bytes / (bench_now() - start) / 1e6;
    }
    if (fd >= 0) {
        close(fd);
    }
    unlink(path);
    free(buf);
    return rate;
}

/* ---- Main ---- */

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void out_phase(const char *name, const struct phase *p)
{
    char label[96];
    double mb = p->mbps * p->seconds;
    double ours = p->cpu.gw_loop + p->cpu.gw_pool + p->cpu.nodes + p->cpu.client;

    bench_out_rate(name, p->mbps);
    snprintf(label, sizeof(label), "%s_seconds", name);
    bench_out_number(label, p->seconds);
    snprintf(label, sizeof(label), "%s_gateway_rss_peak_mib", name);
    bench_out_number(label, p->rss_peak_mib);
    snprintf(label, sizeof(label), "%s_gateway_rss_sampled_mib", name);
    bench_out_number(label, p->rss_sampled_mib);
    /* CPU milliseconds per MB moved: what it costs, however busy the machine */
    snprintf(label, sizeof(label), "%s_gateway_loop_cpu_ms_per_mb", name);
    bench_out_number(label, p->cpu.gw_loop * 1e3 / mb);
    snprintf(label, sizeof(label), "%s_gateway_pool_cpu_ms_per_mb", name);
    bench_out_number(label, p->cpu.gw_pool * 1e3 / mb);
    snprintf(label, sizeof(label), "%s_nodes_cpu_ms_per_mb", name);
    bench_out_number(label, p->cpu.nodes * 1e3 / mb);
    snprintf(label, sizeof(label), "%s_client_cpu_ms_per_mb", name);
    bench_out_number(label, p->cpu.client * 1e3 / mb);
    snprintf(label, sizeof(label), "%s_others_cores", name);
    bench_out_number(label, CN_MAX(0.0, p->cpu.busy - ours) / p->seconds);
    /* the rate if this machine's cores did nothing else at this cost */
    snprintf(label, sizeof(label), "%s_cpu_bound", name);
    bench_out_rate(label, (double)sysconf(_SC_NPROCESSORS_ONLN) * mb / ours);
}

static int usage(void)
{
    fprintf(stderr, "usage: cairn-bench http [--json] [--size SIZE] [--multi-size SIZE] "
                    "[--streams N] [--notify N] [--dir DIR] [--bin DIR] [--keep]\n"
                    "  SIZE: bytes, or with KiB, MiB, GiB (default 1GiB; at most 10GiB)\n");
    return 2;
}

int bench_http_main(int argc, char **argv)
{
    static struct stream streams[STREAMS_MAX];
    static struct cluster cluster;
    struct cluster *c = &cluster;
    struct phase up1, down1, upn, downn;
    struct bench_latency notify[4];
    struct encode_ctx enc = {0};
    const char *base_dir = "/tmp";
    char admin_token[80], token[80], token2[80], url[256], name[64];
    uint64_t size = 1ull << 30, multi_size = 0;
    unsigned stream_count = 8, notify_count = 200, early = 0;
    double encode1, encode2, encode1_cpu, encode2_cpu, tcp, disk, rss_max;
    bool json = false, keep = false;
    struct answer a;
    int rv = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (cn_parse_size(argv[++i], &size) != 0 || size == 0 || size > (10ull << 30)) {
                return usage();
            }
        } else if (strcmp(argv[i], "--multi-size") == 0 && i + 1 < argc) {
            if (cn_parse_size(argv[++i], &multi_size) != 0 || multi_size == 0 ||
                multi_size > (10ull << 30)) {
                return usage();
            }
        } else if (strcmp(argv[i], "--streams") == 0 && i + 1 < argc) {
            stream_count = (unsigned)atoi(argv[++i]);
            if (stream_count < 1 || stream_count > STREAMS_MAX) {
                return usage();
            }
        } else if (strcmp(argv[i], "--notify") == 0 && i + 1 < argc) {
            notify_count = (unsigned)atoi(argv[++i]);
            if (notify_count < 1 || notify_count > 100000) {
                return usage();
            }
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            base_dir = argv[++i];
        } else if (strcmp(argv[i], "--bin") == 0 && i + 1 < argc) {
            snprintf(c->bin, sizeof(c->bin), "%s", argv[++i]);
        } else {
            return usage();
        }
    }
    if (multi_size == 0) {
        multi_size = size;
    }
    if (c->bin[0] == '\0') {
        char self[300];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            return usage();
        }
        self[n] = '\0';
        snprintf(c->bin, sizeof(c->bin), "%s", dirname(self));
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    running_cluster = c;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(c->dir, sizeof(c->dir), "%s/cairn-bench-http-XXXXXX", base_dir);
    if (mkdtemp(c->dir) == NULL) {
        fprintf(stderr, "http: cannot make a folder under %s: %s\n", base_dir, strerror(errno));
        return 1;
    }
    bench_out_begin(json);

    /* The ceilings first, on a quiet machine (before the cluster starts). */
    enc.size = 64u << 20;
    enc.data = cn_xmalloc(enc.size);
    randombytes_buf(enc.data, enc.size);
    randombytes_buf(enc.keys.master_key, 32);
    randombytes_buf(enc.keys.dedup_key, 32);
    enc.keys.key_version = 1;
    tcp = tcp_loopback(2ull << 30);
    disk = disk_write(c->dir, 1ull << 30);

    if (cluster_start(c) != 0) {
        fprintf(stderr, "http: the cluster did not start (logs in %s)\n", c->dir);
        keep = true;
        goto out;
    }
    enc.k = (uint8_t)c->k;
    enc.m = (uint8_t)c->m;
    enc.threads = 1;
    encode1 = encode_rate(&enc, &encode1_cpu);
    enc.threads = 2;
    encode2 = encode_rate(&enc, &encode2_cpu);
    free(enc.data);
    enc.data = NULL;
    bench_out_section("ceilings (this machine, this run)");
    snprintf(name, sizeof(name), "encode_pipeline_%u_%u_1_thread", c->k, c->m);
    bench_out_rate(name, encode1);
    snprintf(name, sizeof(name), "encode_pipeline_%u_%u_2_threads", c->k, c->m);
    bench_out_rate(name, encode2);
    snprintf(name, sizeof(name), "encode_pipeline_%u_%u_1_thread_cpu", c->k, c->m);
    bench_out_rate(name, encode1_cpu);
    snprintf(name, sizeof(name), "encode_pipeline_%u_%u_2_threads_cpu", c->k, c->m);
    bench_out_rate(name, encode2_cpu);
    bench_out_rate("tcp_loopback", tcp);
    bench_out_rate("disk_write_fdatasync", disk);
    /* every file byte is written (k+m)/k times, all on this one disk */
    bench_out_rate("upload_disk_bound", disk * c->k / (c->k + c->m));

    if (login(c, "admin", c->password, admin_token) != 0) {
        goto out;
    }
    snprintf(url, sizeof(url), "%s/v1/admin/users", c->url);
    if (http("POST", url, admin_token, "{\"name\":\"bench\",\"password\":\"bench-password\"}",
             &a) != 201) {
        fprintf(stderr, "http: user add: %s\n", a.text);
        goto out;
    }
    if (login(c, "bench", "bench-password", token) != 0 ||
        login(c, "bench", "bench-password", token2) != 0) {
        goto out;
    }
    /* A warm-up: the groups may still be settling after the joins. */
    for (double start = bench_now();; usleep(200 * 1000)) {
        long status;
        snprintf(url, sizeof(url), "%s/v1/files/warmup.txt", c->url);
        status = http("PUT", url, token, "warm", &a);
        if (status == 200 || status == 201) {
            break;
        }
        if (bench_now() - start > READY_S) {
            fprintf(stderr, "http: warm-up upload: %ld %s\n", status, a.text);
            goto out;
        }
    }

    bench_out_section("gateway: PUT and GET /v1/files (3 nodes, 1 gateway, loopback)");
    bench_out_number("file_mib", (double)size / (1 << 20));
    if (transfer(c, token, "one", streams, 1, size, true, &up1) != 0) {
        goto out;
    }
    out_phase("upload_1_stream", &up1);
    if (transfer(c, token, "one", streams, 1, size, false, &down1) != 0) {
        goto out;
    }
    out_phase("download_1_stream", &down1);
    bench_out_number("multi_file_mib", (double)multi_size / (1 << 20));
    snprintf(name, sizeof(name), "upload_%u_streams", stream_count);
    if (transfer(c, token, "multi", streams, stream_count, multi_size, true, &upn) != 0) {
        goto out;
    }
    out_phase(name, &upn);
    snprintf(name, sizeof(name), "download_%u_streams", stream_count);
    if (transfer(c, token, "multi", streams, stream_count, multi_size, false, &downn) != 0) {
        goto out;
    }
    out_phase(name, &downn);

    bench_out_section("notification: PUT on one connection -> GET /v1/changes on another");
    if (notify_measure(c, token2, token, notify_count, notify, &early) != 0) {
        goto out;
    }
    bench_out_number("notify_commits", notify_count);
    bench_out_number("notify_p50_ms", notify[0].p50_ms);
    /* notify_p99_ms: with the ratios below (one JSON member) */
    bench_out_number("notify_before_commit_answer", early);
    bench_out_number("notify_from_put_start_p50_ms", notify[1].p50_ms);
    bench_out_number("notify_from_put_start_p99_ms", notify[1].p99_ms);
    bench_out_number("put_1kib_p50_ms", notify[2].p50_ms);
    bench_out_number("put_1kib_p99_ms", notify[2].p99_ms);
    /* how long before the PUT's answer the poll's came (0 when after) */
    bench_out_number("poll_ahead_of_put_p50_ms", notify[3].p50_ms);
    bench_out_number("poll_ahead_of_put_p99_ms", notify[3].p99_ms);

    rss_max = CN_MAX(CN_MAX(up1.rss_peak_mib, down1.rss_peak_mib),
                     CN_MAX(upn.rss_peak_mib, downn.rss_peak_mib));
    rss_max = CN_MAX(rss_max, CN_MAX(CN_MAX(up1.rss_sampled_mib, down1.rss_sampled_mib),
                                     CN_MAX(upn.rss_sampled_mib, downn.rss_sampled_mib)));
    bench_out_section("ratios (goals: upload_1_vs_pipeline >= 0.7, notify_p99_ms <= 100, "
                      "gateway_rss_mib <= 256 for 10 GiB)");
    bench_out_number("upload_1_vs_pipeline", up1.mbps / encode1);
    bench_out_number("upload_1_cpu_bound_vs_pipeline",
                     (double)sysconf(_SC_NPROCESSORS_ONLN) * up1.mbps * up1.seconds /
                         (up1.cpu.gw_loop + up1.cpu.gw_pool + up1.cpu.nodes + up1.cpu.client) /
                         encode1_cpu);
    bench_out_number("upload_1_vs_disk_bound", up1.mbps / (disk * c->k / (c->k + c->m)));
    bench_out_number("download_1_vs_tcp", down1.mbps / tcp);
    bench_out_number("upload_1_vs_tcp", up1.mbps / tcp);
    bench_out_number("notify_p99_ms", notify[0].p99_ms);
    bench_out_number("gateway_rss_mib", rss_max);
    bench_out_end();
    rv = 0;
out:
    free(enc.data);
    cluster_stop(c);
    if (!keep) {
        nftw(c->dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    } else {
        fprintf(stderr, "http: data and logs kept in %s\n", c->dir);
    }
    curl_global_cleanup();
    return rv;
}
