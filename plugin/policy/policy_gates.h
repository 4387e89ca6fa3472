/* Promotion gates and windowed health in the policy (policy_gates.c): the `gate`, `hold_after`, `window` and `last` keys, one parser each. */
#ifndef UG_POLICY_GATES_H
#define UG_POLICY_GATES_H

#include <jansson.h>

#include "policy/policy.h"
#include "policy/yaml_doc.h"

#define UG_DURATION_MAX (366u * 86400u) /* the longest `window` or `hold_after` */
#define UG_HEALTH_LAST_MAX 100000u      /* the most outcomes `last` may name */

/* A duration: N followed by s, m, h or d (90s, 30m, 6h, 2d), 1 s to 366 d. */
int ug_policy_duration(const ug_ylog *y, const ug_ynode *v, const char *key, uint64_t *out) UG_WUR;
/* `window` (a duration) and `last` (1..100000 outcomes) of halt_when or a
 * gate, either or both; fields absent (key NULL) leave hw cumulative. base
 * names the mapping they sit in. */
int ug_policy_health_window(const ug_ylog *y, const ug_yfield *window, const ug_yfield *last, const char *base,
                            ug_health_window *hw) UG_WUR;
/* `gate`: "manual", or {min_outcomes, upgraded, failed, baseline, window,
 * last, manual}; *out allocated (ug_policy_free frees it with its step). */
int ug_policy_gate(const ug_ylog *y, const ug_ynode *v, const char *key, ug_gate **out) UG_WUR;
/* Does step k of pc wait for a gate: its own, or the hold_after of the step
 * before it? */
bool ug_step_gated(const ug_percent *pc, size_t k);
/* For --check and status: "cumulative" or {window_s, last}; a step's
 * {gate, hold_after_s} (an empty object when it has neither). */
json_t *ug_health_window_json(const ug_health_window *hw);
json_t *ug_step_gate_json(const ug_pct_step *st);

#endif
