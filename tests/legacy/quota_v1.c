/* Layout 1 of the state folder, as main wrote it before layout 2 (kept verbatim to make test folders): sticky per-stage uid sets in LMDB. */
#include "util/mix.h"
#include "quota_v1.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Layout and rules (why it is exact):
 * - Store: one LMDB env in the state dir, one named DB "g:<stage>" per stage,
 *   key = the uid (native uint64, MDB_INTEGERKEY), empty value. A stage's count
 *   is the number of its uids; no counter is stored, so counts cannot drift
 *   from the grants.
 * - Memory: each stage keeps its granted uids in NSTRIPES independently locked
 *   open-addressing tables; the stripe is chosen by a hash of the uid.
 * - Slots: the share is split into one cache-line-padded atomic shard per
 *   worker. A grant holds its uid's stripe lock from the lookup to the insert,
 *   taking a slot in between (its own shard first, else moving half of the
 *   largest other shard under the stage's steal mutex). Slots are only ever
 *   moved, never created, except by set_limit, which holds every stripe lock
 *   and so sees no grant in flight: consumed == uids in the set, exactly, in
 *   every transition (finite or unlimited, raised or lowered).
 * - A new stage has share 0 (every new uid SPENT) until ug_qstage_set_limit:
 *   failing closed is the safe surprise. Callers set the limit right after
 *   ug_quota_stage; on a stage loaded with c grants, set_limit(share) leaves
 *   share - c slots.
 * - Grants are queued per worker (only that worker touches its queue) and made
 *   durable by ug_quota_commit, one LMDB write txn per batch.
 * - Do not open the same state dir twice in one process (an LMDB rule).
 */

#define NSTRIPES_BITS 6
#define NSTRIPES (1u << NSTRIPES_BITS)
#define CACHELINE 64
#define MAP_SIZE ((size_t)4 << 30) /* sparse: only used pages take disk */
#define MAX_DBS 1024u
#define NAME_MAX_LEN 32u
#define DB_PREFIX "g:"
/* Larger batches commit in several txns: keeps one txn far from LMDB's dirty
 * page limit (MDB_TXN_FULL) even after many failed commits piled up. */
#define COMMIT_CHUNK 16384u

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "MDB_INTEGERKEY needs size_t-wide uid keys");

typedef struct {
    alignas(CACHELINE) pthread_mutex_t mu;
    uint64_t *tab;       /* open addressing, linear probing; 0 marks empty */
    size_t cap;          /* power of two (or 0 before the first insert) */
    size_t used;         /* nonzero uids in tab */
    bool has_zero;       /* uid 0 cannot live in tab, so it is a flag */
    _Atomic uint64_t n;  /* used + has_zero, readable without the lock */
} stripe;

typedef struct {
    alignas(CACHELINE) _Atomic int64_t v; /* slots left; only this worker decrements it lock-free */
} shard;

typedef struct {
    ug_qstage *s;
    uint64_t uid;
} pend;

typedef struct {
    alignas(CACHELINE) pend *v; /* grants of this worker not yet durable */
    size_t n, cap;
} wqueue;

struct ug_qstage {
    stripe stripes[NSTRIPES];
    ug_quota *q;
    MDB_dbi dbi;
    _Atomic uint64_t limit;   /* the share; UG_QUOTA_UNLIMITED: grants skip slots */
    pthread_mutex_t steal_mu; /* serializes moves between shards */
    shard *slots;             /* [q->nworkers] */
    char name[NAME_MAX_LEN + 1];
};

struct ug_quota {
    MDB_env *env;
    char *dir;
    unsigned nworkers;
    wqueue *queues; /* [nworkers] */
    pthread_mutex_t reg_mu; /* guards stages/nstages/capstages and dbi opening */
    ug_qstage **stages;
    size_t nstages, capstages;
};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static inline stripe *stripe_of(ug_qstage *s, uint64_t h)
{
    return &s->stripes[h >> (64 - NSTRIPES_BITS)];
}

static bool stripe_has(const stripe *st, uint64_t uid, uint64_t h)
{
    if (uid == 0)
        return st->has_zero;
    if (st->cap == 0)
        return false;
    size_t mask = st->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t v = st->tab[i];
        if (v == uid)
            return true;
        if (v == 0)
            return false;
    }
}

static void tab_put(uint64_t *tab, size_t mask, uint64_t uid, uint64_t h)
{
    size_t i = h & mask;
    while (tab[i] != 0)
        i = (i + 1) & mask;
    tab[i] = uid;
}

/* Makes the table at least cap_min slots (power of two); -1 on out of memory. */
static int stripe_resize(stripe *st, size_t cap_min)
{
    size_t cap = 16;
    while (cap < cap_min)
        cap <<= 1;
    if (cap <= st->cap)
        return 0;
    uint64_t *tab = calloc(cap, sizeof *tab);
    if (tab == NULL)
        return -1;
    for (size_t i = 0; i < st->cap; i++)
        if (st->tab[i] != 0)
            tab_put(tab, cap - 1, st->tab[i], ug_mix64(st->tab[i]));
    free(st->tab);
    st->tab = tab;
    st->cap = cap;
    return 0;
}

/* Room for one more uid at <= 50% load, so the insert after it cannot fail. */
static int stripe_reserve(stripe *st)
{
    if ((st->used + 1) * 2 <= st->cap)
        return 0;
    return stripe_resize(st, st->cap ? st->cap * 2 : 16);
}

/* uid must be absent and room reserved. */
static void stripe_insert(stripe *st, uint64_t uid, uint64_t h)
{
    if (uid == 0) {
        st->has_zero = true;
    } else {
        tab_put(st->tab, st->cap - 1, uid, h);
        st->used++;
    }
    atomic_store_explicit(&st->n, st->n + 1, memory_order_relaxed);
}

static int queue_reserve(wqueue *wq)
{
    if (wq->n < wq->cap)
        return 0;
    size_t cap = wq->cap ? wq->cap * 2 : 256;
    pend *v = realloc(wq->v, cap * sizeof *v);
    if (v == NULL)
        return -1;
    wq->v = v;
    wq->cap = cap;
    return 0;
}

/* Moves half (rounded up) of the largest other shard to worker w, keeping one
 * of them for the caller. The steal mutex matters for exactness: a move is
 * two atomic steps, and a concurrent thief could otherwise see every shard
 * empty while slots are in transit and answer SPENT too early. Under it,
 * other shards only shrink (their owners spend), so "all zero" is final. */
static bool steal(ug_qstage *s, unsigned w)
{
    unsigned n = s->q->nworkers;
    bool got = false;
    pthread_mutex_lock(&s->steal_mu);
    for (;;) {
        unsigned best = n;
        int64_t bv = 0;
        for (unsigned j = 0; j < n; j++) {
            int64_t v = atomic_load_explicit(&s->slots[j].v, memory_order_relaxed);
            if (j != w && v > bv) {
                bv = v;
                best = j;
            }
        }
        if (best == n)
            break;
        int64_t take = bv - bv / 2;
        if (atomic_compare_exchange_strong(&s->slots[best].v, &bv, bv - take)) {
            if (take > 1)
                atomic_fetch_add(&s->slots[w].v, take - 1);
            got = true;
            break;
        }
        /* Its owner spent one meanwhile: look again. */
    }
    pthread_mutex_unlock(&s->steal_mu);
    return got;
}

static bool take_slot(ug_qstage *s, unsigned w)
{
    _Atomic int64_t *mine = &s->slots[w].v;
    int64_t v = atomic_load_explicit(mine, memory_order_relaxed);
    while (v > 0)
        if (atomic_compare_exchange_weak(mine, &v, v - 1))
            return true;
    return steal(s, w);
}

ug_grant ug_qstage_grant(ug_qstage *s, unsigned worker, uint64_t uid)
{
    ug_quota *q = s->q;
    if (worker >= q->nworkers)
        return UG_GRANT_SPENT; /* misuse: fail closed */
    wqueue *wq = &q->queues[worker];
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(s, h);
    ug_grant g = UG_GRANT_SPENT;

    pthread_mutex_lock(&st->mu);
    if (stripe_has(st, uid, h)) {
        g = UG_GRANT_ALREADY;
        goto out;
    }
    /* Make room before taking a slot, so nothing can fail after it; out of
     * memory answers SPENT (nothing offered) rather than losing a slot. */
    if (stripe_reserve(st) != 0 || queue_reserve(wq) != 0)
        goto out;
    if (atomic_load_explicit(&s->limit, memory_order_relaxed) != UG_QUOTA_UNLIMITED && !take_slot(s, worker))
        goto out;
    stripe_insert(st, uid, h);
    wq->v[wq->n++] = (pend){s, uid};
    g = UG_GRANT_NEW;
out:
    pthread_mutex_unlock(&st->mu);
    return g;
}

bool ug_qstage_granted(ug_qstage *s, uint64_t uid)
{
    uint64_t h = ug_mix64(uid);
    stripe *st = stripe_of(s, h);
    pthread_mutex_lock(&st->mu);
    bool r = stripe_has(st, uid, h);
    pthread_mutex_unlock(&st->mu);
    return r;
}

uint64_t ug_qstage_count(ug_qstage *s)
{
    uint64_t c = 0;
    for (unsigned i = 0; i < NSTRIPES; i++)
        c += atomic_load_explicit(&s->stripes[i].n, memory_order_relaxed);
    return c;
}

/* Exact when no grant runs; while grants run a slot moving between shards
 * may be missed for an instant. */
uint64_t ug_qstage_remaining(ug_qstage *s)
{
    if (atomic_load_explicit(&s->limit, memory_order_relaxed) == UG_QUOTA_UNLIMITED)
        return UG_QUOTA_UNLIMITED;
    uint64_t r = 0;
    for (unsigned j = 0; j < s->q->nworkers; j++) {
        int64_t v = atomic_load_explicit(&s->slots[j].v, memory_order_relaxed);
        if (v > 0)
            r += (uint64_t)v;
    }
    return r;
}

/* Holds every stripe lock (in order; a grant holds one stripe, then maybe the
 * steal mutex, so no cycle): no grant is in flight, hence consumed is exactly
 * the number of uids in the set, and the new slots are share - consumed. A
 * share beyond INT64_MAX slots is clamped to INT64_MAX (never reached). */
void ug_qstage_set_limit(ug_qstage *s, uint64_t share)
{
    unsigned n = s->q->nworkers;
    for (unsigned i = 0; i < NSTRIPES; i++)
        pthread_mutex_lock(&s->stripes[i].mu);

    uint64_t consumed = 0;
    for (unsigned i = 0; i < NSTRIPES; i++)
        consumed += s->stripes[i].n;
    atomic_store(&s->limit, share);
    uint64_t rem = 0;
    if (share != UG_QUOTA_UNLIMITED && share > consumed)
        rem = share - consumed;
    if (rem > (uint64_t)INT64_MAX)
        rem = (uint64_t)INT64_MAX;
    uint64_t per = rem / n, extra = rem % n;
    for (unsigned j = 0; j < n; j++)
        atomic_store(&s->slots[j].v, (int64_t)(per + (j < extra ? 1 : 0)));

    for (unsigned i = NSTRIPES; i-- > 0;)
        pthread_mutex_unlock(&s->stripes[i].mu);
}

static void stage_free(ug_qstage *s)
{
    if (s == NULL)
        return;
    for (unsigned i = 0; i < NSTRIPES; i++) {
        pthread_mutex_destroy(&s->stripes[i].mu);
        free(s->stripes[i].tab);
    }
    pthread_mutex_destroy(&s->steal_mu);
    free(s->slots);
    free(s);
}

static ug_qstage *stage_new(ug_quota *q, const char *name)
{
    ug_qstage *s = aligned_alloc(CACHELINE, sizeof *s);
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof *s);
    size_t slots_size = (size_t)q->nworkers * sizeof(shard);
    s->slots = aligned_alloc(CACHELINE, slots_size);
    if (s->slots == NULL) {
        free(s);
        return NULL;
    }
    memset(s->slots, 0, slots_size);
    /* With default attributes glibc's init cannot fail. */
    for (unsigned i = 0; i < NSTRIPES; i++)
        (void)pthread_mutex_init(&s->stripes[i].mu, NULL);
    (void)pthread_mutex_init(&s->steal_mu, NULL);
    s->q = q;
    atomic_init(&s->limit, 0);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* Opens (creating) the stage's DB and loads its uids into s, in one write
 * txn: LMDB wants a DB's first open serialized and in a txn that commits
 * before the handle is used elsewhere; reg_mu provides the former. */
static int stage_load(ug_quota *q, ug_qstage *s, char *err, size_t errcap)
{
    char dbname[sizeof DB_PREFIX + NAME_MAX_LEN];
    snprintf(dbname, sizeof dbname, DB_PREFIX "%s", s->name);
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    const char *what = "mdb_txn_begin";
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc != 0)
        goto fail;
    what = "mdb_dbi_open";
    rc = mdb_dbi_open(txn, dbname, MDB_INTEGERKEY | MDB_CREATE, &s->dbi);
    if (rc != 0)
        goto fail;
    MDB_stat ms;
    what = "mdb_stat";
    rc = mdb_stat(txn, s->dbi, &ms);
    if (rc != 0)
        goto fail;
    /* Presize for 50% load with some slack for uneven stripes, so loading a
     * million uids does not rehash. */
    size_t per = ms.ms_entries / NSTRIPES;
    per += per / 8 + 8;
    for (unsigned i = 0; i < NSTRIPES; i++) {
        if (stripe_resize(&s->stripes[i], per * 2) != 0) {
            set_err(err, errcap, "quota: state dir %s: stage %s: out of memory", q->dir, s->name);
            mdb_txn_abort(txn);
            return -1;
        }
    }
    what = "mdb_cursor_open";
    rc = mdb_cursor_open(txn, s->dbi, &cur);
    if (rc != 0)
        goto fail;
    MDB_val k, v;
    what = "mdb_cursor_get";
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint64_t uid;
        if (k.mv_size != sizeof uid) {
            rc = MDB_CORRUPTED;
            goto fail;
        }
        memcpy(&uid, k.mv_data, sizeof uid);
        uint64_t h = ug_mix64(uid);
        stripe *st = stripe_of(s, h);
        /* Keys are unique in the DB, so no lookup; the stage is not shared yet. */
        if (stripe_reserve(st) != 0) {
            set_err(err, errcap, "quota: state dir %s: stage %s: out of memory", q->dir, s->name);
            mdb_cursor_close(cur);
            mdb_txn_abort(txn);
            return -1;
        }
        stripe_insert(st, uid, h);
    }
    if (rc != MDB_NOTFOUND)
        goto fail;
    mdb_cursor_close(cur);
    cur = NULL;
    what = "mdb_txn_commit";
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto fail;
    return 0;
fail:
    set_err(err, errcap, "quota: state dir %s: stage %s: %s: %s", q->dir, s->name, what, mdb_strerror(rc));
    if (cur != NULL)
        mdb_cursor_close(cur);
    if (txn != NULL)
        mdb_txn_abort(txn);
    return -1;
}

static bool name_ok(const char *name)
{
    size_t n = 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        if (n >= NAME_MAX_LEN || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return n > 0;
}

ug_qstage *ug_quota_stage(ug_quota *q, const char *name, char *err, size_t errcap)
{
    if (name == NULL || !name_ok(name)) {
        set_err(err, errcap, "quota: state dir %s: invalid stage name (want [a-z0-9-]{1,32})", q->dir);
        return NULL;
    }
    ug_qstage *s = NULL;
    pthread_mutex_lock(&q->reg_mu);
    for (size_t i = 0; i < q->nstages; i++) {
        if (strcmp(q->stages[i]->name, name) == 0) {
            s = q->stages[i];
            goto out;
        }
    }
    if (q->nstages == q->capstages) {
        size_t cap = q->capstages ? q->capstages * 2 : 16;
        ug_qstage **v = realloc(q->stages, cap * sizeof *v);
        if (v == NULL) {
            set_err(err, errcap, "quota: state dir %s: stage %s: out of memory", q->dir, name);
            goto out;
        }
        q->stages = v;
        q->capstages = cap;
    }
    s = stage_new(q, name);
    if (s == NULL) {
        set_err(err, errcap, "quota: state dir %s: stage %s: out of memory", q->dir, name);
        goto out;
    }
    if (stage_load(q, s, err, errcap) != 0) {
        stage_free(s);
        s = NULL;
        goto out;
    }
    q->stages[q->nstages++] = s;
out:
    pthread_mutex_unlock(&q->reg_mu);
    return s;
}

/* Like mkdir -p; directories it creates get mode 0700. */
static int mkdir_p(const char *dir, char *err, size_t errcap)
{
    char buf[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf) {
        set_err(err, errcap, "quota: state dir '%s': empty or too long", dir);
        return -1;
    }
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            set_err(err, errcap, "quota: state dir %s: cannot create %s: %s", dir, buf, strerror(errno));
            return -1;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        set_err(err, errcap, "quota: state dir %s: not a directory", dir);
        return -1;
    }
    return 0;
}

ug_quota *ug_quota_open(const char *state_dir, unsigned nworkers, char *err, size_t errcap)
{
    if (state_dir == NULL) {
        set_err(err, errcap, "quota: no state dir");
        return NULL;
    }
    if (nworkers < 1 || nworkers > UG_WORKERS_MAX) {
        set_err(err, errcap, "quota: state dir %s: %u workers (want 1..%u)", state_dir, nworkers, UG_WORKERS_MAX);
        return NULL;
    }
    if (mkdir_p(state_dir, err, errcap) != 0)
        return NULL;
    ug_quota *q = calloc(1, sizeof *q);
    if (q == NULL)
        goto oom;
    q->nworkers = nworkers;
    q->dir = strdup(state_dir);
    q->queues = aligned_alloc(CACHELINE, nworkers * sizeof(wqueue));
    if (q->dir == NULL || q->queues == NULL)
        goto oom;
    memset(q->queues, 0, nworkers * sizeof(wqueue));
    (void)pthread_mutex_init(&q->reg_mu, NULL);

    const char *what = "mdb_env_create";
    int rc = mdb_env_create(&q->env);
    if (rc == 0) {
        what = "mdb_env_set_mapsize";
        rc = mdb_env_set_mapsize(q->env, MAP_SIZE);
    }
    if (rc == 0) {
        what = "mdb_env_set_maxdbs";
        rc = mdb_env_set_maxdbs(q->env, MAX_DBS);
    }
    if (rc == 0) {
        /* NOTLS: txns are not tied to threads' slots (workers are long-lived
         * but stage loads may run on any thread). */
        what = "mdb_env_open";
        rc = mdb_env_open(q->env, state_dir, MDB_NOTLS, 0600);
    }
    if (rc != 0) {
        set_err(err, errcap, "quota: state dir %s: %s: %s", state_dir, what, mdb_strerror(rc));
        if (q->env != NULL)
            mdb_env_close(q->env);
        q->env = NULL;
        pthread_mutex_destroy(&q->reg_mu);
        free(q->queues);
        free(q->dir);
        free(q);
        return NULL;
    }
    return q;
oom:
    set_err(err, errcap, "quota: state dir %s: out of memory", state_dir);
    if (q != NULL) {
        free(q->queues);
        free(q->dir);
        free(q);
    }
    return NULL;
}

static int pend_cmp(const void *a, const void *b)
{
    const pend *x = a, *y = b;
    if (x->s->dbi != y->s->dbi)
        return x->s->dbi < y->s->dbi ? -1 : 1;
    return (x->uid > y->uid) - (x->uid < y->uid);
}

/* Commits the queue from its tail in chunks of at most COMMIT_CHUNK (one
 * txn for any ordinary batch); sorted keys touch fewer B-tree pages. A chunk
 * that fails stays queued whole, and so does everything before it. */
int ug_quota_commit(ug_quota *q, unsigned worker)
{
    if (worker >= q->nworkers)
        return -1;
    wqueue *wq = &q->queues[worker];
    static const char empty = 0;
    while (wq->n > 0) {
        size_t k = wq->n < COMMIT_CHUNK ? wq->n : COMMIT_CHUNK;
        pend *batch = wq->v + (wq->n - k);
        qsort(batch, k, sizeof *batch, pend_cmp);
        MDB_txn *txn;
        int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
        if (rc != 0)
            return -1;
        for (size_t i = 0; i < k && rc == 0; i++) {
            MDB_val key = {sizeof batch[i].uid, &batch[i].uid};
            MDB_val val = {0, (void *)&empty};
            rc = mdb_put(txn, batch[i].s->dbi, &key, &val, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST)
                rc = 0; /* already durable (e.g. a retried chunk) */
        }
        if (rc != 0) {
            mdb_txn_abort(txn);
            return -1;
        }
        if (mdb_txn_commit(txn) != 0) /* frees txn even on failure */
            return -1;
        wq->n -= k;
    }
    return 0;
}

/* No one may use q or its stages any more. A failed final commit loses only
 * grants whose HINTs the host was told not to send. */
void ug_quota_close(ug_quota *q)
{
    if (q == NULL)
        return;
    for (unsigned w = 0; w < q->nworkers; w++) {
        if (ug_quota_commit(q, w) != 0) {
            /* Nothing to report to; see above. */
        }
        free(q->queues[w].v);
    }
    for (size_t i = 0; i < q->nstages; i++)
        stage_free(q->stages[i]);
    free(q->stages);
    mdb_env_close(q->env);
    pthread_mutex_destroy(&q->reg_mu);
    free(q->queues);
    free(q->dir);
    free(q);
}
