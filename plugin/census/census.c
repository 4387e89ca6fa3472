/* The census's life and its hot path: create, free, note (a worker stages
 * a HELLO in its own ring) and the counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census_impl.h"
#include "mix.h"

#define UID_SALT UINT64_C(0x9e3779b97f4a7c15) /* splitmix64's increment: uid 0 does not hash to 0 */

/* The length of s if it is at most max bytes of printable ASCII; else -1. */
static long field_len(const char *s, size_t max)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= max || s[n] < 0x20 || s[n] > 0x7e)
            return -1;
    return (long)n;
}

int ug_census_text_of(const ug_census_key *k, ug_census_text *t)
{
    const char *src[4] = {k->ver, k->plat, k->chan, k->region};
    char *dst[4] = {t->ver, t->plat, t->chan, t->region};
    static const size_t max[4] = {UG_VER_MAX, UG_PLAT_MAX, UG_CHAN_MAX, UG_CENSUS_REGION_MAX};
    for (int i = 0; i < 4; i++) {
        long n = field_len(src[i], max[i]);
        if (n < 0)
            return -1;
        memcpy(dst[i], src[i] ? src[i] : "", (size_t)n);
        dst[i][n] = '\0';
    }
    return 0;
}

/* Eight bytes at a time through splitmix64, each field closed by its length. */
static uint64_t mix_field(uint64_t h, const char *s)
{
    size_t n = strlen(s), i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = ug_mix64(h ^ w);
    }
    uint64_t w = 0;
    memcpy(&w, s + i, n - i);
    return ug_mix64(h ^ w ^ (uint64_t)n << 56);
}

uint64_t ug_census_key_hash(const ug_census_text *t)
{
    uint64_t h = mix_field(mix_field(mix_field(mix_field(UID_SALT, t->ver), t->plat), t->chan), t->region);
    return h ? h : 1;
}

/* Tells tick a key is new to this worker; -1 when its ring is full. */
static int announce(ug_census *c, ug_census_worker *w, uint64_t kh, const ug_census_text *t)
{
    uint64_t a = atomic_load_explicit(&w->ahead, memory_order_relaxed);
    if (a - atomic_load_explicit(&w->atail, memory_order_acquire) >= UG_CENSUS_ANNOUNCE)
        return -1;
    (void)c;
    w->ann[a % UG_CENSUS_ANNOUNCE] = (ug_census_announce){.kh = kh, .key = *t};
    atomic_store_explicit(&w->ahead, a + 1, memory_order_release);
    return 0;
}

static void bump(_Atomic uint64_t *v)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1, memory_order_relaxed);
}

void ug_census_note(ug_census *c, unsigned worker, const ug_census_key *k, uint64_t uid, uint64_t now)
{
    ug_census_worker *w = &c->w[worker];
    ug_census_text t;
    if (ug_census_text_of(k, &t) != 0) {
        bump(&w->bad_key);
        return;
    }
    uint64_t kh = ug_census_key_hash(&t), ep = atomic_load_explicit(&c->epoch, memory_order_relaxed);
    if (ep != w->epoch) {
        memset(w->seen, 0, sizeof w->seen);
        w->epoch = ep;
    }
    uint64_t *seen = &w->seen[kh % UG_CENSUS_SEEN];
    if (*seen != kh && announce(c, w, kh, &t) == 0)
        *seen = kh;
    uint64_t head = atomic_load_explicit(&w->head, memory_order_relaxed);
    if (head - w->tail_seen > c->ring_mask) {
        w->tail_seen = atomic_load_explicit(&w->tail, memory_order_acquire);
        if (head - w->tail_seen > c->ring_mask) {
            bump(&w->dropped);
            return;
        }
    }
    uint64_t h = ug_mix64(uid + UID_SALT);
    w->ring[head & c->ring_mask] =
        (ug_census_staged){.kh = kh, .h = (h & ~(uint64_t)UG_CENSUS_STAMP_MASK) | ug_census_slot_of(now)};
    atomic_store_explicit(&w->head, head + 1, memory_order_release);
}

static int check_opts(const ug_census_opts *o, unsigned *nb, size_t *budget, unsigned *ring, char *why,
                      size_t whycap)
{
    *nb = o->max_buckets ? o->max_buckets : UG_CENSUS_BUCKETS;
    *budget = o->budget ? o->budget : UG_CENSUS_BUDGET;
    *ring = o->ring ? o->ring : UG_CENSUS_RING;
    size_t floor = ((size_t)*nb + 1) * (((size_t)1 << UG_CENSUS_P_MIN) * UG_CENSUS_K * sizeof(ug_census_entry) +
                                        sizeof(ug_census_bucket) + 8);
    if (o->nworkers < 1 || o->nworkers > 256)
        snprintf(why, whycap, "census: nworkers %u (1 to 256)", o->nworkers);
    else if (*nb > UG_CENSUS_BUCKETS_MAX)
        snprintf(why, whycap, "census: max_buckets %u (at most %u)", *nb, UG_CENSUS_BUCKETS_MAX);
    else if (*ring < 1024 || *ring > (1u << 22) || (*ring & (*ring - 1)))
        snprintf(why, whycap, "census: ring %u (a power of two, 1024 to 4194304)", *ring);
    else if (*budget < floor)
        snprintf(why, whycap, "census: budget %zu bytes under the %zu that %u buckets take at precision %u", *budget,
                 floor, *nb, UG_CENSUS_P_MIN);
    else
        return 0;
    return -1;
}

ug_census *ug_census_create(const ug_census_opts *o, char *why, size_t whycap)
{
    unsigned nb, ring;
    size_t budget;
    if (check_opts(o, &nb, &budget, &ring, why, whycap) != 0)
        return NULL;
    ug_census *c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->nworkers = o->nworkers;
    c->ring_mask = ring - 1;
    c->budget = budget;
    c->nbmax = nb + 1;
    for (c->index_mask = 15; c->index_mask + 1 < 2 * c->nbmax; c->index_mask = c->index_mask * 2 + 1)
        ;
    c->w = aligned_alloc(64, sizeof *c->w * c->nworkers);
    c->b = calloc(c->nbmax, sizeof *c->b);
    c->index = calloc((size_t)c->index_mask + 1, sizeof *c->index);
    if (!c->w || !c->b || !c->index)
        goto oom;
    memset(c->w, 0, sizeof *c->w * c->nworkers);
    for (unsigned i = 0; i < c->nworkers; i++)
        if (!(c->w[i].ring = malloc(sizeof *c->w[i].ring * ring)))
            goto oom;
    c->fixed = sizeof *c->b * c->nbmax + sizeof *c->index * ((size_t)c->index_mask + 1);
    c->bytes = c->fixed;
    c->b[0] = (ug_census_bucket){.used = true, .other = true, .sk = {.p = UG_CENSUS_P}};
    c->nb = 1;
    return c;
oom:
    snprintf(why, whycap, "census: out of memory");
    ug_census_free(c);
    return NULL;
}

void ug_census_free(ug_census *c)
{
    if (!c)
        return;
    for (unsigned i = 0; c->b && i < c->nbmax; i++)
        ug_census_sk_clear(&c->b[i].sk);
    for (unsigned i = 0; c->w && i < c->nworkers; i++)
        free(c->w[i].ring);
    free(c->w);
    free(c->b);
    free(c->index);
    free(c);
}

void ug_census_stats_get(ug_census *c, ug_census_stats *s)
{
    *s = (ug_census_stats){.other = c->other, .buckets = c->nb, .evicted = c->evicted, .folds = c->folds,
                           .bytes = c->bytes, .merged = c->merged};
    for (unsigned i = 0; i < c->nworkers; i++) {
        ug_census_worker *w = &c->w[i];
        s->noted += atomic_load_explicit(&w->head, memory_order_relaxed);
        s->dropped += atomic_load_explicit(&w->dropped, memory_order_relaxed);
        s->bad_key += atomic_load_explicit(&w->bad_key, memory_order_relaxed);
        s->ring_bytes += sizeof *w + sizeof *w->ring * (c->ring_mask + 1);
    }
}
