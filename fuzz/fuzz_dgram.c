/* libFuzzer harness: ug_dgram_decode on any bytes, then the body decoder its type names; every
 * decoder held to the oracle (the old msgpack-c path). */
#include <string.h>
#include <strings.h>

#include "fuzz_common.h"

/* An accepted datagram is canonical, so rebuilding it from its parts must
 * give back the input byte for byte (the signature excepted, which we copy). */
static void check_reencode(const ug_dgram *d, const uint8_t *data, size_t size)
{
    uint8_t out[UG_DGRAM_MAX];
    size_t n = 0;
    /* the encoder signs HELLO/HINT itself; build the unsigned shape (type
     * WAIT, nil sig) and patch the type, then compare all but the trailer */
    FZ_CHECK(ug_dgram_encode(out, sizeof out, &n, UG_TYPE_WAIT, d->body, d->body_len, NULL) == 0,
             "cannot re-encode a %zu-byte body", d->body_len);
    out[5] = (uint8_t)d->type;
    if (!d->sig) {
        FZ_CHECK(n == size && memcmp(out, data, n) == 0, "unsigned datagram is not canonical");
        return;
    }
    /* signed: same bytes up to the body, then c4 40 <64 bytes> instead of c0 */
    FZ_CHECK(n - 1 + 2 + UG_SIG_LEN == size, "signed datagram of %zu bytes, expected %zu", size,
             n + 1 + UG_SIG_LEN);
    FZ_CHECK(memcmp(out, data, n - 1) == 0, "signed datagram head is not canonical");
    FZ_CHECK(data[n - 1] == 0xc4 && data[n] == UG_SIG_LEN, "sig header");
    FZ_CHECK(d->sig == data + n + 1, "sig pointer");
}

static void check_body(const ug_dgram *d)
{
    ug_err e = UG_OK;
    switch (d->type) {
    case UG_TYPE_HELLO: {
        FZ_ORACLE(or_cmp_hello, d->body, d->body_len);
        ug_hello h;
        if (ug_hello_decode(&h, d->body, d->body_len, &e) != 0)
            break;
        FZ_CHECK(h.uid >= 1 && h.uid <= UG_UID_MAX, "uid %llu", (unsigned long long)h.uid);
        FZ_CHECK(h.ver.nparts >= 1 && h.ver.nparts <= 4, "nparts");
        FZ_CHECK(fz_inside(h.cred_obj.raw, h.cred_obj.raw_len, d->body, d->body_len), "cred outside body");
        FZ_CHECK(fz_inside(h.cred_obj.body, h.cred_obj.body_len, h.cred_obj.raw, h.cred_obj.raw_len) &&
                     fz_inside(h.cred_obj.sig, UG_SIG_LEN, h.cred_obj.raw, h.cred_obj.raw_len),
                 "cred parts outside cred");
        FZ_CHECK(strlen(h.plat) <= UG_PLAT_MAX && strlen(h.chan) <= UG_CHAN_MAX, "plat/chan");
        FZ_CHECK(h.pad_len < d->body_len, "pad");
        return;
    }
    case UG_TYPE_HINT: {
        FZ_ORACLE(or_cmp_hint, d->body, d->body_len);
        ug_hint h;
        if (ug_hint_decode(&h, d->body, d->body_len, &e) != 0)
            break;
        FZ_CHECK(h.rel.nurls >= 1 && h.rel.nurls <= UG_URLS_MAX, "nurls %u", h.rel.nurls);
        for (unsigned i = 0; i < h.rel.nurls; i++)
            FZ_CHECK(strnlen(h.rel.urls[i], UG_URL_MAX + 1) <= UG_URL_MAX &&
                         strncasecmp(h.rel.urls[i], "http", 4) == 0, /* schemes are case-blind */
                     "url %u", i);
        FZ_CHECK(fz_inside(h.rel_obj.raw, h.rel_obj.raw_len, d->body, d->body_len), "rel outside body");
        FZ_CHECK(fz_inside(h.rel_obj.body, h.rel_obj.body_len, h.rel_obj.raw, h.rel_obj.raw_len), "rel body");
        return;
    }
    case UG_TYPE_WAIT: {
        FZ_ORACLE(or_cmp_wait, d->body, d->body_len);
        ug_wait w;
        if (ug_wait_decode(&w, d->body, d->body_len, &e) != 0)
            break;
        return;
    }
    case UG_TYPE_COOKIE: {
        FZ_ORACLE(or_cmp_cookie, d->body, d->body_len);
        ug_cookie c;
        if (ug_cookie_decode(&c, d->body, d->body_len, &e) != 0)
            break;
        return;
    }
    case UG_TYPE_REPORT: {
        FZ_ORACLE(or_cmp_report, d->body, d->body_len);
        ug_report r;
        if (ug_report_decode(&r, d->body, d->body_len, &e) != 0)
            break;
        FZ_CHECK(r.uid >= 1 && r.uid <= UG_UID_MAX && (unsigned)r.res < UG_RES_COUNT_, "uid/res");
        FZ_CHECK(fz_inside(r.cred_obj.raw, r.cred_obj.raw_len, d->body, d->body_len), "cred outside body");
        return;
    }
    default:
        FZ_CHECK(0, "decoder accepted type %d", (int)d->type);
    }
    FZ_CHECK(e > UG_OK && e < UG_E_COUNT_, "rejected with err %d", (int)e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the outer array and the two whole-datagram parsers, against the oracle */
    FZ_ORACLE(or_cmp_dgram, data, size);
    FZ_ORACLE(or_cmp_hello_parse, data, size);
    FZ_ORACLE(or_cmp_report_parse, data, size);
    ug_dgram d;
    ug_err e = UG_OK;
    if (ug_dgram_decode(&d, data, size, &e) != 0) {
        FZ_CHECK(e > UG_OK && e < UG_E_COUNT_, "rejected with err %d", (int)e);
        /* NULL err is allowed and must not be written through */
        FZ_CHECK(ug_dgram_decode(&d, data, size, NULL) != 0, "verdict depends on err pointer");
        return 0;
    }
    FZ_CHECK(size >= 1 && size <= UG_DGRAM_MAX, "accepted %zu bytes", size);
    FZ_CHECK(d.type >= UG_TYPE_HELLO && d.type <= UG_TYPE_REPORT, "type %d", (int)d.type);
    FZ_CHECK(d.type != UG_TYPE_HELLO || size >= UG_HELLO_MIN, "HELLO of %zu bytes", size);
    FZ_CHECK(fz_inside(d.body, d.body_len, data, size), "body outside input");
    FZ_CHECK((d.sig == NULL) == (d.type == UG_TYPE_WAIT || d.type == UG_TYPE_COOKIE), "sig vs type %d",
             (int)d.type);
    if (d.sig)
        FZ_CHECK(fz_inside(d.sig, UG_SIG_LEN, data, size) && d.sig >= d.body + d.body_len, "sig placement");
    static const uint8_t prefix[5] = {0x95, 0xa2, 'U', 'G', 0x01};
    FZ_CHECK(size > 5 && memcmp(data, prefix, 5) == 0 && data[5] == (uint8_t)d.type, "prefix");
    check_reencode(&d, data, size);
    check_body(&d);
    return 0;
}
