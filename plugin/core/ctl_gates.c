/* Control's promote: the operator releases the gate that holds back a step of a rollout's percent schedules. */
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/workers.h"
#include "core/ctl_impl.h"
#include "core/gates.h"
#include "core/instance.h"
#include "core/sink.h"

/* The gates promote released, to tell the fleet once the live lock is let go. */
typedef struct {
    struct {
        char stage[UG_NAME_MAX + 1];
        uint32_t step, bp;
    } *rel;
    size_t n, cap;
    bool oom;
} released;

static void note_release(void *ctx, const ug_live_stage *ls, uint32_t step)
{
    released *r = ctx;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        void *p = realloc(r->rel, cap * sizeof *r->rel);
        if (!p) {
            r->oom = true;
            return;
        }
        r->rel = p, r->cap = cap;
    }
    snprintf(r->rel[r->n].stage, sizeof r->rel[r->n].stage, "%s", ls->s->name);
    r->rel[r->n].step = step;
    r->rel[r->n++].bp = ls->s->percent.steps[step].bp;
}

/* Fleet mode: every tracker releases the gates released here (the sink
 * writes them as the fleet's word); -1 when there is no fleet. */
static int tell_fleet(ug_inst *I, const char *rollout, const char *to, const released *r)
{
    if (!I->sink || !I->sink->promoted)
        return -1;
    int told = 0;
    for (size_t i = 0; i < r->n; i++)
        told = I->sink->promoted(I->sink->ctx, rollout, r->rel[i].stage, to, r->rel[i].step, r->rel[i].bp,
                                 i + 1 == r->n ? 1500 : 0);
    return told;
}

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
    released r = {0};
    char to[UG_VER_MAX + 1];
    snprintf(to, sizeof to, "%s", lr->r->to);
    unsigned n = ug_gates_promote(I, lr, ug_inst_now(I), note_release, &r);
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
    int told = tell_fleet(I, json_string_value(name), to, &r);
    if (r.oom)
        ug_logf(I, UG_LOG_ERROR, "promote %s: out of memory: the fleet hears of only %zu of its %u gates",
                json_string_value(name), r.n, n);
    free(r.rel);
    json_t *o = json_pack("{s:s, s:s, s:i, s:o}", "did", "promote", "rollout", json_string_value(name), "released",
                          (int)n, "stages", stages);
    if (I->ctl_ext && I->ctl_ext->flag_reply && o)
        I->ctl_ext->flag_reply(I->ctl_ext->ctx, o, told);
    return ug_ctl_reply(emit, ctx, o, true);
}
