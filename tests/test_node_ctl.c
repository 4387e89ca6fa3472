/* upgate-node's control socket: mode, stale and live sockets, hostile clients, replies streamed, fallbacks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "nodeutil.h"

static nu_node N;

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(node_ctl, .fini = teardown, .timeout = 120);

/* The reply's "ok" and "error" members; asserts it is one JSON object. */
static bool reply_ok(const char *reply, char *error, size_t cap)
{
    json_error_t e;
    json_t *j = json_loads(reply, 0, &e);
    cr_assert(json_is_object(j), "reply is one JSON object: %s (%s)", reply, e.text);
    const json_t *ok = json_object_get(j, "ok");
    cr_assert(json_is_boolean(ok), "reply has ok: %s", reply);
    if (error)
        snprintf(error, cap, "%s", json_string_value(json_object_get(j, "error")) ?: "");
    bool v = json_is_true(ok);
    json_decref(j);
    return v;
}

static void start_with_control(const char *plugin)
{
    const char *extra[] = {"--control", nu_path(&N, "ctl.sock"), plugin ? "--plugin" : NULL, plugin, NULL};
    nu_start(&N, extra, NULL);
}

Test(node_ctl, socket_is_private_and_removed_at_exit)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    start_with_control(NULL);
    struct stat st;
    cr_assert_eq(stat(nu_path(&N, "ctl.sock"), &st), 0, "socket served before the ready line");
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600, "mode 0600, got %o", st.st_mode & 0777);
    cr_assert(strstr(N.ready, "control "), "ready line names the socket: %s", N.ready);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    cr_assert_neq(stat(nu_path(&N, "ctl.sock"), &st), 0, "socket removed at a clean exit");
}

/* The current plugin may lack control(): the socket says so, in JSON. */
Test(node_ctl, plugin_without_control_is_said_so)
{
    if (NU_REAL_HAS(control))
        cr_skip_test("the plugin has control(): the fallback is tested with the ABI 1.0 stand-in");
    nu_init(&N, "stages:\n  - {name: all}\n");
    start_with_control(NULL);
    char out[4096], err[256];
    cr_assert_gt(nu_ctl(nu_path(&N, "ctl.sock"), "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(!reply_ok(out, err, sizeof err));
    cr_assert_str_eq(err, "plugin has no control");
}

Test(node_ctl, abi_1_0_plugin_gets_no_default_socket_and_a_clear_reply)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "old", "-DMINOR0");
    nu_write(nu_path(&N, "policy.yaml"), "state=/nonexistent\n");
    const char *extra[] = {"--plugin", so, NULL};
    nu_start(&N, extra, NULL);
    cr_assert_null(strstr(N.ready, "control"), "no control socket without control(): %s", N.ready);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    start_with_control(so);
    char out[4096], err[256];
    cr_assert_gt(nu_ctl(nu_path(&N, "ctl.sock"), "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(!reply_ok(out, err, sizeof err));
    cr_assert_str_eq(err, "plugin has no control");
}

Test(node_ctl, default_socket_in_the_state_folder_and_requests_reach_the_plugin)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    char policy[256];
    snprintf(policy, sizeof policy, "state=%s\n", N.dir);
    nu_write(nu_path(&N, "policy.yaml"), policy);
    const char *extra[] = {"--plugin", so, NULL};
    nu_start(&N, extra, NULL);
    cr_assert(strstr(N.ready, "upgate.ctl"), "default socket: %s", N.ready);
    char out[4096];
    cr_assert_gt(nu_ctl(nu_path(&N, "upgate.ctl"), "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(reply_ok(out, NULL, 0), "%s", out);
    cr_assert(strstr(out, "\"request_bytes\":16"), "the plugin got the line without its newline: %s", out);
    /* a refused command: the plugin's reply, as is */
    char err[256];
    cr_assert_gt(nu_ctl(nu_path(&N, "upgate.ctl"), "{\"cmd\":\"nope\"}\n", 15, false, out, sizeof out), 0);
    cr_assert(!reply_ok(out, err, sizeof err));
    cr_assert_str_eq(err, "unknown command");
    /* a last line without its newline, then end of input, is a request too */
    cr_assert_gt(nu_ctl(nu_path(&N, "upgate.ctl"), "{\"cmd\":\"status\"}", 16, true, out, sizeof out), 0);
    cr_assert(reply_ok(out, NULL, 0), "%s", out);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* Garbage, silence and a flood each get an error or a close; the next
 * client is served as usual. */
Test(node_ctl, hostile_clients_leave_the_node_serving)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    start_with_control(so);
    const char *sock = nu_path(&N, "ctl.sock");
    char out[8192], err[256];

    cr_assert_gt(nu_ctl(sock, "hello there\n", 12, false, out, sizeof out), 0);
    cr_assert(!reply_ok(out, err, sizeof err));
    cr_assert(strstr(err, "not one JSON object"), "%s", err);
    cr_assert_gt(nu_ctl(sock, "[1,2]\n", 6, false, out, sizeof out), 0);
    cr_assert(!reply_ok(out, err, sizeof err));
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"status\",\"cmd\":\"x\"}\n", 28, false, out, sizeof out), 0);
    cr_assert(!reply_ok(out, err, sizeof err), "duplicate keys refused: %s", out);

    /* nothing at all, then end of input */
    cr_assert_gt(nu_ctl(sock, "", 0, true, out, sizeof out), 0);
    cr_assert(!reply_ok(out, err, sizeof err));
    cr_assert(strstr(err, "empty"), "%s", err);

    /* silence: the node gives up after 5 s */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t k = recv(fd, out, sizeof out - 1, 0);
    cr_assert_gt(k, 0, "an error reply after the read timeout");
    out[k] = 0;
    cr_assert(strstr(out, "within 5 s"), "%s", out);
    close(fd);

    /* 1 MB without a newline */
    static char big[1 << 20];
    memset(big, 'a', sizeof big);
    long got = nu_ctl(sock, big, sizeof big, false, out, sizeof out);
    if (got > 0) {
        cr_assert(!reply_ok(out, err, sizeof err));
        cr_assert(strstr(err, "longer than 65536"), "%s", err);
    } /* else the node closed first: a close is a fair answer too */

    cr_assert_eq(kill(N.pid, 0), 0, "node still up");
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(reply_ok(out, NULL, 0), "served after the hostile ones: %s", out);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* An 8 MiB reply arrives whole; a client that never reads its reply holds
 * the thread for at most the write deadline. */
Test(node_ctl, big_replies_stream_and_a_stuck_reader_cannot_wedge_the_socket)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    start_with_control(so);
    const char *sock = nu_path(&N, "ctl.sock");
    static char out[9 << 20];
    long got = nu_ctl(sock, "{\"cmd\":\"big\"}\n", 14, false, out, sizeof out);
    cr_assert_eq(got, 18 + (128 << 16) + 2 + 1, "the whole reply and a newline: %ld bytes", got);
    cr_assert(reply_ok(out, NULL, 0));

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cr_assert_eq(send(fd, "{\"cmd\":\"big\"}\n", 14, 0), 14);
    /* never read: the next client waits for the deadline, then is served */
    char reply[4096];
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"status\"}\n", 17, false, reply, sizeof reply), 0);
    cr_assert(reply_ok(reply, NULL, 0), "%s", reply);
    close(fd);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

Test(node_ctl, stale_socket_replaced_live_one_refused)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    const char *sock = nu_path(&N, "ctl.sock");
    /* a stale socket file: bound, never listened on, closed */
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    start_with_control(NULL);
    char out[4096];
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0, "the new node answers");

    /* a second node, with a state folder of its own (one tracker per state
     * folder is the store's rule), pointed at the same socket */
    static nu_node second;
    nu_init(&second, "stages:\n  - {name: all}\n");
    const char *extra[] = {"--control", sock, NULL};
    char err[4096];
    cr_assert_eq(nu_start_fails(&second, extra, NULL, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, sock) && strstr(err, "another node"), "names the path: %s", err);
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0, "first node undisturbed");

    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    nu_write(sock, "not a socket\n");
    cr_assert_eq(nu_start_fails(&second, extra, NULL, err, sizeof err), 1, "%s", err);
    cr_assert(strstr(err, "not a socket"), "%s", err);
    struct stat st;
    cr_assert(stat(sock, &st) == 0 && S_ISREG(st.st_mode), "a file that is not a socket is left alone");
}

/* With the real plugin's control() (once it has one): status and reload
 * arrive through the socket. */
Test(node_ctl, real_plugin_status_and_reload)
{
    if (!NU_REAL_HAS(control))
        cr_skip_test("the plugin has no control() yet (ABI 1.0 table or NULL entry)");
    nu_init(&N, "stages:\n  - {name: all}\n");
    nu_start(&N, NULL, NULL);
    const char *sock = nu_path(&N, "state/upgate.ctl");
    cr_assert(strstr(N.ready, sock), "default socket in the state folder: %s", N.ready);
    char out[65536];
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(reply_ok(out, NULL, 0), "%s", out);
    cr_assert(strstr(out, "\"rollouts\""), "%s", out);
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"reload\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(reply_ok(out, NULL, 0), "%s", out);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* Issue 21 §4: 64 idle clients and 8 that drip their request a byte at a
 * time are all attached; another client's request is served at once, before
 * any of them has even reached its own read deadline. */
Test(node_ctl, idle_and_slow_clients_do_not_delay_another)
{
    nu_init(&N, "");
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    start_with_control(so);
    const char *sock = nu_path(&N, "ctl.sock");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    enum { IDLE = 64, SLOW = 8 };
    int fds[IDLE + SLOW];
    for (int i = 0; i < IDLE + SLOW; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0, "client %d attached: %s", i,
                     strerror(errno));
        if (i >= IDLE)
            cr_assert_eq(send(fds[i], "{", 1, MSG_NOSIGNAL), 1);
    }
    nu_sleep_ms(200);
    for (int i = IDLE; i < IDLE + SLOW; i++)
        cr_assert_eq(send(fds[i], "\"", 1, MSG_NOSIGNAL), 1, "a slow client drips another byte");
    char out[4096], err[256];
    cr_assert_gt(nu_ctl(sock, "{\"cmd\":\"status\"}\n", 17, false, out, sizeof out), 0);
    cr_assert(reply_ok(out, err, sizeof err), "%s", out);
    for (int i = 0; i < IDLE + SLOW; i++) {
        char b[256];
        errno = 0;
        cr_assert_eq(recv(fds[i], b, sizeof b, MSG_DONTWAIT), -1, "client %d still waits for its deadline", i);
        cr_assert_eq(errno, EAGAIN);
        close(fds[i]);
    }
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* Issue 21 §4: a control socket in a folder others can write is warned of at
 * start; one in a private folder is not. */
Test(node_ctl, a_socket_folder_others_can_write_is_warned_of)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    start_with_control(NULL);
    char err[8192];
    nu_stderr(&N, err, sizeof err);
    cr_assert_null(strstr(err, "writable by"), "a private folder: %s", err);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);

    char dir[] = "/tmp/ugctl-open.XXXXXX", sock[64];
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 01777), 0);
    snprintf(sock, sizeof sock, "%s/ctl.sock", dir);
    const char *extra[] = {"--control", sock, NULL};
    nu_start(&N, extra, NULL);
    nu_stderr(&N, err, sizeof err);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    rmdir(dir);
    cr_assert(strstr(err, "writable by everyone"), "warned: %s", err);
}
