/*
 * Placement: rendezvous hashing with failure domains first.
 *
 * Each candidate's weight for a chunk is SipHash-2-4 of its node id keyed
 * with the chunk id's first 16 bytes (the chunk id is itself a keyed hash, so
 * the weights are uniform). Shards take nodes in falling weight order: first
 * the heaviest node of each failure domain not yet used, so a scheme with no
 * more shards than domains never puts two shards in one domain; then, if
 * shards remain, the heaviest nodes not yet chosen.
 *
 * Possible failure modes: fewer candidates than shards (CAIRN_EUNAVAIL: the
 * caller says "scheme k+m needs N nodes, M are up"); a node id listed twice
 * (CAIRN_EINVAL: a bug in the caller's cluster map).
 */
#include <stdlib.h>
#include <string.h>

#include "node_rpc.h"

static_assert(crypto_shorthash_siphash24_KEYBYTES == 16, "SipHash key");

struct weighted {
    uint64_t weight;
    unsigned index;
};

static int heavier_first(const void *a, const void *b)
{
    const struct weighted *wa = a, *wb = b;

    if (wa->weight != wb->weight) {
        return wa->weight < wb->weight ? 1 : -1;
    }
    return wa->index < wb->index ? -1 : 1;
}

static uint64_t weight(const uint8_t chunk_id[32], uint64_t node_id)
{
    uint8_t message[8], hash[crypto_shorthash_siphash24_BYTES];

    cn_put_u64(message, node_id);
    crypto_shorthash_siphash24(hash, message, sizeof(message), chunk_id);
    return cn_get_u64(hash);
}

static bool domain_used(const struct node_candidate *candidates,
                        const unsigned *chosen,
                        unsigned chosen_count,
                        uint32_t domain)
{
    for (unsigned i = 0; i < chosen_count; i++) {
        if (candidates[chosen[i]].domain == domain) {
            return true;
        }
    }
    return false;
}

int node_place(const uint8_t chunk_id[32],
               const struct node_candidate *candidates,
               unsigned candidate_count,
               unsigned shard_count,
               unsigned *out)
{
    struct weighted *order;
    bool *taken;
    unsigned chosen = 0;

    CN_ASSERT(candidate_count <= NODE_PLACE_NODES_MAX);
    if (shard_count > candidate_count) {
        return CAIRN_EUNAVAIL;
    }
    order = cn_xmalloc((candidate_count + 1) * sizeof(*order));
    taken = cn_xcalloc(candidate_count + 1, sizeof(*taken));
    for (unsigned i = 0; i < candidate_count; i++) {
        order[i].weight = weight(chunk_id, candidates[i].node_id);
        order[i].index = i;
    }
    qsort(order, candidate_count, sizeof(*order), heavier_first);
    for (unsigned i = 1; i < candidate_count; i++) {
        for (unsigned j = 0; j < i; j++) {
            if (candidates[i].node_id == candidates[j].node_id) {
                free(order);
                free(taken);
                return CAIRN_EINVAL;
            }
        }
    }
    /* Pass 1: the heaviest node of each unused domain. */
    for (unsigned i = 0; i < candidate_count && chosen < shard_count; i++) {
        const struct node_candidate *c = &candidates[order[i].index];
        if (!domain_used(candidates, out, chosen, c->domain)) {
            out[chosen++] = order[i].index;
            taken[i] = true;
        }
    }
    /* Pass 2: more shards than domains: the heaviest nodes left. */
    for (unsigned i = 0; i < candidate_count && chosen < shard_count; i++) {
        if (!taken[i]) {
            out[chosen++] = order[i].index;
        }
    }
    CN_ASSERT(chosen == shard_count);
    free(order);
    free(taken);
    return 0;
}

uint32_t node_domain_id(uint64_t node_id, const char *label)
{
    uint32_t hash = 2166136261u; /* FNV-1a */

    if (label == NULL || label[0] == '\0') {
        return (uint32_t)(node_id * 2654435761u) | 1u; /* odd: never a label's (even) number */
    }
    for (; *label != '\0'; label++) {
        hash = (hash ^ (uint8_t)*label) * 16777619u;
    }
    return hash & ~1u;
}
