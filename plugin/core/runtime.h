/* The plugin's running state: instance, workers, the live policy bound to its store, per-rollout and per-stage state. */
#ifndef UG_RUNTIME_H
#define UG_RUNTIME_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "guard/cookiejar.h"
#include "guard/guard.h"
#include "policy/policy.h"
#include "store/store.h"
#include "upgate_plugin.h"

/* Counters, one array per worker so the hot path writes its own cache lines. */
enum {
    ST_DATAGRAMS,
    ST_FOREIGN,
    ST_HELLOS,
    ST_HINTS,
    ST_HINTS_NEW,
    ST_HINTS_STICKY,
    ST_COOKIES,
    ST_WAIT0,                            /* ST_WAIT0 + why */
    ST_DROP0 = ST_WAIT0 + UG_WHY_COUNT_, /* ST_DROP0 + ug_err */
    ST_DROP_TYPE = ST_DROP0 + UG_E_COUNT_,
    ST_SIG_CHECKS,
    ST_CRED_CACHE_HITS,
    ST_RETRANSMITS,
    ST_DROP_BUDGET,
    ST_FLUSH_FAILED,
    ST_HELD_FOR_DISK,   /* replies flagged to wait for flush() */
    ST_REPORTS,         /* REPORTs that changed a recorded outcome */
    ST_REPORTS_SAME,    /* verified-worthy REPORTs that changed nothing */
    ST_REPORTS_UNKNOWN, /* REPORTs for a uid and release never offered */
    ST_OUTCOMES_SEEN,   /* outcomes learned from HELLOs */
    ST_COUNT
};

/* The WAIT reasons a rollout or stage counts, per worker, on one line. */
typedef struct {
    alignas(64) _Atomic uint64_t why[UG_WHY_COUNT_];
} ug_waits;

/* A token bucket of new offers per second, on the host's clock. Only new
 * offers touch it, and those are what it limits, so a mutex is cheap. It
 * belongs to (rollout, stage name) and outlives reloads. */
typedef struct {
    pthread_mutex_t mu;
    double tokens, rate;
    uint64_t last;
    bool primed;
    double share; /* fleet_rate: this tracker's part of it, set by the fleet thread */
} ug_rate;

/* Per (rollout name, stage name): what outlives a reload. */
typedef struct ug_stage_state {
    char rollout[UG_NAME_MAX + 1], stage[UG_NAME_MAX + 1];
    bool marked;
    ug_rate rate;
    ug_waits *waits; /* [nworkers] */
} ug_stage_state;

/* Outcome events per minute over the last hour, for hold_when_unhealthy. */
typedef struct {
    pthread_mutex_t mu;
    uint64_t minute[60];
    uint32_t failed[60], known[60];
} ug_health;

/* Per rollout name: operator flags (durable), counters, health. */
typedef struct ug_rollout_state {
    char name[UG_NAME_MAX + 1];
    bool marked;
    _Atomic bool ctl_paused;      /* upgate-ctl pause (durable: "pause:NAME") */
    _Atomic bool halted;          /* upgate-ctl halt or automatic (durable: "halt:NAME") */
    _Atomic bool halt_unsaved;    /* set by a worker; tick() stores it */
    char halted_why[256];         /* written before `halted` is set, read after */
    uint64_t halted_at;
    /* hold_when_unhealthy: the schedule runs at now - shift, frozen at
     * held_since - shift while held (durable: "hold:NAME") */
    _Atomic uint64_t held_since, shift;
    _Atomic uint64_t not_taken;   /* last count, from tick's scan */
    uint64_t expiry_warned;       /* when tick last warned that its manifest expires soon */
    uint64_t expiry_logged;       /* the manifest expiry already logged as passed */
    ug_health health;
    ug_waits *waits; /* [nworkers] */
} ug_rollout_state;

typedef struct {
    const ug_stage *s;
    ug_stage_quota *q;  /* NULL only without a store (check, explain) */
    ug_stage_state *rt;
} ug_live_stage;

typedef struct {
    const ug_rollout *r;
    ug_scope *sc; /* NULL only without a store */
    ug_rollout_state *rt;
    ug_live_stage *stages;
} ug_live_rollout;

/* A policy with what it needs at run time; swapped whole on reload. */
typedef struct {
    ug_policy *pol;
    ug_live_rollout *ro;
    uint64_t gen; /* distinct per build */
} ug_live;

typedef struct {
    _Alignas(64) _Atomic uint64_t c[ST_COUNT];
    _Atomic(ug_live *) using; /* the policy this worker is inside, or NULL */
    _Atomic uint64_t left;    /* times it left the plugin: a quiescent point */
    ug_guard guard;
} ug_worker;

typedef struct ug_inst {
    ug_host host;
    unsigned nworkers;
    ug_worker *workers;
    ug_store *store;
    char state_dir[UG_PATH_MAX];
    _Atomic(ug_live *) live;
    ug_cookiejar jar;
    _Atomic bool under_load;
    uint64_t load_last_checks, load_last_time;
    uint64_t generations; /* bumped only by the serialized calls */
    /* Bumped by anything that changes what a HELLO gets without a new
     * policy (pause, halt, resume, automatic halt): remembered replies of
     * an older epoch are never resent (rule 8). */
    _Atomic uint64_t epoch;
    uint64_t started;
    uint64_t last_scan;
    pthread_mutex_t reg_mu; /* rollout_states and stage_states */
    ug_rollout_state **rollout_states;
    size_t nrollout_states;
    ug_stage_state **stage_states;
    size_t nstage_states;
    struct ug_fleet *fleet; /* fleet mode (fleet.h); NULL for a tracker alone */
} ug_inst;

/* ---- abi.c ---- */
void ug_logf(ug_inst *I, ug_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t ug_inst_now(ug_inst *I);
uint64_t ug_default_now(void *ctx); /* time(NULL) */
/* Adds a line to the durable history (the log says so if it cannot). */
int ug_history(ug_inst *I, uint64_t at, const char *line);
/* Publishes which policy a worker reads; ug_leave ends it. */
ug_live *ug_enter(ug_inst *I, ug_worker *w);
void ug_leave(ug_worker *w);
/* Returns once no worker still reads `old`; old NULL: once every worker
 * has left the datagram it was in (so it sees any change made before). */
void ug_wait_workers(ug_inst *I, const ug_live *old);
/* Loads the policy at path and swaps it in; 0, or -1 with err. */
int ug_inst_reload(ug_inst *I, const char *path, char *err, size_t errcap);

static inline void ug_count(ug_worker *w, unsigned st)
{
    atomic_fetch_add_explicit(&w->c[st], 1, memory_order_relaxed);
}

/* ---- live.c ---- */
/* Builds the live form of a policy: binds every rollout and stage to its
 * store scope and quota, and to its run-time state. store NULL: unbound
 * (check and explain without a running tracker). */
ug_live *ug_live_build(ug_inst *I, ug_policy *pol, char *err, size_t errcap);
void ug_live_free(ug_live *l);
const ug_live_rollout *ug_live_find(const ug_live *l, const char *name);
/* The stage of lr that granted under store id `id`, or NULL. */
const ug_live_stage *ug_live_stage_by_id(const ug_live_rollout *lr, uint16_t id);
/* The percentage in force now for s, hold_when_unhealthy included. */
uint32_t ug_live_percent(const ug_live_rollout *lr, const ug_stage *s, uint64_t now);
/* The new offers per second a rated stage allows here: its rate, and its
 * fleet_rate (this tracker's share of it in a fleet, all of it alone). */
double ug_rate_in_force(const ug_inst *I, const ug_stage *s, double share);
/* Is the rollout paused or halted (any source), or its manifest expired? */
bool ug_live_stopped(const ug_live_rollout *lr, uint64_t now);
/* Warns of manifests that expire within 7 days (force: now, at load; else
 * once a day per rollout) and logs each expiry once. */
void ug_live_expiry(ug_inst *I, const ug_live *l, uint64_t now, bool force);
void ug_state_unmark_all(ug_inst *I);
void ug_state_sweep(ug_inst *I);
void ug_runtime_free(ug_inst *I);

/* ---- rules.c ---- */
/* What the policy gives claimed fields (the tracker rules after rule 4). */
typedef struct {
    unsigned answer;      /* UG_ANSWER_HINT, _WAIT, _COOKIE */
    ug_why why;
    const ug_live_rollout *lr;
    const ug_live_stage *ls;  /* the stage that selected (HINT) or decided the WAIT; NULL if none */
    bool fresh;           /* a new grant */
    bool needs_flush;     /* the HINT rests on a grant not yet durable */
} ug_plan;

typedef struct {
    ug_inst *I;
    ug_worker *w;
    unsigned worker;
    const ug_live *l;
    uint64_t now;
    uint64_t uid;
    const ug_version *ver;
    const char *plat, *chan; /* "" when absent */
    uint64_t ts;
    const struct sockaddr *src;
    bool addr_proved;
    void *trace; /* json_t array of the explain trace, or NULL */
} ug_rule_input;

/* Runs rules 5 to 7 for c: dry (spend false: changes nothing, looks at the
 * rate without taking it) or for real. */
ug_plan ug_rules_run(const ug_rule_input *c, const ug_live_rollout *lr, bool spend);
uint64_t ug_jittered(uint64_t retry, uint64_t uid);
/* The datagram path (handle2). */
ug_verdict ug_rules_handle(ug_inst *I, unsigned worker, const struct sockaddr *src, const uint8_t *in, size_t in_len,
                           uint8_t *out, size_t out_cap, size_t *out_len, unsigned *flags);
/* decide() for one claim, inside l; trace_out (may be NULL) gets the
 * explain object instead of it being emitted. */
int ug_decide_in(ug_inst *I, const ug_live *l, unsigned worker, const ug_claims *cl, ug_decision *d, void **trace_out);
/* decide() for one claim. */
int ug_rules_decide(ug_inst *I, unsigned worker, const ug_claims *cl, ug_decision *d);

/* ---- outcomes.c ---- */
/* Records that a granted uid returned at version v (HELLO) under its
 * rollout lr's release: upgraded, rolled back. Returns whether it changed
 * an outcome. Dry: only says whether it would. */
bool ug_outcome_observe(ug_inst *I, unsigned worker, const ug_live_rollout *lr, uint64_t uid, const ug_version *v,
                        bool dry);
/* A REPORT's effect: 1 changed, 0 changed nothing, -1 never offered. dry as above. */
int ug_outcome_report(ug_inst *I, unsigned worker, const ug_live *l, uint64_t uid, const ug_version *to, ug_res res,
                      bool dry);
/* The untargeted HELLO whose uid some rollout offered a release at or
 * below its version: the rollout whose outcome it would change, or NULL. */
const ug_live_rollout *ug_outcome_untargeted(ug_inst *I, const ug_live *l, uint64_t uid, const ug_version *v);
/* tick(): stores automatic halts, scans not-taken offers, holds ramps. */
void ug_outcome_tick(ug_inst *I, uint64_t now);
/* Halts a rollout durably (control or automatic); 0 or -1. */
int ug_rollout_halt(ug_inst *I, ug_rollout_state *rt, const char *why, uint64_t now, bool automatic);
/* The operator's pause, on or off, durably; 0 or -1 (it holds in memory either way). */
int ug_rollout_pause(ug_inst *I, ug_rollout_state *rt, bool on);
/* Lifts a halt, durably; 0 or -1. */
int ug_rollout_lift_halt(ug_inst *I, ug_rollout_state *rt);
/* A ramp hold as the fleet decided it, durably (held_since 0: running). */
void ug_rollout_set_hold(ug_inst *I, ug_rollout_state *rt, uint64_t held_since, uint64_t shift);
/* An outcome another tracker of the fleet recorded: it feeds lr's health
 * (ramp holds) and automatic halt as one recorded here would. */
void ug_outcome_learned(ug_inst *I, const ug_live_rollout *lr, ug_outcome o, uint64_t now);

/* ---- control.c ---- */
int ug_control(ug_inst *I, const char *req, size_t len, ug_emit emit, void *ctx);
int ug_check(const ug_host *host, const char *path, const char *explain, ug_emit emit, void *ctx, char *err,
             size_t errcap);
size_t ug_stats(ug_inst *I, ug_stat *out, size_t cap);
extern const char *const ug_stat_names[ST_COUNT];

#endif
