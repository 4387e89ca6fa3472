/* A rollout's earlier releases and what became of their offers, read from disk without loading them: a gate's baseline. */
#include <string.h>

#include "store/store_impl.h"

int ug_store_past(ug_store *s, const char *rollout, void (*fn)(void *ctx, const char *to, uint32_t id), void *ctx)
{
    uint8_t pre[80];
    size_t a = strnlen(rollout, 64);
    memcpy(pre, "r:", 2);
    memcpy(pre + 2, rollout, a);
    pre[2 + a] = 0;
    size_t np = 3 + a;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return -1;
    if ((rc = mdb_cursor_open(txn, s->db_names, &cur)) == 0) {
        MDB_val k = {np, pre}, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            char to[65];
            size_t n = k.mv_size - np;
            if (k.mv_size <= np || memcmp(k.mv_data, pre, np) != 0)
                break;
            if (v.mv_size != 4 || n >= sizeof to)
                continue; /* not a scope id this code wrote: not a baseline */
            uint32_t id;
            memcpy(&id, v.mv_data, 4);
            memcpy(to, (const uint8_t *)k.mv_data + np, n);
            to[n] = 0;
            fn(ctx, to, id);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

int ug_store_past_outcomes(ug_store *s, uint32_t id, uint64_t counts[UG_OUT_COUNT_])
{
    memset(counts, 0, UG_OUT_COUNT_ * sizeof *counts);
    if (ug_store_checkpoint(s) != 0) /* outcomes still in the log count too */
        return -1;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return -1;
    uint8_t first[12] = {0};
    be32(first, id);
    if ((rc = mdb_cursor_open(txn, s->db_grants, &cur)) == 0) {
        MDB_val k = {sizeof first, first}, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 12 || memcmp(k.mv_data, first, 4) != 0)
                break;
            grant_record r;
            if (v.mv_size != sizeof r)
                continue;
            memcpy(&r, v.mv_data, sizeof r);
            counts[r.outcome < UG_OUT_COUNT_ ? r.outcome : UG_OUT_PENDING]++;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}
