/* upgate-sim's parts alone: its value parsers and formats, the policy rewriter of --suggest, the GeoIP walk of --regions. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simedit.h"
#include "simgeo.h"
#include "simspec.h"
#include "testutil.h"

TestSuite(sim_units, .timeout = 60);

Test(sim_units, rates_take_their_unit_strictly)
{
    static const struct {
        const char *s;
        double bps;
    } ok[] = {
        {"10Gbit", 10e9},     {"500Mbit", 500e6},  {"2.5Gbit", 2.5e9},  {"100MB/s", 800e6}, {"10Gbit/s", 10e9},
        {"800kbit", 800e3},   {"1.25GB/s", 10e9},  {"64B/s", 512},      {"1Tbit", 1e12},    {"0.5Mbit", 0.5e6},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double v = 0;
        cr_expect_eq(sim_parse_bitrate(ok[i].s, &v), 0, "%s", ok[i].s);
        cr_expect(v > ok[i].bps * (1 - 1e-12) && v < ok[i].bps * (1 + 1e-12), "%s: %g", ok[i].s, v);
    }
    static const char *const bad[] = {"", "10", "10 Gbit", "10gbit", "10GB", "-1Gbit", "1e9bit", "Gbit", "1.Gbit",
                                      ".5Gbit", "0Gbit", "10Gbit/", "10Gbps", "0.1bit", NULL};
    for (int i = 0; bad[i]; i++) {
        double v;
        cr_expect_eq(sim_parse_bitrate(bad[i], &v), -1, "\"%s\" is not a rate", bad[i]);
    }
    double lo, hi;
    cr_expect_eq(sim_parse_bitrate_range("5Mbit..50Mbit", &lo, &hi), 0);
    cr_expect(lo == 5e6 && hi == 50e6);
    cr_expect_eq(sim_parse_bitrate_range("20Mbit", &lo, &hi), 0);
    cr_expect(lo == 20e6 && hi == 20e6);
    cr_expect_eq(sim_parse_bitrate_range("50Mbit..5Mbit", &lo, &hi), -1, "low above high");
    cr_expect_eq(sim_parse_bitrate_range("5Mbit..", &lo, &hi), -1);
}

Test(sim_units, durations_shares_and_times)
{
    uint64_t s;
    cr_expect(sim_parse_duration("3600", 0, 1000000, &s) == 0 && s == 3600);
    cr_expect(sim_parse_duration("90s", 0, 1000000, &s) == 0 && s == 90);
    cr_expect(sim_parse_duration("15m", 0, 1000000, &s) == 0 && s == 900);
    cr_expect(sim_parse_duration("1.5h", 0, 1000000, &s) == 0 && s == 5400);
    cr_expect(sim_parse_duration("2d", 0, 1000000, &s) == 0 && s == 172800);
    cr_expect_eq(sim_parse_duration("0.5s", 0, 1000000, &s), -1, "whole seconds only");
    cr_expect_eq(sim_parse_duration("1w", 0, 1000000, &s), -1);
    cr_expect_eq(sim_parse_duration("20d", 0, 1000000, &s), -1, "above max");
    cr_expect_eq(sim_parse_duration("5", 10, 100, &s), -1, "below min");
    double v;
    cr_expect(sim_parse_share("0.9", &v) == 0 && v == 0.9);
    cr_expect(sim_parse_share("1", &v) == 0 && v == 1);
    cr_expect(sim_parse_share("0", &v) == 0 && v == 0);
    cr_expect_eq(sim_parse_share("1.5", &v), -1);
    cr_expect_eq(sim_parse_share("90%", &v), -1);
    cr_expect(sim_parse_decimal("7", 0, 90, &v) == 0 && v == 7);
    cr_expect(sim_parse_decimal("0.25", 0, 90, &v) == 0 && v == 0.25);
    cr_expect_eq(sim_parse_decimal("91", 0, 90, &v), -1);
    cr_expect_eq(sim_parse_decimal("1e3", 0, 1e9, &v), -1);
    int64_t t;
    cr_expect(sim_parse_when("now", 1234, &t) == 0 && t == 1234);
    cr_expect(sim_parse_when("1790000000", 0, &t) == 0 && t == 1790000000);
    cr_expect(sim_parse_when("2026-12-01T00:00:00Z", 0, &t) == 0 && t == 1796083200);
    cr_expect_eq(sim_parse_when("tomorrow", 0, &t), -1);
    char out[64];
    sim_fmt_time(1796083200, out, sizeof out);
    cr_expect_str_eq(out, "2026-12-01T00:00:00Z");
    sim_fmt_offset(2 * 86400 + 3 * 3600 + 15 * 60 + 7, true, out, sizeof out);
    cr_expect_str_eq(out, "+2d 03:15:07");
    sim_fmt_offset(3600, false, out, sizeof out);
    cr_expect_str_eq(out, "+0d 01:00");
    sim_fmt_count(1234567, out, sizeof out);
    cr_expect_str_eq(out, "1,234,567");
    sim_fmt_count(12, out, sizeof out);
    cr_expect_str_eq(out, "12");
    sim_fmt_bitrate(12.34e9, out, sizeof out);
    cr_expect_str_eq(out, "12.3 Gbit/s");
    sim_fmt_bitrate(850e6, out, sizeof out);
    cr_expect_str_eq(out, "850 Mbit/s");
    sim_fmt_bitrate(0, out, sizeof out);
    cr_expect_str_eq(out, "0 bit/s");
    sim_fmt_bytes(1.5e9, out, sizeof out);
    cr_expect_str_eq(out, "1.50 GB");
}

Test(sim_units, weighted_lists_and_networks)
{
    sim_weights w;
    char why[256];
    cr_assert_eq(sim_parse_weights("1.4.0=70,1.3.2=30", SIM_KEY_VERSION, &w, why, sizeof why), 0, "%s", why);
    cr_expect_eq(w.n, 2);
    cr_expect_str_eq(w.key[1], "1.3.2");
    cr_expect(w.total == 100);
    cr_expect_eq(sim_weights_pick(&w, 0.0), 0);
    cr_expect_eq(sim_weights_pick(&w, 0.69), 0);
    cr_expect_eq(sim_weights_pick(&w, 0.71), 1);
    cr_expect_eq(sim_weights_pick(&w, 0.999999), 1);
    cr_assert_eq(sim_parse_weights("1.4", SIM_KEY_VERSION, &w, why, sizeof why), 0);
    cr_expect_str_eq(w.key[0], "1.4", "the canonical text keeps what was written");
    cr_expect_eq(sim_parse_weights("1.4.0,1.4.0", SIM_KEY_VERSION, &w, why, sizeof why), -1);
    cr_expect(strstr(why, "twice"), "%s", why);
    cr_expect_eq(sim_parse_weights("1.4.0=0", SIM_KEY_VERSION, &w, why, sizeof why), -1);
    cr_expect_eq(sim_parse_weights("1.4.0=-1", SIM_KEY_VERSION, &w, why, sizeof why), -1);
    cr_expect_eq(sim_parse_weights("v1.4", SIM_KEY_VERSION, &w, why, sizeof why), -1);
    cr_expect_eq(sim_parse_weights("", SIM_KEY_VERSION, &w, why, sizeof why), -1);
    cr_expect_eq(sim_parse_weights("a,,b", SIM_KEY_PLAT, &w, why, sizeof why), -1);
    cr_expect_eq(sim_parse_weights("win dows", SIM_KEY_PLAT, &w, why, sizeof why), -1);
    cr_expect_eq(sim_parse_weights("12345678901234567", SIM_KEY_CHAN, &w, why, sizeof why), -1, "17 bytes");
    cr_expect_eq(sim_parse_weights("cn-bj=2,de", SIM_KEY_REGION, &w, why, sizeof why), 0);
    cr_expect_str_eq(w.key[0], "CN-BJ");
    cr_expect_eq(sim_parse_weights("Germany", SIM_KEY_REGION, &w, why, sizeof why), -1);
    cr_assert_eq(sim_parse_weights("10.1.0.0/16=30,2001:db8::/32=70,192.0.2.7", SIM_KEY_NETWORK, &w, why, sizeof why), 0,
                 "%s", why);
    cr_expect(w.net[0].family == 4 && w.net[0].len == 16 && w.net[0].addr[0] == 10 && w.net[0].addr[1] == 1);
    cr_expect(w.net[1].family == 6 && w.net[1].len == 32);
    cr_expect(w.net[2].family == 4 && w.net[2].len == 32);
    sim_net n;
    cr_expect_eq(sim_parse_cidr("10.1.0.1/16", &n), -1, "host bits set");
    cr_expect_eq(sim_parse_cidr("10.1.0.0/33", &n), -1);
    cr_expect_eq(sim_parse_cidr("10.1.0.0/016", &n), -1);
    cr_expect_eq(sim_parse_cidr("10.1.0.0/", &n), -1);
    cr_expect_eq(sim_parse_cidr("::/0", &n), 0);
    cr_expect_eq(sim_parse_cidr("host.example/8", &n), -1);
    /* the draws: the same inputs, the same value; spread evenly */
    cr_expect_eq(sim_rand(1, 2, 3), sim_rand(1, 2, 3));
    cr_expect_neq(sim_rand(1, 2, 3), sim_rand(2, 2, 3));
    unsigned low = 0;
    for (uint64_t i = 0; i < 10000; i++)
        low += sim_unit(sim_rand(7, i, 1)) < 0.25;
    cr_expect(low > 2300 && low < 2700, "%u of 10000 below 0.25", low);
}

/* ---- the rewriter ---------------------------------------------------------------- */

static char *apply(const char *text, size_t at, size_t cut, const char *ins)
{
    size_t n;
    char *out = sim_edit_apply(text, strlen(text), at, cut, ins, &n);
    cr_assert(out);
    cr_assert_eq(n, strlen(out));
    return out;
}

Test(sim_units, the_rewriter_changes_one_value_and_keeps_every_other_byte)
{
    const char *v1 = "# rollout\n"
                     "keys: {hint: h.key, issuers: [i.pub]}\n"
                     "stages:\n"
                     "  - name: canary   # first\n"
                     "    uids: [1, 2]\n"
                     "  - name: ramp\n"
                     "    rate: 12.5\n"
                     "    percent: {from: 1, to: 100, start: 2026-12-01T00:00:00Z, end: 2026-12-08T00:00:00Z}\n";
    sim_stage_loc loc;
    char why[256];
    cr_assert_eq(sim_edit_find(v1, strlen(v1), NULL, "ramp", &loc, why, sizeof why), 0, "%s", why);
    cr_expect_str_eq(loc.rollout, "default");
    cr_expect(loc.has_rate && loc.rate == 12.5);
    cr_expect(loc.linear && loc.start == 1796083200 && loc.end == 1796083200 + 7 * 86400);
    char *out = apply(v1, loc.rate_at, loc.rate_len, "3");
    cr_expect(strstr(out, "    rate: 3\n    percent:"), "%s", out);
    cr_expect_eq(strlen(out), strlen(v1) - 3);
    free(out);
    out = apply(v1, loc.end_at, loc.end_len, "2026-12-15T00:00:00Z");
    cr_expect(strstr(out, "end: 2026-12-15T00:00:00Z}"), "%s", out);
    free(out);
    /* a missing rate is inserted after the name, indented as the name */
    cr_assert_eq(sim_edit_find(v1, strlen(v1), "default", "canary", &loc, why, sizeof why), 0, "%s", why);
    cr_expect(!loc.has_rate && !loc.linear);
    char ins[128];
    snprintf(ins, sizeof ins, "%srate: 7", loc.insert_pre);
    out = apply(v1, loc.insert_at, 0, ins);
    cr_expect(strstr(out, "  - name: canary\n    rate: 7   # first\n    uids: [1, 2]\n"), "%s", out);
    free(out);
    cr_expect_eq(sim_edit_find(v1, strlen(v1), "other", "canary", &loc, why, sizeof why), -1);
    cr_expect_eq(sim_edit_find(v1, strlen(v1), NULL, "nosuch", &loc, why, sizeof why), -1);
    cr_expect(strstr(why, "no stage nosuch"), "%s", why);

    /* version 2, flow style, characters of several bytes before the value */
    const char *v2 = "# ünïcödé: «marks» count characters\n"
                     "rollouts:\n"
                     "  - name: desk\n"
                     "    stages:\n"
                     "      - {name: ramp, percent: 5}\n"
                     "  - name: mobile\n"
                     "    stages:\n"
                     "      - {name: ramp, rate: 9}\n";
    cr_expect_eq(sim_edit_find(v2, strlen(v2), NULL, "ramp", &loc, why, sizeof why), -1, "in two rollouts");
    cr_expect(strstr(why, "desk/ramp"), "%s", why);
    cr_assert_eq(sim_edit_find(v2, strlen(v2), "mobile", "ramp", &loc, why, sizeof why), 0, "%s", why);
    out = apply(v2, loc.rate_at, loc.rate_len, "0.5");
    cr_expect(strstr(out, "{name: ramp, rate: 0.5}"), "%s", out);
    cr_expect_eq(strncmp(out, v2, loc.rate_at), 0, "every byte before is kept");
    free(out);
    cr_assert_eq(sim_edit_find(v2, strlen(v2), "desk", "ramp", &loc, why, sizeof why), 0, "%s", why);
    snprintf(ins, sizeof ins, "%srate: 2", loc.insert_pre);
    out = apply(v2, loc.insert_at, 0, ins);
    cr_expect(strstr(out, "{name: ramp, rate: 2, percent: 5}"), "%s", out);
    free(out);
    cr_expect_eq(sim_edit_find("a: [", 4, NULL, "x", &loc, why, sizeof why), -1, "not YAML");
    cr_expect_eq(sim_edit_find("- 1\n", 4, NULL, "x", &loc, why, sizeof why), -1, "not a mapping");
    cr_expect_eq(sim_edit_apply("abc", 3, 2, 2, "x", &(size_t){0}), NULL, "a cut past the end");
}

/* ---- regions ---------------------------------------------------------------------- */

Test(sim_units, the_geoip_walk_finds_each_regions_networks)
{
    const char *dir = tu_tmpdir();
    char db[512], cmd[1024], err[512];
    snprintf(db, sizeof db, "%s/geo.mmdb", dir);
    snprintf(cmd, sizeof cmd, "perl %s/tests/mkgeo.pl %s", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".", db);
    cr_assert_eq(tu_run(cmd, NULL, 0), 0, "%s", cmd);
    sim_geo *g = sim_geo_open(db, err, sizeof err);
    cr_assert(g, "%s", err);
    static const char regions[6][SIM_KEY_MAX + 1] = {"CN-BJ", "DE", "GB-LND", "GB", "US-CA", "FR"};
    sim_netlist l[6];
    cr_assert_eq(sim_geo_networks(g, regions, 6, l, err, sizeof err), 0, "%s", err);
    char text[64];
    cr_assert_eq(l[0].n, 1);
    inet_ntop(AF_INET, l[0].v[0].addr, text, sizeof text);
    cr_expect(l[0].v[0].family == 4 && l[0].v[0].len == 24 && !strcmp(text, "127.0.1.0"), "%s/%u", text, l[0].v[0].len);
    cr_assert_eq(l[1].n, 1);
    cr_expect_eq(l[1].v[0].addr[2], 2);
    cr_expect_eq(l[2].n, 1, "GB-LND: the second level of 127.0.3.0/24");
    cr_expect_eq(l[3].n, 1, "GB: the country");
    cr_assert_eq(l[4].n, 1, "US-CA: IPv6 only");
    inet_ntop(AF_INET6, l[4].v[0].addr, text, sizeof text);
    cr_expect(l[4].v[0].family == 6 && l[4].v[0].len == 32 && !strcmp(text, "2001:db8::"), "%s/%u", text,
              l[4].v[0].len);
    cr_expect_eq(l[5].n, 0, "FR is not in the DB");
    /* an address drawn inside is placed there by the plugin's reader */
    struct sockaddr_in in = {.sin_family = AF_INET};
    memcpy(&in.sin_addr, l[0].v[0].addr, 4);
    ((uint8_t *)&in.sin_addr)[3] = 77;
    cr_expect(sim_geo_in(g, (struct sockaddr *)&in, "CN-BJ"));
    cr_expect(sim_geo_in(g, (struct sockaddr *)&in, "CN"));
    cr_expect(!sim_geo_in(g, (struct sockaddr *)&in, "DE"));
    cr_expect_eq(sim_netlist_pick(&l[0], 0.5), &l[0].v[0]);
    cr_expect_null(sim_netlist_pick(&l[5], 0.5));
    for (int i = 0; i < 6; i++)
        sim_netlist_free(&l[i]);
    sim_geo_close(g);
    cr_expect_null(sim_geo_open("/nonexistent/geo.mmdb", err, sizeof err));
    cr_expect(strstr(err, "/nonexistent/geo.mmdb"), "%s", err);
}
