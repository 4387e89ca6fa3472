/* upgate-keys: makes keys, credentials and signed release manifests (cli.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common.h"

static const char usage[] =
    "usage: upgate-keys gen NAME\n"
    "       upgate-keys kid FILE.pub\n"
    "       upgate-keys cred --issuer ISSUER.key --uid N --pub CLIENT.pub --ttl SECONDS --out FILE\n"
    "       upgate-keys release --key RELEASE.key --version V --file PACKAGE --url URL [--url URL ...]\n"
    "                           --ttl SECONDS --out FILE.manifest\n"
    "       upgate-keys show FILE.manifest\n"
    "       upgate-keys --version\n"
    "\n"
    "gen writes NAME.key (secret seed, mode 0600) and NAME.pub, each with a kind comment\n"
    "(\"# upgate secret key KID\"), and never overwrites.\n"
    "cred issues a credential binding a client key to a uid, as a login service does.\n"
    "release signs a manifest offering PACKAGE (size and BLAKE2b-256) at the URLs.\n";

static uint8_t *load_secret(const char *path)
{
    char why[256] = "";
    uint8_t *sk = ug_seckey_load(path, why, sizeof why);
    if (!sk)
        ug_die(UG_EXIT_FAIL, "%s: %s", path, why);
    return sk;
}

static void load_public(const char *path, uint8_t pk[UG_PK_LEN])
{
    char why[256] = "";
    if (ug_pubkey_read(path, pk, why, sizeof why) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", path, why);
}

/* Writes data to path through a temporary file and a rename, so a reader
 * never sees half a credential or manifest. */
static void write_atomically(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        ug_die(UG_EXIT_FAIL, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", tmp, strerror(errno));
    if (ug_write_all(fd, data, len) != 0 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        ug_die(UG_EXIT_FAIL, "%s: %s", path, strerror(e));
    }
}

static int cmd_gen(int argc, char **argv)
{
    if (argc != 2)
        ug_usage_error("gen takes one NAME");
    char keypath[4096], pubpath[4096], why[256];
    if ((size_t)snprintf(keypath, sizeof keypath, "%s.key", argv[1]) >= sizeof keypath ||
        (size_t)snprintf(pubpath, sizeof pubpath, "%s.pub", argv[1]) >= sizeof pubpath)
        ug_usage_error("NAME too long: %s", argv[1]);
    /* check both first: never leave a fresh .key beside someone's old .pub */
    if (access(keypath, F_OK) == 0)
        ug_die(UG_EXIT_FAIL, "%s: exists; refusing to overwrite", keypath);
    if (access(pubpath, F_OK) == 0)
        ug_die(UG_EXIT_FAIL, "%s: exists; refusing to overwrite", pubpath);
    uint8_t *seed = sodium_malloc(UG_SEED_LEN), *sk = sodium_malloc(UG_SK_LEN);
    uint8_t pk[UG_PK_LEN];
    if (!seed || !sk)
        ug_die(UG_EXIT_FAIL, "out of locked memory");
    randombytes_buf(seed, UG_SEED_LEN);
    crypto_sign_seed_keypair(pk, sk, seed);
    int rc = ug_key_write(keypath, true, seed, pk, why, sizeof why);
    sodium_free(seed);
    sodium_free(sk);
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", keypath, why);
    if (ug_key_write(pubpath, false, pk, pk, why, sizeof why) != 0) {
        unlink(keypath);
        ug_die(UG_EXIT_FAIL, "%s: %s", pubpath, why);
    }
    return UG_EXIT_OK;
}

static int cmd_kid(int argc, char **argv)
{
    if (argc != 2)
        ug_usage_error("kid takes one FILE.pub");
    uint8_t pk[UG_PK_LEN], kid[UG_KID_LEN];
    char hex[2 * UG_KID_LEN + 1];
    load_public(argv[1], pk);
    ug_kid(kid, pk);
    printf("%s\n", sodium_bin2hex(hex, sizeof hex, kid, sizeof kid));
    return UG_EXIT_OK;
}

enum { OPT_ISSUER = 1, OPT_UID, OPT_PUB, OPT_TTL, OPT_OUT, OPT_KEY, OPT_VERSION, OPT_FILE, OPT_URL };
static const struct option long_opts[] = {
    {"issuer", required_argument, NULL, OPT_ISSUER}, {"uid", required_argument, NULL, OPT_UID},
    {"pub", required_argument, NULL, OPT_PUB},       {"ttl", required_argument, NULL, OPT_TTL},
    {"out", required_argument, NULL, OPT_OUT},       {"key", required_argument, NULL, OPT_KEY},
    {"version", required_argument, NULL, OPT_VERSION}, {"file", required_argument, NULL, OPT_FILE},
    {"url", required_argument, NULL, OPT_URL},       {NULL, 0, NULL, 0},
};

typedef struct {
    const char *issuer, *pub, *out, *key, *version, *file, *uid, *ttl;
    const char *urls[UG_URLS_MAX];
    unsigned nurls;
} args;

static void parse_opts(int argc, char **argv, args *a, const char *allowed)
{
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == '?' || c == ':' || !strchr(allowed, c))
            ug_usage_error("unexpected or incomplete option %s", argv[optind - 1]);
        const char **slot = c == OPT_ISSUER ? &a->issuer : c == OPT_UID ? &a->uid : c == OPT_PUB ? &a->pub
                          : c == OPT_TTL ? &a->ttl : c == OPT_OUT ? &a->out : c == OPT_KEY ? &a->key
                          : c == OPT_VERSION ? &a->version : c == OPT_FILE ? &a->file : NULL;
        if (c == OPT_URL) {
            if (a->nurls == UG_URLS_MAX)
                ug_usage_error("at most 8 --url (got more at %s)", optarg);
            a->urls[a->nurls++] = optarg;
        } else if (*slot) {
            ug_usage_error("option given twice: %s", argv[optind - 1]);
        } else {
            *slot = optarg;
        }
    }
    if (optind != argc)
        ug_usage_error("unexpected argument %s", argv[optind]);
}

static int cmd_cred(int argc, char **argv)
{
    args a = {0};
    static const char allowed[] = {OPT_ISSUER, OPT_UID, OPT_PUB, OPT_TTL, OPT_OUT, 0};
    parse_opts(argc, argv, &a, allowed);
    if (!a.issuer || !a.uid || !a.pub || !a.ttl || !a.out)
        ug_usage_error("cred needs --issuer, --uid, --pub, --ttl and --out");
    uint64_t uid, ttl;
    if (ug_parse_u64(a.uid, 1, UG_UID_MAX, &uid) != 0)
        ug_usage_error("--uid: not a user id (1..2^63-1): %s", a.uid);
    if (ug_parse_u64(a.ttl, 1, UINT32_MAX, &ttl) != 0)
        ug_usage_error("--ttl: not a number of seconds: %s", a.ttl);
    ug_cred c = {.uid = uid, .exp = ug_now() + ttl};
    load_public(a.pub, c.pk);
    uint8_t *sk = load_secret(a.issuer);
    ug_kid(c.kid, sk + UG_SEED_LEN); /* libsodium's sk ends with the pk */
    uint8_t body[256], obj[512];
    size_t body_len, obj_len;
    int rc = ug_cred_encode_body(body, sizeof body, &body_len, &c) == 0 &&
                     ug_signed_encode(obj, sizeof obj, &obj_len, UG_CTX_CRED, body, body_len, sk) == 0
                 ? 0 : -1;
    ug_secret_free(sk);
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "cannot encode the credential");
    char text[1024];
    sodium_bin2base64(text, sizeof text, obj, obj_len, sodium_base64_VARIANT_ORIGINAL);
    size_t len = strlen(text);
    text[len++] = '\n';
    write_atomically(a.out, text, len);
    return UG_EXIT_OK;
}

/* s as one line of printable ASCII for a message: other bytes as \xNN, and
 * "..." after the first 64 bytes. */
static const char *shown_text(const char *s, char *out, size_t cap)
{
    size_t used = 0, i = 0;
    for (; s[i] && i < 64 && used + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, cap - used, "\\x%02x", c);
    }
    if (s[i] && used + 4 <= cap)
        memcpy(out + used, "...", 3), used += 3;
    out[used] = 0;
    return out;
}

/* Streams the package once for its size and BLAKE2b-256. */
static void hash_file(const char *path, uint64_t *size, uint8_t hash[UG_HASH_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", path, strerror(errno));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, UG_HASH_LEN);
    uint8_t buf[65536];
    *size = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            ug_die(UG_EXIT_FAIL, "%s: %s", path, strerror(errno));
        if (n == 0)
            break;
        crypto_generichash_update(&st, buf, (size_t)n);
        *size += (uint64_t)n;
    }
    close(fd);
    crypto_generichash_final(&st, hash, UG_HASH_LEN);
}

static int cmd_release(int argc, char **argv)
{
    args a = {0};
    static const char allowed[] = {OPT_KEY, OPT_VERSION, OPT_FILE, OPT_URL, OPT_TTL, OPT_OUT, 0};
    parse_opts(argc, argv, &a, allowed);
    if (!a.key || !a.version || !a.file || !a.nurls || !a.ttl || !a.out)
        ug_usage_error("release needs --key, --version, --file, --url, --ttl and --out");
    ug_manifest m = {0};
    uint64_t ttl;
    if (ug_version_parse(&m.to, a.version, strlen(a.version)) != 0)
        ug_usage_error("--version: not a version (1 to 4 numbers, e.g. 2.0.1): %s", a.version);
    if (ug_parse_u64(a.ttl, 1, UINT32_MAX, &ttl) != 0)
        ug_usage_error("--ttl: not a number of seconds: %s", a.ttl);
    for (unsigned i = 0; i < a.nurls; i++) {
        /* what every tracker and peer would refuse is never signed */
        size_t n = strlen(a.urls[i]);
        if (!ug_url_valid(a.urls[i], n)) {
            char shown[4 * 64 + 4];
            ug_usage_error("--url: not an http(s) URL with a host, of 1 to 200 printable ASCII bytes: \"%s\"",
                           shown_text(a.urls[i], shown, sizeof shown));
        }
        memcpy(m.urls[i], a.urls[i], n + 1);
    }
    m.nurls = (uint8_t)a.nurls;
    m.exp = ug_now() + ttl;
    hash_file(a.file, &m.size, m.hash);
    uint8_t *sk = load_secret(a.key);
    ug_kid(m.kid, sk + UG_SEED_LEN);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t body_len, obj_len;
    int rc = ug_manifest_encode_body(body, sizeof body, &body_len, &m) == 0 &&
                     ug_signed_encode(obj, sizeof obj, &obj_len, UG_CTX_RELEASE, body, body_len, sk) == 0
                 ? 0 : -1;
    ug_secret_free(sk);
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "cannot encode the manifest");
    /* a manifest no HINT can carry would be refused by every tracker */
    if (ug_hint_max_len(obj_len) > UG_DGRAM_MAX)
        ug_die(UG_EXIT_FAIL, "%s: manifest of %zu bytes too long for a HINT; use fewer or shorter URLs", a.out, obj_len);
    write_atomically(a.out, obj, obj_len);
    return UG_EXIT_OK;
}

static int cmd_show(int argc, char **argv)
{
    if (argc != 2)
        ug_usage_error("show takes one FILE.manifest");
    uint8_t buf[UG_OBJ_MAX];
    size_t len;
    char why[256], ver[UG_VER_MAX + 1], hex[2 * UG_HASH_LEN + 1];
    ug_signed s;
    ug_manifest m;
    ug_err err;
    if (ug_file_read(argv[1], buf, sizeof buf, &len, why, sizeof why) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", argv[1], why);
    if (ug_signed_decode(&s, buf, len, &err) != 0 || ug_manifest_decode(&m, s.body, s.body_len, &err) != 0)
        ug_die(UG_EXIT_FAIL, "%s: not a release manifest (%s)", argv[1], ug_err_name(err));
    if (ug_version_format(&m.to, ver, sizeof ver) != 0)
        ug_die(UG_EXIT_FAIL, "%s: bad version", argv[1]);
    printf("to %s\nsize %llu\nhash %s\nexp %llu\n", ver, (unsigned long long)m.size,
           sodium_bin2hex(hex, sizeof hex, m.hash, UG_HASH_LEN), (unsigned long long)m.exp);
    printf("kid %s\n", sodium_bin2hex(hex, sizeof hex, m.kid, UG_KID_LEN));
    for (unsigned i = 0; i < m.nurls; i++)
        printf("url %s\n", m.urls[i]);
    return UG_EXIT_OK;
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-keys";
    if (argc == 2 && !strcmp(argv[1], "--version"))
        return ug_print_version();
    if (argc < 2)
        ug_usage_error("missing command");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || (i == 1 && !strcmp(argv[i], "help"))) {
            fputs(usage, stdout);
            return UG_EXIT_OK;
        }
    }
    if (sodium_init() < 0)
        ug_die(UG_EXIT_FAIL, "libsodium failed to initialise");
    const char *cmd = argv[1];
    argc--, argv++;
    if (!strcmp(cmd, "gen"))
        return cmd_gen(argc, argv);
    if (!strcmp(cmd, "kid"))
        return cmd_kid(argc, argv);
    if (!strcmp(cmd, "cred"))
        return cmd_cred(argc, argv);
    if (!strcmp(cmd, "release"))
        return cmd_release(argc, argv);
    if (!strcmp(cmd, "show"))
        return cmd_show(argc, argv);
    ug_usage_error("unknown command %s", cmd);
}
