/* Off-peak windows wired in (issue 25): the `tz` and `windows` keys of a
 * rollout and a stage, and the real plugin answering WAIT with a retry to
 * the next opening outside them, in UTC, in Europe/Berlin across the
 * autumn change, and in the peer's own zone from the GeoIP database. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "policy/policy.h"
#include "policy_fixture.h"
#include "testutil.h"

/* ---- the keys -------------------------------------------------------------- */

TestSuite(windows_keys, .init = pf_setup, .fini = pf_teardown);

Test(windows_keys, load_on_stage_and_rollout)
{
    ug_policy *p = pf_load_ok(HEAD "stages:\n  - name: a\n    tz: Europe/Berlin\n"
                                   "    windows: [{days: mon-fri, from: \"01:00\", to: \"06:00\"},\n"
                                   "              {days: \"sat,sun\", from: \"22:00\", to: \"04:00\", tz: UTC},\n"
                                   "              {from: \"02:00\", to: \"05:00\", tz: peer}]\n  - name: b\n");
    cr_assert_str_eq(ST(p, 0)->tz, "Europe/Berlin");
    cr_assert_not_null(ST(p, 0)->win.cal);
    cr_assert_eq(ST(p, 0)->win.n, 3);
    cr_assert(ST(p, 0)->win.peer, "a tz: peer window reads the peer's zone");
    cr_assert_null(ST(p, 1)->win.cal, "no windows: always open");
    int64_t next;
    cr_assert(ug_windows_open(&ST(p, 1)->win, NULL, 0, &next));
    ug_policy_free(p);
    p = pf_load_ok(HEAD2 "  - name: r\n    release: releases/2.0.0.manifest\n    targets: [1.0]\n    tz: peer\n"
                         "    windows: [{from: \"01:00\", to: \"06:00\"}]\n    stages: [{name: a}]\n");
    cr_assert_str_eq(R0(p)->tz, "peer");
    cr_assert(R0(p)->win.peer, "a window without tz takes the rollout's: peer");
    ug_policy_free(p);
}

Test(windows_keys, refusals_name_file_line_and_field)
{
    const char *S = HEAD "stages:\n  - name: a\n    windows:\n";
    char t[1024];
    snprintf(t, sizeof t, "%s      - {from: \"01:00\", to: \"01:00\"}\n", S);
    pf_fail_at(t, 10, "stages[0].windows[0].to");
    snprintf(t, sizeof t, "%s      - {from: \"01:00\", to: \"02:00\"}\n      - {days: monday, from: \"01:00\", to: \"02:00\"}\n", S);
    pf_fail_at(t, 11, "stages[0].windows[1].days");
    snprintf(t, sizeof t, "%s      - {from: \"1:00\", to: \"02:00\"}\n", S);
    pf_fail_at(t, 10, "stages[0].windows[0].from");
    snprintf(t, sizeof t, "%s      - {from: \"01:00\", to: \"02:00\", tz: Europe/Berln}\n", S);
    pf_fail_at(t, 10, "stages[0].windows[0].tz");
    snprintf(t, sizeof t, "%s      - {from: \"01:00\", to: \"02:00\", tz: ../etc}\n", S);
    pf_fail_at(t, 10, "stages[0].windows[0].tz");
    snprintf(t, sizeof t, "%s      - {from: \"01:00\", to: \"02:00\", at: 3}\n", S);
    pf_fail_at(t, 10, "stages[0].windows[0].at");
    snprintf(t, sizeof t, "%s      - {to: \"02:00\"}\n", S);
    pf_fail_at(t, 10, "stages[0].windows[0].from");
    pf_fail_at(HEAD "stages:\n  - name: a\n    windows: []\n", 9, "stages[0].windows");
    pf_fail_at(HEAD "stages:\n  - name: a\n    tz: Mars/Olympus\n", 9, "stages[0].tz");
    pf_fail_at(HEAD "stages:\n  - name: a\n    tz: \"a b\"\n", 9, "stages[0].tz");
    pf_fail_at(HEAD2 "  - name: r\n    release: releases/2.0.0.manifest\n    targets: [1.0]\n    tz: Nowhere/X\n"
                     "    stages: []\n", 7, "rollouts[0].tz");
    char many[4096];
    int n = snprintf(many, sizeof many, "%s", S);
    for (int i = 0; i < 17; i++)
        n += snprintf(many + n, sizeof many - (size_t)n, "      - {from: \"%02d:00\", to: \"%02d:30\"}\n", i, i);
    pf_fail_at(many, 10, "stages[0].windows");
}

/* ---- the plugin ------------------------------------------------------------ */

static fx_t F;

static void start_at(uint64_t now, bool v2, const char *policy)
{
    char err[512] = "";
    fx_stop(&F);
    fx_init(&F, 2);
    F.now = now;
    char cmd[1024], out[512];
    snprintf(cmd, sizeof cmd, "perl %s/tests/mkgeo.pl %s/geo.mmdb 2>&1", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".",
             F.dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "mkgeo.pl: %s", out);
    if (v2)
        fx_policy_bare(&F, policy);
    else
        fx_policy(&F, policy);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "create failed: %s", err);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(windows, .fini = teardown, .timeout = 60);

/* A WAIT not_selected whose retry brings the peer back within 20% after
 * the opening at `opens`. */
static void expect_closed(fx_reply r, int64_t opens, const char *what)
{
    cr_assert_eq(r.type, UG_TYPE_WAIT, "%s: type %d, want WAIT", what, r.type);
    cr_assert_eq(r.wait.why, (uint64_t)UG_WHY_NOT_SELECTED, "%s: why %llu", what, (unsigned long long)r.wait.why);
    uint64_t d = (uint64_t)(opens - (int64_t)F.now);
    cr_assert(r.wait.retry >= d && r.wait.retry <= d + d / 5, "%s: retry %llu, the window opens in %llu s", what,
              (unsigned long long)r.wait.retry, (unsigned long long)d);
}

static void expect_open(fx_reply r, const char *what)
{
    cr_assert_eq(r.type, UG_TYPE_HINT, "%s: type %d (why %llu), want HINT", what, r.type,
                 (unsigned long long)r.wait.why);
}

/* FX_NOW is Monday 2026-09-21 14:13:20 UTC. */
Test(windows, stage_window_in_utc_waits_until_it_opens)
{
    start_at(FX_NOW, false,
             "targets: [\"1.4.0\"]\nretry: 600\nstages:\n"
             "  - {name: night, windows: [{days: mon-fri, from: \"01:00\", to: \"06:00\", tz: UTC}]}\n");
    for (uint64_t uid = 1; uid < 40; uid++)
        expect_closed(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL), 1790038800, "Monday 14:13 UTC");
    ug_decision d = fx_decide(&F, 7, "1.4.0", "10.0.0.1", 0);
    cr_assert_eq(d.answer, UG_ANSWER_WAIT);
    cr_assert(d.retry >= 38800 && d.retry <= 38800 + 7760, "decide's retry %llu", (unsigned long long)d.retry);
    F.now = 1790038800 - 1;
    expect_closed(fx_ask(&F, 0, "10.0.0.1", 50, "1.4.0", NULL), 1790038800, "a second before");
    F.now = 1790038800;
    expect_open(fx_ask(&F, 0, "10.0.0.1", 50, "1.4.0", NULL), "Tuesday 01:00 UTC");
    F.now = 1790038800 + 5 * 3600;
    expect_closed(fx_ask(&F, 0, "10.0.0.1", 50, "1.4.0", NULL), 1790038800 + 86400,
                  "06:00: closed, even for the uid granted inside");
}

/* explain and status say when the window opens. */
static json_t *ctl_json(const char *req)
{
    int rc;
    const char *out = fx_control(&F, req, &rc);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    return o;
}

Test(windows, explain_and_status_show_the_next_opening)
{
    start_at(FX_NOW, true,
             "rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
             "    tz: Europe/Berlin\n    windows: [{days: mon-fri, from: \"01:00\", to: \"06:00\"}]\n"
             "    stages:\n      - {name: all, windows: [{from: \"02:00\", to: \"03:00\", tz: UTC}]}\n");
    json_t *ex = ctl_json("{\"cmd\":\"explain\",\"uid\":5,\"ver\":\"1.4.0\",\"src\":\"10.0.0.1\"}");
    cr_assert_eq(json_integer_value(json_object_get(ex, "window_opens")), 1790031600, "the rollout's opening");
    json_t *w = json_object_get(ex, "window");
    cr_assert(json_is_false(json_object_get(w, "open")));
    cr_assert_eq(json_integer_value(json_object_get(w, "next")), 1790031600);
    json_decref(ex);
    json_t *st = ctl_json("{\"cmd\":\"status\"}");
    json_t *r = json_array_get(json_object_get(st, "rollouts"), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "window"), "next")), 1790031600);
    json_t *sw = json_object_get(json_array_get(json_object_get(r, "stages"), 0), "window");
    cr_assert_eq(json_integer_value(json_object_get(sw, "next")), 1790042400, "the stage's: Tuesday 02:00 UTC");
    json_decref(st);
    F.now = 1790031600 + 600; /* the rollout's window open, the stage's not: the stage's opening */
    ex = ctl_json("{\"cmd\":\"explain\",\"uid\":5,\"ver\":\"1.4.0\",\"src\":\"10.0.0.1\"}");
    cr_assert_eq(json_integer_value(json_object_get(ex, "window_opens")), 1790042400, "Tuesday 02:00 UTC");
    json_decref(ex);
}

Test(windows, rollout_window_in_its_tz)
{
    start_at(FX_NOW, true,
             "rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
             "    tz: Europe/Berlin\n    windows: [{days: mon-fri, from: \"01:00\", to: \"06:00\"}]\n"
             "    stages:\n      - name: all\n");
    /* 16:13 CEST: the window opens Tuesday 01:00 CEST, Monday 23:00 UTC */
    expect_closed(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), 1790031600, "Monday 16:13 in Berlin");
    F.now = 1790031600;
    expect_open(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "Tuesday 01:00 in Berlin");
}

/* 02:30-04:00 in Europe/Berlin on the night clocks go back (2026-10-25,
 * 01:00 UTC): 00:30-03:00 UTC, two and a half hours; the next night, CET,
 * 01:30-03:00 UTC. */
Test(windows, berlin_across_the_autumn_change)
{
    start_at(1792843200, false,
             "targets: [\"1.4.0\"]\nstages:\n"
             "  - {name: night, windows: [{from: \"02:30\", to: \"04:00\", tz: Europe/Berlin}]}\n");
    expect_closed(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), 1792888200, "Saturday noon");
    F.now = 1792888200 - 1;
    expect_closed(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), 1792888200, "02:29:59 CEST");
    F.now = 1792888200;
    expect_open(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL), "02:30 CEST (00:30 UTC)");
    F.now = 1792897200 - 1;
    expect_open(fx_ask(&F, 0, "10.0.0.1", 4, "1.4.0", NULL), "03:59:59 CET, 2 h 30 min later");
    F.now = 1792897200;
    expect_closed(fx_ask(&F, 0, "10.0.0.1", 5, "1.4.0", NULL), 1792978200, "04:00 CET: next 02:30 CET is 01:30 UTC");
}

/* tz: peer at Monday 20:00 UTC: 04:00 in Shanghai (inside 01:00-06:00),
 * 22:00 in Berlin (outside: opens at 23:00 UTC); an address the database
 * does not place, or places without a zone, reads the stage's tz (Tokyo,
 * 05:00: inside). */
Test(windows, peer_zone_from_geoip)
{
    start_at(1790020800, false,
             "targets: [\"1.4.0\"]\ngeoip: geo.mmdb\nstages:\n"
             "  - {name: night, tz: Asia/Tokyo, windows: [{from: \"01:00\", to: \"06:00\", tz: peer}]}\n");
    expect_open(fx_ask(&F, 0, "127.0.1.5", 1, "1.4.0", NULL), "Shanghai 04:00");
    expect_closed(fx_ask(&F, 0, "127.0.2.5", 2, "1.4.0", NULL), 1790031600, "Berlin 22:00");
    expect_open(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL), "unknown address: Tokyo 05:00");
    expect_open(fx_ask(&F, 0, "127.0.3.5", 4, "1.4.0", NULL), "placed without a zone: Tokyo 05:00");
    F.now = 1790031600;
    expect_open(fx_ask(&F, 0, "127.0.2.5", 2, "1.4.0", NULL), "Berlin 01:00");
}
