/*
 * libcairn's internals, shared by its files, the cairn CLI and the unit tests
 * (tests/unit/client/): the pure parts (path encoding, error mapping, exit
 * codes, Content-Range, tus offsets, progress bars, the CLI's arguments), the
 * config and state files, and the HTTP core on libcurl.
 *
 * Nothing here is public: the SDK's face is include/cairn.h.
 */
#ifndef CL_INT_H
#define CL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn.h"
#include "cn.h"

/* ---- util.c: paths, errors, parsing, rendering ---- */

/* Normalizes a drive path ("/a//b/" -> "a/b", "" or "/" -> ""). CAIRN_EINVAL
 * for ".", "..", a name over 255 bytes or a control byte NUL; CAIRN_ETOOBIG
 * past out_size. */
int cl_path_normalize(const char *path, char *out, size_t out_size);
/* Normalizes, then percent-encodes each segment ("a b/c" -> "a%20b/c"); the
 * '/' between segments stay. Same errors. */
int cl_path_encode(const char *path, char *out, size_t out_size);
/* Percent-encodes every byte outside [A-Za-z0-9-._~] (for query values). CAIRN_ETOOBIG. */
int cl_query_escape(const char *text, char *out, size_t out_size);
/* The last segment of a path ("a/b.txt" -> "b.txt"; "" for the root). */
const char *cl_path_basename(const char *path);
/* Standard base64 with padding. CAIRN_ETOOBIG past out_size (NUL included). */
int cl_base64_encode(const void *data, size_t len, char *out, size_t out_size);

/* The CAIRN_E* code for an HTTP status (0 for 1xx-3xx). */
int cl_err_from_status(int status);
/* The code for an error answer: its JSON "code" when that names a CAIRN_E*
 * code ("CAIRN_EEXIST"), else the status's. Copies the JSON "message" (or, for
 * a body that is not the error shape, a line naming the status) into msg. */
int cl_error_parse(const char *body, size_t len, int status, char *msg, size_t msg_size);
/* The CLI's exit code for rv (docs/cli.md). */
enum cl_exit {
    CL_EXIT_OK = 0,
    CL_EXIT_ERROR = 1,
    CL_EXIT_USAGE = 2,
    CL_EXIT_AUTH = 3,
    CL_EXIT_NOT_FOUND = 4,
    CL_EXIT_CONFLICT = 5,
    CL_EXIT_UNAVAILABLE = 6,
};
int cl_exit_code(int rv);

/* A decimal u64 with nothing after it. CAIRN_EINVAL. */
int cl_parse_u64(const char *text, uint64_t *value);
/* "bytes FIRST-LAST/SIZE" (SIZE may be "*": *size = 0). CAIRN_EINVAL. */
int cl_content_range_parse(const char *header, uint64_t *first, uint64_t *last, uint64_t *size);
/* If line is "Name: value\r\n" for name (any case), copies the trimmed value. */
bool cl_header_match(
    const char *line, size_t len, const char *name, char *value, size_t value_size);

/* The next tus PATCH: given the server's offset for an upload of size bytes,
 * *len bytes starting at offset (at most chunk_max); *len = 0 when all bytes
 * are there. CAIRN_EPROTO when the server claims more bytes than the file has. */
int cl_tus_next(uint64_t offset, uint64_t size, uint64_t chunk_max, uint64_t *len);

/* "0 B", "1023 B", "1.0 KiB", "12.3 MiB", "2.00 GiB" */
void cl_format_size(uint64_t bytes, char *out, size_t out_size);
/* One progress line, at most width columns:
 * "label  [=====>      ]  45%  12.3 MiB/27.0 MiB  3.1 MiB/s"; with total 0
 * (unknown) the bar and percent are left out. */
void cl_progress_render(char *out,
                        size_t out_size,
                        unsigned width,
                        const char *label,
                        uint64_t done,
                        uint64_t total,
                        uint64_t elapsed_ms);
/* "2026-11-24 13:17:56" (UTC) for a wall time in ms. */
void cl_format_time(uint64_t time_ms, char *out, size_t out_size);

/* ---- config.c: the login file and the resume records ---- */

struct cl_config {
    char endpoint[CAIRN_URL_SIZE];
    char token[CAIRN_TOKEN_SIZE];
    char user[CAIRN_USER_SIZE];
};

/* $XDG_CONFIG_HOME/cairn (~/.config/cairn when unset or not absolute). CAIRN_EINVAL without HOME.
 */
int cl_config_dir(char *out, size_t out_size);
/* $XDG_STATE_HOME/cairn (~/.local/state/cairn when unset or not absolute). */
int cl_state_dir(char *out, size_t out_size);
/* Reads DIR/config. CAIRN_ENOENT when absent; CAIRN_EINVAL with errmsg for a
 * bad file; CAIRN_EPERM when it is readable by others (it holds a token). */
int cl_config_read(const char *dir, struct cl_config *config, char *errmsg);
/* Writes DIR/config atomically (temp file, fsync, rename), mode 0600, making
 * DIR (0700) as needed. Empty fields are left out. */
int cl_config_write(const char *dir, const struct cl_config *config, char *errmsg);

/* A record key: hex SHA-256 of the NUL-separated parts (65 bytes with NUL). */
void cl_record_key(const char *const *parts, size_t part_count, char out[65]);
/* DIR/KIND/KEY holds one line of text (an upload URL, an ETag). */
int cl_record_read(const char *dir, const char *kind, const char *key, char *out, size_t out_size);
int cl_record_write(const char *dir, const char *kind, const char *key, const char *text);
void cl_record_remove(const char *dir, const char *kind, const char *key);
/* Removes DIR/KIND records older than max_age_s (an upload the server has
 * long expired, a part file deleted by hand); returns how many. Files whose
 * names are not record keys are left alone. */
unsigned cl_record_prune(const char *dir, const char *kind, uint64_t max_age_s);
/* mkdir -p with mode for the missing parts. */
int cl_mkdirs(const char *path, mode_t mode);

/* ---- args.c: the command line ---- */

enum cl_cmd {
    CL_CMD_NONE = 0,
    CL_CMD_HELP,
    CL_CMD_VERSION,
    CL_CMD_LOGIN,
    CL_CMD_LOGOUT,
    CL_CMD_LS,
    CL_CMD_STAT,
    CL_CMD_PUT,
    CL_CMD_GET,
    CL_CMD_MKDIR,
    CL_CMD_MV,
    CL_CMD_RM,
    CL_CMD_TRASH,
    CL_CMD_RESTORE,
    CL_CMD_VERSIONS,
    CL_CMD_SHARE,
    CL_CMD_UNSHARE,
    CL_CMD_SHARED,
    CL_CMD_WATCH,
    CL_CMD_ADMIN_STATUS,
    CL_CMD_ADMIN_USER_ADD,
    CL_CMD_COUNT,
};

#define CL_POS_MAX 4

struct cl_args {
    enum cl_cmd cmd;
    enum cl_cmd help_for; /* `cairn help put`, `cairn put --help` */
    const char *pos[CL_POS_MAX];
    unsigned pos_count;
    /* Global */
    const char *endpoint;
    const char *token;
    const char *root;
    bool json;
    bool quiet;
    int progress; /* -1: only on a terminal (default), 0: --no-progress, 1: --progress */
    /* Per command */
    const char *user;
    const char *device;
    const char *role;
    const char *cursor;
    const char *if_match;
    bool password_stdin;
    bool parents;
    bool admin;
    bool has_version;
    uint64_t version;
    bool has_restore;
    uint64_t restore;
    uint64_t base;
    uint64_t quota_bytes;
    uint64_t timeout_s;  /* watch: one poll's timeout (30) */
    uint64_t count;      /* watch: stop after this many events (0: never) */
    uint64_t chunk_size; /* put: bytes per tus PATCH (8 MiB) */
    uint64_t tus_min;    /* put: files from this size go through tus (8 MiB) */
};

/* Parses argv (argv[0] is the program). CAIRN_EINVAL with errmsg for a usage
 * error. Options may come before or after the command. */
int cl_args_parse(int argc, char **argv, struct cl_args *args, char *errmsg);
/* The command's name ("admin user add"), NULL for none. */
const char *cl_cmd_name(enum cl_cmd cmd);
/* Writes the whole help, or one command's, to out. */
void cl_usage(enum cl_cmd cmd, void *file);

/* ---- http.c: one request on libcurl ---- */

struct cl_response {
    int status;
    struct cn_buf body; /* JSON answers and error bodies, capped */
    char etag[CAIRN_ETAG_SIZE];
    char location[CAIRN_URL_SIZE];
    char content_range[96];
    char retry_after[32];
    uint64_t upload_offset;
    bool has_upload_offset;
    uint64_t version; /* Cairn-Version */
    uint64_t content_length;
    bool has_content_length;
};

struct cairn_client {
    void *curl; /* CURL *, reused so connections are kept alive */
    char endpoint[CAIRN_URL_SIZE];
    char token[CAIRN_TOKEN_SIZE];
    char root[CAIRN_PATH_SIZE]; /* "" for the caller's drive */
    char errmsg[512];
    int status;
    unsigned stall_s;
};

/* One request. Bodies: json (copied), or upload_len bytes pread from
 * upload_fd at upload_offset. Answers: into resp->body (capped, for JSON and
 * errors), or, for a 2xx answer with download_fd >= 0, streamed into that fd. */
struct cl_request {
    const char *method;
    const char *url; /* absolute */
    const char *json;
    const char *const *headers; /* "Name: value", NULL-terminated, may be NULL */
    int upload_fd;
    uint64_t upload_offset;
    uint64_t upload_len;
    bool upload;
    int download_fd;
    uint64_t resume_offset; /* a 200 answer truncates download_fd first when > 0 */
    cairn_progress_cb progress;
    void *progress_data;
    uint64_t progress_base;  /* bytes done before this request */
    uint64_t progress_total; /* 0: take the answer's length */
    unsigned quiet_s;        /* a long poll: the answer may take this long to start */
};

void cl_request_init(struct cl_request *req, const char *method, const char *url);
void cl_response_init(struct cl_response *resp);
void cl_response_close(struct cl_response *resp);
/* Runs req. 0 for a 2xx answer; the error code for anything else (the
 * server's message in client->errmsg); CAIRN_EUNAVAIL/ETIMEOUT when no answer
 * came; CAIRN_EIO when download_fd or upload_fd failed. */
int cl_http(struct cairn_client *client, const struct cl_request *req, struct cl_response *resp);

/* An entry from a JSON answer body (sdk.c). CAIRN_EPROTO with errmsg. */
int cl_entry_parse(struct cairn_client *client,
                   const char *body,
                   size_t len,
                   struct cairn_entry *entry);

#endif /* CL_INT_H */
