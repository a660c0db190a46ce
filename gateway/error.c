/*
 * Errors as the gateway's clients see them: one table from CAIRN_E* codes
 * to HTTP statuses and snake_case codes, one table of statuses, and one JSON
 * body shape for every error:
 *
 *   {"error": {"code": "not_found", "message": "no such object", "status": 404}}
 *
 * Possible failure modes: an unknown CAIRN_E* code maps to 500 "internal";
 * jansson out of memory aborts, as daemon memory does.
 */
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"

/* Every CAIRN_E* code, with its status and code. A new code in cairn_err.h
 * without a line here fails the unit test that walks CAIRN_ERR_MAP. */
#define GW_ERR_MAP(X)                       \
    X(NOMEM, 503, "out_of_memory")          \
    X(IO, 500, "io_error")                  \
    X(CORRUPT, 500, "corrupt")              \
    X(BUSY, 503, "busy")                    \
    X(INVAL, 400, "invalid_argument")       \
    X(NOENT, 404, "not_found")              \
    X(EXIST, 409, "already_exists")         \
    X(AGAIN, 503, "try_again")              \
    X(TOOBIG, 413, "payload_too_large")     \
    X(PROTO, 400, "bad_request")            \
    X(CONFLICT, 409, "conflict")            \
    X(PERM, 403, "forbidden")               \
    X(AUTH, 401, "unauthenticated")         \
    X(NOTLEADER, 503, "not_leader")         \
    X(TIMEOUT, 504, "timeout")              \
    X(SHUTDOWN, 503, "shutting_down")       \
    X(NOSPACE, 507, "insufficient_storage") \
    X(NOTDIR, 409, "not_a_folder")          \
    X(ISDIR, 409, "is_a_folder")            \
    X(NOTEMPTY, 409, "folder_not_empty")    \
    X(QUOTA, 507, "quota_exceeded")         \
    X(UNAVAIL, 503, "unavailable")          \
    X(CANCELED, 503, "canceled")            \
    X(RANGE, 416, "range_not_satisfiable")  \
    X(KEY, 403, "bad_signature")            \
    X(EXPIRED, 410, "expired")              \
    X(UNSUPPORTED, 501, "not_implemented")  \
    X(LOCKED, 423, "locked")                \
    X(INTERNAL, 500, "internal")

struct err_entry {
    int rv;
    int status;
    const char *code;
};

static const struct err_entry err_table[] = {
#define X(NAME, STATUS, CODE) {CAIRN_E##NAME, STATUS, CODE},
    GW_ERR_MAP(X)
#undef X
};

/* Statuses the server sends on its own, with their reasons and codes. */
#define GW_STATUS_MAP(X)                                               \
    X(100, "Continue", "continue")                                     \
    X(200, "OK", "ok")                                                 \
    X(201, "Created", "created")                                       \
    X(202, "Accepted", "accepted")                                     \
    X(204, "No Content", "no_content")                                 \
    X(206, "Partial Content", "partial_content")                       \
    X(301, "Moved Permanently", "moved")                               \
    X(302, "Found", "found")                                           \
    X(304, "Not Modified", "not_modified")                             \
    X(307, "Temporary Redirect", "redirect")                           \
    X(400, "Bad Request", "bad_request")                               \
    X(401, "Unauthorized", "unauthenticated")                          \
    X(403, "Forbidden", "forbidden")                                   \
    X(404, "Not Found", "not_found")                                   \
    X(405, "Method Not Allowed", "method_not_allowed")                 \
    X(408, "Request Timeout", "request_timeout")                       \
    X(409, "Conflict", "conflict")                                     \
    X(410, "Gone", "expired")                                          \
    X(411, "Length Required", "length_required")                       \
    X(412, "Precondition Failed", "precondition_failed")               \
    X(413, "Payload Too Large", "payload_too_large")                   \
    X(414, "URI Too Long", "uri_too_long")                             \
    X(416, "Range Not Satisfiable", "range_not_satisfiable")           \
    X(417, "Expectation Failed", "expectation_failed")                 \
    X(423, "Locked", "locked")                                         \
    X(429, "Too Many Requests", "too_many_requests")                   \
    X(431, "Request Header Fields Too Large", "headers_too_large")     \
    X(500, "Internal Server Error", "internal")                        \
    X(501, "Not Implemented", "not_implemented")                       \
    X(503, "Service Unavailable", "unavailable")                       \
    X(504, "Gateway Timeout", "timeout")                               \
    X(505, "HTTP Version Not Supported", "http_version_not_supported") \
    X(507, "Insufficient Storage", "insufficient_storage")

struct status_entry {
    int status;
    const char *reason;
    const char *code;
};

static const struct status_entry status_table[] = {
#define X(STATUS, REASON, CODE) {STATUS, REASON, CODE},
    GW_STATUS_MAP(X)
#undef X
};

/* Sent, whole, to a connection over conn_count_max; it fits any socket buffer. */
const char gw__reject_response[] = "HTTP/1.1 503 Service Unavailable\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Content-Length: 87\r\n"
                                   "Connection: close\r\n"
                                   "Retry-After: 1\r\n"
                                   "\r\n"
                                   "{\"error\":{\"code\":\"too_many_connections\",\"message\":"
                                   "\"too many connections\",\"status\":503}}";

static const struct err_entry *err_find(int rv)
{
    size_t i;

    for (i = 0; i < CN_ARRAY_SIZE(err_table); i++) {
        if (err_table[i].rv == rv) {
            return &err_table[i];
        }
    }
    return NULL;
}

static const struct status_entry *status_find(int status)
{
    size_t i;

    for (i = 0; i < CN_ARRAY_SIZE(status_table); i++) {
        if (status_table[i].status == status) {
            return &status_table[i];
        }
    }
    return NULL;
}

int gw_error_status(int rv)
{
    const struct err_entry *entry = err_find(rv);

    return entry != NULL ? entry->status : 500;
}

const char *gw_error_code(int rv)
{
    const struct err_entry *entry = err_find(rv);

    return entry != NULL ? entry->code : "internal";
}

const char *gw_status_reason(int status)
{
    const struct status_entry *entry = status_find(status);

    return entry != NULL ? entry->reason : "Unknown";
}

const char *gw_status_code(int status)
{
    const struct status_entry *entry = status_find(status);

    if (entry != NULL) {
        return entry->code;
    }
    return status >= 500 ? "internal" : "bad_request";
}

char *gw_error_body(int status, const char *code, const char *message)
{
    json_t *body;
    char *text;

    CN_ASSERT(status >= 400 && status <= 599);
    CN_ASSERT(code != NULL);
    body = json_pack("{s:{s:s, s:s, s:i}}", "error", "code", code, "message",
                     message != NULL ? message : "", "status", status);
    if (body == NULL) {
        /* Only when message is not UTF-8: say so rather than echo it. */
        body = json_pack("{s:{s:s, s:s, s:i}}", "error", "code", code, "message",
                         "(message not UTF-8)", "status", status);
    }
    CN_ASSERT(body != NULL);
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    CN_ASSERT(text != NULL);
    return text;
}

int gw__err_from_uv(int status, char *errmsg, const char *what)
{
    int rv;

    CN_ASSERT(status < 0);
    switch (status) {
    case UV_ENOMEM:
        rv = CAIRN_ENOMEM;
        break;
    case UV_EADDRINUSE:
    case UV_EADDRNOTAVAIL:
    case UV_EACCES:
        rv = CAIRN_EIO;
        break;
    case UV_EINVAL:
        rv = CAIRN_EINVAL;
        break;
    case UV_ECANCELED:
        rv = CAIRN_ECANCELED;
        break;
    case UV_ETIMEDOUT:
        rv = CAIRN_ETIMEOUT;
        break;
    default:
        rv = CAIRN_EIO;
        break;
    }
    if (errmsg != NULL) {
        cn_errmsgf(errmsg, rv, "%s: %s", what, uv_strerror(status));
    }
    return rv;
}
