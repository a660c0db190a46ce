/* The queries the node serves: paths, pages of a folder, the trash. */
#include "fixture.h"

/* ROOT/{a(2)/{b(3)/{c(4) file}, f(5) file}} */
static void *read_setup(void)
{
    struct fixture *f = ns_setup();

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(MKDIR(f, 2, "b", 3));
    ASSERT_OK(CREATE(f, 3, "c", 4));
    ASSERT_OK(CREATE(f, 2, "f", 5));
    return f;
}

/* The id resolved (0 on an error, with the error in *rv) and its parent's. */
static uint64_t resolve(
    struct fixture *f, uint64_t root, const char *path, uint64_t *parent, int *rv)
{
    Cairn__Cmd__Inode *inode, *folder;
    uint64_t id = 0;

    *rv = meta_resolve(f->sm, NS, root, path, &inode, &folder);
    *parent = 0;
    if (*rv == 0) {
        ASSERT_TRUE(inode != NULL);
        id = inode->id;
        *parent = folder != NULL ? folder->id : 0;
        if (folder != NULL) {
            ASSERT_EQ(inode->parent, folder->id);
        }
    } else {
        ASSERT_TRUE(inode == NULL && folder == NULL);
    }
    meta_record_free(inode);
    meta_record_free(folder);
    return id;
}

#define ASSERT_RESOLVES(f, root, path, want, want_parent)          \
    do {                                                           \
        uint64_t par_;                                             \
        int res_;                                                  \
        uint64_t id_ = resolve((f), (root), (path), &par_, &res_); \
        ASSERT_OK(res_);                                           \
        ASSERT_EQ(id_, (want));                                    \
        ASSERT_EQ(par_, (want_parent));                            \
    } while (0)

#define ASSERT_RESOLVE_ERR(f, root, path, code)     \
    do {                                            \
        uint64_t par_;                              \
        int res_;                                   \
        resolve((f), (root), (path), &par_, &res_); \
        ASSERT_ERR(res_, (code));                   \
    } while (0)

TEST(read, resolve_paths, read_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Inode *inode, *parent;
    char long_path[META_PATH_MAX + 2];
    char long_name[META_NAME_MAX + 2];

    ASSERT_RESOLVES(f, 0, "", ROOT, 0);
    ASSERT_RESOLVES(f, ROOT, "", ROOT, 0);
    ASSERT_RESOLVES(f, 0, "a", 2, ROOT);
    ASSERT_RESOLVES(f, 0, "a/b/c", 4, 3);
    ASSERT_RESOLVES(f, 0, "a/f", 5, 2);
    ASSERT_RESOLVES(f, 2, "b/c", 4, 3); /* from a shared folder */
    ASSERT_RESOLVES(f, 4, "", 4, 0);
    ASSERT_RESOLVE_ERR(f, 0, "x", CAIRN_ENOENT);
    ASSERT_RESOLVE_ERR(f, 0, "a/x/c", CAIRN_ENOENT);
    ASSERT_RESOLVE_ERR(f, 0, "a/f/c", CAIRN_ENOTDIR);
    ASSERT_RESOLVE_ERR(f, 5, "c", CAIRN_ENOTDIR);
    ASSERT_RESOLVE_ERR(f, 99, "", CAIRN_ENOENT);
    ASSERT_RESOLVE_ERR(f, 99, "a", CAIRN_ENOENT);
    ASSERT_RESOLVE_ERR(f, 0, "/a", CAIRN_EINVAL);
    ASSERT_RESOLVE_ERR(f, 0, "a/", CAIRN_EINVAL);
    ASSERT_RESOLVE_ERR(f, 0, "a//b", CAIRN_EINVAL);
    ASSERT_RESOLVE_ERR(f, 0, "a/./b", CAIRN_EINVAL);
    ASSERT_RESOLVE_ERR(f, 0, "a/../a", CAIRN_EINVAL);
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ASSERT_RESOLVE_ERR(f, 0, long_name, CAIRN_EINVAL);
    memset(long_path, 'a', sizeof(long_path) - 1);
    for (size_t i = 1; i < sizeof(long_path) - 1; i += 2) {
        long_path[i] = '/';
    }
    long_path[sizeof(long_path) - 1] = '\0';
    ASSERT_RESOLVE_ERR(f, 0, long_path, CAIRN_EINVAL);
    ASSERT_ERR(meta_resolve(f->sm, NS + 1, 0, "", &inode, &parent), CAIRN_ENOENT);
}

TEST(read, resolve_skips_the_trash, read_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(TRASH(f, 3));
    ASSERT_RESOLVE_ERR(f, 0, "a/b", CAIRN_ENOENT);
    ASSERT_RESOLVE_ERR(f, 0, "a/b/c", CAIRN_ENOENT);
    ASSERT_RESOLVE_ERR(f, 3, "c", CAIRN_ENOENT); /* from inside the trash */
    ASSERT_RESOLVE_ERR(f, 4, "", CAIRN_ENOENT);
    ASSERT_RESOLVES(f, 0, "a/f", 5, 2);
    ASSERT_OK(RESTORE(f, 3));
    ASSERT_RESOLVES(f, 3, "c", 4, 3);
}

TEST(read, resolve_depth_is_bounded, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    char path[128] = "";

    fixture_close(f);
    f->limits.depth_max = 3;
    fixture_open(f);
    ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
    ASSERT_OK(MKDIR(f, ROOT, "d", 2));
    ASSERT_OK(MKDIR(f, 2, "d", 3));
    ASSERT_OK(MKDIR(f, 3, "d", 4));
    ASSERT_RESOLVES(f, 0, "d/d/d", 4, 3);
    snprintf(path, sizeof(path), "d/d/d/d");
    ASSERT_RESOLVE_ERR(f, 0, path, CAIRN_ENOENT);
}

struct page {
    char names[8][16];
    uint64_t ids[8];
    int count;
};

static int collect_entry(void *data, const char *name, size_t len, uint64_t inode)
{
    struct page *page = data;

    ASSERT_TRUE(page->count < 8 && len < 16);
    memcpy(page->names[page->count], name, len);
    page->names[page->count][len] = '\0';
    page->ids[page->count++] = inode;
    return 0;
}

static struct page list_page(struct fixture *f, const char *after, uint32_t limit, bool *more)
{
    struct page page = {0};

    ASSERT_OK(meta_list_after(f->sm, NS, ROOT, after, limit, collect_entry, &page, more));
    return page;
}

TEST(read, list_pages_by_name, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    const char *names[] = {"a", "b", "c", "d", "e"};
    struct page page;
    char long_name[META_NAME_MAX + 2];
    bool more;

    for (int i = 0; i < 5; i++) {
        ASSERT_OK(CREATE(f, ROOT, names[4 - i], 10 + (uint64_t)i));
    }
    page = list_page(f, "", 2, &more);
    ASSERT_EQ(page.count, 2);
    ASSERT_STR_EQ(page.names[0], "a");
    ASSERT_EQ(page.ids[0], 14);
    ASSERT_STR_EQ(page.names[1], "b");
    ASSERT_TRUE(more);
    page = list_page(f, "b", 2, &more);
    ASSERT_EQ(page.count, 2);
    ASSERT_STR_EQ(page.names[0], "c");
    ASSERT_STR_EQ(page.names[1], "d");
    ASSERT_TRUE(more);
    page = list_page(f, "d", 2, &more);
    ASSERT_EQ(page.count, 1);
    ASSERT_STR_EQ(page.names[0], "e");
    ASSERT_FALSE(more);
    page = list_page(f, "bb", 10, &more); /* a name not there: the ones after it */
    ASSERT_EQ(page.count, 3);
    ASSERT_STR_EQ(page.names[0], "c");
    ASSERT_FALSE(more);
    page = list_page(f, "e", 10, &more);
    ASSERT_EQ(page.count, 0);
    ASSERT_FALSE(more);
    page = list_page(f, "", 0, &more);
    ASSERT_EQ(page.count, 0);
    ASSERT_TRUE(more);
    page = list_page(f, "", 5, &more);
    ASSERT_EQ(page.count, 5);
    ASSERT_FALSE(more);
    ASSERT_OK(TRASH(f, 12)); /* "c" */
    page = list_page(f, "b", 10, &more);
    ASSERT_EQ(page.count, 2);
    ASSERT_STR_EQ(page.names[0], "d");
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    ASSERT_ERR(meta_list_after(f->sm, NS, ROOT, long_name, 1, collect_entry, &page, &more),
               CAIRN_EINVAL);
}

struct trash {
    uint64_t parents[8];
    uint64_t ids[8];
    int count;
};

static int collect_trash(void *data, uint64_t parent, uint64_t inode)
{
    struct trash *trash = data;

    ASSERT_TRUE(trash->count < 8);
    trash->parents[trash->count] = parent;
    trash->ids[trash->count++] = inode;
    return 0;
}

TEST(read, list_the_trash, read_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct trash trash = {0};

    ASSERT_OK(meta_list_trash(f->sm, NS, collect_trash, &trash));
    ASSERT_EQ(trash.count, 0);
    ASSERT_OK(TRASH(f, 4));
    ASSERT_OK(TRASH(f, 5));
    ASSERT_OK(meta_list_trash(f->sm, NS, collect_trash, &trash));
    ASSERT_EQ(trash.count, 2);
    ASSERT_EQ(trash.parents[0], 2);
    ASSERT_EQ(trash.ids[0], 5);
    ASSERT_EQ(trash.parents[1], 3);
    ASSERT_EQ(trash.ids[1], 4);
}
