/* upgate-node's workers: a batch received, handed to libupgate-host, which answers, commits and sends. */
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
    _Alignas(64) _Atomic uint64_t c[NC_COUNT]; /* the node's own: received, captured */
} worker;

static worker *workers;
static unsigned nworkers;

static void add(worker *w, unsigned c, uint64_t n)
{
    atomic_fetch_add_explicit(&w->c[c], n, memory_order_relaxed);
}

/* What the adapter counted, by the node's counter. */
static uint64_t from_adapter(const ug_host_counters *k, unsigned c)
{
    switch (c) {
    case NC_SENT: return k->sent;
    case NC_SEND_ERRORS: return k->send_errors;
    case NC_SEND_UNREACH: return k->send_unreach;
    case NC_SEND_DENIED: return k->send_denied;
    case NC_SEND_BUSY: return k->send_busy;
    case NC_SEND_OTHER: return k->send_other;
    case NC_NORMAL_SERVICE: return k->untargeted;
    case NC_FOREIGN: return k->foreign;
    case NC_PLUGIN_DROPS: return k->dropped;
    case NC_REPORTS: return k->reports;
    case NC_HELD_BACK: return k->held_back;
    case NC_FLUSH_FAILS: return k->commit_fails;
    case NC_OVERSIZED: return k->oversized;
    default: return 0;
    }
}

uint64_t ug_node_counter_sum(unsigned c)
{
    if (c != NC_RECEIVED && c != NC_CAPTURED && c != NC_CAPTURE_DROPPED) {
        ug_host_counters k;
        ug_host_counters_get(ug_node_adapter, &k, sizeof k);
        return from_adapter(&k, c);
    }
    uint64_t v = 0;
    for (unsigned k = 0; k < nworkers; k++)
        v += atomic_load_explicit(&workers[k].c[c], memory_order_relaxed);
    return v;
}

unsigned long long ug_ctl_served(void)
{
    ug_host_counters k;
    ug_host_counters_get(ug_node_adapter, &k, sizeof k);
    return (unsigned long long)k.control_requests;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ug_serve_capture(void *ctx, const ug_host_answer *ans)
{
    (void)ctx;
    int c = ug_capw_hello(ans->worker, now_ms(), ans->src, ans->srclen, ans->in, ans->len, ans->verdict, ans->out,
                          ans->out_len);
    if (c)
        add(&workers[ans->worker % nworkers], c > 0 ? NC_CAPTURED : NC_CAPTURE_DROPPED, 1);
}

/* Drains one socket in batches, each answered by the adapter as one
 * (ug_host_batch): replies that promise no grant (WAIT, COOKIE, a durable
 * HINT) go out in one sendmmsg, then flush(), then those flagged
 * after-flush, or none of them (the peers ask again) when it failed. */
static void on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    worker *w = io->data;
    static _Thread_local uint8_t in[BATCH][UG_DGRAM_MAX + 1];
    static _Thread_local struct sockaddr_storage from[BATCH];
    struct mmsghdr rx[BATCH];
    struct iovec rxv[BATCH];
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
        ug_host_batch(ug_node_adapter, io->fd, rx, (unsigned)n, NULL);
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
