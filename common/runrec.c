/* Where a running upgate-node records its control socket, keyed by its policy file: the folders, the record's name, its text. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common.h"
#include "runrec.h"

/* Appends a folder (printf-style) unless it is too long or already listed. */
static void __attribute__((format(printf, 3, 4))) add(ug_rundirs *d, bool shared_parent, const char *fmt, ...)
{
    char p[PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p, sizeof p, fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof p || d->n == UG_RUNREC_DIRS)
        return;
    for (unsigned i = 0; i < d->n; i++)
        if (!strcmp(d->path[i], p))
            return;
    memcpy(d->path[d->n], p, (size_t)n + 1);
    d->shared_parent[d->n++] = shared_parent;
}

void ug_rundirs_list(ug_rundirs *d)
{
    memset(d, 0, sizeof *d);
    const char *rt = getenv("RUNTIME_DIRECTORY"); /* systemd: colon-separated when the unit names several */
    if (rt && rt[0] == '/')
        add(d, false, "%.*s", (int)strcspn(rt, ":"), rt);
    add(d, false, "/run/upgate");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/')
        add(d, false, "%s/upgate", xdg);
    add(d, true, "/tmp/upgate-%u", (unsigned)geteuid());
}

bool ug_rundir_trusted(const ug_rundirs *d, unsigned i)
{
    struct stat st;
    if (i >= d->n || lstat(d->path[i], &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 022))
        return false;
    return !d->shared_parent[i] || st.st_uid == geteuid();
}

int ug_runrec_name(const char *policy, char real[PATH_MAX], char name[UG_RUNREC_NAME_MAX], char *err, size_t errcap)
{
    if (!realpath(policy, real))
        return snprintf(err, errcap, "%s: %s", policy, strerror(errno)), -1;
    unsigned char h[16];
    char hex[2 * sizeof h + 1];
    if (sodium_init() < 0 || crypto_generichash(h, sizeof h, (const unsigned char *)real, strlen(real), NULL, 0) != 0)
        return snprintf(err, errcap, "%s: libsodium failed", policy), -1;
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(name, UG_RUNREC_NAME_MAX, "%s%s", UG_RUNREC_PREFIX, hex);
    return 0;
}

int ug_runrec_format(const ug_runrec *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s\npid %d\npolicy %s\nsocket %s\n", UG_RUNREC_MAGIC, (int)r->pid, r->policy,
                     r->socket);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* The next line of [*p, end) without its newline, whose first bytes must
 * be key; its value (an absolute path, or any text when path is false)
 * into out. -1 when the line is not that. */
static int take_line(const char **p, const char *end, const char *key, bool path, char *out, size_t cap)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t klen = strlen(key);
    if (!nl || (size_t)(nl - *p) < klen || memcmp(*p, key, klen) != 0)
        return -1;
    const char *v = *p + klen;
    size_t n = (size_t)(nl - v);
    if (n >= cap || (path && (n == 0 || v[0] != '/')))
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return -1;
    memcpy(out, v, n);
    out[n] = 0;
    *p = nl + 1;
    return 0;
}

int ug_runrec_parse(const char *text, size_t len, ug_runrec *r, char *why, size_t whycap)
{
    memset(r, 0, sizeof *r);
    const char *p = text, *end = text + len;
    char magic[sizeof UG_RUNREC_MAGIC], pid[16];
    uint64_t v;
    if (take_line(&p, end, "", false, magic, sizeof magic) != 0 || strcmp(magic, UG_RUNREC_MAGIC) != 0)
        return snprintf(why, whycap, "not an upgate-node record (its first line is not \"%s\")", UG_RUNREC_MAGIC), -1;
    if (take_line(&p, end, "pid ", false, pid, sizeof pid) != 0 || pid[0] == '0' ||
        ug_parse_u64(pid, 1, INT32_MAX, &v) != 0)
        return snprintf(why, whycap, "line 2: expected pid N"), -1;
    r->pid = (pid_t)v;
    if (take_line(&p, end, "policy ", true, r->policy, sizeof r->policy) != 0)
        return snprintf(why, whycap, "line 3: expected policy /PATH"), -1;
    if (take_line(&p, end, "socket ", true, r->socket, sizeof r->socket) != 0)
        return snprintf(why, whycap, "line 4: expected socket /PATH"), -1;
    if (p != end)
        return snprintf(why, whycap, "more than four lines"), -1;
    return 0;
}

int ug_runrec_read(const char *path, ug_runrec *r, char *why, size_t whycap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0)
        return snprintf(why, whycap, "%s", errno == ELOOP ? "a symbolic link" : strerror(errno)), -1;
    char text[UG_RUNREC_MAX + 1];
    struct stat st;
    ssize_t n = fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ? -2 : read(fd, text, sizeof text);
    int e = errno;
    close(fd);
    if (n == -2)
        return snprintf(why, whycap, "not a regular file"), -1;
    if (n < 0)
        return snprintf(why, whycap, "%s", strerror(e)), -1;
    if ((size_t)n > UG_RUNREC_MAX)
        return snprintf(why, whycap, "larger than %u bytes", (unsigned)UG_RUNREC_MAX), -1;
    return ug_runrec_parse(text, (size_t)n, r, why, whycap);
}

bool ug_runrec_alive(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}
