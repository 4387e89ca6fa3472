/* make bench: every goal of the tracker's hot path as a ratio to a baseline
 * measured in the same process, interleaved round by round (the machine is
 * shared, so absolute numbers drift and ratios do not): bare libsodium at the
 * exact signed sizes, a bare UDP echo and drain on the same loopback, libev
 * alone, and today's main (19404ac) built from git history. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"
#include "bench_stamp.h"

#define ROUNDS_MAX 15
#define TARGETED "1.4.0"
#define UNTARGETED "0.9"
#define PERCENT_SALT "one-percent" /* the rollout stage's name, so its salt */
#define PERCENT_BP 100u            /* 1% */
#define UDP_SECONDS 0.4            /* per UDP phase, at most */
#define CPU_BUDGET 0.25            /* per in-process phase, at most */
#define BARE_BUDGET 0.08           /* per bare primitive */
#define PACED_SECONDS 1.0          /* per half-load phase, at most */
#define SOCKETS 32
#define WINDOW 8

/* ---- what is measured ------------------------------------------------- */

enum {
    M_V_HELLO, M_V_CRED, M_SIGN, M_VS_HELLO, M_VS_BURST,                  /* bare libsodium */
    M_IP_RET, M_IP_RET_OLD, M_IP_ROLL, M_IP_ROLL_OLD, M_IP_STICKY, M_IP_BURST, M_IP_HALF, M_IP_UNT, M_IP_GARB,
    M_ECHO_W, M_LIBEV_W, M_ECHO_O, M_DRAIN_O,                             /* UDP yardsticks */
    M_U1_RET, M_U1_ROLL, M_U1_STICKY, M_U1_BURST, M_U1_UNT, M_U1_GARB,    /* node, 1 worker */
    M_U2_RET, M_U2_ROLL, M_U2_STICKY, M_U2_BURST, M_U2_UNT, M_U2_GARB,    /* node, 2 workers */
    M_OLD_RET, M_OLD_ROLL,                                                /* today's node, 1 worker */
    M_COUNT
};

typedef struct {
    bool ok;
    double per_s; /* in-process: per CPU-second; UDP: replies (open loop: datagrams) per second */
    double ns;    /* CPU per item: per HELLO, per reply, per datagram received (open loop) */
    double sigs;  /* signature checks per item, where counted */
    double p99_ms; /* paced: the 99th percentile of reply latency */
    double wall_per_s; /* in-process: per wall second (what this worker got of a core) */
} meas;

/* Totals over all rounds, to show what each path really answered. */
typedef struct {
    uint64_t n, by_type[LG_TYPES], lost, drops;
} tally;

static meas M[ROUNDS_MAX][M_COUNT];
/* The half-load phase's circumstances, per round: what it offered, and how
 * late the runner itself came to a datagram (a loaded machine's mark). */
static struct {
    double offered, p50_ms, late_ms, grants_per_flush;
} H[ROUNDS_MAX];
static tally T[M_COUNT];

/* ---- where: targets, instances, pools --------------------------------- */

enum { T_ECHO, T_DRAIN, T_LIBEV, T_A1, T_A2, T_B1, T_B2, T_OLD, T_COUNT };
enum { I_A, I_B, I_OLD, I_COUNT };
enum { P_RET, P_ROLL, P_BURST, P_HALF, P_UNT, P_GARB, P_COUNT };
enum { K_BARE_VH, K_BARE_VC, K_BARE_SIGN, K_BARE_SET, K_PLUGIN, K_PACED, K_UDP };

typedef struct {
    int m, kind, where, pool;
} phase;

/* One round runs these in order, the next one in reverse: every baseline
 * sits next to its subjects in time. A pool of fresh HELLOs is never sent
 * twice to the same instance or node (that would be a retransmit). */
static const phase phases[] = {
    {M_V_HELLO, K_BARE_VH, 0, 0},       {M_V_CRED, K_BARE_VC, 0, 0},         {M_SIGN, K_BARE_SIGN, 0, 0},
    {M_VS_HELLO, K_BARE_SET, 0, P_ROLL}, {M_VS_BURST, K_BARE_SET, 0, P_BURST},
    {M_IP_RET, K_PLUGIN, I_A, P_RET},   {M_IP_RET_OLD, K_PLUGIN, I_OLD, P_RET},
    {M_IP_ROLL, K_PLUGIN, I_A, P_ROLL}, {M_IP_ROLL_OLD, K_PLUGIN, I_OLD, P_ROLL},
    {M_IP_STICKY, K_PLUGIN, I_B, P_ROLL}, {M_IP_BURST, K_PLUGIN, I_B, P_BURST}, {M_IP_HALF, K_PACED, I_B, P_HALF},
    {M_IP_UNT, K_PLUGIN, I_A, P_UNT},   {M_IP_GARB, K_PLUGIN, I_A, P_GARB},
    {M_ECHO_W, K_UDP, T_ECHO, P_ROLL},  {M_LIBEV_W, K_UDP, T_LIBEV, P_ROLL},
    {M_ECHO_O, K_UDP, T_ECHO, P_GARB},  {M_DRAIN_O, K_UDP, T_DRAIN, P_GARB},
    {M_U1_RET, K_UDP, T_A1, P_RET},     {M_U1_ROLL, K_UDP, T_A1, P_ROLL},    {M_U1_UNT, K_UDP, T_A1, P_UNT},
    {M_U1_GARB, K_UDP, T_A1, P_GARB},   {M_U1_STICKY, K_UDP, T_B1, P_ROLL},  {M_U1_BURST, K_UDP, T_B1, P_BURST},
    {M_OLD_RET, K_UDP, T_OLD, P_RET},   {M_OLD_ROLL, K_UDP, T_OLD, P_ROLL},
    {M_U2_RET, K_UDP, T_A2, P_RET},     {M_U2_ROLL, K_UDP, T_A2, P_ROLL},    {M_U2_UNT, K_UDP, T_A2, P_UNT},
    {M_U2_GARB, K_UDP, T_A2, P_GARB},   {M_U2_STICKY, K_UDP, T_B2, P_ROLL},  {M_U2_BURST, K_UDP, T_B2, P_BURST},
};

/* ---- the table -------------------------------------------------------- */

/* R_COST: this CPU / the baseline's, goal <=; R_P99: the p99 latency in ms, goal <= */
typedef enum { R_SECTION, R_ABS, R_RATIO, R_SIGS, R_SCALE, R_COST, R_P99 } row_kind;

typedef struct {
    row_kind kind;
    const char *path;
    int subj;
    int base[3];        /* baseline: these measurements' CPU summed; -1 ends */
    const char *versus; /* what the ratio is to */
    double goal;        /* R_RATIO: ratio >= goal (0: no goal); R_SCALE: replies/s ratio >= goal */
    const char *goal_text;
} row;

static char name_vh[64], name_vc[64], name_sign[64];

#define NOB {-1, -1, -1}
#define ECHO {M_ECHO_W, -1, -1}

/* Every printed row. Memory and simulator rows live in bench_mem.c and
 * bench_sim.sh: they measure other programs and need no UDP harness. */
static const row rows[] = {
    {R_SECTION, "yardsticks, absolute (median over the rounds)", 0, NOB, NULL, 0, NULL},
    {R_ABS, name_vh, M_V_HELLO, NOB, NULL, 0, NULL},
    {R_ABS, name_vc, M_V_CRED, NOB, NULL, 0, NULL},
    {R_ABS, name_sign, M_SIGN, NOB, NULL, 0, NULL},
    {R_ABS, "bare verify + sign, the sticky row's HELLOs", M_VS_HELLO, NOB, NULL, 0, NULL},
    {R_ABS, "bare 2 verify + sign, the burst row's", M_VS_BURST, NOB, NULL, 0, NULL},
    {R_ABS, "UDP echo, windowed (recvmmsg/sendmmsg)", M_ECHO_W, NOB, NULL, 0, NULL},
    {R_RATIO, "libev alone (the node's loop, no plugin)", M_LIBEV_W, ECHO, "echo", 0, "~0.94 (yardstick)"},
    {R_ABS, "UDP echo, open loop", M_ECHO_O, NOB, NULL, 0, NULL},
    {R_ABS, "drain-only receiver, open loop", M_DRAIN_O, NOB, NULL, 0, NULL},

    {R_SECTION, "in-process, 1 worker: HELLOs per CPU-second; ratio = baseline CPU / this CPU", 0, NOB, NULL, 0, NULL},
    {R_SIGS, "returning -> WAIT: signature checks", M_IP_RET, NOB, "per HELLO", 0, "0"},
    {R_RATIO, "returning -> WAIT (targeted, not selected)", M_IP_RET, {M_IP_RET_OLD, -1, -1}, "main 19404ac", 0, NULL},
    {R_RATIO, "sticky re-offer -> HINT, 100k peers", M_IP_STICKY, {M_VS_HELLO, -1, -1}, "bare, same HELLOs",
     0.95, ">= 0.95"},
    {R_RATIO, "sticky re-offer -> HINT, 100k peers", M_IP_STICKY, {M_V_HELLO, M_SIGN, -1}, "bare, one HELLO", 0,
     NULL},
    {R_RATIO, "new grant -> HINT (new-user burst)", M_IP_BURST, {M_VS_BURST, -1, -1}, "bare, same HELLOs", 0.97,
     ">= 0.97"},
    {R_RATIO, "new grant -> HINT (new-user burst)", M_IP_BURST, {M_V_CRED, M_V_HELLO, M_SIGN}, "bare, one HELLO", 0,
     NULL},
    {R_RATIO, "rollout mix, 100k peers, credentials cached", M_IP_ROLL, {M_IP_ROLL_OLD, -1, -1}, "main 19404ac", 20,
     ">= 20"},
    {R_ABS, "untargeted -> WAIT", M_IP_UNT, NOB, "none: absolute", 0, NULL},
    {R_ABS, "garbage -> drop", M_IP_GARB, NOB, "none: absolute", 0, NULL},

    {R_SECTION, "group commit, in-process, 1 worker: new grants at saturation (above) and at half load (Poisson "
                "arrivals at half the saturation rate, flush when none is due, as a host reading one datagram per "
                "wake-up)", 0, NOB, NULL, 0, NULL},
    {R_COST, "new grant: CPU at half load / at saturation", M_IP_HALF, {M_IP_BURST, -1, -1}, "saturation, same run",
     1.10, "<= 1.10"},
    {R_P99, "new grant: p99 reply latency at half load", M_IP_HALF, NOB, "arrival to send", 2.0, "<= 2 ms"},

    {R_SECTION, "upgate-node over UDP, 1 worker: replies per second; ratio = echo CPU per datagram / node CPU per reply",
     0, NOB, NULL, 0, NULL},
    {R_SIGS, "returning -> WAIT: signature checks", M_U1_RET, NOB, "per reply", 0, "0"},
    {R_RATIO, "returning -> WAIT (targeted, not selected)", M_U1_RET, ECHO, "echo", 0.5, ">= 0.5"},
    {R_RATIO, "untargeted -> WAIT", M_U1_UNT, ECHO, "echo", 0.8, ">= 0.8"},
    {R_RATIO, "garbage -> drop (per datagram, open loop)", M_U1_GARB, {M_DRAIN_O, -1, -1}, "drain (no reply)", 0.8,
     ">= 0.8"},
    {R_RATIO, "garbage -> drop (per datagram, open loop)", M_U1_GARB, {M_ECHO_O, -1, -1}, "echo, open loop", 0, NULL},
    {R_RATIO, "rollout mix, 100k peers", M_U1_ROLL, ECHO, "echo", 0, NULL},
    {R_RATIO, "rollout mix, 100k peers", M_U1_ROLL, {M_OLD_ROLL, -1, -1}, "node 19404ac", 8, ">= 8"},
    {R_RATIO, "returning -> WAIT", M_U1_RET, {M_OLD_RET, -1, -1}, "node 19404ac", 0, NULL},
    {R_RATIO, "sticky re-offer -> HINT, 100k peers", M_U1_STICKY, ECHO, "echo", 0, NULL},
    {R_RATIO, "new grant -> HINT (new-user burst)", M_U1_BURST, ECHO, "echo", 0, NULL},

    {R_SECTION, "upgate-node over UDP, 2 workers (same units)", 0, NOB, NULL, 0, NULL},
    {R_SIGS, "returning -> WAIT: signature checks", M_U2_RET, NOB, "per reply", 0, "0"},
    {R_RATIO, "returning -> WAIT (targeted, not selected)", M_U2_RET, ECHO, "echo", 0, NULL},
    {R_RATIO, "untargeted -> WAIT", M_U2_UNT, ECHO, "echo", 0, NULL},
    {R_RATIO, "garbage -> drop (per datagram, open loop)", M_U2_GARB, {M_DRAIN_O, -1, -1}, "drain (no reply)", 0, NULL},
    {R_RATIO, "rollout mix, 100k peers", M_U2_ROLL, ECHO, "echo", 0, NULL},
    {R_RATIO, "sticky re-offer -> HINT, 100k peers", M_U2_STICKY, ECHO, "echo", 0, NULL},
    {R_RATIO, "new grant -> HINT (new-user burst)", M_U2_BURST, ECHO, "echo", 0, NULL},

    {R_SECTION, "2 workers vs 1: replies/s ratio, and CPU per reply 2w/1w; ok: >= 1.85x, or CPU within 5%", 0, NOB,
     NULL, 0, NULL},
    {R_SCALE, "rollout mix", M_U2_ROLL, {M_U1_ROLL, -1, -1}, "1 worker", 1.85, ">= 1.85 | 5%"},
    {R_SCALE, "returning -> WAIT", M_U2_RET, {M_U1_RET, -1, -1}, "1 worker", 1.85, ">= 1.85 | 5%"},
    {R_SCALE, "sticky re-offer", M_U2_STICKY, {M_U1_STICKY, -1, -1}, "1 worker", 1.85, ">= 1.85 | 5%"},
    {R_SCALE, "new grant (burst)", M_U2_BURST, {M_U1_BURST, -1, -1}, "1 worker", 1.85, ">= 1.85 | 5%"},
    {R_SCALE, "untargeted -> WAIT", M_U2_UNT, {M_U1_UNT, -1, -1}, "1 worker", 1.85, ">= 1.85 | 5%"},
    {R_SCALE, "garbage -> drop", M_U2_GARB, {M_U1_GARB, -1, -1}, "1 worker", 1.85, ">= 1.85 | 5%"},
};

/* ---- the run's state --------------------------------------------------- */

typedef struct {
    bench_env env;
    lg_keys keys;
    lg_creds creds;
    unsigned rounds, peers, pool;
    bool have_old, sig_counter;
    bp_lib lib_new, lib_old;
    void *inst[I_COUNT];
    bp_lib *inst_lib[I_COUNT];
    bench_proc proc[T_COUNT];
    lg_conn conn[T_COUNT];
    bool is_node[T_COUNT];
    lg_pool pools[P_COUNT];
    bare_item vh, vc, sign;
    bare_set set_hello[P_COUNT], set_cred[P_COUNT]; /* of the pools the bare-set phases name */
    uint8_t hint_sk[UG_SK_LEN];
} bench;

static unsigned env_uint(const char *name, unsigned def, unsigned min, unsigned max)
{
    const char *s = getenv(name);
    uint64_t v;
    if (!s || !*s)
        return def;
    char *end;
    v = strtoull(s, &end, 10);
    if (*end || v < min || v > max)
        bench_die("%s: not a number from %u to %u: %s", name, min, max, s);
    return (unsigned)v;
}

static double median(double *v, unsigned n)
{
    for (unsigned i = 1; i < n; i++) /* insertion sort: n <= ROUNDS_MAX */
        for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- building datagrams ---------------------------------------------- */

static void add_hello(bench *b, lg_pool *p, uint64_t uid, const char *ver)
{
    size_t clen;
    const uint8_t *cred = lg_cred(&b->creds, uid, &clen);
    if (!cred || lg_pool_add_hello(p, &b->keys, uid, cred, clen, ver, UG_DGRAM_MAX, (uint64_t)time(NULL)) != 0)
        bench_die("cannot build a HELLO for uid %llu", (unsigned long long)uid);
}

static bool selected(uint64_t uid)
{
    return lg_percent_selects(PERCENT_SALT, uid, PERCENT_BP);
}

/* Fresh HELLOs of known peers, in a scrambled order; returning: only those
 * the 1% stage does not select. */
static void build_known(bench *b, lg_pool *p, size_t n, uint64_t salt, bool returning)
{
    p->n = 0;
    for (uint64_t i = 0; p->n < n && i < 4 * (uint64_t)b->peers + n; i++) {
        uint64_t uid = lg_walk(1, b->peers, salt, i);
        if (!returning || !selected(uid))
            add_hello(b, p, uid, TARGETED);
    }
}

/* New users: uids nobody has seen, each with its own new credential. */
static void build_burst(bench *b, lg_pool *p, size_t n, uint64_t base)
{
    p->n = 0;
    uint64_t now = (uint64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        lg_creds one;
        size_t clen;
        if (lg_creds_issue(&one, &b->keys, base + i, 1, now + 86400) != 0)
            bench_die("cannot issue a credential");
        const uint8_t *cred = lg_cred(&one, base + i, &clen);
        if (lg_pool_add_hello(p, &b->keys, base + i, cred, clen, TARGETED, UG_DGRAM_MAX, now) != 0)
            bench_die("cannot build a HELLO");
        lg_creds_free(&one);
    }
}

static void build_static(bench *b)
{
    lg_pool *u = &b->pools[P_UNT], *g = &b->pools[P_GARB];
    for (uint64_t uid = 1; uid <= 4096 && uid <= b->peers; uid++) {
        add_hello(b, u, uid, UNTARGETED);
        add_hello(b, g, uid, TARGETED); /* then damaged in place */
        uint8_t h[UG_DGRAM_MAX];
        size_t len = g->len[--g->n];
        memcpy(h, g->buf + g->n * UG_DGRAM_MAX, len);
        if (lg_pool_add_garbage(g, h, len, (uint32_t)uid) != 0)
            bench_die("cannot build garbage");
    }
}

/* Writes ctx, 0x00, body to m: the bytes a signature covers. */
static size_t signed_bytes(uint8_t *m, const char *ctx, const uint8_t *body, size_t len)
{
    size_t c = strlen(ctx) + 1;
    memcpy(m, ctx, c);
    memcpy(m + c, body, len);
    return c + len;
}

/* The bytes the tracker hashes for each signature, from a real HELLO and
 * the HINT it would sign for it. */
static void build_bare(bench *b, const lg_pool *p)
{
    ug_hello h;
    ug_dgram d;
    ug_err e;
    if (ug_hello_parse(&h, &d, p->buf, p->len[0], &e) != 0)
        bench_die("a pool HELLO does not parse: %s", ug_err_name(e));
    bare_item *vh = &b->vh, *vc = &b->vc, *sg = &b->sign;
    vh->len = signed_bytes(vh->msg, UG_CTX_HELLO, d.body, d.body_len);
    memcpy(vh->sig, d.sig, UG_SIG_LEN);
    memcpy(vh->pk, b->keys.client_pk, UG_PK_LEN);
    vc->len = signed_bytes(vc->msg, UG_CTX_CRED, h.cred_obj.body, h.cred_obj.body_len);
    memcpy(vc->sig, h.cred_obj.sig, UG_SIG_LEN);
    memcpy(vc->pk, b->keys.issuer_pk, UG_PK_LEN);
    uint64_t now = (uint64_t)time(NULL);
    ug_hint_fields hf = {.uid = h.uid, .ts = now, .exp = now + 3600, .mirror = 1, .rel = b->env.manifest,
                         .rel_len = b->env.manifest_len};
    memcpy(hf.nonce, h.nonce, UG_NONCE_LEN);
    ug_kid(hf.kid, b->env.hint_pk);
    size_t blen;
    if (ug_hint_encode_body(sg->msg + sizeof UG_CTX_HINT, sizeof sg->msg - sizeof UG_CTX_HINT, &blen, &hf) != 0)
        bench_die("HINT body");
    memcpy(sg->msg, UG_CTX_HINT, sizeof UG_CTX_HINT);
    sg->len = sizeof UG_CTX_HINT + blen;
    snprintf(name_vh, sizeof name_vh, "bare verify, HELLO (%zu bytes signed)", vh->len);
    snprintf(name_vc, sizeof name_vc, "bare verify, credential (%zu bytes)", vc->len);
    snprintf(name_sign, sizeof name_sign, "bare sign, HINT (%zu bytes)", sg->len);
}

/* Copies what the plugin will verify out of pool p: each HELLO's signed
 * bytes and, when cred is not NULL, its credential's. */
static void build_set(bench *b, const lg_pool *p, bare_set *hello, bare_set *cred)
{
    bare_set *sets[2] = {hello, cred};
    const uint8_t *pks[2] = {b->keys.client_pk, b->keys.issuer_pk};
    for (int k = 0; k < 2 && sets[k]; k++) {
        bare_set *s = sets[k];
        if (!s->msg) {
            s->msg = malloc(p->cap * BARE_MSG_MAX);
            s->len = malloc(p->cap * sizeof *s->len);
            s->sig = malloc(p->cap * UG_SIG_LEN);
            if (!s->msg || !s->len || !s->sig)
                bench_die("out of memory for %zu signatures", p->cap);
        }
        memcpy(s->pk, pks[k], UG_PK_LEN);
        s->n = 0;
    }
    for (size_t i = 0; i < p->n; i++) {
        ug_hello h;
        ug_dgram d;
        ug_err e;
        if (ug_hello_parse(&h, &d, p->buf + i * UG_DGRAM_MAX, p->len[i], &e) != 0)
            bench_die("a pool HELLO does not parse: %s", ug_err_name(e));
        const char *ctx[2] = {UG_CTX_HELLO, UG_CTX_CRED};
        const uint8_t *body[2] = {d.body, h.cred_obj.body}, *sig[2] = {d.sig, h.cred_obj.sig};
        size_t blen[2] = {d.body_len, h.cred_obj.body_len};
        for (int k = 0; k < 2 && sets[k]; k++) {
            uint8_t *m = sets[k]->msg + i * BARE_MSG_MAX;
            sets[k]->len[i] = (uint16_t)signed_bytes(m, ctx[k], body[k], blen[k]);
            memcpy(sets[k]->sig + i * UG_SIG_LEN, sig[k], UG_SIG_LEN);
            sets[k]->n = i + 1;
        }
    }
}

/* ---- running phases --------------------------------------------------- */

static void count_types(tally *t, const uint64_t *by_type, uint64_t n, uint64_t lost, uint64_t drops)
{
    t->n += n, t->lost += lost, t->drops += drops;
    for (unsigned i = 0; i < LG_TYPES; i++)
        t->by_type[i] += by_type[i];
}

static void run_plugin(bench *b, const phase *ph, meas *out)
{
    void *inst = b->inst[ph->where];
    if (!inst)
        return;
    const lg_pool *p = &b->pools[ph->pool];
    bool cycle = ph->pool == P_UNT || ph->pool == P_GARB;
    bp_result r;
    double t0 = lg_now();
    bp_run(b->inst_lib[ph->where], inst, p, cycle ? UINT64_MAX : p->n, CPU_BUDGET, &r);
    double wall = lg_now() - t0;
    if (!r.n || !r.cpu_ns || wall <= 0)
        return;
    *out = (meas){.ok = true, .per_s = (double)r.n * 1e9 / (double)r.cpu_ns, .ns = (double)r.cpu_ns / (double)r.n,
                  .sigs = r.sigs_known ? (double)r.sigs / (double)r.n : NAN, .wall_per_s = (double)r.n / wall};
    count_types(&T[ph->m], r.by_type, r.n, 0, 0);
}

/* New grants at half load: Poisson arrivals at half the saturation rate
 * last measured (this round's burst phase; the last round's when this
 * round runs in reverse), each reply timed from its arrival to the moment
 * it may leave (bp_run_paced). Saturation is what the worker did per wall
 * second: per CPU-second on an idle machine, less on a busy one, where
 * half the CPU rate would be more than the worker gets a core for. */
static void run_paced(bench *b, const phase *ph, unsigned round, meas *out)
{
    void *inst = b->inst[ph->where];
    double sat = 0;
    for (int r = (int)round; r >= 0 && sat <= 0; r--)
        if (M[r][M_IP_BURST].ok)
            sat = fmin(M[r][M_IP_BURST].per_s, M[r][M_IP_BURST].wall_per_s);
    if (!inst || sat <= 0)
        return;
    bp_paced r;
    bp_run_paced(b->inst_lib[ph->where], inst, &b->pools[ph->pool], sat / 2, PACED_SECONDS, false, &r);
    if (!r.n || !r.cpu_ns || r.seconds <= 0)
        return;
    *out = (meas){.ok = true, .per_s = (double)r.n / r.seconds, .ns = (double)r.cpu_ns / (double)r.n, .sigs = NAN,
                  .p99_ms = r.p99_ms};
    H[round].offered = sat / 2;
    H[round].p50_ms = r.p50_ms;
    H[round].late_ms = r.late_ms;
    H[round].grants_per_flush = r.flushes ? (double)r.hints / (double)r.flushes : 0;
    uint64_t by_type[LG_TYPES] = {0};
    by_type[UG_TYPE_HINT] = r.hints;
    by_type[LG_OTHER] = r.n - r.hints;
    count_types(&T[ph->m], by_type, r.n, 0, 0);
}

static void run_udp(bench *b, const phase *ph, meas *out)
{
    if (!b->proc[ph->where].pid)
        return;
    const lg_pool *p = &b->pools[ph->pool];
    bool open = ph->pool == P_GARB, node = b->is_node[ph->where];
    bool cycle = open || ph->pool == P_UNT || !node; /* a yardstick does not mind old bytes */
    lg_opts o = {.window = open ? 0 : WINDOW, .seconds = UDP_SECONDS, .count = cycle ? 0 : p->n,
                 .pid = b->proc[ph->where].pid};
    if (cycle)
        o.count = UINT64_C(1) << 40;
    uint64_t sig0 = 0, sig1 = 0;
    /* the node prints only counters that are not 0: trust a missing one
     * only when the same plugin build has it in-process */
    bool sigs = node && b->sig_counter && proc_stat(&b->proc[ph->where], "signature_checks", &sig0) == 0;
    lg_result r;
    char why[256];
    if (lg_run(&b->conn[ph->where], p, &o, &r, why, sizeof why) != 0)
        bench_die("%s: %s", b->proc[ph->where].label, why);
    sigs = sigs && proc_stat(&b->proc[ph->where], "signature_checks", &sig1) == 0;
    if (!node) { /* an echo repeats our bytes: never a reply of any type */
        for (unsigned i = 1; i < LG_TYPES; i++)
            r.by_type[LG_OTHER] += r.by_type[i], r.by_type[i] = 0;
    }
    count_types(&T[ph->m], r.by_type, r.sent, r.lost, r.kernel_drops);
    uint64_t items = open ? (r.sent > r.kernel_drops ? r.sent - r.kernel_drops : 0) : r.replies;
    if (!items || !r.cpu_ok || r.seconds <= 0)
        return;
    *out = (meas){.ok = true, .per_s = (double)items / r.seconds, .ns = (double)r.cpu_ns / (double)items,
                  .sigs = sigs ? (double)(sig1 - sig0) / (double)items : NAN};
}

static void run_phase(bench *b, const phase *ph, unsigned round, meas *out)
{
    memset(out, 0, sizeof *out);
    switch (ph->kind) {
    case K_BARE_VH: *out = (meas){true, 0, bare_verify(&b->vh, BARE_BUDGET), 0, 0, 0}; break;
    case K_BARE_VC: *out = (meas){true, 0, bare_verify(&b->vc, BARE_BUDGET), 0, 0, 0}; break;
    case K_BARE_SIGN: *out = (meas){true, 0, bare_sign(&b->sign, b->hint_sk, BARE_BUDGET), 0, 0, 0}; break;
    case K_BARE_SET: {
        const bare_set *c = b->set_cred[ph->pool].n ? &b->set_cred[ph->pool] : NULL;
        *out = (meas){true, 0, bare_request_set(&b->set_hello[ph->pool], c, &b->sign, b->hint_sk, BARE_BUDGET), 0, 0, 0};
        break;
    }
    case K_PLUGIN: run_plugin(b, ph, out); break;
    case K_PACED: run_paced(b, ph, round, out); break;
    default: run_udp(b, ph, out); break;
    }
    if (ph->kind < K_PLUGIN)
        out->per_s = 1e9 / out->ns;
}

/* ---- setting up -------------------------------------------------------- */

static void open_instance(bench *b, int i, bp_lib *lib, const char *name, const char *stages)
{
    char why[1024];
    b->inst_lib[i] = lib;
    b->inst[i] = bp_create(lib, env_policy(&b->env, name, stages), why, sizeof why);
    if (!b->inst[i])
        bench_die("%s: %s", name, why);
}

static void open_target(bench *b, int t)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char addr[64], why[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", b->proc[t].port);
    if (lg_parse_target(addr, &ss, &sl, why, sizeof why) != 0 || lg_conn_open(&b->conn[t], &ss, sl, SOCKETS, why, sizeof why) != 0)
        bench_die("%s: %s", b->proc[t].label, why);
}

static const char *const ROLLOUT = "  - {name: " PERCENT_SALT ", percent: 1, quota: 10000000}\n";
static const char *const EVERYONE = "  - {name: everyone, quota: 10000000}\n";

static void start(bench *b)
{
    const char *build = getenv("UG_BUILD") ? getenv("UG_BUILD") : "build";
    const char *base = getenv("UG_BENCH_BASE") ? getenv("UG_BENCH_BASE") : "build/bench-base";
    char so_new[1024], so_old[1024], node_new[1024], node_old[1024], why[1024];
    snprintf(so_new, sizeof so_new, "%s/upgate.so", build);
    snprintf(node_new, sizeof node_new, "%s/upgate-node", build);
    snprintf(so_old, sizeof so_old, "%s/upgate.so", base);
    snprintf(node_old, sizeof node_old, "%s/upgate-node", base);
    b->have_old = access(so_old, R_OK) == 0 && access(node_old, X_OK) == 0;

    /* the yardstick servers first, while this process is still small */
    proc_server(&b->proc[T_ECHO], "echo", BS_ECHO);
    proc_server(&b->proc[T_DRAIN], "drain", BS_DRAIN);
    proc_server(&b->proc[T_LIBEV], "libev", BS_LIBEV);

    if (bp_open(&b->lib_new, so_new, why, sizeof why) != 0)
        bench_die("%s", why);
    open_instance(b, I_A, &b->lib_new, "a-inproc", ROLLOUT);
    uint64_t v;
    b->sig_counter = bp_stat(&b->lib_new, b->inst[I_A], "signature_checks", &v) == 0;
    open_instance(b, I_B, &b->lib_new, "b-inproc", EVERYONE);
    if (b->have_old && bp_open(&b->lib_old, so_old, why, sizeof why) != 0) {
        fprintf(stderr, "bench: baseline unavailable: %s\n", why);
        b->have_old = false;
    }
    if (b->have_old)
        open_instance(b, I_OLD, &b->lib_old, "old-inproc", ROLLOUT);

    proc_node(&b->proc[T_A1], &b->env, "node-a-1w", node_new, so_new, env_policy(&b->env, "a1", ROLLOUT), 1);
    proc_node(&b->proc[T_A2], &b->env, "node-a-2w", node_new, so_new, env_policy(&b->env, "a2", ROLLOUT), 2);
    proc_node(&b->proc[T_B1], &b->env, "node-b-1w", node_new, so_new, env_policy(&b->env, "b1", EVERYONE), 1);
    proc_node(&b->proc[T_B2], &b->env, "node-b-2w", node_new, so_new, env_policy(&b->env, "b2", EVERYONE), 2);
    if (b->have_old)
        proc_node(&b->proc[T_OLD], &b->env, "node-old-1w", node_old, so_old, env_policy(&b->env, "old", ROLLOUT), 1);
    for (int t = 0; t < T_COUNT; t++) {
        b->is_node[t] = t >= T_A1;
        if (b->proc[t].pid)
            open_target(b, t);
    }
}

/* One target's share of a warm-up chunk: a node (t < T_COUNT) over UDP,
 * or an in-process instance (t - T_COUNT). */
typedef struct {
    bench *b;
    int t;
    const lg_pool *p;
    tally got;
    char why[256];
    int rc;
} warm_job;

static void *warm_one(void *arg)
{
    warm_job *j = arg;
    if (j->t >= T_COUNT) {
        int i = j->t - T_COUNT;
        bp_result r;
        bp_run(j->b->inst_lib[i], j->b->inst[i], j->p, j->p->n, 0, &r);
        count_types(&j->got, r.by_type, r.n, 0, 0);
        return NULL;
    }
    lg_opts o = {.window = WINDOW, .lost_after = 10}; /* five busy nodes share two cores */
    lg_result r;
    j->rc = lg_run(&j->b->conn[j->t], j->p, &o, &r, j->why, sizeof j->why);
    count_types(&j->got, r.by_type, r.sent, r.lost, r.kernel_drops);
    return NULL;
}

/* Every peer's first HELLO, unmeasured: the credential caches fill and the
 * rollout grants its 1% (the sticky policy grants all). Each node and
 * instance takes it from its own thread (they share nothing), so the
 * warm-up costs the sum of their CPU over the cores. Today's main gets only
 * the 1%: its cache holds 4096 credentials, so 100k peers would leave it
 * as cold as no warm-up does. */
static void warm(bench *b)
{
    enum { CHUNK = 8192, JOBS = T_COUNT + I_COUNT };
    lg_pool chunk, sel;
    if (lg_pool_init(&chunk, CHUNK) != 0 || lg_pool_init(&sel, CHUNK) != 0)
        bench_die("out of memory");
    tally w[JOBS];
    memset(w, 0, sizeof w);
    double t0 = lg_now();
    for (uint64_t first = 1; first <= b->peers; first += CHUNK) {
        chunk.n = sel.n = 0;
        for (uint64_t uid = first; uid < first + CHUNK && uid <= b->peers; uid++) {
            add_hello(b, &chunk, uid, TARGETED);
            if (selected(uid))
                add_hello(b, &sel, uid, TARGETED);
        }
        warm_job jobs[JOBS];
        pthread_t th[JOBS];
        bool run[JOBS], started[JOBS];
        for (int j = T_A1; j < JOBS; j++) {
            bool old = j == T_OLD || j == T_COUNT + I_OLD;
            jobs[j] = (warm_job){.b = b, .t = j, .p = old ? &sel : &chunk};
            run[j] = jobs[j].p->n && (j < T_COUNT ? b->proc[j].pid != 0 : b->inst[j - T_COUNT] != NULL);
            started[j] = run[j] && pthread_create(&th[j], NULL, warm_one, &jobs[j]) == 0;
            if (run[j] && !started[j])
                warm_one(&jobs[j]);
        }
        for (int j = T_A1; j < JOBS; j++) {
            if (started[j])
                pthread_join(th[j], NULL);
            if (run[j] && j < T_COUNT && jobs[j].rc != 0)
                bench_die("warm-up %s: %s", b->proc[j].label, jobs[j].why);
            if (run[j])
                count_types(&w[j], jobs[j].got.by_type, jobs[j].got.n, jobs[j].got.lost, jobs[j].got.drops);
        }
    }
    printf("warm-up: %u peers (today's main: the %llu its 1%% stage selects) in %.1f s\n", b->peers,
           (unsigned long long)w[T_COUNT + I_OLD].n, lg_now() - t0);
    static const char *const names[JOBS] = {
        [T_A1] = "node a 1w", [T_A2] = "node a 2w", [T_B1] = "node b 1w", [T_B2] = "node b 2w",
        [T_OLD] = "today's node", [T_COUNT + I_A] = "in-process a", [T_COUNT + I_B] = "in-process b",
        [T_COUNT + I_OLD] = "in-process today"};
    for (int i = T_A1; i < JOBS; i++)
        if (w[i].n)
            printf("  %-17s %7llu sent: %7llu HINT, %7llu WAIT, %llu other, %llu lost\n", names[i],
                   (unsigned long long)w[i].n, (unsigned long long)w[i].by_type[UG_TYPE_HINT],
                   (unsigned long long)w[i].by_type[UG_TYPE_WAIT],
                   (unsigned long long)(w[i].by_type[LG_OTHER] + w[i].by_type[UG_TYPE_COOKIE]),
                   (unsigned long long)w[i].lost);
    lg_pool_free(&chunk);
    lg_pool_free(&sel);
}

static void run_round(bench *b, unsigned r)
{
    double t0 = lg_now();
    build_known(b, &b->pools[P_RET], b->pool, 1000 + 2 * r, true);
    build_known(b, &b->pools[P_ROLL], b->pool, 1001 + 2 * r, false);
    build_burst(b, &b->pools[P_BURST], b->pool / 4, (UINT64_C(1) << 40) + (uint64_t)r * LG_POOL_MAX);
    build_burst(b, &b->pools[P_HALF], b->pool / 4, (UINT64_C(1) << 41) + (uint64_t)r * LG_POOL_MAX);
    if (r == 0)
        build_bare(b, &b->pools[P_ROLL]);
    build_set(b, &b->pools[P_ROLL], &b->set_hello[P_ROLL], NULL);
    build_set(b, &b->pools[P_BURST], &b->set_hello[P_BURST], &b->set_cred[P_BURST]);
    size_t n = sizeof phases / sizeof phases[0];
    for (size_t i = 0; i < n; i++) {
        const phase *ph = &phases[r % 2 ? n - 1 - i : i];
        run_phase(b, ph, r, &M[r][ph->m]);
    }
    printf("round %u/%u: %.1f s\n", r + 1, b->rounds, lg_now() - t0);
    fflush(stdout);
}

/* ---- printing ---------------------------------------------------------- */

static void fmt_rate(char *out, size_t cap, double v)
{
    if (v >= 1e6)
        snprintf(out, cap, "%.2fM/s", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, cap, "%.1fk/s", v / 1e3);
    else
        snprintf(out, cap, "%.0f/s", v);
}

static void fmt_ns(char *out, size_t cap, double ns)
{
    if (ns >= 1e4)
        snprintf(out, cap, "%.1f us", ns / 1e3);
    else if (ns >= 1e3)
        snprintf(out, cap, "%.2f us", ns / 1e3);
    else
        snprintf(out, cap, "%.0f ns", ns);
}

/* Median over the rounds of f(round); false when no round had both sides. */
typedef bool (*per_round)(const row *w, unsigned r, double *v);

static bool med(const row *w, unsigned rounds, per_round f, double *out)
{
    double v[ROUNDS_MAX];
    unsigned n = 0;
    for (unsigned r = 0; r < rounds; r++)
        if (f(w, r, &v[n]))
            n++;
    if (!n)
        return false;
    *out = median(v, n);
    return true;
}

static bool subj_rate(const row *w, unsigned r, double *v)
{
    *v = M[r][w->subj].per_s;
    return M[r][w->subj].ok;
}

static bool subj_ns(const row *w, unsigned r, double *v)
{
    *v = M[r][w->subj].ns;
    return M[r][w->subj].ok;
}

static bool subj_sigs(const row *w, unsigned r, double *v)
{
    *v = M[r][w->subj].sigs;
    return M[r][w->subj].ok && !isnan(*v);
}

static bool cpu_ratio(const row *w, unsigned r, double *v)
{
    double base = 0;
    for (int i = 0; i < 3 && w->base[i] >= 0; i++) {
        if (!M[r][w->base[i]].ok)
            return false;
        base += M[r][w->base[i]].ns;
    }
    *v = base / M[r][w->subj].ns;
    return M[r][w->subj].ok;
}

static bool rate_ratio(const row *w, unsigned r, double *v)
{
    *v = M[r][w->subj].per_s / M[r][w->base[0]].per_s;
    return M[r][w->subj].ok && M[r][w->base[0]].ok;
}

static bool ns_ratio(const row *w, unsigned r, double *v)
{
    *v = M[r][w->subj].ns / M[r][w->base[0]].ns;
    return M[r][w->subj].ok && M[r][w->base[0]].ok;
}

/* A half-load round counts only if the runner kept up (served at least
 * 90% of the rate offered): one that fell behind measured a saturated
 * worker on a busy machine, not half load. */
static bool half_kept_up(unsigned r)
{
    return M[r][M_IP_HALF].ok && M[r][M_IP_HALF].per_s >= 0.9 * H[r].offered;
}

static bool half_cost(const row *w, unsigned r, double *v)
{
    return half_kept_up(r) && ns_ratio(w, r, v);
}

static bool subj_p99(const row *w, unsigned r, double *v)
{
    *v = M[r][w->subj].p99_ms;
    return half_kept_up(r);
}

static bool base_ns(const row *w, unsigned r, double *v)
{
    *v = M[r][w->base[0]].ns;
    return M[r][w->base[0]].ok;
}

/* The yardstick's name; against today's main, with its own CPU per
 * request beside ours, so that a reader sees which side moved. */
static void fmt_versus(char *out, size_t cap, const row *w, unsigned rounds)
{
    double x;
    char each[32];
    snprintf(out, cap, "%s", w->versus ? w->versus : "");
    int b0 = w->base[0];
    bool old = b0 == M_IP_RET_OLD || b0 == M_IP_ROLL_OLD || b0 == M_OLD_RET || b0 == M_OLD_ROLL;
    if (old && med(w, rounds, base_ns, &x)) {
        fmt_ns(each, sizeof each, x);
        snprintf(out, cap, "%s, %s", w->versus, each);
    }
}

static void print_row(const row *w, const bench *b)
{
    char rate[32] = "", each[32] = "", ratio[32] = "", verdict[32] = "";
    double x, y;
    char versus[64];
    fmt_versus(versus, sizeof versus, w, b->rounds);
    if (w->kind == R_SECTION) {
        printf("\n%s\n", w->path);
        return;
    }
    if (med(w, b->rounds, subj_rate, &x))
        fmt_rate(rate, sizeof rate, x);
    if (med(w, b->rounds, subj_ns, &x))
        fmt_ns(each, sizeof each, x);
    switch (w->kind) {
    case R_SIGS:
        if (med(w, b->rounds, subj_sigs, &x)) {
            double most = 0; /* "0 signature checks" holds only if no round made one */
            for (unsigned r = 0; r < b->rounds; r++)
                if (subj_sigs(w, r, &y) && y > most)
                    most = y;
            snprintf(ratio, sizeof ratio, "%.2f", x);
            snprintf(verdict, sizeof verdict, "%s", most == 0 ? "ok" : "MISS");
        } else {
            snprintf(verdict, sizeof verdict, "signature_checks unavailable");
        }
        rate[0] = each[0] = 0;
        break;
    case R_RATIO:
        if (med(w, b->rounds, cpu_ratio, &x)) {
            snprintf(ratio, sizeof ratio, "%.2fx", x);
            if (w->goal > 0)
                snprintf(verdict, sizeof verdict, "%s", x >= w->goal ? "ok" : "MISS");
        } else {
            snprintf(ratio, sizeof ratio, "-");
            snprintf(verdict, sizeof verdict, "%s", "baseline unavailable");
        }
        break;
    case R_COST:
        if (med(w, b->rounds, half_cost, &x)) {
            snprintf(ratio, sizeof ratio, "%.2fx", x);
            snprintf(verdict, sizeof verdict, "%s", x <= w->goal ? "ok" : "MISS");
        } else {
            snprintf(verdict, sizeof verdict, "void: runner fell behind");
        }
        break;
    case R_P99:
        if (med(w, b->rounds, subj_p99, &x)) {
            snprintf(each, sizeof each, "%.2f ms", x);
            snprintf(verdict, sizeof verdict, "%s", x <= w->goal ? "ok" : "MISS");
        } else {
            each[0] = 0;
            snprintf(verdict, sizeof verdict, "void: runner fell behind");
        }
        break;
    case R_SCALE:
        if (med(w, b->rounds, rate_ratio, &x) && med(w, b->rounds, ns_ratio, &y)) {
            snprintf(ratio, sizeof ratio, "%.2fx", x);
            snprintf(verdict, sizeof verdict, "%s (CPU %.2fx)", x >= w->goal || y <= 1.05 ? "ok" : "MISS", y);
        }
        break;
    default:
        break;
    }
    printf("  %-44s | %10s | %9s | %8s | %-24s | %-17s | %s\n", w->path, rate, each, ratio, versus,
           w->goal_text ? w->goal_text : "", verdict);
}

/* Under the half-load rows: the rate offered and served, the median
 * latency, the runner's own lateness and the grants per flush (medians
 * over the rounds). A p99 far above 2 ms with a lateness as large says
 * the machine, not the commit, kept the replies. */
static void print_half(unsigned rounds)
{
    double v[5][ROUNDS_MAX];
    unsigned n = 0, kept = 0;
    for (unsigned r = 0; r < rounds; r++)
        if (M[r][M_IP_HALF].ok) {
            v[0][n] = H[r].offered, v[1][n] = M[r][M_IP_HALF].per_s, v[2][n] = H[r].p50_ms;
            v[3][n] = H[r].late_ms, v[4][n] = H[r].grants_per_flush;
            n++, kept += half_kept_up(r);
        }
    if (n)
        printf("    (half load: offered %.0f/s, served %.0f/s, p50 latency %.2f ms, runner lateness p99 %.2f ms, %.1f "
               "grants per flush; medians of %u rounds, %u of which kept up and count)\n",
               median(v[0], n), median(v[1], n), median(v[2], n), median(v[3], n), median(v[4], n), n, kept);
}

/* What each measured path answered, over every round: proof that the
 * row measured the path it names. */
static void print_tally(void)
{
    static const char *const names[M_COUNT] = {
        [M_IP_RET] = "in-process returning", [M_IP_RET_OLD] = "in-process returning, today",
        [M_IP_ROLL] = "in-process rollout", [M_IP_ROLL_OLD] = "in-process rollout, today",
        [M_IP_STICKY] = "in-process sticky", [M_IP_BURST] = "in-process burst", [M_IP_HALF] = "in-process half load",
        [M_IP_UNT] = "in-process untargeted", [M_IP_GARB] = "in-process garbage",
        [M_ECHO_W] = "echo, windowed", [M_LIBEV_W] = "libev, windowed", [M_ECHO_O] = "echo, open loop",
        [M_DRAIN_O] = "drain, open loop", [M_U1_RET] = "1w returning", [M_U1_ROLL] = "1w rollout",
        [M_U1_STICKY] = "1w sticky", [M_U1_BURST] = "1w burst", [M_U1_UNT] = "1w untargeted",
        [M_U1_GARB] = "1w garbage", [M_U2_RET] = "2w returning", [M_U2_ROLL] = "2w rollout",
        [M_U2_STICKY] = "2w sticky", [M_U2_BURST] = "2w burst", [M_U2_UNT] = "2w untargeted",
        [M_U2_GARB] = "2w garbage", [M_OLD_RET] = "today's node returning", [M_OLD_ROLL] = "today's node rollout",
    };
    printf("\nwhat each path answered, all rounds (sent: HINT / WAIT / COOKIE / echoed or other; lost; kernel drops)\n");
    for (int m = 0; m < M_COUNT; m++) {
        const tally *t = &T[m];
        if (!names[m] || !t->n)
            continue;
        printf("  %-28s %9llu: %8llu / %8llu / %llu / %llu; %llu; %llu\n", names[m], (unsigned long long)t->n,
               (unsigned long long)t->by_type[UG_TYPE_HINT], (unsigned long long)t->by_type[UG_TYPE_WAIT],
               (unsigned long long)t->by_type[UG_TYPE_COOKIE],
               (unsigned long long)(t->by_type[LG_OTHER] + t->by_type[UG_TYPE_HELLO] + t->by_type[UG_TYPE_REPORT]),
               (unsigned long long)t->lost, (unsigned long long)t->drops);
    }
}

/* UG_BENCH_ONLY=what: true, with this tree's plugin opened, when that
 * part alone is asked for (no servers). */
static bool only(bench *b, const char *what)
{
    const char *o = getenv("UG_BENCH_ONLY"), *build = getenv("UG_BUILD") ? getenv("UG_BUILD") : "build";
    char so[1024], why[1024];
    if (!o || strcmp(o, what) != 0)
        return false;
    snprintf(so, sizeof so, "%s/upgate.so", build);
    if (bp_open(&b->lib_new, so, why, sizeof why) != 0)
        bench_die("%s", why);
    return true;
}

/* UG_BENCH_ONLY=report-flood: that row alone (bench_reports.c). */
static bool only_report_flood(bench *b)
{
    if (!only(b, "report-flood"))
        return false;
    bench_stamp("upgate bench (report-flood row only)");
    bench_report_flood(&b->env, &b->lib_new, &b->keys, &b->creds);
    return true;
}

/* Microseconds this process spent in the kernel between two getrusage()s. */
static double kernel_us(const struct rusage *u0, const struct rusage *u1)
{
    return (double)(u1->ru_stime.tv_sec - u0->ru_stime.tv_sec) * 1e6 + (double)(u1->ru_stime.tv_usec - u0->ru_stime.tv_usec);
}

/* UG_BENCH_ONLY=burst: the in-process new-grant phase alone, rounds times
 * a fresh pool, for a profiler (perf record build/bench). */
static bool only_burst(bench *b)
{
    if (!only(b, "burst"))
        return false;
    open_instance(b, I_B, &b->lib_new, "b-inproc", EVERYONE);
    bench_stamp("upgate bench (new-grant phase only)");
    for (unsigned r = 0; r < b->rounds; r++) {
        build_burst(b, &b->pools[P_BURST], b->pool / 4, (UINT64_C(1) << 40) + (uint64_t)r * LG_POOL_MAX);
        bp_result res;
        struct rusage u0, u1;
        getrusage(RUSAGE_SELF, &u0);
        bp_run(&b->lib_new, b->inst[I_B], &b->pools[P_BURST], b->pools[P_BURST].n, 0, &res);
        getrusage(RUSAGE_SELF, &u1);
        double sys = kernel_us(&u0, &u1);
        printf("round %u: %llu new grants, %.1f us of CPU each (%.2f us in the kernel, %ld page faults), %llu HINT\n",
               r + 1, (unsigned long long)res.n, res.n ? (double)res.cpu_ns / 1e3 / (double)res.n : 0,
               res.n ? sys / (double)res.n : 0, u1.ru_minflt - u0.ru_minflt, (unsigned long long)res.by_type[UG_TYPE_HINT]);
    }
    b->lib_new.api->destroy(b->inst[I_B]);
    return true;
}

/* UG_BENCH_ONLY=sticky: the in-process sticky re-offer phase alone, after
 * the in-process warm-up, rounds times over a whole pool: CPU, signature checks and
 * credential cache hits per HINT (the cache's hit rate at b->peers). */
static bool only_sticky(bench *b)
{
    if (!only(b, "sticky"))
        return false;
    open_instance(b, I_B, &b->lib_new, "b-inproc", EVERYONE);
    bench_stamp("upgate bench (in-process sticky re-offer phase only)");
    warm(b);
    for (unsigned r = 0; r < b->rounds; r++) {
        build_known(b, &b->pools[P_ROLL], b->pool, 1001 + 2 * r, false);
        uint64_t h0 = 0, h1 = 0;
        bp_result res;
        bool hits = bp_stat(&b->lib_new, b->inst[I_B], "credential_cache_hits", &h0) == 0;
        bp_run(&b->lib_new, b->inst[I_B], &b->pools[P_ROLL], b->pools[P_ROLL].n, 0, &res); /* the whole pool */
        hits = hits && bp_stat(&b->lib_new, b->inst[I_B], "credential_cache_hits", &h1) == 0;
        double n = res.n ? (double)res.n : 1;
        printf("round %u: %llu re-offers, %.2f us of CPU each, %.4f signature checks each, %llu credentials "
               "from the cache (%.4f), %llu HINT\n",
               r + 1, (unsigned long long)res.n, (double)res.cpu_ns / 1e3 / n, res.sigs_known ? (double)res.sigs / n : NAN,
               (unsigned long long)(h1 - h0), hits ? (double)(h1 - h0) / n : NAN,
               (unsigned long long)res.by_type[UG_TYPE_HINT]);
    }
    b->lib_new.api->destroy(b->inst[I_B]);
    return true;
}

/* UG_BENCH_ONLY=half: per round, new grants at saturation, then at half
 * that rate with the CPU split (handle2, flush, the runner's own: sleeps,
 * clocks) and once without the split (its clock reads cost CPU too). */
static bool only_half(bench *b)
{
    if (!only(b, "half"))
        return false;
    open_instance(b, I_B, &b->lib_new, "b-inproc", EVERYONE);
    bench_stamp("upgate bench (new grants at saturation and half load only)");
    for (unsigned r = 0; r < b->rounds; r++) {
        uint64_t base = (UINT64_C(1) << 40) + (uint64_t)r * LG_POOL_MAX * 3;
        build_burst(b, &b->pools[P_BURST], b->pool / 4, base);
        bp_result s;
        double t0 = lg_now();
        bp_run(&b->lib_new, b->inst[I_B], &b->pools[P_BURST], b->pools[P_BURST].n, 0, &s);
        double sat_ns = (double)s.cpu_ns / (double)s.n, rate = fmin(1e9 / sat_ns, (double)s.n / (lg_now() - t0)) / 2;
        printf("round %u: saturation %.1f us/grant (flush %.1f us each, %.1f grants each); half load (%.0f/s):\n", r + 1,
               sat_ns / 1e3, (double)s.flush_ns / 1e3 / (double)s.flushes, (double)s.n / (double)s.flushes, rate);
        for (int d = 1; d >= 0; d--) {
            build_burst(b, &b->pools[P_HALF], b->pool / 4, base + LG_POOL_MAX * (2 - (uint64_t)d));
            bp_paced h;
            struct rusage u0, u1;
            getrusage(RUSAGE_SELF, &u0);
            bp_run_paced(&b->lib_new, b->inst[I_B], &b->pools[P_HALF], rate, PACED_SECONDS, d, &h);
            getrusage(RUSAGE_SELF, &u1);
            double n = h.n ? (double)h.n : 1;
            double sys = kernel_us(&u0, &u1);
            printf("  %s %.1f us/grant (%.2fx; %.1f in the kernel)", d ? "split:" : "plain:", (double)h.cpu_ns / 1e3 / n,
                   (double)h.cpu_ns / n / sat_ns, sys / n);
            if (d)
                printf(" handle2 %.1f, flush %.1f (%.1f each), runner %.1f;", (double)h.handle_ns / 1e3 / n,
                       (double)h.flush_ns / 1e3 / n, (double)h.flush_ns / 1e3 / (double)(h.flushes ? h.flushes : 1), (double)(h.cpu_ns - h.handle_ns - h.flush_ns) / 1e3 / n);
            printf(" %.2f grants/flush, %.2f switches/grant, p50 %.2f ms p99 %.2f ms\n",
                   h.flushes ? (double)h.hints / (double)h.flushes : 0,
                   (double)(u1.ru_nvcsw - u0.ru_nvcsw + u1.ru_nivcsw - u0.ru_nivcsw) / n, h.p50_ms, h.p99_ms);
        }
    }
    b->lib_new.api->destroy(b->inst[I_B]);
    return true;
}

int main(void)
{
    static bench b;
    if (sodium_init() < 0)
        bench_die("libsodium failed to initialise");
    b.rounds = env_uint("UG_BENCH_ROUNDS", 5, 1, ROUNDS_MAX);
    b.peers = env_uint("UG_BENCH_PEERS", 100000, 5000, LG_PEERS_MAX);
    b.pool = env_uint("UG_BENCH_POOL", 40000, 1000, LG_POOL_MAX);
    char load0[128], load1[128], why[512];
    bench_loadavg(load0, sizeof load0);
    double t0 = lg_now();
    env_init(&b.env);
    memcpy(b.hint_sk, b.env.hint_sk, UG_SK_LEN);
    if (lg_keys_load(&b.keys, b.env.dir, why, sizeof why) != 0)
        bench_die("%s", why);
    if (lg_creds_issue(&b.creds, &b.keys, 1, b.peers, (uint64_t)time(NULL) + 86400) != 0)
        bench_die("cannot issue %u credentials", b.peers);
    if (only_report_flood(&b))
        return 0;
    for (int p = 0; p < P_COUNT; p++)
        if (lg_pool_init(&b.pools[p], p == P_UNT || p == P_GARB ? 4096 : b.pool) != 0)
            bench_die("out of memory");
    if (only_burst(&b) || only_sticky(&b) || only_half(&b))
        return 0;
    start(&b);
    bench_stamp("upgate bench");
    printf("upgate bench: %u rounds, %u peers, %u fresh 1232-byte HELLOs per pool and round, %d sockets x %d in "
           "flight, %ld cores, load %s\n",
           b.rounds, b.peers, b.pool, SOCKETS, WINDOW, sysconf(_SC_NPROCESSORS_ONLN), load0);
    printf("today's main: %s\n", b.have_old ? "19404ac, built in bench-base/ (plugin in-process, node and plugin over UDP)"
                                            : "baseline unavailable (no git history, or it did not build)");
    fflush(stdout);
    build_static(&b);
    warm(&b);
    fflush(stdout);
    for (unsigned r = 0; r < b.rounds; r++)
        run_round(&b, r);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        print_row(&rows[i], &b);
        if (rows[i].kind == R_P99)
            print_half(b.rounds);
    }
    print_tally();
    bench_report_flood(&b.env, &b.lib_new, &b.keys, &b.creds);
    for (int t = 0; t < T_COUNT; t++) {
        lg_conn_close(&b.conn[t]);
        proc_stop(&b.proc[t]);
    }
    for (int i = 0; i < I_COUNT; i++)
        if (b.inst[i])
            b.inst_lib[i]->api->destroy(b.inst[i]);
    bench_loadavg(load1, sizeof load1);
    printf("\n%.0f s in all; load %s at the start, %s at the end\n", lg_now() - t0, load0, load1);
    for (int p = 0; p < P_COUNT; p++) {
        lg_pool_free(&b.pools[p]);
        bare_set_free(&b.set_hello[p]);
        bare_set_free(&b.set_cred[p]);
    }
    lg_creds_free(&b.creds);
    lg_keys_free(&b.keys);
    sodium_memzero(b.hint_sk, sizeof b.hint_sk);
    return 0;
}
