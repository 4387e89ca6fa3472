/* The plugin's ABI and lifecycle: create, reload, flush, tick, stats, finish, destroy, and the entry table. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "fleet/fleet.h"
#include "core/runtime.h"

#ifndef UG_VERSION
#define UG_VERSION "1.1.0"
#endif

void ug_logf(ug_inst *I, ug_log_level lvl, const char *fmt, ...)
{
    char msg[UG_ERR_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (I->host.log)
        I->host.log(I->host.ctx, lvl, msg);
}

uint64_t ug_default_now(void *ctx)
{
    (void)ctx;
    return (uint64_t)time(NULL);
}

uint64_t ug_inst_now(ug_inst *I)
{
    return I->host.now(I->host.ctx);
}

int ug_history(ug_inst *I, uint64_t at, const char *line)
{
    if (!I->store)
        return 0;
    if (ug_store_history_add(I->store, at, line) == 0)
        return 0;
    ug_logf(I, UG_LOG_ERROR, "state folder %s: cannot store in the history: %s", I->state_dir, line);
    return -1;
}

static void store_log(void *ctx, int level, const char *msg)
{
    ug_logf(ctx, (ug_log_level)level, "%s", msg);
}

/* ---- workers and the policy they read -------------------------------------- */

/* Publishes which policy this worker reads; the re-check closes the race
 * with a reload that swapped between our load and our store. */
ug_live *ug_enter(ug_inst *I, ug_worker *w)
{
    for (;;) {
        ug_live *l = atomic_load(&I->live);
        atomic_store(&w->using, l);
        if (atomic_load(&I->live) == l)
            return l;
    }
}

void ug_leave(ug_worker *w)
{
    atomic_store(&w->using, NULL);
    atomic_fetch_add(&w->left, 1);
}

/* A worker busy without pause may re-enter the same policy at once, so
 * leaving is counted: one leave after our snapshot is enough, since every
 * entry after it sees what the caller changed. */
void ug_wait_workers(ug_inst *I, const ug_live *old)
{
    for (unsigned i = 0; i < I->nworkers; i++) {
        ug_worker *w = &I->workers[i];
        uint64_t left = atomic_load(&w->left);
        ug_live *was = atomic_load(&w->using);
        if (!was || (old && was != old))
            continue;
        while (atomic_load(&w->left) == left)
            nanosleep(&(struct timespec){0, 100000}, NULL);
    }
}

/* ---- create, reload, destroy ------------------------------------------------- */

/* The state folder this instance keeps: the policy's, unless the host gave
 * its own (then fleet mode is off too). */
static const char *state_of(ug_inst *I, ug_policy *p)
{
    if (!UG_HAS_FIELD(ug_host, I->host.size, state_override) || !I->host.state_override)
        return p->state_dir;
    snprintf(p->state_dir, sizeof p->state_dir, "%s", I->host.state_override);
    p->fleet.enabled = false;
    return p->state_dir;
}

static int open_store(ug_inst *I, ug_policy *p, char *err, size_t errcap)
{
    ug_store_opts o = {
        .dir = state_of(I, p), .nworkers = I->nworkers, .now = ug_inst_now(I),
        /* a layout-1 folder held the grants of a version 1 policy's release */
        .upgrade_rollout = p->nrollouts ? p->rollouts[0].name : NULL,
        .upgrade_to = p->nrollouts ? p->rollouts[0].to : NULL,
        .log = store_log, .log_ctx = I,
    };
    I->store = ug_store_open(&o, err, errcap);
    if (!I->store)
        return -1;
    snprintf(I->state_dir, sizeof I->state_dir, "%s", p->state_dir);
    return 0;
}

int ug_inst_reload(ug_inst *I, const char *path, char *err, size_t errcap)
{
    ug_live *old = atomic_load(&I->live);
    ug_policy *p = ug_policy_load(path ? path : old->pol->path, err, errcap);
    if (!p)
        return -1;
    if (strcmp(state_of(I, p), I->state_dir) != 0) {
        snprintf(err, errcap, "%s: state: cannot change from %s while running; restart to move it", p->path,
                 I->state_dir);
        ug_policy_free(p);
        return -1;
    }
    if (I->fleet ? !ug_fleet_same_conf(I->fleet, &p->fleet) : p->fleet.enabled) {
        snprintf(err, errcap, "%s: fleet: cannot change while running; restart to change it", p->path);
        ug_policy_free(p);
        return -1;
    }
    if (I->fleet) /* the fleet thread never sees a policy, scope or stage being freed */
        ug_fleet_lock(I->fleet);
    ug_store_unmark(I->store);
    ug_state_unmark_all(I);
    ug_live *l = ug_live_build(I, p, err, errcap);
    if (l) {
        atomic_store(&I->live, l);
        ug_wait_workers(I, old);
        ug_live_free(old);
        ug_store_sweep(I->store);
        ug_state_sweep(I);
    }
    if (I->fleet)
        ug_fleet_unlock(I->fleet);
    if (!l)
        return -1; /* err goes back to the host, which says it once */
    ug_logf(I, UG_LOG_INFO, "policy reloaded from %s (%zu rollouts, generation %llu)", l->pol->path,
            l->pol->nrollouts, (unsigned long long)l->gen);
    ug_live_expiry(I, l, ug_inst_now(I), true);
    char line[UG_PATH_MAX + 64];
    snprintf(line, sizeof line, "reload: %s, generation %llu", l->pol->path, (unsigned long long)l->gen);
    ug_history(I, ug_inst_now(I), line);
    return 0;
}

/* Every worker's queue committed (finish() and destroy() run alone). */
static int commit_all(ug_inst *I)
{
    int rc = 0;
    for (unsigned w = 0; I->store && w < I->nworkers; w++)
        if (ug_store_commit(I->store, w) != 0)
            rc = -1;
    return rc;
}

static void plugin_destroy(void *inst)
{
    ug_inst *I = inst;
    if (!I)
        return;
    if (I->fleet) { /* a host without finish(): leave the fleet cleanly here */
        (void)commit_all(I);
        ug_fleet_stop(I->fleet);
    }
    ug_live_free(atomic_load(&I->live));
    if (I->store)
        (void)ug_store_close(I->store, NULL, 0);
    ug_fleet_free(I->fleet); /* after the store: its stages point at the fleet's slot source */
    ug_runtime_free(I);
    for (unsigned i = 0; i < I->nworkers; i++)
        ug_guard_free(&I->workers[i].guard);
    ug_cookiejar_free(&I->jar);
    pthread_mutex_destroy(&I->reg_mu);
    free(I->workers);
    free(I);
}

static ug_inst *inst_new(const ug_host *host, char *err, size_t errcap)
{
    ug_inst *I = calloc(1, sizeof *I);
    if (!I) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    size_t hsize = host->size < sizeof I->host ? host->size : sizeof I->host;
    memcpy(&I->host, host, hsize);
    I->host.size = (uint32_t)hsize;
    if (!UG_HAS_FIELD(ug_host, hsize, now) || !I->host.now)
        I->host.now = ug_default_now;
    if (!UG_HAS_FIELD(ug_host, hsize, log))
        I->host.log = NULL;
    I->nworkers = host->nworkers;
    (void)pthread_mutex_init(&I->reg_mu, NULL);
    I->workers = aligned_alloc(64, sizeof *I->workers * I->nworkers);
    bool ok = I->workers != NULL;
    if (ok)
        memset(I->workers, 0, sizeof *I->workers * I->nworkers);
    ok = ok && ug_cookiejar_init(&I->jar) == 0;
    for (unsigned i = 0; ok && i < I->nworkers; i++)
        ok = ug_guard_init(&I->workers[i].guard) == 0;
    if (!ok) {
        snprintf(err, errcap, "out of memory");
        plugin_destroy(I);
        return NULL;
    }
    return I;
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
    ug_inst *I = inst_new(host, err, errcap);
    if (!I)
        return NULL;
    ug_policy *p = ug_policy_load(policy_path, err, errcap);
    ug_live *l = NULL;
    if (p && open_store(I, p, err, errcap) == 0 &&
        (!p->fleet.enabled || (I->fleet = ug_fleet_new(I, &p->fleet, err, errcap)) != NULL))
        l = ug_live_build(I, p, err, errcap);
    else
        ug_policy_free(p);
    if (!l) {
        plugin_destroy(I);
        return NULL;
    }
    atomic_store(&I->live, l);
    if (I->fleet && ug_fleet_start(I->fleet, err, errcap) != 0) {
        plugin_destroy(I);
        return NULL;
    }
    I->started = ug_inst_now(I);
    ug_live_expiry(I, l, I->started, true);
    return I;
}

static int plugin_reload(void *inst, const char *policy_path, char *err, size_t errcap)
{
    return ug_inst_reload(inst, policy_path, err, errcap);
}

static int plugin_flush(void *inst, unsigned worker)
{
    ug_inst *I = inst;
    if (worker >= I->nworkers)
        return -1;
    if (ug_store_commit(I->store, worker) != 0) {
        ug_count(&I->workers[worker], ST_FLUSH_FAILED);
        return -1;
    }
    return 0;
}

static int plugin_finish(void *inst, char *err, size_t errcap)
{
    ug_inst *I = inst;
    int rc = commit_all(I);
    if (I->fleet) /* tells the fleet every grant now durable, returns the unused lease */
        ug_fleet_stop(I->fleet);
    if (rc != 0)
        snprintf(err, errcap, "state folder %s: some grants could not be stored (see the log for the cause); their "
                              "HINTs were never sent", I->state_dir);
    return rc;
}

/* ---- tick and stats ------------------------------------------------------------ */

static void plugin_tick(void *inst)
{
    ug_inst *I = inst;
    uint64_t now = ug_inst_now(I), checks = 0;
    for (unsigned i = 0; i < I->nworkers; i++)
        checks += atomic_load_explicit(&I->workers[i].c[ST_SIG_CHECKS], memory_order_relaxed);
    if (now > I->load_last_time && I->load_last_time) {
        ug_live *l = atomic_load(&I->live);
        uint64_t per_s = (checks - I->load_last_checks) / (now - I->load_last_time);
        uint64_t thr = l->pol->cookie_threshold;
        bool on = atomic_load(&I->under_load);
        /* hysteresis: switch off only well below the threshold */
        if (!on && per_s > thr) {
            atomic_store(&I->under_load, true);
            ug_logf(I, UG_LOG_INFO, "%llu signature checks/s: cookies required", (unsigned long long)per_s);
        } else if (on && per_s < thr / 2) {
            atomic_store(&I->under_load, false);
            ug_logf(I, UG_LOG_INFO, "load down to %llu checks/s: cookies optional", (unsigned long long)per_s);
        }
    }
    if (now != I->load_last_time) {
        I->load_last_time = now;
        I->load_last_checks = checks;
    }
    ug_outcome_tick(I, now);
    ug_live_expiry(I, atomic_load(&I->live), now, false);
}

static size_t plugin_stats(void *inst, ug_stat *out, size_t cap)
{
    return ug_stats(inst, out, cap);
}

/* ---- the datagram path, decide, check, control ----------------------------------- */

static ug_verdict plugin_handle2(void *inst, unsigned worker, const struct sockaddr *src, socklen_t srclen,
                                 const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len,
                                 unsigned *flags)
{
    (void)srclen;
    unsigned none;
    return ug_rules_handle(inst, worker, src, in, in_len, out, out_cap, out_len, flags ? flags : &none);
}

/* ABI 1.0 hosts treat every reply as waiting for flush(). */
static ug_verdict plugin_handle(void *inst, unsigned worker, const struct sockaddr *src, socklen_t srclen,
                                const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    return plugin_handle2(inst, worker, src, srclen, in, in_len, out, out_cap, out_len, NULL);
}

static int plugin_decide(void *inst, unsigned worker, const ug_claims *claims, ug_decision *out)
{
    return ug_rules_decide(inst, worker, claims, out);
}

static int plugin_control(void *inst, const char *req, size_t req_len, ug_emit emit, void *ctx)
{
    return ug_control(inst, req, req_len, emit, ctx);
}

__attribute__((visibility("default"))) const ug_plugin upgate_plugin = {
    .abi_major = UG_PLUGIN_ABI_MAJOR,
    .abi_minor = UG_PLUGIN_ABI_MINOR,
    .size = sizeof(ug_plugin),
    .name = "upgate",
    .version = UG_VERSION,
    .create = plugin_create,
    .handle = plugin_handle,
    .flush = plugin_flush,
    .tick = plugin_tick,
    .reload = plugin_reload,
    .stats = plugin_stats,
    .destroy = plugin_destroy,
    .handle2 = plugin_handle2,
    .finish = plugin_finish,
    .check = ug_check,
    .decide = plugin_decide,
    .control = plugin_control,
};
