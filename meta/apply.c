/*
 * Applying one Raft entry to a group's state.
 *
 * The happy path of meta_sm_apply():
 *   1. An entry at or below the applied index was applied before a restart
 *      (its WriteBatch carried the index): skip it.
 *   2. Decode the command (command.c) and check its header.
 *   3. If its request id is remembered, this is a client's retry: return the
 *      first outcome and change nothing else (exactly-once).
 *   4. Run the operation (ops_*.c): it reads the store and fills a
 *      WriteBatch, and reads its own writes through the batch's overlay (a
 *      hash of the keys it wrote, store.c); on an operation error the batch
 *      is cleared, so a failed command changes nothing but its outcome.
 *   5. Remember the outcome under the request id, forget up to
 *      META_DEDUP_PRUNE_MAX ids older than the window (by command time, so
 *      every replica forgets the same ones), write the applied index, and
 *      commit the batch: all of it or nothing.
 *
 * Possible failure modes:
 *   - A malformed entry or header: the outcome is CAIRN_EPROTO/CAIRN_EINVAL,
 *     the same on every replica; the index still advances.
 *   - The store fails to read or write (CAIRN_EIO), a record does not unpack
 *     (CAIRN_ECORRUPT), or memory runs out: not an outcome, since another
 *     replica would not fail alike. meta_sm_apply() returns the error, writes
 *     nothing, and the replica must stop rather than diverge.
 */
#include <stdlib.h>
#include <string.h>

#include "meta_int.h"

static bool fatal(int rv)
{
    return rv == CAIRN_EIO || rv == CAIRN_ECORRUPT || rv == CAIRN_ENOMEM;
}

static int dispatch(struct meta__tx *tx, const Cairn__Cmd__Command *cmd)
{
    switch (cmd->op_case) {
    case CAIRN__CMD__COMMAND__OP_USER_CREATE:
        return meta__op_user_create(tx, cmd->user_create);
    case CAIRN__CMD__COMMAND__OP_USER_SET_PASSWORD:
        return meta__op_user_set_password(tx, cmd->user_set_password);
    case CAIRN__CMD__COMMAND__OP_USER_SET_QUOTA:
        return meta__op_user_set_quota(tx, cmd->user_set_quota);
    case CAIRN__CMD__COMMAND__OP_NAMESPACE_SET_QUOTA:
        return meta__op_namespace_set_quota(tx, cmd->namespace_set_quota);
    case CAIRN__CMD__COMMAND__OP_USER_DISABLE:
        return meta__op_user_disable(tx, cmd->user_disable);
    case CAIRN__CMD__COMMAND__OP_TOKEN_CREATE:
        return meta__op_token_create(tx, cmd->token_create);
    case CAIRN__CMD__COMMAND__OP_TOKEN_REVOKE:
        return meta__op_token_revoke(tx, cmd->token_revoke);
    case CAIRN__CMD__COMMAND__OP_NAMESPACE_CREATE:
        return meta__op_namespace_create(tx, cmd->namespace_create);
    case CAIRN__CMD__COMMAND__OP_MKDIR:
        return meta__op_mkdir(tx, cmd->mkdir);
    case CAIRN__CMD__COMMAND__OP_CREATE:
        return meta__op_create(tx, cmd->create);
    case CAIRN__CMD__COMMAND__OP_COMMIT:
        return meta__op_commit(tx, cmd->commit);
    case CAIRN__CMD__COMMAND__OP_RENAME:
        return meta__op_rename(tx, cmd->rename);
    case CAIRN__CMD__COMMAND__OP_TRASH:
        return meta__op_trash(tx, cmd->trash);
    case CAIRN__CMD__COMMAND__OP_RESTORE:
        return meta__op_restore(tx, cmd->restore);
    case CAIRN__CMD__COMMAND__OP_PURGE:
        return meta__op_purge(tx, cmd->purge);
    case CAIRN__CMD__COMMAND__OP_VERSION_RESTORE:
        return meta__op_version_restore(tx, cmd->version_restore);
    case CAIRN__CMD__COMMAND__OP_CHUNK_RECORD:
        return meta__op_chunk_record(tx, cmd->chunk_record);
    case CAIRN__CMD__COMMAND__OP_CHUNK_TOUCH:
        return meta__op_chunk_touch(tx, cmd->chunk_touch);
    case CAIRN__CMD__COMMAND__OP_ACL_GRANT:
        return meta__op_acl_grant(tx, cmd->acl_grant);
    case CAIRN__CMD__COMMAND__OP_ACL_REVOKE:
        return meta__op_acl_revoke(tx, cmd->acl_revoke);
    case CAIRN__CMD__COMMAND__OP_UPLOAD_BEGIN:
        return meta__op_upload_begin(tx, cmd->upload_begin);
    case CAIRN__CMD__COMMAND__OP_UPLOAD_COMPLETE:
        return meta__op_upload_complete(tx, cmd->upload_complete);
    case CAIRN__CMD__COMMAND__OP_UPLOAD_ABORT:
        return meta__op_upload_abort(tx, cmd->upload_abort);
    case CAIRN__CMD__COMMAND__OP_UPLOAD_APPEND:
        return meta__op_upload_append(tx, cmd->upload_append);
    case CAIRN__CMD__COMMAND__OP_OUTBOX_ACK:
        return meta__op_outbox_ack(tx, cmd->outbox_ack);
    case CAIRN__CMD__COMMAND__OP_SHARE_DELIVER:
        return meta__op_share_deliver(tx, cmd->share_deliver);
    case CAIRN__CMD__COMMAND__OP_CLUSTER_INIT:
        return meta__op_cluster_init(tx, cmd->cluster_init);
    case CAIRN__CMD__COMMAND__OP_NODE_ADD:
        return meta__op_node_add(tx, cmd->node_add);
    case CAIRN__CMD__COMMAND__OP_NODE_SET_STATE:
        return meta__op_node_set_state(tx, cmd->node_set_state);
    default:
        return CAIRN_EINVAL; /* no operation, or one from a newer version */
    }
}

/* Looks the request id up: 0 with the first outcome, CAIRN_ENOENT, or fatal.
 * A new id, the common case, is answered from memory (dedup.c). */
static int dedup_lookup(struct meta_sm *sm,
                        const ProtobufCBinaryData *id,
                        struct meta_result *result)
{
    Cairn__Cmd__Outcome *outcome;
    struct meta__key key;
    int rv;

    if (!meta__dedup_has(&sm->dedup, id->data)) {
        return CAIRN_ENOENT;
    }
    meta__key_init(&key, sm, META__T_REQUEST);
    meta__key_bytes(&key, id->data, id->len);
    rv = meta__get_msg(sm, &key, &cairn__cmd__outcome__descriptor, (void **)&outcome);
    if (rv == CAIRN_ENOENT) {
        return cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "request id in memory, not in the store");
    }
    if (rv != 0) {
        return rv;
    }
    result->rv = outcome->rv;
    result->value = outcome->value;
    result->duplicate = true;
    meta_record_free(outcome);
    return 0;
}

static int dedup_remember(struct meta__tx *tx,
                          const ProtobufCBinaryData *id,
                          const struct meta_result *result)
{
    Cairn__Cmd__Outcome outcome = CAIRN__CMD__OUTCOME__INIT;
    struct meta__key key;

    outcome.rv = result->rv;
    outcome.value = result->value;
    outcome.time_ms = tx->time_ms;
    meta__key_init(&key, tx->sm, META__T_REQUEST);
    meta__key_bytes(&key, id->data, id->len);
    tx->remembered = id->data; /* joins sm->dedup once written */
    return meta__put_msg(tx, &key, &outcome.base);
}

/* Forgets up to META_DEDUP_PRUNE_MAX of the oldest request ids that left
 * the window before tx's time, oldest by (time, id) first: the same ones on
 * every replica, since the order depends on the remembered ids alone. They
 * come off the in-memory heap now (the next oldest shows) and leave the set
 * once the batch is written (dedup_settle()). */
static void dedup_prune(struct meta__tx *tx)
{
    struct meta_sm *sm = tx->sm;
    const struct meta__dedup_entry *oldest;
    struct meta__dedup_entry *e;
    struct meta__key key;

    while (tx->pruned_count < META_DEDUP_PRUNE_MAX) {
        oldest = meta__dedup_oldest(&sm->dedup);
        if (oldest == NULL || oldest->time_ms + sm->limits.dedup_window_ms > tx->time_ms) {
            break; /* the rest is younger */
        }
        e = &tx->pruned[tx->pruned_count++];
        meta__dedup_take_oldest(&sm->dedup, e);
        meta__key_init(&key, sm, META__T_REQUEST);
        meta__key_bytes(&key, e->id, META_REQUEST_ID_SIZE);
        meta__del(tx, &key);
    }
}

/* After the apply: what it did to the remembered ids becomes true in
 * memory if its batch was written, and is undone if not. */
static void dedup_settle(struct meta_sm *sm, struct meta__tx *tx, bool written)
{
    for (unsigned i = 0; i < tx->pruned_count; i++) {
        if (written) {
            meta__dedup_forget(&sm->dedup, tx->pruned[i].id);
        } else {
            meta__dedup_put_back(&sm->dedup, &tx->pruned[i]);
        }
    }
    tx->pruned_count = 0;
    if (written && tx->remembered != NULL) {
        meta__dedup_add(&sm->dedup, tx->remembered, tx->time_ms);
    }
    tx->remembered = NULL;
}

/* Runs the command into tx->batch; the outcome goes to result. */
static int apply_command(struct meta__tx *tx,
                         const Cairn__Cmd__Command *cmd,
                         struct meta_result *result)
{
    const ProtobufCBinaryData *id;
    int rv;

    if (cmd->header == NULL) {
        result->rv = CAIRN_EPROTO;
        return 0;
    }
    id = &cmd->header->request_id;
    if (id->len != 0 && id->len != META_REQUEST_ID_SIZE) {
        result->rv = CAIRN_EINVAL;
        return 0;
    }
    tx->time_ms = cmd->header->time_ms;
    tx->actor = cmd->header->actor_user;
    if (id->len != 0) {
        rv = dedup_lookup(tx->sm, id, result);
        if (rv != CAIRN_ENOENT) {
            return rv; /* a retry (0), or fatal */
        }
    }
    rv = dispatch(tx, cmd);
    if (fatal(rv)) {
        return rv;
    }
    result->rv = rv;
    result->value = rv == 0 ? tx->value : 0;
    if (rv != 0) {
        meta__overlay_clear(tx->batch);
        tx->sm->event_ns = 0; /* the event was not written */
    }
    if (id->len != 0) {
        rv = dedup_remember(tx, id, result);
        if (rv != 0) {
            return rv;
        }
    }
    dedup_prune(tx);
    return 0;
}

static int write_batch(struct meta_sm *sm, struct meta__overlay *batch)
{
    if (cn_fault_tick(&sm->fault)) {
        return cn_errmsgf(sm->errmsg, CAIRN_EIO, "rocksdb_write: injected fault");
    }
    return meta__overlay_commit(sm, batch);
}

int meta_sm_apply(
    struct meta_sm *sm, meta_index index, const void *buf, size_t len, struct meta_result *result)
{
    struct meta__tx tx = {.sm = sm, .batch = &sm->scratch};
    Cairn__Cmd__Command *cmd = NULL;
    struct meta__key key;
    int rv;

    memset(result, 0, sizeof(*result));
    rocksdb_set_perf_level(rocksdb_disable); /* per thread; RocksDB's counters cost ~10% */
    sm->event_ns = 0;
    sm->event_seq = 0;
    if (index <= sm->applied) {
        result->duplicate = true; /* applied before a restart */
        sm->skipped++;
        return 0;
    }
    CN_ASSERT(tx.batch->count == 0);
    sm->pending = tx.batch;
    rv = meta_command_decode(buf, len, &cmd);
    if (rv != 0) {
        result->rv = rv;
        rv = 0;
    } else {
        rv = apply_command(&tx, cmd, result);
    }
    if (rv != 0) {
        CN_ASSERT(fatal(rv));
        goto out;
    }
    meta__key_init(&key, sm, META__T_APPLIED);
    meta__put_u64(&tx, &key, index);
    rv = write_batch(sm, tx.batch);
    if (rv == 0) {
        sm->applied = index;
    }
out:
    dedup_settle(sm, &tx, rv == 0);
    if (rv != 0) {
        sm->event_ns = 0;
    }
    sm->pending = NULL;
    meta_record_free(cmd);
    meta__overlay_clear(tx.batch); /* kept for the next apply */
    meta__overlay_trim(tx.batch);
    return rv;
}

int meta_sm_apply_noop(struct meta_sm *sm, meta_index index)
{
    struct meta__tx tx = {.sm = sm, .batch = &sm->scratch};
    struct meta__key key;
    int rv;

    if (index <= sm->applied) {
        return 0;
    }
    CN_ASSERT(tx.batch->count == 0);
    meta__key_init(&key, sm, META__T_APPLIED);
    meta__put_u64(&tx, &key, index);
    rv = write_batch(sm, tx.batch);
    if (rv == 0) {
        sm->applied = index;
    }
    meta__overlay_clear(tx.batch);
    return rv;
}
