/* libcairn's calls where no server is needed: endpoint and token checks,
 * bad paths refused before any byte is sent, a closed port reported as
 * CAIRN_EUNAVAIL, and upload URLs that are not the endpoint's refused. */
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cl_int.h"
#include "test.h"

/* A loopback port with nothing listening: bind, read it back, close. */
static unsigned closed_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ASSERT_TRUE(fd >= 0);
    ASSERT_EQ(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    ASSERT_EQ(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

TEST(sdk, client_new_checks_its_inputs, NULL, NULL)
{
    struct cairn_client *client = NULL;
    char token[CAIRN_TOKEN_SIZE + 1];

    ASSERT_ERR(cairn_client_new("ftp://h", NULL, &client), CAIRN_EINVAL);
    ASSERT_ERR(cairn_client_new("127.0.0.1:80", NULL, &client), CAIRN_EINVAL);
    ASSERT_ERR(cairn_client_new(NULL, NULL, &client), CAIRN_EINVAL);
    memset(token, 't', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    ASSERT_ERR(cairn_client_new("http://h", token, &client), CAIRN_EINVAL);
    ASSERT_OK(cairn_client_new("http://h:1///", "tok", &client));
    ASSERT_STR_EQ(client->endpoint, "http://h:1");
    ASSERT_ERR(cairn_client_set_token(client, "a\r\nX-Evil: 1"), CAIRN_EINVAL);
    ASSERT_OK(cairn_client_set_token(client, NULL));
    ASSERT_STR_EQ(client->token, "");
    cairn_client_free(client);
    cairn_client_free(NULL);
}

TEST(sdk, closed_port_is_unavailable, NULL, NULL)
{
    struct cairn_client *client;
    struct cairn_entry entry;
    char endpoint[64];

    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%u", closed_port());
    ASSERT_OK(cairn_client_new(endpoint, "tok", &client));
    ASSERT_ERR(cairn_stat(client, "a.txt", &entry), CAIRN_EUNAVAIL);
    ASSERT_EQ(cairn_client_status(client), 0);
    ASSERT_TRUE(strstr(cairn_client_errmsg(client), endpoint) != NULL);
    ASSERT_EQ(cl_exit_code(CAIRN_EUNAVAIL), CL_EXIT_UNAVAILABLE);
    cairn_client_free(client);
}

TEST(sdk, bad_input_refused_before_sending, NULL, NULL)
{
    struct cairn_client *client;
    struct cairn_entry entry;
    char url[CAIRN_URL_SIZE];
    uint64_t offset;

    /* Port 9 (discard) is never contacted: every call fails on its input. */
    ASSERT_OK(cairn_client_new("http://127.0.0.1:9", "tok", &client));
    ASSERT_ERR(cairn_stat(client, "a/../b", &entry), CAIRN_EINVAL);
    ASSERT_TRUE(strstr(cairn_client_errmsg(client), "bad path") != NULL);
    ASSERT_ERR(cairn_move(client, "a", "b/./c", &entry), CAIRN_EINVAL);
    ASSERT_ERR(cairn_trash_restore(client, "../admin", &entry), CAIRN_EINVAL);
    ASSERT_ERR(cairn_trash_purge(client, "1/restore"), CAIRN_EINVAL);
    ASSERT_ERR(cairn_upload_create(client, "/", 10, 0, url), CAIRN_EINVAL);
    /* A recorded upload URL must belong to this endpoint's /v1/uploads/. */
    ASSERT_ERR(cairn_upload_offset(client, "http://evil/v1/uploads/ab", &offset), CAIRN_EINVAL);
    ASSERT_ERR(cairn_upload_offset(client, "http://127.0.0.1:9/v1/files/x", &offset), CAIRN_EINVAL);
    ASSERT_ERR(cairn_upload_abort(client, "http://127.0.0.1:9/v1/uploads/a\r\nX: y"), CAIRN_EINVAL);
    cairn_client_free(client);
}

TEST(sdk, entry_json, NULL, NULL)
{
    struct cairn_client *client;
    struct cairn_entry e;
    const char *file =
        "{\"name\":\"a b.txt\",\"path\":\"Docs/a b.txt\",\"id\":\"17231651639204035355\","
        "\"kind\":\"file\",\"size\":6,\"version\":3,\"etag\":\"\\\"ef-3\\\"\","
        "\"modified_ms\":1795527283000,\"trashed\":false}";
    const char *folder = "{\"name\":\"Docs\",\"path\":\"Docs\",\"id\":42,\"kind\":\"folder\","
                         "\"size\":0,\"version\":null,\"etag\":null,\"trashed\":true}";

    ASSERT_OK(cairn_client_new("http://127.0.0.1:9", NULL, &client));
    ASSERT_OK(cl_entry_parse(client, file, strlen(file), &e));
    ASSERT_STR_EQ(e.name, "a b.txt");
    ASSERT_STR_EQ(e.path, "Docs/a b.txt");
    ASSERT_STR_EQ(e.id, "17231651639204035355"); /* over 2^63: kept as text */
    ASSERT_FALSE(e.folder);
    ASSERT_EQ(e.size, 6);
    ASSERT_EQ(e.version, 3);
    ASSERT_STR_EQ(e.etag, "\"ef-3\"");
    ASSERT_TRUE(e.modified_ms == 1795527283000ull);
    ASSERT_FALSE(e.trashed);
    /* An integer id, a null version and etag: a folder. */
    ASSERT_OK(cl_entry_parse(client, folder, strlen(folder), &e));
    ASSERT_STR_EQ(e.id, "42");
    ASSERT_TRUE(e.folder);
    ASSERT_TRUE(e.trashed);
    ASSERT_EQ(e.version, 0);
    ASSERT_STR_EQ(e.etag, "");
    cairn_client_free(client);
}

TEST(sdk, entry_json_refused, NULL, NULL)
{
    static const char *bad[] = {
        "",
        "[]",
        "not json",
        "{\"kind\":\"file\"}",            /* no name */
        "{\"name\":\"x\"}",               /* no kind */
        "{\"name\":7,\"kind\":\"file\"}", /* name not a string */
    };
    struct cairn_client *client;
    struct cairn_entry e;

    ASSERT_OK(cairn_client_new("http://127.0.0.1:9", NULL, &client));
    for (size_t i = 0; i < CN_ARRAY_SIZE(bad); i++) {
        ASSERT_ERR(cl_entry_parse(client, bad[i], strlen(bad[i]), &e), CAIRN_EPROTO);
        ASSERT_TRUE(strstr(cairn_client_errmsg(client), "entry") != NULL);
    }
    /* Over-long strings are cut to their fields, never overrun. */
    {
        char text[1024];
        char name[600];

        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        snprintf(text, sizeof(text), "{\"name\":\"%s\",\"kind\":\"file\"}", name);
        ASSERT_OK(cl_entry_parse(client, text, strlen(text), &e));
        ASSERT_EQ(strlen(e.name), CAIRN_NAME_SIZE - 1);
    }
    cairn_client_free(client);
}
