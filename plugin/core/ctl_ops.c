/* Control's operations: pause, resume and halt (durably, and told through the sink), reload, the grants of a release, the history. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/workers.h"
#include "core/ctl_impl.h"
#include "core/flags.h"
#include "core/instance.h"
#include "core/sink.h"

/* ---- pause, resume, halt ------------------------------------------------------ */

/* The rollouts a request names: "rollout": NAME or "all": true. */
static int targets_of(ug_inst *I, json_t *req, const ug_live_rollout **out, size_t *n, char *err, size_t errcap)
{
    ug_live *l = atomic_load(&I->live);
    json_t *all = json_object_get(req, "all"), *name = json_object_get(req, "rollout");
    *n = 0;
    if (json_is_true(all) && !name) {
        for (size_t i = 0; i < l->pol->nrollouts; i++)
            out[(*n)++] = &l->ro[i];
        return 0;
    }
    if (all || !json_is_string(name))
        return snprintf(err, errcap, "name one rollout (\"rollout\") or \"all\": true"), -1;
    const ug_live_rollout *lr = ug_live_find(l, json_string_value(name));
    if (!lr)
        return snprintf(err, errcap, "no rollout named %.64s in %.200s", json_string_value(name), l->pol->path), -1;
    out[(*n)++] = lr;
    return 0;
}

/* resume: lifts a pause and a halt; after an automatic halt, halt_when
 * counts afresh from now (policy.md), which the reply says in counts:
 * {rollout: {"since", "min_outcomes"}}. 0 or -1 (not stored). */
static int resume_one(ug_inst *I, const ug_live_rollout *lr, uint64_t now, const char *why, json_t *counts)
{
    char line[600];
    /* a halt a worker raised since the last tick is stored (and in the
     * history) first: else tick() would store it after this resume */
    (void)ug_flags_store_raised(I, lr->rt, now);
    bool was = atomic_load(&lr->rt->halted), automatic;
    int rc = ug_flags_resume_halt(I, lr->rt, lr->r->has_halt_when, lr->sc, now, &automatic) |
             ug_flags_pause(I, lr->rt, false);
    if (automatic)
        json_object_set_new(counts, lr->r->name,
                            json_pack("{s:I, s:I}", "since", (json_int_t)now, "min_outcomes",
                                      (json_int_t)lr->r->halt_min_outcomes));
    snprintf(line, sizeof line, "resume rollout %s%s%s%s%s%s", lr->r->name, was ? " (lifts its halt)" : "",
             automatic ? "; halt_when now counts only the outcomes from here on" : "",
             lr->r->paused ? "; the policy file still says paused: true" : "", why ? ": " : "", why ? why : "");
    return rc | ug_ctl_note(I, "resume", lr->r->name, why, line);
}

static int flag_cmd(ug_inst *I, json_t *req, ug_emit emit, void *ctx, const char *cmd)
{
    const ug_live_rollout *rs[256];
    size_t n;
    char err[300], line[600];
    const char *why = json_string_value(json_object_get(req, "why"));
    if (targets_of(I, req, rs, &n, err, sizeof err) != 0)
        return ug_ctl_refuse(emit, ctx, "%s: %s", cmd, err);
    bool halt = strcmp(cmd, "halt") == 0, pause = strcmp(cmd, "pause") == 0;
    if ((halt || json_object_get(req, "why")) && (!why || !why[0] || strlen(why) > 200 || strpbrk(why, "\n\r")))
        return ug_ctl_refuse(emit, ctx, "%s: give \"why\", one line of 1..200 bytes", cmd);
    uint64_t now = ug_inst_now(I);
    json_t *done = json_array(), *counts = json_object();
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const ug_live_rollout *lr = rs[i];
        if (halt) {
            rc |= ug_flags_halt(I, lr->rt, why, now, I->caller);
        } else if (pause) {
            rc |= ug_flags_pause(I, lr->rt, true);
            snprintf(line, sizeof line, "pause rollout %s%s%s", lr->r->name, why ? ": " : "", why ? why : "");
            rc |= ug_ctl_note(I, "pause", lr->r->name, why, line);
        } else {
            rc |= resume_one(I, lr, now, why, counts);
        }
        json_array_append_new(done, json_string(lr->r->name));
    }
    atomic_fetch_add(&I->epoch, 1); /* remembered replies no longer hold */
    ug_wait_workers(I, NULL);      /* the next HELLO sees it: now it has taken effect */
    int told = -1;
    if (I->sink && I->sink->flag) { /* the others obey once they hold it */
        ug_flag_op op = halt ? UG_FLAG_HALT : pause ? UG_FLAG_PAUSE : UG_FLAG_RESUME;
        told = 0;
        for (size_t i = 0; i < n; i++)
            told = I->sink->flag(I->sink->ctx, rs[i]->r->name, op, halt ? why : NULL, now, i + 1 == n ? 1500 : 0);
    }
    if (rc != 0) {
        json_decref(done);
        json_decref(counts);
        return ug_ctl_refuse(emit, ctx, "%s: in force now, but the state folder %s did not store it (see the log)",
                             cmd, I->state_dir);
    }
    json_t *o = json_pack("{s:s, s:o}", "did", cmd, "rollouts", done);
    if (o && json_object_size(counts))
        json_object_set(o, "halt_when_counts_from", counts);
    json_decref(counts);
    if (I->ctl_ext && I->ctl_ext->flag_reply && o)
        I->ctl_ext->flag_reply(I->ctl_ext->ctx, o, told);
    return ug_ctl_reply(emit, ctx, o, true);
}

int ug_ctl_pause(ug_inst *I, json_t *req, ug_emit e, void *c)
{
    return flag_cmd(I, req, e, c, "pause");
}

int ug_ctl_resume(ug_inst *I, json_t *req, ug_emit e, void *c)
{
    return flag_cmd(I, req, e, c, "resume");
}

int ug_ctl_halt(ug_inst *I, json_t *req, ug_emit e, void *c)
{
    return flag_cmd(I, req, e, c, "halt");
}

int ug_ctl_reload(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    char err[UG_ERR_MAX + 128];
    if (ug_inst_reload(I, NULL, err, sizeof err) != 0) { /* the host logs a refused SIGHUP; this one, we do */
        ug_logf(I, UG_LOG_ERROR, "control: reload refused, the running policy stays: %s", err);
        return ug_ctl_refuse(emit, ctx, "%s", err);
    }
    ug_live *l = atomic_load(&I->live);
    return ug_ctl_reply(emit, ctx, json_pack("{s:s, s:I}", "policy", l->pol->path, "generation", (json_int_t)l->gen), true);
}

/* ---- grants and history ------------------------------------------------------------ */

typedef struct {
    uint64_t uid;
    uint32_t at;
    uint16_t stage;
    bool learned; /* granted elsewhere (shown as "remote") */
} listed_grant;

typedef struct {
    listed_grant *v;
    size_t n, cap;
    int want; /* stage id to keep, or -1 for all */
    const char *want_name; /* or the stage name to keep (an earlier release's stage may be gone) */
    const ug_store *store;
    bool oom;
} glist;

static void grant_row(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    glist *g = ctx;
    if (g->want >= 0 && gi->stage != g->want)
        return;
    if (g->want_name && strcmp(ug_store_stage_name(g->store, gi->stage), g->want_name) != 0)
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 1024;
        listed_grant *v = realloc(g->v, cap * sizeof *v);
        if (!v) {
            g->oom = true;
            return;
        }
        g->v = v, g->cap = cap;
    }
    g->v[g->n++] = (listed_grant){uid, gi->at, gi->stage, gi->learned};
}

static int by_uid(const void *a, const void *b)
{
    const listed_grant *x = a, *y = b;
    return (x->uid > y->uid) - (x->uid < y->uid);
}

static int grants_reply(ug_inst *I, const ug_live_rollout *lr, const char *rel, const char *stage, glist *g,
                        ug_emit emit, void *ctx);

static void add_release(void *ctx, const char *to)
{
    char *b = ctx;
    size_t n = strlen(b);
    if (n < 400)
        snprintf(b + n, 512 - n, "%s%s", n ? ", " : "", to);
}

/* An earlier release's grants, as data.mdb holds them: 0, or the refusal's rc. */
static int earlier_release(ug_inst *I, const ug_live_rollout *lr, const char *rel, const char *stage, glist *g,
                           ug_emit emit, void *ctx)
{
    char err[600];
    g->want_name = stage;
    int rc = I->store ? ug_store_read_release(I->store, lr->r->name, rel, grant_row, g, err, sizeof err) : 0;
    if (rc < 0)
        return ug_ctl_refuse(emit, ctx, "grants: %s", err);
    if (rc == 0) {
        char known[512] = "";
        if (I->store)
            ug_store_releases(I->store, lr->r->name, add_release, known);
        return ug_ctl_refuse(emit, ctx, "grants: rollout %s never granted release %s (its releases: %s)", lr->r->name,
                             rel, known[0] ? known : "none");
    }
    return 0;
}

/* Streamed: a release may hold millions of grants. */
int ug_ctl_grants(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    ug_live *l = atomic_load(&I->live);
    const char *name = json_string_value(json_object_get(req, "rollout"));
    const char *stage = json_string_value(json_object_get(req, "stage"));
    const char *rel = json_string_value(json_object_get(req, "release"));
    const ug_live_rollout *lr = name ? ug_live_find(l, name) : NULL;
    if (!lr)
        return ug_ctl_refuse(emit, ctx, "grants: no rollout named %s in %s", name ? name : "(none given)", l->pol->path);
    glist g = {.want = -1, .store = I->store};
    if (rel && strcmp(rel, lr->r->to) != 0) {
        int rc = earlier_release(I, lr, rel, stage, &g, emit, ctx);
        if (rc != 0 || g.oom) {
            free(g.v);
            return g.oom ? ug_ctl_refuse(emit, ctx, "grants: out of memory") : rc;
        }
        return grants_reply(I, lr, rel, stage, &g, emit, ctx);
    }
    if (stage) {
        const ug_live_stage *ls = ug_live_stage_named(lr, stage);
        if (!ls)
            return ug_ctl_refuse(emit, ctx, "grants: rollout %s has no stage named %s", name, stage);
        g.want = ug_stage_quota_id(ls->q);
    }
    ug_scope_foreach(lr->sc, grant_row, &g);
    if (g.oom) {
        free(g.v);
        return ug_ctl_refuse(emit, ctx, "grants: out of memory");
    }
    return grants_reply(I, lr, lr->r->to, stage, &g, emit, ctx);
}

/* The grants of g, sorted by uid, streamed; frees g. */
static int grants_reply(ug_inst *I, const ug_live_rollout *lr, const char *rel, const char *stage, glist *g,
                        ug_emit emit, void *ctx)
{
    char buf[256];
    if (g->n) /* qsort may not be handed NULL, even for nothing */
        qsort(g->v, g->n, sizeof *g->v, by_uid);
    json_t *head = json_pack("{s:s, s:s, s:o}", "rollout", lr->r->name, "release", rel, "stage",
                             stage ? json_string(stage) : json_null());
    char *h = json_dumps(head, JSON_COMPACT);
    json_decref(head);
    emit(ctx, "{\"ok\":true,", 11);
    emit(ctx, h + 1, strlen(h) - 2); /* the members, without braces */
    free(h);
    emit(ctx, ",\"grants\":[", 11);
    for (size_t i = 0; i < g->n; i++) {
        json_t *st = json_string(ug_store_stage_name(I->store, g->v[i].stage));
        char *sn = json_dumps(st, JSON_ENCODE_ANY);
        int k = snprintf(buf, sizeof buf, "%s{\"uid\":%" PRIu64 ",\"stage\":%s,\"at\":%" PRIu32 "%s}", i ? "," : "",
                         g->v[i].uid, sn ? sn : "null", g->v[i].at, g->v[i].learned ? ",\"remote\":true" : "");
        free(sn);
        json_decref(st);
        emit(ctx, buf, (size_t)k);
    }
    emit(ctx, "]}\n", 3);
    free(g->v);
    return 0;
}

/* Sets key to s unless it is absent ("" or NULL). */
static void set_text(json_t *o, const char *key, const char *s)
{
    if (s && s[0])
        json_object_set_new(o, key, json_string(s));
}

/* {"at", "actor": {"kind"[, "uid", "pid"]}, "action", "rollout", "reason",
 * "summary", "what"} (docs/control.md); an entry stored before actors
 * were kept has kind "unknown" and its "what" alone. */
static void history_row(void *ctx, uint64_t at, const char *line)
{
    char buf[UG_HISTORY_LINE_MAX + 1];
    ug_event e;
    snprintf(buf, sizeof buf, "%s", line);
    ug_audit_decode(buf, &e);
    json_t *who = json_pack("{s:s}", "kind", ug_actor_name(e.by.kind));
    if ((e.by.kind == UG_ACTOR_CONTROL || e.by.kind == UG_ACTOR_HOST) && e.by.pid > 0) {
        json_object_set_new(who, "uid", json_integer(e.by.uid));
        json_object_set_new(who, "pid", json_integer(e.by.pid));
    }
    /* jansson refuses text that is not UTF-8: such an entry shows as '?'s */
    json_t *what = json_string(e.what);
    json_t *o = json_pack("{s:I, s:o, s:o}", "at", (json_int_t)at, "actor", who, "what",
                          what ? what : json_string("?"));
    if (!o)
        return;
    set_text(o, "action", e.action);
    set_text(o, "rollout", e.rollout);
    set_text(o, "reason", e.reason);
    set_text(o, "summary", e.summary);
    json_array_append_new(ctx, o);
}

int ug_ctl_history(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    json_t *a = json_array();
    ug_store_history(I->store, history_row, a);
    return ug_ctl_reply(emit, ctx, json_pack("{s:o}", "history", a), true);
}
