/*
 * Fuzzes request parsing (gateway/parse.c): arbitrary bytes, fed in pieces
 * whose sizes come from the input, with small limits so that every limit is
 * reached, pausing at every body piece and at every message end as the
 * connection does, and reading the parsed head back. Checks that the parser
 * never overruns its bounded head buffer, never reports more body than the
 * limit, and that a refusal always carries a 4xx/5xx status and a reason.
 */
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"

struct state {
    uint64_t body_size;
    unsigned heads;
};

static void on_begin(struct gw__parse *parse)
{
    (void)parse;
}

static void on_head(struct gw__parse *parse)
{
    struct state *state = parse->data;
    unsigned i;

    state->heads++;
    CN_ASSERT(strlen(gw__parse_url(parse)) <= parse->config->url_size_max);
    CN_ASSERT(parse->header_count <= parse->config->header_count_max);
    for (i = 0; i < parse->header_count; i++) {
        CN_ASSERT(strlen(parse->headers[i].name) <= parse->config->head_size_max);
        CN_ASSERT(strlen(parse->headers[i].value) <= parse->config->head_size_max);
    }
    (void)gw__parse_header(parse, "content-length");
    (void)gw__parse_content_length(parse);
    (void)gw__parse_keep_alive(parse);
    (void)gw__parse_method(parse);
    state->body_size = 0;
}

static void on_body(struct gw__parse *parse, const uint8_t *data, size_t len)
{
    struct state *state = parse->data;

    CN_ASSERT(len > 0);
    (void)data[len - 1];
    state->body_size += len;
    CN_ASSERT(state->body_size <= parse->config->body_size_max);
    gw__parse_pause(parse);
}

static void on_complete(struct gw__parse *parse)
{
    gw__parse_pause(parse);
}

static const struct gw__parse_cbs cbs = {on_begin, on_head, on_body, on_complete};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_config config;
    struct gw__parse parse;
    struct state state = {0};
    size_t offset = 1, consumed;
    size_t step;

    if (size < 1) {
        return 0;
    }
    step = (size_t)(data[0] % 16) + 1; /* Piece size: 1..16, or everything for 16 */
    gw_config_init(&config);
    config.url_size_max = 64;
    config.head_size_max = 512;
    config.header_count_max = 8;
    config.body_size_max = 4096;
    gw__parse_init(&parse, &config, &cbs, &state);
    while (offset < size) {
        size_t n = step == 16 ? size - offset : CN_MIN(step, size - offset);
        gw__parse_resume(&parse);
        if (gw__parse_feed(&parse, data + offset, n, &consumed) != 0) {
            CN_ASSERT(parse.status >= 400 && parse.status <= 599);
            CN_ASSERT(parse.reason != NULL);
            break;
        }
        CN_ASSERT(consumed <= n);
        offset += consumed;
    }
    gw__parse_close(&parse);
    return 0;
}
