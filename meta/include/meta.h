/*
 * meta: Cairn's metadata — a state machine on RocksDB, replicated by Raft.
 *
 * One struct meta_store is one RocksDB per node. Each Raft group has one
 * struct meta_sm over it, owning the keys that start with its group id
 * (docs/metadata.md, "Keys"). A command (cairn.cmd.Command, proto/command.proto)
 * is applied by meta_sm_apply() as one RocksDB WriteBatch that also records
 * the group's last applied index, so after a restart an entry is neither lost
 * nor applied twice.
 *
 * Apply is a plain synchronous function (STYLE §13): it validates, checks the
 * actor's rights, and writes. Time and new ids come inside the command. An
 * operation's own failure (CAIRN_EEXIST, CAIRN_ECONFLICT, ...) is part of the
 * replicated outcome, reported in struct meta_result; meta_sm_apply() itself
 * fails only when the store does (CAIRN_EIO), and then the replica must stop.
 *
 * Memory: records returned by the getters are protobuf-c messages that the
 * caller frees with meta_record_free(). Everything else is caller-owned.
 * meta is a library: it returns codes and never logs (STYLE §20).
 */
#ifndef META_H
#define META_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>

#include "cn.h"
#include "command.pb-c.h"

typedef uint64_t meta_index; /* A Raft log index. */

#define META_NAME_MAX                255u
#define META_REQUEST_ID_SIZE         16u
#define META_TOKEN_HASH_SIZE         32u
#define META_UPLOAD_ID_SIZE          16u
#define META_CHUNK_ID_SIZE           32u
#define META_DIGEST_SIZE             32u
#define META_OUTBOX_ID_SIZE          16u
#define META_USER_NAME_MAX           64u
#define META_PATH_MAX                4096u
#define META_PASSWORD_HASH_MAX       128u
#define META_COMMAND_HEADER_SIZE     8u
#define META_COMMAND_SIZE_MAX        (4u << 20) /* a 10 GiB file's 40k chunk refs */
#define META_FILE_SIZE_MAX           (10ull << 30)
#define META_UPLOAD_CHUNKS_MAX       (1u << 16) /* chunks one session may hold */
#define META_DEPTH_MAX_DEFAULT       64u
#define META_ENTRIES_MAX_DEFAULT     100000u
#define META_PURGE_MAX_DEFAULT       10000u
#define META_DEDUP_WINDOW_MS_DEFAULT (10u * 60u * 1000u)
#define META_DEDUP_PRUNE_MAX         16u
static_assert(META_NAME_MAX < 4096, "names fit in a key");
static_assert(META_COMMAND_SIZE_MAX % 8 == 0, "commands stay 8-aligned");
static_assert(META_FILE_SIZE_MAX / (256u << 10) <= META_UPLOAD_CHUNKS_MAX,
              "a largest file of smallest chunks fits one session");

/* Limits that every replica of a group must share (they shape apply). */
struct meta_limits {
    uint32_t depth_max;       /* folders on the path from the root, root excluded */
    uint32_t entries_max;     /* entries per folder */
    uint32_t purge_max;       /* inodes one purge may remove */
    uint64_t dedup_window_ms; /* how long a request id is remembered */
};

void meta_limits_default(struct meta_limits *limits);

/* ---- The node's store: one RocksDB ---- */

struct meta_store;

/* Opens (creating if needed) the RocksDB at path.
 * CAIRN_EIO or CAIRN_ELOCKED (another process has it), with errmsg. */
int meta_store_open(const char *path, struct meta_store **store, char *errmsg);
/* Closes it; every meta_sm over it must be freed first. */
void meta_store_close(struct meta_store *store);

/* ---- One group's state machine ---- */

struct meta_sm;

/* Outcome of one applied command: rv is 0 or the operation's CAIRN_E* code
 * (deterministic, the same on every replica); value is e.g. the new version. */
struct meta_result {
    int rv;
    uint64_t value;
    bool duplicate; /* a retried request id: the first outcome is returned */
};

/* Attaches group group_id of store. limits may be NULL for the defaults.
 * Reads the applied index: CAIRN_EIO or CAIRN_ECORRUPT. */
int meta_sm_new(struct meta_store *store,
                uint64_t group_id,
                const struct meta_limits *limits,
                struct meta_sm **sm);
void meta_sm_free(struct meta_sm *sm);

/* The last index applied (0 for a new group). */
meta_index meta_sm_applied(const struct meta_sm *sm);

/* Applies the command in buf (as made by meta_command_encode()) at index,
 * which must be after the applied index. An entry at or below the applied index
 * was applied before a restart: it is skipped (result->duplicate, rv 0).
 * Returns 0 with the outcome in result, or CAIRN_EIO when the store failed
 * (nothing of the entry is written; errmsg of the store says why). */
int meta_sm_apply(
    struct meta_sm *sm, meta_index index, const void *buf, size_t len, struct meta_result *result);

/* For tests (STYLE §19): arming it fails the nth store read, iteration or
 * batch write of this group with CAIRN_EIO. */
struct cn_fault *meta_sm_fault(struct meta_sm *sm);

/* How many entries this meta_sm skipped as applied already (replays after
 * a restart): for tests and metrics. */
uint64_t meta_sm_skipped(const struct meta_sm *sm);

/* Records index as applied without a command (Raft barriers and
 * configuration entries), so the applied index tracks the log. */
int meta_sm_apply_noop(struct meta_sm *sm, meta_index index);

/* ---- Commands ---- */

/* Encodes cmd into out (reset first): an 8-byte header (payload length,
 * format version) and the packed message, zero-padded to a multiple of 8
 * bytes (proto_command_padded_size()). CAIRN_ENOMEM or CAIRN_ETOOBIG. */
int meta_command_encode(const Cairn__Cmd__Command *cmd, struct cn_buf *out);
/* Decodes buf. CAIRN_EPROTO for a malformed buffer. Free with meta_record_free(). */
int meta_command_decode(const void *buf, size_t len, Cairn__Cmd__Command **cmd);

/* Frees any record or command returned by this module (NULL is fine). */
void meta_record_free(void *record);

/* ---- Credentials (the proposer's side: slow and random, so not in apply) ---- */

/* argon2id via crypto_pwhash_str, into out (META_PASSWORD_HASH_MAX bytes).
 * CAIRN_ENOMEM when the hash could not get its memory. */
int meta_password_hash(const char *password, char *out);
/* BLAKE2b-256 of a bearer token, as stored in TokenCreate.token_hash. */
void meta_token_hash(const void *token, size_t len, uint8_t out[META_TOKEN_HASH_SIZE]);

/* ---- Reads (local state: linearizable only after a barrier on the leader) ---- */

/* The getters return 0 with a record, CAIRN_ENOENT, or CAIRN_EIO/CAIRN_ECORRUPT. */
int meta_get_user(struct meta_sm *sm, uint64_t user_id, Cairn__Cmd__User **user);
int meta_get_user_by_name(struct meta_sm *sm, const char *name, Cairn__Cmd__User **user);
int meta_get_namespace(struct meta_sm *sm, uint64_t ns, Cairn__Cmd__Namespace **record);
int meta_get_inode(struct meta_sm *sm, uint64_t ns, uint64_t inode, Cairn__Cmd__Inode **record);
int meta_get_version(struct meta_sm *sm,
                     uint64_t ns,
                     uint64_t inode,
                     uint64_t version,
                     Cairn__Cmd__Version **record);
int meta_get_chunk(struct meta_sm *sm, const uint8_t *chunk_id, Cairn__Cmd__Chunk **record);
int meta_get_upload(struct meta_sm *sm, const uint8_t *upload_id, Cairn__Cmd__Upload **record);
/* Calls cb for each chunk a pending session has stored, by offset (borrowed;
 * the record's chunk list is not stored: Upload.chunk_count says how many). */
typedef int (*meta_chunk_ref_cb)(void *data, const Cairn__Cmd__ChunkRef *ref);
int meta_upload_chunks(struct meta_sm *sm,
                       const uint8_t *upload_id,
                       meta_chunk_ref_cb cb,
                       void *data);

/* A token record by the token's hash (META_TOKEN_HASH_SIZE bytes). */
int meta_get_token(struct meta_sm *sm, const uint8_t *hash, Cairn__Cmd__Token **record);

/* Verifies a password: 0 with *user_id, or CAIRN_EAUTH (unknown or
 * disabled user, or wrong password). */
int meta_check_password(struct meta_sm *sm,
                        const char *name,
                        const char *password,
                        uint64_t *user_id);
/* Verifies a bearer token at now_ms: 0 with *user_id, CAIRN_EAUTH (unknown
 * token, or its user is disabled or gone) or CAIRN_EEXPIRED. */
int meta_check_token(
    struct meta_sm *sm, const void *token, size_t len, uint64_t now_ms, uint64_t *user_id);

/* The role of user in ns, on its root (ROLE_NONE when none); user 0 is the system. */
int meta_role(struct meta_sm *sm, uint64_t ns, uint64_t user, Cairn__Cmd__Role *role);
/* The role of user on inode (0: the root) of ns: the owner and the system are
 * owners; others hold the highest grant on the inode or an ancestor.
 * ROLE_NONE for an inode that does not exist; CAIRN_ENOENT for the namespace. */
int meta_role_inode(
    struct meta_sm *sm, uint64_t ns, uint64_t inode, uint64_t user, Cairn__Cmd__Role *role);
/* Calls cb for each grant made directly on inode (0: the root), by user id
 * (borrowed record). CAIRN_ENOENT for the namespace when inode is 0. */
typedef int (*meta_acl_cb)(void *data, const Cairn__Cmd__AclEntry *entry);
int meta_acl_list(struct meta_sm *sm, uint64_t ns, uint64_t inode, meta_acl_cb cb, void *data);

/* Looks name up in folder parent: 0 with *inode, or CAIRN_ENOENT. */
int meta_lookup(
    struct meta_sm *sm, uint64_t ns, uint64_t parent, const char *name, uint64_t *inode);

/* Calls cb for each entry of a folder in name order; a non-zero return stops
 * the walk and is returned. */
typedef int (*meta_list_cb)(void *data, const char *name, size_t name_len, uint64_t inode);
int meta_list(struct meta_sm *sm, uint64_t ns, uint64_t parent, meta_list_cb cb, void *data);

/* One page of a folder's entries in name order: those after the name after
 * ("" = from the start), at most limit; *more says whether entries remain.
 * CAIRN_EINVAL for an after longer than META_NAME_MAX. */
int meta_list_after(struct meta_sm *sm,
                    uint64_t ns,
                    uint64_t parent,
                    const char *after,
                    uint32_t limit,
                    meta_list_cb cb,
                    void *data,
                    bool *more);

/* Calls cb for each top of a trashed subtree of ns (by parent, then id). */
typedef int (*meta_trash_cb)(void *data, uint64_t parent, uint64_t inode);
int meta_list_trash(struct meta_sm *sm, uint64_t ns, meta_trash_cb cb, void *data);

/* Resolves path ("a/b/c": names separated by single slashes, no leading or
 * trailing slash; "" is root itself) from folder root (0: the namespace's
 * root) of ns: 0 with *inode and *parent (the folder holding it; NULL for
 * "") to free, or CAIRN_ENOENT (no namespace, no such item, or root or an
 * item on the way in the trash), CAIRN_ENOTDIR (a file on the way),
 * CAIRN_EINVAL (a bad name or path, longer than META_PATH_MAX). */
int meta_resolve(struct meta_sm *sm,
                 uint64_t ns,
                 uint64_t root,
                 const char *path,
                 Cairn__Cmd__Inode **inode,
                 Cairn__Cmd__Inode **parent);

/* Calls cb for each kept version of an inode, oldest first (borrowed record). */
typedef int (*meta_version_cb)(void *data, const Cairn__Cmd__Version *version);
int meta_list_versions(
    struct meta_sm *sm, uint64_t ns, uint64_t inode, meta_version_cb cb, void *data);

/* Reads the journal of ns after cursor (a sequence number; 0 = from the
 * start), at most max events, oldest first (borrowed events). *next is the
 * cursor to pass next time. */
typedef int (*meta_event_cb)(void *data, const Cairn__Cmd__Event *event);
int meta_journal_read(struct meta_sm *sm,
                      uint64_t ns,
                      uint64_t cursor,
                      uint32_t max,
                      meta_event_cb cb,
                      void *data,
                      uint64_t *next);

/* ---- Sharing across groups (ops_share.c; docs/cluster.md) ---- */

/* Calls cb for at most max pending outbox entries, oldest first (borrowed):
 * deliver each with ShareDeliver to the group of entry->target_ns, then
 * propose OutboxAck{entry->id} here. */
typedef int (*meta_outbox_cb)(void *data, const Cairn__Cmd__OutboxEntry *entry);
int meta_outbox_list(struct meta_sm *sm, uint32_t max, meta_outbox_cb cb, void *data);
/* Calls cb for each item shared with the owner of drive_ns ("shared with
 * me"), by source namespace and inode (borrowed); revoked ones are skipped. */
typedef int (*meta_share_cb)(void *data, const Cairn__Cmd__ShareInfo *share);
int meta_inbox_list(struct meta_sm *sm, uint64_t drive_ns, meta_share_cb cb, void *data);

/* ---- The system group (group 0; ops_system.c) ---- */

/* The cluster record (CAIRN_ENOENT before ClusterInit) and one node. */
int meta_get_cluster(struct meta_sm *sm, Cairn__Cmd__Cluster **record);
int meta_get_node(struct meta_sm *sm, uint64_t node_id, Cairn__Cmd__Node **record);
/* Calls cb for each node, removed ones too, by id (borrowed record). */
typedef int (*meta_node_cb)(void *data, const Cairn__Cmd__Node *node);
int meta_list_nodes(struct meta_sm *sm, meta_node_cb cb, void *data);

/* Calls cb for each chunk record of the group in chunk id order, starting
 * after the id `after` (META_CHUNK_ID_SIZE bytes; NULL = from the first), at
 * most limit of them (borrowed records); *more says whether any are left.
 * A non-zero return of cb stops the walk and is returned. For the leader's
 * background walks (repair, rebalance), one page at a time. */
typedef int (*meta_chunk_cb)(void *data, const Cairn__Cmd__Chunk *chunk);
int meta_list_chunks(struct meta_sm *sm,
                     const uint8_t *after,
                     uint32_t limit,
                     meta_chunk_cb cb,
                     void *data,
                     bool *more);

/* ---- Whole-group operations ---- */

/* BLAKE2b-256 over every key and value of the group: equal on replicas
 * that applied the same entries. */
int meta_sm_digest(struct meta_sm *sm, uint8_t out[META_DIGEST_SIZE]);

/* Checks the invariants of every namespace (names unique in a folder, every
 * parent exists, no cycles, child counts, versions increasing, journal
 * gap-free, used bytes). 0 or CAIRN_ECORRUPT with the first violation in
 * errmsg (CN_ERRMSG_SIZE). Costs a scan: for tests and fsck. */
int meta_sm_check(struct meta_sm *sm, char *errmsg);

/* Serialises the group's state as of one RocksDB snapshot into out (reset
 * first). CAIRN_EIO or CAIRN_ENOMEM. */
int meta_sm_snapshot(struct meta_sm *sm, struct cn_buf *out);
/* Replaces the group's state with a snapshot, atomically (one WriteBatch).
 * CAIRN_ECORRUPT for a malformed snapshot (nothing changes), CAIRN_EIO. */
int meta_sm_restore(struct meta_sm *sm, const void *buf, size_t len);

/* ---- Raft: the group's state machine as a libraft FSM (fsm.c) ---- */

struct meta_fsm;

/* A raft_fsm (version 3) over sm, which it borrows: sm outlives the fsm.
 * async_snapshots serialises snapshots through the I/O's async_work (a
 * meta_group's: libuv's thread pool); without it they are made on the loop
 * (raft_fixture's I/O has no async_work). Pass meta_fsm_raft()
 * to raft_init(), then meta_fsm_attach() the struct raft before it starts: apply reads the entry's
 * index from it. */
int meta_fsm_new(struct meta_sm *sm, bool async_snapshots, struct meta_fsm **fsm);
void meta_fsm_free(struct meta_fsm *fsm);
struct raft_fsm *meta_fsm_raft(struct meta_fsm *fsm);
void meta_fsm_attach(struct meta_fsm *fsm, struct raft *raft);
/* Tests only: while hold is set, a snapshot's copy of the state waits (at
 * most 10 s) before it starts, counted in waiting; copies counts the copies
 * made. Shared with the thread that copies, hence atomics. */
struct meta_snapshot_probe {
    atomic_bool hold;
    atomic_uint waiting;
    atomic_uint copies;
    atomic_size_t bytes; /* of the last copy */
};
struct meta_snapshot_probe *meta_fsm_snapshot_probe(struct meta_fsm *fsm);
/* With entries != 0, every snapshot sets libraft's threshold to
 * max(entries, the snapshot's bytes / 1024): a snapshot copies the whole
 * group, so a large one is taken less often (docs/metadata.md). */
void meta_fsm_threshold_base(struct meta_fsm *fsm, unsigned entries);

/* ---- One Raft group on a libuv loop (group.c) ---- */

struct uv_loop_s;
struct raft_uv_transport;
struct meta_group;
struct meta_mux;

struct meta_server {
    uint64_t id;
    const char *address;
};

struct meta_group_config {
    uint64_t id;                         /* this server's Raft id in the group */
    const char *address;                 /* this server's address in the group */
    const char *dir;                     /* the group's own folder for libraft */
    struct raft_uv_transport *transport; /* borrowed; outlives the group */
    unsigned election_timeout_ms;        /* 0: libraft's default */
    unsigned heartbeat_timeout_ms;       /* 0: libraft's default */
    unsigned snapshot_threshold;         /* 0: libraft's default; at least (grows with the state) */
    unsigned snapshot_trailing;          /* 0: libraft's default */
    /* Called once, at once, when the group's Raft log cannot be written (see
     * meta_group_failed()): a process should stop before anything else is
     * written. NULL: only meta_group_failed() says so. */
    void (*failed_cb)(void *data, const char *why);
    void *failed_data;
    /* An append to the log outstanding this long counts as a failed one:
     * the I/O never completes an append it could not place (a full disk).
     * An installed snapshot is not timed. 0: 30000. */
    uint64_t io_stuck_ms;
};

/* Creates the group over sm (borrowed: it outlives the group) on loop.
 * CAIRN_EIO (the folder, libraft) with errmsg. */
int meta_group_new(struct uv_loop_s *loop,
                   struct meta_sm *sm,
                   const struct meta_group_config *config,
                   struct meta_group **group,
                   char *errmsg);
/* Writes the first configuration of a new group (before start).
 * CAIRN_EEXIST when the group has state already. */
int meta_group_bootstrap(struct meta_group *group,
                         const struct meta_server *servers,
                         unsigned n,
                         char *errmsg);
int meta_group_start(struct meta_group *group, char *errmsg);

/* Closes the group; cb(data) runs once its memory is released. Pending
 * proposals and reads complete with CAIRN_ESHUTDOWN first. */
typedef void (*meta_group_close_cb)(void *data);
void meta_group_close(struct meta_group *group, meta_group_close_cb cb, void *data);

struct meta_sm *meta_group_sm(struct meta_group *group);
/* True once the group's storage has failed, with why in errmsg: its Raft log
 * could not be written (libraft's libuv I/O then refuses every later write),
 * or a write of it stayed outstanding for config->io_stuck_ms, or its state
 * machine could not apply a committed entry (it stops: going on would diverge
 * from the other replicas). Neither heals while the process
 * runs, so the replica can no longer make progress; the node stops and is
 * started again once its disk works (docs/node.md, "Storage failures"). */
bool meta_group_failed(struct meta_group *group, char *errmsg);
/* Tests only: fails the group's Raft log writes as a full disk would. */
struct cn_fault *meta_group_append_fault(struct meta_group *group);
/* Tests only: an append that never completes, as libraft's I/O leaves one it
 * could not place in a new segment (a full disk). */
struct cn_fault *meta_group_stall_fault(struct meta_group *group);
/* Tests only: the group's snapshot probe (above). */
struct meta_snapshot_probe *meta_group_snapshot_probe(struct meta_group *group);
/* Entries between snapshots now: the config's (or libraft's default), more
 * once the state is large (meta_fsm_threshold_base()). */
unsigned meta_group_snapshot_threshold(struct meta_group *group);
/* The index of the last entry in this server's log. */
meta_index meta_group_last_index(struct meta_group *group);
bool meta_group_is_leader(struct meta_group *group);
/* The leader's id (0 if unknown) and address (valid until the next loop turn). */
uint64_t meta_group_leader(struct meta_group *group, const char **address);

/* A proposal: caller-owned, untouched until its callback. The result is
 * valid only during the callback; result->rv is the outcome, or
 * CAIRN_ENOTLEADER (leadership lost: the outcome is unknown, retry with the
 * same request id) or CAIRN_ESHUTDOWN. */
struct meta_propose;
typedef void (*meta_propose_cb)(struct meta_propose *req, const struct meta_result *result);
struct meta_propose {
    void *data;
    meta_propose_cb cb;      /* private */
    struct raft_apply apply; /* private: libraft's request */
};

/* Proposes cmd (its header filled by the caller). CAIRN_ENOTLEADER,
 * CAIRN_ESHUTDOWN, CAIRN_ETOOBIG or CAIRN_ENOMEM at once, else cb later. */
int meta_group_propose(struct meta_group *group,
                       struct meta_propose *req,
                       const Cairn__Cmd__Command *cmd,
                       meta_propose_cb cb);

/* A strong read: cb(req, 0) when the local state may be read
 * linearizably (a barrier committed after the request arrived), or an
 * error (CAIRN_ENOTLEADER, CAIRN_ESHUTDOWN). Reads arriving together share
 * one barrier. Read with the meta_get_*() functions inside the callback. */
struct meta_read;
typedef void (*meta_read_cb)(struct meta_read *req, int rv);
struct meta_read {
    void *data;
    meta_read_cb cb;        /* private */
    struct meta_read *next; /* private */
};
int meta_group_read(struct meta_group *group, struct meta_read *req, meta_read_cb cb);

/* Membership changes, one at a time per group (CAIRN_EBUSY while another
 * is in progress), on the leader (CAIRN_ENOTLEADER). add joins id as a
 * spare (RAFT_SPARE); assign makes it RAFT_VOTER or RAFT_STANDBY once it
 * has caught up; remove takes it out. cb(req, rv) when the new
 * configuration is committed; CAIRN_EINVAL for an unknown id or role,
 * CAIRN_EEXIST for a taken id or address. */
struct meta_change;
typedef void (*meta_change_cb)(struct meta_change *req, int rv);
struct meta_change {
    void *data;
    meta_change_cb cb;         /* private */
    struct raft_change change; /* private */
};
int meta_group_add(struct meta_group *group,
                   struct meta_change *req,
                   uint64_t id,
                   const char *address,
                   meta_change_cb cb);
int meta_group_assign(
    struct meta_group *group, struct meta_change *req, uint64_t id, int role, meta_change_cb cb);
int meta_group_remove(struct meta_group *group,
                      struct meta_change *req,
                      uint64_t id,
                      meta_change_cb cb);

/* Hands leadership to id (0: any voter). cb(req) fires when it happened or
 * timed out: check meta_group_leader() then. One at a time per group
 * (CAIRN_EBUSY while one runs). */
struct meta_transfer;
typedef void (*meta_transfer_cb)(struct meta_transfer *req);
struct meta_transfer {
    void *data;
    meta_transfer_cb cb; /* private */
};
int meta_group_transfer(struct meta_group *group,
                        struct meta_transfer *req,
                        uint64_t id,
                        meta_transfer_cb cb);

/* A watch: wakes once when the journal of ns passes cursor on this replica
 * (cb(watch, 0, seq) with the sequence number reached), or cb(watch,
 * CAIRN_ESHUTDOWN, 0) when the group closes. Caller-owned until then or
 * until meta_group_unwatch(). Read the events with meta_journal_read(). */
struct meta_watch;
typedef void (*meta_watch_cb)(struct meta_watch *watch, int rv, uint64_t seq);
struct meta_watch {
    void *data;
    uint64_t ns;             /* private */
    uint64_t cursor;         /* private */
    meta_watch_cb cb;        /* private */
    struct meta_watch *next; /* private */
};

/* Registers watch, unless the journal is past cursor already: *seq is the
 * journal's sequence number now, and if it is above cursor the watch is not
 * registered (read the journal instead). CAIRN_ENOENT (no such namespace),
 * CAIRN_ESHUTDOWN, CAIRN_EIO. */
int meta_group_watch(struct meta_group *group,
                     struct meta_watch *watch,
                     uint64_t ns,
                     uint64_t cursor,
                     meta_watch_cb cb,
                     uint64_t *seq);
void meta_group_unwatch(struct meta_group *group, struct meta_watch *watch);

/* ---- Many groups over one port (mux.c, tcp.c; docs/metadata.md, "Transport") ---- */

#define META_ADDRESS_MAX 128u

struct meta_mux;
struct uv_stream_s;

/* The connector's answer: a stream that passed the handshake and carries
 * only libraft's bytes from now on (rv 0), or NULL and a CAIRN_E* code. */
typedef void (*meta_mux_connect_done)(void *data, struct uv_stream_s *stream, int rv);

/* Opens outgoing streams for the mux. The node will plug in its own
 * (authenticated, encrypted, on its one port); meta_tcp_connector_init()
 * gives the plain-TCP one. connect() returns 0 and calls done exactly once
 * later, or returns an error and never calls it. Streams are raft_malloc'ed
 * uv_tcp_t (libraft frees the handles it owns with raft_free()). */
struct meta_mux_connector {
    int (*connect)(struct meta_mux_connector *connector,
                   struct meta_mux *mux,
                   uint64_t group_id,
                   const char *address,
                   meta_mux_connect_done done,
                   void *done_data);
};
void meta_tcp_connector_init(struct meta_mux_connector *connector);

/* One per process: node_id is this server's Raft id in every group, address
 * its one "ip:port". connector is borrowed. CAIRN_EINVAL. */
int meta_mux_new(struct uv_loop_s *loop,
                 uint64_t node_id,
                 const char *address,
                 struct meta_mux_connector *connector,
                 struct meta_mux **mux);
/* After every group's transport closed. */
void meta_mux_free(struct meta_mux *mux);
/* Fills transport (for meta_group_config) as group_id's transport over the
 * mux. CAIRN_EEXIST if the group has one already. libraft closes it. */
int meta_mux_transport_init(struct meta_mux *mux,
                            uint64_t group_id,
                            struct raft_uv_transport *transport);
/* An accepted stream that passed the acceptor's handshake, for group_id:
 * given to that group's libraft, or closed if the group is not here. */
void meta_mux_accept(struct meta_mux *mux,
                     uint64_t group_id,
                     uint64_t peer_id,
                     const char *peer_address,
                     struct uv_stream_s *stream);
/* The plain-TCP acceptor on the mux's address (tests, development). */
int meta_mux_listen_tcp(struct meta_mux *mux, char *errmsg);

/* The store's last error text (for the caller's log line). */
const char *meta_sm_errmsg(const struct meta_sm *sm);

#endif /* META_H */
