/*
 * The node channel: a handshake that proves both ends hold the cluster
 * secret, then secretstream records (see node_rpc.h for the byte layout).
 *
 * The happy path, client side: init sends the hello; feed() receives the
 * welcome, checks the server's HMAC, derives keys, opens the receiving stream
 * from the server's header and sends its own header; from then on feed()
 * decrypts records and seal() encrypts them. Server side: feed() receives the
 * hello, checks its HMAC, answers with the welcome and its stream header, and
 * opens once the client's header arrives.
 *
 * Possible failure modes, each final for the connection:
 * - bytes that are not a Cairn hello (a port scanner, HTTP): CAIRN_EPROTO;
 * - a peer without the secret: its HMAC fails, CAIRN_EAUTH, before anything
 *   else of its is read;
 * - a record length over the limit: CAIRN_ETOOBIG, before it is buffered;
 * - a record that fails authentication (tampering, a replayed hello whose
 *   sender cannot derive the keys, a truncated stream spliced with other
 *   bytes): CAIRN_ECORRUPT;
 * - a stream whose final tag arrives early: CAIRN_EPROTO.
 * Timeouts on a silent peer belong to the connection code, not here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node_rpc.h"

#define HELLO_MAGIC   "CRNH"
#define HELLO_VERSION 1
#define HEADER_SIZE   crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define MAC_SIZE      crypto_auth_BYTES
#define KEY_SIZE      crypto_kx_PUBLICKEYBYTES

static_assert(NODE_HELLO_SIZE == 8 + KEY_SIZE + MAC_SIZE, "hello layout");
static_assert(NODE_WELCOME_SIZE == KEY_SIZE + MAC_SIZE + HEADER_SIZE, "welcome layout");
static_assert(crypto_auth_KEYBYTES == NODE_SECRET_SIZE, "the secret keys the HMAC");

/* HMAC over a one-letter role and up to two public keys. */
static void handshake_mac(const struct node_channel *channel,
                          char role,
                          const uint8_t *key_a,
                          const uint8_t *key_b,
                          uint8_t mac[MAC_SIZE])
{
    crypto_auth_hmacsha512256_state state;

    crypto_auth_hmacsha512256_init(&state, channel->secret, NODE_SECRET_SIZE);
    crypto_auth_hmacsha512256_update(&state, (const uint8_t *)&role, 1);
    crypto_auth_hmacsha512256_update(&state, key_a, KEY_SIZE);
    if (key_b != NULL) {
        crypto_auth_hmacsha512256_update(&state, key_b, KEY_SIZE);
    }
    crypto_auth_hmacsha512256_final(&state, mac);
}

/* Keys the crypto_kx session key with the secret, so that the stream keys
 * depend on both the exchange and the secret. */
static void mix_secret(const struct node_channel *channel, uint8_t key[KEY_SIZE])
{
    crypto_generichash(key, KEY_SIZE, key, KEY_SIZE, channel->secret, NODE_SECRET_SIZE);
}

int node_channel_init(struct node_channel *channel,
                      const uint8_t secret[NODE_SECRET_SIZE],
                      bool is_client,
                      struct cn_buf *out)
{
    uint8_t hello[NODE_HELLO_SIZE] = HELLO_MAGIC;

    CN_ASSERT(sodium_init() >= 0);
    memset(channel, 0, sizeof(*channel));
    channel->is_client = is_client;
    memcpy(channel->secret, secret, NODE_SECRET_SIZE);
    crypto_kx_keypair(channel->public_key, channel->secret_key);
    cn_buf_init(&channel->in);
    if (!is_client) {
        channel->state = NODE_CHANNEL_HELLO;
        return 0;
    }
    hello[4] = HELLO_VERSION;
    memcpy(hello + 8, channel->public_key, KEY_SIZE);
    handshake_mac(channel, 'c', channel->public_key, NULL, hello + 8 + KEY_SIZE);
    channel->state = NODE_CHANNEL_WELCOME;
    return cn_buf_append(out, hello, sizeof(hello));
}

void node_channel_close(struct node_channel *channel)
{
    cn_buf_close(&channel->in);
    sodium_memzero(channel, sizeof(*channel));
}

/* Server: checks the hello and answers with the welcome. */
static int on_hello(struct node_channel *channel, const uint8_t *hello, struct cn_buf *out)
{
    uint8_t welcome[NODE_WELCOME_SIZE];
    uint8_t mac[MAC_SIZE];
    uint8_t tx_key[KEY_SIZE];

    if (memcmp(hello, HELLO_MAGIC, 4) != 0 || hello[4] != HELLO_VERSION) {
        return CAIRN_EPROTO;
    }
    memcpy(channel->peer_key, hello + 8, KEY_SIZE);
    handshake_mac(channel, 'c', channel->peer_key, NULL, mac);
    if (sodium_memcmp(mac, hello + 8 + KEY_SIZE, MAC_SIZE) != 0) {
        return CAIRN_EAUTH;
    }
    if (crypto_kx_server_session_keys(channel->rx_key, tx_key, channel->public_key,
                                      channel->secret_key, channel->peer_key) != 0) {
        return CAIRN_EAUTH; /* a degenerate public key */
    }
    mix_secret(channel, channel->rx_key);
    mix_secret(channel, tx_key);
    memcpy(welcome, channel->public_key, KEY_SIZE);
    handshake_mac(channel, 's', channel->peer_key, channel->public_key, welcome + KEY_SIZE);
    crypto_secretstream_xchacha20poly1305_init_push(&channel->tx, welcome + KEY_SIZE + MAC_SIZE,
                                                    tx_key);
    sodium_memzero(tx_key, sizeof(tx_key));
    channel->state = NODE_CHANNEL_HEADER;
    return cn_buf_append(out, welcome, sizeof(welcome));
}

/* Client: checks the welcome, opens both streams, sends its header. */
static int on_welcome(struct node_channel *channel, const uint8_t *welcome, struct cn_buf *out)
{
    uint8_t header[HEADER_SIZE];
    uint8_t mac[MAC_SIZE];
    uint8_t tx_key[KEY_SIZE];
    int rv = 0;

    memcpy(channel->peer_key, welcome, KEY_SIZE);
    handshake_mac(channel, 's', channel->public_key, channel->peer_key, mac);
    if (sodium_memcmp(mac, welcome + KEY_SIZE, MAC_SIZE) != 0) {
        return CAIRN_EAUTH;
    }
    if (crypto_kx_client_session_keys(channel->rx_key, tx_key, channel->public_key,
                                      channel->secret_key, channel->peer_key) != 0) {
        return CAIRN_EAUTH;
    }
    mix_secret(channel, channel->rx_key);
    mix_secret(channel, tx_key);
    if (crypto_secretstream_xchacha20poly1305_init_pull(&channel->rx, welcome + KEY_SIZE + MAC_SIZE,
                                                        channel->rx_key) != 0) {
        rv = CAIRN_EPROTO;
        goto out_wipe;
    }
    crypto_secretstream_xchacha20poly1305_init_push(&channel->tx, header, tx_key);
    channel->state = NODE_CHANNEL_OPEN;
    rv = cn_buf_append(out, header, sizeof(header));
out_wipe:
    sodium_memzero(tx_key, sizeof(tx_key));
    return rv;
}

/* Server: the client's stream header opens the receiving stream. */
static int on_header(struct node_channel *channel, const uint8_t *header)
{
    if (crypto_secretstream_xchacha20poly1305_init_pull(&channel->rx, header, channel->rx_key) !=
        0) {
        return CAIRN_EPROTO;
    }
    channel->state = NODE_CHANNEL_OPEN;
    return 0;
}

/* How many buffered bytes the current step needs, or 0 when it is a record
 * whose length is not known yet. */
static size_t step_size(const struct node_channel *channel)
{
    switch (channel->state) {
    case NODE_CHANNEL_HELLO:
        return NODE_HELLO_SIZE;
    case NODE_CHANNEL_WELCOME:
        return NODE_WELCOME_SIZE;
    case NODE_CHANNEL_HEADER:
        return HEADER_SIZE;
    default:
        return channel->in.len < 4 ? 4 : 4 + (size_t)cn_get_u32(channel->in.base);
    }
}

/* Decrypts one whole record at the front of channel->in. */
static int open_record(struct node_channel *channel, size_t cipher_len, struct cn_buf *plain)
{
    size_t plain_max = cipher_len - crypto_secretstream_xchacha20poly1305_ABYTES;
    unsigned long long plain_len;
    uint8_t tag;
    int rv;

    rv = cn_buf_reserve(plain, plain_max);
    if (rv != 0) {
        return rv;
    }
    if (crypto_secretstream_xchacha20poly1305_pull(&channel->rx, plain->base + plain->len,
                                                   &plain_len, &tag, channel->in.base + 4,
                                                   cipher_len, channel->in.base, 4) != 0) {
        return CAIRN_ECORRUPT;
    }
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
        return CAIRN_EPROTO;
    }
    CN_ASSERT(plain_len <= plain_max);
    plain->len += (size_t)plain_len;
    return 0;
}

/* Runs one step on the whole unit at the front of channel->in. */
static int step(struct node_channel *channel, size_t size, struct cn_buf *out, struct cn_buf *plain)
{
    switch (channel->state) {
    case NODE_CHANNEL_HELLO:
        return on_hello(channel, channel->in.base, out);
    case NODE_CHANNEL_WELCOME:
        return on_welcome(channel, channel->in.base, out);
    case NODE_CHANNEL_HEADER:
        return on_header(channel, channel->in.base);
    default:
        return open_record(channel, size - 4, plain);
    }
}

/* Checks a record's length as soon as its 4 bytes are in, before buffering it. */
static int check_record_length(const struct node_channel *channel)
{
    uint32_t cipher_len;

    if (channel->state != NODE_CHANNEL_OPEN || channel->in.len < 4) {
        return 0;
    }
    cipher_len = cn_get_u32(channel->in.base);
    if (cipher_len > NODE_RECORD_CIPHER_MAX) {
        return CAIRN_ETOOBIG;
    }
    if (cipher_len <= crypto_secretstream_xchacha20poly1305_ABYTES) {
        return CAIRN_EPROTO; /* we never send an empty record */
    }
    return 0;
}

int node_channel_feed(struct node_channel *channel,
                      const void *data,
                      size_t len,
                      struct cn_buf *out,
                      struct cn_buf *plain)
{
    const uint8_t *bytes = data;
    int rv = 0;

    if (channel->state == NODE_CHANNEL_FAILED) {
        return CAIRN_EPROTO;
    }
    while (len > 0 || (channel->in.len > 0 && channel->in.len >= step_size(channel))) {
        size_t size = step_size(channel);
        size_t take = CN_MIN(len, size - CN_MIN(size, channel->in.len));

        rv = cn_buf_append(&channel->in, bytes, take);
        bytes += take;
        len -= take;
        if (rv == 0) {
            rv = check_record_length(channel);
        }
        if (rv != 0) {
            break;
        }
        if (channel->in.len < step_size(channel)) {
            continue; /* the record's length just arrived: take its body next */
        }
        size = step_size(channel);
        rv = step(channel, size, out, plain);
        if (rv != 0) {
            break;
        }
        cn_buf_consume(&channel->in, size);
    }
    if (rv != 0) {
        channel->state = NODE_CHANNEL_FAILED;
    }
    return rv;
}

int node_channel_seal(struct node_channel *channel,
                      const void *data,
                      size_t len,
                      struct cn_buf *out)
{
    const uint8_t *bytes = data;
    int rv;

    CN_ASSERT(node_channel_is_open(channel));
    while (len > 0) {
        size_t piece = CN_MIN(len, NODE_RECORD_PLAIN_MAX);
        size_t cipher_len = piece + crypto_secretstream_xchacha20poly1305_ABYTES;
        uint8_t *record;

        rv = cn_buf_reserve(out, 4 + cipher_len);
        if (rv != 0) {
            return rv;
        }
        record = out->base + out->len;
        cn_put_u32(record, (uint32_t)cipher_len);
        crypto_secretstream_xchacha20poly1305_push(
            &channel->tx, record + 4, NULL, bytes, piece, record, 4,
            crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        out->len += 4 + cipher_len;
        bytes += piece;
        len -= piece;
    }
    return 0;
}

int node_secret_load(const char *path, uint8_t secret[NODE_SECRET_SIZE], char *errmsg)
{
    char text[2 * NODE_SECRET_SIZE + 2];
    struct stat st;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return cn_errmsgf(errmsg, cn_err_from_errno(errno), "open(%s): %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
        close(fd);
        return cn_errmsgf(errmsg, CAIRN_EPERM, "%s: readable by group or others (chmod 600 it)",
                          path);
    }
    n = read(fd, text, sizeof(text));
    close(fd);
    if (n == 2 * NODE_SECRET_SIZE + 1 && text[n - 1] == '\n') {
        n--;
    }
    if (n != 2 * NODE_SECRET_SIZE) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: expected %d hex digits", path,
                          2 * NODE_SECRET_SIZE);
    }
    text[n] = '\0';
    if (cn_hex_decode(text, secret, NODE_SECRET_SIZE) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: not hex", path);
    }
    return 0;
}

int node_secret_create(const char *path, uint8_t secret[NODE_SECRET_SIZE], char *errmsg)
{
    char text[2 * NODE_SECRET_SIZE + 2];
    int fd;

    CN_ASSERT(sodium_init() >= 0);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return cn_errmsgf(errmsg, cn_err_from_errno(errno), "create(%s): %s", path,
                          strerror(errno));
    }
    randombytes_buf(secret, NODE_SECRET_SIZE);
    cn_hex_encode(secret, NODE_SECRET_SIZE, text);
    text[2 * NODE_SECRET_SIZE] = '\n';
    if (write(fd, text, sizeof(text) - 1) != (ssize_t)sizeof(text) - 1 || fsync(fd) != 0) {
        int err = errno;
        close(fd);
        unlink(path);
        return cn_errmsgf(errmsg, cn_err_from_errno(err), "write(%s): %s", path, strerror(err));
    }
    close(fd);
    return 0;
}
