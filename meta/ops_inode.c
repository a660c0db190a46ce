/*
 * Inodes: folders and files, their names, versions and the trash.
 *
 * Keys (meta_int.h): the inode record under (ns, id); its name in its
 * folder under (ns, parent, name) -> id while it is live, or under the trash
 * index (ns, parent, id) while it is the top of a trashed subtree; versions
 * under (ns, id, number).
 *
 * The happy path of an operation:
 *   1. meta__ns_access(): the namespace exists and the actor may edit the
 *      inode touched: the folder for mkdir and create, the file for a
 *      commit, and for a move, trash, restore or purge the folder it leaves
 *      (and the one it enters), since that folder's listing changes.
 *   2. Load the inodes involved; check kinds, names, limits, the base
 *      version, that the path is live (no trashed ancestor) and, for a move,
 *      that the target folder is not inside the moved one (walking up from
 *      the target, bounded by depth_max).
 *   3. Put the changed records, append one journal event, put the namespace
 *      (its journal_seq and used_bytes moved).
 *
 * Possible failure modes, all outcomes (nothing is written):
 *   CAIRN_ENOENT    no such inode, or it is in the trash;
 *   CAIRN_EEXIST    the name or the new id is taken;
 *   CAIRN_EINVAL    a bad name, a move into itself, the root, not in trash;
 *   CAIRN_ENOTDIR / CAIRN_EISDIR  the wrong kind;
 *   CAIRN_ECONFLICT the file changed since the base version;
 *   CAIRN_ETOOBIG   deeper than depth_max (for a folder moved deeper: any
 *                   of its subtree, found by a walk of at most purge_max
 *                   inodes), fuller than entries_max, or a purge of more
 *                   than purge_max inodes;
 *   CAIRN_EQUOTA    the namespace would exceed its quota.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta_int.h"

#define CHUNK_ID_SIZE    META_CHUNK_ID_SIZE
#define CONTENT_HASH_MAX 64u

static void inode_key(struct meta_sm *sm, uint64_t ns, uint64_t id, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_INODE);
    meta__key_u64(key, ns);
    meta__key_u64(key, id);
}

static void dirent_key(
    struct meta_sm *sm, uint64_t ns, uint64_t parent, const char *name, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_DIRENT);
    meta__key_u64(key, ns);
    meta__key_u64(key, parent);
    meta__key_bytes(key, name, strlen(name));
}

static void trash_key(
    struct meta_sm *sm, uint64_t ns, uint64_t parent, uint64_t id, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_TRASH);
    meta__key_u64(key, ns);
    meta__key_u64(key, parent);
    meta__key_u64(key, id);
}

static void version_key(
    struct meta_sm *sm, uint64_t ns, uint64_t id, uint64_t number, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_VERSION);
    meta__key_u64(key, ns);
    meta__key_u64(key, id);
    meta__key_u64(key, number);
}

static int inode_get(struct meta_sm *sm, uint64_t ns, uint64_t id, Cairn__Cmd__Inode **inode)
{
    struct meta__key key;

    inode_key(sm, ns, id, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__inode__descriptor, (void **)inode);
}

static int inode_put(struct meta__tx *tx, uint64_t ns, const Cairn__Cmd__Inode *inode)
{
    struct meta__key key;

    inode_key(tx->sm, ns, inode->id, &key);
    return meta__put_msg(tx, &key, &inode->base);
}

/* Walks from id up to the root: CAIRN_ENOENT if id or an ancestor is in the
 * trash; *depth is the number of steps to the root. */
static int live_depth_from(struct meta_sm *sm,
                           const Cairn__Cmd__Namespace *ns,
                           uint64_t id,
                           uint32_t start,
                           uint32_t *depth)
{
    Cairn__Cmd__Inode *inode;
    bool trashed;
    int rv;

    for (*depth = start; id != ns->root_inode; (*depth)++) {
        if (*depth > sm->limits.depth_max) {
            return cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "path of %" PRIu64 " too deep", id);
        }
        rv = inode_get(sm, ns->id, id, &inode);
        if (rv != 0) {
            return rv == CAIRN_ENOENT && *depth > 0 ? CAIRN_ECORRUPT : rv;
        }
        trashed = inode->trashed;
        id = inode->parent;
        meta_record_free(inode);
        if (trashed) {
            return CAIRN_ENOENT;
        }
    }
    return 0;
}

static int live_depth_of(struct meta_sm *sm,
                         const Cairn__Cmd__Namespace *ns,
                         uint64_t id,
                         uint32_t *depth)
{
    return live_depth_from(sm, ns, id, 0, depth);
}

static int live_depth(struct meta__tx *tx,
                      const Cairn__Cmd__Namespace *ns,
                      uint64_t id,
                      uint32_t *depth)
{
    return live_depth_of(tx->sm, ns, id, depth);
}

/* Loads a live folder that can take one more entry named name. */
static int folder_for_insert(struct meta__tx *tx,
                             const Cairn__Cmd__Namespace *ns,
                             uint64_t parent,
                             const char *name,
                             Cairn__Cmd__Inode **folder)
{
    struct meta__key key;
    uint32_t depth;
    int rv;

    rv = meta__name_check(name);
    if (rv == 0) {
        rv = inode_get(tx->sm, ns->id, parent, folder);
    }
    if (rv != 0) {
        return rv;
    }
    if ((*folder)->kind != CAIRN__CMD__INODE_KIND__INODE_DIR) {
        rv = CAIRN_ENOTDIR;
    } else if ((*folder)->child_count >= tx->sm->limits.entries_max) {
        rv = CAIRN_ETOOBIG;
    } else if ((rv = live_depth(tx, ns, parent, &depth)) == 0) {
        if (depth + 1 > tx->sm->limits.depth_max) {
            rv = CAIRN_ETOOBIG;
        } else {
            dirent_key(tx->sm, ns->id, parent, name, &key);
            rv = meta__exists(tx->sm, &key);
            rv = rv == 0 ? CAIRN_EEXIST : rv == CAIRN_ENOENT ? 0 : rv;
        }
    }
    if (rv != 0) {
        meta_record_free(*folder);
        *folder = NULL;
    }
    return rv;
}

static int event_append(struct meta__tx *tx,
                        Cairn__Cmd__Namespace *ns,
                        Cairn__Cmd__EventKind kind,
                        const Cairn__Cmd__Inode *inode)
{
    Cairn__Cmd__Event event = CAIRN__CMD__EVENT__INIT;

    event.kind = kind;
    event.inode = inode->id;
    event.parent = inode->parent;
    event.name = inode->name;
    event.version = inode->version;
    return meta__journal_append(tx, ns, &event);
}

/* Adds a new inode of kind under parent: the record, its name, the count. */
static int entry_add(struct meta__tx *tx,
                     Cairn__Cmd__Namespace *ns,
                     uint64_t parent,
                     const char *name,
                     uint64_t id,
                     Cairn__Cmd__InodeKind kind)
{
    Cairn__Cmd__Inode inode = CAIRN__CMD__INODE__INIT;
    Cairn__Cmd__Inode *folder;
    struct meta__key key;
    int rv;

    if (id == 0) {
        return CAIRN_EINVAL;
    }
    inode_key(tx->sm, ns->id, id, &key);
    rv = meta__exists(tx->sm, &key);
    if (rv != CAIRN_ENOENT) {
        return rv == 0 ? CAIRN_EEXIST : rv;
    }
    rv = folder_for_insert(tx, ns, parent, name, &folder);
    if (rv != 0) {
        return rv;
    }
    inode.id = id;
    inode.parent = parent;
    inode.name = (char *)name;
    inode.kind = kind;
    inode.modified_ms = tx->time_ms;
    folder->child_count++;
    folder->modified_ms = tx->time_ms;
    dirent_key(tx->sm, ns->id, parent, name, &key);
    meta__put_u64(tx, &key, id);
    rv = inode_put(tx, ns->id, folder);
    if (rv == 0) {
        rv = inode_put(tx, ns->id, &inode);
    }
    if (rv == 0) {
        rv = event_append(tx, ns, CAIRN__CMD__EVENT_KIND__EVENT_CREATED, &inode);
    }
    meta_record_free(folder);
    return rv;
}

int meta__file_create(struct meta__tx *tx,
                      Cairn__Cmd__Namespace *ns,
                      uint64_t parent,
                      const char *name,
                      uint64_t inode)
{
    return entry_add(tx, ns, parent, name, inode, CAIRN__CMD__INODE_KIND__INODE_FILE);
}

static int op_add(struct meta__tx *tx,
                  uint64_t ns_id,
                  uint64_t parent,
                  const char *name,
                  uint64_t id,
                  Cairn__Cmd__InodeKind kind)
{
    Cairn__Cmd__Namespace *ns;
    int rv;

    rv = meta__ns_access(tx, ns_id, parent, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    rv = entry_add(tx, ns, parent, name, id, kind);
    if (rv == 0) {
        rv = meta__ns_put(tx, ns);
    }
    meta_record_free(ns);
    return rv;
}

int meta__op_mkdir(struct meta__tx *tx, const Cairn__Cmd__Mkdir *op)
{
    return op_add(tx, op->ns, op->parent, op->name, op->inode, CAIRN__CMD__INODE_KIND__INODE_DIR);
}

int meta__op_create(struct meta__tx *tx, const Cairn__Cmd__Create *op)
{
    return op_add(tx, op->ns, op->parent, op->name, op->inode, CAIRN__CMD__INODE_KIND__INODE_FILE);
}

static int version_check(const Cairn__Cmd__Version *version)
{
    uint64_t end = 0;

    if (version->content_hash.len > CONTENT_HASH_MAX) {
        return CAIRN_EINVAL;
    }
    for (size_t i = 0; i < version->n_chunks; i++) {
        const Cairn__Cmd__ChunkRef *chunk = version->chunks[i];
        if (chunk->chunk_id.len != CHUNK_ID_SIZE || chunk->offset != end) {
            return CAIRN_EINVAL; /* chunks tile the file, in order */
        }
        end += chunk->size;
    }
    return end == version->size || version->n_chunks == 0 ? 0 : CAIRN_EINVAL;
}

/* Loads a live file inode. */
static int file_get(struct meta__tx *tx,
                    const Cairn__Cmd__Namespace *ns,
                    uint64_t id,
                    Cairn__Cmd__Inode **inode)
{
    uint32_t depth;
    int rv;

    rv = inode_get(tx->sm, ns->id, id, inode);
    if (rv != 0) {
        return rv;
    }
    if ((*inode)->kind != CAIRN__CMD__INODE_KIND__INODE_FILE) {
        rv = CAIRN_EISDIR;
    } else if (id != ns->root_inode) {
        /* As live_depth() from the file, without reading it again. */
        rv = (*inode)->trashed ? CAIRN_ENOENT
                               : live_depth_from(tx->sm, ns, (*inode)->parent, 1, &depth);
    }
    if (rv != 0) {
        meta_record_free(*inode);
        *inode = NULL;
    }
    return rv;
}

int meta__file_commit(struct meta__tx *tx,
                      Cairn__Cmd__Namespace *ns,
                      uint64_t id,
                      uint64_t base_version,
                      const Cairn__Cmd__Version *version,
                      uint64_t *number)
{
    Cairn__Cmd__Version record = *version; /* shallow: borrows the chunk list */
    Cairn__Cmd__Inode *inode;
    struct meta__key key;
    int rv;

    rv = version_check(version);
    if (rv == 0) {
        rv = file_get(tx, ns, id, &inode);
    }
    if (rv != 0) {
        return rv;
    }
    if (base_version != META_BASE_ANY && inode->version != base_version) {
        rv = CAIRN_ECONFLICT;
    } else if (ns->quota_bytes != 0 && ns->used_bytes + version->size > ns->quota_bytes) {
        rv = CAIRN_EQUOTA;
    }
    if (rv != 0) {
        goto out;
    }
    record.number = inode->version + 1;
    record.author_user = tx->actor;
    record.time_ms = tx->time_ms;
    version_key(tx->sm, ns->id, id, record.number, &key);
    rv = meta__put_msg(tx, &key, &record.base);
    inode->version = record.number;
    inode->version_count++;
    inode->modified_ms = tx->time_ms;
    ns->used_bytes += version->size;
    if (rv == 0) {
        rv = inode_put(tx, ns->id, inode);
    }
    if (rv == 0) {
        rv = event_append(tx, ns, CAIRN__CMD__EVENT_KIND__EVENT_MODIFIED, inode);
    }
    *number = record.number;
out:
    meta_record_free(inode);
    return rv;
}

int meta__op_commit(struct meta__tx *tx, const Cairn__Cmd__Commit *op)
{
    Cairn__Cmd__Namespace *ns;
    int rv;

    if (op->version == NULL) {
        return CAIRN_EINVAL;
    }
    if (op->create_name != NULL && op->create_name[0] != '\0') {
        /* Create and first version in one apply: editor on the folder. */
        rv = meta__ns_access(tx, op->ns, op->create_parent, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
        if (rv != 0) {
            return rv;
        }
        rv = meta__file_create(tx, ns, op->create_parent, op->create_name, op->inode);
        if (rv == 0) {
            rv = meta__file_commit(tx, ns, op->inode,
                                   op->unconditional ? META_BASE_ANY : op->base_version,
                                   op->version, &tx->value);
        }
        if (rv == 0) {
            rv = meta__ns_put(tx, ns);
        }
        meta_record_free(ns);
        return rv;
    }
    rv = meta__ns_access(tx, op->ns, op->inode, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    rv = meta__file_commit(tx, ns, op->inode, op->unconditional ? META_BASE_ANY : op->base_version,
                           op->version, &tx->value);
    if (rv == 0) {
        rv = meta__ns_put(tx, ns);
    }
    meta_record_free(ns);
    return rv;
}

int meta__op_version_restore(struct meta__tx *tx, const Cairn__Cmd__VersionRestore *op)
{
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Version *old;
    struct meta__key key;
    int rv;

    rv = meta__ns_access(tx, op->ns, op->inode, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    version_key(tx->sm, op->ns, op->inode, op->version, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__version__descriptor, (void **)&old);
    if (rv != 0) {
        goto out;
    }
    old->restored_from = old->number;
    rv = meta__file_commit(tx, ns, op->inode, op->base_version, old, &tx->value);
    if (rv == 0) {
        rv = meta__ns_put(tx, ns);
    }
    meta_record_free(old);
out:
    meta_record_free(ns);
    return rv;
}

/* CAIRN_EINVAL if target is id or inside it: walks up from target. */
static int cycle_check(struct meta__tx *tx,
                       const Cairn__Cmd__Namespace *ns,
                       uint64_t id,
                       uint64_t target)
{
    Cairn__Cmd__Inode *inode;
    uint32_t steps;
    int rv;

    for (steps = 0; target != ns->root_inode; steps++) {
        if (target == id) {
            return CAIRN_EINVAL;
        }
        if (steps > tx->sm->limits.depth_max) {
            return cn_errmsgf(tx->sm->errmsg, CAIRN_ECORRUPT, "cycle above %" PRIu64, target);
        }
        rv = inode_get(tx->sm, ns->id, target, &inode);
        if (rv != 0) {
            /* A missing target is the caller's mistake; a missing ancestor is ours. */
            return rv == CAIRN_ENOENT && steps > 0 ? CAIRN_ECORRUPT : rv;
        }
        target = inode->parent;
        meta_record_free(inode);
    }
    return 0;
}

/* Loads a live inode that is not the root. */
static int movable_get(struct meta__tx *tx,
                       const Cairn__Cmd__Namespace *ns,
                       uint64_t id,
                       Cairn__Cmd__Inode **inode)
{
    uint32_t depth;
    int rv;

    if (id == ns->root_inode) {
        return CAIRN_EINVAL;
    }
    rv = inode_get(tx->sm, ns->id, id, inode);
    if (rv != 0) {
        return rv;
    }
    rv = live_depth(tx, ns, id, &depth);
    if (rv != 0) {
        meta_record_free(*inode);
        *inode = NULL;
    }
    return rv;
}

/* Adds delta to a folder's entry count. */
static int folder_count(struct meta__tx *tx, uint64_t ns, uint64_t folder_id, int delta)
{
    Cairn__Cmd__Inode *folder;
    int rv;

    rv = inode_get(tx->sm, ns, folder_id, &folder);
    if (rv != 0) {
        return rv == CAIRN_ENOENT ? CAIRN_ECORRUPT : rv;
    }
    CN_ASSERT(delta > 0 || folder->child_count > 0);
    folder->child_count += (uint64_t)(int64_t)delta;
    folder->modified_ms = tx->time_ms;
    rv = inode_put(tx, ns, folder);
    meta_record_free(folder);
    return rv;
}

static int rename_apply(struct meta__tx *tx,
                        Cairn__Cmd__Namespace *ns,
                        Cairn__Cmd__Inode *inode,
                        const Cairn__Cmd__Rename *op)
{
    Cairn__Cmd__Event event = CAIRN__CMD__EVENT__INIT;
    char *old_name = inode->name;
    struct meta__key key;
    int rv = 0;

    dirent_key(tx->sm, ns->id, inode->parent, inode->name, &key);
    meta__del(tx, &key);
    dirent_key(tx->sm, ns->id, op->new_parent, op->new_name, &key);
    meta__put_u64(tx, &key, inode->id);
    if (op->new_parent != inode->parent) {
        rv = folder_count(tx, ns->id, inode->parent, -1);
        if (rv == 0) {
            rv = folder_count(tx, ns->id, op->new_parent, 1);
        }
    }
    event.kind = CAIRN__CMD__EVENT_KIND__EVENT_MOVED;
    event.inode = inode->id;
    event.old_parent = inode->parent;
    event.old_name = old_name;
    event.parent = op->new_parent;
    event.name = op->new_name;
    inode->parent = op->new_parent;
    inode->name = op->new_name;
    inode->modified_ms = tx->time_ms;
    if (rv == 0) {
        rv = inode_put(tx, ns->id, inode);
    }
    inode->name = old_name; /* the record owns its own string */
    if (rv == 0) {
        rv = meta__journal_append(tx, ns, &event);
    }
    return rv;
}

/* The inodes a purge removes, or a move's depth check visits: a bounded list. */
struct purge {
    uint64_t *ids;
    size_t count;
    size_t cap;
    uint64_t freed_bytes;
};

static int purge_push(struct purge *purge, uint64_t id)
{
    if (purge->count == purge->cap) {
        return CAIRN_ETOOBIG;
    }
    purge->ids[purge->count++] = id;
    return 0;
}

/* Pushes onto walk the ids of the folder's entries under prefix: live ones
 * (the id is the value) or trashed ones (the id ends the key). */
static int walk_children(struct meta__tx *tx,
                         struct purge *walk,
                         const struct meta__key *prefix,
                         bool trashed)
{
    struct meta__iter iter;
    const uint8_t *k, *v;
    size_t len;
    int rv = 0, close_rv;

    meta__iter_init(&iter, tx->sm, prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &len);
        v = trashed ? k + prefix->len : meta__iter_value(&iter, &len);
        rv = purge_push(walk, meta__get_be64(v));
    }
    close_rv = meta__iter_close(&iter, tx->sm);
    return rv != 0 ? rv : close_rv;
}

/* Whether the subtree under folder id, placed at depth new_depth, stays
 * within depth_max: a level-by-level walk over its entries (trashed ones
 * too, as they may be restored), at most purge_max inodes. CAIRN_ETOOBIG. */
static int subtree_fits(struct meta__tx *tx, uint64_t ns, uint64_t id, uint32_t new_depth)
{
    struct purge walk = {.cap = tx->sm->limits.purge_max};
    size_t level_start = 0, level_end;
    struct meta__key key;
    uint32_t depth = new_depth;
    int rv;

    walk.ids = cn_xmalloc(walk.cap * sizeof(*walk.ids));
    rv = purge_push(&walk, id);
    while (rv == 0 && level_start < walk.count) {
        level_end = walk.count;
        for (size_t i = level_start; rv == 0 && i < level_end; i++) {
            meta__key_init(&key, tx->sm, META__T_DIRENT);
            meta__key_u64(&key, ns);
            meta__key_u64(&key, walk.ids[i]);
            rv = walk_children(tx, &walk, &key, false);
            key.bytes[8] = META__T_TRASH;
            if (rv == 0) {
                rv = walk_children(tx, &walk, &key, true);
            }
        }
        if (rv == 0 && walk.count > level_end && depth + 1 > tx->sm->limits.depth_max) {
            rv = CAIRN_ETOOBIG; /* a next level exists, one too deep */
        }
        depth++;
        level_start = level_end;
    }
    free(walk.ids);
    return rv;
}

/* A folder moved deeper must keep its whole subtree within depth_max. */
static int move_depth_check(struct meta__tx *tx,
                            const Cairn__Cmd__Namespace *ns,
                            const Cairn__Cmd__Inode *inode,
                            uint64_t new_parent)
{
    uint32_t old_depth, parent_depth;
    int rv;

    if (inode->kind != CAIRN__CMD__INODE_KIND__INODE_DIR) {
        return 0; /* a file is one level, checked with its new folder */
    }
    rv = live_depth(tx, ns, inode->id, &old_depth);
    if (rv == 0) {
        rv = live_depth(tx, ns, new_parent, &parent_depth);
    }
    if (rv != 0 || parent_depth + 1 <= old_depth) {
        return rv; /* not deeper than now: the subtree fits as it did */
    }
    return subtree_fits(tx, ns->id, inode->id, parent_depth + 1);
}

int meta__op_rename(struct meta__tx *tx, const Cairn__Cmd__Rename *op)
{
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *inode = NULL, *folder = NULL;
    int rv;

    rv = meta__ns_access(tx, op->ns, op->inode, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    rv = movable_get(tx, ns, op->inode, &inode);
    if (rv == 0) {
        /* It leaves its folder and enters another: both are written. */
        rv = meta__role_check(tx, ns, inode->parent, CAIRN__CMD__ROLE__ROLE_EDITOR);
    }
    if (rv == 0) {
        rv = meta__role_check(tx, ns, op->new_parent, CAIRN__CMD__ROLE__ROLE_EDITOR);
    }
    if (rv != 0) {
        goto out;
    }
    if (inode->parent == op->new_parent && strcmp(inode->name, op->new_name) == 0) {
        goto out; /* already there: nothing to do, nothing to journal */
    }
    rv = cycle_check(tx, ns, op->inode, op->new_parent);
    if (rv == 0) {
        rv = folder_for_insert(tx, ns, op->new_parent, op->new_name, &folder);
    }
    if (rv == 0) {
        rv = move_depth_check(tx, ns, inode, op->new_parent);
    }
    if (rv == 0) {
        rv = rename_apply(tx, ns, inode, op);
    }
    if (rv == 0) {
        rv = meta__ns_put(tx, ns);
    }
out:
    meta_record_free(folder);
    meta_record_free(inode);
    meta_record_free(ns);
    return rv;
}

/* The common end of trash and restore: the parent's entry count moves by
 * delta, the inode is stored, the journal says kind, the namespace is stored. */
static int trash_move_finish(struct meta__tx *tx,
                             Cairn__Cmd__Namespace *ns,
                             const Cairn__Cmd__Inode *inode,
                             int delta,
                             Cairn__Cmd__EventKind kind)
{
    int rv = folder_count(tx, ns->id, inode->parent, delta);

    if (rv == 0) {
        rv = inode_put(tx, ns->id, inode);
    }
    if (rv == 0) {
        rv = event_append(tx, ns, kind, inode);
    }
    if (rv == 0) {
        rv = meta__ns_put(tx, ns);
    }
    return rv;
}

int meta__op_trash(struct meta__tx *tx, const Cairn__Cmd__Trash *op)
{
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *inode = NULL;
    struct meta__key key;
    int rv;

    rv = meta__ns_access(tx, op->ns, op->inode, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    rv = movable_get(tx, ns, op->inode, &inode);
    if (rv == 0) {
        rv = meta__role_check(tx, ns, inode->parent, CAIRN__CMD__ROLE__ROLE_EDITOR);
    }
    if (rv != 0) {
        goto out;
    }
    dirent_key(tx->sm, ns->id, inode->parent, inode->name, &key);
    meta__del(tx, &key);
    trash_key(tx->sm, ns->id, inode->parent, inode->id, &key);
    meta__put_raw(tx, &key, "", 0);
    inode->trashed = true;
    inode->trashed_ms = tx->time_ms;
    rv = trash_move_finish(tx, ns, inode, -1, CAIRN__CMD__EVENT_KIND__EVENT_DELETED);
out:
    meta_record_free(inode);
    meta_record_free(ns);
    return rv;
}

/* Loads the top of a trashed subtree. */
static int trashed_get(struct meta__tx *tx,
                       const Cairn__Cmd__Namespace *ns,
                       uint64_t id,
                       Cairn__Cmd__Inode **inode)
{
    int rv;

    rv = inode_get(tx->sm, ns->id, id, inode);
    if (rv == 0 && !(*inode)->trashed) {
        meta_record_free(*inode);
        *inode = NULL;
        rv = CAIRN_EINVAL; /* not in the trash (or inside a trashed folder) */
    }
    return rv;
}

int meta__op_restore(struct meta__tx *tx, const Cairn__Cmd__Restore *op)
{
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *inode = NULL, *folder = NULL;
    struct meta__key key;
    int rv;

    rv = meta__ns_access(tx, op->ns, op->inode, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    rv = trashed_get(tx, ns, op->inode, &inode);
    if (rv == 0) {
        rv = meta__role_check(tx, ns, inode->parent, CAIRN__CMD__ROLE__ROLE_EDITOR);
    }
    if (rv == 0) {
        rv = folder_for_insert(tx, ns, inode->parent, inode->name, &folder);
    }
    if (rv != 0) {
        goto out;
    }
    trash_key(tx->sm, ns->id, inode->parent, inode->id, &key);
    meta__del(tx, &key);
    dirent_key(tx->sm, ns->id, inode->parent, inode->name, &key);
    meta__put_u64(tx, &key, inode->id);
    inode->trashed = false;
    inode->trashed_ms = 0;
    rv = trash_move_finish(tx, ns, inode, 1, CAIRN__CMD__EVENT_KIND__EVENT_CREATED);
out:
    meta_record_free(folder);
    meta_record_free(inode);
    meta_record_free(ns);
    return rv;
}

/* Deletes every key under prefix; pushes the inode id found at id_offset of
 * each key when id_offset is not 0 (children), or sums version sizes. */
static int purge_scan(struct meta__tx *tx,
                      struct purge *purge,
                      const struct meta__key *prefix,
                      size_t id_offset,
                      bool versions)
{
    struct meta__iter iter;
    struct meta__key key;
    const uint8_t *k, *v;
    size_t len;
    int rv = 0, close_rv;

    meta__iter_init(&iter, tx->sm, prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &len);
        key.len = len;
        memcpy(key.bytes, k, len);
        meta__del(tx, &key);
        if (versions) {
            Cairn__Cmd__Version *version;
            v = meta__iter_value(&iter, &len);
            version = cairn__cmd__version__unpack(NULL, len, v);
            if (version == NULL) {
                rv = CAIRN_ECORRUPT;
                break;
            }
            purge->freed_bytes += version->size;
            meta_record_free(version);
        } else if (id_offset != 0) {
            v = id_offset == SIZE_MAX ? meta__iter_value(&iter, &len) : k + id_offset;
            rv = purge_push(purge, meta__get_be64(v));
        }
    }
    close_rv = meta__iter_close(&iter, tx->sm);
    return rv != 0 ? rv : close_rv;
}

/* Removes one inode, its versions, its grants and its entries, pushing its
 * children. */
static int purge_one(struct meta__tx *tx,
                     struct purge *purge,
                     const Cairn__Cmd__Namespace *ns_record,
                     uint64_t id)
{
    Cairn__Cmd__Inode *inode;
    struct meta__key key;
    uint64_t ns = ns_record->id;
    int rv;

    rv = inode_get(tx->sm, ns, id, &inode);
    if (rv != 0) {
        return rv == CAIRN_ENOENT ? CAIRN_ECORRUPT : rv;
    }
    rv = meta__grants_drop(tx, ns_record, inode); /* revokes go to the grantees' drives */
    meta_record_free(inode);
    if (rv != 0) {
        return rv;
    }
    inode_key(tx->sm, ns, id, &key);
    meta__del(tx, &key);
    meta__key_init(&key, tx->sm, META__T_VERSION);
    meta__key_u64(&key, ns);
    meta__key_u64(&key, id);
    rv = purge_scan(tx, purge, &key, 0, true);
    if (rv != 0) {
        return rv;
    }
    meta__key_init(&key, tx->sm, META__T_DIRENT);
    meta__key_u64(&key, ns);
    meta__key_u64(&key, id);
    rv = purge_scan(tx, purge, &key, SIZE_MAX, false); /* the child id is the value */
    if (rv != 0) {
        return rv;
    }
    meta__key_init(&key, tx->sm, META__T_TRASH);
    meta__key_u64(&key, ns);
    meta__key_u64(&key, id);
    return purge_scan(tx, purge, &key, key.len, false); /* the child id ends the key */
}

int meta__op_purge(struct meta__tx *tx, const Cairn__Cmd__Purge *op)
{
    struct purge purge = {.cap = tx->sm->limits.purge_max};
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *inode = NULL;
    struct meta__key key;
    size_t done = 0;
    int rv;

    rv = meta__ns_access(tx, op->ns, op->inode, CAIRN__CMD__ROLE__ROLE_EDITOR, &ns);
    if (rv != 0) {
        return rv;
    }
    rv = trashed_get(tx, ns, op->inode, &inode);
    if (rv == 0) {
        rv = meta__role_check(tx, ns, inode->parent, CAIRN__CMD__ROLE__ROLE_EDITOR);
    }
    if (rv != 0) {
        goto out;
    }
    purge.ids = cn_xmalloc(purge.cap * sizeof(*purge.ids));
    trash_key(tx->sm, ns->id, inode->parent, inode->id, &key);
    meta__del(tx, &key);
    rv = purge_push(&purge, inode->id);
    while (rv == 0 && done < purge.count) {
        rv = purge_one(tx, &purge, ns, purge.ids[done++]);
    }
    if (rv == 0) {
        CN_ASSERT(ns->used_bytes >= purge.freed_bytes);
        ns->used_bytes -= purge.freed_bytes;
        inode->version = 0;
        rv = event_append(tx, ns, CAIRN__CMD__EVENT_KIND__EVENT_PURGED, inode);
    }
    if (rv == 0) {
        rv = meta__ns_put(tx, ns);
    }
    free(purge.ids);
out:
    meta_record_free(inode);
    meta_record_free(ns);
    return rv;
}

/* ---- Reads ---- */

int meta_get_inode(struct meta_sm *sm, uint64_t ns, uint64_t inode, Cairn__Cmd__Inode **record)
{
    return inode_get(sm, ns, inode, record);
}

int meta_get_version(
    struct meta_sm *sm, uint64_t ns, uint64_t inode, uint64_t version, Cairn__Cmd__Version **record)
{
    struct meta__key key;

    version_key(sm, ns, inode, version, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__version__descriptor, (void **)record);
}

int meta_lookup(struct meta_sm *sm, uint64_t ns, uint64_t parent, const char *name, uint64_t *inode)
{
    struct meta__key key;

    if (meta__name_check(name) != 0) {
        return CAIRN_ENOENT;
    }
    dirent_key(sm, ns, parent, name, &key);
    return meta__get_u64(sm, &key, inode);
}

int meta_list(struct meta_sm *sm, uint64_t ns, uint64_t parent, meta_list_cb cb, void *data)
{
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_DIRENT);
    meta__key_u64(&prefix, ns);
    meta__key_u64(&prefix, parent);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        if (v_len != 8) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "dirent value of %zu bytes", v_len);
            break;
        }
        rv = cb(data, (const char *)k + prefix.len, k_len - prefix.len, meta__get_be64(v));
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

int meta_list_after(struct meta_sm *sm,
                    uint64_t ns,
                    uint64_t parent,
                    const char *after,
                    uint32_t limit,
                    meta_list_cb cb,
                    void *data,
                    bool *more)
{
    struct meta__iter iter;
    struct meta__key prefix, start;
    const uint8_t *k, *v;
    size_t k_len, v_len, after_len = strlen(after);
    uint32_t count = 0;
    int rv = 0, close_rv;

    *more = false;
    if (after_len > META_NAME_MAX) {
        return CAIRN_EINVAL;
    }
    meta__key_init(&prefix, sm, META__T_DIRENT);
    meta__key_u64(&prefix, ns);
    meta__key_u64(&prefix, parent);
    meta__iter_init(&iter, sm, &prefix, NULL);
    if (after_len > 0) {
        start = prefix;
        meta__key_bytes(&start, after, after_len);
        rocksdb_iter_seek(iter.it, (const char *)start.bytes, start.len);
        k = meta__iter_valid(&iter) ? meta__iter_key(&iter, &k_len) : NULL;
        if (k != NULL && k_len == start.len && memcmp(k, start.bytes, k_len) == 0) {
            meta__iter_next(&iter); /* after it, not from it */
        }
    }
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        if (count == limit) {
            *more = true;
            break;
        }
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        if (v_len != 8) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "dirent value of %zu bytes", v_len);
            break;
        }
        rv = cb(data, (const char *)k + prefix.len, k_len - prefix.len, meta__get_be64(v));
        count++;
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

int meta_list_trash(struct meta_sm *sm, uint64_t ns, meta_trash_cb cb, void *data)
{
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *k;
    size_t len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_TRASH);
    meta__key_u64(&prefix, ns);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &len);
        if (len != prefix.len + 16) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "trash key of %zu bytes", len);
            break;
        }
        rv = cb(data, meta__get_be64(k + prefix.len), meta__get_be64(k + prefix.len + 8));
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

/* Takes the next segment of *path into name: CAIRN_EINVAL for an empty or
 * bad one. */
static int path_next(const char **path, char *name)
{
    const char *end = strchr(*path, '/');
    size_t len = end != NULL ? (size_t)(end - *path) : strlen(*path);

    if (len == 0 || len > META_NAME_MAX) {
        return CAIRN_EINVAL;
    }
    memcpy(name, *path, len);
    name[len] = '\0';
    *path += len + (end != NULL ? 1 : 0);
    if (end != NULL && **path == '\0') {
        return CAIRN_EINVAL; /* a trailing slash */
    }
    return meta__name_check(name);
}

int meta_resolve(struct meta_sm *sm,
                 uint64_t ns,
                 uint64_t root,
                 const char *path,
                 Cairn__Cmd__Inode **inode,
                 Cairn__Cmd__Inode **parent)
{
    Cairn__Cmd__Namespace *record;
    char name[META_NAME_MAX + 1];
    uint32_t depth, steps = 0;
    uint64_t id;
    int rv;

    *inode = NULL;
    *parent = NULL;
    if (strlen(path) > META_PATH_MAX) {
        return CAIRN_EINVAL;
    }
    rv = meta_get_namespace(sm, ns, &record);
    if (rv != 0) {
        return rv;
    }
    id = root == 0 ? record->root_inode : root;
    rv = live_depth_of(sm, record, id, &depth);
    meta_record_free(record);
    if (rv == 0) {
        rv = inode_get(sm, ns, id, inode);
    }
    while (rv == 0 && *path != '\0') {
        rv = path_next(&path, name);
        if (rv != 0) {
            break;
        }
        if ((*inode)->kind != CAIRN__CMD__INODE_KIND__INODE_DIR) {
            rv = CAIRN_ENOTDIR;
            break;
        }
        if (++steps > sm->limits.depth_max) {
            rv = CAIRN_ENOENT; /* no item lies that deep */
            break;
        }
        rv = meta_lookup(sm, ns, (*inode)->id, name, &id);
        if (rv == 0) {
            meta_record_free(*parent);
            *parent = *inode;
            *inode = NULL;
            rv = inode_get(sm, ns, id, inode);
            rv = rv == CAIRN_ENOENT ? CAIRN_ECORRUPT : rv; /* an entry without its inode */
        }
    }
    if (rv != 0) {
        meta_record_free(*inode);
        meta_record_free(*parent);
        *inode = NULL;
        *parent = NULL;
    }
    return rv;
}

int meta_list_versions(
    struct meta_sm *sm, uint64_t ns, uint64_t inode, meta_version_cb cb, void *data)
{
    Cairn__Cmd__Version *version;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_VERSION);
    meta__key_u64(&prefix, ns);
    meta__key_u64(&prefix, inode);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        version = cairn__cmd__version__unpack(NULL, len, v);
        if (version == NULL) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "version: malformed");
            break;
        }
        rv = cb(data, version);
        meta_record_free(version);
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}
