/* The plugin: one HELLO in, a HINT, WAIT or COOKIE out, per tracker rules 1-10. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "cookiejar.h"
#include "guard.h"
#include "mix.h"
#include "policy.h"
#include "quota.h"
#include "upgate_plugin.h"

#ifndef UG_VERSION_STRING
#define UG_VERSION_STRING "1.0.0"
#endif

/* Counters, one array per worker so the hot path writes its own cache lines. */
enum {
    ST_DATAGRAMS,
    ST_FOREIGN,
    ST_HELLOS,
    ST_HINTS,
    ST_HINTS_NEW,
    ST_HINTS_STICKY,
    ST_COOKIES,
    ST_WAIT0, /* ST_WAIT0 + why */
    ST_DROP0 = ST_WAIT0 + UG_WHY_COUNT_, /* ST_DROP0 + ug_err */
    ST_DROP_TYPE = ST_DROP0 + UG_E_COUNT_,
    ST_SIG_CHECKS,
    ST_CRED_CACHE_HITS,
    ST_RETRANSMITS,
    ST_DROP_BUDGET,
    ST_FLUSH_FAILED,
    ST_COUNT
};

static const char *const stat_names[ST_COUNT] = {
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
};

/* A token bucket of new offers per second, on the host's clock. Only new
 * offers touch it, and those are what it limits, so a mutex is cheap here. */
typedef struct {
    pthread_mutex_t mu;
    double tokens, rate;
    uint64_t last;
} ug_rate;

static bool rate_take(ug_rate *r, uint64_t now)
{
    pthread_mutex_lock(&r->mu);
    if (now > r->last) {
        double burst = r->rate < 1 ? 1 : r->rate;
        r->tokens += r->rate * (double)(now - r->last);
        if (r->tokens > burst)
            r->tokens = burst;
        r->last = now;
    }
    bool ok = r->tokens >= 1;
    if (ok)
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

/* A policy with what it needs at run time; swapped whole on reload. */
typedef struct {
    ug_policy *pol;
    size_t *first;  /* per rollout: index of its first stage in q and rate */
    size_t nstages; /* over all rollouts */
    ug_qstage **q;  /* per stage; NULL when it has neither quota nor rate */
    ug_rate *rate;  /* per stage; used when has_rate */
    uint64_t gen;   /* distinct per build: what the credential cache trusted */
} ug_live;

typedef struct {
    _Alignas(64) _Atomic uint64_t c[ST_COUNT];
    _Atomic(ug_live *) using; /* the policy this worker is inside, or NULL */
    ug_guard guard;
} ug_worker;

typedef struct {
    ug_host host;
    unsigned nworkers;
    ug_worker *workers;
    ug_quota *quota;
    char state_dir[UG_PATH_MAX];
    _Atomic(ug_live *) live;
    ug_cookiejar jar;
    _Atomic bool under_load; /* cookie: auto, and signature checks pass the threshold */
    uint64_t load_last_checks, load_last_time;
    uint64_t generations; /* live_build is never concurrent with itself */
} ug_inst;

static void logf_(ug_inst *I, ug_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(ug_inst *I, ug_log_level lvl, const char *fmt, ...)
{
    char msg[UG_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (I->host.log)
        I->host.log(I->host.ctx, lvl, msg);
}

static uint64_t default_now(void *ctx)
{
    (void)ctx;
    return (uint64_t)time(NULL);
}

static void count(ug_worker *w, unsigned st)
{
    atomic_fetch_add_explicit(&w->c[st], 1, memory_order_relaxed);
}

static void live_free(ug_live *l)
{
    if (!l)
        return;
    if (l->rate)
        for (size_t i = 0; i < l->nstages; i++)
            pthread_mutex_destroy(&l->rate[i].mu);
    free(l->rate);
    free(l->q);
    free(l->first);
    ug_policy_free(l->pol);
    free(l);
}

/* Loads a policy and binds its stages to their durable state; touches no
 * running state until the caller swaps it in, except set_limit (see quota.h:
 * limits belong to a stage's name, whichever policy object names it). */
static ug_live *live_build(ug_inst *I, const char *path, char *err, size_t errcap)
{
    ug_live *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errcap, "%s: out of memory", path);
        return NULL;
    }
    l->pol = ug_policy_load(path, err, errcap);
    if (!l->pol)
        goto fail;
    const ug_policy *p = l->pol;
    if (I->quota && strcmp(p->state_dir, I->state_dir) != 0) {
        snprintf(err, errcap, "%s: state: cannot change from %s while running; restart to move it", path,
                 I->state_dir);
        goto fail;
    }
    if (!I->quota) {
        I->quota = ug_quota_open(p->state_dir, I->nworkers, err, errcap);
        if (!I->quota)
            goto fail;
        snprintf(I->state_dir, sizeof I->state_dir, "%s", p->state_dir);
    }
    /* Stages of every rollout in one array; quota state is keyed by stage
     * name for now (the runtime rewrite keys it by rollout and release). */
    l->first = calloc(p->nrollouts ? p->nrollouts : 1, sizeof *l->first);
    for (size_t r = 0; r < p->nrollouts; r++)
        l->first[r] = l->nstages, l->nstages += p->rollouts[r].nstages;
    l->q = calloc(l->nstages ? l->nstages : 1, sizeof *l->q);
    l->rate = calloc(l->nstages ? l->nstages : 1, sizeof *l->rate);
    if (!l->first || !l->q || !l->rate) {
        snprintf(err, errcap, "%s: out of memory", path);
        l->nstages = 0;
        goto fail;
    }
    for (size_t i = 0; i < l->nstages; i++) /* all of them: live_free destroys all */
        pthread_mutex_init(&l->rate[i].mu, NULL);
    uint64_t now = I->host.now(I->host.ctx);
    l->gen = ++I->generations;
    for (size_t r = 0; r < p->nrollouts; r++) {
        const ug_rollout *ro = &p->rollouts[r];
        for (size_t j = 0, i = l->first[r]; j < ro->nstages; j++, i++) {
            const ug_stage *s = &ro->stages[j];
            l->rate[i].rate = s->rate;
            l->rate[i].tokens = s->rate < 1 ? 1 : s->rate;
            l->rate[i].last = now;
            if (s->has_quota || s->has_rate) {
                l->q[i] = ug_quota_stage(I->quota, s->name, err, errcap);
                if (!l->q[i])
                    goto fail;
            }
        }
        if (ro->rel.exp <= now)
            logf_(I, UG_LOG_WARN, "%s: rollout %s: release manifest expired; every peer it owns is told to wait (paused)",
                  path, ro->name);
    }
    /* nothing can fail past this point: publish the limits */
    for (size_t r = 0; r < p->nrollouts; r++)
        for (size_t j = 0, i = l->first[r]; j < p->rollouts[r].nstages; j++, i++)
            if (l->q[i])
                ug_qstage_set_limit(l->q[i], p->rollouts[r].stages[j].has_quota
                                                 ? ug_policy_share(p, p->rollouts[r].stages[j].quota)
                                                 : UG_QUOTA_UNLIMITED);
    return l;
fail:
    live_free(l);
    return NULL;
}

static void plugin_destroy(void *inst)
{
    ug_inst *I = inst;
    if (!I)
        return;
    live_free(atomic_load(&I->live));
    if (I->quota)
        ug_quota_close(I->quota);
    for (unsigned i = 0; i < I->nworkers; i++)
        ug_guard_free(&I->workers[i].guard);
    ug_cookiejar_free(&I->jar);
    free(I->workers);
    free(I);
}

static void *plugin_create(const ug_host *host, const char *policy_path, char *err, size_t errcap)
{
    if (sodium_init() < 0) {
        snprintf(err, errcap, "libsodium failed to initialise");
        return NULL;
    }
    if (!host || host->nworkers == 0 || host->nworkers > UG_WORKERS_MAX) {
        snprintf(err, errcap, "host: nworkers must be 1..%u", UG_WORKERS_MAX);
        return NULL;
    }
    ug_inst *I = calloc(1, sizeof *I);
    if (!I) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    size_t hsize = host->size < sizeof I->host ? host->size : sizeof I->host;
    memcpy(&I->host, host, hsize);
    I->host.size = (uint32_t)hsize;
    if (!UG_HAS_FIELD(ug_host, hsize, now) || !I->host.now)
        I->host.now = default_now;
    if (!UG_HAS_FIELD(ug_host, hsize, log))
        I->host.log = NULL;
    I->nworkers = host->nworkers;
    I->workers = aligned_alloc(64, sizeof *I->workers * I->nworkers);
    if (!I->workers) {
        snprintf(err, errcap, "out of memory");
        free(I);
        return NULL;
    }
    memset(I->workers, 0, sizeof *I->workers * I->nworkers);
    bool ok = ug_cookiejar_init(&I->jar) == 0;
    for (unsigned i = 0; i < I->nworkers; i++)
        ok = ok && ug_guard_init(&I->workers[i].guard) == 0;
    if (!ok)
        snprintf(err, errcap, "out of memory");
    ug_live *l = ok ? live_build(I, policy_path, err, errcap) : NULL;
    if (!l) {
        plugin_destroy(I);
        return NULL;
    }
    atomic_store(&I->live, l);
    return I;
}

/* Publishes which policy this worker reads; the re-check closes the race
 * with a reload that swapped between our load and our store. */
static ug_live *enter(ug_inst *I, ug_worker *w)
{
    for (;;) {
        ug_live *l = atomic_load(&I->live);
        atomic_store(&w->using, l);
        if (atomic_load(&I->live) == l)
            return l;
    }
}

static void leave(ug_worker *w)
{
    atomic_store(&w->using, NULL);
}

static int plugin_reload(void *inst, const char *policy_path, char *err, size_t errcap)
{
    ug_inst *I = inst;
    ug_live *old = atomic_load(&I->live);
    ug_live *l = live_build(I, policy_path ? policy_path : old->pol->path, err, errcap);
    if (!l) /* err goes back to the host, which says it once */
        return -1;
    atomic_store(&I->live, l);
    /* wait out the workers still reading the old policy, then free it */
    for (unsigned i = 0; i < I->nworkers; i++)
        while (atomic_load(&I->workers[i].using) == old)
            nanosleep(&(struct timespec){0, 100000}, NULL);
    live_free(old);
    logf_(I, UG_LOG_INFO, "policy reloaded from %s (%zu rollouts, %zu stages)", l->pol->path, l->pol->nrollouts,
          l->nstages);
    return 0;
}

static int plugin_flush(void *inst, unsigned worker)
{
    ug_inst *I = inst;
    if (worker >= I->nworkers)
        return -1;
    if (ug_quota_commit(I->quota, worker) != 0) {
        count(&I->workers[worker], ST_FLUSH_FAILED);
        return -1;
    }
    return 0;
}

static void plugin_tick(void *inst)
{
    ug_inst *I = inst;
    uint64_t now = I->host.now(I->host.ctx), checks = 0;
    for (unsigned i = 0; i < I->nworkers; i++)
        checks += atomic_load_explicit(&I->workers[i].c[ST_SIG_CHECKS], memory_order_relaxed);
    if (now > I->load_last_time && I->load_last_time) {
        ug_live *l = atomic_load(&I->live); /* tick is never concurrent with reload */
        uint64_t per_s = (checks - I->load_last_checks) / (now - I->load_last_time);
        uint64_t thr = l->pol->cookie_threshold;
        bool on = atomic_load(&I->under_load);
        /* hysteresis: switch off only well below the threshold */
        if (!on && per_s > thr) {
            atomic_store(&I->under_load, true);
            logf_(I, UG_LOG_INFO, "%llu signature checks/s: cookies required", (unsigned long long)per_s);
        } else if (on && per_s < thr / 2) {
            atomic_store(&I->under_load, false);
            logf_(I, UG_LOG_INFO, "load down to %llu checks/s: cookies optional", (unsigned long long)per_s);
        }
    }
    if (now != I->load_last_time) {
        I->load_last_time = now;
        I->load_last_checks = checks;
    }
}

static size_t plugin_stats(void *inst, ug_stat *out, size_t cap)
{
    ug_inst *I = inst;
    size_t n = 0;
    for (unsigned st = 0; st < ST_COUNT; st++) {
        if (!stat_names[st]) /* reasons a tracker never meets (peer-side checks) */
            continue;
        if (n < cap) {
            uint64_t v = 0;
            for (unsigned i = 0; i < I->nworkers; i++)
                v += atomic_load_explicit(&I->workers[i].c[st], memory_order_relaxed);
            out[n] = (ug_stat){stat_names[st], v};
        }
        n++;
    }
    return n;
}

/* ---- the datagram path ---------------------------------------------- */

typedef struct {
    ug_inst *I;
    ug_worker *w;
    unsigned worker;
    const ug_live *l;
    const ug_rollout *r; /* the rollout that owns the HELLO */
    const ug_hello *h;
    uint64_t now;
    uint8_t *out;
    size_t cap; /* min(out_cap, in_len): no reply outgrows its request */
    size_t *out_len;
} ug_ctx;

/* Rule 10: the configured retry plus up to +20%, fixed per uid, so peers
 * told to wait together do not come back together. */
static uint64_t jittered(uint64_t retry, uint64_t uid)
{
    return retry + retry / 5 * (ug_mix64(uid) % 1001) / 1000;
}

/* Sends an unsigned reply whose body encoder returned `encoded`. */
static ug_verdict reply_unsigned(ug_ctx *c, ug_type type, int encoded, const uint8_t *body, size_t blen,
                                 unsigned stat)
{
    if (encoded != 0 || ug_dgram_encode(c->out, c->cap, c->out_len, type, body, blen, NULL) != 0) {
        count(c->w, ST_DROP0 + UG_E_BUFFER);
        *c->out_len = 0;
        return UG_VERDICT_DROP;
    }
    count(c->w, stat);
    return UG_VERDICT_REPLY;
}

static ug_verdict reply_wait(ug_ctx *c, ug_why why, uint64_t retry)
{
    ug_wait wt = {.ts = c->now, .retry = retry, .why = why};
    memcpy(wt.nonce, c->h->nonce, UG_NONCE_LEN);
    uint8_t body[128];
    size_t blen = 0;
    int rc = ug_wait_encode_body(body, sizeof body, &blen, &wt);
    return reply_unsigned(c, UG_TYPE_WAIT, rc, body, blen, ST_WAIT0 + why);
}

static ug_verdict reply_cookie(ug_ctx *c, const struct sockaddr *src)
{
    ug_cookie ck = {.ts = c->now};
    memcpy(ck.nonce, c->h->nonce, UG_NONCE_LEN);
    ug_cookiejar_make(&c->I->jar, src, c->now, ck.cookie);
    uint8_t body[128];
    size_t blen = 0;
    int rc = ug_cookie_encode_body(body, sizeof body, &blen, &ck);
    return reply_unsigned(c, UG_TYPE_COOKIE, rc, body, blen, ST_COOKIES);
}

static ug_verdict reply_hint(ug_ctx *c, bool fresh)
{
    const ug_policy *p = c->l->pol;
    const ug_rollout *r = c->r;
    uint64_t exp = c->now + p->hint_ttl;
    ug_hint_fields hf = {
        .uid = c->h->uid,
        .ts = c->now,
        .exp = exp < r->rel.exp ? exp : r->rel.exp, /* never outlive the manifest */
        .mirror = ug_mix64(c->h->uid) % r->rel.nurls,  /* spread peers over the mirrors */
        .rel = r->manifest,
        .rel_len = r->manifest_len,
    };
    memcpy(hf.nonce, c->h->nonce, UG_NONCE_LEN);
    memcpy(hf.kid, p->hint_pub.kid, UG_KID_LEN);
    uint8_t body[UG_DGRAM_MAX];
    size_t blen;
    if (ug_hint_encode_body(body, sizeof body, &blen, &hf) != 0 ||
        ug_dgram_encode(c->out, c->cap, c->out_len, UG_TYPE_HINT, body, blen, p->hint_sk) != 0) {
        /* checked against ug_hint_max_len before any grant: cannot happen */
        *c->out_len = 0;
        return reply_wait(c, UG_WHY_TOO_SMALL, 0);
    }
    count(c->w, ST_HINTS);
    count(c->w, fresh ? ST_HINTS_NEW : ST_HINTS_STICKY);
    return UG_VERDICT_REPLY;
}

/* Which WAIT reason helps a peer more: "rate limited" (come back soon) over
 * "quota spent" over "not selected". */
static ug_why more_useful(ug_why a, ug_why b)
{
    static const int rank[UG_WHY_COUNT_] = {[UG_WHY_NOT_SELECTED] = 1, [UG_WHY_QUOTA] = 2, [UG_WHY_RATE] = 3};
    return rank[b] > rank[a] ? b : a;
}

/* Rule 6 and 7: the rollout's stages in order; the first that selects wins. */
static ug_verdict run_policy(ug_ctx *c, const struct sockaddr *src)
{
    const ug_policy *p = c->l->pol;
    const ug_rollout *r = c->r;
    const ug_hello *h = c->h;
    const ug_peer peer = {.uid = h->uid, .ver = &h->ver, .plat = h->plat, .chan = h->chan, .src = src,
                          .now = (int64_t)c->now};
    bool fits = ug_hint_max_len(r->manifest_len) <= c->cap;
    ug_why why = UG_WHY_NOT_SELECTED;
    size_t base = c->l->first[r - p->rollouts];
    for (size_t j = 0; j < r->nstages; j++) {
        const ug_stage *s = &r->stages[j];
        size_t i = base + j;
        ug_qstage *q = c->l->q[i];
        if (!ug_stage_active(s, (int64_t)c->now))
            continue;
        /* offered once, offered again: no condition, no quota, no rate */
        if (q && ug_qstage_granted(q, h->uid))
            return fits ? reply_hint(c, false) : reply_wait(c, UG_WHY_TOO_SMALL, 0);
        if (!ug_stage_matches(s, &peer))
            continue;
        if (s->has_percent &&
            ug_percent_bucket(s->salt, s->salt_len, h->uid) >= ug_percent_at(&s->percent, (int64_t)c->now))
            continue;
        if (!fits) /* spend nothing on an answer that cannot be sent */
            return reply_wait(c, UG_WHY_TOO_SMALL, 0);
        if (!q)
            return reply_hint(c, true);
        if (s->has_quota && ug_qstage_remaining(q) == 0) {
            why = more_useful(why, UG_WHY_QUOTA);
            continue;
        }
        if (s->has_rate && !rate_take(&c->l->rate[i], c->now)) {
            why = more_useful(why, UG_WHY_RATE);
            continue;
        }
        switch (ug_qstage_grant(q, c->worker, h->uid)) {
        case UG_GRANT_NEW:
            return reply_hint(c, true);
        case UG_GRANT_ALREADY: /* another worker granted it a moment ago */
            if (s->has_rate)
                rate_refund(&c->l->rate[i]);
            return reply_hint(c, false);
        case UG_GRANT_SPENT:
            if (s->has_rate)
                rate_refund(&c->l->rate[i]);
            why = more_useful(why, UG_WHY_QUOTA);
            continue;
        }
    }
    return reply_wait(c, why, jittered(p->retry, h->uid));
}

/* Rule 4, with each worker remembering the credentials it has verified: a
 * peer's later HELLOs then cost one Ed25519 check, not two. */
static int verify_hello(ug_ctx *c, const ug_dgram *d, ug_err *e)
{
    const ug_policy *p = c->l->pol;
    const ug_pubkey *issuer;
    uint8_t key[UG_KEY_LEN];
    if (ug_cred_check(c->h, p->issuers, p->nissuers, c->now, &issuer, e) != 0)
        return -1;
    if (ug_credcache_has(&c->w->guard, &c->h->cred_obj, c->l->gen, key)) {
        count(c->w, ST_CRED_CACHE_HITS);
    } else {
        count(c->w, ST_SIG_CHECKS);
        if (ug_cred_sig_verify(c->h, issuer, e) != 0)
            return -1;
        ug_credcache_put(&c->w->guard, key, c->l->gen);
    }
    count(c->w, ST_SIG_CHECKS);
    return ug_hello_sig_verify(c->h, d, e);
}

/* Rules 4 to 6, for a targeted HELLO that is not a retransmit. */
static ug_verdict verified_path(ug_ctx *c, const ug_dgram *d, const struct sockaddr *src)
{
    const ug_policy *p = c->l->pol;
    ug_err e;
    if (verify_hello(c, d, &e) != 0) {
        count(c->w, ST_DROP0 + e);
        return UG_VERDICT_DROP;
    }
    uint64_t ts = c->h->ts;
    if ((ts > c->now ? ts - c->now : c->now - ts) > p->clock_window)
        return reply_wait(c, UG_WHY_CLOCK, jittered(p->retry, c->h->uid));
    if (c->r->paused || c->r->rel.exp <= c->now) /* an expired manifest would fail every peer's check */
        return reply_wait(c, UG_WHY_PAUSED, jittered(p->retry, c->h->uid));
    return run_policy(c, src);
}

static bool cookie_required(ug_inst *I, const ug_policy *p)
{
    return p->cookie == UG_COOKIE_ALWAYS || (p->cookie == UG_COOKIE_AUTO && atomic_load(&I->under_load));
}

static const uint8_t dgram_prefix[5] = {0x95, 0xa2, 0x55, 0x47, 0x01};

static ug_verdict plugin_handle(void *inst, unsigned worker, const struct sockaddr *src, socklen_t srclen,
                                const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                                size_t *out_len)
{
    ug_inst *I = inst;
    *out_len = 0;
    if (worker >= I->nworkers)
        return UG_VERDICT_DROP;
    ug_worker *w = &I->workers[worker];
    count(w, ST_DATAGRAMS);
    (void)srclen;
    /* rule 1: not ours at all → the host's; ours but malformed → silence */
    if (in_len < sizeof dgram_prefix || memcmp(in, dgram_prefix, sizeof dgram_prefix) != 0) {
        count(w, ST_FOREIGN);
        return UG_VERDICT_PASS;
    }
    ug_dgram d;
    ug_hello h;
    ug_err e;
    if (ug_dgram_decode(&d, in, in_len, &e) != 0) {
        count(w, ST_DROP0 + e);
        return UG_VERDICT_DROP;
    }
    if (d.type != UG_TYPE_HELLO) {
        count(w, ST_DROP_TYPE);
        return UG_VERDICT_DROP;
    }
    if (ug_hello_decode(&h, d.body, d.body_len, &e) != 0) {
        count(w, ST_DROP0 + e);
        return UG_VERDICT_DROP;
    }
    count(w, ST_HELLOS);

    ug_live *l = enter(I, w);
    const ug_policy *p = l->pol;
    ug_ctx c = {
        .I = I, .w = w, .worker = worker, .l = l, .h = &h, .now = I->host.now(I->host.ctx),
        .out = out, .cap = out_cap < in_len ? out_cap : in_len, .out_len = out_len,
    };
    ug_verdict v;
    c.r = ug_policy_route(p, &h.ver, h.plat, h.chan);
    if (cookie_required(I, p) && !(h.has_cookie && ug_cookiejar_check(&I->jar, src, c.now, h.cookie))) {
        v = reply_cookie(&c, src); /* rule 2: before any signature work */
    } else if (!c.r) {
        /* rule 3: the host may serve this peer as usual, or send our WAIT */
        v = reply_wait(&c, UG_WHY_NOT_TARGETED, jittered(p->retry, h.uid));
        if (v == UG_VERDICT_REPLY)
            v = UG_VERDICT_PASS;
    } else {
        /* rule 8: the same bytes from the same peer get the same answer,
         * with no signature work and nothing spent */
        uint8_t rkey[UG_KEY_LEN];
        ug_replay_key(rkey, src, in, in_len);
        *out_len = ug_replay_find(&w->guard, rkey, c.now, out, c.cap);
        if (*out_len) {
            count(w, ST_RETRANSMITS);
            v = UG_VERDICT_REPLY;
        } else if (p->source_budget &&
                   !ug_budget_take(&w->guard, src, c.now, (double)p->source_budget / I->nworkers)) {
            count(w, ST_DROP_BUDGET); /* one network may not starve the others */
            v = UG_VERDICT_DROP;
        } else {
            v = verified_path(&c, &d, src);
            if (v == UG_VERDICT_REPLY)
                ug_replay_store(&w->guard, rkey, c.now, out, *out_len);
        }
    }
    leave(w);
    return v;
}

__attribute__((visibility("default"))) const ug_plugin upgate_plugin = {
    .abi_major = UG_PLUGIN_ABI_MAJOR,
    .abi_minor = UG_PLUGIN_ABI_MINOR,
    .size = sizeof(ug_plugin),
    .name = "upgate",
    .version = UG_VERSION_STRING,
    .create = plugin_create,
    .handle = plugin_handle,
    .flush = plugin_flush,
    .tick = plugin_tick,
    .reload = plugin_reload,
    .stats = plugin_stats,
    .destroy = plugin_destroy,
};
