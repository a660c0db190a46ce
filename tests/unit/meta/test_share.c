/* Sharing across groups: the outbox written with each grant and revoke,
 * OutboxAck, and ShareDeliver into the grantee's inbox and journal. */
#include "fixture.h"

#define VIEWER CAIRN__CMD__ROLE__ROLE_VIEWER
#define EDITOR CAIRN__CMD__ROLE__ROLE_EDITOR
#define DRIVE  200 /* OTHER's drive, in the same group here */

/* NS: ROOT/docs(2)/plan(3); DRIVE owned by OTHER. */
static void *share_setup(void)
{
    struct fixture *f = ns_setup();

    ASSERT_OK(MKDIR(f, ROOT, "docs", 2));
    ASSERT_OK(CREATE(f, 2, "plan", 3));
    f->actor = 0;
    ASSERT_OK(NS_CREATE(f, DRIVE, OTHER, ROOT));
    f->actor = OWNER;
    return f;
}

static int grant_to(
    struct fixture *f, uint64_t inode, uint64_t user, Cairn__Cmd__Role role, uint64_t grantee_ns)
{
    Cairn__Cmd__AclGrant op = CAIRN__CMD__ACL_GRANT__INIT;

    op.ns = NS;
    op.inode = inode;
    op.user = user;
    op.role = role;
    op.grantee_ns = grantee_ns;
    return OP(f, acl_grant, ACL_GRANT, &op);
}

#define ENTRIES_MAX 8

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

struct outbox {
    uint8_t ids[ENTRIES_MAX][META_OUTBOX_ID_SIZE];
    uint64_t targets[ENTRIES_MAX];
    Cairn__Cmd__ShareInfo shares[ENTRIES_MAX];
    char names[ENTRIES_MAX][32];
    int count;
};

static int collect_outbox(void *data, const Cairn__Cmd__OutboxEntry *entry)
{
    struct outbox *outbox = data;
    int i = outbox->count++;

    ASSERT_TRUE(i < ENTRIES_MAX);
    ASSERT_EQ(entry->id.len, META_OUTBOX_ID_SIZE);
    memcpy(outbox->ids[i], entry->id.data, META_OUTBOX_ID_SIZE);
    outbox->targets[i] = entry->target_ns;
    outbox->shares[i] = *entry->share;
    snprintf(outbox->names[i], sizeof(outbox->names[i]), "%s", entry->share->name);
    outbox->shares[i].name = outbox->names[i];
    return 0;
}

static void outbox_read(struct fixture *f, struct outbox *outbox)
{
    memset(outbox, 0, sizeof(*outbox));
    ASSERT_OK(meta_outbox_list(f->sm, ENTRIES_MAX, collect_outbox, outbox));
}

static int outbox_ack(struct fixture *f, const uint8_t *id, size_t len)
{
    Cairn__Cmd__OutboxAck op = CAIRN__CMD__OUTBOX_ACK__INIT;

    op.id.data = (uint8_t *)id;
    op.id.len = len;
    return OP(f, outbox_ack, OUTBOX_ACK, &op);
}

static int deliver(struct fixture *f, const uint8_t *id, uint64_t ns, Cairn__Cmd__ShareInfo *share)
{
    Cairn__Cmd__ShareDeliver op = CAIRN__CMD__SHARE_DELIVER__INIT;

    op.outbox_id.data = (uint8_t *)id;
    op.outbox_id.len = META_OUTBOX_ID_SIZE;
    op.ns = ns;
    op.share = share;
    return OP(f, share_deliver, SHARE_DELIVER, &op);
}

struct inbox {
    uint64_t inodes[ENTRIES_MAX];
    Cairn__Cmd__Role roles[ENTRIES_MAX];
    int count;
};

static int collect_inbox(void *data, const Cairn__Cmd__ShareInfo *share)
{
    struct inbox *inbox = data;

    ASSERT_TRUE(inbox->count < ENTRIES_MAX);
    ASSERT_FALSE(share->revoke);
    inbox->inodes[inbox->count] = share->inode;
    inbox->roles[inbox->count++] = share->role;
    return 0;
}

static struct inbox inbox_read(struct fixture *f, uint64_t drive)
{
    struct inbox inbox = {0};

    ASSERT_OK(meta_inbox_list(f->sm, drive, collect_inbox, &inbox));
    return inbox;
}

static uint64_t journal_seq(struct fixture *f, uint64_t ns)
{
    Cairn__Cmd__Namespace *record;
    uint64_t seq;

    ASSERT_OK(meta_get_namespace(f->sm, ns, &record));
    seq = record->journal_seq;
    meta_record_free(record);
    return seq;
}

static int keep_event(void *data, const Cairn__Cmd__Event *event)
{
    Cairn__Cmd__Event **copy = data;
    uint8_t buf[1024];
    size_t len = cairn__cmd__event__get_packed_size(event);

    ASSERT_TRUE(len <= sizeof(buf));
    cairn__cmd__event__pack(event, buf);
    *copy = cairn__cmd__event__unpack(NULL, len, buf);
    return 0;
}

/* The last event of ns's journal (free it). */
static Cairn__Cmd__Event *last_event(struct fixture *f, uint64_t ns)
{
    Cairn__Cmd__Event *copy = NULL;
    uint64_t next;

    ASSERT_OK(meta_journal_read(f->sm, ns, journal_seq(f, ns) - 1, 1, keep_event, &copy, &next));
    ASSERT_TRUE(copy != NULL);
    return copy;
}

TEST(share, grants_and_revokes_fill_the_outbox, share_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct outbox outbox;

    ASSERT_OK(grant_to(f, 2, OTHER, EDITOR, 0)); /* no grantee drive: nothing to deliver */
    outbox_read(f, &outbox);
    ASSERT_EQ(outbox.count, 0);
    f->time_ms += 5;
    ASSERT_OK(grant_to(f, 2, OTHER, VIEWER, DRIVE));
    ASSERT_ERR(grant_to(f, 2, OWNER, VIEWER, DRIVE), CAIRN_EINVAL); /* a failure writes none */
    outbox_read(f, &outbox);
    ASSERT_EQ(outbox.count, 1);
    ASSERT_EQ(outbox.targets[0], DRIVE);
    ASSERT_EQ(be64(outbox.ids[0]), GROUP);
    ASSERT_EQ(be64(outbox.ids[0] + 8), 1);
    ASSERT_EQ(outbox.shares[0].ns, NS);
    ASSERT_EQ(outbox.shares[0].inode, 2);
    ASSERT_EQ(outbox.shares[0].owner, OWNER);
    ASSERT_EQ(outbox.shares[0].user, OTHER);
    ASSERT_STR_EQ(outbox.shares[0].name, "docs");
    ASSERT_EQ(outbox.shares[0].role, VIEWER);
    ASSERT_EQ(outbox.shares[0].kind, CAIRN__CMD__INODE_KIND__INODE_DIR);
    ASSERT_EQ(outbox.shares[0].time_ms, T0 + 5);
    ASSERT_FALSE(outbox.shares[0].revoke);
    ASSERT_OK(grant_to(f, 0, OTHER, VIEWER, DRIVE)); /* the root: named after the namespace */
    ASSERT_OK(REVOKE_ON(f, 2, OTHER));               /* the grantee's drive from the grant */
    outbox_read(f, &outbox);
    ASSERT_EQ(outbox.count, 3);
    ASSERT_STR_EQ(outbox.shares[1].name, "drive");
    ASSERT_EQ(outbox.shares[1].inode, ROOT);
    ASSERT_TRUE(outbox.shares[2].revoke);
    ASSERT_EQ(outbox.targets[2], DRIVE);
    ASSERT_EQ(be64(outbox.ids[2] + 8), 3);
    memset(&outbox, 0, sizeof(outbox));
    ASSERT_OK(meta_outbox_list(f->sm, 2, collect_outbox, &outbox)); /* at most max */
    ASSERT_EQ(outbox.count, 2);
}

TEST(share, ack_removes_an_entry_once, share_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct outbox outbox;
    uint8_t id[META_OUTBOX_ID_SIZE];

    ASSERT_OK(grant_to(f, 2, OTHER, VIEWER, DRIVE));
    ASSERT_OK(grant_to(f, 3, OTHER, EDITOR, DRIVE));
    outbox_read(f, &outbox);
    memcpy(id, outbox.ids[0], sizeof(id));
    ASSERT_ERR(outbox_ack(f, id, sizeof(id)), CAIRN_EPERM); /* the system only */
    f->actor = 0;
    ASSERT_ERR(outbox_ack(f, id, 8), CAIRN_EINVAL);
    ASSERT_OK(outbox_ack(f, id, sizeof(id)));
    ASSERT_OK(outbox_ack(f, id, sizeof(id))); /* again: still a success */
    outbox_read(f, &outbox);
    ASSERT_EQ(outbox.count, 1);
    ASSERT_EQ(outbox.shares[0].inode, 3);
}

TEST(share, deliver_writes_the_inbox_and_journals_once, share_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct outbox outbox;
    struct inbox inbox;
    Cairn__Cmd__Event *event;
    uint64_t seq;

    ASSERT_OK(grant_to(f, 2, OTHER, VIEWER, DRIVE));
    outbox_read(f, &outbox);
    f->actor = 0;
    seq = journal_seq(f, DRIVE);
    ASSERT_OK(deliver(f, outbox.ids[0], DRIVE, &outbox.shares[0]));
    ASSERT_EQ(journal_seq(f, DRIVE), seq + 1);
    event = last_event(f, DRIVE);
    ASSERT_EQ(event->kind, CAIRN__CMD__EVENT_KIND__EVENT_SHARED);
    ASSERT_EQ(event->ns, NS);
    ASSERT_EQ(event->inode, 2);
    ASSERT_STR_EQ(event->name, "docs");
    ASSERT_EQ(event->user, OWNER);
    ASSERT_EQ(event->role, VIEWER);
    meta_record_free(event);
    inbox = inbox_read(f, DRIVE);
    ASSERT_EQ(inbox.count, 1);
    ASSERT_EQ(inbox.inodes[0], 2);
    ASSERT_EQ(inbox.roles[0], VIEWER);
    ASSERT_EQ(inbox_read(f, NS).count, 0);
    /* A retried delivery changes nothing and journals nothing. */
    f->no_request_id = true; /* not the dedup table: the inbox itself */
    ASSERT_OK(deliver(f, outbox.ids[0], DRIVE, &outbox.shares[0]));
    ASSERT_EQ(journal_seq(f, DRIVE), seq + 1);
    f->no_request_id = false;
    /* The revoke takes it out of the inbox, once. */
    f->actor = OWNER;
    ASSERT_OK(REVOKE_ON(f, 2, OTHER));
    outbox_read(f, &outbox);
    ASSERT_EQ(outbox.count, 2);
    f->actor = 0;
    ASSERT_OK(deliver(f, outbox.ids[1], DRIVE, &outbox.shares[1]));
    ASSERT_EQ(journal_seq(f, DRIVE), seq + 2);
    event = last_event(f, DRIVE);
    ASSERT_EQ(event->kind, CAIRN__CMD__EVENT_KIND__EVENT_UNSHARED);
    ASSERT_EQ(event->inode, 2);
    ASSERT_EQ(event->ns, NS);
    meta_record_free(event);
    ASSERT_EQ(inbox_read(f, DRIVE).count, 0);
    ASSERT_OK(deliver(f, outbox.ids[1], DRIVE, &outbox.shares[1]));
    /* The grant delivered again, late: overtaken by its revoke. */
    ASSERT_OK(deliver(f, outbox.ids[0], DRIVE, &outbox.shares[0]));
    ASSERT_EQ(journal_seq(f, DRIVE), seq + 2);
    ASSERT_EQ(inbox_read(f, DRIVE).count, 0);
}

TEST(share, a_revoke_first_keeps_the_grant_out, share_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct outbox outbox;
    uint64_t seq;

    ASSERT_OK(grant_to(f, 3, OTHER, EDITOR, DRIVE));
    ASSERT_OK(REVOKE_ON(f, 3, OTHER));
    outbox_read(f, &outbox);
    f->actor = 0;
    seq = journal_seq(f, DRIVE);
    ASSERT_OK(deliver(f, outbox.ids[1], DRIVE, &outbox.shares[1])); /* the revoke overtakes */
    ASSERT_EQ(journal_seq(f, DRIVE), seq);                          /* nothing was shared */
    ASSERT_OK(deliver(f, outbox.ids[0], DRIVE, &outbox.shares[0]));
    ASSERT_EQ(journal_seq(f, DRIVE), seq);
    ASSERT_EQ(inbox_read(f, DRIVE).count, 0);
    /* A new grant is newer than both. */
    f->actor = OWNER;
    ASSERT_OK(grant_to(f, 3, OTHER, VIEWER, DRIVE));
    outbox_read(f, &outbox);
    f->actor = 0;
    ASSERT_OK(deliver(f, outbox.ids[2], DRIVE, &outbox.shares[2]));
    ASSERT_EQ(journal_seq(f, DRIVE), seq + 1);
    ASSERT_EQ(inbox_read(f, DRIVE).count, 1);
}

TEST(share, deliver_errors, share_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__ShareDeliver op = CAIRN__CMD__SHARE_DELIVER__INIT;
    Cairn__Cmd__ShareInfo share = CAIRN__CMD__SHARE_INFO__INIT;
    uint8_t id[META_OUTBOX_ID_SIZE] = {0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1};

    share.ns = NS;
    share.inode = 2;
    share.owner = OWNER;
    share.name = "docs";
    share.role = VIEWER;
    share.user = OTHER;
    ASSERT_ERR(deliver(f, id, DRIVE, &share), CAIRN_EPERM); /* the system only */
    f->actor = 0;
    ASSERT_ERR(deliver(f, id, DRIVE + 1, &share), CAIRN_ENOENT); /* no such drive here */
    op.outbox_id.data = id;
    op.outbox_id.len = 15;
    op.ns = DRIVE;
    op.share = &share;
    ASSERT_ERR(OP(f, share_deliver, SHARE_DELIVER, &op), CAIRN_EINVAL);
    op.outbox_id.len = sizeof(id);
    op.share = NULL;
    ASSERT_ERR(OP(f, share_deliver, SHARE_DELIVER, &op), CAIRN_EINVAL);
    share.role = CAIRN__CMD__ROLE__ROLE_OWNER;
    ASSERT_ERR(deliver(f, id, DRIVE, &share), CAIRN_EINVAL);
    share.role = CAIRN__CMD__ROLE__ROLE_NONE;
    ASSERT_ERR(deliver(f, id, DRIVE, &share), CAIRN_EINVAL);
    share.role = VIEWER;
    share.inode = 0;
    ASSERT_ERR(deliver(f, id, DRIVE, &share), CAIRN_EINVAL);
    share.inode = 2;
    share.user = 0;
    ASSERT_ERR(deliver(f, id, DRIVE, &share), CAIRN_EINVAL);
    share.user = OTHER;
    ASSERT_OK(deliver(f, id, DRIVE, &share));
    ASSERT_EQ(inbox_read(f, DRIVE).count, 1);
}

TEST(share, purge_revokes_the_deliveries, share_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct outbox outbox;

    ASSERT_OK(grant_to(f, 3, OTHER, EDITOR, DRIVE));
    ASSERT_OK(grant_to(f, 2, 13, VIEWER, 0));
    ASSERT_OK(TRASH(f, 2));
    ASSERT_OK(PURGE(f, 2));
    outbox_read(f, &outbox);
    ASSERT_EQ(outbox.count, 2); /* the grant, then its revoke; the other had no drive */
    ASSERT_TRUE(outbox.shares[1].revoke);
    ASSERT_EQ(outbox.shares[1].inode, 3);
    ASSERT_EQ(outbox.shares[1].user, OTHER);
    ASSERT_EQ(outbox.targets[1], DRIVE);
}

TEST(share, store_failures_leave_nothing_half_done, share_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__AclGrant grant = CAIRN__CMD__ACL_GRANT__INIT;
    Cairn__Cmd__ShareDeliver op = CAIRN__CMD__SHARE_DELIVER__INIT;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    struct outbox outbox;

    header.time_ms = f->time_ms;
    header.actor_user = OWNER;
    cmd.header = &header;
    grant.ns = NS;
    grant.inode = 2;
    grant.user = OTHER;
    grant.role = VIEWER;
    grant.grantee_ns = DRIVE;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_ACL_GRANT;
    cmd.acl_grant = &grant;
    assert_atomic_under_faults(f, &cmd);
    outbox_read(f, &outbox);
    ASSERT_EQ(outbox.count, 1);
    header.actor_user = 0;
    op.outbox_id.data = outbox.ids[0];
    op.outbox_id.len = META_OUTBOX_ID_SIZE;
    op.ns = DRIVE;
    op.share = &outbox.shares[0];
    cmd.op_case = CAIRN__CMD__COMMAND__OP_SHARE_DELIVER;
    cmd.share_deliver = &op;
    assert_atomic_under_faults(f, &cmd);
    ASSERT_EQ(inbox_read(f, DRIVE).count, 1);
}
