/* Version 2 replies (protocol-v2.md 6.3): HINT with the certificate, WAIT with the freshness token signed
 * once a minute, COOKIE in a v2 datagram. */
#ifndef UG_REPLIES_V2_H
#define UG_REPLIES_V2_H

#include "base/inst.h"

/* The freshness token of one live policy: signed at most once a minute
 * under a lock, copied into a slot per worker so that a WAIT takes no
 * lock until its worker's copy is a minute old. */
typedef struct ug_v2_tokens ug_v2_tokens;
ug_v2_tokens *ug_v2_tokens_new(unsigned nworkers);
void ug_v2_tokens_free(ug_v2_tokens *t);

/* One reply being written into out[0..cap) (cap: no longer than the HELLO). */
typedef struct {
    const ug_policy *p;
    ug_v2_tokens *tok; /* the live policy's; NULL when p speaks v1 only */
    ug_worker *w;
    unsigned worker;
    uint64_t now, uid;
    const ug_version *ver; /* the HELLO's: names the delta to offer */
    const uint8_t *nonce;
    uint8_t *out;
    size_t cap, *out_len;
} ug_v2_reply;

/* Can p answer version 2 peers with HINTs and tokens now: keys named,
 * certificate and keyring unexpired? */
bool ug_v2_serving(const ug_policy *p, uint64_t now);
/* The longest HINT v2 of rollout r (rule 9). */
size_t ug_v2_hint_max(const ug_policy *p, const ug_rollout *r);
/* Each 0, or -1 when the datagram does not fit cap. */
int ug_v2_wait(const ug_v2_reply *x, const ug_wait *wt) UG_WUR;
int ug_v2_cookie(const ug_v2_reply *x, const ug_cookie *ck) UG_WUR;
/* The HINT names the delta from the HELLO's version when r's manifest has
 * one and r does not say `deltas: off`; *delta gets its index, or -1. */
int ug_v2_hint(const ug_v2_reply *x, const ug_rollout *r, int *delta) UG_WUR;

#endif
