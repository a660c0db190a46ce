/*
 * Rebalance of one chunk and shard deletes (node_repair.h). Each misplaced
 * shard is fetched whole from its old node (which verifies it before
 * serving) and put on its new node; all moves of a chunk run in parallel.
 */
#include <stdlib.h>
#include <string.h>

#include "node_repair.h"
#include "wire.pb-c.h"

struct move;

struct rebalance {
    struct node_blocks *blocks;
    uint8_t chunk_id[32];
    uint64_t timeout_ms;
    struct node_rebalance_result result;
    uint64_t target[NODE_SHARDS_MAX];
    unsigned in_flight;
    int rv;
    struct move *moves[NODE_SHARDS_MAX];
    node_rebalance_cb cb;
    void *data;
};

struct move {
    struct rebalance *rb;
    unsigned index;
};

static void settle(struct rebalance *rb)
{
    if (--rb->in_flight > 0) {
        return;
    }
    rb->cb(rb->data, rb->rv, &rb->result);
    for (unsigned i = 0; i < NODE_SHARDS_MAX; i++) {
        free(rb->moves[i]);
    }
    free(rb);
}

static void fail(struct rebalance *rb, int rv)
{
    if (rb->rv == 0) {
        rb->rv = rv;
    }
}

static void put_cb(void *data,
                   int rv,
                   const struct proto_frame_header *header,
                   const uint8_t *payload)
{
    struct move *mv = data;
    struct rebalance *rb = mv->rb;

    (void)header;
    (void)payload;
    if (rv == 0) {
        rb->result.from[mv->index] = rb->result.node_ids[mv->index];
        rb->result.node_ids[mv->index] = rb->target[mv->index];
        rb->result.moved++;
    } else {
        fail(rb, rv);
    }
    settle(rb);
}

static void got_cb(void *data,
                   int rv,
                   const struct proto_frame_header *header,
                   const uint8_t *payload)
{
    struct move *mv = data;
    struct rebalance *rb = mv->rb;
    Cairn__Wire__ShardGetReply *reply = NULL;

    if (rv == 0) {
        reply = cairn__wire__shard_get_reply__unpack(NULL, header->length, payload);
    }
    if (reply == NULL || reply->data.len == 0) {
        fail(rb, rv != 0 ? rv : CAIRN_EPROTO); /* unreadable here: repair's job */
    } else {
        Cairn__Wire__ShardPut put = CAIRN__WIRE__SHARD_PUT__INIT;
        size_t len;
        uint8_t *packed;

        put.shard = reply->data;
        len = cairn__wire__shard_put__get_packed_size(&put);
        packed = cn_xmalloc(len);
        cairn__wire__shard_put__pack(&put, packed);
        rv = node_blocks_call(rb->blocks, rb->target[mv->index],
                              CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT, packed, len, rb->timeout_ms,
                              put_cb, mv);
        free(packed);
        if (rv == 0) {
            rb->in_flight++;
        } else {
            fail(rb, rv);
        }
    }
    if (reply != NULL) {
        cairn__wire__shard_get_reply__free_unpacked(reply, NULL);
    }
    settle(rb);
}

static bool excluded(uint64_t node_id, const uint64_t *exclude, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        if (exclude[i] == node_id) {
            return true;
        }
    }
    return false;
}

static bool in_set(uint64_t node_id, const uint64_t *set, unsigned count)
{
    return excluded(node_id, set, count);
}

int node_blocks_rebalance(struct node_blocks *blocks,
                          const uint8_t chunk_id[32],
                          const uint64_t *node_ids,
                          unsigned shard_count,
                          const uint64_t *exclude,
                          unsigned exclude_count,
                          uint64_t timeout_ms,
                          node_rebalance_cb cb,
                          void *data)
{
    struct node_candidate candidates[NODE_BLOCKS_MEMBERS_MAX];
    unsigned count = 0, placed[NODE_SHARDS_MAX];
    uint64_t wanted[NODE_SHARDS_MAX], staying[NODE_SHARDS_MAX];
    unsigned staying_count = 0;
    bool stays[NODE_SHARDS_MAX];
    struct rebalance *rb;
    int rv;

    if (shard_count < 1 || shard_count > NODE_SHARDS_MAX) {
        return CAIRN_EINVAL;
    }
    for (unsigned i = 0; i < node_blocks_member_count(blocks); i++) {
        const struct node_member *m = node_blocks_member_at(blocks, i);
        if (m->up && !m->draining && !excluded(m->node_id, exclude, exclude_count)) {
            candidates[count++] = (struct node_candidate){m->node_id, m->domain};
        }
    }
    rv = node_place(chunk_id, candidates, count, shard_count, placed);
    if (rv != 0) {
        return rv;
    }
    for (unsigned i = 0; i < shard_count; i++) {
        wanted[i] = candidates[placed[i]].node_id;
    }
    rb = cn_xcalloc(1, sizeof(*rb));
    rb->blocks = blocks;
    memcpy(rb->chunk_id, chunk_id, 32);
    rb->timeout_ms = timeout_ms;
    rb->cb = cb;
    rb->data = data;
    rb->result.shard_count = shard_count;
    memcpy(rb->result.node_ids, node_ids, shard_count * sizeof(*node_ids));
    for (unsigned i = 0; i < shard_count; i++) {
        /* A shard stays if its node is wanted and no earlier shard stays there. */
        stays[i] = in_set(node_ids[i], wanted, shard_count) &&
                   !in_set(node_ids[i], staying, staying_count);
        if (stays[i]) {
            staying[staying_count++] = node_ids[i];
        }
    }
    rb->in_flight = 1; /* held until every move is started */
    for (unsigned i = 0, next = 0; i < shard_count; i++) {
        Cairn__Wire__ShardRef ref = CAIRN__WIRE__SHARD_REF__INIT;
        Cairn__Wire__ShardGet get = CAIRN__WIRE__SHARD_GET__INIT;
        uint8_t packed[96];
        size_t len;

        if (stays[i]) {
            continue;
        }
        while (next < shard_count && in_set(wanted[next], staying, staying_count)) {
            next++; /* wanted nodes that keep a shard of the chunk already */
        }
        if (next == shard_count) {
            fail(rb, CAIRN_EUNAVAIL);
            continue;
        }
        rb->target[i] = wanted[next++];
        rb->moves[i] = cn_xcalloc(1, sizeof(struct move));
        *rb->moves[i] = (struct move){rb, i};
        ref.chunk_id.data = rb->chunk_id;
        ref.chunk_id.len = 32;
        ref.index = i;
        get.ref = &ref;
        len = cairn__wire__shard_get__pack(&get, packed);
        if (node_blocks_call(blocks, node_ids[i], CAIRN__WIRE__MSG_TYPE__MSG_SHARD_GET, packed, len,
                             timeout_ms, got_cb, rb->moves[i]) == 0) {
            rb->in_flight++;
        } else {
            fail(rb, CAIRN_EUNAVAIL);
        }
    }
    settle(rb);
    return 0;
}

struct delete_call {
    node_delete_cb cb;
    void *data;
};

static void deleted_cb(void *data,
                       int rv,
                       const struct proto_frame_header *header,
                       const uint8_t *payload)
{
    struct delete_call *call = data;

    (void)header;
    (void)payload;
    call->cb(call->data, rv);
    free(call);
}

int node_blocks_delete(struct node_blocks *blocks,
                       uint64_t node_id,
                       const uint8_t chunk_id[32],
                       unsigned index,
                       uint64_t timeout_ms,
                       node_delete_cb cb,
                       void *data)
{
    Cairn__Wire__ShardRef ref = CAIRN__WIRE__SHARD_REF__INIT;
    struct delete_call *call = cn_xmalloc(sizeof(*call));
    uint8_t packed[64];
    size_t len;
    int rv;

    ref.chunk_id.data = (uint8_t *)chunk_id;
    ref.chunk_id.len = 32;
    ref.index = index;
    len = cairn__wire__shard_ref__pack(&ref, packed);
    *call = (struct delete_call){cb, data};
    rv = node_blocks_call(blocks, node_id, CAIRN__WIRE__MSG_TYPE__MSG_SHARD_DELETE, packed, len,
                          timeout_ms, deleted_cb, call);
    if (rv != 0) {
        free(call);
    }
    return rv;
}
