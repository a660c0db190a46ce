/*
 * The cluster as the gateway sees it: the map (nodes, their states and
 * addresses, S), fetched from any node through node_meta at start and every
 * map_refresh_ms, fed to the block client (node_blocks_set_members) and used
 * to choose the erasure scheme of new chunks.
 *
 * Scheme by placeable nodes (up or suspect, not draining): 6 or more 4+2;
 * 3..5 2+1; 2 1+1; 1 1+0 in a one-node cluster only (DESIGN.md), 1+1 in a
 * larger one (its puts then fail until a second node is back).
 * A chunk records its own k and m, so a change of scheme only affects chunks
 * written after it.
 *
 * Possible failure modes: no node answers (the old map stays; /health says
 * "degraded" until one does; before the first map every API call is 503); a
 * map with more than NODE_BLOCKS_MEMBERS_MAX nodes (the first ones are used,
 * and a warning is logged).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

static void choose_scheme(struct gw_app *app)
{
    unsigned up = app->member_up_count;

    if (up >= 6) {
        app->k = 4, app->m = 2;
    } else if (up >= 3) {
        app->k = 2, app->m = 1;
    } else if (up == 2 || app->member_count >= 2) {
        /* Never no redundancy in a cluster of several nodes: with one node
         * placeable, puts of 1+1 fail (503) rather than store chunks that
         * the next failure loses. */
        app->k = 1, app->m = 1;
    } else {
        app->k = 1, app->m = 0; /* a one-node cluster */
    }
}

static void map_cb(void *data, int rv, const Cairn__Wire__ClusterMap *map)
{
    struct gw_app *app = data;
    struct node_member *members;
    unsigned count = 0, up = 0;

    app->map_in_flight = false;
    if (rv == CAIRN_ESHUTDOWN || app->stopping) {
        return;
    }
    if (rv != 0) {
        app->stats.map_failures++;
        CN_LOG(CN_WARN, "cannot read the cluster map", "err=%s", cairn_errname(rv));
        return;
    }
    app->stats.map_refreshes++;
    members = app->members;
    memset(members, 0, NODE_BLOCKS_MEMBERS_MAX * sizeof(*members));
    if (map->n_nodes > NODE_BLOCKS_MEMBERS_MAX) {
        CN_LOG(CN_WARN, "cluster map too large, using the first nodes", "nodes=%zu", map->n_nodes);
    }
    for (size_t i = 0; i < map->n_nodes && count < NODE_BLOCKS_MEMBERS_MAX; i++) {
        const Cairn__Wire__MapNode *node = map->nodes[i];
        struct node_member *member = &members[count];

        if (node->state == CAIRN__WIRE__NODE_STATE__NODE_REMOVED || node->address == NULL ||
            strlen(node->address) >= sizeof(member->address)) {
            continue;
        }
        memset(member, 0, sizeof(*member));
        member->node_id = node->id;
        member->domain = node_domain_id(node->id, node->failure_domain);
        snprintf(member->address, sizeof(member->address), "%s", node->address);
        /* A draining node is read from until its shards have moved, never
         * placed on (node_member.draining); a down one is neither. */
        member->up = node->state == CAIRN__WIRE__NODE_STATE__NODE_UP ||
                     node->state == CAIRN__WIRE__NODE_STATE__NODE_SUSPECT ||
                     node->state == CAIRN__WIRE__NODE_STATE__NODE_DRAINING;
        member->draining = node->state == CAIRN__WIRE__NODE_STATE__NODE_DRAINING;
        /* Placeable: what node_blocks_put() places on. A suspect node still
         * takes shards; counting only "up" ones let a burst of late
         * heartbeats drop new chunks to 1+0 (found by jepsen/run). */
        up += member->up && !member->draining;
        count++;
    }
    rv = node_blocks_set_members(app->blocks, members, count);
    CN_ASSERT(rv == 0);
    if (app->map_epoch != map->epoch || app->data_groups == 0) {
        CN_LOG(CN_INFO, "cluster map", "epoch=%llu nodes=%u up=%u data_groups=%u",
               (unsigned long long)map->epoch, count, up, map->data_groups);
    }
    app->map_epoch = map->epoch;
    app->member_count = count;
    app->member_up_count = up;
    if (map->data_groups > 0) {
        app->data_groups = map->data_groups;
    }
    choose_scheme(app);
    gw__auth_bootstrap(app);
}

static void refresh(struct gw_app *app)
{
    int rv;

    if (app->map_in_flight || app->stopping) {
        return;
    }
    rv = node_meta_cluster_map(app->meta, app->config.meta_timeout_ms, map_cb, app);
    if (rv != 0) {
        app->stats.map_failures++;
        CN_LOG(CN_WARN, "cannot ask for the cluster map", "err=%s", cairn_errname(rv));
        return;
    }
    app->map_in_flight = true;
}

static void timer_cb(uv_timer_t *timer)
{
    struct gw_app *app = CN_CONTAINER_OF(timer, struct gw_app, map_timer);

    /* Until the first map, ask every second. */
    if (app->data_groups == 0 && uv_timer_get_repeat(timer) != 1000) {
        uv_timer_set_repeat(timer, 1000);
    } else if (app->data_groups != 0 && uv_timer_get_repeat(timer) != app->config.map_refresh_ms) {
        uv_timer_set_repeat(timer, app->config.map_refresh_ms);
    }
    refresh(app);
}

/* Chunks recorded without placement (none yet, but a record is input):
 * node_place() over the members up now, as node_blocks_put() chose. */
int gw__chunk_nodes(struct gw_app *app,
                    const Cairn__Cmd__Chunk *chunk,
                    uint64_t *node_ids,
                    unsigned shard_count)
{
    struct node_candidate *candidates;
    unsigned count = 0, out[NODE_SHARDS_MAX];
    int rv;

    if (chunk->id.len != STOR_ID_SIZE || shard_count == 0 || shard_count > NODE_SHARDS_MAX) {
        return CAIRN_ECORRUPT;
    }
    if (chunk->n_nodes == shard_count) {
        /* Recorded at upload (and moved by repair and rebalance). */
        memcpy(node_ids, chunk->nodes, shard_count * sizeof(*node_ids));
        return 0;
    }
    candidates = cn_xcalloc(NODE_BLOCKS_MEMBERS_MAX, sizeof(*candidates));
    for (unsigned i = 0; i < app->member_count; i++) {
        if (app->members[i].up) {
            candidates[count].node_id = app->members[i].node_id;
            candidates[count].domain = app->members[i].domain;
            count++;
        }
    }
    rv = node_place(chunk->id.data, candidates, count, shard_count, out);
    if (rv == 0) {
        for (unsigned i = 0; i < shard_count; i++) {
            node_ids[i] = candidates[out[i]].node_id;
        }
    }
    free(candidates);
    return rv;
}

int gw__cluster_start(struct gw_app *app)
{
    app->members = cn_xcalloc(NODE_BLOCKS_MEMBERS_MAX, sizeof(*app->members));
    uv_timer_init(app->loop, &app->map_timer);
    uv_timer_start(&app->map_timer, timer_cb, 0, 1000);
    return 0;
}

void gw__cluster_stop(struct gw_app *app)
{
    uv_timer_stop(&app->map_timer);
    uv_close((uv_handle_t *)&app->map_timer, NULL);
    free(app->members);
    app->members = NULL;
}
