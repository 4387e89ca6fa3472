/* A version 2 tracker: rule 4 on HELLO and REPORT v2, and the checks of the
 * keys and manifests it serves, made when it loads a policy (protocol-v2.md 6). */
#include <string.h>

#include "v2.h"

int ug2_hello_sig_verify(const ug2_hello *h, const ug_dgram *d, ug_err *err)
{
    if (d->type != UG_TYPE_HELLO || d->sig == NULL ||
        ug_verify(d->sig, UG2_CTX_HELLO, d->body, d->body_len, h->base.pk) != 0)
        return ug_fail(err, UG_E_SIG);
    return 0;
}

int ug2_hello_verify(ug2_hello *h, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers, uint64_t now,
                     ug_err *err)
{
    const ug_pubkey *issuer;
    if (ug_hello_cred_decode(&h->base, err) != 0 ||
        ug_cred_check(&h->base, issuers, nissuers, now, &issuer, err) != 0 ||
        ug_cred_sig_verify(&h->base, issuer, err) != 0)
        return -1;
    return ug2_hello_sig_verify(h, d, err);
}

int ug2_report_verify(const ug2_report *r, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers,
                      uint64_t now, ug_err *err)
{
    const ug_report *b = &r->base;
    const ug_pubkey *issuer;
    if (ug_cred_bound(&b->cred, b->uid, b->pk, issuers, nissuers, now, &issuer, err) != 0)
        return -1;
    if (ug_report_cred_sig_verify(b, issuer, err) != 0)
        return -1;
    return ug_report_sig_verify(b, d, UG2_CTX_REPORT, err);
}

int ug2_tracker_keys_check(ug2_tracker_keys *t, const uint8_t *keyring_doc, size_t keyring_len,
                           const uint8_t *cert_obj, size_t cert_len, const uint8_t hint_pk[UG_PK_LEN],
                           uint64_t now, ug_err *err)
{
    ug2_multisig km, cm;
    if (ug2_keyring_open(&t->kr, &km, keyring_doc, keyring_len, err) != 0 ||
        ug2_keyring_self_check(&t->kr, &km, err) != 0)
        return -1;
    if (t->kr.exp <= now)
        return ug_fail(err, UG_E_EXPIRED);
    if (ug2_cert_open(&t->cert, &cm, cert_obj, cert_len, err) != 0)
        return -1;
    ug2_cert_ctx x = {.kr = &t->kr, .min_serial = t->kr.min_serial, .now = now};
    if (ug2_cert_check(&t->cert, &cm, &x, now, NULL, err) != 0)
        return -1;
    if (memcmp(t->cert.pk, hint_pk, UG_PK_LEN) != 0)
        return ug_fail(err, UG_E_KEY);
    t->keyring_doc = keyring_doc, t->keyring_len = keyring_len;
    t->cert_obj = cert_obj, t->cert_len = cert_len;
    return 0;
}

int ug2_tracker_manifest_check(ug2_manifest *m, const uint8_t *obj, size_t len, const ug2_tracker_keys *t,
                               uint64_t now, ug_err *err)
{
    ug2_multisig ms;
    if (ug2_manifest_open(m, &ms, obj, len, err) != 0 ||
        ug2_multisig_check(&ms, UG2_CTX_RELEASE, t->kr.rel, t->kr.nrel, t->kr.rel_t, err) != 0)
        return -1;
    if (m->exp <= now)
        return ug_fail(err, UG_E_EXPIRED);
    if (m->min_serial > t->cert.serial)
        return ug_fail(err, UG_E_REVOKED);
    return 0;
}
