/* libupgate: the client handle, its config, keys and credential, messages and versions (version 2's
 * trust in trust.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "internal.h"

/* The public reasons are the codec's, value for value. */
_Static_assert((int)UG_CLIENT_R_SIZE == (int)UG_E_SIZE && (int)UG_CLIENT_R_SIG == (int)UG_E_SIG &&
                   (int)UG_CLIENT_R_MIRROR == (int)UG_E_MIRROR && (int)UG_CLIENT_R_MIRROR + 2 == (int)UG_E_COUNT_,
               "ug_client_reason follows ug_err");
_Static_assert((int)UG_CLIENT_R_THRESHOLD == (int)UG_E_THRESHOLD && (int)UG_CLIENT_R_KEYRING == (int)UG_E_KEYRING &&
                   (int)UG_CLIENT_R_PLATFORM == (int)UG_E_PLAT && (int)UG_CLIENT_R_SEQ == (int)UG_E_SEQ &&
                   (int)UG_CLIENT_R_CLOCK_SKEW == (int)UG_E_CLOCK && (int)UG_CLIENT_R_CLOCK_SKEW + 1 == (int)UG_E2_COUNT_,
               "ug_client_reason follows ug_err for version 2 too");
_Static_assert((int)UG_CLIENT_RES_ROLLED_BACK == (int)UG_RES_ROLLED_BACK, "ug_client_res follows ug_res");
_Static_assert(UG_CLIENT_DGRAM_MAX == UG_DGRAM_MAX && UG_CLIENT_VER_MAX == UG_VER_MAX &&
                   UG_CLIENT_URLS_MAX == UG_URLS_MAX && UG_CLIENT_URL_MAX == UG_URL_MAX,
               "public sizes are the protocol's");

const char *ug_client_version(void)
{
    return UG_CLIENT_VERSION;
}

const char *ug_client_strerror(ug_client_err e)
{
    static const char *const text[UG_CLIENT_E_COUNT_] = {
        [UG_CLIENT_OK] = "success",
        [UG_CLIENT_E_INVALID] = "invalid argument",
        [UG_CLIENT_E_NOMEM] = "out of memory",
        [UG_CLIENT_E_IO] = "file error",
        [UG_CLIENT_E_FORMAT] = "malformed file",
        [UG_CLIENT_E_NOTFOUND] = "no such file",
        [UG_CLIENT_E_CRED] = "credential for another user or key",
        [UG_CLIENT_E_NOKEY] = "key, credential or pinned keys missing",
        [UG_CLIENT_E_BUFFER] = "buffer too small",
        [UG_CLIENT_E_AGAIN] = "download still running",
        [UG_CLIENT_E_DOWNLOAD] = "no mirror delivered the package",
        [UG_CLIENT_E_MISMATCH] = "package size or hash mismatch",
        [UG_CLIENT_E_DEADLINE] = "download deadline passed",
        [UG_CLIENT_E_EXPIRED] = "offer expired",
        [UG_CLIENT_E_CURL] = "libcurl failed",
        [UG_CLIENT_E_KEYRING] = "no valid keyring reached",
    };
    return (unsigned)e < UG_CLIENT_E_COUNT_ ? text[e] : "unknown error";
}

const char *ug_client_why_name(unsigned why)
{
    return ug_why_name(why);
}

void ug_client_vsay_(char *buf, size_t cap, const char *fmt, va_list ap)
{
    vsnprintf(buf, cap, fmt, ap);
    for (char *p = buf; *p; p++) /* one line, whatever a file name held */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

ug_client_err ug_client_fail_(ug_client *c, ug_client_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ug_client_vsay_(c->msg, sizeof c->msg, fmt, ap);
    va_end(ap);
    return code;
}

const char *ug_client_errmsg(const ug_client *c)
{
    return c ? c->msg : "no handle";
}

uint64_t ug_client_now_(const ug_client *c)
{
    return c->now ? c->now(c->now_ctx) : (uint64_t)time(NULL);
}

void ug_client_random_(const ug_client *c, uint8_t *buf, size_t len)
{
    if (c->random)
        c->random(c->random_ctx, buf, len);
    else
        randombytes_buf(buf, len);
}

/* ---- versions ------------------------------------------------------- */

static bool parse_version(ug_version *v, const char *s)
{
    return s && ug_version_parse(v, s, strnlen(s, UG_VER_MAX + 1)) == 0 && strlen(s) <= UG_VER_MAX;
}

bool ug_client_version_valid(const char *v)
{
    ug_version tmp;
    return parse_version(&tmp, v);
}

ug_client_err ug_client_version_compare(const char *a, const char *b, int *cmp)
{
    ug_version va, vb;
    if (!cmp || !parse_version(&va, a) || !parse_version(&vb, b))
        return UG_CLIENT_E_INVALID;
    int r = ug_version_cmp(&va, &vb);
    *cmp = r < 0 ? -1 : r > 0;
    return UG_CLIENT_OK;
}

/* ---- the handle ----------------------------------------------------- */

void ug_client_config_init(ug_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->hello_size = UG_DGRAM_MAX;
    cfg->report_size = UG_HELLO_MIN;
    cfg->root_threshold = 1;
    cfg->blocked_after_s = UG_CLIENT_BLOCKED_DEFAULT_S;
    cfg->keyring_timeout_s = 10;
}

/* plat and chan go on the wire as msgpack str: printable ASCII only. */
static bool printable(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

/* The config's fields, checked; NULL or the name of the bad one. */
static const char *take_config(ug_client *c, const ug_client_config *in)
{
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    if (in->size < offsetof(ug_client_config, plat))
        return "config: size (use ug_client_config_init)";
    memcpy(&cfg, in, in->size < sizeof cfg ? in->size : sizeof cfg); /* a newer caller's tail is not ours */
    if (cfg.uid < 1 || cfg.uid > UG_UID_MAX)
        return "config: uid must be 1..2^63-1";
    if (!parse_version(&c->running, cfg.version))
        return "config: version is not a version (1 to 4 numbers, e.g. 1.4.2)";
    if (cfg.plat && !printable(cfg.plat, UG_PLAT_MAX))
        return "config: plat must be 1 to 32 printable ASCII bytes";
    if (cfg.chan && !printable(cfg.chan, UG_CHAN_MAX))
        return "config: chan must be 1 to 16 printable ASCII bytes";
    if (cfg.hello_size < UG_HELLO_MIN || cfg.hello_size > UG_DGRAM_MAX)
        return "config: hello_size must be 512..1232";
    if (cfg.report_size != 0 && (cfg.report_size < 64 || cfg.report_size > UG_DGRAM_MAX))
        return "config: report_size must be 0 or 64..1232";
    c->uid = cfg.uid;
    snprintf(c->version, sizeof c->version, "%s", cfg.version);
    snprintf(c->plat, sizeof c->plat, "%s", cfg.plat ? cfg.plat : "");
    snprintf(c->chan, sizeof c->chan, "%s", cfg.chan ? cfg.chan : "");
    c->hello_size = c->target = cfg.hello_size;
    c->report_size = cfg.report_size;
    c->now = cfg.now;
    c->now_ctx = cfg.now_ctx;
    c->random = cfg.random;
    c->random_ctx = cfg.random_ctx;
    return ug_client_take_v2_(c, &cfg);
}

ug_client_err ug_client_new(const ug_client_config *cfg, ug_client **out, const char **msg)
{
    const char *why = "out of memory";
    if (msg)
        *msg = "";
    if (!out)
        return UG_CLIENT_E_INVALID;
    *out = NULL;
    if (!cfg) {
        if (msg)
            *msg = "config: NULL";
        return UG_CLIENT_E_INVALID;
    }
    if (sodium_init() < 0) {
        if (msg)
            *msg = "libsodium failed to initialise";
        return UG_CLIENT_E_NOMEM;
    }
    ug_client *c = calloc(1, sizeof *c);
    if (!c) {
        if (msg)
            *msg = why;
        return UG_CLIENT_E_NOMEM;
    }
    why = take_config(c, cfg);
    if (why) {
        free(c);
        if (msg)
            *msg = why;
        return UG_CLIENT_E_INVALID;
    }
    *out = c;
    return UG_CLIENT_OK;
}

void ug_client_free(ug_client *c)
{
    if (!c)
        return;
    ug_secret_free(c->sk);
    sodium_memzero(c, sizeof *c); /* nonces and the cookie are no one's business either */
    free(c);
}

/* ---- keys and credential -------------------------------------------- */

/* Once both are known: the credential must name our uid and our key (a
 * tracker would drop every HELLO silently otherwise, so say it here). */
static ug_client_err check_binding(ug_client *c)
{
    if (!c->cred_len)
        return UG_CLIENT_OK;
    if (c->cred_body.uid != c->uid)
        return ug_client_fail_(c, UG_CLIENT_E_CRED, "%s: credential is for uid %llu, not %llu", c->cred_src,
                               (unsigned long long)c->cred_body.uid, (unsigned long long)c->uid);
    if (c->sk && sodium_memcmp(c->cred_body.pk, c->sk + UG_SEED_LEN, UG_PK_LEN) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_CRED, "%s: credential is for another client key", c->cred_src);
    return UG_CLIENT_OK;
}

static ug_client_err take_key(ug_client *c, uint8_t *sk)
{
    ug_secret_free(c->sk);
    c->sk = sk;
    c->pending = false; /* a HELLO signed by the old key is no longer ours to resend */
    ug_client_err e = check_binding(c);
    if (e != UG_CLIENT_OK) {
        ug_secret_free(c->sk);
        c->sk = NULL;
    }
    return e;
}

ug_client_err ug_client_load_key(ug_client *c, const char *path)
{
    if (!c || !path)
        return UG_CLIENT_E_INVALID;
    char why[256] = "";
    uint8_t *sk = ug_seckey_load(path, why, sizeof why);
    if (!sk)
        return ug_client_fail_(c, UG_CLIENT_E_FORMAT, "%s: %s", path, why);
    ug_client_err e = take_key(c, sk);
    if (e == UG_CLIENT_E_CRED) /* name the key file too */
        return ug_client_fail_(c, e, "%s: credential is not for this key (%s)", c->cred_src, path);
    return e;
}

ug_client_err ug_client_set_key(ug_client *c, const uint8_t seed[32])
{
    if (!c || !seed)
        return UG_CLIENT_E_INVALID;
    uint8_t *sk = sodium_malloc(UG_SK_LEN);
    if (!sk)
        return ug_client_fail_(c, UG_CLIENT_E_NOMEM, "out of locked memory for the client key");
    uint8_t pk[UG_PK_LEN];
    (void)crypto_sign_seed_keypair(pk, sk, seed); /* cannot fail for a 32-byte seed */
    sodium_mprotect_readonly(sk);
    return take_key(c, sk);
}

static ug_client_err take_cred(ug_client *c, const uint8_t *obj, size_t len, const char *src)
{
    ug_signed so;
    ug_cred body;
    if (len == 0 || len > sizeof c->cred || ug_signed_decode(&so, obj, len, NULL) != 0 || so.raw_len != len ||
        ug_cred_decode(&body, so.body, so.body_len, NULL) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_FORMAT, "%s: not a credential (one line of base64 of a signed object)",
                               src);
    uint8_t saved[UG_CLIENT_CRED_MAX];
    size_t saved_len = c->cred_len;
    ug_cred saved_body = c->cred_body;
    char saved_src[sizeof c->cred_src];
    memcpy(saved, c->cred, sizeof saved);
    memcpy(saved_src, c->cred_src, sizeof saved_src);
    memcpy(c->cred, obj, len);
    c->cred_len = len;
    c->cred_body = body;
    snprintf(c->cred_src, sizeof c->cred_src, "%s", src);
    ug_client_err e = check_binding(c);
    if (e != UG_CLIENT_OK) { /* keep the old one */
        memcpy(c->cred, saved, sizeof saved);
        c->cred_len = saved_len;
        c->cred_body = saved_body;
        memcpy(c->cred_src, saved_src, sizeof saved_src);
        return e;
    }
    c->pending = false;
    return UG_CLIENT_OK;
}

ug_client_err ug_client_set_cred(ug_client *c, const uint8_t *obj, size_t len)
{
    if (!c || !obj)
        return UG_CLIENT_E_INVALID;
    return take_cred(c, obj, len, "the credential");
}

ug_client_err ug_client_load_cred(ug_client *c, const char *path)
{
    if (!c || !path)
        return UG_CLIENT_E_INVALID;
    uint8_t text[UG_CLIENT_CRED_TEXT_MAX], obj[UG_CLIENT_CRED_MAX];
    size_t len, obj_len = 0;
    char why[256] = "";
    const char *end = NULL;
    if (ug_file_read(path, text, sizeof text, &len, why, sizeof why) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_IO, "%s: %s", path, why);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    if (len == 0 || sodium_base642bin(obj, sizeof obj, (const char *)text, len, NULL, &obj_len, &end,
                                      sodium_base64_VARIANT_ORIGINAL) != 0 || end != (const char *)text + len)
        obj_len = 0; /* take_cred refuses it, naming the file */
    return take_cred(c, obj, obj_len, path);
}

uint64_t ug_client_cred_expiry(const ug_client *c)
{
    return c && c->cred_len ? c->cred_body.exp : 0;
}

static ug_client_err pin(ug_client *c, ug_pubkey *keys, unsigned *n, const uint8_t pk[32], const char *kind)
{
    if (*n == UG_CLIENT_PINS_MAX)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "at most %u pinned %s keys", UG_CLIENT_PINS_MAX, kind);
    ug_pubkey_set(&keys[(*n)++], pk);
    return UG_CLIENT_OK;
}

/* One reader for every pinned key file (hint, release, root): the error names the file. */
ug_client_err ug_client_read_key_file_(ug_client *c, const char *path, uint8_t pk[UG_PK_LEN])
{
    if (!c || !path)
        return UG_CLIENT_E_INVALID;
    char why[256] = "";
    if (ug_pubkey_read(path, pk, why, sizeof why) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_FORMAT, "%s: %s", path, why);
    return UG_CLIENT_OK;
}

static ug_client_err pin_file(ug_client *c, ug_pubkey *keys, unsigned *n, const char *path, const char *kind)
{
    uint8_t pk[UG_PK_LEN];
    ug_client_err e = ug_client_read_key_file_(c, path, pk);
    return e == UG_CLIENT_OK ? pin(c, keys, n, pk, kind) : e;
}

ug_client_err ug_client_add_hint_key_file(ug_client *c, const char *path)
{
    return c ? pin_file(c, c->hint_keys, &c->nhint, path, "hint") : UG_CLIENT_E_INVALID;
}

ug_client_err ug_client_add_hint_key(ug_client *c, const uint8_t pk[32])
{
    return c && pk ? pin(c, c->hint_keys, &c->nhint, pk, "hint") : UG_CLIENT_E_INVALID;
}

ug_client_err ug_client_add_release_key_file(ug_client *c, const char *path)
{
    return c ? pin_file(c, c->release_keys, &c->nrelease, path, "release") : UG_CLIENT_E_INVALID;
}

ug_client_err ug_client_add_release_key(ug_client *c, const uint8_t pk[32])
{
    return c && pk ? pin(c, c->release_keys, &c->nrelease, pk, "release") : UG_CLIENT_E_INVALID;
}

ug_client_err ug_client_ready_(ug_client *c)
{
    if (!c->sk)
        return ug_client_fail_(c, UG_CLIENT_E_NOKEY, "no client key set");
    if (!c->cred_len)
        return ug_client_fail_(c, UG_CLIENT_E_NOKEY, "no credential set");
    if ((c->nhint || c->nrelease) && c->nroots)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID,
                               "pin root keys (protocol version 2) or hint and release keys (version 1), not both");
    if (c->nroots)
        return UG_CLIENT_OK;
    if (!c->nhint && !c->nrelease)
        return ug_client_fail_(c, UG_CLIENT_E_NOKEY,
                               "no pinned key: root keys (protocol version 2) or hint and release keys (version 1)");
    if (!c->nhint || !c->nrelease)
        return ug_client_fail_(c, UG_CLIENT_E_NOKEY, "no pinned %s key", c->nhint ? "release" : "hint");
    return UG_CLIENT_OK;
}
