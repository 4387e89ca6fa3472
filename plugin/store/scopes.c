/* The scopes a store holds: each rollout's release, loaded from disk on first use, swept after a reload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/store_impl.h"

/* Pages a scan read stay in our RSS as file pages; they are the page
 * cache's to keep, not ours, once the grants are in memory. */
void ug_store_drop_pages(const void *lo, const void *hi)
{
    if (!lo || hi <= lo)
        return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)lo & ~(uintptr_t)(pg - 1), b = ((uintptr_t)hi + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
    (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The scope's grant count when every grant of data.mdb is its own (the
 * first and last keys say so: one release, the common case), without a
 * counting walk; else SIZE_MAX. */
static size_t sole_scope_count(ug_store *s, MDB_txn *txn, MDB_cursor *cur, uint32_t id)
{
    MDB_val k, v;
    MDB_stat st;
    for (int op = 0; op < 2; op++)
        if (mdb_cursor_get(cur, &k, &v, op ? MDB_LAST : MDB_FIRST) != 0 || k.mv_size != 12 ||
            rd_be(k.mv_data, 4) != id)
            return SIZE_MAX;
    return mdb_stat(txn, s->db_grants, &st) == 0 ? st.ms_entries : SIZE_MAX;
}

/* One walk over sc's key range in data.mdb: counts its records into *n, or
 * inserts them (ins). The leaves lie scattered over the file, and each one
 * read maps its neighbours too: the pages read are given back every
 * UG_DROP_EVERY records, so the walk never holds the whole file. */
static int walk(ug_scope *sc, MDB_cursor *cur, bool ins, size_t *n)
{
    uint8_t first[12] = {0};
    be32(first, sc->id);
    const uint8_t *lo = NULL, *hi = NULL;
    ug_loader ld;
    ug_loader_init(&ld, sc, 0, NSTRIPES);
    MDB_val k = {sizeof first, first}, v;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || v.mv_size != sizeof(grant_record))
            return MDB_CORRUPTED;
        if (memcmp(k.mv_data, first, 4) != 0)
            break;
        const uint8_t *p = v.mv_data;
        lo = !lo || p < lo ? p : lo;
        hi = p + sizeof(grant_record) > hi ? p + sizeof(grant_record) : hi;
        if (++*n % UG_DROP_EVERY == 0) {
            ug_store_drop_pages(lo, hi);
            lo = hi = NULL;
        }
        if (!ins)
            continue;
        grant_record r;
        memcpy(&r, p, sizeof r);
        uint64_t uid = rd_be((const uint8_t *)k.mv_data + 4, 8);
        if (uid == 0)
            return MDB_CORRUPTED;
        if (ug_loader_add(&ld, uid, &r) != 0)
            return ENOMEM;
    }
    ug_store_drop_pages(lo, hi);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    return ins && ug_loader_finish(&ld) != 0 ? ENOMEM : 0;
}

/* From the load image when it serves; else from data.mdb: count (unless
 * the scope holds every grant there), presize, insert, so the tables are
 * sized as when live and never rehash while loading. */
int ug_store_load_scope(ug_store *s, ug_scope *sc, char *err, size_t errcap)
{
    int done = ug_image_load(s, sc, err, errcap);
    if (done != 0)
        return done > 0 ? 0 : -1;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    const char *what = "mdb_txn_begin";
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        goto fail;
    what = "mdb_cursor_open";
    if ((rc = mdb_cursor_open(txn, s->db_grants, &cur)) != 0)
        goto fail;
    what = "mdb_cursor_get";
    size_t n = sole_scope_count(s, txn, cur, sc->id), seen = 0;
    if (n == SIZE_MAX && (n = 0, rc = walk(sc, cur, false, &n)) != 0)
        goto fail;
    if (ug_scope_presize(sc, n, 0, NSTRIPES) != 0) {
        rc = ENOMEM;
        goto fail;
    }
    if ((rc = walk(sc, cur, true, &seen)) != 0)
        goto fail;
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return 0;
fail:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    return ug_store_fail(err, errcap, "state folder %s: rollout %s release %s: %s: %s", s->dir, sc->rollout, sc->to,
                         what, rc == ENOMEM ? "out of memory" : mdb_strerror(rc));
}

ug_scope *ug_store_scope(ug_store *s, const char *rollout, const char *to, char *err, size_t errcap)
{
    ug_scope *sc = NULL;
    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 0; i < s->nscopes; i++)
        if (strcmp(s->scopes[i]->rollout, rollout) == 0 && strcmp(s->scopes[i]->to, to) == 0) {
            sc = s->scopes[i];
            goto out;
        }
    if (s->nscopes == s->capscopes) {
        size_t cap = s->capscopes ? s->capscopes * 2 : 8;
        ug_scope **v = realloc(s->scopes, cap * sizeof *v);
        if (!v)
            goto oom;
        s->scopes = v;
        s->capscopes = cap;
    }
    if (!(sc = ug_scope_new(s, rollout, to)))
        goto oom;
    /* a scope swept earlier may have grants still only in the log */
    if (ug_wal_drain(s) != 0) {
        ug_store_fail(err, errcap, "state folder %s: rollout %s: the log cannot be moved into data.mdb (see the log)",
                      s->dir, rollout);
        ug_scope_free(sc);
        sc = NULL;
        goto done;
    }
    if (ug_store_scope_id(s, rollout, to, &sc->id, err, errcap) != 0 || ug_store_load_scope(s, sc, err, errcap) != 0) {
        ug_scope_free(sc);
        sc = NULL;
        goto done;
    }
    s->scopes[s->nscopes++] = sc;
out:
    sc->marked = true;
done:
    pthread_mutex_unlock(&s->reg_mu);
    return sc;
oom:
    pthread_mutex_unlock(&s->reg_mu);
    ug_store_fail(err, errcap, "state folder %s: rollout %s: out of memory", s->dir, rollout);
    return NULL;
}

void ug_store_unmark(ug_store *s)
{
    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 0; i < s->nscopes; i++) {
        s->scopes[i]->marked = false;
        ug_scope_unmark_stages(s->scopes[i]);
    }
    pthread_mutex_unlock(&s->reg_mu);
}

void ug_store_sweep(ug_store *s)
{
    pthread_mutex_lock(&s->reg_mu);
    size_t k = 0;
    for (size_t i = 0; i < s->nscopes; i++) {
        ug_scope *sc = s->scopes[i];
        if (!sc->marked && atomic_load(&sc->queued) == 0) {
            ug_scope_free(sc);
            continue;
        }
        if (sc->marked)
            ug_scope_sweep_stages(sc);
        s->scopes[k++] = sc;
    }
    s->nscopes = k;
    pthread_mutex_unlock(&s->reg_mu);
}

ug_scope *ug_store_scope_by_id(ug_store *s, uint32_t id)
{
    ug_scope *sc = NULL;
    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 0; i < s->nscopes && !sc; i++)
        if (s->scopes[i]->id == id)
            sc = s->scopes[i];
    pthread_mutex_unlock(&s->reg_mu);
    return sc;
}

/* ---- a release's grants read from disk ------------------------------------- */

/* The grants under scope id `id`, in txn, each to fn. */
static int read_scope(ug_store *s, MDB_txn *txn, uint32_t id, ug_grant_fn fn, void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->db_grants, &cur);
    if (rc != 0)
        return rc;
    uint8_t first[12] = {0};
    be32(first, id);
    MDB_val k = {sizeof first, first}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || memcmp(k.mv_data, first, 4) != 0)
            break;
        if (v.mv_size != sizeof(grant_record)) {
            rc = MDB_CORRUPTED;
            break;
        }
        grant_record r;
        memcpy(&r, v.mv_data, sizeof r);
        ug_grant_info gi = {.found = true, .durable = true, .published = r.flags & GR_PUBLISHED, .stage = r.stage,
                            .at = r.at, .outcome = r.outcome < UG_OUT_COUNT_ ? r.outcome : UG_OUT_PENDING,
                            .outcome_at = r.outcome_at, .outcome_ts = r.outcome_at};
        fn(ctx, rd_be((const uint8_t *)k.mv_data + 4, 8), &gi);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int ug_store_read_release(ug_store *s, const char *rollout, const char *to, ug_grant_fn fn, void *ctx, char *err,
                          size_t errcap)
{
    if (ug_wal_drain(s) != 0) /* a release swept earlier may have grants only in the log */
        return ug_store_fail(err, errcap, "state folder %s: the log cannot be moved into data.mdb (see the log)",
                             s->dir);
    MDB_txn *txn;
    uint32_t id = 0;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
        rc = ug_store_scope_find(s, txn, rollout, to, &id);
        if (rc == 0)
            rc = read_scope(s, txn, id, fn, ctx);
        mdb_txn_abort(txn);
    }
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: rollout %s release %s: %s", s->dir, rollout, to,
                             mdb_strerror(rc));
    return 1;
}

void ug_store_releases(ug_store *s, const char *rollout, void (*fn)(void *ctx, const char *to), void *ctx)
{
    uint8_t key[KEY_MAX];
    size_t a = strnlen(rollout, 64);
    memcpy(key, "r:", 2);
    memcpy(key + 2, rollout, a);
    key[2 + a] = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    if (mdb_cursor_open(txn, s->db_names, &cur) == 0) {
        MDB_val k = {3 + a, key}, v;
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < 3 + a || memcmp(k.mv_data, key, 3 + a) != 0)
                break;
            char to[UG_VER_MAX + 1];
            size_t n = k.mv_size - 3 - a < UG_VER_MAX ? k.mv_size - 3 - a : UG_VER_MAX;
            memcpy(to, (const char *)k.mv_data + 3 + a, n);
            to[n] = 0;
            fn(ctx, to);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
}
