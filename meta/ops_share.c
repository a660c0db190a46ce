/*
 * Sharing across groups: the outbox of the item's group and the inbox of the
 * grantee's drive (docs/cluster.md, "Sharing across groups").
 *
 * The happy path:
 *   1. AclGrant or AclRevoke with a grantee_ns writes, in its own batch, an
 *      outbox entry {id, target ns, share} (meta__outbox_put()). The id is
 *      the group id and the next value of the group's outbox counter: the
 *      same on every replica, unique in the cluster, and growing.
 *   2. The source group's leader lists the pending entries
 *      (meta_outbox_list()) and proposes ShareDeliver{outbox_id, ns, share}
 *      to the group of the target namespace, retrying until it is applied,
 *      then OutboxAck{id} to its own group, which removes the entry.
 *   3. ShareDeliver writes the drive's inbox record (drive ns, source ns,
 *      inode) and appends EVENT_SHARED, or marks it revoked and appends
 *      EVENT_UNSHARED, to the drive's journal. The record keeps the id of
 *      the last delivery applied: a delivery whose id is not newer (a retry,
 *      or an older one overtaken by a newer) is a no-op success, so each
 *      outbox id is journaled at most once, and a grant delivered after its
 *      own revoke does not bring the share back.
 *
 * Possible failure modes: not the system CAIRN_EPERM; a malformed id or
 * share CAIRN_EINVAL; a drive namespace not in this group CAIRN_ENOENT (the
 * deliverer retries: the drive may not exist yet).
 */
#include <inttypes.h>
#include <string.h>

#include "meta_int.h"

static void outbox_key(struct meta_sm *sm, const uint8_t *id, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_OUTBOX);
    meta__key_bytes(key, id, META_OUTBOX_ID_SIZE);
}

static void inbox_key(struct meta_sm *sm,
                      uint64_t drive_ns,
                      uint64_t source_ns,
                      uint64_t inode,
                      struct meta__key *key)
{
    meta__key_init(key, sm, META__T_INBOX);
    meta__key_u64(key, drive_ns);
    meta__key_u64(key, source_ns);
    meta__key_u64(key, inode);
}

int meta__outbox_put(struct meta__tx *tx, uint64_t target_ns, Cairn__Cmd__ShareInfo *share)
{
    Cairn__Cmd__OutboxEntry entry = CAIRN__CMD__OUTBOX_ENTRY__INIT;
    uint8_t id[META_OUTBOX_ID_SIZE];
    struct meta__key key;
    uint64_t seq = 0;
    int rv;

    CN_ASSERT(target_ns != 0);
    meta__key_init(&key, tx->sm, META__T_OUTBOX_SEQ);
    rv = meta__get_u64(tx->sm, &key, &seq);
    if (rv != 0 && rv != CAIRN_ENOENT) {
        return rv;
    }
    seq++;
    meta__put_u64(tx, &key, seq);
    /* Big-endian, so ids sort by group, then sequence. */
    for (int i = 0; i < 8; i++) {
        id[i] = (uint8_t)(tx->sm->group_id >> (56 - 8 * i));
        id[8 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    entry.id.data = id;
    entry.id.len = sizeof(id);
    entry.target_ns = target_ns;
    entry.share = share;
    outbox_key(tx->sm, id, &key);
    return meta__put_msg(tx, &key, &entry.base);
}

int meta__op_outbox_ack(struct meta__tx *tx, const Cairn__Cmd__OutboxAck *op)
{
    struct meta__key key;

    if (tx->actor != 0) {
        return CAIRN_EPERM;
    }
    if (op->id.len != META_OUTBOX_ID_SIZE) {
        return CAIRN_EINVAL;
    }
    outbox_key(tx->sm, op->id.data, &key);
    meta__del(tx, &key); /* idempotent: an acked entry is acked again */
    return 0;
}

static bool share_valid(const Cairn__Cmd__ShareInfo *share)
{
    if (share == NULL || share->ns == 0 || share->inode == 0 || share->user == 0 ||
        strlen(share->name) > META_NAME_MAX) {
        return false;
    }
    return share->revoke || share->role == CAIRN__CMD__ROLE__ROLE_VIEWER ||
           share->role == CAIRN__CMD__ROLE__ROLE_EDITOR;
}

static int deliver_event(struct meta__tx *tx,
                         Cairn__Cmd__Namespace *drive,
                         const Cairn__Cmd__ShareInfo *share,
                         Cairn__Cmd__EventKind kind)
{
    Cairn__Cmd__Event event = CAIRN__CMD__EVENT__INIT;
    int rv;

    event.kind = kind;
    event.ns = share->ns;
    event.inode = share->inode;
    event.name = share->name;
    event.user = share->owner;
    event.role = share->revoke ? CAIRN__CMD__ROLE__ROLE_NONE : share->role;
    rv = meta__journal_append(tx, drive, &event);
    if (rv == 0) {
        rv = meta__ns_put(tx, drive);
    }
    return rv;
}

int meta__op_share_deliver(struct meta__tx *tx, const Cairn__Cmd__ShareDeliver *op)
{
    Cairn__Cmd__InboxEntry entry = CAIRN__CMD__INBOX_ENTRY__INIT;
    Cairn__Cmd__InboxEntry *old = NULL;
    Cairn__Cmd__Namespace *drive;
    struct meta__key key;
    bool was_live;
    int rv;

    if (tx->actor != 0) {
        return CAIRN_EPERM;
    }
    if (op->outbox_id.len != META_OUTBOX_ID_SIZE || !share_valid(op->share)) {
        return CAIRN_EINVAL;
    }
    rv = meta_get_namespace(tx->sm, op->ns, &drive);
    if (rv != 0) {
        return rv;
    }
    inbox_key(tx->sm, op->ns, op->share->ns, op->share->inode, &key);
    rv = meta__get_msg(tx->sm, &key, &cairn__cmd__inbox_entry__descriptor, (void **)&old);
    if (rv == CAIRN_ENOENT) {
        rv = 0;
    } else if (rv == 0 && (old->outbox_id.len != META_OUTBOX_ID_SIZE || old->share == NULL)) {
        rv = cn_errmsgf(tx->sm->errmsg, CAIRN_ECORRUPT, "inbox entry: malformed");
    } else if (rv == 0 &&
               memcmp(old->outbox_id.data, op->outbox_id.data, META_OUTBOX_ID_SIZE) >= 0) {
        goto out; /* delivered already, or overtaken by a newer delivery */
    }
    if (rv != 0) {
        goto out;
    }
    was_live = old != NULL && !old->share->revoke;
    entry.outbox_id = op->outbox_id;
    entry.share = op->share;
    rv = meta__put_msg(tx, &key, &entry.base);
    if (rv == 0 && !op->share->revoke) {
        rv = deliver_event(tx, drive, op->share, CAIRN__CMD__EVENT_KIND__EVENT_SHARED);
    } else if (rv == 0 && was_live) {
        rv = deliver_event(tx, drive, op->share, CAIRN__CMD__EVENT_KIND__EVENT_UNSHARED);
    }
out:
    meta_record_free(old);
    meta_record_free(drive);
    return rv;
}

/* ---- Reads ---- */

int meta_outbox_list(struct meta_sm *sm, uint32_t max, meta_outbox_cb cb, void *data)
{
    Cairn__Cmd__OutboxEntry *entry;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    uint32_t count = 0;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_OUTBOX);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && count < max && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        entry = cairn__cmd__outbox_entry__unpack(NULL, len, v);
        if (entry == NULL || entry->share == NULL) {
            meta_record_free(entry);
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "outbox entry: malformed");
            break;
        }
        rv = cb(data, entry);
        meta_record_free(entry);
        count++;
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}

int meta_inbox_list(struct meta_sm *sm, uint64_t drive_ns, meta_share_cb cb, void *data)
{
    Cairn__Cmd__InboxEntry *entry;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_INBOX);
    meta__key_u64(&prefix, drive_ns);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        entry = cairn__cmd__inbox_entry__unpack(NULL, len, v);
        if (entry == NULL || entry->share == NULL) {
            meta_record_free(entry);
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "inbox entry: malformed");
            break;
        }
        if (!entry->share->revoke) {
            rv = cb(data, entry->share);
        }
        meta_record_free(entry);
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}
