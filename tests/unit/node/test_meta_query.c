/* MetaRead's queries and their rights (node/meta_query.c) on a real state
 * machine, with no Raft and no loop: commands are applied directly, then
 * each query is asked as the owner, a grantee, a stranger and the system. */
#include "cluster.h"
#include "test.h"

#define GROUP    1
#define NS       ((1ull << 56) | 100)
#define OWNER    11
#define GRANTEE  12
#define STRANGER 13
#define T0       1700000000000ull

struct fixture {
    char *dir;
    struct meta_store *store;
    struct meta_sm *sm;
    meta_index index;
    uint64_t request_seq;
    Cairn__Wire__MetaReadReply reply;
};

/* Applies cmd as actor at the next index; the outcome must be 0. */
static void apply(struct fixture *f, Cairn__Cmd__Command *cmd, uint64_t actor)
{
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE] = {0};
    struct meta_result result;
    struct cn_buf buf;

    memcpy(request_id, &f->request_seq, sizeof(f->request_seq));
    f->request_seq++;
    header.request_id.data = request_id;
    header.request_id.len = sizeof(request_id);
    header.time_ms = T0;
    header.actor_user = actor;
    cmd->header = &header;
    cn_buf_init(&buf);
    ASSERT_OK(meta_command_encode(cmd, &buf));
    ASSERT_OK(meta_sm_apply(f->sm, ++f->index, buf.base, buf.len, &result));
    ASSERT_EQ(result.rv, 0);
    cn_buf_close(&buf);
}

static void mkdir_as(struct fixture *f, uint64_t parent, const char *name, uint64_t inode)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Mkdir op = CAIRN__CMD__MKDIR__INIT;

    op.ns = NS;
    op.parent = parent;
    op.name = (char *)name;
    op.inode = inode;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
    cmd.mkdir = &op;
    apply(f, &cmd, OWNER);
}

/* A drive of OWNER: /shared (2, viewer grant to GRANTEE), /private (3),
 * /shared/a (4), /shared/b (5), /shared/c (6); and the user "alice" (OWNER). */
static void *setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__NamespaceCreate ns = CAIRN__CMD__NAMESPACE_CREATE__INIT;
    Cairn__Cmd__AclGrant grant = CAIRN__CMD__ACL_GRANT__INIT;
    Cairn__Cmd__UserCreate user = CAIRN__CMD__USER_CREATE__INIT;
    char errmsg[CN_ERRMSG_SIZE];

    f->dir = cn_test_tmpdir();
    ASSERT_OK(meta_store_open(f->dir, &f->store, errmsg));
    ASSERT_OK(meta_sm_new(f->store, GROUP, NULL, &f->sm));
    ns.ns = NS;
    ns.kind = CAIRN__CMD__NAMESPACE_KIND__NS_DRIVE;
    ns.owner = OWNER;
    ns.name = "drive";
    ns.root_inode = 1;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_NAMESPACE_CREATE;
    cmd.namespace_create = &ns;
    apply(f, &cmd, 0);
    mkdir_as(f, 1, "shared", 2);
    mkdir_as(f, 1, "private", 3);
    mkdir_as(f, 2, "a", 4);
    mkdir_as(f, 2, "b", 5);
    mkdir_as(f, 2, "c", 6);
    grant.ns = NS;
    grant.inode = 2;
    grant.user = GRANTEE;
    grant.role = CAIRN__CMD__ROLE__ROLE_VIEWER;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_ACL_GRANT;
    cmd.acl_grant = &grant;
    apply(f, &cmd, OWNER);
    user.user_id = OWNER;
    user.name = "alice";
    user.password_hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    cmd.op_case = CAIRN__CMD__COMMAND__OP_USER_CREATE;
    cmd.user_create = &user;
    apply(f, &cmd, 0);
    cairn__wire__meta_read_reply__init(&f->reply);
    return f;
}

static void teardown(void *data)
{
    struct fixture *f = data;

    node__meta_query_free(&f->reply);
    meta_sm_free(f->sm);
    meta_store_close(f->store);
    cn_test_rmdir(f->dir);
    free(f->dir);
    free(f);
}

/* Asks q as actor; returns the outcome (reply->rv). */
static int ask(struct fixture *f, Cairn__Wire__MetaRead *q, uint64_t actor)
{
    node__meta_query_free(&f->reply);
    q->actor = actor;
    ASSERT_OK(node__meta_query(f->sm, q, &f->reply));
    return f->reply.rv;
}

static int ask_ns(struct fixture *f, uint64_t actor)
{
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;

    q.query_case = CAIRN__WIRE__META_READ__QUERY_NS;
    q.ns = NS;
    return ask(f, &q, actor);
}

static int ask_resolve(struct fixture *f, const char *path, uint64_t actor)
{
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__PathQuery p = CAIRN__WIRE__PATH_QUERY__INIT;

    p.ns = NS;
    p.path = (char *)path;
    q.query_case = CAIRN__WIRE__META_READ__QUERY_RESOLVE;
    q.resolve = &p;
    return ask(f, &q, actor);
}

TEST(meta_query, namespace_is_seen_by_owner_and_system_only, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_EQ(ask_ns(f, OWNER), 0);
    ASSERT_EQ(f->reply.namespace_->owner, OWNER);
    ASSERT_EQ(f->reply.journal_seq, 6); /* five mkdirs and the grant */
    ASSERT_EQ(ask_ns(f, 0), 0);
    /* A stranger, and a grantee of one folder only: as if it did not exist. */
    ASSERT_EQ(ask_ns(f, STRANGER), CAIRN_ENOENT);
    ASSERT_TRUE(f->reply.namespace_ == NULL);
    ASSERT_EQ(ask_ns(f, GRANTEE), CAIRN_ENOENT);
}

TEST(meta_query, a_grant_on_a_folder_opens_that_folder_only, setup, teardown)
{
    struct fixture *f = data;

    ASSERT_EQ(ask_resolve(f, "shared/b", GRANTEE), 0);
    ASSERT_EQ(f->reply.inode->id, 5);
    ASSERT_EQ(f->reply.parent->id, 2);
    ASSERT_EQ(ask_resolve(f, "shared", GRANTEE), 0);
    ASSERT_EQ(ask_resolve(f, "private", GRANTEE), CAIRN_ENOENT);
    ASSERT_TRUE(f->reply.inode == NULL); /* nothing of it leaks */
    ASSERT_EQ(ask_resolve(f, "private", STRANGER), CAIRN_ENOENT);
    ASSERT_EQ(ask_resolve(f, "private", OWNER), 0);
    ASSERT_EQ(ask_resolve(f, "nope", OWNER), CAIRN_ENOENT);
    ASSERT_EQ(ask_resolve(f, "shared//a", OWNER), CAIRN_EINVAL);
}

TEST(meta_query, listing_pages_and_checks_the_folder, setup, teardown)
{
    struct fixture *f = data;
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__ListQuery l = CAIRN__WIRE__LIST_QUERY__INIT;

    l.ns = NS;
    l.parent = 2;
    l.limit = 2;
    q.query_case = CAIRN__WIRE__META_READ__QUERY_LIST;
    q.list = &l;
    ASSERT_EQ(ask(f, &q, GRANTEE), 0);
    ASSERT_EQ(f->reply.n_entries, 2);
    ASSERT_STR_EQ(f->reply.entries[0]->name, "a");
    ASSERT_STR_EQ(f->reply.entries[1]->name, "b");
    ASSERT_EQ(f->reply.entries[1]->inode->id, 5);
    ASSERT_TRUE(f->reply.more);
    l.after = "b";
    ASSERT_EQ(ask(f, &q, GRANTEE), 0);
    ASSERT_EQ(f->reply.n_entries, 1);
    ASSERT_STR_EQ(f->reply.entries[0]->name, "c");
    ASSERT_FALSE(f->reply.more);
    l.parent = 1; /* the root: not the grantee's */
    l.after = "";
    ASSERT_EQ(ask(f, &q, GRANTEE), CAIRN_ENOENT);
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_entries, 2);
}

TEST(meta_query, grants_are_the_owners_business, setup, teardown)
{
    struct fixture *f = data;
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__InodeRef ref = CAIRN__WIRE__INODE_REF__INIT;

    ref.ns = NS;
    ref.inode = 2;
    q.query_case = CAIRN__WIRE__META_READ__QUERY_ACL;
    q.acl = &ref;
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_grants, 1);
    ASSERT_EQ(f->reply.grants[0]->user, GRANTEE);
    ASSERT_EQ(f->reply.grants[0]->role, CAIRN__CMD__ROLE__ROLE_VIEWER);
    ASSERT_EQ(ask(f, &q, GRANTEE), CAIRN_EPERM); /* sees the folder, not its grants */
    ASSERT_EQ(ask(f, &q, STRANGER), CAIRN_ENOENT);
    q.query_case = CAIRN__WIRE__META_READ__QUERY_ROLE;
    q.role = &ref;
    ASSERT_EQ(ask(f, &q, GRANTEE), 0);
    ASSERT_EQ(f->reply.role, CAIRN__CMD__ROLE__ROLE_VIEWER);
}

TEST(meta_query, users_and_sign_in_reads, setup, teardown)
{
    struct fixture *f = data;
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;

    q.query_case = CAIRN__WIRE__META_READ__QUERY_USER_BY_NAME;
    q.user_by_name = "alice";
    ASSERT_EQ(ask(f, &q, OWNER), CAIRN_EPERM); /* sign-in reads are the system's */
    ASSERT_EQ(ask(f, &q, 0), 0);
    ASSERT_EQ(f->reply.user->id, OWNER);
    ASSERT_TRUE(strncmp(f->reply.user->password_hash, "$argon2id$", 10) == 0);
    q.query_case = CAIRN__WIRE__META_READ__QUERY_USER;
    q.user = OWNER;
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_STR_EQ(f->reply.user->password_hash, ""); /* never to the user */
    ASSERT_EQ(ask(f, &q, STRANGER), CAIRN_EPERM);
    q.query_case = CAIRN__WIRE__META_READ__QUERY_TOKEN_HASH;
    q.token_hash.data = (uint8_t *)"short";
    q.token_hash.len = 5;
    ASSERT_EQ(ask(f, &q, 0), CAIRN_EINVAL);
    ASSERT_EQ(ask(f, &q, OWNER), CAIRN_EPERM);
}

TEST(meta_query, journal_and_bad_queries, setup, teardown)
{
    struct fixture *f = data;
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__JournalQuery j = CAIRN__WIRE__JOURNAL_QUERY__INIT;

    j.ns = NS;
    j.cursor = 3;
    q.query_case = CAIRN__WIRE__META_READ__QUERY_JOURNAL;
    q.journal = &j;
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_events, 3);
    ASSERT_EQ(f->reply.events[0]->seq, 4);
    ASSERT_EQ(f->reply.next_cursor, 6);
    ASSERT_EQ(ask(f, &q, STRANGER), CAIRN_ENOENT);
    /* A query inside no namespace, and none at all. */
    q.query_case = CAIRN__WIRE__META_READ__QUERY_NS;
    q.ns = 0;
    ASSERT_EQ(ask(f, &q, OWNER), CAIRN_EINVAL);
    q.query_case = CAIRN__WIRE__META_READ__QUERY__NOT_SET;
    ASSERT_EQ(ask(f, &q, 0), CAIRN_EINVAL);
}

static void trash_as(struct fixture *f, uint64_t inode)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Trash op = CAIRN__CMD__TRASH__INIT;

    op.ns = NS;
    op.inode = inode;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_TRASH;
    cmd.trash = &op;
    apply(f, &cmd, OWNER);
}

TEST(meta_query, trash_lists_trashed_tops_with_where_they_were, setup, teardown)
{
    struct fixture *f = data;
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__TrashQuery t = CAIRN__WIRE__TRASH_QUERY__INIT;

    t.ns = NS;
    q.query_case = CAIRN__WIRE__META_READ__QUERY_TRASH;
    q.trash = &t;
    ASSERT_EQ(ask(f, &q, OWNER), 0); /* nothing trashed yet */
    ASSERT_EQ(f->reply.n_trash, 0);
    ASSERT_FALSE(f->reply.more);
    trash_as(f, 6); /* shared/c */
    trash_as(f, 4); /* shared/a */
    trash_as(f, 3); /* private */
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_trash, 3);
    /* By parent, then id: (1, 3), (2, 4), (2, 6). */
    ASSERT_EQ(f->reply.trash[0]->inode->id, 3);
    ASSERT_STR_EQ(f->reply.trash[0]->path, "private");
    ASSERT_EQ(f->reply.trash[1]->inode->id, 4);
    ASSERT_EQ(f->reply.trash[1]->inode->parent, 2);
    ASSERT_STR_EQ(f->reply.trash[1]->inode->name, "a");
    ASSERT_TRUE(f->reply.trash[1]->inode->trashed);
    ASSERT_EQ(f->reply.trash[1]->inode->trashed_ms, T0);
    ASSERT_STR_EQ(f->reply.trash[1]->path, "shared/a");
    ASSERT_EQ(f->reply.trash[2]->inode->id, 6);
    ASSERT_STR_EQ(f->reply.trash[2]->path, "shared/c");
    ASSERT_EQ(f->reply.journal_seq, 9);
    /* Its parent trashed too: a top of its own, with no path left. */
    trash_as(f, 2);
    ASSERT_EQ(ask(f, &q, 0), 0);
    ASSERT_EQ(f->reply.n_trash, 4);
    ASSERT_EQ(f->reply.trash[0]->inode->id, 2);
    ASSERT_STR_EQ(f->reply.trash[0]->path, "shared");
    ASSERT_STR_EQ(f->reply.trash[2]->path, "");
    ASSERT_STR_EQ(f->reply.trash[3]->path, "");
}

TEST(meta_query, trash_pages_in_a_stable_order, setup, teardown)
{
    struct fixture *f = data;
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__TrashQuery t = CAIRN__WIRE__TRASH_QUERY__INIT;

    trash_as(f, 6);
    trash_as(f, 5);
    trash_as(f, 4);
    trash_as(f, 3);
    t.ns = NS;
    t.limit = 3;
    q.query_case = CAIRN__WIRE__META_READ__QUERY_TRASH;
    q.trash = &t;
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_trash, 3);
    ASSERT_TRUE(f->reply.more);
    ASSERT_EQ(f->reply.trash[0]->inode->id, 3);
    ASSERT_EQ(f->reply.trash[2]->inode->id, 5);
    t.after_parent = 2;
    t.after_inode = 5;
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_trash, 1);
    ASSERT_EQ(f->reply.trash[0]->inode->id, 6);
    ASSERT_FALSE(f->reply.more);
    /* Exactly a full page: no more. */
    t.after_parent = 1;
    t.after_inode = 3;
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_trash, 3);
    ASSERT_FALSE(f->reply.more);
    /* Past the end. */
    t.after_parent = 2;
    t.after_inode = 6;
    ASSERT_EQ(ask(f, &q, OWNER), 0);
    ASSERT_EQ(f->reply.n_trash, 0);
    ASSERT_FALSE(f->reply.more);
}

TEST(meta_query, trash_needs_a_role_on_the_root, setup, teardown)
{
    struct fixture *f = data;
    Cairn__Wire__MetaRead q = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__TrashQuery t = CAIRN__WIRE__TRASH_QUERY__INIT;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__AclGrant grant = CAIRN__CMD__ACL_GRANT__INIT;

    trash_as(f, 4); /* from the grantee's folder */
    trash_as(f, 3);
    t.ns = NS;
    q.query_case = CAIRN__WIRE__META_READ__QUERY_TRASH;
    q.trash = &t;
    /* A grantee of one folder sees none of it (names from the rest would
     * leak), a stranger neither: as if there were no namespace. */
    ASSERT_EQ(ask(f, &q, GRANTEE), CAIRN_ENOENT);
    ASSERT_EQ(f->reply.n_trash, 0);
    ASSERT_EQ(ask(f, &q, STRANGER), CAIRN_ENOENT);
    ASSERT_EQ(f->reply.n_trash, 0);
    /* A viewer of the whole namespace sees it all. */
    grant.ns = NS;
    grant.inode = 1;
    grant.user = STRANGER;
    grant.role = CAIRN__CMD__ROLE__ROLE_VIEWER;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_ACL_GRANT;
    cmd.acl_grant = &grant;
    apply(f, &cmd, OWNER);
    ASSERT_EQ(ask(f, &q, STRANGER), 0);
    ASSERT_EQ(f->reply.n_trash, 2);
    /* No namespace, or one that does not exist. */
    t.ns = 0;
    ASSERT_EQ(ask(f, &q, OWNER), CAIRN_EINVAL);
    t.ns = NS + 1;
    ASSERT_EQ(ask(f, &q, OWNER), CAIRN_ENOENT);
    ASSERT_EQ(ask(f, &q, 0), CAIRN_ENOENT);
}
