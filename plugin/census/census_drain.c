/* tick's side: the workers' rings drained into the buckets' sketches, the
 * key index, hourly pruning of what left the week, eviction of empty
 * buckets, and the budget (folding the largest, least full sketches). */
#include <string.h>

#include "census_impl.h"

#define PRUNE_EVERY 6u  /* slots: hourly, well inside the 14 days a stamp can tell apart */
#define GAP_RESET 1000u /* slots without a tick after which every stamp is suspect: start over */

static uint32_t abs_slot(uint64_t now)
{
    return (uint32_t)(now / UG_CENSUS_SLOT);
}

ug_census_bucket *ug_census_find(ug_census *c, uint64_t kh)
{
    for (uint32_t i = (uint32_t)kh & c->index_mask;; i = (i + 1) & c->index_mask) {
        uint32_t v = c->index[i];
        if (v == 0)
            return NULL;
        if (c->b[v - 1].kh == kh)
            return &c->b[v - 1];
    }
}

static void index_put(ug_census *c, uint32_t n)
{
    uint32_t i = (uint32_t)c->b[n].kh & c->index_mask;
    while (c->index[i])
        i = (i + 1) & c->index_mask;
    c->index[i] = n + 1;
}

ug_census_bucket *ug_census_bucket_of(ug_census *c, const ug_census_text *t, uint64_t kh)
{
    ug_census_bucket *b = ug_census_find(c, kh);
    if (b)
        return b;
    if (c->nb >= c->nbmax)
        return &c->b[0];
    uint32_t n = 1;
    while (c->b[n].used)
        n++;
    c->b[n] = (ug_census_bucket){.kh = kh, .key = *t, .used = true, .sk = {.p = UG_CENSUS_P}};
    c->nb++;
    index_put(c, n);
    return &c->b[n];
}

void ug_census_account(ug_census *c, size_t before, const ug_census_bucket *b)
{
    c->bytes = c->bytes - before + ug_census_sk_bytes(&b->sk);
}

/* The sketch to fold: the highest precision, then the fewest entries. */
static ug_census_bucket *fold_victim(ug_census *c)
{
    ug_census_bucket *v = NULL;
    for (unsigned i = 0; i < c->nbmax; i++) {
        ug_census_bucket *b = &c->b[i];
        if (!b->used || !b->sk.dense || b->sk.p <= UG_CENSUS_P_MIN)
            continue;
        if (!v || b->sk.p > v->sk.p || (b->sk.p == v->sk.p && b->entries < v->entries))
            v = b;
    }
    return v;
}

void ug_census_fit(ug_census *c)
{
    ug_census_bucket *b;
    while (c->bytes > c->budget && (b = fold_victim(c))) {
        size_t before = ug_census_sk_bytes(&b->sk);
        if (ug_census_sk_fold(&b->sk, c->slot) != 0)
            return;
        ug_census_account(c, before, b);
        c->folds++;
    }
}

/* A staged HELLO into its bucket: its stamp within the week (up to an hour
 * ahead counts as now: the host's clock read on two threads), else dropped. */
static void apply(ug_census *c, const ug_census_staged *s)
{
    ug_census_bucket *b = ug_census_find(c, s->kh);
    if (!b || b->other) {
        b = &c->b[0];
        c->other++;
    }
    uint32_t stamp = (uint32_t)s->h & UG_CENSUS_STAMP_MASK;
    unsigned age = (c->slot - stamp) & UG_CENSUS_STAMP_MASK;
    if (age > UG_CENSUS_AGE_MAX) {
        if (age < UG_CENSUS_STAMP_MASK + 1 - UG_CENSUS_AGE_FUTURE)
            return;
        stamp = c->slot;
    }
    size_t before = ug_census_sk_bytes(&b->sk);
    if (ug_census_sk_add(&b->sk, s->h, stamp, c->slot) == 0)
        ug_census_account(c, before, b);
    if (c->bytes > c->budget)
        ug_census_fit(c);
}

static void drain_one(ug_census *c, ug_census_worker *w)
{
    uint64_t head = atomic_load_explicit(&w->head, memory_order_acquire);
    uint64_t ahead = atomic_load_explicit(&w->ahead, memory_order_acquire);
    for (uint64_t a = atomic_load_explicit(&w->atail, memory_order_relaxed); a < ahead; a++) {
        const ug_census_announce *an = &w->ann[a % UG_CENSUS_ANNOUNCE];
        (void)ug_census_bucket_of(c, &an->key, an->kh);
    }
    atomic_store_explicit(&w->atail, ahead, memory_order_release);
    for (uint64_t t = atomic_load_explicit(&w->tail, memory_order_relaxed); t < head; t++)
        apply(c, &w->ring[t & c->ring_mask]);
    atomic_store_explicit(&w->tail, head, memory_order_release);
}

/* Drops what left the week; empty buckets go (workers announce their keys
 * again when they come back). */
static void prune(ug_census *c)
{
    bool evicted = false;
    for (unsigned i = 0; i < c->nbmax; i++) {
        ug_census_bucket *b = &c->b[i];
        if (!b->used)
            continue;
        size_t before = ug_census_sk_bytes(&b->sk);
        b->entries = ug_census_sk_prune(&b->sk, c->slot);
        if (b->entries == 0 && !b->other) {
            ug_census_sk_clear(&b->sk);
            b->used = false;
            c->nb--;
            c->evicted++;
            evicted = true;
        }
        ug_census_account(c, before, b);
    }
    if (!evicted)
        return;
    memset(c->index, 0, sizeof *c->index * ((size_t)c->index_mask + 1));
    for (uint32_t i = 1; i < c->nbmax; i++)
        if (c->b[i].used)
            index_put(c, i);
    atomic_fetch_add_explicit(&c->epoch, 1, memory_order_relaxed);
}

static void reset(ug_census *c)
{
    for (unsigned i = 0; i < c->nbmax; i++) {
        size_t before = ug_census_sk_bytes(&c->b[i].sk);
        ug_census_sk_clear(&c->b[i].sk);
        c->b[i].sk.p = UG_CENSUS_P;
        ug_census_account(c, before, &c->b[i]);
    }
}

void ug_census_drain_all(ug_census *c, uint64_t now)
{
    if (abs_slot(now) > c->abs) {
        c->abs = abs_slot(now);
        c->slot = c->abs & UG_CENSUS_STAMP_MASK;
    }
    for (unsigned i = 0; i < c->nworkers; i++)
        drain_one(c, &c->w[i]);
}

/* tick's clock rules: it may move back (a host's clock, a test's). */
void ug_census_tick(ug_census *c, uint64_t now)
{
    uint32_t s = abs_slot(now);
    pthread_mutex_lock(&c->lock);
    if (c->started && (uint32_t)(s - c->last_prune) > GAP_RESET && s > c->last_prune)
        reset(c);
    if (!c->started || s < c->last_prune)
        c->last_prune = s;
    c->started = true;
    c->abs = s;
    c->slot = s & UG_CENSUS_STAMP_MASK;
    ug_census_drain_all(c, now);
    if (s - c->last_prune >= PRUNE_EVERY) {
        prune(c);
        c->last_prune = s;
    }
    ug_census_fit(c);
    pthread_mutex_unlock(&c->lock);
}
