/* The vector generator's tools: fixed keys, the map editor, faulty multi-signing, JSON output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gen.h"
#include "mp.h"

uint8_t g_sk[K_N][UG_SK_LEN];
uint8_t g_pk[K_N][UG_PK_LEN];

static const char *const key_names[K_N] = {
    "root1", "root2", "root3", "root4", "rel1", "rel2", "rel3", "cert1", "cert2",
    "hint1", "hint2", "issuer", "client", "stranger",
};

void gen_die(const char *what)
{
    fprintf(stderr, "gen-vectors-v2: %s\n", what);
    exit(1);
}

void gen_keys(json_t *keys_out)
{
    if (sodium_init() < 0)
        gen_die("libsodium");
    for (int i = 0; i < K_N; i++) {
        uint8_t seed[UG_SEED_LEN], kid[UG_KID_LEN];
        /* issuer and client keep their version 1 seeds (keys.json: 01.., 02..) */
        memset(seed, i == K_ISSUER ? 0x01 : i == K_CLIENT ? 0x02 : 0xa0 + i, sizeof seed);
        crypto_sign_seed_keypair(g_pk[i], g_sk[i], seed);
        ug_kid(kid, g_pk[i]);
        char *s = gen_hex(seed, sizeof seed), *p = gen_hex(g_pk[i], UG_PK_LEN), *k = gen_hex(kid, UG_KID_LEN);
        json_object_set_new(keys_out, key_names[i], json_pack("{s:s, s:s, s:s}", "seed", s, "pk", p, "kid", k));
        free(s), free(p), free(k);
    }
}

/* ---- map editor ------------------------------------------------------------ */

static size_t key_of(uint8_t *out, const char *key)
{
    size_t n = strlen(key);
    out[0] = (uint8_t)(0xa0 | n);
    memcpy(out + 1, key, n);
    return n + 1;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* The end of the msgpack object at p, canonical or not (the editor must
 * read back the non-canonical forms it writes); NULL past end. */
static const uint8_t *skip(const uint8_t *p, const uint8_t *end)
{
    if (p >= end)
        return NULL;
    uint8_t b = *p++;
    uint64_t items = 0, raw = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return p;
    if (b <= 0x8f)
        items = 2u * (b & 0x0f);
    else if (b <= 0x9f)
        items = b & 0x0f;
    else if (b <= 0xbf)
        raw = b & 0x1f;
    else if (b >= 0xc4 && b <= 0xc6)
        raw = be(p, 1u << (b - 0xc4)), p += 1u << (b - 0xc4);
    else if (b >= 0xd9 && b <= 0xdb)
        raw = be(p, 1u << (b - 0xd9)), p += 1u << (b - 0xd9);
    else if (b == 0xca || b == 0xcb)
        raw = b == 0xca ? 4 : 8;
    else if (b >= 0xcc && b <= 0xd3)
        raw = 1u << ((b - 0xcc) & 3);
    else if (b >= 0xdc && b <= 0xdf)
        items = be(p, b & 1 ? 4 : 2) * (b >= 0xde ? 2 : 1), p += b & 1 ? 4 : 2;
    else
        return NULL;
    if (p > end || raw > (uint64_t)(end - p))
        return NULL;
    p += raw;
    for (uint64_t i = 0; i < items && p; i++)
        p = skip(p, end);
    return p;
}

void gm_load(gen_map *m, const uint8_t *body, size_t len)
{
    const uint8_t *p = body + 1, *end = body + len;
    memset(m, 0, sizeof *m);
    uint64_t n = body[0] & 0x0f;
    if (len == 0 || (body[0] & 0xf0) != 0x80)
        gen_die("gm_load: not a fixmap");
    for (uint64_t i = 0; i < n; i++) {
        gen_ent *e = &m->e[m->n++];
        const uint8_t *v = skip(p, end), *next = v ? skip(v, end) : NULL;
        if (!next || (size_t)(v - p) > sizeof e->k || (size_t)(next - v) > sizeof e->v)
            gen_die("gm_load: entry");
        e->klen = (size_t)(v - p);
        memcpy(e->k, p, e->klen);
        e->vlen = (size_t)(next - v);
        memcpy(e->v, v, e->vlen);
        p = next;
    }
}

static gen_ent *find(gen_map *m, const char *key)
{
    uint8_t k[40];
    size_t kl = key_of(k, key);
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].klen == kl && memcmp(m->e[i].k, k, kl) == 0)
            return &m->e[i];
    return NULL;
}

void gm_set(gen_map *m, const char *key, const uint8_t *v, size_t vlen)
{
    gen_ent *e = find(m, key);
    if (!e) {
        e = &m->e[m->n++];
        e->klen = key_of(e->k, key);
    }
    memcpy(e->v, v, vlen);
    e->vlen = vlen;
}

void gm_set_hex(gen_map *m, const char *key, const char *hex)
{
    uint8_t v[4300];
    size_t n;
    if (sodium_hex2bin(v, sizeof v, hex, strlen(hex), " ", &n, NULL) != 0)
        gen_die("gm_set_hex");
    gm_set(m, key, v, n);
}

void gm_set_uint(gen_map *m, const char *key, uint64_t v)
{
    uint8_t b[16];
    ug_mp_out o;
    size_t n;
    ug_mp_out_init(&o, b, sizeof b);
    ug_mp_out_uint(&o, v);
    if (ug_mp_out_done(&o, &n) != 0)
        gen_die("gm_set_uint");
    gm_set(m, key, b, n);
}

void gm_set_str(gen_map *m, const char *key, const char *s)
{
    uint8_t b[300];
    ug_mp_out o;
    size_t n;
    ug_mp_out_init(&o, b, sizeof b);
    ug_mp_out_str(&o, s, strlen(s));
    if (ug_mp_out_done(&o, &n) != 0)
        gen_die("gm_set_str");
    gm_set(m, key, b, n);
}

void gm_del(gen_map *m, const char *key)
{
    gen_ent *e = find(m, key);
    if (!e)
        gen_die("gm_del: no such key");
    size_t i = (size_t)(e - m->e);
    memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *e);
    m->n--;
}

void gm_dup(gen_map *m, const char *key)
{
    gen_ent *e = find(m, key);
    if (!e)
        gen_die("gm_dup: no such key");
    m->e[m->n++] = *e;
}

void gm_key_str8(gen_map *m, const char *key)
{
    gen_ent *e = find(m, key);
    if (!e)
        gen_die("gm_key_str8: no such key");
    size_t n = strlen(key);
    e->k[0] = 0xd9;
    e->k[1] = (uint8_t)n;
    memcpy(e->k + 2, key, n);
    e->klen = n + 2;
}

size_t gm_save(const gen_map *m, uint8_t *out, size_t cap)
{
    size_t len = 0;
    if (m->force_hdr) {
        out[len++] = (uint8_t)m->force_hdr;
        out[len++] = 0;
        out[len++] = (uint8_t)m->n;
    } else {
        out[len++] = (uint8_t)(0x80 | m->n);
    }
    for (size_t i = 0; i < m->n; i++) {
        if (len + m->e[i].klen + m->e[i].vlen > cap)
            gen_die("gm_save: too long");
        memcpy(out + len, m->e[i].k, m->e[i].klen);
        len += m->e[i].klen;
        memcpy(out + len, m->e[i].v, m->e[i].vlen);
        len += m->e[i].vlen;
    }
    return len;
}

size_t gen_edit_body(uint8_t *body, size_t len, size_t cap, gen_edit fn)
{
    static gen_map m;
    if (!fn)
        return len;
    gm_load(&m, body, len);
    fn(&m);
    return gm_save(&m, body, cap);
}

/* ---- signing ------------------------------------------------------------------ */

void gen_plus_l(uint8_t sig[UG_SIG_LEN])
{
    static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                  0xa2, 0xde, 0xf9, 0xde, 0x14, [31] = 0x10};
    unsigned carry = 0;
    for (unsigned i = 0; i < 32; i++) {
        carry += (unsigned)sig[32 + i] + L[i];
        sig[32 + i] = (uint8_t)carry;
        carry >>= 8;
    }
    if (carry)
        gen_die("S + L overflowed");
}

/* ug_sign for any body length: the oversize vectors sign bodies above UG_OBJ_MAX. */
static void sign_any(uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t len, int key)
{
    size_t clen = strlen(ctx);
    uint8_t *msg = malloc(clen + 1 + len);
    if (!msg)
        gen_die("out of memory");
    memcpy(msg, ctx, clen);
    msg[clen] = 0;
    memcpy(msg + clen + 1, body, len);
    crypto_sign_detached(sig, NULL, msg, clen + 1 + len, g_sk[key]);
    free(msg);
}

static void fault_sig(uint8_t sig[UG_SIG_LEN], int fault)
{
    if (fault == 1)
        gen_plus_l(sig);
    else if (fault == 2)
        sig[40] ^= 0x01;
}

size_t gen_multisig(uint8_t *out, size_t cap, const char *ctx, const uint8_t *body, size_t len,
                    const gen_sig *s, size_t n)
{
    ug2_sig sigs[UG2_SIGS_MAX + 2];
    if (n > UG2_SIGS_MAX + 2)
        gen_die("gen_multisig: too many");
    for (size_t i = 0; i < n; i++) {
        int by = s[i].by < 0 ? s[i].key : s[i].by;
        sign_any(sigs[i].sig, ctx, body, len, by);
        ug_kid(sigs[i].kid, g_pk[s[i].key]);
        fault_sig(sigs[i].sig, s[i].fault);
    }
    /* the encoder refuses more than 16 entries: write them by hand then */
    ug_mp_out o;
    size_t olen;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_array(&o.pk, 2);
    ug_mp_out_bin(&o, body, len);
    msgpack_pack_array(&o.pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(&o.pk, 2);
        ug_mp_out_bin(&o, sigs[i].kid, UG_KID_LEN);
        ug_mp_out_bin(&o, sigs[i].sig, UG_SIG_LEN);
    }
    if (ug_mp_out_done(&o, &olen) != 0)
        gen_die("gen_multisig: too long");
    return olen;
}

size_t gen_seal(uint8_t *out, size_t cap, unsigned version, ug_type t, const uint8_t *body, size_t len,
                const char *ctx, int key, int fault)
{
    uint8_t sig[UG_SIG_LEN];
    ug_mp_out o;
    size_t olen;
    ug_mp_out_init(&o, out, cap);
    msgpack_pack_array(&o.pk, 5);
    ug_mp_out_str(&o, "UG", 2);
    ug_mp_out_uint(&o, version);
    ug_mp_out_uint(&o, (uint64_t)t);
    ug_mp_out_bin(&o, body, len);
    if (ctx) {
        sign_any(sig, ctx, body, len, key);
        fault_sig(sig, fault);
        ug_mp_out_bin(&o, sig, UG_SIG_LEN);
    } else {
        msgpack_pack_nil(&o.pk);
    }
    if (ug_mp_out_done(&o, &olen) != 0)
        gen_die("gen_seal: too long");
    return olen;
}

/* ---- JSON ---------------------------------------------------------------------- */

char *gen_hex(const uint8_t *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    if (!s)
        gen_die("out of memory");
    sodium_bin2hex(s, 2 * n + 1, p, n);
    return s;
}

json_t *gen_vec(json_t *arr, const char *name, ug_err want, const uint8_t *bytes, size_t len)
{
    char *hex = gen_hex(bytes, len);
    json_t *v = json_pack("{s:s, s:s}", "name", name, "expect", want == UG_OK ? "accept" : "refuse");
    if (want != UG_OK)
        json_object_set_new(v, "error", json_string(ug_err_name(want)));
    json_object_set_new(v, "hex", json_string(hex));
    free(hex);
    json_array_append_new(arr, v);
    return v;
}

void gen_write(const char *dir, const char *file, json_t *j)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (json_dump_file(j, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0)
        gen_die(path);
    FILE *f = fopen(path, "a"); /* a final newline, as an editor leaves it */
    if (!f || fputc('\n', f) == EOF || fclose(f) != 0)
        gen_die(path);
    json_decref(j);
}
