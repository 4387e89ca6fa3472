/* Promotion gates on percent schedules: a step comes into force only once the gate before it holds; the time it
 * waited shifts the rest of the schedule. tick() decides, workers read two atomics, the store keeps the state. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/gates.h"
#include "core/health.h"
#include "policy/policy_gates.h"

#define GATE_JUDGE_EVERY 10 /* seconds between two judgments of a gate's outcomes */
#define UG_GATE_PROMOTED "promoted by the operator" /* release()'s `how` when upgate-ctl promote asked */
#define UG_GATE_FLEET "promoted on another tracker of the fleet" /* ... when the fleet told of a promote */

/* The durable record under "gate:ROLLOUT:STAGE" (docs/state.md): version 1. */
#define GATE_REC_V1 1u
typedef struct {
    uint32_t version, released;
    int32_t step;
    uint32_t zero;
    uint64_t step_since, shift, due;
    char release[UG_VER_MAX + 1];
} gate_rec;
_Static_assert(sizeof(gate_rec) == 80, "docs/state.md gives this layout");

static void rec_key(char *key, size_t cap, const ug_live_rollout *lr, const ug_live_stage *ls)
{
    snprintf(key, cap, "gate:%s:%s", lr->r->name, ls->s->name);
}

/* The first gated step at or after `from`: no step from it on is in force. */
static uint32_t open_to(const ug_percent *pc, uint32_t from)
{
    size_t k = from;
    while (k < pc->nsteps && !ug_step_gated(pc, k))
        k++;
    return (uint32_t)k;
}

static void store_gate(ug_inst *I, const ug_live_rollout *lr, const ug_live_stage *ls)
{
    const ug_gate_state *g = &ls->rt->gate;
    gate_rec r = {.version = GATE_REC_V1, .released = g->released, .step = g->step, .step_since = g->step_since,
                  .shift = atomic_load(&g->shift), .due = g->held_since};
    char key[96];
    snprintf(r.release, sizeof r.release, "%s", g->release);
    rec_key(key, sizeof key, lr, ls);
    if (I->store && ug_store_put(I->store, key, &r, sizeof r) != 0)
        ug_logf(I, UG_LOG_ERROR, "rollout %s stage %s: cannot store its gate state in %s", lr->r->name, ls->s->name,
                I->state_dir);
}

void ug_gates_bind(ug_inst *I, const ug_live_rollout *lr, const ug_live_stage *ls)
{
    ug_gate_state *g = &ls->rt->gate;
    const ug_percent *pc = &ls->s->percent;
    pthread_mutex_lock(&g->mu);
    if (strcmp(g->release, lr->r->to) != 0) {
        gate_rec r;
        char key[96];
        rec_key(key, sizeof key, lr, ls);
        bool got = I->store && ug_store_get(I->store, key, &r, sizeof r) == (long)sizeof r &&
                   r.version == GATE_REC_V1 && strncmp(r.release, lr->r->to, sizeof r.release) == 0;
        g->released = got ? r.released : 0;
        g->step = got ? r.step : -1;
        g->step_since = got ? r.step_since : 0;
        g->held_since = got ? r.due : 0;
        atomic_store(&g->shift, got ? r.shift : 0);
        g->waits[0] = 0;
        snprintf(g->release, sizeof g->release, "%s", lr->r->to);
    }
    uint32_t rel = pc->kind == UG_PCT_STEPS && g->released > pc->nsteps ? (uint32_t)pc->nsteps : g->released;
    atomic_store_explicit(&g->open_to, pc->kind == UG_PCT_STEPS ? open_to(pc, rel) : 0, memory_order_release);
    pthread_mutex_unlock(&g->mu);
}

uint32_t ug_gates_percent(const ug_live_stage *ls, int64_t t)
{
    const ug_percent *pc = &ls->s->percent;
    /* open_to first: a release stores the shift before it moves open_to */
    long open = (long)atomic_load_explicit(&ls->rt->gate.open_to, memory_order_acquire);
    long i = ug_percent_index(pc, t - (int64_t)atomic_load_explicit(&ls->rt->gate.shift, memory_order_relaxed));
    i = i < open ? i : open - 1;
    return i >= 0 ? pc->steps[i].bp : 0;
}

/* ---- what a gate waits for -------------------------------------------------- */

static double pct(uint64_t n, uint64_t d)
{
    return d ? 100.0 * (double)n / (double)d : 0;
}

/* Does the outcome part of gate g hold on counts c? If not, why. */
static bool outcomes_hold(ug_inst *I, const ug_live_rollout *lr, const ug_gate *g, const ug_health_counts *c,
                          char *why, size_t cap)
{
    uint64_t need = g->min_outcomes ? g->min_outcomes : (g->has_upgraded || g->has_failed || g->has_baseline);
    uint64_t bf, bk;
    const char *bto;
    if (c->known < need)
        return snprintf(why, cap, "needs %llu more outcomes (%llu of %llu)", (unsigned long long)(need - c->known),
                        (unsigned long long)c->known, (unsigned long long)need), false;
    if (g->has_upgraded && c->upgraded * 1000000 < (uint64_t)g->upgraded_ppm * c->known)
        return snprintf(why, cap, "upgraded %.1f%% < %.4g%%", pct(c->upgraded, c->known), g->upgraded_ppm / 10000.0),
               false;
    if (g->has_failed && c->failed * 1000000 > (uint64_t)g->failed_ppm * c->known)
        return snprintf(why, cap, "failed %.1f%% > %.4g%%", pct(c->failed, c->known), g->failed_ppm / 10000.0), false;
    if (g->has_baseline && ug_health_baseline(I, lr, &bf, &bk, &bto) &&
        (double)c->failed * (double)bk * 1000.0 > (double)g->baseline_milli * (double)bf * (double)c->known)
        return snprintf(why, cap, "failed %.1f%% > %.4g x %.1f%% of %s", pct(c->failed, c->known),
                        g->baseline_milli / 1000.0, pct(bf, bk), bto), false;
    return true;
}

/* Does step k's gate hold now (it is due)? If not, why, in g->waits. Its
 * outcomes are counted (a pass over the grants) at most every 10 s: in
 * between, `was` (the last answer) stands. */
static bool gate_holds(ug_inst *I, const ug_live_rollout *lr, const ug_live_stage *ls, uint32_t k, uint64_t now,
                       const char *was)
{
    const ug_pct_step *st = &ls->s->percent.steps[k];
    ug_gate_state *g = &ls->rt->gate;
    char *why = g->waits;
    size_t cap = sizeof g->waits;
    if (k && st[-1].hold_after && g->step_since + st[-1].hold_after > now) {
        uint64_t left = g->step_since + st[-1].hold_after - now;
        return snprintf(why, cap, "hold_after: %llu s more at %u.%02u%%", (unsigned long long)left, st[-1].bp / 100,
                        st[-1].bp % 100), false;
    }
    if (!st->gate)
        return true;
    if (st->gate->min_outcomes || st->gate->has_upgraded || st->gate->has_failed || st->gate->has_baseline) {
        if (was[0] && strncmp(was, "hold_after", 10) != 0 && now < g->judged_at + GATE_JUDGE_EVERY)
            return snprintf(why, cap, "%s", was), false;
        g->judged_at = now;
        ug_health_counts c;
        if (ug_health_judged(lr, &st->gate->hw, g->step >= 0 ? g->step_since : 0, now, &c) != 0)
            return snprintf(why, cap, "out of memory counting outcomes"), false;
        if (!outcomes_hold(I, lr, st->gate, &c, why, cap))
            return false;
    }
    if (st->gate->manual)
        return snprintf(why, cap, "manual: upgate-ctl promote %s", lr->r->name), false;
    return true;
}

/* ---- moving on ------------------------------------------------------------- */

/* Step k (due since g->held_since) comes into force now; the rest of the
 * schedule moves by the time it waited. The caller holds g->mu. */
static void release(ug_inst *I, const ug_live_rollout *lr, const ug_live_stage *ls, uint32_t k, uint64_t now,
                    const char *how)
{
    ug_gate_state *g = &ls->rt->gate;
    const ug_percent *pc = &ls->s->percent;
    uint64_t waited = g->held_since && now > g->held_since ? now - g->held_since : 0;
    atomic_store_explicit(&g->shift, atomic_load(&g->shift) + waited, memory_order_release);
    g->released = k + 1;
    g->step = (int32_t)k;
    g->step_since = now;
    g->held_since = 0;
    g->waits[0] = 0;
    atomic_store_explicit(&g->open_to, open_to(pc, k + 1), memory_order_release);
    char line[300];
    snprintf(line, sizeof line, "gate of rollout %s stage %s: step %u (%u.%02u%%) in force after %llu s held; %s",
             lr->r->name, ls->s->name, k, pc->steps[k].bp / 100, pc->steps[k].bp % 100, (unsigned long long)waited,
             how);
    ug_logf(I, UG_LOG_WARN, "%s", line);
    bool promoted = !strcmp(how, UG_GATE_PROMOTED), fleet = !strcmp(how, UG_GATE_FLEET);
    ug_actor by = promoted ? I->caller : (ug_actor){.kind = fleet ? UG_ACTOR_FLEET : UG_ACTOR_AUTOMATIC};
    ug_event e = {.by = by, .action = promoted || fleet ? "promote" : "gate", .rollout = lr->r->name, .what = line};
    (void)ug_history(I, now, &e);
    store_gate(I, lr, ls);
}

/* The rollout's schedule clock: frozen while hold_when_unhealthy holds it. */
static int64_t rollout_clock(const ug_live_rollout *lr, uint64_t now, bool *held)
{
    uint64_t h = atomic_load(&lr->rt->held_since);
    *held = h != 0;
    return (int64_t)(h ? h : now) - (int64_t)atomic_load(&lr->rt->shift);
}

/* One gated stage at tick (judge: also judge a due gate and release it
 * when it holds; tick alone judges, as it alone reads the baseline); the
 * caller holds g->mu. Whether to store it. */
static bool stage_tick(ug_inst *I, const ug_live_rollout *lr, const ug_live_stage *ls, uint64_t now, bool judge)
{
    ug_gate_state *g = &ls->rt->gate;
    const ug_percent *pc = &ls->s->percent;
    bool rheld, dirty = false;
    int64_t base = rollout_clock(lr, now, &rheld), gs = (int64_t)atomic_load(&g->shift);
    uint32_t open = atomic_load(&g->open_to);
    long c = ug_percent_index(pc, base - gs), in = c < (long)open ? c : (long)open - 1;
    int64_t off = (int64_t)atomic_load(&lr->rt->shift) + gs; /* a step's `at` + off: when it is due here */
    if (in != g->step) { /* the clock moved it (a release sets step itself) */
        int64_t due = in >= 0 ? pc->steps[in].at + off : 0;
        g->step = (int32_t)in;
        g->step_since = in >= 0 && due > 0 && (uint64_t)due < now ? (uint64_t)due : now;
        dirty = true;
    }
    char was[sizeof g->waits];
    memcpy(was, g->waits, sizeof was);
    g->waits[0] = 0;
    if (open >= pc->nsteps || c < (long)open)
        return dirty; /* no gate due */
    if (!g->held_since) {
        int64_t due = pc->steps[open].at + off;
        g->held_since = due > 0 && (uint64_t)due < now ? (uint64_t)due : now;
        dirty = true;
    }
    if (!judge)
        return dirty;
    if (rheld) {
        snprintf(g->waits, sizeof g->waits, "the ramp is held: the rollout is unhealthy (hold_when_unhealthy)");
        return dirty;
    }
    if (!gate_holds(I, lr, ls, open, now, was))
        return dirty;
    release(I, lr, ls, open, now, "its gate holds");
    return false; /* stored */
}

void ug_gates_tick(ug_inst *I, const ug_live_rollout *lr, uint64_t now)
{
    for (size_t j = 0; j < lr->r->nstages; j++) {
        const ug_live_stage *ls = &lr->stages[j];
        if (!ls->s->has_percent || !ls->s->percent.gated)
            continue;
        pthread_mutex_lock(&ls->rt->gate.mu);
        if (stage_tick(I, lr, ls, now, true))
            store_gate(I, lr, ls);
        pthread_mutex_unlock(&ls->rt->gate.mu);
    }
}

/* The gate in the way of ls's schedule now, if one is due: its step
 * (open_to), with the clock's step and due time brought up to now first
 * (stored when they moved); the caller holds g->mu. */
static bool due_gate(ug_inst *I, const ug_live_rollout *lr, const ug_live_stage *ls, uint64_t now, uint32_t *step)
{
    ug_gate_state *g = &ls->rt->gate;
    char waits[sizeof g->waits];
    memcpy(waits, g->waits, sizeof waits);
    if (stage_tick(I, lr, ls, now, false)) /* is a gate due now? */
        store_gate(I, lr, ls);
    memcpy(g->waits, waits, sizeof waits);
    *step = atomic_load(&g->open_to);
    return *step < ls->s->percent.nsteps && g->held_since;
}

unsigned ug_gates_promote(ug_inst *I, const ug_live_rollout *lr, uint64_t now, ug_gates_released_fn done, void *ctx)
{
    unsigned n = 0;
    for (size_t j = 0; j < lr->r->nstages; j++) {
        const ug_live_stage *ls = &lr->stages[j];
        ug_gate_state *g = &ls->rt->gate;
        uint32_t open;
        if (!ls->s->has_percent || !ls->s->percent.gated)
            continue;
        pthread_mutex_lock(&g->mu);
        bool due = due_gate(I, lr, ls, now, &open);
        if (due)
            release(I, lr, ls, open, now, UG_GATE_PROMOTED);
        pthread_mutex_unlock(&g->mu);
        if (due && done)
            done(ctx, ls, open);
        n += due;
    }
    return n;
}

bool ug_gates_fleet_promote(ug_inst *I, const ug_live_rollout *lr, const char *stage, const char *to, uint32_t step,
                            uint32_t bp, uint64_t now)
{
    const ug_live_stage *ls = ug_live_stage_named(lr, stage);
    const ug_percent *pc = ls ? &ls->s->percent : NULL;
    if (!ls || !ls->s->has_percent || !pc->gated || strcmp(lr->r->to, to) != 0 || step >= pc->nsteps ||
        pc->steps[step].bp != bp || !ug_step_gated(pc, step))
        return false; /* not the gate that was promoted: another schedule, release or step */
    ug_gate_state *g = &ls->rt->gate;
    uint32_t open;
    bool due = false;
    pthread_mutex_lock(&g->mu);
    /* Released already (here or by an earlier word), or not yet due: a
     * later pass looks again. Never a gate other than `step`. */
    if (step >= g->released && strcmp(g->release, to) == 0 && atomic_load(&g->open_to) == step)
        due = due_gate(I, lr, ls, now, &open) && open == step;
    if (due)
        release(I, lr, ls, step, now, UG_GATE_FLEET);
    pthread_mutex_unlock(&g->mu);
    return due;
}

json_t *ug_gates_json(const ug_live_stage *ls)
{
    ug_gate_state *g = &ls->rt->gate;
    const ug_percent *pc = &ls->s->percent;
    if (!ls->s->has_percent || !pc->gated)
        return json_null();
    pthread_mutex_lock(&g->mu);
    uint32_t open = atomic_load(&g->open_to);
    json_t *o = json_pack("{s:i, s:o, s:I, s:o, s:o, s:o}", "step", (int)g->step, "since",
                          g->step >= 0 ? json_integer((json_int_t)g->step_since) : json_null(), "shift_s",
                          (json_int_t)atomic_load(&g->shift), "next_gate",
                          open < pc->nsteps ? json_integer(open) : json_null(), "due_since",
                          g->held_since ? json_integer((json_int_t)g->held_since) : json_null(), "waits_for",
                          g->waits[0] ? json_string(g->waits) : json_null());
    pthread_mutex_unlock(&g->mu);
    return o;
}
