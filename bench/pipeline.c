/*
 * cairn-bench pipeline: how fast the block pipeline is, against what this
 * machine's fastest kernels allow.
 *
 * Three parts, on random and on text data:
 * 1. kernels, one core: memcpy; keyed BLAKE2b (libsodium) and HMAC-SHA-256
 *    (OpenSSL); zstd level 1 and our compression probe; AES-256-GCM (OpenSSL
 *    and libsodium) and XChaCha20-Poly1305 (libsodium); ISA-L RS 4+2 encode;
 *    crc32c;
 * 2. our stages: the chunker, the chunk id, one chunk's encode (1+0 without
 *    compression: id + AEAD; 4+2 with compression), one chunk's decode;
 * 3. the whole encode and decode pipelines with 1 and 2 worker threads.
 *
 * ratio_to_ceiling = whole encode, 1 thread, random data / the ceiling, where
 * the ceiling = 1 / (sum over the stages hash, probe, AEAD, erasure code of
 * 1 / the fastest kernel's throughput). speedup_2_threads = the encode
 * pipeline with 2 threads / with 1, random data. Throughputs are MB/s of
 * plaintext (10^6 bytes per second). ratio_to_ceiling_cpu is the same ratio
 * with every rate taken per CPU second, and speedup_2_threads_cpu_bound =
 * 2 * (2-thread MB per CPU second) / (1-thread MB per CPU second): what two
 * whole cores would give at the measured cost, an upper bound.
 *
 * The machine may be shared: for the encode pipelines the run also reports
 * MB per second of this process's CPU time (`_cpu_mbps`: what the code costs,
 * whatever else runs), the cores this process used, and the cores other
 * processes used meanwhile (`_others_cores`, from /proc/stat), so that a low
 * 2-thread figure can be told apart from a busy machine.
 */
#include <isa-l/erasure_code.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "bench.h"
#include "cn.h"
#include "storage.h"

#define CHUNK       (1u << 20)
#define MIN_SECONDS 0.15

struct ctx {
    uint8_t *data; /* size bytes of random or text */
    size_t size;
    uint8_t *out; /* size + slack */
    struct stor_keys keys;
    ZSTD_CCtx *cctx;
    EVP_CIPHER_CTX *evp;
    uint8_t ec_tables[4 * 2 * 32];
    uint8_t *parity[2];
    struct stor_codec *codec;
    struct stor_codec *decoder;
    struct stor_chunk chunk;
    unsigned threads;
    uint8_t k;
    uint8_t m;
};

static void k_memcpy(void *arg)
{
    struct ctx *c = arg;

    memcpy(c->out, c->data, c->size);
}

static void k_blake2b(void *arg)
{
    struct ctx *c = arg;
    uint8_t hash[32];

    for (size_t at = 0; at < c->size; at += CHUNK) {
        crypto_generichash(hash, 32, c->data + at, CHUNK, c->keys.dedup_key, 32);
    }
}

static void k_sha256(void *arg)
{
    struct ctx *c = arg;
    uint8_t hash[32];
    unsigned int len;

    for (size_t at = 0; at < c->size; at += CHUNK) {
        HMAC(EVP_sha256(), c->keys.dedup_key, 32, c->data + at, CHUNK, hash, &len);
    }
}

static void k_zstd(void *arg)
{
    struct ctx *c = arg;

    for (size_t at = 0; at < c->size; at += CHUNK) {
        ZSTD_compressCCtx(c->cctx, c->out, ZSTD_compressBound(CHUNK), c->data + at, CHUNK, 1);
    }
}

/* The probe as the codec runs it: 4 samples of 4 KiB per chunk, level 1. */
static void k_probe(void *arg)
{
    struct ctx *c = arg;

    for (size_t at = 0; at < c->size; at += CHUNK) {
        for (size_t i = 0; i < 4; i++) {
            ZSTD_compressCCtx(c->cctx, c->out, 4096, c->data + at + i * (CHUNK - 4096) / 3, 4096,
                              1);
        }
    }
}

static void k_gcm_openssl(void *arg)
{
    struct ctx *c = arg;
    uint8_t nonce[12] = {0};
    uint8_t tag[16];
    int n;

    for (size_t at = 0; at < c->size; at += CHUNK) {
        EVP_EncryptInit_ex(c->evp, EVP_aes_256_gcm(), NULL, c->keys.master_key, nonce);
        EVP_EncryptUpdate(c->evp, c->out + at, &n, c->data + at, CHUNK);
        EVP_EncryptFinal_ex(c->evp, tag, &n);
        EVP_CIPHER_CTX_ctrl(c->evp, EVP_CTRL_GCM_GET_TAG, 16, tag);
    }
}

static void k_gcm_sodium(void *arg)
{
    struct ctx *c = arg;
    uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES] = {0};
    uint8_t tag[16];

    for (size_t at = 0; at < c->size; at += CHUNK) {
        crypto_aead_aes256gcm_encrypt_detached(c->out + at, tag, NULL, c->data + at, CHUNK, NULL, 0,
                                               NULL, nonce, c->keys.master_key);
    }
}

static void k_xchacha(void *arg)
{
    struct ctx *c = arg;
    uint8_t nonce[24] = {0};
    uint8_t tag[16];

    for (size_t at = 0; at < c->size; at += CHUNK) {
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            c->out + at, tag, NULL, c->data + at, CHUNK, NULL, 0, NULL, nonce, c->keys.master_key);
    }
}

static void k_ec_4_2(void *arg)
{
    struct ctx *c = arg;
    uint8_t *data[4];

    for (size_t at = 0; at < c->size; at += CHUNK) {
        for (int i = 0; i < 4; i++) {
            data[i] = c->data + at + (size_t)i * (CHUNK / 4);
        }
        ec_encode_data(CHUNK / 4, 4, 2, c->ec_tables, data, c->parity);
    }
}

static void k_crc32c(void *arg)
{
    struct ctx *c = arg;

    (void)cn_crc32c(0, c->data, c->size);
}

static void s_chunker(void *arg)
{
    struct ctx *c = arg;
    struct stor_chunker chunker;
    size_t at = 0;
    bool boundary;

    stor_chunker_init(&chunker);
    while (at < c->size) {
        at += stor_chunker_next(&chunker, c->data + at, c->size - at, &boundary);
    }
}

static void s_chunk_id(void *arg)
{
    struct ctx *c = arg;
    struct stor_id id;

    for (size_t at = 0; at < c->size; at += CHUNK) {
        stor_chunk_id(&c->keys, c->data + at, CHUNK, &id);
    }
}

static void s_encode(void *arg)
{
    struct ctx *c = arg;

    for (size_t at = 0; at < c->size; at += CHUNK) {
        CN_ASSERT(stor_codec_encode(c->codec, c->data + at, CHUNK, &c->chunk) == 0);
    }
}

/* Decodes the last encoded chunk (from the data shards alone, or degraded: parity too). */
static void s_decode(void *arg)
{
    struct ctx *c = arg;
    size_t lens[STOR_SHARD_COUNT_MAX];
    size_t len;

    for (unsigned i = 0; i < (unsigned)(c->k + c->m); i++) {
        lens[i] = c->chunk.shard_size;
    }
    for (size_t at = 0; at < c->size; at += CHUNK) {
        CN_ASSERT(stor_codec_decode(c->decoder, &c->chunk.id,
                                    (const uint8_t *const *)c->chunk.shards + c->threads, lens,
                                    c->k, c->out, STOR_CHUNK_SIZE_MAX, &len, NULL) == 0);
    }
}

static int discard_chunk(void *data, const struct stor_chunk *chunk)
{
    (void)data;
    (void)chunk;
    return 0;
}

static void p_encode(void *arg)
{
    struct ctx *c = arg;
    struct stor_pipeline_config config = {
        .codec = {.keys = &c->keys, .k = c->k, .m = c->m, .compress = true},
        .thread_count = c->threads};
    struct stor_encoder *encoder;

    CN_ASSERT(stor_encoder_new(&config, discard_chunk, NULL, &encoder) == 0);
    for (size_t at = 0; at < c->size; at += CHUNK) {
        CN_ASSERT(stor_encoder_write(encoder, c->data + at, CN_MIN(CHUNK, c->size - at)) == 0);
    }
    CN_ASSERT(stor_encoder_finish(encoder) == 0);
    stor_encoder_free(encoder);
}

/* A whole stream encoded into memory, for the decode pipeline. */
struct stream_chunk {
    struct stor_id id;
    size_t shard_size;
    uint8_t *shards[STOR_SHARD_COUNT_MAX];
};

struct stream {
    struct stream_chunk *chunks;
    size_t count;
    unsigned shard_count;
    unsigned drop; /* Shards left out of each push: data shards, so decoding rebuilds */
    unsigned threads;
    struct stor_keys *keys;
    uint8_t k;
    uint8_t m;
};

static int keep_chunk(void *data, const struct stor_chunk *chunk)
{
    struct stream *s = data;
    struct stream_chunk *copy;

    s->chunks = cn_xrealloc(s->chunks, (s->count + 1) * sizeof(*s->chunks));
    copy = &s->chunks[s->count++];
    copy->id = chunk->id;
    copy->shard_size = chunk->shard_size;
    s->shard_count = (unsigned)(chunk->k + chunk->m);
    for (unsigned i = 0; i < s->shard_count; i++) {
        copy->shards[i] = cn_xmalloc(chunk->shard_size);
        memcpy(copy->shards[i], chunk->shards[i], chunk->shard_size);
    }
    return 0;
}

static int discard_plain(void *data, const uint8_t *plain, size_t len, uint32_t bad)
{
    (void)data;
    (void)plain;
    (void)len;
    (void)bad;
    return 0;
}

static void p_decode(void *arg)
{
    struct stream *s = arg;
    struct stor_pipeline_config config = {.codec = {.keys = s->keys, .k = s->k, .m = s->m},
                                          .thread_count = s->threads};
    struct stor_decoder *decoder;
    size_t lens[STOR_SHARD_COUNT_MAX];

    CN_ASSERT(stor_decoder_new(&config, discard_plain, NULL, &decoder) == 0);
    for (size_t c = 0; c < s->count; c++) {
        for (unsigned i = 0; i < s->shard_count; i++) {
            lens[i] = s->chunks[c].shard_size;
        }
        CN_ASSERT(stor_decoder_push(decoder, &s->chunks[c].id,
                                    (const uint8_t *const *)s->chunks[c].shards + s->drop,
                                    lens + s->drop, s->shard_count - s->drop) == 0);
    }
    CN_ASSERT(stor_decoder_finish(decoder) == 0);
    stor_decoder_free(decoder);
}

static void stream_free(struct stream *s)
{
    for (size_t c = 0; c < s->count; c++) {
        for (unsigned i = 0; i < s->shard_count; i++) {
            free(s->chunks[c].shards[i]);
        }
    }
    free(s->chunks);
}

static void fill_text(uint8_t *data, size_t len, struct cn_rand *rand)
{
    static const char *words[] = {"the",    "cairn", "stores", "files", "on",   "your",   "own",
                                  "disk",   "and",   "chunks", "them",  "into", "shards", "with",
                                  "parity", "so",    "a",      "node",  "may",  "fail"};
    size_t at = 0;

    while (at < len) {
        const char *word = words[cn_rand_below(rand, sizeof(words) / sizeof(words[0]))];
        size_t n = CN_MIN(strlen(word), len - at);

        memcpy(data + at, word, n);
        at += n;
        if (at < len) {
            data[at++] = ' ';
        }
    }
}

/* Busy and steal seconds of the whole machine so far (/proc/stat); 0 if unreadable. */
static void machine_seconds(double *busy, double *steal)
{
    unsigned long long v[8] = {0};
    double tick = (double)sysconf(_SC_CLK_TCK);
    FILE *file = fopen("/proc/stat", "r");

    *busy = 0;
    *steal = 0;
    if (file == NULL) {
        return;
    }
    if (fscanf(file, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8) {
        /* user nice system idle iowait irq softirq steal */
        *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / tick;
        *steal = (double)v[7] / tick;
    }
    fclose(file);
}

static double clock_seconds(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Counts the calls bench_rate makes, to know the bytes behind the CPU time. */
struct counted {
    void (*fn)(void *arg);
    void *arg;
    uint64_t calls;
};

static void counted_call(void *arg)
{
    struct counted *counted = arg;

    counted->fn(counted->arg);
    counted->calls++;
}

/* bench_rate, and also MB per second of this thread's CPU time over its trials
 * (immune to being descheduled by other processes). */
static double kernel_rate(void (*fn)(void *arg), void *arg, size_t bytes, double *cpu_rate)
{
    struct counted counted = {fn, arg, 0};
    double cpu0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
    double rate = bench_rate(counted_call, &counted, bytes, MIN_SECONDS);
    double cpu = clock_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;

    *cpu_rate = (double)bytes * (double)counted.calls / cpu / 1e6;
    return rate;
}

struct kernels {
    double hash;  /* fastest keyed hash */
    double probe; /* the compression probe */
    double aead;  /* fastest AEAD */
    double ec;    /* RS 4+2 */
    /* The same in MB per CPU second */
    double hash_cpu;
    double probe_cpu;
    double aead_cpu;
    double ec_cpu;
};

static void run_kernels(struct ctx *c, struct kernels *best)
{
    double blake2b;
    double sha256;
    double gcm_openssl;
    double gcm_sodium = 0;
    double xchacha;
    double blake2b_cpu;
    double sha256_cpu;
    double gcm_openssl_cpu;
    double gcm_sodium_cpu = 0;
    double xchacha_cpu;

    bench_out_section("kernels (1 core, random data)");
    bench_out_rate("memcpy", bench_rate(k_memcpy, c, c->size, MIN_SECONDS));
    blake2b = kernel_rate(k_blake2b, c, c->size, &blake2b_cpu);
    bench_out_rate("blake2b_keyed_sodium", blake2b);
    sha256 = kernel_rate(k_sha256, c, c->size, &sha256_cpu);
    bench_out_rate("hmac_sha256_openssl", sha256);
    bench_out_rate("zstd1_random", bench_rate(k_zstd, c, c->size, MIN_SECONDS));
    best->probe = kernel_rate(k_probe, c, c->size, &best->probe_cpu);
    bench_out_rate("zstd_probe_random", best->probe);
    gcm_openssl = kernel_rate(k_gcm_openssl, c, c->size, &gcm_openssl_cpu);
    bench_out_rate("aes256gcm_openssl", gcm_openssl);
    if (crypto_aead_aes256gcm_is_available()) {
        gcm_sodium = kernel_rate(k_gcm_sodium, c, c->size, &gcm_sodium_cpu);
        bench_out_rate("aes256gcm_sodium", gcm_sodium);
    }
    xchacha = kernel_rate(k_xchacha, c, c->size, &xchacha_cpu);
    bench_out_rate("xchacha20poly1305_sodium", xchacha);
    best->ec = kernel_rate(k_ec_4_2, c, c->size, &best->ec_cpu);
    bench_out_rate("isal_rs_4_2_encode", best->ec);
    bench_out_rate("crc32c_isal", bench_rate(k_crc32c, c, c->size, MIN_SECONDS));
    best->hash = CN_MAX(blake2b, sha256);
    best->aead = CN_MAX(gcm_openssl, CN_MAX(gcm_sodium, xchacha));
    best->hash_cpu = CN_MAX(blake2b_cpu, sha256_cpu);
    best->aead_cpu = CN_MAX(gcm_openssl_cpu, CN_MAX(gcm_sodium_cpu, xchacha_cpu));
}

static void set_codec(struct ctx *c, uint8_t k, uint8_t m, bool compress)
{
    struct stor_codec_config config = {.keys = &c->keys, .k = k, .m = m, .compress = compress};

    stor_codec_free(c->codec);
    stor_codec_free(c->decoder);
    CN_ASSERT(stor_codec_new(&config, &c->codec) == 0);
    CN_ASSERT(stor_codec_new(&config, &c->decoder) == 0);
    c->k = k;
    c->m = m;
}

static void run_stages(struct ctx *c, const char *kind)
{
    char name[64];

    snprintf(name, sizeof(name), "stages (1 core, %s data)", kind);
    bench_out_section(name);
    snprintf(name, sizeof(name), "chunker_%s", kind);
    bench_out_rate(name, bench_rate(s_chunker, c, c->size, MIN_SECONDS));
    snprintf(name, sizeof(name), "chunk_id_%s", kind);
    bench_out_rate(name, bench_rate(s_chunk_id, c, c->size, MIN_SECONDS));
    set_codec(c, 1, 0, false);
    snprintf(name, sizeof(name), "encode_1_0_nocompress_%s", kind);
    bench_out_rate(name, bench_rate(s_encode, c, c->size, MIN_SECONDS));
    set_codec(c, 4, 2, true);
    snprintf(name, sizeof(name), "encode_4_2_%s", kind);
    bench_out_rate(name, bench_rate(s_encode, c, c->size, MIN_SECONDS));
    c->threads = 0; /* decode from the data shards */
    snprintf(name, sizeof(name), "decode_4_2_%s", kind);
    bench_out_rate(name, bench_rate(s_decode, c, c->size, MIN_SECONDS));
    c->threads = 2; /* two data shards missing: rebuild */
    snprintf(name, sizeof(name), "decode_4_2_degraded_%s", kind);
    bench_out_rate(name, bench_rate(s_decode, c, c->size, MIN_SECONDS));
}

/* Encodes c's data (4+2, 1 thread) into s, for the decode pipeline. */
static void encode_into(struct ctx *c, struct stream *s)
{
    struct stor_pipeline_config config = {
        .codec = {.keys = &c->keys, .k = 4, .m = 2, .compress = true}, .thread_count = 1};
    struct stor_encoder *encoder;

    CN_ASSERT(stor_encoder_new(&config, keep_chunk, s, &encoder) == 0);
    CN_ASSERT(stor_encoder_write(encoder, c->data, c->size) == 0);
    CN_ASSERT(stor_encoder_finish(encoder) == 0);
    stor_encoder_free(encoder);
}

/* bench_rate, and what it cost: MB per CPU second of this process, the cores it
 * used, and the cores every other process used meanwhile. */
static double rate_and_load(
    void (*fn)(void *arg), void *arg, size_t bytes, const char *name, double *cpu_rate)
{
    struct counted counted = {fn, arg, 0};
    double busy0;
    double busy1;
    double steal0;
    double steal1;
    double wall0 = clock_seconds(CLOCK_MONOTONIC);
    double cpu0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
    double rate;
    double wall;
    double cpu;
    char label[96];

    machine_seconds(&busy0, &steal0);
    rate = bench_rate(counted_call, &counted, bytes, MIN_SECONDS);
    machine_seconds(&busy1, &steal1);
    wall = clock_seconds(CLOCK_MONOTONIC) - wall0;
    cpu = clock_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    bench_out_rate(name, rate);
    snprintf(label, sizeof(label), "%s_cpu", name);
    *cpu_rate = (double)bytes * (double)counted.calls / cpu / 1e6;
    bench_out_rate(label, *cpu_rate);
    snprintf(label, sizeof(label), "%s_cores", name);
    bench_out_number(label, cpu / wall);
    snprintf(label, sizeof(label), "%s_others_cores", name);
    bench_out_number(label, CN_MAX(0.0, (busy1 - busy0 - cpu) / wall));
    snprintf(label, sizeof(label), "%s_steal_cores", name);
    bench_out_number(label, (steal1 - steal0) / wall);
    return rate;
}

/* Whole pipelines on 4+2; returns the 1- and 2-thread encode rates, wall and per CPU second. */
static void run_pipelines(struct ctx *c, const char *kind, double encode[2], double encode_cpu[2])
{
    struct stream s = {.keys = &c->keys, .k = 4, .m = 2};
    char name[64];

    snprintf(name, sizeof(name), "pipelines (4+2, %s data)", kind);
    bench_out_section(name);
    c->k = 4;
    c->m = 2;
    for (unsigned threads = 1; threads <= 2; threads++) {
        c->threads = threads;
        snprintf(name, sizeof(name), "encode_%s_%u_thread%s", kind, threads,
                 threads > 1 ? "s" : "");
        encode[threads - 1] = rate_and_load(p_encode, c, c->size, name, &encode_cpu[threads - 1]);
    }
    encode_into(c, &s);
    for (unsigned threads = 1; threads <= 2; threads++) {
        s.threads = threads;
        s.drop = 0;
        snprintf(name, sizeof(name), "decode_%s_%u_thread%s", kind, threads,
                 threads > 1 ? "s" : "");
        bench_out_rate(name, bench_rate(p_decode, &s, c->size, MIN_SECONDS));
    }
    s.threads = 1;
    s.drop = 2;
    snprintf(name, sizeof(name), "decode_degraded_%s_1_thread", kind);
    bench_out_rate(name, bench_rate(p_decode, &s, c->size, MIN_SECONDS));
    stream_free(&s);
}

static void ctx_init(struct ctx *c, size_t size)
{
    uint8_t matrix[6 * 4];

    memset(c, 0, sizeof(*c));
    c->size = size;
    c->data = cn_xmalloc(size);
    c->out = cn_xmalloc(size + (1u << 20));
    randombytes_buf(c->keys.master_key, 32);
    randombytes_buf(c->keys.dedup_key, 32);
    c->keys.key_version = 1;
    c->cctx = ZSTD_createCCtx();
    c->evp = EVP_CIPHER_CTX_new();
    gf_gen_cauchy1_matrix(matrix, 6, 4);
    ec_init_tables(4, 2, &matrix[16], c->ec_tables);
    c->parity[0] = cn_xmalloc(CHUNK / 4);
    c->parity[1] = cn_xmalloc(CHUNK / 4);
}

static void ctx_close(struct ctx *c)
{
    stor_codec_free(c->codec);
    stor_codec_free(c->decoder);
    ZSTD_freeCCtx(c->cctx);
    EVP_CIPHER_CTX_free(c->evp);
    free(c->parity[0]);
    free(c->parity[1]);
    free(c->data);
    free(c->out);
}

int bench_pipeline_main(int argc, char **argv)
{
    struct kernels best;
    struct ctx c;
    struct cn_rand rand;
    double encode[2] = {0};
    double encode_cpu[2] = {0};
    double text[2] = {0};
    double text_cpu[2] = {0};
    double ceiling;
    double ceiling_cpu;
    size_t size_mib = 64;
    bool json = false;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            size_mib = (size_t)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: cairn-bench pipeline [--json] [--size MiB]\n");
            return 2;
        }
    }
    if (sodium_init() < 0 || size_mib < 8 || size_mib > 4096) {
        fprintf(stderr, "cairn-bench pipeline: --size must be 8..4096 (MiB)\n");
        return 2;
    }
    ctx_init(&c, size_mib << 20);
    cn_rand_seed(&rand, 1);
    cn_rand_fill(&rand, c.data, c.size);
    bench_out_begin(json);
    run_kernels(&c, &best);
    run_stages(&c, "random");
    run_pipelines(&c, "random", encode, encode_cpu);
    fill_text(c.data, c.size, &rand);
    run_stages(&c, "text");
    run_pipelines(&c, "text", text, text_cpu);
    ceiling = 1.0 / (1.0 / best.hash + 1.0 / best.probe + 1.0 / best.aead + 1.0 / best.ec);
    ceiling_cpu = 1.0 / (1.0 / best.hash_cpu + 1.0 / best.probe_cpu + 1.0 / best.aead_cpu +
                         1.0 / best.ec_cpu);
    bench_out_section("summary (encode pipeline, random data)");
    bench_out_rate("ceiling", ceiling);
    bench_out_number("ratio_to_ceiling", encode[0] / ceiling);
    bench_out_number("speedup_2_threads", encode[1] / encode[0]);
    bench_out_number("speedup_2_threads_text", text[1] / text[0]);
    /* The same in CPU time, which other processes do not move: the ratio with
     * every rate per CPU second, and the speedup two whole cores would give at
     * the CPU cost per MB measured with 2 threads (an upper bound). */
    bench_out_rate("ceiling_cpu", ceiling_cpu);
    bench_out_number("ratio_to_ceiling_cpu", encode_cpu[0] / ceiling_cpu);
    bench_out_number("speedup_2_threads_cpu_bound", 2 * encode_cpu[1] / encode_cpu[0]);
    bench_out_number("speedup_2_threads_text_cpu_bound", 2 * text_cpu[1] / text_cpu[0]);
    bench_out_end();
    ctx_close(&c);
    return 0;
}
