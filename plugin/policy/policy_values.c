/* The policy's value parsers (ugpolicy.h, policy_values.h): pure functions of text. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy_values.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Up to maxd decimal digits from s[*i]; 0 digits is a failure. */
static int digits(const char *s, size_t n, size_t *i, size_t maxd, uint64_t *out)
{
    size_t start = *i;
    uint64_t v = 0;
    while (*i < n && is_digit(s[*i]) && *i - start < maxd)
        v = v * 10 + (uint64_t)(s[(*i)++] - '0');
    if (*i == start)
        return -1;
    *out = v;
    return 0;
}

/* "W" or "W.F" with F of 1..maxf digits, no leading zero in W: W and F
 * scaled to maxf decimals. */
static int fixed(const char *s, size_t n, size_t maxw, size_t maxf, uint64_t *whole, uint64_t *frac)
{
    size_t i = 0;
    if (digits(s, n, &i, maxw, whole) != 0 || (i > 1 && s[0] == '0'))
        return -1;
    *frac = 0;
    size_t d = 0;
    if (i < n) {
        if (s[i++] != '.')
            return -1;
        size_t start = i;
        if (digits(s, n, &i, maxf, frac) != 0)
            return -1;
        d = i - start;
    }
    if (i != n)
        return -1;
    for (; d < maxf; d++)
        *frac *= 10;
    return 0;
}

int ug_parse_percent(const char *s, size_t n, uint32_t *bp)
{
    uint64_t w, f;
    if (fixed(s, n, 3, 2, &w, &f) != 0 || w * 100 + f > 10000)
        return -1;
    *bp = (uint32_t)(w * 100 + f);
    return 0;
}

int ug_parse_ppm(const char *s, size_t n, uint32_t *ppm)
{
    uint64_t w, f;
    if (fixed(s, n, 1, 6, &w, &f) != 0 || w * 1000000 + f > 1000000)
        return -1;
    *ppm = (uint32_t)(w * 1000000 + f);
    return 0;
}

int ug_parse_rate(const char *s, size_t n, double *out)
{
    size_t i = 0;
    double v = 0;
    while (i < n && is_digit(s[i]) && i < 12)
        v = v * 10 + (s[i++] - '0');
    if (i == 0)
        return -1;
    if (i < n) {
        if (s[i++] != '.')
            return -1;
        double scale = 1;
        size_t d = 0;
        while (i < n && is_digit(s[i]) && d < 9)
            scale /= 10, v += (s[i++] - '0') * scale, d++;
        if (d == 0 || i != n)
            return -1;
    }
    if (!(v > 0))
        return -1;
    *out = v;
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits_at(const char *s, size_t n, size_t at, size_t count, unsigned *out)
{
    if (at + count > n)
        return false;
    unsigned v = 0;
    for (size_t i = at; i < at + count; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* The zone after the time at s[*i]: 'Z', or +hh:mm / -hh:mm, in seconds. */
static int zone(const char *s, size_t n, size_t *i, int64_t *offset)
{
    unsigned oh, om;
    if (*i < n && (s[*i] == 'Z' || s[*i] == 'z')) {
        (*i)++;
        *offset = 0;
        return 0;
    }
    if (*i >= n || (s[*i] != '+' && s[*i] != '-'))
        return -1;
    int sign = s[*i] == '+' ? 1 : -1;
    if (!digits_at(s, n, *i + 1, 2, &oh) || *i + 3 >= n || s[*i + 3] != ':' || !digits_at(s, n, *i + 4, 2, &om) ||
        oh > 23 || om > 59)
        return -1;
    *i += 6;
    *offset = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    return 0;
}

int ug_parse_time(const char *s, size_t n, int64_t *out)
{
    unsigned Y, M, D, h, m, sec;
    if (n < 20 || !digits_at(s, n, 0, 4, &Y) || s[4] != '-' || !digits_at(s, n, 5, 2, &M) || s[7] != '-' ||
        !digits_at(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || !digits_at(s, n, 11, 2, &h) ||
        s[13] != ':' || !digits_at(s, n, 14, 2, &m) || s[16] != ':' || !digits_at(s, n, 17, 2, &sec))
        return -1;
    size_t i = 19;
    if (s[i] == '.') {
        size_t d = 0;
        for (i++; i < n && is_digit(s[i]); i++)
            d++;
        if (d == 0)
            return -1;
    }
    int64_t offset;
    if (zone(s, n, &i, &offset) != 0 || i != n)
        return -1;
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) || h > 23 || m > 59 || sec > 60)
        return -1;
    *out = days_from_civil(Y, M, D) * 86400 + (int64_t)h * 3600 + (int64_t)m * 60 + sec - offset;
    return 0;
}

int ug_parse_target(const char *s, size_t n, ug_target *t)
{
    size_t i = 0;
    t->op = UG_TARGET_EQ;
    if (n >= 2 && s[0] == '<' && s[1] == '=')
        t->op = UG_TARGET_LE, i = 2;
    else if (n >= 1 && s[0] == '<')
        t->op = UG_TARGET_LT, i = 1;
    if (i)
        while (i < n && s[i] == ' ')
            i++;
    return ug_version_parse(&t->v, s + i, n - i) == 0 ? 0 : -1;
}

int ug_target_format(const ug_target *t, char *out, size_t cap)
{
    const char *op = t->op == UG_TARGET_LT ? "<" : t->op == UG_TARGET_LE ? "<=" : "";
    size_t l = strlen(op);
    if (cap <= l)
        return -1;
    memcpy(out, op, l);
    return ug_version_format(&t->v, out + l, cap - l);
}

int ug_parse_uid(const char *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    uint64_t v;
    /* 19 digits < 2^64: no overflow */
    if (n == 0 || n > 19 || s[0] == '0' || digits(s, n, &i, 19, &v) != 0 || i != n || v > (uint64_t)UG_UID_MAX)
        return -1;
    *out = v;
    return 0;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

int ug_parse_region(const char *s, size_t n, char out[UG_REGION_MAX + 1])
{
    if (n != 2 && (n < 4 || n > UG_REGION_MAX))
        return -1;
    if (!is_alpha(s[0]) || !is_alpha(s[1]) || (n > 2 && s[2] != '-'))
        return -1;
    for (size_t i = 3; i < n; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]))
            return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = upper(s[i]);
    out[n] = '\0';
    return 0;
}

/* ---- redis addresses ------------------------------------------------------ */

static bool host_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

/* HOST[:PORT] at s[*i], up to one of the stop bytes or the end; into ep
 * (may be NULL; port 6379 when absent). */
static int host_port(const char *s, size_t n, size_t *i, bool need_port, ug_redis_endpoint *ep, const char **why)
{
    size_t start = *i, hs, he;
    if (*i < n && s[*i] == '[') {
        size_t j = *i + 1; /* the address inside is the resolver's to judge */
        while (j < n && (is_digit(s[j]) || strchr(":.abcdefABCDEF", s[j])))
            j++;
        if (j == n || s[j] != ']' || j - start < 3)
            return *why = "bad [IPv6] host", -1;
        hs = start + 1, he = j;
        *i = j + 1;
    } else {
        while (*i < n && host_char(s[*i]))
            (*i)++;
        if (*i == start || *i - start > 253)
            return *why = "no host", -1;
        hs = start, he = *i;
    }
    uint64_t port = 6379;
    if (*i < n && s[*i] == ':') {
        size_t p = ++*i;
        if (digits(s, n, i, 5, &port) != 0 || port < 1 || port > 65535 || (s[p] == '0'))
            return *why = "port must be 1..65535", -1;
    } else if (need_port) {
        return *why = "every sentinel needs a :PORT", -1;
    }
    if (ep) {
        memcpy(ep->host, s + hs, he - hs);
        ep->host[he - hs] = '\0';
        ep->port = (unsigned)port;
    }
    return 0;
}

/* An optional "/DB" at s[*i]. */
static int db_number(const char *s, size_t n, size_t *i, unsigned *out, const char **why)
{
    uint64_t db;
    if (*i == n)
        return 0;
    size_t p = ++*i;
    if (s[p - 1] != '/' || digits(s, n, i, 5, &db) != 0 || db > 65535 || (*i - p > 1 && s[p] == '0') || *i != n)
        return *why = "a database must be /0../65535 at the end", -1;
    *out = (unsigned)db;
    return 0;
}

int ug_parse_redis_url(const char *s, size_t n, ug_redis_url *out, const char **why)
{
    ug_redis_url u;
    memset(&u, 0, sizeof u);
    *why = "expected redis://HOST[:PORT][/DB], unix:///PATH or sentinel://HOST:PORT[,HOST:PORT]/MASTER[/DB]";
    if (n >= UG_URL_TEXT_MAX)
        return *why = "longer than 511 bytes", -1;
    if (memchr(s, '@', n))
        return *why = "credentials in the address: put the password in password_file", -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return *why = "spaces, control or non-ASCII bytes in the address", -1;
    size_t i;
    if (n > 8 && memcmp(s, "redis://", 8) == 0) {
        i = 8;
        u.kind = UG_REDIS_TCP;
        if (host_port(s, n, &i, false, &u.sentinels[0], why) != 0 || db_number(s, n, &i, &u.db, why) != 0)
            return -1;
    } else if (n > 7 && memcmp(s, "unix://", 7) == 0) {
        if (s[7] != '/' || n <= 8 || s[n - 1] == '/')
            return *why = "unix:///PATH needs an absolute socket path", -1;
        u.kind = UG_REDIS_UNIX;
        memcpy(u.path, s + 7, n - 7);
    } else if (n > 11 && memcmp(s, "sentinel://", 11) == 0) {
        i = 11;
        u.kind = UG_REDIS_SENTINEL;
        for (;;) {
            if (u.nsentinels == UG_SENTINELS_MAX)
                return *why = "at most 16 sentinels", -1;
            if (host_port(s, n, &i, true, &u.sentinels[u.nsentinels++], why) != 0)
                return -1;
            if (i < n && s[i] == ',') {
                i++;
                continue;
            }
            break;
        }
        if (i == n || s[i] != '/')
            return *why = "sentinel:// needs /MASTER after the sentinels", -1;
        size_t m = ++i;
        while (i < n && (host_char(s[i])))
            i++;
        if (i == m || i - m > 64)
            return *why = "sentinel:// needs /MASTER ([A-Za-z0-9._-]{1,64})", -1;
        memcpy(u.master, s + m, i - m);
        if (db_number(s, n, &i, &u.db, why) != 0)
            return -1;
    } else {
        return -1;
    }
    if (out)
        *out = u;
    return 0;
}
