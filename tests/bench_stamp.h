/* The first line of every make bench row file: when it ran, on which commit and under what load (issue 27), so
 * a figure quoted from it can be traced and a busy machine's figures told apart. Header-only: bench-mem links no
 * bench_*.o. The Makefile's bench rules export UG_BENCH_COMMIT (git describe --always --dirty). */
#ifndef UG_BENCH_STAMP_H
#define UG_BENCH_STAMP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* /proc/loadavg's three averages (1, 5, 15 min), or "?". */
static inline void bench_loadavg(char *out, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a[3];
    if (f && fscanf(f, "%lf %lf %lf", &a[0], &a[1], &a[2]) == 3)
        snprintf(out, cap, "%.2f %.2f %.2f", a[0], a[1], a[2]);
    else
        snprintf(out, cap, "?");
    if (f)
        fclose(f);
}

/* Prints "what: DATE UTC, commit C, load average L1 L5 L15" on stdout. */
static inline void bench_stamp(const char *what)
{
    char date[40] = "?", load[64];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
    bench_loadavg(load, sizeof load);
    const char *c = getenv("UG_BENCH_COMMIT");
    printf("%s: %s, commit %s, load average %s\n", what, date, c && *c ? c : "unknown", load);
    fflush(stdout);
}

#endif
