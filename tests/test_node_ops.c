/* upgate-node for operators: --metrics, sd_notify, log line format, --version, finish() at stop. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "nodeutil.h"
#include "testutil.h"

static nu_node N;

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(node_ops, .fini = teardown, .timeout = 120);

static unsigned metrics_port(void)
{
    const char *m = strstr(N.ready, "metrics on 127.0.0.1:");
    cr_assert(m, "ready line names the metrics port: %s", N.ready);
    unsigned port = (unsigned)strtoul(m + 21, NULL, 10);
    cr_assert_gt(port, 0);
    return port;
}

/* curl's HTTP status for METHOD on path. */
static int http_status(unsigned port, const char *method, const char *path)
{
    char cmd[512], out[64];
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' -X %s http://127.0.0.1:%u%s", method, port, path);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "curl failed");
    return atoi(out);
}

/* Scrapes /metrics and parses it with prometheus_client; the families must
 * include every one of names (space separated). */
static void scrape_and_parse(unsigned port, const char *names)
{
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "curl -sf -D %s/headers http://127.0.0.1:%u/metrics > %s/metrics.txt && /usr/bin/python3 -c '\n"
             "import sys\n"
             "from prometheus_client.parser import text_string_to_metric_families as parse\n"
             "fams = {f.name: f for f in parse(open(sys.argv[1]).read())}\n"
             "missing = [n for n in sys.argv[2].split() if n not in fams]\n"
             "assert not missing, missing\n"
             "rx = [s.value for s in fams[\"upgate_node_received\"].samples]\n"
             "assert rx and rx[0] >= 3, rx\n"
             "cls = sorted(s.labels[\"class\"] for s in fams[\"upgate_node_send_errors\"].samples)\n"
             "assert cls == [\"busy\", \"denied\", \"other\", \"unreachable\"], cls\n"
             "print(\"ok\", len(fams))' %s/metrics.txt '%s' 2>&1",
             N.dir, port, N.dir, N.dir, names);
    int rc = tu_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "scrape and parse: %s", out);
    snprintf(cmd, sizeof cmd, "grep -i '^content-type: text/plain; version=0.0.4' %s/headers", N.dir);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0, "Prometheus content type");
}

static void send_junk(unsigned port, int n)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(0x7f000001)};
    for (int i = 0; i < n; i++)
        sendto(fd, "junk", 4, 0, (struct sockaddr *)&to, sizeof to);
    close(fd);
}

Test(node_ops, metrics_serves_the_node_counters)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *extra[] = {"--metrics", "127.0.0.1:0", NULL};
    nu_start(&N, extra, NULL);
    unsigned port = metrics_port();
    send_junk(N.port, 3);
    nu_sleep_ms(200);
    scrape_and_parse(port, "upgate_node_received upgate_node_sent upgate_node_send_errors "
                           "upgate_node_replies_held_back upgate_node_plugin_drops upgate_node_info");
    cr_assert_eq(http_status(port, "GET", "/"), 404);
    cr_assert_eq(http_status(port, "GET", "/metricsx"), 404);
    cr_assert_eq(http_status(port, "POST", "/metrics"), 405);
    cr_assert_eq(http_status(port, "DELETE", "/metrics"), 405);
    char cmd[512], out[4096];
    snprintf(cmd, sizeof cmd, "curl -s -I -o /dev/null -w '%%{http_code}' http://127.0.0.1:%u/metrics", port);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0);
    cr_assert_eq(atoi(out), 200, "HEAD /metrics: %s", out);
    nu_stderr(&N, out, sizeof out);
    cr_assert_null(strstr(out, "EXTERNAL_LOGGER"), "a libmicrohttpd warning at start: %s", out);
    if (NU_REAL_HAS(control)) /* the plugin's own families come first */
        scrape_and_parse(port, "upgate_node_received");
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* REPORTs are never answered, by design: counted as reports, not as the
 * plugin's drops (issue 20 §4); an upgate datagram the plugin refuses is. */
Test(node_ops, reports_are_not_counted_as_drops)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    nu_start(&N, NULL, NULL);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)N.port),
                             .sin_addr.s_addr = htonl(0x7f000001)};
    /* [ "UG", v, type, bin 0, nil ]: a REPORT of each version, and a HELLO, none of them valid */
    static const uint8_t report1[] = {0x95, 0xa2, 0x55, 0x47, 0x01, 0x05, 0xc4, 0x00, 0xc0};
    static const uint8_t report2[] = {0x95, 0xa2, 0x55, 0x47, 0x02, 0x05, 0xc4, 0x00, 0xc0};
    static const uint8_t hello[] = {0x95, 0xa2, 0x55, 0x47, 0x01, 0x01, 0xc4, 0x00, 0xc0};
    for (int i = 0; i < 3; i++) {
        sendto(fd, report1, sizeof report1, 0, (struct sockaddr *)&to, sizeof to);
        sendto(fd, report2, sizeof report2, 0, (struct sockaddr *)&to, sizeof to);
    }
    sendto(fd, hello, sizeof hello, 0, (struct sockaddr *)&to, sizeof to);
    close(fd);
    char line[4096];
    for (int i = 0; i < 50; i++) { /* until all seven are in */
        nu_stats(&N, line, sizeof line);
        if (nu_stat(line, "node_reports") + nu_stat(line, "node_plugin_drops") >= 7)
            break;
        nu_sleep_ms(50);
    }
    cr_assert_eq(nu_stat(line, "node_reports"), 6, "%s", line);
    cr_assert_eq(nu_stat(line, "node_plugin_drops"), 1, "%s", line);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

Test(node_ops, metrics_include_the_plugins_reply)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    const char *extra[] = {"--metrics", "127.0.0.1:0", "--plugin", so, NULL};
    nu_start(&N, extra, NULL);
    send_junk(N.port, 3);
    nu_sleep_ms(200);
    scrape_and_parse(metrics_port(), "hostplug_controls upgate_node_received upgate_node_sent");
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

Test(node_ops, metrics_address_in_use_is_a_start_error)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t l = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    char addr[64], err[4096];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", ntohs(a.sin_port));
    const char *extra[] = {"--metrics", addr, NULL};
    cr_assert_eq(nu_start_fails(&N, extra, NULL, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, addr), "names the address: %s", err);
    close(fd);
}

/* A datagram socket standing in for systemd's notify socket. */
static int notify_socket(char *path, size_t cap)
{
    snprintf(path, cap, "%s/notify.sock", N.dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(path), sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void expect_notify(int fd, const char *what)
{
    char msg[1024];
    ssize_t k = recv(fd, msg, sizeof msg - 1, 0);
    cr_assert_gt(k, 0, "a notification with %s", what);
    msg[k] = 0;
    cr_assert(strstr(msg, what), "expected %s in: %s", what, msg);
}

Test(node_ops, sd_notify_ready_reloading_stopping)
{
#ifndef HAVE_SYSTEMD
    cr_skip_test("built without libsystemd (libsystemd-dev): sd_notify is a no-op");
#endif
    nu_init(&N, "stages:\n  - {name: all}\n");
    char path[256], env[300];
    int fd = notify_socket(path, sizeof path);
    snprintf(env, sizeof env, "NOTIFY_SOCKET=%s", path);
    const char *envs[] = {env, NULL};
    nu_start(&N, NULL, envs);
    expect_notify(fd, "READY=1");
    kill(N.pid, SIGHUP);
    expect_notify(fd, "RELOADING=1");
    expect_notify(fd, "READY=1");
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    expect_notify(fd, "STOPPING=1");
    close(fd);
}

static void assert_every_line_matches(const char *text, const char *pattern)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    char copy[16384];
    snprintf(copy, sizeof copy, "%s", text);
    int lines = 0;
    for (char *save, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++)
        cr_assert_eq(regexec(&re, l, 0, NULL, 0), 0, "line does not match %s: %s", pattern, l);
    cr_assert_gt(lines, 0);
    regfree(&re);
}

/* The stand-in plugin logs a message with a newline in it: still one line. */
Test(node_ops, log_lines_carry_time_and_level)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    const char *extra[] = {"--plugin", so, NULL};
    nu_start(&N, extra, NULL);
    kill(N.pid, SIGHUP);
    nu_sleep_ms(200);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    char err[16384];
    nu_stderr(&N, err, sizeof err);
    assert_every_line_matches(err, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                                   "(error|warning|info|debug) upgate-node: .+$");
    cr_assert(strstr(err, " info upgate-node: hostplug: loaded with a newline"), "plugin line: %s", err);
    cr_assert(strstr(err, " info upgate-node: hostplug: reloaded"), "the plugin says it reloaded: %s", err);
    cr_assert(!strstr(err, "SIGHUP: policy reloaded"), "and the node does not say it again: %s", err);
    cr_assert(strstr(err, " info upgate-node: stopped; every grant is on disk"), "%s", err);
}

Test(node_ops, journald_lines_carry_a_syslog_level_and_no_time)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    const char *extra[] = {"--plugin", so, "--control", nu_path(&N, "c.sock"), NULL};
    const char *env[] = {"JOURNAL_STREAM=8:12345", NULL};
    nu_start(&N, extra, env);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    /* a start error goes the same way, at level 3 */
    nu_node second = N;
    second.pid = 0;
    nu_plug_policy(&N, "invalid=1\n");
    char err[16384];
    cr_assert_eq(nu_start_fails(&second, extra, env, err, sizeof err), 1);
    char all[16384];
    snprintf(all, sizeof all, "%s", err);
    assert_every_line_matches(all, "^<[3467]>upgate-node: .+$");
    cr_assert(strstr(all, "<3>upgate-node: ") && strstr(all, "refused on purpose"), "%s", all);
}

Test(node_ops, version_of_every_program)
{
    static const char *const progs[] = {"upgate-node", "upgate-keys", "upgate-peer"};
    for (int i = 0; i < 3; i++) {
        char cmd[512], out[256], want[256];
        snprintf(cmd, sizeof cmd, "%s/%s --version", tu_build_dir(), progs[i]);
        cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", progs[i]);
        snprintf(want, sizeof want, "%s %s (plugin ABI %u.%u)\n", progs[i], UG_VERSION, UG_PLUGIN_ABI_MAJOR,
                 UG_PLUGIN_ABI_MINOR);
        cr_assert_str_eq(out, want);
    }
    /* the plugin carries the same version */
    cr_assert_str_eq(nu_real_plugin()->version, UG_VERSION);
}

Test(node_ops, finish_failure_is_an_error_exit)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "fail_finish=1\n");
    const char *extra[] = {"--plugin", so, NULL};
    nu_start(&N, extra, NULL);
    cr_assert_eq(nu_stop(&N, SIGTERM), 1, "a grant not on disk is a failed stop");
    char err[8192];
    nu_stderr(&N, err, sizeof err);
    cr_assert(strstr(err, "error upgate-node: stopped, but not every grant is on disk: state/grants.mdb: disk on "
                          "fire"),
              "%s", err);
    cr_assert_null(strstr(err, "every grant is on disk\n"), "%s", err);
}

Test(node_ops, abi_1_0_plugin_stops_as_before)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "old", "-DMINOR0");
    nu_plug_policy(&N, "fail_finish=1\n"); /* no finish(): not asked */
    const char *extra[] = {"--plugin", so, NULL};
    nu_start(&N, extra, NULL);
    cr_assert_eq(nu_stop(&N, SIGINT), 0);
    char err[8192];
    nu_stderr(&N, err, sizeof err);
    cr_assert(strstr(err, "stopped; every grant is on disk"), "%s", err);
}

/* --user NAME (started as root): the node becomes NAME after create() and
 * the binds, as the hosts in contrib/ do; its folder is 0700 and its hint
 * key 0600, both root's, yet a reload after an editor replaced the policy
 * takes effect (upgate's opener, forked at create(), keeps root). */
Test(node_ops, user_drops_privileges_and_a_reload_still_takes_effect)
{
    if (geteuid() != 0)
        cr_skip_test("only root can switch users");
    nu_init(&N, "stages:\n  - {name: first}\n");
    const char *extra[] = {"--user", "nobody", NULL};
    nu_start(&N, extra, NULL);
    char cmd[256], out[8192];
    snprintf(cmd, sizeof cmd, "awk '/^Uid:/ {print $3}' /proc/%d/status; pgrep -P %d -x upgate-opener | wc -l",
             (int)N.pid, (int)N.pid);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0);
    cr_assert_str_eq(out, "65534\n1\n", "runs as nobody, with one opener: %s", out);
    cr_assert_eq(nu_sh("sed -i 's/name: first/name: second/' %s", nu_path(&N, "policy.yaml")), 0);
    kill(N.pid, SIGHUP);
    bool seen = false;
    for (int i = 0; i < 100 && !seen; i++) {
        nu_sleep_ms(50);
        long n = nu_ctl(nu_path(&N, "state/upgate.ctl"), "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out);
        seen = n > 0 && strstr(out, "\"second\"");
    }
    char err[16384];
    nu_stderr(&N, err, sizeof err);
    cr_assert(seen, "the reloaded policy's stage: %s\n%s", out, err);
    cr_assert(strstr(err, "running as nobody"), "%s", err);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    nu_stderr(&N, err, sizeof err);
    cr_assert(strstr(err, "stopped; every grant is on disk"), "%s", err);
}

Test(node_ops, user_needs_a_known_user)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *extra[] = {"--user", "no-such-user-here", NULL};
    char err[4096];
    cr_assert_eq(nu_start_fails(&N, extra, NULL, err, sizeof err), 2);
    cr_assert(strstr(err, "--user no-such-user-here: no such user"), "%s", err);
}

/* One GET /metrics on a fresh connection, waiting up to 1 s for the status
 * line: true when it is 200. */
static bool honest_scrape(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(0x7f000001)};
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char got[64] = {0};
    bool ok = connect(fd, (struct sockaddr *)&to, sizeof to) == 0 &&
              send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1) &&
              recv(fd, got, sizeof got - 1, MSG_WAITALL) > 0 && strncmp(got, "HTTP/1.1 200", 12) == 0;
    close(fd);
    return ok;
}

/* Issue 21 §4 /metrics slowloris: 64 clients attached, each dripping its
 * request a byte at a time; 7 honest scrapes in between are all answered
 * (before the fix: 0 of 7). */
Test(node_ops, metrics_slow_clients_leave_room_for_honest_scrapes)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *extra[] = {"--metrics", "127.0.0.1:0", NULL};
    nu_start(&N, extra, NULL);
    unsigned port = metrics_port();
    enum { SLOW = 64, HONEST = 7 };
    int fds[SLOW];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(0x7f000001)};
    for (int i = 0; i < SLOW; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&to, sizeof to), 0);
        send(fds[i], "GET /metrics HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
        nu_sleep_ms(5);
    }
    int answered = 0;
    for (int r = 0; r < HONEST; r++) {
        for (int i = 0; i < SLOW; i++)
            send(fds[i], "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT); /* each byte used to restart the idle timeout */
        nu_sleep_ms(300);
        answered += honest_scrape(port);
    }
    for (int i = 0; i < SLOW; i++)
        close(fds[i]);
    fprintf(stderr, "metrics slowloris: honest scrapes answered: %d of %d with %d slow clients attached\n", answered,
            HONEST, SLOW);
    cr_assert_eq(answered, HONEST, "honest scrapes answered: %d of %d", answered, HONEST);
    cr_assert_eq(kill(N.pid, 0), 0);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}
