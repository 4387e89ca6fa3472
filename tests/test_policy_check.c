/* What `upgate-node --check` shows of a policy: the lint findings
 * (plugin/policy/policy_lint.c) and the JSON summary (plugin/policy/policy_json.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "policy/policy.h"
#include "policy_fixture.h"
#include "testutil.h"

TestSuite(lint, .init = pf_setup, .fini = pf_teardown);
TestSuite(summary, .init = pf_setup, .fini = pf_teardown);

typedef struct {
    char msg[16][UG_ERR_MAX + UG_PATH_MAX];
    size_t n;
} findings;

static void collect(void *ctx, const char *msg)
{
    findings *f = ctx;
    cr_assert_lt(f->n, 16, "too many findings");
    cr_assert_null(strchr(msg, '\n'));
    snprintf(f->msg[f->n++], sizeof f->msg[0], "%s", msg);
}

static findings lint(const char *text)
{
    findings f = {.n = 0};
    ug_policy *p = pf_load_ok(text);
    ug_policy_lint(p, (int64_t)time(NULL), collect, &f);
    ug_policy_free(p);
    return f;
}

/* One finding starting "policy.yaml:LINE: KEY: " and containing what. */
static void has(const findings *f, unsigned line, const char *key, const char *what)
{
    char want[1024];
    snprintf(want, sizeof want, "%s:%u: %s: ", pf_yaml, line, key);
    for (size_t i = 0; i < f->n; i++)
        if (strncmp(f->msg[i], want, strlen(want)) == 0 && strstr(f->msg[i], what))
            return;
    cr_assert_fail("no finding \"%s...%s\" among %zu: %s", want, what, f->n, f->n ? f->msg[0] : "");
}

#define R30 "release: releases/3.0.0.manifest" /* to 3.0.0, expires in 30 days */

Test(lint, a_clean_policy_has_no_findings)
{
    findings f = lint(HEAD2 "  - {name: a, " R30 ", targets: [\"<3\"], plat: [windows-x86_64], stages: [{name: s, uids: [1]}, {name: all}]}\n"
                            "  - {name: b, " R30 ", targets: [\"<3\"], plat: [linux], stages: [{name: s}]}\n");
    cr_assert_eq(f.n, 0, "%s", f.msg[0]);
}

Test(lint, targets_that_include_the_release_itself)
{
    findings f = lint(HEAD2 "  - {name: a, " R30 ", targets: [\"<3.0\", \"<=2.9\", \"3.0.0\", \"<=3\", \"<3.0.1\", \"4\"], stages: [{name: s}]}\n");
    cr_assert_eq(f.n, 4, "%zu: %s", f.n, f.msg[0]);
    has(&f, 4, "rollouts[0].targets[2]", "\"3.0.0\" includes the release's own version 3.0.0");
    has(&f, 4, "rollouts[0].targets[3]", "\"<=3\"");
    has(&f, 4, "rollouts[0].targets[4]", "\"<3.0.1\"");
    has(&f, 4, "rollouts[0].targets[5]", "\"4\"");
    f = lint(HEAD "stages: [{name: s}]\n"); /* version 1: "<1.3", 1.4.0, 1.4.1 under 2.0.0 */
    for (size_t i = 0; i < f.n; i++)
        cr_assert_null(strstr(f.msg[i], "targets"), "%s", f.msg[i]);
}

Test(lint, unreachable_stages_and_rollouts)
{
    findings f = lint(HEAD2 "  - name: a\n    " R30 "\n    targets: [\"<2\", \"2.5\"]\n    stages:\n"
                            "      - {name: canary, uids: [1]}\n"     /* 8 */
                            "      - {name: all}\n"                    /* 9: selects everyone */
                            "      - {name: later, percent: 5}\n"      /* 10 */
                            "      - {name: last}\n"                   /* 11 */
                            "  - {name: b, " R30 ", targets: [\"1.5\", \"<=1.9\", \"2.5\"], stages: [{name: s}]}\n" /* 12 */
                            "  - {name: c, " R30 ", targets: [\"1.5\"], chan: [beta], stages: [{name: s}]}\n"       /* 13 */
                            "  - {name: d, " R30 ", targets: [\"2.0\"], stages: [{name: s}]}\n");                   /* 14 */
    cr_assert_eq(f.n, 4, "%zu findings: %s | %s | %s | %s | %s", f.n, f.msg[0], f.msg[1], f.msg[2], f.msg[3], f.msg[4]);
    has(&f, 10, "rollouts[0].stages[2]", "unreachable: stage all (line 9)");
    has(&f, 11, "rollouts[0].stages[3]", "unreachable");
    has(&f, 12, "rollouts[1]", "owned first by rollouts[0] (a)");
    has(&f, 13, "rollouts[2]", "owned first by rollouts[0] (a)");
    /* a window, a percent, a quota or a rate lets later stages be reached */
    const char *limits[] = {"percent: 100", "quota: 5", "rate: 1", "fleet_rate: 1", "start: 2020-01-01T00:00:00Z",
                            "end: 2099-01-01T00:00:00Z", "chan: [a]"};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        char t[1024];
        snprintf(t, sizeof t,
                 HEAD2 "  - {name: a, " R30 ", targets: [\"<3\"], stages: [{name: x, %s}, {name: y}]}\n"
                       "fleet: {redis: \"redis://h\", tracker: t}\n",
                 limits[i]);
        f = lint(t);
        cr_assert_eq(f.n, 0, "%s: %s", limits[i], f.msg[0]);
    }
}

Test(lint, overlap_checks_stop_at_a_budget)
{
    /* 300 rollouts of 256 targets, each one covered only by the last of the
     * targets before it: billions of comparisons, cut short with a finding */
    size_t cap = 4u << 20, n = 0;
    char *t = malloc(cap);
    cr_assert(t);
    n += (size_t)snprintf(t + n, cap - n, HEAD2);
    for (int r = 0; r < 300; r++) {
        n += (size_t)snprintf(t + n, cap - n, "  - {name: r%d, " R30 ", stages: [{name: s}], targets: [", r);
        for (int k = 0; k < 255; k++)
            n += (size_t)snprintf(t + n, cap - n, "\"0.%d.%d\", ", r, k);
        n += (size_t)snprintf(t + n, cap - n, "\"2.9\"]}\n");
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    findings f = lint(t);
    clock_gettime(CLOCK_MONOTONIC, &b);
    free(t);
    fprintf(stderr, "  lint of 300 rollouts x 256 targets: %.3f s\n",
            (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    bool cut = false;
    for (size_t i = 0; i < f.n; i++)
        cut |= strstr(f.msg[i], "overlaps from here on are not checked") != NULL;
    cr_assert(cut, "%zu findings: %s", f.n, f.msg[0]);
}

Test(lint, expiring_manifests_empty_stages_holds_and_fleet_rate)
{
    findings f = lint(HEAD "stages: []\n"); /* 2.0.0.manifest expires in a day */
    has(&f, 4, "release", "expires in "); /* 23 or 24 hours */
    has(&f, 4, "stages", "no stages");
    cr_assert_eq(f.n, 2);
    uint8_t m[UG_OBJ_MAX];
    size_t len = pf_make_manifest(m, sizeof m, "3.0.0", 1, 40, (uint64_t)time(NULL) - 10);
    pf_put("releases/old.manifest", m, len);
    f = lint(HEAD2 "  - name: a\n    release: releases/old.manifest\n    targets: [\"<3\"]\n"
                   "    hold_when_unhealthy: true\n    halt_when: {rolled_back: 0.1, min_outcomes: 5}\n"
                   "    stages: [{name: s, fleet_rate: 5}]\n");
    cr_assert_eq(f.n, 4, "%zu: %s | %s | %s | %s", f.n, f.msg[0], f.msg[1], f.msg[2], f.msg[3]);
    has(&f, 4, "rollouts[0].release", "has expired");
    has(&f, 4, "rollouts[0].halt_when.min_outcomes", "5 is below 100: that few accounts");
    has(&f, 4, "rollouts[0].hold_when_unhealthy", "halt_when.failed");
    has(&f, 9, "rollouts[0].stages[0]", "fleet_rate without a fleet section");
    f = lint(HEAD2 "  - {name: a, " R30 ", targets: [\"<3\"], hold_when_unhealthy: true, "
                   "halt_when: {failed: 0.1, min_outcomes: 100}, stages: [{name: s}]}\n");
    cr_assert_eq(f.n, 0, "%s", f.msg[0]);
}

/* ---- summary -------------------------------------------------------------------- */

static const char *hex(const uint8_t *b, size_t n)
{
    static char out[65];
    return sodium_bin2hex(out, sizeof out, b, n);
}

Test(summary, every_setting_rollout_and_stage_without_secrets)
{
    pf_put("lists/pw", "sesame\n", 7);
    ug_policy *p = pf_load_ok(
        "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub, keys/issuer2.pub]}\nstate: state/\n"
        "verify: always\ncookie: never\nshard: {index: 1, count: 4}\n"
        "fleet: {redis: \"redis://10.0.0.9:6379/1\", tracker: eu-1, password_file: lists/pw}\n"
        "rollouts:\n"
        "  - name: desk\n    " R30 "\n    targets: [\"<2\", \"2.1\", \"<=2.5\"]\n    plat: [windows-x86_64]\n"
        "    halt_when: {failed: 0.05, min_outcomes: 20}\n    outcome_window: 600\n    hold_when_unhealthy: true\n"
        "    stages:\n"
        "      - {name: bj, networks: [10.0.0.0/8], uid_mod: {div: 3, rem: 1}, quota: 1001}\n"
        "      - {name: steps, percent: [{at: 2026-12-01T00:00:00Z, percent: 1}, {at: 2026-12-02T00:00:00Z, percent: 5.5}]}\n"
        "      - {name: ramp, salt: x, percent: {from: 1, to: 100, start: 2026-12-01T00:00:00Z, end: 2026-12-08T00:00:00Z}, rate: 2.5, fleet_rate: 10}\n"
        "      - {name: const, percent: 1.5, start: 2026-12-01T00:00:00Z, end: 2026-12-31T00:00:00Z}\n");
    json_t *j = ug_policy_summary(p, INT64_C(1796083200) + 86400); /* 2026-12-02 */
    cr_assert_not_null(j);
    char *text = json_dumps(j, JSON_COMPACT);
    cr_assert_null(strstr(text, "sesame"), "a secret in the summary");
    cr_assert_null(strstr(text, hex(p->hint_sk, 32)), "the hint key's seed in the summary");
    free(text);

    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(j, "verify")), "always");
    cr_assert_str_eq(json_string_value(json_object_get(j, "cookie")), "never");
    cr_assert(json_is_null(json_object_get(j, "geoip")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "shard"), "count")), 4);
    json_t *fl = json_object_get(j, "fleet");
    cr_assert_str_eq(json_string_value(json_object_get(fl, "redis")), "redis://10.0.0.9:6379/1");
    cr_assert_str_eq(json_string_value(json_object_get(fl, "tracker")), "eu-1");
    cr_assert(strstr(json_string_value(json_object_get(fl, "password_file")), "/lists/pw"));
    cr_assert_eq(json_integer_value(json_object_get(fl, "lease_timeout")), 30);
    json_t *keys = json_object_get(j, "keys");
    cr_assert_str_eq(json_string_value(json_object_get(keys, "hint")), hex(p->hint_pub.kid, UG_KID_LEN));
    cr_assert_eq(json_array_size(json_object_get(keys, "issuers")), 2);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(keys, "issuers"), 1)),
                     hex(p->issuers[1].kid, UG_KID_LEN));

    json_t *r = json_array_get(json_object_get(j, "rollouts"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(r, "name")), "desk");
    cr_assert_str_eq(json_string_value(json_object_get(r, "salt")), "desk");
    json_t *tg = json_object_get(r, "targets");
    cr_assert_str_eq(json_string_value(json_array_get(tg, 0)), "<2");
    cr_assert_str_eq(json_string_value(json_array_get(tg, 1)), "2.1");
    cr_assert_str_eq(json_string_value(json_array_get(tg, 2)), "<=2.5");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "plat"), 0)), "windows-x86_64");
    cr_assert(json_is_null(json_object_get(r, "chan")));
    cr_assert(json_is_false(json_object_get(r, "paused")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "halt_when"), "failed_ppm")), 50000);
    cr_assert(json_is_null(json_object_get(json_object_get(r, "halt_when"), "rolled_back_ppm")));
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "halt_when"), "min_outcomes")), 20);
    cr_assert_eq(json_integer_value(json_object_get(r, "outcome_window")), 600);
    cr_assert(json_is_true(json_object_get(r, "hold_when_unhealthy")));
    json_t *m = json_object_get(r, "manifest");
    cr_assert_str_eq(json_string_value(json_object_get(m, "to")), "3.0.0");
    cr_assert_eq((uint64_t)json_integer_value(json_object_get(m, "expires")), p->rollouts[0].rel.exp);
    cr_assert_str_eq(json_string_value(json_object_get(m, "kid")), hex(p->rollouts[0].rel.kid, UG_KID_LEN));
    cr_assert_eq(json_integer_value(json_object_get(m, "size")), 123456);
    cr_assert_eq(json_array_size(json_object_get(m, "urls")), 3);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(m, "urls"), 2)), p->rollouts[0].rel.urls[2]);

    json_t *st = json_object_get(r, "stages");
    cr_assert_eq(json_array_size(st), 4);
    json_t *s = json_array_get(st, 0);
    cr_assert_str_eq(json_string_value(json_object_get(s, "name")), "bj");
    cr_assert_eq(json_integer_value(json_object_get(s, "line")), 16);
    json_t *c = json_object_get(s, "conditions");
    cr_assert_eq(json_array_size(c), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(c, 0), "describe")), "uid % 3 == 1",
                     "cheapest first");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(c, 1), "describe")), "networks 10.0.0.0/8 (1)");
    cr_assert(json_is_true(json_object_get(s, "needs_proved_address")));
    cr_assert_eq(json_integer_value(json_object_get(s, "quota")), 1001);
    cr_assert_eq(json_integer_value(json_object_get(s, "quota_share")), 250, "1001 over 4 shards, index 1");
    cr_assert(json_is_null(json_object_get(s, "percent")) && json_is_null(json_object_get(s, "rate")));
    s = json_array_get(st, 1);
    json_t *steps = json_object_get(json_object_get(s, "percent"), "steps");
    cr_assert_eq(json_array_size(steps), 2);
    cr_assert(json_real_value(json_object_get(json_array_get(steps, 1), "percent")) == 5.5, "the percentage as written");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(steps, 1), "at")), 1796083200 + 86400);
    cr_assert(json_real_value(json_object_get(s, "percent_now")) == 5.5);
    s = json_array_get(st, 2);
    cr_assert_str_eq(json_string_value(json_object_get(s, "salt")), "x");
    json_t *lin = json_object_get(s, "percent");
    cr_assert(json_real_value(json_object_get(lin, "from")) == 1.0 && json_real_value(json_object_get(lin, "to")) == 100.0);
    cr_assert_eq(json_integer_value(json_object_get(lin, "end")), 1796083200 + 7 * 86400);
    cr_assert(json_real_value(json_object_get(s, "percent_now")) == (100 + 9900 / 7) / 100.0);
    cr_assert(json_real_value(json_object_get(s, "rate")) == 2.5 && json_real_value(json_object_get(s, "fleet_rate")) == 10.0);
    s = json_array_get(st, 3);
    cr_assert(json_real_value(json_object_get(s, "percent")) == 1.5, "1.5 for 1.5%%, not 150");
    cr_assert_eq(json_integer_value(json_object_get(s, "start")), 1796083200);
    cr_assert_eq(json_integer_value(json_object_get(s, "end")), 1798675200);
    cr_assert_eq(json_array_size(json_object_get(s, "conditions")), 0);
    cr_assert(json_is_array(json_object_get(j, "warnings")));
    json_decref(j);
    ug_policy_free(p);
}

Test(summary, paths_that_are_not_utf8_still_show)
{
    char dir[600], path[700], err[UG_ERR_MAX];
    pf_pathf(dir, sizeof dir, "odd-\xff-dir");
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/p.yaml", dir);
    ug_policy *p = pf_load_text(path, "keys: {hint: ../keys/hint.key, issuers: [../keys/issuer.pub]}\n"
                                      "release: ../releases/2.0.0.manifest\ntargets: [1.0]\nstate: s\nstages: [{name: a}]\n",
                                err, sizeof err);
    cr_assert(p, "%s", err);
    json_t *j = ug_policy_summary(p, 0);
    cr_assert(j);
    json_t *r = json_array_get(json_object_get(j, "rollouts"), 0);
    cr_assert(strstr(json_string_value(json_object_get(json_object_get(r, "manifest"), "file")), "odd-?-dir/../releases"));
    cr_assert(strstr(json_string_value(json_object_get(j, "state")), "odd-?-dir/s"));
    cr_assert_eq(json_array_size(json_object_get(r, "stages")), 1);
    json_decref(j);
    ug_policy_free(p);
}

Test(summary, carries_the_lint_warnings)
{
    ug_policy *p = pf_load_ok(HEAD "stages: [{name: all}, {name: never}]\n");
    json_t *j = ug_policy_summary(p, (int64_t)time(NULL));
    json_t *w = json_object_get(j, "warnings");
    cr_assert_eq(json_array_size(w), 2, "expiry and the unreachable stage");
    bool unreachable = false;
    for (size_t i = 0; i < json_array_size(w); i++)
        unreachable |= strstr(json_string_value(json_array_get(w, i)), "stages[1]: unreachable") != NULL;
    cr_assert(unreachable);
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(j, "rollouts"), 0), "name")),
                     "default");
    cr_assert_str_eq(json_string_value(json_object_get(j, "verify")), "claims-first");
    cr_assert(json_is_null(json_object_get(j, "fleet")));
    json_decref(j);
    ug_policy_free(p);
    cr_assert_null(ug_policy_summary(NULL, 0));
}

/* docs/example-policy.yaml as the demo runs it (version 1), and its
 * commented version 2 part uncommented in place of release, targets and
 * stages: both load, with the files they name beside them. */
Test(summary, the_example_policy_loads_in_both_versions)
{
    const char *root = getenv("UG_ROOT") ? getenv("UG_ROOT") : ".";
    char path[600], cmd[1400], out[512];
    snprintf(path, sizeof path, "%s/docs/example-policy.yaml", root);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    uint8_t m[UG_OBJ_MAX];
    size_t len = pf_make_manifest(m, sizeof m, "2.0.0", 1, 40, (uint64_t)time(NULL) + 30 * 86400);
    pf_put("keys/release.manifest", m, len);
    pf_pathf(path, sizeof path, "keys/geo.mmdb");
    snprintf(cmd, sizeof cmd, "perl %s/tests/mkgeo.pl %s 2>&1", root, path);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);

    static char v1[1 << 16], v2[1 << 16];
    size_t n1 = 0, n2 = 0;
    bool in_stages = false, in_v2 = false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        cr_assert(n1 + l < sizeof v1 && n2 + l < sizeof v2);
        memcpy(v1 + n1, line, l), n1 += l;
        if (strncmp(line, "# ---- Version 2", 16) == 0)
            in_stages = false;
        if (strncmp(line, "# rollouts:", 11) == 0)
            in_v2 = true;
        if (strncmp(line, "stages:", 7) == 0)
            in_stages = true;
        if (in_stages || strncmp(line, "release:", 8) == 0 || strncmp(line, "targets:", 8) == 0)
            continue;
        const char *keep = line;
        if (in_v2 || strncmp(line, "# geoip:", 8) == 0)
            keep = line[1] == ' ' ? line + 2 : line + 1;
        l = strlen(keep);
        memcpy(v2 + n2, keep, l), n2 += l;
    }
    fclose(f);
    v1[n1] = v2[n2] = '\0';
    cr_assert(in_v2, "no version 2 part in the example");
    char err[UG_ERR_MAX];
    pf_pathf(path, sizeof path, "keys/example.yaml");
    ug_policy *p = pf_load_text(path, v1, err, sizeof err);
    cr_assert(p, "version 1: %s", err);
    cr_assert(p->version == 1 && R0(p)->nstages == 1);
    ug_policy_free(p);
    p = pf_load_text(path, v2, err, sizeof err);
    cr_assert(p, "version 2: %s\n%s", err, v2);
    cr_assert(p->version == 2 && p->nrollouts == 2 && p->geo);
    cr_assert_str_eq(pf_describe(ST(p, 0), "regions"), "regions CN-BJ");
    cr_assert_eq(ST(p, 1)->percent.kind, UG_PCT_STEPS);
    cr_assert_eq(p->rollouts[1].stages[0].percent.kind, UG_PCT_LINEAR);
    ug_policy_free(p);
}
