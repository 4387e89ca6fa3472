/* Shared by the version 2 harnesses: the keys of tests/vectors-v2 (from their fixed seeds), the keyrings and
 * the peer of peer.json, and the re-encoding check. */
#ifndef UG_FUZZ_V2COMMON_H
#define UG_FUZZ_V2COMMON_H

#include "fuzz_common.h"
#include "ug_proto2.h"

/* keys.json's order: root1..4, rel1..3, cert1..2, hint1..2 (seeds a0.., a1.., ...) */
enum { FZ2_ROOT1, FZ2_ROOT2, FZ2_ROOT3, FZ2_ROOT4, FZ2_REL1, FZ2_REL2, FZ2_REL3, FZ2_CERT1, FZ2_CERT2,
       FZ2_HINT1, FZ2_HINT2, FZ2_N };

typedef struct {
    uint8_t sk[UG_SK_LEN];
    ug_pubkey pub;
} fz2_key;

extern fz2_key fz2_keys[FZ2_N];

/* Derives the keys (once) and checks hint1 against keys.json. */
void fz2_init(void);
/* The vectors' kr1 (kv 1: roots 1-2) and kr3 (kv 3: roots 3-4), both with release keys 1-3 (threshold 2)
 * and certificate keys 1-2 (threshold 1); kr3 revokes serials below 5. */
void fz2_keyring(ug2_keyring *k, uint32_t kv);
/* peer.json's peer: holds kr3, example-app linux-x86_64 stable, tracker eu-1, runs 1.4.2, seq_hi 10,
 * uid 4242, nonce 00..0f, clock FZ_NOW. */
void fz2_peer(ug2_peer *p);
/* The anchor of keyring.json: kv 0, roots 1-2, threshold 2. */
void fz2_anchor(ug2_keyring *k);

/* The body re-encoded by the decoder's caller (out[0..n)) against the accepted body: the same length
 * whatever the key order (canonical in, canonical out), the same bytes when the body's keys come in the
 * table's order. */
void fz2_same_bytes(const uint8_t *out, size_t n, const uint8_t *body, size_t len, const char *const *order,
                    size_t norder, const char *what);

#endif
