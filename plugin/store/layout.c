/* Opening the databases, and the upgrade of a layout-1 folder in place. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"
#include "upgate_plugin.h"

/*
 * Layout 2 (docs/state.md): one LMDB env, five named databases.
 *   meta     "layout" -> u32 2; "next_scope", "next_stage" -> u32
 *   names    "s:" NAME -> u32 stage id; "r:" ROLLOUT "\0" TO -> u32 scope id
 *   grants   scope id (u32 BE) || uid (u64 BE) -> grant_record (12 bytes)
 *   flags    text key -> bytes (pause, halt, holds)
 *   history  seq (u64 BE) -> u64 at || text (<= 1024 bytes; base/audit.c codes who, what and why in it)
 * Layout 1 had one database "g:STAGE" per stage name (uid keys, native
 * MDB_INTEGERKEY, empty values), for the one release its policy named.
 * Beside data.mdb: upgate.lock (flock; the holder's pid) and store.id
 * (written once the store holds its first commit: its absence later tells
 * a fresh folder from one whose data.mdb vanished).
 */

/* Layout 1's "g:STAGE" databases, listed from the main database. */
typedef struct {
    char (*names)[40];
    size_t n, cap;
} oldlist;

static int list_old(MDB_txn *txn, oldlist *l)
{
    MDB_dbi main;
    MDB_cursor *cur;
    int rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (rc != 0 || (rc = mdb_cursor_open(txn, main, &cur)) != 0)
        return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size < 3 || k.mv_size > 34 || memcmp(k.mv_data, "g:", 2) != 0)
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 16;
            void *nv = realloc(l->names, cap * sizeof *l->names);
            if (!nv) {
                rc = ENOMEM;
                break;
            }
            l->names = nv;
            l->cap = cap;
        }
        memcpy(l->names[l->n], k.mv_data, k.mv_size);
        l->names[l->n][k.mv_size] = 0;
        l->n++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Moves one layout-1 stage database into scope `scope`; a uid already
 * granted (by an earlier stage) keeps its first stage. */
static int upgrade_stage(ug_store *s, MDB_txn *txn, const char *dbname, uint32_t scope, uint32_t now, size_t *moved)
{
    MDB_dbi old;
    MDB_cursor *cur;
    uint32_t sid;
    uint8_t skey[KEY_MAX];
    int rc = mdb_dbi_open(txn, dbname, MDB_INTEGERKEY, &old);
    if (rc != 0)
        return rc;
    if ((rc = ug_store_number(s, txn, skey, ug_store_stage_key(skey, dbname + 2), "next_stage", STAGE_IDS_MAX, &sid)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, old, &cur)) != 0)
        return rc;
    MDB_val k, v;
    grant_record r = {.at = now, .stage = (uint16_t)sid, .outcome = UG_OUT_PENDING};
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
        uint64_t uid;
        if (k.mv_size != sizeof uid) {
            rc = MDB_CORRUPTED;
            break;
        }
        memcpy(&uid, k.mv_data, sizeof uid);
        uint8_t key[12];
        be32(key, scope);
        be64(key + 4, uid);
        MDB_val nk = {12, key}, nv = {sizeof r, &r};
        rc = mdb_put(txn, s->db_grants, &nk, &nv, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST)
            rc = 0;
        else if (rc != 0)
            break;
        else
            (*moved)++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND && rc != 0)
        return rc;
    return mdb_drop(txn, old, 1);
}

static int upgrade_layout1(ug_store *s, MDB_txn *txn, const ug_store_opts *o, const oldlist *l, char *err,
                           size_t errcap)
{
    if (!o->upgrade_rollout || !o->upgrade_to)
        return ug_store_fail(err, errcap, "state folder %s: layout 1 store with no release to upgrade it into", s->dir);
    uint32_t scope;
    size_t moved = 0;
    int rc = ug_store_scope_id_txn(s, txn, o->upgrade_rollout, o->upgrade_to, &scope);
    for (size_t i = 0; i < l->n && rc == 0; i++)
        rc = upgrade_stage(s, txn, l->names[i], scope, (uint32_t)o->now, &moved);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: upgrading layout 1: %s", s->dir, mdb_strerror(rc));
    ug_store_logf(s, UG_LOG_INFO,
         "state folder %s: upgraded from layout 1: %zu grants of %zu stages now belong to rollout %s, release %s",
         s->dir, moved, l->n, o->upgrade_rollout, o->upgrade_to);
    return 0;
}

int ug_store_open_dbs(ug_store *s, const ug_store_opts *o, char *err, size_t errcap)
{
    MDB_txn *txn;
    oldlist old = {0};
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: mdb_txn_begin: %s", s->dir, mdb_strerror(rc));
    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"meta", &s->db_meta}, {"names", &s->db_names}, {"grants", &s->db_grants}, {"flags", &s->db_flags},
               {"history", &s->db_history}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && rc == 0; i++)
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
    uint32_t layout = 0;
    if (rc == 0 && (rc = ug_store_get_u32(txn, s->db_meta, "layout", 6, &layout)) == MDB_NOTFOUND)
        rc = 0;
    if (rc == 0 && layout > UG_STORE_LAYOUT) {
        mdb_txn_abort(txn);
        return ug_store_fail(err, errcap, "state folder %s: layout %u is newer than this upgate (%u); upgrade upgate",
                             s->dir, layout, UG_STORE_LAYOUT);
    }
    if (rc == 0)
        rc = list_old(txn, &old);
    if (rc == 0 && old.n > 0 && upgrade_layout1(s, txn, o, &old, err, errcap) != 0) {
        free(old.names);
        mdb_txn_abort(txn);
        return -1;
    }
    free(old.names);
    /* written only when it changes: an open that writes nothing leaves
     * data.mdb's last transaction, and so the load image, as they were */
    if (rc == 0 && layout != UG_STORE_LAYOUT)
        rc = ug_store_put_u32(txn, s->db_meta, "layout", 6, UG_STORE_LAYOUT);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: opening the databases: %s", s->dir, mdb_strerror(rc));
    return 0;
}

