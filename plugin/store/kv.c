/* The store's shared small parts: its error and log lines, and u32 values in LMDB. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/store_impl.h"

int ug_store_fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void ug_store_logf(ug_store *s, int level, const char *fmt, ...)
{
    if (!s->log)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, level, msg);
}

int ug_store_get_u32(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, uint32_t *out)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(txn, db, &k, &v);
    if (rc == 0) {
        if (v.mv_size != 4)
            return MDB_CORRUPTED;
        memcpy(out, v.mv_data, 4);
    }
    return rc;
}

int ug_store_put_u32(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, uint32_t val)
{
    MDB_val k = {klen, (void *)key}, v = {4, &val};
    return mdb_put(txn, db, &k, &v, 0);
}
