/* The tracker rules: one HELLO or REPORT in, a HINT, WAIT or COOKIE (or nothing) out; and decide() on claims. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "base/log.h"
#include "base/workers.h"
#include "core/outcomes.h"
#include "core/replies_v2.h"
#include "core/memo.h"
#include "core/rules.h"
#include "util/mix.h"

/*
 * Order of work, cheapest first (docs/design.md):
 *  prefix → one strict parse → cookie when required (rule 2) → the owning
 *  rollout (rule 3; an untargeted HELLO is verified only when it would
 *  change a recorded outcome) → the clock (rule 5) → the policy on the
 *  claimed fields, dry (rules 6, 7): a WAIT or COOKIE goes out here, with
 *  no signature work → only when the answer would be a HINT or record an
 *  outcome: a remembered answer to the same bytes (rule 8), the source
 *  network's budget and the signatures (rule 4) → the policy again, for
 *  real. `verify: always` moves the memory and the signatures first.
 */

uint64_t ug_jittered(uint64_t retry, uint64_t uid)
{
    return retry + retry / 5 * (ug_mix64(uid) % 1001) / 1000;
}

/* The retry a WAIT carries before its jitter: the policy's, or at most
 * UG_RETRY_SOON when an empty stage expects slots back. */
static uint64_t retry_base(uint64_t policy_retry, ug_why why, ug_shortfall s)
{
    return why == UG_WHY_QUOTA && s != UG_SHORT_SPENT && policy_retry > UG_RETRY_SOON ? UG_RETRY_SOON : policy_retry;
}

uint64_t ug_plan_retry(const ug_plan *p, uint64_t retry, uint64_t now, uint64_t uid)
{
    if (p->why == UG_WHY_TOO_SMALL)
        return 0;
    retry = retry_base(retry, p->why, p->shortfall);
    if (p->why == UG_WHY_NOT_SELECTED && p->reopen > 0 && (uint64_t)p->reopen > now)
        retry = (uint64_t)p->reopen - now; /* back after the window opens, spread past it */
    return ug_jittered(retry, uid);
}

/* How much a WAIT helps the peer: held back (its resend may be served) over
 * "quota" with a short retry (slots may come back) over "rate limited"
 * over "quota spent" over "not selected". */
static int usefulness(ug_why why, ug_shortfall s)
{
    if (why == UG_WHY_QUOTA)
        return s == UG_SHORT_HOLD ? 5 : s == UG_SHORT_SOON ? 4 : 2;
    return why == UG_WHY_RATE ? 3 : why == UG_WHY_NOT_SELECTED ? 1 : 0;
}

/* The plan becomes a WAIT; a stage that makes it more useful is the one
 * that caused it (counted in its status). s: what an empty stage said
 * (why=2 only). */
static void wait_for(ug_plan *p, ug_why why, ug_shortfall s, const ug_live_stage *ls)
{
    bool better = usefulness(why, s) > usefulness(p->why, p->shortfall);
    if (better || (p->why == why && !p->ls))
        p->ls = ls;
    if (better)
        p->why = why, p->shortfall = s;
    p->answer = UG_ANSWER_WAIT;
}

/* An empty stage with a quota: spent, or (slots from a source) soon, or a
 * hold while the source brings them. */
static void quota_wait(ug_plan *p, const ug_live_stage *ls, json_t *t)
{
    ug_shortfall s = ls->q ? ug_stage_quota_short(ls->q, false) : UG_SHORT_SPENT;
    if (t) {
        static const char *const words[] = {"spent", "soon", "hold"};
        json_object_set_new(t, "shortfall", json_string(words[s]));
    }
    wait_for(p, UG_WHY_QUOTA, s, ls);
}

/* ---- the rate: a token bucket per (rollout, stage) ---------------------- */

static bool rate_take(ug_rate *r, uint64_t now, bool take)
{
    pthread_mutex_lock(&r->mu);
    double burst = r->rate < 1 ? 1 : r->rate;
    if (!r->primed) {
        r->tokens = burst;
        r->last = now;
        r->primed = true;
    } else if (now > r->last) {
        r->tokens += r->rate * (double)(now - r->last);
        if (r->tokens > burst)
            r->tokens = burst;
        r->last = now;
    }
    bool ok = r->tokens >= 1;
    if (ok && take)
        r->tokens -= 1;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static void rate_refund(ug_rate *r)
{
    pthread_mutex_lock(&r->mu);
    r->tokens += 1;
    pthread_mutex_unlock(&r->mu);
}

/* ---- the explain trace ------------------------------------------------- */

static json_t *trace_stage(const ug_rule_input *c, const ug_live_stage *ls, bool active)
{
    if (!c->trace)
        return NULL;
    json_t *t = json_pack("{s:s, s:b, s:[]}", "stage", ls->s->name, "active", active, "conds");
    json_array_append_new(c->trace, t);
    return t;
}

static void trace_conds(json_t *t, const ug_stage *s, const ug_peer *peer)
{
    if (!t)
        return;
    json_t *a = json_object_get(t, "conds");
    for (size_t i = 0; i < s->nconds; i++) {
        char d[256];
        s->conds[i].kind->describe(s->conds[i].arg, d, sizeof d);
        json_array_append_new(a, json_pack("{s:s, s:b}", "cond", d, "holds",
                                           s->conds[i].kind->match(s->conds[i].arg, peer)));
    }
}

/* Sets key of the trace object t; a macro so that the value is not even
 * built (jansson allocates) on the hot path, where t is NULL. */
#define trace_set(t, key, v)                                                                                  \
    do {                                                                                                      \
        if (t)                                                                                                \
            json_object_set_new((t), (key), (v));                                                             \
    } while (0)

/* ---- off-peak windows ------------------------------------------------------ */

/* The peer's time zone, looked up in the GeoIP DB once per run and only
 * when a window reads it. */
typedef struct {
    const ug_rule_input *c;
    bool done;
    char name[UG_TZ_NAME_MAX + 1];
} peer_zone;

static const char *zone_of(peer_zone *z, const ug_windows *w)
{
    if (!w->peer)
        return NULL;
    if (!z->done) {
        z->done = true;
        if (!z->c->src || !ug_geo_zone(z->c->l->pol->geo, z->c->src, z->name, sizeof z->name))
            z->name[0] = '\0'; /* the rollout's tz stands in */
    }
    return z->name;
}

/* Is w closed for the peer now? Then the plan remembers the earliest
 * opening, for the WAIT's retry. */
static bool window_closed(const ug_windows *w, peer_zone *z, int64_t now, ug_plan *p)
{
    int64_t next;
    if (ug_windows_open(w, zone_of(z, w), now, &next))
        return false;
    if (next != UG_CAL_NEVER && next > now && (!p->reopen || next < p->reopen))
        p->reopen = next;
    return true;
}

/* ---- rules 5 to 7 -------------------------------------------------------- */

/* A grant already held: offered again, with nothing spent, while its
 * rollout owns the peer and the stage that granted it is active (or gone
 * from the policy: the grant belongs to the rollout's release). A uid
 * that rolled the release back is not offered it again (rule 11). */
static bool sticky(const ug_rule_input *c, const ug_live_rollout *lr, bool spend, peer_zone *z, ug_plan *p)
{
    ug_grant_info gi;
    if (c->grant)
        gi = *c->grant;
    else if (!lr->sc || !ug_scope_lookup(lr->sc, c->uid, &gi))
        return false;
    if (!gi.found)
        return false;
    if (gi.outcome == UG_OUT_ROLLED_BACK) {
        p->answer = UG_ANSWER_WAIT;
        p->why = UG_WHY_NOT_SELECTED;
        return true;
    }
    const ug_live_stage *g = ug_live_stage_by_id(lr, gi.stage);
    if (g && (!ug_stage_active(g->s, (int64_t)c->now) || window_closed(&g->s->win, z, (int64_t)c->now, p)))
        return false;
    p->answer = UG_ANSWER_HINT;
    p->ls = g;
    p->needs_flush = !gi.durable && !gi.learned;
    if (p->needs_flush && spend && ug_scope_make_durable(lr->sc, c->worker, c->uid) != 0) {
        p->answer = UG_ANSWER_WAIT; /* out of memory: promise nothing */
        p->why = UG_WHY_NOT_SELECTED;
        p->shortfall = UG_SHORT_SPENT;
        p->needs_flush = false;
    }
    return true;
}

/* One stage's verdict on c: 0 the plan is set (HINT or COOKIE), -1 the
 * stage does not select (the WAIT reason may improve). */
static int try_stage(const ug_rule_input *c, const ug_live_rollout *lr, const ug_live_stage *ls, bool spend,
                     peer_zone *z, ug_plan *p)
{
    const ug_stage *s = ls->s;
    int64_t now = (int64_t)c->now;
    bool active = ug_stage_active(s, now);
    json_t *t = trace_stage(c, ls, active);
    if (!active)
        return -1;
    ug_peer peer = {.uid = c->uid, .ver = c->ver, .plat = c->plat, .chan = c->chan, .src = c->src, .now = now};
    trace_conds(t, s, &peer);
    bool ok = ug_stage_matches(s, &peer);
    if (ok && s->has_percent && ug_rollout_critical(lr->r)) {
        trace_set(t, "fast_lane", json_true()); /* urgency critical: every targeted uid */
    } else if (ok && s->has_percent) {
        uint32_t bp = ug_live_percent(lr, s, c->now), b = ug_memo_bucket(c->memo, c->l, ls, c->uid);
        ok = b < bp;
        trace_set(t, "percent", json_pack("{s:i, s:i, s:b}", "bucket", (json_int_t)b, "in_force", (json_int_t)bp,
                                          "holds", ok));
    }
    /* without a store (check), the whole quota is left */
    uint64_t left = ls->q ? ug_stage_quota_remaining(ls->q) : UG_QUOTA_UNLIMITED;
    if (s->has_quota)
        trace_set(t, "quota_left", json_integer((json_int_t)(ls->q ? left : s->quota)));
    if (!ok)
        return -1;
    if (window_closed(&s->win, z, now, p)) {
        wait_for(p, UG_WHY_NOT_SELECTED, UG_SHORT_SPENT, ls);
        trace_set(t, "window", json_pack("{s:b, s:I}", "open", 0, "opens", (json_int_t)p->reopen));
        return -1;
    }
    if (s->has_quota && left == 0) {
        quota_wait(p, ls, t);
        trace_set(t, "selects", json_false());
        return -1;
    }
    if (ug_stage_rated(s) && ls->rt && !rate_take(&ls->rt->rate, c->now, false)) {
        wait_for(p, UG_WHY_RATE, UG_SHORT_SPENT, ls);
        trace_set(t, "selects", json_false());
        return -1;
    }
    trace_set(t, "selects", json_true());
    p->ls = ls;
    if ((s->cond_flags & UG_CONDF_ADDRESS) && !c->addr_proved) {
        p->answer = UG_ANSWER_COOKIE; /* the address must be proved before it counts */
        return 0;
    }
    p->answer = UG_ANSWER_HINT;
    p->fresh = true;
    if (!spend || !ls->q)
        return 0;
    if (ug_stage_rated(s) && !rate_take(&ls->rt->rate, c->now, true)) {
        wait_for(p, UG_WHY_RATE, UG_SHORT_SPENT, ls);
        return -1;
    }
    ug_grant_info gi;
    switch (ug_stage_quota_grant(ls->q, c->worker, c->uid, (uint32_t)c->now, &gi)) {
    case UG_GRANT_NEW:
        p->needs_flush = true;
        return 0;
    case UG_GRANT_ALREADY: /* another worker granted it a moment ago */
        if (ug_stage_rated(s))
            rate_refund(&ls->rt->rate);
        p->fresh = false;
        p->needs_flush = !gi.durable && !gi.learned;
        if (p->needs_flush && ug_scope_make_durable(lr->sc, c->worker, c->uid) != 0) {
            p->needs_flush = false;
            wait_for(p, UG_WHY_NOT_SELECTED, UG_SHORT_SPENT, NULL); /* out of memory: promise nothing */
            return -1;
        }
        return 0;
    case UG_GRANT_SPENT:
    default:
        if (ug_stage_rated(s))
            rate_refund(&ls->rt->rate);
        p->fresh = false;
        quota_wait(p, ls, NULL);
        return -1;
    }
}

ug_plan ug_rules_run(const ug_rule_input *c, const ug_live_rollout *lr, bool spend)
{
    ug_plan p = {.answer = UG_ANSWER_WAIT, .why = UG_WHY_NOT_SELECTED, .lr = lr};
    if (ug_live_stopped(lr, c->now) || (c->v2 && (!lr->r->rel2 || lr->r->rel2->exp <= c->now))) {
        p.why = UG_WHY_PAUSED;
        return p;
    }
    peer_zone z = {.c = c};
    if (window_closed(&lr->r->win, &z, (int64_t)c->now, &p))
        return p; /* WAIT not selected until the rollout's window opens */
    if (sticky(c, lr, spend, &z, &p))
        return p;
    for (size_t i = 0; i < lr->r->nstages; i++)
        if (try_stage(c, lr, &lr->stages[i], spend, &z, &p) == 0)
            return p;
    p.answer = UG_ANSWER_WAIT;
    if (p.why == UG_WHY_NOT_SELECTED)
        p.ls = NULL;
    /* held back for real: the stage's source hears of this peer (asked
     * again, the window may have closed meanwhile) */
    if (spend && p.shortfall == UG_SHORT_HOLD)
        p.shortfall = ug_stage_quota_short(p.ls->q, true);
    return p;
}

/* ---- replies ------------------------------------------------------------- */

/* One datagram being answered. */
typedef struct {
    ug_inst *I;
    ug_worker *w;
    unsigned worker;
    const ug_live *l;
    const ug_hello *h;
    const ug2_hello *h2; /* the version 2 HELLO (h is its base), or NULL */
    const ug_dgram *d;
    const struct sockaddr *src;
    const uint8_t *in;
    size_t in_len;
    uint64_t now;
    uint8_t *out;
    size_t cap; /* min(out_cap, in_len): no reply outgrows its request */
    size_t *out_len;
    unsigned *flags;
    bool checked; /* verified() passed for this datagram */
    bool over_budget; /* verified() refused it: its network's budget was spent */
} ug_hello_reply;

/* A WAIT, counted; `checked`: the claim it answers was verified (or is an
 * operator's), else the stage counts it apart (state.h, ug_waits). */
static void count_wait(ug_worker *w, unsigned worker, const ug_live_rollout *lr, const ug_live_stage *ls, ug_why why,
                       bool checked)
{
    ug_count(w, ST_WAIT0 + why);
    if (!checked)
        ug_count(w, ST_UNVERIFIED_WAITS);
    if (lr && lr->rt)
        atomic_fetch_add_explicit(&lr->rt->waits[worker].why[why], 1, memory_order_relaxed);
    if (ls && ls->rt)
        atomic_fetch_add_explicit(checked ? &ls->rt->waits[worker].why[why] : &ls->rt->waits[worker].unverified[why], 1,
                                  memory_order_relaxed);
}

static ug_verdict failed_reply(ug_hello_reply *x)
{
    ug_count(x->w, ST_DROP0 + UG_E_BUFFER);
    *x->out_len = 0;
    *x->flags = 0;
    return UG_VERDICT_DROP;
}

/* A version 2 reply into x's buffer. */
static ug_v2_reply v2_reply(const ug_hello_reply *x)
{
    return (ug_v2_reply){.p = x->l->pol, .tok = x->l->tok, .w = x->w, .worker = x->worker, .now = x->now,
                         .uid = x->h->uid, .ver = &x->h->ver, .nonce = x->h->nonce, .out = x->out, .cap = x->cap,
                         .out_len = x->out_len};
}

static ug_verdict reply_wait_at(ug_hello_reply *x, const ug_live_rollout *lr, const ug_live_stage *ls, ug_why why,
                                ug_shortfall s, int64_t reopen)
{
    ug_plan p = {.why = why, .shortfall = s, .reopen = reopen};
    ug_wait wt = {.ts = x->now, .why = why, .retry = ug_plan_retry(&p, x->l->pol->retry, x->now, x->h->uid)};
    memcpy(wt.nonce, x->h->nonce, UG_NONCE_LEN);
    ug_v2_reply v = v2_reply(x);
    if (x->h2 ? ug_v2_wait(&v, &wt) != 0 : ug_wait_write(x->out, x->cap, x->out_len, &wt) != 0)
        return failed_reply(x);
    count_wait(x->w, x->worker, lr, ls, why, x->checked);
    return UG_VERDICT_REPLY;
}

static ug_verdict reply_wait(ug_hello_reply *x, const ug_live_rollout *lr, const ug_live_stage *ls, ug_why why,
                             ug_shortfall s)
{
    return reply_wait_at(x, lr, ls, why, s, 0);
}

static ug_verdict reply_cookie(ug_hello_reply *x)
{
    ug_cookie ck = {.ts = x->now};
    memcpy(ck.nonce, x->h->nonce, UG_NONCE_LEN);
    ug_cookiejar_make(&x->I->jar, x->src, x->now, ck.cookie);
    ug_v2_reply v = v2_reply(x);
    if (x->h2 ? ug_v2_cookie(&v, &ck) != 0 : ug_cookie_write(x->out, x->cap, x->out_len, &ck) != 0)
        return failed_reply(x);
    ug_count(x->w, ST_COOKIES);
    return UG_VERDICT_REPLY;
}

/* A HINT's delivery, counted as upgate-sim forecasts it: a delta's bytes
 * or the package's. */
static void count_via(ug_worker *w, const ug_rollout *r, int delta)
{
    const ug2_manifest *m = r->rel2;
    ug_count(w, delta >= 0 ? ST_OFFERS_DELTA : ST_OFFERS_FULL);
    ug_count_n(w, delta >= 0 ? ST_OFFERED_BYTES_DELTA : ST_OFFERED_BYTES_FULL,
               delta >= 0 ? m->deltas[delta].size : r->rel.size);
}

static ug_verdict reply_hint2(ug_hello_reply *x, const ug_live_rollout *lr, bool fresh)
{
    ug_v2_reply v = v2_reply(x);
    int delta;
    if (ug_v2_hint(&v, lr->r, &delta) != 0)
        return failed_reply(x); /* checked against ug_v2_hint_max first: cannot happen */
    count_via(x->w, lr->r, delta);
    ug_count(x->w, ST_HINTS);
    ug_count(x->w, fresh ? ST_HINTS_NEW : ST_HINTS_STICKY);
    return UG_VERDICT_REPLY;
}

static ug_verdict reply_hint(ug_hello_reply *x, const ug_live_rollout *lr, bool fresh)
{
    if (x->h2)
        return reply_hint2(x, lr, fresh);
    const ug_rollout *r = lr->r;
    const ug_policy *p = x->l->pol;
    uint64_t exp = x->now + p->hint_ttl;
    ug_hint_fields hf = {
        .uid = x->h->uid,
        .ts = x->now,
        .exp = exp < r->rel.exp ? exp : r->rel.exp, /* never outlive the manifest */
        .mirror = ug_mix64(x->h->uid) % r->rel.nurls, /* spread peers over the mirrors */
        .rel = r->manifest,
        .rel_len = r->manifest_len,
    };
    memcpy(hf.nonce, x->h->nonce, UG_NONCE_LEN);
    memcpy(hf.kid, p->hint_pub.kid, UG_KID_LEN);
    uint8_t body[UG_DGRAM_MAX];
    size_t blen;
    if (ug_hint_encode_body(body, sizeof body, &blen, &hf) != 0 ||
        ug_dgram_encode(x->out, x->cap, x->out_len, UG_TYPE_HINT, body, blen, p->hint_sk) != 0)
        return failed_reply(x); /* checked against ug_hint_max_len first: cannot happen */
    count_via(x->w, r, -1);
    ug_count(x->w, ST_HINTS);
    ug_count(x->w, fresh ? ST_HINTS_NEW : ST_HINTS_STICKY);
    return UG_VERDICT_REPLY;
}

static ug_verdict reply_plan(ug_hello_reply *x, const ug_plan *p)
{
    switch (p->answer) {
    case UG_ANSWER_HINT: {
        if (p->needs_flush) {
            *x->flags |= UG_REPLY_AFTER_FLUSH;
            ug_count(x->w, ST_HELD_FOR_DISK);
        }
        ug_verdict v = reply_hint(x, p->lr, p->fresh);
        if (v == UG_VERDICT_REPLY && p->ls && p->ls->rt)
            atomic_fetch_add_explicit(p->fresh ? &p->ls->rt->tally[x->worker].offers_new
                                               : &p->ls->rt->tally[x->worker].offers_again,
                                      1, memory_order_relaxed);
        return v;
    }
    case UG_ANSWER_COOKIE:
        return reply_cookie(x);
    default:
        if (p->why == UG_WHY_QUOTA && p->shortfall == UG_SHORT_HOLD) {
            /* the ABI's hold-back: no answer now; the peer's resend of the
             * same bytes is decided again, with the slots its source brings */
            ug_count(x->w, ST_HELD_FOR_LEASE);
            *x->out_len = 0;
            return UG_VERDICT_DROP;
        }
        return reply_wait_at(x, p->lr, p->ls, p->why, p->shortfall, p->reopen);
    }
}

/* ---- rule 4 ---------------------------------------------------------------- */

/* The source network's budget of signature work, then the credential (its
 * cheap checks, then its signature unless this worker verified the same
 * bytes under this policy) and the HELLO's signature. */
static bool verified(ug_hello_reply *x, ug_hello *h)
{
    const ug_policy *p = x->l->pol;
    ug_err e;
    const ug_pubkey *issuer;
    uint8_t key[UG_KEY_LEN];
    if (ug_hello_cred_decode(h, &e) != 0 || ug_cred_check(h, p->issuers, p->nissuers, x->now, &issuer, &e) != 0)
        goto drop;
    uint64_t ms = ug_guard_ms(&x->w->guard, x->now);
    if (p->source_budget && !ug_budget_take(&x->w->guard, x->src, ms, (double)p->source_budget / x->I->nworkers)) {
        ug_count(x->w, ST_DROP_BUDGET); /* one network may not starve the others */
        x->over_budget = true;
        return false;
    }
    if (ug_credcache_has(&x->w->guard, &h->cred_obj, x->l->gen, key)) {
        ug_count(x->w, ST_CRED_CACHE_HITS);
    } else {
        ug_count(x->w, ST_SIG_CHECKS);
        ug_guard_hello_work(&x->w->guard, ms, 1);
        if (ug_cred_sig_verify(h, issuer, &e) != 0)
            goto drop;
        ug_credcache_put(&x->w->guard, key, x->l->gen);
    }
    ug_count(x->w, ST_SIG_CHECKS);
    ug_guard_hello_work(&x->w->guard, ms, 1); /* a busy HELLO path leaves REPORTs less */
    if ((x->h2 ? ug2_hello_sig_verify(x->h2, x->d, &e) : ug_hello_sig_verify(h, x->d, &e)) == 0)
        return x->checked = true;
drop:
    ug_count(x->w, ST_DROP0 + e);
    return false;
}

static bool clock_ok(uint64_t ts, uint64_t now, uint64_t window)
{
    return (ts > now ? ts - now : now - ts) <= window;
}

/* Rule 8: the same bytes from the same peer get the same answer, with no
 * signature work, while the policy, pause and halt that produced it hold.
 * Only answers that cost signature work are remembered: a WAIT or COOKIE
 * is cheaper to give again than to look up. */
typedef struct {
    uint8_t key[UG_KEY_LEN];
    uint64_t tag;
} ug_memo;

static bool remembered(ug_hello_reply *x, ug_memo *m, const ug_live_rollout *lr)
{
    m->tag = x->l->gen << 24 ^ atomic_load_explicit(&x->I->epoch, memory_order_acquire);
    ug_replay_key(&x->w->guard, m->key, x->src, x->in, x->in_len);
    *x->out_len = ug_replay_find(&x->w->guard, m->key, x->now, m->tag, x->out, x->cap, x->flags);
    /* a HINT another worker gave (the workers share the cache) may wait for
     * that worker's commit: queue its grant here too, so that this
     * worker's flush makes it durable before the reply leaves */
    if (*x->out_len && (*x->flags & UG_REPLY_AFTER_FLUSH) && x->I->replay && lr->sc &&
        ug_scope_make_durable(lr->sc, x->worker, x->h->uid) != 0) {
        *x->out_len = 0, *x->flags = 0; /* out of memory: answer afresh */
        return false;
    }
    if (*x->out_len)
        ug_count(x->w, ST_RETRANSMITS);
    return *x->out_len != 0;
}

static ug_verdict remember(ug_hello_reply *x, const ug_memo *m, ug_verdict v)
{
    if (v == UG_VERDICT_REPLY)
        ug_replay_store(&x->w->guard, m->key, x->now, m->tag, x->out, *x->out_len, *x->flags);
    return v;
}

/* Both signatures before any answer: `verify: always`, or a rollout with
 * a stage that names uids (unless `verify: claims`): a WAIT before the
 * signatures would tell a stranger who is on a secret list (issue 21 §3). */
static bool verify_first(const ug_policy *p, const ug_rollout *r)
{
    if (p->verify_always)
        return true;
    for (size_t i = 0; !p->verify_claims && i < r->nstages; i++)
        if (r->stages[i].cond_flags & UG_CONDF_SECRET)
            return true;
    return false;
}

/* A claim whose credential or signature failed after its rules offered
 * it something: the answer a claim for an ungranted uid
 * gets, so that a stranger cannot tell granted uids apart by which claims
 * go unanswered (issue 21 §3); no answer when that claim would be
 * verified too (a HINT or a hold). */
static ug_verdict unverified_reply(ug_hello_reply *x, const ug_rule_input *c, const ug_live_rollout *lr)
{
    ug_grant_info none = {.found = false};
    ug_rule_input in = *c;
    in.grant = &none;
    ug_plan p = ug_rules_run(&in, lr, false);
    if (p.answer != UG_ANSWER_WAIT || p.shortfall == UG_SHORT_HOLD)
        return UG_VERDICT_DROP;
    return reply_plan(x, &p);
}

/* Rules 4 to 8 for a HELLO its rollout owns. */
static ug_verdict targeted(ug_hello_reply *x, ug_hello *h, const ug_rule_input *c, const ug_live_rollout *lr)
{
    const ug_policy *p = x->l->pol;
    ug_memo m;
    bool checked = false;
    if (verify_first(p, lr->r)) {
        if (remembered(x, &m, lr))
            return UG_VERDICT_REPLY;
        if (!verified(x, h))
            return UG_VERDICT_DROP;
        checked = true;
    }
    if (!clock_ok(h->ts, x->now, p->clock_window))
        return reply_wait(x, lr, NULL, UG_WHY_CLOCK, UG_SHORT_SPENT);
    /* one lookup of the grant serves the outcome check and both runs */
    ug_grant_info gi = {.found = false};
    if (lr->sc)
        (void)ug_scope_lookup(lr->sc, h->uid, &gi);
    ug_rule_input in = *c;
    in.grant = &gi;
    c = &in;
    /* a peer seen upgraded, back at an old version: worth one verification */
    bool observe = ug_outcome_observe(x->I, x->worker, lr, h->uid, &h->ver, &gi, h->ts, true);
    ug_plan plan = ug_rules_run(c, lr, false);
    /* a hold asks the slot source for this peer: verified first, as a HINT */
    bool hold = plan.answer == UG_ANSWER_WAIT && plan.shortfall == UG_SHORT_HOLD;
    if (plan.answer != UG_ANSWER_HINT && !hold && !observe)
        return reply_plan(x, &plan); /* nothing given or spent: no signature work */
    if (!checked) {
        if (remembered(x, &m, lr))
            return UG_VERDICT_REPLY;
        /* over its network's budget a peer is silenced and resends, as any
         * peer that needs verifying there: a granted uid is not told WAIT */
        if (!verified(x, h))
            return x->over_budget ? UG_VERDICT_DROP : unverified_reply(x, c, lr);
    }
    if (observe && ug_outcome_observe(x->I, x->worker, lr, h->uid, &h->ver, &gi, h->ts, false)) {
        ug_count(x->w, ST_OUTCOMES_SEEN);
        (void)ug_scope_lookup(lr->sc, h->uid, &gi); /* the rules see the outcome just set */
    }
    if (plan.answer != UG_ANSWER_HINT && !hold)
        return remember(x, &m, reply_plan(x, &plan));
    size_t longest = x->h2 ? ug_v2_hint_max(p, lr->r) : ug_hint_max_len(lr->r->manifest_len);
    if (longest > x->cap) /* rule 9, spending nothing */
        return remember(x, &m, reply_wait(x, lr, NULL, UG_WHY_TOO_SMALL, UG_SHORT_SPENT));
    plan = ug_rules_run(c, lr, true);
    return remember(x, &m, reply_plan(x, &plan));
}

static bool cookie_required(ug_inst *I, const ug_policy *p)
{
    return p->cookie == UG_COOKIE_ALWAYS || (p->cookie == UG_COOKIE_AUTO && atomic_load(&I->under_load));
}

static const ug_live_rollout *route(const ug_live *l, const ug_version *v, const char *plat, const char *chan)
{
    const ug_rollout *r = ug_policy_route(l->pol, v, plat, chan);
    return r ? &l->ro[r - l->pol->rollouts] : NULL;
}

/* The rollout that owns a HELLO of either version (protocol-v2.md 6.2:
 * a v2 peer only where the v2 manifest is bound to it). */
static const ug_live_rollout *route_hello(const ug_hello_reply *x)
{
    const ug_hello *h = x->h;
    const ug_policy *p = x->l->pol;
    const ug_rollout *r = x->h2 ? ug_policy_route_v2(p, &h->ver, x->h2->app, h->plat, h->chan)
                                : ug_policy_route_v1(p, &h->ver, h->plat, h->chan);
    return r ? &x->l->ro[r - p->rollouts] : NULL;
}

static ug_verdict hello_path(ug_hello_reply *x, ug_hello *h)
{
    ug_inst *I = x->I;
    const ug_policy *p = x->l->pol;
    ug_rule_input c = {.I = I, .w = x->w, .worker = x->worker, .l = x->l, .now = x->now, .uid = h->uid, .ver = &h->ver,
                  .plat = h->plat, .chan = h->chan, .ts = h->ts, .src = x->src,
                  .addr_proved = h->has_cookie && ug_cookiejar_check(&I->jar, x->src, x->now, h->cookie),
                  .v2 = x->h2 != NULL};
    if (c.addr_proved)
        ug_cookiejar_proved(&I->jar, x->src, x->now); /* its REPORTs pass while cookies are required */
    if (cookie_required(I, p) && !c.addr_proved)
        return reply_cookie(x); /* rule 2: before any signature work */
    const ug_live_rollout *lr = route_hello(x);
    if (lr && x->h2 && !ug_v2_serving(p, x->now)) /* a certificate or keyring past its time: no HINT a peer takes */
        return reply_wait(x, lr, NULL, UG_WHY_PAUSED, UG_SHORT_SPENT);
    if (!lr) {
        /* rule 3: the host may serve this peer as usual, or send our WAIT;
         * verified only when it tells an offer's fate we do not know yet */
        const ug_live_rollout *olr = ug_outcome_untargeted(I, x->l, h->uid, &h->ver);
        if (olr && clock_ok(h->ts, x->now, p->clock_window) && verified(x, h) &&
            ug_outcome_observe(I, x->worker, olr, h->uid, &h->ver, NULL, h->ts, false))
            ug_count(x->w, ST_OUTCOMES_SEEN);
        ug_verdict v = reply_wait(x, NULL, NULL, UG_WHY_NOT_TARGETED, UG_SHORT_SPENT);
        return v == UG_VERDICT_REPLY ? UG_VERDICT_PASS : v;
    }
    return targeted(x, h, &c, lr);
}

/* A REPORT's credential (cached per worker as a HELLO's) and its own
 * signature; true when both hold. */
static bool report_verified(ug_worker *w, const ug_live *l, const ug_report *r, const ug2_report *r2,
                            const ug_dgram *d, const ug_pubkey *issuer)
{
    uint8_t key[UG_KEY_LEN];
    ug_err e;
    bool cached = ug_credcache_has(&w->guard, &r->cred_obj, l->gen, key);
    if (cached)
        ug_count(w, ST_CRED_CACHE_HITS);
    else
        ug_count(w, ST_SIG_CHECKS);
    if (!cached && ug_report_cred_sig_verify(r, issuer, &e) != 0) {
        ug_count(w, ST_DROP0 + e);
        return false;
    }
    if (!cached)
        ug_credcache_put(&w->guard, key, l->gen);
    ug_count(w, ST_SIG_CHECKS);
    if (ug_report_sig_verify(r, d, r2 ? UG2_CTX_REPORT : UG_CTX_REPORT, &e) != 0) {
        ug_count(w, ST_DROP0 + e);
        return false;
    }
    return true;
}

/* Rule 11: counted once, never answered (issue 21 §1, §3). The checks that
 * cost nothing first (clock, issuer, expiry, uid binding), then, while
 * cookies are required, only a source that showed one lately; then the
 * tracker's own budget of REPORT work (small while HELLOs keep this worker
 * busy and REPORT work is being wasted) and the network's REPORT budget,
 * never its HELLO budget; and nothing about the uid is counted before both
 * signatures hold. r2 is the version 2 REPORT whose base r is, or NULL. */
static ug_verdict report_path(ug_inst *I, ug_worker *w, unsigned worker, const struct sockaddr *src,
                              const ug_report *r, const ug2_report *r2, const ug_dgram *d)
{
    ug_err e;
    const ug_pubkey *issuer;
    ug_live *l = ug_enter(I, w);
    const ug_policy *p = l->pol;
    uint64_t now = ug_inst_now(I), ms = ug_guard_ms(&w->guard, now);
    ug_outcome_told told = {.uid = r->uid, .ver = &r->ver, .to = &r->to, .res = r->res, .ts = r->ts};
    if (!clock_ok(r->ts, now, p->clock_window)) {
        ug_count(w, ST_DROP0 + (r2 ? UG_E_CLOCK : UG_E_EXPIRED));
    } else if (ug_cred_bound(&r->cred, r->uid, r->pk, p->issuers, p->nissuers, now, &issuer, &e) != 0) {
        ug_count(w, ST_DROP0 + e);
    } else if (cookie_required(I, p) && !ug_cookiejar_was_proved(&I->jar, src, now)) {
        ug_count(w, ST_DROP_REPORT_UNPROVEN);
    } else if (!ug_report_budget_take(&w->guard, ms, I->nworkers)) {
        ug_count(w, ST_DROP_REPORT_BUDGET);
    } else if (p->source_budget && !ug_report_net_take(&w->guard, src, ms, (double)p->source_budget / I->nworkers)) {
        ug_count(w, ST_DROP_BUDGET);
    } else if (!report_verified(w, l, r, r2, d, issuer)) {
        ug_guard_report_wasted(&w->guard, ms);
    } else {
        int rc = ug_outcome_report(I, worker, l, &told, false);
        ug_count(w, rc > 0 ? ST_REPORTS : rc == 0 ? ST_REPORTS_SAME : ST_REPORTS_UNKNOWN);
        if (rc > 0 && r2)
            ug_count(w, ST_VIA0 + r2->via);
        if (rc <= 0) /* verified, yet it told nothing new: a replay or a uid never offered */
            ug_guard_report_wasted(&w->guard, ms);
    }
    ug_leave(w);
    return UG_VERDICT_DROP;
}

/* The census's view of a HELLO: every one, targeted or not, before any
 * signature work (docs/policy-v2-extensions.md, "Version census"); the
 * region costs a GeoIP lookup only when the policy names a database. Its
 * first half: the filter entry is prefetched while the HELLO is decided,
 * hello_in stages after (pd->slot NULL: nothing to note). */
static void census_note(const ug_hello_reply *x, const ug_hello *h, ug_census_pending *pd)
{
    const ug_policy *p = x->l->pol;
    pd->slot = NULL;
    if (!p->census)
        return;
    char region[UG_CENSUS_REGION_MAX + 1] = "";
    ug_place pl;
    if (p->geo && ug_geo_lookup(p->geo, x->src, &pl) && pl.country[0]) {
        if (pl.nsub)
            snprintf(region, sizeof region, "%s-%s", pl.country, pl.sub[0]);
        else
            snprintf(region, sizeof region, "%s", pl.country);
    }
    ug_census_key k = {.ver = h->ver, .plat = h->plat, .chan = h->chan, .region = region};
    ug_census_note_begin(x->I->census, x->worker, &k, h->uid, x->now, pd);
}

/* A HELLO of either version, parsed, through the rules. */
static ug_verdict hello_in(ug_inst *I, ug_worker *w, ug_hello_reply *x, ug_hello *h)
{
    ug_count(w, ST_HELLOS);
    if (x->h2)
        ug_count(w, ST_HELLOS_V2);
    x->l = ug_enter(I, w);
    x->now = ug_inst_now(I);
    ug_census_pending pd;
    census_note(x, h, &pd);
    ug_verdict v = hello_path(x, h);
    if (pd.slot)
        ug_census_note_end(I->census, x->worker, &pd, x->now);
    ug_leave(w);
    return v;
}

/* Version 2 (protocol-v2.md 6.2): a HELLO is answered in version 2 only. */
static ug_verdict handle_v2(ug_inst *I, ug_worker *w, unsigned worker, ug_hello_reply *x)
{
    ug2_hello h;
    ug_dgram d;
    ug_err e;
    if (ug2_hello_parse(&h, &d, x->in, x->in_len, &e) != 0) {
        ug2_report r;
        if (e == UG_E_HEADER && d.body && d.type == UG_TYPE_REPORT) {
            if (ug2_report_parse(&r, &d, x->in, x->in_len, &e) == 0)
                return report_path(I, w, worker, x->src, &r.base, &r, &d);
        } else if (e == UG_E_HEADER && d.body) {
            ug_count(w, ST_DROP_TYPE);
            return UG_VERDICT_DROP;
        }
        ug_count(w, ST_DROP0 + e);
        return UG_VERDICT_DROP;
    }
    x->h = &h.base;
    x->h2 = &h;
    x->d = &d;
    return hello_in(I, w, x, &h.base);
}

static const uint8_t dgram_prefix[5] = {0x95, 0xa2, 0x55, 0x47, 0x01};

ug_verdict ug_rules_handle(ug_inst *I, unsigned worker, const struct sockaddr *src, const uint8_t *in, size_t in_len,
                           uint8_t *out, size_t out_cap, size_t *out_len, unsigned *flags)
{
    *out_len = 0;
    *flags = 0;
    if (worker >= I->nworkers)
        return UG_VERDICT_DROP;
    ug_worker *w = &I->workers[worker];
    ug_count(w, ST_DATAGRAMS);
    ug_hello_reply x = {.I = I, .w = w, .worker = worker, .src = src, .in = in, .in_len = in_len, .out = out,
                        .cap = out_cap < in_len ? out_cap : in_len, .out_len = out_len, .flags = flags};
    /* rule 1: not ours at all → the host's; ours but malformed → silence */
    if (in_len >= sizeof dgram_prefix && memcmp(in, dgram_prefix, 4) == 0 && in[4] == UG2_VERSION)
        return handle_v2(I, w, worker, &x);
    if (in_len < sizeof dgram_prefix || memcmp(in, dgram_prefix, sizeof dgram_prefix) != 0) {
        ug_count(w, ST_FOREIGN);
        return UG_VERDICT_PASS;
    }
    ug_dgram d;
    ug_hello h;
    ug_err e;
    if (ug_hello_parse(&h, &d, in, in_len, &e) != 0) {
        ug_report r;
        if (e == UG_E_HEADER && d.body && d.type == UG_TYPE_REPORT) {
            if (ug_report_parse(&r, &d, in, in_len, &e) == 0)
                return report_path(I, w, worker, src, &r, NULL, &d);
            ug_count(w, ST_DROP0 + e);
            return UG_VERDICT_DROP;
        }
        ug_count(w, e == UG_E_HEADER && d.body ? ST_DROP_TYPE : ST_DROP0 + e);
        return UG_VERDICT_DROP;
    }
    x.h = &h;
    x.d = &d;
    return hello_in(I, w, &x, &h);
}

/* ---- decide(): the same rules on claimed fields ----------------------------- */

static void fill_decision(ug_decision *d, const ug_plan *p, uint64_t policy_retry, uint64_t now, uint64_t uid,
                          const ug_version *ver)
{
    const ug_rollout *r = p->lr ? p->lr->r : NULL;
    ug_decision out = {.size = d->size, .answer = p->answer, .why = p->why, .fresh = p->fresh};
    if (p->answer == UG_ANSWER_WAIT)
        out.retry = ug_plan_retry(p, policy_retry, now, uid);
    if (r) {
        out.rollout = r->name;
        out.to = r->to;
        out.package_size = r->rel.size;
        out.nmirrors = r->rel.nurls;
        out.mirror = p->answer == UG_ANSWER_HINT ? (unsigned)(ug_mix64(uid) % r->rel.nurls) : 0;
        int k = r->rel2 && !r->deltas_off ? ug2_manifest_delta_for(r->rel2, ver) : -1; /* as ug_v2_hint chooses */
        out.delta = p->answer == UG_ANSWER_HINT && k >= 0;
        out.fetch_size = out.delta ? r->rel2->deltas[k].size : r->rel.size;
    }
    out.stage = p->ls ? p->ls->s->name : NULL;
    size_t n = d->size < sizeof out ? d->size : sizeof out;
    memcpy(d, &out, n);
}

static json_t *trace_object(const ug_plan *p, json_t *trace, bool granted)
{
    json_t *o = json_pack("{s:s?, s:s?, s:s, s:i, s:s, s:s?, s:b, s:o}", "rollout", p->lr ? p->lr->r->name : NULL,
                          "release", p->lr ? p->lr->r->to : NULL,
                          "answer", p->answer == UG_ANSWER_HINT ? "hint" : p->answer == UG_ANSWER_COOKIE ? "cookie" : "wait",
                          "why", (json_int_t)p->why, "why_name", p->answer == UG_ANSWER_WAIT ? ug_why_name(p->why) : "",
                          "stage", p->ls ? p->ls->s->name : NULL, "granted", granted, "trace", trace);
    if (o && p->answer == UG_ANSWER_WAIT && p->reopen)
        json_object_set_new(o, "window_opens", json_integer((json_int_t)p->reopen));
    if (o && p->lr && ug_rollout_critical(p->lr->r))
        json_object_set_new(o, "urgency", json_string("critical"));
    return o;
}

static void emit_trace(const ug_claims *cl, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text)
        cl->trace(cl->trace_ctx, text, strlen(text));
    free(text);
    json_decref(o);
}

/* The body of decide(); l is the live policy the caller entered. */
int ug_decide_in(ug_inst *I, const ug_live *l, unsigned worker, const ug_claims *cl, ug_decision *d, void **trace_out)
{
    ug_version ver, to;
    if (!cl->ver || ug_version_parse(&ver, cl->ver, strlen(cl->ver)) != 0)
        return -1;
    uint64_t now = ug_inst_now(I);
    bool spend = (cl->flags & UG_DECIDE_SPEND) && I->store;
    ug_worker *w = &I->workers[worker < I->nworkers ? worker : 0];
    if (cl->kind == UG_CLAIM_REPORT) {
        if (!cl->to || ug_version_parse(&to, cl->to, strlen(cl->to)) != 0 || cl->res >= UG_RES_COUNT_)
            return -1;
        ug_outcome_told told = {.uid = cl->uid, .ver = &ver, .to = &to, .res = (ug_res)cl->res,
                                .ts = cl->ts ? cl->ts : now};
        int rc = ug_outcome_report(I, worker, l, &told, !spend);
        ug_decision out = {.size = d->size, .answer = UG_ANSWER_NONE, .counted = rc > 0};
        memcpy(d, &out, d->size < sizeof out ? d->size : sizeof out);
        return 0;
    }
    ug_rule_input c = {.I = I, .w = w, .worker = worker, .l = l, .now = now, .uid = cl->uid, .ver = &ver,
                  .plat = cl->plat ? cl->plat : "", .chan = cl->chan ? cl->chan : "", .ts = cl->ts ? cl->ts : now,
                  .src = cl->src, .addr_proved = cl->flags & UG_DECIDE_ADDR_PROVED,
                  .trace = cl->trace || trace_out ? json_array() : NULL,
                  .memo = UG_HAS_FIELD(ug_claims, cl->size, memo) ? cl->memo : NULL};
    ug_plan p = {.answer = UG_ANSWER_WAIT, .why = UG_WHY_NOT_TARGETED};
    const ug_live_rollout *lr = route(l, &ver, c.plat, c.chan);
    bool granted = false;
    if (!lr) {
        const ug_live_rollout *olr = ug_outcome_untargeted(I, l, cl->uid, &ver);
        if (olr && spend)
            ug_outcome_observe(I, worker, olr, cl->uid, &ver, NULL, c.ts, false);
    } else if (!clock_ok(c.ts, now, l->pol->clock_window)) {
        p = (ug_plan){.answer = UG_ANSWER_WAIT, .why = UG_WHY_CLOCK, .lr = lr};
    } else {
        ug_grant_info gi = {.found = false}; /* one lookup for the outcome, the trace and the rules */
        if (lr->sc)
            (void)ug_scope_lookup(lr->sc, cl->uid, &gi);
        if (spend && ug_outcome_observe(I, worker, lr, cl->uid, &ver, &gi, c.ts, false))
            (void)ug_scope_lookup(lr->sc, cl->uid, &gi); /* the rules see the outcome just set */
        granted = gi.found;
        c.grant = &gi;
        p = ug_rules_run(&c, lr, spend);
    }
    if (spend && p.answer == UG_ANSWER_WAIT)
        count_wait(w, worker, p.lr, p.ls, p.why, true);
    fill_decision(d, &p, l->pol->retry, now, cl->uid, &ver);
    if (c.trace) {
        json_t *o = trace_object(&p, c.trace, granted);
        if (trace_out)
            *trace_out = o;
        else
            emit_trace(cl, o);
    }
    return 0;
}

int ug_rules_decide(ug_inst *I, unsigned worker, const ug_claims *cl, ug_decision *d)
{
    if (!cl || !d || !UG_HAS_FIELD(ug_claims, cl->size, trace_ctx) || !UG_HAS_FIELD(ug_decision, d->size, nmirrors) ||
        worker >= I->nworkers)
        return -1;
    ug_worker *w = &I->workers[worker];
    ug_live *l = ug_enter(I, w);
    int rc = ug_decide_in(I, l, worker, cl, d, NULL);
    ug_leave(w);
    return rc;
}

void ug_rules_prefetch(ug_inst *I, unsigned worker, uint64_t uid)
{
    if (!I || worker >= I->nworkers || uid == 0)
        return;
    ug_worker *w = &I->workers[worker];
    ug_live *l = ug_enter(I, w);
    for (size_t i = 0; i < l->pol->nrollouts; i++)
        if (l->ro[i].sc)
            ug_scope_prefetch(l->ro[i].sc, uid);
    ug_leave(w);
}
