/* The policy tests' fixture (policy_fixture.h). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "policy_fixture.h"
#include "testutil.h"

char pf_dir[256];
char pf_yaml[512];
uint8_t pf_hint_pk[UG_PK_LEN], pf_issuer_pk[UG_PK_LEN], pf_issuer2_pk[UG_PK_LEN];
uint8_t pf_manifest[UG_OBJ_MAX];
size_t pf_manifest_len;
static uint8_t rel_sk[UG_SK_LEN], rel_pk[UG_PK_LEN];

void pf_pathf(char *out, size_t cap, const char *rel)
{
    int w = snprintf(out, cap, "%s/%s", pf_dir, rel);
    cr_assert(w > 0 && (size_t)w < cap);
}

void pf_put(const char *rel, const void *data, size_t len)
{
    char p[512];
    pf_pathf(p, sizeof p, rel);
    tu_write_file(p, data, len);
}

void pf_put_b64(const char *rel, const uint8_t *bin, size_t len)
{
    char b64[256];
    sodium_bin2base64(b64, sizeof b64, bin, len, sodium_base64_VARIANT_ORIGINAL);
    size_t n = strlen(b64);
    b64[n++] = '\n';
    pf_put(rel, b64, n);
}

/* NAME.key (seed) and NAME.pub under keys/. */
static void gen_key(const char *name, uint8_t pk[UG_PK_LEN], uint8_t sk[UG_SK_LEN])
{
    uint8_t seed[UG_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    char rel[64];
    snprintf(rel, sizeof rel, "keys/%s.key", name);
    pf_put_b64(rel, seed, sizeof seed);
    snprintf(rel, sizeof rel, "keys/%s.pub", name);
    pf_put_b64(rel, pk, UG_PK_LEN);
}

size_t pf_make_manifest(uint8_t *out, size_t cap, const char *to, unsigned nurls, size_t url_len, uint64_t exp)
{
    ug_manifest m;
    memset(&m, 0, sizeof m);
    cr_assert(ug_version_parse(&m.to, to, strlen(to)) == 0);
    m.nurls = (uint8_t)nurls;
    for (unsigned i = 0; i < nurls; i++) {
        int w = snprintf(m.urls[i], sizeof m.urls[i], "https://mirror%u.example.com/", i);
        cr_assert(w > 0);
        for (size_t j = (size_t)w; j < url_len; j++)
            m.urls[i][j] = 'a';
        m.urls[i][url_len] = '\0';
    }
    m.size = 123456;
    randombytes_buf(m.hash, sizeof m.hash);
    m.exp = exp;
    ug_kid(m.kid, rel_pk);
    uint8_t body[UG_OBJ_MAX];
    size_t blen, len;
    cr_assert(ug_manifest_encode_body(body, sizeof body, &blen, &m) == 0);
    cr_assert(ug_signed_encode(out, cap, &len, UG_CTX_RELEASE, body, blen, rel_sk) == 0);
    return len;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void pf_setup(void)
{
    cr_assert(sodium_init() >= 0);
    snprintf(pf_dir, sizeof pf_dir, "%s", tu_tmpdir());
    const char *sub[] = {"keys", "releases", "state", "sub", "lists"};
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
        char p[512];
        pf_pathf(p, sizeof p, sub[i]);
        cr_assert(mkdir(p, 0700) == 0);
    }
    pf_pathf(pf_yaml, sizeof pf_yaml, "policy.yaml");
    uint8_t sk[UG_SK_LEN];
    gen_key("hint", pf_hint_pk, sk);
    gen_key("issuer", pf_issuer_pk, sk);
    gen_key("issuer2", pf_issuer2_pk, sk);
    gen_key("release", rel_pk, rel_sk);
    uint64_t now = (uint64_t)time(NULL);
    pf_manifest_len = pf_make_manifest(pf_manifest, sizeof pf_manifest, "2.0.0", 2, 40, now + 86400);
    pf_put("releases/2.0.0.manifest", pf_manifest, pf_manifest_len);
    uint8_t m[UG_OBJ_MAX];
    size_t mlen = pf_make_manifest(m, sizeof m, "2.1.0", 1, 40, now + 30 * 86400);
    pf_put("releases/2.1.0.manifest", m, mlen);
    mlen = pf_make_manifest(m, sizeof m, "3.0.0", 3, 40, now + 30 * 86400);
    pf_put("releases/3.0.0.manifest", m, mlen);
    /* 8 URLs of 200 bytes: a valid manifest too big for any HINT */
    uint8_t big[UG_OBJ_MAX];
    size_t big_len = pf_make_manifest(big, sizeof big, "2.0.0", 8, 200, now + 86400);
    cr_assert(ug_hint_max_len(big_len) > UG_DGRAM_MAX);
    pf_put("releases/big.manifest", big, big_len);
    pf_put("releases/garbage.manifest", "not msgpack at all", 18);
    uint8_t short_pk[31] = {1};
    pf_put_b64("keys/short.pub", short_pk, sizeof short_pk);
    const char *canary = "1001\n# comment\n\n  1002  \r\n1003";
    pf_put("lists/canary.txt", canary, strlen(canary));
}

void pf_teardown(void)
{
    if (chdir("/") != 0) /* a test may have moved into the dir removed here */
        cr_log_warn("chdir /");
    if (pf_dir[0])
        nftw(pf_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}



ug_policy *pf_load_text(const char *path, const char *text, char *err, size_t cap)
{
    tu_write_file(path, text, strlen(text));
    return ug_policy_load(path, err, cap);
}

ug_policy *pf_load_ok(const char *text)
{
    char err[UG_ERR_MAX] = "";
    ug_policy *p = pf_load_text(pf_yaml, text, err, sizeof err);
    cr_assert(p != NULL, "refused: %s", err);
    cr_assert_str_empty(err);
    return p;
}

/* The policy text must be refused with an error naming file:line: key. */
void pf_fail_at_file(const char *text, const char *file, unsigned line, const char *key)
{
    char err[UG_ERR_MAX] = "", want[1024];
    ug_policy *p = pf_load_text(pf_yaml, text, err, sizeof err);
    cr_assert_null(p, "accepted, wanted an error at %s:%u: %s", file, line, key);
    snprintf(want, sizeof want, "%s:%u: %s: ", file, line, key);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "got  \"%s\"\nwant \"%s...\"", err, want);
    cr_assert(strlen(err) > strlen(want), "no message: %s", err);
    cr_assert_null(strchr(err, '\n'), "error is more than one line: %s", err);
}

void pf_fail_at(const char *text, unsigned line, const char *key)
{
    pf_fail_at_file(text, pf_yaml, line, key);
}

/* ---- full policies ---------------------------------------------------------- */
const ug_cond *pf_cond(const ug_stage *s, const char *key)
{
    for (size_t i = 0; i < s->nconds; i++)
        if (strcmp(s->conds[i].kind->key, key) == 0)
            return &s->conds[i];
    cr_assert_fail("stage %s has no %s condition", s->name, key);
    return NULL;
}

const char *pf_cond_keys(const ug_stage *s)
{
    static char out[256];
    const char *k[32];
    cr_assert(s->nconds <= 32);
    for (size_t i = 0; i < s->nconds; i++)
        k[i] = s->conds[i].kind->key;
    for (size_t i = 1; i < s->nconds; i++)
        for (size_t j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
            const char *t = k[j];
            k[j] = k[j - 1];
            k[j - 1] = t;
        }
    out[0] = '\0';
    for (size_t i = 0; i < s->nconds; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", i ? "," : "", k[i]);
    return out;
}

const char *pf_describe(const ug_stage *s, const char *key)
{
    static char out[512];
    const ug_cond *c = pf_cond(s, key);
    c->kind->describe(c->arg, out, sizeof out);
    return out;
}

bool pf_holds(const ug_stage *s, const char *key, uint64_t uid, const struct sockaddr *src)
{
    const ug_cond *c = pf_cond(s, key);
    ug_peer peer = {.uid = uid, .plat = "", .chan = "", .src = src};
    return c->kind->match(c->arg, &peer);
}

bool pf_net_has(const ug_stage *s, const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(a, ':')) {
        ss.ss_family = AF_INET6;
        cr_assert(inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1, "%s", a);
    } else {
        ss.ss_family = AF_INET;
        cr_assert(inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr) == 1, "%s", a);
    }
    return pf_holds(s, "networks", 1, (const struct sockaddr *)&ss);
}

bool pf_uid_in(const ug_stage *s, uint64_t uid)
{
    return pf_holds(s, "uids", uid, NULL);
}

bool pf_selects(const ug_stage *s, const ug_hello *h, const struct sockaddr *src, int64_t now)
{
    ug_peer peer = {.uid = h->uid, .ver = &h->ver, .plat = h->plat, .chan = h->chan, .src = src, .now = now};
    return ug_stage_active(s, now) && ug_stage_matches(s, &peer) &&
           (!s->has_percent || ug_percent_bucket(s->salt, s->salt_len, h->uid) < ug_percent_at(&s->percent, now));
}

ug_hello pf_hello(uint64_t uid, const char *plat, const char *chan)
{
    ug_hello h;
    memset(&h, 0, sizeof h);
    h.uid = uid;
    snprintf(h.plat, sizeof h.plat, "%s", plat);
    snprintf(h.chan, sizeof h.chan, "%s", chan);
    return h;
}

struct sockaddr_in6 pf_addr6(const char *a)
{
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof s);
    s.sin6_family = AF_INET6;
    cr_assert(inet_pton(AF_INET6, a, &s.sin6_addr) == 1);
    return s;
}

struct sockaddr_in pf_addr4(const char *a)
{
    struct sockaddr_in s;
    memset(&s, 0, sizeof s);
    s.sin_family = AF_INET;
    cr_assert(inet_pton(AF_INET, a, &s.sin_addr) == 1);
    return s;
}
