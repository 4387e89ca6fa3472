/* Workers and the policy they read: entering, leaving, and waiting until none reads an old one. */
#ifndef UG_WORKERS_H
#define UG_WORKERS_H

#include "base/inst.h"

/* Publishes which policy a worker reads; ug_leave ends it. */
ug_live *ug_enter(ug_inst *I, ug_worker *w);
void ug_leave(ug_worker *w);
/* Runs run(ctx) with w entered once: ug_enter and ug_leave inside it are
 * free (they return the batch's policy and do nothing). Only w's own
 * thread calls it. */
void ug_enter_batch(ug_inst *I, ug_worker *w, void (*run)(void *ctx), void *ctx);
/* Returns once no worker still reads `old`; old NULL: once every worker
 * has left the datagram it was in (so it sees any change made before). */
void ug_wait_workers(ug_inst *I, const ug_live *old);

#endif
