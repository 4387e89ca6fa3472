/* Signatures libsodium refuses and plain Ed25519 would not, for the tests. */
#include <criterion/criterion.h>
#include <string.h>

#include <sodium.h>

#include "forge.h"

const uint8_t fg_identity[32] = {1};

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                              0xa2, 0xde, 0xf9, 0xde, 0x14, [31] = 0x10};

void fg_sig_plus_l(uint8_t sig[UG_SIG_LEN])
{
    unsigned carry = 0;
    for (unsigned i = 0; i < 32; i++) {
        carry += (unsigned)sig[32 + i] + L[i];
        sig[32 + i] = (uint8_t)carry;
        carry >>= 8;
    }
    cr_assert_eq(carry, 0u, "S + L overflowed 256 bits");
}

/* SHA-512(R || A || CTX || 0 || body) mod L. */
static void challenge(uint8_t h[32], const uint8_t r[32], const uint8_t pk[32], const char *ctx,
                      const uint8_t *body, size_t len)
{
    crypto_hash_sha512_state st;
    uint8_t full[64];
    static const uint8_t zero = 0;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, r, 32);
    crypto_hash_sha512_update(&st, pk, 32);
    crypto_hash_sha512_update(&st, (const uint8_t *)ctx, strlen(ctx));
    crypto_hash_sha512_update(&st, &zero, 1);
    crypto_hash_sha512_update(&st, body, len);
    crypto_hash_sha512_final(&st, full);
    crypto_core_ed25519_scalar_reduce(h, full);
}

void fg_sig_identity_r(uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t len,
                       const uint8_t sk[UG_SK_LEN])
{
    uint8_t az[64], wide[64] = {0}, a[32], h[32];
    crypto_hash_sha512(az, sk, 32); /* RFC 8032: the secret scalar is the clamped first half */
    az[0] &= 248, az[31] &= 127, az[31] |= 64;
    memcpy(wide, az, 32);
    crypto_core_ed25519_scalar_reduce(a, wide);
    challenge(h, fg_identity, sk + 32, ctx, body, len);
    memcpy(sig, fg_identity, 32);
    crypto_core_ed25519_scalar_mul(sig + 32, h, a);
}

int fg_cofactorless_ok(const uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t len,
                       const uint8_t pk[UG_PK_LEN])
{
    uint8_t wide[64] = {0}, s[32], h[32], sb[32], ha[32], rhs[32];
    memcpy(wide, sig + 32, 32);
    crypto_core_ed25519_scalar_reduce(s, wide);
    challenge(h, sig, pk, ctx, body, len);
    /* libsodium's multiplications refuse the identity and small-order
     * inputs, so those cases are spelled out: [0]B and [h]identity are the
     * identity, and identity + P is P */
    if (sodium_is_zero(s, 32))
        memcpy(sb, fg_identity, 32);
    else
        cr_assert_eq(crypto_scalarmult_ed25519_base_noclamp(sb, s), 0);
    if (memcmp(pk, fg_identity, 32) == 0 || sodium_is_zero(h, 32))
        memcpy(ha, fg_identity, 32);
    else
        cr_assert_eq(crypto_scalarmult_ed25519_noclamp(ha, h, pk), 0, "key of small order other than identity");
    if (memcmp(sig, fg_identity, 32) == 0)
        memcpy(rhs, ha, 32);
    else if (memcmp(ha, fg_identity, 32) == 0)
        memcpy(rhs, sig, 32);
    else
        cr_assert_eq(crypto_core_ed25519_add(rhs, sig, ha), 0);
    return memcmp(sb, rhs, 32) == 0;
}

size_t fg_seal(uint8_t *out, size_t cap, ug_type type, const uint8_t *body, size_t len, const uint8_t *sig)
{
    size_t n = 0;
    /* the encoder signs signed types itself: build the unsigned shape, then
     * put in the type and the given signature in place of nil */
    cr_assert_eq(ug_dgram_encode(out, cap, &n, UG_TYPE_WAIT, body, len, NULL), 0);
    out[5] = (uint8_t)type;
    if (!sig)
        return n;
    cr_assert_leq(n + 1 + UG_SIG_LEN, cap);
    out[n - 1] = 0xc4;
    out[n] = UG_SIG_LEN;
    memcpy(out + n + 1, sig, UG_SIG_LEN);
    return n + 1 + UG_SIG_LEN;
}

size_t fg_seal_by_identity(uint8_t *out, size_t cap, ug_type type, const uint8_t *body, size_t len)
{
    uint8_t sig[UG_SIG_LEN] = {0};
    memcpy(sig, fg_identity, 32);
    const char *ctx = type == UG_TYPE_HELLO ? UG_CTX_HELLO : type == UG_TYPE_HINT ? UG_CTX_HINT : UG_CTX_REPORT;
    cr_assert(fg_cofactorless_ok(sig, ctx, body, len, fg_identity), "the identity forgery is not one");
    return fg_seal(out, cap, type, body, len, sig);
}
