/* Fleet mode's connection as every pass sees it: up or lost (said once), Redis's clock, the log. */
#include <stdarg.h>
#include <stdio.h>

#include "fleet/fleet_impl.h"

void fl_log(ug_fleet *F, ug_log_level lvl, const char *fmt, ...)
{
    char msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ug_logf(F->I, lvl, "fleet %s: %s", F->conf.tracker, msg);
}

bool fl_up(ug_fleet *F)
{
    return F->r.c != NULL;
}

uint64_t fl_redis_now(ug_fleet *F)
{
    return F->redis_now + (uint64_t)((ug_mono_ms() - F->redis_now_at) / 1000);
}

void fl_lost(ug_fleet *F)
{
    pthread_mutex_lock(&F->qmu);
    bool was = F->up;
    F->up = false;
    F->leads = false;
    snprintf(F->last_err, sizeof F->last_err, "%s", F->r.err);
    if (was) {
        F->lost_since = ug_inst_now(F->I);
        F->losses++;
    }
    pthread_cond_broadcast(&F->done); /* flag changes stay queued: nobody waits for them now */
    pthread_mutex_unlock(&F->qmu);
    if (!F->lost_logged) {
        fl_log(F, UG_LOG_WARN,
               "lost Redis at %s (%s): serving from the slots this tracker holds until its cutoff (%d heartbeats "
               "after the last one Redis took), sticky offers for as long as it takes; retrying",
               F->conf.redis, F->r.err, CUTOFF_BEATS);
        F->lost_logged = true;
    }
    F->backoff_ms = F->backoff_ms ? F->backoff_ms : BACKOFF_MIN_MS;
    F->next_try_ms = ug_mono_ms() + F->backoff_ms;
}
