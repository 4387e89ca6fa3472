/* Version 2 replies (protocol-v2.md 6.3): the HINT carries the certificate and the v2 manifest as issued
 * and the served keyring's version; a WAIT carries the freshness token (signed at most once a minute, never
 * per WAIT) and the certificate whenever both still fit in the HELLO's length; a COOKIE is version 1's body. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/replies_v2.h"
#include "util/mix.h"

#define TOKEN_EVERY_S 60u

typedef struct {
    _Alignas(64) uint64_t at; /* when the token copied here was signed */
    size_t len;               /* 0: none yet */
    uint8_t tok[UG_DGRAM_MAX];
} tok_slot;

struct ug_v2_tokens {
    pthread_mutex_t mu;
    tok_slot signed_; /* the newest token, under mu */
    unsigned nworkers;
    tok_slot *slot; /* one per worker */
};

ug_v2_tokens *ug_v2_tokens_new(unsigned nworkers)
{
    ug_v2_tokens *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->slot = aligned_alloc(64, sizeof *t->slot * nworkers);
    if (!t->slot) {
        free(t);
        return NULL;
    }
    memset(t->slot, 0, sizeof *t->slot * nworkers);
    t->nworkers = nworkers;
    (void)pthread_mutex_init(&t->mu, NULL);
    return t;
}

void ug_v2_tokens_free(ug_v2_tokens *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->slot);
    free(t);
}

bool ug_v2_serving(const ug_policy *p, uint64_t now)
{
    return p->v2 && p->v2->keys.cert.exp > now && p->v2->keys.kr.exp > now;
}

size_t ug_v2_hint_max(const ug_policy *p, const ug_rollout *r)
{
    return ug2_hint_max_len(p->v2 ? p->v2->cert_len : 0, r->manifest2_len);
}

static bool stale(uint64_t at, uint64_t now)
{
    return now < at || now - at >= TOKEN_EVERY_S;
}

/* Signs the token of now into s (protocol-v2.md 6.3); s->len 0 when the
 * certificate cannot cover a token any more. */
static void sign_token(const ug_policy *p, uint64_t now, tok_slot *s)
{
    const ug_policy_v2 *k = p->v2;
    ug2_token t = {.ts = now, .exp = now + k->token_ttl, .kv = k->keys.kr.kv, .nseqs = k->nseqs};
    if (t.exp > k->keys.cert.exp) /* a token outliving its certificate proves nothing */
        t.exp = k->keys.cert.exp;
    snprintf(t.trk, sizeof t.trk, "%s", k->tracker);
    memcpy(t.seqs, k->seqs, sizeof t.seqs);
    s->at = now;
    s->len = 0;
    if (t.exp > now && ug2_token_sign(s->tok, sizeof s->tok, &s->len, &t, p->hint_sk) != 0)
        s->len = 0;
}

/* The worker's copy of the current token: NULL when there is none. */
static const tok_slot *token(const ug_v2_reply *x)
{
    ug_v2_tokens *t = x->tok;
    if (!t || x->worker >= t->nworkers || !ug_v2_serving(x->p, x->now))
        return NULL;
    tok_slot *mine = &t->slot[x->worker];
    if (mine->at && !stale(mine->at, x->now))
        return mine->len ? mine : NULL;
    pthread_mutex_lock(&t->mu);
    if (!t->signed_.at || stale(t->signed_.at, x->now)) {
        sign_token(x->p, x->now, &t->signed_);
        if (t->signed_.len)
            ug_count(x->w, ST_TOKENS_SIGNED);
    }
    memcpy(mine, &t->signed_, sizeof *mine);
    pthread_mutex_unlock(&t->mu);
    return mine->len ? mine : NULL;
}

/* body as a v2 datagram of type into the reply (sk NULL: unsigned). */
static int dgram(const ug_v2_reply *x, ug_type type, const uint8_t *body, size_t len, const uint8_t *sk)
{
    return ug2_dgram_encode(x->out, x->cap, x->out_len, type, body, len, sk);
}

int ug_v2_wait(const ug_v2_reply *x, const ug_wait *wt)
{
    const tok_slot *s = token(x);
    uint8_t body[UG_DGRAM_MAX];
    size_t len;
    if (s) {
        ug2_wait_fields f = {.base = *wt, .tok = s->tok, .tok_len = s->len, .cert = x->p->v2->cert_obj,
                             .cert_len = x->p->v2->cert_len};
        if (ug2_wait_encode_body(body, sizeof body, &len, &f) == 0 &&
            dgram(x, UG_TYPE_WAIT, body, len, NULL) == 0) {
            ug_count(x->w, ST_WAIT_TOKENS);
            return 0;
        }
    }
    /* no token, or it does not fit this HELLO's length: the plain WAIT */
    ug2_wait_fields plain = {.base = *wt};
    if (ug2_wait_encode_body(body, sizeof body, &len, &plain) != 0)
        return -1;
    return dgram(x, UG_TYPE_WAIT, body, len, NULL);
}

int ug_v2_cookie(const ug_v2_reply *x, const ug_cookie *ck)
{
    uint8_t body[UG_DGRAM_MAX];
    size_t len;
    if (ug_cookie_encode_body(body, sizeof body, &len, ck) != 0)
        return -1;
    return dgram(x, UG_TYPE_COOKIE, body, len, NULL);
}

int ug_v2_hint(const ug_v2_reply *x, const ug_rollout *r, int *delta)
{
    const ug_policy *p = x->p;
    const ug2_manifest *m = r->rel2;
    uint64_t exp = x->now + p->hint_ttl;
    ug2_hint_fields hf = {
        .uid = x->uid,
        .ts = x->now,
        .exp = exp < m->exp ? exp : m->exp, /* never outlive the manifest */
        .mirror = ug_mix64(x->uid) % m->nurls, /* spread peers over the mirrors */
        .kv = p->v2->keys.kr.kv,
        .cert = p->v2->cert_obj,
        .cert_len = p->v2->cert_len,
        .rel = r->manifest2,
        .rel_len = r->manifest2_len,
    };
    *delta = r->deltas_off ? -1 : ug2_manifest_delta_for(m, x->ver);
    hf.has_delta = *delta >= 0;
    hf.delta = hf.has_delta ? (uint64_t)*delta : 0;
    memcpy(hf.nonce, x->nonce, UG_NONCE_LEN);
    uint8_t body[UG_DGRAM_MAX];
    size_t len;
    if (ug2_hint_encode_body(body, sizeof body, &len, &hf) != 0)
        return -1;
    return dgram(x, UG_TYPE_HINT, body, len, p->hint_sk);
}
