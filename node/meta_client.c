/*
 * node_meta: the client side of the metadata RPCs (node_meta.h), for the
 * gateway and the tools.
 *
 * The happy path: a call is packed once, sent to the node it last reached
 * (any node answers: it forwards to the group's leader), and its reply
 * unpacked for the callback. The cluster map is fetched at start and every
 * MAP_REFRESH_MS; its up nodes join the seeds as addresses to try, and it
 * tells S (node_meta_data_groups()).
 *
 * Possible failure modes:
 *   - A node unreachable, stopping, without a leader in time, or refusing
 *     us (CAIRN_EIO, CAIRN_ESHUTDOWN, CAIRN_EUNAVAIL, CAIRN_EAUTH,
 *     CAIRN_EBUSY): the call goes to the next address, pausing
 *     RETRY_PAUSE_MS after a full round, until its deadline
 *     (CAIRN_ETIMEOUT, or the last node's error if every node said so).
 *     Proposals are safe to resend: their request id makes them
 *     exactly-once.
 *   - A reply that does not decode: CAIRN_EPROTO.
 *   - node_meta_free(): calls in flight end with CAIRN_ESHUTDOWN.
 */
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "node_meta.h"

#define META_ADDRESSES_MAX 64u
#define MAP_REFRESH_MS     5000u
#define MAP_TIMEOUT_MS     5000u
#define RETRY_PAUSE_MS     100u
#define WATCH_MARGIN_MS    5000u

struct meta_peer {
    char address[64];
    struct node_client *client;
};

struct node_meta {
    uv_loop_t *loop;
    uint8_t secret[NODE_SECRET_SIZE];
    struct node_rpc_options options;
    struct meta_peer peers[META_ADDRESSES_MAX];
    unsigned peer_count;
    unsigned seed_count;
    unsigned next; /* the address to try first */
    uint32_t data_groups;
    uv_timer_t refresh;
    bool map_in_flight;
    bool freeing;
    unsigned handle_count; /* timers still closing */
    struct mcall *calls;
};

/* One call, over as many nodes as it takes. */
struct mcall {
    struct node_meta *meta;
    uint16_t type;
    struct cn_buf payload;
    uint64_t deadline_ms;
    uint64_t extra_ms; /* a watch waits this long at the node */
    unsigned tried;    /* addresses tried in this round */
    int last_rv;
    uv_timer_t timer;
    bool in_flight;
    bool finished;
    void (*deliver)(struct mcall *call, int rv, const uint8_t *payload, size_t len);
    void *cb;
    void *data;
    struct mcall *next;
};

static void maybe_free(struct node_meta *meta)
{
    if (meta->freeing && meta->handle_count == 0 && meta->calls == NULL) {
        sodium_memzero(meta->secret, sizeof(meta->secret));
        free(meta);
    }
}

static void handle_close_cb(uv_handle_t *handle)
{
    struct node_meta *meta = handle->data;

    meta->handle_count--;
    maybe_free(meta);
}

static void call_close_cb(uv_handle_t *handle)
{
    struct mcall *call = handle->data;
    struct node_meta *meta = call->meta;

    cn_buf_close(&call->payload);
    free(call);
    meta->handle_count--;
    maybe_free(meta);
}

static void call_end(struct mcall *call, int rv, const uint8_t *payload, size_t len)
{
    struct node_meta *meta = call->meta;

    CN_ASSERT(!call->finished);
    call->finished = true;
    for (struct mcall **p = &meta->calls; *p != NULL; p = &(*p)->next) {
        if (*p == call) {
            *p = call->next;
            break;
        }
    }
    call->deliver(call, rv, payload, len);
    uv_timer_stop(&call->timer);
    uv_close((uv_handle_t *)&call->timer, call_close_cb);
}

static struct node_client *peer_client(struct node_meta *meta, unsigned i)
{
    if (meta->peers[i].client == NULL) {
        meta->peers[i].client =
            node_client_new(meta->loop, meta->peers[i].address, meta->secret, &meta->options);
    }
    return meta->peers[i].client;
}

static bool peer_add(struct node_meta *meta, const char *address)
{
    if (strlen(address) == 0 || strlen(address) >= sizeof(meta->peers[0].address)) {
        return false;
    }
    for (unsigned i = 0; i < meta->peer_count; i++) {
        if (strcmp(meta->peers[i].address, address) == 0) {
            return true;
        }
    }
    if (meta->peer_count == META_ADDRESSES_MAX) {
        return false;
    }
    snprintf(meta->peers[meta->peer_count].address, sizeof(meta->peers[0].address), "%s", address);
    meta->peers[meta->peer_count++].client = NULL;
    return true;
}

static void call_send(struct mcall *call);

static void call_reply_cb(void *data,
                          int rv,
                          const struct proto_frame_header *header,
                          const uint8_t *payload)
{
    struct mcall *call = data;
    struct node_meta *meta = call->meta;
    bool other_node = rv == CAIRN_EIO || rv == CAIRN_ESHUTDOWN || rv == CAIRN_EUNAVAIL ||
                      rv == CAIRN_EAUTH || rv == CAIRN_EBUSY || rv == CAIRN_ENOTLEADER;

    call->in_flight = false;
    if (rv == 0) {
        call_end(call, 0, payload, header->length);
        return;
    }
    if (meta->freeing || !other_node) {
        call_end(call, rv, NULL, 0);
        return;
    }
    call->last_rv = rv;
    meta->next = (meta->next + 1) % meta->peer_count; /* this one failed: move on */
    call_send(call);
}

static void call_timer_cb(uv_timer_t *timer)
{
    struct mcall *call = timer->data;

    call->tried = 0;
    call_send(call);
}

/* Sends to the next address, or waits after a full round, or gives up. */
static void call_send(struct mcall *call)
{
    struct node_meta *meta = call->meta;
    uint64_t now = uv_now(meta->loop);
    unsigned i;
    int rv;

    if (meta->freeing) {
        call_end(call, CAIRN_ESHUTDOWN, NULL, 0);
        return;
    }
    if (now >= call->deadline_ms) {
        call_end(call, call->last_rv == CAIRN_EUNAVAIL ? CAIRN_EUNAVAIL : CAIRN_ETIMEOUT, NULL, 0);
        return;
    }
    if (call->tried == meta->peer_count) {
        CN_ASSERT(uv_timer_start(&call->timer, call_timer_cb, RETRY_PAUSE_MS, 0) == 0);
        return;
    }
    i = (meta->next) % meta->peer_count;
    call->tried++;
    rv = node_client_call(peer_client(meta, i), call->type, call->payload.base, call->payload.len,
                          call->deadline_ms - now + call->extra_ms, call_reply_cb, call);
    if (rv != 0) {
        call->last_rv = rv;
        meta->next = (meta->next + 1) % meta->peer_count;
        call_send(call);
        return;
    }
    call->in_flight = true;
}

static int call_start(struct node_meta *meta,
                      uint16_t type,
                      const ProtobufCMessage *msg,
                      uint64_t timeout_ms,
                      uint64_t extra_ms,
                      void (*deliver)(struct mcall *, int, const uint8_t *, size_t),
                      void *cb,
                      void *data)
{
    struct mcall *call;

    if (meta->freeing) {
        return CAIRN_ESHUTDOWN;
    }
    call = cn_xcalloc(1, sizeof(*call));
    call->meta = meta;
    call->type = type;
    cn_buf_init(&call->payload);
    if (cn_buf_reserve(&call->payload, protobuf_c_message_get_packed_size(msg) + 1) != 0) {
        free(call);
        return CAIRN_ENOMEM;
    }
    call->payload.len = protobuf_c_message_pack(msg, call->payload.base);
    call->deadline_ms = uv_now(meta->loop) + timeout_ms;
    call->extra_ms = extra_ms;
    call->last_rv = CAIRN_ETIMEOUT;
    call->deliver = deliver;
    call->cb = cb;
    call->data = data;
    CN_ASSERT(uv_timer_init(meta->loop, &call->timer) == 0);
    call->timer.data = call;
    meta->handle_count++;
    call->next = meta->calls;
    meta->calls = call;
    call_send(call);
    return 0;
}

/* ---- The cluster map ---- */

static void map_learn(struct node_meta *meta, const Cairn__Wire__ClusterMap *map)
{
    if (map->data_groups != 0) {
        meta->data_groups = map->data_groups;
    }
    for (size_t i = 0; i < map->n_nodes; i++) {
        if (map->nodes[i]->state == CAIRN__WIRE__NODE_STATE__NODE_UP) {
            peer_add(meta, map->nodes[i]->address);
        }
    }
}

static void deliver_map(struct mcall *call, int rv, const uint8_t *payload, size_t len)
{
    Cairn__Wire__ClusterMap *map = NULL;

    if (rv == 0) {
        map = cairn__wire__cluster_map__unpack(NULL, len, payload);
        rv = map == NULL ? CAIRN_EPROTO : 0;
    }
    if (map != NULL && !call->meta->freeing) {
        map_learn(call->meta, map);
    }
    if (call->cb != NULL) {
        ((node_meta_map_cb)call->cb)(call->data, rv, map);
    } else {
        call->meta->map_in_flight = false;
    }
    if (map != NULL) {
        cairn__wire__cluster_map__free_unpacked(map, NULL);
    }
}

static void refresh_cb(uv_timer_t *timer)
{
    struct node_meta *meta = timer->data;
    Cairn__Wire__Empty empty = CAIRN__WIRE__EMPTY__INIT;

    if (meta->map_in_flight || meta->freeing) {
        return;
    }
    if (call_start(meta, CAIRN__WIRE__MSG_TYPE__MSG_CLUSTER_MAP, &empty.base, MAP_TIMEOUT_MS, 0,
                   deliver_map, NULL, NULL) == 0) {
        meta->map_in_flight = true;
    }
}

struct node_meta *node_meta_new(uv_loop_t *loop,
                                const uint8_t secret[NODE_SECRET_SIZE],
                                const char *const *seeds,
                                unsigned seed_count,
                                const struct node_rpc_options *options)
{
    struct node_meta *meta = calloc(1, sizeof(*meta));

    if (meta == NULL) {
        return NULL;
    }
    meta->loop = loop;
    memcpy(meta->secret, secret, NODE_SECRET_SIZE);
    if (options != NULL) {
        meta->options = *options;
    } else {
        node_rpc_options_init(&meta->options);
    }
    for (unsigned i = 0; i < seed_count; i++) {
        peer_add(meta, seeds[i]);
    }
    if (meta->peer_count == 0) {
        free(meta);
        return NULL;
    }
    meta->seed_count = meta->peer_count;
    CN_ASSERT(uv_timer_init(loop, &meta->refresh) == 0);
    meta->refresh.data = meta;
    meta->handle_count++;
    CN_ASSERT(uv_timer_start(&meta->refresh, refresh_cb, 0, MAP_REFRESH_MS) == 0);
    return meta;
}

void node_meta_free(struct node_meta *meta)
{
    meta->freeing = true;
    uv_close((uv_handle_t *)&meta->refresh, handle_close_cb);
    /* Freeing the clients fails their calls (CAIRN_ESHUTDOWN), which ends
     * ours; calls waiting on a pause timer end here. */
    for (unsigned i = 0; i < meta->peer_count; i++) {
        if (meta->peers[i].client != NULL) {
            node_client_free(meta->peers[i].client);
            meta->peers[i].client = NULL;
        }
    }
    while (meta->calls != NULL) {
        call_end(meta->calls, CAIRN_ESHUTDOWN, NULL, 0);
    }
    maybe_free(meta);
}

uint32_t node_meta_data_groups(const struct node_meta *meta)
{
    return meta->data_groups;
}

/* ---- The calls ---- */

static void deliver_propose(struct mcall *call, int rv, const uint8_t *payload, size_t len)
{
    Cairn__Wire__MetaProposeReply *reply = NULL;

    if (rv == 0) {
        reply = cairn__wire__meta_propose_reply__unpack(NULL, len, payload);
        rv = reply == NULL ? CAIRN_EPROTO : 0;
    }
    ((node_meta_propose_cb)call->cb)(call->data, rv, reply);
    if (reply != NULL) {
        cairn__wire__meta_propose_reply__free_unpacked(reply, NULL);
    }
}

int node_meta_propose(struct node_meta *meta,
                      uint64_t group,
                      const Cairn__Cmd__Command *cmd,
                      uint64_t timeout_ms,
                      node_meta_propose_cb cb,
                      void *data)
{
    Cairn__Wire__MetaPropose req = CAIRN__WIRE__META_PROPOSE__INIT;
    struct cn_buf command;
    int rv;

    cn_buf_init(&command);
    rv = meta_command_encode(cmd, &command);
    if (rv == 0) {
        req.group = group;
        req.command.data = command.base;
        req.command.len = command.len;
        rv = call_start(meta, CAIRN__WIRE__MSG_TYPE__MSG_META_PROPOSE, &req.base, timeout_ms, 0,
                        deliver_propose, (void *)cb, data);
    }
    cn_buf_close(&command);
    return rv;
}

static void deliver_read(struct mcall *call, int rv, const uint8_t *payload, size_t len)
{
    Cairn__Wire__MetaReadReply *reply = NULL;

    if (rv == 0) {
        reply = cairn__wire__meta_read_reply__unpack(NULL, len, payload);
        rv = reply == NULL ? CAIRN_EPROTO : 0;
    }
    ((node_meta_read_cb)call->cb)(call->data, rv, reply);
    if (reply != NULL) {
        cairn__wire__meta_read_reply__free_unpacked(reply, NULL);
    }
}

int node_meta_read(struct node_meta *meta,
                   const Cairn__Wire__MetaRead *query,
                   uint64_t timeout_ms,
                   node_meta_read_cb cb,
                   void *data)
{
    return call_start(meta, CAIRN__WIRE__MSG_TYPE__MSG_META_READ, &query->base, timeout_ms, 0,
                      deliver_read, (void *)cb, data);
}

static void deliver_watch(struct mcall *call, int rv, const uint8_t *payload, size_t len)
{
    Cairn__Wire__MetaWatchReply *reply = NULL;
    uint64_t seq = 0;

    if (rv == 0) {
        reply = cairn__wire__meta_watch_reply__unpack(NULL, len, payload);
        rv = reply == NULL ? CAIRN_EPROTO : 0;
        seq = reply != NULL ? reply->journal_seq : 0;
    }
    ((node_meta_watch_cb)call->cb)(call->data, rv, seq);
    if (reply != NULL) {
        cairn__wire__meta_watch_reply__free_unpacked(reply, NULL);
    }
}

int node_meta_watch(struct node_meta *meta,
                    const Cairn__Wire__MetaWatch *watch,
                    node_meta_watch_cb cb,
                    void *data)
{
    /* The node answers at watch->timeout_ms at the latest; the margin covers
     * its forwarding. A node lost mid-watch: the rest of the time goes to
     * the next node. */
    return call_start(meta, CAIRN__WIRE__MSG_TYPE__MSG_META_WATCH, &watch->base,
                      (uint64_t)watch->timeout_ms + WATCH_MARGIN_MS, 0, deliver_watch, (void *)cb,
                      data);
}

int node_meta_cluster_map(struct node_meta *meta,
                          uint64_t timeout_ms,
                          node_meta_map_cb cb,
                          void *data)
{
    Cairn__Wire__Empty empty = CAIRN__WIRE__EMPTY__INIT;

    CN_ASSERT(cb != NULL);
    return call_start(meta, CAIRN__WIRE__MSG_TYPE__MSG_CLUSTER_MAP, &empty.base, timeout_ms, 0,
                      deliver_map, (void *)cb, data);
}
