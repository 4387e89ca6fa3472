/* upgate-ctl's side of the control socket (docs/control.md): one request, the reply read to the end within a deadline and a size limit. */
#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "ctlclient.h"

/* Waits for events on fd until deadline: 1 ready, 0 timed out, -1 error. */
static int wait_for(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - ug_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n > 0)
            return 1;
    }
}

/* Why connect() failed, for an operator: what to do about it. */
static void connect_error(const char *path, int e, char *err, size_t errcap)
{
    struct stat st;
    if (e == ENOENT)
        snprintf(err, errcap, "cannot connect to %s: no such socket (is upgate-node running? it serves upgate.ctl in "
                              "its policy's state folder, or the path of its --control)", path);
    else if (e == ECONNREFUSED && lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        snprintf(err, errcap, "cannot connect to %s: not a socket", path);
    else if (e == ECONNREFUSED)
        snprintf(err, errcap, "cannot connect to %s: connection refused (no tracker serves it: left by a node that "
                              "did not stop cleanly?)", path);
    else if (e == EACCES || e == EPERM)
        snprintf(err, errcap, "cannot connect to %s: permission denied (the socket is mode 0600: run upgate-ctl as "
                              "the tracker's user or as root)", path);
    else
        snprintf(err, errcap, "cannot connect to %s: %s", path, strerror(e));
}

/* Connects, retrying while the server's queue is full, until deadline. */
static int connect_until(int fd, const struct sockaddr_un *sa, const char *path, int64_t deadline, long timeout_ms,
                         char *err, size_t errcap)
{
    for (;;) {
        if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) {
            int soerr = 0;
            socklen_t l = sizeof soerr;
            if (wait_for(fd, POLLOUT, deadline) <= 0)
                break;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) == 0 && soerr == 0)
                return 0;
            connect_error(path, soerr, err, errcap);
            return -1;
        }
        if (errno != EAGAIN) {
            connect_error(path, errno, err, errcap);
            return -1;
        }
        if (ug_mono_ms() >= deadline)
            break;
        nanosleep(&(struct timespec){0, 20 * 1000000}, NULL); /* the tracker's queue is full: try again soon */
    }
    snprintf(err, errcap, "cannot connect to %s: the tracker did not accept within %ld s (--timeout)", path,
             timeout_ms / 1000);
    return -1;
}

/* Who may answer on the socket (issue 21 §4): root, our own user, or the
 * owner of the folder the socket is in, when that folder is writable by no
 * one else. Anyone who can write the folder can put a socket there, so in
 * /tmp only root or we ourselves are believed. 0, or -1 with why in err. */
static int check_peer(int fd, const char *path, char *err, size_t errcap)
{
    struct ucred cr;
    socklen_t l = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) != 0)
        return snprintf(err, errcap, "%s: cannot tell who serves it: %s", path, strerror(errno)), -1;
    if (cr.uid == 0 || cr.uid == geteuid())
        return 0;
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof dir, "%s", path);
    struct stat st;
    if (stat(dirname(dir), &st) == 0 && st.st_uid == cr.uid && !(st.st_mode & (S_IWGRP | S_IWOTH)))
        return 0;
    snprintf(err, errcap, "%s is served by uid %u (pid %d), neither root, nor this user, nor the owner of a folder "
                          "only its owner can write: not believed", path, (unsigned)cr.uid, (int)cr.pid);
    return -1;
}

/* Writes all of data; a server that closes early may have answered already. */
static int send_all(int fd, const char *data, size_t len, int64_t deadline)
{
    size_t at = 0;
    while (at < len) {
        ssize_t k = send(fd, data + at, len - at, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            at += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else if (k < 0 && errno == EAGAIN) {
            if (wait_for(fd, POLLOUT, deadline) <= 0)
                return -1;
        } else
            return -1;
    }
    return 0;
}

static int read_reply(int fd, const char *path, int64_t deadline, long timeout_ms, ug_buf *out, char *err,
                      size_t errcap)
{
    static char chunk[1 << 16];
    for (;;) {
        ssize_t k = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (k > 0) {
            ug_buf_emit(out, chunk, (size_t)k);
            if (out->overflow && out->len + (size_t)k > out->max)
                return snprintf(err, errcap, "the reply from %s is longer than %zu MiB, upgate-ctl's limit", path,
                                out->max >> 20), -1;
            if (out->overflow)
                return snprintf(err, errcap, "out of memory reading the reply from %s", path), -1;
        } else if (k == 0) {
            break;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            int r = wait_for(fd, POLLIN, deadline);
            if (r == 0) {
                snprintf(err, errcap, "no %sreply from %s within %ld s (--timeout)", out->len ? "whole " : "", path,
                         timeout_ms / 1000);
                return -1;
            }
            if (r < 0)
                return snprintf(err, errcap, "reading from %s: %s", path, strerror(errno)), -1;
        } else {
            return snprintf(err, errcap, "reading from %s: %s", path, strerror(errno)), -1;
        }
    }
    if (!out->len)
        return snprintf(err, errcap, "%s closed the connection without a reply", path), -1;
    if (ug_buf_finish(out) != 0)
        return snprintf(err, errcap, "out of memory reading the reply from %s", path), -1;
    return 0;
}

int ug_ctlc_call(const char *path, const char *req, size_t len, long timeout_ms, ug_buf *out, char *err,
                 size_t errcap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return snprintf(err, errcap, "%s: longer than %zu bytes, the limit of a socket path", path,
                        sizeof sa.sun_path - 1), -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int64_t deadline = ug_mono_ms() + timeout_ms;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return snprintf(err, errcap, "socket: %s", strerror(errno)), -1;
    int rc = connect_until(fd, &sa, path, deadline, timeout_ms, err, errcap);
    if (rc == 0)
        rc = check_peer(fd, path, err, errcap);
    if (rc == 0) {
        /* the line and its newline in one write, so the server sees the request whole */
        char line[4096];
        bool small = len + 1 <= sizeof line;
        if (small) {
            memcpy(line, req, len);
            line[len] = '\n';
        }
        if (small ? send_all(fd, line, len + 1, deadline) == 0
                  : send_all(fd, req, len, deadline) == 0 && send_all(fd, "\n", 1, deadline) == 0)
            shutdown(fd, SHUT_WR);
        rc = read_reply(fd, path, deadline, timeout_ms, out, err, errcap);
    }
    close(fd);
    return rc;
}
