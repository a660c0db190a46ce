/*
 * Small helpers: hex, CRC-32C, fault countdowns and a seeded generator.
 */
#include <isa-l/crc.h>

#include "cn.h"

void cn_hex_encode(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *bytes = data;

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * len] = '\0';
}

int cn_hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int cn_hex_decode(const char *hex, void *out, size_t len)
{
    uint8_t *bytes = out;

    for (size_t i = 0; i < len; i++) {
        int hi = cn_hex_value(hex[2 * i]);
        int lo = hi < 0 ? -1 : cn_hex_value(hex[2 * i + 1]);

        if (lo < 0) {
            return CAIRN_EINVAL;
        }
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[2 * len] == '\0' ? 0 : CAIRN_EINVAL;
}

void cn_clear_upper_vector_state(void)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx")) {
        __asm__ volatile("vzeroupper");
    }
#endif
}

uint32_t cn_crc32c(uint32_t crc, const void *data, size_t len)
{
    /* ISA-L's crc32_iscsi() takes and returns the uninverted register, and an
     * int length: feed it in pieces so no length is truncated. */
    crc = ~crc;
    while (len > 0) {
        size_t piece = CN_MIN(len, (size_t)1 << 30);
        crc = crc32_iscsi((unsigned char *)data, (int)piece, crc);
        data = (const uint8_t *)data + piece;
        len -= piece;
    }
    cn_clear_upper_vector_state();
    return ~crc;
}

void cn_fault_init(struct cn_fault *fault)
{
    fault->countdown = -1;
    fault->repeat = 0;
    fault->hits = 0;
}

void cn_fault_arm(struct cn_fault *fault, int nth, int repeat)
{
    CN_ASSERT(nth >= 1);
    CN_ASSERT(repeat == -1 || repeat >= 1);
    fault->countdown = nth;
    fault->repeat = repeat;
    fault->hits = 0;
}

bool cn_fault_tick(struct cn_fault *fault)
{
    if (fault->countdown < 0) {
        return false;
    }
    if (fault->countdown > 1) {
        fault->countdown--;
        return false;
    }
    if (fault->repeat == 0) {
        return false;
    }
    fault->hits++;
    if (fault->repeat > 0) {
        fault->repeat--;
    }
    return true;
}

int cn_fault_hits(const struct cn_fault *fault)
{
    return fault->hits;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void cn_rand_seed(struct cn_rand *rand, uint64_t seed)
{
    /* splitmix64 spreads one seed over the whole state, never all zero. */
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        rand->s[i] = z ^ (z >> 31);
    }
}

uint64_t cn_rand_next(struct cn_rand *rand)
{
    uint64_t *s = rand->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t cn_rand_below(struct cn_rand *rand, uint64_t bound)
{
    uint64_t limit;
    uint64_t x;

    CN_ASSERT(bound > 0);
    /* Rejection sampling: no modulo bias. */
    limit = UINT64_MAX - UINT64_MAX % bound;
    do {
        x = cn_rand_next(rand);
    } while (x >= limit);
    return x % bound;
}

void cn_rand_fill(struct cn_rand *rand, void *out, size_t len)
{
    uint8_t *bytes = out;

    while (len >= 8) {
        cn_put_u64(bytes, cn_rand_next(rand));
        bytes += 8;
        len -= 8;
    }
    if (len > 0) {
        uint8_t tail[8];
        cn_put_u64(tail, cn_rand_next(rand));
        for (size_t i = 0; i < len; i++) {
            bytes[i] = tail[i];
        }
    }
}
