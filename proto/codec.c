/* Encoders and strict decoders of every upgate v1 object, and the checks of
 * tracker rule 4 and peer section 6. */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "mp.h"

static const char *const err_names[UG_E_COUNT_] = {
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
};

const char *ug_err_name(ug_err e)
{
    return (unsigned)e < UG_E_COUNT_ ? err_names[e] : "unknown";
}

/* Sets *err (when the caller gave one) and returns -1. */
static int fail(ug_err *err, ug_err e)
{
    if (err)
        *err = e;
    return -1;
}

static const char magic[2] = {'U', 'G'};

/* ---- decoding ------------------------------------------------------- */

int ug_dgram_decode(ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err)
{
    if (len == 0 || len > UG_DGRAM_MAX)
        return fail(err, UG_E_SIZE);
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, buf, len, 1, &e) != 0)
        return fail(err, e);
    const msgpack_object *r = &doc.root;
    e = UG_E_HEADER;
    if (r->type == MSGPACK_OBJECT_ARRAY && r->via.array.size == 5) {
        const msgpack_object *a = r->via.array.ptr;
        bool head = a[0].type == MSGPACK_OBJECT_STR && a[0].via.str.size == 2 &&
                    memcmp(a[0].via.str.ptr, magic, 2) == 0 &&
                    a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[1].via.u64 == 1 &&
                    a[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[2].via.u64 >= UG_TYPE_HELLO &&
                    a[2].via.u64 <= UG_TYPE_REPORT && a[3].type == MSGPACK_OBJECT_BIN;
        if (head) {
            ug_type t = (ug_type)a[2].via.u64;
            bool is_signed = t == UG_TYPE_HELLO || t == UG_TYPE_HINT || t == UG_TYPE_REPORT;
            bool sig_ok = is_signed ? (a[4].type == MSGPACK_OBJECT_BIN && a[4].via.bin.size == UG_SIG_LEN)
                                    : a[4].type == MSGPACK_OBJECT_NIL;
            if (sig_ok) {
                d->type = t;
                d->body = (const uint8_t *)a[3].via.bin.ptr;
                d->body_len = a[3].via.bin.size;
                d->sig = is_signed ? (const uint8_t *)a[4].via.bin.ptr : NULL;
                e = (t == UG_TYPE_HELLO && len < UG_HELLO_MIN) ? UG_E_SIZE : UG_OK;
            }
        }
    }
    ug_mp_doc_free(&doc);
    return e == UG_OK ? 0 : fail(err, e);
}

/* A signed object's whole span, from the bin pointers msgpack-c gave us: the
 * pre-scan made the encoding canonical, so the headers' sizes are known. */
static void signed_from_obj(ug_signed *s, const msgpack_object *arr)
{
    const msgpack_object *b = &arr->via.array.ptr[0], *g = &arr->via.array.ptr[1];
    size_t blen = b->via.bin.size;
    size_t hdr = blen < 0x100 ? 2 : blen < 0x10000 ? 3 : 5;
    s->body = (const uint8_t *)b->via.bin.ptr;
    s->body_len = blen;
    s->sig = (const uint8_t *)g->via.bin.ptr;
    s->raw = s->body - hdr - 1;
    s->raw_len = (size_t)(s->sig + UG_SIG_LEN - s->raw);
}

int ug_signed_decode(ug_signed *s, const uint8_t *buf, size_t len, ug_err *err)
{
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, buf, len, 1, &e) != 0)
        return fail(err, e);
    bool ok = ug_mp_is_signed(&doc.root);
    if (ok)
        signed_from_obj(s, &doc.root);
    ug_mp_doc_free(&doc);
    return ok ? 0 : fail(err, UG_E_SCHEMA);
}

static void copy_bin(uint8_t *dst, const msgpack_object *o)
{
    memcpy(dst, o->via.bin.ptr, o->via.bin.size);
}

static void copy_str(char *dst, const msgpack_object *o)
{
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
}

int ug_cred_decode(ug_cred *c, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_field f[] = {
        {"uid", UG_F_UINT, true, 0, 0},
        {"pk", UG_F_BIN, true, UG_PK_LEN, UG_PK_LEN},
        {"exp", UG_F_UINT, true, 0, 0},
        {"kid", UG_F_BIN, true, UG_KID_LEN, UG_KID_LEN},
    };
    const msgpack_object *v[4];
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, body, len, 1, &e) != 0)
        return fail(err, e);
    int rc = ug_mp_fields(&doc.root, f, 4, v, &e);
    if (rc == 0) {
        c->uid = v[0]->via.u64;
        copy_bin(c->pk, v[1]);
        c->exp = v[2]->via.u64;
        copy_bin(c->kid, v[3]);
    }
    ug_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int ug_hello_decode(ug_hello *h, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_field f[] = {
        {"uid", UG_F_UINT, true, 0, 0},
        {"ver", UG_F_STR, true, 1, UG_VER_MAX},
        {"ts", UG_F_UINT, true, 0, 0},
        {"nonce", UG_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"pk", UG_F_BIN, true, UG_PK_LEN, UG_PK_LEN},
        {"cred", UG_F_SIGNED, true, 0, 0},
        {"plat", UG_F_STR, false, 1, UG_PLAT_MAX},
        {"chan", UG_F_STR, false, 1, UG_CHAN_MAX},
        {"cookie", UG_F_BIN, false, UG_COOKIE_LEN, UG_COOKIE_LEN},
        {"pad", UG_F_BIN, false, 0, UG_DGRAM_MAX},
    };
    const msgpack_object *v[10];
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = -1;
    if (ug_mp_fields(&doc.root, f, 10, v, &e) != 0)
        goto out;
    e = UG_E_SCHEMA;
    h->uid = v[0]->via.u64;
    if (h->uid == 0 || h->uid > UG_UID_MAX)
        goto out;
    e = UG_E_VERSION;
    if (ug_version_parse(&h->ver, v[1]->via.str.ptr, v[1]->via.str.size) != 0)
        goto out;
    h->ts = v[2]->via.u64;
    copy_bin(h->nonce, v[3]);
    copy_bin(h->pk, v[4]);
    signed_from_obj(&h->cred_obj, v[5]);
    if (ug_cred_decode(&h->cred, h->cred_obj.body, h->cred_obj.body_len, &e) != 0)
        goto out;
    h->plat[0] = h->chan[0] = 0;
    if (v[6])
        copy_str(h->plat, v[6]);
    if (v[7])
        copy_str(h->chan, v[7]);
    h->has_cookie = v[8] != NULL;
    if (v[8])
        copy_bin(h->cookie, v[8]);
    h->pad_len = v[9] ? v[9]->via.bin.size : 0;
    rc = 0;
out:
    ug_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int ug_report_decode(ug_report *r, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_field f[] = {
        {"uid", UG_F_UINT, true, 0, 0},
        {"ver", UG_F_STR, true, 1, UG_VER_MAX},
        {"to", UG_F_STR, true, 1, UG_VER_MAX},
        {"res", UG_F_UINT, true, 0, 0},
        {"ts", UG_F_UINT, true, 0, 0},
        {"nonce", UG_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"pk", UG_F_BIN, true, UG_PK_LEN, UG_PK_LEN},
        {"cred", UG_F_SIGNED, true, 0, 0},
        {"pad", UG_F_BIN, false, 0, UG_DGRAM_MAX},
    };
    const msgpack_object *v[9];
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = -1;
    if (ug_mp_fields(&doc.root, f, 9, v, &e) != 0)
        goto out;
    e = UG_E_SCHEMA;
    r->uid = v[0]->via.u64;
    if (r->uid == 0 || r->uid > UG_UID_MAX || v[3]->via.u64 >= UG_RES_COUNT_)
        goto out;
    r->res = (ug_res)v[3]->via.u64;
    e = UG_E_VERSION;
    if (ug_version_parse(&r->ver, v[1]->via.str.ptr, v[1]->via.str.size) != 0 ||
        ug_version_parse(&r->to, v[2]->via.str.ptr, v[2]->via.str.size) != 0)
        goto out;
    r->ts = v[4]->via.u64;
    copy_bin(r->nonce, v[5]);
    copy_bin(r->pk, v[6]);
    signed_from_obj(&r->cred_obj, v[7]);
    if (ug_cred_decode(&r->cred, r->cred_obj.body, r->cred_obj.body_len, &e) != 0)
        goto out;
    r->pad_len = v[8] ? v[8]->via.bin.size : 0;
    rc = 0;
out:
    ug_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

/* The one rule for a manifest URL, shared by every decoder and by
 * upgate-keys: http:// or https:// (either case), then a non-empty host
 * (the authority up to "/", "?" or "#", less any "user@" and ":port"; an
 * IPv6 literal in brackets), printable ASCII only, 1..UG_URL_MAX bytes. */
bool ug_url_valid(const char *u, size_t len)
{
    if (len < 1 || len > UG_URL_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (u[i] <= 0x20 || u[i] >= 0x7f) /* controls, space, DEL, non-ASCII (char may be signed) */
            return false;
    size_t scheme = (len > 7 && strncasecmp(u, "http://", 7) == 0)    ? 7
                    : (len > 8 && strncasecmp(u, "https://", 8) == 0) ? 8
                                                                      : 0;
    if (!scheme)
        return false;
    size_t end = scheme;
    while (end < len && u[end] != '/' && u[end] != '?' && u[end] != '#')
        end++;
    size_t host = scheme;
    for (size_t i = scheme; i < end; i++)
        if (u[i] == '@')
            host = i + 1;
    if (host < end && u[host] == '[') { /* "[v6]" needs its "]" and something inside */
        const char *close = memchr(u + host, ']', end - host);
        return close != NULL && close > u + host + 1;
    }
    return host < end && u[host] != ':';
}

int ug_manifest_decode(ug_manifest *m, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_field f[] = {
        {"to", UG_F_STR, true, 1, UG_VER_MAX},
        {"urls", UG_F_STRARRAY, true, 1, UG_URLS_MAX},
        {"size", UG_F_UINT, true, 0, 0},
        {"hash", UG_F_BIN, true, UG_HASH_LEN, UG_HASH_LEN},
        {"exp", UG_F_UINT, true, 0, 0},
        {"kid", UG_F_BIN, true, UG_KID_LEN, UG_KID_LEN},
    };
    const msgpack_object *v[6];
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = -1;
    if (ug_mp_fields(&doc.root, f, 6, v, &e) != 0)
        goto out;
    e = UG_E_VERSION;
    if (ug_version_parse(&m->to, v[0]->via.str.ptr, v[0]->via.str.size) != 0)
        goto out;
    e = UG_E_STRING;
    m->nurls = (uint8_t)v[1]->via.array.size;
    for (uint8_t i = 0; i < m->nurls; i++) {
        const msgpack_object *u = &v[1]->via.array.ptr[i];
        if (!ug_url_valid(u->via.str.ptr, u->via.str.size))
            goto out;
        copy_str(m->urls[i], u);
    }
    m->size = v[2]->via.u64;
    copy_bin(m->hash, v[3]);
    m->exp = v[4]->via.u64;
    copy_bin(m->kid, v[5]);
    rc = 0;
out:
    ug_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int ug_hint_decode(ug_hint *h, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_field f[] = {
        {"uid", UG_F_UINT, true, 0, 0},
        {"nonce", UG_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"ts", UG_F_UINT, true, 0, 0},
        {"exp", UG_F_UINT, true, 0, 0},
        {"mirror", UG_F_UINT, true, 0, 0},
        {"kid", UG_F_BIN, true, UG_KID_LEN, UG_KID_LEN},
        {"rel", UG_F_SIGNED, true, 0, 0},
    };
    const msgpack_object *v[7];
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = ug_mp_fields(&doc.root, f, 7, v, &e);
    if (rc == 0) {
        h->uid = v[0]->via.u64;
        copy_bin(h->nonce, v[1]);
        h->ts = v[2]->via.u64;
        h->exp = v[3]->via.u64;
        h->mirror = v[4]->via.u64;
        copy_bin(h->kid, v[5]);
        signed_from_obj(&h->rel_obj, v[6]);
        rc = ug_manifest_decode(&h->rel, h->rel_obj.body, h->rel_obj.body_len, &e);
    }
    ug_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int ug_wait_decode(ug_wait *w, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_field f[] = {
        {"nonce", UG_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"ts", UG_F_UINT, true, 0, 0},
        {"retry", UG_F_UINT, true, 0, 0},
        {"why", UG_F_UINT, true, 0, 0},
    };
    const msgpack_object *v[4];
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, body, len, 1, &e) != 0)
        return fail(err, e);
    int rc = ug_mp_fields(&doc.root, f, 4, v, &e);
    if (rc == 0) {
        copy_bin(w->nonce, v[0]);
        w->ts = v[1]->via.u64;
        w->retry = v[2]->via.u64;
        w->why = v[3]->via.u64;
    }
    ug_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int ug_cookie_decode(ug_cookie *c, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_field f[] = {
        {"nonce", UG_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"cookie", UG_F_BIN, true, UG_COOKIE_LEN, UG_COOKIE_LEN},
        {"ts", UG_F_UINT, true, 0, 0},
    };
    const msgpack_object *v[3];
    ug_mp_doc doc;
    ug_err e;
    if (ug_mp_parse(&doc, body, len, 1, &e) != 0)
        return fail(err, e);
    int rc = ug_mp_fields(&doc.root, f, 3, v, &e);
    if (rc == 0) {
        copy_bin(c->nonce, v[0]);
        copy_bin(c->cookie, v[1]);
        c->ts = v[2]->via.u64;
    }
    ug_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

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
    if ((ctx != NULL) != (sk != NULL))
        return -1;
    uint8_t sig[UG_SIG_LEN];
    if (ctx && ug_sign(sig, ctx, body, body_len, sk) != 0)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap < UG_DGRAM_MAX ? cap : UG_DGRAM_MAX);
    msgpack_pack_array(&o.pk, 5);
    ug_mp_out_str(&o, magic, 2);
    ug_mp_out_uint(&o, 1);
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
static size_t dgram_len(size_t body_len, bool is_signed)
{
    size_t hdr = body_len < 0x100 ? 2 : body_len < 0x10000 ? 3 : 5;
    return 6 + hdr + body_len + (is_signed ? 2 + UG_SIG_LEN : 1);
}

size_t ug_hint_max_len(size_t rel_len)
{
    /* map header; uid/ts/exp as uint64 (9); mirror < 8 (fixint); bins */
    size_t body = 1 + (4 + 9) + (6 + 18) + (3 + 9) + (4 + 9) + (7 + 1) + (4 + 10) + (4 + rel_len);
    return dgram_len(body, true);
}

/* The largest pad p whose datagram (body of blen bytes without pad, plus the
 * "pad" key, a bin header and p bytes) is at most target and at least floor;
 * SIZE_MAX when none is. The bin8/bin16 switch can make target itself
 * unreachable by one byte. */
static size_t pad_for(size_t blen, size_t target, size_t floor)
{
    size_t best = SIZE_MAX;
    for (size_t p = 0; p <= UG_DGRAM_MAX; p++) {
        size_t total = dgram_len(blen + 4 + (p < 0x100 ? 2 : 3) + p, true);
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
    if (dgram_len(blen, true) < target) {
        size_t p = pad_for(blen, target, 0);
        if (p != SIZE_MAX) {
            r->has_pad = true;
            r->pad_len = p;
            if (ug_report_encode_body(body, sizeof body, &blen, r) != 0)
                return -1;
        }
    }
    if (dgram_len(blen, true) > UG_DGRAM_MAX)
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
    if (dgram_len(blen, true) < target) {
        size_t best = pad_for(blen, target, UG_HELLO_MIN);
        if (best != SIZE_MAX) {
            h->has_pad = true;
            h->pad_len = best;
            if (ug_hello_encode_body(body, sizeof body, &blen, h) != 0)
                return -1;
        }
    }
    size_t total = dgram_len(blen, true);
    if (total < UG_HELLO_MIN || total > UG_DGRAM_MAX)
        return -1;
    return ug_dgram_encode(out, cap, len, UG_TYPE_HELLO, body, blen, sk);
}

/* ---- checks --------------------------------------------------------- */

/* The credential's cheap checks, for a HELLO or a REPORT carrying it. */
static int cred_bound(const ug_cred *c, uint64_t uid, const uint8_t pk[UG_PK_LEN], const ug_pubkey *issuers,
                      size_t nissuers, uint64_t now, const ug_pubkey **issuer, ug_err *err)
{
    *issuer = ug_pubkey_find(issuers, nissuers, c->kid);
    if (!*issuer)
        return fail(err, UG_E_KEY);
    if (c->exp <= now)
        return fail(err, UG_E_EXPIRED);
    if (c->uid != uid || sodium_memcmp(c->pk, pk, UG_PK_LEN) != 0)
        return fail(err, UG_E_BINDING);
    return 0;
}

int ug_cred_check(const ug_hello *h, const ug_pubkey *issuers, size_t nissuers, uint64_t now,
                  const ug_pubkey **issuer, ug_err *err)
{
    return cred_bound(&h->cred, h->uid, h->pk, issuers, nissuers, now, issuer, err);
}

int ug_report_verify(const ug_report *r, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers,
                     uint64_t now, ug_err *err)
{
    const ug_pubkey *issuer;
    if (cred_bound(&r->cred, r->uid, r->pk, issuers, nissuers, now, &issuer, err) != 0)
        return -1;
    if (ug_verify(r->cred_obj.sig, UG_CTX_CRED, r->cred_obj.body, r->cred_obj.body_len, issuer->pk) != 0)
        return fail(err, UG_E_SIG);
    if (d->type != UG_TYPE_REPORT || d->sig == NULL ||
        ug_verify(d->sig, UG_CTX_REPORT, d->body, d->body_len, r->pk) != 0)
        return fail(err, UG_E_SIG);
    return 0;
}

int ug_cred_sig_verify(const ug_hello *h, const ug_pubkey *issuer, ug_err *err)
{
    if (ug_verify(h->cred_obj.sig, UG_CTX_CRED, h->cred_obj.body, h->cred_obj.body_len, issuer->pk) != 0)
        return fail(err, UG_E_SIG);
    return 0;
}

int ug_hello_sig_verify(const ug_hello *h, const ug_dgram *d, ug_err *err)
{
    if (d->type != UG_TYPE_HELLO || d->sig == NULL || ug_verify(d->sig, UG_CTX_HELLO, d->body, d->body_len, h->pk) != 0)
        return fail(err, UG_E_SIG);
    return 0;
}

int ug_hello_verify(const ug_hello *h, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers,
                    uint64_t now, ug_err *err)
{
    /* cheap checks first: a flood of bad credentials costs no Ed25519 work */
    const ug_pubkey *issuer;
    if (ug_cred_check(h, issuers, nissuers, now, &issuer, err) != 0 || ug_cred_sig_verify(h, issuer, err) != 0 ||
        ug_hello_sig_verify(h, d, err) != 0)
        return -1;
    return 0;
}

int ug_hint_verify(ug_hint *hint, const uint8_t *dgram, size_t len, const ug_peer_expect *want,
                   ug_err *err)
{
    ug_dgram d;
    if (ug_dgram_decode(&d, dgram, len, err) != 0)
        return -1;
    if (d.type != UG_TYPE_HINT)
        return fail(err, UG_E_HEADER);
    if (ug_hint_decode(hint, d.body, d.body_len, err) != 0)
        return -1;
    const ug_pubkey *hk = ug_pubkey_find(want->hint_keys, want->nhint_keys, hint->kid);
    if (!hk)
        return fail(err, UG_E_KEY);
    if (ug_verify(d.sig, UG_CTX_HINT, d.body, d.body_len, hk->pk) != 0)
        return fail(err, UG_E_SIG);
    if (hint->uid != want->uid)
        return fail(err, UG_E_UID);
    if (sodium_memcmp(hint->nonce, want->nonce, UG_NONCE_LEN) != 0)
        return fail(err, UG_E_NONCE);
    if (hint->exp <= want->now)
        return fail(err, UG_E_EXPIRED);
    const ug_pubkey *rk = ug_pubkey_find(want->release_keys, want->nrelease_keys, hint->rel.kid);
    if (!rk)
        return fail(err, UG_E_KEY);
    if (ug_verify(hint->rel_obj.sig, UG_CTX_RELEASE, hint->rel_obj.body, hint->rel_obj.body_len, rk->pk) != 0)
        return fail(err, UG_E_SIG);
    if (hint->rel.exp <= want->now)
        return fail(err, UG_E_EXPIRED);
    if (ug_version_cmp(&hint->rel.to, &want->current) <= 0)
        return fail(err, UG_E_ROLLBACK);
    if (hint->mirror >= hint->rel.nurls)
        return fail(err, UG_E_MIRROR);
    if (err)
        *err = UG_OK;
    return 0;
}
