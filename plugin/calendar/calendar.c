/* A calendar: the windows, their zones, the plan of the fixed-zone windows
 * and a cache of peer zones (name -> zone and plan of the "peer" windows).
 * Readers never lock: plans and cache entries are published with release
 * stores; a zone new to the cache is loaded under the mutex, which tick's
 * daily refresh takes too. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cal_impl.h"
#include "civil.h"

static const ug_tz *owned_zone(ug_cal *c, const char *name, char *why, size_t whycap)
{
    for (size_t i = 0; i < c->nowned; i++)
        if (strcmp(ug_tz_name(c->owned[i]), name) == 0)
            return c->owned[i];
    ug_tz *z = ug_tz_load(c->zoneinfo[0] ? c->zoneinfo : NULL, name, why, whycap);
    if (z)
        c->owned[c->nowned++] = z;
    return z;
}

ug_cal_plan *ug_cal_peer_plan(const ug_cal *c, const ug_tz *z, int64_t now)
{
    const ug_tz *zs[UG_CAL_WINDOWS_MAX];
    for (size_t i = 0; i < c->npeer; i++)
        zs[i] = z;
    return ug_cal_plan_build(c->peer_w, zs, c->npeer, now, c->horizon);
}

ug_cal_zent *ug_cal_zent_new(const ug_cal *c, const char *name, ug_tz *z, int64_t now)
{
    ug_cal_zent *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    e->tz = z;
    if (z) {
        ug_cal_plan *p = ug_cal_peer_plan(c, z, now);
        if (!p) {
            free(e);
            return NULL;
        }
        atomic_init(&e->plan, p);
    }
    return e;
}

static int setup(ug_cal *c, const ug_cal_window *w, size_t n, const ug_cal_opts *o, int64_t now, char *why,
                 size_t whycap)
{
    char sub[320];
    const char *deflt = o && o->tz && *o->tz ? o->tz : "UTC";
    if (!(c->deflt = (ug_tz *)owned_zone(c, deflt, sub, sizeof sub))) {
        snprintf(why, whycap, "tz: %s", sub);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(w[i].tz, UG_CAL_PEER) == 0) {
            c->peer_w[c->npeer++] = w[i];
            continue;
        }
        c->w[c->nfixed] = w[i];
        if (!(c->wz[c->nfixed++] = w[i].tz[0] ? owned_zone(c, w[i].tz, sub, sizeof sub) : c->deflt)) {
            snprintf(why, whycap, "windows[%zu].tz: %s", i, sub);
            return -1;
        }
    }
    ug_cal_plan *fp = c->nfixed ? ug_cal_plan_build(c->w, c->wz, c->nfixed, now, c->horizon) : NULL;
    atomic_init(&c->fixed, fp);
    if ((c->nfixed && !fp) || (c->npeer && !(c->fallback = ug_cal_zent_new(c, ug_tz_name(c->deflt), NULL, now))))
        goto oom;
    if (c->npeer) {
        ug_cal_plan *p = ug_cal_peer_plan(c, c->deflt, now);
        if (!p)
            goto oom;
        atomic_init(&c->fallback->plan, p);
    }
    return 0;
oom:
    snprintf(why, whycap, "windows: out of memory");
    return -1;
}

ug_cal *ug_cal_create(const ug_cal_window *w, size_t n, const ug_cal_opts *o, int64_t now, char *why, size_t whycap)
{
    if (n == 0 || n > UG_CAL_WINDOWS_MAX) {
        snprintf(why, whycap, "windows: %zu windows (1 to %u)", n, UG_CAL_WINDOWS_MAX);
        return NULL;
    }
    unsigned horizon = o && o->horizon_days ? o->horizon_days : UG_CAL_HORIZON_DAYS;
    unsigned max = o && o->zones_max ? o->zones_max : UG_CAL_ZONES_MAX;
    if (horizon < 14 || horizon > 366 || max > 65536) {
        snprintf(why, whycap, "windows: horizon_days 14..366 and zones_max up to 65536");
        return NULL;
    }
    ug_cal *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(why, whycap, "windows: out of memory");
        return NULL;
    }
    c->horizon = horizon;
    c->max = max;
    for (c->cap = 16; c->cap < 2 * max; c->cap *= 2)
        ;
    snprintf(c->zoneinfo, sizeof c->zoneinfo, "%s", o && o->zoneinfo ? o->zoneinfo : "");
    c->built_day = ug_civil_floordiv(now, 86400);
    pthread_mutex_init(&c->mu, NULL);
    if (!(c->slots = calloc(c->cap, sizeof *c->slots))) {
        snprintf(why, whycap, "windows: out of memory");
        ug_cal_free(c);
        return NULL;
    }
    if (setup(c, w, n, o, now, why, whycap) != 0) {
        ug_cal_free(c);
        return NULL;
    }
    return c;
}

void ug_cal_plans_free(ug_cal_plans *p)
{
    for (size_t i = 0; i < p->n; i++)
        ug_cal_plan_free(p->v[i]);
    p->n = 0;
}

void ug_cal_zent_free(ug_cal_zent *e)
{
    if (!e)
        return;
    ug_cal_plan_free(atomic_load(&e->plan));
    ug_tz_free(e->tz);
    free(e);
}

void ug_cal_free(ug_cal *c)
{
    if (!c)
        return;
    for (unsigned i = 0; c->slots && i < c->cap; i++)
        ug_cal_zent_free(atomic_load(&c->slots[i]));
    ug_cal_zent_free(c->fallback);
    ug_cal_plan_free(atomic_load(&c->fixed));
    for (size_t i = 0; i < c->nowned; i++)
        ug_tz_free(c->owned[i]);
    ug_cal_plans_free(&c->retired);
    free(c->retired.v);
    free(c->retired.at);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
