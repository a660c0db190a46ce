/*
 * The Drive API's loop-free parts: config, paths, Range, ETags, tus headers
 * and JSON shapes (api.h). Every input here is a client's or an operator's,
 * so nothing is asserted about it: it is checked and refused.
 */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gw_http.h"

/* ---- Config ---- */

void gw_app_config_init(struct gw_app_config *config)
{
    memset(config, 0, sizeof(*config));
    snprintf(config->listen, sizeof(config->listen), "127.0.0.1:8080");
    config->file_size_max = GW_FILE_SIZE_DEFAULT;
    config->chunks_in_flight_max = 4;
    config->map_refresh_ms = 5000;
    config->meta_timeout_ms = 10000;
    config->block_timeout_ms = 30000;
    config->token_cache_ms = 2000;
    config->token_ttl_ms = 30ull * 24 * 3600 * 1000;
    config->upload_ttl_ms = 24ull * 3600 * 1000;
    config->conn_count_max = 1024;
    config->head_size_max = 32u << 10;
    config->uploads_max = 64;
    config->downloads_max = 256;
    config->log_level = CN_INFO;
}

int gw_parse_address(const char *address, char *host, size_t host_size, uint16_t *port)
{
    const char *colon = strrchr(address, ':');
    char *end;
    unsigned long value;

    if (colon == NULL || colon == address || (size_t)(colon - address) >= host_size) {
        return CAIRN_EINVAL;
    }
    errno = 0;
    value = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || value > 65535) {
        return CAIRN_EINVAL;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    *port = (uint16_t)value;
    return 0;
}

int gw_app_config_add_node(struct gw_app_config *config, const char *address)
{
    char host[GW_ADDRESS_SIZE];
    uint16_t port;

    if (strlen(address) >= GW_ADDRESS_SIZE ||
        gw_parse_address(address, host, sizeof(host), &port) != 0 || port == 0) {
        return CAIRN_EINVAL;
    }
    if (config->node_count == GW_NODES_MAX) {
        return CAIRN_ETOOBIG;
    }
    snprintf(config->nodes[config->node_count++], GW_ADDRESS_SIZE, "%s", address);
    return 0;
}

static int get_size(struct cn_config *file, const char *key, uint64_t *value, char *errmsg)
{
    const char *text = cn_config_get(file, "gateway", key);

    if (text != NULL && cn_parse_size(text, value) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: gateway.%s: want a size (10GiB), not %s",
                          file->path, key, text);
    }
    return 0;
}

static int get_duration(struct cn_config *file, const char *key, uint64_t *value, char *errmsg)
{
    const char *text = cn_config_get(file, "gateway", key);

    if (text != NULL && (cn_parse_duration_ms(text, value) != 0 || *value == 0)) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL,
                          "%s: gateway.%s: want a duration above 0 (5s), not %s", file->path, key,
                          text);
    }
    return 0;
}

static int get_string(
    struct cn_config *file, const char *key, bool keep, char *out, size_t out_size, char *errmsg)
{
    const char *text = cn_config_get(file, "gateway", key);

    if (text == NULL || keep) {
        return 0;
    }
    if (strlen(text) >= out_size) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: gateway.%s: too long", file->path, key);
    }
    snprintf(out, out_size, "%s", text);
    return 0;
}

static int get_nodes(struct gw_app_config *config, struct cn_config *file, bool keep, char *errmsg)
{
    const char *text = cn_config_get(file, "gateway", "nodes");
    char *copy, *save = NULL;
    int rv = 0;

    if (text == NULL || keep) {
        return 0;
    }
    copy = cn_xstrdup(text);
    config->node_count = 0;
    for (char *word = strtok_r(copy, " ,", &save); word != NULL && rv == 0;
         word = strtok_r(NULL, " ,", &save)) {
        if (gw_app_config_add_node(config, word) != 0) {
            rv = cn_errmsgf(errmsg, CAIRN_EINVAL,
                            "%s: gateway.nodes: bad address %s (want IP:PORT)", file->path, word);
        }
    }
    free(copy);
    return rv;
}

int gw_app_config_load(struct gw_app_config *config,
                       struct cn_config *file,
                       unsigned flags,
                       char *errmsg)
{
    uint64_t file_size_max = config->file_size_max;
    const char *level;
    int rv;

    rv = get_string(file, "listen", flags & GW_FLAG_LISTEN, config->listen, sizeof(config->listen),
                    errmsg);
    rv = rv != 0 ? rv : get_nodes(config, file, flags & GW_FLAG_NODES, errmsg);
    rv = rv != 0 ? rv
                 : get_string(file, "secret", flags & GW_FLAG_SECRET, config->secret_path,
                              sizeof(config->secret_path), errmsg);
    rv = rv != 0 ? rv
                 : get_string(file, "keys", flags & GW_FLAG_KEYS, config->key_path,
                              sizeof(config->key_path), errmsg);
    rv = rv != 0 ? rv : get_size(file, "max_file_size", &file_size_max, errmsg);
    rv = rv != 0 ? rv : get_size(file, "max_head_size", &config->head_size_max, errmsg);
    rv = rv != 0 ? rv : get_duration(file, "map_refresh", &config->map_refresh_ms, errmsg);
    rv = rv != 0 ? rv : get_duration(file, "meta_timeout", &config->meta_timeout_ms, errmsg);
    rv = rv != 0 ? rv : get_duration(file, "block_timeout", &config->block_timeout_ms, errmsg);
    rv = rv != 0 ? rv : get_duration(file, "token_cache", &config->token_cache_ms, errmsg);
    rv = rv != 0 ? rv : get_duration(file, "token_ttl", &config->token_ttl_ms, errmsg);
    rv = rv != 0 ? rv : get_duration(file, "upload_ttl", &config->upload_ttl_ms, errmsg);
    rv = rv != 0 ? rv
                 : cn_config_get_u64(file, "gateway", "max_connections", &config->conn_count_max,
                                     errmsg);
    rv = rv != 0 ? rv
                 : cn_config_get_u64(file, "gateway", "chunks_in_flight",
                                     &config->chunks_in_flight_max, errmsg);
    rv = rv != 0 ? rv
                 : cn_config_get_u64(file, "gateway", "max_uploads", &config->uploads_max, errmsg);
    rv = rv != 0
             ? rv
             : cn_config_get_u64(file, "gateway", "max_downloads", &config->downloads_max, errmsg);
    if (rv != 0) {
        return rv;
    }
    level = cn_config_get(file, "gateway", "log_level");
    if (level != NULL && !(flags & GW_FLAG_LOG_LEVEL) &&
        cn_log_level_parse(level, &config->log_level) != 0) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL,
                          "%s: gateway.log_level: want debug, info, warn or error", file->path);
    }
    if (!(flags & GW_FLAG_FILE_SIZE_MAX)) {
        config->file_size_max = file_size_max;
    }
    if (config->file_size_max > GW_FILE_SIZE_DEFAULT) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: gateway.max_file_size: at most 10GiB",
                          file->path);
    }
    if (config->chunks_in_flight_max == 0 || config->chunks_in_flight_max > 64) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: gateway.chunks_in_flight: 1..64", file->path);
    }
    if (config->uploads_max == 0 || config->uploads_max > 4096 || config->downloads_max == 0 ||
        config->downloads_max > 65536) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL,
                          "%s: gateway.max_uploads 1..4096, gateway.max_downloads 1..65536",
                          file->path);
    }
    if (config->conn_count_max == 0 || config->conn_count_max > 65536) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: gateway.max_connections: 1..65536",
                          file->path);
    }
    if (config->head_size_max < 1024 || config->head_size_max > (1u << 20)) {
        return cn_errmsgf(errmsg, CAIRN_EINVAL, "%s: gateway.max_head_size: 1KiB..1MiB",
                          file->path);
    }
    return 0;
}

/* ---- Paths ---- */

bool gw_name_valid(const char *name)
{
    size_t len = strlen(name);

    return len > 0 && len <= GW_NAME_SIZE_MAX && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0 && strchr(name, '/') == NULL;
}

int gw_path_decode(const char *raw, char *out, size_t out_size)
{
    char name[GW_NAME_SIZE_MAX + 1];
    size_t used = 0;
    unsigned depth = 0;
    int rv;

    CN_ASSERT(out_size > 0);
    out[0] = '\0';
    while (*raw != '\0') {
        const char *slash = strchr(raw, '/');
        size_t len = slash != NULL ? (size_t)(slash - raw) : strlen(raw);

        if (len > 0) {
            rv = gw_url_decode(raw, len, false, name, sizeof(name));
            if (rv != 0) {
                return CAIRN_EINVAL; /* bad escape, NUL, or a name over 255 bytes */
            }
            if (!gw_name_valid(name) || ++depth > GW_PATH_DEPTH_MAX) {
                return CAIRN_EINVAL;
            }
            len = strlen(name);
            if (used + (used > 0) + len + 1 > out_size || used + len >= GW_PATH_SIZE_MAX) {
                return CAIRN_ETOOBIG;
            }
            if (used > 0) {
                out[used++] = '/';
            }
            memcpy(out + used, name, len + 1);
            used += len;
        }
        raw += slash != NULL ? (size_t)(slash - raw) + 1 : strlen(raw);
    }
    return 0;
}

int gw_path_split(const char *path, char *buf, const char **parent, const char **name)
{
    char *slash;

    if (path[0] == '\0' || strlen(path) > GW_PATH_SIZE_MAX) {
        return CAIRN_EINVAL;
    }
    strcpy(buf, path);
    slash = strrchr(buf, '/');
    if (slash == NULL) {
        *parent = "";
        *name = buf;
        return 0;
    }
    *slash = '\0';
    *parent = buf;
    *name = slash + 1;
    return 0;
}

/* ---- Range ---- */

/* Parses digits at *text into *value; false if none or overflow. */
static bool parse_digits(const char **text, uint64_t *value)
{
    const char *p = *text;
    uint64_t v = 0;

    if (*p < '0' || *p > '9') {
        return false;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t digit = (uint64_t)(*p - '0');

        if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && digit > UINT64_MAX % 10)) {
            return false;
        }
        v = v * 10 + digit;
    }
    *text = p;
    *value = v;
    return true;
}

enum gw_range_kind gw_range_parse(const char *header,
                                  uint64_t size,
                                  uint64_t *first,
                                  uint64_t *last)
{
    const char *p = header;
    uint64_t a, b;

    if (header == NULL || strncmp(p, "bytes=", 6) != 0) {
        return GW_RANGE_NONE;
    }
    p += 6;
    while (*p == ' ') {
        p++;
    }
    if (strchr(p, ',') != NULL) {
        return GW_RANGE_NONE; /* several ranges: we send the whole body */
    }
    if (*p == '-') { /* suffix: the last b bytes */
        p++;
        if (!parse_digits(&p, &b) || *p != '\0') {
            return GW_RANGE_NONE;
        }
        if (b == 0 || size == 0) {
            return GW_RANGE_UNSATISFIABLE;
        }
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return GW_RANGE_OK;
    }
    if (!parse_digits(&p, &a) || *p != '-') {
        return GW_RANGE_NONE;
    }
    p++;
    if (*p == '\0') {
        b = UINT64_MAX;
    } else if (!parse_digits(&p, &b) || *p != '\0' || b < a) {
        return GW_RANGE_NONE;
    }
    if (a >= size) {
        return GW_RANGE_UNSATISFIABLE;
    }
    *first = a;
    *last = b >= size ? size - 1 : b;
    return GW_RANGE_OK;
}

int gw_chunks_cover(const Cairn__Cmd__ChunkRef *const *chunks,
                    size_t count,
                    uint64_t first,
                    uint64_t last,
                    size_t *begin,
                    size_t *end)
{
    size_t i = 0;

    if (first > last) {
        return CAIRN_EINVAL;
    }
    while (i < count && chunks[i]->offset + chunks[i]->size <= first) {
        i++;
    }
    if (i == count || chunks[i]->offset > first) {
        return CAIRN_EINVAL;
    }
    *begin = i;
    while (i < count && chunks[i]->offset + chunks[i]->size <= last) {
        if (i + 1 < count && chunks[i + 1]->offset != chunks[i]->offset + chunks[i]->size) {
            return CAIRN_EINVAL;
        }
        i++;
    }
    if (i == count) {
        return CAIRN_EINVAL;
    }
    *end = i + 1;
    return 0;
}

/* ---- ETags ---- */

void gw_etag_format(uint64_t inode, uint64_t version, char *out)
{
    snprintf(out, GW_ETAG_SIZE, "\"%016" PRIx64 "-%" PRIu64 "\"", inode, version);
}

bool gw_etag_match(const char *header, const char *etag)
{
    size_t len = strlen(etag);
    const char *p = header;

    while (*p != '\0') {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (*p == '*') {
            return true;
        }
        if (strncmp(p, "W/", 2) == 0) {
            p += 2;
        }
        if (strncmp(p, etag, len) == 0 && (p[len] == '\0' || p[len] == ',' || p[len] == ' ')) {
            return true;
        }
        while (*p != '\0' && *p != ',') {
            p++;
        }
    }
    return false;
}

uint64_t gw_etag_version(const char *header, uint64_t inode)
{
    char prefix[32];
    const char *p;
    uint64_t version;

    snprintf(prefix, sizeof(prefix), "\"%016" PRIx64 "-", inode);
    p = strstr(header, prefix);
    if (p == NULL) {
        return 0;
    }
    p += strlen(prefix);
    if (!parse_digits(&p, &version) || *p != '"') {
        return 0;
    }
    return version;
}

/* ---- tus ---- */

int gw_parse_u64(const char *text, uint64_t *value)
{
    const char *p = text;

    if (text == NULL || !parse_digits(&p, value) || *p != '\0' || *value > INT64_MAX ||
        (text[0] == '0' && text[1] != '\0')) {
        return CAIRN_EINVAL;
    }
    return 0;
}

int gw_parse_id(const char *text, uint64_t *value)
{
    const char *p = text;

    if (text == NULL || !parse_digits(&p, value) || *p != '\0' || *value == 0 || text[0] == '0') {
        return CAIRN_EINVAL;
    }
    return 0;
}

int gw_tus_metadata_get(const char *header, const char *key, char *out, size_t out_size)
{
    size_t key_len = strlen(key);
    const char *p = header;

    if (strlen(header) > GW_TUS_META_MAX) {
        return CAIRN_ETOOBIG;
    }
    while (*p != '\0') {
        const char *pair_end, *value;
        size_t bin_len, value_len;

        while (*p == ' ' || *p == ',') {
            p++;
        }
        pair_end = strchr(p, ',');
        if (pair_end == NULL) {
            pair_end = p + strlen(p);
        }
        if (strncmp(p, key, key_len) == 0 && (p + key_len == pair_end || p[key_len] == ' ')) {
            value = p + key_len;
            while (value < pair_end && *value == ' ') {
                value++;
            }
            value_len = (size_t)(pair_end - value);
            while (value_len > 0 && value[value_len - 1] == ' ') {
                value_len--;
            }
            if (value_len == 0) {
                out[0] = '\0';
                return 0;
            }
            if (sodium_base642bin((unsigned char *)out, out_size - 1, value, value_len, NULL,
                                  &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
                return value_len / 4 * 3 >= out_size ? CAIRN_ETOOBIG : CAIRN_EINVAL;
            }
            if (memchr(out, '\0', bin_len) != NULL) {
                return CAIRN_EINVAL;
            }
            out[bin_len] = '\0';
            return 0;
        }
        p = pair_end;
    }
    return CAIRN_ENOENT;
}

void gw_upload_id_format(const uint8_t id[16], char out[33])
{
    cn_hex_encode(id, 16, out);
}

int gw_upload_id_parse(const char *text, uint8_t id[16])
{
    if (strlen(text) != 32) {
        return CAIRN_EINVAL;
    }
    for (unsigned i = 0; i < 16; i++) {
        int hi = cn_hex_value(text[2 * i]), lo = cn_hex_value(text[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return CAIRN_EINVAL;
        }
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ---- JSON ---- */

const char *gw_role_name(Cairn__Cmd__Role role)
{
    switch (role) {
    case CAIRN__CMD__ROLE__ROLE_VIEWER:
        return "viewer";
    case CAIRN__CMD__ROLE__ROLE_EDITOR:
        return "editor";
    case CAIRN__CMD__ROLE__ROLE_OWNER:
        return "owner";
    default:
        return NULL;
    }
}

Cairn__Cmd__Role gw_role_parse(const char *name)
{
    if (name == NULL) {
        return CAIRN__CMD__ROLE__ROLE_NONE;
    }
    if (strcmp(name, "viewer") == 0) {
        return CAIRN__CMD__ROLE__ROLE_VIEWER;
    }
    if (strcmp(name, "editor") == 0) {
        return CAIRN__CMD__ROLE__ROLE_EDITOR;
    }
    return CAIRN__CMD__ROLE__ROLE_NONE;
}

static char *id_string(uint64_t id, char out[24])
{
    snprintf(out, 24, "%" PRIu64, id);
    return out;
}

json_t *gw_entry_json(const char *path,
                      const Cairn__Cmd__Inode *inode,
                      const Cairn__Cmd__Version *version)
{
    bool dir = inode->kind == CAIRN__CMD__INODE_KIND__INODE_DIR;
    char etag[GW_ETAG_SIZE], id[24];

    gw_etag_format(inode->id, inode->version, etag);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:b}", "name",
                     inode->name != NULL ? inode->name : "", "path", path, "id",
                     id_string(inode->id, id), "kind", dir ? "folder" : "file", "size",
                     (json_int_t)(version != NULL ? version->size : 0), "version",
                     (json_int_t)inode->version, "etag", etag, "modified_ms",
                     (json_int_t)inode->modified_ms, "trashed", (int)inode->trashed);
}

static const char *event_kind_name(Cairn__Cmd__EventKind kind)
{
    switch (kind) {
    case CAIRN__CMD__EVENT_KIND__EVENT_CREATED:
        return "created";
    case CAIRN__CMD__EVENT_KIND__EVENT_MODIFIED:
        return "modified";
    case CAIRN__CMD__EVENT_KIND__EVENT_DELETED:
        return "deleted";
    case CAIRN__CMD__EVENT_KIND__EVENT_MOVED:
        return "moved";
    case CAIRN__CMD__EVENT_KIND__EVENT_SHARED:
        return "shared";
    case CAIRN__CMD__EVENT_KIND__EVENT_UNSHARED:
        return "unshared";
    case CAIRN__CMD__EVENT_KIND__EVENT_PURGED:
        return "purged";
    default:
        return NULL;
    }
}

json_t *gw_event_json(const Cairn__Cmd__Event *event)
{
    const char *kind = event_kind_name(event->kind);
    char id[24], parent[24], user[24];
    json_t *json;

    if (kind == NULL) {
        return NULL;
    }
    json = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:I, s:s}", "kind", kind, "seq",
                     (json_int_t)event->seq, "id", id_string(event->inode, id), "name",
                     event->name != NULL ? event->name : "", "parent",
                     id_string(event->parent, parent), "version", (json_int_t)event->version,
                     "time_ms", (json_int_t)event->time_ms, "user", id_string(event->user, user));
    if (json == NULL) {
        return NULL;
    }
    if (event->kind == CAIRN__CMD__EVENT_KIND__EVENT_MOVED) {
        json_object_set_new(json, "old_parent", json_string(id_string(event->old_parent, parent)));
        json_object_set_new(json, "old_name",
                            json_string(event->old_name != NULL ? event->old_name : ""));
    }
    if (gw_role_name(event->role) != NULL) {
        json_object_set_new(json, "role", json_string(gw_role_name(event->role)));
    }
    return json;
}
