/* The audit trail (issue 20 §6): history names who made each change and why, through the real node and upgate-ctl; its record's codec. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/audit.h"
#include "nodeutil.h"
#include "testutil.h"

static nu_node N;
static char OUT[1 << 20], ERR[16384];

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(audit, .fini = teardown, .timeout = 60);

#define ctl(...) nu_upgate_ctl(&N, N.dir, OUT, sizeof OUT, ERR, sizeof ERR, "--socket state/upgate.ctl " __VA_ARGS__)

/* One rollout, beta: a canary at PERCENT with QUOTA, of the release in
 * MANIFEST; EXTRA after it (another rollout, or a fault). */
static void write_policy(const char *percent, const char *quota, const char *manifest, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text,
             "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nretry: 120\nrollouts:\n"
             "  - name: beta\n    release: %s\n    targets: [\"1.4.0\"]\n    stages:\n"
             "      - {name: canary, percent: %s, quota: %s}\n%s",
             manifest, percent, quota, extra);
    nu_write(nu_path(&N, "policy.yaml"), text);
}

static void start(void)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    write_policy("5", "100", "release.manifest", "");
    nu_start(&N, NULL, NULL);
}

/* history --json: its list (a new reference). */
static json_t *history(void)
{
    cr_assert_eq(ctl("--json history"), 0, "%s", ERR);
    json_t *j = json_loads(OUT, 0, NULL);
    json_t *h = json_incref(json_object_get(j, "history"));
    json_decref(j);
    cr_assert(json_is_array(h), "%s", OUT);
    return h;
}

static const char *str(const json_t *e, const char *k)
{
    const char *s = json_string_value(json_object_get(e, k));
    return s ? s : "";
}

static const char *kind(const json_t *e)
{
    return str(json_object_get(e, "actor"), "kind");
}

static json_int_t actor_id(const json_t *e, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(e, "actor"), k));
}

/* The last entry whose action is action, or NULL. */
static const json_t *last(const json_t *h, const char *action)
{
    for (size_t i = json_array_size(h); i-- > 0;)
        if (!strcmp(str(json_array_get(h, i), "action"), action))
            return json_array_get(h, i);
    return NULL;
}

/* How many entries have action and actor kind k. */
static size_t count(const json_t *h, const char *action, const char *k)
{
    size_t n = 0, i;
    json_t *e;
    json_array_foreach(h, i, e) n += !strcmp(str(e, "action"), action) && !strcmp(kind(e), k);
    return n;
}

/* Is there a line of text with a, and b after it? */
static bool line_with(const char *text, const char *a, const char *b)
{
    for (const char *p = text; (p = strstr(p, a)); p++) {
        const char *q = strstr(p, b), *nl = strchr(p, '\n');
        if (q && (!nl || q < nl))
            return true;
    }
    return false;
}

/* Waits (3 s at most) until the history has n entries of action by k. */
static json_t *wait_for(const char *action, const char *k, size_t n)
{
    for (int i = 0; i < 60; i++) {
        json_t *h = history();
        if (count(h, action, k) >= n)
            return h;
        json_decref(h);
        nu_sleep_ms(50);
    }
    cr_assert_fail("no %zu %s by %s in the history: %s", n, action, k, OUT);
    return NULL;
}

Test(audit, a_control_client_is_named_by_its_credentials_and_its_why_is_kept)
{
    start();
    cr_assert_eq(ctl("pause beta --why 'waiting for QA'"), 0, "%s", ERR);
    cr_assert_eq(ctl("resume beta --why 'QA passed'"), 0, "%s", ERR);
    cr_assert_eq(ctl("halt beta --why 'crash on start'"), 0, "%s", ERR);
    json_t *h = history();
    const char *act[] = {"pause", "resume", "halt"}, *why[] = {"waiting for QA", "QA passed", "crash on start"};
    for (int i = 0; i < 3; i++) {
        const json_t *e = last(h, act[i]);
        cr_assert(e, "%s in %s", act[i], OUT);
        cr_expect_str_eq(kind(e), "control");
        cr_expect_eq(actor_id(e, "uid"), (json_int_t)getuid(), "the client's uid, from SO_PEERCRED");
        json_int_t pid = actor_id(e, "pid");
        cr_expect(pid > 0 && pid != N.pid && pid != getpid(), "upgate-ctl's pid, not the node's: %lld", (long long)pid);
        cr_expect_str_eq(str(e, "rollout"), "beta");
        cr_expect_str_eq(str(e, "reason"), why[i]);
    }
    json_decref(h);
    cr_assert_eq(ctl("history"), 0, "%s", ERR);
    char by[64];
    snprintf(by, sizeof by, "Z  uid %u pid ", (unsigned)getuid());
    const char *p = strstr(OUT, "pause rollout beta: waiting for QA\n");
    cr_assert(p && strstr(OUT, by) && strstr(OUT, by) < p, "who and why, readably: %s", OUT);
    cr_assert(strstr(OUT, "resume rollout beta: QA passed\n"), "%s", OUT);
    /* a why is one line of 1..200 bytes, for the plugin too */
    char reply[4096];
    const char req[] = "{\"cmd\":\"pause\",\"rollout\":\"beta\",\"why\":\"\"}\n";
    cr_assert(nu_ctl(nu_path(&N, "state/upgate.ctl"), req, sizeof req - 1, false, reply, sizeof reply) > 0);
    cr_assert(strstr(reply, "\"ok\":false") && strstr(reply, "pause: give \\\"why\\\""), "%s", reply);
}

Test(audit, reloads_say_what_changed_and_refused_ones_are_kept)
{
    start();
    cr_assert_eq(nu_sh("cd %s && %s/upgate-keys release --key release.key --version 2.0.1 --file app.bin --url "
                       "http://127.0.0.1:9/app.bin --ttl 86400 --out release2.manifest",
                       N.dir, tu_build_dir()),
                 0);
    write_policy("10", "200", "release2.manifest", "");
    cr_assert_eq(kill(N.pid, SIGHUP), 0);
    json_t *h = wait_for("reload", "signal", 1);
    const json_t *e = last(h, "reload");
    cr_assert_str_eq(str(e, "summary"), "rollout beta: release 2.0.0 -> 2.0.1; stage canary percent 5 -> 10, quota "
                                        "100 -> 200");
    cr_assert(strstr(str(e, "what"), "generation 2: rollout beta: release 2.0.0 -> 2.0.1"), "%s", str(e, "what"));
    json_decref(h);

    write_policy("10", "200", "release2.manifest",
                 "  - name: gamma\n    release: release.manifest\n    targets: [\"1.3.0\"]\n    stages:\n"
                 "      - {name: all, percent: 12.5}\n");
    cr_assert_eq(ctl("reload"), 0, "%s", ERR);
    h = history();
    e = last(h, "reload");
    cr_assert_str_eq(kind(e), "control");
    cr_assert_str_eq(str(e, "summary"), "rollout gamma added (release 2.0.0, 1 stage)");
    json_decref(h);
    cr_assert_eq(ctl("reload"), 0, "%s", ERR);
    h = history();
    cr_assert_str_eq(str(last(h, "reload"), "summary"), "no change to rollouts, stages, percent, quota or release");
    json_decref(h);
    write_policy("12.5", "200", "release2.manifest", "      - {name: early, percent: 1}\n    paused: true\n");
    cr_assert_eq(ctl("reload"), 0, "%s", ERR);
    h = history();
    cr_assert_str_eq(str(last(h, "reload"), "summary"),
                     "rollout gamma removed; rollout beta: paused false -> true; stage canary percent 10 -> 12.5; stage "
                     "early added (percent 1)");
    json_decref(h);

    write_policy("10", "200", "release2.manifest", "    colour: blue\n");
    cr_assert_eq(ctl("reload"), 1);
    h = history();
    e = last(h, "reload_refused");
    cr_assert(e, "a refused upgate-ctl reload is kept: %s", OUT);
    cr_assert_str_eq(kind(e), "control");
    cr_assert(strstr(str(e, "reason"), "colour: unknown key"), "its one-line error: %s", str(e, "reason"));
    json_decref(h);
    char log[16384];
    nu_stderr(&N, log, sizeof log);
    cr_assert(strstr(log, "control: reload refused, the running policy stays: ") && strstr(log, "colour: unknown key"),
              "and logged, as a refused SIGHUP is: %s", log);
    cr_assert_eq(kill(N.pid, SIGHUP), 0);
    h = wait_for("reload_refused", "signal", 1);
    cr_assert(strstr(str(last(h, "reload_refused"), "reason"), "colour: unknown key"));
    json_decref(h);
    cr_assert_eq(ctl("history"), 0, "%s", ERR);
    cr_assert(line_with(OUT, "Z  signal ", "  reload refused, the running policy stays: ") &&
                  line_with(OUT, "Z  signal ", "policy.yaml, generation 2: rollout beta: release 2.0.0 -> 2.0.1"),
              "%s", OUT);
}

Test(audit, starts_and_stops_are_kept_across_restarts)
{
    start();
    pid_t first = N.pid;
    cr_assert_eq(ctl("pause beta"), 0, "%s", ERR);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    nu_start(&N, NULL, NULL);
    json_t *h = history();
    cr_assert_eq(json_array_size(h), 4, "start, pause, stop, start: %s", OUT);
    const char *want[] = {"start", "pause", "stop", "start"};
    json_int_t pids[] = {first, 0, first, N.pid};
    for (size_t i = 0; i < 4; i++) {
        const json_t *e = json_array_get(h, i);
        cr_expect_str_eq(str(e, "action"), want[i]);
        if (pids[i]) {
            cr_expect_str_eq(kind(e), "host");
            cr_expect_eq(actor_id(e, "pid"), pids[i], "%s by the node itself", want[i]);
        }
    }
    cr_assert(strstr(str(json_array_get(h, 0), "what"), "policy.yaml, 1 rollout"), "%s", OUT);
    json_decref(h);
}

/* ---- the record's codec ---- */

Test(audit, a_record_round_trips_and_is_cut_to_fit)
{
    char big[3000], line[UG_AUDIT_MAX + 1];
    memset(big, 'x', sizeof big - 1), big[sizeof big - 1] = 0;
    big[10] = '\n';
    ug_event e = {.by = {UG_ACTOR_CONTROL, 1000, 4242}, .action = "halt", .rollout = "beta", .reason = "r\x1fx",
                  .summary = "", .what = big};
    ug_audit_encode(&e, line, sizeof line);
    cr_assert_leq(strlen(line), UG_AUDIT_MAX);
    ug_event d;
    ug_audit_decode(line, &d);
    cr_assert_eq(d.by.kind, UG_ACTOR_CONTROL);
    cr_assert_eq(d.by.uid, 1000);
    cr_assert_eq(d.by.pid, 4242);
    cr_assert_str_eq(d.action, "halt");
    cr_assert_str_eq(d.rollout, "beta");
    cr_assert_str_eq(d.reason, "r?x", "a separator inside a field is not one");
    cr_assert_str_eq(d.summary, "");
    cr_assert(d.what[10] == '?' && strlen(d.what) > 500, "one line, cut: %zu", strlen(d.what));

    /* a cut never splits a UTF-8 character (history's JSON would refuse it) */
    char utf[800] = "";
    for (int i = 0; i < 150; i++)
        strcat(utf, "\xc3\xa9");
    e = (ug_event){.by = {UG_ACTOR_AUTOMATIC, 0, 0}, .action = "halt", .reason = utf, .what = "w"};
    ug_audit_encode(&e, line, sizeof line);
    ug_audit_decode(line, &d);
    cr_assert_eq(strlen(d.reason), 200, "200 bytes, 100 whole characters");
    e.reason = utf + 1; /* starts inside a character: cut after 199 bytes, none split */
    ug_audit_encode(&e, line, sizeof line);
    ug_audit_decode(line, &d);
    cr_assert_eq((unsigned char)d.reason[strlen(d.reason) - 1], 0xa9);

    char old[] = "pause rollout mobile"; /* a record of the layout before actors */
    ug_audit_decode(old, &d);
    cr_assert_eq(d.by.kind, UG_ACTOR_UNKNOWN);
    cr_assert_str_eq(d.what, "pause rollout mobile");
    cr_assert_str_eq(ug_actor_name(UG_ACTOR_FLEET), "fleet");
    cr_assert_str_eq(ug_actor_name((ug_actor_kind)99), "unknown");
}
