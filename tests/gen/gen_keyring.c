/* keyring.json: the chain step, accepted and refused. */
#include <string.h>

#include "gen.h"
#include "mp.h"

static uint8_t doc[GEN_BUF];

/* kr2's body (or base's) edited, signed by s[0..n) (base's signers if n is 0). */
static size_t variant(const char *base, gen_edit edit, const gen_sig *s, size_t n)
{
    const gen_kr *g = gen_kr_named(base);
    ug2_keyring k;
    static uint8_t body[GEN_BUF];
    size_t blen;
    gen_sig def[6];
    gen_keyring_struct(&k, g);
    if (ug2_keyring_encode_body(body, sizeof body, &blen, &k) != 0)
        gen_die("keyring body");
    blen = gen_edit_body(body, blen, sizeof body, edit);
    for (int i = 0; i < g->nsigners; i++)
        def[i] = SG(g->signers[i]);
    return gen_multisig(doc, sizeof doc, UG2_CTX_KEYRING, body, blen, n ? s : def, n ? n : (size_t)g->nsigners);
}

static json_t *add(json_t *arr, const char *name, ug_err want, const char *held, size_t len)
{
    json_t *v = gen_vec(arr, name, want, doc, len);
    if (held)
        json_object_set_new(v, "held", json_string(held));
    return v;
}

/* a msgpack array of n bin 32 keys: keys[i] of idx, the first cut to short bytes when short_first */
static size_t key_list(uint8_t *out, const int *idx, size_t n, bool short_first)
{
    ug_mp_out o;
    size_t len;
    ug_mp_out_init(&o, out, 512);
    msgpack_pack_array(&o.pk, n);
    for (size_t i = 0; i < n; i++)
        ug_mp_out_bin(&o, g_pk[idx[i]], short_first && i == 0 ? UG_PK_LEN - 1 : UG_PK_LEN);
    if (ug_mp_out_done(&o, &len) != 0)
        gen_die("key_list");
    return len;
}

static size_t str_list(uint8_t *out, const char *const *s, size_t n)
{
    ug_mp_out o;
    size_t len;
    ug_mp_out_init(&o, out, 1200);
    msgpack_pack_array(&o.pk, n);
    for (size_t i = 0; i < n; i++)
        ug_mp_out_str(&o, s[i], strlen(s[i]));
    if (ug_mp_out_done(&o, &len) != 0)
        gen_die("str_list");
    return len;
}

static void ed_unknown(gen_map *m) { gm_set_uint(m, "foo", 1); }
static void ed_no_cert_t(gen_map *m) { gm_del(m, "cert_t"); }
static void ed_dup_kv(gen_map *m) { gm_dup(m, "kv"); }
static void ed_kv0(gen_map *m) { gm_set_uint(m, "kv", 0); }
static void ed_kv_u8(gen_map *m) { gm_set_hex(m, "kv", "cc02"); }
static void ed_key_str8(gen_map *m) { gm_key_str8(m, "exp"); }
static void ed_map16(gen_map *m) { m->force_hdr = 0xde; }
static void ed_root_t0(gen_map *m) { gm_set_uint(m, "root_t", 0); }
static void ed_root_t3(gen_map *m) { gm_set_uint(m, "root_t", 3); }
static void ed_rel_empty(gen_map *m) { gm_set_hex(m, "rel", "90"); }
static void ed_exp_neg(gen_map *m) { gm_set_hex(m, "exp", "ff"); }
static void ed_deep(gen_map *m) { gm_set_hex(m, "x", "9191919101"); }
static void ed_big_body(gen_map *m)
{
    static uint8_t v[2103] = {0xc5, 0x08, 0x34}; /* bin16 of 2100 zero bytes */
    gm_set(m, "foo", v, sizeof v);
}
static void ed_huge(gen_map *m)
{
    static uint8_t v[4003] = {0xc5, 0x0f, 0xa0}; /* bin16 of 4000 */
    gm_set(m, "foo", v, sizeof v);
}
static void ed_root_twice(gen_map *m)
{
    uint8_t b[512];
    static const int r[] = {K_ROOT2, K_ROOT2};
    gm_set(m, "root", b, key_list(b, r, 2, false));
}
static void ed_root31(gen_map *m)
{
    uint8_t b[512];
    static const int r[] = {K_ROOT2, K_ROOT3};
    gm_set(m, "root", b, key_list(b, r, 2, true));
}
static void ed_rel9(gen_map *m)
{
    uint8_t b[512];
    static const int r[] = {K_REL1, K_REL2, K_REL3, K_ROOT1, K_ROOT2, K_ROOT3, K_ROOT4, K_CERT1, K_CERT2};
    gm_set(m, "rel", b, key_list(b, r, 9, false));
}
static void ed_url_noslash(gen_map *m)
{
    uint8_t b[1200];
    static const char *const u[] = {"https://keys.example.net/ug"};
    gm_set(m, "urls", b, str_list(b, u, 1));
}
static void ed_url_ftp(gen_map *m)
{
    uint8_t b[1200];
    static const char *const u[] = {"ftp://keys.example.net/ug/"};
    gm_set(m, "urls", b, str_list(b, u, 1));
}
static void ed_urls5(gen_map *m)
{
    uint8_t b[1200];
    static const char *const u[] = {"https://a.example/", "https://b.example/", "https://c.example/",
                                    "https://d.example/", "https://e.example/"};
    gm_set(m, "urls", b, str_list(b, u, 5));
}

static void chain(json_t *arr)
{
    add(arr, "keyring 1 from the anchor (version 0)", UG_OK, NULL, variant("kr1", NULL, NULL, 0));
    add(arr, "keyring 2 after 1 (root1 out, root3 in)", UG_OK, "keyring 1 from the anchor (version 0)",
        variant("kr2", NULL, NULL, 0));
    add(arr, "keyring 3 after 2 (root2 out, root4 in)", UG_OK, "keyring 2 after 1 (root1 out, root3 in)",
        variant("kr3", NULL, NULL, 0));
    json_t *v = add(arr, "keyring 1 from an anchor pinned from keyring 1 (same roots)", UG_OK, NULL,
                    variant("kr1", NULL, NULL, 0));
    json_object_set_new(v, "anchor", json_pack("{s:i}", "kv", 1));
    const char *k1 = "keyring 1 from the anchor (version 0)";
    add(arr, "keyring 2 replacing every root, signed by a threshold of the old and of the new", UG_OK, k1,
        variant("kr2-full", NULL, NULL, 0));
    add(arr, "keyring 2 expired: the step does not look at expiry", UG_OK, k1, variant("kr2-expired", NULL, NULL, 0));
    gen_sig s1[] = {SG(K_STRANGER), SG(K_ROOT1), SG(K_ROOT2), SG(K_ROOT3)};
    add(arr, "keyring 2 with an unknown kid's signature first (ignored)", UG_OK, k1, variant("kr2", NULL, s1, 4));
    gen_sig s2[] = {SG(K_ROOT1), SG(K_ROOT1), SG(K_ROOT2), SG(K_ROOT3)};
    add(arr, "keyring 2 with a valid signature twice", UG_OK, k1, variant("kr2", NULL, s2, 4));
    gen_sig s3[] = {SG(K_ROOT1), SG(K_ROOT2), SG(K_ROOT3), {K_ROOT4, -1, 2}};
    add(arr, "keyring 2 with a bad signature of an unlisted key (ignored)", UG_OK, k1, variant("kr2", NULL, s3, 4));
}

static void chain_refused(json_t *arr)
{
    const char *k1 = "keyring 1 from the anchor (version 0)", *k2 = "keyring 2 after 1 (root1 out, root3 in)";
    add(arr, "keyring 2 from the anchor (skips 1)", UG_E_CHAIN, NULL, variant("kr2", NULL, NULL, 0));
    add(arr, "keyring 3 after 1 (skips 2)", UG_E_CHAIN, k1, variant("kr3", NULL, NULL, 0));
    add(arr, "keyring 1 after 1", UG_E_CHAIN, k1, variant("kr1", NULL, NULL, 0));
    add(arr, "keyring 1 after 2 (older)", UG_E_CHAIN, k2, variant("kr1", NULL, NULL, 0));
    json_t *v = add(arr, "keyring 1 from an anchor of version 1 with other roots", UG_E_CHAIN, NULL,
                    variant("kr1", NULL, NULL, 0));
    static const int other[] = {K_ROOT1, K_ROOT3};
    char *a = gen_hex(g_pk[other[0]], UG_PK_LEN), *b = gen_hex(g_pk[other[1]], UG_PK_LEN);
    json_object_set_new(v, "anchor", json_pack("{s:i, s:[s,s]}", "kv", 1, "root", a, b));
    free(a), free(b);
    v = add(arr, "keyring 1 from an anchor of version 1 with another threshold", UG_E_CHAIN, NULL,
            variant("kr1", NULL, NULL, 0));
    json_object_set_new(v, "anchor", json_pack("{s:i, s:i}", "kv", 1, "root_t", 1));
    gen_sig old[] = {SG(K_ROOT1), SG(K_ROOT2)}, neu[] = {SG(K_ROOT3), SG(K_ROOT4)};
    add(arr, "keyring 2 replacing every root, signed only by the old roots", UG_E_THRESHOLD, k1,
        variant("kr2-full", NULL, old, 2));
    add(arr, "keyring 2 replacing every root, signed only by the new roots", UG_E_THRESHOLD, k1,
        variant("kr2-full", NULL, neu, 2));
    gen_sig s1[] = {SG(K_ROOT2), SG(K_ROOT3)};
    add(arr, "keyring 2 one old-root signature short", UG_E_THRESHOLD, k1, variant("kr2", NULL, s1, 2));
    gen_sig s2[] = {SG(K_ROOT1), SG(K_ROOT2)};
    add(arr, "keyring 2 one new-root signature short", UG_E_THRESHOLD, k1, variant("kr2", NULL, s2, 2));
    gen_sig s3[] = {SG(K_ROOT1), SG(K_ROOT1), SG(K_ROOT3), SG(K_ROOT3)};
    add(arr, "keyring 2 with duplicate kids: each key counts once", UG_E_THRESHOLD, k1, variant("kr2", NULL, s3, 4));
    gen_sig s4[] = {{K_ROOT1, -1, 2}, SG(K_ROOT1), SG(K_ROOT2), SG(K_ROOT3)};
    add(arr, "keyring 2: the first entry of a kid decides (invalid, then valid)", UG_E_THRESHOLD, k1,
        variant("kr2", NULL, s4, 4));
    gen_sig s5[] = {{K_ROOT1, -1, 1}, SG(K_ROOT2), SG(K_ROOT3)};
    add(arr, "keyring 2 with root1's signature as S + L", UG_E_THRESHOLD, k1, variant("kr2", NULL, s5, 3));
    gen_sig s6[] = {{K_ROOT1, K_STRANGER, 0}, SG(K_ROOT2), SG(K_ROOT3)};
    add(arr, "keyring 2 with a stranger's signature under root1's kid", UG_E_THRESHOLD, k1,
        variant("kr2", NULL, s6, 3));
}

static void decode_refused(json_t *arr)
{
    const char *k1 = "keyring 1 from the anchor (version 0)";
    static const struct {
        const char *name;
        gen_edit edit;
        ug_err want;
    } e[] = {
        {"unknown key in the body", ed_unknown, UG_E_SCHEMA},
        {"cert_t missing", ed_no_cert_t, UG_E_SCHEMA},
        {"kv twice", ed_dup_kv, UG_E_SCHEMA},
        {"kv 0", ed_kv0, UG_E_SCHEMA},
        {"kv as a uint8 (non-canonical)", ed_kv_u8, UG_E_MSGPACK},
        {"a key as a str8 (non-canonical)", ed_key_str8, UG_E_MSGPACK},
        {"the body's map as a map16 (non-canonical)", ed_map16, UG_E_MSGPACK},
        {"a root listed twice", ed_root_twice, UG_E_SCHEMA},
        {"root_t 0", ed_root_t0, UG_E_SCHEMA},
        {"root_t above the number of roots", ed_root_t3, UG_E_SCHEMA},
        {"no release key", ed_rel_empty, UG_E_SCHEMA},
        {"9 release keys", ed_rel9, UG_E_SCHEMA},
        {"a root of 31 bytes", ed_root31, UG_E_SCHEMA},
        {"a keyring URL without its final slash", ed_url_noslash, UG_E_STRING},
        {"an ftp keyring URL", ed_url_ftp, UG_E_STRING},
        {"5 keyring URLs", ed_urls5, UG_E_SCHEMA},
        {"exp negative", ed_exp_neg, UG_E_SCHEMA},
        {"containers nested 5 deep in an unknown key", ed_deep, UG_E_MSGPACK},
        {"a body over 2048 bytes", ed_big_body, UG_E_SIZE},
        {"a document over 4096 bytes", ed_huge, UG_E_SIZE},
    };
    char name[160];
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        snprintf(name, sizeof name, "keyring 2: %s", e[i].name);
        add(arr, name, e[i].want, k1, variant("kr2", e[i].edit, NULL, 0));
    }
}

/* kr2's body, signed by root1..3, written by hand: the first entry's kid
 * cut to kidlen bytes and extra items after its signature. */
static size_t hand_made(int kidlen, int extra)
{
    ug2_keyring k;
    uint8_t body[UG_OBJ_MAX];
    size_t blen, len;
    gen_keyring_struct(&k, gen_kr_named("kr2"));
    if (ug2_keyring_encode_body(body, sizeof body, &blen, &k) != 0)
        gen_die("keyring body");
    ug_mp_out o;
    ug_mp_out_init(&o, doc, sizeof doc);
    msgpack_pack_array(&o.pk, 2);
    ug_mp_out_bin(&o, body, blen);
    msgpack_pack_array(&o.pk, 3);
    for (int i = 0; i < 3; i++) {
        ug2_sig sg;
        if (ug2_sig_make(&sg, UG2_CTX_KEYRING, body, blen, g_sk[K_ROOT1 + i]) != 0)
            gen_die("sign");
        msgpack_pack_array(&o.pk, 2 + (i == 0 ? extra : 0));
        ug_mp_out_bin(&o, sg.kid, i == 0 ? (size_t)kidlen : UG_KID_LEN);
        ug_mp_out_bin(&o, sg.sig, UG_SIG_LEN);
        for (int x = 0; i == 0 && x < extra; x++)
            ug_mp_out_uint(&o, 1);
    }
    if (ug_mp_out_done(&o, &len) != 0)
        gen_die("hand_made");
    return len;
}

/* Faults in the object around the body: its signature list, its framing. */
static void object_refused(json_t *arr)
{
    const char *k1 = "keyring 1 from the anchor (version 0)";
    gen_sig s17[17];
    for (int i = 0; i < 17; i++)
        s17[i] = SG(i < 3 ? K_ROOT1 + i : K_STRANGER);
    add(arr, "keyring 2 with 17 signature entries", UG_E_SCHEMA, k1, variant("kr2", NULL, s17, 17));
    size_t n = variant("kr2", NULL, NULL, 0);
    size_t blen = ((size_t)doc[2] << 8) | doc[3], at = 4 + blen; /* body's header: c5 + 16-bit length */
    if (doc[1] != 0xc5 || doc[at] != 0x93)
        gen_die("keyring framing");
    doc[at] = 0x90;
    add(arr, "keyring 2 with no signature entry", UG_E_SCHEMA, k1, at + 1);
    n = variant("kr2", NULL, NULL, 0);
    doc[n] = 0x00;
    add(arr, "keyring 2 with a byte after the document", UG_E_MSGPACK, k1, n + 1);
    memmove(doc + at + 3, doc + at + 1, n - at - 1);
    doc[at] = 0xdc, doc[at + 1] = 0, doc[at + 2] = 3;
    add(arr, "keyring 2 with its signatures in an array16 (non-canonical)", UG_E_MSGPACK, k1, n + 2);
    add(arr, "keyring 2 with a signature entry of 3 items", UG_E_SCHEMA, k1, hand_made(UG_KID_LEN, 1));
    add(arr, "keyring 2 with a kid of 7 bytes", UG_E_SCHEMA, k1, hand_made(UG_KID_LEN - 1, 0));
    add(arr, "keyring 2 signed by hand as the encoder does", UG_OK, k1, hand_made(UG_KID_LEN, 0));
    n = gen_multisig(doc, sizeof doc, UG2_CTX_KEYRING, (const uint8_t *)"\x93\x01\x02\x03", 4, s17, 3);
    add(arr, "a document whose body is an array", UG_E_SCHEMA, k1, n);
    doc[0] = 0x93;
    add(arr, "a document of 3 items", UG_E_MSGPACK, k1, n);
}

void gen_file_keyring(const char *dir)
{
    json_t *arr = json_array();
    chain(arr);
    chain_refused(arr);
    decode_refused(arr);
    object_refused(arr);
    json_t *j = json_pack("{s:s, s:I, s:o, s:o}", "note",
                          "a peer holding `held` (an earlier vector's keyring, or the anchor: the file's, with the "
                          "vector's `anchor` fields over it) takes `hex` as its next keyring, or refuses it for `error`",
                          "now", (json_int_t)NOW, "anchor", gen_anchor(), "vectors", arr);
    gen_write(dir, "keyring.json", j);
}
