/* upgate-ctl through the real node: every command and its --json, halt before it returns, durability, reload errors, --policy, usage. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "nodeutil.h"
#include "render.h"
#include "testutil.h"

static nu_node N;
static char OUT[1 << 20], ERR[16384];

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(ctl, .fini = teardown, .timeout = 120);

/* build/upgate-ctl ARGS in the node's folder: stdout in OUT, stderr in ERR. */
#define ctl(...) nu_upgate_ctl(&N, N.dir, OUT, sizeof OUT, ERR, sizeof ERR, __VA_ARGS__)

/* The one line of stderr a failure must give. */
static void one_line(const char *what)
{
    cr_assert(ERR[0] && strchr(ERR, '\n') == ERR + strlen(ERR) - 1, "%s: one line on stderr, got: [%s]", what, ERR);
    cr_assert(strncmp(ERR, "upgate-ctl: ", 12) == 0, "%s: names the program: %s", what, ERR);
}

static json_t *out_json(void)
{
    json_error_t e;
    json_t *j = json_loads(OUT, 0, &e);
    cr_assert(json_is_object(j), "--json prints one JSON object: %s (%s)", OUT, e.text);
    cr_assert_eq(strchr(OUT, '\n'), OUT + strlen(OUT) - 1, "on one line: %s", OUT);
    return j;
}

/* Two rollouts: desktop (canary uids 1-3 with a quota of 2, then 1.5% of
 * everyone, quota 100) and mobile (10%). */
static const char *const TWO =
    "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nretry: 120\n"
    "rollouts:\n"
    "  - name: desktop\n    release: release.manifest\n    targets: [\"1.4.0\"]\n%s    stages:\n"
    "      - {name: canary, uids: [1, 2, 3], quota: 2}\n"
    "      - {name: early, percent: %s, quota: 100}\n"
    "  - name: mobile\n    release: release.manifest\n    targets: [\"1.3.0\"]\n    stages:\n"
    "      - {name: everyone, percent: 10}\n";

static void write_two(const char *desktop_extra, const char *percent)
{
    char text[2048];
    snprintf(text, sizeof text, TWO, desktop_extra, percent);
    nu_write(nu_path(&N, "policy.yaml"), text);
}

static void start_two(void)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    write_two("", "1.5");
    nu_start(&N, NULL, NULL);
    cr_assert(strstr(N.ready, "state/upgate.ctl"), "default socket: %s", N.ready);
}

#define SOCK "--socket state/upgate.ctl"

static int hello(uint64_t uid, const char *ver, uint64_t *why)
{
    uint8_t h[UG_DGRAM_MAX];
    size_t len = nu_hello_issued(&N, h, sizeof h, uid, ver, NULL, NULL);
    return nu_ask(&N, h, len, why);
}

/* ---- usage ------------------------------------------------------------------- */

Test(ctl, usage_errors_exit_2_with_one_line_naming_the_fault)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    static const struct {
        const char *args, *says;
    } bad[] = {
        {SOCK, "no command"},
        {SOCK " frobnicate", "unknown command frobnicate"},
        {SOCK " --frob status", "unknown flag --frob"},
        {SOCK " --policy policy.yaml status", "--socket and --policy"},
        {SOCK " " SOCK " status", "--socket given twice"},
        {SOCK " pause", "pause: give a rollout or --all"},
        {SOCK " pause desktop --all", "not both"},
        {SOCK " halt desktop", "--why TEXT is required"},
        {SOCK " halt desktop --why ''", "--why: one line of 1..200 bytes"},
        {SOCK " status --why x", "--why: only for pause, resume and halt"},
        {SOCK " pause desktop --why ''", "--why: one line of 1..200 bytes"},
        {SOCK " status --all", "--all: only for"},
        {SOCK " status --interval 2", "--interval: only for watch"},
        {SOCK " watch --count 0", "--count 0"},
        {SOCK " --timeout soon status", "--timeout soon"},
        {SOCK " --timeout", "--timeout needs a value"},
        {SOCK " explain uid=1,ver=1.4.0", "explain: needs uid, ver and src"},
        {SOCK " explain uid=1,ver=x,src=::1", "explain: ver is not a version: x"},
        {SOCK " grants", "grants: too few arguments"},
        {SOCK " history now", "history: too many arguments"},
        {SOCK " fleet dance", "fleet: dance"},
        {SOCK " fleet forget 'a b'", "not a tracker name"},
        {SOCK " fleet status --force", "--force: only for fleet forget"},
        {SOCK " status --force", "--force: only for fleet"},
        {SOCK " pause $(printf 'a\\377b')", "not UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(ctl("%s", bad[i].args), 2, "%s: %s", bad[i].args, ERR);
        one_line(bad[i].args);
        cr_assert(strstr(ERR, bad[i].says), "%s: says %s: %s", bad[i].args, bad[i].says, ERR);
        cr_assert_str_eq(OUT, "", "nothing on stdout");
    }
    char why[300];
    memset(why, 'w', 201), why[201] = 0;
    cr_assert_eq(ctl(SOCK " halt --all --why %s", why), 2);
    cr_assert(strstr(ERR, "--why"), "%s", ERR);
    if (access("/etc/upgate/policy.yaml", F_OK) != 0) {
        cr_assert_eq(ctl("status"), 2);
        cr_assert(strstr(ERR, "/etc/upgate/policy.yaml does not exist: give one"), "%s", ERR);
    }
    cr_assert_eq(ctl("--help"), 0);
    for (const char *f = "--socket\0--policy\0--json\0--timeout\0--all\0--why\0--interval\0--count\0--force\0"
                         "--release\0";
         *f; f += strlen(f) + 1)
        cr_assert(strstr(OUT, f), "--help names %s", f);
    cr_assert_eq(ctl("--version"), 0);
    cr_assert(strncmp(OUT, "upgate-ctl ", 11) == 0 && strstr(OUT, "plugin ABI"), "%s", OUT);
}

/* ---- status -------------------------------------------------------------------- */

static void has_every_wait(const json_t *w, const char *where)
{
    static const char *const keys[] = {"not_targeted", "not_selected", "quota", "clock", "paused", "rate",
                                       "too_small"};
    cr_assert(json_is_object(w), "%s: waits", where);
    for (size_t i = 0; i < 7; i++)
        cr_assert(json_is_integer(json_object_get(w, keys[i])), "%s: waits.%s", where, keys[i]);
}

/* cli.md's shape of status --json, member by member. */
static void cli_shape(const json_t *st)
{
    const json_t *ro = json_object_get(st, "rollouts");
    cr_assert(json_is_array(ro) && json_array_size(ro) > 0);
    size_t i, j;
    const json_t *r, *s;
    json_array_foreach(ro, i, r)
    {
        cr_assert(json_is_string(json_object_get(r, "name")));
        cr_assert(json_is_string(json_object_get(r, "release")));
        cr_assert(json_is_boolean(json_object_get(r, "paused")));
        cr_assert(json_is_boolean(json_object_get(r, "halted")));
        cr_assert(json_object_get(r, "halted_why"), "halted_why present (null or text)");
        has_every_wait(json_object_get(r, "waits"), "rollout");
        json_array_foreach(json_object_get(r, "stages"), j, s)
        {
            cr_assert(json_is_string(json_object_get(s, "name")));
            cr_assert(json_is_integer(json_object_get(s, "granted")));
            const json_t *q = json_object_get(s, "quota"), *p = json_object_get(s, "percent");
            cr_assert(json_is_null(q) || json_is_integer(q));
            cr_assert(json_is_null(p) || json_is_number(p));
            const json_t *off = json_object_get(s, "offers");
            cr_assert(json_is_integer(json_object_get(off, "last_minute")) &&
                      json_is_integer(json_object_get(off, "last_hour")));
            has_every_wait(json_object_get(s, "waits"), "stage");
            static const char *const oc[] = {"upgraded", "rolled_back", "failed", "declined", "pending", "not_taken"};
            for (size_t k = 0; k < 6; k++)
                cr_assert(json_is_integer(json_object_get(json_object_get(s, "outcomes"), oc[k])), "outcomes.%s", oc[k]);
        }
    }
}

static const json_t *rollout(const json_t *st, size_t i)
{
    return json_array_get(json_object_get(st, "rollouts"), i);
}

static const json_t *stage(const json_t *st, size_t r, size_t s)
{
    return json_array_get(json_object_get(rollout(st, r), "stages"), s);
}

Test(ctl, status_as_tables_and_as_the_contracts_json)
{
    start_two();
    uint64_t why = 0;
    cr_assert_eq(hello(1, "1.4.0", NULL), UG_TYPE_HINT);
    cr_assert_eq(hello(2, "1.4.0", NULL), UG_TYPE_HINT);
    cr_assert_eq(hello(3, "1.4.0", &why), UG_TYPE_WAIT, "canary's quota is spent");
    cr_assert_eq(why, UG_WHY_QUOTA);
    cr_assert_eq(hello(5, "1.9.0", &why), UG_TYPE_WAIT);
    cr_assert_eq(why, UG_WHY_NOT_TARGETED);

    cr_assert_eq(ctl(SOCK " --json status"), 0, "%s", ERR);
    json_t *st = out_json();
    cli_shape(st);
    cr_assert_eq(json_integer_value(json_object_get(stage(st, 0, 0), "granted")), 2);
    cr_assert_eq(json_integer_value(json_object_get(stage(st, 0, 0), "quota")), 2);
    cr_assert(json_is_real(json_object_get(stage(st, 0, 1), "percent")) &&
                  json_real_value(json_object_get(stage(st, 0, 1), "percent")) == 1.5,
              "the percentage in force, as the policy writes it");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(stage(st, 0, 0), "waits"), "quota")), 1);
    json_decref(st);

    cr_assert_eq(ctl(SOCK " status"), 0, "%s", ERR);
    cr_assert_str_eq(ERR, "");
    cr_assert(strstr(OUT, "tracker up "), "%s", OUT);
    cr_assert(strstr(OUT, "(generation 1)"), "%s", OUT);
    cr_assert(strstr(OUT, "cookies auto (off: load has not turned them on), verify claims-first"), "%s", OUT);
    cr_assert(strstr(OUT, "  waits: not_targeted 1, quota 1\n"), "tracker's non-zero waits: %s", OUT);
    cr_assert(strstr(OUT, "rollout desktop: release 2.0.0, manifest expires "), "%s", OUT);
    cr_assert(strstr(OUT, "(in 23 hours)") || strstr(OUT, "(in 1 day)"), "a one-day manifest: %s", OUT);
    cr_assert(strstr(OUT, "  STAGE   GRANTED  PERCENT  OFFERS 1M/1H  RATE  UPGRADED  ROLLED BACK  FAILED  DECLINED  "
                          "PENDING  NOT TAKEN  WAITS\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  canary      2/2        -           2/2     -         0            0       0         0"
                          "        2          0  quota 1\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  early     0/100    1.50%           0/0     -"), "%s", OUT);
    cr_assert(strstr(OUT, "  everyone        0   10.00%"), "%s", OUT);
    cr_assert_null(strstr(OUT, "PAUSED"));
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* ---- pause, halt, resume --------------------------------------------------------- */

Test(ctl, halt_takes_effect_before_it_returns_even_for_a_retransmit)
{
    start_two();
    uint8_t h[UG_DGRAM_MAX];
    size_t len = nu_hello_issued(&N, h, sizeof h, 1, "1.4.0", NULL, NULL);
    uint64_t why = 0;
    cr_assert_eq(nu_ask(&N, h, len, NULL), UG_TYPE_HINT);
    cr_assert_eq(nu_ask(&N, h, len, NULL), UG_TYPE_HINT, "a retransmit is answered from memory");

    cr_assert_eq(ctl(SOCK " halt desktop --why 'crashes on start'"), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "halted rollout desktop: crashes on start (WAIT paused for its peers from now)\n");
    cr_assert_eq(nu_ask(&N, h, len, &why), UG_TYPE_WAIT, "the same bytes again: not the remembered HINT");
    cr_assert_eq(why, UG_WHY_PAUSED);
    cr_assert_eq(hello(2, "1.4.0", &why), UG_TYPE_WAIT, "a new HELLO right after");
    cr_assert_eq(why, UG_WHY_PAUSED);
    cr_assert_eq(hello(51, "1.3.0", &why) == UG_TYPE_WAIT ? why : UG_WHY_NOT_SELECTED, UG_WHY_NOT_SELECTED,
                 "mobile is not halted");

    cr_assert_eq(ctl(SOCK " status"), 0);
    cr_assert(strstr(OUT, "  HALTED: crashes on start\n"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " --json status"), 0);
    json_t *st = out_json();
    cr_assert(json_is_true(json_object_get(rollout(st, 0), "halted")));
    cr_assert_str_eq(json_string_value(json_object_get(rollout(st, 0), "halted_why")), "crashes on start");
    cr_assert(json_is_false(json_object_get(rollout(st, 1), "halted")));
    json_decref(st);

    /* durable: a restart keeps the halt */
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    nu_start(&N, NULL, NULL);
    cr_assert_eq(ctl("--policy policy.yaml --json status"), 0, "%s", ERR);
    st = out_json();
    cr_assert(json_is_true(json_object_get(rollout(st, 0), "halted")), "halted after a restart");
    cr_assert_str_eq(json_string_value(json_object_get(rollout(st, 0), "halted_why")), "crashes on start");
    json_decref(st);
    cr_assert_eq(hello(1, "1.4.0", &why), UG_TYPE_WAIT);
    cr_assert_eq(why, UG_WHY_PAUSED);

    /* resume lifts it at once */
    cr_assert_eq(ctl(SOCK " resume desktop"), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "resumed rollout desktop (its peers get the policy's answers from now)\n");
    cr_assert_eq(hello(1, "1.4.0", NULL), UG_TYPE_HINT, "offered again right after resume");
    cr_assert_eq(ctl(SOCK " history"), 0);
    char by[64]; /* the control client's credentials, through SO_PEERCRED */
    snprintf(by, sizeof by, "Z  uid %u pid ", (unsigned)getuid());
    const char *ht = strstr(OUT, "  halt rollout desktop: crashes on start\n"),
               *r = strstr(OUT, "  resume rollout desktop (lifts its halt)\n");
    cr_assert(ht && r && strstr(OUT, by) && strstr(OUT, by) < ht, "%s", OUT);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

Test(ctl, pause_resume_one_and_all_and_a_policys_pause_stays)
{
    start_two();
    uint64_t why = 0;
    cr_assert_eq(ctl(SOCK " pause desktop"), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "paused rollout desktop (WAIT paused for its peers from now)\n");
    cr_assert_eq(hello(1, "1.4.0", &why), UG_TYPE_WAIT);
    cr_assert_eq(why, UG_WHY_PAUSED);
    cr_assert_eq(ctl(SOCK " --json status"), 0);
    json_t *st = out_json();
    cr_assert(json_is_true(json_object_get(rollout(st, 0), "paused")));
    cr_assert_str_eq(json_string_value(json_object_get(rollout(st, 0), "paused_by")), "control");
    cr_assert(json_is_false(json_object_get(rollout(st, 1), "paused")));
    json_decref(st);
    cr_assert_eq(ctl(SOCK " status"), 0);
    cr_assert(strstr(OUT, "  PAUSED by control: every peer of it gets WAIT paused\n"), "%s", OUT);

    cr_assert_eq(ctl(SOCK " --json pause --all"), 0, "%s", ERR);
    st = out_json();
    cr_assert(json_is_true(json_object_get(st, "ok")));
    cr_assert_eq(json_array_size(json_object_get(st, "rollouts")), 2, "%s", OUT);
    json_decref(st);
    cr_assert_eq(ctl(SOCK " resume --all"), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "resumed rollouts desktop, mobile (their peers get the policy's answers from now)\n");
    cr_assert_eq(hello(1, "1.4.0", NULL), UG_TYPE_HINT);
    cr_assert_eq(ctl(SOCK " halt --all --why 'bad build'"), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "halted rollouts desktop, mobile: bad build (WAIT paused for their peers from now)\n");
    cr_assert_eq(ctl(SOCK " resume --all"), 0, "%s", ERR);

    /* a policy's paused: true is not control's to lift: said so */
    write_two("    paused: true\n", "1.5");
    cr_assert_eq(ctl(SOCK " reload"), 0, "%s", ERR);
    cr_assert_eq(ctl(SOCK " resume desktop"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "note: rollout desktop stays paused: its policy says paused: true"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " resume mobile"), 0, "%s", ERR);
    cr_assert_null(strstr(OUT, "note:"), "only about the rollouts resumed: %s", OUT);
    cr_assert_eq(hello(1, "1.4.0", &why), UG_TYPE_WAIT);
    cr_assert_eq(why, UG_WHY_PAUSED);

    /* an unknown rollout: the tracker's refusal, exit 1 */
    cr_assert_eq(ctl(SOCK " pause laptop"), 1);
    one_line("pause laptop");
    cr_assert(strstr(ERR, "no rollout named laptop"), "%s", ERR);
    cr_assert_eq(ctl(SOCK " --json pause laptop"), 1);
    st = out_json();
    cr_assert(json_is_false(json_object_get(st, "ok")), "--json prints the refusal too");
    json_decref(st);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* ---- reload --------------------------------------------------------------------- */

Test(ctl, reload_error_is_one_line_and_the_old_policy_stays)
{
    start_two();
    write_two("    colour: blue\n", "1.5");
    cr_assert_eq(ctl(SOCK " reload"), 1);
    one_line("reload");
    cr_assert(strstr(ERR, "upgate-ctl: ") && strstr(ERR, "/policy.yaml:8: rollouts[0].colour: unknown key"),
              "file:line: key: %s", ERR);
    cr_assert(strstr(ERR, " (not reloaded: the running policy stays)\n"), "%s", ERR);
    cr_assert_eq(hello(1, "1.4.0", NULL), UG_TYPE_HINT, "the old policy still answers");
    cr_assert_eq(ctl(SOCK " --json status"), 0);
    json_t *st = out_json();
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(st, "tracker"), "generation")), 1);
    json_decref(st);

    write_two("", "25");
    cr_assert_eq(ctl(SOCK " reload"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "reloaded ") && strstr(OUT, "policy.yaml: generation 2\n"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " --json reload"), 0, "%s", ERR);
    st = out_json();
    cr_assert_eq(json_integer_value(json_object_get(st, "generation")), 3);
    json_decref(st);
    cr_assert_eq(ctl(SOCK " status"), 0);
    cr_assert(strstr(OUT, "(generation 3)") && strstr(OUT, "25.00%"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " history"), 0);
    cr_assert(strstr(OUT, "reload"), "reloads in the history: %s", OUT);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* ---- explain, grants, history, fleet ---------------------------------------------- */

Test(ctl, explain_grants_and_history)
{
    start_two();
    cr_assert_eq(hello(1, "1.4.0", NULL), UG_TYPE_HINT);
    cr_assert_eq(hello(2, "1.4.0", NULL), UG_TYPE_HINT);

    cr_assert_eq(ctl(SOCK " explain uid=3,ver=1.4.0,src=10.0.0.7"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "answer: wait (quota)\n") || strstr(OUT, "answer: wait (not_selected)\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  rollout: desktop\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  stage canary: does not select\n"), "%s", OUT);
    cr_assert(strstr(OUT, "    uid in a list of 3: holds\n"), "%s", OUT);
    cr_assert(strstr(OUT, "    quota left: 0\n"), "%s", OUT);
    cr_assert(strstr(OUT, "    percent: bucket ") && strstr(OUT, " vs 1.50% in force: "), "%s", OUT);
    cr_assert_eq(ctl(SOCK " --json explain uid=1,ver=1.4.0,src=::1"), 0, "%s", ERR);
    json_t *j = out_json();
    cr_assert_str_eq(json_string_value(json_object_get(j, "answer")), "hint");
    cr_assert(json_is_true(json_object_get(j, "granted")));
    json_decref(j);
    /* a granted uid: where, when and how it went; also once it runs the release (issue 20 §8) */
    cr_assert_eq(ctl(SOCK " explain uid=1,ver=1.4.0,src=10.0.0.7"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "  already granted: yes (2.0.0), stage canary at 20") &&
                  strstr(OUT, "Z, outcome pending\n"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " explain uid=1,ver=2.0.0,src=10.0.0.7"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "answer: wait (not_targeted)\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  already granted: yes (2.0.0), stage canary at 20") &&
                  strstr(OUT, "Z, outcome pending, rollout desktop\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  not targeted by rollout desktop: version 2.0.0 is at or past its release 2.0.0 "
                          "(targets [1.4.0])\n"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " explain uid=9,ver=1.2.0,src=10.0.0.7"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "  already granted: no\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  not targeted by rollout desktop: version 1.2.0 is not in its targets [1.4.0]\n") &&
                  strstr(OUT, "  not targeted by rollout mobile: version 1.2.0 is not in its targets [1.3.0]\n"),
              "%s", OUT);
    cr_assert_eq(ctl(SOCK " --json explain uid=1,ver=2.0.0,src=10.0.0.7"), 0, "%s", ERR);
    j = out_json();
    json_t *g = json_object_get(j, "grant");
    cr_assert(json_is_true(json_object_get(j, "granted")), "%s", OUT);
    cr_assert_str_eq(json_string_value(json_object_get(g, "release")), "2.0.0");
    cr_assert_str_eq(json_string_value(json_object_get(g, "stage")), "canary");
    cr_assert_str_eq(json_string_value(json_object_get(g, "outcome")), "pending");
    cr_assert(json_integer_value(json_object_get(g, "at")) > 1700000000, "%s", OUT);
    cr_assert_eq(json_array_size(json_object_get(j, "not_targeted")), 2, "%s", OUT);
    json_decref(j);

    cr_assert_eq(ctl(SOCK " grants desktop"), 0, "%s", ERR);
    cr_assert(strncmp(OUT, "UID         STAGE             GRANTED\n", 38) == 0, "%s", OUT);
    char row[64];
    for (int uid = 1; uid <= 2; uid++) {
        snprintf(row, sizeof row, "\n%-10d  canary            20", uid);
        cr_assert(strstr(OUT, row), "uid %d with its stage and RFC 3339 time: %s", uid, OUT);
    }
    cr_assert(strstr(OUT, "Z\n2 uids granted release 2.0.0 of rollout desktop: canary 2\n"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " grants desktop early"), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "0 uids granted release 2.0.0 of rollout desktop\n");
    cr_assert_eq(ctl(SOCK " --json grants desktop canary"), 0, "%s", ERR);
    j = out_json();
    cr_assert_eq(json_array_size(json_object_get(j, "grants")), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(j, "grants"), 1), "uid")), 2);
    cr_assert(json_integer_value(json_object_get(json_array_get(json_object_get(j, "grants"), 0), "at")) > 1700000000);
    json_decref(j);
    cr_assert_eq(ctl(SOCK " grants desktop nosuch"), 1);
    one_line("grants desktop nosuch");
    cr_assert(strstr(ERR, "no stage named nosuch"), "%s", ERR);

    cr_assert_eq(ctl(SOCK " history"), 0);
    char by[64];
    snprintf(by, sizeof by, "Z  host pid %d  start: policy ", (int)N.pid);
    cr_assert(strstr(OUT, by) && !strchr(strchr(OUT, '\n') + 1, '\n'), "the node's start alone: %s", OUT);
    cr_assert_eq(ctl(SOCK " pause mobile"), 0);
    cr_assert_eq(ctl(SOCK " halt desktop --why 'disk fills up'"), 0);
    cr_assert_eq(ctl(SOCK " history"), 0);
    cr_assert(strstr(OUT, "  pause rollout mobile\n") && strstr(OUT, "  halt rollout desktop: disk fills up\n"), "%s",
              OUT);
    cr_assert(strstr(OUT, "pause rollout mobile\n") < strstr(OUT, "halt rollout"), "oldest first: %s", OUT);
    cr_assert(OUT[0] == '2' && OUT[10] == 'T' && OUT[19] == 'Z', "RFC 3339 times: %s", OUT);
    cr_assert_eq(ctl(SOCK " --json history"), 0);
    j = out_json();
    cr_assert_eq(json_array_size(json_object_get(j, "history")), 3, "start, pause, halt");
    const json_t *halt = json_array_get(json_object_get(j, "history"), 2);
    cr_assert_str_eq(json_string_value(json_object_get(halt, "action")), "halt");
    cr_assert_str_eq(json_string_value(json_object_get(halt, "reason")), "disk fills up");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(halt, "actor"), "kind")), "control");
    json_decref(j);

    /* a new release for desktop: the earlier one's grants are still listed (issue 20 §8) */
    cr_assert_eq(nu_sh("cd %s && '%s/upgate-keys' release --key release.key --version 2.1.0 --file app.bin --url "
                       "http://127.0.0.1:9/app.bin --ttl 86400 --out r21.manifest >/dev/null && "
                       "sed -i '0,/release.manifest/s//r21.manifest/' policy.yaml",
                       N.dir, tu_build_dir()),
                 0);
    cr_assert_eq(ctl(SOCK " reload"), 0, "%s", ERR);
    cr_assert_eq(ctl(SOCK " resume desktop"), 0, "%s", ERR);
    cr_assert_eq(hello(3, "1.4.0", NULL), UG_TYPE_HINT);
    cr_assert_eq(ctl(SOCK " grants desktop"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "\n1 uid granted release 2.1.0 of rollout desktop: canary 1\n"), "%s", OUT);
    cr_assert_eq(ctl(SOCK " grants desktop --release 2.0.0"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "Z\n2 uids granted release 2.0.0 of rollout desktop: canary 2\n"), "%s", OUT);
    for (int uid = 1; uid <= 2; uid++) {
        snprintf(row, sizeof row, "\n%-10d  canary            20", uid);
        cr_assert(strstr(OUT, row), "uid %d: %s", uid, OUT);
    }
    cr_assert_eq(ctl(SOCK " grants desktop canary --release=2.0.0 --json"), 0, "%s", ERR);
    j = out_json();
    cr_assert_str_eq(json_string_value(json_object_get(j, "release")), "2.0.0");
    cr_assert_eq(json_array_size(json_object_get(j, "grants")), 2, "%s", OUT);
    json_decref(j);
    cr_assert_eq(ctl(SOCK " grants desktop early --release 2.0.0"), 0, "%s", ERR);
    cr_assert_str_eq(OUT, "0 uids granted release 2.0.0 of rollout desktop\n");
    cr_assert_eq(ctl(SOCK " grants desktop --release 2.1.0"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "1 uid granted release 2.1.0"), "the release in force: %s", OUT);
    cr_assert_eq(ctl(SOCK " grants desktop --release 9.9.9"), 1);
    one_line("grants --release 9.9.9");
    cr_assert(strstr(ERR, "never granted release 9.9.9 (its releases: 2.0.0, 2.1.0)"), "%s", ERR);
    cr_assert_eq(ctl(SOCK " grants desktop --release x"), 2);
    cr_assert(strstr(ERR, "--release x: not a version"), "%s", ERR);
    cr_assert_eq(ctl(SOCK " status --release 2.0.0"), 2);
    cr_assert(strstr(ERR, "--release: only for grants"), "%s", ERR);

    /* fleet goes through as it is: the plugin answers, or refuses the command */
    int rc = ctl(SOCK " fleet status");
    if (rc == 1) {
        one_line("fleet status");
        cr_assert(strstr(ERR, "fleet"), "the plugin's own refusal: %s", ERR);
    } else {
        cr_assert_eq(rc, 0, "%s", ERR);
        cr_assert(OUT[0], "something rendered");
    }
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
}

/* ---- watch ---------------------------------------------------------------------- */

/* The version census through a node: HELLOs of two versions, then
 * `census` as a table and as JSON. */
Test(ctl, census_as_a_table_and_as_json)
{
    start_two();
    for (uint64_t uid = 1; uid <= 20; uid++)
        (void)hello(uid, uid <= 15 ? "1.4.0" : "1.3.0", NULL);
    cr_assert_eq(ctl(SOCK " census"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "  hour           20         2  1.4.0 15, 1.3.0 5\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  1.4.0"), "a bucket line: %s", OUT);
    cr_assert_eq(ctl(SOCK " --json census"), 0, "%s", ERR);
    json_t *j = out_json();
    json_t *w = json_object_get(json_object_get(j, "windows"), "week");
    cr_assert_eq(json_integer_value(json_object_get(w, "total")), 20, "%s", OUT);
    cr_assert_eq(json_array_size(json_object_get(j, "buckets")), 3, "two versions and the \"other\" bucket: %s", OUT);
    json_decref(j);
    cr_assert_eq(ctl(SOCK " status"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "  census: 20 uids in the last hour, 20 in the day, 20 in the week; top versions (day): "
                          "1.4.0 15, 1.3.0 5\n"),
              "%s", OUT);
}

Test(ctl, watch_without_a_terminal_prints_one_block_per_interval)
{
    start_two();
    cr_assert_eq(hello(1, "1.4.0", NULL), UG_TYPE_HINT);
    cr_assert_eq(ctl(SOCK " watch --count 2 --interval 1"), 0, "%s", ERR);
    cr_assert_null(strchr(OUT, '\033'), "no terminal codes into a pipe: %s", OUT);
    int frames = 0;
    for (const char *p = OUT; (p = strstr(p, "Z  tracker up ")); p++)
        frames++;
    cr_assert_eq(frames, 2, "%s", OUT);
    cr_assert(strstr(OUT, "rollout desktop  release 2.0.0\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  canary  [############............]  1/2 granted    +1/min\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  early   [......................]  0/100 granted  +0/min\n") ||
              strstr(OUT, "  early   [........................]  0/100 granted  +0/min\n"), "%s", OUT);
    cr_assert(strstr(OUT, "  everyone  [##......................]  10.00% in force, 0 granted  +0/min\n"), "%s", OUT);
    /* the canary's quota spent: its WAITs are counted, and said to be WAITs (issue 20 §7) */
    cr_assert_eq(hello(2, "1.4.0", NULL), UG_TYPE_HINT);
    cr_assert_eq(hello(3, "1.4.0", NULL), UG_TYPE_WAIT);
    cr_assert_eq(ctl(SOCK " watch --count 1"), 0, "%s", ERR);
    cr_assert(strstr(OUT, "  canary  [########################]  2/2 granted    +2/min  waits: quota 1\n"), "%s", OUT);

    cr_assert_eq(ctl(SOCK " --json watch --count 2 --interval 1"), 0, "%s", ERR);
    char *nl = strchr(OUT, '\n');
    cr_assert(nl && strchr(nl + 1, '\n') && !strchr(nl + 1, '\n')[1], "two lines: %s", OUT);
    *nl = 0;
    json_t *j = json_loads(OUT, 0, NULL);
    cr_assert(json_is_array(json_object_get(j, "rollouts")), "each line a status object: %s", OUT);
    json_decref(j);

    /* on a terminal (script(1) gives it one): redrawn in place, cut to the
     * screen, the cursor hidden and given back, also on Ctrl-C */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd %s && script -qec \"stty cols 40 rows 4; '%s/upgate-ctl' " SOCK
             " watch --count 2\" /dev/null", N.dir, tu_build_dir());
    cr_assert_eq(tu_run(cmd, OUT, sizeof OUT), 0, "%s", OUT);
    cr_assert(strncmp(OUT, "\033[?25l\033[2J\033[H", 13) == 0, "cursor hidden, screen cleared: %s", OUT);
    cr_assert(strstr(OUT, "\033[J\033[H") && strstr(strstr(OUT, "\033[J\033[H"), "\033[J\033[?25h"),
              "a second frame from the top, then the cursor back: %s", OUT);
    cr_assert(strstr(OUT, "rollout desktop  release 2.0.0\033[K\r\n... 4 more lines (a taller terminal show\033[K"),
              "cut to 4 rows and 40 columns: %s", OUT);
    cr_assert(strstr(OUT, "Z  tracker up ") && !strstr(OUT, "rollout mobile"), "%s", OUT);
    snprintf(cmd, sizeof cmd, "cd %s && script -qec \"timeout --preserve-status -s INT 1.5 '%s/upgate-ctl' " SOCK
             " watch\" /dev/null", N.dir, tu_build_dir());
    cr_assert_eq(tu_run(cmd, OUT, sizeof OUT), 0, "Ctrl-C ends it with 0: %s", OUT);
    size_t n = strlen(OUT);
    cr_assert(n > 8 && strcmp(OUT + n - 8, "\033[?25h\r\n") == 0, "the cursor given back: [%s]", OUT + (n > 20 ? n - 20 : 0));

    /* the tracker gone: the look fails, said on stderr, exit 1 */
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    cr_assert_eq(ctl(SOCK " watch --count 1"), 1);
    cr_assert(strstr(ERR, "no such socket"), "%s", ERR);
}

/* ---- the lists of commands against proto/control.def ---------------------------- */

typedef struct {
    const char *name, *who, *members;
} control_row;

static const control_row control_rows[] = {
#define UG_CONTROL(name, who, members, min, max, flags, usage, help) {#name, #who, members},
#include "control.def"
#undef UG_CONTROL
};

/* The text of ROOT/path from the line starting with from to the next line
 * starting with to (both without their leading newline); aborts if absent. */
static char *section(const char *path, const char *from, const char *to)
{
    char p[4096], *text = calloc(1, 1 << 20);
    snprintf(p, sizeof p, "%s/%s", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".", path);
    FILE *f = fopen(p, "r");
    cr_assert(f && text, "%s cannot be read", p);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[n] = 0;
    char *a = strstr(text, from);
    cr_assert_not_null(a, "%s has no \"%s\"", path, from + 1);
    char *b = strstr(a + 1, to);
    if (b)
        *b = 0;
    memmove(text, a, strlen(a) + 1);
    return text;
}

/* Is name the first word after the mark in one of the section's lines? */
static bool listed(const char *sec, const char *mark, const char *name)
{
    char line[128];
    snprintf(line, sizeof line, "%s%s", mark, name);
    for (const char *p = strstr(sec, line); p; p = strstr(p + 1, line))
        if (strchr(" `\n", p[strlen(line)]))
            return true;
    return false;
}

/* Every word after mark in sec is the name of a row that offers(who). */
static void nothing_else(const char *sec, const char *mark, const char *where, bool (*offers)(const char *who))
{
    for (const char *p = strstr(sec, mark); p; p = strstr(p + 1, mark)) {
        char name[64];
        size_t n = strcspn(p + strlen(mark), " `\n");
        snprintf(name, sizeof name, "%.*s", (int)n, p + strlen(mark));
        bool known = false;
        for (size_t i = 0; i < sizeof control_rows / sizeof control_rows[0]; i++)
            known |= !strcmp(control_rows[i].name, name) && offers(control_rows[i].who);
        cr_assert(known, "%s lists %s, which proto/control.def does not give it", where, name);
    }
}

static bool in_ctl(const char *who)
{
    return strcmp(who, "HOST") != 0;
}

static bool in_plugin(const char *who)
{
    return strcmp(who, "CTL") != 0;
}

/* The man page lists upgate-ctl's commands, docs/control.md the plugin's
 * requests with their members: both exactly those of the table. */
Test(ctl, every_list_of_commands_is_the_tables)
{
    char *man = section("man/upgate-ctl.8.in", "\n.Sh COMMANDS", "\n.Sh ");
    char *doc = section("docs/control.md", "\n## Requests", "\n## ");
    for (size_t i = 0; i < sizeof control_rows / sizeof control_rows[0]; i++) {
        const control_row *r = &control_rows[i];
        if (in_ctl(r->who))
            cr_expect(listed(man, "\n.It Ic ", r->name), "upgate-ctl(8) COMMANDS has no .It Ic %s", r->name);
        if (!in_plugin(r->who))
            continue;
        cr_assert(listed(doc, "\n| `", r->name), "docs/control.md's requests have no row for %s", r->name);
        char head[64], word[64];
        snprintf(head, sizeof head, "\n| `%s` |", r->name);
        const char *row = strstr(doc, head), *end = strchr(row + 1, '\n');
        for (const char *m = r->members; *m;) {
            size_t n = strcspn(m, " ");
            snprintf(word, sizeof word, "`%.*s", (int)n, m);
            const char *hit = strstr(row, word);
            cr_expect(hit && (!end || hit < end), "docs/control.md: %s's row does not name its member %s", r->name,
                      word + 1);
            m += n + (m[n] == ' ');
        }
    }
    nothing_else(man, "\n.It Ic ", "upgate-ctl(8) COMMANDS", in_ctl);
    nothing_else(doc, "\n| `", "docs/control.md's requests", in_plugin);
    free(man);
    free(doc);
}

/* Issue 21 §4 "Who answers": with the socket in a folder anyone can write,
 * another user's socket there is not believed, even when it says ok. */
Test(ctl, a_socket_served_by_another_user_is_not_believed)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    char dir[] = "/tmp/ugctl-peer.XXXXXX", sock[64];
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 01777), 0);
    snprintf(sock, sizeof sock, "%s/fake.ctl", dir);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) { /* the neighbour: nobody, answering ok to anything */
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
        umask(0);
        if (bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(s, 4) != 0)
            _exit(4);
        if (write(ready[1], "r", 1) != 1)
            _exit(5);
        for (int i = 0; i < 2; i++) {
            int c = accept(s, NULL, NULL);
            char b[4096];
            if (c >= 0 && recv(c, b, sizeof b, 0) > 0 && send(c, "{\"ok\":true,\"rollouts\":[]}\n", 26, 0) > 0)
                close(c);
        }
        _exit(0);
    }
    char r;
    cr_assert_eq(read(ready[0], &r, 1), 1, "the neighbour's socket is up");
    int rc = ctl("--socket %s --json halt --all --why test", sock);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(sock);
    rmdir(dir);
    cr_assert_eq(rc, 1, "refused, got %d: %s", rc, OUT);
    one_line("another user's socket");
    cr_assert(strstr(ERR, "served by uid 65534"), "%s", ERR);
}

/* status for people: how far each rollout is from its halt_when, and that
 * a resume of an automatic halt started a new count. */
Test(ctl, status_says_how_far_halt_when_is)
{
    json_t *st = json_loads("{\"tracker\": {}, \"rollouts\": [{\"name\": \"desk\", \"release\": \"2.0.0\","
                            " \"halt_when\": {\"failed_pct\": 50.0, \"rolled_back_pct\": 20.0, \"min_outcomes\": 4,"
                            " \"since\": 1790000000, \"known\": 110, \"failed\": 30, \"rolled_back\": 17}}]}",
                            0, NULL);
    cr_assert_not_null(st);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ug_render_status(st, f, 1790000060);
    fclose(f);
    cr_expect(strstr(text, "  halt_when: failed 27.3% of 110, halts at 50%; rolled back 15.5% of 110, halts at 20%; "
                           "at least 4 outcomes, counted since the resume 2026-09-21T14:13:20Z (1 minute ago)\n"),
              "%s", text);
    free(text);
    json_decref(st);
}

/* status for people: a stage's row adds up to what it granted, so FAILED
 * leaves out the rollbacks that ROLLED BACK shows (status JSON's "failed"
 * keeps them, as halt_when counts them). */
Test(ctl, status_failed_column_leaves_out_rollbacks)
{
    json_t *st = json_loads("{\"tracker\": {}, \"rollouts\": [{\"name\": \"desk\", \"release\": \"2.0.0\", \"stages\": "
                            "[{\"name\": \"all\", \"granted\": 90, \"outcomes\": {\"upgraded\": 50, \"rolled_back\": 21,"
                            " \"failed\": 30, \"declined\": 5, \"pending\": 5, \"not_taken\": 0}}]}]}",
                            0, NULL);
    cr_assert_not_null(st);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ug_render_status(st, f, 1790000060);
    fclose(f);
    const char *row = strstr(text, "  all ");
    cr_assert_not_null(row, "%s", text);
    char name[16];
    int upg = -1, rb = -1, failed = -1, dec = -1, pend = -1, nt = -1;
    cr_assert_eq(sscanf(row, "%15s %*s %*s %*s %*s %d %d %d %d %d %d", name, &upg, &rb, &failed, &dec, &pend, &nt), 7,
                 "%s", text);
    cr_expect_eq(failed, 9, "30 failed, 21 of them rolled back: %s", text);
    cr_expect_eq(upg + rb + failed + dec + pend + nt, 90, "the row adds up to the 90 granted: %s", text);
    free(text);
    json_decref(st);
}

/* status for people: each stage's next ramp step, and when */
Test(ctl, status_says_the_next_ramp_step)
{
    json_t *st = json_loads("{\"tracker\": {}, \"rollouts\": [{\"name\": \"desk\", \"release\": \"2.0.0\", \"stages\": "
                            "[{\"name\": \"early\", \"percent\": 1.0, \"next_step\": {\"at\": 1790010800,"
                            " \"percent\": 5.5}}]}]}",
                            0, NULL);
    cr_assert_not_null(st);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ug_render_status(st, f, 1790000000);
    fclose(f);
    cr_expect(strstr(text, "  stage early: next step 5.50% at 2026-09-21T17:13:20Z (in 3 hours)\n"), "%s", text);
    free(text);
    json_decref(st);
}
