/* A version 2 peer: what it holds (ug2_peer), the HINT and token checks of
 * protocol-v2.md 5.4 and 5.5 in their order, and the state they move. */
#include <string.h>

#include "v2.h"

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

uint64_t ug2_peer_now(const ug2_peer *p)
{
    return max64(p->now, p->floor);
}

uint64_t ug2_peer_min_serial(const ug2_peer *p)
{
    return max64(p->kr.min_serial, p->min_serial);
}

uint32_t ug2_peer_next_kv(const ug2_peer *p)
{
    if (!p->has_keyring)
        return p->kr.kv ? p->kr.kv : 1;
    return p->kr.kv == UINT32_MAX ? p->kr.kv : p->kr.kv + 1;
}

/* Do two keyrings share a release key? */
static bool share_release_key(const ug2_keyring *a, const ug2_keyring *b)
{
    for (unsigned i = 0; i < a->nrel; i++)
        if (ug_pubkey_find(b->rel, b->nrel, a->rel[i].kid))
            return true;
    return false;
}

int ug2_peer_keyring(ug2_peer *p, const uint8_t *doc, size_t len, ug_err *err)
{
    ug2_keyring next;
    if (ug2_keyring_step(&p->kr, !p->has_keyring, doc, len, &next, err) != 0)
        return -1;
    if (p->has_keyring && !share_release_key(&p->kr, &next))
        p->seq_hi = p->min_serial = 0;
    p->kr = next;
    p->has_keyring = true;
    return 0;
}

/* Keyring readiness (protocol-v2.md 5.3): the keyring the object needs, held and unexpired. */
static int keyring_ready(const ug2_peer *p, uint32_t want, uint32_t *need_kv, ug_err *err)
{
    uint32_t need = 0;
    if (!p->has_keyring || want > p->kr.kv)
        need = max64(want, ug2_peer_next_kv(p));
    else if (p->kr.exp <= ug2_peer_now(p))
        need = ug2_peer_next_kv(p);
    if (!need)
        return 0;
    if (need_kv)
        *need_kv = need;
    return ug_fail(err, UG_E_KEYRING);
}

static int cert_ok(const ug2_peer *p, const ug2_cert *c, const ug2_multisig *m, uint64_t ts, uint32_t *need_kv,
                   ug_err *err)
{
    ug2_cert_ctx x = {.kr = &p->kr, .min_serial = ug2_peer_min_serial(p), .tracker = p->tracker,
                      .now = ug2_peer_now(p)};
    return ug2_cert_check(c, m, &x, ts, need_kv, err);
}

/* Steps 12 to 18 of 5.4: the offer bound to this peer. */
static int offer_ok(const ug2_hint *h, const ug2_peer *p, ug_err *err)
{
    const ug2_manifest *m = &h->rel;
    bool plat = false;
    for (unsigned i = 0; i < m->nplat; i++)
        plat = plat || strcmp(m->plat[i], p->plat) == 0;
    if (strcmp(m->app, p->app) != 0)
        return ug_fail(err, UG_E_APP);
    if (!plat)
        return ug_fail(err, UG_E_PLAT);
    if (strcmp(m->chan, p->chan) != 0)
        return ug_fail(err, UG_E_CHAN);
    if (m->seq < p->seq_hi)
        return ug_fail(err, UG_E_SEQ);
    int cmp = ug_version_cmp(&m->to, &p->current);
    if (cmp < 0 ? !(m->downgrade && m->seq > p->seq_hi) : cmp == 0)
        return ug_fail(err, UG_E_ROLLBACK);
    if (h->mirror >= m->nurls)
        return ug_fail(err, UG_E_MIRROR);
    if (h->has_delta &&
        (h->delta >= m->ndeltas || ug_version_cmp(&m->deltas[h->delta].from, &p->current) != 0))
        return ug_fail(err, UG_E_DELTA);
    return 0;
}

int ug2_hint_verify(ug2_hint *h, const uint8_t *dgram, size_t len, const ug2_peer *p, uint32_t *need_kv,
                    ug_err *err)
{
    ug_dgram d;
    if (ug2_dgram_decode(&d, dgram, len, err) != 0)
        return -1;
    if (d.type != UG_TYPE_HINT)
        return ug_fail(err, UG_E_HEADER);
    if (ug2_hint_decode(h, d.body, d.body_len, err) != 0 ||
        keyring_ready(p, h->kv > h->cert.kv ? h->kv : h->cert.kv, need_kv, err) != 0 ||
        cert_ok(p, &h->cert, &h->cert_obj, h->ts, need_kv, err) != 0)
        return -1;
    if (ug_verify(d.sig, UG2_CTX_HINT, d.body, d.body_len, h->cert.pk) != 0)
        return ug_fail(err, UG_E_SIG);
    if (h->uid != p->uid)
        return ug_fail(err, UG_E_UID);
    if (memcmp(h->nonce, p->nonce, UG_NONCE_LEN) != 0)
        return ug_fail(err, UG_E_NONCE);
    uint64_t now = max64(ug2_peer_now(p), h->ts);
    if (h->exp <= now)
        return ug_fail(err, UG_E_EXPIRED);
    if (ug2_multisig_check(&h->rel_obj, UG2_CTX_RELEASE, p->kr.rel, p->kr.nrel, p->kr.rel_t, err) != 0)
        return -1;
    if (h->rel.exp <= now)
        return ug_fail(err, UG_E_EXPIRED);
    if (h->rel.min_serial > h->cert.serial)
        return ug_fail(err, UG_E_REVOKED);
    if (offer_ok(h, p, err) != 0)
        return -1;
    if (err)
        *err = UG_OK;
    return 0;
}

void ug2_peer_note_hint(ug2_peer *p, const ug2_hint *h)
{
    p->seq_hi = max64(p->seq_hi, h->rel.seq);
    p->min_serial = max64(p->min_serial, h->rel.min_serial);
    p->floor = max64(p->floor, h->ts);
    p->fresh_at = max64(p->fresh_at, h->ts);
}

int ug2_token_verify(const ug2_wait *w, const ug2_peer *p, uint32_t *need_kv, ug_err *err)
{
    const ug2_token *t = &w->tok;
    if (!w->has_token)
        return ug_fail(err, UG_E_SCHEMA);
    if (keyring_ready(p, t->kv > w->cert.kv ? t->kv : w->cert.kv, need_kv, err) != 0 ||
        cert_ok(p, &w->cert, &w->cert_obj, t->ts, need_kv, err) != 0)
        return -1;
    if (ug_verify(w->tok_obj.sig, UG2_CTX_TOKEN, w->tok_obj.body, w->tok_obj.body_len, w->cert.pk) != 0)
        return ug_fail(err, UG_E_SIG);
    if ((w->cert.trk[0] && strcmp(w->cert.trk, t->trk) != 0) || (p->tracker[0] && strcmp(p->tracker, t->trk) != 0))
        return ug_fail(err, UG_E_TRACKER);
    if (t->exp <= t->ts || t->exp - t->ts > UG2_TOKEN_LIFE_MAX)
        return ug_fail(err, UG_E_LIFETIME);
    if (t->exp <= max64(ug2_peer_now(p), t->ts))
        return ug_fail(err, UG_E_EXPIRED);
    uint64_t seq = ug2_token_seq(t, p->app, p->chan);
    if (seq && seq < p->seq_hi)
        return ug_fail(err, UG_E_SEQ);
    return 0;
}

int ug2_wait_verify(ug2_wait *w, const uint8_t *dgram, size_t len, const ug2_peer *p, uint32_t *need_kv,
                    ug_err *err)
{
    ug_dgram d;
    w->has_token = false;
    if (ug2_dgram_decode(&d, dgram, len, err) != 0)
        return -1;
    if (d.type != UG_TYPE_WAIT)
        return ug_fail(err, UG_E_HEADER);
    if (ug2_wait_decode(w, d.body, d.body_len, err) != 0)
        return -1;
    if (memcmp(w->nonce, p->nonce, UG_NONCE_LEN) != 0)
        return ug_fail(err, UG_E_NONCE);
    if (w->has_token && ug2_token_verify(w, p, need_kv, err) != 0)
        return -1;
    if (err)
        *err = UG_OK;
    return 0;
}

void ug2_peer_note_token(ug2_peer *p, const ug2_wait *w)
{
    p->floor = max64(p->floor, w->tok.ts);
    p->fresh_at = max64(p->fresh_at, w->tok.ts);
}

bool ug2_peer_blocked(const ug2_peer *p, uint64_t max_age)
{
    uint64_t now = ug2_peer_now(p);
    return now > p->fresh_at && now - p->fresh_at >= max_age;
}
