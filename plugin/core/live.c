/* A policy bound to its running state: rollouts to store scopes, stages to quotas, and the state that outlives reloads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "core/gates.h"
#include "core/live.h"
#include "core/memo.h"
#include "core/replies_v2.h"

void ug_live_free(ug_live *l)
{
    if (!l)
        return;
    for (size_t i = 0; l->ro && i < l->pol->nrollouts; i++)
        free(l->ro[i].stages);
    free(l->ro);
    ug_v2_tokens_free(l->tok);
    ug_policy_free(l->pol);
    free(l);
}

/* A store error, tied to the policy line that asked for it. */
static ug_live *fail_at(ug_live *l, const char *what, size_t line, const char *name, const char *why, char *err,
                        size_t errcap)
{
    snprintf(err, errcap, "%s:%zu: %s %s: %s", l->pol->path, line, what, name, why);
    return NULL;
}

static int bind_rollout(ug_inst *I, ug_live *l, ug_live_rollout *lr, char *err, size_t errcap)
{
    const ug_rollout *r = lr->r;
    char why[UG_ERR_MAX];
    if (!(lr->rt = ug_state_rollout(I, r->name)) ||
        !(lr->stages = calloc(r->nstages ? r->nstages : 1, sizeof *lr->stages)))
        return fail_at(l, "rollout", r->line, r->name, "out of memory", err, errcap), -1;
    if (I->store && !(lr->sc = ug_store_scope(I->store, r->name, r->to, why, sizeof why)))
        return fail_at(l, "rollout", r->line, r->name, why, err, errcap), -1;
    for (size_t j = 0; j < r->nstages; j++) {
        ug_live_stage *ls = &lr->stages[j];
        ls->s = &r->stages[j];
        if (!(ls->rt = ug_state_stage(I, r->name, ls->s->name)))
            return fail_at(l, "stage", ls->s->line, ls->s->name, "out of memory", err, errcap), -1;
        ug_state_stage_release(I, ls->rt, r->to);
        if (lr->sc && !(ls->q = ug_scope_quota(lr->sc, ls->s->name, why, sizeof why)))
            return fail_at(l, "stage", ls->s->line, ls->s->name, why, err, errcap), -1;
        if (ls->s->has_percent && ls->s->percent.gated)
            ug_gates_bind(I, lr, ls);
    }
    return 0;
}

double ug_rate_in_force(const ug_inst *I, const ug_stage *s, double share)
{
    double r = s->has_rate ? s->rate : 0;
    if (s->has_fleet_rate) {
        double f = I->slots ? share : s->fleet_rate; /* without a slot source, all of it is ours */
        r = s->has_rate && r < f ? r : f;
    }
    return r;
}

/* Nothing can fail past binding: the new limits and rates go out. A rate
 * bucket keeps its tokens across reloads (a reload must not refill it).
 * With a slot source (I->slots), a stage with a quota spends what it lent
 * (its slots stay across reloads), not a share. */
static void publish(ug_inst *I, ug_live *l)
{
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        for (size_t j = 0; j < lr->r->nstages; j++) {
            const ug_live_stage *ls = &lr->stages[j];
            const ug_stage *s = ls->s;
            if (ls->q && I->slots && s->has_quota)
                ug_stage_quota_set_sourced(ls->q, I->slots, s->quota);
            else if (ls->q)
                ug_stage_quota_set_limit(ls->q, s->has_quota ? ug_policy_share(l->pol, s->quota) : UG_QUOTA_UNLIMITED);
            pthread_mutex_lock(&ls->rt->rate.mu);
            ls->rt->rate.rate = ug_stage_rated(s) ? ug_rate_in_force(I, s, ls->rt->rate.share) : 0;
            pthread_mutex_unlock(&ls->rt->rate.mu);
        }
    }
}

ug_live *ug_live_build(ug_inst *I, ug_policy *pol, char *err, size_t errcap)
{
    ug_live *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errcap, "%s: out of memory", pol->path);
        ug_policy_free(pol);
        return NULL;
    }
    l->pol = pol;
    if (!(l->ro = calloc(pol->nrollouts ? pol->nrollouts : 1, sizeof *l->ro)) ||
        (pol->v2 && !(l->tok = ug_v2_tokens_new(I->nworkers)))) {
        snprintf(err, errcap, "%s: out of memory", pol->path);
        goto fail;
    }
    pthread_mutex_lock(&I->reg_mu);
    int rc = 0;
    for (size_t i = 0; i < pol->nrollouts && rc == 0; i++) {
        l->ro[i].r = &pol->rollouts[i];
        rc = bind_rollout(I, l, &l->ro[i], err, errcap);
    }
    pthread_mutex_unlock(&I->reg_mu);
    if (rc != 0)
        goto fail;
    publish(I, l);
    ug_memo_number(l);
    l->gen = ++I->generations;
    return l;
fail:
    ug_live_free(l);
    return NULL;
}

void ug_live_lock(ug_inst *I)
{
    pthread_mutex_lock(&I->live_mu);
}

void ug_live_unlock(ug_inst *I)
{
    pthread_mutex_unlock(&I->live_mu);
}

const ug_live_rollout *ug_live_find(const ug_live *l, const char *name)
{
    for (size_t i = 0; i < l->pol->nrollouts; i++)
        if (strcmp(l->ro[i].r->name, name) == 0)
            return &l->ro[i];
    return NULL;
}

const ug_live_stage *ug_live_stage_named(const ug_live_rollout *lr, const char *name)
{
    for (size_t j = 0; j < lr->r->nstages; j++)
        if (strcmp(lr->stages[j].s->name, name) == 0)
            return &lr->stages[j];
    return NULL;
}

const ug_live_stage *ug_live_stage_by_id(const ug_live_rollout *lr, uint16_t id)
{
    for (size_t j = 0; j < lr->r->nstages; j++)
        if (lr->stages[j].q && ug_stage_quota_id(lr->stages[j].q) == id)
            return &lr->stages[j];
    return NULL;
}

/* The live stage of s, a stage of lr's policy rollout. */
static const ug_live_stage *live_stage(const ug_live_rollout *lr, const ug_stage *s)
{
    size_t j = (size_t)(s - lr->r->stages);
    return lr->stages && j < lr->r->nstages ? &lr->stages[j] : NULL;
}

uint32_t ug_live_percent(const ug_live_rollout *lr, const ug_stage *s, uint64_t now)
{
    if (!s->has_percent)
        return 10000;
    uint64_t shift = lr->rt ? atomic_load_explicit(&lr->rt->shift, memory_order_relaxed) : 0;
    uint64_t held = lr->rt ? atomic_load_explicit(&lr->rt->held_since, memory_order_relaxed) : 0;
    uint64_t t = held ? held : now;
    const ug_live_stage *ls = live_stage(lr, s);
    if (s->percent.gated && ls && ls->rt)
        return ug_gates_percent(ls, (int64_t)t - (int64_t)shift);
    return ug_percent_at(&s->percent, (int64_t)t - (int64_t)shift);
}

bool ug_live_next_step(const ug_live_rollout *lr, const ug_stage *s, uint64_t now, uint64_t *at, uint32_t *bp)
{
    if (!s->has_percent || (lr->rt && atomic_load_explicit(&lr->rt->held_since, memory_order_relaxed)))
        return false;
    const ug_percent *pc = &s->percent;
    int64_t shift = lr->rt ? (int64_t)atomic_load_explicit(&lr->rt->shift, memory_order_relaxed) : 0;
    const ug_live_stage *ls = live_stage(lr, s);
    if (pc->gated && ls && ls->rt) { /* the next step waits for its gate once due: no time to tell */
        shift += (int64_t)atomic_load_explicit(&ls->rt->gate.shift, memory_order_relaxed);
        if (ug_percent_index(pc, (int64_t)now - shift) >= (long)atomic_load(&ls->rt->gate.open_to))
            return false;
    }
    int64_t t = (int64_t)now - shift, when = 0;
    if (pc->kind == UG_PCT_STEPS) {
        for (size_t i = 0; i < pc->nsteps && !when; i++)
            if (pc->steps[i].at > t)
                when = pc->steps[i].at, *bp = pc->steps[i].bp;
    } else if (pc->kind == UG_PCT_LINEAR && t < pc->end) { /* linear: where it ends */
        when = t < pc->start ? pc->start : pc->end;
        *bp = t < pc->start ? pc->from_bp : pc->to_bp;
    }
    if (!when)
        return false;
    *at = (uint64_t)(when + shift);
    return true;
}

bool ug_live_stopped(const ug_live_rollout *lr, uint64_t now)
{
    /* an expired manifest would fail every peer's check: offer nothing */
    if (lr->r->paused || lr->r->rel.exp <= now)
        return true;
    return lr->rt && (atomic_load_explicit(&lr->rt->ctl_paused, memory_order_acquire) ||
                      atomic_load_explicit(&lr->rt->halted, memory_order_acquire));
}

#define EXPIRY_NOTICE (7 * 86400u)
#define V2_NOTICE (14 * 86400u) /* a certificate lives 90 days at most: renew with two weeks to spare */

/* The hint certificate and the keyring served: a warning within two
 * weeks of their expiry (at load, then daily), an error once expired. */
static void v2_expiry(ug_inst *I, const ug_policy_v2 *k, uint64_t now, bool force)
{
    const char *what[2] = {"hint certificate", "keyring"}, *path[2] = {k->cert_path, k->keyring_path};
    uint64_t exp[2] = {k->keys.cert.exp, k->keys.kr.exp};
    uint64_t first = exp[0] < exp[1] ? exp[0] : exp[1];
    int i = exp[0] <= exp[1] ? 0 : 1;
    if (first <= now) {
        if (I->v2_logged != first)
            ug_logf(I, UG_LOG_ERROR, "%s %s expired: version 2 peers get no HINT and no token until it is renewed",
                    what[i], path[i]);
        I->v2_logged = first;
    } else if (first - now <= V2_NOTICE && (force || now - I->v2_warned >= 86400)) {
        ug_logf(I, UG_LOG_WARN, "%s %s expires in %llu h: renew it (docs/keys.md)", what[i], path[i],
                (unsigned long long)((first - now) / 3600));
        I->v2_warned = now;
    }
}

void ug_live_expiry(ug_inst *I, const ug_live *l, uint64_t now, bool force)
{
    if (l->pol->v2)
        v2_expiry(I, l->pol->v2, now, force);
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_rollout *r = l->ro[i].r;
        ug_rollout_state *rt = l->ro[i].rt;
        uint64_t exp = r->rel.exp;
        if (exp <= now) {
            if (rt->expiry_logged != exp)
                ug_logf(I, UG_LOG_ERROR, "rollout %s: release %s manifest %s expired; its peers are told to wait",
                        r->name, r->to, r->release_path);
            rt->expiry_logged = exp;
        } else if (exp - now <= EXPIRY_NOTICE && (force || now - rt->expiry_warned >= 86400)) {
            ug_logf(I, UG_LOG_WARN, "rollout %s: release %s manifest %s expires in %llu h; sign a new one",
                    r->name, r->to, r->release_path, (unsigned long long)((exp - now) / 3600));
            rt->expiry_warned = now;
        }
    }
}
