/* Commits: a worker's queued records made durable in one transaction per chunk; who is told; published marks. */
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"
#include "upgate_plugin.h"

#define COMMIT_CHUNK 16384u /* keeps a txn far from LMDB's dirty page limit */

static int pend_cmp(const void *a, const void *b)
{
    const pend *x = a, *y = b;
    if (x->sc->id != y->sc->id)
        return x->sc->id < y->sc->id ? -1 : 1;
    return (x->uid > y->uid) - (x->uid < y->uid);
}

/* One chunk in one transaction: each record as memory holds it now (so
 * whichever commit runs last writes the latest state). */
static int commit_chunk(ug_store *s, pend *batch, size_t k, const char **what)
{
    MDB_txn *txn;
    *what = "mdb_txn_begin";
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    *what = "mdb_put";
    for (size_t i = 0; i < k && rc == 0; i++) {
        grant_record r;
        if (!ug_scope_record(batch[i].sc, batch[i].uid, &r))
            continue;
        uint8_t key[12];
        be32(key, batch[i].sc->id);
        be64(key + 4, batch[i].uid);
        MDB_val kv = {sizeof key, key}, vv = {sizeof r, &r};
        rc = mdb_put(txn, s->db_grants, &kv, &vv, 0);
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    *what = "mdb_txn_commit";
    return mdb_txn_commit(txn); /* frees txn either way */
}

int ug_store_commit(ug_store *s, unsigned worker)
{
    if (worker >= s->nworkers)
        return -1;
    wqueue *q = &s->queues[worker];
    while (q->n > 0) {
        size_t k = q->n < COMMIT_CHUNK ? q->n : COMMIT_CHUNK;
        pend *batch = q->v + (q->n - k);
        qsort(batch, k, sizeof *batch, pend_cmp);
        const char *what;
        int rc = commit_chunk(s, batch, k, &what);
        if (rc != 0) {
            uint64_t n = atomic_fetch_add(&s->commit_failures, 1);
            if (!q->failing || n == 0)
                ug_store_logf(s, UG_LOG_ERROR,
                     "state folder %s: worker %u cannot store %zu grant records (%s: %s); their HINTs wait until "
                     "a commit succeeds",
                     s->dir, worker, q->n, what, mdb_strerror(rc));
            q->failing = true;
            return -1;
        }
        for (size_t i = 0; i < k; i++)
            ug_scope_committed(batch[i].sc, batch[i].uid, worker);
        if (s->on_commit) /* while the batch still pins its scopes */
            s->on_commit(s->on_commit_ctx, &(ug_commit_batch){batch, k});
        for (size_t i = 0; i < k; i++)
            atomic_fetch_sub_explicit(&batch[i].sc->queued, 1, memory_order_relaxed);
        q->n -= k;
    }
    if (q->failing) {
        ug_store_logf(s, UG_LOG_INFO, "state folder %s: worker %u stores grants again", s->dir, worker);
        q->failing = false;
    }
    return 0;
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

/* The mark goes to memory first, then each record is written as memory
 * holds it inside the write transaction, like a commit: whichever of this
 * and a worker's commit writes last, the mark is in it. */
int ug_store_mark_published(ug_store *s, ug_scope *sc, const uint64_t *uids, size_t n, size_t *marked,
                            const char **why)
{
    *marked = 0;
    if (why)
        *why = NULL;
    bool *write = malloc(n ? n : 1);
    if (!write)
        return -1;
    size_t todo = ug_scope_mark_published_mem(sc, uids, n, write);
    int rc = 0;
    MDB_txn *txn;
    if (todo && (rc = mdb_txn_begin(s->env, NULL, 0, &txn)) == 0) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            grant_record r;
            if (!write[i] || !ug_scope_record(sc, uids[i], &r))
                continue;
            uint8_t key[12];
            be32(key, sc->id);
            be64(key + 4, uids[i]);
            MDB_val kv = {sizeof key, key}, vv = {sizeof r, &r};
            rc = mdb_put(txn, s->db_grants, &kv, &vv, 0);
        }
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    free(write);
    *marked = todo;
    if (rc != 0 && why)
        *why = mdb_strerror(rc);
    return rc == 0 ? 0 : -1;
}
