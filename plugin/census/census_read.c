/* Reading the census: counts per bucket, per version (the union of a
 * version's buckets, so a uid seen on two platforms counts once) and in
 * total. Each estimate reads every register of the buckets involved (about
 * 0.6 ms per dense bucket at 2^15 registers), on a copy taken bucket by
 * bucket under the lock. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "census_impl.h"

#define M_MAX ((size_t)1 << UG_CENSUS_P)

static uint64_t round_est(double e)
{
    return e < 0.5 ? 0 : (uint64_t)llround(e);
}

/* A bucket as selected under the lock: enough to find it again and to
 * label its row. */
typedef struct {
    unsigned i;
    uint64_t kh;
    ug_census_row row; /* key and flags; counts filled later */
} pick;

/* Bucket k's register values, copied under the lock (a memcpy of at most
 * 256 KiB: drains and workers' assists go on between two buckets, not
 * behind a whole reading); its precision, or 0 when it went away. */
static unsigned values_of(ug_census *c, const pick *k, uint32_t cur, uint8_t *v)
{
    ug_census_sketch copy = {0};
    pthread_mutex_lock(&c->lock);
    const ug_census_bucket *b = &c->b[k->i];
    bool same = b->used && b->kh == k->kh;
    size_t bytes = same ? ug_census_sk_bytes(&b->sk) : 0;
    if (same) {
        copy = b->sk;
        copy.data = ug_census_big_alloc(bytes);
        if (copy.data)
            memcpy(copy.data, b->sk.data, bytes);
        else if (bytes)
            same = false;
    }
    pthread_mutex_unlock(&c->lock);
    if (!same)
        return 0;
    ug_census_est_values(&copy, cur, v);
    ug_census_big_free(copy.data, bytes);
    return copy.p;
}

/* The union of buckets k[0..n): each window's register values at the
 * lowest precision among them (finer ones folded down), and its counts.
 * v and acc: room for UG_CENSUS_WINDOWS * M_MAX values each. */
static void union_counts(ug_census *c, pick *k, size_t n, uint32_t cur, uint8_t *v, uint8_t *acc,
                         uint64_t out[UG_CENSUS_WINDOWS])
{
    unsigned p = UG_CENSUS_P;
    for (size_t i = 0; i < n; i++)
        if (k[i].row.p < p)
            p = k[i].row.p;
    size_t m = (size_t)1 << p;
    memset(acc, 0, UG_CENSUS_WINDOWS * M_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned q = values_of(c, &k[i], cur, v);
        if (q == 0)
            continue;
        if (q < p) { /* folded since it was picked: fold the union down to it */
            for (unsigned r = p; r > q; r--)
                ug_census_est_fold_values(acc, r);
            p = q, m = (size_t)1 << p;
        }
        for (; q > p; q--)
            ug_census_est_fold_values(v, q);
        for (size_t j = 0; j < UG_CENSUS_WINDOWS * m; j++)
            acc[j] = v[j] > acc[j] ? v[j] : acc[j];
    }
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
        out[w] = round_est(ug_census_est(acc + w * m, p));
}

static int by_version(const void *a, const void *b)
{
    return strcmp(((const pick *)a)->row.ver, ((const pick *)b)->row.ver);
}

/* The used buckets (the versions' groups leave "other" out), under the lock. */
static size_t pick_all(ug_census *c, int how, pick *k)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->nbmax; i++) {
        const ug_census_bucket *b = &c->b[i];
        if (!b->used || (how == UG_CENSUS_BY_VERSION && b->other))
            continue;
        pick *x = &k[n++];
        *x = (pick){.i = i, .kh = b->kh};
        memcpy(x->row.ver, b->key.ver, sizeof x->row.ver);
        memcpy(x->row.plat, b->key.plat, sizeof x->row.plat);
        memcpy(x->row.chan, b->key.chan, sizeof x->row.chan);
        memcpy(x->row.region, b->key.region, sizeof x->row.region);
        x->row.other = b->other;
        x->row.p = b->sk.p;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* A row for each group of used buckets (every one alone, every version's,
 * or all of them), with their union's counts; the number of rows, or
 * -1 on out of memory. */
static long groups(ug_census *c, uint64_t now, int how, ug_census_row *out)
{
    size_t vlen = 2 * UG_CENSUS_WINDOWS * M_MAX;
    pick *k = ug_census_big_alloc(sizeof *k * c->nbmax);
    uint8_t *v = ug_census_big_alloc(vlen);
    long rows = 0;
    if (!k || !v) {
        ug_census_big_free(k, sizeof *k * c->nbmax);
        ug_census_big_free(v, vlen);
        return -1;
    }
    size_t n = pick_all(c, how, k);
    if (how == UG_CENSUS_BY_VERSION)
        qsort(k, n, sizeof *k, by_version);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && (how == UG_CENSUS_ALL || (how == UG_CENSUS_BY_VERSION && !by_version(&k[i], &k[j]))))
            j++;
        out[rows] = k[i].row;
        union_counts(c, k + i, j - i, ug_census_slot_of(now), v, v + UG_CENSUS_WINDOWS * M_MAX, out[rows].n);
        rows++;
        i = j;
    }
    ug_census_big_free(k, sizeof *k * c->nbmax);
    ug_census_big_free(v, vlen);
    return rows;
}

static int week_desc(const void *a, const void *b)
{
    const ug_census_row *x = a, *y = b;
    return (x->n[UG_CENSUS_WEEK] < y->n[UG_CENSUS_WEEK]) - (x->n[UG_CENSUS_WEEK] > y->n[UG_CENSUS_WEEK]);
}

ug_census_row *ug_census_group_rows(ug_census *c, uint64_t now, int how, size_t *n)
{
    ug_census_row *out = ug_census_big_alloc(c->nbmax * sizeof *out);
    long rows = out ? groups(c, now, how, out) : -1;
    if (rows < 0) {
        ug_census_rows_release(c, out);
        return NULL;
    }
    qsort(out, (size_t)rows, sizeof *out, week_desc);
    *n = (size_t)rows;
    return out;
}

void ug_census_rows_release(const ug_census *c, ug_census_row *rows)
{
    ug_census_big_free(rows, c->nbmax * sizeof *rows);
}

size_t ug_census_rows(ug_census *c, uint64_t now, ug_census_row *out, size_t cap)
{
    size_t n = 0;
    ug_census_row *all = ug_census_group_rows(c, now, UG_CENSUS_BY_BUCKET, &n);
    if (all)
        memcpy(out, all, (n < cap ? n : cap) * sizeof *all);
    ug_census_rows_release(c, all);
    return n;
}

uint64_t ug_census_total(ug_census *c, uint64_t now, unsigned window)
{
    size_t n = 0;
    ug_census_row *all = ug_census_group_rows(c, now, UG_CENSUS_ALL, &n);
    uint64_t v = all && n == 1 && window < UG_CENSUS_WINDOWS ? all[0].n[window] : 0;
    ug_census_rows_release(c, all);
    return v;
}

static int window_desc(const void *a, const void *b, void *w)
{
    unsigned k = *(const unsigned *)w;
    const ug_census_row *x = a, *y = b;
    return (x->n[k] < y->n[k]) - (x->n[k] > y->n[k]);
}

/* "other" is no version: its uids count in the total only. */
size_t ug_census_top_versions(ug_census *c, uint64_t now, unsigned window, ug_census_top *out, size_t cap)
{
    size_t n = 0;
    if (window >= UG_CENSUS_WINDOWS)
        return 0;
    ug_census_row *all = ug_census_group_rows(c, now, UG_CENSUS_BY_VERSION, &n);
    if (!all)
        return 0;
    qsort_r(all, n, sizeof *all, window_desc, &window);
    for (size_t i = 0; i < n && i < cap; i++) {
        memcpy(out[i].ver, all[i].ver, sizeof out[i].ver);
        out[i].n = all[i].n[window];
    }
    ug_census_rows_release(c, all);
    return n;
}
