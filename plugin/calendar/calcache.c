/* A calendar's queries: the fixed windows' plan, the peer's zone from the
 * cache (loaded on its first peer), the two combined; and the daily
 * refresh that moves every plan's horizon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cal_impl.h"
#include "civil.h"

#define UNION_STEPS 64 /* alternations of two plans' intervals followed, at most */

static uint64_t name_hash(const char *s)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * UINT64_C(0x100000001b3);
    return h;
}

static ug_cal_zent *find(ug_cal *c, const char *name, uint64_t h)
{
    for (unsigned i = 0; i < c->cap; i++) {
        ug_cal_zent *e = atomic_load_explicit(&c->slots[(h + i) & (c->cap - 1)], memory_order_acquire);
        if (!e || strcmp(e->name, name) == 0)
            return e;
    }
    return NULL;
}

/* Under the mutex: loads name (a name that does not load is cached too, so
 * it is tried once) and publishes it; NULL when the cache is full. */
static ug_cal_zent *insert(ug_cal *c, const char *name, uint64_t h, int64_t now)
{
    if (c->count >= c->max)
        return NULL;
    char why[320];
    ug_tz *z = ug_tz_load(c->zoneinfo[0] ? c->zoneinfo : NULL, name, why, sizeof why);
    ug_cal_zent *e = ug_cal_zent_new(c, name, z, now);
    if (!e) {
        ug_tz_free(z);
        return NULL;
    }
    unsigned i = 0;
    while (atomic_load_explicit(&c->slots[(h + i) & (c->cap - 1)], memory_order_relaxed))
        i++;
    atomic_store_explicit(&c->slots[(h + i) & (c->cap - 1)], e, memory_order_release);
    c->count++;
    return e;
}

/* The entry answering for a peer in zone name: its own, or the fallback. */
static const ug_cal_zent *peer_entry(ug_cal *c, const char *name, int64_t now, bool *fallback)
{
    ug_cal_zent *e = NULL;
    if (name && *name && ug_tz_name_ok(name)) {
        uint64_t h = name_hash(name);
        if (!(e = find(c, name, h))) {
            pthread_mutex_lock(&c->mu);
            if (!(e = find(c, name, h)))
                e = insert(c, name, h, now);
            pthread_mutex_unlock(&c->mu);
        }
    }
    if (e && e->tz)
        return e;
    if (name && *name)
        atomic_fetch_add_explicit(&c->refused, 1, memory_order_relaxed);
    *fallback = true;
    return c->fallback;
}

typedef struct {
    const ug_cal_plan *p[2];
    size_t n;
} pair;

/* Open at t if either plan is; the union's next change. */
static bool union_at(const pair *q, int64_t t, bool *open, int64_t *change)
{
    bool o[2] = {false, false}, ok = true;
    int64_t ch[2] = {UG_CAL_NEVER, UG_CAL_NEVER};
    for (size_t i = 0; i < q->n; i++)
        ok &= ug_cal_plan_at(q->p[i], t, &o[i], &ch[i]);
    *open = o[0] || o[1];
    if (!*open) {
        *change = ch[0] < ch[1] ? ch[0] : ch[1];
        return ok;
    }
    /* Open: it closes at the first instant neither plan covers. */
    for (int k = 0; k < UNION_STEPS && (o[0] || o[1]); k++) {
        int64_t next = t;
        for (size_t i = 0; i < q->n; i++)
            if (o[i] && ch[i] > next)
                next = ch[i];
        if (next == t || next == UG_CAL_NEVER) {
            t = next;
            break;
        }
        t = next;
        for (size_t i = 0; i < q->n; i++)
            ok &= ug_cal_plan_at(q->p[i], t, &o[i], &ch[i]);
    }
    *change = t;
    return ok;
}

void ug_cal_at(ug_cal *c, const char *peer_zone, int64_t now, ug_cal_state *s)
{
    pair q = {.n = 0};
    *s = (ug_cal_state){.change = UG_CAL_NEVER};
    if (c->nfixed)
        q.p[q.n++] = atomic_load_explicit(&c->fixed, memory_order_acquire);
    if (c->npeer)
        q.p[q.n++] = atomic_load_explicit(&peer_entry(c, peer_zone, now, &s->fallback)->plan, memory_order_acquire);
    s->stale = !union_at(&q, now, &s->open, &s->change);
    if (s->stale)
        s->open = false, s->change = UG_CAL_NEVER;
}

/* Every plan's slot in a fixed order: the fixed windows', the fallback's,
 * then the cached zones'. */
static size_t slots_of(ug_cal *c, _Atomic(ug_cal_plan *) **slot, const ug_tz **zone)
{
    size_t n = 0;
    if (c->nfixed)
        slot[n] = &c->fixed, zone[n++] = NULL;
    if (c->npeer)
        slot[n] = &c->fallback->plan, zone[n++] = c->deflt;
    for (unsigned i = 0; i < c->cap; i++) {
        ug_cal_zent *e = atomic_load_explicit(&c->slots[i], memory_order_relaxed);
        if (e && e->tz)
            slot[n] = &e->plan, zone[n++] = e->tz;
    }
    return n;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Frees the plans replaced over UG_CAL_GRACE_NS ago. */
static void reap(ug_cal *c, int64_t mono)
{
    size_t k = 0;
    for (size_t i = 0; i < c->retired.n; i++) {
        if (mono - c->retired.at[i] >= UG_CAL_GRACE_NS) {
            ug_cal_plan_free(c->retired.v[i]);
            continue;
        }
        c->retired.v[k] = c->retired.v[i];
        c->retired.at[k++] = c->retired.at[i];
    }
    c->retired.n = k;
}

/* Room for n more retired plans. */
static int reserve(ug_cal_plans *r, size_t n)
{
    if (r->cap - r->n >= n)
        return 0;
    size_t cap = r->n + n + r->cap;
    ug_cal_plan **v = realloc(r->v, cap * sizeof *v);
    if (v)
        r->v = v;
    int64_t *at = v ? realloc(r->at, cap * sizeof *at) : NULL;
    if (!at)
        return -1;
    r->at = at;
    r->cap = cap;
    return 0;
}

/* Builds every new plan first; only when all are there (and the old ones
 * have room in the retired list) swaps them in. */
static int refresh(ug_cal *c, int64_t now, int64_t mono)
{
    size_t cap = (size_t)c->count + 2, n;
    _Atomic(ug_cal_plan *) **slot = calloc(cap, sizeof *slot);
    const ug_tz **zone = calloc(cap, sizeof *zone);
    ug_cal_plan **fresh = calloc(cap, sizeof *fresh);
    int rc = -1;
    if (slot && zone && fresh && reserve(&c->retired, cap) == 0) {
        n = slots_of(c, slot, zone);
        size_t k = 0;
        for (; k < n; k++)
            if (!(fresh[k] = zone[k] ? ug_cal_peer_plan(c, zone[k], now)
                                     : ug_cal_plan_build(c->w, c->wz, c->nfixed, now, c->horizon)))
                break;
        for (size_t i = 0; i < n && k == n; i++) {
            c->retired.v[c->retired.n] = atomic_exchange_explicit(slot[i], fresh[i], memory_order_acq_rel);
            c->retired.at[c->retired.n++] = mono;
        }
        for (size_t i = 0; i < k && k < n; i++)
            ug_cal_plan_free(fresh[i]);
        rc = k == n ? 0 : -1;
    }
    free(slot);
    free(zone);
    free(fresh);
    return rc;
}

void ug_cal_tick(ug_cal *c, int64_t now)
{
    int64_t day = ug_civil_floordiv(now, 86400), mono = mono_ns();
    pthread_mutex_lock(&c->mu);
    reap(c, mono);
    if (day != c->built_day && refresh(c, now, mono) == 0)
        c->built_day = day;
    pthread_mutex_unlock(&c->mu);
}

void ug_cal_counts(ug_cal *c, uint64_t *zones, uint64_t *refused)
{
    pthread_mutex_lock(&c->mu);
    *zones = c->count;
    pthread_mutex_unlock(&c->mu);
    *refused = atomic_load_explicit(&c->refused, memory_order_relaxed);
}
