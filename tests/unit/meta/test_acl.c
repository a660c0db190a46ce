/* Sharing per inode: a role is the highest grant on the inode or an
 * ancestor, and apply checks it on the inode each operation touches. */
#include "fixture.h"

#define VIEWER     CAIRN__CMD__ROLE__ROLE_VIEWER
#define EDITOR     CAIRN__CMD__ROLE__ROLE_EDITOR
#define OWNER_ROLE CAIRN__CMD__ROLE__ROLE_OWNER
#define NONE       CAIRN__CMD__ROLE__ROLE_NONE
#define THIRD      13

/* ROOT/{a(2)/{f(3), sub(4)/{g(5)}}, b(6)/{h(7)}} */
static void *tree_setup(void)
{
    struct fixture *f = ns_setup();

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(CREATE(f, 2, "f", 3));
    ASSERT_OK(MKDIR(f, 2, "sub", 4));
    ASSERT_OK(CREATE(f, 4, "g", 5));
    ASSERT_OK(MKDIR(f, ROOT, "b", 6));
    ASSERT_OK(CREATE(f, 6, "h", 7));
    return f;
}

TEST(acl, role_is_the_highest_grant_up_the_path, tree_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Role role;

    ASSERT_OK(GRANT_ON(f, 2, OTHER, VIEWER));
    ASSERT_EQ(role_on(f, 2, OTHER), VIEWER);
    ASSERT_EQ(role_on(f, 3, OTHER), VIEWER);
    ASSERT_EQ(role_on(f, 5, OTHER), VIEWER);
    ASSERT_EQ(role_on(f, ROOT, OTHER), NONE); /* not the parent */
    ASSERT_EQ(role_on(f, 0, OTHER), NONE);
    ASSERT_EQ(role_on(f, 6, OTHER), NONE); /* nor a sibling */
    ASSERT_EQ(role_on(f, 7, OTHER), NONE);
    ASSERT_EQ(role_on(f, 99, OTHER), NONE); /* no such inode */
    ASSERT_EQ(role_on(f, 7, OWNER), OWNER_ROLE);
    ASSERT_EQ(role_on(f, 7, 0), OWNER_ROLE);
    ASSERT_OK(GRANT_ON(f, 4, OTHER, EDITOR));
    ASSERT_EQ(role_on(f, 4, OTHER), EDITOR);
    ASSERT_EQ(role_on(f, 5, OTHER), EDITOR);
    ASSERT_EQ(role_on(f, 3, OTHER), VIEWER);
    ASSERT_EQ(role_on(f, 2, OTHER), VIEWER);
    ASSERT_OK(GRANT_ON(f, 0, OTHER, VIEWER)); /* the root: the whole namespace */
    ASSERT_EQ(role_on(f, 7, OTHER), VIEWER);
    ASSERT_EQ(role_on(f, 5, OTHER), EDITOR); /* the highest wins, a lower one above */
    ASSERT_OK(meta_role(f->sm, NS, OTHER, &role));
    ASSERT_EQ(role, VIEWER);
    ASSERT_EQ(role_on(f, 5, THIRD), NONE);
    ASSERT_ERR(meta_role_inode(f->sm, NS + 1, 5, OTHER, &role), CAIRN_ENOENT);
}

static int upload_begin_in(struct fixture *f, uint64_t parent, uint8_t id)
{
    Cairn__Cmd__UploadBegin op = CAIRN__CMD__UPLOAD_BEGIN__INIT;
    uint8_t upload_id[META_UPLOAD_ID_SIZE] = {id};

    op.upload_id.data = upload_id;
    op.upload_id.len = sizeof(upload_id);
    op.ns = NS;
    op.parent = parent;
    op.name = "up";
    op.expires_ms = f->time_ms + 1000;
    return OP(f, upload_begin, UPLOAD_BEGIN, &op);
}

static int version_restore(struct fixture *f, uint64_t inode, uint64_t version, uint64_t base)
{
    Cairn__Cmd__VersionRestore op = CAIRN__CMD__VERSION_RESTORE__INIT;

    op.ns = NS;
    op.inode = inode;
    op.version = version;
    op.base_version = base;
    return OP(f, version_restore, VERSION_RESTORE, &op);
}

TEST(acl, a_viewer_reads_but_cannot_write, tree_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(COMMIT(f, 3, 0, 10));
    ASSERT_OK(GRANT_ON(f, 2, OTHER, VIEWER));
    f->actor = OTHER;
    ASSERT_ERR(MKDIR(f, 2, "new", 20), CAIRN_EPERM);
    ASSERT_ERR(CREATE(f, 4, "new", 20), CAIRN_EPERM);
    ASSERT_ERR(COMMIT(f, 3, 1, 5), CAIRN_EPERM);
    ASSERT_ERR(version_restore(f, 3, 1, 1), CAIRN_EPERM);
    ASSERT_ERR(RENAME(f, 3, 2, "f2"), CAIRN_EPERM);
    ASSERT_ERR(TRASH(f, 3), CAIRN_EPERM);
    ASSERT_ERR(upload_begin_in(f, 2, 1), CAIRN_EPERM);
    ASSERT_ERR(GRANT_ON(f, 2, THIRD, VIEWER), CAIRN_EPERM); /* only the owner shares */
    f->actor = OWNER;
    ASSERT_OK(TRASH(f, 3));
    f->actor = OTHER;
    ASSERT_ERR(RESTORE(f, 3), CAIRN_EPERM);
    ASSERT_ERR(PURGE(f, 3), CAIRN_EPERM);
}

TEST(acl, an_editor_writes_inside_the_share_only, tree_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(GRANT_ON(f, 2, OTHER, VIEWER));
    ASSERT_OK(GRANT_ON(f, 4, OTHER, EDITOR));
    f->actor = OTHER;
    ASSERT_OK(MKDIR(f, 4, "made", 20));
    ASSERT_OK(CREATE(f, 20, "file", 21));
    ASSERT_OK(COMMIT(f, 5, 0, 7));
    ASSERT_OK(COMMIT(f, 5, 1, 8));
    ASSERT_OK(version_restore(f, 5, 1, 2));
    ASSERT_OK(RENAME(f, 21, 4, "moved")); /* within the share */
    ASSERT_OK(upload_begin_in(f, 20, 2));
    ASSERT_OK(TRASH(f, 21));
    ASSERT_OK(RESTORE(f, 21));
    ASSERT_OK(TRASH(f, 21));
    ASSERT_OK(PURGE(f, 21));
    /* Out of the share, to a folder it only views, or to one it cannot see. */
    ASSERT_ERR(RENAME(f, 5, 2, "g"), CAIRN_EPERM);
    ASSERT_ERR(RENAME(f, 5, ROOT, "g"), CAIRN_EPERM);
    ASSERT_ERR(RENAME(f, 5, 6, "g"), CAIRN_EPERM);
    /* The shared folder itself sits in a folder it only views. */
    ASSERT_ERR(RENAME(f, 4, 2, "renamed"), CAIRN_EPERM);
    ASSERT_ERR(TRASH(f, 4), CAIRN_EPERM);
    /* Into the share from outside. */
    ASSERT_ERR(RENAME(f, 7, 4, "h"), CAIRN_EPERM);
    /* Parent and siblings stay out of reach. */
    ASSERT_ERR(MKDIR(f, 2, "x", 22), CAIRN_EPERM);
    ASSERT_ERR(MKDIR(f, ROOT, "x", 22), CAIRN_EPERM);
    ASSERT_ERR(COMMIT(f, 7, 0, 1), CAIRN_EPERM);
    ASSERT_ERR(COMMIT(f, 3, 0, 1), CAIRN_EPERM);
    ASSERT_ERR(MKDIR(f, 99, "x", 22), CAIRN_EPERM); /* no such folder: not told */
    f->actor = OWNER;
    ASSERT_ERR(MKDIR(f, 99, "x", 22), CAIRN_ENOENT); /* the owner is told */
    ASSERT_OK(GRANT_ON(f, 0, OTHER, EDITOR));
    f->actor = OTHER;
    ASSERT_OK(RENAME(f, 4, ROOT, "sub"));
    ASSERT_OK(COMMIT(f, 7, 0, 1));
}

struct grants {
    uint64_t users[8];
    Cairn__Cmd__Role roles[8];
    uint64_t times[8];
    int count;
};

static int collect_grant(void *data, const Cairn__Cmd__AclEntry *entry)
{
    struct grants *grants = data;

    ASSERT_TRUE(grants->count < 8);
    grants->users[grants->count] = entry->user;
    grants->roles[grants->count] = entry->role;
    grants->times[grants->count++] = entry->time_ms;
    return 0;
}

TEST(acl, list_and_revoke, tree_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct grants grants = {0};

    ASSERT_OK(GRANT_ON(f, 2, THIRD, EDITOR));
    f->time_ms += 10;
    ASSERT_OK(GRANT_ON(f, 2, OTHER, VIEWER));
    ASSERT_OK(GRANT_ON(f, 0, OTHER, VIEWER));
    ASSERT_OK(meta_acl_list(f->sm, NS, 2, collect_grant, &grants));
    ASSERT_EQ(grants.count, 2);
    ASSERT_EQ(grants.users[0], OTHER); /* by user id */
    ASSERT_EQ(grants.roles[0], VIEWER);
    ASSERT_EQ(grants.times[0], T0 + 10);
    ASSERT_EQ(grants.users[1], THIRD);
    ASSERT_EQ(grants.roles[1], EDITOR);
    grants.count = 0;
    ASSERT_OK(meta_acl_list(f->sm, NS, 0, collect_grant, &grants));
    ASSERT_EQ(grants.count, 1);
    grants.count = 0;
    ASSERT_OK(meta_acl_list(f->sm, NS, ROOT, collect_grant, &grants));
    ASSERT_EQ(grants.count, 1);
    grants.count = 0;
    ASSERT_OK(meta_acl_list(f->sm, NS, 7, collect_grant, &grants));
    ASSERT_EQ(grants.count, 0);
    ASSERT_ERR(meta_acl_list(f->sm, NS + 1, 0, collect_grant, &grants), CAIRN_ENOENT);
    ASSERT_OK(GRANT_ON(f, 2, OTHER, EDITOR)); /* a new role replaces the old */
    ASSERT_EQ(role_on(f, 3, OTHER), EDITOR);
    f->actor = OTHER;
    ASSERT_ERR(REVOKE_ON(f, 2, OTHER), CAIRN_EPERM);
    f->actor = OWNER;
    ASSERT_OK(REVOKE_ON(f, 2, OTHER));
    ASSERT_EQ(role_on(f, 3, OTHER), VIEWER); /* the root's grant remains */
    ASSERT_ERR(REVOKE_ON(f, 2, OTHER), CAIRN_ENOENT);
    ASSERT_ERR(REVOKE_ON(f, 99, THIRD), CAIRN_ENOENT);
    ASSERT_ERR(GRANT_ON(f, 99, THIRD, VIEWER), CAIRN_ENOENT);
    ASSERT_ERR(GRANT_ON(f, 2, OWNER, VIEWER), CAIRN_EINVAL);
    ASSERT_ERR(GRANT_ON(f, 2, THIRD, OWNER_ROLE), CAIRN_EINVAL);
    ASSERT_OK(REVOKE(f, OTHER)); /* inode 0: the root */
    ASSERT_EQ(role_on(f, 3, OTHER), NONE);
}

struct seen {
    Cairn__Cmd__EventKind kinds[4];
    uint64_t inodes[4];
    uint64_t users[4];
    int count;
};

static int collect_event(void *data, const Cairn__Cmd__Event *event)
{
    struct seen *seen = data;

    ASSERT_TRUE(seen->count < 4);
    seen->kinds[seen->count] = event->kind;
    seen->inodes[seen->count] = event->inode;
    seen->users[seen->count++] = event->user;
    return 0;
}

TEST(acl, grants_are_journaled_on_their_inode, tree_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Namespace *ns;
    struct seen seen = {0};
    uint64_t seq, next;

    ASSERT_OK(meta_get_namespace(f->sm, NS, &ns));
    seq = ns->journal_seq;
    meta_record_free(ns);
    ASSERT_OK(GRANT_ON(f, 4, OTHER, EDITOR));
    ASSERT_OK(REVOKE_ON(f, 4, OTHER));
    ASSERT_OK(meta_journal_read(f->sm, NS, seq, 4, collect_event, &seen, &next));
    ASSERT_EQ(seen.count, 2);
    ASSERT_EQ(seen.kinds[0], CAIRN__CMD__EVENT_KIND__EVENT_SHARED);
    ASSERT_EQ(seen.kinds[1], CAIRN__CMD__EVENT_KIND__EVENT_UNSHARED);
    ASSERT_EQ(seen.inodes[0], 4);
    ASSERT_EQ(seen.users[0], OTHER);
    ASSERT_EQ(seen.users[1], OTHER);
}

TEST(acl, purge_takes_the_grants_along, tree_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct grants grants = {0};

    ASSERT_OK(GRANT_ON(f, 5, OTHER, EDITOR));
    ASSERT_OK(GRANT_ON(f, 4, THIRD, VIEWER));
    ASSERT_OK(TRASH(f, 4));
    ASSERT_EQ(role_on(f, 5, OTHER), EDITOR); /* kept while in the trash */
    ASSERT_OK(PURGE(f, 4));                  /* the checker finds no grant left behind */
    ASSERT_OK(meta_acl_list(f->sm, NS, 5, collect_grant, &grants));
    ASSERT_OK(meta_acl_list(f->sm, NS, 4, collect_grant, &grants));
    ASSERT_EQ(grants.count, 0);
    ASSERT_EQ(role_on(f, 5, OTHER), NONE);
}
