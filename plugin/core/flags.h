/* The operator's durable word on a rollout: pause, halt (with why), ramp hold; in memory for the workers, in the store for restarts. */
#ifndef UG_FLAGS_H
#define UG_FLAGS_H

#include "core/state.h"

/* A change of a rollout's flags, as told to an add-on (core/sink.h). */
typedef enum { UG_FLAG_PAUSE, UG_FLAG_RESUME, UG_FLAG_HALT } ug_flag_op;

/* Reads rt's flags from the store (a new rollout state). */
void ug_flags_load(ug_inst *I, ug_rollout_state *rt);
/* Halts a rollout durably (control, automatic, or told by others: by);
 * logs and writes the history; 0 or -1. */
int ug_flags_halt(ug_inst *I, ug_rollout_state *rt, const char *why, uint64_t now, ug_actor by);
/* The operator's pause, on or off, durably; 0 or -1 (it holds in memory either way). */
int ug_flags_pause(ug_inst *I, ug_rollout_state *rt, bool on);
/* Lifts a halt, durably; 0 or -1. */
int ug_flags_lift_halt(ug_inst *I, ug_rollout_state *rt);
/* Lifts a halt as a resume does (control's, or the fleet's word): after
 * an automatic halt of a rollout with halt_when, halt_when first counts
 * afresh from now in scope (*afresh true), while the halt still holds; a
 * worker judging halt_when between a lift and the fresh start would raise
 * the halt again on the old counts. 0 or -1 (not stored). */
int ug_flags_resume_halt(ug_inst *I, ug_rollout_state *rt, bool has_halt_when, const void *scope, uint64_t now,
                         bool *afresh);
/* A resume of an automatic halt: from now on halt_when counts only the
 * outcomes set from now (policy.md) in scope (the rollout's release),
 * durably; 0 or -1. */
int ug_flags_count_since(ug_inst *I, ug_rollout_state *rt, const void *scope, uint64_t now);
/* A ramp hold as decided elsewhere, durably (held_since 0: running). */
void ug_flags_set_hold(ug_inst *I, ug_rollout_state *rt, uint64_t held_since, uint64_t shift);
/* Stores rt's ramp hold as memory holds it (after a hold decided here). */
void ug_flags_store_hold(ug_inst *I, ug_rollout_state *rt);
/* An automatic halt, from any thread (a worker): raised in memory at
 * once, unless the rollout is halted already; tick() stores it. */
void ug_flags_raise_halt(ug_inst *I, ug_rollout_state *rt, const char *why, uint64_t now);
/* tick(): stores, logs and writes the history of a halt raised since the
 * last tick; whether there was one. */
bool ug_flags_store_raised(ug_inst *I, ug_rollout_state *rt, uint64_t now);

#endif
