/* Shared by the libFuzzer harnesses: the spec vectors' keys, scratch dirs, invariant checks. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "fuzz_common.h"
#include "oracle/oracle_mp.h"

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\n==FUZZ INVARIANT== %s:%d: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* Public keys as published in vectors/keys.json. */
static const char *const published[5] = {
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c", /* issuer */
    "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394", /* client */
    "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1", /* hint */
    "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c", /* release */
    "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1", /* stranger */
};

void fz_keys_init(fz_keys *k)
{
    FZ_CHECK(sodium_init() >= 0, "libsodium");
    fz_key *all[5] = {&k->issuer, &k->client, &k->hint, &k->release, &k->stranger};
    for (unsigned i = 0; i < 5; i++) {
        uint8_t pk[UG_PK_LEN], want[UG_PK_LEN];
        size_t n = 0;
        memset(all[i]->seed, (int)(i + 1), UG_SEED_LEN);
        FZ_CHECK(crypto_sign_seed_keypair(pk, all[i]->sk, all[i]->seed) == 0, "keypair %u", i);
        FZ_CHECK(sodium_hex2bin(want, sizeof want, published[i], 64, NULL, &n, NULL) == 0 && n == UG_PK_LEN,
                 "hex");
        FZ_CHECK(memcmp(pk, want, UG_PK_LEN) == 0, "key %u differs from keys.json", i);
        ug_pubkey_set(&all[i]->pub, pk);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

#define FZ_MAX_DIRS 4
static char dirs[FZ_MAX_DIRS][128];
static unsigned ndirs;
static pid_t owner;

static void rm_dirs(void)
{
    /* a forked child (libFuzzer -fork, a crash handler) must not delete the
     * parent's files */
    if (getpid() != owner)
        return;
    for (unsigned i = 0; i < ndirs; i++)
        (void)nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A crash, timeout or kill skips atexit: the dirs of harnesses that died
 * (their pid is in the name) go when the next one starts. */
static void sweep_stale(const char *base)
{
    DIR *dp = opendir(base);
    if (!dp)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        char tag[64];
        int pid = 0, used = 0;
        if (sscanf(de->d_name, "ugfuzz-%63[a-z-]%d-%n", tag, &pid, &used) != 2 || used == 0 || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive, or not ours to judge */
        char path[512];
        snprintf(path, sizeof path, "%s/%s", base, de->d_name);
        (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    closedir(dp);
}

const char *fz_tmpdir(const char *tag)
{
    FZ_CHECK(ndirs < FZ_MAX_DIRS, "too many scratch dirs");
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    if (ndirs == 0)
        sweep_stale(base);
    char *d = dirs[ndirs];
    int n = snprintf(d, sizeof dirs[0], "%s/ugfuzz-%s-%d-XXXXXX", base, tag, (int)getpid());
    FZ_CHECK(n > 0 && (size_t)n < sizeof dirs[0], "path too long");
    FZ_CHECK(mkdtemp(d) != NULL, "mkdtemp %s: %s", d, strerror(errno));
    if (ndirs++ == 0) {
        owner = getpid();
        atexit(rm_dirs);
    }
    return d;
}

void fz_write(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    FZ_CHECK(ug_write_all(fd, data, len) == 0, "write %s: %s", path, strerror(errno));
    FZ_CHECK(close(fd) == 0, "close %s", path);
}

void fz_write_key(const char *dir, const char *name, const uint8_t *data, size_t n, bool secret)
{
    char path[512], why[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FZ_CHECK(ug_keyfile_write(path, data, n, secret, why, sizeof why) == 0, "%s: %s", path, why);
}

size_t fz_write_release(const char *dir, const fz_keys *k, uint8_t *out, size_t cap)
{
    fz_write_key(dir, "hint.key", k->hint.seed, UG_SEED_LEN, true);
    fz_write_key(dir, "issuer.pub", k->issuer.pub.pk, UG_PK_LEN, false);
    fz_write_key(dir, "stranger.pub", k->stranger.pub.pk, UG_PK_LEN, false);
    fz_write_key(dir, "release.pub", k->release.pub.pk, UG_PK_LEN, false);
    /* the manifest peer.json's valid HINT carries, but valid for years */
    ug_manifest m = {.nurls = 2, .size = 2000, .exp = FZ_NOW + UINT64_C(10) * 365 * 86400};
    FZ_CHECK(ug_version_parse(&m.to, "2.0.0", 5) == 0, "version");
    snprintf(m.urls[0], sizeof m.urls[0], "https://dl1.example.net/app-2.0.0.bin");
    snprintf(m.urls[1], sizeof m.urls[1], "https://dl2.example.net/app-2.0.0.bin");
    memset(m.hash, 0x20, sizeof m.hash);
    memcpy(m.kid, k->release.pub.kid, UG_KID_LEN);
    uint8_t body[UG_OBJ_MAX];
    size_t blen, olen;
    FZ_CHECK(ug_manifest_encode_body(body, sizeof body, &blen, &m) == 0, "manifest body");
    FZ_CHECK(ug_signed_encode(out, cap, &olen, UG_CTX_RELEASE, body, blen, k->release.sk) == 0, "manifest");
    fz_write(dir, "release.manifest", out, olen);
    return olen;
}

int fz_map_keys(const uint8_t *body, size_t len, fz_key_ref *keys, size_t cap)
{
    or_mp_doc doc; /* the oracle's tree: a second reading, not the decoder under test */
    ug_err e;
    if (or_mp_parse(&doc, body, len, 3, &e) != 0)
        return -1;
    int n = -1;
    if (doc.root.type == MSGPACK_OBJECT_MAP && doc.root.via.map.size <= cap) {
        n = 0;
        for (uint32_t i = 0; i < doc.root.via.map.size; i++) {
            const msgpack_object *key = &doc.root.via.map.ptr[i].key;
            if (key->type != MSGPACK_OBJECT_STR) {
                n = -1;
                break;
            }
            /* str values point into body, not into the zone we free below */
            keys[n++] = (fz_key_ref){key->via.str.ptr, key->via.str.size};
        }
    }
    or_mp_doc_free(&doc);
    return n;
}

static bool key_is(const fz_key_ref *k, const char *name)
{
    return k->len == strlen(name) && memcmp(k->ptr, name, k->len) == 0;
}

bool fz_has_key(const fz_key_ref *keys, int nkeys, const char *name)
{
    for (int i = 0; i < nkeys; i++)
        if (key_is(&keys[i], name))
            return true;
    return false;
}

bool fz_keys_in_order(const fz_key_ref *keys, int nkeys, const char *const *order, size_t n)
{
    size_t at = 0;
    for (int i = 0; i < nkeys; i++) {
        while (at < n && !key_is(&keys[i], order[at]))
            at++;
        if (at == n)
            return false;
        at++;
    }
    return true;
}
