/*
 * The block client: a chunk's shards to and from the nodes that hold them.
 *
 * Put, the happy path: node_place() picks a node per shard among the up
 * members; every shard goes out at once, each as one MSG_SHARD_PUT on that
 * node's reused connection; the put completes when every node has answered
 * that its shard is durable. Any failure fails the put (its caller retries
 * the chunk, possibly with another member list): a chunk is acknowledged only
 * with all k + m shards stored, so it survives m failures.
 *
 * Get, the happy path: ask for the first `need` shards (the data shards,
 * which need no decoding); for each that fails (missing, corrupt, node down or
 * slow) ask for one more of the remaining shards, in index order. Complete
 * when every request has answered: with the shards we have if there are at
 * least `need`, else CAIRN_EUNAVAIL.
 *
 * Possible failure modes: too few up members (CAIRN_EUNAVAIL, before anything
 * is sent); a node that times out, hangs up or refuses (the put fails, with
 * CAIRN_EUNAVAIL for a lost connection or a node's I/O error, the node's own
 * code otherwise, e.g. CAIRN_ENOSPACE; the get reads around it); a member
 * missing from the list (treated as down).
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"

struct member_slot {
    struct node_member member;
    struct node_client *client; /* created on first use */
};

struct node_blocks {
    uv_loop_t *loop;
    uint8_t secret[NODE_SECRET_SIZE];
    struct node_rpc_options options;
    struct member_slot *slots;
    unsigned slot_count;
};

struct shard_call {
    struct op *op;
    unsigned index;
};

/* One put or get in flight. */
struct op {
    struct node_blocks *blocks;
    uint8_t chunk_id[32];
    uint64_t node_ids[NODE_SHARDS_MAX];
    unsigned shard_count;
    unsigned need; /* get: shards wanted */
    unsigned next; /* get: the next shard index to try */
    unsigned in_flight;
    int rv; /* put: the first failure */
    uint64_t timeout_ms;
    struct shard_call calls[NODE_SHARDS_MAX];
    uint8_t *got[NODE_SHARDS_MAX]; /* get: shards received */
    size_t got_lens[NODE_SHARDS_MAX];
    unsigned got_count;
    node_blocks_put_cb put_cb;
    node_blocks_get_cb get_cb;
    void *data;
};

struct node_blocks *node_blocks_new(uv_loop_t *loop,
                                    const uint8_t secret[NODE_SECRET_SIZE],
                                    const struct node_rpc_options *options)
{
    struct node_blocks *blocks = cn_xcalloc(1, sizeof(*blocks));

    blocks->loop = loop;
    memcpy(blocks->secret, secret, NODE_SECRET_SIZE);
    blocks->options = *options;
    return blocks;
}

static struct member_slot *find_slot(struct node_blocks *blocks, uint64_t node_id)
{
    for (unsigned i = 0; i < blocks->slot_count; i++) {
        if (blocks->slots[i].member.node_id == node_id) {
            return &blocks->slots[i];
        }
    }
    return NULL;
}

int node_blocks_set_members(struct node_blocks *blocks,
                            const struct node_member *members,
                            unsigned member_count)
{
    struct member_slot *slots, *old_slots;
    unsigned old_count;

    if (member_count > NODE_BLOCKS_MEMBERS_MAX) {
        return CAIRN_EINVAL;
    }
    slots = cn_xcalloc(member_count + 1, sizeof(*slots));
    for (unsigned i = 0; i < member_count; i++) {
        struct member_slot *old = find_slot(blocks, members[i].node_id);
        slots[i].member = members[i];
        /* Keep a member's connection unless its address changed. */
        if (old != NULL && strcmp(old->member.address, members[i].address) == 0) {
            slots[i].client = old->client;
            old->client = NULL;
        }
    }
    /* The new list is in place before the old clients go: freeing a client
     * ends its calls at once (CAIRN_ESHUTDOWN), and their callbacks, reading
     * around the failure, must only find members that are still there. */
    old_slots = blocks->slots;
    old_count = blocks->slot_count;
    blocks->slots = slots;
    blocks->slot_count = member_count;
    for (unsigned i = 0; i < old_count; i++) {
        if (old_slots[i].client != NULL) {
            node_client_free(old_slots[i].client);
        }
    }
    free(old_slots);
    return 0;
}

void node_blocks_free(struct node_blocks *blocks)
{
    node_blocks_set_members(blocks, NULL, 0);
    free(blocks->slots);
    sodium_memzero(blocks->secret, sizeof(blocks->secret));
    free(blocks);
}

/* The client of an up member, or NULL. */
static struct node_client *member_client(struct node_blocks *blocks, uint64_t node_id)
{
    struct member_slot *slot = find_slot(blocks, node_id);

    if (slot == NULL || !slot->member.up) {
        return NULL;
    }
    if (slot->client == NULL) {
        slot->client =
            node_client_new(blocks->loop, slot->member.address, blocks->secret, &blocks->options);
    }
    return slot->client;
}

uv_loop_t *node_blocks_loop(const struct node_blocks *blocks)
{
    return blocks->loop;
}

unsigned node_blocks_member_count(const struct node_blocks *blocks)
{
    return blocks->slot_count;
}

const struct node_member *node_blocks_member_at(const struct node_blocks *blocks, unsigned i)
{
    CN_ASSERT(i < blocks->slot_count);
    return &blocks->slots[i].member;
}

int node_blocks_call(struct node_blocks *blocks,
                     uint64_t node_id,
                     uint16_t type,
                     const void *payload,
                     size_t length,
                     uint64_t timeout_ms,
                     node_call_cb cb,
                     void *data)
{
    struct node_client *client = member_client(blocks, node_id);

    if (client == NULL) {
        return CAIRN_EUNAVAIL;
    }
    return node_client_call(client, type, payload, length, timeout_ms, cb, data);
}

static void op_free(struct op *op)
{
    for (unsigned i = 0; i < op->got_count; i++) {
        free(op->got[i]);
    }
    free(op);
}

static void put_shard_cb(void *data,
                         int rv,
                         const struct proto_frame_header *header,
                         const uint8_t *payload)
{
    struct shard_call *call = data;
    struct op *op = call->op;

    (void)header;
    (void)payload;
    if (rv == CAIRN_EIO) {
        /* The node hung up, could not be reached, or its disk failed: the
         * cluster is short of a place for the shard, not broken, and a later
         * try (another member list) may succeed. */
        rv = CAIRN_EUNAVAIL;
    }
    if (rv != 0 && op->rv == 0) {
        op->rv = rv;
    }
    if (--op->in_flight == 0) {
        op->put_cb(op->data, op->rv, op->node_ids, op->shard_count);
        op_free(op);
    }
}

/* Packs ShardPut{shard} and sends it to node_id. */
static int send_put(struct op *op, unsigned index, const uint8_t *shard, size_t shard_size)
{
    Cairn__Wire__ShardPut put = CAIRN__WIRE__SHARD_PUT__INIT;
    struct node_client *client = member_client(op->blocks, op->node_ids[index]);
    uint8_t *packed;
    size_t len;
    int rv;

    CN_ASSERT(client != NULL); /* placed on up members only */
    put.shard.data = (uint8_t *)shard;
    put.shard.len = shard_size;
    len = cairn__wire__shard_put__get_packed_size(&put);
    packed = cn_xmalloc(len);
    cairn__wire__shard_put__pack(&put, packed);
    op->calls[index] = (struct shard_call){op, index};
    rv = node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT, packed, len, op->timeout_ms,
                          put_shard_cb, &op->calls[index]);
    free(packed);
    return rv;
}

int node_blocks_put(struct node_blocks *blocks,
                    const uint8_t chunk_id[32],
                    const uint8_t *const *shards,
                    size_t shard_size,
                    unsigned shard_count,
                    uint64_t timeout_ms,
                    node_blocks_put_cb cb,
                    void *data)
{
    struct node_candidate candidates[NODE_BLOCKS_MEMBERS_MAX];
    unsigned candidate_count = 0, placed[NODE_SHARDS_MAX];
    struct op *op;
    int rv;

    CN_ASSERT(shard_count >= 1 && shard_count <= NODE_SHARDS_MAX);
    for (unsigned i = 0; i < blocks->slot_count; i++) {
        if (blocks->slots[i].member.up && !blocks->slots[i].member.draining) {
            candidates[candidate_count++] = (struct node_candidate){blocks->slots[i].member.node_id,
                                                                    blocks->slots[i].member.domain};
        }
    }
    rv = node_place(chunk_id, candidates, candidate_count, shard_count, placed);
    if (rv != 0) {
        return rv;
    }
    op = cn_xcalloc(1, sizeof(*op));
    op->blocks = blocks;
    memcpy(op->chunk_id, chunk_id, 32);
    op->shard_count = shard_count;
    op->timeout_ms = timeout_ms;
    op->put_cb = cb;
    op->data = data;
    for (unsigned i = 0; i < shard_count; i++) {
        op->node_ids[i] = candidates[placed[i]].node_id;
    }
    /* Count every shard in flight first, so an early answer cannot finish the op. */
    op->in_flight = shard_count + 1;
    for (unsigned i = 0; i < shard_count; i++) {
        rv = send_put(op, i, shards[i], shard_size);
        if (rv != 0) {
            op->in_flight--;
            op->rv = op->rv != 0 ? op->rv : rv;
        }
    }
    put_shard_cb(&(struct shard_call){op, 0}, 0, NULL, NULL); /* drop the extra count */
    return 0;
}

static void get_done(struct op *op)
{
    if (op->got_count >= op->need) {
        op->get_cb(op->data, 0, (const uint8_t *const *)op->got, op->got_lens, op->got_count);
    } else {
        op->get_cb(op->data, CAIRN_EUNAVAIL, NULL, NULL, 0);
    }
    op_free(op);
}

static void get_shard_cb(void *data,
                         int rv,
                         const struct proto_frame_header *header,
                         const uint8_t *payload);

/* Asks for the next shard that lives on an up member; false if none is left. */
static bool fetch_next(struct op *op)
{
    while (op->next < op->shard_count) {
        unsigned index = op->next++;
        struct node_client *client = member_client(op->blocks, op->node_ids[index]);
        Cairn__Wire__ShardRef ref = CAIRN__WIRE__SHARD_REF__INIT;
        Cairn__Wire__ShardGet get = CAIRN__WIRE__SHARD_GET__INIT;
        uint8_t packed[128];
        size_t len;

        if (client == NULL) {
            continue;
        }
        ref.chunk_id.data = op->chunk_id;
        ref.chunk_id.len = 32;
        ref.index = index;
        get.ref = &ref;
        len = cairn__wire__shard_get__pack(&get, packed);
        op->calls[index] = (struct shard_call){op, index};
        if (node_client_call(client, CAIRN__WIRE__MSG_TYPE__MSG_SHARD_GET, packed, len,
                             op->timeout_ms, get_shard_cb, &op->calls[index]) == 0) {
            op->in_flight++;
            return true;
        }
    }
    return false;
}

static void get_shard_cb(void *data,
                         int rv,
                         const struct proto_frame_header *header,
                         const uint8_t *payload)
{
    struct shard_call *call = data;
    struct op *op = call->op;
    Cairn__Wire__ShardGetReply *reply = NULL;

    op->in_flight--;
    if (rv == 0) {
        reply = cairn__wire__shard_get_reply__unpack(NULL, header->length, payload);
    }
    if (reply != NULL && reply->data.len > 0) {
        op->got[op->got_count] = cn_xmalloc(reply->data.len);
        memcpy(op->got[op->got_count], reply->data.data, reply->data.len);
        op->got_lens[op->got_count++] = reply->data.len;
    } else {
        fetch_next(op); /* read around the failure */
    }
    if (reply != NULL) {
        cairn__wire__shard_get_reply__free_unpacked(reply, NULL);
    }
    if (op->in_flight == 0) {
        get_done(op);
    }
}

int node_blocks_get(struct node_blocks *blocks,
                    const uint8_t chunk_id[32],
                    const uint64_t *node_ids,
                    unsigned shard_count,
                    unsigned need,
                    uint64_t timeout_ms,
                    node_blocks_get_cb cb,
                    void *data)
{
    struct op *op;

    CN_ASSERT(shard_count >= 1 && shard_count <= NODE_SHARDS_MAX);
    CN_ASSERT(need >= 1 && need <= shard_count);
    op = cn_xcalloc(1, sizeof(*op));
    op->blocks = blocks;
    memcpy(op->chunk_id, chunk_id, 32);
    memcpy(op->node_ids, node_ids, shard_count * sizeof(*node_ids));
    op->shard_count = shard_count;
    op->need = need;
    op->timeout_ms = timeout_ms;
    op->get_cb = cb;
    op->data = data;
    for (unsigned i = 0; i < need; i++) {
        fetch_next(op);
    }
    if (op->in_flight == 0) {
        /* Nothing could even be asked: answer on the next loop turn would be
         * nicer, but failing now keeps the callback count at exactly one. */
        op_free(op);
        return CAIRN_EUNAVAIL;
    }
    return 0;
}
