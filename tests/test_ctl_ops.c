/* upgate-ctl for operators: --policy finding the socket, trackers that are down or broken, big replies, metrics against status, the README's journey. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "nodeutil.h"
#include "testutil.h"

static nu_node N;
static pid_t FAKE;
static char OUT[1 << 20], ERR[16384];

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
    if (FAKE > 0) {
        kill(FAKE, SIGKILL);
        waitpid(FAKE, NULL, 0);
        FAKE = 0;
    }
}

TestSuite(ctl_ops, .fini = teardown, .timeout = 180);

/* build/upgate-ctl ARGS run by sh in dir: stdout in OUT, stderr in ERR. */
#define ctl_in(dir, ...) nu_upgate_ctl(&N, dir, OUT, sizeof OUT, ERR, sizeof ERR, __VA_ARGS__)
#define ctl(...) ctl_in(N.dir, __VA_ARGS__)

static void one_line(const char *what)
{
    cr_assert(ERR[0] && strchr(ERR, '\n') == ERR + strlen(ERR) - 1, "%s: one line on stderr, got: [%s]", what, ERR);
}

/* ---- --policy ----------------------------------------------------------------- */

Test(ctl_ops, policy_finds_the_default_socket_reading_only_up_to_state)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    nu_start(&N, NULL, NULL);
    cr_assert_eq(ctl_in("/", "--policy '%s/policy.yaml' status", N.dir), 0, "from another folder: %s", ERR);
    cr_assert(strstr(OUT, "rollout default: release 2.0.0"), "%s", OUT);
    const char *base = strrchr(N.dir, '/') + 1;
    cr_assert_eq(ctl_in("/tmp", "--policy %s/policy.yaml status", base), 0, "a relative --policy: %s", ERR);
    cr_assert_eq(ctl_in(N.dir, "--policy=policy.yaml --json history"), 0, "%s", ERR);

    /* the key after nested collections, an absolute state, then a file that is not YAML past the key */
    char text[4096];
    snprintf(text, sizeof text, "keys: {hint: a, issuers: [b, {c: [d, e]}]}\nstages:\n  - {name: x, uids: [1, 2]}\n"
                                "'state': %s/state\n",
             N.dir);
    nu_write(nu_path(&N, "other.yaml"), text);
    cr_assert_eq(ctl_in("/", "--policy %s/other.yaml status", N.dir), 0, "%s", ERR);
    snprintf(text, sizeof text, "state: %s/state\nbroken: [\"never read\n", N.dir);
    nu_write(nu_path(&N, "tail.yaml"), text);
    FILE *f = fopen(nu_path(&N, "tail.yaml"), "a");
    for (int i = 0; i < 10000; i++) /* 10 MB of an unterminated string: never read */
        fprintf(f, "%01000d\n", i);
    fclose(f);
    cr_assert_eq(ctl("--policy tail.yaml status"), 0, "stops at the key: %s", ERR);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);

    static const struct {
        const char *text, *says;
    } bad[] = {
        {"keys: {hint: a}\nstages: []\n", "policy.yaml: no top-level state key"},
        {"state: [a, b]\n", "policy.yaml:1: state: expected a folder path, got a list"},
        {"state:\n  dir: x\n", "policy.yaml:2: state: expected a folder path, got a mapping"},
        {"- state: x\n", "policy.yaml:1: expected a mapping of policy keys, got a list"},
        {"keys: {hint: [a}\nstate: x\n", "policy.yaml:1: (yaml) "},
        {"", "policy.yaml:1: expected a mapping of policy keys, got nothing"},
        {"state: ''\n", "state: expected a folder path of 1.."},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nu_write(nu_path(&N, "policy.yaml"), bad[i].text);
        cr_assert_eq(ctl("--policy policy.yaml status"), 1, "%s: %s", bad[i].text, ERR);
        one_line(bad[i].text);
        cr_assert(strstr(ERR, bad[i].says), "%s: says %s: %s", bad[i].text, bad[i].says, ERR);
    }
    cr_assert_eq(ctl("--policy nowhere.yaml status"), 1);
    cr_assert(strstr(ERR, "--policy nowhere.yaml: cannot read: No such file"), "%s", ERR);
    cr_assert_eq(mkfifo(nu_path(&N, "fifo.yaml"), 0600), 0);
    cr_assert_eq(ctl("--policy fifo.yaml status"), 1, "a FIFO does not hang it");
    cr_assert(strstr(ERR, "not a regular file"), "%s", ERR);
    cr_assert_eq(truncate(nu_path(&N, "tail.yaml"), (17 << 20)), 0);
    cr_assert_eq(ctl("--policy tail.yaml status"), 1);
    cr_assert(strstr(ERR, "file too large (at most 16777216 bytes)"), "%s", ERR);
    /* a policy whose socket is not served: the socket's own error */
    nu_write(nu_path(&N, "policy.yaml"), "state: gone\n");
    cr_assert_eq(ctl("--policy policy.yaml status"), 1);
    cr_assert(strstr(ERR, "/gone/upgate.ctl: no such socket"), "%s", ERR);
}

/* ---- trackers that are down or broken ---------------------------------------------- */

/* A listening socket at path, served by a child: it reads one request
 * line, then writes reply (len bytes) times times and closes; NULL reply:
 * it never answers. */
static void fake_server(const char *path, const char *reply, size_t len, size_t times)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    unlink(path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 4), 0);
    FAKE = fork();
    cr_assert_neq(FAKE, -1);
    if (FAKE == 0) {
        int c = accept(fd, NULL, NULL);
        char req[1024];
        size_t got = 0;
        ssize_t k;
        while (got < sizeof req && (k = read(c, req + got, sizeof req - got)) > 0 && !memchr(req + got, '\n', (size_t)k))
            got += (size_t)k;
        if (!reply)
            pause();
        signal(SIGPIPE, SIG_IGN);
        for (size_t i = 0; i < times; i++)
            if (write(c, reply, len) != (ssize_t)len)
                break;
        close(c);
        _exit(0);
    }
    close(fd);
}

static void fake_done(void)
{
    kill(FAKE, SIGKILL);
    waitpid(FAKE, NULL, 0);
    FAKE = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(ctl_ops, unreachable_and_broken_trackers_give_one_clear_line)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    char sock[256];
    snprintf(sock, sizeof sock, "%s", nu_path(&N, "fake.sock"));
    cr_assert_eq(ctl("--socket nothing.sock status"), 1);
    one_line("missing");
    cr_assert(strstr(ERR, "cannot connect to nothing.sock: no such socket (is upgate-node running?"), "%s", ERR);

    int fd = socket(AF_UNIX, SOCK_STREAM, 0); /* bound, never listened on: what a dead node leaves */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", nu_path(&N, "stale.sock"));
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    cr_assert_eq(ctl("--socket stale.sock status"), 1);
    one_line("stale");
    cr_assert(strstr(ERR, "stale.sock: connection refused"), "%s", ERR);
    nu_write(nu_path(&N, "file.sock"), "x\n");
    cr_assert_eq(ctl("--socket file.sock status"), 1);
    cr_assert(strstr(ERR, "file.sock: not a socket"), "%s", ERR);
    char longp[200];
    memset(longp, 'p', 150), longp[150] = 0;
    cr_assert_eq(ctl("--socket %s status", longp), 1);
    cr_assert(strstr(ERR, "longer than 107 bytes"), "%s", ERR);

    fake_server(sock, NULL, 0, 0);
    double t0 = now_s();
    cr_assert_eq(ctl("--socket fake.sock --timeout 1 status"), 1);
    cr_assert_lt(now_s() - t0, 5.0, "gave up after about a second");
    one_line("silent");
    cr_assert(strstr(ERR, "no reply from fake.sock within 1 s (--timeout)"), "%s", ERR);
    fake_done();

    static char junk[100000];
    memset(junk, 'x', sizeof junk);
    fake_server(sock, junk, sizeof junk, 1);
    cr_assert_eq(ctl("--socket fake.sock status"), 1);
    one_line("junk");
    cr_assert(strstr(ERR, "the reply from fake.sock is not one JSON object"), "%s", ERR);
    cr_assert_lt(strlen(ERR), 400, "at most 200 bytes of the reply shown: %zu", strlen(ERR));
    cr_assert(strstr(ERR, "xxx..."), "%s", ERR);
    fake_done();

    static const struct {
        const char *reply, *says;
    } odd[] = {
        {"{\"foo\": 1}", "has no \"ok\""},
        {"{\"ok\": false}", "upgate-ctl: the tracker refused without a reason\n"},
        {"{\"ok\": false, \"error\": \"two\\nlines \\u001b[31mred\"}", "upgate-ctl: two\\x0alines \\x1b[31mred\n"},
        {"{\"ok\": true} {\"ok\": true}", "not one JSON object (at byte 13: more after the object)"},
        {"[1, 2]", "not one JSON object (at byte 0: not a JSON object)"},
        {"{\"ok\": true, \"a\": [1,]}", "not one JSON object"},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        fake_server(sock, odd[i].reply, strlen(odd[i].reply), 1);
        cr_assert_eq(ctl("--socket fake.sock status"), 1, "%s", odd[i].reply);
        one_line(odd[i].reply);
        cr_assert(strstr(ERR, odd[i].says), "%s: says %s: %s", odd[i].reply, odd[i].says, ERR);
        fake_done();
    }
    /* ok, but nothing where it should be: rendered as far as it goes */
    static const char *const shapes[] = {
        "{\"ok\":true,\"tracker\":[],\"rollouts\":[{\"name\":5,\"stages\":\"x\",\"waits\":[1]},7,null]}",
        "{\"ok\":true,\"rollouts\":[{\"stages\":[{\"granted\":-5,\"quota\":0,\"percent\":-1,\"rate\":\"x\"},[]]}]}",
        "{\"ok\":true,\"rollouts\":[{\"manifest_expires\":9223372036854775807,\"ramp_held_since\":-9223372036854775807}]}",
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        fake_server(sock, shapes[i], strlen(shapes[i]), 1);
        cr_assert_eq(ctl("--socket fake.sock status"), 0, "%s: %s", shapes[i], ERR);
        fake_done();
        fake_server(sock, shapes[i], strlen(shapes[i]), 1);
        cr_assert_eq(ctl("--socket fake.sock watch --count 1"), 0, "%s: %s", shapes[i], ERR);
        fake_done();
    }

    /* every part of the tracker block and a rollout's header, and members not known yet */
    static const char full[] =
        "{\"ok\":true,\"tracker\":{\"uptime_s\":90061,\"policy\":\"/etc/upgate/policy.yaml\",\"generation\":7,"
        "\"cookie\":\"auto\",\"cookie_under_load\":true,\"verify\":\"always\",\"drops\":{\"signature\":3,\"size\":0},"
        "\"waits\":{\"paused\":2},\"fleet\":{\"trackers\":2}},\"rollouts\":[{\"name\":\"r\",\"release\":\"2.0.0\","
        "\"manifest_expires\":1000,\"paused\":true,\"paused_by\":\"policy\",\"halted\":true,\"halted_why\":\"x\","
        "\"ramp_held_since\":1000,\"ramp_shift_s\":3600,\"stages\":[],\"extra\":5}],\"future\":\"yes\"}";
    fake_server(sock, full, strlen(full), 1);
    cr_assert_eq(ctl("--socket fake.sock status"), 0, "%s", ERR);
    fake_done();
    static const char *const parts[] = {
        "tracker up 1d 1h, policy /etc/upgate/policy.yaml (generation 7)\n",
        "  cookies auto (ON: load turned them on), verify always\n", "  waits: paused 2\n", "  drops: signature 3\n",
        "  fleet:\n    trackers: 2\n", "rollout r: release 2.0.0, manifest EXPIRED 1970-01-01T00:16:40Z (", " days ago)\n",
        "  PAUSED by policy: every peer of it gets WAIT why=4\n", "  HALTED: x\n",
        "  ramp held since 1970-01-01T00:16:40Z (", "  ramp delayed 1h 0m by holds so far\n", "  no stages\n",
        "  extra: 5\n", "\nfuture: yes\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        cr_assert(strstr(OUT, parts[i]), "shows [%s]: %s", parts[i], OUT);

    /* more than 256 MiB: refused, not read forever */
    static char mib[1 << 20];
    memset(mib, ' ', sizeof mib);
    mib[0] = '{';
    fake_server(sock, mib, sizeof mib, 257);
    cr_assert_eq(ctl("--socket fake.sock status"), 1);
    one_line("huge");
    cr_assert(strstr(ERR, "the reply from fake.sock is longer than 256 MiB, upgate-ctl's limit"), "%s", ERR);
    fake_done();
}

/* 400,000 grants (18 MB of JSON) are rendered row by row: the program's
 * memory stays near the reply's size, not that of a tree of its rows. */
Test(ctl_ops, a_grants_list_of_400k_rows_streams)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    enum { ROWS = 400000 };
    size_t cap = (size_t)ROWS * 64 + 256, len = 0;
    char *reply = malloc(cap);
    cr_assert(reply);
    len += (size_t)snprintf(reply, cap, "{\"ok\":true,\"rollout\":\"desktop\",\"release\":\"2.0.0\",\"stage\":null,\"grants\":[");
    for (int i = 0; i < ROWS; i++)
        len += (size_t)snprintf(reply + len, cap - len, "%s{\"uid\":%d,\"stage\":\"%s\",\"at\":1790000000}", i ? "," : "",
                                i + 1, i % 4 ? "wide" : "canary");
    len += (size_t)snprintf(reply + len, cap - len, "]}\n");
    fake_server(nu_path(&N, "fake.sock"), reply, len, 1);
    free(reply);

    char argv0[512], outp[256];
    snprintf(argv0, sizeof argv0, "%s/upgate-ctl", tu_build_dir());
    snprintf(outp, sizeof outp, "%s/grants.txt", N.dir);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        execl(argv0, argv0, "--socket", nu_path(&N, "fake.sock"), "grants", "desktop", (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
    fake_done();
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "wc -l < '%s' && sed -n '2p;$p' '%s'", outp, outp);
    cr_assert_eq(tu_run(cmd, OUT, sizeof OUT), 0);
    cr_assert(strstr(OUT, "400002\n1           canary            2026-09-21T14:13:20Z\n"
                          "400000 uids granted release 2.0.0 of rollout desktop: canary 100000, wide 300000\n"),
              "%s", OUT);
#if !defined(__SANITIZE_ADDRESS__)
    cr_assert_lt(ru.ru_maxrss, 120 * 1024, "peak memory %ld KiB for an 18 MB reply", ru.ru_maxrss);
#endif
}

/* ---- metrics against status ------------------------------------------------------ */

Test(ctl_ops, metrics_agree_with_status)
{
    nu_init(&N, "");
    nu_write(nu_path(&N, "policy.yaml"),
             "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nretry: 120\nrollouts:\n"
             "  - name: desktop\n    release: release.manifest\n    targets: [\"1.4.0\"]\n    stages:\n"
             "      - {name: canary, uids: [1, 2, 3, 4], quota: 3}\n      - {name: early, percent: 2.5, quota: 50}\n"
             "  - name: mobile\n    release: release.manifest\n    targets: [\"1.3.0\"]\n    stages:\n"
             "      - {name: everyone, percent: 30}\n");
    const char *extra[] = {"--metrics", "127.0.0.1:0", NULL};
    nu_start(&N, extra, NULL);
    const char *m = strstr(N.ready, "metrics on 127.0.0.1:");
    cr_assert(m, "%s", N.ready);
    unsigned mport = (unsigned)strtoul(m + 21, NULL, 10);
    uint8_t h[UG_DGRAM_MAX];
    for (uint64_t uid = 1; uid <= 60; uid++) { /* grants, quota waits, not selected, not targeted */
        size_t len = nu_hello_issued(&N, h, sizeof h, uid, uid % 3 ? "1.4.0" : uid % 2 ? "1.3.0" : "0.9", NULL, NULL);
        cr_assert_neq(nu_ask(&N, h, len, NULL), -1, "uid %llu answered", (unsigned long long)uid);
    }
    cr_assert_eq(ctl("--socket state/upgate.ctl pause mobile"), 0, "%s", ERR);
    cr_assert_eq(ctl("--socket state/upgate.ctl --json status > status.json"), 0, "%s", ERR);
    /* samples by name: the plugin's rollout and stage families are not
     * yet grouped as the exposition format asks (reported to the lead) */
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && curl -sf http://127.0.0.1:%u/metrics > metrics.txt && /usr/bin/python3 -c '\n"
             "import json, sys\n"
             "from prometheus_client.parser import text_string_to_metric_families as parse\n"
             "fams = list(parse(open(\"metrics.txt\").read()))\n"
             "for f in fams:\n"
             "    assert f.type != \"unknown\", (\"a sample outside its family\", f.name)\n"
             "    assert f.samples or f.name == \"upgate_stage_quota\", (\"a family with no sample\", f.name)\n"
             "samples = [s for f in fams for s in f.samples]\n"
             "st = json.load(open(\"status.json\"))\n"
             "def one(name, **lab):\n"
             "    s = [x for x in samples if x.name == name and all(x.labels.get(k) == v for k, v in lab.items())]\n"
             "    assert len(s) <= 1, (name, lab, s)\n"
             "    return s[0].value if s else None\n"
             "n = 0\n"
             "for r in st[\"rollouts\"]:\n"
             "    for g in (\"paused\", \"halted\"):\n"
             "        v = one(\"upgate_rollout_\" + g, rollout=r[\"name\"])\n"
             "        assert v == int(r[g]), (r[\"name\"], g, v, r[g])\n"
             "    for s in r[\"stages\"]:\n"
             "        lab = dict(rollout=r[\"name\"], stage=s[\"name\"])\n"
             "        assert one(\"upgate_stage_grants\", **lab) == s[\"granted\"], (lab, s)\n"
             "        assert one(\"upgate_stage_quota\", **lab) == s[\"quota\"], (lab, s)\n"
             "        p = one(\"upgate_stage_percent_ratio\", **lab)\n"
             "        assert (p is None and s[\"percent\"] is None) or abs(p - s[\"percent\"] / 100) < 1e-9, (lab, p)\n"
             "        for why, v in s[\"waits\"].items():\n"
             "            assert one(\"upgate_stage_waits_total\", why=why, **lab) == v, (lab, why, v)\n"
             "        n += (s[\"granted\"] > 0) + sum(v > 0 for v in s[\"waits\"].values())\n"
             "for why, v in st[\"tracker\"][\"waits\"].items():\n"
             "    assert one(\"upgate_waits_total\", why=why) == v, (why, v)\n"
             "    n += v > 0\n"
             "assert n >= 5, n\n"
             "print(\"ok\", n)' 2>&1",
             N.dir, mport);
    cr_assert_eq(tu_run(cmd, OUT, sizeof OUT), 0, "metrics and status disagree: %s", OUT);
    cr_assert(strncmp(OUT, "ok ", 3) == 0, "%s", OUT);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* ---- the README's journey ---------------------------------------------------------- */

static void journey_policy(const char *percent)
{
    char text[1024];
    snprintf(text, sizeof text,
             "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nretry: 60\nrollouts:\n"
             "  - name: desktop\n    release: release.manifest\n    targets: [\"1.4.0\"]\n    stages:\n"
             "      - {name: canary, uids: [1001, 1002, 1003]}\n"
             "      - {name: early, percent: %s, quota: 1000}\n",
             percent);
    nu_write(nu_path(&N, "policy.yaml"), text);
}

/* README "Operating a rollout", step by step, with upgate-ctl alone. */
Test(ctl_ops, operator_journey_with_ctl_alone)
{
    nu_init(&N, "");
    journey_policy("5");
    nu_start(&N, NULL, NULL);
    uint8_t h[UG_DGRAM_MAX];
    int hints = 0;
    for (uint64_t uid = 1000; uid < 1100; uid++) {
        size_t len = nu_hello_issued(&N, h, sizeof h, uid, "1.4.0", NULL, NULL);
        hints += nu_ask(&N, h, len, NULL) == UG_TYPE_HINT;
    }
    /* watch the ramp */
    cr_assert_eq(ctl("--policy policy.yaml watch --count 1"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "  canary  (no quota or percentage)"), "%s", OUT);
    cr_assert(strstr(OUT, "  early   [#") && strstr(OUT, "/1000 granted"), "%s", OUT);
    /* pause: nobody new is offered */
    cr_assert_eq(ctl("--policy policy.yaml pause desktop"), 0, "%s", ERR);
    uint64_t why = 0;
    size_t len = nu_hello_issued(&N, h, sizeof h, 5000, "1.4.0", NULL, NULL);
    cr_assert_eq(nu_ask(&N, h, len, &why), UG_TYPE_WAIT);
    cr_assert_eq(why, UG_WHY_PAUSED);
    /* raise the percentage: edit, reload, resume */
    journey_policy("50");
    cr_assert_eq(ctl("--policy policy.yaml reload"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "generation 2"), "%s", OUT);
    cr_assert_eq(ctl("--policy policy.yaml resume desktop"), 0, "%s", ERR);
    for (uint64_t uid = 1100; uid < 1200; uid++) {
        len = nu_hello_issued(&N, h, sizeof h, uid, "1.4.0", NULL, NULL);
        hints += nu_ask(&N, h, len, NULL) == UG_TYPE_HINT;
    }
    cr_assert_eq(ctl("--policy policy.yaml status"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "50.00%"), "%s", OUT);
    /* the new version crashes: halt */
    cr_assert_eq(ctl("--policy policy.yaml halt desktop --why '2.0.0 crashes on start'"), 0, "%s", ERR);
    len = nu_hello_issued(&N, h, sizeof h, 1150, "1.4.0", NULL, NULL);
    cr_assert_eq(nu_ask(&N, h, len, &why), UG_TYPE_WAIT);
    cr_assert_eq(why, UG_WHY_PAUSED);
    /* who got it, per stage */
    cr_assert_eq(ctl("--policy policy.yaml grants desktop"), 0, "%s", ERR);
    char want[128];
    snprintf(want, sizeof want, "%d uids granted release 2.0.0 of rollout desktop: canary 3, early %d\n", hints,
             hints - 3);
    cr_assert(strstr(OUT, want), "want %s in %s", want, OUT);
    cr_assert_eq(ctl("--policy policy.yaml history"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "pause rollout desktop") && strstr(OUT, "resume rollout desktop") &&
              strstr(OUT, "halt rollout desktop: 2.0.0 crashes on start"), "%s", OUT);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}
