/* Version 2 policies (spec/policy.md): rollouts, routing, salts, percent
 * schedules, halt_when, verify, fleet, and the regular-file rule for every
 * file a policy names. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy_fixture.h"
#include "testutil.h"

TestSuite(v2, .init = pf_setup, .fini = pf_teardown);
TestSuite(percent, .init = pf_setup, .fini = pf_teardown);
TestSuite(files, .init = pf_setup, .fini = pf_teardown);
TestSuite(fleet, .init = pf_setup, .fini = pf_teardown);

#define T_DEC1 INT64_C(1796083200) /* 2026-12-01T00:00:00Z */
#define DAY INT64_C(86400)

static const char *two_rollouts =
    HEAD2
    "  - name: desktop\n"
    "    release: releases/3.0.0.manifest\n"
    "    targets: [\"2.0.0\", \"<1.3\"]\n"
    "    plat: [windows-x86_64]\n"
    "    chan: [stable]\n"
    "    salt: desk-salt\n"
    "    paused: true\n"
    "    halt_when: {failed: 0.05, rolled_back: 0.000001, min_outcomes: 100}\n"
    "    outcome_window: 3600\n"
    "    hold_when_unhealthy: true\n"
    "    stages:\n"
    "      - name: canary\n"
    "        uids: [1001]\n"
    "      - name: ramp\n"
    "        salt: own\n"
    "        percent: [{at: 2026-12-01T00:00:00Z, percent: 1}, {at: 2026-12-02T00:00:00Z, percent: 5}]\n"
    "        fleet_rate: 50\n"
    "  - name: everyone-else\n"
    "    release: releases/2.1.0.manifest\n"
    "    targets: [\"<2.0\"]\n"
    "    stages:\n"
    "      - name: canary\n"
    "        percent: {from: 1, to: 100, start: 2026-12-01T00:00:00Z, end: 2026-12-08T00:00:00Z}\n";

Test(v2, rollouts_load_with_every_field)
{
    ug_policy *p = pf_load_ok(two_rollouts);
    cr_assert_eq(p->version, 2);
    cr_assert_eq(p->nrollouts, 2);
    const ug_rollout *r = &p->rollouts[0];
    cr_assert_str_eq(r->name, "desktop");
    cr_assert_eq(r->line, 4);
    cr_assert_str_eq(r->to, "3.0.0");
    cr_assert_eq(r->rel.nurls, 3);
    cr_assert_eq(r->ntargets, 2);
    cr_assert_eq(r->targets[1].op, UG_TARGET_LT);
    cr_assert_eq(r->nplat, 1);
    cr_assert_str_eq(r->plat[0], "windows-x86_64");
    cr_assert_eq(r->nchan, 1);
    cr_assert_str_eq(r->chan[0], "stable");
    cr_assert_eq(r->salt_len, 9);
    cr_assert_str_eq(r->salt, "desk-salt");
    cr_assert(r->paused);
    cr_assert(r->has_halt_when);
    cr_assert_eq(r->halt_failed_ppm, 50000);
    cr_assert_eq(r->halt_rolled_back_ppm, 1);
    cr_assert_eq(r->halt_min_outcomes, 100);
    cr_assert_eq(r->outcome_window, 3600);
    cr_assert(r->hold_when_unhealthy);
    cr_assert_eq(r->nstages, 2);
    const ug_stage *s = &r->stages[0];
    cr_assert_str_eq(s->name, "canary");
    cr_assert_eq(s->line, 15);
    cr_assert_str_eq(s->salt, "desk-salt", "a v2 stage takes its rollout's salt");
    cr_assert(pf_uid_in(s, 1001) && !pf_uid_in(s, 1002));
    s = &r->stages[1];
    cr_assert_str_eq(s->salt, "own", "a stage's own salt wins");
    cr_assert_eq(s->salt_len, 3);
    cr_assert(s->has_percent && s->percent.kind == UG_PCT_STEPS && s->percent.nsteps == 2);
    cr_assert_eq(s->percent.steps[0].at, T_DEC1);
    cr_assert_eq(s->percent.steps[1].bp, 500);
    cr_assert(s->has_fleet_rate && s->fleet_rate == 50.0);

    r = &p->rollouts[1];
    cr_assert_str_eq(r->name, "everyone-else");
    cr_assert_str_eq(r->salt, "everyone-else", "a rollout's salt is its name by default");
    cr_assert_str_eq(r->to, "2.1.0");
    cr_assert(!r->paused && !r->has_halt_when && !r->hold_when_unhealthy);
    cr_assert_eq(r->outcome_window, 86400);
    cr_assert_null(r->plat);
    cr_assert_null(r->chan);
    s = &r->stages[0];
    cr_assert_str_eq(s->name, "canary", "stage names are unique per rollout only");
    cr_assert_str_eq(s->salt, "everyone-else");
    cr_assert_eq(s->percent.kind, UG_PCT_LINEAR);
    cr_assert(s->percent.from_bp == 100 && s->percent.to_bp == 10000);
    cr_assert(s->percent.start == T_DEC1 && s->percent.end == T_DEC1 + 7 * DAY);
    cr_assert(!p->verify_always && !p->fleet.enabled && !p->geo && !p->geoip_path[0]);
    ug_policy_free(p);
}

static const ug_rollout *route(const ug_policy *p, const char *ver, const char *plat, const char *chan)
{
    ug_version v;
    cr_assert(ug_version_parse(&v, ver, strlen(ver)) == 0);
    return ug_policy_route(p, &v, plat, chan);
}

Test(v2, the_first_rollout_whose_targets_plat_and_chan_match_owns_the_peer)
{
    ug_policy *p = pf_load_ok(two_rollouts);
    const ug_rollout *desk = &p->rollouts[0], *rest = &p->rollouts[1];
    cr_assert_eq(route(p, "2.0.0", "windows-x86_64", "stable"), desk);
    cr_assert_eq(route(p, "1.2", "windows-x86_64", "stable"), desk);
    cr_assert_eq(route(p, "1.2", "windows-x86_64", "beta"), rest, "chan differs: the next rollout");
    cr_assert_eq(route(p, "1.2", "linux-x86_64", "stable"), rest);
    cr_assert_eq(route(p, "1.2", "", ""), rest, "no plat: not in a plat list");
    cr_assert_null(route(p, "2.0.0", "linux-x86_64", "stable"), "targeted by nobody else");
    cr_assert_null(route(p, "2.1", "windows-x86_64", "stable"));
    cr_assert_null(route(p, "3.0.0", "", ""));
    ug_version v;
    cr_assert(ug_version_parse(&v, "1.9", 3) == 0);
    cr_assert(ug_rollout_targets(desk, &v) == false && ug_rollout_targets(rest, &v));
    cr_assert_null(ug_policy_route(NULL, &v, "", ""));
    ug_policy_free(p);

    p = pf_load_ok(HEAD "stages: []\n");
    cr_assert_eq(route(p, "1.4.0", "anything", "at-all"), R0(p), "a version 1 rollout takes every plat and chan");
    cr_assert_eq(route(p, "1.2.9", "", ""), R0(p));
    cr_assert_null(route(p, "1.3", "", ""));
    ug_policy_free(p);
}

Test(v2, version_1_keys_beside_rollouts_are_refused_by_name)
{
    const char *keys[] = {"release: releases/2.0.0.manifest", "targets: [1.0]", "stages: []", "paused: false"};
    const char *names[] = {"release", "targets", "stages", "paused"};
    for (size_t i = 0; i < 4; i++) {
        char t[1024];
        snprintf(t, sizeof t,
                 "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nstate: state/\n%s\nrollouts:\n"
                 "  - {name: a, release: releases/2.0.0.manifest, targets: [1.0], stages: []}\n",
                 keys[i]);
        pf_fail_at(t, 3, names[i]);
    }
    pf_fail_at(HEAD2, 3, "rollouts");
    pf_fail_at(HEAD2 "  []\n", 4, "rollouts");
    pf_fail_at("keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nstate: state/\nrollouts: {a: 1}\n", 3,
               "rollouts");
}

Test(v2, refuses_bad_rollouts)
{
    const char *ok = "release: releases/2.0.0.manifest, targets: [1.0], stages: []";
    char t[2048];
#define ONE(fmt) (snprintf(t, sizeof t, HEAD2 "  - {" fmt "}\n", ok), t)
    pf_fail_at(ONE("name: Bad_Name, %s"), 4, "rollouts[0].name");
    pf_fail_at(ONE("name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, %s"), 4, "rollouts[0].name");
    pf_fail_at(ONE("%s"), 4, "rollouts[0].name");
    pf_fail_at(ONE("name: a, %s, bogus: 1"), 4, "rollouts[0].bogus");
    pf_fail_at(ONE("name: a, %s, salt: \"\""), 4, "rollouts[0].salt");
    pf_fail_at(ONE("name: a, %s, paused: yes"), 4, "rollouts[0].paused");
    pf_fail_at(ONE("name: a, %s, plat: []"), 4, "rollouts[0].plat");
    pf_fail_at(ONE("name: a, %s, chan: [a-channel-name-too-long]"), 4, "rollouts[0].chan[0]");
    pf_fail_at(ONE("name: a, %s, outcome_window: 0"), 4, "rollouts[0].outcome_window");
    pf_fail_at(ONE("name: a, %s, hold_when_unhealthy: 1"), 4, "rollouts[0].hold_when_unhealthy");
    pf_fail_at(ONE("name: a, %s, deltas: no"), 4, "rollouts[0].deltas");
    pf_fail_at(ONE("name: a, %s, deltas: []"), 4, "rollouts[0].deltas");
    pf_fail_at(ONE("name: a, %s, halt_when: {min_outcomes: 5}"), 4, "rollouts[0].halt_when");
    pf_fail_at(ONE("name: a, %s, halt_when: {failed: 0.1}"), 4, "rollouts[0].halt_when.min_outcomes");
    pf_fail_at(ONE("name: a, %s, halt_when: {failed: 0.1, min_outcomes: 0}"), 4, "rollouts[0].halt_when.min_outcomes");
    const char *fractions[] = {"0", "0.0", "1.000001", "2", "0.0000001", "-0.1", ".5", "'0.5'", "5%", "1e-2", "01"};
    for (size_t i = 0; i < sizeof fractions / sizeof *fractions; i++) {
        snprintf(t, sizeof t,
                 HEAD2 "  - name: a\n    release: releases/2.0.0.manifest\n    targets: [1.0]\n    stages: []\n"
                       "    halt_when:\n      rolled_back: %s\n      min_outcomes: 9\n",
                 fractions[i]);
        pf_fail_at(t, 9, "rollouts[0].halt_when.rolled_back");
    }
    /* duplicate names: the second one, naming the first */
    snprintf(t, sizeof t, HEAD2 "  - {name: a, %s}\n  - {name: b, %s}\n  - {name: a, %s}\n", ok, ok, ok);
    pf_fail_at(t, 6, "rollouts[2].name");
    snprintf(t, sizeof t, HEAD2 "  - name: a\n    %s\n", "release: releases/2.0.0.manifest");
    pf_fail_at(t, 4, "rollouts[0].targets");
    /* within a rollout, stage names are unique */
    snprintf(t, sizeof t,
             HEAD2 "  - name: a\n    release: releases/2.0.0.manifest\n    targets: [1.0]\n    stages:\n"
                   "      - name: s\n      - name: s\n");
    pf_fail_at(t, 9, "rollouts[0].stages[1].name");
#undef ONE
}

Test(v2, deltas_are_on_unless_a_rollout_says_off)
{
    ug_policy *p = pf_load_ok(HEAD2 "  - {name: a, release: releases/2.0.0.manifest, targets: [1.0], stages: []}\n"
                                    "  - {name: b, release: releases/2.0.0.manifest, targets: [1.1], stages: [], "
                                    "deltas: off}\n"
                                    "  - {name: c, release: releases/2.0.0.manifest, targets: [1.2], stages: [], "
                                    "deltas: on}\n");
    cr_assert_not(p->rollouts[0].deltas_off);
    cr_assert(p->rollouts[1].deltas_off);
    cr_assert_not(p->rollouts[2].deltas_off);
}

Test(v2, fractions_are_exact_parts_per_million)
{
    static const struct {
        const char *text;
        uint32_t ppm;
    } cases[] = {{"1", 1000000}, {"1.0", 1000000}, {"1.000000", 1000000}, {"0.5", 500000}, {"0.05", 50000},
                 {"0.123456", 123456}, {"0.000001", 1}, {"0.29", 290000}, {"0.57", 570000}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char t[1024];
        snprintf(t, sizeof t,
                 HEAD2 "  - {name: a, release: releases/2.0.0.manifest, targets: [1.0], stages: [],"
                       " halt_when: {failed: %s, min_outcomes: 1}}\n",
                 cases[i].text);
        ug_policy *p = pf_load_ok(t);
        cr_assert_eq(R0(p)->halt_failed_ppm, cases[i].ppm, "%s", cases[i].text);
        cr_assert_eq(R0(p)->halt_rolled_back_ppm, 0);
        ug_policy_free(p);
    }
}

Test(v2, verify_always_is_the_only_value)
{
    ug_policy *p = pf_load_ok(HEAD "verify: always\nstages: []\n");
    cr_assert(p->verify_always);
    ug_policy_free(p);
    pf_fail_at(HEAD "verify: never\nstages: []\n", 7, "verify");
    pf_fail_at(HEAD "verify: true\nstages: []\n", 7, "verify");
    pf_fail_at(HEAD "verify: [always]\nstages: []\n", 7, "verify");
}

/* ---- percent: parsing --------------------------------------------------------- */

Test(percent, schedules_load_and_refuse_with_dotted_keys)
{
    ug_policy *p = pf_load_ok(HEAD "stages:\n  - name: s\n    percent:\n"
                                   "      - {at: 2026-12-01T00:00:00Z, percent: 1}\n"
                                   "      - {at: 2026-12-02T00:00:00Z, percent: 1}\n"
                                   "      - {at: \"2026-12-04T00:00:00+01:00\", percent: 20.5}\n"
                                   "      - {at: 2026-12-08T00:00:00Z, percent: 100}\n");
    const ug_percent *pc = &ST(p, 0)->percent;
    cr_assert_eq(pc->kind, UG_PCT_STEPS);
    cr_assert_eq(pc->nsteps, 4);
    cr_assert_eq(pc->steps[2].at, T_DEC1 + 3 * DAY - 3600);
    cr_assert_eq(pc->steps[2].bp, 2050);
    cr_assert_eq(pc->steps[3].bp, 10000);
    ug_policy_free(p);

#define STEPS(a, b) HEAD "stages:\n  - name: s\n    percent:\n      - " a "\n      - " b "\n"
    pf_fail_at(STEPS("{at: 2026-12-02T00:00:00Z, percent: 1}", "{at: 2026-12-02T00:00:00Z, percent: 2}"), 11,
               "stages[0].percent[1].at");
    pf_fail_at(STEPS("{at: 2026-12-02T00:00:00Z, percent: 1}", "{at: 2026-12-01T00:00:00Z, percent: 2}"), 11,
               "stages[0].percent[1].at");
    pf_fail_at(STEPS("{at: 2026-12-01T00:00:00Z, percent: 5}", "{at: 2026-12-02T00:00:00Z, percent: 4.99}"), 11,
               "stages[0].percent[1].percent");
    pf_fail_at(STEPS("{at: 2026-12-01T00:00:00Z, percent: 5}", "{at: 2026-12-02T00:00:00Z}"), 11,
               "stages[0].percent[1].percent");
    pf_fail_at(STEPS("{at: 2026-12-01T00:00:00Z, percent: 5}", "{at: tomorrow, percent: 6}"), 11,
               "stages[0].percent[1].at");
    pf_fail_at(STEPS("{at: 2026-12-01T00:00:00Z, percent: 5}", "{at: 2026-12-02T00:00:00Z, percent: 101}"), 11,
               "stages[0].percent[1].percent");
    pf_fail_at(STEPS("{at: 2026-12-01T00:00:00Z, percent: 5}", "{at: 2026-12-02T00:00:00Z, percent: 6, by: 1}"), 11,
               "stages[0].percent[1].by");
    pf_fail_at(STEPS("{at: 2026-12-01T00:00:00Z, percent: 5}", "7"), 10, "stages[0].percent"); /* where the list starts */
#undef STEPS
    pf_fail_at(HEAD "stages:\n  - name: s\n    percent: []\n", 9, "stages[0].percent");

#define LIN(x) HEAD "stages:\n  - name: s\n    percent: {" x "}\n"
    p = pf_load_ok(LIN("from: 0, to: 0, start: 2026-12-01T00:00:00Z, end: 2026-12-01T00:00:01Z"));
    cr_assert_eq(ST(p, 0)->percent.kind, UG_PCT_LINEAR);
    ug_policy_free(p);
    pf_fail_at(LIN("from: 1, to: 100, start: 2026-12-01T00:00:00Z, end: 2026-12-01T00:00:00Z"), 9,
               "stages[0].percent.end");
    pf_fail_at(LIN("from: 5, to: 4, start: 2026-12-01T00:00:00Z, end: 2026-12-02T00:00:00Z"), 9,
               "stages[0].percent.to");
    pf_fail_at(LIN("from: 1, to: 100, start: 2026-12-01T00:00:00Z"), 9, "stages[0].percent.end");
    pf_fail_at(LIN("from: 1, to: 100.5, start: 2026-12-01T00:00:00Z, end: 2026-12-02T00:00:00Z"), 9,
               "stages[0].percent.to");
    pf_fail_at(LIN("from: 1, to: 100, start: 2026-12-01T00:00:00Z, end: 2026-12-02T00:00:00Z, at: 1"), 9,
               "stages[0].percent.at");
#undef LIN
    /* in a version 2 file the keys say which rollout */
    pf_fail_at(HEAD2 "  - {name: a, release: releases/2.0.0.manifest, targets: [1.0], stages: []}\n"
                     "  - name: b\n    release: releases/2.0.0.manifest\n    targets: [1.0]\n    stages:\n"
                     "      - name: s\n        percent:\n"
                     "          - {at: 2026-12-01T00:00:00Z, percent: 1}\n"
                     "          - {at: 2026-12-02T00:00:00Z, percent: 2}\n"
                     "          - {at: 2026-12-01T00:00:00Z, percent: 3}\n",
               13, "rollouts[1].stages[0].percent[2].at");
}

/* ---- percent: the value in force ------------------------------------------------ */

static ug_percent linear(uint32_t from, uint32_t to, int64_t start, int64_t end)
{
    ug_percent pc = {.kind = UG_PCT_LINEAR, .from_bp = from, .to_bp = to, .start = start, .end = end};
    return pc;
}

/* from + (to - from) * (t - start) / (end - start), rounded down, exactly. */
static uint32_t linear_oracle(const ug_percent *pc, int64_t t)
{
    if (t < pc->start)
        return 0;
    if (t >= pc->end)
        return pc->to_bp;
    long double f = (long double)(pc->to_bp - pc->from_bp) * (long double)(t - pc->start) / (long double)(pc->end - pc->start);
    return pc->from_bp + (uint32_t)f;
}

Test(percent, at_the_boundaries)
{
    ug_percent c = {.kind = UG_PCT_CONST, .bp = 150};
    cr_assert(ug_percent_at(&c, INT64_MIN) == 150 && ug_percent_at(&c, INT64_MAX) == 150);

    ug_pct_step steps[3] = {{T_DEC1, 100, NULL, 0}, {T_DEC1 + DAY, 500, NULL, 0}, {T_DEC1 + 3 * DAY, 10000, NULL, 0}};
    ug_percent s = {.kind = UG_PCT_STEPS, .steps = steps, .nsteps = 3};
    cr_assert_eq(ug_percent_at(&s, INT64_MIN), 0);
    cr_assert_eq(ug_percent_at(&s, T_DEC1 - 1), 0, "0 before the first step");
    cr_assert_eq(ug_percent_at(&s, T_DEC1), 100, "a step is in force from its at");
    cr_assert_eq(ug_percent_at(&s, T_DEC1 + DAY - 1), 100);
    cr_assert_eq(ug_percent_at(&s, T_DEC1 + DAY), 500);
    cr_assert_eq(ug_percent_at(&s, T_DEC1 + 3 * DAY - 1), 500);
    cr_assert_eq(ug_percent_at(&s, T_DEC1 + 3 * DAY), 10000);
    cr_assert_eq(ug_percent_at(&s, INT64_MAX), 10000);
    s.nsteps = 1;
    cr_assert(ug_percent_at(&s, T_DEC1 - 1) == 0 && ug_percent_at(&s, T_DEC1) == 100 && ug_percent_at(&s, INT64_MAX) == 100);

    /* 1% to 100% over a week: 9900 bp over 604800 s */
    ug_percent l = linear(100, 10000, T_DEC1, T_DEC1 + 7 * DAY);
    cr_assert_eq(ug_percent_at(&l, T_DEC1 - 1), 0, "0 before start");
    cr_assert_eq(ug_percent_at(&l, T_DEC1), 100, "from at start");
    cr_assert_eq(ug_percent_at(&l, T_DEC1 + 61), 100, "9900 * 61 / 604800 = 0.998...: rounded down");
    cr_assert_eq(ug_percent_at(&l, T_DEC1 + 62), 101);
    cr_assert_eq(ug_percent_at(&l, T_DEC1 + 7 * DAY / 2), 100 + 4950);
    cr_assert_eq(ug_percent_at(&l, T_DEC1 + 7 * DAY - 1), 9999, "(9900 * 604799) / 604800 = 9899.98...");
    cr_assert_eq(ug_percent_at(&l, T_DEC1 + 7 * DAY), 10000, "to at end");
    cr_assert_eq(ug_percent_at(&l, INT64_MAX), 10000);
    cr_assert_eq(ug_percent_at(&l, INT64_MIN), 0);
    for (int64_t t = T_DEC1 - 10; t < T_DEC1 + 7 * DAY + 10; t += 997)
        cr_assert_eq(ug_percent_at(&l, t), linear_oracle(&l, t), "t %" PRId64, t);

    /* the widest span the type holds: no overflow, still exact */
    ug_percent w = linear(0, 10000, INT64_MIN, INT64_MAX);
    cr_assert_eq(ug_percent_at(&w, INT64_MIN), 0);
    cr_assert_eq(ug_percent_at(&w, 0), 5000, "10000 * 2^63 / (2^64 - 1) = 5000 + tiny");
    cr_assert_eq(ug_percent_at(&w, -1), 4999, "10000 * (2^63 - 1) / (2^64 - 1) = 5000 - tiny");
    cr_assert_eq(ug_percent_at(&w, INT64_MAX - 1), 9999);
    cr_assert_eq(ug_percent_at(&w, INT64_MAX), 10000);
    ug_percent flat = linear(2500, 2500, 0, 1);
    cr_assert(ug_percent_at(&flat, -1) == 0 && ug_percent_at(&flat, 0) == 2500 && ug_percent_at(&flat, 1) == 2500);
}

Test(percent, never_decreases)
{
    ug_pct_step steps[5] = {{-100, 0, NULL, 0}, {0, 0, NULL, 0}, {7, 1, NULL, 0}, {1000, 9999, NULL, 0}, {1001, 10000, NULL, 0}};
    ug_percent all[] = {
        {.kind = UG_PCT_STEPS, .steps = steps, .nsteps = 5},
        linear(1, 10000, -5, 3),
        linear(0, 10000, 0, INT64_C(1) << 40),
        linear(33, 34, INT64_MIN / 2, INT64_MAX / 2),
    };
    srand(4242);
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
        int64_t ts[2000];
        for (size_t i = 0; i < 2000; i++) {
            int64_t t = ((int64_t)rand() << 32) ^ rand();
            ts[i] = i % 2 ? t % 2000 - 1000 : t; /* near the steps, and anywhere */
        }
        ts[0] = INT64_MIN, ts[1] = INT64_MAX;
        for (size_t i = 0; i < 2000; i++)
            for (size_t j = 0; j < 2000; j += 37) {
                uint32_t a = ug_percent_at(&all[k], ts[i]), b = ug_percent_at(&all[k], ts[j]);
                cr_assert(a <= 10000);
                if (ts[i] <= ts[j])
                    cr_assert(a <= b, "kind %zu: %" PRId64 " -> %u, %" PRId64 " -> %u", k, ts[i], a, ts[j], b);
            }
    }
}

static bool in_percent(const ug_stage *s, uint64_t uid, int64_t now)
{
    return ug_percent_bucket(s->salt, s->salt_len, uid) < ug_percent_at(&s->percent, now);
}

Test(percent, a_rollouts_stages_share_its_salt)
{
    /* a 1% stage, then a 10% one with another name, then a ramp: every uid
     * the 1% selects is selected by the later ones, whatever their names */
    ug_policy *p = pf_load_ok(HEAD2 "  - name: app\n    release: releases/3.0.0.manifest\n    targets: [\"<3\"]\n"
                                    "    stages:\n"
                                    "      - {name: one, percent: 1, quota: 5}\n"
                                    "      - {name: ten-later, percent: 10}\n"
                                    "      - {name: ramp, percent: {from: 2, to: 50, start: 2026-12-01T00:00:00Z, end: 2026-12-08T00:00:00Z}}\n");
    const ug_stage *one = ST(p, 0), *ten = ST(p, 1), *ramp = ST(p, 2);
    cr_assert_str_eq(one->salt, "app");
    cr_assert_str_eq(ten->salt, "app");
    size_t n1 = 0, n10 = 0;
    for (uint64_t uid = 1; uid <= 10000; uid++) {
        bool a = in_percent(one, uid, 0), b = in_percent(ten, uid, 0);
        n1 += a, n10 += b;
        if (a) {
            cr_assert(b, "uid %" PRIu64 " in the 1%% stage but not in the 10%% one", uid);
            for (int64_t t = T_DEC1; t <= T_DEC1 + 8 * DAY; t += DAY / 3)
                cr_assert(in_percent(ramp, uid, t), "uid %" PRIu64 " left the ramp at %" PRId64, uid, t);
        }
    }
    cr_assert(n1 > 50 && n1 < 150 && n10 > 850 && n10 < 1150, "%zu %zu", n1, n10);
    ug_policy_free(p);

    /* version 1 salts by stage name: the same two stages draw apart */
    p = pf_load_ok(HEAD "stages:\n  - {name: one, percent: 1}\n  - {name: ten-later, percent: 10}\n");
    size_t outside = 0;
    for (uint64_t uid = 1; uid <= 10000; uid++)
        outside += in_percent(ST(p, 0), uid, 0) && !in_percent(ST(p, 1), uid, 0);
    cr_assert(outside > 0);
    ug_policy_free(p);
}

/* ---- files: regular files only, refused at once -------------------------------- */

static void fifo(const char *rel)
{
    char path[600];
    pf_pathf(path, sizeof path, rel);
    cr_assert_eq(mkfifo(path, 0600), 0);
}

Test(files, policy_key_manifest_and_lists_must_be_regular_files)
{
    char err[UG_ERR_MAX], path[600], want[700];
    fifo("policy.fifo");
    pf_pathf(path, sizeof path, "policy.fifo");
    cr_assert_null(ug_policy_load(path, err, sizeof err));
    snprintf(want, sizeof want, "%s:0: (file): ", path);
    cr_assert(strncmp(err, want, strlen(want)) == 0 && strstr(err, "not a regular file"), "%s", err);
    cr_assert_null(ug_policy_load("/dev/zero", err, sizeof err));
    cr_assert(strncmp(err, "/dev/zero:0: (file): ", 21) == 0 && strstr(err, "not a regular file"), "%s", err);
    cr_assert_null(ug_policy_load("/dev/null", err, sizeof err));
    cr_assert_null(strchr(err, '\n'));

    fifo("keys/fifo.key");
    pf_fail_at("keys:\n  hint: keys/fifo.key\n  issuers: [keys/issuer.pub]\n" TAIL, 2, "keys.hint");
    pf_fail_at("keys:\n  hint: /dev/zero\n  issuers: [keys/issuer.pub]\n" TAIL, 2, "keys.hint");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers: [keys/fifo.key]\n" TAIL, 3, "keys.issuers[0]");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers: [/dev/zero]\n" TAIL, 3, "keys.issuers[0]");
    fifo("releases/fifo.manifest");
    pf_fail_at("keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nrelease: releases/fifo.manifest\n"
               "targets: [1.0]\nstate: s\nstages: []\n",
               2, "release");
    pf_fail_at("keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nrelease: /dev/zero\n"
               "targets: [1.0]\nstate: s\nstages: []\n",
               2, "release");
    pf_fail_at(HEAD2 "  - {name: a, release: /dev/zero, targets: [1.0], stages: []}\n", 4, "rollouts[0].release");
    fifo("lists/geo.fifo");
    pf_fail_at(HEAD "geoip: lists/geo.fifo\nstages: []\n", 7, "geoip");
    pf_fail_at(HEAD "geoip: /dev/zero\nstages: []\n", 7, "geoip");
    fifo("lists/pw.fifo");
    pf_fail_at(HEAD "fleet: {redis: \"redis://127.0.0.1:6379/0\", tracker: t1, password_file: lists/pw.fifo}\nstages: []\n",
               7, "fleet.password_file");
    pf_fail_at(HEAD "fleet: {redis: \"redis://127.0.0.1:6379/0\", tracker: t1, password_file: /dev/zero}\nstages: []\n",
               7, "fleet.password_file");
    /* the messages say what is wrong */
    char t[512];
    snprintf(t, sizeof t, "keys:\n  hint: keys/fifo.key\n  issuers: [keys/issuer.pub]\n" TAIL);
    cr_assert_null(pf_load_text(pf_yaml, t, err, sizeof err));
    cr_assert(strstr(err, "not a regular file"), "%s", err);
}

Test(files, policy_size_is_capped_at_16_mib)
{
    size_t n = (16u << 20) + 1;
    char *big = malloc(n + 1);
    cr_assert(big);
    memset(big, '#', n);
    big[n - 1] = '\n';
    big[n] = '\0';
    char err[UG_ERR_MAX];
    ug_policy *p = pf_load_text(pf_yaml, big, err, sizeof err);
    free(big);
    cr_assert_null(p, "accepted");
    cr_assert(strstr(err, ":0: (file): ") && strstr(err, "16777216"), "%s", err);
}

/* ---- fleet ---------------------------------------------------------------------- */

Test(fleet, section_loads_and_validates_syntax_only)
{
    pf_put("lists/redis.pw", "s3cret\n", 7);
    ug_policy *p = pf_load_ok(HEAD "fleet:\n  redis: \"sentinel://10.0.0.1:26379,[2001:db8::1]:26379/mymaster/2\"\n"
                                   "  tracker: tracker-1.eu\n  password_file: lists/redis.pw\n  lease: 64\n  lease_timeout: 15\n"
                                   "stages: []\n");
    const ug_fleet_conf *f = &p->fleet;
    cr_assert(f->enabled);
    cr_assert_str_eq(f->redis, "sentinel://10.0.0.1:26379,[2001:db8::1]:26379/mymaster/2");
    cr_assert_str_eq(f->tracker, "tracker-1.eu");
    char want[700];
    snprintf(want, sizeof want, "%s/lists/redis.pw", pf_dir);
    cr_assert_str_eq(f->password_file, want);
    cr_assert(f->lease == 64 && f->lease_timeout == 15);
    cr_assert_str_eq(f->user, "", "the default user unless named");
    ug_policy_free(p);
    p = pf_load_ok(HEAD "fleet: {redis: \"redis://10.0.0.5\", tracker: a, user: upgate, password_file: lists/redis.pw}\n"
                        "stages: []\n");
    cr_assert_str_eq(p->fleet.user, "upgate", "a Redis ACL user");
    ug_policy_free(p);

    p = pf_load_ok(HEAD "fleet: {redis: \"unix:///run/redis/redis.sock\", tracker: a}\nstages: []\n");
    cr_assert(p->fleet.enabled && p->fleet.lease == 0 && p->fleet.lease_timeout == 30 && !p->fleet.password_file[0]);
    ug_policy_free(p);
    const char *good[] = {"redis://localhost", "redis://127.0.0.1:6379", "redis://r.example.net:6380/15",
                          "redis://[::1]:6379/0", "sentinel://s1:26379/m", "unix:///tmp/r.sock"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char t[512];
        snprintf(t, sizeof t, HEAD "fleet: {redis: \"%s\", tracker: a}\nstages: []\n", good[i]);
        ug_policy_free(pf_load_ok(t));
    }
}

Test(fleet, refusals)
{
    char err[UG_ERR_MAX];
    pf_put("lists/empty.pw", "\n", 1);
    pf_fail_at(HEAD "fleet: {redis: \"redis://h:1/0\", tracker: a, password: hunter2}\nstages: []\n", 7, "fleet.password");
    cr_assert_null(pf_load_text(pf_yaml, HEAD "fleet: {redis: \"redis://h:1/0\", tracker: a, password: hunter2}\nstages: []\n",
                                err, sizeof err));
    cr_assert(strstr(err, "password_file") && !strstr(err, "hunter2"), "%s", err);
    const char *bad[] = {"redis://:hunter2@h:6379/0", "redis://user:pw@h", "http://h:6379", "redis://", "redis://h:0",
                         "redis://h:65536", "redis://h:6379/x", "redis://h:6379/", "redis://h /0", "unix://relative",
                         "unix:///", "sentinel://h/m", "sentinel://h:1", "sentinel://h:1/", "redis://[::1:6379",
                         "redis://h:6379/0/1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char t[512];
        snprintf(t, sizeof t, HEAD "fleet: {redis: \"%s\", tracker: a}\nstages: []\n", bad[i]);
        pf_fail_at(t, 7, "fleet.redis");
        if (strchr(bad[i], '@')) {
            cr_assert_null(pf_load_text(pf_yaml, t, err, sizeof err));
            cr_assert(strstr(err, "password_file"), "%s", err);
        }
    }
    pf_fail_at(HEAD "fleet: {tracker: a}\nstages: []\n", 7, "fleet.redis");
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\"}\nstages: []\n", 7, "fleet.tracker");
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: \"a b\"}\nstages: []\n", 7, "fleet.tracker");
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: a, lease: 0}\nstages: []\n", 7, "fleet.lease");
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: a, lease_timeout: 0}\nstages: []\n", 7, "fleet.lease_timeout");
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: a, password_file: lists/none.pw}\nstages: []\n", 7,
               "fleet.password_file");
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: a, password_file: lists/empty.pw}\nstages: []\n", 7,
               "fleet.password_file");
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: a, pool: 3}\nstages: []\n", 7, "fleet.pool");
    pf_put("lists/user.pw", "pw\n", 3);
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: a, user: upgate}\nstages: []\n", 7, "fleet.user");
    cr_assert_null(pf_load_text(pf_yaml, HEAD "fleet: {redis: \"redis://h\", tracker: a, user: upgate}\nstages: []\n", err,
                                sizeof err));
    cr_assert(strstr(err, "needs password_file"), "%s", err);
    pf_fail_at(HEAD "fleet: {redis: \"redis://h\", tracker: a, user: \"up gate\", password_file: lists/user.pw}\n"
                    "stages: []\n", 7, "fleet.user");
    pf_fail_at(HEAD "fleet: redis://h\nstages: []\n", 7, "fleet");
}
