/* Key ids, context-prefixed Ed25519, and the percent bucket hash. */
#include <string.h>

#include <sodium.h>

#include "ug_proto.h"

void ug_kid(uint8_t kid[UG_KID_LEN], const uint8_t pk[UG_PK_LEN])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof h, pk, UG_PK_LEN, NULL, 0);
    memcpy(kid, h, UG_KID_LEN);
}

void ug_pubkey_set(ug_pubkey *k, const uint8_t pk[UG_PK_LEN])
{
    memcpy(k->pk, pk, UG_PK_LEN);
    ug_kid(k->kid, pk);
}

const ug_pubkey *ug_pubkey_find(const ug_pubkey *keys, size_t n, const uint8_t kid[UG_KID_LEN])
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(keys[i].kid, kid, UG_KID_LEN) == 0)
            return &keys[i];
    return NULL;
}

/* CTX || 0x00 || body, in a bounded stack buffer: signed bodies are small. */
static int signed_message(uint8_t *msg, size_t *msg_len, const char *ctx, const uint8_t *body,
                          size_t body_len)
{
    size_t clen = strlen(ctx);
    if (body_len > UG_OBJ_MAX || clen > 32)
        return -1;
    memcpy(msg, ctx, clen);
    msg[clen] = 0;
    memcpy(msg + clen + 1, body, body_len);
    *msg_len = clen + 1 + body_len;
    return 0;
}

int ug_sign(uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t body_len,
            const uint8_t sk[UG_SK_LEN])
{
    uint8_t msg[UG_OBJ_MAX + 33];
    size_t mlen;
    if (signed_message(msg, &mlen, ctx, body, body_len) != 0)
        return -1;
    return crypto_sign_detached(sig, NULL, msg, mlen, sk);
}

int ug_verify(const uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t body_len,
              const uint8_t pk[UG_PK_LEN])
{
    uint8_t msg[UG_OBJ_MAX + 33];
    size_t mlen;
    if (signed_message(msg, &mlen, ctx, body, body_len) != 0)
        return -1;
    return crypto_sign_verify_detached(sig, msg, mlen, pk);
}

uint32_t ug_percent_bucket(const char *salt, size_t salt_len, uint64_t uid)
{
    uint8_t le[8], h[32];
    for (unsigned i = 0; i < 8; i++)
        le[i] = (uint8_t)(uid >> (8 * i));
    crypto_generichash_state st;
    static const uint8_t zero = 0;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)salt, salt_len);
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, le, sizeof le);
    crypto_generichash_final(&st, h, sizeof h);
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)h[i] << (8 * i);
    return (uint32_t)(v % 10000);
}
