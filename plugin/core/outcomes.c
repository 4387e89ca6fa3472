/* What became of each offer: seen upgraded, rolled back, reported; automatic halts and held ramps. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/flags.h"
#include "core/gates.h"
#include "core/health.h"
#include "core/outcomes.h"
#include "core/sink.h"

/*
 * A grant's outcome is set by the latest observation or REPORT (protocol
 * rule 11), latest by the peer's own ts, so that a replayed REPORT cannot
 * undo a newer one; a rollback yields only to an install (the store's
 * ug_scope_put_outcome). Every change also feeds the rollout's health: automatic halts
 * (halt_when) are decided on the scope's counts as they change, in the
 * worker that changed them, which raises the in-memory halt at once; tick()
 * then stores it, logs it and writes the history (a worker must not wait on
 * disk or on the other workers). A crash in between loses nothing: counts
 * are durable, and tick() re-checks every rollout.
 * With a sink subscribed (core/sink.h), every change is also told to it,
 * and what it learns comes back (ug_outcome_learned), so the counts and
 * health are those of every tracker it joins; an automatic halt is told
 * from tick(), and the sink may keep ramp holds to the one tracker that
 * decides them for all.
 */

#define NOT_TAKEN_SCAN_EVERY 10 /* seconds between scans of pending offers */

/* Moves a uid's latest outcome into now's minute: out of the minute of the
 * outcome it replaces (before), if that minute is still in the ring. */
static void health_move(ug_health *h, const ug_grant_info *before, ug_outcome o, uint64_t now)
{
    uint64_t m = now / 60, mb = before ? before->outcome_at / 60 : 0;
    unsigned i = (unsigned)(m % 60), ib = (unsigned)(mb % 60);
    pthread_mutex_lock(&h->mu);
    if (before && before->outcome != UG_OUT_PENDING && before->outcome_at && h->minute[ib] == mb &&
        h->known[ib] > 0) {
        h->known[ib]--;
        h->failed[ib] -= ug_outcome_failed(before->outcome) && h->failed[ib] > 0;
    }
    if (h->minute[i] != m)
        h->minute[i] = m, h->failed[i] = 0, h->known[i] = 0;
    h->known[i]++;
    h->failed[i] += ug_outcome_failed(o);
    pthread_mutex_unlock(&h->mu);
}

/* Outcomes of the last hour: failed of known. */
static void health_hour(ug_health *h, uint64_t now, uint64_t *failed, uint64_t *known)
{
    uint64_t m = now / 60, f = 0, k = 0;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; i < 60; i++)
        if (h->minute[i] <= m && m - h->minute[i] < 60)
            f += h->failed[i], k += h->known[i];
    pthread_mutex_unlock(&h->mu);
    *failed = f;
    *known = k;
}

/* After a resume (rt->since), the counts halt_when reads follow each
 * change: the uid leaves the outcome it had if that was set since. */
static void since_move(ug_rollout_state *rt, const ug_scope *sc, const ug_grant_info *before, ug_outcome o,
                       uint64_t now)
{
    uint64_t since = atomic_load(&rt->since);
    if (!since || atomic_load(&rt->since_scope) != sc)
        return;
    if (before && before->outcome != UG_OUT_PENDING && before->outcome_at >= since &&
        atomic_load(&rt->since_out[before->outcome]) > 0)
        atomic_fetch_sub(&rt->since_out[before->outcome], 1);
    if (now >= since)
        atomic_fetch_add(&rt->since_out[o], 1);
}

void ug_outcome_progress(const ug_live_rollout *lr, ug_halt_progress *p)
{
    ug_rollout_state *rt = lr->rt;
    *p = (ug_halt_progress){.since = atomic_load(&rt->since)};
    uint64_t c[UG_OUT_COUNT_] = {0}, nt;
    if (lr->r->halt_hw.window || lr->r->halt_hw.last) { /* windowed: tick's last scan */
        p->counting = atomic_load(&rt->win_at) != 0;
        p->known = atomic_load(&rt->win_known);
        p->failed = atomic_load(&rt->win_failed);
        p->rolled_back = atomic_load(&rt->win_rolled_back);
        return;
    }
    if (p->since) {
        p->counting = lr->sc && atomic_load(&rt->since_scope) == lr->sc;
        for (unsigned o = 0; o < UG_OUT_COUNT_; o++)
            c[o] = atomic_load(&rt->since_out[o]);
        nt = atomic_load(&rt->since_not_taken);
    } else {
        p->counting = lr->sc != NULL;
        for (unsigned o = 0; lr->sc && o < UG_OUT_COUNT_; o++)
            c[o] = ug_scope_outcomes(lr->sc, (ug_outcome)o);
        nt = atomic_load(&rt->not_taken);
        nt = nt < c[UG_OUT_PENDING] ? nt : c[UG_OUT_PENDING]; /* nt is from the last scan */
    }
    p->known = nt;
    for (unsigned o = 1; o < UG_OUT_COUNT_; o++) {
        p->known += c[o];
        p->failed += ug_outcome_failed((ug_outcome)o) ? c[o] : 0;
    }
    p->rolled_back = c[UG_OUT_ROLLED_BACK];
}

/* halt_when on the known outcomes: every uid's latest one (not its
 * changes), since the last resume of an automatic halt if there was one. */
static bool should_halt(const ug_live_rollout *lr, char *why, size_t cap)
{
    const ug_rollout *r = lr->r;
    if (!r->has_halt_when || !lr->sc)
        return false;
    ug_halt_progress p;
    ug_outcome_progress(lr, &p);
    if (!p.counting || p.known == 0 || p.known < r->halt_min_outcomes)
        return false;
    const char *after = r->halt_hw.window || r->halt_hw.last ? " in halt_when's window"
                        : p.since                                ? " since the resume"
                                                                 : "";
    if (r->halt_failed_ppm && p.failed * 1000000 >= (uint64_t)r->halt_failed_ppm * p.known) {
        snprintf(why, cap, "failed share %.2f%% (%llu of %llu known outcomes%s) reached halt_when.failed %.4g%%",
                 100.0 * (double)p.failed / (double)p.known, (unsigned long long)p.failed,
                 (unsigned long long)p.known, after, r->halt_failed_ppm / 10000.0);
        return true;
    }
    if (r->halt_rolled_back_ppm && p.rolled_back * 1000000 >= (uint64_t)r->halt_rolled_back_ppm * p.known) {
        snprintf(why, cap,
                 "rolled-back share %.2f%% (%llu of %llu known outcomes%s) reached halt_when.rolled_back %.4g%%",
                 100.0 * (double)p.rolled_back / (double)p.known, (unsigned long long)p.rolled_back,
                 (unsigned long long)p.known, after, r->halt_rolled_back_ppm / 10000.0);
        return true;
    }
    return false;
}

/* Raises an automatic halt in memory, from any thread; tick() stores it. */
static void halt_now(ug_inst *I, const ug_live_rollout *lr, uint64_t now)
{
    char why[200];
    ug_rollout_state *rt = lr->rt;
    if (atomic_load(&rt->halted) || !should_halt(lr, why, sizeof why))
        return;
    ug_flags_raise_halt(I, rt, why, now);
}

/* The tally of the stage that granted the uid (gone from the policy: none). */
static ug_tally *tally_of(const ug_inst *I, const ug_live_rollout *lr, uint16_t stage, unsigned worker)
{
    const ug_live_stage *ls = ug_live_stage_by_id(lr, stage);
    return ls && ls->rt && worker < I->nworkers ? &ls->rt->tally[worker] : NULL;
}

static void changed(ug_inst *I, unsigned worker, const ug_live_rollout *lr, uint64_t uid,
                    const ug_grant_info *before, ug_outcome o, uint64_t now)
{
    ug_tally *t = tally_of(I, lr, before->stage, worker);
    if (t)
        atomic_fetch_add_explicit(&t->changes[o], 1, memory_order_relaxed);
    health_move(&lr->rt->health, before, o, now);
    since_move(lr->rt, lr->sc, before, o, now);
    halt_now(I, lr, now);
    if (I->sink && I->sink->outcome)
        I->sink->outcome(I->sink->ctx, lr->sc, uid, o);
}

void ug_outcome_learned(ug_inst *I, const ug_live_rollout *lr, ug_outcome o, uint64_t now)
{
    health_move(&lr->rt->health, NULL, o, now);
    since_move(lr->rt, lr->sc, NULL, o, now);
    halt_now(I, lr, now);
}

/* Sets uid's outcome in lr's scope under rule 11 (ug_scope_put_outcome);
 * whether it changed. dry: whether it would, judged on gi (uid's grant as
 * looked up; NULL: looked up here). */
static bool put(ug_inst *I, unsigned worker, const ug_live_rollout *lr, uint64_t uid, const ug_grant_info *gi,
                ug_outcome o, uint64_t ts, bool dry)
{
    uint64_t now = ug_inst_now(I);
    ug_outcome_put p = {.o = o, .at = (uint32_t)now, .ts = (uint32_t)ts};
    ug_grant_info before;
    if (dry && gi)
        return ug_outcome_may_replace(gi, &p);
    if (dry)
        return ug_scope_lookup(lr->sc, uid, &before) && ug_outcome_may_replace(&before, &p);
    if (ug_scope_put_outcome(lr->sc, worker, uid, &p, &before) != 1)
        return false;
    changed(I, worker, lr, uid, &before, o, now);
    return true;
}

bool ug_outcome_observe(ug_inst *I, unsigned worker, const ug_live_rollout *lr, uint64_t uid, const ug_version *v,
                        const ug_grant_info *gi, uint64_t ts, bool dry)
{
    ug_grant_info own;
    if (!gi) {
        gi = &own;
        if (!lr->sc || !ug_scope_lookup(lr->sc, uid, &own))
            return false;
    }
    if (!gi->found)
        return false;
    ug_outcome want;
    if (ug_version_cmp(v, &lr->r->rel.to) >= 0)
        want = UG_OUT_UPGRADED;
    else if (gi->outcome == UG_OUT_UPGRADED && ug_rollout_targets(lr->r, v))
        want = UG_OUT_ROLLED_BACK; /* the strongest crash signal there is */
    else
        return false;
    return put(I, worker, lr, uid, gi, want, ts, dry);
}

const ug_live_rollout *ug_outcome_untargeted(ug_inst *I, const ug_live *l, uint64_t uid, const ug_version *v)
{
    (void)I;
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        ug_grant_info gi;
        if (lr->sc && ug_version_cmp(v, &lr->r->rel.to) >= 0 && ug_scope_lookup(lr->sc, uid, &gi) &&
            gi.outcome != UG_OUT_UPGRADED)
            return lr;
    }
    return NULL;
}

static ug_outcome of_res(ug_res res)
{
    static const ug_outcome map[UG_RES_COUNT_] = {
        [UG_RES_INSTALLED] = UG_OUT_UPGRADED,
        [UG_RES_DECLINED] = UG_OUT_DECLINED,
        [UG_RES_DOWNLOAD_FAILED] = UG_OUT_DOWNLOAD_FAILED,
        [UG_RES_MISMATCH] = UG_OUT_MISMATCH,
        [UG_RES_INSTALL_FAILED] = UG_OUT_INSTALL_FAILED,
        [UG_RES_ROLLED_BACK] = UG_OUT_ROLLED_BACK,
    };
    return map[res];
}

int ug_outcome_report(ug_inst *I, unsigned worker, const ug_live *l, const ug_outcome_told *t, bool dry)
{
    ug_outcome want = of_res(t->res);
    int rc = -1;
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        ug_grant_info gi;
        if (!lr->sc || ug_version_cmp(t->to, &lr->r->rel.to) != 0 || !ug_scope_lookup(lr->sc, t->uid, &gi))
            continue;
        ug_tally *ta = dry ? NULL : tally_of(I, lr, gi.stage, worker);
        if (ta) /* verified by now */
            atomic_fetch_add_explicit(&ta->reports[t->res], 1, memory_order_relaxed);
        /* res 0 is an install whatever `ver` says (protocol.md): a peer
         * reports it before it restarts into `to` */
        rc = rc < 0 ? 0 : rc;
        if (!put(I, worker, lr, t->uid, NULL, want, t->ts, dry))
            continue;
        if (dry)
            return 1;
        rc = 1;
    }
    return rc;
}

/* ---- tick: store halts, count the not-taken, hold or release ramps --------- */

typedef struct {
    uint64_t before; /* granted before this instant: past the window */
    uint64_t since;  /* the resume halt_when counts from, or 0 */
    uint64_t n, since_n, since_out[UG_OUT_COUNT_];
} nt_count;

static void count_not_taken(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    (void)uid;
    nt_count *c = ctx;
    bool nt = gi->outcome == UG_OUT_PENDING && gi->at < c->before;
    c->n += nt;
    if (!c->since)
        return;
    c->since_n += nt && gi->at >= c->since;
    if (gi->outcome != UG_OUT_PENDING && gi->outcome_at >= c->since)
        c->since_out[gi->outcome]++;
}

/* The not-taken offers, and since a resume every uid's latest outcome:
 * what halt_when reads between changes. */
static void scan_rollout(const ug_live_rollout *lr, uint64_t now)
{
    ug_rollout_state *rt = lr->rt;
    nt_count c = {.before = now > lr->r->outcome_window ? now - lr->r->outcome_window : 0,
                  .since = atomic_load(&rt->since)};
    ug_scope_foreach(lr->sc, count_not_taken, &c);
    atomic_store(&rt->not_taken, c.n);
    ug_health_counts h;
    if ((lr->r->halt_hw.window || lr->r->halt_hw.last) && ug_health_judged(lr, &lr->r->halt_hw, c.since, now, &h) == 0) {
        atomic_store(&rt->win_known, h.known);
        atomic_store(&rt->win_failed, h.failed);
        atomic_store(&rt->win_rolled_back, h.rolled_back);
        atomic_store(&rt->win_at, now);
    }
    if (!c.since)
        return;
    atomic_store(&rt->since_scope, NULL);
    for (unsigned o = 0; o < UG_OUT_COUNT_; o++)
        atomic_store(&rt->since_out[o], c.since_out[o]);
    atomic_store(&rt->since_not_taken, c.since_n);
    atomic_store(&rt->since_scope, lr->sc);
}

/* hold_when_unhealthy: freeze the schedule while the last hour's failed
 * share is above half of halt_when.failed; shift it by the time held. An
 * sink may keep the decision to one tracker of those it joins, so that
 * every tracker runs the same percent. */
static void hold_tick(ug_inst *I, const ug_live_rollout *lr, uint64_t now)
{
    const ug_rollout *r = lr->r;
    ug_rollout_state *rt = lr->rt;
    if (!r->hold_when_unhealthy || !r->halt_failed_ppm ||
        (I->sink && I->sink->decides_holds && !I->sink->decides_holds(I->sink->ctx)))
        return;
    uint64_t f, k;
    health_hour(&rt->health, now, &f, &k);
    bool unhealthy = k > 0 && f * 2 * 1000000 > (uint64_t)r->halt_failed_ppm * k;
    uint64_t held = atomic_load(&rt->held_since);
    char line[300];
    if (unhealthy && !held) {
        atomic_store(&rt->held_since, now);
        snprintf(line, sizeof line, "hold ramp of rollout %s: last hour failed %llu of %llu outcomes", r->name,
                 (unsigned long long)f, (unsigned long long)k);
    } else if (!unhealthy && held) {
        atomic_store(&rt->shift, atomic_load(&rt->shift) + (now - held));
        atomic_store(&rt->held_since, 0);
        snprintf(line, sizeof line, "resume ramp of rollout %s after %llu s held", r->name,
                 (unsigned long long)(now - held));
    } else {
        return;
    }
    ug_flags_store_hold(I, rt);
    if (I->sink && I->sink->hold)
        I->sink->hold(I->sink->ctx, rt->name, held, atomic_load(&rt->held_since), atomic_load(&rt->shift));
    ug_logf(I, UG_LOG_WARN, "%s", line);
    ug_event e = {.by = {.kind = UG_ACTOR_AUTOMATIC}, .action = held ? "run_ramp" : "hold_ramp", .rollout = r->name,
                  .what = line};
    (void)ug_history(I, now, &e);
}

void ug_outcome_tick(ug_inst *I, uint64_t now)
{
    ug_live *l = atomic_load(&I->live); /* tick is never concurrent with reload */
    bool scan = now >= I->last_scan + NOT_TAKEN_SCAN_EVERY;
    if (scan)
        I->last_scan = now;
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        ug_rollout_state *rt = lr->rt;
        bool recount = atomic_load(&rt->since) && atomic_load(&rt->since_scope) != lr->sc;
        if ((scan || recount) && lr->sc && lr->r->has_halt_when) /* only halt_when reads the counts */
            scan_rollout(lr, now);
        halt_now(I, lr, now);
        if (ug_flags_store_raised(I, rt, now) && I->sink && I->sink->flag) /* everyone stops */
            I->sink->flag(I->sink->ctx, rt->name, UG_FLAG_HALT, rt->halted_why, rt->halted_at, 0);
        hold_tick(I, lr, now);
        ug_gates_tick(I, lr, now);
    }
}
