/* A plan: the UTC intervals some windows are open over the days ahead,
 * sorted and merged, with the span of instants it answers for. */
#ifndef UG_CALPLAN_H
#define UG_CALPLAN_H

#include "calendar.h"

typedef struct {
    int64_t valid_from, valid_until; /* answers are exact for instants in [valid_from, valid_until) */
    size_t n;
    int64_t iv[][2];                 /* [open, close), ascending, disjoint, not touching */
} ug_cal_plan;

/* The intervals of windows w[0..n) (each read in zones[i]) opening on the
 * local days from 3 days before now's UTC day to horizon days after it.
 * NULL on out of memory. */
ug_cal_plan *ug_cal_plan_build(const ug_cal_window *w, const ug_tz *const *zones, size_t n, int64_t now,
                               unsigned horizon_days) UG_WUR;
/* Open at t, and the next change (UG_CAL_NEVER: none planned); false when
 * t is outside the plan's span (then closed, NEVER). */
bool ug_cal_plan_at(const ug_cal_plan *p, int64_t t, bool *open, int64_t *change);
void ug_cal_plan_free(ug_cal_plan *p);

#endif
