/* The load image: grants.img, data.mdb's grant records packed in key order at close, read back at the next start. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store_impl.h"
#include "upgate_plugin.h"

/*
 * Why an image: data.mdb holds a scope's grants in leaves scattered over
 * the file (121 MB for 1M grants written through the log), and a cursor
 * walk through the map leaves the whole file resident in this process until
 * the load ends: the peak of a start was the grant tables plus the file. The
 * image holds the same records, 24 bytes each, scope by scope; a load reads
 * its scope's part with pread() a chunk at a time, so nothing is mapped and
 * the peak is the tables plus one chunk.
 *
 * When it may be used: the close that writes it puts a random token in
 * meta "img" in a write transaction, scans the grants in that transaction,
 * writes the image with the token and that transaction's id, makes it
 * durable, renames it into place and only then commits. A start uses it
 * when meta "img" holds its token and data.mdb's last transaction is still
 * that one: any later write, by this upgate, an older one (which knows no
 * image) or a replay of the log, moves the id on. Within a run, the image
 * serves loads until the first grant record goes into data.mdb
 * (s->grants_written): a scope's records reach data.mdb only once it is
 * loaded, or through the drain before a load, which sets the flag first.
 *
 * File (version 2): a header (64 bytes), the records (the log's: scope id,
 * uid, grant_record, native order), one entry per scope (40 bytes: scope
 * id, first record, count, index of its first chunk sum), then the chunk
 * sums (chunk_sum) of each chunk of IMG_CHUNK_RECS records of a scope,
 * counted from the scope's first record (its last chunk shorter). The
 * header's sum is a keyed BLAKE2b over the rest of the header, the entries
 * and the chunk sums. A sum per chunk rather than per scope lets the two
 * threads of a big load each verify half of the chunks: version 1's one
 * BLAKE2b over ten million records was 0.4 s of CPU on one thread. A load
 * checks its scope's sums, scope ids and order while it inserts (the scope
 * is not shared yet): a mismatch empties the scope, drops the image
 * (logged) and the scope loads from data.mdb. An image of version 1 (one sum per scope) is
 * refused at open (logged) the same way, and the close writes version 2.
 */

#define IMG_MAGIC 0x31494755u /* "UGI1" */
#define IMG_VERSION 2u
#define IMG_NAME "grants.img"
#define IMG_CHUNK_RECS 43690u /* records per read: just under 1 MiB */
#define IMG_SCOPES_MAX (1u << 20)
#define IMG_RECS_MAX ((uint64_t)1 << 36)
#define IMG_SUM 16u
_Static_assert(IMG_SUM == crypto_shorthash_siphashx24_BYTES, "a chunk sum is SipHash-2-4-128");

typedef struct {
    uint64_t sum;
    uint32_t magic, version;
    uint64_t txnid;
    uint8_t token[16];
    uint64_t nrecs;
    uint32_t nscopes, pad;
    uint64_t nsums; /* chunk sums after the entries */
} img_head;
_Static_assert(sizeof(img_head) == 64, "image header layout");

struct ug_img_scope {
    uint32_t scope, pad;
    uint64_t first, count;
    uint64_t sum0; /* its first chunk's sum, then one per IMG_CHUNK_RECS records */
    uint64_t pad2;
};
_Static_assert(sizeof(struct ug_img_scope) == 40, "image entry layout");

static const unsigned char head_key[crypto_shorthash_KEYBYTES] = "upgate img sum";
static const unsigned char chunk_key[crypto_shorthash_siphashx24_KEYBYTES] = "upgate img chunk";

/* A chunk's sum: SipHash-2-4-128 under a fixed key, a checksum against
 * damage (the token and transaction id say whether the image is current):
 * 0.08 s of CPU over ten million records here, against 0.39 s for
 * BLAKE2b-128. */
static void chunk_sum(const uint8_t *recs, size_t n, uint8_t out[IMG_SUM])
{
    (void)crypto_shorthash_siphashx24(out, recs, n * UG_REC_LEN, chunk_key);
}

static void img_path(char *out, size_t cap, const ug_store *s, const char *suffix)
{
    snprintf(out, cap, "%s/" IMG_NAME "%s", s->dir, suffix);
}

/* The chunks of a scope of count records. */
static uint64_t nchunks(uint64_t count)
{
    return (count + IMG_CHUNK_RECS - 1) / IMG_CHUNK_RECS;
}

/* Over the header (but its sum), the entries and the chunk sums. */
static uint64_t head_sum(const img_head *h, const struct ug_img_scope *dir, const uint8_t *sums)
{
    crypto_generichash_state st;
    uint8_t out[crypto_generichash_BYTES_MIN];
    (void)crypto_generichash_init(&st, head_key, sizeof head_key, sizeof out);
    (void)crypto_generichash_update(&st, (const uint8_t *)h + 8, sizeof *h - 8);
    (void)crypto_generichash_update(&st, (const uint8_t *)dir, (size_t)h->nscopes * sizeof *dir);
    (void)crypto_generichash_update(&st, sums, (size_t)h->nsums * IMG_SUM);
    (void)crypto_generichash_final(&st, out, sizeof out);
    uint64_t v;
    memcpy(&v, out, sizeof v);
    return v;
}

/* All len bytes at off, read (wr false) or written; 0 or -1. */
static int io_full(int fd, void *buf, size_t len, uint64_t off, bool wr)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = wr ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n, len -= (size_t)n, off += (uint64_t)n;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t len, uint64_t off)
{
    return io_full(fd, buf, len, off, false);
}

static int write_full(int fd, const void *buf, size_t len, uint64_t off)
{
    return io_full(fd, (void *)buf, len, off, true);
}

void ug_image_close(ug_store *s)
{
    if (s->img.fd >= 0)
        close(s->img.fd);
    s->img.fd = -1;
    free(s->img.dir);
    s->img.dir = NULL;
    s->img.sums = NULL;
    s->img.nscopes = 0;
}

/* ---- opening ----------------------------------------------------------------- */

/* The entries follow one another over every record and chunk sum, scope
 * ids ascending. */
static bool dir_ok(const img_head *h, const struct ug_img_scope *dir)
{
    uint64_t next = 0, sum = 0;
    for (uint32_t i = 0; i < h->nscopes; i++) {
        if (dir[i].first != next || dir[i].count == 0 || dir[i].count > h->nrecs - next || dir[i].sum0 != sum ||
            (i > 0 && dir[i].scope <= dir[i - 1].scope))
            return false;
        next += dir[i].count;
        sum += nchunks(dir[i].count);
    }
    return next == h->nrecs && sum == h->nsums;
}

/* Whether data.mdb is still as the close that wrote h left it. */
static bool matches_env(ug_store *s, const img_head *h)
{
    MDB_envinfo info;
    MDB_txn *txn;
    if (mdb_env_info(s->env, &info) != 0 || (uint64_t)info.me_last_txnid != h->txnid)
        return false;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return false;
    MDB_val k = {3, "img"}, v;
    bool ok = mdb_get(txn, s->db_meta, &k, &v) == 0 && v.mv_size == sizeof h->token &&
              sodium_memcmp(v.mv_data, h->token, sizeof h->token) == 0;
    mdb_txn_abort(txn);
    return ok;
}

void ug_image_open(ug_store *s)
{
    char path[UG_STORE_PATH_MAX + 32];
    img_path(path, sizeof path, s, "");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    img_head h;
    struct stat st;
    struct ug_img_scope *dir = NULL;
    if (read_full(fd, &h, sizeof h, 0) != 0 || h.magic != IMG_MAGIC)
        goto stale;
    if (h.version != IMG_VERSION) { /* an older upgate's format: its close wrote it, data.mdb has it all */
        ug_store_logf(s, UG_LOG_INFO, "state folder %s: %s is of format %u, not %u; loading from data.mdb", s->dir,
                      IMG_NAME, h.version, IMG_VERSION);
        goto stale;
    }
    /* each chunk holds a record: nsums <= nrecs bounds the sizes below */
    size_t tail = (size_t)h.nscopes * sizeof *dir + (size_t)h.nsums * IMG_SUM;
    if (h.nscopes > IMG_SCOPES_MAX || h.nrecs > IMG_RECS_MAX || h.nsums > h.nrecs || fstat(fd, &st) != 0 ||
        (uint64_t)st.st_size != sizeof h + h.nrecs * UG_REC_LEN + tail)
        goto stale;
    if (!(dir = malloc(tail + 1)) || read_full(fd, dir, tail, sizeof h + h.nrecs * UG_REC_LEN) != 0 ||
        head_sum(&h, dir, (const uint8_t *)(dir + h.nscopes)) != h.sum || !dir_ok(&h, dir) || !matches_env(s, &h))
        goto stale;
    s->img = (ug_image){.fd = fd, .dir = dir, .sums = (const uint8_t *)(dir + h.nscopes), .nscopes = h.nscopes,
                        .txnid = h.txnid};
    return;
stale: /* written before data.mdb last changed (or damaged): loads read data.mdb */
    free(dir);
    close(fd);
}

/* ---- loading ----------------------------------------------------------------- */

static const struct ug_img_scope *find_scope(const ug_image *im, uint32_t id)
{
    size_t lo = 0, hi = im->nscopes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (im->dir[mid].scope == id)
            return &im->dir[mid];
        if (im->dir[mid].scope < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* One thread's share of a scope's load: it reads every chunk, inserts the
 * records of its stripes [lo, hi) and verifies the chunks k with k % nparts
 * == idx (sum, scope ids, order); a verification that fails stops every
 * part (stop) and the load starts over from data.mdb. */
typedef struct {
    alignas(UG_CACHELINE) ug_store *s; /* two parts written at every record share no cache line */
    const struct ug_img_scope *e;
    ug_loader ld;
    unsigned idx, nparts;
    _Atomic bool *stop;
    int rc; /* 0, -1 damaged or unreadable, -2 out of memory */
} img_part;

/* Checks one chunk's n records (scope id, uids ascending from *prev). */
static int check_chunk(const uint8_t *buf, size_t n, uint32_t scope, uint64_t *prev)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t sid;
        uint64_t uid;
        memcpy(&sid, buf + i * UG_REC_LEN, 4);
        memcpy(&uid, buf + i * UG_REC_LEN + 4, 8);
        if (sid != scope || uid <= *prev)
            return -1;
        *prev = uid;
    }
    return 0;
}

/* Whether chunk k (n records in buf) is as its sum says, of scope and
 * ascending from prev, the last uid of chunk k - 1 (0 for the first). */
static bool chunk_ok(const ug_image *im, const struct ug_img_scope *e, uint64_t k, const uint8_t *buf, size_t n,
                     uint64_t prev)
{
    uint8_t sum[IMG_SUM];
    chunk_sum(buf, n, sum);
    return sodium_memcmp(sum, im->sums + (e->sum0 + k) * IMG_SUM, sizeof sum) == 0 &&
           check_chunk(buf, n, e->scope, &prev) == 0;
}

/* Reads the scope's records a chunk at a time into buf, inserts those of
 * p's stripes and verifies p's chunks. */
static int read_part(img_part *p, uint8_t *buf)
{
    const struct ug_img_scope *e = p->e;
    uint64_t prev = 0; /* the last uid of the chunk before */
    if (ug_scope_presize(p->ld.sc, (size_t)e->count, p->ld.lo, p->ld.hi) != 0)
        return -2;
    for (uint64_t done = 0, k = 0; done < e->count; k++) {
        if (atomic_load_explicit(p->stop, memory_order_relaxed))
            return -1;
        size_t n = e->count - done < IMG_CHUNK_RECS ? (size_t)(e->count - done) : IMG_CHUNK_RECS;
        if (read_full(p->s->img.fd, buf, n * UG_REC_LEN, sizeof(img_head) + (e->first + done) * UG_REC_LEN) != 0)
            return -1;
        if (k % p->nparts == p->idx && !chunk_ok(&p->s->img, e, k, buf, n, prev))
            return -1;
        memcpy(&prev, buf + (n - 1) * UG_REC_LEN + 4, sizeof prev);
        for (size_t i = 0; i < n; i++) {
            uint32_t scope;
            uint64_t uid;
            grant_record r;
            ug_rec_decode(buf + i * UG_REC_LEN, &scope, &uid, &r);
            if (ug_loader_add(&p->ld, uid, &r) != 0)
                return -2;
        }
        done += n;
    }
    return ug_loader_finish(&p->ld) != 0 ? -2 : 0;
}

static void *run_part(void *arg)
{
    img_part *p = arg;
    uint8_t *buf = malloc((size_t)IMG_CHUNK_RECS * UG_REC_LEN);
    p->rc = buf ? read_part(p, buf) : -2;
    if (p->rc != 0)
        atomic_store(p->stop, true);
    free(buf);
    return NULL;
}

/* Below this a scope loads on the calling thread alone. */
#define IMG_PAR_MIN 65536u
/* Each of the two parts inserts half of the stripes and verifies half of
 * the chunks. */
#define IMG_SPLIT (NSTRIPES / 2)

/* Loads e into sc: a big scope on two threads, the caller's and one
 * started here and joined before this returns (upgate_plugin.h, the
 * threads rule): the inserts wait on memory, and the workers that will
 * share the cores do not run yet. 0, -1 damaged or unreadable, -2 out of
 * memory. */
static int load_parts(ug_store *s, ug_scope *sc, const struct ug_img_scope *e)
{
    _Atomic bool stop = false;
    img_part part[2];
    bool two = e->count >= IMG_PAR_MIN && sysconf(_SC_NPROCESSORS_ONLN) > 1;
    for (int i = 0; i < 2; i++) {
        part[i] = (img_part){.s = s, .e = e, .idx = (unsigned)i, .nparts = two ? 2 : 1, .stop = &stop};
        ug_loader_init(&part[i].ld, sc, i == 0 ? 0 : (two ? IMG_SPLIT : NSTRIPES), i == 0 && two ? IMG_SPLIT : NSTRIPES);
    }
    pthread_t t;
    bool started = two && pthread_create(&t, NULL, run_part, &part[1]) == 0;
    run_part(&part[0]);
    if (started)
        pthread_join(t, NULL);
    else if (two)
        run_part(&part[1]); /* no thread to be had: the second half here */
    return part[0].rc == -2 || part[1].rc == -2 ? -2 : part[0].rc | part[1].rc;
}

int ug_image_load(ug_store *s, ug_scope *sc, char *err, size_t errcap)
{
    if (s->img.fd < 0)
        return 0;
    if (atomic_load(&s->grants_written)) {
        ug_image_close(s); /* data.mdb moved on: it serves no load again */
        return 0;
    }
    const struct ug_img_scope *e = find_scope(&s->img, sc->id);
    if (!e)
        return 1; /* the image holds every grant of data.mdb: none of this scope */
    int rc = load_parts(s, sc, e);
    if (rc == -1) {
        ug_scope_unload(sc);
        ug_store_logf(s, UG_LOG_WARN, "state folder %s: %s is damaged (rollout %s release %s); loading from data.mdb",
                      s->dir, IMG_NAME, sc->rollout, sc->to);
        ug_image_close(s);
        return 0;
    }
    if (rc != 0)
        return ug_store_fail(err, errcap, "state folder %s: rollout %s release %s: reading %s: out of memory", s->dir,
                             sc->rollout, sc->to, IMG_NAME);
    return 1;
}

/* ---- writing ----------------------------------------------------------------- */

/* The records, entries and chunk sums of an image being written. */
typedef struct {
    int fd;
    uint8_t *buf;
    size_t nbuf;
    uint64_t nrecs;
    struct ug_img_scope *dir;
    uint32_t nscopes, capscopes;
    uint8_t *sums; /* [capsums][IMG_SUM] */
    uint64_t nsums, capsums;
} img_writer;

/* Ends the chunk in buf (the open one, if it has records): its sum, then
 * its records written; 0 or -1. buf holds one chunk of one scope. */
static int close_chunk(img_writer *w)
{
    if (!w->nbuf)
        return 0;
    chunk_sum(w->buf, w->nbuf, w->sums + w->nsums++ * IMG_SUM);
    uint64_t at = sizeof(img_head) + (w->nrecs - w->nbuf) * UG_REC_LEN;
    int rc = write_full(w->fd, w->buf, w->nbuf * UG_REC_LEN, at);
    w->nbuf = 0;
    return rc;
}

/* Room for one more chunk sum and, for a new scope, one more entry; 0 or -1. */
static int writer_grow(img_writer *w, bool new_scope)
{
    if (new_scope && w->nscopes == IMG_SCOPES_MAX)
        return -1;
    if (new_scope && w->nscopes == w->capscopes) {
        uint32_t cap = w->capscopes ? w->capscopes * 2 : 16;
        struct ug_img_scope *d = realloc(w->dir, cap * sizeof *d);
        if (!d)
            return -1;
        w->dir = d;
        w->capscopes = cap;
    }
    if (w->nsums == w->capsums) {
        uint64_t cap = w->capsums ? w->capsums * 2 : 64;
        uint8_t *d = realloc(w->sums, (size_t)cap * IMG_SUM);
        if (!d)
            return -1;
        w->sums = d;
        w->capsums = cap;
    }
    return 0;
}

/* Appends one record of scope; a new scope opens its entry, and every
 * IMG_CHUNK_RECS records of a scope a new chunk. */
static int add_rec(img_writer *w, uint32_t scope, uint64_t uid, const grant_record *r)
{
    bool new_scope = !w->nscopes || w->dir[w->nscopes - 1].scope != scope;
    if (new_scope || w->nbuf == IMG_CHUNK_RECS) {
        if (close_chunk(w) != 0 || writer_grow(w, new_scope) != 0)
            return -1;
        if (new_scope)
            w->dir[w->nscopes++] = (struct ug_img_scope){.scope = scope, .first = w->nrecs, .sum0 = w->nsums};
    }
    ug_rec_encode(w->buf + w->nbuf++ * UG_REC_LEN, scope, uid, r);
    w->dir[w->nscopes - 1].count++;
    w->nrecs++;
    return 0;
}

/* Every grant record txn sees, then the entries and the header. */
static int write_body(ug_store *s, MDB_txn *txn, img_writer *w, img_head *h)
{
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, s->db_grants, &cur) != 0)
        return -1;
    int rc = 0;
    const uint8_t *lo = NULL, *hi = NULL;
    for (int g = mdb_cursor_get(cur, &k, &v, MDB_FIRST); g == 0 && rc == 0; g = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        grant_record r;
        if (k.mv_size != 12 || v.mv_size != sizeof r) {
            rc = -1;
            break;
        }
        memcpy(&r, v.mv_data, sizeof r);
        const uint8_t *kp = k.mv_data;
        rc = add_rec(w, (uint32_t)rd_be(kp, 4), rd_be(kp + 4, 8), &r);
        lo = !lo || (const uint8_t *)v.mv_data < lo ? v.mv_data : lo;
        hi = (const uint8_t *)v.mv_data + sizeof r > hi ? (const uint8_t *)v.mv_data + sizeof r : hi;
        if (w->nrecs % UG_DROP_EVERY == 0) { /* as a load does: never the whole file resident */
            ug_store_drop_pages(lo, hi);
            lo = hi = NULL;
        }
    }
    mdb_cursor_close(cur);
    ug_store_drop_pages(lo, hi);
    if (rc != 0 || close_chunk(w) != 0)
        return -1;
    h->nrecs = w->nrecs;
    h->nscopes = w->nscopes;
    h->nsums = w->nsums;
    h->sum = head_sum(h, w->dir, w->sums);
    size_t dirlen = (size_t)w->nscopes * sizeof *w->dir;
    uint64_t at = sizeof *h + w->nrecs * UG_REC_LEN;
    if (write_full(w->fd, w->dir, dirlen, at) != 0 ||
        write_full(w->fd, w->sums, (size_t)w->nsums * IMG_SUM, at + dirlen) != 0 ||
        write_full(w->fd, h, sizeof *h, 0) != 0)
        return -1;
    return fdatasync(w->fd);
}

/* The folder itself, so that the rename is on disk before the commit. */
static int sync_dir(const ug_store *s)
{
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 ? fsync(fd) : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* In txn: meta "img" gets the token, the image is written and renamed
 * into place; the caller commits. */
static int write_image(ug_store *s, MDB_txn *txn, img_writer *w)
{
    char tmp[UG_STORE_PATH_MAX + 32], path[UG_STORE_PATH_MAX + 32];
    img_path(tmp, sizeof tmp, s, ".tmp");
    img_path(path, sizeof path, s, "");
    img_head h = {.magic = IMG_MAGIC, .version = IMG_VERSION, .txnid = (uint64_t)mdb_txn_id(txn)};
    randombytes_buf(h.token, sizeof h.token);
    MDB_val k = {3, "img"}, v = {sizeof h.token, h.token};
    if (mdb_put(txn, s->db_meta, &k, &v, 0) != 0)
        return -1;
    w->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->fd < 0)
        return -1;
    int rc = write_body(s, txn, w, &h);
    if (close(w->fd) != 0)
        rc = -1;
    w->fd = -1;
    if (rc == 0 && (rename(tmp, path) != 0 || sync_dir(s) != 0))
        rc = -1;
    if (rc != 0)
        (void)unlink(tmp);
    return rc;
}

void ug_image_write(ug_store *s)
{
    MDB_envinfo info;
    if (s->img.fd >= 0 && !atomic_load(&s->grants_written) && mdb_env_info(s->env, &info) == 0 &&
        (uint64_t)info.me_last_txnid == s->img.txnid)
        return; /* data.mdb is as the image has it */
    ug_image_close(s);
    img_writer w = {.fd = -1, .buf = malloc((size_t)IMG_CHUNK_RECS * UG_REC_LEN)};
    MDB_txn *txn = NULL;
    int rc = w.buf ? mdb_txn_begin(s->env, NULL, 0, &txn) : ENOMEM;
    if (rc == 0)
        rc = write_image(s, txn, &w) == 0 ? 0 : (errno ? errno : EIO);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (rc != 0)
        ug_store_logf(s, UG_LOG_WARN, "state folder %s: cannot write %s (%s); the next start loads from data.mdb",
                      s->dir, IMG_NAME, mdb_strerror(rc));
    free(w.buf);
    free(w.dir);
    free(w.sums);
}
