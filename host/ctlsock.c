/* libupgate-host's control socket (docs/control.md "Transport"): one thread polling every client, one request per connection. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "internal.h"

#define REQUEST_MAX 65536u        /* bytes of one request line */
#define READ_MS 5000              /* for the whole request */
#define WRITE_MS 5000             /* for the whole reply */
#define CLIENTS 128               /* attached at once; the longest reading one makes room */
#define REPLY_MAX (256u << 20)    /* bytes of one reply, as upgate-ctl reads */

/* One client of the socket: its request coming in, then its reply going
 * out. Nothing here blocks: the thread polls every client at once, so an
 * idle, dripping or non-reading client holds its own slot and no one
 * else's (issue 21 §4). */
struct uh_conn {
    int fd;       /* -1: a free slot */
    bool writing; /* the reply is going out */
    int64_t since, deadline;
    char *req; /* REQUEST_MAX + 1 bytes, taken at the first readable moment */
    size_t got;
    ug_buf out;
    size_t sent;
};
typedef struct uh_conn conn;

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

/* The plugin's reply to a's request in c (or the error why: it was refused
 * before the plugin), gathered whole into c->out. */
static void conn_reply(ug_host_adapter *a, conn *c, const char *why)
{
    json_error_t je;
    json_t *j = why ? NULL : json_loadb(c->req, c->got, JSON_REJECT_DUPLICATES, &je);
    char msg[300];
    if (!why && !json_is_object(j)) {
        snprintf(msg, sizeof msg, "not one JSON object: %s", j ? "not an object" : je.text);
        why = msg;
    }
    json_decref(j);
    c->out = (ug_buf){.max = REPLY_MAX};
    if (why) {
        out_error(&c->out, why);
        return;
    }
    /* who asks, for the history: the kernel's word, not the request's */
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    ug_caller by = {.size = sizeof by, .kind = UG_CALLER_CONTROL};
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0 && crlen == sizeof cr)
        by.uid = (uint32_t)cr.uid, by.pid = (int32_t)cr.pid;
    int rc = ug_host_control_by(a, &by, c->req, c->got, ug_buf_emit, &c->out);
    if (c->out.overflow) {
        ug_buf_free(&c->out);
        c->out = (ug_buf){.max = REPLY_MAX};
        out_error(&c->out, "the reply is longer than 256 MiB");
    } else if (rc == -2) {
        out_error(&c->out, "plugin has no control");
    } else if (c->out.len == 0) {
        out_error(&c->out, "the plugin gave no reply");
    }
}

/* Makes c's reply whole so that writing it waits for no one: then c turns to writing. */
static void conn_answer(ug_host_adapter *a, conn *c, const char *why)
{
    conn_reply(a, c, why);
    if (!c->out.len || c->out.data[c->out.len - 1] != '\n')
        ug_buf_emit(&c->out, "\n", 1);
    free(c->req);
    c->req = NULL;
    c->writing = true;
    c->deadline = ug_host_mono_ms_() + WRITE_MS;
    atomic_fetch_add_explicit(&a->ctl_served, 1, memory_order_relaxed);
}

/* Reads what c has sent; answers once the line is whole, at its end, when
 * it is too long, or when its deadline passed. */
static void conn_read(ug_host_adapter *a, conn *c, bool late)
{
    const char *why = NULL;
    if (!c->req && !(c->req = malloc(REQUEST_MAX + 1)))
        why = "out of memory";
    while (!why) {
        ssize_t k = recv(c->fd, c->req + c->got, REQUEST_MAX + 1 - c->got, MSG_DONTWAIT);
        char *nl = k > 0 ? memchr(c->req + c->got, '\n', (size_t)k) : NULL;
        if (k > 0)
            c->got += (size_t)k;
        if (nl || (k == 0 && c->got)) { /* a line, or a last line without its newline */
            c->got = nl ? (size_t)(nl - c->req) : c->got;
            break;
        } else if (k > 0 && c->got > REQUEST_MAX) {
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
    conn_answer(a, c, why);
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
static conn *conn_slot(uh_ctl *S)
{
    conn *oldest = NULL;
    for (size_t i = 0; i < CLIENTS; i++) {
        conn *c = &S->conns[i];
        if (c->fd < 0)
            return c;
        if (!c->writing && (!oldest || c->since < oldest->since))
            oldest = c;
    }
    if (oldest)
        conn_close(oldest);
    return oldest;
}

static void accept_all(uh_ctl *S)
{
    for (;;) {
        conn *c = conn_slot(S);
        if (!c)
            return;
        int fd = accept4(S->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return; /* none left, or fds ran out for a moment */
        int64_t now = ug_host_mono_ms_();
        *c = (conn){.fd = fd, .since = now, .deadline = now + READ_MS};
    }
}

/* The poll set: the stop pipe, the listening socket, then every client;
 * its timeout reaches the nearest deadline. */
static int poll_set(uh_ctl *S, struct pollfd *p, conn **who, int *timeout)
{
    int n = 0;
    int64_t now = ug_host_mono_ms_(), next = now + 60000;
    p[n++] = (struct pollfd){.fd = S->stop[0], .events = POLLIN};
    p[n++] = (struct pollfd){.fd = S->fd, .events = POLLIN};
    for (size_t i = 0; i < CLIENTS; i++) {
        conn *c = &S->conns[i];
        if (c->fd < 0)
            continue;
        who[n] = c;
        p[n++] = (struct pollfd){.fd = c->fd, .events = c->writing ? POLLOUT : POLLIN};
        if (c->deadline < next)
            next = c->deadline;
    }
    *timeout = next > now ? (int)(next - now) : 0;
    return n;
}

static void *ctl_main(void *arg)
{
    (void)prctl(PR_SET_NAME, (unsigned long)"upgate-ctl", 0, 0, 0); /* a system call: no write to /proc */
    ug_host_adapter *a = arg;
    uh_ctl *S = &a->ctl;
    struct pollfd p[CLIENTS + 2];
    conn *who[CLIENTS + 2];
    for (;;) {
        int timeout, n = poll_set(S, p, who, &timeout);
        int k = poll(p, (nfds_t)n, timeout);
        if ((k < 0 && errno != EINTR) || (k > 0 && p[0].revents))
            break;
        int64_t now = ug_host_mono_ms_();
        for (int i = 2; i < n; i++) {
            conn *c = who[i];
            bool late = now >= c->deadline;
            if (c->fd < 0 || (!late && !(k > 0 && p[i].revents)))
                continue;
            if (!c->writing)
                conn_read(a, c, late);
            if (c->fd >= 0 && c->writing)
                conn_write(c, late); /* at once: most replies fit the socket's buffer */
        }
        if (k > 0 && p[1].revents)
            accept_all(S);
    }
    for (size_t i = 0; i < CLIENTS; i++)
        if (S->conns[i].fd >= 0)
            conn_close(&S->conns[i]);
    return NULL;
}

/* A socket file at path from an earlier run: a live host answering on it
 * refuses the start, a dead one's file is removed; anything not a socket is
 * left alone and refuses the start. */
static int clear_stale(ug_host_adapter *a, const struct sockaddr_un *sa, char *err, size_t errcap)
{
    struct stat st;
    if (lstat(sa->sun_path, &st) != 0)
        return errno == ENOENT
                   ? 0
                   : (snprintf(err, errcap, "%scontrol %s: %s", a->setting, sa->sun_path, strerror(errno)), -1);
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errcap, "%scontrol %s: exists and is not a socket", a->setting, sa->sun_path);
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
        snprintf(err, errcap, "%scontrol %s: another tracker answers on this socket (another node or host runs with it)",
                 a->setting, sa->sun_path);
        return -1;
    }
    if (e != ECONNREFUSED) {
        snprintf(err, errcap, "%scontrol %s: %s", a->setting, sa->sun_path, strerror(e));
        return -1;
    }
    if (unlink(sa->sun_path) != 0 && errno != ENOENT) {
        snprintf(err, errcap, "%scontrol %s: cannot remove the stale socket: %s", a->setting, sa->sun_path,
                 strerror(errno));
        return -1;
    }
    ug_host_logf_(a, UG_LOG_INFO, "control socket %s: replaced a stale one", sa->sun_path);
    return 0;
}

/* Binds and listens on sa with mode 0600 from the first moment. */
static int bind_socket(ug_host_adapter *a, const struct sockaddr_un *sa, char *err, size_t errcap)
{
    uh_ctl *S = &a->ctl;
    S->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); /* accept_all takes until none is left */
    if (S->fd < 0 || pipe2(S->stop, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(077); /* only the owner may connect */
    int rc = bind(S->fd, (const struct sockaddr *)sa, sizeof *sa);
    umask(old);
    struct stat st;
    if (rc != 0 || chmod(sa->sun_path, 0600) != 0 || listen(S->fd, CLIENTS) != 0 || stat(sa->sun_path, &st) != 0) {
        snprintf(err, errcap, "%scontrol %s: %s", a->setting, sa->sun_path, strerror(errno));
        return -1;
    }
    S->dev = st.st_dev, S->ino = st.st_ino;
    return 0;
}

/* A folder others can write lets them put their own socket in the host's
 * place while it is down (upgate-ctl then refuses it: issue 21 §4). */
static void warn_open_folder(ug_host_adapter *a, const char *path)
{
    char dir[sizeof a->ctl.path];
    snprintf(dir, sizeof dir, "%s", path);
    struct stat st;
    if (stat(dirname(dir), &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)))
        ug_host_logf_(a, UG_LOG_WARN,
                      "control socket %s: its folder %s is writable by %s: another user can serve a socket of their "
                      "own there; prefer a folder only this user can write",
                      path, dir, st.st_mode & S_IWOTH ? "everyone" : "its group");
}

/* Closes what start opened and frees the client slots (the thread is gone). */
static void close_fds(uh_ctl *S)
{
    if (S->fd >= 0)
        close(S->fd);
    if (S->stop[0] >= 0)
        close(S->stop[0]), close(S->stop[1]);
    S->fd = S->stop[0] = S->stop[1] = -1;
    free(S->conns);
    S->conns = NULL;
}

int ug_host_ctl_start_(ug_host_adapter *a, const char *path, char *err, size_t errcap)
{
    uh_ctl *S = &a->ctl;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errcap, "%scontrol %s: longer than %zu bytes, the limit of a socket path", a->setting, path,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (clear_stale(a, &sa, err, errcap) != 0)
        return -1;
    if (bind_socket(a, &sa, err, errcap) != 0) {
        close_fds(S);
        return -1;
    }
    if (!(S->conns = malloc(CLIENTS * sizeof *S->conns))) {
        snprintf(err, errcap, "%scontrol %s: out of memory", a->setting, path);
        unlink(path);
        close_fds(S);
        return -1;
    }
    for (size_t i = 0; i < CLIENTS; i++)
        S->conns[i] = (conn){.fd = -1};
    memcpy(S->path, sa.sun_path, sizeof S->path);
    warn_open_folder(a, path);
    if (ug_host_thread_(&S->thread, ctl_main, a) != 0) {
        snprintf(err, errcap, "cannot start the upgate control thread");
        unlink(path);
        close_fds(S);
        return -1;
    }
    S->on = true;
    return 0;
}

void ug_host_ctl_stop_(ug_host_adapter *a)
{
    uh_ctl *S = &a->ctl;
    if (!S->on)
        return;
    ssize_t w = write(S->stop[1], "x", 1);
    (void)w;
    bool self = pthread_equal(pthread_self(), S->thread); /* exit() in control(): atexit closes the host */
    if (!self)
        pthread_join(S->thread, NULL);
    struct uh_conn *conns = S->conns; /* the thread's: freed only once it is gone */
    S->conns = NULL;
    close_fds(S);
    if (!self)
        free(conns);
    struct stat st; /* remove only our own socket, not a successor's */
    if (stat(S->path, &st) == 0 && st.st_dev == S->dev && st.st_ino == S->ino)
        unlink(S->path);
    S->on = false;
}

typedef struct {
    char text[4096];
    size_t len;
    bool overflow;
} small_buf;

static void small_emit(void *ctx, const char *data, size_t len)
{
    small_buf *b = ctx;
    if (b->overflow || len >= sizeof b->text - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->text + b->len, data, len);
    b->len += len;
}

bool ug_host_ctl_default_(ug_host_adapter *a, char *path, size_t cap)
{
    static const char req[] = "{\"cmd\":\"info\"}";
    small_buf b = {.len = 0};
    if (ug_host_control(a, req, sizeof req - 1, small_emit, &b) != 0 || b.overflow)
        return false;
    json_t *j = json_loadb(b.text, b.len, 0, NULL);
    const char *state = json_string_value(json_object_get(j, "state"));
    bool ok = state && state[0] == '/' && (size_t)snprintf(path, cap, "%s/upgate.ctl", state) < cap;
    json_decref(j);
    return ok;
}
