/* The oracle: proto/'s decoders as they were before the single-pass reader
 * (msgpack-c, pre-scan, schema matching), renamed or_*. Only the fuzzers
 * and tests/test_oracle link it. */
#include <string.h>
#include <strings.h>

#include "oracle.h"
#include "oracle_mp.h"

/* Sets *err (when the caller gave one) and returns -1. */
static int fail(ug_err *err, ug_err e)
{
    if (err)
        *err = e;
    return -1;
}

static const char magic[2] = {'U', 'G'};

int or_dgram_decode(ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err)
{
    if (len == 0 || len > UG_DGRAM_MAX)
        return fail(err, UG_E_SIZE);
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, buf, len, 1, &e) != 0)
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
    or_mp_doc_free(&doc);
    return e == UG_OK ? 0 : fail(err, e);
}

/* A signed object's whole span, from the bin pointers msgpack-c gave us: the
 * pre-scan made the encoding canonical, so the headers' sizes are known.
 * The one change to the old code: msgpack-c points an empty bin at its
 * length byte, so deriving the span from the body put raw one byte before
 * the array (no empty body ever decoded further, but the pointer was out of
 * bounds); it is derived from the 64-byte signature instead. */
static void signed_from_obj(ug_signed *s, const msgpack_object *arr)
{
    const msgpack_object *b = &arr->via.array.ptr[0], *g = &arr->via.array.ptr[1];
    size_t blen = b->via.bin.size;
    size_t hdr = blen < 0x100 ? 2 : blen < 0x10000 ? 3 : 5;
    s->sig = (const uint8_t *)g->via.bin.ptr;
    s->body = s->sig - 2 - blen; /* the signature's header is c4 40 */
    s->body_len = blen;
    s->raw = s->body - hdr - 1;
    s->raw_len = (size_t)(s->sig + UG_SIG_LEN - s->raw);
}

int or_signed_decode(ug_signed *s, const uint8_t *buf, size_t len, ug_err *err)
{
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, buf, len, 1, &e) != 0)
        return fail(err, e);
    bool ok = or_mp_is_signed(&doc.root);
    if (ok)
        signed_from_obj(s, &doc.root);
    or_mp_doc_free(&doc);
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

int or_cred_decode(ug_cred *c, const uint8_t *body, size_t len, ug_err *err)
{
    static const or_field f[] = {
        {"uid", OR_F_UINT, true, 0, 0},
        {"pk", OR_F_BIN, true, UG_PK_LEN, UG_PK_LEN},
        {"exp", OR_F_UINT, true, 0, 0},
        {"kid", OR_F_BIN, true, UG_KID_LEN, UG_KID_LEN},
    };
    const msgpack_object *v[4];
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, body, len, 1, &e) != 0)
        return fail(err, e);
    int rc = or_mp_fields(&doc.root, f, 4, v, &e);
    if (rc == 0) {
        c->uid = v[0]->via.u64;
        copy_bin(c->pk, v[1]);
        c->exp = v[2]->via.u64;
        copy_bin(c->kid, v[3]);
    }
    or_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int or_hello_decode_cred(ug_hello *h, const uint8_t *body, size_t len, bool with_cred, ug_err *err)
{
    static const or_field f[] = {
        {"uid", OR_F_UINT, true, 0, 0},
        {"ver", OR_F_STR, true, 1, UG_VER_MAX},
        {"ts", OR_F_UINT, true, 0, 0},
        {"nonce", OR_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"pk", OR_F_BIN, true, UG_PK_LEN, UG_PK_LEN},
        {"cred", OR_F_SIGNED, true, 0, 0},
        {"plat", OR_F_STR, false, 1, UG_PLAT_MAX},
        {"chan", OR_F_STR, false, 1, UG_CHAN_MAX},
        {"cookie", OR_F_BIN, false, UG_COOKIE_LEN, UG_COOKIE_LEN},
        {"pad", OR_F_BIN, false, 0, UG_DGRAM_MAX},
    };
    const msgpack_object *v[10];
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = -1;
    if (or_mp_fields(&doc.root, f, 10, v, &e) != 0)
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
    if (with_cred && or_cred_decode(&h->cred, h->cred_obj.body, h->cred_obj.body_len, &e) != 0)
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
    or_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int or_report_decode(ug_report *r, const uint8_t *body, size_t len, ug_err *err)
{
    static const or_field f[] = {
        {"uid", OR_F_UINT, true, 0, 0},
        {"ver", OR_F_STR, true, 1, UG_VER_MAX},
        {"to", OR_F_STR, true, 1, UG_VER_MAX},
        {"res", OR_F_UINT, true, 0, 0},
        {"ts", OR_F_UINT, true, 0, 0},
        {"nonce", OR_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"pk", OR_F_BIN, true, UG_PK_LEN, UG_PK_LEN},
        {"cred", OR_F_SIGNED, true, 0, 0},
        {"pad", OR_F_BIN, false, 0, UG_DGRAM_MAX},
    };
    const msgpack_object *v[9];
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = -1;
    if (or_mp_fields(&doc.root, f, 9, v, &e) != 0)
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
    if (or_cred_decode(&r->cred, r->cred_obj.body, r->cred_obj.body_len, &e) != 0)
        goto out;
    r->pad_len = v[8] ? v[8]->via.bin.size : 0;
    rc = 0;
out:
    or_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int or_manifest_decode(ug_manifest *m, const uint8_t *body, size_t len, ug_err *err)
{
    static const or_field f[] = {
        {"to", OR_F_STR, true, 1, UG_VER_MAX},
        {"urls", OR_F_STRARRAY, true, 1, UG_URLS_MAX},
        {"size", OR_F_UINT, true, 0, 0},
        {"hash", OR_F_BIN, true, UG_HASH_LEN, UG_HASH_LEN},
        {"exp", OR_F_UINT, true, 0, 0},
        {"kid", OR_F_BIN, true, UG_KID_LEN, UG_KID_LEN},
    };
    const msgpack_object *v[6];
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = -1;
    if (or_mp_fields(&doc.root, f, 6, v, &e) != 0)
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
    or_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int or_hint_decode(ug_hint *h, const uint8_t *body, size_t len, ug_err *err)
{
    static const or_field f[] = {
        {"uid", OR_F_UINT, true, 0, 0},
        {"nonce", OR_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"ts", OR_F_UINT, true, 0, 0},
        {"exp", OR_F_UINT, true, 0, 0},
        {"mirror", OR_F_UINT, true, 0, 0},
        {"kid", OR_F_BIN, true, UG_KID_LEN, UG_KID_LEN},
        {"rel", OR_F_SIGNED, true, 0, 0},
    };
    const msgpack_object *v[7];
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, body, len, 2, &e) != 0)
        return fail(err, e);
    int rc = or_mp_fields(&doc.root, f, 7, v, &e);
    if (rc == 0) {
        h->uid = v[0]->via.u64;
        copy_bin(h->nonce, v[1]);
        h->ts = v[2]->via.u64;
        h->exp = v[3]->via.u64;
        h->mirror = v[4]->via.u64;
        copy_bin(h->kid, v[5]);
        signed_from_obj(&h->rel_obj, v[6]);
        rc = or_manifest_decode(&h->rel, h->rel_obj.body, h->rel_obj.body_len, &e);
    }
    or_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int or_wait_decode(ug_wait *w, const uint8_t *body, size_t len, ug_err *err)
{
    static const or_field f[] = {
        {"nonce", OR_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"ts", OR_F_UINT, true, 0, 0},
        {"retry", OR_F_UINT, true, 0, 0},
        {"why", OR_F_UINT, true, 0, 0},
    };
    const msgpack_object *v[4];
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, body, len, 1, &e) != 0)
        return fail(err, e);
    int rc = or_mp_fields(&doc.root, f, 4, v, &e);
    if (rc == 0) {
        copy_bin(w->nonce, v[0]);
        w->ts = v[1]->via.u64;
        w->retry = v[2]->via.u64;
        w->why = v[3]->via.u64;
    }
    or_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int or_cookie_decode(ug_cookie *c, const uint8_t *body, size_t len, ug_err *err)
{
    static const or_field f[] = {
        {"nonce", OR_F_BIN, true, UG_NONCE_LEN, UG_NONCE_LEN},
        {"cookie", OR_F_BIN, true, UG_COOKIE_LEN, UG_COOKIE_LEN},
        {"ts", OR_F_UINT, true, 0, 0},
    };
    const msgpack_object *v[3];
    or_mp_doc doc;
    ug_err e;
    if (or_mp_parse(&doc, body, len, 1, &e) != 0)
        return fail(err, e);
    int rc = or_mp_fields(&doc.root, f, 3, v, &e);
    if (rc == 0) {
        copy_bin(c->nonce, v[0]);
        copy_bin(c->cookie, v[1]);
        c->ts = v[2]->via.u64;
    }
    or_mp_doc_free(&doc);
    return rc == 0 ? 0 : fail(err, e);
}

int or_hello_decode(ug_hello *h, const uint8_t *body, size_t len, ug_err *err)
{
    return or_hello_decode_cred(h, body, len, true, err);
}
