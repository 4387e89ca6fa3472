/* Fleet mode's texts in Redis: key names, grant values, stream events and tracker rows, written and read strictly. */
#include <stdio.h>
#include <string.h>

#include "fleet/fleet_codec.h"

/* What comes back from Redis was written by some tracker's scripts, but a
 * damaged value, another program's key or another version's format must
 * never become a grant: every field is checked against what we write. */

static bool stage_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static bool tracker_char(char c)
{
    return stage_char(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_';
}

static bool version_char(char c)
{
    return (c >= '0' && c <= '9') || c == '.';
}

/* Copies s[0..n) into out (cap bytes with its NUL) when every byte passes ok. */
static int word(const char *s, size_t n, bool (*ok)(char), char *out, size_t cap)
{
    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!ok(s[i]))
            return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* Decimal digits only, no leading zero (except "0"), at most max. */
static int decimal(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits cannot overflow */
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int ug_fleet_uid_parse(const char *s, size_t n, uint64_t *uid)
{
    return decimal(s, n, UG_UID_MAX, uid) == 0 && *uid != 0 ? 0 : -1;
}

static int outcome_parse(const char *s, size_t n, ug_outcome *o)
{
    uint64_t v;
    if (decimal(s, n, UG_OUT_COUNT_ - 1, &v) != 0)
        return -1;
    *o = (ug_outcome)v;
    return 0;
}

static int at_parse(const char *s, size_t n, uint32_t *at)
{
    uint64_t v;
    if (decimal(s, n, UINT32_MAX, &v) != 0)
        return -1;
    *at = (uint32_t)v;
    return 0;
}

int ug_fleet_grant_parse(const char *v, size_t n, ug_fleet_grant *g)
{
    const char *part[4];
    size_t len[4], k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && v[i] != '|')
            continue;
        if (k == 4)
            return -1;
        part[k] = v + start;
        len[k++] = i - start;
        start = i + 1;
    }
    if (k != 4)
        return -1;
    return word(part[0], len[0], stage_char, g->stage, sizeof g->stage) == 0 &&
                   word(part[1], len[1], tracker_char, g->tracker, sizeof g->tracker) == 0 &&
                   at_parse(part[2], len[2], &g->at) == 0 && outcome_parse(part[3], len[3], &g->outcome) == 0
               ? 0
               : -1;
}

int ug_fleet_event_parse(const char *const *f, const size_t *len, size_t nf, ug_fleet_event *e)
{
    enum { K, U, S, A, O, T, NF_ };
    static const char names[NF_] = {'k', 'u', 's', 'a', 'o', 't'};
    const char *val[NF_] = {0};
    size_t vl[NF_] = {0};
    if (nf % 2 != 0 || nf > 2 * NF_)
        return -1;
    for (size_t i = 0; i < nf; i += 2) {
        int which = -1;
        for (int j = 0; j < NF_ && len[i] == 1; j++)
            which = f[i][0] == names[j] ? j : which;
        if (which < 0 || val[which])
            return -1;
        val[which] = f[i + 1];
        vl[which] = len[i + 1];
    }
    memset(e, 0, sizeof *e);
    if (!val[K] || vl[K] != 1 || !val[U] || !val[O] || !val[T] || ug_fleet_uid_parse(val[U], vl[U], &e->uid) != 0 ||
        outcome_parse(val[O], vl[O], &e->g.outcome) != 0 ||
        word(val[T], vl[T], tracker_char, e->g.tracker, sizeof e->g.tracker) != 0)
        return -1;
    if (val[K][0] == 'o')
        return val[S] || val[A] ? -1 : (e->kind = UG_FEV_OUTCOME, 0);
    if (val[K][0] != 'g' || !val[S] || !val[A] || word(val[S], vl[S], stage_char, e->g.stage, sizeof e->g.stage) != 0 ||
        at_parse(val[A], vl[A], &e->g.at) != 0)
        return -1;
    e->kind = UG_FEV_GRANT;
    return 0;
}

int ug_fleet_row_parse(const char *v, size_t n, uint64_t *seconds, bool *up)
{
    const char *bar = memchr(v, '|', n);
    if (!bar || decimal(v, (size_t)(bar - v), UINT32_MAX * UINT64_C(4), seconds) != 0)
        return -1;
    size_t rest = n - (size_t)(bar - v) - 1;
    const char *st = bar + 1, *end = memchr(st, '|', rest);
    size_t sl = end ? (size_t)(end - st) : rest;
    if (sl == 2 && memcmp(st, "up", 2) == 0)
        *up = true;
    else if (sl == 7 && memcmp(st, "stopped", 7) == 0)
        *up = false;
    else
        return -1;
    return 0;
}

int ug_fleet_qkey_parse(const char *k, size_t n, char rollout[UG_NAME_MAX + 1], char to[UG_VER_MAX + 1],
                        char stage[UG_NAME_MAX + 1])
{
    if (n < 4 || memcmp(k, "ug:{", 4) != 0)
        return -1;
    const char *r = k + 4, *end = k + n;
    const char *close = memchr(r, '}', (size_t)(end - r));
    if (!close || close + 1 >= end || close[1] != ':' ||
        word(r, (size_t)(close - r), stage_char, rollout, UG_NAME_MAX + 1) != 0)
        return -1;
    const char *t = close + 2;
    const char *q = memchr(t, ':', (size_t)(end - t));
    if (!q || end - q < 4 || memcmp(q, ":q:", 3) != 0 || word(t, (size_t)(q - t), version_char, to, UG_VER_MAX + 1) != 0)
        return -1;
    return word(q + 3, (size_t)(end - q - 3), stage_char, stage, UG_NAME_MAX + 1);
}

static int fit(int n)
{
    return n > 0 && (size_t)n < UG_FLEET_KEY_MAX ? 0 : -1;
}

int ug_fleet_key_scope(char *out, const char *rollout, const char *to, const char *what)
{
    return fit(snprintf(out, UG_FLEET_KEY_MAX, "ug:{%s}:%s:%s", rollout, to, what));
}

int ug_fleet_key_stage(char *out, const char *rollout, const char *to, const char *stage)
{
    return fit(snprintf(out, UG_FLEET_KEY_MAX, "ug:{%s}:%s:q:%s", rollout, to, stage));
}

int ug_fleet_key_rollout(char *out, const char *rollout, const char *what)
{
    return fit(snprintf(out, UG_FLEET_KEY_MAX, "ug:{%s}:%s", rollout, what));
}

/* The fleet's own keys share one tag no rollout can have ('_' is not in
 * a rollout name): one slot, so a script may touch several. */
int ug_fleet_key_fleet(char *out, const char *what, const char *tracker)
{
    return fit(tracker ? snprintf(out, UG_FLEET_KEY_MAX, "ug:{_fleet}:%s:%s", what, tracker)
                       : snprintf(out, UG_FLEET_KEY_MAX, "ug:{_fleet}:%s", what));
}
