/* libupgate, protocol version 2: the HELLO v2, and each reply through the peer's checks (protocol-v2.md
 * 5.4, 5.5) with the keyrings they need walked first; what a check accepted moves the state (5.6). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

ug_client_err ug_client_hello2_(ug_client *c, uint64_t now)
{
    ug2_hello_fields f = {
        .base = {.uid = c->uid, .ver = c->version, .ts = now, .cred = c->cred, .cred_len = c->cred_len,
                 .plat = c->plat, .chan = c->chan, .cookie = c->have_cookie ? c->cookie : NULL},
        .app = c->app,
        .kv = c->peer.kr.kv, /* the newest keyring held, the anchor's when none */
    };
    ug_client_random_(c, f.base.nonce, sizeof f.base.nonce);
    memcpy(f.base.pk, c->sk + UG_SEED_LEN, UG_PK_LEN);
    if (ug2_hello_build(c->hello, sizeof c->hello, &c->hello_len, &f, c->target, c->sk) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "cannot build a HELLO of %zu bytes (credential too long?)",
                               c->target);
    memcpy(c->nonce, f.base.nonce, sizeof c->nonce);
    return UG_CLIENT_OK;
}

/* The peer as the checks see it now: this HELLO's uid and nonce, the clock. */
static ug2_peer *peer_now(ug_client *c)
{
    c->peer.uid = c->uid;
    memcpy(c->peer.nonce, c->nonce, UG_NONCE_LEN);
    c->peer.now = ug_client_now_(c);
    return &c->peer;
}

/* A HINT signed under a certificate the peer accepts that echoes our uid
 * and nonce: the tracker's own answer to this HELLO, not a forgery. */
static bool hint_is_ours(ug_client *c, const ug_dgram *d)
{
    ug2_hint *h = &c->hint2;
    const ug2_peer *p = peer_now(c);
    if (ug2_hint_decode(h, d->body, d->body_len, NULL) != 0)
        return false;
    ug2_cert_ctx x = {.kr = &p->kr, .min_serial = ug2_peer_min_serial(p), .tracker = p->tracker,
                      .now = ug2_peer_now(p)};
    return p->has_keyring && ug2_cert_check(&h->cert, &h->cert_obj, &x, h->ts, NULL, NULL) == 0 &&
           ug_verify(d->sig, UG2_CTX_HINT, d->body, d->body_len, h->cert.pk) == 0 && h->uid == c->uid &&
           sodium_memcmp(h->nonce, c->nonce, UG_NONCE_LEN) == 0;
}


/* Runs verify, walking to the keyring it needs and trying again while the
 * walk makes progress. */
typedef int (*verify_fn)(ug_client *c, void *obj, const ug_dgram *d, const uint8_t *buf, size_t len, uint32_t *need,
                         ug_err *err);

static int with_keyrings(ug_client *c, verify_fn fn, void *obj, const ug_dgram *d, const uint8_t *buf, size_t len,
                         const ug2_manifest *m, ug_err *err)
{
    for (unsigned tries = 0;; tries++) {
        uint32_t need = 0, before = c->peer.has_keyring ? c->peer.kr.kv : 0;
        if (fn(c, obj, d, buf, len, &need, err) == 0)
            return 0;
        if (*err != UG_E_KEYRING || tries == 2)
            return -1;
        ug_err why = UG_OK;
        if (ug_client_walk_(c, need, m, &why) != 0 && c->peer.has_keyring && c->peer.kr.kv == before)
            return -1; /* nothing reached: refused as `keyring` */
    }
}

static int verify_hint(ug_client *c, void *obj, const ug_dgram *d, const uint8_t *buf, size_t len, uint32_t *need,
                       ug_err *err)
{
    (void)d;
    return ug2_hint_verify(obj, buf, len, peer_now(c), need, err);
}

static const ug_client_event *on_hint(ug_client *c, const uint8_t *buf, size_t len, const ug_dgram *d)
{
    ug2_hint *h = &c->hint2;
    ug_err err = UG_OK;
    /* the manifest's keyring URLs help the walk before anything is verified
     * (5.1); each try decodes the same bytes into h again */
    const ug2_manifest *m = ug2_hint_decode(h, d->body, d->body_len, NULL) == 0 ? &h->rel : NULL;
    if (with_keyrings(c, verify_hint, h, d, buf, len, m, &err) != 0)
        return ug_client_ignored_(c, err, true, hint_is_ours(c, d));
    ug2_peer_note_hint(&c->peer, h);
    c->blocked_told = false;
    (void)ug_client_v2_save_(c); /* a failed save leaves the message; the offer stands */
    ug_client_event *ev = &c->ev;
    ev->type = UG_CLIENT_EV_OFFER;
    ev->done = true;
    ev->tracker_ts = h->ts;
    ev->seq = h->rel.seq;
    ev->urgency = h->rel.urgency;
    const ug2_manifest *rel = &h->rel;
    ug_client_offer_of_(&ev->offer, &rel->to, rel->urls, rel->nurls, h->mirror, rel->size, rel->hash,
                        h->exp < rel->exp ? h->exp : rel->exp, h->ts);
    ug_client_offer_delta_(c, ev, rel, h);
    c->pending = false;
    return ev;
}

static int verify_token(ug_client *c, void *obj, const ug_dgram *d, const uint8_t *buf, size_t len, uint32_t *need,
                        ug_err *err)
{
    (void)d, (void)buf, (void)len;
    return ug2_token_verify(obj, peer_now(c), need, err);
}

/* The token of a WAIT, when it has one: checked; moves the clock and the freshness. */
static void wait_token(ug_client *c, ug2_wait *w, const ug_dgram *d)
{
    ug_client_event *ev = &c->ev;
    ug_err err = UG_OK;
    if (!w->has_token)
        return;
    if (with_keyrings(c, verify_token, w, d, NULL, 0, NULL, &err) != 0) {
        ev->token_reason = (ug_client_reason)err;
        ev->token_reason_name = ug_err_name(err);
        return;
    }
    ug2_peer_note_token(&c->peer, w);
    c->blocked_told = false;
    (void)ug_client_v2_save_(c);
    ev->token = true;
    ev->newest_seq = ug2_token_seq(&w->tok, c->app, c->chan);
}

static const ug_client_event *on_wait(ug_client *c, const ug_dgram *d)
{
    ug2_wait *w = &c->wait2;
    ug_err err = UG_OK;
    if (ug2_wait_decode(w, d->body, d->body_len, &err) != 0)
        return ug_client_ignored_(c, err, false, false);
    if (sodium_memcmp(w->nonce, c->nonce, UG_NONCE_LEN) != 0)
        return ug_client_ignored_(c, UG_E_NONCE, false, false);
    wait_token(c, w, d); /* sets the event's token fields, which the WAIT event keeps */
    return ug_client_wait_event_(c, w->why, w->retry, w->ts);
}

const ug_client_event *ug_client_receive2_(ug_client *c, const uint8_t *buf, size_t len)
{
    ug_dgram d;
    ug_err err = UG_OK;
    const ug_client_event *ev;
    if (len == 0 || ug2_dgram_decode(&d, buf, len, &err) != 0)
        ev = ug_client_ignored_(c, len == 0 ? UG_E_SIZE : err, false, false);
    else if (!c->pending) /* nothing asked: every reply is stray */
        ev = ug_client_ignored_(c, UG_E_NONCE, d.type == UG_TYPE_HINT, false);
    else if (d.type == UG_TYPE_HINT)
        ev = on_hint(c, buf, len, &d);
    else if (d.type == UG_TYPE_WAIT)
        ev = on_wait(c, &d);
    else if (d.type == UG_TYPE_COOKIE)
        ev = ug_client_on_cookie_(c, &d);
    else
        ev = ug_client_ignored_(c, UG_E_HEADER, false, false); /* a HELLO or REPORT is not a reply */
    ug_client_v2_blocked_(c);
    return ev;
}
