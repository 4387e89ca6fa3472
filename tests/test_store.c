/* Tests of the store (plugin/store/): sticky grants, exact quota under concurrency, durability,
 * the state folder's lock, marker and checks, scopes per release, outcomes, flags, history, layout upgrades (1 and 2). */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "store/store.h"
#include "testutil.h"

static char g_dir[64];

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/ugq-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (g_dir[0] != '\0')
        (void)nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(quota, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(store, .init = setup, .fini = teardown, .timeout = 120);

#define NOW 1790000000u

typedef ug_store ug_quota;

static ug_quota *xopen_in(const char *dir, unsigned nworkers)
{
    char err[512] = "";
    ug_store_opts o = {.dir = dir, .nworkers = nworkers, .now = NOW};
    ug_quota *q = ug_store_open(&o, err, sizeof err);
    cr_assert_not_null(q, "open: %s", err);
    return q;
}

static ug_quota *xopen(unsigned nworkers)
{
    return xopen_in(g_dir, nworkers);
}

static ug_scope *xscope(ug_quota *q, const char *rollout, const char *to)
{
    char err[512] = "";
    ug_scope *sc = ug_store_scope(q, rollout, to, err, sizeof err);
    cr_assert_not_null(sc, "scope %s %s: %s", rollout, to, err);
    return sc;
}

static ug_stage_quota *xstage_in(ug_scope *sc, const char *name)
{
    char err[512] = "";
    ug_stage_quota *s = ug_scope_quota(sc, name, err, sizeof err);
    cr_assert_not_null(s, "stage %s: %s", name, err);
    return s;
}

/* The old suite's stages had a grant set each: one scope per stage name. */
static ug_stage_quota *xstage(ug_quota *q, const char *name)
{
    return xstage_in(xscope(q, name, "1.0.0"), name);
}

static ug_grant grant(ug_stage_quota *s, unsigned w, uint64_t uid)
{
    return ug_stage_quota_grant(s, w, uid, NOW, NULL);
}

static bool granted(ug_stage_quota *s, uint64_t uid)
{
    return ug_scope_lookup(ug_stage_quota_scope(s), uid, NULL);
}

static void xclose(ug_quota *q)
{
    char err[512] = "";
    cr_assert_eq(ug_store_close(q, err, sizeof err), 0, "close: %s", err);
}

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dULL;
}

/* A bijection of uint64: distinct inputs give distinct, scattered uids. */
static uint64_t scatter(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

Test(quota, basics_limit_three)
{
    ug_quota *q = xopen(2);
    ug_stage_quota *s = xstage(q, "canary");
    cr_expect_eq(grant(s, 0, 1), UG_GRANT_SPENT, "a new stage has share 0 until set_limit");
    cr_expect_eq(ug_stage_quota_remaining(s), 0);
    ug_stage_quota_set_limit(s, 3);
    cr_expect_eq(ug_stage_quota_remaining(s), 3);
    /* Worker 1 holds 1 slot of the 3; the other two come from worker 0. */
    cr_expect_eq(grant(s, 1, 10), UG_GRANT_NEW);
    cr_expect_eq(grant(s, 1, 10), UG_GRANT_ALREADY);
    cr_expect_eq(grant(s, 0, 10), UG_GRANT_ALREADY);
    cr_expect_eq(grant(s, 1, 0), UG_GRANT_SPENT, "uid 0 is no uid (protocol: 1..2^63-1): fails closed");
    cr_expect_eq(grant(s, 1, 9), UG_GRANT_NEW);
    cr_expect_eq(grant(s, 1, 9), UG_GRANT_ALREADY);
    cr_expect_eq(ug_stage_quota_remaining(s), 1);
    cr_expect_eq(grant(s, 1, UINT64_MAX), UG_GRANT_NEW);
    cr_expect_eq(grant(s, 0, 11), UG_GRANT_SPENT);
    cr_expect_eq(grant(s, 1, 11), UG_GRANT_SPENT);
    cr_expect_eq(grant(s, 0, UINT64_MAX), UG_GRANT_ALREADY);
    cr_expect_eq(ug_stage_quota_count(s), 3);
    cr_expect_eq(ug_stage_quota_remaining(s), 0);
    cr_expect(granted(s, 10));
    cr_expect(granted(s, 9));
    cr_expect_not(granted(s, 0));
    cr_expect_not(granted(s, 11));
    cr_expect_eq(grant(s, 2, 12), UG_GRANT_SPENT, "a worker index out of range fails closed");
    cr_expect_eq(ug_store_commit(q, 2), -1);

    ug_stage_quota *t = xstage(q, "other");
    cr_expect_neq(s, t);
    cr_expect_eq(xstage(q, "canary"), s, "one stage per name and scope");
    ug_stage_quota_set_limit(t, 1);
    cr_expect_eq(grant(t, 0, 11), UG_GRANT_NEW, "stages are independent");
    cr_expect_not(granted(s, 11));
    xclose(q);
}

/* A slot source that counts what it is told (tests of sourced stages). */
typedef struct {
    ug_slot_source src;
    atomic_bool open;
    atomic_int wanted;
} test_source;

static bool src_spendable(const ug_slot_source *s)
{
    return atomic_load(&((const test_source *)(const void *)s)->open);
}

static void src_wanted(const ug_slot_source *s)
{
    atomic_fetch_add(&((test_source *)(void *)s)->wanted, 1);
}

/* A sourced stage tells an empty stage's peers what its source says:
 * spent, soon, or held back for a 50 ms window during which its source is
 * told once; past the window, or past the source's fence, soon. A share
 * is spent when empty, whatever happens. */
Test(quota, a_sourced_stage_holds_peers_for_a_lease)
{
    static test_source ts = {.src = {.spendable = src_spendable, .wanted = src_wanted}, .open = true};
    ug_quota *q = xopen(2);
    ug_stage_quota *share = xstage(q, "share"), *s = xstage(q, "leased");
    ug_stage_quota_set_limit(share, 0);
    cr_expect_eq(ug_stage_quota_short(share, true), UG_SHORT_SPENT, "an empty share is spent");
    ug_stage_quota_set_sourced(s, &ts.src, 10);
    cr_expect_eq(ug_stage_quota_short(s, true), UG_SHORT_SOON, "a new sourced stage waits for its source's word");
    ug_stage_quota_set_outlook(s, UG_SHORT_SPENT);
    cr_expect_eq(ug_stage_quota_short(s, true), UG_SHORT_SPENT);
    ug_stage_quota_set_outlook(s, UG_SHORT_HOLD);
    cr_expect_eq(ug_stage_quota_short(s, false), UG_SHORT_HOLD, "a look asks nothing");
    cr_expect_eq(atomic_load(&ts.wanted), 0);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(ug_stage_quota_short(s, true), UG_SHORT_HOLD);
    cr_expect_eq(atomic_load(&ts.wanted), 1, "the source is told once per window");
    cr_expect_eq(ug_stage_quota_wanted(s), 5, "and counts the peers held");
    cr_expect_eq(ug_stage_quota_short(s, true), UG_SHORT_HOLD, "a new window");
    cr_expect_eq(atomic_load(&ts.wanted), 2);
    sleep_ms(80);
    cr_expect_eq(ug_stage_quota_short(s, true), UG_SHORT_SOON, "no slots after 50 ms: do not hold peers");
    cr_expect_eq(ug_stage_quota_wanted(s), 1);
    atomic_store(&ts.open, false);
    cr_expect_eq(ug_stage_quota_short(s, true), UG_SHORT_SOON, "past the source's fence: soon");
    atomic_store(&ts.open, true);
    cr_expect(ug_stage_quota_add_slots(s, 2));
    cr_expect_eq(grant(s, 0, 1), UG_GRANT_NEW);
    cr_expect_eq(grant(s, 1, 2), UG_GRANT_NEW);
    cr_expect_eq(grant(s, 1, 3), UG_GRANT_SPENT);
    ug_stage_quota_set_sourced(s, &ts.src, 20);
    cr_expect_eq(ug_stage_quota_short(s, false), UG_SHORT_SOON, "a new quota: soon until the source looks again");
    xclose(q);
}

Test(quota, unlimited_is_sticky_and_back)
{
    ug_quota *q = xopen(4);
    ug_stage_quota *s = xstage(q, "all");
    ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
    cr_expect_eq(ug_stage_quota_remaining(s), UG_QUOTA_UNLIMITED);
    for (uint64_t u = 1; u <= 5000; u++)
        cr_assert_eq(grant(s, (unsigned)(u % 4), u), UG_GRANT_NEW);
    for (uint64_t u = 1; u <= 5000; u++)
        cr_assert_eq(grant(s, (unsigned)(u % 3), u), UG_GRANT_ALREADY);
    cr_expect_eq(ug_stage_quota_count(s), 5000);
    cr_expect_eq(ug_stage_quota_remaining(s), UG_QUOTA_UNLIMITED);
    /* From unlimited to a finite share: what was granted counts. */
    ug_stage_quota_set_limit(s, 5002);
    cr_expect_eq(ug_stage_quota_remaining(s), 2);
    cr_expect_eq(grant(s, 3, 9001), UG_GRANT_NEW);
    cr_expect_eq(grant(s, 3, 9002), UG_GRANT_NEW);
    cr_expect_eq(grant(s, 3, 9003), UG_GRANT_SPENT);
    ug_stage_quota_set_limit(s, 100);
    cr_expect_eq(ug_stage_quota_remaining(s), 0);
    cr_expect_eq(grant(s, 0, 9004), UG_GRANT_SPENT);
    cr_expect_eq(grant(s, 0, 4999), UG_GRANT_ALREADY);
    ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
    cr_expect_eq(grant(s, 0, 9004), UG_GRANT_NEW);
    cr_expect_eq(ug_stage_quota_count(s), 5003);
    xclose(q);
}

Test(quota, bad_arguments)
{
    char err[512] = "";
    ug_store_opts o = {.dir = g_dir, .nworkers = 0};
    cr_expect_null(ug_store_open(&o, err, sizeof err));
    cr_expect(strstr(err, g_dir) != NULL, "%s", err);
    o.nworkers = UG_WORKERS_MAX + 1;
    cr_expect_null(ug_store_open(&o, err, sizeof err));

    char file[128];
    snprintf(file, sizeof file, "%s/plain", g_dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    err[0] = '\0';
    o = (ug_store_opts){.dir = file, .nworkers = 1};
    cr_expect_null(ug_store_open(&o, err, sizeof err));
    cr_expect(strstr(err, file) != NULL, "%s", err);

    char nested[128];
    snprintf(nested, sizeof nested, "%s/a/b/state/", g_dir);
    ug_quota *q = xopen_in(nested, 1);
    struct stat st;
    snprintf(nested, sizeof nested, "%s/a/b/state", g_dir);
    cr_assert_eq(stat(nested, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700);
    ug_scope *sc = xscope(q, "r", "1.0");
    err[0] = '\0';
    cr_expect_null(ug_scope_quota(sc, "", err, sizeof err));
    cr_expect(err[0] != '\0');
    cr_expect_not_null(ug_scope_quota(sc, "x2345678901234567890123456789012", err, sizeof err), "32 bytes is fine");
    xclose(q);
    cr_expect_eq(ug_store_close(NULL, err, sizeof err), 0);
}

/* ---- exactness under concurrency ---- */

typedef struct {
    ug_quota *q;
    ug_stage_quota *s;
    unsigned worker;
    uint64_t seed;
    unsigned attempts;
    uint64_t range;        /* uids 1..range */
    unsigned commit_every; /* 0: never */
    uint64_t *news;        /* [attempts] uids this worker got NEW */
    size_t nnew;
    uint8_t *tried;        /* [range + 1] */
    int commit_failures;
} grinder;

static void *grind(void *arg)
{
    grinder *g = arg;
    uint64_t x = g->seed;
    for (unsigned i = 0; i < g->attempts; i++) {
        uint64_t uid = 1 + rnd(&x) % g->range;
        g->tried[uid] = 1;
        ug_grant r = grant(g->s, g->worker, uid);
        if (r == UG_GRANT_NEW)
            g->news[g->nnew++] = uid;
        if (g->commit_every && (i + 1) % g->commit_every == 0 && ug_store_commit(g->q, g->worker) != 0)
            g->commit_failures++;
    }
    if (ug_store_commit(g->q, g->worker) != 0)
        g->commit_failures++;
    return NULL;
}

static void exactness(unsigned nthreads, unsigned attempts_total, uint64_t range, uint64_t quota)
{
    ug_quota *q = xopen(nthreads);
    ug_stage_quota *s = xstage(q, "bj-third");
    ug_stage_quota_set_limit(s, quota);
    grinder g[UG_WORKERS_MAX];
    pthread_t th[UG_WORKERS_MAX];
    for (unsigned i = 0; i < nthreads; i++) {
        g[i] = (grinder){.q = q, .s = s, .worker = i, .seed = 0x9e3779b97f4a7c15ULL * (i + 1),
                         .attempts = attempts_total / nthreads, .range = range, .commit_every = 997};
        g[i].news = calloc(g[i].attempts, sizeof *g[i].news);
        g[i].tried = calloc(range + 1, 1);
        cr_assert(g[i].news && g[i].tried);
    }
    for (unsigned i = 0; i < nthreads; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, grind, &g[i]), 0);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);

    uint8_t *newby = calloc(range + 1, 1);
    cr_assert_not_null(newby);
    uint64_t total = 0, distinct = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        cr_expect_eq(g[i].commit_failures, 0);
        for (size_t k = 0; k < g[i].nnew; k++) {
            cr_assert_eq(newby[g[i].news[k]], 0, "uid %lu NEW twice", (unsigned long)g[i].news[k]);
            newby[g[i].news[k]] = 1;
        }
        total += g[i].nnew;
    }
    for (uint64_t u = 1; u <= range; u++) {
        int t = 0;
        for (unsigned i = 0; i < nthreads; i++)
            t |= g[i].tried[u];
        distinct += (uint64_t)t;
    }
    uint64_t want = quota < distinct ? quota : distinct;
    cr_expect_eq(total, want, "NEW %lu, want min(%lu, %lu)", (unsigned long)total, (unsigned long)quota,
                 (unsigned long)distinct);
    cr_expect_eq(ug_stage_quota_count(s), total);
    cr_expect_eq(ug_stage_quota_remaining(s), quota - total);
    for (uint64_t u = 0; u <= range; u++)
        cr_assert_eq(granted(s, u), newby[u] == 1, "uid %lu", (unsigned long)u);
    xclose(q);

    q = xopen(nthreads);
    s = xstage(q, "bj-third");
    cr_expect_eq(ug_stage_quota_count(s), total);
    for (uint64_t u = 0; u <= range; u++)
        cr_assert_eq(granted(s, u), newby[u] == 1, "uid %lu after reopen", (unsigned long)u);
    ug_stage_quota_set_limit(s, quota);
    cr_expect_eq(ug_stage_quota_remaining(s), quota - total);
    xclose(q);

    for (unsigned i = 0; i < nthreads; i++) {
        free(g[i].news);
        free(g[i].tried);
    }
    free(newby);
}

Test(quota, exact_under_contention)
{
    exactness(8, 200000, 5000, 1000);
}

Test(quota, exact_when_quota_exceeds_uids)
{
    exactness(8, 200000, 5000, 10000);
}

Test(quota, exact_when_quota_equals_uids_tried)
{
    exactness(3, 100000, 700, 700);
}

Test(quota, one_busy_worker_steals_everything)
{
    ug_quota *q = xopen(8);
    ug_stage_quota *s = xstage(q, "short-ids");
    ug_stage_quota_set_limit(s, 1000); /* 125 per worker */
    unsigned news = 0;
    for (uint64_t u = 1; u <= 2000; u++) {
        ug_grant r = grant(s, 0, u);
        news += r == UG_GRANT_NEW;
        if (u == 500)
            cr_expect_eq(ug_stage_quota_remaining(s), 500);
        if (u > 1000)
            cr_assert_eq(r, UG_GRANT_SPENT, "uid %lu", (unsigned long)u);
    }
    cr_expect_eq(news, 1000);
    cr_expect_eq(ug_stage_quota_count(s), 1000);
    cr_expect_eq(ug_stage_quota_remaining(s), 0);
    /* Uneven spread: 10 over 8 workers is 2,2,1,1,1,1,1,1, all reachable from the last. */
    ug_stage_quota *t = xstage(q, "ten");
    ug_stage_quota_set_limit(t, 10);
    news = 0;
    for (uint64_t u = 1; u <= 20; u++)
        news += grant(t, 7, u) == UG_GRANT_NEW;
    cr_expect_eq(news, 10);
    xclose(q);
}

typedef struct {
    ug_stage_quota *s;
    unsigned worker;
    atomic_bool *spent_seen;
    uint64_t nnew, nspent, late_new;
} racer;

static void *race_distinct(void *arg)
{
    racer *r = arg;
    /* Each racer's uids are its own, so SPENT must mean "no slot anywhere",
     * for good: a NEW begun after any SPENT returned proves a false SPENT. */
    for (uint64_t i = 1; i <= 150000; i++) {
        bool after = atomic_load(r->spent_seen);
        ug_grant g = grant(r->s, r->worker, ((uint64_t)r->worker << 32) | i);
        r->nnew += g == UG_GRANT_NEW;
        r->late_new += g == UG_GRANT_NEW && after;
        if (g == UG_GRANT_SPENT) {
            r->nspent++;
            atomic_store(r->spent_seen, true);
        }
    }
    return NULL;
}

/* Half the workers idle, so the busy ones keep stealing from them and from
 * each other; slots must neither vanish nor multiply. */
Test(quota, steal_storm_is_exact)
{
    enum { NW = 8, NT = 4, Q = 200000 };
    ug_quota *q = xopen(NW);
    ug_stage_quota *s = xstage(q, "storm");
    for (int round = 0; round < 3; round++) {
        ug_stage_quota_set_limit(s, ug_stage_quota_count(s) + Q);
        racer r[NT];
        pthread_t th[NT];
        atomic_bool spent_seen = false;
        for (unsigned i = 0; i < NT; i++) {
            r[i] = (racer){.s = s, .worker = (unsigned)(round * NT) % NW + i, .spent_seen = &spent_seen};
            cr_assert_eq(pthread_create(&th[i], NULL, race_distinct, &r[i]), 0);
        }
        uint64_t news = 0;
        for (unsigned i = 0; i < NT; i++) {
            pthread_join(th[i], NULL);
            news += r[i].nnew;
            cr_assert_eq(r[i].late_new, 0, "round %d: SPENT while slots were left", round);
        }
        cr_assert_eq(news, Q, "round %d: %lu NEW", round, (unsigned long)news);
        cr_assert_eq(ug_stage_quota_remaining(s), 0);
        for (unsigned i = 0; i < NW; i++)
            cr_assert_eq(ug_store_commit(q, i), 0);
        /* Each racer's uid space restarts at 1: clear the set for the next round. */
        xclose(q);
        teardown();
        setup();
        q = xopen(NW);
        s = xstage(q, "storm");
    }
    xclose(q);
}

/* ---- set_limit while workers grant ---- */

typedef struct {
    ug_stage_quota *s;
    unsigned worker;
    atomic_bool *stop;
    uint64_t nnew;
    uint64_t last_new;
} spinner;

static void *spin(void *arg)
{
    spinner *p = arg;
    uint64_t x = 0x1234567ULL + p->worker;
    while (!atomic_load(p->stop)) {
        uint64_t uid = 1 + rnd(&x) % 1000000000ULL;
        if (grant(p->s, p->worker, uid) == UG_GRANT_NEW) {
            p->nnew++;
            p->last_new = uid;
        }
    }
    return NULL;
}

/* Waits until count reaches want (then checks it stays there). */
static void reach(ug_stage_quota *s, uint64_t want)
{
    double t0 = now_s();
    while (ug_stage_quota_count(s) < want) {
        cr_assert(now_s() - t0 < 30, "count %lu never reached %lu", (unsigned long)ug_stage_quota_count(s),
                  (unsigned long)want);
        sleep_ms(1);
    }
    sleep_ms(20);
    cr_assert_eq(ug_stage_quota_count(s), want);
    cr_assert_eq(ug_stage_quota_remaining(s), 0);
}

/* After lowering below the count nothing new is granted. */
static void hold(ug_stage_quota *s, uint64_t share)
{
    ug_stage_quota_set_limit(s, share);
    uint64_t c = ug_stage_quota_count(s);
    cr_assert_eq(ug_stage_quota_remaining(s), share > c ? share - c : 0);
    if (share <= c) {
        sleep_ms(20);
        cr_assert_eq(ug_stage_quota_count(s), c, "granted past a lowered share");
    }
}

Test(quota, set_limit_while_granting)
{
    enum { NT = 4 };
    ug_quota *q = xopen(NT);
    ug_stage_quota *s = xstage(q, "one-percent");
    atomic_bool stop = false;
    spinner p[NT];
    pthread_t th[NT];
    for (unsigned i = 0; i < NT; i++) {
        p[i] = (spinner){.s = s, .worker = i, .stop = &stop};
        cr_assert_eq(pthread_create(&th[i], NULL, spin, &p[i]), 0);
    }
    ug_stage_quota_set_limit(s, 100);
    reach(s, 100);
    ug_stage_quota_set_limit(s, 300);
    reach(s, 300);
    hold(s, 50);
    hold(s, 0);
    ug_stage_quota_set_limit(s, 700);
    reach(s, 700);
    hold(s, 200);
    ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
    sleep_ms(20);
    hold(s, 0); /* unlimited grants in flight when it returned are counted */
    uint64_t c = ug_stage_quota_count(s);
    cr_assert_gt(c, 700);
    ug_stage_quota_set_limit(s, c + 1000);
    reach(s, c + 1000);
    /* Raise and lower quickly, while grants race with the changes. */
    for (int i = 0; i < 200; i++)
        ug_stage_quota_set_limit(s, c + 1000 + (uint64_t)(i % 2 ? 500 : 10));
    ug_stage_quota_set_limit(s, c + 2000);
    reach(s, c + 2000);
    atomic_store(&stop, true);
    uint64_t total = 0, old = 0;
    for (unsigned i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        total += p[i].nnew;
        if (p[i].last_new)
            old = p[i].last_new;
    }
    cr_expect_eq(total, c + 2000);
    cr_expect_eq(ug_stage_quota_count(s), total);
    ug_stage_quota_set_limit(s, 10);
    cr_expect_eq(grant(s, 0, old), UG_GRANT_ALREADY);
    cr_expect_eq(grant(s, 1, 1000000001ULL), UG_GRANT_SPENT);
    xclose(q);
}

/* Many tiny shares (8 slots per worker): nearly every grant near a round's
 * end steals, racing with the owners spending; each round must end at
 * exactly its share. */
Test(quota, tiny_rounds_are_exact)
{
    enum { NW = 8, NT = 4, ROUNDS = 300, STEP = 64 };
    ug_quota *q = xopen(NW);
    ug_stage_quota *s = xstage(q, "rounds");
    atomic_bool stop = false;
    spinner p[NT];
    pthread_t th[NT];
    for (unsigned i = 0; i < NT; i++) {
        p[i] = (spinner){.s = s, .worker = 2 * i, .stop = &stop};
        cr_assert_eq(pthread_create(&th[i], NULL, spin, &p[i]), 0);
    }
    uint64_t share = 0;
    for (int r = 0; r < ROUNDS; r++) {
        share += STEP;
        ug_stage_quota_set_limit(s, share);
        double t0 = now_s();
        for (;;) {
            uint64_t c = ug_stage_quota_count(s);
            cr_assert_leq(c, share, "round %d: count %lu > share %lu", r, (unsigned long)c, (unsigned long)share);
            if (c == share && ug_stage_quota_remaining(s) == 0)
                break;
            cr_assert(now_s() - t0 < 10, "round %d stuck at %lu of %lu, %lu left", r, (unsigned long)c,
                      (unsigned long)share, (unsigned long)ug_stage_quota_remaining(s));
            sched_yield();
        }
    }
    atomic_store(&stop, true);
    uint64_t total = 0;
    for (unsigned i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        total += p[i].nnew;
    }
    cr_expect_eq(total, share);
    cr_expect_eq(ug_stage_quota_count(s), share);
    xclose(q);
}

/* ---- stages created while others grant ---- */

typedef struct {
    ug_quota *q;
    ug_stage_quota *s;
    atomic_bool *stop;
    uint64_t nnew;
    int fails;
} committer;

static void *grant_and_commit(void *arg)
{
    committer *c = arg;
    uint64_t u = 1;
    while (!atomic_load(c->stop)) {
        for (int i = 0; i < 100; i++)
            c->nnew += grant(c->s, 0, u++) == UG_GRANT_NEW;
        c->fails += ug_store_commit(c->q, 0) != 0;
    }
    return NULL;
}

Test(quota, stages_created_while_granting)
{
    ug_quota *q = xopen(2);
    ug_stage_quota *a = xstage(q, "a");
    ug_stage_quota_set_limit(a, UG_QUOTA_UNLIMITED);
    atomic_bool stop = false;
    committer c = {.q = q, .s = a, .stop = &stop};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, grant_and_commit, &c), 0);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "s-%d", i);
        ug_stage_quota *s = xstage(q, name); /* a scope of its own, loaded while "a" grants */
        ug_stage_quota_set_limit(s, 5);
        unsigned news = 0;
        for (uint64_t u = 1; u <= 10; u++)
            news += grant(s, 1, u + (uint64_t)i) == UG_GRANT_NEW;
        cr_assert_eq(news, 5);
        cr_assert_eq(ug_store_commit(q, 1), 0);
    }
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    cr_expect_eq(c.fails, 0);
    cr_expect_eq(ug_stage_quota_count(a), c.nnew);
    uint64_t na = c.nnew;
    xclose(q);

    q = xopen(1);
    cr_expect_eq(ug_stage_quota_count(xstage(q, "a")), na);
    for (int i = 0; i < 50; i++) {
        char name[16];
        snprintf(name, sizeof name, "s-%d", i);
        ug_stage_quota *s = xstage(q, name);
        cr_expect_eq(ug_stage_quota_count(s), 5);
        cr_expect(granted(s, 1 + (uint64_t)i));
        cr_expect_not(granted(s, 6 + (uint64_t)i));
    }
    xclose(q);
}

/* ---- durability ---- */

Test(quota, survives_reopen)
{
    ug_quota *q = xopen(2);
    ug_stage_quota *s = xstage(q, "bj-third");
    ug_stage_quota_set_limit(s, 10);
    for (uint64_t u = 100; u < 103; u++)
        cr_assert_eq(grant(s, (unsigned)(u % 2), u), UG_GRANT_NEW);
    cr_assert_eq(ug_store_commit(q, 0), 0);
    cr_assert_eq(ug_store_commit(q, 1), 0);
    cr_assert_eq(ug_store_commit(q, 1), 0, "nothing queued is fine");
    cr_assert_eq(grant(s, 0, 103), UG_GRANT_NEW);
    xclose(q); /* commits 103 */

    q = xopen(3); /* another worker count is fine */
    s = xstage(q, "bj-third");
    cr_expect_eq(ug_stage_quota_count(s), 4);
    for (uint64_t u = 100; u < 104; u++)
        cr_expect(granted(s, u));
    cr_expect_not(granted(s, 104));
    cr_expect_eq(grant(s, 2, 101), UG_GRANT_ALREADY);
    cr_expect_eq(ug_stage_quota_remaining(s), 0, "share 0 until set_limit");
    ug_stage_quota_set_limit(s, 10);
    cr_expect_eq(ug_stage_quota_remaining(s), 6);
    unsigned news = 0;
    for (uint64_t u = 200; u < 220; u++)
        news += grant(s, (unsigned)(u % 3), u) == UG_GRANT_NEW;
    cr_expect_eq(news, 6);
    ug_stage_quota_set_limit(s, 3);
    cr_expect_eq(ug_stage_quota_remaining(s), 0);
    cr_expect_eq(grant(s, 0, 100), UG_GRANT_ALREADY);
    cr_expect_eq(grant(s, 0, 300), UG_GRANT_SPENT);
    xclose(q);
}

Test(quota, crash_keeps_only_committed)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char err[512];
        ug_store_opts o = {.dir = g_dir, .nworkers = 2, .now = NOW};
        ug_quota *q = ug_store_open(&o, err, sizeof err);
        if (q == NULL)
            _exit(2);
        ug_scope *sc = ug_store_scope(q, "canary", "1.0.0", err, sizeof err);
        ug_stage_quota *s = sc ? ug_scope_quota(sc, "canary", err, sizeof err) : NULL;
        if (s == NULL)
            _exit(3);
        ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
        for (uint64_t u = 1; u <= 100; u++)
            if (grant(s, (unsigned)(u % 2), u) != UG_GRANT_NEW)
                _exit(4);
        if (ug_store_commit(q, 0) != 0 || ug_store_commit(q, 1) != 0)
            _exit(5);
        for (uint64_t u = 101; u <= 200; u++)
            if (grant(s, (unsigned)(u % 2), u) != UG_GRANT_NEW)
                _exit(6);
        _exit(0); /* crash: no commit, no close */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ug_quota *q = xopen(2);
    ug_stage_quota *s = xstage(q, "canary");
    cr_expect_eq(ug_stage_quota_count(s), 100);
    cr_expect(granted(s, 1));
    cr_expect(granted(s, 100));
    cr_expect_not(granted(s, 101));
    cr_expect_not(granted(s, 200));
    ug_stage_quota_set_limit(s, 150);
    cr_expect_eq(ug_stage_quota_remaining(s), 50);
    xclose(q);
}

/* A write past RLIMIT_FSIZE fails (EFBIG with SIGXFSZ ignored): a cheap way
 * to make LMDB's commit fail. Runs in a child so the limit cannot leak. */
Test(quota, failed_commit_keeps_grants_queued)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char err[512], path[128];
        ug_store_opts o = {.dir = g_dir, .nworkers = 1, .now = NOW};
        ug_quota *q = ug_store_open(&o, err, sizeof err);
        if (q == NULL)
            _exit(2);
        ug_scope *sc = ug_store_scope(q, "canary", "1.0.0", err, sizeof err);
        ug_stage_quota *s = sc ? ug_scope_quota(sc, "canary", err, sizeof err) : NULL;
        if (s == NULL)
            _exit(3);
        ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
        if (grant(s, 0, 1) != UG_GRANT_NEW || ug_store_commit(q, 0) != 0)
            _exit(4);
        snprintf(path, sizeof path, "%s/data.mdb", g_dir);
        struct stat st;
        struct rlimit rl;
        if (stat(path, &st) != 0 || getrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(5);
        rlim_t old = rl.rlim_cur;
        signal(SIGXFSZ, SIG_IGN);
        rl.rlim_cur = (rlim_t)st.st_size;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(6);
        for (uint64_t u = 2; u <= 20000; u++)
            if (grant(s, 0, scatter(u)) != UG_GRANT_NEW)
                _exit(7);
        if (ug_store_commit(q, 0) != -1)
            _exit(8);
        if (ug_store_commit(q, 0) != -1)
            _exit(9);
        if (ug_stage_quota_count(s) != 20000 || !granted(s, scatter(777)))
            _exit(10);
        rl.rlim_cur = old;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(11);
        if (ug_store_commit(q, 0) != 0)
            _exit(12);
        if (ug_store_close(q, err, sizeof err) != 0)
            _exit(13);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ug_quota *q = xopen(1);
    ug_stage_quota *s = xstage(q, "canary");
    cr_expect_eq(ug_stage_quota_count(s), 20000);
    cr_expect(granted(s, scatter(20000)));
    xclose(q);
}

/* ---- scale ---- */

Test(quota, one_million_grants)
{
    enum { N = 1000000, BATCH = 10000 };
    ug_quota *q = xopen(1);
    ug_stage_quota *s = xstage(q, "bj-third");
    ug_stage_quota_set_limit(s, N);
    double t0 = now_s();
    for (uint64_t i = 1; i <= N; i++) {
        cr_assert_eq(grant(s, 0, scatter(i)), UG_GRANT_NEW);
        if (i % BATCH == 0)
            cr_assert_eq(ug_store_commit(q, 0), 0);
    }
    double t1 = now_s();
    cr_expect_eq(grant(s, 0, scatter(N + 1)), UG_GRANT_SPENT);
    cr_expect_eq(grant(s, 0, scatter(N / 2)), UG_GRANT_ALREADY);
    xclose(q);

    q = xopen(2);
    double t2 = now_s();
    s = xstage(q, "bj-third");
    double t3 = now_s();
    cr_expect_eq(ug_stage_quota_count(s), N);
    for (uint64_t i = 1; i <= N; i += 997)
        cr_assert(granted(s, scatter(i)));
    cr_expect_not(granted(s, scatter(N + 1)));
    ug_stage_quota_set_limit(s, N + 5);
    cr_expect_eq(ug_stage_quota_remaining(s), 5);
    xclose(q);
    cr_log_info("1M grants, committed in batches of %d: %.2f s; loading 1M: %.3f s", BATCH, t1 - t0, t3 - t2);
}

/* ---- one rollout's release: scopes, stages sharing grants ---- */

Test(store, stages_of_a_scope_share_its_grants)
{
    ug_quota *q = xopen(2);
    ug_scope *sc = xscope(q, "desktop", "2.0.0");
    ug_stage_quota *a = xstage_in(sc, "canary"), *b = xstage_in(sc, "ramp");
    ug_stage_quota_set_limit(a, 2);
    ug_stage_quota_set_limit(b, 10);
    ug_grant_info gi;
    cr_assert_eq(ug_stage_quota_grant(a, 0, 7, NOW + 5, &gi), UG_GRANT_NEW);
    cr_expect(gi.found && !gi.durable && gi.at == NOW + 5 && gi.stage == ug_stage_quota_id(a));
    cr_expect_eq(ug_stage_quota_grant(b, 1, 7, NOW, &gi), UG_GRANT_ALREADY, "one grant per uid and release");
    cr_expect_eq(gi.stage, ug_stage_quota_id(a), "it stays the first stage's");
    cr_expect_eq(ug_stage_quota_count(a), 1);
    cr_expect_eq(ug_stage_quota_count(b), 0);
    cr_expect_eq(ug_stage_quota_remaining(b), 10, "nothing spent in the other stage");
    cr_expect_str_eq(ug_store_stage_name(q, gi.stage), "canary");
    cr_assert_eq(ug_store_commit(q, 0), 0);
    cr_expect(ug_scope_lookup(sc, 7, &gi) && gi.durable);
    xclose(q);
}

Test(store, a_new_release_starts_whole_and_the_old_one_comes_back)
{
    ug_quota *q = xopen(1);
    ug_stage_quota *s = xstage_in(xscope(q, "desktop", "2.0.0"), "ramp");
    ug_stage_quota_set_limit(s, 3);
    for (uint64_t u = 1; u <= 5; u++)
        grant(s, 0, u);
    cr_expect_eq(ug_stage_quota_count(s), 3);
    cr_assert_eq(ug_store_commit(q, 0), 0);
    ug_scope *next = xscope(q, "desktop", "2.0.1");
    ug_stage_quota *t = xstage_in(next, "ramp");
    ug_stage_quota_set_limit(t, 3);
    cr_expect_eq(ug_stage_quota_count(t), 0, "nobody is sticky for 2.0.1");
    cr_expect_not(ug_scope_lookup(next, 1, NULL));
    cr_expect_eq(ug_stage_quota_remaining(t), 3, "the quota is whole");
    cr_expect_eq(grant(t, 0, 1), UG_GRANT_NEW);
    cr_expect_not_null(xscope(q, "laptop", "2.0.0"));
    cr_expect_not(ug_scope_lookup(xscope(q, "laptop", "2.0.0"), 1, NULL), "another rollout, another scope");
    xclose(q);

    q = xopen(1);
    ug_stage_quota *back = xstage_in(xscope(q, "desktop", "2.0.0"), "ramp");
    cr_expect_eq(ug_stage_quota_count(back), 3, "going back finds 2.0.0's grants");
    ug_stage_quota_set_limit(back, 3);
    cr_expect_eq(grant(back, 0, 2), UG_GRANT_ALREADY);
    cr_expect_eq(grant(back, 0, 9), UG_GRANT_SPENT);
    cr_expect_eq(ug_stage_quota_count(xstage_in(xscope(q, "desktop", "2.0.1"), "ramp")), 1,
                 "close committed 2.0.1's grant");
    xclose(q);
}

/* ---- the state folder ---- */

Test(store, a_second_instance_is_refused_naming_the_holder)
{
    ug_quota *q = xopen(1);
    char err[512] = "", want[64];
    ug_store_opts o = {.dir = g_dir, .nworkers = 1};
    cr_expect_null(ug_store_open(&o, err, sizeof err), "same process, second instance");
    snprintf(want, sizeof want, "in use by pid %ld", (long)getpid());
    cr_expect(strstr(err, want) && strstr(err, "upgate.lock"), "%s", err);

    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char e2[512];
        _exit(ug_store_open(&o, e2, sizeof e2) == NULL && strstr(e2, "in use by pid") ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process is refused too");
    xclose(q);
    xclose(xopen(1)); /* the lock dies with its holder */
}

static void grant_some(unsigned n)
{
    ug_quota *q = xopen(1);
    ug_stage_quota *s = xstage(q, "canary");
    ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
    for (uint64_t u = 1; u <= n; u++)
        grant(s, 0, scatter(u));
    cr_assert_eq(ug_store_commit(q, 0), 0);
    xclose(q);
}

static char *open_error(void)
{
    static char err[512];
    err[0] = '\0';
    ug_store_opts o = {.dir = g_dir, .nworkers = 1};
    ug_store *s = ug_store_open(&o, err, sizeof err);
    if (s)
        ug_store_close(s, NULL, 0);
    return s ? NULL : err;
}

Test(store, a_vanished_store_is_refused)
{
    char path[128];
    grant_some(20);
    snprintf(path, sizeof path, "%s/data.mdb", g_dir);
    cr_assert_eq(truncate(path, 0), 0);
    char *err = open_error();
    cr_assert_not_null(err, "an emptied data.mdb must not start empty");
    cr_expect(strstr(err, "data.mdb is empty") && strstr(err, "store.id"), "%s", err);
    cr_assert_eq(unlink(path), 0);
    err = open_error();
    cr_assert_not_null(err, "a missing data.mdb must not start empty");
    cr_expect(strstr(err, "data.mdb is missing"), "%s", err);
    /* the operator's way out: remove the marker, start from nothing */
    snprintf(path, sizeof path, "%s/store.id", g_dir);
    cr_assert_eq(unlink(path), 0);
    cr_expect_null(open_error());
}

Test(store, a_truncated_store_is_refused_not_sigbus)
{
    char path[128];
    grant_some(50000);
    snprintf(path, sizeof path, "%s/data.mdb", g_dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, st.st_size / 2), 0);
    char *err = open_error();
    cr_assert_not_null(err);
    cr_expect(strstr(err, "damaged") && strstr(err, "truncated"), "%s", err);
}

/* A full disk at start: a real tmpfs in a mount namespace where this
 * machine allows one, else a file size limit. Either way the open must
 * fail with a clear line, and no signal may kill the process. */
static int full_disk_child(const char *dir)
{
    char fill[256], err[512];
    snprintf(fill, sizeof fill, "%s/filler", dir);
    int fd = open(fill, O_WRONLY | O_CREAT, 0600);
    static char block[4096];
    while (fd >= 0 && write(fd, block, sizeof block) > 0)
        ;
    if (fd >= 0)
        close(fd);
    char state[256];
    snprintf(state, sizeof state, "%s/state", dir);
    ug_store_opts o = {.dir = state, .nworkers = 1};
    ug_store *s = ug_store_open(&o, err, sizeof err);
    if (s)
        return 10;
    fprintf(stderr, "full disk: %s\n", err);
    return strstr(err, state) && (strstr(err, "No space left") || strstr(err, "too large")) ? 0 : 11;
}

Test(store, a_full_disk_at_start_is_a_clear_error)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char mnt[128];
        snprintf(mnt, sizeof mnt, "%s/mnt", g_dir);
        if (mkdir(mnt, 0700) != 0)
            _exit(20);
        if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
            mount("upgate-test", mnt, "tmpfs", 0, "size=256k") == 0)
            _exit(full_disk_child(mnt));
        /* no mount namespace here: a file size limit makes writes fail alike */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(21);
        _exit(full_disk_child(mnt));
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "killed by signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_expect_eq(WEXITSTATUS(status), 0, "child status %d", WEXITSTATUS(status));
}

static void keep_log(void *ctx, int level, const char *msg)
{
    (void)level;
    snprintf(ctx, 512, "%s", msg);
}

Test(store, a_layout_1_folder_is_upgraded_in_place)
{
    char cmd[512], out[1024];
    snprintf(cmd, sizeof cmd, "%s/tests/mkstate-v1 %s canary:1,2,3 one-percent:3,4,5,6", tu_build_dir(), g_dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    char logged[512] = "";
    char err[512] = "";
    ug_store_opts o = {.dir = g_dir, .nworkers = 2, .now = NOW, .upgrade_rollout = "default",
                       .upgrade_to = "2.0.0", .log_ctx = logged};
    o.log = keep_log;
    ug_store *s = ug_store_open(&o, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    cr_expect(strstr(logged, "upgraded from layout 1: 6 grants of 2 stages"), "log: %s", logged);
    ug_scope *sc = xscope(s, "default", "2.0.0");
    ug_stage_quota *a = xstage_in(sc, "canary"), *b = xstage_in(sc, "one-percent");
    cr_expect_eq(ug_stage_quota_count(a), 3);
    cr_expect_eq(ug_stage_quota_count(b), 3, "uid 3 keeps its first stage: one grant per uid");
    ug_grant_info gi;
    for (uint64_t u = 1; u <= 6; u++) {
        cr_expect(ug_scope_lookup(sc, u, &gi) && gi.durable, "uid %lu", (unsigned long)u);
        cr_expect_eq(gi.at, NOW, "stamped at the upgrade");
        cr_expect_eq(gi.outcome, UG_OUT_PENDING);
    }
    cr_expect_not(ug_scope_lookup(sc, 7, NULL));
    ug_stage_quota_set_limit(a, 4);
    cr_expect_eq(ug_stage_quota_remaining(a), 1);
    xclose(s);
    /* once upgraded, it opens as layout 2 without a hint */
    s = xopen(1);
    cr_expect_eq(ug_stage_quota_count(xstage_in(xscope(s, "default", "2.0.0"), "canary")), 3);
    xclose(s);
}

Test(store, a_layout_1_folder_needs_a_release_to_upgrade_into)
{
    char cmd[512], out[1024];
    snprintf(cmd, sizeof cmd, "%s/tests/mkstate-v1 %s canary:1", tu_build_dir(), g_dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    char *err = open_error();
    cr_assert_not_null(err);
    cr_expect(strstr(err, "layout 1"), "%s", err);
}

/* ---- a layout-2 folder ---- */

static void put_raw(MDB_txn *txn, MDB_dbi db, const void *k, size_t kl, const void *v, size_t vl)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    cr_assert_eq(mdb_put(txn, db, &key, &val, 0), 0);
}

static void put_grant(MDB_txn *txn, MDB_dbi db, uint32_t scope, uint64_t uid, uint16_t stage, uint8_t outcome,
                      uint8_t flags)
{
    uint8_t k[12], v[12] = {0};
    for (int i = 0; i < 4; i++)
        k[i] = (uint8_t)(scope >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        k[4 + i] = (uint8_t)(uid >> (56 - 8 * i));
    uint32_t at = NOW - 100;
    memcpy(v, &at, 4); /* grant time; outcome time (4) reserved, 0 */
    memcpy(v + 8, &stage, 2);
    v[10] = outcome;
    v[11] = flags;
    put_raw(txn, db, k, sizeof k, v, sizeof v);
}

/* A state folder as layout 2 (upgate before the log) wrote it, to the byte
 * of its docs/state.md: five named databases, meta "layout" 2 and the
 * counters, no "wal" key, no grants.wal.* files, store.id saying layout 2.
 * Scope 1 (default, 2.0.0): uids 1..100 of stage canary, outcome uid % 7,
 * every tenth published; scope 2 (beta, 3.0.0): uids 5..9 of stage wide;
 * beta paused; one history line. */
static void write_layout2(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta, names, grants, flags, history;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
    cr_assert_eq(mdb_dbi_open(txn, "names", MDB_CREATE, &names), 0);
    cr_assert_eq(mdb_dbi_open(txn, "grants", MDB_CREATE, &grants), 0);
    cr_assert_eq(mdb_dbi_open(txn, "flags", MDB_CREATE, &flags), 0);
    cr_assert_eq(mdb_dbi_open(txn, "history", MDB_CREATE, &history), 0);
    uint32_t two = 2, three = 3, one = 1;
    put_raw(txn, meta, "layout", 6, &two, 4);
    put_raw(txn, meta, "next_scope", 10, &three, 4);
    put_raw(txn, meta, "next_stage", 10, &three, 4);
    put_raw(txn, names, "s:canary", 8, &one, 4);
    put_raw(txn, names, "s:wide", 6, &two, 4);
    put_raw(txn, names, "r:default\0" "2.0.0", 15, &one, 4);
    put_raw(txn, names, "r:beta\0" "3.0.0", 12, &two, 4);
    for (uint64_t u = 1; u <= 100; u++)
        put_grant(txn, grants, 1, u, 1, (uint8_t)(u % 7), u % 10 == 0 ? 1 : 0);
    for (uint64_t u = 5; u <= 9; u++)
        put_grant(txn, grants, 2, u, 2, 0, 0);
    put_raw(txn, flags, "pause:beta", 10, "1", 1);
    uint8_t seq[8] = {0, 0, 0, 0, 0, 0, 0, 1}, line[8 + 16];
    for (int i = 0; i < 8; i++)
        line[i] = (uint8_t)((uint64_t)(NOW - 50) >> (56 - 8 * i)); /* big endian, as history.c writes it */
    memcpy(line + 8, "layout 2 history", 16);
    put_raw(txn, history, seq, sizeof seq, line, sizeof line);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    char path[128];
    snprintf(path, sizeof path, "%s/store.id", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "upgate state folder\nlayout 2\ncreated %u\n", NOW - 200);
    cr_assert_eq(fclose(f), 0);
}

static void last_line(void *ctx, uint64_t at, const char *line)
{
    snprintf(ctx, 64, "%llu %s", (unsigned long long)at, line);
}

/* Every grant, outcome, published mark, stage, flag and history line of
 * the layout-2 folder, as this code reads them. */
static void expect_layout2(ug_quota *q)
{
    ug_scope *sc = xscope(q, "default", "2.0.0");
    ug_stage_quota *canary = xstage_in(sc, "canary");
    cr_expect_eq(ug_stage_quota_id(canary), 1);
    cr_expect_eq(ug_stage_quota_count(canary), 100);
    ug_grant_info gi;
    for (uint64_t u = 1; u <= 100; u++) {
        cr_assert(ug_scope_lookup(sc, u, &gi) && gi.durable, "uid %llu", (unsigned long long)u);
        cr_expect(gi.stage == 1 && gi.at == NOW - 100 && gi.outcome == (ug_outcome)(u % 7) &&
                      gi.published == (u % 10 == 0),
                  "uid %llu", (unsigned long long)u);
    }
    ug_stage_quota *wide = xstage_in(xscope(q, "beta", "3.0.0"), "wide");
    cr_expect_eq(ug_stage_quota_id(wide), 2);
    cr_expect_eq(ug_stage_quota_count(wide), 5);
    cr_expect(ug_scope_lookup(ug_stage_quota_scope(wide), 7, NULL));
    cr_expect_str_eq(ug_store_stage_name(q, 1), "canary");
    char buf[8];
    cr_expect_eq(ug_store_get(q, "pause:beta", buf, sizeof buf), 1);
    char hist[64] = "";
    ug_store_history(q, last_line, hist);
    char want[64];
    snprintf(want, sizeof want, "%u layout 2 history", NOW - 50);
    cr_expect_str_eq(hist, want);
}

Test(store, a_layout_2_folder_is_upgraded_in_place)
{
    write_layout2(g_dir);
    ug_quota *q = xopen(2);
    expect_layout2(q);
    char path[128];
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/grants.wal.%d", g_dir, f);
        cr_expect_eq(access(path, F_OK), 0, "the open made %s", path);
    }
    /* the counters go on: a new stage and release get the next ids */
    ug_stage_quota *fresh = xstage_in(xscope(q, "default", "2.0.0"), "fresh");
    cr_expect_eq(ug_stage_quota_id(fresh), 3);
    ug_stage_quota_set_limit(fresh, UG_QUOTA_UNLIMITED);
    cr_expect_eq(grant(fresh, 1, 500), UG_GRANT_NEW);
    cr_expect_eq(ug_store_commit(q, 1), 0);
    cr_expect_eq(ug_scope_id(xscope(q, "gamma", "4.0.0")), 3);
    xclose(q);
    /* it says layout 3 now, and opens again with everything */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_open(env, g_dir, MDB_RDONLY, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    MDB_val k = {6, "layout"}, v;
    cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
    uint32_t layout;
    memcpy(&layout, v.mv_data, 4);
    cr_expect_eq(layout, 3);
    MDB_val kw = {3, "wal"};
    cr_expect_eq(mdb_get(txn, meta, &kw, &v), 0, "the log's place is kept");
    mdb_txn_abort(txn);
    mdb_env_close(env);
    q = xopen(1);
    expect_layout2(q);
    cr_expect(granted(xstage_in(xscope(q, "default", "2.0.0"), "fresh"), 500));
    xclose(q);
}

/* ---- durability across workers ---- */

Test(store, a_grant_queued_elsewhere_is_made_durable_by_the_answering_worker)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char err[512];
        ug_store_opts o = {.dir = g_dir, .nworkers = 2, .now = NOW};
        ug_store *s = ug_store_open(&o, err, sizeof err);
        ug_scope *sc = s ? ug_store_scope(s, "r", "2.0.0", err, sizeof err) : NULL;
        ug_stage_quota *q = sc ? ug_scope_quota(sc, "canary", err, sizeof err) : NULL;
        if (!q)
            _exit(2);
        ug_stage_quota_set_limit(q, 10);
        ug_grant_info gi;
        if (ug_stage_quota_grant(q, 0, 42, NOW, &gi) != UG_GRANT_NEW || gi.durable)
            _exit(3);
        /* worker 1 answers uid 42 again: it must not rely on worker 0 */
        if (!ug_scope_lookup(sc, 42, &gi) || gi.durable || ug_scope_make_durable(sc, 1, 42) != 0)
            _exit(4);
        if (ug_store_commit(s, 1) != 0 || !ug_scope_lookup(sc, 42, &gi) || !gi.durable)
            _exit(5);
        _exit(0); /* worker 0 never commits: a crash */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    ug_quota *q = xopen(1);
    ug_scope *sc = xscope(q, "r", "2.0.0");
    cr_expect(ug_scope_lookup(sc, 42, NULL), "the grant behind the second worker's HINT survived");
    ug_stage_quota *s = xstage_in(sc, "canary");
    ug_stage_quota_set_limit(s, 10);
    cr_expect_eq(ug_stage_quota_remaining(s), 9);
    xclose(q);
}

/* ---- outcomes ---- */

Test(store, outcomes_change_count_and_persist)
{
    ug_quota *q = xopen(2);
    ug_scope *sc = xscope(q, "r", "2.0.0");
    ug_stage_quota *s = xstage_in(sc, "all");
    ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
    for (uint64_t u = 1; u <= 10; u++)
        grant(s, 0, u);
    cr_expect_eq(ug_scope_outcomes(sc, UG_OUT_PENDING), 10);
    ug_outcome before;
    cr_expect_eq(ug_scope_set_outcome(sc, 1, 1, UG_OUT_UPGRADED, &before), 1);
    cr_expect_eq(before, UG_OUT_PENDING);
    cr_expect_eq(ug_scope_set_outcome(sc, 1, 1, UG_OUT_UPGRADED, NULL), 0, "no change, nothing queued");
    cr_expect_eq(ug_scope_set_outcome(sc, 1, 2, UG_OUT_MISMATCH, NULL), 1);
    cr_expect_eq(ug_scope_set_outcome(sc, 1, 2, UG_OUT_UPGRADED, NULL), 1, "a later success replaces a failure");
    cr_expect_eq(ug_scope_set_outcome(sc, 1, 1, UG_OUT_ROLLED_BACK, NULL), 1);
    cr_expect_eq(ug_scope_set_outcome(sc, 1, 99, UG_OUT_DECLINED, NULL), 0, "never offered: changes nothing");
    cr_expect_eq(ug_scope_outcomes(sc, UG_OUT_PENDING), 8);
    cr_expect_eq(ug_scope_outcomes(sc, UG_OUT_UPGRADED), 1);
    cr_expect_eq(ug_scope_outcomes(sc, UG_OUT_ROLLED_BACK), 1);
    cr_assert_eq(ug_store_commit(q, 0), 0);
    cr_assert_eq(ug_store_commit(q, 1), 0);
    xclose(q);
    q = xopen(1);
    sc = xscope(q, "r", "2.0.0");
    ug_grant_info gi;
    cr_expect(ug_scope_lookup(sc, 1, &gi) && gi.outcome == UG_OUT_ROLLED_BACK);
    cr_expect(ug_scope_lookup(sc, 2, &gi) && gi.outcome == UG_OUT_UPGRADED);
    cr_expect_eq(ug_scope_outcomes(sc, UG_OUT_PENDING), 8);
    xclose(q);
}

Test(store, offers_are_counted_per_minute_and_hour)
{
    ug_quota *q = xopen(1);
    ug_stage_quota *s = xstage(q, "r");
    ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
    uint64_t m, h;
    for (uint64_t u = 1; u <= 5; u++)
        ug_stage_quota_grant(s, 0, u, NOW, NULL);
    for (uint64_t u = 6; u <= 8; u++)
        ug_stage_quota_grant(s, 0, u, NOW + 120, NULL);
    ug_stage_quota_offers(s, NOW + 130, &m, &h);
    cr_expect_eq(m, 3);
    cr_expect_eq(h, 8);
    ug_stage_quota_offers(s, NOW + 4000, &m, &h);
    cr_expect_eq(m, 0);
    cr_expect_eq(h, 0);
    xclose(q);

    /* a restart reads them back from the grants' times (issue 20 §7) */
    q = xopen(2);
    s = xstage(q, "r");
    ug_stage_quota_offers(s, NOW + 130, &m, &h);
    cr_expect_eq(m, 3, "after a restart: %lu", (unsigned long)m);
    cr_expect_eq(h, 8, "after a restart: %lu", (unsigned long)h);
    ug_stage_quota_set_limit(s, UG_QUOTA_UNLIMITED);
    ug_stage_quota_grant(s, 1, 9, NOW + 130, NULL);
    ug_stage_quota_offers(s, NOW + 130, &m, &h);
    cr_expect_eq(m, 4);
    cr_expect_eq(h, 9);
    xclose(q);
}

/* ---- memory is freed for what the policy no longer names ---- */

Test(store, sweep_frees_what_is_not_named_but_keeps_queued_and_stored)
{
    ug_quota *q = xopen(1);
    ug_stage_quota *a = xstage(q, "a");
    ug_stage_quota_set_limit(a, 5);
    cr_assert_eq(grant(a, 0, 1), UG_GRANT_NEW);
    ug_store_unmark(q);
    ug_stage_quota *b = xstage(q, "b");
    ug_store_sweep(q); /* "a" has a grant queued: kept */
    cr_expect_eq(xstage(q, "a"), a);
    cr_assert_eq(ug_store_commit(q, 0), 0);
    ug_store_unmark(q);
    cr_expect_eq(xstage(q, "b"), b);
    ug_store_sweep(q); /* now "a" goes */
    ug_stage_quota *a2 = xstage(q, "a");
    cr_expect_eq(ug_stage_quota_count(a2), 1, "its grant is loaded again from disk");
    xclose(q);
}

/* ---- operator flags and history ---- */

static void count_line(void *ctx, uint64_t at, const char *line)
{
    unsigned *n = ctx;
    char want[32];
    snprintf(want, sizeof want, "change %u", *n + 6);
    cr_expect_str_eq(line, want);
    cr_expect_eq(at, NOW + *n + 6);
    (*n)++;
}

Test(store, history_keeps_the_last_thousand)
{
    ug_quota *q = xopen(1);
    for (unsigned i = 1; i <= 1005; i++) {
        char line[32];
        snprintf(line, sizeof line, "change %u", i);
        cr_assert_eq(ug_store_history_add(q, NOW + i, line), 0);
    }
    xclose(q);
    q = xopen(1);
    unsigned n = 0;
    ug_store_history(q, count_line, &n);
    cr_expect_eq(n, 1000);
    xclose(q);
}

static void collect_key(void *ctx, const char *key, const void *val, size_t len)
{
    char *out = ctx;
    strncat(out, key, 64);
    strncat(out, "=", 2);
    strncat(out, val, len < 16 ? len : 16);
    strncat(out, ";", 2);
}

Test(store, flags_are_durable)
{
    ug_quota *q = xopen(1);
    cr_assert_eq(ug_store_put(q, "halt:a", "crash", 5), 0);
    cr_assert_eq(ug_store_put(q, "halt:b", "x", 1), 0);
    cr_assert_eq(ug_store_put(q, "pause:a", "", 0), 0);
    cr_assert_eq(ug_store_del(q, "halt:b"), 0);
    cr_assert_eq(ug_store_del(q, "halt:zzz"), 0, "deleting nothing is fine");
    xclose(q);
    q = xopen(1);
    char buf[16];
    cr_expect_eq(ug_store_get(q, "halt:a", buf, sizeof buf), 5);
    cr_expect_eq(ug_store_get(q, "halt:b", buf, sizeof buf), 0);
    cr_expect_eq(ug_store_get(q, "halt:a", buf, 2), -1, "does not fit");
    char all[256] = "";
    ug_store_scan(q, "halt:", collect_key, all);
    cr_expect_str_eq(all, "halt:a=crash;");
    xclose(q);
}

/* A commit that fails is logged once with its cause, not at every retry,
 * and the recovery is logged once too. In a child: the file size limit
 * must not leak. */
typedef struct {
    unsigned n;
    char first[512], last[512];
} logbook;

static void book(void *ctx, int level, const char *msg)
{
    (void)level;
    logbook *b = ctx;
    if (b->n++ == 0)
        snprintf(b->first, sizeof b->first, "%s", msg);
    snprintf(b->last, sizeof b->last, "%s", msg);
}

Test(store, a_failed_commit_is_logged_with_its_cause_and_its_recovery)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char err[512];
        logbook b = {0};
        ug_store_opts o = {.dir = g_dir, .nworkers = 1, .now = NOW, .log = book, .log_ctx = &b};
        ug_store *s = ug_store_open(&o, err, sizeof err);
        ug_scope *sc = s ? ug_store_scope(s, "r", "1.0", err, sizeof err) : NULL;
        ug_stage_quota *q = sc ? ug_scope_quota(sc, "a", err, sizeof err) : NULL;
        if (!q)
            _exit(2);
        ug_stage_quota_set_limit(q, UG_QUOTA_UNLIMITED);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(3);
        for (uint64_t u = 1; u <= 100; u++)
            ug_stage_quota_grant(q, 0, u, NOW, NULL);
        for (int i = 0; i < 5; i++)
            if (ug_store_commit(s, 0) != -1)
                _exit(4);
        if (b.n != 1 || !strstr(b.first, "cannot store 100 grant records") || !strstr(b.first, "File too large"))
            _exit(5);
        rl.rlim_cur = RLIM_INFINITY;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0 || ug_store_commit(s, 0) != 0)
            _exit(6);
        if (b.n != 2 || !strstr(b.last, "stores grants again"))
            _exit(7);
        if (ug_store_commit(s, 0) != 0 || b.n != 2)
            _exit(8);
        _exit(ug_store_close(s, err, sizeof err) == 0 ? 0 : 9);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
