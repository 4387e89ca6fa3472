/* A policy bound to its running state: rollouts to store scopes, stages to quotas, and the state that outlives reloads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet.h"
#include "core/runtime.h"

/* ---- per-rollout and per-stage state, by name, across reloads ------------- */

static ug_waits *waits_new(unsigned n)
{
    ug_waits *w = aligned_alloc(64, n * sizeof *w);
    if (w)
        memset(w, 0, n * sizeof *w);
    return w;
}

/* The operator's durable word on a rollout: pause, halt (with why), hold. */
static void load_flags(ug_inst *I, ug_rollout_state *rt)
{
    char key[64], val[300];
    if (!I->store)
        return;
    snprintf(key, sizeof key, "pause:%s", rt->name);
    atomic_store(&rt->ctl_paused, ug_store_get(I->store, key, val, sizeof val) > 0);
    snprintf(key, sizeof key, "halt:%s", rt->name);
    long n = ug_store_get(I->store, key, val, sizeof val - 1);
    if (n > 8) {
        val[n] = 0;
        uint64_t at;
        memcpy(&at, val, 8);
        rt->halted_at = at;
        snprintf(rt->halted_why, sizeof rt->halted_why, "%.255s", val + 8);
        atomic_store(&rt->halted, true);
    }
    snprintf(key, sizeof key, "hold:%s", rt->name);
    uint64_t hold[2];
    if (ug_store_get(I->store, key, hold, sizeof hold) == (long)sizeof hold) {
        atomic_store(&rt->held_since, hold[0]);
        atomic_store(&rt->shift, hold[1]);
    }
}

static ug_rollout_state *rollout_state_get(ug_inst *I, const char *name)
{
    for (size_t i = 0; i < I->nrollout_states; i++)
        if (strcmp(I->rollout_states[i]->name, name) == 0)
            return I->rollout_states[i]->marked = true, I->rollout_states[i];
    ug_rollout_state **v = realloc(I->rollout_states, (I->nrollout_states + 1) * sizeof *v);
    if (!v)
        return NULL;
    I->rollout_states = v;
    ug_rollout_state *rt = calloc(1, sizeof *rt);
    if (!rt || !(rt->waits = waits_new(I->nworkers))) {
        free(rt);
        return NULL;
    }
    snprintf(rt->name, sizeof rt->name, "%s", name);
    (void)pthread_mutex_init(&rt->health.mu, NULL);
    load_flags(I, rt);
    rt->marked = true;
    I->rollout_states[I->nrollout_states++] = rt;
    return rt;
}

static ug_stage_state *stage_state_get(ug_inst *I, const char *rollout, const char *stage)
{
    for (size_t i = 0; i < I->nstage_states; i++)
        if (strcmp(I->stage_states[i]->rollout, rollout) == 0 && strcmp(I->stage_states[i]->stage, stage) == 0)
            return I->stage_states[i]->marked = true, I->stage_states[i];
    ug_stage_state **v = realloc(I->stage_states, (I->nstage_states + 1) * sizeof *v);
    if (!v)
        return NULL;
    I->stage_states = v;
    ug_stage_state *st = calloc(1, sizeof *st);
    if (!st || !(st->waits = waits_new(I->nworkers))) {
        free(st);
        return NULL;
    }
    snprintf(st->rollout, sizeof st->rollout, "%s", rollout);
    snprintf(st->stage, sizeof st->stage, "%s", stage);
    (void)pthread_mutex_init(&st->rate.mu, NULL);
    st->marked = true;
    I->stage_states[I->nstage_states++] = st;
    return st;
}

static void rollout_state_free(ug_rollout_state *rt)
{
    pthread_mutex_destroy(&rt->health.mu);
    free(rt->waits);
    free(rt);
}

static void stage_state_free(ug_stage_state *st)
{
    pthread_mutex_destroy(&st->rate.mu);
    free(st->waits);
    free(st);
}

void ug_state_unmark_all(ug_inst *I)
{
    pthread_mutex_lock(&I->reg_mu);
    for (size_t i = 0; i < I->nrollout_states; i++)
        I->rollout_states[i]->marked = false;
    for (size_t i = 0; i < I->nstage_states; i++)
        I->stage_states[i]->marked = false;
    pthread_mutex_unlock(&I->reg_mu);
}

/* After a swap, once no worker reads the old policy: what the new one does
 * not name goes (its durable flags stay in the store). */
void ug_state_sweep(ug_inst *I)
{
    pthread_mutex_lock(&I->reg_mu);
    size_t k = 0;
    for (size_t i = 0; i < I->nrollout_states; i++)
        I->rollout_states[i]->marked ? (void)(I->rollout_states[k++] = I->rollout_states[i]) : rollout_state_free(I->rollout_states[i]);
    I->nrollout_states = k;
    k = 0;
    for (size_t i = 0; i < I->nstage_states; i++)
        I->stage_states[i]->marked ? (void)(I->stage_states[k++] = I->stage_states[i]) : stage_state_free(I->stage_states[i]);
    I->nstage_states = k;
    pthread_mutex_unlock(&I->reg_mu);
}

void ug_runtime_free(ug_inst *I)
{
    for (size_t i = 0; i < I->nrollout_states; i++)
        rollout_state_free(I->rollout_states[i]);
    for (size_t i = 0; i < I->nstage_states; i++)
        stage_state_free(I->stage_states[i]);
    free(I->rollout_states);
    free(I->stage_states);
    I->rollout_states = NULL, I->stage_states = NULL, I->nrollout_states = I->nstage_states = 0;
}

/* ---- the live policy -------------------------------------------------------- */

void ug_live_free(ug_live *l)
{
    if (!l)
        return;
    for (size_t i = 0; l->ro && i < l->pol->nrollouts; i++)
        free(l->ro[i].stages);
    free(l->ro);
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
    if (!(lr->rt = rollout_state_get(I, r->name)) || !(lr->stages = calloc(r->nstages ? r->nstages : 1, sizeof *lr->stages)))
        return fail_at(l, "rollout", r->line, r->name, "out of memory", err, errcap), -1;
    if (I->store && !(lr->sc = ug_store_scope(I->store, r->name, r->to, why, sizeof why)))
        return fail_at(l, "rollout", r->line, r->name, why, err, errcap), -1;
    for (size_t j = 0; j < r->nstages; j++) {
        ug_live_stage *ls = &lr->stages[j];
        ls->s = &r->stages[j];
        if (!(ls->rt = stage_state_get(I, r->name, ls->s->name)))
            return fail_at(l, "stage", ls->s->line, ls->s->name, "out of memory", err, errcap), -1;
        if (lr->sc && !(ls->q = ug_scope_quota(lr->sc, ls->s->name, why, sizeof why)))
            return fail_at(l, "stage", ls->s->line, ls->s->name, why, err, errcap), -1;
    }
    return 0;
}

double ug_rate_in_force(const ug_inst *I, const ug_stage *s, double share)
{
    double r = s->has_rate ? s->rate : 0;
    if (s->has_fleet_rate) {
        double f = I->fleet ? share : s->fleet_rate;
        r = s->has_rate && r < f ? r : f;
    }
    return r;
}

/* Nothing can fail past binding: the new limits and rates go out. A rate
 * bucket keeps its tokens across reloads (a reload must not refill it). In
 * a fleet, a stage with a quota spends what the fleet lent it (its slots
 * stay across reloads), not a share. */
static void publish(ug_inst *I, ug_live *l)
{
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        for (size_t j = 0; j < lr->r->nstages; j++) {
            const ug_live_stage *ls = &lr->stages[j];
            const ug_stage *s = ls->s;
            if (ls->q && I->fleet && s->has_quota)
                ug_stage_quota_set_sourced(ls->q, ug_fleet_slots(I->fleet), s->quota);
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
    if (!(l->ro = calloc(pol->nrollouts ? pol->nrollouts : 1, sizeof *l->ro))) {
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
    l->gen = ++I->generations;
    return l;
fail:
    ug_live_free(l);
    return NULL;
}

const ug_live_rollout *ug_live_find(const ug_live *l, const char *name)
{
    for (size_t i = 0; i < l->pol->nrollouts; i++)
        if (strcmp(l->ro[i].r->name, name) == 0)
            return &l->ro[i];
    return NULL;
}

const ug_live_stage *ug_live_stage_by_id(const ug_live_rollout *lr, uint16_t id)
{
    for (size_t j = 0; j < lr->r->nstages; j++)
        if (lr->stages[j].q && ug_stage_quota_id(lr->stages[j].q) == id)
            return &lr->stages[j];
    return NULL;
}

uint32_t ug_live_percent(const ug_live_rollout *lr, const ug_stage *s, uint64_t now)
{
    if (!s->has_percent)
        return 10000;
    uint64_t shift = lr->rt ? atomic_load_explicit(&lr->rt->shift, memory_order_relaxed) : 0;
    uint64_t held = lr->rt ? atomic_load_explicit(&lr->rt->held_since, memory_order_relaxed) : 0;
    uint64_t t = held ? held : now;
    return ug_percent_at(&s->percent, (int64_t)t - (int64_t)shift);
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

void ug_live_expiry(ug_inst *I, const ug_live *l, uint64_t now, bool force)
{
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
