/* The pure parts of libcairn: path encoding, base64, HTTP answers to codes,
 * codes to exit codes, Content-Range, headers, tus offsets, progress lines. */
#include "cl_int.h"
#include "test.h"

TEST(path, normalize, NULL, NULL)
{
    char out[64];

    ASSERT_OK(cl_path_normalize("/Photos//2026/a b.jpg/", out, sizeof(out)));
    ASSERT_STR_EQ(out, "Photos/2026/a b.jpg");
    ASSERT_OK(cl_path_normalize("", out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
    ASSERT_OK(cl_path_normalize("///", out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
    ASSERT_OK(cl_path_normalize("a/.b/..c/...", out, sizeof(out)));
    ASSERT_STR_EQ(out, "a/.b/..c/...");
}

TEST(path, normalize_refuses_bad_names, NULL, NULL)
{
    char out[300], long_name[300];

    ASSERT_ERR(cl_path_normalize("a/./b", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(cl_path_normalize("a/../b", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(cl_path_normalize("..", out, sizeof(out)), CAIRN_EINVAL);
    memset(long_name, 'x', 256);
    long_name[256] = '\0';
    ASSERT_ERR(cl_path_normalize(long_name, out, sizeof(out)), CAIRN_EINVAL);
    long_name[255] = '\0';
    ASSERT_OK(cl_path_normalize(long_name, out, sizeof(out)));
    ASSERT_ERR(cl_path_normalize("abcdef/ghij", out, 8), CAIRN_ETOOBIG);
}

TEST(path, encode, NULL, NULL)
{
    char out[128];

    ASSERT_OK(cl_path_encode("/Photos/2026/a b.jpg", out, sizeof(out)));
    ASSERT_STR_EQ(out, "Photos/2026/a%20b.jpg");
    ASSERT_OK(cl_path_encode("100%/a?b#c&d=e+f", out, sizeof(out)));
    ASSERT_STR_EQ(out, "100%25/a%3Fb%23c%26d%3De%2Bf");
    ASSERT_OK(cl_path_encode("\xc3\xa9t\xc3\xa9~-_.", out, sizeof(out)));
    ASSERT_STR_EQ(out, "%C3%A9t%C3%A9~-_.");
    ASSERT_OK(cl_path_encode("", out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
    ASSERT_ERR(cl_path_encode("a/../b", out, sizeof(out)), CAIRN_EINVAL);
    /* "a b" is 5 bytes encoded; with the NUL it needs 6. */
    ASSERT_ERR(cl_path_encode("a b", out, 5), CAIRN_ETOOBIG);
    ASSERT_OK(cl_path_encode("a b", out, 6));
}

TEST(path, query_escape_and_basename, NULL, NULL)
{
    char out[64];

    ASSERT_OK(cl_query_escape("a/b c&d", out, sizeof(out)));
    ASSERT_STR_EQ(out, "a%2Fb%20c%26d");
    ASSERT_STR_EQ(cl_path_basename("a/b/c.txt"), "c.txt");
    ASSERT_STR_EQ(cl_path_basename("c.txt"), "c.txt");
    ASSERT_STR_EQ(cl_path_basename("a/"), "");
}

TEST(base64, rfc4648_vectors, NULL, NULL)
{
    static const char *vectors[][2] = {{"", ""},
                                       {"f", "Zg=="},
                                       {"fo", "Zm8="},
                                       {"foo", "Zm9v"},
                                       {"foob", "Zm9vYg=="},
                                       {"fooba", "Zm9vYmE="},
                                       {"foobar", "Zm9vYmFy"}};
    char out[16];

    for (size_t i = 0; i < CN_ARRAY_SIZE(vectors); i++) {
        ASSERT_OK(cl_base64_encode(vectors[i][0], strlen(vectors[i][0]), out, sizeof(out)));
        ASSERT_STR_EQ(out, vectors[i][1]);
    }
    ASSERT_ERR(cl_base64_encode("foobar", 6, out, 8), CAIRN_ETOOBIG);
    ASSERT_OK(cl_base64_encode("foobar", 6, out, 9));
}

TEST(errors, from_status, NULL, NULL)
{
    ASSERT_EQ(cl_err_from_status(200), 0);
    ASSERT_EQ(cl_err_from_status(304), 0);
    ASSERT_ERR(cl_err_from_status(400), CAIRN_EINVAL);
    ASSERT_ERR(cl_err_from_status(401), CAIRN_EAUTH);
    ASSERT_ERR(cl_err_from_status(403), CAIRN_EPERM);
    ASSERT_ERR(cl_err_from_status(404), CAIRN_ENOENT);
    ASSERT_ERR(cl_err_from_status(409), CAIRN_ECONFLICT);
    ASSERT_ERR(cl_err_from_status(412), CAIRN_ECONFLICT);
    ASSERT_ERR(cl_err_from_status(410), CAIRN_EEXPIRED);
    ASSERT_ERR(cl_err_from_status(413), CAIRN_ETOOBIG);
    ASSERT_ERR(cl_err_from_status(416), CAIRN_ERANGE);
    ASSERT_ERR(cl_err_from_status(429), CAIRN_EBUSY);
    ASSERT_ERR(cl_err_from_status(503), CAIRN_EUNAVAIL);
    ASSERT_ERR(cl_err_from_status(504), CAIRN_ETIMEOUT);
    ASSERT_ERR(cl_err_from_status(507), CAIRN_EQUOTA);
    ASSERT_ERR(cl_err_from_status(418), CAIRN_EPROTO);
    ASSERT_ERR(cl_err_from_status(500), CAIRN_EINTERNAL);
}

TEST(errors, parse_server_json, NULL, NULL)
{
    const char *conflict = "{\"error\": {\"code\": \"CAIRN_ECONFLICT\", \"message\": \"base "
                           "version 3 is stale (current 4)\", \"status\": 409}}";
    const char *exists = "{\"error\":{\"code\":\"CAIRN_EEXIST\",\"message\":\"x exists\"}}";
    const char *snake = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such file\"}}";
    char msg[128];

    ASSERT_ERR(cl_error_parse(conflict, strlen(conflict), 409, msg, sizeof(msg)), CAIRN_ECONFLICT);
    ASSERT_STR_EQ(msg, "base version 3 is stale (current 4)");
    /* The code wins over the status when it names one of ours. */
    ASSERT_ERR(cl_error_parse(exists, strlen(exists), 409, msg, sizeof(msg)), CAIRN_EEXIST);
    ASSERT_STR_EQ(msg, "x exists");
    /* The gateway's own codes ("not_found") name the CAIRN_E* code too. */
    ASSERT_ERR(cl_error_parse(snake, strlen(snake), 404, msg, sizeof(msg)), CAIRN_ENOENT);
    ASSERT_STR_EQ(msg, "no such file");
    snake = "{\"error\":{\"code\":\"already_exists\",\"message\":\"m\"}}";
    ASSERT_ERR(cl_error_parse(snake, strlen(snake), 409, msg, sizeof(msg)), CAIRN_EEXIST);
    snake = "{\"error\":{\"code\":\"folder_not_empty\",\"message\":\"m\"}}";
    ASSERT_ERR(cl_error_parse(snake, strlen(snake), 409, msg, sizeof(msg)), CAIRN_ENOTEMPTY);
    /* An unknown code: the status decides. */
    snake = "{\"error\":{\"code\":\"frobbed\",\"message\":\"m\"}}";
    ASSERT_ERR(cl_error_parse(snake, strlen(snake), 409, msg, sizeof(msg)), CAIRN_ECONFLICT);
}

TEST(errors, parse_bad_bodies, NULL, NULL)
{
    const char *html = "<html>Bad Gateway</html>";
    const char *no_message = "{\"error\":{\"code\":\"CAIRN_EQUOTA\"}}";
    char msg[128];

    ASSERT_ERR(cl_error_parse(html, strlen(html), 502, msg, sizeof(msg)), CAIRN_EUNAVAIL);
    ASSERT_STR_EQ(msg, "the server answered HTTP 502 (not enough nodes available)");
    ASSERT_ERR(cl_error_parse("", 0, 401, msg, sizeof(msg)), CAIRN_EAUTH);
    ASSERT_ERR(cl_error_parse(no_message, strlen(no_message), 507, msg, sizeof(msg)), CAIRN_EQUOTA);
    ASSERT_STR_EQ(msg, "the server answered HTTP 507 (quota exceeded)");
    /* An error body with a success status is still an error. */
    ASSERT_ERR(cl_error_parse("{}", 2, 200, msg, sizeof(msg)), CAIRN_EPROTO);
    /* A message longer than the buffer is cut, not overrun. */
    ASSERT_ERR(cl_error_parse(html, strlen(html), 404, msg, 8), CAIRN_ENOENT);
    ASSERT_EQ(strlen(msg), 7);
}

TEST(errors, exit_codes, NULL, NULL)
{
    ASSERT_EQ(cl_exit_code(0), 0);
    ASSERT_EQ(cl_exit_code(CAIRN_EIO), 1);
    ASSERT_EQ(cl_exit_code(CAIRN_EINVAL), 1);
    ASSERT_EQ(cl_exit_code(CAIRN_EQUOTA), 1);
    ASSERT_EQ(cl_exit_code(CAIRN_EAUTH), 3);
    ASSERT_EQ(cl_exit_code(CAIRN_EPERM), 3);
    ASSERT_EQ(cl_exit_code(CAIRN_ENOENT), 4);
    ASSERT_EQ(cl_exit_code(CAIRN_ECONFLICT), 5);
    ASSERT_EQ(cl_exit_code(CAIRN_EEXIST), 5);
    ASSERT_EQ(cl_exit_code(CAIRN_ENOTEMPTY), 5);
    ASSERT_EQ(cl_exit_code(CAIRN_EUNAVAIL), 6);
    ASSERT_EQ(cl_exit_code(CAIRN_ETIMEOUT), 6);
    ASSERT_EQ(cl_exit_code(CAIRN_EBUSY), 6);
    ASSERT_EQ(cl_exit_code(-1000), 1);
}

TEST(parse, u64, NULL, NULL)
{
    uint64_t v = 7;

    ASSERT_OK(cl_parse_u64("0", &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(cl_parse_u64("18446744073709551615", &v));
    ASSERT_TRUE(v == UINT64_MAX);
    ASSERT_ERR(cl_parse_u64("18446744073709551616", &v), CAIRN_EINVAL);
    ASSERT_ERR(cl_parse_u64("-1", &v), CAIRN_EINVAL);
    ASSERT_ERR(cl_parse_u64(" 1", &v), CAIRN_EINVAL);
    ASSERT_ERR(cl_parse_u64("1x", &v), CAIRN_EINVAL);
    ASSERT_ERR(cl_parse_u64("", &v), CAIRN_EINVAL);
    ASSERT_ERR(cl_parse_u64(NULL, &v), CAIRN_EINVAL);
}

TEST(parse, content_range, NULL, NULL)
{
    uint64_t first, last, size;

    ASSERT_OK(cl_content_range_parse("bytes 0-99/1000", &first, &last, &size));
    ASSERT_EQ(first, 0);
    ASSERT_EQ(last, 99);
    ASSERT_EQ(size, 1000);
    ASSERT_OK(cl_content_range_parse("bytes 500-999/1000", &first, &last, &size));
    ASSERT_EQ(first, 500);
    ASSERT_OK(cl_content_range_parse("bytes 5-9/*", &first, &last, &size));
    ASSERT_EQ(size, 0);
    ASSERT_ERR(cl_content_range_parse("bytes 0-1000/1000", &first, &last, &size), CAIRN_EINVAL);
    ASSERT_ERR(cl_content_range_parse("bytes 9-5/1000", &first, &last, &size), CAIRN_EINVAL);
    ASSERT_ERR(cl_content_range_parse("bytes */1000", &first, &last, &size), CAIRN_EINVAL);
    ASSERT_ERR(cl_content_range_parse("items 0-1/2", &first, &last, &size), CAIRN_EINVAL);
    ASSERT_ERR(cl_content_range_parse("bytes 0-1/2x", &first, &last, &size), CAIRN_EINVAL);
    ASSERT_ERR(cl_content_range_parse("bytes -1/2", &first, &last, &size), CAIRN_EINVAL);
    ASSERT_ERR(cl_content_range_parse("", &first, &last, &size), CAIRN_EINVAL);
}

TEST(parse, header_match, NULL, NULL)
{
    const char *line = "etag:   \"abc-3\"  \r\n";
    char value[16];

    ASSERT_TRUE(cl_header_match(line, strlen(line), "ETag", value, sizeof(value)));
    ASSERT_STR_EQ(value, "\"abc-3\"");
    ASSERT_FALSE(cl_header_match(line, strlen(line), "ETags", value, sizeof(value)));
    ASSERT_FALSE(cl_header_match(line, strlen(line), "ETa", value, sizeof(value)));
    line = "Upload-Offset: 123456789012345678901234\r\n";
    ASSERT_TRUE(cl_header_match(line, strlen(line), "upload-offset", value, sizeof(value)));
    ASSERT_EQ(strlen(value), sizeof(value) - 1); /* cut, never overrun */
}

TEST(tus, next_step, NULL, NULL)
{
    uint64_t len = 99;

    ASSERT_OK(cl_tus_next(0, 100, 30, &len));
    ASSERT_EQ(len, 30);
    ASSERT_OK(cl_tus_next(90, 100, 30, &len));
    ASSERT_EQ(len, 10);
    ASSERT_OK(cl_tus_next(100, 100, 30, &len));
    ASSERT_EQ(len, 0);
    ASSERT_OK(cl_tus_next(0, 0, 30, &len));
    ASSERT_EQ(len, 0);
    /* A server that claims more than the file has is not believed. */
    ASSERT_ERR(cl_tus_next(101, 100, 30, &len), CAIRN_EPROTO);
}

TEST(tus, walk_resumes_from_any_offset, NULL, NULL)
{
    /* Whatever offset the server reports after a cut, the steps from there
     * cover exactly the rest of the file. */
    const uint64_t size = 1000, chunk = 64;

    for (uint64_t start = 0; start <= size; start += 37) {
        uint64_t offset = start, len, steps = 0;

        for (;;) {
            ASSERT_OK(cl_tus_next(offset, size, chunk, &len));
            if (len == 0) {
                break;
            }
            ASSERT_CMP(len, <=, chunk);
            offset += len;
            steps++;
        }
        ASSERT_EQ(offset, size);
        ASSERT_EQ(steps, (size - start + chunk - 1) / chunk);
    }
}

TEST(render, sizes, NULL, NULL)
{
    char out[32];

    cl_format_size(0, out, sizeof(out));
    ASSERT_STR_EQ(out, "0 B");
    cl_format_size(1023, out, sizeof(out));
    ASSERT_STR_EQ(out, "1023 B");
    cl_format_size(1024, out, sizeof(out));
    ASSERT_STR_EQ(out, "1.0 KiB");
    cl_format_size(12900000, out, sizeof(out));
    ASSERT_STR_EQ(out, "12.3 MiB");
    cl_format_size(2ull << 30, out, sizeof(out));
    ASSERT_STR_EQ(out, "2.00 GiB");
}

TEST(render, progress_line, NULL, NULL)
{
    char out[256];

    cl_progress_render(out, sizeof(out), 80, "photo.jpg", 50 << 20, 100 << 20, 10000);
    ASSERT_STR_EQ(out, "photo.jpg  [===============>               ]  50%  50.0 MiB/100.0 MiB  "
                       "5.0 MiB/s");
    ASSERT_EQ(strlen(out), 80);
    cl_progress_render(out, sizeof(out), 80, "photo.jpg", 100 << 20, 100 << 20, 10000);
    ASSERT_TRUE(strstr(out, "=] 100%") != NULL);
    ASSERT_TRUE(strchr(out, '>') == NULL); /* a full bar, no head */
    ASSERT_EQ(strlen(out), 80);
    cl_progress_render(out, sizeof(out), 80, "photo.jpg", 0, 100 << 20, 0);
    ASSERT_TRUE(strstr(out, "[>      ") != NULL);
    ASSERT_TRUE(strstr(out, "   0%  0 B/100.0 MiB  0 B/s") != NULL);
}

TEST(render, progress_edges, NULL, NULL)
{
    char out[256], label[200];

    /* Unknown total: no bar, no percent. */
    cl_progress_render(out, sizeof(out), 80, "x", 2048, 0, 1000);
    ASSERT_STR_EQ(out, "x  2.0 KiB  2.0 KiB/s");
    /* More done than total (a file that grew): clamped to 100%. */
    cl_progress_render(out, sizeof(out), 80, "x", 200, 100, 1000);
    ASSERT_TRUE(strstr(out, "100%") != NULL);
    /* A long label is cut to a third of the line; the line fits. */
    memset(label, 'a', sizeof(label) - 1);
    label[sizeof(label) - 1] = '\0';
    for (unsigned width = 20; width <= 200; width += 7) {
        cl_progress_render(out, sizeof(out), width, label, 5, 10, 1000);
        ASSERT_CMP(strlen(out), <=, width);
        ASSERT_TRUE(strstr(out, " 50%") != NULL);
    }
    /* A buffer smaller than the line is cut, not overrun. */
    cl_progress_render(out, 10, 80, "x", 5, 10, 1000);
    ASSERT_EQ(strlen(out), 9);
}

TEST(render, time, NULL, NULL)
{
    char out[32];

    cl_format_time(0, out, sizeof(out));
    ASSERT_STR_EQ(out, "1970-01-01 00:00:00");
    cl_format_time(1795958276000ull, out, sizeof(out));
    ASSERT_STR_EQ(out, "2026-11-29 13:17:56");
}
