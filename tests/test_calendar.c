/* Tests of the off-peak windows (plugin/calendar/): the TZif reader against
 * glibc's own reading of the same files, the window values, the
 * daylight-saving edges in Europe/Berlin (2026 and 2027), a window across
 * midnight, `tz: peer` in two zones, next-open at the edges, the daily
 * refresh and concurrent readers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar/calendar.h"
#include "calendar/civil.h"
#include "testutil.h"

TestSuite(calendar, .timeout = 120);

/* Unix seconds of a UTC date and time. */
static int64_t utc(int64_t y, unsigned mo, unsigned d, unsigned h, unsigned mi)
{
    return ug_civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static ug_cal_window win(const char *days, const char *from, const char *to, const char *tz)
{
    ug_cal_window w;
    char why[256] = "";
    cr_assert_eq(ug_cal_window_parse(&w, days, from, to, tz, why, sizeof why), 0, "%s", why);
    return w;
}

static ug_cal *cal(const ug_cal_window *w, size_t n, const char *tz, int64_t now)
{
    char why[512] = "";
    ug_cal_opts o = {.tz = tz};
    ug_cal *c = ug_cal_create(w, n, &o, now, why, sizeof why);
    cr_assert_not_null(c, "%s", why);
    return c;
}

static ug_cal_state at(ug_cal *c, const char *zone, int64_t t)
{
    ug_cal_state s;
    ug_cal_at(c, zone, t, &s);
    cr_assert(!s.stale, "stale at %lld", (long long)t);
    return s;
}

/* Open over exactly [a, b): closed just before, open at a and just before
 * b with b as the change, closed at b. */
static void expect_interval(ug_cal *c, const char *zone, int64_t a, int64_t b)
{
    ug_cal_state s = at(c, zone, a - 1);
    cr_expect(!s.open && s.change == a, "before %lld: open %d change %lld", (long long)a, s.open, (long long)s.change);
    s = at(c, zone, a);
    cr_expect(s.open && s.change == b, "at %lld: open %d change %lld (want %lld)", (long long)a, s.open,
              (long long)s.change, (long long)b);
    s = at(c, zone, b - 1);
    cr_expect(s.open && s.change == b, "at %lld: open %d", (long long)(b - 1), s.open);
    s = at(c, zone, b);
    cr_expect(!s.open, "at close %lld still open", (long long)b);
}

/* ---- the zone reader ---------------------------------------------------- */

/* Every offset our reader gives for a few zones over 1900..2200 (the table,
 * then the footer's rule) is the one glibc computes from the same file. The
 * test process may set TZ; a worker never does. */
Test(calendar, offsets_match_glibc)
{
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe",
                                        "Europe/Dublin", "America/Santiago", "Pacific/Chatham", "Africa/Casablanca",
                                        "America/Nuuk", "Asia/Tehran", "UTC", "Etc/GMT+5"};
    for (size_t i = 0; i < sizeof zones / sizeof *zones; i++) {
        char why[400] = "", env[96];
        ug_tz *z = ug_tz_load(NULL, zones[i], why, sizeof why);
        cr_assert_not_null(z, "%s", why);
        snprintf(env, sizeof env, ":%s", zones[i]);
        setenv("TZ", env, 1);
        tzset();
        for (int64_t t = -2208988800LL; t < 7258118400LL; t += 86400 * 5 + 3607) {
            time_t tt = (time_t)t;
            struct tm tm;
            cr_assert_not_null(localtime_r(&tt, &tm));
            cr_assert_eq(ug_tz_offset(z, t), tm.tm_gmtoff, "%s at %lld", zones[i], (long long)t);
        }
        ug_tz_free(z);
    }
    unsetenv("TZ");
    tzset();
}

/* Past the file's table (Debian's run to 2037) the footer answers:
 * Berlin's 2045 changes fall on the last Sundays of March and October. */
Test(calendar, footer_rule_past_the_table)
{
    char why[400] = "";
    ug_tz *z = ug_tz_load(NULL, "Europe/Berlin", why, sizeof why);
    cr_assert_not_null(z, "%s", why);
    int64_t spring = utc(2045, 3, 26, 1, 0), autumn = utc(2045, 10, 29, 1, 0);
    cr_expect_eq(ug_tz_offset(z, spring - 1), 3600);
    cr_expect_eq(ug_tz_offset(z, spring), 7200);
    cr_expect_eq(ug_tz_offset(z, autumn - 1), 7200);
    cr_expect_eq(ug_tz_offset(z, autumn), 3600);
    ug_tz_period p;
    ug_tz_period_at(z, spring + 86400, &p);
    cr_expect(p.start == spring && p.end == autumn && p.dst, "period %lld..%lld", (long long)p.start, (long long)p.end);
    ug_tz_free(z);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void expect_refused(const uint8_t *buf, size_t len, const char *what)
{
    char why[256] = "";
    ug_tz *z = ug_tz_parse(buf, len, why, sizeof why);
    cr_expect_null(z, "accepted: %s", what);
    ug_tz_free(z);
    cr_expect(strstr(why, what) != NULL, "why \"%s\" lacks \"%s\"", why, what);
}

/* Damaged files are refused with the reason; none is read past its end. */
Test(calendar, tzif_refusals)
{
    static uint8_t buf[UG_TZ_FILE_MAX + 16], tmp[UG_TZ_FILE_MAX + 16];
    size_t n = read_file("/usr/share/zoneinfo/Europe/Berlin", buf, sizeof buf);
    char why[256] = "";
    ug_tz *z = ug_tz_parse(buf, n, why, sizeof why);
    cr_assert_not_null(z, "%s", why);
    ug_tz_free(z);
    for (size_t cut = 0; cut < n; cut += 7) {
        z = ug_tz_parse(buf, cut, why, sizeof why);
        cr_expect_null(z, "a file cut at %zu accepted", cut);
        ug_tz_free(z);
    }
    memcpy(tmp, buf, n);
    tmp[4] = 0;
    expect_refused(tmp, n, "version 1 only");
    memcpy(tmp, buf, n);
    tmp[0] = 'X';
    expect_refused(tmp, n, "bad magic");
    memcpy(tmp, buf, n);
    tmp[n] = 'x';
    expect_refused(tmp, n + 1, "after the footer");
    memcpy(tmp, buf, n);
    memcpy(tmp + n - 12, "M13.5.0/3\n", 10); /* the footer's last rule, month 13 */
    expect_refused(tmp, n - 2, "TZ string");
    size_t rn = read_file("/usr/share/zoneinfo/right/Europe/Berlin", tmp, sizeof tmp);
    expect_refused(tmp, rn, "leap seconds");
    cr_expect_null(ug_tz_load(NULL, "../../etc/passwd", why, sizeof why));
    cr_expect(strstr(why, "not a zone name") != NULL, "%s", why);
    cr_expect_null(ug_tz_load(NULL, "Europe/Nowhere", why, sizeof why));
    cr_expect(strstr(why, "Europe/Nowhere") != NULL, "%s", why);
}

/* ---- window values ------------------------------------------------------ */

static void expect_parse_error(const char *days, const char *from, const char *to, const char *tz, const char *field)
{
    ug_cal_window w;
    char why[256] = "";
    cr_expect_neq(ug_cal_window_parse(&w, days, from, to, tz, why, sizeof why), 0, "accepted %s %s %s %s",
                  days ? days : "-", from ? from : "-", to ? to : "-", tz ? tz : "-");
    cr_expect(strncmp(why, field, strlen(field)) == 0 && !strchr(why, '\n'), "why \"%s\" does not start with %s",
              why, field);
}

Test(calendar, window_values)
{
    cr_expect_eq(win("mon-fri", "01:00", "06:00", "UTC").days, 0x3e);
    cr_expect_eq(win("sat,sun", "01:00", "06:00", NULL).days, 0x41);
    cr_expect_eq(win("Mon, wed-fri", "01:00", "06:00", NULL).days, 0x3a);
    cr_expect_eq(win("fri-mon", "01:00", "06:00", NULL).days, 0x63);
    cr_expect_eq(win("daily", "01:00", "06:00", NULL).days, 0x7f);
    cr_expect_eq(win(NULL, "01:00", "06:00", NULL).days, 0x7f);
    ug_cal_window w = win("mon", "22:30", "24:00", "peer");
    cr_expect(w.from == 22 * 60 + 30 && w.to == 1440 && strcmp(w.tz, "peer") == 0);
    w = win("mon", "23:00", "02:00", "Europe/Berlin");
    cr_expect(w.from == 1380 && w.to == 120);
    expect_parse_error("mon-", "01:00", "06:00", NULL, "days:");
    expect_parse_error("monday", "01:00", "06:00", NULL, "days:");
    expect_parse_error("mon,", "01:00", "06:00", NULL, "days:");
    expect_parse_error("", "01:00", "06:00", NULL, "days:");
    expect_parse_error("mon", "1:00", "06:00", NULL, "from:");
    expect_parse_error("mon", "24:00", "06:00", NULL, "from:");
    expect_parse_error("mon", "01:60", "06:00", NULL, "from:");
    expect_parse_error("mon", NULL, "06:00", NULL, "from:");
    expect_parse_error("mon", "01:00", "24:01", NULL, "to:");
    expect_parse_error("mon", "01:00", "6pm", NULL, "to:");
    expect_parse_error("mon", "06:00", "06:00", NULL, "to:");
    expect_parse_error("mon", "01:00", "06:00", "../etc", "tz:");
    expect_parse_error("mon", "01:00", "06:00", "Europe/", "tz:");
}

Test(calendar, create_errors)
{
    ug_cal_window w = win("mon", "01:00", "06:00", "Europe/Nowhere");
    char why[512] = "";
    cr_expect_null(ug_cal_create(&w, 1, NULL, utc(2026, 1, 1, 0, 0), why, sizeof why));
    cr_expect(strstr(why, "windows[0].tz") && strstr(why, "Europe/Nowhere"), "%s", why);
    w = win("mon", "01:00", "06:00", NULL);
    ug_cal_opts o = {.tz = "Mars/Olympus"};
    cr_expect_null(ug_cal_create(&w, 1, &o, utc(2026, 1, 1, 0, 0), why, sizeof why));
    cr_expect(strncmp(why, "tz:", 3) == 0, "%s", why);
    cr_expect_null(ug_cal_create(&w, 0, NULL, 0, why, sizeof why));
    cr_expect(strncmp(why, "windows:", 8) == 0, "%s", why);
}

/* ---- where now stands --------------------------------------------------- */

/* 2026-01-02 is a Friday. A Friday 22:00-02:00 UTC window closes on
 * Saturday; next-open at every edge. */
Test(calendar, utc_across_midnight)
{
    ug_cal_window w = win("fri", "22:00", "02:00", "UTC");
    ug_cal *c = cal(&w, 1, NULL, utc(2026, 1, 1, 12, 0));
    expect_interval(c, NULL, utc(2026, 1, 2, 22, 0), utc(2026, 1, 3, 2, 0));
    expect_interval(c, NULL, utc(2026, 1, 9, 22, 0), utc(2026, 1, 10, 2, 0));
    ug_cal_state s = at(c, NULL, utc(2026, 1, 3, 2, 0));
    cr_expect(!s.open && s.change == utc(2026, 1, 9, 22, 0));
    s = at(c, NULL, utc(2026, 1, 5, 9, 0)); /* a Monday */
    cr_expect(!s.open && s.change == utc(2026, 1, 9, 22, 0));
    ug_cal_free(c);
}

/* Touching windows merge: mon-fri all day is one stretch to Saturday. */
Test(calendar, whole_days_merge)
{
    ug_cal_window w = win("mon-fri", "00:00", "24:00", NULL);
    ug_cal *c = cal(&w, 1, "UTC", utc(2026, 1, 1, 0, 0));
    expect_interval(c, NULL, utc(2026, 1, 5, 0, 0), utc(2026, 1, 10, 0, 0));
    ug_cal_free(c);
}

/* Europe/Berlin, a window 02:30-04:00 every day, over both changes of 2026
 * and 2027 (springs 03-29 and 03-28, autumns 10-25 and 10-31, at 01:00 UTC).
 * Spring: 02:30 does not exist; read with the offset before the gap (RFC
 * 5545) it is 03:30 summer time, 01:30 UTC, so the window lasts 30 minutes.
 * Autumn: 02:30 happens twice; the first (summer time, 00:30 UTC) opens it,
 * and it lasts two and a half hours to 04:00 winter time. */
Test(calendar, berlin_daylight_saving)
{
    ug_cal_window w = win("daily", "02:30", "04:00", "Europe/Berlin");
    static const struct {
        int y;
        unsigned m, d;
        int64_t open_h, open_m, close_h, close_m;
    } days[] = {
        {2026, 3, 28, 1, 30, 3, 0},  {2026, 3, 29, 1, 30, 2, 0},  {2026, 3, 30, 0, 30, 2, 0},
        {2026, 10, 24, 0, 30, 2, 0}, {2026, 10, 25, 0, 30, 3, 0}, {2026, 10, 26, 1, 30, 3, 0},
        {2027, 3, 27, 1, 30, 3, 0},  {2027, 3, 28, 1, 30, 2, 0},  {2027, 3, 29, 0, 30, 2, 0},
        {2027, 10, 30, 0, 30, 2, 0}, {2027, 10, 31, 0, 30, 3, 0}, {2027, 11, 1, 1, 30, 3, 0},
    };
    for (size_t i = 0; i < sizeof days / sizeof *days; i++) {
        ug_cal *c = cal(&w, 1, NULL, utc(days[i].y, days[i].m, days[i].d, 0, 0) - 5 * 86400);
        int64_t a = utc(days[i].y, days[i].m, days[i].d, 0, 0) + days[i].open_h * 3600 + days[i].open_m * 60;
        int64_t b = utc(days[i].y, days[i].m, days[i].d, 0, 0) + days[i].close_h * 3600 + days[i].close_m * 60;
        expect_interval(c, NULL, a, b);
        ug_cal_free(c);
    }
}

/* A window inside the skipped hour alone (02:10-02:50) still happens on the
 * spring night, as 01:10-01:50 UTC; one from 02:30 to 03:15 ends (01:15 UTC)
 * before it starts (01:30 UTC) and is skipped that night only. */
Test(calendar, berlin_gap_edges)
{
    ug_cal_window w = win("sun", "02:10", "02:50", "Europe/Berlin");
    ug_cal *c = cal(&w, 1, NULL, utc(2026, 3, 25, 0, 0));
    expect_interval(c, NULL, utc(2026, 3, 29, 1, 10), utc(2026, 3, 29, 1, 50));
    ug_cal_free(c);
    w = win("sun", "02:30", "03:15", "Europe/Berlin");
    c = cal(&w, 1, NULL, utc(2026, 3, 25, 0, 0));
    ug_cal_state s = at(c, NULL, utc(2026, 3, 28, 0, 0));
    cr_expect(!s.open && s.change == utc(2026, 4, 5, 0, 30), "next open %lld", (long long)s.change);
    ug_cal_free(c);
}

/* A weekday window in Berlin's local days: Monday 01:00 summer time is
 * Sunday 23:00 UTC, the first Monday after the spring change. */
Test(calendar, berlin_weekdays_shift_with_the_clock)
{
    ug_cal_window w = win("mon-fri", "01:00", "06:00", "Europe/Berlin");
    ug_cal *c = cal(&w, 1, NULL, utc(2026, 3, 20, 0, 0));
    expect_interval(c, NULL, utc(2026, 3, 27, 0, 0), utc(2026, 3, 27, 5, 0));   /* Friday, winter */
    expect_interval(c, NULL, utc(2026, 3, 29, 23, 0), utc(2026, 3, 30, 4, 0));  /* Monday, summer */
    ug_cal_state s = at(c, NULL, utc(2026, 3, 28, 12, 0));
    cr_expect(!s.open && s.change == utc(2026, 3, 29, 23, 0));
    ug_cal_free(c);
}

/* tz: peer. 01:00-06:00 local is 17:00-22:00 UTC in Shanghai (+8, no DST)
 * and 06:00-11:00 UTC in New York in January (-5), 05:00-10:00 in July. A
 * peer without a zone, or with one tzdata does not know, gets the
 * calendar's tz (Europe/Berlin here: 00:00-05:00 UTC in January). */
Test(calendar, peer_zones)
{
    ug_cal_window w = win("daily", "01:00", "06:00", "peer");
    ug_cal *c = cal(&w, 1, "Europe/Berlin", utc(2026, 1, 10, 0, 0));
    expect_interval(c, "Asia/Shanghai", utc(2026, 1, 14, 17, 0), utc(2026, 1, 14, 22, 0));
    expect_interval(c, "America/New_York", utc(2026, 1, 15, 6, 0), utc(2026, 1, 15, 11, 0));
    ug_cal_state s = at(c, "Asia/Shanghai", utc(2026, 1, 15, 8, 0));
    cr_expect(!s.open && s.change == utc(2026, 1, 15, 17, 0) && !s.fallback);
    s = at(c, "America/New_York", utc(2026, 1, 15, 8, 0));
    cr_expect(s.open && s.change == utc(2026, 1, 15, 11, 0) && !s.fallback);
    s = at(c, NULL, utc(2026, 1, 15, 3, 0));
    cr_expect(s.open && s.fallback && s.change == utc(2026, 1, 15, 5, 0));
    s = at(c, "Mars/Olympus_Mons", utc(2026, 1, 15, 3, 0));
    cr_expect(s.open && s.fallback);
    s = at(c, "../../etc/passwd", utc(2026, 1, 15, 3, 0));
    cr_expect(s.open && s.fallback);
    uint64_t zones, refused;
    ug_cal_counts(c, &zones, &refused);
    cr_expect(zones == 3 && refused == 2, "zones %llu refused %llu", (unsigned long long)zones,
              (unsigned long long)refused);
    ug_cal_free(c);
    c = cal(&w, 1, NULL, utc(2026, 7, 1, 0, 0));
    expect_interval(c, "America/New_York", utc(2026, 7, 2, 5, 0), utc(2026, 7, 2, 10, 0));
    ug_cal_free(c);
}

/* A fixed window and a peer one together: open when either is. */
Test(calendar, fixed_and_peer_union)
{
    ug_cal_window w[2] = {win("daily", "10:00", "12:00", "UTC"), win("daily", "19:00", "23:00", "peer")};
    ug_cal *c = cal(w, 2, NULL, utc(2026, 1, 10, 0, 0));
    /* Shanghai 19:00-23:00 is 11:00-15:00 UTC: the union is 10:00-15:00. */
    expect_interval(c, "Asia/Shanghai", utc(2026, 1, 12, 10, 0), utc(2026, 1, 12, 15, 0));
    /* Without a zone: UTC for both, 10-12 then 19-23. */
    expect_interval(c, NULL, utc(2026, 1, 12, 10, 0), utc(2026, 1, 12, 12, 0));
    expect_interval(c, NULL, utc(2026, 1, 12, 19, 0), utc(2026, 1, 12, 23, 0));
    ug_cal_free(c);
}

/* The plan covers the weeks ahead; without tick it goes stale (closed,
 * never), and tick's daily refresh moves it on. */
Test(calendar, horizon_and_refresh)
{
    ug_cal_window w = win("mon", "01:00", "02:00", "peer");
    int64_t t0 = utc(2026, 1, 1, 0, 0);
    ug_cal *c = cal(&w, 1, NULL, t0);
    (void)at(c, "Asia/Shanghai", t0);
    int64_t later = t0 + 60 * 86400;
    ug_cal_state s;
    ug_cal_at(c, "Asia/Shanghai", later, &s);
    cr_expect(s.stale && !s.open && s.change == UG_CAL_NEVER);
    for (int64_t t = t0; t <= later; t += 3600)
        ug_cal_tick(c, t);
    s = at(c, "Asia/Shanghai", later); /* 2026-03-02, a Monday, 00:00 UTC: 08:00 in Shanghai */
    cr_expect(!s.open && s.change == utc(2026, 3, 8, 17, 0), "change %lld", (long long)s.change);
    s = at(c, NULL, later);
    cr_expect(!s.open && s.change == utc(2026, 3, 2, 1, 0), "change %lld", (long long)s.change);
    ug_cal_free(c);
}

/* ---- concurrency -------------------------------------------------------- */

typedef struct {
    ug_cal *c;
    int64_t t0;
    unsigned seed;
    int errors;
} reader;

static const char *const peer_names[] = {"Asia/Shanghai", "America/New_York", "Europe/Berlin", "Asia/Tokyo",
                                         "America/Sao_Paulo", "Australia/Sydney", "Africa/Lagos", NULL, "Nowhere/X"};

static void *read_loop(void *arg)
{
    reader *r = arg;
    for (int i = 0; i < 20000; i++) {
        ug_cal_state s;
        r->seed = r->seed * 1103515245u + 12345u;
        int64_t t = r->t0 + (int64_t)(r->seed % (20 * 86400));
        ug_cal_at(r->c, peer_names[r->seed % 9], t, &s);
        if (!s.stale && s.change <= t)
            r->errors++;
    }
    return NULL;
}

/* Readers on four threads, zones loaded as they come, while tick refreshes
 * every day of the span; the answers stay consistent (under SAN=1, free of
 * races on the plans). */
Test(calendar, concurrent_readers_and_refresh)
{
    ug_cal_window w[2] = {win("mon-fri", "01:00", "06:00", "peer"), win("sat,sun", "22:00", "04:00", "UTC")};
    int64_t t0 = utc(2026, 3, 1, 0, 0);
    ug_cal *c = cal(w, 2, "Europe/Berlin", t0);
    pthread_t th[4];
    reader rd[4];
    for (int i = 0; i < 4; i++) {
        rd[i] = (reader){.c = c, .t0 = t0, .seed = (unsigned)i + 1};
        cr_assert_eq(pthread_create(&th[i], NULL, read_loop, &rd[i]), 0);
    }
    for (int64_t t = t0; t < t0 + 10 * 86400; t += 1800)
        ug_cal_tick(c, t);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(rd[i].errors, 0);
    }
    ug_cal_free(c);
}
