/* Strict decoders of version 2's signed objects: keyring, hint certificate,
 * release manifest (with its deltas) and freshness token. Each matches its
 * table first (msgpack, then types), then checks content in table order. */
#include <string.h>

#include "v2.h"

/* A keyring key list: 1..8 bin 32 with distinct key ids. */
static int keys_of(ug_pubkey *keys, uint8_t *n, const ug_rd_val *v)
{
    ug_rd r = {v->ptr, v->ptr + v->len};
    ug_rd_item it;
    if (ug_rd_head(&r, 1, &it) != 0)
        return -1;
    for (uint64_t i = 0; i < it.u; i++) {
        ug_rd_item k;
        if (ug_rd_head(&r, 0, &k) != 0 || k.kind != UG_RD_BIN || k.u != UG_PK_LEN)
            return -1;
        ug_pubkey_set(&keys[i], k.ptr);
        if (ug_pubkey_find(keys, i, keys[i].kid))
            return -1;
    }
    *n = (uint8_t)it.u;
    return 0;
}

/* A key list and its threshold 1..n. */
static int list_of(ug_pubkey *keys, uint8_t *n, uint8_t *t, const ug_rd_val *lv, const ug_rd_val *tv)
{
    if (keys_of(keys, n, lv) != 0 || tv->u < 1 || tv->u > *n)
        return -1;
    *t = (uint8_t)tv->u;
    return 0;
}

int ug2_keyring_decode(ug2_keyring *k, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("kv", UG_RD_F_UINT, true, 0, 0),
        F("exp", UG_RD_F_UINT, true, 0, 0),
        F("root", UG_RD_F_ARRAY, true, 1, UG2_KEYS_MAX),
        F("root_t", UG_RD_F_UINT, true, 0, 0),
        F("rel", UG_RD_F_ARRAY, true, 1, UG2_KEYS_MAX),
        F("rel_t", UG_RD_F_UINT, true, 0, 0),
        F("cert", UG_RD_F_ARRAY, true, 1, UG2_KEYS_MAX),
        F("cert_t", UG_RD_F_UINT, true, 0, 0),
        F("min_serial", UG_RD_F_UINT, true, 0, 0),
        F("urls", UG_RD_F_STRARRAY, false, 1, UG2_KR_URLS_MAX),
    };
    ug_rd_val v[10];
    ug_err e;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 10, v, &e) != 0)
        return ug_fail(err, e);
    if (v[0].u < 1 || v[0].u > UINT32_MAX || list_of(k->root, &k->nroot, &k->root_t, &v[2], &v[3]) != 0 ||
        list_of(k->rel, &k->nrel, &k->rel_t, &v[4], &v[5]) != 0 ||
        list_of(k->cert, &k->ncert, &k->cert_t, &v[6], &v[7]) != 0)
        return ug_fail(err, UG_E_SCHEMA);
    k->kv = (uint32_t)v[0].u;
    k->exp = v[1].u;
    k->min_serial = v[8].u;
    k->nurls = 0;
    if (v[9].present)
        return ug2_urls_of(k->urls, &k->nurls, &v[9], body + len, ug2_keyring_url_valid, err);
    return 0;
}

int ug2_keyring_open(ug2_keyring *k, ug2_multisig *m, const uint8_t *doc, size_t len, ug_err *err)
{
    if (ug2_multisig_decode(m, doc, len, UG2_KEYRING_MAX, err) != 0)
        return -1;
    return ug2_keyring_decode(k, m->body, m->body_len, err);
}

int ug2_cert_decode(ug2_cert *c, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("pk", UG_RD_F_BIN, true, UG_PK_LEN, UG_PK_LEN),
        F("kid", UG_RD_F_BIN, true, UG_KID_LEN, UG_KID_LEN),
        F("serial", UG_RD_F_UINT, true, 0, 0),
        F("nbf", UG_RD_F_UINT, true, 0, 0),
        F("exp", UG_RD_F_UINT, true, 0, 0),
        F("kv", UG_RD_F_UINT, true, 0, 0),
        F("trk", UG_RD_F_STR, false, 1, UG2_LABEL_MAX),
    };
    ug_rd_val v[7];
    ug_err e;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 7, v, &e) != 0)
        return ug_fail(err, e);
    memcpy(c->pk, v[0].ptr, UG_PK_LEN);
    ug_kid(c->kid, c->pk);
    if (memcmp(c->kid, v[1].ptr, UG_KID_LEN) != 0 || v[5].u < 1 || v[5].u > UINT32_MAX)
        return ug_fail(err, UG_E_SCHEMA);
    c->serial = v[2].u;
    c->nbf = v[3].u;
    c->exp = v[4].u;
    c->kv = (uint32_t)v[5].u;
    c->trk[0] = 0;
    if (v[6].present && ug2_label_of(c->trk, &v[6], UG2_LABEL_MAX) != 0)
        return ug_fail(err, UG_E_STRING);
    return 0;
}

int ug2_cert_open(ug2_cert *c, ug2_multisig *m, const uint8_t *obj, size_t len, ug_err *err)
{
    if (ug2_multisig_decode(m, obj, len, UG_OBJ_MAX, err) != 0)
        return -1;
    return ug2_cert_decode(c, m->body, m->body_len, err);
}

/* ---- manifest ------------------------------------------------------------ */

/* One `deltas` item, span p[0..len) (a map two levels deep at most). */
static int delta_of(ug2_delta *d, const uint8_t *p, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("from", UG_RD_F_STR, true, 1, UG_VER_MAX),
        F("size", UG_RD_F_UINT, true, 0, 0),
        F("hash", UG_RD_F_BIN, true, UG_HASH_LEN, UG_HASH_LEN),
        F("urls", UG_RD_F_STRARRAY, true, 1, UG_URLS_MAX),
    };
    ug_rd_val v[4];
    ug_err e;
    if (ug_rd_map(p, len, UG2_DEPTH_BODY - 2, f, 4, v, &e) != 0)
        return ug_fail(err, e);
    if (ug_version_parse(&d->from, (const char *)v[0].ptr, v[0].len) != 0)
        return ug_fail(err, UG_E_VERSION);
    d->size = v[1].u;
    memcpy(d->hash, v[2].ptr, UG_HASH_LEN);
    return ug2_urls_of(d->urls, &d->nurls, &v[3], p + len, ug_url_valid, err);
}

/* Index of the delta from v among the first n, or -1. */
static int delta_index(const ug2_manifest *m, size_t n, const ug_version *v)
{
    for (size_t i = 0; i < n; i++)
        if (ug_version_cmp(&m->deltas[i].from, v) == 0)
            return (int)i;
    return -1;
}

int ug2_manifest_delta_for(const ug2_manifest *m, const ug_version *v)
{
    return delta_index(m, m->ndeltas, v);
}

/* The `deltas` array: each item a delta, none from `to`, no two from one version. */
static int deltas_of(ug2_manifest *m, const ug_rd_val *v, ug_err *err)
{
    ug_rd r = {v->ptr, v->ptr + v->len};
    ug_rd_item it;
    if (ug_rd_head(&r, 3, &it) != 0)
        return ug_fail(err, UG_E_SCHEMA);
    for (uint64_t i = 0; i < it.u; i++) {
        const uint8_t *start = r.p;
        if (ug_rd_skip(&r, 2) != 0 || delta_of(&m->deltas[i], start, (size_t)(r.p - start), err) != 0)
            return -1;
        if (ug_version_cmp(&m->deltas[i].from, &m->to) == 0 || delta_index(m, i, &m->deltas[i].from) >= 0)
            return ug_fail(err, UG_E_SCHEMA);
    }
    m->ndeltas = (uint8_t)it.u;
    return 0;
}

/* `plat`: 1..8 labels, no two alike. */
static int plats_of(ug2_manifest *m, const ug_rd_val *v, const uint8_t *end, ug_err *err)
{
    ug_rd r = {v->ptr, end};
    for (size_t i = 0; i < v->len; i++) {
        const uint8_t *p;
        size_t len;
        if (ug2_next_str(&r, &p, &len) != 0 || !ug2_label_valid((const char *)p, len, UG2_LABEL_MAX))
            return ug_fail(err, UG_E_STRING);
        memcpy(m->plat[i], p, len);
        m->plat[i][len] = 0;
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->plat[j], m->plat[i]) == 0)
                return ug_fail(err, UG_E_SCHEMA);
    }
    m->nplat = (uint8_t)v->len;
    return 0;
}

/* Content rules after the table matched, in table order (protocol-v2.md 4.3). */
static int manifest_content(ug2_manifest *m, const ug_rd_val *v, const uint8_t *end, ug_err *err)
{
    if (ug_version_parse(&m->to, (const char *)v[0].ptr, v[0].len) != 0)
        return ug_fail(err, UG_E_VERSION);
    if (ug2_urls_of(m->urls, &m->nurls, &v[1], end, ug_url_valid, err) != 0)
        return -1;
    m->size = v[2].u;
    memcpy(m->hash, v[3].ptr, UG_HASH_LEN);
    m->exp = v[4].u;
    if (ug2_label_of(m->app, &v[5], UG2_LABEL_MAX) != 0)
        return ug_fail(err, UG_E_STRING);
    if (plats_of(m, &v[6], end, err) != 0)
        return -1;
    if (ug2_label_of(m->chan, &v[7], UG2_CHAN_MAX) != 0)
        return ug_fail(err, UG_E_STRING);
    if (v[8].u < 1 || v[8].u > UG2_SEQ_MAX || v[9].u > UG2_URGENCY_CRITICAL || (v[11].present && v[11].u < 1))
        return ug_fail(err, UG_E_SCHEMA);
    m->seq = v[8].u;
    m->urgency = (uint8_t)v[9].u;
    m->downgrade = v[10].present;
    m->min_serial = v[11].present ? v[11].u : 0;
    m->ndeltas = m->nkeyring = 0;
    if (v[12].present && deltas_of(m, &v[12], err) != 0)
        return -1;
    if (v[13].present)
        return ug2_urls_of(m->keyring, &m->nkeyring, &v[13], end, ug2_keyring_url_valid, err);
    return 0;
}

int ug2_manifest_decode(ug2_manifest *m, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("to", UG_RD_F_STR, true, 1, UG_VER_MAX),
        F("urls", UG_RD_F_STRARRAY, true, 1, UG_URLS_MAX),
        F("size", UG_RD_F_UINT, true, 0, 0),
        F("hash", UG_RD_F_BIN, true, UG_HASH_LEN, UG_HASH_LEN),
        F("exp", UG_RD_F_UINT, true, 0, 0),
        F("app", UG_RD_F_STR, true, 1, UG2_LABEL_MAX),
        F("plat", UG_RD_F_STRARRAY, true, 1, UG2_PLATS_MAX),
        F("chan", UG_RD_F_STR, true, 1, UG2_CHAN_MAX),
        F("seq", UG_RD_F_UINT, true, 0, 0),
        F("urgency", UG_RD_F_UINT, true, 0, 0),
        F("downgrade", UG_RD_F_TRUE, false, 0, 0),
        F("min_serial", UG_RD_F_UINT, false, 0, 0),
        F("deltas", UG_RD_F_ARRAY, false, 1, UG2_DELTAS_MAX),
        F("keyring", UG_RD_F_STRARRAY, false, 1, UG2_KR_URLS_MAX),
    };
    ug_rd_val v[14];
    ug_err e;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 14, v, &e) != 0)
        return ug_fail(err, e);
    return manifest_content(m, v, body + len, err);
}

int ug2_manifest_open(ug2_manifest *m, ug2_multisig *ms, const uint8_t *obj, size_t len, ug_err *err)
{
    if (ug2_multisig_decode(ms, obj, len, UG_OBJ_MAX, err) != 0)
        return -1;
    return ug2_manifest_decode(m, ms->body, ms->body_len, err);
}

/* ---- token ------------------------------------------------------------------ */

/* One `seqs` entry [app, chan, seq]: its shape (UG_E_SCHEMA), then its labels (UG_E_STRING). */
static int seq_of(ug2_seq *s, ug_rd *r, ug_err *err)
{
    ug_rd_item a, app, chan, seq;
    if (ug_rd_head(r, 2, &a) != 0 || a.kind != UG_RD_ARRAY || a.u != 3 || ug_rd_head(r, 1, &app) != 0 ||
        ug_rd_skip_items(r, 1, &app) != 0 || ug_rd_head(r, 1, &chan) != 0 || ug_rd_skip_items(r, 1, &chan) != 0 ||
        ug_rd_head(r, 1, &seq) != 0 || ug_rd_skip_items(r, 1, &seq) != 0 || app.kind != UG_RD_STR ||
        chan.kind != UG_RD_STR || seq.kind != UG_RD_UINT)
        return ug_fail(err, UG_E_SCHEMA);
    if (!ug2_label_valid((const char *)app.ptr, (size_t)app.u, UG2_LABEL_MAX) ||
        !ug2_label_valid((const char *)chan.ptr, (size_t)chan.u, UG2_CHAN_MAX))
        return ug_fail(err, UG_E_STRING);
    memcpy(s->app, app.ptr, (size_t)app.u);
    s->app[app.u] = 0;
    memcpy(s->chan, chan.ptr, (size_t)chan.u);
    s->chan[chan.u] = 0;
    s->seq = seq.u;
    return 0;
}

static int seqs_of(ug2_token *t, const ug_rd_val *v, ug_err *err)
{
    ug_rd r = {v->ptr, v->ptr + v->len};
    ug_rd_item it;
    if (ug_rd_head(&r, 3, &it) != 0)
        return ug_fail(err, UG_E_SCHEMA);
    for (uint64_t i = 0; i < it.u; i++) {
        if (seq_of(&t->seqs[i], &r, err) != 0)
            return -1;
        t->nseqs = (uint8_t)i;
        uint64_t seq = t->seqs[i].seq;
        if (ug2_token_seq(t, t->seqs[i].app, t->seqs[i].chan) != 0 || seq == 0 || seq > UG2_SEQ_MAX)
            return ug_fail(err, UG_E_SCHEMA);
    }
    t->nseqs = (uint8_t)it.u;
    return 0;
}

int ug2_token_decode(ug2_token *t, const uint8_t *body, size_t len, ug_err *err)
{
    static const ug_rd_field f[] = {
        F("trk", UG_RD_F_STR, true, 1, UG2_LABEL_MAX),
        F("ts", UG_RD_F_UINT, true, 0, 0),
        F("exp", UG_RD_F_UINT, true, 0, 0),
        F("kv", UG_RD_F_UINT, true, 0, 0),
        F("seqs", UG_RD_F_ARRAY, true, 0, UG2_SEQS_MAX),
    };
    ug_rd_val v[5];
    ug_err e;
    if (ug_rd_map(body, len, UG2_DEPTH_BODY, f, 5, v, &e) != 0)
        return ug_fail(err, e);
    if (ug2_label_of(t->trk, &v[0], UG2_LABEL_MAX) != 0)
        return ug_fail(err, UG_E_STRING);
    if (v[3].u < 1 || v[3].u > UINT32_MAX)
        return ug_fail(err, UG_E_SCHEMA);
    t->ts = v[1].u;
    t->exp = v[2].u;
    t->kv = (uint32_t)v[3].u;
    t->nseqs = 0;
    return seqs_of(t, &v[4], err);
}

uint64_t ug2_token_seq(const ug2_token *t, const char *app, const char *chan)
{
    for (unsigned i = 0; i < t->nseqs; i++)
        if (strcmp(t->seqs[i].app, app) == 0 && strcmp(t->seqs[i].chan, chan) == 0)
            return t->seqs[i].seq;
    return 0;
}
