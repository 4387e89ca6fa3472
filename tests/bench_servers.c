/* make bench: the yardstick servers, each a forked child on its own port:
 * a bare echo, a drain-only receiver, and libev with the node's batches. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "bench.h"

#define BATCH 64           /* as node.c */
#define BATCHES_PER_WAKE 8 /* as node.c */

typedef struct {
    uint8_t in[BATCH][UG_DGRAM_MAX + 1], out[BATCH][UG_DGRAM_MAX];
    struct sockaddr_storage from[BATCH];
    struct mmsghdr rx[BATCH], tx[BATCH];
    struct iovec rxv[BATCH], txv[BATCH];
} buffers;

static void arm(buffers *b)
{
    for (unsigned i = 0; i < BATCH; i++) {
        b->rxv[i] = (struct iovec){b->in[i], sizeof b->in[i]};
        b->rx[i].msg_hdr = (struct msghdr){.msg_name = &b->from[i], .msg_namelen = sizeof b->from[i],
                                           .msg_iov = &b->rxv[i], .msg_iovlen = 1};
    }
}

static void send_all(int fd, struct mmsghdr *m, unsigned n, int flags)
{
    for (unsigned sent = 0; sent < n;) {
        int k = sendmmsg(fd, m + sent, n - sent, flags);
        if (k <= 0)
            return;
        sent += (unsigned)k;
    }
}

/* Blocking recvmmsg, then the same datagrams straight back. */
static void echo_loop(int fd, buffers *b)
{
    for (;;) {
        arm(b);
        int n = recvmmsg(fd, b->rx, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++)
            b->rxv[i].iov_len = b->rx[i].msg_len;
        send_all(fd, b->rx, (unsigned)n, 0);
    }
}

static void drain_loop(int fd, buffers *b)
{
    for (;;) {
        arm(b);
        (void)recvmmsg(fd, b->rx, BATCH, MSG_WAITFORONE, NULL);
    }
}

/* node.c's on_readable with a copy where the plugin would answer. */
static void on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    buffers *b = io->data;
    for (int round = 0; round < BATCHES_PER_WAKE; round++) {
        arm(b);
        int n = recvmmsg(io->fd, b->rx, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            size_t len = b->rx[i].msg_len > UG_DGRAM_MAX ? UG_DGRAM_MAX : b->rx[i].msg_len;
            memcpy(b->out[i], b->in[i], len);
            b->txv[i] = (struct iovec){b->out[i], len};
            b->tx[i].msg_hdr = (struct msghdr){.msg_name = &b->from[i], .msg_namelen = b->rx[i].msg_hdr.msg_namelen,
                                               .msg_iov = &b->txv[i], .msg_iovlen = 1};
        }
        send_all(io->fd, b->tx, (unsigned)n, MSG_DONTWAIT);
        if (n < BATCH)
            return;
    }
}

static void libev_loop(int fd, buffers *b)
{
    int fl = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    if (!loop)
        _exit(1);
    ev_io io;
    ev_io_init(&io, on_readable, fd, EV_READ);
    io.data = b;
    ev_io_start(loop, &io);
    ev_run(loop, 0);
}

void server_loop(int kind, int fd)
{
    buffers *b = calloc(1, sizeof *b);
    if (!b)
        _exit(1);
    if (kind == BS_ECHO)
        echo_loop(fd, b);
    else if (kind == BS_DRAIN)
        drain_loop(fd, b);
    else
        libev_loop(fd, b);
    _exit(0);
}
