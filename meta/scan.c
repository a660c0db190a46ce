/*
 * Scans over a group's whole tables, for background work on the group's
 * leader (repair and rebalance walk the chunk index page by page).
 */
#include <string.h>

#include "meta_int.h"

int meta_list_chunks(struct meta_sm *sm,
                     const uint8_t *after,
                     uint32_t limit,
                     meta_chunk_cb cb,
                     void *data,
                     bool *more)
{
    struct meta__iter iter;
    struct meta__key prefix, start;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    uint32_t count = 0;
    int rv = 0, close_rv;

    *more = false;
    meta__key_init(&prefix, sm, META__T_CHUNK);
    meta__iter_init(&iter, sm, &prefix, NULL);
    if (after != NULL) {
        start = prefix;
        meta__key_bytes(&start, after, META_CHUNK_ID_SIZE);
        rocksdb_iter_seek(iter.it, (const char *)start.bytes, start.len);
        k = meta__iter_valid(&iter) ? meta__iter_key(&iter, &k_len) : NULL;
        if (k != NULL && k_len == start.len && memcmp(k, start.bytes, k_len) == 0) {
            meta__iter_next(&iter); /* after it, not from it */
        }
    }
    for (; rv == 0 && meta__iter_valid(&iter); meta__iter_next(&iter)) {
        Cairn__Cmd__Chunk *chunk;

        if (count == limit) {
            *more = true;
            break;
        }
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        if (k_len != prefix.len + META_CHUNK_ID_SIZE) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "chunk key of %zu bytes", k_len);
            break;
        }
        chunk = cairn__cmd__chunk__unpack(NULL, v_len, v);
        if (chunk == NULL) {
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "chunk record of %zu bytes", v_len);
            break;
        }
        rv = cb(data, chunk);
        cairn__cmd__chunk__free_unpacked(chunk, NULL);
        count++;
    }
    close_rv = meta__iter_close(&iter, sm);
    return rv != 0 ? rv : close_rv;
}
