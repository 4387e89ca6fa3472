/* make bench: the temp dir, keys, manifest and policies, and every child
 * process (nodes, yardstick servers), stopped by PID on every exit path. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "bench.h"

#define CHILDREN_MAX 16

static pid_t children[CHILDREN_MAX];
static char temp_dir[64];
static pid_t owner;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    (void)remove(path); /* best effort: keep going */
    return 0;
}

/* Kills what is still running and removes the temp dir; only in the bench
 * process itself, never in a forked server. */
static void cleanup(void)
{
    if (getpid() != owner)
        return;
    for (int i = 0; i < CHILDREN_MAX; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
    }
    if (temp_dir[0])
        nftw(temp_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    temp_dir[0] = 0;
}

/* Children first (kill is async-signal-safe), then exit() for the temp dir. */
static void on_signal(int sig)
{
    (void)sig;
    for (int i = 0; i < CHILDREN_MAX; i++)
        if (children[i] > 0)
            kill(children[i], SIGKILL);
    exit(1);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void remember(pid_t pid)
{
    for (int i = 0; i < CHILDREN_MAX; i++)
        if (children[i] == 0) {
            children[i] = pid;
            return;
        }
    kill(pid, SIGKILL);
    bench_die("more than %d children", CHILDREN_MAX);
}

static void forget(pid_t pid)
{
    for (int i = 0; i < CHILDREN_MAX; i++)
        if (children[i] == pid)
            children[i] = 0;
}

static void keypair(bench_env *e, const char *name, uint8_t sk[UG_SK_LEN], uint8_t pk[UG_PK_LEN])
{
    uint8_t seed[UG_SEED_LEN];
    char path[128], why[256];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    snprintf(path, sizeof path, "%s/%s.key", e->dir, name);
    if (ug_keyfile_write(path, seed, sizeof seed, true, why, sizeof why) != 0)
        bench_die("%s", why);
    snprintf(path, sizeof path, "%s/%s.pub", e->dir, name);
    if (ug_keyfile_write(path, pk, UG_PK_LEN, false, why, sizeof why) != 0)
        bench_die("%s", why);
    sodium_memzero(seed, sizeof seed);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ug_write_all(fd, data, len) != 0 || close(fd) != 0)
        bench_die("%s: %s", path, strerror(errno));
}

void env_init(bench_env *e)
{
    memset(e, 0, sizeof *e);
    owner = getpid();
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN);
    snprintf(e->dir, sizeof e->dir, "/tmp/ugbench.XXXXXX");
    if (!mkdtemp(e->dir))
        bench_die("mkdtemp: %s", strerror(errno));
    snprintf(temp_dir, sizeof temp_dir, "%s", e->dir);
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN];
    keypair(e, "hint", e->hint_sk, e->hint_pk);
    keypair(e, "release", e->rel_sk, e->rel_pk);
    keypair(e, "issuer", sk, pk);
    keypair(e, "client", sk, pk);
    sodium_memzero(sk, sizeof sk);
    uint64_t now = (uint64_t)time(NULL);
    ug_manifest m = {.size = 52428800, .exp = now + 365 * 86400, .nurls = 2};
    if (ug_version_parse(&m.to, "2.0.0", 5) != 0)
        bench_die("version");
    snprintf(m.urls[0], sizeof m.urls[0], "https://dl1.example.net/app-2.0.0.bin");
    snprintf(m.urls[1], sizeof m.urls[1], "https://dl2.example.net/app-2.0.0.bin");
    randombytes_buf(m.hash, sizeof m.hash);
    ug_kid(m.kid, e->rel_pk);
    uint8_t body[UG_OBJ_MAX];
    size_t blen;
    if (ug_manifest_encode_body(body, sizeof body, &blen, &m) != 0 ||
        ug_signed_encode(e->manifest, sizeof e->manifest, &e->manifest_len, UG_CTX_RELEASE, body, blen, e->rel_sk) != 0)
        bench_die("manifest");
    char path[128];
    snprintf(path, sizeof path, "%s/release.manifest", e->dir);
    write_file(path, e->manifest, e->manifest_len);
}

const char *env_policy(bench_env *e, const char *name, const char *stages)
{
    static char path[CHILDREN_MAX][128];
    static int next;
    char *p = path[next++ % CHILDREN_MAX];
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\nstate: state-%s\n"
                     "targets: [\"1.4.0\"]\ncookie: never\nsource_budget: 0\nstages:\n%s",
                     name, stages);
    if (n < 0 || (size_t)n >= sizeof text)
        bench_die("policy %s too long", name);
    snprintf(p, 128, "%s/%s.yaml", e->dir, name);
    write_file(p, text, (size_t)n);
    return p;
}

/* Reads one line from fd within timeout_ms; 0, or -1 on EOF or timeout. */
static int read_line(int fd, char *line, size_t cap, int timeout_ms)
{
    size_t got = 0;
    while (got + 1 < cap) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, timeout_ms) <= 0)
            return -1;
        ssize_t n = read(fd, line + got, 1);
        if (n <= 0)
            return -1;
        if (line[got] == '\n')
            break;
        got++;
    }
    line[got] = 0;
    return 0;
}

void proc_node(bench_proc *p, bench_env *e, const char *label, const char *node, const char *so,
               const char *policy, unsigned workers)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    int out[2];
    char log[128], nw[16];
    snprintf(log, sizeof log, "%s/%s.log", e->dir, label);
    snprintf(nw, sizeof nw, "%u", workers);
    if (pipe2(out, O_CLOEXEC) != 0)
        bench_die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out[1], 1);
        if (err >= 0)
            dup2(err, 2);
        char *argv[] = {(char *)node, "--listen", "127.0.0.1:0", "--plugin", (char *)so, "--policy",
                        (char *)policy, "--workers", nw, NULL};
        execv(node, argv);
        _exit(127);
    }
    remember(pid);
    close(out[1]);
    p->pid = pid;
    p->out = out[0];
    char line[1024];
    if (read_line(p->out, line, sizeof line, 20000) != 0) {
        /* the log dies with the temp dir: say what it says */
        char tail[512] = "";
        size_t n = 0;
        int fd = open(log, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            off_t end = lseek(fd, 0, SEEK_END);
            (void)lseek(fd, end > (off_t)sizeof tail - 1 ? end - (off_t)sizeof tail + 1 : 0, SEEK_SET);
            ssize_t got = read(fd, tail, sizeof tail - 1);
            n = got > 0 ? (size_t)got : 0;
            close(fd);
        }
        tail[n] = 0;
        for (char *c = tail; *c; c++)
            *c = *c == '\n' ? ' ' : *c;
        bench_die("%s (%s) did not say it was ready: %s", label, node, n ? tail : "(nothing on stderr)");
    }
    const char *at = strstr(line, "127.0.0.1:");
    unsigned long port = at ? strtoul(at + 10, NULL, 10) : 0;
    if (!port || port > 65535)
        bench_die("%s: no port in its ready line: %s", label, line);
    p->port = (unsigned)port;
}

void proc_server(bench_proc *p, const char *label, int kind)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->out = -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int buf = 4 << 20;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    /* the node's receive buffer, so that no server is favoured */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        bench_die("%s: socket: %s", label, strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        server_loop(kind, fd);
    }
    remember(pid);
    close(fd);
    p->pid = pid;
    p->port = ntohs(a.sin_port);
}

void proc_stop(bench_proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, p->out >= 0 ? SIGTERM : SIGKILL);
    int st;
    for (int i = 0; i < 1000; i++) { /* 10 s */
        if (waitpid(p->pid, &st, WNOHANG) == p->pid)
            goto done;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
done:
    forget(p->pid);
    p->pid = 0;
    if (p->out >= 0)
        close(p->out);
    p->out = -1;
}

int proc_stat(bench_proc *p, const char *name, uint64_t *v)
{
    char line[8192];
    if (p->out < 0 || kill(p->pid, SIGUSR1) != 0)
        return -1;
    do {
        if (read_line(p->out, line, sizeof line, 5000) != 0)
            return -1;
    } while (strncmp(line, "stats:", 6) != 0);
    char key[96];
    snprintf(key, sizeof key, " %s=", name);
    const char *at = strstr(line, key);
    *v = at ? strtoull(at + strlen(key), NULL, 10) : 0;
    return 0;
}
