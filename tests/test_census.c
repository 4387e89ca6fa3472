/* Tests of the version census (plugin/census/): the error against exact
 * counts at 10k, 100k and 1M uids, the three windows sliding on a fake
 * clock, merge equal to the union, the bucket cap and "other", the memory
 * budget and its folds, top versions, the codec's refusals, workers noting
 * while tick drains. */
#include <criterion/criterion.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census/census.h"
#include "census/census_impl.h"
#include "util/mix.h"

TestSuite(census, .timeout = 300);

#define T0 UINT64_C(1790000400) /* a slot's first second: 1790000400 / 600 = 2983334 */
#define MIN 60u

static ug_census *mk(unsigned nworkers, unsigned max_buckets, size_t budget)
{
    char why[256] = "";
    ug_census_opts o = {.nworkers = nworkers, .max_buckets = max_buckets, .budget = budget};
    ug_census *c = ug_census_create(&o, why, sizeof why);
    cr_assert_not_null(c, "%s", why);
    return c;
}

static const ug_census_key KEY = {.ver = {.part = {1, 4, 0}, .nparts = 3}, .plat = "linux-x86_64", .chan = "stable",
                                  .region = "DE"};

static ug_version V(const char *s)
{
    ug_version v;
    cr_assert_eq(ug_version_parse(&v, s, strlen(s)), 0, "version %s", s);
    return v;
}

/* Notes uids first .. first+n-1 at now, ticking as the ring fills. */
static void feed(ug_census *c, const ug_census_key *k, uint64_t first, uint64_t n, uint64_t now)
{
    for (uint64_t i = 0; i < n; i++) {
        ug_census_note(c, 0, k, first + i, now);
        if ((i & 32767) == 32767)
            ug_census_tick(c, now);
    }
    ug_census_tick(c, now);
}

static uint64_t count(ug_census *c, uint64_t now, unsigned w)
{
    ug_census_row r[4];
    size_t n = ug_census_rows(c, now, r, 4);
    for (size_t i = 0; i < n && i < 4; i++)
        if (!r[i].other)
            return r[i].n[w];
    return 0;
}

static double err(uint64_t est, uint64_t exact)
{
    return 100.0 * ((double)est - (double)exact) / (double)exact;
}

/* The goal is 2% at 1M. At 2^14 registers the standard error is 0.81%;
 * the hash is fixed, so a set of uids always gives the same error: each
 * size is measured on four disjoint sets (uids 1..n, n+1..2n, ...), each
 * printed; every one within 2.5% (3 standard errors), their RMS within
 * 1.5%. At one slot the three windows hold the same uids. */
Test(census, error_against_exact_counts)
{
    static const uint64_t sizes[] = {10000, 100000, 1000000};
    for (size_t s = 0; s < 3; s++) {
        double sq = 0;
        for (uint64_t set = 0; set < 4; set++) {
            ug_census *c = mk(1, 0, 0);
            feed(c, &KEY, 1 + set * sizes[s], sizes[s], T0);
            ug_census_stats st;
            ug_census_stats_get(c, &st);
            uint64_t e[UG_CENSUS_WINDOWS];
            for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
                e[w] = count(c, T0, w);
            fprintf(stderr, "census: %7llu uids (set %llu): estimate %llu, error %+.2f%%, bytes %llu\n",
                    (unsigned long long)sizes[s], (unsigned long long)set, (unsigned long long)e[0],
                    err(e[0], sizes[s]), (unsigned long long)st.bytes);
            cr_expect(e[0] == e[1] && e[1] == e[2], "windows differ at one slot");
            cr_expect(fabs(err(e[0], sizes[s])) <= 2.5, "%llu uids: estimate %llu (%+.2f%%)",
                      (unsigned long long)sizes[s], (unsigned long long)e[0], err(e[0], sizes[s]));
            sq += err(e[0], sizes[s]) * err(e[0], sizes[s]);
            cr_expect(st.noted + st.filtered == sizes[s] && st.dropped == 0);
            ug_census_free(c);
        }
        fprintf(stderr, "census: %7llu uids: RMS error over 4 sets %.2f%%\n", (unsigned long long)sizes[s],
                sqrt(sq / 4));
        cr_expect(sqrt(sq / 4) <= 1.5, "RMS %.2f%%", sqrt(sq / 4));
    }
}

/* The same uids again, at later times, do not count twice. */
Test(census, repeats_count_once)
{
    ug_census *c = mk(1, 0, 0);
    for (int round = 0; round < 5; round++)
        feed(c, &KEY, 1, 20000, T0 + (uint64_t)round * 7 * MIN);
    uint64_t e = count(c, T0 + 29 * MIN, UG_CENSUS_HOUR);
    cr_expect(fabs(err(e, 20000)) <= 2.0, "estimate %llu", (unsigned long long)e);
    ug_census_free(c);
}

/* Windows on a fake clock: "last hour" is the current 10-minute slot and
 * the 6 before it (60 to 70 minutes), "last day" 145 slots, "last week"
 * 1009; a bucket with nothing left in the week is evicted. */
Test(census, windows_expire)
{
    ug_census *c = mk(1, 0, 0);
    feed(c, &KEY, 1, 1000, T0);                /* slot 0 */
    feed(c, &KEY, 5001, 300, T0 + 30 * MIN);   /* slot 3 */
    struct {
        uint64_t at, hour, day, week;
    } want[] = {
        {T0 + 69 * MIN, 1300, 1300, 1300},          /* slot 6: slot 0 is still in the hour */
        {T0 + 70 * MIN, 300, 1300, 1300},           /* slot 7: slot 0 has left it */
        {T0 + 100 * MIN, 0, 1300, 1300},            /* slot 10 */
        {T0 + 1449 * MIN, 0, 1300, 1300},           /* slot 144 */
        {T0 + 1450 * MIN, 0, 300, 1300},            /* slot 145 */
        {T0 + 1480 * MIN, 0, 0, 1300},              /* slot 148 */
        {T0 + 10089 * MIN, 0, 0, 1300},             /* slot 1008: slot 0 is 1008 slots old, the week's last */
        {T0 + 10090 * MIN, 0, 0, 300},              /* slot 1009 */
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        ug_census_tick(c, want[i].at);
        uint64_t h = count(c, want[i].at, UG_CENSUS_HOUR), d = count(c, want[i].at, UG_CENSUS_DAY),
                 w = count(c, want[i].at, UG_CENSUS_WEEK);
        cr_expect(llabs((long long)h - (long long)want[i].hour) <= (long long)want[i].hour / 50 &&
                      llabs((long long)d - (long long)want[i].day) <= (long long)want[i].day / 50 &&
                      llabs((long long)w - (long long)want[i].week) <= (long long)want[i].week / 50,
                  "at +%llu min: hour %llu day %llu week %llu, want %llu %llu %llu",
                  (unsigned long long)(want[i].at - T0) / MIN, (unsigned long long)h, (unsigned long long)d,
                  (unsigned long long)w, (unsigned long long)want[i].hour, (unsigned long long)want[i].day,
                  (unsigned long long)want[i].week);
    }
    ug_census_tick(c, T0 + 10200 * MIN); /* slot 1020: all gone */
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    cr_expect(st.buckets == 1 && st.evicted == 1, "buckets %llu evicted %llu", (unsigned long long)st.buckets,
              (unsigned long long)st.evicted);
    /* It comes back when its HELLOs do. */
    feed(c, &KEY, 1, 100, T0 + 10300 * MIN);
    cr_expect(fabs(err(count(c, T0 + 10300 * MIN, UG_CENSUS_HOUR), 100)) <= 2.0);
    ug_census_free(c);
}

/* A sliding week under one-time visitors: 200k uids spread over 8 days,
 * each seen once; every window's estimate against the exact count. */
Test(census, windows_slide_with_spread_arrivals)
{
    ug_census *c = mk(1, 0, 0);
    const uint64_t n = 200000, span = 8 * 144;
    uint64_t exact[UG_CENSUS_WINDOWS] = {0}, end = T0 + span * 600;
    static const uint64_t slots[UG_CENSUS_WINDOWS] = {7, 145, 1009};
    for (uint64_t s = 0; s < span; s++) {
        uint64_t a = n * s / span, b = n * (s + 1) / span;
        feed(c, &KEY, 1 + a, b - a, T0 + s * 600);
        for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
            if (span - 1 - s < slots[w])
                exact[w] += b - a;
    }
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++) {
        uint64_t e = count(c, end - 600, w);
        fprintf(stderr, "census: spread arrivals, window %u: exact %llu, estimate %llu, error %+.2f%%\n", w,
                    (unsigned long long)exact[w], (unsigned long long)e, err(e, exact[w]));
        cr_expect(fabs(err(e, exact[w])) <= 3.0, "window %u: %llu for %llu", w, (unsigned long long)e,
                  (unsigned long long)exact[w]);
    }
    ug_census_free(c);
}

static void merge_all(ug_census *into, ug_census *from, uint64_t now)
{
    static uint8_t buf[UG_CENSUS_EXPORT_MAX];
    ug_census_stats st;
    ug_census_stats_get(from, &st);
    for (size_t i = 0; i < st.buckets; i++) {
        size_t len;
        char why[256] = "";
        cr_assert_eq(ug_census_export(from, now, i, buf, sizeof buf, &len), 0);
        cr_assert_eq(ug_census_merge(into, now, buf, len, why, sizeof why), 0, "%s", why);
    }
}

/* Two trackers see overlapping uids; merging one's sketch into the other
 * gives exactly what one tracker seeing both would count, and merging the
 * same bytes again changes nothing. */
Test(census, merge_equals_union)
{
    ug_census *a = mk(1, 0, 0), *b = mk(1, 0, 0), *all = mk(1, 0, 0);
    feed(a, &KEY, 1, 60000, T0);
    feed(b, &KEY, 40001, 60000, T0 + 20 * MIN);
    feed(all, &KEY, 1, 60000, T0);
    feed(all, &KEY, 40001, 60000, T0 + 20 * MIN);
    uint64_t now = T0 + 25 * MIN;
    merge_all(a, b, now);
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
        cr_expect_eq(count(a, now, w), count(all, now, w), "window %u", w);
    cr_expect(fabs(err(count(a, now, UG_CENSUS_HOUR), 100000)) <= 2.0);
    merge_all(a, b, now);
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
        cr_expect_eq(count(a, now, w), count(all, now, w), "window %u after a second merge", w);
    /* A receiver 2 hours later re-dates the entries: b's uids left its hour. */
    ug_census *late = mk(1, 0, 0);
    static uint8_t buf[UG_CENSUS_EXPORT_MAX];
    size_t len;
    char why[256];
    cr_assert_eq(ug_census_export(b, now, 1, buf, sizeof buf, &len), 0);
    cr_assert_eq(ug_census_merge(late, now + 120 * MIN, buf, len, why, sizeof why), 0, "%s", why);
    cr_expect_eq(count(late, now + 120 * MIN, UG_CENSUS_HOUR), 0);
    cr_expect(fabs(err(count(late, now + 120 * MIN, UG_CENSUS_DAY), 60000)) <= 2.0);
    ug_census_free(a);
    ug_census_free(b);
    ug_census_free(all);
    ug_census_free(late);
}

Test(census, merge_refusals)
{
    ug_census *a = mk(1, 0, 0), *b = mk(1, 0, 0);
    feed(a, &KEY, 1, 3000, T0);
    static uint8_t buf[UG_CENSUS_EXPORT_MAX], bad[UG_CENSUS_EXPORT_MAX];
    size_t len;
    char why[256];
    cr_assert_eq(ug_census_export(a, T0, 1, buf, sizeof buf, &len), 0);
    for (size_t cut = 0; cut < len; cut += len / 97 + 1)
        cr_expect_neq(ug_census_merge(b, T0, buf, cut, why, sizeof why), 0, "cut at %zu accepted", cut);
    memcpy(bad, buf, len);
    bad[0] = 'X';
    cr_expect_neq(ug_census_merge(b, T0, bad, len, why, sizeof why), 0);
    cr_expect(strstr(why, "magic") != NULL, "%s", why);
    memcpy(bad, buf, len);
    bad[4] = 13;
    cr_expect_neq(ug_census_merge(b, T0, bad, len, why, sizeof why), 0);
    memcpy(bad, buf, len);
    bad[len - 1] = 0xff; /* the last item's register past 2^12 */
    cr_expect_neq(ug_census_merge(b, T0, bad, len, why, sizeof why), 0);
    cr_expect_neq(ug_census_merge(b, T0 - 120 * MIN, buf, len, why, sizeof why), 0);
    cr_expect(strstr(why, "ahead") != NULL, "%s", why);
    ug_census_stats st;
    ug_census_stats_get(b, &st);
    cr_expect(st.merged == 0 && st.buckets == 1, "a refused merge changed the census");
    cr_expect_eq(ug_census_export(a, T0, 1, buf, 16, &len), -1);
    cr_expect_eq(ug_census_export(a, T0, 2, buf, sizeof buf, &len), -1);
    ug_census_free(a);
    ug_census_free(b);
}

/* Past the cap, new keys' HELLOs go to "other", counted. */
Test(census, bucket_cap_and_other)
{
    ug_census *c = mk(1, 10, 0);
    char ver[16];
    for (int v = 0; v < 15; v++) {
        snprintf(ver, sizeof ver, "1.%d.0", v);
        ug_census_key k = {.ver = V(ver), .plat = "linux", .chan = "stable", .region = "CN-BJ"};
        feed(c, &k, (uint64_t)v * 1000 + 1, 1000, T0);
    }
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    cr_expect_eq(st.buckets, 11);
    cr_expect(st.other > 0 && st.other <= 5000, "other %llu", (unsigned long long)st.other); /* some filtered */
    ug_census_row r[16];
    size_t n = ug_census_rows(c, T0, r, 16);
    cr_assert_eq(n, 11);
    bool seen_other = false;
    for (size_t i = 0; i < n; i++) {
        uint64_t want = r[i].other ? 5000 : 1000;
        seen_other |= r[i].other;
        cr_expect(fabs(err(r[i].n[UG_CENSUS_WEEK], want)) <= 2.0, "%s: %llu", r[i].ver,
                  (unsigned long long)r[i].n[UG_CENSUS_WEEK]);
    }
    cr_expect(seen_other && r[0].other, "other (5000) is the largest");
    ug_census_top top[20];
    cr_expect_eq(ug_census_top_versions(c, T0, UG_CENSUS_WEEK, top, 20), 10);
    cr_expect(fabs(err(ug_census_total(c, T0, UG_CENSUS_WEEK), 15000)) <= 2.0);
    ug_census_key longk = {.ver = V("1.0"), .plat = "a-platform-name-much-too-long-for-a-hello", .chan = "",
                           .region = ""};
    ug_census_note(c, 0, &longk, 1, T0);
    ug_census_stats_get(c, &st);
    cr_expect_eq(st.bad_key, 1);
    ug_census_free(c);
}

/* The budget: 1000 buckets fit 16 MiB only folded to 2^10 registers; a
 * small budget forces folds, and the estimates stay within a few percent. */
Test(census, budget_folds)
{
    char why[256];
    ug_census_opts o = {.nworkers = 1, .max_buckets = 1000, .budget = 4u << 20};
    cr_expect_null(ug_census_create(&o, why, sizeof why));
    cr_expect(strstr(why, "budget") != NULL, "%s", why);
    ug_census *c = mk(1, 4, 0);
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    ug_census_free(c);
    size_t floor = st.bytes + 5 * (16u << 10);
    c = mk(1, 4, floor);
    char ver[16];
    for (int v = 0; v < 4; v++) {
        snprintf(ver, sizeof ver, "2.%d.0", v);
        ug_census_key k = {.ver = V(ver), .plat = "linux", .chan = "", .region = ""};
        feed(c, &k, (uint64_t)v * 100000 + 1, 50000, T0);
    }
    ug_census_stats_get(c, &st);
    cr_expect(st.folds > 0 && st.bytes <= floor, "folds %llu bytes %llu budget %zu", (unsigned long long)st.folds,
              (unsigned long long)st.bytes, floor);
    ug_census_row r[8];
    size_t n = ug_census_rows(c, T0, r, 8);
    for (size_t i = 0; i < n; i++)
        if (!r[i].other)
            cr_expect(r[i].p < UG_CENSUS_P && fabs(err(r[i].n[UG_CENSUS_HOUR], 50000)) <= 5.0,
                      "%s at p %u: %llu", r[i].ver, r[i].p, (unsigned long long)r[i].n[UG_CENSUS_HOUR]);
    cr_expect(fabs(err(ug_census_total(c, T0, UG_CENSUS_WEEK), 200000)) <= 5.0);
    ug_census_free(c);
    /* The default: 1000 buckets of 16 MiB all dense, every one folded. */
    c = mk(1, 0, 0);
    ug_census_stats_get(c, &st);
    fprintf(stderr, "census: 1000 buckets, default budget %u bytes: table and index %llu bytes, rings %llu bytes\n",
                UG_CENSUS_BUDGET, (unsigned long long)st.bytes, (unsigned long long)st.ring_bytes);
    for (int v = 0; v < 1000; v++) {
        snprintf(ver, sizeof ver, "3.%d", v);
        ug_census_key k = {.ver = V(ver), .plat = "", .chan = "", .region = ""};
        feed(c, &k, (uint64_t)v * 5000 + 1, 5000, T0);
    }
    ug_census_stats_get(c, &st);
    static ug_census_row rows[1001];
    unsigned at_p[UG_CENSUS_P + 1] = {0};
    size_t nr = ug_census_rows(c, T0, rows, 1001);
    for (size_t i = 0; i < nr && i < 1001; i++)
        at_p[rows[i].p]++;
    fprintf(stderr, "census: 1000 buckets of 5000 uids: %llu bytes (budget %u), %llu folds; buckets at precision "
                    "10/11/12/13/14: %u/%u/%u/%u/%u\n",
            (unsigned long long)st.bytes, UG_CENSUS_BUDGET, (unsigned long long)st.folds, at_p[10], at_p[11], at_p[12],
            at_p[13], at_p[14]);
    cr_expect(st.buckets == 1001 && st.bytes <= UG_CENSUS_BUDGET, "buckets %llu bytes %llu",
              (unsigned long long)st.buckets, (unsigned long long)st.bytes);
    ug_census_free(c);
}

/* A uid on two platforms of one version counts once in the version's
 * total; versions come out largest first. */
Test(census, top_versions_are_unions)
{
    ug_census *c = mk(1, 0, 0);
    ug_census_key a = {.ver = V("1.4.0"), .plat = "linux", .chan = "", .region = ""};
    ug_census_key b = {.ver = V("1.4"), .plat = "windows", .chan = "", .region = ""}; /* 1.4 is 1.4.0 */
    ug_census_key d = {.ver = V("1.5.0.0"), .plat = "linux", .chan = "", .region = ""};
    feed(c, &a, 1, 30000, T0);
    feed(c, &b, 20001, 30000, T0);
    feed(c, &d, 100001, 10000, T0);
    ug_census_top t[4];
    size_t n = ug_census_top_versions(c, T0, UG_CENSUS_DAY, t, 4);
    cr_assert_eq(n, 2);
    cr_expect(strcmp(t[0].ver, "1.4.0") == 0 && fabs(err(t[0].n, 50000)) <= 2.0, "%s %llu", t[0].ver,
              (unsigned long long)t[0].n);
    cr_expect(strcmp(t[1].ver, "1.5.0") == 0 && fabs(err(t[1].n, 10000)) <= 2.0, "%s %llu", t[1].ver,
              (unsigned long long)t[1].n);
    json_t *j = ug_census_json(c, T0, 1);
    cr_assert_not_null(j);
    json_t *top = json_object_get(json_object_get(json_object_get(j, "windows"), "day"), "top");
    cr_expect(json_array_size(top) == 1 && strcmp(json_string_value(json_object_get(json_array_get(top, 0), "ver")),
                                                   "1.4.0") == 0);
    cr_expect_eq(json_array_size(json_object_get(j, "buckets")), 4);
    json_t *st = json_object_get(j, "stats");
    cr_expect(json_integer_value(json_object_get(st, "noted")) + json_integer_value(json_object_get(st, "filtered")) ==
              70000);
    json_decref(j);
    ug_census_free(c);
}

typedef struct {
    ug_census *c;
    unsigned worker;
    _Atomic int *stop;
} noter;

static void *note_loop(void *arg)
{
    noter *n = arg;
    ug_census_key k = {.ver = {.part = {n->worker % 2 ? 1u : 2u}, .nparts = 2}, .plat = "linux", .chan = "",
                       .region = ""};
    for (uint64_t i = 0; i < 40000; i++)
        ug_census_note(n->c, n->worker, &k, (uint64_t)n->worker * 40000 + i + 1, T0);
    return NULL;
}

/* Four workers noting while tick drains: every HELLO lands once (under
 * SAN=1: without a race). */
Test(census, workers_and_tick)
{
    ug_census *c = mk(4, 0, 0);
    pthread_t th[4];
    noter n[4];
    for (unsigned i = 0; i < 4; i++) {
        n[i] = (noter){.c = c, .worker = i};
        cr_assert_eq(pthread_create(&th[i], NULL, note_loop, &n[i]), 0);
    }
    for (int i = 0; i < 2000; i++)
        ug_census_tick(c, T0);
    for (unsigned i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ug_census_tick(c, T0);
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    cr_expect(st.noted + st.filtered == 160000 && st.dropped == 0, "noted %llu dropped %llu",
              (unsigned long long)st.noted, (unsigned long long)st.dropped);
    cr_expect_eq(st.buckets, 3);
    cr_expect(fabs(err(ug_census_total(c, T0, UG_CENSUS_HOUR), 160000)) <= 2.0);
    ug_census_free(c);
}

/* Without tick, a worker whose ring is half full drains every ring itself:
 * nothing is dropped. A plat outside ASCII shows as '?'; a version whose
 * text would not fit a HELLO counts in "other". */
Test(census, worker_assists_and_odd_keys)
{
    char why[256];
    ug_census_opts o = {.nworkers = 1, .ring = 1024};
    ug_census *c = ug_census_create(&o, why, sizeof why);
    cr_assert_not_null(c, "%s", why);
    ug_census_tick(c, T0);
    for (uint64_t uid = 1; uid <= 100000; uid++)
        ug_census_note(c, 0, &KEY, uid, T0);
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    cr_expect(st.assists > 0 && st.dropped == 0 && st.noted + st.filtered == 100000, "assists %llu dropped %llu",
              (unsigned long long)st.assists, (unsigned long long)st.dropped);
    ug_census_key odd = {.ver = V("2.0"), .plat = "l\xc3\xbcnux", .chan = "", .region = ""};
    ug_census_key big = {.ver = {.part = {4000000000u, 4000000000u, 4000000000u, 4000000000u}, .nparts = 4},
                         .plat = "", .chan = "", .region = ""};
    for (uint64_t uid = 1; uid <= 500; uid++) {
        ug_census_note(c, 0, &odd, uid, T0);
        ug_census_note(c, 0, &big, uid, T0);
    }
    ug_census_tick(c, T0);
    ug_census_row r[4];
    size_t n = ug_census_rows(c, T0, r, 4);
    cr_assert_eq(n, 3);
    cr_expect(fabs(err(r[0].n[UG_CENSUS_HOUR], 100000)) <= 2.0);
    bool saw_odd = false, saw_other = false;
    for (size_t i = 1; i < n; i++) {
        saw_odd |= strcmp(r[i].plat, "l??nux") == 0 && strcmp(r[i].ver, "2.0.0") == 0;
        saw_other |= r[i].other && r[i].n[UG_CENSUS_HOUR] >= 490;
    }
    cr_expect(saw_odd && saw_other, "rows: %s/%s, %s/%s", r[1].ver, r[1].plat, r[2].ver, r[2].plat);
    ug_census_free(c);
}

/* The workers' filter skips only what could change nothing: 300k uids, each
 * noted three times in one slot, give exactly the estimate of a plain
 * HyperLogLog of the same hashes (splitmix64(uid + 0x9e3779b97f4a7c15),
 * 2^14 registers) computed here. */
Test(census, filter_is_exact)
{
    ug_census *c = mk(1, 0, 0);
    static uint8_t v[1u << UG_CENSUS_P];
    memset(v, 0, sizeof v);
    for (int rep = 0; rep < 3; rep++)
        feed(c, &KEY, 1, 300000, T0 + (uint64_t)rep * 60);
    for (uint64_t uid = 1; uid <= 300000; uid++) {
        uint64_t h = ug_mix64(uid + UINT64_C(0x9e3779b97f4a7c15));
        unsigned j = (unsigned)(h >> (64 - UG_CENSUS_P)), r = ug_census_hash_rank(h, UG_CENSUS_P);
        v[j] = r > v[j] ? (uint8_t)r : v[j];
    }
    uint64_t plain = (uint64_t)llround(ug_census_est(v, UG_CENSUS_P));
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    cr_expect(st.filtered >= 600000, "filtered %llu", (unsigned long long)st.filtered);
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
        cr_expect_eq(count(c, T0 + 120, w), plain, "window %u: %llu, plain HLL %llu", w,
                     (unsigned long long)count(c, T0 + 120, w), (unsigned long long)plain);
    ug_census_free(c);
}

/* The plain HyperLogLog estimate of uids base+1 .. base+n (filter_is_exact's). */
static uint64_t plain_hll(uint64_t base, uint64_t n)
{
    static uint8_t v[1u << UG_CENSUS_P];
    memset(v, 0, sizeof v);
    for (uint64_t uid = base + 1; uid <= base + n; uid++) {
        uint64_t h = ug_mix64(uid + UINT64_C(0x9e3779b97f4a7c15));
        unsigned j = (unsigned)(h >> (64 - UG_CENSUS_P)), r = ug_census_hash_rank(h, UG_CENSUS_P);
        v[j] = r > v[j] ? (uint8_t)r : v[j];
    }
    return (uint64_t)llround(ug_census_est(v, UG_CENSUS_P));
}

/* filter_ids_run_out_exactly's keys: 12 big ones, then the pair. */
enum { IDK_BIG = 12, IDK_N = IDK_BIG + 2 };

/* Notes n new uids of key k (its uids are k + 1 << 40 | 1, 2, ...),
 * alternating with key k2's when k2 >= 0. */
static void note_new(ug_census *c, const ug_census_key *keys, uint64_t *next, int k, int k2, int n, uint64_t now)
{
    for (int i = 0; i < n; i++) {
        ug_census_note(c, 0, &keys[k], ((uint64_t)k + 1) << 40 | ++next[k], now);
        if (k2 >= 0)
            ug_census_note(c, 0, &keys[k2], ((uint64_t)k2 + 1) << 40 | ++next[k2], now);
    }
    ug_census_tick(c, now);
}

/* The filter names keys by ids a worker gives per filter: a key that loses
 * its place in the worker's table of ids gets a new one; when every id is
 * given, or the slot changes, the filter starts over. Two keys sharing a
 * place in that table, alternating HELLO by HELLO, give out 2040 ids after
 * a key's 5000 uids; then new keys, each of 3000 uids, take the ids around
 * the last (2047) and past it, and, in the next slot, the ids given after
 * the last key of the first slot. An id naming two keys while the first's
 * entries are in the filter would filter the second's uids: each key's
 * uids are its own, and every bucket reads exactly its plain HyperLogLog. */
Test(census, filter_ids_run_out_exactly)
{
    static char plat[IDK_N][8];
    ug_census_key keys[IDK_N];
    uint64_t next[IDK_N] = {0};
    ug_census_text t = {.ver = "1.4.0", .chan = "stable", .region = "DE"};
    uint64_t kh[64];
    int a = -1, b = -1;
    for (int i = 0; i < 64 && a < 0; i++) {
        snprintf(t.plat, sizeof t.plat, "p%d", i);
        kh[i] = ug_census_key_hash(&t);
        for (int j = 0; j < i && a < 0; j++)
            if (kh[j] % UG_CENSUS_IDS == kh[i] % UG_CENSUS_IDS)
                a = j, b = i;
    }
    cr_assert(a >= 0, "two of 64 keys share a place among %u", UG_CENSUS_IDS);
    for (int k = 0; k < IDK_N; k++) {
        snprintf(plat[k], sizeof plat[k], k < IDK_BIG ? "k%d" : "p%d", k < IDK_BIG ? k : k == IDK_BIG ? a : b);
        keys[k] = (ug_census_key){.ver = V("1.4.0"), .plat = plat[k], .chan = "stable", .region = "DE"};
    }
    ug_census *c = mk(1, 0, 0);
    note_new(c, keys, next, 0, -1, 5000, T0);
    note_new(c, keys, next, IDK_BIG, IDK_BIG + 1, 1020, T0);
    for (int k = 1; k <= 8; k++)
        note_new(c, keys, next, k, -1, 3000, T0);
    for (int k = 8; k < IDK_BIG; k++)
        note_new(c, keys, next, k, -1, 3000, T0 + UG_CENSUS_SLOT);
    ug_census_row r[IDK_N + 1];
    size_t n = ug_census_rows(c, T0 + UG_CENSUS_SLOT, r, IDK_N + 1);
    cr_assert_eq(n, IDK_N + 1, "%d buckets and other: %zu", IDK_N, n);
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        if (r[i].other)
            continue;
        while (k < IDK_N && strcmp(r[i].plat, plat[k]) != 0)
            k++;
        cr_assert_lt(k, IDK_N, "bucket %s", r[i].plat);
        uint64_t want = plain_hll((uint64_t)(k + 1) << 40, next[k]);
        for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
            cr_expect_eq(r[i].n[w], want, "%s, window %u: %llu, plain HLL %llu", plat[k], w,
                         (unsigned long long)r[i].n[w], (unsigned long long)want);
    }
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    cr_expect(st.filtered > 0 && st.dropped == 0, "filtered %llu", (unsigned long long)st.filtered);
    ug_census_free(c);
}

/* The worker's memo of its last key (census.c, memo_same): keys that
 * differ from the last one in a single byte of one field, or in one
 * version part, are told apart, HELLO after HELLO, while 1.4 and 1.4.0
 * stay one bucket; every bucket's hash is the one its text gives (the
 * fleet format carries it). */
Test(census, memo_keeps_keys_apart)
{
    ug_census *c = mk(1, 0, 0);
    const ug_census_key keys[] = {
        {.ver = V("1.4.0"), .plat = "linux", .chan = "stable", .region = "DE"},
        {.ver = V("1.4"), .plat = "linux", .chan = "stable", .region = "DE"}, /* the same bucket */
        {.ver = V("1.4.0"), .plat = "linuy", .chan = "stable", .region = "DE"},
        {.ver = V("1.4.0"), .plat = "linux", .chan = "stabld", .region = "DE"},
        {.ver = V("1.4.0"), .plat = "linux", .chan = "stable", .region = "DF"},
        {.ver = V("1.4.1"), .plat = "linux", .chan = "stable", .region = "DE"},
        {.ver = V("1.4.0.1"), .plat = "linux", .chan = "stable", .region = "DE"},
        {.ver = V("1.4.0"), .plat = "linux", .chan = "stable", .region = ""},
    };
    enum { K = sizeof keys / sizeof keys[0], N = 8000 };
    for (uint64_t uid = 1; uid <= (uint64_t)K * N; uid++)
        ug_census_note(c, 0, &keys[uid % K], uid, T0);
    ug_census_tick(c, T0);
    ug_census_row r[K + 1];
    size_t n = ug_census_rows(c, T0, r, K + 1), keyed = 0;
    cr_assert_leq(n, K + 1);
    for (size_t i = 0; i < n; i++) {
        if (r[i].other) {
            cr_expect_eq(r[i].n[UG_CENSUS_WEEK], 0, "other: %llu", (unsigned long long)r[i].n[UG_CENSUS_WEEK]);
            continue;
        }
        keyed++;
        uint64_t want = strcmp(r[i].ver, "1.4.0") || strcmp(r[i].plat, "linux") || strcmp(r[i].chan, "stable") ||
                                strcmp(r[i].region, "DE")
                            ? N
                            : 2 * N;
        cr_expect(fabs(err(r[i].n[UG_CENSUS_HOUR], want)) <= 2.5, "%s %s %s %s: %llu, want %llu", r[i].ver,
                  r[i].plat, r[i].chan, r[i].region, (unsigned long long)r[i].n[UG_CENSUS_HOUR],
                  (unsigned long long)want);
    }
    cr_expect_eq(keyed, K - 1, "keyed buckets %zu", keyed);
    for (unsigned i = 0; i < c->nbmax; i++)
        if (c->b[i].used && !c->b[i].other)
            cr_expect_eq(c->b[i].kh, ug_census_key_hash(&c->b[i].key), "bucket %s %s %s %s", c->b[i].key.ver,
                         c->b[i].key.plat, c->b[i].key.chan, c->b[i].key.region);
    ug_census_free(c);
}
