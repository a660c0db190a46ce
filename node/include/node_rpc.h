/*
 * node_rpc: the node port's connections — authenticated with the cluster
 * secret and encrypted — and the framed request/reply RPC on them. Used by
 * cairn-node (server and peer client) and cairn-gateway (client).
 *
 * The channel (node_channel_*) is a pure byte-in/byte-out codec with no I/O,
 * so its handshake and record layer are tested directly; the libuv
 * connection code wraps it.
 *
 * Handshake (all sizes in bytes; HMAC = libsodium crypto_auth, HMAC-SHA-512-256,
 * keyed with the 32-byte cluster secret):
 *   client -> server  "CRNH" | version 1 | 0 0 0 | client_pk[32] | HMAC("c" | client_pk)[32]
 *   server -> client  server_pk[32] | HMAC("s" | client_pk | server_pk)[32] | stream_header[24]
 *   client -> server  stream_header[24], then records
 * The public keys are fresh X25519 keys (crypto_kx) for every connection; the
 * session keys from crypto_kx are then keyed with the secret (BLAKE2b), so
 * only holders of the secret can read or forge records, and a replayed hello
 * yields nothing. A server refuses a hello whose HMAC fails before it reads
 * anything else; a client refuses a server that cannot prove the secret.
 *
 * Records: u32 ciphertext length (little-endian, authenticated as additional
 * data) | crypto_secretstream_xchacha20poly1305 message. A record carries at
 * most NODE_RECORD_PLAIN_MAX plaintext bytes; the frames of proto.h travel as
 * a byte stream inside records, so one frame may span several records.
 */
#ifndef NODE_RPC_H
#define NODE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "cn.h"

#define NODE_SECRET_SIZE      32
#define NODE_HELLO_SIZE       72
#define NODE_WELCOME_SIZE     88
#define NODE_RECORD_PLAIN_MAX (64u << 10)
#define NODE_RECORD_CIPHER_MAX \
    (NODE_RECORD_PLAIN_MAX + crypto_secretstream_xchacha20poly1305_ABYTES)

enum node_channel_state {
    NODE_CHANNEL_HELLO,   /* server: waiting for the client's hello */
    NODE_CHANNEL_WELCOME, /* client: hello sent, waiting for the server's answer */
    NODE_CHANNEL_HEADER,  /* server: answered, waiting for the client's stream header */
    NODE_CHANNEL_OPEN,    /* records flow both ways */
    NODE_CHANNEL_FAILED,  /* a check failed: close the connection */
};

struct node_channel {
    bool is_client;
    enum node_channel_state state;
    uint8_t secret[NODE_SECRET_SIZE];
    uint8_t public_key[crypto_kx_PUBLICKEYBYTES];
    uint8_t secret_key[crypto_kx_SECRETKEYBYTES];
    uint8_t peer_key[crypto_kx_PUBLICKEYBYTES];
    uint8_t rx_key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    crypto_secretstream_xchacha20poly1305_state tx;
    crypto_secretstream_xchacha20poly1305_state rx;
    struct cn_buf in; /* received bytes not yet consumed: at most one record */
};

/* Starts a channel with the cluster secret (borrowed: copied). A client
 * appends its hello to out. CAIRN_ENOMEM. */
int node_channel_init(struct node_channel *channel,
                      const uint8_t secret[NODE_SECRET_SIZE],
                      bool is_client,
                      struct cn_buf *out);
/* Wipes keys and frees buffers. */
void node_channel_close(struct node_channel *channel);

/* Consumes len received bytes. Handshake replies are appended to out;
 * decrypted record contents to plain. Errors are final (state FAILED):
 * CAIRN_EPROTO (not a Cairn hello), CAIRN_EAUTH (the peer does not hold the
 * secret), CAIRN_ETOOBIG (a record over the limit, refused before buffering
 * it), CAIRN_ECORRUPT (a record that fails authentication), CAIRN_ENOMEM. */
int node_channel_feed(struct node_channel *channel,
                      const void *data,
                      size_t len,
                      struct cn_buf *out,
                      struct cn_buf *plain);

/* Encrypts len bytes as one or more records appended to out. Only when open. */
int node_channel_seal(struct node_channel *channel,
                      const void *data,
                      size_t len,
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

#endif /* NODE_RPC_H */
