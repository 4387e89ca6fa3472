/* The example in include/upgate/client.h: the same text as client/example.c, and it works against the real node. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "testutil.h"

static const char *root(void)
{
    const char *r = getenv("UG_ROOT");
    return r && *r ? r : ".";
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
    size_t len;
    char why[128];
    cr_assert_eq(ug_file_read(path, (uint8_t *)buf, cap - 1, &len, why, sizeof why), 0, "%s: %s", path, why);
    buf[len] = 0;
    return len;
}

Test(example, the_header_reproduces_client_example_c)
{
    static char header[65536], example[16384];
    char path[512];
    snprintf(path, sizeof path, "%s/include/upgate/client.h", root());
    slurp(path, header, sizeof header);
    snprintf(path, sizeof path, "%s/client/example.c", root());
    size_t elen = slurp(path, example, sizeof example);
    static const char begin[] = " * ---- BEGIN EXAMPLE ----\n", end[] = " * ---- END EXAMPLE ----\n";
    const char *b = strstr(header, begin), *e = strstr(header, end);
    cr_assert(b && e && e > b, "the markers are missing from client.h");
    b += sizeof begin - 1;
    cr_assert_eq((size_t)(e - b), elen, "the header's example is %zu bytes, client/example.c %zu", (size_t)(e - b),
                 elen);
    cr_assert_arr_eq(b, example, elen, "the header's example differs from client/example.c");
    cr_assert_null(strstr(example, "*/"), "the example would end the header's comment");
    cr_assert_null(strstr(example, "/*"), "the example would nest a comment");
}

/* ---- against upgate-node, upgate.so and busybox httpd ---------------- */

static struct {
    char dir[64];
    pid_t node, httpd;
    int node_out;
    unsigned port, http_port;
} X;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return tu_run(cmd, NULL, 0);
}

static pid_t spawn(char *const argv[], int out_fd)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(out_fd >= 0 ? out_fd : devnull, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void start_node(void)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char node[512], so[512], policy[128];
    snprintf(node, sizeof node, "%s/upgate-node", tu_build_dir());
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    snprintf(policy, sizeof policy, "%s/policy.yaml", X.dir);
    char *argv[] = {node, "--listen", "127.0.0.1:0", "--plugin", so, "--policy", policy, "--workers", "1", NULL};
    X.node = spawn(argv, p[1]);
    close(p[1]);
    X.node_out = p[0];
    char line[512];
    size_t got = 0;
    while (got < sizeof line - 1) { /* the ready line */
        ssize_t n = read(X.node_out, line + got, 1);
        cr_assert_gt(n, 0, "node exited before it was ready");
        if (line[got++] == '\n')
            break;
    }
    line[got] = 0;
    const char *at = strstr(line, "127.0.0.1:");
    cr_assert(at, "ready line names the address: %s", line);
    X.port = (unsigned)strtoul(at + 10, NULL, 10);
}

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    memset(&X, 0, sizeof X);
    snprintf(X.dir, sizeof X.dir, "%s", tu_tmpdir());
    const char *b = tu_build_dir();
    cr_assert_eq(sh("cd %s && for k in hint issuer release client; do %s/upgate-keys gen $k || exit 1; done", X.dir, b), 0);
    cr_assert_eq(sh("mkdir %s/www && head -c 150000 /dev/urandom > %s/www/app.bin", X.dir, X.dir), 0);
    char www[128];
    snprintf(www, sizeof www, "%s/www", X.dir);
    X.httpd = tu_httpd(www, &X.http_port);
    cr_assert_eq(sh("cd %s && %s/upgate-keys release --key release.key --version 2.0.0 --file www/app.bin "
                    "--url http://127.0.0.1:%u/app.bin --ttl 86400 --out release.manifest && "
                    "%s/upgate-keys cred --issuer issuer.key --uid 11 --pub client.pub --ttl 3600 --out c.cred",
                    X.dir, b, X.http_port, b), 0);
    char policy[128];
    snprintf(policy, sizeof policy, "%s/policy.yaml", X.dir);
    static const char text[] = "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\n"
                               "state: state\ntargets: [\"1.4.0\"]\nretry: 120\nstages:\n  - {name: all}\n";
    tu_write_file(policy, text, sizeof text - 1);
    start_node();
}

static void teardown(void)
{
    if (X.node) {
        kill(X.node, SIGTERM);
        waitpid(X.node, NULL, 0);
        close(X.node_out);
    }
    if (X.httpd) {
        kill(X.httpd, SIGTERM);
        waitpid(X.httpd, NULL, 0);
    }
}

static int run_example(const char *version, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/client-example 127.0.0.1 %u 11 %s client.key c.cred hint.pub release.pub got.bin 2>&1",
             X.dir, tu_build_dir(), X.port, version);
    return tu_run(cmd, out, cap);
}

Test(example, runs_against_the_real_node, .init = setup, .fini = teardown, .timeout = 60)
{
    char out[4096];
    int rc = run_example("1.4.0", out, sizeof out);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_not_null(strstr(out, "offered 2.0.0: 150000 bytes"), "%s", out);
    cr_assert_not_null(strstr(out, "verified and saved to got.bin"), "%s", out);
    cr_assert_eq(sh("cmp -s %s/got.bin %s/www/app.bin", X.dir, X.dir), 0, "the saved file is not the package");
    /* a version the policy does not target is told to wait, clamped to a minute at least */
    rc = run_example("1.9", out, sizeof out);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_not_null(strstr(out, "no upgrade now (why 0)"), "%s", out);
    /* the REPORT went to the node, which survived it: it still answers */
    rc = run_example("1.4.0", out, sizeof out);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert_eq(kill(X.node, 0), 0);
}
