/* Per-worker memory of the expensive path: answers to retransmitted HELLOs,
 * credentials already verified, and each source prefix's budget of
 * signature checks. One per worker, so none of it needs a lock; only when
 * the host's threads share one socket (a peer may land on any worker) do
 * the workers share one retransmit cache, locked in stripes. */
#ifndef UG_GUARD_H
#define UG_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ug_proto.h"

#define UG_REPLAY_SETS 2048u /* answers remembered per worker: sets of ... */
#define UG_REPLAY_WAYS 4u    /* ... four, least recently used out first */
#define UG_REPLAY_TTL 30u    /* seconds a retransmit is answered from memory */
#define UG_REPLAY_INLINE 72u /* a WAIT or COOKIE fits inline; a HINT goes to the heap */
#define UG_CRED_SETS 16384u  /* verified credentials per worker: sets of ... */
#define UG_CRED_WAYS 16u     /* ... sixteen: of 100,000 peers in flight, all but
                                ~0.1% stay cached (an LRU set that overflows
                                misses on every key that cycles through it) */
#define UG_BUDGET_SETS 1024u /* source prefixes tracked per worker: sets of ... */
#define UG_BUDGET_WAYS 4u    /* ... four, under a secret hash: no chosen collisions */
#define UG_KEY_LEN 16u
#define UG_REPORT_BUDGET 1000u /* REPORTs verified a second, per tracker (its workers share it) */

#define UG_REPLAY_STRIPES 64u /* locks of a shared retransmit cache */

typedef struct ug_replay ug_replay;
typedef struct ug_cred_entry ug_cred_entry;
typedef struct ug_budget_entry ug_budget_entry;

typedef struct {
    ug_replay *replay;     /* its own, or the one all workers share */
    bool own_replay;
    ug_cred_entry *cred;
    uint32_t cred_clock;
    ug_budget_entry *budget;
    uint64_t budget_clock;
    uint8_t budget_key[16]; /* secret: which set a prefix lands in */
    ug_budget_entry *report_net; /* each prefix's REPORT budget, apart from its HELLO budget */
    double report_tokens;      /* this worker's share of the REPORT budget */
    uint64_t report_last;
} ug_guard;

int ug_guard_init(ug_guard *g) UG_WUR;
void ug_guard_free(ug_guard *g);

/* A retransmit cache of sets x UG_REPLAY_WAYS answers under a secret of
 * its own. shared: any worker may use it at any time (its sets are locked
 * in UG_REPLAY_STRIPES stripes); else one worker owns it and no lock is
 * taken. NULL when out of memory. */
ug_replay *ug_replay_new(uint32_t sets, bool shared);
void ug_replay_free(ug_replay *r);
/* g gives up its own retransmit cache for r (which g never frees). */
void ug_guard_share_replay(ug_guard *g, ug_replay *r);

/* Key of a datagram from src in g's cache: a keyed hash of the source and
 * the exact bytes, so only the same peer's retransmit matches (a forgery
 * that copies a peer's signature onto other bytes does not). Workers that
 * share a cache share its secret: the same bytes get the same key. */
void ug_replay_key(const ug_guard *g, uint8_t key[UG_KEY_LEN], const struct sockaddr *src, const uint8_t *in,
                   size_t len);
/* The answer remembered for key under tag (the policy generation and the
 * pause/halt epoch that produced it), if younger than UG_REPLAY_TTL: copies
 * it to out (when it fits cap), sets *flags to the reply flags it was sent
 * with, and returns its length; else 0. */
size_t ug_replay_find(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, uint64_t tag, uint8_t *out,
                      size_t cap, unsigned *flags);
void ug_replay_store(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, uint64_t tag, const uint8_t *reply,
                     size_t len, unsigned flags);

/* Was this exact credential (bytes and signature) verified under the policy
 * generation gen? key_out gets its key for ug_credcache_put. */
bool ug_credcache_has(ug_guard *g, const ug_signed *cred, uint64_t gen, uint8_t key_out[UG_KEY_LEN]);
void ug_credcache_put(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t gen);

/* Takes one signature check from the budget of src's prefix (IPv4 /24,
 * IPv6 /56), refilled at per_second (burst: one second's worth, at least
 * 1). false: that network has spent its share for now. A prefix keeps its
 * bucket while it is among the last four seen in its set. */
bool ug_budget_take(ug_guard *g, const struct sockaddr *src, uint64_t now, double per_second);

/* Takes one REPORT verification from this worker's budget, refilled at
 * per_second (burst: one second's worth, at least 1). REPORTs are
 * statistics: under a flood they are dropped so that HELLOs keep their own
 * (per-network) budget whole (issue 21 §1). */
bool ug_report_budget_take(ug_guard *g, uint64_t now, double per_second);
/* As ug_budget_take, from the prefix's REPORT bucket: REPORTs spent in a
 * network's name never take its HELLOs' budget. */
bool ug_report_net_take(ug_guard *g, const struct sockaddr *src, uint64_t now, double per_second);

#endif
