/* Test helpers that make the signatures libsodium refuses (protocol.md
 * section 1): S + L, small-order R and keys, and datagrams sealed with them. */
#ifndef UG_FORGE_H
#define UG_FORGE_H

#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

/* The identity point's encoding: a key and an R of order 1. */
extern const uint8_t fg_identity[32];

/* sig with S replaced by S + L: the same point equation, a non-canonical S. */
void fg_sig_plus_l(uint8_t sig[UG_SIG_LEN]);
/* A signature over CTX || 0 || body with R = identity and S = h * a mod L,
 * under the key of sk (libsodium's seed || pk): it satisfies the plain
 * cofactorless equation [S]B = R + [h]A, so only the small-order R check
 * refuses it. */
void fg_sig_identity_r(uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t len,
                       const uint8_t sk[UG_SK_LEN]);
/* Would a verifier without libsodium's extra refusals accept sig? ([S]B ==
 * R + [h]A, S reduced mod L first.) Lets a test prove its forgery is one. */
int fg_cofactorless_ok(const uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t len,
                       const uint8_t pk[UG_PK_LEN]);
/* [ "UG", 1, type, body, sig ] with this exact sig (NULL: nil); returns the length. */
size_t fg_seal(uint8_t *out, size_t cap, ug_type type, const uint8_t *body, size_t len, const uint8_t *sig);
/* fg_seal with R = identity and S = 0, "signed" by the identity key: a
 * signature a plain cofactorless check accepts for any body (checked here). */
size_t fg_seal_by_identity(uint8_t *out, size_t cap, ug_type type, const uint8_t *body, size_t len);

#endif
