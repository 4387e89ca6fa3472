/* Shared by the version 2 harnesses (v2common.h). */
#include <string.h>

#include <sodium.h>

#include "rd.h"
#include "v2common.h"

fz2_key fz2_keys[FZ2_N];

/* hint1's public key as tests/vectors-v2/keys.json publishes it */
static const char hint1_pk[] = "c2f38d34dafe402561da5a0a278e8a3255e0fc9c2e58c0209966a589fd07b631";

void fz2_init(void)
{
    static bool done;
    if (done)
        return;
    FZ_CHECK(sodium_init() >= 0, "libsodium");
    for (int i = 0; i < FZ2_N; i++) {
        uint8_t seed[UG_SEED_LEN], pk[UG_PK_LEN];
        memset(seed, 0xa0 + i, sizeof seed);
        FZ_CHECK(crypto_sign_seed_keypair(pk, fz2_keys[i].sk, seed) == 0, "keypair");
        ug_pubkey_set(&fz2_keys[i].pub, pk);
    }
    char hex[2 * UG_PK_LEN + 1];
    sodium_bin2hex(hex, sizeof hex, fz2_keys[FZ2_HINT1].pub.pk, UG_PK_LEN);
    FZ_CHECK(strcmp(hex, hint1_pk) == 0, "hint1 is %s, not keys.json's", hex);
    done = true;
}

static void list(ug_pubkey *out, uint8_t *n, uint8_t *t, int first, int count, int thr)
{
    for (int i = 0; i < count; i++)
        out[i] = fz2_keys[first + i].pub;
    *n = (uint8_t)count;
    *t = (uint8_t)thr;
}

void fz2_keyring(ug2_keyring *k, uint32_t kv)
{
    memset(k, 0, sizeof *k);
    k->kv = kv;
    k->exp = FZ_NOW + UINT64_C(365) * 86400;
    list(k->root, &k->nroot, &k->root_t, kv == 1 ? FZ2_ROOT1 : FZ2_ROOT3, 2, 2);
    list(k->rel, &k->nrel, &k->rel_t, FZ2_REL1, 3, 2);
    list(k->cert, &k->ncert, &k->cert_t, FZ2_CERT1, 2, 1);
    k->min_serial = kv == 1 ? 0 : 5;
}

void fz2_anchor(ug2_keyring *k)
{
    uint8_t roots[2][UG_PK_LEN];
    memcpy(roots[0], fz2_keys[FZ2_ROOT1].pub.pk, UG_PK_LEN);
    memcpy(roots[1], fz2_keys[FZ2_ROOT2].pub.pk, UG_PK_LEN);
    FZ_CHECK(ug2_anchor_set(k, 0, (const uint8_t(*)[UG_PK_LEN])roots, 2, 2) == 0, "anchor");
}

void fz2_peer(ug2_peer *p)
{
    memset(p, 0, sizeof *p);
    fz2_keyring(&p->kr, 3);
    p->has_keyring = true;
    memcpy(p->app, "example-app", 12);
    memcpy(p->plat, "linux-x86_64", 13);
    memcpy(p->chan, "stable", 7);
    memcpy(p->tracker, "eu-1", 5);
    FZ_CHECK(ug_version_parse(&p->current, "1.4.2", 5) == 0, "version");
    p->seq_hi = 10;
    p->now = FZ_NOW;
    p->uid = 4242;
    for (unsigned i = 0; i < UG_NONCE_LEN; i++)
        p->nonce[i] = (uint8_t)i;
}

/* Are the top-level keys of the (accepted, so canonical) map body in the order of order[0..n)? */
static bool keys_in_order(const uint8_t *body, size_t len, const char *const *order, size_t n)
{
    ug_rd r = {body, body + len};
    ug_rd_item m, k;
    size_t at = 0;
    if (ug_rd_head(&r, 8, &m) != 0 || m.kind != UG_RD_MAP)
        return false;
    for (uint64_t i = 0; i < m.u; i++) {
        if (ug_rd_head(&r, 7, &k) != 0 || k.kind != UG_RD_STR)
            return false;
        while (at < n && !(strlen(order[at]) == k.u && memcmp(order[at], k.ptr, k.u) == 0))
            at++;
        if (at++ == n || ug_rd_skip(&r, 7) != 0)
            return false;
    }
    return true;
}

void fz2_same_bytes(const uint8_t *out, size_t n, const uint8_t *body, size_t len, const char *const *order,
                    size_t norder, const char *what)
{
    FZ_CHECK(n == len, "%s of %zu bytes re-encodes to %zu", what, len, n);
    if (keys_in_order(body, len, order, norder))
        FZ_CHECK(memcmp(out, body, n) == 0, "canonical %s re-encodes differently", what);
}
