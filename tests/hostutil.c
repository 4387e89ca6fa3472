/* Running the real hosts of `make hosts` (opentracker, n2n's supernode) in tests: config, start, stop, their own protocols. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostutil.h"
#include "nodeutil.h"
#include "testutil.h"

extern char **environ;

const char *hu_binary(hu_kind kind)
{
    static _Thread_local char path[2][512];
    snprintf(path[kind], sizeof path[kind], "%s/hosts/%s", tu_build_dir(),
             kind == HU_OPENTRACKER ? "opentracker" : "supernode");
    return path[kind];
}

/* A loopback port free for UDP and TCP both (the supernode binds both). */
static unsigned free_port(void)
{
    for (int i = 0; i < 20; i++) {
        unsigned p = tu_free_port(SOCK_DGRAM);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return p;
    }
    cr_assert_fail("no loopback port free for UDP and TCP");
    return 0;
}

static void write_conf(hu_host *h, const char *policy, const char *plugin, const char *lines)
{
    char so[512], text[4096];
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    if (!plugin)
        plugin = so;
    int n;
    if (h->kind == HU_OPENTRACKER)
        n = snprintf(text, sizeof text,
                     "%s\nlisten.udp 127.0.0.1:%u\nupgate.plugin %s\nupgate.policy %s\nupgate.control %s\n",
                     lines ? lines : "", h->port, plugin, policy, h->ctl);
    else
        n = snprintf(text, sizeof text,
                     "-p=127.0.0.1:%u\n-t=%u\n-f\n--upgate-plugin=%s\n--upgate-policy=%s\n--upgate-control=%s\n%s\n",
                     h->port, free_port(), plugin, policy, h->ctl, lines ? lines : "");
    cr_assert_lt((size_t)n, sizeof text);
    tu_write_file(h->conf, text, (size_t)n);
}

static pid_t spawn(const hu_host *h, const char *const *env)
{
    const char *bin = hu_binary(h->kind);
    const char *argv[4] = {bin, h->conf, NULL, NULL};
    if (h->kind == HU_OPENTRACKER)
        argv[1] = "-f", argv[2] = h->conf;
    /* a sanitized build (SAN=1): the hosts' own leaks at exit are not
     * upgate's, and ASan's alternate signal stack trips over exit() from
     * opentracker's signal handler; ignored by an unsanitized host */
    const char *envp[256] = {"ASAN_OPTIONS=detect_leaks=0:use_sigaltstack=0"};
    int ne = 1;
    for (int i = 0; environ[i] && ne < 200; i++)
        if (strncmp(environ[i], "ASAN_OPTIONS=", 13))
            envp[ne++] = environ[i];
    for (int i = 0; env && env[i] && ne < 254; i++)
        envp[ne++] = env[i];
    envp[ne] = NULL;
    pid_t parent = getpid(), pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) /* never outlive the test */
            _exit(127);
        int log = open(h->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        dup2(null, 0), dup2(log, 1), dup2(log, 2);
        execve(argv[0], (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    return pid;
}

/* Does the host's own protocol answer, and the adapter's control socket?
 * (opentracker's UDP threads answer before the adapter is opened.) */
static bool answers(const hu_host *h)
{
    static const uint8_t hash[20] = "upgate-hostutil-prob";
    uint32_t seeders;
    char out[4096];
    if (nu_ctl(h->ctl, "{\"cmd\":\"info\"}\n", 15, false, out, sizeof out) <= 0 || !strstr(out, "\"ok\":true"))
        return false;
    return h->kind == HU_OPENTRACKER ? hu_bt_session(h->port, hash, 6881, &seeders)
                                     : hu_n2n_register(h->port, "probe", 0x5eed);
}

void hu_start(hu_host *h, hu_kind kind, const char *dir, const char *policy, const char *plugin, const char *lines,
              const char *const *env)
{
    memset(h, 0, sizeof *h);
    h->kind = kind;
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    const char *name = kind == HU_OPENTRACKER ? "opentracker" : "supernode";
    snprintf(h->conf, sizeof h->conf, "%s/%s.conf", dir, name);
    snprintf(h->log, sizeof h->log, "%s/%s.log", dir, name);
    snprintf(h->ctl, sizeof h->ctl, "%s/%s.ctl", dir, name);
    cr_assert_eq(access(hu_binary(kind), X_OK), 0, "%s is not built: make hosts", hu_binary(kind));
    h->port = free_port();
    write_conf(h, policy, plugin, lines);
    h->pid = spawn(h, env);
    char log[8192];
    for (int i = 0; i < 200; i++) { /* 10 s */
        if (hu_wait(h, 0) >= 0) {
            hu_log(h, log, sizeof log);
            cr_assert_fail("%s exited before it served: %s", name, log);
        }
        if (answers(h))
            return;
        nu_sleep_ms(50);
    }
    hu_log(h, log, sizeof log);
    hu_kill(h);
    cr_assert_fail("%s does not answer its own protocol on 127.0.0.1:%u: %s", name, h->port, log);
}

int hu_wait(hu_host *h, int ms)
{
    int st;
    for (int waited = 0;; waited += 20) {
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        if (r == h->pid) {
            h->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (waited >= ms)
            return -1;
        nu_sleep_ms(20);
    }
}

int hu_stop(hu_host *h, int sig)
{
    if (!h->pid)
        return -1;
    kill(h->pid, sig);
    int rc = hu_wait(h, 20000);
    if (rc < 0) {
        hu_kill(h);
        cr_assert_fail("host %d did not stop on signal %d", (int)h->pid, sig);
    }
    return rc;
}

void hu_kill(hu_host *h)
{
    if (!h->pid)
        return;
    kill(h->pid, SIGKILL);
    waitpid(h->pid, NULL, 0);
    h->pid = 0;
}

void hu_log(const hu_host *h, char *out, size_t cap)
{
    FILE *f = fopen(h->log, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = 0;
    if (f)
        fclose(f);
}

bool hu_log_has(const hu_host *h, const char *what, int ms)
{
    static char log[1 << 16];
    for (int waited = 0;; waited += 20) {
        hu_log(h, log, sizeof log);
        if (strstr(log, what))
            return true;
        if (waited >= ms)
            return false;
        nu_sleep_ms(20);
    }
}

/* ---- the hosts' own protocols ----------------------------------------- */

/* A fresh socket connected to 127.0.0.1:port. */
static int dial(unsigned port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends req, waits (500 ms) for a reply of at least min bytes. */
static ssize_t ask(int fd, const void *req, size_t len, uint8_t *out, size_t cap, size_t min)
{
    if (send(fd, req, len, 0) != (ssize_t)len)
        return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 500) != 1)
        return -1;
    ssize_t k = recv(fd, out, cap, 0);
    return k >= (ssize_t)min ? k : -1;
}

static uint32_t be32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

static void put32(uint8_t *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}

bool hu_bt_session(unsigned port, const uint8_t hash[20], uint16_t peer_port, uint32_t *seeders)
{
    int fd = dial(port);
    uint8_t req[128], rep[1500], connid[8];
    uint32_t tx = (uint32_t)random();
    bool ok = false;
    put64(req, 0x41727101980ull), put32(req + 8, 0), put32(req + 12, tx);
    if (ask(fd, req, 16, rep, sizeof rep, 16) < 0 || be32_at(rep) != 0 || be32_at(rep + 4) != tx)
        goto out;
    memcpy(connid, rep + 8, 8);
    /* announce: connid, action 1, tx, info_hash, peer_id, downloaded, left 0, uploaded, event 1 (completed),
     * ip 0, key, num_want -1, port */
    memset(req, 0, sizeof req);
    memcpy(req, connid, 8), put32(req + 8, 1), put32(req + 12, ++tx);
    memcpy(req + 16, hash, 20), memcpy(req + 36, "-UG0001-hostutil0001", 20);
    put32(req + 80, 1), put32(req + 88, 0x5eed), put32(req + 92, 0xffffffffu);
    req[96] = (uint8_t)(peer_port >> 8), req[97] = (uint8_t)peer_port;
    if (ask(fd, req, 98, rep, sizeof rep, 20) < 0 || be32_at(rep) != 1 || be32_at(rep + 4) != tx)
        goto out;
    /* scrape: connid, action 2, tx, info_hash */
    put32(req + 8, 2), put32(req + 12, ++tx);
    if (ask(fd, req, 36, rep, sizeof rep, 20) < 0 || be32_at(rep) != 2 || be32_at(rep + 4) != tx)
        goto out;
    *seeders = be32_at(rep + 8);
    ok = true;
out:
    close(fd);
    return ok;
}

bool hu_n2n_register(unsigned port, const char *community, uint32_t cookie)
{
    /* n2n's wire.c, unencrypted header: version 3, ttl, flags (packet code 5,
     * REGISTER_SUPER), community (20 bytes, NUL-ended); then cookie, edge MAC,
     * device address and bit length, description (16), auth scheme 1 (simple
     * id) with a 16-byte token, key time */
    uint8_t req[128] = {3, 2, 0, 5}, rep[1500];
    size_t at = 4;
    snprintf((char *)req + at, 20, "%s", community), at += 20;
    put32(req + at, cookie), at += 4;
    memcpy(req + at, "\x02\x75\x67\x00\x00\x01", 6), at += 6; /* a locally administered MAC */
    at += 5;                                                 /* 0.0.0.0/0: asks for an address */
    memcpy(req + at, "hostutil", 8), at += 16;
    req[at + 1] = 1, req[at + 3] = 16, at += 4;
    memcpy(req + at, "upgate-host-test", 16), at += 16;
    at += 4;
    int fd = dial(port);
    ssize_t k = ask(fd, req, at, rep, sizeof rep, 28);
    close(fd);
    return k >= 28 && rep[0] == 3 && (rep[3] & 0x1f) == 7 && be32_at(rep + 24) == cookie;
}
