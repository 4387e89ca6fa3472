/* The policy as `upgate-node --check` shows it: one JSON object with every
 * setting, rollout and stage, and the lint warnings. No secret: the hint
 * key appears by id, the fleet password by its file's path. */
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "policy/policy.h"
#include "policy/policy_gates.h"
#include "policy/policy_values.h"

/* jansson integers are signed: a larger count (a quota near 2^64) is a real. */
static json_t *juint(uint64_t v)
{
    return v <= INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
}

/* s[0..n) as a JSON string: as it is when it is UTF-8 (jansson checks),
 * else with each byte outside printable ASCII shown as '?'. A path, a salt
 * or a plat may hold any bytes, and the summary must still show them. */
static json_t *jtext(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char buf[UG_PATH_MAX + 512];
    n = n < sizeof buf ? n : sizeof buf;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
    return json_stringn(buf, n);
}

static json_t *jstr(const char *s)
{
    return jtext(s, strlen(s));
}

static json_t *jkid(const uint8_t kid[UG_KID_LEN])
{
    char hex[2 * UG_KID_LEN + 1];
    return json_string(sodium_bin2hex(hex, sizeof hex, kid, UG_KID_LEN));
}

/* NULL list: any value (JSON null). */
static json_t *jnames(const char *list, size_t n, size_t width)
{
    if (!list)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, jstr(list + i * width));
    return a;
}

/* A percentage as the policy writes it (the plugin keeps hundredths). */
static json_t *jpct(uint32_t bp)
{
    return json_real(bp / 100.0);
}

static json_t *jpercent(const ug_percent *pc)
{
    switch (pc->kind) {
    case UG_PCT_CONST:
        return jpct(pc->bp);
    case UG_PCT_LINEAR:
        return json_pack("{s:o, s:o, s:I, s:I}", "from", jpct(pc->from_bp), "to", jpct(pc->to_bp), "start",
                         (json_int_t)pc->start, "end", (json_int_t)pc->end);
    case UG_PCT_STEPS: {
        json_t *a = json_array();
        for (size_t i = 0; i < pc->nsteps; i++) {
            json_t *st = ug_step_gate_json(&pc->steps[i]);
            json_object_set_new(st, "at", json_integer((json_int_t)pc->steps[i].at));
            json_object_set_new(st, "percent", jpct(pc->steps[i].bp));
            json_array_append_new(a, st);
        }
        return json_pack("{s:o}", "steps", a);
    }
    }
    return json_null();
}

/* Percentages as the policy writes them (10 for 10%), as status and the metrics give them. */
static json_t *jstage(const ug_policy *p, const ug_stage *s, int64_t now)
{
    json_t *conds = json_array();
    for (size_t i = 0; i < s->nconds; i++) {
        char text[256];
        s->conds[i].kind->describe(s->conds[i].arg, text, sizeof text);
        json_array_append_new(conds, json_pack("{s:s, s:o}", "key", s->conds[i].kind->key, "describe", jstr(text)));
    }
    json_t *o = json_pack("{s:s, s:I, s:o, s:o, s:b}", "name", s->name, "line", (json_int_t)s->line, "salt",
                          jtext(s->salt, s->salt_len), "conditions", conds, "needs_proved_address",
                          (s->cond_flags & UG_CONDF_ADDRESS) != 0);
    json_object_set_new(o, "start", s->has_start ? json_integer(s->start) : json_null());
    json_object_set_new(o, "end", s->has_end ? json_integer(s->end) : json_null());
    json_object_set_new(o, "percent", s->has_percent ? jpercent(&s->percent) : json_null());
    json_object_set_new(o, "percent_now", s->has_percent ? jpct(ug_percent_at(&s->percent, now)) : json_null());
    json_object_set_new(o, "quota", s->has_quota ? juint(s->quota) : json_null());
    json_object_set_new(o, "quota_share", s->has_quota ? juint(ug_policy_share(p, s->quota)) : json_null());
    json_object_set_new(o, "rate", s->has_rate ? json_real(s->rate) : json_null());
    json_object_set_new(o, "fleet_rate", s->has_fleet_rate ? json_real(s->fleet_rate) : json_null());
    json_object_set_new(o, "tz", s->tz[0] ? json_string(s->tz) : json_null());
    json_object_set_new(o, "window", ug_windows_json(&s->win, now));
    return o;
}

/* The release (from the v2 manifest when the rollout has no v1 one: then
 * bytes 0 and a kid of zeros). */
static json_t *jmanifest(const ug_rollout *r)
{
    json_t *urls = json_array();
    for (unsigned i = 0; i < r->rel.nurls; i++)
        json_array_append_new(urls, json_string(r->rel.urls[i]));
    return json_pack("{s:o, s:s, s:o, s:o, s:o, s:I, s:o}", "file", jstr(r->release_path), "to", r->to, "expires",
                     juint(r->rel.exp), "kid", jkid(r->rel.kid), "size", juint(r->rel.size), "bytes",
                     (json_int_t)r->manifest_len, "urls", urls);
}

/* A rollout's version 2 manifest, null when it has none. */
static json_t *jmanifest2(const ug_rollout *r)
{
    const ug2_manifest *m = r->rel2;
    if (!m)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:I}", "file", jstr(r->release2_path), "app",
                     jstr(m->app), "plat", jnames((const char *)m->plat, m->nplat, UG2_LABEL_MAX + 1), "chan",
                     jstr(m->chan), "seq", juint(m->seq), "expires", juint(m->exp), "urgency",
                     m->urgency ? "critical" : "normal", "downgrade", json_boolean(m->downgrade), "bytes",
                     (json_int_t)r->manifest2_len);
}

/* The version 2 keys: keyring, certificate, what tokens carry; null without. */
static json_t *jv2(const ug_policy *p)
{
    const ug_policy_v2 *k = p->v2;
    if (!k)
        return json_null();
    const ug2_cert *c = &k->keys.cert;
    return json_pack("{s:{s:o, s:I, s:o}, s:{s:o, s:o, s:o, s:o, s:o, s:I}, s:o, s:o, s:i}", "keyring", "file",
                     jstr(k->keyring_path), "kv", (json_int_t)k->keys.kr.kv, "expires", juint(k->keys.kr.exp),
                     "hint_cert", "file", jstr(k->cert_path), "kid", jkid(c->kid), "serial", juint(c->serial),
                     "expires", juint(c->exp), "tracker", c->trk[0] ? jstr(c->trk) : json_null(), "bytes",
                     (json_int_t)k->cert_len, "tracker", jstr(k->tracker), "token_ttl", juint(k->token_ttl),
                     "token_channels", (int)k->nseqs);
}

static json_t *jhalt(const ug_rollout *r)
{
    if (!r->has_halt_when)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o}", "failed_ppm",
                     r->halt_failed_ppm ? json_integer(r->halt_failed_ppm) : json_null(), "rolled_back_ppm",
                     r->halt_rolled_back_ppm ? json_integer(r->halt_rolled_back_ppm) : json_null(), "min_outcomes",
                     juint(r->halt_min_outcomes), "judges", ug_health_window_json(&r->halt_hw));
}

static json_t *jrollout(const ug_policy *p, const ug_rollout *r, int64_t now)
{
    json_t *targets = json_array(), *stages = json_array();
    for (size_t i = 0; i < r->ntargets; i++) {
        char text[UG_VER_MAX + 8];
        if (ug_target_format(&r->targets[i], text, sizeof text) == 0)
            json_array_append_new(targets, json_string(text));
    }
    for (size_t i = 0; i < r->nstages; i++)
        json_array_append_new(stages, jstage(p, &r->stages[i], now));
    return json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:b, s:o, s:o}", "name", r->name, "line",
                     (json_int_t)r->line, "salt", jtext(r->salt, r->salt_len), "targets", targets, "plat",
                     jnames((const char *)r->plat, r->nplat, UG_PLAT_MAX + 1), "chan",
                     jnames((const char *)r->chan, r->nchan, UG_CHAN_MAX + 1), "paused", r->paused, "halt_when",
                     jhalt(r), "outcome_window", juint(r->outcome_window), "hold_when_unhealthy", r->hold_when_unhealthy,
                     "manifest", jmanifest(r), "stages", stages);
}

static json_t *jfleet(const ug_fleet_conf *f)
{
    if (!f->enabled)
        return json_null();
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "redis", f->redis, "tracker", f->tracker, "password_file",
                     f->password_file[0] ? jstr(f->password_file) : json_null(), "user",
                     f->user[0] ? jstr(f->user) : json_null(), "lease", juint(f->lease), "lease_timeout",
                     juint(f->lease_timeout));
}

static void add_warning(void *ctx, const char *msg)
{
    json_array_append_new(ctx, jstr(msg));
}

json_t *ug_policy_summary(const ug_policy *p, int64_t now)
{
    if (!p)
        return NULL;
    static const char *const cookie[] = {[UG_COOKIE_NEVER] = "never", [UG_COOKIE_ALWAYS] = "always",
                                         [UG_COOKIE_AUTO] = "auto"};
    json_t *issuers = json_array(), *rollouts = json_array(), *warnings = json_array();
    for (size_t i = 0; i < p->nissuers; i++)
        json_array_append_new(issuers, jkid(p->issuers[i].kid));
    for (size_t i = 0; i < p->nrollouts; i++) {
        json_t *r = jrollout(p, &p->rollouts[i], now);
        const ug_rollout *ro = &p->rollouts[i];
        json_object_set_new(r, "manifest_v2", jmanifest2(ro));
        /* the fast lane: only a release-key signature makes a release critical */
        json_object_set_new(r, "urgency", json_string(ug_rollout_critical(ro) ? "critical" : "normal"));
        json_object_set_new(r, "tz", ro->tz[0] ? json_string(ro->tz) : json_null());
        json_object_set_new(r, "window", ug_windows_json(&ro->win, now));
        json_array_append_new(rollouts, r);
    }
    ug_policy_lint(p, now, add_warning, warnings);
    json_t *o = json_pack("{s:o, s:i, s:o, s:o, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:{s:I, s:I}, s:o, s:{s:o, s:o}}",
                          "policy", jstr(p->path), "version", (int)p->version, "state", jstr(p->state_dir), "geoip",
                          p->geoip_path[0] ? jstr(p->geoip_path) : json_null(), "cookie", cookie[p->cookie],
                          "cookie_threshold", juint(p->cookie_threshold), "source_budget", juint(p->source_budget),
                          "verify", p->verify_always ? "always" : "claims-first", "clock_window",
                          juint(p->clock_window), "hint_ttl", juint(p->hint_ttl), "retry", juint(p->retry), "shard",
                          "index", (json_int_t)p->shard_index, "count", (json_int_t)p->shard_count, "fleet", jfleet(&p->fleet),
                          "keys", "hint", jkid(p->hint_pub.kid), "issuers", issuers);
    if (!o) {
        json_decref(rollouts);
        json_decref(warnings);
        return NULL;
    }
    json_object_set_new(o, "v2", jv2(p));
    json_object_set_new(o, "rollouts", rollouts);
    json_object_set_new(o, "warnings", warnings);
    return o;
}
