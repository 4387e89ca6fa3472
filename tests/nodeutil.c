/* Running the real upgate-node in tests: keys and policy in a temp dir, start, stop, counters, HELLOs, control. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "nodeutil.h"
#include "testutil.h"

extern char **environ;

void nu_sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

int nu_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return tu_run(cmd, NULL, 0);
}

const char *nu_path(nu_node *n, const char *name)
{
    static _Thread_local char p[4][256];
    static _Thread_local int k;
    char *s = p[k++ % 4];
    snprintf(s, 256, "%s/%s", n->dir, name);
    return s;
}

void nu_policy(nu_node *n, const char *stages)
{
    char text[4096];
    int len = snprintf(text, sizeof text,
                       "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\nstate: state\n"
                       "targets: [\"1.4.0\"]\nretry: 120\n%s",
                       stages);
    tu_write_file(nu_path(n, "policy.yaml"), text, (size_t)len);
}

void nu_init(nu_node *n, const char *stages)
{
    cr_assert(sodium_init() >= 0);
    memset(n, 0, sizeof *n);
    n->out = -1;
    snprintf(n->dir, sizeof n->dir, "%s", tu_tmpdir());
    snprintf(n->err_path, sizeof n->err_path, "%s/node.err", n->dir);
    const char *b = tu_build_dir();
    cr_assert_eq(nu_sh("cd %s && for k in hint issuer release client; do %s/upgate-keys gen $k >/dev/null || exit 1; "
                       "done && head -c 1000 /dev/urandom > app.bin && %s/upgate-keys release --key release.key "
                       "--version 2.0.0 --file app.bin --url http://127.0.0.1:9/app.bin --ttl 86400 "
                       "--out release.manifest",
                       n->dir, b, b),
                 0, "cannot make keys and a manifest");
    nu_policy(n, stages);
}

static pid_t spawn(nu_node *n, const char *const *extra, const char *const *env, int out_fd)
{
    static char node[512], so[512], policy[256];
    snprintf(node, sizeof node, "%s/upgate-node", tu_build_dir());
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    snprintf(policy, sizeof policy, "%s/policy.yaml", n->dir);
    const char *argv[64] = {node, "--listen", "127.0.0.1:0", "--workers", "1", "--policy", policy};
    int argc = 7;
    bool has_plugin = false;
    for (int i = 0; extra && extra[i]; i++) {
        cr_assert_lt(argc, 60);
        has_plugin |= !strcmp(extra[i], "--plugin");
        argv[argc++] = extra[i];
    }
    if (!has_plugin)
        argv[argc++] = "--plugin", argv[argc++] = so;
    argv[argc] = NULL;
    const char *envp[256];
    int ne = 0;
    for (int i = 0; environ[i] && ne < 200; i++)
        envp[ne++] = environ[i];
    for (int i = 0; env && env[i] && ne < 254; i++)
        envp[ne++] = env[i];
    envp[ne] = NULL;
    pid_t parent = getpid(), pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* a test that crashes takes its node with it */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        int err = open(n->err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(out_fd, 1);
        dup2(err, 2);
        execve(argv[0], (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    return pid;
}

void nu_start(nu_node *n, const char *const *extra, const char *const *env)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    n->pid = spawn(n, extra, env, p[1]);
    close(p[1]);
    n->out = p[0];
    size_t got = 0;
    while (got < sizeof n->ready - 1) { /* the ready line, then stop reading */
        ssize_t k = read(n->out, n->ready + got, 1);
        if (k <= 0) {
            char err[4096];
            nu_stderr(n, err, sizeof err);
            waitpid(n->pid, NULL, 0);
            n->pid = 0;
            cr_assert_fail("node exited before it was ready: %s", err);
        }
        if (n->ready[got++] == '\n')
            break;
    }
    n->ready[got] = 0;
    const char *colon = strstr(n->ready, "127.0.0.1:");
    cr_assert(colon, "ready line names the address: %s", n->ready);
    n->port = (unsigned)strtoul(colon + 10, NULL, 10);
    cr_assert_gt(n->port, 0);
}

int nu_start_fails(nu_node *n, const char *const *extra, const char *const *env, char *err, size_t cap)
{
    int devnull = open("/dev/null", O_WRONLY);
    unlink(n->err_path);
    pid_t pid = spawn(n, extra, env, devnull);
    close(devnull);
    int st = 0;
    for (int i = 0; i < 200; i++) { /* at most 10 s */
        if (waitpid(pid, &st, WNOHANG) == pid) {
            nu_stderr(n, err, cap);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        nu_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("node did not exit");
    return -1;
}

int nu_stop(nu_node *n, int sig)
{
    int st = 0;
    if (!n->pid)
        return -1;
    kill(n->pid, sig);
    cr_assert_eq(waitpid(n->pid, &st, 0), n->pid);
    if (n->out >= 0)
        close(n->out);
    n->out = -1;
    n->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void nu_stderr(nu_node *n, char *out, size_t cap)
{
    FILE *f = fopen(n->err_path, "r");
    size_t got = f ? fread(out, 1, cap - 1, f) : 0;
    out[got] = 0;
    if (f)
        fclose(f);
}

void nu_stats(nu_node *n, char *line, size_t cap)
{
    kill(n->pid, SIGUSR1);
    size_t got = 0;
    struct pollfd p = {.fd = n->out, .events = POLLIN};
    while (got < cap - 1 && poll(&p, 1, 5000) == 1 && read(n->out, line + got, 1) == 1 && line[got] != '\n')
        got++;
    line[got] = 0;
    cr_assert(strncmp(line, "stats:", 6) == 0, "a stats line: %s", line);
}

uint64_t nu_stat(const char *line, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, " %s=", name);
    const char *p = strstr(line, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

const char *nu_hostplug(nu_node *n, const char *name, const char *cflags)
{
    static _Thread_local char so[256];
    const char *root = getenv("UG_ROOT") ? getenv("UG_ROOT") : ".";
    snprintf(so, sizeof so, "%s/%s.so", n->dir, name);
    cr_assert_eq(nu_sh("cc -std=c11 -shared -fPIC %s -I%s/plugin -o %s %s/tests/hostplug/hostplug.c", cflags, root, so,
                       root),
                 0, "cannot build the stand-in plugin");
    return so;
}

const ug_plugin *nu_real_plugin(void)
{
    char so[512];
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    void *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    cr_assert(dl, "dlopen %s: %s", so, dlerror());
    const ug_plugin *p = dlsym(dl, UG_PLUGIN_SYMBOL);
    cr_assert(p);
    return p;
}

long nu_ctl(const char *path, const void *req, size_t len, bool half_close, char *out, size_t cap)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 15};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t at = 0;
    while (at < len) {
        ssize_t k = send(fd, (const char *)req + at, len - at, MSG_NOSIGNAL);
        if (k <= 0)
            break; /* the server may close on an oversized request */
        at += (size_t)k;
    }
    if (half_close)
        shutdown(fd, SHUT_WR);
    size_t got = 0;
    char sink[4096];
    for (;;) {
        char *dst = got + 1 < cap ? out + got : sink;
        size_t room = got + 1 < cap ? cap - 1 - got : sizeof sink;
        ssize_t k = recv(fd, dst, room, 0);
        if (k <= 0)
            break;
        if (dst != sink)
            got += (size_t)k;
    }
    out[got] = 0;
    close(fd);
    return (long)got;
}

/* A HELLO for uid from a fresh client key, with a credential the issuer
 * (isk, ipk) signed. */
static size_t hello_by(const uint8_t *isk, const uint8_t *ipk, uint8_t *out, size_t cap, uint64_t uid, const char *ver,
                       const char *plat, const char *chan)
{
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], body[256], cred[512];
    crypto_sign_keypair(pk, sk);
    ug_cred c = {.uid = uid, .exp = (uint64_t)time(NULL) + 3600};
    memcpy(c.pk, pk, sizeof c.pk);
    ug_kid(c.kid, ipk);
    size_t blen, clen, len;
    cr_assert_eq(ug_cred_encode_body(body, sizeof body, &blen, &c), 0);
    cr_assert_eq(ug_signed_encode(cred, sizeof cred, &clen, UG_CTX_CRED, body, blen, isk), 0);
    ug_hello_fields h = {.uid = uid, .ver = ver, .ts = (uint64_t)time(NULL), .plat = plat, .chan = chan,
                         .cred = cred, .cred_len = clen};
    memcpy(h.pk, pk, sizeof h.pk);
    randombytes_buf(h.nonce, sizeof h.nonce);
    cr_assert_eq(ug_hello_build(out, cap, &len, &h, 600, sk), 0);
    return len;
}

size_t nu_hello(uint8_t *out, size_t cap, uint64_t uid, const char *ver, const char *plat, const char *chan)
{
    /* a well-formed credential from an issuer nobody trusts */
    uint8_t isk[UG_SK_LEN], ipk[UG_PK_LEN];
    crypto_sign_keypair(ipk, isk);
    return hello_by(isk, ipk, out, cap, uid, ver, plat, chan);
}

size_t nu_hello_issued(nu_node *n, uint8_t *out, size_t cap, uint64_t uid, const char *ver, const char *plat,
                       const char *chan)
{
    char why[256];
    uint8_t *isk = ug_seckey_load(nu_path(n, "issuer.key"), why, sizeof why);
    cr_assert(isk, "issuer.key: %s", why);
    size_t len = hello_by(isk, isk + 32, out, cap, uid, ver, plat, chan); /* libsodium's sk is seed || pk */
    ug_secret_free(isk);
    return len;
}

int nu_ask(nu_node *n, const void *dgram, size_t len, uint64_t *why)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->port),
                             .sin_addr.s_addr = htonl(0x7f000001)};
    cr_assert_eq(sendto(fd, dgram, len, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)len);
    uint8_t reply[UG_DGRAM_MAX + 1];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t k = poll(&p, 1, 3000) == 1 ? recv(fd, reply, sizeof reply, 0) : -1;
    close(fd);
    ug_dgram d;
    ug_err e;
    if (k <= 0 || ug_dgram_decode(&d, reply, (size_t)k, &e) != 0)
        return -1;
    ug_wait w;
    if (d.type == UG_TYPE_WAIT && why)
        *why = ug_wait_decode(&w, d.body, d.body_len, &e) == 0 ? w.why : UINT64_MAX;
    return (int)d.type;
}

int nu_upgate_ctl(nu_node *n, const char *dir, char *out, size_t outcap, char *err, size_t errcap, const char *fmt,
                  ...)
{
    char args[8192], cmd[12288], errf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(errf, sizeof errf, "%s/ctl.err", n->dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/upgate-ctl' %s 2>'%s'", dir, tu_build_dir(), args, errf);
    int rc = tu_run(cmd, out, outcap);
    FILE *f = fopen(errf, "r");
    size_t k = f ? fread(err, 1, errcap - 1, f) : 0;
    err[k] = 0;
    if (f)
        fclose(f);
    return rc;
}

void nu_write(const char *path, const char *text)
{
    tu_write_file(path, text, strlen(text));
}

void nu_plug_policy(nu_node *n, const char *lines)
{
    char text[1024];
    snprintf(text, sizeof text, "state=%s\n%s", n->dir, lines);
    nu_write(nu_path(n, "policy.yaml"), text);
}

void nu_pause(nu_node *n)
{
    cr_assert_eq(kill(n->pid, SIGSTOP), 0);
    char path[64], st[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)n->pid);
    for (int i = 0; i < 200; i++) { /* until the kernel says stopped: at most 2 s */
        FILE *f = fopen(path, "r");
        size_t k = f ? fread(st, 1, sizeof st - 1, f) : 0;
        if (f)
            fclose(f);
        st[k] = 0;
        const char *paren = strrchr(st, ')');
        if (paren && paren[1] == ' ' && paren[2] == 'T')
            return;
        nu_sleep_ms(10);
    }
    cr_assert_fail("the node did not stop");
}
