/* upgate-load: a loopback load generator for upgate-node (and make bench). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <sodium.h>

#include "common.h"
#include "loadgen.h"

static const char usage[] =
    "usage: upgate-load --target HOST:PORT --mix MIX --keys DIR [options]\n"
    "\n"
    "Sends pre-built upgate datagrams to a tracker on loopback and counts the replies by type.\n"
    "Everything is signed before the clock starts; datagrams go out with sendmmsg from many\n"
    "sockets, each with a window of datagrams in flight, and replies come back with recvmmsg.\n"
    "\n"
    "  --target HOST:PORT  the tracker: a numeric 127.0.0.0/8 or [::1] address, nothing else\n"
    "  --mix MIX           rollout     returning peers (fresh HELLOs of --peers known uids at --ver);\n"
    "                                  a 1% rollout answers most with WAIT and some with HINT\n"
    "                      returning   the same, less the uids a percent stage salted --salt at\n"
    "                                  --percent would select: all WAIT (targeted, not selected)\n"
    "                      sticky      the same traffic as rollout, for a policy that granted them all\n"
    "                      burst       new users: every HELLO a new uid with a new credential\n"
    "                      untargeted  HELLOs at an untargeted --ver (default 0.9), cycled\n"
    "                      garbage     datagrams with the upgate prefix the decoder refuses, cycled,\n"
    "                                  sent open loop (nothing answers them, so no window)\n"
    "  --keys DIR          DIR/issuer.key issues the credentials, DIR/client.key signs the HELLOs\n"
    "  --peers N           distinct uids (default 100000, at most 1000000)\n"
    "  --uid-base N        the first uid (default 1; burst: a random one above 2^40)\n"
    "  --ver V             the version the peers run (default 1.4.0; untargeted 0.9)\n"
    "  --salt S            returning: the percent stage's salt (default one-percent)\n"
    "  --percent P         returning: its percent in hundredths (default 100, i.e. 1%)\n"
    "  --size BYTES        HELLO size, 512..1232 (default 1232)\n"
    "  --warm              first send each peer's HELLO once and await the replies, unmeasured\n"
    "                      (fills the tracker's credential cache; makes sticky grants)\n"
    "  --count N           datagrams measured, at most; fresh-HELLO mixes pre-build them all\n"
    "                      (default 50000, at most 262144); untargeted and garbage cycle 4096\n"
    "                      (default: as many as --seconds allows)\n"
    "  --seconds S         stop sending after S seconds (default 5, at most 600)\n"
    "  --sockets K         source sockets (default 32, at most 256); a peer always sends from the\n"
    "                      same one, as from a stable source port\n"
    "  --window W          datagrams in flight per socket (default 8, at most 256)\n"
    "  --pid PID           the tracker's process: its CPU per reply, from /proc/PID/task/*/schedstat\n"
    "  --json              print one JSON object instead of the line\n"
    "\n"
    "Exit 0 when replies (or, for garbage, sends) were counted, 1 when nothing answered, 2 on bad usage.\n";

typedef enum { M_ROLLOUT, M_RETURNING, M_STICKY, M_BURST, M_UNTARGETED, M_GARBAGE, M_COUNT } mix_t;
static const char *const mix_names[M_COUNT] = {"rollout", "returning", "sticky", "burst", "untargeted", "garbage"};

typedef struct {
    mix_t mix;
    const char *target, *keys, *ver, *salt;
    uint64_t peers, base, percent, size, count, seconds, sockets, window, pid;
    bool base_set, warm, json;
} opts_t;

static uint64_t number(const char *flag, const char *s, uint64_t min, uint64_t max)
{
    uint64_t v;
    if (ug_parse_u64(s, min, max, &v) != 0)
        ug_usage_error("%s: not a number from %llu to %llu: %s", flag, (unsigned long long)min,
                       (unsigned long long)max, s);
    return v;
}

static opts_t parse(int argc, char **argv)
{
    opts_t o = {.mix = M_COUNT, .salt = "one-percent", .peers = 100000, .base = 1, .percent = 100, .size = 1232,
                .seconds = 5, .sockets = 32, .window = 8};
    enum { O_TARGET = 1, O_MIX, O_KEYS, O_PEERS, O_BASE, O_VER, O_SALT, O_PERCENT, O_SIZE, O_WARM, O_COUNT,
           O_SECONDS, O_SOCKETS, O_WINDOW, O_PID, O_JSON, O_HELP };
    static const struct option opts[] = {
        {"target", required_argument, NULL, O_TARGET}, {"mix", required_argument, NULL, O_MIX},
        {"keys", required_argument, NULL, O_KEYS},     {"peers", required_argument, NULL, O_PEERS},
        {"uid-base", required_argument, NULL, O_BASE}, {"ver", required_argument, NULL, O_VER},
        {"salt", required_argument, NULL, O_SALT},     {"percent", required_argument, NULL, O_PERCENT},
        {"size", required_argument, NULL, O_SIZE},     {"warm", no_argument, NULL, O_WARM},
        {"count", required_argument, NULL, O_COUNT},   {"seconds", required_argument, NULL, O_SECONDS},
        {"sockets", required_argument, NULL, O_SOCKETS}, {"window", required_argument, NULL, O_WINDOW},
        {"pid", required_argument, NULL, O_PID},       {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, O_HELP},           {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_TARGET: o.target = optarg; break;
        case O_MIX:
            for (o.mix = 0; o.mix < M_COUNT && strcmp(optarg, mix_names[o.mix]) != 0; o.mix++)
                ;
            if (o.mix == M_COUNT)
                ug_usage_error("--mix: not rollout, returning, sticky, burst, untargeted or garbage: %s", optarg);
            break;
        case O_KEYS: o.keys = optarg; break;
        case O_PEERS: o.peers = number("--peers", optarg, 1, LG_PEERS_MAX); break;
        case O_BASE:
            o.base = number("--uid-base", optarg, 1, UG_UID_MAX - LG_PEERS_MAX - LG_POOL_MAX);
            o.base_set = true;
            break;
        case O_VER: {
            ug_version v;
            if (ug_version_parse(&v, optarg, strlen(optarg)) != 0)
                ug_usage_error("--ver: not a version: %s", optarg);
            o.ver = optarg;
            break;
        }
        case O_SALT:
            if (!*optarg || strlen(optarg) > 64)
                ug_usage_error("--salt: 1 to 64 bytes");
            o.salt = optarg;
            break;
        case O_PERCENT: o.percent = number("--percent", optarg, 0, 10000); break;
        case O_SIZE: o.size = number("--size", optarg, UG_HELLO_MIN, UG_DGRAM_MAX); break;
        case O_WARM: o.warm = true; break;
        case O_COUNT: o.count = number("--count", optarg, 1, 1000000000); break;
        case O_SECONDS: o.seconds = number("--seconds", optarg, 1, 600); break;
        case O_SOCKETS: o.sockets = number("--sockets", optarg, 1, LG_SOCKETS_MAX); break;
        case O_WINDOW: o.window = number("--window", optarg, 1, LG_WINDOW_MAX); break;
        case O_PID: o.pid = number("--pid", optarg, 1, 4194304); break;
        case O_JSON: o.json = true; break;
        case O_HELP: fputs(usage, stdout); exit(UG_EXIT_OK);
        default: ug_usage_error("unexpected or incomplete option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        ug_usage_error("unexpected argument %s", argv[optind]);
    if (!o.target || o.mix == M_COUNT || !o.keys)
        ug_usage_error("--target, --mix and --keys are required");
    if (!o.ver)
        o.ver = o.mix == M_UNTARGETED ? "0.9" : "1.4.0";
    bool fresh = o.mix != M_UNTARGETED && o.mix != M_GARBAGE;
    if (fresh && o.count > LG_POOL_MAX)
        ug_usage_error("--count: at most %u for a mix of fresh HELLOs", LG_POOL_MAX);
    if (!o.count)
        o.count = fresh ? 50000 : 0;
    return o;
}

/* Fills pool with the measured datagrams of the mix. */
static int build(const opts_t *o, const lg_keys *k, const lg_creds *cr, lg_pool *pool, uint64_t now)
{
    size_t want = o->count && o->count < LG_POOL_MAX ? (size_t)o->count : LG_POOL_MAX;
    if (o->mix == M_UNTARGETED || o->mix == M_GARBAGE)
        want = want < 4096 ? want : 4096;
    if (lg_pool_init(pool, want) != 0)
        return -1;
    uint64_t salt = now, walked = 0;
    uint32_t seed = (uint32_t)now;
    while (pool->n < want) {
        uint64_t uid = lg_walk(o->base, o->mix == M_UNTARGETED || o->mix == M_GARBAGE ? cr->n : o->peers, salt, walked++);
        if (o->mix == M_RETURNING && lg_percent_selects(o->salt, uid, (uint32_t)o->percent)) {
            if (walked > 4 * o->peers + want)
                return -1; /* the stage selects everyone: no returning peer is left */
            continue;
        }
        size_t clen;
        const uint8_t *cred = lg_cred(cr, uid, &clen);
        if (!cred)
            return -1;
        if (o->mix == M_GARBAGE) {
            uint8_t h[UG_DGRAM_MAX];
            lg_pool tmp = {.buf = h, .len = &(uint16_t){0}, .uid = &(uint64_t){0}, .cap = 1};
            if (lg_pool_add_hello(&tmp, k, uid, cred, clen, o->ver, o->size, now) != 0 ||
                lg_pool_add_garbage(pool, h, tmp.len[0], seed++) != 0)
                return -1;
        } else if (lg_pool_add_hello(pool, k, uid, cred, clen, o->ver, o->size, now) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Burst: each HELLO a uid never seen, with a credential issued for it. */
static int build_burst(const opts_t *o, const lg_keys *k, lg_pool *pool, uint64_t now)
{
    if (lg_pool_init(pool, (size_t)o->count) != 0)
        return -1;
    for (size_t i = 0; i < o->count; i++) {
        lg_creds one;
        size_t clen;
        if (lg_creds_issue(&one, k, o->base + i, 1, now + 86400) != 0)
            return -1;
        const uint8_t *cred = lg_cred(&one, o->base + i, &clen);
        int rc = lg_pool_add_hello(pool, k, o->base + i, cred, clen, o->ver, o->size, now);
        lg_creds_free(&one);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* --warm: every peer's HELLO once, in chunks, unmeasured. */
static int warm(const opts_t *o, const lg_keys *k, const lg_creds *cr, lg_conn *c, lg_result *sum, uint64_t now)
{
    enum { CHUNK = 8192 };
    lg_pool pool;
    memset(sum, 0, sizeof *sum);
    if (lg_pool_init(&pool, CHUNK) != 0)
        return -1;
    for (uint64_t first = 0; first < o->peers; first += CHUNK) {
        pool.n = 0;
        for (uint64_t i = first; i < o->peers && i < first + CHUNK; i++) {
            size_t clen;
            const uint8_t *cred = lg_cred(cr, o->base + i, &clen);
            if (lg_pool_add_hello(&pool, k, o->base + i, cred, clen, o->ver, o->size, now) != 0) {
                lg_pool_free(&pool);
                return -1;
            }
        }
        lg_result r;
        char why[256];
        lg_opts lo = {.window = (unsigned)o->window, .lost_after = 5};
        if (lg_run(c, &pool, &lo, &r, why, sizeof why) != 0) {
            lg_pool_free(&pool);
            return -1;
        }
        sum->sent += r.sent, sum->replies += r.replies, sum->lost += r.lost, sum->seconds += r.seconds;
        if (!r.replies) /* nothing answers: say so now, not after every chunk */
            break;
    }
    lg_pool_free(&pool);
    return 0;
}

static void report(const opts_t *o, const lg_result *r, const lg_result *w)
{
    double rps = r->seconds > 0 ? (double)r->replies / r->seconds : 0;
    uint64_t received = r->sent > r->kernel_drops ? r->sent - r->kernel_drops : 0;
    double per_reply = r->cpu_ok && r->replies ? (double)r->cpu_ns / 1e3 / (double)r->replies : -1;
    double per_dgram = r->cpu_ok && received ? (double)r->cpu_ns / 1e3 / (double)received : -1;
    if (o->json) {
        printf("{\"mix\":\"%s\",\"target\":\"%s\",\"sockets\":%llu,\"window\":%llu,\"sent\":%llu,\"seconds\":%.6f,"
               "\"replies\":%llu,\"replies_per_s\":%.1f,\"hint\":%llu,\"wait\":%llu,\"cookie\":%llu,\"hello\":%llu,"
               "\"other\":%llu,\"lost\":%llu,\"kernel_drops\":%llu,\"refused\":%llu",
               mix_names[o->mix], o->target, (unsigned long long)o->sockets,
               (unsigned long long)(o->mix == M_GARBAGE ? 0 : o->window), (unsigned long long)r->sent, r->seconds,
               (unsigned long long)r->replies, rps, (unsigned long long)r->by_type[UG_TYPE_HINT],
               (unsigned long long)r->by_type[UG_TYPE_WAIT], (unsigned long long)r->by_type[UG_TYPE_COOKIE],
               (unsigned long long)r->by_type[UG_TYPE_HELLO],
               (unsigned long long)(r->by_type[LG_OTHER] + r->by_type[UG_TYPE_REPORT]), (unsigned long long)r->lost,
               (unsigned long long)r->kernel_drops, (unsigned long long)r->refused);
        if (r->cpu_ok)
            printf(",\"server_cpu_s\":%.6f", (double)r->cpu_ns / 1e9);
        else
            printf(",\"server_cpu_s\":null");
        if (per_reply >= 0)
            printf(",\"cpu_per_reply_us\":%.4f", per_reply);
        else
            printf(",\"cpu_per_reply_us\":null");
        if (per_dgram >= 0)
            printf(",\"cpu_per_datagram_us\":%.4f", per_dgram);
        else
            printf(",\"cpu_per_datagram_us\":null");
        if (o->warm)
            printf(",\"warm\":{\"sent\":%llu,\"replies\":%llu,\"lost\":%llu,\"seconds\":%.3f}",
                   (unsigned long long)w->sent, (unsigned long long)w->replies, (unsigned long long)w->lost,
                   w->seconds);
        printf("}\n");
        return;
    }
    char flight[32] = "open loop";
    if (o->mix != M_GARBAGE)
        snprintf(flight, sizeof flight, "%llu in flight", (unsigned long long)o->window);
    printf("upgate-load: %s -> %s, %llu sockets, %s: %llu sent in %.3f s, %llu replies (%.0f/s: "
           "%llu hint, %llu wait, %llu cookie, %llu other), %llu lost, %llu dropped by the kernel",
           mix_names[o->mix], o->target, (unsigned long long)o->sockets, flight, (unsigned long long)r->sent, r->seconds,
           (unsigned long long)r->replies, rps, (unsigned long long)r->by_type[UG_TYPE_HINT],
           (unsigned long long)r->by_type[UG_TYPE_WAIT], (unsigned long long)r->by_type[UG_TYPE_COOKIE],
           (unsigned long long)(r->by_type[LG_OTHER] + r->by_type[UG_TYPE_HELLO] + r->by_type[UG_TYPE_REPORT]),
           (unsigned long long)r->lost, (unsigned long long)r->kernel_drops);
    if (r->cpu_ok) {
        printf("; server CPU %.3f s", (double)r->cpu_ns / 1e9);
        if (per_reply >= 0)
            printf(", %.2f us per reply", per_reply);
        if (per_dgram >= 0)
            printf(", %.2f us per datagram received", per_dgram);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-load";
    opts_t o = parse(argc, argv);
    struct sockaddr_storage to;
    socklen_t tolen;
    char why[512];
    if (lg_parse_target(o.target, &to, &tolen, why, sizeof why) != 0)
        ug_usage_error("--target %s", why);
    if (sodium_init() < 0)
        ug_die(UG_EXIT_FAIL, "libsodium failed to initialise");
    if (o.mix == M_BURST && !o.base_set) {
        o.base = (UINT64_C(1) << 40) + randombytes_uniform(1u << 30) * (uint64_t)LG_POOL_MAX;
    }
    lg_keys k;
    if (lg_keys_load(&k, o.keys, why, sizeof why) != 0)
        ug_die(UG_EXIT_FAIL, "--keys: %s", why);
    uint64_t now = ug_now();
    lg_creds cr = {0};
    size_t ncreds = o.mix == M_UNTARGETED || o.mix == M_GARBAGE ? (o.peers < 4096 ? o.peers : 4096) : o.peers;
    if (o.mix != M_BURST && lg_creds_issue(&cr, &k, o.base, ncreds, now + 86400) != 0) {
        lg_keys_free(&k);
        ug_die(UG_EXIT_FAIL, "cannot issue %zu credentials (out of memory?)", ncreds);
    }
    lg_conn c;
    if (lg_conn_open(&c, &to, tolen, (unsigned)o.sockets, why, sizeof why) != 0) {
        lg_keys_free(&k);
        ug_die(UG_EXIT_FAIL, "%s: %s", o.target, why);
    }
    lg_result w = {0}, r;
    bool warmable = o.mix == M_ROLLOUT || o.mix == M_RETURNING || o.mix == M_STICKY;
    if (o.warm && warmable && (warm(&o, &k, &cr, &c, &w, now) != 0 || !w.replies)) {
        lg_keys_free(&k);
        ug_die(UG_EXIT_FAIL, "%s: %s", o.target,
               w.sent ? "nothing answered the warm-up (is a tracker listening, with these keys?)"
                      : "the warm-up could not be sent");
    }
    lg_pool pool;
    int rc = o.mix == M_BURST ? build_burst(&o, &k, &pool, now) : build(&o, &k, &cr, &pool, now);
    lg_keys_free(&k);
    lg_creds_free(&cr);
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "cannot build the %s datagrams (out of memory, or no uid fits the mix)",
               mix_names[o.mix]);
    lg_opts lo = {.window = o.mix == M_GARBAGE ? 0 : (unsigned)o.window, .seconds = (double)o.seconds,
                  .count = o.count ? o.count : UINT64_C(1000000000), .pid = (pid_t)o.pid};
    if (lg_run(&c, &pool, &lo, &r, why, sizeof why) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", o.target, why);
    lg_pool_free(&pool);
    lg_conn_close(&c);
    report(&o, &r, &w);
    if (o.mix != M_GARBAGE && r.replies == 0) {
        fprintf(stderr, "upgate-load: %s: nothing answered%s\n", o.target,
                r.refused ? " (port unreachable: is the tracker listening?)" : "");
        return UG_EXIT_FAIL;
    }
    return UG_EXIT_OK;
}
