/* upgate-node: the reference tracker host; loads upgate.so and serves UDP. */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <ev.h>

#include "common.h"
#include "upgate_plugin.h"

#define LISTEN_MAX 16
#define BATCH 64          /* datagrams per recvmmsg */
#define BATCHES_PER_WAKE 8 /* then let the other sockets have a turn */

static const char usage[] =
    "usage: upgate-node --listen HOST:PORT [--listen ...] --plugin PATH/upgate.so --policy FILE\n"
    "                   [--workers N] [--stats SECONDS]\n"
    "\n"
    "Serves upgate HELLOs over UDP on every --listen address (IPv4 or IPv6, port 0 picks one),\n"
    "with N worker threads (default: one per core), each with its own SO_REUSEPORT socket.\n"
    "SIGHUP reloads the policy, SIGUSR1 prints counters, SIGTERM/SIGINT stop cleanly.\n";

/* Host-side counters, per worker. */
enum { NC_RECEIVED, NC_SENT, NC_SEND_ERRORS, NC_NORMAL_SERVICE, NC_FOREIGN, NC_PLUGIN_DROPS, NC_HELD_BACK, NC_COUNT };
static const char *const nc_names[NC_COUNT] = {
    "node_received", "node_sent", "node_send_errors", "node_normal_service",
    "node_foreign_dropped", "node_plugin_drops", "node_replies_held_back",
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

static const ug_plugin *api;
static void *inst;
static worker *workers;
static unsigned nworkers;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "upgate-node: %s%s\n", level, msg);
    pthread_mutex_unlock(&log_mu);
}

static void host_log(void *ctx, ug_log_level level, const char *msg)
{
    (void)ctx;
    static const char *const names[] = {"error: ", "warning: ", "", "debug: "};
    say(names[level <= UG_LOG_DEBUG ? level : UG_LOG_DEBUG], "%s", msg);
}

static uint64_t host_now(void *ctx)
{
    (void)ctx;
    return ug_now();
}

/* Drains one socket in batches: receive, let the plugin answer, make the
 * grants durable (flush), and only then send. */
static void on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop, (void)revents;
    worker *w = io->data;
    static _Thread_local uint8_t in[BATCH][UG_DGRAM_MAX + 1], out[BATCH][UG_DGRAM_MAX];
    static _Thread_local struct sockaddr_storage from[BATCH];
    struct mmsghdr rx[BATCH], tx[BATCH];
    struct iovec rxv[BATCH], txv[BATCH];
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
        atomic_fetch_add_explicit(&w->c[NC_RECEIVED], (uint64_t)n, memory_order_relaxed);
        unsigned nout = 0;
        for (int i = 0; i < n; i++) {
            size_t len = rx[i].msg_len, out_len = 0;
            if (rx[i].msg_hdr.msg_flags & MSG_TRUNC)
                len = sizeof in[i]; /* longer still: the plugin drops it as oversized */
            ug_verdict v = api->handle(inst, w->index, (struct sockaddr *)&from[i], rx[i].msg_hdr.msg_namelen,
                                       in[i], len, out[nout], sizeof out[nout], &out_len);
            if (v == UG_VERDICT_DROP) {
                atomic_fetch_add_explicit(&w->c[NC_PLUGIN_DROPS], 1, memory_order_relaxed);
                continue;
            }
            if (v == UG_VERDICT_PASS) {
                /* the reference node's "normal service": the plugin's WAIT
                 * for an untargeted HELLO, and nothing for other protocols */
                atomic_fetch_add_explicit(&w->c[out_len ? NC_NORMAL_SERVICE : NC_FOREIGN], 1, memory_order_relaxed);
                if (!out_len)
                    continue;
            }
            if (out_len > len) /* never amplify, whatever the plugin says */
                continue;
            txv[nout] = (struct iovec){out[nout], out_len};
            tx[nout].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = rx[i].msg_hdr.msg_namelen,
                                               .msg_iov = &txv[nout], .msg_iovlen = 1};
            nout++;
        }
        if (api->flush(inst, w->index) != 0) {
            atomic_fetch_add_explicit(&w->c[NC_HELD_BACK], nout, memory_order_relaxed);
            continue;
        }
        for (unsigned sent = 0; sent < nout;) {
            int k = sendmmsg(io->fd, tx + sent, nout - sent, MSG_DONTWAIT);
            if (k <= 0) {
                atomic_fetch_add_explicit(&w->c[NC_SEND_ERRORS], nout - sent, memory_order_relaxed);
                break;
            }
            sent += (unsigned)k;
            atomic_fetch_add_explicit(&w->c[NC_SENT], (uint64_t)k, memory_order_relaxed);
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

/* Binds one SO_REUSEPORT socket per worker on addr; with port 0 the first
 * bind picks the port and the others share it. */
static void bind_all(struct sockaddr_storage *ss, socklen_t sl, char *shown, size_t shown_cap)
{
    for (unsigned k = 0; k < nworkers; k++) {
        worker *w = &workers[k];
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

static void print_stats(void)
{
    char line[4096];
    size_t used = (size_t)snprintf(line, sizeof line, "stats:");
    ug_stat st[128];
    size_t n = api->stats(inst, st, 128);
    for (size_t i = 0; i < n && i < 128; i++)
        if (st[i].value && used < sizeof line)
            used += (size_t)snprintf(line + used, sizeof line - used, " %s=%llu", st[i].name,
                                     (unsigned long long)st[i].value);
    for (unsigned c = 0; c < NC_COUNT; c++) {
        uint64_t v = 0;
        for (unsigned k = 0; k < nworkers; k++)
            v += atomic_load_explicit(&workers[k].c[c], memory_order_relaxed);
        if (v && used < sizeof line)
            used += (size_t)snprintf(line + used, sizeof line - used, " %s=%llu", nc_names[c], (unsigned long long)v);
    }
    printf("%s\n", line);
    fflush(stdout);
}

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)revents;
    if (s->signum == SIGHUP) {
        char err[1024];
        if (api->reload(inst, NULL, err, sizeof err) == 0)
            say("", "SIGHUP: policy reloaded");
        else
            say("error: ", "SIGHUP: reload refused, the running policy stays: %s", err);
    } else if (s->signum == SIGUSR1) {
        print_stats();
    } else {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)t, (void)revents;
    api->tick(inst);
}

static void on_stats_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)t, (void)revents;
    print_stats();
}

static const ug_plugin *load_plugin(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        ug_die(UG_EXIT_FAIL, "--plugin %s: %s", path, dlerror());
    const ug_plugin *p = dlsym(dl, UG_PLUGIN_SYMBOL);
    if (!p)
        ug_die(UG_EXIT_FAIL, "--plugin %s: no symbol %s; not an upgate plugin", path, UG_PLUGIN_SYMBOL);
    if (p->abi_major != UG_PLUGIN_ABI_MAJOR)
        ug_die(UG_EXIT_FAIL, "--plugin %s: plugin ABI %u.%u, this node speaks %u.x; rebuild one of them", path,
               p->abi_major, p->abi_minor, UG_PLUGIN_ABI_MAJOR);
    if (!UG_HAS_FIELD(ug_plugin, p->size, destroy))
        ug_die(UG_EXIT_FAIL, "--plugin %s: plugin table of %u bytes is too short", path, p->size);
    return p;
}

int main(int argc, char **argv)
{
    ug_prog = "upgate-node";
    const char *listen[LISTEN_MAX], *plugin = NULL, *policy = NULL;
    unsigned nlisten = 0;
    uint64_t nw = 0, stats_every = 0;
    enum { O_LISTEN = 1, O_PLUGIN, O_POLICY, O_WORKERS, O_STATS, O_HELP };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN}, {"plugin", required_argument, NULL, O_PLUGIN},
        {"policy", required_argument, NULL, O_POLICY}, {"workers", required_argument, NULL, O_WORKERS},
        {"stats", required_argument, NULL, O_STATS},   {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            if (nlisten == LISTEN_MAX)
                ug_die(UG_EXIT_USAGE, "at most %d --listen", LISTEN_MAX);
            listen[nlisten++] = optarg;
            break;
        case O_PLUGIN: plugin = optarg; break;
        case O_POLICY: policy = optarg; break;
        case O_WORKERS:
            if (ug_parse_u64(optarg, 1, 256, &nw) != 0)
                ug_die(UG_EXIT_USAGE, "--workers: not a number from 1 to 256: %s", optarg);
            break;
        case O_STATS:
            if (ug_parse_u64(optarg, 1, 86400, &stats_every) != 0)
                ug_die(UG_EXIT_USAGE, "--stats: not a number of seconds: %s", optarg);
            break;
        case O_HELP:
            fputs(usage, stdout);
            return UG_EXIT_OK;
        default:
            ug_die(UG_EXIT_USAGE, "unexpected or incomplete option %s (see --help)", argv[optind - 1]);
        }
    }
    if (optind != argc)
        ug_die(UG_EXIT_USAGE, "unexpected argument %s (see --help)", argv[optind]);
    if (!nlisten || !plugin || !policy)
        ug_die(UG_EXIT_USAGE, "--listen, --plugin and --policy are required (see --help)");
    struct sockaddr_storage addrs[LISTEN_MAX];
    socklen_t lens[LISTEN_MAX];
    for (unsigned i = 0; i < nlisten; i++)
        if (ug_parse_hostport(listen[i], &addrs[i], &lens[i]) != 0)
            ug_die(UG_EXIT_USAGE, "--listen: not HOST:PORT: %s", listen[i]);
    if (!nw) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        nw = cores > 0 ? (uint64_t)(cores < 256 ? cores : 256) : 1;
    }
    nworkers = (unsigned)nw;

    /* keys live in the plugin's locked memory (sodium_malloc: mlock'ed,
     * excluded from dumps); also refuse core dumps and ptrace outright */
    (void)setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0});
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    api = load_plugin(plugin);
    ug_host host = {.size = sizeof host, .log = host_log, .now = host_now, .nworkers = nworkers};
    char err[1024];
    inst = api->create(&host, policy, err, sizeof err);
    if (!inst)
        ug_die(UG_EXIT_FAIL, "%s", err);

    workers = calloc(nworkers, sizeof *workers);
    if (!workers)
        ug_die(UG_EXIT_FAIL, "out of memory");
    char ready[2048];
    size_t used = (size_t)snprintf(ready, sizeof ready, "upgate-node ready on");
    for (unsigned i = 0; i < nworkers; i++)
        workers[i].index = i;
    for (unsigned i = 0; i < nlisten; i++) {
        char shown[128];
        bind_all(&addrs[i], lens[i], shown, sizeof shown);
        if (used < sizeof ready)
            used += (size_t)snprintf(ready + used, sizeof ready - used, " %s", shown);
    }

    /* workers never see signals: the main loop handles them */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP), sigaddset(&block, SIGTERM), sigaddset(&block, SIGINT), sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
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
    struct ev_loop *main_loop = EV_DEFAULT;
    ev_signal sigs[4];
    int signums[4] = {SIGHUP, SIGTERM, SIGINT, SIGUSR1};
    for (int i = 0; i < 4; i++) {
        ev_signal_init(&sigs[i], on_signal, signums[i]);
        ev_signal_start(main_loop, &sigs[i]);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_IGN);
    ev_timer tick, stats_timer;
    ev_timer_init(&tick, on_tick, 1., 1.);
    ev_timer_start(main_loop, &tick);
    if (stats_every) {
        ev_timer_init(&stats_timer, on_stats_timer, (double)stats_every, (double)stats_every);
        ev_timer_start(main_loop, &stats_timer);
    }

    printf("%s (%u workers, plugin %s %s)\n", ready, nworkers, api->name, api->version);
    fflush(stdout);
    ev_run(main_loop, 0);

    say("", "stopping");
    for (unsigned i = 0; i < nworkers; i++)
        ev_async_send(workers[i].loop, &workers[i].stop);
    for (unsigned i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        for (unsigned k = 0; k < workers[i].nfds; k++)
            close(workers[i].fds[k]);
        ev_loop_destroy(workers[i].loop);
    }
    print_stats();
    api->destroy(inst); /* commits every pending grant */
    free(workers);
    say("", "stopped; every grant is on disk");
    return UG_EXIT_OK;
}
