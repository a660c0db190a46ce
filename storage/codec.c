/*
 * The codec: one chunk of plaintext to k + m shards, and back.
 *
 * The happy path to encode: hash the plaintext into its chunk id; compress it
 * with zstd unless a probe of a few samples says it will not shrink (or the
 * whole does not fit in 31/32 of the plaintext); derive the chunk key; seal
 * with the AEAD straight into the k data shards' payloads (AES-GCM is a
 * stream, so no intermediate copy), the AAD being the chunk's header bytes;
 * compute the m parity shards; stamp each shard's header and checksums.
 *
 * The happy path to decode: parse and verify every shard given; keep those of
 * the expected chunk, one per index; when a data shard is missing, rebuild it
 * from any k; open the AEAD into the output (or a scratch buffer, then
 * decompress into the output, bounded by the recorded size); check that the
 * plaintext hashes to the expected id.
 *
 * Possible failure modes when decoding, and what we do:
 * - a shard that fails its checksum, is truncated or belongs to another chunk:
 *   skipped and flagged in *bad, so the caller reads around it and reports it;
 * - fewer than k good shards: CAIRN_EUNAVAIL;
 * - shards that pass their checksums but were forged, or the wrong master key:
 *   the AEAD fails, CAIRN_EKEY;
 * - a compressed payload that would expand past its recorded size (a bomb):
 *   zstd is given exactly that much room, CAIRN_ECORRUPT;
 * - a plaintext that does not hash to the id (the wrong dedup key, a bug):
 *   CAIRN_ECORRUPT. Nothing is ever returned unverified.
 */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "stor_int.h"

#define PROBE_SAMPLE_SIZE  4096
#define PROBE_SAMPLE_COUNT 4
#define DECODE_SHARDS_MAX  32 /* bits of *bad */

struct stor_codec {
    struct stor_codec_config config;
    enum stor_cipher cipher;
    struct stor__ec ec;        /* For encoding, config.k + config.m */
    struct stor__ec decode_ec; /* The last scheme seen when decoding */
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    EVP_CIPHER_CTX *evp;
    uint8_t *shards;     /* Encode output: (k + m) shards */
    uint8_t *scratch;    /* Compressed bytes: STOR_CHUNK_SIZE_MAX */
    uint8_t *contiguous; /* Sealed chunk, for XChaCha and for rebuilt shards */
    uint8_t probe[PROBE_SAMPLE_SIZE];
};

/* The sealed chunk, as it lies across the k data shards' payloads. */
struct span {
    uint8_t *const *pieces;
    size_t piece_size;
    unsigned count;
};

enum stor_cipher stor_cipher_default(void)
{
    CN_ASSERT(sodium_init() >= 0);
    return crypto_aead_aes256gcm_is_available() ? STOR_CIPHER_AES256GCM
                                                : STOR_CIPHER_XCHACHA20POLY1305;
}

/* Copies len bytes between the span at offset and flat memory. */
static void span_copy(const struct span *span, size_t offset, uint8_t *flat, size_t len, bool in)
{
    while (len > 0) {
        size_t piece = offset / span->piece_size;
        size_t at = offset % span->piece_size;
        size_t n = CN_MIN(len, span->piece_size - at);

        CN_ASSERT(piece < span->count);
        if (in) {
            memcpy(span->pieces[piece] + at, flat, n);
        } else {
            memcpy(flat, span->pieces[piece] + at, n);
        }
        offset += n;
        flat += n;
        len -= n;
    }
}

/* Zeroes the padding after the sealed chunk (with a large k, whole shards of it). */
static void span_zero(const struct span *span, size_t offset, size_t len)
{
    while (len > 0) {
        size_t piece = offset / span->piece_size;
        size_t at = offset % span->piece_size;
        size_t n = CN_MIN(len, span->piece_size - at);

        CN_ASSERT(piece < span->count);
        memset(span->pieces[piece] + at, 0, n);
        offset += n;
        len -= n;
    }
}

static int gcm_start(
    EVP_CIPHER_CTX *evp, bool seal, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad)
{
    int n = 0;

    if (EVP_CipherInit_ex(evp, EVP_aes_256_gcm(), NULL, key, nonce, seal ? 1 : 0) != 1 ||
        EVP_CipherUpdate(evp, NULL, &n, aad, STOR__OFF_AAD_END) != 1) {
        return CAIRN_EINTERNAL;
    }
    return 0;
}

/* AES-256-GCM over the span, piece by piece; the tag follows the ciphertext. */
static int gcm_seal(struct stor_codec *codec,
                    const uint8_t *key,
                    const uint8_t *nonce,
                    const uint8_t *aad,
                    const uint8_t *in,
                    size_t len,
                    const struct span *span)
{
    uint8_t tag[STOR_AEAD_TAG_SIZE];
    size_t done = 0;
    int n = 0;

    if (gcm_start(codec->evp, true, key, nonce, aad) != 0) {
        return CAIRN_EINTERNAL;
    }
    for (unsigned i = 0; done < len; i++) {
        size_t piece = CN_MIN(len - done, span->piece_size);

        if (EVP_EncryptUpdate(codec->evp, span->pieces[i], &n, in + done, (int)piece) != 1 ||
            (size_t)n != piece) {
            return CAIRN_EINTERNAL;
        }
        done += piece;
    }
    if (EVP_EncryptFinal_ex(codec->evp, tag, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(codec->evp, EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag) != 1) {
        return CAIRN_EINTERNAL;
    }
    span_copy(span, len, tag, sizeof(tag), true);
    return 0;
}

static int gcm_open(struct stor_codec *codec,
                    const uint8_t *key,
                    const uint8_t *nonce,
                    const uint8_t *aad,
                    const struct span *span,
                    size_t len,
                    uint8_t *out)
{
    uint8_t tag[STOR_AEAD_TAG_SIZE];
    size_t done = 0;
    int n = 0;

    if (gcm_start(codec->evp, false, key, nonce, aad) != 0) {
        return CAIRN_EINTERNAL;
    }
    for (unsigned i = 0; done < len; i++) {
        size_t piece = CN_MIN(len - done, span->piece_size);

        if (EVP_DecryptUpdate(codec->evp, out + done, &n, span->pieces[i], (int)piece) != 1) {
            return CAIRN_EINTERNAL;
        }
        done += piece;
    }
    span_copy(span, len, tag, sizeof(tag), false);
    if (EVP_CIPHER_CTX_ctrl(codec->evp, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) != 1) {
        return CAIRN_EINTERNAL;
    }
    return EVP_DecryptFinal_ex(codec->evp, tag, &n) == 1 ? 0 : CAIRN_EKEY;
}

static int aead_seal(struct stor_codec *codec,
                     int cipher,
                     const uint8_t *key,
                     const uint8_t *nonce,
                     const uint8_t *aad,
                     const uint8_t *in,
                     size_t len,
                     const struct span *span)
{
    uint8_t *sealed = codec->contiguous;

    if (cipher == STOR_CIPHER_AES256GCM) {
        return gcm_seal(codec, key, nonce, aad, in, len, span);
    }
    CN_ASSERT(cipher == STOR_CIPHER_XCHACHA20POLY1305);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(sealed, sealed + len, NULL, in, len, aad,
                                                        STOR__OFF_AAD_END, NULL, nonce, key);
    span_copy(span, 0, sealed, len + STOR_AEAD_TAG_SIZE, true);
    return 0;
}

static int aead_open(struct stor_codec *codec,
                     int cipher,
                     const uint8_t *key,
                     const uint8_t *nonce,
                     const uint8_t *aad,
                     const struct span *span,
                     size_t len,
                     uint8_t *out)
{
    uint8_t *sealed = codec->contiguous;

    if (cipher == STOR_CIPHER_AES256GCM) {
        return gcm_open(codec, key, nonce, aad, span, len, out);
    }
    CN_ASSERT(cipher == STOR_CIPHER_XCHACHA20POLY1305);
    span_copy(span, 0, sealed, len + STOR_AEAD_TAG_SIZE, false);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            out, NULL, sealed, len, sealed + len, aad, STOR__OFF_AAD_END, nonce, key) != 0) {
        return CAIRN_EKEY;
    }
    return 0;
}

/* True when a few samples compress well enough to try the whole chunk. */
static bool probe_says_compress(struct stor_codec *codec, const uint8_t *data, size_t len)
{
    size_t sampled = 0;
    size_t packed = 0;

    if (len < PROBE_SAMPLE_SIZE * PROBE_SAMPLE_COUNT * 4) {
        return true; /* Small: trying the whole costs little more than probing. */
    }
    for (unsigned i = 0; i < PROBE_SAMPLE_COUNT; i++) {
        size_t at = (len - PROBE_SAMPLE_SIZE) / (PROBE_SAMPLE_COUNT - 1) * i;
        size_t n = ZSTD_compressCCtx(codec->cctx, codec->probe, sizeof(codec->probe), data + at,
                                     PROBE_SAMPLE_SIZE, 1);

        /* An error here means "did not fit": the sample is incompressible. */
        packed += ZSTD_isError(n) ? PROBE_SAMPLE_SIZE : n;
        sampled += PROBE_SAMPLE_SIZE;
    }
    return packed < sampled - sampled / 16;
}

/* Compresses into scratch if it pays (saves 1/32 or more); returns the bytes to seal. */
static const uint8_t *compress(struct stor_codec *codec,
                               const uint8_t *data,
                               size_t len,
                               struct stor_shard_header *header)
{
    size_t n;

    header->compression = STOR_COMPRESSION_NONE;
    header->stored_size = (uint32_t)len;
    cn_clear_upper_vector_state(); /* zstd is SSE code; ISA-L ran just before. */
    if (!codec->config.compress || len < 64 || !probe_says_compress(codec, data, len)) {
        return data;
    }
    /* The room is what would pay: zstd gives up as soon as it overflows it. */
    n = ZSTD_compressCCtx(codec->cctx, codec->scratch, len - len / 32, data, len,
                          codec->config.zstd_level > 0 ? codec->config.zstd_level : 1);
    if (ZSTD_isError(n) || n == 0 || n >= len) {
        return data;
    }
    header->compression = STOR_COMPRESSION_ZSTD;
    header->stored_size = (uint32_t)n;
    return codec->scratch;
}

static void free_buffers(struct stor_codec *codec)
{
    ZSTD_freeCCtx(codec->cctx);
    ZSTD_freeDCtx(codec->dctx);
    EVP_CIPHER_CTX_free(codec->evp);
    free(codec->shards);
    free(codec->scratch);
    free(codec->contiguous);
}

static bool config_valid(const struct stor_codec_config *config)
{
    return config->k >= 1 && config->k <= STOR_K_MAX && config->m <= STOR_M_MAX &&
           config->keys != NULL && config->zstd_level >= 0 && config->zstd_level <= 19 &&
           (config->cipher == STOR_CIPHER_AUTO || config->cipher == STOR_CIPHER_AES256GCM ||
            config->cipher == STOR_CIPHER_XCHACHA20POLY1305);
}

bool stor__codec_reuse(struct stor_codec *codec, const struct stor_codec_config *config)
{
    if (!config_valid(config) || config->k != codec->config.k || config->m != codec->config.m) {
        return false;
    }
    codec->config = *config;
    codec->cipher = config->cipher == STOR_CIPHER_AUTO ? stor_cipher_default() : config->cipher;
    return true;
}

int stor_codec_new(const struct stor_codec_config *config, struct stor_codec **out)
{
    struct stor_codec *codec;
    size_t payload_max;

    if (!config_valid(config)) {
        return CAIRN_EINVAL;
    }
    if (sodium_init() < 0) {
        return CAIRN_EINTERNAL;
    }
    codec = calloc(1, sizeof(*codec));
    if (codec == NULL) {
        return CAIRN_ENOMEM;
    }
    codec->config = *config;
    codec->cipher = config->cipher == STOR_CIPHER_AUTO ? stor_cipher_default() : config->cipher;
    if (codec->cipher != STOR_CIPHER_AES256GCM && codec->cipher != STOR_CIPHER_XCHACHA20POLY1305) {
        free(codec);
        return CAIRN_EINVAL;
    }
    stor__ec_init(&codec->ec, config->k, config->m);
    stor__ec_init(&codec->decode_ec, config->k, config->m);
    payload_max = stor__payload_size(STOR_SHARD_PAYLOAD_MAX, config->k);
    codec->cctx = ZSTD_createCCtx();
    codec->dctx = ZSTD_createDCtx();
    codec->evp = EVP_CIPHER_CTX_new();
    codec->shards =
        malloc((size_t)(config->k + config->m) * (STOR_SHARD_HEADER_SIZE + payload_max));
    codec->scratch = malloc(STOR_CHUNK_SIZE_MAX);
    /* Room for the sealed chunk, or for k rebuilt shards of any scheme (padding included). */
    codec->contiguous = malloc(STOR_SHARD_PAYLOAD_MAX + STOR_K_MAX);
    if (codec->cctx == NULL || codec->dctx == NULL || codec->evp == NULL || codec->shards == NULL ||
        codec->scratch == NULL || codec->contiguous == NULL) {
        free_buffers(codec);
        free(codec);
        return CAIRN_ENOMEM;
    }
    *out = codec;
    return 0;
}

void stor_codec_free(struct stor_codec *codec)
{
    if (codec == NULL) {
        return;
    }
    free_buffers(codec);
    free(codec);
}

/* Stamps every shard's header: the chunk's fields, then its index and checksums. */
static void stamp_headers(struct stor_chunk *chunk, struct stor_shard_header *header)
{
    for (unsigned i = 0; i < (unsigned)(chunk->k + chunk->m); i++) {
        header->index = (uint8_t)i;
        header->payload_crc =
            cn_crc32c(0, chunk->shards[i] + STOR_SHARD_HEADER_SIZE, header->payload_size);
        stor__shard_header_write(chunk->shards[i], header);
    }
}

/* The nonce of a chunk: BLAKE2b keyed with the chunk key, over the header
 * bytes that the AEAD authenticates (the nonce field zero), cut to size. */
static void synthetic_nonce(const uint8_t key[32],
                            const uint8_t *header,
                            uint8_t *nonce,
                            size_t size)
{
    static const char label[] = "cairn nonce v1";
    crypto_generichash_state state;
    uint8_t out[32];

    crypto_generichash_init(&state, key, 32, sizeof(out));
    crypto_generichash_update(&state, (const uint8_t *)label, sizeof(label));
    crypto_generichash_update(&state, header, STOR__OFF_AAD_END);
    crypto_generichash_final(&state, out, sizeof(out));
    memcpy(nonce, out, size);
    sodium_memzero(out, sizeof(out));
}

static void chunk_layout(struct stor_codec *codec, uint32_t payload_size, struct stor_chunk *chunk)
{
    chunk->k = codec->config.k;
    chunk->m = codec->config.m;
    chunk->shard_size = STOR_SHARD_HEADER_SIZE + (size_t)payload_size;
    for (unsigned i = 0; i < (unsigned)(chunk->k + chunk->m); i++) {
        chunk->shards[i] = codec->shards + i * chunk->shard_size;
    }
}

int stor_codec_encode(struct stor_codec *codec,
                      const uint8_t *data,
                      size_t len,
                      struct stor_chunk *chunk)
{
    struct stor_shard_header header = {0};
    uint8_t *payloads[STOR_SHARD_COUNT_MAX];
    uint8_t key[32];
    const uint8_t *sealing;
    struct span span;
    size_t sealed_size;
    int rv;

    if (len > STOR_CHUNK_SIZE_MAX) {
        return CAIRN_EINVAL;
    }
    rv = stor_chunk_id(codec->config.keys, data, len, &header.id);
    if (rv != 0) {
        return rv;
    }
    sealing = compress(codec, data, len, &header);
    header.key_version = codec->config.keys->key_version;
    header.k = codec->config.k;
    header.m = codec->config.m;
    header.cipher = (uint8_t)codec->cipher;
    header.plain_size = (uint32_t)len;
    sealed_size = header.stored_size + STOR_AEAD_TAG_SIZE;
    header.payload_size = stor__payload_size((uint32_t)sealed_size, header.k);
    chunk_layout(codec, header.payload_size, chunk);
    for (unsigned i = 0; i < (unsigned)(header.k + header.m); i++) {
        payloads[i] = chunk->shards[i] + STOR_SHARD_HEADER_SIZE;
    }
    stor__chunk_key(codec->config.keys, &header.id, key);
    /* A synthetic nonce: keyed with the chunk's own key, over every other
     * field of the header (docs/storage.md, "Nonces"). The same chunk encoded
     * the same way gives the same shards, byte for byte, so two uploads of
     * one chunk racing to the same nodes can only write identical files; and
     * a key and nonce are never used with two different headers. */
    stor__shard_header_write(chunk->shards[0], &header); /* the nonce still zero */
    synthetic_nonce(key, chunk->shards[0], header.nonce,
                    codec->cipher == STOR_CIPHER_AES256GCM ? STOR__NONCE_SIZE_GCM
                                                           : STOR__NONCE_SIZE_XCHACHA);
    /* Shard 0's header, written again with its nonce, provides the AAD: its
     * bytes [0, 84) are the chunk's. */
    stor__shard_header_write(chunk->shards[0], &header);
    span = (struct span){payloads, header.payload_size, header.k};
    rv = aead_seal(codec, header.cipher, key, header.nonce, chunk->shards[0], sealing,
                   header.stored_size, &span);
    sodium_memzero(key, sizeof(key));
    if (rv != 0) {
        return rv;
    }
    span_zero(&span, sealed_size, (size_t)header.k * header.payload_size - sealed_size);
    stor__ec_encode(&codec->ec, header.payload_size, payloads, payloads + header.k);
    stamp_headers(chunk, &header);
    CN_ASSERT(chunk->shard_size <= STOR_SHARD_SIZE_MAX);
    CN_DEBUG_ASSERT(stor_shard_parse(chunk->shards[0], chunk->shard_size, &header) == 0);
    chunk->id = header.id;
    chunk->plain_size = header.plain_size;
    chunk->stored_size = header.stored_size;
    chunk->compression = header.compression;
    return 0;
}

/* The shards kept for decoding: one per index, all of the expected chunk. */
struct gathered {
    struct stor_shard_header header; /* The chunk's fields (index is meaningless) */
    const uint8_t *aad;              /* Bytes [0, 84) of a good shard */
    uint8_t *present[STOR_SHARD_COUNT_MAX];
    unsigned count;
};

/* Is this shard usable, given the ones kept so far? Sets bad bits for the others. */
static bool keep_shard(struct gathered *g,
                       const struct stor_id *id,
                       const uint8_t *shard,
                       size_t len,
                       struct stor_shard_header *header)
{
    if (stor_shard_parse(shard, len, header) != 0) {
        return false;
    }
    if (memcmp(header->id.bytes, id->bytes, STOR_ID_SIZE) != 0) {
        return false;
    }
    if (g->aad != NULL && memcmp(g->aad, shard, STOR__OFF_AAD_END) != 0) {
        return false; /* Same id, different encoding: keep the first one's. */
    }
    return true;
}

static int gather(const struct stor_id *id,
                  const uint8_t *const *shards,
                  const size_t *shard_lens,
                  unsigned shard_count,
                  struct gathered *g,
                  uint32_t *bad)
{
    struct stor_shard_header header;

    memset(g, 0, sizeof(*g));
    for (unsigned i = 0; i < shard_count; i++) {
        if (!keep_shard(g, id, shards[i], shard_lens[i], &header)) {
            *bad |= 1u << i;
            continue;
        }
        if (g->aad == NULL) {
            g->aad = shards[i];
            g->header = header;
        }
        if (g->present[header.index] == NULL) {
            g->present[header.index] = (uint8_t *)shards[i] + STOR_SHARD_HEADER_SIZE;
            g->count++;
        }
    }
    return g->count >= (g->aad != NULL ? g->header.k : 1u) ? 0 : CAIRN_EUNAVAIL;
}

/* Points data[0..k) at the data shards, rebuilding the missing ones in the codec's buffer. */
static int data_shards(struct stor_codec *codec, struct gathered *g, uint8_t **data)
{
    const struct stor_shard_header *h = &g->header;
    bool missing = false;

    CN_ASSERT(g->count >= h->k);
    CN_ASSERT((size_t)h->k * h->payload_size <= STOR_SHARD_PAYLOAD_MAX + STOR_K_MAX);

    for (unsigned j = 0; j < h->k; j++) {
        data[j] = g->present[j];
        if (data[j] == NULL) {
            data[j] = codec->shards + (size_t)j * h->payload_size;
            missing = true;
        }
    }
    if (!missing) {
        return 0;
    }
    if (codec->decode_ec.k != h->k || codec->decode_ec.m != h->m) {
        stor__ec_init(&codec->decode_ec, h->k, h->m);
    }
    return stor__ec_decode(&codec->decode_ec, h->payload_size, g->present, data);
}

static int open_and_check(
    struct stor_codec *codec, struct gathered *g, uint8_t **data, uint8_t *out, size_t *len)
{
    const struct stor_shard_header *h = &g->header;
    struct span span = {data, h->payload_size, h->k};
    uint8_t *opened = h->compression == STOR_COMPRESSION_NONE ? out : codec->scratch;
    struct stor_id check;
    uint8_t key[32];
    size_t n;
    int rv;

    if (h->key_version != codec->config.keys->key_version) {
        return CAIRN_EKEY; /* Sealed under a master key version we do not hold. */
    }
    stor__chunk_key(codec->config.keys, &h->id, key);
    rv = aead_open(codec, h->cipher, key, h->nonce, g->aad, &span, h->stored_size, opened);
    sodium_memzero(key, sizeof(key));
    if (rv != 0) {
        return rv;
    }
    if (h->compression == STOR_COMPRESSION_ZSTD) {
        /* Exactly the recorded size of room: a bomb stops there. */
        cn_clear_upper_vector_state();
        n = ZSTD_decompressDCtx(codec->dctx, out, h->plain_size, opened, h->stored_size);
        if (ZSTD_isError(n) || n != h->plain_size) {
            return CAIRN_ECORRUPT;
        }
    }
    rv = stor_chunk_id(codec->config.keys, out, h->plain_size, &check);
    if (rv != 0) {
        return rv;
    }
    if (sodium_memcmp(check.bytes, h->id.bytes, STOR_ID_SIZE) != 0) {
        return CAIRN_ECORRUPT;
    }
    *len = h->plain_size;
    return 0;
}

int stor_codec_decode(struct stor_codec *codec,
                      const struct stor_id *id,
                      const uint8_t *const *shards,
                      const size_t *shard_lens,
                      unsigned shard_count,
                      uint8_t *out,
                      size_t cap,
                      size_t *len,
                      uint32_t *bad)
{
    uint8_t *data[STOR_K_MAX];
    struct gathered g;
    uint32_t bad_mask = 0;
    int rv;

    if (shard_count > DECODE_SHARDS_MAX) {
        return CAIRN_EINVAL;
    }
    rv = gather(id, shards, shard_lens, shard_count, &g, &bad_mask);
    if (bad != NULL) {
        *bad = bad_mask;
    }
    if (rv != 0) {
        return rv;
    }
    CN_ASSERT(g.aad != NULL);
    if (cap < g.header.plain_size) {
        return CAIRN_ETOOBIG;
    }
    rv = data_shards(codec, &g, data);
    if (rv != 0) {
        return rv;
    }
    return open_and_check(codec, &g, data, out, len);
}
