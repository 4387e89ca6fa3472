/* upgate-keys: makes keys, credentials and signed release manifests (cli.md), and the version 2
 * lifecycle: keyrings, rotations, revocations, hint certificates, bound manifests (docs/keys.md). */
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

#include "keys.h"

static const char usage[] =
    "usage: upgate-keys gen NAME\n"
    "       upgate-keys kid FILE.pub\n"
    "       upgate-keys cred --issuer ISSUER.key --uid N --pub CLIENT.pub --ttl SECONDS --out FILE\n"
    "       upgate-keys release --key RELEASE.key --version V --file PACKAGE --url URL [--url URL ...]\n"
    "                           --ttl SECONDS --out FILE.manifest\n"
    "       upgate-keys show FILE\n"
    "       upgate-keys --version\n"
    "protocol version 2 (docs/keys.md; without --key a command writes the unsigned body):\n"
    "       upgate-keys keyring --kv N --ttl SECONDS --root R.pub [...] [--root-threshold T]\n"
    "                           --release P.pub [...] [--release-threshold T] --cert C.pub [...]\n"
    "                           [--cert-threshold T] [--min-serial N] [--url KEYRING-URL ...]\n"
    "                           [--from PREV.keyring] [--key ROOT.key ...] --out FILE\n"
    "       upgate-keys rotate --from PREV.keyring --replace OLD.pub=NEW.pub [...] --ttl SECONDS\n"
    "                           [--key ROOT.key ...] --out FILE\n"
    "       upgate-keys revoke --from PREV.keyring --min-serial N --ttl SECONDS [--key ROOT.key ...] --out FILE\n"
    "       upgate-keys cert --hint HINT.pub --serial N (--kv N | --keyring FILE) --ttl SECONDS [--nbf UNIX]\n"
    "                           [--tracker NAME] [--renew OLD.cert] [--key CERT.key ...] --out FILE.cert\n"
    "       upgate-keys release --app A --plat P [...] --chan C --seq N [--urgency normal|critical]\n"
    "                           [--downgrade] [--min-serial N] [--keyring-url URL ...] [--keyring FILE]\n"
    "                           --version V --file PACKAGE --url URL [...] --ttl SECONDS\n"
    "                           [--delta-from OLD_FILE=VERSION ...] [--key RELEASE.key ...] --out FILE.manifest\n"
    "       upgate-keys sign --key KEY.key --in FILE --out FILE.sig\n"
    "       upgate-keys combine --in FILE --sig FILE.sig [...] [--prev PREV.keyring | --keyring FILE] --out FILE\n"
    "       upgate-keys verify FILE [--keyring FILE | --prev PREV.keyring | --root R.pub [...]\n"
    "                           [--threshold T] [--anchor-kv N]]\n"
    "\n"
    "gen writes NAME.key (secret seed, mode 0600) and NAME.pub, each with a kind comment\n"
    "(\"# upgate secret key KID\"), and never overwrites.\n"
    "cred issues a credential binding a client key to a uid, as a login service does.\n"
    "release signs a manifest offering PACKAGE (size and BLAKE2b-256) at the URLs; with --app it is\n"
    "a version 2 manifest bound to an application, platforms, a channel and a sequence number;\n"
    "each --delta-from writes PACKAGE.from-VERSION.delta (zstd patch-from OLD_FILE) beside it and\n"
    "lists it (URLs beside the package's), unless it is not smaller than 60% of the package.\n"
    "keyring, rotate and revoke make keyring N+1 (signed by the roots of N and of N+1), cert a hint\n"
    "certificate (at most 90 days); each holder signs a body with sign, one runs combine.\n";

static void load_public(const char *path, uint8_t pk[UG_PK_LEN])
{
    keys_public(path, pk);
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
    if (!seed || !sk) {
        sodium_free(seed);
        sodium_free(sk);
        ug_die(UG_EXIT_FAIL, "out of locked memory");
    }
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
    uint8_t *sk = keys_secret(a.issuer);
    ug_kid(c.kid, sk + UG_SEED_LEN); /* libsodium's sk ends with the pk */
    uint8_t body[256], obj[512];
    size_t body_len, obj_len;
    int rc = ug_cred_encode_body(body, sizeof body, &body_len, &c) == 0 &&
                     ug_signed_encode(obj, sizeof obj, &obj_len, UG_CTX_CRED, body, body_len, sk) == 0
                 ? 0 : -1;
    keys_secrets_wipe();
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "cannot encode the credential");
    char text[1024];
    sodium_bin2base64(text, sizeof text, obj, obj_len, sodium_base64_VARIANT_ORIGINAL);
    size_t len = strlen(text);
    text[len++] = '\n';
    keys_write(a.out, text, len);
    return UG_EXIT_OK;
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
                           keys_shown(a.urls[i], shown, sizeof shown));
        }
        memcpy(m.urls[i], a.urls[i], n + 1);
    }
    m.nurls = (uint8_t)a.nurls;
    m.exp = ug_now() + ttl;
    keys_hash_file(a.file, &m.size, m.hash);
    uint8_t *sk = keys_secret(a.key);
    ug_kid(m.kid, sk + UG_SEED_LEN);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t body_len, obj_len;
    int rc = ug_manifest_encode_body(body, sizeof body, &body_len, &m) == 0 &&
                     ug_signed_encode(obj, sizeof obj, &obj_len, UG_CTX_RELEASE, body, body_len, sk) == 0
                 ? 0 : -1;
    keys_secrets_wipe();
    if (rc != 0)
        ug_die(UG_EXIT_FAIL, "cannot encode the manifest");
    /* a manifest no HINT can carry would be refused by every tracker */
    if (ug_hint_max_len(obj_len) > UG_DGRAM_MAX)
        ug_die(UG_EXIT_FAIL, "%s: manifest of %zu bytes too long for a HINT; use fewer or shorter URLs", a.out, obj_len);
    keys_write(a.out, obj, obj_len);
    return UG_EXIT_OK;
}

static int cmd_show(int argc, char **argv)
{
    if (argc != 2)
        ug_usage_error("show takes one FILE");
    uint8_t buf[UG2_KEYRING_MAX];
    size_t len;
    char why[256], ver[UG_VER_MAX + 1], hex[2 * UG_HASH_LEN + 1];
    ug_signed s;
    ug_manifest m;
    ug_err err;
    if (ug_file_read(argv[1], buf, sizeof buf, &len, why, sizeof why) != 0)
        ug_die(UG_EXIT_FAIL, "%s: %s", argv[1], why);
    if (ug_signed_decode(&s, buf, len, &err) != 0 || ug_manifest_decode(&m, s.body, s.body_len, &err) != 0)
        return keys_show2(argv[1]) == 0 ? UG_EXIT_OK : UG_EXIT_FAIL; /* a version 2 object, or nothing */
    if (ug_version_format(&m.to, ver, sizeof ver) != 0)
        ug_die(UG_EXIT_FAIL, "%s: bad version", argv[1]);
    printf("to %s\nsize %llu\nhash %s\n", ver, (unsigned long long)m.size,
           sodium_bin2hex(hex, sizeof hex, m.hash, UG_HASH_LEN));
    keys_time_line("exp", m.exp);
    printf("kid %s\n", sodium_bin2hex(hex, sizeof hex, m.kid, UG_KID_LEN));
    for (unsigned i = 0; i < m.nurls; i++)
        printf("url %s\n", m.urls[i]);
    return UG_EXIT_OK;
}

/* release with --app is a version 2 manifest. */
static bool has_app(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--app") || !strncmp(argv[i], "--app=", 6))
            return true;
    return false;
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
    atexit(keys_secrets_wipe); /* every secret key loaded is wiped, whatever the way out */
    const char *cmd = argv[1];
    argc--, argv++;
    if (!strcmp(cmd, "gen"))
        return cmd_gen(argc, argv);
    if (!strcmp(cmd, "kid"))
        return cmd_kid(argc, argv);
    if (!strcmp(cmd, "cred"))
        return cmd_cred(argc, argv);
    if (!strcmp(cmd, "release"))
        return has_app(argc, argv) ? keys_cmd_release2(argc, argv) : cmd_release(argc, argv);
    if (!strcmp(cmd, "keyring") || !strcmp(cmd, "rotate") || !strcmp(cmd, "revoke"))
        return keys_cmd_keyring(argc, argv);
    if (!strcmp(cmd, "cert"))
        return keys_cmd_cert(argc, argv);
    if (!strcmp(cmd, "sign"))
        return keys_cmd_sign(argc, argv);
    if (!strcmp(cmd, "combine"))
        return keys_cmd_combine(argc, argv);
    if (!strcmp(cmd, "verify"))
        return keys_cmd_verify(argc, argv);
    if (!strcmp(cmd, "show"))
        return cmd_show(argc, argv);
    ug_usage_error("unknown command %s", cmd);
}
