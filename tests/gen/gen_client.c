/* tracker.json and report.json: HELLO v2 and REPORT v2 as a tracker judges them (rule 4 and the clock window). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "mp.h"

static uint8_t dg[GEN_BUF];

typedef struct {
    uint64_t uid, cred_exp;
    int issuer, cred_key, client, cred_fault; /* the credential binds cred_key; client signs */
    ug2_hello_fields h;
    ug2_report_fields r;
    size_t target;
    unsigned version;
    const char *ctx;
    int fault;
    gen_edit edit;
} client_spec;

static uint8_t cred[256];

static void spec_default(client_spec *s)
{
    memset(s, 0, sizeof *s);
    s->uid = 4242, s->cred_exp = NOW + 30 * DAY, s->issuer = K_ISSUER, s->cred_key = s->client = K_CLIENT;
    ug_hello_fields *b = &s->h.base;
    b->uid = 4242, b->ver = "1.4.2", b->ts = NOW, b->plat = "linux-x86_64", b->chan = "stable";
    for (unsigned i = 0; i < UG_NONCE_LEN; i++)
        b->nonce[i] = (uint8_t)(0x10 + i);
    s->h.app = "example-app", s->h.kv = 3;
    ug_report_fields *r = &s->r.base;
    r->uid = 4242, r->ver = "2.0.0", r->to = "2.0.0", r->res = UG_RES_INSTALLED, r->ts = NOW;
    memcpy(r->nonce, b->nonce, UG_NONCE_LEN);
    s->r.app = "example-app", s->r.via = UG2_VIA_DELTA;
    s->target = 512, s->version = UG2_VERSION, s->fault = 0;
}

/* The v1 credential (UG1-CRED) binding uid to the client key. */
static size_t make_cred(const client_spec *s)
{
    ug_cred c = {.uid = s->uid, .exp = s->cred_exp};
    uint8_t body[128];
    size_t blen, len;
    memcpy(c.pk, g_pk[s->cred_key], UG_PK_LEN);
    ug_kid(c.kid, g_pk[s->issuer]);
    if (ug_cred_encode_body(body, sizeof body, &blen, &c) != 0)
        gen_die("cred");
    if (ug_signed_encode(cred, sizeof cred, &len, UG_CTX_CRED, body, blen, g_sk[s->issuer]) != 0)
        gen_die("cred sign");
    if (s->cred_fault)
        gen_plus_l(cred + len - UG_SIG_LEN);
    return len;
}

/* After an edit, the pad of a HELLO body grown or shrunk so the datagram is target bytes again. */
static size_t repad(uint8_t *body, size_t blen, size_t cap, size_t target)
{
    static gen_map m;
    static uint8_t pad[UG_DGRAM_MAX + 3];
    for (int round = 0; round < 3 && ug_dgram_len(blen, true) != target; round++) {
        gm_load(&m, body, blen);
        size_t have = 0, total = ug_dgram_len(blen, true);
        for (size_t i = 0; i < m.n; i++)
            if (m.e[i].klen == 4 && memcmp(m.e[i].k, "\xa3pad", 4) == 0)
                have = m.e[i].vlen - (m.e[i].vlen > 257 ? 3 : 2);
        size_t want = have + target - total; /* unsigned wrap when shrinking is undone by the sum */
        pad[0] = want < 256 ? 0xc4 : 0xc5;
        if (want < 256)
            pad[1] = (uint8_t)want;
        else
            pad[1] = (uint8_t)(want >> 8), pad[2] = (uint8_t)want;
        memset(pad + (want < 256 ? 2 : 3), 0, want);
        gm_set(&m, "pad", pad, want + (want < 256 ? 2 : 3));
        blen = gm_save(&m, body, cap);
    }
    return blen;
}

/* Encodes the body (padded for a HELLO to reach target), edits it, seals it. */
static size_t build(client_spec *s, bool hello)
{
    static uint8_t body[GEN_BUF];
    size_t blen, clen = make_cred(s);
    s->h.base.cred = s->r.base.cred = cred;
    memcpy(s->h.base.pk, g_pk[s->client], UG_PK_LEN);
    memcpy(s->r.base.pk, g_pk[s->client], UG_PK_LEN);
    s->h.base.cred_len = s->r.base.cred_len = clen;
    s->h.base.has_pad = s->r.base.has_pad = false;
    if (hello ? ug2_hello_encode_body(body, sizeof body, &blen, &s->h) != 0
              : ug2_report_encode_body(body, sizeof body, &blen, &s->r) != 0)
        gen_die("client body");
    if (hello && ug_dgram_len(blen, true) < s->target) {
        s->h.base.has_pad = true;
        s->h.base.pad_len = ug_pad_for(blen, s->target, 0);
        if (ug2_hello_encode_body(body, sizeof body, &blen, &s->h) != 0)
            gen_die("client body");
    }
    blen = gen_edit_body(body, blen, sizeof body, s->edit);
    if (hello && s->edit && s->target >= UG_HELLO_MIN)
        blen = repad(body, blen, sizeof body, s->target);
    const char *ctx = s->ctx ? s->ctx : hello ? UG2_CTX_HELLO : UG2_CTX_REPORT;
    return gen_seal(dg, sizeof dg, s->version, hello ? UG_TYPE_HELLO : UG_TYPE_REPORT, body, blen, ctx, s->client,
                    s->fault);
}

static void vec(json_t *arr, const char *name, ug_err want, client_spec *s, bool hello)
{
    gen_vec(arr, name, want, dg, build(s, hello));
}

static void ed_no_app(gen_map *m) { gm_del(m, "app"); }
static void ed_no_chan(gen_map *m) { gm_del(m, "chan"); }
static void ed_no_kv(gen_map *m) { gm_del(m, "kv"); }
static void ed_no_via(gen_map *m) { gm_del(m, "via"); }
static void ed_kv_big(gen_map *m) { gm_set_uint(m, "kv", UINT64_C(1) << 32); }
static void ed_uid16(gen_map *m) { gm_set_hex(m, "uid", "ce00001092"); }
static void ed_unknown(gen_map *m) { gm_set_uint(m, "foo", 1); }
static void ed_plat_bad(gen_map *m) { gm_set_str(m, "plat", "linux x86_64"); }
static void ed_app_bad(gen_map *m) { gm_set_str(m, "app", "exa\xc3\xa9mple"); }

static const struct {
    const char *name;
    gen_edit edit;
    ug_err want;
} shared_edits[] = {
    {"app missing", ed_no_app, UG_E_SCHEMA}, {"uid as a uint32 (non-canonical)", ed_uid16, UG_E_MSGPACK},
    {"unknown key", ed_unknown, UG_E_SCHEMA}, {"app not a label (UTF-8)", ed_app_bad, UG_E_STRING},
};

/* What HELLO and REPORT share: credential faults, signatures, clock, framing. */
static void shared(json_t *arr, bool hello, const char *what)
{
    client_spec s;
    char name[160];
#define V(label, want, change)                                                                                     \
    do {                                                                                                           \
        spec_default(&s);                                                                                          \
        change;                                                                                                    \
        snprintf(name, sizeof name, "%s: %s", what, label);                                                        \
        vec(arr, name, want, &s, hello);                                                                           \
    } while (0)
    V("credential from an untrusted issuer", UG_E_KEY, s.issuer = K_STRANGER);
    V("credential expired", UG_E_EXPIRED, s.cred_exp = NOW);
    V("credential for another uid", UG_E_BINDING, s.uid = 4243);
    V("credential for another key", UG_E_BINDING, s.cred_key = K_STRANGER);
    V("credential signature with S + L", UG_E_SIG, s.cred_fault = 1);
    V("signature with S + L", UG_E_SIG, s.fault = 1);
    V("signed under the version 1 context", UG_E_SIG, s.ctx = hello ? UG_CTX_HELLO : UG_CTX_REPORT);
    V("ts 301 s ahead", UG_E_CLOCK, s.h.base.ts = s.r.base.ts = NOW + 301);
    V("ts 300 s behind", UG_OK, s.h.base.ts = s.r.base.ts = NOW - 300);
    V("version byte 1", UG_E_HEADER, s.version = 1);
    for (size_t i = 0; i < sizeof shared_edits / sizeof shared_edits[0]; i++)
        V(shared_edits[i].name, shared_edits[i].want, s.edit = shared_edits[i].edit);
#undef V
}

void gen_file_tracker(const char *dir)
{
    json_t *arr = json_array();
    client_spec s;
    spec_default(&s);
    vec(arr, "valid HELLO v2 of 512 bytes", UG_OK, &s, true);
    s.target = UG_DGRAM_MAX;
    vec(arr, "valid HELLO v2 of 1232 bytes", UG_OK, &s, true);
    spec_default(&s);
    static const uint8_t cookie[UG_COOKIE_LEN] = {1, 2, 3};
    s.h.base.cookie = cookie, s.h.kv = 0;
    vec(arr, "valid HELLO v2 with a cookie, holding only its anchor (kv 0)", UG_OK, &s, true);
    shared(arr, true, "HELLO");
    static const struct {
        const char *name;
        gen_edit edit;
        ug_err want;
    } e[] = {
        {"chan missing", ed_no_chan, UG_E_SCHEMA}, {"kv missing", ed_no_kv, UG_E_SCHEMA},
        {"kv 2^32", ed_kv_big, UG_E_SCHEMA},       {"plat with a space", ed_plat_bad, UG_E_STRING},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        char name[120];
        spec_default(&s);
        s.edit = e[i].edit;
        snprintf(name, sizeof name, "HELLO: %s", e[i].name);
        vec(arr, name, e[i].want, &s, true);
    }
    spec_default(&s);
    s.target = UG_HELLO_MIN - 1;
    vec(arr, "HELLO: 511 bytes", UG_E_SIZE, &s, true);
    char *issuer_hex = gen_hex(g_pk[K_ISSUER], UG_PK_LEN);
    json_t *j = json_pack("{s:s, s:I, s:i, s:[s], s:o}", "note",
                          "a tracker that trusts only the issuer key and whose clock reads `now` accepts the HELLOs "
                          "marked accept (rule 4 and the clock window) and drops every other one for `error`",
                          "now", (json_int_t)NOW, "window_s", 300, "trusted_issuers", issuer_hex,
                          "vectors", arr);
    free(issuer_hex);
    gen_write(dir, "tracker.json", j);
}

void gen_file_report(const char *dir)
{
    json_t *arr = json_array();
    client_spec s;
    static const char *const via[] = {"full", "delta", "delta-fallback"};
    for (int v = 0; v < 3; v++) {
        char name[80];
        spec_default(&s);
        s.r.via = (ug2_via)v;
        snprintf(name, sizeof name, "valid REPORT v2, via %s", via[v]);
        vec(arr, name, UG_OK, &s, false);
    }
    spec_default(&s);
    s.r.base.res = UG_RES_ROLLED_BACK, s.r.base.ver = "1.4.2", s.r.base.has_pad = false;
    vec(arr, "valid REPORT v2, rolled back", UG_OK, &s, false);
    shared(arr, false, "REPORT");
    spec_default(&s);
    s.r.via = (ug2_via)3;
    vec(arr, "REPORT: via 3", UG_E_SCHEMA, &s, false);
    spec_default(&s);
    s.r.base.res = (ug_res)6;
    vec(arr, "REPORT: res 6", UG_E_SCHEMA, &s, false);
    spec_default(&s);
    s.edit = ed_no_via;
    vec(arr, "REPORT: via missing", UG_E_SCHEMA, &s, false);
    char *issuer_hex = gen_hex(g_pk[K_ISSUER], UG_PK_LEN);
    json_t *j = json_pack("{s:s, s:I, s:i, s:[s], s:o}", "note",
                          "a tracker that trusts only the issuer key and whose clock reads `now` counts the REPORTs "
                          "marked accept and drops every other one for `error` (never answering)",
                          "now", (json_int_t)NOW, "window_s", 300, "trusted_issuers", issuer_hex,
                          "vectors", arr);
    free(issuer_hex);
    gen_write(dir, "report.json", j);
}
