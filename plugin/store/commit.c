/* Commits: every worker's queued records made durable by one append to the log per group; who is told; published marks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"
#include "upgate_plugin.h"

/*
 * Group commit. flush(w) joins w's queue to the open group. If no commit
 * is on its way to disk, the caller leads: it takes the open group (its
 * own part and whatever joined), appends it to the log in one synchronous
 * write, marks what became durable and wakes the group. Whoever joins
 * meanwhile waits for that write to end and leads the next group, which
 * carries every part that joined in between: workers share a wait for the
 * disk instead of queueing for one each.
 * A leader lingers before its write, but only for company that is sure
 * to come: while commits come closer together than LINGER_NS, its group
 * has fewer than GROUP_FULL records, and another worker has queued
 * records since it last joined (it flushes at the end of its batch). It
 * writes as soon as every such worker joined, and at the latest LINGER_NS
 * after the last group's write began. A worker alone never lingers: nobody could
 * join, and its own next datagrams cannot be read while it waits, so a
 * linger would only add to every reply's latency. A lone flush, and any
 * group of GROUP_FULL or more, is written at once.
 * Nothing is promised early: a part is done only when the write that holds
 * its records returned.
 */

#define LINGER_NS UINT64_C(700000) /* 0.7 ms */
#define GROUP_FULL 32u

void ug_group_init(ug_store *s)
{
    ug_group *g = &s->group;
    pthread_condattr_t ca;
    (void)pthread_mutex_init(&g->mu, NULL);
    (void)pthread_condattr_init(&ca);
    (void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    (void)pthread_cond_init(&g->cv, &ca);
    (void)pthread_condattr_destroy(&ca);
    g->head = NULL;
    g->tail = &g->head;
    g->linger_ns = LINGER_NS;
}

void ug_group_destroy(ug_store *s)
{
    pthread_mutex_destroy(&s->group.mu);
    pthread_cond_destroy(&s->group.cv);
}

/* True when a worker other than the leader's has queued records that are
 * not in the open group: it will join once its batch ends. */
static bool company_coming(const ug_store *s)
{
    for (unsigned w = 0; w < s->nworkers; w++)
        if (atomic_load_explicit(&s->queues[w].coming, memory_order_relaxed))
            return true;
    return false;
}

/* The leader waits (g->mu held) while commits come close together, its
 * group is small and another worker is about to join; parts that join
 * wake it to be counted. */
static void linger(ug_store *s, ug_group *g)
{
    uint64_t now = ug_mono_ns(), until = g->last_start + g->linger_ns;
    while (g->n < GROUP_FULL && company_coming(s)) {
        if (now >= until)
            return;
        struct timespec ts = {.tv_sec = (time_t)(until / UINT64_C(1000000000)),
                              .tv_nsec = (long)(until % UINT64_C(1000000000))};
        (void)pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        now = ug_mono_ns();
    }
}

/* What became durable: each record's grant, the QUEUED marks of its
 * queue, the listener, the scopes' queued counts. */
static void committed(ug_store *s, const ug_part *parts)
{
    for (const ug_part *p = parts; p; p = p->next) {
        for (size_t i = 0; i < p->n; i++)
            ug_scope_committed(p->v[i].sc, p->v[i].uid, p->worker);
        if (p->tell && s->on_commit) /* while the records still pin their scopes */
            s->on_commit(s->on_commit_ctx, &(ug_commit_batch){p->v, p->n});
        if (p->worker != PART_NO_WORKER)
            for (size_t i = 0; i < p->n; i++)
                atomic_fetch_sub_explicit(&p->v[i].sc->queued, 1, memory_order_relaxed);
    }
}

/* Writes the group of parts; 0 or -1 (the first failure in a row logged). */
static int write_group(ug_store *s, const ug_part *parts, bool *full)
{
    const char *what;
    int eno;
    size_t n = 0;
    if (ug_wal_append(s, parts, full, &what, &eno) == 0) {
        committed(s, parts);
        return 0;
    }
    for (const ug_part *p = parts; p; p = p->next)
        n += p->n;
    if (atomic_fetch_add(&s->commit_failures, 1) == 0 || !atomic_load(&s->commit_failing))
        ug_store_logf(s, UG_LOG_ERROR,
                      "state folder %s: cannot store %zu grant records (%s: %s); their HINTs wait until a commit "
                      "succeeds",
                      s->dir, n, what, strerror(eno));
    atomic_store(&s->commit_failing, true);
    return -1;
}

/* Joins p to the open group and returns once a write that holds it ended:
 * p->rc. */
static int group_commit(ug_store *s, ug_part *p)
{
    ug_group *g = &s->group;
    bool full = false;
    pthread_mutex_lock(&g->mu);
    *p = (ug_part){.v = p->v, .n = p->n, .worker = p->worker, .tell = p->tell};
    if (p->worker != PART_NO_WORKER) /* under g->mu: a lingering leader sees it joined */
        atomic_store_explicit(&s->queues[p->worker].coming, false, memory_order_relaxed);
    *g->tail = p;
    g->tail = &p->next;
    g->n += p->n;
    pthread_cond_broadcast(&g->cv);
    while (!p->done) {
        if (g->leading) {
            pthread_cond_wait(&g->cv, &g->mu);
            continue;
        }
        g->leading = true;
        linger(s, g);
        ug_part *mine = g->head;
        g->head = NULL;
        g->tail = &g->head;
        g->n = 0;
        g->last_start = ug_mono_ns();
        pthread_mutex_unlock(&g->mu);
        int rc = write_group(s, mine, &full);
        pthread_mutex_lock(&g->mu);
        for (ug_part *q = mine, *next; q; q = next) {
            next = q->next; /* q's owner may return once done is seen */
            q->rc = rc;
            q->done = true;
        }
        g->leading = false;
        pthread_cond_broadcast(&g->cv);
    }
    int rc = p->rc;
    pthread_mutex_unlock(&g->mu);
    if (full) /* the log outgrew what tick() would leave it: this worker moves it on */
        (void)ug_wal_checkpoint(s, false);
    return rc;
}

int ug_store_commit(ug_store *s, unsigned worker)
{
    if (worker >= s->nworkers)
        return -1;
    wqueue *q = &s->queues[worker];
    if (q->n == 0)
        return 0;
    ug_part p = {.v = q->v, .n = q->n, .worker = worker, .tell = true};
    if (group_commit(s, &p) != 0) {
        q->failing = true;
        return -1;
    }
    q->n = 0;
    if (q->failing && atomic_exchange(&s->commit_failing, false)) {
        ug_store_logf(s, UG_LOG_INFO, "state folder %s: stores grants again", s->dir);
    }
    q->failing = false;
    return 0;
}

int ug_store_checkpoint(ug_store *s)
{
    return ug_wal_checkpoint(s, true);
}

void ug_store_on_commit(ug_store *s, ug_store_committed_fn fn, void *ctx)
{
    s->on_commit_ctx = ctx;
    s->on_commit = fn;
}

size_t ug_commit_batch_len(const ug_commit_batch *b)
{
    return b->n;
}

void ug_commit_batch_at(const ug_commit_batch *b, size_t i, uint32_t *scope, uint64_t *uid)
{
    *scope = b->v[i].sc->id;
    *uid = b->v[i].uid;
}

/* The mark goes to memory first, then each record is logged as memory
 * holds it, like a commit: whichever of this and a worker's commit writes
 * last, the mark is in it. */
int ug_store_mark_published(ug_store *s, ug_scope *sc, const uint64_t *uids, size_t n, size_t *marked,
                            const char **why)
{
    *marked = 0;
    if (why)
        *why = NULL;
    bool *write = malloc(n ? n : 1);
    pend *v = malloc((n ? n : 1) * sizeof *v);
    if (!write || !v) {
        free(write);
        free(v);
        return -1;
    }
    size_t todo = ug_scope_mark_published_mem(sc, uids, n, write), k = 0;
    for (size_t i = 0; i < n; i++)
        if (write[i])
            v[k++] = (pend){sc, uids[i]};
    ug_part p = {.v = v, .n = k, .worker = PART_NO_WORKER};
    int rc = k ? group_commit(s, &p) : 0;
    free(write);
    free(v);
    *marked = todo;
    if (rc != 0 && why)
        *why = "the log could not be written";
    return rc;
}
