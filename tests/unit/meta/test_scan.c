/* Scans over a group's tables: the chunk index, page by page. */
#include "fixture.h"

static int record(struct fixture *f, uint8_t first_byte, uint8_t last_byte)
{
    Cairn__Cmd__ChunkRecord op = CAIRN__CMD__CHUNK_RECORD__INIT;
    Cairn__Cmd__Chunk chunk = CAIRN__CMD__CHUNK__INIT;
    uint8_t id[META_CHUNK_ID_SIZE] = {first_byte};

    id[META_CHUNK_ID_SIZE - 1] = last_byte;
    chunk.id.data = id;
    chunk.id.len = sizeof(id);
    chunk.size = 1000u + first_byte;
    chunk.stored_size = 500;
    chunk.data_shards = 2;
    chunk.parity_shards = 1;
    op.chunk = &chunk;
    return OP(f, chunk_record, CHUNK_RECORD, &op);
}

struct seen {
    uint8_t ids[64][META_CHUNK_ID_SIZE];
    unsigned count;
    unsigned stop_after; /* 0: never stop */
};

static int collect(void *data, const Cairn__Cmd__Chunk *chunk)
{
    struct seen *seen = data;

    CN_ASSERT(chunk->id.len == META_CHUNK_ID_SIZE && seen->count < 64);
    memcpy(seen->ids[seen->count++], chunk->id.data, META_CHUNK_ID_SIZE);
    return seen->stop_after != 0 && seen->count == seen->stop_after ? CAIRN_ECANCELED : 0;
}

TEST(scan, chunks_in_pages, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct seen all = {0}, page = {0};
    const uint8_t *after = NULL;
    bool more;

    ASSERT_OK(meta_list_chunks(f->sm, NULL, 10, collect, &all, &more));
    ASSERT_EQ(all.count, 0);
    ASSERT_FALSE(more);
    /* Recorded out of order; listed in id order. */
    static const uint8_t firsts[] = {0x90, 0x10, 0xff, 0x00, 0x55, 0x56, 0x10};
    for (unsigned i = 0; i < sizeof(firsts); i++) {
        ASSERT_OK(record(f, firsts[i], (uint8_t)i));
    }
    ASSERT_OK(meta_list_chunks(f->sm, NULL, 100, collect, &all, &more));
    ASSERT_EQ(all.count, 7);
    ASSERT_FALSE(more);
    for (unsigned i = 1; i < all.count; i++) {
        ASSERT_TRUE(memcmp(all.ids[i - 1], all.ids[i], META_CHUNK_ID_SIZE) < 0);
    }
    /* Pages of 3 resume after the last id seen and visit every chunk once. */
    for (unsigned pages = 0;; pages++) {
        unsigned before = page.count;
        ASSERT_TRUE(pages < 4);
        ASSERT_OK(meta_list_chunks(f->sm, after, 3, collect, &page, &more));
        ASSERT_TRUE(page.count - before <= 3);
        after = page.ids[page.count - 1];
        if (!more) {
            break;
        }
    }
    ASSERT_EQ(page.count, all.count);
    ASSERT_EQ(memcmp(page.ids, all.ids, sizeof(page.ids[0]) * all.count), 0);
    /* After the last id: nothing; a page that ends exactly at the end says so. */
    page.count = 0;
    ASSERT_OK(meta_list_chunks(f->sm, all.ids[6], 3, collect, &page, &more));
    ASSERT_EQ(page.count, 0);
    ASSERT_FALSE(more);
    ASSERT_OK(meta_list_chunks(f->sm, all.ids[3], 3, collect, &page, &more));
    ASSERT_EQ(page.count, 3);
    ASSERT_FALSE(more);
    /* A callback's error stops the walk and is returned. */
    page = (struct seen){.stop_after = 2};
    ASSERT_ERR(meta_list_chunks(f->sm, NULL, 100, collect, &page, &more), CAIRN_ECANCELED);
    ASSERT_EQ(page.count, 2);
}

TEST(scan, chunks_of_other_groups_are_not_listed, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct meta_sm *other;
    struct seen seen = {0};
    bool more;

    ASSERT_OK(record(f, 0x42, 1));
    ASSERT_OK(meta_sm_new(f->store, 99, NULL, &other));
    ASSERT_OK(meta_list_chunks(other, NULL, 10, collect, &seen, &more));
    ASSERT_EQ(seen.count, 0);
    meta_sm_free(other);
    ASSERT_OK(meta_list_chunks(f->sm, NULL, 10, collect, &seen, &more));
    ASSERT_EQ(seen.count, 1);
}

TEST(scan, store_failure_is_reported, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct seen seen = {0};
    bool more;

    ASSERT_OK(record(f, 0x42, 1));
    cn_fault_arm(meta_sm_fault(f->sm), 1, 1);
    ASSERT_ERR(meta_list_chunks(f->sm, NULL, 10, collect, &seen, &more), CAIRN_EIO);
}
