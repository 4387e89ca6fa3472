/* libupgate: the HELLO exchange. Builds and resends HELLOs, turns each reply into one event (protocol section 6;
 * version 2's replies in exchange2.c). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

/* A new HELLO v1 into c->hello. */
static ug_client_err hello1(ug_client *c, uint64_t now)
{
    ug_hello_fields f = {
        .uid = c->uid, .ver = c->version, .ts = now, .cred = c->cred, .cred_len = c->cred_len,
        .plat = c->plat[0] ? c->plat : NULL, .chan = c->chan[0] ? c->chan : NULL,
        .cookie = c->have_cookie ? c->cookie : NULL,
    };
    ug_client_random_(c, f.nonce, sizeof f.nonce);
    memcpy(f.pk, c->sk + UG_SEED_LEN, UG_PK_LEN); /* libsodium's sk ends with the pk */
    if (ug_hello_build(c->hello, sizeof c->hello, &c->hello_len, &f, c->target, c->sk) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "cannot build a HELLO of %zu bytes (credential too long?)",
                               c->target);
    memcpy(c->nonce, f.nonce, sizeof c->nonce);
    return UG_CLIENT_OK;
}

ug_client_err ug_client_hello(ug_client *c, uint8_t *out, size_t cap, size_t *len)
{
    if (!c || !out || !len)
        return UG_CLIENT_E_INVALID;
    ug_client_err e = ug_client_ready_(c);
    if (e != UG_CLIENT_OK)
        return e;
    bool v2 = ug_client_protocol(c) == 2;
    if (v2 && (e = ug_client_v2_load_(c)) != UG_CLIENT_OK)
        return e;
    if (v2)
        ug_client_v2_blocked_(c); /* the application hears of it even while no answer comes */
    if (!c->pending) {
        uint64_t now = ug_client_now_(c);
        if (c->have_cookie && (now < c->cookie_at || now - c->cookie_at > UG_CLIENT_COOKIE_TTL_S))
            c->have_cookie = false; /* its slot is over; the tracker would only ask again */
        if ((e = v2 ? ug_client_hello2_(c, now) : hello1(c, now)) != UG_CLIENT_OK)
            return e;
        c->hello_ts = now;
        c->pending = true;
    }
    if (cap < c->hello_len)
        return ug_client_fail_(c, UG_CLIENT_E_BUFFER, "HELLO of %zu bytes, buffer of %zu", c->hello_len, cap);
    memcpy(out, c->hello, c->hello_len);
    *len = c->hello_len;
    return UG_CLIENT_OK;
}

void ug_client_hello_reset(ug_client *c)
{
    if (c)
        c->pending = false;
}

/* ---- replies -------------------------------------------------------- */

const ug_client_event *ug_client_ignored_(ug_client *c, ug_err why, bool hint, bool authentic)
{
    ug_client_event *ev = &c->ev;
    ev->type = UG_CLIENT_EV_IGNORED;
    ev->reason = (ug_client_reason)why;
    ev->reason_name = ug_err_name(why);
    ev->hint = hint;
    ev->authentic = authentic;
    return ev;
}

/* A HINT signed by a pinned hint key that echoes our uid and nonce: only
 * the tracker answering this very HELLO can have made it, so whatever check
 * it failed afterwards is its real answer, not an off-path forgery. */
static bool hint_is_ours(const ug_client *c, const ug_dgram *d)
{
    ug_hint h;
    if (ug_hint_decode(&h, d->body, d->body_len, NULL) != 0)
        return false;
    const ug_pubkey *k = ug_pubkey_find(c->hint_keys, c->nhint, h.kid);
    return k && ug_verify(d->sig, UG_CTX_HINT, d->body, d->body_len, k->pk) == 0 && h.uid == c->uid &&
           sodium_memcmp(h.nonce, c->nonce, UG_NONCE_LEN) == 0;
}

void ug_client_offer_of_(ug_client_offer *o, const ug_version *to, const char (*urls)[UG_URL_MAX + 1],
                         unsigned nurls, uint64_t mirror, uint64_t size, const uint8_t hash[UG_HASH_LEN], uint64_t exp,
                         uint64_t ts)
{
    memset(o, 0, sizeof *o);
    if (ug_version_format(to, o->to, sizeof o->to) != 0)
        o->to[0] = 0; /* cannot happen: a parsed version fits UG_VER_MAX */
    o->size = size;
    memcpy(o->hash, hash, sizeof o->hash);
    o->nurls = nurls;
    /* try order: urls[mirror], then every other url as listed */
    for (unsigned i = 0; i < nurls; i++) {
        unsigned k = i == 0 ? (unsigned)mirror : i <= mirror ? i - 1 : i;
        memcpy(o->urls[i], urls[k], sizeof o->urls[i]);
    }
    o->exp = exp;
    o->tracker_ts = ts;
}

static const ug_client_event *on_hint(ug_client *c, const uint8_t *buf, size_t len, const ug_dgram *d)
{
    ug_peer_expect want = {
        .hint_keys = c->hint_keys, .nhint_keys = c->nhint, .release_keys = c->release_keys,
        .nrelease_keys = c->nrelease, .uid = c->uid, .current = c->running, .now = ug_client_now_(c),
    };
    memcpy(want.nonce, c->nonce, UG_NONCE_LEN);
    ug_hint h;
    ug_err err = UG_OK;
    if (ug_hint_verify(&h, buf, len, &want, &err) != 0)
        return ug_client_ignored_(c, err, true, hint_is_ours(c, d));
    ug_client_event *ev = &c->ev;
    ev->type = UG_CLIENT_EV_OFFER;
    ev->done = true;
    ev->tracker_ts = h.ts;
    const ug_manifest *m = &h.rel;
    ug_client_offer_of_(&ev->offer, &m->to, m->urls, m->nurls, h.mirror, m->size, m->hash,
                        h.exp < m->exp ? h.exp : m->exp, h.ts);
    c->pending = false;
    return ev;
}

const ug_client_event *ug_client_wait_event_(ug_client *c, uint64_t why, uint64_t retry, uint64_t ts)
{
    ug_client_event *ev = &c->ev;
    ev->type = UG_CLIENT_EV_WAIT;
    ev->why = why > UINT32_MAX ? UINT32_MAX : (unsigned)why;
    ev->tracker_ts = ts;
    c->pending = false;
    if (why == UG_WHY_TOO_SMALL && c->target < UG_DGRAM_MAX) {
        /* the same question again, padded so the answer fits */
        c->target = UG_DGRAM_MAX;
        ev->send_now = true;
        ev->retry = 0;
        return ev;
    }
    /* unsigned, so only advice: never sooner than a minute, never later than a day */
    ev->retry = retry < UG_CLIENT_RETRY_MIN_S ? UG_CLIENT_RETRY_MIN_S
                : retry > UG_CLIENT_RETRY_MAX_S ? UG_CLIENT_RETRY_MAX_S : retry;
    ev->done = true;
    return ev;
}

static const ug_client_event *on_wait(ug_client *c, const ug_dgram *d)
{
    ug_wait w;
    ug_err err = UG_OK;
    if (ug_wait_decode(&w, d->body, d->body_len, &err) != 0)
        return ug_client_ignored_(c, err, false, false);
    if (sodium_memcmp(w.nonce, c->nonce, UG_NONCE_LEN) != 0)
        return ug_client_ignored_(c, UG_E_NONCE, false, false);
    return ug_client_wait_event_(c, w.why, w.retry, w.ts);
}

const ug_client_event *ug_client_on_cookie_(ug_client *c, const ug_dgram *d)
{
    ug_cookie k;
    ug_err err = UG_OK;
    if (ug_cookie_decode(&k, d->body, d->body_len, &err) != 0)
        return ug_client_ignored_(c, err, false, false);
    if (sodium_memcmp(k.nonce, c->nonce, UG_NONCE_LEN) != 0)
        return ug_client_ignored_(c, UG_E_NONCE, false, false);
    memcpy(c->cookie, k.cookie, sizeof c->cookie);
    c->have_cookie = true;
    c->cookie_at = ug_client_now_(c);
    c->pending = false;
    ug_client_event *ev = &c->ev;
    ev->type = UG_CLIENT_EV_COOKIE;
    ev->send_now = true;
    ev->tracker_ts = k.ts;
    return ev;
}

ug_client_err ug_client_receive(ug_client *c, const uint8_t *buf, size_t len, const ug_client_event **ev)
{
    if (!c || !ev || (!buf && len))
        return UG_CLIENT_E_INVALID;
    memset(&c->ev, 0, sizeof c->ev);
    c->ev.reason_name = ug_err_name(UG_OK);
    c->ev.token_reason_name = "";
    c->ev.hello_ts = c->hello_ts;
    c->ev.protocol = ug_client_protocol(c);
    if (c->ev.protocol == 2) { /* before the first HELLO, nothing was asked: stray */
        *ev = c->v2_loaded ? ug_client_receive2_(c, buf, len) : ug_client_ignored_(c, UG_E_NONCE, false, false);
        return UG_CLIENT_OK;
    }
    ug_dgram d;
    ug_err err = UG_OK;
    if (len == 0 || ug_dgram_decode(&d, buf, len, &err) != 0) {
        *ev = ug_client_ignored_(c, len == 0 ? UG_E_SIZE : err, false, false);
        return UG_CLIENT_OK;
    }
    if (!c->pending) { /* nothing asked: every reply is stray */
        *ev = ug_client_ignored_(c, UG_E_NONCE, d.type == UG_TYPE_HINT, false);
        return UG_CLIENT_OK;
    }
    switch (d.type) {
    case UG_TYPE_HINT: *ev = on_hint(c, buf, len, &d); break;
    case UG_TYPE_WAIT: *ev = on_wait(c, &d); break;
    case UG_TYPE_COOKIE: *ev = ug_client_on_cookie_(c, &d); break;
    default: *ev = ug_client_ignored_(c, UG_E_HEADER, false, false); break; /* a HELLO or REPORT is not a reply */
    }
    return UG_CLIENT_OK;
}
