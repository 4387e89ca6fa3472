/* Per-worker memory of the expensive path: answers to retransmitted HELLOs,
 * credentials already verified, and each source prefix's budget of
 * signature checks. One per worker, so none of it needs a lock. */
#ifndef UG_GUARD_H
#define UG_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ug_proto.h"

#define UG_REPLAY_SETS 2048u /* answers remembered per worker: sets of ... */
#define UG_REPLAY_WAYS 4u    /* ... four, least recently used out first */
#define UG_REPLAY_TTL 30u     /* seconds a retransmit is answered from memory */
#define UG_CRED_SLOTS 4096u   /* verified credentials per worker */
#define UG_BUDGET_SLOTS 4096u /* source prefixes tracked per worker */
#define UG_KEY_LEN 16u

typedef struct ug_replay_entry ug_replay_entry;
typedef struct ug_cred_entry ug_cred_entry;
typedef struct ug_budget_entry ug_budget_entry;

typedef struct {
    ug_replay_entry *replay;
    uint64_t replay_clock; /* counts uses, to tell least recently used */
    ug_cred_entry *cred;
    ug_budget_entry *budget;
} ug_guard;

int ug_guard_init(ug_guard *g) UG_WUR;
void ug_guard_free(ug_guard *g);

/* Key of a datagram from src: a hash of the source and the exact bytes, so
 * only the same peer's retransmit matches. */
void ug_replay_key(uint8_t key[UG_KEY_LEN], const struct sockaddr *src, const uint8_t *in, size_t len);
/* The remembered answer to key, if younger than UG_REPLAY_TTL: copies it to
 * out (when it fits cap) and returns its length, else 0. */
size_t ug_replay_find(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, uint8_t *out, size_t cap);
void ug_replay_store(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t now, const uint8_t *reply, size_t len);

/* Was this exact credential (bytes and signature) verified under the policy
 * generation gen? key_out gets its key for ug_credcache_put. */
bool ug_credcache_has(ug_guard *g, const ug_signed *cred, uint64_t gen, uint8_t key_out[UG_KEY_LEN]);
void ug_credcache_put(ug_guard *g, const uint8_t key[UG_KEY_LEN], uint64_t gen);

/* Takes one signature check from the budget of src's prefix (IPv4 /24,
 * IPv6 /56), refilled at per_second (burst: one second's worth, at least
 * 1). false: that network has spent its share for now. */
bool ug_budget_take(ug_guard *g, const struct sockaddr *src, uint64_t now, double per_second);

#endif
