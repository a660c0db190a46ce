/*
 * A small unit-test runner in the manner of munit: tests register themselves,
 * each may have a fixture (setup returns it, teardown frees it, also after a
 * failed assertion), and the runner prints one line per test and closes with
 * "N passed, N failed".
 *
 *   static void *setup(void) { ... return f; }
 *   static void teardown(void *data) { ... }
 *   TEST(frame, round_trip, setup, teardown) { struct fixture *f = data; ... }
 *
 * Run one suite or test: `test-proto frame` or `test-proto frame/round_trip`.
 * Randomised tests take their seed from cn_test_seed(), printed at start and
 * settable with CAIRN_TEST_SEED=N, so every failure can be replayed.
 */
#ifndef CAIRN_TEST_H
#define CAIRN_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn.h"

struct cn_test {
    const char *suite;
    const char *name;
    void *(*setup)(void);
    void (*teardown)(void *data);
    void (*fn)(void *data);
    struct cn_test *next;
};

void cn_test_register(struct cn_test *test);
_Noreturn void cn_test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The run's seed (CAIRN_TEST_SEED or time-based), printed at start. */
uint64_t cn_test_seed(void);
/* A fresh temporary directory under $TMPDIR, removed with its contents by cn_test_rmdir(). */
char *cn_test_tmpdir(void);
void cn_test_rmdir(const char *path);

#define TEST(suite, name, setup, teardown)                                        \
    static void test_##suite##_##name(void *data);                                \
    static struct cn_test test_reg_##suite##_##name = {                           \
        #suite, #name, setup, teardown, test_##suite##_##name, NULL};             \
    __attribute__((constructor)) static void test_register_##suite##_##name(void) \
    {                                                                             \
        cn_test_register(&test_reg_##suite##_##name);                             \
    }                                                                             \
    static void test_##suite##_##name(void *data __attribute__((unused)))

#define ASSERT_TRUE(expr)                                                 \
    do {                                                                  \
        if (!(expr)) {                                                    \
            cn_test_fail(__FILE__, __LINE__, "expected true: %s", #expr); \
        }                                                                 \
    } while (0)

#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

#define ASSERT_EQ(a, b)                                                                 \
    do {                                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);                             \
        if (a_ != b_) {                                                                 \
            cn_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_); \
        }                                                                               \
    } while (0)

#define ASSERT_NE(a, b)                                                          \
    do {                                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);                      \
        if (a_ == b_) {                                                          \
            cn_test_fail(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, a_); \
        }                                                                        \
    } while (0)

#define ASSERT_CMP(a, op, b)                                                                 \
    do {                                                                                     \
        long long a_ = (long long)(a), b_ = (long long)(b);                                  \
        if (!(a_ op b_)) {                                                                   \
            cn_test_fail(__FILE__, __LINE__, "%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_); \
        }                                                                                    \
    } while (0)

/* rv is 0, else the failure names the CAIRN_E* code. */
#define ASSERT_OK(rv)                                                            \
    do {                                                                         \
        int rv_ = (rv);                                                          \
        if (rv_ != 0) {                                                          \
            cn_test_fail(__FILE__, __LINE__, "%s: %s", #rv, cairn_errname(rv_)); \
        }                                                                        \
    } while (0)

/* rv is the given CAIRN_E* code. */
#define ASSERT_ERR(rv, code)                                                                      \
    do {                                                                                          \
        int rv_ = (rv);                                                                           \
        if (rv_ != (code)) {                                                                      \
            cn_test_fail(__FILE__, __LINE__, "%s: expected %s, got %s", #rv, cairn_errname(code), \
                         cairn_errname(rv_));                                                     \
        }                                                                                         \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                        \
    do {                                                                           \
        const char *a_ = (a), *b_ = (b);                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                     \
            cn_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                         a_ ? a_ : "(null)", b_ ? b_ : "(null)");                  \
        }                                                                          \
    } while (0)

#define ASSERT_MEM_EQ(a, b, len)                                                            \
    do {                                                                                    \
        if (memcmp((a), (b), (len)) != 0) {                                                 \
            cn_test_fail(__FILE__, __LINE__, "%s and %s differ in their %zu bytes", #a, #b, \
                         (size_t)(len));                                                    \
        }                                                                                   \
    } while (0)

#endif /* CAIRN_TEST_H */
