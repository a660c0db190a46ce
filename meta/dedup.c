/*
 * The request ids a group remembers, held in memory as well: a hash set
 * (is this id remembered?) and a min-heap by (time, id) (which ids leave the
 * dedup window first). It mirrors the group's 'R' table exactly: loaded from
 * the store when the group opens and after a restore, and changed only by a
 * written apply (apply.c). So
 *   - a new request id, what nearly every apply carries, costs no store
 *     read that would miss (a retry still reads its outcome from the store);
 *   - the window needs no time-ordered index in the store: one key per
 *     remembered id, not two, and one delete when it is forgotten, not two
 *     (docs/benchmarks.md).
 *
 * Determinism: the prune takes the heap's minimum by (time, id), the order
 * the store's old 'r' index had. It is a function of the set of ids alone,
 * whatever order they were added in, so a replica that loaded its ids from
 * the store forgets the same ones as a replica that applied them. The set's
 * hash is keyed at random per process (ids come from proposers): it places
 * ids in memory and never decides an outcome.
 *
 * Memory (pattern (c): cn_xmalloc, the daemon's bookkeeping): 24 bytes of
 * heap and 17 of set slot, at a load of at most 1/2, per remembered id, so
 * 60-120 bytes each; the count is the group's commands per dedup window (a
 * group applying 1000 commands/s for the 10-minute window holds 600k ids,
 * 36-72 MB). The store holds the same ids and their outcomes.
 *
 * Possible failure modes: loading meets a malformed 'R' record
 * (CAIRN_ECORRUPT) or a store error (CAIRN_EIO); out of memory aborts.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "meta_int.h"

static_assert(sizeof(((struct meta__dedup *)0)->hash_key) == crypto_shorthash_KEYBYTES,
              "dedup hash key");

#define DEDUP_SLOTS_MIN 64u

void meta__dedup_init(struct meta__dedup *d)
{
    *d = (struct meta__dedup){0};
    CN_ASSERT(sodium_init() >= 0);
    randombytes_buf(d->hash_key, sizeof(d->hash_key));
}

void meta__dedup_clear(struct meta__dedup *d)
{
    free(d->heap);
    free(d->ids);
    free(d->used);
    d->heap = NULL;
    d->ids = NULL;
    d->used = NULL;
    d->count = 0;
    d->cap = 0;
    d->set_count = 0;
    d->slot_count = 0;
}

void meta__dedup_close(struct meta__dedup *d)
{
    meta__dedup_clear(d);
}

/* ---- The set ---- */

static size_t id_home(const struct meta__dedup *d, const uint8_t *id)
{
    uint8_t h[crypto_shorthash_BYTES];

    crypto_shorthash(h, id, META_REQUEST_ID_SIZE, d->hash_key);
    return (size_t)cn_get_u64(h) & (d->slot_count - 1);
}

/* The slot holding id, or the empty one where it belongs. */
static size_t id_slot(const struct meta__dedup *d, const uint8_t *id)
{
    size_t mask = d->slot_count - 1;

    CN_ASSERT(d->slot_count > 0);
    for (size_t i = id_home(d, id);; i = (i + 1) & mask) {
        if (!d->used[i] || memcmp(d->ids[i], id, META_REQUEST_ID_SIZE) == 0) {
            return i;
        }
    }
}

static void set_grow(struct meta__dedup *d)
{
    uint8_t(*old_ids)[META_REQUEST_ID_SIZE] = d->ids;
    uint8_t *old_used = d->used;
    size_t old_count = d->slot_count;

    d->slot_count = old_count == 0 ? DEDUP_SLOTS_MIN : old_count * 2;
    d->ids = cn_xmalloc(d->slot_count * sizeof(*d->ids));
    d->used = cn_xcalloc(d->slot_count, 1);
    for (size_t i = 0; i < old_count; i++) {
        if (old_used[i]) {
            size_t s = id_slot(d, old_ids[i]);
            memcpy(d->ids[s], old_ids[i], META_REQUEST_ID_SIZE);
            d->used[s] = 1;
        }
    }
    free(old_ids);
    free(old_used);
}

static void set_add(struct meta__dedup *d, const uint8_t *id)
{
    size_t s;

    if (2 * (d->set_count + 1) > d->slot_count) {
        set_grow(d);
    }
    s = id_slot(d, id);
    CN_ASSERT(!d->used[s]); /* the caller looked it up first */
    memcpy(d->ids[s], id, META_REQUEST_ID_SIZE);
    d->used[s] = 1;
    d->set_count++;
}

/* Linear probing's deletion: later members of the run move back into the
 * hole unless their home lies cyclically in (hole, member]. */
static void set_remove(struct meta__dedup *d, const uint8_t *id)
{
    size_t mask = d->slot_count - 1;
    size_t hole = id_slot(d, id);

    CN_ASSERT(d->used[hole]);
    d->used[hole] = 0;
    d->set_count--;
    for (size_t j = (hole + 1) & mask; d->used[j]; j = (j + 1) & mask) {
        size_t home = id_home(d, d->ids[j]);
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);

        if (!stays) {
            memcpy(d->ids[hole], d->ids[j], META_REQUEST_ID_SIZE);
            d->used[hole] = 1;
            d->used[j] = 0;
            hole = j;
        }
    }
}

bool meta__dedup_has(const struct meta__dedup *d, const uint8_t *id)
{
    return d->set_count > 0 && d->used[id_slot(d, id)];
}

/* ---- The heap ---- */

static bool entry_less(const struct meta__dedup_entry *a, const struct meta__dedup_entry *b)
{
    if (a->time_ms != b->time_ms) {
        return a->time_ms < b->time_ms;
    }
    return memcmp(a->id, b->id, META_REQUEST_ID_SIZE) < 0;
}

static void heap_swap(struct meta__dedup *d, size_t i, size_t j)
{
    struct meta__dedup_entry t = d->heap[i];

    d->heap[i] = d->heap[j];
    d->heap[j] = t;
}

static void sift_down(struct meta__dedup *d, size_t i)
{
    for (;;) {
        size_t least = i, l = 2 * i + 1, r = 2 * i + 2;

        if (l < d->count && entry_less(&d->heap[l], &d->heap[least])) {
            least = l;
        }
        if (r < d->count && entry_less(&d->heap[r], &d->heap[least])) {
            least = r;
        }
        if (least == i) {
            return;
        }
        heap_swap(d, i, least);
        i = least;
    }
}

static void heap_append(struct meta__dedup *d, const uint8_t *id, uint64_t time_ms)
{
    if (d->count == d->cap) {
        d->cap = d->cap == 0 ? 64 : d->cap * 2;
        d->heap = cn_xrealloc(d->heap, d->cap * sizeof(*d->heap));
    }
    d->heap[d->count].time_ms = time_ms;
    memcpy(d->heap[d->count].id, id, META_REQUEST_ID_SIZE);
    d->count++;
}

static void heap_push(struct meta__dedup *d, const uint8_t *id, uint64_t time_ms)
{
    size_t i;

    heap_append(d, id, time_ms);
    for (i = d->count - 1; i > 0 && entry_less(&d->heap[i], &d->heap[(i - 1) / 2]);
         i = (i - 1) / 2) {
        heap_swap(d, i, (i - 1) / 2);
    }
}

void meta__dedup_add(struct meta__dedup *d, const uint8_t *id, uint64_t time_ms)
{
    set_add(d, id);
    heap_push(d, id, time_ms);
}

const struct meta__dedup_entry *meta__dedup_oldest(const struct meta__dedup *d)
{
    return d->count > 0 ? &d->heap[0] : NULL;
}

void meta__dedup_take_oldest(struct meta__dedup *d, struct meta__dedup_entry *out)
{
    CN_ASSERT(d->count > 0);
    *out = d->heap[0];
    d->heap[0] = d->heap[--d->count];
    sift_down(d, 0);
}

void meta__dedup_put_back(struct meta__dedup *d, const struct meta__dedup_entry *entry)
{
    heap_push(d, entry->id, entry->time_ms);
}

void meta__dedup_forget(struct meta__dedup *d, const uint8_t *id)
{
    set_remove(d, id);
}

/* ---- Loading ---- */

int meta__dedup_load(struct meta_sm *sm)
{
    struct meta__dedup *d = &sm->dedup;
    Cairn__Cmd__Outcome *outcome;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *k, *v;
    size_t k_len, v_len;
    int rv = 0, close_rv;

    meta__dedup_clear(d);
    meta__key_init(&prefix, sm, META__T_REQUEST);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &k_len);
        v = meta__iter_value(&iter, &v_len);
        outcome = cairn__cmd__outcome__unpack(NULL, v_len, v);
        if (outcome == NULL || k_len != prefix.len + META_REQUEST_ID_SIZE) {
            meta_record_free(outcome);
            rv = cn_errmsgf(sm->errmsg, CAIRN_ECORRUPT, "malformed request id record");
            break;
        }
        set_add(d, k + prefix.len);
        heap_append(d, k + prefix.len, outcome->time_ms);
        meta_record_free(outcome);
    }
    close_rv = meta__iter_close(&iter, sm);
    rv = rv != 0 ? rv : close_rv;
    if (rv != 0) {
        meta__dedup_clear(d);
        return rv;
    }
    for (size_t i = d->count / 2; i > 0; i--) {
        sift_down(d, i - 1);
    }
    return 0;
}

int meta__dedup_check(struct meta_sm *sm, char *errmsg)
{
    const struct meta__dedup *d = &sm->dedup;
    struct meta__iter iter;
    struct meta__key prefix;
    const uint8_t *k;
    size_t k_len, found = 0;
    int rv = 0, close_rv;

    for (size_t i = 1; i < d->count; i++) {
        if (entry_less(&d->heap[i], &d->heap[(i - 1) / 2])) {
            return cn_errmsgf(errmsg, CAIRN_ECORRUPT, "request ids: heap out of order at %zu", i);
        }
    }
    meta__key_init(&prefix, sm, META__T_REQUEST);
    meta__iter_init(&iter, sm, &prefix, NULL);
    for (; meta__iter_valid(&iter); meta__iter_next(&iter)) {
        k = meta__iter_key(&iter, &k_len);
        if (k_len != prefix.len + META_REQUEST_ID_SIZE || !meta__dedup_has(d, k + prefix.len)) {
            rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT, "request id in the store, not in memory");
            break;
        }
        found++;
    }
    close_rv = meta__iter_close(&iter, sm);
    rv = rv != 0 ? rv : close_rv;
    if (rv == 0 && (found != d->set_count || found != d->count)) {
        rv = cn_errmsgf(errmsg, CAIRN_ECORRUPT,
                        "request ids: %zu in memory (%zu by time), %zu in the store", d->set_count,
                        d->count, found);
    }
    return rv;
}
