/* Errors as clients see them: every CAIRN_E* code has a status and a code,
 * and every error body has the one JSON shape. */
#include <jansson.h>
#include <stdlib.h>

#include "gw_int.h"
#include "test.h"

static const int all_codes[] = {
#define X(NAME, N, TEXT) CAIRN_E##NAME,
    CAIRN_ERR_MAP(X)
#undef X
};

TEST(error, every_code_is_mapped, NULL, NULL)
{
    size_t i, j;

    for (i = 0; i < CN_ARRAY_SIZE(all_codes); i++) {
        int rv = all_codes[i];
        const char *code = gw_error_code(rv);
        ASSERT_CMP(gw_error_status(rv), >=, 400);
        ASSERT_CMP(gw_error_status(rv), <=, 599);
        /* A missing line in GW_ERR_MAP would fall back to "internal". */
        if (rv != CAIRN_EINTERNAL) {
            ASSERT_TRUE(strcmp(code, "internal") != 0);
        }
        for (j = 0; code[j] != '\0'; j++) {
            ASSERT_TRUE((code[j] >= 'a' && code[j] <= 'z') || code[j] == '_');
        }
        ASSERT_TRUE(strcmp(gw_status_reason(gw_error_status(rv)), "Unknown") != 0);
    }
}

TEST(error, table_entries_clients_rely_on, NULL, NULL)
{
    ASSERT_EQ(gw_error_status(CAIRN_ENOENT), 404);
    ASSERT_STR_EQ(gw_error_code(CAIRN_ENOENT), "not_found");
    ASSERT_EQ(gw_error_status(CAIRN_ETOOBIG), 413);
    ASSERT_EQ(gw_error_status(CAIRN_ECONFLICT), 409);
    ASSERT_EQ(gw_error_status(CAIRN_EAUTH), 401);
    ASSERT_EQ(gw_error_status(CAIRN_EPERM), 403);
    ASSERT_EQ(gw_error_status(CAIRN_EINVAL), 400);
    ASSERT_EQ(gw_error_status(CAIRN_ERANGE), 416);
    ASSERT_EQ(gw_error_status(CAIRN_EEXPIRED), 410);
    ASSERT_EQ(gw_error_status(CAIRN_EBUSY), 503);
    ASSERT_EQ(gw_error_status(-999), 500);
    ASSERT_STR_EQ(gw_error_code(-999), "internal");
    ASSERT_STR_EQ(gw_status_reason(431), "Request Header Fields Too Large");
    ASSERT_STR_EQ(gw_status_code(408), "request_timeout");
    ASSERT_STR_EQ(gw_status_reason(299), "Unknown");
}

TEST(error, body_shape, NULL, NULL)
{
    char *text = gw_error_body(404, "not_found", "no \"such\" file");
    json_error_t jerr;
    json_t *body = json_loads(text, 0, &jerr);
    json_t *error;

    ASSERT_TRUE(body != NULL);
    ASSERT_EQ(json_object_size(body), 1);
    error = json_object_get(body, "error");
    ASSERT_EQ(json_object_size(error), 3);
    ASSERT_STR_EQ(json_string_value(json_object_get(error, "code")), "not_found");
    ASSERT_STR_EQ(json_string_value(json_object_get(error, "message")), "no \"such\" file");
    ASSERT_EQ(json_integer_value(json_object_get(error, "status")), 404);
    json_decref(body);
    free(text);
}

TEST(error, message_not_utf8_is_replaced, NULL, NULL)
{
    char *text = gw_error_body(400, "bad_request", "bad \xff\xfe bytes");

    ASSERT_TRUE(strstr(text, "not UTF-8") != NULL);
    free(text);
}

TEST(error, reject_response_is_consistent, NULL, NULL)
{
    const char *body = strstr(gw__reject_response, "\r\n\r\n") + 4;
    const char *length = strstr(gw__reject_response, "Content-Length: ");

    ASSERT_TRUE(length != NULL);
    ASSERT_EQ(strtoul(length + 16, NULL, 10), strlen(body));
}
