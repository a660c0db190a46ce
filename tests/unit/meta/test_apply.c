/* Apply itself: command buffers, exactly-once retries, the applied index
 * across restarts, snapshots and digests. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

#include "proto.h"

TEST(command, buffers_are_padded_to_8_bytes, NULL, NULL)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Mkdir op = CAIRN__CMD__MKDIR__INIT;
    Cairn__Cmd__Command *decoded;
    struct cn_buf buf;
    char name[32];

    cn_buf_init(&buf);
    cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
    cmd.mkdir = &op;
    for (size_t len = 1; len < sizeof(name); len++) {
        memset(name, 'n', len);
        name[len] = '\0';
        op.name = name;
        op.inode = len;
        ASSERT_OK(meta_command_encode(&cmd, &buf));
        ASSERT_EQ(buf.len % 8, 0);
        ASSERT_EQ(buf.len, proto_command_padded_size(buf.len));
        ASSERT_OK(meta_command_decode(buf.base, buf.len, &decoded));
        ASSERT_EQ(decoded->op_case, CAIRN__CMD__COMMAND__OP_MKDIR);
        ASSERT_STR_EQ(decoded->mkdir->name, name);
        ASSERT_EQ(decoded->mkdir->inode, len);
        meta_record_free(decoded);
    }
    cn_buf_close(&buf);
}

TEST(command, malformed_buffers_are_refused, NULL, NULL)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Mkdir op = CAIRN__CMD__MKDIR__INIT;
    Cairn__Cmd__Command *decoded;
    struct cn_buf buf;

    cn_buf_init(&buf);
    cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
    cmd.mkdir = &op;
    op.name = "abc"; /* 8 + 9 bytes: padding follows */
    ASSERT_OK(meta_command_encode(&cmd, &buf));
    ASSERT_ERR(meta_command_decode(buf.base, 7, &decoded), CAIRN_EPROTO);
    ASSERT_ERR(meta_command_decode(buf.base, buf.len - 8, &decoded), CAIRN_EPROTO);
    buf.base[buf.len - 1] = 1; /* padding must be zeros */
    ASSERT_ERR(meta_command_decode(buf.base, buf.len, &decoded), CAIRN_EPROTO);
    buf.base[buf.len - 1] = 0;
    buf.base[4] = 9; /* unknown format version */
    ASSERT_ERR(meta_command_decode(buf.base, buf.len, &decoded), CAIRN_EPROTO);
    cn_buf_close(&buf);
}

TEST(apply, a_malformed_entry_is_an_outcome_and_advances_the_index, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff};

    ASSERT_OK(meta_sm_apply(f->sm, 1, junk, sizeof(junk), &f->result));
    ASSERT_ERR(f->result.rv, CAIRN_EPROTO);
    ASSERT_EQ(meta_sm_applied(f->sm), 1);
    f->index = 1;
    ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
    ASSERT_EQ(meta_sm_applied(f->sm), 2);
}

TEST(apply, a_command_without_operation_is_invalid, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;

    ASSERT_ERR(APPLY(f, &cmd), CAIRN_EINVAL);
}

TEST(apply, retried_request_ids_apply_once, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Create op = CAIRN__CMD__CREATE__INIT;
    uint8_t id[META_REQUEST_ID_SIZE] = {9, 9, 9};
    Cairn__Cmd__Namespace *ns;
    uint64_t seq;

    header.request_id.data = id;
    header.request_id.len = sizeof(id);
    header.time_ms = T0;
    header.actor_user = OWNER;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_CREATE;
    cmd.create = &op;
    op.ns = NS;
    op.parent = ROOT;
    op.name = "once";
    op.inode = 2;
    ASSERT_OK(APPLY(f, &cmd));
    ASSERT_FALSE(f->result.duplicate);
    ASSERT_OK(meta_get_namespace(f->sm, NS, &ns));
    seq = ns->journal_seq;
    meta_record_free(ns);
    ASSERT_OK(APPLY(f, &cmd)); /* would be EEXIST if applied again */
    ASSERT_TRUE(f->result.duplicate);
    ASSERT_OK(meta_get_namespace(f->sm, NS, &ns));
    ASSERT_EQ(ns->journal_seq, seq); /* no second event */
    meta_record_free(ns);
    /* A failed outcome is remembered too. */
    op.inode = 3;
    id[0] = 10;
    ASSERT_ERR(APPLY(f, &cmd), CAIRN_EEXIST);
    ASSERT_ERR(APPLY(f, &cmd), CAIRN_EEXIST);
    ASSERT_TRUE(f->result.duplicate);
}

TEST(apply, request_ids_are_forgotten_after_the_window, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Create op = CAIRN__CMD__CREATE__INIT;
    uint8_t id[META_REQUEST_ID_SIZE] = {7};

    header.request_id.data = id;
    header.request_id.len = sizeof(id);
    header.time_ms = T0;
    header.actor_user = OWNER;
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_CREATE;
    cmd.create = &op;
    op.ns = NS;
    op.parent = ROOT;
    op.name = "late";
    op.inode = 2;
    ASSERT_OK(APPLY(f, &cmd));
    /* Any command past the window prunes the old id... */
    f->time_ms = T0 + f->limits.dedup_window_ms;
    ASSERT_OK(MKDIR(f, ROOT, "tick", 3));
    /* ...so a retry this late is applied again (and here fails). */
    header.time_ms = f->time_ms;
    ASSERT_ERR(APPLY(f, &cmd), CAIRN_EEXIST);
    ASSERT_FALSE(f->result.duplicate);
}

/* Applies f's last command to g at g's next index. */
static void replay(struct fixture *f, struct fixture *g)
{
    g->index++;
    ASSERT_OK(meta_sm_apply(g->sm, g->index, f->buf.base, f->buf.len, &g->result));
    ASSERT_EQ(g->result.rv, f->result.rv);
    ASSERT_EQ(g->result.duplicate, f->result.duplicate);
    fixture_check(g, __FILE__, __LINE__);
}

/* The remembered ids live in memory too (dedup.c): a replica that restarted
 * or restored a snapshot must forget the same ids, in the same order, and
 * answer the same retries as one that applied every command. */
TEST(apply, request_ids_are_forgotten_alike_after_restart_and_restore, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct fixture *g = fixture_setup();
    uint8_t a[META_DIGEST_SIZE], b[META_DIGEST_SIZE];
    struct cn_buf snapshot, retry;
    char name[16];

    fixture_close(f);
    f->limits.dedup_window_ms = 1000;
    fixture_open(f);
    fixture_close(g);
    g->limits = f->limits;
    fixture_open(g);
    cn_buf_init(&snapshot);
    cn_buf_init(&retry);
    for (uint64_t i = 0; i < 120; i++) {
        /* Times wander back and forth over 5 s, several ids a millisecond:
         * ids leave the window out of the order they came in. */
        f->time_ms = T0 + (i * 37 % 50) * 100 + i * 20;
        snprintf(name, sizeof(name), "d%llu", (unsigned long long)i);
        ASSERT_OK(MKDIR(f, ROOT, name, 10 + i));
        if (i == 40) {
            ASSERT_OK(meta_sm_snapshot(f->sm, &snapshot));
            ASSERT_OK(meta_sm_restore(g->sm, snapshot.base, snapshot.len));
            g->index = f->index;
            fixture_check(g, __FILE__, __LINE__);
        } else if (i > 40) {
            replay(f, g);
        }
        if (i == 70) {
            fixture_close(f);
            fixture_open(f);
            ASSERT_OK(cn_buf_append(&retry, f->buf.base, f->buf.len));
        }
        if (i == 72) {
            /* A retry of the command before the restart: its first outcome. */
            f->index++;
            ASSERT_OK(meta_sm_apply(f->sm, f->index, retry.base, retry.len, &f->result));
            ASSERT_TRUE(f->result.duplicate);
            ASSERT_EQ(f->result.rv, 0);
            g->index++;
            ASSERT_OK(meta_sm_apply(g->sm, g->index, retry.base, retry.len, &g->result));
            ASSERT_TRUE(g->result.duplicate);
            fixture_check(f, __FILE__, __LINE__);
        }
    }
    /* Much later: every id leaves, at most META_DEDUP_PRUNE_MAX an apply. */
    f->time_ms = T0 + 100000;
    for (uint64_t i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "late%llu", (unsigned long long)i);
        ASSERT_OK(MKDIR(f, ROOT, name, 1000 + i));
        replay(f, g);
    }
    ASSERT_OK(meta_sm_digest(f->sm, a));
    ASSERT_OK(meta_sm_digest(g->sm, b));
    ASSERT_MEM_EQ(a, b, sizeof(a));
    /* The retry's id is forgotten now: it applies again (and fails). */
    f->index++;
    ASSERT_OK(meta_sm_apply(f->sm, f->index, retry.base, retry.len, &f->result));
    ASSERT_FALSE(f->result.duplicate);
    ASSERT_EQ(f->result.rv, CAIRN_EEXIST);
    fixture_check(f, __FILE__, __LINE__);
    cn_buf_close(&snapshot);
    cn_buf_close(&retry);
    fixture_teardown(g);
}

TEST(apply, bad_request_ids_are_invalid, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Mkdir op = CAIRN__CMD__MKDIR__INIT;
    uint8_t id[5] = {1};

    header.request_id.data = id;
    header.request_id.len = sizeof(id);
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
    cmd.mkdir = &op;
    op.ns = NS;
    op.parent = ROOT;
    op.name = "x";
    op.inode = 2;
    ASSERT_ERR(APPLY(f, &cmd), CAIRN_EINVAL);
    ASSERT_EQ(lookup(f, ROOT, "x"), 0);
}

TEST(apply, restart_neither_loses_nor_reapplies, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    uint8_t before[META_DIGEST_SIZE], after[META_DIGEST_SIZE];
    struct cn_buf entries[4];
    char name[16];

    /* Odd-sized names make odd-sized commands, padded by the encoder. */
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "%.*s", i + 1, "abcdefg");
        ASSERT_OK(MKDIR(f, ROOT, name, 10 + (uint64_t)i));
        cn_buf_init(&entries[i]);
        ASSERT_OK(cn_buf_append(&entries[i], f->buf.base, f->buf.len));
    }
    ASSERT_OK(meta_sm_digest(f->sm, before));
    fixture_close(f);
    fixture_open(f);
    ASSERT_EQ(meta_sm_applied(f->sm), f->index);
    /* Raft replays entries after a restart: each is recognised and skipped. */
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(meta_sm_apply(f->sm, f->index - 3 + (meta_index)i, entries[i].base,
                                entries[i].len, &f->result));
        ASSERT_TRUE(f->result.duplicate);
        cn_buf_close(&entries[i]);
    }
    ASSERT_EQ(meta_sm_skipped(f->sm), 4);
    ASSERT_OK(meta_sm_digest(f->sm, after));
    ASSERT_MEM_EQ(before, after, sizeof(before));
    ASSERT_OK(MKDIR(f, ROOT, "after", 20));
}

TEST(apply, noop_entries_advance_the_index, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;

    ASSERT_OK(meta_sm_apply_noop(f->sm, 3));
    ASSERT_EQ(meta_sm_applied(f->sm), 3);
    ASSERT_OK(meta_sm_apply_noop(f->sm, 2)); /* already past: nothing */
    ASSERT_EQ(meta_sm_applied(f->sm), 3);
    f->index = 3;
    ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
}

TEST(apply, groups_share_a_store_but_not_keys, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct meta_sm *other;
    Cairn__Cmd__Namespace *ns;

    ASSERT_OK(meta_sm_new(f->store, GROUP + 1, NULL, &other));
    ASSERT_EQ(meta_sm_applied(other), 0);
    ASSERT_ERR(meta_get_namespace(other, NS, &ns), CAIRN_ENOENT);
    ASSERT_OK(meta_sm_apply_noop(other, 5));
    ASSERT_EQ(meta_sm_applied(f->sm), 1);
    meta_sm_free(other);
}

TEST(snapshot, restore_replaces_state_atomically, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    uint8_t digest[META_DIGEST_SIZE], restored[META_DIGEST_SIZE];
    struct cn_buf snapshot;
    meta_index index;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(CREATE(f, 2, "x", 3));
    ASSERT_OK(COMMIT(f, 3, 0, 42));
    cn_buf_init(&snapshot);
    ASSERT_OK(meta_sm_snapshot(f->sm, &snapshot));
    ASSERT_OK(meta_sm_digest(f->sm, digest));
    index = f->index;
    /* Move on, then go back to the snapshot. */
    ASSERT_OK(TRASH(f, 2));
    ASSERT_OK(MKDIR(f, ROOT, "later", 4));
    ASSERT_OK(meta_sm_restore(f->sm, snapshot.base, snapshot.len));
    ASSERT_EQ(meta_sm_applied(f->sm), index);
    ASSERT_OK(meta_sm_digest(f->sm, restored));
    ASSERT_MEM_EQ(digest, restored, sizeof(digest));
    ASSERT_EQ(lookup(f, ROOT, "a"), 2);
    ASSERT_EQ(lookup(f, ROOT, "later"), 0);
    fixture_check(f, __FILE__, __LINE__);
    /* A malformed snapshot changes nothing. */
    ASSERT_ERR(meta_sm_restore(f->sm, snapshot.base, snapshot.len - 3), CAIRN_ECORRUPT);
    ASSERT_ERR(meta_sm_restore(f->sm, "XXXX", 4), CAIRN_ECORRUPT);
    ASSERT_OK(meta_sm_digest(f->sm, restored));
    ASSERT_MEM_EQ(digest, restored, sizeof(digest));
    cn_buf_close(&snapshot);
}

TEST(snapshot, restore_into_another_replica_gives_equal_digests, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    struct fixture *g = fixture_setup();
    uint8_t a[META_DIGEST_SIZE], b[META_DIGEST_SIZE];
    struct cn_buf snapshot;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    cn_buf_init(&snapshot);
    ASSERT_OK(meta_sm_snapshot(f->sm, &snapshot));
    ASSERT_OK(meta_sm_restore(g->sm, snapshot.base, snapshot.len));
    ASSERT_OK(meta_sm_digest(f->sm, a));
    ASSERT_OK(meta_sm_digest(g->sm, b));
    cn_buf_close(&snapshot);
    fixture_teardown(g);
    ASSERT_MEM_EQ(a, b, sizeof(a));
}

TEST(apply, store_failures_leave_nothing_half_done, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Purge purge = CAIRN__CMD__PURGE__INIT;
    Cairn__Cmd__Rename rename = CAIRN__CMD__RENAME__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE] = {0xfa};

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(MKDIR(f, 2, "b", 3));
    ASSERT_OK(CREATE(f, 3, "x", 4));
    ASSERT_OK(COMMIT(f, 4, 0, 10));
    ASSERT_OK(MKDIR(f, ROOT, "c", 5));
    header.time_ms = T0;
    header.actor_user = OWNER;
    header.request_id.data = request_id;
    header.request_id.len = sizeof(request_id);
    cmd.header = &header;
    /* A move: two folders' counts, two entries, the inode, the journal. */
    rename.ns = NS;
    rename.inode = 3;
    rename.new_parent = 5;
    rename.new_name = "moved";
    cmd.op_case = CAIRN__CMD__COMMAND__OP_RENAME;
    cmd.rename = &rename;
    assert_atomic_under_faults(f, &cmd);
    ASSERT_EQ(lookup(f, 5, "moved"), 3);
    /* A purge: a walk over a subtree and its versions. */
    ASSERT_OK(TRASH(f, 5));
    request_id[0] = 0xfb;
    purge.ns = NS;
    purge.inode = 5;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_PURGE;
    cmd.purge = &purge;
    assert_atomic_under_faults(f, &cmd);
}

TEST(apply, an_upload_completes_whole_or_not_at_all, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__UploadBegin begin = CAIRN__CMD__UPLOAD_BEGIN__INIT;
    Cairn__Cmd__UploadComplete complete = CAIRN__CMD__UPLOAD_COMPLETE__INIT;
    Cairn__Cmd__Version version = CAIRN__CMD__VERSION__INIT;
    uint8_t upload_id[META_UPLOAD_ID_SIZE] = {0x0b};

    begin.upload_id.data = upload_id;
    begin.upload_id.len = sizeof(upload_id);
    begin.ns = NS;
    begin.parent = ROOT;
    begin.name = "new.bin";
    begin.expires_ms = T0 + 1000;
    ASSERT_OK(OP(f, upload_begin, UPLOAD_BEGIN, &begin));
    header.time_ms = T0;
    header.actor_user = OWNER;
    cmd.header = &header;
    /* Creates the file, commits its first version, closes the session. */
    complete.upload_id = begin.upload_id;
    complete.inode = 7;
    complete.version = &version;
    version.size = 99;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_UPLOAD_COMPLETE;
    cmd.upload_complete = &complete;
    assert_atomic_under_faults(f, &cmd);
    ASSERT_EQ(lookup(f, ROOT, "new.bin"), 7);
}

/* Rebuilds a snapshot without the first record whose key starts with table
 * (the snapshot format is in docs/metadata.md: "CMS1", then length-prefixed
 * key suffixes and values). */
static void snapshot_drop(struct cn_buf *snapshot, char table, struct cn_buf *out)
{
    size_t pos = 4;
    bool dropped = false;

    cn_buf_reset(out);
    ASSERT_OK(cn_buf_append(out, snapshot->base, 4));
    while (pos < snapshot->len) {
        size_t start = pos, k_len, v_len;
        k_len = cn_get_u32(snapshot->base + pos);
        v_len = cn_get_u32(snapshot->base + pos + 4 + k_len);
        pos += 4 + k_len + 4 + v_len;
        if (!dropped && snapshot->base[start + 4] == (uint8_t)table) {
            dropped = true;
            continue;
        }
        ASSERT_OK(cn_buf_append(out, snapshot->base + start, pos - start));
    }
    ASSERT_TRUE(dropped);
}

TEST(check, the_checker_reports_broken_invariants, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    static const struct {
        char table;
        const char *what;
    } cases[] = {
        {'D', "no entry"}, /* a name lost: the inode is unreachable */
        {'I', "bad root"}, /* the first inode, the root, lost */
        {'V', "versions"}, /* a version lost */
        {'J', "journal"},  /* an event lost: a gap */
    };
    char errmsg[CN_ERRMSG_SIZE];
    struct cn_buf snapshot, broken;

    ASSERT_OK(MKDIR(f, ROOT, "a", 2));
    ASSERT_OK(CREATE(f, 2, "x", 3));
    ASSERT_OK(COMMIT(f, 3, 0, 10));
    cn_buf_init(&snapshot);
    cn_buf_init(&broken);
    ASSERT_OK(meta_sm_snapshot(f->sm, &snapshot));
    for (size_t i = 0; i < CN_ARRAY_SIZE(cases); i++) {
        snapshot_drop(&snapshot, cases[i].table, &broken);
        ASSERT_OK(meta_sm_restore(f->sm, broken.base, broken.len));
        ASSERT_ERR(meta_sm_check(f->sm, errmsg), CAIRN_ECORRUPT);
        if (strstr(errmsg, cases[i].what) == NULL) {
            cn_test_fail(__FILE__, __LINE__, "table %c: \"%s\"", cases[i].table, errmsg);
        }
    }
    ASSERT_OK(meta_sm_restore(f->sm, snapshot.base, snapshot.len));
    ASSERT_OK(meta_sm_check(f->sm, errmsg));
    cn_buf_close(&broken);
    cn_buf_close(&snapshot);
}

/* ---- A killed process: no WAL, so Raft's log replays what RocksDB lost ---- */

#define KILL_ENTRIES 60
#define KILL_ENV     "CAIRN_TEST_KILL_DIR"

/* entries: (u64 length, bytes) each, as written by the parent below. */
static void kill_entries_write(const char *path, struct cn_buf *entries, size_t count)
{
    FILE *file = fopen(path, "wb");
    uint8_t len[8];

    ASSERT_TRUE(file != NULL);
    for (size_t i = 0; i < count; i++) {
        cn_put_u64(len, entries[i].len);
        ASSERT_EQ(fwrite(len, 1, sizeof(len), file), sizeof(len));
        ASSERT_EQ(fwrite(entries[i].base, 1, entries[i].len, file), entries[i].len);
    }
    ASSERT_EQ(fclose(file), 0);
}

/* The child half of apply/a_killed_process_replays_from_the_log, in a fresh
 * process of this binary: applies the entries to the store under
 * $CAIRN_TEST_KILL_DIR and dies by SIGKILL, closing nothing. Without the
 * variable (a normal run) it does nothing. */
TEST(apply, kill_child_half, NULL, NULL)
{
    const char *dir = getenv(KILL_ENV);
    char path[512], errmsg[CN_ERRMSG_SIZE];
    struct meta_store *store;
    struct meta_sm *sm;
    struct meta_result result;
    uint8_t len[8], *entry;
    meta_index index = 0;
    FILE *file;

    if (dir == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "%s/db", dir);
    ASSERT_OK(meta_store_open(path, &store, errmsg));
    ASSERT_OK(meta_sm_new(store, GROUP, NULL, &sm));
    snprintf(path, sizeof(path), "%s/entries", dir);
    file = fopen(path, "rb");
    ASSERT_TRUE(file != NULL);
    while (fread(len, 1, sizeof(len), file) == sizeof(len)) {
        entry = cn_xmalloc(cn_get_u64(len));
        ASSERT_EQ(fread(entry, 1, cn_get_u64(len), file), cn_get_u64(len));
        ASSERT_OK(meta_sm_apply(sm, ++index, entry, cn_get_u64(len), &result));
        free(entry);
    }
    fclose(file);
    ASSERT_EQ(meta_sm_applied(sm), KILL_ENTRIES);
    kill(getpid(), SIGKILL);
}

TEST(apply, a_killed_process_replays_from_the_log, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    uint8_t expected[META_DIGEST_SIZE], digest[META_DIGEST_SIZE];
    struct cn_buf entries[KILL_ENTRIES];
    char *dir = cn_test_tmpdir(), path[512], errmsg[CN_ERRMSG_SIZE], name[16];
    char *argv[] = {"test-meta", "apply/kill_child_half", NULL};
    struct meta_store *store;
    struct meta_sm *sm;
    struct meta_result result;
    int status;
    pid_t pid;

    /* The reference: a namespace, folders with odd-sized names, commits. */
    for (int i = 0; i < KILL_ENTRIES; i++) {
        if (i == 0) {
            ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
        } else if (i == 1) {
            ASSERT_OK(CREATE(f, ROOT, "file", 2));
        } else if (i % 2 == 0) {
            snprintf(name, sizeof(name), "d%d%.*s", i, i % 7, "abcdefgh");
            ASSERT_OK(MKDIR(f, ROOT, name, 10 + (uint64_t)i));
        } else {
            ASSERT_OK(COMMIT(f, 2, (uint64_t)(i - 3) / 2, 1000 + (uint64_t)i));
        }
        cn_buf_init(&entries[i]);
        ASSERT_OK(cn_buf_append(&entries[i], f->buf.base, f->buf.len));
    }
    ASSERT_OK(meta_sm_digest(f->sm, expected));
    snprintf(path, sizeof(path), "%s/entries", dir);
    kill_entries_write(path, entries, KILL_ENTRIES);

    pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        setenv(KILL_ENV, dir, 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* What RocksDB kept is a whole prefix of the applies, short of the end:
     * the memtable died with the process (no WAL). */
    snprintf(path, sizeof(path), "%s/db", dir);
    ASSERT_OK(meta_store_open(path, &store, errmsg));
    ASSERT_OK(meta_sm_new(store, GROUP, NULL, &sm));
    ASSERT_TRUE(meta_sm_applied(sm) < KILL_ENTRIES);
    ASSERT_OK(meta_sm_check(sm, errmsg));
    /* Raft replays its log: the kept prefix is skipped, the rest applied. */
    for (int i = 0; i < KILL_ENTRIES; i++) {
        ASSERT_OK(meta_sm_apply(sm, (meta_index)i + 1, entries[i].base, entries[i].len, &result));
        cn_buf_close(&entries[i]);
    }
    ASSERT_EQ(meta_sm_applied(sm), KILL_ENTRIES);
    ASSERT_OK(meta_sm_check(sm, errmsg));
    ASSERT_OK(meta_sm_digest(sm, digest));
    ASSERT_MEM_EQ(expected, digest, sizeof(digest));
    meta_sm_free(sm);
    meta_store_close(store);
    cn_test_rmdir(dir);
    free(dir);
}

static void assert_inode_name(struct fixture *f, uint64_t id, const char *name)
{
    Cairn__Cmd__Inode *inode;

    ASSERT_OK(meta_get_inode(f->sm, NS, id, &inode));
    ASSERT_STR_EQ(inode->name, name);
    meta_record_free(inode);
}

/* The state machine caches hot records (store.c): a read after each step
 * must see the step, never what the cache held before it. */
TEST(apply, the_record_cache_follows_applies_faults_and_restores, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Rename rename = CAIRN__CMD__RENAME__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE] = {0x77};
    struct cn_fault *fault = meta_sm_fault(f->sm);
    struct cn_buf snapshot;
    int rv;

    ASSERT_OK(MKDIR(f, ROOT, "a", 10));
    cn_buf_init(&snapshot);
    ASSERT_OK(meta_sm_snapshot(f->sm, &snapshot));
    assert_inode_name(f, 10, "a"); /* now cached */
    ASSERT_OK(RENAME(f, 10, ROOT, "b"));
    assert_inode_name(f, 10, "b");

    /* A rename that fails at each store call in turn changes nothing. */
    header.time_ms = f->time_ms;
    header.actor_user = OWNER;
    header.request_id.data = request_id;
    header.request_id.len = sizeof(request_id);
    rename.ns = NS;
    rename.inode = 10;
    rename.new_parent = ROOT;
    rename.new_name = "c";
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_RENAME;
    cmd.rename = &rename;
    ASSERT_OK(meta_command_encode(&cmd, &f->buf));
    for (int nth = 1;; nth++) {
        cn_fault_arm(fault, nth, 1);
        rv = meta_sm_apply(f->sm, f->index + 1, f->buf.base, f->buf.len, &f->result);
        if (cn_fault_hits(fault) == 0) {
            break;
        }
        cn_fault_init(fault);
        ASSERT_ERR(rv, CAIRN_EIO);
        assert_inode_name(f, 10, "b");
        ASSERT_EQ(lookup(f, ROOT, "c"), 0);
        ASSERT_CMP(nth, <, 100);
    }
    cn_fault_init(fault);
    ASSERT_OK(rv);
    f->index++;
    assert_inode_name(f, 10, "c");
    ASSERT_EQ(lookup(f, ROOT, "c"), 10);

    /* A restore replaces the group's keys, cached or not. */
    ASSERT_OK(meta_sm_restore(f->sm, snapshot.base, snapshot.len));
    assert_inode_name(f, 10, "a");
    ASSERT_EQ(lookup(f, ROOT, "a"), 10);
    ASSERT_EQ(lookup(f, ROOT, "c"), 0);
    cn_buf_close(&snapshot);
}

/* Applies reach RocksDB META__FLUSH_APPLIES at a time (store.c); until then
 * point reads, scans and snapshots must see them all the same. */
TEST(apply, unflushed_applies_are_read_scanned_and_snapshotted, fixture_setup, fixture_teardown)
{
    struct fixture *f = data;
    enum {
        N = 150
    };
    uint8_t expected[META_DIGEST_SIZE], digest[META_DIGEST_SIZE];
    struct cn_buf entries[N], snapshot;
    char *dir = cn_test_tmpdir(), errmsg[CN_ERRMSG_SIZE], name[32];
    struct meta_store *store;
    struct meta_sm *sm, *copy;
    struct meta_result result;
    uint64_t id;

    /* The reference applies with a check (a full scan) after every step. */
    for (int i = 0; i < N; i++) {
        if (i == 0) {
            ASSERT_OK(NS_CREATE(f, NS, OWNER, ROOT));
        } else if (i == 1) {
            ASSERT_OK(CREATE(f, ROOT, "file", 2));
        } else if (i % 3 != 0) {
            snprintf(name, sizeof(name), "dir%d", i);
            ASSERT_OK(MKDIR(f, ROOT, name, 10 + (uint64_t)i));
        } else {
            ASSERT_OK(COMMIT(f, 2, (uint64_t)(i / 3 - 1), (uint64_t)i));
        }
        cn_buf_init(&entries[i]);
        ASSERT_OK(cn_buf_append(&entries[i], f->buf.base, f->buf.len));
    }
    ASSERT_OK(meta_sm_digest(f->sm, expected));

    /* Another store applies the same entries, reading after each one. */
    ASSERT_OK(meta_store_open(dir, &store, errmsg));
    ASSERT_OK(meta_sm_new(store, GROUP + 1, NULL, &sm));
    for (int i = 0; i < N; i++) {
        ASSERT_OK(meta_sm_apply(sm, (meta_index)i + 1, entries[i].base, entries[i].len, &result));
        ASSERT_OK(result.rv);
        if (i >= 2 && i % 3 != 0) {
            snprintf(name, sizeof(name), "dir%d", i);
            ASSERT_OK(meta_lookup(sm, NS, ROOT, name, &id));
            ASSERT_EQ(id, 10 + (uint64_t)i);
        }
        if (i == 100) {
            /* A snapshot now holds all 101 applies. */
            cn_buf_init(&snapshot);
            ASSERT_OK(meta_sm_snapshot(sm, &snapshot));
            ASSERT_OK(meta_sm_new(store, GROUP + 2, NULL, &copy));
            ASSERT_OK(meta_sm_restore(copy, snapshot.base, snapshot.len));
            ASSERT_EQ(meta_sm_applied(copy), 101);
            ASSERT_OK(meta_lookup(copy, NS, ROOT, "dir100", &id));
            ASSERT_OK(meta_sm_check(copy, errmsg));
            meta_sm_free(copy);
            cn_buf_close(&snapshot);
        }
    }
    ASSERT_OK(meta_sm_digest(sm, digest));
    ASSERT_MEM_EQ(expected, digest, sizeof(digest));
    ASSERT_OK(meta_sm_check(sm, errmsg));

    /* A clean close writes the rest: a new state machine finds everything. */
    meta_sm_free(sm);
    ASSERT_OK(meta_sm_new(store, GROUP + 1, NULL, &sm));
    ASSERT_EQ(meta_sm_applied(sm), N);
    ASSERT_OK(meta_sm_digest(sm, digest));
    ASSERT_MEM_EQ(expected, digest, sizeof(digest));
    meta_sm_free(sm);
    meta_store_close(store);
    for (int i = 0; i < N; i++) {
        cn_buf_close(&entries[i]);
    }
    cn_test_rmdir(dir);
    free(dir);
}

/* A purge of thousands of inodes is one apply with thousands of writes; the
 * unflushed batch then gives its big arrays back (store.c, meta__flush) and
 * goes on as before. */
TEST(apply, a_big_purge_goes_through_the_unflushed_batch, ns_setup, fixture_teardown)
{
    struct fixture *f = data;
    enum {
        CHILDREN = 2100
    };
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__Header header = CAIRN__CMD__HEADER__INIT;
    Cairn__Cmd__Mkdir op = CAIRN__CMD__MKDIR__INIT;
    uint8_t request_id[META_REQUEST_ID_SIZE] = {0};
    char name[32];

    ASSERT_OK(MKDIR(f, ROOT, "big", 10));
    /* Without a check after each step (each is a full scan). */
    header.time_ms = f->time_ms;
    header.actor_user = OWNER;
    header.request_id.data = request_id;
    header.request_id.len = sizeof(request_id);
    cmd.header = &header;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_MKDIR;
    cmd.mkdir = &op;
    op.ns = NS;
    op.parent = 10;
    op.name = name;
    for (int i = 0; i < CHILDREN; i++) {
        snprintf(name, sizeof(name), "child%d", i);
        op.inode = 100 + (uint64_t)i;
        cn_put_u64(request_id, 0xb16ull << 32 | (uint64_t)i);
        ASSERT_OK(meta_command_encode(&cmd, &f->buf));
        ASSERT_OK(meta_sm_apply(f->sm, ++f->index, f->buf.base, f->buf.len, &f->result));
        ASSERT_OK(f->result.rv);
    }
    ASSERT_EQ(lookup(f, 10, "child2099"), 100 + CHILDREN - 1);
    ASSERT_OK(TRASH(f, 10));
    ASSERT_OK(PURGE(f, 10));
    ASSERT_EQ(lookup(f, ROOT, "big"), 0);
    ASSERT_OK(MKDIR(f, ROOT, "after", 5000));
    ASSERT_EQ(lookup(f, ROOT, "after"), 5000);
}
