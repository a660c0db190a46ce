/*
 * Fatal signals: a last log line and a backtrace before the process dies.
 *
 * A daemon that dies of SIGSEGV says nothing by default, and one that aborts
 * on a libraft or libuv assertion says little more: its peers only see the
 * connection drop. cn_crash_report_install() makes every such death leave
 * "level=error msg=\"fatal signal\" signal=11 addr=0x..." and the return
 * addresses (binary(+offset), for addr2line -f -e BINARY OFFSET) on stderr.
 *
 * The handler runs on its own stack (a stack overflow still reports), uses
 * only write(2) and backtrace_symbols_fd() (which writes without malloc once
 * backtrace() was called once, which install does), then restores the default
 * action and raises the signal again: the exit status and any core dump stay
 * what they would have been.
 */
#include <execinfo.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cn.h"

#if defined(__SANITIZE_ADDRESS__)
#define CRASH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CRASH_ASAN 1
#endif
#endif

#ifndef CRASH_ASAN

#define FRAMES_MAX 64

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};

static void put(const char *text)
{
    ssize_t n = write(STDERR_FILENO, text, strlen(text));
    (void)n;
}

/* Decimal or hex into buf (no printf in a signal handler). */
static const char *format_u64(uint64_t v, unsigned base, char *buf, size_t size)
{
    char *p = buf + size - 1;

    *p = '\0';
    do {
        *--p = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0 && p > buf);
    return p;
}

static void crash_handler(int sig, siginfo_t *info, void *context)
{
    void *frames[FRAMES_MAX];
    char num[32];
    int count;

    (void)context;
    put("level=error msg=\"fatal signal\" signal=");
    put(format_u64((uint64_t)sig, 10, num, sizeof(num)));
    put(" name=");
    put(sig == SIGSEGV  ? "SIGSEGV"
        : sig == SIGBUS ? "SIGBUS"
        : sig == SIGILL ? "SIGILL"
        : sig == SIGFPE ? "SIGFPE"
                        : "SIGABRT");
    put(" addr=0x");
    put(format_u64((uint64_t)(uintptr_t)info->si_addr, 16, num, sizeof(num)));
    put(" pid=");
    put(format_u64((uint64_t)getpid(), 10, num, sizeof(num)));
    put("\n");
    count = backtrace(frames, FRAMES_MAX);
    backtrace_symbols_fd(frames, count, STDERR_FILENO);
    signal(sig, SIG_DFL);
    raise(sig);
}

#endif /* !CRASH_ASAN */

int cn_crash_report_install(void)
{
#ifdef CRASH_ASAN
    return 0;
#else
    static uint8_t alt_stack[64 * 1024];
    stack_t ss = {.ss_sp = alt_stack, .ss_size = sizeof(alt_stack), .ss_flags = 0};
    struct sigaction sa;
    void *warm[1];

    backtrace(warm, 1); /* loads libgcc now, not inside the handler */
    if (sigaltstack(&ss, NULL) != 0) {
        return CAIRN_EIO;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < CN_ARRAY_SIZE(fatal_signals); i++) {
        if (sigaction(fatal_signals[i], &sa, NULL) != 0) {
            return CAIRN_EIO;
        }
    }
    return 0;
#endif
}
