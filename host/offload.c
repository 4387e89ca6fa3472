/* libupgate-host's own worker (UG_HOST_OFFLOAD): the host's thread copies an upgate datagram into a ring and goes
 * back to its own protocol; this thread answers the ring in batches and commits after each, as upgate-node does. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define RING 512u  /* datagrams waiting for the worker; a full ring drops (the peers ask again) */
#define BATCH 64u  /* answered between two commits, at most */
#define WORKER_NICE 10

typedef struct {
    int fd;
    socklen_t sl;
    struct sockaddr_storage src;
    size_t len;
    uint8_t bytes[UG_DGRAM_MAX + 1]; /* one spare byte: a longer datagram is seen as oversized, not cut */
} uh_item;

/* The consumer side takes no lock a producer holds: a host's signal handler
 * that calls exit() while its thread is inside a push (holding prod) still
 * finds the worker able to drain the ring and end. */
struct uh_offload {
    pthread_mutex_t prod; /* producers among themselves (several threads share a socket) */
    _Atomic unsigned head, tail; /* counters: the items are ring[head % RING] .. ring[(tail - 1) % RING] */
    _Atomic bool waiting, stop;
    int wake; /* eventfd: the worker sleeps on it */
    uh_item *ring;
    pthread_t thread;
};

static void wake(uh_offload *o)
{
    uint64_t one = 1;
    ssize_t k = write(o->wake, &one, sizeof one); /* async-signal-safe */
    (void)k;
}

ug_host_result ug_host_offload_push_(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t sl,
                                     const void *buf, size_t len)
{
    uh_offload *o = a->off;
    pthread_mutex_lock(&o->prod);
    unsigned t = atomic_load_explicit(&o->tail, memory_order_relaxed);
    if (atomic_load(&o->stop) || t - atomic_load_explicit(&o->head, memory_order_acquire) == RING) {
        pthread_mutex_unlock(&o->prod);
        return UG_HOST_DROPPED; /* counted by the caller */
    }
    uh_item *it = &o->ring[t % RING];
    it->fd = fd;
    it->sl = sl <= sizeof it->src ? sl : sizeof it->src;
    memcpy(&it->src, src, it->sl);
    it->len = len < sizeof it->bytes ? len : sizeof it->bytes;
    memcpy(it->bytes, buf, it->len);
    atomic_store(&o->tail, t + 1); /* seq_cst: ordered before the look at `waiting` */
    pthread_mutex_unlock(&o->prod);
    if (atomic_exchange(&o->waiting, false))
        wake(o);
    return UG_HOST_HELD;
}

/* Waits for items (or stop with none left); how many it may take, 0 to
 * end. `waiting` is set before the last look at tail, so a push after the
 * look sees it and wakes the worker. */
static unsigned take(uh_offload *o)
{
    unsigned h = atomic_load_explicit(&o->head, memory_order_relaxed);
    for (;;) {
        unsigned n = atomic_load(&o->tail) - h;
        if (n)
            return n < BATCH ? n : BATCH;
        if (atomic_load(&o->stop))
            return 0;
        atomic_store(&o->waiting, true);
        if (atomic_load(&o->tail) == h && !atomic_load(&o->stop)) {
            struct pollfd p = {.fd = o->wake, .events = POLLIN};
            if (poll(&p, 1, -1) > 0) {
                uint64_t v;
                ssize_t k = read(o->wake, &v, sizeof v);
                (void)k;
            }
        }
        atomic_store(&o->waiting, false);
    }
}

static void *offload_main(void *arg)
{
    (void)prctl(PR_SET_NAME, (unsigned long)"upgate-worker", 0, 0, 0); /* a system call: no write to /proc */
    ug_host_adapter *a = arg;
    uh_offload *o = a->off;
    /* below the host's own threads: when a core is short, the tracker's own
     * protocol goes first and upgate's signatures wait (nice is per thread) */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE);
    for (unsigned n; (n = take(o)) > 0;) {
        unsigned h = atomic_load_explicit(&o->head, memory_order_relaxed);
        ug_host_worker_begin_(a);
        for (unsigned i = 0; i < n; i++) { /* ring[head..head+n) is the worker's until head moves */
            uh_item *it = &o->ring[(h + i) % RING];
            ug_host_worker_one_(a, it->fd, (struct sockaddr *)&it->src, it->sl, it->bytes, it->len);
        }
        ug_host_worker_end_(a); /* a commit per batch, as upgate-node's */
        atomic_store_explicit(&o->head, h + n, memory_order_release);
    }
    return NULL;
}

int ug_host_offload_start_(ug_host_adapter *a, char *err, size_t errcap)
{
    uh_offload *o = calloc(1, sizeof *o);
    if (!o || !(o->ring = calloc(RING, sizeof *o->ring))) {
        free(o);
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    pthread_mutex_init(&o->prod, NULL);
    o->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (o->wake < 0) {
        snprintf(err, errcap, "eventfd: %s", strerror(errno));
        free(o->ring);
        free(o);
        return -1;
    }
    a->off = o;
    if (ug_host_thread_(&o->thread, offload_main, a) != 0) {
        snprintf(err, errcap, "cannot start the upgate worker thread");
        a->off = NULL;
        close(o->wake);
        free(o->ring);
        free(o);
        return -1;
    }
    return 0;
}

void ug_host_offload_stop_(ug_host_adapter *a)
{
    uh_offload *o = a->off;
    if (!o || atomic_exchange(&o->stop, true)) /* the worker answers what the ring holds, then ends */
        return;
    wake(o);
    if (!pthread_equal(pthread_self(), o->thread))
        pthread_join(o->thread, NULL);
}

void ug_host_offload_free_(ug_host_adapter *a)
{
    uh_offload *o = a->off;
    if (!o)
        return;
    pthread_mutex_destroy(&o->prod);
    close(o->wake);
    free(o->ring);
    free(o);
    a->off = NULL;
}
