/*
 * Resumable uploads: tus 1.0 (core, creation, termination) at /v1/uploads
 * (docs/api.md). The session lives in the metadata (an upload session in the
 * namespace's group), so any gateway continues it.
 *
 * An upload's URL is /v1/uploads/{ns as 16 hex}{session id as 32 hex}: the
 * namespace routes to the group that holds the session.
 *
 * POST (creation): Upload-Length (at most max_file_size) and Upload-Metadata
 * "path" (base64; and "root" for a shared item) → resolve the parent →
 * UploadBegin{id, ns, parent, name, expires, size} → 201 Location. A length
 * of 0 completes at once.
 *
 * PATCH, the happy path: Upload-Offset must equal the session's offset (409
 * otherwise); the body streams through the pipe (pipe.c) from that offset;
 * at its end the tail is stored too, then UploadAppend{id, offset, chunks}
 * records them, and when the offset reaches the length UploadComplete commits
 * the file (the answer carries Cairn-Version and ETag). 204 Upload-Offset.
 *
 * A PATCH cut short (client gone, timeout, broken chunked framing): the tail
 * is dropped, the chunks already on their way finish, and UploadAppend
 * records those, so the offset counts every byte durably stored; the client's
 * HEAD then says where to resume. The call outlives its request for this
 * (it becomes headless).
 *
 * A "base" in Upload-Metadata (a version number; 0: a new file) makes the
 * completion a compare-and-set: the session records it, and UploadComplete
 * is CAIRN_ECONFLICT (409) if the file moved on meanwhile, whichever gateway
 * receives the last byte. Without it, completion commits over whatever
 * version is current.
 *
 * Not supported (yet): Upload-Defer-Length, concatenation, checksums. The
 * file's content hash is left empty: one PATCH does not see the others' bytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "pipe.h"

#define TUS_VERSION "1.0.0"

struct tus {
    uint8_t id[16];
    bool creating;        /* POST: answer 201 with Location */
    bool pipe_finished;   /* pipe_done ran */
    uint64_t done_offset; /* the offset to answer */
    uint64_t length;
    uint64_t offset;   /* the session's, at the PATCH's start */
    uint64_t received; /* bytes of this PATCH */
    struct gw_pipe *pipe;
    bool broken;     /* the PATCH was cut short */
    bool base_given; /* Upload-Metadata "base": completion is a compare-and-set */
    uint64_t base;   /* the version the upload replaces (0: a new file) */
};

static void tus_free(struct gw_call *call)
{
    struct tus *tus = call->op;

    gw__pipe_close(tus->pipe);
    free(tus);
}

static void tus_headers(struct gw_call *call)
{
    if (call->req != NULL) {
        gw_resp_header(call->req, "Tus-Resumable", TUS_VERSION);
        gw_resp_header(call->req, "Cache-Control", "no-store");
    }
}

static void header_u64(struct gw_call *call, const char *name, uint64_t value)
{
    char text[24];

    if (call->req != NULL) {
        snprintf(text, sizeof(text), "%" PRIu64, value);
        gw_resp_header(call->req, name, text);
    }
}

/* Parses "/v1/uploads/{16 hex ns}{32 hex id}" into call->ns and tus->id. */
static bool parse_location(struct gw_call *call, struct tus *tus)
{
    const char *rest = gw_req_path(call->req) + strlen("/v1/uploads");
    uint8_t ns[8];
    char ns_hex[17];

    if (*rest != '/' || strlen(rest + 1) != 48) {
        return false;
    }
    memcpy(ns_hex, rest + 1, 16);
    ns_hex[16] = '\0';
    if (cn_hex_decode(ns_hex, ns, 8) != 0 || gw_upload_id_parse(rest + 17, tus->id) != 0) {
        return false;
    }
    call->ns = 0;
    for (unsigned i = 0; i < 8; i++) {
        call->ns = call->ns << 8 | ns[i];
    }
    return node_ns_group(call->ns) >= 1 && node_ns_group(call->ns) <= call->app->data_groups;
}

static bool check_version(struct gw_call *call)
{
    const char *version = gw_req_header(call->req, "Tus-Resumable");

    if (version == NULL || strcmp(version, TUS_VERSION) != 0) {
        gw_resp_header(call->req, "Tus-Version", TUS_VERSION);
        gw_respond_status(call->req, 412, "precondition_failed", "want Tus-Resumable: 1.0.0");
        return false;
    }
    return true;
}

/* ---- Completion (PATCH reaching the end, or POST of length 0) ---- */

/* Answers a creation (201 Location) or a PATCH (204), with the offset. */
static void completed_cb(struct gw_call *call, int rv, uint64_t value)
{
    struct tus *tus = call->op;

    if (call->headless) {
        gw__call_finish(call);
        return;
    }
    if (rv != 0) {
        gw__call_error(call, rv, "cannot complete the upload");
        return;
    }
    tus_headers(call);
    header_u64(call, "Upload-Offset", tus->done_offset);
    if (value != 0) {
        call->app->stats.uploads++;
        header_u64(call, "Cairn-Version", value);
    }
    if (tus->creating && call->req != NULL) {
        char location[80], ns[17], id[33];

        for (int i = 0; i < 8; i++) {
            snprintf(ns + 2 * i, 3, "%02x", (unsigned)(call->ns >> (56 - 8 * i)) & 0xff);
        }
        gw_upload_id_format(tus->id, id);
        snprintf(location, sizeof(location), "/v1/uploads/%s%s", ns, id);
        gw_resp_header(call->req, "Location", location);
    }
    gw__call_status(call, tus->creating ? 201 : 204);
}

static void upload_read_for_etag(struct gw_call *call,
                                 int rv,
                                 const Cairn__Wire__MetaReadReply *reply)
{
    char etag[GW_ETAG_SIZE];

    if (rv == 0 && reply->upload != NULL && reply->upload->inode != 0 && call->req != NULL) {
        gw_etag_format(reply->upload->inode, call->version, etag);
        gw_resp_header(call->req, "ETag", etag);
    }
    completed_cb(call, 0, call->version);
}

static void complete_done(struct gw_call *call, int rv, uint64_t value)
{
    struct tus *tus = call->op;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;

    if (rv != 0 || call->headless) {
        completed_cb(call, rv, value);
        return;
    }
    call->version = value;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_UPLOAD;
    query.upload.data = tus->id;
    query.upload.len = sizeof(tus->id);
    gw__call_read(call, &query, upload_read_for_etag);
}

static void complete(struct gw_call *call)
{
    struct tus *tus = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__UploadComplete done = CAIRN__CMD__UPLOAD_COMPLETE__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;

    version.size = tus->length;
    tus->done_offset = tus->length;
    done.upload_id.data = tus->id;
    done.upload_id.len = sizeof(tus->id);
    done.inode = gw__random_id(false);
    done.version = &version;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_COMPLETE;
    cmd.upload_complete = &done;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, complete_done);
}

/* ---- Creation ---- */

static void begun_cb(struct gw_call *call, int rv, uint64_t value)
{
    struct tus *tus = call->op;

    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot start the upload");
        return;
    }
    if (tus->length == 0) {
        complete(call);
        return;
    }
    tus->done_offset = 0;
    completed_cb(call, 0, 0); /* 201 with Location; no version yet */
}

static void create_parent(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct tus *tus = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__UploadBegin begin = CAIRN__CMD__UPLOAD_BEGIN__INIT;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "the parent of %s does not exist",
                       call->path);
        return;
    }
    if (reply->inode->kind != CAIRN__CMD__INODE_KIND__INODE_DIR) {
        gw__call_error(call, CAIRN_ENOTDIR, "the parent of %s is not a folder", call->path);
        return;
    }
    randombytes_buf(tus->id, sizeof(tus->id));
    begin.upload_id.data = tus->id;
    begin.upload_id.len = sizeof(tus->id);
    begin.ns = call->ns;
    begin.parent = reply->inode->id;
    begin.name = call->name;
    begin.expires_ms =
        cn_clock_system()->wall_ms(cn_clock_system()) + call->app->config.upload_ttl_ms;
    begin.size = tus->length;
    begin.base_given = tus->base_given;
    begin.base_version = tus->base;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_BEGIN;
    cmd.upload_begin = &begin;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, begun_cb);
}

static void create_authed(struct gw_call *call)
{
    const char *meta = gw_req_header(call->req, "Upload-Metadata");
    char raw[GW_PATH_SIZE_MAX + 1], root[64], buf[GW_PATH_SIZE_MAX + 1];
    const char *parent, *name;
    struct tus *tus;
    int rv;

    if (!check_version(call)) {
        return;
    }
    tus = cn_xcalloc(1, sizeof(*tus));
    tus->creating = true;
    call->op = tus;
    call->op_free = tus_free;
    if (gw_req_header(call->req, "Upload-Defer-Length") != NULL) {
        gw__call_error(call, CAIRN_EUNSUPPORTED, "Upload-Defer-Length is not supported");
        return;
    }
    if (gw_parse_u64(gw_req_header(call->req, "Upload-Length"), &tus->length) != 0) {
        gw__call_error(call, CAIRN_EINVAL, "want Upload-Length: N");
        return;
    }
    if (tus->length > call->app->config.file_size_max) {
        gw__call_error(call, CAIRN_ETOOBIG, "a file is at most %" PRIu64 " bytes",
                       call->app->config.file_size_max);
        return;
    }
    if (meta == NULL || gw_tus_metadata_get(meta, "path", raw, sizeof(raw)) != 0 ||
        strchr(raw, '%') != NULL || gw_path_decode(raw, call->path, sizeof(call->path)) != 0 ||
        gw_path_split(call->path, buf, &parent, &name) != 0) {
        gw__call_error(call, CAIRN_EINVAL, "want Upload-Metadata with a valid path (base64)");
        return;
    }
    snprintf(call->name, sizeof(call->name), "%s", name);
    rv = gw_tus_metadata_get(meta, "base", raw, sizeof(raw));
    if (rv == 0) {
        /* The version this upload replaces (0: only if there is none yet):
         * checked when the last byte commits, against whatever is current. */
        if (gw_parse_u64(raw, &tus->base) != 0) {
            gw__call_error(call, CAIRN_EINVAL, "bad base version in Upload-Metadata");
            return;
        }
        tus->base_given = true;
    } else if (rv != CAIRN_ENOENT) {
        gw__call_error(call, CAIRN_EINVAL, "bad base version in Upload-Metadata");
        return;
    }
    call->ns = gw__call_drive(call);
    call->root = GW_DRIVE_ROOT;
    rv = gw_tus_metadata_get(meta, "root", root, sizeof(root));
    if (rv == 0) {
        char *dot = strchr(root, '.');

        if (dot == NULL) {
            gw__call_error(call, CAIRN_EINVAL, "bad root");
            return;
        }
        *dot = '\0';
        if (gw_parse_id(root, &call->ns) != 0 || gw_parse_id(dot + 1, &call->root) != 0 ||
            node_ns_group(call->ns) == 0 || node_ns_group(call->ns) > call->app->data_groups) {
            gw__call_error(call, CAIRN_EINVAL, "bad root");
            return;
        }
    } else if (rv != CAIRN_ENOENT) {
        gw__call_error(call, CAIRN_EINVAL, "bad root");
        return;
    }
    gw__resolve(call, parent, create_parent);
}

/* ---- HEAD ---- */

static void head_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    const Cairn__Cmd__Upload *upload;

    if (rv != 0 || reply->upload == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such upload");
        return;
    }
    upload = reply->upload;
    if (upload->user != call->user || upload->state == CAIRN__CMD__UPLOAD_STATE__UPLOAD_ABORTED) {
        gw__call_error(call, CAIRN_ENOENT, "no such upload");
        return;
    }
    tus_headers(call);
    header_u64(call, "Upload-Offset",
               upload->state == CAIRN__CMD__UPLOAD_STATE__UPLOAD_UPLOADED ? upload->size
                                                                          : upload->offset);
    header_u64(call, "Upload-Length", upload->size);
    gw__call_status(call, 200);
}

static void read_session(struct gw_call *call, gw_read_fn cb)
{
    struct tus *tus = call->op;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;

    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_UPLOAD;
    query.upload.data = tus->id;
    query.upload.len = sizeof(tus->id);
    gw__call_read(call, &query, cb);
}

/* ---- PATCH ---- */

static void appended_cb(struct gw_call *call, int rv, uint64_t value)
{
    struct tus *tus = call->op;

    if (call->headless) {
        if (rv != 0) {
            CN_LOG(CN_WARN, "cannot record the chunks of a broken PATCH", "err=%s",
                   cairn_errname(rv));
        }
        gw__call_finish(call);
        return;
    }
    if (rv != 0) {
        gw__call_error(call, rv,
                       rv == CAIRN_ECONFLICT ? "another PATCH moved the offset: HEAD and resume"
                                             : "cannot record the upload's progress");
        return;
    }
    if (value == tus->length) {
        complete(call);
        return;
    }
    tus->done_offset = value;
    completed_cb(call, 0, 0);
}

static void aborted_cb(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot end the upload");
        return;
    }
    tus_headers(call);
    gw__call_status(call, 204);
}

static void pipe_done(void *data, int rv)
{
    struct gw_call *call = data;
    struct tus *tus = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__UploadAppend append = CAIRN__CMD__UPLOAD_APPEND__INIT;
    Cairn__Cmd__ChunkRef *refs, **list;
    const struct gw_chunk_ref *stored;
    size_t count;

    tus->pipe_finished = true;
    if (!gw__call_release(call)) {
        return;
    }
    stored = gw__pipe_refs(tus->pipe, &count);
    if (rv != 0 && count == 0) {
        if (call->headless) {
            gw__call_finish(call);
            return;
        }
        gw__call_error(call, rv, "cannot store the upload");
        return;
    }
    if (count == 0) {
        appended_cb(call, 0, tus->offset); /* an empty PATCH */
        return;
    }
    refs = cn_xcalloc(count, sizeof(*refs));
    list = cn_xcalloc(count, sizeof(*list));
    for (size_t i = 0; i < count; i++) {
        cairn__cmd__chunk_ref__init(&refs[i]);
        refs[i].chunk_id.data = (uint8_t *)stored[i].id;
        refs[i].chunk_id.len = STOR_ID_SIZE;
        refs[i].offset = stored[i].offset;
        refs[i].size = stored[i].size;
        list[i] = &refs[i];
    }
    append.upload_id.data = tus->id;
    append.upload_id.len = sizeof(tus->id);
    append.offset = tus->offset;
    append.n_chunks = count;
    append.chunks = list;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_APPEND;
    cmd.upload_append = &append;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, appended_cb);
    free(refs);
    free(list);
}

static void pipe_resume(void *data, int rv)
{
    struct gw_call *call = data;

    if (call->req == NULL) {
        return;
    }
    if (rv != 0) {
        gw__call_error(call, rv, "cannot store the upload");
        return;
    }
    gw_req_resume(call->req);
}

/* The request ended before the body did: keep what was stored. */
static void patch_gone(struct gw_call *call)
{
    struct tus *tus = call->op;

    if (tus->pipe == NULL || tus->pipe_finished || tus->broken) {
        return; /* no body yet, or the pipe already finished */
    }
    tus->broken = true;
    call->headless = true; /* the chain goes on without the request */
    gw__pipe_drain(tus->pipe);
}

static void patch_body(struct gw_req *req, const uint8_t *data, size_t len)
{
    struct gw_call *call = gw_req_data(req);
    struct tus *tus = call->op;

    tus->received += len;
    if (tus->offset + tus->received > tus->length) {
        gw_respond_error(req, CAIRN_ETOOBIG, "the body passes Upload-Length");
        return;
    }
    if (gw__pipe_write(tus->pipe, data, len)) {
        gw_req_pause(req);
    }
}

static void patch_end(struct gw_req *req, int rv)
{
    struct gw_call *call = gw_req_data(req);
    struct tus *tus = call->op;

    if (rv != 0) {
        tus->broken = true;
        call->headless = true; /* the server answers; the chain records what is stored */
        gw__pipe_drain(tus->pipe);
        return;
    }
    gw__pipe_flush(tus->pipe);
}

static void patch_session(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct tus *tus = call->op;
    const Cairn__Cmd__Upload *upload;
    uint64_t offset;
    int64_t declared = gw_req_content_length(call->req);

    if (rv != 0 || reply->upload == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such upload");
        return;
    }
    upload = reply->upload;
    if (upload->user != call->user || upload->state != CAIRN__CMD__UPLOAD_STATE__UPLOAD_PENDING) {
        gw__call_error(call, CAIRN_ENOENT, "no such upload (or no longer pending)");
        return;
    }
    offset = 0;
    (void)gw_parse_u64(gw_req_header(call->req, "Upload-Offset"), &offset);
    if (offset != upload->offset) {
        tus_headers(call);
        header_u64(call, "Upload-Offset", upload->offset);
        gw__call_error(call, CAIRN_ECONFLICT, "Upload-Offset %" PRIu64 " is not %" PRIu64, offset,
                       upload->offset);
        return;
    }
    tus->offset = upload->offset;
    tus->length = upload->size;
    if (declared > 0 && tus->offset + (uint64_t)declared > tus->length) {
        gw__call_error(call, CAIRN_ETOOBIG, "the body passes Upload-Length");
        return;
    }
    if (call->app->k == 0 || call->app->member_up_count == 0) {
        gw__call_error(call, CAIRN_EUNAVAIL, "no storage node is up");
        return;
    }
    rv = gw__pipe_new(call->app, call->ns, tus->offset, pipe_resume, pipe_done, call, &tus->pipe);
    if (rv != 0) {
        gw_resp_header(call->req, "Retry-After", "1");
        gw__call_error(call, CAIRN_EBUSY, "cannot start the upload pipeline");
        return;
    }
    gw__pipe_set_actor(tus->pipe, call->user);
    gw__call_hold(call); /* until pipe_done */
    call->on_gone = patch_gone;
    gw_req_read_body(call->req, patch_body, patch_end);
}

/* ---- Routing ---- */

static void head_or_patch_or_delete(struct gw_call *call)
{
    const char *method = gw_req_method(call->req);
    const char *type = gw_req_header(call->req, "Content-Type");
    struct tus *tus;

    if (!check_version(call)) {
        return;
    }
    tus = cn_xcalloc(1, sizeof(*tus));
    call->op = tus;
    call->op_free = tus_free;
    if (!parse_location(call, tus)) {
        gw__call_error(call, CAIRN_ENOENT, "no such upload");
        return;
    }
    if (strcmp(method, "HEAD") == 0) {
        read_session(call, head_cb);
        return;
    }
    if (strcmp(method, "PATCH") == 0) {
        uint64_t offset;

        if (type == NULL || strcmp(type, "application/offset+octet-stream") != 0) {
            gw_respond_status(call->req, 415, "unsupported_media_type",
                              "want Content-Type: application/offset+octet-stream");
            return;
        }
        if (gw_parse_u64(gw_req_header(call->req, "Upload-Offset"), &offset) != 0) {
            gw__call_error(call, CAIRN_EINVAL, "want Upload-Offset: N");
            return;
        }
        read_session(call, patch_session);
        return;
    }
    /* DELETE: termination. */
    {
        Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
        Cairn__Cmd__UploadAbort abort_ = CAIRN__CMD__UPLOAD_ABORT__INIT;

        abort_.upload_id.data = tus->id;
        abort_.upload_id.len = sizeof(tus->id);
        cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_ABORT;
        cmd.upload_abort = &abort_;
        gw__call_propose(call, node_ns_group(call->ns), &cmd, aborted_cb);
    }
}

static void uploads_handler(struct gw_req *req, void *data)
{
    const char *method = gw_req_method(req);
    char max[24];

    if (strcmp(method, "OPTIONS") == 0) {
        struct gw_app *app = data;

        snprintf(max, sizeof(max), "%" PRIu64, app->config.file_size_max);
        gw_resp_header(req, "Tus-Resumable", TUS_VERSION);
        gw_resp_header(req, "Tus-Version", TUS_VERSION);
        gw_resp_header(req, "Tus-Extension", "creation,termination");
        gw_resp_header(req, "Tus-Max-Size", max);
        gw_respond(req, 204, NULL, NULL, 0);
        return;
    }
    if (strcmp(method, "POST") == 0) {
        if (strcmp(gw_req_path(req), "/v1/uploads") != 0) {
            gw_respond_error(req, CAIRN_ENOENT, "no such resource");
            return;
        }
        gw__call_auth(data, req, create_authed);
        return;
    }
    gw__call_auth(data, req, head_or_patch_or_delete);
}

int gw__tus_routes(struct gw_app *app)
{
    static const char *const methods[] = {"OPTIONS", "POST", "HEAD", "PATCH", "DELETE"};
    int rv = 0;

    for (unsigned i = 0; i < 5 && rv == 0; i++) {
        rv = gw_router_add(app->router, methods[i], "/v1/uploads", uploads_handler, app);
    }
    return rv;
}
