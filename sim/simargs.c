/* upgate-sim's command line: one table row per flag (name, argument, parser, help); getopt's list and --help come from it. */
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sim.h"

typedef struct sim_flag sim_flag;
struct sim_flag {
    const char *name; /* without "--"; NULL: a heading line of --help (in help) */
    const char *arg;  /* the argument's name in --help; NULL: the flag takes none */
    /* Reads arg into o, or exits 2 naming the flag (ug_usage_error); NULL:
     * only remembered, read once every flag is in (--regions, --networks). */
    void (*parse)(const sim_flag *f, sim_opts *o, char *arg);
    size_t field;     /* the sim_opts member set_str and set_true write */
    const char *help; /* NULL: not listed; each "\n" starts an indented line */
};

static const char usage_head[] =
    "usage: upgate-sim --policy FILE [--policy FILE2] (--peers N | --population CENSUS | --replay CAPTURE[,...])\n"
    "                  [options]\n"
    "       upgate-sim --version | --help\n"
    "\n"
    "Forecasts a rollout: runs the policy in the real plugin (decide() on claimed fields, no crypto)\n"
    "on simulated peers and a simulated clock, and prints per time step the new offers of each\n"
    "stage, the peers upgraded, the downloads in flight and each mirror's bandwidth; then the peak\n"
    "bandwidth and when it comes, when 50%, 90% and 99% of the targeted peers have upgraded, and\n"
    "when each quota is spent. A second --policy runs on the same peers, side by side.\n"
    "\n";

static const char usage_tail[] =
    "\n"
    "Rates: bit, kbit, Mbit, Gbit, Tbit (optionally /s) or B/s, kB/s, MB/s, GB/s (decimal SI).\n"
    "Exit 0 on success, 1 when a policy, capture or GeoIP file cannot be used, 2 on bad usage.\n";

/* --help's columns: flags from column 2, their text from column 25. */
#define HELP_FLAG_COL 2
#define HELP_TEXT_COL 25
/* getopt's value for flags[i] is FLAG_VAL0 + i: above every character it returns itself. */
#define FLAG_VAL0 256

/* ---- the parsers, one per kind of value ------------------------------------------------ */

static void set_str(const sim_flag *f, sim_opts *o, char *arg)
{
    *(const char **)((char *)o + f->field) = arg;
}

static void set_true(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)arg;
    *(bool *)((char *)o + f->field) = true;
}

static void weights_arg(const char *flag, const char *arg, sim_keykind kind, sim_weights *w)
{
    char why[256];
    if (sim_parse_weights(arg, kind, w, why, sizeof why) != 0)
        ug_usage_error("%s: %s", flag, why);
}

static void p_policy(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (o->npolicies == SIM_POLICIES_MAX)
        ug_usage_error("at most %u --policy", SIM_POLICIES_MAX);
    o->policy[o->npolicies++] = arg;
}

static void p_peers(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (ug_parse_u64(arg, 0, SIM_PEERS_MAX, &o->peers) != 0)
        ug_usage_error("--peers: not a number of peers up to %u: %s", SIM_PEERS_MAX, arg);
    if (o->peers == 0)
        ug_usage_error("--peers 0: an empty population forecasts nothing");
}

static void p_replay(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    for (char *file = arg, *next; file; file = next) {
        next = strchr(file, ',');
        if (next)
            *next++ = 0;
        if (!file[0])
            ug_usage_error("--replay: an empty file name");
        if (o->nreplay == SIM_REPLAY_FILES_MAX)
            ug_usage_error("--replay: at most %u files", SIM_REPLAY_FILES_MAX);
        o->replay[o->nreplay++] = file;
    }
}

static void p_time_scale(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_decimal(arg, 1e-6, 1e6, &o->time_scale) != 0 || !(o->time_scale > 0))
        ug_usage_error("--time-scale: not a positive factor: %s", arg);
}

static void p_seed(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (ug_parse_u64(arg, 0, UINT64_MAX, &o->seed) != 0)
        ug_usage_error("--seed: not a number: %s", arg);
}

int64_t sim_now_minute(void)
{
    return ((int64_t)ug_now() + 59) / 60 * 60;
}

static void p_start(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_when(arg, sim_now_minute(), &o->start) != 0)
        ug_usage_error("--start: not now, Unix seconds or an RFC 3339 time: %s", arg);
    o->start_given = true;
}

static void p_days(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    double d;
    if (sim_parse_decimal(arg, 0, SIM_DAYS_MAX, &d) != 0 || d * 86400 < 60)
        ug_usage_error("--days: not a number of days from 0.001 to %u: %s", SIM_DAYS_MAX, arg);
    o->horizon = (uint64_t)ceil(d * 86400);
    o->horizon_given = true;
}

static void p_step(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_duration(arg, 60, SIM_DAYS_MAX * 86400u, &o->step) != 0 || o->step % 60)
        ug_usage_error("--step: not a whole number of minutes (15m, 1h, 3600): %s", arg);
}

static void p_versions(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    weights_arg("--versions", arg, SIM_KEY_VERSION, &o->versions);
    o->have_versions = true;
}

static void p_plat(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    weights_arg("--plat", arg, SIM_KEY_PLAT, &o->plats);
    o->have_plats = true;
}

static void p_chan(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    weights_arg("--chan", arg, SIM_KEY_CHAN, &o->chans);
    o->have_chans = true;
}

static void p_logins(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_decimal(arg, 0, 48, &o->logins) != 0 || !(o->logins > 0))
        ug_usage_error("--logins: not a number of logins a day from 0.01 to 48: %s", arg);
}

static void p_session(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_duration(arg, 1, 7 * 86400u, &o->session) != 0)
        ug_usage_error("--session: not a duration from 1s to 7d: %s", arg);
}

static void p_peak(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    uint64_t u;
    if (ug_parse_u64(arg, 0, 23, &u) != 0)
        ug_usage_error("--peak-hour: not an hour from 0 to 23: %s", arg);
    o->peak_hour = (unsigned)u;
}

static void p_accept(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_share(arg, &o->accept) != 0)
        ug_usage_error("--accept: not a share from 0 to 1: %s", arg);
}

static void p_fail(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_share(arg, &o->fail) != 0 || o->fail >= 1)
        ug_usage_error("--fail: not a share from 0 to below 1: %s", arg);
}

static void p_rollback(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_share(arg, &o->rollback) != 0)
        ug_usage_error("--rollback: not a share from 0 to 1: %s", arg);
}

static void p_think(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_duration(arg, 0, 86400, &o->think) != 0)
        ug_usage_error("--think: not a duration up to 1d: %s", arg);
}

static void p_speed(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_bitrate_range(arg, &o->speed_lo, &o->speed_hi) != 0 || o->speed_lo < 8)
        ug_usage_error("--speed: not a rate or LOW..HIGH with a unit (20Mbit, 5Mbit..50Mbit): %s", arg);
}

static void p_max_bw(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f;
    if (sim_parse_bitrate(arg, &o->max_bw) != 0)
        ug_usage_error("--max-bandwidth: not a rate with its unit (10Gbit, 1.25GB/s): %s", arg);
}

static void p_help(const sim_flag *f, sim_opts *o, char *arg);

static void p_version(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f, (void)o, (void)arg;
    exit(ug_print_version());
}

/* ---- the table ---------------------------------------------------------------------------- */

#define FIELD(m) offsetof(sim_opts, m)

static const sim_flag flags[] = {
    {"policy", "FILE", p_policy, 0, NULL},
    {"peers", "N", p_peers, 0, NULL},
    {NULL, NULL, NULL, 0, "Run:"},
    {"plugin", "PATH", set_str, FIELD(plugin), "the plugin (default: upgate.so beside it, else in PLUGINDIR)"},
    {"start", "TIME", p_start, 0,
     "the simulated clock's start: now (default), RFC 3339 or Unix seconds;\na replay starts at its first record"},
    {"days", "D", p_days, 0, "how long to simulate (default 7; a replay: its span and one step)"},
    {"step", "DURATION", p_step, 0, "one table row (default 1h; whole minutes: 15m, 1h, 1d)"},
    {"seed", "N", p_seed, 0, "the population's and the peers' draws (default 1)"},
    {NULL, NULL, NULL, 0, "Synthetic peers (--peers N, uids 1..N):"},
    {"versions", "V=W,...", p_versions, 0,
     "the versions they run, with weights (default: the policy's exact\ntargets, equally, when the plugin's "
     "summary names them)"},
    {"plat", "P=W,...", p_plat, 0, "platforms (default: none sent)"},
    {"chan", "C=W,...", p_chan, 0, "channels (default: none sent)"},
    {"regions", "R=W,...", NULL, 0,
     "source regions (DE, CN-BJ): addresses drawn from the GeoIP database's\nnetworks of each region"},
    {"networks", "CIDR=W,...", NULL, 0,
     "source networks (with --regions: one list of weights for both);\ndefault: one address outside every network"},
    {"geoip", "FILE", set_str, FIELD(geoip), "the GeoIP database for --regions (default: the policy's geoip)"},
    {"logins", "N", p_logins, 0, "logins per peer per day on a daily curve (default: always online)"},
    {"session", "DURATION", p_session, 0, "how long a login stays online and asks again (default 1h)"},
    {"peak-hour", "H", p_peak, 0, "the curve's peak, hour of the day UTC (0-23, default 20)"},
    {NULL, NULL, NULL, 0, "Peers as a tracker counted them:"},
    {"population", "CENSUS", set_str, FIELD(population),
     "the output of upgate-ctl census --json: peers in each bucket's share of\nthe week (version, plat, chan; region "
     "with --geoip or the policy's geoip),\nas many as it counted or --peers N"},
    {NULL, NULL, NULL, 0, "Recorded peers:"},
    {"replay", "FILE[,FILE]", p_replay, 0, "the HELLOs an upgate-node recorded in its capture file (FILE.1 too)"},
    {"time-scale", "X", p_time_scale, 0, "play the capture X times as fast (default 1)"},
    {NULL, NULL, NULL, 0, "Every peer:"},
    {"accept", "SHARE", p_accept, 0, "share of offers the user accepts (default 0.9; others REPORT declined)"},
    {"think", "DURATION", p_think, 0, "mean time to the user's answer (default 1m; drawn from 0 to twice it)"},
    {"speed", "RATE[..RATE]", p_speed, 0, "download speed per peer, fixed or drawn evenly (default 20Mbit)"},
    {"fail", "SHARE", p_fail, 0,
     "share of downloads whose install fails (REPORT install_failed;\nthe peer asks again later) (default 0.01)"},
    {"rollback", "SHARE", p_rollback, 0, "share of installs rolled back an hour later (default 0)"},
    {NULL, NULL, NULL, 0, "Output:"},
    {"csv", "FILE", set_str, FIELD(csv), "every series, one row per policy and step"},
    {"plot", "FILE.svg|.png", set_str, FIELD(plot),
     "offers per stage, mirror bandwidth (the peak marked), share upgraded\n(.png through rsvg-convert)"},
    {"max-bandwidth", "RATE", p_max_bw, 0, "one mirror's capacity (10Gbit, 1.25GB/s): steps over it are flagged"},
    {"suggest", "[ROLLOUT/]STAGE", set_str, FIELD(suggest),
     "with --max-bandwidth: the largest rate of STAGE, and the shortest\nlinear ramp, that keep every mirror under "
     "it (runs the policy again)"},
    {"quiet", NULL, set_true, FIELD(quiet), "no table: the summary only"},
    {"bench", NULL, set_true, FIELD(bench), "one line: CPU per simulated decision, against the 400 ns goal"},
    {"help", NULL, p_help, 0, NULL},
    {"version", NULL, p_version, 0, NULL},
};

#define NFLAGS (sizeof flags / sizeof flags[0])

/* One flag's lines of --help: its name and argument, then its text. */
static void help_row(const sim_flag *f)
{
    char left[64];
    int n = snprintf(left, sizeof left, "--%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
    int pad = HELP_TEXT_COL - HELP_FLAG_COL - n;
    printf("%*s%s%*s", HELP_FLAG_COL, "", left, pad < 2 ? 2 : pad, "");
    for (const char *line = f->help; line;) {
        const char *nl = strchr(line, '\n');
        printf("%.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
        line = nl ? nl + 1 : NULL;
        if (line)
            printf("%*s", HELP_TEXT_COL, "");
    }
}

static void p_help(const sim_flag *f, sim_opts *o, char *arg)
{
    (void)f, (void)o, (void)arg;
    fputs(usage_head, stdout);
    for (size_t i = 0; i < NFLAGS; i++) {
        if (!flags[i].name)
            printf("%s\n", flags[i].help);
        else if (flags[i].help)
            help_row(&flags[i]);
    }
    fputs(usage_tail, stdout);
    exit(UG_EXIT_OK);
}

/* ---- after every flag ------------------------------------------------------------------- */

/* What the command line said, flag by flag: given[i] for flags[i]. */
typedef struct {
    bool given[NFLAGS];
    char *value[NFLAGS]; /* the last one */
} seen;

static bool was_given(const seen *s, const char *name)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].name && !strcmp(flags[i].name, name))
            return s->given[i];
    return false;
}

static const char *value_of(const seen *s, const char *name)
{
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].name && !strcmp(flags[i].name, name))
            return s->value[i];
    return NULL;
}

/* One list of places: the regions first, then the networks. */
static void merge_places(sim_opts *o, const seen *s)
{
    sim_weights r = {0}, n = {0};
    if (was_given(s, "regions"))
        weights_arg("--regions", value_of(s, "regions"), SIM_KEY_REGION, &r);
    if (was_given(s, "networks"))
        weights_arg("--networks", value_of(s, "networks"), SIM_KEY_NETWORK, &n);
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

/* The rules between flags. */
static void check_together(const sim_opts *o, const seen *s)
{
    if (!o->npolicies)
        ug_usage_error("--policy is required");
    if (!o->peers && !o->nreplay && !o->population)
        ug_usage_error("no population: give --peers N, --population CENSUS or --replay CAPTURE");
    if ((o->peers || o->population) && o->nreplay)
        ug_usage_error("--peers or --population, and --replay: one population at a time");
    if (o->population && (o->have_versions || o->have_plats || o->have_chans || was_given(s, "regions") ||
                          was_given(s, "networks")))
        ug_usage_error("--versions, --plat, --chan, --regions and --networks: the census gives them (--population)");
    if (o->nreplay && (o->have_versions || o->have_plats || o->have_chans || was_given(s, "regions") ||
                       was_given(s, "networks") || was_given(s, "logins")))
        ug_usage_error("--versions, --plat, --chan, --regions, --networks and --logins describe synthetic peers; "
                       "a replay plays what was recorded");
    if (was_given(s, "time-scale") && !o->nreplay)
        ug_usage_error("--time-scale goes with --replay");
    if ((was_given(s, "session") || was_given(s, "peak-hour")) && !was_given(s, "logins"))
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
}

void sim_parse_args(int argc, char **argv, sim_opts *o)
{
    struct option opts[NFLAGS + 1];
    size_t n = 0;
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags[i].name)
            opts[n++] = (struct option){flags[i].name, flags[i].arg ? required_argument : no_argument, NULL,
                                        FLAG_VAL0 + (int)i};
    opts[n] = (struct option){0};
    seen s = {0};
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c < FLAG_VAL0 || (size_t)(c - FLAG_VAL0) >= NFLAGS)
            ug_usage_error("unexpected or incomplete option %s", argv[optind - 1]);
        size_t i = (size_t)(c - FLAG_VAL0);
        const sim_flag *f = &flags[i];
        s.given[i] = true;
        s.value[i] = optarg;
        if (f->parse)
            f->parse(f, o, optarg);
    }
    if (optind != argc)
        ug_usage_error("unexpected argument %s", argv[optind]);
    check_together(o, &s);
    merge_places(o, &s);
}
