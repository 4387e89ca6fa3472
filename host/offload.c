/* libupgate-host's own worker (UG_HOST_OFFLOAD): the host's thread copies an upgate datagram into a ring and goes
 * back to its own protocol; this thread answers the ring in batches and commits after each, as upgate-node does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RING 512u  /* datagrams waiting for the worker; a full ring drops (the peers ask again) */
#define BATCH 64u  /* answered between two commits, at most */

typedef struct {
    int fd;
    socklen_t sl;
    struct sockaddr_storage src;
    size_t len;
    uint8_t bytes[UG_DGRAM_MAX + 1]; /* one spare byte: a longer datagram is seen as oversized, not cut */
} uh_item;

struct uh_offload {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uh_item *ring;
    unsigned head, tail; /* counters: the items are ring[head % RING] .. ring[(tail - 1) % RING] */
    bool waiting, stop;
    pthread_t thread;
};

ug_host_result ug_host_offload_push_(ug_host_adapter *a, int fd, const struct sockaddr *src, socklen_t sl,
                                     const void *buf, size_t len)
{
    uh_offload *o = a->off;
    pthread_mutex_lock(&o->mu);
    if (o->stop || o->tail - o->head == RING) {
        pthread_mutex_unlock(&o->mu);
        return UG_HOST_DROPPED; /* counted by the caller */
    }
    uh_item *it = &o->ring[o->tail % RING];
    it->fd = fd;
    it->sl = sl <= sizeof it->src ? sl : sizeof it->src;
    memcpy(&it->src, src, it->sl);
    it->len = len < sizeof it->bytes ? len : sizeof it->bytes;
    memcpy(it->bytes, buf, it->len);
    o->tail++;
    bool wake = o->waiting;
    pthread_mutex_unlock(&o->mu);
    if (wake)
        pthread_cond_signal(&o->cv);
    return UG_HOST_HELD;
}

/* Waits for items (or stop with none left); how many it may take, 0 to end. */
static unsigned take(uh_offload *o)
{
    pthread_mutex_lock(&o->mu);
    while (o->tail == o->head && !o->stop) {
        o->waiting = true;
        pthread_cond_wait(&o->cv, &o->mu);
        o->waiting = false;
    }
    unsigned n = o->tail - o->head;
    pthread_mutex_unlock(&o->mu);
    return n < BATCH ? n : BATCH;
}

static void *offload_main(void *arg)
{
    ug_host_adapter *a = arg;
    uh_offload *o = a->off;
    for (unsigned n; (n = take(o)) > 0;) {
        ug_host_worker_begin_(a);
        for (unsigned i = 0; i < n; i++) { /* ring[head..head+n) is the worker's until head moves */
            uh_item *it = &o->ring[(o->head + i) % RING];
            ug_host_worker_one_(a, it->fd, (struct sockaddr *)&it->src, it->sl, it->bytes, it->len);
        }
        ug_host_worker_end_(a); /* a commit per batch, as upgate-node's */
        pthread_mutex_lock(&o->mu);
        o->head += n;
        pthread_mutex_unlock(&o->mu);
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
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    a->off = o;
    if (ug_host_thread_(&o->thread, offload_main, a) != 0) {
        snprintf(err, errcap, "cannot start the upgate worker thread");
        a->off = NULL;
        free(o->ring);
        free(o);
        return -1;
    }
    pthread_setname_np(o->thread, "upgate-worker");
    return 0;
}

void ug_host_offload_stop_(ug_host_adapter *a)
{
    uh_offload *o = a->off;
    if (!o || o->stop)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = true; /* the worker answers what the ring holds, then ends */
    pthread_mutex_unlock(&o->mu);
    pthread_cond_signal(&o->cv);
    if (!pthread_equal(pthread_self(), o->thread))
        pthread_join(o->thread, NULL);
}

void ug_host_offload_free_(ug_host_adapter *a)
{
    uh_offload *o = a->off;
    if (!o)
        return;
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o->ring);
    free(o);
    a->off = NULL;
}
