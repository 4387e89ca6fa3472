/* Plans: every occurrence of the windows over the days ahead, turned into
 * UTC instants once (ug_tz_local_to_utc's RFC 5545 reading at the
 * daylight-saving edges), so a query is a binary search. */
#include <stdlib.h>

#include "calplan.h"
#include "civil.h"

#define DAY 86400
#define DAYS_BEFORE 3 /* a window open now may have opened on an earlier local day */
#define LOOKAHEAD 9   /* days past an instant its next opening may need (a week, a skipped one, zones) */

static int by_open(const void *a, const void *b)
{
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* One occurrence: from on day, to on day or the next; empty ones (both
 * ends in a skipped hour, or reordered by it) are dropped. */
static size_t occurrence(const ug_cal_window *w, const ug_tz *z, int64_t day, int64_t (*out)[2])
{
    int64_t open_local = day * DAY + (int64_t)w->from * 60;
    int64_t close_local = (w->to <= w->from ? day + 1 : day) * DAY + (int64_t)w->to * 60;
    int64_t a, b;
    if (ug_tz_local_to_utc(z, open_local, &a) != 0 || ug_tz_local_to_utc(z, close_local, &b) != 0 || b <= a)
        return 0;
    (*out)[0] = a;
    (*out)[1] = b;
    return 1;
}

ug_cal_plan *ug_cal_plan_build(const ug_cal_window *w, const ug_tz *const *zones, size_t n, int64_t now,
                               unsigned horizon_days)
{
    int64_t today = ug_civil_floordiv(now, DAY), days = (int64_t)horizon_days + DAYS_BEFORE + 1;
    ug_cal_plan *p = malloc(sizeof *p + (size_t)days * n * sizeof p->iv[0]);
    if (!p)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (int64_t d = today - DAYS_BEFORE; d <= today + (int64_t)horizon_days; d++)
            if (w[i].days & (1u << ug_civil_wday(d)))
                k += occurrence(&w[i], zones[i], d, &p->iv[k]);
    qsort(p->iv, k, sizeof p->iv[0], by_open);
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        if (m > 0 && p->iv[i][0] <= p->iv[m - 1][1]) {
            if (p->iv[i][1] > p->iv[m - 1][1])
                p->iv[m - 1][1] = p->iv[i][1];
            continue;
        }
        p->iv[m][0] = p->iv[i][0];
        p->iv[m][1] = p->iv[i][1];
        m++;
    }
    p->n = m;
    p->valid_from = (today - 1) * DAY;
    p->valid_until = (today + (int64_t)horizon_days - LOOKAHEAD) * DAY;
    return p;
}

bool ug_cal_plan_at(const ug_cal_plan *p, int64_t t, bool *open, int64_t *change)
{
    *open = false;
    *change = UG_CAL_NEVER;
    if (t < p->valid_from || t >= p->valid_until)
        return false;
    size_t lo = 0, hi = p->n; /* first interval opening after t */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->iv[mid][0] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0 && t < p->iv[lo - 1][1]) {
        *open = true;
        *change = p->iv[lo - 1][1];
    } else if (lo < p->n) {
        *change = p->iv[lo][0];
    }
    return true;
}

void ug_cal_plan_free(ug_cal_plan *p)
{
    free(p);
}
