/*
 * The upload pipeline (struct gw_pipe, pipe.h): bytes in, stored chunks out,
 * with bounded memory whatever the size.
 *
 * The happy path, per chunk:
 *   1. gw__pipe_write() appends the client's bytes to the fill buffer (4 MiB
 *      plus one read's slack) and runs the content-defined chunker over them.
 *   2. At a boundary, if the codec is idle and fewer than in_flight_max
 *      chunks are being stored, the chunk goes to libuv's pool:
 *      stor_codec_encode() (id, zstd, AEAD, Reed-Solomon). Otherwise the pipe asks the caller to
 * pause the client (TCP pushes back) and resumes when a slot frees.
 *   3. Back on the loop, node_blocks_put() copies the k+m shards and sends
 *      them to their nodes; the codec is free again for the next chunk.
 *   4. When every shard is durable, ChunkRecord (with the nodes that hold
 *      each shard) is proposed to the namespace's group, and the chunk joins
 *      the list (offset, size, id) that the caller commits.
 *
 * Memory: the codec (about ((k+m)/k + 2) * 4 MiB), two fill buffers, and the
 * copies node_blocks holds for at most in_flight_max chunks.
 *
 * Possible failure modes: a put or a record fails (the pipe fails with its
 * code; chunks already stored stay, unreferenced, for GC to collect); the
 * client leaves (the caller aborts: work in flight finishes and is dropped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pipe.h"

#define FILL_SIZE (STOR_CHUNK_SIZE_MAX + GW_IN_SIZE)

struct put_slot {
    struct gw_pipe *pipe;
    size_t ref; /* index in refs */
    uint8_t id[STOR_ID_SIZE];
    uint32_t stored_size;
    uint8_t compression;
    uint8_t k;
    uint8_t m;
    uint64_t nodes[NODE_SHARDS_MAX];
};

struct gw_pipe {
    struct gw_app *app;
    uint64_t ns;
    uint8_t k;
    uint8_t m;
    struct stor_codec *codec;
    struct stor_chunker chunker;
    uint8_t *fill;   /* bytes of the current chunk, and after a boundary, of the next */
    size_t fill_len; /* bytes in fill */
    size_t scanned;  /* bytes of fill the chunker has seen */
    size_t ready;    /* > 0: fill[0..ready) is a whole chunk waiting for the codec */
    uint8_t *spare;  /* the other buffer: the chunk being encoded */
    size_t spare_len;
    bool encoding;    /* the codec is on the pool */
    bool want_resume; /* the caller paused its client */
    bool flushing;    /* the body ended: the tail is the last chunk */
    bool closed;      /* the caller let go: free once idle */
    int rv;           /* the first failure */
    uint64_t actor;   /* who records the chunks */
    unsigned puts;    /* chunks between encode and record */
    unsigned puts_max;
    uint64_t offset; /* file offset of fill[0] */
    struct gw_chunk_ref *refs;
    size_t ref_count;
    size_t ref_cap;
    size_t refs_done; /* refs[0..refs_done) are all recorded (in order) */
    uv_work_t work;
    struct stor_chunk chunk; /* the encode's result */
    int work_rv;
    gw_pipe_cb on_resume;
    gw_pipe_cb on_done;
    void *data;
};

static void pump(struct gw_pipe *pipe);

static void pipe_maybe_free(struct gw_pipe *pipe)
{
    if (!pipe->closed || pipe->encoding || pipe->puts > 0) {
        return;
    }
    pipe->app->stats.uploads_active--;
    stor_codec_free(pipe->codec);
    free(pipe->fill);
    free(pipe->spare);
    free(pipe->refs);
    free(pipe);
}

int gw__pipe_new(struct gw_app *app,
                 uint64_t ns,
                 uint64_t offset,
                 gw_pipe_cb on_resume,
                 gw_pipe_cb on_done,
                 void *data,
                 struct gw_pipe **out)
{
    struct stor_codec_config config = {0};
    struct gw_pipe *pipe;
    int rv;

    CN_ASSERT(app->k > 0);
    if (app->stats.uploads_active >= app->config.uploads_max) {
        app->stats.busy_refusals++;
        return CAIRN_EBUSY; /* each upload holds a codec and two 4 MiB buffers */
    }
    pipe = cn_xcalloc(1, sizeof(*pipe));
    app->stats.uploads_active++;
    pipe->app = app;
    pipe->ns = ns;
    pipe->k = app->k;
    pipe->m = app->m;
    pipe->puts_max = (unsigned)app->config.chunks_in_flight_max;
    pipe->offset = offset;
    pipe->on_resume = on_resume;
    pipe->on_done = on_done;
    pipe->data = data;
    config.keys = &app->keys;
    config.k = pipe->k;
    config.m = pipe->m;
    config.cipher = STOR_CIPHER_AUTO;
    config.compress = true;
    rv = stor_codec_new(&config, &pipe->codec);
    if (rv != 0) {
        app->stats.uploads_active--;
        free(pipe);
        return rv;
    }
    pipe->fill = malloc(FILL_SIZE);
    pipe->spare = malloc(FILL_SIZE);
    if (pipe->fill == NULL || pipe->spare == NULL) {
        pipe->closed = true;
        pipe_maybe_free(pipe);
        return CAIRN_ENOMEM;
    }
    stor_chunker_init(&pipe->chunker);
    *out = pipe;
    return 0;
}

const struct gw_chunk_ref *gw__pipe_refs(const struct gw_pipe *pipe, size_t *count)
{
    *count = pipe->refs_done;
    return pipe->refs;
}

uint64_t gw__pipe_stored(const struct gw_pipe *pipe)
{
    return pipe->refs_done == 0
               ? 0
               : pipe->refs[pipe->refs_done - 1].offset + pipe->refs[pipe->refs_done - 1].size;
}

void gw__pipe_list_hash(const struct gw_pipe *pipe, uint8_t out[32])
{
    crypto_generichash_state state;

    /* The chunk ids are keyed hashes of the chunks' bytes, so the list names
     * the content at no cost per byte (docs/gateway.md, "Content hash"). */
    crypto_generichash_init(&state, NULL, 0, 32);
    for (size_t i = 0; i < pipe->refs_done; i++) {
        uint8_t entry[8 + 4 + STOR_ID_SIZE];

        cn_put_u64(entry, pipe->refs[i].offset);
        cn_put_u32(entry + 8, pipe->refs[i].size);
        memcpy(entry + 12, pipe->refs[i].id, STOR_ID_SIZE);
        crypto_generichash_update(&state, entry, sizeof(entry));
    }
    crypto_generichash_final(&state, out, 32);
}

int gw__pipe_error(const struct gw_pipe *pipe)
{
    return pipe->rv;
}

static void fail(struct gw_pipe *pipe, int rv)
{
    if (pipe->rv == 0) {
        pipe->rv = rv;
    }
}

/* True when the caller must wait: the pipe is done when nothing is left. */
static bool busy(const struct gw_pipe *pipe)
{
    if (pipe->rv != 0) {
        return pipe->encoding || pipe->puts > 0;
    }
    return pipe->encoding || pipe->puts > 0 || pipe->ready > 0 ||
           (pipe->flushing && pipe->fill_len > 0);
}

static void maybe_done(struct gw_pipe *pipe)
{
    if (pipe->closed || !pipe->flushing || busy(pipe)) {
        return;
    }
    pipe->flushing = false; /* once */
    pipe->on_done(pipe->data, pipe->rv);
}

/* ---- Recording ---- */

static void record_cb(void *data, int rv, const Cairn__Wire__MetaProposeReply *reply)
{
    struct put_slot *slot = data;
    struct gw_pipe *pipe = slot->pipe;

    if (rv == 0 && reply->rv != 0) {
        rv = reply->rv;
    }
    if (cn_log_get_level() <= CN_DEBUG) {
        char id[17], nodes[128];
        size_t len = 0;

        cn_hex_encode(slot->id, 8, id); /* the nodes' logs name chunks by these 8 bytes */
        nodes[0] = '\0';
        for (unsigned i = 0; i < (unsigned)(slot->k + slot->m) && len < sizeof(nodes); i++) {
            int w = snprintf(nodes + len, sizeof(nodes) - len, "%s%llu", i > 0 ? "," : "",
                             (unsigned long long)slot->nodes[i]);
            len += w > 0 ? (size_t)w : 0;
        }
        CN_LOG(CN_DEBUG, "chunk recorded", "chunk=%s ns=%llu nodes=%s err=%s", id,
               (unsigned long long)pipe->ns, nodes, cairn_errname(rv));
    }
    if (rv != 0) {
        fail(pipe, rv);
    } else {
        pipe->refs[slot->ref].recorded = true;
        while (pipe->refs_done < pipe->ref_count && pipe->refs[pipe->refs_done].recorded) {
            pipe->refs_done++;
        }
    }
    free(slot);
    pipe->puts--;
    if (pipe->closed) {
        pipe_maybe_free(pipe);
        return;
    }
    pump(pipe);
    maybe_done(pipe);
}

static void put_cb(void *data, int rv, const uint64_t *node_ids, unsigned count)
{
    struct put_slot *slot = data;
    struct gw_pipe *pipe = slot->pipe;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__ChunkRecord record = CAIRN__CMD__CHUNK_RECORD__INIT;
    Cairn__Cmd__Chunk chunk = CAIRN__CMD__CHUNK__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    uint8_t request_id[16];

    if (rv == 0 && !pipe->closed && pipe->rv == 0) {
        CN_ASSERT(count == (unsigned)(slot->k + slot->m));
        memcpy(slot->nodes, node_ids, count * sizeof(*node_ids));
        pipe->app->stats.chunk_puts++;
        chunk.id.data = slot->id;
        chunk.id.len = sizeof(slot->id);
        chunk.size = pipe->refs[slot->ref].size;
        chunk.stored_size = slot->stored_size;
        chunk.compression = slot->compression;
        chunk.data_shards = slot->k;
        chunk.parity_shards = slot->m;
        chunk.placement_epoch = pipe->app->map_epoch;
        chunk.n_nodes = count;
        chunk.nodes = slot->nodes;
        chunk.created_ms = cn_clock_system()->wall_ms(cn_clock_system());
        record.chunk = &chunk;
        randombytes_buf(request_id, sizeof(request_id));
        header.request_id.data = request_id;
        header.request_id.len = sizeof(request_id);
        header.time_ms = chunk.created_ms;
        header.actor_user = pipe->actor;
        cmd.header = &header;
        cmd.op_case = CAIRN__CMD__COMMAND__OP_CHUNK_RECORD;
        cmd.chunk_record = &record;
        rv = node_meta_propose(pipe->app->meta, node_ns_group(pipe->ns), &cmd,
                               pipe->app->config.meta_timeout_ms, record_cb, slot);
        if (rv == 0) {
            return;
        }
    }
    if (rv != 0) {
        fail(pipe, rv);
    }
    free(slot);
    pipe->puts--;
    if (pipe->closed) {
        pipe_maybe_free(pipe);
        return;
    }
    pump(pipe);
    maybe_done(pipe);
}

/* ---- Encoding ---- */

static void encode_work(uv_work_t *work)
{
    struct gw_pipe *pipe = CN_CONTAINER_OF(work, struct gw_pipe, work);

    pipe->work_rv = stor_codec_encode(pipe->codec, pipe->spare, pipe->spare_len, &pipe->chunk);
}

/* The chunk is stored already (its record names its shards' nodes): the
 * file references it and nothing is written again. */
static void chunk_known(struct gw_pipe *pipe, struct put_slot *slot)
{
    pipe->app->stats.chunk_dedups++;
    pipe->refs[slot->ref].recorded = true;
    while (pipe->refs_done < pipe->ref_count && pipe->refs[pipe->refs_done].recorded) {
        pipe->refs_done++;
    }
}

/* Stores the chunk the codec holds: node_blocks_put() copies its shards. */
static int chunk_store(struct gw_pipe *pipe, struct put_slot *slot)
{
    const struct stor_chunk *chunk = &pipe->chunk;

    return node_blocks_put(pipe->app->blocks, chunk->id.bytes,
                           (const uint8_t *const *)chunk->shards, chunk->shard_size,
                           (unsigned)(chunk->k + chunk->m), pipe->app->config.block_timeout_ms,
                           put_cb, slot);
}

/* The chunk index's answer for the chunk just encoded. Known: referenced, not
 * stored again (deduplication; also, content stored before under another
 * scheme or key version is never re-encoded over its shards, which nodes
 * refuse). Unknown, or no answer: stored. Then the codec is free. */
static void lookup_cb(void *data, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct put_slot *slot = data;
    struct gw_pipe *pipe = slot->pipe;
    const Cairn__Cmd__Chunk *known = rv == 0 && reply->rv == 0 ? reply->chunk : NULL;

    pipe->encoding = false;
    if (pipe->closed) {
        free(slot);
        pipe->puts--;
        pipe_maybe_free(pipe);
        return;
    }
    if (pipe->rv == 0 && known != NULL && known->data_shards >= 1 &&
        known->n_nodes == (size_t)known->data_shards + known->parity_shards) {
        chunk_known(pipe, slot);
    } else if (pipe->rv == 0) {
        rv = chunk_store(pipe, slot);
        if (rv == 0) {
            pump(pipe); /* the codec is free: the next chunk may go */
            maybe_done(pipe);
            return;
        }
        fail(pipe, rv);
    }
    free(slot);
    pipe->puts--;
    pump(pipe);
    maybe_done(pipe);
}

static void encode_after(uv_work_t *work, int status)
{
    struct gw_pipe *pipe = CN_CONTAINER_OF(work, struct gw_pipe, work);
    struct put_slot *slot;
    int rv = pipe->work_rv;

    CN_ASSERT(status == 0);
    if (pipe->closed) {
        pipe->encoding = false;
        pipe->puts--;
        pipe_maybe_free(pipe);
        return;
    }
    if (rv == 0 && pipe->rv == 0) {
        const struct stor_chunk *chunk = &pipe->chunk;
        Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;

        slot = cn_xcalloc(1, sizeof(*slot));
        slot->pipe = pipe;
        slot->ref = pipe->ref_count - 1;
        memcpy(slot->id, chunk->id.bytes, sizeof(slot->id));
        memcpy(pipe->refs[slot->ref].id, chunk->id.bytes, sizeof(slot->id));
        slot->stored_size = chunk->stored_size;
        slot->compression = chunk->compression;
        slot->k = chunk->k;
        slot->m = chunk->m;
        /* The codec keeps the shards until the index answers (encoding stays
         * true). Chunk records are the system's to read (actor 0). */
        query.group = node_ns_group(pipe->ns);
        query.actor = 0;
        query.query_case = CAIRN__WIRE__META_READ__QUERY_CHUNK;
        query.chunk.data = slot->id;
        query.chunk.len = sizeof(slot->id);
        rv = node_meta_read(pipe->app->meta, &query, pipe->app->config.meta_timeout_ms, lookup_cb,
                            slot);
        if (rv == 0) {
            return;
        }
        rv = chunk_store(pipe, slot); /* no lookup: store it as before */
        pipe->encoding = false;
        if (rv == 0) {
            pump(pipe);
            maybe_done(pipe);
            return;
        }
        free(slot);
    }
    pipe->encoding = false;
    fail(pipe, rv);
    pipe->puts--;
    pump(pipe);
    maybe_done(pipe);
}

/* Sends fill[0..len) to the codec; the rest of fill becomes the new fill. */
static void start_encode(struct gw_pipe *pipe, size_t len)
{
    uint8_t *chunk = pipe->fill;
    size_t rest = pipe->fill_len - len;
    struct gw_chunk_ref *ref;
    int rv;

    CN_ASSERT(!pipe->encoding);
    CN_ASSERT(len <= STOR_CHUNK_SIZE_MAX);
    if (pipe->ref_count == pipe->ref_cap) {
        pipe->ref_cap = pipe->ref_cap == 0 ? 64 : 2 * pipe->ref_cap;
        pipe->refs = cn_xrealloc(pipe->refs, pipe->ref_cap * sizeof(*pipe->refs));
    }
    ref = &pipe->refs[pipe->ref_count++];
    memset(ref, 0, sizeof(*ref));
    ref->offset = pipe->offset;
    ref->size = (uint32_t)len;
    /* Swap buffers: the chunk is encoded from spare, the rest moves to fill. */
    memcpy(pipe->spare, pipe->fill + len, rest);
    pipe->fill = pipe->spare;
    pipe->spare = chunk;
    pipe->spare_len = len;
    pipe->fill_len = rest;
    pipe->scanned = 0;
    pipe->offset += len;
    pipe->encoding = true;
    pipe->puts++;
    rv = uv_queue_work(pipe->app->loop, &pipe->work, encode_work, encode_after);
    CN_ASSERT(rv == 0);
}

static bool can_encode(const struct gw_pipe *pipe)
{
    return !pipe->encoding && pipe->puts < pipe->puts_max && pipe->rv == 0;
}

/* Moves the pipe as far as it can go: waiting chunk, then scanning. */
static void pump(struct gw_pipe *pipe)
{
    while (pipe->rv == 0) {
        if (pipe->ready > 0) {
            if (!can_encode(pipe)) {
                return;
            }
            start_encode(pipe, pipe->ready);
            pipe->ready = 0;
            continue;
        }
        if (pipe->scanned < pipe->fill_len) {
            bool boundary = false;
            size_t n = stor_chunker_next(&pipe->chunker, pipe->fill + pipe->scanned,
                                         pipe->fill_len - pipe->scanned, &boundary);

            pipe->scanned += n;
            if (boundary) {
                pipe->ready = pipe->scanned;
            }
            continue;
        }
        if (pipe->flushing && pipe->fill_len > 0) {
            if (!can_encode(pipe)) {
                return;
            }
            start_encode(pipe, pipe->fill_len);
            stor_chunker_init(&pipe->chunker);
            continue;
        }
        break;
    }
    if (pipe->want_resume && (pipe->ready == 0 || pipe->rv != 0)) {
        pipe->want_resume = false;
        pipe->on_resume(pipe->data, pipe->rv);
    }
}

bool gw__pipe_write(struct gw_pipe *pipe, const uint8_t *data, size_t len)
{
    CN_ASSERT(!pipe->flushing);
    CN_ASSERT(!pipe->closed);
    if (pipe->rv != 0) {
        return false;
    }
    CN_ASSERT(pipe->fill_len + len <= FILL_SIZE);
    memcpy(pipe->fill + pipe->fill_len, data, len);
    pipe->fill_len += len;
    pump(pipe);
    /* Pause while a whole chunk waits, or when one more read might not fit. */
    if (pipe->ready > 0 || pipe->fill_len + GW_IN_SIZE > FILL_SIZE) {
        pipe->want_resume = true;
        return true;
    }
    return false;
}

void gw__pipe_flush(struct gw_pipe *pipe)
{
    CN_ASSERT(!pipe->closed);
    pipe->flushing = true;
    pump(pipe);
    maybe_done(pipe);
}

void gw__pipe_drain(struct gw_pipe *pipe)
{
    CN_ASSERT(!pipe->closed);
    pipe->fill_len = 0; /* the tail and a waiting chunk are dropped */
    pipe->scanned = 0;
    pipe->ready = 0;
    pipe->want_resume = false;
    pipe->flushing = true;
    maybe_done(pipe);
}

void gw__pipe_close(struct gw_pipe *pipe)
{
    if (pipe == NULL) {
        return;
    }
    pipe->closed = true;
    pipe_maybe_free(pipe);
}

void gw__pipe_set_actor(struct gw_pipe *pipe, uint64_t actor)
{
    pipe->actor = actor;
}
