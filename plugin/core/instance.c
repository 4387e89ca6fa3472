/* An instance's life: made, its store opened, its first policy made live, reloaded, ticked, flushed, finished, freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "base/log.h"
#include "base/workers.h"
#include "core/instance.h"
#include "core/outcomes.h"
#include "core/sink.h"

/* HELLOs a worker stages for the census between ticks (16 bytes each): a
 * worker past half of it drains the rings itself. */
#define UG_INST_CENSUS_RING 16384u

static void store_log(void *ctx, int level, const char *msg)
{
    ug_logf(ctx, (ug_log_level)level, "%s", msg);
}

/* The state folder this instance keeps: the policy's, unless the host
 * gave its own. */
static const char *state_of(ug_inst *I, ug_policy *p)
{
    const char *own = ug_inst_state_override(I);
    if (own)
        snprintf(p->state_dir, sizeof p->state_dir, "%s", own);
    return p->state_dir;
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

void ug_inst_free(ug_inst *I)
{
    if (!I)
        return;
    const ug_sink *sink = I->sink;
    if (I->started && I->store) {
        ug_event e = {.by = ug_actor_self(), .action = "stop", .what = "stop"};
        (void)ug_history(I, ug_inst_now(I), &e);
    }
    if (sink && sink->stop) { /* a host without finish(): leave cleanly here */
        (void)commit_all(I);
        sink->stop(sink->ctx);
    }
    ug_live_free(atomic_load(&I->live));
    if (I->store)
        (void)ug_store_close(I->store, NULL, 0);
    if (sink && sink->destroy) /* after the store: its stages point at the sink's slot source */
        sink->destroy(sink->ctx);
    ug_state_free_all(I);
    for (unsigned i = 0; I->workers && i < I->nworkers; i++)
        ug_guard_free(&I->workers[i].guard);
    ug_replay_free(I->replay);
    ug_opener_stop(I->opener); /* after the fleet thread, which reads its password file through it */
    ug_cookiejar_free(&I->jar);
    pthread_mutex_destroy(&I->reg_mu);
    pthread_mutex_destroy(&I->live_mu);
    free(I->workers);
    ug_census_free(I->census);
    ug_census_free(I->census_fleet);
    pthread_mutex_destroy(&I->census_fleet_mu);
    free(I);
}

static ug_inst *inst_alloc(const ug_host *host, char *err, size_t errcap)
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
    I->caller = ug_actor_self();
    (void)pthread_mutex_init(&I->reg_mu, NULL);
    (void)pthread_mutex_init(&I->live_mu, NULL);
    (void)pthread_mutex_init(&I->census_fleet_mu, NULL);
    I->workers = aligned_alloc(64, sizeof *I->workers * I->nworkers);
    bool ok = I->workers != NULL;
    if (ok)
        memset(I->workers, 0, sizeof *I->workers * I->nworkers);
    ok = ok && ug_cookiejar_init(&I->jar) == 0;
    bool roaming = (ug_inst_host_flags(I) & UG_HF_ROAMING_PEERS) && I->nworkers > 1;
    uint32_t cred_sets = ug_guard_cred_sets(I->nworkers, roaming);
    for (unsigned i = 0; ok && i < I->nworkers; i++)
        ok = ug_guard_init(&I->workers[i].guard, cred_sets) == 0;
    /* threads that share a socket: a retransmit may reach any worker, so
     * they remember answers together (rule 8 across workers) */
    if (ok && roaming) {
        ok = (I->replay = ug_replay_new(UG_REPLAY_SETS * I->nworkers, true)) != NULL;
        for (unsigned i = 0; ok && i < I->nworkers; i++)
            ug_guard_share_replay(&I->workers[i].guard, I->replay);
    }
    char why[128];
    ug_census_opts co = {.nworkers = I->nworkers, .ring = UG_INST_CENSUS_RING};
    ok = ok && (I->census = ug_census_create(&co, why, sizeof why)) != NULL;
    if (!ok) {
        snprintf(err, errcap, "out of memory");
        ug_inst_free(I);
        return NULL;
    }
    return I;
}

ug_inst *ug_inst_new(const ug_host *host, char *err, size_t errcap)
{
    if (sodium_init() < 0) {
        snprintf(err, errcap, "libsodium failed to initialise");
        return NULL;
    }
    if (!host || host->nworkers == 0 || host->nworkers > UG_WORKERS_MAX) {
        snprintf(err, errcap, "host: nworkers must be 1..%u", UG_WORKERS_MAX);
        return NULL;
    }
    return inst_alloc(host, err, errcap);
}

/* After the first policy's load: the opener takes the folders of the files
 * it read, and says which a reload after dropping privileges could not
 * read (the log, once per file). */
static int keep_folders(ug_inst *I, const ug_policy *p, char *err, size_t errcap)
{
    ug_opener_fail fails[16];
    int n = ug_opener_seal(I->opener, fails, 16, err, errcap);
    if (n < 0)
        return -1;
    for (int i = 0; i < n && i < 16; i++)
        ug_logf(I, UG_LOG_WARN, "%s: a reload after the host dropped privileges could not read it: %s",
                fails[i].file, fails[i].why);
    const char *user = ug_inst_run_as(I);
    char why[300];
    if (user && p->geo && !ug_user_can_read(user, p->geoip_path, why, sizeof why))
        ug_logf(I, UG_LOG_WARN, "geoip %s: a reload after the host dropped privileges to %s cannot load a changed "
                                "database (libmaxminddb opens it by path): %s", p->geoip_path, user, why);
    return 0;
}

/* The first policy: read as the user that starts the host. A host that
 * drops privileges later gets the opener first (forked before any secret
 * is read), which remembers the folders of the files this load reads. */
static ug_policy *first_policy(ug_inst *I, const char *path, char *err, size_t errcap)
{
    if ((ug_inst_host_flags(I) & UG_HF_DROPS_PRIVILEGES) && geteuid() == 0) {
        if (!(I->opener = ug_opener_start(err, errcap)))
            return NULL;
        ug_opener_record(I->opener);
    }
    ug_policy *p = ug_policy_load_at(path, ug_inst_now(I), err, errcap); /* calendars start at the host's clock */
    ug_opener_plain();
    if (p && I->opener && keep_folders(I, p, err, errcap) != 0) {
        ug_policy_free(p);
        return NULL;
    }
    return p;
}

ug_policy *ug_inst_open(ug_inst *I, const char *path, char *err, size_t errcap)
{
    ug_policy *p = first_policy(I, path, err, errcap);
    if (!p)
        return NULL;
    ug_store_opts o = {
        .dir = state_of(I, p), .nworkers = I->nworkers, .now = ug_inst_now(I),
        /* a layout-1 folder held the grants of a version 1 policy's release */
        .upgrade_rollout = p->nrollouts ? p->rollouts[0].name : NULL,
        .upgrade_to = p->nrollouts ? p->rollouts[0].to : NULL,
        .log = store_log, .log_ctx = I,
    };
    I->store = ug_store_open(&o, err, errcap);
    if (!I->store) {
        ug_policy_free(p);
        return NULL;
    }
    snprintf(I->state_dir, sizeof I->state_dir, "%s", p->state_dir);
    return p;
}

void ug_inst_subscribe(ug_inst *I, const ug_sink *sink, const ug_ctl_ext *ext)
{
    I->sink = sink;
    I->ctl_ext = ext;
    I->slots = sink ? sink->slots : NULL;
    if (sink && sink->granted && I->store)
        ug_store_on_commit(I->store, sink->granted, sink->ctx);
}

int ug_inst_start(ug_inst *I, ug_policy *p, char *err, size_t errcap)
{
    ug_live *l = ug_live_build(I, p, err, errcap);
    if (!l)
        return -1;
    atomic_store(&I->live, l);
    if (I->sink && I->sink->start && I->sink->start(I->sink->ctx, err, errcap) != 0)
        return -1;
    I->started = ug_inst_now(I);
    ug_live_expiry(I, l, I->started, true);
    char line[UG_PATH_MAX + 64];
    snprintf(line, sizeof line, "start: policy %s, %zu rollout%s", p->path, p->nrollouts, p->nrollouts == 1 ? "" : "s");
    ug_event e = {.by = ug_actor_self(), .action = "start", .what = line};
    (void)ug_history(I, I->started, &e);
    return 0;
}

/* A new policy may not move the state folder, nor be refused by the sink. */
static int reload_ok(ug_inst *I, ug_policy *p, char *err, size_t errcap)
{
    if (strcmp(state_of(I, p), I->state_dir) != 0) {
        snprintf(err, errcap, "%s: state: cannot change from %s while running; restart to move it", p->path,
                 I->state_dir);
        return -1;
    }
    if (I->sink && I->sink->policy_ok)
        return I->sink->policy_ok(I->sink->ctx, p, err, errcap);
    return 0;
}

/* The reload itself; sum gets what it changed. */
static int reload_policy(ug_inst *I, const char *path, char *sum, size_t sumcap, char *err, size_t errcap)
{
    ug_live *old = atomic_load(&I->live);
    if (I->opener) /* the host may have dropped privileges since create() */
        ug_opener_use(I->opener);
    ug_policy *p = ug_policy_load_at(path ? path : old->pol->path, ug_inst_now(I), err, errcap);
    ug_opener_plain();
    if (!p)
        return -1;
    if (reload_ok(I, p, err, errcap) != 0) {
        ug_policy_free(p);
        return -1;
    }
    ug_policy_diff(old->pol, p, (int64_t)ug_inst_now(I), sum, sumcap);
    ug_live_lock(I); /* no other thread sees a policy, scope or stage being freed */
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
    ug_live_unlock(I);
    if (!l)
        return -1; /* err goes back to the host, which says it once */
    ug_logf(I, UG_LOG_INFO, "policy reloaded from %s (%zu rollouts, generation %llu)", l->pol->path,
            l->pol->nrollouts, (unsigned long long)l->gen);
    ug_live_expiry(I, l, ug_inst_now(I), true);
    return 0;
}

int ug_inst_reload(ug_inst *I, const char *path, char *err, size_t errcap)
{
    char sum[600], line[UG_PATH_MAX + 700]; /* the history cuts it to fit */
    int rc = reload_policy(I, path, sum, sizeof sum, err, errcap);
    ug_live *l = atomic_load(&I->live);
    if (rc == 0)
        snprintf(line, sizeof line, "reload: %s, generation %llu: %s", l->pol->path, (unsigned long long)l->gen,
                 sum);
    else
        snprintf(line, sizeof line, "reload refused, the running policy stays: %s", err);
    (void)ug_history_note(I, rc == 0 ? "reload" : "reload_refused", NULL, rc == 0 ? NULL : err,
                          rc == 0 ? sum : NULL, line);
    return rc;
}

int ug_inst_flush(ug_inst *I, unsigned worker)
{
    if (worker >= I->nworkers)
        return -1;
    if (ug_store_commit(I->store, worker) != 0) {
        ug_count(&I->workers[worker], ST_FLUSH_FAILED);
        return -1;
    }
    return 0;
}

int ug_inst_finish(ug_inst *I, char *err, size_t errcap)
{
    int rc = commit_all(I);
    if (I->sink && I->sink->stop) /* tells the others every grant now durable, returns what was lent */
        I->sink->stop(I->sink->ctx);
    if (rc != 0)
        snprintf(err, errcap, "state folder %s: some grants could not be stored (see the log for the cause); their "
                              "HINTs were never sent", I->state_dir);
    return rc;
}

/* Cookies become required above the policy's signature checks per second,
 * and optional again only well below (hysteresis). */
static void watch_load(ug_inst *I, uint64_t now)
{
    uint64_t checks = 0;
    for (unsigned i = 0; i < I->nworkers; i++)
        checks += atomic_load_explicit(&I->workers[i].c[ST_SIG_CHECKS], memory_order_relaxed);
    if (now > I->load_last_time && I->load_last_time) {
        ug_live *l = atomic_load(&I->live);
        uint64_t per_s = (checks - I->load_last_checks) / (now - I->load_last_time);
        uint64_t thr = l->pol->cookie_threshold;
        bool on = atomic_load(&I->under_load);
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
}

/* Moves the off-peak calendars' horizon (each rebuilds once a day). */
static void windows_tick(const ug_live *l, int64_t now)
{
    for (size_t i = 0; l && i < l->pol->nrollouts; i++) {
        const ug_rollout *r = &l->pol->rollouts[i];
        ug_windows_tick(&r->win, now);
        for (size_t j = 0; j < r->nstages; j++)
            ug_windows_tick(&r->stages[j].win, now);
    }
}

void ug_inst_tick(ug_inst *I)
{
    uint64_t now = ug_inst_now(I);
    watch_load(I, now);
    windows_tick(atomic_load(&I->live), (int64_t)now); /* tick is never concurrent with reload */
    ug_census_tick(I->census, now);
    ug_outcome_tick(I, now);
    ug_live_expiry(I, atomic_load(&I->live), now, false);
    if (I->store) /* the log's grants into data.mdb, off the workers' path (logged on failure) */
        (void)ug_store_checkpoint(I->store);
}
