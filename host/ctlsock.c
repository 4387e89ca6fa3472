/* libupgate-host's control socket (docs/control.md "Transport"): one thread, one request per connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "internal.h"

#define REQUEST_MAX 65536u /* bytes of one request line */
#define READ_MS 5000       /* for the whole request */
#define WRITE_MS 5000      /* for the whole reply */
#define OUT_CHUNK 65536    /* reply bytes gathered before a write */

/* Waits for fd (events) or the stop pipe until deadline; 1 ready, 0 timed out or stopping. */
static int wait_fd(const uh_ctl *S, int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - ug_host_mono_ms_();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = S->stop[0], .events = POLLIN}};
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || p[1].revents)
            return 0;
        return 1;
    }
}

/* The reply on its way out: gathered in a buffer, written when it fills
 * and at the end, all within one deadline. A client that stops reading
 * loses the rest of its reply, and holds the thread no longer. */
typedef struct {
    const uh_ctl *S;
    int fd;
    int64_t deadline;
    bool dead;
    size_t len, total;
    char last;
    char buf[OUT_CHUNK];
} reply;

static void out_flush(reply *r)
{
    size_t at = 0;
    while (at < r->len && !r->dead) {
        ssize_t k = send(r->fd, r->buf + at, r->len - at, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            at += (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait_fd(r->S, r->fd, POLLOUT, r->deadline))
                r->dead = true;
        } else {
            r->dead = true;
        }
    }
    r->len = 0;
}

static void out_emit(void *ctx, const char *data, size_t len)
{
    reply *r = ctx;
    if (len)
        r->last = data[len - 1];
    r->total += len;
    while (len && !r->dead) {
        size_t k = sizeof r->buf - r->len < len ? sizeof r->buf - r->len : len;
        memcpy(r->buf + r->len, data, k);
        r->len += k, data += k, len -= k;
        if (r->len == sizeof r->buf)
            out_flush(r);
    }
}

/* {"ok":false,"error":msg}, escaped by jansson. */
static void out_error(reply *r, const char *msg)
{
    json_t *j = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s)
        out_emit(r, s, strlen(s));
    else
        out_emit(r, "{\"ok\":false,\"error\":\"out of memory\"}", 36);
    free(s);
    json_decref(j);
}

/* Reads one line (without its newline) into buf; NULL on success, else why. */
static const char *read_request(const uh_ctl *S, int fd, char *buf, size_t *len, int64_t deadline)
{
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + got, REQUEST_MAX + 1 - got, MSG_DONTWAIT);
        if (k > 0) {
            char *nl = memchr(buf + got, '\n', (size_t)k);
            got += (size_t)k;
            if (nl) {
                *len = (size_t)(nl - buf);
                return NULL;
            }
            if (got > REQUEST_MAX)
                return "request longer than 65536 bytes";
        } else if (k == 0) {
            if (!got)
                return "empty request";
            *len = got; /* a last line without its newline */
            return NULL;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (!wait_fd(S, fd, POLLIN, deadline))
                return "no request line within 5 s";
        } else {
            return "cannot read the request";
        }
    }
}

static void serve_one(ug_host_adapter *a, int fd)
{
    /* static: 128 KiB is too much for a thread's stack; the lock is for a
     * process with two adapters, hence two control threads */
    static char req[REQUEST_MAX + 1];
    static reply r;
    static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&one);
    r = (reply){.S = &a->ctl, .fd = fd};
    size_t len = 0;
    const char *why = read_request(&a->ctl, fd, req, &len, ug_host_mono_ms_() + READ_MS);
    r.deadline = ug_host_mono_ms_() + WRITE_MS;
    json_error_t je;
    json_t *j = why ? NULL : json_loadb(req, len, JSON_REJECT_DUPLICATES, &je);
    char msg[300];
    if (!why && !json_is_object(j)) {
        snprintf(msg, sizeof msg, "not one JSON object: %s", j ? "not an object" : je.text);
        why = msg;
    }
    json_decref(j);
    if (why) {
        out_error(&r, why);
    } else {
        int rc = ug_host_control(a, req, len, out_emit, &r);
        if (rc == -2)
            out_error(&r, "plugin has no control");
        else if (r.total == 0)
            out_error(&r, "the plugin gave no reply");
    }
    if (r.last != '\n')
        out_emit(&r, "\n", 1);
    out_flush(&r);
    atomic_fetch_add_explicit(&a->ctl_served, 1, memory_order_relaxed);
    pthread_mutex_unlock(&one);
}

static void *ctl_main(void *arg)
{
    (void)prctl(PR_SET_NAME, (unsigned long)"upgate-ctl", 0, 0, 0); /* a system call: no write to /proc */
    ug_host_adapter *a = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = a->ctl.fd, .events = POLLIN}, {.fd = a->ctl.stop[0], .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || p[1].revents)
            return NULL;
        int c = accept4(a->ctl.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
            continue; /* the client left already, or fds ran out for a moment */
        serve_one(a, c);
        close(c);
    }
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
    S->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (S->fd < 0 || pipe2(S->stop, O_CLOEXEC) != 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(077); /* only the owner may connect */
    int rc = bind(S->fd, (const struct sockaddr *)sa, sizeof *sa);
    umask(old);
    struct stat st;
    if (rc != 0 || chmod(sa->sun_path, 0600) != 0 || listen(S->fd, 16) != 0 || stat(sa->sun_path, &st) != 0) {
        snprintf(err, errcap, "%scontrol %s: %s", a->setting, sa->sun_path, strerror(errno));
        return -1;
    }
    S->dev = st.st_dev, S->ino = st.st_ino;
    return 0;
}

static void close_fds(uh_ctl *S)
{
    if (S->fd >= 0)
        close(S->fd);
    if (S->stop[0] >= 0)
        close(S->stop[0]), close(S->stop[1]);
    S->fd = S->stop[0] = S->stop[1] = -1;
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
    memcpy(S->path, sa.sun_path, sizeof S->path);
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
    if (!pthread_equal(pthread_self(), S->thread))
        pthread_join(S->thread, NULL);
    close_fds(S);
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
