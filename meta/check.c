/*
 * The invariant checker: a full scan of one group that reports the first
 * broken rule (meta_sm_check()). Tests run it after every step; an operator's
 * fsck may run it on a stopped replica.
 *
 * For each namespace it loads every inode (sorted by id, as the keys are),
 * then checks each table against them:
 *   - the root exists, is a folder and has no parent;
 *   - every other inode's parent exists and is a folder, and walking up
 *     reaches the root within depth_max steps (no cycle, not too deep);
 *   - a live inode has exactly its (parent, name) entry, a trashed top its
 *     trash entry, and every entry points back at an inode that agrees, so
 *     names are unique in a folder;
 *   - a folder's child_count is its number of entries;
 *   - versions are numbered increasingly, the newest is the inode's version and their count is
 * version_count;
 *   - used_bytes is the sum of the sizes of every kept version;
 *   - every grant is on an inode that exists, to a user who is not the
 *     owner, of viewer or editor;
 *   - the journal holds exactly the sequence numbers 1..journal_seq.
 *
 * Then, group-wide:
 *   - upload sessions: a pending one's chunk keys tile [0, offset) and
 *     number chunk_count, an ended one has none, and no other chunk keys;
 *   - the outbox: ids of this group, not past its counter; the inbox: each
 *     record under an existing drive namespace, matching its key;
 *   - the system group: every node id is below the cluster's counter, and
 *     the address index and the nodes that are not removed agree;
 *   - the request ids in memory are exactly the 'R' table's (dedup.c).
 *
 * Possible failure modes: a violation is CAIRN_ECORRUPT with its text in
 * errmsg; a store error CAIRN_EIO.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta_int.h"

struct node {
    Cairn__Cmd__Inode *inode;
    uint64_t entries;  /* dirents found under it */
    uint64_t versions; /* versions found */
    uint64_t last_version;
};

struct check {
    struct meta_sm *sm;
    Cairn__Cmd__Namespace *ns;
    struct node *nodes;
    size_t count;
    size_t cap;
    uint64_t used_bytes;  /* summed over the versions found */
    uint64_t journal_seq; /* the last event found */
    char *errmsg;
};

static struct node *node_find(struct check *check, uint64_t id)
{
    size_t lo = 0, hi = check->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t mid_id = check->nodes[mid].inode->id;
        if (mid_id == id) {
            return &check->nodes[mid];
        }
        if (mid_id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

#define FAIL(check, ...) cn_errmsgf((check)->errmsg, CAIRN_ECORRUPT, __VA_ARGS__)

/* Scans the keys of table for this namespace, calling fn for each. */
typedef int (*scan_fn)(
    struct check *check, const uint8_t *k, size_t k_len, const uint8_t *v, size_t v_len);

static int scan(struct check *check, enum meta__table table, scan_fn fn)
{
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, check->sm, table);
    meta__key_u64(&prefix, check->ns->id);
    meta__iter_init(&iter, check->sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        rv = fn(check, k + prefix.len, k_len - prefix.len, v, v_len);
    }
    close_rv = meta__iter_close(&iter, check->sm);
    return rv != 0 ? rv : close_rv;
}

static int load_inode(
    struct check *check, const uint8_t *k, size_t k_len, const uint8_t *v, size_t v_len)
{
    Cairn__Cmd__Inode *inode = cairn__cmd__inode__unpack(NULL, v_len, v);

    if (inode == NULL || k_len != 8 || meta__get_be64(k) != inode->id) {
        meta_record_free(inode);
        return FAIL(check, "ns=%" PRIu64 ": malformed inode", check->ns->id);
    }
    if (check->count == check->cap) {
        check->cap = check->cap == 0 ? 64 : check->cap * 2;
        check->nodes = cn_xrealloc(check->nodes, check->cap * sizeof(*check->nodes));
    }
    check->nodes[check->count++] = (struct node){.inode = inode};
    return 0;
}

static int check_path(struct check *check, const struct node *node)
{
    const struct node *at = node;
    uint32_t steps = 0;

    while (at->inode->id != check->ns->root_inode) {
        const struct node *parent = node_find(check, at->inode->parent);
        if (parent == NULL || parent->inode->kind != CAIRN__CMD__INODE_KIND__INODE_DIR) {
            return FAIL(check, "inode %" PRIu64 ": parent %" PRIu64 " missing or not a folder",
                        at->inode->id, at->inode->parent);
        }
        if (++steps > check->sm->limits.depth_max) {
            return FAIL(check, "inode %" PRIu64 ": deeper than %u, or a cycle", node->inode->id,
                        check->sm->limits.depth_max);
        }
        at = parent;
    }
    return 0;
}

static int check_entry_key(struct check *check, const struct node *node)
{
    struct meta__key key;
    uint64_t id;
    int rv;

    if (node->inode->trashed) {
        meta__key_init(&key, check->sm, META__T_TRASH);
        meta__key_u64(&key, check->ns->id);
        meta__key_u64(&key, node->inode->parent);
        meta__key_u64(&key, node->inode->id);
        rv = meta__exists(check->sm, &key);
    } else {
        rv = meta_lookup(check->sm, check->ns->id, node->inode->parent, node->inode->name, &id);
        if (rv == 0 && id != node->inode->id) {
            rv = CAIRN_ENOENT;
        }
    }
    if (rv == CAIRN_ENOENT) {
        return FAIL(check, "inode %" PRIu64 ": no entry for \"%s\" in %" PRIu64, node->inode->id,
                    node->inode->name, node->inode->parent);
    }
    return rv;
}

static int check_inodes(struct check *check)
{
    const struct node *root = node_find(check, check->ns->root_inode);
    int rv = 0;

    if (root == NULL || root->inode->kind != CAIRN__CMD__INODE_KIND__INODE_DIR ||
        root->inode->parent != 0 || root->inode->trashed) {
        return FAIL(check, "ns=%" PRIu64 ": bad root", check->ns->id);
    }
    for (size_t i = 0; rv == 0 && i < check->count; i++) {
        if (check->nodes[i].inode->id == check->ns->root_inode) {
            continue;
        }
        rv = check_path(check, &check->nodes[i]);
        if (rv == 0) {
            rv = check_entry_key(check, &check->nodes[i]);
        }
    }
    return rv;
}

static int check_dirent(
    struct check *check, const uint8_t *k, size_t k_len, const uint8_t *v, size_t v_len)
{
    struct node *parent, *child;

    if (k_len <= 8 || v_len != 8) {
        return FAIL(check, "ns=%" PRIu64 ": malformed entry", check->ns->id);
    }
    parent = node_find(check, meta__get_be64(k));
    child = node_find(check, meta__get_be64(v));
    if (parent == NULL || child == NULL || child->inode->trashed ||
        child->inode->parent != parent->inode->id || strlen(child->inode->name) != k_len - 8 ||
        memcmp(child->inode->name, k + 8, k_len - 8) != 0) {
        return FAIL(check, "ns=%" PRIu64 ": entry %.*s -> %" PRIu64 " disagrees with its inode",
                    check->ns->id, (int)(k_len - 8), (const char *)k + 8, meta__get_be64(v));
    }
    parent->entries++;
    return 0;
}

static int check_trash(
    struct check *check, const uint8_t *k, size_t k_len, const uint8_t *v, size_t v_len)
{
    struct node *child;

    (void)v;
    if (k_len != 16 || v_len != 0) {
        return FAIL(check, "ns=%" PRIu64 ": malformed trash entry", check->ns->id);
    }
    child = node_find(check, meta__get_be64(k + 8));
    if (child == NULL || !child->inode->trashed || child->inode->parent != meta__get_be64(k)) {
        return FAIL(check, "ns=%" PRIu64 ": trash entry %" PRIu64 " disagrees", check->ns->id,
                    meta__get_be64(k + 8));
    }
    return 0;
}

static int check_version(
    struct check *check, const uint8_t *k, size_t k_len, const uint8_t *v, size_t v_len)
{
    Cairn__Cmd__Version *version;
    struct node *node;
    int rv = 0;

    if (k_len != 16) {
        return FAIL(check, "ns=%" PRIu64 ": malformed version key", check->ns->id);
    }
    node = node_find(check, meta__get_be64(k));
    version = cairn__cmd__version__unpack(NULL, v_len, v);
    if (node == NULL || version == NULL || version->number != meta__get_be64(k + 8) ||
        version->number <= node->last_version || version->number > node->inode->version) {
        rv = FAIL(check, "ns=%" PRIu64 ": version %" PRIu64 " of %" PRIu64 " out of order",
                  check->ns->id, meta__get_be64(k + 8), meta__get_be64(k));
    } else {
        node->last_version = version->number;
        node->versions++;
        check->used_bytes += version->size;
    }
    meta_record_free(version);
    return rv;
}

static int check_event(
    struct check *check, const uint8_t *k, size_t k_len, const uint8_t *v, size_t v_len)
{
    uint64_t expect = check->journal_seq;
    Cairn__Cmd__Event *event = cairn__cmd__event__unpack(NULL, v_len, v);
    int rv = 0;

    if (event == NULL || k_len != 8 || meta__get_be64(k) != expect + 1 ||
        event->seq != expect + 1) {
        rv = FAIL(check, "ns=%" PRIu64 ": journal gap after %" PRIu64, check->ns->id, expect);
    }
    check->journal_seq = expect + 1;
    meta_record_free(event);
    return rv;
}

static int check_grant(
    struct check *check, const uint8_t *k, size_t k_len, const uint8_t *v, size_t v_len)
{
    Cairn__Cmd__AclEntry *entry = cairn__cmd__acl_entry__unpack(NULL, v_len, v);
    int rv = 0;

    if (entry == NULL || k_len != 16 || node_find(check, meta__get_be64(k)) == NULL ||
        entry->user != meta__get_be64(k + 8) || entry->user == 0 ||
        entry->user == check->ns->owner ||
        (entry->role != CAIRN__CMD__ROLE__ROLE_VIEWER &&
         entry->role != CAIRN__CMD__ROLE__ROLE_EDITOR)) {
        rv = FAIL(check, "ns=%" PRIu64 ": grant on %" PRIu64 " malformed or on no inode",
                  check->ns->id, k_len >= 8 ? meta__get_be64(k) : 0);
    }
    meta_record_free(entry);
    return rv;
}

static int check_counts(struct check *check)
{
    for (size_t i = 0; i < check->count; i++) {
        const struct node *node = &check->nodes[i];
        if (node->entries != node->inode->child_count) {
            return FAIL(check,
                        "folder %" PRIu64 ": child_count %" PRIu64 " but %" PRIu64 " entries",
                        node->inode->id, node->inode->child_count, node->entries);
        }
        if (node->versions != node->inode->version_count ||
            node->last_version != node->inode->version) {
            return FAIL(check, "inode %" PRIu64 ": versions disagree", node->inode->id);
        }
    }
    if (check->used_bytes != check->ns->used_bytes) {
        return FAIL(check, "ns=%" PRIu64 ": used_bytes %" PRIu64 " but versions hold %" PRIu64,
                    check->ns->id, check->ns->used_bytes, check->used_bytes);
    }
    return 0;
}

static int check_namespace(struct check *check)
{
    int rv;

    rv = scan(check, META__T_INODE, load_inode);
    if (rv == 0) {
        rv = check_inodes(check);
    }
    if (rv == 0) {
        rv = scan(check, META__T_DIRENT, check_dirent);
    }
    if (rv == 0) {
        rv = scan(check, META__T_TRASH, check_trash);
    }
    if (rv == 0) {
        rv = scan(check, META__T_VERSION, check_version);
    }
    if (rv == 0) {
        rv = scan(check, META__T_GRANT, check_grant);
    }
    if (rv == 0) {
        rv = check_counts(check);
    }
    if (rv == 0) {
        rv = scan(check, META__T_JOURNAL, check_event);
    }
    if (rv == 0 && check->journal_seq != check->ns->journal_seq) {
        rv = FAIL(check, "ns=%" PRIu64 ": journal ends at %" PRIu64 ", journal_seq %" PRIu64,
                  check->ns->id, check->journal_seq, check->ns->journal_seq);
    }
    return rv;
}

/* The system group: node ids below the counter, and the address index and
 * the nodes agreeing (a removed node's address may have been taken again). */
static int check_nodes(struct meta_sm *sm, char *errmsg)
{
    Cairn__Cmd__Cluster *cluster = NULL;
    Cairn__Cmd__Node *node;
    struct meta__iter iter;
    struct meta__key prefix, key;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    uint64_t id;
    int rv, close_rv;

    rv = meta_get_cluster(sm, &cluster);
    if (rv != 0 && rv != CAIRN_ENOENT) {
        return rv;
    }
    meta__key_init(&prefix, sm, META__T_NODE);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (rv = 0; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        node = cairn__cmd__node__unpack(NULL, v_len, v);
        if (node == NULL || k_len != prefix.len + 8 || meta__get_be64(k + prefix.len) != node->id ||
            cluster == NULL || node->id == 0 || node->id >= cluster->next_node_id) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "node: malformed, or id past the counter");
        } else if (node->state != CAIRN__CMD__NODE_STATE__NODE_REMOVED) {
            meta__key_init(&key, sm, META__T_NODE_ADDRESS);
            meta__key_bytes(&key, node->address, strlen(node->address));
            rv = meta__get_u64(sm, &key, &id);
            if (rv == CAIRN_ENOENT || (rv == 0 && id != node->id)) {
                rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "node %" PRIu64 ": address not indexed",
                                node->id);
            }
        }
        meta_record_free(node);
    }
    close_rv = meta__iter_close(&iter, sm);
    rv = rv != 0 ? rv : close_rv;
    meta__key_init(&prefix, sm, META__T_NODE_ADDRESS);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        if (v_len != 8 || meta_get_node(sm, meta__get_be64(v), &node) != 0) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "address index: no such node");
            break;
        }
        if (strlen(node->address) != k_len - prefix.len ||
            memcmp(node->address, k + prefix.len, k_len - prefix.len) != 0) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "address index: node %" PRIu64 " disagrees",
                            node->id);
        }
        meta_record_free(node);
    }
    close_rv = meta__iter_close(&iter, sm);
    meta_record_free(cluster);
    return rv != 0 ? rv : close_rv;
}

/* The outbox: ids of this group below its counter; the inbox: each record
 * under its drive namespace, source and inode. */
static int check_shares(struct meta_sm *sm, char *errmsg)
{
    struct meta__iter iter;
    struct meta__key prefix, key;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    uint64_t seq = 0;
    int rv, close_rv;

    meta__key_init(&key, sm, META__T_OUTBOX_SEQ);
    rv = meta__get_u64(sm, &key, &seq);
    if (rv != 0 && rv != CAIRN_ENOENT) {
        return rv;
    }
    meta__key_init(&prefix, sm, META__T_OUTBOX);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (rv = 0; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        Cairn__Cmd__OutboxEntry *entry;
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        entry = cairn__cmd__outbox_entry__unpack(NULL, v_len, v);
        if (entry == NULL || entry->share == NULL || k_len != prefix.len + META_OUTBOX_ID_SIZE ||
            entry->id.len != META_OUTBOX_ID_SIZE ||
            memcmp(entry->id.data, k + prefix.len, META_OUTBOX_ID_SIZE) != 0 ||
            meta__get_be64(entry->id.data) != sm->group_id ||
            meta__get_be64(entry->id.data + 8) > seq || entry->target_ns == 0) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "outbox entry malformed or past the counter");
        }
        meta_record_free(entry);
    }
    close_rv = meta__iter_close(&iter, sm);
    rv = rv != 0 ? rv : close_rv;
    meta__key_init(&prefix, sm, META__T_INBOX);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        Cairn__Cmd__InboxEntry *entry;
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        entry = cairn__cmd__inbox_entry__unpack(NULL, v_len, v);
        if (entry == NULL || entry->share == NULL || k_len != prefix.len + 24 ||
            entry->outbox_id.len != META_OUTBOX_ID_SIZE ||
            entry->share->ns != meta__get_be64(k + prefix.len + 8) ||
            entry->share->inode != meta__get_be64(k + prefix.len + 16)) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "inbox entry malformed");
        } else {
            meta__key_init(&key, sm, META__T_NS);
            meta__key_bytes(&key, k + prefix.len, 8);
            rv = meta__exists(sm, &key);
            if (rv == CAIRN_ENOENT) {
                rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "inbox entry of no namespace");
            }
        }
        meta_record_free(entry);
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

/* Resumable sessions: a pending one's chunk keys tile [0, offset) and
 * number chunk_count; no other session has any. */
static int check_session_chunks(struct meta_sm *sm, const Cairn__Cmd__Upload *upload, char *errmsg)
{
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    uint64_t end = 0, count = 0;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_UPLOAD_CHUNK);
    meta__key_bytes(&prefix, upload->id.data, upload->id.len);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        Cairn__Cmd__ChunkRef *ref;
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        ref = cairn__cmd__chunk_ref__unpack(NULL, v_len, v);
        if (ref == NULL || k_len != prefix.len + 8 || meta__get_be64(k + prefix.len) != end ||
            ref->offset != end || ref->size == 0) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "upload: chunk at %" PRIu64 " out of place",
                            end);
        } else {
            end += ref->size;
            count++;
        }
        meta_record_free(ref);
    }
    close_rv = meta__iter_close(&iter, sm);
    rv = rv != 0 ? rv : close_rv;
    if (upload->state != CAIRN__CMD__UPLOAD_STATE__UPLOAD_PENDING) {
        end = upload->offset; /* a session that ended keeps no chunks */
    }
    if (rv == 0 && (count != upload->chunk_count || end != upload->offset)) {
        rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT,
                        "upload: %" PRIu64 " chunks to %" PRIu64 ", record says %" PRIu64
                        " to %" PRIu64,
                        count, end, upload->chunk_count, upload->offset);
    }
    return rv;
}

static int check_uploads(struct meta_sm *sm, char *errmsg)
{
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    uint64_t chunk_keys = 0, counted = 0;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_UPLOAD);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        Cairn__Cmd__Upload *upload;
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        upload = cairn__cmd__upload__unpack(NULL, v_len, v);
        if (upload == NULL || upload->id.len != META_UPLOAD_ID_SIZE ||
            k_len != prefix.len + META_UPLOAD_ID_SIZE ||
            memcmp(k + prefix.len, upload->id.data, META_UPLOAD_ID_SIZE) != 0) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "upload: malformed");
        } else {
            rv = check_session_chunks(sm, upload, errmsg);
            counted += upload->chunk_count;
        }
        meta_record_free(upload);
    }
    close_rv = meta__iter_close(&iter, sm);
    rv = rv != 0 ? rv : close_rv;
    /* Every chunk key belongs to a session that counted it. */
    meta__key_init(&prefix, sm, META__T_UPLOAD_CHUNK);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; meta__iter_valid(&iter); meta__iter_next(&iter)) {
        chunk_keys++;
    }
    close_rv = meta__iter_close(&iter, sm);
    rv = rv != 0 ? rv : close_rv;
    if (rv == 0 && chunk_keys != counted) {
        rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT,
                        "upload chunks: %" PRIu64 " keys, %" PRIu64 " counted by sessions",
                        chunk_keys, counted);
    }
    return rv;
}

static void check_reset(struct check *check)
{
    for (size_t i = 0; i < check->count; i++) {
        meta_record_free(check->nodes[i].inode);
    }
    check->count = 0;
    check->used_bytes = 0;
    check->journal_seq = 0;
}

int meta_sm_check(struct meta_sm *sm, char *errmsg)
{
    struct check check = {.sm = sm, .errmsg = errmsg};
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    int rv = 0, close_rv;

    errmsg[0] = '\0';
    meta__key_init(&prefix, sm, META__T_NS);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        check.ns = cairn__cmd__namespace__unpack(NULL, len, v);
        if (check.ns == NULL) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "malformed namespace");
            break;
        }
        rv = check_namespace(&check);
        check_reset(&check);
        meta_record_free(check.ns);
    }
    close_rv = meta__iter_close(&iter, sm);
    free(check.nodes);
    rv = rv != 0 ? rv : close_rv;
    if (rv == 0) {
        rv = check_nodes(sm, errmsg);
    }
    if (rv == 0) {
        rv = check_shares(sm, errmsg);
    }
    if (rv == 0) {
        rv = check_uploads(sm, errmsg);
    }
    if (rv == 0) {
        rv = meta__dedup_check(sm, errmsg);
    }
    return rv;
}
