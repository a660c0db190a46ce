/*
 * node_repair: brings one chunk back to full redundancy (docs/node.md,
 * "Repair"). The caller knows the chunk's scheme and where each shard was
 * placed (the chunk index, or a manifest); this checks every shard on its
 * node, and rebuilds each missing or corrupt one, byte for byte, from any k
 * others (stor_shard_rebuild: Reed–Solomon over the stored payloads, no key
 * needed), then stores it on a node: back on its own node when that node is
 * up and only the shard was bad, else on the best up member (rendezvous
 * order, failure domains first) that holds no shard of the chunk yet.
 *
 * Runs on the loop of the node_blocks it is given; the rebuild itself runs on
 * libuv's thread pool. The callback runs exactly once.
 */
#ifndef NODE_REPAIR_H
#define NODE_REPAIR_H

#include <stdint.h>

#include "node_rpc.h"

struct node_repair_result {
    uint64_t node_ids[NODE_SHARDS_MAX]; /* where each shard lives now */
    unsigned shard_count;
    unsigned missing;     /* shards found missing, corrupt or on a down node */
    unsigned rebuilt;     /* of those, rebuilt and stored durably */
    unsigned unreachable; /* shards on up nodes that did not answer: left alone */
    uint32_t bad;         /* bit i: shard i was found bad */
    uint32_t lost;        /* bit i: its node did not answer at all */
    const char *step;     /* on failure: "fetch", "rebuild" or "store" */
};

/* rv 0: every shard is healthy now (result->rebuilt may be 0); CAIRN_EUNAVAIL:
 * fewer than k shards could be read, or no member could take a rebuilt shard
 * (result says how far it got; the chunk is left as it was or better);
 * CAIRN_ECORRUPT / CAIRN_EINVAL from the rebuild. */
typedef void (*node_repair_cb)(void *data, int rv, const struct node_repair_result *result);

/* Repairs the chunk whose shard i is on node_ids[i] (k + m of them).
 * CAIRN_EINVAL at once for a bad scheme, else cb later. */
int node_blocks_repair(struct node_blocks *blocks,
                       const uint8_t chunk_id[32],
                       const uint64_t *node_ids,
                       unsigned k,
                       unsigned m,
                       uint64_t timeout_ms,
                       node_repair_cb cb,
                       void *data);

/*
 * Rebalance: moves a chunk's shards onto the nodes node_place() wants now.
 * The wanted set is placement over the up members that are neither
 * draining nor in exclude[]; a shard whose node is outside it is copied to
 * a wanted node that holds nothing of the chunk (read from its old node,
 * verified there, put durably on the new). Sets, not positions, are
 * compared, so a join or a drain moves at most the shards it must.
 * Old copies are NOT deleted: the caller records the new homes first (the
 * chunk index, a manifest), then deletes each moved[i] shard from from[i]
 * with node_blocks_delete(), so a reader holding either record finds data.
 */
struct node_rebalance_result {
    uint64_t node_ids[NODE_SHARDS_MAX]; /* where each shard lives now */
    uint64_t from[NODE_SHARDS_MAX];     /* per shard: its old node if moved, else 0 */
    unsigned shard_count;
    unsigned moved;
};

/* rv 0: every shard is where it should be; else the first failure (moves
 * that did succeed are in result). */
typedef void (*node_rebalance_cb)(void *data, int rv, const struct node_rebalance_result *result);
int node_blocks_rebalance(struct node_blocks *blocks,
                          const uint8_t chunk_id[32],
                          const uint64_t *node_ids,
                          unsigned shard_count,
                          const uint64_t *exclude,
                          unsigned exclude_count,
                          uint64_t timeout_ms,
                          node_rebalance_cb cb,
                          void *data);

/* Deletes shard index of chunk_id on node_id. cb(data, rv): 0 or CAIRN_ENOENT
 * (already gone) are both fine. */
typedef void (*node_delete_cb)(void *data, int rv);
int node_blocks_delete(struct node_blocks *blocks,
                       uint64_t node_id,
                       const uint8_t chunk_id[32],
                       unsigned index,
                       uint64_t timeout_ms,
                       node_delete_cb cb,
                       void *data);

#endif /* NODE_REPAIR_H */
