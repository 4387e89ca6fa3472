/* The inside of a calendar, shared by its setup (calendar.c) and its
 * queries, zone cache and refresh (calcache.c). */
#ifndef UG_CAL_IMPL_H
#define UG_CAL_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include "calplan.h"

typedef struct {
    char name[UG_TZ_NAME_MAX + 1];
    ug_tz *tz; /* NULL: the name did not load (the fallback answers) */
    _Atomic(ug_cal_plan *) plan;
} ug_cal_zent;

typedef struct {
    ug_cal_plan **v;
    int64_t *at; /* when each was replaced, CLOCK_MONOTONIC ns */
    size_t n, cap;
} ug_cal_plans;

struct ug_cal {
    ug_cal_window w[UG_CAL_WINDOWS_MAX], peer_w[UG_CAL_WINDOWS_MAX];
    const ug_tz *wz[UG_CAL_WINDOWS_MAX]; /* the zone of each fixed window */
    size_t nfixed, npeer;
    ug_tz *owned[UG_CAL_WINDOWS_MAX + 1]; /* the fixed windows' distinct zones and the default */
    size_t nowned;
    ug_tz *deflt;
    _Atomic(ug_cal_plan *) fixed;
    ug_cal_zent *fallback; /* the peer windows in the default zone */
    unsigned cap, max, count;
    _Atomic(ug_cal_zent *) *slots;
    _Atomic uint64_t refused;
    pthread_mutex_t mu;
    ug_cal_plans retired; /* replaced, freed by a tick UG_CAL_GRACE_NS later */
    int64_t built_day;
    unsigned horizon;
    char zoneinfo[256];
};

/* The plan of the peer windows read in zone z. */
ug_cal_plan *ug_cal_peer_plan(const ug_cal *c, const ug_tz *z, int64_t now) UG_WUR;
/* A cache entry owning z (NULL: a name that did not load), with its plan. */
ug_cal_zent *ug_cal_zent_new(const ug_cal *c, const char *name, ug_tz *z, int64_t now) UG_WUR;
void ug_cal_zent_free(ug_cal_zent *e);
void ug_cal_plans_free(ug_cal_plans *p);

/* A replaced plan outlives any reader: one holds it for a binary search. */
#define UG_CAL_GRACE_NS (INT64_C(60) * 1000000000)

#endif
