/* Estimates: each window's register values, and Ertl's improved raw
 * estimator ("New cardinality estimation algorithms for HyperLogLog
 * sketches", 2017): unbiased from 0 to far past 10^9 without the bias
 * tables of HLL++, and defined for any register width (here q = 30). */
#include <math.h>
#include <string.h>

#include "census_impl.h"

void ug_census_est_values(const ug_census_sketch *s, uint32_t cur, uint8_t *v)
{
    size_t m = (size_t)1 << s->p;
    memset(v, 0, UG_CENSUS_WINDOWS * m);
    if (s->dense) {
        for (uint32_t j = 0; j < m; j++) {
            ug_census_entry e[UG_CENSUS_K];
            uint8_t x[UG_CENSUS_WINDOWS];
            ug_census_reg_values(e, ug_census_sk_get(s, j, e), cur, x);
            for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
                v[w * m + j] = x[w];
        }
        return;
    }
    const uint32_t *it = s->data;
    for (uint32_t i = 0; i < s->n;) {
        uint32_t j = it[i] >> 16;
        ug_census_entry e[UG_CENSUS_K];
        unsigned n = 0;
        for (; i < s->n && it[i] >> 16 == j; i++)
            if (n < UG_CENSUS_K)
                e[n++] = (ug_census_entry)it[i];
        uint8_t x[UG_CENSUS_WINDOWS];
        ug_census_reg_values(e, n, cur, x);
        for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
            v[w * m + j] = x[w];
    }
}

void ug_census_est_fold_values(uint8_t *v, unsigned p)
{
    size_t m = (size_t)1 << p, h = m / 2;
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++) {
        const uint8_t *src = v + w * m;
        uint8_t *dst = v + w * h;
        for (size_t j = 0; j < h; j++) {
            unsigned lo = src[2 * j], hi = src[2 * j + 1];
            lo = lo ? (lo + 1 > UG_CENSUS_RANK_MAX ? UG_CENSUS_RANK_MAX : lo + 1) : 0;
            hi = hi ? 1 : 0;
            dst[j] = (uint8_t)(lo > hi ? lo : hi);
        }
    }
}

static double sigma(double x)
{
    if (x == 1.0)
        return INFINITY;
    double y = 1.0, z = x, zp;
    do {
        x *= x;
        zp = z;
        z += x * y;
        y += y;
    } while (zp != z);
    return z;
}

static double tau(double x)
{
    if (x == 0.0 || x == 1.0)
        return 0.0;
    double y = 1.0, z = 1.0 - x, zp;
    do {
        x = sqrt(x);
        zp = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
    } while (zp != z);
    return z / 3.0;
}

double ug_census_est(const uint8_t *v, unsigned p)
{
    uint32_t count[UG_CENSUS_RANK_MAX + 1] = {0};
    double m = (double)((size_t)1 << p);
    for (size_t j = 0; j < (size_t)1 << p; j++)
        count[v[j] > UG_CENSUS_RANK_MAX ? UG_CENSUS_RANK_MAX : v[j]]++;
    if (count[0] == (1u << p))
        return 0.0;
    double z = m * tau(1.0 - count[UG_CENSUS_RANK_MAX] / m);
    for (unsigned k = UG_CENSUS_Q; k >= 1; k--)
        z = 0.5 * (z + count[k]);
    z += m * sigma(count[0] / m);
    return m * m / (2.0 * log(2.0)) / z;
}
