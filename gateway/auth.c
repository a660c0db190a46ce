/*
 * Sign-in, tokens and users (docs/api.md, "Sign-in and users").
 *
 * Login, the happy path:
 *   1. Read {"user","password"} (a JSON body of at most 64 KiB).
 *   2. MetaRead user_by_name in group 0 as the system (actor 0): the record
 *      with its argon2id hash.
 *   3. crypto_pwhash_str_verify() on libuv's pool: it takes ~50 ms and 64 MiB
 *      by design, so never on the loop.
 *   4. 32 random bytes are the token, sent as 64 hex characters; group 0
 *      stores only BLAKE2b-256 of those characters (TokenCreate, meta_token_hash).
 *   5. NamespaceCreate of the user's drive: EEXIST (the usual case) is fine,
 *      so a drive lost between UserCreate and NamespaceCreate is made here.
 *
 * Every other request: "Authorization: Bearer HEX" → hash → a small cache
 * (GW_TOKEN_CACHE_MAX entries, each trusted for token_cache_ms, 2 s by
 * default) or MetaRead token_hash (actor 0), then MetaRead user (for admin
 * and disabled). A revoked token or a disabled user thus stops working on
 * this gateway within token_cache_ms, on others at once; logout also drops
 * the entry here.
 *
 * Possible failure modes: unknown user or wrong password (one 401 for both,
 * so names do not leak); a missing, malformed, expired or revoked token (401);
 * the pool is busy (the verify waits its turn); metadata unreachable (503).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app.h"
#include "meta.h"

/* The fields User.admin and User.disabled (proto/command.proto). */
static bool user_admin(const Cairn__Cmd__User *user)
{
    return user->admin;
}

static bool user_disabled(const Cairn__Cmd__User *user)
{
    return user->disabled;
}

/* ---- Token cache ---- */

static struct gw_token_entry *cache_find(struct gw_app *app, const uint8_t hash[32])
{
    uint64_t now = uv_now(app->loop);

    for (unsigned i = 0; i < GW_TOKEN_CACHE_MAX; i++) {
        struct gw_token_entry *entry = &app->tokens[i];

        if (entry->until_ms > now && sodium_memcmp(entry->hash, hash, 32) == 0) {
            return entry;
        }
    }
    return NULL;
}

static void cache_put(struct gw_app *app, const uint8_t hash[32], uint64_t user, bool admin)
{
    uint64_t now = uv_now(app->loop);
    struct gw_token_entry *victim = &app->tokens[0];

    for (unsigned i = 0; i < GW_TOKEN_CACHE_MAX; i++) {
        if (app->tokens[i].until_ms < victim->until_ms) {
            victim = &app->tokens[i]; /* the oldest, or an expired one */
        }
    }
    memcpy(victim->hash, hash, 32);
    victim->user = user;
    victim->admin = admin;
    victim->until_ms = now + app->config.token_cache_ms;
}

void gw__auth_forget(struct gw_app *app, const uint8_t hash[32])
{
    struct gw_token_entry *entry = cache_find(app, hash);

    if (entry != NULL) {
        memset(entry, 0, sizeof(*entry));
    }
}

/* ---- Checking a token ---- */

static void check_user_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    gw_call_fn next = call->after_body;

    if (rv != 0 && rv != CAIRN_ENOENT) {
        gw__call_error(call, rv, "cannot check the token");
        return;
    }
    if (rv == CAIRN_ENOENT || reply->user == NULL || user_disabled(reply->user)) {
        call->user = 0;
        gw__call_error(call, CAIRN_EAUTH, "this account is disabled");
        return;
    }
    call->admin = user_admin(reply->user);
    cache_put(call->app, call->token_hash, call->user, call->admin);
    next(call);
}

static void check_token_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    uint64_t now = cn_clock_system()->wall_ms(cn_clock_system());

    if (rv != 0 && rv != CAIRN_ENOENT) {
        gw__call_error(call, rv, "cannot check the token");
        return;
    }
    if (rv == CAIRN_ENOENT || reply->token == NULL || reply->token->user_id == 0 ||
        (reply->token->expires_ms != 0 && reply->token->expires_ms <= now)) {
        gw__call_error(call, CAIRN_EAUTH, "unknown, expired or revoked token");
        return;
    }
    call->user = reply->token->user_id;
    query.group = 0;
    query.actor = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_USER;
    query.user = call->user;
    gw__call_read_system(call, &query, check_user_cb);
}

/* The hash of the bearer token in req; CAIRN_EAUTH if there is none. */
static int bearer_hash(struct gw_req *req, uint8_t hash[32])
{
    const char *value = gw_req_header(req, "Authorization");
    size_t len;

    if (value == NULL || strncasecmp(value, "Bearer ", 7) != 0) {
        return CAIRN_EAUTH;
    }
    value += 7;
    while (*value == ' ') {
        value++;
    }
    len = strlen(value);
    if (len != 2 * GW_TOKEN_SIZE) {
        return CAIRN_EAUTH;
    }
    for (size_t i = 0; i < len; i++) {
        if (cn_hex_value(value[i]) < 0) {
            return CAIRN_EAUTH;
        }
    }
    meta_token_hash(value, len, hash);
    return 0;
}

void gw__auth_check(struct gw_call *call, gw_call_fn next)
{
    struct gw_app *app = call->app;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    struct gw_token_entry *entry;

    if (bearer_hash(call->req, call->token_hash) != 0) {
        gw__call_error(call, CAIRN_EAUTH, "want Authorization: Bearer TOKEN");
        return;
    }
    app->stats.token_checks++;
    entry = cache_find(app, call->token_hash);
    if (entry != NULL) {
        app->stats.token_cache_hits++;
        call->user = entry->user;
        call->admin = entry->admin;
        next(call);
        return;
    }
    call->after_body = next; /* borrowed slot: no body is read before auth */
    query.group = 0;
    query.actor = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_TOKEN_HASH;
    query.token_hash.data = call->token_hash;
    query.token_hash.len = sizeof(call->token_hash);
    gw__call_read_system(call, &query, check_token_cb);
}

/* ---- Login ---- */

struct login {
    uv_work_t work;
    struct gw_call *call;
    char hash[META_PASSWORD_HASH_MAX + 1];
    char *password;
    bool ok;
    bool admin;
    char token[2 * GW_TOKEN_SIZE + 1];
    uint8_t token_hash[32];
    uint64_t expires_ms;
    char name[80];
};

static void login_free(struct gw_call *call)
{
    struct login *login = call->op;

    if (login->password != NULL) {
        sodium_memzero(login->password, strlen(login->password));
        free(login->password);
    }
    free(login);
}

static void login_answer(struct gw_call *call)
{
    struct login *login = call->op;
    json_t *body;

    call->app->stats.logins++;
    body = json_pack("{s:s, s:s, s:I, s:b}", "token", login->token, "user_id", "", "expires_ms",
                     (json_int_t)login->expires_ms, "admin", (int)login->admin);
    if (body != NULL) {
        char id[24];

        snprintf(id, sizeof(id), "%" PRIu64, call->user);
        json_object_set_new(body, "user_id", json_string(id));
    }
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void login_drive_cb(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0 && rv != CAIRN_EEXIST) {
        gw__call_error(call, rv, "cannot create the drive");
        return;
    }
    login_answer(call);
}

/* Makes the drive of call->user; EEXIST is fine. */
static void create_drive(struct gw_call *call, uint64_t user, const char *name, gw_propose_fn cb)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__NamespaceCreate create = CAIRN__CMD__NAMESPACE_CREATE__INIT;
    uint64_t actor;

    create.ns = node_drive_ns(user, call->app->data_groups);
    create.kind = CAIRN__CMD__NAMESPACE_KIND__NS_DRIVE;
    create.owner = user;
    create.name = (char *)name;
    create.root_inode = GW_DRIVE_ROOT;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_NAMESPACE_CREATE;
    cmd.namespace_create = &create;
    /* An admin makes someone else's drive: the system does, as for UserCreate. */
    actor = call->user;
    if (user != call->user) {
        call->user = 0;
    }
    gw__call_propose(call, node_ns_group(create.ns), &cmd, cb);
    call->user = actor;
}

static void login_token_cb(struct gw_call *call, int rv, uint64_t value)
{
    struct login *login = call->op;

    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot store the token");
        return;
    }
    create_drive(call, call->user, login->name, login_drive_cb);
}

static void login_work(uv_work_t *work)
{
    struct login *login = CN_CONTAINER_OF(work, struct login, work);

    login->ok =
        crypto_pwhash_str_verify(login->hash, login->password, strlen(login->password)) == 0;
}

static void login_after_work(uv_work_t *work, int status)
{
    struct login *login = CN_CONTAINER_OF(work, struct login, work);
    struct gw_call *call = login->call;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__TokenCreate create = CAIRN__CMD__TOKEN_CREATE__INIT;
    uint8_t token[GW_TOKEN_SIZE];

    CN_ASSERT(status == 0);
    if (!gw__call_release(call)) {
        return;
    }
    if (!login->ok) {
        call->app->stats.login_failures++;
        call->user = 0;
        gw__call_error(call, CAIRN_EAUTH, "unknown user or wrong password");
        return;
    }
    randombytes_buf(token, sizeof(token));
    cn_hex_encode(token, sizeof(token), login->token);
    sodium_memzero(token, sizeof(token));
    meta_token_hash(login->token, strlen(login->token), login->token_hash);
    login->expires_ms =
        cn_clock_system()->wall_ms(cn_clock_system()) + call->app->config.token_ttl_ms;
    create.token_hash.data = login->token_hash;
    create.token_hash.len = sizeof(login->token_hash);
    create.user_id = call->user;
    create.expires_ms = login->expires_ms;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_TOKEN_CREATE;
    cmd.token_create = &create;
    gw__call_propose(call, 0, &cmd, login_token_cb);
}

static void login_user_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct login *login = call->op;

    if (rv != 0 && rv != CAIRN_ENOENT) {
        gw__call_error(call, rv, "cannot read the user");
        return;
    }
    if (rv == CAIRN_ENOENT || reply->user == NULL || reply->user->password_hash == NULL ||
        strlen(reply->user->password_hash) > META_PASSWORD_HASH_MAX || user_disabled(reply->user)) {
        /* The same answer as a wrong password, so names do not leak. Still
         * hash once, so that the time does not tell either. */
        snprintf(login->hash, sizeof(login->hash), "%s", "");
    } else {
        snprintf(login->hash, sizeof(login->hash), "%s", reply->user->password_hash);
        call->user = reply->user->id;
        login->admin = user_admin(reply->user);
    }
    login->call = call;
    if (uv_queue_work(call->app->loop, &login->work, login_work, login_after_work) != 0) {
        gw__call_error(call, CAIRN_EBUSY, "cannot queue the password check");
        return;
    }
    gw__call_hold(call);
}

static void login_body(struct gw_call *call)
{
    struct login *login;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    const char *name = json_string_value(json_object_get(call->json, "user"));
    const char *password = json_string_value(json_object_get(call->json, "password"));

    if (name == NULL || password == NULL || strlen(name) == 0 || strlen(name) > 64 ||
        strlen(password) > 1024) {
        gw__call_error(call, CAIRN_EINVAL, "want {\"user\": NAME, \"password\": TEXT}");
        return;
    }
    login = cn_xcalloc(1, sizeof(*login));
    login->password = cn_xstrdup(password);
    snprintf(login->name, sizeof(login->name), "%s", name);
    call->op = login;
    call->op_free = login_free;
    query.group = 0;
    query.actor = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_USER_BY_NAME;
    query.user_by_name = login->name;
    gw__call_read_system(call, &query, login_user_cb);
}

static void login_handler(struct gw_req *req, void *data)
{
    struct gw_app *app = data;
    struct gw_call *call = gw__call_new(app, req);

    if (app->data_groups == 0) {
        gw__call_error(call, CAIRN_EUNAVAIL, "the gateway has not reached the cluster yet");
        return;
    }
    gw__call_read_json(call, login_body);
}

/* ---- Another token for a device ---- */

static void token_created(struct gw_call *call, int rv, uint64_t value)
{
    struct login *login = call->op;
    json_t *body;

    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot store the token");
        return;
    }
    body =
        json_pack("{s:s, s:I}", "token", login->token, "expires_ms", (json_int_t)login->expires_ms);
    gw__call_json(call, 201, body);
    json_decref(body);
}

static void token_body(struct gw_call *call)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__TokenCreate create = CAIRN__CMD__TOKEN_CREATE__INIT;
    json_t *ttl = json_object_get(call->json, "ttl_s");
    uint64_t ttl_ms = call->app->config.token_ttl_ms;
    uint8_t token[GW_TOKEN_SIZE];
    struct login *login;

    if (ttl != NULL) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) <= 0 ||
            (uint64_t)json_integer_value(ttl) * 1000 > call->app->config.token_ttl_ms) {
            gw__call_error(call, CAIRN_EINVAL, "ttl_s: 1..%" PRIu64,
                           call->app->config.token_ttl_ms / 1000);
            return;
        }
        ttl_ms = (uint64_t)json_integer_value(ttl) * 1000;
    }
    login = cn_xcalloc(1, sizeof(*login));
    call->op = login;
    call->op_free = login_free;
    randombytes_buf(token, sizeof(token));
    cn_hex_encode(token, sizeof(token), login->token);
    sodium_memzero(token, sizeof(token));
    meta_token_hash(login->token, strlen(login->token), login->token_hash);
    login->expires_ms = cn_clock_system()->wall_ms(cn_clock_system()) + ttl_ms;
    create.token_hash.data = login->token_hash;
    create.token_hash.len = sizeof(login->token_hash);
    create.user_id = call->user;
    create.expires_ms = login->expires_ms;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_TOKEN_CREATE;
    cmd.token_create = &create;
    gw__call_propose(call, 0, &cmd, token_created);
}

static void tokens_authed(struct gw_call *call)
{
    gw__call_read_json(call, token_body);
}

static void tokens_handler(struct gw_req *req, void *data)
{
    if (strcmp(gw_req_path(req), "/v1/auth/tokens") != 0) {
        gw_respond_error(req, CAIRN_ENOENT, "no such resource");
        return;
    }
    gw__call_auth(data, req, tokens_authed);
}

/* ---- Logout ---- */

static void logout_cb(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0 && rv != CAIRN_ENOENT) {
        gw__call_error(call, rv, "cannot revoke the token");
        return;
    }
    gw__call_status(call, 204);
}

static void logout_authed(struct gw_call *call)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__TokenRevoke revoke = CAIRN__CMD__TOKEN_REVOKE__INIT;

    gw__auth_forget(call->app, call->token_hash);
    revoke.token_hash.data = call->token_hash;
    revoke.token_hash.len = sizeof(call->token_hash);
    cmd.op_case = CAIRN__CMD__COMMAND__OP_TOKEN_REVOKE;
    cmd.token_revoke = &revoke;
    gw__call_propose(call, 0, &cmd, logout_cb);
}

static void logout_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, logout_authed);
}

/* ---- Me ---- */

static void me_cb(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    char id[24], drive[24];
    json_t *body;

    if (rv != 0 || reply->user == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "cannot read the user");
        return;
    }
    snprintf(id, sizeof(id), "%" PRIu64, call->user);
    snprintf(drive, sizeof(drive), "%" PRIu64, gw__call_drive(call));
    body = json_pack("{s:s, s:s, s:b, s:s, s:I}", "user_id", id, "name",
                     reply->user->name != NULL ? reply->user->name : "", "admin",
                     (int)user_admin(reply->user), "drive", drive, "quota_bytes",
                     (json_int_t)reply->user->quota_bytes);
    gw__call_json(call, 200, body);
    json_decref(body);
}

static void me_authed(struct gw_call *call)
{
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;

    query.group = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_USER;
    query.user = call->user;
    gw__call_read(call, &query, me_cb);
}

static void me_handler(struct gw_req *req, void *data)
{
    if (strcmp(gw_req_path(req), "/v1/me") != 0) {
        gw_respond_error(req, CAIRN_ENOENT, "no such resource");
        return;
    }
    gw__call_auth(data, req, me_authed);
}

/* ---- Admin: users ---- */

struct user_create {
    uv_work_t work;
    struct gw_call *call;
    char *password;
    char hash[META_PASSWORD_HASH_MAX];
    char name[80];
    uint64_t quota;
    bool admin;
    int rv;
    uint64_t id;
};

static void user_create_free(struct gw_call *call)
{
    struct user_create *create = call->op;

    if (create->password != NULL) {
        sodium_memzero(create->password, strlen(create->password));
        free(create->password);
    }
    free(create);
}

static void user_drive_cb(struct gw_call *call, int rv, uint64_t value)
{
    struct user_create *create = call->op;
    char id[24];
    json_t *body;

    (void)value;
    if (rv != 0 && rv != CAIRN_EEXIST) {
        gw__call_error(call, rv, "the user was made, its drive not (sign-in makes it)");
        return;
    }
    snprintf(id, sizeof(id), "%" PRIu64, create->id);
    body = json_pack("{s:s, s:s}", "user_id", id, "name", create->name);
    gw__call_json(call, 201, body);
    json_decref(body);
}

static void user_created_cb(struct gw_call *call, int rv, uint64_t value)
{
    struct user_create *create = call->op;

    (void)value;
    if (rv != 0) {
        gw__call_error(
            call, rv, rv == CAIRN_EEXIST ? "a user of that name exists" : "cannot create the user");
        return;
    }
    create_drive(call, create->id, create->name, user_drive_cb);
}

static void hash_work(uv_work_t *work)
{
    struct user_create *create = CN_CONTAINER_OF(work, struct user_create, work);

    create->rv = meta_password_hash(create->password, create->hash);
}

static void propose_user(struct gw_call *call)
{
    struct user_create *create = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__UserCreate user = CAIRN__CMD__USER_CREATE__INIT;
    uint64_t actor = call->user;

    create->id = gw__random_id(true);
    user.user_id = create->id;
    user.name = create->name;
    user.password_hash = create->hash;
    user.quota_bytes = create->quota;
    user.admin = create->admin;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_USER_CREATE;
    cmd.user_create = &user;
    call->user = 0; /* UserCreate is the system's: the gateway checked the admin */
    gw__call_propose(call, 0, &cmd, user_created_cb);
    call->user = actor;
}

static void hash_after_work(uv_work_t *work, int status)
{
    struct user_create *create = CN_CONTAINER_OF(work, struct user_create, work);
    struct gw_call *call = create->call;

    CN_ASSERT(status == 0);
    if (!gw__call_release(call)) {
        return;
    }
    if (create->rv != 0) {
        gw__call_error(call, create->rv, "cannot hash the password");
        return;
    }
    propose_user(call);
}

static void user_create_body(struct gw_call *call)
{
    struct user_create *create;
    const char *name = json_string_value(json_object_get(call->json, "name"));
    const char *password = json_string_value(json_object_get(call->json, "password"));
    json_t *quota = json_object_get(call->json, "quota_bytes");
    json_t *admin = json_object_get(call->json, "admin");

    if (name == NULL || password == NULL || strlen(name) == 0 || strlen(name) > 64 ||
        strlen(password) < 1 || strlen(password) > 1024 ||
        (quota != NULL && (!json_is_integer(quota) || json_integer_value(quota) < 0)) ||
        (admin != NULL && !json_is_boolean(admin))) {
        gw__call_error(call, CAIRN_EINVAL,
                       "want {\"name\": NAME, \"password\": TEXT, \"quota_bytes\"?: N, "
                       "\"admin\"?: BOOL}");
        return;
    }
    create = cn_xcalloc(1, sizeof(*create));
    create->password = cn_xstrdup(password);
    snprintf(create->name, sizeof(create->name), "%s", name);
    create->quota = quota != NULL ? (uint64_t)json_integer_value(quota) : 0;
    create->admin = admin != NULL && json_is_true(admin);
    create->call = call;
    call->op = create;
    call->op_free = user_create_free;
    if (uv_queue_work(call->app->loop, &create->work, hash_work, hash_after_work) != 0) {
        gw__call_error(call, CAIRN_EBUSY, "cannot queue the password hash");
        return;
    }
    gw__call_hold(call);
}

static void user_disable_cb(struct gw_call *call, int rv, uint64_t value)
{
    (void)value;
    if (rv != 0) {
        gw__call_error(call, rv, "cannot disable the user");
        return;
    }
    gw__call_status(call, 204);
}

static void user_disable_found(struct gw_call *call,
                               int rv,
                               const Cairn__Wire__MetaReadReply *reply)
{
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__UserDisable set = CAIRN__CMD__USER_DISABLE__INIT;
    uint64_t actor = call->user;

    if (rv != 0 || reply->user == NULL) {
        gw__call_error(call, rv != 0 ? rv : CAIRN_ENOENT, "no such user");
        return;
    }
    set.user_id = reply->user->id;
    set.disabled = true;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_USER_DISABLE;
    cmd.user_disable = &set;
    call->user = 0;
    gw__call_propose(call, 0, &cmd, user_disable_cb);
    call->user = actor;
}

static void users_authed(struct gw_call *call)
{
    const char *path = gw_req_path(call->req) + strlen("/v1/admin/users");
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;
    const char *slash;

    if (!call->admin) {
        gw__call_error(call, CAIRN_EPERM, "admins only");
        return;
    }
    if (strcmp(gw_req_method(call->req), "POST") == 0 &&
        (*path == '\0' || strcmp(path, "/") == 0)) {
        gw__call_read_json(call, user_create_body);
        return;
    }
    /* POST /v1/admin/users/{name}/disable */
    slash = *path == '/' ? strchr(path + 1, '/') : NULL;
    if (strcmp(gw_req_method(call->req), "POST") != 0 || slash == NULL ||
        strcmp(slash, "/disable") != 0 || (size_t)(slash - path - 1) >= sizeof(call->name) ||
        gw_url_decode(path + 1, (size_t)(slash - path - 1), false, call->name,
                      sizeof(call->name)) != 0) {
        gw__call_error(call, CAIRN_ENOENT, "no such resource");
        return;
    }
    query.group = 0;
    query.actor = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_USER_BY_NAME;
    query.user_by_name = call->name;
    gw__call_read_system(call, &query, user_disable_found);
}

static void users_handler(struct gw_req *req, void *data)
{
    gw__call_auth(data, req, users_authed);
}

/* ---- Bootstrap: --admin-user ---- */

static void bootstrap_done(struct gw_call *call, int rv, uint64_t value)
{
    struct gw_app *app = call->app;

    (void)value;
    app->admin_in_flight = false;
    if (rv == 0 || rv == CAIRN_EEXIST) {
        app->admin_done = true;
        CN_LOG(CN_INFO, "admin user ready", "user=%s", app->admin_user);
    } else {
        CN_LOG(CN_WARN, "cannot create the admin user", "err=%s", cairn_errname(rv));
    }
    gw__call_finish(call);
}

static void bootstrap_created(struct gw_call *call, int rv, uint64_t value)
{
    struct user_create *create = call->op;

    (void)value;
    if (rv != 0) {
        bootstrap_done(call, rv, 0);
        return;
    }
    create_drive(call, create->id, create->name, bootstrap_done);
}

static void bootstrap_found(struct gw_call *call, int rv, const Cairn__Wire__MetaReadReply *reply)
{
    struct user_create *create = call->op;
    Cairn__Cmd__Command cmd = CAIRN__CMD__COMMAND__INIT;
    Cairn__Cmd__UserCreate user = CAIRN__CMD__USER_CREATE__INIT;

    (void)reply;
    if (rv == 0) {
        bootstrap_done(call, 0, 0);
        return;
    }
    if (rv != CAIRN_ENOENT) {
        bootstrap_done(call, rv, 0);
        return;
    }
    create->rv = meta_password_hash(call->app->admin_password, create->hash);
    if (create->rv != 0) {
        bootstrap_done(call, create->rv, 0);
        return;
    }
    create->id = gw__random_id(true);
    user.user_id = create->id;
    user.name = create->name;
    user.password_hash = create->hash;
    user.admin = true;
    cmd.op_case = CAIRN__CMD__COMMAND__OP_USER_CREATE;
    cmd.user_create = &user;
    gw__call_propose(call, 0, &cmd, bootstrap_created);
}

void gw__auth_bootstrap(struct gw_app *app)
{
    struct gw_call *call;
    struct user_create *create;
    Cairn__Wire__MetaRead query = CAIRN__WIRE__META_READ__INIT;

    if (app->admin_user == NULL || app->admin_done || app->admin_in_flight ||
        app->data_groups == 0) {
        return;
    }
    app->admin_in_flight = true;
    /* A call without a request: it frees itself after its last callback. */
    call = cn_xcalloc(1, sizeof(*call));
    call->app = app;
    call->headless = true;
    cn_buf_init(&call->body);
    app->stats.calls_alive++;
    create = cn_xcalloc(1, sizeof(*create));
    snprintf(create->name, sizeof(create->name), "%s", app->admin_user);
    call->op = create;
    call->op_free = user_create_free;
    call->req = NULL;
    query.group = 0;
    query.actor = 0;
    query.query_case = CAIRN__WIRE__META_READ__QUERY_USER_BY_NAME;
    query.user_by_name = create->name;
    gw__call_read_system(call, &query, bootstrap_found);
}

int gw__auth_routes(struct gw_app *app)
{
    int rv;

    rv = gw_router_add(app->router, "POST", "/v1/auth/login", login_handler, app);
    rv = rv != 0 ? rv : gw_router_add(app->router, "POST", "/v1/auth/logout", logout_handler, app);
    rv = rv != 0 ? rv : gw_router_add(app->router, "POST", "/v1/auth/tokens", tokens_handler, app);
    rv = rv != 0 ? rv : gw_router_add(app->router, "GET", "/v1/me", me_handler, app);
    rv = rv != 0 ? rv : gw_router_add(app->router, "POST", "/v1/admin/users", users_handler, app);
    return rv;
}
