/*
 * The shard store: put/get/range/delete/iterate/usage; torn, rotten and
 * misnamed shards are CAIRN_ECORRUPT, never data; concurrent puts (group
 * commit) all land; the lock keeps a second process out; and a child
 * SIGKILLed in the middle of a stream of puts loses no acknowledged shard;
 * each failing disk call leaves the store consistent; and a quarantined
 * shard is moved aside whole, never served or listed, and counted apart.
 */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "stor_int.h"

#define CHUNK_COUNT 40

struct fixture {
    char *dir;
    struct stor_store *store;
    struct stor_keys keys;
    struct helper_stream stream; /* CHUNK_COUNT chunks of 2+1 shards */
};

static void make_stream(struct fixture *f)
{
    struct stor_codec_config config = {.keys = &f->keys, .k = 2, .m = 1, .compress = true};
    struct stor_codec *codec;
    struct stor_chunk chunk;

    CN_ASSERT(stor_codec_new(&config, &codec) == 0);
    for (unsigned c = 0; c < CHUNK_COUNT; c++) {
        uint8_t *plain = helper_random(1000 + c, 3000 + c * 100);

        CN_ASSERT(stor_codec_encode(codec, plain, 3000 + c * 100, &chunk) == 0);
        CN_ASSERT(helper_stream_cb(&f->stream, &chunk) == 0);
        free(plain);
    }
    stor_codec_free(codec);
}

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));
    char errmsg[CN_ERRMSG_SIZE];

    f->dir = cn_test_tmpdir();
    helper_keys(&f->keys, 31);
    make_stream(f);
    CN_ASSERT(stor_store_open(f->dir, &f->store, errmsg) == 0);
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    stor_store_close(f->store);
    helper_stream_close(&f->stream);
    cn_test_rmdir(f->dir);
    free(f->dir);
    free(f);
}

static const struct helper_chunk *chunk_at(struct fixture *f, unsigned c)
{
    return &f->stream.chunks[c];
}

static void shard_file(struct fixture *f, unsigned c, unsigned index, char *path, size_t size)
{
    char hex[2 * STOR_ID_SIZE + 1];

    cn_hex_encode(chunk_at(f, c)->id.bytes, STOR_ID_SIZE, hex);
    snprintf(path, size, "%s/shards/%.2s/%s.%u", f->dir, hex, hex, index);
}

static void put_chunk(struct fixture *f, unsigned c)
{
    for (unsigned i = 0; i < chunk_at(f, c)->shard_count; i++) {
        ASSERT_OK(stor_store_put(f->store, chunk_at(f, c)->shards[i], chunk_at(f, c)->shard_size));
    }
}

static void assert_shard_intact(struct fixture *f, unsigned c, unsigned index)
{
    struct cn_buf buf;

    cn_buf_init(&buf);
    ASSERT_OK(stor_store_get(f->store, &chunk_at(f, c)->id, index, &buf));
    ASSERT_EQ(buf.len, chunk_at(f, c)->shard_size);
    ASSERT_MEM_EQ(buf.base, chunk_at(f, c)->shards[index], buf.len);
    cn_buf_close(&buf);
}

TEST(store, put_get_delete, setup, teardown)
{
    struct fixture *f = data;
    struct cn_buf buf;

    cn_buf_init(&buf);
    put_chunk(f, 0);
    for (unsigned i = 0; i < 3; i++) {
        assert_shard_intact(f, 0, i);
    }
    put_chunk(f, 0); /* A second put of the same shards replaces them. */
    assert_shard_intact(f, 0, 2);
    ASSERT_OK(stor_store_delete(f->store, &chunk_at(f, 0)->id, 1));
    ASSERT_ERR(stor_store_get(f->store, &chunk_at(f, 0)->id, 1, &buf), CAIRN_ENOENT);
    ASSERT_ERR(stor_store_delete(f->store, &chunk_at(f, 0)->id, 1), CAIRN_ENOENT);
    ASSERT_ERR(stor_store_get(f->store, &chunk_at(f, 1)->id, 0, &buf), CAIRN_ENOENT);
    assert_shard_intact(f, 0, 0);
    cn_buf_close(&buf);
}

/* Flips a byte near the end of shard index of chunk c on disk (its CRC
 * then fails): rot, as a disk would. */
static void rot_shard(struct fixture *f, unsigned c, unsigned index)
{
    char path[512];
    FILE *file;
    int byte;

    shard_file(f, c, index, path, sizeof(path));
    file = fopen(path, "r+b");
    ASSERT_TRUE(file != NULL);
    ASSERT_EQ(fseek(file, -3, SEEK_END), 0);
    byte = fgetc(file);
    ASSERT_EQ(fseek(file, -3, SEEK_END), 0);
    fputc(byte ^ 0x5a, file);
    ASSERT_EQ(fclose(file), 0);
}

TEST(store, another_encoding_never_replaces_a_shard, setup, teardown)
{
    struct fixture *f = data;
    const struct helper_chunk *c0 = chunk_at(f, 0);
    struct stor_codec_config config = {.keys = &f->keys, .k = 1, .m = 0, .compress = true};
    struct stor_codec *codec;
    struct stor_chunk other;
    uint8_t *plain = helper_random(1000, 3000); /* chunk 0's bytes */

    put_chunk(f, 0);
    /* The same chunk encoded 1+0 (a smaller cluster, another key version):
     * its shard 0 has the name of the 2+1 shard 0 but other bytes. */
    ASSERT_OK(stor_codec_new(&config, &codec));
    ASSERT_OK(stor_codec_encode(codec, plain, 3000, &other));
    ASSERT_MEM_EQ(other.id.bytes, c0->id.bytes, STOR_ID_SIZE);
    ASSERT_ERR(stor_store_put(f->store, other.shards[0], other.shard_size), CAIRN_ECONFLICT);
    assert_shard_intact(f, 0, 0); /* the 2+1 set still agrees */
    /* A corrupt or missing shard of that name is replaced (repair in place). */
    rot_shard(f, 0, 1);
    ASSERT_OK(stor_store_put(f->store, c0->shards[1], c0->shard_size));
    assert_shard_intact(f, 0, 1);
    ASSERT_OK(stor_store_delete(f->store, &c0->id, 0));
    ASSERT_OK(stor_store_put(f->store, other.shards[0], other.shard_size));
    stor_codec_free(codec);
    free(plain);
}

TEST(store, get_range, setup, teardown)
{
    struct fixture *f = data;
    const struct helper_chunk *chunk = chunk_at(f, 3);
    size_t payload = chunk->shard_size - STOR_SHARD_HEADER_SIZE;
    uint8_t out[100];

    put_chunk(f, 3);
    ASSERT_OK(stor_store_get_range(f->store, &chunk->id, 1, 10, 100, out));
    ASSERT_MEM_EQ(out, chunk->shards[1] + STOR_SHARD_HEADER_SIZE + 10, 100);
    ASSERT_OK(stor_store_get_range(f->store, &chunk->id, 1, payload - 1, 1, out));
    ASSERT_OK(stor_store_get_range(f->store, &chunk->id, 1, payload, 0, out));
    ASSERT_ERR(stor_store_get_range(f->store, &chunk->id, 1, payload - 1, 2, out), CAIRN_ERANGE);
    ASSERT_ERR(stor_store_get_range(f->store, &chunk->id, 1, UINT64_MAX, 1, out), CAIRN_ERANGE);
}

TEST(store, corrupt_put_refused, setup, teardown)
{
    struct fixture *f = data;
    const struct helper_chunk *chunk = chunk_at(f, 0);
    struct stor_store_usage usage;

    chunk->shards[0][STOR_SHARD_HEADER_SIZE] ^= 1;
    ASSERT_ERR(stor_store_put(f->store, chunk->shards[0], chunk->shard_size), CAIRN_ECORRUPT);
    chunk->shards[0][STOR_SHARD_HEADER_SIZE] ^= 1;
    ASSERT_ERR(stor_store_put(f->store, chunk->shards[0], 10), CAIRN_ECORRUPT);
    ASSERT_OK(stor_store_usage(f->store, &usage));
    ASSERT_EQ(usage.shard_count, 0);
}

struct seen {
    struct fixture *f;
    unsigned count;
    uint64_t bytes;
};

static int seen_cb(void *data, const struct stor_id *id, unsigned index, uint64_t size)
{
    struct seen *seen = data;
    bool known = false;

    for (unsigned c = 0; c < CHUNK_COUNT && !known; c++) {
        known = memcmp(chunk_at(seen->f, c)->id.bytes, id->bytes, STOR_ID_SIZE) == 0 &&
                size == chunk_at(seen->f, c)->shard_size;
    }
    CN_ASSERT(known);
    CN_ASSERT(index < 3);
    seen->count++;
    seen->bytes += size;
    return 0;
}

static int stop_cb(void *data, const struct stor_id *id, unsigned index, uint64_t size)
{
    (void)data;
    (void)id;
    (void)index;
    (void)size;
    return CAIRN_ECANCELED;
}

TEST(store, iterate_and_usage, setup, teardown)
{
    struct fixture *f = data;
    struct stor_store_usage usage;
    struct seen seen = {.f = f};
    uint64_t bytes = 0;

    for (unsigned c = 0; c < 5; c++) {
        put_chunk(f, c);
        bytes += 3 * chunk_at(f, c)->shard_size;
    }
    ASSERT_OK(stor_store_iterate(f->store, seen_cb, &seen));
    ASSERT_EQ(seen.count, 15);
    ASSERT_EQ(seen.bytes, bytes);
    ASSERT_ERR(stor_store_iterate(f->store, stop_cb, NULL), CAIRN_ECANCELED);
    ASSERT_OK(stor_store_usage(f->store, &usage));
    ASSERT_EQ(usage.shard_count, 15);
    ASSERT_EQ(usage.shard_bytes, bytes);
    ASSERT_CMP(usage.disk_total, >, 0);
    ASSERT_CMP(usage.disk_free, <=, usage.disk_total);
}

TEST(store, torn_and_rotten_shards_are_corrupt, setup, teardown)
{
    struct fixture *f = data;
    char path[1024];
    char other[1024];
    struct cn_buf buf;
    FILE *file;

    cn_buf_init(&buf);
    put_chunk(f, 4);
    put_chunk(f, 5);
    shard_file(f, 4, 0, path, sizeof(path));
    ASSERT_OK(truncate(path, (off_t)chunk_at(f, 4)->shard_size - 7)); /* torn */
    ASSERT_ERR(stor_store_get(f->store, &chunk_at(f, 4)->id, 0, &buf), CAIRN_ECORRUPT);
    ASSERT_EQ(buf.len, 0);
    ASSERT_OK(truncate(path, 0));
    ASSERT_ERR(stor_store_get(f->store, &chunk_at(f, 4)->id, 0, &buf), CAIRN_ECORRUPT);
    shard_file(f, 4, 1, path, sizeof(path));
    file = fopen(path, "r+");
    ASSERT_TRUE(file != NULL);
    fseek(file, 200, SEEK_SET);
    fputc(0xee, file); /* rot */
    fclose(file);
    ASSERT_ERR(stor_store_get(f->store, &chunk_at(f, 4)->id, 1, &buf), CAIRN_ECORRUPT);
    /* A good shard under another shard's name. */
    shard_file(f, 5, 0, path, sizeof(path));
    shard_file(f, 5, 1, other, sizeof(other));
    ASSERT_OK(rename(path, other));
    ASSERT_ERR(stor_store_get(f->store, &chunk_at(f, 5)->id, 1, &buf), CAIRN_ECORRUPT);
    assert_shard_intact(f, 4, 2);
    cn_buf_close(&buf);
}

TEST(store, lock_and_temporaries, setup, teardown)
{
    struct fixture *f = data;
    struct stor_store *second;
    char errmsg[CN_ERRMSG_SIZE];
    char path[1024];
    struct stat st;
    FILE *file;

    put_chunk(f, 6);
    ASSERT_ERR(stor_store_open(f->dir, &second, errmsg), CAIRN_ELOCKED);
    shard_file(f, 6, 0, path, sizeof(path));
    strcat(path, ".tmp.99");
    file = fopen(path, "w");
    ASSERT_TRUE(file != NULL);
    fputs("half a shard", file);
    fclose(file);
    stor_store_close(f->store);
    ASSERT_OK(stor_store_open(f->dir, &f->store, errmsg));
    ASSERT_ERR(stat(path, &st), -1); /* The interrupted put's file is gone... */
    assert_shard_intact(f, 6, 0);    /* ...and the real shards are still there. */
}

struct putter {
    struct fixture *f;
    unsigned first;
    int rv;
};

static void *putter_main(void *arg)
{
    struct putter *p = arg;

    for (unsigned c = p->first; c < CHUNK_COUNT && p->rv == 0; c += 4) {
        for (unsigned i = 0; i < 3 && p->rv == 0; i++) {
            p->rv = stor_store_put(p->f->store, chunk_at(p->f, c)->shards[i],
                                   chunk_at(p->f, c)->shard_size);
        }
    }
    return NULL;
}

TEST(store, concurrent_puts, setup, teardown)
{
    struct fixture *f = data;
    struct putter putters[4];
    pthread_t threads[4];

    for (unsigned t = 0; t < 4; t++) {
        putters[t] = (struct putter){f, t, 0};
        ASSERT_EQ(pthread_create(&threads[t], NULL, putter_main, &putters[t]), 0);
    }
    for (unsigned t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        ASSERT_OK(putters[t].rv);
    }
    for (unsigned c = 0; c < CHUNK_COUNT; c++) {
        for (unsigned i = 0; i < 3; i++) {
            assert_shard_intact(f, c, i);
        }
    }
}

/* The child: puts every shard, writing each one's number to fd once put returned. */
static _Noreturn void child_put_loop(struct fixture *f, int fd)
{
    struct stor_store *store;
    char errmsg[CN_ERRMSG_SIZE];

    if (stor_store_open(f->dir, &store, errmsg) != 0) {
        _exit(2);
    }
    for (uint32_t round = 0;; round++) {
        for (uint32_t n = 0; n < CHUNK_COUNT * 3; n++) {
            const struct helper_chunk *chunk = chunk_at(f, n / 3);

            if (stor_store_put(store, chunk->shards[n % 3], chunk->shard_size) != 0 ||
                write(fd, &n, sizeof(n)) != sizeof(n)) {
                _exit(3);
            }
        }
    }
}

TEST(store, kill_9_loses_no_acknowledged_shard, setup, teardown)
{
    struct fixture *f = data;
    bool acked[CHUNK_COUNT * 3] = {false};
    char errmsg[CN_ERRMSG_SIZE];
    unsigned ack_count = 0;
    struct cn_buf buf;
    int fds[2];
    uint32_t n;
    pid_t pid;
    int status;

    stor_store_close(f->store); /* The child opens it. */
    f->store = NULL;
    ASSERT_OK(pipe(fds));
    pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_put_loop(f, fds[1]);
    }
    close(fds[1]);
    /* Let it put a good part of the stream, then kill it mid-put. */
    while (ack_count < CHUNK_COUNT * 3 / 2 && read(fds[0], &n, sizeof(n)) == sizeof(n)) {
        acked[n] = true;
        ack_count++;
    }
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    while (read(fds[0], &n, sizeof(n)) == sizeof(n)) {
        acked[n] = true; /* Acknowledged just before the kill. */
    }
    close(fds[0]);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    ASSERT_OK(stor_store_open(f->dir, &f->store, errmsg));
    cn_buf_init(&buf);
    for (n = 0; n < CHUNK_COUNT * 3; n++) {
        int rv = stor_store_get(f->store, &chunk_at(f, n / 3)->id, n % 3, &buf);

        if (acked[n]) {
            ASSERT_OK(rv);
            assert_shard_intact(f, n / 3, n % 3);
        } else {
            ASSERT_ERR(rv, CAIRN_ENOENT); /* Never a torn shard served. */
        }
    }
    cn_buf_close(&buf);
}

static bool folder_has_temporaries(struct fixture *f, const struct stor_id *id)
{
    char path[1024];
    struct dirent *entry;
    bool found = false;
    DIR *dir;

    snprintf(path, sizeof(path), "%s/shards/%02x", f->dir, id->bytes[0]);
    dir = opendir(path);
    CN_ASSERT(dir != NULL);
    while ((entry = readdir(dir)) != NULL) {
        found = found || strstr(entry->d_name, ".tmp.") != NULL;
    }
    closedir(dir);
    return found;
}

/*
 * Fails each disk call of a put in turn (create, write, datasync, rename,
 * folder fsync): the put reports CAIRN_EIO, leaves no temporary file, and the
 * shard under its name is the old one or the new one, whole. Then a delete.
 */
TEST(store, every_disk_fault_is_clean, setup, teardown)
{
    struct fixture *f = data;
    /* Another key version: the same chunk under the same name, other bytes. */
    struct stor_keys keys_v2 = f->keys;
    struct stor_codec_config config = {.keys = &keys_v2, .k = 2, .m = 1, .compress = true};
    const struct helper_chunk *old = chunk_at(f, 7);
    uint8_t *plain = helper_random(1000 + 7, 3000 + 7 * 100);
    char errmsg[CN_ERRMSG_SIZE];
    struct stor_codec *codec;
    struct stor_chunk fresh; /* Same chunk, another key version: same name, other bytes */
    struct cn_fault fault;
    struct cn_buf buf;
    int nth;
    int rv;

    cn_buf_init(&buf);
    keys_v2.key_version++;
    ASSERT_OK(stor_codec_new(&config, &codec));
    ASSERT_OK(stor_codec_encode(codec, plain, 3000 + 7 * 100, &fresh));
    ASSERT_MEM_EQ(fresh.id.bytes, old->id.bytes, STOR_ID_SIZE);
    ASSERT_TRUE(memcmp(fresh.shards[0], old->shards[0], old->shard_size) != 0);
    cn_fault_init(&fault);
    for (nth = 1;; nth++) {
        int got;

        /* A rotten copy of the old shard under the name: a put replaces it
         * (a valid shard of another encoding it would refuse). */
        rv = stor_store_delete(f->store, &old->id, 0); /* what the last round left */
        ASSERT_TRUE(rv == 0 || rv == CAIRN_ENOENT);
        ASSERT_OK(stor_store_put(f->store, old->shards[0], old->shard_size));
        rot_shard(f, 7, 0);
        cn_fault_arm(&fault, nth, 1);
        stor__store_set_fault(f->store, &fault);
        rv = stor_store_put(f->store, fresh.shards[0], fresh.shard_size);
        stor__store_set_fault(f->store, NULL);
        got = stor_store_get(f->store, &old->id, 0, &buf);
        ASSERT_FALSE(folder_has_temporaries(f, &old->id));
        if (cn_fault_hits(&fault) == 0) {
            ASSERT_OK(rv);
            ASSERT_OK(got);
            ASSERT_MEM_EQ(buf.base, fresh.shards[0], fresh.shard_size);
            break; /* Every fault point has now failed once. */
        }
        ASSERT_ERR(rv, CAIRN_EIO);
        /* The rotten old one (never served) or the new one, whole. */
        ASSERT_TRUE(got == CAIRN_ECORRUPT ||
                    (got == 0 && memcmp(buf.base, fresh.shards[0], fresh.shard_size) == 0));

        /* A failed folder fsync leaves the store refusing puts: reopen it. */
        stor_store_close(f->store);
        ASSERT_OK(stor_store_open(f->dir, &f->store, errmsg));
    }
    ASSERT_EQ(nth, 6); /* create, write, datasync, rename, folder fsync */
    cn_fault_arm(&fault, 1, 1);
    stor__store_set_fault(f->store, &fault);
    ASSERT_ERR(stor_store_delete(f->store, &old->id, 0), CAIRN_EIO);
    stor__store_set_fault(f->store, NULL);
    ASSERT_OK(stor_store_get(f->store, &old->id, 0, &buf));
    stor_codec_free(codec);
    cn_buf_close(&buf);
    free(plain);
}

/* The files in DIR/quarantine: how many, and whether one holds exactly bytes[0..len). */
static unsigned quarantine_files(struct fixture *f, const uint8_t *bytes, size_t len, bool *found)
{
    char path[1024];
    struct dirent *entry;
    unsigned count = 0;
    DIR *dir;

    snprintf(path, sizeof(path), "%s/quarantine", f->dir);
    dir = opendir(path);
    CN_ASSERT(dir != NULL);
    *found = false;
    while ((entry = readdir(dir)) != NULL) {
        FILE *file;
        uint8_t *contents = cn_xmalloc(len + 1);
        size_t n;

        if (entry->d_name[0] == '.') {
            free(contents);
            continue;
        }
        count++;
        snprintf(path, sizeof(path), "%s/quarantine/%s", f->dir, entry->d_name);
        file = fopen(path, "rb");
        CN_ASSERT(file != NULL);
        n = fread(contents, 1, len + 1, file);
        fclose(file);
        *found = *found || (n == len && memcmp(contents, bytes, len) == 0);
        free(contents);
    }
    closedir(dir);
    return count;
}

/*
 * A rotten shard quarantined: no longer served, listed or counted as a shard,
 * kept whole in the quarantine folder and counted there, across a reopen; a
 * second quarantine of the repaired shard keeps both copies.
 */
TEST(store, quarantine_moves_aside, setup, teardown)
{
    struct fixture *f = data;
    const struct helper_chunk *chunk = chunk_at(f, 6);
    uint8_t *rotten = cn_xmalloc(chunk->shard_size);
    struct stor_store_usage usage;
    struct seen seen = {.f = f};
    char errmsg[CN_ERRMSG_SIZE];
    char path[1024];
    struct cn_buf buf;
    bool found = false;
    FILE *file;

    cn_buf_init(&buf);
    put_chunk(f, 6);
    memcpy(rotten, chunk->shards[1], chunk->shard_size);
    rotten[300] ^= 0x10;
    shard_file(f, 6, 1, path, sizeof(path));
    file = fopen(path, "r+");
    ASSERT_TRUE(file != NULL);
    fseek(file, 300, SEEK_SET);
    fputc(rotten[300], file);
    fclose(file);
    ASSERT_ERR(stor_store_get(f->store, &chunk->id, 1, &buf), CAIRN_ECORRUPT);

    ASSERT_OK(stor_store_quarantine(f->store, &chunk->id, 1));
    ASSERT_ERR(stor_store_get(f->store, &chunk->id, 1, &buf), CAIRN_ENOENT);
    ASSERT_ERR(stor_store_quarantine(f->store, &chunk->id, 1), CAIRN_ENOENT);
    ASSERT_ERR(stor_store_delete(f->store, &chunk->id, 1), CAIRN_ENOENT);
    ASSERT_OK(stor_store_iterate(f->store, seen_cb, &seen));
    ASSERT_EQ(seen.count, 2);
    ASSERT_OK(stor_store_usage(f->store, &usage));
    ASSERT_EQ(usage.shard_count, 2);
    ASSERT_EQ(usage.shard_bytes, 2 * chunk->shard_size);
    ASSERT_EQ(usage.quarantined_count, 1);
    ASSERT_EQ(usage.quarantined_bytes, chunk->shard_size);
    ASSERT_EQ(quarantine_files(f, rotten, chunk->shard_size, &found), 1);
    ASSERT_TRUE(found);
    assert_shard_intact(f, 6, 0);
    assert_shard_intact(f, 6, 2);

    /* Repaired, then quarantined again (a good shard too: the caller decides). */
    ASSERT_OK(stor_store_put(f->store, chunk->shards[1], chunk->shard_size));
    assert_shard_intact(f, 6, 1);
    ASSERT_OK(stor_store_quarantine(f->store, &chunk->id, 1));
    ASSERT_EQ(quarantine_files(f, chunk->shards[1], chunk->shard_size, &found), 2);
    ASSERT_TRUE(found);

    /* Durable and still apart after a reopen (open cleans temporaries, not these). */
    stor_store_close(f->store);
    ASSERT_OK(stor_store_open(f->dir, &f->store, errmsg));
    ASSERT_OK(stor_store_usage(f->store, &usage));
    ASSERT_EQ(usage.shard_count, 2);
    ASSERT_EQ(usage.quarantined_count, 2);
    ASSERT_EQ(usage.quarantined_bytes, 2 * chunk->shard_size);
    ASSERT_ERR(stor_store_get(f->store, &chunk->id, 1, &buf), CAIRN_ENOENT);
    free(rotten);
    cn_buf_close(&buf);
}

/* The rename and the folder fsyncs of a quarantine each fail cleanly. */
TEST(store, quarantine_disk_faults, setup, teardown)
{
    struct fixture *f = data;
    const struct helper_chunk *chunk = chunk_at(f, 8);
    struct stor_store_usage usage;
    char errmsg[CN_ERRMSG_SIZE];
    struct cn_fault fault;
    struct cn_buf buf;

    cn_buf_init(&buf);
    put_chunk(f, 8);
    cn_fault_init(&fault);
    /* The rename fails: the shard stays where it was. */
    cn_fault_arm(&fault, 1, 1);
    stor__store_set_fault(f->store, &fault);
    ASSERT_ERR(stor_store_quarantine(f->store, &chunk->id, 0), CAIRN_EIO);
    stor__store_set_fault(f->store, NULL);
    assert_shard_intact(f, 8, 0);
    /* A folder fsync fails: moved, but the store refuses writes until reopened. */
    cn_fault_arm(&fault, 2, 1);
    stor__store_set_fault(f->store, &fault);
    ASSERT_ERR(stor_store_quarantine(f->store, &chunk->id, 0), CAIRN_EIO);
    stor__store_set_fault(f->store, NULL);
    ASSERT_ERR(stor_store_quarantine(f->store, &chunk->id, 1), CAIRN_EIO);
    ASSERT_ERR(stor_store_put(f->store, chunk->shards[0], chunk->shard_size), CAIRN_EIO);
    stor_store_close(f->store);
    ASSERT_OK(stor_store_open(f->dir, &f->store, errmsg));
    ASSERT_ERR(stor_store_get(f->store, &chunk->id, 0, &buf), CAIRN_ENOENT);
    ASSERT_OK(stor_store_usage(f->store, &usage));
    ASSERT_EQ(usage.quarantined_count, 1);
    assert_shard_intact(f, 8, 1);
    cn_buf_close(&buf);
}

/* ---- Ordered, pageable listing ---- */

#define FAKE_IDS 120

/* Shards under made-up ids (the store checks the format, not the content),
 * crowded into a few fan-out folders so that the order within one matters. */
struct listing {
    struct stor_shard_ref *expected; /* Sorted */
    size_t count;
};

static int ref_order(const void *a, const void *b)
{
    const struct stor_shard_ref *x = a;
    const struct stor_shard_ref *y = b;
    int order = memcmp(x->id.bytes, y->id.bytes, STOR_ID_SIZE);

    return order != 0 ? order : (x->index > y->index) - (x->index < y->index);
}

static void put_fake_shards(struct fixture *f, struct cn_rand *rand, struct listing *listing)
{
    static const uint8_t folders[] = {0x00, 0x00, 0x00, 0x7f, 0x7f, 0xff, 0xff, 0x31};
    const struct helper_chunk *model = chunk_at(f, 0);
    uint8_t *shard = cn_xmalloc(model->shard_size);
    struct stor_shard_header header;

    listing->expected = cn_xcalloc(FAKE_IDS * 3, sizeof(*listing->expected));
    listing->count = 0;
    for (unsigned n = 0; n < FAKE_IDS; n++) {
        struct stor_id id;
        uint64_t which = cn_rand_below(rand, 7) + 1; /* A non-empty subset of 0..2 */

        cn_rand_fill(rand, id.bytes, STOR_ID_SIZE);
        id.bytes[0] = folders[cn_rand_below(rand, CN_ARRAY_SIZE(folders))];
        if (n % 10 == 0) {
            id.bytes[0] = (uint8_t)cn_rand_below(rand, 256);
        }
        for (unsigned i = 0; i < 3; i++) {
            if (!(which & (1u << i))) {
                continue;
            }
            memcpy(shard, model->shards[i], model->shard_size);
            CN_ASSERT(stor_shard_parse(shard, model->shard_size, &header) == 0);
            header.id = id;
            stor__shard_header_write(shard, &header);
            ASSERT_OK(stor_store_put(f->store, shard, model->shard_size));
            listing->expected[listing->count++] =
                (struct stor_shard_ref){.id = id, .index = i, .size = model->shard_size};
        }
    }
    qsort(listing->expected, listing->count, sizeof(*listing->expected), ref_order);
    free(shard);
}

/* Pages through the whole store with limit; returns every ref, in listing order. */
static struct stor_shard_ref *list_all(struct fixture *f, size_t limit, size_t *total)
{
    struct stor_shard_ref *all = NULL;
    struct stor_shard_ref *page = cn_xcalloc(limit, sizeof(*page));
    size_t cap = 0;
    size_t count = 0;
    bool more = true;

    *total = 0;
    for (unsigned pages = 0; more; pages++) {
        ASSERT_CMP(pages, <, 100000u);
        ASSERT_OK(stor_store_list(f->store, *total > 0 ? &all[*total - 1] : NULL, page, limit,
                                  &count, &more));
        ASSERT_CMP(count, <=, limit);
        if (count < limit) {
            ASSERT_FALSE(more);
        }
        if (*total + count > cap) {
            cap = (*total + count) * 2;
            all = cn_xrealloc(all, cap * sizeof(*all));
        }
        memcpy(all + *total, page, count * sizeof(*page));
        *total += count;
        if (count == 0) {
            break;
        }
    }
    for (size_t i = 1; i < *total; i++) {
        ASSERT_CMP(ref_order(&all[i - 1], &all[i]), <, 0); /* Strictly increasing */
    }
    free(page);
    return all;
}

TEST(store, list_pages_in_order, setup, teardown)
{
    static const size_t limits[] = {1, 2, 7, 64, 1000};
    struct fixture *f = data;
    struct stor_shard_ref page[8];
    struct stor_shard_ref cursor;
    struct listing listing;
    struct cn_rand rand;
    char path[1024];
    FILE *file;
    size_t count = 0;
    size_t total = 0;
    bool more = true;

    ASSERT_OK(stor_store_list(f->store, NULL, page, 8, &count, &more));
    ASSERT_EQ(count, 0);
    ASSERT_FALSE(more);
    cn_rand_seed(&rand, cn_test_seed());
    put_fake_shards(f, &rand, &listing);
    /* Strays, temporaries and quarantined shards are never listed. */
    snprintf(path, sizeof(path), "%s/shards/00/junk", f->dir);
    file = fopen(path, "w");
    ASSERT_TRUE(file != NULL);
    fclose(file);
    snprintf(path, sizeof(path), "%s/shards/7f/%s", f->dir,
             "7f00000000000000000000000000000000000000000000000000000000000000.1.tmp.9");
    file = fopen(path, "w");
    ASSERT_TRUE(file != NULL);
    fclose(file);
    ASSERT_OK(stor_store_quarantine(f->store, &listing.expected[5].id, listing.expected[5].index));
    memmove(&listing.expected[5], &listing.expected[6],
            (listing.count - 6) * sizeof(*listing.expected));
    listing.count--;

    for (size_t l = 0; l < CN_ARRAY_SIZE(limits); l++) {
        struct stor_shard_ref *all = list_all(f, limits[l], &total);

        ASSERT_EQ(total, listing.count);
        ASSERT_MEM_EQ(all, listing.expected, total * sizeof(*all));
        free(all);
    }

    /* A cursor that names no shard: the listing resumes at the next one. */
    cursor = listing.expected[40];
    cursor.index = 17;
    ASSERT_OK(stor_store_list(f->store, &cursor, page, 8, &count, &more));
    ASSERT_EQ(count, 8);
    ASSERT_TRUE(more);
    for (size_t i = 41; i < listing.count && i < 49; i++) {
        if (ref_order(&listing.expected[i], &cursor) > 0) {
            ASSERT_TRUE(memcmp(&page[0], &listing.expected[i], sizeof(page[0])) == 0);
            break;
        }
    }
    memset(cursor.id.bytes, 0, STOR_ID_SIZE);
    cursor.index = 0;
    ASSERT_OK(stor_store_list(f->store, &cursor, page, 1, &count, &more));
    ASSERT_EQ(count, 1);
    ASSERT_MEM_EQ(&page[0], &listing.expected[0], sizeof(page[0]));
    /* The last one, exactly: one page, and no more. */
    cursor = listing.expected[listing.count - 2];
    ASSERT_OK(stor_store_list(f->store, &cursor, page, 1, &count, &more));
    ASSERT_EQ(count, 1);
    ASSERT_FALSE(more);
    memset(cursor.id.bytes, 0xff, STOR_ID_SIZE);
    cursor.index = 99;
    ASSERT_OK(stor_store_list(f->store, &cursor, page, 8, &count, &more));
    ASSERT_EQ(count, 0);
    ASSERT_FALSE(more);
    ASSERT_ERR(stor_store_list(f->store, NULL, page, 0, &count, &more), CAIRN_EINVAL);
    free(listing.expected);
}

/*
 * Listings while four threads put: every shard there before is listed
 * exactly once, in order; new ones at most once; and a listing after the puts
 * has them all.
 */
TEST(store, list_during_concurrent_puts, setup, teardown)
{
    struct fixture *f = data;
    struct putter putters[4];
    struct listing listing;
    struct cn_rand rand;
    pthread_t threads[4];
    size_t total = 0;

    cn_rand_seed(&rand, cn_test_seed());
    put_fake_shards(f, &rand, &listing);
    for (unsigned t = 0; t < 4; t++) {
        putters[t] = (struct putter){f, t, 0};
        ASSERT_EQ(pthread_create(&threads[t], NULL, putter_main, &putters[t]), 0);
    }
    for (unsigned round = 0; round < 6; round++) {
        struct stor_shard_ref *all = list_all(f, 1 + round * 3, &total);
        size_t found = 0;

        /* all is strictly increasing, so each expected ref is in it once at most. */
        for (size_t i = 0, j = 0; i < listing.count; i++) {
            while (j < total && ref_order(&all[j], &listing.expected[i]) < 0) {
                j++;
            }
            if (j < total && ref_order(&all[j], &listing.expected[i]) == 0) {
                found++;
            }
        }
        ASSERT_EQ(found, listing.count);
        ASSERT_CMP(total, <=, listing.count + CHUNK_COUNT * 3);
        free(all);
    }
    for (unsigned t = 0; t < 4; t++) {
        ASSERT_EQ(pthread_join(threads[t], NULL), 0);
        ASSERT_OK(putters[t].rv);
    }
    free(list_all(f, 10, &total));
    ASSERT_EQ(total, listing.count + CHUNK_COUNT * 3);
    free(listing.expected);
}
