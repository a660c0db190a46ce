/*
 * The node channel: a handshake that proves both ends hold the cluster
 * secret and picks the record cipher, then encrypted records (see node_rpc.h
 * for the byte layout).
 *
 * The happy path, client side: init sends the hello with the ciphers it
 * offers; feed() receives the welcome, checks the server's HMAC and its choice
 * of cipher, derives keys, opens the receiving stream from the server's header
 * and sends its own header; from then on feed() decrypts records and seal()
 * encrypts them. Server side: feed() receives the hello, checks its HMAC,
 * chooses the cipher, answers with the welcome and its stream header, and
 * opens once the client's header arrives.
 *
 * The cipher is AES-256-GCM through OpenSSL when both ends have AES-NI (about
 * 4 GB/s a core, against 1.1 GB/s for XChaCha20-Poly1305, which is kept for
 * CPUs without it). Most of what the channel carries is shards, already
 * AES-GCM sealed at rest by the codec; they are sealed again here because the
 * channel also carries everything else (metadata, Raft, tokens), and because
 * at-rest sealing does not authenticate the request around a shard (which
 * chunk, which shard index, put or delete): see docs/node.md.
 *
 * Possible failure modes, each final for the connection:
 * - bytes that are not a Cairn hello of this version (a port scanner, HTTP, a
 *   node from before version 2): CAIRN_EPROTO;
 * - a peer without the secret: its HMAC fails, CAIRN_EAUTH, before anything
 *   else of its is read;
 * - a hello that offers no cipher we accept, or a welcome that chooses one we
 *   did not offer: CAIRN_EPROTO;
 * - a record length over the limit: CAIRN_ETOOBIG, before it is buffered;
 * - a record that fails authentication (tampering, a replayed hello whose
 *   sender cannot derive the keys, a record replayed, dropped or reordered, a
 *   truncated stream spliced with other bytes): CAIRN_ECORRUPT;
 * - an XChaCha20 stream whose final tag arrives early: CAIRN_EPROTO.
 * Timeouts on a silent peer belong to the connection code, not here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "node_rpc.h"

#define HELLO_MAGIC      "CRNH"
#define HELLO_VERSION    2
#define HEADER_SIZE      NODE_STREAM_HEADER_SIZE
#define MAC_SIZE         crypto_auth_BYTES
#define KEY_SIZE         crypto_kx_PUBLICKEYBYTES
#define GCM_TAG_SIZE     16
#define GCM_IV_SIZE      12
#define XCHACHA_TAG_SIZE crypto_secretstream_xchacha20poly1305_ABYTES
#define CIPHERS_KNOWN    (NODE_CIPHER_XCHACHA20 | NODE_CIPHER_AES256GCM)

static_assert(NODE_HELLO_SIZE == 8 + KEY_SIZE + MAC_SIZE, "hello layout");
static_assert(NODE_WELCOME_SIZE == KEY_SIZE + 8 + MAC_SIZE + HEADER_SIZE, "welcome layout");
static_assert(HEADER_SIZE == crypto_secretstream_xchacha20poly1305_HEADERBYTES, "stream header");
static_assert(crypto_auth_KEYBYTES == NODE_SECRET_SIZE, "the secret keys the HMAC");
static_assert(NODE_RECORD_TAG_MAX >= GCM_TAG_SIZE, "the record limit fits both tags");
static_assert(NODE_RECORD_CIPHER_MAX <= UINT32_MAX, "a record length fits its u32");

unsigned node_channel_ciphers_local(void)
{
    CN_ASSERT(sodium_init() >= 0);
    return NODE_CIPHER_XCHACHA20 |
           (crypto_aead_aes256gcm_is_available() ? NODE_CIPHER_AES256GCM : 0);
}

static size_t tag_size(const struct node_channel *channel)
{
    return channel->cipher == NODE_CIPHER_AES256GCM ? GCM_TAG_SIZE : XCHACHA_TAG_SIZE;
}

/* HMAC over a one-letter role, the hello's head, the welcome's head (server
 * only) and up to two public keys. */
static void handshake_mac(const struct node_channel *channel,
                          char role,
                          const uint8_t *welcome_head,
                          const uint8_t *key_a,
                          const uint8_t *key_b,
                          uint8_t mac[MAC_SIZE])
{
    crypto_auth_hmacsha512256_state state;

    crypto_auth_hmacsha512256_init(&state, channel->secret, NODE_SECRET_SIZE);
    crypto_auth_hmacsha512256_update(&state, (const uint8_t *)&role, 1);
    crypto_auth_hmacsha512256_update(&state, channel->hello_head, sizeof(channel->hello_head));
    if (welcome_head != NULL) {
        crypto_auth_hmacsha512256_update(&state, welcome_head, 8);
    }
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

/* ---- AES-256-GCM streams ---- */

/* Keys one direction: BLAKE2b of the session key and that direction's header. */
static int aes_stream_init(struct node_channel_stream *stream,
                           const uint8_t key[KEY_SIZE],
                           const uint8_t header[HEADER_SIZE],
                           int encrypt)
{
    CN_ASSERT(stream->aes == NULL);
    crypto_generichash(stream->aes_key, sizeof(stream->aes_key), header, HEADER_SIZE, key,
                       KEY_SIZE);
    stream->aes = EVP_CIPHER_CTX_new();
    if (stream->aes == NULL) {
        return CAIRN_ENOMEM;
    }
    if (EVP_CipherInit_ex(stream->aes, EVP_aes_256_gcm(), NULL, stream->aes_key, NULL, encrypt) !=
        1) {
        return CAIRN_EINTERNAL;
    }
    stream->seq = 0;
    return 0;
}

/* Sets the next record's nonce (its number), replacing the key every
 * NODE_REKEY_RECORDS records, the same way on both ends. */
static void aes_stream_next(struct node_channel_stream *stream)
{
    uint8_t iv[GCM_IV_SIZE] = {0};

    CN_ASSERT(stream->aes != NULL);
    CN_ASSERT(stream->seq < UINT64_MAX);
    if (stream->seq > 0 && stream->seq % NODE_REKEY_RECORDS == 0) {
        uint8_t next[sizeof(stream->aes_key)];

        crypto_generichash(next, sizeof(next), stream->aes_key, sizeof(stream->aes_key), NULL, 0);
        memcpy(stream->aes_key, next, sizeof(next));
        sodium_memzero(next, sizeof(next));
        CN_ASSERT(EVP_CipherInit_ex(stream->aes, NULL, NULL, stream->aes_key, NULL, -1) == 1);
    }
    cn_put_u64(iv + 4, stream->seq);
    CN_ASSERT(EVP_CipherInit_ex(stream->aes, NULL, NULL, NULL, iv, -1) == 1);
    stream->seq++;
}

static void stream_close(struct node_channel_stream *stream)
{
    EVP_CIPHER_CTX_free(stream->aes); /* NULL is fine */
    stream->aes = NULL;
}

/* Opens the sending stream in the chosen cipher; its header goes to header. */
static int stream_init_push(struct node_channel *channel,
                            const uint8_t key[KEY_SIZE],
                            uint8_t header[HEADER_SIZE])
{
    if (channel->cipher == NODE_CIPHER_XCHACHA20) {
        crypto_secretstream_xchacha20poly1305_init_push(&channel->tx.xchacha, header, key);
        return 0;
    }
    randombytes_buf(header, HEADER_SIZE);
    return aes_stream_init(&channel->tx, key, header, 1);
}

/* Opens the receiving stream from the peer's header. */
static int stream_init_pull(struct node_channel *channel, const uint8_t header[HEADER_SIZE])
{
    if (channel->cipher == NODE_CIPHER_XCHACHA20) {
        if (crypto_secretstream_xchacha20poly1305_init_pull(&channel->rx.xchacha, header,
                                                            channel->rx_key) != 0) {
            return CAIRN_EPROTO;
        }
        return 0;
    }
    return aes_stream_init(&channel->rx, channel->rx_key, header, 0);
}

/* ---- Handshake ---- */

int node_channel_init_ciphers(struct node_channel *channel,
                              const uint8_t secret[NODE_SECRET_SIZE],
                              bool is_client,
                              unsigned ciphers,
                              struct cn_buf *out)
{
    uint8_t hello[NODE_HELLO_SIZE] = HELLO_MAGIC;

    CN_ASSERT(sodium_init() >= 0);
    CN_ASSERT(ciphers != 0);
    CN_ASSERT((ciphers & ~CIPHERS_KNOWN) == 0);
    memset(channel, 0, sizeof(*channel));
    channel->is_client = is_client;
    channel->ciphers = ciphers;
    memcpy(channel->secret, secret, NODE_SECRET_SIZE);
    crypto_kx_keypair(channel->public_key, channel->secret_key);
    cn_buf_init(&channel->in);
    if (!is_client) {
        channel->state = NODE_CHANNEL_HELLO;
        return 0;
    }
    hello[4] = HELLO_VERSION;
    hello[5] = (uint8_t)ciphers;
    memcpy(channel->hello_head, hello, sizeof(channel->hello_head));
    memcpy(hello + 8, channel->public_key, KEY_SIZE);
    handshake_mac(channel, 'c', NULL, channel->public_key, NULL, hello + 8 + KEY_SIZE);
    channel->state = NODE_CHANNEL_WELCOME;
    return cn_buf_append(out, hello, sizeof(hello));
}

int node_channel_init(struct node_channel *channel,
                      const uint8_t secret[NODE_SECRET_SIZE],
                      bool is_client,
                      struct cn_buf *out)
{
    return node_channel_init_ciphers(channel, secret, is_client, node_channel_ciphers_local(), out);
}

void node_channel_close(struct node_channel *channel)
{
    stream_close(&channel->tx);
    stream_close(&channel->rx);
    cn_buf_close(&channel->in);
    sodium_memzero(channel, sizeof(*channel));
}

/* The server's choice among what both ends accept: AES-256-GCM first. */
static unsigned choose_cipher(unsigned offered, unsigned accepted)
{
    unsigned both = offered & accepted;

    if ((both & NODE_CIPHER_AES256GCM) != 0) {
        return NODE_CIPHER_AES256GCM;
    }
    if ((both & NODE_CIPHER_XCHACHA20) != 0) {
        return NODE_CIPHER_XCHACHA20;
    }
    return 0;
}

/* Server: checks the hello and answers with the welcome. */
static int on_hello(struct node_channel *channel, const uint8_t *hello, struct cn_buf *out)
{
    uint8_t welcome[NODE_WELCOME_SIZE] = {0};
    uint8_t mac[MAC_SIZE];
    uint8_t tx_key[KEY_SIZE];
    int rv;

    if (memcmp(hello, HELLO_MAGIC, 4) != 0 || hello[4] != HELLO_VERSION) {
        return CAIRN_EPROTO;
    }
    memcpy(channel->hello_head, hello, sizeof(channel->hello_head));
    memcpy(channel->peer_key, hello + 8, KEY_SIZE);
    handshake_mac(channel, 'c', NULL, channel->peer_key, NULL, mac);
    if (sodium_memcmp(mac, hello + 8 + KEY_SIZE, MAC_SIZE) != 0) {
        return CAIRN_EAUTH;
    }
    channel->cipher = choose_cipher(hello[5], channel->ciphers);
    if (channel->cipher == 0) {
        return CAIRN_EPROTO;
    }
    if (crypto_kx_server_session_keys(channel->rx_key, tx_key, channel->public_key,
                                      channel->secret_key, channel->peer_key) != 0) {
        return CAIRN_EAUTH; /* a degenerate public key */
    }
    mix_secret(channel, channel->rx_key);
    mix_secret(channel, tx_key);
    memcpy(welcome, channel->public_key, KEY_SIZE);
    welcome[KEY_SIZE] = (uint8_t)channel->cipher;
    handshake_mac(channel, 's', welcome + KEY_SIZE, channel->peer_key, channel->public_key,
                  welcome + KEY_SIZE + 8);
    rv = stream_init_push(channel, tx_key, welcome + KEY_SIZE + 8 + MAC_SIZE);
    sodium_memzero(tx_key, sizeof(tx_key));
    if (rv != 0) {
        return rv;
    }
    channel->state = NODE_CHANNEL_HEADER;
    return cn_buf_append(out, welcome, sizeof(welcome));
}

/* Client: checks the welcome, opens both streams, sends its header. */
static int on_welcome(struct node_channel *channel, const uint8_t *welcome, struct cn_buf *out)
{
    uint8_t header[HEADER_SIZE];
    uint8_t mac[MAC_SIZE];
    uint8_t tx_key[KEY_SIZE];
    unsigned cipher;
    int rv;

    memcpy(channel->peer_key, welcome, KEY_SIZE);
    handshake_mac(channel, 's', welcome + KEY_SIZE, channel->public_key, channel->peer_key, mac);
    if (sodium_memcmp(mac, welcome + KEY_SIZE + 8, MAC_SIZE) != 0) {
        return CAIRN_EAUTH;
    }
    cipher = welcome[KEY_SIZE];
    if ((cipher & channel->ciphers) == 0 || choose_cipher(cipher, cipher) != cipher) {
        return CAIRN_EPROTO; /* not one we offered, or not a single cipher */
    }
    channel->cipher = cipher;
    if (crypto_kx_client_session_keys(channel->rx_key, tx_key, channel->public_key,
                                      channel->secret_key, channel->peer_key) != 0) {
        return CAIRN_EAUTH;
    }
    mix_secret(channel, channel->rx_key);
    mix_secret(channel, tx_key);
    rv = stream_init_pull(channel, welcome + KEY_SIZE + 8 + MAC_SIZE);
    if (rv == 0) {
        rv = stream_init_push(channel, tx_key, header);
    }
    sodium_memzero(tx_key, sizeof(tx_key));
    if (rv != 0) {
        return rv;
    }
    channel->state = NODE_CHANNEL_OPEN;
    return cn_buf_append(out, header, sizeof(header));
}

/* Server: the client's stream header opens the receiving stream. */
static int on_header(struct node_channel *channel, const uint8_t *header)
{
    int rv = stream_init_pull(channel, header);

    if (rv != 0) {
        return rv;
    }
    channel->state = NODE_CHANNEL_OPEN;
    return 0;
}

/* ---- Records ---- */

/* Decrypts one AES-256-GCM record body into plain (reserved), returning its
 * length; 0 if it fails authentication (plain->len is then unchanged). */
static size_t aes_open(struct node_channel *channel,
                       const uint8_t *record,
                       size_t cipher_len,
                       uint8_t *plain)
{
    EVP_CIPHER_CTX *ctx = channel->rx.aes;
    size_t plain_len = cipher_len - GCM_TAG_SIZE;
    int n;

    aes_stream_next(&channel->rx);
    if (EVP_DecryptUpdate(ctx, NULL, &n, record, 4) != 1 ||
        EVP_DecryptUpdate(ctx, plain, &n, record + 4, (int)plain_len) != 1) {
        return 0;
    }
    CN_ASSERT((size_t)n == plain_len); /* GCM is a stream mode: nothing held back */
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_SIZE,
                            (void *)(record + 4 + plain_len)) != 1 ||
        EVP_DecryptFinal_ex(ctx, plain + plain_len, &n) != 1) {
        return 0;
    }
    return plain_len;
}

/* Decrypts one whole record (length, ciphertext, tag) into plain. */
static int open_record(struct node_channel *channel,
                       const uint8_t *record,
                       size_t cipher_len,
                       struct cn_buf *plain)
{
    size_t plain_max = cipher_len - tag_size(channel);
    unsigned long long plain_len;
    uint8_t tag;
    int rv;

    rv = cn_buf_reserve(plain, plain_max);
    if (rv != 0) {
        return rv;
    }
    if (channel->cipher == NODE_CIPHER_AES256GCM) {
        if (aes_open(channel, record, cipher_len, plain->base + plain->len) != plain_max) {
            return CAIRN_ECORRUPT;
        }
        plain->len += plain_max;
        return 0;
    }
    if (crypto_secretstream_xchacha20poly1305_pull(&channel->rx.xchacha, plain->base + plain->len,
                                                   &plain_len, &tag, record + 4, cipher_len, record,
                                                   4) != 0) {
        return CAIRN_ECORRUPT;
    }
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
        return CAIRN_EPROTO;
    }
    CN_ASSERT(plain_len == plain_max);
    plain->len += (size_t)plain_len;
    return 0;
}

/* The size of the unit (handshake message or record) that starts at
 * bytes[0..len), or 0 while a record's length has not arrived. A record's
 * length is checked as soon as its 4 bytes are in, before it is buffered. */
static int unit_size(const struct node_channel *channel,
                     const uint8_t *bytes,
                     size_t len,
                     size_t *size)
{
    uint32_t cipher_len;

    switch (channel->state) {
    case NODE_CHANNEL_HELLO:
        *size = NODE_HELLO_SIZE;
        return 0;
    case NODE_CHANNEL_WELCOME:
        *size = NODE_WELCOME_SIZE;
        return 0;
    case NODE_CHANNEL_HEADER:
        *size = HEADER_SIZE;
        return 0;
    default:
        break;
    }
    CN_ASSERT(channel->state == NODE_CHANNEL_OPEN);
    *size = 0;
    if (len < 4) {
        return 0;
    }
    cipher_len = cn_get_u32(bytes);
    if (cipher_len > NODE_RECORD_CIPHER_MAX) {
        return CAIRN_ETOOBIG;
    }
    if (cipher_len <= tag_size(channel)) {
        return CAIRN_EPROTO; /* we never send an empty record */
    }
    *size = 4 + (size_t)cipher_len;
    return 0;
}

/* Runs one step on a whole unit. */
static int step(struct node_channel *channel,
                const uint8_t *unit,
                size_t size,
                struct cn_buf *out,
                struct cn_buf *plain)
{
    switch (channel->state) {
    case NODE_CHANNEL_HELLO:
        return on_hello(channel, unit, out);
    case NODE_CHANNEL_WELCOME:
        return on_welcome(channel, unit, out);
    case NODE_CHANNEL_HEADER:
        return on_header(channel, unit);
    default:
        return open_record(channel, unit, size - 4, plain);
    }
}

/* Tops up channel->in towards the unit it holds the start of, from
 * bytes[*taken..len) (advancing *taken). *size is then the unit's size, or 0
 * while a record's length is still incomplete. */
static int fill_unit(
    struct node_channel *channel, const uint8_t *bytes, size_t len, size_t *size, size_t *taken)
{
    int rv;

    for (;;) {
        size_t take;

        rv = unit_size(channel, channel->in.base, channel->in.len, size);
        if (rv != 0) {
            return rv;
        }
        take = CN_MIN(len - *taken, (*size == 0 ? 4 : *size) - channel->in.len);
        rv = cn_buf_append(&channel->in, bytes + *taken, take);
        if (rv != 0) {
            return rv;
        }
        *taken += take;
        if (*size != 0 || channel->in.len < 4) {
            return 0; /* a whole unit, or all the bytes there were */
        }
        /* The record's length just arrived: check it and take its body next. */
    }
}

int node_channel_feed(struct node_channel *channel,
                      const void *data,
                      size_t len,
                      struct cn_buf *out,
                      struct cn_buf *plain)
{
    const uint8_t *bytes = data;
    size_t taken = 0;
    int rv = 0;

    if (channel->state == NODE_CHANNEL_FAILED) {
        return CAIRN_EPROTO;
    }
    while (rv == 0 && (taken < len || channel->in.len > 0)) {
        const uint8_t *unit;
        size_t size;

        if (channel->in.len == 0) {
            /* Whole units straight from the caller's bytes: no copy. */
            rv = unit_size(channel, bytes + taken, len - taken, &size);
            if (rv != 0 || size == 0 || len - taken < size) {
                rv = rv != 0 ? rv : cn_buf_append(&channel->in, bytes + taken, len - taken);
                taken = len;
                break;
            }
            unit = bytes + taken;
            taken += size;
        } else {
            rv = fill_unit(channel, bytes, len, &size, &taken);
            if (rv != 0 || size == 0 || channel->in.len < size) {
                break;
            }
            unit = channel->in.base;
        }
        rv = step(channel, unit, size, out, plain);
        cn_buf_reset(&channel->in);
    }
    if (rv != 0) {
        channel->state = NODE_CHANNEL_FAILED;
    }
    return rv;
}

/* Walks the concatenation of parts. */
struct cursor {
    const struct iovec *parts;
    unsigned part_count;
    unsigned index;
    size_t offset; /* in parts[index] */
};

/* The next contiguous run of at most max bytes. */
static const uint8_t *cursor_take(struct cursor *cursor, size_t max, size_t *len)
{
    const struct iovec *part;

    while (cursor->parts[cursor->index].iov_len == cursor->offset) {
        cursor->index++;
        cursor->offset = 0;
        CN_ASSERT(cursor->index < cursor->part_count);
    }
    part = &cursor->parts[cursor->index];
    *len = CN_MIN(max, part->iov_len - cursor->offset);
    cursor->offset += *len;
    return (const uint8_t *)part->iov_base + cursor->offset - *len;
}

/* Seals piece bytes from cursor into record (its length already written). */
static void seal_record(struct node_channel *channel,
                        uint8_t *record,
                        size_t piece,
                        struct cursor *cursor)
{
    EVP_CIPHER_CTX *ctx = channel->tx.aes;
    size_t done = 0, len;
    int n;

    if (channel->cipher == NODE_CIPHER_XCHACHA20) {
        /* secretstream takes one message: gather it where its ciphertext
         * goes (after the encrypted tag byte) and seal it in place. */
        while (done < piece) {
            const uint8_t *run = cursor_take(cursor, piece - done, &len);

            memcpy(record + 5 + done, run, len);
            done += len;
        }
        crypto_secretstream_xchacha20poly1305_push(
            &channel->tx.xchacha, record + 4, NULL, record + 5, piece, record, 4,
            crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        return;
    }
    aes_stream_next(&channel->tx);
    CN_ASSERT(EVP_EncryptUpdate(ctx, NULL, &n, record, 4) == 1);
    while (done < piece) {
        const uint8_t *run = cursor_take(cursor, piece - done, &len);

        CN_ASSERT(EVP_EncryptUpdate(ctx, record + 4 + done, &n, run, (int)len) == 1);
        CN_ASSERT((size_t)n == len);
        done += len;
    }
    CN_ASSERT(EVP_EncryptFinal_ex(ctx, record + 4 + piece, &n) == 1);
    CN_ASSERT(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_SIZE, record + 4 + piece) ==
              1);
}

int node_channel_sealv(struct node_channel *channel,
                       const struct iovec *parts,
                       unsigned part_count,
                       struct cn_buf *out)
{
    struct cursor cursor = {parts, part_count, 0, 0};
    size_t total = 0, record_count;
    int rv;

    CN_ASSERT(node_channel_is_open(channel));
    for (unsigned i = 0; i < part_count; i++) {
        total += parts[i].iov_len;
    }
    record_count = (total + NODE_RECORD_PLAIN_MAX - 1) / NODE_RECORD_PLAIN_MAX;
    rv = cn_buf_reserve(out, total + record_count * (4 + tag_size(channel)));
    if (rv != 0) {
        return rv;
    }
    while (total > 0) {
        size_t piece = CN_MIN(total, NODE_RECORD_PLAIN_MAX);
        size_t cipher_len = piece + tag_size(channel);
        uint8_t *record = out->base + out->len;

        cn_put_u32(record, (uint32_t)cipher_len);
        seal_record(channel, record, piece, &cursor);
        out->len += 4 + cipher_len;
        total -= piece;
    }
    return 0;
}

int node_channel_seal(struct node_channel *channel,
                      const void *data,
                      size_t len,
                      struct cn_buf *out)
{
    struct iovec part = {(void *)data, len};

    return node_channel_sealv(channel, &part, 1, out);
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
