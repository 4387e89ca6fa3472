/* proto/ on its own: versions, strict msgpack, padding, size bounds, round trips. */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "../fuzz/oracle/oracle.h"
#include "testutil.h"

static void init(void)
{
    cr_assert(sodium_init() >= 0);
}

TestSuite(proto, .init = init);

Test(proto, versions)
{
    static const char *const good[] = {"0", "1.4", "1.4.2", "2.0.0.17", "4294967295", "10.0.1"};
    static const char *const bad[] = {"", "1..2", "01.2", "1.2.3.4.5", "v1.2", "1.2-beta", "4294967296",
                                      " 1.2", "1.", ".1", "1.2 ", "+1", "-1", "1.02",
                                      "123456789012345678901234567890123"};
    ug_version v;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        cr_assert_eq(ug_version_parse(&v, good[i], strlen(good[i])), 0, "%s", good[i]);
        char text[UG_VER_MAX + 1];
        cr_assert_eq(ug_version_format(&v, text, sizeof text), 0);
        cr_assert_str_eq(text, good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_neq(ug_version_parse(&v, bad[i], strlen(bad[i])), 0, "'%s' accepted", bad[i]);
    static const struct {
        const char *a, *b;
        int cmp;
    } order[] = {{"1.4", "1.4.0", 0}, {"1.4", "1.4.0.0", 0}, {"1.4.1", "1.4", 1}, {"1.10", "1.9", 1},
                 {"2", "1.99.99.99", 1}, {"0.9", "1", -1}, {"4294967295", "4294967294.9", 1}};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        ug_version a, b;
        cr_assert_eq(ug_version_parse(&a, order[i].a, strlen(order[i].a)), 0);
        cr_assert_eq(ug_version_parse(&b, order[i].b, strlen(order[i].b)), 0);
        int c = ug_version_cmp(&a, &b);
        cr_assert_eq((c > 0) - (c < 0), order[i].cmp, "%s vs %s", order[i].a, order[i].b);
    }
}

/* A WAIT body written by hand, so each case can bend one encoding rule. */
static int wait_body(const uint8_t *b, size_t n)
{
    ug_wait w;
    return ug_wait_decode(&w, b, n, NULL);
}

#define NONCE16 0xc4, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15

Test(proto, canonical_msgpack_only)
{
    const uint8_t ok[] = {0x84, 0xa5, 'n', 'o', 'n', 'c', 'e', NONCE16, 0xa2, 't', 's', 0x05,
                          0xa5, 'r', 'e', 't', 'r', 'y', 0x3c, 0xa3, 'w', 'h', 'y', 0x01};
    cr_assert_eq(wait_body(ok, sizeof ok), 0, "the canonical form decodes");
    /* ts 5 as uint8: a non-minimal int */
    const uint8_t wide_int[] = {0x84, 0xa5, 'n', 'o', 'n', 'c', 'e', NONCE16, 0xa2, 't', 's', 0xcc, 0x05,
                                0xa5, 'r', 'e', 't', 'r', 'y', 0x3c, 0xa3, 'w', 'h', 'y', 0x01};
    cr_assert_neq(wait_body(wide_int, sizeof wide_int), 0);
    /* ts 5 as int8 */
    const uint8_t signed_int[] = {0x84, 0xa5, 'n', 'o', 'n', 'c', 'e', NONCE16, 0xa2, 't', 's', 0xd0, 0x05,
                                  0xa5, 'r', 'e', 't', 'r', 'y', 0x3c, 0xa3, 'w', 'h', 'y', 0x01};
    cr_assert_neq(wait_body(signed_int, sizeof signed_int), 0);
    /* the key "ts" as str8 */
    const uint8_t str8_key[] = {0x84, 0xa5, 'n', 'o', 'n', 'c', 'e', NONCE16, 0xd9, 0x02, 't', 's', 0x05,
                                0xa5, 'r', 'e', 't', 'r', 'y', 0x3c, 0xa3, 'w', 'h', 'y', 0x01};
    cr_assert_neq(wait_body(str8_key, sizeof str8_key), 0);
    /* the map as map16 */
    const uint8_t map16[] = {0xde, 0x00, 0x04, 0xa5, 'n', 'o', 'n', 'c', 'e', NONCE16, 0xa2, 't', 's', 0x05,
                             0xa5, 'r', 'e', 't', 'r', 'y', 0x3c, 0xa3, 'w', 'h', 'y', 0x01};
    cr_assert_neq(wait_body(map16, sizeof map16), 0);
    /* a duplicate key (5 entries, ts twice) */
    const uint8_t dup[] = {0x85, 0xa5, 'n', 'o', 'n', 'c', 'e', NONCE16, 0xa2, 't', 's', 0x05, 0xa2, 't', 's', 0x06,
                           0xa5, 'r', 'e', 't', 'r', 'y', 0x3c, 0xa3, 'w', 'h', 'y', 0x01};
    cr_assert_neq(wait_body(dup, sizeof dup), 0);
    /* a trailing byte */
    uint8_t trail[sizeof ok + 1];
    memcpy(trail, ok, sizeof ok);
    trail[sizeof ok] = 0xc0;
    cr_assert_neq(wait_body(trail, sizeof trail), 0);
    /* float, nil and the reserved byte in place of the ts value */
    static const uint8_t vals[][9] = {{0xcb, 0x41, 0xda, 0xac, 0x4e, 0, 0, 0, 0}, {0xc0}, {0xc1}, {0xc3}, {0xff}};
    static const size_t vlen[] = {9, 1, 1, 1, 1};
    for (size_t i = 0; i < 5; i++) {
        uint8_t b[64];
        size_t n = 0;
        memcpy(b, ok, 28); /* through the ts key: map, nonce entry, a2 't' 's' */
        n = 28;
        memcpy(b + n, vals[i], vlen[i]);
        n += vlen[i];
        memcpy(b + n, ok + 29, sizeof ok - 29); /* the rest after ts's value 0x05 */
        n += sizeof ok - 29;
        if (i == 0)
            cr_assert_eq(ok[28], 0x05, "offsets match the layout");
        cr_assert_neq(wait_body(b, n), 0, "value form %zu accepted for ts", i);
    }
}

Test(proto, declared_lengths_bounded_by_bytes)
{
    /* each claims far more than it has; none may allocate for the claim */
    static const uint8_t claims[][6] = {
        {0xdd, 0x01, 0x00, 0x00, 0x00}, {0xc6, 0xff, 0xff, 0xff, 0xff}, {0xde, 0xff, 0xff},
        {0xdf, 0x7f, 0xff, 0xff, 0xff}, {0xdb, 0x00, 0x10, 0x00, 0x00}, {0xdc, 0xff, 0xff},
    };
    static const size_t lens[] = {5, 5, 3, 5, 5, 3};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        ug_wait w;
        ug_err e;
        cr_assert_neq(ug_wait_decode(&w, claims[i], lens[i], &e), 0);
        cr_assert_eq(e, UG_E_MSGPACK);
    }
    /* deep nesting is refused before any recursion gets deep */
    uint8_t deep[1000];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0xc0;
    ug_hello h;
    cr_assert_neq(ug_hello_decode(&h, deep, sizeof deep, NULL), 0);
}

Test(proto, strings_are_utf8_without_nul)
{
    ug_manifest m = {.size = 1, .exp = 1, .nurls = 1};
    cr_assert_eq(ug_version_parse(&m.to, "2", 1), 0);
    uint8_t body[UG_OBJ_MAX];
    size_t len;
    static const char *const urls[] = {"http://a/\xc3\x28", "http://a/\xed\xa0\x80", "ftp://a/b", "http://a b/",
                                       "http://"};
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        snprintf(m.urls[0], sizeof m.urls[0], "%s", urls[i]);
        cr_assert_eq(ug_manifest_encode_body(body, sizeof body, &len, &m), 0);
        ug_manifest back;
        cr_assert_neq(ug_manifest_decode(&back, body, len, NULL), 0, "url %zu accepted", i);
    }
    snprintf(m.urls[0], sizeof m.urls[0], "HTTPS://dl.example.net/a%%20b");
    cr_assert_eq(ug_manifest_encode_body(body, sizeof body, &len, &m), 0);
    ug_manifest back;
    cr_assert_eq(ug_manifest_decode(&back, body, len, NULL), 0);
    cr_assert_str_eq(back.urls[0], m.urls[0]);
}

/* The padding builder lands on every size a peer may ask for. */
Test(proto, hello_padding_every_size)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], out[UG_DGRAM_MAX];
    crypto_sign_keypair(pk, sk);
    static const uint8_t cred[] = {0x92, 0xc4, 0x00, 0xc4, 0x40, [69] = 0};
    for (size_t target = UG_HELLO_MIN; target <= UG_DGRAM_MAX; target++) {
        ug_hello_fields h = {.uid = 1, .ver = "1.0", .ts = 1, .cred = cred, .cred_len = sizeof cred};
        memcpy(h.pk, pk, UG_PK_LEN);
        size_t len;
        cr_assert_eq(ug_hello_build(out, sizeof out, &len, &h, target, sk), 0, "target %zu", target);
        /* the bin8/bin16 switch of the pad can make one size unreachable */
        cr_assert(len == target || (len == target - 1 && target > UG_HELLO_MIN), "target %zu gave %zu", target, len);
        ug_dgram d;
        cr_assert_eq(ug_dgram_decode(&d, out, len, NULL), 0);
    }
}

Test(proto, hint_max_len_bounds_real_hints)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
    crypto_sign_keypair(pk, sk);
    for (size_t rel_len = 70; rel_len < 1100; rel_len += 37) {
        uint8_t rel[UG_OBJ_MAX] = {0}, body[UG_OBJ_MAX], out[UG_DGRAM_MAX];
        ug_hint_fields h = {.uid = UG_UID_MAX, .ts = UINT64_MAX, .exp = UINT64_MAX, .mirror = 7,
                            .rel = rel, .rel_len = rel_len};
        size_t blen, len;
        cr_assert_eq(ug_hint_encode_body(body, sizeof body, &blen, &h), 0);
        if (ug_dgram_encode(out, sizeof out, &len, UG_TYPE_HINT, body, blen, sk) == 0)
            cr_assert_leq(len, ug_hint_max_len(rel_len), "rel %zu", rel_len);
        else
            cr_assert_gt(ug_hint_max_len(rel_len), UG_DGRAM_MAX, "rel %zu refused yet under the bound", rel_len);
    }
}

Test(proto, encoders_never_overflow)
{
    ug_wait w = {.ts = UINT64_MAX, .retry = UINT64_MAX, .why = 6};
    uint8_t buf[64];
    size_t full, len;
    cr_assert_eq(ug_wait_encode_body(buf, sizeof buf, &full, &w), 0);
    for (size_t cap = 0; cap < full; cap++)
        cr_assert_neq(ug_wait_encode_body(buf, cap, &len, &w), 0, "cap %zu", cap);
}

Test(proto, key_files)
{
    const char *dir = tu_tmpdir();
    char path[128], why[128];
    uint8_t key[32], back[32];
    randombytes_buf(key, sizeof key);
    snprintf(path, sizeof path, "%s/k.pub", dir);
    cr_assert_eq(ug_keyfile_write(path, key, 32, false, why, sizeof why), 0, "%s", why);
    cr_assert_neq(ug_keyfile_write(path, key, 32, false, why, sizeof why), 0, "overwrote");
    cr_assert(strstr(why, "exists"), "%s", why);
    cr_assert_eq(ug_keyfile_read(path, back, 32, why, sizeof why), 0, "%s", why);
    cr_assert_arr_eq(back, key, 32);
    cr_assert_neq(ug_keyfile_read(path, back, 31, why, sizeof why), 0, "wrong length accepted");
    snprintf(path, sizeof path, "%s/bad.pub", dir);
    tu_write_file(path, "not*base64\n", 11);
    cr_assert_neq(ug_keyfile_read(path, back, 32, why, sizeof why), 0);
    snprintf(path, sizeof path, "%s/none.pub", dir);
    cr_assert_neq(ug_keyfile_read(path, back, 32, why, sizeof why), 0);
    cr_assert(strstr(why, "No such file"), "%s", why);
}

/* cli.md "Key files": an optional kind comment naming the key id. */
static void write_text(const char *dir, const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    tu_write_file(path, text, strlen(text));
}

Test(proto, key_file_kind_comments)
{
    const char *dir = tu_tmpdir();
    uint8_t seed[UG_SEED_LEN], sk[UG_SK_LEN], pk[UG_PK_LEN], kid[UG_KID_LEN], back[UG_PK_LEN];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    ug_kid(kid, pk);
    char hex[2 * UG_KID_LEN + 1], b64s[64], b64p[64], text[512], path[256], pubp[256], keyp[256], why[256];
    sodium_bin2hex(hex, sizeof hex, kid, sizeof kid);
    sodium_bin2base64(b64s, sizeof b64s, seed, sizeof seed, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b64p, sizeof b64p, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);

    /* the writer: a lower-case comment, then the base64 line */
    snprintf(pubp, sizeof pubp, "%s/w.pub", dir);
    snprintf(keyp, sizeof keyp, "%s/w.key", dir);
    cr_assert_eq(ug_key_write(pubp, false, pk, pk, why, sizeof why), 0, "%s", why);
    cr_assert_eq(ug_key_write(keyp, true, seed, pk, why, sizeof why), 0, "%s", why);
    cr_assert_neq(ug_key_write(keyp, true, seed, pk, why, sizeof why), 0, "overwrote");
    FILE *f = fopen(pubp, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char want[256];
    snprintf(want, sizeof want, "# upgate public key %s\n%s\n", hex, b64p);
    cr_assert_str_eq(text, want);
    f = fopen(keyp, "r");
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    snprintf(want, sizeof want, "# upgate secret key %s\n%s\n", hex, b64s);
    cr_assert_str_eq(text, want);
    struct stat st;
    cr_assert_eq(stat(keyp, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    /* a comment must name the key the file holds */
    uint8_t other[UG_PK_LEN];
    memcpy(other, pk, sizeof other);
    other[0] ^= 1;
    snprintf(path, sizeof path, "%s/x.pub", dir);
    cr_assert_neq(ug_key_write(path, false, pk, other, why, sizeof why), 0);
    cr_assert_neq(ug_key_write(path, true, seed, other, why, sizeof why), 0);

    /* the readers take what the writer wrote */
    cr_assert_eq(ug_pubkey_read(pubp, back, why, sizeof why), 0, "%s", why);
    cr_assert_arr_eq(back, pk, UG_PK_LEN);
    uint8_t *s2 = ug_seckey_load(keyp, why, sizeof why);
    cr_assert_not_null(s2, "%s", why);
    cr_assert_arr_eq(s2, sk, UG_SK_LEN);
    ug_secret_free(s2);

    /* each kind where the other is expected: refused, saying so */
    cr_assert_neq(ug_pubkey_read(keyp, back, why, sizeof why), 0, "a secret key file read as public");
    cr_assert(strstr(why, "secret key file"), "%s", why);
    cr_assert_null(ug_seckey_load(pubp, why, sizeof why), "a public key file loaded as secret");
    cr_assert(strstr(why, "public key file"), "%s", why);

    /* upper case (and mixed) accepted; no comment accepted */
    char up[2 * UG_KID_LEN + 1];
    for (size_t i = 0; i <= 2 * UG_KID_LEN; i++)
        up[i] = (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
    snprintf(text, sizeof text, "# upgate public key %s\n%s\n", up, b64p);
    write_text(dir, "up.pub", text, path, sizeof path);
    cr_assert_eq(ug_pubkey_read(path, back, why, sizeof why), 0, "%s", why);
    snprintf(text, sizeof text, "# UPGATE PUBLIC KEY %s\r\n%s\r\n", up, b64p);
    write_text(dir, "upper-words.pub", text, path, sizeof path);
    cr_assert_eq(ug_pubkey_read(path, back, why, sizeof why), 0, "%s", why);
    snprintf(text, sizeof text, "# upgate secret key %s\n%s\n", up, b64s);
    write_text(dir, "up.key", text, path, sizeof path);
    s2 = ug_seckey_load(path, why, sizeof why);
    cr_assert_not_null(s2, "%s", why);
    ug_secret_free(s2);
    snprintf(text, sizeof text, "%s\n", b64p);
    write_text(dir, "bare.pub", text, path, sizeof path);
    cr_assert_eq(ug_pubkey_read(path, back, why, sizeof why), 0, "%s", why);
    cr_assert_arr_eq(back, pk, UG_PK_LEN);
    snprintf(text, sizeof text, "%s\n", b64s);
    write_text(dir, "bare.key", text, path, sizeof path);
    s2 = ug_seckey_load(path, why, sizeof why);
    cr_assert_not_null(s2, "%s", why);
    ug_secret_free(s2);

    /* another key id: refused, naming both ids */
    char wrong[2 * UG_KID_LEN + 1];
    memcpy(wrong, hex, sizeof wrong);
    wrong[15] = wrong[15] == '0' ? '1' : '0';
    snprintf(text, sizeof text, "# upgate public key %s\n%s\n", wrong, b64p);
    write_text(dir, "wrong.pub", text, path, sizeof path);
    cr_assert_neq(ug_pubkey_read(path, back, why, sizeof why), 0);
    cr_assert(strstr(why, wrong) && strstr(why, hex), "%s", why);
    snprintf(text, sizeof text, "# upgate secret key %s\n%s\n", wrong, b64s);
    write_text(dir, "wrong.key", text, path, sizeof path);
    cr_assert_null(ug_seckey_load(path, why, sizeof why));
    cr_assert(strstr(why, "key id"), "%s", why);

    /* any other comment: refused */
    /* each is pre + (the right KID when kid) + post */
    static const struct {
        const char *pre;
        bool kid;
        const char *post;
    } others[] = {
        {"# my laptop key", false, ""}, {"#", false, ""}, {"# upgate public key", false, ""},
        {"# upgate public key 0011", false, ""}, {"# upgate public  key ", true, ""},
        {"# upgate public key ", true, " "}, {"# upgate publik key ", true, ""}, {"## upgate public key ", true, ""},
        {"# upgate public key ", true, "ff"}, {"# upgate public key g", true, ""}, {" # upgate public key ", true, ""},
        {"# upgate key ", true, ""},
    };
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        char line[128];
        snprintf(line, sizeof line, "%s%s%s", others[i].pre, others[i].kid ? hex : "", others[i].post);
        snprintf(text, sizeof text, "%s\n%s\n", line, b64p);
        write_text(dir, "other.pub", text, path, sizeof path);
        cr_assert_neq(ug_pubkey_read(path, back, why, sizeof why), 0, "'%s' accepted", line);
        if (line[0] == '#')
            cr_assert(strstr(why, "unexpected comment"), "'%s': %s", line, why);
        cr_assert_null(strchr(why, '\n'), "one line: %s", why);
    }
    /* two comment lines, or a comment and no key */
    snprintf(text, sizeof text, "# upgate public key %s\n# upgate public key %s\n%s\n", hex, hex, b64p);
    write_text(dir, "two.pub", text, path, sizeof path);
    cr_assert_neq(ug_pubkey_read(path, back, why, sizeof why), 0);
    snprintf(text, sizeof text, "# upgate public key %s\n", hex);
    write_text(dir, "none.pub", text, path, sizeof path);
    cr_assert_neq(ug_pubkey_read(path, back, why, sizeof why), 0);
}

/* ug_url_valid is the one rule: the decoder refuses exactly what it refuses. */
Test(proto, url_rule)
{
    static const char *const good[] = {"http://a", "https://a/", "HTTP://A.EXAMPLE/x", "hTTpS://h:1/p?q#f",
                                       "http://[::1]/", "http://[::1]:80/p", "http://u@h/", "http://u:p@h:1/",
                                       "http://h?", "http://h#"};
    static const char *const bad[] = {"", "http://", "https://", "http:///", "http:///p", "http://?q", "http://#f",
                                      "http://:80/", "http://u@/", "http://u@:80/", "http://[]/", "http://[/",
                                      "http://[::1/", "http://a b/", "http://a\t/", "http://a/\x7f", "http://a/\x01",
                                      "http://caf\xc3\xa9/", "ftp://a/", "http:/a/", "//a/", "a/b", " http://a/",
                                      "http://a/ "};
    ug_manifest m = {.size = 1, .exp = 1, .nurls = 1};
    cr_assert_eq(ug_version_parse(&m.to, "2", 1), 0);
    uint8_t body[UG_OBJ_MAX];
    size_t len;
    ug_manifest back;
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        cr_assert(ug_url_valid(good[i], strlen(good[i])), "'%s' refused", good[i]);
        snprintf(m.urls[0], sizeof m.urls[0], "%s", good[i]);
        cr_assert_eq(ug_manifest_encode_body(body, sizeof body, &len, &m), 0);
        cr_assert_eq(ug_manifest_decode(&back, body, len, NULL), 0, "'%s' not decoded", good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert(!ug_url_valid(bad[i], strlen(bad[i])), "'%s' accepted", bad[i]);
        if (!bad[i][0])
            continue; /* the encoder would write an empty str: the schema refuses it too */
        snprintf(m.urls[0], sizeof m.urls[0], "%s", bad[i]);
        cr_assert_eq(ug_manifest_encode_body(body, sizeof body, &len, &m), 0);
        ug_err e;
        cr_assert_neq(ug_manifest_decode(&back, body, len, &e), 0, "'%s' decoded", bad[i]);
        cr_assert_eq(e, UG_E_STRING, "'%s': %s", bad[i], ug_err_name(e));
    }
    /* length: 200 bytes fine, 201 not, and nothing reads past len */
    char u[UG_URL_MAX + 2];
    memset(u, 'a', sizeof u);
    memcpy(u, "http://", 7);
    cr_assert(ug_url_valid(u, UG_URL_MAX));
    cr_assert(!ug_url_valid(u, UG_URL_MAX + 1));
    cr_assert(ug_url_valid("http://ab", 8), "a prefix of the bytes is judged alone");
    cr_assert(!ug_url_valid("http://ab", 7));
}

/* ug_wait_write / ug_cookie_write: byte for byte what the body encoder and
 * ug_dgram_encode give, for every width of every number, and never more
 * than cap. */
Test(proto, unsigned_reply_writers_match_the_encoders)
{
    static const uint64_t nums[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff,
                                    UINT64_C(0x100000000), UINT64_MAX - 1, UINT64_MAX};
    const size_t nn = sizeof nums / sizeof *nums;
    size_t checked = 0;
    for (size_t a = 0; a < nn; a++)
        for (size_t b = 0; b < nn; b++)
            for (size_t c = 0; c < nn; c += 3) {
                ug_wait w = {.ts = nums[a], .retry = nums[b], .why = nums[c]};
                ug_cookie k = {.ts = nums[(a + b + c) % nn]};
                randombytes_buf(w.nonce, sizeof w.nonce);
                randombytes_buf(k.nonce, sizeof k.nonce);
                randombytes_buf(k.cookie, sizeof k.cookie);
                uint8_t body[128], want[256], got[256];
                size_t blen, wlen, glen;
                cr_assert_eq(ug_wait_encode_body(body, sizeof body, &blen, &w), 0);
                cr_assert_eq(ug_dgram_encode(want, sizeof want, &wlen, UG_TYPE_WAIT, body, blen, NULL), 0);
                cr_assert_eq(ug_wait_write(got, sizeof got, &glen, &w), 0);
                cr_assert_eq(glen, wlen);
                cr_assert_arr_eq(got, want, wlen, "WAIT ts %llx retry %llx why %llx", (unsigned long long)w.ts,
                                 (unsigned long long)w.retry, (unsigned long long)w.why);
                cr_assert_eq(ug_cookie_encode_body(body, sizeof body, &blen, &k), 0);
                cr_assert_eq(ug_dgram_encode(want, sizeof want, &wlen, UG_TYPE_COOKIE, body, blen, NULL), 0);
                cr_assert_eq(ug_cookie_write(got, sizeof got, &glen, &k), 0);
                cr_assert_eq(glen, wlen);
                cr_assert_arr_eq(got, want, wlen, "COOKIE ts %llx", (unsigned long long)k.ts);
                /* and they read back */
                ug_dgram d;
                ug_wait wb;
                cr_assert_eq(ug_dgram_decode(&d, want, wlen, NULL), 0);
                cr_assert_eq(ug_cookie_decode(&(ug_cookie){0}, d.body, d.body_len, NULL), 0);
                cr_assert_eq(ug_wait_write(got, sizeof got, &glen, &w), 0);
                cr_assert_eq(ug_dgram_decode(&d, got, glen, NULL), 0);
                cr_assert_eq(ug_wait_decode(&wb, d.body, d.body_len, NULL), 0);
                cr_assert(wb.ts == w.ts && wb.retry == w.retry && wb.why == w.why);
                checked++;
            }
    cr_assert_geq(checked, 500);
    /* too small a buffer: refused, and nothing written past cap */
    ug_wait w = {.ts = UINT64_MAX, .retry = UINT64_MAX, .why = UINT64_MAX};
    ug_cookie k = {.ts = UINT64_MAX};
    uint8_t buf[256];
    size_t full, kfull, len;
    cr_assert_eq(ug_wait_write(buf, sizeof buf, &full, &w), 0);
    cr_assert_eq(ug_cookie_write(buf, sizeof buf, &kfull, &k), 0);
    for (size_t cap = 0; cap < full || cap < kfull; cap++) {
        memset(buf, 0xa5, sizeof buf);
        if (cap < full)
            cr_assert_neq(ug_wait_write(buf, cap, &len, &w), 0, "WAIT in %zu bytes", cap);
        if (cap < kfull)
            cr_assert_neq(ug_cookie_write(buf, cap, &len, &k), 0, "COOKIE in %zu bytes", cap);
        for (size_t i = cap; i < sizeof buf; i++)
            cr_assert_eq(buf[i], 0xa5, "cap %zu: byte %zu written", cap, i);
    }
    /* the vectors' WAIT and COOKIE, written directly */
    json_t *j = tu_vectors("peer.json");
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "unsigned_replies"), i, v) {
        uint8_t want[UG_DGRAM_MAX], got[UG_DGRAM_MAX];
        size_t wlen = tu_unhex(json_string_value(json_object_get(v, "hex")), want, sizeof want), glen;
        ug_dgram d;
        cr_assert_eq(ug_dgram_decode(&d, want, wlen, NULL), 0);
        if (d.type == UG_TYPE_WAIT) {
            ug_wait ww;
            cr_assert_eq(ug_wait_decode(&ww, d.body, d.body_len, NULL), 0);
            cr_assert_eq(ug_wait_write(got, sizeof got, &glen, &ww), 0);
        } else {
            ug_cookie kk;
            cr_assert_eq(ug_cookie_decode(&kk, d.body, d.body_len, NULL), 0);
            cr_assert_eq(ug_cookie_write(got, sizeof got, &glen, &kk), 0);
        }
        cr_assert_eq(glen, wlen);
        cr_assert_arr_eq(got, want, wlen);
    }
    json_decref(j);
}

/* ug_hello_parse: one pass, the credential left for later, verification
 * closed until it is decoded; wrong types and garbage told apart. */
Test(proto, hello_parse_defers_the_credential)
{
    json_t *j = tu_vectors("tracker.json");
    uint8_t buf[UG_DGRAM_MAX], ipk[UG_PK_LEN];
    size_t len = tu_unhex(json_string_value(json_object_get(json_array_get(json_object_get(j, "vectors"), 0), "hex")),
                          buf, sizeof buf);
    tu_unhex(json_string_value(json_array_get(json_object_get(j, "trusted_issuers"), 0)), ipk, sizeof ipk);
    uint64_t now = (uint64_t)json_integer_value(json_object_get(j, "now"));
    ug_pubkey issuer;
    ug_pubkey_set(&issuer, ipk);
    ug_hello h, whole;
    ug_dgram d;
    ug_err e = UG_OK;
    cr_assert_eq(ug_hello_parse(&h, &d, buf, len, &e), 0, "%s", ug_err_name(e));
    cr_assert(!h.cred_decoded);
    const ug_pubkey *iss = NULL;
    cr_assert_neq(ug_cred_check(&h, &issuer, 1, now, &iss, &e), 0, "checked an undecoded credential");
    cr_assert_eq(e, UG_E_SCHEMA);
    cr_assert_neq(or_hello_verify(&h, &d, &issuer, 1, now, &e), 0);
    cr_assert_eq(e, UG_E_SCHEMA);
    cr_assert_eq(ug_hello_cred_decode(&h, &e), 0);
    cr_assert(h.cred_decoded);
    cr_assert_eq(ug_hello_cred_decode(&h, &e), 0, "a second decode is a no-op");
    cr_assert_eq(or_hello_verify(&h, &d, &issuer, 1, now, &e), 0, "%s", ug_err_name(e));
    /* the body-only API decodes the credential too, to the same fields */
    cr_assert_eq(ug_hello_decode(&whole, d.body, d.body_len, NULL), 0);
    cr_assert(whole.cred_decoded);
    cr_assert_eq(whole.cred.uid, h.cred.uid);
    cr_assert_eq(whole.cred.exp, h.cred.exp);
    cr_assert_arr_eq(whole.cred.kid, h.cred.kid, UG_KID_LEN);
    /* a credential body that does not decode is found only when asked for */
    uint8_t bad[UG_DGRAM_MAX];
    memcpy(bad, buf, len);
    bad[h.cred_obj.body - buf] ^= 0x0f; /* the credential map's header */
    cr_assert_eq(ug_hello_parse(&h, &d, bad, len, &e), 0, "%s", ug_err_name(e));
    cr_assert_neq(ug_hello_cred_decode(&h, &e), 0);
    cr_assert(!h.cred_decoded);
    cr_assert_neq(ug_hello_decode(&whole, d.body, d.body_len, NULL), 0);
    /* another type: HEADER, with d filled; garbage: d->body NULL */
    memcpy(bad, buf, len);
    bad[5] = UG_TYPE_HINT;
    cr_assert_neq(ug_hello_parse(&h, &d, bad, len, &e), 0);
    cr_assert_eq(e, UG_E_HEADER);
    cr_assert_not_null(d.body);
    cr_assert_eq(d.type, UG_TYPE_HINT);
    bad[0] = 0x94;
    cr_assert_neq(ug_hello_parse(&h, &d, bad, len, &e), 0);
    cr_assert_null(d.body);
    /* a REPORT parser refuses a HELLO the same way */
    ug_report r;
    cr_assert_neq(ug_report_parse(&r, &d, buf, len, &e), 0);
    cr_assert_eq(e, UG_E_HEADER);
    json_decref(j);
}

/* A signed object with an empty body spans exactly its bytes. */
Test(proto, signed_object_with_an_empty_body)
{
    uint8_t b[2 + 2 + 1 + UG_SIG_LEN] = {0x92, 0xc4, 0x00, 0xc4, UG_SIG_LEN};
    ug_signed s;
    cr_assert_eq(ug_signed_decode(&s, b, 5 + UG_SIG_LEN, NULL), 0);
    cr_assert_eq(s.raw, b);
    cr_assert_eq(s.raw_len, 5u + UG_SIG_LEN);
    cr_assert_eq(s.body_len, 0u);
    cr_assert_eq(s.sig, b + 5);
}

/* Every WAIT reason has its own name, fit for a JSON key and a Prometheus
 * label value; anything else is "unknown". */
Test(proto, why_names_one_per_reason)
{
    for (unsigned i = 0; i < UG_WHY_COUNT_; i++) {
        const char *n = ug_why_name(i);
        cr_assert(n[0] && strspn(n, "abcdefghijklmnopqrstuvwxyz_") == strlen(n), "why=%u: '%s'", i, n);
        cr_assert_str_neq(n, "unknown", "why=%u", i);
        for (unsigned j = 0; j < i; j++)
            cr_assert_str_neq(n, ug_why_name(j), "why=%u and %u", i, j);
    }
    cr_assert_str_eq(ug_why_name(UG_WHY_QUOTA), "quota");
    cr_assert_str_eq(ug_why_name(UG_WHY_COUNT_), "unknown");
}
