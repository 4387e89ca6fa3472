/* Shared helpers for the Criterion suites. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "testutil.h"

const char *tu_spec_dir(void)
{
    const char *s = getenv("UG_SPEC");
    return s && *s ? s : "../shared/spec";
}

const char *tu_build_dir(void)
{
    const char *s = getenv("UG_BUILD");
    return s && *s ? s : "build";
}

json_t *tu_vectors(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/vectors/%s", tu_spec_dir(), name);
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    cr_assert(j != NULL, "cannot load %s: %s (line %d)", path, e.text, e.line);
    return j;
}

size_t tu_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t len = 0;
    cr_assert(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len, NULL) == 0, "bad hex or too long");
    return len;
}

void tu_vector_key(const char *name, uint8_t sk[UG_SK_LEN], uint8_t pk[UG_PK_LEN])
{
    json_t *j = tu_vectors("keys.json");
    json_t *k = json_object_get(json_object_get(j, "keys"), name);
    cr_assert(k, "no key %s in keys.json", name);
    uint8_t seed[32];
    cr_assert_eq(tu_unhex(json_string_value(json_object_get(k, "seed")), seed, sizeof seed), 32);
    crypto_sign_seed_keypair(pk, sk, seed);
    json_decref(j);
}

static char tmp_paths[64][64];
static int tmp_next;
static pid_t tmp_owner;

/* Removes this process's temp dirs; a forked test inherits the list but
 * only the process that made a dir removes it. */
static void tmp_cleanup(void)
{
    if (getpid() != tmp_owner)
        return;
    for (int i = 0; i < tmp_next; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%.63s'", tmp_paths[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", tmp_paths[i]);
    }
    tmp_next = 0;
}

const char *tu_tmpdir(void)
{
    if (tmp_owner != getpid()) { /* first call in this (test) process */
        tmp_owner = getpid();
        tmp_next = 0;
        atexit(tmp_cleanup);
    }
    cr_assert(tmp_next < 64);
    char *p = tmp_paths[tmp_next++];
    snprintf(p, 64, "/tmp/ugtest.XXXXXX");
    cr_assert(mkdtemp(p) != NULL, "mkdtemp: %s", strerror(errno));
    return p;
}

int tu_run(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t got = 0;
    char sink[256];
    for (;;) {
        char *dst = out && got + 1 < cap ? out + got : sink;
        size_t room = out && got + 1 < cap ? cap - 1 - got : sizeof sink;
        size_t n = fread(dst, 1, room, f);
        if (n == 0)
            break;
        if (dst != sink)
            got += n;
    }
    if (out && cap)
        out[got] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

unsigned tu_free_port(int type)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Does something accept on 127.0.0.1:port? */
static bool accepts(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

pid_t tu_httpd(const char *www, unsigned *port)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        unsigned p = tu_free_port(SOCK_STREAM);
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1:%u", p);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
            int null = open("/dev/null", O_RDWR);
            dup2(null, STDIN_FILENO), dup2(null, STDOUT_FILENO), dup2(null, STDERR_FILENO);
            execlp("busybox", "busybox", "httpd", "-f", "-p", addr, "-h", www, (char *)NULL);
            _exit(127);
        }
        /* ready when it accepts a connection; gone if the port was taken */
        for (int i = 0; i < 200; i++) {
            if (accepts(p)) {
                *port = p;
                return pid;
            }
            if (waitpid(pid, NULL, WNOHANG) == pid)
                break;
            usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    cr_assert_fail("busybox httpd did not start");
    return 0;
}
