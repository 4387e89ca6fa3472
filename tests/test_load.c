/* upgate-load against a real upgate-node for a second, so the bench's load generator does not rot. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "testutil.h"

static fx_t F;
static pid_t node;
static unsigned port;

/* upgate-node on 127.0.0.1:0 with F's policy; the port from its ready line. */
static void node_up(void)
{
    int out[2];
    cr_assert_eq(pipe(out), 0);
    char bin[1024], so[1024];
    snprintf(bin, sizeof bin, "%s/upgate-node", tu_build_dir());
    snprintf(so, sizeof so, "%s/upgate.so", tu_build_dir());
    node = fork();
    cr_assert_neq(node, -1);
    if (node == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(bin, bin, "--listen", "127.0.0.1:0", "--plugin", so, "--policy", fx_policy_path(&F), "--workers", "1",
              (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[512];
    cr_assert(f && fgets(line, sizeof line, f), "the node exited before it was ready");
    const char *at = strstr(line, "127.0.0.1:");
    cr_assert(at, "no address in the ready line: %s", line);
    port = (unsigned)strtoul(at + 10, NULL, 10);
    cr_assert_gt(port, 0);
    fclose(f);
}

static void setup(void)
{
    fx_init(&F, 1);
    fx_policy(&F, "targets: [\"1.4.0\"]\ncookie: never\nsource_budget: 0\nstages:\n"
                  "  - {name: one-percent, percent: 1, quota: 100000}\n");
    node_up();
}

static void teardown(void)
{
    if (node > 0) {
        kill(node, SIGKILL);
        waitpid(node, NULL, 0);
    }
    node = 0;
}

TestSuite(load, .init = setup, .fini = teardown, .timeout = 120);

/* Runs upgate-load with `args`; returns its exit status, stdout in out. */
static int load(const char *args, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/upgate-load --keys %s %s 2>&1", tu_build_dir(), F.dir, args);
    return tu_run(cmd, out, cap);
}

/* One --json run against the node: its counts, checked to add up. */
static json_t *load_json(const char *mix, const char *extra)
{
    char args[512], out[4096];
    snprintf(args, sizeof args, "--target 127.0.0.1:%u --pid %d --mix %s --seconds 1 --json %s", port, (int)node, mix,
             extra);
    cr_assert_eq(load(args, out, sizeof out), 0, "upgate-load %s: %s", args, out);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert(j, "not JSON: %s", out);
    json_int_t sent = json_integer_value(json_object_get(j, "sent"));
    json_int_t replies = json_integer_value(json_object_get(j, "replies"));
    json_int_t sum = 0;
    static const char *const types[] = {"hint", "wait", "cookie", "hello", "other"};
    for (size_t i = 0; i < 5; i++)
        sum += json_integer_value(json_object_get(j, types[i]));
    cr_assert_eq(sum, replies, "replies by type add up: %s", out);
    cr_assert_geq(sent, replies, "%s", out);
    cr_assert_gt(sent, 0, "%s", out);
    cr_assert(json_real_value(json_object_get(j, "server_cpu_s")) > 0, "the node's CPU was read: %s", out);
    return j;
}

static json_int_t field(json_t *j, const char *name)
{
    return json_integer_value(json_object_get(j, name));
}

Test(load, rollout_mix_gets_waits_and_hints)
{
    json_t *j = load_json("rollout", "--peers 2000 --warm --count 4000");
    cr_assert_gt(field(j, "replies"), 0);
    cr_assert_gt(field(j, "wait"), 0, "most of a 1%% rollout waits");
    cr_assert_eq(field(j, "lost"), 0);
    json_t *w = json_object_get(j, "warm");
    cr_assert_eq(json_integer_value(json_object_get(w, "replies")), 2000, "every peer warmed once");
    json_decref(j);
    j = load_json("returning", "--peers 2000 --count 2000");
    cr_assert_gt(field(j, "replies"), 0);
    cr_assert_eq(field(j, "hint"), 0, "returning peers are the ones the 1%% stage does not select");
    cr_assert_eq(field(j, "wait"), field(j, "replies"));
    json_decref(j);
}

Test(load, untargeted_waits_and_garbage_is_dropped)
{
    json_t *j = load_json("untargeted", "--peers 500");
    cr_assert_gt(field(j, "wait"), 0);
    cr_assert_eq(field(j, "wait"), field(j, "replies"));
    json_decref(j);
    j = load_json("garbage", "--peers 500");
    cr_assert_eq(field(j, "replies"), 0, "garbage is dropped in silence");
    json_decref(j);
}

Test(load, burst_gets_new_grants)
{
    json_t *j = load_json("burst", "--count 300");
    cr_assert_eq(field(j, "sent"), 300);
    cr_assert_eq(field(j, "replies"), 300);
    json_decref(j);
}

Test(load, sends_nowhere_but_loopback)
{
    char out[1024];
    cr_assert_eq(load("--target 192.0.2.1:9 --mix untargeted", out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "not a loopback address"), "%s", out);
    cr_assert_eq(load("--target example.net:9 --mix untargeted", out, sizeof out), 2, "%s", out);
    cr_assert_eq(load("--target [::ffff:127.0.0.1]:9 --mix untargeted", out, sizeof out), 2, "%s", out);
    cr_assert_eq(load("--target 127.0.0.1:9 --mix everything", out, sizeof out), 2, "%s", out);
    cr_assert_eq(load("--help", out, sizeof out), 0);
    cr_assert(strstr(out, "--target HOST:PORT"), "%s", out);
}

Test(load, says_when_nothing_answers)
{
    char args[256], out[1024]; /* a port nobody listens on */
    snprintf(args, sizeof args, "--target 127.0.0.1:%u --mix untargeted --peers 100 --seconds 1",
             tu_free_port(SOCK_DGRAM));
    cr_assert_eq(load(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "nothing answered"), "%s", out);
}
