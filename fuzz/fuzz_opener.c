/* libFuzzer harness: the opener helper's requests (plugin/base/opener.c), what a host that dropped to nobody may send the root helper. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/opener.h"
#include "fuzz_common.h"

/*
 * The helper keeps root after the host drops privileges, so every message
 * the host's (maybe subverted) process can send is outside input.
 * Input: records, each
 *   b0 bits 0-1  the descriptor passed with it: none, folder a, folder b,
 *                a regular file
 *      bit  2    raw: b1 b2 a length (LE, mod MSG_MAX), then that many bytes
 *                as the message; else a request: b1 op, b2 index, b3 the
 *                name's length, then the name's bytes (NUL-padded)
 *      bit  3    (requests) the name fills all 256 bytes, no NUL
 * Invariants: an answer is 0 exactly when a file came back; a file comes
 * back only from beneath the folder its index holds (no "..", no link
 * out, no absolute name); a sealed helper takes no folder; at most
 * UG_OPENER_FOLDERS; no descriptor leaks.
 */

#define MSG_MAX 600u
#define NAME_LEN 256u

static char root[PATH_MAX], dir_a[300], dir_b[300], plain[300];
static unsigned baseline; /* descriptors open between inputs */

static unsigned open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    FZ_CHECK(d != NULL, "/proc/self/fd");
    unsigned n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the listing's own */
}

static void link_or_die(const char *to, const char *at)
{
    FZ_CHECK(symlink(to, at) == 0, "symlink %s: %s", at, strerror(errno));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    FZ_CHECK(realpath(fz_tmpdir("opener"), root) != NULL, "realpath"); /* as /proc/self/fd names it */
    snprintf(dir_a, sizeof dir_a, "%s/a", root);
    snprintf(dir_b, sizeof dir_b, "%s/b", root);
    snprintf(plain, sizeof plain, "%s/secret", root);
    char p[400];
    FZ_CHECK(mkdir(dir_a, 0700) == 0 && mkdir(dir_b, 0755) == 0, "mkdir");
    snprintf(p, sizeof p, "%s/sub", dir_a);
    FZ_CHECK(mkdir(p, 0700) == 0, "mkdir sub");
    fz_write(root, "secret", "outside\n", 8);
    fz_write(dir_a, "key", "a key\n", 6);
    fz_write(dir_a, "sub/f", "deeper\n", 7);
    fz_write(dir_b, "x", "x\n", 2);
    snprintf(p, sizeof p, "%s/up", dir_a), link_or_die("../secret", p);
    snprintf(p, sizeof p, "%s/abs", dir_a), link_or_die("/etc/passwd", p);
    snprintf(p, sizeof p, "%s/self", dir_a), link_or_die("/proc/self/root/etc/passwd", p);
    snprintf(p, sizeof p, "%s/k2", dir_a), link_or_die("key", p);
    snprintf(p, sizeof p, "%s/deep", dir_a), link_or_die("sub/f", p);
    snprintf(p, sizeof p, "%s/side", dir_b), link_or_die("../a/key", p);
    baseline = open_fds();
    return 0;
}

static int passed_fd(unsigned which)
{
    static const int flags[4] = {0, O_RDONLY | O_DIRECTORY, O_RDONLY | O_DIRECTORY, O_RDONLY};
    const char *const path[4] = {NULL, dir_a, dir_b, plain};
    if (!which)
        return -1;
    int fd = open(path[which], flags[which] | O_CLOEXEC);
    FZ_CHECK(fd >= 0, "open %s", path[which]);
    return fd;
}

/* Where descriptor fd points. */
static void target(int fd, char *out, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, cap - 1);
    FZ_CHECK(n > 0, "readlink %s", link);
    out[n] = 0;
}

/* A file came back for folder index: it lies beneath that folder, which is a or b. */
static void check_beneath(const ug_opener_helper *h, unsigned at, int fd)
{
    char dir[512], file[512];
    FZ_CHECK(at < h->n, "a file for index %u of %u folders", at, h->n);
    target(h->dirs[at], dir, sizeof dir);
    target(fd, file, sizeof file);
    size_t dl = strlen(dir);
    FZ_CHECK(!strcmp(dir, dir_a) || !strcmp(dir, dir_b), "a folder nobody passed: %s", dir);
    FZ_CHECK(!strncmp(file, dir, dl) && file[dl] == '/', "%s opened beneath %s", file, dir);
}

/* One record of the input at *p (n bytes left) into msg; its length. */
static size_t message(const uint8_t **p, size_t *n, uint8_t b0, uint8_t *msg, uint32_t *op, uint32_t *idx_out)
{
    const uint8_t *q = *p;
    size_t left = *n, len;
    uint8_t hdr[3] = {0, 0, 0};
    for (unsigned i = 0; i < 3 && left; i++, left--)
        hdr[i] = *q++;
    if (b0 & 4) {
        len = ((size_t)hdr[0] | (size_t)hdr[1] << 8) % MSG_MAX;
        size_t take = len < left ? len : left;
        memset(msg, 0, len);
        memcpy(msg, q, take);
        q += take, left -= take;
    } else {
        uint32_t o = hdr[0] % 5, idx = hdr[1];
        len = UG_OPENER_REQUEST_LEN;
        memset(msg, 0, len);
        memcpy(msg, &o, 4), memcpy(msg + 4, &idx, 4);
        size_t take = hdr[2] < left ? hdr[2] : left;
        memcpy(msg + 8, q, take > NAME_LEN ? NAME_LEN : take);
        if (b0 & 8)
            memset(msg + 8 + take, 'k', NAME_LEN - take);
        q += take, left -= take;
    }
    memcpy(op, msg, sizeof *op), memcpy(idx_out, msg + 4, sizeof *idx_out);
    *p = q, *n = left;
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug_opener_helper h = {.n = 0};
    uint8_t msg[MSG_MAX];
    while (size > 0) {
        uint8_t b0 = *data++;
        size--;
        uint32_t op = 0, at = 0;
        size_t len = message(&data, &size, b0, msg, &op, &at);
        unsigned before = h.n;
        bool sealed = h.sealed;
        int fd = -1;
        int32_t e = ug_opener_serve(&h, msg, len, passed_fd(b0 & 3), &fd);
        bool opens = len == UG_OPENER_REQUEST_LEN && op == 3;
        FZ_CHECK(fd < 0 || (e == 0 && opens), "answer %d to op %u with descriptor %d", (int)e, (unsigned)op, fd);
        FZ_CHECK(!opens || e != 0 || fd >= 0, "an open answered 0 without a file");
        FZ_CHECK(h.n <= UG_OPENER_FOLDERS && (h.n == before || (h.n == before + 1 && !sealed)),
                 "folders %u -> %u, sealed %d", before, h.n, sealed);
        if (fd >= 0) {
            check_beneath(&h, at, fd);
            close(fd);
        }
    }
    for (unsigned i = 0; i < h.n; i++)
        close(h.dirs[i]);
    FZ_CHECK(open_fds() == baseline, "%u descriptors open, %u before", open_fds(), baseline);
    return 0;
}
