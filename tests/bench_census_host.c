/* make bench-census, its UDP part: a minimal tracker host in a forked child
 * (recvmmsg, upgate.so's handle2 and flush, sendmmsg, in batches of 64 as
 * upgate-node does), with or without the version census; both decode each
 * HELLO for its fields (what the plugin has at hand); the census hosts note
 * it (with its uid, or as a uid never seen) and tick once a second. The
 * CPU per reply is what the census costs a tracker process, drain
 * included. */
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

static const char *const regions[8] = {"DE", "CN-BJ", "US-CA", "FR", "BR-SP", "IN-MH", "JP-13", ""};

/* One batch: every datagram decoded and answered; noted when census is set. */
static unsigned answer(bp_lib *lib, void *inst, ug_census *census, bool distinct, buffers *b, unsigned n,
                       uint64_t now)
{
    static uint64_t fresh;
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        ug_hello h;
        ug_dgram d;
        size_t out_len = 0;
        unsigned flags = 0;
        bool hello = ug_hello_parse(&h, &d, b->in[i], b->rx[i].msg_len, NULL) == 0;
        (void)lib->api->handle2(inst, 0, (const struct sockaddr *)&b->from[i], b->rx[i].msg_hdr.msg_namelen,
                                b->in[i], b->rx[i].msg_len, b->out[k], sizeof b->out[k], &out_len, &flags);
        if (census && hello) {
            ug_census_key key = {.ver = h.ver, .plat = h.plat, .chan = h.chan, .region = regions[h.uid % 8]};
            ug_census_note(census, 0, &key, distinct ? (++fresh << 24) + h.uid : h.uid, now);
        }
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
    ug_census *census = NULL;
    ug_census_opts o = {.nworkers = 1};
    if (bp_open(&lib, so, why, sizeof why) != 0 || !(inst = bp_create(&lib, policy, why, sizeof why)) ||
        (mode != CH_PLAIN && !(census = ug_census_create(&o, why, sizeof why))))
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
        unsigned k = answer(&lib, inst, census, mode == CH_DISTINCT, &b, (unsigned)n, (uint64_t)now);
        if (lib.api->flush(inst, 0) != 0)
            bench_die("census host: flush() failed");
        for (unsigned sent = 0; sent < k;) {
            int s = sendmmsg(fd, b.tx + sent, k - sent, 0);
            if (s <= 0)
                break;
            sent += (unsigned)s;
        }
        if (census && now != last) {
            ug_census_tick(census, (uint64_t)now);
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
