/*
 * Erasure coding: ISA-L Reed-Solomon over GF(2^8) with a Cauchy matrix, for
 * any 1 <= k <= 16 and 0 <= m <= 4.
 *
 * Encode: the (k + m) x k matrix is identity on top (data shards are the
 * chunk's bytes unchanged, so a read of the k data shards needs no decode) and
 * Cauchy below; ISA-L multiplies the data by the m parity rows.
 *
 * Decode: take the first k present shards (data first), invert the k x k
 * matrix of their rows, and multiply the present shards by the inverse's rows
 * of the missing data shards. Every k x k submatrix of a Cauchy-extended
 * identity is invertible, so any k shards do.
 *
 * Possible failure modes: fewer than k shards present, CAIRN_EUNAVAIL.
 */
#include <isa-l/erasure_code.h>
#include <string.h>

#include "stor_int.h"

void stor__ec_init(struct stor__ec *ec, unsigned k, unsigned m)
{
    CN_ASSERT(k >= 1 && k <= STOR_K_MAX);
    CN_ASSERT(m <= STOR_M_MAX);
    ec->k = (uint8_t)k;
    ec->m = (uint8_t)m;
    gf_gen_cauchy1_matrix(ec->matrix, (int)(k + m), (int)k);
    if (m > 0) {
        ec_init_tables((int)k, (int)m, &ec->matrix[k * k], ec->tables);
    }
}

void stor__ec_encode(const struct stor__ec *ec, size_t len, uint8_t **data, uint8_t **parity)
{
    CN_ASSERT(len <= STOR_SHARD_PAYLOAD_MAX);
    if (ec->m == 0 || len == 0) {
        return;
    }
    ec_encode_data((int)len, ec->k, ec->m, (unsigned char *)ec->tables, data, parity);
}

int stor__ec_decode(const struct stor__ec *ec, size_t len, uint8_t *const *present, uint8_t **out)
{
    uint8_t sub[STOR_K_MAX * STOR_K_MAX];
    uint8_t inverse[STOR_K_MAX * STOR_K_MAX];
    uint8_t rows[STOR_K_MAX * STOR_K_MAX];
    uint8_t tables[STOR_K_MAX * STOR_K_MAX * 32];
    uint8_t *sources[STOR_K_MAX];
    uint8_t *targets[STOR_K_MAX];
    unsigned k = ec->k;
    unsigned found = 0;
    unsigned missing = 0;

    for (unsigned i = 0; i < k + ec->m && found < k; i++) {
        if (present[i] != NULL) {
            memcpy(&sub[found * k], &ec->matrix[i * k], k);
            sources[found++] = present[i];
        }
    }
    if (found < k) {
        return CAIRN_EUNAVAIL;
    }
    if (gf_invert_matrix(sub, inverse, (int)k) != 0) {
        return CAIRN_EINTERNAL;
    }
    for (unsigned j = 0; j < k; j++) {
        if (present[j] == NULL) {
            memcpy(&rows[missing * k], &inverse[j * k], k);
            targets[missing++] = out[j];
        }
    }
    if (missing > 0 && len > 0) {
        ec_init_tables((int)k, (int)missing, rows, tables);
        ec_encode_data((int)len, (int)k, (int)missing, tables, sources, targets);
    }
    return 0;
}

int stor__ec_rebuild(
    const struct stor__ec *ec, size_t len, uint8_t *const *present, unsigned index, uint8_t *out)
{
    uint8_t sub[STOR_K_MAX * STOR_K_MAX];
    uint8_t inverse[STOR_K_MAX * STOR_K_MAX];
    uint8_t row[STOR_K_MAX];
    uint8_t tables[STOR_K_MAX * 32];
    uint8_t *sources[STOR_K_MAX];
    unsigned k = ec->k;
    unsigned found = 0;

    CN_ASSERT(index < k + ec->m);
    for (unsigned i = 0; i < k + ec->m && found < k; i++) {
        if (present[i] != NULL) {
            memcpy(&sub[found * k], &ec->matrix[i * k], k);
            sources[found++] = present[i];
        }
    }
    if (found < k) {
        return CAIRN_EUNAVAIL;
    }
    if (gf_invert_matrix(sub, inverse, (int)k) != 0) {
        return CAIRN_EINTERNAL;
    }
    /* sources = sub * data, so shard index = matrix[index] * inverse * sources. */
    for (unsigned j = 0; j < k; j++) {
        uint8_t c = 0;

        for (unsigned l = 0; l < k; l++) {
            c ^= gf_mul(ec->matrix[index * k + l], inverse[l * k + j]);
        }
        row[j] = c;
    }
    if (len > 0) {
        ec_init_tables((int)k, 1, row, tables);
        ec_encode_data((int)len, (int)k, 1, tables, sources, &out);
    }
    return 0;
}
