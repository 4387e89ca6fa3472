/* Reading the census: counts per bucket, per version (the union of a
 * version's buckets, so a uid seen on two platforms counts once) and in
 * total. Each estimate reads every register of the buckets involved: about
 * 0.3 ms per dense bucket at 2^14 registers. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "census_impl.h"

#define M_MAX ((size_t)1 << UG_CENSUS_P)

static uint64_t round_est(double e)
{
    return e < 0.5 ? 0 : (uint64_t)llround(e);
}

/* The union of buckets sel[0..n): each window's register values at the
 * lowest precision among them (finer ones folded down), and its counts.
 * v and acc: room for UG_CENSUS_WINDOWS * M_MAX values each. */
static void union_counts(const ug_census *c, const unsigned *sel, size_t n, uint32_t cur, uint8_t *v, uint8_t *acc,
                         uint64_t out[UG_CENSUS_WINDOWS])
{
    unsigned p = UG_CENSUS_P;
    for (size_t i = 0; i < n; i++)
        if (c->b[sel[i]].sk.p < p)
            p = c->b[sel[i]].sk.p;
    size_t m = (size_t)1 << p;
    memset(acc, 0, UG_CENSUS_WINDOWS * m);
    for (size_t i = 0; i < n; i++) {
        const ug_census_sketch *s = &c->b[sel[i]].sk;
        ug_census_est_values(s, cur, v);
        for (unsigned q = s->p; q > p; q--)
            ug_census_est_fold_values(v, q);
        for (size_t j = 0; j < UG_CENSUS_WINDOWS * m; j++)
            acc[j] = v[j] > acc[j] ? v[j] : acc[j];
    }
    for (unsigned w = 0; w < UG_CENSUS_WINDOWS; w++)
        out[w] = round_est(ug_census_est(acc + w * m, p));
}

static int by_version(const void *a, const void *b, void *census)
{
    const ug_census *c = census;
    return strcmp(c->b[*(const unsigned *)a].key.ver, c->b[*(const unsigned *)b].key.ver);
}

typedef void (*group_fn)(void *ctx, const ug_census_bucket *first, const uint64_t n[UG_CENSUS_WINDOWS]);

/* Calls f for groups of used buckets (every one alone, every version's,
 * or all of them), with their union's counts. 0, or -1 on out of memory. */
static int groups(ug_census *c, uint64_t now, int how, group_fn f, void *ctx)
{
    unsigned *sel = malloc(sizeof *sel * c->nbmax);
    uint8_t *v = malloc(2 * UG_CENSUS_WINDOWS * M_MAX);
    size_t n = 0;
    if (!sel || !v) {
        free(sel);
        free(v);
        return -1;
    }
    for (unsigned i = 0; i < c->nbmax; i++)
        if (c->b[i].used && (how != UG_CENSUS_BY_VERSION || !c->b[i].other))
            sel[n++] = i;
    if (how == UG_CENSUS_BY_VERSION)
        qsort_r(sel, n, sizeof *sel, by_version, c);
    for (size_t i = 0; i < n || (how == UG_CENSUS_ALL && i == 0);) {
        size_t j = i + 1;
        while (j < n && (how == UG_CENSUS_ALL ||
                         (how == UG_CENSUS_BY_VERSION && strcmp(c->b[sel[j]].key.ver, c->b[sel[i]].key.ver) == 0)))
            j++;
        uint64_t cnt[UG_CENSUS_WINDOWS];
        union_counts(c, sel + i, (j < n ? j : n) - i, ug_census_slot_of(now), v, v + UG_CENSUS_WINDOWS * M_MAX, cnt);
        f(ctx, n ? &c->b[sel[i]] : &c->b[0], cnt);
        i = j;
    }
    free(sel);
    free(v);
    return 0;
}

typedef struct {
    ug_census_row *out;
    size_t n, cap;
} rows_ctx;

static void add_row(void *ctx, const ug_census_bucket *b, const uint64_t n[UG_CENSUS_WINDOWS])
{
    rows_ctx *r = ctx;
    ug_census_row *x = &r->out[r->n++];
    memcpy(x->ver, b->key.ver, sizeof x->ver);
    memcpy(x->plat, b->key.plat, sizeof x->plat);
    memcpy(x->chan, b->key.chan, sizeof x->chan);
    memcpy(x->region, b->key.region, sizeof x->region);
    x->other = b->other;
    x->p = b->sk.p;
    memcpy(x->n, n, sizeof x->n);
}

static int week_desc(const void *a, const void *b)
{
    const ug_census_row *x = a, *y = b;
    return (x->n[UG_CENSUS_WEEK] < y->n[UG_CENSUS_WEEK]) - (x->n[UG_CENSUS_WEEK] > y->n[UG_CENSUS_WEEK]);
}

ug_census_row *ug_census_group_rows(ug_census *c, uint64_t now, int how, size_t *n)
{
    rows_ctx r = {.out = calloc(c->nbmax, sizeof *r.out)};
    if (!r.out || groups(c, now, how, add_row, &r) != 0) {
        free(r.out);
        return NULL;
    }
    qsort(r.out, r.n, sizeof *r.out, week_desc);
    *n = r.n;
    return r.out;
}

size_t ug_census_rows(ug_census *c, uint64_t now, ug_census_row *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    ug_census_row *all = ug_census_group_rows(c, now, UG_CENSUS_BY_BUCKET, &n);
    pthread_mutex_unlock(&c->lock);
    if (all)
        memcpy(out, all, (n < cap ? n : cap) * sizeof *all);
    free(all);
    return n;
}

uint64_t ug_census_total(ug_census *c, uint64_t now, unsigned window)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    ug_census_row *all = ug_census_group_rows(c, now, UG_CENSUS_ALL, &n);
    pthread_mutex_unlock(&c->lock);
    uint64_t v = all && n == 1 && window < UG_CENSUS_WINDOWS ? all[0].n[window] : 0;
    free(all);
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
    pthread_mutex_lock(&c->lock);
    ug_census_row *all = ug_census_group_rows(c, now, UG_CENSUS_BY_VERSION, &n);
    pthread_mutex_unlock(&c->lock);
    if (!all)
        return 0;
    qsort_r(all, n, sizeof *all, window_desc, &window);
    for (size_t i = 0; i < n && i < cap; i++) {
        memcpy(out[i].ver, all[i].ver, sizeof out[i].ver);
        out[i].n = all[i].n[window];
    }
    free(all);
    return n;
}
