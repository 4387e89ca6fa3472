/* peer.json: HINT v2 datagrams as a peer judges them, one rule at a time. */
#include <stdio.h>
#include <string.h>

#include "gen.h"

typedef struct {
    ug2_cert cert;
    gen_sig cs[4];
    size_t ncs;
    ug2_manifest rel;
    gen_sig rs[4];
    size_t nrs;
    ug2_hint_fields f;
    unsigned version;
    ug_type type;
    const char *ctx;
    int signer, fault;
    gen_edit edit;
} hint_spec;

static uint8_t dg[GEN_BUF];

static void spec_default(hint_spec *s)
{
    memset(s, 0, sizeof *s);
    gen_cert_default(&s->cert);
    gen_manifest_default(&s->rel);
    s->f = (ug2_hint_fields){.uid = 4242, .ts = NOW, .exp = NOW + 3600, .mirror = 1, .kv = 3, .has_delta = true};
    for (unsigned i = 0; i < UG_NONCE_LEN; i++)
        s->f.nonce[i] = (uint8_t)i;
    s->version = UG2_VERSION;
    s->type = UG_TYPE_HINT;
    s->ctx = UG2_CTX_HINT;
    s->signer = K_HINT1;
}

static size_t build(hint_spec *s)
{
    static uint8_t cert[GEN_BUF], rel[GEN_BUF], body[GEN_BUF];
    size_t blen;
    s->f.cert = cert;
    s->f.cert_len = gen_cert_obj(cert, sizeof cert, &s->cert, s->cs, s->ncs, NULL);
    s->f.rel = rel;
    s->f.rel_len = gen_manifest_obj(rel, sizeof rel, &s->rel, s->rs, s->nrs, NULL);
    if (ug2_hint_encode_body(body, sizeof body, &blen, &s->f) != 0)
        gen_die("hint body");
    blen = gen_edit_body(body, blen, sizeof body, s->edit);
    return gen_seal(dg, sizeof dg, s->version, s->type, body, blen, s->ctx, s->signer, s->fault);
}

static json_t *hint(json_t *arr, const char *name, ug_err want, hint_spec *s)
{
    return gen_vec(arr, name, want, dg, build(s));
}

static void with_peer(json_t *v, json_t *peer)
{
    json_object_set_new(v, "peer", peer);
}

static void need(json_t *v, uint32_t kv)
{
    json_object_set_new(v, "need_kv", json_integer(kv));
}

static void hints_ok(json_t *arr)
{
    hint_spec s;
    spec_default(&s);
    hint(arr, "valid HINT (mirror 1, delta 0 from 1.4.2)", UG_OK, &s);
    s.f.has_delta = false;
    hint(arr, "valid HINT without a delta", UG_OK, &s);
    spec_default(&s);
    s.rel.seq = 10;
    hint(arr, "seq equal to the highest verified", UG_OK, &s);
    spec_default(&s);
    s.rel.to.part[1] = 4, s.rel.to.part[0] = 1, s.rel.seq = 11, s.rel.downgrade = true, s.f.has_delta = false;
    hint(arr, "downgrade to 1.4.0 with the flag and seq 11 above 10", UG_OK, &s);
    with_peer(hint(arr, "a peer fast-forwarded to 99.0 brought back by a downgrade manifest", UG_OK, &s),
              json_pack("{s:s}", "current", "99.0"));
    spec_default(&s);
    with_peer(hint(arr, "a peer whose clock is 30 days slow takes the HINT's signed time", UG_OK, &s),
              json_pack("{s:I}", "now", (json_int_t)(NOW - 30 * DAY)));
    s.f.kv = 2, s.cert.kv = 2;
    hint(arr, "a tracker still on keyring 2 (the peer holds 3)", UG_OK, &s);
    spec_default(&s);
    s.rel.urgency = UG2_URGENCY_CRITICAL;
    hint(arr, "critical urgency", UG_OK, &s);
    spec_default(&s);
    memcpy(s.cert.trk, "us-2", 5);
    with_peer(hint(arr, "a peer configured with no tracker name, certificate for us-2", UG_OK, &s),
              json_pack("{s:s}", "tracker", ""));
}

static void hints_keyring(json_t *arr)
{
    hint_spec s;
    spec_default(&s);
    s.f.kv = 4;
    need(hint(arr, "the HINT names keyring 4, the peer holds 3", UG_E_KEYRING, &s), 4);
    spec_default(&s);
    s.cert.kv = 4;
    need(hint(arr, "certificate issued under keyring 4", UG_E_KEYRING, &s), 4);
    spec_default(&s);
    json_t *v = hint(arr, "the peer's keyring expired", UG_E_KEYRING, &s);
    need(v, 4);
    with_peer(v, json_pack("{s:s}", "keyring", "kr3-expired"));
    v = hint(arr, "a peer holding only its anchor", UG_E_KEYRING, &s);
    need(v, 3);
    with_peer(v, json_pack("{s:n}", "keyring"));
}

static void hints_cert(json_t *arr)
{
    hint_spec s;
    spec_default(&s);
    s.cs[0] = SG(K_STRANGER), s.ncs = 1;
    hint(arr, "certificate signed by a stranger", UG_E_THRESHOLD, &s);
    spec_default(&s);
    s.cert.serial = 4;
    hint(arr, "revoked certificate (serial 4, keyring minimum 5)", UG_E_REVOKED, &s);
    spec_default(&s);
    with_peer(hint(arr, "certificate revoked by a minimum 8 learned from a manifest", UG_E_REVOKED, &s),
              json_pack("{s:I}", "min_serial", (json_int_t)8));
    s.cert.exp = NOW, s.cert.nbf = NOW - 10 * DAY;
    hint(arr, "expired certificate", UG_E_EXPIRED, &s);
    spec_default(&s);
    s.cert.exp = s.cert.nbf + 91 * DAY;
    hint(arr, "certificate for 91 days", UG_E_LIFETIME, &s);
    spec_default(&s);
    s.cert.nbf = NOW + 60;
    hint(arr, "certificate not valid yet at the HINT's time", UG_E_NOT_YET, &s);
    spec_default(&s);
    memcpy(s.cert.trk, "us-2", 5);
    hint(arr, "certificate for tracker us-2", UG_E_TRACKER, &s);
}

static void hints_signed(json_t *arr)
{
    hint_spec s;
    spec_default(&s);
    s.signer = K_HINT2;
    hint(arr, "HINT signed by another hint key than the certified one", UG_E_SIG, &s);
    spec_default(&s);
    s.fault = 1;
    hint(arr, "HINT signature with S + L", UG_E_SIG, &s);
    spec_default(&s);
    s.ctx = UG_CTX_HINT;
    hint(arr, "HINT signed under the version 1 context", UG_E_SIG, &s);
    spec_default(&s);
    s.f.uid = 4243;
    hint(arr, "HINT for another uid", UG_E_UID, &s);
    spec_default(&s);
    s.f.nonce[0] = 0xff;
    hint(arr, "HINT for another nonce", UG_E_NONCE, &s);
    spec_default(&s);
    s.f.exp = NOW;
    hint(arr, "HINT expired", UG_E_EXPIRED, &s);
    spec_default(&s);
    with_peer(hint(arr, "HINT expired at the peer's clock floor", UG_E_EXPIRED, &s),
              json_pack("{s:I}", "floor", (json_int_t)(NOW + 7200)));
    s.rs[0] = SG(K_REL1), s.nrs = 1;
    hint(arr, "manifest one release signature short", UG_E_THRESHOLD, &s);
    s.rs[1] = SG(K_REL1), s.nrs = 2;
    hint(arr, "manifest signed twice by one release key", UG_E_THRESHOLD, &s);
    s.rs[0] = SG(K_HINT1), s.rs[1] = SG(K_CERT1);
    hint(arr, "manifest signed by the hint key and a certificate key", UG_E_THRESHOLD, &s);
    spec_default(&s);
    s.rel.exp = NOW;
    hint(arr, "manifest expired", UG_E_EXPIRED, &s);
    spec_default(&s);
    s.rel.min_serial = 8;
    hint(arr, "manifest revoking the HINT's certificate (min_serial 8)", UG_E_REVOKED, &s);
}

static void hints_bound(json_t *arr)
{
    hint_spec s;
    spec_default(&s);
    memcpy(s.rel.app, "other-app", 10);
    hint(arr, "manifest for another app", UG_E_APP, &s);
    spec_default(&s);
    memcpy(s.rel.plat[0], "windows-x86_64", 15);
    s.rel.nplat = 1;
    hint(arr, "manifest for another platform", UG_E_PLAT, &s);
    spec_default(&s);
    memcpy(s.rel.chan, "beta", 5);
    hint(arr, "manifest for another channel", UG_E_CHAN, &s);
    spec_default(&s);
    s.rel.seq = 9;
    hint(arr, "seq 9 below the highest verified (10)", UG_E_SEQ, &s);
    spec_default(&s);
    s.rel.to.part[0] = 1, s.rel.to.part[1] = 4, s.rel.to.part[2] = 2, s.f.has_delta = false, s.rel.ndeltas = 0;
    hint(arr, "to equal to the running version", UG_E_ROLLBACK, &s);
    s.rel.to.part[2] = 0;
    hint(arr, "downgrade to 1.4.0 without the flag", UG_E_ROLLBACK, &s);
    s.rel.downgrade = true, s.rel.seq = 10;
    hint(arr, "downgrade flag with seq 10, not above the highest", UG_E_ROLLBACK, &s);
    s.rel.seq = 9;
    hint(arr, "downgrade flag with seq 9, below the highest", UG_E_SEQ, &s);
    spec_default(&s);
    s.f.mirror = 2;
    hint(arr, "mirror 2 of 2 URLs", UG_E_MIRROR, &s);
    spec_default(&s);
    s.f.delta = 2;
    hint(arr, "delta 2 of 2", UG_E_DELTA, &s);
    s.f.delta = 1;
    hint(arr, "delta 1, from 1.3.0, the peer runs 1.4.2", UG_E_DELTA, &s);
}

static void ed_uid16(gen_map *m) { gm_set_hex(m, "uid", "ce00001092"); }
static void ed_unknown(gen_map *m) { gm_set_uint(m, "foo", 1); }
static void ed_no_cert(gen_map *m) { gm_del(m, "cert"); }
static void ed_kv0(gen_map *m) { gm_set_uint(m, "kv", 0); }
static void ed_cert_flat(gen_map *m) { gm_set_hex(m, "cert", "92c40180c0"); }

static void hints_malformed(json_t *arr)
{
    hint_spec s;
    static const struct {
        const char *name;
        gen_edit edit;
        ug_err want;
    } e[] = {
        {"uid as a uint32 (non-canonical)", ed_uid16, UG_E_MSGPACK}, {"unknown key", ed_unknown, UG_E_SCHEMA},
        {"no certificate", ed_no_cert, UG_E_SCHEMA},                 {"kv 0", ed_kv0, UG_E_SCHEMA},
        {"certificate [body, nil]", ed_cert_flat, UG_E_SCHEMA},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        spec_default(&s);
        s.edit = e[i].edit;
        hint(arr, e[i].name, e[i].want, &s);
    }
    spec_default(&s);
    s.version = 1;
    hint(arr, "version byte 1", UG_E_HEADER, &s);
    spec_default(&s);
    s.type = UG_TYPE_WAIT;
    hint(arr, "type WAIT with a signature", UG_E_HEADER, &s);
    spec_default(&s);
    size_t n = build(&s);
    dg[n] = 0;
    gen_vec(arr, "a byte after the datagram", UG_E_MSGPACK, dg, n + 1);
    memset(dg + n, 0, UG_DGRAM_MAX + 1 - n);
    gen_vec(arr, "1233 bytes", UG_E_SIZE, dg, UG_DGRAM_MAX + 1);
}

/* The byte budget: HINTs with m mirrors of 40-byte URLs, certificate and
 * manifest thresholds t, no delta, a tracker name of 4 bytes. */
static void hints_sized(json_t *arr)
{
    static const unsigned mirrors[] = {1, 8}, thr[] = {1, 2};
    for (unsigned a = 0; a < 2; a++)
        for (unsigned b = 0; b < 2; b++) {
            hint_spec s;
            char name[120];
            spec_default(&s);
            s.rel.nurls = (uint8_t)mirrors[a];
            for (unsigned i = 0; i < mirrors[a]; i++)
                snprintf(s.rel.urls[i], sizeof s.rel.urls[i], "https://mirror-%c.example.net/app-2.0.pkg", 'a' + i);
            s.rel.ndeltas = 0, s.rel.nkeyring = 0, s.rel.nplat = 1, s.f.has_delta = false, s.f.mirror = 0;
            s.ncs = thr[b], s.cs[0] = SG(K_CERT1), s.cs[1] = SG(K_CERT2);
            s.nrs = thr[b], s.rs[0] = SG(K_REL1), s.rs[1] = SG(K_REL2);
            snprintf(name, sizeof name, "size: %u mirror%s of 40 bytes, thresholds %u", mirrors[a],
                     mirrors[a] > 1 ? "s" : "", thr[b]);
            json_t *v = hint(arr, name, UG_OK, &s);
            with_peer(v, json_pack("{s:s}", "keyring", thr[b] == 1 ? "kr3-t1" : "kr3-t2"));
            gen_size_row(name + 6, "peer.json", name, json_string_length(json_object_get(v, "hex")) / 2);
        }
}

void gen_file_peer(const char *dir)
{
    json_t *arr = json_array();
    hints_ok(arr);
    hints_sized(arr);
    hints_keyring(arr);
    hints_cert(arr);
    hints_signed(arr);
    hints_bound(arr);
    hints_malformed(arr);
    json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:o}", "note",
                          "a peer in state `peer` (the vector's `peer` fields over it; keyring null: it holds only "
                          "the anchor) accepts the HINTs marked accept and refuses every other for `error` before "
                          "downloading anything; `need_kv`: the keyring it must walk to first",
                          "keyrings", gen_keyrings(), "anchor", gen_anchor(), "peer", gen_peer_ctx(), "vectors", arr);
    gen_write(dir, "peer.json", j);
}
