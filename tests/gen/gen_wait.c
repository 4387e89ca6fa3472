/* wait.json: WAIT v2 replies and the freshness tokens they carry, and COOKIE v2, as a peer reads them. */
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "mp.h"

typedef struct {
    ug2_wait_fields f;
    bool with_tok, with_cert;
    ug2_token tok;
    int tok_signer;
    gen_edit tok_edit;
    ug2_cert cert;
    gen_sig cs[2];
    size_t ncs;
    unsigned version;
    ug_type type;
    bool signed_;
} wait_spec;

static uint8_t dg[GEN_BUF];

static void spec_default(wait_spec *s)
{
    memset(s, 0, sizeof *s);
    for (unsigned i = 0; i < UG_NONCE_LEN; i++)
        s->f.base.nonce[i] = (uint8_t)i;
    s->f.base.ts = NOW, s->f.base.retry = 3600, s->f.base.why = UG_WHY_NOT_SELECTED;
    s->with_tok = s->with_cert = true;
    s->tok = (ug2_token){.ts = NOW - 30, .exp = NOW + 3600, .kv = 3, .nseqs = 2};
    snprintf(s->tok.trk, sizeof s->tok.trk, "eu-1");
    s->tok.seqs[0] = (ug2_seq){"example-app", "stable", 12};
    s->tok.seqs[1] = (ug2_seq){"example-app", "beta", 14};
    s->tok_signer = K_HINT1;
    gen_cert_default(&s->cert);
    s->version = UG2_VERSION;
    s->type = UG_TYPE_WAIT;
}

static size_t build(wait_spec *s)
{
    static uint8_t tok[GEN_BUF], cert[GEN_BUF], body[GEN_BUF], tbody[GEN_BUF];
    size_t blen, tlen;
    if (ug2_token_encode_body(tbody, sizeof tbody, &tlen, &s->tok) != 0)
        gen_die("token body");
    tlen = gen_edit_body(tbody, tlen, sizeof tbody, s->tok_edit);
    if (ug_signed_encode(tok, sizeof tok, &s->f.tok_len, UG2_CTX_TOKEN, tbody, tlen, g_sk[s->tok_signer]) != 0)
        gen_die("token");
    s->f.cert_len = gen_cert_obj(cert, sizeof cert, &s->cert, s->cs, s->ncs, NULL);
    s->f.tok = tok, s->f.cert = cert;
    ug2_wait_fields f = s->f;
    if (!s->with_tok || !s->with_cert)
        f.tok = NULL, f.cert = NULL;
    if (ug2_wait_encode_body(body, sizeof body, &blen, &f) != 0)
        gen_die("wait body");
    if (s->with_tok != s->with_cert) { /* one without the other: added by hand */
        static gen_map m;
        gm_load(&m, body, blen);
        if (s->with_tok)
            gm_set(&m, "tok", tok, s->f.tok_len);
        else
            gm_set(&m, "cert", cert, s->f.cert_len);
        blen = gm_save(&m, body, sizeof body);
    }
    return gen_seal(dg, sizeof dg, s->version, s->type, body, blen, s->signed_ ? UG2_CTX_HINT : NULL, K_HINT1, 0);
}

static json_t *wait(json_t *arr, const char *name, ug_err want, wait_spec *s)
{
    return gen_vec(arr, name, want, dg, build(s));
}

static void peer(json_t *v, json_t *p)
{
    json_object_set_new(v, "peer", p);
}

static void waits_ok(json_t *arr)
{
    wait_spec s;
    spec_default(&s);
    s.with_tok = s.with_cert = false;
    wait(arr, "WAIT without a token", UG_OK, &s);
    spec_default(&s);
    json_t *v = wait(arr, "WAIT with a token (2 channels)", UG_OK, &s);
    gen_size_row("WAIT with a token (2 channels, certificate threshold 1)", "wait.json", "WAIT with a token (2 channels)",
                 json_string_length(json_object_get(v, "hex")) / 2);
    s.tok.seqs[0].seq = 10;
    wait(arr, "token seq equal to the highest verified", UG_OK, &s);
    spec_default(&s);
    s.tok.nseqs = 1, s.tok.seqs[0] = s.tok.seqs[1];
    wait(arr, "token not listing the peer's channel", UG_OK, &s);
    s.tok.nseqs = 0;
    wait(arr, "token listing no channel", UG_OK, &s);
    spec_default(&s);
    peer(wait(arr, "a peer whose clock is 30 days slow takes the token's signed time", UG_OK, &s),
         json_pack("{s:I}", "now", (json_int_t)(NOW - 30 * DAY)));
    s.cert.trk[0] = 0;
    wait(arr, "certificate naming no tracker, token for eu-1", UG_OK, &s);
    spec_default(&s);
    s.ncs = 2, s.cs[0] = SG(K_CERT1), s.cs[1] = SG(K_CERT2);
    s.tok.nseqs = 4;
    for (int i = 2; i < 4; i++) {
        s.tok.seqs[i] = s.tok.seqs[0];
        snprintf(s.tok.seqs[i].chan, sizeof s.tok.seqs[i].chan, "lts-%d", i);
    }
    v = wait(arr, "WAIT with a token (4 channels, certificate threshold 2)", UG_OK, &s);
    peer(v, json_pack("{s:s}", "keyring", "kr3-t2"));
    gen_size_row("WAIT with a token (4 channels, certificate threshold 2)", "wait.json",
                 "WAIT with a token (4 channels, certificate threshold 2)",
                 json_string_length(json_object_get(v, "hex")) / 2);
}

static void waits_refused(json_t *arr)
{
    wait_spec s;
    spec_default(&s);
    s.tok.ts = NOW - 7200, s.tok.exp = NOW - 3600;
    wait(arr, "token expired", UG_E_EXPIRED, &s);
    spec_default(&s);
    s.tok.exp = s.tok.ts + DAY + 1;
    wait(arr, "token valid for a day and a second", UG_E_LIFETIME, &s);
    s.tok.exp = s.tok.ts;
    wait(arr, "token exp equal to its ts", UG_E_LIFETIME, &s);
    spec_default(&s);
    s.cert.serial = 4;
    wait(arr, "token under a revoked certificate (serial 4)", UG_E_REVOKED, &s);
    spec_default(&s);
    s.cert.nbf = NOW - 20 * DAY, s.cert.exp = NOW - 60;
    wait(arr, "token under an expired certificate", UG_E_EXPIRED, &s);
    spec_default(&s);
    s.tok.kv = 4;
    json_object_set_new(wait(arr, "token naming keyring 4", UG_E_KEYRING, &s), "need_kv", json_integer(4));
    spec_default(&s);
    s.tok_signer = K_HINT2;
    wait(arr, "token signed by another key than the certified one", UG_E_SIG, &s);
    spec_default(&s);
    memcpy(s.tok.trk, "us-2", 5);
    wait(arr, "token of tracker us-2 under a certificate for eu-1", UG_E_TRACKER, &s);
    s.cert.trk[0] = 0;
    wait(arr, "token of tracker us-2, the peer asked eu-1", UG_E_TRACKER, &s);
    spec_default(&s);
    s.tok.seqs[0].seq = 9;
    wait(arr, "token: newest seq 9 for the peer's channel, below the 10 it verified (stale)", UG_E_SEQ, &s);
    spec_default(&s);
    s.f.base.nonce[0] = 0xff;
    wait(arr, "WAIT for another nonce", UG_E_NONCE, &s);
}

static void ed_seq2(gen_map *m) { gm_set_hex(m, "seqs", "9192a161a162"); }
static void ed_seq_dup(gen_map *m) { gm_set_hex(m, "seqs", "9293a161a16201" "93a161a16202"); }
static void ed_seq_label(gen_map *m) { gm_set_hex(m, "seqs", "9193a3612f62a16201"); }
static void ed_seqs9(gen_map *m) { gm_set_hex(m, "seqs", "99909090909090909090"); }
static void ed_no_trk(gen_map *m) { gm_del(m, "trk"); }

static void waits_malformed(json_t *arr)
{
    wait_spec s;
    spec_default(&s);
    s.with_cert = false;
    wait(arr, "token without a certificate", UG_E_SCHEMA, &s);
    spec_default(&s);
    s.with_tok = false;
    wait(arr, "certificate without a token", UG_E_SCHEMA, &s);
    static const struct {
        const char *name;
        gen_edit edit;
        ug_err want;
    } e[] = {
        {"token seqs entry of 2 items", ed_seq2, UG_E_SCHEMA},
        {"token lists (app, chan) twice", ed_seq_dup, UG_E_SCHEMA},
        {"token seqs app with a slash", ed_seq_label, UG_E_STRING},
        {"token lists 9 channels", ed_seqs9, UG_E_SCHEMA},
        {"token without trk", ed_no_trk, UG_E_SCHEMA},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        spec_default(&s);
        s.tok_edit = e[i].edit;
        wait(arr, e[i].name, e[i].want, &s);
    }
    spec_default(&s);
    s.version = 1, s.with_tok = s.with_cert = false;
    wait(arr, "WAIT with version byte 1", UG_E_HEADER, &s);
    spec_default(&s);
    s.signed_ = true;
    wait(arr, "WAIT carrying a signature", UG_E_HEADER, &s);
}

static void cookies(json_t *arr)
{
    ug_cookie c = {.ts = NOW};
    uint8_t body[128];
    size_t blen;
    for (unsigned i = 0; i < UG_NONCE_LEN; i++)
        c.nonce[i] = (uint8_t)i, c.cookie[i] = (uint8_t)(0xc0 + i);
    if (ug_cookie_encode_body(body, sizeof body, &blen, &c) != 0)
        gen_die("cookie");
    gen_vec(arr, "COOKIE v2", UG_OK, dg, gen_seal(dg, sizeof dg, UG2_VERSION, UG_TYPE_COOKIE, body, blen, NULL, 0, 0));
    c.nonce[3] = 0;
    if (ug_cookie_encode_body(body, sizeof body, &blen, &c) != 0)
        gen_die("cookie");
    gen_vec(arr, "COOKIE v2 for another nonce", UG_E_NONCE, dg,
            gen_seal(dg, sizeof dg, UG2_VERSION, UG_TYPE_COOKIE, body, blen, NULL, 0, 0));
}

void gen_file_wait(const char *dir)
{
    json_t *arr = json_array();
    waits_ok(arr);
    waits_refused(arr);
    waits_malformed(arr);
    cookies(arr);
    json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:o}", "note",
                          "a peer in state `peer` that sent a HELLO with `nonce` reads each reply: a WAIT (its token, "
                          "if any, verified) or a COOKIE is accepted, or refused for `error`",
                          "keyrings", gen_keyrings(), "anchor", gen_anchor(), "peer", gen_peer_ctx(), "vectors", arr);
    gen_write(dir, "wait.json", j);
}
