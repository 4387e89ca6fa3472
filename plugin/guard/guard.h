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
#define UG_CRED_SETS 16384u  /* verified credentials of a worker that sees every peer: sets of ... */
#define UG_CRED_WAYS 16u     /* ... sixteen: of 100,000 peers in flight, all but
                                ~0.1% stay cached (an LRU set that overflows
                                misses on every key that cycles through it) */
#define UG_CRED_SETS_MIN 1024u /* ... and the least a worker gets when workers split the peers */
#define UG_CRED_FP 12u         /* digest bytes an entry keeps, past the 4 that chose its set */
#define UG_BUDGET_SETS 1024u /* source prefixes tracked per worker: sets of ... */
#define UG_BUDGET_WAYS 4u    /* ... four, under a secret hash: no chosen collisions */
#define UG_KEY_LEN 16u
#define UG_REPORT_BUDGET 1000u /* REPORTs verified a second, per tracker (its workers share it), burst one
                                  second's worth: while HELLOs leave the CPU idle or REPORTs verify */
#define UG_REPORT_BUDGET_BUSY 100u /* ... while a worker's HELLO path is busy and REPORT work was wasted */
#define UG_REPORT_BURST_BUSY_MS 100u /* ... then a burst of this long's worth (at least one) */
#define UG_HELLO_BUSY 100u     /* HELLO signature checks a second that make a worker's HELLO path busy, */
#define UG_BUSY_WINDOW_MS 1000u /* counted in the current window this long, or the last one */
#define UG_REPORT_WARY_MS 1000u /* a REPORT verification that counted nothing keeps a worker wary this long */

#define UG_REPLAY_STRIPES 64u /* locks of a shared retransmit cache */

typedef struct ug_replay ug_replay;
typedef struct ug_cred_entry ug_cred_entry;
typedef struct ug_budget_entry ug_budget_entry;

typedef struct {
    ug_replay *replay;     /* its own, or the one all workers share */
    bool own_replay;
    ug_cred_entry *cred;
    uint32_t cred_sets;
    uint32_t cred_clock;
    ug_budget_entry *budget;
    uint64_t budget_clock;
    uint8_t budget_key[16]; /* secret: which set a prefix lands in */
    ug_budget_entry *report_net; /* each prefix's REPORT budget, apart from its HELLO budget */
    double report_tokens;      /* this worker's share of the REPORT budget */
    uint64_t report_last;      /* budget ms (ug_guard_ms) */
    uint64_t clock_ms;         /* the budgets' clock (ug_guard_ms) */
    int64_t clock_mono;        /* ug_mono_ms() when it was last read; 0: never */
    uint64_t clock_sec;        /* the host's second last seen ... */
    int64_t clock_sec_mono;    /* ... and ug_mono_ms() when it first showed */
    uint64_t hello_win;        /* budget ms the current window of HELLO work began */
    uint32_t hello_n, hello_prev; /* HELLO signature checks in it, and in the window before */
    uint64_t report_wasted;    /* budget ms of the last REPORT verification that counted nothing; 0 none */
} ug_guard;

/* cred_sets: the credential cache's sets (ug_guard_cred_sets). */
int ug_guard_init(ug_guard *g, uint32_t cred_sets) UG_WUR;
/* Sets of each worker's credential cache. A worker that may see any peer
 * (one worker, or peers that roam) gets UG_CRED_SETS; workers that split
 * the peers between them (a socket each: SO_REUSEPORT sends a peer to the
 * same worker every time) split them too, so the host's workers together
 * hold as many credentials as one worker that sees all the peers, at one
 * worker's memory (issue 27 §2). */
uint32_t ug_guard_cred_sets(unsigned nworkers, bool roaming);
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
 * generation gen? key_out gets its key for ug_credcache_put: the BLAKE2b-128
 * digest of the credential's raw bytes, salted with gen. */
bool ug_credcache_has(ug_guard *g, const ug_signed *cred, uint64_t gen, uint8_t key_out[UG_KEY_LEN]);
void ug_credcache_put(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t gen);

/* The budgets' clock in ms, this worker's own: it runs with the monotonic
 * clock (so buckets refill continuously, not once a host second), and when
 * the host's clock (now_s) moves ahead faster than that, by the excess too
 * (a host's clock that jumps, as a test's does, refills as it always did).
 * It never goes back; its origin means nothing, only its differences. */
uint64_t ug_guard_ms(ug_guard *g, uint64_t now_s);

/* Takes one signature check from the budget of src's prefix (IPv4 /24,
 * IPv6 /56), refilled continuously at per_second (burst: one second's
 * worth, at least 1); now_ms on the budgets' clock. false: that network
 * has spent its share for now. A prefix keeps its bucket while it is among
 * the last four seen in its set. */
bool ug_budget_take(ug_guard *g, const struct sockaddr *src, uint64_t now_ms, double per_second);

/* The HELLO path did n signature checks at now_ms: what tells a busy
 * worker (UG_HELLO_BUSY). */
void ug_guard_hello_work(ug_guard *g, uint64_t now_ms, unsigned n);
bool ug_guard_hello_busy(const ug_guard *g, uint64_t now_ms);
/* A REPORT's verification at now_ms counted nothing (a signature failed, a
 * replay, a uid never offered): the REPORT path may be under attack. */
void ug_guard_report_wasted(ug_guard *g, uint64_t now_ms);

/* Takes one REPORT verification from this worker's share (1/nworkers) of
 * the tracker's REPORT budget, refilled continuously: UG_REPORT_BUDGET a
 * second, burst one second's worth; but UG_REPORT_BUDGET_BUSY, burst
 * UG_REPORT_BURST_BUSY_MS's worth, while this worker's HELLO path is busy
 * and REPORT work was wasted in the last UG_REPORT_WARY_MS. REPORTs are
 * statistics: under a flood they get only what HELLOs leave, and HELLOs
 * keep their own (per-network) budget whole (issue 21 §1). */
bool ug_report_budget_take(ug_guard *g, uint64_t now_ms, unsigned nworkers);
/* As ug_budget_take, from the prefix's REPORT bucket: REPORTs spent in a
 * network's name never take its HELLOs' budget. */
bool ug_report_net_take(ug_guard *g, const struct sockaddr *src, uint64_t now_ms, double per_second);

#endif
