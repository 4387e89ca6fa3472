/* Health over a window: each uid's latest outcome once, set within a time window and/or among the last N (halt_when and gates). */
#ifndef UG_HEALTH_H
#define UG_HEALTH_H

#include "core/live.h"

typedef struct {
    uint64_t from;           /* outcomes set at or after this (0: all) */
    uint32_t last;           /* only the last this many of those; 0: all */
    uint64_t now;            /* an offer pending past outcome_window counts as not taken at at + outcome_window */
    uint64_t outcome_window;
} ug_health_query;

typedef struct {
    uint64_t known, failed, upgraded, rolled_back;
} ug_health_counts;

/* Is o a failure (download failed, mismatch, install failed, rolled back)? */
bool ug_outcome_failed(ug_outcome o);
/* One pass over sc's grants: every uid's latest outcome (or its offer not
 * taken) that q admits, once. 0, or -1 out of memory (last). */
int ug_health_count(ug_scope *sc, const ug_health_query *q, ug_health_counts *c);
/* The outcomes halt_when or a gate with window hw judges now, from `from`
 * (a resume, a step's start; 0: all). */
int ug_health_judged(const ug_live_rollout *lr, const ug_health_window *hw, uint64_t from, uint64_t now,
                     ug_health_counts *c);
/* The previous release of lr's rollout (the highest `to` below the one in
 * force that the store has grants for) and its failed share, looked up once
 * per release; false: none. */
bool ug_health_baseline(ug_inst *I, const ug_live_rollout *lr, uint64_t *failed, uint64_t *known, const char **to);

#endif
