/* Promotion gates on percent schedules (docs/policy-v2-extensions.md "Gates and windowed health"): which step is in force, what the next one waits for, durably. */
#ifndef UG_GATES_H
#define UG_GATES_H

#include <jansson.h>

#include "core/live.h"

/* Binds ls's gate state to lr's release (at load and reload): read from the
 * store when the release is new to it (another release starts afresh). */
void ug_gates_bind(ug_inst *I, const ug_live_rollout *lr, const ug_live_stage *ls);
/* The percentage in force for a gated schedule at t (the rollout's clock,
 * its own shift taken off): the clock's step, but none past a gate not
 * released. */
uint32_t ug_gates_percent(const ug_live_stage *ls, int64_t t);
/* tick(): moves each gated stage of lr to the step its clock and gates
 * allow, releases gates that hold, stores what changed. */
void ug_gates_tick(ug_inst *I, const ug_live_rollout *lr, uint64_t now);
/* A gate of ls released: the step now in force. */
typedef void (*ug_gates_released_fn)(void *ctx, const ug_live_stage *ls, uint32_t step);
/* upgate-ctl promote: releases the gate that holds a step of each stage of
 * lr back, whatever it waits for, calling done (may be NULL) for each; how
 * many (0: none in the way). */
unsigned ug_gates_promote(ug_inst *I, const ug_live_rollout *lr, uint64_t now, ug_gates_released_fn done, void *ctx);
/* A promote on another tracker of the fleet (fleet mode): releases the gate
 * before step `step` of lr's stage `stage` when it is that very gate (the
 * release in force is `to`, the step is gated and its percentage is bp)
 * and it is due here now and not yet released; history's actor is the
 * fleet. Whether it released it. Idempotent: the fleet's word is offered
 * again at every read of the flags, so a gate that comes due later (this
 * tracker's clock, or its own earlier gates, behind) is released then. */
bool ug_gates_fleet_promote(ug_inst *I, const ug_live_rollout *lr, const char *stage, const char *to, uint32_t step,
                            uint32_t bp, uint64_t now);
/* For status and explain: {step, since, shift_s, next_gate, due_since,
 * waits_for}; null for a stage without gates. */
json_t *ug_gates_json(const ug_live_stage *ls);

#endif
