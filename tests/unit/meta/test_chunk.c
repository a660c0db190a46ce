/* The chunk index and upload sessions. */
#include "fixture.h"

static uint8_t chunk_id[META_CHUNK_ID_SIZE] = {0xc1, 0xc2};
static uint8_t upload_id[META_UPLOAD_ID_SIZE] = {0xab};

static int record_chunk(struct fixture *f, uint32_t size, uint64_t epoch)
{
    Cairn__Cmd__ChunkRecord op = CAIRN__CMD__CHUNK_RECORD__INIT;
    Cairn__Cmd__Chunk chunk = CAIRN__CMD__CHUNK__INIT;

    chunk.id.data = chunk_id;
    chunk.id.len = sizeof(chunk_id);
    chunk.size = size;
    chunk.stored_size = size / 2;
    chunk.data_shards = 4;
    chunk.parity_shards = 2;
    chunk.placement_epoch = epoch;
    op.chunk = &chunk;
    return OP(f, chunk_record, CHUNK_RECORD, &op);
}

TEST(chunk, record_lookup_touch, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__ChunkTouch touch = CAIRN__CMD__CHUNK_TOUCH__INIT;
    Cairn__Cmd__Chunk *chunk;

    ASSERT_ERR(meta_get_chunk(f->sm, chunk_id, &chunk), CAIRN_ENOENT);
    ASSERT_OK(record_chunk(f, 4096, 1));
    f->time_ms += 10;
    ASSERT_OK(record_chunk(f, 4096, 2)); /* again: placement moves, history stays */
    ASSERT_OK(meta_get_chunk(f->sm, chunk_id, &chunk));
    ASSERT_EQ(chunk->placement_epoch, 2);
    ASSERT_EQ(chunk->created_ms, T0);
    ASSERT_EQ(chunk->last_access_ms, T0 + 10);
    ASSERT_EQ(chunk->parity_shards, 2);
    meta_record_free(chunk);
    touch.chunk_id.data = chunk_id;
    touch.chunk_id.len = sizeof(chunk_id);
    touch.access_ms = T0 + 500;
    ASSERT_OK(OP(f, chunk_touch, CHUNK_TOUCH, &touch));
    touch.access_ms = T0 + 100; /* an older touch applied late changes nothing */
    ASSERT_OK(OP(f, chunk_touch, CHUNK_TOUCH, &touch));
    ASSERT_OK(meta_get_chunk(f->sm, chunk_id, &chunk));
    ASSERT_EQ(chunk->last_access_ms, T0 + 500);
    meta_record_free(chunk);
}

TEST(chunk, errors, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__ChunkRecord op = CAIRN__CMD__CHUNK_RECORD__INIT;
    Cairn__Cmd__ChunkTouch touch = CAIRN__CMD__CHUNK_TOUCH__INIT;

    ASSERT_ERR(OP(f, chunk_record, CHUNK_RECORD, &op), CAIRN_EINVAL); /* no chunk */
    ASSERT_ERR(record_chunk(f, 0, 1), CAIRN_EINVAL);
    touch.chunk_id.data = chunk_id;
    touch.chunk_id.len = 4;
    ASSERT_ERR(OP(f, chunk_touch, CHUNK_TOUCH, &touch), CAIRN_EINVAL);
    touch.chunk_id.len = sizeof(chunk_id);
    ASSERT_ERR(OP(f, chunk_touch, CHUNK_TOUCH, &touch), CAIRN_ENOENT);
}

static int upload_begin(struct fixture *f, uint64_t parent, const char *name, uint64_t expires_ms)
{
    Cairn__Cmd__UploadBegin op = CAIRN__CMD__UPLOAD_BEGIN__INIT;

    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.ns = NS;
    op.parent = parent;
    op.name = (char *)name;
    op.expires_ms = expires_ms;
    return OP(f, upload_begin, UPLOAD_BEGIN, &op);
}

static int upload_complete(struct fixture *f, uint64_t inode, uint64_t size)
{
    Cairn__Cmd__UploadComplete op = CAIRN__CMD__UPLOAD_COMPLETE__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;

    version.size = size;
    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.inode = inode;
    op.version = &version;
    return OP(f, upload_complete, UPLOAD_COMPLETE, &op);
}

static int upload_abort(struct fixture *f)
{
    Cairn__Cmd__UploadAbort op = CAIRN__CMD__UPLOAD_ABORT__INIT;

    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    return OP(f, upload_abort, UPLOAD_ABORT, &op);
}

static Cairn__Cmd__UploadState upload_state(struct fixture *f)
{
    Cairn__Cmd__Upload *upload;
    Cairn__Cmd__UploadState state;

    ASSERT_OK(meta_get_upload(f->sm, upload_id, &upload));
    state = upload->state;
    meta_record_free(upload);
    return state;
}

TEST(upload, complete_creates_the_file, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Inode *inode;

    ASSERT_OK(upload_begin(f, ROOT, "big.bin", T0 + 1000));
    ASSERT_EQ(upload_state(f), CAIRN__CMD__UPLOAD_STATE__UPLOAD_PENDING);
    ASSERT_ERR(upload_begin(f, ROOT, "big.bin", T0 + 1000), CAIRN_EEXIST);
    ASSERT_OK(upload_complete(f, 5, 1234));
    ASSERT_EQ(f->result.value, 1);
    ASSERT_EQ(upload_state(f), CAIRN__CMD__UPLOAD_STATE__UPLOAD_UPLOADED);
    ASSERT_EQ(lookup(f, ROOT, "big.bin"), 5);
    ASSERT_OK(meta_get_inode(f->sm, NS, 5, &inode));
    ASSERT_EQ(inode->version, 1);
    meta_record_free(inode);
    ASSERT_ERR(upload_complete(f, 5, 1), CAIRN_EINVAL); /* not pending any more */
    ASSERT_ERR(upload_abort(f), CAIRN_EINVAL);
}

TEST(upload, complete_adds_a_version_to_an_existing_file, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(CREATE(f, ROOT, "a", 2));
    ASSERT_OK(COMMIT(f, 2, 0, 10));
    ASSERT_OK(upload_begin(f, ROOT, "a", T0 + 1000));
    ASSERT_OK(upload_complete(f, 99, 20)); /* 99 unused: the file exists */
    ASSERT_EQ(f->result.value, 2);
    ASSERT_EQ(lookup(f, ROOT, "a"), 2);
}

TEST(upload, expiry_abort_and_rights, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_ERR(upload_begin(f, ROOT, "a", T0), CAIRN_EINVAL); /* expires at once */
    ASSERT_ERR(upload_begin(f, ROOT, "a/b", T0 + 10), CAIRN_EINVAL);
    f->actor = OTHER;
    ASSERT_ERR(upload_begin(f, ROOT, "a", T0 + 10), CAIRN_EPERM);
    f->actor = OWNER;
    ASSERT_OK(upload_begin(f, ROOT, "a", T0 + 10));
    f->actor = OTHER;
    ASSERT_ERR(upload_complete(f, 3, 1), CAIRN_EPERM);
    f->actor = OWNER;
    f->time_ms = T0 + 10;
    ASSERT_ERR(upload_complete(f, 3, 1), CAIRN_EEXPIRED);
    ASSERT_EQ(lookup(f, ROOT, "a"), 0);
    ASSERT_OK(upload_abort(f)); /* expired sessions are reaped by abort */
    ASSERT_EQ(upload_state(f), CAIRN__CMD__UPLOAD_STATE__UPLOAD_ABORTED);
    ASSERT_ERR(upload_abort(f), CAIRN_EINVAL);
}
