/* Each worker's queue of records waiting for its next commit. */
#include <stdlib.h>

#include "store/store_impl.h"

int ug_queue_reserve(ug_store *s, unsigned worker)
{
    wqueue *q = &s->queues[worker];
    if (q->n < q->cap)
        return 0;
    size_t cap = q->cap ? q->cap * 2 : 256;
    pend *v = realloc(q->v, cap * sizeof *v);
    if (!v)
        return -1;
    q->v = v;
    q->cap = cap;
    return 0;
}

int ug_queue_push(ug_store *s, unsigned worker, ug_scope *sc, uint64_t uid)
{
    if (ug_queue_reserve(s, worker) != 0)
        return -1;
    wqueue *q = &s->queues[worker];
    q->v[q->n++] = (pend){sc, uid};
    atomic_fetch_add_explicit(&sc->queued, 1, memory_order_relaxed);
    if (!atomic_load_explicit(&q->coming, memory_order_relaxed))
        atomic_store_explicit(&q->coming, true, memory_order_relaxed);
    return 0;
}
