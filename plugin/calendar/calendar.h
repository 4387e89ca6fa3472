/* Off-peak windows: recurring weekly windows ("mon-fri 01:00-06:00
 * Europe/Berlin", or in the peer's own zone) turned, at load and then daily
 * by tick, into sorted UTC intervals for the weeks ahead, so that a
 * decision is a binary search: is now inside, and when does it next open?
 * Definitions: docs/policy-v2-extensions.md, "Off-peak windows". */
#ifndef UG_CALENDAR_H
#define UG_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tz.h"

#define UG_CAL_WINDOWS_MAX 16u   /* windows per calendar */
#define UG_CAL_HORIZON_DAYS 56u  /* days ahead precomputed (8 weeks) */
#define UG_CAL_ZONES_MAX 512u    /* peer zones a calendar caches */
#define UG_CAL_NEVER INT64_MAX   /* no change within the horizon */
#define UG_CAL_PEER "peer"

typedef struct {
    uint8_t days;      /* bit d: the window opens on weekday d (0 Sunday .. 6 Saturday) */
    uint16_t from, to; /* minutes after local midnight; to <= from: it closes the next day */
    char tz[UG_TZ_NAME_MAX + 1]; /* a zone name; "" the calendar's tz; "peer" the peer's zone */
} ug_cal_window;

/* Reads one window's values as a policy spells them:
 *   days  "mon-fri", "sat,sun", "mon,wed-fri", "fri-mon" (a range may wrap),
 *         "daily"; case-insensitive three-letter names; NULL means daily
 *   from  "HH:MM", 00:00 .. 23:59
 *   to    "HH:MM", 00:00 .. 24:00; earlier than from: the window crosses
 *         midnight and closes the next day; equal to from: refused
 *   tz    NULL or "": the calendar's tz; "peer"; or a zone name
 * On error, one line naming the field ("to: ...") in why. */
int ug_cal_window_parse(ug_cal_window *w, const char *days, const char *from, const char *to, const char *tz,
                        char *why, size_t whycap) UG_WUR;

typedef struct {
    const char *tz;           /* windows without a tz, and peers the GeoIP database does not place; NULL: "UTC" */
    const char *zoneinfo;     /* NULL: UG_TZ_DIR */
    unsigned horizon_days;    /* 0: UG_CAL_HORIZON_DAYS; 14 .. 366 */
    unsigned zones_max;       /* 0: UG_CAL_ZONES_MAX */
} ug_cal_opts;

typedef struct ug_cal ug_cal;

/* Loads every named zone and precomputes from now. NULL with one line in
 * why: no windows, too many, a zone that does not load. */
ug_cal *ug_cal_create(const ug_cal_window *w, size_t n, const ug_cal_opts *o, int64_t now, char *why,
                      size_t whycap) UG_WUR;
void ug_cal_free(ug_cal *c);

typedef struct {
    bool open;      /* now is inside a window */
    bool fallback;  /* the peer's zone was unknown or did not load: the calendar's tz stood in */
    bool stale;     /* now is past the precomputed days (tick has not run): closed, change NEVER */
    int64_t change; /* open: when it closes; closed: when it next opens; UG_CAL_NEVER: not within the horizon */
} ug_cal_state;

/* Where now stands for a peer whose zone is peer_zone (NULL or "": not
 * known; only windows with tz "peer" read it). Safe from any number of
 * threads at once, and alongside ug_cal_tick. Costs a binary search per
 * plan (the fixed windows', and the peer zone's: a hash lookup first);
 * the first peer of a zone new to the calendar loads and precomputes it
 * under a mutex (one zone file read, about 50 us), later ones only read. */
void ug_cal_at(ug_cal *c, const char *peer_zone, int64_t now, ug_cal_state *s);
/* Moves the horizon: once a day recomputes every plan from now. Call it
 * from one thread (the host's tick). A plan replaced here is freed by a
 * tick at least 60 s later (CLOCK_MONOTONIC, whatever now says); ug_cal_at
 * holds one for a binary search only. */
void ug_cal_tick(ug_cal *c, int64_t now);
/* Zones cached, and peer zones refused (unknown names, full cache). */
void ug_cal_counts(ug_cal *c, uint64_t *zones, uint64_t *refused);

#endif
