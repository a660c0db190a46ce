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

static int upload_begin_based(struct fixture *f, const char *name, uint64_t base)
{
    Cairn__Cmd__UploadBegin op = CAIRN__CMD__UPLOAD_BEGIN__INIT;

    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.ns = NS;
    op.parent = ROOT;
    op.name = (char *)name;
    op.expires_ms = T0 + 1000;
    op.base_given = true;
    op.base_version = base;
    return OP(f, upload_begin, UPLOAD_BEGIN, &op);
}

/* A session begun against a base version completes only over that version:
 * a compare-and-set, checked at completion, whatever happened meanwhile. */
TEST(upload, a_based_session_is_a_compare_and_set, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(CREATE(f, ROOT, "a", 2));
    ASSERT_OK(COMMIT(f, 2, 0, 10)); /* version 1 */
    ASSERT_OK(upload_begin_based(f, "a", 1));
    ASSERT_OK(COMMIT(f, 2, 1, 11)); /* another writer: version 2 */
    ASSERT_ERR(upload_complete(f, 99, 20), CAIRN_ECONFLICT);
    ASSERT_EQ(upload_state(f), CAIRN__CMD__UPLOAD_STATE__UPLOAD_PENDING); /* nothing changed */
    ASSERT_OK(upload_abort(f));

    /* Against the current version: it goes through. */
    upload_id[1]++;
    ASSERT_OK(upload_begin_based(f, "a", 2));
    ASSERT_OK(upload_complete(f, 99, 20));
    ASSERT_EQ(f->result.value, 3);

    /* Base 0: only if the name is free (or a file without a version yet). */
    upload_id[1]++;
    ASSERT_OK(upload_begin_based(f, "b", 0));
    ASSERT_OK(CREATE(f, ROOT, "b", 3)); /* someone made it meanwhile */
    ASSERT_OK(COMMIT(f, 3, 0, 7));
    ASSERT_ERR(upload_complete(f, 98, 5), CAIRN_ECONFLICT);
    upload_id[1]++;
    ASSERT_OK(upload_begin_based(f, "c", 0));
    ASSERT_OK(upload_complete(f, 97, 5));
    ASSERT_EQ(lookup(f, ROOT, "c"), 97);
    /* A base for a file that does not exist: conflict, nothing created. */
    upload_id[1]++;
    ASSERT_OK(upload_begin_based(f, "d", 4));
    ASSERT_ERR(upload_complete(f, 96, 5), CAIRN_ECONFLICT);
    ASSERT_ERR(meta_lookup(f->sm, NS, ROOT, "d", &(uint64_t){0}), CAIRN_ENOENT);
    upload_id[1] = 0;
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

TEST(chunk, record_keeps_shard_nodes, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__ChunkRecord op = CAIRN__CMD__CHUNK_RECORD__INIT;
    Cairn__Cmd__Chunk chunk = CAIRN__CMD__CHUNK__INIT;
    Cairn__Cmd__Chunk *record;
    uint64_t nodes[6] = {3, 1, 2, 5, 4, 0};

    chunk.id.data = chunk_id;
    chunk.id.len = sizeof(chunk_id);
    chunk.size = 4096;
    chunk.data_shards = 4;
    chunk.parity_shards = 2;
    chunk.nodes = nodes;
    chunk.n_nodes = 6;
    op.chunk = &chunk;
    ASSERT_OK(OP(f, chunk_record, CHUNK_RECORD, &op));
    ASSERT_OK(meta_get_chunk(f->sm, chunk_id, &record));
    ASSERT_EQ(record->n_nodes, 6);
    ASSERT_EQ(record->nodes[0], 3);
    ASSERT_EQ(record->nodes[3], 5);
    meta_record_free(record);
    nodes[5] = 6; /* repaired: recorded again with the new placement */
    ASSERT_OK(OP(f, chunk_record, CHUNK_RECORD, &op));
    ASSERT_OK(meta_get_chunk(f->sm, chunk_id, &record));
    ASSERT_EQ(record->nodes[5], 6);
    meta_record_free(record);
}

TEST(chunk,
     a_conditional_record_applies_only_over_the_expected_nodes,
     fixture_setup,
     fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__ChunkRecord op = CAIRN__CMD__CHUNK_RECORD__INIT;
    Cairn__Cmd__Chunk chunk = CAIRN__CMD__CHUNK__INIT;
    Cairn__Cmd__Chunk *record;
    uint64_t nodes[3] = {1, 2, 3}, expect[3] = {1, 2, 3};

    chunk.id.data = chunk_id;
    chunk.id.len = sizeof(chunk_id);
    chunk.size = 4096;
    chunk.data_shards = 2;
    chunk.parity_shards = 1;
    chunk.nodes = nodes;
    chunk.n_nodes = 3;
    op.chunk = &chunk;
    op.if_nodes = true;
    op.expect_nodes = expect;
    op.n_expect_nodes = 3;
    /* Unknown chunk: nothing to move from. */
    ASSERT_ERR(OP(f, chunk_record, CHUNK_RECORD, &op), CAIRN_ECONFLICT);
    ASSERT_ERR(meta_get_chunk(f->sm, chunk_id, &record), CAIRN_ENOENT);
    op.if_nodes = false; /* the gateway's record: unconditional */
    ASSERT_OK(OP(f, chunk_record, CHUNK_RECORD, &op));
    /* A driver's move from the recorded homes: applies. */
    op.if_nodes = true;
    nodes[2] = 4;
    ASSERT_OK(OP(f, chunk_record, CHUNK_RECORD, &op));
    ASSERT_OK(meta_get_chunk(f->sm, chunk_id, &record));
    ASSERT_EQ(record->nodes[2], 4);
    meta_record_free(record);
    /* Another move decided from the old homes {1,2,3}: refused, nothing
     * changes (the index says {1,2,4}). */
    nodes[2] = 5;
    ASSERT_ERR(OP(f, chunk_record, CHUNK_RECORD, &op), CAIRN_ECONFLICT);
    ASSERT_OK(meta_get_chunk(f->sm, chunk_id, &record));
    ASSERT_EQ(record->nodes[2], 4);
    meta_record_free(record);
    /* The same homes in another order, or fewer of them, are not the same. */
    expect[0] = 2;
    expect[1] = 1;
    expect[2] = 4;
    ASSERT_ERR(OP(f, chunk_record, CHUNK_RECORD, &op), CAIRN_ECONFLICT);
    expect[0] = 1;
    expect[1] = 2;
    op.n_expect_nodes = 2;
    ASSERT_ERR(OP(f, chunk_record, CHUNK_RECORD, &op), CAIRN_ECONFLICT);
    op.n_expect_nodes = 3;
    ASSERT_OK(OP(f, chunk_record, CHUNK_RECORD, &op));
    ASSERT_OK(meta_get_chunk(f->sm, chunk_id, &record));
    ASSERT_EQ(record->nodes[2], 5);
    meta_record_free(record);
}

/* ---- Resumable sessions ---- */

static int resumable_begin(struct fixture *f, uint64_t size)
{
    Cairn__Cmd__UploadBegin op = CAIRN__CMD__UPLOAD_BEGIN__INIT;

    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.ns = NS;
    op.parent = ROOT;
    op.name = "movie.mkv";
    op.expires_ms = T0 + 100000;
    op.size = size;
    return OP(f, upload_begin, UPLOAD_BEGIN, &op);
}

/* Appends n chunks of size bytes each at offset (chunk ids from seed). */
static int upload_append(struct fixture *f, uint64_t offset, size_t n, uint32_t size, uint8_t seed)
{
    Cairn__Cmd__UploadAppend op = CAIRN__CMD__UPLOAD_APPEND__INIT;
    Cairn__Cmd__ChunkRef refs[8], *ptrs[8];
    uint8_t ids[8][META_CHUNK_ID_SIZE];
    int rv;

    ASSERT_TRUE(n <= 8);
    for (size_t i = 0; i < n; i++) {
        cairn__cmd__chunk_ref__init(&refs[i]);
        memset(ids[i], seed + (uint8_t)i, sizeof(ids[i]));
        refs[i].chunk_id.data = ids[i];
        refs[i].chunk_id.len = sizeof(ids[i]);
        refs[i].offset = offset + i * size;
        refs[i].size = size;
        ptrs[i] = &refs[i];
    }
    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.offset = offset;
    op.chunks = ptrs;
    op.n_chunks = n;
    rv = OP(f, upload_append, UPLOAD_APPEND, &op);
    return rv;
}

static Cairn__Cmd__Upload *upload_get(struct fixture *f)
{
    Cairn__Cmd__Upload *upload;

    ASSERT_OK(meta_get_upload(f->sm, upload_id, &upload));
    return upload;
}

struct refs {
    uint64_t offsets[8];
    uint8_t first_bytes[8];
    int count;
};

static int collect_ref(void *data, const Cairn__Cmd__ChunkRef *ref)
{
    struct refs *refs = data;

    ASSERT_TRUE(refs->count < 8);
    refs->offsets[refs->count] = ref->offset;
    refs->first_bytes[refs->count++] = ref->chunk_id.data[0];
    return 0;
}

static struct refs collect_refs(struct fixture *f)
{
    struct refs refs = {0};

    ASSERT_OK(meta_upload_chunks(f->sm, upload_id, collect_ref, &refs));
    return refs;
}

TEST(upload, resumable_appends_then_completes_from_the_session, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct refs refs;
    Cairn__Cmd__Upload *upload;
    Cairn__Cmd__Version *version;

    ASSERT_OK(resumable_begin(f, 5000));
    upload = upload_get(f);
    ASSERT_EQ(upload->size, 5000);
    ASSERT_EQ(upload->offset, 0);
    meta_record_free(upload);
    ASSERT_OK(upload_append(f, 0, 2, 1000, 0x10));
    ASSERT_EQ(f->result.value, 2000);                                /* the new offset */
    ASSERT_ERR(upload_append(f, 0, 1, 1000, 0x20), CAIRN_ECONFLICT); /* a stale retry */
    ASSERT_ERR(upload_append(f, 3000, 1, 1000, 0x20), CAIRN_ECONFLICT);
    ASSERT_ERR(upload_complete(f, 8, 5000), CAIRN_EINVAL); /* not all there yet */
    ASSERT_OK(upload_append(f, 2000, 3, 1000, 0x20));
    upload = upload_get(f);
    ASSERT_EQ(upload->offset, 5000);
    ASSERT_EQ(upload->chunk_count, 5);
    ASSERT_EQ(upload->n_chunks, 0); /* not in the record: listed apart */
    meta_record_free(upload);
    refs = collect_refs(f);
    ASSERT_EQ(refs.count, 5);
    ASSERT_EQ(refs.offsets[2], 2000);
    ASSERT_EQ(refs.first_bytes[4], 0x22);
    ASSERT_ERR(upload_complete(f, 8, 4999), CAIRN_EINVAL); /* not the declared size */
    ASSERT_OK(upload_complete(f, 8, 5000));
    ASSERT_EQ(upload_state(f), CAIRN__CMD__UPLOAD_STATE__UPLOAD_UPLOADED);
    ASSERT_OK(meta_get_version(f->sm, NS, 8, 1, &version));
    ASSERT_EQ(version->size, 5000);
    ASSERT_EQ(version->n_chunks, 5);
    ASSERT_EQ(version->chunks[0]->chunk_id.data[0], 0x10);
    ASSERT_EQ(version->chunks[4]->offset, 4000);
    meta_record_free(version);
    upload = upload_get(f);
    ASSERT_EQ(upload->chunk_count, 0); /* the version holds them now */
    meta_record_free(upload);
    ASSERT_EQ(collect_refs(f).count, 0);
    ASSERT_ERR(upload_append(f, 5000, 1, 1, 0x30), CAIRN_EINVAL); /* not pending */
}

TEST(upload, append_errors, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UploadAppend op = CAIRN__CMD__UPLOAD_APPEND__INIT;
    Cairn__Cmd__ChunkRef ref = CAIRN__CMD__CHUNK_REF__INIT, *refs[1] = {&ref};
    uint8_t id[META_CHUNK_ID_SIZE] = {1};

    ASSERT_ERR(resumable_begin(f, META_FILE_SIZE_MAX + 1), CAIRN_ETOOBIG);
    ASSERT_ERR(upload_append(f, 0, 1, 10, 1), CAIRN_ENOENT); /* no session */
    ASSERT_OK(resumable_begin(f, 3000));
    ASSERT_ERR(upload_append(f, 0, 4, 1000, 1), CAIRN_ETOOBIG); /* past the declared size */
    op.upload_id.data = upload_id;
    op.upload_id.len = 3;
    ASSERT_ERR(OP(f, upload_append, UPLOAD_APPEND, &op), CAIRN_EINVAL);
    op.upload_id.len = sizeof(upload_id);
    op.chunks = refs;
    op.n_chunks = 1;
    ref.chunk_id.data = id;
    ref.chunk_id.len = 31;
    ref.size = 10;
    ASSERT_ERR(OP(f, upload_append, UPLOAD_APPEND, &op), CAIRN_EINVAL); /* id size */
    ref.chunk_id.len = sizeof(id);
    ref.offset = 5;
    ASSERT_ERR(OP(f, upload_append, UPLOAD_APPEND, &op), CAIRN_EINVAL); /* a gap */
    ref.offset = 0;
    ref.size = 0;
    ASSERT_ERR(OP(f, upload_append, UPLOAD_APPEND, &op), CAIRN_EINVAL); /* empty chunk */
    ref.size = 10;
    f->actor = OTHER;
    ASSERT_ERR(OP(f, upload_append, UPLOAD_APPEND, &op), CAIRN_EPERM); /* not the uploader */
    f->actor = OWNER;
    ASSERT_OK(OP(f, upload_append, UPLOAD_APPEND, &op));
    op.n_chunks = 0;
    op.offset = 10;
    ASSERT_OK(OP(f, upload_append, UPLOAD_APPEND, &op)); /* nothing new: nothing changes */
    ASSERT_EQ(f->result.value, 10);
    f->time_ms = T0 + 100000;
    ASSERT_ERR(upload_append(f, 10, 1, 10, 1), CAIRN_EEXPIRED);
    ASSERT_EQ(collect_refs(f).count, 1);
    ASSERT_OK(upload_abort(f)); /* reaped: its chunks go too */
    ASSERT_EQ(collect_refs(f).count, 0);
}

TEST(upload, a_session_size_binds_the_version, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UploadComplete op = CAIRN__CMD__UPLOAD_COMPLETE__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef ref = CAIRN__CMD__CHUNK_REF__INIT, *refs[1] = {&ref};
    uint8_t id[META_CHUNK_ID_SIZE] = {7};

    ASSERT_OK(resumable_begin(f, 100));
    ref.chunk_id.data = id;
    ref.chunk_id.len = sizeof(id);
    ref.size = 100;
    version.size = 100;
    version.chunks = refs;
    version.n_chunks = 1;
    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.inode = 9;
    op.version = &version;
    version.size = 50;
    ref.size = 50;
    ASSERT_ERR(OP(f, upload_complete, UPLOAD_COMPLETE, &op), CAIRN_EINVAL);
    version.size = 100;
    ref.size = 100;
    ASSERT_OK(OP(f, upload_complete, UPLOAD_COMPLETE, &op)); /* its own chunk list */
    ASSERT_EQ(lookup(f, ROOT, "movie.mkv"), 9);
}

TEST(upload, append_under_store_failures, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UploadAppend op = CAIRN__CMD__UPLOAD_APPEND__INIT;
    Cairn__Cmd__ChunkRef ref = CAIRN__CMD__CHUNK_REF__INIT, *refs[1] = {&ref};
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    uint8_t id[META_CHUNK_ID_SIZE] = {7};

    ASSERT_OK(resumable_begin(f, 100));
    ref.chunk_id.data = id;
    ref.chunk_id.len = sizeof(id);
    ref.size = 60;
    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.chunks = refs;
    op.n_chunks = 1;
    header.time_ms = f->time_ms;
    header.actor_user = OWNER;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_APPEND;
    cmd.upload_append = &op;
    assert_atomic_under_faults(f, &cmd);
    ASSERT_EQ(f->result.value, 60);
}

TEST(upload, a_large_file_fits_one_command, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    const size_t n = 40960; /* 10 GiB of 256 KiB chunks */
    Cairn__Cmd__Commit op = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef *refs = cn_xcalloc(n, sizeof(*refs));
    Cairn__Cmd__ChunkRef **ptrs = cn_xcalloc(n, sizeof(*ptrs));
    uint8_t id[META_CHUNK_ID_SIZE];

    memset(id, 0xee, sizeof(id));
    for (size_t i = 0; i < n; i++) {
        cairn__cmd__chunk_ref__init(&refs[i]);
        refs[i].chunk_id.data = id;
        refs[i].chunk_id.len = sizeof(id);
        refs[i].offset = (uint64_t)i << 18;
        refs[i].size = 1u << 18;
        ptrs[i] = &refs[i];
    }
    version.size = (uint64_t)n << 18;
    version.chunks = ptrs;
    version.n_chunks = n;
    ASSERT_EQ(version.size, META_FILE_SIZE_MAX);
    ASSERT_OK(CREATE(f, ROOT, "big", 2));
    op.ns = NS;
    op.inode = 2;
    op.version = &version;
    ASSERT_OK(OP(f, commit, COMMIT, &op));
    ASSERT_CMP(f->buf.len, >, 1u << 20); /* more than the old limit */
    free(ptrs);
    free(refs);
}

TEST(command, a_command_past_the_limit_is_refused, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    const size_t n = 100000; /* about 4.6 MB packed */
    Cairn__Cmd__UploadAppend op = CAIRN__CMD__UPLOAD_APPEND__INIT;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__ChunkRef *refs = cn_xcalloc(n, sizeof(*refs));
    Cairn__Cmd__ChunkRef **ptrs = cn_xcalloc(n, sizeof(*ptrs));
    uint8_t id[META_CHUNK_ID_SIZE] = {1};

    for (size_t i = 0; i < n; i++) {
        cairn__cmd__chunk_ref__init(&refs[i]);
        refs[i].chunk_id.data = id;
        refs[i].chunk_id.len = sizeof(id);
        refs[i].offset = (uint64_t)i << 18;
        refs[i].size = 1u << 18;
        ptrs[i] = &refs[i];
    }
    op.chunks = ptrs;
    op.n_chunks = n;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_APPEND;
    cmd.upload_append = &op;
    ASSERT_ERR(meta_command_encode(&cmd, &f->buf), CAIRN_ETOOBIG);
    free(ptrs);
    free(refs);
}

TEST(upload, complete_from_the_session_under_store_failures, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__UploadComplete op = CAIRN__CMD__UPLOAD_COMPLETE__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Version *stored;

    ASSERT_OK(resumable_begin(f, 3000));
    ASSERT_OK(upload_append(f, 0, 3, 1000, 0x40));
    version.size = 3000;
    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.inode = 12;
    op.version = &version;
    header.time_ms = f->time_ms;
    header.actor_user = OWNER;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_COMPLETE;
    cmd.upload_complete = &op;
    assert_atomic_under_faults(f, &cmd);
    ASSERT_OK(meta_get_version(f->sm, NS, 12, 1, &stored));
    ASSERT_EQ(stored->n_chunks, 3);
    ASSERT_EQ(stored->chunks[2]->chunk_id.data[0], 0x42);
    meta_record_free(stored);
    ASSERT_EQ(collect_refs(f).count, 0);
}
