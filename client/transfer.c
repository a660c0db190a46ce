/*
 * libcairn's transfers: downloads streamed into a file descriptor, simple
 * streaming uploads, and the tus 1.0 calls for resumable uploads. The bytes go
 * between the network and the file descriptor in libcurl's buffers only.
 *
 * Resuming is the caller's policy (the CLI's in client/main.c): these calls
 * only make each step explicit (create, ask the offset, patch a range, abort;
 * get from an offset with If-Match).
 *
 * Possible failure modes: a server answer missing what the contract promises
 * (Location on create, Upload-Offset on HEAD and PATCH, a 206 without a
 * Content-Range that starts at our offset) is CAIRN_EPROTO: we never guess
 * where bytes belong.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cl_int.h"

#define URL_BUF (CAIRN_URL_SIZE * 4)

static int fail(struct cairn_client *client, int rv, const char *what)
{
    snprintf(client->errmsg, sizeof(client->errmsg), "%s", what);
    return rv;
}

/* The file URL for path, with ?version= and ?root= as needed. */
static int file_url(struct cairn_client *client, const char *path, uint64_t version, char *url)
{
    char encoded[CAIRN_PATH_SIZE * 3], root[CAIRN_PATH_SIZE * 3];
    int n;

    if (cl_path_encode(path, encoded, sizeof(encoded)) != 0 || encoded[0] == '\0') {
        snprintf(client->errmsg, sizeof(client->errmsg), "bad file path: %s", path);
        return CAIRN_EINVAL;
    }
    if (cl_query_escape(client->root, root, sizeof(root)) != 0) {
        return fail(client, CAIRN_ETOOBIG, "root too long");
    }
    n = snprintf(url, URL_BUF, "%s/v1/files/%s", client->endpoint, encoded);
    if (version > 0) {
        n += snprintf(url + n, URL_BUF - (size_t)n, "?version=%" PRIu64, version);
    }
    if (root[0] != '\0') {
        snprintf(url + n, URL_BUF - (size_t)n, "%sroot=%s", version > 0 ? "&" : "?", root);
    }
    return 0;
}

/* Header lines must not carry CR or LF (they would forge another header). */
static bool header_safe(const char *value)
{
    return value != NULL && strpbrk(value, "\r\n") == NULL;
}

/* Checks a 206 answer: it must start at offset. */
static int check_partial(struct cairn_client *client,
                         const struct cl_response *resp,
                         uint64_t offset,
                         uint64_t *size)
{
    uint64_t first, last;

    if (cl_content_range_parse(resp->content_range, &first, &last, size) != 0 || first != offset) {
        return fail(client, CAIRN_EPROTO, "a 206 answer whose Content-Range is not ours");
    }
    return 0;
}

int cairn_get_fd(struct cairn_client *client,
                 const char *path,
                 const struct cairn_get_options *options,
                 int fd,
                 struct cairn_get_result *result)
{
    static const struct cairn_get_options none = {0};
    char url[URL_BUF], range[64], if_match[CAIRN_ETAG_SIZE + 16];
    const char *headers[3] = {NULL, NULL, NULL};
    struct cl_request req;
    struct cl_response resp;
    size_t h = 0;
    int rv;

    options = options != NULL ? options : &none;
    memset(result, 0, sizeof(*result));
    rv = file_url(client, path, options->version, url);
    if (rv != 0) {
        return rv;
    }
    cl_request_init(&req, "GET", url);
    if (options->offset > 0) {
        snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-", options->offset);
        headers[h++] = range;
        if (options->etag != NULL && options->etag[0] != '\0') {
            if (!header_safe(options->etag)) {
                return fail(client, CAIRN_EINVAL, "bad ETag");
            }
            snprintf(if_match, sizeof(if_match), "If-Match: %s", options->etag);
            headers[h++] = if_match;
        }
    }
    req.headers = headers;
    req.download_fd = fd;
    req.resume_offset = options->offset;
    req.progress_base = options->offset;
    req.progress = options->progress;
    req.progress_data = options->progress_data;
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    if (rv == 0) {
        result->status = resp.status;
        result->version = resp.version;
        snprintf(result->etag, sizeof(result->etag), "%s", resp.etag);
        if (resp.status == 206) {
            rv = check_partial(client, &resp, options->offset, &result->size);
        } else if (resp.has_content_length) {
            result->size = resp.content_length;
        }
    }
    cl_response_close(&resp);
    return rv;
}

/* Copies the entry from a JSON answer, when the caller wants it. */
static int answer_entry(struct cairn_client *client,
                        const struct cl_response *resp,
                        struct cairn_entry *entry)
{
    if (entry == NULL) {
        return 0;
    }
    return cl_entry_parse(client, (const char *)resp->body.base, resp->body.len, entry);
}

int cairn_put_fd(struct cairn_client *client,
                 const char *path,
                 int fd,
                 uint64_t size,
                 const struct cairn_put_options *options,
                 struct cairn_entry *entry)
{
    static const struct cairn_put_options none = {0};
    char url[URL_BUF], if_match[CAIRN_ETAG_SIZE + 16];
    const char *headers[3] = {"Content-Type: application/octet-stream", NULL, NULL};
    struct cl_request req;
    struct cl_response resp;
    int rv;

    options = options != NULL ? options : &none;
    rv = file_url(client, path, 0, url);
    if (rv != 0) {
        return rv;
    }
    if (options->base > 0) {
        size_t n = strlen(url);

        snprintf(url + n, sizeof(url) - n, "%sbase=%" PRIu64, strchr(url, '?') ? "&" : "?",
                 options->base);
    }
    if (options->if_match != NULL) {
        if (!header_safe(options->if_match)) {
            return fail(client, CAIRN_EINVAL, "bad ETag");
        }
        snprintf(if_match, sizeof(if_match), "If-Match: %s", options->if_match);
        headers[1] = if_match;
    }
    cl_request_init(&req, "PUT", url);
    req.headers = headers;
    req.upload = true;
    req.upload_fd = fd;
    req.upload_offset = (uint64_t)lseek(fd, 0, SEEK_CUR);
    req.upload_len = size;
    req.progress = options->progress;
    req.progress_data = options->progress_data;
    req.progress_total = size;
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    if (rv == 0) {
        rv = answer_entry(client, &resp, entry);
    }
    cl_response_close(&resp);
    return rv;
}

int cairn_upload_create(
    struct cairn_client *client, const char *path, uint64_t size, uint64_t base, char *url)
{
    char target[URL_BUF], length[48], normal[CAIRN_PATH_SIZE];
    char meta[CAIRN_PATH_SIZE * 2 + 256], b64[CAIRN_PATH_SIZE * 2], num[24];
    const char *headers[4] = {"Tus-Resumable: 1.0.0", length, meta, NULL};
    struct cl_request req;
    struct cl_response resp;
    size_t n;
    int rv;

    if (cl_path_normalize(path, normal, sizeof(normal)) != 0 || normal[0] == '\0') {
        return fail(client, CAIRN_EINVAL, "bad file path");
    }
    snprintf(length, sizeof(length), "Upload-Length: %" PRIu64, size);
    cl_base64_encode(normal, strlen(normal), b64, sizeof(b64));
    n = (size_t)snprintf(meta, sizeof(meta), "Upload-Metadata: path %s", b64);
    if (base > 0) {
        snprintf(num, sizeof(num), "%" PRIu64, base);
        cl_base64_encode(num, strlen(num), b64, sizeof(b64));
        n += (size_t)snprintf(meta + n, sizeof(meta) - n, ",base %s", b64);
    }
    if (client->root[0] != '\0') {
        if (cl_base64_encode(client->root, strlen(client->root), b64, sizeof(b64)) != 0) {
            return fail(client, CAIRN_ETOOBIG, "root too long");
        }
        snprintf(meta + n, sizeof(meta) - n, ",root %s", b64);
    }
    snprintf(target, sizeof(target), "%s/v1/uploads", client->endpoint);
    cl_request_init(&req, "POST", target);
    req.headers = headers;
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    if (rv == 0 && resp.location[0] == '\0') {
        rv = fail(client, CAIRN_EPROTO, "upload created without a Location");
    }
    if (rv == 0) {
        /* Location may be absolute or a path on this endpoint. */
        int written = resp.location[0] == '/'
                          ? snprintf(url, CAIRN_URL_SIZE, "%s%s", client->endpoint, resp.location)
                          : snprintf(url, CAIRN_URL_SIZE, "%s", resp.location);

        if (written < 0 || written >= (int)CAIRN_URL_SIZE) {
            rv = fail(client, CAIRN_ETOOBIG, "upload URL too long");
        }
    }
    cl_response_close(&resp);
    return rv;
}

/* Upload URLs come from the server or a record: only ours, and one line. */
static int check_upload_url(struct cairn_client *client, const char *url)
{
    size_t len = strlen(client->endpoint);

    if (strncmp(url, client->endpoint, len) != 0 || strncmp(url + len, "/v1/uploads/", 12) != 0 ||
        !header_safe(url)) {
        return fail(client, CAIRN_EINVAL, "not an upload URL of this endpoint");
    }
    return 0;
}

int cairn_upload_offset(struct cairn_client *client, const char *url, uint64_t *offset)
{
    const char *headers[2] = {"Tus-Resumable: 1.0.0", NULL};
    struct cl_request req;
    struct cl_response resp;
    int rv = check_upload_url(client, url);

    if (rv != 0) {
        return rv;
    }
    cl_request_init(&req, "HEAD", url);
    req.headers = headers;
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    if (rv == 0 && !resp.has_upload_offset) {
        rv = fail(client, CAIRN_EPROTO, "HEAD answer without Upload-Offset");
    }
    *offset = resp.upload_offset;
    cl_response_close(&resp);
    return rv;
}

int cairn_upload_patch(struct cairn_client *client,
                       const char *url,
                       int fd,
                       uint64_t offset,
                       uint64_t len,
                       cairn_progress_cb progress,
                       void *progress_data,
                       struct cairn_upload_result *result)
{
    char offset_header[48];
    const char *headers[4] = {"Tus-Resumable: 1.0.0",
                              "Content-Type: application/offset+octet-stream", offset_header, NULL};
    struct cl_request req;
    struct cl_response resp;
    int rv = check_upload_url(client, url);

    memset(result, 0, sizeof(*result));
    if (rv != 0) {
        return rv;
    }
    snprintf(offset_header, sizeof(offset_header), "Upload-Offset: %" PRIu64, offset);
    cl_request_init(&req, "PATCH", url);
    req.headers = headers;
    req.upload = true;
    req.upload_fd = fd;
    req.upload_offset = offset;
    req.upload_len = len;
    req.progress = progress;
    req.progress_data = progress_data;
    req.progress_base = offset;
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    if (rv == 0 && !resp.has_upload_offset) {
        rv = fail(client, CAIRN_EPROTO, "PATCH answer without Upload-Offset");
    }
    result->offset = resp.upload_offset;
    result->version = resp.version;
    snprintf(result->etag, sizeof(result->etag), "%s", resp.etag);
    cl_response_close(&resp);
    return rv;
}

int cairn_upload_abort(struct cairn_client *client, const char *url)
{
    const char *headers[2] = {"Tus-Resumable: 1.0.0", NULL};
    struct cl_request req;
    struct cl_response resp;
    int rv = check_upload_url(client, url);

    if (rv != 0) {
        return rv;
    }
    cl_request_init(&req, "DELETE", url);
    req.headers = headers;
    cl_response_init(&resp);
    rv = cl_http(client, &req, &resp);
    cl_response_close(&resp);
    return rv;
}
