/*
 * node_meta: the client side of the metadata RPCs (docs/cluster.md), for the
 * gateway and the tools. Any node answers a call (it forwards to the group's
 * leader); this client picks a node, and on a lost connection, CAIRN_EUNAVAIL
 * or CAIRN_ETIMEOUT of one node tries the next, until the call's deadline.
 * Proposals are safe to retry: their request id makes them exactly-once.
 *
 * Everything runs on the loop given to node_meta_new(); callbacks run on it.
 * Each call's callback runs exactly once. rv is the call's own fate (0,
 * CAIRN_ETIMEOUT, CAIRN_EUNAVAIL, CAIRN_ESHUTDOWN, CAIRN_EPROTO...); when it
 * is 0, reply->rv is the operation's outcome (0, CAIRN_ECONFLICT, ...). The
 * reply is valid only during the callback.
 */
#ifndef NODE_META_H
#define NODE_META_H

#include <stdint.h>

#include <uv.h>

#include "command.pb-c.h"
#include "node_rpc.h"
#include "wire.pb-c.h"

/* The group that holds a namespace (docs/cluster.md, "Routing"). */
static inline uint64_t node_ns_group(uint64_t ns)
{
    return ns >> 56;
}

/* The drive namespace of user (user ids are below 2^56) with S data groups. */
static inline uint64_t node_drive_ns(uint64_t user, uint32_t data_groups)
{
    return ((1 + user % data_groups) << 56) | user;
}

struct node_meta;

/* seeds: "ip:port" of some nodes (copied); more are learned from the cluster
 * map. options may be NULL for the defaults. NULL on CAIRN_ENOMEM or no seed. */
struct node_meta *node_meta_new(uv_loop_t *loop,
                                const uint8_t secret[NODE_SECRET_SIZE],
                                const char *const *seeds,
                                unsigned seed_count,
                                const struct node_rpc_options *options);
/* Calls in flight finish with CAIRN_ESHUTDOWN; memory is released once the
 * connections have closed. */
void node_meta_free(struct node_meta *meta);

/* S, learned from the first cluster map (0 until then). */
uint32_t node_meta_data_groups(const struct node_meta *meta);

typedef void (*node_meta_propose_cb)(void *data,
                                     int rv,
                                     const Cairn__Wire__MetaProposeReply *reply);
/* Proposes cmd (its header filled by the caller: request id, time, actor) to group. */
int node_meta_propose(struct node_meta *meta,
                      uint64_t group,
                      const Cairn__Cmd__Command *cmd,
                      uint64_t timeout_ms,
                      node_meta_propose_cb cb,
                      void *data);

typedef void (*node_meta_read_cb)(void *data, int rv, const Cairn__Wire__MetaReadReply *reply);
/* A strong read (query->group and ->actor set by the caller). */
int node_meta_read(struct node_meta *meta,
                   const Cairn__Wire__MetaRead *query,
                   uint64_t timeout_ms,
                   node_meta_read_cb cb,
                   void *data);

typedef void (*node_meta_watch_cb)(void *data, int rv, uint64_t journal_seq);
/* Waits until ns's journal passes watch->cursor (journal_seq > cursor) or
 * watch->timeout_ms passes (journal_seq <= cursor). */
int node_meta_watch(struct node_meta *meta,
                    const Cairn__Wire__MetaWatch *watch,
                    node_meta_watch_cb cb,
                    void *data);

typedef void (*node_meta_map_cb)(void *data, int rv, const Cairn__Wire__ClusterMap *map);
/* The cluster map, from any node. */
int node_meta_cluster_map(struct node_meta *meta,
                          uint64_t timeout_ms,
                          node_meta_map_cb cb,
                          void *data);

#endif /* NODE_META_H */
