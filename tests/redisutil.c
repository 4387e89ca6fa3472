/* Real redis-server and redis-sentinel for tests: temp dir, Unix socket or loopback port, ready on PING, stopped by PID. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nodeutil.h"
#include "redisutil.h"
#include "testutil.h"

bool ru_available(void)
{
    return nu_sh("command -v redis-server >/dev/null && command -v redis-sentinel >/dev/null") == 0;
}

static pid_t spawn(const char *dir, const char *const *argv)
{
    pid_t parent = getpid(), pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        char log[128];
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127); /* a test that crashes takes its servers with it */
        snprintf(log, sizeof log, "%s/stdout.log", dir);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        if (chdir(dir) != 0)
            _exit(127);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* A connection, authenticated when pass is given (user NULL or "": the default user). */
static redisContext *connect_to(const char *sock, unsigned port, const char *user, const char *pass)
{
    struct timeval tv = {1, 0};
    redisContext *c = port ? redisConnectWithTimeout("127.0.0.1", (int)port, tv) : redisConnectUnixWithTimeout(sock, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c)
        redisSetTimeout(c, (struct timeval){5, 0});
    if (c && pass && pass[0]) {
        redisReply *rep = user && user[0] ? redisCommand(c, "AUTH %s %s", user, pass) : redisCommand(c, "AUTH %s", pass);
        bool ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

/* PING until PONG, at most 10 s, while the process lives. */
static void wait_ready(pid_t pid, const char *sock, unsigned port, const char *dir, const char *user, const char *pass)
{
    for (int i = 0; i < 200; i++) {
        redisContext *c = connect_to(sock, port, user, pass);
        redisReply *rep = c ? redisCommand(c, "PING") : NULL;
        bool ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
        if (rep)
            freeReplyObject(rep);
        if (c)
            redisFree(c);
        if (ok)
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char out[2048] = "";
            char cmd[256];
            snprintf(cmd, sizeof cmd, "tail -n 20 %s/*.log", dir);
            tu_run(cmd, out, sizeof out);
            cr_assert_fail("redis exited before it answered: %s", out);
        }
        nu_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("redis did not answer PING within 10 s");
}

static void launch(ru_redis *r)
{
    char port[16];
    snprintf(port, sizeof port, "%u", r->port);
    const char *argv[32] = {"redis-server", "--port", port, "--dir", r->dir, "--appendonly", "yes",
                            "--appendfsync", "always", "--save", "", "--logfile", "redis.log"};
    int n = 13;
    if (r->port) {
        argv[n++] = "--bind", argv[n++] = "127.0.0.1";
    } else {
        argv[n++] = "--unixsocket", argv[n++] = r->sock, argv[n++] = "--unixsocketperm", argv[n++] = "700";
    }
    if (r->replicaof[0])
        argv[n++] = "--replicaof", argv[n++] = r->replicaof;
    if (r->aclfile[0]) {
        argv[n++] = "--aclfile", argv[n++] = r->aclfile;
    } else if (r->pass[0]) {
        argv[n++] = "--requirepass", argv[n++] = r->pass;
        argv[n++] = "--masterauth", argv[n++] = r->pass;
    }
    argv[n] = NULL;
    r->pid = spawn(r->dir, argv);
    wait_ready(r->pid, r->sock, r->port, r->dir, r->user, r->pass);
}

void ru_start(ru_redis *r, unsigned port, const char *replicaof)
{
    ru_start_auth(r, port, replicaof, NULL, NULL, NULL);
}

void ru_start_auth(ru_redis *r, unsigned port, const char *replicaof, const char *aclfile, const char *user,
                   const char *pass)
{
    memset(r, 0, sizeof *r);
    snprintf(r->aclfile, sizeof r->aclfile, "%s", aclfile ? aclfile : "");
    snprintf(r->user, sizeof r->user, "%s", user ? user : "");
    snprintf(r->pass, sizeof r->pass, "%s", pass ? pass : "");
    snprintf(r->dir, sizeof r->dir, "%s", tu_tmpdir());
    r->port = port;
    if (replicaof)
        snprintf(r->replicaof, sizeof r->replicaof, "%s", replicaof);
    if (port) {
        snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%u", port);
    } else {
        snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
        snprintf(r->url, sizeof r->url, "unix://%s", r->sock);
    }
    launch(r);
}

void ru_restart(ru_redis *r)
{
    cr_assert_eq(r->pid, 0, "restart a stopped redis only");
    launch(r);
}

void ru_stop(ru_redis *r, int sig)
{
    if (!r->pid)
        return;
    kill(r->pid, sig);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

redisContext *ru_connect(const ru_redis *r)
{
    redisContext *c = connect_to(r->sock, r->port, r->user, r->pass);
    cr_assert(c, "cannot connect to redis at %s", r->url);
    return c;
}

long long ru_int(const ru_redis *r, const char *fmt, ...)
{
    redisContext *c = ru_connect(r);
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = -1;
    if (rep && rep->type == REDIS_REPLY_INTEGER)
        v = rep->integer;
    else if (rep && rep->type == REDIS_REPLY_STRING)
        v = strtoll(rep->str, NULL, 10);
    else if (rep && rep->type == REDIS_REPLY_NIL)
        v = 0;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return v;
}

void ru_sentinel_start(ru_sentinel *s, unsigned master_port, const char *pass)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", tu_tmpdir());
    s->port = tu_free_port(SOCK_STREAM);
    char conf[1024], path[128];
    snprintf(conf, sizeof conf,
             "port %u\nbind 127.0.0.1\ndir %s\nlogfile sentinel.log\n"
             "sentinel monitor mymaster 127.0.0.1 %u 1\n"
             "sentinel down-after-milliseconds mymaster 1000\n"
             "sentinel failover-timeout mymaster 3000\n"
             "sentinel parallel-syncs mymaster 1\n%s%s%s",
             s->port, s->dir, master_port, pass ? "sentinel auth-pass mymaster " : "", pass ? pass : "",
             pass ? "\n" : "");
    snprintf(path, sizeof path, "%s/sentinel.conf", s->dir);
    tu_write_file(path, conf, strlen(conf));
    const char *argv[] = {"redis-sentinel", path, NULL};
    s->pid = spawn(s->dir, argv);
    wait_ready(s->pid, NULL, s->port, s->dir, NULL, NULL);
}

void ru_sentinel_stop(ru_sentinel *s)
{
    if (!s->pid)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

unsigned ru_sentinel_master(const ru_sentinel *s)
{
    redisContext *c = connect_to(NULL, s->port, NULL, NULL);
    if (!c)
        return 0;
    redisReply *rep = redisCommand(c, "SENTINEL get-master-addr-by-name mymaster");
    unsigned port = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->type == REDIS_REPLY_STRING)
        port = (unsigned)strtoul(rep->element[1]->str, NULL, 10);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return port;
}
