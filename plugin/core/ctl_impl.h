/* What the control commands share: the dispatch table's commands, counters summed, outcomes counted, JSON out. */
#ifndef UG_CTL_IMPL_H
#define UG_CTL_IMPL_H

#include "core/control.h"

/* ---- ctl_reply.c (and ug_ctl_reply, ug_ctl_refuse, ug_ctl_note: core/control.h) ---- */
/* json_dump_callback's sink: data is {ug_emit, its ctx}. */
int ug_ctl_dump_cb(const char *buf, size_t size, void *data);
/* Is key one of the space-separated members? */
bool ug_ctl_member_ok(const char *members, const char *key);
/* The members a command takes besides "cmd" (control.def); "" for no command. */
const char *ug_ctl_members(const char *cmd);

/* ---- ctl_status.c ---- */
/* Counter st summed over the workers. */
uint64_t ug_ctl_sum(ug_inst *I, unsigned st);
/* Outcome counts of a rollout, from one pass over its grants: per stage
 * (per[j][outcome], the last column not taken) and in all. */
typedef struct {
    const ug_live_rollout *lr;
    uint64_t before; /* pending granted before this: not taken */
    uint64_t (*per)[UG_OUT_COUNT_ + 1]; /* [stage index][outcome, +1: not taken]; the caller frees it */
    uint64_t all[UG_OUT_COUNT_ + 1];
} ug_ctl_outcomes;
/* Fills o for lr at now; o->per NULL: out of memory (nothing counted). */
void ug_ctl_count_outcomes(const ug_live_rollout *lr, uint64_t now, ug_ctl_outcomes *o);
int ug_ctl_status(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
int ug_ctl_info(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
int ug_ctl_census(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
/* {"hour", "day", "week": distinct uids, "top_day": [{"ver", "n"}] (at most
 * top), "source": "fleet" (then "trackers", "at") or "tracker"}: the
 * fleet's merged census once there is one, else this tracker's; JSON null
 * while the policy says census: false. */
json_t *ug_ctl_census_brief(ug_inst *I, const ug_live *l, uint64_t now, size_t top);

/* ---- ctl_ops.c ---- */
int ug_ctl_pause(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
int ug_ctl_resume(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
int ug_ctl_halt(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
int ug_ctl_reload(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
int ug_ctl_grants(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
int ug_ctl_history(ug_inst *I, json_t *req, ug_emit emit, void *ctx);

/* ---- ctl_gates.c ---- */
int ug_ctl_promote(ug_inst *I, json_t *req, ug_emit emit, void *ctx);

/* ---- ctl_metrics.c ---- */
int ug_ctl_metrics(ug_inst *I, json_t *req, ug_emit emit, void *ctx);

/* ---- ctl_explain.c ---- */
int ug_ctl_explain(ug_inst *I, json_t *req, ug_emit emit, void *ctx);

#endif
