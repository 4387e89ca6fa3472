/* Control's status and info: the tracker, its rollouts and stages, counts by outcome and WAIT reason; and the ABI's stats(). */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "core/ctl_impl.h"
#include "core/gates.h"
#include "core/outcomes.h"

uint64_t ug_ctl_sum(ug_inst *I, unsigned st)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < I->nworkers; i++)
        v += atomic_load_explicit(&I->workers[i].c[st], memory_order_relaxed);
    return v;
}

size_t ug_stats(ug_inst *I, ug_stat *out, size_t cap)
{
    size_t n = 0;
    for (unsigned st = 0; st < ST_COUNT; st++) {
        if (!ug_counters[st].name) /* reasons a tracker never meets (peer-side checks) */
            continue;
        if (n < cap)
            out[n] = (ug_stat){ug_counters[st].name, ug_ctl_sum(I, st)};
        n++;
    }
    return n;
}

/* The WAIT counts by reason: `why`, or a stage's `unverified` ones. */
static json_t *waits_json(const ug_waits *w, unsigned n, bool unverified)
{
    json_t *o = json_object();
    for (unsigned why = 0; why < UG_WHY_COUNT_; why++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n; i++)
            v += atomic_load_explicit(unverified ? &w[i].unverified[why] : &w[i].why[why], memory_order_relaxed);
        json_object_set_new(o, ug_why_name(why), json_integer((json_int_t)v));
    }
    return o;
}

static void scan_one(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    (void)uid;
    ug_ctl_outcomes *s = ctx;
    unsigned k = gi->outcome == UG_OUT_PENDING && gi->at < s->before ? UG_OUT_COUNT_ : gi->outcome;
    s->all[k]++;
    const ug_live_stage *ls = ug_live_stage_by_id(s->lr, gi->stage);
    if (ls)
        s->per[ls - s->lr->stages][k]++;
}

void ug_ctl_count_outcomes(const ug_live_rollout *lr, uint64_t now, ug_ctl_outcomes *o)
{
    const ug_rollout *r = lr->r;
    *o = (ug_ctl_outcomes){.lr = lr, .before = now > r->outcome_window ? now - r->outcome_window : 0,
                           .per = calloc(r->nstages ? r->nstages : 1, sizeof *o->per)};
    if (o->per && lr->sc)
        ug_scope_foreach(lr->sc, scan_one, o);
}

static json_t *outcomes_json(const uint64_t *c, bool detail)
{
    uint64_t failed = c[UG_OUT_ROLLED_BACK] + c[UG_OUT_DOWNLOAD_FAILED] + c[UG_OUT_MISMATCH] + c[UG_OUT_INSTALL_FAILED];
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "upgraded", (json_int_t)c[UG_OUT_UPGRADED], "rolled_back",
                          (json_int_t)c[UG_OUT_ROLLED_BACK], "failed", (json_int_t)failed, "declined",
                          (json_int_t)c[UG_OUT_DECLINED], "pending", (json_int_t)c[UG_OUT_PENDING], "not_taken",
                          (json_int_t)c[UG_OUT_COUNT_]);
    if (detail)
        json_object_set_new(o, "failed_by",
                            json_pack("{s:I, s:I, s:I, s:I}", "download_failed", (json_int_t)c[UG_OUT_DOWNLOAD_FAILED],
                                      "mismatch", (json_int_t)c[UG_OUT_MISMATCH], "install_failed",
                                      (json_int_t)c[UG_OUT_INSTALL_FAILED], "rolled_back",
                                      (json_int_t)c[UG_OUT_ROLLED_BACK]));
    return o;
}

static json_t *stage_json(ug_inst *I, const ug_live_rollout *lr, size_t j, const uint64_t *outc, uint64_t now)
{
    const ug_live_stage *ls = &lr->stages[j];
    const ug_stage *s = ls->s;
    uint64_t m = 0, h = 0;
    if (ls->q)
        ug_stage_quota_offers(ls->q, now, &m, &h);
    json_t *o = json_pack("{s:s, s:I, s:o, s:o, s:o, s:{s:I, s:I}, s:o, s:o}", "name", s->name, "granted",
                          (json_int_t)(ls->q ? ug_stage_quota_count(ls->q) : 0), "quota",
                          s->has_quota ? json_integer((json_int_t)s->quota) : json_null(), "percent",
                          s->has_percent ? json_real(ug_live_percent(lr, s, now) / 100.0) : json_null(), "rate",
                          s->has_rate ? json_real(s->rate) : json_null(), "offers", "last_minute", (json_int_t)m,
                          "last_hour", (json_int_t)h, "waits", waits_json(ls->rt->waits, I->nworkers, false), "outcomes",
                          outcomes_json(outc, true));
    json_object_set_new(o, "unverified_waits", waits_json(ls->rt->waits, I->nworkers, true));
    uint64_t at;
    uint32_t bp;
    json_object_set_new(o, "next_step",
                        ug_live_next_step(lr, s, now, &at, &bp)
                            ? json_pack("{s:I, s:f}", "at", (json_int_t)at, "percent", bp / 100.0)
                            : json_null());
    if (o) {
        json_object_set_new(o, "window", ug_windows_json(&s->win, (int64_t)now));
        json_object_set_new(o, "gate", ug_gates_json(ls));
    }
    const ug_ctl_ext *x = I->ctl_ext;
    if (x && x->status_stage && o)
        x->status_stage(x->ctx, o, lr, ls, outc);
    return o;
}

/* How far the rollout is from its halt_when (null without one): the
 * thresholds as percentages, the known outcomes it judges, and since when
 * (a resume of an automatic halt starts a new count). */
static json_t *halt_when_json(const ug_live_rollout *lr)
{
    const ug_rollout *r = lr->r;
    if (!r->has_halt_when)
        return json_null();
    ug_halt_progress p;
    ug_outcome_progress(lr, &p);
    return json_pack("{s:o, s:o, s:I, s:o, s:I, s:I, s:I, s:o, s:o}", "failed_pct",
                     r->halt_failed_ppm ? json_real(r->halt_failed_ppm / 10000.0) : json_null(), "rolled_back_pct",
                     r->halt_rolled_back_ppm ? json_real(r->halt_rolled_back_ppm / 10000.0) : json_null(),
                     "min_outcomes", (json_int_t)r->halt_min_outcomes, "since",
                     p.since ? json_integer((json_int_t)p.since) : json_null(), "known", (json_int_t)p.known, "failed",
                     (json_int_t)p.failed, "rolled_back", (json_int_t)p.rolled_back, "window_s",
                     r->halt_hw.window ? json_integer((json_int_t)r->halt_hw.window) : json_null(), "last",
                     r->halt_hw.last ? json_integer(r->halt_hw.last) : json_null());
}

static json_t *rollout_json(ug_inst *I, const ug_live_rollout *lr, uint64_t now)
{
    const ug_rollout *r = lr->r;
    ug_rollout_state *rt = lr->rt;
    ug_ctl_outcomes sc;
    ug_ctl_count_outcomes(lr, now, &sc);
    if (!sc.per)
        return NULL;
    bool ctl = atomic_load(&rt->ctl_paused), halted = atomic_load(&rt->halted);
    json_t *stages = json_array();
    for (size_t j = 0; j < r->nstages; j++)
        json_array_append_new(stages, stage_json(I, lr, j, sc.per[j], now));
    json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:o, s:b, s:o, s:o, s:o, s:o}", "name", r->name, "release", r->to,
                          "manifest_expires", (json_int_t)r->rel.exp, "paused", r->paused || ctl, "paused_by",
                          r->paused ? json_string("policy") : ctl ? json_string("control") : json_null(), "halted",
                          halted, "halted_why", halted ? json_string(rt->halted_why) : json_null(), "waits",
                          waits_json(rt->waits, I->nworkers, false), "outcomes", outcomes_json(sc.all, true), "stages",
                          stages);
    uint64_t held = atomic_load(&rt->held_since);
    json_object_set_new(o, "ramp_held_since", held ? json_integer((json_int_t)held) : json_null());
    json_object_set_new(o, "ramp_shift_s", json_integer((json_int_t)atomic_load(&rt->shift)));
    json_object_set_new(o, "deltas", json_integer(r->rel2 ? r->rel2->ndeltas : 0));
    json_object_set_new(o, "deltas_off", json_boolean(r->deltas_off));
    json_object_set_new(o, "halt_when", halt_when_json(lr));
    json_object_set_new(o, "urgency", json_string(ug_rollout_critical(r) ? "critical" : "normal"));
    json_object_set_new(o, "window", ug_windows_json(&r->win, (int64_t)now));
    free(sc.per);
    return o;
}

/* Protocol version 2: the keyring served and the certificate, with their expiry; null without. */
static json_t *v2_json(const ug_policy *p)
{
    const ug_policy_v2 *k = p->v2;
    if (!k)
        return json_null();
    return json_pack("{s:I, s:I, s:s, s:I, s:I, s:s, s:s}", "keyring", (json_int_t)k->keys.kr.kv, "keyring_expires",
                     (json_int_t)k->keys.kr.exp, "keyring_file", k->keyring_path, "cert_serial",
                     (json_int_t)k->keys.cert.serial, "cert_expires", (json_int_t)k->keys.cert.exp, "cert_file",
                     k->cert_path, "tracker", k->tracker);
}

/* Delivery by via (issue 26): HINTs and the bytes they send peers to fetch, and the REPORTs counted. */
static json_t *via_json(ug_inst *I)
{
    json_t *reports = json_object();
    for (unsigned v = 0; v < UG2_VIA_COUNT_; v++)
        json_object_set_new(reports, ug2_via_name(v), json_integer((json_int_t)ug_ctl_sum(I, ST_VIA0 + v)));
    return json_pack("{s:{s:I, s:I}, s:{s:I, s:I}, s:o}", "offers", "full", (json_int_t)ug_ctl_sum(I, ST_OFFERS_FULL),
                     "delta", (json_int_t)ug_ctl_sum(I, ST_OFFERS_DELTA), "offered_bytes", "full",
                     (json_int_t)ug_ctl_sum(I, ST_OFFERED_BYTES_FULL), "delta",
                     (json_int_t)ug_ctl_sum(I, ST_OFFERED_BYTES_DELTA), "reports", reports);
}

static json_t *tracker_json(ug_inst *I, const ug_live *l, uint64_t now)
{
    static const char *const modes[] = {"never", "always", "auto"};
    json_t *drops = json_object();
    for (unsigned st = 0; st < ST_COUNT; st++)
        if (ug_counters[st].name && strncmp(ug_counters[st].name, "drop_", 5) == 0)
            json_object_set_new(drops, ug_counters[st].name + 5, json_integer((json_int_t)ug_ctl_sum(I, st)));
    json_t *waits = json_object();
    for (unsigned why = 0; why < UG_WHY_COUNT_; why++)
        json_object_set_new(waits, ug_why_name(why), json_integer((json_int_t)ug_ctl_sum(I, ST_WAIT0 + why)));
    json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:b, s:s, s:s, s:o, s:o}", "uptime_s", (json_int_t)(now - I->started),
                          "policy", l->pol->path, "generation", (json_int_t)l->gen, "cookie", modes[l->pol->cookie],
                          "cookie_under_load", atomic_load(&I->under_load), "verify",
                          l->pol->verify_always ? "always" : "claims-first", "state", I->state_dir, "drops", drops,
                          "waits", waits);
    json_object_set_new(o, "v2", v2_json(l->pol));
    json_object_set_new(o, "via", via_json(I));
    json_object_set_new(o, "census", ug_ctl_census_brief(I, l, now, 5));
    const ug_ctl_ext *x = I->ctl_ext;
    if (x && x->status_tracker && o)
        x->status_tracker(x->ctx, o);
    return o;
}

/* One census in brief: each window's distinct uids and the day's largest
 * versions (at most top, at most 10). */
static json_t *brief_of(ug_census *c, uint64_t now, size_t top)
{
    ug_census_top t[10];
    size_t n = ug_census_top_versions(c, now, UG_CENSUS_DAY, t, top < 10 ? top : 10);
    json_t *a = json_array();
    for (size_t i = 0; i < n && i < top && i < 10; i++)
        json_array_append_new(a, json_pack("{s:s, s:I}", "ver", t[i].ver, "n", (json_int_t)t[i].n));
    return json_pack("{s:I, s:I, s:I, s:o}", "hour", (json_int_t)ug_census_total(c, now, UG_CENSUS_HOUR), "day",
                     (json_int_t)ug_census_total(c, now, UG_CENSUS_DAY), "week",
                     (json_int_t)ug_census_total(c, now, UG_CENSUS_WEEK), "top_day", a);
}

/* The census in brief, for status and explain: the fleet's merged census
 * once fleet mode has one (the operator asks about the network, not one
 * tracker's share of its HELLOs), this tracker's otherwise; `source` says
 * which. Null when it is off. */
json_t *ug_ctl_census_brief(ug_inst *I, const ug_live *l, uint64_t now, size_t top)
{
    if (!l->pol->census)
        return json_null();
    ug_census_tick(I->census, now);
    pthread_mutex_lock(&I->census_fleet_mu); /* the fleet thread swaps it whole under this */
    json_t *o = NULL;
    if (I->census_fleet) {
        o = brief_of(I->census_fleet, now, top);
        if (o) {
            json_object_set_new(o, "source", json_string("fleet"));
            json_object_set_new(o, "trackers", json_integer(I->census_fleet_trackers));
            json_object_set_new(o, "at", json_integer((json_int_t)I->census_fleet_at));
        }
    }
    pthread_mutex_unlock(&I->census_fleet_mu);
    if (o)
        return o;
    o = brief_of(I->census, now, top);
    if (o)
        json_object_set_new(o, "source", json_string("tracker"));
    return o ? o : json_null();
}

int ug_ctl_status(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    ug_live *l = atomic_load(&I->live); /* control is serialized with reload */
    uint64_t now = ug_inst_now(I);
    json_t *ro = json_array();
    for (size_t i = 0; i < l->pol->nrollouts; i++)
        json_array_append_new(ro, rollout_json(I, &l->ro[i], now));
    return ug_ctl_reply(emit, ctx, json_pack("{s:o, s:o}", "tracker", tracker_json(I, l, now), "rollouts", ro), true);
}

int ug_ctl_info(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    ug_live *l = atomic_load(&I->live);
    return ug_ctl_reply(emit, ctx, json_pack("{s:s, s:s}", "state", I->state_dir, "policy", l->pol->path), true);
}

/* The census: staged HELLOs drained first, so a reading includes the
 * HELLOs of the last second; `top` (1..100, default 10) versions per window. */
/* Fleet mode: the fleet's census (every tracker's merged, fleet_census.c)
 * as {"trackers", "at", "refused", "hour", "day", "week"}; NULL before
 * the first merge, or outside fleet mode. */
static json_t *census_fleet(ug_inst *I, uint64_t now)
{
    static const char *const wn[UG_CENSUS_WINDOWS] = {"hour", "day", "week"};
    pthread_mutex_lock(&I->census_fleet_mu);
    json_t *o = I->census_fleet ? json_object() : NULL;
    if (o) {
        json_object_set_new(o, "trackers", json_integer(I->census_fleet_trackers));
        json_object_set_new(o, "at", json_integer((json_int_t)I->census_fleet_at));
        json_object_set_new(o, "refused", json_integer((json_int_t)I->census_fleet_refused));
        for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
            json_object_set_new(o, wn[w], json_integer((json_int_t)ug_census_total(I->census_fleet, now, w)));
    }
    pthread_mutex_unlock(&I->census_fleet_mu);
    return o;
}

int ug_ctl_census(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    json_t *t = json_object_get(req, "top");
    json_int_t top = t ? (json_is_integer(t) ? json_integer_value(t) : -1) : 10;
    if (top < 1 || top > 100)
        return ug_ctl_refuse(emit, ctx, "top: a whole number from 1 to 100");
    uint64_t now = ug_inst_now(I);
    ug_census_tick(I->census, now);
    json_t *o = ug_census_json(I->census, now, (size_t)top);
    if (!o)
        return ug_ctl_refuse(emit, ctx, "out of memory");
    json_object_set_new(o, "enabled", json_boolean(atomic_load(&I->live)->pol->census));
    json_t *f = census_fleet(I, now);
    if (f)
        json_object_set_new(o, "fleet", f);
    return ug_ctl_reply(emit, ctx, o, true);
}
