/* Control (docs/control.md): one JSON request in, one reply out; status, pause/resume/halt, explain, grants, metrics. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "fleet/fleet.h"
#include "core/runtime.h"

#define REQ_MAX (64u << 10)

const char *const ug_stat_names[ST_COUNT] = {
    [ST_DATAGRAMS] = "datagrams",
    [ST_FOREIGN] = "not_upgate",
    [ST_HELLOS] = "hellos",
    [ST_HINTS] = "hints",
    [ST_HINTS_NEW] = "hints_new",
    [ST_HINTS_STICKY] = "hints_sticky",
    [ST_COOKIES] = "cookies",
    [ST_WAIT0 + UG_WHY_NOT_TARGETED] = "wait_not_targeted",
    [ST_WAIT0 + UG_WHY_NOT_SELECTED] = "wait_not_selected",
    [ST_WAIT0 + UG_WHY_QUOTA] = "wait_quota",
    [ST_WAIT0 + UG_WHY_CLOCK] = "wait_clock_skew",
    [ST_WAIT0 + UG_WHY_PAUSED] = "wait_paused",
    [ST_WAIT0 + UG_WHY_RATE] = "wait_rate",
    [ST_WAIT0 + UG_WHY_TOO_SMALL] = "wait_too_small",
    [ST_DROP0 + UG_E_SIZE] = "drop_size",
    [ST_DROP0 + UG_E_MSGPACK] = "drop_msgpack",
    [ST_DROP0 + UG_E_HEADER] = "drop_header",
    [ST_DROP0 + UG_E_SCHEMA] = "drop_schema",
    [ST_DROP0 + UG_E_VERSION] = "drop_version",
    [ST_DROP0 + UG_E_STRING] = "drop_string",
    [ST_DROP0 + UG_E_KEY] = "drop_untrusted_issuer",
    [ST_DROP0 + UG_E_SIG] = "drop_signature",
    [ST_DROP0 + UG_E_EXPIRED] = "drop_expired",
    [ST_DROP0 + UG_E_BINDING] = "drop_binding",
    [ST_DROP0 + UG_E_BUFFER] = "drop_internal",
    [ST_DROP_TYPE] = "drop_type",
    [ST_SIG_CHECKS] = "signature_checks",
    [ST_CRED_CACHE_HITS] = "credential_cache_hits",
    [ST_RETRANSMITS] = "retransmits_answered",
    [ST_DROP_BUDGET] = "drop_source_budget",
    [ST_FLUSH_FAILED] = "flush_failed",
    [ST_HELD_FOR_DISK] = "replies_after_flush",
    [ST_REPORTS] = "reports_counted",
    [ST_REPORTS_SAME] = "reports_unchanged",
    [ST_REPORTS_UNKNOWN] = "reports_not_offered",
    [ST_OUTCOMES_SEEN] = "outcomes_seen",
};

static const char *const why_key[UG_WHY_COUNT_] = {"not_targeted", "not_selected", "quota", "clock",
                                                   "paused", "rate", "too_small"};

static uint64_t sum_stat(ug_inst *I, unsigned st)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < I->nworkers; i++)
        v += atomic_load_explicit(&I->workers[i].c[st], memory_order_relaxed);
    return v;
}

size_t ug_stats(ug_inst *I, ug_stat *out, size_t cap)
{
    size_t n = 0;
    for (unsigned st = 0; st < ST_COUNT; st++) {
        if (!ug_stat_names[st]) /* reasons a tracker never meets (peer-side checks) */
            continue;
        if (n < cap)
            out[n] = (ug_stat){ug_stat_names[st], sum_stat(I, st)};
        n++;
    }
    return n;
}

/* ---- replies --------------------------------------------------------------- */

static int dump_cb(const char *buf, size_t size, void *data)
{
    void **e = data;
    ((ug_emit)e[0])(e[1], buf, size);
    return 0;
}

/* Emits o (stolen) with "ok" set; returns 0 or -1 to match ok. */
static int reply(ug_emit emit, void *ctx, json_t *o, bool ok)
{
    if (!o)
        o = json_object();
    json_object_set_new(o, "ok", json_boolean(ok));
    void *e[2] = {(void *)emit, ctx};
    /* reals are percentages of two decimals: 10 digits print them exactly
     * as written (12.34, not 12.339999999999999) */
    json_dump_callback(o, dump_cb, e, JSON_COMPACT | JSON_REAL_PRECISION(10));
    emit(ctx, "\n", 1);
    json_decref(o);
    return ok ? 0 : -1;
}

__attribute__((format(printf, 3, 4))) static int refuse(ug_emit emit, void *ctx, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line of ASCII, whatever a request echoed into it (and a cut
     * multi-byte character would make jansson refuse the string) */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    return reply(emit, ctx, json_pack("{s:s}", "error", msg), false);
}

/* ---- status ------------------------------------------------------------------ */

static json_t *waits_json(const ug_waits *w, unsigned n)
{
    json_t *o = json_object();
    for (unsigned why = 0; why < UG_WHY_COUNT_; why++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n; i++)
            v += atomic_load_explicit(&w[i].why[why], memory_order_relaxed);
        json_object_set_new(o, why_key[why], json_integer((json_int_t)v));
    }
    return o;
}

/* Outcome counts per stage of a rollout, from one pass over its grants. */
typedef struct {
    const ug_live_rollout *lr;
    uint64_t before; /* pending granted before this: not taken */
    uint64_t (*per)[UG_OUT_COUNT_ + 1]; /* [stage index][outcome, +1: not taken] */
    uint64_t all[UG_OUT_COUNT_ + 1];
} out_scan;

static void scan_one(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    (void)uid;
    out_scan *s = ctx;
    unsigned k = gi->outcome == UG_OUT_PENDING && gi->at < s->before ? UG_OUT_COUNT_ : gi->outcome;
    s->all[k]++;
    const ug_live_stage *ls = ug_live_stage_by_id(s->lr, gi->stage);
    if (ls)
        s->per[ls - s->lr->stages][k]++;
}

static json_t *outcomes_json(const uint64_t *c, bool detail)
{
    uint64_t failed = c[UG_OUT_ROLLED_BACK] + c[UG_OUT_DOWNLOAD_FAILED] + c[UG_OUT_MISMATCH] + c[UG_OUT_INSTALL_FAILED];
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "upgraded", (json_int_t)c[UG_OUT_UPGRADED], "rolled_back",
                          (json_int_t)c[UG_OUT_ROLLED_BACK], "failed", (json_int_t)failed, "declined",
                          (json_int_t)c[UG_OUT_DECLINED], "pending", (json_int_t)c[UG_OUT_PENDING], "not_taken",
                          (json_int_t)c[UG_OUT_COUNT_]);
    if (detail)
        json_object_set_new(o, "failed_by",
                            json_pack("{s:I, s:I, s:I, s:I}", "download_failed", (json_int_t)c[UG_OUT_DOWNLOAD_FAILED],
                                      "mismatch", (json_int_t)c[UG_OUT_MISMATCH], "install_failed",
                                      (json_int_t)c[UG_OUT_INSTALL_FAILED], "rolled_back",
                                      (json_int_t)c[UG_OUT_ROLLED_BACK]));
    return o;
}

static json_t *stage_json(ug_inst *I, const ug_live_rollout *lr, size_t j, const uint64_t *outc, uint64_t now)
{
    const ug_live_stage *ls = &lr->stages[j];
    const ug_stage *s = ls->s;
    uint64_t m = 0, h = 0;
    if (ls->q)
        ug_stage_quota_offers(ls->q, now, &m, &h);
    json_t *o = json_pack("{s:s, s:I, s:o, s:o, s:o, s:{s:I, s:I}, s:o, s:o}", "name", s->name, "granted",
                     (json_int_t)(ls->q ? ug_stage_quota_count(ls->q) : 0), "quota",
                     s->has_quota ? json_integer((json_int_t)s->quota) : json_null(), "percent",
                     s->has_percent ? json_real(ug_live_percent(lr, s, now) / 100.0) : json_null(), "rate",
                     s->has_rate ? json_real(s->rate) : json_null(), "offers", "last_minute", (json_int_t)m,
                     "last_hour", (json_int_t)h, "waits", waits_json(ls->rt->waits, I->nworkers), "outcomes",
                     outcomes_json(outc, true));
    if (I->fleet && o) { /* granted: every uid the fleet offered under it, as known here */
        uint64_t all = 0;
        for (unsigned k = 0; k <= UG_OUT_COUNT_; k++)
            all += outc[k];
        json_object_set_new(o, "granted", json_integer((json_int_t)all));
        json_object_set_new(o, "granted_here", json_integer((json_int_t)(ls->q ? ug_stage_quota_count(ls->q) : 0)));
        json_object_set_new(o, "lease_unused_here",
                            json_integer((json_int_t)(ls->q && ug_stage_quota_is_sourced(ls->q) ? ug_stage_quota_remaining(ls->q)
                                                                                             : 0)));
        if (s->has_fleet_rate)
            json_object_set_new(o, "fleet_rate", json_real(s->fleet_rate));
        json_t *f = ug_fleet_stage_status(I->fleet, lr->r->name, lr->r->to, s->name);
        json_object_set_new(o, "fleet", f ? f : json_null());
    }
    return o;
}

static json_t *rollout_json(ug_inst *I, const ug_live_rollout *lr, uint64_t now)
{
    const ug_rollout *r = lr->r;
    ug_rollout_state *rt = lr->rt;
    out_scan sc = {.lr = lr, .before = now > r->outcome_window ? now - r->outcome_window : 0,
                   .per = calloc(r->nstages ? r->nstages : 1, sizeof *sc.per)};
    if (!sc.per)
        return NULL;
    if (lr->sc)
        ug_scope_foreach(lr->sc, scan_one, &sc);
    bool ctl = atomic_load(&rt->ctl_paused), halted = atomic_load(&rt->halted);
    json_t *stages = json_array();
    for (size_t j = 0; j < r->nstages; j++)
        json_array_append_new(stages, stage_json(I, lr, j, sc.per[j], now));
    json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:o, s:b, s:o, s:o, s:o, s:o}", "name", r->name, "release", r->to,
                          "manifest_expires", (json_int_t)r->rel.exp, "paused", r->paused || ctl, "paused_by",
                          r->paused ? json_string("policy") : ctl ? json_string("control") : json_null(), "halted",
                          halted, "halted_why", halted ? json_string(rt->halted_why) : json_null(), "waits",
                          waits_json(rt->waits, I->nworkers), "outcomes", outcomes_json(sc.all, true), "stages",
                          stages);
    uint64_t held = atomic_load(&rt->held_since);
    json_object_set_new(o, "ramp_held_since", held ? json_integer((json_int_t)held) : json_null());
    json_object_set_new(o, "ramp_shift_s", json_integer((json_int_t)atomic_load(&rt->shift)));
    free(sc.per);
    return o;
}

static json_t *tracker_json(ug_inst *I, const ug_live *l, uint64_t now)
{
    static const char *const modes[] = {"never", "always", "auto"};
    json_t *drops = json_object();
    for (unsigned st = ST_DROP0; st <= ST_DROP_BUDGET; st++)
        if (ug_stat_names[st] && strncmp(ug_stat_names[st], "drop_", 5) == 0)
            json_object_set_new(drops, ug_stat_names[st] + 5, json_integer((json_int_t)sum_stat(I, st)));
    json_t *waits = json_object();
    for (unsigned why = 0; why < UG_WHY_COUNT_; why++)
        json_object_set_new(waits, why_key[why], json_integer((json_int_t)sum_stat(I, ST_WAIT0 + why)));
    return json_pack("{s:I, s:s, s:I, s:s, s:b, s:s, s:s, s:o, s:o, s:o}", "uptime_s", (json_int_t)(now - I->started),
                     "policy", l->pol->path, "generation", (json_int_t)l->gen, "cookie", modes[l->pol->cookie],
                     "cookie_under_load", atomic_load(&I->under_load), "verify",
                     l->pol->verify_always ? "always" : "claims-first", "state", I->state_dir, "drops", drops,
                     "waits", waits, "fleet", I->fleet ? ug_fleet_status(I->fleet) : json_null());
}

static int cmd_status(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    ug_live *l = atomic_load(&I->live); /* control is serialized with reload */
    uint64_t now = ug_inst_now(I);
    json_t *ro = json_array();
    for (size_t i = 0; i < l->pol->nrollouts; i++)
        json_array_append_new(ro, rollout_json(I, &l->ro[i], now));
    return reply(emit, ctx, json_pack("{s:o, s:o}", "tracker", tracker_json(I, l, now), "rollouts", ro), true);
}

static int cmd_info(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    ug_live *l = atomic_load(&I->live);
    return reply(emit, ctx, json_pack("{s:s, s:s}", "state", I->state_dir, "policy", l->pol->path), true);
}

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

static int history(ug_inst *I, const char *line)
{
    ug_logf(I, UG_LOG_INFO, "control: %s", line);
    return ug_history(I, ug_inst_now(I), line);
}

static int cmd_flag(ug_inst *I, json_t *req, ug_emit emit, void *ctx, const char *cmd)
{
    const ug_live_rollout *rs[256];
    size_t n;
    char err[300], line[600];
    const char *why = json_string_value(json_object_get(req, "why"));
    if (targets_of(I, req, rs, &n, err, sizeof err) != 0)
        return refuse(emit, ctx, "%s: %s", cmd, err);
    bool halt = strcmp(cmd, "halt") == 0, pause = strcmp(cmd, "pause") == 0;
    if (halt && (!why || !why[0] || strlen(why) > 200 || strpbrk(why, "\n\r")))
        return refuse(emit, ctx, "halt: give \"why\", one line of 1..200 bytes");
    if (!halt && json_object_get(req, "why"))
        return refuse(emit, ctx, "%s: unknown member \"why\"", cmd);
    uint64_t now = ug_inst_now(I);
    json_t *done = json_array();
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        const ug_live_rollout *lr = rs[i];
        if (halt) {
            rc |= ug_rollout_halt(I, lr->rt, why, now, false);
        } else if (pause) {
            rc |= ug_rollout_pause(I, lr->rt, true);
            snprintf(line, sizeof line, "pause rollout %s", lr->r->name);
            rc |= history(I, line);
        } else {
            bool was = atomic_load(&lr->rt->halted);
            rc |= ug_rollout_pause(I, lr->rt, false) | ug_rollout_lift_halt(I, lr->rt);
            snprintf(line, sizeof line, "resume rollout %s%s%s", lr->r->name, was ? " (lifts its halt)" : "",
                     lr->r->paused ? "; the policy file still says paused: true" : "");
            rc |= history(I, line);
        }
        json_array_append_new(done, json_string(lr->r->name));
    }
    atomic_fetch_add(&I->epoch, 1); /* remembered replies no longer hold */
    ug_wait_workers(I, NULL);      /* the next HELLO sees it: now it has taken effect */
    json_t *fleet = json_null();
    if (I->fleet) { /* the others obey once Redis holds it (docs/fleet.md) */
        ug_flag_op op = halt ? UG_FLAG_HALT : pause ? UG_FLAG_PAUSE : UG_FLAG_RESUME;
        int written = 0;
        for (size_t i = 0; i < n; i++)
            written = ug_fleet_flag(I->fleet, rs[i]->r->name, op, why, now, i + 1 == n ? 1500 : 0);
        fleet = json_string(written ? "written" : "queued: Redis is unreachable; the fleet hears it when it returns");
    }
    if (rc != 0) {
        json_decref(fleet);
        return refuse(emit, ctx, "%s: in force now, but the state folder %s did not store it (see the log)", cmd,
                      I->state_dir);
    }
    return reply(emit, ctx, json_pack("{s:s, s:o, s:o}", "did", cmd, "rollouts", done, "fleet", fleet), true);
}

static int cmd_pause(ug_inst *I, json_t *req, ug_emit e, void *c) { return cmd_flag(I, req, e, c, "pause"); }
static int cmd_resume(ug_inst *I, json_t *req, ug_emit e, void *c) { return cmd_flag(I, req, e, c, "resume"); }
static int cmd_halt(ug_inst *I, json_t *req, ug_emit e, void *c) { return cmd_flag(I, req, e, c, "halt"); }

static int cmd_reload(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    char err[UG_ERR_MAX + 128];
    if (ug_inst_reload(I, NULL, err, sizeof err) != 0)
        return refuse(emit, ctx, "%s", err);
    ug_live *l = atomic_load(&I->live);
    return reply(emit, ctx, json_pack("{s:s, s:I}", "policy", l->pol->path, "generation", (json_int_t)l->gen), true);
}

/* ---- fleet ------------------------------------------------------------------------- */

static int cmd_fleet(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    const char *sub = json_string_value(json_object_get(req, "sub"));
    json_t *tracker = json_object_get(req, "tracker"), *force = json_object_get(req, "force");
    if (!sub || (strcmp(sub, "status") != 0 && strcmp(sub, "forget") != 0))
        return refuse(emit, ctx, "fleet: \"sub\" must be \"status\" or \"forget\"");
    bool forget = strcmp(sub, "forget") == 0;
    if (forget && (!json_is_string(tracker) || !json_string_length(tracker)))
        return refuse(emit, ctx, "fleet forget: name the tracker (\"tracker\")");
    if ((!forget && (tracker || force)) || (force && !json_is_boolean(force)))
        return refuse(emit, ctx, "fleet %s: %s", sub, forget ? "\"force\" is true or false" : "takes no members");
    if (!I->fleet)
        return refuse(emit, ctx, "fleet: this tracker runs alone (its policy has no fleet: section)");
    char err[400];
    json_t *o = ug_fleet_control(I->fleet, req, err, sizeof err);
    if (!o)
        return refuse(emit, ctx, "%s", err);
    if (forget) {
        char line[300];
        snprintf(line, sizeof line, "fleet forget %s%s: %lld slots released", json_string_value(tracker),
                 json_is_true(force) ? " (forced)" : "", (long long)json_integer_value(json_object_get(o, "slots")));
        history(I, line);
    }
    return reply(emit, ctx, o, true);
}

/* ---- explain ---------------------------------------------------------------------- */

/* "1.2.3.4" or "::1" into a sockaddr (port 0). */
static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, s, &a4->sin_addr) == 1)
        return a4->sin_family = AF_INET, 0;
    if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1)
        return a6->sin6_family = AF_INET6, 0;
    return -1;
}

typedef struct {
    uint64_t uid;
    char ver[UG_VER_MAX + 1], plat[UG_PLAT_MAX + 1], chan[UG_CHAN_MAX + 1];
    bool has_plat, has_chan;
    struct sockaddr_storage src;
} ug_query;

static json_t *explain_json(ug_inst *I, const ug_live *l, const ug_query *q)
{
    ug_claims cl = {.size = sizeof cl, .kind = UG_CLAIM_HELLO, .uid = q->uid, .ver = q->ver,
                    .plat = q->has_plat ? q->plat : NULL, .chan = q->has_chan ? q->chan : NULL,
                    .src = (const struct sockaddr *)&q->src, .flags = UG_DECIDE_ADDR_PROVED};
    ug_decision d = {.size = sizeof d};
    void *trace = NULL;
    if (ug_decide_in(I, l, 0, &cl, &d, &trace) != 0)
        return NULL;
    return trace;
}

static int query_from_json(json_t *req, ug_query *q, char *err, size_t errcap)
{
    json_t *uid = json_object_get(req, "uid");
    const char *ver = json_string_value(json_object_get(req, "ver")), *src = json_string_value(json_object_get(req, "src"));
    const char *plat = json_string_value(json_object_get(req, "plat")), *chan = json_string_value(json_object_get(req, "chan"));
    memset(q, 0, sizeof *q);
    ug_version v;
    if (!json_is_integer(uid) || json_integer_value(uid) < 1)
        return snprintf(err, errcap, "explain: \"uid\" must be an integer 1..2^63-1"), -1;
    if (!ver || ug_version_parse(&v, ver, strlen(ver)) != 0)
        return snprintf(err, errcap, "explain: \"ver\" must be a version like 1.4.0"), -1;
    if (!src || parse_addr(src, &q->src) != 0)
        return snprintf(err, errcap, "explain: \"src\" must be an IPv4 or IPv6 address"), -1;
    if ((plat && (!plat[0] || strlen(plat) > UG_PLAT_MAX)) || (chan && (!chan[0] || strlen(chan) > UG_CHAN_MAX)))
        return snprintf(err, errcap, "explain: \"plat\" is 1..%u bytes, \"chan\" 1..%u", UG_PLAT_MAX, UG_CHAN_MAX), -1;
    q->uid = (uint64_t)json_integer_value(uid);
    snprintf(q->ver, sizeof q->ver, "%s", ver);
    if ((q->has_plat = plat != NULL))
        snprintf(q->plat, sizeof q->plat, "%s", plat);
    if ((q->has_chan = chan != NULL))
        snprintf(q->chan, sizeof q->chan, "%s", chan);
    return 0;
}

static int cmd_explain(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    ug_query q;
    char err[200];
    if (query_from_json(req, &q, err, sizeof err) != 0)
        return refuse(emit, ctx, "%s", err);
    ug_live *l = atomic_load(&I->live);
    json_t *o = explain_json(I, l, &q);
    if (!o)
        return refuse(emit, ctx, "explain: out of memory");
    return reply(emit, ctx, o, true);
}

/* ---- grants and history ------------------------------------------------------------ */

typedef struct {
    uint64_t uid;
    uint32_t at;
    uint16_t stage;
    bool remote; /* fleet mode: granted by another tracker */
} listed_grant;

typedef struct {
    listed_grant *v;
    size_t n, cap;
    int want; /* stage id to keep, or -1 for all */
    bool oom;
} glist;

static void grant_row(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    glist *g = ctx;
    if (g->want >= 0 && gi->stage != g->want)
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

/* Streamed: a release may hold millions of grants. */
static int cmd_grants(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    ug_live *l = atomic_load(&I->live);
    const char *name = json_string_value(json_object_get(req, "rollout"));
    const char *stage = json_string_value(json_object_get(req, "stage"));
    const ug_live_rollout *lr = name ? ug_live_find(l, name) : NULL;
    if (!lr)
        return refuse(emit, ctx, "grants: no rollout named %s in %s", name ? name : "(none given)", l->pol->path);
    glist g = {.want = -1};
    if (stage) {
        const ug_live_stage *ls = NULL;
        for (size_t j = 0; j < lr->r->nstages && !ls; j++)
            ls = strcmp(lr->stages[j].s->name, stage) == 0 ? &lr->stages[j] : NULL;
        if (!ls)
            return refuse(emit, ctx, "grants: rollout %s has no stage named %s", name, stage);
        g.want = ug_stage_quota_id(ls->q);
    }
    ug_scope_foreach(lr->sc, grant_row, &g);
    if (g.oom) {
        free(g.v);
        return refuse(emit, ctx, "grants: out of memory");
    }
    if (g.n) /* qsort may not be handed NULL, even for nothing */
        qsort(g.v, g.n, sizeof *g.v, by_uid);
    char buf[256];
    json_t *head = json_pack("{s:s, s:s, s:o}", "rollout", lr->r->name, "release", lr->r->to, "stage",
                             stage ? json_string(stage) : json_null());
    char *h = json_dumps(head, JSON_COMPACT);
    json_decref(head);
    emit(ctx, "{\"ok\":true,", 11);
    emit(ctx, h + 1, strlen(h) - 2); /* the members, without braces */
    free(h);
    emit(ctx, ",\"grants\":[", 11);
    for (size_t i = 0; i < g.n; i++) {
        json_t *st = json_string(ug_store_stage_name(I->store, g.v[i].stage));
        char *sn = json_dumps(st, JSON_ENCODE_ANY);
        int k = snprintf(buf, sizeof buf, "%s{\"uid\":%" PRIu64 ",\"stage\":%s,\"at\":%" PRIu32 "%s}", i ? "," : "",
                         g.v[i].uid, sn ? sn : "null", g.v[i].at, g.v[i].remote ? ",\"remote\":true" : "");
        free(sn);
        json_decref(st);
        emit(ctx, buf, (size_t)k);
    }
    emit(ctx, "]}\n", 3);
    free(g.v);
    return 0;
}

static void history_row(void *ctx, uint64_t at, const char *line)
{
    json_array_append_new(ctx, json_pack("{s:I, s:s}", "at", (json_int_t)at, "what", line));
}

static int cmd_history(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    json_t *a = json_array();
    ug_store_history(I->store, history_row, a);
    return reply(emit, ctx, json_pack("{s:o}", "history", a), true);
}

/* ---- metrics (Prometheus text exposition) -------------------------------------------- */

typedef struct {
    ug_emit emit;
    void *ctx;
} mout;

__attribute__((format(printf, 2, 3))) static void mf(mout *m, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        m->emit(m->ctx, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void family(mout *m, const char *name, const char *type, const char *help)
{
    mf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_tracker(ug_inst *I, mout *m, const ug_live *l, uint64_t now)
{
    static const struct {
        const char *name, *help;
        unsigned st;
    } counters[] = {
        {"upgate_datagrams_total", "Datagrams the plugin was handed.", ST_DATAGRAMS},
        {"upgate_hellos_total", "Well-formed HELLOs.", ST_HELLOS},
        {"upgate_cookies_total", "COOKIE replies.", ST_COOKIES},
        {"upgate_signature_checks_total", "Ed25519 verifications.", ST_SIG_CHECKS},
        {"upgate_credential_cache_hits_total", "Credential checks answered from the cache.", ST_CRED_CACHE_HITS},
        {"upgate_retransmits_answered_total", "Retransmits answered from memory.", ST_RETRANSMITS},
        {"upgate_flush_failures_total", "Commits of grants that failed.", ST_FLUSH_FAILED},
        {"upgate_outcomes_seen_total", "Outcomes learned from HELLOs.", ST_OUTCOMES_SEEN},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        family(m, counters[i].name, "counter", counters[i].help);
        mf(m, "%s %" PRIu64 "\n", counters[i].name, sum_stat(I, counters[i].st));
    }
    family(m, "upgate_hints_total", "counter", "HINT replies, by kind.");
    mf(m, "upgate_hints_total{kind=\"new\"} %" PRIu64 "\nupgate_hints_total{kind=\"sticky\"} %" PRIu64 "\n",
       sum_stat(I, ST_HINTS_NEW), sum_stat(I, ST_HINTS_STICKY));
    family(m, "upgate_waits_total", "counter", "WAIT replies, by reason.");
    for (unsigned why = 0; why < UG_WHY_COUNT_; why++)
        mf(m, "upgate_waits_total{why=\"%s\"} %" PRIu64 "\n", why_key[why], sum_stat(I, ST_WAIT0 + why));
    family(m, "upgate_drops_total", "counter", "Datagrams dropped without a reply, by reason.");
    for (unsigned st = ST_DROP0; st <= ST_DROP_BUDGET; st++)
        if (ug_stat_names[st] && strncmp(ug_stat_names[st], "drop_", 5) == 0)
            mf(m, "upgate_drops_total{reason=\"%s\"} %" PRIu64 "\n", ug_stat_names[st] + 5, sum_stat(I, st));
    family(m, "upgate_reports_total", "counter", "REPORTs, by effect.");
    mf(m, "upgate_reports_total{effect=\"counted\"} %" PRIu64 "\nupgate_reports_total{effect=\"unchanged\"} %" PRIu64
          "\nupgate_reports_total{effect=\"not_offered\"} %" PRIu64 "\n",
       sum_stat(I, ST_REPORTS), sum_stat(I, ST_REPORTS_SAME), sum_stat(I, ST_REPORTS_UNKNOWN));
    family(m, "upgate_cookies_required", "gauge", "1 while every HELLO must carry a cookie.");
    mf(m, "upgate_cookies_required %d\n",
       l->pol->cookie == UG_COOKIE_ALWAYS || (l->pol->cookie == UG_COOKIE_AUTO && atomic_load(&I->under_load)));
    family(m, "upgate_policy_generation", "gauge", "Policies loaded since start.");
    mf(m, "upgate_policy_generation %" PRIu64 "\n", l->gen);
    family(m, "upgate_uptime_seconds", "gauge", "Seconds since the plugin started.");
    mf(m, "upgate_uptime_seconds %" PRIu64 "\n", now - I->started);
}

/* One pass over a rollout's grants gives the outcome counts of its stages. */
static uint64_t (*outcome_scan(const ug_live_rollout *lr, uint64_t now))[UG_OUT_COUNT_ + 1]
{
    const ug_rollout *r = lr->r;
    out_scan sc = {.lr = lr, .before = now > r->outcome_window ? now - r->outcome_window : 0,
                   .per = calloc(r->nstages ? r->nstages : 1, sizeof *sc.per)};
    if (sc.per && lr->sc)
        ug_scope_foreach(lr->sc, scan_one, &sc);
    return sc.per;
}

/* The exposition format wants a family's samples together, after its HELP
 * and TYPE: so family by family, each over every rollout and stage. */
static void metrics_rollouts(ug_inst *I, mout *m, const ug_live *l, uint64_t now)
{
    static const char *const outk[] = {"pending", "upgraded", "rolled_back", "declined", "download_failed",
                                       "mismatch", "install_failed", "not_taken"};
    size_t n = l->pol->nrollouts;
    uint64_t(**per)[UG_OUT_COUNT_ + 1] = calloc(n ? n : 1, sizeof *per);
    if (!per)
        return;
    for (size_t i = 0; i < n; i++)
        per[i] = outcome_scan(&l->ro[i], now);
#define EACH_ROLLOUT for (size_t i = 0; i < n; i++) for (const ug_live_rollout *lr = &l->ro[i]; lr; lr = NULL)
#define EACH_STAGE                                                                                                     \
    EACH_ROLLOUT for (size_t j = 0; j < lr->r->nstages; j++) for (const ug_live_stage *ls = &lr->stages[j]; ls; ls = NULL)
    family(m, "upgate_rollout_paused", "gauge", "1 while the rollout is paused.");
    EACH_ROLLOUT mf(m, "upgate_rollout_paused{rollout=\"%s\"} %d\n", lr->r->name,
                    lr->r->paused || atomic_load(&lr->rt->ctl_paused));
    family(m, "upgate_rollout_halted", "gauge", "1 while the rollout is halted.");
    EACH_ROLLOUT mf(m, "upgate_rollout_halted{rollout=\"%s\"} %d\n", lr->r->name, (int)atomic_load(&lr->rt->halted));
    family(m, "upgate_manifest_expiry_timestamp_seconds", "gauge", "When the rollout's release manifest expires.");
    EACH_ROLLOUT mf(m, "upgate_manifest_expiry_timestamp_seconds{rollout=\"%s\",release=\"%s\"} %" PRIu64 "\n",
                    lr->r->name, lr->r->to, lr->r->rel.exp);
    family(m, "upgate_stage_grants", "gauge", "Distinct uids offered the release by the stage.");
    EACH_STAGE mf(m, "upgate_stage_grants{rollout=\"%s\",stage=\"%s\"} %" PRIu64 "\n", lr->r->name, ls->s->name,
                  ls->q ? ug_stage_quota_count(ls->q) : 0);
    family(m, "upgate_stage_quota", "gauge", "The stage's quota.");
    EACH_STAGE if (ls->s->has_quota) mf(m, "upgate_stage_quota{rollout=\"%s\",stage=\"%s\"} %" PRIu64 "\n",
                                        lr->r->name, ls->s->name, ls->s->quota);
    family(m, "upgate_stage_percent_ratio", "gauge", "The stage's percentage in force, as a ratio.");
    EACH_STAGE if (ls->s->has_percent) mf(m, "upgate_stage_percent_ratio{rollout=\"%s\",stage=\"%s\"} %.4f\n",
                                          lr->r->name, ls->s->name, ug_live_percent(lr, ls->s, now) / 10000.0);
    family(m, "upgate_stage_offers_last_hour", "gauge", "New offers in the last hour.");
    EACH_STAGE
    {
        uint64_t mn = 0, hr = 0;
        if (ls->q)
            ug_stage_quota_offers(ls->q, now, &mn, &hr);
        mf(m, "upgate_stage_offers_last_hour{rollout=\"%s\",stage=\"%s\"} %" PRIu64 "\n", lr->r->name, ls->s->name,
           hr);
    }
    family(m, "upgate_stage_waits_total", "counter", "WAITs the stage caused, by reason.");
    EACH_STAGE for (unsigned why = 0; why < UG_WHY_COUNT_; why++)
    {
        uint64_t v = 0;
        for (unsigned w = 0; w < I->nworkers; w++)
            v += atomic_load_explicit(&ls->rt->waits[w].why[why], memory_order_relaxed);
        mf(m, "upgate_stage_waits_total{rollout=\"%s\",stage=\"%s\",why=\"%s\"} %" PRIu64 "\n", lr->r->name,
           ls->s->name, why_key[why], v);
    }
    family(m, "upgate_stage_outcomes", "gauge", "The stage's offers, by outcome.");
    EACH_STAGE for (unsigned o = 0; per[i] && o <= UG_OUT_COUNT_; o++)
        mf(m, "upgate_stage_outcomes{rollout=\"%s\",stage=\"%s\",outcome=\"%s\"} %" PRIu64 "\n", lr->r->name,
           ls->s->name, outk[o], per[i][j][o]);
#undef EACH_STAGE
#undef EACH_ROLLOUT
    for (size_t i = 0; i < n; i++)
        free(per[i]);
    free(per);
}

static int cmd_metrics(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    (void)req;
    mout m = {emit, ctx};
    ug_live *l = atomic_load(&I->live);
    uint64_t now = ug_inst_now(I);
    metrics_tracker(I, &m, l, now);
    metrics_rollouts(I, &m, l, now);
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------ */

typedef struct {
    const char *cmd;
    const char *members; /* allowed besides "cmd", space separated */
    int (*run)(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
} ug_command;

static const ug_command commands[] = {
    {"status", "", cmd_status},
    {"info", "", cmd_info},
    {"pause", "rollout all", cmd_pause},
    {"resume", "rollout all", cmd_resume},
    {"halt", "rollout all why", cmd_halt},
    {"reload", "", cmd_reload},
    {"explain", "uid ver src plat chan", cmd_explain},
    {"grants", "rollout stage", cmd_grants},
    {"history", "", cmd_history},
    {"metrics", "", cmd_metrics},
    {"fleet", "sub tracker force", cmd_fleet},
};

static bool member_ok(const char *members, const char *key)
{
    size_t n = strlen(key);
    if (n == 0) /* strstr finds "" everywhere: it would never move on */
        return false;
    for (const char *p = members; (p = strstr(p, key)); p += n)
        if ((p == members || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
            return true;
    return false;
}

int ug_control(ug_inst *I, const char *req, size_t len, ug_emit emit, void *ctx)
{
    if (len > REQ_MAX)
        return refuse(emit, ctx, "request of %zu bytes, over the %u-byte limit", len, REQ_MAX);
    json_error_t je;
    json_t *o = json_loadb(req, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return refuse(emit, ctx, "not a JSON object: %s", o ? "another JSON value" : je.text);
    }
    const char *cmd = json_string_value(json_object_get(o, "cmd"));
    const ug_command *c = NULL;
    for (size_t i = 0; cmd && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].cmd, cmd) == 0)
            c = &commands[i];
    int rc;
    const char *key;
    json_t *val;
    if (!c) {
        rc = refuse(emit, ctx, "unknown command %s (want status, pause, resume, halt, reload, explain, grants, history, "
                               "metrics, fleet)", cmd ? cmd : "(no \"cmd\" string)");
        goto out;
    }
    json_object_foreach(o, key, val)
    {
        if (strcmp(key, "cmd") != 0 && !member_ok(c->members, key)) {
            rc = refuse(emit, ctx, "%s: unknown member \"%.64s\"", cmd, key);
            goto out;
        }
    }
    rc = c->run(I, o, emit, ctx);
out:
    json_decref(o);
    return rc;
}

/* ---- check (upgate-node --check) ---------------------------------------------------------- */

/* "uid=N,ver=V,src=ADDR[,plat=P][,chan=C]" */
static int parse_explain(const char *s, ug_query *q, char *err, size_t errcap)
{
    json_t *o = json_object();
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *kv = buf, *next; kv; kv = next) {
        next = strchr(kv, ',');
        if (next)
            *next++ = 0;
        char *eq = strchr(kv, '=');
        if (!eq) {
            json_decref(o);
            return snprintf(err, errcap, "--explain: \"%.40s\" is not KEY=VALUE", kv), -1;
        }
        *eq = 0;
        if (!member_ok("uid ver src plat chan", kv) || json_object_get(o, kv)) {
            json_decref(o);
            return snprintf(err, errcap, "--explain: unknown or repeated key \"%.40s\"", kv), -1;
        }
        uint64_t uid = 0;
        if (strcmp(kv, "uid") == 0) {
            char *end;
            uid = strtoull(eq + 1, &end, 10);
            if (*end || eq[1] < '1' || eq[1] > '9' || uid > (uint64_t)UG_UID_MAX)
                uid = 0;
            json_object_set_new(o, kv, json_integer((json_int_t)uid));
        } else {
            json_object_set_new(o, kv, json_string(eq + 1));
        }
    }
    int rc = query_from_json(o, q, err, errcap);
    json_decref(o);
    return rc;
}

int ug_check(const ug_host *host, const char *path, const char *explain, ug_emit emit, void *ctx, char *err,
             size_t errcap)
{
    ug_host h = {.size = sizeof h, .nworkers = 1};
    if (host)
        memcpy(&h, host, host->size < sizeof h ? host->size : sizeof h);
    h.nworkers = 1;
    ug_query q;
    if (explain && parse_explain(explain, &q, err, errcap) != 0)
        return -1;
    ug_inst *I = calloc(1, sizeof *I);
    ug_worker *w = aligned_alloc(64, sizeof *w);
    if (!I || !w) {
        free(I);
        free(w);
        return snprintf(err, errcap, "out of memory"), -1;
    }
    memset(w, 0, sizeof *w);
    I->host = h;
    if (!I->host.now)
        I->host.now = ug_default_now;
    I->nworkers = 1;
    I->workers = w;
    (void)pthread_mutex_init(&I->reg_mu, NULL);
    int rc = -1;
    ug_policy *p = ug_policy_load(path, err, errcap);
    ug_live *l = p ? ug_live_build(I, p, err, errcap) : NULL; /* no store: nothing is opened for writing */
    if (l) {
        uint64_t now = ug_inst_now(I);
        json_t *o = ug_policy_summary(l->pol, (int64_t)now);
        if (o && explain)
            json_object_set_new(o, "explain", explain_json(I, l, &q));
        void *e[2] = {(void *)emit, ctx};
        if (o && json_dump_callback(o, dump_cb, e, JSON_COMPACT) == 0) {
            emit(ctx, "\n", 1);
            rc = 0;
        } else {
            snprintf(err, errcap, "%s: out of memory", path);
        }
        json_decref(o);
    }
    ug_live_free(l);
    ug_runtime_free(I);
    pthread_mutex_destroy(&I->reg_mu);
    free(w);
    free(I);
    return rc;
}
