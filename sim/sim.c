/* upgate-sim: forecasts what a policy will do to the download servers, by running it in the real plugin on simulated peers and a simulated clock. */
#include <ftw.h>
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

#define BENCH_GOAL_NS 300.0 /* issue 27: margin below the 400 ns the forecasts need */

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

/* --population: the census's peers; o->peers becomes their number (the
 * headline counts every one). Regions place peers only with a GeoIP
 * database (--geoip, else the policy's). */
static int census_pop(sim_pop *pop, sim_opts *o, const summary *s, uint64_t retry, char *err, size_t errcap)
{
    sim_census c;
    if (sim_census_load(o->population, SIM_CENSUS_WEEK, &c, err, errcap) != 0)
        return -1;
    if (!o->geoip && s->geoip[0])
        o->geoip = s->geoip;
    int rc = sim_pop_census(pop, o, &c, retry, err, errcap);
    sim_census_free(&c);
    if (rc == 0)
        o->peers = pop->npeers;
    return rc;
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-sim";
    sim_opts o = {.seed = 1, .time_scale = 1, .accept = 0.9, .fail = 0.01, .think = 60, .session = 3600,
                  .peak_hour = 20, .speed_lo = 20e6, .speed_hi = 20e6, .start = sim_now_minute()};
    sim_parse_args(argc, argv, &o);
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
    if (o.peers && !o.have_versions && !o.population) {
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
    int rc = o.nreplay      ? sim_pop_replay(&pop, &o, err, sizeof err)
             : o.population ? census_pop(&pop, &o, &sum, retry[0], err, sizeof err)
                            : sim_pop_synth(&pop, &o, retry[0], err, sizeof err);
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
