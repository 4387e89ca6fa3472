/* End to end on loopback: the real upgate-node with the real upgate.so, driven by the real upgate-peer. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "nodeutil.h"
#include "testutil.h"

typedef struct {
    char dir[64];
    pid_t node, httpd;
    int node_out; /* read end of the node's stdout */
    unsigned port, http_port;
    char pkg[128];
} e2e;

static e2e E;

static pid_t spawn(char *const argv[], int out_fd)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        if (out_fd >= 0)
            dup2(out_fd, 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (out_fd < 0)
            dup2(devnull, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void write_policy(const char *stages)
{
    char path[128], text[4096];
    snprintf(path, sizeof path, "%s/policy.yaml", E.dir);
    int n = snprintf(text, sizeof text,
                     "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\nstate: state\n"
                     "targets: [\"1.4.0\"]\nretry: 120\n%s",
                     stages);
    tu_write_file(path, text, (size_t)n);
}

static void start_node(void)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char node[512], so[512], policy[128];
    snprintf(node, sizeof node, "%s/upgate-node", tu_build_dir());
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    snprintf(policy, sizeof policy, "%s/policy.yaml", E.dir);
    char *argv[] = {node, "--listen", "127.0.0.1:0", "--plugin", so, "--policy", policy, "--workers", "2", NULL};
    E.node = spawn(argv, p[1]);
    close(p[1]);
    E.node_out = p[0];
    char line[512];
    size_t got = 0;
    while (got < sizeof line - 1) { /* the ready line, then stop reading */
        ssize_t n = read(E.node_out, line + got, 1);
        cr_assert_gt(n, 0, "node exited before it was ready");
        if (line[got++] == '\n')
            break;
    }
    line[got] = 0;
    const char *colon = strstr(line, "127.0.0.1:");
    cr_assert(colon, "ready line names the address: %s", line);
    E.port = (unsigned)strtoul(colon + 10, NULL, 10);
    cr_assert_gt(E.port, 0);
}

static int stop_node(int sig)
{
    int st;
    kill(E.node, sig);
    cr_assert_eq(waitpid(E.node, &st, 0), E.node);
    close(E.node_out);
    E.node = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    memset(&E, 0, sizeof E);
    snprintf(E.dir, sizeof E.dir, "%s", tu_tmpdir());
    const char *b = tu_build_dir();
    cr_assert_eq(nu_sh("cd %s && for k in hint issuer release client; do %s/upgate-keys gen $k || exit 1; done", E.dir, b), 0);
    cr_assert_eq(nu_sh("mkdir %s/www && head -c 100000 /dev/urandom > %s/www/app.bin", E.dir, E.dir), 0);
    snprintf(E.pkg, sizeof E.pkg, "%s/www/app.bin", E.dir);
    char www[128];
    snprintf(www, sizeof www, "%s/www", E.dir);
    E.httpd = tu_httpd(www, &E.http_port);
    cr_assert_eq(nu_sh("cd %s && %s/upgate-keys release --key release.key --version 2.0.0 --file www/app.bin "
                    "--url http://127.0.0.1:%u/app.bin --ttl 86400 --out release.manifest",
                    E.dir, b, E.http_port), 0);
}

static void teardown(void)
{
    if (E.node)
        stop_node(SIGKILL);
    if (E.httpd) {
        kill(E.httpd, SIGTERM);
        waitpid(E.httpd, NULL, 0);
    }
}

TestSuite(e2e, .init = setup, .fini = teardown, .timeout = 120);

/* Runs upgate-peer for uid; returns its exit code, output in out. */
static int peer(uint64_t uid, const char *version, const char *extra, char *out, size_t cap)
{
    const char *b = tu_build_dir();
    char cmd[4096];
    if (nu_sh("cd %s && [ -f c%llu.cred ] || %s/upgate-keys cred --issuer issuer.key --uid %llu --pub client.pub "
           "--ttl 3600 --out c%llu.cred", E.dir, (unsigned long long)uid, b, (unsigned long long)uid,
           (unsigned long long)uid) != 0)
        cr_assert_fail("cannot issue a credential");
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/upgate-peer --tracker 127.0.0.1:%u --uid %llu --version %s --key client.key "
             "--cred c%llu.cred --hint-pub hint.pub --release-pub release.pub --timeout 10 %s </dev/null 2>&1",
             E.dir, b, E.port, (unsigned long long)uid, version, (unsigned long long)uid, extra);
    return tu_run(cmd, out, cap);
}

static bool same_file(const char *a, const char *b)
{
    return nu_sh("cmp -s %s %s", a, b) == 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

Test(e2e, offered_peer_downloads_and_verifies)
{
    write_policy("stages:\n  - {name: all, quota: 10}\n");
    start_node();
    char out[4096], dst[128];
    snprintf(dst, sizeof dst, "%s/got.bin", E.dir);
    int rc = peer(1, "1.4.0", "--yes --out got.bin", out, sizeof out);
    cr_assert_eq(rc, 0, "peer failed: %s", out);
    cr_assert(same_file(dst, E.pkg), "downloaded file differs from the package");
    /* the node holds the hint key: no core dump may carry it */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "grep -E '^Max core file size +0 +0 ' /proc/%d/limits", (int)E.node);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0, "core dumps disabled in the running node");
    cr_assert_eq(stop_node(SIGTERM), 0, "clean stop exits 0");
}

Test(e2e, declined_offer_downloads_nothing)
{
    write_policy("stages:\n  - {name: all}\n");
    start_node();
    char out[4096], dst[128];
    snprintf(dst, sizeof dst, "%s/got.bin", E.dir);
    cr_assert_eq(peer(1, "1.4.0", "--no --out got.bin", out, sizeof out), 0, "%s", out);
    cr_assert(!exists(dst), "declined, yet a file exists");
    cr_assert(strstr(out, "1.4.0"), "says it keeps the current version: %s", out);
    /* no answer on stdin counts as no */
    cr_assert_eq(peer(1, "1.4.0", "--out got.bin", out, sizeof out), 0, "%s", out);
    cr_assert(!exists(dst));
}

Test(e2e, wait_is_reported)
{
    write_policy("stages:\n  - {name: canary, uids: [99]}\n");
    start_node();
    char out[4096];
    cr_assert_eq(peer(1, "1.4.0", "--yes --out got.bin", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "not selected"), "reason in words: %s", out);
    cr_assert(strstr(out, "120") || strstr(out, "1"), "retry time: %s", out);
    cr_assert_eq(peer(1, "1.9", "--yes --out got.bin", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "not being upgraded") || strstr(out, "not targeted"), "untargeted: %s", out);
}

Test(e2e, tampered_package_is_discarded)
{
    write_policy("stages:\n  - {name: all}\n");
    start_node();
    /* one byte flipped, whatever it held (writing a fixed byte left the
     * package intact when it already held that byte) */
    FILE *f = fopen(E.pkg, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 500, SEEK_SET), 0);
    int byte = fgetc(f);
    cr_assert_neq(byte, EOF);
    cr_assert_eq(fseek(f, 500, SEEK_SET), 0);
    cr_assert_neq(fputc(byte ^ 0xff, f), EOF);
    cr_assert_eq(fclose(f), 0);
    char out[4096], dst[128];
    snprintf(dst, sizeof dst, "%s/got.bin", E.dir);
    int rc = peer(1, "1.4.0", "--yes --out got.bin", out, sizeof out);
    cr_assert_neq(rc, 0, "a tampered package must fail: %s", out);
    cr_assert(!exists(dst), "tampered package kept");
    cr_assert_neq(nu_sh("ls -a %s | grep -q -i tmp", E.dir), 0, "no temporary file left behind");
}

Test(e2e, restart_keeps_grants)
{
    write_policy("stages:\n  - {name: q, quota: 1}\n");
    start_node();
    char out[4096];
    cr_assert_eq(peer(1, "1.4.0", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "2.0.0"), "offered: %s", out);
    cr_assert_eq(stop_node(SIGTERM), 0);
    start_node();
    cr_assert_eq(peer(2, "1.4.0", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "quota"), "quota spent before the restart: %s", out);
    cr_assert_eq(peer(1, "1.4.0", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "2.0.0"), "still offered after the restart: %s", out);
}

Test(e2e, sighup_reload_and_bad_policy_survived)
{
    write_policy("stages:\n  - {name: canary, uids: [99]}\n");
    start_node();
    char out[4096];
    cr_assert_eq(peer(1, "1.4.0", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "not selected"), "%s", out);
    write_policy("stages:\n  - {name: canary, uids: [1, 99]}\n");
    kill(E.node, SIGHUP);
    nu_sleep_ms(300);
    cr_assert_eq(peer(1, "1.4.0", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "2.0.0"), "new policy in force: %s", out);
    write_policy("stages:\n  - {name: canary, uids: [1, 99], bogus: 1}\n");
    kill(E.node, SIGHUP);
    nu_sleep_ms(300);
    cr_assert_eq(kill(E.node, 0), 0, "node survived a bad policy");
    cr_assert_eq(peer(1, "1.4.0", "--no", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "2.0.0"), "the good policy stays: %s", out);
    cr_assert_eq(stop_node(SIGINT), 0);
}

Test(e2e, node_refuses_bad_usage_and_bad_policy)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "%s/upgate-node --listen 127.0.0.1:0 2>&1", tu_build_dir());
    cr_assert_eq(tu_run(cmd, out, sizeof out), 2, "%s", out);
    write_policy("stages:\n  - {name: Bad_Name}\n");
    snprintf(cmd, sizeof cmd, "%s/upgate-node --listen 127.0.0.1:0 --plugin %s/upgate.so --policy %s/policy.yaml 2>&1",
             tu_build_dir(), tu_build_dir(), E.dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "policy.yaml:") && strstr(out, "name"), "names file, line and key: %s", out);
    snprintf(cmd, sizeof cmd, "%s/upgate-node --listen 127.0.0.1:0 --plugin /bin/true --policy x 2>&1", tu_build_dir());
    cr_assert_eq(tu_run(cmd, out, sizeof out), 1, "%s", out);
}

/* A plugin built for another ABI major is refused before anything runs. */
Test(e2e, node_refuses_other_abi_major)
{
    char src[128], cmd[2048], out[4096];
    snprintf(src, sizeof src, "%s/abi2.c", E.dir);
    static const char text[] = "#include \"upgate_plugin.h\"\n"
                               "__attribute__((visibility(\"default\"))) const ug_plugin upgate_plugin = "
                               "{.abi_major = UG_PLUGIN_ABI_MAJOR + 1, .size = sizeof(ug_plugin)};\n";
    tu_write_file(src, text, sizeof text - 1);
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -I%s/plugin -o %s/abi2.so %s", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".",
             E.dir, src);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0, "cannot build the fake plugin");
    write_policy("stages:\n  - {name: all}\n");
    snprintf(cmd, sizeof cmd, "%s/upgate-node --listen 127.0.0.1:0 --plugin %s/abi2.so --policy %s/policy.yaml 2>&1",
             tu_build_dir(), E.dir, E.dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "ABI 2.0") && strstr(out, "speaks 1"), "says which ABI: %s", out);
}

/* Sends n hostile datagrams to the node: random bytes of every size around
 * the limits, and truncated or bit-flipped copies of a real HELLO. */
static void flood(unsigned n, const uint8_t *hello, size_t hello_len)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)E.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    uint8_t buf[1300];
    for (unsigned i = 0; i < n; i++) {
        size_t len;
        switch (i % 4) {
        case 0: /* random junk, sizes 0..1299 */
            len = randombytes_uniform(sizeof buf);
            randombytes_buf(buf, len);
            break;
        case 1: /* the upgate prefix, then junk */
            len = 5 + randombytes_uniform(sizeof buf - 5);
            randombytes_buf(buf, len);
            memcpy(buf, "\x95\xa2UG\x01", 5);
            break;
        case 2: /* a real HELLO cut short */
            len = randombytes_uniform((uint32_t)hello_len);
            memcpy(buf, hello, len);
            break;
        default: /* a real HELLO with one bit flipped */
            len = hello_len;
            memcpy(buf, hello, len);
            buf[randombytes_uniform((uint32_t)len)] ^= (uint8_t)(1u << randombytes_uniform(8));
            break;
        }
        (void)sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof to);
        if (i % 256 == 255)
            nu_sleep_ms(1); /* bounded rate: about 100k a second at most */
    }
    close(fd);
}

Test(e2e, flood_of_garbage_while_honest_peers_are_served)
{
    write_policy("stages:\n  - {name: all, quota: 1000}\n");
    start_node();
    char out[4096];
    /* a genuine HELLO to mutate: capture one from the peer's own code path */
    uint8_t sk[UG_SK_LEN], pk[UG_PK_LEN], hello[UG_DGRAM_MAX];
    crypto_sign_keypair(pk, sk);
    ug_hello_fields h = {.uid = 5, .ver = "1.4.0", .ts = (uint64_t)time(NULL), .cred = (const uint8_t *)"\x92\xc4\x00\xc4\x40",
                         .cred_len = 5};
    size_t hello_len;
    cr_assert_eq(ug_hello_build(hello, sizeof hello, &hello_len, &h, 1232, sk), 0);
    pid_t flooder = fork();
    if (flooder == 0) {
        flood(60000, hello, hello_len);
        _exit(0);
    }
    for (uint64_t uid = 1; uid <= 6; uid++) {
        int rc = peer(uid, "1.4.0", "--no --tries 8", out, sizeof out);
        cr_assert_eq(rc, 0, "honest peer %llu not served during the flood: %s", (unsigned long long)uid, out);
        cr_assert(strstr(out, "2.0.0"), "offered: %s", out);
    }
    int st;
    cr_assert_eq(waitpid(flooder, &st, 0), flooder);
    cr_assert_eq(kill(E.node, 0), 0, "node still up");
    cr_assert_eq(peer(7, "1.4.0", "--no", out, sizeof out), 0, "served after the flood: %s", out);
    /* the node saw the flood and counted it as drops, by reason */
    kill(E.node, SIGUSR1);
    char line[4096];
    size_t got = 0;
    while (got < sizeof line - 1 && read(E.node_out, line + got, 1) == 1 && line[got] != '\n')
        got++;
    line[got] = 0;
    const char *rx = strstr(line, "node_received=");
    cr_assert(rx && strtoull(rx + 14, NULL, 10) > 10000, "flood received: %s", line);
    cr_assert(strstr(line, "drop_msgpack=") && strstr(line, "node_foreign_dropped="), "drops counted: %s", line);
    cr_assert(strstr(line, "hints_new=7 "), "seven honest first offers: %s", line);
    cr_assert_eq(stop_node(SIGTERM), 0, "clean exit after the flood");
}

/* ---- outcomes: what the peers did, as the tracker learns it -------------- */

/* The running node's status over its control socket (default path). */
static json_t *status(void)
{
    char sock[160], *out = malloc(1 << 20);
    cr_assert_not_null(out);
    snprintf(sock, sizeof sock, "%s/state/upgate.ctl", E.dir);
    long n = nu_ctl(sock, "{\"cmd\":\"status\"}\n", 17, false, out, 1 << 20);
    cr_assert_gt(n, 0, "no status from %s", sock);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j && json_is_true(json_object_get(j, "ok")), "%.300s", out);
    free(out);
    return j;
}

static json_t *rollout0(json_t *st)
{
    return json_array_get(json_object_get(st, "rollouts"), 0);
}

static json_int_t stage_outcome(json_t *st, const char *key)
{
    json_t *s = json_array_get(json_object_get(rollout0(st), "stages"), 0);
    return json_integer_value(json_object_get(json_object_get(s, "outcomes"), key));
}

/* Polls the node (REPORTs are handled as they arrive) until key reaches want,
 * for at most 5 s. */
static void await_outcome(const char *key, json_int_t want)
{
    json_int_t got = -1;
    for (int i = 0; i < 100 && got != want; i++) {
        json_t *st = status();
        got = stage_outcome(st, key);
        json_decref(st);
        if (got != want)
            nu_sleep_ms(50);
    }
    cr_assert_eq(got, want, "outcome %s: %lld, want %lld", key, (long long)got, (long long)want);
}

Test(e2e, outcomes_of_real_peers)
{
    write_policy("stages:\n  - {name: all}\n");
    start_node();
    char out[4096];
    /* 1 installs, then logs in at 2.0.0 */
    cr_assert_eq(peer(1, "1.4.0", "--yes --out got1.bin --state s1", out, sizeof out), 0, "%s", out);
    await_outcome("upgraded", 1);
    cr_assert_eq(peer(1, "2.0.0", "--yes --state s1", out, sizeof out), 0, "%s", out);
    /* 2 declines */
    cr_assert_eq(peer(2, "1.4.0", "--no", out, sizeof out), 0, "%s", out);
    await_outcome("declined", 1);
    /* 3 installs, then finds itself back at 1.4.0: it reports the rollback,
     * and its next HELLO at 1.4.0 says the same. The operator paused the
     * rollout meanwhile, so nothing is offered again: were it offered and
     * declined, that later word would replace the rollback (rule 11). */
    cr_assert_eq(peer(3, "1.4.0", "--yes --out got3.bin --state s3", out, sizeof out), 0, "%s", out);
    await_outcome("upgraded", 2);
    char sock[160];
    snprintf(sock, sizeof sock, "%s/state/upgate.ctl", E.dir);
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"pause\",\"all\":true}\n", 28, false, out, sizeof out), 0);
    cr_assert_eq(peer(3, "1.4.0", "--no --state s3", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "rollback reported"), "%s", out);
    await_outcome("rolled_back", 1);
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"resume\",\"all\":true}\n", 29, false, out, sizeof out), 0);
    /* 4 receives a tampered package */
    cr_assert_eq(nu_sh("cp %s %s.good && printf x | dd of=%s bs=1 seek=500 conv=notrunc 2>/dev/null", E.pkg, E.pkg,
                       E.pkg), 0);
    cr_assert_neq(peer(4, "1.4.0", "--yes --out got4.bin", out, sizeof out), 0, "%s", out);
    await_outcome("failed", 2);
    json_t *st = status();
    json_t *by = json_object_get(json_object_get(json_array_get(json_object_get(rollout0(st), "stages"), 0),
                                                 "outcomes"), "failed_by");
    cr_expect_eq(json_integer_value(json_object_get(by, "mismatch")), 1);
    cr_expect_eq(json_integer_value(json_object_get(by, "rolled_back")), 1);
    cr_expect_eq(stage_outcome(st, "upgraded"), 1);
    cr_expect_eq(stage_outcome(st, "pending"), 0);
    json_decref(st);
    cr_assert_eq(stop_node(SIGTERM), 0);
    start_node();
    st = status();
    cr_expect_eq(stage_outcome(st, "rolled_back"), 1, "outcomes survive a restart");
    cr_expect_eq(stage_outcome(st, "declined"), 1);
    json_decref(st);
}

/* A release whose peers roll back stops itself, and status says why. */
Test(e2e, a_rollout_whose_peers_roll_back_halts_itself)
{
    char path[128], text[1024];
    snprintf(path, sizeof path, "%s/policy.yaml", E.dir);
    int n = snprintf(text, sizeof text,
                     "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nretry: 120\n"
                     "rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
                     "    halt_when: {rolled_back: 0.3, min_outcomes: 3}\n    stages:\n      - {name: all}\n");
    tu_write_file(path, text, (size_t)n);
    start_node();
    char out[4096], opt[64];
    for (int uid = 1; uid <= 3; uid++) {
        snprintf(opt, sizeof opt, "--yes --out got%d.bin --state s%d", uid, uid);
        cr_assert_eq(peer((uint64_t)uid, "1.4.0", opt, out, sizeof out), 0, "%s", out);
    }
    await_outcome("upgraded", 3);
    /* one of three rolls back: 33% >= 30% of 3 known outcomes */
    cr_assert_eq(peer(2, "1.4.0", "--no --state s2", out, sizeof out), 0, "%s", out);
    json_t *st = NULL;
    bool halted = false;
    for (int i = 0; i < 100 && !halted; i++) {
        json_decref(st);
        st = status();
        halted = json_is_true(json_object_get(rollout0(st), "halted"));
        if (!halted)
            nu_sleep_ms(50);
    }
    cr_assert(halted, "the rollout did not halt itself");
    const char *why = json_string_value(json_object_get(rollout0(st), "halted_why"));
    cr_expect(why && strstr(why, "automatic") && strstr(why, "rolled-back share"), "%s", why ? why : "(none)");
    json_decref(st);
    cr_assert_eq(peer(9, "1.4.0", "--yes", out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "paused") || strstr(out, "halt"), "a new peer is told to wait: %s", out);
}

/* Two nodes on one state folder would each grant the whole quota: the
 * second is refused at start, naming the first. */
Test(e2e, a_second_node_on_the_same_state_is_refused)
{
    write_policy("stages:\n  - {name: q, quota: 100}\n");
    start_node();
    char node[512], so[512], policy[128], cmd[2048], out[4096], want[64];
    snprintf(node, sizeof node, "%s/upgate-node", tu_build_dir());
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    snprintf(policy, sizeof policy, "%s/policy.yaml", E.dir);
    snprintf(cmd, sizeof cmd, "%s --listen 127.0.0.1:0 --plugin %s --policy %s --control %s/other.ctl 2>&1", node,
             so, policy, E.dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 1, "the second node ran: %s", out);
    snprintf(want, sizeof want, "in use by pid %d", (int)E.node);
    cr_expect(strstr(out, want) && strstr(out, "upgate.lock"), "%s", out);
    cr_assert_eq(stop_node(SIGTERM), 0, "the first node is undisturbed");
}
