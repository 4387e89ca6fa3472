/* The log of grant records: a grant is durable after one synchronous append; data.mdb gets the records behind it (checkpoints). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store_impl.h"
#include "upgate_plugin.h"

/*
 * Why a log: a HINT leaves only once its grant is on disk. An LMDB commit
 * waits for the disk twice (its pages, then its meta page) and rewrites a
 * 4 KiB page per scattered uid; an append waits once, for 24 bytes per
 * record and 32 per batch. data.mdb gets the records later, thousands per
 * transaction (a checkpoint), and loads stay what they were.
 *
 * Files: generation g is written to grants.wal.(g % 2), batch after batch
 * from offset 0. A batch is a header (sum, magic, n, gen, seq) and n
 * records (scope id, uid, grant_record); seq counts a generation's batches
 * from 0; sum is SipHash over everything after it. meta "wal" (u64) is the
 * oldest generation data.mdb may lack: every one below it is in data.mdb.
 * A checkpoint closes the generation being written (the writer goes on in
 * the other file, from offset 0), writes the closed one into data.mdb and
 * moves "wal" past it in the same transaction. Replay at open reads
 * generations "wal" and "wal" + 1 the same way: a batch counts when its
 * header and sum hold and its seq is the next; the first one that does not
 * ends the generation (a write torn by a crash, which no reply waited for,
 * or the leftovers of the generation two before).
 * Writes are whole 4 KiB blocks, with O_DIRECT | O_DSYNC where the file
 * system takes it (one device write, nothing through the page cache), else
 * O_DSYNC. Files grow by zeros written ahead, so an append changes no
 * metadata the file system would have to commit first.
 */

#define WAL_MAGIC 0x31574755u /* "UGW1" */
#define WAL_HEAD 32u
#define WAL_REC UG_REC_LEN
#define WAL_BLOCK 4096u
#define WAL_GROW ((uint64_t)256 << 10) /* zeros written ahead at a time */
#define WAL_READ ((size_t)256 << 10)   /* replay reads this much at a time */
#define WAL_MAX_REC (1u << 26)
#define CK_SOFT ((uint64_t)1 << 20)        /* tick checkpoints past 1 MiB ... */
#define CK_AGE_NS UINT64_C(1000000000)     /* ... or a second after the first batch */
#define CK_HARD ((uint64_t)4 << 20)        /* the committing worker does past 4 MiB */
#define CK_RETRY_NS UINT64_C(1000000000)   /* after a failed checkpoint */
#define APPLY_CHUNK 16384u                 /* puts per transaction: far from LMDB's dirty page limit */

static const unsigned char sum_key[crypto_shorthash_KEYBYTES] = "upgate wal sum";

typedef struct {
    uint64_t sum;
    uint32_t magic, n;
    uint64_t gen, seq;
} wal_head;
_Static_assert(sizeof(wal_head) == WAL_HEAD, "wal header layout");

uint64_t ug_mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * UINT64_C(1000000000) + (uint64_t)t.tv_nsec;
}

static uint64_t batch_sum(const uint8_t *b, size_t len)
{
    uint64_t sum;
    crypto_shorthash((unsigned char *)&sum, b + 8, len - 8, sum_key);
    return sum;
}

static uint64_t round_up(uint64_t v)
{
    return (v + WAL_BLOCK - 1) / WAL_BLOCK * WAL_BLOCK;
}

static void wal_path(char *out, size_t cap, const ug_store *s, unsigned f)
{
    snprintf(out, cap, "%s/grants.wal.%u", s->dir, f);
}

/* ---- reading: replay and checkpoint ------------------------------------- */

typedef struct {
    int fd;
    uint8_t *buf;
    size_t cap;
    uint64_t at, len; /* the file bytes buf holds */
} wal_reader;

/* len bytes of the file at off, or NULL past its end (or on a read error:
 * the generation ends there, as with a torn write). */
static const uint8_t *rd_get(wal_reader *r, uint64_t off, size_t len)
{
    if (off >= r->at && off + len <= r->at + r->len)
        return r->buf + (off - r->at);
    size_t want = len > WAL_READ ? len : WAL_READ;
    if (want > r->cap) {
        uint8_t *b = realloc(r->buf, want);
        if (!b)
            return NULL;
        r->buf = b;
        r->cap = want;
    }
    ssize_t got = pread(r->fd, r->buf, want, (off_t)off);
    r->at = off;
    r->len = got > 0 ? (uint64_t)got : 0;
    return r->len >= len ? r->buf : NULL;
}

/* The batch at off if it is whole and the one expected: its record count
 * (records at *recs), else 0. */
static uint32_t batch_at(wal_reader *r, uint64_t off, uint64_t gen, uint64_t seq, const uint8_t **recs)
{
    const uint8_t *p = rd_get(r, off, WAL_HEAD);
    wal_head h;
    if (!p)
        return 0;
    memcpy(&h, p, sizeof h);
    if (h.magic != WAL_MAGIC || h.gen != gen || h.seq != seq || h.n == 0 || h.n > WAL_MAX_REC)
        return 0;
    size_t len = WAL_HEAD + (size_t)h.n * WAL_REC;
    if (!(p = rd_get(r, off, len)) || batch_sum(p, len) != h.sum)
        return 0;
    *recs = p + WAL_HEAD;
    return h.n;
}

/* Puts records into data.mdb, a transaction per APPLY_CHUNK. */
typedef struct {
    ug_store *s;
    MDB_txn *txn;
    size_t n, total;
} applier;

static int ap_put(applier *a, const uint8_t *rec)
{
    int rc = 0;
    if (!a->txn && (rc = mdb_txn_begin(a->s->env, NULL, 0, &a->txn)) != 0)
        return rc;
    uint32_t scope;
    uint64_t uid;
    grant_record r;
    ug_rec_decode(rec, &scope, &uid, &r);
    uint8_t key[12];
    be32(key, scope);
    be64(key + 4, uid);
    MDB_val kv = {sizeof key, key}, vv = {sizeof r, &r};
    if (uid == 0 || (rc = mdb_put(a->txn, a->s->db_grants, &kv, &vv, 0)) != 0)
        return uid == 0 ? 0 : rc;
    atomic_store(&a->s->grants_written, true); /* the load image no longer holds data.mdb */
    a->total++;
    if (++a->n < APPLY_CHUNK)
        return 0;
    a->n = 0;
    rc = mdb_txn_commit(a->txn);
    a->txn = NULL;
    return rc;
}

/* The last transaction, which moves meta "wal" to next. */
static int ap_finish(applier *a, uint64_t next)
{
    int rc = 0;
    if (!a->txn && (rc = mdb_txn_begin(a->s->env, NULL, 0, &a->txn)) != 0)
        return rc;
    MDB_val k = {3, "wal"}, v = {sizeof next, &next};
    rc = mdb_put(a->txn, a->s->db_meta, &k, &v, 0);
    rc = rc == 0 ? mdb_txn_commit(a->txn) : (mdb_txn_abort(a->txn), rc);
    a->txn = NULL;
    return rc;
}

static void ap_abort(applier *a)
{
    if (a->txn)
        mdb_txn_abort(a->txn);
    a->txn = NULL;
}

/* Puts generation gen's batches, as its file holds them, through a.
 * *batches gets how many there were. */
static int apply_gen(ug_store *s, applier *a, uint64_t gen, size_t *batches)
{
    char path[UG_STORE_PATH_MAX + 32];
    wal_path(path, sizeof path, s, (unsigned)(gen % 2));
    wal_reader r = {.fd = open(path, O_RDONLY | O_CLOEXEC)};
    *batches = 0;
    if (r.fd < 0)
        return errno == ENOENT ? 0 : errno;
    int rc = 0;
    uint64_t off = 0;
    const uint8_t *recs;
    for (uint32_t n; rc == 0 && (n = batch_at(&r, off, gen, *batches, &recs)) > 0; (*batches)++) {
        for (uint32_t i = 0; i < n && rc == 0; i++)
            rc = ap_put(a, recs + (size_t)i * WAL_REC);
        off += WAL_HEAD + (uint64_t)n * WAL_REC;
    }
    close(r.fd);
    free(r.buf);
    return rc;
}

/* ---- writing -------------------------------------------------------------- */

static int open_file(ug_store *s, unsigned f, bool direct, bool create)
{
    char path[UG_STORE_PATH_MAX + 32];
    wal_path(path, sizeof path, s, f);
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_DSYNC | (create ? O_CREAT : 0);
#ifdef O_DIRECT
    if (direct)
        flags |= O_DIRECT;
#endif
    return open(path, flags, 0600);
}

/* Both files, with O_DIRECT when the file system takes it. */
static int open_files(ug_store *s, bool create)
{
    ug_wal *w = &s->wal;
    for (int pass = 0; pass < 2; pass++) {
        w->direct = pass == 0;
        for (unsigned f = 0; f < 2; f++) {
            w->fd[f] = open_file(s, f, w->direct, create);
            struct stat st;
            if (w->fd[f] >= 0 && fstat(w->fd[f], &st) == 0)
                w->size[f] = (uint64_t)st.st_size / WAL_BLOCK * WAL_BLOCK;
        }
        if (w->fd[0] >= 0 && w->fd[1] >= 0)
            return 0;
        int e = errno;
        for (unsigned f = 0; f < 2; f++)
            if (w->fd[f] >= 0)
                close(w->fd[f]);
        w->fd[0] = w->fd[1] = -1;
        if (e != EINVAL)
            return e;
    }
    return EINVAL;
}

/* Writes len bytes at off in file f, whole; falls back from O_DIRECT to
 * O_DSYNC alone once, should the file system refuse the former. A write
 * cut short has put down a prefix of b: the bytes before the new batch
 * are those already on disk, so nothing durable is overwritten by others. */
static int write_at(ug_store *s, unsigned f, const uint8_t *b, size_t len, uint64_t off)
{
    ug_wal *w = &s->wal;
    while (len > 0) {
        ssize_t n = pwrite(w->fd[f], b, len, (off_t)off);
        if (n > 0) {
            b += n, len -= (size_t)n, off += (uint64_t)n;
            continue;
        }
        int e = n < 0 ? errno : EIO;
        if (e == EINTR)
            continue;
        if (e != EINVAL || !w->direct)
            return e;
        close(w->fd[0]);
        close(w->fd[1]);
        w->fd[0] = open_file(s, 0, false, false);
        w->fd[1] = open_file(s, 1, false, false);
        w->direct = false;
        if (w->fd[0] < 0 || w->fd[1] < 0)
            return errno;
    }
    return 0;
}

/* Zeros written ahead in file f up to at least end. */
static int grow(ug_store *s, unsigned f, uint64_t end)
{
    ug_wal *w = &s->wal;
    uint64_t to = w->size[f] + WAL_GROW > end ? w->size[f] + WAL_GROW : round_up(end);
    size_t len = (size_t)(to - w->size[f]);
    uint8_t *z = aligned_alloc(WAL_BLOCK, len);
    if (!z)
        return ENOMEM;
    memset(z, 0, len);
    int rc = write_at(s, f, z, len, w->size[f]);
    free(z);
    if (rc == 0)
        w->size[f] = to;
    return rc;
}

/* Room in w->buf for len bytes (whole blocks). */
static int reserve(ug_wal *w, size_t len)
{
    if (len <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 4 * WAL_BLOCK;
    while (cap < len)
        cap *= 2;
    uint8_t *b = aligned_alloc(WAL_BLOCK, cap);
    if (!b)
        return ENOMEM;
    free(w->buf);
    w->buf = b;
    w->cap = cap;
    return 0;
}

/* Lays out the batch of parts in w->buf at off (after the tail block's
 * first off bytes); returns its record count. */
static uint32_t build_batch(ug_wal *w, const ug_part *parts, size_t off)
{
    memcpy(w->buf, w->tail, off);
    uint8_t *p = w->buf + off + WAL_HEAD;
    uint32_t n = 0;
    for (const ug_part *pt = parts; pt; pt = pt->next)
        for (size_t i = 0; i < pt->n; i++) {
            grant_record r;
            if (!ug_scope_record(pt->v[i].sc, pt->v[i].uid, &r))
                continue; /* learned: never written here */
            ug_rec_encode(p, pt->v[i].sc->id, pt->v[i].uid, &r);
            p += WAL_REC;
            n++;
        }
    if (n == 0)
        return 0;
    wal_head h = {.magic = WAL_MAGIC, .n = n, .gen = w->gen, .seq = w->seq};
    memcpy(w->buf + off, &h, sizeof h);
    size_t len = WAL_HEAD + (size_t)n * WAL_REC;
    h.sum = batch_sum(w->buf + off, len);
    memcpy(w->buf + off, &h.sum, sizeof h.sum);
    return n;
}

int ug_wal_append(ug_store *s, const ug_part *parts, bool *full, const char **what, int *eno)
{
    ug_wal *w = &s->wal;
    size_t want = 0;
    for (const ug_part *pt = parts; pt; pt = pt->next)
        want += pt->n;
    pthread_mutex_lock(&w->mu);
    unsigned f = (unsigned)(w->gen % 2);
    size_t off = (size_t)(w->pos % WAL_BLOCK);
    uint64_t at = w->pos - off;
    int rc = reserve(w, (size_t)round_up(off + WAL_HEAD + want * WAL_REC));
    uint32_t n = rc == 0 ? build_batch(w, parts, off) : 0;
    size_t end = off + WAL_HEAD + (size_t)n * WAL_REC, len = (size_t)round_up(end);
    *what = "allocating the log's buffer";
    if (rc == 0 && n > 0) {
        memset(w->buf + end, 0, len - end);
        *what = "growing the log";
        if (at + len > w->size[f])
            rc = grow(s, f, at + len);
        *what = "writing the log";
        if (rc == 0)
            rc = write_at(s, f, w->buf, len, at);
    }
    if (rc == 0 && n > 0) {
        if (end % WAL_BLOCK)
            memcpy(w->tail, w->buf + end / WAL_BLOCK * WAL_BLOCK, WAL_BLOCK);
        else
            memset(w->tail, 0, WAL_BLOCK);
        w->first_at = w->seq++ ? w->first_at : ug_mono_ns();
        w->pos = at + end;
    }
    *full = w->pos >= CK_HARD;
    pthread_mutex_unlock(&w->mu);
    *eno = rc;
    return rc == 0 ? 0 : -1;
}

/* ---- checkpoints ------------------------------------------------------------ */

/* The writer moves on to the next generation, in the other file. */
static void switch_gen(ug_wal *w)
{
    w->gen++;
    w->seq = 0;
    w->pos = 0;
    w->first_at = 0;
    memset(w->tail, 0, WAL_BLOCK);
}

/* Writes closed generation gen into data.mdb, moving "wal" past it. */
static int checkpoint_gen(ug_store *s, uint64_t gen)
{
    applier a = {.s = s};
    size_t batches;
    int rc = apply_gen(s, &a, gen, &batches);
    rc = rc == 0 ? ap_finish(&a, gen + 1) : rc;
    if (rc != 0)
        ap_abort(&a);
    return rc;
}

int ug_wal_checkpoint(ug_store *s, bool due_only)
{
    ug_wal *w = &s->wal;
    int rc = 0;
    uint64_t now = ug_mono_ns();
    pthread_mutex_lock(&w->ck_mu);
    pthread_mutex_lock(&w->mu);
    bool due = w->pos >= CK_SOFT || (w->seq > 0 && now - w->first_at >= CK_AGE_NS);
    bool retry_ok = !w->ck_failed_at || now - w->ck_failed_at >= CK_RETRY_NS || !due_only;
    if (w->seq > 0 && w->gen == w->ck_gen && (due || !due_only) && retry_ok)
        switch_gen(w);
    uint64_t upto = retry_ok ? w->gen : w->ck_gen;
    pthread_mutex_unlock(&w->mu);
    while (rc == 0 && w->ck_gen < upto) {
        if ((rc = checkpoint_gen(s, w->ck_gen)) != 0)
            break;
        pthread_mutex_lock(&w->mu);
        w->ck_gen++;
        pthread_mutex_unlock(&w->mu);
    }
    if (rc != 0) {
        if (!w->ck_failed_at)
            ug_store_logf(s, UG_LOG_ERROR,
                          "state folder %s: cannot move the log's grants into data.mdb (%s); they stay in the log",
                          s->dir, rc == ENOMEM ? "out of memory" : mdb_strerror(rc));
        w->ck_failed_at = now;
    } else if (w->ck_failed_at && w->ck_gen == upto) {
        ug_store_logf(s, UG_LOG_INFO, "state folder %s: the log's grants are in data.mdb again", s->dir);
        w->ck_failed_at = 0;
    }
    pthread_mutex_unlock(&w->ck_mu);
    return rc == 0 ? 0 : -1;
}

/* ---- open and close ------------------------------------------------------------ */

/* meta "wal": 0 and *found false when absent (a folder of layout 2). */
static int read_meta(ug_store *s, uint64_t *gen, bool *found)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return rc;
    MDB_val k = {3, "wal"}, v;
    rc = mdb_get(txn, s->db_meta, &k, &v);
    *found = rc == 0;
    if (rc == 0 && v.mv_size != sizeof *gen)
        rc = MDB_CORRUPTED;
    if (rc == 0)
        memcpy(gen, v.mv_data, sizeof *gen);
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Generations ck and ck + 1 into data.mdb; "wal" moves to ck + 2 when
 * they held anything, or is made when absent. *replayed: records. */
static int replay(ug_store *s, uint64_t *ck, bool found, size_t *replayed)
{
    applier a = {.s = s};
    size_t b0 = 0, b1 = 0;
    int rc = apply_gen(s, &a, *ck, &b0);
    if (rc == 0)
        rc = apply_gen(s, &a, *ck + 1, &b1);
    if (rc == 0 && (b0 || b1 || !found))
        rc = ap_finish(&a, b0 || b1 ? *ck + 2 : *ck);
    if (rc != 0) {
        ap_abort(&a);
        return rc;
    }
    *ck += b0 || b1 ? 2 : 0;
    *replayed = a.total;
    return 0;
}

static int missing_file(ug_store *s, char *err, size_t errcap)
{
    for (unsigned f = 0; f < 2; f++) {
        char path[UG_STORE_PATH_MAX + 32];
        wal_path(path, sizeof path, s, f);
        if (access(path, F_OK) != 0)
            return ug_store_fail(err, errcap,
                                 "state folder %s: %s is missing; it may hold the last grants made. Restore it, or "
                                 "create it empty to start from data.mdb alone",
                                 s->dir, path);
    }
    return 0;
}

void ug_wal_init(ug_store *s)
{
    ug_wal *w = &s->wal;
    w->fd[0] = w->fd[1] = -1;
    (void)pthread_mutex_init(&w->mu, NULL);
    (void)pthread_mutex_init(&w->ck_mu, NULL);
}

/* The files exist before meta "wal" names a generation: a folder that has
 * the key and lacks a file lost it. */
int ug_wal_open(ug_store *s, char *err, size_t errcap)
{
    ug_wal *w = &s->wal;
    uint64_t ck = 1;
    bool found;
    size_t replayed = 0;
    int rc = read_meta(s, &ck, &found);
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: reading the log's place: %s", s->dir, mdb_strerror(rc));
    if (found && missing_file(s, err, errcap) != 0)
        return -1;
    if (!(w->tail = aligned_alloc(WAL_BLOCK, WAL_BLOCK)))
        return ug_store_fail(err, errcap, "state folder %s: out of memory", s->dir);
    memset(w->tail, 0, WAL_BLOCK);
    if ((rc = open_files(s, true)) != 0)
        return ug_store_fail(err, errcap, "state folder %s: cannot open grants.wal.*: %s", s->dir, strerror(rc));
    if ((rc = replay(s, &ck, found, &replayed)) != 0)
        return ug_store_fail(err, errcap, "state folder %s: replaying the log into data.mdb: %s", s->dir,
                             rc == ENOMEM ? "out of memory" : mdb_strerror(rc));
    if (replayed)
        ug_store_logf(s, UG_LOG_INFO, "state folder %s: %zu grant records replayed from the log", s->dir, replayed);
    w->gen = w->ck_gen = ck;
    return 0;
}

int ug_wal_drain(ug_store *s)
{
    ug_wal *w = &s->wal;
    pthread_mutex_lock(&w->mu);
    uint64_t g0 = w->gen;
    pthread_mutex_unlock(&w->mu);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        bool more = w->ck_gen <= g0 && (w->ck_gen < w->gen || w->seq > 0);
        pthread_mutex_unlock(&w->mu);
        if (!more)
            return 0;
        if (ug_wal_checkpoint(s, false) != 0)
            return -1;
    }
}

void ug_wal_close(ug_store *s)
{
    ug_wal *w = &s->wal;
    if (w->tail) /* opened: everything goes into data.mdb */
        (void)ug_wal_drain(s);
    for (unsigned f = 0; f < 2; f++)
        if (w->fd[f] >= 0)
            close(w->fd[f]);
    free(w->tail);
    free(w->buf);
    pthread_mutex_destroy(&w->mu);
    pthread_mutex_destroy(&w->ck_mu);
}
