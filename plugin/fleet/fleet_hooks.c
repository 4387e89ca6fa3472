/* What fleet mode plugs into the core: its sink (events, leased slots, the thread's life) and what it adds to control; or, for a tracker alone, what it says of the fleet. */
#include <stdio.h>
#include <string.h>

#include "fleet/fleet_impl.h"

/* ---- the sink ------------------------------------------------------------------ */

static void on_outcome(void *ctx, const ug_scope *sc, uint64_t uid, ug_outcome o)
{
    ug_fleet_outcome(ctx, sc, uid, o);
}

static int on_flag(void *ctx, const char *rollout, ug_flag_op op, const char *why, uint64_t at, int wait_ms)
{
    return ug_fleet_flag(ctx, rollout, op, why, at, wait_ms);
}

static void on_hold(void *ctx, const char *rollout, uint64_t was, uint64_t held_since, uint64_t shift)
{
    ug_fleet_hold(ctx, rollout, was, held_since, shift);
}

static int on_promoted(void *ctx, const char *rollout, const char *stage, const char *to, uint32_t step, uint32_t bp,
                       int wait_ms)
{
    ug_fleet_gate g = {.step = step, .bp = bp};
    snprintf(g.stage, sizeof g.stage, "%s", stage);
    snprintf(g.to, sizeof g.to, "%s", to);
    return ug_fleet_promote(ctx, rollout, &g, wait_ms);
}

static bool leads(void *ctx)
{
    return ug_fleet_leads(ctx);
}

static int same_fleet(void *ctx, const ug_policy *p, char *err, size_t errcap)
{
    if (ug_fleet_same_conf(ctx, &p->fleet))
        return 0;
    snprintf(err, errcap, "%s: fleet: cannot change while running; restart to change it", p->path);
    return -1;
}

/* A tracker alone stays alone until it restarts. */
static int still_alone(void *ctx, const ug_policy *p, char *err, size_t errcap)
{
    (void)ctx;
    if (!p->fleet.enabled)
        return 0;
    snprintf(err, errcap, "%s: fleet: cannot change while running; restart to change it", p->path);
    return -1;
}

static int start(void *ctx, char *err, size_t errcap)
{
    return ug_fleet_start(ctx, err, errcap);
}

static void stop(void *ctx)
{
    ug_fleet_stop(ctx);
}

static void destroy(void *ctx)
{
    ug_fleet_free(ctx);
}

/* ---- control ------------------------------------------------------------------- */

static void tracker_status(void *ctx, json_t *tracker)
{
    json_object_set_new(tracker, "fleet", ctx ? ug_fleet_status(ctx) : json_null());
}

/* The Redis link as families of the metrics (docs/metrics.md, fleet mode):
 * the alert on a lost Redis reads the gauge, not the HELLOs it leaves. */
static void metrics(void *ctx, ug_emit emit, void *ectx)
{
    ug_fleet *F = ctx;
    if (!F)
        return;
    pthread_mutex_lock(&F->qmu);
    bool up = F->up;
    unsigned long long losses = (unsigned long long)F->losses;
    pthread_mutex_unlock(&F->qmu);
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "# HELP upgate_fleet_redis_up 1 while this fleet tracker is connected to Redis.\n"
                     "# TYPE upgate_fleet_redis_up gauge\nupgate_fleet_redis_up %d\n"
                     "# HELP upgate_fleet_redis_losses_total Times this fleet tracker lost its Redis connection.\n"
                     "# TYPE upgate_fleet_redis_losses_total counter\nupgate_fleet_redis_losses_total %llu\n",
                     up, losses);
    if (n > 0 && (size_t)n < sizeof buf)
        emit(ectx, buf, (size_t)n);
}

/* granted: every uid the fleet offered under the stage, as known here. */
static void stage_status(void *ctx, json_t *o, const ug_live_rollout *lr, const ug_live_stage *ls,
                         const uint64_t *outcomes)
{
    const ug_stage *s = ls->s;
    uint64_t all = 0;
    for (unsigned k = 0; k <= UG_OUT_COUNT_; k++)
        all += outcomes[k];
    json_object_set_new(o, "granted", json_integer((json_int_t)all));
    json_object_set_new(o, "granted_here", json_integer((json_int_t)(ls->q ? ug_stage_quota_count(ls->q) : 0)));
    bool leased = ls->q && ug_stage_quota_is_sourced(ls->q);
    json_object_set_new(o, "lease_unused_here", json_integer((json_int_t)(leased ? ug_stage_quota_remaining(ls->q) : 0)));
    if (leased) { /* what a peer finding the stage empty would hear */
        static const char *const words[] = {"spent", "soon", "hold"};
        json_object_set_new(o, "lease_outlook", json_string(words[ug_stage_quota_short(ls->q, false)]));
    }
    if (s->has_fleet_rate)
        json_object_set_new(o, "fleet_rate", json_real(s->fleet_rate));
    json_t *f = ug_fleet_stage_status(ctx, lr->r->name, lr->r->to, s->name);
    json_object_set_new(o, "fleet", f ? f : json_null());
}

/* The others obey a pause, resume, halt or promote once Redis holds it (docs/fleet.md). */
static void flag_reply(void *ctx, json_t *reply, int told)
{
    json_t *v = !ctx     ? json_null()
                : told > 0 ? json_string("written")
                           : json_string("queued: Redis is unreachable; the fleet hears it when it returns");
    json_object_set_new(reply, "fleet", v);
}

/* `fleet` (sub: status, forget): served by the fleet thread; ctx NULL for
 * a tracker alone, which checks the request and refuses it. */
static int fleet_cmd(void *ctx, ug_inst *I, json_t *req, ug_emit emit, void *ectx)
{
    const char *sub = json_string_value(json_object_get(req, "sub"));
    json_t *tracker = json_object_get(req, "tracker"), *force = json_object_get(req, "force");
    if (!sub || (strcmp(sub, "status") != 0 && strcmp(sub, "forget") != 0))
        return ug_ctl_refuse(emit, ectx, "fleet: \"sub\" must be \"status\" or \"forget\"");
    bool forget = strcmp(sub, "forget") == 0;
    if (forget && (!json_is_string(tracker) || !json_string_length(tracker)))
        return ug_ctl_refuse(emit, ectx, "fleet forget: name the tracker (\"tracker\")");
    if ((!forget && (tracker || force)) || (force && !json_is_boolean(force)))
        return ug_ctl_refuse(emit, ectx, "fleet %s: %s", sub, forget ? "\"force\" is true or false" : "takes no members");
    if (!ctx)
        return ug_ctl_refuse(emit, ectx, "fleet: this tracker runs alone (its policy has no fleet: section)");
    char err[400];
    json_t *o = ug_fleet_control(ctx, req, err, sizeof err);
    if (!o)
        return ug_ctl_refuse(emit, ectx, "%s", err);
    if (forget) {
        char line[300];
        snprintf(line, sizeof line, "fleet forget %s%s: %lld slots released", json_string_value(tracker),
                 json_is_true(force) ? " (forced)" : "", (long long)json_integer_value(json_object_get(o, "slots")));
        (void)ug_ctl_note(I, "fleet_forget", NULL, NULL, line);
    }
    return ug_ctl_reply(emit, ectx, o, true);
}

/* ---- attach -------------------------------------------------------------------- */

static const ug_sink alone_sink = {.policy_ok = still_alone};
static const ug_ctl_ext alone_ext = {.status_tracker = tracker_status, .flag_reply = flag_reply,
                                     .cmd = "fleet", .run = fleet_cmd};

int ug_fleet_attach(ug_inst *I, const ug_policy *p, char *err, size_t errcap)
{
    if (ug_inst_state_override(I)) { /* the host's own state folder: never in a fleet */
        ug_inst_subscribe(I, NULL, &alone_ext);
        return 0;
    }
    if (!p->fleet.enabled) {
        ug_inst_subscribe(I, &alone_sink, &alone_ext);
        return 0;
    }
    ug_fleet *F = ug_fleet_new(I, &p->fleet, err, errcap);
    if (!F)
        return -1;
    F->sink = (ug_sink){.ctx = F, .slots = &F->slots, .granted = fl_on_commit, .outcome = on_outcome,
                        .flag = on_flag, .hold = on_hold, .promoted = on_promoted, .decides_holds = leads, .policy_ok = same_fleet,
                        .start = start, .stop = stop, .destroy = destroy};
    F->ext = alone_ext;
    F->ext.ctx = F;
    F->ext.status_stage = stage_status;
    F->ext.metrics = metrics;
    ug_inst_subscribe(I, &F->sink, &F->ext);
    return 0;
}
