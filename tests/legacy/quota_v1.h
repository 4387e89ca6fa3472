/* Grants and quota: which uids each stage has offered, durable in LMDB, with
 * the tracker's share of each quota split into per-worker slot shards. */
#ifndef UG_QUOTA_V1_H
#define UG_QUOTA_V1_H

#include <stdbool.h>
#include <stdint.h>

#include "ug_proto.h"

#define UG_QUOTA_UNLIMITED UINT64_MAX
#define UG_WORKERS_MAX 256u

typedef struct ug_quota ug_quota;
typedef struct ug_qstage ug_qstage;

typedef enum {
    UG_GRANT_NEW,     /* first offer to this uid: a slot was spent */
    UG_GRANT_ALREADY, /* offered before (sticky): nothing spent */
    UG_GRANT_SPENT,   /* no slot left anywhere in this tracker's share */
} ug_grant;

/* Opens (creating if needed) the store in state_dir for nworkers workers
 * (1..UG_WORKERS_MAX). NULL on failure with a one-line reason in err. */
ug_quota *ug_quota_open(const char *state_dir, unsigned nworkers, char *err, size_t errcap) UG_WUR;
/* Commits every worker's pending grants, then frees everything. */
void ug_quota_close(ug_quota *q);

/* The state of the stage called name, created on first use and loaded from
 * disk (its granted uids); it lives as long as q. Safe to call while workers
 * grant in other stages or in this one. NULL on failure with err set. */
ug_qstage *ug_quota_stage(ug_quota *q, const char *name, char *err, size_t errcap) UG_WUR;

/* Sets this tracker's share of the stage's quota (UG_QUOTA_UNLIMITED: none).
 * Safe while workers grant: slots already spent stay spent, so lowering the
 * share below the spent count just stops new grants. */
void ug_qstage_set_limit(ug_qstage *s, uint64_t share);

/* Has uid been offered by this stage (durably or pending)? Thread-safe. */
bool ug_qstage_granted(ug_qstage *s, uint64_t uid);

/* Atomically: ALREADY if uid was offered; else NEW after taking a slot from
 * worker's shard (moving slots from other workers' shards when it is empty)
 * and queueing the grant on worker for ug_quota_commit; else SPENT. Called
 * by worker `worker` only for its own index; workers may run concurrently. */
ug_grant ug_qstage_grant(ug_qstage *s, unsigned worker, uint64_t uid);

/* Distinct uids offered by this stage on this tracker (durable + pending). */
uint64_t ug_qstage_count(ug_qstage *s);
/* Slots left in this tracker's share; UG_QUOTA_UNLIMITED when it has none. */
uint64_t ug_qstage_remaining(ug_qstage *s);

/* Makes every grant queued on worker durable in one transaction. 0 on
 * success (also when nothing is queued); -1 on failure, in which case the
 * grants stay queued (and granted in memory) and the next commit retries
 * them: the host must then not send that batch's HINTs. */
int ug_quota_commit(ug_quota *q, unsigned worker) UG_WUR;

#endif
