/* upgate-keys: several holders sign one version 2 object offline (sign), one combines their
 * signature files (combine), anyone checks the result (verify). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keys.h"

#define SIG_RAW (UG_PK_LEN + UG_SIG_LEN)
#define SIG_FILE_MAX 512u

/* ---- signature files: "# upgate signature KID CTX\n" then base64(pk || sig) ---- */

typedef struct {
    uint8_t pk[UG_PK_LEN];
    ug2_sig s;
} held_sig;

static void write_sig(const char *out, const uint8_t pk[UG_PK_LEN], const ug2_sig *s, const char *ctx)
{
    uint8_t raw[SIG_RAW];
    char text[SIG_FILE_MAX], hex[2 * UG_KID_LEN + 1], b64[sodium_base64_ENCODED_LEN(SIG_RAW, sodium_base64_VARIANT_ORIGINAL)];
    memcpy(raw, pk, UG_PK_LEN);
    memcpy(raw + UG_PK_LEN, s->sig, UG_SIG_LEN);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(text, sizeof text, "# upgate signature %s %s\n%s\n",
                     sodium_bin2hex(hex, sizeof hex, s->kid, UG_KID_LEN), ctx, b64);
    keys_write(out, text, (size_t)n);
}

/* A signature file, checked: its context is ctx and it verifies over body. */
static void read_sig(held_sig *h, const char *path, const char *ctx, const uint8_t *body, size_t body_len)
{
    uint8_t text[SIG_FILE_MAX + 1], raw[SIG_RAW];
    size_t len = keys_read(path, text, SIG_FILE_MAX);
    text[len] = 0;
    char hex[2 * UG_KID_LEN + 1], fctx[32], b64[200];
    size_t raw_len = 0;
    const char *end = NULL;
    int got = sscanf((const char *)text, "# upgate signature %16s %31s\n%199s", hex, fctx, b64);
    if (got != 3 || sodium_base642bin(raw, sizeof raw, b64, strlen(b64), NULL, &raw_len, &end,
                                      sodium_base64_VARIANT_ORIGINAL) != 0 || raw_len != SIG_RAW || *end)
        ug_die(UG_EXIT_FAIL, "%s: not a signature file (\"# upgate signature KID CONTEXT\", then base64)", path);
    if (strcmp(fctx, ctx) != 0)
        ug_die(UG_EXIT_FAIL, "%s: a signature under %s, not %s", path, fctx, ctx);
    memcpy(h->pk, raw, UG_PK_LEN);
    memcpy(h->s.sig, raw + UG_PK_LEN, UG_SIG_LEN);
    ug_kid(h->s.kid, h->pk);
    char want[2 * UG_KID_LEN + 1];
    if (strcmp(hex, sodium_bin2hex(want, sizeof want, h->s.kid, UG_KID_LEN)) != 0)
        ug_die(UG_EXIT_FAIL, "%s: names key id %s, but holds key %s", path, hex, want);
    if (ug_verify(h->s.sig, ctx, body, body_len, h->pk) != 0)
        ug_die(UG_EXIT_FAIL, "%s: does not verify over this body (signed another draft?)", path);
}

enum { S_KEY, S_IN, S_OUT, S_N };
static const keys_opt sign_opts[S_N] = {
    [S_KEY] = {"key", false, false}, [S_IN] = {"in", false, false}, [S_OUT] = {"out", false, false}};

int keys_cmd_sign(int argc, char **argv)
{
    keys_val v[S_N];
    keys_getopt(argc, argv, sign_opts, S_N, v);
    if (!v[S_KEY].n || !v[S_IN].n || !v[S_OUT].n)
        ug_usage_error("sign needs --key, --in and --out");
    static keys_obj o;
    keys_obj_read(&o, keys_one(&v[S_IN]));
    printf("signing this %s:\n", keys_kind_name(o.kind));
    if (keys_show2(keys_one(&v[S_IN])) != 0)
        return UG_EXIT_FAIL;
    uint8_t *sk = keys_secret(keys_one(&v[S_KEY]));
    ug2_sig s;
    uint8_t pk[UG_PK_LEN];
    memcpy(pk, sk + UG_SEED_LEN, UG_PK_LEN);
    int rc = ug2_sig_make(&s, keys_ctx(o.kind), o.body, o.body_len, sk);
    keys_secrets_wipe();
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "%s: cannot sign", keys_one(&v[S_IN]));
    write_sig(keys_one(&v[S_OUT]), pk, &s, keys_ctx(o.kind));
    char hex[2 * UG_KID_LEN + 1];
    printf("%s: signature of key %s\n", keys_one(&v[S_OUT]), sodium_bin2hex(hex, sizeof hex, s.kid, UG_KID_LEN));
    return UG_EXIT_OK;
}

/* ---- combine ---------------------------------------------------------- */

static void read_keyring(keys_obj *k, const keys_val *v, const char *flag)
{
    if (v->n)
        keys_keyring_read(k, keys_one(v), flag);
}

/* The threshold status of a combined object: under prev (a rotation) and
 * its own roots for a keyring, under kr for the others. */
static void report(const char *out, const keys_obj *o, const keys_obj *prev, const keys_obj *kr)
{
    ug2_multisig m;
    uint8_t raw[UG2_KEYRING_MAX];
    size_t len = keys_read(out, raw, sizeof raw);
    if (ug2_multisig_decode(&m, raw, len, UG2_KEYRING_MAX, NULL) != 0)
        return;
    const char *ctx = keys_ctx(o->kind);
    bool done = true;
    const keys_obj *against[2] = {o->kind == KIND_KEYRING ? prev : kr, o->kind == KIND_KEYRING ? o : NULL};
    for (int i = 0; i < 2; i++) {
        if (!against[i] || against[i]->kind != KIND_KEYRING)
            continue;
        unsigned n, t;
        const ug_pubkey *list = keys_list_of(&against[i]->u.kr, o->kind, &n, &t);
        size_t c = ug2_multisig_count(&m, ctx, list, n);
        printf("%s: %zu of the %s keys of keyring %u signed (threshold %u)\n", out, c,
               o->kind == KIND_KEYRING ? "root" : o->kind == KIND_CERT ? "certificate" : "release",
               against[i]->u.kr.kv, t);
        done = done && c >= t;
    }
    printf("%s: %s\n", out, done ? "complete" : "not yet complete: combine more signatures");
}

enum { M_IN, M_SIG, M_OUT, M_PREV, M_KEYRING, M_N };
static const keys_opt combine_opts[M_N] = {
    [M_IN] = {"in", false, false},     [M_SIG] = {"sig", true, false},         [M_OUT] = {"out", false, false},
    [M_PREV] = {"prev", false, false}, [M_KEYRING] = {"keyring", false, false},
};

int keys_cmd_combine(int argc, char **argv)
{
    keys_val v[M_N];
    keys_getopt(argc, argv, combine_opts, M_N, v);
    if (!v[M_IN].n || !v[M_SIG].n || !v[M_OUT].n)
        ug_usage_error("combine needs --in, --sig and --out");
    static keys_obj o, prev, kr;
    keys_obj_read(&o, keys_one(&v[M_IN]));
    read_keyring(&prev, &v[M_PREV], "prev");
    read_keyring(&kr, &v[M_KEYRING], "keyring");
    ug2_sig sigs[UG2_SIGS_MAX];
    size_t n = 0;
    for (unsigned i = 0; !o.is_body && i < o.ms.nsigs; i++) { /* the signatures it already has */
        memcpy(sigs[n].kid, o.ms.kid[i], UG_KID_LEN);
        memcpy(sigs[n++].sig, o.ms.sig[i], UG_SIG_LEN);
    }
    for (unsigned i = 0; i < v[M_SIG].n; i++) {
        held_sig h;
        read_sig(&h, v[M_SIG].v[i], keys_ctx(o.kind), o.body, o.body_len);
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = memcmp(sigs[j].kid, h.s.kid, UG_KID_LEN) == 0;
        if (dup) {
            fprintf(stderr, "%s: %s: this key signed already; skipped\n", ug_prog, v[M_SIG].v[i]);
            continue;
        }
        if (n == UG2_SIGS_MAX)
            ug_die(UG_EXIT_FAIL, "%s: more than %u signatures", v[M_SIG].v[i], UG2_SIGS_MAX);
        sigs[n++] = h.s;
    }
    uint8_t out[UG2_KEYRING_MAX];
    size_t len, cap = o.kind == KIND_KEYRING ? UG2_KEYRING_MAX : UG_OBJ_MAX;
    if (ug2_multisig_encode(out, cap, &len, o.body, o.body_len, sigs, n) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %zu signatures do not fit the %zu-byte cap of a %s", keys_one(&v[M_OUT]), n, cap,
               keys_kind_name(o.kind));
    keys_write(keys_one(&v[M_OUT]), out, len);
    printf("%s: %s, %zu bytes, %zu signatures\n", keys_one(&v[M_OUT]), keys_kind_name(o.kind), len, n);
    report(keys_one(&v[M_OUT]), &o, v[M_PREV].n ? &prev : NULL, v[M_KEYRING].n ? &kr : NULL);
    return UG_EXIT_OK;
}

/* ---- verify ------------------------------------------------------------- */

enum { V_KEYRING, V_PREV, V_ROOT, V_THRESHOLD, V_ANCHOR_KV, V_N };
static const keys_opt verify_opts[V_N] = {
    [V_KEYRING] = {"keyring", false, false}, [V_PREV] = {"prev", false, false},
    [V_ROOT] = {"root", true, false},        [V_THRESHOLD] = {"threshold", false, false},
    [V_ANCHOR_KV] = {"anchor-kv", false, false},
};

/* A keyring by the chain step from prev, from the pinned roots, or by its own roots. */
static int verify_keyring(const char *path, const keys_obj *o, const keys_val *v)
{
    static keys_obj prev;
    ug2_keyring held, next;
    bool anchor = false;
    ug_err e = UG_OK;
    if (v[V_PREV].n) {
        read_keyring(&prev, &v[V_PREV], "prev");
        held = prev.u.kr;
    } else if (v[V_ROOT].n) {
        uint8_t roots[UG2_KEYS_MAX][UG_PK_LEN];
        if (v[V_ROOT].n > UG2_KEYS_MAX)
            ug_usage_error("--root: at most %u", UG2_KEYS_MAX);
        for (unsigned i = 0; i < v[V_ROOT].n; i++)
            keys_public(v[V_ROOT].v[i], roots[i]);
        unsigned t = (unsigned)keys_u64(&v[V_THRESHOLD], "threshold", 1, UG2_KEYS_MAX, 1);
        uint32_t akv = (uint32_t)keys_u64(&v[V_ANCHOR_KV], "anchor-kv", 0, UINT32_MAX, 0);
        if (ug2_anchor_set(&held, akv, (const uint8_t(*)[UG_PK_LEN])roots, v[V_ROOT].n, t) != 0)
            ug_usage_error("--root, --threshold: distinct roots, 1 <= threshold <= their number");
        anchor = true;
    } else {
        if (ug2_keyring_self_check(&o->u.kr, &o->ms, &e) != 0)
            return ug_complain(UG_EXIT_FAIL, "%s: not signed by %u of its own roots (%s)", path, o->u.kr.root_t,
                               ug_err_name(e));
        printf("%s: keyring %u, signed by %u of its own roots\n", path, o->u.kr.kv, o->u.kr.root_t);
        return UG_EXIT_OK;
    }
    if (ug2_keyring_step(&held, anchor, o->raw, o->raw_len, &next, &e) != 0)
        return ug_complain(UG_EXIT_FAIL, "%s: refused after %s %u: %s", path, anchor ? "the anchor of version" : "keyring",
                           held.kv, ug_err_name(e));
    printf("%s: keyring %u follows %s %u\n", path, next.kv, anchor ? "the anchor of version" : "keyring", held.kv);
    return UG_EXIT_OK;
}

int keys_cmd_verify(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-')
        ug_usage_error("verify takes FILE first");
    const char *path = argv[1];
    keys_val v[V_N];
    keys_getopt(argc - 1, argv + 1, verify_opts, V_N, v);
    static keys_obj o, kr;
    keys_obj_read(&o, path);
    if (o.is_body)
        return ug_complain(UG_EXIT_FAIL, "%s: an unsigned %s body", path, keys_kind_name(o.kind));
    uint64_t now = ug_now();
    int rc = UG_EXIT_OK;
    ug_err e = UG_OK;
    if (o.kind == KIND_KEYRING) {
        rc = verify_keyring(path, &o, v);
    } else if (!v[V_KEYRING].n) {
        ug_usage_error("verify: a %s needs --keyring", keys_kind_name(o.kind));
    } else {
        read_keyring(&kr, &v[V_KEYRING], "keyring");
        ug2_cert_ctx x = {.kr = &kr.u.kr, .min_serial = kr.u.kr.min_serial, .now = now};
        uint32_t need = 0;
        unsigned n, t;
        const ug_pubkey *list = keys_list_of(&kr.u.kr, o.kind, &n, &t);
        if (o.kind == KIND_CERT ? ug2_cert_check(&o.u.cert, &o.ms, &x, now, &need, &e) != 0
                                : ug2_multisig_check(&o.ms, UG2_CTX_RELEASE, list, n, t, &e) != 0)
            rc = ug_complain(UG_EXIT_FAIL, "%s: refused under keyring %u: %s", path, kr.u.kr.kv, ug_err_name(e));
        else if (o.kind == KIND_MANIFEST && o.u.man.exp <= now)
            rc = ug_complain(UG_EXIT_FAIL, "%s: expired", path);
        else
            printf("%s: valid under keyring %u\n", path, kr.u.kr.kv);
    }
    if (rc == UG_EXIT_OK && o.kind == KIND_KEYRING && o.u.kr.exp <= now)
        printf("%s: note: keyring %u has expired (a peer walks through it; a tracker refuses to serve it)\n", path,
               o.u.kr.kv);
    return rc;
}
