/* upgate-sim: forecasts what a policy will do to the download servers, by running it in the real plugin on simulated peers and a simulated clock. */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "common.h"
#include "sim.h"
#include "simsuggest.h"

static const char usage[] =
    "usage: upgate-sim --policy FILE [--policy FILE2] (--peers N | --replay CAPTURE[,CAPTURE...]) [options]\n"
    "       upgate-sim --version | --help\n"
    "\n"
    "Forecasts a rollout: runs the policy in the real plugin (decide() on claimed fields, no crypto)\n"
    "on simulated peers and a simulated clock, and prints per time step the new offers of each\n"
    "stage, the peers upgraded, the downloads in flight and each mirror's bandwidth; then the peak\n"
    "bandwidth and when it comes, when 50%, 90% and 99% of the targeted peers have upgraded, and\n"
    "when each quota is spent. A second --policy runs on the same peers, side by side.\n"
    "\n"
    "Run:\n"
    "  --plugin PATH          the plugin (default: upgate.so beside this program)\n"
    "  --start TIME           the simulated clock's start: now (default), RFC 3339 or Unix seconds;\n"
    "                         a replay starts at its first record\n"
    "  --days D               how long to simulate (default 7; a replay: its span and one step)\n"
    "  --step DURATION        one table row (default 1h; whole minutes: 15m, 1h, 1d)\n"
    "  --seed N               the population's and the peers' draws (default 1)\n"
    "Synthetic peers (--peers N, uids 1..N):\n"
    "  --versions V=W,...     the versions they run, with weights (default: the policy's exact\n"
    "                         targets, equally, when the plugin's summary names them)\n"
    "  --plat P=W,...         platforms (default: none sent)\n"
    "  --chan C=W,...         channels (default: none sent)\n"
    "  --regions R=W,...      source regions (DE, CN-BJ): addresses drawn from the GeoIP database's\n"
    "                         networks of each region\n"
    "  --networks CIDR=W,...  source networks (with --regions: one list of weights for both);\n"
    "                         default: one address outside every network\n"
    "  --geoip FILE           the GeoIP database for --regions (default: the policy's geoip)\n"
    "  --logins N             logins per peer per day on a daily curve (default: always online)\n"
    "  --session DURATION     how long a login stays online and asks again (default 1h)\n"
    "  --peak-hour H          the curve's peak, hour of the day UTC (0-23, default 20)\n"
    "Recorded peers:\n"
    "  --replay FILE[,FILE]   the HELLOs an upgate-node recorded in its capture file (FILE.1 too)\n"
    "  --time-scale X         play the capture X times as fast (default 1)\n"
    "Every peer:\n"
    "  --accept SHARE         share of offers the user accepts (default 0.9; others REPORT declined)\n"
    "  --think DURATION       mean time to the user's answer (default 1m; drawn from 0 to twice it)\n"
    "  --speed RATE[..RATE]   download speed per peer, fixed or drawn evenly (default 20Mbit)\n"
    "  --fail SHARE           share of downloads whose install fails (REPORT install_failed;\n"
    "                         the peer asks again later) (default 0.01)\n"
    "  --rollback SHARE       share of installs rolled back an hour later (default 0)\n"
    "Output:\n"
    "  --csv FILE             every series, one row per policy and step\n"
    "  --plot FILE.svg|.png   offers per stage, mirror bandwidth (the peak marked), share upgraded\n"
    "                         (.png through rsvg-convert)\n"
    "  --max-bandwidth RATE   one mirror's capacity (10Gbit, 1.25GB/s): steps over it are flagged\n"
    "  --suggest [ROLLOUT/]STAGE  with --max-bandwidth: the largest rate of STAGE, and the shortest\n"
    "                         linear ramp, that keep every mirror under it (runs the policy again)\n"
    "  --quiet                no table: the summary only\n"
    "  --bench                one line: CPU per simulated decision, against the 400 ns goal\n"
    "\n"
    "Rates: bit, kbit, Mbit, Gbit, Tbit (optionally /s) or B/s, kB/s, MB/s, GB/s (decimal SI).\n"
    "Exit 0 on success, 1 when a policy, capture or GeoIP file cannot be used, 2 on bad usage.\n";

#define BENCH_GOAL_NS 400.0

/* ---- scratch files ------------------------------------------------------------------ */

#define SCRATCH_MAX 16
static char *scratch[SCRATCH_MAX];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    (void)remove(path);
    return 0;
}

void sim_scratch_add(const char *path)
{
    for (int i = 0; i < SCRATCH_MAX; i++)
        if (!scratch[i]) {
            scratch[i] = strdup(path);
            return;
        }
}

void sim_scratch_remove(const char *path)
{
    (void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < SCRATCH_MAX; i++)
        if (scratch[i] && strcmp(scratch[i], path) == 0) {
            free(scratch[i]);
            scratch[i] = NULL;
        }
}

static void scratch_all(void)
{
    for (int i = 0; i < SCRATCH_MAX; i++)
        if (scratch[i])
            sim_scratch_remove(scratch[i]);
}

/* The first SIGINT or SIGTERM stops the run at its next simulated second
 * (and the scratch folders go at exit); a second one kills at once. */
static void on_signal(int sig)
{
    if (sim_interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    sim_interrupted = 1;
}

/* ---- flags -------------------------------------------------------------------------- */

typedef struct {
    bool days, step, versions, plat, chan, regions, networks, logins, session, peak, time_scale, speed;
    const char *regions_arg, *networks_arg;
} seen;

static void weights_arg(const char *flag, const char *arg, sim_keykind kind, sim_weights *w)
{
    char why[256];
    if (sim_parse_weights(arg, kind, w, why, sizeof why) != 0)
        ug_usage_error("%s: %s", flag, why);
}

static void add_replay(sim_opts *o, char *arg)
{
    for (char *f = arg, *next; f; f = next) {
        next = strchr(f, ',');
        if (next)
            *next++ = 0;
        if (!f[0])
            ug_usage_error("--replay: an empty file name");
        if (o->nreplay == SIM_REPLAY_FILES_MAX)
            ug_usage_error("--replay: at most %u files", SIM_REPLAY_FILES_MAX);
        o->replay[o->nreplay++] = f;
    }
}

/* One list of places: the regions first, then the networks. */
static void merge_places(sim_opts *o, const seen *s)
{
    sim_weights r = {0}, n = {0};
    if (s->regions)
        weights_arg("--regions", s->regions_arg, SIM_KEY_REGION, &r);
    if (s->networks)
        weights_arg("--networks", s->networks_arg, SIM_KEY_NETWORK, &n);
    if (r.n + n.n > SIM_WEIGHTS_MAX)
        ug_usage_error("--regions and --networks: at most %u entries together", SIM_WEIGHTS_MAX);
    o->places = r;
    o->nregions = r.n;
    for (unsigned i = 0; i < n.n; i++) {
        unsigned k = o->places.n++;
        memcpy(o->places.key[k], n.key[i], sizeof n.key[i]);
        o->places.weight[k] = n.weight[i];
        o->places.net[k] = n.net[i];
        o->places.total += n.weight[i];
    }
}

static void parse_args(int argc, char **argv, sim_opts *o)
{
    enum { O_POLICY = 1, O_PEERS, O_REPLAY, O_TIME_SCALE, O_PLUGIN, O_SEED, O_START, O_DAYS, O_STEP, O_VERSIONS,
           O_PLAT, O_CHAN, O_REGIONS, O_NETWORKS, O_GEOIP, O_LOGINS, O_SESSION, O_PEAK, O_ACCEPT, O_FAIL,
           O_ROLLBACK, O_THINK, O_SPEED, O_CSV, O_PLOT, O_MAXBW, O_SUGGEST, O_QUIET, O_BENCH, O_HELP, O_VERSION };
    static const struct option opts[] = {
        {"policy", required_argument, NULL, O_POLICY},     {"peers", required_argument, NULL, O_PEERS},
        {"replay", required_argument, NULL, O_REPLAY},     {"time-scale", required_argument, NULL, O_TIME_SCALE},
        {"plugin", required_argument, NULL, O_PLUGIN},     {"seed", required_argument, NULL, O_SEED},
        {"start", required_argument, NULL, O_START},       {"days", required_argument, NULL, O_DAYS},
        {"step", required_argument, NULL, O_STEP},         {"versions", required_argument, NULL, O_VERSIONS},
        {"plat", required_argument, NULL, O_PLAT},         {"chan", required_argument, NULL, O_CHAN},
        {"regions", required_argument, NULL, O_REGIONS},   {"networks", required_argument, NULL, O_NETWORKS},
        {"geoip", required_argument, NULL, O_GEOIP},       {"logins", required_argument, NULL, O_LOGINS},
        {"session", required_argument, NULL, O_SESSION},   {"peak-hour", required_argument, NULL, O_PEAK},
        {"accept", required_argument, NULL, O_ACCEPT},     {"fail", required_argument, NULL, O_FAIL},
        {"rollback", required_argument, NULL, O_ROLLBACK}, {"think", required_argument, NULL, O_THINK},
        {"speed", required_argument, NULL, O_SPEED},       {"csv", required_argument, NULL, O_CSV},
        {"plot", required_argument, NULL, O_PLOT},         {"max-bandwidth", required_argument, NULL, O_MAXBW},
        {"suggest", required_argument, NULL, O_SUGGEST},   {"quiet", no_argument, NULL, O_QUIET},
        {"bench", no_argument, NULL, O_BENCH},             {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},         {NULL, 0, NULL, 0},
    };
    seen s = {0};
    double d;
    uint64_t u;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_POLICY:
            if (o->npolicies == SIM_POLICIES_MAX)
                ug_usage_error("at most %u --policy", SIM_POLICIES_MAX);
            o->policy[o->npolicies++] = optarg;
            break;
        case O_PEERS:
            if (ug_parse_u64(optarg, 0, SIM_PEERS_MAX, &o->peers) != 0)
                ug_usage_error("--peers: not a number of peers up to %u: %s", SIM_PEERS_MAX, optarg);
            if (o->peers == 0)
                ug_usage_error("--peers 0: an empty population forecasts nothing");
            break;
        case O_REPLAY: add_replay(o, optarg); break;
        case O_TIME_SCALE:
            if (sim_parse_decimal(optarg, 1e-6, 1e6, &o->time_scale) != 0 || !(o->time_scale > 0))
                ug_usage_error("--time-scale: not a positive factor: %s", optarg);
            s.time_scale = true;
            break;
        case O_PLUGIN: o->plugin = optarg; break;
        case O_SEED:
            if (ug_parse_u64(optarg, 0, UINT64_MAX, &o->seed) != 0)
                ug_usage_error("--seed: not a number: %s", optarg);
            break;
        case O_START:
            if (sim_parse_when(optarg, (int64_t)ug_now() / 60 * 60, &o->start) != 0)
                ug_usage_error("--start: not now, Unix seconds or an RFC 3339 time: %s", optarg);
            o->start_given = true;
            break;
        case O_DAYS:
            if (sim_parse_decimal(optarg, 0, SIM_DAYS_MAX, &d) != 0 || d * 86400 < 60)
                ug_usage_error("--days: not a number of days from 0.001 to %u: %s", SIM_DAYS_MAX, optarg);
            o->horizon = (uint64_t)ceil(d * 86400);
            o->horizon_given = true;
            break;
        case O_STEP:
            if (sim_parse_duration(optarg, 60, SIM_DAYS_MAX * 86400u, &o->step) != 0 || o->step % 60)
                ug_usage_error("--step: not a whole number of minutes (15m, 1h, 3600): %s", optarg);
            break;
        case O_VERSIONS: weights_arg("--versions", optarg, SIM_KEY_VERSION, &o->versions), s.versions = true; break;
        case O_PLAT: weights_arg("--plat", optarg, SIM_KEY_PLAT, &o->plats), s.plat = true; break;
        case O_CHAN: weights_arg("--chan", optarg, SIM_KEY_CHAN, &o->chans), s.chan = true; break;
        case O_REGIONS: s.regions_arg = optarg, s.regions = true; break;
        case O_NETWORKS: s.networks_arg = optarg, s.networks = true; break;
        case O_GEOIP: o->geoip = optarg; break;
        case O_LOGINS:
            if (sim_parse_decimal(optarg, 0, 48, &o->logins) != 0 || !(o->logins > 0))
                ug_usage_error("--logins: not a number of logins a day from 0.01 to 48: %s", optarg);
            s.logins = true;
            break;
        case O_SESSION:
            if (sim_parse_duration(optarg, 1, 7 * 86400u, &o->session) != 0)
                ug_usage_error("--session: not a duration from 1s to 7d: %s", optarg);
            s.session = true;
            break;
        case O_PEAK:
            if (ug_parse_u64(optarg, 0, 23, &u) != 0)
                ug_usage_error("--peak-hour: not an hour from 0 to 23: %s", optarg);
            o->peak_hour = (unsigned)u, s.peak = true;
            break;
        case O_ACCEPT:
            if (sim_parse_share(optarg, &o->accept) != 0)
                ug_usage_error("--accept: not a share from 0 to 1: %s", optarg);
            break;
        case O_FAIL:
            if (sim_parse_share(optarg, &o->fail) != 0 || o->fail >= 1)
                ug_usage_error("--fail: not a share from 0 to below 1: %s", optarg);
            break;
        case O_ROLLBACK:
            if (sim_parse_share(optarg, &o->rollback) != 0)
                ug_usage_error("--rollback: not a share from 0 to 1: %s", optarg);
            break;
        case O_THINK:
            if (sim_parse_duration(optarg, 0, 86400, &o->think) != 0)
                ug_usage_error("--think: not a duration up to 1d: %s", optarg);
            break;
        case O_SPEED:
            if (sim_parse_bitrate_range(optarg, &o->speed_lo, &o->speed_hi) != 0 || o->speed_lo < 8)
                ug_usage_error("--speed: not a rate or LOW..HIGH with a unit (20Mbit, 5Mbit..50Mbit): %s", optarg);
            s.speed = true;
            break;
        case O_CSV: o->csv = optarg; break;
        case O_PLOT: o->plot = optarg; break;
        case O_MAXBW:
            if (sim_parse_bitrate(optarg, &o->max_bw) != 0)
                ug_usage_error("--max-bandwidth: not a rate with its unit (10Gbit, 1.25GB/s): %s", optarg);
            break;
        case O_SUGGEST: o->suggest = optarg; break;
        case O_QUIET: o->quiet = true; break;
        case O_BENCH: o->bench = true; break;
        case O_HELP: fputs(usage, stdout); exit(UG_EXIT_OK);
        case O_VERSION: exit(ug_print_version());
        default: ug_usage_error("unexpected or incomplete option %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        ug_usage_error("unexpected argument %s", argv[optind]);
    if (!o->npolicies)
        ug_usage_error("--policy is required");
    if (!o->peers && !o->nreplay)
        ug_usage_error("no population: give --peers N or --replay CAPTURE");
    if (o->peers && o->nreplay)
        ug_usage_error("--peers and --replay: one population at a time");
    if (o->nreplay && (s.versions || s.plat || s.chan || s.regions || s.networks || s.logins))
        ug_usage_error("--versions, --plat, --chan, --regions, --networks and --logins describe synthetic peers; "
                       "a replay plays what was recorded");
    if (s.time_scale && !o->nreplay)
        ug_usage_error("--time-scale goes with --replay");
    if ((s.session || s.peak) && !s.logins)
        ug_usage_error("--session and --peak-hour go with --logins");
    if (o->suggest && !o->max_bw)
        ug_usage_error("--suggest needs --max-bandwidth: the bound to keep under");
    if (o->suggest && o->npolicies > 1)
        ug_usage_error("--suggest works on one --policy");
    if (o->plot) {
        const char *dot = strrchr(o->plot, '.');
        if (!dot || (strcmp(dot, ".svg") != 0 && strcmp(dot, ".png") != 0))
            ug_usage_error("--plot: the file name ends in .svg or .png: %s", o->plot);
    }
    merge_places(o, &s);
    o->have_versions = s.versions, o->have_plats = s.plat, o->have_chans = s.chan;
}

/* ---- what the plugin's summary says (when its check() gives one) ------------------------ */

typedef struct {
    char geoip[4096];
    sim_weights targets; /* the exact targets, equally weighted */
    char urls[SIM_MIRRORS_MAX][256];
    unsigned nurls;
} summary;

static void summary_emit(void *ctx, const char *data, size_t len)
{
    ug_buf_emit(ctx, data, len);
}

static void read_summary(const sim_plugin *pl, const char *policy, summary *s)
{
    memset(s, 0, sizeof *s);
    ug_buf b = {.max = 64u << 20};
    char err[512];
    json_t *j = NULL;
    if (pl->api->check(NULL, policy, NULL, summary_emit, &b, err, sizeof err) == 0 && ug_buf_finish(&b) == 0)
        j = json_loads(b.data, 0, NULL);
    ug_buf_free(&b);
    if (!j)
        return;
    const char *g = json_string_value(json_object_get(j, "geoip"));
    if (g)
        snprintf(s->geoip, sizeof s->geoip, "%s", g);
    json_t *ro, *t;
    size_t i, k;
    json_array_foreach(json_object_get(j, "rollouts"), i, ro)
    {
        json_array_foreach(json_object_get(ro, "targets"), k, t)
        {
            const char *v = json_string_value(t);
            char why[128], one[64];
            sim_weights w;
            if (!v || v[0] == '<' || s->targets.n == SIM_WEIGHTS_MAX || strlen(v) >= sizeof one)
                continue;
            snprintf(one, sizeof one, "%s", v);
            if (sim_parse_weights(one, SIM_KEY_VERSION, &w, why, sizeof why) != 0)
                continue;
            bool dup = false;
            for (unsigned m = 0; m < s->targets.n; m++)
                dup |= strcmp(s->targets.key[m], w.key[0]) == 0;
            if (dup)
                continue;
            memcpy(s->targets.key[s->targets.n], w.key[0], sizeof w.key[0]);
            s->targets.weight[s->targets.n++] = 1;
            s->targets.total += 1;
        }
        if (i == 0)
            json_array_foreach(json_object_get(json_object_get(ro, "manifest"), "urls"), k, t)
                if (json_is_string(t) && s->nurls < SIM_MIRRORS_MAX)
                    snprintf(s->urls[s->nurls++], sizeof s->urls[0], "%s", json_string_value(t));
    }
    json_decref(j);
}

/* "https://dl1.example.net/x" -> "dl1.example.net". */
static void url_host(const char *url, char *out, size_t cap)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/?#");
    snprintf(out, cap, "%.*s", (int)(n < 120 ? n : 120), h);
}

/* ---- the program ------------------------------------------------------------------------ */

/* A capture rotated at its size limit left its older part in FILE.1: say
 * so when only FILE is replayed. */
static void note_rotated(const sim_opts *o)
{
    for (unsigned i = 0; i < o->nreplay; i++) {
        char older[4096 + 4];
        snprintf(older, sizeof older, "%s.1", o->replay[i]);
        bool named = false;
        for (unsigned k = 0; k < o->nreplay; k++)
            named |= strcmp(o->replay[k], older) == 0;
        if (!named && access(older, F_OK) == 0)
            fprintf(stderr, "upgate-sim: note: %s holds the older part of this capture and is not replayed; "
                            "name both: --replay %s,%s\n", older, older, o->replay[i]);
    }
}

/* Defaults that need the policy or the population. */
static void settle(sim_opts *o, const summary *s, const sim_pop *pop)
{
    if (!o->step)
        o->step = 3600;
    if (o->nreplay) {
        if (!o->start_given)
            o->start = pop->first;
        if (!o->horizon_given)
            o->horizon = (pop->span / o->step + 1) * o->step;
        if (o->horizon > SIM_DAYS_MAX * 86400u)
            o->horizon = SIM_DAYS_MAX * 86400u;
    } else if (!o->horizon_given) {
        o->horizon = 7 * 86400u;
    }
    (void)s;
}

static void name_mirrors(sim_result *r, const summary *s)
{
    for (unsigned m = 0; m < SIM_MIRRORS_MAX; m++) {
        if (m < s->nurls)
            url_host(s->urls[m], r->mirror[m], sizeof r->mirror[m]);
        else
            snprintf(r->mirror[m], sizeof r->mirror[m], "mirror %u", m);
    }
}

static void print_bench(const sim_result *r, unsigned n)
{
    double cpu = 0;
    uint64_t dec = 0;
    for (unsigned i = 0; i < n; i++)
        cpu += r[i].cpu_seconds, dec += r[i].decisions;
    double ns = dec ? cpu * 1e9 / (double)dec : 0;
    printf("sim decision | %.0f ns | goal <= %.0f ns | %s\n", ns, BENCH_GOAL_NS, ns <= BENCH_GOAL_NS ? "ok" : "MISS");
    char d[32];
    sim_fmt_count(dec, d, sizeof d);
    fprintf(stderr, "upgate-sim: %s decisions in %.2f s of CPU\n", d, cpu);
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-sim";
    sim_opts o = {.seed = 1, .time_scale = 1, .accept = 0.9, .fail = 0.01, .think = 60, .session = 3600,
                  .peak_hour = 20, .speed_lo = 20e6, .speed_hi = 20e6, .start = (int64_t)ug_now() / 60 * 60};
    parse_args(argc, argv, &o);
    atexit(scratch_all);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char err[2048];
    sim_plugin pl;
    if (sim_plugin_load(&pl, o.plugin ? o.plugin : ug_default_plugin(), err, sizeof err) != 0)
        ug_die(UG_EXIT_FAIL, "%s", err);
    uint64_t retry[SIM_POLICIES_MAX];
    for (unsigned i = 0; i < o.npolicies; i++)
        if (sim_policy_retry(&pl, o.policy[i], o.start, &retry[i], err, sizeof err) != 0)
            ug_die(UG_EXIT_FAIL, "%s", err);
    summary sum;
    read_summary(&pl, o.policy[0], &sum);
    if (o.peers && !o.have_versions) {
        if (!sum.targets.n)
            ug_usage_error("--versions is needed: the plugin's summary of %s names no exact target", o.policy[0]);
        o.versions = sum.targets;
    }
    if (o.nregions && !o.geoip) {
        if (!sum.geoip[0])
            ug_usage_error("--regions needs a GeoIP database: --geoip FILE, or a policy with geoip");
        o.geoip = sum.geoip;
    }

    sim_pop pop;
    if (o.nreplay)
        note_rotated(&o);
    int rc = o.nreplay ? sim_pop_replay(&pop, &o, err, sizeof err) : sim_pop_synth(&pop, &o, retry[0], err, sizeof err);
    if (rc != 0)
        ug_die(sim_interrupted ? 130 : UG_EXIT_FAIL, "%s", err);
    settle(&o, &sum, &pop);

    sim_result res[SIM_POLICIES_MAX];
    for (unsigned i = 0; i < o.npolicies; i++) {
        if (sim_run(&pl, &o, &pop, o.policy[i], retry[i], &res[i], err, sizeof err) != 0) {
            if (sim_interrupted)
                ug_die(130, "interrupted");
            ug_die(UG_EXIT_FAIL, "%s", err);
        }
        name_mirrors(&res[i], &sum);
    }
    if (o.bench) {
        print_bench(res, o.npolicies);
    } else {
        sim_print_header(&o, &pop, res, o.npolicies);
        if (!o.quiet)
            sim_print_table(&o, res, o.npolicies);
        sim_print_headline(&o, res, o.npolicies);
    }
    if (o.csv && sim_write_csv(&o, res, o.npolicies, o.csv, err, sizeof err) != 0)
        ug_die(UG_EXIT_FAIL, "%s", err);
    if (o.plot && sim_write_plot(&o, res, o.npolicies, o.plot, err, sizeof err) != 0)
        ug_die(UG_EXIT_FAIL, "%s", err);
    if (o.plot && !o.bench)
        printf("plot: %s\n", o.plot);
    if (o.suggest) {
        rc = sim_suggest(&pl, &o, &pop, retry[0], &res[0], err, sizeof err);
        if (rc != 0)
            ug_die(sim_interrupted ? 130 : rc, "%s", err);
    }
    for (unsigned i = 0; i < o.npolicies; i++)
        sim_result_free(&res[i]);
    sim_pop_free(&pop);
    return fflush(stdout) == 0 ? UG_EXIT_OK : UG_EXIT_FAIL;
}
