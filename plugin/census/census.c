/* The census's life and its hot path: create, free, note (a worker stages
 * a HELLO in its own ring) and the counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census_impl.h"
#include "util/mix.h"

#define UID_SALT UINT64_C(0x9e3779b97f4a7c15) /* splitmix64's increment: uid 0 does not hash to 0 */

/* A key's fields and their lengths. */
typedef struct {
    const char *s[3];
    size_t n[3];
} fields;

static const size_t field_max[3] = {UG_PLAT_MAX, UG_CHAN_MAX, UG_CENSUS_REGION_MAX};
_Static_assert(UG_PLAT_MAX >= UG_CHAN_MAX && UG_PLAT_MAX >= UG_CENSUS_REGION_MAX, "the memo holds any field");
_Static_assert(UG_PLAT_MAX + 1 <= 0xff, "note_begin packs each field's length, capped at max + 1, in a byte");
/* The filter is mapped, as big blocks are, never on the heap: there (a
 * calloc, or a block aligned to a page) the bench's WAIT path with the
 * census ran at 0.82x of census: false, mapped at 0.94x, alternately in
 * one sitting; why the heap costs that much was not found. */
_Static_assert(UG_CENSUS_FILTER * sizeof(uint16_t) >= UG_CENSUS_BIG, "ug_census_big_alloc maps the filter");

static inline uint64_t absorb(uint64_t h, const char *s, size_t n);

/* One version, one bucket: 1.4 and 1.4.0 compare equal, so parts past the
 * third are dropped when zero and missing ones up to the third are 0. */
static ug_version canonical(const ug_version *v)
{
    ug_version c = {.nparts = 3};
    unsigned n = v->nparts > 4 ? 4 : v->nparts;
    for (unsigned i = 0; i < n; i++)
        c.part[i] = v->part[i];
    if (c.part[3] != 0)
        c.nparts = 4;
    return c;
}

static uint64_t mix_word(uint64_t h, uint64_t w)
{
    h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
    return h ^ (h >> 32);
}

/* A field's length, capped at max + 1 (too long); an empty field (a HELLO
 * without plat or chan, no GeoIP region) skips strnlen's call. */
static inline size_t field_len(const char *s, size_t max)
{
    return s[0] ? strnlen(s, max + 1) : 0;
}

/* The fields and their lengths; -1 when a field is longer than the
 * protocol allows. */
static inline int fields_of(const ug_census_key *k, fields *f)
{
    f->s[0] = k->plat, f->s[1] = k->chan, f->s[2] = k->region;
    for (int i = 0; i < 3; i++) {
        f->n[i] = field_len(f->s[i], field_max[i]);
        if (f->n[i] > field_max[i])
            return -1;
    }
    return 0;
}

/* The key's hash, never 0, the same on every tracker (the fleet format
 * carries it). The version hashes by its parts as parsed (missing ones are
 * 0, so 1.4 and 1.4.0 hash alike); canonical() is for its text only. */
static uint64_t hash_of(const ug_version *v, const fields *f)
{
    uint64_t h = mix_word(UID_SALT, v->part[0] | (uint64_t)v->part[1] << 32);
    h = mix_word(h, v->part[2] | (uint64_t)v->part[3] << 32);
    for (int i = 0; i < 3; i++)
        h = absorb(h, f->s[i], f->n[i]);
    h = ug_mix64(h);
    return h ? h : 1;
}

/* Whether k, of field lengths n, is the memo's key, announced in epoch
 * ep: then its hash is the memo's, and seen[] holds it. */
static inline bool memo_same(const ug_census_memo *m, const ug_census_key *k, uint32_t n, uint64_t ep)
{
    size_t n0 = n & 0xff, n1 = n >> 8 & 0xff, n2 = n >> 16;
    return m->kh && m->n == n && m->epoch == ep && !memcmp(m->part, k->ver.part, sizeof m->part) &&
           (!n0 || !memcmp(m->s[0], k->plat, n0)) && (!n1 || !memcmp(m->s[1], k->chan, n1)) &&
           (!n2 || !memcmp(m->s[2], k->region, n2));
}

static uint64_t rd64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static uint64_t rd32(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* Eight bytes at a time, one multiply each; the last word read overlapping
 * (and short fields as two overlapping halves, or their first, middle and
 * last bytes): every byte is read, none past the field. The field's length
 * closes it. The same on every tracker. */
static inline uint64_t absorb(uint64_t h, const char *s, size_t n)
{
    uint64_t w;
    size_t i = 0;
    for (; i + 8 < n; i += 8)
        h = mix_word(h, rd64(s + i));
    if (n >= 8)
        w = rd64(s + n - 8);
    else if (n >= 4)
        w = rd32(s) | rd32(s + n - 4) << 32;
    else
        w = n ? (uint64_t)(uint8_t)s[0] | (uint64_t)(uint8_t)s[n / 2] << 8 | (uint64_t)(uint8_t)s[n - 1] << 16 : 0;
    return mix_word(h, w ^ (uint64_t)n << 56);
}

uint64_t ug_census_key_hash(const ug_census_text *t)
{
    fields f;
    ug_census_key k = {.plat = t->plat, .chan = t->chan, .region = t->region};
    if (ug_version_parse(&k.ver, t->ver, strlen(t->ver)) != 0)
        return 1;
    k.ver = canonical(&k.ver);
    if (fields_of(&k, &f) != 0)
        return 1;
    return hash_of(&k.ver, &f);
}

int ug_census_ver_text(char *ver, size_t cap)
{
    ug_version v;
    if (ug_version_parse(&v, ver, strlen(ver)) != 0)
        return -1;
    v = canonical(&v);
    return ug_version_format(&v, ver, cap);
}

/* The key as text: the version canonical ("1.4.0"); bytes outside
 * printable ASCII become '?' (JSON and the fleet format carry ASCII; a
 * HELLO's plat and chan may be any UTF-8). -1 when the version's text
 * would not fit a HELLO (such keys count in "other"). */
static int text_of(const ug_version *ver, const fields *f, ug_census_text *t)
{
    char *dst[3] = {t->plat, t->chan, t->region};
    ug_version v = canonical(ver);
    if (ug_version_format(&v, t->ver, sizeof t->ver) != 0)
        return -1;
    for (int i = 0; i < 3; i++) {
        for (size_t k = 0; k < f->n[i]; k++)
            dst[i][k] = f->s[i][k] >= 0x20 && f->s[i][k] <= 0x7e ? f->s[i][k] : '?';
        dst[i][f->n[i]] = '\0';
    }
    return 0;
}

/* Tells tick a key is new to this worker; -1 when its ring is full. Off
 * the hot path: once per key and worker, and again only when another key
 * took its place in seen[]. */
__attribute__((noinline)) static int announce(ug_census_worker *w, uint64_t kh, const ug_census_key *k)
{
    fields f;
    if (fields_of(k, &f) != 0)
        return 0; /* note_begin measured it: cannot happen */
    uint64_t a = atomic_load_explicit(&w->ahead, memory_order_relaxed);
    if (a - atomic_load_explicit(&w->atail, memory_order_acquire) >= UG_CENSUS_ANNOUNCE)
        return -1;
    ug_census_announce *an = &w->ann[a % UG_CENSUS_ANNOUNCE];
    an->kh = kh;
    if (text_of(&k->ver, &f, &an->key) != 0)
        return 0; /* never a bucket of its own: its HELLOs go to "other" */
    atomic_store_explicit(&w->ahead, a + 1, memory_order_release);
    return 0;
}

/* The ring is half full by what this worker last saw: when tick has not
 * drained it meanwhile, and nobody else is draining, drain every ring now
 * (tick comes once a second; a worker fills a ring faster). */
static void assist(ug_census *c, ug_census_worker *w, uint64_t head, uint64_t now)
{
    w->tail_seen = atomic_load_explicit(&w->tail, memory_order_acquire);
    if (head - w->tail_seen <= c->ring_mask / 2 || pthread_mutex_trylock(&c->lock) != 0)
        return;
    ug_census_drain_all(c, now);
    ug_census_fit(c);
    pthread_mutex_unlock(&c->lock);
    atomic_fetch_add_explicit(&c->assists, 1, memory_order_relaxed);
    w->tail_seen = atomic_load_explicit(&w->tail, memory_order_acquire);
}

static void bump(_Atomic uint64_t *v)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* note_begin's key when the memo missed: its hash (0: too long a field,
 * stats bad_key), seen[] renewed when the epoch moved on, the key
 * announced when new to seen[], and the memo holding the key (its epoch
 * set once seen[] holds it: the next HELLO of the key skips all this). */
__attribute__((noinline)) static uint64_t key_slow(ug_census_worker *w, const ug_census_key *k, uint32_t n,
                                                   uint64_t ep)
{
    ug_census_memo *m = &w->memo;
    fields f = {.s = {k->plat, k->chan, k->region}, .n = {n & 0xff, n >> 8 & 0xff, n >> 16}};
    for (int i = 0; i < 3; i++)
        if (f.n[i] > field_max[i]) {
            bump(&w->bad_key);
            return 0;
        }
    if (ep != w->epoch) {
        memset(w->seen, 0, sizeof w->seen);
        w->epoch = ep;
    }
    memcpy(m->part, k->ver.part, sizeof m->part);
    m->n = n;
    m->id = 0;
    for (int i = 0; i < 3; i++)
        memcpy(m->s[i], f.s[i], f.n[i]);
    uint64_t kh = m->kh = hash_of(&k->ver, &f), *seen = &w->seen[kh % UG_CENSUS_SEEN];
    m->epoch = ep + 1; /* no epoch: not yet in seen[] */
    if (*seen != kh && announce(w, kh, k) == 0)
        *seen = kh;
    if (*seen == kh)
        m->epoch = ep;
    return kh;
}

/* A new slot, or every id given: the filter starts empty, and so do the
 * ids (no entry is left to name a key by an old one). */
__attribute__((noinline)) static void filter_renew(ug_census_worker *w, uint32_t stamp)
{
    memset(w->filter, 0, sizeof *w->filter * UG_CENSUS_FILTER);
    memset(w->id_kh, 0, sizeof w->id_kh);
    w->ids = 0;
    w->memo.id = 0;
    w->filter_stamp = stamp;
}

/* The memo's key's id in the filter: the one it was given since the
 * filter was cleared, else the next (clearing the filter when none is
 * left). Off the hot path: once per key and slot, and again when the key
 * comes back after another one. */
__attribute__((noinline)) static uint32_t key_id(ug_census_worker *w)
{
    uint64_t kh = w->memo.kh;
    uint32_t i = (uint32_t)(kh % UG_CENSUS_IDS);
    if (w->id_kh[i] != kh) {
        if (w->ids == UG_CENSUS_ID_MAX)
            filter_renew(w, w->filter_stamp);
        w->id_kh[i] = kh;
        w->id[i] = (uint16_t)++w->ids;
    }
    return w->memo.id = w->id[i];
}

/* The hot path's common case costs what memo_same() compares, the uid's
 * hash and the filter's index: the rest is out of line. */
void ug_census_note_begin(ug_census *c, unsigned worker, const ug_census_key *k, uint64_t uid, uint64_t now,
                          ug_census_pending *pd)
{
    ug_census_worker *w = &c->w[worker];
    uint32_t n = (uint32_t)(field_len(k->plat, UG_PLAT_MAX) | field_len(k->chan, UG_CHAN_MAX) << 8 |
                            field_len(k->region, UG_CENSUS_REGION_MAX) << 16);
    uint64_t kh = w->memo.kh, ep = atomic_load_explicit(&c->epoch, memory_order_relaxed);
    if (!memo_same(&w->memo, k, n, ep) && !(kh = key_slow(w, k, n, ep))) {
        pd->slot = NULL;
        return;
    }
    uint64_t h = ug_mix64(uid + UID_SALT);
    uint32_t stamp = ug_census_slot_of(now), rank = ug_census_hash_rank(h, UG_CENSUS_P);
    if (stamp != w->filter_stamp)
        filter_renew(w, stamp);
    uint32_t id = w->memo.id ? w->memo.id : key_id(w);
    uint32_t j = (uint32_t)(h >> (64 - UG_CENSUS_P)) + (uint32_t)(kh >> (64 - UG_CENSUS_P));
    pd->slot = &w->filter[j & (UG_CENSUS_FILTER - 1)];
    __builtin_prefetch(pd->slot, 1, 3);
    pd->mark = (uint16_t)(id << 5 | rank);
    pd->staged = (ug_census_staged){.kh = kh, .h = (h & ~(uint64_t)UG_CENSUS_STAMP_MASK) | stamp};
}

/* note_end past the filter: stages the HELLO (assisting tick when the
 * ring is half full), or drops it when the ring is full. */
__attribute__((noinline)) static void stage(ug_census *c, ug_census_worker *w, const ug_census_pending *pd,
                                            uint64_t now)
{
    uint64_t head = atomic_load_explicit(&w->head, memory_order_relaxed);
    if (head - w->tail_seen > c->ring_mask) {
        assist(c, w, head, now);
        if (head - w->tail_seen > c->ring_mask) {
            bump(&w->dropped);
            return;
        }
    }
    w->ring[head & c->ring_mask] = pd->staged;
    atomic_store_explicit(&w->head, head + 1, memory_order_release);
    *pd->slot = pd->mark;
    if (head + 1 - w->tail_seen > c->ring_mask / 2)
        assist(c, w, head + 1, now);
}

void ug_census_note_end(ug_census *c, unsigned worker, const ug_census_pending *pd, uint64_t now)
{
    ug_census_worker *w = &c->w[worker];
    const uint16_t *seen_reg = pd->slot;
    uint32_t mark = pd->mark, rank = mark & 31u;
    if (!seen_reg)
        return;
    if ((*seen_reg ^ mark) >> 5 == 0 && (*seen_reg & 31u) >= rank) { /* 0: empty (ids and ranks start at 1) */
        bump(&w->filtered);
        return;
    }
    stage(c, w, pd, now);
}

void ug_census_note(ug_census *c, unsigned worker, const ug_census_key *k, uint64_t uid, uint64_t now)
{
    ug_census_pending pd;
    ug_census_note_begin(c, worker, k, uid, now, &pd);
    ug_census_note_end(c, worker, &pd, now);
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
        if (!(c->w[i].ring = malloc(sizeof *c->w[i].ring * ring)) ||
            !(c->w[i].filter = ug_census_big_alloc(UG_CENSUS_FILTER * sizeof *c->w[i].filter)))
            goto oom;
    for (unsigned i = 0; i < c->nworkers; i++)
        c->w[i].filter_stamp = UINT32_MAX;
    c->fixed = sizeof *c->b * c->nbmax + sizeof *c->index * ((size_t)c->index_mask + 1);
    c->bytes = c->fixed;
    c->b[0] = (ug_census_bucket){.used = true, .other = true, .sk = {.p = UG_CENSUS_P}};
    c->nb = 1;
    pthread_mutex_init(&c->lock, NULL);
    c->lock_ok = true;
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
    for (unsigned i = 0; c->w && i < c->nworkers; i++) {
        free(c->w[i].ring);
        ug_census_big_free(c->w[i].filter, UG_CENSUS_FILTER * sizeof *c->w[i].filter);
    }
    free(c->w);
    free(c->b);
    free(c->index);
    if (c->lock_ok)
        pthread_mutex_destroy(&c->lock);
    free(c);
}

void ug_census_stats_get(ug_census *c, ug_census_stats *s)
{
    pthread_mutex_lock(&c->lock);
    ug_census_stats_locked(c, s);
    pthread_mutex_unlock(&c->lock);
}

void ug_census_stats_locked(ug_census *c, ug_census_stats *s)
{
    *s = (ug_census_stats){.other = c->other, .buckets = c->nb, .evicted = c->evicted, .folds = c->folds,
                           .bytes = c->bytes, .merged = c->merged,
                           .assists = atomic_load_explicit(&c->assists, memory_order_relaxed)};
    for (unsigned i = 0; i < c->nworkers; i++) {
        ug_census_worker *w = &c->w[i];
        s->noted += atomic_load_explicit(&w->head, memory_order_relaxed);
        s->dropped += atomic_load_explicit(&w->dropped, memory_order_relaxed);
        s->filtered += atomic_load_explicit(&w->filtered, memory_order_relaxed);
        s->bad_key += atomic_load_explicit(&w->bad_key, memory_order_relaxed);
        s->ring_bytes += sizeof *w + sizeof *w->ring * (c->ring_mask + 1) + sizeof *w->filter * UG_CENSUS_FILTER;
    }
}
