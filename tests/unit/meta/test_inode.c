/* Inodes: mkdir, create, commit, rename, trash, restore, purge, versions.
 * Every APPLY() also runs meta_sm_check(), so each step proves the
 * invariants (unique names, parents, no cycles, counts, journal) still hold. */
#include "fixture.h"

static uint64_t child_count(struct fixture *f, uint64_t id)
{
    Cairn__Cmd__Inode *inode;
    uint64_t count;

    ASSERT_OK(meta_get_inode(f->sm, NS, id, &inode));
    count = inode->child_count;
    meta_record_free(inode);
    return count;
}

static uint64_t current_version(struct fixture *f, uint64_t id)
{
    Cairn__Cmd__Inode *inode;
    uint64_t version;

    ASSERT_OK(meta_get_inode(f->sm, NS, id, &inode));
    version = inode->version;
    meta_record_free(inode);
    return version;
}

static uint64_t used_bytes(struct fixture *f)
{
    Cairn__Cmd__Namespace *ns;
    uint64_t used;

    ASSERT_OK(meta_get_namespace(f->sm, NS, &ns));
    used = ns->used_bytes;
    meta_record_free(ns);
    return used;
}

TEST(inode, mkdir_and_create_make_named_entries, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(MKDIR(f, ROOT, "docs", 2));
    ASSERT_OK(CREATE(f, 2, "a.txt", 3));
    ASSERT_EQ(lookup(f, ROOT, "docs"), 2);
    ASSERT_EQ(lookup(f, 2, "a.txt"), 3);
    ASSERT_EQ(child_count(f, ROOT), 1);
    ASSERT_EQ(child_count(f, 2), 1);
    ASSERT_EQ(current_version(f, 3), 0);
}

TEST(inode, names_are_checked, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    char long_name[META_NAME_MAX + 2];

    ASSERT_ERR(MKDIR(f, ROOT, "", 2), CAIRN_EINVAL);
    ASSERT_ERR(MKDIR(f, ROOT, ".", 2), CAIRN_EINVAL);
    ASSERT_ERR(MKDIR(f, ROOT, "..", 2), CAIRN_EINVAL);
    ASSERT_ERR(MKDIR(f, ROOT, "a/b", 2), CAIRN_EINVAL);
    memset(long_name, 'x', sizeof(long_name));
    long_name[META_NAME_MAX + 1] = '\0';
    ASSERT_ERR(MKDIR(f, ROOT, long_name, 2), CAIRN_EINVAL);
    long_name[META_NAME_MAX] = '\0';
    ASSERT_OK(MKDIR(f, ROOT, long_name, 2));
    ASSERT_OK(MKDIR(f, ROOT, "...", 3)); /* only "." and ".." are reserved */
}

TEST(inode, taken_names_and_ids_are_refused, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(MKDIR(f, ROOT, "docs", 2));
    ASSERT_ERR(MKDIR(f, ROOT, "docs", 3), CAIRN_EEXIST);
    ASSERT_ERR(CREATE(f, ROOT, "docs", 3), CAIRN_EEXIST);
    ASSERT_ERR(CREATE(f, ROOT, "other", 2), CAIRN_EEXIST); /* id taken */
    ASSERT_ERR(CREATE(f, ROOT, "other", 0), CAIRN_EINVAL);
    ASSERT_ERR(CREATE(f, 99, "x", 3), CAIRN_ENOENT);
    ASSERT_OK(CREATE(f, ROOT, "file", 3));
    ASSERT_ERR(CREATE(f, 3, "inside-a-file", 4), CAIRN_ENOTDIR);
}

/* Small limits: depth 3, 3 entries per folder, purges of 3 inodes. */
static void *small_setup(void)
{
    struct fixture *f = fixture_setup();

    fixture_close(f);
    f->limits.depth_max = 3;
    f->limits.entries_max = 3;
    f->limits.purge_max = 3;
    fixture_open(f);
    ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
    return f;
}

TEST(inode, limits_on_depth_and_entries, small_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(MKDIR(f, 2, "b", 3));
    ASSERT_OK(MKDIR(f, 3, "c", 4));
    ASSERT_ERR(MKDIR(f, 4, "d", 5), CAIRN_ETOOBIG); /* depth 4 > 3 */
    ASSERT_OK(MKDIR(f, ROOT, "e", 6));
    ASSERT_OK(MKDIR(f, ROOT, "g", 8));
    ASSERT_ERR(CREATE(f, ROOT, "f", 7), CAIRN_ETOOBIG); /* a fourth entry */
    ASSERT_ERR(RENAME(f, 3, ROOT, "f"), CAIRN_ETOOBIG);
    ASSERT_OK(TRASH(f, 6));
    ASSERT_OK(CREATE(f, ROOT, "f", 7)); /* trashed entries do not count */
    ASSERT_ERR(RESTORE(f, 6), CAIRN_ETOOBIG);
}

TEST(inode, a_folder_moved_deeper_keeps_its_subtree_within_depth, small_setup, fixture_teardown)
{
    struct fixture *f = data;

    /* depth_max 3: a/b/c is as deep as it gets. */
    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(MKDIR(f, 2, "b", 3));
    ASSERT_OK(MKDIR(f, 3, "c", 4));
    ASSERT_OK(MKDIR(f, ROOT, "x", 5));
    ASSERT_OK(MKDIR(f, 5, "y", 6));
    ASSERT_ERR(RENAME(f, 2, 6, "a"), CAIRN_ETOOBIG); /* x/y/a/b/c */
    ASSERT_ERR(RENAME(f, 2, 5, "a"), CAIRN_ETOOBIG); /* x/a/b/c */
    ASSERT_OK(TRASH(f, 4));
    ASSERT_ERR(RENAME(f, 2, 5, "a"), CAIRN_ETOOBIG); /* c in the trash still counts */
    ASSERT_OK(PURGE(f, 4));
    ASSERT_OK(RENAME(f, 2, 5, "a"));    /* x/a/b */
    ASSERT_OK(RENAME(f, 6, ROOT, "y")); /* shallower: always fine */
}

TEST(inode, commit_against_a_stale_base_is_a_conflict, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(CREATE(f, ROOT, "a.txt", 2));
    ASSERT_OK(COMMIT(f, 2, 0, 100));
    ASSERT_EQ(f->result.value, 1);
    ASSERT_OK(COMMIT(f, 2, 1, 50));
    ASSERT_EQ(f->result.value, 2);
    ASSERT_ERR(COMMIT(f, 2, 1, 70), CAIRN_ECONFLICT);
    ASSERT_EQ(f->result.value, 0);
    ASSERT_EQ(current_version(f, 2), 2);
    ASSERT_EQ(used_bytes(f), 150);
}

static int create_commit(struct fixture *f, const char *name, uint64_t id, uint64_t size, bool any)
{
    Cairn__Cmd__Commit m = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version v = CAIRN__CMD__VERSION__INIT;

    v.size = size;
    m.ns = NS;
    m.inode = id;
    m.create_parent = ROOT;
    m.create_name = (char *)name;
    m.unconditional = any;
    m.version = &v;
    return OP(f, commit, COMMIT, &m);
}

/* A new file and its first version in one command: nobody ever sees the
 * file without a version (found by jepsen/run: a create-only upload refused
 * because the name was taken, while reads said there was no file). */
TEST(inode, create_and_commit_in_one, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Inode *inode;

    ASSERT_OK(create_commit(f, "a", 7, 100, false));
    ASSERT_EQ(f->result.value, 1);
    ASSERT_EQ(lookup(f, ROOT, "a"), 7);
    ASSERT_OK(meta_get_inode(f->sm, NS, 7, &inode));
    ASSERT_EQ(inode->version, 1);
    meta_record_free(inode);
    /* The name taken: EEXIST, and nothing changes (no inode 8). */
    ASSERT_ERR(create_commit(f, "a", 8, 5, false), CAIRN_EEXIST);
    ASSERT_ERR(meta_get_inode(f->sm, NS, 8, &inode), CAIRN_ENOENT);
    /* A version that cannot go in undoes the create too (EINVAL: chunks that
     * do not tile the size). */
    {
        Cairn__Cmd__Commit m = CAIRN__CMD__COMMIT__INIT;
        Cairn__Cmd__Version v = CAIRN__CMD__VERSION__INIT;
        Cairn__Cmd__ChunkRef ref = CAIRN__CMD__CHUNK_REF__INIT, *refs[1] = {&ref};
        uint8_t id[META_CHUNK_ID_SIZE] = {1};

        ref.chunk_id.data = id;
        ref.chunk_id.len = sizeof(id);
        ref.size = 10;
        v.size = 999;
        v.n_chunks = 1;
        v.chunks = refs;
        m.ns = NS;
        m.inode = 9;
        m.create_parent = ROOT;
        m.create_name = "b";
        m.version = &v;
        ASSERT_ERR(OP(f, commit, COMMIT, &m), CAIRN_EINVAL);
    }
    ASSERT_ERR(meta_lookup(f->sm, NS, ROOT, "b", &(uint64_t){0}), CAIRN_ENOENT);
    /* Unconditional: over whatever is current. */
    ASSERT_OK(COMMIT(f, 7, 1, 5));
    {
        Cairn__Cmd__Commit m = CAIRN__CMD__COMMIT__INIT;
        Cairn__Cmd__Version v = CAIRN__CMD__VERSION__INIT;
        v.size = 6;
        m.ns = NS;
        m.inode = 7;
        m.base_version = 1; /* stale, but ignored */
        m.unconditional = true;
        m.version = &v;
        ASSERT_OK(OP(f, commit, COMMIT, &m));
        ASSERT_EQ(f->result.value, 3);
    }
    /* Rights: a stranger cannot create in the folder. */
    f->actor = OWNER + 1000;
    ASSERT_ERR(create_commit(f, "c", 10, 1, false), CAIRN_EPERM);
}

TEST(inode, commit_errors, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Commit op = CAIRN__CMD__COMMIT__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    Cairn__Cmd__ChunkRef chunk = CAIRN__CMD__CHUNK_REF__INIT, *chunks[1] = {&chunk};
    uint8_t chunk_id[META_CHUNK_ID_SIZE] = {1};

    ASSERT_OK(MKDIR(f, ROOT, "dir", 2));
    ASSERT_ERR(COMMIT(f, 2, 0, 1), CAIRN_EISDIR);
    ASSERT_ERR(COMMIT(f, 9, 0, 1), CAIRN_ENOENT);
    ASSERT_OK(CREATE(f, ROOT, "a", 3));
    op.ns = NS;
    op.inode = 3;
    ASSERT_ERR(OP(f, commit, COMMIT, &op), CAIRN_EINVAL); /* no version */
    op.version = &version;
    version.n_chunks = 1;
    version.chunks = chunks;
    chunk.chunk_id.data = chunk_id;
    chunk.chunk_id.len = 3;
    chunk.size = 10;
    version.size = 10;
    ASSERT_ERR(OP(f, commit, COMMIT, &op), CAIRN_EINVAL); /* short chunk id */
    chunk.chunk_id.len = sizeof(chunk_id);
    version.size = 11;
    ASSERT_ERR(OP(f, commit, COMMIT, &op), CAIRN_EINVAL); /* chunks do not cover it */
    version.size = 10;
    ASSERT_OK(OP(f, commit, COMMIT, &op));
    ASSERT_OK(TRASH(f, 3));
    ASSERT_ERR(COMMIT(f, 3, 1, 1), CAIRN_ENOENT); /* in the trash */
}

TEST(inode, quota_is_enforced, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__NamespaceCreate op = ns_create_msg(NS, OWNER, ROOT);

    op.quota_bytes = 1000;
    ASSERT_OK(OP(f, namespace_create, NAMESPACE_CREATE, &op));
    ASSERT_OK(CREATE(f, ROOT, "a", 2));
    ASSERT_OK(COMMIT(f, 2, 0, 600));
    ASSERT_ERR(COMMIT(f, 2, 1, 401), CAIRN_EQUOTA);
    ASSERT_OK(COMMIT(f, 2, 1, 400));
    ASSERT_OK(TRASH(f, 2));
    ASSERT_EQ(used_bytes(f), 1000); /* the trash still counts */
    ASSERT_OK(PURGE(f, 2));
    ASSERT_EQ(used_bytes(f), 0);
}

TEST(inode, rename_and_move, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(MKDIR(f, ROOT, "b", 3));
    ASSERT_OK(CREATE(f, 2, "x", 4));
    ASSERT_OK(RENAME(f, 4, 2, "y"));
    ASSERT_EQ(lookup(f, 2, "y"), 4);
    ASSERT_EQ(lookup(f, 2, "x"), 0);
    ASSERT_OK(RENAME(f, 4, 3, "z"));
    ASSERT_EQ(lookup(f, 3, "z"), 4);
    ASSERT_EQ(child_count(f, 2), 0);
    ASSERT_EQ(child_count(f, 3), 1);
    ASSERT_OK(RENAME(f, 2, 3, "a")); /* a folder moves with its subtree */
    ASSERT_EQ(lookup(f, 3, "a"), 2);
    ASSERT_OK(RENAME(f, 2, 3, "a")); /* already there: a no-op */
}

TEST(inode, rename_refuses_cycles_and_bad_targets, ns_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(MKDIR(f, 2, "b", 3));
    ASSERT_OK(MKDIR(f, 3, "c", 4));
    ASSERT_OK(CREATE(f, ROOT, "file", 5));
    ASSERT_ERR(RENAME(f, 2, 4, "a"), CAIRN_EINVAL); /* into its own grandchild */
    ASSERT_ERR(RENAME(f, 2, 2, "a"), CAIRN_EINVAL); /* into itself */
    ASSERT_ERR(RENAME(f, ROOT, 2, "root"), CAIRN_EINVAL);
    ASSERT_ERR(RENAME(f, 3, ROOT, "file"), CAIRN_EEXIST);
    ASSERT_ERR(RENAME(f, 3, 5, "b"), CAIRN_ENOTDIR);
    ASSERT_ERR(RENAME(f, 3, ROOT, "a/b"), CAIRN_EINVAL);
    ASSERT_ERR(RENAME(f, 42, ROOT, "x"), CAIRN_ENOENT);
    ASSERT_ERR(RENAME(f, 3, 42, "x"), CAIRN_ENOENT); /* no such target folder */
    ASSERT_OK(RENAME(f, 4, ROOT, "c"));              /* out of the subtree is fine */
}

TEST(inode, trash_restore_purge, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Inode *inode;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(CREATE(f, 2, "x", 3));
    ASSERT_OK(COMMIT(f, 3, 0, 10));
    ASSERT_OK(TRASH(f, 2));
    ASSERT_EQ(lookup(f, ROOT, "a"), 0);
    ASSERT_ERR(CREATE(f, 2, "y", 4), CAIRN_ENOENT); /* the folder is in the trash */
    ASSERT_ERR(TRASH(f, 3), CAIRN_ENOENT);          /* already in the trash, via its folder */
    ASSERT_ERR(RESTORE(f, 3), CAIRN_EINVAL);        /* not the top of a trashed subtree */
    ASSERT_ERR(TRASH(f, ROOT), CAIRN_EINVAL);
    ASSERT_OK(MKDIR(f, ROOT, "a", 5)); /* the name is free again */
    ASSERT_ERR(RESTORE(f, 2), CAIRN_EEXIST);
    ASSERT_OK(RENAME(f, 5, ROOT, "a2"));
    ASSERT_OK(RESTORE(f, 2));
    ASSERT_EQ(lookup(f, ROOT, "a"), 2);
    ASSERT_ERR(RESTORE(f, 2), CAIRN_EINVAL); /* not in the trash */
    ASSERT_ERR(PURGE(f, 2), CAIRN_EINVAL);   /* purge only what is in the trash */
    ASSERT_OK(TRASH(f, 2));
    ASSERT_OK(PURGE(f, 2));
    ASSERT_ERR(meta_get_inode(f->sm, NS, 2, &inode), CAIRN_ENOENT);
    ASSERT_ERR(meta_get_inode(f->sm, NS, 3, &inode), CAIRN_ENOENT);
    ASSERT_EQ(used_bytes(f), 0);
    ASSERT_ERR(PURGE(f, 2), CAIRN_ENOENT);
}

TEST(inode, purge_reaches_items_trashed_inside_a_trashed_folder, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Inode *inode;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(MKDIR(f, 2, "b", 3));
    ASSERT_OK(CREATE(f, 3, "x", 4));
    ASSERT_OK(COMMIT(f, 4, 0, 5));
    ASSERT_OK(TRASH(f, 4)); /* first the file, then its grandparent */
    ASSERT_OK(TRASH(f, 2));
    ASSERT_OK(PURGE(f, 2));
    ASSERT_ERR(meta_get_inode(f->sm, NS, 4, &inode), CAIRN_ENOENT);
    ASSERT_EQ(used_bytes(f), 0);
}

TEST(inode, purge_is_bounded, small_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    for (uint64_t i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof(name), "f%u", (unsigned)i);
        ASSERT_OK(CREATE(f, 2, name, 10 + i));
    }
    ASSERT_OK(TRASH(f, 2));
    ASSERT_ERR(PURGE(f, 2), CAIRN_ETOOBIG); /* 4 inodes > 3: nothing removed */
    ASSERT_OK(RESTORE(f, 2));
    ASSERT_OK(TRASH(f, 10));
    ASSERT_OK(PURGE(f, 10));
    ASSERT_OK(TRASH(f, 2));
    ASSERT_OK(PURGE(f, 2));
}

static int count_version(void *data, const Cairn__Cmd__Version *version)
{
    uint64_t *numbers = data;

    numbers[numbers[0] + 1] = version->number;
    numbers[0]++;
    return 0;
}

TEST(inode, version_restore_makes_a_new_version, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__VersionRestore op = CAIRN__CMD__VERSION_RESTORE__INIT;
    Cairn__Cmd__Version *version;
    uint64_t numbers[8] = {0};

    ASSERT_OK(CREATE(f, ROOT, "a", 2));
    ASSERT_OK(COMMIT(f, 2, 0, 10));
    ASSERT_OK(COMMIT(f, 2, 1, 20));
    op.ns = NS;
    op.inode = 2;
    op.version = 1;
    op.base_version = 1;
    ASSERT_ERR(OP(f, version_restore, VERSION_RESTORE, &op), CAIRN_ECONFLICT);
    op.base_version = 2;
    op.version = 7;
    ASSERT_ERR(OP(f, version_restore, VERSION_RESTORE, &op), CAIRN_ENOENT);
    op.version = 1;
    ASSERT_OK(OP(f, version_restore, VERSION_RESTORE, &op));
    ASSERT_EQ(f->result.value, 3);
    ASSERT_OK(meta_get_version(f->sm, NS, 2, 3, &version));
    ASSERT_EQ(version->size, 10);
    ASSERT_EQ(version->restored_from, 1);
    ASSERT_EQ(version->author_user, OWNER);
    meta_record_free(version);
    ASSERT_OK(meta_list_versions(f->sm, NS, 2, count_version, numbers));
    ASSERT_EQ(numbers[0], 3);
    ASSERT_EQ(numbers[1], 1);
    ASSERT_EQ(numbers[3], 3);
    ASSERT_EQ(used_bytes(f), 40);
}

struct listing {
    char names[8][16];
    uint64_t ids[8];
    int count;
};

static int list_entry(void *data, const char *name, size_t len, uint64_t inode)
{
    struct listing *listing = data;

    ASSERT_TRUE(len < 16 && listing->count < 8);
    memcpy(listing->names[listing->count], name, len);
    listing->names[listing->count][len] = '\0';
    listing->ids[listing->count++] = inode;
    return 0;
}

TEST(inode, list_is_in_name_order, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct listing listing = {0};

    ASSERT_OK(CREATE(f, ROOT, "b", 2));
    ASSERT_OK(CREATE(f, ROOT, "a", 3));
    ASSERT_OK(MKDIR(f, ROOT, "c", 4));
    ASSERT_OK(CREATE(f, 4, "inner", 5));
    ASSERT_OK(meta_list(f->sm, NS, ROOT, list_entry, &listing));
    ASSERT_EQ(listing.count, 3);
    ASSERT_STR_EQ(listing.names[0], "a");
    ASSERT_EQ(listing.ids[0], 3);
    ASSERT_STR_EQ(listing.names[2], "c");
}
