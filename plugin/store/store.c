/* The state folder: its lock, its marker, LMDB (layout 2, and the upgrade from 1), commits, flags, history. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store_impl.h"
#include "upgate_plugin.h"

/*
 * Layout 2 (docs/state.md): one LMDB env, five named databases.
 *   meta     "layout" -> u32 2; "next_scope", "next_stage" -> u32
 *   names    "s:" NAME -> u32 stage id; "r:" ROLLOUT "\0" TO -> u32 scope id
 *   grants   scope id (u32 BE) || uid (u64 BE) -> grant_record (12 bytes)
 *   flags    text key -> bytes (pause, halt, holds)
 *   history  seq (u64 BE) -> u64 at || text
 * Layout 1 had one database "g:STAGE" per stage name (uid keys, native
 * MDB_INTEGERKEY, empty values), for the one release its policy named.
 * Beside data.mdb: upgate.lock (flock; the holder's pid) and store.id
 * (written once the store holds its first commit: its absence later tells
 * a fresh folder from one whose data.mdb vanished).
 */

#define MAP_SIZE ((size_t)8 << 30) /* sparse: only used pages take disk; ~200M grants */
#define MAX_DBS 1100u               /* ours, plus every layout-1 stage db to upgrade */
#define COMMIT_CHUNK 16384u         /* keeps a txn far from LMDB's dirty page limit */
#define LOCKFILE_RESERVE (256u << 10) /* lock.mdb blocks reserved before LMDB maps it */
#define KEY_MAX (2 + 2 * 64 + 2)

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

__attribute__((format(printf, 3, 4))) static void slog(ug_store *s, int level, const char *fmt, ...)
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

const char *ug_store_dir(const ug_store *s)
{
    return s->dir;
}

/* ---- the folder: mkdir, lock, marker ----------------------------------- */

/* Like mkdir -p; directories it creates get mode 0700. */
static int mkdir_p(const char *dir, char *err, size_t errcap)
{
    char buf[UG_STORE_PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf)
        return ug_store_fail(err, errcap, "state folder '%s': empty or too long", dir);
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return ug_store_fail(err, errcap, "state folder %s: cannot create %s: %s", dir, buf, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ug_store_fail(err, errcap, "state folder %s: not a directory", dir);
    return 0;
}

static void join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Holds the folder for this instance until close: flock on upgate.lock,
 * which then names our pid for whoever is refused. flock locks belong to
 * the open file, so a second instance in the same process is refused too. */
static int lock_folder(ug_store *s, char *err, size_t errcap)
{
    char path[UG_STORE_PATH_MAX + 16];
    join(path, sizeof path, s->dir, "upgate.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot open %s: %s", s->dir, path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return ug_store_fail(err, errcap,
                                 "state folder %s is in use by pid %s (lock file %s): one tracker per state folder",
                                 s->dir, pid[0] ? pid : "?", path);
        return ug_store_fail(err, errcap, "state folder %s: cannot lock %s: %s", s->dir, path, strerror(e));
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        /* the lock holds without the pid; only the message loses it */
    }
    s->lock_fd = fd;
    return 0;
}

static bool file_exists(const char *path, off_t *size)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    *size = st.st_size;
    return true;
}

/* A store that existed must not come back empty: that would offer every
 * quota again. store.id says it existed; data.mdb must then hold it. */
static int check_not_vanished(ug_store *s, char *err, size_t errcap)
{
    char id[UG_STORE_PATH_MAX + 16], data[UG_STORE_PATH_MAX + 16];
    off_t isz = 0, dsz = 0;
    join(id, sizeof id, s->dir, "store.id");
    join(data, sizeof data, s->dir, "data.mdb");
    if (!file_exists(id, &isz))
        return 0;
    bool have = file_exists(data, &dsz);
    if (have && dsz > 0)
        return 0;
    return ug_store_fail(err, errcap,
                         "state folder %s: data.mdb is %s, but store.id says grants were stored here; refusing to "
                         "start without them (restore data.mdb, or remove %s to start from nothing)",
                         s->dir, have ? "empty" : "missing", id);
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_marker(ug_store *s, uint64_t now, char *err, size_t errcap)
{
    char path[UG_STORE_PATH_MAX + 16], tmp[UG_STORE_PATH_MAX + 32];
    off_t sz;
    join(path, sizeof path, s->dir, "store.id");
    if (file_exists(path, &sz))
        return 0;
    join(tmp, sizeof tmp, s->dir, "store.id.tmp");
    char text[128];
    int len = snprintf(text, sizeof text, "upgate state folder\nlayout %u\ncreated %llu\n", UG_STORE_LAYOUT,
                       (unsigned long long)now);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ug_write_all(fd, text, (size_t)len) != 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return ug_store_fail(err, errcap, "state folder %s: cannot write %s: %s", s->dir, tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0 || sync_dir(s->dir) != 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot write %s: %s", s->dir, path, strerror(errno));
    return 0;
}

/* LMDB maps lock.mdb after growing it with ftruncate, which on a full
 * tmpfs succeeds and then kills the process with SIGBUS at the first
 * touch. Reserving real blocks first turns that into ENOSPC here. */
static int reserve_lockfile(ug_store *s, char *err, size_t errcap)
{
    char path[UG_STORE_PATH_MAX + 16];
    join(path, sizeof path, s->dir, "lock.mdb");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot open %s: %s", s->dir, path, strerror(errno));
    int rc = posix_fallocate(fd, 0, LOCKFILE_RESERVE);
    close(fd);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot reserve %u KiB for %s: %s", s->dir,
                             LOCKFILE_RESERVE >> 10, path, strerror(rc));
    return 0;
}

/* A data file shorter than LMDB's own idea of its last page would raise
 * SIGBUS at the first read past its end: refuse it before any read. */
static int check_size(ug_store *s, char *err, size_t errcap)
{
    MDB_envinfo info;
    MDB_stat st;
    int fd;
    struct stat sb;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0 || mdb_env_get_fd(s->env, &fd) != 0 ||
        fstat(fd, &sb) != 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot read data.mdb's size", s->dir);
    uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    if ((uint64_t)sb.st_size < need)
        return ug_store_fail(err, errcap,
                             "state folder %s: data.mdb is damaged: %lld bytes, but its last page ends at byte %llu "
                             "(truncated?); restore it from a backup",
                             s->dir, (long long)sb.st_size, (unsigned long long)need);
    return 0;
}

/* ---- small helpers on LMDB values --------------------------------------- */

static void be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int get_u32(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, uint32_t *out)
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

static int put_u32(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, uint32_t val)
{
    MDB_val k = {klen, (void *)key}, v = {4, &val};
    return mdb_put(txn, db, &k, &v, 0);
}

/* ---- names: stage ids and scope ids, numbered once and for good ---------- */

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

/* The id under key in names, numbering it from the counter `next` in meta
 * when it is new; in txn. */
static int number(ug_store *s, MDB_txn *txn, const uint8_t *key, size_t klen, const char *next, uint32_t max,
                  uint32_t *id)
{
    int rc = get_u32(txn, s->db_names, key, klen, id);
    if (rc != MDB_NOTFOUND)
        return rc;
    uint32_t n = 1;
    rc = get_u32(txn, s->db_meta, next, strlen(next), &n);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (rc == MDB_NOTFOUND)
        n = 1;
    if (n > max)
        return MDB_MAP_FULL; /* reported by the caller as "too many names" */
    if ((rc = put_u32(txn, s->db_names, key, klen, n)) != 0 || (rc = put_u32(txn, s->db_meta, next, strlen(next), n + 1)) != 0)
        return rc;
    *id = n;
    return 0;
}

static size_t stage_key(uint8_t *key, const char *name)
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
    size_t klen = stage_key(key, name);
    uint32_t id = 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = number(s, txn, key, klen, "next_stage", STAGE_IDS_MAX, &id);
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

static int scope_id_txn(ug_store *s, MDB_txn *txn, const char *rollout, const char *to, uint32_t *id)
{
    uint8_t key[KEY_MAX];
    return number(s, txn, key, scope_key(key, rollout, to), "next_scope", UINT32_MAX - 1, id);
}

int ug_store_scope_id(ug_store *s, const char *rollout, const char *to, uint32_t *id, char *err, size_t errcap)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == 0) {
        rc = scope_id_txn(s, txn, rollout, to, id);
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: rollout %s release %s: %s", s->dir, rollout, to,
                             mdb_strerror(rc));
    return 0;
}

/* ---- scopes -------------------------------------------------------------- */

/* Pages the load read stay in our RSS as file pages; they are the page
 * cache's to keep, not ours, once the grants are in memory. */
static void drop_pages(const void *lo, const void *hi)
{
    if (!lo || hi <= lo)
        return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)lo & ~(uintptr_t)(pg - 1), b = ((uintptr_t)hi + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
    (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Two passes over the scope's key range: count, presize, then insert, so
 * the tables are sized as when live and never rehash while loading. */
int ug_store_load_scope(ug_store *s, ug_scope *sc, char *err, size_t errcap)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    const char *what = "mdb_txn_begin";
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        goto fail;
    what = "mdb_cursor_open";
    if ((rc = mdb_cursor_open(txn, s->db_grants, &cur)) != 0)
        goto fail;
    uint8_t first[12] = {0};
    be32(first, sc->id);
    const uint8_t *lo = NULL, *hi = NULL;
    uint64_t uids[UG_LOAD_BATCH];
    grant_record recs[UG_LOAD_BATCH];
    size_t nb = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        MDB_val k = {sizeof first, first}, v;
        what = "mdb_cursor_get";
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 12 || v.mv_size != sizeof(grant_record)) {
                rc = MDB_CORRUPTED;
                goto fail;
            }
            if (memcmp(k.mv_data, first, 4) != 0)
                break;
            if (pass == 0) {
                n++;
                continue;
            }
            memcpy(&recs[nb], v.mv_data, sizeof recs[nb]);
            uids[nb] = rd_be((const uint8_t *)k.mv_data + 4, 8);
            const uint8_t *p = v.mv_data;
            lo = !lo || p < lo ? p : lo;
            hi = p + sizeof(grant_record) > hi ? p + sizeof(grant_record) : hi;
            if (uids[nb++] == 0) {
                rc = MDB_CORRUPTED;
                goto fail;
            }
            if (nb == UG_LOAD_BATCH) {
                if (ug_scope_insert_loaded(sc, uids, recs, nb) != 0) {
                    rc = ENOMEM;
                    goto fail;
                }
                nb = 0;
            }
        }
        if (rc != 0 && rc != MDB_NOTFOUND)
            goto fail;
        rc = 0;
        if (pass == 0 && ug_scope_presize(sc, n) != 0) {
            rc = ENOMEM;
            goto fail;
        }
    }
    if (nb && ug_scope_insert_loaded(sc, uids, recs, nb) != 0) {
        rc = ENOMEM;
        goto fail;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    drop_pages(lo, hi);
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

/* ---- queues and commits ---------------------------------------------------- */

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
    return 0;
}

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
                slog(s, UG_LOG_ERROR,
                     "state folder %s: worker %u cannot store %zu grant records (%s: %s); their HINTs wait until "
                     "a commit succeeds",
                     s->dir, worker, q->n, what, mdb_strerror(rc));
            q->failing = true;
            return -1;
        }
        for (size_t i = 0; i < k; i++)
            ug_scope_committed(batch[i].sc, batch[i].uid, worker);
        if (s->on_commit) /* fleet mode: while the batch still pins its scopes */
            s->on_commit(s->on_commit_ctx, &(ug_commit_batch){batch, k});
        for (size_t i = 0; i < k; i++)
            atomic_fetch_sub_explicit(&batch[i].sc->queued, 1, memory_order_relaxed);
        q->n -= k;
    }
    if (q->failing) {
        slog(s, UG_LOG_INFO, "state folder %s: worker %u stores grants again", s->dir, worker);
        q->failing = false;
    }
    return 0;
}

/* ---- fleet mode ------------------------------------------------------------ */

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

/* The mark goes to memory first, then each record is written as memory
 * holds it inside the write transaction, like a commit: whichever of this
 * and a worker's commit writes last, the mark is in it. */
int ug_store_mark_published(ug_store *s, ug_scope *sc, const uint64_t *uids, size_t n)
{
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
    if (rc != 0)
        slog(s, UG_LOG_WARN, "state folder %s: cannot mark %zu grants as told to the fleet (%s); a restart tells them again",
             s->dir, todo, mdb_strerror(rc));
    return rc == 0 ? 0 : -1;
}

/* ---- flags and history ----------------------------------------------------- */

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
    uint8_t buf[8 + 512];
    size_t n = strnlen(line, 512);
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
            if (v.mv_size < 8 || v.mv_size > 8 + 512)
                continue;
            char line[513];
            memcpy(line, (const uint8_t *)v.mv_data + 8, v.mv_size - 8);
            line[v.mv_size - 8] = 0;
            fn(ctx, rd_be(v.mv_data, 8), line);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
}

/* ---- open: databases, the upgrade from layout 1 ---------------------------- */

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
    if ((rc = number(s, txn, skey, stage_key(skey, dbname + 2), "next_stage", STAGE_IDS_MAX, &sid)) != 0)
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
    int rc = scope_id_txn(s, txn, o->upgrade_rollout, o->upgrade_to, &scope);
    for (size_t i = 0; i < l->n && rc == 0; i++)
        rc = upgrade_stage(s, txn, l->names[i], scope, (uint32_t)o->now, &moved);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: upgrading layout 1: %s", s->dir, mdb_strerror(rc));
    slog(s, UG_LOG_INFO,
         "state folder %s: upgraded from layout 1: %zu grants of %zu stages now belong to rollout %s, release %s",
         s->dir, moved, l->n, o->upgrade_rollout, o->upgrade_to);
    return 0;
}

static int open_dbs(ug_store *s, const ug_store_opts *o, char *err, size_t errcap)
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
    if (rc == 0 && (rc = get_u32(txn, s->db_meta, "layout", 6, &layout)) == MDB_NOTFOUND)
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
    if (rc == 0)
        rc = put_u32(txn, s->db_meta, "layout", 6, UG_STORE_LAYOUT);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: opening the databases: %s", s->dir, mdb_strerror(rc));
    return 0;
}

/* Every stage name numbered so far, and the last history entry. */
static int load_names(ug_store *s, char *err, size_t errcap)
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

static int open_env(ug_store *s, char *err, size_t errcap)
{
    const char *what = "mdb_env_create";
    int rc = mdb_env_create(&s->env);
    if (rc == 0 && (what = "mdb_env_set_mapsize", rc = mdb_env_set_mapsize(s->env, MAP_SIZE)) == 0 &&
        (what = "mdb_env_set_maxdbs", rc = mdb_env_set_maxdbs(s->env, MAX_DBS)) == 0)
        /* NOTLS: txns are not tied to threads (loads run on any thread) */
        what = "mdb_env_open", rc = mdb_env_open(s->env, s->dir, MDB_NOTLS, 0600);
    if (rc != 0) {
        if (s->env)
            mdb_env_close(s->env);
        s->env = NULL;
        return ug_store_fail(err, errcap, "state folder %s: %s: %s", s->dir, what, mdb_strerror(rc));
    }
    return 0;
}

static void store_free(ug_store *s)
{
    for (size_t i = 0; i < s->nscopes; i++)
        ug_scope_free(s->scopes[i]);
    free(s->scopes);
    for (size_t i = 0; i < s->nstage_names; i++)
        free(s->stage_names[i]);
    free(s->stage_names);
    for (unsigned w = 0; s->queues && w < s->nworkers; w++)
        free(s->queues[w].v);
    free(s->queues);
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&s->reg_mu);
    free(s);
}

ug_store *ug_store_open(const ug_store_opts *o, char *err, size_t errcap)
{
    if (!o || !o->dir || strlen(o->dir) >= UG_STORE_PATH_MAX) {
        ug_store_fail(err, errcap, "state folder: none given, or longer than %u bytes", UG_STORE_PATH_MAX - 1);
        return NULL;
    }
    if (o->nworkers < 1 || o->nworkers > UG_WORKERS_MAX) {
        ug_store_fail(err, errcap, "state folder %s: %u workers (want 1..%u)", o->dir, o->nworkers, UG_WORKERS_MAX);
        return NULL;
    }
    if (mkdir_p(o->dir, err, errcap) != 0)
        return NULL;
    ug_store *s = calloc(1, sizeof *s);
    if (!s) {
        ug_store_fail(err, errcap, "state folder %s: out of memory", o->dir);
        return NULL;
    }
    snprintf(s->dir, sizeof s->dir, "%s", o->dir);
    s->lock_fd = -1;
    s->nworkers = o->nworkers;
    s->log = o->log;
    s->log_ctx = o->log_ctx;
    (void)pthread_mutex_init(&s->reg_mu, NULL);
    s->queues = aligned_alloc(UG_CACHELINE, o->nworkers * sizeof(wqueue));
    if (!s->queues) {
        ug_store_fail(err, errcap, "state folder %s: out of memory", o->dir);
        goto fail;
    }
    memset(s->queues, 0, o->nworkers * sizeof(wqueue));
    if (lock_folder(s, err, errcap) != 0 || check_not_vanished(s, err, errcap) != 0 ||
        reserve_lockfile(s, err, errcap) != 0 || open_env(s, err, errcap) != 0 || check_size(s, err, errcap) != 0 ||
        open_dbs(s, o, err, errcap) != 0 || load_names(s, err, errcap) != 0 || write_marker(s, o->now, err, errcap) != 0)
        goto fail;
    return s;
fail:
    store_free(s);
    return NULL;
}

int ug_store_close(ug_store *s, char *err, size_t errcap)
{
    if (!s)
        return 0;
    int rc = 0;
    size_t lost = 0;
    for (unsigned w = 0; w < s->nworkers; w++)
        if (ug_store_commit(s, w) != 0) {
            rc = -1;
            lost += s->queues[w].n;
        }
    if (rc != 0)
        ug_store_fail(err, errcap,
                      "state folder %s: %zu grant records could not be stored (see the log for the cause); no HINT "
                      "was sent for a grant among them",
                      s->dir, lost);
    store_free(s);
    return rc;
}
