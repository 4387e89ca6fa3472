/* Proleptic Gregorian dates to day numbers and back (H. Hinnant's
 * algorithms, exact over the whole int64 range the calendar uses), and
 * division that rounds down: the calendar's only date arithmetic. */
#ifndef UG_CIVIL_H
#define UG_CIVIL_H

#include <stdint.h>

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31). */
static inline int64_t ug_civil_days(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The date of day z (days since 1970-01-01). */
static inline void ug_civil_date(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* a / b rounded toward minus infinity (b > 0). */
static inline int64_t ug_civil_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Day of the week of day z: 0 Sunday .. 6 Saturday (1970-01-01 was a Thursday). */
static inline unsigned ug_civil_wday(int64_t z)
{
    int64_t r = (z + 4) % 7;
    return (unsigned)(r < 0 ? r + 7 : r);
}

static inline int ug_civil_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

#endif
