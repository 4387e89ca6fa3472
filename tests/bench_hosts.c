/* make bench, the hosts' rows: upgate inside opentracker (libupgate-host) against upgate-node, and what a burst
 * of new grants does to the tracker's own BitTorrent latency. Ratios within one run, rounds interleaved. */
#include <arpa/inet.h>
#include <endian.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "bench_stamp.h"

#define ROUNDS_MAX 15
#define SOCKETS 8 /* 64 in flight: within a default receive buffer (opentracker sets none) */
#define WINDOW 8
#define SLICES 6 /* the latency rounds' bursts, cut for interleaving */
#define PROBE_MAX 60000     /* announces per condition over all rounds, at most */
#define PROBE_GAP_US 1000   /* one announce a millisecond */
#define PROBE_TIMEOUT_MS 200 /* an unanswered announce counts as this late */

static pid_t ot_pid;

static void stop_opentracker(void)
{
    if (ot_pid > 0 && getpid() != ot_pid) {
        kill(ot_pid, SIGINT); /* its handler exits: upgate commits on the way out */
        for (int i = 0; i < 200 && waitpid(ot_pid, NULL, WNOHANG) == 0; i++)
            usleep(50000);
        kill(ot_pid, SIGKILL);
        waitpid(ot_pid, NULL, 0);
        ot_pid = 0;
    }
}

static unsigned env_uint(const char *name, unsigned def, unsigned min, unsigned max)
{
    const char *s = getenv(name);
    if (!s)
        return def;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || v < min || v > max)
        bench_die("%s: not a number from %u to %u: %s", name, min, max, s);
    return (unsigned)v;
}

static double median(double *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- opentracker ----------------------------------------------------------- */

/* A BEP 15 client on its own socket: connect once, then announces. */
typedef struct {
    int fd;
    uint8_t connid[8];
    uint32_t tx;
} bt_client;

static uint32_t be32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

static void put32(uint8_t *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
}

/* Sends req and waits up to timeout_ms for the reply to tx; 0 or -1. */
static int bt_ask(bt_client *c, const uint8_t *req, size_t len, uint8_t *rep, size_t cap, int timeout_ms)
{
    if (send(c->fd, req, len, 0) != (ssize_t)len)
        return -1;
    double end = lg_now() + timeout_ms / 1e3;
    for (;;) {
        int left = (int)((end - lg_now()) * 1e3);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) != 1)
            return -1;
        ssize_t k = recv(c->fd, rep, cap, 0);
        if (k >= 8 && be32_at(rep + 4) == c->tx) /* late replies of earlier announces are skipped */
            return 0;
    }
}

static void bt_open(bt_client *c, unsigned port)
{
    c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        bench_die("connect to opentracker");
    uint8_t req[16], rep[64];
    uint64_t magic = htobe64(0x41727101980ull);
    memcpy(req, &magic, 8), put32(req + 8, 0), put32(req + 12, c->tx = 0x0b0e);
    if (bt_ask(c, req, sizeof req, rep, sizeof rep, 1000) != 0 || be32_at(rep) != 0)
        bench_die("opentracker does not answer a BEP 15 connect");
    memcpy(c->connid, rep + 8, 8);
}

/* One announce (a seeder of a fixed torrent); its round trip in ms, or
 * PROBE_TIMEOUT_MS when unanswered. */
static double bt_announce(bt_client *c)
{
    uint8_t req[98] = {0}, rep[1500];
    memcpy(req, c->connid, 8), put32(req + 8, 1), put32(req + 12, ++c->tx);
    memcpy(req + 16, "upgate-bench-torrent", 20), memcpy(req + 36, "-UG0001-bench0000001", 20);
    put32(req + 92, 50), req[96] = 0x1a, req[97] = 0xe1;
    double t0 = lg_now();
    if (bt_ask(c, req, sizeof req, rep, sizeof rep, PROBE_TIMEOUT_MS) != 0)
        return PROBE_TIMEOUT_MS;
    return (lg_now() - t0) * 1e3;
}

/* opentracker on 127.0.0.1 (one UDP thread), upgate loaded with policy. */
static unsigned start_opentracker(bench_env *e, const char *policy)
{
    char bin[512], so[512], conf[160], log[160], text[2048];
    const char *b = getenv("UG_BUILD") ? getenv("UG_BUILD") : "build";
    snprintf(bin, sizeof bin, "%s", getenv("UG_BENCH_OPENTRACKER") ? getenv("UG_BENCH_OPENTRACKER") : "");
    if (!bin[0])
        snprintf(bin, sizeof bin, "%s/hosts/opentracker", b);
    snprintf(so, sizeof so, "%s/upgate.so", b);
    snprintf(conf, sizeof conf, "%s/opentracker.conf", e->dir);
    snprintf(log, sizeof log, "%s/opentracker.log", e->dir);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(s, (struct sockaddr *)&a, &al) != 0)
        bench_die("no free port");
    close(s);
    unsigned port = ntohs(a.sin_port);
    int n = snprintf(text, sizeof text, "listen.udp 127.0.0.1:%u\nupgate.plugin %s\nupgate.policy %s\nupgate.control off\n",
                     port, so, policy);
    FILE *f = fopen(conf, "w");
    if (!f || fwrite(text, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0)
        bench_die("%s: cannot write", conf);
    ot_pid = fork();
    if (ot_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (!freopen(log, "a", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(bin, bin, "-f", conf, (char *)NULL);
        _exit(127);
    }
    atexit(stop_opentracker);
    for (int i = 0; i < 100; i++) { /* ready when it answers its own protocol */
        bt_client c = {.fd = -1};
        usleep(50000);
        if (waitpid(ot_pid, NULL, WNOHANG) == ot_pid)
            bench_die("%s exited; see %s (make hosts?)", bin, log);
        c.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        connect(c.fd, (struct sockaddr *)&to, sizeof to);
        uint8_t req[16], rep[64];
        uint64_t magic = htobe64(0x41727101980ull);
        memcpy(req, &magic, 8), put32(req + 8, 0), put32(req + 12, c.tx = 1);
        int rc = bt_ask(&c, req, sizeof req, rep, sizeof rep, 100);
        close(c.fd);
        if (rc == 0)
            return port;
    }
    bench_die("opentracker did not answer; see %s", log);
}

/* ---- the load ------------------------------------------------------------ */

/* New users: n uids from base nobody has seen, each with a new credential. */
static void build_burst(const lg_keys *k, lg_pool *p, size_t n, uint64_t base)
{
    p->n = 0;
    uint64_t now = (uint64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        lg_creds one;
        size_t clen;
        if (lg_creds_issue(&one, k, base + i, 1, now + 86400) != 0)
            bench_die("cannot issue a credential");
        const uint8_t *cred = lg_cred(&one, base + i, &clen);
        if (lg_pool_add_hello(p, k, base + i, cred, clen, "1.4.0", UG_DGRAM_MAX, now) != 0)
            bench_die("cannot build a HELLO");
        lg_creds_free(&one);
    }
}

static void conn_to(lg_conn *c, unsigned port)
{
    char addr[64], why[256];
    struct sockaddr_storage ss;
    socklen_t sl;
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    if (lg_parse_target(addr, &ss, &sl, why, sizeof why) != 0 || lg_conn_open(c, &ss, sl, SOCKETS, why, sizeof why))
        bench_die("%s: %s", addr, why);
}

typedef struct {
    uint64_t hints, sent;
    double per_cpu_s; /* HINTs per CPU-second of the tracker */
    bool ok;
} burst_result;

/* Sends the pool (windowed) to c, whose server is pid; new grants per CPU-second. */
static burst_result burst(lg_conn *c, const lg_pool *p, pid_t pid)
{
    lg_opts o = {.window = WINDOW, .seconds = 30, .count = p->n, .pid = pid};
    lg_result r;
    char why[256];
    if (lg_run(c, p, &o, &r, why, sizeof why) != 0)
        bench_die("%s", why);
    burst_result b = {.hints = r.by_type[UG_TYPE_HINT], .sent = r.sent};
    b.ok = r.cpu_ok && r.cpu_ns && b.hints;
    b.per_cpu_s = b.ok ? (double)b.hints * 1e9 / (double)r.cpu_ns : 0;
    return b;
}

/* ---- the latency probe --------------------------------------------------- */

/* Round trips of one condition (idle, during a burst), pooled over the
 * rounds: a p99 needs more samples than one burst of the inline host gives. */
typedef struct {
    double ms[PROBE_MAX];
    unsigned n;
} samples;

typedef struct {
    bt_client *c;
    _Atomic bool *stop;
    samples *into;
    unsigned limit; /* stop after this many (0: until told) */
} probe;

static void *probe_main(void *arg)
{
    probe *pr = arg;
    samples *p = pr->into;
    double next = lg_now();
    unsigned taken = 0;
    while (!*pr->stop && p->n < PROBE_MAX && (!pr->limit || taken < pr->limit)) {
        p->ms[p->n++] = bt_announce(pr->c);
        taken++;
        next += PROBE_GAP_US / 1e6;
        double wait = next - lg_now();
        if (wait > 0)
            usleep((useconds_t)(wait * 1e6));
        else
            next = lg_now();
    }
    return NULL;
}

/* The q-quantile of v[from..to) (sorted in place). */
static double quantile(double *v, unsigned from, unsigned to, double q)
{
    if (to - from < 50)
        bench_die("only %u announces measured", to - from);
    qsort(v + from, to - from, sizeof *v, cmp_double);
    return v[from + (size_t)((to - from) * q)];
}

/* Announces, one a millisecond (each awaits its reply), into `into`: while
 * the pool's burst runs (pool not NULL), or `count` of them with nothing
 * else to do. How many it took. */
static unsigned announce(bt_client *c, samples *into, lg_conn *conn, const lg_pool *pool, unsigned count)
{
    _Atomic bool stop = false;
    unsigned before = into->n;
    probe pr = {.c = c, .stop = &stop, .into = into, .limit = pool ? 0 : count};
    pthread_t t;
    if (pthread_create(&t, NULL, probe_main, &pr) != 0)
        bench_die("cannot start the probe");
    if (pool) {
        burst(conn, pool, 0);
        stop = true;
    }
    pthread_join(t, NULL);
    return into->n - before;
}

/* ---- the rows ---------------------------------------------------------- */

static void row(const char *path, const char *each, double ratio, const char *versus, const char *goal, bool ok)
{
    printf("  %-44s | %10s | %9s | %7.2fx | %-18s | %-17s | %s\n", path, "", each, ratio, versus, goal,
           ok ? "ok" : "MISS");
}

int main(void)
{
    if (sodium_init() < 0)
        bench_die("libsodium failed to initialise");
    unsigned rounds = env_uint("UG_BENCH_ROUNDS", 3, 1, ROUNDS_MAX);
    unsigned n = env_uint("UG_BENCH_HOST_POOL", 3000, 500, LG_POOL_MAX);
    const char *b = getenv("UG_BUILD") ? getenv("UG_BUILD") : "build";
    char node_bin[512], so[512], why[512];
    snprintf(node_bin, sizeof node_bin, "%s/upgate-node", b);
    snprintf(so, sizeof so, "%s/upgate.so", b);
    static bench_env e;
    env_init(&e);
    lg_keys k;
    if (lg_keys_load(&k, e.dir, why, sizeof why) != 0)
        bench_die("%s", why);
    const char *everyone = "  - {name: everyone, quota: 100000000}\n";
    bench_proc node;
    proc_node(&node, &e, "node-1w", node_bin, so, env_policy(&e, "node", everyone), 1);
    unsigned ot_port = start_opentracker(&e, env_policy(&e, "ot", everyone));
    static lg_conn cn, co;
    conn_to(&cn, node.port), conn_to(&co, ot_port);
    static lg_pool pool;
    if (lg_pool_init(&pool, n) != 0)
        bench_die("out of memory");
    printf("\n");
    bench_stamp("bench-hosts");
    printf("upgate inside opentracker (libupgate-host, one UDP thread, one datagram per wake-up): %u rounds, %u new "
           "peers' 1232-byte HELLOs per burst, %d sockets x %d in flight\n", rounds, n, SOCKETS, WINDOW);
    fflush(stdout);
    double ratio[ROUNDS_MAX], cpu_ot[ROUNDS_MAX];
    uint64_t base = UINT64_C(1) << 41, hints[2] = {0, 0}, sent[2] = {0, 0};
    for (unsigned r = 0; r < rounds; r++) {
        burst_result res[2];
        for (int side = 0; side < 2; side++) { /* 0 the node, 1 opentracker; the first alternates */
            int w = (int)((r + (unsigned)side) % 2);
            build_burst(&k, &pool, n, base), base += n;
            res[w] = burst(w ? &co : &cn, &pool, w ? ot_pid : node.pid);
            if (!res[w].ok)
                bench_die("%s answered no HINT to a burst", w ? "opentracker" : "upgate-node");
            hints[w] += res[w].hints, sent[w] += res[w].sent;
        }
        ratio[r] = res[1].per_cpu_s / res[0].per_cpu_s;
        cpu_ot[r] = 1e6 / res[1].per_cpu_s;
    }
    bt_client c = {.fd = -1};
    bt_open(&c, ot_port);
    /* each round is SLICES slices of a burst, and each slice three
     * conditions back to back: its HELLOs through opentracker, as many
     * announces with nothing else going on (the same count: both p99s from
     * as many samples), and, as a yardstick of what the machine alone does
     * to the probe, the same number of HELLOs into upgate-node (a process
     * of its own) while opentracker idles. Slices of a fraction of a second,
     * their order turning, put the three under the same background load of
     * a shared machine; the p99s pool every slice of every round. */
    static samples idle, busy, floor_;
    double round_ratio[ROUNDS_MAX], round_idle[ROUNDS_MAX];
    unsigned lrounds = env_uint("UG_BENCH_HOST_LATENCY_ROUNDS", 8, 1, ROUNDS_MAX);
    size_t slice = n / SLICES;
    unsigned m = (unsigned)(slice / 4); /* announces a slice's burst took, until one is measured */
    for (unsigned r = 0; r < lrounds; r++) {
        unsigned b0 = busy.n, i0 = idle.n;
        for (unsigned s = 0; s < SLICES; s++) {
            for (unsigned step = 0; step < 3; step++) {
                switch ((step + s + r) % 3) {
                case 0:
                    build_burst(&k, &pool, slice, base), base += slice;
                    m = announce(&c, &busy, &co, &pool, 0);
                    break;
                case 1: /* as many as the last slice through opentracker took */
                    announce(&c, &idle, NULL, NULL, m);
                    break;
                default:
                    build_burst(&k, &pool, slice, base), base += slice;
                    announce(&c, &floor_, &cn, &pool, 0);
                }
            }
        }
        double bq = quantile(busy.ms, b0, busy.n, 0.99), iq = quantile(idle.ms, i0, idle.n, 0.99);
        round_ratio[r] = bq / iq, round_idle[r] = iq;
    }
    char each[32], during[32], beside[32];
    double x = median(ratio, rounds), busy99 = quantile(busy.ms, 0, busy.n, 0.99),
           idle99 = quantile(idle.ms, 0, idle.n, 0.99), floor99 = quantile(floor_.ms, 0, floor_.n, 0.99);
    snprintf(each, sizeof each, "%.1f us", median(cpu_ot, rounds));
    row("new grant -> HINT, per CPU-second", each, x, "upgate-node, 1w", ">= 0.9", x >= 0.9);
    snprintf(during, sizeof during, "%.2f ms", busy99);
    row("BitTorrent announce p99 during the burst", during, busy99 / idle99, "idle, upgate loaded", "<= 3",
        busy99 / idle99 <= 3);
    snprintf(beside, sizeof beside, "%.2f ms", floor99);
    printf("  %-44s | %10s | %9s | %7.2fx | %-18s | %-17s |\n", "  the burst into upgate-node instead", "", beside,
           floor99 / idle99, "idle (yardstick)", "");
    printf("  %-44s | %10s | %9s | %7.2fx | %-18s | %-17s |\n", "  the burst through opentracker", "", during,
           busy99 / floor99, "burst elsewhere", "");
    double lo = round_ratio[0], hi = round_ratio[0], ilo = round_idle[0], ihi = round_idle[0];
    for (unsigned r = 1; r < lrounds; r++) {
        lo = round_ratio[r] < lo ? round_ratio[r] : lo, hi = round_ratio[r] > hi ? round_ratio[r] : hi;
        ilo = round_idle[r] < ilo ? round_idle[r] : ilo, ihi = round_idle[r] > ihi ? round_idle[r] : ihi;
    }
    printf("  (announce p99 idle %.2f ms, p50 %.3f ms idle and %.3f ms during the burst, %u and %u announces over %u "
           "rounds of %u slices, %u beside; per round: p99 ratio %.2f..%.2f (median %.2f), idle p99 %.2f..%.2f ms; HINTs %llu of "
           "%llu HELLOs through upgate-node, %llu of %llu through opentracker)\n",
           idle99, quantile(idle.ms, 0, idle.n, 0.5), quantile(busy.ms, 0, busy.n, 0.5), idle.n, busy.n, lrounds,
           SLICES, floor_.n,
           lo, hi, median(round_ratio, lrounds), ilo, ihi, (unsigned long long)hints[0], (unsigned long long)sent[0],
           (unsigned long long)hints[1], (unsigned long long)sent[1]);
    close(c.fd);
    lg_conn_close(&cn), lg_conn_close(&co);
    lg_pool_free(&pool);
    lg_keys_free(&k);
    proc_stop(&node);
    stop_opentracker();
    return 0;
}
