/* Version 2's multi-signed objects (threshold signatures by key id) and its name rules. */
#include <stdio.h>
#include <string.h>

#include "mp.h"
#include "v2.h"

bool ug2_multisig_shape(ug2_multisig *m, const uint8_t *buf, size_t len)
{
    ug_rd r = {buf, buf + len};
    ug_rd_item a, b, s, e, k, g;
    if (ug_rd_head(&r, UG2_DEPTH_MULTISIG, &a) != 0 || a.kind != UG_RD_ARRAY || a.u != 2 ||
        ug_rd_head(&r, UG2_DEPTH_MULTISIG - 1, &b) != 0 || b.kind != UG_RD_BIN ||
        ug_rd_head(&r, UG2_DEPTH_MULTISIG - 1, &s) != 0 || s.kind != UG_RD_ARRAY || s.u < 1 || s.u > UG2_SIGS_MAX)
        return false;
    for (uint64_t i = 0; i < s.u; i++) {
        if (ug_rd_head(&r, 1, &e) != 0 || e.kind != UG_RD_ARRAY || e.u != 2 || ug_rd_head(&r, 0, &k) != 0 ||
            k.kind != UG_RD_BIN || k.u != UG_KID_LEN || ug_rd_head(&r, 0, &g) != 0 || g.kind != UG_RD_BIN ||
            g.u != UG_SIG_LEN)
            return false;
        m->kid[i] = k.ptr;
        m->sig[i] = g.ptr;
    }
    m->raw = buf, m->raw_len = len;
    m->body = b.ptr, m->body_len = (size_t)b.u;
    m->nsigs = (uint8_t)s.u;
    return r.p == r.end;
}

int ug2_multisig_decode(ug2_multisig *m, const uint8_t *buf, size_t len, size_t max, ug_err *err)
{
    if (len == 0 || len > max)
        return ug_fail(err, UG_E_SIZE);
    if (ug_rd_whole(buf, len, UG2_DEPTH_MULTISIG) != 0)
        return ug_fail(err, UG_E_MSGPACK);
    return ug2_multisig_shape(m, buf, len) ? 0 : ug_fail(err, UG_E_SCHEMA);
}

int ug2_multisig_of(ug2_multisig *m, const ug_rd_val *v, ug_err *err)
{
    return ug2_multisig_shape(m, v->ptr, v->len) ? 0 : ug_fail(err, UG_E_SCHEMA);
}

/* Only the first entry of a kid is ever looked at, so a key counts once
 * however often it appears, and at most UG2_KEYS_MAX signatures are
 * checked. */
static size_t count_upto(const ug2_multisig *m, const char *ctx, const ug_pubkey *keys, size_t n, size_t enough)
{
    size_t count = 0;
    for (unsigned i = 0; i < m->nsigs && count < enough; i++) {
        bool seen = false;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = memcmp(m->kid[j], m->kid[i], UG_KID_LEN) == 0;
        const ug_pubkey *k = seen ? NULL : ug_pubkey_find(keys, n, m->kid[i]);
        if (k && ug_verify(m->sig[i], ctx, m->body, m->body_len, k->pk) == 0)
            count++;
    }
    return count;
}

size_t ug2_multisig_count(const ug2_multisig *m, const char *ctx, const ug_pubkey *keys, size_t n)
{
    return count_upto(m, ctx, keys, n, SIZE_MAX);
}

int ug2_multisig_check(const ug2_multisig *m, const char *ctx, const ug_pubkey *keys, size_t n, unsigned t,
                       ug_err *err)
{
    if (t == 0 || count_upto(m, ctx, keys, n, t) < t) /* t 0 never decodes: fail closed */
        return ug_fail(err, UG_E_THRESHOLD);
    return 0;
}

int ug2_sig_make(ug2_sig *sig, const char *ctx, const uint8_t *body, size_t body_len, const uint8_t sk[UG_SK_LEN])
{
    ug_kid(sig->kid, sk + UG_SEED_LEN); /* libsodium's sk is seed || pk */
    return ug_sign(sig->sig, ctx, body, body_len, sk);
}

int ug2_multisig_encode(uint8_t *out, size_t cap, size_t *len, const uint8_t *body, size_t body_len,
                        const ug2_sig *sigs, size_t n)
{
    if (n < 1 || n > UG2_SIGS_MAX)
        return -1;
    ug_mp_out o;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_array(&o.pk, 2);
    ug_mp_out_bin(&o, body, body_len);
    msgpack_pack_array(&o.pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(&o.pk, 2);
        ug_mp_out_bin(&o, sigs[i].kid, UG_KID_LEN);
        ug_mp_out_bin(&o, sigs[i].sig, UG_SIG_LEN);
    }
    return ug_mp_out_done(&o, len);
}

int ug2_multisig_sign(uint8_t *out, size_t cap, size_t *len, const char *ctx, const uint8_t *body,
                      size_t body_len, const uint8_t *const *sks, size_t n)
{
    ug2_sig sigs[UG2_SIGS_MAX];
    if (n < 1 || n > UG2_SIGS_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (ug2_sig_make(&sigs[i], ctx, body, body_len, sks[i]) != 0)
            return -1;
    return ug2_multisig_encode(out, cap, len, body, body_len, sigs, n);
}

/* ---- names -------------------------------------------------------------- */

bool ug2_label_valid(const char *s, size_t len, size_t max)
{
    if (len < 1 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-' || c == '+'))
            return false;
    }
    return true;
}

bool ug2_keyring_url_valid(const char *url, size_t len)
{
    return ug_url_valid(url, len) && url[len - 1] == '/';
}

int ug2_keyring_url(char *out, size_t cap, const char *base, uint32_t kv)
{
    int n = snprintf(out, cap, "%s%u.keyring", base, (unsigned)kv);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int ug2_label_of(char *dst, const ug_rd_val *v, size_t max)
{
    if (!ug2_label_valid((const char *)v->ptr, v->len, max))
        return -1;
    memcpy(dst, v->ptr, v->len);
    dst[v->len] = 0;
    return 0;
}

int ug2_next_str(ug_rd *r, const uint8_t **p, size_t *len)
{
    ug_rd_item it;
    if (ug_rd_head(r, 0, &it) != 0 || it.kind != UG_RD_STR)
        return -1;
    *p = it.ptr;
    *len = (size_t)it.u;
    return 0;
}

int ug2_urls_of(char (*urls)[UG_URL_MAX + 1], uint8_t *n, const ug_rd_val *v, const uint8_t *end,
                bool (*ok)(const char *, size_t), ug_err *err)
{
    ug_rd r = {v->ptr, end};
    for (size_t i = 0; i < v->len; i++) {
        const uint8_t *p;
        size_t len;
        if (ug2_next_str(&r, &p, &len) != 0 || !ok((const char *)p, len))
            return ug_fail(err, UG_E_STRING);
        memcpy(urls[i], p, len);
        urls[i][len] = 0;
    }
    *n = (uint8_t)v->len;
    return 0;
}
