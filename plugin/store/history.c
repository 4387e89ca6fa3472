/* The store's small records: the operator's flags (pause, halt, holds) and the history, each written alone. */
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

static int put_txn(ug_store *s, MDB_dbi db, MDB_val *k, MDB_val *v, bool del)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return -1;
    rc = del ? mdb_del(txn, db, k, NULL) : mdb_put(txn, db, k, v, 0);
    if (rc == MDB_NOTFOUND && del)
        rc = 0;
    if (rc != 0) {
        mdb_txn_abort(txn);
        return -1;
    }
    return mdb_txn_commit(txn) == 0 ? 0 : -1;
}

int ug_store_put(ug_store *s, const char *key, const void *val, size_t len)
{
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    return put_txn(s, s->db_flags, &k, &v, false);
}

int ug_store_del(ug_store *s, const char *key)
{
    MDB_val k = {strlen(key), (void *)key};
    return put_txn(s, s->db_flags, &k, NULL, true);
}

long ug_store_get(ug_store *s, const char *key, void *val, size_t cap)
{
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return -1;
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, s->db_flags, &k, &v);
    long n = rc == MDB_NOTFOUND ? 0 : rc != 0 || v.mv_size > cap ? -1 : (long)v.mv_size;
    if (n > 0)
        memcpy(val, v.mv_data, (size_t)n);
    mdb_txn_abort(txn);
    return n;
}

void ug_store_scan(ug_store *s, const char *prefix, void (*fn)(void *ctx, const char *key, const void *val, size_t len),
                   void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    if (mdb_cursor_open(txn, s->db_flags, &cur) == 0) {
        size_t pl = strlen(prefix);
        MDB_val k = {pl, (void *)prefix}, v;
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0 || k.mv_size >= 256)
                break;
            char key[256];
            memcpy(key, k.mv_data, k.mv_size);
            key[k.mv_size] = 0;
            fn(ctx, key, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
}

int ug_store_history_add(ug_store *s, uint64_t at, const char *line)
{
    uint8_t buf[8 + UG_HISTORY_LINE_MAX];
    size_t n = strnlen(line, UG_HISTORY_LINE_MAX);
    be64(buf, at);
    memcpy(buf + 8, line, n);
    pthread_mutex_lock(&s->reg_mu);
    uint64_t seq = ++s->history_seq;
    uint8_t key[8], old[8];
    be64(key, seq);
    be64(old, seq > UG_HISTORY_MAX ? seq - UG_HISTORY_MAX : 0);
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        MDB_val k = {8, key}, v = {8 + n, buf}, ko = {8, old};
        rc = mdb_put(txn, s->db_history, &k, &v, 0);
        if (rc == 0 && seq > UG_HISTORY_MAX && (rc = mdb_del(txn, s->db_history, &ko, NULL)) == MDB_NOTFOUND)
            rc = 0;
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    pthread_mutex_unlock(&s->reg_mu);
    return rc == 0 ? 0 : -1;
}

void ug_store_history(ug_store *s, void (*fn)(void *ctx, uint64_t at, const char *line), void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return;
    if (mdb_cursor_open(txn, s->db_history, &cur) == 0) {
        MDB_val k, v;
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (v.mv_size < 8 || v.mv_size > 8 + UG_HISTORY_LINE_MAX)
                continue;
            char line[UG_HISTORY_LINE_MAX + 1];
            memcpy(line, (const uint8_t *)v.mv_data + 8, v.mv_size - 8);
            line[v.mv_size - 8] = 0;
            fn(ctx, rd_be(v.mv_data, 8), line);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
}
