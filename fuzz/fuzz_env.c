/* A fixed tracker setup for the policy and plugin fuzzers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fuzz_env.h"

static void die(const char *what) __attribute__((noreturn));
static void die(const char *what)
{
    fprintf(stderr, "fuzz setup: %s\n", what);
    abort();
}

static void keypair(uint8_t fill, uint8_t sk[UG_SK_LEN], uint8_t pk[UG_PK_LEN], uint8_t seed[UG_SEED_LEN])
{
    memset(seed, fill, UG_SEED_LEN);
    crypto_sign_seed_keypair(pk, sk, seed);
}

static void write_file(const fz_env *e, const char *name, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", e->dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        die(path);
}

static void key_file(const fz_env *e, const char *name, const uint8_t *data)
{
    char path[128], why[128];
    snprintf(path, sizeof path, "%s/%s", e->dir, name);
    if (ug_keyfile_write(path, data, 32, true, why, sizeof why) != 0)
        die(why);
}

void fz_env_init(fz_env *e, const char *policy)
{
    if (sodium_init() < 0)
        die("sodium");
    snprintf(e->dir, sizeof e->dir, "/tmp/ugfuzz.XXXXXX");
    if (!mkdtemp(e->dir))
        die("mkdtemp");
    uint8_t seed[UG_SEED_LEN], hint_sk[UG_SK_LEN], rel_sk[UG_SK_LEN];
    keypair(0x01, e->issuer_sk, e->issuer_pk, seed); /* keys.json's issuer and client */
    key_file(e, "issuer.pub", e->issuer_pk);
    keypair(0x02, e->client_sk, e->client_pk, seed);
    keypair(0x03, hint_sk, e->hint_pk, seed);
    key_file(e, "hint.key", seed);
    keypair(0x04, rel_sk, e->release_pk, seed);
    key_file(e, "release.pub", e->release_pk);

    ug_manifest m = {.size = 2000, .exp = FZ_NOW + 86400 * 365, .nurls = 2};
    if (ug_version_parse(&m.to, "2.0.0", 5) != 0)
        die("version");
    snprintf(m.urls[0], sizeof m.urls[0], "https://dl1.example.net/app-2.0.0.bin");
    snprintf(m.urls[1], sizeof m.urls[1], "https://dl2.example.net/app-2.0.0.bin");
    ug_kid(m.kid, e->release_pk);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t blen, olen;
    if (ug_manifest_encode_body(body, sizeof body, &blen, &m) != 0 ||
        ug_signed_encode(obj, sizeof obj, &olen, UG_CTX_RELEASE, body, blen, rel_sk) != 0)
        die("manifest");
    write_file(e, "release.manifest", obj, olen);
    write_file(e, "uids.txt", "1001\n1002\n", 10);
    if (policy)
        write_file(e, "policy.yaml", policy, strlen(policy));
}

size_t fz_hello(const fz_env *e, uint8_t *out, uint64_t uid, const char *ver, size_t target, const char *plat)
{
    ug_cred c = {.uid = uid, .exp = FZ_NOW + 86400};
    memcpy(c.pk, e->client_pk, UG_PK_LEN);
    ug_kid(c.kid, e->issuer_pk);
    uint8_t cb[128], co[256];
    size_t cbl, col, len;
    if (ug_cred_encode_body(cb, sizeof cb, &cbl, &c) != 0 ||
        ug_signed_encode(co, sizeof co, &col, UG_CTX_CRED, cb, cbl, e->issuer_sk) != 0)
        die("cred");
    ug_hello_fields h = {.uid = uid, .ver = ver, .ts = FZ_NOW, .cred = co, .cred_len = col, .plat = plat};
    memcpy(h.nonce, &uid, sizeof uid);
    memcpy(h.pk, e->client_pk, UG_PK_LEN);
    if (ug_hello_build(out, UG_DGRAM_MAX, &len, &h, target, e->client_sk) != 0)
        die("hello");
    return len;
}
