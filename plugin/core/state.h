/* The run-time state of rollouts and stages, by name: what outlives a reload (operator flags, counters, health, rates). */
#ifndef UG_STATE_H
#define UG_STATE_H

#include "base/inst.h"

/* The WAIT reasons a rollout or stage counts, per worker, on one line.
 * A stage's `why` counts WAITs to verified claims (or an operator's
 * decide), `unverified` those sent before any signature was checked: a
 * stranger's claims must not inflate an operator's figures (issue 21 §3).
 * A rollout counts every WAIT in `why`. */
typedef struct {
    alignas(64) _Atomic uint64_t why[UG_WHY_COUNT_];
    _Atomic uint64_t unverified[UG_WHY_COUNT_];
} ug_waits;

/* A token bucket of new offers per second, on the host's clock. Only new
 * offers touch it, and those are what it limits, so a mutex is cheap. It
 * belongs to (rollout, stage name) and outlives reloads. */
typedef struct {
    pthread_mutex_t mu;
    double tokens, rate;
    uint64_t last;
    bool primed;
    double share; /* this tracker's part of fleet_rate, set by its slot source's holder (I->slots) */
} ug_rate;

/* What a stage's offers came to, per worker: monotonic counters for
 * metrics (a rate, an increase), never decremented. */
typedef struct {
    alignas(64) _Atomic uint64_t offers_new, offers_again; /* HINTs sent */
    _Atomic uint64_t reports[UG_RES_COUNT_];               /* verified REPORTs, by res */
    _Atomic uint64_t changes[UG_OUT_COUNT_];               /* outcome changes, by the outcome changed to */
} ug_tally;

/* A stage's promotion gates (core/gates.c, docs/policy-v2-extensions.md):
 * workers read open_to and shift; tick writes them and the rest, and
 * stores them under "gate:ROLLOUT:STAGE" (durable). */
typedef struct {
    _Atomic uint32_t open_to;  /* the first gated step not released: no step from it on is in force */
    _Atomic uint64_t shift;    /* seconds gates held the schedule back (added to the rollout's) */
    uint32_t released;         /* every gated step below it is released */
    int32_t step;              /* the step in force at the last tick; -1: none */
    uint64_t step_since;       /* when it came into force */
    uint64_t held_since;       /* when the step at open_to was due; 0: not due yet */
    uint64_t judged_at;        /* when tick last counted outcomes for the gate at open_to */
    char release[UG_VER_MAX + 1]; /* the release this state belongs to: another one starts afresh */
    pthread_mutex_t mu;        /* waits */
    char waits[200];           /* what the gate in the way waits for; "" none */
} ug_gate_state;

/* Per (rollout name, stage name): what outlives a reload. The counters
 * (waits, tally) are those of `release`: a new release starts them at 0,
 * as new series. */
struct ug_stage_state {
    char rollout[UG_NAME_MAX + 1], stage[UG_NAME_MAX + 1];
    char release[UG_VER_MAX + 1];
    bool marked;
    ug_rate rate;
    ug_waits *waits; /* [nworkers] */
    ug_tally *tally; /* [nworkers] */
    ug_gate_state gate;
};

/* Outcomes per minute over the last hour, for hold_when_unhealthy: each
 * uid's latest outcome once, in the minute it was set (a change takes the
 * uid out of the minute of the outcome it replaces). */
typedef struct {
    pthread_mutex_t mu;
    uint64_t minute[60];
    uint32_t failed[60], known[60];
} ug_health;

/* Per rollout name: operator flags (durable, core/flags.h), counters, health. */
struct ug_rollout_state {
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
    /* halt_when after a resume of an automatic halt (policy.md): only the
     * outcomes set at or after `since` count (durable: "since:NAME"). */
    _Atomic uint64_t since;                      /* 0: every outcome counts */
    _Atomic uint64_t since_out[UG_OUT_COUNT_];   /* uids whose outcome was set since, by outcome */
    _Atomic uint64_t since_not_taken;            /* offers made since, past the outcome window */
    _Atomic(const void *) since_scope;           /* the scope since_out counts; NULL: recount at tick */
    /* halt_when.window / last: the counts of tick's last scan (0 at: none yet) */
    _Atomic uint64_t win_at, win_known, win_failed, win_rolled_back;
    /* a gate's baseline: the previous release's failed share, looked up once per release */
    char base_for[UG_VER_MAX + 1], base_to[UG_VER_MAX + 1]; /* base_to "": none found */
    uint64_t base_known, base_failed;
    ug_waits *waits; /* [nworkers] */
};

/* The state of rollout `name` (its flags read from the store when new) and
 * of stage `stage` of rollout `rollout`, made on first use and marked used;
 * NULL on out of memory. The caller holds I->reg_mu. */
ug_rollout_state *ug_state_rollout(ug_inst *I, const char *name);
ug_stage_state *ug_state_stage(ug_inst *I, const char *rollout, const char *stage);
/* The release st counts for (at a load): another one than before starts
 * its counters at 0. The caller holds I->reg_mu. */
void ug_state_stage_release(ug_inst *I, ug_stage_state *st, const char *release);
/* Marks every state unused, so that ug_state_sweep frees those the next
 * policy does not name (their durable flags stay in the store). */
void ug_state_unmark_all(ug_inst *I);
void ug_state_sweep(ug_inst *I);
void ug_state_free_all(ug_inst *I);

#endif
