/*
 * Keys: the key file is refused when others can read it or when a value is
 * bad; the chunk id is HMAC-SHA-256 under the dedup key (known answers), and
 * depends on the key.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

struct fixture {
    char *dir;
    char path[512];
};

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    f->dir = cn_test_tmpdir();
    snprintf(f->path, sizeof(f->path), "%s/keys", f->dir);
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    cn_test_rmdir(f->dir);
    free(f->dir);
    free(f);
}

static void write_key_file(struct fixture *f, const char *text, mode_t mode)
{
    FILE *file = fopen(f->path, "w");

    CN_ASSERT(file != NULL);
    fputs(text, file);
    fclose(file);
    CN_ASSERT(chmod(f->path, mode) == 0);
}

#define GOOD_KEYS                                                                 \
    "version = 3\n"                                                               \
    "master = 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n" \
    "dedup = 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n"

TEST(keys, load, setup, teardown)
{
    struct fixture *f = data;
    struct stor_keys keys;
    char errmsg[CN_ERRMSG_SIZE];

    write_key_file(f, GOOD_KEYS, 0600);
    ASSERT_OK(stor_keys_load(&keys, f->path, errmsg));
    ASSERT_EQ(keys.key_version, 3);
    ASSERT_EQ(keys.master_key[31], 0x1f);
    ASSERT_EQ(keys.dedup_key[0], 0x20);
}

TEST(keys, refused_when_others_may_read, setup, teardown)
{
    struct fixture *f = data;
    struct stor_keys keys;
    char errmsg[CN_ERRMSG_SIZE];

    write_key_file(f, GOOD_KEYS, 0640);
    ASSERT_ERR(stor_keys_load(&keys, f->path, errmsg), CAIRN_EPERM);
    ASSERT_TRUE(strstr(errmsg, "chmod 600") != NULL);
    write_key_file(f, GOOD_KEYS, 0604);
    ASSERT_ERR(stor_keys_load(&keys, f->path, errmsg), CAIRN_EPERM);
}

TEST(keys, bad_values, setup, teardown)
{
    struct fixture *f = data;
    struct stor_keys keys;
    char errmsg[CN_ERRMSG_SIZE];

    write_key_file(f, "version = 1\nmaster = 00\ndedup = 00\n", 0600);
    ASSERT_ERR(stor_keys_load(&keys, f->path, errmsg), CAIRN_EINVAL);
    ASSERT_TRUE(strstr(errmsg, "master") != NULL);
    write_key_file(f, "version = 0\n", 0600);
    ASSERT_ERR(stor_keys_load(&keys, f->path, errmsg), CAIRN_EINVAL);
    write_key_file(f,
                   "version = 1\nmaster = "
                   "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
                   "dedup = 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n",
                   0600);
    ASSERT_ERR(stor_keys_load(&keys, f->path, errmsg), CAIRN_EINVAL);
    unlink(f->path);
    ASSERT_ERR(stor_keys_load(&keys, f->path, errmsg), CAIRN_ENOENT);
}

/* Known answers from Python's hmac module: key = bytes(range(32)). */
TEST(keys, chunk_id_is_hmac_sha256, NULL, NULL)
{
    struct stor_keys keys;
    struct stor_id id;
    char hex[2 * STOR_ID_SIZE + 1];

    for (unsigned i = 0; i < STOR_KEY_SIZE; i++) {
        keys.dedup_key[i] = (uint8_t)i;
    }
    ASSERT_OK(stor_chunk_id(&keys, (const uint8_t *)"cairn", 5, &id));
    cn_hex_encode(id.bytes, STOR_ID_SIZE, hex);
    ASSERT_STR_EQ(hex, "89e3205848c139a70b66aefeaf5670280bd9494cb0c7b1acf77c1405c2bd743b");
    ASSERT_OK(stor_chunk_id(&keys, NULL, 0, &id));
    cn_hex_encode(id.bytes, STOR_ID_SIZE, hex);
    ASSERT_STR_EQ(hex, "d38b42096d80f45f826b44a9d5607de72496a415d3f4a1a8c88e3bb9da8dc1cb");
}

TEST(keys, chunk_id_depends_on_key, NULL, NULL)
{
    struct stor_keys a;
    struct stor_keys b;
    struct stor_id id_a;
    struct stor_id id_b;

    helper_keys(&a, 1);
    helper_keys(&b, 2);
    ASSERT_OK(stor_chunk_id(&a, (const uint8_t *)"same bytes", 10, &id_a));
    ASSERT_OK(stor_chunk_id(&b, (const uint8_t *)"same bytes", 10, &id_b));
    ASSERT_TRUE(memcmp(id_a.bytes, id_b.bytes, STOR_ID_SIZE) != 0);
}
