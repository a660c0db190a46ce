/*
 * cn: the shared base of Cairn — assertions, errors, logging, clocks, byte
 * buffers, config files, fault injection and a few small helpers.
 *
 * Memory: cn_xmalloc() and friends abort on OOM (daemon bookkeeping, STYLE
 * §10c). cn_buf reports CAIRN_ENOMEM instead, so libraries built on it can
 * return the error.
 */
#ifndef CN_H
#define CN_H

#include <assert.h> /* static_assert */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn_err.h"

/* ---- Assertions: on in every build (STYLE §8). ---- */

_Noreturn void cn__assert_fail(const char *expr, const char *file, int line);

#define CN_ASSERT(expr) ((expr) ? (void)0 : cn__assert_fail(#expr, __FILE__, __LINE__))
#ifdef NDEBUG
#define CN_DEBUG_ASSERT(expr) ((void)sizeof(expr))
#else
#define CN_DEBUG_ASSERT(expr) CN_ASSERT(expr)
#endif

#define CN_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define CN_ARRAY_SIZE(a)                   (sizeof(a) / sizeof((a)[0]))
#define CN_MIN(a, b)                       ((a) < (b) ? (a) : (b))
#define CN_MAX(a, b)                       ((a) > (b) ? (a) : (b))

/* Size of the errmsg buffers that adapters fill when translating foreign errors. */
#define CN_ERRMSG_SIZE 256

/* Formats into errmsg (CN_ERRMSG_SIZE bytes) and returns rv, for one-line error returns. */
int cn_errmsgf(char *errmsg, int rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Translates an errno value (positive) to a CAIRN_E* code. */
int cn_err_from_errno(int err);

/* ---- Memory ---- */

void *cn_xmalloc(size_t size);
void *cn_xcalloc(size_t count, size_t size);
void *cn_xrealloc(void *ptr, size_t size);
char *cn_xstrdup(const char *s);

/* ---- Logging (STYLE §20) ---- */

enum cn_log_level {
    CN_DEBUG = 0,
    CN_INFO = 1,
    CN_WARN = 2,
    CN_ERROR = 3,
    CN_OFF = 4
};

/* Where lines go. Set once before threads start; default: stderr at CN_INFO. */
typedef void (*cn_log_sink)(void *data, const char *line, size_t len);
void cn_log_set_level(enum cn_log_level level);
enum cn_log_level cn_log_get_level(void);
void cn_log_set_sink(cn_log_sink sink, void *data);
/* Parses "debug", "info", "warn", "error", "off"; CAIRN_EINVAL otherwise. */
int cn_log_level_parse(const char *text, enum cn_log_level *level);

/* Daemons call this first thing: a fatal signal (SIGSEGV, SIGBUS, SIGILL,
 * SIGFPE, SIGABRT) then writes a log line and a backtrace to stderr before
 * the process dies of it as it would have. A no-op under AddressSanitizer,
 * whose own report is better. CAIRN_EIO if the handler cannot be set. */
int cn_crash_report_install(void);

void cn__log(enum cn_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One line: "ts=... level=warn msg=\"shard unreadable\" chunk=ab.. err=CAIRN_EIO".
 * The level is tested before any argument is formatted. */
#define CN_LOG(level, msg, ...)                   \
    do {                                          \
        if ((level) >= cn_log_get_level()) {      \
            cn__log((level), (msg), __VA_ARGS__); \
        }                                         \
    } while (0)

/* ---- Clocks (STYLE §12) ---- */

struct cn_clock {
    /* Monotonic milliseconds, for deadlines and intervals. */
    uint64_t (*now_ms)(struct cn_clock *clock);
    /* Wall-clock milliseconds since the Unix epoch, for timestamps users see. */
    uint64_t (*wall_ms)(struct cn_clock *clock);
};

/* The process's real clock; a constant table, shareable by every thread. */
struct cn_clock *cn_clock_system(void);

/* A clock that moves only when told to, for tests. */
struct cn_clock_manual {
    struct cn_clock clock;
    uint64_t now_ms;
    uint64_t wall_ms;
};
void cn_clock_manual_init(struct cn_clock_manual *manual, uint64_t wall_ms);
void cn_clock_manual_advance(struct cn_clock_manual *manual, uint64_t ms);

/* ---- Byte buffers ---- */

/* A growable byte buffer. Owns base; cn_buf_close() frees it. */
struct cn_buf {
    uint8_t *base;
    size_t len;
    size_t cap;
};

void cn_buf_init(struct cn_buf *buf);
void cn_buf_close(struct cn_buf *buf);
/* Makes room for extra more bytes. CAIRN_ENOMEM, or CAIRN_ETOOBIG on overflow. */
int cn_buf_reserve(struct cn_buf *buf, size_t extra);
int cn_buf_append(struct cn_buf *buf, const void *data, size_t len);
int cn_buf_printf(struct cn_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes, keeping the rest. */
void cn_buf_consume(struct cn_buf *buf, size_t n);
void cn_buf_reset(struct cn_buf *buf);

/* Little-endian fixed-width helpers for on-disk and on-wire headers. */
static inline void cn_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void cn_put_u32(uint8_t *p, uint32_t v)
{
    cn_put_u16(p, (uint16_t)v);
    cn_put_u16(p + 2, (uint16_t)(v >> 16));
}
static inline void cn_put_u64(uint8_t *p, uint64_t v)
{
    cn_put_u32(p, (uint32_t)v);
    cn_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t cn_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t cn_get_u32(const uint8_t *p)
{
    return (uint32_t)cn_get_u16(p) | ((uint32_t)cn_get_u16(p + 2) << 16);
}
static inline uint64_t cn_get_u64(const uint8_t *p)
{
    return (uint64_t)cn_get_u32(p) | ((uint64_t)cn_get_u32(p + 4) << 32);
}

/* Lower-case hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). */
void cn_hex_encode(const void *data, size_t len, char *out);
/* The value of one hex digit (either case), or -1 if c is not one. */
int cn_hex_value(char c);
/* Parses exactly 2 * len hex digits. CAIRN_EINVAL otherwise. */
int cn_hex_decode(const char *hex, void *out, size_t len);

/* CRC-32C (Castagnoli), hardware-accelerated through ISA-L. Leaves the vector
 * state clean (see cn_clear_upper_vector_state()). */
uint32_t cn_crc32c(uint32_t crc, const void *data, size_t len);

/* ISA-L's AVX-512 code (CRC-32C, erasure coding) returns with the upper halves
 * of the vector registers dirty, and legacy-SSE code that runs next (OpenSSL's
 * SHA-NI, zstd) is then about 25% slower (measured 1340 against 1770 MB/s for
 * SHA-256) until a vzeroupper. Call this after ISA-L and before such code; it
 * does nothing on CPUs without AVX, where vzeroupper would fault. */
void cn_clear_upper_vector_state(void);

/* ---- Config files (docs/config.md) ---- */

/* An INI-style file: "[section]" lines, "key = value" lines, '#' comments. */
struct cn_config_entry {
    char *section; /* "" before the first [section] */
    char *key;
    char *value;
    unsigned line;
    bool used; /* Set by the getters, so unknown keys can be reported. */
};

struct cn_config {
    struct cn_config_entry *entries;
    size_t entry_count;
    char path[256];
};

/* Parses text. On a syntax error returns CAIRN_EINVAL with "path:line: why" in errmsg. */
int cn_config_parse(struct cn_config *config, const char *path, const char *text, char *errmsg);
/* Reads and parses a file. CAIRN_EIO, CAIRN_ENOENT or CAIRN_EINVAL, with errmsg. */
int cn_config_load(struct cn_config *config, const char *path, char *errmsg);
void cn_config_close(struct cn_config *config);
/* The last value of section.key, or NULL. Marks the entry used. */
const char *cn_config_get(struct cn_config *config, const char *section, const char *key);
/* Typed getters: leave *value unchanged when the key is absent; CAIRN_EINVAL on a bad value. */
int cn_config_get_str(struct cn_config *config,
                      const char *section,
                      const char *key,
                      const char **value,
                      char *errmsg);
int cn_config_get_u64(
    struct cn_config *config, const char *section, const char *key, uint64_t *value, char *errmsg);
int cn_config_get_bool(
    struct cn_config *config, const char *section, const char *key, bool *value, char *errmsg);
/* CAIRN_EINVAL naming the first key that no getter asked for (a typo, most likely). */
int cn_config_check_unused(const struct cn_config *config, char *errmsg);

/* Parses "4096", "64KiB", "16 MiB", "10GiB", "1.5GiB" into bytes. */
int cn_parse_size(const char *text, uint64_t *bytes);
/* Parses "250ms", "5s", "2m", "1h", "7d", or a plain number of milliseconds. */
int cn_parse_duration_ms(const char *text, uint64_t *ms);

/* ---- Fault injection (STYLE §19) ---- */

/* A countdown fault shared by allocators, disks and transports in tests. */
struct cn_fault {
    int countdown; /* Trigger the fault when this counter gets to zero; -1: disarmed. */
    int repeat;    /* How many times to trigger once reached; -1: forever. */
    int hits;      /* How many times it has triggered since armed. */
};

void cn_fault_init(struct cn_fault *fault);
/* Fail the nth call from now (1 = the next), repeat times (-1: every call after). */
void cn_fault_arm(struct cn_fault *fault, int nth, int repeat);
/* Called at each fault point: true means "fail this one". */
bool cn_fault_tick(struct cn_fault *fault);
int cn_fault_hits(const struct cn_fault *fault);

/* ---- Randomness (STYLE §12) ---- */

/* A small deterministic generator (xoshiro256**), for tests and jitter. */
struct cn_rand {
    uint64_t s[4];
};
void cn_rand_seed(struct cn_rand *rand, uint64_t seed);
uint64_t cn_rand_next(struct cn_rand *rand);
/* Uniform in [0, bound); bound > 0. */
uint64_t cn_rand_below(struct cn_rand *rand, uint64_t bound);
void cn_rand_fill(struct cn_rand *rand, void *out, size_t len);

#endif /* CN_H */
