/* URL helpers: percent-decoding and query lookup, including the inputs a
 * path check must never see (encoded NUL, truncated escapes). */
#include "gw_int.h"
#include "test.h"

static int decode(const char *text, bool plus_is_space, char *out, size_t out_size)
{
    return gw_url_decode(text, strlen(text), plus_is_space, out, out_size);
}

TEST(url, decode, NULL, NULL)
{
    char out[64];

    ASSERT_OK(decode("/v1/files/a%20b%2Fc", false, out, sizeof(out)));
    ASSERT_STR_EQ(out, "/v1/files/a b/c");
    ASSERT_OK(decode("a+b", false, out, sizeof(out)));
    ASSERT_STR_EQ(out, "a+b");
    ASSERT_OK(decode("a+b%2b", true, out, sizeof(out)));
    ASSERT_STR_EQ(out, "a b+");
    ASSERT_OK(decode("%C3%A9t%c3%a9", false, out, sizeof(out)));
    ASSERT_STR_EQ(out, "\xc3\xa9t\xc3\xa9");
    ASSERT_OK(decode("", false, out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
}

TEST(url, decode_refuses_bad_input, NULL, NULL)
{
    char out[8];

    ASSERT_ERR(decode("a%00b", false, out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(decode("a%2", false, out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(decode("a%", false, out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(decode("%zz", false, out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(decode("12345678", false, out, sizeof(out)), CAIRN_ETOOBIG);
    ASSERT_OK(decode("1234567", false, out, sizeof(out)));
}

TEST(url, query_get, NULL, NULL)
{
    char out[32];
    const char *query = "cursor=abc%3D&timeout=30&flag&name=a+b&timeoutx=1";

    ASSERT_OK(gw_query_get(query, "cursor", out, sizeof(out)));
    ASSERT_STR_EQ(out, "abc=");
    ASSERT_OK(gw_query_get(query, "timeout", out, sizeof(out)));
    ASSERT_STR_EQ(out, "30");
    ASSERT_OK(gw_query_get(query, "flag", out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
    ASSERT_OK(gw_query_get(query, "name", out, sizeof(out)));
    ASSERT_STR_EQ(out, "a b");
    ASSERT_ERR(gw_query_get(query, "time", out, sizeof(out)), CAIRN_ENOENT);
    ASSERT_ERR(gw_query_get("", "a", out, sizeof(out)), CAIRN_ENOENT);
    ASSERT_ERR(gw_query_get("a=%00", "a", out, sizeof(out)), CAIRN_EINVAL);
}
