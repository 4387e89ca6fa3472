/* The independent implementation's vectors: every one decoded, checked and re-encoded. */
#include <criterion/criterion.h>
#include <string.h>

#include <sodium.h>

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
    if (ug_hello_verify(h, &d, issuers, n, now, err) != 0)
        return 0;
    uint64_t skew = h->ts > now ? h->ts - now : now - h->ts;
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
        cr_assert_neq(ug_dgram_decode(&d, good, cut, NULL), 0, "prefix of %zu bytes accepted", cut);
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
