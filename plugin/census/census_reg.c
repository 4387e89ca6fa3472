/* One register of a sliding-window HyperLogLog: the list of (rank, stamp)
 * entries that may still be a window's maximum, newest first. */
#include "census_impl.h"

const uint16_t ug_census_window_slots[UG_CENSUS_WINDOWS] = {7, 145, 1009};

/* Newest first; at the same age, the higher rank first. */
static bool before(ug_census_entry a, ug_census_entry b, uint32_t cur)
{
    unsigned x = ug_census_age(a, cur), y = ug_census_age(b, cur);
    return x < y || (x == y && ug_census_rank(a) > ug_census_rank(b));
}

/* Over K entries: which one to drop. The newest, and each window's value
 * (its oldest entry), stay; of the others, the one whose rank adds least
 * over its newer neighbour's goes. */
static unsigned victim(const ug_census_entry *e, unsigned n, uint32_t cur)
{
    bool keep[2 * UG_CENSUS_K] = {[0] = true};
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++) {
        unsigned last = 0;
        for (unsigned i = 0; i < n && ug_census_age(e[i], cur) < ug_census_window_slots[w]; i++)
            last = i;
        keep[last] = true;
    }
    unsigned best = n - 1, gap = ~0u;
    for (unsigned i = 1; i < n; i++) {
        unsigned g = ug_census_rank(e[i]) - ug_census_rank(e[i - 1]);
        if (!keep[i] && g < gap)
            best = i, gap = g;
    }
    return best;
}

unsigned ug_census_reg_norm(ug_census_entry *e, unsigned n, uint32_t cur)
{
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++)
        if (e[i] && ug_census_age(e[i], cur) <= UG_CENSUS_AGE_MAX)
            e[m++] = e[i];
    for (unsigned i = 1; i < m; i++) /* insertion sort: at most 2K */
        for (unsigned j = i; j > 0 && before(e[j], e[j - 1], cur); j--) {
            ug_census_entry t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
    unsigned k = 0, top = 0;
    for (unsigned i = 0; i < m; i++)
        if (ug_census_rank(e[i]) > top) {
            top = ug_census_rank(e[i]);
            e[k++] = e[i];
        }
    while (k > UG_CENSUS_K) {
        unsigned v = victim(e, k, cur);
        for (unsigned i = v; i + 1 < k; i++)
            e[i] = e[i + 1];
        k--;
    }
    for (unsigned i = k; i < n; i++)
        e[i] = 0;
    return k;
}

unsigned ug_census_reg_add(ug_census_entry *e, unsigned n, unsigned rank, uint32_t stamp, uint32_t cur,
                           bool *changed)
{
    ug_census_entry x = ug_census_make(rank, stamp);
    unsigned age = ug_census_age(x, cur);
    *changed = false;
    for (unsigned i = 0; i < n; i++)
        if (ug_census_age(e[i], cur) <= age && ug_census_rank(e[i]) >= rank)
            return n;
    e[n] = x;
    *changed = true;
    return ug_census_reg_norm(e, n + 1, cur);
}

void ug_census_reg_values(const ug_census_entry *e, unsigned n, uint32_t cur, uint8_t v[UG_CENSUS_WINDOWS])
{
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++) {
        unsigned r = 0;
        for (unsigned i = 0; i < n && ug_census_age(e[i], cur) < ug_census_window_slots[w]; i++)
            r = ug_census_rank(e[i]);
        v[w] = (uint8_t)r;
    }
}
