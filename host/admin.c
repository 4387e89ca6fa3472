/* libupgate-host's admin thread: tick() every second, asynchronous reloads, and commits a quiet socket left behind. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "internal.h"

#define TICK_MS 1000

int ug_host_thread_(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits it */
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void wake(ug_host_adapter *a)
{
    uint64_t one = 1;
    ssize_t k = write(a->wake, &one, sizeof one); /* async-signal-safe */
    (void)k; /* a full counter wakes the thread all the same */
}

void ug_host_admin_poke_(ug_host_adapter *a)
{
    if (atomic_exchange(&a->admin_idle, false))
        wake(a);
}

void ug_host_reload_async(ug_host_adapter *a)
{
    if (!a || !a->admin_on)
        return;
    atomic_store(&a->want_reload, true);
    wake(a);
}

static void reload_now(ug_host_adapter *a)
{
    char err[1024];
    ug_caller by = {.size = sizeof by, .kind = UG_CALLER_SIGNAL}; /* reload_async is a SIGHUP handler's */
    if (ug_host_reload_by(a, &by, err, sizeof err) != 0)
        ug_host_logf_(a, UG_LOG_ERROR, "reload refused, the running policy stays: %s", err);
}

/* How long to sleep: until the next tick, or until the quietest dirty
 * worker has been quiet for hold_ms. admin_idle is set before the
 * workers are looked at, so a worker that becomes dirty after the look
 * sees it set and wakes the thread. */
static int sleep_ms(ug_host_adapter *a, int64_t next_tick)
{
    atomic_store(&a->admin_idle, true);
    atomic_thread_fence(memory_order_seq_cst);
    int64_t until = next_tick, oldest = ug_host_oldest_dirty_(a);
    if (oldest) {
        atomic_store(&a->admin_idle, false);
        if (oldest + a->hold_ms < until)
            until = oldest + a->hold_ms;
    }
    int64_t left = until - ug_host_mono_ms_();
    return left < 1 ? 1 : (int)left;
}

static void *admin_main(void *arg)
{
    (void)prctl(PR_SET_NAME, (unsigned long)"upgate-admin", 0, 0, 0); /* a system call: no write to /proc */
    ug_host_adapter *a = arg;
    int64_t next_tick = ug_host_mono_ms_() + TICK_MS;
    while (!atomic_load(&a->want_stop)) {
        if (atomic_exchange(&a->want_reload, false))
            reload_now(a);
        int64_t now = ug_host_mono_ms_();
        if (now >= next_tick) {
            pthread_mutex_lock(&a->plugin_mu);
            a->api->tick(a->inst);
            pthread_mutex_unlock(&a->plugin_mu);
            next_tick = now + TICK_MS;
        }
        ug_host_commit_idle_(a, now - a->hold_ms);
        struct pollfd p = {.fd = a->wake, .events = POLLIN};
        int n = poll(&p, 1, sleep_ms(a, next_tick));
        if (n > 0) {
            uint64_t v;
            ssize_t k = read(a->wake, &v, sizeof v);
            (void)k;
        }
        atomic_store(&a->admin_idle, false);
    }
    return NULL;
}

int ug_host_admin_start_(ug_host_adapter *a, char *err, size_t errcap)
{
    a->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->wake < 0) {
        snprintf(err, errcap, "eventfd: %s", strerror(errno));
        return -1;
    }
    if (ug_host_thread_(&a->admin, admin_main, a) != 0) {
        snprintf(err, errcap, "cannot start the upgate admin thread");
        close(a->wake);
        a->wake = -1;
        return -1;
    }
    a->admin_on = true;
    return 0;
}

void ug_host_admin_stop_(ug_host_adapter *a)
{
    if (!a->admin_on)
        return;
    atomic_store(&a->want_stop, true);
    wake(a);
    if (!pthread_equal(pthread_self(), a->admin))
        pthread_join(a->admin, NULL);
    a->admin_on = false;
    close(a->wake);
    a->wake = -1;
}
