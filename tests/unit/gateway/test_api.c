/* The Drive API's loop-free parts (gateway/api.c): config, paths, Range,
 * chunk cover, ETags, tus headers and JSON shapes, with the bad inputs a
 * client can send. */
#include <string.h>

#include "api.h"
#include "test.h"

TEST(api, path_decode, NULL, NULL)
{
    char out[64];

    ASSERT_OK(gw_path_decode("Photos/a%20b.jpg", out, sizeof(out)));
    ASSERT_STR_EQ(out, "Photos/a b.jpg");
    ASSERT_OK(gw_path_decode("/a//b/", out, sizeof(out)));
    ASSERT_STR_EQ(out, "a/b");
    ASSERT_OK(gw_path_decode("", out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
    ASSERT_OK(gw_path_decode("/", out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
    ASSERT_OK(gw_path_decode("%C3%A9t%C3%A9", out, sizeof(out)));
    ASSERT_STR_EQ(out, "\xc3\xa9t\xc3\xa9");
    ASSERT_OK(gw_path_decode("a+b", out, sizeof(out)));
    ASSERT_STR_EQ(out, "a+b");
    ASSERT_OK(gw_path_decode("...", out, sizeof(out)));
    ASSERT_STR_EQ(out, "...");
}

TEST(api, path_decode_refuses, NULL, NULL)
{
    char out[600], big[800];

    ASSERT_ERR(gw_path_decode("a/../b", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(gw_path_decode("a/%2e%2e/b", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(gw_path_decode("./b", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(gw_path_decode("a%00b", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(gw_path_decode("a%2Fb", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(gw_path_decode("a%zz", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(gw_path_decode("a%", out, sizeof(out)), CAIRN_EINVAL);
    memset(big, 'x', 256);
    big[256] = '\0';
    ASSERT_ERR(gw_path_decode(big, out, sizeof(out)), CAIRN_EINVAL); /* name over 255 */
    big[255] = '\0';
    ASSERT_OK(gw_path_decode(big, out, sizeof(out)));
    ASSERT_ERR(gw_path_decode(big, out, 100), CAIRN_ETOOBIG);
    /* 65 segments */
    big[0] = '\0';
    for (int i = 0; i < 65; i++) {
        strcat(big, "a/");
    }
    ASSERT_ERR(gw_path_decode(big, out, sizeof(out)), CAIRN_EINVAL);
}

TEST(api, path_split, NULL, NULL)
{
    char buf[GW_PATH_SIZE_MAX + 1];
    const char *parent, *name;

    ASSERT_OK(gw_path_split("a/b/c", buf, &parent, &name));
    ASSERT_STR_EQ(parent, "a/b");
    ASSERT_STR_EQ(name, "c");
    ASSERT_OK(gw_path_split("c", buf, &parent, &name));
    ASSERT_STR_EQ(parent, "");
    ASSERT_STR_EQ(name, "c");
    ASSERT_ERR(gw_path_split("", buf, &parent, &name), CAIRN_EINVAL);
}

TEST(api, range, NULL, NULL)
{
    uint64_t a = 0, b = 0;

    ASSERT_EQ(gw_range_parse(NULL, 100, &a, &b), GW_RANGE_NONE);
    ASSERT_EQ(gw_range_parse("bytes=0-9", 100, &a, &b), GW_RANGE_OK);
    ASSERT_EQ(a, 0);
    ASSERT_EQ(b, 9);
    ASSERT_EQ(gw_range_parse("bytes=90-", 100, &a, &b), GW_RANGE_OK);
    ASSERT_EQ(a, 90);
    ASSERT_EQ(b, 99);
    ASSERT_EQ(gw_range_parse("bytes=90-1000", 100, &a, &b), GW_RANGE_OK);
    ASSERT_EQ(b, 99);
    ASSERT_EQ(gw_range_parse("bytes=-10", 100, &a, &b), GW_RANGE_OK);
    ASSERT_EQ(a, 90);
    ASSERT_EQ(b, 99);
    ASSERT_EQ(gw_range_parse("bytes=-1000", 100, &a, &b), GW_RANGE_OK);
    ASSERT_EQ(a, 0);
    ASSERT_EQ(gw_range_parse("bytes=100-", 100, &a, &b), GW_RANGE_UNSATISFIABLE);
    ASSERT_EQ(gw_range_parse("bytes=0-", 0, &a, &b), GW_RANGE_UNSATISFIABLE);
    ASSERT_EQ(gw_range_parse("bytes=-0", 100, &a, &b), GW_RANGE_UNSATISFIABLE);
    /* Ignored: malformed, several ranges, other units. */
    ASSERT_EQ(gw_range_parse("bytes=9-1", 100, &a, &b), GW_RANGE_NONE);
    ASSERT_EQ(gw_range_parse("bytes=0-1,5-6", 100, &a, &b), GW_RANGE_NONE);
    ASSERT_EQ(gw_range_parse("items=0-1", 100, &a, &b), GW_RANGE_NONE);
    ASSERT_EQ(gw_range_parse("bytes=x-1", 100, &a, &b), GW_RANGE_NONE);
    ASSERT_EQ(gw_range_parse("bytes=1-2x", 100, &a, &b), GW_RANGE_NONE);
    ASSERT_EQ(gw_range_parse("bytes=99999999999999999999999-", 100, &a, &b), GW_RANGE_NONE);
}

TEST(api, chunks_cover, NULL, NULL)
{
    Cairn__Cmd__ChunkRef refs[3];
    const Cairn__Cmd__ChunkRef *list[3];
    size_t begin, end;

    for (int i = 0; i < 3; i++) {
        cairn__cmd__chunk_ref__init(&refs[i]);
        refs[i].offset = (uint64_t)i * 10;
        refs[i].size = 10;
        list[i] = &refs[i];
    }
    ASSERT_OK(gw_chunks_cover(list, 3, 0, 29, &begin, &end));
    ASSERT_EQ(begin, 0);
    ASSERT_EQ(end, 3);
    ASSERT_OK(gw_chunks_cover(list, 3, 9, 10, &begin, &end)); /* across an edge */
    ASSERT_EQ(begin, 0);
    ASSERT_EQ(end, 2);
    ASSERT_OK(gw_chunks_cover(list, 3, 10, 19, &begin, &end)); /* exactly one chunk */
    ASSERT_EQ(begin, 1);
    ASSERT_EQ(end, 2);
    ASSERT_OK(gw_chunks_cover(list, 3, 29, 29, &begin, &end));
    ASSERT_EQ(begin, 2);
    ASSERT_EQ(end, 3);
    ASSERT_ERR(gw_chunks_cover(list, 3, 29, 30, &begin, &end), CAIRN_EINVAL);
    ASSERT_ERR(gw_chunks_cover(list, 3, 30, 30, &begin, &end), CAIRN_EINVAL);
    refs[2].offset = 21; /* a gap */
    ASSERT_ERR(gw_chunks_cover(list, 3, 0, 25, &begin, &end), CAIRN_EINVAL);
}

TEST(api, etag, NULL, NULL)
{
    char etag[GW_ETAG_SIZE];

    gw_etag_format(0xabc, 7, etag);
    ASSERT_STR_EQ(etag, "\"0000000000000abc-7\"");
    ASSERT_TRUE(gw_etag_match(etag, etag));
    ASSERT_TRUE(gw_etag_match("\"x\", \"0000000000000abc-7\"", etag));
    ASSERT_TRUE(gw_etag_match("W/\"0000000000000abc-7\"", etag));
    ASSERT_TRUE(gw_etag_match("*", etag));
    ASSERT_FALSE(gw_etag_match("\"0000000000000abc-70\"", etag));
    ASSERT_FALSE(gw_etag_match("", etag));
    ASSERT_EQ(gw_etag_version(etag, 0xabc), 7);
    ASSERT_EQ(gw_etag_version(etag, 0xabd), 0);
    ASSERT_EQ(gw_etag_version("\"0000000000000abc-x\"", 0xabc), 0);
}

TEST(api, tus_metadata, NULL, NULL)
{
    char out[32];

    /* "photo.jpg" and "3" */
    ASSERT_OK(gw_tus_metadata_get("path cGhvdG8uanBn,base Mw==", "path", out, sizeof(out)));
    ASSERT_STR_EQ(out, "photo.jpg");
    ASSERT_OK(gw_tus_metadata_get("path cGhvdG8uanBn, base Mw==", "base", out, sizeof(out)));
    ASSERT_STR_EQ(out, "3");
    ASSERT_OK(gw_tus_metadata_get("flag,path cGhvdG8uanBn", "flag", out, sizeof(out)));
    ASSERT_STR_EQ(out, "");
    ASSERT_ERR(gw_tus_metadata_get("pathx cGhvdG8uanBn", "path", out, sizeof(out)), CAIRN_ENOENT);
    ASSERT_ERR(gw_tus_metadata_get("path !!!", "path", out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(gw_tus_metadata_get("path YQBi", "path", out, sizeof(out)), CAIRN_EINVAL); /* NUL */
    ASSERT_ERR(gw_tus_metadata_get("path cGhvdG8uanBn", "path", out, 4), CAIRN_ETOOBIG);
}

TEST(api, parse_u64_and_upload_id, NULL, NULL)
{
    uint64_t v;
    uint8_t id[16], back[16];
    char text[33];

    ASSERT_OK(gw_parse_u64("0", &v));
    ASSERT_EQ(v, 0);
    ASSERT_OK(gw_parse_u64("10737418240", &v));
    ASSERT_EQ(v, 10737418240ull);
    ASSERT_ERR(gw_parse_u64("", &v), CAIRN_EINVAL);
    ASSERT_ERR(gw_parse_u64("-1", &v), CAIRN_EINVAL);
    ASSERT_ERR(gw_parse_u64("01", &v), CAIRN_EINVAL);
    ASSERT_ERR(gw_parse_u64("1 ", &v), CAIRN_EINVAL);
    ASSERT_ERR(gw_parse_u64("99999999999999999999", &v), CAIRN_EINVAL);
    ASSERT_ERR(gw_parse_u64(NULL, &v), CAIRN_EINVAL);
    ASSERT_OK(gw_parse_id("18446744073709551615", &v));
    ASSERT_EQ(v, UINT64_MAX);
    ASSERT_ERR(gw_parse_id("18446744073709551616", &v), CAIRN_EINVAL);
    ASSERT_ERR(gw_parse_id("0", &v), CAIRN_EINVAL);
    ASSERT_ERR(gw_parse_id("012", &v), CAIRN_EINVAL);
    for (int i = 0; i < 16; i++) {
        id[i] = (uint8_t)(i * 17);
    }
    gw_upload_id_format(id, text);
    ASSERT_OK(gw_upload_id_parse(text, back));
    ASSERT_MEM_EQ(id, back, 16);
    ASSERT_ERR(gw_upload_id_parse("abc", back), CAIRN_EINVAL);
    text[5] = 'g';
    ASSERT_ERR(gw_upload_id_parse(text, back), CAIRN_EINVAL);
}

TEST(api, entry_and_event_json, NULL, NULL)
{
    Cairn__Cmd__Inode inode = CAIRN__CMD__INODE__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__Event event = CAIRN__CMD__EVENT__INIT;
    json_t *json;

    inode.id = 42;
    inode.name = "a.txt";
    inode.kind = CAIRN__CMD__INODE_KIND__INODE_FILE;
    inode.version = 3;
    version.size = 1234;
    json = gw_entry_json("docs/a.txt", &inode, &version);
    ASSERT_TRUE(json != NULL);
    ASSERT_STR_EQ(json_string_value(json_object_get(json, "id")), "42");
    ASSERT_STR_EQ(json_string_value(json_object_get(json, "kind")), "file");
    ASSERT_STR_EQ(json_string_value(json_object_get(json, "path")), "docs/a.txt");
    ASSERT_EQ(json_integer_value(json_object_get(json, "size")), 1234);
    ASSERT_STR_EQ(json_string_value(json_object_get(json, "etag")), "\"000000000000002a-3\"");
    json_decref(json);

    event.kind = CAIRN__CMD__EVENT_KIND__EVENT_MOVED;
    event.inode = 42;
    event.name = "b.txt";
    event.old_name = "a.txt";
    event.seq = 9;
    json = gw_event_json(&event);
    ASSERT_STR_EQ(json_string_value(json_object_get(json, "kind")), "moved");
    ASSERT_STR_EQ(json_string_value(json_object_get(json, "old_name")), "a.txt");
    json_decref(json);
    event.kind = 99;
    ASSERT_TRUE(gw_event_json(&event) == NULL);
    ASSERT_EQ(gw_role_parse("viewer"), CAIRN__CMD__ROLE__ROLE_VIEWER);
    ASSERT_EQ(gw_role_parse("owner"), CAIRN__CMD__ROLE__ROLE_NONE);
    ASSERT_STR_EQ(gw_role_name(CAIRN__CMD__ROLE__ROLE_EDITOR), "editor");
}

TEST(api, config, NULL, NULL)
{
    static const char text[] = "[gateway]\n"
                               "listen = 127.0.0.1:9000\n"
                               "nodes = 127.0.0.1:7001, 127.0.0.1:7002\n"
                               "secret = /s\n"
                               "keys = /k\n"
                               "max_file_size = 1MiB\n"
                               "token_cache = 500ms\n";
    struct gw_app_config config;
    struct cn_config file;
    char errmsg[CN_ERRMSG_SIZE];

    gw_app_config_init(&config);
    ASSERT_EQ(config.file_size_max, 10ull << 30);
    ASSERT_OK(cn_config_parse(&file, "t.conf", text, errmsg));
    ASSERT_OK(gw_app_config_load(&config, &file, GW_FLAG_SECRET, errmsg));
    ASSERT_OK(cn_config_check_unused(&file, errmsg));
    cn_config_close(&file);
    ASSERT_STR_EQ(config.listen, "127.0.0.1:9000");
    ASSERT_EQ(config.node_count, 2);
    ASSERT_STR_EQ(config.nodes[1], "127.0.0.1:7002");
    ASSERT_STR_EQ(config.secret_path, ""); /* a flag set it: the file does not win */
    ASSERT_STR_EQ(config.key_path, "/k");
    ASSERT_EQ(config.file_size_max, 1u << 20);
    ASSERT_EQ(config.token_cache_ms, 500);

    gw_app_config_init(&config);
    ASSERT_OK(cn_config_parse(&file, "t.conf", "[gateway]\nmax_file_size = 11GiB\n", errmsg));
    ASSERT_ERR(gw_app_config_load(&config, &file, 0, errmsg), CAIRN_EINVAL);
    cn_config_close(&file);
    gw_app_config_init(&config);
    ASSERT_OK(cn_config_parse(&file, "t.conf", "[gateway]\nnodes = nowhere\n", errmsg));
    ASSERT_ERR(gw_app_config_load(&config, &file, 0, errmsg), CAIRN_EINVAL);
    cn_config_close(&file);
    gw_app_config_init(&config);
    ASSERT_OK(cn_config_parse(&file, "t.conf", "[gateway]\nlsiten = x\n", errmsg));
    ASSERT_OK(gw_app_config_load(&config, &file, 0, errmsg));
    ASSERT_ERR(cn_config_check_unused(&file, errmsg), CAIRN_EINVAL);
    cn_config_close(&file);
}

/* Random inputs (replay with CAIRN_TEST_SEED): paths decode to valid names or
 * are refused; ranges stay inside the body; tus metadata never overruns. */
TEST(api, random_inputs, NULL, NULL)
{
    static const char alphabet[] = "ab./%%02e0fF2zZ \x01\xff,=-9";
    struct cn_rand rand;
    char in[300], out[600], meta[64], buf[GW_PATH_SIZE_MAX + 1], range[310];
    unsigned ok = 0;
    uint64_t a, b;

    cn_rand_seed(&rand, cn_test_seed());
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)cn_rand_below(&rand, sizeof(in) - 1);

        for (size_t i = 0; i < len; i++) {
            in[i] = alphabet[cn_rand_below(&rand, sizeof(alphabet) - 1)];
        }
        in[len] = '\0';
        if (gw_path_decode(in, out, sizeof(out)) == 0 && out[0] != '\0') {
            const char *parent, *name;

            ASSERT_TRUE(out[0] != '/' && out[strlen(out) - 1] != '/');
            ASSERT_TRUE(strstr(out, "//") == NULL);
            ASSERT_OK(gw_path_split(out, buf, &parent, &name));
            ASSERT_TRUE(gw_name_valid(name));
        }
        snprintf(range, sizeof(range), "bytes=%s", in + cn_rand_below(&rand, len + 1));
        if (gw_range_parse(range, len, &a, &b) == GW_RANGE_OK) {
            ASSERT_TRUE(a <= b && b < len);
            ok++;
        }
        (void)gw_tus_metadata_get(in, "a", meta, sizeof(meta));
        (void)gw_etag_match(in, "\"0000000000000001-1\"");
    }
    ASSERT_TRUE(ok > 0); /* the generator reaches valid ranges too */
}
