/* Control's explain, and check() (upgate-node --check): a policy's summary and why it would answer a peer as it does. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "core/ctl_impl.h"
#include "core/gates.h"
#include "core/privileges.h"
#include "core/rules.h"

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

static json_t *decide_json(ug_inst *I, const ug_live *l, const ug_query *q);

/* Not targeted: why each rollout does not own the peer (its versions,
 * platforms or channels), so the operator sees which field to look at. */
static void explain_untargeted(const ug_live *l, const ug_query *q, json_t *o)
{
    ug_version v;
    json_t *a = json_array();
    if (!a || ug_version_parse(&v, q->ver, strlen(q->ver)) != 0) {
        json_decref(a);
        return;
    }
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_rollout *r = &l->pol->rollouts[i];
        char buf[1200];
        const char *why = ug_rollout_miss(r, &v, q->has_plat ? q->plat : "", q->has_chan ? q->chan : "", buf,
                                          sizeof buf);
        json_array_append_new(a, json_pack("{s:s, s:s}", "rollout", r->name, "why", why ? why : "targets it"));
    }
    json_object_set_new(o, "not_targeted", a);
}

/* The uid's grant: in the rollout that owns the peer or, when none does
 * (a uid that already runs the release, say), in any rollout's release. */
static void explain_grant(ug_inst *I, const ug_live *l, const ug_query *q, json_t *o)
{
    const char *rn = json_string_value(json_object_get(o, "rollout"));
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        ug_grant_info gi;
        if ((rn && strcmp(rn, lr->r->name) != 0) || !lr->sc || !ug_scope_lookup(lr->sc, q->uid, &gi))
            continue;
        json_object_set_new(o, "granted", json_true());
        json_object_set_new(o, "grant", json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "rollout", lr->r->name, "release",
                                                  lr->r->to, "stage", ug_store_stage_name(I->store, gi.stage), "at",
                                                  (json_int_t)gi.at, "outcome", ug_outcome_name(gi.outcome),
                                                  "remote", gi.learned));
        return;
    }
}

static json_t *explain_json(ug_inst *I, const ug_live *l, const ug_query *q)
{
    json_t *o = decide_json(I, l, q);
    if (!o)
        return NULL;
    if (json_is_null(json_object_get(o, "rollout")) || !json_object_get(o, "rollout"))
        explain_untargeted(l, q, o);
    explain_grant(I, l, q, o);
    return o;
}

static json_t *decide_json(ug_inst *I, const ug_live *l, const ug_query *q)
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

int ug_ctl_explain(ug_inst *I, json_t *req, ug_emit emit, void *ctx)
{
    ug_query q;
    char err[200];
    if (query_from_json(req, &q, err, sizeof err) != 0)
        return ug_ctl_refuse(emit, ctx, "%s", err);
    ug_live *l = atomic_load(&I->live);
    json_t *o = explain_json(I, l, &q);
    if (!o)
        return ug_ctl_refuse(emit, ctx, "explain: out of memory");
    const char *rn = json_string_value(json_object_get(o, "rollout"));
    const ug_live_rollout *lr = rn ? ug_live_find(l, rn) : NULL;
    uint64_t now = ug_inst_now(I);
    if (lr) /* the rollout's own windows (a stage's are in its trace) */
        json_object_set_new(o, "window", ug_windows_json(&lr->r->win, (int64_t)now));
    json_t *gates = json_array(); /* what the gates in the way of its schedules wait for */
    for (size_t j = 0; lr && j < lr->r->nstages; j++)
        if (lr->stages[j].s->has_percent && lr->stages[j].s->percent.gated)
            json_array_append_new(gates, json_pack("{s:s, s:o}", "stage", lr->stages[j].s->name, "gate",
                                                   ug_gates_json(&lr->stages[j])));
    json_object_set_new(o, "gates", gates);
    json_object_set_new(o, "census", ug_ctl_census_brief(I, l, now, 5));
    return ug_ctl_reply(emit, ctx, o, true);
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
        if (!ug_ctl_member_ok(ug_ctl_members("explain"), kv) || json_object_get(o, kv)) {
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
    /* a user to drop to: the files the load reads are listed, for what a reload as that user could not read */
    const char *user = UG_HAS_FIELD(ug_host, h.size, run_as) ? h.run_as : NULL;
    ug_opener *lister = user ? ug_opener_lister() : NULL;
    if (lister)
        ug_opener_record(lister);
    ug_policy *p = ug_policy_load_at(path, ug_inst_now(I), err, errcap);
    ug_opener_plain();
    ug_live *l = p ? ug_live_build(I, p, err, errcap) : NULL; /* no store: nothing is opened for writing */
    if (l) {
        uint64_t now = ug_inst_now(I);
        json_t *o = ug_policy_summary(l->pol, (int64_t)now);
        if (o && explain)
            json_object_set_new(o, "explain", explain_json(I, l, &q));
        if (o && lister)
            json_object_set_new(o, "privileges", ug_privileges_json(lister, l->pol, user));
        void *e[2] = {(void *)emit, ctx};
        if (o && json_dump_callback(o, ug_ctl_dump_cb, e, JSON_COMPACT) == 0) {
            emit(ctx, "\n", 1);
            rc = 0;
        } else {
            snprintf(err, errcap, "%s: out of memory", path);
        }
        json_decref(o);
    }
    ug_live_free(l);
    ug_opener_stop(lister);
    ug_state_free_all(I);
    pthread_mutex_destroy(&I->reg_mu);
    free(w);
    free(I);
    return rc;
}

