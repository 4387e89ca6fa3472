/* What became of each offer: seen upgraded, rolled back, reported; automatic halts and held ramps. */
#ifndef UG_OUTCOMES_H
#define UG_OUTCOMES_H

#include "core/live.h"

/* Records that a granted uid returned at version v (HELLO) under its
 * rollout lr's release: upgraded, rolled back. gi: uid's grant in lr's
 * scope as the caller looked it up (NULL: looked up here). Returns whether
 * it changed an outcome. Dry: only says whether it would. */
bool ug_outcome_observe(ug_inst *I, unsigned worker, const ug_live_rollout *lr, uint64_t uid, const ug_version *v,
                        const ug_grant_info *gi, uint64_t ts, bool dry);

/* What a REPORT tells. */
typedef struct {
    uint64_t uid;
    const ug_version *ver; /* the version it runs (NULL: not told) */
    const ug_version *to;
    ug_res res;
    uint64_t ts; /* the REPORT's own: an older one than the outcome's changes nothing */
} ug_outcome_told;
/* A REPORT's effect: 1 changed, 0 changed nothing, -1 never offered. dry as above. */
int ug_outcome_report(ug_inst *I, unsigned worker, const ug_live *l, const ug_outcome_told *t, bool dry);

/* How far a rollout is from its halt_when. */
typedef struct {
    uint64_t since;    /* the resume after which outcomes count; 0: all count */
    bool counting;     /* false: recounting since a resume or a new release (tick) */
    uint64_t known, failed, rolled_back;
} ug_halt_progress;
void ug_outcome_progress(const ug_live_rollout *lr, ug_halt_progress *p);
/* The untargeted HELLO whose uid some rollout offered a release at or
 * below its version: the rollout whose outcome it would change, or NULL. */
const ug_live_rollout *ug_outcome_untargeted(ug_inst *I, const ug_live *l, uint64_t uid, const ug_version *v);
/* tick(): stores automatic halts, scans not-taken offers, holds ramps. */
void ug_outcome_tick(ug_inst *I, uint64_t now);
/* An outcome recorded elsewhere and learned here: it feeds lr's health
 * (ramp holds) and automatic halt as one recorded here would. */
void ug_outcome_learned(ug_inst *I, const ug_live_rollout *lr, ug_outcome o, uint64_t now);

#endif
