/* Key, credential and manifest files (cli.md): base64 lines and raw bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

int ug_file_read(const char *path, uint8_t *buf, size_t cap, size_t *len, char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return say(why, whycap, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return say(why, whycap, "not a regular file");
    }
    if ((uint64_t)st.st_size > cap) {
        close(fd);
        return say(why, whycap, "file too large");
    }
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

int ug_keyfile_read(const char *path, uint8_t *out, size_t n, char *why, size_t whycap)
{
    uint8_t text[256];
    size_t len, bin_len = 0;
    int rc = -1;
    if (ug_file_read(path, text, sizeof text, &len, why, whycap) != 0)
        goto out;
    if (len > 0 && text[len - 1] == '\n')
        len--;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    const char *end = NULL;
    if (len == 0 || sodium_base642bin(out, n, (const char *)text, len, NULL, &bin_len, &end,
                                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != (const char *)text + len) {
        say(why, whycap, "not one line of base64 of the expected length");
        goto out;
    }
    if (bin_len != n) {
        char msg[64];
        snprintf(msg, sizeof msg, "holds %zu bytes, expected %zu", bin_len, n);
        say(why, whycap, msg);
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(text, sizeof text); /* it may have held a secret */
    if (rc != 0)
        sodium_memzero(out, n);
    return rc;
}

uint8_t *ug_seckey_load(const char *path, char *why, size_t whycap)
{
    if (sodium_init() < 0) {
        say(why, whycap, "libsodium failed to initialise");
        return NULL;
    }
    uint8_t *seed = sodium_malloc(UG_SEED_LEN);
    uint8_t *sk = sodium_malloc(UG_SK_LEN);
    uint8_t pk[UG_PK_LEN];
    if (!seed || !sk || ug_keyfile_read(path, seed, UG_SEED_LEN, why, whycap) != 0) {
        if (!seed || !sk)
            say(why, whycap, "out of locked memory");
        sodium_free(seed);
        sodium_free(sk);
        return NULL;
    }
    (void)crypto_sign_seed_keypair(pk, sk, seed); /* cannot fail for a 32-byte seed */
    sodium_free(seed); /* sodium_free wipes before releasing */
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

int ug_keyfile_write(const char *path, const uint8_t *data, size_t n, bool secret, char *why, size_t whycap)
{
    char text[512];
    if (sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) + 1 > sizeof text)
        return say(why, whycap, "value too long");
    sodium_bin2base64(text, sizeof text, data, n, sodium_base64_VARIANT_ORIGINAL);
    size_t len = strlen(text);
    text[len++] = '\n';
    int rc = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0) {
        say(why, whycap, errno == EEXIST ? "exists; refusing to overwrite" : strerror(errno));
        goto out;
    }
    if (ug_write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        say(why, whycap, strerror(errno));
        close(fd);
        unlink(path);
        goto out;
    }
    rc = close(fd) == 0 ? 0 : say(why, whycap, strerror(errno));
out:
    sodium_memzero(text, sizeof text);
    return rc;
}

/* Stand-ins until key comments land: no comment support yet. */
int ug_pubkey_read(const char *path, uint8_t pk[UG_PK_LEN], char *why, size_t whycap)
{
    return ug_keyfile_read(path, pk, UG_PK_LEN, why, whycap);
}

int ug_key_write(const char *path, bool secret, const uint8_t key[UG_SEED_LEN], const uint8_t pk[UG_PK_LEN],
                 char *why, size_t whycap)
{
    (void)pk;
    return ug_keyfile_write(path, key, secret ? UG_SEED_LEN : UG_PK_LEN, secret, why, whycap);
}
