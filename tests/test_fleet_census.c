/* Fleet mode's census (issue 25): two trackers on one Redis, each seeing its own uids, publish their sealed sketches; each shows its own count and the fleet's union (census, status, explain), a forged census is refused and counted. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleetutil.h"
#include "testutil.h"

static fu_fleet F;

static void setup(void)
{
    if (!ru_available())
        cr_skip_test("redis-server is not installed (make deps installs it)");
    setenv("UG_FLEET_CENSUS_SECONDS", "1", 1); /* publish and merge every second */
}

static void teardown(void)
{
    fu_teardown(&F);
    unsetenv("UG_FLEET_CENSUS_SECONDS");
}

TestSuite(fleet_census, .init = setup, .fini = teardown, .timeout = 180);

static json_int_t jint(json_t *o, const char *a, const char *b)
{
    return json_integer_value(json_object_get(b ? json_object_get(o, a) : o, b ? b : a));
}

static void near(json_int_t got, json_int_t want, const char *what)
{
    cr_assert(got >= want - want / 25 && got <= want + want / 25, "%s: %lld, want %lld within 4%%", what,
              (long long)got, (long long)want);
}

/* Tracker i's census once its fleet object shows `trackers` merged and a
 * fleet hour of at least least (10 s at most); the reply (caller owns it). */
static json_t *fleet_census(unsigned i, json_int_t trackers, json_int_t least)
{
    json_t *c = NULL;
    for (long long end = fu_mono_ms() + 10000; fu_mono_ms() < end; usleep(100 * 1000)) {
        json_decref(c);
        c = fu_ctl(&F, i, "{\"cmd\":\"census\"}");
        json_t *fl = json_object_get(c, "fleet");
        if (fl && jint(fl, "trackers", NULL) >= trackers && jint(fl, "hour", NULL) >= least)
            return c;
    }
    return c;
}

static void ask_range(unsigned i, uint64_t from, size_t n)
{
    uint64_t *uids = malloc(n * sizeof *uids);
    fu_answer *out = malloc(n * sizeof *out);
    cr_assert(uids && out);
    for (size_t k = 0; k < n; k++)
        uids[k] = from + k;
    fu_ask(&F, i, uids, n, out);
    free(uids);
    free(out);
}

/* Two trackers, a seeing uids 1..3000, b 100001..105000. */
static void two_trackers_seen(void)
{
    fu_init(&F, 2, NULL, "", "  - {name: all, quota: 100}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    ask_range(0, 1, 3000);
    ask_range(1, 100001, 5000);
}

Test(fleet_census, two_trackers_disjoint_uids_merge_to_the_union)
{
    two_trackers_seen();
    for (unsigned i = 0; i < 2; i++) {
        json_t *c = fleet_census(i, 2, 7600);
        json_t *fl = json_object_get(c, "fleet");
        cr_assert(fl, "tracker %s shows no fleet census", F.name[i]);
        json_int_t own = jint(json_object_get(c, "windows"), "hour", "total");
        near(own, i == 0 ? 3000 : 5000, i == 0 ? "tracker a's own hour" : "tracker b's own hour");
        near(jint(fl, "hour", NULL), 8000, "the fleet's hour");
        near(jint(fl, "week", NULL), 8000, "the fleet's week");
        cr_assert_eq(jint(fl, "trackers", NULL), 2);
        cr_assert_eq(jint(fl, "refused", NULL), 0);
        fprintf(stderr, "tracker %s: own %lld, fleet %lld (hour)\n", F.name[i], (long long)own,
                (long long)jint(fl, "hour", NULL));
        json_decref(c);
    }
    char out[8192], err[512];
    cr_assert_eq(nu_upgate_ctl(&F.node[0], F.node[0].dir, out, sizeof out, err, sizeof err, "--socket ctl.sock census"), 0,
                 "%s", err);
    cr_assert(strstr(out, "  fleet: ") && strstr(out, " uids in the last hour, ") && strstr(out, "(2 trackers merged; 0"),
              "upgate-ctl census shows the fleet's: %s", out);
    /* A uid both saw counts once. */
    ask_range(1, 1, 1000);
    json_t *c = fleet_census(0, 2, 7600);
    near(jint(json_object_get(c, "fleet"), "hour", NULL), 8000, "the fleet's hour after overlap");
    json_decref(c);
}

/* The census brief of status (tracker.census) and explain (census): the
 * fleet's merged census once there is one, saying so. */
static void brief_is_the_fleets(json_t *b, const char *where)
{
    cr_assert(json_is_object(b), "%s: no census", where);
    cr_assert_str_eq(json_string_value(json_object_get(b, "source")), "fleet", "%s", where);
    cr_assert_eq(jint(b, "trackers", NULL), 2, "%s", where);
    near(jint(b, "hour", NULL), 8000, where);
    json_t *top = json_array_get(json_object_get(b, "top_day"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(top, "ver")), "1.4.0", "%s", where);
    near(jint(top, "n", NULL), 8000, where);
}

/* Issue 25 §6 in fleet mode: status and explain show the fleet's top
 * versions (each tracker saw only its part), this tracker's before the
 * first merge or alone. */
Test(fleet_census, status_and_explain_show_the_fleets_top_versions)
{
    two_trackers_seen();
    json_decref(fleet_census(0, 2, 7600));
    json_t *st = fu_ctl(&F, 0, "{\"cmd\":\"status\"}");
    brief_is_the_fleets(json_object_get(json_object_get(st, "tracker"), "census"), "status");
    json_decref(st);
    json_t *ex = fu_ctl(&F, 0, "{\"cmd\":\"explain\",\"uid\":7,\"ver\":\"1.4.0\",\"src\":\"10.0.0.1\"}");
    brief_is_the_fleets(json_object_get(ex, "census"), "explain");
    json_decref(ex);
    char out[16384], err[512];
    cr_assert_eq(nu_upgate_ctl(&F.node[0], F.node[0].dir, out, sizeof out, err, sizeof err, "--socket ctl.sock status"),
                 0, "%s", err);
    cr_assert(strstr(out, "census (fleet, 2 trackers): ") && strstr(out, "top versions (day): 1.4.0 "),
              "upgate-ctl status names the fleet's census: %s", out);
    cr_assert_eq(nu_upgate_ctl(&F.node[0], F.node[0].dir, out, sizeof out, err, sizeof err,
                               "--socket ctl.sock explain uid=7,ver=1.4.0,src=10.0.0.1"),
                 0, "%s", err);
    cr_assert(strstr(out, "census (fleet, 2 trackers): "), "upgate-ctl explain names the fleet's census: %s", out);
}

Test(fleet_census, a_forged_census_is_refused_and_counted)
{
    fu_init(&F, 1, NULL, "", "  - {name: all, quota: 100}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    ask_range(0, 1, 500);
    /* A "tracker" z in the registry whose census is garbage. */
    char cmd[1024], out[256];
    snprintf(cmd, sizeof cmd,
             "redis-cli -s %s HSET 'ug:{_fleet}:trackers' z '9999999999|up|x pid 1|00' >/dev/null && "
             "redis-cli -s %s SET 'ug:{_fleet}:census:z' 'UGF1not-a-census-at-all-0123456789abcdefgh' EX 60 2>&1",
             F.redis.sock, F.redis.sock);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    json_t *c = NULL;
    for (long long end = fu_mono_ms() + 10000; fu_mono_ms() < end; usleep(100 * 1000)) {
        json_decref(c);
        c = fu_ctl(&F, 0, "{\"cmd\":\"census\"}");
        if (jint(json_object_get(c, "fleet"), "refused", NULL) > 0)
            break;
    }
    json_t *fl = json_object_get(c, "fleet");
    cr_assert_gt(jint(fl, "refused", NULL), 0, "the forged census is counted");
    cr_assert_eq(jint(fl, "trackers", NULL), 1, "and not merged");
    near(jint(fl, "hour", NULL), 500, "the fleet's hour is this tracker's alone");
    json_decref(c);
    static char text[1 << 18];
    const char req[] = "{\"cmd\":\"metrics\"}\n";
    long got = nu_ctl(nu_path(&F.node[0], "ctl.sock"), req, sizeof req - 1, false, text, sizeof text);
    cr_assert_gt(got, 0);
    cr_assert(strstr(text, "upgate_census_fleet_trackers 1"), "%s", text);
    cr_assert(strstr(text, "upgate_census_fleet_refused_total "), "%s", text);
    cr_assert(strstr(text, "upgate_census_fleet_uids{window=\"hour\"}"), "%s", text);
}
