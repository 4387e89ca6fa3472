/* A tracker fixture: keys, manifest, policy, and the real upgate.so through its ABI. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "fixture.h"
#include "testutil.h"

/* name.key and name.pub in f's folder; from the vectors' seed of that name
 * when vec, else fresh. */
static void keypair_of(fx_t *f, const char *name, bool vec, uint8_t sk[UG_SK_LEN], uint8_t pk[UG_PK_LEN])
{
    uint8_t seed[UG_SEED_LEN];
    char path[128], why[128];
    if (vec)
        tu_vector_key(name, sk, pk);
    else
        randombytes_buf(seed, sizeof seed), crypto_sign_seed_keypair(pk, sk, seed);
    memcpy(seed, sk, UG_SEED_LEN); /* libsodium's secret key starts with its seed */
    snprintf(path, sizeof path, "%s/%s.key", f->dir, name);
    cr_assert_eq(ug_keyfile_write(path, seed, sizeof seed, true, why, sizeof why), 0, "%s", why);
    snprintf(path, sizeof path, "%s/%s.pub", f->dir, name);
    cr_assert_eq(ug_keyfile_write(path, pk, UG_PK_LEN, false, why, sizeof why), 0, "%s", why);
}

static uint64_t host_now(void *ctx)
{
    return ((fx_t *)ctx)->now;
}

static void host_log(void *ctx, ug_log_level lvl, const char *msg)
{
    fx_t *f = ctx;
    (void)lvl;
    snprintf(f->last_log, sizeof f->last_log, "%s", msg);
}

static void init_keys(fx_t *f, unsigned nworkers, bool vec)
{
    cr_assert(sodium_init() >= 0);
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", tu_tmpdir());
    f->nworkers = nworkers;
    f->now = FX_NOW;
    keypair_of(f, "hint", vec, f->hint_sk, f->hint_pk);
    keypair_of(f, "issuer", vec, f->issuer_sk, f->issuer_pk);
    keypair_of(f, "release", vec, f->rel_sk, f->rel_pk);
    keypair_of(f, "client", vec, f->client_sk, f->client_pk);
    fx_manifest(f, 2, 0);
}

void fx_init(fx_t *f, unsigned nworkers)
{
    init_keys(f, nworkers, false);
}

void fx_init_vectors(fx_t *f, unsigned nworkers)
{
    init_keys(f, nworkers, true);
}

void fx_manifest(fx_t *f, unsigned nurls, size_t url_len)
{
    ug_manifest m = {.size = 1000, .exp = FX_NOW + 2 * 365 * 86400, .nurls = (uint8_t)nurls};
    cr_assert_eq(ug_version_parse(&m.to, "2.0.0", 5), 0);
    for (unsigned i = 0; i < nurls; i++) {
        int n = url_len ? snprintf(m.urls[i], sizeof m.urls[i], "http://mirror%u.example.net/", i)
                        : snprintf(m.urls[i], sizeof m.urls[i], "http://127.0.0.1:%u/a.bin", i + 1);
        if (url_len) {
            cr_assert(url_len > (size_t)n && url_len <= UG_URL_MAX);
            memset(m.urls[i] + n, 'x', url_len - (size_t)n);
            m.urls[i][url_len] = 0;
        }
    }
    ug_kid(m.kid, f->rel_pk);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t blen, olen;
    cr_assert_eq(ug_manifest_encode_body(body, sizeof body, &blen, &m), 0);
    cr_assert_eq(ug_signed_encode(obj, sizeof obj, &olen, UG_CTX_RELEASE, body, blen, f->rel_sk), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/release.manifest", f->dir);
    unlink(path);
    tu_write_file(path, obj, olen);
}

const char *fx_policy_path(fx_t *f)
{
    static _Thread_local char path[128];
    snprintf(path, sizeof path, "%s/policy.yaml", f->dir);
    return path;
}

void fx_policy_bare(fx_t *f, const char *rest)
{
    char text[65536];
    int n = snprintf(text, sizeof text, "keys:\n  hint: hint.key\n  issuers: [issuer.pub]\nstate: state\n%s", rest);
    cr_assert(n > 0 && (size_t)n < sizeof text);
    tu_write_file(fx_policy_path(f), text, (size_t)n);
}

void fx_policy(fx_t *f, const char *rest)
{
    char text[65536];
    int n = snprintf(text, sizeof text,
                     "keys:\n  hint: hint.key\n  issuers: [issuer.pub]\nrelease: release.manifest\n"
                     "state: state\n%s",
                     rest);
    cr_assert(n > 0 && (size_t)n < sizeof text);
    tu_write_file(fx_policy_path(f), text, (size_t)n);
}

int fx_start(fx_t *f, char *err, size_t errcap)
{
    char so[1024];
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    if (!f->dl) {
        f->dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
        cr_assert(f->dl, "dlopen %s: %s", so, dlerror());
        f->api = dlsym(f->dl, UG_PLUGIN_SYMBOL);
        cr_assert(f->api, "no symbol %s", UG_PLUGIN_SYMBOL);
        cr_assert_eq(f->api->abi_major, UG_PLUGIN_ABI_MAJOR);
        cr_assert_geq(f->api->size, sizeof(ug_plugin));
    }
    ug_host host = {.size = sizeof host, .ctx = f, .log = host_log, .now = host_now, .nworkers = f->nworkers,
                    .state_override = f->state_override, .flags = f->host_flags};
    f->inst = f->api->create(&host, fx_policy_path(f), err, errcap);
    return f->inst ? 0 : -1;
}

void fx_stop(fx_t *f)
{
    if (f->inst)
        f->api->destroy(f->inst);
    f->inst = NULL;
}

size_t fx_hello(fx_t *f, uint8_t *out, uint64_t uid, const char *ver, const fx_opts *o)
{
    static const fx_opts none;
    if (!o)
        o = &none;
    ug_cred c = {.uid = uid, .exp = o->cred_exp ? o->cred_exp : f->now + 86400};
    memcpy(c.pk, f->client_pk, UG_PK_LEN);
    ug_kid(c.kid, f->issuer_pk);
    uint8_t cbody[128], cobj[256];
    size_t cblen, colen, len;
    cr_assert_eq(ug_cred_encode_body(cbody, sizeof cbody, &cblen, &c), 0);
    cr_assert_eq(ug_signed_encode(cobj, sizeof cobj, &colen, UG_CTX_CRED, cbody, cblen, f->issuer_sk), 0);
    ug_hello_fields h = {
        .uid = uid, .ver = ver, .ts = (uint64_t)((int64_t)f->now + o->ts_offset), .cred = cobj,
        .cred_len = colen, .plat = o->plat, .chan = o->chan, .cookie = o->cookie,
    };
    if (o->nonce)
        memcpy(h.nonce, o->nonce, UG_NONCE_LEN);
    else
        randombytes_buf(h.nonce, UG_NONCE_LEN);
    memcpy(h.pk, f->client_pk, UG_PK_LEN);
    cr_assert_eq(ug_hello_build(out, UG_DGRAM_MAX, &len, &h, o->target ? o->target : UG_DGRAM_MAX, f->client_sk), 0);
    return len;
}

fx_reply fx_send(fx_t *f, unsigned worker, const char *ip, uint16_t port, const uint8_t *in, size_t len)
{
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
        sl = sizeof *s4;
    }
    fx_reply r;
    memset(&r, 0, sizeof r);
    r.v = f->api->handle2(f->inst, worker, (struct sockaddr *)&ss, sl, in, len, r.bytes, sizeof r.bytes, &r.len,
                          &r.flags);
    cr_assert_leq(r.len, len, "reply of %zu bytes to a request of %zu", r.len, len);
    cr_assert_eq(f->api->flush(f->inst, worker), 0);
    if (r.len == 0)
        return r;
    ug_dgram d;
    cr_assert_eq(ug_dgram_decode(&d, r.bytes, r.len, NULL), 0, "plugin sent a malformed reply");
    r.type = d.type;
    if (d.type == UG_TYPE_WAIT) {
        cr_assert_eq(ug_wait_decode(&r.wait, d.body, d.body_len, NULL), 0);
    } else if (d.type == UG_TYPE_COOKIE) {
        cr_assert_eq(ug_cookie_decode(&r.cookie, d.body, d.body_len, NULL), 0);
    } else if (d.type == UG_TYPE_HINT) {
        ug_hint raw;
        cr_assert_eq(ug_hint_decode(&raw, d.body, d.body_len, NULL), 0);
        ug_pubkey hk, rk;
        ug_pubkey_set(&hk, f->hint_pk);
        ug_pubkey_set(&rk, f->rel_pk);
        ug_peer_expect w = {.hint_keys = &hk, .nhint_keys = 1, .release_keys = &rk, .nrelease_keys = 1,
                            .uid = raw.uid, .now = f->now};
        memcpy(w.nonce, raw.nonce, UG_NONCE_LEN);
        cr_assert_eq(ug_version_parse(&w.current, "1.0", 3), 0);
        if (ug_hint_verify(&r.hint, r.bytes, r.len, &w, &r.hint_err) != 0)
            cr_assert_fail("plugin sent a HINT that does not verify: %s", ug_err_name(r.hint_err));
    }
    return r;
}

fx_reply fx_ask(fx_t *f, unsigned worker, const char *ip, uint64_t uid, const char *ver, const fx_opts *o)
{
    uint8_t buf[UG_DGRAM_MAX];
    size_t len = fx_hello(f, buf, uid, ver, o);
    fx_reply r = fx_send(f, worker, ip, 4000, buf, len);
    if (r.type == UG_TYPE_HINT)
        cr_assert_eq(r.hint.uid, uid);
    return r;
}

fx_reply fx_ask_proved(fx_t *f, unsigned worker, const char *ip, uint64_t uid, const char *ver, const fx_opts *o,
                       bool *cookied)
{
    fx_reply r = fx_ask(f, worker, ip, uid, ver, o);
    if (cookied)
        *cookied = r.type == UG_TYPE_COOKIE;
    if (r.type != UG_TYPE_COOKIE)
        return r;
    fx_opts with = o ? *o : (fx_opts){0};
    uint8_t cookie[UG_COOKIE_LEN];
    memcpy(cookie, r.cookie.cookie, sizeof cookie);
    with.cookie = cookie;
    return fx_ask(f, worker, ip, uid, ver, &with);
}

uint64_t fx_stat(fx_t *f, const char *name)
{
    ug_stat st[128];
    size_t n = f->api->stats(f->inst, st, 128);
    for (size_t i = 0; i < n && i < 128; i++)
        if (strcmp(st[i].name, name) == 0)
            return st[i].value;
    cr_assert_fail("no counter %s", name);
    return 0;
}

size_t fx_report(fx_t *f, uint8_t *out, uint64_t uid, const char *ver, const char *to, ug_res res)
{
    ug_cred c = {.uid = uid, .exp = f->now + 86400};
    memcpy(c.pk, f->client_pk, UG_PK_LEN);
    ug_kid(c.kid, f->issuer_pk);
    uint8_t cbody[128], cobj[256];
    size_t cblen, colen, len;
    cr_assert_eq(ug_cred_encode_body(cbody, sizeof cbody, &cblen, &c), 0);
    cr_assert_eq(ug_signed_encode(cobj, sizeof cobj, &colen, UG_CTX_CRED, cbody, cblen, f->issuer_sk), 0);
    ug_report_fields r = {.uid = uid, .ver = ver, .to = to, .res = res, .ts = f->now, .cred = cobj, .cred_len = colen};
    randombytes_buf(r.nonce, UG_NONCE_LEN);
    memcpy(r.pk, f->client_pk, UG_PK_LEN);
    cr_assert_eq(ug_report_build(out, UG_DGRAM_MAX, &len, &r, 512, f->client_sk), 0);
    return len;
}

void fx_manifest_at(fx_t *f, const char *name, const char *to)
{
    ug_manifest m = {.size = 1000, .exp = FX_NOW + 2 * 365 * 86400, .nurls = 1};
    cr_assert_eq(ug_version_parse(&m.to, to, strlen(to)), 0);
    snprintf(m.urls[0], sizeof m.urls[0], "http://127.0.0.1:1/%s", name);
    ug_kid(m.kid, f->rel_pk);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t blen, olen;
    cr_assert_eq(ug_manifest_encode_body(body, sizeof body, &blen, &m), 0);
    cr_assert_eq(ug_signed_encode(obj, sizeof obj, &olen, UG_CTX_RELEASE, body, blen, f->rel_sk), 0);
    char path[160];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    unlink(path);
    tu_write_file(path, obj, olen);
}

typedef struct {
    char *buf;
    size_t n, cap;
} fx_text;

static void fx_emit(void *ctx, const char *data, size_t len)
{
    fx_text *t = ctx;
    if (t->n + len + 1 > t->cap)
        len = t->cap - t->n - 1;
    memcpy(t->buf + t->n, data, len);
    t->n += len;
    t->buf[t->n] = 0;
}

const char *fx_control(fx_t *f, const char *req, int *rc)
{
    static char out[1 << 20];
    fx_text t = {out, 0, sizeof out};
    out[0] = 0;
    int r = f->api->control(f->inst, req, strlen(req), fx_emit, &t);
    if (rc)
        *rc = r;
    return out;
}

ug_decision fx_decide(fx_t *f, uint64_t uid, const char *ver, const char *ip, unsigned flags)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    cr_assert_eq(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    ug_claims c = {.size = sizeof c, .kind = UG_CLAIM_HELLO, .flags = flags, .uid = uid, .ver = ver,
                   .src = (struct sockaddr *)&sa, .srclen = sizeof sa};
    ug_decision d = {.size = sizeof d};
    cr_assert_eq(f->api->decide(f->inst, 0, &c, &d), 0);
    return d;
}
