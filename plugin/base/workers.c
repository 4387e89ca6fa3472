/* Workers and the policy they read: entering, leaving, and waiting until none reads an old one. */
#include <time.h>

#include "base/workers.h"

/* Publishes which policy this worker reads; the re-check closes the race
 * with a reload that swapped between our load and our store. */
ug_live *ug_enter(ug_inst *I, ug_worker *w)
{
    if (w->held)
        return w->held; /* inside a batch: entered once for all of it */
    for (;;) {
        ug_live *l = atomic_load(&I->live);
        atomic_store(&w->using, l);
        if (atomic_load(&I->live) == l)
            return l;
    }
}

void ug_leave(ug_worker *w)
{
    if (w->held)
        return; /* the batch leaves */
    atomic_store(&w->using, NULL);
    atomic_fetch_add(&w->left, 1);
}

/* The store and the read-modify-write of entering and leaving cost a
 * decision of upgate-sim a tenth of its CPU; a batch pays them once for
 * every call that run makes on the worker. A nested batch is the outer
 * one's. */
void ug_enter_batch(ug_inst *I, ug_worker *w, void (*run)(void *ctx), void *ctx)
{
    if (w->held) {
        run(ctx);
        return;
    }
    ug_live *l = ug_enter(I, w);
    w->held = l;
    run(ctx);
    w->held = NULL;
    ug_leave(w);
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
