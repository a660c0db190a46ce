/* Config files: sections, values, units, errors with line numbers, unknown keys. */
#include <stdio.h>

#include "test.h"

static const char *const sample = "# a node\n"
                                  "cluster = dev\n"
                                  "[node]\n"
                                  "  listen = 127.0.0.1:7000  \n"
                                  "cache = 64 MiB\n"
                                  "fsync = off\n"
                                  "\n"
                                  "[node]\n"
                                  "listen = 127.0.0.1:7001\n";

TEST(config, parse_and_get, NULL, NULL)
{
    struct cn_config config;
    char errmsg[CN_ERRMSG_SIZE];
    uint64_t cache = 0;
    bool fsync = true;

    ASSERT_OK(cn_config_parse(&config, "sample.conf", sample, errmsg));
    ASSERT_STR_EQ(cn_config_get(&config, "", "cluster"), "dev");
    /* The last value wins. */
    ASSERT_STR_EQ(cn_config_get(&config, "node", "listen"), "127.0.0.1:7001");
    ASSERT_OK(cn_config_get_u64(&config, "node", "cache", &cache, errmsg));
    ASSERT_EQ(cache, 64ll << 20);
    ASSERT_OK(cn_config_get_bool(&config, "node", "fsync", &fsync, errmsg));
    ASSERT_FALSE(fsync);
    ASSERT_TRUE(cn_config_get(&config, "node", "absent") == NULL);
    ASSERT_OK(cn_config_check_unused(&config, errmsg));
    cn_config_close(&config);
}

TEST(config, unknown_key_is_named, NULL, NULL)
{
    struct cn_config config;
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_OK(cn_config_parse(&config, "x.conf", "[node]\nlisten = a\nlsiten = b\n", errmsg));
    cn_config_get(&config, "node", "listen");
    ASSERT_ERR(cn_config_check_unused(&config, errmsg), CAIRN_EINVAL);
    ASSERT_STR_EQ(errmsg, "x.conf:3: unknown key node.lsiten");
    cn_config_close(&config);
}

TEST(config, syntax_errors_name_the_line, NULL, NULL)
{
    struct cn_config config;
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_ERR(cn_config_parse(&config, "a.conf", "x = 1\nnot a pair\n", errmsg), CAIRN_EINVAL);
    ASSERT_STR_EQ(errmsg, "a.conf:2: expected key = value");
    ASSERT_ERR(cn_config_parse(&config, "a.conf", "[node\n", errmsg), CAIRN_EINVAL);
    ASSERT_STR_EQ(errmsg, "a.conf:1: bad section header");
    ASSERT_ERR(cn_config_parse(&config, "a.conf", " = 3\n", errmsg), CAIRN_EINVAL);
    ASSERT_STR_EQ(errmsg, "a.conf:1: empty key");
}

TEST(config, bad_typed_values, NULL, NULL)
{
    struct cn_config config;
    char errmsg[CN_ERRMSG_SIZE];
    uint64_t size = 7;
    bool flag = true;

    ASSERT_OK(cn_config_parse(&config, "t.conf", "size = lots\nflag = maybe\n", errmsg));
    ASSERT_ERR(cn_config_get_u64(&config, "", "size", &size, errmsg), CAIRN_EINVAL);
    ASSERT_STR_EQ(errmsg, "t.conf:1: size: not a number: lots");
    ASSERT_EQ(size, 7);
    ASSERT_ERR(cn_config_get_bool(&config, "", "flag", &flag, errmsg), CAIRN_EINVAL);
    ASSERT_TRUE(flag);
    cn_config_close(&config);
}

TEST(config, load_missing_file, NULL, NULL)
{
    struct cn_config config;
    char errmsg[CN_ERRMSG_SIZE];

    ASSERT_ERR(cn_config_load(&config, "/nonexistent/cairn.conf", errmsg), CAIRN_ENOENT);
    ASSERT_TRUE(strstr(errmsg, "/nonexistent/cairn.conf") != NULL);
}

TEST(config, load_file, NULL, NULL)
{
    char *dir = cn_test_tmpdir();
    char path[4200];
    struct cn_config config;
    char errmsg[CN_ERRMSG_SIZE];
    FILE *file;

    snprintf(path, sizeof(path), "%s/c.conf", dir);
    file = fopen(path, "w");
    ASSERT_TRUE(file != NULL);
    fputs(sample, file);
    fclose(file);
    ASSERT_OK(cn_config_load(&config, path, errmsg));
    ASSERT_STR_EQ(cn_config_get(&config, "node", "cache"), "64 MiB");
    cn_config_close(&config);
    cn_test_rmdir(dir);
    free(dir);
}

TEST(config, sizes_and_durations, NULL, NULL)
{
    uint64_t v;

    ASSERT_OK(cn_parse_size("4096", &v));
    ASSERT_EQ(v, 4096);
    ASSERT_OK(cn_parse_size("10GiB", &v));
    ASSERT_EQ(v, 10ll << 30);
    ASSERT_OK(cn_parse_size("1.5 KiB", &v));
    ASSERT_EQ(v, 1536);
    ASSERT_ERR(cn_parse_size("-1", &v), CAIRN_EINVAL);
    ASSERT_ERR(cn_parse_size("12 parsecs", &v), CAIRN_EINVAL);
    ASSERT_ERR(cn_parse_size("99999999 TiB", &v), CAIRN_EINVAL);
    ASSERT_OK(cn_parse_duration_ms("250ms", &v));
    ASSERT_EQ(v, 250);
    ASSERT_OK(cn_parse_duration_ms("2m", &v));
    ASSERT_EQ(v, 120000);
    ASSERT_OK(cn_parse_duration_ms("7d", &v));
    ASSERT_EQ(v, 7ll * 24 * 3600 * 1000);
    ASSERT_ERR(cn_parse_duration_ms("soon", &v), CAIRN_EINVAL);
}
