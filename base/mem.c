/*
 * Allocation for daemon bookkeeping: abort on out-of-memory (STYLE §10c).
 * Data-path buffers come from pools instead, and libcairn uses plain malloc
 * and returns CAIRN_ENOMEM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn.h"

_Noreturn void cn__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

static void *check(void *ptr, size_t size)
{
    if (ptr == NULL && size != 0) {
        fprintf(stderr, "out of memory allocating %zu bytes\n", size);
        abort();
    }
    return ptr;
}

void *cn_xmalloc(size_t size)
{
    return check(malloc(size), size);
}

void *cn_xcalloc(size_t count, size_t size)
{
    return check(calloc(count, size), count * size);
}

void *cn_xrealloc(void *ptr, size_t size)
{
    return check(realloc(ptr, size), size);
}

char *cn_xstrdup(const char *s)
{
    size_t len = strlen(s) + 1;

    return memcpy(cn_xmalloc(len), s, len);
}
