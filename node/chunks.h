/* Internal to node/: the chunk driver (chunks.c) — repair and rebalance run
 * by the daemon itself, on the leader of each data group it hosts. */
#ifndef NODE_CHUNKS_H
#define NODE_CHUNKS_H

#include <stdint.h>

#include "obs.h"

struct node_cluster;
struct node_chunks;

/* chunks_per_tick: how many chunks a tick may start (the rate limit). */
struct node_chunks *node__chunks_new(struct node_cluster *cluster, unsigned chunks_per_tick);
/* Called by the cluster's tick: refreshes members from the cluster map and
 * starts the next page of work if the last one is done. */
void node__chunks_tick(struct node_chunks *chunks);
/* Stops starting work; frees once the work in flight has ended (its
 * callbacks come back with CAIRN_ESHUTDOWN when the groups close). */
void node__chunks_stop(struct node_chunks *chunks);
void node__chunks_progress(const struct node_chunks *chunks, struct node_repair_progress *out);

struct node_group;
/* A shard of chunk `id` was found corrupt on some node (its scrub set it
 * aside): if this node leads g and g's index holds the chunk, it is checked
 * and repaired now, as the walk would, instead of when the walk comes to it
 * (a whole pass of the index: ten minutes for 19k chunks at 32 a second). */
void node__chunks_urgent(struct node_chunks *chunks, struct node_group *g, const uint8_t id[32]);
/* Tells the leader of every data group (this node's own chunk driver when it
 * leads one) that a shard of chunk `id` was set aside here: RepairHint. */
void node__chunks_hint(struct node_cluster *cluster, const uint8_t id[32]);

#endif /* NODE_CHUNKS_H */
