/* make bench-census: what the version census costs a tracker's hot path.
 * In-process, one worker: HELLOs through upgate.so to WAIT on a policy with
 * `census: false` and on the same policy with the census (the plugin notes
 * every HELLO itself), the HELLOs' uids seen this slot or each rewritten to
 * a new one. The two sides of a pair take turns of TURN HELLOs each, in the
 * order ABBA BAAB..., the same HELLOs for both, each side's thread CPU
 * summed over its turns: the machine is shared, and what drifts between
 * two turns a millisecond apart hits both sides alike. A round's ratio is
 * the off side's CPU over the on side's for as many HELLOs; the row gives
 * the median of the rounds. Then the census's note alone. As in
 * upgate-node, tick runs on a thread of its own (here every millisecond,
 * through every phase): the drain of a census of the bench's own, per
 * staged HELLO, is a row. Then over UDP: a minimal host
 * (bench_census_host.c) on either policy, CPU per reply of its whole
 * process, drain included.
 *
 *   build/bench-census              the rows
 *   build/bench-census ir MODE N    MODE wait|both|fresh|drain: N untargeted HELLOs
 *                                   in ir_loop, for callgrind's instruction counts */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>

#include "bench_census.h"
#include "bench_stamp.h"

#define ROUNDS 9
#define PEERS 60000
#define UNT_POOL 4096
#define RET_POOL 40000     /* fresh returning HELLOs per round: each instance sees each once */
#define CHUNK 16384        /* HELLOs between two reads of the CPU clock; at most 16384 in ir mode */
#define TURN 2048          /* HELLOs per side per turn of an interleaved pair */
#define CPU_BUDGET 0.2     /* seconds of this thread's CPU per side and round (the note alone: a quarter) */
#define PERCENT_SALT "one-percent"
#define ROLLOUT "  - {name: " PERCENT_SALT ", percent: 1, quota: 10000000}\n"
#define ROLLOUT_OFF ROLLOUT "census: false\n"
#define UID0 65536u /* untargeted uids from here: four bytes in msgpack, rewritable in place */

static const char *const regions[8] = {"DE", "CN-BJ", "US-CA", "FR", "BR-SP", "IN-MH", "JP-13", ""};

typedef struct {
    bench_env env;
    lg_keys keys;
    lg_creds creds;
    bp_lib lib;
    void *inst[2];    /* census off, census on */
    lg_pool unt, ret;
    size_t uoff[UNT_POOL]; /* where each untargeted HELLO's uid is */
    uint32_t next_uid;
    ug_census *census;
    struct sockaddr_in src;
    pthread_t ticker;
    pid_t host[4];    /* UDP hosts: plain off, plain on, distinct off, distinct on */
    lg_conn conn[4];
    _Atomic bool stop;
    _Atomic uint64_t tick_ns; /* the tick thread's CPU */
    bool fresh;               /* note each HELLO as a uid never seen (the filter skips nothing) */
    uint64_t fresh_n;
} ctx;

/* What the plugin has at hand for a HELLO of pool item i: its parsed
 * version, plat and chan, and a GeoIP region. */
static ug_census_key key_of(const lg_pool *p, size_t i, const char *ver)
{
    (void)p;
    ug_census_key k = {.ver = {.part = {0, 9}, .nparts = 2}, .plat = "linux-x86_64", .chan = "stable",
                       .region = regions[i % 8]};
    if (ver[0] == '1')
        k.ver = (ug_version){.part = {1, 4, 0}, .nparts = 3};
    return k;
}

/* count HELLOs of p (cycling, from item `from`) through handle2 (inst
 * set), each followed by a note (census set). Returns ns of this thread's
 * CPU per HELLO; stops early past budget seconds (0: no limit). */
static double run(ctx *x, void *inst, const lg_pool *p, const char *ver, ug_census *census, size_t from,
                  size_t count, double budget)
{
    uint8_t out[UG_DGRAM_MAX];
    double cpu = 0;
    size_t done = 0;
    uint64_t now = (uint64_t)time(NULL);
    while (done < count && (budget <= 0 || cpu < budget)) {
        size_t end = done + CHUNK < count ? done + CHUNK : count;
        double t0 = thread_cpu();
        for (size_t i = done; i < end; i++) {
            size_t k = (from + i) % p->n, out_len = 0;
            unsigned flags = 0;
            if (inst && x->fresh && p == &x->unt)
                ch_uid_set(p->buf + k * UG_DGRAM_MAX, x->uoff[k], x->next_uid++);
            if (inst)
                (void)x->lib.api->handle2(inst, 0, (const struct sockaddr *)&x->src, sizeof x->src,
                                          p->buf + k * UG_DGRAM_MAX, p->len[k], out, sizeof out, &out_len, &flags);
            if (census) {
                ug_census_key key = key_of(p, k, ver);
                ug_census_note(census, 0, &key, x->fresh ? (++x->fresh_n << 24) + p->uid[k] : p->uid[k], now);
            }
            if (inst && (out_len < 6 || out[5] != UG_TYPE_WAIT))
                bench_die("a HELLO was not answered WAIT");
        }
        cpu += thread_cpu() - t0;
        if (inst && x->lib.api->flush(inst, 0) != 0)
            bench_die("flush() failed");
        done = end;
    }
    return cpu * 1e9 / (double)done;
}

/* The host's tick thread: every millisecond, as long as the bench runs;
 * its CPU, over every HELLO staged, is the drain's cost. */
static void *tick_loop(void *arg)
{
    ctx *x = arg;
    for (unsigned n = 0; !atomic_load(&x->stop); n++) {
        double t0 = thread_cpu();
        ug_census_tick(x->census, (uint64_t)time(NULL));
        atomic_fetch_add(&x->tick_ns, (uint64_t)((thread_cpu() - t0) * 1e9));
        for (int i = 0; n % 1000 == 0 && i < 2; i++)
            x->lib.api->tick(x->inst[i]); /* as a host: once a second */
        struct timespec ms = {.tv_nsec = 1000000};
        nanosleep(&ms, NULL);
    }
    return NULL;
}

static void build(ctx *x, lg_pool *p, size_t n, const char *ver, uint64_t salt, bool returning)
{
    p->n = 0;
    for (uint64_t i = 0; p->n < n && i < 8 * (uint64_t)PEERS; i++) {
        uint64_t uid = returning ? lg_walk(1, PEERS, salt, i) : i + 1;
        if (returning && lg_percent_selects(PERCENT_SALT, uid, 100))
            continue;
        size_t clen, k = p->n;
        const uint8_t *cred = lg_cred(&x->creds, uid, &clen);
        uint64_t said = returning ? uid : UID0 + i; /* an untargeted HELLO's credential is never checked */
        if (!cred || lg_pool_add_hello(p, &x->keys, said, cred, clen, ver, UG_DGRAM_MAX, (uint64_t)time(NULL)) != 0)
            bench_die("cannot build a HELLO for uid %llu", (unsigned long long)uid);
        if (!returning && !(x->uoff[k] = ch_uid_offset(p->buf + k * UG_DGRAM_MAX, p->len[k], said)))
            bench_die("no uid %llu in its HELLO", (unsigned long long)said);
    }
}

static void setup(ctx *x, const char *build_dir)
{
    char so[512], why[512];
    env_init(&x->env);
    if (lg_keys_load(&x->keys, x->env.dir, why, sizeof why) != 0)
        bench_die("%s", why);
    if (lg_creds_issue(&x->creds, &x->keys, 1, PEERS, (uint64_t)time(NULL) + 86400) != 0)
        bench_die("cannot issue credentials");
    snprintf(so, sizeof so, "%s/upgate.so", build_dir);
    if (bp_open(&x->lib, so, why, sizeof why) != 0)
        bench_die("%s", why);
    for (int i = 0; i < 2; i++)
        if (!(x->inst[i] = bp_create(&x->lib, env_policy(&x->env, i ? "census-on" : "census-off", i ? ROLLOUT : ROLLOUT_OFF),
                                      why, sizeof why)))
            bench_die("%s", why);
    x->next_uid = 1u << 24;
    ug_census_opts o = {.nworkers = 1};
    if (!(x->census = ug_census_create(&o, why, sizeof why)))
        bench_die("%s", why);
    if (lg_pool_init(&x->unt, UNT_POOL) != 0 || lg_pool_init(&x->ret, RET_POOL) != 0)
        bench_die("out of memory");
    x->src = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(20000),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    build(x, &x->unt, UNT_POOL, "0.9", 0, false);
}

/* The measured loop of `ir` mode (callgrind --toggle-collect=ir_loop*):
 * WAIT without the census; WAIT with it (the pool's uids, seen in the
 * warm-up: the filter skips them); WAIT with it, each a new uid; tick's
 * drain of n staged HELLOs (the bench's own census). */
enum { IR_WAIT, IR_BOTH, IR_FRESH, IR_DRAIN };

__attribute__((noinline)) static void ir_loop(ctx *x, int mode, size_t n)
{
    if (mode == IR_DRAIN)
        ug_census_tick(x->census, (uint64_t)time(NULL));
    else
        (void)run(x, x->inst[mode != IR_WAIT], &x->unt, "0.9", NULL, 0, n, 0);
}

static int ir_main(const char *build_dir, const char *mode, const char *count)
{
    static ctx x;
    static const char *const modes[] = {"wait", "both", "fresh", "drain"};
    int m = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(mode, modes[i]))
            m = i;
    long n = strtol(count, NULL, 10);
    if (m < 0 || n < 1 || n > CHUNK)
        bench_die("usage: bench-census ir wait|both|fresh|drain N (N up to %d: no tick inside)", CHUNK);
    setup(&x, build_dir);
    for (int i = 0; i < 2; i++)
        (void)run(&x, x.inst[i], &x.unt, "0.9", NULL, 0, UNT_POOL, 0); /* warm both */
    (void)run(&x, NULL, &x.unt, "0.9", x.census, 0, UNT_POOL, 0);
    ug_census_tick(x.census, (uint64_t)time(NULL));
    x.lib.api->tick(x.inst[1]);
    x.fresh = m >= IR_FRESH;
    if (m == IR_DRAIN) /* n new uids staged for the drain */
        (void)run(&x, NULL, &x.unt, "0.9", x.census, 0, (size_t)n, 0);
    ir_loop(&x, m, (size_t)n);
    return 0;
}

enum { M_UNT, M_UNT_NOTE, M_FRESH, M_FRESH_NOTE, M_RET, M_RET_NOTE, M_NOTE, M_NOTE_FRESH, M_UDP, M_UDP_NOTE,
       M_UDP_D, M_UDP_FRESH, M_COUNT };

static ctx *hosts_of; /* for the exit handler */

static void stop_hosts(void)
{
    for (int i = 0; hosts_of && i < 4; i++)
        if (hosts_of->host[i] > 0) {
            kill(hosts_of->host[i], SIGKILL);
            (void)waitpid(hosts_of->host[i], NULL, 0);
            hosts_of->host[i] = 0;
        }
}

static void start_hosts(ctx *x, const char *build_dir)
{
    char so[512], addr[64], why[256];
    snprintf(so, sizeof so, "%s/upgate.so", build_dir);
    hosts_of = x;
    atexit(stop_hosts);
    static const char *const names[4] = {"udp-plain-off", "udp-plain-on", "udp-distinct-off", "udp-distinct-on"};
    for (int i = 0; i < 4; i++) {
        unsigned port;
        struct sockaddr_storage ss;
        socklen_t sl;
        x->host[i] = ch_start(so, env_policy(&x->env, names[i], i % 2 ? ROLLOUT : ROLLOUT_OFF),
                              i < 2 ? CH_PLAIN : CH_DISTINCT, &port);
        snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
        if (lg_parse_target(addr, &ss, &sl, why, sizeof why) != 0 ||
            lg_conn_open(&x->conn[i], &ss, sl, 32, why, sizeof why) != 0)
            bench_die("census host: %s", why);
    }
}

/* ns of the host's CPU per reply, windowed, 0.4 s; NAN when unmeasured. */
static double udp(ctx *x, int i)
{
    lg_opts o = {.window = 8, .seconds = 0.4, .count = UINT64_C(1) << 40, .pid = x->host[i]};
    lg_result r;
    char why[256];
    if (lg_run(&x->conn[i], &x->unt, &o, &r, why, sizeof why) != 0)
        bench_die("census host: %s", why);
    if (!r.replies || !r.cpu_ok || r.by_type[UG_TYPE_WAIT] != r.replies)
        return NAN;
    return (double)r.cpu_ns / (double)r.replies;
}

static double median(double *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The pair (census: false, the census) on the same HELLOs of p from item
 * 0, in turns of TURN HELLOs each, ABBA BAAB...: until each side had count
 * HELLOs, or both together 2 * budget seconds of CPU (0: no limit). Each
 * side's ns of CPU per HELLO in ns[0] (off) and ns[1] (on), over as many
 * HELLOs. */
static void pair(ctx *x, const lg_pool *p, const char *ver, size_t count, double budget, double ns[2])
{
    double cpu[2] = {0, 0};
    size_t done = 0;
    for (unsigned t = 0; done < count && (budget <= 0 || cpu[0] + cpu[1] < 2 * budget); t++) {
        size_t n = count - done < TURN ? count - done : TURN;
        for (unsigned k = 0; k < 2; k++) {
            unsigned side = k ^ ((t ^ t >> 1) & 1); /* AB BA BA AB: each side first as often */
            cpu[side] += run(x, x->inst[side], p, ver, NULL, done, n, 0) * (double)n / 1e9;
        }
        done += n;
    }
    for (int i = 0; i < 2; i++)
        ns[i] = cpu[i] * 1e9 / (double)done;
}

/* One round: the in-process pairs interleaved (pair()), the note alone,
 * then the UDP hosts, their order reversed every other round; the
 * returning pool is fresh and goes once to each instance. */
static void round_of(ctx *x, unsigned r, double m[M_COUNT])
{
    double ns[2];
    build(x, &x->ret, RET_POOL, "1.4.0", 1000 + r, true);
    bool rev = r % 2;
    (void)run(x, x->inst[1], &x->unt, "0.9", NULL, 0, x->unt.n, 0); /* the pool's uids as they are now: seen */
    pair(x, &x->unt, "0.9", SIZE_MAX, CPU_BUDGET, ns);
    m[M_UNT] = ns[0], m[M_UNT_NOTE] = ns[1];
    x->fresh = true;
    pair(x, &x->unt, "0.9", SIZE_MAX, CPU_BUDGET, ns);
    m[M_FRESH] = ns[0], m[M_FRESH_NOTE] = ns[1];
    x->fresh = false;
    pair(x, &x->ret, "1.4.0", x->ret.n, 0, ns);
    m[M_RET] = ns[0], m[M_RET_NOTE] = ns[1];
    m[M_NOTE] = run(x, NULL, &x->unt, "0.9", x->census, 0, SIZE_MAX, CPU_BUDGET / 4);
    x->fresh = true;
    m[M_NOTE_FRESH] = run(x, NULL, &x->unt, "0.9", x->census, 0, SIZE_MAX, CPU_BUDGET / 4);
    x->fresh = false;
    static const int slot[4] = {M_UDP, M_UDP_NOTE, M_UDP_D, M_UDP_FRESH};
    for (int k = 0; k < 4; k++) {
        int i = rev ? 3 - k : k;
        m[slot[i]] = udp(x, i);
    }
}

static void row(const char *path, double ns, double ratio, const char *versus, const char *goal, const char *verdict)
{
    char rate[32], each[32], rat[32] = "";
    snprintf(rate, sizeof rate, "%.2fM/s", 1e3 / ns);
    snprintf(each, sizeof each, ns >= 1e3 ? "%.2f us" : "%.0f ns", ns >= 1e3 ? ns / 1e3 : ns);
    if (ratio > 0)
        snprintf(rat, sizeof rat, "%.2fx", ratio);
    printf("  %-44s | %10s | %9s | %8s | %-18s | %-17s | %s\n", path, rate, each, rat, versus, goal, verdict);
}

int main(int argc, char **argv)
{
    static ctx x;
    const char *build_dir = getenv("UG_BUILD") ? getenv("UG_BUILD") : "build";
    if (sodium_init() < 0)
        bench_die("libsodium failed to initialise");
    if (argc == 4 && !strcmp(argv[1], "ir"))
        return ir_main(build_dir, argv[2], argv[3]);
    setup(&x, build_dir);
    if (pthread_create(&x.ticker, NULL, tick_loop, &x) != 0)
        bench_die("cannot start the tick thread");
    start_hosts(&x, build_dir);
    static double m[ROUNDS][M_COUNT], v[M_COUNT][ROUNDS], ru[ROUNDS], rr[ROUNDS], rn[ROUNDS], rf[ROUNDS],
        rw[ROUNDS];
    for (int i = 0; i < 2; i++)
        (void)run(&x, x.inst[i], &x.unt, "0.9", NULL, 0, UNT_POOL, 0);
    (void)run(&x, NULL, &x.unt, "0.9", x.census, 0, UNT_POOL, 0);
    for (unsigned r = 0; r < ROUNDS; r++) {
        round_of(&x, r, m[r]);
        for (int k = 0; k < M_COUNT; k++)
            v[k][r] = m[r][k];
        ru[r] = m[r][M_UNT] / m[r][M_UNT_NOTE];
        rw[r] = m[r][M_FRESH] / m[r][M_FRESH_NOTE];
        rr[r] = m[r][M_RET] / m[r][M_RET_NOTE];
        rn[r] = m[r][M_UDP] / m[r][M_UDP_NOTE];
        rf[r] = m[r][M_UDP_D] / m[r][M_UDP_FRESH];
    }
    double med[M_COUNT], ratio_u = median(ru, ROUNDS), ratio_r = median(rr, ROUNDS), ratio_w = median(rw, ROUNDS);
    double ratio_n = median(rn, ROUNDS), ratio_f = median(rf, ROUNDS);
    for (int k = 0; k < M_COUNT; k++)
        med[k] = median(v[k], ROUNDS);
    printf("\n");
    bench_stamp("bench-census");
    printf("census (plugin/census) in upgate.so, in-process, 1 worker, %d rounds; each pair interleaved in turns of "
           "%d HELLOs a side (ABBA BAAB...), as many HELLOs a side, %.1f s of CPU a side per round (returning: %d "
           "HELLOs a side), a tick thread throughout: HELLOs per CPU-second, medians; ratio = median over rounds "
           "of CPU with census: false / CPU with the census (no kernel: the census's share at its largest)\n",
           ROUNDS, TURN, CPU_BUDGET, RET_POOL);
    row("untargeted -> WAIT, census: false", med[M_UNT], 0, "", "", "");
    row("untargeted -> WAIT, census, uids seen this slot", med[M_UNT_NOTE], ratio_u, "census: false", ">= 0.95",
        ratio_u >= 0.95 ? "ok" : "MISS");
    row("untargeted new uid -> WAIT, census: false", med[M_FRESH], 0, "", "", "");
    row("untargeted new uid -> WAIT, census", med[M_FRESH_NOTE], ratio_w, "census: false", ">= 0.95",
        ratio_w >= 0.95 ? "ok" : "MISS");
    row("returning -> WAIT, census: false", med[M_RET], 0, "", "", "");
    row("returning -> WAIT, census", med[M_RET_NOTE], ratio_r, "census: false", "", "");
    row("census note alone, uids seen this slot", med[M_NOTE], 0, "", "", "");
    row("census note alone, each HELLO a new uid", med[M_NOTE_FRESH], 0, "", "", "");
    atomic_store(&x.stop, true);
    pthread_join(x.ticker, NULL);
    ug_census_tick(x.census, (uint64_t)time(NULL));
    ug_census_stats st;
    ug_census_stats_get(x.census, &st);
    row("census drain in tick, per staged HELLO", (double)atomic_load(&x.tick_ns) / (double)st.noted, 0,
        "(tick thread)", "", "");
    printf("\ncensus, upgate.so behind a minimal UDP host (recvmmsg, handle2, sendmmsg; 1 worker): CPU per reply of "
           "the host process; ratio = without / with the census\n");
    row("untargeted -> WAIT, census: false", med[M_UDP], 0, "", "", "");
    row("untargeted -> WAIT, census, 4096 uids again", med[M_UDP_NOTE], ratio_n, "census: false", ">= 0.95",
        ratio_n >= 0.95 ? "ok" : "MISS");
    row("untargeted new uid -> WAIT, census: false", med[M_UDP_D], 0, "", "", "");
    row("untargeted new uid -> WAIT, census", med[M_UDP_FRESH], ratio_f, "census: false", ">= 0.95",
        ratio_f >= 0.95 ? "ok" : "MISS");
    ug_census_stats_get(x.census, &st);
    printf("  census after the run: %llu HELLOs staged, %llu filtered, %llu dropped, %llu buckets, %llu bytes\n",
           (unsigned long long)st.noted, (unsigned long long)st.filtered, (unsigned long long)st.dropped,
           (unsigned long long)st.buckets, (unsigned long long)st.bytes);
    return 0;
}
