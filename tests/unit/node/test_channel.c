/*
 * The node channel: handshake and records between two in-memory ends, and
 * every way a peer can be wrong — no secret, the wrong protocol, a huge or
 * forged record, a replayed hello.
 */
#include <sys/stat.h>

#include "node_rpc.h"
#include "test.h"

struct fixture {
    uint8_t secret[NODE_SECRET_SIZE];
    struct node_channel client;
    struct node_channel server;
    struct cn_buf to_server; /* bytes in flight client -> server */
    struct cn_buf to_client;
    struct cn_buf client_plain;
    struct cn_buf server_plain;
};

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    randombytes_buf(f->secret, sizeof(f->secret));
    cn_buf_init(&f->to_server);
    cn_buf_init(&f->to_client);
    cn_buf_init(&f->client_plain);
    cn_buf_init(&f->server_plain);
    CN_ASSERT(node_channel_init(&f->client, f->secret, true, &f->to_server) == 0);
    CN_ASSERT(node_channel_init(&f->server, f->secret, false, &f->to_client) == 0);
    return f;
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

#define ASSERT_OPEN(f)                                   \
    do {                                                 \
        ASSERT_TRUE(node_channel_is_open(&(f)->client)); \
        ASSERT_TRUE(node_channel_is_open(&(f)->server)); \
    } while (0)

TEST(channel, handshake_and_records_both_ways, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_EQ(f->to_server.len, NODE_HELLO_SIZE);
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OPEN(f);
    ASSERT_OK(node_channel_seal(&f->client, "ping", 4, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->server, "pong!", 5, &f->to_client));
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_EQ(f->server_plain.len, 4);
    ASSERT_MEM_EQ(f->server_plain.base, "ping", 4);
    ASSERT_EQ(f->client_plain.len, 5);
    ASSERT_MEM_EQ(f->client_plain.base, "pong!", 5);
}

TEST(channel, byte_by_byte_delivery, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(pump(f, 1));
    ASSERT_OPEN(f);
    ASSERT_OK(node_channel_seal(&f->client, "abc", 3, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->client, "def", 3, &f->to_server));
    ASSERT_OK(pump(f, 1));
    ASSERT_EQ(f->server_plain.len, 6);
    ASSERT_MEM_EQ(f->server_plain.base, "abcdef", 6);
}

TEST(channel, large_payload_spans_records, setup, teardown)
{
    struct fixture *f = data;
    size_t size = 3 * NODE_RECORD_PLAIN_MAX + 17;
    uint8_t *payload = cn_xmalloc(size);
    struct cn_rand rand;

    cn_rand_seed(&rand, cn_test_seed());
    cn_rand_fill(&rand, payload, size);
    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, payload, size, &f->to_server));
    /* 4 records, each with its length and tag: no record over the limit. */
    ASSERT_EQ(f->to_server.len, size + 4 * (4 + crypto_secretstream_xchacha20poly1305_ABYTES));
    ASSERT_OK(pump(f, 1000));
    ASSERT_EQ(f->server_plain.len, size);
    ASSERT_MEM_EQ(f->server_plain.base, payload, size);
    free(payload);
}

TEST(channel, peer_without_secret_is_refused_at_hello, setup, teardown)
{
    struct fixture *f = data;
    struct node_channel stranger;
    struct cn_buf hello;
    uint8_t other[NODE_SECRET_SIZE];

    randombytes_buf(other, sizeof(other));
    cn_buf_init(&hello);
    ASSERT_OK(node_channel_init(&stranger, other, true, &hello));
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

TEST(channel, server_without_secret_is_refused_by_client, setup, teardown)
{
    struct fixture *f = data;

    /* The real server answers; flip a bit in its HMAC as an impostor would get it wrong. */
    ASSERT_OK(node_channel_feed(&f->server, f->to_server.base, f->to_server.len, &f->to_client,
                                &f->server_plain));
    ASSERT_EQ(f->to_client.len, NODE_WELCOME_SIZE);
    f->to_client.base[40] ^= 1;
    ASSERT_ERR(node_channel_feed(&f->client, f->to_client.base, f->to_client.len, &f->to_server,
                                 &f->client_plain),
               CAIRN_EAUTH);
}

TEST(channel, foreign_protocol_is_refused, setup, teardown)
{
    struct fixture *f = data;
    const char *http = "GET / HTTP/1.1\r\nHost: node\r\nUser-Agent: scanner\r\n"
                       "Accept: */*\r\nX-Padding: 0123456789\r\n\r\n";

    ASSERT_CMP(strlen(http), >=, NODE_HELLO_SIZE);
    ASSERT_ERR(node_channel_feed(&f->server, http, strlen(http), &f->to_client, &f->server_plain),
               CAIRN_EPROTO);
}

TEST(channel, huge_record_refused_before_buffering, setup, teardown)
{
    struct fixture *f = data;
    uint8_t length[4];

    ASSERT_OK(pump(f, 1 << 20));
    cn_put_u32(length, UINT32_MAX);
    ASSERT_ERR(node_channel_feed(&f->server, length, 4, &f->to_client, &f->server_plain),
               CAIRN_ETOOBIG);
    ASSERT_CMP(f->server.in.cap, <, 1024); /* no room was made for it */
}

TEST(channel, forged_record_is_refused, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, "transfer", 8, &f->to_server));
    f->to_server.base[7] ^= 0x20;
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_ECORRUPT);
    ASSERT_EQ(f->server_plain.len, 0);
}

TEST(channel, tampered_length_is_refused, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_OK(pump(f, 1 << 20));
    ASSERT_OK(node_channel_seal(&f->client, "abcd", 4, &f->to_server));
    ASSERT_OK(node_channel_seal(&f->client, "efgh", 4, &f->to_server));
    /* Shorten the first record by one byte: it fails authentication. */
    f->to_server.base[0] -= 1;
    ASSERT_ERR(pump(f, 1 << 20), CAIRN_ECORRUPT);
    ASSERT_EQ(f->server_plain.len, 0);
}

/* Runs a whole session from a fresh client to a fresh server with the secret,
 * returning every byte the client sent: hello, stream header, one record. */
static void record_session(const uint8_t *secret, struct cn_buf *sent)
{
    struct node_channel client, server;
    struct cn_buf to_server, to_client, plain;

    cn_buf_init(&to_server);
    cn_buf_init(&to_client);
    cn_buf_init(&plain);
    CN_ASSERT(node_channel_init(&client, secret, true, &to_server) == 0);
    CN_ASSERT(node_channel_init(&server, secret, false, &to_client) == 0);
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

TEST(channel, replayed_session_is_refused, setup, teardown)
{
    struct fixture *f = data;
    struct node_channel victim;
    struct cn_buf recorded, answer, plain;

    cn_buf_init(&recorded);
    cn_buf_init(&answer);
    cn_buf_init(&plain);
    record_session(f->secret, &recorded);
    /* Replay it to a fresh server holding the same secret: the hello passes
     * (it is genuine), but the replayer cannot derive the new session's keys,
     * so its first record is refused and nothing reaches the application. */
    ASSERT_OK(node_channel_init(&victim, f->secret, false, &answer));
    ASSERT_ERR(node_channel_feed(&victim, recorded.base, recorded.len, &answer, &plain),
               CAIRN_ECORRUPT);
    ASSERT_EQ(plain.len, 0);
    node_channel_close(&victim);
    cn_buf_close(&answer);
    cn_buf_close(&plain);
    cn_buf_close(&recorded);
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
