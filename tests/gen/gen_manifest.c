/* manifest.json: release manifests as a tracker loads them (threshold, expiry, revocation, every field rule). */
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "mp.h"

static uint8_t obj[GEN_BUF];

static json_t *man(json_t *arr, const char *name, ug_err want, const ug2_manifest *m, const gen_sig *s, size_t n,
                   gen_edit edit)
{
    return gen_vec(arr, name, want, obj, gen_manifest_obj(obj, sizeof obj, m, s, n, edit));
}

/* A `deltas` value of one hand-made delta: from as given, an optional extra key. */
static size_t delta_by_hand(uint8_t *out, const char *from, bool extra)
{
    static const uint8_t hash[UG_HASH_LEN];
    const char *url = "https://mirror-a.example.net/p.zstpatch";
    ug_mp_out o;
    size_t len;
    ug_mp_out_init(&o, out, 512);
    msgpack_pack_array(&o.pk, 1);
    msgpack_pack_map(&o.pk, 4 + extra);
    ug_mp_out_key(&o, "from"), ug_mp_out_str(&o, from, strlen(from));
    ug_mp_out_key(&o, "size"), ug_mp_out_uint(&o, 100);
    ug_mp_out_key(&o, "hash"), ug_mp_out_bin(&o, hash, sizeof hash);
    ug_mp_out_key(&o, "urls");
    msgpack_pack_array(&o.pk, 1);
    ug_mp_out_str(&o, url, strlen(url));
    if (extra)
        ug_mp_out_key(&o, "foo"), ug_mp_out_uint(&o, 1);
    if (ug_mp_out_done(&o, &len) != 0)
        gen_die("delta_by_hand");
    return len;
}

static void ed_delta_unknown(gen_map *m)
{
    uint8_t b[512];
    gm_set(m, "deltas", b, delta_by_hand(b, "1.4.2", true));
}
static void ed_delta_badver(gen_map *m)
{
    uint8_t b[512];
    gm_set(m, "deltas", b, delta_by_hand(b, "1.04", false));
}
static void ed_deltas5(gen_map *m) { gm_set_hex(m, "deltas", "950102030405"); }
static void ed_urls9(gen_map *m)
{
    uint8_t b[600];
    ug_mp_out o;
    size_t len;
    ug_mp_out_init(&o, b, sizeof b);
    msgpack_pack_array(&o.pk, 9);
    for (int i = 0; i < 9; i++)
        ug_mp_out_str(&o, "https://m.example/p", 19);
    if (ug_mp_out_done(&o, &len) != 0)
        gen_die("urls9");
    gm_set(m, "urls", b, len);
}
static void ed_down_false(gen_map *m) { gm_set_hex(m, "downgrade", "c2"); }
static void ed_min0(gen_map *m) { gm_set_uint(m, "min_serial", 0); }
static void ed_chan17(gen_map *m) { gm_set_str(m, "chan", "abcdefghijklmnopq"); }
static void ed_app33(gen_map *m) { gm_set_str(m, "app", "abcdefghijklmnopqrstuvwxyz0123456"); }
static void ed_to_bad(gen_map *m) { gm_set_str(m, "to", "2.0.0-rc1"); }
static void ed_seq16(gen_map *m) { gm_set_hex(m, "seq", "cd000c"); }
static void ed_unknown(gen_map *m) { gm_set_uint(m, "foo", 1); }
static void ed_no_urgency(gen_map *m) { gm_del(m, "urgency"); }
static void ed_plat_empty(gen_map *m) { gm_set_hex(m, "plat", "90"); }
static void ed_deep(gen_map *m) { gm_set_hex(m, "x", "9191919101"); }
static void ed_urgency_true(gen_map *m) { gm_set_hex(m, "urgency", "c3"); }

static void manifests_ok(json_t *arr)
{
    ug2_manifest m;
    gen_manifest_default(&m);
    man(arr, "valid manifest (release keys 1 and 2 of 3, threshold 2)", UG_OK, &m, NULL, 0, NULL);
    gen_sig all[] = {SG(K_REL1), SG(K_REL2), SG(K_REL3)}, st[] = {SG(K_STRANGER), SG(K_REL3), SG(K_REL1)};
    man(arr, "signed by all three release keys", UG_OK, &m, all, 3, NULL);
    man(arr, "a stranger's entry ignored", UG_OK, &m, st, 3, NULL);
    m.downgrade = true;
    m.urgency = UG2_URGENCY_CRITICAL;
    m.min_serial = 7;
    man(arr, "critical downgrade revoking serials below 7 (the tracker's is 7)", UG_OK, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    m.ndeltas = m.nkeyring = 0;
    m.nplat = 1;
    man(arr, "no deltas, no keyring URL, one platform", UG_OK, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    m.nurls = 8;
    for (int i = 0; i < 8; i++)
        snprintf(m.urls[i], sizeof m.urls[i], "https://mirror-%c.example.net/app-2.0.0.pkg", 'a' + i);
    m.ndeltas = 4;
    for (int i = 2; i < 4; i++) {
        m.deltas[i] = m.deltas[0];
        m.deltas[i].from.part[0] = 0;
        m.deltas[i].from.part[1] = (uint32_t)(9 + i);
    }
    man(arr, "8 mirrors and 4 deltas", UG_OK, &m, NULL, 0, NULL);
}

static void manifests_refused(json_t *arr)
{
    ug2_manifest m;
    gen_manifest_default(&m);
    gen_sig one[] = {SG(K_REL1)}, dup[] = {SG(K_REL1), SG(K_REL1)}, hk[] = {SG(K_HINT1), SG(K_ROOT3)},
            pl[] = {SG(K_REL1), {K_REL2, -1, 1}};
    man(arr, "one release signature short of 2", UG_E_THRESHOLD, &m, one, 1, NULL);
    man(arr, "the same release key twice", UG_E_THRESHOLD, &m, dup, 2, NULL);
    man(arr, "signed by the hint key and a root key", UG_E_THRESHOLD, &m, hk, 2, NULL);
    man(arr, "rel2's signature as S + L", UG_E_THRESHOLD, &m, pl, 2, NULL);
    m.exp = NOW;
    man(arr, "expired (exp = now)", UG_E_EXPIRED, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    m.min_serial = 8;
    man(arr, "revokes the tracker's own certificate (min_serial 8 > 7)", UG_E_REVOKED, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    memcpy(m.app, "example app", 12);
    man(arr, "app with a space", UG_E_STRING, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    memcpy(m.plat[1], "linux-x86_64", 13);
    man(arr, "a platform listed twice", UG_E_SCHEMA, &m, NULL, 0, NULL);
    memcpy(m.plat[1], "linux/x86_64", 13);
    man(arr, "a platform with a slash", UG_E_STRING, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    m.seq = 0;
    man(arr, "seq 0", UG_E_SCHEMA, &m, NULL, 0, NULL);
    m.seq = UINT64_C(1) << 63;
    man(arr, "seq 2^63", UG_E_SCHEMA, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    m.urgency = 2;
    man(arr, "urgency 2", UG_E_SCHEMA, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    m.deltas[1].from = m.to;
    man(arr, "a delta from the version offered", UG_E_SCHEMA, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    if (ug_version_parse(&m.deltas[1].from, "1.4.2.0", 7) != 0)
        gen_die("version");
    man(arr, "two deltas from one version (1.4.2 and 1.4.2.0)", UG_E_SCHEMA, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    memcpy(m.deltas[0].urls[0], "ftp://mirror-a.example.net/p", 29);
    man(arr, "a delta URL that is not http(s)", UG_E_STRING, &m, NULL, 0, NULL);
    gen_manifest_default(&m);
    memcpy(m.keyring[0], "https://keys.example.net/ug", 28);
    man(arr, "a keyring URL without its final slash", UG_E_STRING, &m, NULL, 0, NULL);
    memcpy(m.keyring[0], "https://keys.example.net/ug/", 29);
    memcpy(m.urls[1], "https://", 9);
    man(arr, "a package URL without a host", UG_E_STRING, &m, NULL, 0, NULL);
}

static void manifests_malformed(json_t *arr)
{
    ug2_manifest m;
    gen_manifest_default(&m);
    static const struct {
        const char *name;
        gen_edit edit;
        ug_err want;
    } e[] = {
        {"a delta with an unknown key", ed_delta_unknown, UG_E_SCHEMA},
        {"a delta from a malformed version", ed_delta_badver, UG_E_VERSION},
        {"5 deltas", ed_deltas5, UG_E_SCHEMA},
        {"9 URLs", ed_urls9, UG_E_SCHEMA},
        {"downgrade: false (absent is the only false)", ed_down_false, UG_E_SCHEMA},
        {"min_serial 0", ed_min0, UG_E_SCHEMA},
        {"a channel of 17 bytes", ed_chan17, UG_E_SCHEMA},
        {"an app of 33 bytes", ed_app33, UG_E_SCHEMA},
        {"to not a version", ed_to_bad, UG_E_VERSION},
        {"seq as a uint16 (non-canonical)", ed_seq16, UG_E_MSGPACK},
        {"unknown key", ed_unknown, UG_E_SCHEMA},
        {"urgency missing", ed_no_urgency, UG_E_SCHEMA},
        {"urgency true", ed_urgency_true, UG_E_SCHEMA},
        {"no platform", ed_plat_empty, UG_E_SCHEMA},
        {"containers nested 5 deep in an unknown key", ed_deep, UG_E_MSGPACK},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++)
        man(arr, e[i].name, e[i].want, &m, NULL, 0, e[i].edit);
}

void gen_file_manifest(const char *dir)
{
    json_t *arr = json_array();
    manifests_ok(arr);
    manifests_refused(arr);
    manifests_malformed(arr);
    json_t *j = json_pack("{s:s, s:o, s:s, s:I, s:I, s:o}", "note",
                          "a tracker holding keyring `keyring` and a certificate of serial `cert_serial`, whose "
                          "clock reads `now`, serves the manifests marked accept and refuses every other at load",
                          "keyrings", gen_keyrings(), "keyring", "kr3", "now", (json_int_t)NOW, "cert_serial",
                          (json_int_t)7, "vectors", arr);
    gen_write(dir, "manifest.json", j);
}
