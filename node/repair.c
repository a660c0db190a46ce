/*
 * Repairing one chunk (node_repair.h), in three steps on the loop:
 *
 *   1. check: MSG_SHARD_VERIFY for every shard on its node; a down member, a
 *      missing or corrupt shard makes that shard bad; a node that does not
 *      answer while the cluster map calls it up is only unreachable (a
 *      partition, a pause): its shard is left alone, never rebuilt elsewhere
 *      before the map gives the node up;
 *   2. rebuild: fetch any k shards (node_blocks_get: data shards first, read
 *      around failures), then rebuild every bad shard on the thread pool;
 *   3. store: each rebuilt shard goes to its own node when only the shard was
 *      bad, else to the best up member holding nothing of the chunk (a new
 *      failure domain first), by MSG_SHARD_PUT, durable when answered.
 *
 * Nothing is deleted here: a shard on a node that comes back after its copy
 * was rebuilt elsewhere is an extra copy, cleaned up by rebalance.
 */
#include <stdlib.h>
#include <string.h>

#include "node_repair.h"
#include "storage.h"
#include "wire.pb-c.h"

struct repair;

struct shard_call {
    struct repair *repair;
    unsigned index;
};

struct repair {
    struct node_blocks *blocks;
    uint8_t chunk_id[32];
    unsigned k;
    unsigned n;
    uint64_t timeout_ms;
    struct node_repair_result result;
    bool bad[NODE_SHARDS_MAX];
    bool node_lost[NODE_SHARDS_MAX]; /* the node, not only the shard, failed */
    uint64_t target[NODE_SHARDS_MAX];
    unsigned in_flight;
    uint8_t *got[NODE_SHARDS_MAX]; /* shards fetched for the rebuild */
    size_t got_lens[NODE_SHARDS_MAX];
    unsigned got_count;
    uint8_t *rebuilt[NODE_SHARDS_MAX];
    size_t rebuilt_lens[NODE_SHARDS_MAX];
    int rv;
    uv_work_t work;
    struct shard_call calls[NODE_SHARDS_MAX];
    node_repair_cb cb;
    void *data;
};

static void finish(struct repair *r, int rv, const char *step)
{
    r->result.step = rv != 0 ? step : NULL;
    r->cb(r->data, rv, &r->result);
    for (unsigned i = 0; i < NODE_SHARDS_MAX; i++) {
        free(r->got[i]);
        free(r->rebuilt[i]);
    }
    free(r);
}

static const struct node_member *member_of(struct node_blocks *blocks, uint64_t node_id)
{
    for (unsigned i = 0; i < node_blocks_member_count(blocks); i++) {
        const struct node_member *m = node_blocks_member_at(blocks, i);
        if (m->node_id == node_id) {
            return m;
        }
    }
    return NULL;
}

/* ---- 3. store ---- */

static void stored_cb(void *data,
                      int rv,
                      const struct proto_frame_header *header,
                      const uint8_t *payload)
{
    struct shard_call *call = data;
    struct repair *r = call->repair;

    (void)header;
    (void)payload;
    if (rv == 0) {
        r->result.node_ids[call->index] = r->target[call->index];
        r->result.rebuilt++;
    }
    if (--r->in_flight == 0) {
        finish(r, r->result.rebuilt == r->result.missing ? 0 : CAIRN_EUNAVAIL, "store");
    }
}

/* True if node_id holds (or is to hold) a shard of the chunk, or lost its
 * shard by not answering: never a new home. */
static bool holds_shard(const struct repair *r, uint64_t node_id)
{
    for (unsigned i = 0; i < r->n; i++) {
        if ((!r->bad[i] && r->result.node_ids[i] == node_id) || r->target[i] == node_id ||
            (r->node_lost[i] && r->result.node_ids[i] == node_id)) {
            return true;
        }
    }
    return false;
}

static bool domain_held(const struct repair *r, uint32_t domain)
{
    for (unsigned i = 0; i < r->n; i++) {
        uint64_t id = r->bad[i] ? r->target[i] : r->result.node_ids[i];
        const struct node_member *m = id != 0 ? member_of(r->blocks, id) : NULL;
        if (m != NULL && m->domain == domain) {
            return true;
        }
    }
    return false;
}

/* A new home for bad shard i: rendezvous order over the up members, a member
 * of an unused failure domain first; 0 if every up member holds a shard. */
static uint64_t new_home(struct repair *r)
{
    struct node_candidate candidates[NODE_BLOCKS_MEMBERS_MAX];
    unsigned count = 0, *order;
    uint64_t found = 0;

    for (unsigned i = 0; i < node_blocks_member_count(r->blocks); i++) {
        const struct node_member *m = node_blocks_member_at(r->blocks, i);
        if (m->up && !m->draining) {
            candidates[count++] = (struct node_candidate){m->node_id, m->domain};
        }
    }
    order = cn_xcalloc(count + 1, sizeof(*order));
    if (count > 0 && node_place(r->chunk_id, candidates, count, count, order) == 0) {
        for (unsigned pass = 0; pass < 2 && found == 0; pass++) {
            for (unsigned i = 0; i < count && found == 0; i++) {
                const struct node_candidate *c = &candidates[order[i]];
                if (!holds_shard(r, c->node_id) && (pass == 1 || !domain_held(r, c->domain))) {
                    found = c->node_id;
                }
            }
        }
    }
    free(order);
    return found;
}

static void store_all(struct repair *r)
{
    r->in_flight = 1; /* held until every put is sent */
    for (unsigned i = 0; i < r->n; i++) {
        Cairn__Wire__ShardPut put = CAIRN__WIRE__SHARD_PUT__INIT;
        uint8_t *packed;
        size_t len;

        if (!r->bad[i] || r->rebuilt[i] == NULL) {
            continue;
        }
        r->target[i] = r->node_lost[i] ? new_home(r) : r->result.node_ids[i];
        if (r->target[i] == 0) {
            continue; /* no member can take it: the chunk stays degraded */
        }
        put.shard.data = r->rebuilt[i];
        put.shard.len = r->rebuilt_lens[i];
        len = cairn__wire__shard_put__get_packed_size(&put);
        packed = cn_xmalloc(len);
        cairn__wire__shard_put__pack(&put, packed);
        r->calls[i] = (struct shard_call){r, i};
        if (node_blocks_call(r->blocks, r->target[i], CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT, packed,
                             len, r->timeout_ms, stored_cb, &r->calls[i]) == 0) {
            r->in_flight++;
        } else {
            r->target[i] = 0;
        }
        free(packed);
    }
    stored_cb(&(struct shard_call){r, 0}, CAIRN_EUNAVAIL, NULL, NULL); /* drop the hold */
}

/* ---- 2. rebuild ---- */

static void rebuild_work(uv_work_t *req)
{
    struct repair *r = CN_CONTAINER_OF(req, struct repair, work);
    struct stor_id id;

    memcpy(id.bytes, r->chunk_id, sizeof(id.bytes));
    for (unsigned i = 0; i < r->n && r->rv == 0; i++) {
        size_t cap = r->got_lens[0];
        if (!r->bad[i]) {
            continue;
        }
        r->rebuilt[i] = cn_xmalloc(cap);
        r->rv = stor_shard_rebuild(&id, (const uint8_t *const *)r->got, r->got_lens, r->got_count,
                                   i, r->rebuilt[i], cap, &r->rebuilt_lens[i], NULL);
    }
}

static void rebuild_done(uv_work_t *req, int status)
{
    struct repair *r = CN_CONTAINER_OF(req, struct repair, work);

    CN_ASSERT(status == 0);
    if (r->rv != 0) {
        finish(r, r->rv, "rebuild");
        return;
    }
    store_all(r);
}

static void fetched_cb(
    void *data, int rv, const uint8_t *const *shards, const size_t *lens, unsigned count)
{
    struct repair *r = data;

    if (rv != 0) {
        finish(r, rv, "fetch");
        return;
    }
    for (unsigned i = 0; i < count && i < NODE_SHARDS_MAX; i++) {
        r->got[i] = cn_xmalloc(lens[i]);
        memcpy(r->got[i], shards[i], lens[i]);
        r->got_lens[i] = lens[i];
        r->got_count++;
    }
    if (uv_queue_work(node_blocks_loop(r->blocks), &r->work, rebuild_work, rebuild_done) != 0) {
        finish(r, CAIRN_EINTERNAL, "rebuild");
    }
}

/* ---- 1. check ---- */

/* One check fewer in flight; after the last, rebuild what is bad. */
static void check_settle(struct repair *r)
{
    if (--r->in_flight > 0) {
        return;
    }
    if (r->rv != 0) {
        finish(r, r->rv, "check"); /* the block client is closing: start nothing more */
        return;
    }
    for (unsigned i = 0; i < r->n; i++) {
        const struct node_member *mem = member_of(r->blocks, r->result.node_ids[i]);
        if (r->bad[i] && r->node_lost[i] && mem != NULL && mem->up) {
            /* No answer from a node the cluster map calls up: a partition
             * or a pause between us, not a loss. Its shard is not rebuilt
             * elsewhere; if the node is gone for good, the map says so
             * after the grace period and the next pass rebuilds it. */
            r->bad[i] = false;
            r->result.unreachable++;
        }
        r->result.missing += r->bad[i];
        r->result.bad |= (uint32_t)r->bad[i] << i;
        r->result.lost |= (uint32_t)r->node_lost[i] << i;
    }
    if (r->result.missing == 0) {
        finish(r, 0, NULL);
        return;
    }
    if (node_blocks_get(r->blocks, r->chunk_id, r->result.node_ids, r->n, r->k, r->timeout_ms,
                        fetched_cb, r) != 0) {
        finish(r, CAIRN_EUNAVAIL, "fetch");
    }
}

static void verified_cb(void *data,
                        int rv,
                        const struct proto_frame_header *header,
                        const uint8_t *payload)
{
    struct shard_call *call = data;
    struct repair *r = call->repair;
    Cairn__Wire__ShardVerifyReply *reply = NULL;

    if (rv == 0) {
        reply = cairn__wire__shard_verify_reply__unpack(NULL, header->length, payload);
    }
    if (rv == CAIRN_ESHUTDOWN) {
        r->rv = rv;
    }
    if (reply == NULL || !reply->ok) {
        r->bad[call->index] = true;
        /* An answer (missing, corrupt) leaves the node usable; no answer at
         * all (timeout, hang-up, refusal) does not. */
        r->node_lost[call->index] = reply == NULL;
    }
    if (reply != NULL) {
        cairn__wire__shard_verify_reply__free_unpacked(reply, NULL);
    }
    check_settle(r);
}

int node_blocks_repair(struct node_blocks *blocks,
                       const uint8_t chunk_id[32],
                       const uint64_t *node_ids,
                       unsigned k,
                       unsigned m,
                       uint64_t timeout_ms,
                       node_repair_cb cb,
                       void *data)
{
    struct repair *r;

    if (k < 1 || k + m > NODE_SHARDS_MAX) {
        return CAIRN_EINVAL;
    }
    r = cn_xcalloc(1, sizeof(*r));
    r->blocks = blocks;
    memcpy(r->chunk_id, chunk_id, 32);
    r->k = k;
    r->n = k + m;
    r->timeout_ms = timeout_ms;
    r->cb = cb;
    r->data = data;
    r->result.shard_count = r->n;
    memcpy(r->result.node_ids, node_ids, r->n * sizeof(*node_ids));
    r->in_flight = 1; /* held until every check is sent */
    for (unsigned i = 0; i < r->n; i++) {
        Cairn__Wire__ShardRef ref = CAIRN__WIRE__SHARD_REF__INIT;
        const struct node_member *mem = member_of(blocks, node_ids[i]);
        uint8_t packed[64];
        size_t len;

        if (mem == NULL || !mem->up) {
            r->bad[i] = r->node_lost[i] = true;
            continue;
        }
        ref.chunk_id.data = r->chunk_id;
        ref.chunk_id.len = 32;
        ref.index = i;
        len = cairn__wire__shard_ref__pack(&ref, packed);
        r->calls[i] = (struct shard_call){r, i};
        if (node_blocks_call(blocks, node_ids[i], CAIRN__WIRE__MSG_TYPE__MSG_SHARD_VERIFY, packed,
                             len, timeout_ms, verified_cb, &r->calls[i]) == 0) {
            r->in_flight++;
        } else {
            r->bad[i] = r->node_lost[i] = true;
        }
    }
    check_settle(r); /* drop the hold */
    return 0;
}
