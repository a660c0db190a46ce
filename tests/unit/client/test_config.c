/* The login file and the resume records: XDG locations, mode 0600, atomic
 * writes, refusal of a file others can read, and record keys. */
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "cl_int.h"
#include "test.h"

struct fixture {
    char *dir;
    char path[1024];
};

static void *setup(void)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->dir = cn_test_tmpdir();
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    cn_test_rmdir(f->dir);
    free(f->dir);
    free(f);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen(path, "w");

    ASSERT_TRUE(file != NULL);
    fputs(text, file);
    fclose(file);
    ASSERT_EQ(chmod(path, mode), 0);
}

TEST(config, xdg_dirs, setup, teardown)
{
    char out[512];

    setenv("HOME", "/home/ann", 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("XDG_STATE_HOME");
    ASSERT_OK(cl_config_dir(out, sizeof(out)));
    ASSERT_STR_EQ(out, "/home/ann/.config/cairn");
    ASSERT_OK(cl_state_dir(out, sizeof(out)));
    ASSERT_STR_EQ(out, "/home/ann/.local/state/cairn");
    setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
    setenv("XDG_STATE_HOME", "/x/state", 1);
    ASSERT_OK(cl_config_dir(out, sizeof(out)));
    ASSERT_STR_EQ(out, "/x/cfg/cairn");
    ASSERT_OK(cl_state_dir(out, sizeof(out)));
    ASSERT_STR_EQ(out, "/x/state/cairn");
    /* The XDG spec: a relative value is invalid and ignored. */
    setenv("XDG_CONFIG_HOME", "relative", 1);
    ASSERT_OK(cl_config_dir(out, sizeof(out)));
    ASSERT_STR_EQ(out, "/home/ann/.config/cairn");
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("HOME");
    ASSERT_ERR(cl_config_dir(out, sizeof(out)), CAIRN_EINVAL);
    ASSERT_ERR(cl_config_dir(out, 8), CAIRN_EINVAL);
    setenv("HOME", "/home/ann", 1);
    ASSERT_ERR(cl_config_dir(out, 8), CAIRN_ETOOBIG);
}

TEST(config, round_trip_is_private, setup, teardown)
{
    struct fixture *f = data;
    struct cl_config config = {0}, read;
    char errmsg[CN_ERRMSG_SIZE], dir[512];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/deep/cairn", f->dir);
    ASSERT_ERR(cl_config_read(dir, &read, errmsg), CAIRN_ENOENT);
    snprintf(config.endpoint, sizeof(config.endpoint), "http://127.0.0.1:8080");
    snprintf(config.token, sizeof(config.token), "tok-123");
    snprintf(config.user, sizeof(config.user), "ann");
    ASSERT_OK(cl_config_write(dir, &config, errmsg));
    ASSERT_OK(cl_config_read(dir, &read, errmsg));
    ASSERT_STR_EQ(read.endpoint, "http://127.0.0.1:8080");
    ASSERT_STR_EQ(read.token, "tok-123");
    ASSERT_STR_EQ(read.user, "ann");
    snprintf(f->path, sizeof(f->path), "%s/config", dir);
    ASSERT_EQ(stat(f->path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_EQ(stat(dir, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0700);
    /* Logout clears the token and keeps the rest; no temp file is left. */
    config.token[0] = '\0';
    ASSERT_OK(cl_config_write(dir, &config, errmsg));
    ASSERT_OK(cl_config_read(dir, &read, errmsg));
    ASSERT_STR_EQ(read.token, "");
    ASSERT_STR_EQ(read.endpoint, "http://127.0.0.1:8080");
    snprintf(f->path, sizeof(f->path), "%s/config.tmp%ld", dir, (long)getpid());
    ASSERT_NE(access(f->path, F_OK), 0);
}

TEST(config, refuses_bad_files, setup, teardown)
{
    struct fixture *f = data;
    struct cl_config config = {0};
    char errmsg[CN_ERRMSG_SIZE];

    snprintf(f->path, sizeof(f->path), "%s/config", f->dir);
    /* Readable by others: a token there may have leaked; refuse, say why. */
    write_file(f->path, "[cairn]\ntoken = t\n", 0644);
    ASSERT_ERR(cl_config_read(f->dir, &config, errmsg), CAIRN_EPERM);
    ASSERT_TRUE(strstr(errmsg, "chmod 600") != NULL);
    /* A typo is named, not ignored. */
    write_file(f->path, "[cairn]\nendpont = http://x\n", 0600);
    ASSERT_ERR(cl_config_read(f->dir, &config, errmsg), CAIRN_EINVAL);
    ASSERT_TRUE(strstr(errmsg, "endpont") != NULL);
    write_file(f->path, "[cairn\n", 0600);
    ASSERT_ERR(cl_config_read(f->dir, &config, errmsg), CAIRN_EINVAL);
    /* A value with a line break would forge a key: never written. */
    snprintf(config.token, sizeof(config.token), "t\nendpoint = http://evil");
    ASSERT_ERR(cl_config_write(f->dir, &config, errmsg), CAIRN_EINVAL);
}

TEST(record, keys, NULL, NULL)
{
    const char *a[] = {"ab", "c"}, *b[] = {"a", "bc"}, *c[] = {"ab", "c"};
    char ka[65], kb[65], kc[65];

    cl_record_key(a, 2, ka);
    cl_record_key(b, 2, kb);
    cl_record_key(c, 2, kc);
    ASSERT_EQ(strlen(ka), 64);
    ASSERT_STR_EQ(ka, kc);
    ASSERT_TRUE(strcmp(ka, kb) != 0);
}

TEST(record, write_read_remove, setup, teardown)
{
    struct fixture *f = data;
    char out[64], small[8];
    struct stat st;

    ASSERT_ERR(cl_record_read(f->dir, "uploads", "k1", out, sizeof(out)), CAIRN_ENOENT);
    ASSERT_OK(cl_record_write(f->dir, "uploads", "k1", "http://h/v1/uploads/ab"));
    ASSERT_OK(cl_record_read(f->dir, "uploads", "k1", out, sizeof(out)));
    ASSERT_STR_EQ(out, "http://h/v1/uploads/ab");
    snprintf(f->path, sizeof(f->path), "%s/uploads/k1", f->dir);
    ASSERT_EQ(stat(f->path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0600);
    /* Too small a buffer cuts the line; it is never overrun. */
    ASSERT_OK(cl_record_read(f->dir, "uploads", "k1", small, sizeof(small)));
    ASSERT_EQ(strlen(small), 7);
    ASSERT_ERR(cl_record_write(f->dir, "uploads", "k2", "a\nb"), CAIRN_EINVAL);
    cl_record_remove(f->dir, "uploads", "k1");
    ASSERT_ERR(cl_record_read(f->dir, "uploads", "k1", out, sizeof(out)), CAIRN_ENOENT);
    /* An empty record is no record. */
    write_file(f->path, "\n", 0600);
    ASSERT_ERR(cl_record_read(f->dir, "uploads", "k1", out, sizeof(out)), CAIRN_ENOENT);
}

TEST(record, prune_old, setup, teardown)
{
    struct fixture *f = data;
    const char *parts[] = {"x"};
    char fresh[65], old[65], out[64];
    struct utimbuf week_ago = {.actime = time(NULL) - 8 * 24 * 3600,
                               .modtime = time(NULL) - 8 * 24 * 3600};

    ASSERT_EQ(cl_record_prune(f->dir, "uploads", 3600), 0); /* no folder yet */
    cl_record_key(parts, 1, fresh);
    parts[0] = "y";
    cl_record_key(parts, 1, old);
    ASSERT_OK(cl_record_write(f->dir, "uploads", fresh, "http://h/v1/uploads/1"));
    ASSERT_OK(cl_record_write(f->dir, "uploads", old, "http://h/v1/uploads/2"));
    snprintf(f->path, sizeof(f->path), "%s/uploads/%s", f->dir, old);
    ASSERT_EQ(utime(f->path, &week_ago), 0);
    /* A file that is not a record is left alone, however old. */
    snprintf(f->path, sizeof(f->path), "%s/uploads/notes.txt", f->dir);
    write_file(f->path, "mine\n", 0600);
    ASSERT_EQ(utime(f->path, &week_ago), 0);
    ASSERT_EQ(cl_record_prune(f->dir, "uploads", 7 * 24 * 3600), 1);
    ASSERT_OK(cl_record_read(f->dir, "uploads", fresh, out, sizeof(out)));
    ASSERT_ERR(cl_record_read(f->dir, "uploads", old, out, sizeof(out)), CAIRN_ENOENT);
    ASSERT_EQ(access(f->path, F_OK), 0);
}
