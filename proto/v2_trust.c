/* Version 2's chain of trust: the pinned anchor, the keyring chain step and
 * the hint certificate rules (protocol-v2.md 5.1, 5.2). */
#include <string.h>

#include "v2.h"

int ug2_anchor_set(ug2_keyring *k, uint32_t kv, const uint8_t (*roots)[UG_PK_LEN], size_t n, unsigned t)
{
    memset(k, 0, sizeof *k);
    if (n < 1 || n > UG2_KEYS_MAX || t < 1 || t > n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        ug_pubkey_set(&k->root[i], roots[i]);
        if (ug_pubkey_find(k->root, i, k->root[i].kid))
            return -1;
    }
    k->kv = kv;
    k->nroot = (uint8_t)n;
    k->root_t = (uint8_t)t;
    return 0;
}

/* Same root keys (as sets: lists hold distinct kids) and threshold. */
static bool same_roots(const ug2_keyring *a, const ug2_keyring *b)
{
    if (a->nroot != b->nroot || a->root_t != b->root_t)
        return false;
    for (unsigned i = 0; i < a->nroot; i++)
        if (!ug_pubkey_find(b->root, b->nroot, a->root[i].kid))
            return false;
    return true;
}

int ug2_keyring_self_check(const ug2_keyring *k, const ug2_multisig *m, ug_err *err)
{
    return ug2_multisig_check(m, UG2_CTX_KEYRING, k->root, k->nroot, k->root_t, err);
}

int ug2_keyring_step(const ug2_keyring *held, bool held_is_anchor, const uint8_t *doc, size_t len,
                     ug2_keyring *next, ug_err *err)
{
    ug2_multisig m;
    if (ug2_keyring_open(next, &m, doc, len, err) != 0)
        return -1;
    bool rotation = (uint64_t)next->kv == (uint64_t)held->kv + 1;
    bool bootstrap = held_is_anchor && next->kv == held->kv;
    if (!rotation && !(bootstrap && same_roots(held, next)))
        return ug_fail(err, UG_E_CHAIN);
    if (ug2_multisig_check(&m, UG2_CTX_KEYRING, held->root, held->nroot, held->root_t, err) != 0)
        return -1;
    return rotation ? ug2_keyring_self_check(next, &m, err) : 0;
}

int ug2_cert_check(const ug2_cert *c, const ug2_multisig *m, const ug2_cert_ctx *x, uint64_t ts,
                   uint32_t *need_kv, ug_err *err)
{
    if (c->kv > x->kr->kv) {
        if (need_kv)
            *need_kv = c->kv;
        return ug_fail(err, UG_E_KEYRING);
    }
    if (ug2_multisig_check(m, UG2_CTX_CERT, x->kr->cert, x->kr->ncert, x->kr->cert_t, err) != 0)
        return -1;
    if (c->exp <= c->nbf || c->exp - c->nbf > UG2_CERT_LIFE_MAX)
        return ug_fail(err, UG_E_LIFETIME);
    if (c->serial < x->min_serial)
        return ug_fail(err, UG_E_REVOKED);
    if (ts < c->nbf)
        return ug_fail(err, UG_E_NOT_YET);
    if (c->exp <= (x->now > ts ? x->now : ts))
        return ug_fail(err, UG_E_EXPIRED);
    if (c->trk[0] && x->tracker && x->tracker[0] && strcmp(c->trk, x->tracker) != 0)
        return ug_fail(err, UG_E_TRACKER);
    return 0;
}
