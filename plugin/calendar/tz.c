/* A zone's queries (the period at an instant, a wall-clock reading to an
 * instant) and the loading of zone files by name. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tz_impl.h"

#define SCAN_PERIODS (UG_TZ_TRANS_MAX + 64u) /* periods in a reading's +-27 hours: every transition, and the rule's */

static int64_t clamp(int64_t t)
{
    return t < -UG_TZ_T_MAX ? -UG_TZ_T_MAX : t > UG_TZ_T_MAX ? UG_TZ_T_MAX : t;
}

/* Index of the first transition after t (upper bound). */
static uint32_t after(const ug_tz *z, int64_t t)
{
    uint32_t lo = 0, hi = z->ntrans;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Before the first transition, type 0 holds (RFC 8536 3.2); past the last,
 * the footer's rule when there is one, else the last type; a file without
 * transitions is its rule. */
void ug_tz_period_at(const ug_tz *z, int64_t t, ug_tz_period *p)
{
    t = clamp(t);
    uint32_t i = after(z, t);
    if (i == z->ntrans && z->has_rule) {
        ug_tz_rule_period(&z->rule, t, p);
        if (i > 0 && p->start < z->trans[i - 1])
            p->start = z->trans[i - 1];
        return;
    }
    uint8_t ty = i == 0 ? 0 : z->type[i - 1];
    *p = (ug_tz_period){.start = i == 0 ? UG_TZ_BEGIN : z->trans[i - 1],
                        .end = i == z->ntrans ? UG_TZ_END : z->trans[i],
                        .off = z->off[ty],
                        .dst = z->dst[ty] != 0};
}

int32_t ug_tz_offset(const ug_tz *z, int64_t t)
{
    ug_tz_period p;
    ug_tz_period_at(z, t, &p);
    return p.off;
}

/* Walks the periods that overlap local +-27 hours in time order (any
 * reading's instants lie there: offsets are within 26 hours). First pass:
 * the first period whose wall-clock span holds local names it. Else local
 * is in a gap: between one period's wall-clock end and the next one's
 * start, read with the earlier period's offset. Offsets need not move
 * monotonically (a file may jump forward and back), hence two passes. */
int ug_tz_local_to_utc(const ug_tz *z, int64_t local, int64_t *utc)
{
    if (local < -UG_TZ_T_MAX || local > UG_TZ_T_MAX)
        return -1;
    for (int pass = 0; pass < 2; pass++) {
        ug_tz_period p, q;
        ug_tz_period_at(z, local - 27 * 3600, &p);
        for (unsigned k = 0; k < SCAN_PERIODS; k++) {
            if (pass == 0 && local >= p.start + p.off && local < p.end + p.off) {
                *utc = local - p.off;
                return 0;
            }
            if (p.end >= UG_TZ_END || p.end > local + 27 * 3600)
                break;
            ug_tz_period_at(z, p.end, &q);
            if (pass == 1 && local >= p.end + p.off && local < q.start + q.off) {
                *utc = local - p.off;
                return 0;
            }
            p = q;
        }
    }
    return -1;
}

bool ug_tz_name_ok(const char *name)
{
    size_t n = strnlen(name, UG_TZ_NAME_MAX + 1);
    if (n == 0 || n > UG_TZ_NAME_MAX)
        return false;
    bool start = true;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '/') {
            if (start)
                return false;
            start = true;
            continue;
        }
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '+' || c == '-';
        if (!ok || (start && c == '-'))
            return false;
        start = false;
    }
    return !start;
}

ug_tz *ug_tz_utc(void)
{
    ug_tz *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    z->ntypes = 1;
    snprintf(z->name, sizeof z->name, "UTC");
    return z;
}

/* The whole file, bounded, without blocking on a FIFO. */
static int slurp(const char *path, uint8_t *buf, size_t cap, size_t *len, char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whycap, "%s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > cap) {
        snprintf(why, whycap, "not a regular file of at most %u bytes", UG_TZ_FILE_MAX);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whycap, "%s", strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return 0;
}

ug_tz *ug_tz_load(const char *dir, const char *name, char *why, size_t whycap)
{
    if (!ug_tz_name_ok(name)) {
        snprintf(why, whycap, "time zone \"%.*s\": not a zone name", (int)UG_TZ_NAME_MAX, name);
        return NULL;
    }
    if (strcmp(name, "UTC") == 0)
        return ug_tz_utc();
    char path[4096], sub[256];
    int n = snprintf(path, sizeof path, "%s/%s", dir ? dir : UG_TZ_DIR, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(why, whycap, "time zone %s: path too long", name);
        return NULL;
    }
    uint8_t *buf = malloc(UG_TZ_FILE_MAX + 1);
    size_t len = 0;
    if (!buf) {
        snprintf(why, whycap, "time zone %s: out of memory", name);
        return NULL;
    }
    if (slurp(path, buf, UG_TZ_FILE_MAX + 1, &len, sub, sizeof sub) != 0) {
        snprintf(why, whycap, "time zone %s (%s): %s", name, path, sub);
        free(buf);
        return NULL;
    }
    ug_tz *z = ug_tz_parse(buf, len, sub, sizeof sub);
    free(buf);
    if (!z) {
        snprintf(why, whycap, "time zone %s (%s): %s", name, path, sub);
        return NULL;
    }
    snprintf(z->name, sizeof z->name, "%s", name);
    return z;
}

void ug_tz_free(ug_tz *z)
{
    free(z);
}

const char *ug_tz_name(const ug_tz *z)
{
    return z->name;
}
