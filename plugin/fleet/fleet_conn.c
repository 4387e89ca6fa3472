/* Fleet mode's connection as every pass sees it: up or lost (said once), Redis's clock, the clock of fences, the log. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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

int64_t ug_fence_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool fl_up(ug_fleet *F)
{
    return F->r.c != NULL;
}

uint64_t fl_redis_now(ug_fleet *F)
{
    return F->redis_now + (uint64_t)((ug_fence_ms() - F->redis_now_at) / 1000);
}

void fl_lost(ug_fleet *F)
{
    pthread_mutex_lock(&F->qmu);
    bool was = F->up;
    F->up = false;
    F->leads = false;
    snprintf(F->last_err, sizeof F->last_err, "%s", F->r.err);
    if (was)
        F->lost_since = ug_inst_now(F->I);
    pthread_cond_broadcast(&F->done); /* flag changes stay queued: nobody waits for them now */
    pthread_mutex_unlock(&F->qmu);
    if (!F->lost_logged) {
        fl_log(F, UG_LOG_WARN,
               "lost Redis at %s (%s): serving from this tracker's lease for up to %llu s, sticky offers for as "
               "long as it takes; retrying",
               F->conf.redis, F->r.err, (unsigned long long)F->conf.lease_timeout);
        F->lost_logged = true;
    }
    F->backoff_ms = F->backoff_ms ? F->backoff_ms : BACKOFF_MIN_MS;
    F->next_try_ms = ug_fence_ms() + F->backoff_ms;
}
