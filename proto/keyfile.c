/* Key, credential and manifest files (cli.md): base64 lines and raw bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ug_proto.h"

static int say(char *why, size_t whycap, const char *msg)
{
    if (why && whycap)
        snprintf(why, whycap, "%s", msg);
    return -1;
}

static _Thread_local struct {
    ug_file_opener fn;
    void *ctx;
} opener;

void ug_file_opener_set(ug_file_opener fn, void *ctx)
{
    opener.fn = fn;
    opener.ctx = ctx;
}

int ug_file_open(const char *path, uint64_t max, uint64_t *size, char *why, size_t whycap)
{
    char because[160] = "";
    int fd = opener.fn ? opener.fn(opener.ctx, path, because, sizeof because)
                       : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return say(why, whycap, opener.fn ? because : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return say(why, whycap, "not a regular file");
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return say(why, whycap, "file too large");
    }
    if (size)
        *size = (uint64_t)st.st_size;
    return fd;
}

int ug_file_read(const char *path, uint8_t *buf, size_t cap, size_t *len, char *why, size_t whycap)
{
    int fd = ug_file_open(path, cap, NULL, why, whycap);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return say(why, whycap, strerror(e));
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    /* a file that grew past cap while we read is refused, not truncated */
    uint8_t extra;
    ssize_t more = got == cap ? read(fd, &extra, 1) : 0;
    close(fd);
    if (more > 0)
        return say(why, whycap, "file too large");
    *len = got;
    return 0;
}

/* text[0..len) minus one trailing "\n" or "\r\n". */
static size_t chomp(const uint8_t *text, size_t len)
{
    if (len > 0 && text[len - 1] == '\n')
        len--;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    return len;
}

/* One line of base64 (its newline already cut) of exactly n bytes. */
static int b64_line(const uint8_t *text, size_t len, uint8_t *out, size_t n, char *why, size_t whycap)
{
    size_t bin_len = 0;
    const char *end = NULL;
    if (len == 0 || sodium_base642bin(out, n, (const char *)text, len, NULL, &bin_len, &end,
                                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != (const char *)text + len) {
        sodium_memzero(out, n);
        return say(why, whycap, "not one line of base64 of the expected length");
    }
    if (bin_len != n) {
        char msg[64];
        snprintf(msg, sizeof msg, "holds %zu bytes, expected %zu", bin_len, n);
        sodium_memzero(out, n);
        return say(why, whycap, msg);
    }
    return 0;
}

int ug_keyfile_read(const char *path, uint8_t *out, size_t n, char *why, size_t whycap)
{
    uint8_t text[256];
    size_t len;
    int rc = -1;
    if (ug_file_read(path, text, sizeof text, &len, why, whycap) == 0)
        rc = b64_line(text, chomp(text, len), out, n, why, whycap);
    sodium_memzero(text, sizeof text); /* it may have held a secret */
    if (rc != 0)
        sodium_memzero(out, n);
    return rc;
}

/* ---- key files with a kind comment (cli.md "Key files") --------------- */

#define KIND_PREFIX "# upgate "
#define KIND_SUFFIX " key "

/* A key file's text split into its optional "#" first line (comment NULL
 * when there is none) and the base64 line, newlines cut. */
typedef struct {
    const char *comment;
    size_t comment_len;
    const uint8_t *line;
    size_t line_len;
} key_text;

static void split_key_text(key_text *k, const uint8_t *text, size_t len)
{
    k->comment = NULL;
    k->comment_len = 0;
    k->line = text;
    k->line_len = chomp(text, len);
    if (len == 0 || text[0] != '#')
        return;
    const uint8_t *nl = memchr(text, '\n', len);
    size_t first = nl ? (size_t)(nl - text) : len;
    k->comment = (const char *)text;
    k->comment_len = chomp(text, first + (nl != NULL));
    k->line = nl ? nl + 1 : text + len;
    k->line_len = nl ? chomp(nl + 1, len - first - 1) : 0;
}

/* The comment of a key file of kind secret/public whose public key is pk:
 * "# upgate KIND key KID", KID the 16 hex digits of pk's id in either case
 * (so are the words). A comment of the other kind, naming another key id,
 * or of any other shape is refused, saying which in one line. */
static int kind_comment_ok(const char *c, size_t len, bool secret, const uint8_t pk[UG_PK_LEN], char *why,
                           size_t whycap)
{
    const size_t pre = sizeof KIND_PREFIX - 1, kind = 6, suf = sizeof KIND_SUFFIX - 1, hex = 2 * UG_KID_LEN;
    const char *want = secret ? "secret" : "public", *other = secret ? "public" : "secret";
    uint8_t named[UG_KID_LEN], kid[UG_KID_LEN];
    size_t got = 0;
    const char *end = NULL;
    bool shape = len == pre + kind + suf + hex && strncasecmp(c, KIND_PREFIX, pre) == 0 &&
                 (strncasecmp(c + pre, want, kind) == 0 || strncasecmp(c + pre, other, kind) == 0) &&
                 strncasecmp(c + pre + kind, KIND_SUFFIX, suf) == 0 &&
                 sodium_hex2bin(named, sizeof named, c + pre + kind + suf, hex, NULL, &got, &end) == 0 &&
                 got == UG_KID_LEN && end == c + len;
    char msg[160];
    if (!shape) {
        snprintf(msg, sizeof msg, "unexpected comment line (a key file may start only with \"# upgate %s key KID\")",
                 want);
        return say(why, whycap, msg);
    }
    if (strncasecmp(c + pre, want, kind) != 0) {
        snprintf(msg, sizeof msg, "is a %s key file (its comment says so), not the %s key expected", other, want);
        return say(why, whycap, msg);
    }
    ug_kid(kid, pk);
    if (memcmp(named, kid, UG_KID_LEN) != 0) {
        char a[2 * UG_KID_LEN + 1], b[2 * UG_KID_LEN + 1];
        snprintf(msg, sizeof msg, "comment names key id %s but the key's id is %s",
                 sodium_bin2hex(a, sizeof a, named, UG_KID_LEN), sodium_bin2hex(b, sizeof b, kid, UG_KID_LEN));
        return say(why, whycap, msg);
    }
    return 0;
}

int ug_pubkey_read(const char *path, uint8_t pk[UG_PK_LEN], char *why, size_t whycap)
{
    uint8_t text[256];
    size_t len;
    key_text k;
    if (ug_file_read(path, text, sizeof text, &len, why, whycap) != 0)
        return -1;
    split_key_text(&k, text, len);
    if (b64_line(k.line, k.line_len, pk, UG_PK_LEN, why, whycap) != 0)
        return -1;
    if (k.comment && kind_comment_ok(k.comment, k.comment_len, false, pk, why, whycap) != 0) {
        sodium_memzero(pk, UG_PK_LEN);
        return -1;
    }
    return 0;
}

uint8_t *ug_seckey_load(const char *path, char *why, size_t whycap)
{
    if (sodium_init() < 0) {
        say(why, whycap, "libsodium failed to initialise");
        return NULL;
    }
    uint8_t *seed = sodium_malloc(UG_SEED_LEN);
    uint8_t *sk = sodium_malloc(UG_SK_LEN);
    uint8_t *text = sodium_malloc(256); /* it holds the secret in base64 */
    uint8_t pk[UG_PK_LEN];
    size_t len;
    key_text k;
    int rc = -1;
    if (!seed || !sk || !text) {
        say(why, whycap, "out of locked memory");
        goto out;
    }
    if (ug_file_read(path, text, 256, &len, why, whycap) != 0)
        goto out;
    split_key_text(&k, text, len);
    if (b64_line(k.line, k.line_len, seed, UG_SEED_LEN, why, whycap) != 0)
        goto out;
    (void)crypto_sign_seed_keypair(pk, sk, seed); /* cannot fail for a 32-byte seed */
    if (k.comment && kind_comment_ok(k.comment, k.comment_len, true, pk, why, whycap) != 0)
        goto out;
    rc = 0;
out:
    sodium_free(seed); /* sodium_free wipes before releasing */
    sodium_free(text);
    if (rc != 0) {
        sodium_free(sk);
        return NULL;
    }
    sodium_mprotect_readonly(sk);
    return sk;
}

void ug_secret_free(uint8_t *sk)
{
    if (sk)
        sodium_free(sk);
}

int ug_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

/* Creates path (O_EXCL; mode 0600 when secret) holding text[0..len). */
static int write_new(const char *path, const char *text, size_t len, bool secret, char *why, size_t whycap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0)
        return say(why, whycap, errno == EEXIST ? "exists; refusing to overwrite" : strerror(errno));
    if (ug_write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        say(why, whycap, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    return close(fd) == 0 ? 0 : say(why, whycap, strerror(errno));
}

/* text gets "[comment\n]base64(data)\n"; its length, or 0 if cap is short. */
static size_t key_text_make(char *text, size_t cap, const char *comment, const uint8_t *data, size_t n)
{
    size_t used = 0;
    if (comment) {
        used = strlen(comment);
        if (used + 1 >= cap)
            return 0;
        memcpy(text, comment, used);
        text[used++] = '\n';
    }
    if (sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) + 1 > cap - used)
        return 0;
    sodium_bin2base64(text + used, cap - used, data, n, sodium_base64_VARIANT_ORIGINAL);
    used += strlen(text + used);
    text[used++] = '\n';
    return used;
}

int ug_keyfile_write(const char *path, const uint8_t *data, size_t n, bool secret, char *why, size_t whycap)
{
    char text[512];
    size_t len = key_text_make(text, sizeof text, NULL, data, n);
    int rc = len ? write_new(path, text, len, secret, why, whycap) : say(why, whycap, "value too long");
    sodium_memzero(text, sizeof text);
    return rc;
}

int ug_key_write(const char *path, bool secret, const uint8_t key[UG_SEED_LEN], const uint8_t pk[UG_PK_LEN],
                 char *why, size_t whycap)
{
    /* the comment must name the key the file holds */
    if (secret) {
        uint8_t derived[UG_PK_LEN], sk[UG_SK_LEN];
        (void)crypto_sign_seed_keypair(derived, sk, key);
        sodium_memzero(sk, sizeof sk);
        if (memcmp(derived, pk, UG_PK_LEN) != 0)
            return say(why, whycap, "public key is not the seed's");
    } else if (memcmp(key, pk, UG_PK_LEN) != 0) {
        return say(why, whycap, "a public key file holds the public key");
    }
    uint8_t kid[UG_KID_LEN];
    char hex[2 * UG_KID_LEN + 1], comment[64], text[512];
    ug_kid(kid, pk);
    snprintf(comment, sizeof comment, KIND_PREFIX "%s" KIND_SUFFIX "%s", secret ? "secret" : "public",
             sodium_bin2hex(hex, sizeof hex, kid, UG_KID_LEN));
    size_t len = key_text_make(text, sizeof text, comment, key, secret ? UG_SEED_LEN : UG_PK_LEN);
    int rc = len ? write_new(path, text, len, secret, why, whycap) : say(why, whycap, "value too long");
    sodium_memzero(text, sizeof text);
    return rc;
}
