/* libFuzzer harness: the TZif reader and its POSIX TZ footer (plugin/calendar/tzif.c,
 * tzrule.c), then what the calendar does with an accepted zone: periods that hold
 * their instant, wall-clock readings that come back, plans sorted and disjoint. */
#include <string.h>

#include "calendar/calplan.h"
#include "calendar/tz_impl.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static void check_instant(const ug_tz *z, int64_t t)
{
    ug_tz_period p, q;
    ug_tz_period_at(z, t, &p);
    if (t < -UG_TZ_T_MAX || t > UG_TZ_T_MAX)
        return;
    FZ_CHECK(p.start <= t && t < p.end, "period %lld..%lld misses %lld", (long long)p.start, (long long)p.end,
             (long long)t);
    FZ_CHECK(p.off >= -UG_TZ_OFF_MAX && p.off <= UG_TZ_OFF_MAX, "offset %d", p.off);
    if (p.start > -UG_TZ_T_MAX) {
        ug_tz_period_at(z, p.start, &q);
        FZ_CHECK(q.off == p.off, "the period's first instant has another offset");
    }
    int64_t local = t + p.off, u;
    if (local < -UG_TZ_T_MAX || local > UG_TZ_T_MAX)
        return; /* refused as out of range, by contract */
    FZ_CHECK(ug_tz_local_to_utc(z, local, &u) == 0, "the reading at %lld does not come back", (long long)t);
    FZ_CHECK(u <= t && u + ug_tz_offset(z, u) == local, "reading %lld came back as %lld", (long long)local,
             (long long)u);
}

static void check_plan(const ug_tz *z, int64_t now)
{
    static const ug_cal_window w[2] = {{.days = 0x7f, .from = 150, .to = 240}, {.days = 0x41, .from = 1380, .to = 60}};
    const ug_tz *zs[2] = {z, z};
    ug_cal_plan *p = ug_cal_plan_build(w, zs, 2, now, 14);
    FZ_CHECK(p != NULL, "plan: out of memory");
    for (size_t i = 0; i < p->n; i++) {
        FZ_CHECK(p->iv[i][0] < p->iv[i][1], "empty interval");
        FZ_CHECK(i == 0 || p->iv[i - 1][1] < p->iv[i][0], "intervals overlap or touch");
    }
    bool open;
    int64_t change;
    if (ug_cal_plan_at(p, now, &open, &change))
        FZ_CHECK(change > now, "a change in the past");
    ug_cal_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    ug_tz *z = ug_tz_parse(data, size, why, sizeof why);
    if (!z) {
        FZ_CHECK(why[0] != '\0' && memchr(why, '\n', strnlen(why, sizeof why)) == NULL, "refusal without one line");
        return 0;
    }
    static const int64_t fixed[] = {INT64_MIN, -UG_TZ_T_MAX, -2208988800LL, 0, 1790000000LL, 2145916800LL,
                                    4102444800LL, 253402300799LL, UG_TZ_T_MAX, INT64_MAX};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        check_instant(z, fixed[i]);
    for (uint32_t i = 0; i < z->ntrans && i < 64; i++) {
        check_instant(z, z->trans[i] - 1);
        check_instant(z, z->trans[i]);
    }
    check_plan(z, 1790000000LL);
    check_plan(z, 4102444800LL);
    ug_tz_free(z);
    return 0;
}
