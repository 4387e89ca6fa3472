/* The sink: what the core tells an add-on (fleet mode) as it happens, what it asks it, and its lifecycle; registered once at create. */
#ifndef UG_SINK_H
#define UG_SINK_H

#include "core/flags.h"

/*
 * The core never calls an add-on by name: it calls these, and an add-on
 * fills the ones it needs (every member may be NULL) and subscribes with
 * ug_inst_subscribe (core/instance.h) before the first policy is live.
 * Nobody subscribed costs a NULL test where an event happens, and nothing
 * per HELLO or WAIT.
 */
struct ug_sink {
    void *ctx;

    /* Where stages with a quota get their slots (store/store.h): lent by
     * this source instead of a share of the quota kept here. Its holder
     * also gets the stages' shares of fleet_rate to set (ug_rate.share). */
    const ug_slot_source *slots;

    /* ---- events ---- */
    /* Grants and outcome changes a commit made durable, on the committing
     * worker (the store's commit observer). Quick. */
    ug_store_committed_fn granted;
    /* A worker changed uid's outcome in sc (a grant made here or learned).
     * Quick: it runs on the worker. */
    void (*outcome)(void *ctx, const ug_scope *sc, uint64_t uid, ug_outcome o);
    /* An operator flag changed here (control, or an automatic halt at
     * tick): told to the others; waits up to wait_ms for them to hold it.
     * 1 they hold it, 0 queued. */
    int (*flag)(void *ctx, const char *rollout, ug_flag_op op, const char *why, uint64_t at, int wait_ms);
    /* A ramp hold decided here (held_since 0: released), from was. */
    void (*hold)(void *ctx, const char *rollout, uint64_t was, uint64_t held_since, uint64_t shift);
    /* upgate-ctl promote released here the gate before step `step`
     * (percentage bp) of stage's schedule in release `to`: told to the
     * others, which release that very gate; waits up to wait_ms for them
     * to hold it. 1 they hold it, 0 queued. */
    int (*promoted)(void *ctx, const char *rollout, const char *stage, const char *to, uint32_t step, uint32_t bp,
                    int wait_ms);

    /* ---- questions ---- */
    /* Whether this instance decides ramp holds (NULL: it does); at tick. */
    bool (*decides_holds)(void *ctx);
    /* Whether a reload may bring policy p: 0, or -1 with err. */
    int (*policy_ok)(void *ctx, const ug_policy *p, char *err, size_t errcap);

    /* ---- lifecycle ---- */
    /* Once the first policy is live (create); 0 or -1 with err. */
    int (*start)(void *ctx, char *err, size_t errcap);
    /* finish(), or destroy() without it: every worker committed, none runs. */
    void (*stop)(void *ctx);
    /* destroy(), after the store is closed: the add-on frees itself. */
    void (*destroy)(void *ctx);
};

#endif
