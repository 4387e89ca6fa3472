/* Grants in memory: a striped hash table per scope, its stages, grants and their outcomes, learned and published grants. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/mix.h"
#include "store/store_impl.h"

/*
 * Why the quota is exact:
 * - A scope's grants live in NSTRIPES independently locked tables; a uid's
 *   stripe is fixed by its hash. A grant holds that stripe's lock from the
 *   lookup to the insert, taking a slot in between, so one uid is charged
 *   once however workers interleave.
 * - A stage's slots (quota.c) are taken under that lock too.
 * Why a HINT never leaves before its grant is durable: a new grant is
 * PENDING and QUEUED on its worker; the host sends that worker's replies
 * only after its commit, which writes the record and clears PENDING. A
 * sticky answer on a PENDING grant first queues the record on the
 * answering worker too (ug_scope_make_durable), so its own commit makes it
 * durable whoever granted it.
 * A learned grant (made elsewhere) is sticky here but never written here;
 * a published mark says one of this store's grants was told to whoever
 * publishes them, and is written in its record.
 */

#define LOAD_NUM 3 /* a stripe grows past 3/4 full, live or loaded */
#define LOAD_DEN 4

static inline stripe *stripe_of(ug_scope *sc, uint64_t h)
{
    return &sc->stripes[h >> (64 - STRIPE_BITS)];
}

/* A table's capacity is any size, not a power of two, so that a loaded
 * table is sized to its grants (1M grants in 34 MiB, not 48): the home
 * slot is h's low 32 bits scaled to cap (the stripe took the top bits). */
static inline size_t home_of(uint64_t h, size_t cap)
{
    return (size_t)(((uint64_t)(uint32_t)h * cap) >> 32);
}

static grant_entry *stripe_find(stripe *st, uint64_t uid, uint64_t h)
{
    if (st->cap == 0 || uid == 0) /* 0 marks an empty slot, never a uid */
        return NULL;
    for (size_t i = home_of(h, st->cap);; i = i + 1 == st->cap ? 0 : i + 1) {
        if (st->tab[i].uid == uid)
            return &st->tab[i];
        if (st->tab[i].uid == 0)
            return NULL;
    }
}

static grant_entry *tab_put(grant_entry *tab, size_t cap, const grant_entry *e, uint64_t h)
{
    size_t i = home_of(h, cap);
    while (tab[i].uid != 0)
        i = i + 1 == cap ? 0 : i + 1;
    tab[i] = *e;
    return &tab[i];
}

/* The capacity that holds n entries 3/4 full (at least 16). */
static size_t cap_for(size_t n)
{
    size_t cap = n / LOAD_NUM * LOAD_DEN + LOAD_DEN;
    return cap < 16 ? 16 : cap;
}

#define HUGE_PAGE ((size_t)2 << 20)

/* The bytes a big table (of HUGE_PAGE or more) maps: whole huge pages.
 * tab_alloc fills them (cap = len / entry), so this gives len back. */
static size_t tab_map_len(size_t cap)
{
    return (cap * sizeof(grant_entry) + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
}

/* A zeroed table of at least *cap entries (*cap set to how many). A big
 * one (millions of grants) is probed at random: on 2 MiB pages (where the
 * kernel offers them) it costs a few hundred TLB misses and page faults
 * instead of tens of thousands. It is mapped, not allocated: fresh pages
 * are zero already, and a memset over them was a second pass over hundreds
 * of MiB at ten million grants. */
static grant_entry *tab_alloc(size_t *cap)
{
    size_t bytes = *cap * sizeof(grant_entry);
    if (bytes < HUGE_PAGE)
        return calloc(*cap, sizeof(grant_entry));
    /* rounded up to whole huge pages, all of them entries: a tail left on
     * small pages (a fifth of the entries at ten million grants) cost a
     * page fault per 4 KiB and TLB misses on every probe there */
    size_t len = tab_map_len(*cap);
    *cap = len / sizeof(grant_entry);
    uint8_t *m = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    size_t head = (HUGE_PAGE - (uintptr_t)m % HUGE_PAGE) % HUGE_PAGE;
    if (head)
        (void)munmap(m, head);
    (void)munmap(m + head + len, HUGE_PAGE - head);
    (void)madvise(m + head, len, MADV_HUGEPAGE);
    return (grant_entry *)(void *)(m + head);
}

static void tab_free(grant_entry *tab, size_t cap)
{
    if (tab && cap * sizeof(grant_entry) >= HUGE_PAGE)
        (void)munmap(tab, tab_map_len(cap));
    else
        free(tab);
}

static int stripe_resize(stripe *st, size_t cap)
{
    if (cap <= st->cap)
        return 0;
    grant_entry *tab = tab_alloc(&cap);
    if (!tab)
        return -1;
    for (size_t i = 0; i < st->cap; i++)
        if (st->tab[i].uid)
            tab_put(tab, cap, &st->tab[i], ug_mix64(st->tab[i].uid));
    tab_free(st->tab, st->cap);
    st->tab = tab;
    st->cap = cap;
    return 0;
}

/* Room for one more entry, so the insert after it cannot fail. A full
 * table doubles: grants keep coming, and a rehash costs one per entry. */
static int stripe_reserve(stripe *st)
{
    if (st->used + 1 <= st->cap / LOAD_DEN * LOAD_NUM)
        return 0;
    return stripe_resize(st, cap_for(2 * (st->used + 1)));
}

static grant_entry *stripe_insert(stripe *st, const grant_entry *e, uint64_t h)
{
    st->used++;
    return tab_put(st->tab, st->cap, e, h);
}

ug_scope *ug_scope_new(ug_store *s, const char *rollout, const char *to)
{
    ug_scope *sc = aligned_alloc(UG_CACHELINE, sizeof *sc);
    if (!sc)
        return NULL;
    memset(sc, 0, sizeof *sc);
    for (unsigned i = 0; i < NSTRIPES; i++)
        (void)pthread_mutex_init(&sc->stripes[i].mu, NULL);
    (void)pthread_mutex_init(&sc->stages_mu, NULL);
    sc->st = s;
    snprintf(sc->rollout, sizeof sc->rollout, "%s", rollout);
    snprintf(sc->to, sizeof sc->to, "%s", to);
    return sc;
}

static void stage_quota_free(ug_stage_quota *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->steal_mu);
    pthread_mutex_destroy(&q->ring_mu);
    free(q->slots);
    free(q);
}

void ug_scope_free(ug_scope *sc)
{
    if (!sc)
        return;
    for (unsigned i = 0; i < NSTRIPES; i++) {
        pthread_mutex_destroy(&sc->stripes[i].mu);
        tab_free(sc->stripes[i].tab, sc->stripes[i].cap);
    }
    for (size_t i = 0; i < sc->nstages; i++)
        stage_quota_free(sc->stages[i]);
    free(sc->stages);
    pthread_mutex_destroy(&sc->stages_mu);
    free(sc);
}

int ug_scope_presize(ug_scope *sc, size_t n, unsigned lo, unsigned hi)
{
    /* stripes fill unevenly (by about the root of their share): leave
     * each room for 1/16 more, and 64 */
    size_t per = n / NSTRIPES;
    per += per / 16 + 64;
    for (unsigned i = lo; i < hi && i < NSTRIPES; i++)
        if (stripe_resize(&sc->stripes[i], cap_for(per)) != 0)
            return -1;
    return 0;
}

void ug_scope_unload(ug_scope *sc)
{
    for (unsigned i = 0; i < NSTRIPES; i++) {
        tab_free(sc->stripes[i].tab, sc->stripes[i].cap);
        sc->stripes[i].tab = NULL;
        sc->stripes[i].cap = sc->stripes[i].used = 0;
    }
    for (unsigned o = 0; o < UG_OUT_COUNT_; o++)
        atomic_store_explicit(&sc->out[o], 0, memory_order_relaxed);
}

void ug_loader_init(ug_loader *l, ug_scope *sc, unsigned lo, unsigned hi)
{
    *l = (ug_loader){.sc = sc, .lo = lo, .hi = hi};
}

/* Inserts the record in ring slot i, whose table slot was prefetched
 * UG_LOAD_AHEAD records ago. */
static int loader_put(ug_loader *l, size_t i)
{
    stripe *st = stripe_of(l->sc, l->h[i]);
    if (stripe_reserve(st) != 0)
        return -1;
    const grant_record *r = &l->rec[i];
    uint8_t o = r->outcome < UG_OUT_COUNT_ ? r->outcome : UG_OUT_PENDING;
    grant_entry e = {.uid = l->uid[i], .at = r->at, .stage = r->stage,
                     .state = (uint8_t)(o | (r->flags & GR_PUBLISHED ? GF_PUBLISHED : 0)),
                     .out_at = r->outcome_at, .out_ts = r->outcome_at};
    stripe_insert(st, &e, l->h[i]);
    l->out[o]++;
    return 0;
}

/* At ten million grants a load is bound by cache misses on the tables:
 * each record's slot is prefetched when it comes in and written
 * UG_LOAD_AHEAD records later, so the fetches overlap. */
int ug_loader_add(ug_loader *l, uint64_t uid, const grant_record *r)
{
    uint64_t h = ug_mix64(uid);
    unsigned si = (unsigned)(h >> (64 - STRIPE_BITS));
    if (si < l->lo || si >= l->hi)
        return 0;
    stripe *st = &l->sc->stripes[si];
    if (st->cap) {
        const grant_entry *e = &st->tab[home_of(h, st->cap)];
        __builtin_prefetch(e, 1);
        __builtin_prefetch((const uint8_t *)(e + 1) - 1, 1); /* a quarter of the entries straddle two lines */
    }
    size_t i = l->n++ % UG_LOAD_AHEAD;
    if (l->n > UG_LOAD_AHEAD && loader_put(l, i) != 0)
        return -1;
    l->uid[i] = uid;
    l->h[i] = h;
    l->rec[i] = *r;
    return 0;
}

int ug_loader_finish(ug_loader *l)
{
    for (uint64_t k = l->n > UG_LOAD_AHEAD ? l->n - UG_LOAD_AHEAD : 0; k < l->n; k++)
        if (loader_put(l, (size_t)(k % UG_LOAD_AHEAD)) != 0)
            return -1;
    l->n = 0;
    for (unsigned o = 0; o < UG_OUT_COUNT_; o++)
        atomic_fetch_add_explicit(&l->sc->out[o], l->out[o], memory_order_relaxed);
    memset(l->out, 0, sizeof l->out);
    return 0;
}

static void info_of(const grant_entry *e, ug_grant_info *gi)
{
    if (!gi)
        return;
    *gi = (ug_grant_info){
        .found = e != NULL,
        .durable = e && !(e->state & GF_PENDING),
        .learned = e && (e->state & GF_LEARNED),
        .published = e && (e->state & GF_PUBLISHED),
        .stage = e ? e->stage : 0,
        .at = e ? e->at : 0,
        .outcome = e ? (ug_outcome)(e->state & GF_OUTCOME) : UG_OUT_PENDING,
        .outcome_at = e ? e->out_at : 0,
        .outcome_ts = e ? e->out_ts : 0,
    };
}

bool ug_scope_lookup(ug_scope *sc, uint64_t uid, ug_grant_info *gi)
{
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    pthread_mutex_lock(&st->mu);
    const grant_entry *e = stripe_find(st, uid, h);
    info_of(e, gi);
    pthread_mutex_unlock(&st->mu);
    return e != NULL;
}

void ug_scope_prefetch(ug_scope *sc, uint64_t uid)
{
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    /* under the lock: the table may be resized by a grant meanwhile */
    pthread_mutex_lock(&st->mu);
    if (st->cap)
        __builtin_prefetch(&st->tab[home_of(h, st->cap)]);
    pthread_mutex_unlock(&st->mu);
}

/* Marks e as having a record waiting in worker's queue. */
static void mark_queued(ug_scope *sc, grant_entry *e, unsigned worker)
{
    if (!(e->state & GF_QUEUED))
        atomic_fetch_add_explicit(&sc->queued, 1, memory_order_relaxed);
    e->state |= GF_QUEUED;
    e->worker = (uint8_t)worker;
}

ug_grant ug_stage_quota_grant(ug_stage_quota *q, unsigned worker, uint64_t uid, uint32_t now, ug_grant_info *gi)
{
    ug_scope *sc = q->sc;
    ug_store *s = sc->st;
    if (worker >= s->nworkers || uid == 0) {
        info_of(NULL, gi);
        return UG_GRANT_SPENT; /* misuse: fail closed */
    }
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    ug_grant g = UG_GRANT_SPENT;
    pthread_mutex_lock(&st->mu);
    grant_entry *e = stripe_find(st, uid, h);
    if (e) {
        g = UG_GRANT_ALREADY;
        goto out;
    }
    /* room first, so nothing can fail once a slot is taken: out of memory
     * answers SPENT (nothing offered) rather than losing a slot */
    if (stripe_reserve(st) != 0 || ug_queue_reserve(s, worker) != 0)
        goto out;
    if (atomic_load_explicit(&q->limit, memory_order_relaxed) != UG_QUOTA_UNLIMITED && !ug_stage_quota_take(q, worker))
        goto out;
    grant_entry ne = {.uid = uid, .at = now, .stage = q->id, .state = UG_OUT_PENDING | GF_PENDING};
    e = stripe_insert(st, &ne, h);
    mark_queued(sc, e, worker);
    (void)ug_queue_push(s, worker, sc, uid); /* reserved above */
    atomic_fetch_add_explicit(&q->n, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sc->out[UG_OUT_PENDING], 1, memory_order_relaxed);
    ug_stage_quota_offered(q, now);
    g = UG_GRANT_NEW;
out:
    info_of(e, gi);
    pthread_mutex_unlock(&st->mu);
    return g;
}

int ug_scope_make_durable(ug_scope *sc, unsigned worker, uint64_t uid)
{
    ug_store *s = sc->st;
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    grant_entry *e = stripe_find(st, uid, h);
    if (e && (e->state & GF_PENDING) && !((e->state & GF_QUEUED) && e->worker == worker)) {
        rc = ug_queue_reserve(s, worker);
        if (rc == 0) {
            mark_queued(sc, e, worker);
            (void)ug_queue_push(s, worker, sc, uid);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* Under e's stripe lock: e's outcome becomes o, queued on worker unless
 * learned. 0, or -1 out of memory (nothing changed). */
static int outcome_to(ug_scope *sc, unsigned worker, grant_entry *e, ug_outcome o, uint32_t at)
{
    ug_outcome old = (ug_outcome)(e->state & GF_OUTCOME);
    if (!(e->state & GF_LEARNED) && ug_queue_reserve(sc->st, worker) != 0)
        return -1;
    e->state = (uint8_t)((e->state & ~GF_OUTCOME) | (unsigned)o);
    e->out_at = at;
    atomic_fetch_sub_explicit(&sc->out[old], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sc->out[o], 1, memory_order_relaxed);
    if (!(e->state & GF_LEARNED)) {
        mark_queued(sc, e, worker);
        (void)ug_queue_push(sc->st, worker, sc, e->uid);
    }
    return 0;
}

int ug_scope_set_outcome(ug_scope *sc, unsigned worker, uint64_t uid, ug_outcome o, ug_outcome *before)
{
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    grant_entry *e = stripe_find(st, uid, h);
    ug_outcome old = e ? (ug_outcome)(e->state & GF_OUTCOME) : UG_OUT_PENDING;
    if (before)
        *before = old;
    if (e && old != o && (unsigned)o < UG_OUT_COUNT_)
        rc = outcome_to(sc, worker, e, o, e->out_at) == 0 ? 1 : -1;
    pthread_mutex_unlock(&st->mu);
    return rc;
}

const char *ug_outcome_name(ug_outcome o)
{
    static const char *const names[UG_OUT_COUNT_] = {"pending",         "upgraded", "rolled_back",   "declined",
                                                     "download_failed", "mismatch", "install_failed"};
    return (unsigned)o < UG_OUT_COUNT_ ? names[o] : "?";
}

unsigned ug_outcome_rank(ug_outcome o)
{
    static const unsigned rank[UG_OUT_COUNT_] = {
        [UG_OUT_PENDING] = 0,        [UG_OUT_DECLINED] = 1, [UG_OUT_DOWNLOAD_FAILED] = 2, [UG_OUT_MISMATCH] = 3,
        [UG_OUT_INSTALL_FAILED] = 4, [UG_OUT_UPGRADED] = 5, [UG_OUT_ROLLED_BACK] = 6,
    };
    return (unsigned)o < UG_OUT_COUNT_ ? rank[o] : 0;
}

bool ug_outcome_may_replace(const ug_grant_info *gi, const ug_outcome_put *p)
{
    if (!gi->found || gi->outcome == p->o || (unsigned)p->o >= UG_OUT_COUNT_ || p->ts < gi->outcome_ts)
        return false;
    if (p->ts == gi->outcome_ts && ug_outcome_rank(p->o) <= ug_outcome_rank(gi->outcome))
        return false;
    return gi->outcome != UG_OUT_ROLLED_BACK || p->o == UG_OUT_UPGRADED;
}

int ug_scope_put_outcome(ug_scope *sc, unsigned worker, uint64_t uid, const ug_outcome_put *p, ug_grant_info *before)
{
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    grant_entry *e = stripe_find(st, uid, h);
    ug_grant_info gi;
    info_of(e, &gi);
    if (before)
        *before = gi;
    if (e && (unsigned)p->o < UG_OUT_COUNT_) {
        if (ug_outcome_may_replace(&gi, p)) {
            rc = outcome_to(sc, worker, e, p->o, p->at) == 0 ? 1 : -1;
            if (rc == 1)
                e->out_ts = p->ts;
        } else if (p->o == (ug_outcome)(e->state & GF_OUTCOME) && p->ts > e->out_ts) {
            e->out_ts = p->ts; /* the same outcome, told later: it orders what follows */
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

bool ug_scope_record(ug_scope *sc, uint64_t uid, grant_record *r)
{
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    pthread_mutex_lock(&st->mu);
    const grant_entry *e = stripe_find(st, uid, h);
    bool ok = e && !(e->state & GF_LEARNED);
    if (ok)
        *r = (grant_record){.at = e->at, .outcome_at = e->out_at, .stage = e->stage,
                    .outcome = (uint8_t)(e->state & GF_OUTCOME), .flags = e->state & GF_PUBLISHED ? GR_PUBLISHED : 0};
    pthread_mutex_unlock(&st->mu);
    return ok;
}

/* The record written by worker's commit held the grant: it is durable. The
 * QUEUED mark goes only if no later record of it waits in another queue. */
void ug_scope_committed(ug_scope *sc, uint64_t uid, unsigned worker)
{
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    pthread_mutex_lock(&st->mu);
    grant_entry *e = stripe_find(st, uid, h);
    if (e) {
        e->state &= (uint8_t)~GF_PENDING;
        if ((e->state & GF_QUEUED) && e->worker == worker) {
            e->state &= (uint8_t)~GF_QUEUED;
            atomic_fetch_sub_explicit(&sc->queued, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&st->mu);
}

uint64_t ug_scope_outcomes(const ug_scope *sc, ug_outcome o)
{
    return (unsigned)o < UG_OUT_COUNT_ ? atomic_load_explicit(&sc->out[o], memory_order_relaxed) : 0;
}

void ug_scope_foreach(ug_scope *sc, ug_grant_fn fn, void *ctx)
{
    for (unsigned i = 0; i < NSTRIPES; i++) {
        stripe *st = &sc->stripes[i];
        pthread_mutex_lock(&st->mu);
        for (size_t k = 0; k < st->cap; k++) {
            if (!st->tab[k].uid)
                continue;
            ug_grant_info gi;
            info_of(&st->tab[k], &gi);
            fn(ctx, st->tab[k].uid, &gi);
        }
        pthread_mutex_unlock(&st->mu);
    }
}

/* q's grants among those sc holds: one pass over the tables (at ten
 * million grants a start makes it once per stage, so it reads the entries
 * directly rather than through ug_scope_foreach). Grants of one second
 * (a burst, a fill) seed the offer ring once per run. */
static void count_stage(ug_scope *sc, ug_stage_quota *q)
{
    uint64_t n = 0, npub = 0;
    uint32_t run_at = 0, run = 0;
    for (unsigned i = 0; i < NSTRIPES; i++) {
        stripe *st = &sc->stripes[i];
        pthread_mutex_lock(&st->mu);
        for (const grant_entry *e = st->tab, *end = st->tab + st->cap; e < end; e++) {
            if (!e->uid || e->stage != q->id || (e->state & GF_LEARNED))
                continue;
            n++;
            npub += (e->state & GF_PUBLISHED) != 0;
            if (e->at != run_at || run == UINT32_MAX) {
                if (run) /* offers per minute and hour outlive a restart */
                    ug_stage_quota_seed_offer(q, run_at, run);
                run_at = e->at;
                run = 0;
            }
            run++;
        }
        pthread_mutex_unlock(&st->mu);
    }
    if (run)
        ug_stage_quota_seed_offer(q, run_at, run);
    atomic_store_explicit(&q->n, n, memory_order_relaxed); /* q is not shared yet */
    atomic_store_explicit(&q->npub, npub, memory_order_relaxed);
}

static ug_stage_quota *stage_quota_new(ug_scope *sc, uint16_t id)
{
    unsigned n = sc->st->nworkers;
    ug_stage_quota *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->slots = aligned_alloc(UG_CACHELINE, n * sizeof(shard));
    if (!q->slots) {
        free(q);
        return NULL;
    }
    memset(q->slots, 0, n * sizeof(shard));
    (void)pthread_mutex_init(&q->steal_mu, NULL);
    (void)pthread_mutex_init(&q->ring_mu, NULL);
    q->sc = sc;
    q->id = id;
    atomic_init(&q->limit, 0);
    /* its grants are those the scope holds under its id: no grant of this
     * stage can run before the stage exists, so the count is exact */
    count_stage(sc, q);
    return q;
}

ug_stage_quota *ug_scope_quota(ug_scope *sc, const char *name, char *err, size_t errcap)
{
    uint16_t id = ug_store_stage_id(sc->st, name, err, errcap);
    if (!id)
        return NULL;
    ug_stage_quota *q = NULL;
    pthread_mutex_lock(&sc->stages_mu);
    for (size_t i = 0; i < sc->nstages; i++)
        if (sc->stages[i]->id == id) {
            q = sc->stages[i];
            goto out;
        }
    if (sc->nstages == sc->capstages) {
        size_t cap = sc->capstages ? sc->capstages * 2 : 8;
        ug_stage_quota **v = realloc(sc->stages, cap * sizeof *v);
        if (!v)
            goto oom;
        sc->stages = v;
        sc->capstages = cap;
    }
    if (!(q = stage_quota_new(sc, id)))
        goto oom;
    sc->stages[sc->nstages++] = q;
out:
    q->marked = true;
    pthread_mutex_unlock(&sc->stages_mu);
    return q;
oom:
    pthread_mutex_unlock(&sc->stages_mu);
    ug_store_fail(err, errcap, "state folder %s: stage %s: out of memory", sc->st->dir, name);
    return NULL;
}

/* Frees the stages the last marking did not reach; the caller holds no
 * worker inside them (see ug_store_sweep). */
void ug_scope_sweep_stages(ug_scope *sc)
{
    pthread_mutex_lock(&sc->stages_mu);
    size_t k = 0;
    for (size_t i = 0; i < sc->nstages; i++) {
        if (sc->stages[i]->marked)
            sc->stages[k++] = sc->stages[i];
        else
            stage_quota_free(sc->stages[i]);
    }
    sc->nstages = k;
    pthread_mutex_unlock(&sc->stages_mu);
}

void ug_scope_unmark_stages(ug_scope *sc)
{
    pthread_mutex_lock(&sc->stages_mu);
    for (size_t i = 0; i < sc->nstages; i++)
        sc->stages[i]->marked = false;
    pthread_mutex_unlock(&sc->stages_mu);
}

/* ---- learned grants, published marks ---------------------------------------- */

int ug_scope_add_learned(ug_scope *sc, uint64_t uid, uint16_t stage, uint32_t at, ug_outcome o)
{
    if (uid == 0 || (unsigned)o >= UG_OUT_COUNT_)
        return 0;
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    int rc = 1;
    pthread_mutex_lock(&st->mu);
    grant_entry *e = stripe_find(st, uid, h);
    if (e) {
        ug_outcome old = (ug_outcome)(e->state & GF_OUTCOME);
        if (o != UG_OUT_PENDING && o != old) {
            e->state = (uint8_t)((e->state & ~GF_OUTCOME) | (unsigned)o);
            atomic_fetch_sub_explicit(&sc->out[old], 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&sc->out[o], 1, memory_order_relaxed);
        }
        rc = 0;
    } else if (stripe_reserve(st) != 0) {
        rc = -1;
    } else {
        grant_entry ne = {.uid = uid, .at = at, .stage = stage, .state = (uint8_t)((unsigned)o | GF_LEARNED)};
        stripe_insert(st, &ne, h);
        atomic_fetch_add_explicit(&sc->out[o], 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int ug_scope_learn_outcome(ug_scope *sc, uint64_t uid, ug_outcome o)
{
    if (o == UG_OUT_PENDING || (unsigned)o >= UG_OUT_COUNT_)
        return 0;
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(sc, h);
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    grant_entry *e = stripe_find(st, uid, h);
    ug_outcome old = e ? (ug_outcome)(e->state & GF_OUTCOME) : o;
    if (old != o) {
        e->state = (uint8_t)((e->state & ~GF_OUTCOME) | (unsigned)o);
        atomic_fetch_sub_explicit(&sc->out[old], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&sc->out[o], 1, memory_order_relaxed);
        rc = 1;
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* The stage of sc numbered id, or NULL (stages_mu held by the caller). */
static ug_stage_quota *stage_by_id(ug_scope *sc, uint16_t id)
{
    for (size_t i = 0; i < sc->nstages; i++)
        if (sc->stages[i]->id == id)
            return sc->stages[i];
    return NULL;
}

size_t ug_scope_mark_published_mem(ug_scope *sc, const uint64_t *uids, size_t n, bool *write)
{
    size_t marked = 0;
    pthread_mutex_lock(&sc->stages_mu);
    ug_stage_quota *q = NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = ug_mix64(uids[i]);
        stripe *st = stripe_of(sc, h);
        write[i] = false;
        pthread_mutex_lock(&st->mu);
        grant_entry *e = stripe_find(st, uids[i], h);
        if (e && !(e->state & (GF_LEARNED | GF_PUBLISHED))) {
            e->state |= GF_PUBLISHED;
            if (!q || q->id != e->stage)
                q = stage_by_id(sc, e->stage);
            if (q)
                atomic_fetch_add(&q->npub, 1);
            write[i] = true;
            marked++;
        }
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&sc->stages_mu);
    return marked;
}

void ug_scope_unpublish_stage(ug_scope *sc, uint16_t stage)
{
    pthread_mutex_lock(&sc->stages_mu);
    ug_scope_lock_all(sc);
    for (unsigned i = 0; i < NSTRIPES; i++) {
        stripe *st = &sc->stripes[i];
        for (size_t k = 0; k < st->cap; k++)
            if (st->tab[k].uid && st->tab[k].stage == stage && !(st->tab[k].state & GF_LEARNED))
                st->tab[k].state &= (uint8_t)~GF_PUBLISHED;
    }
    ug_stage_quota *q = stage_by_id(sc, stage);
    if (q)
        atomic_store(&q->npub, 0);
    ug_scope_unlock_all(sc);
    pthread_mutex_unlock(&sc->stages_mu);
}

uint32_t ug_scope_id(const ug_scope *sc)
{
    return sc->id;
}
