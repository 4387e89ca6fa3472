/* upgate-node's control socket (docs/control.md "Transport"): one thread polling every client, one request per connection. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "common.h"
#include "ctlsock.h"
#include "log.h"
#include "node.h"

static struct {
    int fd, stop[2];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
    pthread_t thread;
    bool on;
    _Atomic unsigned long long served;
} S = {.fd = -1, .stop = {-1, -1}};

unsigned long long ug_ctl_served(void)
{
    return atomic_load(&S.served);
}

/* One client of the socket: its request coming in, then its reply going
 * out. Nothing here blocks: the thread polls every client at once, so an
 * idle, dripping or non-reading client holds its own slot and no one
 * else's (issue 21 §4). */
typedef struct {
    int fd;       /* -1: a free slot */
    bool writing; /* the reply is going out */
    int64_t since, deadline;
    char *req; /* UG_CTL_REQUEST_MAX + 1 bytes, taken at the first byte */
    size_t got;
    ug_buf out;
    size_t sent;
} conn;

static conn C[UG_CTL_CLIENTS];

static void conn_close(conn *c)
{
    close(c->fd);
    free(c->req);
    ug_buf_free(&c->out);
    *c = (conn){.fd = -1};
}

/* {"ok":false,"error":msg}, escaped by jansson. */
static void out_error(ug_buf *b, const char *msg)
{
    json_t *j = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s)
        ug_buf_emit(b, s, strlen(s));
    else
        ug_buf_emit(b, "{\"ok\":false,\"error\":\"out of memory\"}", 36);
    free(s);
    json_decref(j);
}

/* The reply to c's request (why: it was refused before the plugin), gathered
 * whole so that writing it waits for no one: then c turns to writing. */
static void conn_answer(conn *c, const char *why)
{
    json_error_t je;
    json_t *j = why ? NULL : json_loadb(c->req, c->got, JSON_REJECT_DUPLICATES, &je);
    char msg[300];
    if (!why && !json_is_object(j)) {
        snprintf(msg, sizeof msg, "not one JSON object: %s", j ? "not an object" : je.text);
        why = msg;
    }
    json_decref(j);
    c->out = (ug_buf){.max = UG_CTL_REPLY_MAX};
    if (why) {
        out_error(&c->out, why);
    } else {
        int rc = ug_node_control(c->req, c->got, ug_buf_emit, &c->out);
        if (c->out.overflow) {
            ug_buf_free(&c->out);
            c->out = (ug_buf){.max = UG_CTL_REPLY_MAX};
            out_error(&c->out, "the reply is longer than 256 MiB");
        } else if (rc == -2) {
            out_error(&c->out, "plugin has no control");
        } else if (c->out.len == 0) {
            out_error(&c->out, "the plugin gave no reply");
        }
    }
    if (!c->out.len || c->out.data[c->out.len - 1] != '\n')
        ug_buf_emit(&c->out, "\n", 1);
    free(c->req);
    c->req = NULL;
    c->writing = true;
    c->deadline = ug_mono_ms() + UG_CTL_WRITE_MS;
    atomic_fetch_add(&S.served, 1);
}

/* Reads what c has sent; answers once the line is whole, at its end, when
 * it is too long, or when its deadline passed. */
static void conn_read(conn *c, bool late)
{
    const char *why = NULL;
    if (!c->req && !(c->req = malloc(UG_CTL_REQUEST_MAX + 1)))
        why = "out of memory";
    while (!why) {
        ssize_t k = recv(c->fd, c->req + c->got, UG_CTL_REQUEST_MAX + 1 - c->got, MSG_DONTWAIT);
        char *nl = k > 0 ? memchr(c->req + c->got, '\n', (size_t)k) : NULL;
        if (k > 0)
            c->got += (size_t)k;
        if (nl || (k == 0 && c->got)) { /* a line, or a last line without its newline */
            c->got = nl ? (size_t)(nl - c->req) : c->got;
            break;
        } else if (k > 0 && c->got > UG_CTL_REQUEST_MAX) {
            why = "request longer than 65536 bytes";
        } else if (k == 0) {
            why = "empty request";
        } else if (k < 0 && errno == EAGAIN) {
            if (!late)
                return;
            why = "no request line within 5 s";
        } else if (k < 0 && errno != EINTR) {
            conn_close(c);
            return;
        }
    }
    conn_answer(c, why);
}

/* Writes what c's socket takes of its reply; closes c when all is out, when
 * it fails, or when the write deadline passed. */
static void conn_write(conn *c, bool late)
{
    while (c->sent < c->out.len) {
        ssize_t k = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            c->sent += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else if (k < 0 && errno == EAGAIN && !late)
            return;
        else
            break;
    }
    conn_close(c);
}

/* A slot for a new client: a free one, else the one that has been reading
 * longest (an idle client, most likely) is dropped for it; NULL when every
 * slot is writing a reply. */
static conn *conn_slot(void)
{
    conn *oldest = NULL;
    for (size_t i = 0; i < UG_CTL_CLIENTS; i++) {
        if (C[i].fd < 0)
            return &C[i];
        if (!C[i].writing && (!oldest || C[i].since < oldest->since))
            oldest = &C[i];
    }
    if (oldest)
        conn_close(oldest);
    return oldest;
}

static void accept_all(void)
{
    for (;;) {
        conn *c = conn_slot();
        if (!c)
            return;
        int fd = accept4(S.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return; /* none left, or fds ran out for a moment */
        int64_t now = ug_mono_ms();
        *c = (conn){.fd = fd, .since = now, .deadline = now + UG_CTL_READ_MS};
    }
}

/* The poll set: the listening socket, the stop pipe, then every client;
 * its timeout reaches the nearest deadline. */
static int poll_set(struct pollfd *p, conn **who, int *timeout)
{
    int n = 0;
    int64_t now = ug_mono_ms(), next = now + 60000;
    p[n++] = (struct pollfd){.fd = S.stop[0], .events = POLLIN};
    p[n++] = (struct pollfd){.fd = S.fd, .events = POLLIN};
    for (size_t i = 0; i < UG_CTL_CLIENTS; i++) {
        if (C[i].fd < 0)
            continue;
        who[n] = &C[i];
        p[n++] = (struct pollfd){.fd = C[i].fd, .events = C[i].writing ? POLLOUT : POLLIN};
        if (C[i].deadline < next)
            next = C[i].deadline;
    }
    *timeout = next > now ? (int)(next - now) : 0;
    return n;
}

static void *ctl_main(void *arg)
{
    (void)arg;
    static struct pollfd p[UG_CTL_CLIENTS + 2];
    static conn *who[UG_CTL_CLIENTS + 2];
    for (;;) {
        int timeout, n = poll_set(p, who, &timeout);
        int k = poll(p, (nfds_t)n, timeout);
        if (k < 0 && errno != EINTR)
            break;
        if (k > 0 && p[0].revents)
            break;
        int64_t now = ug_mono_ms();
        for (int i = 2; i < n; i++) {
            conn *c = who[i];
            bool late = now >= c->deadline;
            if (c->fd < 0 || (!late && !(k > 0 && p[i].revents)))
                continue;
            if (!c->writing)
                conn_read(c, late);
            if (c->fd >= 0 && c->writing)
                conn_write(c, late); /* at once: most replies fit the socket's buffer */
        }
        if (k > 0 && p[1].revents)
            accept_all();
    }
    for (size_t i = 0; i < UG_CTL_CLIENTS; i++)
        if (C[i].fd >= 0)
            conn_close(&C[i]);
    return NULL;
}

/* A socket file at path from an earlier run: a live node answering on it
 * refuses the start, a dead one's file is removed; anything not a socket is
 * left alone and refuses the start. */
static int clear_stale(const struct sockaddr_un *sa, char *err, size_t errcap)
{
    struct stat st;
    if (lstat(sa->sun_path, &st) != 0)
        return errno == ENOENT ? 0 : (snprintf(err, errcap, "--control %s: %s", sa->sun_path, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errcap, "--control %s: exists and is not a socket", sa->sun_path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa), e = errno;
    close(fd);
    if (rc == 0) {
        snprintf(err, errcap, "--control %s: another node answers on this socket", sa->sun_path);
        return -1;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errcap, "--control %s: %s", sa->sun_path, strerror(e));
        return -1;
    }
    if (unlink(sa->sun_path) != 0 && errno != ENOENT) {
        snprintf(err, errcap, "--control %s: cannot remove the stale socket: %s", sa->sun_path, strerror(errno));
        return -1;
    }
    ug_log(UG_LOG_INFO, "control socket %s: replaced a stale one", sa->sun_path);
    return 0;
}

/* A folder others can write lets them put their own socket in the node's
 * place while it is down (upgate-ctl then refuses it: issue 21 §4). */
static void warn_open_folder(const char *path)
{
    char dir[sizeof S.path];
    snprintf(dir, sizeof dir, "%s", path);
    struct stat st;
    if (stat(dirname(dir), &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)))
        ug_log(UG_LOG_WARN, "control socket %s: its folder %s is writable by %s: another user can serve a socket of "
                            "their own there; prefer a folder only this user can write", path, dir,
               st.st_mode & S_IWOTH ? "everyone" : "its group");
}

int ug_ctl_start(const char *path, char *err, size_t errcap)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errcap, "--control %s: longer than %zu bytes, the limit of a socket path", path,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (clear_stale(&sa, err, errcap) != 0)
        return -1;
    S.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); /* accept_all takes until none is left */
    if (S.fd < 0 || pipe2(S.stop, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(077); /* only the owner may connect, from the first moment */
    int rc = bind(S.fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    struct stat st;
    if (rc != 0 || chmod(path, 0600) != 0 || listen(S.fd, UG_CTL_CLIENTS) != 0 || stat(path, &st) != 0) {
        snprintf(err, errcap, "--control %s: %s", path, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < UG_CTL_CLIENTS; i++)
        C[i] = (conn){.fd = -1};
    memcpy(S.path, sa.sun_path, sizeof S.path);
    S.dev = st.st_dev, S.ino = st.st_ino;
    warn_open_folder(path);
    if (pthread_create(&S.thread, NULL, ctl_main, NULL) != 0) {
        snprintf(err, errcap, "cannot start the control thread");
        unlink(path);
        return -1;
    }
    S.on = true;
    return 0;
}

void ug_ctl_stop(void)
{
    if (!S.on)
        return;
    ssize_t w = write(S.stop[1], "x", 1);
    (void)w;
    pthread_join(S.thread, NULL);
    close(S.fd);
    close(S.stop[0]), close(S.stop[1]);
    struct stat st; /* remove only our own socket, not a successor's */
    if (stat(S.path, &st) == 0 && st.st_dev == S.dev && st.st_ino == S.ino)
        unlink(S.path);
    S.on = false;
}
