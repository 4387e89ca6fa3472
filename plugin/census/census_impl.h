/* The inside of the census, shared by its files: registers (census_reg.c),
 * sketches (census_sketch.c), estimates (census_est.c), buckets, rings and
 * tick (census.c, census_drain.c), the codec (census_codec.c) and the
 * readers (census_read.c). */
#ifndef UG_CENSUS_IMPL_H
#define UG_CENSUS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "census.h"

/* A register is a list of up to K entries (rank, slot stamp), newest
 * first, each older one of a strictly higher rank: for any window, the
 * register's value is the rank of the oldest entry inside it (the list of
 * possible future maxima of a sliding-window HyperLogLog). */
#define UG_CENSUS_K 8u
#define UG_CENSUS_Q 30u            /* rank bits: ranks 1..31, 31 meaning 30 zeros */
#define UG_CENSUS_RANK_MAX (UG_CENSUS_Q + 1u)
#define UG_CENSUS_STAMP_BITS 11u   /* slot number mod 2048 (14 days) */
#define UG_CENSUS_STAMP_MASK ((1u << UG_CENSUS_STAMP_BITS) - 1u)
#define UG_CENSUS_AGE_MAX 1008u    /* slots kept: the week window's 1009 */
#define UG_CENSUS_AGE_FUTURE 6u    /* stamps up to an hour ahead count as now (clock skew) */

/* Slots per window: the current 10-minute slot and the ones before it, so
 * each covers at least its nominal length and at most 10 minutes more. */
extern const uint16_t ug_census_window_slots[UG_CENSUS_WINDOWS];

typedef uint16_t ug_census_entry; /* rank << 11 | stamp; 0 empty */

static inline unsigned ug_census_rank(ug_census_entry e)
{
    return e >> UG_CENSUS_STAMP_BITS;
}

static inline unsigned ug_census_age(ug_census_entry e, uint32_t cur)
{
    return (cur - (e & UG_CENSUS_STAMP_MASK)) & UG_CENSUS_STAMP_MASK;
}

static inline ug_census_entry ug_census_make(unsigned rank, uint32_t stamp)
{
    return (ug_census_entry)(rank << UG_CENSUS_STAMP_BITS | (stamp & UG_CENSUS_STAMP_MASK));
}

/* ---- census_reg.c: one register's list ---------------------------------- */

/* Rewrites e[0..n) (n <= 2K, any order) as a register: drops what left the
 * week, keeps the entries no newer-or-same-age one outranks, newest first;
 * over K, drops the least useful (never the newest or a window's value).
 * Returns the new length. */
unsigned ug_census_reg_norm(ug_census_entry *e, unsigned n, uint32_t cur);
/* Adds (rank, stamp): returns the new length, or n unchanged when an
 * entry at least as new and as high makes it redundant (*changed false). */
unsigned ug_census_reg_add(ug_census_entry *e, unsigned n, unsigned rank, uint32_t stamp, uint32_t cur,
                           bool *changed);
/* The register's value in each window. */
void ug_census_reg_values(const ug_census_entry *e, unsigned n, uint32_t cur, uint8_t v[UG_CENSUS_WINDOWS]);
/* The rank a 64-bit hash gives at precision p (its register: h >> (64 - p)). */
static inline unsigned ug_census_hash_rank(uint64_t h, unsigned p)
{
    uint64_t w = h << p;
    unsigned r = w ? (unsigned)__builtin_clzll(w) + 1u : 64u;
    return r > UG_CENSUS_RANK_MAX ? UG_CENSUS_RANK_MAX : r;
}

/* ---- census_sketch.c: a bucket's sketch --------------------------------- */

/* Sparse: items (register << 16 | entry) grouped by register in ascending
 * order, each group a register's list; dense: 2^p lists of K entries. */
typedef struct {
    uint8_t p;
    bool dense;
    uint32_t n, cap;   /* sparse items, and room */
    void *data;        /* uint32_t[cap], or ug_census_entry[2^p * K] */
} ug_census_sketch;

size_t ug_census_sk_bytes(const ug_census_sketch *s);
#define UG_CENSUS_BIG (64u << 10) /* bytes from which ug_census_big_alloc maps */
/* Blocks of 64 KiB and more (dense sketches, a reading's buffers) are
 * mapped, smaller ones malloc'ed: the census allocates on any thread (a
 * worker's drain, upgate-node's control thread), and glibc's sliding mmap
 * threshold would put big blocks on that thread's heap, whose trimming
 * reads /proc/sys/vm/overcommit_memory, a file the node's sandbox hides
 * (ProcSubset=pid; tests/install/trace_check.py). Zeroed; free with the
 * same n. */
void *ug_census_big_alloc(size_t n);
void ug_census_big_free(void *p, size_t n);
/* Register j's list into e (K entries); its length. */
unsigned ug_census_sk_get(const ug_census_sketch *s, uint32_t j, ug_census_entry *e);
/* Replaces register j's list; a sparse sketch grows, or turns dense past
 * 4096 items or 2^p / 2. -1 on out of memory (the sketch unchanged). */
int ug_census_sk_put(ug_census_sketch *s, uint32_t j, const ug_census_entry *e, unsigned n) UG_WUR;
/* Adds one hash seen in slot stamp. */
int ug_census_sk_add(ug_census_sketch *s, uint64_t h, uint32_t stamp, uint32_t cur) UG_WUR;
/* Halves the registers (p - 1), as if the hashes had been added at p - 1. */
int ug_census_sk_fold(ug_census_sketch *s, uint32_t cur) UG_WUR;
/* Drops what left the week; the number of entries left. */
uint64_t ug_census_sk_prune(ug_census_sketch *s, uint32_t cur);
/* Adds b's registers to a (folding the finer one down first). */
int ug_census_sk_union(ug_census_sketch *a, ug_census_sketch *b, uint32_t cur) UG_WUR;
void ug_census_sk_clear(ug_census_sketch *s);

/* ---- census_est.c: estimates --------------------------------------------- */

/* Each window's register values at the sketch's p: v[w * 2^p + j]. */
void ug_census_est_values(const ug_census_sketch *s, uint32_t cur, uint8_t *v);
/* Folds values of 2^p registers to 2^(p-1), in place. */
void ug_census_est_fold_values(uint8_t *v, unsigned p);
/* Ertl's improved raw estimator (2017), no bias correction tables needed,
 * over 2^p register values. */
double ug_census_est(const uint8_t *v, unsigned p);

/* ---- buckets, rings, the census ------------------------------------------ */

typedef struct {
    char ver[UG_VER_MAX + 1], plat[UG_PLAT_MAX + 1], chan[UG_CHAN_MAX + 1], region[UG_CENSUS_REGION_MAX + 1];
} ug_census_text;

typedef struct {
    uint64_t kh; /* the key's hash, never 0 */
    ug_census_text key;
    bool used, other;
    uint64_t entries; /* at the last prune: a size hint for the budget */
    ug_census_sketch sk;
} ug_census_bucket;

typedef struct {
    uint64_t kh;
    ug_census_text key;
} ug_census_announce;

#define UG_CENSUS_SEEN 512u     /* keys a worker remembers having announced */
#define UG_CENSUS_FILTER (1u << UG_CENSUS_P) /* (key, register) pairs a worker remembers staging this slot */
#define UG_CENSUS_IDS 512u      /* keys a worker remembers the id of, this slot */
#define UG_CENSUS_ID_MAX 2047u  /* key ids a worker gives per filter: 11 bits beside the 5 of a rank */
#define UG_CENSUS_ANNOUNCE 256u /* announcements a worker may have pending */
_Static_assert(UG_CENSUS_RANK_MAX < 32u && UG_CENSUS_ID_MAX << 5 <= 0xffe0u, "a filter entry packs id << 5 | rank");

/* The last key a worker hashed, and its hash (0: none yet): a network's
 * HELLOs come from a handful of keys, and comparing a key's bytes with
 * the last one's costs less than hashing them. Its version's parts as
 * parsed (the hash reads them so), its fields' lengths and bytes. */
typedef struct {
    uint64_t kh, epoch;     /* epoch: the census's epoch in which seen[] holds kh (another: not known) */
    uint32_t id;            /* kh's id in the worker's filter, 0: none given since the filter was last cleared */
    uint32_t part[4];
    uint32_t n;             /* plat's, chan's and region's lengths, a byte each from the low end */
    char s[3][UG_PLAT_MAX]; /* their bytes, no NUL (the longest field fits) */
} ug_census_memo;

/* Two single-producer rings (HELLOs, and keys new to the worker), the
 * worker's half and tick's half on cache lines of their own. */
typedef struct {
    _Alignas(64) _Atomic uint64_t head, ahead;
    _Atomic uint64_t dropped, bad_key, filtered;
    uint64_t tail_seen, epoch;
    ug_census_staged *ring;
    /* Per (key, register) of the current slot: the key's id (11 bits)
     * and the highest rank (5 bits) this worker staged. A HELLO of no
     * higher rank could change nothing (the register holds an entry at
     * least as new and as high): it is not staged. Indexed by register,
     * offset by the key: one key's 2^15 registers never evict each other,
     * in 64 KiB (a mapped block, census.c). Cleared when the worker's slot
     * changes (filter_stamp) or its ids run out: an id names one key from
     * the clearing on, so an entry's match is exact. */
    uint16_t *filter;
    uint32_t filter_stamp; /* the slot stamp the filter holds, or UINT32_MAX: none yet */
    uint32_t ids;          /* key ids given since the filter was cleared: 1..ids */
    ug_census_memo memo;
    /* A key's id, found by its hash (direct-mapped; id_kh 0: empty): a
     * key that lost its place gets a new id, which costs only filtering. */
    uint64_t id_kh[UG_CENSUS_IDS];
    uint16_t id[UG_CENSUS_IDS];
    uint64_t seen[UG_CENSUS_SEEN];
    ug_census_announce ann[UG_CENSUS_ANNOUNCE];
    _Alignas(64) _Atomic uint64_t tail, atail;
} ug_census_worker;

struct ug_census {
    unsigned nworkers;
    uint64_t ring_mask;
    ug_census_worker *w;
    _Atomic uint64_t epoch; /* bumped when buckets are evicted: workers announce again */
    ug_census_bucket *b;    /* [nbmax]: b[0] is "other" */
    unsigned nbmax, nb;
    uint32_t *index;        /* open addressing: bucket number + 1, 0 empty */
    uint32_t index_mask;
    size_t budget, bytes, fixed;
    uint32_t abs, slot;      /* the latest slot number a drain saw, and its stamp */
    uint32_t last_prune;     /* absolute slot number */
    bool started;
    uint64_t other, evicted, folds, merged;
    /* Everything below the rings (buckets, sketches, index, counters) is
     * tick's, a reader's or an assisting worker's: one at a time. A worker
     * only ever tries it (never waits). */
    pthread_mutex_t lock;
    bool lock_ok;
    _Atomic uint64_t assists; /* drains a worker did, its ring half full */
};

/* census.c: the hash of a key as text (what note computes from a HELLO's
 * fields; 1 when its version does not parse), and a version's text made
 * canonical in place (-1: not a version). */
uint64_t ug_census_key_hash(const ug_census_text *t);
int ug_census_ver_text(char *ver, size_t cap) UG_WUR;

/* census_drain.c (the lock held) */
/* Every worker's ring into the sketches, at now's slot if later than the last. */
void ug_census_drain_all(ug_census *c, uint64_t now);
/* The bucket of key kh, or NULL. */
ug_census_bucket *ug_census_find(ug_census *c, uint64_t kh);
/* The bucket of a key, made when there is room, else "other". */
ug_census_bucket *ug_census_bucket_of(ug_census *c, const ug_census_text *t, uint64_t kh);
/* Runs op's change to a bucket's sketch inside the budget's accounting. */
void ug_census_account(ug_census *c, size_t before, const ug_census_bucket *b);
/* Folds the largest, least full sketches until the sketches fit the budget. */
void ug_census_fit(ug_census *c);
/* census.c, census_read.c: the counters and the rows, the lock held */
void ug_census_stats_locked(ug_census *c, ug_census_stats *s);
/* census_read.c, without the lock (it takes it bucket by bucket): a row
 * per bucket, per version (the union of its buckets; "other" left out) or
 * one for all; sorted by the week's count, largest first; NULL on out of
 * memory. */
enum { UG_CENSUS_BY_BUCKET, UG_CENSUS_BY_VERSION, UG_CENSUS_ALL };
ug_census_row *ug_census_group_rows(ug_census *c, uint64_t now, int how, size_t *n);
/* Frees what ug_census_group_rows returned (a big block: nbmax rows). */
void ug_census_rows_release(const ug_census *c, ug_census_row *rows);

/* The slot stamp of now (its low 11 bits). */
static inline uint32_t ug_census_slot_of(uint64_t now)
{
    return (uint32_t)(now / UG_CENSUS_SLOT) & UG_CENSUS_STAMP_MASK;
}

#endif
