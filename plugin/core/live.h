/* The live policy: a policy bound to its running state (rollouts to store scopes, stages to quotas and run-time state), swapped whole on reload. */
#ifndef UG_LIVE_H
#define UG_LIVE_H

#include "core/state.h"

typedef struct {
    const ug_stage *s;
    ug_stage_quota *q;  /* NULL only without a store (check, explain) */
    ug_stage_state *rt;
    uint16_t salt_id;   /* percent stages: its salt's number for a ug_bucket_memo (core/memo.h); 0 none */
} ug_live_stage;

typedef struct {
    const ug_rollout *r;
    ug_scope *sc; /* NULL only without a store */
    ug_rollout_state *rt;
    ug_live_stage *stages;
} ug_live_rollout;

typedef struct ug_v2_tokens ug_v2_tokens;

/* A policy with what it needs at run time; swapped whole on reload. */
struct ug_live {
    ug_policy *pol;
    ug_live_rollout *ro;
    uint64_t gen; /* distinct per build */
    uint32_t memo_mark; /* distinct per build in the process: a ug_bucket_memo's (core/memo.h) */
    ug_v2_tokens *tok; /* the freshness token of a version 2 policy, else NULL */
};

/* Builds the live form of a policy: binds every rollout and stage to its
 * store scope and quota (a stage with a quota to I->slots when set), and
 * to its run-time state. store NULL: unbound (check and explain without a
 * running tracker). Takes pol (freed on failure). */
ug_live *ug_live_build(ug_inst *I, ug_policy *pol, char *err, size_t errcap);
void ug_live_free(ug_live *l);
/* Held around swapping and freeing policies, scopes and stages (reload),
 * and by a thread that reads them outside a worker (I->live_mu). */
void ug_live_lock(ug_inst *I);
void ug_live_unlock(ug_inst *I);
const ug_live_rollout *ug_live_find(const ug_live *l, const char *name);
/* The stage of lr that granted under store id `id`, or NULL. */
const ug_live_stage *ug_live_stage_by_id(const ug_live_rollout *lr, uint16_t id);
/* The stage of lr named `name`, or NULL. */
const ug_live_stage *ug_live_stage_named(const ug_live_rollout *lr, const char *name);
/* The percentage in force now for s, hold_when_unhealthy included. */
uint32_t ug_live_percent(const ug_live_rollout *lr, const ug_stage *s, uint64_t now);
/* The stage's next change of percentage, on the host's clock: when, and
 * to what (hundredths). false: none to come (a constant, past the end, or
 * held: the schedule waits for health). */
bool ug_live_next_step(const ug_live_rollout *lr, const ug_stage *s, uint64_t now, uint64_t *at, uint32_t *bp);
/* The new offers per second a rated stage allows here: its rate, and its
 * fleet_rate (the share it was given when I->slots lends its slots, all
 * of it alone). */
double ug_rate_in_force(const ug_inst *I, const ug_stage *s, double share);
/* Is the rollout paused or halted (any source), or its manifest expired? */
bool ug_live_stopped(const ug_live_rollout *lr, uint64_t now);
/* Warns of manifests that expire within 7 days (force: now, at load; else
 * once a day per rollout) and logs each expiry once. */
void ug_live_expiry(ug_inst *I, const ug_live *l, uint64_t now, bool force);

#endif
