/*
 * The pure parts of libcairn and the CLI: drive paths and their encoding,
 * base64 for tus metadata, the mapping from HTTP answers to CAIRN_E* codes and
 * from codes to exit codes, Content-Range and header parsing, the tus offset
 * step, and the progress line. None of it touches the network or the disk, so
 * tests/unit/client/test_util.c covers it all, bad inputs included.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "cl_int.h"

#define NAME_SIZE_MAX 255u

/* Appends len bytes of text at *at in out, keeping room for a NUL. */
static int put(char *out, size_t out_size, size_t *at, const char *text, size_t len)
{
    if (*at + len + 1 > out_size) {
        return CAIRN_ETOOBIG;
    }
    memcpy(out + *at, text, len);
    *at += len;
    out[*at] = '\0';
    return 0;
}

static bool segment_valid(const char *name, size_t len)
{
    if (len == 0 || len > NAME_SIZE_MAX) {
        return false;
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        return false;
    }
    return true;
}

int cl_path_normalize(const char *path, char *out, size_t out_size)
{
    size_t at = 0;
    const char *p = path;
    int rv;

    CN_ASSERT(out_size > 0);
    out[0] = '\0';
    while (*p != '\0') {
        const char *end;

        while (*p == '/') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        end = strchr(p, '/');
        if (end == NULL) {
            end = p + strlen(p);
        }
        if (!segment_valid(p, (size_t)(end - p))) {
            return CAIRN_EINVAL;
        }
        if (at > 0 && (rv = put(out, out_size, &at, "/", 1)) != 0) {
            return rv;
        }
        if ((rv = put(out, out_size, &at, p, (size_t)(end - p))) != 0) {
            return rv;
        }
        p = end;
    }
    return 0;
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-encodes text[0..len), keeping '/' when keep_slash. */
static int escape(const char *text, size_t len, bool keep_slash, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t at = 0;
    int rv;

    CN_ASSERT(out_size > 0);
    out[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char enc[3] = {'%', hex[c >> 4], hex[c & 15]};

        if (unreserved(c) || (keep_slash && c == '/')) {
            rv = put(out, out_size, &at, (const char *)&text[i], 1);
        } else {
            rv = put(out, out_size, &at, enc, 3);
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int cl_path_encode(const char *path, char *out, size_t out_size)
{
    char normal[CAIRN_PATH_SIZE];
    int rv;

    rv = cl_path_normalize(path, normal, sizeof(normal));
    if (rv != 0) {
        return rv;
    }
    return escape(normal, strlen(normal), true, out, out_size);
}

int cl_query_escape(const char *text, char *out, size_t out_size)
{
    return escape(text, strlen(text), false, out, out_size);
}

const char *cl_path_basename(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash == NULL ? path : slash + 1;
}

int cl_base64_encode(const void *data, size_t len, char *out, size_t out_size)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *in = data;
    size_t at = 0;

    if ((len + 2) / 3 * 4 + 1 > out_size) {
        return CAIRN_ETOOBIG;
    }
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t left = len - i;

        if (left > 1) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (left > 2) {
            v |= in[i + 2];
        }
        out[at++] = abc[(v >> 18) & 63];
        out[at++] = abc[(v >> 12) & 63];
        out[at++] = left > 1 ? abc[(v >> 6) & 63] : '=';
        out[at++] = left > 2 ? abc[v & 63] : '=';
    }
    out[at] = '\0';
    return 0;
}

int cl_err_from_status(int status)
{
    switch (status) {
    case 400:
        return CAIRN_EINVAL;
    case 401:
        return CAIRN_EAUTH;
    case 403:
        return CAIRN_EPERM;
    case 404:
        return CAIRN_ENOENT;
    case 409:
    case 412:
        return CAIRN_ECONFLICT;
    case 410:
        return CAIRN_EEXPIRED;
    case 413:
        return CAIRN_ETOOBIG;
    case 416:
        return CAIRN_ERANGE;
    case 429:
        return CAIRN_EBUSY;
    case 502:
    case 503:
        return CAIRN_EUNAVAIL;
    case 504:
        return CAIRN_ETIMEOUT;
    case 507:
        return CAIRN_EQUOTA;
    default:
        break;
    }
    if (status < 400) {
        return 0;
    }
    return status < 500 ? CAIRN_EPROTO : CAIRN_EINTERNAL;
}

/* The codes cairn-gateway writes (gateway/error.c: "not_found", ...), part of
 * the wire contract like the statuses. */
static const struct {
    const char *code;
    int rv;
} gateway_codes[] = {
    {"out_of_memory", CAIRN_ENOMEM},
    {"io_error", CAIRN_EIO},
    {"corrupt", CAIRN_ECORRUPT},
    {"busy", CAIRN_EBUSY},
    {"invalid_argument", CAIRN_EINVAL},
    {"not_found", CAIRN_ENOENT},
    {"already_exists", CAIRN_EEXIST},
    {"try_again", CAIRN_EAGAIN},
    {"payload_too_large", CAIRN_ETOOBIG},
    {"bad_request", CAIRN_EPROTO},
    {"conflict", CAIRN_ECONFLICT},
    {"forbidden", CAIRN_EPERM},
    {"unauthenticated", CAIRN_EAUTH},
    {"not_leader", CAIRN_ENOTLEADER},
    {"timeout", CAIRN_ETIMEOUT},
    {"shutting_down", CAIRN_ESHUTDOWN},
    {"insufficient_storage", CAIRN_ENOSPACE},
    {"not_a_folder", CAIRN_ENOTDIR},
    {"is_a_folder", CAIRN_EISDIR},
    {"folder_not_empty", CAIRN_ENOTEMPTY},
    {"quota_exceeded", CAIRN_EQUOTA},
    {"unavailable", CAIRN_EUNAVAIL},
    {"range_not_satisfiable", CAIRN_ERANGE},
    {"expired", CAIRN_EEXPIRED},
    {"not_implemented", CAIRN_EUNSUPPORTED},
    {"locked", CAIRN_ELOCKED},
    {"internal", CAIRN_EINTERNAL},
};

/* The CAIRN_E* code named "CAIRN_ENAME" or by the gateway's code, or 0. */
static int err_from_name(const char *name)
{
    static const int codes[] = {
#define X(NAME, N, TEXT) CAIRN_E##NAME,
        CAIRN_ERR_MAP(X)
#undef X
    };

    for (size_t i = 0; i < CN_ARRAY_SIZE(codes); i++) {
        if (strcmp(cairn_errname(codes[i]), name) == 0) {
            return codes[i];
        }
    }
    for (size_t i = 0; i < CN_ARRAY_SIZE(gateway_codes); i++) {
        if (strcmp(gateway_codes[i].code, name) == 0) {
            return gateway_codes[i].rv;
        }
    }
    return 0;
}

int cl_error_parse(const char *body, size_t len, int status, char *msg, size_t msg_size)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *error = json_object_get(root, "error");
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *message = json_string_value(json_object_get(error, "message"));
    int rv = cl_err_from_status(status);

    if (code != NULL && err_from_name(code) != 0) {
        rv = err_from_name(code);
    }
    if (rv == 0) {
        rv = CAIRN_EPROTO; /* An error answer with a success status. */
    }
    if (message != NULL && message[0] != '\0') {
        snprintf(msg, msg_size, "%s", message);
    } else {
        snprintf(msg, msg_size, "the server answered HTTP %d (%s)", status, cairn_strerror(rv));
    }
    json_decref(root);
    return rv;
}

int cl_exit_code(int rv)
{
    switch (rv) {
    case 0:
        return CL_EXIT_OK;
    case CAIRN_EAUTH:
    case CAIRN_EPERM:
        return CL_EXIT_AUTH;
    case CAIRN_ENOENT:
        return CL_EXIT_NOT_FOUND;
    case CAIRN_ECONFLICT:
    case CAIRN_EEXIST:
    case CAIRN_ENOTEMPTY:
        return CL_EXIT_CONFLICT;
    case CAIRN_EUNAVAIL:
    case CAIRN_ETIMEOUT:
    case CAIRN_EBUSY:
    case CAIRN_ENOTLEADER:
    case CAIRN_ESHUTDOWN:
        return CL_EXIT_UNAVAILABLE;
    default:
        return CL_EXIT_ERROR;
    }
}

int cl_parse_u64(const char *text, uint64_t *value)
{
    char *end;
    unsigned long long v;

    if (text == NULL || !isdigit((unsigned char)text[0])) {
        return CAIRN_EINVAL;
    }
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        return CAIRN_EINVAL;
    }
    *value = v;
    return 0;
}

/* Parses digits at *p up to a char in stop; advances *p past them. */
static int parse_part(const char **p, char stop, uint64_t *value)
{
    char buf[24];
    const char *end = *p;
    size_t len;

    while (isdigit((unsigned char)*end)) {
        end++;
    }
    len = (size_t)(end - *p);
    if (len == 0 || len >= sizeof(buf) || *end != stop) {
        return CAIRN_EINVAL;
    }
    memcpy(buf, *p, len);
    buf[len] = '\0';
    *p = end + (stop != '\0');
    return cl_parse_u64(buf, value);
}

int cl_content_range_parse(const char *header, uint64_t *first, uint64_t *last, uint64_t *size)
{
    const char *p = header;

    if (strncasecmp(p, "bytes ", 6) != 0) {
        return CAIRN_EINVAL;
    }
    p += 6;
    if (parse_part(&p, '-', first) != 0 || parse_part(&p, '/', last) != 0) {
        return CAIRN_EINVAL;
    }
    if (strcmp(p, "*") == 0) {
        *size = 0;
    } else if (parse_part(&p, '\0', size) != 0 || *last >= *size) {
        return CAIRN_EINVAL;
    }
    return *first <= *last ? 0 : CAIRN_EINVAL;
}

bool cl_header_match(const char *line, size_t len, const char *name, char *value, size_t value_size)
{
    size_t name_len = strlen(name);
    const char *v;
    const char *end = line + len;

    if (len <= name_len || strncasecmp(line, name, name_len) != 0 || line[name_len] != ':') {
        return false;
    }
    v = line + name_len + 1;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    snprintf(value, value_size, "%.*s", (int)(end - v), v);
    return true;
}

int cl_tus_next(uint64_t offset, uint64_t size, uint64_t chunk_max, uint64_t *len)
{
    CN_ASSERT(chunk_max > 0);
    if (offset > size) {
        return CAIRN_EPROTO;
    }
    *len = CN_MIN(size - offset, chunk_max);
    return 0;
}

void cl_format_size(uint64_t bytes, char *out, size_t out_size)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    unsigned u = 0;

    if (bytes < 1024) {
        snprintf(out, out_size, "%" PRIu64 " B", bytes);
        return;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < CN_ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    snprintf(out, out_size, v < 10 && u >= 2 ? "%.2f %s" : "%.1f %s", v, units[u]);
}

void cl_progress_render(char *out,
                        size_t out_size,
                        unsigned width,
                        const char *label,
                        uint64_t done,
                        uint64_t total,
                        uint64_t elapsed_ms)
{
    char done_text[32], total_text[32], rate_text[32], tail[128], bar[256];
    uint64_t rate = elapsed_ms > 0 ? done * 1000 / elapsed_ms : 0;
    int bar_width;
    size_t label_len = strlen(label);

    /* Never wider than the terminal, whatever is cut. */
    out_size = CN_MIN(out_size, (size_t)width + 1);
    cl_format_size(done, done_text, sizeof(done_text));
    cl_format_size(total, total_text, sizeof(total_text));
    cl_format_size(rate, rate_text, sizeof(rate_text));
    if (total == 0) {
        snprintf(tail, sizeof(tail), "  %s  %s/s", done_text, rate_text);
        snprintf(out, out_size, "%.*s%s",
                 (int)CN_MIN(label_len, width > strlen(tail) ? width - strlen(tail) : 0), label,
                 tail);
        return;
    }
    done = CN_MIN(done, total);
    snprintf(tail, sizeof(tail), " %3u%%  %s/%s  %s/s", (unsigned)(done * 100 / total), done_text,
             total_text, rate_text);
    /* The label gets at most a third of the line; the bar what is left. */
    label_len = CN_MIN(label_len, width / 3);
    bar_width = (int)width - (int)label_len - (int)strlen(tail) - 4;
    bar_width = CN_MIN(bar_width, (int)sizeof(bar) - 1);
    if (bar_width < 5) {
        snprintf(out, out_size, "%.*s%s", (int)label_len, label, tail);
        return;
    }
    {
        int filled = (int)((double)done / (double)total * bar_width);

        for (int i = 0; i < bar_width; i++) {
            bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
        }
        if (filled == bar_width) {
            bar[bar_width - 1] = '=';
        }
        bar[bar_width] = '\0';
    }
    snprintf(out, out_size, "%.*s  [%s]%s", (int)label_len, label, bar, tail);
}

void cl_format_time(uint64_t time_ms, char *out, size_t out_size)
{
    time_t t = (time_t)(time_ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, out_size, "%Y-%m-%d %H:%M:%S", &tm);
}
