/* Scrub on a real shard store, in-process: a shard whose file rots on disk
 * is found, removed (never served again) and counted once, while the
 * chunk's good shards stay; a stop wakes a scrub that is waiting on its
 * pacer; a rate of 0 starts nothing. */
#include <ftw.h>
#include <sys/stat.h>
#include <uv.h>

#include "node.h"
#include "test.h"

#define DEADLINE_MS 20000

struct fixture {
    char *dir;
    struct node node;
    struct stor_keys keys;
    struct stor_chunk chunk;
    struct stor_codec *codec;
    uint8_t plain[100000];
};

static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));
    struct stor_codec_config config = {.keys = &f->keys, .k = 2, .m = 1};
    struct cn_rand rand;
    char errmsg[CN_ERRMSG_SIZE];

    cn_rand_seed(&rand, cn_test_seed());
    cn_rand_fill(&rand, f->keys.master_key, sizeof(f->keys.master_key));
    cn_rand_fill(&rand, f->keys.dedup_key, sizeof(f->keys.dedup_key));
    f->keys.key_version = 1;
    cn_rand_fill(&rand, f->plain, sizeof(f->plain));
    f->dir = cn_test_tmpdir();
    f->node.clock = cn_clock_system();
    f->node.config.dir_count = 1;
    snprintf(f->node.config.dirs[0].path, sizeof(f->node.config.dirs[0].path), "%s", f->dir);
    ASSERT_OK(node__stores_open(&f->node, errmsg));
    ASSERT_OK(stor_codec_new(&config, &f->codec));
    ASSERT_OK(stor_codec_encode(f->codec, f->plain, sizeof(f->plain), &f->chunk));
    for (unsigned i = 0; i < 3; i++) {
        ASSERT_OK(
            stor_store_put(f->node.config.dirs[0].store, f->chunk.shards[i], f->chunk.shard_size));
    }
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    node__scrub_join(&f->node);
    node__stores_close(&f->node);
    stor_codec_free(f->codec);
    cn_test_rmdir(f->dir);
    free(f->dir);
    free(f);
}

/* nftw has no user pointer: the size looked for and the file found. */
static size_t wanted_size;
static char found_path[1024];

static int find_shard_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_F && (size_t)st->st_size == wanted_size && found_path[0] == '\0') {
        snprintf(found_path, sizeof(found_path), "%s", path);
    }
    return 0;
}

/* Flips one byte in the middle of one shard file. */
static void rot_one_shard(struct fixture *f)
{
    FILE *file;
    int c;

    wanted_size = f->chunk.shard_size;
    found_path[0] = '\0';
    ASSERT_EQ(nftw(f->dir, find_shard_file, 16, FTW_PHYS), 0);
    ASSERT_TRUE(found_path[0] != '\0');
    file = fopen(found_path, "r+b");
    ASSERT_TRUE(file != NULL);
    ASSERT_EQ(fseek(file, (long)wanted_size / 2, SEEK_SET), 0);
    c = fgetc(file);
    ASSERT_EQ(fseek(file, (long)wanted_size / 2, SEEK_SET), 0);
    ASSERT_EQ(fputc(c ^ 0x5a, file), c ^ 0x5a);
    ASSERT_EQ(fclose(file), 0);
}

static struct node_scrub_progress progress(struct fixture *f)
{
    struct node_scrub_progress p;

    node__scrub_progress(&f->node, &p);
    return p;
}

/* Polls until the scrub has completed `passes` passes; fails at the deadline. */
static void wait_passes(struct fixture *f, uint64_t passes)
{
    for (int waited_ms = 0; progress(f).passes_completed < passes; waited_ms += 10) {
        ASSERT_CMP(waited_ms, <, DEADLINE_MS);
        uv_sleep(10);
    }
}

TEST(scrub, corrupt_shard_removed_good_ones_kept, setup, teardown)
{
    struct fixture *f = data;
    struct stor_store *store = f->node.config.dirs[0].store;
    struct cn_buf shard;
    char errmsg[CN_ERRMSG_SIZE];
    unsigned missing = 0;

    rot_one_shard(f);
    f->node.config.scrub_rate = 1ull << 30;
    ASSERT_OK(node__scrub_start(&f->node, errmsg));
    ASSERT_TRUE(f->node.scrub != NULL);
    wait_passes(f, 2); /* the corrupt shard is gone after the first */
    struct node_scrub_progress p = progress(f);
    ASSERT_EQ(p.corrupt_total, 1);
    ASSERT_EQ(p.errors_total, 0);
    ASSERT_EQ(p.rate, 1ull << 30);
    ASSERT_CMP(p.shards_total, >=, 2 + 2); /* two good shards in each pass */
    cn_buf_init(&shard);
    for (unsigned i = 0; i < 3; i++) {
        int rv = stor_store_get(store, &f->chunk.id, i, &shard);
        if (rv == CAIRN_ENOENT) {
            missing++;
        } else {
            ASSERT_OK(rv);
            ASSERT_MEM_EQ(shard.base, f->chunk.shards[i], f->chunk.shard_size);
        }
    }
    cn_buf_close(&shard);
    ASSERT_EQ(missing, 1);
}

TEST(scrub, stop_wakes_a_scrub_waiting_on_its_pacer, setup, teardown)
{
    struct fixture *f = data;
    struct stor_chunk big;
    char errmsg[CN_ERRMSG_SIZE];
    uint8_t *plain = cn_xcalloc(1, STOR_CHUNK_SIZE_MAX);
    uint64_t start_ms;
    struct cn_rand rand;

    /* Three 2 MiB shards more: 6 MiB, over the pacer's burst (one largest
     * shard), so at 1 byte per second a pass leaves a debt of days. */
    cn_rand_seed(&rand, cn_test_seed() + 1);
    cn_rand_fill(&rand, plain, STOR_CHUNK_SIZE_MAX); /* incompressible: shards stay big */
    ASSERT_OK(stor_codec_encode(f->codec, plain, STOR_CHUNK_SIZE_MAX, &big));
    for (unsigned i = 0; i < 3; i++) {
        ASSERT_OK(stor_store_put(f->node.config.dirs[0].store, big.shards[i], big.shard_size));
    }
    free(plain);
    f->node.config.scrub_rate = 1;
    ASSERT_OK(node__scrub_start(&f->node, errmsg));
    for (int waited_ms = 0; progress(f).shards_total < 2; waited_ms += 10) {
        ASSERT_CMP(waited_ms, <, DEADLINE_MS);
        uv_sleep(10);
    }
    /* No debt before two big shards are read, and the pass cannot end
     * without one: by now it waits on the pacer. */
    uv_sleep(100);
    ASSERT_EQ(progress(f).passes_completed, 0);
    start_ms = uv_hrtime() / 1000000;
    node__scrub_join(&f->node);
    ASSERT_CMP(uv_hrtime() / 1000000 - start_ms, <, 5000);
    ASSERT_TRUE(f->node.scrub == NULL);
}

TEST(scrub, rate_zero_starts_nothing, setup, teardown)
{
    struct fixture *f = data;
    char errmsg[CN_ERRMSG_SIZE];

    f->node.config.scrub_rate = 0;
    ASSERT_OK(node__scrub_start(&f->node, errmsg));
    ASSERT_TRUE(f->node.scrub == NULL);
    ASSERT_EQ(progress(f).rate, 0);
    ASSERT_EQ(progress(f).pass, 0);
}

/* The default reserve a shard put leaves free (blocks.c): 1 %, clamped to
 * 256 MiB..4 GiB, never over a tenth of a small filesystem. */
TEST(reserve, auto_size_by_disk, NULL, NULL)
{
    const uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

    (void)data;
    ASSERT_EQ(node__reserve_auto(0), 0);
    ASSERT_EQ(node__reserve_auto(160 * MiB), 16 * MiB);  /* a tenth of a small disk */
    ASSERT_EQ(node__reserve_auto(4 * GiB), 256 * MiB);   /* the floor */
    ASSERT_EQ(node__reserve_auto(100 * GiB), 1 * GiB);   /* 1 % */
    ASSERT_EQ(node__reserve_auto(10240 * GiB), 4 * GiB); /* the cap */
}
