/* What our tools write, read back by an independent implementation of the
 * spec (tests/indep/verify.py: its own msgpack, RFC 8032 Ed25519, hashlib). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "testutil.h"

static char root[1024];

static void init(void)
{
    cr_assert(sodium_init() >= 0);
    const char *r = getenv("UG_ROOT");
    snprintf(root, sizeof root, "%s", r && *r ? r : ".");
}

TestSuite(interop, .init = init, .timeout = 120);

static int verify(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "python3 %s/tests/indep/verify.py %s 2>&1", root, args);
    char out[1024];
    int rc = tu_run(cmd, out, sizeof out);
    if (rc != 0)
        cr_log_info("verify.py %s", out);
    return rc;
}

/* The verifier is worth something only if it tells good from bad. */
Test(interop, verifier_checks_itself_on_the_vectors)
{
    json_t *j = tu_vectors("tracker.json");
    const char *issuer = json_string_value(json_array_get(json_object_get(j, "trusted_issuers"), 0));
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        bool good = strcmp(json_string_value(json_object_get(v, "expect")), "accept") == 0;
        if (!good && !strstr(name, "signature") && !strstr(name, "signed") && !strstr(name, "mismatch"))
            continue; /* it checks signatures and bindings, not every rule */
        char args[4096];
        snprintf(args, sizeof args, "hello %s %s", json_string_value(json_object_get(v, "hex")), issuer);
        cr_assert_eq(verify(args) == 0, good, "independent verifier on '%s'", name);
    }
    json_decref(j);
}

Test(interop, keys_credentials_and_manifests)
{
    const char *d = tu_tmpdir(), *b = tu_build_dir();
    char cmd[4096], args[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && for k in issuer client release; do %s/upgate-keys gen $k || exit 1; done && "
             "%s/upgate-keys cred --issuer issuer.key --uid 4242 --pub client.pub --ttl 600 --out c.cred && "
             "head -c 5000 /dev/urandom > pkg && "
             "%s/upgate-keys release --key release.key --version 2.0.1 --file pkg --url https://a.example/p "
             "--url http://b.example/p --ttl 600 --out r.manifest",
             d, b, b, b);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0);
    snprintf(args, sizeof args, "cred %s/c.cred %s/issuer.pub %s/client.pub 4242", d, d, d);
    cr_assert_eq(verify(args), 0, "credential");
    snprintf(args, sizeof args, "cred %s/c.cred %s/issuer.pub %s/client.pub 4243", d, d, d);
    cr_assert_neq(verify(args), 0, "credential for another uid");
    snprintf(args, sizeof args, "cred %s/c.cred %s/release.pub %s/client.pub 4242", d, d, d);
    cr_assert_neq(verify(args), 0, "credential under another issuer");
    snprintf(args, sizeof args, "release %s/r.manifest %s/release.pub %s/pkg 2.0.1 https://a.example/p http://b.example/p",
             d, d, d);
    cr_assert_eq(verify(args), 0, "manifest");
    snprintf(cmd, sizeof cmd, "printf x | dd of=%s/pkg bs=1 seek=10 conv=notrunc 2>/dev/null", d);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0);
    cr_assert_neq(verify(args), 0, "manifest of another package");
}

Test(interop, our_hello_encoder)
{
    uint8_t isk[UG_SK_LEN], ipk[UG_PK_LEN], csk[UG_SK_LEN], cpk[UG_PK_LEN];
    crypto_sign_keypair(ipk, isk);
    crypto_sign_keypair(cpk, csk);
    ug_cred c = {.uid = 77, .exp = 2000000000};
    memcpy(c.pk, cpk, UG_PK_LEN);
    ug_kid(c.kid, ipk);
    uint8_t cb[128], co[256], out[UG_DGRAM_MAX];
    size_t cbl, col, len;
    cr_assert_eq(ug_cred_encode_body(cb, sizeof cb, &cbl, &c), 0);
    cr_assert_eq(ug_signed_encode(co, sizeof co, &col, UG_CTX_CRED, cb, cbl, isk), 0);
    ug_hello_fields h = {.uid = 77, .ver = "1.4.2", .ts = 1790000000, .cred = co, .cred_len = col, .plat = "linux-x86_64"};
    memcpy(h.pk, cpk, UG_PK_LEN);
    cr_assert_eq(ug_hello_build(out, sizeof out, &len, &h, 700, csk), 0);
    char hex[2 * UG_DGRAM_MAX + 1], ihex[65], args[4096];
    sodium_bin2hex(hex, sizeof hex, out, len);
    sodium_bin2hex(ihex, sizeof ihex, ipk, sizeof ipk);
    snprintf(args, sizeof args, "hello %s %s", hex, ihex);
    cr_assert_eq(verify(args), 0);
}
