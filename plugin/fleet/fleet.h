/* Fleet mode (docs/fleet.md): one rollout over many trackers through Redis; what the rest of the plugin calls. */
#ifndef UG_FLEET_H
#define UG_FLEET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"
#include "store/store.h"

struct ug_inst;
struct json_t;
typedef struct ug_fleet ug_fleet;

/* The fleet state of instance I for conf: queues and the fence, no thread
 * and no I/O yet (create() builds the live policy in between, which binds
 * stages with a quota to the fleet's slot source). NULL with err set. */
ug_fleet *ug_fleet_new(struct ug_inst *I, const ug_fleet_conf *conf, char *err, size_t errcap);
/* Starts the fleet thread (the one the ABI header names). 0 or -1 with err. */
int ug_fleet_start(ug_fleet *F, char *err, size_t errcap);
/* Stops it cleanly, at most a few seconds: tells the fleet the grants it
 * has not told, returns every unused slot, marks the tracker stopped, and
 * joins the thread. The caller has committed every worker and no worker
 * runs. Idempotent. */
void ug_fleet_stop(ug_fleet *F);
/* Frees F once stopped (after the store is closed: stages point at its slot source). */
void ug_fleet_free(ug_fleet *F);

/* Where every stage with a quota gets its slots: leases, spent only before
 * the fence (ug_stage_quota_set_sourced). */
const ug_slot_source *ug_fleet_slots(ug_fleet *F);
/* Whether a reloaded policy's fleet section is the one running (it cannot
 * change without a restart). */
bool ug_fleet_same_conf(const ug_fleet *F, const ug_fleet_conf *c);
/* Held by reload around swapping and freeing policies, scopes and stages:
 * the fleet thread holds it whenever it touches them. */
void ug_fleet_lock(ug_fleet *F);
void ug_fleet_unlock(ug_fleet *F);

/* A worker changed uid's outcome in scope sc (any grant, its own or the
 * fleet's): told to the fleet. Quick; may run on a worker. */
void ug_fleet_outcome(ug_fleet *F, const ug_scope *sc, uint64_t uid, ug_outcome o);

/* Operator flags of a rollout, fleet-wide. */
typedef enum { UG_FLAG_PAUSE, UG_FLAG_RESUME, UG_FLAG_HALT } ug_flag_op;
/* Writes a change already applied here to the fleet; waits up to wait_ms
 * for Redis to hold it. 1 written, 0 queued (written when Redis returns). */
int ug_fleet_flag(ug_fleet *F, const char *rollout, ug_flag_op op, const char *why, uint64_t at, int wait_ms);
/* Whether this tracker decides ramp holds for the fleet (the first name
 * among live trackers); the others follow Redis. */
bool ug_fleet_leads(ug_fleet *F);
/* A ramp hold decided here (held_since 0: released), from `was`. */
void ug_fleet_hold(ug_fleet *F, const char *rollout, uint64_t was, uint64_t held_since, uint64_t shift);

/* Status: the tracker's fleet object, and a stage's fleet counts (NULL
 * when none are known yet). New jansson references. */
struct json_t *ug_fleet_status(ug_fleet *F);
struct json_t *ug_fleet_stage_status(ug_fleet *F, const char *rollout, const char *to, const char *stage);
/* The control command `fleet` (sub: status, forget): a reply object
 * (ok set by the caller) or NULL with err set. */
struct json_t *ug_fleet_control(ug_fleet *F, struct json_t *req, char *err, size_t errcap);

#endif
