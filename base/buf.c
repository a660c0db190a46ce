/*
 * Growable byte buffers. Growth doubles, so appends are amortised O(1); every
 * size computation is checked for overflow, since lengths often come from
 * input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn.h"

void cn_buf_init(struct cn_buf *buf)
{
    buf->base = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void cn_buf_close(struct cn_buf *buf)
{
    free(buf->base);
    cn_buf_init(buf);
}

int cn_buf_reserve(struct cn_buf *buf, size_t extra)
{
    size_t need;
    size_t cap;
    uint8_t *base;

    CN_ASSERT(buf->len <= buf->cap);
    if (extra > SIZE_MAX - buf->len) {
        return CAIRN_ETOOBIG;
    }
    need = buf->len + extra;
    if (need <= buf->cap) {
        return 0;
    }
    cap = buf->cap < 64 ? 64 : buf->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    base = realloc(buf->base, cap);
    if (base == NULL) {
        return CAIRN_ENOMEM;
    }
    buf->base = base;
    buf->cap = cap;
    return 0;
}

int cn_buf_append(struct cn_buf *buf, const void *data, size_t len)
{
    int rv = cn_buf_reserve(buf, len);

    if (rv != 0) {
        return rv;
    }
    if (len > 0) {
        memcpy(buf->base + buf->len, data, len);
    }
    buf->len += len;
    return 0;
}

int cn_buf_printf(struct cn_buf *buf, const char *fmt, ...)
{
    va_list args;
    int n;
    int rv;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0) {
        return CAIRN_EINVAL;
    }
    rv = cn_buf_reserve(buf, (size_t)n + 1);
    if (rv != 0) {
        return rv;
    }
    va_start(args, fmt);
    vsnprintf((char *)buf->base + buf->len, (size_t)n + 1, fmt, args);
    va_end(args);
    buf->len += (size_t)n;
    return 0;
}

void cn_buf_consume(struct cn_buf *buf, size_t n)
{
    CN_ASSERT(n <= buf->len);
    memmove(buf->base, buf->base + n, buf->len - n);
    buf->len -= n;
}

void cn_buf_reset(struct cn_buf *buf)
{
    buf->len = 0;
}
