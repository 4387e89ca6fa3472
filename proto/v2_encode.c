/* Encoders of every version 2 object and datagram (msgpack-c, keys in the
 * order of protocol-v2.md's tables), and the largest HINT and WAIT. */
#include <string.h>

#include "mp.h"
#include "v2.h"

static void keys_out(ug_mp_out *o, const char *key, const ug_pubkey *keys, size_t n, const char *tkey, unsigned t)
{
    ug_mp_out_key(o, key);
    msgpack_pack_array(&o->pk, n);
    for (size_t i = 0; i < n; i++)
        ug_mp_out_bin(o, keys[i].pk, UG_PK_LEN);
    ug_mp_out_key(o, tkey), ug_mp_out_uint(o, t);
}

static void strs_out(ug_mp_out *o, const char *key, const char (*s)[UG_URL_MAX + 1], size_t n)
{
    ug_mp_out_key(o, key);
    msgpack_pack_array(&o->pk, n);
    for (size_t i = 0; i < n; i++)
        ug_mp_out_str(o, s[i], strnlen(s[i], UG_URL_MAX));
}

static void text_out(ug_mp_out *o, const char *key, const char *s)
{
    ug_mp_out_key(o, key), ug_mp_out_str(o, s, strlen(s));
}

int ug2_keyring_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_keyring *k)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 9 + (k->nurls > 0));
    ug_mp_out_key(&o, "kv"), ug_mp_out_uint(&o, k->kv);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, k->exp);
    keys_out(&o, "root", k->root, k->nroot, "root_t", k->root_t);
    keys_out(&o, "rel", k->rel, k->nrel, "rel_t", k->rel_t);
    keys_out(&o, "cert", k->cert, k->ncert, "cert_t", k->cert_t);
    ug_mp_out_key(&o, "min_serial"), ug_mp_out_uint(&o, k->min_serial);
    if (k->nurls)
        strs_out(&o, "urls", k->urls, k->nurls);
    return ug_mp_out_done(&o, len);
}

int ug2_cert_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_cert *c)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 6 + (c->trk[0] != 0));
    ug_mp_out_key(&o, "pk"), ug_mp_out_bin(&o, c->pk, UG_PK_LEN);
    ug_mp_out_key(&o, "kid"), ug_mp_out_bin(&o, c->kid, UG_KID_LEN);
    ug_mp_out_key(&o, "serial"), ug_mp_out_uint(&o, c->serial);
    ug_mp_out_key(&o, "nbf"), ug_mp_out_uint(&o, c->nbf);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, c->exp);
    ug_mp_out_key(&o, "kv"), ug_mp_out_uint(&o, c->kv);
    if (c->trk[0])
        text_out(&o, "trk", c->trk);
    return ug_mp_out_done(&o, len);
}

static int version_out(ug_mp_out *o, const char *key, const ug_version *v)
{
    char s[UG_VER_MAX + 1];
    if (ug_version_format(v, s, sizeof s) != 0)
        return -1;
    text_out(o, key, s);
    return 0;
}

static int delta_out(ug_mp_out *o, const ug2_delta *d)
{
    msgpack_pack_map(&o->pk, 4);
    if (version_out(o, "from", &d->from) != 0)
        return -1;
    ug_mp_out_key(o, "size"), ug_mp_out_uint(o, d->size);
    ug_mp_out_key(o, "hash"), ug_mp_out_bin(o, d->hash, UG_HASH_LEN);
    strs_out(o, "urls", d->urls, d->nurls);
    return 0;
}

/* The optional tail of a manifest: downgrade, min_serial, deltas, keyring. */
static int manifest_tail(ug_mp_out *o, const ug2_manifest *m)
{
    if (m->downgrade)
        ug_mp_out_key(o, "downgrade"), (void)msgpack_pack_true(&o->pk);
    if (m->min_serial)
        ug_mp_out_key(o, "min_serial"), ug_mp_out_uint(o, m->min_serial);
    if (m->ndeltas) {
        ug_mp_out_key(o, "deltas");
        msgpack_pack_array(&o->pk, m->ndeltas);
        for (unsigned i = 0; i < m->ndeltas; i++)
            if (delta_out(o, &m->deltas[i]) != 0)
                return -1;
    }
    if (m->nkeyring)
        strs_out(o, "keyring", m->keyring, m->nkeyring);
    return 0;
}

int ug2_manifest_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_manifest *m)
{
    if (m->nurls < 1 || m->nurls > UG_URLS_MAX || m->nplat < 1 || m->nplat > UG2_PLATS_MAX ||
        m->ndeltas > UG2_DELTAS_MAX || m->nkeyring > UG2_KR_URLS_MAX)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 10 + m->downgrade + (m->min_serial > 0) + (m->ndeltas > 0) + (m->nkeyring > 0));
    if (version_out(&o, "to", &m->to) != 0)
        return -1;
    strs_out(&o, "urls", m->urls, m->nurls);
    ug_mp_out_key(&o, "size"), ug_mp_out_uint(&o, m->size);
    ug_mp_out_key(&o, "hash"), ug_mp_out_bin(&o, m->hash, UG_HASH_LEN);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, m->exp);
    text_out(&o, "app", m->app);
    ug_mp_out_key(&o, "plat");
    msgpack_pack_array(&o.pk, m->nplat);
    for (unsigned i = 0; i < m->nplat; i++)
        ug_mp_out_str(&o, m->plat[i], strlen(m->plat[i]));
    text_out(&o, "chan", m->chan);
    ug_mp_out_key(&o, "seq"), ug_mp_out_uint(&o, m->seq);
    ug_mp_out_key(&o, "urgency"), ug_mp_out_uint(&o, m->urgency);
    if (manifest_tail(&o, m) != 0)
        return -1;
    return ug_mp_out_done(&o, len);
}

int ug2_token_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_token *t)
{
    if (t->nseqs > UG2_SEQS_MAX)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 5);
    text_out(&o, "trk", t->trk);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, t->ts);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, t->exp);
    ug_mp_out_key(&o, "kv"), ug_mp_out_uint(&o, t->kv);
    ug_mp_out_key(&o, "seqs");
    msgpack_pack_array(&o.pk, t->nseqs);
    for (unsigned i = 0; i < t->nseqs; i++) {
        msgpack_pack_array(&o.pk, 3);
        ug_mp_out_str(&o, t->seqs[i].app, strlen(t->seqs[i].app));
        ug_mp_out_str(&o, t->seqs[i].chan, strlen(t->seqs[i].chan));
        ug_mp_out_uint(&o, t->seqs[i].seq);
    }
    return ug_mp_out_done(&o, len);
}

int ug2_token_sign(uint8_t *out, size_t cap, size_t *len, const ug2_token *t, const uint8_t sk[UG_SK_LEN])
{
    uint8_t body[UG_OBJ_MAX];
    size_t blen;
    if (ug2_token_encode_body(body, sizeof body, &blen, t) != 0)
        return -1;
    return ug_signed_encode(out, cap, len, UG2_CTX_TOKEN, body, blen, sk);
}

/* ---- datagrams ------------------------------------------------------------ */

int ug2_dgram_encode(uint8_t *out, size_t cap, size_t *len, ug_type type, const uint8_t *body, size_t body_len,
                     const uint8_t *sk)
{
    const char *ctx = type == UG_TYPE_HELLO    ? UG2_CTX_HELLO
                      : type == UG_TYPE_HINT   ? UG2_CTX_HINT
                      : type == UG_TYPE_REPORT ? UG2_CTX_REPORT
                                               : NULL;
    return ug_dgram_seal(out, cap, len, UG2_VERSION, ctx, type, body, body_len, sk);
}

static void pad_out(ug_mp_out *o, size_t n)
{
    static const uint8_t zeros[UG_DGRAM_MAX];
    ug_mp_out_key(o, "pad"), ug_mp_out_bin(o, zeros, n);
}

int ug2_hello_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_hello_fields *h)
{
    const ug_hello_fields *b = &h->base;
    if (!b->plat || !b->chan || !h->app || (b->has_pad && b->pad_len > UG_DGRAM_MAX))
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 10 + !!b->cookie + !!b->has_pad);
    ug_mp_out_key(&o, "uid"), ug_mp_out_uint(&o, b->uid);
    text_out(&o, "ver", b->ver);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, b->ts);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, b->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "pk"), ug_mp_out_bin(&o, b->pk, UG_PK_LEN);
    ug_mp_out_key(&o, "cred"), ug_mp_out_raw(&o, b->cred, b->cred_len);
    text_out(&o, "app", h->app);
    text_out(&o, "plat", b->plat);
    text_out(&o, "chan", b->chan);
    ug_mp_out_key(&o, "kv"), ug_mp_out_uint(&o, h->kv);
    if (b->cookie)
        ug_mp_out_key(&o, "cookie"), ug_mp_out_bin(&o, b->cookie, UG_COOKIE_LEN);
    if (b->has_pad)
        pad_out(&o, b->pad_len);
    return ug_mp_out_done(&o, len);
}

int ug2_report_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_report_fields *r)
{
    const ug_report_fields *b = &r->base;
    if (!r->app || (b->has_pad && b->pad_len > UG_DGRAM_MAX))
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 10 + !!b->has_pad);
    ug_mp_out_key(&o, "uid"), ug_mp_out_uint(&o, b->uid);
    text_out(&o, "ver", b->ver);
    text_out(&o, "to", b->to);
    ug_mp_out_key(&o, "res"), ug_mp_out_uint(&o, (uint64_t)b->res);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, b->ts);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, b->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "pk"), ug_mp_out_bin(&o, b->pk, UG_PK_LEN);
    ug_mp_out_key(&o, "cred"), ug_mp_out_raw(&o, b->cred, b->cred_len);
    text_out(&o, "app", r->app);
    ug_mp_out_key(&o, "via"), ug_mp_out_uint(&o, (uint64_t)r->via);
    if (b->has_pad)
        pad_out(&o, b->pad_len);
    return ug_mp_out_done(&o, len);
}

int ug2_hint_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_hint_fields *h)
{
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 8 + h->has_delta);
    ug_mp_out_key(&o, "uid"), ug_mp_out_uint(&o, h->uid);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, h->nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, h->ts);
    ug_mp_out_key(&o, "exp"), ug_mp_out_uint(&o, h->exp);
    ug_mp_out_key(&o, "mirror"), ug_mp_out_uint(&o, h->mirror);
    ug_mp_out_key(&o, "kv"), ug_mp_out_uint(&o, h->kv);
    ug_mp_out_key(&o, "cert"), ug_mp_out_raw(&o, h->cert, h->cert_len);
    ug_mp_out_key(&o, "rel"), ug_mp_out_raw(&o, h->rel, h->rel_len);
    if (h->has_delta)
        ug_mp_out_key(&o, "delta"), ug_mp_out_uint(&o, h->delta);
    return ug_mp_out_done(&o, len);
}

int ug2_wait_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_wait_fields *w)
{
    if (!w->tok != !w->cert)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_map(&o.pk, 4 + 2 * !!w->tok);
    ug_mp_out_key(&o, "nonce"), ug_mp_out_bin(&o, w->base.nonce, UG_NONCE_LEN);
    ug_mp_out_key(&o, "ts"), ug_mp_out_uint(&o, w->base.ts);
    ug_mp_out_key(&o, "retry"), ug_mp_out_uint(&o, w->base.retry);
    ug_mp_out_key(&o, "why"), ug_mp_out_uint(&o, w->base.why);
    if (w->tok) {
        ug_mp_out_key(&o, "tok"), ug_mp_out_raw(&o, w->tok, w->tok_len);
        ug_mp_out_key(&o, "cert"), ug_mp_out_raw(&o, w->cert, w->cert_len);
    }
    return ug_mp_out_done(&o, len);
}

/* A signed v2 datagram of type t padded to target (at least floor), the
 * body re-encoded by enc once the pad is chosen; as ug_hello_build. */
typedef int (*body_fn)(uint8_t *out, size_t cap, size_t *len, void *fields, bool has_pad, size_t pad);

static int build_padded(uint8_t *out, size_t cap, size_t *len, ug_type t, body_fn enc, void *fields,
                        size_t target, size_t floor, const uint8_t sk[UG_SK_LEN])
{
    uint8_t body[UG_DGRAM_MAX];
    size_t blen;
    if (target > UG_DGRAM_MAX || enc(body, sizeof body, &blen, fields, false, 0) != 0)
        return -1;
    if (ug_dgram_len(blen, true) < target) {
        size_t p = ug_pad_for(blen, target, floor);
        if (p != SIZE_MAX && enc(body, sizeof body, &blen, fields, true, p) != 0)
            return -1;
    }
    size_t total = ug_dgram_len(blen, true);
    if (total < floor || total > UG_DGRAM_MAX)
        return -1;
    return ug2_dgram_encode(out, cap, len, t, body, blen, sk);
}

static int hello_enc(uint8_t *out, size_t cap, size_t *len, void *fields, bool has_pad, size_t pad)
{
    ug2_hello_fields *h = fields;
    h->base.has_pad = has_pad, h->base.pad_len = pad;
    return ug2_hello_encode_body(out, cap, len, h);
}

static int report_enc(uint8_t *out, size_t cap, size_t *len, void *fields, bool has_pad, size_t pad)
{
    ug2_report_fields *r = fields;
    r->base.has_pad = has_pad, r->base.pad_len = pad;
    return ug2_report_encode_body(out, cap, len, r);
}

int ug2_hello_build(uint8_t *out, size_t cap, size_t *len, ug2_hello_fields *h, size_t target,
                    const uint8_t sk[UG_SK_LEN])
{
    if (target < UG_HELLO_MIN)
        return -1;
    return build_padded(out, cap, len, UG_TYPE_HELLO, hello_enc, h, target, UG_HELLO_MIN, sk);
}

int ug2_report_build(uint8_t *out, size_t cap, size_t *len, ug2_report_fields *r, size_t target,
                     const uint8_t sk[UG_SK_LEN])
{
    return build_padded(out, cap, len, UG_TYPE_REPORT, report_enc, r, target, 0, sk);
}

/* A map entry: a fixstr key of klen bytes and a value of vlen. */
#define KV(klen, vlen) (1 + (klen) + (vlen))

size_t ug2_hint_max_len(size_t cert_len, size_t rel_len)
{
    /* uid, ts, exp, delta as uint64 (9); mirror < 8 and kv < 2^32 (5) */
    size_t body = 1 + KV(3, 9) + KV(5, 18) + KV(2, 9) + KV(3, 9) + KV(6, 1) + KV(2, 5) + KV(4, cert_len) +
                  KV(3, rel_len) + KV(5, 9);
    return ug_dgram_len(body, true);
}

size_t ug2_wait_max_len(size_t tok_len, size_t cert_len)
{
    size_t body = 1 + KV(5, 18) + KV(2, 9) + KV(5, 9) + KV(3, 9);
    if (tok_len)
        body += KV(3, tok_len) + KV(4, cert_len);
    return ug_dgram_len(body, false);
}
