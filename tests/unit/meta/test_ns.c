/* Namespaces, ACLs enforced by the state machine, and the journal. */
#include "fixture.h"

TEST(ns, create_makes_the_root, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Namespace *ns;
    Cairn__Cmd__Inode *root;

    ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
    ASSERT_OK(meta_get_namespace(f->sm, NS, &ns));
    ASSERT_EQ(ns->owner, OWNER);
    ASSERT_EQ(ns->root_inode, ROOT);
    ASSERT_EQ(ns->created_ms, T0);
    meta_record_free(ns);
    ASSERT_OK(meta_get_inode(f->sm, NS, ROOT, &root));
    ASSERT_EQ(root->kind, CAIRN__CMD__INODE_KIND__INODE_DIR);
    meta_record_free(root);
}

TEST(ns, create_errors, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__NamespaceCreate op = ns_create_msg(NS, OWNER, ROOT);

    ASSERT_ERR(NS_CREATE(f, NS, OTHER, ROOT), CAIRN_EPERM); /* for someone else */
    ASSERT_ERR(NS_CREATE(f, 0, OWNER, ROOT), CAIRN_EINVAL);
    ASSERT_ERR(NS_CREATE(f, NS, OWNER, 0), CAIRN_EINVAL);
    op.kind = CAIRN__CMD__NAMESPACE_KIND__NS_NONE;
    ASSERT_ERR(OP(f, namespace_create, NAMESPACE_CREATE, &op), CAIRN_EINVAL);
    ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
    ASSERT_ERR(NS_CREATE(f, NS, OWNER, ROOT), CAIRN_EEXIST);
    f->actor = 0; /* the system creates namespaces for anyone */
    ASSERT_OK(NS_CREATE(f, NS + 1, OTHER, ROOT));
}

TEST(ns, acl_is_enforced_by_apply, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Role role;

    ASSERT_OK(MKDIR(f, ROOT, "shared", 2));
    f->actor = OTHER;
    ASSERT_ERR(MKDIR(f, ROOT, "mine", 3), CAIRN_EPERM);
    ASSERT_ERR(GRANT(f, OTHER, CAIRN__CMD__ROLE__ROLE_EDITOR), CAIRN_EPERM);
    f->actor = OWNER;
    ASSERT_OK(GRANT(f, OTHER, CAIRN__CMD__ROLE__ROLE_VIEWER));
    ASSERT_OK(meta_role(f->sm, NS, OTHER, &role));
    ASSERT_EQ(role, CAIRN__CMD__ROLE__ROLE_VIEWER);
    f->actor = OTHER;
    ASSERT_ERR(MKDIR(f, ROOT, "mine", 3), CAIRN_EPERM); /* a viewer cannot write */
    ASSERT_ERR(REVOKE(f, OTHER), CAIRN_EPERM);
    f->actor = OWNER;
    ASSERT_OK(GRANT(f, OTHER, CAIRN__CMD__ROLE__ROLE_EDITOR));
    f->actor = OTHER;
    ASSERT_OK(MKDIR(f, ROOT, "mine", 3));
    ASSERT_OK(RENAME(f, 3, 2, "mine"));
    f->actor = OWNER;
    ASSERT_OK(REVOKE(f, OTHER));
    ASSERT_ERR(REVOKE(f, OTHER), CAIRN_ENOENT);
    ASSERT_OK(meta_role(f->sm, NS, OTHER, &role));
    ASSERT_EQ(role, CAIRN__CMD__ROLE__ROLE_NONE);
    ASSERT_OK(meta_role(f->sm, NS, OWNER, &role));
    ASSERT_EQ(role, CAIRN__CMD__ROLE__ROLE_OWNER);
    f->actor = OTHER;
    ASSERT_ERR(TRASH(f, 3), CAIRN_EPERM);
}

TEST(ns, grant_errors, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__AclGrant op = CAIRN__CMD__ACL_GRANT__INIT;

    ASSERT_ERR(GRANT(f, OTHER, CAIRN__CMD__ROLE__ROLE_OWNER), CAIRN_EINVAL);
    ASSERT_ERR(GRANT(f, OTHER, CAIRN__CMD__ROLE__ROLE_NONE), CAIRN_EINVAL);
    ASSERT_ERR(GRANT(f, OWNER, CAIRN__CMD__ROLE__ROLE_VIEWER), CAIRN_EINVAL);
    ASSERT_ERR(GRANT(f, 0, CAIRN__CMD__ROLE__ROLE_VIEWER), CAIRN_EINVAL);
    op.ns = NS + 5;
    op.user = OTHER;
    op.role = CAIRN__CMD__ROLE__ROLE_VIEWER;
    ASSERT_ERR(OP(f, acl_grant, ACL_GRANT, &op), CAIRN_ENOENT);
}

struct events {
    Cairn__Cmd__EventKind kinds[32];
    uint64_t seqs[32];
    uint64_t inodes[32];
    int count;
};

static int collect_event(void *data, const Cairn__Cmd__Event *event)
{
    struct events *events = data;

    ASSERT_TRUE(events->count < 32);
    events->kinds[events->count] = event->kind;
    events->seqs[events->count] = event->seq;
    events->inodes[events->count++] = event->inode;
    return 0;
}

TEST(ns, journal_is_gap_free_and_readable_from_a_cursor, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct events events = {0};
    uint64_t next;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));                         /* 1 created */
    ASSERT_ERR(MKDIR(f, ROOT, "a", 3), CAIRN_EEXIST);          /* a failure: no event */
    ASSERT_OK(CREATE(f, 2, "x", 4));                           /* 2 created */
    ASSERT_OK(COMMIT(f, 4, 0, 3));                             /* 3 modified */
    ASSERT_OK(RENAME(f, 4, ROOT, "y"));                        /* 4 moved */
    ASSERT_OK(GRANT(f, OTHER, CAIRN__CMD__ROLE__ROLE_VIEWER)); /* 5 shared */
    ASSERT_OK(TRASH(f, 4));                                    /* 6 deleted */
    ASSERT_OK(RESTORE(f, 4));                                  /* 7 created */
    ASSERT_OK(TRASH(f, 4));                                    /* 8 deleted */
    ASSERT_OK(PURGE(f, 4));                                    /* 9 purged */
    ASSERT_OK(REVOKE(f, OTHER));                               /* 10 unshared */
    ASSERT_OK(meta_journal_read(f->sm, NS, 0, 4, collect_event, &events, &next));
    ASSERT_EQ(events.count, 4);
    ASSERT_EQ(next, 4);
    ASSERT_EQ(events.kinds[0], CAIRN__CMD__EVENT_KIND__EVENT_CREATED);
    ASSERT_EQ(events.kinds[2], CAIRN__CMD__EVENT_KIND__EVENT_MODIFIED);
    ASSERT_EQ(events.kinds[3], CAIRN__CMD__EVENT_KIND__EVENT_MOVED);
    ASSERT_OK(meta_journal_read(f->sm, NS, next, 100, collect_event, &events, &next));
    ASSERT_EQ(events.count, 10);
    ASSERT_EQ(next, 10);
    for (int i = 0; i < events.count; i++) {
        ASSERT_EQ(events.seqs[i], i + 1);
    }
    ASSERT_EQ(events.kinds[4], CAIRN__CMD__EVENT_KIND__EVENT_SHARED);
    ASSERT_EQ(events.kinds[5], CAIRN__CMD__EVENT_KIND__EVENT_DELETED);
    ASSERT_EQ(events.kinds[8], CAIRN__CMD__EVENT_KIND__EVENT_PURGED);
    ASSERT_EQ(events.kinds[9], CAIRN__CMD__EVENT_KIND__EVENT_UNSHARED);
    ASSERT_EQ(events.inodes[8], 4);
    ASSERT_OK(meta_journal_read(f->sm, NS, next, 100, collect_event, &events, &next));
    ASSERT_EQ(events.count, 10); /* nothing after the end */
    ASSERT_EQ(next, 10);
}

static int set_quota(struct fixture *f, uint64_t ns, uint64_t quota)
{
    Cairn__Cmd__NamespaceSetQuota op = CAIRN__CMD__NAMESPACE_SET_QUOTA__INIT;

    op.ns = ns;
    op.quota_bytes = quota;
    return OP(f, namespace_set_quota, NAMESPACE_SET_QUOTA, &op);
}

TEST(ns, the_drive_quota_follows_the_user, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__VersionRestore restore = CAIRN__CMD__VERSION_RESTORE__INIT;

    ASSERT_OK(CREATE(f, ROOT, "a", 2));
    ASSERT_OK(COMMIT(f, 2, 0, 600));
    ASSERT_ERR(set_quota(f, NS, 1000), CAIRN_EPERM); /* not the owner's to raise */
    f->actor = 0;
    ASSERT_ERR(set_quota(f, NS + 1, 1000), CAIRN_ENOENT);
    ASSERT_OK(set_quota(f, NS, 1000));
    f->actor = OWNER;
    ASSERT_ERR(COMMIT(f, 2, 1, 401), CAIRN_EQUOTA); /* every kept version counts */
    ASSERT_OK(COMMIT(f, 2, 1, 400));
    restore.ns = NS;
    restore.inode = 2;
    restore.version = 1;
    restore.base_version = 2;
    ASSERT_ERR(OP(f, version_restore, VERSION_RESTORE, &restore), CAIRN_EQUOTA);
    f->actor = 0;
    ASSERT_OK(set_quota(f, NS, 500)); /* below what is used: allowed */
    f->actor = OWNER;
    ASSERT_ERR(COMMIT(f, 2, 2, 1), CAIRN_EQUOTA);
    ASSERT_OK(TRASH(f, 2));
    ASSERT_OK(PURGE(f, 2)); /* frees 1000 bytes */
    ASSERT_OK(CREATE(f, ROOT, "b", 3));
    ASSERT_OK(COMMIT(f, 3, 0, 500));
    f->actor = 0;
    ASSERT_OK(set_quota(f, NS, 0)); /* unlimited */
    f->actor = OWNER;
    ASSERT_OK(COMMIT(f, 3, 1, 1u << 30));
}
