/* libupgate-host in process, with the stand-in plugin: the three read models, commits, close, exit, the admin threads.
 *
 * The test plays the host: it owns a UDP socket ("the host's socket"), reads
 * one datagram at a time and hands it to ug_host_datagram(), as opentracker
 * and n2n do; a second socket plays the peers. The stand-in plugin
 * (tests/hostplug) echoes a datagram "prefix + L..." after the commit and
 * "prefix + N..." at once, so what the peers receive, and when, shows what
 * the adapter held and committed. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nodeutil.h"
#include "testutil.h"
#include "upgate/host.h"

#define PREFIX "\x95\xa2UG\x01"

static nu_node N;          /* its dir: the stand-in plugin, its policy, logs */
static const char *plug;   /* the stand-in plugin */
static int hs = -1, cs = -1; /* the host's socket, the peers' socket */

/* ---- the host's log, captured ------------------------------------------ */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];
static size_t log_len;

static void capture(void *ctx, ug_log_level level, const char *line)
{
    (void)ctx, (void)level;
    pthread_mutex_lock(&log_mu);
    int n = snprintf(log_text + log_len, sizeof log_text - log_len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof log_text - log_len)
        log_len += (size_t)n;
    pthread_mutex_unlock(&log_mu);
}

static bool logged(const char *what)
{
    pthread_mutex_lock(&log_mu);
    bool yes = strstr(log_text, what) != NULL;
    pthread_mutex_unlock(&log_mu);
    return yes;
}

/* ---- sockets ------------------------------------------------------------ */

static void sockets(void)
{
    hs = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cs = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    int big = 1 << 20;
    setsockopt(hs, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(cs, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    cr_assert_eq(bind(hs, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(hs, (struct sockaddr *)&a, &l), 0);
    cr_assert_eq(connect(cs, (struct sockaddr *)&a, sizeof a), 0);
}

static void setup(void)
{
    memset(&N, 0, sizeof N);
    snprintf(N.dir, sizeof N.dir, "%s", tu_tmpdir());
    plug = nu_hostplug(&N, "plug", "");
    char text[256];
    snprintf(text, sizeof text, "state=%s\n", N.dir);
    nu_write(nu_path(&N, "policy.yaml"), text);
    log_len = 0, log_text[0] = 0;
    sockets();
}

static void teardown(void)
{
    if (hs >= 0)
        close(hs);
    if (cs >= 0)
        close(cs);
    hs = cs = -1;
}

TestSuite(hostlib, .init = setup, .fini = teardown, .timeout = 60);

/* Held replies stay held until the test's host commits them: 10 s before
 * the admin thread would (a test thread descheduled for a moment must not
 * look like a quiet host); tests of the admin thread's commit set hold. */
static unsigned hold = 10000;

static ug_host_adapter *open_with(ug_host_model model, unsigned workers, const char *so, const char *control)
{
    char err[1024] = "";
    ug_host_config c = {.size = sizeof c, .plugin = so, .policy = nu_path(&N, "policy.yaml"), .control = control,
                        .model = model, .workers = workers, .name = "test", .log = capture, .hold_ms = hold};
    ug_host_adapter *a = ug_host_open(&c, err, sizeof err);
    cr_assert_not_null(a, "open: %s", err);
    return a;
}

/* n datagrams "prefix op i" (op 0: a foreign one) from the peers' socket,
 * and a wait until the host's socket has them all queued. */
static void peers_send(char op, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        char d[64];
        int len = op ? snprintf(d, sizeof d, PREFIX "%c %u", op, i) : snprintf(d, sizeof d, "d1:ad2:id20:%u", i);
        cr_assert_eq(send(cs, d, (size_t)len, 0), len);
    }
    nu_sleep_ms(20); /* loopback delivers at once; this is margin */
}

/* The host reads one datagram (waiting up to 2 s) and hands it on. */
static ug_host_result host_one(ug_host_adapter *a)
{
    struct pollfd p = {.fd = hs, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 2000), 1, "no datagram for the host");
    char buf[2048];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t k = recvfrom(hs, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    cr_assert_gt(k, 0);
    return ug_host_datagram(a, hs, (struct sockaddr *)&from, fl, buf, (size_t)k);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Replies the peers got within ms (0: only those already there). */
static unsigned peers_got(int ms)
{
    unsigned n = 0;
    char buf[2048];
    int64_t end = mono_ms() + ms;
    for (;;) {
        struct pollfd p = {.fd = cs, .events = POLLIN};
        int64_t left = end - mono_ms();
        if (poll(&p, 1, left > 0 ? (int)left : 0) != 1)
            return n;
        if (recv(cs, buf, sizeof buf, MSG_DONTWAIT) > 0)
            n++;
    }
}

static ug_host_counters counters(const ug_host_adapter *a)
{
    ug_host_counters k;
    ug_host_counters_get(a, &k, sizeof k);
    return k;
}

/* ---- the prefix --------------------------------------------------------- */

Test(hostlib, the_prefix_is_the_protocols_and_both_versions_pass)
{
    cr_assert_eq(UG_PORT_PREFIX_LEN, 4u);
    cr_assert_eq(memcmp(UG_PORT_PREFIX, "\x95\xa2\x55\x47", 4), 0, "protocol.md: 95 a2 55 47");
    cr_assert(ug_host_is_upgate("\x95\xa2UG\x01 HELLO", 11), "protocol v1");
    cr_assert(ug_host_is_upgate("\x95\xa2UG\x02 HELLO", 11), "protocol v2");
    cr_assert_not(ug_host_is_upgate("\x95\xa2UG\x03 HELLO", 11), "an unknown version is not passed on");
    cr_assert_not(ug_host_is_upgate("\x95\xa2UG\x00", 5));
    cr_assert_not(ug_host_is_upgate("\x95\xa2UG\x01", 4), "too short to carry the version");
    cr_assert_not(ug_host_is_upgate("\x95\xa2UH\x01xxxx", 9));
    cr_assert_not(ug_host_is_upgate("", 0));
    /* a BitTorrent connect, an n2n packet */
    cr_assert_not(ug_host_is_upgate("\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00", 12));
    cr_assert_not(ug_host_is_upgate("\x03\x02\x00\x05", 4));
    cr_assert_eq(ug_host_datagram(NULL, 0, NULL, 0, PREFIX "L", 6), UG_HOST_NOT_MINE, "no adapter: all the host's");
    ug_host_end_batch(NULL);
    cr_assert_eq(ug_host_close(NULL), 0);
}

/* ---- opening ------------------------------------------------------------- */

static void open_fails(const ug_host_config *c, const char *want)
{
    char err[1024] = "";
    ug_host_adapter *a = ug_host_open(c, err, sizeof err);
    cr_assert_null(a, "opened, expected: %s", want);
    cr_assert(strstr(err, want), "error names %s: %s", want, err);
    cr_assert(logged(want), "and logs it: %s", log_text);
}

Test(hostlib, open_names_what_is_wrong)
{
    ug_host_config c = {.size = sizeof c, .plugin = plug, .log = capture};
    open_fails(&c, "upgate.policy: not set");
    c.policy = nu_path(&N, "missing.yaml");
    open_fails(&c, "missing.yaml");
    c.policy = nu_path(&N, "policy.yaml");
    c.plugin = nu_path(&N, "nothing.so");
    open_fails(&c, "nothing.so");
    c.plugin = "/bin/true";
    open_fails(&c, "/bin/true");
    c.plugin = plug, c.workers = UG_HOST_WORKERS_MAX + 1;
    open_fails(&c, "workers");
    c.workers = 1;
    nu_write(nu_path(&N, "bad.yaml"), "invalid=1\n");
    c.policy = nu_path(&N, "bad.yaml");
    open_fails(&c, "refused on purpose"); /* the plugin's own line */
    /* a plugin of another ABI major is refused before create() */
    char src[160], so[160];
    snprintf(src, sizeof src, "%s/abi2.c", N.dir);
    snprintf(so, sizeof so, "%s/abi2.so", N.dir);
    nu_write(src, "#include \"upgate_plugin.h\"\n__attribute__((visibility(\"default\"))) const ug_plugin "
                  "upgate_plugin = {.abi_major = UG_PLUGIN_ABI_MAJOR + 1, .size = sizeof(ug_plugin)};\n");
    cr_assert_eq(nu_sh("cc -shared -fPIC -I%s/plugin -o %s %s", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".", so, src),
                 0);
    c.policy = nu_path(&N, "policy.yaml"), c.plugin = so;
    open_fails(&c, "plugin ABI 2.0, this host speaks 1.x");
}

/* ---- one datagram per wake-up ------------------------------------------- */

Test(hostlib, one_at_a_time_holds_until_the_socket_is_empty)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('L', 10);
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(host_one(a), UG_HOST_HELD);
        cr_assert_eq(peers_got(0), 0, "reply %d left before its commit", i);
    }
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(500), 10, "the last datagram of the burst commits and sends all ten");
    ug_host_counters k = counters(a);
    cr_expect_eq(k.commits, 1, "one commit for the burst, not one per datagram");
    cr_expect_eq(k.held, 10);
    cr_expect_eq(k.sent_held, 10);
    cr_expect_eq(k.idle_commits, 0);
    cr_assert_eq(ug_host_close(a), 0);
    ug_host_free(a);
}

Test(hostlib, a_datagram_of_the_hosts_own_ends_a_burst)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('L', 3);
    peers_send(0, 1);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(0), 0);
    cr_assert_eq(host_one(a), UG_HOST_NOT_MINE, "a BitTorrent datagram is the host's");
    cr_assert_eq(peers_got(500), 3, "and, finding the queue empty, it commits the three held");
    cr_expect_eq(counters(a).foreign, 1);
    ug_host_free(a);
}

Test(hostlib, at_most_64_replies_are_held)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('L', 100);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(500), 64, "the 64th held reply forces a commit while 36 datagrams still wait");
    for (int i = 0; i < 36; i++)
        host_one(a);
    cr_assert_eq(peers_got(500), 36);
    cr_expect_eq(counters(a).commits, 2);
    ug_host_free(a);
}

Test(hostlib, replies_that_need_no_disk_go_at_once)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('L', 1);
    peers_send('N', 1);
    peers_send('D', 1);
    peers_send('L', 1);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(host_one(a), UG_HOST_SENT);
    cr_assert_eq(peers_got(0), 1, "a WAIT or COOKIE does not wait behind a HINT");
    cr_assert_eq(host_one(a), UG_HOST_DROPPED);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(500), 2, "then both HINTs, after the commit");
    ug_host_counters k = counters(a);
    cr_expect_eq(k.sent_now, 1);
    cr_expect_eq(k.dropped, 1);
    cr_expect_eq(k.upgate, 4);
    ug_host_free(a);
}

/* A host that stops reading with replies held (its loop waits for the
 * socket, and the datagram that was queued went elsewhere) never leaves
 * them held: the admin thread commits them. */
Test(hostlib, a_quiet_socket_never_keeps_replies_held)
{
    hold = 0; /* the default, UG_HOST_HOLD_MS */
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('L', 2);
    cr_assert_eq(host_one(a), UG_HOST_HELD, "held: another datagram is queued");
    struct pollfd p = {.fd = cs, .events = POLLIN}; /* in UG_HOST_HOLD_MS; the bound is for a loaded machine */
    cr_assert_eq(poll(&p, 1, 5000), 1, "the admin thread sent the held reply");
    cr_assert_eq(peers_got(0), 1);
    cr_expect_eq(counters(a).idle_commits, 1);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(500), 1);
    ug_host_free(a);
}

Test(hostlib, a_failed_commit_drops_only_the_replies_that_wait_for_it)
{
    nu_write(nu_path(&N, "policy.yaml"), "fail_flush=1\n");
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('L', 1);
    peers_send('N', 1);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(host_one(a), UG_HOST_SENT);
    cr_assert_eq(peers_got(300), 1, "the WAIT went, the HINT of a grant not on disk did not");
    ug_host_counters k = counters(a);
    cr_expect_eq(k.held_back, 1);
    cr_expect_eq(k.commit_fails, 1);
    ug_host_free(a);
}

/* An ABI 1.0 plugin has no handle2: every reply waits for the commit. */
Test(hostlib, an_abi_1_0_plugin_has_every_reply_wait)
{
    const char *old = nu_hostplug(&N, "old", "-DMINOR0");
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, old, NULL);
    cr_assert_null(ug_host_control_path(a), "no control() in ABI 1.0: no socket");
    cr_assert_eq(ug_host_control(a, "{}", 2, NULL, NULL), -2);
    peers_send('N', 2);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(0), 0);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(500), 2);
    cr_assert_eq(ug_host_close(a), 0, "no finish(): destroy() alone");
    ug_host_free(a);
}

/* libowfat hosts keep a source as 16 bytes and a port; an IPv4-mapped
 * source on an IPv4 socket is answered all the same. */
Test(hostlib, a_mapped_source_on_an_ipv4_socket_is_answered)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('N', 1);
    char buf[256];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t k = recvfrom(hs, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    cr_assert_gt(k, 0);
    uint8_t ip[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(ip + 12, &from.sin_addr, 4);
    cr_assert_eq(ug_host_datagram6(a, hs, ip, ntohs(from.sin_port), 0, buf, (size_t)k), UG_HOST_SENT);
    cr_assert_eq(peers_got(500), 1);
    cr_expect_eq(counters(a).send_errors, 0);
    ug_host_free(a);
}

/* ---- batches ------------------------------------------------------------ */

Test(hostlib, a_batch_host_commits_at_the_end_of_its_batch)
{
    ug_host_adapter *a = open_with(UG_HOST_BATCH, 1, plug, "off");
    peers_send('L', 5);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(100), 0, "the queue is empty, but the batch is not over");
    ug_host_end_batch(a);
    cr_assert_eq(peers_got(500), 5);
    cr_expect_eq(counters(a).commits, 1);
    ug_host_free(a);
}

static _Atomic unsigned answered_calls;

static void count_answered(void *ctx, const ug_host_answer *ans)
{
    (void)ctx;
    if (ans->len && ans->in)
        atomic_fetch_add(&answered_calls, 1);
}

/* upgate-node's way: one recvmmsg, one call. Every datagram is the
 * plugin's (no protocol of the host's own), the replies that need no disk
 * leave first in one sendmmsg, then one commit, then the held ones. */
Test(hostlib, a_recvmmsg_batch_is_answered_in_one_call)
{
    char err[1024] = "";
    ug_host_config c = {.size = sizeof c, .plugin = plug, .policy = nu_path(&N, "policy.yaml"), .control = "off",
                        .model = UG_HOST_BATCH, .workers = 1, .log = capture, .flags = UG_HOST_EVERY_DATAGRAM,
                        .answered = count_answered};
    ug_host_adapter *a = ug_host_open(&c, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    static const char *const sent[] = {PREFIX "La", PREFIX "Nb", "Lc", "Nd", "Pe", PREFIX "Df"};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(send(cs, sent[i], strlen(sent[i]), 0), (ssize_t)strlen(sent[i]));
    nu_sleep_ms(20);
    uint8_t in[8][64];
    struct sockaddr_storage from[8];
    struct iovec v[8];
    struct mmsghdr m[8];
    for (int i = 0; i < 8; i++) {
        v[i] = (struct iovec){in[i], sizeof in[i]};
        m[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &v[i],
                                       .msg_iovlen = 1};
    }
    cr_assert_eq(recvmmsg(hs, m, 8, MSG_DONTWAIT, NULL), 6);
    ug_host_result res[6];
    ug_host_batch(a, hs, m, 6, res);
    static const ug_host_result want[] = {UG_HOST_HELD, UG_HOST_SENT, UG_HOST_HELD, UG_HOST_SENT, UG_HOST_NOT_MINE,
                                          UG_HOST_DROPPED};
    for (int i = 0; i < 6; i++)
        cr_expect_eq(res[i], want[i], "datagram %d: %d, want %d", i, res[i], want[i]);
    char order[8] = "";
    for (int i = 0; i < 4; i++) {
        struct pollfd p = {.fd = cs, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 500), 1, "reply %d missing (%s)", i, order);
        char buf[64];
        ssize_t k = recv(cs, buf, sizeof buf, 0);
        cr_assert_gt(k, 1);
        order[i] = buf[k - 1];
    }
    cr_assert_str_eq(order, "bdac", "the replies that need no disk, then the held ones after the commit");
    ug_host_counters k = counters(a);
    cr_expect_eq(k.commits, 1, "one commit for the batch");
    cr_expect_eq(k.upgate, 6, "every datagram went to the plugin");
    cr_expect_eq(k.foreign, 1, "a PASS without a reply is not the plugin's");
    cr_expect_eq(k.sent, 4);
    cr_expect_eq(atomic_load(&answered_calls), 6, "the hook saw every answer");
    cr_assert_eq(ug_host_close(a), 0);
    ug_host_free(a);
}

/* What the adapter tells the plugin of the host (ABI minor 2): threads
 * sharing a socket let a peer reach any worker; a host started as root, or
 * naming a user, drops privileges after the open. */
static unsigned host_flags(ug_host_adapter *a, char *run_as, size_t cap)
{
    char out[512] = "";
    cr_assert_gt(nu_ctl(ug_host_control_path(a), "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    const char *f = strstr(out, "\"host_flags\":"), *u = strstr(out, "\"run_as\":\"");
    cr_assert(f && u, "%s", out);
    snprintf(run_as, cap, "%.*s", (int)strcspn(u + 10, "\""), u + 10);
    return (unsigned)strtoul(f + 13, NULL, 10);
}

Test(hostlib, the_plugin_learns_whether_peers_roam_and_privileges_go)
{
    char run_as[64];
    ug_host_adapter *a = open_with(UG_HOST_SHARED_SOCKET, 4, plug, NULL);
    unsigned f = host_flags(a, run_as, sizeof run_as);
    cr_assert(f & UG_HF_ROAMING_PEERS, "4 threads on one socket: %u", f);
    cr_assert_eq(!!(f & UG_HF_DROPS_PRIVILEGES), geteuid() == 0, "a host started as root drops later: %u", f);
    ug_host_free(a);
    a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, NULL);
    cr_assert_not(host_flags(a, run_as, sizeof run_as) & UG_HF_ROAMING_PEERS, "one thread: its peers stay");
    ug_host_free(a);
    char err[1024];
    ug_host_config c = {.size = sizeof c, .plugin = plug, .policy = nu_path(&N, "policy.yaml"), .log = capture,
                        .user = "nobody"};
    cr_assert_not_null(a = ug_host_open(&c, err, sizeof err), "%s", err);
    cr_assert(host_flags(a, run_as, sizeof run_as) & UG_HF_DROPS_PRIVILEGES);
    cr_assert_str_eq(run_as, "nobody");
    ug_host_free(a);
    c.user = ""; /* it never drops */
    cr_assert_not_null(a = ug_host_open(&c, err, sizeof err), "%s", err);
    cr_assert_not(host_flags(a, run_as, sizeof run_as) & UG_HF_DROPS_PRIVILEGES);
    ug_host_free(a);
}

/* ---- threads sharing one socket ----------------------------------------- */

#define THREADS 4

static _Atomic(ug_host_adapter *) shared_a; /* NULL until opened, as in opentracker */
static _Atomic unsigned before_open;        /* upgate datagrams the threads saw before it */

typedef struct {
    pthread_t t;
    int worker; /* -1: none yet */
} reader;

/* A host thread: blocks in recvfrom() on the one socket, hands every
 * datagram on; a foreign "quit" ends it. */
static void *reader_main(void *arg)
{
    reader *r = arg;
    r->worker = -1;
    for (;;) {
        char buf[2048];
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t k = recvfrom(hs, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (k == 4 && !memcmp(buf, "quit", 4))
            return NULL;
        if (k <= 0)
            continue;
        ug_host_adapter *a = atomic_load(&shared_a);
        if (ug_host_datagram(a, hs, (struct sockaddr *)&from, fl, buf, (size_t)k) == UG_HOST_NOT_MINE && !a)
            atomic_fetch_add(&before_open, 1);
        if (a && r->worker < 0)
            r->worker = (int)ug_host_worker(a);
    }
}

Test(hostlib, threads_sharing_a_socket_get_workers_lazily_and_every_reply)
{
    hold = 0; /* a thread may wait in recvfrom() with replies held: the admin thread's commit is part of this */
    reader r[THREADS + 1];
    for (int i = 0; i < THREADS; i++) /* started before the plugin, as opentracker's are */
        cr_assert_eq(pthread_create(&r[i].t, NULL, reader_main, &r[i]), 0);
    peers_send('L', 3);
    nu_sleep_ms(100);
    cr_assert_eq(atomic_load(&before_open), 3, "before the plugin: every datagram the host's");
    cr_assert_eq(peers_got(100), 0);
    atomic_store(&shared_a, open_with(UG_HOST_SHARED_SOCKET, THREADS, plug, "off"));
    unsigned got = 0;
    for (int burst = 0; burst < 8; burst++) {
        peers_send('L', 50);
        got += peers_got(300);
    }
    got += peers_got(1000);
    cr_assert_eq(got, 400, "every held reply went out after its commit: %u of 400", got);
    ug_host_adapter *a = atomic_load(&shared_a);
    ug_host_counters k = counters(a);
    cr_expect_eq(k.held, 400);
    cr_expect_lt(k.commits, 400, "commits are shared: %llu", (unsigned long long)k.commits);
    /* one more thread than workers: it shares, and says so once */
    cr_assert_eq(pthread_create(&r[THREADS].t, NULL, reader_main, &r[THREADS]), 0);
    for (int i = 0; i < 20; i++) {
        peers_send('L', 20);
        got += peers_got(100);
    }
    for (int i = 0; i <= THREADS; i++)
        cr_assert_eq(send(cs, "quit", 4, 0), 4);
    for (int i = 0; i <= THREADS; i++)
        pthread_join(r[i].t, NULL);
    bool seen[THREADS] = {false};
    for (int i = 0; i <= THREADS; i++) {
        if (r[i].worker < 0)
            continue;
        cr_assert_lt(r[i].worker, THREADS, "worker %d of %d", r[i].worker, THREADS);
        seen[r[i].worker] = true;
    }
    for (int i = 0; i < THREADS; i++)
        cr_expect(seen[i], "worker %d went to a thread", i);
    cr_expect(logged("more threads call upgate than the 4 workers"), "%s", log_text);
    cr_assert_eq(ug_host_close(a), 0);
    cr_expect_eq(counters(a).sent_held, counters(a).held, "every held reply sent by the close");
    ug_host_free(a);
}

/* ---- close --------------------------------------------------------------- */

Test(hostlib, close_finishes_once_and_the_adapter_stays_safe_to_call)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    peers_send('L', 2);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(ug_host_close(a), 0);
    cr_assert_eq(peers_got(300), 1, "close commits and sends what was held");
    cr_assert(logged("every grant is on disk"), "%s", log_text);
    size_t len = log_len;
    cr_assert_eq(ug_host_close(a), 0, "the second close returns the first's result");
    cr_assert_eq(log_len, len, "and does nothing");
    cr_assert_eq(host_one(a), UG_HOST_DROPPED, "an upgate datagram after close: dropped");
    peers_send(0, 1);
    cr_assert_eq(host_one(a), UG_HOST_NOT_MINE, "the host's own: still the host's");
    char err[64];
    cr_assert_eq(ug_host_reload(a, err, sizeof err), -1);
    cr_assert_eq(ug_host_stats(a, NULL, 0), 0);
    ug_host_free(a);
}

Test(hostlib, close_says_when_a_grant_is_not_on_disk)
{
    nu_write(nu_path(&N, "policy.yaml"), "fail_finish=1\n");
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    cr_assert_eq(ug_host_close(a), -1);
    cr_assert(logged("disk on fire") && logged("not every grant is on disk"), "%s", log_text);
    cr_assert_eq(ug_host_close(a), -1);
    ug_host_free(a);
}

/* A child that opens the adapter and leaves with exit(): atexit closes it.
 * What it held goes out; its stderr says every grant is on disk. Returns
 * its exit code; its stderr in err. */
static int child_exits(char op_after, char *err, size_t cap)
{
    char path[160];
    snprintf(path, sizeof path, "%s/child.err", N.dir);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        ug_host_config c = {.size = sizeof c, .plugin = plug, .policy = nu_path(&N, "policy.yaml"),
                            .control = "off", .workers = 1, .hold_ms = 10000};
        ug_host_adapter *a = ug_host_open(&c, NULL, 0);
        if (!a)
            _exit(90);
        peers_send('L', 2);
        if (op_after) /* the plugin calls exit() inside handle() for it */
            peers_send(op_after, 1);
        if (host_one(a) != UG_HOST_HELD) /* held: more is queued */
            _exit(91);
        if (op_after) {
            host_one(a);
            host_one(a);
        }
        exit(0);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(err, 1, cap - 1, f) : 0;
    err[n] = 0;
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(hostlib, exit_closes_it)
{
    char err[4096];
    cr_assert_eq(child_exits(0, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(err, "upgate: info: closed:") && strstr(err, "every grant is on disk"), "%s", err);
    cr_assert_eq(peers_got(500), 1, "the reply held at exit() went out after the commit");
}

/* A signal handler that calls exit() while the thread is inside a call
 * (opentracker's SIGINT): the plugin is mid-call, so it is left alone, and
 * the reply that waited for a commit is never sent. */
Test(hostlib, exit_from_inside_a_call_leaves_the_plugin_alone)
{
    char err[4096];
    cr_assert_eq(child_exits('X', err, sizeof err), 3, "%s", err);
    cr_assert(strstr(err, "closed from inside a datagram call"), "%s", err);
    cr_assert_eq(peers_got(300), 0, "no reply left without its commit");
}

/* A process forked after open (a host's helper, a daemon()'s parent) never
 * closes the parent's plugin, even when it calls exit(). */
Test(hostlib, a_forked_child_leaves_the_plugin_alone)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, NULL);
    const char *sock = ug_host_control_path(a);
    cr_assert_not_null(sock);
    pid_t pid = fork();
    if (pid == 0) {
        ug_host_close(a); /* explicitly, and again by exit() */
#if defined(__SANITIZE_ADDRESS__)
        /* LeakSanitizer's check at exit() locks the allocator, which another
         * thread of the parent may have held at fork(): the child would hang
         * for ever (seen under SAN=1). The plain build tests exit(). */
        _exit(0);
#else
        exit(0);
#endif
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct stat sb;
    cr_assert_eq(stat(sock, &sb), 0, "the child did not remove the parent's control socket");
    peers_send('L', 1);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    cr_assert_eq(peers_got(500), 1, "the parent still serves");
    cr_assert_not(logged("closed:"));
    ug_host_free(a);
    cr_assert_neq(stat(sock, &sb), 0, "its own close removes it");
}

/* ---- the admin threads ------------------------------------------------- */

Test(hostlib, the_control_socket_speaks_docs_control_md)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, NULL);
    char want[256], out[4096];
    snprintf(want, sizeof want, "%s/upgate.ctl", N.dir);
    cr_assert_str_eq(ug_host_control_path(a), want, "the default: upgate.ctl in the state folder info names");
    struct stat st;
    cr_assert_eq(stat(want, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "only its owner may connect");
    cr_assert_gt(nu_ctl(want, "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(strstr(out, "\"ok\":true") && strstr(out, "request_bytes"), "%s", out);
    cr_assert_gt(nu_ctl(want, "{\"cmd\":\n", 8, false, out, sizeof out), 0);
    cr_assert(strstr(out, "\"ok\":false") && strstr(out, "not one JSON object"), "%s", out);
    cr_assert_gt(nu_ctl(want, "[1]\n", 4, false, out, sizeof out), 0);
    cr_assert(strstr(out, "not an object"), "%s", out);
    /* a second adapter on the same socket is refused: another tracker answers there */
    char err[1024];
    ug_host_config c = {.size = sizeof c, .plugin = plug, .policy = nu_path(&N, "policy.yaml"), .log = capture};
    cr_assert_null(ug_host_open(&c, err, sizeof err));
    cr_assert(strstr(err, "another tracker answers"), "%s", err);
    ug_host_free(a);
    cr_assert_neq(stat(want, &st), 0, "close removes its socket");
    /* a relative path is made absolute at open (the host may chdir later) */
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(N.dir), 0);
    a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "rel.ctl");
    cr_assert_eq(chdir(cwd), 0);
    snprintf(want, sizeof want, "%s/rel.ctl", N.dir);
    cr_assert_str_eq(ug_host_control_path(a), want);
    cr_assert_gt(nu_ctl(want, "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    ug_host_free(a);
}

/* Bits of a /proc/.../status mask line ("SigBlk:\t00000000...") */
static uint64_t mask_of(const char *status, const char *key)
{
    const char *p = strstr(status, key);
    return p ? strtoull(p + strlen(key), NULL, 16) : 0;
}

Test(hostlib, the_admin_threads_block_every_signal_and_tick)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, NULL);
    nu_sleep_ms(1300);
    ug_stat st[8];
    size_t n = ug_host_stats(a, st, 8);
    uint64_t ticks = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        if (!strcmp(st[i].name, "hostplug_ticks"))
            ticks = st[i].value;
    cr_assert_geq(ticks, 1, "tick() about once a second");
    char cmd[256], out[8192];
    snprintf(cmd, sizeof cmd,
             "for t in /proc/%d/task/*; do c=$(cat $t/comm); case $c in upgate-*) echo \"$c\"; grep SigBlk "
             "$t/status;; esac; done",
             (int)getpid());
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0);
    cr_assert(strstr(out, "upgate-admin") && strstr(out, "upgate-ctl"), "%s", out);
    const uint64_t want = (1ull << (SIGHUP - 1)) | (1ull << (SIGINT - 1)) | (1ull << (SIGTERM - 1)) |
                          (1ull << (SIGUSR1 - 1)) | (1ull << (SIGALRM - 1));
    for (const char *p = out; (p = strstr(p, "SigBlk:")); p++)
        cr_assert_eq(mask_of(p, "SigBlk:") & want, want, "an admin thread takes a host's signal: %s", out);
    ug_host_free(a);
}

static void *reload_from_a_thread(void *arg)
{
    char err[256];
    *(int *)arg = ug_host_reload(atomic_load(&shared_a), err, sizeof err);
    return NULL;
}

Test(hostlib, reload_from_any_thread_and_from_a_signal_handler)
{
    ug_host_adapter *a = open_with(UG_HOST_ONE_AT_A_TIME, 1, plug, "off");
    atomic_store(&shared_a, a);
    pthread_t t;
    int rc = -5;
    cr_assert_eq(pthread_create(&t, NULL, reload_from_a_thread, &rc), 0);
    peers_send('L', 1);
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    pthread_join(t, NULL);
    cr_assert_eq(rc, 0);
    cr_assert(logged("hostplug: reloaded"), "%s", log_text);
    log_len = 0, log_text[0] = 0;
    ug_host_reload_async(a); /* async-signal-safe: what a SIGHUP handler may call */
    for (int i = 0; i < 100 && !logged("hostplug: reloaded"); i++)
        nu_sleep_ms(20);
    cr_assert(logged("hostplug: reloaded"), "the admin thread reloaded: %s", log_text);
    cr_assert(!logged("reloaded with a newline\n"), "log lines have no newline inside");
    ug_host_free(a);
}

/* ---- the adapter's own worker ------------------------------------------- */

static ug_host_adapter *open_offload(void)
{
    char err[1024] = "";
    ug_host_config c = {.size = sizeof c, .plugin = plug, .policy = nu_path(&N, "policy.yaml"), .control = "off",
                        .model = UG_HOST_ONE_AT_A_TIME, .workers = 4, .flags = UG_HOST_OFFLOAD, .log = capture};
    ug_host_adapter *a = ug_host_open(&c, err, sizeof err);
    cr_assert_not_null(a, "open: %s", err);
    cr_assert(logged("1 worker (one datagram per wake-up, handed over to the adapter's worker)"), "%s", log_text);
    return a;
}

/* The host's thread only hands upgate datagrams over; the worker answers
 * them in batches, a commit after each, and sends what needs no disk at once. */
Test(hostlib, offload_hands_over_and_the_worker_commits_per_batch)
{
    ug_host_adapter *a = open_offload();
    peers_send('L', 20);
    peers_send('N', 1);
    peers_send(0, 1);
    for (int i = 0; i < 21; i++)
        cr_assert_eq(host_one(a), UG_HOST_HELD, "every upgate datagram goes to the worker");
    cr_assert_eq(host_one(a), UG_HOST_NOT_MINE);
    cr_assert_eq(peers_got(1000), 21);
    ug_host_counters k = counters(a);
    cr_expect_eq(k.held, 20);
    cr_expect_eq(k.sent_now, 1);
    cr_expect_leq(k.commits, 21, "a commit per batch, not per datagram");
    cr_expect_eq(k.foreign, 1);
    cr_expect_eq(k.idle_commits, 0, "the worker commits before it waits: nothing for the admin thread");
    cr_assert_eq(ug_host_close(a), 0);
    ug_host_free(a);
}

/* A worker that falls behind never holds the host up: past 512 waiting,
 * datagrams are dropped (the peers ask again), and counted. Close answers
 * what the ring holds before finish(). */
Test(hostlib, offload_drops_when_behind_and_close_answers_the_ring)
{
    ug_host_adapter *a = open_offload();
    peers_send('S', 1); /* the worker sleeps 300 ms in it */
    cr_assert_eq(host_one(a), UG_HOST_HELD);
    nu_sleep_ms(50);
    unsigned held = 0, dropped = 0;
    for (int burst = 0; burst < 6; burst++) {
        peers_send('L', 100);
        for (int i = 0; i < 100; i++) {
            ug_host_result r = host_one(a);
            held += r == UG_HOST_HELD, dropped += r == UG_HOST_DROPPED;
        }
    }
    cr_assert_eq(held, 511, "the ring holds 512, the one being answered included");
    cr_assert_eq(dropped, 89);
    cr_expect_eq(counters(a).ring_full, 89);
    cr_assert_eq(ug_host_close(a), 0);
    cr_assert_eq(peers_got(1000), 512, "close: the worker answered all it had, then finish()");
    ug_host_free(a);
}
