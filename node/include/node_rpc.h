/*
 * node_rpc: the node port's connections — authenticated with the cluster
 * secret and encrypted — and the framed request/reply RPC on them. Used by
 * cairn-node (server and peer client) and cairn-gateway (client).
 *
 * The channel (node_channel_*) is a pure byte-in/byte-out codec with no I/O,
 * so its handshake and record layer are tested directly; the libuv
 * connection code wraps it.
 *
 * Handshake, version 2 (all sizes in bytes; HMAC = libsodium crypto_auth,
 * HMAC-SHA-512-256, keyed with the 32-byte cluster secret; hello_head is the
 * hello's first 8 bytes, welcome_head the welcome's bytes 32..40):
 *   client -> server  "CRNH" | version 2 | ciphers | 0 0 | client_pk[32]
 *                     | HMAC("c" | hello_head | client_pk)[32]
 *   server -> client  server_pk[32] | cipher | 0 * 7
 *                     | HMAC("s" | hello_head | welcome_head | client_pk | server_pk)[32]
 *                     | stream_header[24]
 *   client -> server  stream_header[24], then records
 * `ciphers` is the set of record ciphers the client offers (NODE_CIPHER_*),
 * `cipher` the one the server chose from it: AES-256-GCM when both ends have
 * AES-NI, else XChaCha20-Poly1305. Both are under the HMACs, so a forger
 * cannot choose for the peers. The public keys are fresh X25519 keys
 * (crypto_kx) for every connection; the session keys from crypto_kx are then
 * keyed with the secret (BLAKE2b), so only holders of the secret can read or
 * forge records, and a replayed hello yields nothing. A server refuses a
 * hello whose HMAC fails before it reads anything else; a client refuses a
 * server that cannot prove the secret. A version 1 peer (before the cipher
 * choice) is refused as not a Cairn hello: upgrade every node and gateway
 * together.
 *
 * Records: u32 ciphertext length (little-endian, authenticated as additional
 * data) | ciphertext | tag. With XChaCha20-Poly1305 a record is a
 * crypto_secretstream_xchacha20poly1305 message (the stream header starts the
 * stream). With AES-256-GCM (OpenSSL) each direction's key is
 * BLAKE2b(key = that direction's session key, its stream header: 24 random
 * bytes), the nonce is 4 zero bytes | the record's number (u64
 * little-endian, counted from 0 on each side, never sent), and the tag is 16
 * bytes; every NODE_REKEY_RECORDS records both ends replace the key with
 * BLAKE2b of it. Either way a replayed, dropped, reordered or altered record
 * fails authentication. A record carries at most NODE_RECORD_PLAIN_MAX
 * plaintext bytes; the frames of proto.h travel as a byte stream inside
 * records, so one frame may span several records.
 */
#ifndef NODE_RPC_H
#define NODE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <sodium.h>
#include <uv.h>

#include "cn.h"
#include "proto.h"

#define NODE_SECRET_SIZE        32
#define NODE_HELLO_SIZE         72
#define NODE_WELCOME_SIZE       96
#define NODE_STREAM_HEADER_SIZE 24
#define NODE_RECORD_PLAIN_MAX   (64u << 10)
#define NODE_RECORD_TAG_MAX     crypto_secretstream_xchacha20poly1305_ABYTES /* 17; GCM's is 16 */
#define NODE_RECORD_CIPHER_MAX  (NODE_RECORD_PLAIN_MAX + NODE_RECORD_TAG_MAX)
/* AES-256-GCM keys are replaced after this many records (64 GiB of 64 KiB
 * records), far inside GCM's limits for one key. */
#define NODE_REKEY_RECORDS (1ull << 20)

/* Record ciphers, as bits of the hello's offer. */
#define NODE_CIPHER_XCHACHA20 0x1u /* libsodium secretstream XChaCha20-Poly1305 */
#define NODE_CIPHER_AES256GCM 0x2u /* OpenSSL AES-256-GCM: offered only with AES-NI */

enum node_channel_state {
    NODE_CHANNEL_HELLO,   /* server: waiting for the client's hello */
    NODE_CHANNEL_WELCOME, /* client: hello sent, waiting for the server's answer */
    NODE_CHANNEL_HEADER,  /* server: answered, waiting for the client's stream header */
    NODE_CHANNEL_OPEN,    /* records flow both ways */
    NODE_CHANNEL_FAILED,  /* a check failed: close the connection */
};

struct evp_cipher_ctx_st; /* OpenSSL's EVP_CIPHER_CTX */

/* One direction of an open channel, in the chosen cipher. */
struct node_channel_stream {
    crypto_secretstream_xchacha20poly1305_state xchacha;
    struct evp_cipher_ctx_st *aes; /* keyed with aes_key; owned */
    uint8_t aes_key[32];
    uint64_t seq; /* AES-256-GCM: records so far, the next record's nonce */
};

struct node_channel {
    bool is_client;
    enum node_channel_state state;
    unsigned ciphers; /* client: offered; server: accepted (NODE_CIPHER_* bits) */
    unsigned cipher;  /* the one chosen, once the welcome is through */
    uint8_t secret[NODE_SECRET_SIZE];
    uint8_t hello_head[8];
    uint8_t public_key[crypto_kx_PUBLICKEYBYTES];
    uint8_t secret_key[crypto_kx_SECRETKEYBYTES];
    uint8_t peer_key[crypto_kx_PUBLICKEYBYTES];
    uint8_t rx_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    struct node_channel_stream tx;
    struct node_channel_stream rx;
    struct cn_buf in; /* received bytes not yet consumed: less than one record */
};

/* The ciphers this process offers and accepts: XChaCha20-Poly1305 always,
 * AES-256-GCM when the CPU has AES-NI and PCLMUL. */
unsigned node_channel_ciphers_local(void);

/* Starts a channel with the cluster secret (borrowed: copied) and the local
 * ciphers. A client appends its hello to out. CAIRN_ENOMEM. */
int node_channel_init(struct node_channel *channel,
                      const uint8_t secret[NODE_SECRET_SIZE],
                      bool is_client,
                      struct cn_buf *out);
/* The same with a chosen set of ciphers (non-empty NODE_CIPHER_* bits): a
 * client offers them, a server accepts only them (tests, benchmarks). */
int node_channel_init_ciphers(struct node_channel *channel,
                              const uint8_t secret[NODE_SECRET_SIZE],
                              bool is_client,
                              unsigned ciphers,
                              struct cn_buf *out);
/* Wipes keys and frees buffers. */
void node_channel_close(struct node_channel *channel);

/* Consumes len received bytes. Handshake replies are appended to out;
 * decrypted record contents to plain (whole records in data are decrypted
 * from there, without a copy into the channel's buffer first). Errors are final (state FAILED):
 * CAIRN_EPROTO (not a Cairn hello), CAIRN_EAUTH (the peer does not hold the
 * secret), CAIRN_ETOOBIG (a record over the limit, refused before buffering
 * it), CAIRN_ECORRUPT (a record that fails authentication), CAIRN_ENOMEM. */
int node_channel_feed(struct node_channel *channel,
                      const void *data,
                      size_t len,
                      struct cn_buf *out,
                      struct cn_buf *plain);

/* Encrypts len bytes as one or more records appended to out. Only when open.
 * CAIRN_ENOMEM. */
int node_channel_seal(struct node_channel *channel,
                      const void *data,
                      size_t len,
                      struct cn_buf *out);
/* The same for the concatenation of parts (borrowed), with no copy of the
 * plaintext first: each part is encrypted straight into out. */
int node_channel_sealv(struct node_channel *channel,
                       const struct iovec *parts,
                       unsigned part_count,
                       struct cn_buf *out);

static inline bool node_channel_is_open(const struct node_channel *channel)
{
    return channel->state == NODE_CHANNEL_OPEN;
}

/* Reads a cluster secret file: exactly 64 hex digits (and an optional newline).
 * Refused (CAIRN_EPERM) if group or others may read it. CAIRN_ENOENT,
 * CAIRN_EIO, CAIRN_EINVAL, with errmsg. */
int node_secret_load(const char *path, uint8_t secret[NODE_SECRET_SIZE], char *errmsg);
/* Creates a new random secret file with mode 0600; CAIRN_EEXIST if present. */
int node_secret_create(const char *path, uint8_t secret[NODE_SECRET_SIZE], char *errmsg);

/* ---- Connections on libuv ---- */

/* Limits and timeouts of one side's connections (node_rpc_options_init() sets defaults). */
struct node_rpc_options {
    uint32_t frame_payload_max;    /* frames over this are refused (default 16 MiB) */
    uint64_t handshake_timeout_ms; /* hello to open (default 5 s) */
    uint64_t stall_timeout_ms;     /* a frame begun but not finished (default 10 s) */
    uint64_t idle_timeout_ms;      /* no traffic at all; 0 = never (default 0) */
    unsigned connections_max;      /* server: more are refused (default 1024) */
    unsigned calls_in_flight_max;  /* client: more get CAIRN_EBUSY (default 256) */
};
void node_rpc_options_init(struct node_rpc_options *options);

struct node_conn;

/* A frame arrived on conn. payload is valid until the callback returns. */
typedef void (*node_frame_cb)(void *data,
                              struct node_conn *conn,
                              const struct proto_frame_header *header,
                              const uint8_t *payload);

/* Queues one frame for conn; it is sent once the channel is open. The payload
 * is borrowed (copied and encrypted before return). CAIRN_ESHUTDOWN if conn is
 * closing, CAIRN_ETOOBIG, CAIRN_ENOMEM. */
int node_conn_send(struct node_conn *conn,
                   uint16_t type,
                   uint8_t flags,
                   uint64_t request_id,
                   const void *payload,
                   size_t length);
/* Replies to request_id with an ErrorReply carrying rv and message. */
int node_conn_send_error(
    struct node_conn *conn, uint16_t type, uint64_t request_id, int rv, const char *message);
/* Keeps conn's memory valid across asynchronous work (a disk write) that
 * will answer on it; every hold is paired with a release. */
void node_conn_hold(struct node_conn *conn);
/* Ends a hold; true if conn is still open (a reply may be sent), false if it
 * closed meanwhile (then it may have been freed by this call: do not use it). */
bool node_conn_release(struct node_conn *conn);
/* The peer's "ip:port", for logs. */
const char *node_conn_peer(const struct node_conn *conn);

/* A listening server on one address ("127.0.0.1:7000", port 0 for any). */
struct node_server;

/* Starts listening; every verified frame of every connection goes to on_frame.
 * CAIRN_EINVAL (bad address), CAIRN_EIO (bind/listen, with errmsg). */
int node_server_start(uv_loop_t *loop,
                      const char *address,
                      const uint8_t secret[NODE_SECRET_SIZE],
                      const struct node_rpc_options *options,
                      node_frame_cb on_frame,
                      void *data,
                      struct node_server **server,
                      char *errmsg);
/* The bound port (useful after port 0). */
int node_server_port(const struct node_server *server);
/* How many connections are open now, and how many were refused or cut. */
unsigned node_server_connection_count(const struct node_server *server);
uint64_t node_server_rejected_count(const struct node_server *server);
/* Closes the listener and every connection; frees server once all are closed,
 * then calls cb (may be NULL). */
void node_server_stop(struct node_server *server, void (*cb)(void *data), void *data);

/* A client for one peer address: one reused connection, re-established on
 * the next call after it fails, with request ids and per-call deadlines. */
struct node_client;

/* The reply to one call, called exactly once: rv is 0 and header/payload the
 * reply frame (valid during the callback), or rv is an error: the peer's
 * ErrorReply code, CAIRN_ETIMEOUT, CAIRN_EAUTH (the peer does not hold the
 * secret), CAIRN_EIO (connection lost), CAIRN_ESHUTDOWN (client freed). */
typedef void (*node_call_cb)(void *data,
                             int rv,
                             const struct proto_frame_header *header,
                             const uint8_t *payload);

struct node_client *node_client_new(uv_loop_t *loop,
                                    const char *address,
                                    const uint8_t secret[NODE_SECRET_SIZE],
                                    const struct node_rpc_options *options);
/* Sends a request frame and calls cb with its reply. CAIRN_EBUSY when too many
 * calls are in flight (back-pressure), CAIRN_ETOOBIG, CAIRN_EINVAL (address). */
int node_client_call(struct node_client *client,
                     uint16_t type,
                     const void *payload,
                     size_t length,
                     uint64_t timeout_ms,
                     node_call_cb cb,
                     void *data);
/* Fails pending calls with CAIRN_ESHUTDOWN, closes, and frees once closed. */
void node_client_free(struct node_client *client);

/* ---- Placement ---- */

#define NODE_PLACE_NODES_MAX 4096

/* A node that may hold shards. */
struct node_candidate {
    uint64_t node_id;
    uint32_t domain; /* failure domain (rack, host): an id, equal for nodes that fail together */
};

/*
 * Chooses where the shard_count shards of a chunk go: rendezvous (highest
 * random weight) hashing of the chunk id over the candidates, taking the best
 * node of each not-yet-used failure domain first, then the best remaining
 * nodes. out[i] is the index into candidates of shard i's node. The same
 * inputs give the same answer on every machine. Adding or removing a node
 * changes a chunk's node set by at most that node, so rebalance compares
 * sets (moving shards only off nodes that left the set), not positions.
 * CAIRN_EUNAVAIL when there
 * are fewer candidates than shards; CAIRN_EINVAL for duplicate node ids.
 */
int node_place(const uint8_t chunk_id[32],
               const struct node_candidate *candidates,
               unsigned candidate_count,
               unsigned shard_count,
               unsigned *out);

/* ---- Block client: a chunk's shards to and from the nodes ---- */

#define NODE_BLOCKS_MEMBERS_MAX 1024
#define NODE_SHARDS_MAX         20 /* STOR_SHARD_COUNT_MAX */

/* A member of the cluster as the block client sees it. */
struct node_member {
    uint64_t node_id;
    uint32_t domain;
    char address[64];
    bool up;       /* down members are not placed on and not read from */
    bool draining; /* up, read from, but not placed on (its shards are moving away) */
};

/* The failure domain number of a node from its label in the cluster map (a
 * node without a label is a domain of its own). Every process that places
 * shards must map labels the same way, or rebalance would undo their work. */
uint32_t node_domain_id(uint64_t node_id, const char *label);

struct node_blocks;

/* Creates a block client over the given loop; it keeps one node_client per member. */
struct node_blocks *node_blocks_new(uv_loop_t *loop,
                                    const uint8_t secret[NODE_SECRET_SIZE],
                                    const struct node_rpc_options *options);
/* Replaces the member list (borrowed; copied). CAIRN_EINVAL over the maximum. */
int node_blocks_set_members(struct node_blocks *blocks,
                            const struct node_member *members,
                            unsigned member_count);
/* Closes every connection; calls in flight finish with CAIRN_ESHUTDOWN. */
void node_blocks_free(struct node_blocks *blocks);
/* The loop the block client runs on. */
uv_loop_t *node_blocks_loop(const struct node_blocks *blocks);
/* The member list as last set: its length, and member i (valid until the next set). */
unsigned node_blocks_member_count(const struct node_blocks *blocks);
const struct node_member *node_blocks_member_at(const struct node_blocks *blocks, unsigned i);
/* One call to an up member over its reused connection (node_client_call()).
 * CAIRN_EUNAVAIL when node_id is unknown or down. */
int node_blocks_call(struct node_blocks *blocks,
                     uint64_t node_id,
                     uint16_t type,
                     const void *payload,
                     size_t length,
                     uint64_t timeout_ms,
                     node_call_cb cb,
                     void *data);

/* A chunk put finished: rv 0 when every shard is durable on its node, and
 * node_ids[i] names the node of shard i (shard_count entries). */
typedef void (*node_blocks_put_cb)(void *data, int rv, const uint64_t *node_ids, unsigned count);

/* Places shards (borrowed for the call: each is copied into its request) on up
 * members by node_place() and puts them all in parallel. CAIRN_EUNAVAIL when
 * too few members are up; later errors come through cb: the first shard's
 * failure (CAIRN_ETIMEOUT, CAIRN_EIO, the node's code). */
int node_blocks_put(struct node_blocks *blocks,
                    const uint8_t chunk_id[32],
                    const uint8_t *const *shards,
                    size_t shard_size,
                    unsigned shard_count,
                    uint64_t timeout_ms,
                    node_blocks_put_cb cb,
                    void *data);

/* A chunk get finished: rv 0 with count shards (each a whole shard, valid
 * during the callback), at least need of them, from the nodes that answered. */
typedef void (*node_blocks_get_cb)(
    void *data, int rv, const uint8_t *const *shards, const size_t *lens, unsigned count);

/* Fetches shards of a chunk whose shard i lives on node_ids[i]: first the
 * need data shards (0..need-1: no decoding needed), then, for each one that is
 * missing, corrupt or on a down node, one more of the rest. Completes with
 * CAIRN_EUNAVAIL when fewer than need could be had. */
int node_blocks_get(struct node_blocks *blocks,
                    const uint8_t chunk_id[32],
                    const uint64_t *node_ids,
                    unsigned shard_count,
                    unsigned need,
                    uint64_t timeout_ms,
                    node_blocks_get_cb cb,
                    void *data);

#endif /* NODE_RPC_H */
