/* upgate-node's workers: receive a batch, let the plugin answer, send what need not wait, flush, send the rest. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "capwrite.h"
#include "common.h"
#include "node.h"
#include "serve.h"

#define LISTEN_MAX 16
#define BATCH 64           /* datagrams per recvmmsg */
#define BATCHES_PER_WAKE 8 /* then let the other sockets have a turn */

const ug_node_counter ug_node_counters[NC_COUNT] = {
#define UG_NODE_COUNTER(id, stat, family, labels, help) [NC_##id] = {stat, family, labels, help},
#include "counters.def"
#undef UG_NODE_COUNTER
};

typedef struct {
    unsigned index;
    int fds[LISTEN_MAX];
    unsigned nfds;
    struct ev_loop *loop;
    ev_io io[LISTEN_MAX];
    ev_async stop;
    pthread_t thread;
    _Alignas(64) _Atomic uint64_t c[NC_COUNT];
} worker;

static worker *workers;
static unsigned nworkers;
static ug_verdict (*handle2)(void *, unsigned, const struct sockaddr *, socklen_t, const uint8_t *, size_t,
                             uint8_t *, size_t, size_t *, unsigned *);

static void add(worker *w, unsigned c, uint64_t n)
{
    atomic_fetch_add_explicit(&w->c[c], n, memory_order_relaxed);
}

uint64_t ug_node_counter_sum(unsigned c)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < nworkers; k++)
        v += atomic_load_explicit(&workers[k].c[c], memory_order_relaxed);
    return v;
}

static unsigned send_error_class(int e)
{
    switch (e) {
    case EHOSTUNREACH: case ENETUNREACH: case EHOSTDOWN: case ENETDOWN: case EADDRNOTAVAIL:
        return NC_SEND_UNREACH;
    case EACCES: case EPERM:
        return NC_SEND_DENIED;
    case EAGAIN: case ENOBUFS: case ENOMEM:
        return NC_SEND_BUSY;
    default:
        return NC_SEND_OTHER;
    }
}

/* Sends tx[0..n): a message the kernel refuses (a prohibit route, an
 * unreachable network, a full buffer) is counted by class and skipped, and
 * the rest still go out. At most n + 1 calls: each one sends or skips. */
static void send_batch(worker *w, int fd, struct mmsghdr *tx, unsigned n)
{
    unsigned at = 0, eintr = 0;
    while (at < n) {
        int k = sendmmsg(fd, tx + at, n - at, MSG_DONTWAIT);
        if (k > 0) {
            at += (unsigned)k;
            add(w, NC_SENT, (uint64_t)k);
            continue;
        }
        int e = k < 0 ? errno : EIO;
        if (e == EINTR && eintr++ < 4)
            continue;
        add(w, NC_SEND_ERRORS, 1);
        add(w, send_error_class(e), 1);
        at++; /* sendmmsg stopped at tx[at]: skip it */
    }
}

/* Asks the plugin, through handle2() when it has it; handle() treats every
 * reply as waiting for the disk (ABI 1.0). */
static ug_verdict ask(worker *w, const struct sockaddr *src, socklen_t sl, const uint8_t *in, size_t len,
                      uint8_t *out, size_t cap, size_t *out_len, bool *after_flush)
{
    if (handle2) {
        unsigned flags = 0;
        ug_verdict v = handle2(ug_node_plugin_inst, w->index, src, sl, in, len, out, cap, out_len, &flags);
        *after_flush = flags & UG_REPLY_AFTER_FLUSH;
        return v;
    }
    *after_flush = true;
    return ug_api->handle(ug_node_plugin_inst, w->index, src, sl, in, len, out, cap, out_len);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Drains one socket in batches. Replies that promise no grant (WAIT,
 * COOKIE, a durable HINT) go out at once; those flagged after-flush wait
 * for flush(), and are dropped (the peer asks again) when it fails. */
static void on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    worker *w = io->data;
    static _Thread_local uint8_t in[BATCH][UG_DGRAM_MAX + 1], out[BATCH][UG_DGRAM_MAX];
    static _Thread_local struct sockaddr_storage from[BATCH];
    struct mmsghdr rx[BATCH], now[BATCH], late[BATCH];
    struct iovec rxv[BATCH], txv[BATCH];
    bool capture = ug_capw_on();
    for (int round = 0; round < BATCHES_PER_WAKE; round++) {
        for (unsigned i = 0; i < BATCH; i++) {
            /* one spare byte: a datagram over 1232 is seen as oversized, not cut */
            rxv[i] = (struct iovec){in[i], sizeof in[i]};
            rx[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                            .msg_iov = &rxv[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(io->fd, rx, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        add(w, NC_RECEIVED, (uint64_t)n);
        uint64_t t = capture ? now_ms() : 0;
        unsigned nnow = 0, nlate = 0;
        for (int i = 0; i < n; i++) {
            size_t len = rx[i].msg_len, out_len = 0;
            if (rx[i].msg_hdr.msg_flags & MSG_TRUNC)
                len = sizeof in[i]; /* longer still: the plugin drops it as oversized */
            const struct sockaddr *src = (struct sockaddr *)&from[i];
            socklen_t sl = rx[i].msg_hdr.msg_namelen;
            bool after_flush;
            ug_verdict v = ask(w, src, sl, in[i], len, out[i], sizeof out[i], &out_len, &after_flush);
            if (capture) {
                int c = ug_capw_hello(w->index, t, src, sl, in[i], len, v, out[i], out_len);
                if (c)
                    add(w, c > 0 ? NC_CAPTURED : NC_CAPTURE_DROPPED, 1);
            }
            if (v == UG_VERDICT_DROP) {
                add(w, NC_PLUGIN_DROPS, 1);
                continue;
            }
            if (v == UG_VERDICT_PASS) {
                /* the reference node's "normal service": the plugin's WAIT
                 * for an untargeted HELLO, and nothing for other protocols */
                add(w, out_len ? NC_NORMAL_SERVICE : NC_FOREIGN, 1);
                if (!out_len)
                    continue;
            }
            if (out_len > len) { /* never amplify, whatever the plugin says */
                add(w, NC_OVERSIZED, 1);
                continue;
            }
            txv[i] = (struct iovec){out[i], out_len};
            struct mmsghdr *m = after_flush ? &late[nlate++] : &now[nnow++];
            m->msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sl, .msg_iov = &txv[i], .msg_iovlen = 1};
        }
        send_batch(w, io->fd, now, nnow);
        if (ug_api->flush(ug_node_plugin_inst, w->index) != 0) {
            add(w, NC_FLUSH_FAILS, 1);
            add(w, NC_HELD_BACK, nlate);
        } else {
            send_batch(w, io->fd, late, nlate);
        }
        if (n < BATCH)
            return;
    }
}

static void on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void *worker_main(void *p)
{
    worker *w = p;
    ev_run(w->loop, 0);
    return NULL;
}

void ug_serve_init(unsigned n)
{
    nworkers = n;
    /* aligned_alloc, not calloc: a worker's counters are declared on their
     * own cache line, and calloc only promises max_align_t */
    workers = aligned_alloc(64, n * sizeof *workers);
    if (!workers)
        ug_die(UG_EXIT_FAIL, "out of memory");
    memset(workers, 0, n * sizeof *workers);
    for (unsigned i = 0; i < n; i++)
        workers[i].index = i;
    handle2 = UG_ENTRY(ug_api, handle2);
}

void ug_serve_bind(struct sockaddr_storage *ss, socklen_t sl, char *shown, size_t shown_cap)
{
    for (unsigned k = 0; k < nworkers; k++) {
        worker *w = &workers[k];
        if (w->nfds == LISTEN_MAX)
            ug_die(UG_EXIT_USAGE, "at most %d --listen", LISTEN_MAX);
        int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1, bufsz = 4 << 20;
        if (fd < 0)
            ug_die(UG_EXIT_FAIL, "socket: %s", strerror(errno));
        if (ss->ss_family == AF_INET6)
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            ug_die(UG_EXIT_FAIL, "SO_REUSEPORT: %s", strerror(errno));
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
        char name[128];
        ug_format_addr((struct sockaddr *)ss, name, sizeof name);
        if (bind(fd, (struct sockaddr *)ss, sl) != 0)
            ug_die(UG_EXIT_FAIL, "--listen %s: %s", name, strerror(errno));
        if (k == 0) {
            socklen_t got = sl;
            if (getsockname(fd, (struct sockaddr *)ss, &got) != 0)
                ug_die(UG_EXIT_FAIL, "getsockname: %s", strerror(errno));
            ug_format_addr((struct sockaddr *)ss, shown, shown_cap);
        }
        w->fds[w->nfds++] = fd;
    }
}

void ug_serve_start(void)
{
    for (unsigned i = 0; i < nworkers; i++) {
        worker *w = &workers[i];
        w->loop = ev_loop_new(EVFLAG_AUTO);
        if (!w->loop)
            ug_die(UG_EXIT_FAIL, "cannot create an event loop");
        for (unsigned k = 0; k < w->nfds; k++) {
            ev_io_init(&w->io[k], on_readable, w->fds[k], EV_READ);
            w->io[k].data = w;
            ev_io_start(w->loop, &w->io[k]);
        }
        ev_async_init(&w->stop, on_stop);
        ev_async_start(w->loop, &w->stop);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            ug_die(UG_EXIT_FAIL, "cannot start worker %u", i);
    }
}

void ug_serve_stop(void)
{
    for (unsigned i = 0; i < nworkers; i++)
        ev_async_send(workers[i].loop, &workers[i].stop);
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        for (unsigned k = 0; k < workers[i].nfds; k++)
            close(workers[i].fds[k]);
        ev_loop_destroy(workers[i].loop);
    }
}
