/*
 * libcairn's calls (include/cairn.h), one per Drive API operation of
 * docs/api.md. Each builds its URL (percent-encoded path, ?root= for a shared
 * item), runs one request through cl_http(), and decodes the JSON answer with
 * jansson into the caller's structs. Listings page through `next`.
 *
 * Possible failure modes: what cl_http() returns; an answer that is not the
 * JSON the contract promises is CAIRN_EPROTO with a message saying which
 * field was missing, so a client/server mismatch is named, not guessed at.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cl_int.h"

#define LIST_PAGE 1000

int cairn_client_new(const char *endpoint, const char *token, struct cairn_client **out)
{
    struct cairn_client *client;
    size_t len;

    if (endpoint == NULL ||
        (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)) {
        return CAIRN_EINVAL;
    }
    len = strlen(endpoint);
    while (len > 0 && endpoint[len - 1] == '/') {
        len--;
    }
    if (len >= CAIRN_URL_SIZE - 256 || (token != NULL && strlen(token) >= CAIRN_TOKEN_SIZE)) {
        return CAIRN_EINVAL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    client = calloc(1, sizeof(*client));
    if (client == NULL) {
        return CAIRN_ENOMEM;
    }
    client->curl = curl_easy_init();
    if (client->curl == NULL) {
        free(client);
        return CAIRN_ENOMEM;
    }
    memcpy(client->endpoint, endpoint, len);
    client->endpoint[len] = '\0';
    snprintf(client->token, sizeof(client->token), "%s", token != NULL ? token : "");
    client->stall_s = 60;
    *out = client;
    return 0;
}

void cairn_client_free(struct cairn_client *client)
{
    if (client == NULL) {
        return;
    }
    curl_easy_cleanup(client->curl);
    free(client);
}

const char *cairn_client_errmsg(const struct cairn_client *client)
{
    return client->errmsg;
}

int cairn_client_status(const struct cairn_client *client)
{
    return client->status;
}

int cairn_client_set_token(struct cairn_client *client, const char *token)
{
    if (token != NULL && (strlen(token) >= CAIRN_TOKEN_SIZE || strpbrk(token, "\r\n") != NULL)) {
        return CAIRN_EINVAL;
    }
    snprintf(client->token, sizeof(client->token), "%s", token != NULL ? token : "");
    return 0;
}

int cairn_client_set_root(struct cairn_client *client, const char *root)
{
    if (root != NULL && strlen(root) >= sizeof(client->root)) {
        return CAIRN_EINVAL;
    }
    snprintf(client->root, sizeof(client->root), "%s", root != NULL ? root : "");
    return 0;
}

void cairn_client_set_stall_timeout(struct cairn_client *client, unsigned seconds)
{
    client->stall_s = seconds;
}

/* Sets errmsg for a local failure and returns rv. */
static int fail(struct cairn_client *client, int rv, const char *fmt, const char *arg)
{
    snprintf(client->errmsg, sizeof(client->errmsg), fmt, arg);
    return rv;
}

/* endpoint + prefix + encoded path (when path != NULL) + "?" query, with
 * root=... added for path-based calls on a shared item. */
static int build_url(
    struct cairn_client *client, const char *prefix, const char *path, const char *query, char *url)
{
    char encoded[CAIRN_PATH_SIZE * 3];
    char root[CAIRN_PATH_SIZE * 3] = "";
    bool has_query = query != NULL && query[0] != '\0';
    int n;
    int rv;

    encoded[0] = '\0';
    if (path != NULL) {
        rv = cl_path_encode(path, encoded, sizeof(encoded));
        if (rv != 0) {
            return fail(client, rv, "bad path: %s", path);
        }
        if (client->root[0] != '\0') {
            if (cl_query_escape(client->root, root, sizeof(root)) != 0) {
                return fail(client, CAIRN_ETOOBIG, "root too long: %.200s", client->root);
            }
        }
    }
    n = snprintf(url, CAIRN_URL_SIZE * 4, "%s%s%s%s%s%s%s", client->endpoint, prefix, encoded,
                 has_query || root[0] != '\0' ? "?" : "", has_query ? query : "",
                 has_query && root[0] != '\0' ? "&root=" : (root[0] != '\0' ? "root=" : ""), root);
    if (n < 0 || (size_t)n >= CAIRN_URL_SIZE * 4) {
        return fail(client, CAIRN_ETOOBIG, "URL too long for %s", path != NULL ? path : prefix);
    }
    return 0;
}

#define URL_BUF (CAIRN_URL_SIZE * 4)

/* Runs a request with an optional JSON body and decodes a JSON answer into
 * *answer (NULL allowed: the answer is dropped). */
static int call(
    struct cairn_client *client, const char *method, const char *url, json_t *body, json_t **answer)
{
    struct cl_request req;
    struct cl_response resp;
    char *text = NULL;
    int rv;

    cl_request_init(&req, method, url);
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        if (text == NULL) {
            return CAIRN_ENOMEM;
        }
        req.json = text;
    }
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    free(text);
    if (rv == 0 && answer != NULL) {
        *answer = json_loadb((const char *)resp.body.base, resp.body.len, 0, NULL);
        if (*answer == NULL) {
            rv = fail(client, CAIRN_EPROTO, "%.300s: the answer is not JSON", url);
        }
    }
    cl_response_close(&resp);
    return rv;
}

static void copy_str(json_t *obj, const char *key, char *out, size_t out_size)
{
    json_t *value = json_object_get(obj, key);

    if (json_is_string(value)) {
        snprintf(out, out_size, "%s", json_string_value(value));
    } else if (json_is_integer(value)) {
        snprintf(out, out_size, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    } else {
        out[0] = '\0';
    }
}

static uint64_t get_u64(json_t *obj, const char *key)
{
    json_t *value = json_object_get(obj, key);
    uint64_t v = 0;

    if (json_is_integer(value) && json_integer_value(value) > 0) {
        return (uint64_t)json_integer_value(value);
    }
    if (json_is_string(value) && cl_parse_u64(json_string_value(value), &v) == 0) {
        return v;
    }
    return 0;
}

static int entry_from_json(struct cairn_client *client, json_t *obj, struct cairn_entry *entry)
{
    const char *kind = json_string_value(json_object_get(obj, "kind"));

    memset(entry, 0, sizeof(*entry));
    if (!json_is_object(obj) || !json_is_string(json_object_get(obj, "name")) || kind == NULL) {
        return fail(client, CAIRN_EPROTO, "%s", "an entry without name or kind");
    }
    copy_str(obj, "name", entry->name, sizeof(entry->name));
    copy_str(obj, "path", entry->path, sizeof(entry->path));
    copy_str(obj, "id", entry->id, sizeof(entry->id));
    copy_str(obj, "etag", entry->etag, sizeof(entry->etag));
    entry->folder = strcmp(kind, "folder") == 0;
    entry->trashed = json_is_true(json_object_get(obj, "trashed"));
    entry->size = get_u64(obj, "size");
    entry->version = get_u64(obj, "version");
    entry->modified_ms = get_u64(obj, "modified_ms");
    return 0;
}

int cl_entry_parse(struct cairn_client *client,
                   const char *body,
                   size_t len,
                   struct cairn_entry *entry)
{
    json_t *obj = json_loadb(body, len, 0, NULL);
    int rv = entry_from_json(client, obj, entry);

    json_decref(obj);
    return rv;
}

/* Runs a call whose answer is an entry (stat, mkdir, move, restores). */
static int call_entry(struct cairn_client *client,
                      const char *method,
                      const char *url,
                      json_t *body,
                      struct cairn_entry *entry)
{
    struct cairn_entry scratch;
    json_t *answer = NULL;
    int rv;

    rv = call(client, method, url, body, &answer);
    if (rv == 0) {
        rv = entry_from_json(client, answer, entry != NULL ? entry : &scratch);
    }
    json_decref(answer);
    return rv;
}

int cairn_login(struct cairn_client *client,
                const char *user,
                const char *password,
                const char *device,
                char *token)
{
    char url[URL_BUF];
    json_t *body = json_pack("{ss ss}", "user", user, "password", password);
    json_t *answer = NULL;
    const char *value;
    int rv;

    if (body == NULL) {
        return CAIRN_EINVAL; /* Not UTF-8. */
    }
    if (device != NULL) {
        json_object_set_new(body, "device", json_string(device));
    }
    snprintf(url, sizeof(url), "%s/v1/auth/login", client->endpoint);
    rv = call(client, "POST", url, body, &answer);
    json_decref(body);
    if (rv != 0) {
        return rv;
    }
    value = json_string_value(json_object_get(answer, "token"));
    if (value == NULL || cairn_client_set_token(client, value) != 0) {
        rv = fail(client, CAIRN_EPROTO, "%s", "login answer without a usable token");
    } else {
        snprintf(token, CAIRN_TOKEN_SIZE, "%s", value);
    }
    json_decref(answer);
    return rv;
}

int cairn_logout(struct cairn_client *client)
{
    char url[URL_BUF];

    snprintf(url, sizeof(url), "%s/v1/auth/logout", client->endpoint);
    return call(client, "POST", url, NULL, NULL);
}

int cairn_admin_user_add(struct cairn_client *client,
                         const char *name,
                         const char *password,
                         uint64_t quota_bytes,
                         bool admin,
                         char *user_id)
{
    char url[URL_BUF];
    json_t *body = json_pack("{ss ss sb}", "name", name, "password", password, "admin", admin);
    json_t *answer = NULL;
    int rv;

    if (body == NULL) {
        return CAIRN_EINVAL;
    }
    if (quota_bytes > 0) {
        json_object_set_new(body, "quota_bytes", json_integer((json_int_t)quota_bytes));
    }
    snprintf(url, sizeof(url), "%s/v1/admin/users", client->endpoint);
    rv = call(client, "POST", url, body, &answer);
    json_decref(body);
    if (rv == 0 && user_id != NULL) {
        copy_str(answer, "user_id", user_id, CAIRN_ID_SIZE);
    }
    json_decref(answer);
    return rv;
}

static int get_text(struct cairn_client *client, const char *prefix, char **json)
{
    char url[URL_BUF];
    json_t *answer = NULL;
    int rv;

    snprintf(url, sizeof(url), "%s%s", client->endpoint, prefix);
    rv = call(client, "GET", url, NULL, &answer);
    if (rv == 0) {
        *json = json_dumps(answer, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        rv = *json != NULL ? 0 : CAIRN_ENOMEM;
    }
    json_decref(answer);
    return rv;
}

int cairn_admin_status(struct cairn_client *client, char **json)
{
    return get_text(client, "/v1/admin/status", json);
}

int cairn_me(struct cairn_client *client, char **json)
{
    return get_text(client, "/v1/me", json);
}

int cairn_stat(struct cairn_client *client, const char *path, struct cairn_entry *entry)
{
    char url[URL_BUF];
    int rv = build_url(client, "/v1/meta/", path, NULL, url);

    return rv != 0 ? rv : call_entry(client, "GET", url, NULL, entry);
}

/* Calls cb for each entry of answer[key]. */
static int each_entry(struct cairn_client *client, json_t *answer, cairn_entry_cb cb, void *data)
{
    json_t *entries = json_object_get(answer, "entries");
    struct cairn_entry entry;
    size_t i;
    json_t *item;
    int rv;

    if (!json_is_array(entries)) {
        return fail(client, CAIRN_EPROTO, "%s", "an answer without \"entries\"");
    }
    json_array_foreach(entries, i, item)
    {
        rv = entry_from_json(client, item, &entry);
        if (rv == 0) {
            rv = cb(data, &entry);
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int cairn_list(struct cairn_client *client, const char *path, cairn_entry_cb cb, void *data)
{
    char url[URL_BUF], query[CAIRN_NAME_SIZE * 3 + 64], after[CAIRN_NAME_SIZE * 3] = "";
    json_t *answer = NULL;
    const char *next;
    int rv;

    for (;;) {
        snprintf(query, sizeof(query), "limit=%d%s%s", LIST_PAGE, after[0] != '\0' ? "&after=" : "",
                 after);
        rv = build_url(client, "/v1/list/", path, query, url);
        if (rv == 0) {
            rv = call(client, "GET", url, NULL, &answer);
        }
        if (rv == 0) {
            rv = each_entry(client, answer, cb, data);
        }
        next = json_string_value(json_object_get(answer, "next"));
        if (rv == 0 && next != NULL && next[0] != '\0') {
            rv = cl_query_escape(next, after, sizeof(after));
            json_decref(answer);
            answer = NULL;
            if (rv == 0) {
                continue;
            }
        }
        json_decref(answer);
        return rv;
    }
}

int cairn_mkdir(struct cairn_client *client, const char *path, struct cairn_entry *entry)
{
    char url[URL_BUF];
    int rv = build_url(client, "/v1/folders/", path, NULL, url);

    return rv != 0 ? rv : call_entry(client, "POST", url, NULL, entry);
}

int cairn_move(struct cairn_client *client,
               const char *from,
               const char *to,
               struct cairn_entry *entry)
{
    char url[URL_BUF], from_norm[CAIRN_PATH_SIZE], to_norm[CAIRN_PATH_SIZE];
    json_t *body;
    int rv;

    if (cl_path_normalize(from, from_norm, sizeof(from_norm)) != 0) {
        return fail(client, CAIRN_EINVAL, "bad path: %s", from);
    }
    if (cl_path_normalize(to, to_norm, sizeof(to_norm)) != 0) {
        return fail(client, CAIRN_EINVAL, "bad path: %s", to);
    }
    /* The empty path adds nothing but ?root= for a shared item. */
    rv = build_url(client, "/v1/move", "", NULL, url);
    if (rv != 0) {
        return rv;
    }
    body = json_pack("{ss ss}", "from", from_norm, "to", to_norm);
    if (body == NULL) {
        return fail(client, CAIRN_EINVAL, "%s", "a path is not UTF-8");
    }
    rv = call_entry(client, "POST", url, body, entry);
    json_decref(body);
    return rv;
}

int cairn_remove(struct cairn_client *client, const char *path)
{
    char url[URL_BUF];
    int rv = build_url(client, "/v1/files/", path, NULL, url);

    return rv != 0 ? rv : call(client, "DELETE", url, NULL, NULL);
}

int cairn_trash_list(struct cairn_client *client, cairn_entry_cb cb, void *data)
{
    char url[URL_BUF], after[64] = "";
    json_t *answer = NULL;
    const char *next;
    int rv;

    /* Pages follow "next", an opaque cursor ("PARENT-INODE": no escaping). */
    for (;;) {
        snprintf(url, sizeof(url), "%s/v1/trash%s%s", client->endpoint,
                 after[0] != '\0' ? "?after=" : "", after);
        rv = call(client, "GET", url, NULL, &answer);
        if (rv == 0) {
            rv = each_entry(client, answer, cb, data);
        }
        next = json_string_value(json_object_get(answer, "next"));
        if (rv == 0 && next != NULL && next[0] != '\0') {
            if (strlen(next) >= sizeof(after) || strspn(next, "0123456789-") != strlen(next)) {
                rv = fail(client, CAIRN_EPROTO, "a bad trash cursor: %s", next);
            } else {
                snprintf(after, sizeof(after), "%s", next);
                json_decref(answer);
                answer = NULL;
                continue;
            }
        }
        json_decref(answer);
        return rv;
    }
}

/* An inode id is decimal: anything else would reach another route. */
static int check_id(struct cairn_client *client, const char *id)
{
    uint64_t value;

    return cl_parse_u64(id, &value) == 0 ? 0 : fail(client, CAIRN_EINVAL, "bad id: %s", id);
}

int cairn_trash_restore(struct cairn_client *client, const char *id, struct cairn_entry *entry)
{
    char url[URL_BUF];
    int rv = check_id(client, id);

    if (rv != 0) {
        return rv;
    }
    snprintf(url, sizeof(url), "%s/v1/trash/%s/restore", client->endpoint, id);
    return call_entry(client, "POST", url, NULL, entry);
}

int cairn_trash_purge(struct cairn_client *client, const char *id)
{
    char url[URL_BUF];

    if (id == NULL) {
        snprintf(url, sizeof(url), "%s/v1/trash", client->endpoint);
    } else if (check_id(client, id) != 0) {
        return CAIRN_EINVAL;
    } else {
        snprintf(url, sizeof(url), "%s/v1/trash/%s", client->endpoint, id);
    }
    return call(client, "DELETE", url, NULL, NULL);
}

int cairn_versions(struct cairn_client *client, const char *path, cairn_version_cb cb, void *data)
{
    char url[URL_BUF];
    json_t *answer = NULL;
    json_t *list, *item;
    size_t i;
    int rv = build_url(client, "/v1/versions/", path, NULL, url);

    if (rv == 0) {
        rv = call(client, "GET", url, NULL, &answer);
    }
    list = json_object_get(answer, "versions");
    if (rv == 0 && !json_is_array(list)) {
        rv = fail(client, CAIRN_EPROTO, "%s", "an answer without \"versions\"");
    }
    json_array_foreach(rv == 0 ? list : NULL, i, item)
    {
        struct cairn_version version = {
            .version = get_u64(item, "version"),
            .size = get_u64(item, "size"),
            .time_ms = get_u64(item, "time_ms"),
        };

        copy_str(item, "etag", version.etag, sizeof(version.etag));
        copy_str(item, "author", version.author, sizeof(version.author));
        rv = cb(data, &version);
        if (rv != 0) {
            break;
        }
    }
    json_decref(answer);
    return rv;
}

int cairn_version_restore(struct cairn_client *client,
                          const char *path,
                          uint64_t version,
                          uint64_t base,
                          struct cairn_entry *entry)
{
    char url[URL_BUF];
    json_t *body;
    int rv = build_url(client, "/v1/versions/", path, NULL, url);

    if (rv != 0) {
        return rv;
    }
    body = json_pack("{sI}", "restore", (json_int_t)version);
    if (base > 0) {
        json_object_set_new(body, "base", json_integer((json_int_t)base));
    }
    rv = call_entry(client, "POST", url, body, entry);
    json_decref(body);
    return rv;
}

int cairn_share(struct cairn_client *client, const char *path, const char *user, const char *role)
{
    char url[URL_BUF];
    json_t *body;
    int rv = build_url(client, "/v1/shares/", path, NULL, url);

    if (rv != 0) {
        return rv;
    }
    body = json_pack("{ss ss}", "user", user, "role", role);
    if (body == NULL) {
        return fail(client, CAIRN_EINVAL, "%s", "user or role is not UTF-8");
    }
    rv = call(client, "POST", url, body, NULL);
    json_decref(body);
    return rv;
}

int cairn_unshare(struct cairn_client *client, const char *path, const char *user)
{
    char url[URL_BUF], query[CAIRN_USER_SIZE * 3 + 8];
    char escaped[CAIRN_USER_SIZE * 3];
    int rv;

    if (cl_query_escape(user, escaped, sizeof(escaped)) != 0) {
        return fail(client, CAIRN_EINVAL, "user name too long: %s", user);
    }
    snprintf(query, sizeof(query), "user=%s", escaped);
    rv = build_url(client, "/v1/shares/", path, query, url);
    return rv != 0 ? rv : call(client, "DELETE", url, NULL, NULL);
}

int cairn_grants(struct cairn_client *client, const char *path, cairn_grant_cb cb, void *data)
{
    char url[URL_BUF];
    json_t *answer = NULL;
    json_t *list, *item;
    size_t i;
    int rv = build_url(client, "/v1/shares/", path, NULL, url);

    if (rv == 0) {
        rv = call(client, "GET", url, NULL, &answer);
    }
    list = json_object_get(answer, "grants");
    if (rv == 0 && !json_is_array(list)) {
        rv = fail(client, CAIRN_EPROTO, "%s", "an answer without \"grants\"");
    }
    json_array_foreach(rv == 0 ? list : NULL, i, item)
    {
        struct cairn_grant grant;

        copy_str(item, "user", grant.user, sizeof(grant.user));
        copy_str(item, "role", grant.role, sizeof(grant.role));
        rv = cb(data, &grant);
        if (rv != 0) {
            break;
        }
    }
    json_decref(answer);
    return rv;
}

int cairn_shared_list(struct cairn_client *client, cairn_shared_cb cb, void *data)
{
    char url[URL_BUF];
    json_t *answer = NULL;
    json_t *list, *item;
    size_t i;
    int rv;

    snprintf(url, sizeof(url), "%s/v1/shared", client->endpoint);
    rv = call(client, "GET", url, NULL, &answer);
    list = json_object_get(answer, "shares");
    if (rv == 0 && !json_is_array(list)) {
        rv = fail(client, CAIRN_EPROTO, "%s", "an answer without \"shares\"");
    }
    json_array_foreach(rv == 0 ? list : NULL, i, item)
    {
        struct cairn_shared shared;
        const char *kind = json_string_value(json_object_get(item, "kind"));

        copy_str(item, "root", shared.root, sizeof(shared.root));
        copy_str(item, "name", shared.name, sizeof(shared.name));
        copy_str(item, "owner", shared.owner, sizeof(shared.owner));
        copy_str(item, "role", shared.role, sizeof(shared.role));
        shared.folder = kind != NULL && strcmp(kind, "folder") == 0;
        rv = cb(data, &shared);
        if (rv != 0) {
            break;
        }
    }
    json_decref(answer);
    return rv;
}

int cairn_changes_latest(struct cairn_client *client, char *cursor)
{
    char url[URL_BUF];
    json_t *answer = NULL;
    int rv;

    snprintf(url, sizeof(url), "%s/v1/changes/latest", client->endpoint);
    rv = call(client, "GET", url, NULL, &answer);
    if (rv == 0) {
        copy_str(answer, "cursor", cursor, CAIRN_CURSOR_SIZE);
        if (cursor[0] == '\0') {
            rv = fail(client, CAIRN_EPROTO, "%s", "an answer without \"cursor\"");
        }
    }
    json_decref(answer);
    return rv;
}

static void event_from_json(json_t *item, struct cairn_event *event)
{
    copy_str(item, "kind", event->kind, sizeof(event->kind));
    copy_str(item, "id", event->id, sizeof(event->id));
    copy_str(item, "path", event->path, sizeof(event->path));
    copy_str(item, "name", event->name, sizeof(event->name));
    copy_str(item, "user", event->user, sizeof(event->user));
    event->version = get_u64(item, "version");
    event->time_ms = get_u64(item, "time_ms");
}

int cairn_changes(struct cairn_client *client,
                  char *cursor,
                  unsigned timeout_s,
                  cairn_event_cb cb,
                  void *data,
                  unsigned *backoff_s)
{
    char url[CAIRN_URL_SIZE + CAIRN_CURSOR_SIZE * 3 + CAIRN_PATH_SIZE * 3 + 64];
    char escaped[CAIRN_CURSOR_SIZE * 3], root[CAIRN_PATH_SIZE * 3] = "";
    struct cl_request req;
    struct cl_response resp;
    json_t *answer = NULL, *item;
    size_t i;
    int n, rv;

    if (cl_query_escape(cursor, escaped, sizeof(escaped)) != 0 ||
        cl_query_escape(client->root, root, sizeof(root)) != 0) {
        return fail(client, CAIRN_EINVAL, "bad cursor: %s", cursor);
    }
    n = snprintf(url, sizeof(url), "%s/v1/changes?cursor=%s&timeout=%u%s%s", client->endpoint,
                 escaped, timeout_s, root[0] != '\0' ? "&root=" : "", root);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        return fail(client, CAIRN_ETOOBIG, "%s", "changes URL too long");
    }
    cl_request_init(&req, "GET", url);
    req.quiet_s = timeout_s + 10;
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    if (rv == 0) {
        answer = json_loadb((const char *)resp.body.base, resp.body.len, 0, NULL);
        if (!json_is_array(json_object_get(answer, "events"))) {
            rv = fail(client, CAIRN_EPROTO, "%s", "a changes answer without \"events\"");
        }
    }
    cl_response_close(&resp);
    json_array_foreach(rv == 0 ? json_object_get(answer, "events") : NULL, i, item)
    {
        struct cairn_event event;

        event_from_json(item, &event);
        rv = cb(data, &event);
        if (rv != 0) {
            break;
        }
    }
    if (rv == 0) {
        char next[CAIRN_CURSOR_SIZE];

        copy_str(answer, "cursor", next, sizeof(next));
        if (next[0] != '\0') {
            memcpy(cursor, next, sizeof(next)); /* else the same cursor again */
        }
        if (backoff_s != NULL) {
            *backoff_s = (unsigned)get_u64(answer, "backoff");
        }
    }
    json_decref(answer);
    return rv;
}
