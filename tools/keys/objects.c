/* upgate-keys: the version 2 objects a publisher makes offline: keyrings (and their rotations and
 * revocations), hint certificates, bound release manifests. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keys.h"

/* ---- keyrings ------------------------------------------------------- */

/* Public key files into a keyring list; two files of one key are refused. */
static void read_list(ug_pubkey *list, uint8_t *n, const keys_val *v, const char *flag)
{
    if (v->n > UG2_KEYS_MAX)
        ug_usage_error("--%s: at most %u keys", flag, UG2_KEYS_MAX);
    for (unsigned i = 0; i < v->n; i++) {
        uint8_t pk[UG_PK_LEN];
        keys_public(v->v[i], pk);
        ug_pubkey_set(&list[i], pk);
        if (ug_pubkey_find(list, i, list[i].kid))
            ug_usage_error("--%s %s: this key is already in the list", flag, v->v[i]);
    }
    *n = (uint8_t)v->n;
}

static void threshold(uint8_t *t, uint8_t n, const keys_val *v, const char *flag)
{
    *t = (uint8_t)keys_u64(v, flag, 1, UG2_KEYS_MAX, *t);
    if (*t < 1 || *t > n)
        ug_usage_error("--%s: %u, but the list has %u key%s", flag, *t, n, n == 1 ? "" : "s");
}

/* --replace OLD.pub=NEW.pub: the list that holds OLD gets NEW in its place. */
static void replace(ug2_keyring *k, const char *arg)
{
    char old_path[4096];
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1] || (size_t)(eq - arg) >= sizeof old_path)
        ug_usage_error("--replace: not OLD.pub=NEW.pub: %s", arg);
    memcpy(old_path, arg, (size_t)(eq - arg));
    old_path[eq - arg] = 0;
    uint8_t opk[UG_PK_LEN], npk[UG_PK_LEN];
    keys_public(old_path, opk);
    keys_public(eq + 1, npk);
    ug_pubkey o, nw;
    ug_pubkey_set(&o, opk);
    ug_pubkey_set(&nw, npk);
    ug_pubkey *lists[3] = {k->root, k->rel, k->cert};
    uint8_t ns[3] = {k->nroot, k->nrel, k->ncert};
    bool found = false;
    for (int i = 0; i < 3; i++) {
        ug_pubkey *hit = (ug_pubkey *)ug_pubkey_find(lists[i], ns[i], o.kid);
        if (!hit)
            continue;
        if (ug_pubkey_find(lists[i], ns[i], nw.kid))
            ug_usage_error("--replace %s: %s is already in that list", arg, eq + 1);
        *hit = nw;
        found = true;
    }
    if (!found)
        ug_usage_error("--replace %s: %s is in none of the previous keyring's lists", arg, old_path);
}

enum { K_KV, K_TTL, K_ROOT, K_ROOT_T, K_REL, K_REL_T, K_CERT, K_CERT_T, K_MIN, K_URL, K_FROM, K_REPLACE, K_KEY,
       K_OUT, K_N };
static const keys_opt keyring_opts[K_N] = {
    [K_KV] = {"kv", false, false},           [K_TTL] = {"ttl", false, false},
    [K_ROOT] = {"root", true, false},        [K_ROOT_T] = {"root-threshold", false, false},
    [K_REL] = {"release", true, false},      [K_REL_T] = {"release-threshold", false, false},
    [K_CERT] = {"cert", true, false},        [K_CERT_T] = {"cert-threshold", false, false},
    [K_MIN] = {"min-serial", false, false},  [K_URL] = {"url", true, false},
    [K_FROM] = {"from", false, false},       [K_REPLACE] = {"replace", true, false},
    [K_KEY] = {"key", true, false},          [K_OUT] = {"out", false, false},
};

/* What a signed rotation still needs: says it, so holders know whether to
 * combine more signatures. */
static void report_rotation(const char *out, const ug2_keyring *prev, const ug2_keyring *k)
{
    uint8_t obj[UG2_KEYRING_MAX];
    size_t len = keys_read(out, obj, sizeof obj);
    ug2_multisig m;
    if (ug2_multisig_decode(&m, obj, len, UG2_KEYRING_MAX, NULL) != 0)
        return; /* an unsigned body */
    size_t a = ug2_multisig_count(&m, UG2_CTX_KEYRING, prev->root, prev->nroot);
    size_t b = ug2_multisig_count(&m, UG2_CTX_KEYRING, k->root, k->nroot);
    printf("%s: signed by %zu of keyring %u's roots (threshold %u) and %zu of its own (threshold %u)%s\n", out, a,
           prev->kv, prev->root_t, b, k->root_t,
           a >= prev->root_t && b >= k->root_t ? ": complete" : ": combine more signatures before publishing it");
}

/* The keyring being built: the previous one's (--from), then the options over it. */
static void keyring_fields(ug2_keyring *k, const keys_val *v, const ug2_keyring *prev, const char *cmd)
{
    if (prev) {
        *k = *prev;
        if (prev->kv == UINT32_MAX)
            ug_usage_error("--from: keyring version %u is the last one", prev->kv);
        k->kv = prev->kv + 1;
        if (v[K_KV].n && keys_u64(&v[K_KV], "kv", 1, UINT32_MAX, 0) != k->kv)
            ug_usage_error("--kv: a keyring after version %u is version %u", prev->kv, k->kv);
    } else {
        if (!v[K_KV].n || !v[K_ROOT].n || !v[K_REL].n || !v[K_CERT].n)
            ug_usage_error("%s needs --kv, --root, --release and --cert (or --from PREV.keyring)", cmd);
        k->kv = (uint32_t)keys_u64(&v[K_KV], "kv", 1, UINT32_MAX, 0);
        k->root_t = k->rel_t = k->cert_t = 1;
    }
    if (v[K_ROOT].n)
        read_list(k->root, &k->nroot, &v[K_ROOT], "root");
    if (v[K_REL].n)
        read_list(k->rel, &k->nrel, &v[K_REL], "release");
    if (v[K_CERT].n)
        read_list(k->cert, &k->ncert, &v[K_CERT], "cert");
    for (unsigned i = 0; i < v[K_REPLACE].n; i++)
        replace(k, v[K_REPLACE].v[i]);
    threshold(&k->root_t, k->nroot, &v[K_ROOT_T], "root-threshold");
    threshold(&k->rel_t, k->nrel, &v[K_REL_T], "release-threshold");
    threshold(&k->cert_t, k->ncert, &v[K_CERT_T], "cert-threshold");
    k->min_serial = keys_u64(&v[K_MIN], "min-serial", 0, UINT64_MAX, k->min_serial);
    if (v[K_URL].n) {
        if (v[K_URL].n > UG2_KR_URLS_MAX)
            ug_usage_error("--url: at most %u keyring URLs", UG2_KR_URLS_MAX);
        for (unsigned i = 0; i < v[K_URL].n; i++) {
            const char *u = v[K_URL].v[i];
            char shown[300];
            if (!ug2_keyring_url_valid(u, strlen(u)))
                ug_usage_error("--url: not an http(s) URL ending with \"/\", of at most 200 printable bytes: \"%s\"",
                               keys_shown(u, shown, sizeof shown));
            snprintf(k->urls[i], sizeof k->urls[i], "%s", u);
        }
        k->nurls = (uint8_t)v[K_URL].n;
    }
    k->exp = ug_now() + keys_u64(&v[K_TTL], "ttl", 1, UINT32_MAX, 0);
}

int keys_cmd_keyring(int argc, char **argv)
{
    const char *cmd = argv[0];
    keys_val v[K_N];
    keys_getopt(argc, argv, keyring_opts, K_N, v);
    if (!v[K_TTL].n || !v[K_OUT].n)
        ug_usage_error("%s needs --ttl and --out", cmd);
    bool rotate = !strcmp(cmd, "rotate"), revoke = !strcmp(cmd, "revoke");
    if ((rotate || revoke) && !v[K_FROM].n)
        ug_usage_error("%s needs --from PREV.keyring", cmd);
    if (rotate && !v[K_REPLACE].n)
        ug_usage_error("rotate needs --replace OLD.pub=NEW.pub");
    if (revoke && !v[K_MIN].n)
        ug_usage_error("revoke needs --min-serial N");
    if (v[K_REPLACE].n && !v[K_FROM].n)
        ug_usage_error("--replace needs --from PREV.keyring");
    static keys_obj prev;
    if (v[K_FROM].n)
        keys_keyring_read(&prev, keys_one(&v[K_FROM]), "from");
    ug2_keyring k;
    memset(&k, 0, sizeof k);
    keyring_fields(&k, v, v[K_FROM].n ? &prev.u.kr : NULL, cmd);
    if (revoke && k.min_serial <= prev.u.kr.min_serial)
        ug_usage_error("--min-serial: %llu does not raise keyring %u's %llu", (unsigned long long)k.min_serial,
                       prev.u.kr.kv, (unsigned long long)prev.u.kr.min_serial);
    uint8_t body[UG_OBJ_MAX];
    size_t len;
    if (ug2_keyring_encode_body(body, sizeof body, &len, &k) != 0)
        ug_die(UG_EXIT_FAIL, "%s: the keyring does not fit %u bytes", keys_one(&v[K_OUT]), UG_OBJ_MAX);
    keys_emit(keys_one(&v[K_OUT]), KIND_KEYRING, body, len, &v[K_KEY]);
    if (v[K_FROM].n && v[K_KEY].n)
        report_rotation(keys_one(&v[K_OUT]), &prev.u.kr, &k);
    return UG_EXIT_OK;
}

/* ---- hint certificates ---------------------------------------------- */

enum { C_HINT, C_SERIAL, C_KV, C_KEYRING, C_TTL, C_NBF, C_TRACKER, C_RENEW, C_KEY, C_OUT, C_N };
static const keys_opt cert_opts[C_N] = {
    [C_HINT] = {"hint", false, false},       [C_SERIAL] = {"serial", false, false},
    [C_KV] = {"kv", false, false},           [C_KEYRING] = {"keyring", false, false},
    [C_TTL] = {"ttl", false, false},         [C_NBF] = {"nbf", false, false},
    [C_TRACKER] = {"tracker", false, false}, [C_RENEW] = {"renew", false, false},
    [C_KEY] = {"key", true, false},          [C_OUT] = {"out", false, false},
};

/* How many of the keyring's certificate keys signed what was written. */
static void report_signed(const char *out, const ug2_keyring *k, keys_kind kind)
{
    uint8_t obj[UG2_KEYRING_MAX];
    size_t len = keys_read(out, obj, sizeof obj);
    ug2_multisig m;
    unsigned n, t;
    const ug_pubkey *list = keys_list_of(k, kind, &n, &t);
    if (ug2_multisig_decode(&m, obj, len, UG2_KEYRING_MAX, NULL) != 0)
        return;
    size_t c = ug2_multisig_count(&m, keys_ctx(kind), list, n);
    printf("%s: signed by %zu of keyring %u's %s keys (threshold %u)%s\n", out, c, k->kv,
           kind == KIND_CERT ? "certificate" : "release", t, c >= t ? ": complete" : ": combine more signatures");
}

static void cert_fields(ug2_cert *c, const keys_val *v, const keys_obj *kr)
{
    if (v[C_RENEW].n) {
        static keys_obj old;
        keys_obj_read(&old, keys_one(&v[C_RENEW]));
        if (old.kind != KIND_CERT)
            ug_die(UG_EXIT_FAIL, "%s: a %s, not a hint certificate", keys_one(&v[C_RENEW]), keys_kind_name(old.kind));
        *c = old.u.cert;
        c->serial = c->serial == UINT64_MAX ? c->serial : c->serial + 1;
    } else if (!v[C_HINT].n || !v[C_SERIAL].n || (!v[C_KV].n && !kr)) {
        ug_usage_error("cert needs --hint, --serial and --kv or --keyring (or --renew OLD.cert)");
    }
    if (v[C_HINT].n) {
        keys_public(keys_one(&v[C_HINT]), c->pk);
        ug_kid(c->kid, c->pk);
    }
    c->serial = keys_u64(&v[C_SERIAL], "serial", 0, UINT64_MAX, c->serial);
    if (kr)
        c->kv = kr->u.kr.kv;
    c->kv = (uint32_t)keys_u64(&v[C_KV], "kv", 1, UINT32_MAX, c->kv);
    if (v[C_TRACKER].n) {
        const char *t = keys_one(&v[C_TRACKER]);
        char shown[300];
        if (!ug2_label_valid(t, strlen(t), UG2_LABEL_MAX))
            ug_usage_error("--tracker: not 1 to 32 of A-Z a-z 0-9 . _ - +: \"%s\"", keys_shown(t, shown, sizeof shown));
        snprintf(c->trk, sizeof c->trk, "%s", t);
    }
    c->nbf = keys_u64(&v[C_NBF], "nbf", 0, UINT64_MAX - UG2_CERT_LIFE_MAX, ug_now());
    c->exp = c->nbf + keys_u64(&v[C_TTL], "ttl", 1, UG2_CERT_LIFE_MAX, 0);
}

int keys_cmd_cert(int argc, char **argv)
{
    keys_val v[C_N];
    keys_getopt(argc, argv, cert_opts, C_N, v);
    if (!v[C_TTL].n || !v[C_OUT].n)
        ug_usage_error("cert needs --ttl (at most %u s: 90 days) and --out", UG2_CERT_LIFE_MAX);
    static keys_obj kr;
    if (v[C_KEYRING].n)
        keys_keyring_read(&kr, keys_one(&v[C_KEYRING]), "keyring");
    ug2_cert c;
    memset(&c, 0, sizeof c);
    cert_fields(&c, v, v[C_KEYRING].n ? &kr : NULL);
    if (v[C_KEYRING].n && c.serial < kr.u.kr.min_serial)
        fprintf(stderr, "%s: warning: serial %llu is below keyring %u's min_serial %llu: peers refuse it as revoked\n",
                ug_prog, (unsigned long long)c.serial, kr.u.kr.kv, (unsigned long long)kr.u.kr.min_serial);
    uint8_t body[UG_OBJ_MAX];
    size_t len;
    if (ug2_cert_encode_body(body, sizeof body, &len, &c) != 0)
        ug_die(UG_EXIT_FAIL, "internal: cannot encode the certificate");
    keys_emit(keys_one(&v[C_OUT]), KIND_CERT, body, len, &v[C_KEY]);
    if (v[C_KEYRING].n && v[C_KEY].n)
        report_signed(keys_one(&v[C_OUT]), &kr.u.kr, KIND_CERT);
    return UG_EXIT_OK;
}

/* ---- release manifests, version 2 --------------------------------------- */

enum { R_VERSION, R_FILE, R_URL, R_TTL, R_OUT, R_KEY, R_APP, R_PLAT, R_CHAN, R_SEQ, R_URGENCY, R_DOWNGRADE,
       R_MIN, R_KRURL, R_KEYRING, R_DELTA, R_N };
static const keys_opt release_opts[R_N] = {
    [R_VERSION] = {"version", false, false}, [R_FILE] = {"file", false, false},
    [R_URL] = {"url", true, false},          [R_TTL] = {"ttl", false, false},
    [R_OUT] = {"out", false, false},         [R_KEY] = {"key", true, false},
    [R_APP] = {"app", false, false},         [R_PLAT] = {"plat", true, false},
    [R_CHAN] = {"chan", false, false},       [R_SEQ] = {"seq", false, false},
    [R_URGENCY] = {"urgency", false, false}, [R_DOWNGRADE] = {"downgrade", false, true},
    [R_MIN] = {"min-serial", false, false},  [R_KRURL] = {"keyring-url", true, false},
    [R_KEYRING] = {"keyring", false, false}, [R_DELTA] = {"delta-from", true, false},
};

static void label(char *dst, size_t cap, const char *s, size_t max, const char *flag)
{
    char shown[300];
    if (!ug2_label_valid(s, strlen(s), max))
        ug_usage_error("--%s: not 1 to %zu of A-Z a-z 0-9 . _ - +: \"%s\"", flag, max, keys_shown(s, shown, sizeof shown));
    snprintf(dst, cap, "%s", s);
}

static void urls(char (*dst)[UG_URL_MAX + 1], uint8_t *n, const keys_val *v, unsigned max, bool keyring,
                 const char *flag)
{
    if (v->n > max)
        ug_usage_error("--%s: at most %u", flag, max);
    for (unsigned i = 0; i < v->n; i++) {
        const char *u = v->v[i];
        size_t len = strlen(u);
        char shown[300];
        if (!(keyring ? ug2_keyring_url_valid(u, len) : ug_url_valid(u, len)))
            ug_usage_error("--%s: not an http(s) URL with a host%s, of 1 to 200 printable ASCII bytes: \"%s\"", flag,
                           keyring ? " ending with \"/\"" : "", keys_shown(u, shown, sizeof shown));
        memcpy(dst[i], u, len + 1);
    }
    *n = (uint8_t)v->n;
}

static void manifest_fields(ug2_manifest *m, const keys_val *v)
{
    const char *ver = keys_one(&v[R_VERSION]);
    if (ug_version_parse(&m->to, ver, strlen(ver)) != 0)
        ug_usage_error("--version: not a version (1 to 4 numbers, e.g. 2.0.1): %s", ver);
    urls(m->urls, &m->nurls, &v[R_URL], UG_URLS_MAX, false, "url");
    label(m->app, sizeof m->app, keys_one(&v[R_APP]), UG2_LABEL_MAX, "app");
    if (v[R_PLAT].n > UG2_PLATS_MAX)
        ug_usage_error("--plat: at most %u platforms", UG2_PLATS_MAX);
    for (unsigned i = 0; i < v[R_PLAT].n; i++) {
        label(m->plat[i], sizeof m->plat[i], v[R_PLAT].v[i], UG2_LABEL_MAX, "plat");
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(m->plat[i], m->plat[j]))
                ug_usage_error("--plat %s given twice", m->plat[i]);
    }
    m->nplat = (uint8_t)v[R_PLAT].n;
    label(m->chan, sizeof m->chan, keys_one(&v[R_CHAN]), UG2_CHAN_MAX, "chan");
    m->seq = keys_u64(&v[R_SEQ], "seq", 1, UG2_SEQ_MAX, 0);
    const char *u = keys_one(&v[R_URGENCY]);
    if (u && strcmp(u, "normal") && strcmp(u, "critical"))
        ug_usage_error("--urgency: normal or critical, not %s", u);
    m->urgency = u && !strcmp(u, "critical") ? UG2_URGENCY_CRITICAL : UG2_URGENCY_NORMAL;
    m->downgrade = v[R_DOWNGRADE].n > 0;
    m->min_serial = keys_u64(&v[R_MIN], "min-serial", 1, UINT64_MAX, 0);
    urls(m->keyring, &m->nkeyring, &v[R_KRURL], UG2_KR_URLS_MAX, true, "keyring-url");
    m->exp = ug_now() + keys_u64(&v[R_TTL], "ttl", 1, UINT32_MAX, 0);
}

int keys_cmd_release2(int argc, char **argv)
{
    keys_val v[R_N];
    keys_getopt(argc, argv, release_opts, R_N, v);
    if (!v[R_VERSION].n || !v[R_FILE].n || !v[R_URL].n || !v[R_TTL].n || !v[R_OUT].n || !v[R_APP].n ||
        !v[R_PLAT].n || !v[R_CHAN].n || !v[R_SEQ].n)
        ug_usage_error("release --app needs --version, --file, --url, --ttl, --out, --plat, --chan and --seq");
    static ug2_manifest m;
    memset(&m, 0, sizeof m);
    manifest_fields(&m, v);
    static keys_obj kr;
    if (v[R_KEYRING].n)
        keys_keyring_read(&kr, keys_one(&v[R_KEYRING]), "keyring");
    keys_hash_file(keys_one(&v[R_FILE]), &m.size, m.hash);
    keys_deltas(&m, keys_one(&v[R_FILE]), &v[R_DELTA]);
    uint8_t body[UG_OBJ_MAX];
    size_t len;
    if (ug2_manifest_encode_body(body, sizeof body, &len, &m) != 0)
        ug_die(UG_EXIT_FAIL, "%s: the manifest does not fit %u bytes; use fewer or shorter URLs", keys_one(&v[R_OUT]),
               UG_OBJ_MAX);
    keys_emit(keys_one(&v[R_OUT]), KIND_MANIFEST, body, len, &v[R_KEY]);
    if (v[R_KEYRING].n && v[R_KEY].n)
        report_signed(keys_one(&v[R_OUT]), &kr.u.kr, KIND_MANIFEST);
    return UG_EXIT_OK;
}
