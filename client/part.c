/* libupgate: the partial download DEST.part, its id file DEST.part.id, resuming it, verifying it, moving it into place. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "download.h"

#define ID_MAX 160

/* What DEST.part.id holds for this package: its size and hash identify the
 * bytes a partial file must be a prefix of (any manifest for that package
 * will do, whatever its URLs). */
static void id_text(const ug_client_transfer *d, char *out, size_t cap)
{
    char hex[2 * UG_HASH_LEN + 1];
    sodium_bin2hex(hex, sizeof hex, d->offer.hash, UG_HASH_LEN);
    snprintf(out, cap, "upgate-part 1 size=%llu blake2b=%s\n", (unsigned long long)d->offer.size, hex);
}

static int fail_errno(ug_client_transfer *d, const char *path, int e)
{
    d->write_errno = e ? e : EIO;
    ug_client_dl_say_(d, "%s: %s", path, strerror(d->write_errno));
    return -1;
}

/* Hashes the first n bytes of the file into d->st. */
static int rehash(ug_client_transfer *d, uint64_t n)
{
    uint8_t buf[65536];
    for (uint64_t off = 0; off < n;) {
        size_t want = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;
        ssize_t got = pread(d->fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        crypto_generichash_update(&d->st, buf, (size_t)got);
        off += (uint64_t)got;
    }
    return 0;
}

static bool id_matches(const ug_client_transfer *d, const char *want)
{
    uint8_t text[ID_MAX];
    size_t len;
    char why[128];
    size_t wlen = strlen(want);
    return ug_file_read(d->id, text, sizeof text, &len, why, sizeof why) == 0 && len == wlen &&
           memcmp(text, want, wlen) == 0;
}

/* Empties the partial file and names the package it now belongs to. */
static int start_over(ug_client_transfer *d, const char *want)
{
    if (ftruncate(d->fd, 0) != 0)
        return fail_errno(d, d->part, errno);
    crypto_generichash_init(&d->st, NULL, 0, UG_HASH_LEN);
    d->have = 0;
    int fd = open(d->id, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return fail_errno(d, d->id, errno);
    /* no fsync: an id that did not reach the disk only costs a fresh start */
    int rc = ug_write_all(fd, want, strlen(want)) == 0 ? 0 : errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    return rc ? fail_errno(d, d->id, rc) : 0;
}

ug_client_err ug_client_part_open_(ug_client_transfer *d)
{
    const char *dest = d->cfg.dest;
    if ((size_t)snprintf(d->part, sizeof d->part, "%s.part", dest) >= sizeof d->part ||
        (size_t)snprintf(d->id, sizeof d->id, "%s.part.id", dest) >= sizeof d->id) {
        ug_client_dl_say_(d, "%s: path too long", dest);
        return UG_CLIENT_E_INVALID;
    }
    d->fd = open(d->part, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->fd < 0) {
        ug_client_dl_say_(d, "%s: %s", d->part, strerror(errno));
        return UG_CLIENT_E_IO;
    }
    struct stat st;
    if (fstat(d->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ug_client_dl_say_(d, "%s: not a regular file", d->part);
        return UG_CLIENT_E_IO;
    }
    if (flock(d->fd, LOCK_EX | LOCK_NB) != 0) {
        ug_client_dl_say_(d, "%s: %s", d->part,
                 errno == EWOULDBLOCK ? "another download is writing it" : strerror(errno));
        return UG_CLIENT_E_IO;
    }
    d->part_owned = true;
    char want[ID_MAX];
    id_text(d, want, sizeof want);
    crypto_generichash_init(&d->st, NULL, 0, UG_HASH_LEN);
    d->have = 0;
    if ((uint64_t)st.st_size <= d->offer.size && id_matches(d, want) && rehash(d, (uint64_t)st.st_size) == 0) {
        d->have = (uint64_t)st.st_size; /* a prefix of this package, as far as we know: resume it */
        return UG_CLIENT_OK;
    }
    return start_over(d, want) == 0 ? UG_CLIENT_OK : UG_CLIENT_E_IO;
}

int ug_client_part_append_(ug_client_transfer *d, const void *data, size_t n)
{
    if (ug_write_all(d->fd, data, n) != 0)
        return fail_errno(d, d->part, errno);
    crypto_generichash_update(&d->st, data, n);
    d->have += n;
    return 0;
}

int ug_client_part_discard_(ug_client_transfer *d)
{
    char want[ID_MAX];
    id_text(d, want, sizeof want);
    return start_over(d, want);
}

bool ug_client_part_verify_(ug_client_transfer *d)
{
    if (d->have != d->offer.size)
        return false;
    crypto_generichash_state copy = d->st; /* final() consumes the state */
    uint8_t hash[UG_HASH_LEN];
    crypto_generichash_final(&copy, hash, sizeof hash);
    return sodium_memcmp(hash, d->offer.hash, UG_HASH_LEN) == 0;
}

ug_client_err ug_client_part_install_(ug_client_transfer *d)
{
    if (fsync(d->fd) != 0) {
        ug_client_dl_say_(d, "%s: %s", d->part, strerror(errno));
        return UG_CLIENT_E_IO;
    }
    if (rename(d->part, d->cfg.dest) != 0) { /* still under our lock */
        ug_client_dl_say_(d, "%s: %s", d->cfg.dest, strerror(errno));
        return UG_CLIENT_E_IO;
    }
    (void)unlink(d->id);
    close(d->fd);
    d->fd = -1;
    ug_client_sync_dir_(d->cfg.dest);
    d->msg[0] = 0;
    return UG_CLIENT_OK;
}

void ug_client_part_close_(ug_client_transfer *d, bool remove_if_empty)
{
    if (d->fd < 0)
        return;
    if (remove_if_empty && d->part_owned && d->have == 0) { /* unlink before close: still ours */
        (void)unlink(d->part);
        (void)unlink(d->id);
    }
    close(d->fd);
    d->fd = -1;
}
