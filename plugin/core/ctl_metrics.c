/* Control's metrics: the Prometheus text exposition of the tracker's counters and of every rollout and stage. */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "core/ctl_impl.h"

typedef struct {
    ug_emit emit;
    void *ctx;
} mout;

__attribute__((format(printf, 2, 3))) static void mf(mout *m, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        m->emit(m->ctx, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void family(mout *m, const char *name, const char *type, const char *help)
{
    mf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The label of counter st: its row's, else its span's key="name", else NULL. */
static const char *counter_labels(unsigned st, char *buf, size_t cap)
{
    if (ug_counters[st].labels)
        return ug_counters[st].labels;
    for (size_t i = 0; i < ug_counter_nspans; i++) {
        const ug_counter_span *sp = &ug_counter_spans[i];
        if (st >= sp->first && st - sp->first < sp->n && sp->key) {
            snprintf(buf, cap, "%s=\"%s\"", sp->key, sp->namer(st - sp->first));
            return buf;
        }
    }
    return NULL;
}

/* Is counter st a sample of family fam? */
static bool in_family(unsigned st, const char *fam)
{
    return ug_counters[st].name && ug_counters[st].family && strcmp(ug_counters[st].family, fam) == 0;
}

/* The counters (base/counters.def): each family once, at its first row,
 * with every sample of it. */
static void metrics_counters(ug_inst *I, mout *m)
{
    for (unsigned st = 0; st < ST_COUNT; st++) {
        const char *fam = ug_counters[st].family, *help = NULL;
        bool first = in_family(st, fam);
        for (unsigned k = 0; first && k < st; k++)
            first = !in_family(k, fam);
        if (!first)
            continue;
        for (unsigned k = st; k < ST_COUNT && !help; k++)
            help = in_family(k, fam) ? ug_counters[k].help : NULL;
        family(m, fam, "counter", help ? help : "");
        for (unsigned k = st; k < ST_COUNT; k++) {
            if (!in_family(k, fam))
                continue;
            char buf[128];
            const char *lab = counter_labels(k, buf, sizeof buf);
            mf(m, "%s%s%s%s %" PRIu64 "\n", fam, lab ? "{" : "", lab ? lab : "", lab ? "}" : "", ug_ctl_sum(I, k));
        }
    }
}

static void metrics_tracker(ug_inst *I, mout *m, const ug_live *l, uint64_t now)
{
    metrics_counters(I, m);
    family(m, "upgate_cookies_required", "gauge", "1 while every HELLO must carry a cookie.");
    mf(m, "upgate_cookies_required %d\n",
       l->pol->cookie == UG_COOKIE_ALWAYS || (l->pol->cookie == UG_COOKIE_AUTO && atomic_load(&I->under_load)));
    family(m, "upgate_policy_generation", "gauge", "Policies loaded since start.");
    mf(m, "upgate_policy_generation %" PRIu64 "\n", l->gen);
    family(m, "upgate_uptime_seconds", "gauge", "Seconds since the plugin started.");
    mf(m, "upgate_uptime_seconds %" PRIu64 "\n", now - I->started);
    const ug_policy_v2 *k = l->pol->v2;
    if (!k)
        return;
    family(m, "upgate_keyring_version", "gauge", "The version 2 keyring the tracker serves.");
    mf(m, "upgate_keyring_version %u\n", k->keys.kr.kv);
    family(m, "upgate_keyring_expiry_timestamp_seconds", "gauge", "When the served keyring expires.");
    mf(m, "upgate_keyring_expiry_timestamp_seconds{kv=\"%u\"} %" PRIu64 "\n", k->keys.kr.kv, k->keys.kr.exp);
    family(m, "upgate_hint_cert_expiry_timestamp_seconds", "gauge", "When the hint key's certificate expires.");
    mf(m, "upgate_hint_cert_expiry_timestamp_seconds{serial=\"%" PRIu64 "\"} %" PRIu64 "\n", k->keys.cert.serial,
       k->keys.cert.exp);
}

/* The census: staged HELLOs drained, then each window's union and its
 * top versions (one read of the registers per window). */
static void metrics_census(ug_inst *I, mout *m, const ug_live *l, uint64_t now)
{
    static const char *const wn[UG_CENSUS_WINDOWS] = {"hour", "day", "week"};
    if (!l->pol->census)
        return;
    ug_census_tick(I->census, now);
    family(m, "upgate_census_uids", "gauge", "Distinct uids seen in HELLOs over the window (HyperLogLog estimate).");
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
        mf(m, "upgate_census_uids{window=\"%s\"} %" PRIu64 "\n", wn[w], ug_census_total(I->census, now, w));
    family(m, "upgate_census_version_uids", "gauge",
           "Distinct uids seen at the version over the window (HyperLogLog estimate).");
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++) {
        ug_census_top top[10];
        size_t n = ug_census_top_versions(I->census, now, w, top, 10);
        for (size_t i = 0; i < n && i < 10; i++)
            mf(m, "upgate_census_version_uids{window=\"%s\",ver=\"%s\"} %" PRIu64 "\n", wn[w], top[i].ver, top[i].n);
    }
    pthread_mutex_lock(&I->census_fleet_mu);
    if (I->census_fleet) { /* fleet mode, once merged */
        family(m, "upgate_census_fleet_uids", "gauge",
               "Distinct uids seen by every tracker of the fleet over the window (merged HyperLogLog estimate).");
        for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
            mf(m, "upgate_census_fleet_uids{window=\"%s\"} %" PRIu64 "\n", wn[w], ug_census_total(I->census_fleet, now, w));
        family(m, "upgate_census_fleet_trackers", "gauge", "Trackers whose census the fleet's census merged, this one included.");
        mf(m, "upgate_census_fleet_trackers %u\n", I->census_fleet_trackers);
        family(m, "upgate_census_fleet_refused_total", "counter",
               "Censuses other trackers published that this tracker refused (seal, format or sketch).");
        mf(m, "upgate_census_fleet_refused_total %" PRIu64 "\n", I->census_fleet_refused);
    }
    pthread_mutex_unlock(&I->census_fleet_mu);
    ug_census_stats st;
    ug_census_stats_get(I->census, &st);
    family(m, "upgate_census_buckets", "gauge", "Census buckets (version, plat, chan, region) held, \"other\" included.");
    mf(m, "upgate_census_buckets %" PRIu64 "\n", st.buckets);
    family(m, "upgate_census_bytes", "gauge", "Bytes of the census's sketches, bucket table and index (within its budget).");
    mf(m, "upgate_census_bytes %" PRIu64 "\n", st.bytes);
}

/* One pass over a rollout's grants gives the outcome counts of its stages. */
static uint64_t (*outcome_scan(const ug_live_rollout *lr, uint64_t now))[UG_OUT_COUNT_ + 1]
{
    ug_ctl_outcomes sc;
    ug_ctl_count_outcomes(lr, now, &sc);
    return sc.per;
}

#define EACH_ROLLOUT for (size_t i = 0; i < n; i++) for (const ug_live_rollout *lr = &l->ro[i]; lr; lr = NULL)
#define EACH_STAGE                                                                                                     \
    EACH_ROLLOUT for (size_t j = 0; j < lr->r->nstages; j++) for (const ug_live_stage *ls = &lr->stages[j]; ls; ls = NULL)
/* Every series of a rollout carries its release; of a stage, its stage too. */
#define RL "{rollout=\"%s\",release=\"%s\""
#define RL_ARGS lr->r->name, lr->r->to
#define SL RL ",stage=\"%s\""
#define SL_ARGS RL_ARGS, ls->s->name

static uint64_t tally_sum(const ug_inst *I, const ug_live_stage *ls, size_t off)
{
    uint64_t v = 0;
    for (unsigned w = 0; w < I->nworkers; w++)
        v += atomic_load_explicit((const _Atomic uint64_t *)((const char *)&ls->rt->tally[w] + off),
                                  memory_order_relaxed);
    return v;
}

/* The levels: paused, halted, expiry; a stage's grants, quota, percent. */
static void metrics_levels(mout *m, const ug_live *l, size_t n, uint64_t now)
{
    family(m, "upgate_rollout_paused", "gauge", "1 while the rollout is paused.");
    EACH_ROLLOUT mf(m, "upgate_rollout_paused" RL "} %d\n", RL_ARGS,
                    lr->r->paused || atomic_load(&lr->rt->ctl_paused));
    family(m, "upgate_rollout_halted", "gauge", "1 while the rollout is halted.");
    EACH_ROLLOUT mf(m, "upgate_rollout_halted" RL "} %d\n", RL_ARGS, (int)atomic_load(&lr->rt->halted));
    family(m, "upgate_manifest_expiry_timestamp_seconds", "gauge", "When the rollout's release manifest expires.");
    EACH_ROLLOUT mf(m, "upgate_manifest_expiry_timestamp_seconds" RL "} %" PRIu64 "\n", RL_ARGS, lr->r->rel.exp);
    family(m, "upgate_stage_grants", "gauge", "Distinct uids offered the release by the stage.");
    EACH_STAGE mf(m, "upgate_stage_grants" SL "} %" PRIu64 "\n", SL_ARGS, ls->q ? ug_stage_quota_count(ls->q) : 0);
    family(m, "upgate_stage_quota", "gauge", "The stage's quota.");
    EACH_STAGE if (ls->s->has_quota) mf(m, "upgate_stage_quota" SL "} %" PRIu64 "\n", SL_ARGS, ls->s->quota);
    family(m, "upgate_stage_quota_left", "gauge", "Slots left in the stage's quota on this tracker.");
    EACH_STAGE if (ls->s->has_quota && ls->q) mf(m, "upgate_stage_quota_left" SL "} %" PRIu64 "\n", SL_ARGS,
                                                 ug_stage_quota_remaining(ls->q));
    family(m, "upgate_stage_percent", "gauge", "The stage's percentage in force, as the policy writes it.");
    EACH_STAGE if (ls->s->has_percent) mf(m, "upgate_stage_percent" SL "} %.2f\n", SL_ARGS,
                                          ug_live_percent(lr, ls->s, now) / 100.0);
    family(m, "upgate_stage_offers_last_hour", "gauge", "New offers in the last hour.");
    EACH_STAGE
    {
        uint64_t mn = 0, hr = 0;
        if (ls->q)
            ug_stage_quota_offers(ls->q, now, &mn, &hr);
        mf(m, "upgate_stage_offers_last_hour" SL "} %" PRIu64 "\n", SL_ARGS, hr);
    }
}

/* The monotonic counters of each stage, for rate() and increase(). */
static void metrics_stage_counters(ug_inst *I, mout *m, const ug_live *l, size_t n)
{
    static const char *const resk[UG_RES_COUNT_] = {"installed", "declined", "download_failed", "mismatch",
                                                    "install_failed", "rolled_back"};
    static const char *const chk[UG_OUT_COUNT_] = {"pending", "upgraded", "rolled_back", "declined",
                                                   "download_failed", "mismatch", "install_failed"};
    family(m, "upgate_stage_offers_total", "counter", "HINTs the stage gave, by kind: a new grant or again.");
    EACH_STAGE
    {
        mf(m, "upgate_stage_offers_total" SL ",kind=\"new\"} %" PRIu64 "\n", SL_ARGS,
           tally_sum(I, ls, offsetof(ug_tally, offers_new)));
        mf(m, "upgate_stage_offers_total" SL ",kind=\"again\"} %" PRIu64 "\n", SL_ARGS,
           tally_sum(I, ls, offsetof(ug_tally, offers_again)));
    }
    family(m, "upgate_stage_waits_total", "counter", "WAITs the stage caused to verified claims, by reason.");
    EACH_STAGE for (unsigned why = 0; why < UG_WHY_COUNT_; why++)
    {
        uint64_t v = 0;
        for (unsigned w = 0; w < I->nworkers; w++)
            v += atomic_load_explicit(&ls->rt->waits[w].why[why], memory_order_relaxed);
        mf(m, "upgate_stage_waits_total" SL ",why=\"%s\"} %" PRIu64 "\n", SL_ARGS, ug_why_name(why), v);
    }
    family(m, "upgate_stage_unverified_waits_total", "counter",
           "WAITs the stage caused before the claim was verified, by reason.");
    EACH_STAGE for (unsigned why = 0; why < UG_WHY_COUNT_; why++)
    {
        uint64_t v = 0;
        for (unsigned w = 0; w < I->nworkers; w++)
            v += atomic_load_explicit(&ls->rt->waits[w].unverified[why], memory_order_relaxed);
        mf(m, "upgate_stage_unverified_waits_total" SL ",why=\"%s\"} %" PRIu64 "\n", SL_ARGS, ug_why_name(why), v);
    }
    family(m, "upgate_stage_reports_total", "counter", "Verified REPORTs about the stage's offers, by result.");
    EACH_STAGE for (unsigned k = 0; k < UG_RES_COUNT_; k++)
        mf(m, "upgate_stage_reports_total" SL ",result=\"%s\"} %" PRIu64 "\n", SL_ARGS, resk[k],
           tally_sum(I, ls, offsetof(ug_tally, reports) + k * sizeof(_Atomic uint64_t)));
    family(m, "upgate_stage_outcome_changes_total", "counter",
           "Changes of the outcome of the stage's offers, by the outcome changed to.");
    EACH_STAGE for (unsigned k = 1; k < UG_OUT_COUNT_; k++)
        mf(m, "upgate_stage_outcome_changes_total" SL ",outcome=\"%s\"} %" PRIu64 "\n", SL_ARGS, chk[k],
           tally_sum(I, ls, offsetof(ug_tally, changes) + k * sizeof(_Atomic uint64_t)));
}

/* The exposition format wants a family's samples together, after its HELP
 * and TYPE: so family by family, each over every rollout and stage. */
static void metrics_rollouts(ug_inst *I, mout *m, const ug_live *l, uint64_t now)
{
    static const char *const outk[] = {"pending", "upgraded", "rolled_back", "declined", "download_failed",
                                       "mismatch", "install_failed", "not_taken"};
    size_t n = l->pol->nrollouts;
    uint64_t(**per)[UG_OUT_COUNT_ + 1] = calloc(n ? n : 1, sizeof *per);
    if (!per)
        return;
    for (size_t i = 0; i < n; i++)
        per[i] = outcome_scan(&l->ro[i], now);
    metrics_levels(m, l, n, now);
    metrics_stage_counters(I, m, l, n);
    family(m, "upgate_stage_outcomes", "gauge", "The stage's offers, by outcome.");
    EACH_STAGE for (unsigned o = 0; per[i] && o <= UG_OUT_COUNT_; o++)
        mf(m, "upgate_stage_outcomes" SL ",outcome=\"%s\"} %" PRIu64 "\n", SL_ARGS, outk[o], per[i][j][o]);
    for (size_t i = 0; i < n; i++)
        free(per[i]);
    free(per);
}
#undef EACH_STAGE
#undef EACH_ROLLOUT

int ug_ctl_metrics(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    mout m = {emit, ctx};
    ug_live *l = atomic_load(&I->live);
    uint64_t now = ug_inst_now(I);
    metrics_tracker(I, &m, l, now);
    const ug_ctl_ext *x = I->ctl_ext;
    if (x && x->metrics)
        x->metrics(x->ctx, emit, ctx);
    metrics_census(I, &m, l, now);
    metrics_rollouts(I, &m, l, now);
    return 0;
}
