/* What became of each offer: seen upgraded, rolled back, reported; automatic halts and held ramps. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/flags.h"
#include "core/outcomes.h"
#include "core/sink.h"

/*
 * A grant's outcome is set by the latest observation or REPORT (protocol
 * rule 11). Every change also feeds the rollout's health: automatic halts
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

static bool is_failure(ug_outcome o)
{
    return o == UG_OUT_ROLLED_BACK || o == UG_OUT_DOWNLOAD_FAILED || o == UG_OUT_MISMATCH || o == UG_OUT_INSTALL_FAILED;
}

static void health_add(ug_health *h, uint64_t now, bool failed)
{
    uint64_t m = now / 60;
    unsigned i = (unsigned)(m % 60);
    pthread_mutex_lock(&h->mu);
    if (h->minute[i] != m)
        h->minute[i] = m, h->failed[i] = 0, h->known[i] = 0;
    h->known[i]++;
    h->failed[i] += failed;
    pthread_mutex_unlock(&h->mu);
}

/* Outcome events of the last hour: failed of known. */
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

/* halt_when on the scope's counts: the known outcomes are all but the
 * pending ones still inside the outcome window. */
static bool should_halt(const ug_live_rollout *lr, char *why, size_t cap)
{
    const ug_rollout *r = lr->r;
    if (!r->has_halt_when || !lr->sc)
        return false;
    uint64_t total = 0, failed = 0;
    for (unsigned o = 0; o < UG_OUT_COUNT_; o++) {
        uint64_t n = ug_scope_outcomes(lr->sc, (ug_outcome)o);
        total += n;
        failed += is_failure((ug_outcome)o) ? n : 0;
    }
    uint64_t rb = ug_scope_outcomes(lr->sc, UG_OUT_ROLLED_BACK);
    uint64_t pending = ug_scope_outcomes(lr->sc, UG_OUT_PENDING), nt = atomic_load(&lr->rt->not_taken);
    uint64_t young = pending > nt ? pending - nt : 0; /* nt is from the last scan */
    uint64_t known = total - young;
    if (known == 0 || known < r->halt_min_outcomes)
        return false;
    if (r->halt_failed_ppm && failed * 1000000 >= (uint64_t)r->halt_failed_ppm * known) {
        snprintf(why, cap, "failed share %.2f%% (%llu of %llu known outcomes) reached halt_when.failed %.4g%%",
                 100.0 * (double)failed / (double)known, (unsigned long long)failed, (unsigned long long)known,
                 r->halt_failed_ppm / 10000.0);
        return true;
    }
    if (r->halt_rolled_back_ppm && rb * 1000000 >= (uint64_t)r->halt_rolled_back_ppm * known) {
        snprintf(why, cap, "rolled-back share %.2f%% (%llu of %llu known outcomes) reached halt_when.rolled_back %.4g%%",
                 100.0 * (double)rb / (double)known, (unsigned long long)rb, (unsigned long long)known,
                 r->halt_rolled_back_ppm / 10000.0);
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

static void changed(ug_inst *I, const ug_live_rollout *lr, uint64_t uid, ug_outcome o, uint64_t now)
{
    health_add(&lr->rt->health, now, is_failure(o));
    halt_now(I, lr, now);
    if (I->sink && I->sink->outcome)
        I->sink->outcome(I->sink->ctx, lr->sc, uid, o);
}

void ug_outcome_learned(ug_inst *I, const ug_live_rollout *lr, ug_outcome o, uint64_t now)
{
    health_add(&lr->rt->health, now, is_failure(o));
    halt_now(I, lr, now);
}

bool ug_outcome_observe(ug_inst *I, unsigned worker, const ug_live_rollout *lr, uint64_t uid, const ug_version *v,
                        const ug_grant_info *gi, bool dry)
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
    if (gi->outcome == want)
        return false;
    if (dry)
        return true;
    if (ug_scope_set_outcome(lr->sc, worker, uid, want, NULL) != 1)
        return false;
    changed(I, lr, uid, want, ug_inst_now(I));
    return true;
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

int ug_outcome_report(ug_inst *I, unsigned worker, const ug_live *l, uint64_t uid, const ug_version *to, ug_res res,
                      bool dry)
{
    ug_outcome want = of_res(res);
    int rc = -1;
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        ug_grant_info gi;
        if (!lr->sc || ug_version_cmp(to, &lr->r->rel.to) != 0 || !ug_scope_lookup(lr->sc, uid, &gi))
            continue;
        if (gi.outcome == want) {
            rc = rc < 0 ? 0 : rc;
            continue;
        }
        if (dry)
            return 1;
        if (ug_scope_set_outcome(lr->sc, worker, uid, want, NULL) == 1) {
            changed(I, lr, uid, want, ug_inst_now(I));
            rc = 1;
        }
    }
    return rc;
}

/* ---- tick: store halts, count the not-taken, hold or release ramps --------- */

typedef struct {
    uint64_t before; /* granted before this instant: past the window */
    uint64_t n;
} nt_count;

static void count_not_taken(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    (void)uid;
    nt_count *c = ctx;
    c->n += gi->outcome == UG_OUT_PENDING && gi->at < c->before;
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
    ug_history(I, now, line);
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
        if (scan && lr->sc && lr->r->has_halt_when) { /* only halt_when reads the count */
            nt_count c = {.before = now > lr->r->outcome_window ? now - lr->r->outcome_window : 0};
            ug_scope_foreach(lr->sc, count_not_taken, &c);
            atomic_store(&rt->not_taken, c.n);
        }
        halt_now(I, lr, now);
        if (ug_flags_store_raised(I, rt, now) && I->sink && I->sink->flag) /* everyone stops */
            I->sink->flag(I->sink->ctx, rt->name, UG_FLAG_HALT, rt->halted_why, rt->halted_at, 0);
        hold_tick(I, lr, now);
    }
}
