/* upgate-node's send path: a refused destination does not silence the rest
 * of a batch; after-flush replies wait for flush(), the others do not. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nodeutil.h"
#include "testutil.h"

static nu_node N;

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(node_send, .fini = teardown, .timeout = 120);

static int udp_from(const char *ip)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind %s: %s", ip, strerror(errno));
    return fd;
}

static void send_to_node(int fd, const void *buf, size_t len)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)N.port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    cr_assert_eq(sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)len);
}

/* Replies arriving on fd within ms after the first; their first bytes in got. */
static int replies(int fd, long ms, char *got, size_t cap)
{
    int n = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while ((size_t)n < cap - 1 && poll(&p, 1, (int)ms) == 1) {
        char buf[1500];
        if (recv(fd, buf, sizeof buf, 0) > 0)
            got[n++] = buf[1];
    }
    got[n] = 0;
    return n;
}

/* An unprivileged user and network namespace of our own (or just a network
 * one as root): its loopback, routing rules that refuse two sources. */
static void private_network(void)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWNET) != 0) {
        if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0)
            cr_skip_test("the kernel refuses a network namespace here (%s): cannot make a destination refuse",
                         strerror(errno));
        char map[64];
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        tu_write_file("/proc/self/uid_map", map, strlen(map));
        tu_write_file("/proc/self/setgroups", "deny", 4);
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        tu_write_file("/proc/self/gid_map", map, strlen(map));
    }
    /* the local table moves behind two rules: replies to 127.0.0.5 are
     * prohibited (EACCES), to 127.0.0.6 unreachable (ENETUNREACH) */
    int rc = nu_sh("ip link set lo up && ip rule del pref 0 && ip rule add pref 100 lookup local && "
                   "ip rule add pref 50 to 127.0.0.5 prohibit && ip rule add pref 51 to 127.0.0.6 unreachable");
    cr_assert_eq(rc, 0, "cannot set up the namespace's routing rules (iproute2)");
}

/* The node is stopped while the batch queues, so one recvmmsg sees it all:
 * refused replies first, in between, and last. */
Test(node_send, refused_destinations_do_not_silence_the_batch)
{
    private_network();
    nu_init(&N, "stages:\n  - {name: all}\n");
    nu_start(&N, NULL, NULL);
    int ok = udp_from("127.0.0.1"), denied = udp_from("127.0.0.5"), unreach = udp_from("127.0.0.6");
    uint8_t hello[UG_DGRAM_MAX];
    size_t len = nu_hello(hello, sizeof hello, 7, "1.9", NULL, NULL); /* untargeted: a WAIT */
    nu_pause(&N);
    int order[] = {denied, ok, unreach, denied, ok, unreach, denied, ok};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        send_to_node(order[i], hello, len);
    nu_sleep_ms(50);
    cr_assert_eq(kill(N.pid, SIGCONT), 0);
    char got[16];
    int nrep = replies(ok, 2000, got, sizeof got);
    char line[4096];
    nu_stats(&N, line, sizeof line);
    cr_assert_eq(nrep, 3, "every reply to the reachable peer arrives: %s", line);
    cr_assert_eq(nu_stat(line, "node_received"), 8, "%s", line);
    cr_assert_eq(nu_stat(line, "node_sent"), 3, "%s", line);
    cr_assert_eq(nu_stat(line, "node_send_errors"), 5, "%s", line);
    cr_assert_eq(nu_stat(line, "node_send_err_denied"), 3, "%s", line);
    cr_assert_eq(nu_stat(line, "node_send_err_unreachable"), 2, "%s", line);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* 'N' replies need no flush, 'L' ones do (the stand-in plugin's flags). */
static void batch_of_four(int fd)
{
    nu_pause(&N);
    send_to_node(fd, "LaLATE", 6);
    send_to_node(fd, "NbNOW", 5);
    send_to_node(fd, "LcLATE", 6);
    send_to_node(fd, "NdNOW", 5);
    nu_sleep_ms(50);
    cr_assert_eq(kill(N.pid, SIGCONT), 0);
}

static void start_plug(const char *cflags, const char *policy)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", cflags);
    nu_plug_policy(&N, policy);
    const char *extra[] = {"--plugin", so, NULL};
    nu_start(&N, extra, NULL);
}

Test(node_send, failed_flush_holds_back_only_after_flush_replies)
{
    start_plug("", "fail_flush=1\n");
    int fd = udp_from("127.0.0.1");
    batch_of_four(fd);
    char got[16];
    cr_assert_eq(replies(fd, 1000, got, sizeof got), 2);
    cr_assert_str_eq(got, "bd", "the replies that need no disk, and only those");
    char line[4096];
    nu_stats(&N, line, sizeof line);
    cr_assert_eq(nu_stat(line, "node_replies_held_back"), 2, "%s", line);
    cr_assert_eq(nu_stat(line, "node_flush_failures"), 1, "%s", line);
    cr_assert_eq(nu_stat(line, "node_sent"), 2, "%s", line);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

Test(node_send, flush_ok_sends_everything)
{
    start_plug("", "");
    int fd = udp_from("127.0.0.1");
    batch_of_four(fd);
    char got[16];
    cr_assert_eq(replies(fd, 1000, got, sizeof got), 4);
    cr_assert_str_eq(got, "bdac", "replies without the flag go out before the flush");
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

Test(node_send, abi_1_0_plugin_treats_every_reply_as_after_flush)
{
    start_plug("-DMINOR0", "fail_flush=1\n");
    int fd = udp_from("127.0.0.1");
    batch_of_four(fd);
    char got[16];
    cr_assert_eq(replies(fd, 1000, got, sizeof got), 0, "handle() replies all wait for the disk: %s", got);
    char line[4096];
    nu_stats(&N, line, sizeof line);
    cr_assert_eq(nu_stat(line, "node_replies_held_back"), 4, "%s", line);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}
