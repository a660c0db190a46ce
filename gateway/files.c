/*
 * Files and folders without content (docs/api.md, "Files and folders"):
 * stat, list, mkdir, move, delete to the trash, the trash (list it, restore
 * and purge by id, empty it), versions and version restore. Each is a short chain of metadata
 * calls: resolve the path (MetaRead resolve, as the caller, so the node checks the caller's rights
 * and answers ENOENT for what the caller cannot see), then one proposal to the namespace's group,
 * whose apply checks the rights again.
 *
 * Possible failure modes: a bad path (400 before any call); a path that does
 * not exist or that the caller cannot see (404); a name taken (409); a
 * viewer that writes (403); metadata unreachable (503).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

/* ---- Stat ---- */

static void answer_entry(struct gw_call *call,
                         int status,
                         const Cairn__Cmd__Inode *inode,
                         const Cairn__Cmd__Version *version)
{
    json_t *body = gw_entry_json(call->path, inode, version);

    gw__call_json(call, status, body);
    json_decref(body);
}

/* Keeps a copy of inode in call->rec (replies live only during their callback). */
void gw__keep_inode(struct gw_call *call, const Cairn__Cmd__Inode *inode)
{
    cairn__cmd__inode__init(&call->rec);
    call->rec.id = inode->id;
    call->rec.parent = inode->parent;
    call->rec.kind = inode->kind;
    call->rec.version = inode->version;
    call->rec.modified_ms = inode->modified_ms;
    call->rec.trashed = inode->trashed;
    snprintf(call->rec_name, sizeof(call->rec_name), "%s", inode->name != NULL ? inode->name : "");
    call->rec.name = call->rec_name;
}

static void kept_version_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    if (rv != 0 && rv != CAIRN_ENOENT) {
        gw__call_error(call, rv, "cannot read %s", call->path);
        return;
    }
    answer_entry(call, call->status, &call->rec, rv == 0 ? reply->version : NULL);
}

/* Answers the entry of call->rec, with its current version's size. */
void gw__answer_kept(struct gw_call *call, int status)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__VersionQuery version = CAIRN__WIRE__VERSION_QUERY__INIT;

    call->status = status;
    if (call->rec.version == 0) {
        answer_entry(call, status, &call->rec, NULL);
        return;
    }
    version.ns = call->ns;
    version.inode = call->rec.id;
    version.version = call->rec.version;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_VERSION;
    query.version = &version;
    gw__call_read(call, &query, kept_version_cb);
}

static void inode_read_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "cannot read %s", call->path);
        return;
    }
    gw__keep_inode(call, reply->inode);
    gw__answer_kept(call, call->status);
}

/* Answers the entry of inode (read afresh) with status. */
void gw__answer_inode(struct gw_call *call, int status, uint64_t inode)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__InodeRef ref = CAIRN__WIRE__INODE_REF__INIT;

    ref.ns = call->ns;
    ref.inode = inode;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_INODE;
    query.inode = &ref;
    call->status = status;
    gw__call_read(call, &query, inode_read_cb);
}

static void stat_resolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such file or folder: %s", call->path);
        return;
    }
    gw__keep_inode(call, reply->inode);
    gw__answer_kept(call, 200);
}

static void stat_authed(struct gw_call *call)
{
    if (gw__call_target(call, "/v1/meta")) {
        gw__resolve(call, call->path, stat_resolved);
    }
}

static void stat_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, stat_authed);
}

/* ---- List ---- */

static void list_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    json_t *body, *entries;
    char child[GW_PATH_SIZE_MAX + GW_NAME_SIZE_MAX + 2];

    if (rv != 0) {
        gw__call_error(call, rv, "cannot list %s", call->path);
        return;
    }
    entries = json_array();
    for (size_t i = 0; i < reply->n_entries; i++) {
        const Cairn__Wire__ListEntry *entry = reply->entries[i];

        if (entry->inode == NULL) {
            continue;
        }
        snprintf(child, sizeof(child), "%s%s%s", call->path, call->path[0] != '\0' ? "/" : "",
                 entry->name);
        json_array_append_new(entries, gw_entry_json(child, entry->inode, entry->version));
    }
    body = json_pack("{s:o, s:o}", "entries", entries, "next",
                     reply->more && reply->n_entries > 0
                         ? json_string(reply->entries[reply->n_entries - 1]->name)
                         : json_null());
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void list_resolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__ListQuery list = CAIRN__WIRE__LIST_QUERY__INIT;
    char limit[16];
    uint64_t n = 1000;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such folder: %s", call->path);
        return;
    }
    if (reply->inode->kind != CAIRN__CMD__INODE_KIND__INODE_DIR) {
        gw__call_error(call, CAIRN_ENOTDIR, "not a folder: %s", call->path);
        return;
    }
    rv = gw_query_get(gw_req_query(call->req), "after", call->name, sizeof(call->name));
    if (rv != 0 && rv != CAIRN_ENOENT) {
        gw__call_error(call, CAIRN_EINVAL, "bad after");
        return;
    }
    if (rv == CAIRN_ENOENT) {
        call->name[0] = '\0';
    }
    rv = gw_query_get(gw_req_query(call->req), "limit", limit, sizeof(limit));
    if (rv == 0 && (gw_parse_u64(limit, &n) != 0 || n == 0 || n > 1000)) {
        gw__call_error(call, CAIRN_EINVAL, "limit: 1..1000");
        return;
    }
    list.ns = call->ns;
    list.parent = reply->inode->id;
    list.after = call->name;
    list.limit = (uint32_t)n;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_LIST;
    query.list = &list;
    gw__call_read(call, &query, list_cb);
}

static void list_authed(struct gw_call *call)
{
    if (gw__call_target(call, "/v1/list")) {
        gw__resolve(call, call->path, list_resolved);
    }
}

static void list_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, list_authed);
}

/* ---- Mkdir ---- */

static void mkdir_cb(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, rv == CAIRN_EEXIST ? "%s exists" : "cannot make the folder %s",
                       call->path);
        return;
    }
    gw__answer_inode(call, 201, call->inode); /* read back: its time is apply's */
}

static void mkdir_parent(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Mkdir mkdir = CAIRN__CMD__MKDIR__INIT;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "the parent of %s does not exist",
                       call->path);
        return;
    }
    call->parent = reply->inode->id;
    call->inode = gw__random_id(false);
    mkdir.ns = call->ns;
    mkdir.parent = call->parent;
    mkdir.name = call->name;
    mkdir.inode = call->inode;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
    cmd.mkdir = &mkdir;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, mkdir_cb);
}

/* Resolves the parent of call->path and keeps its last name in call->name. */
static void resolve_parent(struct gw_call *call, gw_read_fn cb)
{
    char buf[GW_PATH_SIZE_MAX + 1];
    const char *parent, *name;

    if (gw_path_split(call->path, buf, &parent, &name) != 0) {
        gw__call_error(call, CAIRN_EINVAL, "the root has no name");
        return;
    }
    snprintf(call->name, sizeof(call->name), "%s", name);
    gw__resolve(call, parent, cb);
}

static void mkdir_authed(struct gw_call *call)
{
    if (gw__call_target(call, "/v1/folders")) {
        resolve_parent(call, mkdir_parent);
    }
}

static void mkdir_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, mkdir_authed);
}

/* ---- Move ---- */

struct move {
    char to[GW_PATH_SIZE_MAX + 1];
};

static void move_free(struct gw_call *call)
{
    free(call->op);
}

static void move_done(struct gw_call *call, int rv, uint64_t value)
{
    struct move *move = call->op;

    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, rv == CAIRN_EEXIST ? "%s exists" : "cannot move to %s", move->to);
        return;
    }
    snprintf(call->path, sizeof(call->path), "%s", move->to);
    gw__resolve(call, call->path, stat_resolved);
}

static void move_to_parent(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Rename rename = CAIRN__CMD__RENAME__INIT;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "the new parent does not exist");
        return;
    }
    rename.ns = call->ns;
    rename.inode = call->inode;
    rename.new_parent = reply->inode->id;
    rename.new_name = call->name;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_RENAME;
    cmd.rename = &rename;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, move_done);
}

static void move_from(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct move *move = call->op;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such file or folder: %s", call->path);
        return;
    }
    call->inode = reply->inode->id;
    snprintf(call->path, sizeof(call->path), "%s", move->to);
    resolve_parent(call, move_to_parent);
}

static void move_body(struct gw_call *call)
{
    const char *from = json_string_value(json_object_get(call->json, "from"));
    const char *to = json_string_value(json_object_get(call->json, "to"));
    struct move *move;

    if (from == NULL || to == NULL) {
        gw__call_error(call, CAIRN_EINVAL, "want {\"from\": PATH, \"to\": PATH}");
        return;
    }
    move = cn_xcalloc(1, sizeof(*move));
    call->op = move;
    call->op_free = move_free;
    /* JSON paths are plain text: a '%' is a name's character, not an escape. */
    if (strchr(from, '%') != NULL || strchr(to, '%') != NULL ||
        gw_path_decode(from, call->path, sizeof(call->path)) != 0 ||
        gw_path_decode(to, move->to, sizeof(move->to)) != 0 || call->path[0] == '\0' ||
        move->to[0] == '\0') {
        gw__call_error(call, CAIRN_EINVAL, "bad path (names 1..255 bytes, no NUL, '.', '..')");
        return;
    }
    gw__resolve(call, call->path, move_from);
}

static void move_authed(struct gw_call *call)
{
    char root[64];

    if (gw_query_get(gw_req_query(call->req), "root", root, sizeof(root)) == CAIRN_ENOENT) {
        call->ns = gw__call_drive(call);
        call->root = GW_DRIVE_ROOT;
    } else if (!gw__call_target(call, "/v1/move")) {
        return;
    }
    gw__call_read_json(call, move_body);
}

static void move_handler(struct gw_req *req, void *data)
{
    if (strcmp(gw_req_path(req), "/v1/move") != 0) {
        gw_respond_error(req, CAIRN_ENOENT, "no such resource");
        return;
    }
    gw__call_auth(data, req, move_authed);
}

/* ---- Delete to the trash ---- */

static void done_204(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot change %s", call->path[0] != '\0' ? call->path : "it");
        return;
    }
    gw__call_status(call, 204);
}

static void delete_resolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Trash trash = CAIRN__CMD__TRASH__INIT;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such file or folder: %s", call->path);
        return;
    }
    trash.ns = call->ns;
    trash.inode = reply->inode->id;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_TRASH;
    cmd.trash = &trash;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, done_204);
}

static void delete_authed(struct gw_call *call)
{
    if (!gw__call_target(call, "/v1/files")) {
        return;
    }
    if (call->path[0] == '\0') {
        gw__call_error(call, CAIRN_EINVAL, "the root cannot be deleted");
        return;
    }
    gw__resolve(call, call->path, delete_resolved);
}

void gw__files_delete(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, delete_authed);
}

/* ---- Trash: restore and purge by id ---- */

static void restore_done(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot restore %" PRIu64, call->inode);
        return;
    }
    call->path[0] = '\0';
    gw__answer_inode(call, 200, call->inode);
}

/* ---- Trash: list and empty ---- */

#define TRASH_PAGE_MAX 1000u

/* A trash page's cursor: "PARENT-INODE" (decimal), the last entry's. */
static int trash_cursor_parse(const char *text, uint64_t *parent, uint64_t *inode)
{
    char buf[48];
    char *dash;

    if (strlen(text) >= sizeof(buf)) {
        return CAIRN_EINVAL;
    }
    snprintf(buf, sizeof(buf), "%s", text);
    dash = strchr(buf, '-');
    if (dash == NULL) {
        return CAIRN_EINVAL;
    }
    *dash = '\0';
    if (gw_parse_id(buf, parent) != 0 || gw_parse_id(dash + 1, inode) != 0) {
        return CAIRN_EINVAL;
    }
    return 0;
}

/* A trashed top as the API shows it: the entry, where it was and when. */
static json_t *trash_entry_json(const Cairn__Wire__TrashEntry *entry)
{
    json_t *json =
        gw_entry_json(entry->path != NULL ? entry->path : "", entry->inode, entry->version);

    json_object_set_new(json, "trashed_ms", json_integer((json_int_t)entry->inode->trashed_ms));
    return json;
}

static void trash_query(struct gw_call *call,
                        uint64_t after_parent,
                        uint64_t after_inode,
                        uint32_t limit,
                        gw_read_fn cb)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__TrashQuery trash = CAIRN__WIRE__TRASH_QUERY__INIT;

    trash.ns = call->ns;
    trash.after_parent = after_parent;
    trash.after_inode = after_inode;
    trash.limit = limit;
    query.group = node_ns_group(call->ns);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_TRASH;
    query.trash = &trash;
    gw__call_read(call, &query, cb);
}

static void trash_listed(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    json_t *body, *entries, *next = json_null();
    char cursor[48];

    if (rv != 0) {
        gw__call_error(call, rv, "cannot list the trash");
        return;
    }
    entries = json_array();
    for (size_t i = 0; i < reply->n_trash; i++) {
        if (reply->trash[i]->inode != NULL) {
            json_array_append_new(entries, trash_entry_json(reply->trash[i]));
        }
    }
    if (reply->more && reply->n_trash > 0 && reply->trash[reply->n_trash - 1]->inode != NULL) {
        const Cairn__Cmd__Inode *last = reply->trash[reply->n_trash - 1]->inode;

        snprintf(cursor, sizeof(cursor), "%" PRIu64 "-%" PRIu64, last->parent, last->id);
        json_decref(next);
        next = json_string(cursor);
    }
    body = json_pack("{s:o, s:o}", "entries", entries, "next", next);
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void trash_list(struct gw_call *call)
{
    uint64_t parent = 0, inode = 0, n = TRASH_PAGE_MAX;
    char after[48], limit[16];
    int rv;

    rv = gw_query_get(gw_req_query(call->req), "after", after, sizeof(after));
    if (rv != 0 && rv != CAIRN_ENOENT) {
        gw__call_error(call, CAIRN_EINVAL, "bad after (the \"next\" of the previous page)");
        return;
    }
    if (rv == 0 && trash_cursor_parse(after, &parent, &inode) != 0) {
        gw__call_error(call, CAIRN_EINVAL, "bad after (the \"next\" of the previous page)");
        return;
    }
    rv = gw_query_get(gw_req_query(call->req), "limit", limit, sizeof(limit));
    if (rv == 0 && (gw_parse_u64(limit, &n) != 0 || n == 0 || n > TRASH_PAGE_MAX)) {
        gw__call_error(call, CAIRN_EINVAL, "limit: 1..1000");
        return;
    }
    trash_query(call, parent, inode, (uint32_t)n, trash_listed);
}

/* Emptying the trash: a page of trashed tops at a time, one Purge each, in
 * order; an item that is gone already (purged with a folder above it, or by
 * another client) is not a failure. A failure is recorded and the rest goes
 * on, except when the metadata cannot be reached: then it stops there. */
struct trash_empty {
    uint64_t after_parent;
    uint64_t after_inode;
    bool more;
    uint64_t *ids;
    size_t count;
    size_t next;
    uint64_t purged;
    uint64_t gone;
    json_t *failed;
    int first_rv;
    bool stopped;
};

static void trash_empty_free(struct gw_call *call)
{
    struct trash_empty *empty = call->op;

    free(empty->ids);
    json_decref(empty->failed);
    free(empty);
}

static bool unreachable(int rv)
{
    return rv == CAIRN_EUNAVAIL || rv == CAIRN_ETIMEOUT || rv == CAIRN_ESHUTDOWN ||
           rv == CAIRN_ENOTLEADER || rv == CAIRN_ECANCELED;
}

static void trash_empty_fail(struct gw_call *call, uint64_t id, int rv)
{
    struct trash_empty *empty = call->op;
    char text[24];

    /* id 0: the listing of the next page failed (no item: "id" null). */
    snprintf(text, sizeof(text), "%" PRIu64, id);
    json_array_append_new(
        empty->failed, json_pack("{s:o, s:s, s:s}", "id", id != 0 ? json_string(text) : json_null(),
                                 "error", gw_error_code(rv), "message", cairn_strerror(rv)));
    if (empty->first_rv == 0) {
        empty->first_rv = rv;
    }
    empty->stopped = unreachable(rv);
}

static void trash_empty_answer(struct gw_call *call)
{
    struct trash_empty *empty = call->op;
    size_t failed = json_array_size(empty->failed);
    json_t *body;
    char message[256];
    int status;

    if (failed == 0) {
        body = json_pack("{s:I}", "purged", (json_int_t)empty->purged);
        gw__call_json(call, 200, body);
        json_decref(body);
        return;
    }
    /* The error shape every client knows, with what was done and what not. */
    status = gw_error_status(empty->first_rv);
    snprintf(message, sizeof(message),
             "the trash is not empty: %" PRIu64 " item(s) purged, %zu failed%s (first: %s)",
             empty->purged, failed, empty->stopped ? ", the rest not tried" : "",
             cairn_strerror(empty->first_rv));
    body = json_pack("{s:{s:s, s:s, s:i}, s:I, s:O}", "error", "code",
                     gw_error_code(empty->first_rv), "message", message, "status", status, "purged",
                     (json_int_t)empty->purged, "failed", empty->failed);
    gw__call_json(call, status, body);
    json_decref(body);
}

static void trash_empty_next(struct gw_call *call);

static void trash_empty_purged(struct gw_call *call, int rv, uint64_t value)
{
    struct trash_empty *empty = call->op;
    uint64_t id = empty->ids[empty->next++];

    (void)value;
    if (rv == 0) {
        empty->purged++;
    } else if (rv == CAIRN_ENOENT) {
        empty->gone++; /* went with a folder above it, or another client's purge */
    } else {
        trash_empty_fail(call, id, rv);
    }
    trash_empty_next(call);
}

static void trash_empty_page(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct trash_empty *empty = call->op;

    if (rv != 0) {
        if (empty->purged == 0 && json_array_size(empty->failed) == 0) {
            gw__call_error(call, rv, "cannot list the trash");
            return;
        }
        trash_empty_fail(call, 0, rv);
        empty->stopped = true;
        trash_empty_answer(call);
        return;
    }
    empty->count = 0;
    empty->next = 0;
    empty->ids = realloc(empty->ids, (reply->n_trash + 1) * sizeof(*empty->ids));
    CN_ASSERT(empty->ids != NULL);
    for (size_t i = 0; i < reply->n_trash; i++) {
        const Cairn__Cmd__Inode *inode = reply->trash[i]->inode;

        if (inode != NULL) {
            empty->ids[empty->count++] = inode->id;
            empty->after_parent = inode->parent;
            empty->after_inode = inode->id;
        }
    }
    empty->more = reply->more && empty->count > 0;
    trash_empty_next(call);
}

static void trash_empty_next(struct gw_call *call)
{
    struct trash_empty *empty = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Purge purge = CAIRN__CMD__PURGE__INIT;

    if (empty->stopped || (empty->next == empty->count && !empty->more)) {
        trash_empty_answer(call);
        return;
    }
    if (empty->next == empty->count) {
        /* After the page's last: what failed stays behind the cursor. */
        trash_query(call, empty->after_parent, empty->after_inode, TRASH_PAGE_MAX,
                    trash_empty_page);
        return;
    }
    purge.ns = call->ns;
    purge.inode = empty->ids[empty->next];
    cmd.op_case = CAIRN__CMD__COMMAND__OP_PURGE;
    cmd.purge = &purge;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, trash_empty_purged);
}

static void trash_empty(struct gw_call *call)
{
    struct trash_empty *empty = cn_xcalloc(1, sizeof(*empty));

    empty->failed = json_array();
    call->op = empty;
    call->op_free = trash_empty_free;
    trash_query(call, 0, 0, TRASH_PAGE_MAX, trash_empty_page);
}

static void trash_authed(struct gw_call *call)
{
    const char *rest = gw_req_path(call->req) + strlen("/v1/trash");
    const char *method = gw_req_method(call->req);
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Restore restore = CAIRN__CMD__RESTORE__INIT;
    Cairn__Cmd__Purge purge = CAIRN__CMD__PURGE__INIT;
    char id[24];
    const char *slash;
    size_t len;

    call->ns = gw__call_drive(call);
    call->path[0] = '\0';
    if (*rest == '\0' && strcmp(method, "GET") == 0) {
        trash_list(call);
        return;
    }
    if (*rest == '\0' && strcmp(method, "DELETE") == 0) {
        trash_empty(call);
        return;
    }
    if (*rest != '/') {
        gw__call_error(call, CAIRN_ENOENT, "no such resource");
        return;
    }
    rest++;
    slash = strchr(rest, '/');
    len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    if (len == 0 || len >= sizeof(id)) {
        gw__call_error(call, CAIRN_EINVAL, "bad id");
        return;
    }
    memcpy(id, rest, len);
    id[len] = '\0';
    if (gw_parse_id(id, &call->inode) != 0) {
        gw__call_error(call, CAIRN_EINVAL, "bad id");
        return;
    }
    if (strcmp(method, "POST") == 0 && slash != NULL && strcmp(slash, "/restore") == 0) {
        restore.ns = call->ns;
        restore.inode = call->inode;
        cmd.op_case = CAIRN__CMD__COMMAND__OP_RESTORE;
        cmd.restore = &restore;
        gw__call_propose(call, node_ns_group(call->ns), &cmd, restore_done);
        return;
    }
    if (strcmp(method, "DELETE") == 0 && slash == NULL) {
        purge.ns = call->ns;
        purge.inode = call->inode;
        cmd.op_case = CAIRN__CMD__COMMAND__OP_PURGE;
        cmd.purge = &purge;
        gw__call_propose(call, node_ns_group(call->ns), &cmd, done_204);
        return;
    }
    gw__call_error(call, CAIRN_ENOENT, "no such resource");
}

static void trash_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, trash_authed);
}

/* ---- Versions ---- */

static void versions_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    json_t *list, *body;
    char etag[GW_ETAG_SIZE], user[24];

    if (rv != 0) {
        gw__call_error(call, rv, "cannot read the versions of %s", call->path);
        return;
    }
    list = json_array();
    for (size_t i = 0; i < reply->n_versions; i++) {
        const Cairn__Cmd__Version *version = reply->versions[i];

        gw_etag_format(call->inode, version->number, etag);
        snprintf(user, sizeof(user), "%" PRIu64, version->author_user);
        json_array_append_new(list, json_pack("{s:I, s:I, s:s, s:I, s:s, s:I}", "version",
                                              (json_int_t)version->number, "size",
                                              (json_int_t)version->size, "etag", etag, "time_ms",
                                              (json_int_t)version->time_ms, "author", user,
                                              "restored_from", (json_int_t)version->restored_from));
    }
    body = json_pack("{s:o}", "versions", list);
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void version_restored(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv,
                       rv == CAIRN_ECONFLICT ? "base version %" PRIu64 " is stale"
                                             : "cannot restore a version (base %" PRIu64 ")",
                       call->version);
        return;
    }
    gw__answer_inode(call, 200, call->inode);
}

static void versions_resolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__InodeRef ref = CAIRN__WIRE__INODE_REF__INIT;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__VersionRestore restore = CAIRN__CMD__VERSION_RESTORE__INIT;
    json_t *number, *base;

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such file: %s", call->path);
        return;
    }
    call->inode = reply->inode->id;
    if (call->json == NULL) {
        ref.ns = call->ns;
        ref.inode = call->inode;
        query.group = node_ns_group(call->ns);
        query.query_case = CAIRN__WIRE__META_READ__QUERY_VERSIONS;
        query.versions = &ref;
        gw__call_read(call, &query, versions_cb);
        return;
    }
    number = json_object_get(call->json, "restore");
    base = json_object_get(call->json, "base");
    if (!json_is_integer(number) || json_integer_value(number) <= 0 ||
        (base != NULL && (!json_is_integer(base) || json_integer_value(base) < 0))) {
        gw__call_error(call, CAIRN_EINVAL, "want {\"restore\": N, \"base\"?: M}");
        return;
    }
    call->version = base != NULL ? (uint64_t)json_integer_value(base) : reply->inode->version;
    restore.ns = call->ns;
    restore.inode = call->inode;
    restore.version = (uint64_t)json_integer_value(number);
    restore.base_version = call->version;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_VERSION_RESTORE;
    cmd.version_restore = &restore;
    gw__call_propose(call, node_ns_group(call->ns), &cmd, version_restored);
}

static void versions_body(struct gw_call *call)
{
    gw__resolve(call, call->path, versions_resolved);
}

static void versions_authed(struct gw_call *call)
{
    if (!gw__call_target(call, "/v1/versions")) {
        return;
    }
    if (strcmp(gw_req_method(call->req), "POST") == 0) {
        gw__call_read_json(call, versions_body);
        return;
    }
    gw__resolve(call, call->path, versions_resolved);
}

static void versions_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, versions_authed);
}

int gw__files_routes(struct gw_app *app)
{
    struct gw_router *r = app->router;
    int rv;

    rv = gw_router_add(r, "GET", "/v1/meta", stat_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "GET", "/v1/list", list_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "POST", "/v1/folders", mkdir_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "POST", "/v1/move", move_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "DELETE", "/v1/files", gw__files_delete, app);
    rv = rv != 0 ? rv : gw_router_add(r, "POST", "/v1/trash", trash_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "DELETE", "/v1/trash", trash_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "GET", "/v1/trash", trash_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "GET", "/v1/versions", versions_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "POST", "/v1/versions", versions_handler, app);
    return rv;
}
