/* The store's insides, shared by its files: the structs, and each file's functions the others call. */
#ifndef UG_STORE_IMPL_H
#define UG_STORE_IMPL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#include "store/store.h"

#define UG_CACHELINE 64
#define STRIPE_BITS 6
#define NSTRIPES (1u << STRIPE_BITS)
#define STAGE_IDS_MAX 65535u /* stage ids are 16 bits in a grant record */

/* One grant in memory: 24 bytes, so a million cost 24 MB at full load.
 * uid 0 is never a uid (1..2^63-1), so it marks an empty slot. */
typedef struct {
    uint64_t uid;
    uint32_t at;
    uint16_t stage;
    uint8_t state; /* low 4 bits: ug_outcome; high: GF_* */
    uint8_t worker; /* GF_QUEUED: the worker whose queue holds it */
    uint32_t out_at; /* when the outcome was last set, on this host's clock (0: never) */
    uint32_t out_ts; /* the ts of the REPORT or HELLO that set it (loaded: out_at) */
} grant_entry;

#define GF_OUTCOME 0x0fu
#define GF_PENDING 0x10u /* the grant itself is not durable yet */
#define GF_QUEUED 0x20u  /* a record of it waits in `worker`'s queue */
#define GF_LEARNED 0x40u /* granted elsewhere, learned here: never written here */
#define GF_PUBLISHED 0x80u /* this store's grant, marked published */

/* A grant record on disk: the value under key scope id (4, big endian) ||
 * uid (8, big endian) in the "grants" database. */
typedef struct {
    uint32_t at;
    uint32_t outcome_at;
    uint16_t stage;
    uint8_t outcome;
    uint8_t flags; /* GR_*; other bits reserved, 0 */
} grant_record;
#define GR_PUBLISHED 0x01u /* marked published (GF_PUBLISHED) */
_Static_assert(sizeof(grant_record) == 12, "grant record layout");

/* A grant record as the log and the load image hold it: scope id (4), uid
 * (8), grant_record (12), in native byte order. */
#define UG_REC_LEN 24u
static inline void ug_rec_encode(uint8_t *p, uint32_t scope, uint64_t uid, const grant_record *r)
{
    memcpy(p, &scope, 4);
    memcpy(p + 4, &uid, 8);
    memcpy(p + 12, r, sizeof *r);
}
static inline void ug_rec_decode(const uint8_t *p, uint32_t *scope, uint64_t *uid, grant_record *r)
{
    memcpy(scope, p, 4);
    memcpy(uid, p + 4, 8);
    memcpy(r, p + 12, sizeof *r);
}

typedef struct {
    alignas(UG_CACHELINE) pthread_mutex_t mu;
    grant_entry *tab; /* open addressing, linear probing */
    size_t cap; /* power of two, or 0 */
    size_t used;
} stripe;

typedef struct {
    alignas(UG_CACHELINE) _Atomic int64_t v; /* slots left; only its worker takes lock-free */
} shard;

/* Offers per second over the last minute and per minute over the last hour. */
typedef struct {
    uint32_t sec[60], min[60];
    uint64_t sec_at[60], min_at[60]; /* which second / minute a cell counts */
} offer_ring;

struct ug_stage_quota {
    ug_scope *sc;
    uint16_t id;
    bool marked;
    _Atomic uint64_t limit;   /* the share; UG_QUOTA_UNLIMITED: grants skip slots;
                                 QUOTA_SOURCED: slots come from src */
    _Atomic uint64_t n;       /* this store's grants of this stage in the scope */
    _Atomic uint64_t npub;    /* those of them marked published */
    const ug_slot_source *src; /* where sourced slots come from; NULL otherwise. Set once. */
    _Atomic int outlook;      /* sourced: ug_shortfall, the source's word */
    _Atomic uint64_t wanted;  /* sourced: peers held back since the source last looked */
    _Atomic int64_t hold_since; /* sourced: when the open hold window opened (ug_mono_ms), 0: none */
    uint64_t src_quota;       /* sourced: the quota its slots were lent under (reload only) */
    pthread_mutex_t steal_mu; /* serializes moves between shards */
    shard *slots;             /* [nworkers] */
    pthread_mutex_t ring_mu;  /* new offers only: rare next to HELLOs */
    offer_ring offers;
};

struct ug_scope {
    stripe stripes[NSTRIPES];
    ug_store *st;
    uint32_t id;
    bool marked;
    char rollout[UG_VER_MAX + 40];
    char to[UG_VER_MAX + 1];
    _Atomic uint64_t queued; /* records of this scope waiting in some queue */
    _Atomic uint64_t out[UG_OUT_COUNT_]; /* grants per outcome */
    pthread_mutex_t stages_mu;
    ug_stage_quota **stages;
    size_t nstages, capstages;
};

typedef struct {
    ug_scope *sc;
    uint64_t uid;
} pend;

typedef struct {
    alignas(UG_CACHELINE) pend *v;
    size_t n, cap;
    bool failing;        /* the last commit failed: log the recovery */
    atomic_bool coming;  /* queued records since it last joined a group: a lingering leader waits for it */
} wqueue;

/* One caller's records in a group commit (commit.c): a worker's queue, or
 * the grants a published mark rewrites. Lives on the caller's stack until
 * done; the leader of its group sets rc and done. */
typedef struct ug_part ug_part;
struct ug_part {
    const pend *v;
    size_t n;
    unsigned worker; /* whose queue (its GF_QUEUED marks clear); PART_NO_WORKER: none */
    bool tell;       /* on_commit hears of these records */
    bool done;
    int rc;
    ug_part *next;
};
#define PART_NO_WORKER 0xffffffffu

/* Commits coalesce: whoever finds no commit running leads the next one,
 * with every part that joined while the last one was on its way to disk. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a group done; a part joined (a lingering leader counts it) */
    ug_part *head, **tail; /* the open group */
    size_t n;              /* records in it */
    bool leading;          /* a leader is writing a group */
    uint64_t last_start;   /* monotonic ns the last group's write began */
    uint64_t linger_ns;    /* how long a leader may wait for company (LINGER_NS; tests lengthen it) */
} ug_group;

/* The log that makes grant records durable (wal.c): generation g is
 * written to grants.wal.(g % 2); every generation below ck_gen is in
 * data.mdb. */
typedef struct {
    pthread_mutex_t mu;    /* the writer: one group's append at a time, and the switch */
    pthread_mutex_t ck_mu; /* one checkpoint at a time */
    int fd[2];
    bool direct;           /* fd opened with O_DIRECT */
    uint64_t size[2];      /* bytes of zeros written ahead in each file */
    uint64_t gen, seq, pos; /* the generation written, its next batch number and offset */
    uint64_t ck_gen;       /* changed under mu and ck_mu; read under either */
    uint64_t first_at;     /* monotonic ns of gen's first batch */
    uint64_t ck_failed_at; /* monotonic ns of the last failed checkpoint */
    uint8_t *tail;         /* the block holding pos, as on disk */
    uint8_t *buf;          /* the blocks of the batch being written */
    size_t cap;
} ug_wal;

/* The load image (image.c): grants.img, valid for this run's loads. */
struct ug_img_scope;
typedef struct {
    int fd; /* -1: none (absent, stale, damaged, or data.mdb changed since) */
    struct ug_img_scope *dir; /* [nscopes], scope ids ascending; the chunk sums follow in the same block */
    const uint8_t *sums;      /* [nsums][16]: BLAKE2b-128 of each chunk of a scope's records */
    uint32_t nscopes;
    uint64_t txnid; /* data.mdb's last transaction the image reflects */
} ug_image;

struct ug_store {
    MDB_env *env;
    MDB_dbi db_meta, db_names, db_grants, db_flags, db_history;
    char dir[UG_STORE_PATH_MAX];
    int lock_fd;
    unsigned nworkers;
    wqueue *queues; /* [nworkers] */
    ug_store_log log;
    void *log_ctx;
    pthread_mutex_t reg_mu; /* scopes, stage names, first opens of LMDB dbs */
    ug_scope **scopes;
    size_t nscopes, capscopes;
    char **stage_names; /* by id; [0] unused */
    size_t nstage_names, capstage_names;
    uint32_t next_scope_id;
    _Atomic uint64_t commit_failures;
    _Atomic bool commit_failing; /* the last group commit failed: log the recovery */
    uint64_t history_seq;
    ug_store_committed_fn on_commit; /* who is told of each commit, or NULL */
    void *on_commit_ctx;
    ug_group group;
    ug_wal wal;
    ug_image img;
    _Atomic bool grants_written; /* a grant record went into data.mdb in this run */
};

#define QUOTA_SOURCED (UG_QUOTA_UNLIMITED - 1u)
#define KEY_MAX (2 + 2 * 64 + 2) /* a key of the names database */

struct ug_commit_batch {
    const pend *v;
    size_t n;
};

/* ---- big-endian integers in keys and records ----------------------------- */

static inline void be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t rd_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Every stripe of the scope, in order (a grant holds one stripe, then maybe
 * a stage's steal mutex: no cycle). */
static inline void ug_scope_lock_all(ug_scope *sc)
{
    for (unsigned i = 0; i < NSTRIPES; i++)
        pthread_mutex_lock(&sc->stripes[i].mu);
}

static inline void ug_scope_unlock_all(ug_scope *sc)
{
    for (unsigned i = NSTRIPES; i-- > 0;)
        pthread_mutex_unlock(&sc->stripes[i].mu);
}

/* ---- kv.c --------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) int ug_store_fail(char *err, size_t cap, const char *fmt, ...);
/* One line to the store's log (level as ug_log_level), when it has one. */
__attribute__((format(printf, 3, 4))) void ug_store_logf(ug_store *s, int level, const char *fmt, ...);
int ug_store_get_u32(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, uint32_t *out);
int ug_store_put_u32(MDB_txn *txn, MDB_dbi db, const void *key, size_t klen, uint32_t val);

/* ---- names.c ------------------------------------------------------------------ */

/* The id under key in names, numbering it from the counter `next` in meta
 * when it is new; in txn. */
int ug_store_number(ug_store *s, MDB_txn *txn, const uint8_t *key, size_t klen, const char *next, uint32_t max,
                    uint32_t *id);
/* "s:" NAME, the key of a stage name; its length. */
size_t ug_store_stage_key(uint8_t *key, const char *name);
/* The id of a scope's (rollout, to), numbered once in txn, or in a
 * transaction of its own. */
/* The id of a scope's (rollout, to) if numbered, in txn; MDB_NOTFOUND if not. */
int ug_store_scope_find(ug_store *s, MDB_txn *txn, const char *rollout, const char *to, uint32_t *id);
int ug_store_scope_id_txn(ug_store *s, MDB_txn *txn, const char *rollout, const char *to, uint32_t *id);
int ug_store_scope_id(ug_store *s, const char *rollout, const char *to, uint32_t *id, char *err, size_t errcap);
/* Every stage name numbered so far, and the last history entry. */
int ug_store_load_names(ug_store *s, char *err, size_t errcap);

/* ---- layout.c ----------------------------------------------------------------- */

/* Opens (creates) the five databases and upgrades a layout-1 folder. */
int ug_store_open_dbs(ug_store *s, const ug_store_opts *o, char *err, size_t errcap);

/* ---- scopes.c ----------------------------------------------------------------- */

/* Reads the scope's grants from disk into sc (not yet shared). */
int ug_store_load_scope(ug_store *s, ug_scope *sc, char *err, size_t errcap);
/* Gives back the map's pages in [lo, hi) that a scan read: they are the
 * page cache's to keep, not this process's. A scan over data.mdb's grants
 * does so every UG_DROP_EVERY records. */
void ug_store_drop_pages(const void *lo, const void *hi);
#define UG_DROP_EVERY 16384u

/* ---- image.c ------------------------------------------------------------------ */

/* Takes grants.img when data.mdb is still as the close that wrote it left
 * it (call once the log is replayed); else loads read data.mdb. */
void ug_image_open(ug_store *s);
/* Loads sc from the image: 1 done, 0 the image cannot serve it (sc
 * untouched: read data.mdb), -1 failed with err set. */
int ug_image_load(ug_store *s, ug_scope *sc, char *err, size_t errcap);
/* Writes grants.img from data.mdb (the log drained); a failure is logged,
 * and the next start reads data.mdb. */
void ug_image_write(ug_store *s);
void ug_image_close(ug_store *s);

/* ---- commit.c ------------------------------------------------------------------- */

void ug_group_init(ug_store *s);
void ug_group_destroy(ug_store *s);

/* ---- wal.c -------------------------------------------------------------------- */

/* Its locks, no files yet (ug_wal_close may follow either way). */
void ug_wal_init(ug_store *s);
/* Opens (creates) the log's files and replays into data.mdb whatever they
 * hold that it does not; then the log is empty. */
int ug_wal_open(ug_store *s, char *err, size_t errcap);
/* Everything the log holds when called goes into data.mdb (a scope about
 * to be loaded from it may have grants only in the log). 0 or -1. */
int ug_wal_drain(ug_store *s);
/* Drains what it can, closes the files. */
void ug_wal_close(ug_store *s);
/* Appends the records of parts (each as memory holds it now) in one
 * batch and returns once it is on disk: 0 (also when there was nothing to
 * write), or -1 with what failed and errno in *what, *eno. *full: the
 * generation is past its size and wants a checkpoint now. */
int ug_wal_append(ug_store *s, const ug_part *parts, bool *full, const char **what, int *eno);
/* Closes the generation being written, if it holds a batch and, with
 * due_only, is old or big enough, and writes every closed generation into
 * data.mdb. 0, or -1 (logged): the log keeps them, a later call retries. */
int ug_wal_checkpoint(ug_store *s, bool due_only);
uint64_t ug_mono_ns(void);

/* ---- queue.c ------------------------------------------------------------------ */

/* Queues (sc, uid) on worker's queue; -1 on out of memory. */
int ug_queue_push(ug_store *s, unsigned worker, ug_scope *sc, uint64_t uid);
/* Room for one more record on worker's queue, so a push cannot fail. */
int ug_queue_reserve(ug_store *s, unsigned worker);

/* ---- quota.c ------------------------------------------------------------------ */

/* Takes one slot for worker w (its own shard first, then half of the
 * largest other); false when none is left, or its source holds them back. */
bool ug_stage_quota_take(ug_stage_quota *q, unsigned w);
/* Counts a new offer at now (per second and per minute). */
void ug_stage_quota_offered(ug_stage_quota *q, uint64_t now);
/* Counts n grants made at `at` into a stage not yet shared (its load):
 * cells keep the newest second and minute they saw, so grants read in any
 * order leave the ring as live offers would have. */
void ug_stage_quota_seed_offer(ug_stage_quota *q, uint64_t at, uint32_t n);

/* ---- grants.c ----------------------------------------------------------------- */

ug_scope *ug_scope_new(ug_store *s, const char *rollout, const char *to);
void ug_scope_free(ug_scope *sc);
/* Loading a scope not shared yet: records go in one by one, those whose
 * stripe is in [lo, hi) only, so that two threads may fill one scope's
 * two halves. ug_loader_finish inserts what is still in flight and adds
 * the outcome counts; add and finish return -1 on out of memory. */
#define UG_LOAD_AHEAD 32u
typedef struct {
    ug_scope *sc;
    unsigned lo, hi;
    uint64_t n;
    uint64_t uid[UG_LOAD_AHEAD], h[UG_LOAD_AHEAD];
    grant_record rec[UG_LOAD_AHEAD];
    uint64_t out[UG_OUT_COUNT_];
} ug_loader;
void ug_loader_init(ug_loader *l, ug_scope *sc, unsigned lo, unsigned hi);
int ug_loader_add(ug_loader *l, uint64_t uid, const grant_record *r);
int ug_loader_finish(ug_loader *l);
/* Presizes the scope's stripes [lo, hi) for a scope of n grants. */
int ug_scope_presize(ug_scope *sc, size_t n, unsigned lo, unsigned hi);
/* Empties a scope not shared yet (a load that must start over). */
void ug_scope_unload(ug_scope *sc);
/* Fills r from uid's entry (false if uid has no entry, or one learned). */
bool ug_scope_record(ug_scope *sc, uint64_t uid, grant_record *r);
/* The record written by worker's commit held uid's grant: it is durable. */
void ug_scope_committed(ug_scope *sc, uint64_t uid, unsigned worker);
void ug_scope_unmark_stages(ug_scope *sc);
void ug_scope_sweep_stages(ug_scope *sc);
/* Sets GF_PUBLISHED on those of uids that are this store's grants
 * (write[i] says which: their records must be written); how many. */
size_t ug_scope_mark_published_mem(ug_scope *sc, const uint64_t *uids, size_t n, bool *write);

#endif
