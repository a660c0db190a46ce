/*
 * storage: the block pipeline and the shard store (docs/storage.md).
 *
 * Upload: bytes -> chunker (content-defined boundaries) -> per chunk: chunk id
 * (HMAC-SHA-256 under the dedup key), zstd (unless a probe says it will not
 * shrink), AEAD (AES-256-GCM or XChaCha20-Poly1305, a key per chunk), Reed-Solomon
 * into k data + m parity shards, each with a self-describing, checksummed
 * header. Download: any k shards -> verify -> decode -> decrypt -> decompress.
 * The shard store keeps shards durably on one data directory.
 *
 * Threads: a struct stor_codec, stor_encoder or stor_decoder is used by one
 * thread at a time; a struct stor_store or stor_pool may be used by many
 * threads at once.
 * Nothing here logs: every function returns 0 or a CAIRN_E* code.
 *
 * Memory: the codec and the pipelines allocate their buffers once, when
 * created (sized by the limits below), so memory per stream is bounded
 * whatever the file size. Out-of-memory is CAIRN_ENOMEM, never an abort.
 */
#ifndef STORAGE_H
#define STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cn.h"

/* ---- Limits ---- */

#define STOR_CHUNK_SIZE_MIN    (256u << 10)
#define STOR_CHUNK_SIZE_AVG    (1u << 20)
#define STOR_CHUNK_SIZE_MAX    (4u << 20)
#define STOR_ID_SIZE           32 /* Chunk id: HMAC-SHA-256 */
#define STOR_KEY_SIZE          32 /* Master and dedup keys */
#define STOR_K_MAX             16 /* Data shards per chunk */
#define STOR_M_MAX             4  /* Parity shards per chunk */
#define STOR_SHARD_COUNT_MAX   (STOR_K_MAX + STOR_M_MAX)
#define STOR_SHARD_HEADER_SIZE 128
#define STOR_AEAD_TAG_SIZE     16
/* The largest payload one shard can carry: a whole sealed chunk when k = 1. */
#define STOR_SHARD_PAYLOAD_MAX (STOR_CHUNK_SIZE_MAX + STOR_AEAD_TAG_SIZE)
#define STOR_SHARD_SIZE_MAX    (STOR_SHARD_HEADER_SIZE + STOR_SHARD_PAYLOAD_MAX)
#define STOR_THREADS_MAX       64

static_assert(STOR_CHUNK_SIZE_MIN < STOR_CHUNK_SIZE_AVG, "chunker bounds");
static_assert(STOR_CHUNK_SIZE_AVG < STOR_CHUNK_SIZE_MAX, "chunker bounds");
static_assert(STOR_CHUNK_SIZE_MAX <= UINT32_MAX / 2, "sizes are u32 on disk");

/* A chunk id: keyed hash of the chunk's plaintext. */
struct stor_id {
    uint8_t bytes[STOR_ID_SIZE];
};

/* Ciphers and compressions, as numbered on disk (never renumbered). */
enum stor_cipher {
    STOR_CIPHER_AUTO = 0, /* Only in configs: AES-256-GCM if the CPU has AES-NI. */
    STOR_CIPHER_AES256GCM = 1,
    STOR_CIPHER_XCHACHA20POLY1305 = 2,
};

enum stor_compression {
    STOR_COMPRESSION_NONE = 0,
    STOR_COMPRESSION_ZSTD = 1,
};

/* ---- Chunker: FastCDC with normalized chunking ---- */

/*
 * Streaming content-defined chunker. Caller-owned: stor_chunker_init() it,
 * feed bytes with stor_chunker_next(); there is nothing to close. Boundaries
 * depend only on the bytes, never on how they were split into buffers, and
 * use a gear table frozen in the source, so they are the same on every machine.
 */
struct stor_chunker {
    uint64_t hash;     /* private: gear hash of the bytes since the minimum */
    uint64_t position; /* private: bytes already in the current chunk */
};

void stor_chunker_init(struct stor_chunker *chunker);

/*
 * Scans data[0..len) and returns how many of its bytes belong to the current
 * chunk. *boundary is set when the current chunk ends after those bytes (the
 * chunker is then ready for the next chunk); otherwise all len bytes were taken
 * and the chunk continues. At the end of the input the caller closes the last
 * chunk itself (it may be shorter than the minimum). Never fails.
 */
size_t stor_chunker_next(struct stor_chunker *chunker,
                         const uint8_t *data,
                         size_t len,
                         bool *boundary);

/* ---- Keys ---- */

/* The keys a gateway holds. Never written under a data directory. */
struct stor_keys {
    uint8_t master_key[STOR_KEY_SIZE]; /* Encryption: chunk keys derive from it. */
    uint8_t dedup_key[STOR_KEY_SIZE];  /* Keys the chunk id hash. */
    uint32_t key_version;              /* Recorded in every shard; rotates the master key. */
};

/*
 * Reads a key file: INI lines "version = N", "master = <64 hex>", "dedup = <64
 * hex>". Refused with CAIRN_EPERM if the file is readable or writable by group
 * or others. CAIRN_ENOENT, CAIRN_EIO, CAIRN_EINVAL (bad contents), with errmsg
 * (CN_ERRMSG_SIZE bytes) saying why.
 */
int stor_keys_load(struct stor_keys *keys, const char *path, char *errmsg);

/* The chunk id of data[0..len) under the dedup key. CAIRN_EINTERNAL if libcrypto fails. */
int stor_chunk_id(const struct stor_keys *keys,
                  const uint8_t *data,
                  size_t len,
                  struct stor_id *id);

/* ---- Shard format ---- */

/* The parsed header of one shard (layout in docs/storage.md). */
struct stor_shard_header {
    struct stor_id id;
    uint32_t key_version;
    uint8_t k;
    uint8_t m;
    uint8_t cipher;        /* enum stor_cipher, never AUTO */
    uint8_t compression;   /* enum stor_compression */
    uint32_t plain_size;   /* Chunk plaintext bytes */
    uint32_t stored_size;  /* Bytes after compression, before the AEAD tag */
    uint32_t payload_size; /* This shard's payload bytes (the same for all k + m) */
    uint8_t nonce[24];
    uint8_t index; /* 0..k-1 data, k..k+m-1 parity */
    uint32_t payload_crc;
};

/*
 * Parses and verifies a whole shard (header and payload): magic, version,
 * every field within its limits and consistent with the others, the header's
 * and the payload's CRC-32C, and len == header + payload. Borrows shard.
 * CAIRN_ECORRUPT for anything wrong (including a truncated shard),
 * CAIRN_EUNSUPPORTED for a newer format version.
 */
int stor_shard_parse(const uint8_t *shard, size_t len, struct stor_shard_header *header);

/* Parses and verifies the header alone (the first STOR_SHARD_HEADER_SIZE bytes). Same codes. */
int stor_shard_header_parse(const uint8_t *shard, size_t len, struct stor_shard_header *header);

/* ---- Codec: one chunk in, k + m shards out, and back ---- */

struct stor_codec_config {
    const struct stor_keys *keys; /* Borrowed; must outlive the codec. */
    uint8_t k;                    /* 1..STOR_K_MAX */
    uint8_t m;                    /* 0..STOR_M_MAX */
    enum stor_cipher cipher;      /* AUTO picks AES-256-GCM with AES-NI */
    int zstd_level;               /* 0: the default (1) */
    bool compress;                /* false: never try */
};

/* One encoded chunk. Owned by whoever encoded it; valid until the next encode. */
struct stor_chunk {
    struct stor_id id;
    uint32_t plain_size;
    uint32_t stored_size;
    uint8_t compression;
    uint8_t k;
    uint8_t m;
    size_t shard_size;                     /* Header + payload, same for every shard */
    uint8_t *shards[STOR_SHARD_COUNT_MAX]; /* k + m of them, shard_size bytes each */
};

/* Per-thread state: compression contexts, erasure-code tables, buffers. */
struct stor_codec;

/* Creates a codec, with buffers of about ((k + m) / k + 2) * STOR_CHUNK_SIZE_MAX,
 * touched only as far as chunks reach. CAIRN_EINVAL for a bad k, m, cipher or
 * level, CAIRN_ENOMEM. */
int stor_codec_new(const struct stor_codec_config *config, struct stor_codec **codec);
void stor_codec_free(struct stor_codec *codec);

/*
 * Encodes one chunk (len <= STOR_CHUNK_SIZE_MAX; 0 is allowed) into chunk. The
 * shards point into the codec's buffers: valid until the next call on this
 * codec. CAIRN_EINVAL (too big), CAIRN_INTERNAL (a crypto library failed).
 */
int stor_codec_encode(struct stor_codec *codec,
                      const uint8_t *data,
                      size_t len,
                      struct stor_chunk *chunk);

/*
 * Decodes the chunk whose id is *id from any k of its shards (given in any
 * order, possibly with extras, duplicates, corrupt or foreign ones) into
 * out[0..cap). Borrows the shards. Sets *len to the plaintext size and, if bad
 * is not NULL, bit i of *bad for each shard[i] that was unusable (corrupt, or
 * from another chunk) so that the caller can report it for repair.
 * CAIRN_EUNAVAIL: fewer than k good shards. CAIRN_EKEY: authentication failed
 * (wrong master key, forged data), or the shards were sealed under a key
 * version other than keys->key_version. CAIRN_ECORRUPT: the plaintext does not hash
 * to id, or does not decompress to its recorded size. CAIRN_ETOOBIG: cap is
 * smaller than the recorded size. CAIRN_EINVAL: shard_count over 32. The
 * shards must not point into this codec's own encode output: decoding reuses
 * those buffers. On any error, out holds nothing usable.
 */
int stor_codec_decode(struct stor_codec *codec,
                      const struct stor_id *id,
                      const uint8_t *const *shards,
                      const size_t *shard_lens,
                      unsigned shard_count,
                      uint8_t *out,
                      size_t cap,
                      size_t *len,
                      uint32_t *bad);

/*
 * Repair: rebuilds shard index (data or parity) of the chunk whose id is *id,
 * byte for byte as it was first written (same header fields, same nonce),
 * from any k of its other shards: Reed-Solomon over the stored payloads, so
 * it needs no key (a node repairs without the master key). The shards, in
 * any order and possibly with extras or duplicates, must all verify and be of
 * this chunk and one encoding of it. Writes the whole shard (header and
 * payload) to out[0..cap), which must not overlap the shards, and sets *len.
 * If bad is not NULL, bit i of *bad is set for each shard[i] that was refused.
 * CAIRN_ECORRUPT: a shard does not verify. CAIRN_EINVAL: a shard of another
 * chunk or of another encoding, index >= k + m, or shard_count over 32.
 * CAIRN_EUNAVAIL: fewer than k distinct shards (or none). CAIRN_ETOOBIG: cap
 * is smaller than the shard (at most STOR_SHARD_SIZE_MAX). A shard that was
 * forged but verifies yields a shard that fails authentication at decode.
 */
int stor_shard_rebuild(const struct stor_id *id,
                       const uint8_t *const *shards,
                       const size_t *shard_lens,
                       unsigned shard_count,
                       unsigned index,
                       uint8_t *out,
                       size_t cap,
                       size_t *len,
                       uint32_t *bad);

/* The cipher AUTO resolves to on this CPU. */
enum stor_cipher stor_cipher_default(void);

/* ---- Pipeline: streams with a worker pool ---- */

/*
 * Worker threads that any number of streams can share (a gateway makes one,
 * sized to its cores, so that many uploads do not start threads each).
 * CAIRN_EINVAL (thread_count not 1..STOR_THREADS_MAX), CAIRN_ENOMEM, CAIRN_EIO
 * (a thread would not start).
 */
struct stor_pool;
int stor_pool_new(unsigned thread_count, struct stor_pool **pool);
/* Joins the workers. Every encoder and decoder using the pool must be freed first. */
void stor_pool_free(struct stor_pool *pool);

/*
 * A freed encoder or decoder leaves its slots (a codec and a chunk buffer
 * each, about 20 MiB of address space, resident as far as chunks reached) in a
 * process-wide cache of at most 8 slots, so that the next streams of the same
 * k and m start with buffers already paged in instead of faulting fresh ones.
 * This frees the cache (at exit, or to give memory back); thread-safe.
 */
void stor_pipeline_cache_release(void);

struct stor_pipeline_config {
    struct stor_codec_config codec;
    /* Without a pool: 1 runs all work on the caller's thread; N > 1 starts N
     * workers for this stream. With a pool: the stream keeps up to 2 * N chunks
     * in flight on the pool's workers. */
    unsigned thread_count;
    struct stor_pool *pool; /* Optional; borrowed, must outlive the stream */
};

/* Called in chunk order on the thread that called write or finish. The chunk is
 * borrowed until the callback returns. A non-zero return stops the stream and
 * is returned by the write or finish call. */
typedef int (*stor_encoder_cb)(void *data, const struct stor_chunk *chunk);

struct stor_encoder;

/* Creates a streaming encoder. At most 2 * thread_count chunks are in flight,
 * so memory is bounded whatever the file size: a codec per slot (about 16 MiB
 * for 4+2) and a STOR_CHUNK_SIZE_MAX buffer per slot; with thread_count 3 or
 * more, instead of the slot buffers, a ring of (2 * thread_count + 1) *
 * STOR_CHUNK_SIZE_MAX + 2 MiB and a STOR_CHUNK_SIZE_MAX bounce buffer: the
 * caller's thread then only copies writes into the ring, and the workers find
 * the chunk boundaries (the same as stor_chunker_next's) and encode.
 * CAIRN_EINVAL (config), CAIRN_ENOMEM, CAIRN_EIO (a thread would not start). */
int stor_encoder_new(const struct stor_pipeline_config *config,
                     stor_encoder_cb cb,
                     void *data,
                     struct stor_encoder **encoder);

/* Feeds plaintext (borrowed for the call). Returns the callback's error, or a codec error;
 * CAIRN_EINVAL after finish. */
int stor_encoder_write(struct stor_encoder *encoder, const void *data, size_t len);

/* Ends the stream: encodes the last chunk and waits until every chunk was delivered. */
int stor_encoder_finish(struct stor_encoder *encoder);

/* Stops the workers and frees everything; safe after an error. A stream freed
 * before finish is abandoned: the chunks still in flight are not delivered. */
void stor_encoder_free(struct stor_encoder *encoder);

/* Called in push order with one chunk's plaintext, borrowed until it returns.
 * Bit i of bad is set when the i-th shard pushed for this chunk was unusable
 * (corrupt, or of another chunk): report it for repair. */
typedef int (*stor_decoder_cb)(void *data, const uint8_t *plain, size_t len, uint32_t bad);

struct stor_decoder;

int stor_decoder_new(const struct stor_pipeline_config *config,
                     stor_decoder_cb cb,
                     void *data,
                     struct stor_decoder **decoder);

/*
 * Queues one chunk's shards for decoding; the shards are copied, so they are
 * borrowed only for the call. Blocks while 2 * thread_count chunks are in
 * flight. Returns an earlier chunk's error (see stor_codec_decode) or the
 * callback's.
 */
int stor_decoder_push(struct stor_decoder *decoder,
                      const struct stor_id *id,
                      const uint8_t *const *shards,
                      const size_t *shard_lens,
                      unsigned shard_count);

/* Waits until every pushed chunk was delivered. Same codes as push. */
int stor_decoder_finish(struct stor_decoder *decoder);
void stor_decoder_free(struct stor_decoder *decoder);

/* ---- Shard store: one data directory ---- */

struct stor_store;

struct stor_store_usage {
    uint64_t shard_count;
    uint64_t shard_bytes;       /* Sum of the shard sizes */
    uint64_t quarantined_count; /* Files moved aside by stor_store_quarantine() */
    uint64_t quarantined_bytes;
    uint64_t disk_free; /* Bytes available to us on the filesystem */
    uint64_t disk_total;
};

/*
 * Opens (creating if needed) the shard store in dir, removes the temporary
 * files an interrupted put left, and takes an exclusive lock on it. errmsg
 * (CN_ERRMSG_SIZE bytes) says why on failure. CAIRN_ELOCKED (another process
 * has it open), CAIRN_EIO, CAIRN_ENOTDIR, CAIRN_EPERM, CAIRN_ENOMEM.
 */
int stor_store_open(const char *dir, struct stor_store **store, char *errmsg);

/* Closes the store. Every acknowledged put is already durable. */
void stor_store_close(struct stor_store *store);

/*
 * Stores one shard (borrowed; verified with stor_shard_parse first) under its
 * chunk id and index, replacing a missing, corrupt or byte-identical shard
 * there. Returns only once the shard and its directory entry are on stable
 * storage; concurrent puts share their directory fsyncs (group commit).
 * CAIRN_ECORRUPT (the shard does not verify), CAIRN_ECONFLICT (a valid shard
 * of another encoding of the chunk is there: kept), CAIRN_EIO,
 * CAIRN_ENOSPACE. Callers serialize puts of one name (the node's stripe
 * lock).
 */
int stor_store_put(struct stor_store *store, const uint8_t *shard, size_t len);

/*
 * Reads and verifies a whole shard into out (reset first; on success it holds
 * the shard). CAIRN_ENOENT, CAIRN_ECORRUPT (a torn or rotten shard: treat it as
 * missing and report it for repair), CAIRN_EIO, CAIRN_ENOMEM.
 */
int stor_store_get(struct stor_store *store,
                   const struct stor_id *id,
                   unsigned index,
                   struct cn_buf *out);

/*
 * Reads payload bytes [offset, offset + len) of a shard into out, after
 * verifying the whole shard. Codes of stor_store_get, and CAIRN_ERANGE when the
 * range is not inside the payload.
 */
int stor_store_get_range(struct stor_store *store,
                         const struct stor_id *id,
                         unsigned index,
                         uint64_t offset,
                         size_t len,
                         uint8_t *out);

/* Removes a shard durably. CAIRN_ENOENT, CAIRN_EIO. */
int stor_store_delete(struct stor_store *store, const struct stor_id *id, unsigned index);

/*
 * Moves a shard (found corrupt: by a get, a scrub, a decode's bad mask) aside
 * into DIR/quarantine instead of deleting it, durably (both folders fsynced),
 * so that it can be looked at later. A quarantined shard is never served
 * (get is CAIRN_ENOENT), listed or iterated; usage counts it apart
 * (quarantined_count, quarantined_bytes). Quarantining the same shard again
 * after a repair keeps both copies. The file is moved as it is, unread.
 * CAIRN_ENOENT (no such shard), CAIRN_EIO.
 */
int stor_store_quarantine(struct stor_store *store, const struct stor_id *id, unsigned index);

/* One stored shard, as found by stor_store_iterate (without reading it). */
typedef int (*stor_store_iterate_cb)(void *data,
                                     const struct stor_id *id,
                                     unsigned index,
                                     uint64_t size);

/* Calls cb for every shard in the store, in no particular order; stops at the
 * first non-zero return and returns it. CAIRN_EIO. */
int stor_store_iterate(struct stor_store *store, stor_store_iterate_cb cb, void *data);

/* One shard in a listing: its chunk id, index and file size. */
struct stor_shard_ref {
    struct stor_id id;
    unsigned index;
    uint64_t size;
};

/*
 * Lists up to limit shards in (chunk id, index) order, starting just after
 * *after (which need not exist; its size is ignored) or from the start when
 * after is NULL, into refs[0..*count). *more is false when nothing follows the
 * last one listed (a page shorter than limit always ends the listing). Resume
 * with after = &refs[*count - 1]. Memory is refs alone, whatever the store's
 * size: each page re-reads the names of the fan-out folders it spans (about
 * 1/256 of the store each) and keeps only the smallest names after the cursor.
 * Shards put or deleted during a listing may or may not appear; every other
 * shard appears exactly once across the pages. Quarantined shards and
 * temporaries never appear. CAIRN_EINVAL (limit 0), CAIRN_EIO.
 */
int stor_store_list(struct stor_store *store,
                    const struct stor_shard_ref *after,
                    struct stor_shard_ref *refs,
                    size_t limit,
                    size_t *count,
                    bool *more);

/* Counts shards and bytes (a walk of the store) and the filesystem's space. CAIRN_EIO. */
int stor_store_usage(struct stor_store *store, struct stor_store_usage *usage);

#endif /* STORAGE_H */
