/* Encoders of every upgate v1 object (msgpack-c, not hot), and the checks of
 * tracker rule 4 and peer section 6. The decoders are in decode.c. */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "mp.h"
#include "rd.h"

static const char *const err_names[UG_E2_COUNT_] = {
    [UG_OK] = "ok",
    [UG_E_SIZE] = "size",
    [UG_E_MSGPACK] = "msgpack",
    [UG_E_HEADER] = "header",
    [UG_E_SCHEMA] = "schema",
    [UG_E_VERSION] = "version",
    [UG_E_STRING] = "string",
    [UG_E_KEY] = "unknown key id",
    [UG_E_SIG] = "signature",
    [UG_E_EXPIRED] = "expired",
    [UG_E_BINDING] = "credential binding",
    [UG_E_UID] = "uid",
    [UG_E_NONCE] = "nonce",
    [UG_E_ROLLBACK] = "rollback",
    [UG_E_MIRROR] = "mirror",
    [UG_E_BUFFER] = "buffer",
    [UG_E_THRESHOLD] = "threshold",
    [UG_E_CHAIN] = "chain",
    [UG_E_KEYRING] = "keyring",
    [UG_E_REVOKED] = "revoked",
    [UG_E_NOT_YET] = "not yet valid",
    [UG_E_LIFETIME] = "lifetime",
    [UG_E_TRACKER] = "tracker",
    [UG_E_APP] = "app",
    [UG_E_PLAT] = "platform",
    [UG_E_CHAN] = "channel",
    [UG_E_SEQ] = "seq",
    [UG_E_DELTA] = "delta",
    [UG_E_CLOCK] = "clock skew",
};

const char *ug_err_name(ug_err e)
{
    return (unsigned)e < UG_E2_COUNT_ && err_names[e] ? err_names[e] : "unknown";
}

static const char magic[2] = {'U', 'G'};

/* ---- encoding ------------------------------------------------------- */

static int done(ug_mp_out *o, size_t *len)
{
    return ug_mp_out_done(o, len);
}

int ug_cred_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_cred *c)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 4);
    ug_mp_out_key(&o, "uid"), ug_mp_out_uint(&o, c->uid);
    ug_mp_out_key(&o, "pk"), ug_mp_out_bin(&o, c->pk, UG_PK_LEN);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, c->exp);
    ug_mp_out_key(&o, "kid"), ug_mp_out_bin(&o, c->kid, UG_KID_LEN);
    return done(&o, len);
}

int ug_hello_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_hello_fields *h)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 6 + !!h->plat + !!h->chan + !!h->cookie + !!h->has_pad);
    ug_mp_out_key(&o, "uid"), ug_mp_out_uint(&o, h->uid);
    ug_mp_out_key(&o, "ver"), ug_mp_out_str(&o, h->ver, strlen(h->ver));
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, h->ts);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, h->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "pk"), ug_mp_out_bin(&o, h->pk, UG_PK_LEN);
    ug_mp_out_key(&o, "cred"), ug_mp_out_raw(&o, h->cred, h->cred_len);
    if (h->plat)
        ug_mp_out_key(&o, "plat"), ug_mp_out_str(&o, h->plat, strlen(h->plat));
    if (h->chan)
        ug_mp_out_key(&o, "chan"), ug_mp_out_str(&o, h->chan, strlen(h->chan));
    if (h->cookie)
        ug_mp_out_key(&o, "cookie"), ug_mp_out_bin(&o, h->cookie, UG_COOKIE_LEN);
    if (h->has_pad) {
        if (h->pad_len > UG_DGRAM_MAX)
            return -1;
        static const uint8_t zeros[UG_DGRAM_MAX];
        ug_mp_out_key(&o, "pad"), ug_mp_out_bin(&o, zeros, h->pad_len);
    }
    return done(&o, len);
}

int ug_report_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_report_fields *r)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 8 + !!r->has_pad);
    ug_mp_out_key(&o, "uid"), ug_mp_out_uint(&o, r->uid);
    ug_mp_out_key(&o, "ver"), ug_mp_out_str(&o, r->ver, strlen(r->ver));
    ug_mp_out_key(&o, "to"), ug_mp_out_str(&o, r->to, strlen(r->to));
    ug_mp_out_key(&o, "res"), ug_mp_out_uint(&o, (uint64_t)r->res);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, r->ts);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, r->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "pk"), ug_mp_out_bin(&o, r->pk, UG_PK_LEN);
    ug_mp_out_key(&o, "cred"), ug_mp_out_raw(&o, r->cred, r->cred_len);
    if (r->has_pad) {
        if (r->pad_len > UG_DGRAM_MAX)
            return -1;
        static const uint8_t zeros[UG_DGRAM_MAX];
        ug_mp_out_key(&o, "pad"), ug_mp_out_bin(&o, zeros, r->pad_len);
    }
    return done(&o, len);
}

int ug_manifest_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_manifest *m)
{
    char to[UG_VER_MAX + 1];
    if (ug_version_format(&m->to, to, sizeof to) != 0 || m->nurls < 1 || m->nurls > UG_URLS_MAX)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 6);
    ug_mp_out_key(&o, "to"), ug_mp_out_str(&o, to, strlen(to));
    ug_mp_out_key(&o, "urls");
    msgpack_pack_array(&o.pk, m->nurls);
    for (unsigned i = 0; i < m->nurls; i++)
        ug_mp_out_str(&o, m->urls[i], strnlen(m->urls[i], UG_URL_MAX));
    ug_mp_out_key(&o, "size"), ug_mp_out_uint(&o, m->size);
    ug_mp_out_key(&o, "hash"), ug_mp_out_bin(&o, m->hash, UG_HASH_LEN);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, m->exp);
    ug_mp_out_key(&o, "kid"), ug_mp_out_bin(&o, m->kid, UG_KID_LEN);
    return done(&o, len);
}

int ug_hint_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_hint_fields *h)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 7);
    ug_mp_out_key(&o, "uid"), ug_mp_out_uint(&o, h->uid);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, h->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, h->ts);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, h->exp);
    ug_mp_out_key(&o, "mirror"), ug_mp_out_uint(&o, h->mirror);
    ug_mp_out_key(&o, "kid"), ug_mp_out_bin(&o, h->kid, UG_KID_LEN);
    ug_mp_out_key(&o, "rel"), ug_mp_out_raw(&o, h->rel, h->rel_len);
    return done(&o, len);
}

int ug_wait_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_wait *w)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 4);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, w->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, w->ts);
    ug_mp_out_key(&o, "retry"), ug_mp_out_uint(&o, w->retry);
    ug_mp_out_key(&o, "why"), ug_mp_out_uint(&o, w->why);
    return done(&o, len);
}

int ug_cookie_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_cookie *c)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 3);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, c->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "cookie"), ug_mp_out_bin(&o, c->cookie, UG_COOKIE_LEN);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, c->ts);
    return done(&o, len);
}

int ug_signed_encode(uint8_t *out, size_t cap, size_t *len, const char *ctx, const uint8_t *body,
                     size_t body_len, const uint8_t sk[UG_SK_LEN])
{
    uint8_t sig[UG_SIG_LEN];
    if (ug_sign(sig, ctx, body, body_len, sk) != 0)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_array(&o.pk, 2);
    ug_mp_out_bin(&o, body, body_len);
    ug_mp_out_bin(&o, sig, UG_SIG_LEN);
    return done(&o, len);
}

int ug_dgram_encode(uint8_t *out, size_t cap, size_t *len, ug_type type, const uint8_t *body,
                    size_t body_len, const uint8_t *sk)
{
    const char *ctx = type == UG_TYPE_HELLO    ? UG_CTX_HELLO
                      : type == UG_TYPE_HINT   ? UG_CTX_HINT
                      : type == UG_TYPE_REPORT ? UG_CTX_REPORT
                                               : NULL;
    return ug_dgram_seal(out, cap, len, 1, ctx, type, body, body_len, sk);
}

int ug_dgram_seal(uint8_t *out, size_t cap, size_t *len, unsigned version, const char *ctx, ug_type type,
                  const uint8_t *body, size_t body_len, const uint8_t *sk)
{
    if ((ctx != NULL) != (sk != NULL))
        return -1;
    uint8_t sig[UG_SIG_LEN];
    if (ctx && ug_sign(sig, ctx, body, body_len, sk) != 0)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap < UG_DGRAM_MAX ? cap : UG_DGRAM_MAX);
    msgpack_pack_array(&o.pk, 5);
    ug_mp_out_str(&o, magic, 2);
    ug_mp_out_uint(&o, version);
    ug_mp_out_uint(&o, (uint64_t)type);
    ug_mp_out_bin(&o, body, body_len);
    if (ctx)
        ug_mp_out_bin(&o, sig, UG_SIG_LEN);
    else
        msgpack_pack_nil(&o.pk);
    return done(&o, len);
}

/* Bytes of a datagram around a body of body_len: "95 a2 55 47 01 type",
 * the bin header, and a 64-byte bin signature or nil. */
size_t ug_dgram_len(size_t body_len, bool is_signed)
{
    size_t hdr = body_len < 0x100 ? 2 : body_len < 0x10000 ? 3 : 5;
    return 6 + hdr + body_len + (is_signed ? 2 + UG_SIG_LEN : 1);
}

size_t ug_hint_max_len(size_t rel_len)
{
    /* map header; uid/ts/exp as uint64 (9); mirror < 8 (fixint); bins */
    size_t body = 1 + (4 + 9) + (6 + 18) + (3 + 9) + (4 + 9) + (7 + 1) + (4 + 10) + (4 + rel_len);
    return ug_dgram_len(body, true);
}

/* The largest pad p whose datagram (body of blen bytes without pad, plus the
 * "pad" key, a bin header and p bytes) is at most target and at least floor;
 * SIZE_MAX when none is. The bin8/bin16 switch can make target itself
 * unreachable by one byte. */
size_t ug_pad_for(size_t blen, size_t target, size_t floor)
{
    size_t best = SIZE_MAX;
    for (size_t p = 0; p <= UG_DGRAM_MAX; p++) {
        size_t total = ug_dgram_len(blen + 4 + (p < 0x100 ? 2 : 3) + p, true);
        if (total > target)
            break;
        if (total >= floor)
            best = p;
    }
    return best;
}

int ug_report_build(uint8_t *out, size_t cap, size_t *len, ug_report_fields *r, size_t target,
                    const uint8_t sk[UG_SK_LEN])
{
    uint8_t body[UG_DGRAM_MAX];
    size_t blen;
    if (target > UG_DGRAM_MAX)
        return -1;
    r->has_pad = false;
    if (ug_report_encode_body(body, sizeof body, &blen, r) != 0)
        return -1;
    if (ug_dgram_len(blen, true) < target) {
        size_t p = ug_pad_for(blen, target, 0);
        if (p != SIZE_MAX) {
            r->has_pad = true;
            r->pad_len = p;
            if (ug_report_encode_body(body, sizeof body, &blen, r) != 0)
                return -1;
        }
    }
    if (ug_dgram_len(blen, true) > UG_DGRAM_MAX)
        return -1;
    return ug_dgram_encode(out, cap, len, UG_TYPE_REPORT, body, blen, sk);
}

int ug_hello_build(uint8_t *out, size_t cap, size_t *len, ug_hello_fields *h, size_t target,
                   const uint8_t sk[UG_SK_LEN])
{
    uint8_t body[UG_DGRAM_MAX];
    size_t blen;
    if (target < UG_HELLO_MIN || target > UG_DGRAM_MAX)
        return -1;
    h->has_pad = false;
    if (ug_hello_encode_body(body, sizeof body, &blen, h) != 0)
        return -1;
    if (ug_dgram_len(blen, true) < target) {
        size_t best = ug_pad_for(blen, target, UG_HELLO_MIN);
        if (best != SIZE_MAX) {
            h->has_pad = true;
            h->pad_len = best;
            if (ug_hello_encode_body(body, sizeof body, &blen, h) != 0)
                return -1;
        }
    }
    size_t total = ug_dgram_len(blen, true);
    if (total < UG_HELLO_MIN || total > UG_DGRAM_MAX)
        return -1;
    return ug_dgram_encode(out, cap, len, UG_TYPE_HELLO, body, blen, sk);
}

/* ---- checks --------------------------------------------------------- */

/* The credential's cheap checks, for a HELLO or a REPORT carrying it. */
int ug_cred_bound(const ug_cred *c, uint64_t uid, const uint8_t pk[UG_PK_LEN], const ug_pubkey *issuers,
                  size_t nissuers, uint64_t now, const ug_pubkey **issuer, ug_err *err)
{
    *issuer = ug_pubkey_find(issuers, nissuers, c->kid);
    if (!*issuer)
        return ug_fail(err, UG_E_KEY);
    if (c->exp <= now)
        return ug_fail(err, UG_E_EXPIRED);
    if (c->uid != uid || sodium_memcmp(c->pk, pk, UG_PK_LEN) != 0)
        return ug_fail(err, UG_E_BINDING);
    return 0;
}

int ug_cred_check(const ug_hello *h, const ug_pubkey *issuers, size_t nissuers, uint64_t now,
                  const ug_pubkey **issuer, ug_err *err)
{
    /* fail closed: an undecoded credential's fields are zeros, not checks */
    if (!h->cred_decoded)
        return ug_fail(err, UG_E_SCHEMA);
    return ug_cred_bound(&h->cred, h->uid, h->pk, issuers, nissuers, now, issuer, err);
}

int ug_report_cred_sig_verify(const ug_report *r, const ug_pubkey *issuer, ug_err *err)
{
    if (ug_verify(r->cred_obj.sig, UG_CTX_CRED, r->cred_obj.body, r->cred_obj.body_len, issuer->pk) != 0)
        return ug_fail(err, UG_E_SIG);
    return 0;
}

int ug_report_sig_verify(const ug_report *r, const ug_dgram *d, const char *ctx, ug_err *err)
{
    if (d->type != UG_TYPE_REPORT || d->sig == NULL || ug_verify(d->sig, ctx, d->body, d->body_len, r->pk) != 0)
        return ug_fail(err, UG_E_SIG);
    return 0;
}

int ug_report_verify(const ug_report *r, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers,
                     uint64_t now, ug_err *err)
{
    const ug_pubkey *issuer;
    if (ug_cred_bound(&r->cred, r->uid, r->pk, issuers, nissuers, now, &issuer, err) != 0)
        return -1;
    if (ug_report_cred_sig_verify(r, issuer, err) != 0)
        return -1;
    return ug_report_sig_verify(r, d, UG_CTX_REPORT, err);
}

int ug_cred_sig_verify(const ug_hello *h, const ug_pubkey *issuer, ug_err *err)
{
    if (ug_verify(h->cred_obj.sig, UG_CTX_CRED, h->cred_obj.body, h->cred_obj.body_len, issuer->pk) != 0)
        return ug_fail(err, UG_E_SIG);
    return 0;
}

int ug_hello_sig_verify(const ug_hello *h, const ug_dgram *d, ug_err *err)
{
    if (d->type != UG_TYPE_HELLO || d->sig == NULL || ug_verify(d->sig, UG_CTX_HELLO, d->body, d->body_len, h->pk) != 0)
        return ug_fail(err, UG_E_SIG);
    return 0;
}

int ug_hint_verify(ug_hint *hint, const uint8_t *dgram, size_t len, const ug_peer_expect *want,
                   ug_err *err)
{
    ug_dgram d;
    if (ug_dgram_decode(&d, dgram, len, err) != 0)
        return -1;
    if (d.type != UG_TYPE_HINT)
        return ug_fail(err, UG_E_HEADER);
    if (ug_hint_decode(hint, d.body, d.body_len, err) != 0)
        return -1;
    const ug_pubkey *hk = ug_pubkey_find(want->hint_keys, want->nhint_keys, hint->kid);
    if (!hk)
        return ug_fail(err, UG_E_KEY);
    if (ug_verify(d.sig, UG_CTX_HINT, d.body, d.body_len, hk->pk) != 0)
        return ug_fail(err, UG_E_SIG);
    if (hint->uid != want->uid)
        return ug_fail(err, UG_E_UID);
    if (sodium_memcmp(hint->nonce, want->nonce, UG_NONCE_LEN) != 0)
        return ug_fail(err, UG_E_NONCE);
    if (hint->exp <= want->now)
        return ug_fail(err, UG_E_EXPIRED);
    const ug_pubkey *rk = ug_pubkey_find(want->release_keys, want->nrelease_keys, hint->rel.kid);
    if (!rk)
        return ug_fail(err, UG_E_KEY);
    if (ug_verify(hint->rel_obj.sig, UG_CTX_RELEASE, hint->rel_obj.body, hint->rel_obj.body_len, rk->pk) != 0)
        return ug_fail(err, UG_E_SIG);
    if (hint->rel.exp <= want->now)
        return ug_fail(err, UG_E_EXPIRED);
    if (ug_version_cmp(&hint->rel.to, &want->current) <= 0)
        return ug_fail(err, UG_E_ROLLBACK);
    if (hint->mirror >= hint->rel.nurls)
        return ug_fail(err, UG_E_MIRROR);
    if (err)
        *err = UG_OK;
    return 0;
}
