/*
 * The node channel: handshake and records between two in-memory ends, with
 * each record cipher (AES-256-GCM, XChaCha20-Poly1305), and every way a peer
 * can be wrong — no secret, the wrong protocol or version, no common cipher,
 * a downgrade, a huge, forged, reordered or replayed record, a replayed hello.
 */
#include <sys/stat.h>

#include "node_rpc.h"
#include "test.h"

struct fixture {
    uint8_t secret[NODE_SECRET_SIZE];
    unsigned cipher; /* both ends offer and accept only this one */
    struct node_channel client;
    struct node_channel server;
    struct cn_buf to_server; /* bytes in flight client -> server */
    struct cn_buf to_client;
    struct cn_buf client_plain;
    struct cn_buf server_plain;
};

static struct fixture *setup_with(unsigned client_ciphers, unsigned server_ciphers)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    randombytes_buf(f->secret, sizeof(f->secret));
    f->cipher = client_ciphers & server_ciphers;
    cn_buf_init(&f->to_server);
    cn_buf_init(&f->to_client);
    cn_buf_init(&f->client_plain);
    cn_buf_init(&f->server_plain);
    CN_ASSERT(
        node_channel_init_ciphers(&f->client, f->secret, true, client_ciphers, &f->to_server) == 0);
    CN_ASSERT(node_channel_init_ciphers(&f->server, f->secret, false, server_ciphers,
                                        &f->to_client) == 0);
    return f;
}

static void *setup_aes(void)
{
    return setup_with(NODE_CIPHER_AES256GCM, NODE_CIPHER_AES256GCM);
}

static void *setup_xchacha(void)
{
    return setup_with(NODE_CIPHER_XCHACHA20, NODE_CIPHER_XCHACHA20);
}

static void teardown(void *data)
{
    struct fixture *f = data;

    node_channel_close(&f->client);
    node_channel_close(&f->server);
    cn_buf_close(&f->to_server);
    cn_buf_close(&f->to_client);
    cn_buf_close(&f->client_plain);
    cn_buf_close(&f->server_plain);
    free(f);
}

/* Delivers what is in flight each way, piece bytes at a time, until quiet. */
static int pump(struct fixture *f, size_t piece)
{
    while (f->to_server.len > 0 || f->to_client.len > 0) {
        struct cn_buf in_server = f->to_server, in_client = f->to_client;
        int rv;

        cn_buf_init(&f->to_server);
        cn_buf_init(&f->to_client);
        for (size_t off = 0; off < in_server.len; off += piece) {
            rv = node_channel_feed(&f->server, in_server.base + off,
                                   CN_MIN(piece, in_server.len - off), &f->to_client,
                                   &f->server_plain);
            if (rv != 0) {
                cn_buf_close(&in_server);
                cn_buf_close(&in_client);
                return rv;
            }
        }
        for (size_t off = 0; off < in_client.len; off += piece) {
            rv = node_channel_feed(&f->client, in_client.base + off,
                                   CN_MIN(piece, in_client.len - off), &f->to_server,
                                   &f->client_plain);
            if (rv != 0) {
                cn_buf_close(&in_server);
                cn_buf_close(&in_client);
                return rv;
            }
        }
        cn_buf_close(&in_server);
        cn_buf_close(&in_client);
    }
    return 0;
}

static size_t tag_size(unsigned cipher)
{
    return cipher == NODE_CIPHER_AES256GCM ? 16 : crypto_secretstream_xchacha20poly1305_ABYTES;
}

#define ASSERT_OPEN(f)                                     \
    do {                                                   \
        ASSERT_TRUE(node_channel_is_open(&(f)->client));   \
        ASSERT_TRUE(node_channel_is_open(&(f)->server));   \
        ASSERT_EQ((f)->client.cipher, (f)->server.cipher); \
    } while (0)

/* One test body, run once with each cipher (suites channel_aes and channel_xchacha). */
#define CIPHER_TEST(name)                                \
    static void body_##name(struct fixture *f);          \
    TEST(channel_aes, name, setup_aes, teardown)         \
    {                                                    \
        body_##name(data);                               \
    }                                                    \
    TEST(channel_xchacha, name, setup_xchacha, teardown) \
    {                                                    \
        body_##name(data);                               \
    }                                                    \
    static void body_##name(struct fixture *f)

CIPHER_TEST(handshake_and_records_both_ways)
{
    ASSERT_EQ(f->to_server.len, NODE_HELLO_SIZE);
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OPEN(f);
    ASSERT_EQ(f->client.cipher, f->cipher);
    ASSERT_OK(node_channel_seal(&f->client, "ping", 4, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->server, "pong!", 5, &f->to_client));
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_EQ(f->server_plain.len, 4);
    ASSERT_MEM_EQ(f->server_plain.base, "ping", 4);
    ASSERT_EQ(f->client_plain.len, 5);
    ASSERT_MEM_EQ(f->client_plain.base, "pong!", 5);
}

CIPHER_TEST(byte_by_byte_delivery)
{
    ASSERT_OK(pump(f, 1));
    ASSERT_OPEN(f);
    ASSERT_OK(node_channel_seal(&f->client, "abc", 3, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->client, "def", 3, &f->to_server));
    ASSERT_OK(pump(f, 1));
    ASSERT_EQ(f->server_plain.len, 6);
    ASSERT_MEM_EQ(f->server_plain.base, "abcdef", 6);
}

CIPHER_TEST(large_payload_spans_records)
{
    size_t size = 3 * NODE_RECORD_PLAIN_MAX + 17;
    uint8_t *payload = cn_xmalloc(size);
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    cn_rand_fill(&rand, payload, size);
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, payload, size, &f->to_server));
    /* 4 records, each with its length and tag: no record over the limit. */
    ASSERT_EQ(f->to_server.len, size + 4 * (4 + tag_size(f->cipher)));
    ASSERT_OK(pump(f, 1000)); /* records split across feeds */
    ASSERT_EQ(f->server_plain.len, size);
    ASSERT_MEM_EQ(f->server_plain.base, payload, size);
    cn_buf_reset(&f->server_plain);
    ASSERT_OK(node_channel_seal(&f->client, payload, size, &f->to_server));
    ASSERT_OK(pump(f, 1 << 20)); /* whole records in one feed: opened where they lie */
    ASSERT_EQ(f->server_plain.len, size);
    ASSERT_MEM_EQ(f->server_plain.base, payload, size);
    free(payload);
}

CIPHER_TEST(gathered_parts_seal_as_their_concatenation)
{
    size_t size = 2 * NODE_RECORD_PLAIN_MAX + 100;
    uint8_t *payload = cn_xmalloc(size);
    struct iovec parts[4];
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    cn_rand_fill(&rand, payload, size);
    /* Parts that straddle record edges, and an empty one. */
    parts[0] = (struct iovec){payload, 24};
    parts[1] = (struct iovec){payload + 24, 0};
    parts[2] = (struct iovec){payload + 24, NODE_RECORD_PLAIN_MAX + 3};
    parts[3] =
        (struct iovec){payload + 27 + NODE_RECORD_PLAIN_MAX, size - 27 - NODE_RECORD_PLAIN_MAX};
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_sealv(&f->client, parts, 4, &f->to_server));
    ASSERT_EQ(f->to_server.len, size + 3 * (4 + tag_size(f->cipher)));
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_EQ(f->server_plain.len, size);
    ASSERT_MEM_EQ(f->server_plain.base, payload, size);
    free(payload);
}

CIPHER_TEST(peer_without_secret_is_refused_at_hello)
{
    struct node_channel stranger;
    struct cn_buf hello;
    uint8_t other[NODE_SECRET_SIZE];

    randombytes_buf(other, sizeof(other));
    cn_buf_init(&hello);
    ASSERT_OK(node_channel_init_ciphers(&stranger, other, true, f->cipher, &hello));
    ASSERT_ERR(
        node_channel_feed(&f->server, hello.base, hello.len, &f->to_client, &f->server_plain),
        CAIRN_EAUTH);
    ASSERT_EQ(f->to_client.len, 0); /* nothing answered */
    ASSERT_EQ(f->server.state, NODE_CHANNEL_FAILED);
    /* A failed channel takes nothing more. */
    ASSERT_ERR(node_channel_feed(&f->server, "x", 1, &f->to_client, &f->server_plain),
               CAIRN_EPROTO);
    node_channel_close(&stranger);
    cn_buf_close(&hello);
}

CIPHER_TEST(server_without_secret_is_refused_by_client)
{
    /* The real server answers; flip a bit in its HMAC as an impostor would get it wrong. */
    ASSERT_OK(node_channel_feed(&f->server, f->to_server.base, f->to_server.len, &f->to_client,
                                &f->server_plain));
    ASSERT_EQ(f->to_client.len, NODE_WELCOME_SIZE);
    f->to_client.base[40] ^= 1;
    ASSERT_ERR(node_channel_feed(&f->client, f->to_client.base, f->to_client.len, &f->to_server,
                                 &f->client_plain),
               CAIRN_EAUTH);
}

CIPHER_TEST(huge_record_refused_before_buffering)
{
    uint8_t length[4];

    ASSERT_OK(pump(f, 1 << 20));
    cn_put_u32(length, UINT32_MAX);
    ASSERT_ERR(node_channel_feed(&f->server, length, 4, &f->to_client, &f->server_plain),
               CAIRN_ETOOBIG);
    ASSERT_CMP(f->server.in.cap, <, 1024); /* no room was made for it */
}

CIPHER_TEST(forged_record_is_refused)
{
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, "transfer", 8, &f->to_server));
    f->to_server.base[7] ^= 0x20;
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_ECORRUPT);
    ASSERT_EQ(f->server_plain.len, 0);
}

CIPHER_TEST(tampered_tag_is_refused)
{
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, "transfer", 8, &f->to_server));
    f->to_server.base[f->to_server.len - 1] ^= 0x01;
    ASSERT_ERR(pump(f, 1), CAIRN_ECORRUPT);
    ASSERT_EQ(f->server_plain.len, 0);
}

CIPHER_TEST(tampered_length_is_refused)
{
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, "abcd", 4, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->client, "efgh", 4, &f->to_server));
    /* Shorten the first record by one byte: it fails authentication. */
    f->to_server.base[0] -= 1;
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_ECORRUPT);
    ASSERT_EQ(f->server_plain.len, 0);
}

CIPHER_TEST(reordered_record_is_refused)
{
    struct cn_buf first;
    size_t record_size = 4 + 4 + tag_size(f->cipher);

    ASSERT_OK(pump(f, 1 << 20));
    cn_buf_init(&first);
    ASSERT_OK(node_channel_seal(&f->client, "one!", 4, &first));
    ASSERT_OK(node_channel_seal(&f->client, "two!", 4, &f->to_server));
    ASSERT_EQ(first.len, record_size);
    /* The second record arrives first: it is refused. */
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_ECORRUPT);
    ASSERT_EQ(f->server_plain.len, 0);
    cn_buf_close(&first);
}

CIPHER_TEST(replayed_record_is_refused)
{
    struct cn_buf copy;

    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, "pay 10", 6, &f->to_server));
    cn_buf_init(&copy);
    ASSERT_OK(cn_buf_append(&copy, f->to_server.base, f->to_server.len));
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_EQ(f->server_plain.len, 6);
    ASSERT_OK(cn_buf_append(&f->to_server, copy.base, copy.len));
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_ECORRUPT);
    ASSERT_EQ(f->server_plain.len, 6);
    cn_buf_close(&copy);
}

/* Runs a whole session from a fresh client to a fresh server with the secret,
 * returning every byte the client sent: hello, stream header, one record. */
static void record_session(const uint8_t *secret, unsigned cipher, struct cn_buf *sent)
{
    struct node_channel client, server;
    struct cn_buf to_server, to_client, plain;

    cn_buf_init(&to_server);
    cn_buf_init(&to_client);
    cn_buf_init(&plain);
    CN_ASSERT(node_channel_init_ciphers(&client, secret, true, cipher, &to_server) == 0);
    CN_ASSERT(node_channel_init_ciphers(&server, secret, false, cipher, &to_client) == 0);
    cn_buf_append(sent, to_server.base, to_server.len);
    CN_ASSERT(node_channel_feed(&server, to_server.base, to_server.len, &to_client, &plain) == 0);
    cn_buf_reset(&to_server);
    CN_ASSERT(node_channel_feed(&client, to_client.base, to_client.len, &to_server, &plain) == 0);
    CN_ASSERT(node_channel_seal(&client, "delete everything", 17, &to_server) == 0);
    cn_buf_append(sent, to_server.base, to_server.len);
    node_channel_close(&client);
    node_channel_close(&server);
    cn_buf_close(&to_server);
    cn_buf_close(&to_client);
    cn_buf_close(&plain);
}

CIPHER_TEST(replayed_session_is_refused)
{
    struct node_channel victim;
    struct cn_buf recorded, answer, plain;

    cn_buf_init(&recorded);
    cn_buf_init(&answer);
    cn_buf_init(&plain);
    record_session(f->secret, f->cipher, &recorded);
    /* Replay it to a fresh server holding the same secret: the hello passes
     * (it is genuine), but the replayer cannot derive the new session's keys,
     * so its first record is refused and nothing reaches the application. */
    ASSERT_OK(node_channel_init_ciphers(&victim, f->secret, false, f->cipher, &answer));
    ASSERT_ERR(node_channel_feed(&victim, recorded.base, recorded.len, &answer, &plain),
               CAIRN_ECORRUPT);
    ASSERT_EQ(plain.len, 0);
    node_channel_close(&victim);
    cn_buf_close(&answer);
    cn_buf_close(&plain);
    cn_buf_close(&recorded);
}

TEST(channel, foreign_protocol_is_refused, setup_aes, teardown)
{
    struct fixture *f = data;
    const char *http = "GET / HTTP/1.1\r\nHost: node\r\nUser-Agent: scanner\r\n"
                       "Accept: */*\r\nX-Padding: 0123456789\r\n\r\n";

    ASSERT_CMP(strlen(http), >=, NODE_HELLO_SIZE);
    ASSERT_ERR(node_channel_feed(&f->server, http, strlen(http), &f->to_client, &f->server_plain),
               CAIRN_EPROTO);
}

TEST(channel, version_1_hello_is_refused, setup_aes, teardown)
{
    struct fixture *f = data;

    f->to_server.base[4] = 1;
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_EPROTO);
    ASSERT_EQ(f->to_client.len, 0);
}

TEST(channel, default_is_aes_gcm_with_aes_ni, NULL, NULL)
{
    uint8_t secret[NODE_SECRET_SIZE] = {7};
    struct node_channel client, server;
    struct cn_buf to_server, to_client, plain;
    unsigned local = node_channel_ciphers_local();

    ASSERT_TRUE((local & NODE_CIPHER_XCHACHA20) != 0);
    cn_buf_init(&to_server);
    cn_buf_init(&to_client);
    cn_buf_init(&plain);
    ASSERT_OK(node_channel_init(&client, secret, true, &to_server));
    ASSERT_OK(node_channel_init(&server, secret, false, &to_client));
    ASSERT_OK(node_channel_feed(&server, to_server.base, to_server.len, &to_client, &plain));
    cn_buf_reset(&to_server);
    ASSERT_OK(node_channel_feed(&client, to_client.base, to_client.len, &to_server, &plain));
    ASSERT_OK(node_channel_feed(&server, to_server.base, to_server.len, &to_client, &plain));
    ASSERT_TRUE(node_channel_is_open(&client));
    ASSERT_TRUE(node_channel_is_open(&server));
    ASSERT_EQ(server.cipher,
              (local & NODE_CIPHER_AES256GCM) != 0 ? NODE_CIPHER_AES256GCM : NODE_CIPHER_XCHACHA20);
    node_channel_close(&client);
    node_channel_close(&server);
    cn_buf_close(&to_server);
    cn_buf_close(&to_client);
    cn_buf_close(&plain);
}

static void *setup_both_to_xchacha(void)
{
    return setup_with(NODE_CIPHER_AES256GCM | NODE_CIPHER_XCHACHA20, NODE_CIPHER_XCHACHA20);
}

TEST(channel, server_without_aes_ni_chooses_xchacha, setup_both_to_xchacha, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OPEN(f);
    ASSERT_EQ(f->server.cipher, NODE_CIPHER_XCHACHA20);
    ASSERT_OK(node_channel_seal(&f->client, "slow", 4, &f->to_server));
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_MEM_EQ(f->server_plain.base, "slow", 4);
}

static void *setup_no_common_cipher(void)
{
    return setup_with(NODE_CIPHER_AES256GCM, NODE_CIPHER_XCHACHA20);
}

TEST(channel, no_common_cipher_is_refused, setup_no_common_cipher, teardown)
{
    struct fixture *f = data;

    ASSERT_ERR(pump(f, 1 << 20), CAIRN_EPROTO);
    ASSERT_EQ(f->to_client.len, 0);
}

static void *setup_offer_both(void)
{
    return setup_with(NODE_CIPHER_AES256GCM | NODE_CIPHER_XCHACHA20,
                      NODE_CIPHER_AES256GCM | NODE_CIPHER_XCHACHA20);
}

TEST(channel, downgraded_offer_is_refused, setup_offer_both, teardown)
{
    struct fixture *f = data;

    /* A man in the middle strikes AES from the hello's offer: the HMAC fails. */
    f->to_server.base[5] = NODE_CIPHER_XCHACHA20;
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_EAUTH);
}

TEST(channel, switched_choice_is_refused, setup_offer_both, teardown)
{
    struct fixture *f = data;

    /* ...or switches the server's choice in the welcome: the client refuses it. */
    ASSERT_OK(node_channel_feed(&f->server, f->to_server.base, f->to_server.len, &f->to_client,
                                &f->server_plain));
    ASSERT_EQ(f->to_client.base[32], NODE_CIPHER_AES256GCM);
    f->to_client.base[32] = NODE_CIPHER_XCHACHA20;
    ASSERT_ERR(node_channel_feed(&f->client, f->to_client.base, f->to_client.len, &f->to_server,
                                 &f->client_plain),
               CAIRN_EAUTH);
}

TEST(channel, aes_keys_are_replaced_in_step, setup_aes, teardown)
{
    struct fixture *f = data;
    uint8_t key[32];

    ASSERT_OK(pump(f, 1 << 20));
    /* Jump both ends to just before the rekey point (as if 2^20 - 1 records
     * had gone by): the records on either side of it still open. */
    f->client.tx.seq = NODE_REKEY_RECORDS - 1;
    f->server.rx.seq = NODE_REKEY_RECORDS - 1;
    memcpy(key, f->client.tx.aes_key, sizeof(key));
    ASSERT_OK(node_channel_seal(&f->client, "before", 6, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->client, "after", 5, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->client, "again", 5, &f->to_server));
    ASSERT_TRUE(memcmp(key, f->client.tx.aes_key, sizeof(key)) != 0);
    ASSERT_OK(pump(f, 7));
    ASSERT_EQ(f->server_plain.len, 16);
    ASSERT_MEM_EQ(f->server_plain.base, "beforeafteragain", 16);
    ASSERT_MEM_EQ(f->client.tx.aes_key, f->server.rx.aes_key, sizeof(key));
}

TEST(secret, create_load_and_permissions, NULL, NULL)
{
    char *dir = cn_test_tmpdir();
    char path[4200];
    char errmsg[CN_ERRMSG_SIZE];
    uint8_t created[NODE_SECRET_SIZE], loaded[NODE_SECRET_SIZE];
    FILE *file;

    snprintf(path, sizeof(path), "%s/secret", dir);
    ASSERT_OK(node_secret_create(path, created, errmsg));
    ASSERT_ERR(node_secret_create(path, created, errmsg), CAIRN_EEXIST);
    ASSERT_OK(node_secret_load(path, loaded, errmsg));
    ASSERT_MEM_EQ(created, loaded, sizeof(created));
    chmod(path, 0640);
    ASSERT_ERR(node_secret_load(path, loaded, errmsg), CAIRN_EPERM);
    ASSERT_TRUE(strstr(errmsg, "chmod 600") != NULL);
    chmod(path, 0600);
    file = fopen(path, "w");
    fputs("not hex at all, but the right length, more or less, padding......\n", file);
    fclose(file);
    ASSERT_ERR(node_secret_load(path, loaded, errmsg), CAIRN_EINVAL);
    snprintf(path, sizeof(path), "%s/absent", dir);
    ASSERT_ERR(node_secret_load(path, loaded, errmsg), CAIRN_ENOENT);
    cn_test_rmdir(dir);
    free(dir);
}
