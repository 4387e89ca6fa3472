/* libFuzzer harness: a whole REPORT datagram (ug_report_parse, held to the oracle), the
 * tracker's rule 11 checks under the vectors' issuer, and byte-for-byte re-encoding. */
#include <string.h>

#include "fuzz_common.h"

static fz_keys K;

/* Key order of the spec's REPORT table: what the encoder emits. */
static const char *const report_order[] = {"uid", "ver", "to", "res", "ts", "nonce", "pk", "cred", "pad"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_keys_init(&K);
    return 0;
}

/* A version's canonical text, which is the only text the decoder accepts. */
static void version_text(const ug_version *v, char *out, size_t cap)
{
    ug_version back;
    FZ_CHECK(ug_version_format(v, out, cap) == 0, "version does not format");
    FZ_CHECK(ug_version_parse(&back, out, strlen(out)) == 0 && ug_version_cmp(&back, v) == 0 &&
                 back.nparts == v->nparts,
             "version %s does not round-trip", out);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Rebuilds the body from the decoded fields: same length whatever the key
 * order, same bytes in the spec's order (pad bytes aside: the encoder pads
 * with zeros). Returns whether the bytes are identical. */
static bool reencode(const ug_report *r, const uint8_t *body, size_t len, const ug_report_fields *f)
{
    uint8_t out[UG_OBJ_MAX];
    size_t n = 0;
    FZ_CHECK(ug_report_encode_body(out, sizeof out, &n, f) == 0, "REPORT re-encode");
    FZ_CHECK(n == len, "REPORT body of %zu bytes re-encodes to %zu", len, n);
    fz_key_ref keys[16];
    int nk = fz_map_keys(body, len, keys, 16);
    FZ_CHECK(nk >= 8 && nk <= 9, "accepted a REPORT with %d keys", nk);
    FZ_CHECK(f->has_pad == fz_has_key(keys, nk, "pad"), "pad flag");
    if (!fz_keys_in_order(keys, nk, report_order, 9))
        return false;
    FZ_CHECK(memcmp(out, body, n - r->pad_len) == 0, "canonical REPORT re-encodes differently");
    return memcmp(out, body, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FZ_ORACLE(or_cmp_dgram, data, size);
    FZ_ORACLE(or_cmp_report_parse, data, size);
    FZ_ORACLE(or_cmp_report, data, size); /* the raw bytes as a body, too */

    ug_report r;
    ug_dgram d;
    ug_err e = UG_OK;
    if (ug_report_parse(&r, &d, data, size, &e) != 0) {
        FZ_CHECK(e > UG_OK && e < UG_E_COUNT_, "rejected with err %d", (int)e);
        FZ_CHECK(ug_report_parse(&r, &d, data, size, NULL) != 0, "verdict depends on err pointer");
        return 0;
    }
    FZ_CHECK(d.type == UG_TYPE_REPORT && d.sig && size <= UG_DGRAM_MAX, "datagram");
    FZ_CHECK(fz_inside(d.body, d.body_len, data, size), "body outside input");
    FZ_CHECK(r.uid >= 1 && r.uid <= UG_UID_MAX && (unsigned)r.res < UG_RES_COUNT_, "uid %llu res %d",
             (unsigned long long)r.uid, (int)r.res);
    FZ_CHECK(fz_inside(r.cred_obj.raw, r.cred_obj.raw_len, d.body, d.body_len), "cred outside body");
    FZ_CHECK(fz_inside(r.cred_obj.body, r.cred_obj.body_len, r.cred_obj.raw, r.cred_obj.raw_len) &&
                 fz_inside(r.cred_obj.sig, UG_SIG_LEN, r.cred_obj.raw, r.cred_obj.raw_len),
             "cred parts outside cred");
    FZ_CHECK(r.pad_len < d.body_len, "pad");

    char ver[UG_VER_MAX + 1], to[UG_VER_MAX + 1];
    version_text(&r.ver, ver, sizeof ver);
    version_text(&r.to, to, sizeof to);
    ug_report_fields f = {.uid = r.uid, .ver = ver, .to = to, .res = r.res, .ts = r.ts,
                          .cred = r.cred_obj.raw, .cred_len = r.cred_obj.raw_len};
    memcpy(f.nonce, r.nonce, UG_NONCE_LEN);
    memcpy(f.pk, r.pk, UG_PK_LEN);
    fz_key_ref keys[16];
    int nk = fz_map_keys(d.body, d.body_len, keys, 16);
    f.has_pad = fz_has_key(keys, nk, "pad");
    f.pad_len = r.pad_len;
    bool same_body = reencode(&r, d.body, d.body_len, &f);

    /* rule 11's checks, trusting only the vectors' issuer at their clock */
    ug_err ev = UG_OK;
    if (ug_report_verify(&r, &d, &K.issuer.pub, 1, FZ_NOW, &ev) != 0) {
        FZ_CHECK(ev == UG_E_KEY || ev == UG_E_EXPIRED || ev == UG_E_BINDING || ev == UG_E_SIG,
                 "verify failed with %s", ug_err_name(ev));
        return 0;
    }
    /* accepted: only the issuer binds a key to a uid, and the vectors'
     * issuer only ever bound the client key */
    FZ_CHECK(r.cred.exp > FZ_NOW && r.cred.uid == r.uid && memcmp(r.cred.pk, r.pk, UG_PK_LEN) == 0, "credential");
    FZ_CHECK(memcmp(r.cred.kid, K.issuer.pub.kid, UG_KID_LEN) == 0, "issuer kid");
    FZ_CHECK(memcmp(r.pk, K.client.pub.pk, UG_PK_LEN) == 0, "accepted a REPORT not from the client key");
    FZ_CHECK(ug_verify(d.sig, UG_CTX_REPORT, d.body, d.body_len, K.client.pub.pk) == 0, "client signature");
    FZ_CHECK(ug_verify(r.cred_obj.sig, UG_CTX_CRED, r.cred_obj.body, r.cred_obj.body_len, K.issuer.pub.pk) == 0,
             "issuer signature");
    /* Ed25519 is deterministic: the same body re-signed with the client key
     * is the same datagram, byte for byte */
    if (same_body && all_zero(d.body + d.body_len - r.pad_len, r.pad_len)) {
        uint8_t body[UG_DGRAM_MAX], out[UG_DGRAM_MAX];
        size_t blen = 0, n = 0;
        FZ_CHECK(ug_report_encode_body(body, sizeof body, &blen, &f) == 0, "body");
        FZ_CHECK(ug_dgram_encode(out, sizeof out, &n, UG_TYPE_REPORT, body, blen, K.client.sk) == 0, "datagram");
        FZ_CHECK(n == size && memcmp(out, data, n) == 0, "accepted REPORT does not re-encode byte for byte");
    }
    return 0;
}
