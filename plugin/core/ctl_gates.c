/* Control's promote: the operator releases the gate that holds back a step of a rollout's percent schedules. */
#include <stdio.h>

#include "base/log.h"
#include "base/workers.h"
#include "core/ctl_impl.h"
#include "core/gates.h"
#include "core/instance.h"

int ug_ctl_promote(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    json_t *name = json_object_get(req, "rollout");
    if (!json_is_string(name))
        return ug_ctl_refuse(emit, ctx, "promote: name one rollout (\"rollout\")");
    ug_live_lock(I); /* the live policy stays while its gates are read and moved */
    ug_live *l = atomic_load(&I->live);
    const ug_live_rollout *lr = ug_live_find(l, json_string_value(name));
    if (!lr) {
        ug_live_unlock(I);
        return ug_ctl_refuse(emit, ctx, "promote: no rollout named %.64s in %.200s", json_string_value(name),
                             l->pol->path);
    }
    unsigned n = ug_gates_promote(I, lr, ug_inst_now(I));
    json_t *stages = json_array();
    for (size_t j = 0; j < lr->r->nstages; j++)
        if (lr->stages[j].s->has_percent && lr->stages[j].s->percent.gated)
            json_array_append_new(stages, json_pack("{s:s, s:o}", "stage", lr->stages[j].s->name, "gate",
                                                    ug_gates_json(&lr->stages[j])));
    ug_live_unlock(I);
    if (!n) {
        json_decref(stages);
        return ug_ctl_refuse(emit, ctx, "promote: no gate holds a step of rollout %.64s back now (see status)",
                             json_string_value(name));
    }
    atomic_fetch_add(&I->epoch, 1); /* remembered replies no longer hold */
    ug_wait_workers(I, NULL);
    return ug_ctl_reply(emit, ctx,
                        json_pack("{s:s, s:s, s:i, s:o}", "did", "promote", "rollout", json_string_value(name),
                                  "released", (int)n, "stages", stages),
                        true);
}
