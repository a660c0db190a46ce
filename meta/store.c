/*
 * The node's RocksDB and the keys each group owns in it.
 *
 * The happy path:
 *   1. meta_store_open() opens one RocksDB for the node, without its WAL.
 *   2. meta_sm_new() attaches a group: every key of the group starts with the
 *      group id (8 bytes, big-endian), then a table byte (meta_int.h), so a
 *      group's state is one contiguous key range, and a snapshot, a restore
 *      or a digest is one range scan.
 *   3. The group's applied index lives under its 'A' key and is written in
 *      the same WriteBatch as every applied command (apply.c).
 *
 * No WAL, so writes live in the memtable until RocksDB flushes it (when it
 * fills, and at a clean close). A killed process or a power loss takes the
 * applies since the last flush, and that is safe (docs/metadata.md,
 * "Durability of applies"):
 *   - every write is a WriteBatch of one apply, or one restore, that carries
 *     the group's applied index; RocksDB's one column family flushes a
 *     prefix of its writes, so what a restart finds is the state as of some
 *     applied index A, whole, with A under its 'A' key;
 *   - Raft's log is durable (libraft fsyncs before an entry counts), and
 *     libraft keeps every entry after its last snapshot, and its snapshots
 *     are files of their own taken from our state (meta__snapshot_at()). At
 *     start-up libraft restores its snapshot S when S > A (fsm.c), then
 *     replays the entries after max(A, S) from its log: nothing lost,
 *     nothing applied twice.
 *
 * Possible failure modes:
 *   - RocksDB cannot open (permissions, corruption, another process holds its
 *     LOCK): CAIRN_EIO or CAIRN_ELOCKED with RocksDB's text in errmsg.
 *   - A read or write fails: CAIRN_EIO, the text kept in the store's errmsg.
 *   - A stored value does not unpack: CAIRN_ECORRUPT.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "meta_int.h"

void meta_limits_default(struct meta_limits *limits)
{
    limits->depth_max = META_DEPTH_MAX_DEFAULT;
    limits->entries_max = META_ENTRIES_MAX_DEFAULT;
    limits->purge_max = META_PURGE_MAX_DEFAULT;
    limits->dedup_window_ms = META_DEDUP_WINDOW_MS_DEFAULT;
}

static int store_error(char *errmsg, const char *what, char *rocks_err)
{
    int rv = CAIRN_EIO;

    if (strstr(rocks_err, "lock") != NULL || strstr(rocks_err, "LOCK") != NULL) {
        rv = CAIRN_ELOCKED;
    }
    cn_errmsgf(errmsg, rv, "%s: %s", what, rocks_err);
    rocksdb_free(rocks_err);
    return rv;
}

/* RocksDB's InfoLogLevel (the C API has no names for them). */
#define ROCKS_LOG_FATAL 4

int meta_store_open(const char *path, struct meta_store **out, char *errmsg)
{
    struct meta_store *store = cn_xcalloc(1, sizeof(*store));
    char *err = NULL;
    int rv;

    store->options = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(store->options, 1);
    rocksdb_options_set_max_open_files(store->options, 256);
    /* Most point reads in apply are misses (a new request id, a free name):
     * bloom filters answer them without a search, in the memtable and in
     * the tables. A small memtable keeps its skiplist shallow: inserts are
     * the largest cost of an apply (docs/benchmarks.md). */
    store->table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(store->table,
                                                  rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(store->options, store->table);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(store->options, 0.05);
    rocksdb_options_set_memtable_whole_key_filtering(store->options, 1);
    rocksdb_options_set_write_buffer_size(store->options, (size_t)8 << 20);
    /* RocksDB's own LOG file only for fatal messages: Debian's librocksdb is
     * built with assertions, and once a write to LOG failed (a full disk) the
     * next one aborts the process (WritableFileWriter's "previous error"
     * assertion), before our code sees any error. Errors that matter come
     * back to us in each call's status and are logged by the node. */
    rocksdb_options_set_info_log_level(store->options, ROCKS_LOG_FATAL);
    store->db = rocksdb_open(store->options, path, &err);
    if (err != NULL) {
        rv = store_error(errmsg, "rocksdb_open", err);
        goto err_free_options;
    }
    store->read = rocksdb_readoptions_create();
    store->write = rocksdb_writeoptions_create();
    /* No WAL: every write is an apply (or a restore) that Raft's log can
     * replay; see the top of this file. */
    rocksdb_writeoptions_disable_WAL(store->write, 1);
    *out = store;
    return 0;

err_free_options:
    rocksdb_options_destroy(store->options);
    free(store);
    return rv;
}

void meta_store_close(struct meta_store *store)
{
    CN_ASSERT(store != NULL);
    rocksdb_close(store->db);
    rocksdb_readoptions_destroy(store->read);
    rocksdb_writeoptions_destroy(store->write);
    rocksdb_options_destroy(store->options);
    if (store->table != NULL) {
        rocksdb_block_based_options_destroy(store->table);
    }
    free(store);
}

/* ---- Keys ---- */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t meta__get_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void meta__key_init(struct meta__key *key, const struct meta_sm *sm, enum meta__table table)
{
    put_be64(key->bytes, sm->group_id);
    key->bytes[8] = (uint8_t)table;
    key->len = 9;
}

void meta__key_u64(struct meta__key *key, uint64_t value)
{
    CN_ASSERT(key->len + 8 <= sizeof(key->bytes));
    put_be64(key->bytes + key->len, value);
    key->len += 8;
}

void meta__key_bytes(struct meta__key *key, const void *data, size_t len)
{
    CN_ASSERT(key->len + len <= sizeof(key->bytes));
    memcpy(key->bytes + key->len, data, len);
    key->len += len;
}

void meta__key_successor(const struct meta__key *key, struct meta__key *upper)
{
    *upper = *key;
    /* Increment the last byte that is not 0xff, dropping the 0xff tail. */
    while (upper->len > 0 && upper->bytes[upper->len - 1] == 0xff) {
        upper->len--;
    }
    CN_ASSERT(upper->len > 0); /* keys start with a group id and a table byte */
    upper->bytes[upper->len - 1]++;
}

/* ---- The group ---- */

static void group_prefix(const struct meta_sm *sm, struct meta__key *key)
{
    put_be64(key->bytes, sm->group_id);
    key->len = 8;
}

int meta_sm_new(struct meta_store *store,
                uint64_t group_id,
                const struct meta_limits *limits,
                struct meta_sm **out)
{
    struct meta_sm *sm = cn_xcalloc(1, sizeof(*sm));
    struct meta__key key;
    int rv;

    sm->store = store;
    sm->group_id = group_id;
    sm->cache = cn_xcalloc(META__CACHE_SLOTS, sizeof(*sm->cache));
    meta__overlay_init(&sm->unflushed);
    meta__overlay_init(&sm->scratch);
    meta__dedup_init(&sm->dedup);
    cn_fault_init(&sm->fault);
    if (limits != NULL) {
        sm->limits = *limits;
    } else {
        meta_limits_default(&sm->limits);
    }
    CN_ASSERT(sm->limits.depth_max > 0);
    meta__key_init(&key, sm, META__T_APPLIED);
    rv = meta__get_u64(sm, &key, &sm->applied);
    if (rv == CAIRN_ENOENT) {
        sm->applied = 0;
        rv = 0;
    }
    if (rv == 0) {
        rv = meta__dedup_load(sm);
    }
    if (rv != 0) {
        meta_sm_free(sm);
        return rv;
    }
    *out = sm;
    return 0;
}

void meta_sm_free(struct meta_sm *sm)
{
    /* A failure here loses a suffix of applies, which Raft replays. */
    meta__flush(sm);
    meta__overlay_close(&sm->unflushed);
    meta__overlay_close(&sm->scratch);
    meta__cache_clear(sm);
    free(sm->cache);
    meta__dedup_close(&sm->dedup);
    free(sm);
}

meta_index meta_sm_applied(const struct meta_sm *sm)
{
    return sm->applied;
}

struct cn_fault *meta_sm_fault(struct meta_sm *sm)
{
    return &sm->fault;
}

uint64_t meta_sm_skipped(const struct meta_sm *sm)
{
    return sm->skipped;
}

const char *meta_sm_errmsg(const struct meta_sm *sm)
{
    return sm->errmsg;
}

void meta_record_free(void *record)
{
    if (record != NULL) {
        protobuf_c_message_free_unpacked(record, NULL);
    }
}

/* ---- Hashing and copying ---- */

/* Places keys in the overlays and the cache (never an outcome): eight bytes
 * a step, then MurmurHash3's finaliser, since the tables take the low bits.
 * An apply hashes each key it reads or writes once (docs/benchmarks.md). */
static uint64_t key_hash(const uint8_t *key, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, key + i, len - i);
    h ^= w;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint8_t *copy_bytes(const void *p, size_t len)
{
    uint8_t *out = cn_xmalloc(len > 0 ? len : 1);

    if (len > 0) {
        memcpy(out, p, len);
    }
    return out;
}

/* ---- The cache of hot records ---- */

static struct meta__cached *cache_slot(struct meta_sm *sm, uint64_t hash)
{
    return &sm->cache[hash & (META__CACHE_SLOTS - 1)];
}

static bool cached_is(const struct meta__cached *c, const uint8_t *key, size_t len)
{
    return c->key != NULL && c->key_len == len && memcmp(c->key, key, len) == 0;
}

static void cached_drop(struct meta__cached *c)
{
    free(c->key);
    free(c->value);
    *c = (struct meta__cached){0};
}

static void cached_set(
    struct meta__cached *c, const uint8_t *key, size_t key_len, const void *value, size_t len)
{
    cached_drop(c);
    c->key = copy_bytes(key, key_len);
    c->key_len = key_len;
    c->value = copy_bytes(value, len);
    c->len = len;
}

void meta__cache_clear(struct meta_sm *sm)
{
    for (size_t i = 0; i < META__CACHE_SLOTS; i++) {
        cached_drop(&sm->cache[i]);
    }
}

/* ---- One apply's writes ---- */

void meta__overlay_init(struct meta__overlay *overlay)
{
    *overlay = (struct meta__overlay){0}; /* the batch is made by the first flush */
}

void meta__overlay_clear(struct meta__overlay *overlay)
{
    for (size_t i = 0; i < overlay->count; i++) {
        free(overlay->writes[i].key);
        free(overlay->writes[i].value);
    }
    overlay->count = 0;
    if (overlay->slots != NULL) {
        memset(overlay->slots, 0, overlay->slot_count * sizeof(*overlay->slots));
    }
    if (overlay->batch != NULL) {
        rocksdb_writebatch_clear(overlay->batch);
    }
}

void meta__overlay_close(struct meta__overlay *overlay)
{
    meta__overlay_clear(overlay);
    free(overlay->writes);
    free(overlay->slots);
    if (overlay->batch != NULL) {
        rocksdb_writebatch_destroy(overlay->batch);
    }
}

void meta__overlay_trim(struct meta__overlay *overlay)
{
    CN_ASSERT(overlay->count == 0);
    if (overlay->cap > 2 * META__FLUSH_KEYS) {
        /* After a big apply (a purge): do not keep its arrays for good. */
        free(overlay->writes);
        free(overlay->slots);
        overlay->writes = NULL;
        overlay->slots = NULL;
        overlay->cap = 0;
        overlay->slot_count = 0;
    }
}

/* The slot of key (hash: key_hash() of it): the one holding it, or the
 * empty one where it belongs. */
static uint32_t *overlay_slot(const struct meta__overlay *overlay,
                              const uint8_t *key,
                              size_t len,
                              uint64_t hash)
{
    size_t mask = overlay->slot_count - 1;

    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        uint32_t *slot = &overlay->slots[i];
        const struct meta__write *w;

        if (*slot == 0) {
            return slot;
        }
        w = &overlay->writes[*slot - 1];
        if (w->hash == hash && w->key_len == len && memcmp(w->key, key, len) == 0) {
            return slot;
        }
    }
}

static void overlay_grow(struct meta__overlay *overlay)
{
    size_t count = overlay->slot_count == 0 ? 32 : overlay->slot_count * 2;

    free(overlay->slots);
    overlay->slots = cn_xcalloc(count, sizeof(*overlay->slots));
    overlay->slot_count = count;
    for (size_t i = 0; i < overlay->count; i++) {
        const struct meta__write *w = &overlay->writes[i];
        *overlay_slot(overlay, w->key, w->key_len, w->hash) = (uint32_t)(i + 1);
    }
}

/* The write of key in overlay, a new one (key copied, no value) if none. */
static struct meta__write *overlay_write(struct meta__overlay *overlay,
                                         const uint8_t *key,
                                         size_t key_len,
                                         uint64_t hash,
                                         uint8_t **key_copy)
{
    struct meta__write *w;
    uint32_t *slot;

    if (2 * (overlay->count + 1) > overlay->slot_count) {
        overlay_grow(overlay);
    }
    slot = overlay_slot(overlay, key, key_len, hash);
    if (*slot != 0) {
        return &overlay->writes[*slot - 1];
    }
    if (overlay->count == overlay->cap) {
        overlay->cap = overlay->cap == 0 ? 16 : overlay->cap * 2;
        overlay->writes = cn_xrealloc(overlay->writes, overlay->cap * sizeof(*overlay->writes));
    }
    CN_ASSERT(overlay->count < UINT32_MAX);
    w = &overlay->writes[overlay->count++];
    /* Take the caller's copy of the key if it has one. */
    if (key_copy != NULL && *key_copy != NULL) {
        w->key = *key_copy;
        *key_copy = NULL;
    } else {
        w->key = copy_bytes(key, key_len);
    }
    w->key_len = key_len;
    w->hash = hash;
    w->value = NULL;
    w->len = 0;
    *slot = (uint32_t)overlay->count;
    return w;
}

/* Sets key's value to value (NULL: deleted), which the overlay takes. */
static void overlay_take(
    struct meta__overlay *overlay, const uint8_t *key, size_t key_len, uint8_t *value, size_t len)
{
    struct meta__write *w = overlay_write(overlay, key, key_len, key_hash(key, key_len), NULL);

    free(w->value);
    w->value = value;
    w->len = value != NULL ? len : 0;
}

static int write_compare(const void *a, const void *b)
{
    const struct meta__write *x = *(const struct meta__write *const *)a;
    const struct meta__write *y = *(const struct meta__write *const *)b;
    int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);

    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* The group's store lost writes (sm->errmsg says how): it stops for good,
 * and every later call says so, with this first error. Returns rv. */
static int store_broken(struct meta_sm *sm, int rv)
{
    if (!sm->broken) {
        snprintf(sm->broken_why, sizeof(sm->broken_why), "%.*s", (int)sizeof(sm->broken_why) - 1,
                 sm->errmsg);
    }
    sm->broken = true;
    return rv;
}

int meta__flush(struct meta_sm *sm)
{
    struct meta__overlay *overlay = &sm->unflushed;
    struct meta__write **sorted;
    char *err = NULL;

    if (sm->broken) {
        return cn_errmsgf(sm->errmsg, CAIRN_EIO, "an earlier flush failed: %s", sm->broken_why);
    }
    if (overlay->count == 0) {
        return 0;
    }
    /* The batch holds each key once, with its last value, in key order: one
     * memtable insert per key (the applied index once for all the applies),
     * each near the one before it in the skiplist (RocksDB reuses the
     * previous insert's path). The same state as every write in the order
     * made, since the batch is atomic. */
    sorted = cn_xmalloc(overlay->count * sizeof(*sorted));
    for (size_t i = 0; i < overlay->count; i++) {
        sorted[i] = &overlay->writes[i];
    }
    qsort(sorted, overlay->count, sizeof(*sorted), write_compare);
    if (overlay->batch == NULL) {
        overlay->batch = rocksdb_writebatch_create();
    }
    rocksdb_writebatch_clear(overlay->batch);
    for (size_t i = 0; i < overlay->count; i++) {
        const struct meta__write *w = sorted[i];
        if (w->value == NULL) {
            rocksdb_writebatch_delete(overlay->batch, (const char *)w->key, w->key_len);
        } else {
            rocksdb_writebatch_put(overlay->batch, (const char *)w->key, w->key_len,
                                   (const char *)w->value, w->len);
        }
    }
    free(sorted);
    rocksdb_write(sm->store->db, sm->store->write, overlay->batch, &err);
    if (err != NULL) {
        /* Later applies would build on writes the store lacks: stop. */
        return store_broken(sm, store_error(sm->errmsg, "rocksdb_write", err));
    }
    meta__overlay_clear(overlay);
    meta__overlay_trim(overlay);
    sm->unflushed_applies = 0;
    return 0;
}

int meta__overlay_commit(struct meta_sm *sm, struct meta__overlay *overlay)
{
    if (sm->broken) {
        return cn_errmsgf(sm->errmsg, CAIRN_EIO, "an earlier flush failed: %s", sm->broken_why);
    }
    for (size_t i = 0; i < overlay->count; i++) {
        struct meta__write *w = &overlay->writes[i], *u;
        struct meta__cached *c = cache_slot(sm, w->hash);

        /* Records already cached follow their new values; others stay out. */
        if (cached_is(c, w->key, w->key_len)) {
            if (w->value == NULL) {
                cached_drop(c);
            } else {
                cached_set(c, w->key, w->key_len, w->value, w->len);
            }
        }
        /* The unflushed write takes over the apply's key and value. */
        u = overlay_write(&sm->unflushed, w->key, w->key_len, w->hash, &w->key);
        free(u->value);
        u->value = w->value;
        u->len = w->len;
        w->value = NULL;
    }
    meta__overlay_clear(overlay); /* frees the keys not taken */
    if (++sm->unflushed_applies >= META__FLUSH_APPLIES || sm->unflushed.count >= META__FLUSH_KEYS) {
        return meta__flush(sm);
    }
    return 0;
}

/* ---- Reads ---- */

/* Finds key's value: *value borrows the bytes of an overlay or of the cache,
 * valid until the next read or write. CAIRN_ENOENT, CAIRN_EIO. */
static int get_ref(struct meta_sm *sm,
                   const struct meta__key *key,
                   const uint8_t **value,
                   size_t *len)
{
    uint64_t hash = key_hash(key->bytes, key->len);
    struct meta__cached *c;
    char *err = NULL, *got;

    /* Defined outputs on every path, so no caller reads garbage on an error. */
    *value = NULL;
    *len = 0;
    if (cn_fault_tick(&sm->fault)) {
        return cn_errmsgf(sm->errmsg, CAIRN_EIO, "rocksdb_get: injected fault");
    }
    for (int i = 0; i < 2; i++) {
        /* The apply in progress, then the applies not yet in RocksDB. */
        const struct meta__overlay *overlay = i == 0 ? sm->pending : &sm->unflushed;
        const struct meta__write *w;
        uint32_t slot;

        if (overlay == NULL || overlay->count == 0) {
            continue;
        }
        slot = *overlay_slot(overlay, key->bytes, key->len, hash);
        if (slot == 0) {
            continue;
        }
        w = &overlay->writes[slot - 1];
        if (w->value == NULL) {
            return CAIRN_ENOENT;
        }
        *value = w->value;
        *len = w->len;
        return 0;
    }
    c = cache_slot(sm, hash);
    if (cached_is(c, key->bytes, key->len)) {
        sm->cache_hits++;
        *value = c->value;
        *len = c->len;
        return 0;
    }
    sm->cache_misses++;
    got =
        rocksdb_get(sm->store->db, sm->store->read, (const char *)key->bytes, key->len, len, &err);
    if (err != NULL) {
        return store_error(sm->errmsg, "rocksdb_get", err);
    }
    if (got == NULL) {
        return CAIRN_ENOENT;
    }
    /* The cache takes RocksDB's copy (malloc'd by its C API). */
    cached_drop(c);
    c->key = copy_bytes(key->bytes, key->len);
    c->key_len = key->len;
    c->value = (uint8_t *)got;
    c->len = *len;
    *value = c->value;
    return 0;
}

int meta__get_raw(struct meta_sm *sm, const struct meta__key *key, char **value, size_t *len)
{
    const uint8_t *ref;
    int rv;

    *value = NULL;
    rv = get_ref(sm, key, &ref, len);
    if (rv == 0) {
        *value = (char *)copy_bytes(ref, *len);
    }
    return rv;
}

int meta__get_msg(struct meta_sm *sm,
                  const struct meta__key *key,
                  const ProtobufCMessageDescriptor *desc,
                  void **msg)
{
    const uint8_t *ref;
    size_t len;
    int rv;

    *msg = NULL;
    rv = get_ref(sm, key, &ref, &len);
    if (rv != 0) {
        return rv;
    }
    *msg = protobuf_c_message_unpack(desc, NULL, len, ref); /* copies what it keeps */
    if (*msg == NULL) {
        return cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "unpack %s: malformed", desc->name);
    }
    return 0;
}

int meta__exists(struct meta_sm *sm, const struct meta__key *key)
{
    const uint8_t *ref;
    size_t len;

    return get_ref(sm, key, &ref, &len);
}

int meta__get_u64(struct meta_sm *sm, const struct meta__key *key, uint64_t *out)
{
    const uint8_t *ref;
    size_t len;
    int rv;

    rv = get_ref(sm, key, &ref, &len);
    if (rv != 0) {
        return rv;
    }
    if (len != 8) {
        return cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "u64 value of %zu bytes", len);
    }
    *out = meta__get_be64(ref);
    return 0;
}

/* ---- Iteration ---- */

void meta__iter_init(struct meta__iter *iter,
                     struct meta_sm *sm,
                     const struct meta__key *prefix,
                     const rocksdb_snapshot_t *snapshot)
{
    /* Without a RocksDB snapshot the scan reads the store as it is now: the
     * unflushed applies go first. (A snapshot was taken after a flush.) */
    iter->rv = snapshot == NULL ? meta__flush(sm) : 0;
    meta__key_successor(prefix, &iter->upper);
    iter->prefix_len = prefix->len;
    iter->read = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(iter->read, (const char *)iter->upper.bytes,
                                                iter->upper.len);
    if (snapshot != NULL) {
        rocksdb_readoptions_set_snapshot(iter->read, snapshot);
    }
    iter->it = rocksdb_create_iterator(sm->store->db, iter->read);
    rocksdb_iter_seek(iter->it, (const char *)prefix->bytes, prefix->len);
}

bool meta__iter_valid(struct meta__iter *iter)
{
    return iter->rv == 0 && rocksdb_iter_valid(iter->it) != 0;
}

void meta__iter_next(struct meta__iter *iter)
{
    rocksdb_iter_next(iter->it);
}

const uint8_t *meta__iter_key(struct meta__iter *iter, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_key(iter->it, len);
}

const uint8_t *meta__iter_value(struct meta__iter *iter, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_value(iter->it, len);
}

int meta__iter_close(struct meta__iter *iter, struct meta_sm *sm)
{
    char *err = NULL;
    int rv = 0;

    rocksdb_iter_get_error(iter->it, &err);
    if (iter->rv != 0) {
        rv = iter->rv;
        rocksdb_free(err);
    } else if (err != NULL) {
        rv = store_error(sm->errmsg, "rocksdb iterator", err);
    } else if (cn_fault_tick(&sm->fault)) {
        rv = cn_errmsgf(sm->errmsg, CAIRN_EIO, "rocksdb iterator: injected fault");
    }
    rocksdb_iter_destroy(iter->it);
    rocksdb_readoptions_destroy(iter->read);
    return rv;
}

/* ---- Batch writes ---- */

void meta__put_raw(struct meta__tx *tx, const struct meta__key *key, const void *v, size_t len)
{
    overlay_take(tx->batch, key->bytes, key->len, copy_bytes(v, len), len);
}

int meta__put_msg(struct meta__tx *tx, const struct meta__key *key, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *bytes = malloc(len > 0 ? len : 1);

    if (bytes == NULL) {
        return CAIRN_ENOMEM;
    }
    protobuf_c_message_pack(msg, bytes);
    overlay_take(tx->batch, key->bytes, key->len, bytes, len); /* packed once, not copied */
    return 0;
}

void meta__put_u64(struct meta__tx *tx, const struct meta__key *key, uint64_t value)
{
    uint8_t bytes[8];

    put_be64(bytes, value);
    meta__put_raw(tx, key, bytes, sizeof(bytes));
}

void meta__del(struct meta__tx *tx, const struct meta__key *key)
{
    overlay_take(tx->batch, key->bytes, key->len, NULL, 0);
}

/* ---- Digest, snapshot, restore ---- */

int meta_sm_digest(struct meta_sm *sm, uint8_t out[META_DIGEST_SIZE])
{
    crypto_generichash_state state;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *p;
    uint8_t lens[8];
    size_t len;

    crypto_generichash_init(&state, NULL, 0, META_DIGEST_SIZE);
    group_prefix(sm, &prefix);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; meta__iter_valid(&iter); meta__iter_next(&iter)) {
        p = meta__iter_key(&iter, &len);
        p += prefix.len; /* without the group id: replicas may be groups of one store */
        len -= prefix.len;
        cn_put_u64(lens, len);
        crypto_generichash_update(&state, lens, sizeof(lens));
        crypto_generichash_update(&state, p, len);
        p = meta__iter_value(&iter, &len);
        cn_put_u64(lens, len);
        crypto_generichash_update(&state, lens, sizeof(lens));
        crypto_generichash_update(&state, p, len);
    }
    crypto_generichash_final(&state, out, META_DIGEST_SIZE);
    return meta__iter_close(&iter, sm);
}

/* Snapshot format: "CMS1", then records of (u32 key length, key without the
 * group prefix, u32 value length, value), all little-endian. */
#define SNAPSHOT_MAGIC "CMS1"

static int snapshot_append(struct cn_buf *out, const uint8_t *p, size_t len)
{
    uint8_t len_bytes[4];
    int rv;

    CN_ASSERT(len <= UINT32_MAX);
    cn_put_u32(len_bytes, (uint32_t)len);
    rv = cn_buf_append(out, len_bytes, sizeof(len_bytes));
    if (rv == 0) {
        rv = cn_buf_append(out, p, len);
    }
    return rv;
}

int meta__snapshot_at(const struct meta_sm *sm,
                      const rocksdb_snapshot_t *snapshot,
                      struct cn_buf *out,
                      char *errmsg)
{
    rocksdb_readoptions_t *read = rocksdb_readoptions_create();
    struct meta__key prefix, upper;
    rocksdb_iterator_t *it;
    const uint8_t *p;
    char *err = NULL;
    size_t len;
    int rv;

    /* Its own iterator and error text, nothing of sm's that the loop writes:
     * this runs in libuv's thread pool while applies go on. */
    group_prefix(sm, &prefix);
    meta__key_successor(&prefix, &upper);
    rocksdb_readoptions_set_iterate_upper_bound(read, (const char *)upper.bytes, upper.len);
    rocksdb_readoptions_set_snapshot(read, snapshot);
    it = rocksdb_create_iterator(sm->store->db, read);
    cn_buf_reset(out);
    rv = cn_buf_append(out, SNAPSHOT_MAGIC, 4);
    for (rocksdb_iter_seek(it, (const char *)prefix.bytes, prefix.len);
         rv == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        p = (const uint8_t *)rocksdb_iter_key(it, &len);
        CN_ASSERT(len > prefix.len);
        rv = snapshot_append(out, p + prefix.len, len - prefix.len);
        if (rv == 0) {
            p = (const uint8_t *)rocksdb_iter_value(it, &len);
            rv = snapshot_append(out, p, len);
        }
    }
    rocksdb_iter_get_error(it, &err);
    if (err != NULL) {
        rv = store_error(errmsg, "rocksdb iterator", err);
    } else if (rv != 0) {
        rv = cn_errmsgf(errmsg, rv, "snapshot: %s", cairn_errname(rv));
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(read);
    return rv;
}

int meta_sm_snapshot(struct meta_sm *sm, struct cn_buf *out)
{
    const rocksdb_snapshot_t *snapshot;
    int rv;

    rv = meta__flush(sm);
    if (rv != 0) {
        return rv;
    }
    snapshot = rocksdb_create_snapshot(sm->store->db);
    rv = meta__snapshot_at(sm, snapshot, out, sm->errmsg);
    rocksdb_release_snapshot(sm->store->db, snapshot);
    return rv;
}

/* Reads one length-prefixed field at *pos. CAIRN_ECORRUPT if it overruns. */
static int snapshot_field(
    const uint8_t *buf, size_t len, size_t *pos, const uint8_t **field, size_t *field_len)
{
    if (len - *pos < 4) {
        return CAIRN_ECORRUPT;
    }
    *field_len = cn_get_u32(buf + *pos);
    *pos += 4;
    if (len - *pos < *field_len) {
        return CAIRN_ECORRUPT;
    }
    *field = buf + *pos;
    *pos += *field_len;
    return 0;
}

int meta__snapshot_index(const void *buf, size_t len, meta_index *index)
{
    const uint8_t *k, *v;
    size_t pos = 4, k_len, v_len;

    if (len < 4 || memcmp(buf, SNAPSHOT_MAGIC, 4) != 0) {
        return CAIRN_ECORRUPT;
    }
    *index = 0;
    /* The applied key has the smallest table byte ('A'), so it comes first. */
    if (pos < len && snapshot_field(buf, len, &pos, &k, &k_len) == 0 &&
        snapshot_field(buf, len, &pos, &v, &v_len) == 0 && k_len == 1 && k[0] == META__T_APPLIED &&
        v_len == 8) {
        *index = meta__get_be64(v);
    }
    return 0;
}

static int restore_fill(struct meta_sm *sm,
                        rocksdb_writebatch_t *batch,
                        const uint8_t *buf,
                        size_t len,
                        meta_index *applied)
{
    struct meta__key key;
    const uint8_t *k, *v;
    size_t pos = 4, k_len, v_len;

    *applied = 0;
    while (pos < len) {
        if (snapshot_field(buf, len, &pos, &k, &k_len) != 0 ||
            snapshot_field(buf, len, &pos, &v, &v_len) != 0 || k_len == 0 ||
            k_len + 8 > sizeof(key.bytes)) {
            return cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "snapshot: bad record at %zu", pos);
        }
        group_prefix(sm, &key);
        meta__key_bytes(&key, k, k_len);
        rocksdb_writebatch_put(batch, (const char *)key.bytes, key.len, (const char *)v, v_len);
        if (k_len == 1 && k[0] == META__T_APPLIED && v_len == 8) {
            *applied = meta__get_be64(v);
        }
    }
    return 0;
}

int meta_sm_restore(struct meta_sm *sm, const void *buf, size_t len)
{
    rocksdb_writebatch_t *batch;
    struct meta__key lower, upper;
    meta_index applied;
    char *err = NULL;
    int rv;

    if (len < 4 || memcmp(buf, SNAPSHOT_MAGIC, 4) != 0) {
        return cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "snapshot: bad magic");
    }
    rv = meta__flush(sm); /* the store keeps the order of writes */
    if (rv != 0) {
        return rv;
    }
    batch = rocksdb_writebatch_create();
    group_prefix(sm, &lower);
    meta__key_successor(&lower, &upper);
    /* The delete comes first in the batch, so the puts after it win. */
    rocksdb_writebatch_delete_range(batch, (const char *)lower.bytes, lower.len,
                                    (const char *)upper.bytes, upper.len);
    rv = restore_fill(sm, batch, buf, len, &applied);
    if (rv != 0) {
        goto out;
    }
    rocksdb_write(sm->store->db, sm->store->write, batch, &err);
    if (err != NULL) {
        rv = store_error(sm->errmsg, "rocksdb_write", err);
        goto out;
    }
    sm->applied = applied;
    /* The remembered request ids are the snapshot's now. Without them in
     * memory applies would go wrong: the replica stops, as after a failed
     * flush. */
    rv = meta__dedup_load(sm);
    if (rv != 0) {
        store_broken(sm, rv);
    }
out:
    meta__cache_clear(sm); /* the keys were replaced (or half-read on a failure: be safe) */
    rocksdb_writebatch_destroy(batch);
    return rv;
}
