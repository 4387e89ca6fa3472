/* The POSIX TZ string of a TZif footer ("CET-1CEST,M3.5.0,M10.5.0/3") and
 * the periods it makes: two transitions a year, computed on demand. */
#include <stdio.h>
#include <string.h>

#include "civil.h"
#include "tz_impl.h"

#define NAME_MAX_LEN 16u
#define RULE_HOURS_MAX 167 /* RFC 8536 version 3: rule times -167h..167h */

typedef struct {
    const char *s;
    size_t n, i;
} cur;

static bool at_end(const cur *c)
{
    return c->i >= c->n;
}

static char peek(const cur *c)
{
    return at_end(c) ? '\0' : c->s[c->i];
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

/* A designation: three or more letters, or <...> of letters, digits, '+' and '-'. */
static int name(cur *c)
{
    size_t start = c->i;
    if (peek(c) == '<') {
        c->i++;
        while (is_alpha(peek(c)) || is_digit(peek(c)) || peek(c) == '+' || peek(c) == '-')
            c->i++;
        size_t len = c->i - start - 1;
        if (peek(c) != '>' || len < 3 || len > NAME_MAX_LEN)
            return -1;
        c->i++;
        return 0;
    }
    while (is_alpha(peek(c)))
        c->i++;
    return c->i - start >= 3 && c->i - start <= NAME_MAX_LEN ? 0 : -1;
}

/* Up to `digits` digits (at least one) as a number no more than max. */
static int number(cur *c, unsigned digits, unsigned max, unsigned *out)
{
    unsigned v = 0, k = 0;
    while (k < digits && is_digit(peek(c)))
        v = v * 10 + (unsigned)(c->s[c->i++] - '0'), k++;
    if (k == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh at most max_hours, in seconds (the sign as written). */
static int hms(cur *c, unsigned max_hours, int32_t *out)
{
    int sign = 1;
    if (peek(c) == '+' || peek(c) == '-')
        sign = c->s[c->i++] == '-' ? -1 : 1;
    unsigned h, m = 0, s = 0;
    if (number(c, 3, max_hours, &h) != 0)
        return -1;
    if (peek(c) == ':') {
        c->i++;
        if (number(c, 2, 59, &m) != 0)
            return -1;
        if (peek(c) == ':') {
            c->i++;
            if (number(c, 2, 59, &s) != 0)
                return -1;
        }
    }
    *out = sign * (int32_t)(h * 3600 + m * 60 + s);
    return 0;
}

static int date(cur *c, ug_tz_date *d)
{
    unsigned a, b, e;
    if (peek(c) == 'J') {
        c->i++;
        if (number(c, 3, 365, &a) != 0 || a < 1)
            return -1;
        *d = (ug_tz_date){.kind = UG_TZ_DATE_JULIAN1, .n = (uint16_t)a};
    } else if (peek(c) == 'M') {
        c->i++;
        if (number(c, 2, 12, &a) != 0 || a < 1 || peek(c) != '.')
            return -1;
        c->i++;
        if (number(c, 1, 5, &b) != 0 || b < 1 || peek(c) != '.')
            return -1;
        c->i++;
        if (number(c, 1, 6, &e) != 0)
            return -1;
        *d = (ug_tz_date){.kind = UG_TZ_DATE_MWD, .m = (uint8_t)a, .w = (uint8_t)b, .d = (uint8_t)e};
    } else {
        if (number(c, 3, 365, &a) != 0)
            return -1;
        *d = (ug_tz_date){.kind = UG_TZ_DATE_JULIAN0, .n = (uint16_t)a};
    }
    d->time = 7200;
    if (peek(c) == '/') {
        c->i++;
        return hms(c, RULE_HOURS_MAX, &d->time);
    }
    return 0;
}

static int bad(char *why, size_t whycap, const cur *c, const char *what)
{
    snprintf(why, whycap, "TZ string \"%.*s\": %s at offset %zu", (int)c->n, c->s, what, c->i);
    return -1;
}

int ug_tz_rule_parse(ug_tz_rule *r, const char *s, size_t len, char *why, size_t whycap)
{
    cur c = {.s = s, .n = len};
    int32_t west;
    memset(r, 0, sizeof *r);
    if (name(&c) != 0)
        return bad(why, whycap, &c, "bad standard time name");
    if (hms(&c, 24, &west) != 0)
        return bad(why, whycap, &c, "bad standard offset");
    r->std_off = -west;
    if (at_end(&c))
        return 0;
    if (name(&c) != 0)
        return bad(why, whycap, &c, "bad daylight time name");
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (peek(&c) != ',') {
        if (hms(&c, 24, &west) != 0)
            return bad(why, whycap, &c, "bad daylight offset");
        r->dst_off = -west;
    }
    if (peek(&c) != ',')
        return bad(why, whycap, &c, "daylight time without a rule");
    c.i++;
    if (date(&c, &r->start) != 0 || peek(&c) != ',')
        return bad(why, whycap, &c, "bad rule start");
    c.i++;
    if (date(&c, &r->end) != 0)
        return bad(why, whycap, &c, "bad rule end");
    if (!at_end(&c))
        return bad(why, whycap, &c, "trailing characters");
    return 0;
}

/* The day (since 1970-01-01) a rule's date falls on in year y. */
static int64_t date_day(const ug_tz_date *d, int64_t y)
{
    int64_t jan1 = ug_civil_days(y, 1, 1);
    if (d->kind == UG_TZ_DATE_JULIAN1)
        return jan1 + d->n - 1 + (ug_civil_leap(y) && d->n >= 60);
    if (d->kind == UG_TZ_DATE_JULIAN0)
        return jan1 + d->n;
    int64_t first = ug_civil_days(y, d->m, 1);
    int64_t next = d->m == 12 ? ug_civil_days(y + 1, 1, 1) : ug_civil_days(y, d->m + 1u, 1);
    int64_t day = first + (d->d + 7 - ug_civil_wday(first)) % 7 + 7 * (int64_t)(d->w - 1);
    while (day >= next)
        day -= 7;
    return day;
}

typedef struct {
    int64_t t;
    bool to_dst;
} edge;

/* Sorts by time; at a tie the switch to standard time goes first, so a
 * rule whose DST ends as the next one starts (DST all year) stays in DST. */
static void sort_edges(edge *e, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && (e[j].t < e[j - 1].t || (e[j].t == e[j - 1].t && !e[j].to_dst && e[j - 1].to_dst));
             j--) {
            edge tmp = e[j];
            e[j] = e[j - 1];
            e[j - 1] = tmp;
        }
}

/* Periods split where the state does not change are harmless to every
 * caller (they see the same offset on both sides); the rule's edges of
 * five years around t bound the search. */
void ug_tz_rule_period(const ug_tz_rule *r, int64_t t, ug_tz_period *p)
{
    if (!r->has_dst) {
        *p = (ug_tz_period){.start = UG_TZ_BEGIN, .end = UG_TZ_END, .off = r->std_off};
        return;
    }
    int64_t y, first_day = ug_civil_floordiv(t, 86400);
    unsigned m, d;
    ug_civil_date(first_day, &y, &m, &d);
    edge e[10];
    size_t n = 0;
    for (int64_t k = y - 2; k <= y + 2; k++) {
        e[n++] = (edge){date_day(&r->start, k) * 86400 + r->start.time - r->std_off, true};
        e[n++] = (edge){date_day(&r->end, k) * 86400 + r->end.time - r->dst_off, false};
    }
    sort_edges(e, n);
    size_t k = n;
    for (size_t i = 0; i < n; i++)
        if (e[i].t <= t)
            k = i;
    bool dst = k < n ? e[k].to_dst : !e[0].to_dst;
    size_t j = k < n ? k : 0;
    while (k < n && j > 0 && e[j - 1].to_dst == dst)
        j--;
    int64_t start = k < n ? e[j].t : ug_civil_days(y - 3, 1, 1) * 86400;
    int64_t end = ug_civil_days(y + 3, 1, 1) * 86400;
    for (size_t i = k < n ? k + 1 : 0; i < n; i++)
        if (e[i].to_dst != dst && e[i].t > t) {
            end = e[i].t;
            break;
        }
    *p = (ug_tz_period){.start = start, .end = end, .off = dst ? r->dst_off : r->std_off, .dst = dst};
}
