/* Unix seconds as RFC 3339 UTC: apart from render.c so that programs
 * without jansson (upgate-keys) print times the same way. */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "render.h"

const char *ug_render_time(int64_t t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    /* years past 9999 are not RFC 3339: shown as the number */
    if (t < 0 || t > 253402300799 || !gmtime_r(&tt, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "%" PRId64, t);
    return buf;
}
