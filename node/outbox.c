/*
 * The outbox pump: shares crossing groups (docs/cluster.md, "Sharing across
 * groups").
 *
 * The happy path, on the leader of each data group, every tick:
 *   1. meta_outbox_list() gives the oldest pending entry of the group.
 *   2. ShareDeliver{outbox_id, ns, share} is proposed to the group of the
 *      grantee's drive (ns >> 56): here if this node leads it, else through
 *      its leader (MSG_META_PROPOSE over node_client).
 *   3. Once that is committed, OutboxAck{id} is proposed to the source group;
 *      once that is committed the next entry goes, without waiting for the
 *      next tick.
 *
 * Possible failure modes:
 *   - The target group has no leader, or the call fails: the entry stays;
 *     the next tick tries again. ShareDeliver is idempotent by outbox id, so
 *     delivering twice (a crash between delivery and ack) changes nothing.
 *   - ShareDeliver's outcome is an error (no such drive, a bad entry): it
 *     would be the same on every retry, so the entry is logged and acked.
 *   - Leadership of the source group is lost: the ack fails with
 *     CAIRN_ENOTLEADER and the new leader pumps the entry again.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define PUMP_TIMEOUT_MS 10000u

/* ---- Proposing to any group, from inside the node ---- */

typedef void (*propose_done_cb)(void *data, int rv, const struct meta_result *result);

struct sysprop {
    struct node_cluster *cluster;
    propose_done_cb cb;
    void *data;
    struct meta_propose req;
};

static void sysprop_local_cb(struct meta_propose *req, const struct meta_result *result)
{
    struct sysprop *sp = req->data;

    sp->cb(sp->data,
           result->rv == CAIRN_ENOTLEADER || result->rv == CAIRN_ESHUTDOWN ? result->rv : 0,
           result);
    free(sp);
}

static void sysprop_remote_cb(void *data,
                              int rv,
                              const struct proto_frame_header *header,
                              const uint8_t *payload)
{
    struct sysprop *sp = data;
    Cairn__Wire__MetaProposeReply *reply = NULL;
    struct meta_result result = {0};

    if (rv == 0) {
        reply = cairn__wire__meta_propose_reply__unpack(NULL, header->length, payload);
        rv = reply == NULL ? CAIRN_EPROTO : 0;
    }
    if (reply != NULL) {
        result.rv = reply->rv;
        result.value = reply->value;
        result.duplicate = reply->duplicate;
        cairn__wire__meta_propose_reply__free_unpacked(reply, NULL);
    }
    sp->cb(sp->data, rv, &result);
    free(sp);
}

/* Proposes cmd to group, here or through its leader; cb exactly once
 * (rv: the call's fate; result: the outcome when rv is 0). */
static void propose_to(struct node_cluster *cluster,
                       uint64_t group,
                       const Cairn__Cmd__Command *cmd,
                       propose_done_cb cb,
                       void *data)
{
    Cairn__Wire__MetaPropose req = CAIRN__WIRE__META_PROPOSE__INIT;
    struct sysprop *sp = cn_xcalloc(1, sizeof(*sp));
    struct node_group *g = node__group_find(cluster, group);
    struct node_client *client;
    struct cn_buf command, packed;
    const char *address = NULL;
    int rv;

    if (cluster->stopping) {
        free(sp);
        cb(data, CAIRN_ESHUTDOWN, NULL);
        return;
    }
    sp->cluster = cluster;
    sp->cb = cb;
    sp->data = data;
    sp->req.data = sp;
    if (g != NULL && meta_group_is_leader(g->group)) {
        rv = meta_group_propose(g->group, &sp->req, cmd, sysprop_local_cb);
        if (rv != 0) {
            free(sp);
            cb(data, rv, NULL);
        }
        return;
    }
    if (node__group_leader(cluster, group, &address) == 0 || address == NULL ||
        (client = node__peer(cluster, address)) == NULL) {
        free(sp);
        cb(data, CAIRN_EUNAVAIL, NULL);
        return;
    }
    cn_buf_init(&command);
    cn_buf_init(&packed);
    rv = meta_command_encode(cmd, &command);
    if (rv == 0) {
        req.group = group;
        req.command.data = command.base;
        req.command.len = command.len;
        rv = cn_buf_reserve(&packed, cairn__wire__meta_propose__get_packed_size(&req));
    }
    if (rv == 0) {
        packed.len = cairn__wire__meta_propose__pack(&req, packed.base);
        rv = node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_META_PROPOSE, packed.base,
                              packed.len, PUMP_TIMEOUT_MS, sysprop_remote_cb, sp);
    }
    cn_buf_close(&command);
    cn_buf_close(&packed);
    if (rv != 0) {
        free(sp);
        cb(data, rv, NULL);
    }
}

/* ---- The pump ---- */

/* One entry on its way: owned until pump_end(). */
struct pump {
    struct node_cluster *cluster;
    uint64_t group;
    Cairn__Cmd__OutboxEntry *entry;
};

static void pump_group(struct node_cluster *cluster, uint64_t group);

static void pump_end(struct pump *pump, bool next)
{
    struct node_cluster *cluster = pump->cluster;
    uint64_t group = pump->group;

    cairn__cmd__outbox_entry__free_unpacked(pump->entry, NULL);
    free(pump);
    cluster->pumping[group] = false;
    if (next && !cluster->stopping) {
        pump_group(cluster, group);
    }
}

static void ack_cb(void *data, int rv, const struct meta_result *result)
{
    struct pump *pump = data;

    if (rv == 0 && result->rv != 0 && result->rv != CAIRN_ENOENT) {
        rv = result->rv;
    }
    if (rv != 0 && rv != CAIRN_ESHUTDOWN) {
        CN_LOG(CN_WARN, "outbox ack failed", "group=%llu err=%s", (unsigned long long)pump->group,
               cairn_errname(rv));
    }
    pump->cluster->delivered += rv == 0;
    pump_end(pump, rv == 0);
}

static void deliver_cb(void *data, int rv, const struct meta_result *result)
{
    struct pump *pump = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__OutboxAck ack = CAIRN__CMD__OUTBOX_ACK__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];

    if (rv != 0) {
        pump_end(pump, false); /* the next tick tries again */
        return;
    }
    if (result->rv != 0) {
        /* The same on every retry: give up on this entry, loudly. */
        CN_LOG(CN_WARN, "share delivery refused", "group=%llu target_ns=%llu err=%s",
               (unsigned long long)pump->group, (unsigned long long)pump->entry->target_ns,
               cairn_errname(result->rv));
    }
    node__command_header(pump->cluster, &header, request_id);
    ack.id = pump->entry->id;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_OUTBOX_ACK;
    cmd.outbox_ack = &ack;
    propose_to(pump->cluster, pump->group, &cmd, ack_cb, pump);
}

static int outbox_first_cb(void *data, const Cairn__Cmd__OutboxEntry *entry)
{
    Cairn__Cmd__OutboxEntry **copy = data;
    size_t len = cairn__cmd__outbox_entry__get_packed_size(entry);
    uint8_t *buf = cn_xmalloc(len + 1);

    cairn__cmd__outbox_entry__pack(entry, buf);
    *copy = cairn__cmd__outbox_entry__unpack(NULL, len, buf);
    free(buf);
    return 1; /* one at a time */
}

static void pump_group(struct node_cluster *cluster, uint64_t group)
{
    struct node_group *g = node__group_find(cluster, group);
    Cairn__Cmd__OutboxEntry *entry = NULL;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__ShareDeliver deliver = CAIRN__CMD__SHARE_DELIVER__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE];
    struct pump *pump;

    if (g == NULL || cluster->pumping[group] || !meta_group_is_leader(g->group)) {
        return;
    }
    meta_outbox_list(g->sm, 1, outbox_first_cb, &entry);
    if (entry == NULL) {
        return;
    }
    pump = cn_xcalloc(1, sizeof(*pump));
    pump->cluster = cluster;
    pump->group = group;
    pump->entry = entry;
    cluster->pumping[group] = true;
    node__command_header(cluster, &header, request_id);
    deliver.outbox_id = entry->id;
    deliver.ns = entry->target_ns;
    deliver.share = entry->share;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_SHARE_DELIVER;
    cmd.share_deliver = &deliver;
    propose_to(cluster, entry->target_ns >> 56, &cmd, deliver_cb, pump);
}

void node__outbox_tick(struct node_cluster *cluster)
{
    for (struct node_group *g = cluster->groups; g != NULL; g = g->next) {
        if (g->id != 0 && !g->closing) {
            pump_group(cluster, g->id);
        }
    }
}
