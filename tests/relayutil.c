/* A relay between a tracker and Redis for tests: a forked child that passes bytes on, stops on SIGSTOP, and can rewrite Redis's replies one RESP reply at a time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nodeutil.h"
#include "relayutil.h"
#include "testutil.h"

#define PAIRS 16
#define BUF (1 << 20)

typedef struct {
    int down, up;  /* the tracker's side, Redis's side */
    char *in;      /* Redis's bytes not yet a whole reply */
    size_t len;
} pair;

static rl_mode mode;
static unsigned knob, leases_seen;

/* The length of the whole RESP reply at b (0: not whole yet, -1: not RESP). */
static long resp_len(const char *b, size_t n)
{
    const char *eol = n ? memchr(b, '\n', n) : NULL;
    if (!eol)
        return 0;
    long head = eol - b + 1;
    if (b[0] == '+' || b[0] == '-' || b[0] == ':')
        return head;
    long v = strtol(b + 1, NULL, 10);
    if (b[0] == '$')
        return v < 0 ? head : (size_t)(head + v + 2) <= n ? head + v + 2 : 0;
    if (b[0] != '*')
        return -1;
    long at = head;
    for (long i = 0; i < v; i++) {
        long k = resp_len(b + at, n - (size_t)at);
        if (k <= 0)
            return k;
        at += k;
    }
    return at;
}

/* A LEASE reply: three integers, the second (n) below any clock's seconds
 * (a heartbeat's {was, now, taken} has Redis's time there). */
static bool is_lease(const char *b, long len, long long v[3])
{
    char tail[8];
    return len < 80 && sscanf(b, "*3\r\n:%lld\r\n:%lld\r\n:%lld\r%7s", &v[0], &v[1], &v[2], tail) >= 3 &&
           b[4] == ':' && v[1] < 1000000000LL && v[0] <= v[2];
}

/* Writes reply b (len bytes) to fd as the mode says. */
static void forward(int fd, const char *b, long len)
{
    char out[512];
    long long v[3];
    if (mode == RL_LEASE_NTH && is_lease(b, len, v) && ++leases_seen == knob) {
        int k = snprintf(out, sizeof out, "*3\r\n:1000000\r\n:%lld\r\n:%lld\r\n", v[1], v[2]);
        (void)!write(fd, out, (size_t)k);
        return;
    }
    if (mode == RL_RANDOM && len < (long)sizeof out && (unsigned)(random() % 100) < knob) {
        long k = 0; /* every integer rewritten, the rest as it came */
        for (long i = 0; i < len && k < (long)sizeof out - 24; i++) {
            out[k++] = b[i];
            if (b[i] == ':' && (i == 0 || b[i - 1] == '\n')) {
                k += snprintf(out + k, sizeof out - (size_t)k, "%ld", random() % 2000000);
                while (i + 1 < len && b[i + 1] != '\r')
                    i++;
            }
        }
        (void)!write(fd, out, (size_t)k);
        return;
    }
    for (long done = 0; done < len;) {
        ssize_t w = write(fd, b + done, (size_t)(len - done));
        if (w <= 0 && errno != EINTR)
            return;
        done += w > 0 ? w : 0;
    }
}

/* Redis's bytes: whole replies go on, as the mode says; 0, or -1 when the pair is over. */
static int from_redis(pair *p)
{
    ssize_t k = read(p->up, p->in + p->len, BUF - p->len);
    if (k <= 0)
        return -1;
    p->len += (size_t)k;
    long n;
    size_t at = 0;
    while (at < p->len && (n = resp_len(p->in + at, p->len - at)) > 0) {
        forward(p->down, p->in + at, n);
        at += (size_t)n;
    }
    if (at < p->len && resp_len(p->in + at, p->len - at) < 0)
        return -1;
    memmove(p->in, p->in + at, p->len - at);
    p->len -= at;
    return 0;
}

static int to_redis(pair *p)
{
    char b[65536];
    ssize_t k = read(p->down, b, sizeof b);
    if (k <= 0)
        return -1;
    for (ssize_t done = 0; done < k;) {
        ssize_t w = write(p->up, b + done, (size_t)(k - done));
        if (w <= 0 && errno != EINTR)
            return -1;
        done += w > 0 ? w : 0;
    }
    return 0;
}

static int dial(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void drop(pair *p)
{
    close(p->down);
    close(p->up);
    free(p->in);
    p->down = -1;
}

static void run(int lfd, const char *upstream)
{
    pair ps[PAIRS];
    for (int i = 0; i < PAIRS; i++)
        ps[i].down = -1;
    srandom(22);
    for (;;) {
        struct pollfd pf[1 + 2 * PAIRS];
        int n = 0, at[1 + 2 * PAIRS];
        pf[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (int i = 0; i < PAIRS; i++)
            if (ps[i].down >= 0) {
                at[n] = i, pf[n++] = (struct pollfd){.fd = ps[i].down, .events = POLLIN};
                at[n] = i, pf[n++] = (struct pollfd){.fd = ps[i].up, .events = POLLIN};
            }
        if (poll(pf, (nfds_t)n, -1) < 0)
            continue;
        for (int k = 1; k < n; k++) {
            pair *p = &ps[at[k]];
            if (p->down < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if ((k % 2 == 1 ? to_redis(p) : from_redis(p)) != 0)
                drop(p);
        }
        if (pf[0].revents & POLLIN) {
            int c = accept(lfd, NULL, NULL), i = 0;
            while (i < PAIRS && ps[i].down >= 0)
                i++;
            int u = c >= 0 && i < PAIRS ? dial(upstream) : -1;
            if (u < 0) {
                if (c >= 0)
                    close(c);
                continue;
            }
            ps[i] = (pair){.down = c, .up = u, .in = malloc(BUF)};
        }
    }
}

void rl_start(rl_relay *r, const char *upstream, rl_mode m, unsigned n)
{
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s/relay.sock", tu_tmpdir());
    snprintf(r->url, sizeof r->url, "unix://%s", r->path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%.100s", r->path);
    cr_assert(lfd >= 0 && bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 64) == 0,
              "relay: cannot listen on %s", r->path);
    pid_t parent = getpid();
    r->pid = fork();
    cr_assert_neq(r->pid, -1);
    if (r->pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        mode = m, knob = n;
        signal(SIGPIPE, SIG_IGN); /* a tracker that hangs up loses its pair, not the relay */
        run(lfd, upstream);
        _exit(0);
    }
    close(lfd);
}

void rl_stall(rl_relay *r)
{
    if (r->pid)
        kill(r->pid, SIGSTOP);
}

void rl_heal(rl_relay *r)
{
    if (r->pid)
        kill(r->pid, SIGCONT);
}

void rl_stop(rl_relay *r)
{
    if (!r->pid)
        return;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}
