/* The quota promise under interleavings and crashes: no HINT ever leaves for a grant that is not durable.
 *
 * A child process loads the real plugin with two workers and plays a script
 * of events: a HELLO handled on a worker (handle2, no flush), or a flush of a
 * worker followed by "sending" that worker's replies the way the ABI tells a
 * host to (a reply marked UG_REPLY_AFTER_FLUSH only once flush() returned 0;
 * any other reply at once). Every HINT it sends is reported to the parent
 * through a pipe before anything else happens. The child kills itself with
 * SIGKILL after event k, for every k; the parent then opens the state folder
 * and checks that every uid that was sent a HINT holds a durable grant, and
 * that the quota was never exceeded. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/inst.h"
#include "fixture.h"
#include "store/store.h"
#include "store/store_impl.h"
#include "testutil.h"

#define MAXEV 64
#define QUOTA 3

typedef struct {
    enum { EV_HELLO, EV_FLUSH } kind;
    unsigned worker;
    uint64_t uid;
} event;

typedef struct {
    event ev[MAXEV];
    size_t n;
} script;

/* What a worker answered and has not sent yet. */
typedef struct {
    uint64_t uid[MAXEV];
    uint8_t type[MAXEV];
    bool after_flush[MAXEV];
    size_t n;
} outbox;

static void tell(int fd, uint64_t uid)
{
    if (write(fd, &uid, sizeof uid) != (ssize_t)sizeof uid)
        _exit(90);
}

/* Sends what the rules allow: unmarked replies now, marked ones only after
 * a flush that succeeded. A HINT is reported as its uid, a WAIT as 0. */
static void send_ready(outbox *o, bool flushed, int fd)
{
    size_t k = 0;
    for (size_t i = 0; i < o->n; i++) {
        if (o->after_flush[i] && !flushed) {
            o->uid[k] = o->uid[i], o->type[k] = o->type[i], o->after_flush[k] = true, k++;
            continue;
        }
        if (o->type[i] == UG_TYPE_HINT)
            tell(fd, o->uid[i]);
        else if (o->type[i] == UG_TYPE_WAIT)
            tell(fd, 0);
    }
    o->n = k;
}

static void play(fx_t *f, const script *s, size_t kill_after, int fd)
{
    outbox box[2];
    memset(box, 0, sizeof box);
    for (size_t i = 0; i < s->n; i++) {
        const event *e = &s->ev[i];
        outbox *o = &box[e->worker];
        if (e->kind == EV_HELLO) {
            uint8_t hello[UG_DGRAM_MAX];
            size_t len = fx_hello(f, hello, e->uid, "1.4.0", NULL);
            fx_reply r;
            memset(&r, 0, sizeof r);
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(4000),
                                     .sin_addr.s_addr = htonl(0x0a000001)};
            r.v = f->api->handle2(f->inst, e->worker, (struct sockaddr *)&sa, sizeof sa, hello, len, r.bytes,
                                  sizeof r.bytes, &r.len, &r.flags);
            o->uid[o->n] = e->uid, o->type[o->n] = r.len > 5 ? r.bytes[5] : 0;
            o->after_flush[o->n] = r.flags & UG_REPLY_AFTER_FLUSH;
            o->n++;
            send_ready(o, false, fd);
        } else {
            send_ready(o, f->api->flush(f->inst, e->worker) == 0, fd);
        }
        if (i + 1 == kill_after)
            raise(SIGKILL);
    }
    raise(SIGKILL);
}

static const char *policy = "targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 3}\n";

/* Runs s in a child killed after event k; returns the uids it sent HINTs. */
static size_t run_child(fx_t *f, const script *s, size_t k, uint64_t *sent, size_t cap)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(p[0]);
        char err[512];
        if (fx_start(f, err, sizeof err) != 0)
            _exit(91);
        play(f, s, k, p[1]);
    }
    close(p[1]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child ended %d, not by its SIGKILL", status);
    size_t n = 0;
    uint64_t uid;
    while (n < cap && read(p[0], &uid, sizeof uid) == (ssize_t)sizeof uid)
        sent[n++] = uid;
    close(p[0]);
    return n;
}

/* The parent's view of the store the child left. */
static void check_store(fx_t *f, const uint64_t *sent, size_t nsent, const char *what)
{
    char dir[128], err[512];
    snprintf(dir, sizeof dir, "%s/state", f->dir);
    ug_store_opts o = {.dir = dir, .nworkers = 1};
    ug_store *st = ug_store_open(&o, err, sizeof err);
    cr_assert_not_null(st, "%s: %s", what, err);
    ug_scope *sc = ug_store_scope(st, "default", "2.0.0", err, sizeof err);
    cr_assert_not_null(sc, "%s: %s", what, err);
    for (size_t i = 0; i < nsent; i++) {
        ug_grant_info gi;
        if (sent[i] == 0) /* a WAIT */
            continue;
        cr_assert(ug_scope_lookup(sc, sent[i], &gi) && gi.durable,
                  "%s: uid %llu was sent a HINT but holds no durable grant", what, (unsigned long long)sent[i]);
    }
    ug_stage_quota *q = ug_scope_quota(sc, "q", err, sizeof err);
    cr_assert_not_null(q);
    cr_assert_leq(ug_stage_quota_count(q), QUOTA, "%s: %llu grants, quota %d", what,
                  (unsigned long long)ug_stage_quota_count(q), QUOTA);
    cr_assert_eq(ug_store_close(st, err, sizeof err), 0, "%s", err);
}

static void fresh(fx_t *f)
{
    fx_init(f, 2);
    fx_policy(f, policy);
}

/* One set of keys per test; every run starts from an empty state folder. */
static void wipe_state(fx_t *f)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/state'", f->dir);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0);
}

static void every_kill_point(fx_t *f, const script *s, const char *name)
{
    for (size_t k = 1; k <= s->n; k++) {
        wipe_state(f);
        uint64_t sent[MAXEV];
        size_t n = run_child(f, s, k, sent, MAXEV);
        char what[96];
        snprintf(what, sizeof what, "%s, killed after event %zu of %zu", name, k, s->n);
        check_store(f, sent, n, what);
    }
}

TestSuite(durability, .timeout = 300);

#define H(w, u) {EV_HELLO, (w), (u)}
#define F(w) {EV_FLUSH, (w), 0}

/* The reproduction of the issue: one uid on two workers, the second answers
 * from the first one's grant before the first worker flushed. */
Test(durability, one_uid_on_two_workers)
{
    script s = {{H(0, 7), H(1, 7), F(1), H(1, 7), F(1), F(0)}, 6};
    fx_t f;
    fresh(&f);
    every_kill_point(&f, &s, "one uid, two workers");
}

Test(durability, interleaved_grants_and_retransmits)
{
    script s = {{H(0, 1), H(1, 2), H(1, 1), H(0, 2), F(0), H(0, 3), H(1, 3), F(1), H(1, 4), H(0, 4), H(0, 5),
                 F(0), F(1), H(1, 1), H(0, 6), F(1), F(0)},
                17};
    fx_t f;
    fresh(&f);
    every_kill_point(&f, &s, "interleaved");
}

/* Random interleavings of two workers over a handful of uids (a quota of 3
 * among 6 uids, so SPENT races too), bounded: 2 x 16 scripts of 14 events,
 * each killed at every point. */
static void random_scripts(uint64_t seed)
{
    uint64_t x = seed;
    fx_t f;
    fresh(&f);
    for (int t = 0; t < 16; t++) {
        script s = {.n = 0};
        while (s.n < 14) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned w = (unsigned)(x & 1);
            s.ev[s.n++] = (x >> 1) % 3 == 0 ? (event){EV_FLUSH, w, 0} : (event){EV_HELLO, w, 1 + (x >> 8) % 6};
        }
        char name[48];
        snprintf(name, sizeof name, "script %d of seed %llx", t, (unsigned long long)seed);
        every_kill_point(&f, &s, name);
    }
}

Test(durability, random_interleavings_a)
{
    random_scripts(0x9e3779b97f4a7c15ULL);
}

Test(durability, random_interleavings_b)
{
    random_scripts(0x2545f4914f6cdd1dULL);
}

/* A disk that fills up: new grants cannot be stored, so their HINTs never
 * leave; WAITs, COOKIEs and HINTs of durable grants still do. */
Test(durability, full_disk_holds_back_only_what_rests_on_it)
{
    fx_t f;
    fresh(&f);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(p[0]);
        char err[512], path[160];
        if (fx_start(&f, err, sizeof err) != 0)
            _exit(91);
        fx_reply r = fx_ask(&f, 0, "10.0.0.1", 1, "1.4.0", NULL); /* durable before the disk fills */
        if (r.type != UG_TYPE_HINT)
            _exit(92);
        tell(p[1], 1);
        snprintf(path, sizeof path, "%s/state/data.mdb", f.dir);
        struct stat st;
        if (stat(path, &st) != 0)
            _exit(93);
        signal(SIGXFSZ, SIG_IGN);
        /* no write at all: the log's blocks are written ahead (zeros), so
         * on a full disk it takes appends until they run out; a limit at
         * any size past 0 would still let this script's commits through */
        struct rlimit rl = {1, RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            _exit(94);
        /* 2 and 3 take the last two slots but cannot be stored; 1 is
         * durable; 4 finds the quota spent (in memory) */
        script s = {{H(0, 2), H(1, 3), H(0, 1), H(0, 4), F(0), F(1), H(1, 2), F(1)}, 8};
        play(&f, &s, s.n, p[1]);
    }
    close(p[1]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "child status %d", status);
    uint64_t sent[MAXEV], uid;
    size_t n = 0;
    while (n < MAXEV && read(p[0], &uid, sizeof uid) == (ssize_t)sizeof uid)
        sent[n++] = uid;
    close(p[0]);
    check_store(&f, sent, n, "full disk");
    size_t hints1 = 0, waits = 0;
    for (size_t i = 0; i < n; i++) {
        cr_expect(sent[i] <= 1, "uid %llu got a HINT although its grant could not be stored",
                  (unsigned long long)sent[i]);
        hints1 += sent[i] == 1;
        waits += sent[i] == 0;
    }
    cr_expect_eq(hints1, 2, "the HINTs of a durable grant still leave while the disk is full");
    cr_expect_eq(waits, 1, "a WAIT does not wait for the disk");
}

/* ---- a group commit in flight ------------------------------------------------ */

/*
 * The plugin is linked into this test (not dlopen()ed) so that its appends
 * to the log go through the pwrite() below: armed, it lets the child hold
 * a group commit on its way to disk, at a chosen point, while the parent
 * kills it. Workers 1 and 2 flush while worker 0's group is being
 * written, so they join the next group together: the one killed in flight,
 * with the replies of two workers waiting on it.
 */
extern const ug_plugin upgate_plugin;

enum { HOLD_BEFORE, HOLD_AFTER, HOLD_TORN, HOLD_MODES };
static _Atomic int g_armed;    /* group writes seen since armed: 0 off */
static int g_hold_mode, g_report_fd = -1;
static ug_store *g_store;      /* the child's: how many records wait to join */
static _Atomic bool g_first_sent; /* worker 0's HINT is reported */

static bool is_log(int fd)
{
    char link[64], path[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    return strstr(path, "grants.wal") != NULL;
}

static bool all_zero(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static size_t open_group_records(void)
{
    pthread_mutex_lock(&g_store->group.mu);
    size_t n = g_store->group.n;
    pthread_mutex_unlock(&g_store->group.mu);
    return n;
}

static ssize_t real_pwrite(int fd, const void *b, size_t n, off_t off)
{
    return (ssize_t)syscall(SYS_pwrite64, fd, b, n, off);
}

/* The first group write (worker 0's) waits until workers 1 and 2 have
 * queued two records behind it; the second is held as g_hold_mode says,
 * reported to the parent (tag UINT64_MAX), and never returns. Writes of
 * zeros (the log growing) pass. */
static ssize_t held_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (!atomic_load(&g_armed) || all_zero(b, n) || !is_log(fd))
        return real_pwrite(fd, b, n, off);
    if (atomic_fetch_add(&g_armed, 1) == 1) {
        for (int i = 0; open_group_records() < 2; i++)
            if (i == 5000 || usleep(1000) != 0)
                _exit(97); /* workers 1 and 2 never joined */
        return real_pwrite(fd, b, n, off);
    }
    for (int i = 0; i < 5000 && !atomic_load(&g_first_sent); i++) /* reports stay in order */
        usleep(1000);
    if (g_hold_mode == HOLD_AFTER && real_pwrite(fd, b, n, off) != (ssize_t)n)
        _exit(95);
    size_t used = n; /* torn: the write stops inside the new batch's last record */
    while (used > 0 && ((const uint8_t *)b)[used - 1] == 0)
        used--;
    if (g_hold_mode == HOLD_TORN) { /* through a descriptor of its own: O_DIRECT takes whole blocks only */
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        int t = open(link, O_WRONLY | O_CLOEXEC);
        if (t < 0 || used < 12 || real_pwrite(t, b, used - 12, off) != (ssize_t)(used - 12) || fsync(t) != 0)
            _exit(96);
        close(t);
    }
    tell(g_report_fd, UINT64_MAX);
    for (;;)
        pause();
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    return held_pwrite(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off)
{
    return held_pwrite(fd, b, n, off);
}

typedef struct {
    fx_t *f;
    unsigned worker;
    uint64_t uid;
} flusher;

/* A worker's flush, then its HINT sent (reported) once the flush returned 0. */
static void *flush_and_send(void *arg)
{
    flusher *x = arg;
    if (x->f->api->flush(x->f->inst, x->worker) == 0)
        tell(g_report_fd, x->uid);
    if (x->worker == 0)
        atomic_store(&g_first_sent, true);
    return NULL;
}

static void in_flight_child(fx_t *f, int mode, int fd)
{
    char err[512];
    g_report_fd = fd;
    g_hold_mode = mode;
    f->dl = (void *)&upgate_plugin; /* linked in: fx_start uses it as is */
    f->api = &upgate_plugin;
    if (fx_start(f, err, sizeof err) != 0)
        _exit(91);
    g_store = ((ug_inst *)f->inst)->store;
    uint8_t hello[UG_DGRAM_MAX];
    fx_reply r;
    size_t len = fx_hello(f, hello, 1, "1.4.0", NULL);
    r = fx_send(f, 0, "10.0.0.1", 4000, hello, len); /* fx_send flushes: durable */
    if (r.type != UG_TYPE_HINT)
        _exit(92);
    tell(fd, 1);
    /* uid 2 on worker 0; uid 3 granted on worker 1, and answered on worker
     * 2 from that grant while it is still queued (worker 2 queues it too) */
    flusher x[3] = {{f, 0, 2}, {f, 1, 3}, {f, 2, 3}};
    for (unsigned w = 0; w < 3; w++) { /* each answered and held for its worker's flush */
        uint8_t b[UG_DGRAM_MAX], out[UG_DGRAM_MAX];
        size_t blen = fx_hello(f, b, x[w].uid, "1.4.0", NULL), olen;
        unsigned flags = 0;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(4000), .sin_addr.s_addr = htonl(0x0a000001)};
        if (f->api->handle2(f->inst, w, (struct sockaddr *)&sa, sizeof sa, b, blen, out, sizeof out, &olen, &flags) !=
                UG_VERDICT_REPLY ||
            !(flags & UG_REPLY_AFTER_FLUSH))
            _exit(93);
    }
    atomic_store(&g_armed, 1);
    pthread_t th[3];
    pthread_create(&th[0], NULL, flush_and_send, &x[0]);
    while (atomic_load(&g_armed) < 2) /* worker 0's group is on its way */
        usleep(200);
    pthread_create(&th[1], NULL, flush_and_send, &x[1]);
    pthread_create(&th[2], NULL, flush_and_send, &x[2]);
    pthread_join(th[0], NULL);
    for (;;)
        pause(); /* the parent kills us once the second group is held */
}

/* Reads the child's reports until the held group's marker (or EOF). */
static size_t read_until_held(int fd, uint64_t *sent, size_t cap, bool *held)
{
    size_t n = 0;
    uint64_t uid;
    *held = false;
    while (n < cap && read(fd, &uid, sizeof uid) == (ssize_t)sizeof uid) {
        if (uid == UINT64_MAX) {
            *held = true;
            break;
        }
        sent[n++] = uid;
    }
    return n;
}

/* Worker 0's group is durable and its HINT gone; workers 1 and 2 wait on
 * the next group (one grant, queued on both), killed before its write,
 * after it, or halfway through (a torn write). Reopened, the log gives
 * back every grant a HINT was sent for, drops the torn batch, and the
 * quota holds. */
Test(durability, a_kill_while_a_group_commit_is_in_flight, .timeout = 120)
{
    static const char *const names[HOLD_MODES] = {"before its write", "after its write", "in a torn write"};
    fx_t f;
    fx_init(&f, 3);
    fx_policy(&f, "targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 3}\n");
    for (int mode = 0; mode < HOLD_MODES; mode++) {
        wipe_state(&f);
        int p[2];
        cr_assert_eq(pipe(p), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            close(p[0]);
            in_flight_child(&f, mode, p[1]);
        }
        close(p[1]);
        uint64_t sent[MAXEV];
        bool held;
        size_t n = read_until_held(p[0], sent, MAXEV, &held);
        kill(pid, SIGKILL);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        close(p[0]);
        cr_assert(held, "%s: the second group never reached the disk (child status %d)", names[mode], status);
        cr_assert_eq(n, 2, "%s: HINTs sent for uids 1 and 2 only, got %zu", names[mode], n);
        cr_expect(sent[0] == 1 && sent[1] == 2, "%s", names[mode]);
        check_store(&f, sent, n, names[mode]);
        char dir[128], err[512];
        snprintf(dir, sizeof dir, "%s/state", f.dir);
        ug_store_opts o = {.dir = dir, .nworkers = 1};
        ug_store *st = ug_store_open(&o, err, sizeof err);
        cr_assert_not_null(st, "%s", err);
        ug_scope *sc = ug_store_scope(st, "default", "2.0.0", err, sizeof err);
        cr_assert_not_null(sc, "%s", err);
        bool in = ug_scope_lookup(sc, 3, NULL);
        cr_expect_eq(in, mode == HOLD_AFTER, "%s: uid 3 %s", names[mode], in ? "stored" : "not stored");
        cr_assert_eq(ug_store_close(st, err, sizeof err), 0, "%s", err);
    }
}
