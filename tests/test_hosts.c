/* upgate inside real trackers: opentracker and n2n's supernode, patched (contrib/) and built by `make hosts`.
 *
 * Each test starts the real host on a loopback port in a temp dir, with
 * build/upgate.so loaded through libupgate-host, and stops it by PID (also
 * on failure: the suite's fini, and PR_SET_PDEATHSIG). The `make demo`
 * population (demo/demo.sh) goes through it with the real upgate-peer while
 * the host's own protocol is spoken on the same port. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "hostutil.h"
#include "nodeutil.h"
#include "store/store.h"
#include "testutil.h"

static struct {
    char dir[64];
    pid_t httpd;
    unsigned http_port;
    hu_host h;
    int kind_checks; /* the host's own protocol, answered during the run */
} F;

static const char *fpath(const char *name)
{
    static _Thread_local char p[4][192];
    static _Thread_local int k;
    char *s = p[k++ % 4];
    snprintf(s, 192, "%s/%s", F.dir, name);
    return s;
}

/* demo/demo.sh's tracker: its keys, a 300 kB release served by busybox
 * httpd, the GeoIP database placing 127.0.1.0/24 in CN-BJ, and the example
 * policy (docs/example-policy.yaml). */
static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "%s", tu_tmpdir());
    const char *b = tu_build_dir(), *root = getenv("UG_ROOT") ? getenv("UG_ROOT") : ".";
    cr_assert_eq(nu_sh("cd %s && for k in release hint issuer client; do %s/upgate-keys gen $k >/dev/null || exit 1; "
                       "done && mkdir www && head -c 300000 /dev/urandom > www/app-2.0.0.bin",
                       F.dir, b),
                 0);
    F.httpd = tu_httpd(fpath("www"), &F.http_port);
    cr_assert_eq(nu_sh("cd %s && %s/upgate-keys release --key release.key --version 2.0.0 --file www/app-2.0.0.bin "
                       "--url http://127.0.0.1:%u/app-2.0.0.bin --ttl 86400 --out release.manifest >/dev/null && "
                       "perl %s/tests/mkgeo.pl geo.mmdb && cp %s/docs/example-policy.yaml policy.yaml",
                       F.dir, b, F.http_port, root, root),
                 0, "cannot make the demo's tracker");
}

static void teardown(void)
{
    hu_kill(&F.h);
    if (F.httpd) {
        kill(F.httpd, SIGKILL);
        waitpid(F.httpd, NULL, 0);
    }
}

TestSuite(hosts, .init = setup, .fini = teardown, .timeout = 240);

/* ---- the peers ------------------------------------------------------------ */

/* upgate-peer for uid from `from`; its exit code, its output in out. */
static int peer(uint64_t uid, const char *from, const char *extra, char *out, size_t cap)
{
    const char *b = tu_build_dir();
    cr_assert_eq(nu_sh("cd %s && [ -f c%llu.cred ] || %s/upgate-keys cred --issuer issuer.key --uid %llu --pub "
                       "client.pub --ttl 3600 --out c%llu.cred",
                       F.dir, (unsigned long long)uid, b, (unsigned long long)uid, (unsigned long long)uid),
                 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/upgate-peer --tracker 127.0.0.1:%u --bind %s --uid %llu --version 1.4.0 --key client.key "
             "--cred c%llu.cred --hint-pub hint.pub --release-pub release.pub --timeout 10 %s </dev/null 2>&1",
             F.dir, b, F.h.port, from, (unsigned long long)uid, (unsigned long long)uid, extra);
    return tu_run(cmd, out, cap);
}

/* The host's own protocol on the same port, now: a BEP 15 session (its
 * seeder counted in the scrape) or an n2n REGISTER_SUPER and its ACK. */
static void own_protocol(int i)
{
    if (F.h.kind == HU_OPENTRACKER) {
        uint8_t hash[20];
        snprintf((char *)hash, sizeof hash, "torrent-%011d", i);
        uint32_t seeders = 0;
        cr_assert(hu_bt_session(F.h.port, hash, (uint16_t)(7000 + i), &seeders), "BEP 15 session %d unanswered", i);
        cr_assert_geq(seeders, 1, "the announce was counted");
    } else {
        cr_assert(hu_n2n_register(F.h.port, "upgate-test", 0xc0de0000u + (uint32_t)i), "REGISTER_SUPER %d", i);
    }
    F.kind_checks++;
}

/* demo/demo.sh's 30 peers: uids 1-20 from 127.0.1.x (CN-BJ), 21-30 from
 * 127.0.2.x (DE); uid 13 says no. Uids 1, 4, 7, 10 (1 mod 3, in CN-BJ)
 * download and verify 2.0.0, 13 declines, 16 and 19 find the quota (5)
 * spent, everyone else waits. The host's own protocol every fifth peer. */
static void demo_population(void)
{
    char out[8192], from[32], opt[96], got[64];
    for (unsigned uid = 1; uid <= 30; uid++) {
        snprintf(from, sizeof from, "127.0.%u.%u", uid <= 20 ? 1 : 2, uid);
        snprintf(got, sizeof got, "peer%u.bin", uid);
        snprintf(opt, sizeof opt, "%s --out %s", uid == 13 ? "--no" : "--yes", got);
        int rc = peer(uid, from, opt, out, sizeof out);
        cr_assert_eq(rc, 0, "uid %u failed: %s", uid, out);
        bool upgraded = nu_sh("cmp -s %s %s", fpath(got), fpath("www/app-2.0.0.bin")) == 0;
        bool want = uid <= 10 && uid % 3 == 1;
        cr_assert_eq(upgraded, want, "uid %u %s: %s", uid, want ? "did not upgrade" : "upgraded", out);
        if (uid == 13)
            cr_assert(strstr(out, "keeping version 1.4.0"), "uid 13 declines: %s", out);
        else if (uid == 16 || uid == 19)
            cr_assert(strstr(out, "quota"), "uid %u finds the quota spent: %s", uid, out);
        else if (!want)
            cr_assert(!strstr(out, "upgrade offered"), "uid %u waits: %s", uid, out);
        if (uid % 5 == 0)
            own_protocol((int)uid);
    }
}

/* ---- the tracker's view, through the adapter's control socket ------------ */

/* The host's log, for a failure's message. */
static const char *host_log(void)
{
    static char log[16384];
    hu_log(&F.h, log, sizeof log);
    return log;
}

static json_t *control(const char *req)
{
    static char out[1 << 20];
    long n = nu_ctl(F.h.ctl, req, strlen(req), false, out, sizeof out);
    cr_assert_gt(n, 0, "no reply on %s: %s", F.h.ctl, host_log());
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j && json_is_true(json_object_get(j, "ok")), "%s: %.300s", req, out);
    return j;
}

static json_int_t outcome(const char *key)
{
    json_t *st = control("{\"cmd\":\"status\"}\n");
    json_t *stage = json_array_get(json_object_get(json_array_get(json_object_get(st, "rollouts"), 0), "stages"), 0);
    json_int_t v = json_integer_value(json_object_get(json_object_get(stage, "outcomes"), key));
    json_decref(st);
    return v;
}

/* REPORTs are counted as they arrive: polls for 5 s at most. */
static void await_outcome(const char *key, json_int_t want)
{
    json_int_t got = -1;
    for (int i = 0; i < 100 && (got = outcome(key)) != want; i++)
        nu_sleep_ms(50);
    cr_assert_eq(got, want, "outcome %s: %lld, want %lld", key, (long long)got, (long long)want);
}

static unsigned long long metric(const char *name)
{
    static char out[1 << 20];
    cr_assert_gt(nu_ctl(F.h.ctl, "{\"cmd\":\"metrics\"}\n", 18, false, out, sizeof out), 0, "no reply on %s: %s",
                 F.h.ctl, host_log());
    char line[160];
    snprintf(line, sizeof line, "\n%s", name); /* a sample's line, not its # HELP */
    const char *p = strstr(out, line);
    cr_assert(p, "no %s in the metrics: %s", name, out);
    return strtoull(p + strlen(line), NULL, 10);
}

static int ctl(const char *args, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/upgate-ctl --socket %s %s 2>&1", tu_build_dir(), F.h.ctl, args);
    return tu_run(cmd, out, cap);
}

/* pause, halt, resume through the adapter's socket, with upgate-ctl; each
 * takes effect for the next HELLO. */
static void pause_halt_resume(void)
{
    char out[8192];
    cr_assert_eq(ctl("pause --all", out, sizeof out), 0, "%s", out);
    cr_assert_eq(peer(4, "127.0.1.4", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "paused"), "paused: %s", out);
    cr_assert_eq(ctl("halt --all --why 'bad build'", out, sizeof out), 0, "%s", out);
    json_t *st = control("{\"cmd\":\"status\"}\n");
    json_t *r0 = json_array_get(json_object_get(st, "rollouts"), 0);
    cr_assert(json_is_true(json_object_get(r0, "halted")), "halted");
    cr_assert_str_eq(json_string_value(json_object_get(r0, "halted_why")), "bad build");
    json_decref(st);
    cr_assert_eq(peer(7, "127.0.1.7", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(!strstr(out, "upgrade offered"), "halted: %s", out);
    cr_assert_eq(ctl("resume --all", out, sizeof out), 0, "%s", out);
    /* uid 13 declined before: offered again (1, 4, 7 and 10 installed 2.0.0,
     * so back at 1.4.0 they rolled back and get WAIT why=1, rule 11) */
    cr_assert_eq(peer(13, "127.0.1.13", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "upgrade offered") && strstr(out, "2.0.0"), "offered again after resume: %s", out);
}

/* Opens the stopped tracker's state folder: every uid of `uids` holds a
 * durable grant of stage in default/2.0.0, which counts `count` (0: any). */
static uint64_t durable_grants(const char *stage, const uint64_t *uids, size_t n, uint64_t count)
{
    char err[512];
    ug_store_opts o = {.dir = fpath("state"), .nworkers = 1};
    ug_store *st = ug_store_open(&o, err, sizeof err);
    cr_assert_not_null(st, "%s", err);
    ug_scope *sc = ug_store_scope(st, "default", "2.0.0", err, sizeof err);
    cr_assert_not_null(sc, "%s", err);
    for (size_t i = 0; i < n; i++) {
        ug_grant_info gi;
        cr_assert(ug_scope_lookup(sc, uids[i], &gi) && gi.durable, "uid %llu: no durable grant",
                  (unsigned long long)uids[i]);
    }
    ug_stage_quota *q = ug_scope_quota(sc, stage, err, sizeof err);
    cr_assert_not_null(q, "%s", err);
    uint64_t have = ug_stage_quota_count(q);
    if (count)
        cr_assert_eq(have, count, "stage %s: %llu grants, want %llu", stage, (unsigned long long)have,
                     (unsigned long long)count);
    cr_assert_eq(ug_store_close(st, err, sizeof err), 0, "%s", err);
    return have;
}

/* ---- the demo through each host ------------------------------------------ */

/* The demo's peers through the host started with `lines`, the tracker's
 * counts through the adapter's socket, operator control, then a clean stop
 * by stop_sig: exit 0 with every grant on disk. */
static void demo_through(hu_kind kind, const char *lines, int stop_sig, const char *model)
{
    hu_start(&F.h, kind, F.dir, fpath("policy.yaml"), NULL, lines, NULL);
    cr_assert(hu_log_has(&F.h, model, 2000), "the adapter runs %s", model);
    demo_population();
    await_outcome("upgraded", 4); /* each peer REPORTs what it did */
    await_outcome("declined", 1);
    cr_expect_eq(outcome("failed"), 0);
    cr_assert_geq(metric("upgate_cookies_total "), 5, "the regions stage had peers prove their address: %llu",
                  metric("upgate_cookies_total "));
    cr_assert_gt(metric("upgate_hints_total{kind=\"new\"} "), 0);
    pause_halt_resume();
    own_protocol(99);
    cr_assert_geq(F.kind_checks, 7, "the host's own protocol answered throughout");
    cr_assert_eq(hu_stop(&F.h, stop_sig), 0, "a clean stop");
    char log[16384];
    hu_log(&F.h, log, sizeof log);
    cr_assert(strstr(log, "every grant is on disk"), "%s", log);
    static const uint64_t granted[] = {1, 4, 7, 10, 13};
    durable_grants("beijing-third", granted, 5, 5);
}

Test(hosts, opentracker_with_one_udp_thread_serves_the_demo)
{
    demo_through(HU_OPENTRACKER, "", SIGINT, "1 worker (one datagram per wake-up, handed over to the adapter's worker)");
}

Test(hosts, opentracker_with_udp_workers_serves_the_demo)
{
    demo_through(HU_OPENTRACKER, "listen.udp.workers 4", SIGINT, "4 workers (threads sharing one socket)");
}

Test(hosts, supernode_serves_the_demo)
{
    demo_through(HU_SUPERNODE, "", SIGTERM, "1 worker (one datagram per wake-up)");
}

/* ---- kill -9 between handle and commit ----------------------------------- */

static void everyone_policy(void)
{
    nu_write(fpath("policy.yaml"), "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\n"
                                   "state: state\ntargets: [\"1.4.0\"]\nretry: 120\ncookie: never\n"
                                   "stages:\n  - {name: all, quota: 10000000}\n");
}

#define KILL_PEERS 24

/* Sends each HELLO from a socket of its own (kept in fd). */
static void send_all(int *fd, const uint8_t (*hello)[UG_DGRAM_MAX], const size_t *len, size_t n)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)F.h.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (size_t i = 0; i < n; i++) {
        fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_eq(connect(fd[i], (struct sockaddr *)&to, sizeof to), 0);
        cr_assert_eq(send(fd[i], hello[i], len[i], 0), (ssize_t)len[i]);
    }
}

/* The types of the replies that came to each socket within ms (0: none),
 * then closes them. */
static void collect(int *fd, size_t n, uint8_t *type, int ms)
{
    memset(type, 0, n);
    for (int waited = 0; waited < ms; waited += 20) {
        nu_sleep_ms(20);
        for (size_t i = 0; i < n; i++) {
            uint8_t r[UG_DGRAM_MAX];
            ssize_t k = recv(fd[i], r, sizeof r, MSG_DONTWAIT);
            if (k > 5 && !type[i])
                type[i] = r[5];
        }
    }
    for (size_t i = 0; i < n; i++)
        close(fd[i]);
}

static void ask_all(const uint8_t (*hello)[UG_DGRAM_MAX], const size_t *len, size_t n, uint8_t *type, int ms)
{
    int fd[KILL_PEERS + 1];
    send_all(fd, hello, len, n);
    collect(fd, n, type, ms);
}

/* The host loads tests/hostplug/killplug.c around the real plugin: its
 * second commit with replies waiting on it is a SIGKILL. uid 1 is answered
 * (commit 1); then the host is stopped while 24 new peers' HELLOs queue up,
 * and continued: it handles them one per wake-up, holds every HINT, and
 * dies at the commit. No HINT left without a durable grant; the queued
 * grants died with it, and the peers' retries get them from a restart. */
static void killed_between_handle_and_commit(hu_kind kind)
{
    everyone_policy();
    const char *root = getenv("UG_ROOT") ? getenv("UG_ROOT") : ".";
    cr_assert_eq(nu_sh("cc -std=c11 -shared -fPIC -I%s/plugin -o %s %s/tests/hostplug/killplug.c -ldl", root,
                       fpath("killplug.so"), root),
                 0, "cannot build the wrapper");
    char real[600];
    snprintf(real, sizeof real, "UG_KILLPLUG_REAL=%s/upgate.so", tu_build_dir());
    const char *env[] = {real, "UG_KILLPLUG_AT=2", NULL};
    hu_start(&F.h, kind, F.dir, fpath("policy.yaml"), fpath("killplug.so"), "", env);
    static uint8_t hello[KILL_PEERS + 1][UG_DGRAM_MAX];
    size_t len[KILL_PEERS + 1];
    uint8_t type[KILL_PEERS + 1];
    nu_node n = {.out = -1};
    snprintf(n.dir, sizeof n.dir, "%s", F.dir);
    for (unsigned i = 0; i <= KILL_PEERS; i++)
        len[i] = nu_hello_issued(&n, hello[i], sizeof hello[i], 1 + i, "1.4.0", NULL, NULL);
    ask_all(hello, len, 1, type, 1000);
    cr_assert_eq(type[0], UG_TYPE_HINT, "uid 1: a HINT after the first commit");
    kill(F.h.pid, SIGSTOP);
    int st, fd[KILL_PEERS];
    cr_assert_eq(waitpid(F.h.pid, &st, WUNTRACED), F.h.pid);
    cr_assert(WIFSTOPPED(st));
    send_all(fd, hello + 1, len + 1, KILL_PEERS); /* queued while it is stopped: one burst */
    kill(F.h.pid, SIGCONT);
    collect(fd, KILL_PEERS, type + 1, 1500);
    cr_assert_eq(hu_wait(&F.h, 10000), 128 + SIGKILL, "the host died at its second commit");
    for (unsigned i = 1; i <= KILL_PEERS; i++)
        cr_assert_neq(type[i], UG_TYPE_HINT, "uid %u got a HINT its host never committed", 1 + i);
    static const uint64_t one[] = {1};
    durable_grants("all", one, 1, 1); /* only uid 1's grant reached the disk */
    /* the peers ask again: a restarted host grants them afresh */
    hu_start(&F.h, kind, F.dir, fpath("policy.yaml"), NULL, "", NULL);
    for (unsigned i = 1; i <= KILL_PEERS; i++) /* new nonces: not retransmits */
        len[i] = nu_hello_issued(&n, hello[i], sizeof hello[i], 1 + i, "1.4.0", NULL, NULL);
    ask_all(hello + 1, len + 1, KILL_PEERS, type + 1, 2000);
    uint64_t uids[KILL_PEERS];
    for (unsigned i = 1; i <= KILL_PEERS; i++) {
        cr_assert_eq(type[i], UG_TYPE_HINT, "uid %u asked again: %d", 1 + i, type[i]);
        uids[i - 1] = 1 + i;
    }
    cr_assert_eq(hu_stop(&F.h, kind == HU_OPENTRACKER ? SIGINT : SIGTERM), 0);
    durable_grants("all", uids, KILL_PEERS, KILL_PEERS + 1);
}

Test(hosts, opentracker_killed_between_handle_and_commit_sent_no_hint_without_its_grant)
{
    killed_between_handle_and_commit(HU_OPENTRACKER);
}

Test(hosts, supernode_killed_between_handle_and_commit_sent_no_hint_without_its_grant)
{
    killed_between_handle_and_commit(HU_SUPERNODE);
}

/* ---- clean shutdown under load ------------------------------------------- */

/* A burst of new peers (upgate-load, every HELLO a new uid) while the host
 * is stopped cleanly: exit 0, every grant on disk, and at least as many
 * durable grants as HINTs the peers received. */
static void shutdown_under_load(hu_kind kind, const char *lines, int sig)
{
    everyone_policy();
    hu_start(&F.h, kind, F.dir, fpath("policy.yaml"), NULL, lines, NULL);
    pid_t load = fork();
    cr_assert_neq(load, -1);
    if (load == 0) {
        char target[64], out[160], bin[512];
        snprintf(target, sizeof target, "127.0.0.1:%u", F.h.port);
        snprintf(out, sizeof out, "%s/load.json", F.dir);
        snprintf(bin, sizeof bin, "%s/upgate-load", tu_build_dir());
        if (!freopen(out, "w", stdout))
            _exit(126);
        execl(bin, bin, "--target", target, "--mix", "burst", "--keys", F.dir, "--count", "6000", "--seconds", "4",
              "--json", (char *)NULL);
        _exit(127);
    }
    /* the load signs its HELLOs first: stop the host once HINTs flow */
    bool flowing = false;
    for (int i = 0; i < 500 && !flowing; i++) {
        flowing = metric("upgate_hints_total{kind=\"new\"} ") > 200;
        if (!flowing)
            nu_sleep_ms(20);
    }
    cr_assert(flowing, "no burst of new grants reached the host");
    cr_assert_eq(hu_stop(&F.h, sig), 0, "a clean stop under load");
    int st;
    cr_assert_eq(waitpid(load, &st, 0), load);
    json_t *r = json_load_file(fpath("load.json"), 0, NULL);
    cr_assert_not_null(r, "upgate-load said nothing");
    json_int_t hints = json_integer_value(json_object_get(r, "hint"));
    json_decref(r);
    char log[16384];
    hu_log(&F.h, log, sizeof log);
    cr_assert(strstr(log, "every grant is on disk"), "%s", log);
    uint64_t durable = durable_grants("all", NULL, 0, 0);
    cr_assert_gt(hints, 0);
    cr_assert_geq(durable, (uint64_t)hints, "%llu HINTs received, %llu grants on disk", (long long)hints,
                  (unsigned long long)durable);
}

Test(hosts, opentracker_stopped_under_load_keeps_every_grant)
{
    shutdown_under_load(HU_OPENTRACKER, "", SIGINT);
}

Test(hosts, opentracker_with_udp_workers_stopped_under_load_keeps_every_grant)
{
    shutdown_under_load(HU_OPENTRACKER, "listen.udp.workers 4", SIGINT);
}

Test(hosts, supernode_stopped_under_load_keeps_every_grant)
{
    shutdown_under_load(HU_SUPERNODE, "", SIGTERM);
}

/* ---- privileges ------------------------------------------------------------ */

/* Started as root, both hosts drop to nobody after create(). */
static void runs_as_nobody(void)
{
    char cmd[128], out[256];
    snprintf(cmd, sizeof cmd, "awk '/^Uid:/ {print $3}' /proc/%d/status", (int)F.h.pid);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0);
    cr_assert_eq(strtoul(out, NULL, 10), 65534, "runs as nobody: %s", out);
}

/* The policy's next generation: the stage selects uid `uid` (one the
 * demo's uid_mod stage does not), after an editor-style replace of the
 * file (sed -i writes a new file and renames it over the old one). */
static void select_only(unsigned uid)
{
    cr_assert_eq(nu_sh("sed -i 's/uid_mod: {div: 3, rem: 1}/uids: [%u]/' %s", uid, fpath("policy.yaml")), 0);
}

/* uid, from 127.0.1.uid, is offered the upgrade. */
static void offered(unsigned uid)
{
    char from[32], out[8192];
    snprintf(from, sizeof from, "127.0.1.%u", uid);
    cr_assert_eq(peer(uid, from, "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "upgrade offered"), "uid %u is offered the upgrade: %s", uid, out);
}

/* The host runs as nobody, and upgate's opener (forked at create(), to
 * read the policy's files for reloads) stays root. */
static void runs_as_nobody_with_its_opener(void)
{
    runs_as_nobody();
    char cmd[256], out[256];
    snprintf(cmd, sizeof cmd, "for p in $(pgrep -P %d -x upgate-opener); do awk '/^Uid:/ {print $3}' "
                              "/proc/$p/status; done", (int)F.h.pid);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0);
    cr_assert_str_eq(out, "0\n", "one opener, root: %s", out);
}

/* ABI minor 2: started as root, the host drops to nobody after create();
 * the test's folder is 0700 and the hint key 0600, both root's. A reload
 * reads them through the folders the opener keeps, and takes effect. */
Test(hosts, a_reload_after_dropping_privileges_takes_effect)
{
    if (geteuid() != 0)
        cr_skip_test("the hosts drop privileges only when started as root");
    struct stat st;
    cr_assert_eq(stat(F.dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "nobody cannot search the folder itself");
    for (int k = 0; k < 2; k++) {
        hu_kind kind = k ? HU_SUPERNODE : HU_OPENTRACKER;
        cr_assert_eq(nu_sh("cp %s/docs/example-policy.yaml %s", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".",
                           fpath("policy.yaml")),
                     0);
        hu_start(&F.h, kind, F.dir, fpath("policy.yaml"), NULL, "", NULL);
        runs_as_nobody_with_its_opener();
        select_only(2 + (unsigned)k);
        char out[8192];
        cr_assert_eq(ctl("reload", out, sizeof out), 0, "%s", out);
        offered(2 + (unsigned)k);
        cr_assert_eq(hu_stop(&F.h, k ? SIGTERM : SIGINT), 0);
    }
}

/* A reload that names a file in a folder the first policy did not: nobody
 * cannot open it, and the opener holds no handle of its folder. Refused,
 * naming the file; the running policy serves on. */
Test(hosts, a_reload_naming_a_new_folder_after_dropping_privileges_keeps_the_running_policy)
{
    if (geteuid() != 0)
        cr_skip_test("the hosts drop privileges only when started as root");
    hu_start(&F.h, HU_OPENTRACKER, F.dir, fpath("policy.yaml"), NULL, "", NULL);
    runs_as_nobody();
    cr_assert_eq(nu_sh("cd %s && mkdir -m 700 newkeys && cp hint.key newkeys/ && "
                       "sed -i 's|hint: hint.key|hint: newkeys/hint.key|' policy.yaml && grep -q newkeys policy.yaml",
                       F.dir),
                 0);
    char out[8192];
    cr_assert_eq(ctl("reload", out, sizeof out), 1, "refused: %s", out);
    cr_assert(strstr(out, "newkeys/hint.key") && strstr(out, "restart"), "names the file, says what to do: %s", out);
    offered(1);
    cr_assert_eq(hu_stop(&F.h, SIGINT), 0);
}

/* opentracker's tracker.rootdir: it chroot()s into an empty folder, then
 * drops to nobody. Every path of the policy is gone from its view; the
 * opener, outside, still reads them. */
Test(hosts, opentracker_in_a_chroot_reloads)
{
    if (geteuid() != 0)
        cr_skip_test("only root can chroot");
    char lines[256], root[256], out[8192];
    cr_assert_eq(nu_sh("mkdir -m 755 %s", fpath("jail")), 0);
    snprintf(lines, sizeof lines, "tracker.rootdir %s", fpath("jail"));
    hu_start(&F.h, HU_OPENTRACKER, F.dir, fpath("policy.yaml"), NULL, lines, NULL);
    runs_as_nobody_with_its_opener();
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/root", (int)F.h.pid);
    ssize_t n = readlink(link, root, sizeof root - 1);
    cr_assert_gt(n, 0);
    root[n] = 0;
    cr_assert_str_eq(root, fpath("jail"), "it runs chroot()ed");
    select_only(5);
    cr_assert_eq(ctl("reload", out, sizeof out), 0, "%s", out);
    offered(5);
    int rc = hu_stop(&F.h, SIGINT);
    cr_assert_eq(rc, 0, "%d: %s", rc, host_log());
    cr_assert(strstr(host_log(), "every grant is on disk"), "%s", host_log());
}

/* ---- the patches ------------------------------------------------------------ */

static unsigned changed_lines(const char *patch)
{
    FILE *f = fopen(patch, "r");
    cr_assert_not_null(f, "%s", patch);
    char line[4096];
    unsigned n = 0;
    while (fgets(line, sizeof line, f))
        if ((line[0] == '+' && strncmp(line, "+++ ", 4)) || (line[0] == '-' && strncmp(line, "--- ", 4)))
            n++;
    fclose(f);
    return n;
}

Test(hosts, each_patch_changes_at_most_40_lines_of_its_host)
{
    const char *root = getenv("UG_ROOT") ? getenv("UG_ROOT") : ".";
    static const char *const names[] = {"opentracker", "n2n"};
    for (int i = 0; i < 2; i++) {
        char patch[512];
        snprintf(patch, sizeof patch, "%s/contrib/%s/upgate.patch", root, names[i]);
        unsigned n = changed_lines(patch);
        cr_assert_gt(n, 0);
        cr_assert_leq(n, 40, "%s changes %u lines of its host", patch, n);
    }
}
