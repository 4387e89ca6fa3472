/* Fleet mode's texts in Redis: key names, grant values, stream events and tracker rows, written and read strictly. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

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

/* Lowercase hex of 64 digits, or nothing, into out. */
static int mac_field(const char *v, size_t vn, char out[UG_FLEET_MAC_HEX + 1])
{
    for (size_t i = 0; i < vn; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            return -1;
    if (vn != 0 && vn != UG_FLEET_MAC_HEX)
        return -1;
    memcpy(out, v, vn);
    out[vn] = '\0';
    return 0;
}

static int gate_cmp(const ug_fleet_gate *a, const ug_fleet_gate *b)
{
    int c = strcmp(a->stage, b->stage);
    return c ? c : a->step < b->step ? -1 : a->step > b->step;
}

/* One "STAGE:STEP:BP:TO" into g; 0 or -1. */
static int gate_parse(const char *v, size_t vn, ug_fleet_gate *g)
{
    const char *end = v + vn, *p[3];
    const char *at = v;
    for (int i = 0; i < 3; i++) {
        p[i] = memchr(at, ':', (size_t)(end - at));
        if (!p[i])
            return -1;
        at = p[i] + 1;
    }
    uint64_t step, bp;
    if (word(v, (size_t)(p[0] - v), stage_char, g->stage, sizeof g->stage) != 0 ||
        decimal(p[0] + 1, (size_t)(p[1] - p[0] - 1), UG_FLEET_STEP_MAX, &step) != 0 ||
        decimal(p[1] + 1, (size_t)(p[2] - p[1] - 1), 10000, &bp) != 0 ||
        word(p[2] + 1, (size_t)(end - p[2] - 1), version_char, g->to, sizeof g->to) != 0)
        return -1;
    g->step = (uint32_t)step, g->bp = (uint32_t)bp;
    return 0;
}

/* The `gates` field: entries in strictly ascending (stage, step) order, so
 * that one list has one text (the gmac is over the text). */
static int gates_field(const char *v, size_t vn, ug_fleet_flags *out)
{
    out->ngates = 0;
    const char *at = v, *end = v + vn;
    for (bool more = vn > 0; more;) {
        const char *comma = memchr(at, ',', (size_t)(end - at));
        const char *stop = comma ? comma : end;
        if (out->ngates == UG_FLEET_GATES_MAX || gate_parse(at, (size_t)(stop - at), &out->gates[out->ngates]) != 0)
            return -1;
        if (out->ngates && gate_cmp(&out->gates[out->ngates - 1], &out->gates[out->ngates]) >= 0)
            return -1;
        out->ngates++;
        more = comma != NULL;
        at = more ? comma + 1 : end;
    }
    return 0;
}

/* One field of the flags hash into out; 0, or -1 when its value is bad. */
static int flag_field(const char *k, size_t kn, const char *v, size_t vn, ug_fleet_flags *out, unsigned *seen)
{
    static const char *const names[] = {"paused", "halted", "why", "at", "held", "shift", "ver", "mac", "gates", "gmac"};
    unsigned which = 0;
    while (which < 10 && !(strlen(names[which]) == kn && memcmp(names[which], k, kn) == 0))
        which++;
    if (which == 10)
        return 0; /* not ours: the MAC covers only what we read */
    if (*seen & (1u << which))
        return -1;
    *seen |= 1u << which;
    uint64_t n = 0;
    if (which <= 1 || (which >= 3 && which <= 6)) {
        if (decimal(v, vn, which <= 1 ? 1 : UINT64_MAX / 2, &n) != 0)
            return -1;
    }
    switch (which) {
    case 0: out->paused = n; return 0;
    case 1: out->halted = n; return 0;
    case 2:
        if (vn > UG_FLEET_WHY_MAX || memchr(v, '\0', vn))
            return -1;
        memcpy(out->why, v, vn);
        out->why[vn] = '\0';
        return 0;
    case 3: out->at = n; return 0;
    case 4: out->held = n; return 0;
    case 5: out->shift = n; return 0;
    case 6: out->ver = n; return 0;
    case 7: return mac_field(v, vn, out->mac);
    case 8: return gates_field(v, vn, out);
    default: return mac_field(v, vn, out->gmac);
    }
}

int ug_fleet_flags_parse(const char *const *f, const size_t *len, size_t nf, ug_fleet_flags *out)
{
    memset(out, 0, sizeof *out);
    unsigned seen = 0;
    if (nf % 2 != 0)
        return -1;
    for (size_t i = 0; i < nf; i += 2)
        if (flag_field(f[i], len[i], f[i + 1], len[i + 1], out, &seen) != 0)
            return -1;
    return 0;
}

void ug_fleet_flags_mac(const uint8_t *key, const char *rollout, const ug_fleet_flags *st,
                        char out[UG_FLEET_MAC_HEX + 1])
{
    char msg[UG_NAME_MAX + UG_FLEET_WHY_MAX + 200];
    int n = snprintf(msg, sizeof msg, "upgate fleet flags v1\n%s\n%llu\n%d\n%d\n%llu\n%llu\n%llu\n%zu:%s", rollout,
                     (unsigned long long)st->ver, st->paused, st->halted, (unsigned long long)st->at,
                     (unsigned long long)st->held, (unsigned long long)st->shift, strlen(st->why), st->why);
    uint8_t h[UG_FLEET_MAC_HEX / 2];
    crypto_generichash(h, sizeof h, (const uint8_t *)msg, n > 0 && (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1,
                       key, 32);
    sodium_bin2hex(out, UG_FLEET_MAC_HEX + 1, h, sizeof h);
}

bool ug_fleet_flags_verify(const uint8_t *key, const char *rollout, const ug_fleet_flags *st)
{
    char want[UG_FLEET_MAC_HEX + 1];
    if (strlen(st->mac) != UG_FLEET_MAC_HEX)
        return false;
    ug_fleet_flags_mac(key, rollout, st, want);
    return sodium_memcmp(want, st->mac, UG_FLEET_MAC_HEX) == 0;
}

void ug_fleet_gates_format(const ug_fleet_flags *st, char *out)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < st->ngates && i < UG_FLEET_GATES_MAX; i++) {
        const ug_fleet_gate *g = &st->gates[i];
        int n = snprintf(out + at, UG_FLEET_GATES_TEXT - at, "%s%s:%u:%u:%s", i ? "," : "", g->stage, g->step, g->bp,
                         g->to);
        if (n < 0 || (size_t)n >= UG_FLEET_GATES_TEXT - at)
            return; /* cannot happen: the text's bound counts every entry's longest */
        at += (size_t)n;
    }
}

void ug_fleet_gates_mac(const uint8_t *key, const char *rollout, const ug_fleet_flags *st,
                        char out[UG_FLEET_MAC_HEX + 1])
{
    static const char ctx[] = "upgate fleet gates v1\n";
    char text[UG_FLEET_GATES_TEXT];
    ug_fleet_gates_format(st, text);
    crypto_generichash_state h;
    uint8_t d[UG_FLEET_MAC_HEX / 2];
    crypto_generichash_init(&h, key, 32, sizeof d);
    crypto_generichash_update(&h, (const uint8_t *)ctx, sizeof ctx - 1);
    crypto_generichash_update(&h, (const uint8_t *)rollout, strlen(rollout) + 1); /* its NUL ends it */
    crypto_generichash_update(&h, (const uint8_t *)text, strlen(text));
    crypto_generichash_final(&h, d, sizeof d);
    sodium_bin2hex(out, UG_FLEET_MAC_HEX + 1, d, sizeof d);
}

bool ug_fleet_gates_verify(const uint8_t *key, const char *rollout, const ug_fleet_flags *st)
{
    char want[UG_FLEET_MAC_HEX + 1];
    if (!st->ngates && !st->gmac[0])
        return true;
    if (strlen(st->gmac) != UG_FLEET_MAC_HEX)
        return false;
    ug_fleet_gates_mac(key, rollout, st, want);
    return sodium_memcmp(want, st->gmac, UG_FLEET_MAC_HEX) == 0;
}

int ug_fleet_gates_add(ug_fleet_flags *st, const ug_fleet_gate *g)
{
    ug_fleet_gate chk = {0};
    char text[UG_NAME_MAX + UG_VER_MAX + 32];
    int n = snprintf(text, sizeof text, "%s:%u:%u:%s", g->stage, g->step, g->bp, g->to);
    if (n < 0 || (size_t)n >= sizeof text || gate_parse(text, (size_t)n, &chk) != 0)
        return -1; /* what we write must read back */
    size_t k = 0;
    for (size_t i = 0; i < st->ngates; i++) /* one release at a time: the older ones' gates are done with */
        if (strcmp(st->gates[i].to, g->to) == 0)
            st->gates[k++] = st->gates[i];
    st->ngates = k;
    size_t at = 0;
    while (at < st->ngates && gate_cmp(&st->gates[at], &chk) < 0)
        at++;
    if (at < st->ngates && gate_cmp(&st->gates[at], &chk) == 0)
        return st->gates[at].bp == chk.bp ? 0 : -1; /* one step, one percentage */
    if (st->ngates == UG_FLEET_GATES_MAX)
        return -1;
    memmove(&st->gates[at + 1], &st->gates[at], (st->ngates - at) * sizeof *st->gates);
    st->gates[at] = chk;
    st->ngates++;
    return 1;
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

/* ---- a tracker's published census ------------------------------------------------ */

static void census_mac(const uint8_t *key, const char *tracker, const uint8_t *body, size_t n, uint8_t out[32])
{
    static const char ctx[] = "upgate fleet census v1\n";
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, 32);
    crypto_generichash_update(&st, (const uint8_t *)ctx, sizeof ctx - 1);
    crypto_generichash_update(&st, (const uint8_t *)tracker, strlen(tracker) + 1); /* its NUL ends the name */
    crypto_generichash_update(&st, body, n);
    crypto_generichash_final(&st, out, 32);
}

void ug_fleet_census_seal(const uint8_t *key, const char *tracker, uint8_t *buf, size_t len)
{
    memcpy(buf, "UGF1", 4);
    memset(buf + 4, 0, 32);
    if (key)
        census_mac(key, tracker, buf + UG_FLEET_CENSUS_HEAD, len - UG_FLEET_CENSUS_HEAD, buf + 4);
}

bool ug_fleet_census_open(const uint8_t *key, const char *tracker, const uint8_t *buf, size_t len)
{
    if (len < UG_FLEET_CENSUS_HEAD || memcmp(buf, "UGF1", 4) != 0)
        return false;
    if (!key)
        return true;
    uint8_t want[32];
    census_mac(key, tracker, buf + UG_FLEET_CENSUS_HEAD, len - UG_FLEET_CENSUS_HEAD, want);
    return sodium_memcmp(want, buf + 4, 32) == 0;
}

int ug_fleet_census_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **rec, size_t *rlen)
{
    if (*off >= len)
        return 0;
    if (len - *off < 4)
        return -1;
    const uint8_t *p = buf + *off;
    size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
    if (n == 0 || n > len - *off - 4)
        return -1;
    *rec = p + 4, *rlen = n;
    *off += 4 + n;
    return 1;
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
