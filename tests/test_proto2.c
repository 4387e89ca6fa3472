/* Protocol version 2's API beyond single verdicts: a peer walking keyrings and the state it keeps, the tracker's
 * load checks, builders and combined signatures, and every mutation of a valid HINT and keyring refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "testutil.h"
#include "ug_proto2.h"

static char root[1024];
static json_t *keys_j, *keyring_j, *peer_j;

static json_t *load(const char *file)
{
    char path[1200];
    json_error_t e;
    snprintf(path, sizeof path, "%s/tests/vectors-v2/%s", root, file);
    json_t *j = json_load_file(path, 0, &e);
    cr_assert(j, "cannot load %s: %s", path, e.text);
    return j;
}

static void init(void)
{
    cr_assert(sodium_init() >= 0);
    const char *r = getenv("UG_ROOT");
    snprintf(root, sizeof root, "%s", r && *r ? r : ".");
    keys_j = load("keys.json");
    keyring_j = load("keyring.json");
    peer_j = load("peer.json");
}

static void fini(void)
{
    json_decref(keys_j);
    json_decref(keyring_j);
    json_decref(peer_j);
}

TestSuite(proto2, .init = init, .fini = fini, .timeout = 120);

static void key(const char *name, uint8_t sk[UG_SK_LEN], uint8_t pk[UG_PK_LEN])
{
    uint8_t seed[UG_SEED_LEN];
    json_t *k = json_object_get(json_object_get(keys_j, "keys"), name);
    cr_assert(k, "no key %s", name);
    cr_assert_eq(tu_unhex(json_string_value(json_object_get(k, "seed")), seed, sizeof seed), UG_SEED_LEN);
    crypto_sign_seed_keypair(pk, sk, seed);
}

static size_t vec(json_t *file, const char *name, uint8_t *buf, size_t cap)
{
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(file, "vectors"), i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return tu_unhex(json_string_value(json_object_get(v, "hex")), buf, cap);
    }
    cr_assert_fail("no vector %s", name);
    return 0;
}

static size_t keyring_doc(const char *name, uint8_t *buf, size_t cap)
{
    return tu_unhex(json_string_value(json_object_get(json_object_get(peer_j, "keyrings"), name)), buf, cap);
}

/* peer.json's peer, with only its anchor (roots 1 and 2, threshold 2, version 0). */
static void fresh_peer(ug2_peer *p)
{
    uint8_t sk[UG_SK_LEN], roots[2][UG_PK_LEN];
    memset(p, 0, sizeof *p);
    key("root1", sk, roots[0]);
    key("root2", sk, roots[1]);
    cr_assert_eq(ug2_anchor_set(&p->kr, 0, (const uint8_t(*)[UG_PK_LEN])roots, 2, 2), 0);
    snprintf(p->app, sizeof p->app, "example-app");
    snprintf(p->plat, sizeof p->plat, "linux-x86_64");
    snprintf(p->chan, sizeof p->chan, "stable");
    snprintf(p->tracker, sizeof p->tracker, "eu-1");
    cr_assert_eq(ug_version_parse(&p->current, "1.4.2", 5), 0);
    p->now = 1790000000;
    p->fresh_at = p->now;
    p->uid = 4242;
    for (unsigned i = 0; i < UG_NONCE_LEN; i++)
        p->nonce[i] = (uint8_t)i;
}

static const char *const chain[] = {"keyring 1 from the anchor (version 0)", "keyring 2 after 1 (root1 out, root3 in)",
                                    "keyring 3 after 2 (root2 out, root4 in)"};

/* The walk of issue 24: anchor, keyrings 1, 2, 3, one at a time, nothing skipped, the next version named. */
Test(proto2, peer_walks_three_keyrings)
{
    ug2_peer p;
    uint8_t doc[UG2_KEYRING_MAX];
    ug_err e;
    fresh_peer(&p);
    cr_assert_eq(ug2_peer_next_kv(&p), 1);
    size_t n3 = vec(keyring_j, chain[2], doc, sizeof doc);
    cr_assert_neq(ug2_peer_keyring(&p, doc, n3, &e), 0, "keyring 3 taken from the anchor");
    cr_assert_eq(e, UG_E_CHAIN);
    for (unsigned i = 0; i < 3; i++) {
        size_t n = vec(keyring_j, chain[i], doc, sizeof doc);
        cr_assert_eq(ug2_peer_keyring(&p, doc, n, &e), 0, "%s: %s", chain[i], ug_err_name(e));
        cr_assert(p.has_keyring);
        cr_assert_eq(p.kr.kv, i + 1);
        cr_assert_eq(ug2_peer_next_kv(&p), i + 2);
        cr_assert_neq(ug2_peer_keyring(&p, doc, n, &e), 0, "%s taken twice", chain[i]);
        cr_assert_eq(e, UG_E_CHAIN);
    }
    cr_assert_eq(ug2_peer_min_serial(&p), 5, "keyring 3's minimum serial is in force");
    /* and now the peer takes peer.json's valid HINT */
    static uint8_t dg[UG_DGRAM_MAX];
    static ug2_hint h;
    size_t n = vec(peer_j, "valid HINT (mirror 1, delta 0 from 1.4.2)", dg, sizeof dg);
    p.seq_hi = 10;
    cr_assert_eq(ug2_hint_verify(&h, dg, n, &p, NULL, &e), 0, "%s", ug_err_name(e));
}

/* A HINT from a tracker ahead of the peer names the keyring it needs; the peer walks to it and retries. */
Test(proto2, hint_names_the_keyring_to_walk_to)
{
    ug2_peer p;
    static uint8_t dg[UG_DGRAM_MAX], doc[UG2_KEYRING_MAX];
    static ug2_hint h;
    ug_err e;
    uint32_t need = 0;
    fresh_peer(&p);
    size_t n = vec(peer_j, "valid HINT (mirror 1, delta 0 from 1.4.2)", dg, sizeof dg);
    cr_assert_neq(ug2_hint_verify(&h, dg, n, &p, &need, &e), 0);
    cr_assert_eq(e, UG_E_KEYRING);
    cr_assert_eq(need, 3);
    while (p.kr.kv < need || !p.has_keyring) {
        size_t dn = vec(keyring_j, chain[ug2_peer_next_kv(&p) - 1], doc, sizeof doc);
        cr_assert_eq(ug2_peer_keyring(&p, doc, dn, &e), 0, "%s", ug_err_name(e));
    }
    cr_assert_eq(ug2_hint_verify(&h, dg, n, &p, &need, &e), 0, "%s", ug_err_name(e));
}

/* After a verified HINT the peer's state moves up, and an older manifest is refused from then on. */
Test(proto2, peer_state_moves_after_a_hint)
{
    ug2_peer p;
    static uint8_t dg[UG_DGRAM_MAX], doc[UG2_KEYRING_MAX];
    static ug2_hint h;
    ug_err e;
    fresh_peer(&p);
    cr_assert_eq(ug2_keyring_open(&p.kr, &(ug2_multisig){0}, doc, keyring_doc("kr3", doc, sizeof doc), &e), 0);
    p.has_keyring = true;
    p.now = 1790000000 - 30 * 86400; /* a slow clock */
    size_t n = vec(peer_j, "valid HINT (mirror 1, delta 0 from 1.4.2)", dg, sizeof dg);
    cr_assert_eq(ug2_hint_verify(&h, dg, n, &p, NULL, &e), 0, "%s", ug_err_name(e));
    ug2_peer_note_hint(&p, &h);
    cr_assert_eq(p.seq_hi, 12);
    cr_assert_eq(p.floor, 1790000000, "the HINT's signed time moved the clock");
    cr_assert_eq(p.fresh_at, 1790000000);
    cr_assert_eq(ug2_peer_now(&p), 1790000000);
    n = vec(peer_j, "seq equal to the highest verified", dg, sizeof dg); /* seq 10 < 12 now */
    cr_assert_neq(ug2_hint_verify(&h, dg, n, &p, NULL, &e), 0);
    cr_assert_eq(e, UG_E_SEQ);
    n = vec(peer_j, "downgrade to 1.4.0 with the flag and seq 11 above 10", dg, sizeof dg);
    cr_assert_neq(ug2_hint_verify(&h, dg, n, &p, NULL, &e), 0);
    cr_assert_eq(e, UG_E_SEQ, "a downgrade needs a seq above the highest verified: %s", ug_err_name(e));
}

/* "Updates may be blocked" after D days without a valid token or HINT, on a fake clock; a token resets it. */
Test(proto2, blocked_event_on_a_fake_clock)
{
    ug2_peer p;
    static uint8_t dg[UG_DGRAM_MAX], doc[UG2_KEYRING_MAX];
    static ug2_wait w;
    ug_err e;
    const uint64_t week = 7 * 86400;
    fresh_peer(&p);
    cr_assert_eq(ug2_keyring_open(&p.kr, &(ug2_multisig){0}, doc, keyring_doc("kr3", doc, sizeof doc), &e), 0);
    p.has_keyring = true;
    p.seq_hi = 10;
    p.fresh_at = p.now - week + 1;
    cr_assert(!ug2_peer_blocked(&p, week));
    p.now += 1;
    cr_assert(ug2_peer_blocked(&p, week), "a week without a token");
    json_t *wj = load("wait.json");
    size_t n = vec(wj, "WAIT without a token", dg, sizeof dg);
    cr_assert_eq(ug2_wait_verify(&w, dg, n, &p, NULL, &e), 0);
    cr_assert(!w.has_token);
    cr_assert(ug2_peer_blocked(&p, week), "an unsigned WAIT proves nothing");
    n = vec(wj, "WAIT with a token (2 channels)", dg, sizeof dg);
    cr_assert_eq(ug2_wait_verify(&w, dg, n, &p, NULL, &e), 0, "%s", ug_err_name(e));
    cr_assert(w.has_token);
    cr_assert_leq(n, ug2_wait_max_len(w.tok_obj.raw_len, w.cert_obj.raw_len));
    cr_assert_leq(ug2_wait_max_len(w.tok_obj.raw_len, w.cert_obj.raw_len), UG_HELLO_MIN, "fits a 512-byte HELLO");
    ug2_peer_note_token(&p, &w);
    cr_assert_eq(p.fresh_at, 1790000000 - 30);
    cr_assert(!ug2_peer_blocked(&p, week));
    cr_assert_eq(ug2_token_seq(&w.tok, "example-app", "beta"), 14);
    cr_assert_eq(ug2_token_seq(&w.tok, "example-app", "nightly"), 0);
    json_decref(wj);
}

/* Keyring bodies signed here: kr1's keys with other release keys, signed by roots 1 and 2. */
static size_t signed_keyring(uint8_t *out, size_t cap, uint32_t kv, const char *const *rel, size_t nrel)
{
    ug2_keyring k;
    uint8_t sk[2][UG_SK_LEN], pk[UG_PK_LEN], body[UG_OBJ_MAX];
    const uint8_t *sks[2] = {sk[0], sk[1]};
    size_t blen, len;
    memset(&k, 0, sizeof k);
    k.kv = kv, k.exp = 1790000000 + 86400, k.nroot = 2, k.root_t = 2, k.ncert = 1, k.cert_t = 1, k.rel_t = 1;
    key("root1", sk[0], pk), ug_pubkey_set(&k.root[0], pk);
    key("root2", sk[1], pk), ug_pubkey_set(&k.root[1], pk);
    key("cert1", body, pk), ug_pubkey_set(&k.cert[0], pk);
    for (size_t i = 0; i < nrel; i++)
        key(rel[i], body, pk), ug_pubkey_set(&k.rel[i], pk);
    k.nrel = (uint8_t)nrel;
    cr_assert_eq(ug2_keyring_encode_body(body, sizeof body, &blen, &k), 0);
    cr_assert_eq(ug2_multisig_sign(out, cap, &len, UG2_CTX_KEYRING, body, blen, sks, 2), 0);
    return len;
}

/* Fast-forward recovery: a keyring that replaces every release key resets seq_hi and the learned minimum
 * serial; one that keeps a release key keeps them. */
Test(proto2, replacing_every_release_key_resets_seq)
{
    ug2_peer p;
    uint8_t doc[UG2_KEYRING_MAX];
    ug_err e;
    static const char *const r12[] = {"rel1", "rel2"}, *const r23[] = {"rel2", "rel3"}, *const r1[] = {"rel1"};
    fresh_peer(&p);
    size_t n = signed_keyring(doc, sizeof doc, 1, r12, 2);
    cr_assert_eq(ug2_peer_keyring(&p, doc, n, &e), 0, "%s", ug_err_name(e));
    p.seq_hi = UINT64_C(1) << 62, p.min_serial = 1000; /* as if a stolen release threshold fast-forwarded them */
    n = signed_keyring(doc, sizeof doc, 2, r23, 2);
    cr_assert_eq(ug2_peer_keyring(&p, doc, n, &e), 0, "%s", ug_err_name(e));
    cr_assert_eq(p.seq_hi, UINT64_C(1) << 62, "rel2 stayed: nothing resets");
    cr_assert_eq(p.min_serial, 1000);
    n = signed_keyring(doc, sizeof doc, 3, r1, 1); /* none of rel2, rel3 */
    cr_assert_eq(ug2_peer_keyring(&p, doc, n, &e), 0, "%s", ug_err_name(e));
    cr_assert_eq(p.seq_hi, 0, "every release key replaced: seq_hi restarts");
    cr_assert_eq(p.min_serial, 0);
}

/* What a tracker checks when it loads its policy (protocol-v2.md 6.1). */
Test(proto2, tracker_load_checks)
{
    static uint8_t kdoc[UG2_KEYRING_MAX], dg[UG_DGRAM_MAX];
    static ug2_hint h;
    static ug2_manifest m;
    ug2_tracker_keys t;
    ug_err e;
    uint8_t hsk[UG_SK_LEN], hpk[UG_PK_LEN], ssk[UG_SK_LEN], spk[UG_PK_LEN];
    key("hint1", hsk, hpk);
    key("stranger", ssk, spk);
    size_t kn = keyring_doc("kr3", kdoc, sizeof kdoc);
    size_t n = vec(peer_j, "valid HINT (mirror 1, delta 0 from 1.4.2)", dg, sizeof dg);
    ug_dgram d;
    cr_assert_eq(ug2_dgram_decode(&d, dg, n, NULL), 0);
    cr_assert_eq(ug2_hint_decode(&h, d.body, d.body_len, NULL), 0);
    const uint64_t now = 1790000000;
    cr_assert_eq(ug2_tracker_keys_check(&t, kdoc, kn, h.cert_obj.raw, h.cert_obj.raw_len, hpk, now, &e), 0, "%s",
                 ug_err_name(e));
    cr_assert_eq(t.cert.serial, 7);
    cr_assert_eq(ug2_tracker_manifest_check(&m, h.rel_obj.raw, h.rel_obj.raw_len, &t, now, &e), 0, "%s",
                 ug_err_name(e));
    cr_assert_leq(n, ug2_hint_max_len(h.cert_obj.raw_len, h.rel_obj.raw_len));
    cr_assert_neq(ug2_tracker_keys_check(&t, kdoc, kn, h.cert_obj.raw, h.cert_obj.raw_len, spk, now, &e), 0);
    cr_assert_eq(e, UG_E_KEY, "a certificate for another key: %s", ug_err_name(e));
    cr_assert_neq(ug2_tracker_keys_check(&t, kdoc, kn, h.cert_obj.raw, h.cert_obj.raw_len, hpk, now + 365 * 86400, &e),
                  0);
    cr_assert_eq(e, UG_E_EXPIRED, "an expired keyring: %s", ug_err_name(e));
    /* keyring 2's document is signed by keyring 1's roots too, but by a threshold of its own as well */
    size_t k2 = keyring_doc("kr2-expired", kdoc, sizeof kdoc);
    cr_assert_neq(ug2_tracker_keys_check(&t, kdoc, k2, h.cert_obj.raw, h.cert_obj.raw_len, hpk, now, &e), 0);
    cr_assert_eq(e, UG_E_EXPIRED);
    json_t *mj = load("manifest.json");
    static uint8_t obj[UG_OBJ_MAX];
    size_t on = vec(mj, "revokes the tracker's own certificate (min_serial 8 > 7)", obj, sizeof obj);
    kn = keyring_doc("kr3", kdoc, sizeof kdoc);
    cr_assert_eq(ug2_tracker_keys_check(&t, kdoc, kn, h.cert_obj.raw, h.cert_obj.raw_len, hpk, now, &e), 0);
    cr_assert_neq(ug2_tracker_manifest_check(&m, obj, on, &t, now, &e), 0);
    cr_assert_eq(e, UG_E_REVOKED);
    json_decref(mj);
}

/* Each key holder signs on his own; one combines: the same bytes as signing all at once, and a threshold
 * of them verifies. */
Test(proto2, combined_signatures)
{
    uint8_t sk[3][UG_SK_LEN], pk[3][UG_PK_LEN];
    static const char *const names[] = {"rel1", "rel2", "rel3"};
    ug_pubkey keys[3];
    for (int i = 0; i < 3; i++)
        key(names[i], sk[i], pk[i]), ug_pubkey_set(&keys[i], pk[i]);
    const uint8_t body[] = {0x81, 0xa1, 'a', 0x01};
    ug2_sig s[2];
    cr_assert_eq(ug2_sig_make(&s[0], UG2_CTX_RELEASE, body, sizeof body, sk[2]), 0);
    cr_assert_eq(ug2_sig_make(&s[1], UG2_CTX_RELEASE, body, sizeof body, sk[0]), 0);
    cr_assert_arr_eq(s[0].kid, keys[2].kid, UG_KID_LEN);
    uint8_t a[512], b[512];
    size_t an, bn;
    const uint8_t *sks[2] = {sk[2], sk[0]};
    cr_assert_eq(ug2_multisig_encode(a, sizeof a, &an, body, sizeof body, s, 2), 0);
    cr_assert_eq(ug2_multisig_sign(b, sizeof b, &bn, UG2_CTX_RELEASE, body, sizeof body, sks, 2), 0);
    cr_assert_eq(an, bn);
    cr_assert_arr_eq(a, b, an);
    ug2_multisig m;
    cr_assert_eq(ug2_multisig_decode(&m, a, an, UG_OBJ_MAX, NULL), 0);
    cr_assert_eq(ug2_multisig_count(&m, UG2_CTX_RELEASE, keys, 3), 2);
    cr_assert_eq(ug2_multisig_check(&m, UG2_CTX_RELEASE, keys, 3, 2, NULL), 0);
    ug_err e;
    cr_assert_neq(ug2_multisig_check(&m, UG2_CTX_RELEASE, keys, 3, 3, &e), 0);
    cr_assert_eq(e, UG_E_THRESHOLD);
    cr_assert_eq(ug2_multisig_count(&m, UG2_CTX_CERT, keys, 3), 0, "another context verifies nothing");
    cr_assert_neq(ug2_multisig_encode(a, sizeof a, &an, body, sizeof body, s, 0), 0, "no signature");
}

/* HELLO and REPORT builders: exact sizes, and what they build verifies as a tracker checks it. */
Test(proto2, builders)
{
    uint8_t csk[UG_SK_LEN], cpk[UG_PK_LEN], isk[UG_SK_LEN], ipk[UG_PK_LEN], cred[256], cb[128], out[UG_DGRAM_MAX];
    size_t clen, cblen, n;
    key("client", csk, cpk);
    key("issuer", isk, ipk);
    ug_cred c = {.uid = 77, .exp = 1790000000 + 3600};
    memcpy(c.pk, cpk, UG_PK_LEN);
    ug_kid(c.kid, ipk);
    cr_assert_eq(ug_cred_encode_body(cb, sizeof cb, &cblen, &c), 0);
    cr_assert_eq(ug_signed_encode(cred, sizeof cred, &clen, UG_CTX_CRED, cb, cblen, isk), 0);
    ug_pubkey issuer;
    ug_pubkey_set(&issuer, ipk);
    ug2_hello_fields hf = {.base = {.uid = 77, .ver = "1.4.2", .ts = 1790000000, .cred = cred, .cred_len = clen,
                                    .plat = "linux-x86_64", .chan = "stable"},
                           .app = "example-app", .kv = 3};
    memcpy(hf.base.pk, cpk, UG_PK_LEN);
    static const size_t targets[] = {512, 700, 1232};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(ug2_hello_build(out, sizeof out, &n, &hf, targets[i], csk), 0);
        cr_assert(n == targets[i] || n + 1 == targets[i], "HELLO of %zu for %zu", n, targets[i]);
        ug2_hello h;
        ug_dgram d;
        ug_err e;
        cr_assert_eq(ug2_hello_parse(&h, &d, out, n, &e), 0, "%s", ug_err_name(e));
        cr_assert_eq(ug2_hello_verify(&h, &d, &issuer, 1, 1790000000, &e), 0, "%s", ug_err_name(e));
        cr_assert_str_eq(h.app, "example-app");
        cr_assert_eq(h.kv, 3);
        cr_assert_neq(ug_hello_sig_verify(&h.base, &d, NULL), 0, "a v2 HELLO verifies under the v1 context");
    }
    cr_assert_neq(ug2_hello_build(out, sizeof out, &n, &hf, 511, csk), 0);
    ug2_report_fields rf = {.base = {.uid = 77, .ver = "2.0.0", .to = "2.0.0", .res = UG_RES_INSTALLED,
                                     .ts = 1790000000, .cred = cred, .cred_len = clen},
                            .app = "example-app", .via = UG2_VIA_DELTA_FALLBACK};
    memcpy(rf.base.pk, cpk, UG_PK_LEN);
    cr_assert_eq(ug2_report_build(out, sizeof out, &n, &rf, 0, csk), 0);
    ug2_report r;
    ug_dgram d;
    cr_assert_eq(ug2_report_parse(&r, &d, out, n, NULL), 0);
    cr_assert_eq(ug2_report_verify(&r, &d, &issuer, 1, 1790000000, NULL), 0);
    cr_assert_eq(r.via, UG2_VIA_DELTA_FALLBACK);
    cr_assert_neq(ug_report_verify(&r.base, &d, &issuer, 1, 1790000000, NULL), 0, "v2 REPORT under v1's context");
    char url[300];
    cr_assert_eq(ug2_keyring_url(url, sizeof url, "https://keys.example.net/ug/", 7), 0);
    cr_assert_str_eq(url, "https://keys.example.net/ug/7.keyring");
    cr_assert(ug2_keyring_url_valid("https://k.example/", 18));
    cr_assert(!ug2_keyring_url_valid("https://k.example", 17));
}

/* Every byte of a valid HINT is signed or fixed: each single-byte change, and each truncation, is refused. */
Test(proto2, every_mutation_of_a_valid_hint_is_refused)
{
    ug2_peer p;
    static uint8_t good[UG_DGRAM_MAX], buf[UG_DGRAM_MAX], doc[UG2_KEYRING_MAX];
    static ug2_hint h;
    fresh_peer(&p);
    cr_assert_eq(ug2_keyring_open(&p.kr, &(ug2_multisig){0}, doc, keyring_doc("kr3", doc, sizeof doc), NULL), 0);
    p.has_keyring = true, p.seq_hi = 10;
    size_t n = vec(peer_j, "valid HINT (mirror 1, delta 0 from 1.4.2)", good, sizeof good);
    cr_assert_eq(ug2_hint_verify(&h, good, n, &p, NULL, NULL), 0);
    static const uint8_t flips[] = {0x01, 0x80, 0xff};
    for (size_t pos = 0; pos < n; pos++)
        for (size_t k = 0; k < sizeof flips; k++) {
            memcpy(buf, good, n);
            buf[pos] ^= flips[k];
            cr_assert_neq(ug2_hint_verify(&h, buf, n, &p, NULL, NULL), 0, "byte %zu ^ %02x accepted", pos, flips[k]);
        }
    for (size_t cut = 0; cut < n; cut++)
        cr_assert_neq(ug2_hint_verify(&h, good, cut, &p, NULL, NULL), 0, "prefix of %zu accepted", cut);
}

Test(proto2, every_mutation_of_a_keyring_is_refused)
{
    static uint8_t held[UG2_KEYRING_MAX], good[UG2_KEYRING_MAX], buf[UG2_KEYRING_MAX];
    ug2_keyring k1, next;
    size_t hn = vec(keyring_j, chain[0], held, sizeof held), n = vec(keyring_j, chain[1], good, sizeof good);
    cr_assert_eq(ug2_keyring_open(&k1, &(ug2_multisig){0}, held, hn, NULL), 0);
    cr_assert_eq(ug2_keyring_step(&k1, false, good, n, &next, NULL), 0);
    /* every signature is needed: root1 and root2 for keyring 1's threshold, root2 and root3 for its own */
    for (size_t pos = 0; pos < n; pos++) {
        memcpy(buf, good, n);
        buf[pos] ^= 0x01;
        cr_assert_neq(ug2_keyring_step(&k1, false, buf, n, &next, NULL), 0, "byte %zu flipped", pos);
    }
    for (size_t cut = 0; cut < n; cut++)
        cr_assert_neq(ug2_keyring_step(&k1, false, good, cut, &next, NULL), 0, "prefix of %zu accepted", cut);
}
