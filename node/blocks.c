/*
 * Block RPCs: put, get (whole or a range), delete, verify and list shards on
 * this node's data directories.
 *
 * The happy path: the request is decoded on the loop thread, the disk work
 * (which fsyncs) runs on libuv's thread pool, and the reply is sent back on
 * the loop thread. The connection is held across the work, so a peer that
 * hangs up meanwhile costs nothing but a dropped reply.
 *
 * A shard lives in one data directory, chosen from its chunk id and index;
 * reads look there first and then in the others (a shard moved by an
 * operator is still found). Puts and deletes hold the shard's stripe lock,
 * which scrub (scrub.c) also takes before removing a shard it found corrupt,
 * so scrub never removes a copy a put has just written. Every answer is
 * counted by type and result, with its latency, for /metrics (admin.c).
 *
 * Possible failure modes, each answered with an ErrorReply and its code: a
 * request that does not decode or names a bad chunk id (CAIRN_EINVAL); a shard
 * that does not verify (CAIRN_ECORRUPT, on put and on read: never served); a
 * missing shard (CAIRN_ENOENT); a full disk, or a put that would leave less
 * than the reserve free on it (CAIRN_ENOSPACE: node__reserve_auto()); an I/O
 * error.
 */
#include <stdlib.h>
#include <string.h>

#include "node.h"

#define LIST_LIMIT_MAX 10000

struct block_work {
    uv_work_t req;
    struct node *node;
    struct node_conn *conn;
    uint16_t type;
    uint64_t request_id;
    struct stor_id id;
    unsigned index;
    uint64_t offset;
    uint64_t length;
    uint64_t start_ns; /* arrival, for the latency histogram */
    void *request;     /* the unpacked protobuf message, freed after the work */
    int rv;
    struct cn_buf reply; /* packed reply payload */
};

static struct node_data_dir *home_dir(struct node *node, const struct stor_id *id, unsigned index)
{
    unsigned hot = 0;
    unsigned pick;

    for (unsigned i = 0; i < node->config.dir_count; i++) {
        hot += node->config.dirs[i].tier == NODE_TIER_HOT;
    }
    pick = (cn_get_u32(id->bytes) + index) % (hot > 0 ? hot : node->config.dir_count);
    for (unsigned i = 0; i < node->config.dir_count; i++) {
        if (hot == 0 || node->config.dirs[i].tier == NODE_TIER_HOT) {
            if (pick-- == 0) {
                return &node->config.dirs[i];
            }
        }
    }
    CN_ASSERT(false);
    return NULL;
}

/* Runs op on the home store, then on the others while it says CAIRN_ENOENT. */
static int find_shard(struct block_work *work, struct cn_buf *out)
{
    struct stor_store *home = home_dir(work->node, &work->id, work->index)->store;
    int rv = stor_store_get(home, &work->id, work->index, out);

    for (unsigned i = 0; rv == CAIRN_ENOENT && i < work->node->config.dir_count; i++) {
        struct stor_store *store = work->node->config.dirs[i].store;
        if (store != home) {
            rv = stor_store_get(store, &work->id, work->index, out);
        }
    }
    return rv;
}

static void pack_msg(struct block_work *work, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);

    if (cn_buf_reserve(&work->reply, len) != 0) {
        work->rv = CAIRN_ENOMEM;
        return;
    }
    work->reply.len = protobuf_c_message_pack(msg, work->reply.base);
}

static void do_put(struct block_work *work)
{
    Cairn__Wire__ShardPut *put = work->request;
    Cairn__Wire__ShardPutReply reply = CAIRN__WIRE__SHARD_PUT_REPLY__INIT;
    uv_mutex_t *lock = node__shard_lock(work->node, &work->id, work->index);

    struct node_data_dir *dir = home_dir(work->node, &work->id, work->index);

    work->rv = node__reserve_check(work->node, dir, put->shard.len);
    if (work->rv != 0) {
        return;
    }
    /* Under the shard's stripe lock, so scrub never removes this new copy. */
    uv_mutex_lock(lock);
    work->rv = stor_store_put(dir->store, put->shard.data, put->shard.len);
    uv_mutex_unlock(lock);
    if (work->rv == 0) {
        reply.stored_bytes = put->shard.len;
        pack_msg(work, &reply.base);
    }
}

static void do_get(struct block_work *work)
{
    Cairn__Wire__ShardGetReply reply = CAIRN__WIRE__SHARD_GET_REPLY__INIT;
    struct stor_shard_header header;
    struct cn_buf shard;

    cn_buf_init(&shard);
    work->rv = find_shard(work, &shard);
    if (work->rv == 0 && work->length > 0) {
        /* find_shard() verified it; serve the payload range. */
        CN_ASSERT(stor_shard_parse(shard.base, shard.len, &header) == 0);
        if (work->offset > shard.len - STOR_SHARD_HEADER_SIZE ||
            work->length > shard.len - STOR_SHARD_HEADER_SIZE - work->offset) {
            work->rv = CAIRN_ERANGE;
        } else {
            reply.data.data = shard.base + STOR_SHARD_HEADER_SIZE + work->offset;
            reply.data.len = work->length;
        }
    } else if (work->rv == 0) {
        reply.data.data = shard.base;
        reply.data.len = shard.len;
    }
    if (work->rv == 0) {
        pack_msg(work, &reply.base);
    }
    cn_buf_close(&shard);
}

static void do_verify(struct block_work *work)
{
    Cairn__Wire__ShardVerifyReply reply = CAIRN__WIRE__SHARD_VERIFY_REPLY__INIT;
    struct cn_buf shard;

    cn_buf_init(&shard);
    reply.code = find_shard(work, &shard);
    reply.ok = reply.code == 0;
    cn_buf_close(&shard);
    work->rv = 0;
    pack_msg(work, &reply.base);
}

static void do_delete(struct block_work *work)
{
    Cairn__Wire__Empty reply = CAIRN__WIRE__EMPTY__INIT;
    uv_mutex_t *lock = node__shard_lock(work->node, &work->id, work->index);
    int found = CAIRN_ENOENT;

    uv_mutex_lock(lock);
    for (unsigned i = 0; i < work->node->config.dir_count; i++) {
        int rv = stor_store_delete(work->node->config.dirs[i].store, &work->id, work->index);
        if (rv == 0) {
            found = 0;
        } else if (rv != CAIRN_ENOENT) {
            found = rv;
            break;
        }
    }
    uv_mutex_unlock(lock);
    work->rv = found;
    if (found == 0) {
        pack_msg(work, &reply.base);
    }
}

struct ref_list {
    struct {
        struct stor_id id;
        unsigned index;
    } * refs;
    size_t count;
    size_t cap;
};

static int collect_ref(void *data, const struct stor_id *id, unsigned index, uint64_t size)
{
    struct ref_list *list = data;

    (void)size;
    if (list->count == list->cap) {
        list->cap = list->cap == 0 ? 1024 : list->cap * 2;
        list->refs = cn_xrealloc(list->refs, list->cap * sizeof(*list->refs));
    }
    list->refs[list->count].id = *id;
    list->refs[list->count].index = index;
    list->count++;
    return 0;
}

static int compare_refs(const void *a, const void *b)
{
    const struct stor_id *ida = a, *idb = b;
    int order = memcmp(ida->bytes, idb->bytes, STOR_ID_SIZE);
    unsigned ia = *(const unsigned *)((const char *)a + sizeof(struct stor_id));
    unsigned ib = *(const unsigned *)((const char *)b + sizeof(struct stor_id));

    return order != 0 ? order : (ia > ib) - (ia < ib);
}

/* Lists shards in (chunk id, index) order after the request's cursor. The
 * whole set is walked and sorted per page: simple and bounded by the shard
 * count; an ordered index in the store would make pages O(page). */
static void do_list(struct block_work *work)
{
    Cairn__Wire__ShardList *request = work->request;
    Cairn__Wire__ShardListReply reply = CAIRN__WIRE__SHARD_LIST_REPLY__INIT;
    struct ref_list list = {0};
    size_t limit = request->limit == 0 ? LIST_LIMIT_MAX : CN_MIN(request->limit, LIST_LIMIT_MAX);
    size_t start = 0;

    for (unsigned i = 0; i < work->node->config.dir_count && work->rv == 0; i++) {
        work->rv = stor_store_iterate(work->node->config.dirs[i].store, collect_ref, &list);
    }
    if (work->rv != 0) {
        free(list.refs);
        return;
    }
    qsort(list.refs, list.count, sizeof(*list.refs), compare_refs);
    if (request->after_chunk_id.len == STOR_ID_SIZE) {
        struct {
            struct stor_id id;
            unsigned index;
        } after;
        memcpy(after.id.bytes, request->after_chunk_id.data, STOR_ID_SIZE);
        after.index = request->after_index;
        while (start < list.count && compare_refs(&list.refs[start], &after) <= 0) {
            start++;
        }
    }
    reply.n_shards = CN_MIN(limit, list.count - start);
    reply.more = start + reply.n_shards < list.count;
    reply.shards = cn_xcalloc(reply.n_shards + 1, sizeof(*reply.shards));
    Cairn__Wire__ShardRef *refs = cn_xcalloc(reply.n_shards + 1, sizeof(*refs));
    for (size_t i = 0; i < reply.n_shards; i++) {
        cairn__wire__shard_ref__init(&refs[i]);
        refs[i].chunk_id.data = list.refs[start + i].id.bytes;
        refs[i].chunk_id.len = STOR_ID_SIZE;
        refs[i].index = list.refs[start + i].index;
        reply.shards[i] = &refs[i];
    }
    pack_msg(work, &reply.base);
    free(refs);
    free(reply.shards);
    free(list.refs);
}

static void work_cb(uv_work_t *req)
{
    struct block_work *work = CN_CONTAINER_OF(req, struct block_work, req);

    switch (work->type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT:
        do_put(work);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_GET:
        do_get(work);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_VERIFY:
        do_verify(work);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_DELETE:
        do_delete(work);
        break;
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_LIST:
        do_list(work);
        break;
    default:
        CN_ASSERT(false);
    }
}

static void free_request(struct block_work *work)
{
    if (work->request != NULL) {
        protobuf_c_message_free_unpacked(work->request, NULL);
    }
}

static void after_work_cb(uv_work_t *req, int status)
{
    struct block_work *work = CN_CONTAINER_OF(req, struct block_work, req);

    CN_ASSERT(status == 0);
    work->node->work_in_flight--;
    node__rpc_record(&work->node->rpc, node__rpc_kind(work->type), work->rv,
                     (uv_hrtime() - work->start_ns) / 1000);
    if (cn_log_get_level() <= CN_DEBUG &&
        (work->type == CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT ||
         work->type == CAIRN__WIRE__MSG_TYPE__MSG_SHARD_DELETE || work->rv == CAIRN_ENOENT)) {
        char hex[17]; /* the driver's logs name chunks by these 8 bytes too */
        cn_hex_encode(work->id.bytes, 8, hex);
        CN_LOG(CN_DEBUG, "shard request", "type=%s chunk=%s shard=%u err=%s",
               work->type == CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT      ? "put"
               : work->type == CAIRN__WIRE__MSG_TYPE__MSG_SHARD_DELETE ? "delete"
                                                                       : "read",
               hex, work->index, cairn_errname(work->rv));
    }
    if (work->rv != 0 && work->rv != CAIRN_ENOENT) {
        char hex[2 * STOR_ID_SIZE + 1];
        cn_hex_encode(work->id.bytes, STOR_ID_SIZE, hex);
        CN_LOG(CN_WARN, "block request failed", "type=%u chunk=%s shard=%u err=%s", work->type, hex,
               work->index, cairn_errname(work->rv));
    }
    if (node_conn_release(work->conn)) {
        if (work->rv == 0) {
            node_conn_send(work->conn, work->type, PROTO_FLAG_REPLY, work->request_id,
                           work->reply.base, work->reply.len);
        } else {
            node_conn_send_error(work->conn, work->type, work->request_id, work->rv,
                                 cairn_strerror(work->rv));
        }
    }
    free_request(work);
    cn_buf_close(&work->reply);
    free(work);
}

/* Decodes the request into work; CAIRN_EINVAL if it does not decode. */
static int decode(struct block_work *work,
                  const struct proto_frame_header *header,
                  const uint8_t *payload)
{
    const Cairn__Wire__ShardRef *ref = NULL;
    struct stor_shard_header shard;

    switch (header->type) {
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT: {
        Cairn__Wire__ShardPut *put = cairn__wire__shard_put__unpack(NULL, header->length, payload);
        work->request = put;
        if (put == NULL || stor_shard_header_parse(put->shard.data, put->shard.len, &shard) != 0) {
            return CAIRN_EINVAL;
        }
        work->id = shard.id;
        work->index = shard.index;
        return 0;
    }
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_GET: {
        Cairn__Wire__ShardGet *get = cairn__wire__shard_get__unpack(NULL, header->length, payload);
        work->request = get;
        ref = get != NULL ? get->ref : NULL;
        if (get != NULL) {
            work->offset = get->offset;
            work->length = get->length;
        }
        break;
    }
    case CAIRN__WIRE__MSG_TYPE__MSG_SHARD_LIST:
        work->request = cairn__wire__shard_list__unpack(NULL, header->length, payload);
        return work->request != NULL ? 0 : CAIRN_EINVAL;
    default: {
        Cairn__Wire__ShardRef *unpacked =
            cairn__wire__shard_ref__unpack(NULL, header->length, payload);
        work->request = unpacked;
        ref = unpacked;
        break;
    }
    }
    if (ref == NULL || ref->chunk_id.len != STOR_ID_SIZE || ref->index >= STOR_SHARD_COUNT_MAX) {
        return CAIRN_EINVAL;
    }
    memcpy(work->id.bytes, ref->chunk_id.data, STOR_ID_SIZE);
    work->index = ref->index;
    return 0;
}

bool node__blocks_handle(struct node *node,
                         struct node_conn *conn,
                         const struct proto_frame_header *header,
                         const uint8_t *payload)
{
    struct block_work *work;
    int rv;

    if (header->type < CAIRN__WIRE__MSG_TYPE__MSG_SHARD_PUT ||
        header->type > CAIRN__WIRE__MSG_TYPE__MSG_SHARD_LIST) {
        return false;
    }
    work = cn_xcalloc(1, sizeof(*work));
    work->node = node;
    work->conn = conn;
    work->type = header->type;
    work->request_id = header->request_id;
    work->start_ns = uv_hrtime();
    cn_buf_init(&work->reply);
    rv = decode(work, header, payload);
    if (rv == 0 && node->stopping) {
        rv = CAIRN_ESHUTDOWN;
    }
    if (rv == 0) {
        rv = uv_queue_work(node->loop, &work->req, work_cb, after_work_cb) == 0 ? 0 : CAIRN_EIO;
    }
    if (rv != 0) {
        node_conn_send_error(conn, header->type, header->request_id, rv, "bad block request");
        node__rpc_record(&node->rpc, node__rpc_kind(header->type), rv,
                         (uv_hrtime() - work->start_ns) / 1000);
        free_request(work);
        free(work);
        return true;
    }
    node->work_in_flight++;
    node_conn_hold(conn);
    return true;
}
