/*
 * libcairn's HTTP core: one request at a time on the client's libcurl easy
 * handle, so keep-alive connections are reused between calls.
 *
 * The happy path of cl_http():
 * 1. Reset the handle (curl keeps its connection cache) and set method, URL,
 *    the bearer token and the request's headers.
 * 2. A body is either a small JSON text or a byte range of a file, read with
 *    pread() as libcurl asks for it, so nothing is ever held whole in memory.
 * 3. Header lines are matched as they arrive (ETag, Location, Upload-Offset,
 *    Cairn-Version, Content-Range, Content-Length, Retry-After); a new status
 *    line (after a 100 Continue) starts the set again.
 * 4. Body bytes of a 2xx answer go to download_fd when there is one, else
 *    into resp->body up to a cap; a non-2xx body always goes to resp->body,
 *    where cl_error_parse() finds the server's JSON error.
 *
 * Possible failure modes:
 * - No connection, a reset, or silence longer than the stall timeout:
 *   CAIRN_EUNAVAIL or CAIRN_ETIMEOUT with curl's text in errmsg; the CLI maps
 *   them to exit 6.
 * - write() to download_fd or pread() from upload_fd fails: the callback
 *   stops the transfer and the call returns the errno's code (CAIRN_EIO,
 *   CAIRN_ENOSPACE, ...).
 * - An answer body over the cap: CAIRN_ETOOBIG (a JSON answer has no reason
 *   to be that large).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cl_int.h"

#define BODY_SIZE_MAX     (16u << 20) /* a JSON answer */
#define CONNECT_TIMEOUT_S 10

struct transfer {
    struct cairn_client *client;
    const struct cl_request *req;
    struct cl_response *resp;
    uint64_t sent;
    bool body_started;
    bool to_fd;
    int fd_err; /* errno of a failed read or write */
    bool too_big;
};

void cl_request_init(struct cl_request *req, const char *method, const char *url)
{
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->url = url;
    req->upload_fd = -1;
    req->download_fd = -1;
}

void cl_response_init(struct cl_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    cn_buf_init(&resp->body);
}

void cl_response_close(struct cl_response *resp)
{
    cn_buf_close(&resp->body);
}

static size_t header_cb(char *line, size_t size, size_t count, void *data)
{
    struct transfer *t = data;
    struct cl_response *resp = t->resp;
    size_t len = size * count;
    char value[64];

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        int status = 0;

        /* A new header block (after 100 Continue): forget the last one's. */
        sscanf(line, "HTTP/%*s %d", &status);
        cn_buf_reset(&resp->body);
        cn_buf_close(&resp->body);
        cl_response_init(resp);
        resp->status = status;
        return len;
    }
    cl_header_match(line, len, "ETag", resp->etag, sizeof(resp->etag));
    cl_header_match(line, len, "Location", resp->location, sizeof(resp->location));
    cl_header_match(line, len, "Content-Range", resp->content_range, sizeof(resp->content_range));
    cl_header_match(line, len, "Retry-After", resp->retry_after, sizeof(resp->retry_after));
    if (cl_header_match(line, len, "Upload-Offset", value, sizeof(value))) {
        resp->has_upload_offset = cl_parse_u64(value, &resp->upload_offset) == 0;
    }
    if (cl_header_match(line, len, "Cairn-Version", value, sizeof(value))) {
        (void)cl_parse_u64(value, &resp->version);
    }
    if (cl_header_match(line, len, "Content-Length", value, sizeof(value))) {
        resp->has_content_length = cl_parse_u64(value, &resp->content_length) == 0;
    }
    return len;
}

/* The first body byte of a 2xx answer for a download: a 200 answer to a
 * ranged request restarts the file. */
static int start_body(struct transfer *t)
{
    const struct cl_request *req = t->req;
    int status = t->resp->status;

    t->body_started = true;
    t->to_fd = req->download_fd >= 0 && status >= 200 && status < 300;
    if (t->to_fd && status == 200 && req->resume_offset > 0) {
        if (ftruncate(req->download_fd, 0) != 0 || lseek(req->download_fd, 0, SEEK_SET) != 0) {
            return errno;
        }
    }
    return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t count, void *data)
{
    struct transfer *t = data;
    size_t len = size * count;

    if (!t->body_started && (t->fd_err = start_body(t)) != 0) {
        return 0;
    }
    if (!t->to_fd) {
        if (t->resp->body.len + len > BODY_SIZE_MAX) {
            t->too_big = true;
            return 0;
        }
        return cn_buf_append(&t->resp->body, ptr, len) == 0 ? len : 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = write(t->req->download_fd, ptr + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            t->fd_err = n < 0 ? errno : EIO;
            return 0;
        }
        done += (size_t)n;
    }
    return len;
}

static size_t read_cb(char *buffer, size_t size, size_t count, void *data)
{
    struct transfer *t = data;
    const struct cl_request *req = t->req;
    size_t want = (size_t)CN_MIN((uint64_t)(size * count), req->upload_len - t->sent);
    ssize_t n;

    if (want == 0) {
        return 0;
    }
    do {
        n = pread(req->upload_fd, buffer, want, (off_t)(req->upload_offset + t->sent));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        /* A file that shrank under us is an error, not a short upload. */
        t->fd_err = n < 0 ? errno : EIO;
        return CURL_READFUNC_ABORT;
    }
    t->sent += (uint64_t)n;
    return (size_t)n;
}

static int progress_cb(
    void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    struct transfer *t = data;
    const struct cl_request *req = t->req;
    uint64_t now = (uint64_t)(req->upload ? ulnow : dlnow);
    uint64_t total = req->progress_total;

    if (total == 0) {
        total = (uint64_t)(req->upload ? ultotal : dltotal);
        total += total > 0 ? req->progress_base : 0;
    }
    req->progress(req->progress_data, req->progress_base + now, total);
    return 0;
}

static int err_from_curl(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return CAIRN_ETIMEOUT;
    case CURLE_OUT_OF_MEMORY:
        return CAIRN_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return CAIRN_EINVAL;
    case CURLE_ABORTED_BY_CALLBACK:
        return CAIRN_ECANCELED;
    default:
        return CAIRN_EUNAVAIL;
    }
}

/* Sets the handle up for req. CAIRN_ENOMEM. */
static int setup(struct cairn_client *client,
                 const struct cl_request *req,
                 struct transfer *t,
                 struct curl_slist **headers)
{
    CURL *curl = client->curl;
    char auth[CAIRN_TOKEN_SIZE + 32];

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, req->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
    if (client->stall_s > 0) {
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)(client->stall_s + req->quiet_s));
    }
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "cairn/0.1 (libcairn)");
    if (client->token[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", client->token);
        *headers = curl_slist_append(*headers, auth);
    }
    for (size_t i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        *headers = curl_slist_append(*headers, req->headers[i]);
    }
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    }
    if (req->json != NULL) {
        *headers = curl_slist_append(*headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->json));
        curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, req->json);
    } else if (req->upload) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->upload_len);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(curl, CURLOPT_READDATA, t);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    }
    if (req->progress != NULL) {
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, t);
    }
    if (*headers != NULL) {
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, *headers);
    }
    return 0;
}

int cl_http(struct cairn_client *client, const struct cl_request *req, struct cl_response *resp)
{
    struct transfer t = {.client = client, .req = req, .resp = resp};
    struct curl_slist *headers = NULL;
    char curl_err[CURL_ERROR_SIZE] = "";
    CURLcode code;
    int rv;

    client->errmsg[0] = '\0';
    client->status = 0;
    cl_response_close(resp);
    cl_response_init(resp);
    setup(client, req, &t, &headers);
    curl_easy_setopt(client->curl, CURLOPT_ERRORBUFFER, curl_err);
    code = curl_easy_perform(client->curl);
    curl_slist_free_all(headers);
    client->status = resp->status;
    if (code == CURLE_OK && !t.body_started) {
        /* An empty body (a 0-byte file) still restarts a resumed download. */
        t.fd_err = start_body(&t);
    }
    if (t.fd_err != 0) {
        rv = cn_err_from_errno(t.fd_err);
        snprintf(client->errmsg, sizeof(client->errmsg), "local file: %s", strerror(t.fd_err));
        return rv != 0 ? rv : CAIRN_EIO;
    }
    if (t.too_big) {
        snprintf(client->errmsg, sizeof(client->errmsg), "answer over %u bytes", BODY_SIZE_MAX);
        return CAIRN_ETOOBIG;
    }
    if (code != CURLE_OK) {
        snprintf(client->errmsg, sizeof(client->errmsg), "%.200s: %.200s", client->endpoint,
                 curl_err[0] != '\0' ? curl_err : curl_easy_strerror(code));
        return err_from_curl(code);
    }
    if (resp->status < 200 || resp->status >= 300) {
        return cl_error_parse((const char *)resp->body.base, resp->body.len, resp->status,
                              client->errmsg, sizeof(client->errmsg));
    }
    return 0;
}
