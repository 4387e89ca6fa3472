/* Tests of the store's log (plugin/store/wal.c, commit.c): grants durable in it before any checkpoint, replayed at open,
 * moved into data.mdb by checkpoints while workers commit, found by a scope loaded again, group commits across workers;
 * and of the load image (image.c): written at close, read at the next start, never once data.mdb moved on. */
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

#include <sodium.h>

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
/* A child grants from..mid of rollout "r", commits, checkpoints (with
 * checkpoint), grants mid + 1..to, commits and is killed. */
static void killed_child(uint64_t from, uint64_t mid, uint64_t to, bool checkpoint)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        ug_store *s = xopen(1, NULL);
        ug_stage_quota *q = xstage(s, "r");
        grant_range(q, 0, from, mid);
        if (ug_store_commit(s, 0) != 0 || (checkpoint && ug_wal_checkpoint(s, false) != 0))
            _exit(2);
        grant_range(q, 0, mid + 1, to);
        if (ug_store_commit(s, 0) != 0)
            _exit(3);
        raise(SIGKILL);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child status %d", status);
}

Test(store_log, a_kill_before_the_checkpoint_loses_nothing)
{
    killed_child(1, 50, 100, true);
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

/* Group writes so far (batches in the log's generation; no checkpoint
 * runs in these tests). */
static uint64_t writes(ug_store *s)
{
    pthread_mutex_lock(&s->wal.mu);
    uint64_t n = s->wal.seq;
    pthread_mutex_unlock(&s->wal.mu);
    return n;
}

#define LONG_LINGER UINT64_C(30000000000) /* 30 s: a leader that waits it out fails the test */

/* A leader waits only for company sure to come: with no other worker, or
 * one with nothing queued, back-to-back commits are written at once, one
 * write each, however long a linger the store would allow. */
Test(store_log, a_leader_alone_does_not_linger, .timeout = 120)
{
    for (unsigned nworkers = 1; nworkers <= 2; nworkers++) {
        ug_store *s = xopen(nworkers, NULL);
        s->group.linger_ns = LONG_LINGER;
        ug_stage_quota *q = xstage(s, "r");
        uint64_t t0 = ug_mono_ns(), w0 = writes(s);
        uint64_t base = nworkers * 100; /* the folder outlives each round */
        for (uint64_t i = base + 1; i <= base + 3; i++) {
            grant_range(q, 0, i, i);
            cr_assert_eq(ug_store_commit(s, 0), 0);
        }
        cr_expect_eq(writes(s) - w0, 3, "%u workers: 3 commits, %llu writes", nworkers,
                     (unsigned long long)(writes(s) - w0));
        cr_expect_lt(ug_mono_ns() - t0, LONG_LINGER / 3, "%u workers: a commit waited for company", nworkers);
        expect_durable(q, base + 1, base + 3, "alone");
        xclose(s);
    }
}

typedef struct {
    ug_store *s;
    int rc;
} commit_arg;

static void *commit_worker0(void *arg)
{
    commit_arg *a = arg;
    a->rc = ug_store_commit(a->s, 0);
    return NULL;
}

/* True once a leader lingers: it leads, and its group is still open. */
static bool leader_lingers(ug_store *s)
{
    pthread_mutex_lock(&s->group.mu);
    bool yes = s->group.leading && s->group.head != NULL;
    pthread_mutex_unlock(&s->group.mu);
    return yes;
}

/* A worker with records queued is company: the leader waits for it, and
 * writes both parts in one write as soon as it joined, not at the end of
 * the linger. */
Test(store_log, a_leader_waits_for_a_worker_with_records_queued, .timeout = 120)
{
    ug_store *s = xopen(2, NULL);
    s->group.linger_ns = LONG_LINGER;
    ug_stage_quota *q = xstage(s, "r");
    grant_range(q, 0, 1, 1);
    cr_assert_eq(ug_store_commit(s, 0), 0); /* a lone flush: written at once, and the last group's start */
    grant_range(q, 1, 1001, 1001);          /* worker 1 has a record queued */
    grant_range(q, 0, 2, 2);
    uint64_t t0 = ug_mono_ns(), w0 = writes(s);
    commit_arg a = {s, -1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, commit_worker0, &a), 0);
    bool seen = false;
    for (int i = 0; i < 10000 && !(seen = leader_lingers(s)); i++)
        usleep(1000);
    cr_expect(seen, "worker 0's commit did not wait for worker 1");
    cr_expect_eq(writes(s), w0, "worker 0's group was written before worker 1 joined");
    cr_assert_eq(ug_store_commit(s, 1), 0);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, 0);
    cr_expect_eq(writes(s) - w0, 1, "two workers' commits took %llu writes", (unsigned long long)(writes(s) - w0));
    cr_expect_lt(ug_mono_ns() - t0, LONG_LINGER / 3, "the leader waited out its linger after worker 1 joined");
    expect_durable(q, 1, 2, "worker 0");
    expect_durable(q, 1001, 1001, "worker 1");
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

/* ---- the load image (plugin/store/image.c) ---------------------------------------- */

static void img_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/grants.img", g_dir);
}

static ino_t img_inode(void)
{
    char path[128];
    struct stat st;
    img_path(path, sizeof path);
    cr_assert_eq(stat(path, &st), 0, "grants.img: %s", strerror(errno));
    return st.st_ino;
}

/* uids from..to of rollout "r": uid u has outcome u % 7 (as a REPORT set it at NOW + u). */
static void expect_image_grants(ug_stage_quota *q, uint64_t from, uint64_t to, const char *what)
{
    ug_scope *sc = ug_stage_quota_scope(q);
    for (uint64_t u = from; u <= to; u++) {
        ug_grant_info gi;
        cr_assert(ug_scope_lookup(sc, u, &gi) && gi.durable && gi.stage == ug_stage_quota_id(q), "%s: uid %llu", what,
                  (unsigned long long)u);
        cr_assert(gi.at == NOW && gi.outcome == (ug_outcome)(u % 7) && gi.outcome_at == (u % 7 ? NOW + u : 0),
                  "%s: uid %llu: outcome %d at %u", what, (unsigned long long)u, gi.outcome, gi.outcome_at);
    }
}

/* n grants of "r" with outcomes and ten of "s", closed: the image. */
static void make_image_of(uint64_t n)
{
    ug_store *s = xopen(1, NULL);
    ug_stage_quota *q = xstage(s, "r");
    grant_range(q, 0, 1, n);
    for (uint64_t u = 1; u <= n; u++) {
        ug_outcome_put p = {.o = (ug_outcome)(u % 7), .at = NOW + (uint32_t)u, .ts = NOW + (uint32_t)u};
        cr_assert_geq(ug_scope_put_outcome(ug_stage_quota_scope(q), 0, u, &p, NULL), 0);
    }
    grant_range(xstage(s, "s"), 0, 1, 10);
    cr_assert_eq(ug_store_commit(s, 0), 0);
    xclose(s);
    (void)img_inode();
}

/* Three thousand grants of "r": a scope one thread loads. */
static void make_image(void)
{
    make_image_of(3000);
}

/* Each outcome's count in "r" (1..n, uid u has outcome u % 7). */
static void expect_outcome_counts(ug_stage_quota *q, uint64_t n, const char *what)
{
    for (unsigned o = 0; o < 7; o++) {
        uint64_t want = n / 7 + (o && o <= n % 7);
        cr_expect_eq(ug_scope_outcomes(ug_stage_quota_scope(q), (ug_outcome)o), want, "%s: outcome %u", what, o);
    }
}

/* Big enough to load on two threads (image.c, IMG_PAR_MIN). */
#define BIG_IMAGE 100000u

/* A close writes the image; the next start loads every grant, outcome and
 * stage from it, and a close that changed nothing keeps it. */
Test(store_log, the_image_written_at_close_serves_the_next_start)
{
    make_image();
    ino_t ino = img_inode();
    logbook b = {0};
    ug_store *s = xopen(2, &b);
    cr_assert_geq(s->img.fd, 0, "the image is taken");
    ug_stage_quota *q = xstage(s, "r");
    expect_image_grants(q, 1, 3000, "from the image");
    cr_expect_eq(ug_stage_quota_count(q), 3000);
    cr_expect_eq(ug_stage_quota_count(xstage(s, "s")), 10);
    cr_expect_eq(ug_stage_quota_count(xstage(s, "none")), 0);
    cr_expect_eq(ug_stage_quota_grant(q, 1, 3001, NOW, NULL), UG_GRANT_NEW);
    cr_expect_eq(b.n, 0, "log: %s", b.all);
    ug_store_close(s, NULL, 0);
    cr_expect_neq(img_inode(), ino, "a close after a grant writes it again");
    ino = img_inode();
    s = xopen(1, NULL);
    q = xstage(s, "r");
    expect_image_grants(q, 1, 3000, "again");
    cr_expect_eq(ug_stage_quota_count(q), 3001);
    cr_expect_eq(ug_stage_quota_grant(q, 0, 3001, NOW, NULL), UG_GRANT_ALREADY);
    xclose(s);
    cr_expect_eq(img_inode(), ino, "a close that changed nothing keeps it");
}

/* A record of the image damaged: the load says so and reads data.mdb. */
Test(store_log, a_damaged_image_is_dropped_for_data_mdb)
{
    make_image();
    char path[128];
    img_path(path, sizeof path);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 64 + 24 * 100 + 13, SEEK_SET), 0);
    cr_assert_eq(fputc(0x5a, f), 0x5a);
    cr_assert_eq(fclose(f), 0);
    logbook b = {0};
    ug_store *s = xopen(1, &b);
    ug_stage_quota *q = xstage(s, "r");
    expect_image_grants(q, 1, 3000, "from data.mdb");
    cr_expect_eq(ug_stage_quota_count(q), 3000, "each grant once");
    cr_expect(strstr(b.all, "grants.img is damaged"), "log: %s", b.all);
    xclose(s);
}

/* A scope big enough to load on two threads: every grant, outcome count
 * and stage count as written; then a record damaged near the end, after
 * both threads have inserted most of the scope: the load starts over from
 * data.mdb, and holds each grant once with the same counts. */
Test(store_log, a_big_image_loads_on_two_threads_and_a_damaged_one_starts_over)
{
    make_image_of(BIG_IMAGE);
    ug_store *s = xopen(2, NULL);
    ug_stage_quota *q = xstage(s, "r");
    expect_image_grants(q, 1, BIG_IMAGE, "from the image");
    expect_outcome_counts(q, BIG_IMAGE, "from the image");
    cr_expect_eq(ug_stage_quota_count(q), BIG_IMAGE);
    cr_expect_eq(ug_stage_quota_count(xstage(s, "s")), 10);
    xclose(s);
    char path[128];
    img_path(path, sizeof path);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 64 + 24 * (long)(BIG_IMAGE - 5) + 13, SEEK_SET), 0);
    cr_assert_eq(fputc(0x5a, f), 0x5a);
    cr_assert_eq(fclose(f), 0);
    logbook b = {0};
    s = xopen(2, &b);
    q = xstage(s, "r");
    expect_image_grants(q, 1, BIG_IMAGE, "from data.mdb");
    expect_outcome_counts(q, BIG_IMAGE, "from data.mdb");
    cr_expect_eq(ug_stage_quota_count(q), BIG_IMAGE, "each grant once");
    cr_expect(strstr(b.all, "grants.img is damaged"), "log: %s", b.all);
    xclose(s);
}

/* The image's layout (image.c, docs/state.md), version 2: a header of 64
 * bytes, the records, the entries of 40 bytes, then the chunk sums of 16
 * bytes, a chunk being IMG_CHUNK_RECS records of a scope. */
#define IMG_CHUNK 43690u

typedef struct {
    uint8_t head[64], *tail; /* tail: the entries and chunk sums */
    uint64_t nrecs, nsums, tail_at;
    uint32_t nscopes;
    size_t tail_len;
} image_file;

static void image_read(const char *path, image_file *im)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(im->head, 1, 64, f), 64);
    memcpy(&im->nrecs, im->head + 40, 8);
    memcpy(&im->nscopes, im->head + 48, 4);
    memcpy(&im->nsums, im->head + 56, 8);
    im->tail_at = 64 + 24 * im->nrecs;
    im->tail_len = 40 * (size_t)im->nscopes + 16 * (size_t)im->nsums;
    cr_assert_not_null(im->tail = malloc(im->tail_len));
    cr_assert_eq(fseek(f, (long)im->tail_at, SEEK_SET), 0);
    cr_assert_eq(fread(im->tail, 1, im->tail_len, f), im->tail_len);
    cr_assert_eq(fclose(f), 0);
}

/* Writes im's header and tail back, the header's sum made over them again
 * (the first 8 bytes of a keyed BLAKE2b-128, as image.c's head_sum), so
 * that only what the test changed is wrong. */
static void image_write(const char *path, image_file *im)
{
    static const unsigned char key[crypto_shorthash_KEYBYTES] = "upgate img sum";
    crypto_generichash_state st;
    uint8_t sum[crypto_generichash_BYTES_MIN];
    cr_assert_eq(crypto_generichash_init(&st, key, sizeof key, sizeof sum), 0);
    cr_assert_eq(crypto_generichash_update(&st, im->head + 8, 56), 0);
    cr_assert_eq(crypto_generichash_update(&st, im->tail, im->tail_len), 0);
    cr_assert_eq(crypto_generichash_final(&st, sum, sizeof sum), 0);
    memcpy(im->head, sum, 8);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(im->head, 1, 64, f), 64);
    cr_assert_eq(fseek(f, (long)im->tail_at, SEEK_SET), 0);
    cr_assert_eq(fwrite(im->tail, 1, im->tail_len, f), im->tail_len);
    cr_assert_eq(fclose(f), 0);
    free(im->tail);
    im->tail = NULL;
}

/* Each scope's chunks have a sum: the big scope of "r" three (two threads
 * verify them, the first and last chunk one thread, the middle one the
 * other), "s" one. With the records intact, a wrong sum of the middle
 * chunk (the header's sum made again) is refused while loading: the scope
 * loads from data.mdb, each grant once, and the close writes a good image. */
Test(store_log, a_chunk_with_a_bad_sum_is_refused_for_data_mdb)
{
    make_image_of(BIG_IMAGE);
    char path[128];
    img_path(path, sizeof path);
    image_file im;
    image_read(path, &im);
    cr_assert_eq(im.nscopes, 2);
    cr_assert_eq(im.nrecs, BIG_IMAGE + 10);
    uint64_t chunks = (BIG_IMAGE + IMG_CHUNK - 1) / IMG_CHUNK;
    cr_assert_eq(im.nsums, chunks + 1, "a sum per chunk of each scope");
    uint8_t *big = im.tail, *sums = im.tail + 40 * 2;
    uint64_t count, sum0;
    memcpy(&count, big + 16, 8);
    memcpy(&sum0, big + 24, 8);
    cr_assert_eq(count, BIG_IMAGE, "\"r\" is the first scope (its id is lower)");
    sums[(sum0 + 1) * 16 + 3] ^= 0x5a;
    image_write(path, &im);
    logbook b = {0};
    ug_store *s = xopen(2, &b);
    cr_assert_geq(s->img.fd, 0, "the header holds: the image is taken");
    ug_stage_quota *q = xstage(s, "r");
    expect_image_grants(q, 1, BIG_IMAGE, "from data.mdb");
    expect_outcome_counts(q, BIG_IMAGE, "from data.mdb");
    cr_expect_eq(ug_stage_quota_count(q), BIG_IMAGE, "each grant once");
    cr_expect_eq(ug_stage_quota_count(xstage(s, "s")), 10);
    cr_expect(strstr(b.all, "grants.img is damaged"), "log: %s", b.all);
    xclose(s);
    logbook b2 = {0};
    s = xopen(2, &b2);
    cr_assert_geq(s->img.fd, 0, "the close wrote a good image");
    q = xstage(s, "r");
    expect_image_grants(q, 1, BIG_IMAGE, "from the new image");
    cr_expect_eq(ug_stage_quota_count(q), BIG_IMAGE);
    cr_expect_eq(b2.n, 0, "log: %s", b2.all);
    xclose(s);
}

/* An image of version 1 (one sum per scope, as the upgate before wrote
 * it) is refused at open with a line saying so: the scopes load from
 * data.mdb, each grant once, and the close writes version 2. */
Test(store_log, an_image_of_the_old_version_is_refused_for_data_mdb)
{
    make_image_of(BIG_IMAGE);
    char path[128];
    img_path(path, sizeof path);
    image_file im;
    image_read(path, &im);
    uint32_t version = 1;
    memcpy(im.head + 12, &version, 4);
    image_write(path, &im);
    logbook b = {0};
    ug_store *s = xopen(2, &b);
    cr_expect_lt(s->img.fd, 0, "the image is not taken");
    cr_expect(strstr(b.all, "grants.img is of format 1, not 2; loading from data.mdb"), "log: %s", b.all);
    ug_stage_quota *q = xstage(s, "r");
    expect_image_grants(q, 1, BIG_IMAGE, "from data.mdb");
    expect_outcome_counts(q, BIG_IMAGE, "from data.mdb");
    cr_expect_eq(ug_stage_quota_count(q), BIG_IMAGE, "each grant once");
    cr_expect_eq(ug_stage_quota_count(xstage(s, "s")), 10);
    xclose(s);
    image_read(path, &im);
    memcpy(&version, im.head + 12, 4);
    free(im.tail);
    cr_expect_eq(version, 2, "the close wrote the new version");
    logbook b2 = {0};
    s = xopen(2, &b2);
    cr_assert_geq(s->img.fd, 0, "and the next start takes it");
    expect_image_grants(xstage(s, "r"), 1, BIG_IMAGE, "from the new image");
    cr_expect_eq(b2.n, 0, "log: %s", b2.all);
    xclose(s);
}

/* Started from the image, a node grants more and is killed, once with the
 * new grants in the log alone, once with some checkpointed: the start after
 * each finds every grant (the image no longer matches data.mdb). */
Test(store_log, a_kill_after_a_start_from_the_image_loses_nothing)
{
    make_image();
    for (int round = 0; round < 2; round++) {
        uint64_t at = 4001 + (uint64_t)round * 100;
        killed_child(at, at + 49, at + 59, round == 1);
        ug_store *s = xopen(1, NULL);
        ug_stage_quota *q = xstage(s, "r");
        expect_image_grants(q, 1, 3000, "old");
        for (int r = 0; r <= round; r++)
            expect_durable(q, 4001 + (uint64_t)r * 100, 4060 + (uint64_t)r * 100, "after the kill");
        cr_expect_eq(ug_stage_quota_count(q), 3000 + 60 * (uint64_t)(round + 1));
        xclose(s);
    }
}

/* data.mdb written by an upgate that knows no image (a grant put straight
 * into it): the image no longer serves. */
Test(store_log, a_write_by_an_older_upgate_voids_the_image)
{
    make_image();
    ug_store *s = xopen(1, NULL);
    uint32_t id = ug_scope_id(ug_stage_quota_scope(xstage(s, "r")));
    xclose(s);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi db;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    cr_assert_eq(mdb_env_open(env, g_dir, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, "grants", 0, &db), 0);
    uint8_t key[12];
    be32(key, id);
    be64(key + 4, 9999);
    grant_record r = {.at = NOW, .stage = 1};
    MDB_val k = {sizeof key, key}, v = {sizeof r, &r};
    cr_assert_eq(mdb_put(txn, db, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    s = xopen(1, NULL);
    cr_expect_lt(s->img.fd, 0, "the image is not taken");
    ug_stage_quota *q = xstage(s, "r");
    expect_durable(q, 9999, 9999, "put by the older upgate");
    expect_durable(q, 1, 3000, "the rest");
    xclose(s);
}

/* Started from the image, a scope granted, swept and loaded again drains
 * the log into data.mdb first: the second load reads data.mdb. */
Test(store_log, a_scope_loaded_again_after_a_start_from_the_image)
{
    make_image();
    ug_store *s = xopen(1, NULL);
    ug_stage_quota *q = xstage(s, "s");
    grant_range(q, 0, 11, 20);
    cr_assert_eq(ug_store_commit(s, 0), 0);
    ug_store_unmark(s);
    ug_store_sweep(s);
    q = xstage(s, "s");
    expect_durable(q, 1, 20, "loaded again");
    cr_expect_eq(ug_stage_quota_count(q), 20);
    expect_image_grants(xstage(s, "r"), 1, 3000, "the other scope");
    xclose(s);
}
