/* Tests of build/upgate-keys through its command line: files, modes, signatures, usage errors. */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "testutil.h"

static char g_dir[64];          /* this test's scratch directory */
static char g_bin[PATH_MAX];    /* absolute path of upgate-keys */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    snprintf(g_dir, sizeof g_dir, "/tmp/ugkeys-XXXXXX");
    cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
    char build[PATH_MAX];
    cr_assert_not_null(realpath(tu_build_dir(), build), "build dir %s: %s", tu_build_dir(), strerror(errno));
    cr_assert_lt((size_t)snprintf(g_bin, sizeof g_bin, "%s/upgate-keys", build), sizeof g_bin);
    cr_assert_eq(access(g_bin, X_OK), 0, "%s is not built", g_bin);
}

static void teardown(void)
{
    if (g_dir[0])
        (void)nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(keys, .init = setup, .fini = teardown, .timeout = 60);

/* What one run printed and returned. */
typedef struct {
    int rc;
    char out[8192];
    char err[8192];
} result;

static void read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

/* Runs "upgate-keys ARGS" (ARGS is shell text made of safe words) and
 * collects exit status, stdout and stderr. */
static void keys(result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void keys(result *r, const char *fmt, ...)
{
    char args[4096], cmd[8192], outp[128], errp[128];
    va_list ap;
    va_start(ap, fmt);
    cr_assert_lt((size_t)vsnprintf(args, sizeof args, fmt, ap), sizeof args);
    va_end(ap);
    snprintf(outp, sizeof outp, "%s/.stdout", g_dir);
    snprintf(errp, sizeof errp, "%s/.stderr", g_dir);
    cr_assert_lt((size_t)snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", g_bin, args, outp, errp),
                 sizeof cmd);
    r->rc = tu_run(cmd, NULL, 0);
    read_text(outp, r->out, sizeof r->out);
    read_text(errp, r->err, sizeof r->err);
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* cli.md: bad usage is exit 2 and one line on stderr. */
static void assert_usage(const result *r, const char *what)
{
    cr_assert_eq(r->rc, 2, "%s: exit %d, want 2 (stderr: %s)", what, r->rc, r->err);
    cr_assert_eq(count_char(r->err, '\n'), 1, "%s: want one line on stderr, got: %s", what, r->err);
    cr_assert_gt(strlen(r->err), 20, "%s: message too short: %s", what, r->err);
    cr_assert_eq(r->out[0], 0, "%s: nothing on stdout, got: %s", what, r->out);
}

static void path_of(char *buf, size_t cap, const char *name)
{
    cr_assert_lt((size_t)snprintf(buf, cap, "%s/%s", g_dir, name), cap);
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* A key file: an optional kind comment line (copied to comment, "" when
 * there is none), then one line of standard base64 of exactly want bytes. */
static void read_key_file(const char *path, uint8_t *out, size_t want, char *comment, size_t ccap)
{
    char text[512];
    read_text(path, text, sizeof text);
    char *line = text;
    comment[0] = 0;
    if (text[0] == '#') {
        char *nl = strchr(text, '\n');
        cr_assert_not_null(nl, "%s: a comment and nothing else", path);
        cr_assert_lt((size_t)(nl - text), ccap);
        memcpy(comment, text, (size_t)(nl - text));
        comment[nl - text] = 0;
        line = nl + 1;
    }
    size_t len = strlen(line);
    cr_assert(len > 1 && line[len - 1] == '\n', "%s: want a base64 line ending in a newline", path);
    cr_assert_eq(count_char(line, '\n'), 1, "%s: want exactly one base64 line", path);
    size_t bin_len = 0;
    const char *end = NULL;
    uint8_t buf[512];
    cr_assert_eq(sodium_base642bin(buf, sizeof buf, line, len - 1, NULL, &bin_len, &end,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0, "%s: not base64", path);
    cr_assert_eq(end, line + len - 1, "%s: trailing garbage", path);
    cr_assert_eq(bin_len, want, "%s: %zu bytes, want %zu", path, bin_len, want);
    memcpy(out, buf, want);
}

/* Runs gen NAME in the scratch dir and loads the pair; each file starts
 * with its kind comment naming the public key's id in lower case. */
static void gen(const char *name, uint8_t sk[UG_SK_LEN], uint8_t pk[UG_PK_LEN])
{
    result r;
    char base[PATH_MAX], kp[PATH_MAX], pp[PATH_MAX], kc[128], pc[128], want[128], hex[2 * UG_KID_LEN + 1];
    path_of(base, sizeof base, name);
    keys(&r, "gen %s", base);
    cr_assert_eq(r.rc, 0, "gen %s: %s", name, r.err);
    cr_assert_lt((size_t)snprintf(kp, sizeof kp, "%s.key", base), sizeof kp);
    cr_assert_lt((size_t)snprintf(pp, sizeof pp, "%s.pub", base), sizeof pp);
    uint8_t seed[UG_SEED_LEN], derived[UG_PK_LEN], kid[UG_KID_LEN];
    read_key_file(kp, seed, sizeof seed, kc, sizeof kc);
    read_key_file(pp, pk, UG_PK_LEN, pc, sizeof pc);
    crypto_sign_seed_keypair(derived, sk, seed);
    cr_assert_arr_eq(derived, pk, UG_PK_LEN, "%s.pub is not the public key of %s.key", name, name);
    ug_kid(kid, pk);
    sodium_bin2hex(hex, sizeof hex, kid, sizeof kid);
    snprintf(want, sizeof want, "# upgate secret key %s", hex);
    cr_assert_str_eq(kc, want, "%s.key's comment", name);
    snprintf(want, sizeof want, "# upgate public key %s", hex);
    cr_assert_str_eq(pc, want, "%s.pub's comment", name);
}

/* ---- gen ------------------------------------------------------------ */

Test(keys, gen_writes_a_secret_seed_and_its_public_key)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
    gen("alice", sk, pk);
    char kp[PATH_MAX], pp[PATH_MAX];
    path_of(kp, sizeof kp, "alice.key");
    path_of(pp, sizeof pp, "alice.pub");
    struct stat st;
    cr_assert_eq(stat(kp, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "alice.key has mode %o, want 0600", (unsigned)(st.st_mode & 07777));
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(stat(pp, &st), 0);
    cr_assert_eq(st.st_mode & 077, st.st_mode & 044 & 077, "alice.pub must not be group/other writable");

    /* two runs give two different keys */
    uint8_t sk2[UG_SK_LEN], pk2[UG_PK_LEN];
    gen("bob", sk2, pk2);
    cr_assert_arr_neq(pk, pk2, UG_PK_LEN);
}

Test(keys, gen_refuses_to_overwrite)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
    gen("carol", sk, pk);
    char base[PATH_MAX], kp[PATH_MAX], pp[PATH_MAX], key_before[512], pub_before[512], now[512];
    path_of(base, sizeof base, "carol");
    path_of(kp, sizeof kp, "carol.key");
    path_of(pp, sizeof pp, "carol.pub");
    read_text(kp, key_before, sizeof key_before);
    read_text(pp, pub_before, sizeof pub_before);
    result r;
    keys(&r, "gen %s", base);
    cr_assert_eq(r.rc, 1, "second gen: exit %d, want 1", r.rc);
    cr_assert_not_null(strstr(r.err, "carol.key"), "message should name the file: %s", r.err);
    cr_assert_eq(count_char(r.err, '\n'), 1, "one line: %s", r.err);
    read_text(kp, now, sizeof now);
    cr_assert_str_eq(now, key_before, "carol.key changed");
    read_text(pp, now, sizeof now);
    cr_assert_str_eq(now, pub_before, "carol.pub changed");

    /* only the .pub exists: refused too, and no .key appears beside it */
    char lone[PATH_MAX], lone_pub[PATH_MAX], lone_key[PATH_MAX];
    path_of(lone, sizeof lone, "dave");
    path_of(lone_pub, sizeof lone_pub, "dave.pub");
    path_of(lone_key, sizeof lone_key, "dave.key");
    tu_write_file(lone_pub, "keep me\n", 8);
    keys(&r, "gen %s", lone);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "dave.pub"), "message should name the file: %s", r.err);
    cr_assert(!exists(lone_key), "a fresh dave.key was left beside the old dave.pub");
    read_text(lone_pub, now, sizeof now);
    cr_assert_str_eq(now, "keep me\n");
}

Test(keys, gen_into_a_missing_directory_fails)
{
    result r;
    keys(&r, "gen %s/no/such/dir/eve", g_dir);
    cr_assert_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_assert_not_null(strstr(r.err, "eve.key"), "message should name the file: %s", r.err);
}

/* ---- kid ------------------------------------------------------------ */

Test(keys, kid_prints_the_key_id_in_hex)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], kid[UG_KID_LEN];
    gen("frank", sk, pk);
    ug_kid(kid, pk);
    char hex[2 * UG_KID_LEN + 1], want[2 * UG_KID_LEN + 2];
    snprintf(want, sizeof want, "%s\n", sodium_bin2hex(hex, sizeof hex, kid, sizeof kid));
    result r;
    keys(&r, "kid %s/frank.pub", g_dir);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(strlen(r.out), 17, "want 16 hex digits and a newline: %s", r.out);
    cr_assert_str_eq(r.out, want);

    keys(&r, "kid %s/nobody.pub", g_dir);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "nobody.pub"), "%s", r.err);

    char bad[PATH_MAX];
    path_of(bad, sizeof bad, "bad.pub");
    tu_write_file(bad, "this is not base64!\n", 20);
    keys(&r, "kid %s", bad);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "bad.pub"), "%s", r.err);
}

/* ---- cred ----------------------------------------------------------- */

Test(keys, cred_is_signed_by_the_issuer_and_binds_uid_and_key)
{
    uint8_t isk[UG_SK_LEN], ipk[UG_PK_LEN], csk[UG_SK_LEN], cpk[UG_PK_LEN];
    gen("issuer", isk, ipk);
    gen("client", csk, cpk);
    uint64_t before = (uint64_t)time(NULL);
    result r;
    keys(&r, "cred --issuer %s/issuer.key --uid 9223372036854775807 --pub %s/client.pub --ttl 3600 --out %s/c.cred",
         g_dir, g_dir, g_dir);
    uint64_t after = (uint64_t)time(NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    char path[PATH_MAX];
    path_of(path, sizeof path, "c.cred");
    uint8_t obj_buf[512];
    char text[1024];
    read_text(path, text, sizeof text);
    size_t len = strlen(text), obj_len = 0;
    cr_assert(len > 1 && text[len - 1] == '\n' && count_char(text, '\n') == 1, "one base64 line");
    cr_assert_eq(sodium_base642bin(obj_buf, sizeof obj_buf, text, len - 1, NULL, &obj_len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0);
    ug_signed s;
    ug_cred c;
    ug_err err;
    cr_assert_eq(ug_signed_decode(&s, obj_buf, obj_len, &err), 0, "%s", ug_err_name(err));
    cr_assert_eq(s.raw_len, obj_len, "bytes after the signed object");
    cr_assert_eq(ug_verify(s.sig, UG_CTX_CRED, s.body, s.body_len, ipk), 0, "not signed by the issuer");
    cr_assert_neq(ug_verify(s.sig, UG_CTX_HELLO, s.body, s.body_len, ipk), 0, "context not bound");
    cr_assert_neq(ug_verify(s.sig, UG_CTX_CRED, s.body, s.body_len, cpk), 0);
    cr_assert_eq(ug_cred_decode(&c, s.body, s.body_len, &err), 0, "%s", ug_err_name(err));
    cr_assert_eq(c.uid, (uint64_t)INT64_MAX);
    cr_assert_arr_eq(c.pk, cpk, UG_PK_LEN);
    cr_assert(c.exp >= before + 3600 && c.exp <= after + 3600, "exp %llu not now+ttl", (unsigned long long)c.exp);
    uint8_t kid[UG_KID_LEN];
    ug_kid(kid, ipk);
    cr_assert_arr_eq(c.kid, kid, UG_KID_LEN);
}

Test(keys, cred_with_an_unreadable_key_fails_naming_it)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
    gen("client", sk, pk);
    result r;
    keys(&r, "cred --issuer %s/missing.key --uid 5 --pub %s/client.pub --ttl 60 --out %s/c.cred", g_dir, g_dir,
         g_dir);
    cr_assert_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_assert_not_null(strstr(r.err, "missing.key"), "%s", r.err);
    cr_assert_eq(count_char(r.err, '\n'), 1, "%s", r.err);

    char garbage[PATH_MAX], cred[PATH_MAX];
    path_of(garbage, sizeof garbage, "garbage.key");
    path_of(cred, sizeof cred, "c.cred");
    tu_write_file(garbage, "AAAA\n", 5); /* base64, but 3 bytes */
    keys(&r, "cred --issuer %s --uid 5 --pub %s/client.pub --ttl 60 --out %s", garbage, g_dir, cred);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "garbage.key"), "%s", r.err);

    keys(&r, "cred --issuer %s/client.key --uid 5 --pub %s/missing.pub --ttl 60 --out %s", g_dir, g_dir, cred);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "missing.pub"), "%s", r.err);
    cr_assert(!exists(cred), "no credential after a failure");
}

Test(keys, bad_uid_and_ttl_are_usage_errors)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
    gen("k", sk, pk);
    static const char *const bad_uids[] = {"0", "-1", "12x", "9223372036854775808", "18446744073709551616",
                                           "' '", "0x10", "+5", "''"};
    for (size_t i = 0; i < sizeof bad_uids / sizeof bad_uids[0]; i++) {
        result r;
        keys(&r, "cred --issuer %s/k.key --uid %s --pub %s/k.pub --ttl 60 --out %s/c.cred", g_dir, bad_uids[i],
             g_dir, g_dir);
        char what[64];
        snprintf(what, sizeof what, "--uid %s", bad_uids[i]);
        assert_usage(&r, what);
        cr_assert_not_null(strstr(r.err, "--uid"), "the message should name --uid: %s", r.err);
    }
    static const char *const bad_ttls[] = {"0", "-5", "1h", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ttls / sizeof bad_ttls[0]; i++) {
        result r;
        keys(&r, "cred --issuer %s/k.key --uid 7 --pub %s/k.pub --ttl %s --out %s/c.cred", g_dir, g_dir,
             bad_ttls[i], g_dir);
        assert_usage(&r, bad_ttls[i]);
        cr_assert_not_null(strstr(r.err, "--ttl"), "the message should name --ttl: %s", r.err);
    }
    char cred[PATH_MAX];
    path_of(cred, sizeof cred, "c.cred");
    cr_assert(!exists(cred));
}

/* ---- release -------------------------------------------------------- */

static void make_package(const char *name, size_t n, uint8_t hash[UG_HASH_LEN])
{
    uint8_t *data = malloc(n ? n : 1);
    cr_assert_not_null(data);
    randombytes_buf(data, n);
    char path[PATH_MAX];
    path_of(path, sizeof path, name);
    tu_write_file(path, data, n);
    crypto_generichash(hash, UG_HASH_LEN, data, n, NULL, 0);
    free(data);
}

/* Reads a manifest file and checks its signature under pk. */
static void load_manifest(const char *name, const uint8_t pk[UG_PK_LEN], ug_manifest *m, size_t *obj_len)
{
    static uint8_t buf[UG_OBJ_MAX];
    char path[PATH_MAX], why[128];
    path_of(path, sizeof path, name);
    size_t len;
    cr_assert_eq(ug_file_read(path, buf, sizeof buf, &len, why, sizeof why), 0, "%s: %s", path, why);
    ug_signed s;
    ug_err err;
    cr_assert_eq(ug_signed_decode(&s, buf, len, &err), 0, "%s", ug_err_name(err));
    cr_assert_eq(s.raw_len, len, "a manifest file is the raw signed object and nothing else");
    cr_assert_eq(ug_verify(s.sig, UG_CTX_RELEASE, s.body, s.body_len, pk), 0, "not signed by the release key");
    cr_assert_neq(ug_verify(s.sig, UG_CTX_HINT, s.body, s.body_len, pk), 0, "context not bound");
    cr_assert_eq(ug_manifest_decode(m, s.body, s.body_len, &err), 0, "%s", ug_err_name(err));
    *obj_len = len;
}

Test(keys, release_signs_size_hash_urls_and_expiry)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], hash[UG_HASH_LEN];
    gen("release", sk, pk);
    make_package("app.bin", 70000, hash); /* more than one read buffer */
    uint64_t before = (uint64_t)time(NULL);
    result r;
    keys(&r, "release --key %s/release.key --version 2.0.1 --file %s/app.bin --url https://a.example/app.bin "
             "--url http://b.example:8080/x/app.bin --url https://c.example/app.bin --ttl 86400 --out %s/app.manifest",
         g_dir, g_dir, g_dir);
    uint64_t after = (uint64_t)time(NULL);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    ug_manifest m;
    size_t len;
    load_manifest("app.manifest", pk, &m, &len);
    cr_assert_leq(ug_hint_max_len(len), UG_DGRAM_MAX, "a HINT could not carry it");
    ug_version want;
    cr_assert_eq(ug_version_parse(&want, "2.0.1", 5), 0);
    cr_assert_eq(ug_version_cmp(&m.to, &want), 0);
    cr_assert_eq(m.size, 70000);
    cr_assert_arr_eq(m.hash, hash, UG_HASH_LEN);
    cr_assert_eq(m.nurls, 3);
    cr_assert_str_eq(m.urls[0], "https://a.example/app.bin");
    cr_assert_str_eq(m.urls[1], "http://b.example:8080/x/app.bin");
    cr_assert_str_eq(m.urls[2], "https://c.example/app.bin");
    cr_assert(m.exp >= before + 86400 && m.exp <= after + 86400);
    uint8_t kid[UG_KID_LEN];
    ug_kid(kid, pk);
    cr_assert_arr_eq(m.kid, kid, UG_KID_LEN);

    /* show prints what was signed */
    keys(&r, "show %s/app.manifest", g_dir);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "to 2.0.1\n"), "show: %s", r.out);
    cr_assert_not_null(strstr(r.out, "size 70000\n"), "show: %s", r.out);
    cr_assert_not_null(strstr(r.out, "url https://a.example/app.bin\n"), "show: %s", r.out);
    char hex[2 * UG_HASH_LEN + 1];
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    cr_assert_not_null(strstr(r.out, hex), "show should print the hash: %s", r.out);
    /* times as RFC 3339 UTC, as every other tool and doc writes them */
    char want_exp[64];
    time_t exp = (time_t)m.exp;
    struct tm tm;
    cr_assert_not_null(gmtime_r(&exp, &tm));
    strftime(want_exp, sizeof want_exp, "exp %Y-%m-%dT%H:%M:%SZ\n", &tm);
    cr_assert_not_null(strstr(r.out, want_exp), "show should print %s in: %s", want_exp, r.out);
}

Test(keys, release_of_an_empty_package)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], hash[UG_HASH_LEN];
    gen("release", sk, pk);
    make_package("empty.bin", 0, hash);
    result r;
    keys(&r, "release --key %s/release.key --version 3 --file %s/empty.bin --url https://a.example/e --ttl 60 "
             "--out %s/e.manifest",
         g_dir, g_dir, g_dir);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    ug_manifest m;
    size_t len;
    load_manifest("e.manifest", pk, &m, &len);
    cr_assert_eq(m.size, 0);
    cr_assert_arr_eq(m.hash, hash, UG_HASH_LEN);
}

/* n URLs of exactly url_len bytes, as --url arguments. */
static void url_args(char *buf, size_t cap, unsigned n, size_t url_len)
{
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        char url[512];
        int k = snprintf(url, sizeof url, "https://m%u.example/", i);
        cr_assert(url_len >= (size_t)k && url_len < sizeof url);
        memset(url + k, 'a', url_len - (size_t)k);
        url[url_len] = 0;
        int w = snprintf(buf + off, cap - off, " --url %s", url);
        cr_assert(w > 0 && (size_t)w < cap - off);
        off += (size_t)w;
    }
}

Test(keys, release_url_limits)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], hash[UG_HASH_LEN];
    gen("release", sk, pk);
    make_package("p.bin", 100, hash);
    char urls[8192], out[PATH_MAX];
    path_of(out, sizeof out, "p.manifest");
    result r;

    /* 8 short URLs are fine */
    url_args(urls, sizeof urls, 8, 40);
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin%s --ttl 60 --out %s", g_dir, g_dir, urls,
         out);
    cr_assert_eq(r.rc, 0, "%s", r.err);
    ug_manifest m;
    size_t len;
    load_manifest("p.manifest", pk, &m, &len);
    cr_assert_eq(m.nurls, 8);
    cr_assert_leq(ug_hint_max_len(len), UG_DGRAM_MAX);
    cr_assert_eq(remove(out), 0);

    /* a 9th --url */
    url_args(urls, sizeof urls, 9, 30);
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin%s --ttl 60 --out %s", g_dir, g_dir, urls,
         out);
    assert_usage(&r, "9 urls");
    cr_assert_not_null(strstr(r.err, "--url"), "%s", r.err);

    /* a URL of 201 bytes, one of exactly 200 is fine */
    url_args(urls, sizeof urls, 1, 201);
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin%s --ttl 60 --out %s", g_dir, g_dir, urls,
         out);
    assert_usage(&r, "201-byte url");
    url_args(urls, sizeof urls, 1, 200);
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin%s --ttl 60 --out %s", g_dir, g_dir, urls,
         out);
    cr_assert_eq(r.rc, 0, "200-byte url: %s", r.err);
    cr_assert_eq(remove(out), 0);

    /* not http(s) */
    static const char *const bad[] = {"ftp://a.example/p", "file:///etc/passwd", "a.example/p", "''"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin --url %s --ttl 60 --out %s", g_dir,
             g_dir, bad[i], out);
        assert_usage(&r, bad[i]);
    }

    /* each URL valid, together too long for a HINT: refused, nothing written.
     * (upgate-keys exits 1 here, the brief asked for 2: either is accepted) */
    url_args(urls, sizeof urls, 8, 200);
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin%s --ttl 60 --out %s", g_dir, g_dir, urls,
         out);
    cr_assert(r.rc == 1 || r.rc == 2, "8 x 200-byte urls: exit %d: %s", r.rc, r.err);
    cr_assert_eq(count_char(r.err, '\n'), 1, "%s", r.err);
    cr_assert(!exists(out), "an oversized manifest was written");
}

Test(keys, release_usage_and_file_errors)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], hash[UG_HASH_LEN];
    gen("release", sk, pk);
    make_package("p.bin", 10, hash);
    char out[PATH_MAX];
    path_of(out, sizeof out, "p.manifest");
    result r;
    static const char *const bad_versions[] = {"1.02", "1.2.3.4.5", "v1", "1..2", "''", "4294967296"};
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++) {
        keys(&r, "release --key %s/release.key --version %s --file %s/p.bin --url https://a.example/p --ttl 60 "
                 "--out %s",
             g_dir, bad_versions[i], g_dir, out);
        assert_usage(&r, bad_versions[i]);
        cr_assert_not_null(strstr(r.err, "--version"), "%s", r.err);
    }
    /* missing flags, one at a time */
    keys(&r, "release --version 2 --file %s/p.bin --url https://a.example/p --ttl 60 --out %s", g_dir, out);
    assert_usage(&r, "no --key");
    keys(&r, "release --key %s/release.key --file %s/p.bin --url https://a.example/p --ttl 60 --out %s", g_dir,
         g_dir, out);
    assert_usage(&r, "no --version");
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin --ttl 60 --out %s", g_dir, g_dir, out);
    assert_usage(&r, "no --url");
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin --url https://a.example/p --out %s", g_dir,
         g_dir, out);
    assert_usage(&r, "no --ttl");
    keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin --url https://a.example/p --ttl 60", g_dir,
         g_dir);
    assert_usage(&r, "no --out");
    /* an option of another command */
    keys(&r, "release --key %s/release.key --uid 3 --version 2 --file %s/p.bin --url https://a.example/p --ttl 60 "
             "--out %s",
         g_dir, g_dir, out);
    assert_usage(&r, "--uid in release");
    /* runtime failures name the file */
    keys(&r, "release --key %s/release.key --version 2 --file %s/nope.bin --url https://a.example/p --ttl 60 "
             "--out %s",
         g_dir, g_dir, out);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "nope.bin"), "%s", r.err);
    keys(&r, "release --key %s/nope.key --version 2 --file %s/p.bin --url https://a.example/p --ttl 60 --out %s",
         g_dir, g_dir, out);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "nope.key"), "%s", r.err);
    cr_assert(!exists(out));
}

/* ---- general usage -------------------------------------------------- */

Test(keys, usage_errors_are_exit_2_with_one_line)
{
    result r;
    keys(&r, "%s", "");
    assert_usage(&r, "no command");
    keys(&r, "frobnicate");
    assert_usage(&r, "unknown command");
    keys(&r, "gen");
    assert_usage(&r, "gen without NAME");
    keys(&r, "gen a b");
    assert_usage(&r, "gen with two names");
    keys(&r, "kid");
    assert_usage(&r, "kid without file");
    keys(&r, "cred --uid 5");
    assert_usage(&r, "cred with missing flags");
    keys(&r, "cred --issuer a --issuer b --uid 5 --pub p --ttl 5 --out o");
    assert_usage(&r, "flag given twice");
    keys(&r, "cred --bogus 1");
    assert_usage(&r, "unknown flag");
    keys(&r, "cred --issuer");
    assert_usage(&r, "flag without value");
    keys(&r, "show");
    assert_usage(&r, "show without file");
}

Test(keys, help_exits_0)
{
    result r;
    keys(&r, "--help");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "upgate-keys gen NAME"), "%s", r.out);
    cr_assert_eq(r.err[0], 0);
    keys(&r, "release --help");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "release"), "%s", r.out);
}

Test(keys, show_refuses_what_is_not_a_manifest)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
    gen("x", sk, pk);
    result r;
    keys(&r, "show %s/x.pub", g_dir);
    cr_assert_eq(r.rc, 1);
    cr_assert_not_null(strstr(r.err, "x.pub"), "%s", r.err);
}

/* ---- key file kinds (cli.md "Key files") ---------------------------- */

/* One line on stderr, exit 1, naming the file and saying what it holds. */
static void assert_refused(const result *r, const char *file, const char *says, const char *what)
{
    cr_assert_eq(r->rc, 1, "%s: exit %d, want 1 (stderr: %s)", what, r->rc, r->err);
    cr_assert_eq(count_char(r->err, '\n'), 1, "%s: want one line: %s", what, r->err);
    cr_assert_not_null(strstr(r->err, file), "%s: should name %s: %s", what, file, r->err);
    cr_assert_not_null(strstr(r->err, says), "%s: should say '%s': %s", what, says, r->err);
}

Test(keys, a_key_file_of_the_other_kind_is_refused_naming_it)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], hash[UG_HASH_LEN];
    gen("kinds", sk, pk);
    gen("client", sk, pk);
    make_package("p.bin", 10, hash);
    result r;
    /* a secret key where a public one is expected */
    keys(&r, "kid %s/kinds.key", g_dir);
    assert_refused(&r, "kinds.key", "secret key file", "kid of a .key");
    keys(&r, "cred --issuer %s/kinds.key --uid 5 --pub %s/client.key --ttl 60 --out %s/c.cred", g_dir, g_dir, g_dir);
    assert_refused(&r, "client.key", "secret key file", "cred --pub a .key");
    /* a public key where a secret one is expected */
    keys(&r, "cred --issuer %s/kinds.pub --uid 5 --pub %s/client.pub --ttl 60 --out %s/c.cred", g_dir, g_dir, g_dir);
    assert_refused(&r, "kinds.pub", "public key file", "cred --issuer a .pub");
    keys(&r, "release --key %s/kinds.pub --version 2 --file %s/p.bin --url https://a.example/p --ttl 60 --out %s/m",
         g_dir, g_dir, g_dir);
    assert_refused(&r, "kinds.pub", "public key file", "release --key a .pub");
    char p1[PATH_MAX], p2[PATH_MAX];
    path_of(p1, sizeof p1, "c.cred");
    path_of(p2, sizeof p2, "m");
    cr_assert(!exists(p1) && !exists(p2), "a refused run wrote its output");
}

/* Replaces NAME's comment line, if any, by `comment` (NULL: none). */
static void set_comment(const char *name, const char *comment)
{
    char path[PATH_MAX], text[512], out[640];
    path_of(path, sizeof path, name);
    read_text(path, text, sizeof text);
    const char *line = text[0] == '#' ? strchr(text, '\n') + 1 : text;
    snprintf(out, sizeof out, "%s%s%s", comment ? comment : "", comment ? "\n" : "", line);
    cr_assert_eq(remove(path), 0);
    tu_write_file(path, out, strlen(out));
}

Test(keys, kind_comments_case_kid_and_shape)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], sk2[UG_SK_LEN], pk2[UG_PK_LEN], kid[UG_KID_LEN], kid2[UG_KID_LEN];
    gen("k1", sk, pk);
    gen("k2", sk2, pk2);
    ug_kid(kid, pk);
    ug_kid(kid2, pk2);
    char hex[2 * UG_KID_LEN + 1], hex2[2 * UG_KID_LEN + 1], line[128], want[32];
    sodium_bin2hex(hex, sizeof hex, kid, sizeof kid);
    sodium_bin2hex(hex2, sizeof hex2, kid2, sizeof kid2);
    snprintf(want, sizeof want, "%s\n", hex);
    result r;

    /* upper case: accepted */
    snprintf(line, sizeof line, "# upgate public key %s", hex);
    for (char *c = line + 20; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'f' ? *c - 32 : *c);
    set_comment("k1.pub", line);
    keys(&r, "kid %s/k1.pub", g_dir);
    cr_assert_eq(r.rc, 0, "upper-case kid: %s", r.err);
    cr_assert_str_eq(r.out, want);
    /* no comment: accepted, for both kinds */
    set_comment("k1.pub", NULL);
    keys(&r, "kid %s/k1.pub", g_dir);
    cr_assert_eq(r.rc, 0, "no comment: %s", r.err);
    cr_assert_str_eq(r.out, want);
    set_comment("k1.key", NULL);
    keys(&r, "cred --issuer %s/k1.key --uid 5 --pub %s/k1.pub --ttl 60 --out %s/c1.cred", g_dir, g_dir, g_dir);
    cr_assert_eq(r.rc, 0, "no comment on the secret key: %s", r.err);

    /* another key's id: refused, naming the file */
    snprintf(line, sizeof line, "# upgate public key %s", hex2);
    set_comment("k1.pub", line);
    keys(&r, "kid %s/k1.pub", g_dir);
    assert_refused(&r, "k1.pub", hex2, "another key id");
    cr_assert_not_null(strstr(r.err, hex), "%s", r.err);
    snprintf(line, sizeof line, "# upgate secret key %s", hex);
    set_comment("k2.key", line);
    keys(&r, "cred --issuer %s/k2.key --uid 5 --pub %s/k2.pub --ttl 60 --out %s/c2.cred", g_dir, g_dir, g_dir);
    assert_refused(&r, "k2.key", "key id", "secret key naming another id");

    /* any other comment: refused */
    set_comment("k1.pub", "# my laptop");
    keys(&r, "kid %s/k1.pub", g_dir);
    assert_refused(&r, "k1.pub", "unexpected comment", "another comment");
}

/* ---- release URLs: the decoders' one rule (ug_url_valid) --------------- */

/* Every shape a tracker or peer would refuse is refused here, exit 2, one
 * line naming the URL, and nothing is written; the good ones round-trip. */
Test(keys, release_refuses_every_url_the_decoder_refuses)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], hash[UG_HASH_LEN];
    gen("release", sk, pk);
    make_package("p.bin", 10, hash);
    char out[PATH_MAX];
    path_of(out, sizeof out, "p.manifest");
    result r;
    /* shell words; `named` is what the message must show of each */
    static const struct {
        const char *arg, *named;
    } bad[] = {
        {"http://", "http://"},
        {"https://", "https://"},
        {"http:///p", "http:///p"},
        {"http://?q=1", "http://?q=1"},
        {"http://#frag", "http://#frag"},
        {"http://:8080/p", "http://:8080/p"},
        {"http://user@/p", "http://user@/p"},
        {"http://[]/p", "http://[]/p"},
        {"http://[::1/p", "http://[::1/p"},
        {"'https://a b.example/p'", "https://a b.example/p"},
        {"'https://a.example/p '", "https://a.example/p "},
        {"\"$(printf 'https://a.example/\\tp')\"", "https://a.example/\\x09p"},
        {"\"$(printf 'https://a.example/\\np')\"", "https://a.example/\\x0ap"},
        {"\"$(printf 'https://a.example/\\177')\"", "https://a.example/\\x7f"},
        {"'https://caf\xc3\xa9.example/p'", "https://caf\\xc3\\xa9.example/p"},
        {"'https://a.example/\xff'", "https://a.example/\\xff"},
        {"ftp://a.example/p", "ftp://a.example/p"},
        {"a.example/p", "a.example/p"},
        {"''", "\"\""},
        {"http:/a.example/p", "http:/a.example/p"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin --url https://ok.example/p --url %s "
                 "--ttl 60 --out %s",
             g_dir, g_dir, bad[i].arg, out);
        assert_usage(&r, bad[i].arg);
        cr_assert_not_null(strstr(r.err, "--url"), "%s", r.err);
        cr_assert_not_null(strstr(r.err, bad[i].named), "%s: should name the URL: %s", bad[i].arg, r.err);
        cr_assert(!exists(out), "%s: a manifest was written", bad[i].arg);
    }
    static const char *const good[] = {"HTTPS://A.EXAMPLE/p", "http://[::1]:8080/p", "http://u:pw@h.example/p",
                                       "https://h", "http://h?x", "https://1.2.3.4:80/a%20b"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        keys(&r, "release --key %s/release.key --version 2 --file %s/p.bin --url '%s' --ttl 60 --out %s", g_dir, g_dir,
             good[i], out);
        cr_assert_eq(r.rc, 0, "%s: %s", good[i], r.err);
        ug_manifest m;
        size_t len;
        load_manifest("p.manifest", pk, &m, &len);
        cr_assert_str_eq(m.urls[0], good[i]);
        cr_assert_eq(remove(out), 0);
    }
}
