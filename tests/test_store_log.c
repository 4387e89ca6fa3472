/* Tests of the store's log (plugin/store/wal.c, commit.c): grants durable in it before any checkpoint, replayed at open,
 * moved into data.mdb by checkpoints while workers commit, found by a scope loaded again, group commits across workers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_impl.h"

static char g_dir[64];

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/ugw-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (g_dir[0] != '\0')
        (void)nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store_log, .init = setup, .fini = teardown, .timeout = 120);

#define NOW 1790000000u

typedef struct {
    unsigned n;
    char all[2048];
} logbook;

static void book(void *ctx, int level, const char *msg)
{
    (void)level;
    logbook *b = ctx;
    b->n++;
    size_t len = strlen(b->all);
    snprintf(b->all + len, sizeof b->all - len, "%s\n", msg);
}

static ug_store *xopen(unsigned nworkers, logbook *b)
{
    char err[512] = "";
    ug_store_opts o = {.dir = g_dir, .nworkers = nworkers, .now = NOW, .log = b ? book : NULL, .log_ctx = b};
    ug_store *s = ug_store_open(&o, err, sizeof err);
    cr_assert_not_null(s, "open: %s", err);
    return s;
}

static ug_stage_quota *xstage(ug_store *s, const char *rollout)
{
    char err[512] = "";
    ug_scope *sc = ug_store_scope(s, rollout, "2.0.0", err, sizeof err);
    cr_assert_not_null(sc, "%s", err);
    ug_stage_quota *q = ug_scope_quota(sc, "a", err, sizeof err);
    cr_assert_not_null(q, "%s", err);
    ug_stage_quota_set_limit(q, UG_QUOTA_UNLIMITED);
    return q;
}

static void xclose(ug_store *s)
{
    char err[512] = "";
    cr_assert_eq(ug_store_close(s, err, sizeof err), 0, "close: %s", err);
}

static void grant_range(ug_stage_quota *q, unsigned w, uint64_t from, uint64_t to)
{
    for (uint64_t u = from; u <= to; u++)
        cr_assert_eq(ug_stage_quota_grant(q, w, u, NOW, NULL), UG_GRANT_NEW, "uid %llu", (unsigned long long)u);
}

static void expect_durable(ug_stage_quota *q, uint64_t from, uint64_t to, const char *what)
{
    for (uint64_t u = from; u <= to; u++) {
        ug_grant_info gi;
        cr_expect(ug_scope_lookup(ug_stage_quota_scope(q), u, &gi) && gi.durable, "%s: uid %llu", what,
                  (unsigned long long)u);
    }
}

/* A child commits 1..50, checkpoints, commits 51..100 (in the log only)
 * and is killed: the next open replays 51..100, and the one after that
 * finds nothing left to replay. */
Test(store_log, a_kill_before_the_checkpoint_loses_nothing)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        ug_store *s = xopen(1, NULL);
        ug_stage_quota *q = xstage(s, "r");
        grant_range(q, 0, 1, 50);
        if (ug_store_commit(s, 0) != 0 || ug_wal_checkpoint(s, false) != 0)
            _exit(2);
        grant_range(q, 0, 51, 100);
        if (ug_store_commit(s, 0) != 0)
            _exit(3);
        raise(SIGKILL);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child status %d", status);
    logbook b = {0};
    ug_store *s = xopen(1, &b);
    cr_expect(strstr(b.all, "50 grant records replayed from the log"), "log: %s", b.all);
    ug_stage_quota *q = xstage(s, "r");
    expect_durable(q, 1, 100, "after the kill");
    cr_expect_eq(ug_stage_quota_count(q), 100);
    xclose(s);
    logbook b2 = {0};
    s = xopen(1, &b2);
    cr_expect_null(strstr(b2.all, "replayed"), "nothing left in the log: %s", b2.all);
    expect_durable(xstage(s, "r"), 1, 100, "reopened");
    xclose(s);
}

/* A scope swept after a reload has its grants only in the log until a
 * checkpoint: loaded again, it finds them. */
Test(store_log, a_scope_loaded_again_finds_grants_still_in_the_log)
{
    ug_store *s = xopen(1, NULL);
    ug_stage_quota *q = xstage(s, "gone");
    grant_range(q, 0, 1, 20);
    cr_assert_eq(ug_store_commit(s, 0), 0);
    ug_store_unmark(s);
    ug_store_sweep(s); /* frees the scope: nothing is queued */
    q = xstage(s, "gone");
    expect_durable(q, 1, 20, "loaded again");
    cr_expect_eq(ug_stage_quota_count(q), 20);
    cr_expect_eq(ug_stage_quota_grant(q, 0, 7, NOW, NULL), UG_GRANT_ALREADY);
    xclose(s);
}

/* Four workers grant and commit while another thread checkpoints over
 * and over: every grant is there after a kill (replayed or checkpointed),
 * and the stage counts each once. Bounded: 4 x 40 commits of 25. */
typedef struct {
    ug_store *s;
    ug_stage_quota *q;
    unsigned w;
    _Atomic bool *stop;
} worker_arg;

static void *committer(void *arg)
{
    worker_arg *a = arg;
    for (uint64_t round = 0; round < 40; round++) {
        uint64_t base = 1 + (uint64_t)a->w * 100000 + round * 25;
        for (uint64_t u = base; u < base + 25; u++)
            if (ug_stage_quota_grant(a->q, a->w, u, NOW, NULL) != UG_GRANT_NEW)
                _exit(4);
        if (ug_store_commit(a->s, a->w) != 0)
            _exit(5);
    }
    return NULL;
}

static void *checkpointer(void *arg)
{
    worker_arg *a = arg;
    while (!atomic_load(a->stop))
        if (ug_wal_checkpoint(a->s, false) != 0)
            _exit(6);
    return NULL;
}

Test(store_log, checkpoints_while_workers_commit)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        ug_store *s = xopen(4, NULL);
        ug_stage_quota *q = xstage(s, "r");
        _Atomic bool stop = false;
        worker_arg a[5];
        pthread_t th[5];
        for (unsigned i = 0; i < 5; i++) {
            a[i] = (worker_arg){s, q, i, &stop};
            pthread_create(&th[i], NULL, i < 4 ? committer : checkpointer, &a[i]);
        }
        for (unsigned i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        atomic_store(&stop, true);
        pthread_join(th[4], NULL);
        raise(SIGKILL);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child status %d", status);
    ug_store *s = xopen(1, NULL);
    ug_stage_quota *q = xstage(s, "r");
    for (unsigned w = 0; w < 4; w++)
        expect_durable(q, 1 + (uint64_t)w * 100000, (uint64_t)w * 100000 + 1000, "worker");
    cr_expect_eq(ug_stage_quota_count(q), 4000);
    xclose(s);
}

/* Concurrent flushes share writes: eight workers committing one record
 * at a time need fewer group writes than commits. */
typedef struct {
    ug_store *s;
    ug_stage_quota *q;
    unsigned w;
    pthread_barrier_t *go;
    _Atomic bool *failed;
} share_arg;

static void *one_at_a_time(void *arg)
{
    share_arg *a = arg;
    pthread_barrier_wait(a->go);
    for (uint64_t i = 0; i < 50; i++)
        if (ug_stage_quota_grant(a->q, a->w, 1 + a->w * 1000 + i, NOW, NULL) != UG_GRANT_NEW ||
            ug_store_commit(a->s, a->w) != 0)
            atomic_store(a->failed, true);
    return NULL;
}

Test(store_log, workers_share_a_write)
{
    ug_store *s = xopen(8, NULL);
    ug_stage_quota *q = xstage(s, "r");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 8);
    _Atomic bool failed = false;
    share_arg a[8];
    pthread_t th[8];
    for (unsigned i = 0; i < 8; i++) {
        a[i] = (share_arg){s, q, i, &go, &failed};
        pthread_create(&th[i], NULL, one_at_a_time, &a[i]);
    }
    for (unsigned i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    cr_assert_not(atomic_load(&failed), "a grant or a commit failed");
    pthread_mutex_lock(&s->wal.mu);
    uint64_t batches = s->wal.seq, gen = s->wal.gen;
    pthread_mutex_unlock(&s->wal.mu);
    cr_expect_eq(gen, s->wal.ck_gen, "no checkpoint ran");
    cr_expect_lt(batches, 400, "400 commits took %llu writes", (unsigned long long)batches);
    for (unsigned w = 0; w < 8; w++)
        expect_durable(q, 1 + w * 1000, w * 1000 + 50, "shared");
    xclose(s);
}

/* A folder whose log file went missing is refused, naming it and the
 * ways out; an empty file in its place is accepted. */
Test(store_log, a_missing_log_file_is_refused)
{
    ug_store *s = xopen(1, NULL);
    grant_range(xstage(s, "r"), 0, 1, 3);
    cr_assert_eq(ug_store_commit(s, 0), 0);
    xclose(s);
    char path[128], err[512] = "";
    snprintf(path, sizeof path, "%s/grants.wal.1", g_dir);
    cr_assert_eq(unlink(path), 0);
    ug_store_opts o = {.dir = g_dir, .nworkers = 1, .now = NOW};
    cr_assert_null(ug_store_open(&o, err, sizeof err));
    cr_expect(strstr(err, "grants.wal.1 is missing") && strstr(err, "create it empty"), "%s", err);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    s = xopen(1, NULL);
    expect_durable(xstage(s, "r"), 1, 3, "from data.mdb");
    xclose(s);
}
