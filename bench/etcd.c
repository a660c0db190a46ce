/*
 * The yardstick for `cairn-bench meta`: Debian's etcd-server as a 3-member
 * cluster on loopback (data in a temporary folder under the bench's --dir),
 * driven through its HTTP/JSON gateway (/v3/kv/put) by libcurl: N clients,
 * each with one keep-alive connection to the leader and one put in flight,
 * each putting its own key with a value as large as our commit command. The
 * members are started and stopped by PID.
 */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>
#include <uv.h>

#include "bench.h"

#define MEMBERS     3
#define CLIENTS_MAX 128
#define ETCD_BIN    "/usr/bin/etcd"

struct member {
    char client_url[64];
    char peer_url[64];
    pid_t pid;
};

struct answer {
    char text[512];
    size_t len;
};

struct client {
    CURL *easy;
    struct answer answer;
    uint64_t start_ns;
    char body[4096];
};

static size_t answer_write(char *ptr, size_t size, size_t nmemb, void *data)
{
    struct answer *a = data;
    size_t n = size * nmemb, room = sizeof(a->text) - 1 - a->len;

    memcpy(a->text + a->len, ptr, n < room ? n : room);
    a->len += n < room ? n : room;
    a->text[a->len] = '\0';
    return n;
}

/* POSTs body to url; 0 with the answer's text, or -1. */
static int post(const char *url, const char *body, struct answer *answer)
{
    CURL *easy = curl_easy_init();
    CURLcode rc;

    answer->len = 0;
    answer->text[0] = '\0';
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, answer_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, answer);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 2000L);
    rc = curl_easy_perform(easy);
    curl_easy_cleanup(easy);
    return rc == CURLE_OK ? 0 : -1;
}

/* The value of "name":"..." in a JSON text (etcd prints 64-bit ids as strings). */
static int json_string(const char *text, const char *name, char *out, size_t size)
{
    char key[64];
    const char *p, *end;

    snprintf(key, sizeof(key), "\"%s\":\"", name);
    p = strstr(text, key);
    if (p == NULL) {
        return -1;
    }
    p += strlen(key);
    end = strchr(p, '"');
    if (end == NULL || (size_t)(end - p) >= size) {
        return -1;
    }
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 0;
}

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void members_stop(struct member *members)
{
    for (unsigned i = 0; i < MEMBERS; i++) {
        if (members[i].pid > 0) {
            kill(members[i].pid, SIGTERM);
            waitpid(members[i].pid, NULL, 0);
            members[i].pid = 0;
        }
    }
}

static int members_start(const char *dir, struct member *members)
{
    char cluster[512] = "", name[16], data[400], log[400];
    size_t used = 0;

    for (unsigned i = 0; i < MEMBERS; i++) {
        char address[32];
        bench_free_port(address, sizeof(address));
        snprintf(members[i].client_url, sizeof(members[i].client_url), "http://%s", address);
        bench_free_port(address, sizeof(address));
        snprintf(members[i].peer_url, sizeof(members[i].peer_url), "http://%s", address);
        used += (size_t)snprintf(cluster + used, sizeof(cluster) - used, "%se%u=%s",
                                 i == 0 ? "" : ",", i + 1, members[i].peer_url);
    }
    for (unsigned i = 0; i < MEMBERS; i++) {
        snprintf(name, sizeof(name), "e%u", i + 1);
        snprintf(data, sizeof(data), "%s/%s", dir, name);
        snprintf(log, sizeof(log), "%s/%s.log", dir, name);
        members[i].pid = fork();
        if (members[i].pid < 0) {
            return -1;
        }
        if (members[i].pid == 0) {
            FILE *out = freopen(log, "w", stderr);
            (void)out;
            dup2(STDERR_FILENO, STDOUT_FILENO);
            execl(ETCD_BIN, ETCD_BIN, "--name", name, "--data-dir", data, "--listen-client-urls",
                  members[i].client_url, "--advertise-client-urls", members[i].client_url,
                  "--listen-peer-urls", members[i].peer_url, "--initial-advertise-peer-urls",
                  members[i].peer_url, "--initial-cluster", cluster, "--initial-cluster-state",
                  "new", "--initial-cluster-token", "cairn-bench", (char *)NULL);
            _exit(127);
        }
    }
    return 0;
}

/* The client URL of the leader, once the cluster has one (30 s at most). */
static int leader_url(struct member *members, char *url, size_t size)
{
    struct answer answer;
    char leader[32], self[32];

    for (double start = bench_now(); bench_now() - start < 30;) {
        for (unsigned i = 0; i < MEMBERS; i++) {
            char status[128];
            snprintf(status, sizeof(status), "%.60s/v3/maintenance/status", members[i].client_url);
            if (post(status, "{}", &answer) == 0 &&
                json_string(answer.text, "leader", leader, sizeof(leader)) == 0 &&
                json_string(answer.text, "member_id", self, sizeof(self)) == 0 &&
                strcmp(leader, self) == 0) {
                snprintf(url, size, "%.60s/v3/kv/put", members[i].client_url);
                return 0;
            }
        }
        usleep(100 * 1000); /* polling an external process that has no way to notify us */
    }
    return -1;
}

static void client_body(struct client *client, unsigned i, size_t value_size)
{
    char key[32], *value = malloc(value_size), *b64;
    size_t key_b64 = sodium_base64_ENCODED_LEN(sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    size_t value_b64 = sodium_base64_ENCODED_LEN(value_size, sodium_base64_VARIANT_ORIGINAL);
    char *key_text = malloc(key_b64);

    b64 = malloc(value_b64);
    memset(value, 0x5a, value_size);
    snprintf(key, sizeof(key), "file%u", i);
    sodium_bin2base64(key_text, key_b64, (const unsigned char *)key, strlen(key),
                      sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64, value_b64, (const unsigned char *)value, value_size,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(client->body, sizeof(client->body), "{\"key\":\"%s\",\"value\":\"%s\"}", key_text,
             b64);
    free(key_text);
    free(b64);
    free(value);
}

int bench_etcd_measure(const char *base_dir,
                       size_t value_size,
                       unsigned clients,
                       unsigned ops,
                       struct bench_latency *out)
{
    static struct client pool[CLIENTS_MAX];
    struct member members[MEMBERS] = {0};
    uint64_t *latency_ns = calloc(ops, sizeof(*latency_ns));
    unsigned issued = 0, done = 0, failed = 0;
    char dir[300], url[128];
    CURLM *multi = NULL;
    double start;
    int running, rv = -1;

    if (access(ETCD_BIN, X_OK) != 0) {
        fprintf(stderr, "etcd: %s not found (apt-get install etcd-server)\n", ETCD_BIN);
        free(latency_ns);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/cairn-bench-etcd-XXXXXX", base_dir);
    if (latency_ns == NULL || clients > CLIENTS_MAX || mkdtemp(dir) == NULL) {
        free(latency_ns);
        return -1;
    }
    if (members_start(dir, members) != 0 || leader_url(members, url, sizeof(url)) != 0) {
        fprintf(stderr, "etcd: the cluster did not come up (logs in %s)\n", dir);
        goto out;
    }
    multi = curl_multi_init();
    for (unsigned i = 0; i < clients; i++) {
        struct client *c = &pool[i];
        client_body(c, i, value_size);
        c->easy = curl_easy_init();
        curl_easy_setopt(c->easy, CURLOPT_URL, url);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, answer_write);
        curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, &c->answer);
        curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
        curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, 10000L);
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)clients);
    start = bench_now();
    for (unsigned i = 0; i < clients && issued < ops; i++, issued++) {
        pool[i].start_ns = uv_hrtime();
        pool[i].answer.len = 0;
        curl_multi_add_handle(multi, pool[i].easy);
    }
    while (done < issued) {
        CURLMsg *msg;
        int left;
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            struct client *c;
            long status = 0;
            if (msg->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            latency_ns[done++] = uv_hrtime() - c->start_ns;
            failed += msg->data.result != CURLE_OK || status != 200;
            curl_multi_remove_handle(multi, c->easy);
            if (issued < ops) {
                issued++;
                c->start_ns = uv_hrtime();
                c->answer.len = 0;
                curl_multi_add_handle(multi, c->easy);
            }
        }
        if (done < issued) {
            curl_multi_poll(multi, NULL, 0, 100, NULL);
        }
    }
    if (failed != 0) {
        fprintf(stderr, "etcd: %u of %u puts failed\n", failed, done);
        goto out;
    }
    bench_latency_summarise(latency_ns, done, bench_now() - start, out);
    rv = 0;
out:
    for (unsigned i = 0; i < clients && multi != NULL; i++) {
        curl_easy_cleanup(pool[i].easy);
    }
    if (multi != NULL) {
        curl_multi_cleanup(multi);
    }
    members_stop(members);
    nftw(dir, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(latency_ns);
    return rv;
}
