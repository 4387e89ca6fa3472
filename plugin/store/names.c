/* Stage ids and scope ids: numbered once, durably, and every stage name read back at open. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

static int remember_stage_name(ug_store *s, uint32_t id, const char *name, size_t len)
{
    if (id >= s->capstage_names) {
        size_t cap = s->capstage_names ? s->capstage_names : 64;
        while (cap <= id)
            cap *= 2;
        char **v = realloc(s->stage_names, cap * sizeof *v);
        if (!v)
            return -1;
        memset(v + s->capstage_names, 0, (cap - s->capstage_names) * sizeof *v);
        s->stage_names = v;
        s->capstage_names = cap;
    }
    free(s->stage_names[id]);
    if (!(s->stage_names[id] = strndup(name, len)))
        return -1;
    if (id >= s->nstage_names)
        s->nstage_names = id + 1;
    return 0;
}

const char *ug_store_stage_name(const ug_store *s, uint16_t id)
{
    return id < s->nstage_names && s->stage_names[id] ? s->stage_names[id] : "?";
}

int ug_store_number(ug_store *s, MDB_txn *txn, const uint8_t *key, size_t klen, const char *next, uint32_t max,
                    uint32_t *id)
{
    int rc = ug_store_get_u32(txn, s->db_names, key, klen, id);
    if (rc != MDB_NOTFOUND)
        return rc;
    uint32_t n = 1;
    rc = ug_store_get_u32(txn, s->db_meta, next, strlen(next), &n);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (rc == MDB_NOTFOUND)
        n = 1;
    if (n > max)
        return MDB_MAP_FULL; /* reported by the caller as "too many names" */
    if ((rc = ug_store_put_u32(txn, s->db_names, key, klen, n)) != 0 ||
        (rc = ug_store_put_u32(txn, s->db_meta, next, strlen(next), n + 1)) != 0)
        return rc;
    *id = n;
    return 0;
}

size_t ug_store_stage_key(uint8_t *key, const char *name)
{
    size_t n = strnlen(name, 64);
    memcpy(key, "s:", 2);
    memcpy(key + 2, name, n);
    return 2 + n;
}

uint16_t ug_store_stage_id(ug_store *s, const char *name, char *err, size_t errcap)
{
    size_t nl = strnlen(name, 65);
    if (nl == 0 || nl > 64) {
        ug_store_fail(err, errcap, "state folder %s: stage name of %zu bytes (want 1..64)", s->dir, nl);
        return 0;
    }
    pthread_mutex_lock(&s->reg_mu);
    for (size_t i = 1; i < s->nstage_names; i++)
        if (s->stage_names[i] && strcmp(s->stage_names[i], name) == 0) {
            pthread_mutex_unlock(&s->reg_mu);
            return (uint16_t)i;
        }
    uint8_t key[KEY_MAX];
    size_t klen = ug_store_stage_key(key, name);
    uint32_t id = 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = ug_store_number(s, txn, key, klen, "next_stage", STAGE_IDS_MAX, &id);
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    if (rc == 0 && remember_stage_name(s, id, name, strlen(name)) != 0)
        rc = ENOMEM;
    pthread_mutex_unlock(&s->reg_mu);
    if (rc == MDB_MAP_FULL && id == 0)
        ug_store_fail(err, errcap, "state folder %s: stage %s: the store has numbered %u stage names, its most", s->dir,
                      name, STAGE_IDS_MAX);
    else if (rc != 0)
        ug_store_fail(err, errcap, "state folder %s: stage %s: %s", s->dir, name, mdb_strerror(rc));
    return rc == 0 ? (uint16_t)id : 0;
}

static size_t scope_key(uint8_t *key, const char *rollout, const char *to)
{
    size_t a = strnlen(rollout, 64), b = strnlen(to, 64);
    memcpy(key, "r:", 2);
    memcpy(key + 2, rollout, a);
    key[2 + a] = 0;
    memcpy(key + 3 + a, to, b);
    return 3 + a + b;
}

int ug_store_scope_find(ug_store *s, MDB_txn *txn, const char *rollout, const char *to, uint32_t *id)
{
    uint8_t key[KEY_MAX];
    return ug_store_get_u32(txn, s->db_names, key, scope_key(key, rollout, to), id);
}

int ug_store_scope_id_txn(ug_store *s, MDB_txn *txn, const char *rollout, const char *to, uint32_t *id)
{
    uint8_t key[KEY_MAX];
    return ug_store_number(s, txn, key, scope_key(key, rollout, to), "next_scope", UINT32_MAX - 1, id);
}

int ug_store_scope_id(ug_store *s, const char *rollout, const char *to, uint32_t *id, char *err, size_t errcap)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = ug_store_scope_id_txn(s, txn, rollout, to, id);
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: rollout %s release %s: %s", s->dir, rollout, to,
                             mdb_strerror(rc));
    return 0;
}

/* Every stage name numbered so far, and the last history entry. */
int ug_store_load_names(ug_store *s, char *err, size_t errcap)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc == 0 && (rc = mdb_cursor_open(txn, s->db_names, &cur)) == 0) {
        MDB_val k = {2, "s:"}, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < 2 || memcmp(k.mv_data, "s:", 2) != 0)
                break;
            uint32_t id;
            if (v.mv_size != 4 || (memcpy(&id, v.mv_data, 4), id == 0 || id > STAGE_IDS_MAX)) {
                rc = MDB_CORRUPTED;
                break;
            }
            if (remember_stage_name(s, id, (const char *)k.mv_data + 2, k.mv_size - 2) != 0) {
                rc = ENOMEM;
                break;
            }
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        MDB_cursor *hc;
        if (rc == 0 && mdb_cursor_open(txn, s->db_history, &hc) == 0) {
            MDB_val hk, hv;
            if (mdb_cursor_get(hc, &hk, &hv, MDB_LAST) == 0 && hk.mv_size == 8)
                s->history_seq = rd_be(hk.mv_data, 8);
            mdb_cursor_close(hc);
        }
    }
    if (txn)
        mdb_txn_abort(txn);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: reading stage names: %s", s->dir,
                             rc == ENOMEM ? "out of memory" : mdb_strerror(rc));
    return 0;
}
