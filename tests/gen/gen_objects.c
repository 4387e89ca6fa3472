/* The shared objects of the version 2 vectors: keyrings, the default
 * certificate and manifest, the peer every file judges with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gen.h"

#define KR_URL "https://keys.example.net/ug/"

/* kv, exp, roots+t, release keys+t, certificate keys+t, min serial, signers */
const gen_kr G_KR[] = {
    {"kr1", 1, NOW + 365 * DAY, {K_ROOT1, K_ROOT2}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 2, {K_CERT1, K_CERT2}, 2, 1, 0,
     {K_ROOT1, K_ROOT2}, 2},
    {"kr2", 2, NOW + 365 * DAY, {K_ROOT2, K_ROOT3}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 2, {K_CERT1, K_CERT2}, 2, 1, 5,
     {K_ROOT1, K_ROOT2, K_ROOT3}, 3},
    {"kr3", 3, NOW + 365 * DAY, {K_ROOT3, K_ROOT4}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 2, {K_CERT1, K_CERT2}, 2, 1, 5,
     {K_ROOT2, K_ROOT3, K_ROOT4}, 3},
    {"kr3-expired", 3, NOW - DAY, {K_ROOT3, K_ROOT4}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 2, {K_CERT1, K_CERT2}, 2, 1,
     5, {K_ROOT2, K_ROOT3, K_ROOT4}, 3},
    {"kr3-t1", 3, NOW + 365 * DAY, {K_ROOT3, K_ROOT4}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 1, {K_CERT1, K_CERT2}, 2, 1,
     5, {K_ROOT2, K_ROOT3, K_ROOT4}, 3},
    {"kr3-t2", 3, NOW + 365 * DAY, {K_ROOT3, K_ROOT4}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 2, {K_CERT1, K_CERT2}, 2, 2,
     5, {K_ROOT2, K_ROOT3, K_ROOT4}, 3},
    {"kr2-full", 2, NOW + 365 * DAY, {K_ROOT3, K_ROOT4}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 2, {K_CERT1, K_CERT2}, 2,
     1, 5, {K_ROOT1, K_ROOT2, K_ROOT3, K_ROOT4}, 4},
    {"kr2-expired", 2, NOW - DAY, {K_ROOT2, K_ROOT3}, 2, 2, {K_REL1, K_REL2, K_REL3}, 3, 2, {K_CERT1, K_CERT2}, 2, 1,
     5, {K_ROOT1, K_ROOT2, K_ROOT3}, 3},
};
const size_t G_NKR = sizeof G_KR / sizeof G_KR[0];

const gen_kr *gen_kr_named(const char *name)
{
    for (size_t i = 0; i < G_NKR; i++)
        if (strcmp(G_KR[i].name, name) == 0)
            return &G_KR[i];
    gen_die(name);
}

static void keys_set(ug_pubkey *out, uint8_t *n, uint8_t *t, const int *idx, int count, int thr)
{
    for (int i = 0; i < count; i++)
        ug_pubkey_set(&out[i], g_pk[idx[i]]);
    *n = (uint8_t)count;
    *t = (uint8_t)thr;
}

void gen_keyring_struct(ug2_keyring *k, const gen_kr *g)
{
    memset(k, 0, sizeof *k);
    k->kv = g->kv;
    k->exp = g->exp;
    keys_set(k->root, &k->nroot, &k->root_t, g->root, g->nroot, g->root_t);
    keys_set(k->rel, &k->nrel, &k->rel_t, g->rel, g->nrel, g->rel_t);
    keys_set(k->cert, &k->ncert, &k->cert_t, g->cert, g->ncert, g->cert_t);
    k->min_serial = g->min_serial;
    k->nurls = 1;
    snprintf(k->urls[0], sizeof k->urls[0], "%s", KR_URL);
}

size_t gen_keyring_doc(uint8_t *out, size_t cap, const gen_kr *g)
{
    ug2_keyring k;
    uint8_t body[UG_OBJ_MAX];
    size_t blen;
    gen_sig s[6];
    gen_keyring_struct(&k, g);
    if (ug2_keyring_encode_body(body, sizeof body, &blen, &k) != 0)
        gen_die("keyring body");
    for (int i = 0; i < g->nsigners; i++)
        s[i] = SG(g->signers[i]);
    return gen_multisig(out, cap, UG2_CTX_KEYRING, body, blen, s, (size_t)g->nsigners);
}

json_t *gen_keyrings(void)
{
    json_t *d = json_object();
    for (size_t i = 0; i < G_NKR; i++) {
        uint8_t doc[GEN_BUF];
        size_t n = gen_keyring_doc(doc, sizeof doc, &G_KR[i]);
        char *hex = gen_hex(doc, n);
        json_object_set_new(d, G_KR[i].name, json_string(hex));
        free(hex);
    }
    return d;
}

static json_t *hexs(const int *idx, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) {
        char *h = gen_hex(g_pk[idx[i]], UG_PK_LEN);
        json_array_append_new(a, json_string(h));
        free(h);
    }
    return a;
}

json_t *gen_anchor(void)
{
    static const int roots[] = {K_ROOT1, K_ROOT2};
    return json_pack("{s:i, s:o, s:i}", "kv", 0, "root", hexs(roots, 2), "root_t", 2);
}

json_t *gen_peer_ctx(void)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:s}", "keyring", "kr3", "app",
                     "example-app", "plat", "linux-x86_64", "chan", "stable", "tracker", "eu-1", "current", "1.4.2",
                     "seq_hi", (json_int_t)10, "min_serial", (json_int_t)0, "floor", (json_int_t)0, "now",
                     (json_int_t)NOW, "uid", (json_int_t)4242, "nonce", "000102030405060708090a0b0c0d0e0f");
}

/* ---- the default certificate and manifest --------------------------------- */

void gen_cert_default(ug2_cert *c)
{
    memset(c, 0, sizeof *c);
    memcpy(c->pk, g_pk[K_HINT1], UG_PK_LEN);
    ug_kid(c->kid, c->pk);
    c->serial = 7;
    c->nbf = NOW - DAY;
    c->exp = NOW + 60 * DAY;
    c->kv = 3;
    snprintf(c->trk, sizeof c->trk, "eu-1");
}

size_t gen_cert_obj(uint8_t *out, size_t cap, const ug2_cert *c, const gen_sig *s, size_t n, gen_edit edit)
{
    uint8_t body[UG_OBJ_MAX];
    size_t blen;
    static const gen_sig def = {K_CERT1, -1, 0};
    if (ug2_cert_encode_body(body, sizeof body, &blen, c) != 0)
        gen_die("cert body");
    blen = gen_edit_body(body, blen, sizeof body, edit);
    return gen_multisig(out, cap, UG2_CTX_CERT, body, blen, n ? s : &def, n ? n : 1);
}

static void package_hash(uint8_t h[UG_HASH_LEN], const char *what)
{
    crypto_generichash(h, UG_HASH_LEN, (const uint8_t *)what, strlen(what), NULL, 0);
}

void gen_manifest_default(ug2_manifest *m)
{
    memset(m, 0, sizeof *m);
    if (ug_version_parse(&m->to, "2.0.0", 5) != 0)
        gen_die("version");
    m->nurls = 2;
    snprintf(m->urls[0], sizeof m->urls[0], "https://mirror-a.example.net/app-2.0.0.pkg");
    snprintf(m->urls[1], sizeof m->urls[1], "https://mirror-b.example.net/app-2.0.0.pkg");
    m->size = 123456;
    package_hash(m->hash, "upgate v2 test package 2.0.0");
    m->exp = NOW + 30 * DAY;
    snprintf(m->app, sizeof m->app, "example-app");
    m->nplat = 2;
    snprintf(m->plat[0], sizeof m->plat[0], "linux-x86_64");
    snprintf(m->plat[1], sizeof m->plat[1], "windows-x86_64");
    snprintf(m->chan, sizeof m->chan, "stable");
    m->seq = 12;
    m->ndeltas = 2;
    static const char *const from[] = {"1.4.2", "1.3.0"};
    for (unsigned i = 0; i < 2; i++) {
        ug2_delta *d = &m->deltas[i];
        if (ug_version_parse(&d->from, from[i], 5) != 0)
            gen_die("version");
        d->size = 23456 + i;
        package_hash(d->hash, from[i]);
        d->nurls = 1;
        snprintf(d->urls[0], sizeof d->urls[0], "https://mirror-a.example.net/app-%s-2.0.0.zstpatch", from[i]);
    }
    m->nkeyring = 1;
    snprintf(m->keyring[0], sizeof m->keyring[0], KR_URL);
}

size_t gen_manifest_obj(uint8_t *out, size_t cap, const ug2_manifest *m, const gen_sig *s, size_t n,
                        gen_edit edit)
{
    uint8_t body[UG_OBJ_MAX];
    size_t blen;
    static const gen_sig def[] = {{K_REL1, -1, 0}, {K_REL2, -1, 0}};
    if (ug2_manifest_encode_body(body, sizeof body, &blen, m) != 0)
        gen_die("manifest body");
    blen = gen_edit_body(body, blen, sizeof body, edit);
    return gen_multisig(out, cap, UG2_CTX_RELEASE, body, blen, n ? s : def, n ? n : 2);
}
