/*
 * Logging: one line per event, "ts=... level=... msg=\"...\" key=value ...".
 *
 * The level and sink are process-wide (one of the three exceptions to "no
 * global mutable state", STYLE §11): set them before threads start. A line is
 * formatted into a stack buffer and handed to the sink in one call, so lines
 * from several threads never interleave on stderr.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cn.h"

#define LOG_LINE_SIZE_MAX 2048

static void stderr_sink(void *data, const char *line, size_t len)
{
    (void)data;
    /* One write(2) per line keeps concurrent writers' lines whole. */
    ssize_t n = write(STDERR_FILENO, line, len);
    (void)n;
}

static enum cn_log_level log_level = CN_INFO;
static cn_log_sink log_sink = stderr_sink;
static void *log_sink_data;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void cn_log_set_level(enum cn_log_level level)
{
    CN_ASSERT(level >= CN_DEBUG && level <= CN_OFF);
    log_level = level;
}

enum cn_log_level cn_log_get_level(void)
{
    return log_level;
}

void cn_log_set_sink(cn_log_sink sink, void *data)
{
    log_sink = sink != NULL ? sink : stderr_sink;
    log_sink_data = data;
}

int cn_log_level_parse(const char *text, enum cn_log_level *level)
{
    for (size_t i = 0; i < CN_ARRAY_SIZE(level_names); i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *level = (enum cn_log_level)i;
            return 0;
        }
    }
    return CAIRN_EINVAL;
}

void cn__log(enum cn_log_level level, const char *msg, const char *fmt, ...)
{
    char line[LOG_LINE_SIZE_MAX];
    struct timeval tv;
    struct tm tm;
    size_t len;
    va_list args;
    int n;

    CN_ASSERT(level >= CN_DEBUG && level < CN_OFF);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    len = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + len, sizeof(line) - len, ".%03ldZ level=%s msg=\"%s\"",
                 (long)(tv.tv_usec / 1000), level_names[level], msg);
    len += (size_t)n;
    if (fmt != NULL && fmt[0] != '\0' && len < sizeof(line) - 2) {
        line[len++] = ' ';
        va_start(args, fmt);
        n = vsnprintf(line + len, sizeof(line) - len, fmt, args);
        va_end(args);
        len = n < 0 ? len : CN_MIN(len + (size_t)n, sizeof(line) - 2);
    }
    line[len++] = '\n';
    log_sink(log_sink_data, line, len);
}
