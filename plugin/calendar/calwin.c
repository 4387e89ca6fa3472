/* A window's values as a policy spells them: days, from, to, tz. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "calendar.h"

#define DAYS_TEXT_MAX 64u

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* The weekday named by the 3 bytes at s, or -1. */
static int day_of(const char *s, size_t n)
{
    if (n != 3)
        return -1;
    for (int d = 0; d < 7; d++)
        if (strncasecmp(s, day_names[d], 3) == 0)
            return d;
    return -1;
}

/* One item of the list: "mon" or "mon-fri" (wrapping past sunday). */
static int day_item(const char *s, size_t n, uint8_t *mask)
{
    const char *dash = memchr(s, '-', n);
    int a = day_of(s, dash ? (size_t)(dash - s) : n), b = dash ? day_of(dash + 1, n - (size_t)(dash - s) - 1) : a;
    if (a < 0 || b < 0)
        return -1;
    for (int d = a;; d = (d + 1) % 7) {
        *mask |= (uint8_t)(1u << d);
        if (d == b)
            break;
    }
    return 0;
}

static int parse_days(const char *s, uint8_t *mask, char *why, size_t whycap)
{
    *mask = 0;
    if (!s || strcasecmp(s, "daily") == 0) {
        *mask = 0x7f;
        return 0;
    }
    size_t n = strnlen(s, DAYS_TEXT_MAX + 1);
    if (n == 0 || n > DAYS_TEXT_MAX)
        goto bad;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && s[a] == ' ')
            a++;
        while (b > a && s[b - 1] == ' ')
            b--;
        if (day_item(s + a, b - a, mask) != 0)
            goto bad;
        i = j + 1;
        if (j < n && i == n)
            goto bad; /* a trailing comma */
    }
    return 0;
bad:
    snprintf(why, whycap,
             "days: \"%.*s\" is not a list of days (mon..sun, a range like mon-fri, a list like sat,sun, or daily)",
             (int)DAYS_TEXT_MAX, s);
    return -1;
}

/* "HH:MM" in minutes; 24:00 only where allowed. */
static int parse_hhmm(const char *field, const char *s, bool allow_24, uint16_t *out, char *why, size_t whycap)
{
    if (s && strlen(s) == 5 && s[2] == ':' && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
        s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9') {
        unsigned h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
        unsigned m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
        if (h < 24 || (allow_24 && h == 24 && m == 0)) {
            *out = (uint16_t)(h * 60 + m);
            return 0;
        }
    }
    snprintf(why, whycap, "%s: \"%.8s\" is not a time HH:MM from 00:00 to %s", field, s ? s : "",
             allow_24 ? "24:00" : "23:59");
    return -1;
}

int ug_cal_window_parse(ug_cal_window *w, const char *days, const char *from, const char *to, const char *tz,
                        char *why, size_t whycap)
{
    memset(w, 0, sizeof *w);
    if (parse_days(days, &w->days, why, whycap) != 0 || parse_hhmm("from", from, false, &w->from, why, whycap) != 0 ||
        parse_hhmm("to", to, true, &w->to, why, whycap) != 0)
        return -1;
    if (w->to == w->from) {
        snprintf(why, whycap, "to: equals from, which names no window (a whole day is from: \"00:00\", to: \"24:00\")");
        return -1;
    }
    if (tz && *tz && strcmp(tz, UG_CAL_PEER) != 0 && !ug_tz_name_ok(tz)) {
        snprintf(why, whycap, "tz: \"%.*s\" is not a zone name (UTC, Europe/Berlin, ... or peer)", (int)UG_TZ_NAME_MAX,
                 tz);
        return -1;
    }
    snprintf(w->tz, sizeof w->tz, "%s", tz ? tz : "");
    return 0;
}
