/* upgate-sim --suggest: finds one stage's rate and linear ramp in a policy's text and rewrites just those bytes. */
#ifndef UG_SIMEDIT_H
#define UG_SIMEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

/* Where a stage's settings are in the policy's text (byte offsets). */
typedef struct {
    bool has_rate;
    double rate;
    size_t rate_at, rate_len;   /* the rate's value */
    size_t insert_at;           /* where a missing rate goes */
    char insert_pre[80];        /* what comes before "rate: X" there ("\n    " or ", ") */
    bool linear;                /* percent: {from, to, start, end} */
    int64_t start, end;
    size_t end_at, end_len;     /* the ramp's end value */
    char rollout[40];           /* the rollout it is in ("default" in a version 1 file) */
} sim_stage_loc;

/* Finds stage (in rollout, or in whichever rollout has it when rollout is
 * NULL) in the policy text. 0, or -1 with why (not found, in several
 * rollouts, not YAML). */
int sim_edit_find(const char *text, size_t len, const char *rollout, const char *stage, sim_stage_loc *loc, char *why,
                  size_t whycap) UG_WUR;
/* text with [at, at + cut) replaced by insert: a new NUL-ended buffer
 * (free it), or NULL when out of memory. */
char *sim_edit_apply(const char *text, size_t len, size_t at, size_t cut, const char *insert, size_t *outlen);

#endif
