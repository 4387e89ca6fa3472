/* The operator's journey (issue 20): install into a prefix, first run as upgate-node(8) says, a rollout with rollbacks, an automatic halt, resume, and who did what in the history; status of each step in BUILD/journey/. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "installutil.h"
#include "testutil.h"

/* What the test started, stopped by PID in teardown even when it failed. */
static struct {
    pid_t node, httpd;
    int out; /* read end of the node's stdout */
} R = {0, 0, -1};

static void teardown(void)
{
    if (R.node) {
        kill(R.node, SIGKILL);
        waitpid(R.node, NULL, 0);
    }
    if (R.httpd) {
        kill(R.httpd, SIGKILL);
        waitpid(R.httpd, NULL, 0);
    }
    if (R.out >= 0)
        close(R.out);
}

TestSuite(journey, .fini = teardown, .timeout = 120);

/* The installed tree: dir (the prefix's parent), etc/upgate, bin, sbin, the RuntimeDirectory. */
static char DIR_[256], ETC[300], BIN[300], SBIN[300], RUN[300];
static char OUT[OUT_MAX];
static unsigned STEP, PORT; /* the next step's number; the node's UDP port */

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000}, NULL);
}

/* The installed upgate-ctl, as an operator runs it: --policy, formatted ARGS; output in OUT. */
__attribute__((format(printf, 1, 2))) static int ctl(const char *fmt, ...)
{
    char args[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return iu_run(OUT, sizeof OUT, "RUNTIME_DIRECTORY='%s' '%s/upgate-ctl' --policy '%s/policy.yaml' %s 2>&1", RUN, SBIN,
                  ETC, args);
}

/* Writes text to BUILD/journey/NN-name.txt, for the note. */
static void keep(const char *name, const char *text)
{
    char path[600];
    iu_pathf(path, sizeof path, "%s/journey", tu_build_dir());
    (void)mkdir(path, 0755);
    iu_pathf(path, sizeof path, "%s/journey/%02u-%s.txt", tu_build_dir(), STEP++, name);
    FILE *f = fopen(path, "w");
    cr_assert(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* `upgate-ctl status` after a step: kept, and left in OUT. */
static const char *step(const char *name)
{
    cr_assert_eq(ctl("status"), 0, "status after %s: %s", name, OUT);
    keep(name, OUT);
    return OUT;
}

/* status --json: the first rollout (a new reference). */
static json_t *rollout(void)
{
    cr_assert_eq(ctl("--json status"), 0, "%s", OUT);
    json_t *j = json_loads(OUT, 0, NULL);
    json_t *r = json_incref(json_array_get(json_object_get(j, "rollouts"), 0));
    json_decref(j);
    cr_assert(json_is_object(r), "%s", OUT);
    return r;
}

static json_int_t halt_count(const json_t *r, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(r, "halt_when"), k));
}

/* upgate-peer of user uid at version ver with its --state file (version 1):
 * --yes takes an offer (downloads, verifies, reports installed); started
 * below the version its state remembers, it reports a rollback first. */
static int peer(const char *uid, const char *ver)
{
    return iu_run(OUT, sizeof OUT,
                  "cd '%s/pub' && { [ -f client%s.cred ] || '%s/upgate-keys' cred --issuer '%s/keys/issuer.key' "
                  "--uid %s --pub client.pub --ttl 86400 --out client%s.cred; } && "
                  "'%s/upgate-peer' --tracker 127.0.0.1:%u --uid %s --version %s --key client.key --cred client%s.cred "
                  "--hint-pub '%s/keys/hint.pub' --release-pub release.pub --state state%s --out got%s.tgz --yes "
                  "--timeout 10 </dev/null 2>&1",
                  DIR_, uid, BIN, ETC, uid, uid, BIN, PORT, uid, ver, uid, ETC, uid, uid);
}

/* Reads the node's ready line (10 s at most) and returns its UDP port. */
static unsigned ready_port(void)
{
    char line[1024];
    size_t got = 0;
    struct pollfd p = {.fd = R.out, .events = POLLIN};
    while (got + 1 < sizeof line && poll(&p, 1, 10000) > 0) {
        ssize_t n = read(R.out, line + got, 1);
        cr_assert_gt(n, 0, "the node exited before its ready line");
        if (line[got++] == '\n')
            break;
    }
    line[got] = 0;
    const char *at = strstr(line, "127.0.0.1:");
    cr_assert(strstr(line, "ready") && at, "no ready line: %s", line);
    return (unsigned)strtoul(at + 10, NULL, 10);
}

/* The installed node, by hand as upgate-node(8) says (the unit's command
 * without its --plugin: the node finds the plugin it was built for). */
static void start_node(void)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char node[400], policy[400], err[400];
    iu_pathf(node, sizeof node, "%s/upgate-node", SBIN);
    iu_pathf(policy, sizeof policy, "%s/policy.yaml", ETC);
    iu_pathf(err, sizeof err, "%s/node.err", DIR_);
    R.node = fork();
    cr_assert_neq(R.node, -1);
    if (R.node == 0) {
        dup2(p[1], 1);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (e >= 0)
            dup2(e, 2);
        setenv("RUNTIME_DIRECTORY", RUN, 1);
        execl(node, node, "--listen", "127.0.0.1:0", "--policy", policy, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    R.out = p[0];
    PORT = ready_port();
}

/* The operator's policy: the example's keys and state, one rollout with a
 * canary of named users and halt_when on rollbacks. */
static void write_policy(void)
{
    char state[512] = "";
    cr_assert_eq(iu_run(state, sizeof state, "sed -n 's/^state: *//p' '%s/policy.yaml.example'", ETC), 0);
    state[strcspn(state, "\n")] = 0;
    cr_assert(state[0] == '/', "the example's state: %s", state);
    char path[400];
    iu_pathf(path, sizeof path, "%s/policy.yaml", ETC);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f,
            "keys:\n  hint: keys/hint.key\n  issuers: [keys/issuer.pub]\nstate: %s\nretry: 5\n"
            "rollouts:\n  - name: app\n    release: releases/current.manifest\n    targets: [\"<2.0\"]\n"
            "    halt_when: {rolled_back: 0.3, min_outcomes: 4}\n"
            "    stages:\n      - name: canary\n        uids: [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008]\n",
            state);
    fclose(f);
    cr_assert_eq(iu_run(NULL, 0, "install -d -m 0750 '%s'", state), 0);
}

Test(journey, install_first_run_rollbacks_automatic_halt_resume_and_history)
{
    snprintf(DIR_, sizeof DIR_, "%s", tu_tmpdir());
    iu_prefix_install(DIR_);
    iu_pathf(ETC, sizeof ETC, "%s/etc/upgate", DIR_);
    iu_pathf(BIN, sizeof BIN, "%s/usr/bin", DIR_);
    iu_pathf(SBIN, sizeof SBIN, "%s/usr/sbin", DIR_);
    iu_pathf(RUN, sizeof RUN, "%s/run/upgate", DIR_);
    char pub[400];
    iu_pathf(pub, sizeof pub, "%s/pub", DIR_);
    cr_assert_eq(mkdir(pub, 0700), 0);
    unsigned mirror;
    R.httpd = tu_httpd(pub, &mirror);
    cr_assert_eq(iu_run(NULL, 0, "install -d -m 0755 '%s'", RUN), 0);

    /* FIRST RUN: keys, the release, the example copied and checked, then the operator's rollout */
    iu_first_run(DIR_, BIN, ETC, mirror);
    cr_assert_eq(iu_run(OUT, sizeof OUT, "cd '%s' && cp policy.yaml.example policy.yaml && '%s/upgate-node' --check "
                        "--policy policy.yaml 2>&1", ETC, SBIN), 0, "the example, checked: %s", OUT);
    write_policy();
    cr_assert_eq(iu_run(OUT, sizeof OUT, "cd '%s' && '%s/upgate-node' --check --policy policy.yaml 2>&1", ETC, SBIN),
                 0, "%s", OUT);
    start_node();
    const char *st = step("first-run");
    cr_assert(strstr(st, "rollout app: release 2.0.0") && !strstr(st, "HALTED"), "%s", st);

    /* five canaries upgrade, then two of them roll back */
    const char *uids[] = {"1001", "1002", "1003", "1004", "1005"};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(peer(uids[i], "1.4.0"), 0, "peer %s: %s", uids[i], OUT);
        cr_assert(strstr(OUT, "upgrade offered: version 1.4.0 -> 2.0.0"), "peer %s: %s", uids[i], OUT);
    }
    json_t *r = rollout();
    cr_assert_eq(halt_count(r, "known"), 5, "five installed: %s", OUT);
    json_decref(r);
    step("five-upgraded");
    cr_assert_eq(peer("1001", "1.4.0"), 0, "%s", OUT);
    cr_assert(strstr(OUT, "no upgrade now"), "a rollback is not offered the release again: %s", OUT);
    st = step("one-rollback");
    cr_assert(!strstr(st, "HALTED") && strstr(st, "halt_when: rolled back 20.0% of 5, halts at 30%"),
              "20%% is below 30%%: %s", st);
    cr_assert(strstr(st, "  outcomes: upgraded 4, rolled_back 1\n"), "a rollback is not also a failure: %s", st);

    /* the second rollback reaches halt_when (2 of 5): the plugin halts the rollout itself */
    cr_assert_eq(peer("1002", "1.4.0"), 0, "%s", OUT);
    bool halted = false;
    for (int i = 0; i < 60 && !halted; i++) {
        r = rollout();
        halted = json_is_true(json_object_get(r, "halted"));
        json_decref(r);
        if (!halted)
            sleep_ms(100);
    }
    cr_assert(halted, "halt_when: 2 rollbacks of 5 known: %s", OUT);
    st = step("automatic-halt");
    cr_assert(strstr(st, "HALTED: automatic: rolled-back share 40.00% (2 of 5 known outcomes)"),
              "status says the halt was automatic, and why: %s", st);
    cr_assert_eq(peer("1006", "1.4.0"), 0, "%s", OUT);
    cr_assert(strstr(OUT, "no upgrade now"), "halted: nobody is offered: %s", OUT);

    /* resume: halt_when counts afresh, from the resume on. Outcome times
     * are whole seconds and those of the resume's own second count as after
     * it, so resume a second after the failures, as an operator would. */
    time_t t0 = time(NULL);
    while (time(NULL) == t0)
        usleep(10000);
    cr_assert_eq(ctl("resume app --why 'mirror fixed, 2.0.0 repackaged'"), 0, "%s", OUT);
    cr_assert(strstr(OUT, "halt_when now judges only outcomes recorded from now on"), "%s", OUT);
    st = step("resumed");
    cr_assert(!strstr(st, "HALTED") && strstr(st, "rolled back 0.0% of 0, halts at 30%") &&
                  strstr(st, "counted since the resume"),
              "%s", st);
    cr_assert(!strstr(st, " 0 seconds"), "a time of this second reads 'now': %s", st);
    cr_assert_eq(peer("1006", "1.4.0"), 0, "%s", OUT);
    cr_assert(strstr(OUT, "upgrade offered"), "offered again after the resume: %s", OUT);
    cr_assert_eq(peer("1007", "1.4.0"), 0, "%s", OUT);
    r = rollout();
    cr_assert(!json_is_true(json_object_get(r, "halted")), "%s", OUT);
    cr_assert_eq(halt_count(r, "known"), 2, "only the outcomes since the resume count: %s", OUT);
    cr_assert_eq(halt_count(r, "rolled_back"), 0, "%s", OUT);
    json_decref(r);
    st = step("after-resume");
    cr_assert(!strstr(st, "HALTED") && strstr(st, "rolled back 0.0% of 2, halts at 30%"), "%s", st);

    /* the history says who did what */
    cr_assert_eq(ctl("history"), 0, "%s", OUT);
    keep("history", OUT);
    char by[64];
    snprintf(by, sizeof by, "host pid %d", (int)R.node);
    const char *start = strstr(OUT, "start: policy "), *autohalt = strstr(OUT, "  halt of rollout app: automatic: "),
               *resume = strstr(OUT, "resume rollout app (lifts its halt)");
    cr_assert(start && autohalt && resume && start < autohalt && autohalt < resume, "%s", OUT);
    cr_assert(strstr(OUT, by) && strstr(OUT, by) < start, "the node started itself: %s", OUT);
    const char *line = autohalt;
    while (line > OUT && line[-1] != '\n')
        line--;
    cr_assert(!strncmp(line + 20, "  automatic  ", 13), "by halt_when: %.120s", line);
    snprintf(by, sizeof by, "uid %u pid ", (unsigned)getuid());
    cr_assert(strstr(resume, "mirror fixed, 2.0.0 repackaged\n"), "the resume's why: %s", OUT);
    line = resume;
    while (line > OUT && line[-1] != '\n')
        line--;
    cr_assert(!strncmp(line + 22, by, strlen(by)), "by the operator's upgate-ctl: %.120s", line);

    kill(R.node, SIGTERM);
    int status;
    cr_assert_eq(waitpid(R.node, &status, 0), R.node);
    R.node = 0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a clean stop: %d", status);
}
