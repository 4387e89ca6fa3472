/* The version census wired into the plugin (issue 25): every HELLO,
 * targeted or not, counted per (version, plat, chan, region) over the hour,
 * day and week; the control command `census`, the metrics, `census: false`. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "testutil.h"

static fx_t F;

static void start(const char *policy)
{
    char err[512] = "", cmd[1024], out[512];
    fx_stop(&F);
    fx_init(&F, 2);
    snprintf(cmd, sizeof cmd, "perl %s/tests/mkgeo.pl %s/geo.mmdb 2>&1", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".",
             F.dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "mkgeo.pl: %s", out);
    fx_policy(&F, policy);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "create failed: %s", err);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(census_live, .fini = teardown, .timeout = 120);

static json_t *census(void)
{
    int rc;
    const char *out = fx_control(&F, "{\"cmd\":\"census\"}", &rc);
    cr_assert_eq(rc, 0, "%s", out);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    return o;
}

static json_int_t total(json_t *c, const char *window)
{
    return json_integer_value(json_object_get(json_object_get(json_object_get(c, "windows"), window), "total"));
}

/* The bucket's count over window, -1 when there is no such bucket. */
static json_int_t bucket(json_t *c, const char *ver, const char *region, const char *window)
{
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(c, "buckets"), i, b)
    {
        if (!strcmp(json_string_value(json_object_get(b, "ver")), ver) &&
            !strcmp(json_string_value(json_object_get(b, "region")), region))
            return json_integer_value(json_object_get(b, window));
    }
    return -1;
}

static void near(json_int_t got, json_int_t want, const char *what)
{
    cr_assert(got >= want - want / 50 && got <= want + want / 50, "%s: %lld, want %lld within 2%%", what,
              (long long)got, (long long)want);
}

/* 300 uids at 1.4.0 from DE (each twice), 200 at 1.3 (untargeted) from
 * CN-BJ, 50 at 1.4.0 from an address the database does not place. */
static void hellos(void)
{
    for (uint64_t uid = 1; uid <= 300; uid++)
        for (int k = 0; k < 2; k++)
            (void)fx_ask(&F, (unsigned)(uid % 2), "127.0.2.9", uid, "1.4.0", NULL);
    for (uint64_t uid = 1001; uid <= 1200; uid++)
        (void)fx_ask(&F, 0, "127.0.1.9", uid, "1.3", NULL);
    for (uint64_t uid = 2001; uid <= 2050; uid++)
        (void)fx_ask(&F, 1, "10.0.0.1", uid, "1.4.0", NULL);
}

Test(census_live, every_hello_counted_by_version_and_region)
{
    start("targets: [\"1.4.0\"]\ngeoip: geo.mmdb\nstages:\n  - {name: few, uids: [1]}\n");
    hellos();
    json_t *c = census();
    cr_assert(json_is_true(json_object_get(c, "enabled")));
    near(total(c, "hour"), 550, "hour: every uid once");
    near(total(c, "week"), 550, "week");
    near(bucket(c, "1.4.0", "DE", "hour"), 300, "1.4.0 from DE, each uid once however many HELLOs");
    near(bucket(c, "1.3.0", "CN-BJ", "day"), 200, "1.3 (untargeted) from CN-BJ, shown as 1.3.0");
    near(bucket(c, "1.4.0", "", "week"), 50, "an unplaced address: region \"\"");
    json_t *top = json_array_get(json_object_get(json_object_get(json_object_get(c, "windows"), "hour"), "top"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(top, "ver")), "1.4.0");
    near(json_integer_value(json_object_get(top, "n")), 350, "1.4.0 over both regions: a union");
    json_decref(c);
    int src;
    json_t *st = json_loads(fx_control(&F, "{\"cmd\":\"status\"}", &src), 0, NULL);
    json_t *cb = json_object_get(json_object_get(st, "tracker"), "census");
    near(json_integer_value(json_object_get(cb, "week")), 550, "status: the census in brief");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(cb, "top_day"), 0), "ver")),
                     "1.4.0");
    cr_assert_str_eq(json_string_value(json_object_get(cb, "source")), "tracker", "a tracker alone: its own census");
    json_decref(st);
    json_t *ex = json_loads(
        fx_control(&F, "{\"cmd\":\"explain\",\"uid\":7,\"ver\":\"1.4.0\",\"src\":\"10.0.0.1\"}", &src), 0, NULL);
    near(json_integer_value(json_object_get(json_object_get(ex, "census"), "day")), 550, "explain: the census");
    json_decref(ex);
    /* two hours on: out of the hour, still in the day */
    F.now += 7200;
    c = census();
    cr_assert_eq(total(c, "hour"), 0, "the hour forgot them");
    near(total(c, "day"), 550, "the day did not");
    json_decref(c);
    int rc;
    const char *m = fx_control(&F, "{\"cmd\":\"metrics\"}", &rc);
    cr_assert_not_null(strstr(m, "upgate_census_uids{window=\"day\"} 5"), "%s", m);
    cr_assert_not_null(strstr(m, "upgate_census_version_uids{window=\"week\",ver=\"1.4.0\"} 3"), "%s", m);
}

Test(census_live, census_false_counts_nothing)
{
    start("targets: [\"1.4.0\"]\ncensus: false\nstages:\n  - {name: few, uids: [1]}\n");
    hellos();
    json_t *c = census();
    cr_assert(json_is_false(json_object_get(c, "enabled")));
    cr_assert_eq(total(c, "week"), 0);
    json_decref(c);
    int rc;
    const char *m = fx_control(&F, "{\"cmd\":\"metrics\"}", &rc);
    cr_assert_null(strstr(m, "upgate_census_uids"), "no census families while it is off");
    const char *bad = fx_control(&F, "{\"cmd\":\"census\",\"top\":0}", &rc);
    cr_assert_not_null(strstr(bad, "top"), "%s", bad);
}
