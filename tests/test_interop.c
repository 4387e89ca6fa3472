/* What our tools write, read back by an independent implementation of the
 * spec (tests/indep/verify.py: its own msgpack, RFC 8032 Ed25519, hashlib). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "forge.h"
#include "testutil.h"

static char root[1024];

static void init(void)
{
    cr_assert(sodium_init() >= 0);
    const char *r = getenv("UG_ROOT");
    snprintf(root, sizeof root, "%s", r && *r ? r : ".");
}

/* The verifier is pure Python (about 5 ms of CPU per signature); a vector
 * file goes through one interpreter (verify.py batch). The timeout is there
 * to catch a hang, not to time it. */
TestSuite(interop, .init = init, .timeout = 480);

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

/* The verifier is worth something only if it tells good from bad: every
 * vector of tracker.json (HELLO) and report.json (REPORT), at the vectors'
 * clock, gets the verdict the spec gives it. */
static void verifier_on(const char *file, const char *cmd)
{
    json_t *j = tu_vectors(file);
    const char *issuer = json_string_value(json_array_get(json_object_get(j, "trusted_issuers"), 0));
    long long now = (long long)json_integer_value(json_object_get(j, "now"));
    char in[] = "/tmp/ug-interop-XXXXXX";
    int fd = mkstemp(in);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    json_t *v, *vs = json_object_get(j, "vectors");
    size_t i;
    json_array_foreach(vs, i, v)
        fprintf(f, "%s %s %s %lld\n", cmd, json_string_value(json_object_get(v, "hex")), issuer, now);
    cr_assert_eq(fclose(f), 0);

    char sh[2048];
    snprintf(sh, sizeof sh, "python3 %s/tests/indep/verify.py batch < %s", root, in);
    FILE *p = popen(sh, "r");
    cr_assert_not_null(p);
    char line[1024];
    size_t n = 0;
    for (; n < json_array_size(vs) && fgets(line, sizeof line, p); n++) {
        v = json_array_get(vs, n);
        const char *name = json_string_value(json_object_get(v, "name"));
        bool good = strcmp(json_string_value(json_object_get(v, "expect")), "accept") == 0;
        bool ok = strncmp(line, "ok\n", 3) == 0;
        if (!ok)
            cr_log_info("verify.py on '%s': %s", name, line);
        cr_expect_eq(ok, good, "independent verifier on %s '%s'", file, name);
    }
    cr_expect_eq(pclose(p), 0);
    unlink(in);
    cr_assert_eq(n, json_array_size(vs), "a verdict for every vector of %s", file);
    cr_assert_geq(n, 20);
    json_decref(j);
}

Test(interop, verifier_checks_itself_on_the_vectors)
{
    verifier_on("tracker.json", "hello");
}

Test(interop, verifier_checks_itself_on_the_report_vectors)
{
    verifier_on("report.json", "report");
}

/* A signature with R = identity and S = h * a passes a plain cofactorless
 * check: the verifier must refuse it as libsodium does (small-order R). */
Test(interop, verifier_refuses_small_order_r)
{
    json_t *j = tu_vectors("tracker.json");
    const char *issuer = json_string_value(json_array_get(json_object_get(j, "trusted_issuers"), 0));
    uint8_t csk[UG_SK_LEN], cpk[UG_PK_LEN], buf[UG_DGRAM_MAX], out[UG_DGRAM_MAX], sig[UG_SIG_LEN];
    tu_vector_key("client", csk, cpk);
    size_t len = tu_unhex(json_string_value(json_object_get(json_array_get(json_object_get(j, "vectors"), 0), "hex")),
                          buf, sizeof buf);
    ug_dgram d;
    cr_assert_eq(ug_dgram_decode(&d, buf, len, NULL), 0);
    char hex[2 * UG_DGRAM_MAX + 1], args[4096];
    sodium_bin2hex(hex, sizeof hex, buf, len);
    snprintf(args, sizeof args, "hello %s %s", hex, issuer);
    cr_assert_eq(verify(args), 0, "the base vector");
    fg_sig_identity_r(sig, UG_CTX_HELLO, d.body, d.body_len, csk);
    cr_assert(fg_cofactorless_ok(sig, UG_CTX_HELLO, d.body, d.body_len, cpk));
    size_t olen = fg_seal(out, sizeof out, UG_TYPE_HELLO, d.body, d.body_len, sig);
    sodium_bin2hex(hex, sizeof hex, out, olen);
    snprintf(args, sizeof args, "hello %s %s", hex, issuer);
    cr_assert_neq(verify(args), 0, "R = identity accepted");
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
    /* flip one byte (writing a fixed one left the package unchanged 1 time in 256) */
    snprintf(cmd, sizeof cmd, "%s/pkg", d);
    FILE *f = fopen(cmd, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 10, SEEK_SET), 0);
    int c = fgetc(f);
    cr_assert_neq(c, EOF);
    cr_assert_eq(fseek(f, 10, SEEK_SET), 0);
    cr_assert_neq(fputc(c ^ 0xff, f), EOF);
    cr_assert_eq(fclose(f), 0);
    cr_assert_neq(verify(args), 0, "manifest of another package");
}

/* Fresh issuer and client keys and a credential for uid: what our
 * encoders' output is checked against. */
typedef struct {
    uint8_t isk[UG_SK_LEN], ipk[UG_PK_LEN], csk[UG_SK_LEN], cpk[UG_PK_LEN];
    uint8_t cred[256];
    size_t cred_len;
    char ihex[2 * UG_PK_LEN + 1];
} issued;

static void issue(issued *k, uint64_t uid)
{
    crypto_sign_keypair(k->ipk, k->isk);
    crypto_sign_keypair(k->cpk, k->csk);
    ug_cred c = {.uid = uid, .exp = 2000000000};
    memcpy(c.pk, k->cpk, UG_PK_LEN);
    ug_kid(c.kid, k->ipk);
    uint8_t cb[128];
    size_t cbl;
    cr_assert_eq(ug_cred_encode_body(cb, sizeof cb, &cbl, &c), 0);
    cr_assert_eq(ug_signed_encode(k->cred, sizeof k->cred, &k->cred_len, UG_CTX_CRED, cb, cbl, k->isk), 0);
    sodium_bin2hex(k->ihex, sizeof k->ihex, k->ipk, sizeof k->ipk);
}

static int verify_datagram(const char *cmd, const uint8_t *out, size_t len, const char *ihex)
{
    char hex[2 * UG_DGRAM_MAX + 1], args[4096];
    sodium_bin2hex(hex, sizeof hex, out, len);
    snprintf(args, sizeof args, "%s %s %s", cmd, hex, ihex);
    return verify(args);
}

Test(interop, our_hello_encoder)
{
    issued k;
    issue(&k, 77);
    uint8_t out[UG_DGRAM_MAX];
    size_t len;
    ug_hello_fields h = {.uid = 77, .ver = "1.4.2", .ts = 1790000000, .cred = k.cred, .cred_len = k.cred_len,
                         .plat = "linux-x86_64"};
    memcpy(h.pk, k.cpk, UG_PK_LEN);
    cr_assert_eq(ug_hello_build(out, sizeof out, &len, &h, 700, k.csk), 0);
    cr_assert_eq(verify_datagram("hello", out, len, k.ihex), 0);
}

Test(interop, our_report_encoder)
{
    issued k;
    issue(&k, 78);
    static const size_t targets[] = {0, 400, 1232};
    for (size_t i = 0; i < 3; i++) {
        uint8_t out[UG_DGRAM_MAX];
        size_t len;
        ug_report_fields r = {.uid = 78, .ver = "1.4.2", .to = "2.0.0.1", .res = UG_RES_ROLLED_BACK,
                              .ts = 1790000000, .cred = k.cred, .cred_len = k.cred_len};
        memcpy(r.pk, k.cpk, UG_PK_LEN);
        cr_assert_eq(ug_report_build(out, sizeof out, &len, &r, targets[i], k.csk), 0);
        cr_assert_eq(verify_datagram("report", out, len, k.ihex), 0, "REPORT padded to %zu", targets[i]);
    }
}
