/* The census as JSON, for control (upgate-ctl census --json), status and
 * metrics: per window the total and the top versions, every bucket's
 * counts, and the counters. Three passes over the sketches: buckets,
 * versions, total. */
#include <stdlib.h>

#include "census_impl.h"

static const char *const window_names[UG_CENSUS_WINDOWS] = {"hour", "day", "week"};

static json_t *row_json(const ug_census_row *r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:I, s:I, s:I}", "ver", r->ver, "plat", r->plat, "chan", r->chan,
                     "region", r->region, "other", r->other, "p", (int)r->p, "hour", (json_int_t)r->n[0], "day",
                     (json_int_t)r->n[1], "week", (json_int_t)r->n[2]);
}

static json_t *stats_json(ug_census *c)
{
    ug_census_stats s;
    ug_census_stats_get(c, &s);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "noted", (json_int_t)s.noted,
                     "dropped", (json_int_t)s.dropped, "bad_key", (json_int_t)s.bad_key, "other", (json_int_t)s.other,
                     "buckets", (json_int_t)s.buckets, "evicted", (json_int_t)s.evicted, "folds", (json_int_t)s.folds,
                     "bytes", (json_int_t)s.bytes, "ring_bytes", (json_int_t)s.ring_bytes, "merged",
                     (json_int_t)s.merged, "assists", (json_int_t)s.assists, "filtered", (json_int_t)s.filtered);
}

/* One window: the total and the top versions by that window's count. */
static json_t *window_json(const ug_census_row *ver, size_t nver, uint64_t total, unsigned w, size_t top)
{
    json_t *arr = json_array();
    bool *used = calloc(nver ? nver : 1, sizeof *used);
    for (size_t k = 0; arr && used && k < top && k < nver; k++) {
        size_t best = nver;
        for (size_t i = 0; i < nver; i++)
            if (!used[i] && (best == nver || ver[i].n[w] > ver[best].n[w]))
                best = i;
        used[best] = true;
        json_array_append_new(arr, json_pack("{s:s, s:I}", "ver", ver[best].ver, "n", (json_int_t)ver[best].n[w]));
    }
    free(used);
    return arr ? json_pack("{s:I, s:I, s:o}", "total", (json_int_t)total, "versions", (json_int_t)nver, "top", arr)
               : NULL;
}

json_t *ug_census_json(ug_census *c, uint64_t now, size_t top)
{
    size_t nb = 0, nv = 0, na = 0;
    ug_census_row *b = ug_census_group_rows(c, now, UG_CENSUS_BY_BUCKET, &nb);
    ug_census_row *v = ug_census_group_rows(c, now, UG_CENSUS_BY_VERSION, &nv);
    ug_census_row *all = ug_census_group_rows(c, now, UG_CENSUS_ALL, &na);
    json_t *st = stats_json(c);
    json_t *o = json_object(), *win = json_object(), *arr = json_array();
    bool ok = b && v && all && na == 1 && o && win && arr && st;
    for (size_t i = 0; ok && i < nb; i++)
        ok = json_array_append_new(arr, row_json(&b[i])) == 0;
    for (unsigned w = 0; ok && w < UG_CENSUS_WINDOWS; w++)
        ok = json_object_set_new(win, window_names[w], window_json(v, nv, all[0].n[w], w, top)) == 0;
    ug_census_rows_release(c, b);
    ug_census_rows_release(c, v);
    ug_census_rows_release(c, all);
    if (!ok) {
        json_decref(win);
        json_decref(arr);
        json_decref(st);
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "windows", win);
    json_object_set_new(o, "buckets", arr);
    json_object_set_new(o, "stats", st);
    return o;
}
