/* The opener: a helper process, forked before the host drops privileges, opens the policy's files for reloads. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/opener.h"
#include "ug_proto.h"

enum { OP_ADD = 1, OP_SEAL = 2, OP_OPEN = 3 };

#define NAME_MAX_ 255u
#define HELPER_FD 3 /* the helper's socket, once everything else is closed */

typedef struct {
    uint32_t op, index;
    char name[NAME_MAX_ + 1];
} request;

struct ug_opener {
    pid_t pid;
    int sock;
    pthread_mutex_t mu; /* one request at a time */
    unsigned ndirs;
    char *dirs[UG_OPENER_FOLDERS];
    unsigned nfiles;
    char *files[UG_OPENER_FILES];
    bool overflow; /* a folder beyond UG_OPENER_FOLDERS was named */
};

/* ---- both sides: one message, at most one descriptor ----------------------- */

static int send_msg(int sock, const void *data, size_t len, int fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } c;
    struct iovec v = {(void *)data, len};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = c.buf, m.msg_controllen = sizeof c.buf;
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET, h->cmsg_type = SCM_RIGHTS, h->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(h), &fd, sizeof fd);
    }
    ssize_t k;
    while ((k = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return k == (ssize_t)len ? 0 : -1;
}

/* The message's length (0: the other side closed, -1: an error); *fd the
 * descriptor it carried, or -1. */
static ssize_t recv_msg(int sock, void *data, size_t len, int *fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } c;
    struct iovec v = {data, len};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    ssize_t k;
    while ((k = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    *fd = -1;
    for (struct cmsghdr *h = k > 0 ? CMSG_FIRSTHDR(&m) : NULL; h; h = CMSG_NXTHDR(&m, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(h), sizeof *fd);
    return k;
}

/* ---- the helper: system calls only (a fork of a threaded process) --------------- */

static bool name_ok(const request *r)
{
    size_t n = strnlen(r->name, sizeof r->name);
    return n > 0 && n < sizeof r->name && !memchr(r->name, '/', n) && strcmp(r->name, ".") && strcmp(r->name, "..");
}

/* One name beneath a held folder: no link may lead out of it. */
static int open_beneath(int dir, const char *name)
{
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dir, name, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) /* before Linux 5.6: no link at all */
        fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
    return fd;
}

/* The helper alone: default signal handling (the host's handlers are not
 * its own), nothing open but its socket (the host's sockets and pipes
 * close with the host). */
static void helper_setup(int sock)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            (void)sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    if (sock != HELPER_FD && dup2(sock, HELPER_FD) != HELPER_FD)
        _exit(1);
    (void)syscall(SYS_close_range, 0u, (unsigned)HELPER_FD - 1, 0u);
    (void)syscall(SYS_close_range, (unsigned)HELPER_FD + 1, ~0u, 0u);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    (void)prctl(PR_SET_NAME, (unsigned long)"upgate-opener", 0, 0, 0);
}

_Static_assert(sizeof(request) == UG_OPENER_REQUEST_LEN, "the request's layout is opener.h's");

int32_t ug_opener_serve(ug_opener_helper *h, const void *msg, size_t len, int passed, int *fd)
{
    request r;
    int32_t e = 0;
    *fd = -1;
    if (len != sizeof r) {
        e = EINVAL;
    } else {
        memcpy(&r, msg, sizeof r);
        if (r.op == OP_ADD && !h->sealed && passed >= 0 && h->n < UG_OPENER_FOLDERS)
            h->dirs[h->n++] = passed, passed = -1;
        else if (r.op == OP_SEAL)
            h->sealed = true;
        else if (r.op == OP_OPEN && r.index < h->n && name_ok(&r))
            e = (*fd = open_beneath(h->dirs[r.index], r.name)) < 0 ? errno : 0;
        else
            e = EINVAL;
    }
    if (passed >= 0)
        close(passed);
    return e;
}

static void helper_main(int sock) __attribute__((noreturn));
static void helper_main(int sock)
{
    helper_setup(sock);
    ug_opener_helper h = {.n = 0};
    for (;;) {
        request r;
        int passed, fd;
        ssize_t k = recv_msg(HELPER_FD, &r, sizeof r, &passed);
        if (k <= 0)
            _exit(0); /* the plugin closed its end (or the process that held it ended) */
        int32_t e = ug_opener_serve(&h, &r, (size_t)k, passed, &fd);
        (void)send_msg(HELPER_FD, &e, sizeof e, fd);
        if (fd >= 0)
            close(fd);
    }
}

/* ---- the plugin's side ----------------------------------------------------- */

ug_opener *ug_opener_start(char *err, size_t errcap)
{
    ug_opener *o = calloc(1, sizeof *o);
    int sv[2];
    if (!o || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errcap, "cannot start the opener for reloads after dropping privileges: %s",
                 o ? strerror(errno) : "out of memory");
        free(o);
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    o->pid = fork();
    if (o->pid == 0)
        helper_main(sv[1]);
    close(sv[1]);
    if (o->pid < 0) {
        snprintf(err, errcap, "cannot start the opener for reloads after dropping privileges: fork: %s",
                 strerror(errno));
        close(sv[0]);
        pthread_mutex_destroy(&o->mu);
        free(o);
        return NULL;
    }
    o->sock = sv[0];
    return o;
}

ug_opener *ug_opener_lister(void)
{
    ug_opener *o = calloc(1, sizeof *o);
    if (o) {
        o->sock = -1;
        pthread_mutex_init(&o->mu, NULL);
    }
    return o;
}

void ug_opener_stop(ug_opener *o)
{
    if (!o)
        return;
    if (o->sock >= 0)
        close(o->sock);
    /* it exits on the closed socket; a host that reaps every child (or
     * ignores SIGCHLD) may have reaped it already */
    while (o->pid > 0 && waitpid(o->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    for (unsigned i = 0; i < o->ndirs; i++)
        free(o->dirs[i]);
    for (unsigned i = 0; i < o->nfiles; i++)
        free(o->files[i]);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

/* path's folder into dir (as written: "." for a bare name) and its last
 * name; false when the name is empty or too long. */
static bool split(const char *path, char *dir, size_t dircap, const char **name)
{
    const char *slash = strrchr(path, '/');
    *name = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, dircap, ".");
    else if (slash == path)
        snprintf(dir, dircap, "/");
    else if ((size_t)(slash - path) < dircap)
        snprintf(dir, dircap, "%.*s", (int)(slash - path), path);
    else
        return false;
    return **name && strlen(*name) <= NAME_MAX_;
}

static int folder_index(const ug_opener *o, const char *dir)
{
    for (unsigned i = 0; i < o->ndirs; i++)
        if (!strcmp(o->dirs[i], dir))
            return (int)i;
    return -1;
}

static void remember(char **list, unsigned *n, unsigned cap, const char *s, bool *overflow)
{
    for (unsigned i = 0; i < *n; i++)
        if (!strcmp(list[i], s))
            return;
    char *copy = *n < cap ? strdup(s) : NULL;
    if (copy)
        list[(*n)++] = copy;
    else if (overflow)
        *overflow = true;
}

/* The recording opener: a plain open, its file and folder remembered. */
static int record_open(void *ctx, const char *path, char *why, size_t whycap)
{
    ug_opener *o = ctx;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whycap, "%s", strerror(errno));
        return -1;
    }
    char dir[4096];
    const char *name;
    if (split(path, dir, sizeof dir, &name)) {
        remember(o->files, &o->nfiles, UG_OPENER_FILES, path, NULL);
        remember(o->dirs, &o->ndirs, UG_OPENER_FOLDERS, dir, &o->overflow);
    }
    return fd;
}

void ug_opener_record(ug_opener *o)
{
    ug_file_opener_set(record_open, o);
}

void ug_opener_use(ug_opener *o)
{
    ug_file_opener_set(ug_opener_open, o);
}

void ug_opener_plain(void)
{
    ug_file_opener_set(NULL, NULL);
}

/* One request and its reply: the errno the helper sent, or EPIPE when it
 * is gone; *fd the descriptor that came back. */
static int ask(ug_opener *o, const request *r, int send_fd, int *fd)
{
    int32_t e = EPIPE;
    *fd = -1;
    pthread_mutex_lock(&o->mu);
    if (send_msg(o->sock, r, sizeof *r, send_fd) == 0 && recv_msg(o->sock, &e, sizeof e, fd) != (ssize_t)sizeof e)
        e = EPIPE;
    pthread_mutex_unlock(&o->mu);
    if (e && *fd >= 0)
        close(*fd), *fd = -1;
    return e;
}

int ug_opener_open(void *ctx, const char *path, char *why, size_t whycap)
{
    ug_opener *o = ctx;
    char dir[4096];
    const char *name;
    request r = {.op = OP_OPEN};
    if (!split(path, dir, sizeof dir, &name)) {
        snprintf(why, whycap, "not a file name the opener takes");
        return -1;
    }
    int i = folder_index(o, dir);
    if (i < 0) {
        snprintf(why, whycap, "its folder was not opened at start, and privileges are gone since: restart to read it");
        return -1;
    }
    r.index = (uint32_t)i;
    memcpy(r.name, name, strlen(name) + 1);
    int fd, e = ask(o, &r, -1, &fd);
    if (e == EPIPE)
        snprintf(why, whycap, "upgate's opener process is gone: restart to reload");
    else if (e == EXDEV || e == ELOOP)
        snprintf(why, whycap, "a link out of its folder, refused once privileges are dropped");
    else if (e)
        snprintf(why, whycap, "%s", strerror(e));
    return e ? -1 : fd;
}

/* Adds one refusal to fails (at most cap), counting it in *n. */
static void failed(ug_opener_fail *fails, size_t cap, size_t *n, const char *file, const char *why)
{
    if (*n < cap) {
        fails[*n].file = file;
        snprintf(fails[*n].why, sizeof fails[*n].why, "%s", why);
    }
    (*n)++;
}

int ug_opener_seal(ug_opener *o, ug_opener_fail *fails, size_t cap, char *err, size_t errcap)
{
    ug_opener_plain();
    int fd;
    for (unsigned i = 0; i < o->ndirs; i++) {
        int d = open(o->dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        request r = {.op = OP_ADD, .index = i};
        int e = d < 0 ? errno : ask(o, &r, d, &fd);
        if (d >= 0)
            close(d);
        if (e) {
            snprintf(err, errcap, "opener: folder %s: %s", o->dirs[i], strerror(e));
            return -1;
        }
    }
    request seal = {.op = OP_SEAL};
    if (ask(o, &seal, -1, &fd) != 0) {
        snprintf(err, errcap, "opener: the helper process is gone");
        return -1;
    }
    size_t n = 0;
    for (unsigned i = 0; i < o->nfiles; i++) {
        char why[200];
        int f = ug_opener_open(o, o->files[i], why, sizeof why);
        if (f >= 0)
            close(f);
        else
            failed(fails, cap, &n, o->files[i], why);
    }
    return (int)n;
}

int ug_opener_audit(ug_opener *o, ug_opener_fail *fails, size_t cap)
{
    ug_opener_plain();
    size_t n = 0;
    for (unsigned i = 0; i < o->nfiles; i++) {
        char dir[4096];
        const char *name;
        if (!split(o->files[i], dir, sizeof dir, &name))
            continue;
        int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = d < 0 ? -1 : open_beneath(d, name), e = errno;
        if (d >= 0)
            close(d);
        if (fd >= 0)
            close(fd);
        else if (folder_index(o, dir) < 0)
            failed(fails, cap, &n, o->files[i], "more folders than the opener holds");
        else
            failed(fails, cap, &n, o->files[i],
                   e == EXDEV || e == ELOOP ? "a link out of its folder, refused once privileges are dropped"
                                            : strerror(e));
    }
    return (int)n;
}

unsigned ug_opener_folders(const ug_opener *o, const char *const **dirs)
{
    *dirs = (const char *const *)o->dirs;
    return o->ndirs;
}

/* ---- what a user could read by path ------------------------------------------ */

typedef struct {
    uid_t uid;
    gid_t groups[64];
    int ngroups;
} who;

/* May w do what `bits` of the owner's class (4 read, 1 search) say on st? */
static bool may(const who *w, const struct stat *st, unsigned bits)
{
    if (w->uid == 0)
        return true; /* root reads and searches anything (DAC) */
    if (st->st_uid == w->uid)
        return ((st->st_mode >> 6) & bits) == bits;
    for (int i = 0; i < w->ngroups; i++)
        if (w->groups[i] == st->st_gid)
            return ((st->st_mode >> 3) & bits) == bits;
    return (st->st_mode & bits) == bits;
}

bool ug_user_can_read(const char *user, const char *path, char *why, size_t whycap)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    who w = {.ngroups = 64};
    if (getpwnam_r(user, &pw, buf, sizeof buf, &res) != 0 || !res) {
        snprintf(why, whycap, "no user %s", user);
        return false;
    }
    w.uid = pw.pw_uid;
    if (getgrouplist(user, pw.pw_gid, w.groups, &w.ngroups) < 0)
        w.ngroups = 64; /* more groups than that: the first 64 */
    char part[4096];
    size_t len = strlen(path);
    if (path[0] != '/' || len >= sizeof part) {
        snprintf(why, whycap, "%s: not an absolute path", path);
        return false;
    }
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        memcpy(part, path, i), part[i] = 0;
        struct stat st;
        bool last = i == len;
        if (stat(part, &st) != 0) {
            snprintf(why, whycap, "%s: %s", part, strerror(errno));
            return false;
        }
        if (!may(&w, &st, last ? 4 : 1)) {
            snprintf(why, whycap, "%s cannot %s %s", user, last ? "read" : "search", part);
            return false;
        }
    }
    /* the root folder itself */
    struct stat st;
    if (stat("/", &st) == 0 && !may(&w, &st, 1)) {
        snprintf(why, whycap, "%s cannot search /", user);
        return false;
    }
    return true;
}
