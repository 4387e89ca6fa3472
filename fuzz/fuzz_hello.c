/* libFuzzer harness: HELLO, credential and signed-object decoders (each held to the oracle, the
 * old msgpack-c path), the single-pass ug_hello_parse, and the tracker's whole HELLO check. */
#include <string.h>

#include "fuzz_common.h"

static fz_keys K;

/* Key orders of the spec's tables: what the encoders emit. */
static const char *const hello_order[] = {"uid", "ver", "ts", "nonce", "pk", "cred", "plat", "chan", "cookie", "pad"};
static const char *const cred_order[] = {"uid", "pk", "exp", "kid"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_keys_init(&K);
    return 0;
}

/* Re-encoding a decoded credential gives the same length whatever the key
 * order, and the same bytes when the input used the spec's order. */
static void check_cred(const ug_cred *c, const uint8_t *body, size_t len)
{
    uint8_t out[256];
    size_t n = 0;
    FZ_CHECK(ug_cred_encode_body(out, sizeof out, &n, c) == 0, "cred re-encode");
    FZ_CHECK(n == len, "cred of %zu bytes re-encodes to %zu", len, n);
    fz_key_ref keys[8];
    int nk = fz_map_keys(body, len, keys, 8);
    FZ_CHECK(nk == 4, "accepted cred with %d keys", nk);
    if (fz_keys_in_order(keys, nk, cred_order, 4))
        FZ_CHECK(memcmp(out, body, n) == 0, "canonical cred re-encodes differently");
}

/* Everything a decoded HELLO promises, and the re-encoding round trip: the
 * decoder must have kept every field, and nothing else can have been there. */
static void check_hello(const ug_hello *h, const uint8_t *body, size_t len)
{
    FZ_CHECK(h->uid >= 1 && h->uid <= UG_UID_MAX, "uid %llu", (unsigned long long)h->uid);
    char ver[UG_VER_MAX + 1];
    ug_version back;
    FZ_CHECK(ug_version_format(&h->ver, ver, sizeof ver) == 0, "version does not format");
    FZ_CHECK(ug_version_parse(&back, ver, strlen(ver)) == 0 && ug_version_cmp(&back, &h->ver) == 0 &&
                 back.nparts == h->ver.nparts,
             "version %s does not round-trip", ver);
    FZ_CHECK(fz_inside(h->cred_obj.raw, h->cred_obj.raw_len, body, len), "cred outside body");
    FZ_CHECK(fz_inside(h->cred_obj.body, h->cred_obj.body_len, h->cred_obj.raw, h->cred_obj.raw_len) &&
                 fz_inside(h->cred_obj.sig, UG_SIG_LEN, h->cred_obj.raw, h->cred_obj.raw_len),
             "cred parts outside cred");
    size_t pl = strlen(h->plat), cl = strlen(h->chan);
    FZ_CHECK(pl <= UG_PLAT_MAX && cl <= UG_CHAN_MAX, "plat %zu chan %zu", pl, cl);
    check_cred(&h->cred, h->cred_obj.body, h->cred_obj.body_len);

    fz_key_ref keys[16];
    int nk = fz_map_keys(body, len, keys, 16);
    FZ_CHECK(nk >= 6 && nk <= 10, "accepted HELLO with %d keys", nk);
    ug_hello_fields f = {
        .uid = h->uid, .ver = ver, .ts = h->ts, .cred = h->cred_obj.raw, .cred_len = h->cred_obj.raw_len,
        .plat = fz_has_key(keys, nk, "plat") ? h->plat : NULL,
        .chan = fz_has_key(keys, nk, "chan") ? h->chan : NULL,
        .cookie = h->has_cookie ? h->cookie : NULL,
        .has_pad = fz_has_key(keys, nk, "pad"), .pad_len = h->pad_len,
    };
    FZ_CHECK(!f.plat || pl > 0, "plat present but empty");
    FZ_CHECK(!f.chan || cl > 0, "chan present but empty");
    FZ_CHECK(h->has_cookie == fz_has_key(keys, nk, "cookie"), "cookie flag");
    memcpy(f.nonce, h->nonce, UG_NONCE_LEN);
    memcpy(f.pk, h->pk, UG_PK_LEN);
    uint8_t out[UG_OBJ_MAX];
    size_t n = 0;
    FZ_CHECK(ug_hello_encode_body(out, sizeof out, &n, &f) == 0, "HELLO re-encode");
    FZ_CHECK(n == len, "HELLO body of %zu bytes re-encodes to %zu", len, n);
    /* in the spec's order pad comes last; the encoder pads with zeros, the
     * sender may not have, so compare everything before the pad bytes */
    if (fz_keys_in_order(keys, nk, hello_order, 10))
        FZ_CHECK(memcmp(out, body, n - h->pad_len) == 0, "canonical HELLO re-encodes differently");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug_err e = UG_OK;

    /* every decoder agrees with the oracle on these bytes */
    FZ_ORACLE(or_cmp_hello, data, size);
    FZ_ORACLE(or_cmp_cred, data, size);
    FZ_ORACLE(or_cmp_signed, data, size);
    FZ_ORACLE(or_cmp_hello_parse, data, size);

    /* the raw bytes as each of the three inner objects */
    ug_hello h;
    if (ug_hello_decode(&h, data, size, &e) == 0) {
        FZ_CHECK(h.cred_decoded, "ug_hello_decode left the credential undecoded");
        check_hello(&h, data, size);
    } else {
        FZ_CHECK(e > UG_OK && e < UG_E_COUNT_, "err %d", (int)e);
    }
    ug_cred c;
    if (ug_cred_decode(&c, data, size, &e) == 0)
        check_cred(&c, data, size);
    ug_signed s;
    if (ug_signed_decode(&s, data, size, &e) == 0) {
        FZ_CHECK(s.raw == data && s.raw_len == size, "signed object does not span the input");
        FZ_CHECK(fz_inside(s.body, s.body_len, data, size) && s.sig == data + size - UG_SIG_LEN,
                 "signed object parts");
    }

    /* the tracker's pipeline: one pass over the datagram, the credential
     * only when needed, then credential and signatures, trusting only the
     * vectors' issuer at the vectors' clock */
    ug_dgram d;
    if (ug_hello_parse(&h, &d, data, size, &e) != 0) {
        FZ_CHECK(e > UG_OK && e < UG_E_COUNT_, "err %d", (int)e);
        return 0;
    }
    FZ_CHECK(!h.cred_decoded, "ug_hello_parse decoded the credential");
    FZ_CHECK(d.type == UG_TYPE_HELLO && fz_inside(d.body, d.body_len, data, size), "datagram");
    FZ_CHECK(or_hello_verify(&h, &d, &K.issuer.pub, 1, FZ_NOW, &e) != 0 && e == UG_E_SCHEMA,
             "verified a HELLO whose credential was never decoded (%s)", ug_err_name(e));
    if (ug_hello_cred_decode(&h, &e) != 0)
        return 0;
    FZ_CHECK(h.cred_decoded, "cred_decoded");
    check_hello(&h, d.body, d.body_len);
    ug_err e1 = UG_OK, e2 = UG_OK;
    int whole = or_hello_verify(&h, &d, &K.issuer.pub, 1, FZ_NOW, &e1);
    /* the plugin runs the two halves separately (it caches credentials):
     * they must agree with the whole, reason included */
    const ug_pubkey *iss = NULL;
    int split = ug_cred_check(&h, &K.issuer.pub, 1, FZ_NOW, &iss, &e2) == 0 &&
                        ug_cred_sig_verify(&h, iss, &e2) == 0 && ug_hello_sig_verify(&h, &d, &e2) == 0
                    ? 0
                    : -1;
    FZ_CHECK(whole == split && (whole == 0 || e1 == e2), "split check says %d (%s), whole %d (%s)", split,
             ug_err_name(e2), whole, ug_err_name(e1));
    if (whole != 0) {
        FZ_CHECK(e1 == UG_E_KEY || e1 == UG_E_EXPIRED || e1 == UG_E_BINDING || e1 == UG_E_SIG,
                 "verify failed with %s", ug_err_name(e1));
        return 0;
    }
    /* accepted: only what the reference vectors would accept */
    FZ_CHECK(size >= UG_HELLO_MIN && size <= UG_DGRAM_MAX, "accepted a %zu-byte HELLO", size);
    FZ_CHECK(h.cred.exp > FZ_NOW && h.cred.uid == h.uid && memcmp(h.cred.pk, h.pk, UG_PK_LEN) == 0, "credential");
    FZ_CHECK(memcmp(h.cred.kid, K.issuer.pub.kid, UG_KID_LEN) == 0, "issuer kid");
    /* only the issuer can bind a key to a uid, and the vectors' issuer only
     * ever bound the client key */
    FZ_CHECK(memcmp(h.pk, K.client.pub.pk, UG_PK_LEN) == 0, "accepted a HELLO not from the client key");
    FZ_CHECK(ug_verify(d.sig, UG_CTX_HELLO, d.body, d.body_len, K.client.pub.pk) == 0, "client signature");
    FZ_CHECK(ug_verify(h.cred_obj.sig, UG_CTX_CRED, h.cred_obj.body, h.cred_obj.body_len, K.issuer.pub.pk) == 0,
             "issuer signature");
    return 0;
}
