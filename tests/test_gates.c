/* Promotion gates and windowed health through the real plugin on a fake clock: a gate that waits for outcomes and
 * shifts the schedule, manual gates and promote (also through upgate-node and upgate-ctl), restarts, a baseline,
 * and a windowed halt_when that forgets old failures. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "nodeutil.h"
#include "testutil.h"

static fx_t F;
static nu_node N;

#define T0 UINT64_C(1789948800) /* 2026-09-21T00:00:00Z; FX_NOW is 14:13:20 that day */
#define H 3600

static void teardown(void)
{
    fx_stop(&F);
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(gates, .fini = teardown, .timeout = 120);

static void start(const char *policy)
{
    char err[512];
    fx_init(&F, 1);
    fx_policy_bare(&F, policy);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "create failed: %s", err);
}

static void restart(void)
{
    char err[512];
    fx_stop(&F);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "restart failed: %s", err);
}

static json_t *control(const char *req, bool want_ok)
{
    int rc;
    const char *out = fx_control(&F, req, &rc);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s: not JSON: %.200s", req, out);
    cr_assert_eq(json_is_true(json_object_get(o, "ok")), want_ok, "%s: %.400s", req, out);
    return o;
}

/* status: rollout 0, stage s: member key (borrowed from *st, which the caller frees). */
static json_t *stage_of(json_t **st, size_t s)
{
    *st = control("{\"cmd\":\"status\"}", true);
    return json_array_get(json_object_get(json_array_get(json_object_get(*st, "rollouts"), 0), "stages"), s);
}

static double percent_now(void)
{
    json_t *st;
    double p = json_real_value(json_object_get(stage_of(&st, 0), "percent"));
    json_decref(st);
    return p;
}

/* The gate's status member `key` as text ("" for null), into out. */
static const char *gate_text(const char *key, char *out, size_t cap)
{
    json_t *st;
    const json_t *v = json_object_get(json_object_get(stage_of(&st, 0), "gate"), key);
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, cap, "%s", "");
    json_decref(st);
    return out;
}

static void report(uint64_t uid, const char *ver, const char *to, ug_res res)
{
    uint8_t rep[UG_DGRAM_MAX];
    size_t n = fx_report(&F, rep, uid, ver, to, res);
    cr_expect_eq(fx_send(&F, 0, "10.0.0.1", 4000, rep, n).len, 0, "a REPORT is never answered");
}

/* Up to n uids from *next on that get a HINT now, into out; how many. */
static size_t granted(uint64_t *next, uint64_t *out, size_t n)
{
    size_t k = 0;
    for (uint64_t end = *next + 5000; k < n && *next < end; (*next)++)
        if (fx_ask(&F, 0, "10.0.0.1", *next, "1.4.0", NULL).type == UG_TYPE_HINT)
            out[k++] = *next;
    return k;
}

#define RAMP(gate)                                                                                                \
    "rollouts:\n  - name: beta\n    release: release.manifest\n    targets: [\"1.4.0\"]\n    stages:\n"           \
    "      - name: ramp\n        percent:\n"                                                                      \
    "          - {at: 2026-09-21T00:00:00Z, percent: 10}\n"                                                       \
    "          - {at: 2026-09-21T15:00:00Z, percent: 50, " gate "}\n"                                             \
    "          - {at: 2026-09-21T16:00:00Z, percent: 100}\n"

Test(gates, a_gate_holds_its_step_until_outcomes_arrive_then_the_schedule_shifts)
{
    start(RAMP("gate: {min_outcomes: 3, failed: 0.5}"));
    char w[256];
    F.now = T0 + 14 * H;
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 10.0, 1e-9);
    uint64_t next = 1, uids[3];
    cr_assert_eq(granted(&next, uids, 3), 3);
    F.now = T0 + 15 * H + 600; /* step 1 is due, nothing known yet */
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 10.0, 1e-9, "held at 10%% past its time");
    cr_expect_str_eq(gate_text("waits_for", w, sizeof w), "needs 3 more outcomes (0 of 3)");
    cr_expect_str_eq(gate_text("next_gate", w, sizeof w), "1");
    json_t *ex = control("{\"cmd\":\"explain\",\"uid\":1,\"ver\":\"1.4.0\",\"src\":\"10.0.0.1\"}", true);
    const char *said = json_string_value(
        json_object_get(json_object_get(json_array_get(json_object_get(ex, "gates"), 0), "gate"), "waits_for"));
    cr_expect(said && strstr(said, "needs 3 more outcomes"), "explain says it too: %s", said ? said : "(none)");
    json_decref(ex);
    for (int i = 0; i < 3; i++)
        report(uids[i], "1.4.0", "2.0.0", UG_RES_INSTALLED);
    F.now = T0 + 15 * H + 1800; /* half an hour late */
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 50.0, 1e-9, "the gate holds: step 1 in force");
    cr_expect_str_eq(gate_text("shift_s", w, sizeof w), "1800", "the rest moves by the time it waited");
    F.now = T0 + 16 * H + 1700; /* step 2 was due at 16:00, now 16:30 */
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 50.0, 1e-9, "step 2 is shifted too");
    F.now = T0 + 16 * H + 1800;
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 100.0, 1e-9, "and comes at 16:30");
    restart();
    cr_expect_str_eq(gate_text("shift_s", w, sizeof w), "1800", "the shift survives a restart");
    cr_expect_float_eq(percent_now(), 100.0, 1e-9);
}

Test(gates, a_failing_step_stays_held_and_says_why)
{
    start(RAMP("gate: {min_outcomes: 2, failed: 0.02}"));
    char w[256];
    F.now = T0 + 14 * H;
    uint64_t next = 1, uids[3];
    cr_assert_eq(granted(&next, uids, 3), 3);
    F.now = T0 + 15 * H + 60;
    report(uids[0], "1.4.0", "2.0.0", UG_RES_INSTALLED);
    report(uids[1], "1.4.0", "2.0.0", UG_RES_DOWNLOAD_FAILED);
    report(uids[2], "1.4.0", "2.0.0", UG_RES_INSTALLED);
    F.api->tick(F.inst);
    cr_expect_str_eq(gate_text("waits_for", w, sizeof w), "failed 33.3% > 2%");
    cr_expect_float_eq(percent_now(), 10.0, 1e-9);
}

Test(gates, a_manual_gate_holds_across_a_restart_until_promote)
{
    start(RAMP("gate: manual, hold_after: 1h"));
    char w[256];
    F.now = T0 + 15 * H + 60;
    F.api->tick(F.inst);
    cr_expect_str_eq(gate_text("waits_for", w, sizeof w), "manual: upgate-ctl promote beta");
    json_decref(control("{\"cmd\":\"promote\",\"rollout\":\"nope\"}", false));
    restart();
    F.now = T0 + 18 * H;
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 10.0, 1e-9, "still held after a restart");
    cr_expect_str_eq(gate_text("due_since", w, sizeof w), "1790002800", "due since 15:00, stored");
    json_t *o = control("{\"cmd\":\"promote\",\"rollout\":\"beta\"}", true);
    cr_expect_eq(json_integer_value(json_object_get(o, "released")), 1);
    json_decref(o);
    cr_expect_float_eq(percent_now(), 50.0, 1e-9);
    cr_expect_str_eq(gate_text("shift_s", w, sizeof w), "10800", "held three hours");
    json_decref(control("{\"cmd\":\"promote\",\"rollout\":\"beta\"}", false)); /* nothing in the way now */
    F.now = T0 + 19 * H + 60; /* step 2's time, shifted: 19:00 */
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 100.0, 1e-9, "step 2 has no gate and no soak before it");
}

Test(gates, hold_after_soaks_a_step_before_the_next)
{
    start("rollouts:\n  - name: beta\n    release: release.manifest\n    targets: [\"1.4.0\"]\n    stages:\n"
          "      - name: ramp\n        percent:\n"
          "          - {at: 2026-09-21T15:00:00Z, percent: 10, hold_after: 2h}\n"
          "          - {at: 2026-09-21T16:00:00Z, percent: 100}\n");
    char w[256];
    F.now = T0 + 15 * H;
    F.api->tick(F.inst);
    F.now = T0 + 16 * H + 60;
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 10.0, 1e-9);
    cr_expect_str_eq(gate_text("waits_for", w, sizeof w), "hold_after: 3540 s more at 10.00%");
    F.now = T0 + 17 * H;
    F.api->tick(F.inst);
    cr_expect_float_eq(percent_now(), 100.0, 1e-9, "two hours at 10%%, then the next step");
    cr_expect_str_eq(gate_text("shift_s", w, sizeof w), "3600");
}

Test(gates, a_baseline_gate_compares_with_the_previous_release)
{
    fx_init(&F, 1);
    fx_manifest_at(&F, "r19.manifest", "1.9.0");
    fx_policy_bare(&F, "rollouts:\n  - name: beta\n    release: r19.manifest\n    targets: [\"1.4.0\"]\n"
                       "    stages:\n      - {name: all}\n");
    char err[512], w[256];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    for (uint64_t uid = 1; uid <= 4; uid++) {
        cr_assert_eq(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL).type, UG_TYPE_HINT);
        report(uid, "1.4.0", "1.9.0", uid == 1 ? UG_RES_INSTALL_FAILED : UG_RES_INSTALLED); /* 25% failed */
    }
    fx_policy_bare(&F, RAMP("gate: {min_outcomes: 4, baseline: 1}"));
    cr_assert_eq(F.api->reload(F.inst, NULL, err, sizeof err), 0, "%s", err);
    F.now = T0 + 14 * H;
    uint64_t next = 100, uids[8];
    cr_assert_eq(granted(&next, uids, 8), 8);
    F.now = T0 + 15 * H + 60;
    for (int i = 0; i < 4; i++)
        report(uids[i], "1.4.0", "2.0.0", i < 2 ? UG_RES_DOWNLOAD_FAILED : UG_RES_INSTALLED);
    F.api->tick(F.inst);
    cr_expect_str_eq(gate_text("waits_for", w, sizeof w), "failed 50.0% > 1 x 25.0% of 1.9.0");
    cr_expect_float_eq(percent_now(), 10.0, 1e-9);
    for (int i = 4; i < 8; i++)
        report(uids[i], "1.4.0", "2.0.0", UG_RES_INSTALLED);
    F.now += 60;
    F.api->tick(F.inst); /* 2 of 8: 25%, not above the baseline */
    cr_expect_float_eq(percent_now(), 50.0, 1e-9);
}

Test(gates, a_windowed_halt_when_forgets_old_failures)
{
    start("rollouts:\n  - name: beta\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
          "    halt_when: {failed: 0.4, min_outcomes: 4, window: 1h}\n    stages:\n      - {name: all}\n");
    for (uint64_t uid = 1; uid <= 3; uid++) {
        cr_assert_eq(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL).type, UG_TYPE_HINT);
        report(uid, "1.4.0", "2.0.0", UG_RES_DOWNLOAD_FAILED);
    }
    F.now += 2 * H; /* the failures are two hours old */
    for (uint64_t uid = 11; uid <= 14; uid++) {
        cr_assert_eq(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL).type, UG_TYPE_HINT);
        report(uid, "1.4.0", "2.0.0", UG_RES_INSTALLED);
    }
    F.api->tick(F.inst); /* cumulative: 3 of 7 failed, 43% >= 40%; in the last hour: 0 of 4 */
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_t *r0 = json_array_get(json_object_get(st, "rollouts"), 0);
    cr_expect(!json_is_true(json_object_get(r0, "halted")), "not halted: %s",
              json_string_value(json_object_get(r0, "halted_why")));
    json_t *hw = json_object_get(r0, "halt_when");
    cr_expect_eq(json_integer_value(json_object_get(hw, "window_s")), H);
    cr_expect_eq(json_integer_value(json_object_get(hw, "known")), 4, "the window's outcomes");
    cr_expect_eq(json_integer_value(json_object_get(hw, "failed")), 0);
    json_decref(st);
    cr_expect_eq(fx_ask(&F, 0, "10.0.0.1", 20, "1.4.0", NULL).type, UG_TYPE_HINT, "still offering");
    for (uint64_t uid = 21; uid <= 23; uid++) { /* three fresh failures: 3 of 8 in the hour... */
        cr_assert_eq(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL).type, UG_TYPE_HINT);
        report(uid, "1.4.0", "2.0.0", UG_RES_MISMATCH);
    }
    report(20, "1.4.0", "2.0.0", UG_RES_MISMATCH); /* ...and a fourth: 4 of 8, 50% */
    F.now += 20;
    F.api->tick(F.inst);
    st = control("{\"cmd\":\"status\"}", true);
    r0 = json_array_get(json_object_get(st, "rollouts"), 0);
    const char *why = json_string_value(json_object_get(r0, "halted_why"));
    cr_expect(why && strstr(why, "in halt_when's window"), "halted on the window: %s", why ? why : "(none)");
    json_decref(st);
}

/* Issue 25 §1: `gate: manual` released by `upgate-ctl promote` through the
 * real upgate-node (its own clock: the schedule is in the past). */
Test(gates, promote_through_upgate_node_and_upgate_ctl)
{
    char out[8192], err[4096];
    nu_init(&N, "stages:\n  - name: ramp\n    percent:\n      - {at: 2020-01-01T00:00:00Z, percent: 1}\n"
                "      - {at: 2020-01-02T00:00:00Z, percent: 100, gate: manual}\n");
    nu_start(&N, NULL, NULL);
    cr_assert(strstr(N.ready, "state/upgate.ctl"), "%s", N.ready);
    int rc = 0;
    for (int i = 0; i < 50; i++) { /* the node ticks once a second */
        rc = nu_upgate_ctl(&N, N.dir, out, sizeof out, err, sizeof err, "--socket state/upgate.ctl status");
        if (strstr(out, "manual: upgate-ctl promote default"))
            break;
        nu_sleep_ms(100);
    }
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(strstr(out, "waits for: manual: upgate-ctl promote default"), "status says what it waits for: %s", out);
    rc = nu_upgate_ctl(&N, N.dir, out, sizeof out, err, sizeof err, "--socket state/upgate.ctl promote default");
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(strstr(out, "stage ramp: step 1 in force"), "%s", out);
    rc = nu_upgate_ctl(&N, N.dir, out, sizeof out, err, sizeof err, "--socket state/upgate.ctl --json status");
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(strstr(out, "\"percent\": 100") || strstr(out, "\"percent\":100"), "100%% in force: %s", out);
    rc = nu_upgate_ctl(&N, N.dir, out, sizeof out, err, sizeof err, "--socket state/upgate.ctl promote default");
    cr_expect_neq(rc, 0, "nothing left to promote");
    cr_expect(strstr(err, "no gate holds a step"), "%s", err);
    rc = nu_upgate_ctl(&N, N.dir, out, sizeof out, err, sizeof err, "--socket state/upgate.ctl --json history");
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect(strstr(out, "\"action\":\"promote\"") && strstr(out, "\"kind\":\"control\""),
              "the history names the promote and who sent it: %s", out);
    cr_expect_eq(nu_stop(&N, SIGTERM), 0);
    N.pid = 0;
}

/* One refusal each: one line naming the file, line and field. */
Test(gates, the_keys_and_their_refusals)
{
    static const struct {
        const char *gate, *want;
    } bad[] = {
        {"gate: automatic", ":13: rollouts[0].stages[0].percent[1].gate: expected manual or a mapping"},
        {"gate: {}", ":13: rollouts[0].stages[0].percent[1].gate: names nothing to wait for"},
        {"gate: {min_outcomes: 0}", ":13: rollouts[0].stages[0].percent[1].gate.min_outcomes:"},
        {"gate: {failed: 2}", ":13: rollouts[0].stages[0].percent[1].gate.failed: expected a fraction 0..1"},
        {"gate: {failed: 0.1, window: 6}", ":13: rollouts[0].stages[0].percent[1].gate.window: \"6\" is not a duration"},
        {"gate: {failed: 0.1, last: 100001}", ":13: rollouts[0].stages[0].percent[1].gate.last:"},
        {"gate: {baseline: 0}", ":13: rollouts[0].stages[0].percent[1].gate.baseline: expected a factor"},
        {"gate: {manual: yes}", ":13: rollouts[0].stages[0].percent[1].gate.manual:"},
        {"gate: {failed: 0.1, soak: 1h}", ":13: rollouts[0].stages[0].percent[1].gate.soak: unknown key"},
        {"hold_after: 400d", ":13: rollouts[0].stages[0].percent[1].hold_after: \"400d\" is not a duration"},
        {"hold_after: 1w", ":13: rollouts[0].stages[0].percent[1].hold_after: \"1w\" is not a duration"},
    };
    char err[512], text[2048];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_init(&F, 1);
        snprintf(text, sizeof text, RAMP("%s"), bad[i].gate);
        fx_policy_bare(&F, text);
        cr_expect_neq(fx_start(&F, err, sizeof err), 0, "%s: refused", bad[i].gate);
        cr_expect(strstr(err, bad[i].want) && !strchr(err, '\n'), "%s: want [%s], got [%s]", bad[i].gate, bad[i].want,
                  err);
        fx_stop(&F);
    }
    fx_init(&F, 1);
    fx_policy_bare(&F, "rollouts:\n  - name: beta\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
                       "    halt_when: {failed: 0.1, min_outcomes: 5, window: 90m, lasts: 3}\n"
                       "    stages:\n      - {name: all}\n");
    cr_expect_neq(fx_start(&F, err, sizeof err), 0);
    cr_expect(strstr(err, ":9: rollouts[0].halt_when.lasts: unknown key"), "%s", err);
    fx_stop(&F);
}

/* --check shows each step's gate and soak, and halt_when's window. */
Test(gates, check_shows_the_gates)
{
    char cmd[512], out[16384];
    nu_init(&N, "stages:\n  - {name: all}\n");
    nu_write(nu_path(&N, "policy.yaml"),
             "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nrollouts:\n"
             "  - name: beta\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
             "    halt_when: {failed: 0.1, min_outcomes: 5, last: 200}\n    stages:\n"
             "      - name: ramp\n        percent:\n"
             "          - {at: 2020-01-01T00:00:00Z, percent: 1, hold_after: 6h}\n"
             "          - {at: 2020-01-02T00:00:00Z, percent: 5, gate: {min_outcomes: 40, failed: 0.02, window: 6h}}\n"
             "          - {at: 2020-01-03T00:00:00Z, percent: 100, gate: manual, hold_after: 1d}\n");
    snprintf(cmd, sizeof cmd, "cd %s && %s/upgate-node --check --json --policy policy.yaml > check.out 2>check.err",
             N.dir, tu_build_dir());
    int rc = nu_sh("%s", cmd);
    FILE *f = fopen(nu_path(&N, "check.out"), "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    fclose(f);
    out[n] = 0;
    cr_assert(rc == 0 || rc == 3, "rc %d: %s", rc, out); /* 3: warnings (the fixture's manifest expires soon) */
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    json_t *r0 = json_array_get(json_object_get(j, "rollouts"), 0);
    json_t *steps = json_object_get(json_object_get(json_array_get(json_object_get(r0, "stages"), 0), "percent"),
                                    "steps");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(steps, 0), "hold_after_s")), 6 * H);
    json_t *g1 = json_object_get(json_array_get(steps, 1), "gate");
    cr_expect_eq(json_integer_value(json_object_get(g1, "min_outcomes")), 40);
    cr_expect_eq(json_integer_value(json_object_get(g1, "failed_ppm")), 20000);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(g1, "judges"), "window_s")), 6 * H);
    cr_expect(json_is_true(json_object_get(json_object_get(json_array_get(steps, 2), "gate"), "manual")));
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(json_object_get(r0, "halt_when"), "judges"), "last")),
                 200);
    json_decref(j);
    f = fopen(nu_path(&N, "check.err"), "r");
    cr_assert_not_null(f);
    n = fread(out, 1, sizeof out - 1, f);
    fclose(f);
    out[n] = 0;
    cr_expect(strstr(out, "policy.yaml:9: rollouts[0].stages[0]: hold_after on the last step"), "a warning: %s", out);
}
