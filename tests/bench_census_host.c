/* make bench-census, its UDP part: a minimal tracker host in a forked child
 * (recvmmsg, upgate.so's handle2 and flush, sendmmsg, in batches of 64 as
 * upgate-node does, tick once a second), on a policy with or without the
 * version census (`census: false`): the plugin notes every HELLO itself. A
 * distinct host rewrites each HELLO's uid to one never seen first (both
 * policies, so the rewrite's cost is in both). The CPU per reply is what
 * the census costs a tracker process, drain included. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_census.h"

#define BATCH 64

typedef struct {
    uint8_t in[BATCH][UG_DGRAM_MAX + 1], out[BATCH][UG_DGRAM_MAX];
    struct sockaddr_storage from[BATCH];
    struct mmsghdr rx[BATCH], tx[BATCH];
    struct iovec rxv[BATCH], txv[BATCH];
} buffers;

size_t ch_uid_offset(const uint8_t *d, size_t len, uint64_t uid)
{
    uint8_t pat[5] = {0xce, (uint8_t)(uid >> 24), (uint8_t)(uid >> 16), (uint8_t)(uid >> 8), (uint8_t)uid};
    for (size_t i = 0; uid >= 65536 && uid < (UINT64_C(1) << 32) && i + 5 <= len; i++)
        if (!memcmp(d + i, pat, 5))
            return i + 1;
    return 0;
}

void ch_uid_set(uint8_t *d, size_t off, uint32_t uid)
{
    d[off] = (uint8_t)(uid >> 24), d[off + 1] = (uint8_t)(uid >> 16), d[off + 2] = (uint8_t)(uid >> 8);
    d[off + 3] = (uint8_t)uid;
}

/* One batch: every datagram decoded (for its uid) and answered; each
 * uid rewritten to a new one first when distinct. */
static unsigned answer(bp_lib *lib, void *inst, bool distinct, buffers *b, unsigned n)
{
    static uint32_t fresh = 1u << 24;
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        ug_hello h;
        ug_dgram d;
        size_t out_len = 0, off;
        unsigned flags = 0;
        bool hello = ug_hello_parse(&h, &d, b->in[i], b->rx[i].msg_len, NULL) == 0;
        if (distinct && hello && (off = ch_uid_offset(b->in[i], b->rx[i].msg_len, h.uid)) != 0)
            ch_uid_set(b->in[i], off, fresh++);
        (void)lib->api->handle2(inst, 0, (const struct sockaddr *)&b->from[i], b->rx[i].msg_hdr.msg_namelen,
                                b->in[i], b->rx[i].msg_len, b->out[k], sizeof b->out[k], &out_len, &flags);
        if (out_len == 0)
            continue;
        b->txv[k] = (struct iovec){b->out[k], out_len};
        b->tx[k].msg_hdr = (struct msghdr){.msg_name = &b->from[i], .msg_namelen = b->rx[i].msg_hdr.msg_namelen,
                                           .msg_iov = &b->txv[k], .msg_iovlen = 1};
        k++;
    }
    return k;
}

static void serve(int fd, const char *so, const char *policy, int mode)
{
    static buffers b;
    bp_lib lib;
    char why[512];
    void *inst;
    if (bp_open(&lib, so, why, sizeof why) != 0 || !(inst = bp_create(&lib, policy, why, sizeof why)))
        bench_die("census host: %s", why);
    time_t last = time(NULL);
    for (;;) {
        for (unsigned i = 0; i < BATCH; i++) {
            b.rxv[i] = (struct iovec){b.in[i], sizeof b.in[i]};
            b.rx[i].msg_hdr = (struct msghdr){.msg_name = &b.from[i], .msg_namelen = sizeof b.from[i],
                                              .msg_iov = &b.rxv[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, b.rx, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        time_t now = time(NULL);
        unsigned k = answer(&lib, inst, mode == CH_DISTINCT, &b, (unsigned)n);
        if (lib.api->flush(inst, 0) != 0)
            bench_die("census host: flush() failed");
        for (unsigned sent = 0; sent < k;) {
            int s = sendmmsg(fd, b.tx + sent, k - sent, 0);
            if (s <= 0)
                break;
            sent += (unsigned)s;
        }
        if (now != last) {
            lib.api->tick(inst);
            last = now;
        }
    }
}

pid_t ch_start(const char *so, const char *policy, int mode, unsigned *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), buf = 4 << 20;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        bench_die("census host: socket: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        serve(fd, so, policy, mode);
        _exit(0);
    }
    close(fd);
    *port = ntohs(a.sin_port);
    return pid;
}
