/*
 * cairn-blocks: the block path by hand — for operators checking a cluster,
 * and for process tests that put chunks, break nodes and read them back.
 * (Users store files through the gateway; this tool has no namespaces.)
 *
 *   cairn-blocks keygen KEYFILE
 *   cairn-blocks put --env cluster.env --keys KEYFILE --scheme K+M --manifest OUT < data
 *   cairn-blocks get --env cluster.env --keys KEYFILE --manifest IN > data
 *   cairn-blocks repair --env cluster.env --manifest IN --out OUT
 *   cairn-blocks rebalance --env cluster.env --manifest IN --out OUT [--drain NODE]...
 *
 * put chunks and encodes stdin with the storage pipeline, places each chunk's
 * shards on the members that answer a ping, and writes one manifest line per
 * chunk: "<chunk id hex> <k> <m> <node id of shard 0> ... <node id of shard k+m-1>".
 * get reads the chunks back from any k shards each (data shards first),
 * reading around down nodes and corrupt shards, and writes the plaintext.
 * repair checks every shard of every chunk, rebuilds the missing and corrupt
 * ones from any k (no key needed) onto up members (node_repair.h), writes the
 * manifest with the shards' new homes to OUT, and prints one summary line.
 * rebalance moves shards onto the nodes placement wants now (after a node
 * joined, or away from --drain nodes), writes OUT durably, and only then
 * deletes the old copies, so either manifest reads until OUT exists.
 *
 * Exit codes: 0 ok; 1 a chunk could not be stored or read; 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node_repair.h"
#include "node_rpc.h"
#include "storage.h"
#include "wire.pb-c.h"

#define CALL_TIMEOUT_MS 30000
#define PING_TIMEOUT_MS 2000
#define READ_SIZE       (1u << 20)

struct tool {
    uv_loop_t loop;
    struct node_blocks *blocks;
    struct node_member members[64];
    unsigned member_count;
    uint8_t secret[NODE_SECRET_SIZE];
    struct stor_keys keys;
    FILE *manifest;
    bool done;
    int rv;
    struct node_repair_result repaired;      /* repair: the last chunk's outcome */
    struct node_rebalance_result rebalanced; /* rebalance: the last chunk's outcome */
    unsigned deletes_pending;
    /* get: the shards of the chunk being read */
    struct cn_buf shards[NODE_SHARDS_MAX];
    unsigned shard_count;
};

static int usage_error(const char *what)
{
    fprintf(stderr, "cairn-blocks: %s\n", what);
    return 2;
}

/* Reads CAIRN_SECRET and CAIRN_NODE_<i>_ADDR lines from a cluster.env. */
static int load_env(struct tool *tool, const char *path)
{
    char line[1024], errmsg[CN_ERRMSG_SIZE], secret_path[512] = "";
    FILE *file = fopen(path, "r");

    if (file == NULL) {
        fprintf(stderr, "cairn-blocks: %s: %s\n", path, strerror(errno));
        return 2;
    }
    while (fgets(line, sizeof(line), file) != NULL && tool->member_count < 64) {
        unsigned i;
        char addr[64];
        if (sscanf(line, "CAIRN_NODE_%u_ADDR=%63s", &i, addr) == 2) {
            struct node_member *m = &tool->members[tool->member_count++];
            m->node_id = i;
            m->domain = i;
            snprintf(m->address, sizeof(m->address), "%s", addr);
        } else if (sscanf(line, "CAIRN_SECRET=%511s", secret_path) == 1) {
            continue;
        }
    }
    fclose(file);
    if (secret_path[0] == '\0' || tool->member_count == 0) {
        return usage_error("cluster.env has no CAIRN_SECRET or no nodes");
    }
    if (node_secret_load(secret_path, tool->secret, errmsg) != 0) {
        return usage_error(errmsg);
    }
    return 0;
}

static void run_until_done(struct tool *tool)
{
    while (!tool->done) {
        uv_run(&tool->loop, UV_RUN_ONCE);
    }
    tool->done = false;
}

struct ping {
    struct node_member *member;
    unsigned *pending;
};

static void ping_cb(void *data,
                    int rv,
                    const struct proto_frame_header *header,
                    const uint8_t *payload)
{
    struct ping *ping = data;

    (void)header;
    (void)payload;
    ping->member->up = rv == 0;
    (*ping->pending)--;
}

/* Marks members up that answer a ping in time. */
static void probe_members(struct tool *tool)
{
    struct node_rpc_options options;
    struct node_client *clients[64];
    struct ping pings[64];
    unsigned pending = 0;

    node_rpc_options_init(&options);
    for (unsigned i = 0; i < tool->member_count; i++) {
        clients[i] = node_client_new(&tool->loop, tool->members[i].address, tool->secret, &options);
        tool->members[i].up = false;
        pings[i] = (struct ping){&tool->members[i], &pending};
        if (node_client_call(clients[i], CAIRN__WIRE__MSG_TYPE__MSG_PING, "ping", 4,
                             PING_TIMEOUT_MS, ping_cb, &pings[i]) == 0) {
            pending++;
        }
    }
    while (pending > 0) { /* every ping answers or times out */
        uv_run(&tool->loop, UV_RUN_ONCE);
    }
    for (unsigned i = 0; i < tool->member_count; i++) {
        node_client_free(clients[i]);
    }
}

static void put_cb(void *data, int rv, const uint64_t *node_ids, unsigned count)
{
    struct tool *tool = data;

    tool->done = true;
    tool->rv = rv;
    for (unsigned i = 0; rv == 0 && i < count; i++) {
        fprintf(tool->manifest, " %llu", (unsigned long long)node_ids[i]);
    }
}

static int put_chunk(void *data, const struct stor_chunk *chunk)
{
    struct tool *tool = data;
    char hex[2 * STOR_ID_SIZE + 1];
    int rv;

    cn_hex_encode(chunk->id.bytes, STOR_ID_SIZE, hex);
    fprintf(tool->manifest, "%s %u %u", hex, chunk->k, chunk->m);
    rv = node_blocks_put(tool->blocks, chunk->id.bytes, (const uint8_t *const *)chunk->shards,
                         chunk->shard_size, chunk->k + chunk->m, CALL_TIMEOUT_MS, put_cb, tool);
    if (rv != 0) {
        fprintf(stderr, "cairn-blocks: chunk %s: %s\n", hex, cairn_strerror(rv));
        return rv;
    }
    run_until_done(tool);
    fputc('\n', tool->manifest);
    if (tool->rv != 0) {
        fprintf(stderr, "cairn-blocks: chunk %s: %s\n", hex, cairn_strerror(tool->rv));
    }
    return tool->rv;
}

static int cmd_put(struct tool *tool, unsigned k, unsigned m)
{
    struct stor_pipeline_config config = {
        .codec = {.keys = &tool->keys, .k = (uint8_t)k, .m = (uint8_t)m, .compress = true},
        .thread_count = 1,
    };
    struct stor_encoder *encoder;
    uint8_t *buf = cn_xmalloc(READ_SIZE);
    ssize_t n;
    int rv;

    rv = stor_encoder_new(&config, put_chunk, tool, &encoder);
    if (rv != 0) {
        free(buf);
        return usage_error(cairn_strerror(rv));
    }
    while (rv == 0 && (n = read(STDIN_FILENO, buf, READ_SIZE)) > 0) {
        rv = stor_encoder_write(encoder, buf, (size_t)n);
    }
    if (rv == 0) {
        rv = stor_encoder_finish(encoder);
    }
    stor_encoder_free(encoder);
    free(buf);
    return rv == 0 ? 0 : 1;
}

static void get_cb(
    void *data, int rv, const uint8_t *const *shards, const size_t *lens, unsigned count)
{
    struct tool *tool = data;

    tool->done = true;
    tool->rv = rv;
    tool->shard_count = 0;
    for (unsigned i = 0; rv == 0 && i < count; i++) {
        cn_buf_reset(&tool->shards[i]);
        cn_buf_append(&tool->shards[i], shards[i], lens[i]);
        tool->shard_count++;
    }
}

/* Fetches need shards of a chunk and decodes them into out. */
static int read_chunk(struct tool *tool,
                      struct stor_codec *codec,
                      const struct stor_id *id,
                      const uint64_t *node_ids,
                      unsigned shard_count,
                      unsigned need,
                      uint8_t *out,
                      size_t *len)
{
    const uint8_t *shards[NODE_SHARDS_MAX];
    size_t lens[NODE_SHARDS_MAX];
    int rv;

    rv = node_blocks_get(tool->blocks, id->bytes, node_ids, shard_count, need, CALL_TIMEOUT_MS,
                         get_cb, tool);
    if (rv != 0) {
        return rv;
    }
    run_until_done(tool);
    if (tool->rv != 0) {
        return tool->rv;
    }
    for (unsigned i = 0; i < tool->shard_count; i++) {
        shards[i] = tool->shards[i].base;
        lens[i] = tool->shards[i].len;
    }
    return stor_codec_decode(codec, id, shards, lens, tool->shard_count, out, STOR_CHUNK_SIZE_MAX,
                             len, NULL);
}

/* Parses "<id hex> <k> <m> <node id>..." into its parts. CAIRN_EINVAL. */
static int parse_manifest_line(
    char *line, struct stor_id *id, unsigned *k, unsigned *m, uint64_t *nodes)
{
    char *save = NULL, *word = strtok_r(line, " \n", &save);
    unsigned count;

    if (word == NULL || cn_hex_decode(word, id->bytes, STOR_ID_SIZE) != 0) {
        return CAIRN_EINVAL;
    }
    word = strtok_r(NULL, " \n", &save);
    *k = word != NULL ? (unsigned)strtoul(word, NULL, 10) : 0;
    word = strtok_r(NULL, " \n", &save);
    *m = word != NULL ? (unsigned)strtoul(word, NULL, 10) : 99;
    if (*k < 1 || *k > STOR_K_MAX || *m > STOR_M_MAX) {
        return CAIRN_EINVAL;
    }
    for (count = 0; count < *k + *m; count++) {
        word = strtok_r(NULL, " \n", &save);
        if (word == NULL) {
            return CAIRN_EINVAL;
        }
        nodes[count] = strtoull(word, NULL, 10);
    }
    return 0;
}

static int cmd_get(struct tool *tool)
{
    struct stor_codec_config config = {.keys = &tool->keys, .k = 1, .m = 0};
    struct stor_codec *codec;
    uint8_t *plain = cn_xmalloc(STOR_CHUNK_SIZE_MAX);
    char line[4096];
    unsigned line_no = 0;
    int rv = stor_codec_new(&config, &codec);

    while (rv == 0 && fgets(line, sizeof(line), tool->manifest) != NULL) {
        uint64_t nodes[NODE_SHARDS_MAX];
        struct stor_id id;
        unsigned k, m;
        size_t len = 0;

        line_no++;
        if (parse_manifest_line(line, &id, &k, &m, nodes) != 0) {
            fprintf(stderr, "cairn-blocks: manifest line %u: bad line\n", line_no);
            rv = CAIRN_EINVAL;
            break;
        }
        /* Nodes verify shards before serving them, so a fetched shard that
         * fails decoding is rare (a shard of another chunk under this name):
         * then fetch every shard and let the decoder pick k good ones. */
        rv = read_chunk(tool, codec, &id, nodes, k + m, k, plain, &len);
        if (rv == CAIRN_ECORRUPT || rv == CAIRN_EKEY) {
            rv = read_chunk(tool, codec, &id, nodes, k + m, k + m, plain, &len);
        }
        if (rv != 0) {
            fprintf(stderr, "cairn-blocks: chunk on manifest line %u: %s (%s)\n", line_no,
                    cairn_strerror(rv), cairn_errname(rv));
            break;
        }
        if (fwrite(plain, 1, len, stdout) != len) {
            rv = CAIRN_EIO;
        }
    }
    if (codec != NULL) {
        stor_codec_free(codec);
    }
    free(plain);
    return rv == 0 ? 0 : 1;
}

/* The next line of the manifest: 1 with its parts (and the id in hex), 0 at
 * the end, 2 (usage) for a bad line, which it reports. */
static int next_chunk(struct tool *tool,
                      unsigned *line_no,
                      struct stor_id *id,
                      unsigned *k,
                      unsigned *m,
                      uint64_t *nodes,
                      char *hex)
{
    char line[4096];

    if (fgets(line, sizeof(line), tool->manifest) == NULL) {
        return 0;
    }
    (*line_no)++;
    if (parse_manifest_line(line, id, k, m, nodes) != 0) {
        fprintf(stderr, "cairn-blocks: manifest line %u: bad line\n", *line_no);
        return 2;
    }
    cn_hex_encode(id->bytes, STOR_ID_SIZE, hex);
    return 1;
}

static void repair_cb(void *data, int rv, const struct node_repair_result *result)
{
    struct tool *tool = data;

    tool->done = true;
    tool->rv = rv;
    tool->repaired = *result;
}

static int cmd_repair(struct tool *tool, const char *out_path)
{
    unsigned line_no = 0, healthy = 0, repaired = 0, degraded = 0, rebuilt = 0, k, m;
    uint64_t nodes[NODE_SHARDS_MAX];
    char hex[2 * STOR_ID_SIZE + 1];
    FILE *out = fopen(out_path, "w");
    struct stor_id id;
    int rv = 0;

    if (out == NULL) {
        fprintf(stderr, "cairn-blocks: %s: %s\n", out_path, strerror(errno));
        return 2;
    }
    while ((rv = next_chunk(tool, &line_no, &id, &k, &m, nodes, hex)) == 1) {
        if (node_blocks_repair(tool->blocks, id.bytes, nodes, k, m, CALL_TIMEOUT_MS, repair_cb,
                               tool) != 0) {
            rv = 2;
            break;
        }
        run_until_done(tool);
        rebuilt += tool->repaired.rebuilt;
        if (tool->repaired.missing == 0) {
            healthy++;
        } else if (tool->rv == 0) {
            repaired++;
        } else {
            degraded++;
            fprintf(stderr, "cairn-blocks: chunk %s: %u of %u bad shards rebuilt: %s\n", hex,
                    tool->repaired.rebuilt, tool->repaired.missing, cairn_errname(tool->rv));
        }
        fprintf(out, "%s %u %u", hex, k, m);
        for (unsigned i = 0; i < k + m; i++) {
            fprintf(out, " %llu", (unsigned long long)tool->repaired.node_ids[i]);
        }
        fputc('\n', out);
    }
    if (fclose(out) != 0 && rv == 0) {
        rv = 1;
    }
    printf("chunks %u healthy %u repaired %u degraded %u shards_rebuilt %u\n", line_no, healthy,
           repaired, degraded, rebuilt);
    return rv != 0 ? rv : (degraded > 0 ? 1 : 0);
}

static void rebalance_cb(void *data, int rv, const struct node_rebalance_result *result)
{
    struct tool *tool = data;

    tool->done = true;
    tool->rv = rv;
    tool->rebalanced = *result;
}

struct old_copy {
    struct stor_id id;
    unsigned index;
    uint64_t node_id;
};

static void delete_cb(void *data, int rv)
{
    struct tool *tool = data;

    if (rv != 0 && rv != CAIRN_ENOENT) {
        tool->rv = rv;
    }
    if (--tool->deletes_pending == 0) {
        tool->done = true;
    }
}

static int cmd_rebalance(struct tool *tool,
                         const char *out_path,
                         const uint64_t *drain,
                         unsigned drain_count)
{
    unsigned line_no = 0, moved = 0, failed = 0, deleted = 0, k, m;
    uint64_t nodes[NODE_SHARDS_MAX];
    char hex[2 * STOR_ID_SIZE + 1];
    struct old_copy *old = NULL;
    size_t old_count = 0, old_cap = 0;
    FILE *out = fopen(out_path, "w");
    struct stor_id id;
    int rv = 0;

    if (out == NULL) {
        fprintf(stderr, "cairn-blocks: %s: %s\n", out_path, strerror(errno));
        return 2;
    }
    while ((rv = next_chunk(tool, &line_no, &id, &k, &m, nodes, hex)) == 1) {
        rv = node_blocks_rebalance(tool->blocks, id.bytes, nodes, k + m, drain, drain_count,
                                   CALL_TIMEOUT_MS, rebalance_cb, tool);
        if (rv != 0) {
            fprintf(stderr, "cairn-blocks: chunk %s: %s\n", hex, cairn_errname(rv));
            rv = 1;
            break;
        }
        run_until_done(tool);
        if (tool->rv != 0) {
            failed++;
            fprintf(stderr, "cairn-blocks: chunk %s: %u shards moved, then %s\n", hex,
                    tool->rebalanced.moved, cairn_errname(tool->rv));
        }
        moved += tool->rebalanced.moved;
        fprintf(out, "%s %u %u", hex, k, m);
        for (unsigned i = 0; i < k + m; i++) {
            fprintf(out, " %llu", (unsigned long long)tool->rebalanced.node_ids[i]);
            if (tool->rebalanced.from[i] != 0) {
                if (old_count == old_cap) {
                    old_cap = old_cap == 0 ? 64 : 2 * old_cap;
                    old = cn_xrealloc(old, old_cap * sizeof(*old));
                }
                old[old_count++] = (struct old_copy){id, i, tool->rebalanced.from[i]};
            }
        }
        fputc('\n', out);
    }
    /* The new homes are recorded durably before any old copy goes. */
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
        rv = 1;
    }
    if (fclose(out) != 0) {
        rv = 1;
    }
    for (size_t i = 0; rv == 0 && i < old_count; i++) {
        tool->deletes_pending = 1;
        tool->rv = 0;
        if (node_blocks_delete(tool->blocks, old[i].node_id, old[i].id.bytes, old[i].index,
                               CALL_TIMEOUT_MS, delete_cb, tool) != 0) {
            continue; /* its node is down: the copy stays, harmless (an extra) */
        }
        run_until_done(tool);
        deleted += tool->rv == 0;
    }
    free(old);
    printf("chunks %u moved %u deleted %u failed %u\n", line_no, moved, deleted, failed);
    return rv != 0 ? rv : (failed > 0 ? 1 : 0);
}

static int cmd_keygen(const char *path)
{
    uint8_t master[STOR_KEY_SIZE], dedup[STOR_KEY_SIZE];
    char master_hex[2 * STOR_KEY_SIZE + 1], dedup_hex[2 * STOR_KEY_SIZE + 1];
    FILE *file;
    int fd;

    CN_ASSERT(sodium_init() >= 0);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "cairn-blocks: create(%s): %s\n", path, strerror(errno));
        return errno == EEXIST ? 2 : 1;
    }
    randombytes_buf(master, sizeof(master));
    randombytes_buf(dedup, sizeof(dedup));
    cn_hex_encode(master, sizeof(master), master_hex);
    cn_hex_encode(dedup, sizeof(dedup), dedup_hex);
    file = fdopen(fd, "w");
    fprintf(file, "version = 1\nmaster = %s\ndedup = %s\n", master_hex, dedup_hex);
    if (fflush(file) != 0 || fsync(fd) != 0) {
        fclose(file);
        return 1;
    }
    fclose(file);
    sodium_memzero(master, sizeof(master));
    return 0;
}

static const char usage[] =
    "usage: cairn-blocks keygen KEYFILE\n"
    "       cairn-blocks put --env cluster.env --keys KEYFILE --scheme K+M --manifest OUT < data\n"
    "       cairn-blocks get --env cluster.env --keys KEYFILE --manifest IN > data\n"
    "       cairn-blocks repair --env cluster.env --manifest IN --out OUT\n"
    "       cairn-blocks rebalance --env cluster.env --manifest IN --out OUT [--drain NODE]...\n"
    "exit codes: 0 ok, 1 a chunk could not be stored, read or fully repaired, 2 bad usage\n";

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"env", required_argument, NULL, 'e'},
        {"keys", required_argument, NULL, 'k'},
        {"scheme", required_argument, NULL, 's'},
        {"manifest", required_argument, NULL, 'm'},
        {"out", required_argument, NULL, 'o'},
        {"drain", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    const char *env = NULL, *keys = NULL, *scheme = "2+1", *manifest = NULL, *out = NULL;
    struct node_rpc_options rpc_options;
    struct tool tool = {0};
    char errmsg[CN_ERRMSG_SIZE];
    unsigned k, m;
    int opt, rv;
    uint64_t drain[64];
    unsigned drain_count = 0;
    bool put, repair, rebalance;

    /* A peer that hangs up must cost a write error (EPIPE), not the process. */
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 3 && strcmp(argv[1], "keygen") == 0) {
        return cmd_keygen(argv[2]);
    }
    if (argc < 2 || (strcmp(argv[1], "put") != 0 && strcmp(argv[1], "get") != 0 &&
                     strcmp(argv[1], "repair") != 0 && strcmp(argv[1], "rebalance") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    put = strcmp(argv[1], "put") == 0;
    rebalance = strcmp(argv[1], "rebalance") == 0;
    repair = rebalance || strcmp(argv[1], "repair") == 0; /* both work without keys, into --out */
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        env = opt == 'e' ? optarg : env;
        keys = opt == 'k' ? optarg : keys;
        scheme = opt == 's' ? optarg : scheme;
        manifest = opt == 'm' ? optarg : manifest;
        out = opt == 'o' ? optarg : out;
        if (opt == 'd') {
            char *end;
            unsigned long long id = strtoull(optarg, &end, 10);
            if (*end != '\0' || id == 0 || drain_count == 64) {
                return usage_error("--drain wants a node id (at most 64 of them)");
            }
            drain[drain_count++] = id;
        }
        if (opt == '?') {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (env == NULL || manifest == NULL || (keys == NULL && !repair) || (out == NULL && repair)) {
        return usage_error(repair ? "--env, --manifest and --out are required"
                                  : "--env, --keys and --manifest are required");
    }
    if (sscanf(scheme, "%u+%u", &k, &m) != 2 || k < 1 || k > STOR_K_MAX || m > STOR_M_MAX) {
        return usage_error("--scheme wants K+M with 1 <= K <= 16, 0 <= M <= 4");
    }
    if ((rv = load_env(&tool, env)) != 0) {
        return rv;
    }
    if (!repair && stor_keys_load(&tool.keys, keys, errmsg) != 0) {
        return usage_error(errmsg);
    }
    tool.manifest = fopen(manifest, put ? "w" : "r");
    if (tool.manifest == NULL) {
        fprintf(stderr, "cairn-blocks: %s: %s\n", manifest, strerror(errno));
        return 2;
    }
    uv_loop_init(&tool.loop);
    probe_members(&tool);
    node_rpc_options_init(&rpc_options);
    tool.blocks = node_blocks_new(&tool.loop, tool.secret, &rpc_options);
    node_blocks_set_members(tool.blocks, tool.members, tool.member_count);
    rv = put         ? cmd_put(&tool, k, m)
         : rebalance ? cmd_rebalance(&tool, out, drain, drain_count)
         : repair    ? cmd_repair(&tool, out)
                     : cmd_get(&tool);
    node_blocks_free(tool.blocks);
    uv_run(&tool.loop, UV_RUN_DEFAULT);
    uv_loop_close(&tool.loop);
    if (fclose(tool.manifest) != 0 && rv == 0) {
        rv = 1;
    }
    for (unsigned i = 0; i < NODE_SHARDS_MAX; i++) {
        cn_buf_close(&tool.shards[i]);
    }
    return rv;
}
