/* Fleet mode's leases: blocks of slots that follow demand, given back when idle, at a clean stop or when forgotten; and the once-a-second work (counts, demand, fleet_rate shares, the leader). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_impl.h"

/* ---- leases ---------------------------------------------------------------------------- */

/* The largest block: fleet.lease, else an eighth of the quota. A bigger
 * block follows a busy tracker's demand closer; a tracker that dies holds
 * up to two blocks until it returns or is forgotten. */
static uint64_t lease_cap(const ug_fleet *F, const fstage *t)
{
    if (F->conf.lease)
        return F->conf.lease;
    return t->quota / 8 ? t->quota / 8 : 1;
}

static int index_stage(ug_fleet *F, fstage *t)
{
    if (t->indexed)
        return 0;
    char key[UG_FLEET_KEY_MAX];
    ug_fleet_key_fleet(key, "leases", F->conf.tracker);
    fr_args_reset(&F->a);
    fr_arg(&F->a, "SADD");
    fr_arg(&F->a, key);
    fr_arg(&F->a, t->qkey);
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    t->indexed = true;
    return 0;
}

static void cache_counts(ug_fleet *F, fstage *t, long long n, long long leased)
{
    pthread_mutex_lock(&F->qmu);
    t->r_n = (uint64_t)n;
    t->r_leased = (uint64_t)leased;
    pthread_mutex_unlock(&F->qmu);
}

static int lease_stage(ug_fleet *F, fstage *t, ug_stage_quota *q, int64_t now)
{
    uint64_t rem = ug_stage_quota_remaining(q);
    if (rem == 0 && t->want < lease_cap(F, t))
        t->want = t->want * 2 < lease_cap(F, t) ? t->want * 2 : lease_cap(F, t); /* it ran dry: bigger blocks */
    if (rem > t->want / 2 || now < t->next_lease_ms)
        return 0;
    if (index_stage(F, t) != 0)
        return -1;
    fr_args_reset(&F->a);
    fr_arg(&F->a, t->qkey);
    fr_arg(&F->a, F->conf.tracker);
    fr_argu(&F->a, t->want);
    fr_argu(&F->a, t->quota);
    redisReply *rep = fl_script(F, FR_LEASE, 1);
    long long give = 0, n = 0, leased = 0;
    bool ok = rep && fr_int_at(rep, 0, &give) && fr_int_at(rep, 1, &n) && fr_int_at(rep, 2, &leased);
    if (rep)
        freeReplyObject(rep);
    if (!ok)
        return -1;
    if (give > 0 && fr_replicated(&F->r) != 0)
        return -2; /* counted there, not held here: the next settle takes it back */
    if (give > 0)
        ug_stage_quota_add_slots(q, (uint64_t)give);
    bool more = (uint64_t)give == t->want;
    ug_stage_quota_set_more(q, more);
    t->next_lease_ms = more ? 0 : now + 1000; /* the fleet is spent: ask once a second */
    cache_counts(F, t, n, leased);
    return 0;
}

/* Takes every unused slot of t and owes the fleet only its untold grants
 * (plus keep slots put back). The slots taken. */
static uint64_t give_back(ug_fleet *F, fstage *t, ug_stage_quota *q, uint64_t keep)
{
    ug_slot_tally ta;
    ug_stage_quota_tally(q, true, &ta);
    keep = keep < ta.unused ? keep : ta.unused;
    if (fl_settle(F, t, ta.unpublished + keep) != 0)
        return ta.unused; /* in doubt: nothing held here, the next settle is exact */
    if (keep)
        ug_stage_quota_add_slots(q, keep);
    t->want = 1;
    return ta.unused - keep;
}

void fl_leases(ug_fleet *F, const ug_live *l, int64_t now)
{
    if (fl_fenced(F))
        return;
    for (size_t i = 0; i < F->nsc && fl_up(F); i++) {
        fscope *s = &F->sc[i];
        const ug_live_rollout *lr = s->ready ? fl_rollout_of(l, s) : NULL;
        for (size_t j = 0; lr && j < s->nst && fl_up(F); j++) {
            fstage *t = &s->st[j];
            ug_stage_quota *q = t->has_quota ? fl_stage_q(lr, t) : NULL;
            if (q && t->requota && ug_stage_quota_is_sourced(q)) {
                give_back(F, t, q, 0); /* a lowered quota is not spent from older leases */
                t->requota = false;
            }
            if (q && ug_stage_quota_is_sourced(q) && fl_up(F) && lease_stage(F, t, q, now) == -2)
                s->ready = false;
        }
    }
}

static uint64_t give_all_back(ug_fleet *F, const ug_live *l)
{
    uint64_t total = 0;
    for (size_t i = 0; i < F->nsc; i++) {
        fscope *s = &F->sc[i];
        const ug_live_rollout *lr = fl_rollout_of(l, s);
        for (size_t j = 0; lr && j < s->nst; j++) {
            ug_stage_quota *q = fl_stage_q(lr, &s->st[j]);
            if (q && ug_stage_quota_is_sourced(q))
                total += give_back(F, &s->st[j], q, 0);
        }
    }
    return total;
}

uint64_t fl_return_all(ug_fleet *F, const ug_live *l)
{
    return give_all_back(F, l);
}

void fl_forgotten(ug_fleet *F, const ug_live *l)
{
    uint64_t dropped = give_all_back(F, l);
    fl_log(F, UG_LOG_WARN,
           "an operator forgot this tracker (upgate-ctl fleet forget %s): dropped its %llu unused slots; grants it "
           "made and had not told are told now and count, even past a quota",
           F->conf.tracker, (unsigned long long)dropped);
}

/* ---- once a second: counts, demand, idle leases, rates, the stream's trim, leader ---- */

static int stage_counts(ug_fleet *F, fstage *t)
{
    char lf[UG_TRACKER_MAX + 3], pf[UG_TRACKER_MAX + 3];
    snprintf(lf, sizeof lf, "l:%s", F->conf.tracker);
    snprintf(pf, sizeof pf, "p:%s", F->conf.tracker);
    fr_args_reset(&F->a);
    fr_arg(&F->a, "HMGET");
    fr_arg(&F->a, t->qkey);
    fr_arg(&F->a, "n");
    fr_arg(&F->a, "leased");
    fr_arg(&F->a, lf);
    fr_arg(&F->a, pf);
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    long long v[4] = {0};
    for (size_t i = 0; i < 4; i++)
        if (!fr_int_at(rep, i, &v[i]))
            v[i] = 0;
    freeReplyObject(rep);
    pthread_mutex_lock(&F->qmu);
    t->r_n = (uint64_t)v[0], t->r_leased = (uint64_t)v[1], t->r_mine = (uint64_t)v[2], t->r_told = (uint64_t)v[3];
    t->known = true;
    pthread_mutex_unlock(&F->qmu);
    return 0;
}

static uint64_t rate_waits(const ug_inst *I, const ug_live_stage *ls)
{
    uint64_t v = 0;
    for (unsigned w = 0; w < I->nworkers; w++)
        v += atomic_load_explicit(&ls->rt->waits[w].why[UG_WHY_RATE], memory_order_relaxed);
    return v;
}

static const ug_live_stage *lstage_of(const ug_live_rollout *lr, const fstage *t)
{
    for (size_t j = 0; j < lr->r->nstages; j++)
        if (strcmp(lr->stages[j].s->name, t->name) == 0)
            return &lr->stages[j];
    return NULL;
}

/* Doorman's proportional share of fleet_rate, by the demand of the last
 * seconds: new offers made plus offers the rate turned away. */
static int rate_share(ug_fleet *F, fstage *t, const ug_live_stage *ls)
{
    fr_args_reset(&F->a);
    fr_arg(&F->a, t->rkey);
    fr_arg(&F->a, F->conf.tracker);
    fr_argf(&F->a, t->demand);
    fr_argu(&F->a, RATE_TTL_S);
    fr_argf(&F->a, t->fleet_rate);
    redisReply *rep = fl_script(F, FR_RATE, 1);
    if (!rep)
        return -1;
    double share = -1;
    long long active = 0;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && rep->element[0]->type == REDIS_REPLY_STRING) {
        char *end;
        share = strtod(rep->element[0]->str, &end);
        if (*end || !(share >= 0) || share > t->fleet_rate)
            share = -1;
        fr_int_at(rep, 1, &active);
    }
    freeReplyObject(rep);
    if (share < 0)
        return 0;
    pthread_mutex_lock(&ls->rt->rate.mu);
    ls->rt->rate.share = share;
    ls->rt->rate.rate = ug_rate_in_force(F->I, ls->s, share);
    pthread_mutex_unlock(&ls->rt->rate.mu);
    pthread_mutex_lock(&F->qmu);
    t->share = share;
    t->rate_trackers = active;
    pthread_mutex_unlock(&F->qmu);
    return 0;
}

static void second_stage(ug_fleet *F, fstage *t, const ug_live_rollout *lr, int64_t now)
{
    const ug_live_stage *ls = lstage_of(lr, t);
    if (!ls || !ls->q)
        return;
    uint64_t n = ug_stage_quota_count(ls->q), w = rate_waits(F->I, ls);
    if (!t->primed)
        t->last_n = n, t->last_waits = w, t->primed = true;
    uint64_t d = (n - t->last_n) + (w - t->last_waits);
    if (n != t->last_n)
        t->last_grant_ms = now;
    t->last_n = n, t->last_waits = w;
    t->demand = t->demand / 2 + (double)d / 2;
    if (t->has_quota && ug_stage_quota_is_sourced(ls->q)) {
        /* half a second of demand (five passes): refilled at half of it */
        uint64_t cap = lease_cap(F, t), want = (uint64_t)ceil(t->demand / 2) + 1;
        t->want = want < cap ? want : cap;
        if (now - t->last_grant_ms >= IDLE_MS && ug_stage_quota_remaining(ls->q) > 1 && !fl_fenced(F))
            give_back(F, t, ls->q, 1); /* idle: another tracker may need them */
    }
    if (fl_up(F))
        stage_counts(F, t);
    if (fl_up(F) && t->has_fleet_rate)
        rate_share(F, t, ls);
}

/* The registry: who is alive, and who leads ramp holds. */
static int registry(ug_fleet *F)
{
    char key[UG_FLEET_KEY_MAX];
    ug_fleet_key_fleet(key, "trackers", NULL);
    fr_args_reset(&F->a);
    fr_arg(&F->a, "HGETALL");
    fr_arg(&F->a, key);
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    uint64_t now = fl_redis_now(F);
    const char *leader = NULL;
    long long up = 0;
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
        const redisReply *k = rep->element[i], *v = rep->element[i + 1];
        uint64_t ts;
        bool alive;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            ug_fleet_row_parse(v->str, v->len, &ts, &alive) != 0 || !alive || now > ts + LEADER_AGE_S)
            continue;
        up++;
        if (!leader || strcmp(k->str, leader) < 0)
            leader = k->str;
    }
    bool leads = leader && strcmp(leader, F->conf.tracker) == 0;
    freeReplyObject(rep);
    pthread_mutex_lock(&F->qmu);
    F->leads = leads;
    F->trackers_up = up;
    pthread_mutex_unlock(&F->qmu);
    return 0;
}

void fl_each_second(ug_fleet *F, const ug_live *l, int64_t now)
{
    for (size_t i = 0; i < F->nsc && fl_up(F); i++) {
        fscope *s = &F->sc[i];
        const ug_live_rollout *lr = s->ready ? fl_rollout_of(l, s) : NULL;
        for (size_t j = 0; lr && j < s->nst && fl_up(F); j++)
            second_stage(F, &s->st[j], lr, now);
        if (lr && fl_up(F))
            fl_check_gap(F, s);
    }
    if (fl_up(F))
        registry(F);
}
