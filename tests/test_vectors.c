/* The independent implementation's vectors: every one decoded, checked and re-encoded. */
#include <criterion/criterion.h>
#include <string.h>

#include <sodium.h>

#include "forge.h"
#include "../fuzz/oracle/oracle.h"
#include "testutil.h"

static void init(void)
{
    cr_assert(sodium_init() >= 0);
}

TestSuite(vectors, .init = init);

static uint64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "field %s", k);
    return (uint64_t)json_integer_value(v);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    cr_assert(s, "field %s", k);
    return s;
}

Test(vectors, keys_and_kids)
{
    json_t *j = tu_vectors("keys.json");
    const char *name;
    json_t *k;
    size_t n = 0;
    json_object_foreach(json_object_get(j, "keys"), name, k) {
        uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], want_pk[UG_PK_LEN], kid[UG_KID_LEN], want_kid[UG_KID_LEN];
        tu_vector_key(name, sk, pk);
        tu_unhex(jstr(k, "pk"), want_pk, sizeof want_pk);
        tu_unhex(jstr(k, "kid"), want_kid, sizeof want_kid);
        cr_assert_arr_eq(pk, want_pk, UG_PK_LEN, "pk of %s", name);
        ug_kid(kid, pk);
        cr_assert_arr_eq(kid, want_kid, UG_KID_LEN, "kid of %s", name);
        n++;
    }
    cr_assert_geq(n, 4);
    json_decref(j);
}

/* Tracker rules 1, 4 and 5 (the parts that decide accept or drop). */
static int tracker_accepts(const uint8_t *buf, size_t len, const ug_pubkey *issuers, size_t n, uint64_t now,
                           uint64_t window, ug_hello *h, ug_err *err)
{
    ug_dgram d;
    if (ug_dgram_decode(&d, buf, len, err) != 0)
        return 0;
    if (d.type != UG_TYPE_HELLO) {
        *err = UG_E_HEADER;
        return 0;
    }
    if (ug_hello_decode(h, d.body, d.body_len, err) != 0)
        return 0;
    if (or_hello_verify(h, &d, issuers, n, now, err) != 0)
        return 0;
    uint64_t skew = h->ts > now ? h->ts - now : now - h->ts;
    return skew <= window;
}

/* The same rules through the tracker's single pass: ug_hello_parse, the
 * credential decoded only then, the same checks. */
static int tracker_accepts_parsed(const uint8_t *buf, size_t len, const ug_pubkey *issuers, size_t n,
                                  uint64_t now, uint64_t window, ug_err *err)
{
    ug_dgram d;
    ug_hello h;
    if (ug_hello_parse(&h, &d, buf, len, err) != 0)
        return 0;
    cr_assert(!h.cred_decoded);
    if (ug_hello_cred_decode(&h, err) != 0 || or_hello_verify(&h, &d, issuers, n, now, err) != 0)
        return 0;
    uint64_t skew = h.ts > now ? h.ts - now : now - h.ts;
    return skew <= window;
}

Test(vectors, tracker)
{
    json_t *j = tu_vectors("tracker.json");
    uint64_t now = jint(j, "now"), window = jint(j, "window_s");
    ug_pubkey issuers[8];
    size_t nissuers = 0;
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "trusted_issuers"), i, v) {
        uint8_t pk[UG_PK_LEN];
        cr_assert_eq(tu_unhex(json_string_value(v), pk, sizeof pk), UG_PK_LEN);
        ug_pubkey_set(&issuers[nissuers++], pk);
    }
    size_t accepted = 0, dropped = 0;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        uint8_t buf[4096];
        size_t len = tu_unhex(jstr(v, "hex"), buf, sizeof buf);
        bool want = strcmp(jstr(v, "expect"), "accept") == 0;
        ug_hello h;
        ug_err err = UG_OK;
        int got = tracker_accepts(buf, len, issuers, nissuers, now, window, &h, &err);
        cr_expect_eq(got, want, "vector '%s': expected %s, got %s (%s)", jstr(v, "name"),
                     want ? "accept" : "drop", got ? "accept" : "drop", ug_err_name(err));
        ug_err perr = UG_OK;
        int pgot = tracker_accepts_parsed(buf, len, issuers, nissuers, now, window, &perr);
        cr_expect_eq(pgot, want, "vector '%s' through ug_hello_parse: got %s (%s)", jstr(v, "name"),
                     pgot ? "accept" : "drop", ug_err_name(perr));
        cr_expect_eq(perr, err, "vector '%s': reasons %s and %s", jstr(v, "name"), ug_err_name(perr),
                     ug_err_name(err));
        want ? accepted++ : dropped++;
    }
    cr_assert_geq(accepted, 2);
    cr_assert_geq(dropped, 30);
    json_decref(j);
}

/* The valid HELLOs again, decoded field by field and rebuilt byte for byte. */
Test(vectors, tracker_reencode)
{
    json_t *j = tu_vectors("tracker.json");
    uint8_t client_sk[UG_SK_LEN], client_pk[UG_PK_LEN], issuer_sk[UG_SK_LEN], issuer_pk[UG_PK_LEN];
    tu_vector_key("client", client_sk, client_pk);
    tu_vector_key("issuer", issuer_sk, issuer_pk);
    json_t *v;
    size_t i, n = 0;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        if (strcmp(jstr(v, "expect"), "accept") != 0)
            continue;
        json_t *f = json_object_get(v, "fields");
        uint8_t want[UG_DGRAM_MAX];
        size_t want_len = tu_unhex(jstr(v, "hex"), want, sizeof want);

        ug_cred c = {.uid = jint(f, "uid"), .exp = jint(f, "cred_exp")};
        memcpy(c.pk, client_pk, UG_PK_LEN);
        ug_kid(c.kid, issuer_pk);
        uint8_t cbody[256], cobj[512];
        size_t cbody_len, cobj_len;
        cr_assert_eq(ug_cred_encode_body(cbody, sizeof cbody, &cbody_len, &c), 0);
        cr_assert_eq(ug_signed_encode(cobj, sizeof cobj, &cobj_len, UG_CTX_CRED, cbody, cbody_len, issuer_sk), 0);

        ug_hello_fields hf = {
            .uid = c.uid,
            .ver = jstr(f, "ver"),
            .ts = jint(f, "ts"),
            .cred = cobj,
            .cred_len = cobj_len,
            .plat = json_string_value(json_object_get(f, "plat")),
            .chan = json_string_value(json_object_get(f, "chan")),
            .has_pad = json_object_get(f, "pad_len") != NULL,
            .pad_len = jint(f, "pad_len"),
        };
        tu_unhex(jstr(f, "nonce"), hf.nonce, UG_NONCE_LEN);
        memcpy(hf.pk, client_pk, UG_PK_LEN);
        uint8_t body[UG_DGRAM_MAX], out[UG_DGRAM_MAX];
        size_t body_len, out_len;
        cr_assert_eq(ug_hello_encode_body(body, sizeof body, &body_len, &hf), 0);
        cr_assert_eq(ug_dgram_encode(out, sizeof out, &out_len, UG_TYPE_HELLO, body, body_len, client_sk), 0);
        cr_assert_eq(out_len, want_len, "%s: length %zu, want %zu", jstr(v, "name"), out_len, want_len);
        cr_assert_arr_eq(out, want, want_len, "%s: bytes differ", jstr(v, "name"));

        /* the padding builder lands on the same bytes for the same size */
        cr_assert_eq(ug_hello_build(out, sizeof out, &out_len, &hf, want_len, client_sk), 0);
        cr_assert_eq(out_len, want_len);
        cr_assert_arr_eq(out, want, want_len, "%s: ug_hello_build differs", jstr(v, "name"));

        /* and the decoder reads the fields back */
        ug_dgram d;
        ug_hello h;
        cr_assert_eq(ug_dgram_decode(&d, want, want_len, NULL), 0);
        cr_assert_eq(ug_hello_decode(&h, d.body, d.body_len, NULL), 0);
        cr_assert_eq(h.uid, c.uid);
        cr_assert_eq(h.ts, hf.ts);
        cr_assert_eq(h.cred.exp, c.exp);
        cr_assert_eq(h.pad_len, hf.pad_len);
        cr_assert_str_eq(h.plat, hf.plat ? hf.plat : "");
        cr_assert_str_eq(h.chan, hf.chan ? hf.chan : "");
        ug_version ver;
        cr_assert_eq(ug_version_parse(&ver, hf.ver, strlen(hf.ver)), 0);
        cr_assert_eq(ug_version_cmp(&ver, &h.ver), 0);
        n++;
    }
    cr_assert_geq(n, 2);
    json_decref(j);
}

static void peer_expect(json_t *j, ug_peer_expect *w, ug_pubkey *hk, ug_pubkey *rk)
{
    json_t *v;
    size_t i;
    memset(w, 0, sizeof *w);
    json_array_foreach(json_object_get(j, "pinned_hint_keys"), i, v) {
        uint8_t pk[UG_PK_LEN];
        cr_assert_eq(tu_unhex(json_string_value(v), pk, sizeof pk), UG_PK_LEN);
        ug_pubkey_set(&hk[w->nhint_keys++], pk);
    }
    json_array_foreach(json_object_get(j, "pinned_release_keys"), i, v) {
        uint8_t pk[UG_PK_LEN];
        cr_assert_eq(tu_unhex(json_string_value(v), pk, sizeof pk), UG_PK_LEN);
        ug_pubkey_set(&rk[w->nrelease_keys++], pk);
    }
    w->hint_keys = hk;
    w->release_keys = rk;
    w->uid = jint(j, "uid");
    w->now = jint(j, "now");
    tu_unhex(jstr(j, "nonce"), w->nonce, UG_NONCE_LEN);
    const char *cur = jstr(j, "current_version");
    cr_assert_eq(ug_version_parse(&w->current, cur, strlen(cur)), 0);
}

Test(vectors, peer)
{
    json_t *j = tu_vectors("peer.json");
    ug_pubkey hk[8], rk[8];
    ug_peer_expect w;
    peer_expect(j, &w, hk, rk);
    json_t *v;
    size_t i, accepted = 0, rejected = 0;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        uint8_t buf[4096];
        size_t len = tu_unhex(jstr(v, "hex"), buf, sizeof buf);
        bool want = strcmp(jstr(v, "expect"), "accept") == 0;
        ug_hint h;
        ug_err err = UG_OK;
        bool got = ug_hint_verify(&h, buf, len, &w, &err) == 0;
        cr_expect_eq(got, want, "vector '%s': expected %s, got %s (%s)", jstr(v, "name"),
                     want ? "accept" : "reject", got ? "accept" : "reject", ug_err_name(err));
        want ? accepted++ : rejected++;
    }
    cr_assert_geq(accepted, 1);
    cr_assert_geq(rejected, 12);
    json_decref(j);
}

Test(vectors, peer_reencode_and_package)
{
    json_t *j = tu_vectors("peer.json");
    uint8_t hint_sk[UG_SK_LEN], hint_pk[UG_PK_LEN], rel_sk[UG_SK_LEN], rel_pk[UG_PK_LEN];
    tu_vector_key("hint", hint_sk, hint_pk);
    tu_vector_key("release", rel_sk, rel_pk);
    json_t *v = json_array_get(json_object_get(j, "vectors"), 0);
    cr_assert_str_eq(jstr(v, "expect"), "accept");
    json_t *f = json_object_get(v, "fields");

    ug_manifest m = {.size = jint(f, "size"), .exp = jint(f, "manifest_exp")};
    const char *to = jstr(f, "to");
    cr_assert_eq(ug_version_parse(&m.to, to, strlen(to)), 0);
    json_t *u;
    size_t i;
    json_array_foreach(json_object_get(f, "urls"), i, u) {
        snprintf(m.urls[m.nurls++], UG_URL_MAX + 1, "%s", json_string_value(u));
    }
    tu_unhex(jstr(f, "hash"), m.hash, UG_HASH_LEN);
    ug_kid(m.kid, rel_pk);
    uint8_t mbody[UG_OBJ_MAX], mobj[UG_OBJ_MAX];
    size_t mbody_len, mobj_len;
    cr_assert_eq(ug_manifest_encode_body(mbody, sizeof mbody, &mbody_len, &m), 0);
    cr_assert_eq(ug_signed_encode(mobj, sizeof mobj, &mobj_len, UG_CTX_RELEASE, mbody, mbody_len, rel_sk), 0);

    ug_hint_fields hf = {
        .uid = jint(j, "uid"), .ts = jint(f, "ts"), .exp = jint(f, "exp"), .mirror = jint(f, "mirror"),
        .rel = mobj, .rel_len = mobj_len,
    };
    tu_unhex(jstr(j, "nonce"), hf.nonce, UG_NONCE_LEN);
    ug_kid(hf.kid, hint_pk);
    uint8_t body[UG_DGRAM_MAX], out[UG_DGRAM_MAX], want[UG_DGRAM_MAX];
    size_t body_len, out_len, want_len = tu_unhex(jstr(v, "hex"), want, sizeof want);
    cr_assert_eq(ug_hint_encode_body(body, sizeof body, &body_len, &hf), 0);
    cr_assert_eq(ug_dgram_encode(out, sizeof out, &out_len, UG_TYPE_HINT, body, body_len, hint_sk), 0);
    cr_assert_eq(out_len, want_len);
    cr_assert_arr_eq(out, want, want_len, "valid hint: bytes differ");
    cr_assert_leq(want_len, ug_hint_max_len(mobj_len));

    /* the package matches the manifest's size and hash */
    static uint8_t pkg[65536];
    size_t pkg_len = tu_unhex(jstr(j, "package_hex"), pkg, sizeof pkg);
    uint8_t hash[UG_HASH_LEN];
    crypto_generichash(hash, sizeof hash, pkg, pkg_len, NULL, 0);
    cr_assert_eq(pkg_len, m.size);
    cr_assert_arr_eq(hash, m.hash, UG_HASH_LEN);
    json_decref(j);
}

Test(vectors, unsigned_replies)
{
    json_t *j = tu_vectors("peer.json");
    json_t *v;
    size_t i, n = 0;
    json_array_foreach(json_object_get(j, "unsigned_replies"), i, v) {
        uint8_t buf[UG_DGRAM_MAX], out[UG_DGRAM_MAX], body[UG_DGRAM_MAX];
        size_t len = tu_unhex(jstr(v, "hex"), buf, sizeof buf), out_len, body_len;
        json_t *f = json_object_get(v, "fields");
        ug_dgram d;
        cr_assert_eq(ug_dgram_decode(&d, buf, len, NULL), 0, "%s", jstr(v, "name"));
        cr_assert_null(d.sig);
        if (strcmp(jstr(v, "name"), "wait") == 0) {
            ug_wait w;
            cr_assert_eq(d.type, UG_TYPE_WAIT);
            cr_assert_eq(ug_wait_decode(&w, d.body, d.body_len, NULL), 0);
            cr_assert_eq(w.retry, jint(f, "retry"));
            cr_assert_eq(w.why, jint(f, "why"));
            cr_assert_eq(w.ts, jint(f, "ts"));
            cr_assert_eq(ug_wait_encode_body(body, sizeof body, &body_len, &w), 0);
        } else {
            ug_cookie c;
            uint8_t want_cookie[UG_COOKIE_LEN];
            cr_assert_eq(d.type, UG_TYPE_COOKIE);
            cr_assert_eq(ug_cookie_decode(&c, d.body, d.body_len, NULL), 0);
            tu_unhex(jstr(f, "cookie"), want_cookie, sizeof want_cookie);
            cr_assert_arr_eq(c.cookie, want_cookie, UG_COOKIE_LEN);
            cr_assert_eq(c.ts, jint(f, "ts"));
            cr_assert_eq(ug_cookie_encode_body(body, sizeof body, &body_len, &c), 0);
        }
        cr_assert_eq(ug_dgram_encode(out, sizeof out, &out_len, d.type, body, body_len, NULL), 0);
        cr_assert_eq(out_len, len);
        cr_assert_arr_eq(out, buf, len, "%s: re-encoding differs", jstr(v, "name"));
        n++;
    }
    cr_assert_eq(n, 2);
    json_decref(j);
}

Test(vectors, percent_buckets)
{
    json_t *j = tu_vectors("policy.json");
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "buckets"), i, v) {
        const char *salt = jstr(v, "salt");
        uint64_t uid = jint(v, "uid");
        cr_expect_eq(ug_percent_bucket(salt, strlen(salt), uid), jint(v, "bucket"), "salt '%s' uid %llu", salt,
                     (unsigned long long)uid);
    }
    cr_assert_geq(i, 20);
    json_decref(j);
}

/* Every single-byte change of a valid signed datagram must be refused: all
 * of it is either signed or the signature itself, save the fixed header. */
Test(vectors, mutations_of_valid_hello_are_dropped)
{
    json_t *j = tu_vectors("tracker.json");
    uint8_t ipk[UG_PK_LEN];
    tu_unhex(json_string_value(json_array_get(json_object_get(j, "trusted_issuers"), 0)), ipk, sizeof ipk);
    ug_pubkey issuer;
    ug_pubkey_set(&issuer, ipk);
    json_t *v = json_array_get(json_object_get(j, "vectors"), 0);
    uint8_t good[UG_DGRAM_MAX];
    size_t len = tu_unhex(jstr(v, "hex"), good, sizeof good);
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t k = 0; k < sizeof flips; k++) {
            uint8_t buf[UG_DGRAM_MAX];
            memcpy(buf, good, len);
            buf[pos] ^= flips[k];
            ug_hello h;
            ug_err err;
            int got = tracker_accepts(buf, len, &issuer, 1, jint(j, "now"), jint(j, "window_s"), &h, &err);
            cr_assert_eq(got, 0, "byte %zu ^ %02x accepted", pos, flips[k]);
            got = tracker_accepts_parsed(buf, len, &issuer, 1, jint(j, "now"), jint(j, "window_s"), &err);
            cr_assert_eq(got, 0, "byte %zu ^ %02x accepted by ug_hello_parse", pos, flips[k]);
        }
    }
    json_decref(j);
}

Test(vectors, mutations_of_valid_hint_are_rejected)
{
    json_t *j = tu_vectors("peer.json");
    ug_pubkey hk[8], rk[8];
    ug_peer_expect w;
    peer_expect(j, &w, hk, rk);
    json_t *v = json_array_get(json_object_get(j, "vectors"), 0);
    uint8_t good[UG_DGRAM_MAX];
    size_t len = tu_unhex(jstr(v, "hex"), good, sizeof good);
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t k = 0; k < sizeof flips; k++) {
            uint8_t buf[UG_DGRAM_MAX];
            memcpy(buf, good, len);
            buf[pos] ^= flips[k];
            ug_hint h;
            cr_assert_neq(ug_hint_verify(&h, buf, len, &w, NULL), 0, "byte %zu ^ %02x accepted", pos, flips[k]);
        }
    }
    json_decref(j);
}

/* Every truncation of the valid vectors is refused. */
Test(vectors, truncations_are_dropped)
{
    json_t *j = tu_vectors("tracker.json");
    json_t *v = json_array_get(json_object_get(j, "vectors"), 0);
    uint8_t good[UG_DGRAM_MAX];
    size_t len = tu_unhex(jstr(v, "hex"), good, sizeof good);
    for (size_t cut = 0; cut < len; cut++) {
        ug_dgram d;
        ug_hello h;
        cr_assert_neq(ug_dgram_decode(&d, good, cut, NULL), 0, "prefix of %zu bytes accepted", cut);
        cr_assert_neq(ug_hello_parse(&h, &d, good, cut, NULL), 0, "prefix of %zu bytes parsed", cut);
        cr_assert_null(d.body, "prefix of %zu bytes: d->body set", cut);
    }
    json_decref(j);
}

/* Rule 11's accept/drop for a REPORT: outer datagram, body, every check of
 * rule 4 and the clock window. (Whether the uid was offered is the
 * tracker's state, not the vectors'.) */
static int report_accepts(const uint8_t *buf, size_t len, const ug_pubkey *issuers, size_t n, uint64_t now,
                          uint64_t window, ug_report *r, ug_err *err)
{
    ug_dgram d;
    if (ug_dgram_decode(&d, buf, len, err) != 0)
        return 0;
    if (d.type != UG_TYPE_REPORT) {
        *err = UG_E_HEADER;
        return 0;
    }
    if (ug_report_decode(r, d.body, d.body_len, err) != 0 || ug_report_verify(r, &d, issuers, n, now, err) != 0)
        return 0;
    return (r->ts > now ? r->ts - now : now - r->ts) <= window;
}

Test(vectors, report)
{
    json_t *j = tu_vectors("report.json");
    uint64_t now = jint(j, "now"), window = jint(j, "window_s");
    ug_pubkey issuers[8];
    size_t nissuers = 0, accepted = 0, dropped = 0, i;
    json_t *v;
    json_array_foreach(json_object_get(j, "trusted_issuers"), i, v) {
        uint8_t pk[UG_PK_LEN];
        cr_assert_eq(tu_unhex(json_string_value(v), pk, sizeof pk), UG_PK_LEN);
        ug_pubkey_set(&issuers[nissuers++], pk);
    }
    uint8_t client_sk[UG_SK_LEN], client_pk[UG_PK_LEN], issuer_sk[UG_SK_LEN], issuer_pk[UG_PK_LEN];
    tu_vector_key("client", client_sk, client_pk);
    tu_vector_key("issuer", issuer_sk, issuer_pk);
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        uint8_t buf[4096];
        size_t len = tu_unhex(jstr(v, "hex"), buf, sizeof buf);
        bool want = strcmp(jstr(v, "expect"), "accept") == 0;
        ug_report r;
        ug_err err = UG_OK;
        int got = report_accepts(buf, len, issuers, nissuers, now, window, &r, &err);
        cr_expect_eq(got, want, "vector '%s': expected %s, got %s (%s)", jstr(v, "name"),
                     want ? "accept" : "drop", got ? "accept" : "drop", ug_err_name(err));
        /* and through the single pass over the whole datagram */
        ug_report pr;
        ug_dgram pd;
        ug_err perr = UG_OK;
        int pgot = ug_report_parse(&pr, &pd, buf, len, &perr) == 0 &&
                   ug_report_verify(&pr, &pd, issuers, nissuers, now, &perr) == 0 &&
                   (pr.ts > now ? pr.ts - now : now - pr.ts) <= window;
        cr_expect_eq(pgot, want, "vector '%s' through ug_report_parse: got %s (%s)", jstr(v, "name"),
                     pgot ? "accept" : "drop", ug_err_name(perr));
        if (!want) {
            dropped++;
            continue;
        }
        accepted++;
        /* accepted ones are rebuilt byte for byte from their fields */
        json_t *f = json_object_get(v, "fields");
        cr_assert_eq(r.uid, jint(f, "uid"));
        cr_assert_eq((uint64_t)r.res, jint(f, "res"));
        ug_cred c = {.uid = jint(f, "uid"), .exp = jint(f, "cred_exp")};
        memcpy(c.pk, client_pk, UG_PK_LEN);
        ug_kid(c.kid, issuer_pk);
        uint8_t cbody[256], cobj[512], out[UG_DGRAM_MAX];
        size_t cbody_len, cobj_len, out_len;
        cr_assert_eq(ug_cred_encode_body(cbody, sizeof cbody, &cbody_len, &c), 0);
        cr_assert_eq(ug_signed_encode(cobj, sizeof cobj, &cobj_len, UG_CTX_CRED, cbody, cbody_len, issuer_sk), 0);
        ug_report_fields rf = {
            .uid = c.uid, .ver = jstr(f, "ver"), .to = jstr(f, "to"), .res = (ug_res)jint(f, "res"),
            .ts = jint(f, "ts"), .cred = cobj, .cred_len = cobj_len,
        };
        tu_unhex(jstr(f, "nonce"), rf.nonce, UG_NONCE_LEN);
        memcpy(rf.pk, client_pk, UG_PK_LEN);
        size_t target = json_object_get(f, "pad_len") ? len : 0;
        cr_assert_eq(ug_report_build(out, sizeof out, &out_len, &rf, target, client_sk), 0);
        cr_assert_eq(out_len, len, "%s: length %zu, want %zu", jstr(v, "name"), out_len, len);
        cr_assert_arr_eq(out, buf, len, "%s: bytes differ", jstr(v, "name"));
        if (target)
            cr_assert_eq(r.pad_len, jint(f, "pad_len"));
    }
    cr_assert_geq(accepted, 7);
    cr_assert_geq(dropped, 16);
    json_decref(j);
}

/* ---- signatures libsodium refuses (protocol.md section 1) -------------- */

/* The bytes of the vector called name in j's "vectors"; aborts if absent. */
static size_t vector_named(json_t *j, const char *name, uint8_t *buf, size_t cap)
{
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        if (strcmp(jstr(v, "name"), name) == 0)
            return tu_unhex(jstr(v, "hex"), buf, cap);
    }
    cr_assert_fail("no vector named '%s'", name);
    return 0;
}

static size_t load_issuers(json_t *j, ug_pubkey *issuers, size_t cap)
{
    json_t *v;
    size_t i, n = 0;
    json_array_foreach(json_object_get(j, "trusted_issuers"), i, v) {
        uint8_t pk[UG_PK_LEN];
        cr_assert_lt(n, cap);
        cr_assert_eq(tu_unhex(json_string_value(v), pk, sizeof pk), UG_PK_LEN);
        ug_pubkey_set(&issuers[n++], pk);
    }
    return n;
}

/* A HELLO that decodes and passes every cheap check, and whose only fault
 * is a signature libsodium refuses, is dropped for that signature, both by
 * ug_hello_verify and by the split path the plugin runs. */
static void hello_refused_for_signature(const uint8_t *buf, size_t len, const ug_pubkey *issuers, size_t n,
                                        uint64_t now, const char *what)
{
    ug_dgram d;
    ug_hello h;
    ug_err e = UG_OK;
    const ug_pubkey *iss = NULL;
    cr_assert_eq(ug_dgram_decode(&d, buf, len, &e), 0, "%s: %s", what, ug_err_name(e));
    cr_assert_eq(ug_hello_decode(&h, d.body, d.body_len, &e), 0, "%s: %s", what, ug_err_name(e));
    cr_assert_eq(ug_cred_check(&h, issuers, n, now, &iss, &e), 0, "%s: cheap checks: %s", what, ug_err_name(e));
    bool cred_ok = ug_cred_sig_verify(&h, iss, &e) == 0;
    bool hello_ok = ug_hello_sig_verify(&h, &d, &e) == 0;
    cr_assert(!(cred_ok && hello_ok), "%s: both signatures verify", what);
    cr_assert_neq(or_hello_verify(&h, &d, issuers, n, now, &e), 0, "%s accepted", what);
    cr_assert_eq(e, UG_E_SIG, "%s: refused for %s, not the signature", what, ug_err_name(e));
}

Test(vectors, tracker_refuses_noncanonical_and_small_order_signatures)
{
    json_t *j = tu_vectors("tracker.json");
    ug_pubkey issuers[8];
    size_t n = load_issuers(j, issuers, 8);
    uint64_t now = jint(j, "now");
    static const char *const names[] = {
        "hello signature with S + L (non-canonical)",
        "credential signature with S + L (non-canonical)",
        "client key of small order (identity), signature R = identity, S = 0",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        uint8_t buf[UG_DGRAM_MAX];
        size_t len = vector_named(j, names[i], buf, sizeof buf);
        hello_refused_for_signature(buf, len, issuers, n, now, names[i]);
    }
    /* the small-order vector is a real forgery: a plain cofactorless check
     * passes it for any message */
    uint8_t buf[UG_DGRAM_MAX];
    size_t len = vector_named(j, names[2], buf, sizeof buf);
    ug_dgram d;
    ug_hello h;
    cr_assert_eq(ug_dgram_decode(&d, buf, len, NULL), 0);
    cr_assert_eq(ug_hello_decode(&h, d.body, d.body_len, NULL), 0);
    cr_assert_arr_eq(h.pk, fg_identity, UG_PK_LEN);
    cr_assert(fg_cofactorless_ok(d.sig, UG_CTX_HELLO, d.body, d.body_len, h.pk));

    /* R of small order under the real client key: S = h * a passes the
     * plain equation; libsodium's small-order R check alone refuses it */
    uint8_t csk[UG_SK_LEN], cpk[UG_PK_LEN], sig[UG_SIG_LEN], forged[UG_DGRAM_MAX];
    tu_vector_key("client", csk, cpk);
    len = vector_named(j, "valid hello", buf, sizeof buf);
    cr_assert_eq(ug_dgram_decode(&d, buf, len, NULL), 0);
    fg_sig_identity_r(sig, UG_CTX_HELLO, d.body, d.body_len, csk);
    cr_assert(fg_cofactorless_ok(sig, UG_CTX_HELLO, d.body, d.body_len, cpk), "the forgery is not one");
    size_t flen = fg_seal(forged, sizeof forged, UG_TYPE_HELLO, d.body, d.body_len, sig);
    cr_assert_eq(flen, len);
    hello_refused_for_signature(forged, flen, issuers, n, now, "HELLO with R = identity under the client key");
    json_decref(j);
}

static void report_refused_for_signature(const uint8_t *buf, size_t len, const ug_pubkey *issuers, size_t n,
                                         uint64_t now, const char *what)
{
    ug_dgram d;
    ug_report r;
    ug_err e = UG_OK;
    cr_assert_eq(ug_dgram_decode(&d, buf, len, &e), 0, "%s: %s", what, ug_err_name(e));
    cr_assert_eq(ug_report_decode(&r, d.body, d.body_len, &e), 0, "%s: %s", what, ug_err_name(e));
    cr_assert_neq(ug_report_verify(&r, &d, issuers, n, now, &e), 0, "%s accepted", what);
    cr_assert_eq(e, UG_E_SIG, "%s: refused for %s, not the signature", what, ug_err_name(e));
}

/* report.json has no such vectors: each is made from a named one. */
Test(vectors, report_refuses_noncanonical_and_small_order_signatures)
{
    json_t *j = tu_vectors("report.json"), *t = tu_vectors("tracker.json");
    ug_pubkey issuers[8];
    size_t n = load_issuers(j, issuers, 8);
    uint64_t now = jint(j, "now");
    uint8_t csk[UG_SK_LEN], cpk[UG_PK_LEN], buf[UG_DGRAM_MAX], out[UG_DGRAM_MAX], sig[UG_SIG_LEN];
    tu_vector_key("client", csk, cpk);
    size_t len = vector_named(j, "valid report: installed", buf, sizeof buf), olen;
    ug_dgram d;
    ug_report r;
    cr_assert_eq(ug_dgram_decode(&d, buf, len, NULL), 0);
    cr_assert_eq(ug_report_decode(&r, d.body, d.body_len, NULL), 0);
    cr_assert_eq(ug_report_verify(&r, &d, issuers, n, now, NULL), 0, "the base vector verifies");

    /* the REPORT's own signature with S + L */
    memcpy(sig, d.sig, UG_SIG_LEN);
    fg_sig_plus_l(sig);
    cr_assert(fg_cofactorless_ok(sig, UG_CTX_REPORT, d.body, d.body_len, cpk));
    olen = fg_seal(out, sizeof out, UG_TYPE_REPORT, d.body, d.body_len, sig);
    report_refused_for_signature(out, olen, issuers, n, now, "report signature with S + L");

    /* the credential's signature with S + L, the REPORT re-signed */
    uint8_t body[UG_DGRAM_MAX];
    memcpy(body, d.body, d.body_len);
    fg_sig_plus_l(body + (r.cred_obj.sig - d.body));
    cr_assert_eq(ug_sign(sig, UG_CTX_REPORT, body, d.body_len, csk), 0);
    olen = fg_seal(out, sizeof out, UG_TYPE_REPORT, body, d.body_len, sig);
    report_refused_for_signature(out, olen, issuers, n, now, "credential signature with S + L");

    /* R of small order under the client key */
    fg_sig_identity_r(sig, UG_CTX_REPORT, d.body, d.body_len, csk);
    cr_assert(fg_cofactorless_ok(sig, UG_CTX_REPORT, d.body, d.body_len, cpk));
    olen = fg_seal(out, sizeof out, UG_TYPE_REPORT, d.body, d.body_len, sig);
    report_refused_for_signature(out, olen, issuers, n, now, "report with R = identity");

    /* the identity client key, with the issuer's credential for it from
     * tracker.json's small-order vector, and R = identity, S = 0 */
    uint8_t tv[UG_DGRAM_MAX];
    size_t tlen = vector_named(t, "client key of small order (identity), signature R = identity, S = 0", tv, sizeof tv);
    ug_dgram td;
    ug_hello th;
    cr_assert_eq(ug_dgram_decode(&td, tv, tlen, NULL), 0);
    cr_assert_eq(ug_hello_decode(&th, td.body, td.body_len, NULL), 0);
    ug_report_fields rf = {.uid = th.uid, .ver = "2.0.0", .to = "2.0.0", .res = UG_RES_INSTALLED, .ts = now,
                           .cred = th.cred_obj.raw, .cred_len = th.cred_obj.raw_len};
    memcpy(rf.pk, fg_identity, UG_PK_LEN);
    size_t blen;
    cr_assert_eq(ug_report_encode_body(body, sizeof body, &blen, &rf), 0);
    olen = fg_seal_by_identity(out, sizeof out, UG_TYPE_REPORT, body, blen);
    report_refused_for_signature(out, olen, issuers, n, now, "report under the identity key");
    json_decref(t);
    json_decref(j);
}

static void hint_refused_for_signature(const uint8_t *buf, size_t len, const ug_peer_expect *w, const char *what)
{
    ug_hint h;
    ug_err e = UG_OK;
    cr_assert_neq(ug_hint_verify(&h, buf, len, w, &e), 0, "%s accepted", what);
    cr_assert_eq(e, UG_E_SIG, "%s: refused for %s, not the signature", what, ug_err_name(e));
}

Test(vectors, peer_refuses_noncanonical_and_small_order_signatures)
{
    json_t *j = tu_vectors("peer.json");
    ug_pubkey hk[8], rk[8];
    ug_peer_expect w;
    peer_expect(j, &w, hk, rk);
    static const char *const names[] = {
        "hint signature with S + L (non-canonical)",
        "manifest signature with S + L (non-canonical)",
    };
    uint8_t buf[UG_DGRAM_MAX], out[UG_DGRAM_MAX], sig[UG_SIG_LEN];
    size_t len, olen;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        len = vector_named(j, names[i], buf, sizeof buf);
        hint_refused_for_signature(buf, len, &w, names[i]);
    }

    /* R of small order under the pinned hint key */
    uint8_t hsk[UG_SK_LEN], hpk[UG_PK_LEN];
    tu_vector_key("hint", hsk, hpk);
    len = vector_named(j, "valid hint", buf, sizeof buf);
    ug_dgram d;
    ug_hint h;
    cr_assert_eq(ug_dgram_decode(&d, buf, len, NULL), 0);
    fg_sig_identity_r(sig, UG_CTX_HINT, d.body, d.body_len, hsk);
    cr_assert(fg_cofactorless_ok(sig, UG_CTX_HINT, d.body, d.body_len, hpk));
    olen = fg_seal(out, sizeof out, UG_TYPE_HINT, d.body, d.body_len, sig);
    hint_refused_for_signature(out, olen, &w, "HINT with R = identity under the hint key");

    /* a peer misconfigured to pin the identity as a hint key still refuses
     * a HINT "signed" by it (R = identity, S = 0) */
    cr_assert_eq(ug_hint_decode(&h, d.body, d.body_len, NULL), 0);
    ug_hint_fields f = {.uid = h.uid, .ts = h.ts, .exp = h.exp, .mirror = h.mirror, .rel = h.rel_obj.raw,
                        .rel_len = h.rel_obj.raw_len};
    memcpy(f.nonce, h.nonce, UG_NONCE_LEN);
    ug_kid(f.kid, fg_identity);
    uint8_t body[UG_DGRAM_MAX];
    size_t blen;
    cr_assert_eq(ug_hint_encode_body(body, sizeof body, &blen, &f), 0);
    olen = fg_seal_by_identity(out, sizeof out, UG_TYPE_HINT, body, blen);
    ug_pubkey id_key;
    ug_pubkey_set(&id_key, fg_identity);
    ug_peer_expect w2 = w;
    w2.hint_keys = &id_key;
    w2.nhint_keys = 1;
    hint_refused_for_signature(out, olen, &w2, "HINT under a pinned identity key");
    json_decref(j);
}
