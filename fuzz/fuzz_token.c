/* libFuzzer harness: WAIT v2 replies and their freshness tokens (ug2_wait_verify as peer.json's peer),
 * token and WAIT bodies decoded and re-encoded. */
#include <string.h>

#include "v2common.h"

static ug2_peer peer;
static const char *const tok_order[] = {"trk", "ts", "exp", "kv", "seqs"};
static const char *const wait_order[] = {"nonce", "ts", "retry", "why", "tok", "cert"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz2_init();
    fz2_peer(&peer);
    return 0;
}

static void check_token(const ug2_token *t, const uint8_t *body, size_t len)
{
    FZ_CHECK(t->nseqs <= UG2_SEQS_MAX && t->kv >= 1, "counts");
    FZ_CHECK(ug2_label_valid(t->trk, strlen(t->trk), UG2_LABEL_MAX), "tracker name");
    for (unsigned i = 0; i < t->nseqs; i++) {
        FZ_CHECK(t->seqs[i].seq >= 1 && ug2_token_seq(t, t->seqs[i].app, t->seqs[i].chan) == t->seqs[i].seq,
                 "channel %u listed twice or seq 0", i);
    }
    uint8_t out[UG_OBJ_MAX];
    size_t n = 0;
    FZ_CHECK(ug2_token_encode_body(out, sizeof out, &n, t) == 0, "token re-encode");
    fz2_same_bytes(out, n, body, len, tok_order, 5, "token");
}

/* A WAIT that verified with a token: every rule of section 5.5, from outside. */
static void check_verified(const ug2_wait *w)
{
    const ug2_token *t = &w->tok;
    FZ_CHECK(memcmp(w->nonce, peer.nonce, UG_NONCE_LEN) == 0, "nonce");
    if (!w->has_token)
        return;
    FZ_CHECK(ug_verify(w->tok_obj.sig, UG2_CTX_TOKEN, w->tok_obj.body, w->tok_obj.body_len, w->cert.pk) == 0,
             "token not signed by the certified key");
    FZ_CHECK(t->exp > t->ts && t->exp - t->ts <= UG2_TOKEN_LIFE_MAX && t->exp > FZ_NOW, "token times");
    FZ_CHECK(strcmp(t->trk, "eu-1") == 0 && w->cert.serial >= 5 && w->cert.nbf <= t->ts, "tracker or certificate");
    uint64_t seq = ug2_token_seq(t, peer.app, peer.chan);
    FZ_CHECK(seq == 0 || seq >= peer.seq_hi, "stale token");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ug2_wait w;
    ug2_token t;
    ug_err e = UG_OK;
    uint32_t need = 0;
    if (ug2_wait_verify(&w, data, size, &peer, &need, &e) == 0)
        check_verified(&w);
    else
        FZ_CHECK(e > UG_OK && e < UG_E2_COUNT_ && e != UG_E_COUNT_, "refused with err %d", (int)e);
    FZ_CHECK(e != UG_E_KEYRING || need > peer.kr.kv, "needs keyring %u, holds %u", need, peer.kr.kv);
    if (ug2_token_decode(&t, data, size, &e) == 0)
        check_token(&t, data, size);
    if (ug2_wait_decode(&w, data, size, &e) == 0) {
        ug2_wait_fields f = {.base = {.ts = w.ts, .retry = w.retry, .why = w.why}};
        memcpy(f.base.nonce, w.nonce, UG_NONCE_LEN);
        if (w.has_token) {
            check_token(&w.tok, w.tok_obj.body, w.tok_obj.body_len);
            f.tok = w.tok_obj.raw, f.tok_len = w.tok_obj.raw_len;
            f.cert = w.cert_obj.raw, f.cert_len = w.cert_obj.raw_len;
        }
        uint8_t out[UG_OBJ_MAX];
        size_t n = 0;
        FZ_CHECK(ug2_wait_encode_body(out, sizeof out, &n, &f) == 0, "WAIT re-encode");
        fz2_same_bytes(out, n, data, size, wait_order, 6, "WAIT");
    }
    return 0;
}
