/*
 * Namespaces, their ACLs and their journals.
 *
 * The happy path:
 *   1. NamespaceCreate makes the namespace record and its root folder.
 *   2. Every operation inside a namespace starts with meta__ns_access(): it
 *      loads the record and checks the actor's role on the inode the
 *      operation touches — the owner (and the system, actor 0) is
 *      ROLE_OWNER, others hold the highest role that AclGrant gave them on
 *      that inode or an ancestor (meta__role_inode() walks up to the root) —
 *      so rights are enforced by the state machine itself, on every replica.
 *      A grant on a folder reaches its subtree, never its parent or siblings.
 *   3. Every mutation appends one event with meta__journal_append(): the
 *      namespace's journal_seq goes up by one and the event is stored under
 *      (ns, seq), so the journal is gap-free and a cursor is just a number.
 *   4. meta_journal_read() serves a cursor by a range scan.
 *
 * Possible failure modes: an unknown namespace is CAIRN_ENOENT; too small a
 * role CAIRN_EPERM (also for an inode that does not exist, when the actor
 * is not the owner: existence does not leak); a taken namespace id
 * CAIRN_EEXIST; a grant of a role other than viewer or editor, or to the
 * owner, CAIRN_EINVAL; an unknown inode or no such grant CAIRN_ENOENT.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta_int.h"

static void ns_key(struct meta_sm *sm, uint64_t ns, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_NS);
    meta__key_u64(key, ns);
}

static void grant_key(
    struct meta_sm *sm, uint64_t ns, uint64_t inode, uint64_t user, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_GRANT);
    meta__key_u64(key, ns);
    meta__key_u64(key, inode);
    meta__key_u64(key, user);
}

int meta__name_check(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > META_NAME_MAX || strchr(name, '/') != NULL) {
        return CAIRN_EINVAL;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        return CAIRN_EINVAL;
    }
    return 0;
}

int meta__ns_put(struct meta__tx *tx, const Cairn__Cmd__Namespace *ns)
{
    struct meta__key key;

    ns_key(tx->sm, ns->id, &key);
    return meta__put_msg(tx, &key, &ns->base);
}

/* The role a grant gives user directly on inode (ROLE_NONE when none). */
static int grant_role(
    struct meta_sm *sm, uint64_t ns, uint64_t inode, uint64_t user, Cairn__Cmd__Role *role)
{
    Cairn__Cmd__AclEntry *entry;
    struct meta__key key;
    int rv;

    *role = CAIRN__CMD__ROLE__ROLE_NONE;
    grant_key(sm, ns, inode, user, &key);
    rv = meta__get_msg(sm, &key, &cairn__cmd__acl_entry__descriptor, (void **)&entry);
    if (rv == CAIRN_ENOENT) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    *role = entry->role;
    meta_record_free(entry);
    return 0;
}

int meta__role_inode(struct meta_sm *sm,
                     const Cairn__Cmd__Namespace *ns,
                     uint64_t inode,
                     uint64_t user,
                     Cairn__Cmd__Role *role)
{
    Cairn__Cmd__Role found;
    Cairn__Cmd__Inode *record;
    uint64_t id = inode == 0 ? ns->root_inode : inode;
    int rv;

    if (user == 0 || user == ns->owner) {
        *role = CAIRN__CMD__ROLE__ROLE_OWNER;
        return 0;
    }
    *role = CAIRN__CMD__ROLE__ROLE_NONE;
    for (uint32_t steps = 0;; steps++) {
        if (steps > sm->limits.depth_max + 1) {
            return cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "path of %" PRIu64 " too deep", inode);
        }
        rv = grant_role(sm, ns->id, id, user, &found);
        if (rv != 0) {
            return rv;
        }
        if (found > *role) {
            *role = found;
        }
        if (*role >= CAIRN__CMD__ROLE__ROLE_EDITOR || id == ns->root_inode) {
            return 0; /* no grant gives more than editor */
        }
        rv = meta_get_inode(sm, ns->id, id, &record);
        if (rv != 0) {
            /* No such inode: no role. A missing ancestor is ours. */
            return rv == CAIRN_ENOENT ? (steps == 0 ? 0 : CAIRN_ECORRUPT) : rv;
        }
        id = record->parent;
        meta_record_free(record);
    }
}

int meta__role_check(struct meta__tx *tx,
                     const Cairn__Cmd__Namespace *ns,
                     uint64_t inode,
                     Cairn__Cmd__Role role)
{
    Cairn__Cmd__Role held = CAIRN__CMD__ROLE__ROLE_NONE; /* set on success */
    int rv;

    rv = meta__role_inode(tx->sm, ns, inode, tx->actor, &held);
    if (rv == 0 && held < role) {
        rv = CAIRN_EPERM;
    }
    return rv;
}

int meta__ns_access(struct meta__tx *tx,
                    uint64_t ns,
                    uint64_t inode,
                    Cairn__Cmd__Role role,
                    Cairn__Cmd__Namespace **record)
{
    struct meta__key key;
    int rv;

    ns_key(tx->sm, ns, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__namespace__descriptor, (void **)record);
    if (rv != 0) {
        return rv;
    }
    rv = meta__role_check(tx, *record, inode, role);
    if (rv != 0) {
        meta_record_free(*record);
        *record = NULL;
    }
    return rv;
}

int meta__journal_append(struct meta__tx *tx, Cairn__Cmd__Namespace *ns, Cairn__Cmd__Event *event)
{
    struct meta__key key;

    ns->journal_seq++;
    event->seq = ns->journal_seq;
    event->time_ms = tx->time_ms;
    if (event->user == 0) {
        event->user = tx->actor;
    }
    tx->sm->event_ns = ns->id;
    tx->sm->event_seq = ns->journal_seq;
    meta__key_init(&key, tx->sm, META__T_JOURNAL);
    meta__key_u64(&key, ns->id);
    meta__key_u64(&key, event->seq);
    return meta__put_msg(tx, &key, &event->base);
}

static int root_put(struct meta__tx *tx, uint64_t ns, uint64_t root)
{
    Cairn__Cmd__Inode inode = CAIRN__CMD__INODE__INIT;
    struct meta__key key;

    inode.id = root;
    inode.kind = CAIRN__CMD__INODE_KIND__INODE_DIR;
    inode.name = "";
    inode.modified_ms = tx->time_ms;
    meta__key_init(&key, tx->sm, META__T_INODE);
    meta__key_u64(&key, ns);
    meta__key_u64(&key, root);
    return meta__put_msg(tx, &key, &inode.base);
}

int meta__op_namespace_create(struct meta__tx *tx, const Cairn__Cmd__NamespaceCreate *op)
{
    Cairn__Cmd__Namespace ns = CAIRN__CMD__NAMESPACE__INIT;
    struct meta__key key;
    int rv;

    if (tx->actor != 0 && tx->actor != op->owner) {
        return CAIRN_EPERM;
    }
    if (op->ns == 0 || op->root_inode == 0 || op->owner == 0 ||
        op->kind == CAIRN__CMD__NAMESPACE_KIND__NS_NONE || strlen(op->name) > META_NAME_MAX) {
        return CAIRN_EINVAL;
    }
    ns_key(tx->sm, op->ns, &key);
    rv = meta__exists(tx->sm, &key);
    if (rv != CAIRN_ENOENT) {
        return rv == 0 ? CAIRN_EEXIST : rv;
    }
    ns.id = op->ns;
    ns.kind = op->kind;
    ns.owner = op->owner;
    ns.name = op->name;
    ns.root_inode = op->root_inode;
    ns.quota_bytes = op->quota_bytes;
    ns.created_ms = tx->time_ms;
    rv = root_put(tx, op->ns, op->root_inode);
    if (rv != 0) {
        return rv;
    }
    return meta__ns_put(tx, &ns);
}

int meta__op_namespace_set_quota(struct meta__tx *tx, const Cairn__Cmd__NamespaceSetQuota *op)
{
    Cairn__Cmd__Namespace *ns;
    int rv;

    if (tx->actor != 0) {
        return CAIRN_EPERM; /* not even the owner: a quota is the admin's */
    }
    rv = meta_get_namespace(tx->sm, op->ns, &ns);
    if (rv != 0) {
        return rv;
    }
    ns->quota_bytes = op->quota_bytes;
    rv = meta__ns_put(tx, ns);
    meta_record_free(ns);
    return rv;
}

static int acl_event(struct meta__tx *tx,
                     Cairn__Cmd__Namespace *ns,
                     Cairn__Cmd__EventKind kind,
                     const Cairn__Cmd__Inode *inode,
                     uint64_t user,
                     Cairn__Cmd__Role role)
{
    Cairn__Cmd__Event event = CAIRN__CMD__EVENT__INIT;
    int rv;

    event.kind = kind;
    event.inode = inode->id;
    event.parent = inode->parent;
    event.name = inode->name;
    event.user = user;
    event.role = role;
    rv = meta__journal_append(tx, ns, &event);
    if (rv == 0) {
        rv = meta__ns_put(tx, ns);
    }
    return rv;
}

/* Queues the delivery of a grant or revoke to the grantee's drive. */
static int share_outbox(struct meta__tx *tx,
                        const Cairn__Cmd__Namespace *ns,
                        const Cairn__Cmd__Inode *inode,
                        uint64_t user,
                        Cairn__Cmd__Role role,
                        uint64_t grantee_ns,
                        bool revoke)
{
    Cairn__Cmd__ShareInfo share = CAIRN__CMD__SHARE_INFO__INIT;

    if (grantee_ns == 0) {
        return 0; /* nowhere to deliver */
    }
    share.ns = ns->id;
    share.inode = inode->id;
    share.owner = ns->owner;
    share.name = inode->id == ns->root_inode ? ns->name : inode->name;
    share.role = role;
    share.time_ms = tx->time_ms;
    share.revoke = revoke;
    share.user = user;
    share.kind = inode->kind;
    return meta__outbox_put(tx, grantee_ns, &share);
}

int meta__grants_drop(struct meta__tx *tx,
                      const Cairn__Cmd__Namespace *ns,
                      const Cairn__Cmd__Inode *inode)
{
    Cairn__Cmd__AclEntry *entry;
    struct meta__iter iter;
    struct meta__key prefix, key;
    const uint8_t *k, *v;
    size_t len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, tx->sm, META__T_GRANT);
    meta__key_u64(&prefix, ns->id);
    meta__key_u64(&prefix, inode->id);
    meta__iter_init(&iter, tx->sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &len);
        key.len = len;
        memcpy(key.bytes, k, len);
        meta__del(tx, &key);
        v = meta__iter_value(&iter, &len);
        entry = cairn__cmd__acl_entry__unpack(NULL, len, v);
        if (entry == NULL) {
            rv = cn_errmsgf(tx->sm->errmsg, CAIRN_ECORRUPT, "grant: malformed");
            break;
        }
        rv = share_outbox(tx, ns, inode, entry->user, CAIRN__CMD__ROLE__ROLE_NONE,
                          entry->grantee_ns, true);
        meta_record_free(entry);
    }
    close_rv = meta__iter_close(&iter, tx->sm);
    return rv != 0 ? rv : close_rv;
}

/* Loads the namespace (the actor must own inode) and the inode (0: the root). */
static int acl_target(struct meta__tx *tx,
                      uint64_t ns_id,
                      uint64_t inode_id,
                      Cairn__Cmd__Namespace **ns,
                      Cairn__Cmd__Inode **inode)
{
    int rv;

    rv = meta__ns_access(tx, ns_id, inode_id, CAIRN__CMD__ROLE__ROLE_OWNER, ns);
    if (rv != 0) {
        return rv;
    }
    rv = meta_get_inode(tx->sm, ns_id, inode_id == 0 ? (*ns)->root_inode : inode_id, inode);
    if (rv != 0) {
        meta_record_free(*ns);
        *ns = NULL;
    }
    return rv;
}

int meta__op_acl_grant(struct meta__tx *tx, const Cairn__Cmd__AclGrant *op)
{
    Cairn__Cmd__AclEntry entry = CAIRN__CMD__ACL_ENTRY__INIT;
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *inode;
    struct meta__key key;
    int rv;

    if (op->role != CAIRN__CMD__ROLE__ROLE_VIEWER && op->role != CAIRN__CMD__ROLE__ROLE_EDITOR) {
        return CAIRN_EINVAL;
    }
    rv = acl_target(tx, op->ns, op->inode, &ns, &inode);
    if (rv != 0) {
        return rv;
    }
    if (op->user == 0 || op->user == ns->owner) {
        rv = CAIRN_EINVAL;
        goto out;
    }
    entry.user = op->user;
    entry.role = op->role;
    entry.grantee_ns = op->grantee_ns;
    entry.time_ms = tx->time_ms;
    grant_key(tx->sm, op->ns, inode->id, op->user, &key);
    rv = meta__put_msg(tx, &key, &entry.base);
    if (rv == 0) {
        rv = share_outbox(tx, ns, inode, op->user, op->role, op->grantee_ns, false);
    }
    if (rv == 0) {
        rv = acl_event(tx, ns, CAIRN__CMD__EVENT_KIND__EVENT_SHARED, inode, op->user, op->role);
    }
out:
    meta_record_free(inode);
    meta_record_free(ns);
    return rv;
}

int meta__op_acl_revoke(struct meta__tx *tx, const Cairn__Cmd__AclRevoke *op)
{
    Cairn__Cmd__AclEntry *entry = NULL;
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *inode;
    struct meta__key key;
    int rv;

    rv = acl_target(tx, op->ns, op->inode, &ns, &inode);
    if (rv != 0) {
        return rv;
    }
    grant_key(tx->sm, op->ns, inode->id, op->user, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__acl_entry__descriptor, (void **)&entry);
    if (rv != 0) {
        goto out;
    }
    meta__del(tx, &key);
    rv = share_outbox(tx, ns, inode, op->user, CAIRN__CMD__ROLE__ROLE_NONE,
                      op->grantee_ns != 0 ? op->grantee_ns : entry->grantee_ns, true);
    if (rv == 0) {
        rv = acl_event(tx, ns, CAIRN__CMD__EVENT_KIND__EVENT_UNSHARED, inode, op->user,
                       CAIRN__CMD__ROLE__ROLE_NONE);
    }
out:
    meta_record_free(entry);
    meta_record_free(inode);
    meta_record_free(ns);
    return rv;
}

/* ---- Reads ---- */

int meta_get_namespace(struct meta_sm *sm, uint64_t ns, Cairn__Cmd__Namespace **record)
{
    struct meta__key key;

    ns_key(sm, ns, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__namespace__descriptor, (void **)record);
}

int meta_role(struct meta_sm *sm, uint64_t ns, uint64_t user, Cairn__Cmd__Role *role)
{
    return meta_role_inode(sm, ns, 0, user, role);
}

int meta_role_inode(
    struct meta_sm *sm, uint64_t ns, uint64_t inode, uint64_t user, Cairn__Cmd__Role *role)
{
    Cairn__Cmd__Namespace *record;
    int rv;

    rv = meta_get_namespace(sm, ns, &record);
    if (rv != 0) {
        return rv;
    }
    rv = meta__role_inode(sm, record, inode, user, role);
    meta_record_free(record);
    return rv;
}

int meta_acl_list(struct meta_sm *sm, uint64_t ns, uint64_t inode, meta_acl_cb cb, void *data)
{
    Cairn__Cmd__Namespace *record;
    Cairn__Cmd__AclEntry *entry;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    int rv, close_rv;

    if (inode == 0) {
        rv = meta_get_namespace(sm, ns, &record);
        if (rv != 0) {
            return rv;
        }
        inode = record->root_inode;
        meta_record_free(record);
    }
    meta__key_init(&prefix, sm, META__T_GRANT);
    meta__key_u64(&prefix, ns);
    meta__key_u64(&prefix, inode);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (rv = 0; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        entry = cairn__cmd__acl_entry__unpack(NULL, len, v);
        if (entry == NULL) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "grant: malformed");
            break;
        }
        rv = cb(data, entry);
        meta_record_free(entry);
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

int meta_journal_read(struct meta_sm *sm,
                      uint64_t ns,
                      uint64_t cursor,
                      uint32_t max,
                      meta_event_cb cb,
                      void *data,
                      uint64_t *next)
{
    Cairn__Cmd__Event *event;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    uint32_t count = 0;
    int rv = 0, close_rv;

    *next = cursor;
    meta__key_init(&prefix, sm, META__T_JOURNAL);
    meta__key_u64(&prefix, ns);
    meta__iter_init(&iter, sm, &prefix, NULL);
    if (cursor < UINT64_MAX) {
        struct meta__key start = prefix;
        meta__key_u64(&start, cursor + 1);
        rocksdb_iter_seek(iter.it, (const char *)start.bytes, start.len);
    }
    for (; rv == 0 && count < max && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        event = cairn__cmd__event__unpack(NULL, len, v);
        if (event == NULL) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "journal ns=%" PRIu64 ": bad event", ns);
            break;
        }
        rv = cb(data, event);
        *next = event->seq;
        meta_record_free(event);
        count++;
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}
