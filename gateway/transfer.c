/*
 * File content: the simple streaming upload (PUT /v1/files/{path}) and the
 * download (GET /v1/files/{path}) with Range, ETag, If-None-Match, If-Match
 * and ?version=N (docs/api.md).
 *
 * PUT, the happy path:
 *   1. A declared size over max_file_size is 413 before any byte is read.
 *   2. Resolve the path: an existing file gives the inode and its version; a
 *      missing one needs its parent (404 if the parent is missing). The base
 *      is ?base=N or the version of If-Match; without either, whatever is
 *      current when the commit goes.
 *   3. The body streams through the pipe (pipe.c): chunked, encoded, stored,
 *      recorded, with the client paused while the pipe is full.
 *   4. At the end of the body: a body shorter than Content-Length never ends
 *      (the server reports the client gone or too slow) and nothing is
 *      committed. Otherwise one Commit: against the base (stale is 409, 412
 *      with If-Match), or over whatever is current without one; for a new
 *      file the same command creates it (Commit.create_name), so no one ever
 *      sees a file without its first version. EEXIST from a racing upload
 *      of the same new name: a create-only PUT (If-None-Match: *, ?base=0)
 *      lost (412 / 409); any other resolves again and commits over it.
 *
 * GET, the happy path: resolve, read the version (its chunk list), answer
 * 304/412 from the ETag, pick the chunks that cover the Range, then for each:
 * read its record (k, m), fetch k shards (node_blocks_get), decode on the
 * pool, and stream the slice. One chunk in memory at a time.
 *
 * Possible failure modes: a node down (the get reads around it; a put fails
 * the upload, 503); a chunk that cannot be read mid-download (the connection
 * is dropped: the status line was sent); the client leaves (the pipe and the
 * fetch are let go, nothing is committed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipe.h"

/* ---- Upload ---- */

struct upload {
    struct gw_call *call;
    struct gw_pipe *pipe;
    bool exists;       /* the file existed when resolved */
    bool base_given;   /* ?base= or If-Match */
    bool if_match;     /* the base came from If-Match: a conflict is 412 */
    uint64_t base;     /* the version the commit is against */
    uint64_t parent;   /* for a new file */
    uint64_t received; /* body bytes */
    uint64_t size;
    bool retried;     /* resolved again after Create said EEXIST */
    bool create_only; /* If-None-Match: * on a name that was free when resolved */
};

static void upload_free(struct gw_call *call)
{
    struct upload *up = call->op;

    gw__pipe_close(up->pipe);
    free(up);
}

static void reresolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply);

static void commit_cb(struct gw_call *call, int rv, uint64_t value)
{
    struct upload *up = call->op;

    if (rv == CAIRN_EEXIST && !up->exists) {
        /* Another upload made the name first (its file and first version in
         * one command). A create-only PUT (If-None-Match: *, ?base=0) lost;
         * any other commits over the winner. */
        if (up->create_only || up->base_given) {
            call->app->stats.upload_failures++;
            if (up->create_only) {
                gw_respond_status(call->req, 412, "precondition_failed",
                                  "the file was created meanwhile (If-None-Match: *)");
            } else {
                gw__call_error(call, CAIRN_ECONFLICT, "base version %" PRIu64 " is stale",
                               up->base);
            }
            return;
        }
        if (!up->retried) {
            up->retried = true;
            gw__resolve(call, call->path, reresolved);
            return;
        }
    }
    if (rv != 0) {
        call->app->stats.upload_failures++;
        if (rv == CAIRN_ECONFLICT && up->if_match) {
            if (gw__call_live(call)) {
                gw_respond_status(call->req, 412, "precondition_failed",
                                  "the file changed since the ETag of If-Match");
            }
            return;
        }
        gw__call_error(call, rv,
                       rv == CAIRN_ECONFLICT ? "base version %" PRIu64 " is stale"
                                             : "cannot commit (base %" PRIu64 ")",
                       up->base);
        return;
    }
    call->app->stats.uploads++;
    call->app->stats.upload_bytes += up->size;
    call->rec.version = value;
    call->rec.kind = CAIRN__CMD__INODE_KIND__INODE_FILE;
    if (call->req != NULL) {
        char etag[GW_ETAG_SIZE];

        gw_etag_format(call->rec.id, value, etag);
        gw_resp_header(call->req, "ETag", etag);
    }
    gw__answer_inode(call, up->exists ? 200 : 201, call->rec.id);
}

/* The version record of the file the pipe stored; refs borrowed from the pipe. */
static void propose_commit(struct gw_call *call)
{
    struct upload *up = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Commit commit = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef *refs = NULL, **list = NULL;
    const struct gw_chunk_ref *stored;
    uint8_t hash[32];
    size_t count;

    stored = gw__pipe_refs(up->pipe, &count);
    if (count > 0) {
        refs = cn_xcalloc(count, sizeof(*refs));
        list = cn_xcalloc(count, sizeof(*list));
    }
    for (size_t i = 0; i < count; i++) {
        cairn__cmd__chunk_ref__init(&refs[i]);
        refs[i].chunk_id.data = (uint8_t *)stored[i].id;
        refs[i].chunk_id.len = STOR_ID_SIZE;
        refs[i].offset = stored[i].offset;
        refs[i].size = stored[i].size;
        list[i] = &refs[i];
    }
    gw__pipe_list_hash(up->pipe, hash);
    version.size = up->size;
    version.content_hash.data = hash;
    version.content_hash.len = sizeof(hash);
    version.n_chunks = count;
    version.chunks = list;
    if (!up->exists) {
        /* A new file: created with its first version in one command. */
        cairn__cmd__inode__init(&call->rec);
        call->rec.id = gw__random_id(false);
        call->rec.parent = up->parent;
        call->rec.kind = CAIRN__CMD__INODE_KIND__INODE_FILE;
        snprintf(call->rec_name, sizeof(call->rec_name), "%s", call->name);
        call->rec.name = call->rec_name;
        commit.create_parent = up->parent;
        commit.create_name = call->name;
    }
    commit.ns = call->ns;
    commit.inode = call->rec.id;
    commit.base_version = up->base;
    commit.unconditional = !up->base_given; /* no base: over whatever is current */
    commit.version = &version;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_COMMIT;
    cmd.commit = &commit;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, commit_cb);
    free(refs);
    free(list);
}

static void reresolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct upload *up = call->op;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "cannot resolve %s", call->path);
        return;
    }
    if (reply->inode->kind != CAIRN__CMD__INODE_KIND__INODE_FILE) {
        gw__call_error(call, CAIRN_EISDIR, "%s is a folder", call->path);
        return;
    }
    gw__keep_inode(call, reply->inode);
    up->exists = true;
    propose_commit(call);
}

static void pipe_done(void *data, int rv)
{
    struct gw_call *call = data;
    struct upload *up = call->op;

    if (!gw__call_release(call)) {
        return;
    }
    if (rv != 0) {
        call->app->stats.upload_failures++;
        CN_LOG(CN_WARN, "upload failed", "path=%s bytes=%llu err=%s", call->path,
               (unsigned long long)up->size, cairn_errname(rv));
        gw__call_error(call, rv, "cannot store the file");
        return;
    }
    propose_commit(call);
}

static void pipe_resume(void *data, int rv)
{
    struct gw_call *call = data;

    if (call->req == NULL) {
        return;
    }
    if (rv != 0) {
        gw__call_error(call, rv, "cannot store the file");
        return;
    }
    gw_req_resume(call->req);
}

static void upload_body(struct gw_req *req, const uint8_t *data, size_t len)
{
    struct gw_call *call = gw_req_data(req);
    struct upload *up = call->op;

    up->received += len;
    if (up->received > call->app->config.file_size_max) {
        gw_respond_error(req, CAIRN_ETOOBIG, "a file is at most %" PRIu64 " bytes",
                         call->app->config.file_size_max);
        return;
    }
    if (gw__pipe_error(up->pipe) != 0) {
        gw__call_error(call, gw__pipe_error(up->pipe), "cannot store the file");
        return;
    }
    if (gw__pipe_write(up->pipe, data, len)) {
        gw_req_pause(req);
    }
}

static void upload_end(struct gw_req *req, int rv)
{
    struct gw_call *call = gw_req_data(req);
    struct upload *up = call->op;

    if (rv != 0) {
        call->app->stats.upload_failures++;
        return; /* the server answers 413/400/408; nothing is committed */
    }
    up->size = up->received;
    gw__call_hold(call); /* until pipe_done */
    gw__pipe_flush(up->pipe);
}

static void start_body(struct gw_call *call)
{
    struct upload *up = call->op;
    int rv;

    rv = gw__pipe_new(call->app, call->ns, 0, pipe_resume, pipe_done, call, &up->pipe);
    if (rv != 0) {
        gw_resp_header(call->req, "Retry-After", "1");
        gw__call_error(call, rv == CAIRN_ENOMEM ? CAIRN_EBUSY : rv,
                       "cannot start the upload pipeline");
        return;
    }
    gw__pipe_set_actor(up->pipe, call->user);
    gw_req_read_body(call->req, upload_body, upload_end);
}

static void upload_parent(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct upload *up = call->op;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "the parent of %s does not exist",
                       call->path);
        return;
    }
    if (reply->inode->kind != CAIRN__CMD__INODE_KIND__INODE_DIR) {
        gw__call_error(call, CAIRN_ENOTDIR, "the parent of %s is not a folder", call->path);
        return;
    }
    if (up->if_match || (up->base_given && up->base != 0)) {
        if (up->if_match) {
            gw_respond_status(call->req, 412, "precondition_failed", "no such file for If-Match");
        } else {
            gw__call_error(call, CAIRN_ECONFLICT, "base version %" PRIu64 " is stale (no file)",
                           up->base);
        }
        return;
    }
    up->parent = reply->inode->id;
    start_body(call);
}

static void upload_resolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct upload *up = call->op;
    const char *if_match = gw_req_header(call->req, "If-Match");
    const char *if_none = gw_req_header(call->req, "If-None-Match");
    char buf[GW_PATH_SIZE_MAX + 1];
    const char *parent, *name;

    if (rv == CAIRN_ENOENT) {
        /* Only a create will do; if another upload creates the name first,
         * Create says EEXIST and this one is 412 (create_cb). */
        up->create_only = if_none != NULL && strcmp(if_none, "*") == 0;
        CN_ASSERT(gw_path_split(call->path, buf, &parent, &name) == 0);
        snprintf(call->name, sizeof(call->name), "%s", name);
        gw__resolve(call, parent, upload_parent);
        return;
    }
    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "cannot resolve %s", call->path);
        return;
    }
    if (reply->inode->kind != CAIRN__CMD__INODE_KIND__INODE_FILE) {
        gw__call_error(call, CAIRN_EISDIR, "%s is a folder", call->path);
        return;
    }
    gw__keep_inode(call, reply->inode);
    up->exists = true;
    if (if_none != NULL && strcmp(if_none, "*") == 0) {
        gw_respond_status(call->req, 412, "precondition_failed",
                          "the file exists (If-None-Match: *)");
        return;
    }
    if (if_match != NULL) {
        char etag[GW_ETAG_SIZE];

        gw_etag_format(reply->inode->id, reply->inode->version, etag);
        if (strcmp(if_match, "*") != 0) {
            up->base = gw_etag_version(if_match, reply->inode->id);
            if (!gw_etag_match(if_match, etag)) {
                gw_respond_status(call->req, 412, "precondition_failed",
                                  "the file changed since the ETag of If-Match");
                return;
            }
        } else {
            up->base = reply->inode->version;
        }
        up->base_given = true;
        up->if_match = true;
    }
    start_body(call);
}

static void upload_authed(struct gw_call *call)
{
    struct upload *up;
    int64_t declared = gw_req_content_length(call->req);
    char base[24];
    int rv;

    if (!gw__call_target(call, "/v1/files")) {
        return;
    }
    if (call->path[0] == '\0') {
        gw__call_error(call, CAIRN_EINVAL, "want a file path");
        return;
    }
    if (declared > 0 && (uint64_t)declared > call->app->config.file_size_max) {
        gw__call_error(call, CAIRN_ETOOBIG, "a file is at most %" PRIu64 " bytes",
                       call->app->config.file_size_max);
        return;
    }
    if (call->app->k == 0 || call->app->member_up_count == 0) {
        gw__call_error(call, CAIRN_EUNAVAIL, "no storage node is up");
        return;
    }
    up = cn_xcalloc(1, sizeof(*up));
    up->call = call;
    call->op = up;
    call->op_free = upload_free;
    rv = gw_query_get(gw_req_query(call->req), "base", base, sizeof(base));
    if (rv == 0) {
        if (gw_parse_u64(base, &up->base) != 0) {
            gw__call_error(call, CAIRN_EINVAL, "bad base");
            return;
        }
        up->base_given = true;
    } else if (rv != CAIRN_ENOENT) {
        gw__call_error(call, CAIRN_EINVAL, "bad base");
        return;
    }
    gw__resolve(call, call->path, upload_resolved);
}

static void upload_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, upload_authed);
}

/* ---- Download ---- */

struct download {
    struct gw_call *call;
    uint64_t version;
    uint64_t size;
    uint64_t first; /* the byte range sent */
    uint64_t last;
    uint64_t sent; /* bytes of the range sent */
    size_t ref_count;
    struct gw_chunk_ref *refs; /* the chunks of the range */
    size_t next_ref;           /* the chunk to fetch next */
    bool fetching;
    int rv;
    /* The decoded chunk being sent. */
    uint8_t *plain;
    size_t plain_len;
    size_t plain_pos; /* next byte of plain to send */
    /* The fetch in flight. */
    struct stor_codec *codec;
    uint8_t codec_k;
    uint8_t codec_m;
    uv_work_t work;
    uint8_t *shards[NODE_SHARDS_MAX];
    size_t shard_lens[NODE_SHARDS_MAX];
    unsigned shard_count;
    int work_rv;
    size_t work_len; /* the decode's output length, set on the thread pool */
    bool closed;     /* the request ended: free once idle */
    bool counted;    /* in stats.downloads_active */
    struct gw_app *app;
};

static void download_maybe_free(struct download *dl)
{
    if (!dl->closed || dl->fetching) {
        return;
    }
    if (dl->counted) {
        dl->app->stats.downloads_active--;
    }
    for (unsigned i = 0; i < NODE_SHARDS_MAX; i++) {
        free(dl->shards[i]);
    }
    stor_codec_free(dl->codec);
    free(dl->plain);
    free(dl->refs);
    free(dl);
}

static void download_free(struct gw_call *call)
{
    struct download *dl = call->op;

    dl->closed = true;
    download_maybe_free(dl);
}

static void fetch_next(struct download *dl);

static void fetch_fail(struct download *dl, int rv)
{
    dl->fetching = false;
    if (dl->closed) {
        download_maybe_free(dl);
        return;
    }
    CN_LOG(CN_WARN, "download broke off", "err=%s", cairn_errname(rv));
    dl->rv = rv;
    if (dl->call->req != NULL) {
        gw_resp_wake(dl->call->req);
    }
}

static void decode_work(uv_work_t *work)
{
    struct download *dl = CN_CONTAINER_OF(work, struct download, work);
    const struct gw_chunk_ref *ref = &dl->refs[dl->next_ref];
    struct stor_id id;

    memcpy(id.bytes, ref->id, sizeof(id.bytes));
    /* Only the worker's own fields here: the loop reads plain_len and
     * plain_pos meanwhile (produce() sees "nothing left" until decode_after). */
    dl->work_rv =
        stor_codec_decode(dl->codec, &id, (const uint8_t *const *)dl->shards, dl->shard_lens,
                          dl->shard_count, dl->plain, STOR_CHUNK_SIZE_MAX, &dl->work_len, NULL);
    if (dl->work_rv == 0 && dl->work_len != ref->size) {
        dl->work_rv = CAIRN_ECORRUPT;
    }
}

static void decode_after(uv_work_t *work, int status)
{
    struct download *dl = CN_CONTAINER_OF(work, struct download, work);
    const struct gw_chunk_ref *ref = &dl->refs[dl->next_ref];
    uint64_t start;

    CN_ASSERT(status == 0);
    if (dl->work_rv != 0 || dl->closed) {
        fetch_fail(dl, dl->work_rv);
        return;
    }
    dl->fetching = false;
    dl->plain_len = dl->work_len;
    /* The part of this chunk inside the range. */
    start = dl->first + dl->sent;
    CN_ASSERT(start >= ref->offset && start < ref->offset + ref->size);
    dl->plain_pos = (size_t)(start - ref->offset);
    if (dl->last < ref->offset + ref->size - 1) {
        dl->plain_len = (size_t)(dl->last - ref->offset + 1);
    }
    dl->next_ref++;
    dl->call->app->stats.chunk_gets++;
    if (dl->call->req != NULL) {
        gw_resp_wake(dl->call->req);
    }
}

static void get_cb(
    void *data, int rv, const uint8_t *const *shards, const size_t *lens, unsigned count)
{
    struct download *dl = data;

    if (rv != 0 || dl->closed) {
        fetch_fail(dl, rv != 0 ? rv : CAIRN_ECANCELED);
        return;
    }
    CN_ASSERT(count <= NODE_SHARDS_MAX);
    for (unsigned i = 0; i < count; i++) {
        dl->shards[i] = cn_xrealloc(dl->shards[i], lens[i]);
        memcpy(dl->shards[i], shards[i], lens[i]);
        dl->shard_lens[i] = lens[i];
    }
    dl->shard_count = count;
    rv = uv_queue_work(dl->call->app->loop, &dl->work, decode_work, decode_after);
    CN_ASSERT(rv == 0);
}

static void chunk_read_cb(void *data, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct download *dl = data;
    const Cairn__Cmd__Chunk *chunk;
    uint64_t nodes[NODE_SHARDS_MAX];
    unsigned shard_count;

    if (dl->closed) {
        fetch_fail(dl, CAIRN_ECANCELED);
        return;
    }
    if (rv == 0 && (reply->rv != 0 || reply->chunk == NULL)) {
        rv = reply->rv != 0 ? reply->rv : CAIRN_ENOENT;
    }
    if (rv != 0) {
        fetch_fail(dl, rv);
        return;
    }
    chunk = reply->chunk;
    shard_count = chunk->data_shards + chunk->parity_shards;
    if (chunk->data_shards == 0 || chunk->data_shards > STOR_K_MAX ||
        chunk->parity_shards > STOR_M_MAX) {
        fetch_fail(dl, CAIRN_ECORRUPT);
        return;
    }
    if (dl->codec == NULL || dl->codec_k != chunk->data_shards ||
        dl->codec_m != chunk->parity_shards) {
        struct stor_codec_config config = {0};

        stor_codec_free(dl->codec);
        dl->codec = NULL;
        config.keys = &dl->call->app->keys;
        config.k = (uint8_t)chunk->data_shards;
        config.m = (uint8_t)chunk->parity_shards;
        config.cipher = STOR_CIPHER_AUTO;
        rv = stor_codec_new(&config, &dl->codec);
        if (rv != 0) {
            fetch_fail(dl, rv);
            return;
        }
        dl->codec_k = (uint8_t)chunk->data_shards;
        dl->codec_m = (uint8_t)chunk->parity_shards;
    }
    rv = gw__chunk_nodes(dl->call->app, chunk, nodes, shard_count);
    if (rv == 0) {
        rv =
            node_blocks_get(dl->call->app->blocks, chunk->id.data, nodes, shard_count,
                            chunk->data_shards, dl->call->app->config.block_timeout_ms, get_cb, dl);
    }
    if (rv != 0) {
        fetch_fail(dl, rv);
    }
}

static void fetch_next(struct download *dl)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    struct gw_app *app = dl->call->app;
    int rv;

    CN_ASSERT(!dl->fetching);
    CN_ASSERT(dl->next_ref < dl->ref_count);
    query.group = node_ns_group(dl->call->ns);
    /* Chunk records are the system's to read (node/meta_query.c): the caller's
     * right to these bytes was checked when its version was read. */
    query.actor = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_CHUNK;
    query.chunk.data = dl->refs[dl->next_ref].id;
    query.chunk.len = STOR_ID_SIZE;
    dl->fetching = true;
    rv = node_meta_read(app->meta, &query, app->config.meta_timeout_ms, chunk_read_cb, dl);
    if (rv != 0) {
        fetch_fail(dl, rv);
    }
}

static int produce(struct gw_req *req, uint8_t *buf, size_t cap, size_t *len, bool *eof)
{
    struct gw_call *call = gw_req_data(req);
    struct download *dl = call->op;
    uint64_t total = dl->size == 0 ? 0 : dl->last - dl->first + 1;
    size_t n;

    *len = 0;
    *eof = false;
    if (dl->rv != 0) {
        return dl->rv;
    }
    if (dl->sent == total) {
        *eof = true;
        return 0;
    }
    if (dl->plain_pos == dl->plain_len) {
        if (!dl->fetching) {
            fetch_next(dl);
        }
        return dl->rv;
    }
    n = dl->plain_len - dl->plain_pos;
    if (n > cap) {
        n = cap;
    }
    memcpy(buf, dl->plain + dl->plain_pos, n);
    dl->plain_pos += n;
    dl->sent += n;
    call->app->stats.download_bytes += n;
    *len = n;
    *eof = dl->sent == total;
    if (!*eof && dl->plain_pos == dl->plain_len && !dl->fetching) {
        fetch_next(dl); /* start the next chunk while this one is written */
    }
    return 0;
}

static void download_version(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct download *dl = call->op;
    const Cairn__Cmd__Version *version;
    const char *if_none = gw_req_header(call->req, "If-None-Match");
    const char *if_match = gw_req_header(call->req, "If-Match");
    char etag[GW_ETAG_SIZE], range[96], length[24];
    enum gw_range_kind kind;
    size_t begin = 0, end = 0;
    int status = 200;

    if (rv != 0 || reply->version == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such version of %s", call->path);
        return;
    }
    version = reply->version;
    dl->version = version->number;
    dl->size = version->size;
    gw_etag_format(call->rec.id, dl->version, etag);
    gw_resp_header(call->req, "ETag", etag);
    gw_resp_header(call->req, "Accept-Ranges", "bytes");
    snprintf(length, sizeof(length), "%" PRIu64, dl->version);
    gw_resp_header(call->req, "Cairn-Version", length);
    if (if_match != NULL && !gw_etag_match(if_match, etag)) {
        gw_respond_status(call->req, 412, "precondition_failed", "the ETag does not match");
        return;
    }
    if (if_none != NULL && gw_etag_match(if_none, etag)) {
        gw_respond(call->req, 304, NULL, NULL, 0);
        return;
    }
    kind = gw_range_parse(gw_req_header(call->req, "Range"), dl->size, &dl->first, &dl->last);
    if (kind == GW_RANGE_UNSATISFIABLE) {
        snprintf(range, sizeof(range), "bytes */%" PRIu64, dl->size);
        gw_resp_header(call->req, "Content-Range", range);
        gw__call_error(call, CAIRN_ERANGE, "the range is outside the %" PRIu64 " bytes", dl->size);
        return;
    }
    if (kind == GW_RANGE_OK) {
        status = 206;
        snprintf(range, sizeof(range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, dl->first,
                 dl->last, dl->size);
        gw_resp_header(call->req, "Content-Range", range);
    } else {
        dl->first = 0;
        dl->last = dl->size == 0 ? 0 : dl->size - 1;
    }
    if (dl->size > 0) {
        rv = gw_chunks_cover((const Cairn__Cmd__ChunkRef *const *)version->chunks,
                             version->n_chunks, dl->first, dl->last, &begin, &end);
        if (rv != 0) {
            gw__call_error(call, CAIRN_ECORRUPT,
                           "the chunk list of version %" PRIu64 " does not cover its bytes",
                           dl->version);
            return;
        }
        dl->ref_count = end - begin;
        dl->refs = cn_xcalloc(dl->ref_count, sizeof(*dl->refs));
        for (size_t i = 0; i < dl->ref_count; i++) {
            const Cairn__Cmd__ChunkRef *ref = version->chunks[begin + i];

            if (ref->chunk_id.len != STOR_ID_SIZE) {
                gw__call_error(call, CAIRN_ECORRUPT, "bad chunk id in version %" PRIu64,
                               dl->version);
                return;
            }
            dl->refs[i].offset = ref->offset;
            dl->refs[i].size = ref->size;
            memcpy(dl->refs[i].id, ref->chunk_id.data, STOR_ID_SIZE);
        }
        dl->plain = cn_xmalloc(STOR_CHUNK_SIZE_MAX);
    }
    if (call->app->stats.downloads_active >= call->app->config.downloads_max) {
        call->app->stats.busy_refusals++;
        gw_resp_header(call->req, "Retry-After", "1");
        gw__call_error(call, CAIRN_EBUSY, "too many downloads at once: retry");
        return;
    }
    call->app->stats.downloads_active++;
    dl->counted = true;
    call->app->stats.downloads++;
    gw_respond_stream(call->req, status, dl->size == 0 ? 0 : (int64_t)(dl->last - dl->first + 1),
                      produce);
}

static void download_resolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct download *dl;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__VersionQuery vq = CAIRN__WIRE__VERSION_QUERY__INIT;
    char text[24];
    uint64_t number = 0;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such file: %s", call->path);
        return;
    }
    if (reply->inode->kind != CAIRN__CMD__INODE_KIND__INODE_FILE) {
        gw__call_error(call, CAIRN_EISDIR, "%s is a folder", call->path);
        return;
    }
    rv = gw_query_get(gw_req_query(call->req), "version", text, sizeof(text));
    if ((rv != 0 && rv != CAIRN_ENOENT) || (rv == 0 && gw_parse_u64(text, &number) != 0)) {
        gw__call_error(call, CAIRN_EINVAL, "bad version");
        return;
    }
    if (reply->inode->version == 0) {
        gw__call_error(call, CAIRN_ENOENT, "%s has no content yet", call->path);
        return;
    }
    gw__keep_inode(call, reply->inode);
    dl = cn_xcalloc(1, sizeof(*dl));
    dl->call = call;
    dl->app = call->app;
    call->op = dl;
    call->op_free = download_free;
    vq.ns = call->ns;
    vq.inode = reply->inode->id;
    vq.version = number;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_VERSION;
    query.version = &vq;
    gw__call_read(call, &query, download_version);
}

static void download_authed(struct gw_call *call)
{
    if (!gw__call_target(call, "/v1/files")) {
        return;
    }
    gw__resolve(call, call->path, download_resolved);
}

static void download_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, download_authed);
}

int gw__transfer_routes(struct gw_app *app)
{
    int rv;

    rv = gw_router_add(app->router, "PUT", "/v1/files", upload_handler, app);
    rv = rv != 0 ? rv : gw_router_add(app->router, "GET", "/v1/files", download_handler, app);
    /* HEAD: the same headers; the core sends no body, so no chunk is fetched. */
    rv = rv != 0 ? rv : gw_router_add(app->router, "HEAD", "/v1/files", download_handler, app);
    return rv;
}
