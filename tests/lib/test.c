/*
 * The runner behind test.h. Each test runs in the same process; a failed
 * assertion longjmps back here, the fixture's teardown runs, and the next
 * test starts. A crash (signal) ends the binary, which ctest reports.
 */
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test.h"

static struct cn_test *tests_head;
static struct cn_test **tests_tail = &tests_head;
static jmp_buf fail_jump;
static uint64_t run_seed;

void cn_test_register(struct cn_test *test)
{
    *tests_tail = test;
    tests_tail = &test->next;
}

_Noreturn void cn_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list args;

    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(args, fmt);
    vfprintf(stdout, fmt, args);
    va_end(args);
    fprintf(stdout, "\n");
    longjmp(fail_jump, 1);
}

uint64_t cn_test_seed(void)
{
    return run_seed;
}

char *cn_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = cn_xmalloc(4096);

    snprintf(path, 4096, "%s/cairn-test-XXXXXX", base != NULL ? base : "/tmp");
    CN_ASSERT(mkdtemp(path) != NULL);
    return path;
}

void cn_test_rmdir(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *entry;
    char child[4096];
    struct stat st;

    if (dir == NULL) {
        return;
    }
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) {
            continue;
        }
        snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
        if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) {
            cn_test_rmdir(child);
        } else {
            unlink(child);
        }
    }
    closedir(dir);
    rmdir(path);
}

static bool selected(const struct cn_test *test, int argc, char **argv)
{
    char full[256];

    if (argc < 2) {
        return true;
    }
    snprintf(full, sizeof(full), "%s/%s", test->suite, test->name);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], test->suite) == 0 || strcmp(argv[i], full) == 0) {
            return true;
        }
    }
    return false;
}

/* Runs one test; true if it passed. */
static bool run_one(struct cn_test *test)
{
    static void *volatile data; /* survives the longjmp */
    volatile bool passed = false;

    data = NULL;
    if (setjmp(fail_jump) == 0) {
        data = test->setup != NULL ? test->setup() : NULL;
        test->fn(data);
        passed = true;
    }
    if (test->teardown != NULL && data != NULL) {
        test->teardown(data);
    }
    return passed;
}

int main(int argc, char **argv)
{
    const char *seed_env = getenv("CAIRN_TEST_SEED");
    unsigned passed = 0;
    unsigned failed = 0;

    run_seed = seed_env != NULL ? strtoull(seed_env, NULL, 10) : (uint64_t)time(NULL);
    printf("seed %" PRIu64 " (replay with CAIRN_TEST_SEED=%" PRIu64 ")\n", run_seed, run_seed);
    for (struct cn_test *test = tests_head; test != NULL; test = test->next) {
        if (!selected(test, argc, argv)) {
            continue;
        }
        fflush(stdout);
        if (run_one(test)) {
            printf("ok   %s/%s\n", test->suite, test->name);
            passed++;
        } else {
            printf("FAIL %s/%s\n", test->suite, test->name);
            failed++;
        }
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
