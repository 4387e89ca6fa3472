/* The TZif reader (RFC 8536): the version 1 block is checked and skipped,
 * the 64-bit block and the footer kept. Every count is bounded before it
 * sizes anything; every byte read is inside the buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz_impl.h"

#define HDR_LEN 44u
#define TIME_LIMIT (INT64_C(1) << 60) /* |transition| accepted; Debian's earliest is -2^59 */

/* The six counts of a header, in file order. */
typedef struct {
    uint32_t isut, isstd, leap, time, type, chars;
} counts;

typedef struct {
    const uint8_t *p;
    size_t len, at;
    char *why;
    size_t whycap;
} rd;

static int fail(rd *r, const char *msg)
{
    snprintf(r->why, r->whycap, "TZif: %s (at byte %zu)", msg, r->at);
    return -1;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool have(const rd *r, size_t n)
{
    return r->at <= r->len && n <= r->len - r->at;
}

/* A header: magic, a version of '2' or later (or `want` when not 0), counts within bounds. */
static int header(rd *r, char want, char *ver, counts *c)
{
    if (!have(r, HDR_LEN))
        return fail(r, "truncated header");
    const uint8_t *h = r->p + r->at;
    if (memcmp(h, "TZif", 4) != 0)
        return fail(r, "not a TZif file (bad magic)");
    if (h[4] == 0)
        return fail(r, "version 1 only: no 64-bit data");
    if (h[4] < '2' || h[4] > '9' || (want && h[4] != want))
        return fail(r, "unknown or inconsistent version");
    *ver = (char)h[4];
    c->isut = be32(h + 20), c->isstd = be32(h + 24), c->leap = be32(h + 28);
    c->time = be32(h + 32), c->type = be32(h + 36), c->chars = be32(h + 40);
    if (c->type == 0 || c->type > UG_TZ_TYPES_MAX || c->chars == 0 || c->chars > 4096)
        return fail(r, "type or designation count out of bounds");
    if ((c->isut != 0 && c->isut != c->type) || (c->isstd != 0 && c->isstd != c->type))
        return fail(r, "indicator count differs from the type count");
    if (c->time > UG_TZ_TRANS_MAX)
        return fail(r, "too many transitions");
    if (c->leap > 0)
        return fail(r, "leap seconds are not supported (a right/ zone?)");
    r->at += HDR_LEN;
    return 0;
}

/* The size of a data block whose times take tsize bytes (counts bounded, so no overflow). */
static size_t block_len(const counts *c, size_t tsize)
{
    return (size_t)c->time * (tsize + 1) + (size_t)c->type * 6 + c->chars + (size_t)c->leap * (tsize + 4) +
           c->isstd + c->isut;
}

/* Types: offsets within bounds, isdst 0 or 1, designations inside the pool
 * and NUL-terminated; indicators 0 or 1, UT only with standard. */
static int types(rd *r, ug_tz *z, const counts *c, const uint8_t *tt, const uint8_t *chars, const uint8_t *isstd,
                 const uint8_t *isut)
{
    if (chars[c->chars - 1] != 0)
        return fail(r, "designations not NUL-terminated");
    for (uint32_t i = 0; i < c->type; i++) {
        int32_t off = (int32_t)be32(tt + 6 * i);
        if (off < -UG_TZ_OFF_MAX || off > UG_TZ_OFF_MAX || tt[6 * i + 4] > 1 || tt[6 * i + 5] >= c->chars)
            return fail(r, "time type out of bounds");
        bool std = c->isstd ? isstd[i] : 0, ut = c->isut ? isut[i] : 0;
        if ((c->isstd && isstd[i] > 1) || (c->isut && isut[i] > 1) || (ut && !std))
            return fail(r, "bad standard/UT indicator");
        z->off[i] = off;
        z->dst[i] = tt[6 * i + 4];
    }
    z->ntypes = c->type;
    return 0;
}

static int transitions(rd *r, ug_tz *z, const counts *c, const uint8_t *times, const uint8_t *idx)
{
    for (uint32_t i = 0; i < c->time; i++) {
        int64_t t = be64(times + 8 * (size_t)i);
        if (t < -TIME_LIMIT || t > TIME_LIMIT || (i > 0 && t <= z->trans[i - 1]))
            return fail(r, "transition times out of range or not ascending");
        if (idx[i] >= c->type)
            return fail(r, "transition names a missing type");
        z->trans[i] = t;
        z->type[i] = idx[i];
    }
    z->ntrans = c->time;
    return 0;
}

/* The footer: '\n', a POSIX TZ string of printable ASCII, '\n', end of file. */
static int footer(rd *r, ug_tz *z)
{
    if (!have(r, 2) || r->p[r->at] != '\n')
        return fail(r, "missing footer");
    size_t s = r->at + 1, e = s;
    while (e < r->len && r->p[e] != '\n' && e - s <= UG_TZ_FOOTER_MAX) {
        if (r->p[e] < 0x20 || r->p[e] > 0x7e)
            return fail(r, "footer not printable ASCII");
        e++;
    }
    if (e >= r->len || r->p[e] != '\n')
        return fail(r, "footer unterminated or too long");
    if (e + 1 != r->len)
        return fail(r, "bytes after the footer");
    if (e == s)
        return 0;
    char why[160];
    if (ug_tz_rule_parse(&z->rule, (const char *)r->p + s, e - s, why, sizeof why) != 0) {
        r->at = s;
        return fail(r, why);
    }
    z->has_rule = true;
    return 0;
}

ug_tz *ug_tz_parse(const uint8_t *buf, size_t len, char *why, size_t whycap)
{
    rd r = {.p = buf, .len = len, .why = why, .whycap = whycap};
    counts c1, c2;
    char v1, v2;
    if (len > UG_TZ_FILE_MAX) {
        snprintf(why, whycap, "TZif: larger than %u bytes", UG_TZ_FILE_MAX);
        return NULL;
    }
    if (header(&r, 0, &v1, &c1) != 0)
        return NULL;
    if (!have(&r, block_len(&c1, 4))) {
        fail(&r, "truncated version 1 data");
        return NULL;
    }
    r.at += block_len(&c1, 4);
    if (header(&r, v1, &v2, &c2) != 0)
        return NULL;
    if (!have(&r, block_len(&c2, 8))) {
        fail(&r, "truncated 64-bit data");
        return NULL;
    }
    ug_tz *z = calloc(1, sizeof *z + (size_t)c2.time * 9);
    if (!z) {
        snprintf(why, whycap, "TZif: out of memory");
        return NULL;
    }
    z->trans = (int64_t *)(z + 1);
    z->type = (uint8_t *)(z->trans + c2.time);
    const uint8_t *d = buf + r.at, *idx = d + 8 * (size_t)c2.time, *tt = idx + c2.time;
    const uint8_t *chars = tt + 6 * (size_t)c2.type, *isstd = chars + c2.chars, *isut = isstd + c2.isstd;
    if (transitions(&r, z, &c2, d, idx) != 0 || types(&r, z, &c2, tt, chars, isstd, isut) != 0) {
        free(z);
        return NULL;
    }
    r.at += block_len(&c2, 8);
    if (footer(&r, z) != 0) {
        free(z);
        return NULL;
    }
    return z;
}
