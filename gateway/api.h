/*
 * The Drive API's loop-free parts (docs/api.md), used by cairn-gateway and
 * tested directly (tests/unit/gateway/test_api.c): the [gateway] config
 * section, request paths, Range, ETags, tus headers, and the JSON shapes of
 * entries and change events. Nothing here touches the loop or the network.
 *
 * Memory: the functions fill caller-owned buffers, or return jansson objects
 * that the caller owns (json_decref()).
 */
#ifndef GW_API_H
#define GW_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cn.h"
#include "command.pb-c.h"

#define GW_NAME_SIZE_MAX     255u          /* docs/metadata.md */
#define GW_PATH_SIZE_MAX     4096u         /* a decoded path, NUL excluded */
#define GW_PATH_DEPTH_MAX    64u           /* segments in one path */
#define GW_NODES_MAX         64u           /* seed addresses in the config */
#define GW_ADDRESS_SIZE      64u           /* "ip:port" */
#define GW_FILE_SIZE_DEFAULT (10ull << 30) /* docs/api.md: 10 GiB */
#define GW_ETAG_SIZE         48u           /* "\"<16 hex>-<20 digits>\"" and NUL */
#define GW_TUS_META_MAX      (4u << 10)    /* Upload-Metadata header, bytes */
static_assert(GW_NAME_SIZE_MAX < GW_PATH_SIZE_MAX, "a name fits in a path");

/* ---- Config: flags and the [gateway] section (docs/gateway.md) ---- */

struct gw_app_config {
    char listen[GW_ADDRESS_SIZE]; /* "127.0.0.1:8080" */
    char nodes[GW_NODES_MAX][GW_ADDRESS_SIZE];
    unsigned node_count;
    char secret_path[256];
    char key_path[256];
    uint64_t file_size_max;        /* Largest file: 10 GiB */
    uint64_t chunks_in_flight_max; /* Chunk puts in flight per upload: 4 */
    uint64_t map_refresh_ms;       /* Cluster map refresh: 5 s */
    uint64_t meta_timeout_ms;      /* One metadata call: 10 s */
    uint64_t block_timeout_ms;     /* One chunk put or get: 30 s */
    uint64_t token_cache_ms;       /* How long a checked token is trusted: 2 s */
    uint64_t token_ttl_ms;         /* Lifetime of a new token: 30 days */
    uint64_t upload_ttl_ms;        /* Lifetime of a resumable upload: 24 h */
    uint64_t conn_count_max;       /* HTTP connections: 1024 */
    uint64_t head_size_max;        /* HTTP request head: 32 KiB */
    uint64_t uploads_max;          /* Uploads (PUT and tus PATCH) at once: 64, then 503 */
    uint64_t downloads_max;        /* Downloads at once: 256, then 503 */
    enum cn_log_level log_level;
};

/* The defaults (docs/gateway.md). */
void gw_app_config_init(struct gw_app_config *config);
/* Adds one "ip:port" to nodes. CAIRN_EINVAL (bad address), CAIRN_ETOOBIG. */
int gw_app_config_add_node(struct gw_app_config *config, const char *address);
/* Applies the [gateway] section of file over the defaults, leaving the
 * settings named in `flags` (bits of enum gw_app_flag) alone. CAIRN_EINVAL
 * with errmsg naming the key. Every key is read, so typos are caught by
 * cn_config_check_unused(). */
enum gw_app_flag {
    GW_FLAG_LISTEN = 1u << 0,
    GW_FLAG_NODES = 1u << 1,
    GW_FLAG_SECRET = 1u << 2,
    GW_FLAG_KEYS = 1u << 3,
    GW_FLAG_FILE_SIZE_MAX = 1u << 4,
    GW_FLAG_LOG_LEVEL = 1u << 5,
};
int gw_app_config_load(struct gw_app_config *config,
                       struct cn_config *file,
                       unsigned flags,
                       char *errmsg);
/* Splits "IP:PORT". CAIRN_EINVAL. */
int gw_parse_address(const char *address, char *host, size_t host_size, uint16_t *port);

/* ---- Paths ---- */

/*
 * Decodes the raw path after a route's prefix ("Photos/a%20b.jpg", with or
 * without a leading '/') into out as "Photos/a b.jpg": segments joined by
 * '/', no leading or trailing '/', "" for the root. Empty segments (a//b) and
 * a trailing '/' are dropped. CAIRN_EINVAL for a bad escape, an encoded NUL or
 * '/', ".", "..", a name over GW_NAME_SIZE_MAX or too many segments;
 * CAIRN_ETOOBIG over out_size.
 */
int gw_path_decode(const char *raw, char *out, size_t out_size);
/* Splits a decoded path into its parent ("" for the root's children) and
 * its last name. CAIRN_EINVAL for the root itself. Both point into buf, a
 * copy the caller provides (GW_PATH_SIZE_MAX + 1 bytes). */
int gw_path_split(const char *path, char *buf, const char **parent, const char **name);
/* True for a valid single name (docs/metadata.md). */
bool gw_name_valid(const char *name);

/* ---- Range (RFC 9110 §14) ---- */

enum gw_range_kind {
    GW_RANGE_NONE = 0,      /* no header, or one we ignore (multiple ranges): whole body */
    GW_RANGE_OK = 1,        /* [first, last] within the body */
    GW_RANGE_UNSATISFIABLE, /* 416 */
};

/* Parses a Range header (NULL: none) against a body of size bytes. A
 * malformed or multi-range header is ignored (RFC 9110 lets a server do so). */
enum gw_range_kind gw_range_parse(const char *header,
                                  uint64_t size,
                                  uint64_t *first,
                                  uint64_t *last);

/* The chunks [*begin, *end) of a version whose bytes cover [first, last]:
 * chunk i holds [offset_i, offset_i + size_i). CAIRN_EINVAL when the list does
 * not tile the range. */
int gw_chunks_cover(const Cairn__Cmd__ChunkRef *const *chunks,
                    size_t count,
                    uint64_t first,
                    uint64_t last,
                    size_t *begin,
                    size_t *end);

/* ---- ETags ---- */

/* "\"<inode hex>-<version>\"" into out (GW_ETAG_SIZE). */
void gw_etag_format(uint64_t inode, uint64_t version, char *out);
/* True when an If-None-Match / If-Match value lists etag, or is "*". */
bool gw_etag_match(const char *header, const char *etag);
/* The version in an etag of inode; 0 when it is not one of inode's. */
uint64_t gw_etag_version(const char *header, uint64_t inode);

/* ---- tus 1.0 ---- */

/* Parses a decimal header value into *value (at most 2^63 - 1). CAIRN_EINVAL. */
int gw_parse_u64(const char *text, uint64_t *value);
/* Parses a decimal id (1..2^64 - 1: inode and namespace ids use every bit). CAIRN_EINVAL. */
int gw_parse_id(const char *text, uint64_t *value);
/* Finds key in an Upload-Metadata header ("path cGhvdG8=,base Mw==") and
 * base64-decodes its value into out (NUL-terminated). CAIRN_ENOENT when absent,
 * CAIRN_EINVAL for bad base64 or a NUL in the value, CAIRN_ETOOBIG. A key
 * without a value decodes to "". */
int gw_tus_metadata_get(const char *header, const char *key, char *out, size_t out_size);

/* Upload ids: 16 bytes <-> 32 lowercase hex. CAIRN_EINVAL for a bad id. */
void gw_upload_id_format(const uint8_t id[16], char out[33]);
int gw_upload_id_parse(const char *text, uint8_t id[16]);

/* ---- JSON shapes ---- */

/* An entry (docs/api.md, "Addressing"): name, path, id, kind, size,
 * version, etag, modified_ms, trashed. version may be NULL (a folder, or a
 * file without a version yet). */
json_t *gw_entry_json(const char *path,
                      const Cairn__Cmd__Inode *inode,
                      const Cairn__Cmd__Version *version);
/* A change event: kind, id, name, parent, version, time_ms, user, and for a
 * move old_parent and old_name. NULL for an unknown kind. */
json_t *gw_event_json(const Cairn__Cmd__Event *event);
/* "viewer", "editor", "owner"; NULL for ROLE_NONE or unknown. */
const char *gw_role_name(Cairn__Cmd__Role role);
/* The role for a name, ROLE_NONE if unknown. */
Cairn__Cmd__Role gw_role_parse(const char *name);

#endif /* GW_API_H */
