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
/* upgate-ctl promote: releases the gate that holds a step of each stage of
 * lr back, whatever it waits for; how many (0: none in the way). */
unsigned ug_gates_promote(ug_inst *I, const ug_live_rollout *lr, uint64_t now);
/* For status and explain: {step, since, shift_s, next_gate, due_since,
 * waits_for}; null for a stage without gates. */
json_t *ug_gates_json(const ug_live_stage *ls);

#endif
