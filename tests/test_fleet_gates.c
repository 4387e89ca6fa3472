/* Gates across a fleet (issue 25): `upgate-ctl promote` on one tracker releases that very gate on every tracker, each
 * writing "fleet" in its history; a promote that arrives before the gate is due here waits for it, and never
 * releases a later gate or one of another percentage. Real upgate-nodes on a real Redis. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fleetutil.h"
#include "testutil.h"

static fu_fleet F;

static void setup(void)
{
    if (!ru_available())
        cr_skip_test("redis-server is not installed (make deps installs it)");
}

static void teardown(void)
{
    fu_teardown(&F);
}

TestSuite(fleet_gates, .init = setup, .fini = teardown, .timeout = 120);

/* A ramp of 1%, then a manual gate before `p1`% at `t1`, then one before 100% at `t2`. */
static void ramp(const char *t1, int p1, const char *t2)
{
    snprintf(F.stages, sizeof F.stages,
             "  - name: ramp\n    percent:\n      - {at: 2020-01-01T00:00:00Z, percent: 1}\n"
             "      - {at: %s, percent: %d, gate: manual}\n      - {at: %s, percent: 100, gate: manual}\n",
             t1, p1, t2);
}

static long long gate_int(unsigned i, const char *key)
{
    return fu_gate_int(&F, i, key);
}

/* Polls tracker i until its gate's due_since is set, or its step is `step` (ms at most); the step. */
static long long wait_step(unsigned i, long long step, long ms, bool due)
{
    long long got = -1;
    for (long long end = fu_mono_ms() + ms; fu_mono_ms() < end; usleep(100 * 1000)) {
        got = gate_int(i, "step");
        if (got == step && (!due || gate_int(i, "due_since") > 0))
            break;
    }
    return got;
}

/* upgate-ctl promote on a, once its gate before step 1 is due; it moves a on. */
static void promote_a(void)
{
    cr_assert_eq(wait_step(0, 0, 5000, true), 0, "a holds at step 0, the gate due");
    json_t *r = fu_ctl(&F, 0, "{\"cmd\":\"promote\",\"rollout\":\"default\"}");
    cr_assert(json_is_true(json_object_get(r, "ok")), "promote on a");
    cr_assert_str_eq(json_string_value(json_object_get(r, "fleet")), "written", "Redis holds it when promote returns");
    json_decref(r);
}

/* How many promote entries tracker i's history holds, and the actor kind of the last. */
static int promotes(unsigned i, char *kind, size_t cap)
{
    int n = 0;
    kind[0] = 0;
    json_t *r = fu_ctl(&F, i, "{\"cmd\":\"history\"}"), *e;
    size_t k;
    json_array_foreach(json_object_get(r, "history"), k, e)
    {
        const char *act = json_string_value(json_object_get(e, "action"));
        if (act && !strcmp(act, "promote")) {
            n++;
            snprintf(kind, cap, "%s", json_string_value(json_object_get(json_object_get(e, "actor"), "kind")));
        }
    }
    json_decref(r);
    return n;
}

Test(fleet_gates, promote_on_one_tracker_releases_the_gate_on_every_tracker)
{
    fu_init(&F, 2, NULL, "", "");
    /* step 2 a second after step 1: due a second after step 1 comes into
     * force (the schedule shifts by the time the first gate held it) */
    ramp("2020-01-02T00:00:00Z", 50, "2020-01-02T00:00:01Z");
    fu_start_all(&F);
    fu_wait_joined(&F);
    cr_assert_eq(wait_step(1, 0, 5000, true), 0, "b holds at step 0, the gate due");
    promote_a();
    long long t0 = fu_mono_ms();
    cr_assert_eq(wait_step(1, 1, 5000, false), 1, "b releases the gate before step 1");
    fprintf(stderr, "fleet promote: b released the gate %lld ms after a's promote returned\n", fu_mono_ms() - t0);
    char kind[32];
    cr_assert_eq(promotes(1, kind, sizeof kind), 1);
    cr_assert_str_eq(kind, "fleet", "b's history says the fleet released it");
    cr_assert_eq(promotes(0, kind, sizeof kind), 1, "a released it once, not again on reading its own word");
    cr_assert_str_eq(kind, "control");
    for (unsigned i = 0; i < 2; i++) { /* ticks and flag reads pass: the next gate comes due and stays */
        cr_assert_eq(wait_step(i, 1, 5000, true), 1, "tracker %s: only the gate promoted", F.name[i]);
        cr_assert_eq(gate_int(i, "next_gate"), 2);
    }
    usleep(1000 * 1000);
    cr_assert_eq(gate_int(1, "step"), 1, "b holds at the next gate, due");
    char out[8192], err[512];
    cr_assert_eq(nu_upgate_ctl(&F.node[1], F.node[1].dir, out, sizeof out, err, sizeof err,
                               "--socket ctl.sock promote default"),
                 0, "%s", err);
    cr_assert(strstr(out, "stage ramp: step 2 in force") && strstr(out, "fleet: written"), "%s", out);
    cr_assert_eq(wait_step(0, 2, 5000, false), 2, "and the other way: b's promote releases a's next gate");
    cr_assert_eq(promotes(0, kind, sizeof kind), 2);
    cr_assert_str_eq(kind, "fleet");
}

/* b's step 1 is not due yet when a promotes it: b releases it once it
 * comes due, only at the percentage a promoted, and not the gate after it. */
Test(fleet_gates, a_promote_ahead_of_the_gate_waits_for_that_very_gate)
{
    fu_init(&F, 2, NULL, "", "");
    ramp("2020-01-02T00:00:00Z", 50, "2099-01-03T00:00:00Z");
    fu_start(&F, 0);
    ramp("2099-01-02T00:00:00Z", 50, "2099-01-03T00:00:00Z");
    fu_start(&F, 1);
    fu_wait_joined(&F);
    promote_a();
    cr_assert_eq(wait_step(0, 1, 2000, false), 1);
    usleep(1500 * 1000);
    cr_assert_eq(gate_int(1, "step"), 0, "b's step 1 is not due: nothing to release yet");
    ramp("2020-01-02T00:00:00Z", 40, "2020-01-03T00:00:00Z"); /* due now, but 40%: not the gate promoted */
    fu_reload(&F, 1);
    cr_assert_eq(wait_step(1, 0, 5000, true), 0);
    usleep(1500 * 1000);
    cr_assert_eq(gate_int(1, "step"), 0, "a gate of another percentage is not the one promoted");
    ramp("2020-01-02T00:00:00Z", 50, "2020-01-02T00:00:01Z"); /* that very gate, due */
    fu_reload(&F, 1);
    cr_assert_eq(wait_step(1, 1, 5000, false), 1, "b releases the gate promoted once it is due");
    char kind[32];
    cr_assert_eq(promotes(1, kind, sizeof kind), 1);
    cr_assert_str_eq(kind, "fleet");
    cr_assert_eq(wait_step(1, 1, 5000, true), 1, "the gate after it comes due");
    usleep(1500 * 1000);
    cr_assert_eq(gate_int(1, "step"), 1, "and is not released by a's promote");
    cr_assert_eq(gate_int(1, "next_gate"), 2);
}

/* a promotes its step 1 while b, whose step 1 has no gate, holds at step
 * 2: a word about step 1 never releases b's step 2. */
Test(fleet_gates, a_promote_never_releases_a_later_gate)
{
    fu_init(&F, 2, NULL, "", "");
    ramp("2020-01-02T00:00:00Z", 50, "2099-01-03T00:00:00Z");
    fu_start(&F, 0);
    snprintf(F.stages, sizeof F.stages,
             "  - name: ramp\n    percent:\n      - {at: 2020-01-01T00:00:00Z, percent: 1}\n"
             "      - {at: 2020-01-02T00:00:00Z, percent: 50}\n"
             "      - {at: 2020-01-03T00:00:00Z, percent: 100, gate: manual}\n");
    fu_start(&F, 1);
    fu_wait_joined(&F);
    cr_assert_eq(wait_step(1, 1, 5000, true), 1, "b holds at step 2");
    promote_a();
    cr_assert_eq(wait_step(0, 1, 2000, false), 1);
    usleep(1500 * 1000);
    cr_assert_eq(gate_int(1, "step"), 1, "b's step 2 stays held");
    cr_assert_gt(gate_int(1, "due_since"), 0);
    char kind[32];
    cr_assert_eq(promotes(1, kind, sizeof kind), 0, "b released nothing");
}
