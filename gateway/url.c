/*
 * URL helpers for handlers: percent-decoding and query lookup. Pure
 * functions, no allocation: the caller gives the output buffer.
 *
 * Possible failure modes: a '%' not followed by two hex digits, or one that
 * decodes to NUL (which would cut a C string short, and is never a valid
 * file name byte): CAIRN_EINVAL; output too small: CAIRN_ETOOBIG.
 */
#include <string.h>

#include "gw_int.h"

int gw_url_decode(const char *text, size_t len, bool plus_is_space, char *out, size_t out_size)
{
    size_t i, n = 0;

    CN_ASSERT(out_size > 0);
    for (i = 0; i < len; i++) {
        char c = text[i];
        if (c == '%') {
            if (len - i < 3 || cn_hex_value(text[i + 1]) < 0 || cn_hex_value(text[i + 2]) < 0) {
                return CAIRN_EINVAL;
            }
            c = (char)(cn_hex_value(text[i + 1]) * 16 + cn_hex_value(text[i + 2]));
            if (c == '\0') {
                return CAIRN_EINVAL;
            }
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (n + 1 >= out_size) {
            return CAIRN_ETOOBIG;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

int gw_query_get(const char *query, const char *key, char *out, size_t out_size)
{
    size_t key_len = strlen(key);
    const char *p = query;

    CN_ASSERT(key_len > 0);
    while (*p != '\0') {
        const char *end = p + strcspn(p, "&");
        if ((size_t)(end - p) >= key_len && strncmp(p, key, key_len) == 0 &&
            (p + key_len == end || p[key_len] == '=')) {
            const char *value = p + key_len == end ? end : p + key_len + 1;
            return gw_url_decode(value, (size_t)(end - value), true, out, out_size);
        }
        p = *end == '&' ? end + 1 : end;
    }
    return CAIRN_ENOENT;
}
