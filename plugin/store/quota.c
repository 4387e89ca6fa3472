/* One stage's quota within a scope: slots per worker, the share, offers per minute and hour, slots from a source. */
#include <stdlib.h>

#include "store/store_impl.h"
#include "util/clock.h"

/*
 * A stage's share is split into one slot counter per worker. A worker takes
 * from its own; an empty one moves half of the largest other shard under
 * the stage's steal mutex. Slots only move, except in set_limit, which
 * holds every stripe lock of the scope and so sees no grant in flight: the
 * stage's count of grants is then exact, and its slots become share -
 * count. A new stage has share 0 until set_limit: failing closed.
 * A sourced stage's slots are what its source lent. They only arrive
 * (add_slots), move between shards or become grants, and leave only
 * through ug_stage_quota_tally(take), under every stripe lock; a worker
 * takes one only while the source says they may be spent.
 */

/* Moves half (rounded up) of the largest other shard to worker w, keeping
 * one for the caller. Under the steal mutex other shards only shrink (their
 * owners spend), so "every shard empty" is final, not slots in transit. */
static bool steal(ug_stage_quota *q, unsigned w)
{
    unsigned n = q->sc->st->nworkers;
    bool got = false;
    pthread_mutex_lock(&q->steal_mu);
    for (;;) {
        unsigned best = n;
        int64_t bv = 0;
        for (unsigned j = 0; j < n; j++) {
            int64_t v = atomic_load_explicit(&q->slots[j].v, memory_order_relaxed);
            if (j != w && v > bv) {
                bv = v;
                best = j;
            }
        }
        if (best == n)
            break;
        int64_t take = bv - bv / 2;
        if (atomic_compare_exchange_strong(&q->slots[best].v, &bv, bv - take)) {
            if (take > 1)
                atomic_fetch_add(&q->slots[w].v, take - 1);
            got = true;
            break;
        }
    }
    pthread_mutex_unlock(&q->steal_mu);
    return got;
}

/* A sourced stage spends nothing its source holds back: the source may
 * have written those slots off. */
static inline bool held_back(const ug_stage_quota *q)
{
    return q->src && !q->src->spendable(q->src);
}

bool ug_stage_quota_take(ug_stage_quota *q, unsigned w)
{
    if (q->src && held_back(q))
        return false;
    _Atomic int64_t *mine = &q->slots[w].v;
    int64_t v = atomic_load_explicit(mine, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak(mine, &v, v - 1))
            return true;
    return steal(q, w);
}

void ug_stage_quota_offered(ug_stage_quota *q, uint64_t now)
{
    offer_ring *r = &q->offers;
    uint64_t m = now / 60;
    pthread_mutex_lock(&q->ring_mu);
    unsigned i = (unsigned)(now % 60), j = (unsigned)(m % 60);
    if (r->sec_at[i] != now)
        r->sec_at[i] = now, r->sec[i] = 0;
    if (r->min_at[j] != m)
        r->min_at[j] = m, r->min[j] = 0;
    r->sec[i]++;
    r->min[j]++;
    pthread_mutex_unlock(&q->ring_mu);
}

void ug_stage_quota_seed_offer(ug_stage_quota *q, uint64_t at, uint32_t n)
{
    offer_ring *r = &q->offers;
    uint64_t m = at / 60;
    unsigned i = (unsigned)(at % 60), j = (unsigned)(m % 60);
    if (r->sec_at[i] < at)
        r->sec_at[i] = at, r->sec[i] = 0;
    if (r->min_at[j] < m)
        r->min_at[j] = m, r->min[j] = 0;
    r->sec[i] += r->sec_at[i] == at ? n : 0;
    r->min[j] += r->min_at[j] == m ? n : 0;
}

void ug_stage_quota_offers(const ug_stage_quota *q, uint64_t now, uint64_t *last_minute, uint64_t *last_hour)
{
    ug_stage_quota *mq = (ug_stage_quota *)q; /* the ring's lock, not its value, changes */
    const offer_ring *r = &q->offers;
    uint64_t a = 0, b = 0, m = now / 60;
    pthread_mutex_lock(&mq->ring_mu);
    for (unsigned i = 0; i < 60; i++) {
        if (r->sec_at[i] <= now && now - r->sec_at[i] < 60)
            a += r->sec[i];
        if (r->min_at[i] <= m && m - r->min_at[i] < 60)
            b += r->min[i];
    }
    pthread_mutex_unlock(&mq->ring_mu);
    *last_minute = a;
    *last_hour = b;
}

/* Holds every stripe lock of the scope: no grant is in flight, so the
 * stage's count is exact and its new slots are share - count. */
void ug_stage_quota_set_limit(ug_stage_quota *q, uint64_t share)
{
    ug_scope *sc = q->sc;
    unsigned n = sc->st->nworkers;
    ug_scope_lock_all(sc);
    uint64_t consumed = atomic_load(&q->n), rem = 0;
    atomic_store(&q->limit, share);
    if (share != UG_QUOTA_UNLIMITED && share > consumed)
        rem = share - consumed;
    if (rem > (uint64_t)INT64_MAX)
        rem = (uint64_t)INT64_MAX;
    uint64_t per = rem / n, extra = rem % n;
    for (unsigned j = 0; j < n; j++)
        atomic_store(&q->slots[j].v, (int64_t)(per + (j < extra ? 1 : 0)));
    ug_scope_unlock_all(sc);
}

uint64_t ug_stage_quota_count(const ug_stage_quota *q)
{
    return atomic_load_explicit(&q->n, memory_order_relaxed);
}

/* Exact when no grant runs; while grants run a slot in transit may be
 * missed for an instant. */
uint64_t ug_stage_quota_remaining(const ug_stage_quota *q)
{
    uint64_t lim = atomic_load_explicit(&q->limit, memory_order_relaxed);
    if (lim == UG_QUOTA_UNLIMITED)
        return UG_QUOTA_UNLIMITED;
    if (lim == QUOTA_SOURCED && held_back(q))
        return 0;
    uint64_t r = 0;
    for (unsigned j = 0; j < q->sc->st->nworkers; j++) {
        int64_t v = atomic_load_explicit(&q->slots[j].v, memory_order_relaxed);
        if (v > 0)
            r += (uint64_t)v;
    }
    return r;
}

uint16_t ug_stage_quota_id(const ug_stage_quota *q)
{
    return q->id;
}

ug_scope *ug_stage_quota_scope(const ug_stage_quota *q)
{
    return q->sc;
}

/* ---- slots from a source -------------------------------------------------- */

void ug_stage_quota_set_sourced(ug_stage_quota *q, const ug_slot_source *src, uint64_t quota)
{
    if (q->src != src) /* set once, before any worker reads q */
        q->src = src;
    /* a stage that had no quota holds no slots: it starts empty, and asks */
    if (atomic_exchange(&q->limit, QUOTA_SOURCED) != QUOTA_SOURCED) {
        atomic_store(&q->outlook, UG_SHORT_SOON);
    } else if (q->src_quota != quota) {
        /* lent under another quota: none of it is spent from now on (the
         * source is owed what is left, and lends anew) */
        ug_slot_tally t;
        ug_stage_quota_tally(q, true, &t);
        atomic_store(&q->outlook, UG_SHORT_SOON); /* until the source looks at the new quota */
    }
    q->src_quota = quota;
}

bool ug_stage_quota_is_sourced(const ug_stage_quota *q)
{
    return atomic_load(&q->limit) == QUOTA_SOURCED;
}

bool ug_stage_quota_add_slots(ug_stage_quota *q, uint64_t n)
{
    if (!ug_stage_quota_is_sourced(q))
        return false;
    unsigned nw = q->sc->st->nworkers;
    uint64_t per = n / nw, extra = n % nw;
    for (unsigned j = 0; j < nw; j++)
        atomic_fetch_add(&q->slots[j].v, (int64_t)(per + (j < extra ? 1 : 0)));
    return true;
}

void ug_stage_quota_set_outlook(ug_stage_quota *q, ug_shortfall o)
{
    atomic_store_explicit(&q->outlook, (int)o, memory_order_relaxed);
}

/* The window opens with the first peer held back and closes when the
 * source looks (ug_stage_quota_wanted); a peer held back after the
 * source looked but before the window closed opens the next one itself,
 * and the source's own pass sees its count anyway. */
ug_shortfall ug_stage_quota_short(ug_stage_quota *q, bool ask)
{
    if (!q->src || atomic_load_explicit(&q->limit, memory_order_relaxed) != QUOTA_SOURCED)
        return UG_SHORT_SPENT;
    ug_shortfall o = (ug_shortfall)atomic_load_explicit(&q->outlook, memory_order_relaxed);
    if (o != UG_SHORT_HOLD)
        return o;
    if (held_back(q))
        return UG_SHORT_SOON; /* past its fence, the source cannot bring slots in time */
    int64_t now = ug_mono_ms() | 1, since = atomic_load_explicit(&q->hold_since, memory_order_acquire);
    if (since && now - since > (int64_t)UG_HOLD_MS)
        return UG_SHORT_SOON; /* the slots are late: do not hold peers for them */
    if (!ask)
        return UG_SHORT_HOLD;
    atomic_fetch_add_explicit(&q->wanted, 1, memory_order_relaxed);
    if (!since && atomic_compare_exchange_strong(&q->hold_since, &since, now))
        q->src->wanted(q->src);
    return UG_SHORT_HOLD;
}

uint64_t ug_stage_quota_wanted(ug_stage_quota *q)
{
    uint64_t n = atomic_exchange(&q->wanted, 0);
    atomic_store_explicit(&q->hold_since, 0, memory_order_release);
    return n;
}

/* Every stripe held (as in set_limit): no grant is between its slot and
 * its count, and no slot is between two shards. */
void ug_stage_quota_tally(ug_stage_quota *q, bool take, ug_slot_tally *t)
{
    ug_scope *sc = q->sc;
    ug_scope_lock_all(sc);
    uint64_t unused = 0;
    for (unsigned j = 0; j < sc->st->nworkers; j++) {
        int64_t v = take ? atomic_exchange(&q->slots[j].v, 0) : atomic_load(&q->slots[j].v);
        unused += v > 0 ? (uint64_t)v : 0;
    }
    uint64_t n = atomic_load(&q->n), p = atomic_load(&q->npub);
    ug_scope_unlock_all(sc);
    *t = (ug_slot_tally){.unused = unused, .unpublished = n > p ? n - p : 0, .published = p};
}
