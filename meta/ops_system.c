/*
 * The system group (group 0): the cluster record and the node list
 * (docs/cluster.md, "Joining and the cluster map").
 *
 * The happy path:
 *   1. `cairn-node init` proposes ClusterInit{cluster_id, data_groups,
 *      address, failure_domain}: the cluster record, and node 1 (up) at that
 *      address. Once only: CAIRN_EEXIST after.
 *   2. A joiner's NodeJoin becomes NodeAdd{address, failure_domain}: the node
 *      gets the next id from the cluster record's counter (the result value),
 *      is up, and the map's epoch grows.
 *   3. The system group's leader proposes NodeSetState when heartbeats stop
 *      (suspect, down) and the admin when a node drains or leaves (removed).
 *
 * Keys: the cluster record under K; nodes under M (id) and an address index
 * under m (address -> id). Ids are never reused: the counter only grows.
 *
 * Only the system (actor 0) may propose these, and only to group 0.
 *
 * Possible failure modes: not the system CAIRN_EPERM; another group, a bad
 * id, address, domain or state CAIRN_EINVAL; no cluster yet or an unknown
 * node CAIRN_ENOENT; an address in use (by a node not removed) CAIRN_EEXIST;
 * a change to a removed node CAIRN_EINVAL.
 */
#include <string.h>

#include "meta_int.h"

#define CLUSTER_ID_MAX  64u
#define DATA_GROUPS_MAX 255u
#define DOMAIN_MAX      64u

static void cluster_key(struct meta_sm *sm, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_CLUSTER);
}

static void node_key(struct meta_sm *sm, uint64_t id, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_NODE);
    meta__key_u64(key, id);
}

static void address_key(struct meta_sm *sm, const char *address, struct meta__key *key)
{
    meta__key_init(key, sm, META__T_NODE_ADDRESS);
    meta__key_bytes(key, address, strlen(address));
}

/* The system, in the system group. */
static int system_only(const struct meta__tx *tx)
{
    if (tx->actor != 0) {
        return CAIRN_EPERM;
    }
    return tx->sm->group_id == 0 ? 0 : CAIRN_EINVAL;
}

static bool address_valid(const char *address)
{
    size_t len = strlen(address);

    return len > 0 && len < META_ADDRESS_MAX;
}

static bool domain_valid(const char *domain)
{
    return strlen(domain) <= DOMAIN_MAX;
}

/* CAIRN_EEXIST if a node that is not removed has address. */
static int address_free(struct meta__tx *tx, const char *address)
{
    Cairn__Cmd__Node *node;
    struct meta__key key;
    uint64_t id;
    int rv;

    address_key(tx->sm, address, &key);
    rv = meta__get_u64(tx->sm, &key, &id);
    if (rv != 0) {
        return rv == CAIRN_ENOENT ? 0 : rv;
    }
    rv = meta_get_node(tx->sm, id, &node);
    if (rv != 0) {
        return rv == CAIRN_ENOENT ? CAIRN_ECORRUPT : rv;
    }
    rv = node->state == CAIRN__CMD__NODE_STATE__NODE_REMOVED ? 0 : CAIRN_EEXIST;
    meta_record_free(node);
    return rv;
}

/* Adds node cluster->next_node_id at address (checked free), up. */
static int node_put_new(struct meta__tx *tx,
                        Cairn__Cmd__Cluster *cluster,
                        const char *address,
                        const char *domain)
{
    Cairn__Cmd__Node node = CAIRN__CMD__NODE__INIT;
    struct meta__key key;
    int rv;

    node.id = cluster->next_node_id++;
    node.address = (char *)address;
    node.failure_domain = (char *)domain;
    node.state = CAIRN__CMD__NODE_STATE__NODE_UP;
    node.added_ms = tx->time_ms;
    node.state_ms = tx->time_ms;
    cluster->epoch++;
    node_key(tx->sm, node.id, &key);
    rv = meta__put_msg(tx, &key, &node.base);
    if (rv == 0) {
        address_key(tx->sm, address, &key);
        meta__put_u64(tx, &key, node.id);
        cluster_key(tx->sm, &key);
        rv = meta__put_msg(tx, &key, &cluster->base);
    }
    tx->value = node.id;
    return rv;
}

int meta__op_cluster_init(struct meta__tx *tx, const Cairn__Cmd__ClusterInit *op)
{
    Cairn__Cmd__Cluster cluster = CAIRN__CMD__CLUSTER__INIT;
    struct meta__key key;
    int rv;

    rv = system_only(tx);
    if (rv != 0) {
        return rv;
    }
    if (op->cluster_id.len == 0 || op->cluster_id.len > CLUSTER_ID_MAX || op->data_groups == 0 ||
        op->data_groups > DATA_GROUPS_MAX || !address_valid(op->address) ||
        !domain_valid(op->failure_domain)) {
        return CAIRN_EINVAL;
    }
    cluster_key(tx->sm, &key);
    rv = meta__exists(tx->sm, &key);
    if (rv != CAIRN_ENOENT) {
        return rv == 0 ? CAIRN_EEXIST : rv;
    }
    cluster.cluster_id = op->cluster_id;
    cluster.data_groups = op->data_groups;
    cluster.next_node_id = 1;
    cluster.created_ms = tx->time_ms;
    rv = node_put_new(tx, &cluster, op->address, op->failure_domain);
    CN_ASSERT(rv != 0 || tx->value == 1);
    return rv;
}

int meta__op_node_add(struct meta__tx *tx, const Cairn__Cmd__NodeAdd *op)
{
    Cairn__Cmd__Cluster *cluster;
    int rv;

    rv = system_only(tx);
    if (rv != 0) {
        return rv;
    }
    if (!address_valid(op->address) || !domain_valid(op->failure_domain)) {
        return CAIRN_EINVAL;
    }
    rv = meta_get_cluster(tx->sm, &cluster);
    if (rv != 0) {
        return rv;
    }
    rv = address_free(tx, op->address);
    if (rv == 0) {
        rv = node_put_new(tx, cluster, op->address, op->failure_domain);
    }
    meta_record_free(cluster);
    return rv;
}

static bool state_valid(Cairn__Cmd__NodeState state)
{
    return state >= CAIRN__CMD__NODE_STATE__NODE_UP &&
           state <= CAIRN__CMD__NODE_STATE__NODE_REMOVED;
}

int meta__op_node_set_state(struct meta__tx *tx, const Cairn__Cmd__NodeSetState *op)
{
    Cairn__Cmd__Cluster *cluster = NULL;
    Cairn__Cmd__Node *node = NULL;
    struct meta__key key;
    int rv;

    rv = system_only(tx);
    if (rv != 0) {
        return rv;
    }
    if (!state_valid(op->state)) {
        return CAIRN_EINVAL;
    }
    rv = meta_get_cluster(tx->sm, &cluster);
    if (rv == 0) {
        rv = meta_get_node(tx->sm, op->node_id, &node);
    }
    if (rv != 0) {
        goto out;
    }
    if (node->state == CAIRN__CMD__NODE_STATE__NODE_REMOVED) {
        rv = CAIRN_EINVAL; /* final */
        goto out;
    }
    if (node->state == op->state) {
        goto out; /* nothing changes, the epoch stays */
    }
    node->state = op->state;
    node->state_ms = tx->time_ms;
    cluster->epoch++;
    node_key(tx->sm, node->id, &key);
    rv = meta__put_msg(tx, &key, &node->base);
    if (rv == 0) {
        cluster_key(tx->sm, &key);
        rv = meta__put_msg(tx, &key, &cluster->base);
    }
out:
    meta_record_free(node);
    meta_record_free(cluster);
    return rv;
}

/* ---- Reads ---- */

int meta_get_cluster(struct meta_sm *sm, Cairn__Cmd__Cluster **record)
{
    struct meta__key key;

    cluster_key(sm, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__cluster__descriptor, (void **)record);
}

int meta_get_node(struct meta_sm *sm, uint64_t node_id, Cairn__Cmd__Node **record)
{
    struct meta__key key;

    node_key(sm, node_id, &key);
    return meta__get_msg(sm, &key, &cairn__cmd__node__descriptor, (void **)record);
}

int meta_list_nodes(struct meta_sm *sm, meta_node_cb cb, void *data)
{
    Cairn__Cmd__Node *node;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *v;
    size_t len;
    int rv = 0, close_rv;

    meta__key_init(&prefix, sm, META__T_NODE);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        v = meta__iter_value(&iter, &len);
        node = cairn__cmd__node__unpack(NULL, len, v);
        if (node == NULL) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "node: malformed");
            break;
        }
        rv = cb(data, node);
        meta_record_free(node);
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}
