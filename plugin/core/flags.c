/* The operator's durable word on a rollout: pause, halt (with why), ramp hold; in memory for the workers, in the store for restarts. */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/flags.h"

/* Durable keys: "pause:NAME" (present while paused), "halt:NAME" (u64 at,
 * then why), "hold:NAME" (u64 held_since, u64 shift), "since:NAME" (u64:
 * the resume after which halt_when counts). */

void ug_flags_load(ug_inst *I, ug_rollout_state *rt)
{
    char key[64], val[300];
    if (!I->store)
        return;
    snprintf(key, sizeof key, "pause:%s", rt->name);
    atomic_store(&rt->ctl_paused, ug_store_get(I->store, key, val, sizeof val) > 0);
    snprintf(key, sizeof key, "halt:%s", rt->name);
    long n = ug_store_get(I->store, key, val, sizeof val - 1);
    if (n > 8) {
        val[n] = 0;
        uint64_t at;
        memcpy(&at, val, 8);
        rt->halted_at = at;
        snprintf(rt->halted_why, sizeof rt->halted_why, "%.255s", val + 8);
        atomic_store(&rt->halted, true);
    }
    snprintf(key, sizeof key, "hold:%s", rt->name);
    uint64_t hold[2];
    if (ug_store_get(I->store, key, hold, sizeof hold) == (long)sizeof hold) {
        atomic_store(&rt->held_since, hold[0]);
        atomic_store(&rt->shift, hold[1]);
    }
    snprintf(key, sizeof key, "since:%s", rt->name);
    uint64_t since;
    if (ug_store_get(I->store, key, &since, sizeof since) == (long)sizeof since)
        atomic_store(&rt->since, since); /* since_scope NULL: tick counts them */
}

int ug_flags_count_since(ug_inst *I, ug_rollout_state *rt, const void *scope, uint64_t now)
{
    char key[64];
    snprintf(key, sizeof key, "since:%s", rt->name);
    atomic_store(&rt->since_scope, NULL); /* no worker counts while it starts afresh */
    atomic_store(&rt->since, now);
    for (unsigned o = 0; o < UG_OUT_COUNT_; o++)
        atomic_store(&rt->since_out[o], 0);
    atomic_store(&rt->since_not_taken, 0);
    atomic_store(&rt->win_at, 0); /* a windowed halt_when waits for tick's count from here */
    atomic_store(&rt->since_scope, scope);
    return I->store ? ug_store_put(I->store, key, &now, sizeof now) : 0;
}


static void put_halt(ug_inst *I, ug_rollout_state *rt)
{
    char key[64], val[8 + sizeof rt->halted_why];
    size_t n = strnlen(rt->halted_why, sizeof rt->halted_why - 1);
    snprintf(key, sizeof key, "halt:%s", rt->name);
    memcpy(val, &rt->halted_at, 8);
    memcpy(val + 8, rt->halted_why, n);
    if (I->store && ug_store_put(I->store, key, val, 8 + n) != 0)
        ug_logf(I, UG_LOG_ERROR, "rollout %s: cannot store its halt in %s; it holds until restart", rt->name,
                I->state_dir);
}

int ug_flags_halt(ug_inst *I, ug_rollout_state *rt, const char *why, uint64_t now, ug_actor by)
{
    bool automatic = by.kind == UG_ACTOR_AUTOMATIC;
    pthread_mutex_lock(&rt->health.mu);
    snprintf(rt->halted_why, sizeof rt->halted_why, "%s", why);
    rt->halted_at = now;
    atomic_store_explicit(&rt->halted, true, memory_order_release);
    pthread_mutex_unlock(&rt->health.mu);
    atomic_fetch_add(&I->epoch, 1);
    put_halt(I, rt);
    char line[400];
    snprintf(line, sizeof line, "%s rollout %s: %s", automatic ? "automatic halt of" : "halt", rt->name, why);
    ug_logf(I, automatic ? UG_LOG_ERROR : UG_LOG_WARN, "%s", line);
    ug_event e = {.by = by, .action = "halt", .rollout = rt->name, .reason = why, .what = line};
    return ug_history(I, now, &e);
}

int ug_flags_pause(ug_inst *I, ug_rollout_state *rt, bool on)
{
    char key[64];
    snprintf(key, sizeof key, "pause:%s", rt->name);
    int rc = !I->store ? 0 : on ? ug_store_put(I->store, key, "1", 1) : ug_store_del(I->store, key);
    atomic_store(&rt->ctl_paused, on);
    return rc;
}

int ug_flags_lift_halt(ug_inst *I, ug_rollout_state *rt)
{
    char key[64];
    snprintf(key, sizeof key, "halt:%s", rt->name);
    int rc = I->store ? ug_store_del(I->store, key) : 0;
    pthread_mutex_lock(&rt->health.mu);
    atomic_store(&rt->halted, false);
    atomic_store(&rt->halt_unsaved, false); /* a raised halt tick() has not stored yet is lifted too */
    rt->halted_why[0] = 0;
    pthread_mutex_unlock(&rt->health.mu);
    return rc;
}

int ug_flags_resume_halt(ug_inst *I, ug_rollout_state *rt, bool has_halt_when, const void *scope, uint64_t now,
                         bool *afresh)
{
    *afresh = has_halt_when && atomic_load(&rt->halted) && strncmp(rt->halted_why, "automatic", 9) == 0;
    int rc = *afresh ? ug_flags_count_since(I, rt, scope, now) : 0;
    return rc | ug_flags_lift_halt(I, rt);
}

void ug_flags_store_hold(ug_inst *I, ug_rollout_state *rt)
{
    char key[64];
    uint64_t v[2] = {atomic_load(&rt->held_since), atomic_load(&rt->shift)};
    snprintf(key, sizeof key, "hold:%s", rt->name);
    if (I->store && ug_store_put(I->store, key, v, sizeof v) != 0)
        ug_logf(I, UG_LOG_ERROR, "rollout %s: cannot store its ramp hold in %s", rt->name, I->state_dir);
}

void ug_flags_set_hold(ug_inst *I, ug_rollout_state *rt, uint64_t held_since, uint64_t shift)
{
    atomic_store(&rt->held_since, held_since);
    atomic_store(&rt->shift, shift);
    ug_flags_store_hold(I, rt);
}

/* A worker must not wait on disk or on the other workers: the halt holds
 * in memory at once, and tick() stores it. A crash in between loses
 * nothing: tick() re-checks every rollout after a restart. */
void ug_flags_raise_halt(ug_inst *I, ug_rollout_state *rt, const char *why, uint64_t now)
{
    pthread_mutex_lock(&rt->health.mu); /* one writer of halted_why */
    if (!atomic_load(&rt->halted)) {
        snprintf(rt->halted_why, sizeof rt->halted_why, "automatic: %s", why);
        rt->halted_at = now;
        atomic_store(&rt->halt_unsaved, true);
        atomic_store_explicit(&rt->halted, true, memory_order_release);
        atomic_fetch_add(&I->epoch, 1);
    }
    pthread_mutex_unlock(&rt->health.mu);
}

bool ug_flags_store_raised(ug_inst *I, ug_rollout_state *rt, uint64_t now)
{
    if (!atomic_exchange(&rt->halt_unsaved, false))
        return false;
    char line[400];
    put_halt(I, rt);
    snprintf(line, sizeof line, "halt of rollout %s: %s", rt->name, rt->halted_why);
    ug_logf(I, UG_LOG_ERROR, "%s", line);
    const char *why = strncmp(rt->halted_why, "automatic: ", 11) == 0 ? rt->halted_why + 11 : rt->halted_why;
    ug_event e = {.by = {.kind = UG_ACTOR_AUTOMATIC}, .action = "halt", .rollout = rt->name, .reason = why,
                  .what = line};
    (void)ug_history(I, now, &e);
    return true;
}
