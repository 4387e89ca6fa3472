/* Fleet mode's leases: slots for the peers held back and for the demand, the last ones one by one, parked and returned when idle, given back at a clean stop or when forgotten; and the once-a-second work (counts, demand, fleet_rate shares, the leader). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_impl.h"

/* ---- leases ---------------------------------------------------------------------------- */

/*
 * A tracker holds only slots it may spend (its shards) or has parked (it
 * may spend them only after UNPARK, a round trip): Redis counts both in
 * l:TRACKER and the parked ones in r:TRACKER, and `fleet forget` writes off
 * only r:TRACKER, what the tracker cannot have spent (docs/fleet.md).
 *  - A peer that finds a stage empty while the fleet can lend is held back
 *    (UG_SHORT_HOLD): its worker wakes this thread, which leases at once;
 *    the peer's resend is served from the new slots.
 *  - A lease brings what the held peers want plus a block that follows the
 *    demand (half a second of it, at most `lease`); the first block after
 *    a quiet spell is a share of what is left among the live trackers.
 *  - The last slots (fewer than the live trackers' largest blocks) come
 *    one for each peer held back, and nothing more: none sits idle here.
 *  - A stage quiet for PARK_MS parks its unused slots (or, the fleet being
 *    short, returns them); quiet for IDLE_MS it returns everything it holds.
 */

/* The largest block: fleet.lease, else an eighth of the quota. */
static uint64_t lease_cap(const ug_fleet *F, const fstage *t)
{
    if (F->conf.lease)
        return F->conf.lease;
    return t->quota / 8 ? t->quota / 8 : 1;
}

/* Trackers seen alive (the registry, once a second): at least this one. */
static uint64_t live(const ug_fleet *F)
{
    return F->trackers_up > 0 ? (uint64_t)F->trackers_up : 1; /* written by this thread only */
}

static bool scarce(const ug_fleet *F, const fstage *t)
{
    return t->avail < live(F) * lease_cap(F, t);
}

/* The block beyond the held peers: the demand's; the first lease after a
 * quiet spell brings a share of what can be lent among the live trackers,
 * and until the demand is measured (a second) the next ones bring only
 * what the held peers want. */
static uint64_t block_of(const ug_fleet *F, const fstage *t)
{
    uint64_t cap = lease_cap(F, t), b = t->block;
    if (!b && !t->spell) {
        b = t->avail / (2 * live(F));
        b = b ? b : 1;
    }
    return b < cap ? b : cap;
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

/* A reply no script can give: said once, and no slot is ever leased again
 * by this process (a proxy that rewrote one reply may rewrite the next). */
static void lease_fault(ug_fleet *F, const fstage *t, const char *script, const redisReply *rep, uint64_t want)
{
    long long v[3] = {-1, -1, -1};
    for (size_t i = 0; i < 3; i++)
        if (!fr_int_at(rep, i, &v[i]))
            v[i] = -1;
    char msg[300];
    snprintf(msg, sizeof msg, "Redis answered %s for stage %.64s (asked %llu, quota %llu) with %lld/%lld/%lld",
             script, t->name, (unsigned long long)want, (unsigned long long)t->quota, v[0], v[1], v[2]);
    if (!F->lease_fault)
        fl_log(F, UG_LOG_ERROR,
               "%s, which no script can give: a Redis fault or something between rewriting replies. This tracker "
               "leases nothing more until it restarts; it spends what it holds and tells its grants", msg);
    F->lease_fault = true;
    pthread_mutex_lock(&F->qmu);
    snprintf(F->fault, sizeof F->fault, "leasing stopped: %.280s", msg);
    pthread_mutex_unlock(&F->qmu);
}

/* This tracker's lease of t becomes exactly what it holds and owes. */
static void owe_exactly(ug_fleet *F, fstage *t, ug_stage_quota *q)
{
    ug_slot_tally ta;
    ug_stage_quota_tally(q, false, &ta);
    (void)fl_settle(F, t, ta.unused + ta.unpublished + t->parked, t->parked);
}

/* LEASE up to want: the slots join the shards only once Redis counted
 * them (and a replica holds them). The slots got, or -1 (connection),
 * -2 (not replicated: the next settle takes them back). */
static long long lease(ug_fleet *F, fstage *t, ug_stage_quota *q, uint64_t want, int64_t now)
{
    if (index_stage(F, t) != 0)
        return -1;
    fr_args_reset(&F->a);
    fr_arg(&F->a, t->qkey);
    fr_arg(&F->a, F->conf.tracker);
    fr_argu(&F->a, want);
    fr_argu(&F->a, t->quota);
    redisReply *rep = fl_script(F, FR_LEASE, 1);
    if (!rep)
        return -1;
    fr_lease r;
    if (fr_lease_reply(rep, want, t->quota, &r) != 0) {
        lease_fault(F, t, "LEASE", rep, want);
        freeReplyObject(rep);
        owe_exactly(F, t, q); /* whatever Redis lent in that reply goes back */
        return 0;
    }
    freeReplyObject(rep);
    if (r.given > 0 && fr_replicated(&F->r) != 0)
        return -2;
    ug_stage_quota_add_slots(q, r.given);
    fl_counts(F, t, (long long)r.n, (long long)r.leased);
    t->spell = true;
    t->next_lease_ms = r.given < want ? now + 1000 : 0; /* the fleet ran dry: no refill before a second */
    return (long long)r.given;
}

/* Up to k parked slots become spendable, Redis first (a forget may have
 * written them off: those are dropped here). The slots got. */
static uint64_t unpark(ug_fleet *F, fstage *t, ug_stage_quota *q, uint64_t k)
{
    fr_args_reset(&F->a);
    fr_arg(&F->a, t->qkey);
    fr_arg(&F->a, F->conf.tracker);
    fr_argu(&F->a, k);
    redisReply *rep = fl_script(F, FR_UNPARK, 1);
    if (!rep)
        return 0;
    uint64_t g;
    int rc = fr_unpark_reply(rep, k, &g);
    if (rc != 0)
        lease_fault(F, t, "UNPARK", rep, k);
    freeReplyObject(rep);
    if (rc != 0)
        owe_exactly(F, t, q);
    if (rc != 0 || (g > 0 && fr_replicated(&F->r) != 0))
        return 0; /* still parked here: spendable nowhere, counted in Redis */
    t->parked -= k;
    ug_stage_quota_add_slots(q, g);
    return g;
}

/* Parks every unused slot: out of the shards first, then Redis hears it
 * (if it does not, they stay parked here and armed there: never spent). */
static void park(ug_fleet *F, fstage *t, ug_stage_quota *q)
{
    ug_slot_tally ta;
    ug_stage_quota_tally(q, true, &ta);
    t->parked += ta.unused;
    t->spell = false;
    (void)fl_settle(F, t, ta.unpublished + t->parked, t->parked);
}

/* Takes every slot of t (unused and parked) and owes the fleet only its
 * untold grants. The slots taken. */
static uint64_t give_back(ug_fleet *F, fstage *t, ug_stage_quota *q)
{
    ug_slot_tally ta;
    ug_stage_quota_tally(q, true, &ta);
    uint64_t back = ta.unused + t->parked;
    t->parked = 0;
    t->block = 0;
    t->spell = false;
    (void)fl_settle(F, t, ta.unpublished, 0); /* in doubt: nothing held here, the next settle is exact */
    return back;
}

/* What the stage needs now: one slot per held peer when the fleet is
 * scarce, else those plus a refill to a block while it is busy. */
static uint64_t need_of(const ug_fleet *F, const fstage *t, ug_stage_quota *q, uint64_t asked, int64_t now)
{
    if (scarce(F, t))
        return asked;
    uint64_t rem = ug_stage_quota_remaining(q), block = block_of(F, t);
    bool busy = now - t->last_active_ms < PARK_MS;
    if (!asked && (!busy || rem > block / 2 || now < t->next_lease_ms))
        return 0;
    uint64_t fill = block > rem ? block - rem : 0;
    return asked > fill ? asked : fill;
}

/* One stage, each pass: slots for what it needs, parked or given back when
 * quiet, its outlook. -2: a lease not replicated (the scope settles again). */
static int lease_stage(ug_fleet *F, fstage *t, ug_stage_quota *q, int64_t now)
{
    uint64_t asked = ug_stage_quota_wanted(q), n = ug_stage_quota_count(q);
    if (asked || n != t->pass_n)
        t->last_active_ms = now;
    t->pass_n = n;
    t->held_sec += asked;
    uint64_t need = need_of(F, t, q, asked, now), got = 0;
    if (need && t->parked)
        got = unpark(F, t, q, t->parked < need ? t->parked : need);
    if (got < need && !F->lease_fault && fl_up(F)) {
        long long g = lease(F, t, q, need - got, now);
        if (g == -2)
            return -2;
    } else if (!need && now - t->last_active_ms >= PARK_MS && (t->parked || ug_stage_quota_remaining(q))) {
        /* quiet: parked for a while, or straight back when the fleet is short */
        if (now - t->last_active_ms >= IDLE_MS || scarce(F, t))
            give_back(F, t, q);
        else if (ug_stage_quota_remaining(q))
            park(F, t, q);
    }
    fl_outlook(F, t, q);
    return 0;
}

void fl_leases(ug_fleet *F, const ug_live *l, int64_t now)
{
    bool fenced = fl_fenced(F);
    for (size_t i = 0; i < F->nsc; i++) {
        fscope *s = &F->sc[i];
        const ug_live_rollout *lr = fl_rollout_of(l, s);
        for (size_t j = 0; lr && j < s->nst; j++) {
            fstage *t = &s->st[j];
            ug_stage_quota *q = t->has_quota ? fl_stage_q(lr, t) : NULL;
            if (!q || !ug_stage_quota_is_sourced(q))
                continue;
            bool go = s->ready && !fenced && fl_up(F);
            if (go && t->requota) {
                give_back(F, t, q); /* a lowered quota is not spent from older leases */
                t->requota = false;
            }
            if (!go || !fl_up(F) || lease_stage(F, t, q, now) != 0) {
                if (go && fl_up(F))
                    s->ready = false;
                fl_outlook(F, t, q);
            }
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
            if (q && ug_stage_quota_is_sourced(q)) {
                total += give_back(F, &s->st[j], q);
                fl_outlook(F, &s->st[j], q);
            }
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
           "made and had not told are told now, against the slots the fleet kept counted for them",
           F->conf.tracker, (unsigned long long)dropped);
}

/* ---- once a second: counts, demand, idle leases, rates, the stream's trim, leader ---- */

static int stage_counts(ug_fleet *F, fstage *t, ug_stage_quota *q)
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
        if (!fr_int_at(rep, i, &v[i]) || v[i] < 0)
            v[i] = 0;
    freeReplyObject(rep);
    if (t->has_quota)
        fl_counts(F, t, v[0], v[1]);
    if (q && ug_stage_quota_is_sourced(q))
        fl_outlook(F, t, q);
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
        v += atomic_load_explicit(&ls->rt->waits[w].why[UG_WHY_RATE], memory_order_relaxed) +
             atomic_load_explicit(&ls->rt->waits[w].unverified[UG_WHY_RATE], memory_order_relaxed);
    return v;
}

static const ug_live_stage *lstage_of(const ug_live_rollout *lr, const fstage *t)
{
    return ug_live_stage_named(lr, t->name);
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
    double share;
    long long active;
    bool ok = fr_rate_reply(rep, t->fleet_rate, &share, &active);
    freeReplyObject(rep);
    if (!ok)
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

static void second_stage(ug_fleet *F, fstage *t, const ug_live_rollout *lr)
{
    const ug_live_stage *ls = lstage_of(lr, t);
    if (!ls || !ls->q)
        return;
    uint64_t n = ug_stage_quota_count(ls->q), w = rate_waits(F->I, ls);
    if (!t->primed)
        t->last_n = n, t->last_waits = w, t->primed = true;
    /* demand: new offers, offers the rate turned away, peers held for a lease */
    uint64_t d = (n - t->last_n) + (w - t->last_waits) + t->held_sec;
    t->last_n = n, t->last_waits = w, t->held_sec = 0;
    t->demand = t->demand / 2 + (double)d / 2;
    if (t->has_quota && ug_stage_quota_is_sourced(ls->q)) {
        /* half a second of demand (five passes): refilled at half of it;
         * 0 once it is quiet, so the next lease is a first one again */
        uint64_t cap = lease_cap(F, t), b = t->demand >= 0.5 ? (uint64_t)ceil(t->demand / 2) + 1 : 0;
        t->block = b < cap ? b : cap;
    }
    if (fl_up(F))
        stage_counts(F, t, ls->q);
    if (fl_up(F) && t->has_fleet_rate)
        rate_share(F, t, ls);
}

/* The registry: who is alive, and who leads ramp holds. */
static int registry(ug_fleet *F)
{
    fl_args_registry(F);
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    uint64_t now = fl_redis_now(F);
    const char *leader = NULL;
    long long up = 0;
    const redisReply *k, *v;
    for (size_t i = 0; i < fr_npairs(rep); i++) {
        uint64_t ts;
        bool alive;
        if (!fr_pair(rep, i, &k, &v) || ug_fleet_row_parse(v->str, v->len, &ts, &alive) != 0 || !alive ||
            now > ts + LEADER_AGE_S)
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

void fl_each_second(ug_fleet *F, const ug_live *l)
{
    for (size_t i = 0; i < F->nsc && fl_up(F); i++) {
        fscope *s = &F->sc[i];
        const ug_live_rollout *lr = s->ready ? fl_rollout_of(l, s) : NULL;
        for (size_t j = 0; lr && j < s->nst && fl_up(F); j++)
            second_stage(F, &s->st[j], lr);
        if (lr && fl_up(F))
            fl_check_gap(F, s);
    }
    if (fl_up(F))
        registry(F);
}
