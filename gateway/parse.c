/*
 * Request parsing: libhttp-parser does the HTTP grammar; this file keeps the
 * request head in one bounded buffer and enforces the limits of gw_config
 * before anything grows. It does no I/O, so unit tests and the fuzzer feed
 * it bytes directly.
 *
 * The happy path for one request:
 *   1. on_message_begin: the per-request state is reset; on_begin tells the
 *      owner (which starts the head timeout).
 *   2. on_url, on_header_field, on_header_value append to `head` as
 *      "url\0name\0value\0...", recording offsets; pieces of one field may
 *      arrive over many reads.
 *   3. on_headers_complete: offsets become gw_header pointers, the declared
 *      body size and Expect are checked, and on_head tells the owner, which
 *      usually pauses the parser until the handler wants the body.
 *   4. on_body: body bytes pass through to the owner, counted against
 *      body_size_max (chunked bodies have no declared size).
 *   5. on_message_complete: on_complete; the owner pauses until the response
 *      is written (one request at a time per connection), then parses on.
 *
 * Possible failure modes, each final for the connection (state ERROR):
 * - target over url_size_max: 414;
 * - head over head_size_max or more than header_count_max headers: 431;
 * - declared body over body_size_max: 413 before any body byte is read; a
 *   chunked body that runs past it: 413 at that byte;
 * - Expect other than 100-continue: 417;
 * - anything libhttp-parser refuses (bad request line, bad chunk, both
 *   Content-Length and chunked, ...): 400 with its description;
 * - HTTP/2 preface or a version other than 1.x: 505.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw_int.h"

static struct gw__parse *parse_of(http_parser *parser)
{
    struct gw__parse *parse = parser->data;

    CN_ASSERT(parse != NULL);
    return parse;
}

/* Stops parsing with status. Callbacks return what this returns: -1 is an
 * error for every libhttp-parser callback (1 would mean "skip the body" from
 * on_headers_complete). */
static int refuse(struct gw__parse *parse, int status, const char *reason)
{
    CN_ASSERT(status >= 400);
    if (parse->status == 0) {
        parse->status = status;
        parse->reason = reason;
    }
    return -1;
}

static int on_message_begin(http_parser *parser)
{
    struct gw__parse *parse = parse_of(parser);

    CN_ASSERT(parse->state == GW__PARSE_IDLE || parse->state == GW__PARSE_DONE);
    parse->state = GW__PARSE_HEAD;
    cn_buf_reset(&parse->head);
    parse->url_size = 0;
    parse->field_size = 0;
    parse->url_done = false;
    parse->in_value = false;
    parse->header_count = 0;
    parse->body_size = 0;
    parse->cbs->on_begin(parse);
    return 0;
}

/* Appends head bytes; the buffer was sized at init, so this never grows it. */
static void head_append(struct gw__parse *parse, const char *at, size_t len)
{
    CN_ASSERT(parse->head.len + len <= parse->head.cap);
    memcpy(parse->head.base + parse->head.len, at, len);
    parse->head.len += len;
}

static int on_url(http_parser *parser, const char *at, size_t len)
{
    struct gw__parse *parse = parse_of(parser);

    CN_ASSERT(!parse->url_done);
    if (parse->url_size + len > parse->config->url_size_max) {
        return refuse(parse, 414, "request target too long");
    }
    if (parse->url_size + len > parse->config->head_size_max) {
        return refuse(parse, 431, "request head too large");
    }
    head_append(parse, at, len);
    parse->url_size += len;
    return 0;
}

/* Writes the NUL that ends the target, the previous name or value. */
static void head_terminate(struct gw__parse *parse)
{
    head_append(parse, "", 1);
}

/* Trailers of a chunked body: counted against the head limit, not kept. */
static int on_trailer(struct gw__parse *parse, size_t len)
{
    if (parse->url_size + parse->field_size + len > parse->config->head_size_max) {
        return refuse(parse, 431, "request trailers too large");
    }
    parse->field_size += len;
    return 0;
}

static int on_header_field(http_parser *parser, const char *at, size_t len)
{
    struct gw__parse *parse = parse_of(parser);

    if (parse->state == GW__PARSE_BODY) {
        return on_trailer(parse, len);
    }
    if (parse->url_size + parse->field_size + len > parse->config->head_size_max) {
        return refuse(parse, 431, "request head too large");
    }
    if (!parse->url_done) {
        head_terminate(parse);
        parse->url_done = true;
    }
    if (parse->header_count == 0 || parse->in_value) {
        /* A new header begins. */
        if (parse->header_count == parse->config->header_count_max) {
            return refuse(parse, 431, "too many request headers");
        }
        if (parse->in_value) {
            head_terminate(parse);
        }
        parse->spans[parse->header_count].name_offset = (uint32_t)parse->head.len;
        parse->spans[parse->header_count].value_offset = UINT32_MAX;
        parse->header_count++;
        parse->in_value = false;
    }
    head_append(parse, at, len);
    parse->field_size += len;
    return 0;
}

static int on_header_value(http_parser *parser, const char *at, size_t len)
{
    struct gw__parse *parse = parse_of(parser);
    struct gw__span *span;

    if (parse->state == GW__PARSE_BODY) {
        return on_trailer(parse, len);
    }
    CN_ASSERT(parse->header_count > 0);
    if (parse->url_size + parse->field_size + len > parse->config->head_size_max) {
        return refuse(parse, 431, "request head too large");
    }
    span = &parse->spans[parse->header_count - 1];
    if (!parse->in_value) {
        head_terminate(parse);
        span->value_offset = (uint32_t)parse->head.len;
        parse->in_value = true;
    }
    head_append(parse, at, len);
    parse->field_size += len;
    return 0;
}

/* Turns the recorded offsets into pointers; the buffer no longer moves. */
static void head_resolve(struct gw__parse *parse)
{
    const char *base;
    unsigned i;

    if (!parse->url_done) {
        head_terminate(parse);
        parse->url_done = true;
    }
    if (parse->header_count > 0) {
        struct gw__span *last = &parse->spans[parse->header_count - 1];
        if (!parse->in_value) {
            head_terminate(parse); /* A name without a value: an empty value. */
            last->value_offset = (uint32_t)parse->head.len;
        }
        head_terminate(parse);
    }
    base = (const char *)parse->head.base;
    for (i = 0; i < parse->header_count; i++) {
        parse->headers[i].name = base + parse->spans[i].name_offset;
        parse->headers[i].value = base + parse->spans[i].value_offset;
    }
}

static int on_headers_complete(http_parser *parser)
{
    struct gw__parse *parse = parse_of(parser);
    const char *expect;
    int64_t length;

    CN_ASSERT(parse->state == GW__PARSE_HEAD);
    head_resolve(parse);
    if (parser->http_major != 1) {
        return refuse(parse, 505, "only HTTP/1.x is served");
    }
    length = gw__parse_content_length(parse);
    if (length > 0 && (uint64_t)length > parse->config->body_size_max) {
        return refuse(parse, 413, "declared body size over the limit");
    }
    expect = gw__parse_header(parse, "Expect");
    if (expect != NULL && strcasecmp(expect, "100-continue") != 0) {
        return refuse(parse, 417, "only Expect: 100-continue is understood");
    }
    parse->state = GW__PARSE_BODY;
    parse->cbs->on_head(parse);
    return 0;
}

static int on_body(http_parser *parser, const char *at, size_t len)
{
    struct gw__parse *parse = parse_of(parser);

    CN_ASSERT(parse->state == GW__PARSE_BODY);
    CN_ASSERT(len > 0);
    if (parse->body_size + len > parse->config->body_size_max) {
        return refuse(parse, 413, "body over the size limit");
    }
    parse->body_size += len;
    parse->cbs->on_body(parse, (const uint8_t *)at, len);
    return 0;
}

static int on_message_complete(http_parser *parser)
{
    struct gw__parse *parse = parse_of(parser);

    CN_ASSERT(parse->state == GW__PARSE_BODY);
    parse->state = GW__PARSE_DONE;
    parse->cbs->on_complete(parse);
    return 0;
}

static const http_parser_settings parse_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void gw__parse_init(struct gw__parse *parse,
                    const struct gw_config *config,
                    const struct gw__parse_cbs *cbs,
                    void *data)
{
    int rv;

    CN_ASSERT(config->header_count_max > 0);
    CN_ASSERT(config->url_size_max <= config->head_size_max);
    memset(parse, 0, sizeof(*parse));
    http_parser_init(&parse->parser, HTTP_REQUEST);
    parse->parser.data = parse;
    parse->config = config;
    parse->cbs = cbs;
    parse->data = data;
    parse->state = GW__PARSE_IDLE;
    cn_buf_init(&parse->head);
    /* Room for every byte the limits allow plus the NULs: never grows. */
    rv = cn_buf_reserve(&parse->head, config->head_size_max + 2 * config->header_count_max + 2);
    CN_ASSERT(rv == 0);
    parse->spans = cn_xcalloc(config->header_count_max, sizeof(*parse->spans));
    parse->headers = cn_xcalloc(config->header_count_max, sizeof(*parse->headers));
}

void gw__parse_close(struct gw__parse *parse)
{
    cn_buf_close(&parse->head);
    free(parse->spans);
    free(parse->headers);
    parse->spans = NULL;
    parse->headers = NULL;
}

/* The status for a libhttp-parser error that no callback of ours caused. */
static void refuse_parser_error(struct gw__parse *parse, enum http_errno err)
{
    if (err == HPE_HEADER_OVERFLOW) {
        refuse(parse, 431, "request head too large");
    } else if (err >= HPE_CB_message_begin && err <= HPE_CB_chunk_complete) {
        refuse(parse, 500, "request parsing failed");
    } else {
        refuse(parse, 400, http_errno_description(err));
    }
}

int gw__parse_feed(struct gw__parse *parse, const uint8_t *data, size_t len, size_t *consumed)
{
    enum http_errno err;

    CN_ASSERT(len > 0);
    CN_ASSERT(parse->state != GW__PARSE_ERROR);
    CN_ASSERT(!gw__parse_paused(parse));
    *consumed = http_parser_execute(&parse->parser, &parse_settings, (const char *)data, len);
    CN_ASSERT(*consumed <= len);
    err = HTTP_PARSER_ERRNO(&parse->parser);
    if (err == HPE_OK || err == HPE_PAUSED) {
        return 0;
    }
    parse->state = GW__PARSE_ERROR;
    refuse_parser_error(parse, err); /* Keeps our own status if a callback refused. */
    return parse->status == 413 ? CAIRN_ETOOBIG : CAIRN_EPROTO;
}

void gw__parse_pause(struct gw__parse *parse)
{
    http_parser_pause(&parse->parser, 1);
}

void gw__parse_resume(struct gw__parse *parse)
{
    if (gw__parse_paused(parse)) {
        http_parser_pause(&parse->parser, 0);
    }
}

bool gw__parse_paused(const struct gw__parse *parse)
{
    return HTTP_PARSER_ERRNO(&parse->parser) == HPE_PAUSED;
}

const char *gw__parse_url(const struct gw__parse *parse)
{
    CN_ASSERT(parse->url_done);
    return (const char *)parse->head.base;
}

const char *gw__parse_method(const struct gw__parse *parse)
{
    return http_method_str((enum http_method)parse->parser.method);
}

int64_t gw__parse_content_length(const struct gw__parse *parse)
{
    if (parse->parser.flags & F_CHUNKED) {
        return -1;
    }
    if (parse->parser.content_length == ULLONG_MAX) {
        return 0; /* No Content-Length: a request without a body. */
    }
    /* libhttp-parser refuses lengths that overflow; 2^63 is still over any limit. */
    return parse->parser.content_length > INT64_MAX ? INT64_MAX
                                                    : (int64_t)parse->parser.content_length;
}

bool gw__parse_keep_alive(const struct gw__parse *parse)
{
    return http_should_keep_alive(&parse->parser) != 0;
}

const char *gw__parse_header(const struct gw__parse *parse, const char *name)
{
    unsigned i;

    for (i = 0; i < parse->header_count; i++) {
        if (strcasecmp(parse->headers[i].name, name) == 0) {
            return parse->headers[i].value;
        }
    }
    return NULL;
}
