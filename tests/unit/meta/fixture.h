/*
 * A state machine on a fresh RocksDB in a temporary directory, with helpers
 * that build one command each, apply it at the next index, and check every
 * invariant after the step (meta_sm_check()).
 */
#ifndef META_TEST_FIXTURE_H
#define META_TEST_FIXTURE_H

#include "meta.h"
#include "test.h"

#define GROUP 7
#define NS    100
#define ROOT  1
#define OWNER 11
#define OTHER 12
#define T0    1700000000000ull

struct fixture {
    char *dir;
    struct meta_store *store;
    struct meta_sm *sm;
    uint64_t group;
    struct meta_limits limits;
    meta_index index;
    uint64_t time_ms;
    uint64_t actor;
    uint64_t request_seq; /* request ids are made from it: unique per apply */
    bool no_request_id;
    struct cn_buf buf;
    struct meta_result result;
};

static inline void fixture_open(struct fixture *f)
{
    char errmsg[CN_ERRMSG_SIZE];
    int rv = meta_store_open(f->dir, &f->store, errmsg);

    if (rv != 0) {
        cn_test_fail(__FILE__, __LINE__, "meta_store_open: %s", errmsg);
    }
    ASSERT_OK(meta_sm_new(f->store, f->group, &f->limits, &f->sm));
}

static inline void fixture_close(struct fixture *f)
{
    meta_sm_free(f->sm);
    meta_store_close(f->store);
    f->sm = NULL;
    f->store = NULL;
}

static inline void *fixture_setup(void)
{
    struct fixture *f = cn_xcalloc(1, sizeof(*f));

    f->dir = cn_test_tmpdir();
    f->group = GROUP;
    meta_limits_default(&f->limits);
    f->time_ms = T0;
    f->actor = OWNER;
    cn_buf_init(&f->buf);
    fixture_open(f);
    return f;
}

static inline void fixture_teardown(void *data)
{
    struct fixture *f = data;

    if (f->sm != NULL) {
        fixture_close(f);
    }
    cn_buf_close(&f->buf);
    cn_test_rmdir(f->dir);
    free(f->dir);
    free(f);
}

static inline void fixture_check(struct fixture *f, const char *file, int line)
{
    char errmsg[CN_ERRMSG_SIZE];
    int rv = meta_sm_check(f->sm, errmsg);

    if (rv != 0) {
        cn_test_fail(file, line, "invariant: %s (%s)", errmsg, cairn_errname(rv));
    }
}

/* Applies cmd (its header is filled in here) at the next index; returns the
 * outcome's rv and checks the invariants. */
static inline int fixture_apply_at(struct fixture *f,
                                   Cairn__Cmd__Command *cmd,
                                   const char *file,
                                   int line)
{
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE] = {0};
    int rv;

    f->request_seq++;
    cn_put_u64(request_id, f->request_seq);
    cn_put_u64(request_id + 8, 0x5eedull);
    if (cmd->header == NULL) {
        header.time_ms = f->time_ms;
        header.actor_user = f->actor;
        if (!f->no_request_id) {
            header.request_id.data = request_id;
            header.request_id.len = sizeof(request_id);
        }
        cmd->header = &header;
    }
    rv = meta_command_encode(cmd, &f->buf);
    if (cmd->header == &header) {
        cmd->header = NULL;
    }
    if (rv != 0) {
        cn_test_fail(file, line, "encode: %s", cairn_errname(rv));
    }
    f->index++;
    rv = meta_sm_apply(f->sm, f->index, f->buf.base, f->buf.len, &f->result);
    if (rv != 0) {
        cn_test_fail(file, line, "apply: %s: %s", cairn_errname(rv), meta_sm_errmsg(f->sm));
    }
    if (meta_sm_applied(f->sm) != f->index) {
        cn_test_fail(file, line, "applied index %llu, expected %llu",
                     (unsigned long long)meta_sm_applied(f->sm), (unsigned long long)f->index);
    }
    fixture_check(f, file, line);
    return f->result.rv;
}

#define APPLY(f, cmd) fixture_apply_at((f), (cmd), __FILE__, __LINE__)

/* One function per operation: each builds the command and applies it. */
#define OP(f, field, CASE, msg)                               \
    ({                                                        \
        Cairn__Cmd__Command cmd_ = CAIRN__CMD__COMMAND__INIT; \
        cmd_.op_case = CAIRN__CMD__COMMAND__OP_##CASE;        \
        cmd_.field = (msg);                                   \
        fixture_apply_at((f), &cmd_, __FILE__, __LINE__);     \
    })

static inline Cairn__Cmd__NamespaceCreate ns_create_msg(uint64_t ns, uint64_t owner, uint64_t root)
{
    Cairn__Cmd__NamespaceCreate op = CAIRN__CMD__NAMESPACE_CREATE__INIT;

    op.ns = ns;
    op.owner = owner;
    op.root_inode = root;
    op.kind = CAIRN__CMD__NAMESPACE_KIND__NS_DRIVE;
    op.name = "drive";
    return op;
}

#define NS_CREATE(f, ns, owner, root)                                          \
    ({                                                                         \
        Cairn__Cmd__NamespaceCreate m_ = ns_create_msg((ns), (owner), (root)); \
        OP((f), namespace_create, NAMESPACE_CREATE, &m_);                      \
    })

#define MKDIR(f, parent_, name_, id_)                   \
    ({                                                  \
        Cairn__Cmd__Mkdir m_ = CAIRN__CMD__MKDIR__INIT; \
        m_.ns = NS;                                     \
        m_.parent = (parent_);                          \
        m_.name = (char *)(name_);                      \
        m_.inode = (id_);                               \
        OP((f), mkdir, MKDIR, &m_);                     \
    })

#define CREATE(f, parent_, name_, id_)                    \
    ({                                                    \
        Cairn__Cmd__Create m_ = CAIRN__CMD__CREATE__INIT; \
        m_.ns = NS;                                       \
        m_.parent = (parent_);                            \
        m_.name = (char *)(name_);                        \
        m_.inode = (id_);                                 \
        OP((f), create, CREATE, &m_);                     \
    })

/* Commits a version of size bytes with no chunks. */
#define COMMIT(f, id_, base_, size_)                        \
    ({                                                      \
        Cairn__Cmd__Commit m_ = CAIRN__CMD__COMMIT__INIT;   \
        Cairn__Cmd__Version v_ = CAIRN__CMD__VERSION__INIT; \
        v_.size = (size_);                                  \
        m_.ns = NS;                                         \
        m_.inode = (id_);                                   \
        m_.base_version = (base_);                          \
        m_.version = &v_;                                   \
        OP((f), commit, COMMIT, &m_);                       \
    })

#define RENAME(f, id_, parent_, name_)                    \
    ({                                                    \
        Cairn__Cmd__Rename m_ = CAIRN__CMD__RENAME__INIT; \
        m_.ns = NS;                                       \
        m_.inode = (id_);                                 \
        m_.new_parent = (parent_);                        \
        m_.new_name = (char *)(name_);                    \
        OP((f), rename, RENAME, &m_);                     \
    })

#define TRASH(f, id_)                                   \
    ({                                                  \
        Cairn__Cmd__Trash m_ = CAIRN__CMD__TRASH__INIT; \
        m_.ns = NS;                                     \
        m_.inode = (id_);                               \
        OP((f), trash, TRASH, &m_);                     \
    })

#define RESTORE(f, id_)                                     \
    ({                                                      \
        Cairn__Cmd__Restore m_ = CAIRN__CMD__RESTORE__INIT; \
        m_.ns = NS;                                         \
        m_.inode = (id_);                                   \
        OP((f), restore, RESTORE, &m_);                     \
    })

#define PURGE(f, id_)                                   \
    ({                                                  \
        Cairn__Cmd__Purge m_ = CAIRN__CMD__PURGE__INIT; \
        m_.ns = NS;                                     \
        m_.inode = (id_);                               \
        OP((f), purge, PURGE, &m_);                     \
    })

#define GRANT(f, user_, role_)                                 \
    ({                                                         \
        Cairn__Cmd__AclGrant m_ = CAIRN__CMD__ACL_GRANT__INIT; \
        m_.ns = NS;                                            \
        m_.user = (user_);                                     \
        m_.role = (role_);                                     \
        OP((f), acl_grant, ACL_GRANT, &m_);                    \
    })

#define REVOKE(f, user_)                                         \
    ({                                                           \
        Cairn__Cmd__AclRevoke m_ = CAIRN__CMD__ACL_REVOKE__INIT; \
        m_.ns = NS;                                              \
        m_.user = (user_);                                       \
        OP((f), acl_revoke, ACL_REVOKE, &m_);                    \
    })

#define GRANT_ON(f, inode_, user_, role_)                      \
    ({                                                         \
        Cairn__Cmd__AclGrant m_ = CAIRN__CMD__ACL_GRANT__INIT; \
        m_.ns = NS;                                            \
        m_.inode = (inode_);                                   \
        m_.user = (user_);                                     \
        m_.role = (role_);                                     \
        OP((f), acl_grant, ACL_GRANT, &m_);                    \
    })

#define REVOKE_ON(f, inode_, user_)                              \
    ({                                                           \
        Cairn__Cmd__AclRevoke m_ = CAIRN__CMD__ACL_REVOKE__INIT; \
        m_.ns = NS;                                              \
        m_.inode = (inode_);                                     \
        m_.user = (user_);                                       \
        OP((f), acl_revoke, ACL_REVOKE, &m_);                    \
    })

static inline Cairn__Cmd__Role role_on(struct fixture *f, uint64_t inode, uint64_t user)
{
    Cairn__Cmd__Role role = (Cairn__Cmd__Role)-1;

    ASSERT_OK(meta_role_inode(f->sm, NS, inode, user, &role));
    return role;
}

/* A fixture with namespace NS (root ROOT) owned by OWNER. */
static inline void *ns_setup(void)
{
    struct fixture *f = fixture_setup();

    ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
    return f;
}

static inline uint64_t lookup(struct fixture *f, uint64_t parent, const char *name)
{
    uint64_t id = 0;
    int rv = meta_lookup(f->sm, NS, parent, name, &id);

    return rv == 0 ? id : 0;
}

/* Every store call of an apply fails once, in turn: each time the apply
 * reports CAIRN_EIO and the group is exactly as before (nothing of the entry
 * written, the index not advanced), until every call has failed once and the
 * entry applies whole. */
static inline void assert_atomic_under_faults(struct fixture *f, Cairn__Cmd__Command *cmd)
{
    uint8_t before[META_DIGEST_SIZE], after[META_DIGEST_SIZE];
    struct cn_fault *fault = meta_sm_fault(f->sm);
    meta_index applied = meta_sm_applied(f->sm);
    int rv;

    ASSERT_OK(meta_command_encode(cmd, &f->buf));
    ASSERT_OK(meta_sm_digest(f->sm, before));
    for (int nth = 1;; nth++) {
        cn_fault_arm(fault, nth, 1);
        rv = meta_sm_apply(f->sm, applied + 1, f->buf.base, f->buf.len, &f->result);
        if (cn_fault_hits(fault) == 0) {
            break; /* every store call has failed once */
        }
        cn_fault_init(fault);
        ASSERT_ERR(rv, CAIRN_EIO);
        ASSERT_EQ(meta_sm_applied(f->sm), applied);
        ASSERT_OK(meta_sm_digest(f->sm, after));
        ASSERT_MEM_EQ(before, after, sizeof(before));
        ASSERT_CMP(nth, <, 1000);
    }
    cn_fault_init(fault);
    ASSERT_OK(rv);
    ASSERT_OK(f->result.rv);
    ASSERT_EQ(meta_sm_applied(f->sm), applied + 1);
    f->index = applied + 1;
    fixture_check(f, __FILE__, __LINE__);
}

#endif /* META_TEST_FIXTURE_H */
