/* Strict decoders of the version 2 datagrams' bodies: HELLO, HINT, WAIT and
 * REPORT (COOKIE's body is version 1's), and the whole-datagram parsers. */
#include <string.h>

#include "v2.h"

int ug2_dgram_decode(ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err)
{
    return ug_dgram_decode_v(d, buf, len, UG2_VERSION, err);
}

/* A kv value: 1..2^32-1, or 0.. where zero is allowed. */
static bool kv_ok(const ug_rd_val *v, uint64_t min)
{
    return v->u >= min && v->u <= UINT32_MAX;
}

/* The HELLO body; the credential located, decoded only when with_cred. */
static int hello_body(ug2_hello *h, const uint8_t *body, size_t len, bool with_cred, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("uid", UG_RD_F_UINT, true, 0, 0),
        F("ver", UG_RD_F_STR, true, 1, UG_VER_MAX),
        F("ts", UG_RD_F_UINT, true, 0, 0),
        F("nonce", UG_RD_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN),
        F("pk", UG_RD_F_BIN, true, UG_PK_LEN, UG_PK_LEN),
        F("cred", UG_RD_F_SIGNED, true, 0, 0),
        F("app", UG_RD_F_STR, true, 1, UG2_LABEL_MAX),
        F("plat", UG_RD_F_STR, true, 1, UG2_LABEL_MAX),
        F("chan", UG_RD_F_STR, true, 1, UG2_CHAN_MAX),
        F("kv", UG_RD_F_UINT, true, 0, 0),
        F("cookie", UG_RD_F_BIN, false, UG_COOKIE_LEN, UG_COOKIE_LEN),
        F("pad", UG_RD_F_BIN, false, 0, UG_DGRAM_MAX),
    };
    ug_rd_val v[12];
    ug_err e;
    ug_hello *b = &h->base;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 12, v, &e) != 0)
        return ug_fail(err, e);
    b->uid = v[0].u;
    if (b->uid == 0 || b->uid > UG_UID_MAX)
        return ug_fail(err, UG_E_SCHEMA);
    if (ug_version_parse(&b->ver, (const char *)v[1].ptr, v[1].len) != 0)
        return ug_fail(err, UG_E_VERSION);
    if (ug2_label_of(h->app, &v[6], UG2_LABEL_MAX) != 0 || ug2_label_of(b->plat, &v[7], UG2_LABEL_MAX) != 0 ||
        ug2_label_of(b->chan, &v[8], UG2_CHAN_MAX) != 0)
        return ug_fail(err, UG_E_STRING);
    if (!kv_ok(&v[9], 0))
        return ug_fail(err, UG_E_SCHEMA);
    h->kv = (uint32_t)v[9].u;
    b->ts = v[2].u;
    memcpy(b->nonce, v[3].ptr, UG_NONCE_LEN);
    memcpy(b->pk, v[4].ptr, UG_PK_LEN);
    b->cred_obj = v[5].obj;
    memset(&b->cred, 0, sizeof b->cred);
    b->cred_decoded = false;
    b->has_cookie = v[10].present;
    if (v[10].present)
        memcpy(b->cookie, v[10].ptr, UG_COOKIE_LEN);
    b->pad_len = v[11].present ? v[11].len : 0;
    return with_cred ? ug_hello_cred_decode(b, err) : 0;
}

int ug2_hello_decode(ug2_hello *h, const uint8_t *body, size_t len, ug_err *err)
{
    return hello_body(h, body, len, true, err);
}

int ug2_hello_parse(ug2_hello *h, ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err)
{
    if (ug_dgram_of(d, UG2_VERSION, UG_TYPE_HELLO, buf, len, err) != 0)
        return -1;
    return hello_body(h, d->body, d->body_len, false, err);
}

int ug2_report_decode(ug2_report *r, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("uid", UG_RD_F_UINT, true, 0, 0),
        F("ver", UG_RD_F_STR, true, 1, UG_VER_MAX),
        F("to", UG_RD_F_STR, true, 1, UG_VER_MAX),
        F("res", UG_RD_F_UINT, true, 0, 0),
        F("ts", UG_RD_F_UINT, true, 0, 0),
        F("nonce", UG_RD_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN),
        F("pk", UG_RD_F_BIN, true, UG_PK_LEN, UG_PK_LEN),
        F("cred", UG_RD_F_SIGNED, true, 0, 0),
        F("app", UG_RD_F_STR, true, 1, UG2_LABEL_MAX),
        F("via", UG_RD_F_UINT, true, 0, 0),
        F("pad", UG_RD_F_BIN, false, 0, UG_DGRAM_MAX),
    };
    ug_rd_val v[11];
    ug_err e;
    ug_report *b = &r->base;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 11, v, &e) != 0)
        return ug_fail(err, e);
    b->uid = v[0].u;
    if (b->uid == 0 || b->uid > UG_UID_MAX)
        return ug_fail(err, UG_E_SCHEMA);
    if (ug_version_parse(&b->ver, (const char *)v[1].ptr, v[1].len) != 0 ||
        ug_version_parse(&b->to, (const char *)v[2].ptr, v[2].len) != 0)
        return ug_fail(err, UG_E_VERSION);
    if (v[3].u >= UG_RES_COUNT_)
        return ug_fail(err, UG_E_SCHEMA);
    if (ug2_label_of(r->app, &v[8], UG2_LABEL_MAX) != 0)
        return ug_fail(err, UG_E_STRING);
    if (v[9].u >= UG2_VIA_COUNT_)
        return ug_fail(err, UG_E_SCHEMA);
    b->res = (ug_res)v[3].u;
    r->via = (uint8_t)v[9].u;
    b->ts = v[4].u;
    memcpy(b->nonce, v[5].ptr, UG_NONCE_LEN);
    memcpy(b->pk, v[6].ptr, UG_PK_LEN);
    b->cred_obj = v[7].obj;
    b->pad_len = v[10].present ? v[10].len : 0;
    return ug_cred_decode(&b->cred, b->cred_obj.body, b->cred_obj.body_len, err);
}

int ug2_report_parse(ug2_report *r, ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err)
{
    if (ug_dgram_of(d, UG2_VERSION, UG_TYPE_REPORT, buf, len, err) != 0)
        return -1;
    return ug2_report_decode(r, d->body, d->body_len, err);
}

/* An embedded certificate: its shape, then its body. */
static int cert_of(ug2_multisig *m, ug2_cert *c, const ug_rd_val *v, ug_err *err)
{
    if (ug2_multisig_of(m, v, err) != 0)
        return -1;
    return ug2_cert_decode(c, m->body, m->body_len, err);
}

int ug2_hint_decode(ug2_hint *h, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("uid", UG_RD_F_UINT, true, 0, 0),
        F("nonce", UG_RD_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN),
        F("ts", UG_RD_F_UINT, true, 0, 0),
        F("exp", UG_RD_F_UINT, true, 0, 0),
        F("mirror", UG_RD_F_UINT, true, 0, 0),
        F("kv", UG_RD_F_UINT, true, 0, 0),
        F("cert", UG_RD_F_ARRAY, true, 2, 2),
        F("rel", UG_RD_F_ARRAY, true, 2, 2),
        F("delta", UG_RD_F_UINT, false, 0, 0),
    };
    ug_rd_val v[9];
    ug_err e;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 9, v, &e) != 0)
        return ug_fail(err, e);
    if (!kv_ok(&v[5], 1))
        return ug_fail(err, UG_E_SCHEMA);
    h->uid = v[0].u;
    memcpy(h->nonce, v[1].ptr, UG_NONCE_LEN);
    h->ts = v[2].u;
    h->exp = v[3].u;
    h->mirror = v[4].u;
    h->kv = (uint32_t)v[5].u;
    h->has_delta = v[8].present;
    h->delta = v[8].u;
    if (cert_of(&h->cert_obj, &h->cert, &v[6], err) != 0 || ug2_multisig_of(&h->rel_obj, &v[7], err) != 0)
        return -1;
    return ug2_manifest_decode(&h->rel, h->rel_obj.body, h->rel_obj.body_len, err);
}

int ug2_wait_decode(ug2_wait *w, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("nonce", UG_RD_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN),
        F("ts", UG_RD_F_UINT, true, 0, 0),
        F("retry", UG_RD_F_UINT, true, 0, 0),
        F("why", UG_RD_F_UINT, true, 0, 0),
        F("tok", UG_RD_F_SIGNED, false, 0, 0),
        F("cert", UG_RD_F_ARRAY, false, 2, 2),
    };
    ug_rd_val v[6];
    ug_err e;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 6, v, &e) != 0)
        return ug_fail(err, e);
    memcpy(w->nonce, v[0].ptr, UG_NONCE_LEN);
    w->ts = v[1].u;
    w->retry = v[2].u;
    w->why = v[3].u;
    w->has_token = v[4].present;
    if (v[4].present != v[5].present)
        return ug_fail(err, UG_E_SCHEMA);
    if (!w->has_token)
        return 0;
    w->tok_obj = v[4].obj;
    if (ug2_token_decode(&w->tok, w->tok_obj.body, w->tok_obj.body_len, err) != 0)
        return -1;
    return cert_of(&w->cert_obj, &w->cert, &v[5], err);
}
