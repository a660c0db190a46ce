/*
 * Internal to meta/: the store, the group state machine, keys, and the
 * transaction that one apply builds. Not to be included outside meta/.
 */
#ifndef META_INT_H
#define META_INT_H

#include <rocksdb/c.h>
#include <uv.h>

#include "meta.h"

struct meta_store {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_block_based_table_options_t *table;
    rocksdb_readoptions_t *read;
    rocksdb_writeoptions_t *write;
    char errmsg[CN_ERRMSG_SIZE];
};

/* One apply's writes: a hash of the latest value (or deletion) of each key,
 * so the operation reads its own writes without RocksDB's indexed batch; at
 * commit, a plain WriteBatch with one write per key, in key order (store.c). */
struct meta__write {
    uint8_t *key;
    size_t key_len;
    uint64_t hash;  /* of the key (store.c, key_hash()): computed once */
    uint8_t *value; /* NULL: deleted */
    size_t len;
};
struct meta__overlay {
    rocksdb_writebatch_t *batch; /* filled by meta__overlay_commit() */
    struct meta__write *writes;  /* one per key, in first-written order */
    size_t count, cap;
    uint32_t *slots;   /* open addressing: index + 1 into writes, 0 empty */
    size_t slot_count; /* a power of two, at least twice count */
};

/* The hot records of a group (namespaces, inodes, ...): a direct-mapped
 * table of raw values filled by reads and kept current by every committed
 * apply (store.c); DESIGN.md, "metadata cache". */
struct meta__cached {
    uint8_t *key; /* NULL: empty slot */
    size_t key_len;
    uint8_t *value;
    size_t len;
};
#define META__CACHE_SLOTS 4096u

/* The group's remembered request ids, in memory as in its 'R' table
 * (dedup.c): a hash set to look an id up, a min-heap by (time, id) to forget
 * the oldest. */
struct meta__dedup_entry {
    uint64_t time_ms;
    uint8_t id[META_REQUEST_ID_SIZE];
};
struct meta__dedup {
    struct meta__dedup_entry *heap; /* by (time, id), the oldest first */
    size_t count, cap;
    uint8_t (*ids)[META_REQUEST_ID_SIZE]; /* the set: open addressing, linear probing */
    uint8_t *used;                        /* per slot: 1 if it holds an id */
    size_t set_count;
    size_t slot_count;    /* 0, or a power of two at least twice set_count */
    uint8_t hash_key[16]; /* SipHash's key, random per process */
};

struct meta_sm {
    struct meta_store *store;
    uint64_t group_id;
    struct meta_limits limits;
    meta_index applied;
    uint64_t skipped;   /* entries at or below applied, seen again after a restart */
    uint64_t event_ns;  /* the namespace whose journal the last apply appended to, or 0 */
    uint64_t event_seq; /* and the sequence number it reached */
    struct meta__overlay *pending;  /* the apply in progress: reads see its writes */
    struct meta__overlay scratch;   /* each apply's writes, its arrays kept between applies */
    struct meta__overlay unflushed; /* applies written here, not yet to RocksDB */
    unsigned unflushed_applies;
    bool broken;                          /* a flush failed: the replica must stop (store.c) */
    char broken_why[CN_ERRMSG_SIZE - 32]; /* its first error */
    struct meta__cached *cache;           /* META__CACHE_SLOTS */
    uint64_t cache_hits, cache_misses;
    struct meta__dedup dedup; /* the 'R' table's ids, as of the last written apply */
    struct cn_fault fault;    /* tests: fail the nth store call with CAIRN_EIO */
    char errmsg[CN_ERRMSG_SIZE];
};

/* ---- Keys: group id (8 bytes, big-endian), a table byte, then fields. ---- */

enum meta__table {
    META__T_APPLIED = 'A',  /* -> u64 index */
    META__T_USER = 'U',     /* user id -> User */
    META__T_USERNAME = 'u', /* name -> user id */
    META__T_TOKEN = 'T',    /* token hash -> Token */
    META__T_NS = 'N',       /* ns -> Namespace */
    META__T_INODE = 'I',    /* ns, inode -> Inode */
    META__T_DIRENT = 'D',   /* ns, parent, name -> inode id */
    META__T_TRASH = 'X',    /* ns, parent, inode -> empty (trashed children) */
    META__T_VERSION = 'V',  /* ns, inode, number -> Version */
    /* 'L' held (ns, user) -> role before grants were per inode: retired. */
    META__T_GRANT = 'G',        /* ns, inode, user -> AclEntry */
    META__T_JOURNAL = 'J',      /* ns, seq -> Event */
    META__T_CHUNK = 'C',        /* chunk id -> Chunk */
    META__T_UPLOAD = 'P',       /* upload id -> Upload */
    META__T_UPLOAD_CHUNK = 'Q', /* upload id, offset -> ChunkRef (pending sessions) */
    META__T_REQUEST = 'R',      /* request id -> Outcome */
    /* 'r' held (time, request id) -> empty, the window's order, before it
     * moved to memory (dedup.c): retired. */
    META__T_OUTBOX = 'O',       /* outbox id (16 bytes) -> OutboxEntry */
    META__T_OUTBOX_SEQ = 'o',   /* -> u64, the last outbox sequence used */
    META__T_INBOX = 'H',        /* drive ns, source ns, inode -> InboxEntry */
    META__T_CLUSTER = 'K',      /* -> Cluster (system group) */
    META__T_NODE = 'M',         /* node id -> Node (system group) */
    META__T_NODE_ADDRESS = 'm', /* address -> node id (system group) */
};

#define META__KEY_MAX (8 + 1 + 8 + 8 + META_NAME_MAX + 1)

struct meta__key {
    uint8_t bytes[META__KEY_MAX];
    size_t len;
};

void meta__key_init(struct meta__key *key, const struct meta_sm *sm, enum meta__table table);
void meta__key_u64(struct meta__key *key, uint64_t value);
void meta__key_bytes(struct meta__key *key, const void *data, size_t len);
/* The smallest key above every key that starts with key (for upper bounds). */
void meta__key_successor(const struct meta__key *key, struct meta__key *upper);
uint64_t meta__get_be64(const uint8_t *p);

/* ---- Store access ---- */

/* Reads key into *value (malloc'd, free()), or CAIRN_ENOENT, CAIRN_EIO. */
int meta__get_raw(struct meta_sm *sm, const struct meta__key *key, char **value, size_t *len);
/* Reads and unpacks a record. CAIRN_ENOENT, CAIRN_EIO, CAIRN_ECORRUPT. */
int meta__get_msg(struct meta_sm *sm,
                  const struct meta__key *key,
                  const ProtobufCMessageDescriptor *desc,
                  void **msg);
/* 0 if key exists, CAIRN_ENOENT, or CAIRN_EIO. */
int meta__exists(struct meta_sm *sm, const struct meta__key *key);
/* Reads an 8-byte big-endian value. */
int meta__get_u64(struct meta_sm *sm, const struct meta__key *key, uint64_t *value);

/* An iterator over the keys that start with prefix. */
struct meta__iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *read;
    struct meta__key upper;
    size_t prefix_len;
    int rv; /* the flush before it failed: never valid, close says so */
};
void meta__iter_init(struct meta__iter *iter,
                     struct meta_sm *sm,
                     const struct meta__key *prefix,
                     const rocksdb_snapshot_t *snapshot);
bool meta__iter_valid(struct meta__iter *iter);
void meta__iter_next(struct meta__iter *iter);
const uint8_t *meta__iter_key(struct meta__iter *iter, size_t *len);
const uint8_t *meta__iter_value(struct meta__iter *iter, size_t *len);
/* CAIRN_EIO when the iteration stopped on an error. */
int meta__iter_close(struct meta__iter *iter, struct meta_sm *sm);

/* Serialises the group as of a RocksDB snapshot (meta_sm_snapshot() takes its
 * own) into out; errors are written to errmsg, not sm's. Safe on another
 * thread while the loop applies: libraft's snapshot_async runs it in libuv's
 * thread pool. */
int meta__snapshot_at(const struct meta_sm *sm,
                      const rocksdb_snapshot_t *snapshot,
                      struct cn_buf *out,
                      char *errmsg);
/* The applied index a snapshot carries. CAIRN_ECORRUPT if malformed. */
int meta__snapshot_index(const void *buf, size_t len, meta_index *index);

/* Called by the fsm after each entry it applied (group.c's watches). */
typedef void (*meta__applied_cb)(void *data, struct meta_sm *sm);
void meta__fsm_on_applied(struct meta_fsm *fsm, meta__applied_cb cb, void *data);
/* Why the state machine failed to apply or restore (its first failure), or
 * NULL: libraft retries a failed apply forever, so this is how it is seen. */
const char *meta__fsm_failure(const struct meta_fsm *fsm);

/* ---- The mux (mux.c) and its plain-TCP handshake (tcp.c) ---- */

struct uv_loop_s *meta__mux_loop(struct meta_mux *mux);
uint64_t meta__mux_node_id(struct meta_mux *mux);
const char *meta__mux_address(struct meta_mux *mux);
/* Whether a group's transport is registered and listening. */
bool meta__mux_hosts(struct meta_mux *mux, uint64_t group_id);
int meta__tcp_listen(struct meta_mux *mux, uv_tcp_t *listener, const char *address, char *errmsg);

/* ---- One apply: writes go to the batch, reads see the store and the batch. ---- */

struct meta__tx {
    struct meta_sm *sm;
    struct meta__overlay *batch; /* the operation reads its own writes */
    uint64_t time_ms;
    uint64_t actor; /* 0: the system */
    uint64_t value; /* the result value */
    /* What the apply does to sm->dedup once its batch is written: */
    const uint8_t *remembered; /* the request id it remembers, or NULL */
    struct meta__dedup_entry pruned[META_DEDUP_PRUNE_MAX]; /* taken off the heap */
    unsigned pruned_count;
};

void meta__put_raw(struct meta__tx *tx, const struct meta__key *key, const void *v, size_t len);
/* Packs msg into the batch. CAIRN_ENOMEM. */
int meta__put_msg(struct meta__tx *tx, const struct meta__key *key, const ProtobufCMessage *msg);
void meta__put_u64(struct meta__tx *tx, const struct meta__key *key, uint64_t value);
void meta__del(struct meta__tx *tx, const struct meta__key *key);

void meta__overlay_init(struct meta__overlay *overlay);
/* Forgets every write (a failed operation). */
void meta__overlay_clear(struct meta__overlay *overlay);
/* Frees an empty overlay's arrays if a big apply grew them. */
void meta__overlay_trim(struct meta__overlay *overlay);
void meta__overlay_close(struct meta__overlay *overlay);
/* Adds one apply's writes to the group's unflushed ones (reads see them),
 * brings the cache up to date, and writes them to RocksDB every
 * META__FLUSH_APPLIES applies, or sooner once META__FLUSH_KEYS keys wait.
 * CAIRN_EIO if that write failed. */
int meta__overlay_commit(struct meta_sm *sm, struct meta__overlay *overlay);
/* Writes the unflushed applies to RocksDB, in one batch (store.c). Every
 * RocksDB snapshot, scan and restore comes after one. */
int meta__flush(struct meta_sm *sm);
/* Larger batches write hot records (a namespace, a folder, a file) once for
 * more applies and insert neighbours together; the bound on keys bounds a
 * flush's pause of the loop (~4 ms here) and the memory (docs/benchmarks.md). */
#define META__FLUSH_APPLIES 1024u
#define META__FLUSH_KEYS    4096u
/* Empties the cache (after a restore replaced the group's keys). */
void meta__cache_clear(struct meta_sm *sm);

/* ---- The remembered request ids in memory (dedup.c) ---- */

void meta__dedup_init(struct meta__dedup *d);
void meta__dedup_clear(struct meta__dedup *d);
void meta__dedup_close(struct meta__dedup *d);
bool meta__dedup_has(const struct meta__dedup *d, const uint8_t *id);
/* Adds an id that is not there. */
void meta__dedup_add(struct meta__dedup *d, const uint8_t *id, uint64_t time_ms);
/* The oldest id by (time, id), NULL if none: valid until the next change. */
const struct meta__dedup_entry *meta__dedup_oldest(const struct meta__dedup *d);
/* Takes the oldest off the heap; the set keeps it until forgotten. An
 * apply takes, then forgets each once its batch is written, or puts back. */
void meta__dedup_take_oldest(struct meta__dedup *d, struct meta__dedup_entry *out);
void meta__dedup_put_back(struct meta__dedup *d, const struct meta__dedup_entry *entry);
void meta__dedup_forget(struct meta__dedup *d, const uint8_t *id);
/* Fills sm->dedup from the 'R' table (empty on failure). CAIRN_ECORRUPT,
 * CAIRN_EIO. */
int meta__dedup_load(struct meta_sm *sm);
/* CAIRN_ECORRUPT unless sm->dedup holds exactly the 'R' table's ids, in
 * heap order (meta_sm_check()). */
int meta__dedup_check(struct meta_sm *sm, char *errmsg);

/* Operations, one per command (ops_*.c). Each returns 0 or the CAIRN_E* outcome;
 * on failure the caller discards the batch. */
int meta__op_user_create(struct meta__tx *tx, const Cairn__Cmd__UserCreate *op);
int meta__op_user_set_password(struct meta__tx *tx, const Cairn__Cmd__UserSetPassword *op);
int meta__op_user_disable(struct meta__tx *tx, const Cairn__Cmd__UserDisable *op);
int meta__op_user_set_quota(struct meta__tx *tx, const Cairn__Cmd__UserSetQuota *op);
int meta__op_namespace_set_quota(struct meta__tx *tx, const Cairn__Cmd__NamespaceSetQuota *op);
int meta__op_token_create(struct meta__tx *tx, const Cairn__Cmd__TokenCreate *op);
int meta__op_token_revoke(struct meta__tx *tx, const Cairn__Cmd__TokenRevoke *op);
int meta__op_namespace_create(struct meta__tx *tx, const Cairn__Cmd__NamespaceCreate *op);
int meta__op_acl_grant(struct meta__tx *tx, const Cairn__Cmd__AclGrant *op);
int meta__op_acl_revoke(struct meta__tx *tx, const Cairn__Cmd__AclRevoke *op);
int meta__op_mkdir(struct meta__tx *tx, const Cairn__Cmd__Mkdir *op);
int meta__op_create(struct meta__tx *tx, const Cairn__Cmd__Create *op);
int meta__op_commit(struct meta__tx *tx, const Cairn__Cmd__Commit *op);
int meta__op_rename(struct meta__tx *tx, const Cairn__Cmd__Rename *op);
int meta__op_trash(struct meta__tx *tx, const Cairn__Cmd__Trash *op);
int meta__op_restore(struct meta__tx *tx, const Cairn__Cmd__Restore *op);
int meta__op_purge(struct meta__tx *tx, const Cairn__Cmd__Purge *op);
int meta__op_version_restore(struct meta__tx *tx, const Cairn__Cmd__VersionRestore *op);
int meta__op_chunk_record(struct meta__tx *tx, const Cairn__Cmd__ChunkRecord *op);
int meta__op_chunk_touch(struct meta__tx *tx, const Cairn__Cmd__ChunkTouch *op);
int meta__op_upload_begin(struct meta__tx *tx, const Cairn__Cmd__UploadBegin *op);
int meta__op_upload_complete(struct meta__tx *tx, const Cairn__Cmd__UploadComplete *op);
int meta__op_upload_abort(struct meta__tx *tx, const Cairn__Cmd__UploadAbort *op);
int meta__op_upload_append(struct meta__tx *tx, const Cairn__Cmd__UploadAppend *op);
int meta__op_outbox_ack(struct meta__tx *tx, const Cairn__Cmd__OutboxAck *op);
int meta__op_share_deliver(struct meta__tx *tx, const Cairn__Cmd__ShareDeliver *op);
int meta__op_cluster_init(struct meta__tx *tx, const Cairn__Cmd__ClusterInit *op);
int meta__op_node_add(struct meta__tx *tx, const Cairn__Cmd__NodeAdd *op);
int meta__op_node_set_state(struct meta__tx *tx, const Cairn__Cmd__NodeSetState *op);

/* ---- Shared by the namespace and inode operations (ops_ns.c) ---- */

/* Loads ns and checks that the actor holds at least role on inode (0: the
 * root): CAIRN_ENOENT (no such namespace) or CAIRN_EPERM. Free *record. */
int meta__ns_access(struct meta__tx *tx,
                    uint64_t ns,
                    uint64_t inode,
                    Cairn__Cmd__Role role,
                    Cairn__Cmd__Namespace **record);
/* CAIRN_EPERM unless the actor holds at least role on inode of ns. */
int meta__role_check(struct meta__tx *tx,
                     const Cairn__Cmd__Namespace *ns,
                     uint64_t inode,
                     Cairn__Cmd__Role role);
/* The role of user on inode (0: the root): the owner and the system are
 * owners; others the highest grant on the inode or an ancestor. ROLE_NONE
 * for an inode that does not exist. */
int meta__role_inode(struct meta_sm *sm,
                     const Cairn__Cmd__Namespace *ns,
                     uint64_t inode,
                     uint64_t user,
                     Cairn__Cmd__Role *role);
/* Appends event to the namespace's journal with the next sequence number
 * (ns->journal_seq is advanced; the caller writes ns back). */
int meta__journal_append(struct meta__tx *tx, Cairn__Cmd__Namespace *ns, Cairn__Cmd__Event *event);
int meta__ns_put(struct meta__tx *tx, const Cairn__Cmd__Namespace *ns);
/* CAIRN_EINVAL unless name is a valid entry name (docs/metadata.md, "Limits"). */
int meta__name_check(const char *name);

/* Deletes the grants on inode, queueing a revoke for each delivered one
 * (purge). */
int meta__grants_drop(struct meta__tx *tx,
                      const Cairn__Cmd__Namespace *ns,
                      const Cairn__Cmd__Inode *inode);
/* Writes an outbox entry delivering share to target_ns (ops_share.c). */
int meta__outbox_put(struct meta__tx *tx, uint64_t target_ns, Cairn__Cmd__ShareInfo *share);

/* Creates a file inode named name in parent with id inode (ops_inode.c);
 * used by create and by upload completion. */
int meta__file_create(struct meta__tx *tx,
                      Cairn__Cmd__Namespace *ns,
                      uint64_t parent,
                      const char *name,
                      uint64_t inode);
/* A base_version that matches any current version (Commit.unconditional). */
#define META_BASE_ANY UINT64_MAX
/* Commits version on top of base_version (ops_inode.c). *number is the new version. */
int meta__file_commit(struct meta__tx *tx,
                      Cairn__Cmd__Namespace *ns,
                      uint64_t inode,
                      uint64_t base_version,
                      const Cairn__Cmd__Version *version,
                      uint64_t *number);

#endif /* META_INT_H */
