/* Fatal signals leave a log line and a backtrace, and the process still dies
 * of the signal. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
static volatile uintptr_t fault_address = 16; /* opaque to the compiler */

__attribute__((noinline)) static void crash_here(void)
{
    *(volatile int *)fault_address = 1;
}

/* Runs a child that installs the report and then faults (or aborts); returns
 * what it wrote to stderr and its wait status. */
static void run_child(int how, char *out, size_t size, int *status)
{
    int fds[2];
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    ASSERT_EQ(pipe(fds), 0);
    pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        if (cn_crash_report_install() != 0) {
            _exit(3);
        }
        if (how == SIGSEGV) {
            crash_here();
        } else {
            CN_ASSERT(how == 0); /* an assertion that fails: abort() */
        }
        _exit(4);
    }
    close(fds[1]);
    while (len + 1 < size && (n = read(fds[0], out + len, size - 1 - len)) > 0) {
        len += (size_t)n;
    }
    out[len] = '\0';
    close(fds[0]);
    ASSERT_EQ(waitpid(pid, status, 0), pid);
}
#endif

TEST(crash, segv_reports_and_still_dies_of_it, NULL, NULL)
{
#ifdef UNDER_ASAN
    ASSERT_OK(cn_crash_report_install()); /* a no-op: AddressSanitizer reports */
#else
    char out[16384];
    int status;

    run_child(SIGSEGV, out, sizeof(out), &status);
    ASSERT_TRUE(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGSEGV);
    ASSERT_TRUE(strstr(out, "msg=\"fatal signal\" signal=11 name=SIGSEGV addr=0x10") != NULL);
    /* At least one frame of the backtrace: "binary(+0x...)[0x...]". */
    ASSERT_TRUE(strstr(out, ")[0x") != NULL);
#endif
}

TEST(crash, failed_assertion_reports_the_abort, NULL, NULL)
{
#ifndef UNDER_ASAN
    char out[16384];
    int status;

    run_child(SIGABRT, out, sizeof(out), &status);
    ASSERT_TRUE(WIFSIGNALED(status));
    ASSERT_EQ(WTERMSIG(status), SIGABRT);
    ASSERT_TRUE(strstr(out, "assertion failed: how == 0") != NULL);
    ASSERT_TRUE(strstr(out, "name=SIGABRT") != NULL);
#endif
}
