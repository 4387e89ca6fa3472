/* The version census: approximate distinct-uid counts per bucket (version,
 * platform, channel, region) over the last hour, day and week, in bounded
 * memory. Workers only stage (uid hash, bucket key) in a ring of their own;
 * tick (or a worker whose ring is half full, if it gets the lock without
 * waiting) folds the rings into sliding HyperLogLog sketches. Definitions,
 * memory and error: docs/policy-v2-extensions.md, "Version census". */
#ifndef UG_CENSUS_H
#define UG_CENSUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

#define UG_CENSUS_REGION_MAX 15u     /* bytes of a region, "CN-BJ" */
#define UG_CENSUS_BUCKETS 1000u      /* default cap on buckets ("other" not counted) */
#define UG_CENSUS_BUCKETS_MAX 4096u
#define UG_CENSUS_BUDGET (16u << 20) /* default bytes: every bucket's sketch (all windows), the table, the index */
#define UG_CENSUS_RING 65536u        /* default staged HELLOs per worker (16 bytes each) */
#define UG_CENSUS_P 15u              /* registers 2^15: standard error 1.04/181 = 0.57% */
#define UG_CENSUS_P_MIN 10u          /* the budget folds sketches down to this (3.3%) */
#define UG_CENSUS_SLOT 600u          /* seconds per time slot */
#define UG_CENSUS_EXPORT_MAX (32u + 4u * 8u * (1u << UG_CENSUS_P) + 4u * 40u) /* bytes of one exported bucket */

enum { UG_CENSUS_HOUR, UG_CENSUS_DAY, UG_CENSUS_WEEK, UG_CENSUS_WINDOWS };

/* The fields a HELLO names its bucket by: its parsed version (one bucket
 * for versions that compare equal, shown as "1.4.0": at least three parts)
 * and strings never NULL, "" for an absent one (the decoder's plat and
 * chan; the GeoIP region, "" when unknown). A string longer than the
 * protocol allows is not counted (stats bad_key); bytes outside printable
 * ASCII show as '?'. */
typedef struct {
    ug_version ver;
    const char *plat, *chan, *region;
} ug_census_key;

typedef struct {
    unsigned nworkers;     /* 1..256, as the host's */
    unsigned max_buckets;  /* 0: UG_CENSUS_BUCKETS; at most UG_CENSUS_BUCKETS_MAX */
    size_t budget;         /* 0: UG_CENSUS_BUDGET; at least what max_buckets folded to P_MIN take */
    unsigned ring;         /* 0: UG_CENSUS_RING; a power of two, 1024 .. 2^22 */
} ug_census_opts;

typedef struct ug_census ug_census;

ug_census *ug_census_create(const ug_census_opts *o, char *why, size_t whycap) UG_WUR;
void ug_census_free(ug_census *c);

/* The hot path, on worker `worker` < nworkers (one thread per worker index
 * at a time): hashes the key and the uid (splitmix64: the same on every
 * tracker, so a fleet counts a uid once) and stages them, unless this
 * worker staged as high a rank for the same register this slot (stats
 * filtered: exact); no allocation, no signature work, never waits for a
 * lock. A key equal to the worker's last one (its version's parts, its
 * fields' bytes) reuses that key's hash: about 160 instructions with the
 * plugin's call, plus a strnlen and a memcmp per non-empty field; a new
 * key hashes its fields. When the ring is half full it tries the
 * census's mutex and, if free, drains every ring itself (tick comes once a
 * second; a busy worker fills 32768 slots sooner); a full ring drops the
 * HELLO (stats dropped). */
void ug_census_note(ug_census *c, unsigned worker, const ug_census_key *k, uint64_t uid, uint64_t now);

/* The same note in two halves, for a caller with work to do in between
 * (the plugin: the HELLO's decision): begin hashes and announces the key
 * and prefetches the filter's entry (a random one of 32768: on a busy
 * machine it is out of every cache, and its load would stall the worker
 * a memory latency); end, on the same worker, filters and stages. A begin
 * without its end notes nothing. */
/* A staged HELLO: the key's hash, and the uid's hash whose low 11 bits
 * (below every bit an index or rank reads) carry the slot stamp. */
typedef struct {
    uint64_t kh, h;
} ug_census_staged;

typedef struct {
    uint16_t *slot; /* the filter's entry; NULL: nothing to note (bad key) */
    uint16_t mark;  /* what the entry holds once staged: the key's id << 5 | the rank */
    ug_census_staged staged;
} ug_census_pending;
void ug_census_note_begin(ug_census *c, unsigned worker, const ug_census_key *k, uint64_t uid, uint64_t now,
                          ug_census_pending *pd);
void ug_census_note_end(ug_census *c, unsigned worker, const ug_census_pending *pd, uint64_t now);

/* Everything below may run on any thread, alongside workers: each takes
 * the census's mutex. tick drains the rings into the sketches (300 to 800
 * instructions per staged HELLO), forgets hourly what left the week, evicts
 * empty buckets, folds sketches when over budget. */
void ug_census_tick(ug_census *c, uint64_t now);

typedef struct {
    char ver[UG_VER_MAX + 1], plat[UG_PLAT_MAX + 1], chan[UG_CHAN_MAX + 1], region[UG_CENSUS_REGION_MAX + 1];
    bool other;                      /* the bucket of keys past the cap */
    unsigned p;                      /* its sketch's precision now */
    uint64_t n[UG_CENSUS_WINDOWS];   /* distinct uids, estimated */
} ug_census_row;

/* Every bucket, by week count, largest first; returns how many there are
 * (rows past cap are not written). Reads every register: about 0.6 ms per
 * dense bucket at 2^15 registers. */
size_t ug_census_rows(ug_census *c, uint64_t now, ug_census_row *out, size_t cap);

typedef struct {
    char ver[UG_VER_MAX + 1];
    uint64_t n; /* distinct uids at this version over the window: the union of its buckets */
} ug_census_top;

/* The versions with the most distinct uids over window, largest first;
 * returns how many versions there are. */
size_t ug_census_top_versions(ug_census *c, uint64_t now, unsigned window, ug_census_top *out, size_t cap);
/* Distinct uids over window, every bucket's union. */
uint64_t ug_census_total(ug_census *c, uint64_t now, unsigned window);

/* For control and metrics: {"windows": {"hour": {"total": N, "top": [{"ver":
 * ..., "n": ...}]}, "day": ..., "week": ...}, "buckets": [{"ver", "plat",
 * "chan", "region", "other", "p", "hour", "day", "week"}], "stats": {...}}
 * with at most top versions per window. NULL on out of memory. */
json_t *ug_census_json(ug_census *c, uint64_t now, size_t top);

typedef struct {
    uint64_t noted;      /* HELLOs staged */
    uint64_t filtered;   /* HELLOs not staged: the worker staged as high a rank for their register this slot */
    uint64_t dropped;    /* HELLOs a full ring refused */
    uint64_t bad_key;    /* HELLOs whose key was too long */
    uint64_t other;      /* HELLOs counted in "other": their bucket would pass the cap */
    uint64_t buckets;    /* buckets now, "other" included */
    uint64_t evicted;    /* buckets dropped after a week without a HELLO */
    uint64_t folds;      /* sketches halved to stay within the budget */
    uint64_t bytes;      /* the budget's measure: the bucket table, its index and every sketch */
    uint64_t ring_bytes; /* the workers' rings and caches, outside the budget (fixed at create) */
    uint64_t merged;     /* buckets merged from other trackers */
    uint64_t assists;    /* drains a worker ran (its ring half full before tick came) */
} ug_census_stats;

void ug_census_stats_get(ug_census *c, ug_census_stats *s);

/* Fleet: one bucket's sketch in the census's own compact format (not
 * Redis's HLL, which has no time in it: PFMERGE cannot slide a window),
 * docs/policy-v2-extensions.md. i counts 0 .. buckets-1 in no fixed order;
 * -1 past the end or when cap is under the bucket's size
 * (UG_CENSUS_EXPORT_MAX always fits). */
int ug_census_export(ug_census *c, uint64_t now, size_t i, uint8_t *out, size_t cap, size_t *len) UG_WUR;
/* Merges another tracker's exported bucket: a union, so merging the same
 * bytes twice changes nothing and the order of merges does not matter (but
 * for a register past 8 entries, which keeps the 8 that matter most).
 * Refused whole, with one line in why, unless every byte is valid; a
 * sender whose clock is over an hour ahead is refused. */
int ug_census_merge(ug_census *c, uint64_t now, const uint8_t *buf, size_t len, char *why, size_t whycap) UG_WUR;

#endif
