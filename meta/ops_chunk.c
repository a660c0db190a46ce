/*
 * The chunk index and upload sessions.
 *
 * Chunks: ChunkRecord stores what the storage layer wrote (sizes, compression,
 * erasure scheme, placement epoch, tier); recording a known chunk again
 * updates its placement fields and keeps its history (created, last access),
 * so a retried or repeated record is harmless. The repair driver's records
 * are conditional (if_nodes): they apply only over the nodes they were
 * decided from, else CAIRN_ECONFLICT. ChunkTouch moves last access
 * forward only, so touches applied out of order agree.
 *
 * Uploads: UploadBegin opens a pending session for a name in a folder (the
 * actor must be an editor); UploadComplete, before the expiry, commits the
 * uploaded version to the file of that name — creating it with the given id
 * if it does not exist — and marks the session uploaded; UploadAbort marks it
 * aborted. The state only moves pending -> uploaded or pending -> aborted.
 *
 * Resumable sessions declare their size at UploadBegin. Each UploadAppend
 * records the chunks stored since the last one: its offset must be the
 * session's (else CAIRN_ECONFLICT: a retried or racing append; the client
 * asks for the offset and resumes), its chunks tile on from there, never past
 * the declared size. Each chunk gets its own key (upload id, offset), so an
 * append writes what it adds, not the whole list. UploadComplete may then
 * leave the version's chunk list empty and take the session's, once all the
 * bytes are there; completion and abort delete the session's chunk keys.
 *
 * Possible failure modes: an unknown chunk or session is CAIRN_ENOENT; a
 * session not pending CAIRN_EINVAL; one past its expiry CAIRN_EEXPIRED; a
 * malformed id CAIRN_EINVAL; plus every error of create and commit.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta_int.h"

static void chunk_key(struct meta_sm *sm, const uint8_t *id, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_CHUNK);
    meta__key_bytes(key, id, META_CHUNK_ID_SIZE);
}

static void upload_key(struct meta_sm *sm, const uint8_t *id, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_UPLOAD);
    meta__key_bytes(key, id, META_UPLOAD_ID_SIZE);
}

static bool same_nodes(const Cairn__Cmd__Chunk *chunk, const uint64_t *nodes, size_t count)
{
    return chunk->n_nodes == count &&
           (count == 0 || memcmp(chunk->nodes, nodes, count * sizeof(*nodes)) == 0);
}

int meta__op_chunk_record(struct meta__tx *tx, const Cairn__Cmd__ChunkRecord *op)
{
    Cairn__Cmd__Chunk record, *old = NULL;
    struct meta__key key;
    int rv;

    if (op->chunk == NULL || op->chunk->id.len != META_CHUNK_ID_SIZE || op->chunk->size == 0) {
        return CAIRN_EINVAL;
    }
    record = *op->chunk; /* shallow: borrows the id */
    chunk_key(tx->sm, op->chunk->id.data, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__chunk__descriptor, (void **)&old);
    if (rv == CAIRN_ENOENT) {
        record.created_ms = tx->time_ms;
        record.last_access_ms = tx->time_ms;
    } else if (rv != 0) {
        return rv;
    }
    if (op->if_nodes && (old == NULL || !same_nodes(old, op->expect_nodes, op->n_expect_nodes))) {
        meta_record_free(old);
        return CAIRN_ECONFLICT;
    }
    if (old != NULL) {
        record.created_ms = old->created_ms;
        record.last_access_ms = CN_MAX(old->last_access_ms, tx->time_ms);
    }
    rv = meta__put_msg(tx, &key, &record.base);
    meta_record_free(old);
    return rv;
}

int meta__op_chunk_touch(struct meta__tx *tx, const Cairn__Cmd__ChunkTouch *op)
{
    Cairn__Cmd__Chunk *chunk;
    struct meta__key key;
    int rv;

    if (op->chunk_id.len != META_CHUNK_ID_SIZE) {
        return CAIRN_EINVAL;
    }
    chunk_key(tx->sm, op->chunk_id.data, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__chunk__descriptor, (void **)&chunk);
    if (rv != 0) {
        return rv;
    }
    if (op->access_ms > chunk->last_access_ms) {
        chunk->last_access_ms = op->access_ms;
        rv = meta__put_msg(tx, &key, &chunk->base);
    }
    meta_record_free(chunk);
    return rv;
}

int meta__op_upload_begin(struct meta__tx *tx, const Cairn__Cmd__UploadBegin *op)
{
    Cairn__Cmd__Upload upload = CAIRN__CMD__UPLOAD__INIT;
    Cairn__Cmd__Namespace *ns;
    struct meta__key key;
    int rv;

    if (op->upload_id.len != META_UPLOAD_ID_SIZE || op->expires_ms <= tx->time_ms) {
        return CAIRN_EINVAL;
    }
    if (op->size > META_FILE_SIZE_MAX) {
        return CAIRN_ETOOBIG;
    }
    rv = meta__name_check(op->name);
    if (rv != 0) {
        return rv;
    }
    rv = meta__ns_access(tx, op->ns, op->parent, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    meta_record_free(ns);
    upload_key(tx->sm, op->upload_id.data, &key);
    rv = meta__exists(tx->sm, &key);
    if (rv != CAIRN_ENOENT) {
        return rv == 0 ? CAIRN_EEXIST : rv;
    }
    upload.id = op->upload_id;
    upload.ns = op->ns;
    upload.parent = op->parent;
    upload.name = op->name;
    upload.state = CAIRN__CMD__UPLOAD_STATE__UPLOAD_PENDING;
    upload.expires_ms = op->expires_ms;
    upload.user = tx->actor;
    upload.size = op->size;
    upload.base_given = op->base_given;
    upload.base_version = op->base_version;
    return meta__put_msg(tx, &key, &upload.base);
}

/* Loads a pending, unexpired session. */
static int upload_pending(struct meta__tx *tx,
                          const ProtobufCBinaryData *id,
                          struct meta__key *key,
                          Cairn__Cmd__Upload **upload)
{
    int rv;

    if (id->len != META_UPLOAD_ID_SIZE) {
        return CAIRN_EINVAL;
    }
    upload_key(tx->sm, id->data, key);
    rv = meta__get_msg(tx->sm, key, &cairn__cmd__upload__descriptor, (void **)upload);
    if (rv != 0) {
        return rv;
    }
    if ((*upload)->state != CAIRN__CMD__UPLOAD_STATE__UPLOAD_PENDING) {
        rv = CAIRN_EINVAL;
    } else if (tx->time_ms >= (*upload)->expires_ms) {
        rv = CAIRN_EEXPIRED;
    } else if (tx->actor != 0 && tx->actor != (*upload)->user) {
        rv = CAIRN_EPERM;
    }
    if (rv != 0) {
        meta_record_free(*upload);
        *upload = NULL;
    }
    return rv;
}

static void upload_chunk_key(struct meta_sm *sm,
                             const uint8_t *id,
                             uint64_t offset,
                             struct meta__key *key)
{
    meta__key_init(key, sm, META__T_UPLOAD_CHUNK);
    meta__key_bytes(key, id, META_UPLOAD_ID_SIZE);
    meta__key_u64(key, offset);
}

int meta__op_upload_append(struct meta__tx *tx, const Cairn__Cmd__UploadAppend *op)
{
    Cairn__Cmd__Upload *upload;
    struct meta__key key, chunk_key_;
    uint64_t end = op->offset;
    int rv;

    rv = upload_pending(tx, &op->upload_id, &key, &upload);
    if (rv != 0) {
        return rv;
    }
    if (op->offset != upload->offset) {
        rv = CAIRN_ECONFLICT; /* a stale or overlapping append: HEAD for the offset */
        goto out;
    }
    for (size_t i = 0; i < op->n_chunks; i++) {
        const Cairn__Cmd__ChunkRef *chunk = op->chunks[i];
        if (chunk->chunk_id.len != META_CHUNK_ID_SIZE || chunk->offset != end || chunk->size == 0) {
            rv = CAIRN_EINVAL; /* they tile on from the offset, in order */
            goto out;
        }
        end += chunk->size;
    }
    if (end > upload->size || upload->chunk_count + op->n_chunks > META_UPLOAD_CHUNKS_MAX) {
        rv = CAIRN_ETOOBIG; /* past the declared length */
        goto out;
    }
    for (size_t i = 0; rv == 0 && i < op->n_chunks; i++) {
        upload_chunk_key(tx->sm, op->upload_id.data, op->chunks[i]->offset, &chunk_key_);
        rv = meta__put_msg(tx, &chunk_key_, &op->chunks[i]->base);
    }
    upload->offset = end;
    upload->chunk_count += op->n_chunks;
    if (rv == 0) {
        rv = meta__put_msg(tx, &key, &upload->base);
    }
    tx->value = end;
out:
    meta_record_free(upload);
    return rv;
}

/* The chunks of a session, read into a list (free with chunks_free()). */
struct chunks {
    Cairn__Cmd__ChunkRef **refs;
    size_t count;
    size_t cap;
};

static void chunks_free(struct chunks *chunks)
{
    for (size_t i = 0; i < chunks->count; i++) {
        meta_record_free(chunks->refs[i]);
    }
    free(chunks->refs);
    chunks->refs = NULL;
    chunks->count = 0;
}

/* Visits the chunk keys of session id: keeps them in chunks (if not NULL)
 * and deletes them (if tx is not NULL). */
static int upload_chunks_scan(struct meta_sm *sm,
                              struct meta__tx *tx,
                              const uint8_t *id,
                              struct chunks *chunks)
{
    Cairn__Cmd__ChunkRef *ref;
    struct meta__iter iter;
    struct meta__key prefix, key;
    const uint8_t *k, *v;
    size_t len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_UPLOAD_CHUNK);
    meta__key_bytes(&prefix, id, META_UPLOAD_ID_SIZE);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        if (tx != NULL) {
            k = meta__iter_key(&iter, &len);
            key.len = len;
            memcpy(key.bytes, k, len);
            meta__del(tx, &key);
        }
        if (chunks == NULL) {
            continue;
        }
        v = meta__iter_value(&iter, &len);
        ref = cairn__cmd__chunk_ref__unpack(NULL, len, v);
        if (ref == NULL) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "upload chunk: malformed");
            break;
        }
        if (chunks->count == chunks->cap) {
            chunks->cap = chunks->cap == 0 ? 64 : chunks->cap * 2;
            chunks->refs = cn_xrealloc(chunks->refs, chunks->cap * sizeof(*chunks->refs));
        }
        chunks->refs[chunks->count++] = ref;
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

/* The version to commit: the command's, or with no chunks in a session of
 * declared length, the session's chunks (all of them must be there). */
static int upload_version(struct meta__tx *tx,
                          const Cairn__Cmd__Upload *upload,
                          const Cairn__Cmd__Version *given,
                          Cairn__Cmd__Version *version,
                          struct chunks *chunks)
{
    int rv;

    *version = *given; /* shallow */
    if (upload->size == 0) {
        return 0; /* a simple upload: the command says it all */
    }
    if (given->size != upload->size) {
        return CAIRN_EINVAL;
    }
    if (given->n_chunks == 0) {
        if (upload->offset != upload->size) {
            return CAIRN_EINVAL; /* not all stored yet */
        }
        rv = upload_chunks_scan(tx->sm, NULL, upload->id.data, chunks);
        if (rv != 0) {
            return rv;
        }
        if (chunks->count != upload->chunk_count) {
            return cn_errmsgf(tx->sm->errmsg, CAIRN_ECORRUPT,
                              "upload: %zu chunks stored, not %" PRIu64, chunks->count,
                              upload->chunk_count);
        }
        version->n_chunks = chunks->count;
        version->chunks = chunks->refs;
    }
    return 0;
}

/* Commits version to the file named by the session, creating it if needed. */
static int upload_commit(struct meta__tx *tx,
                         Cairn__Cmd__Upload *upload,
                         const Cairn__Cmd__UploadComplete *op)
{
    struct chunks chunks = {0};
    Cairn__Cmd__Version version;
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *inode;
    uint64_t id, base = 0;
    int rv;

    rv = meta__ns_access(tx, upload->ns, upload->parent, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    rv = upload_version(tx, upload, op->version, &version, &chunks);
    if (rv != 0) {
        goto out;
    }
    rv = meta_lookup(tx->sm, upload->ns, upload->parent, upload->name, &id);
    if (rv == CAIRN_ENOENT) {
        /* A session begun against a version expects the file to be there. */
        rv = upload->base_given && upload->base_version != 0 ? CAIRN_ECONFLICT : 0;
        id = op->inode;
        if (rv == 0) {
            rv = meta__file_create(tx, ns, upload->parent, upload->name, id);
        }
    } else if (rv == 0 && (rv = meta_get_inode(tx->sm, upload->ns, id, &inode)) == 0) {
        base = inode->version;
        meta_record_free(inode);
        if (upload->base_given && upload->base_version != base) {
            rv = CAIRN_ECONFLICT; /* the file moved on since the session began */
        }
    }
    /* The batch has an overlay, so a file created just now is visible here. */
    if (rv == 0) {
        rv = meta__file_commit(tx, ns, id, base, &version, &tx->value);
    }
    if (rv == 0) {
        upload->inode = id;
        rv = meta__ns_put(tx, ns);
    }
out:
    chunks_free(&chunks);
    meta_record_free(ns);
    return rv;
}

int meta__op_upload_complete(struct meta__tx *tx, const Cairn__Cmd__UploadComplete *op)
{
    Cairn__Cmd__Upload *upload;
    struct meta__key key;
    int rv;

    if (op->version == NULL) {
        return CAIRN_EINVAL;
    }
    rv = upload_pending(tx, &op->upload_id, &key, &upload);
    if (rv != 0) {
        return rv;
    }
    rv = upload_commit(tx, upload, op);
    if (rv == 0) {
        rv = upload_chunks_scan(tx->sm, tx, upload->id.data, NULL); /* the version has them */
    }
    if (rv == 0) {
        upload->state = CAIRN__CMD__UPLOAD_STATE__UPLOAD_UPLOADED;
        upload->chunk_count = 0;
        rv = meta__put_msg(tx, &key, &upload->base);
    }
    meta_record_free(upload);
    return rv;
}

int meta__op_upload_abort(struct meta__tx *tx, const Cairn__Cmd__UploadAbort *op)
{
    Cairn__Cmd__Upload *upload;
    struct meta__key key;
    int rv;

    rv = upload_pending(tx, &op->upload_id, &key, &upload);
    if (rv == CAIRN_EEXPIRED) {
        /* An expired session may still be aborted: that is how it is reaped. */
        rv = meta__get_msg(tx->sm, &key, &cairn__cmd__upload__descriptor, (void **)&upload);
    }
    if (rv != 0) {
        return rv;
    }
    rv = upload_chunks_scan(tx->sm, tx, upload->id.data, NULL); /* dropped */
    upload->state = CAIRN__CMD__UPLOAD_STATE__UPLOAD_ABORTED;
    upload->chunk_count = 0;
    if (rv == 0) {
        rv = meta__put_msg(tx, &key, &upload->base);
    }
    meta_record_free(upload);
    return rv;
}

/* ---- Reads ---- */

int meta_get_chunk(struct meta_sm *sm, const uint8_t *chunk_id, Cairn__Cmd__Chunk **record)
{
    struct meta__key key;

    chunk_key(sm, chunk_id, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__chunk__descriptor, (void **)record);
}

int meta_upload_chunks(struct meta_sm *sm,
                       const uint8_t *upload_id,
                       meta_chunk_ref_cb cb,
                       void *data)
{
    Cairn__Cmd__ChunkRef *ref;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_UPLOAD_CHUNK);
    meta__key_bytes(&prefix, upload_id, META_UPLOAD_ID_SIZE);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        ref = cairn__cmd__chunk_ref__unpack(NULL, len, v);
        if (ref == NULL) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "upload chunk: malformed");
            break;
        }
        rv = cb(data, ref);
        meta_record_free(ref);
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

int meta_get_upload(struct meta_sm *sm, const uint8_t *upload_id, Cairn__Cmd__Upload **record)
{
    struct meta__key key;

    upload_key(sm, upload_id, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__upload__descriptor, (void **)record);
}
