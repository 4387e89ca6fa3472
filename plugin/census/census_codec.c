/* Fleet: a bucket's sketch in the census's own format, and the merge of
 * another tracker's. Little endian:
 *   "UGC1", p (10..12), flags (1: the "other" bucket), 0,
 *   u32 the sender's slot (Unix time / 600),
 *   ver, plat, chan, region: each a length byte then that many bytes,
 *   u32 n, then n items u32: register << 16 | rank << 11 | age in slots,
 *   registers ascending, at most K items each, ages at most 1008.
 * Ages, not stamps: a receiver whose clock differs re-dates them. */
#include <stdio.h>
#include <string.h>

#include "census_impl.h"

#define MAGIC "UGC1"
#define HEAD 12u

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static ug_census_bucket *nth_used(ug_census *c, size_t i)
{
    for (unsigned k = 0; k < c->nbmax; k++)
        if (c->b[k].used && i-- == 0)
            return &c->b[k];
    return NULL;
}

static int export_locked(ug_census *c, uint64_t now, size_t i, uint8_t *out, size_t cap, size_t *len)
{
    ug_census_bucket *b = nth_used(c, i);
    if (!b || cap < HEAD + 4 * 40 + 4)
        return -1;
    uint32_t cur = ug_census_slot_of(now);
    memcpy(out, MAGIC, 4);
    out[4] = b->sk.p, out[5] = b->other, out[6] = out[7] = 0;
    put32(out + 8, (uint32_t)(now / UG_CENSUS_SLOT));
    size_t at = HEAD;
    const char *f[4] = {b->key.ver, b->key.plat, b->key.chan, b->key.region};
    for (int k = 0; k < 4; k++) {
        size_t n = strlen(f[k]);
        out[at++] = (uint8_t)n;
        memcpy(out + at, f[k], n);
        at += n;
    }
    size_t count_at = at;
    uint32_t n = 0;
    at += 4;
    for (uint32_t j = 0; j < 1u << b->sk.p; j++) {
        ug_census_entry e[UG_CENSUS_K];
        unsigned m = ug_census_sk_get(&b->sk, j, e);
        for (unsigned k = 0; k < m; k++) {
            unsigned age = ug_census_age(e[k], cur);
            if (age > UG_CENSUS_AGE_MAX)
                continue;
            if (at + 4 > cap)
                return -1;
            put32(out + at, j << 16 | ug_census_rank(e[k]) << UG_CENSUS_STAMP_BITS | age);
            at += 4, n++;
        }
    }
    put32(out + count_at, n);
    *len = at;
    return 0;
}

int ug_census_export(ug_census *c, uint64_t now, size_t i, uint8_t *out, size_t cap, size_t *len)
{
    pthread_mutex_lock(&c->lock);
    int rc = export_locked(c, now, i, out, cap, len);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

typedef struct {
    uint8_t p;
    bool other;
    int64_t shift; /* slots to add to every age: the receiver's clock minus the sender's */
    ug_census_text key;
    const uint8_t *items;
    uint32_t n;
} blob;

static int bad(char *why, size_t whycap, const char *what)
{
    snprintf(why, whycap, "census merge: %s", what);
    return -1;
}

static int parse_key(const uint8_t *buf, size_t len, size_t *at, ug_census_text *t, char *why, size_t whycap)
{
    char *dst[4] = {t->ver, t->plat, t->chan, t->region};
    static const size_t max[4] = {UG_VER_MAX, UG_PLAT_MAX, UG_CHAN_MAX, UG_CENSUS_REGION_MAX};
    for (int k = 0; k < 4; k++) {
        if (*at >= len || buf[*at] > max[k] || len - *at - 1 < buf[*at])
            return bad(why, whycap, "key field too long or truncated");
        size_t n = buf[(*at)++];
        for (size_t i = 0; i < n; i++)
            if (buf[*at + i] < 0x20 || buf[*at + i] > 0x7e)
                return bad(why, whycap, "key field not printable ASCII");
        memcpy(dst[k], buf + *at, n);
        dst[k][n] = '\0';
        *at += n;
    }
    return 0;
}

/* Every item: registers ascending, at most K each, ranks 1..31, ages in the week. */
static int parse_items(const blob *x, char *why, size_t whycap)
{
    uint32_t prev = 0, run = 0;
    for (uint32_t i = 0; i < x->n; i++) {
        uint32_t v = get32(x->items + 4 * (size_t)i), j = v >> 16;
        unsigned rank = (v >> UG_CENSUS_STAMP_BITS) & 31u, age = v & UG_CENSUS_STAMP_MASK;
        if (j >= 1u << x->p || rank == 0 || age > UG_CENSUS_AGE_MAX || (i > 0 && j < prev))
            return bad(why, whycap, "item out of range or out of order");
        run = i > 0 && j == prev ? run + 1 : 1;
        if (run > UG_CENSUS_K)
            return bad(why, whycap, "more than 8 entries in a register");
        prev = j;
    }
    return 0;
}

static int parse(const uint8_t *buf, size_t len, uint64_t now, blob *x, char *why, size_t whycap)
{
    if (len < HEAD || memcmp(buf, MAGIC, 4) != 0)
        return bad(why, whycap, "not a census sketch (magic)");
    if (buf[4] < UG_CENSUS_P_MIN || buf[4] > UG_CENSUS_P || buf[5] > 1 || buf[6] || buf[7])
        return bad(why, whycap, "bad precision or flags");
    x->p = buf[4];
    x->other = buf[5];
    x->shift = (int64_t)(now / UG_CENSUS_SLOT) - (int64_t)get32(buf + 8);
    if (x->shift < -(int64_t)UG_CENSUS_AGE_FUTURE)
        return bad(why, whycap, "the sender's clock is over an hour ahead");
    size_t at = HEAD;
    if (parse_key(buf, len, &at, &x->key, why, whycap) != 0)
        return -1;
    if (x->other && (x->key.ver[0] || x->key.plat[0] || x->key.chan[0] || x->key.region[0]))
        return bad(why, whycap, "the other bucket with a key");
    if (!x->other && ug_census_ver_text(x->key.ver, sizeof x->key.ver) != 0)
        return bad(why, whycap, "the key's version does not parse");
    if (len - at < 4)
        return bad(why, whycap, "truncated item count");
    x->n = get32(buf + at);
    at += 4;
    if (x->n > (1u << x->p) * UG_CENSUS_K || (len - at) / 4 != x->n || (len - at) % 4)
        return bad(why, whycap, "item count does not match the length");
    x->items = buf + at;
    return parse_items(x, why, whycap);
}

/* The blob's registers as a sketch of our clock's stamps. */
static int load(const blob *x, uint32_t cur, ug_census_sketch *t)
{
    for (uint32_t i = 0; i < x->n;) {
        uint32_t j = get32(x->items + 4 * (size_t)i) >> 16;
        ug_census_entry e[UG_CENSUS_K];
        unsigned n = 0;
        for (; i < x->n && get32(x->items + 4 * (size_t)i) >> 16 == j; i++) {
            uint32_t v = get32(x->items + 4 * (size_t)i);
            int64_t age = (int64_t)(v & UG_CENSUS_STAMP_MASK) + x->shift;
            if (age > UG_CENSUS_AGE_MAX)
                continue;
            uint32_t stamp = age < 0 ? cur : (uint32_t)(cur - (uint32_t)age);
            e[n++] = ug_census_make((v >> UG_CENSUS_STAMP_BITS) & 31u, stamp);
        }
        n = ug_census_reg_norm(e, n, cur);
        if (n && ug_census_sk_put(t, j, e, n) != 0)
            return -1;
    }
    return 0;
}

int ug_census_merge(ug_census *c, uint64_t now, const uint8_t *buf, size_t len, char *why, size_t whycap)
{
    blob x;
    if (parse(buf, len, now, &x, why, whycap) != 0)
        return -1;
    uint32_t cur = ug_census_slot_of(now);
    ug_census_sketch t = {.p = x.p};
    if (load(&x, cur, &t) != 0) {
        ug_census_sk_clear(&t);
        return bad(why, whycap, "out of memory");
    }
    pthread_mutex_lock(&c->lock);
    ug_census_bucket *b = x.other ? &c->b[0] : ug_census_bucket_of(c, &x.key, ug_census_key_hash(&x.key));
    size_t before = ug_census_sk_bytes(&b->sk);
    int rc = ug_census_sk_union(&b->sk, &t, cur);
    ug_census_account(c, before, b);
    if (rc == 0)
        c->merged++;
    ug_census_fit(c);
    pthread_mutex_unlock(&c->lock);
    ug_census_sk_clear(&t);
    return rc == 0 ? 0 : bad(why, whycap, "out of memory");
}
