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
    unsigned missing; /* shards found missing, corrupt or on a down node */
    unsigned rebuilt; /* of those, rebuilt and stored durably */
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

#endif /* NODE_REPAIR_H */
