/* The fast lane (issue 25): a rollout whose version 2 manifest, signed by
 * the release keys, says urgency critical skips its percent schedule (every
 * targeted uid is selected) while quota and rate still hold; --check and
 * status say so. Manifests from upgate-keys (v2world), the real plugin. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fixture.h"
#include "policy/policy.h"
#include "testutil.h"
#include "v2world.h"

static vw_world W;
static fx_t F;

static void setup(void)
{
    vw_init(&W);
    vw_cert(&W, "c.cert", 1, 1, false);
    vw_manifest(&W, "normal.manifest", NULL);
    vw_manifest(&W, "critical.manifest", "--urgency critical");
}

static void teardown(void)
{
    fx_stop(&F);
    vw_fini(&W);
}

TestSuite(fastlane, .init = setup, .fini = teardown, .timeout = 120);

/* The plugin on a version 2 policy of one rollout of `manifest` with
 * `stages`, at the real clock (the keyring's). */
static void start(const char *manifest, const char *stages)
{
    char text[4096], err[512] = "";
    fx_stop(&F);
    fx_init(&F, 1);
    F.now = (uint64_t)time(NULL);
    int n = snprintf(text, sizeof text,
                     "keys: {hint: %s/hint.key, issuers: [%s/issuer.pub], keyring: %s/www/keys/1.keyring, "
                     "hint_cert: %s/c.cert}\nstate: state\nrollouts:\n  - name: fix\n    release_v2: %s/%s\n"
                     "    targets: [\"1.4.0\"]\n    stages:\n%s",
                     W.dir, W.dir, W.dir, W.dir, W.dir, manifest, stages);
    cr_assert(n > 0 && (size_t)n < sizeof text);
    tu_write_file(fx_policy_path(&F), text, (size_t)n);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "create failed: %s", err);
}

static unsigned selected(unsigned from, unsigned n)
{
    unsigned k = 0;
    for (unsigned uid = from; uid < from + n; uid++)
        k += fx_decide(&F, uid, "1.4.0", "10.0.0.1", 0).answer == UG_ANSWER_HINT;
    return k;
}

Test(fastlane, critical_skips_the_percent_schedule)
{
    start("normal.manifest", "      - {name: one, percent: 1}\n");
    unsigned normal = selected(1, 1000);
    cr_assert(normal > 0 && normal < 40, "1%% of 1000 uids: %u", normal);
    start("critical.manifest", "      - {name: one, percent: 1}\n");
    cr_assert_eq(selected(1, 1000), 1000, "urgency critical: every targeted uid");
    ug_decision d = fx_decide(&F, 5, "1.3.0", "10.0.0.1", 0);
    cr_assert_eq(d.answer, UG_ANSWER_WAIT, "untargeted versions stay untargeted");
    cr_assert_eq(d.why, UG_WHY_NOT_TARGETED);
}

/* A critical release at 100%: still held to its rate (2 new offers a
 * second) and its quota. */
Test(fastlane, critical_at_full_percent_still_held_to_its_rate_and_quota)
{
    start("critical.manifest", "      - {name: all, percent: 100, rate: 2, quota: 5}\n");
    unsigned hints = 0, rated = 0;
    for (uint64_t uid = 1; uid <= 10; uid++) {
        ug_decision d = fx_decide(&F, uid, "1.4.0", "10.0.0.1", UG_DECIDE_SPEND);
        hints += d.answer == UG_ANSWER_HINT;
        rated += d.answer == UG_ANSWER_WAIT && d.why == UG_WHY_RATE;
    }
    cr_assert_eq(hints, 2, "2 new offers in a second, got %u", hints);
    cr_assert_eq(rated, 8);
    for (int s = 1; s <= 5; s++) {
        F.now += 1;
        for (uint64_t uid = 11; uid <= 20; uid++)
            (void)fx_decide(&F, uid + (uint64_t)s * 100, "1.4.0", "10.0.0.1", UG_DECIDE_SPEND);
    }
    ug_decision d = fx_decide(&F, 999, "1.4.0", "10.0.0.1", UG_DECIDE_SPEND);
    cr_assert_eq(d.answer, UG_ANSWER_WAIT);
    cr_assert_eq(d.why, UG_WHY_QUOTA, "quota 5 spent: why %u", d.why);
}

/* The rollout's urgency in a status reply. */
static const char *status_urgency(void)
{
    static char out[32];
    int rc;
    const char *st = fx_control(&F, "{\"cmd\": \"status\"}", &rc);
    cr_assert_eq(rc, 0, "%s", st);
    json_t *o = json_loads(st, 0, NULL);
    json_t *r = json_array_get(json_object_get(o, "rollouts"), 0);
    snprintf(out, sizeof out, "%s", json_string_value(json_object_get(r, "urgency")) ? json_string_value(json_object_get(r, "urgency")) : "(none)");
    json_decref(o);
    return out;
}

Test(fastlane, check_and_status_say_it)
{
    start("critical.manifest", "      - {name: one, percent: 1}\n");
    cr_assert_str_eq(status_urgency(), "critical");
    char err[UG_ERR_MAX];
    ug_policy *p = ug_policy_load_at(fx_policy_path(&F), F.now, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    json_t *o = ug_policy_summary(p, (int64_t)F.now);
    json_t *r = json_array_get(json_object_get(o, "rollouts"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "urgency")), "critical");
    json_decref(o);
    ug_policy_free(p);
    start("normal.manifest", "      - {name: one, percent: 1}\n");
    cr_assert_str_eq(status_urgency(), "normal");
}
