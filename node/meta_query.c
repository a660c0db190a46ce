/*
 * MetaRead's queries, answered from a group's state after the strong-read
 * barrier (cluster.c), with the actor's rights checked here
 * (docs/cluster.md, "Rights on reads").
 *
 * Rights: actor 0 (the system) reads anything. user_by_name and token_hash
 * are the system's only (sign-in); a user record is its own user's (the
 * password hash cleared). An inode, its versions, a folder's listing and a
 * path need a role on that inode (meta_role_inode(): a grant on it or an
 * ancestor); the namespace record, its journal and a drive's "shared with
 * me" need a role on the namespace's root; grants (acl) need owner. The
 * trash lists the whole namespace's (every trashed top, with where it was):
 * it needs a role on the root too, so the owner and any viewer, editor or
 * owner of the whole namespace see it all, and a grantee of a folder only
 * sees none of it (CAIRN_ENOENT), even of what was trashed from its folder:
 * the list would show names from the rest of the namespace. Without
 * a role the answer is CAIRN_ENOENT, as if nothing were there, so existence
 * does not leak (EPERM only where the actor can see the item). Chunks are
 * the system's only; an upload session its uploader's.
 *
 * The reply's records belong to it; node__meta_query_free() frees them.
 * Only a failing store is an error of the call (CAIRN_EIO); everything else
 * is an outcome in reply->rv.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define LIST_LIMIT_MAX    1000u
#define JOURNAL_LIMIT_MAX 1000u

/* An outcome that is the operation's, not the call's. */
static bool is_outcome(int rv)
{
    return rv == 0 || rv == CAIRN_ENOENT || rv == CAIRN_EPERM || rv == CAIRN_EINVAL ||
           rv == CAIRN_ENOTDIR || rv == CAIRN_EUNSUPPORTED;
}

/* The actor may read inside ns: 0, or CAIRN_ENOENT (no role, or no ns). */
static int may_read(struct meta_sm *sm, uint64_t ns, uint64_t actor)
{
    Cairn__Cmd__Role role = CAIRN__CMD__ROLE__ROLE_NONE;
    int rv;

    if (actor == 0) {
        Cairn__Cmd__Namespace *record = NULL;
        rv = meta_get_namespace(sm, ns, &record);
        meta_record_free(record);
        return rv;
    }
    rv = meta_role(sm, ns, actor, &role);
    if (rv != 0) {
        return rv;
    }
    return role == CAIRN__CMD__ROLE__ROLE_NONE ? CAIRN_ENOENT : 0;
}

/* The actor may read inode of ns: 0, or CAIRN_ENOENT (no role on it or an
 * ancestor, or no such inode or ns). */
static int may_read_inode(struct meta_sm *sm, uint64_t ns, uint64_t inode, uint64_t actor)
{
    Cairn__Cmd__Role role = CAIRN__CMD__ROLE__ROLE_NONE;
    int rv = meta_role_inode(sm, ns, inode, actor, &role);

    if (rv != 0) {
        return rv;
    }
    return role == CAIRN__CMD__ROLE__ROLE_NONE ? CAIRN_ENOENT : 0;
}

/* Strips a version record's chunk list (a list carries none: they can be long). */
static void version_strip_chunks(Cairn__Cmd__Version *version)
{
    for (size_t i = 0; i < version->n_chunks; i++) {
        protobuf_c_message_free_unpacked(&version->chunks[i]->base, NULL);
    }
    free(version->chunks);
    version->chunks = NULL;
    version->n_chunks = 0;
}

struct list_state {
    struct meta_sm *sm;
    uint64_t ns;
    const char *after;
    uint32_t limit;
    Cairn__Wire__MetaReadReply *reply;
    int rv;
};

static int list_cb(void *data, const char *name, size_t name_len, uint64_t inode)
{
    struct list_state *st = data;
    Cairn__Wire__ListEntry *entry;

    CN_ASSERT(st->reply->n_entries < st->limit);
    entry = cn_xcalloc(1, sizeof(*entry));
    cairn__wire__list_entry__init(entry);
    entry->name = cn_xmalloc(name_len + 1);
    memcpy(entry->name, name, name_len);
    entry->name[name_len] = '\0';
    st->reply->entries[st->reply->n_entries++] = entry;
    st->rv = meta_get_inode(st->sm, st->ns, inode, &entry->inode);
    if (st->rv == 0 && entry->inode->version != 0 &&
        meta_get_version(st->sm, st->ns, inode, entry->inode->version, &entry->version) == 0) {
        version_strip_chunks(entry->version);
    }
    return st->rv;
}

static int query_list(struct meta_sm *sm,
                      const Cairn__Wire__ListQuery *q,
                      uint64_t actor,
                      Cairn__Wire__MetaReadReply *reply)
{
    struct list_state st = {.sm = sm, .ns = q->ns, .reply = reply};
    bool more = false;
    int rv;

    rv = may_read_inode(sm, q->ns, q->parent, actor);
    if (rv != 0) {
        return rv;
    }
    st.after = q->after != NULL ? q->after : "";
    st.limit = q->limit == 0 || q->limit > LIST_LIMIT_MAX ? LIST_LIMIT_MAX : q->limit;
    reply->entries = cn_xcalloc(st.limit, sizeof(*reply->entries));
    rv = meta_list_after(sm, q->ns, q->parent, st.after, st.limit, list_cb, &st, &more);
    reply->more = more;
    return rv;
}

/* The trash stops its walk on a full page with this (not a CAIRN_E* code). */
#define TRASH_PAGE_FULL 1

struct trash_state {
    struct meta_sm *sm;
    const Cairn__Wire__TrashQuery *q;
    uint32_t limit;
    bool more;
    Cairn__Wire__MetaReadReply *reply;
    char path[META_PATH_MAX + 1];
};

/* The path entry had (parent's path, then its name) into st->path, from its
 * end; "" when an ancestor is in the trash or gone, or the path is too long.
 * One inode read per ancestor (no cache: items of one folder read it again).
 * Only a failing store is an error. */
static int trash_path(struct trash_state *st, const Cairn__Cmd__Inode *entry, char **out)
{
    char *buf = st->path;
    size_t at = sizeof(st->path) - 1, len;
    uint64_t id = entry->parent;
    const char *name = entry->name != NULL ? entry->name : "";
    Cairn__Cmd__Inode *ancestor = NULL;
    int rv = 0;

    buf[at] = '\0';
    for (uint32_t steps = 0;; steps++) {
        len = strlen(name);
        if (len + (buf[at] != '\0' ? 1 : 0) > at || steps > META_PATH_MAX / 2) {
            goto none; /* longer than any path: no path */
        }
        if (buf[at] != '\0') {
            buf[--at] = '/';
        }
        at -= len;
        memcpy(buf + at, name, len);
        meta_record_free(ancestor);
        ancestor = NULL;
        rv = meta_get_inode(st->sm, st->q->ns, id, &ancestor);
        if (rv == CAIRN_ENOENT) {
            goto none;
        }
        if (rv != 0) {
            goto out;
        }
        if (ancestor->trashed) {
            goto none;
        }
        if (ancestor->parent == 0) {
            break; /* the root */
        }
        id = ancestor->parent;
        name = ancestor->name != NULL ? ancestor->name : "";
    }
    *out = cn_xstrdup(buf + at);
    goto out;
none:
    *out = cn_xstrdup("");
    rv = 0;
out:
    meta_record_free(ancestor);
    return rv;
}

static int trash_cb(void *data, uint64_t parent, uint64_t inode)
{
    struct trash_state *st = data;
    Cairn__Wire__MetaReadReply *reply = st->reply;
    Cairn__Wire__TrashEntry *entry;
    int rv;

    if (parent < st->q->after_parent ||
        (parent == st->q->after_parent && inode <= st->q->after_inode)) {
        return 0; /* before the page: meta_list_trash() has no "after" */
    }
    if (reply->n_trash == st->limit) {
        st->more = true;
        return TRASH_PAGE_FULL;
    }
    entry = cn_xcalloc(1, sizeof(*entry));
    cairn__wire__trash_entry__init(entry);
    reply->trash[reply->n_trash++] = entry;
    rv = meta_get_inode(st->sm, st->q->ns, inode, &entry->inode);
    if (rv != 0) {
        /* A trash key without its inode: the store is at fault, not the query. */
        return rv == CAIRN_ENOENT ? CAIRN_ECORRUPT : rv;
    }
    if (entry->inode->version != 0 &&
        meta_get_version(st->sm, st->q->ns, inode, entry->inode->version, &entry->version) == 0) {
        version_strip_chunks(entry->version);
    }
    return trash_path(st, entry->inode, &entry->path);
}

/* One page of the trash (the actor's role on the root was checked). The walk
 * starts at the namespace's first trashed top each time and skips to the
 * page, as meta_list_trash() has no "after": a page costs the entries
 * before it in key reads, cheap next to the records read for the page. */
static int query_trash(struct meta_sm *sm,
                       const Cairn__Wire__TrashQuery *q,
                       Cairn__Wire__MetaReadReply *reply)
{
    struct trash_state *st = cn_xcalloc(1, sizeof(*st));
    int rv;

    st->sm = sm;
    st->q = q;
    st->reply = reply;
    st->limit = q->limit == 0 || q->limit > LIST_LIMIT_MAX ? LIST_LIMIT_MAX : q->limit;
    reply->trash = cn_xcalloc(st->limit, sizeof(*reply->trash));
    rv = meta_list_trash(sm, q->ns, trash_cb, st);
    if (rv == TRASH_PAGE_FULL) {
        rv = 0;
    }
    reply->more = st->more;
    free(st);
    return rv;
}

/* Resolves a path, then checks the actor's role on what it found. */
static int query_resolve(struct meta_sm *sm,
                         const Cairn__Wire__PathQuery *q,
                         uint64_t actor,
                         Cairn__Wire__MetaReadReply *reply)
{
    int rv = meta_resolve(sm, q->ns, q->root, q->path != NULL ? q->path : "", &reply->inode,
                          &reply->parent);

    if (rv == 0) {
        rv = may_read_inode(sm, q->ns, reply->inode->id, actor);
    }
    return rv;
}

static int versions_cb(void *data, const Cairn__Cmd__Version *version)
{
    Cairn__Wire__MetaReadReply *reply = data;
    size_t len = cairn__cmd__version__get_packed_size(version);
    uint8_t *buf = cn_xmalloc(len + 1);

    cairn__cmd__version__pack(version, buf);
    reply->versions = realloc(reply->versions, (reply->n_versions + 1) * sizeof(*reply->versions));
    CN_ASSERT(reply->versions != NULL);
    reply->versions[reply->n_versions++] = cairn__cmd__version__unpack(NULL, len, buf);
    free(buf);
    CN_ASSERT(reply->versions[reply->n_versions - 1] != NULL);
    return 0;
}

static int events_cb(void *data, const Cairn__Cmd__Event *event)
{
    Cairn__Wire__MetaReadReply *reply = data;
    size_t len = cairn__cmd__event__get_packed_size(event);
    uint8_t *buf = cn_xmalloc(len + 1);

    cairn__cmd__event__pack(event, buf);
    reply->events = realloc(reply->events, (reply->n_events + 1) * sizeof(*reply->events));
    CN_ASSERT(reply->events != NULL);
    reply->events[reply->n_events++] = cairn__cmd__event__unpack(NULL, len, buf);
    free(buf);
    CN_ASSERT(reply->events[reply->n_events - 1] != NULL);
    return 0;
}

static int grants_cb(void *data, const Cairn__Cmd__AclEntry *entry)
{
    Cairn__Wire__MetaReadReply *reply = data;
    Cairn__Wire__Grant *grant = cn_xcalloc(1, sizeof(*grant));

    cairn__wire__grant__init(grant);
    grant->user = entry->user;
    grant->role = entry->role;
    reply->grants = realloc(reply->grants, (reply->n_grants + 1) * sizeof(*reply->grants));
    CN_ASSERT(reply->grants != NULL);
    reply->grants[reply->n_grants++] = grant;
    return 0;
}

/* The grants on an inode: its owners' (and the system's) business only. */
static int query_acl(struct meta_sm *sm,
                     const Cairn__Wire__MetaRead *q,
                     Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Cmd__Role role = CAIRN__CMD__ROLE__ROLE_NONE;
    int rv = meta_role_inode(sm, q->acl->ns, q->acl->inode, q->actor, &role);

    if (rv == 0 && role != CAIRN__CMD__ROLE__ROLE_OWNER) {
        rv = role == CAIRN__CMD__ROLE__ROLE_NONE ? CAIRN_ENOENT : CAIRN_EPERM;
    }
    return rv != 0 ? rv : meta_acl_list(sm, q->acl->ns, q->acl->inode, grants_cb, reply);
}

static int shares_cb(void *data, const Cairn__Cmd__ShareInfo *info)
{
    Cairn__Wire__MetaReadReply *reply = data;
    Cairn__Wire__Share *share = cn_xcalloc(1, sizeof(*share));

    cairn__wire__share__init(share);
    share->ns = info->ns;
    share->inode = info->inode;
    share->owner = info->owner;
    share->name = cn_xstrdup(info->name);
    share->role = info->role;
    share->time_ms = info->time_ms;
    reply->shares = realloc(reply->shares, (reply->n_shares + 1) * sizeof(*reply->shares));
    CN_ASSERT(reply->shares != NULL);
    reply->shares[reply->n_shares++] = share;
    return 0;
}

static int query_user(struct meta_sm *sm,
                      const Cairn__Wire__MetaRead *q,
                      Cairn__Wire__MetaReadReply *reply)
{
    int rv;

    if (q->query_case == CAIRN__WIRE__META_READ__QUERY_USER_BY_NAME) {
        if (q->actor != 0) {
            return CAIRN_EPERM;
        }
        return meta_get_user_by_name(sm, q->user_by_name, &reply->user);
    }
    if (q->actor != 0 && q->actor != q->user) {
        return CAIRN_EPERM;
    }
    rv = meta_get_user(sm, q->user, &reply->user);
    if (rv == 0 && q->actor != 0) {
        free(reply->user->password_hash);
        reply->user->password_hash = cn_xstrdup("");
    }
    return rv;
}

/* The namespace a query is inside, or 0 for none. */
static uint64_t query_ns(const Cairn__Wire__MetaRead *q)
{
    switch (q->query_case) {
    case CAIRN__WIRE__META_READ__QUERY_NS:
        return q->ns;
    case CAIRN__WIRE__META_READ__QUERY_INODE:
        return q->inode->ns;
    case CAIRN__WIRE__META_READ__QUERY_RESOLVE:
        return q->resolve->ns;
    case CAIRN__WIRE__META_READ__QUERY_LIST:
        return q->list->ns;
    case CAIRN__WIRE__META_READ__QUERY_VERSION:
        return q->version->ns;
    case CAIRN__WIRE__META_READ__QUERY_VERSIONS:
        return q->versions->ns;
    case CAIRN__WIRE__META_READ__QUERY_JOURNAL:
        return q->journal->ns;
    case CAIRN__WIRE__META_READ__QUERY_ROLE:
        return q->role->ns;
    case CAIRN__WIRE__META_READ__QUERY_ACL:
        return q->acl->ns;
    case CAIRN__WIRE__META_READ__QUERY_SHARED_WITH:
        return q->shared_with;
    case CAIRN__WIRE__META_READ__QUERY_TRASH:
        return q->trash->ns;
    default:
        return 0;
    }
}

static bool query_inode_scoped(const Cairn__Wire__MetaRead *q)
{
    switch (q->query_case) {
    case CAIRN__WIRE__META_READ__QUERY_INODE:
    case CAIRN__WIRE__META_READ__QUERY_RESOLVE:
    case CAIRN__WIRE__META_READ__QUERY_LIST:
    case CAIRN__WIRE__META_READ__QUERY_VERSION:
    case CAIRN__WIRE__META_READ__QUERY_VERSIONS:
    case CAIRN__WIRE__META_READ__QUERY_ACL:
    case CAIRN__WIRE__META_READ__QUERY_ROLE:
        return true;
    default:
        return false;
    }
}

static int query_ns_scoped(struct meta_sm *sm,
                           const Cairn__Wire__MetaRead *q,
                           Cairn__Wire__MetaReadReply *reply)
{
    uint64_t next = 0;
    int rv;

    switch (q->query_case) {
    case CAIRN__WIRE__META_READ__QUERY_NS:
        return meta_get_namespace(sm, q->ns, &reply->namespace_);
    case CAIRN__WIRE__META_READ__QUERY_INODE:
        rv = may_read_inode(sm, q->inode->ns, q->inode->inode, q->actor);
        return rv != 0 ? rv : meta_get_inode(sm, q->inode->ns, q->inode->inode, &reply->inode);
    case CAIRN__WIRE__META_READ__QUERY_RESOLVE:
        return query_resolve(sm, q->resolve, q->actor, reply);
    case CAIRN__WIRE__META_READ__QUERY_LIST:
        return query_list(sm, q->list, q->actor, reply);
    case CAIRN__WIRE__META_READ__QUERY_VERSION: {
        uint64_t number = q->version->version;
        rv = may_read_inode(sm, q->version->ns, q->version->inode, q->actor);
        if (rv != 0) {
            return rv;
        }
        if (number == 0) {
            rv = meta_get_inode(sm, q->version->ns, q->version->inode, &reply->inode);
            if (rv != 0) {
                return rv;
            }
            number = reply->inode->version;
        }
        return meta_get_version(sm, q->version->ns, q->version->inode, number, &reply->version);
    }
    case CAIRN__WIRE__META_READ__QUERY_VERSIONS:
        rv = may_read_inode(sm, q->versions->ns, q->versions->inode, q->actor);
        return rv != 0 ? rv
                       : meta_list_versions(sm, q->versions->ns, q->versions->inode, versions_cb,
                                            reply);
    case CAIRN__WIRE__META_READ__QUERY_JOURNAL: {
        uint32_t max = q->journal->max == 0 || q->journal->max > JOURNAL_LIMIT_MAX
                           ? JOURNAL_LIMIT_MAX
                           : q->journal->max;
        rv =
            meta_journal_read(sm, q->journal->ns, q->journal->cursor, max, events_cb, reply, &next);
        reply->next_cursor = next;
        return rv;
    }
    case CAIRN__WIRE__META_READ__QUERY_ROLE:
        return meta_role_inode(sm, q->role->ns, q->role->inode, q->actor, &reply->role);
    case CAIRN__WIRE__META_READ__QUERY_ACL:
        return query_acl(sm, q, reply);
    case CAIRN__WIRE__META_READ__QUERY_SHARED_WITH:
        return meta_inbox_list(sm, q->shared_with, shares_cb, reply);
    case CAIRN__WIRE__META_READ__QUERY_TRASH:
        return query_trash(sm, q->trash, reply);
    default:
        return CAIRN_EUNSUPPORTED;
    }
}

int node__meta_query(struct meta_sm *sm,
                     const Cairn__Wire__MetaRead *q,
                     Cairn__Wire__MetaReadReply *reply)
{
    uint64_t ns = query_ns(q);
    Cairn__Cmd__Namespace *record = NULL;
    int rv;

    cairn__wire__meta_read_reply__init(reply);
    switch (q->query_case) {
    case CAIRN__WIRE__META_READ__QUERY_USER_BY_NAME:
    case CAIRN__WIRE__META_READ__QUERY_USER:
        rv = query_user(sm, q, reply);
        break;
    case CAIRN__WIRE__META_READ__QUERY_TOKEN_HASH:
        rv = q->actor != 0 ? CAIRN_EPERM
             : q->token_hash.len != META_TOKEN_HASH_SIZE
                 ? CAIRN_EINVAL
                 : meta_get_token(sm, q->token_hash.data, &reply->token);
        break;
    case CAIRN__WIRE__META_READ__QUERY_CHUNK:
        rv = q->actor != 0 ? CAIRN_EPERM
             : q->chunk.len != META_CHUNK_ID_SIZE
                 ? CAIRN_EINVAL
                 : meta_get_chunk(sm, q->chunk.data, &reply->chunk);
        break;
    case CAIRN__WIRE__META_READ__QUERY_UPLOAD:
        rv = q->upload.len != META_UPLOAD_ID_SIZE
                 ? CAIRN_EINVAL
                 : meta_get_upload(sm, q->upload.data, &reply->upload);
        if (rv == 0 && q->actor != 0 && reply->upload->user != q->actor) {
            rv = CAIRN_ENOENT;
        }
        break;
    default:
        if (ns == 0) {
            rv = CAIRN_EINVAL; /* a query inside no namespace */
            break;
        }
        /* Inode-scoped queries check the inode's role themselves (a grant
         * may be on a folder only); the rest need a role on the root. */
        rv = query_inode_scoped(q) ? 0 : may_read(sm, ns, q->actor);
        if (rv == 0) {
            rv = query_ns_scoped(sm, q, reply);
        }
        if (rv == 0 && meta_get_namespace(sm, ns, &record) == 0) {
            reply->journal_seq = record->journal_seq;
        }
        meta_record_free(record);
    }
    if (rv != 0) {
        /* Nothing found on the way (a record read before a rights check
         * failed) leaks into a refusal. */
        node__meta_query_free(reply);
    }
    if (!is_outcome(rv)) {
        return rv; /* the store failed */
    }
    reply->rv = rv;
    return 0;
}

void node__meta_query_free(Cairn__Wire__MetaReadReply *reply)
{
    /* Every piece was allocated with the default allocator, as protobuf-c's
     * unpack does: its free walks them all. Fields left at their defaults
     * are skipped. */
    Cairn__Wire__MetaReadReply *copy = cn_xmalloc(sizeof(*copy));

    *copy = *reply;
    protobuf_c_message_free_unpacked(&copy->base, NULL);
    cairn__wire__meta_read_reply__init(reply);
}
