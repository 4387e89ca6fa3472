/* upgate-node's log lines: RFC 3339 UTC time and level, or a syslog <N> prefix under journald. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "log.h"

static bool journal;

void ug_log_init(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    journal = js && *js;
}

bool ug_log_journal(void)
{
    return journal;
}

/* "2026-12-01T14:44:44.123Z"; the time of the event, not of the write. */
static size_t stamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return k > 0 && (size_t)k < cap - n ? n + (size_t)k : n;
}

static void vlog(ug_log_level level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    static const char syslog_level[] = {'3', '4', '6', '7'};
    unsigned lv = level <= UG_LOG_DEBUG ? (unsigned)level : UG_LOG_DEBUG;
    char line[2048];
    size_t n;
    if (journal) {
        n = (size_t)snprintf(line, sizeof line, "<%c>%s: ", syslog_level[lv], ug_prog);
    } else {
        n = stamp(line, sizeof line);
        n += (size_t)snprintf(line + n, sizeof line - n, " %s %s: ", names[lv], ug_prog);
    }
    if (n >= sizeof line - 2)
        n = sizeof line - 2;
    size_t start = n;
    int k = vsnprintf(line + n, sizeof line - 1 - n, fmt, ap);
    n = k < 0 ? n : (size_t)k < sizeof line - 1 - n ? n + (size_t)k : sizeof line - 2;
    for (size_t i = start; i < n; i++) /* one event, one line */
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = ' ';
    line[n++] = '\n';
    /* one write(2) per line: lines of several threads never interleave */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void ug_log(ug_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

void ug_log_host(void *ctx, ug_log_level level, const char *msg)
{
    (void)ctx;
    ug_log(level, "%s", msg);
}

static void error_hook(const char *msg)
{
    ug_log(UG_LOG_ERROR, "%s", msg);
}

void ug_log_take_errors(void)
{
    ug_msg_hook = error_hook;
}
