/*
 * Sharing (docs/api.md, "Sharing"): grants on an inode of the caller's drive
 * (or of a shared item the caller owns), and the caller's "shared with me".
 *
 * Grant, the happy path: resolve the path; MetaRead user_by_name in group 0
 * (the system reads it: the grantee is named by the caller); AclGrant{ns,
 * inode, user, role, grantee_ns = the grantee's drive} to the item's group.
 * Apply checks that the caller owns the item; the group's outbox delivers
 * the share to the grantee's drive (docs/cluster.md), where GET /v1/shared
 * and the grantee's change stream see it.
 *
 * Possible failure modes: unknown grantee (404), bad role (400), the caller
 * not owner (403 from apply, or 404 when the caller cannot see the item),
 * the grantee is the caller (400 from apply).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

struct share {
    Cairn__Cmd__Role role;
    uint64_t grantee;
    bool revoke;
    json_t *grants; /* GET: the answer being built */
    uint64_t *users;
    Cairn__Cmd__Role *roles;
    size_t count;
    size_t next;
};

static void share_free(struct gw_call *call)
{
    struct share *share = call->op;

    if (share->grants != NULL) {
        json_decref(share->grants);
    }
    free(share->users);
    free(share->roles);
    free(share);
}

static void grant_done(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot change the shares of %s", call->path);
        return;
    }
    gw__call_status(call, 204);
}

static void grantee_found(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct share *share = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__AclGrant grant = CAIRN__CMD__ACL_GRANT__INIT;
    Cairn__Cmd__AclRevoke revoke = CAIRN__CMD__ACL_REVOKE__INIT;

    if (rv != 0 || reply->user == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such user: %s", call->name);
        return;
    }
    share->grantee = reply->user->id;
    if (share->revoke) {
        revoke.ns = call->ns;
        revoke.user = share->grantee;
        revoke.inode = call->inode;
        cmd.op_case = CAIRN__CMD__COMMAND__OP_ACL_REVOKE;
        cmd.acl_revoke = &revoke;
    } else {
        grant.ns = call->ns;
        grant.user = share->grantee;
        grant.role = share->role;
        grant.inode = call->inode;
        grant.grantee_ns = node_drive_ns(share->grantee, call->app->data_groups);
        cmd.op_case = CAIRN__CMD__COMMAND__OP_ACL_GRANT;
        cmd.acl_grant = &grant;
    }
    gw__call_propose(call, node_ns_group(call->ns), &cmd, grant_done);
}

static void find_grantee(struct gw_call *call)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;

    query.group = 0;
    query.actor = 0; /* the caller names the grantee; the system looks it up */
    query.query_case = CAIRN__WIRE__META_READ__QUERY_USER_BY_NAME;
    query.user_by_name = call->name;
    gw__call_read_system(call, &query, grantee_found);
}

/* ---- GET: the grants, with names ---- */

static void grants_next(struct gw_call *call);

static void grant_user_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct share *share = call->op;
    char id[24];

    snprintf(id, sizeof(id), "%" PRIu64, share->users[share->next]);
    json_array_append_new(share->grants,
                          json_pack("{s:s, s:s, s:s}", "user",
                                    rv == 0 && reply->user != NULL && reply->user->name != NULL
                                        ? reply->user->name
                                        : "",
                                    "user_id", id, "role",
                                    gw_role_name(share->roles[share->next]) != NULL
                                        ? gw_role_name(share->roles[share->next])
                                        : "none"));
    share->next++;
    grants_next(call);
}

static void grants_next(struct gw_call *call)
{
    struct share *share = call->op;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    json_t *body;

    if (share->next == share->count) {
        body = json_pack("{s:O}", "grants", share->grants);
        gw__call_json(call, 200, body);
        json_decref(body);
        return;
    }
    query.group = 0;
    query.actor = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_USER;
    query.user = share->users[share->next];
    gw__call_read_system(call, &query, grant_user_cb);
}

static void grants_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct share *share = call->op;

    if (rv != 0) {
        gw__call_error(call, rv, "cannot read the shares of %s", call->path);
        return;
    }
    share->count = reply->n_grants < 100 ? reply->n_grants : 100;
    share->users = cn_xcalloc(share->count + 1, sizeof(*share->users));
    share->roles = cn_xcalloc(share->count + 1, sizeof(*share->roles));
    for (size_t i = 0; i < share->count; i++) {
        share->users[i] = reply->grants[i]->user;
        share->roles[i] = reply->grants[i]->role;
    }
    share->grants = json_array();
    grants_next(call);
}

static void shares_resolved(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct share *share = call->op;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    Cairn__Wire__InodeRef ref = CAIRN__WIRE__INODE_REF__INIT;
    const char *method = gw_req_method(call->req);

    if (rv != 0 || reply->inode == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such file or folder: %s", call->path);
        return;
    }
    call->inode = reply->inode->id;
    if (strcmp(method, "GET") == 0) {
        ref.ns = call->ns;
        ref.inode = call->inode;
        query.group = node_ns_group(call->ns);
        query.query_case = CAIRN__WIRE__META_READ__QUERY_ACL;
        query.acl = &ref;
        gw__call_read(call, &query, grants_cb);
        return;
    }
    (void)share;
    find_grantee(call);
}

static void shares_body(struct gw_call *call)
{
    struct share *share = call->op;
    const char *user = json_string_value(json_object_get(call->json, "user"));
    const char *role = json_string_value(json_object_get(call->json, "role"));

    share->role = gw_role_parse(role);
    if (user == NULL || strlen(user) == 0 || strlen(user) >= sizeof(call->name) ||
        share->role == CAIRN__CMD__ROLE__ROLE_NONE) {
        gw__call_error(call, CAIRN_EINVAL,
                       "want {\"user\": NAME, \"role\": \"viewer\"|\"editor\"}");
        return;
    }
    snprintf(call->name, sizeof(call->name), "%s", user);
    gw__resolve(call, call->path, shares_resolved);
}

static void shares_authed(struct gw_call *call)
{
    const char *method = gw_req_method(call->req);
    struct share *share;
    int rv;

    if (!gw__call_target(call, "/v1/shares")) {
        return;
    }
    share = cn_xcalloc(1, sizeof(*share));
    call->op = share;
    call->op_free = share_free;
    if (strcmp(method, "POST") == 0) {
        gw__call_read_json(call, shares_body);
        return;
    }
    if (strcmp(method, "DELETE") == 0) {
        rv = gw_query_get(gw_req_query(call->req), "user", call->name, sizeof(call->name));
        if (rv != 0 || call->name[0] == '\0') {
            gw__call_error(call, CAIRN_EINVAL, "want ?user=NAME");
            return;
        }
        share->revoke = true;
    }
    gw__resolve(call, call->path, shares_resolved);
}

static void shares_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, shares_authed);
}

/* ---- Shared with me ---- */

static void shared_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    json_t *list, *body;
    char root[48], owner[24];

    if (rv != 0) {
        gw__call_error(call, rv, "cannot read what is shared with you");
        return;
    }
    list = json_array();
    for (size_t i = 0; i < reply->n_shares; i++) {
        const Cairn__Wire__Share *share = reply->shares[i];

        snprintf(root, sizeof(root), "%" PRIu64 ".%" PRIu64, share->ns, share->inode);
        snprintf(owner, sizeof(owner), "%" PRIu64, share->owner);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:I}", "root", root, "name",
                            share->name != NULL ? share->name : "", "owner", owner, "role",
                            gw_role_name(share->role) != NULL ? gw_role_name(share->role) : "none",
                            "time_ms", (json_int_t)share->time_ms));
    }
    body = json_pack("{s:o}", "shares", list);
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void shared_authed(struct gw_call *call)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    uint64_t drive = gw__call_drive(call);

    query.group = node_ns_group(drive);
    query.query_case = CAIRN__WIRE__META_READ__QUERY_SHARED_WITH;
    query.shared_with = drive;
    gw__call_read(call, &query, shared_cb);
}

static void shared_handler(struct gw_req *req, void *data)
{
    if (strcmp(gw_req_path(req), "/v1/shared") != 0) {
        gw_respond_error(req, CAIRN_ENOENT, "no such resource");
        return;
    }
    gw__call_auth(data, req, shared_authed);
}

int gw__share_routes(struct gw_app *app)
{
    struct gw_router *r = app->router;
    int rv;

    rv = gw_router_add(r, "POST", "/v1/shares", shares_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "DELETE", "/v1/shares", shares_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "GET", "/v1/shares", shares_handler, app);
    rv = rv != 0 ? rv : gw_router_add(r, "GET", "/v1/shared", shared_handler, app);
    return rv;
}
