/* An instance of the plugin and its workers: what every service and every layer above reads. */
#ifndef UG_INST_H
#define UG_INST_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "base/audit.h"
#include "base/counters.h"
#include "base/opener.h"
#include "census/census.h"
#include "guard/cookiejar.h"
#include "guard/guard.h"
#include "policy/policy.h"
#include "store/store.h"
#include "upgate_plugin.h"

/* Defined above this folder: the live policy and the run-time state of
 * rollouts and stages (core/live.h, core/state.h), the hooks of an add-on
 * (core/sink.h) and what it adds to control (core/control.h). */
typedef struct ug_live ug_live;
typedef struct ug_rollout_state ug_rollout_state;
typedef struct ug_stage_state ug_stage_state;
typedef struct ug_sink ug_sink;
typedef struct ug_ctl_ext ug_ctl_ext;

/* A worker: its counters (base/counters.def) in an array of its own, so the
 * hot path writes its own cache lines. */
typedef struct {
    _Alignas(64) _Atomic uint64_t c[ST_COUNT];
    _Atomic(ug_live *) using; /* the policy this worker is inside, or NULL */
    _Atomic uint64_t left;    /* times it left the plugin: a quiescent point */
    ug_live *held;            /* the policy a batch() entered (ug_enter_batch), or NULL: its own thread's */
    ug_guard guard;
} ug_worker;

typedef struct ug_inst {
    ug_host host;
    unsigned nworkers;
    ug_worker *workers;
    ug_store *store;
    char state_dir[UG_PATH_MAX];
    _Atomic(ug_live *) live;
    /* Held by reload around swapping and freeing policies, scopes and
     * stages; a thread that reads them outside a worker holds it too. */
    pthread_mutex_t live_mu;
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
    uint64_t v2_warned, v2_logged; /* the v2 certificate's and keyring's expiry notices */
    pthread_mutex_t reg_mu; /* rollout_states and stage_states */
    ug_rollout_state **rollout_states;
    size_t nrollout_states;
    ug_stage_state **stage_states;
    size_t nstage_states;
    const ug_sink *sink;          /* an add-on's hooks, or NULL (set once, at create) */
    const ug_ctl_ext *ctl_ext;    /* what it adds to control, or NULL */
    const ug_slot_source *slots;  /* lends the slots of stages with a quota; NULL: a share of it, here */
    ug_opener *opener;            /* the host drops privileges: reloads read through it; else NULL */
    ug_replay *replay;            /* the retransmit cache all workers share (UG_HF_ROAMING_PEERS); else NULL */
    ug_census *census;            /* every HELLO's (version, plat, chan, region), distinct uids */
    /* Fleet mode: every tracker's census merged (fleet_census.c), swapped
     * whole under census_fleet_mu; NULL until the first merge. */
    pthread_mutex_t census_fleet_mu;
    ug_census *census_fleet;
    uint64_t census_fleet_at;        /* when it was merged (ug_inst_now) */
    unsigned census_fleet_trackers;  /* trackers whose census it holds, this one included */
    uint64_t census_fleet_refused;   /* published censuses refused (bad MAC, format, sketch), ever */
    /* Who asked for the serialized call in flight (control, reload): the
     * history's actor of what it changes; the host itself otherwise. */
    ug_actor caller;
} ug_inst;

/* The host's flags (ABI minor 2; 0 from an older host). */
static inline unsigned ug_inst_host_flags(const ug_inst *I)
{
    return UG_HAS_FIELD(ug_host, I->host.size, flags) ? I->host.flags : 0;
}

/* The user the host becomes after create(), or NULL. */
static inline const char *ug_inst_run_as(const ug_inst *I)
{
    return UG_HAS_FIELD(ug_host, I->host.size, run_as) ? I->host.run_as : NULL;
}

static inline void ug_count(ug_worker *w, unsigned st)
{
    atomic_fetch_add_explicit(&w->c[st], 1, memory_order_relaxed);
}

/* The same by n (bytes). */
static inline void ug_count_n(ug_worker *w, unsigned st, uint64_t n)
{
    atomic_fetch_add_explicit(&w->c[st], n, memory_order_relaxed);
}

/* The state folder the host imposes (then no policy's is used), or NULL. */
static inline const char *ug_inst_state_override(const ug_inst *I)
{
    return UG_HAS_FIELD(ug_host, I->host.size, state_override) ? I->host.state_override : NULL;
}

#endif
