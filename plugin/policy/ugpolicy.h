/* libugpolicy (build/libugpolicy.a): the policy's value parsers and its GeoIP reader, for programs that read policies exactly as the plugin does.
 *
 * The one plugin header a program may include besides upgate_plugin.h
 * (tests/layers.py): upgate-sim reads its flags, weights and regions with
 * these. It needs only proto/ (ug_proto.h); link libugpolicy.a, then
 * libugproto.a, with libmaxminddb. */
#ifndef UG_UGPOLICY_H
#define UG_UGPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ug_proto.h"

/* ---- values (policy_values.c): text in, value out; 0, or -1 when the text is not one ---- */

#define UG_REGION_MAX 6u /* "CN" or "CN-BJ" up to "US-ABC" */

/* "P", "P.D" or "P.DD" with P in 0..100 -> hundredths of a percent,
 * exactly (no double: 1.15 is 115, not 114). No sign, no leading zero. */
int ug_parse_percent(const char *s, size_t n, uint32_t *bp) UG_WUR;
/* A fraction "0", "1", "0.D" .. "0.DDDDDD" or "1.0..." in 0..1 -> parts
 * per million, exactly. */
int ug_parse_ppm(const char *s, size_t n, uint32_t *ppm) UG_WUR;
/* A positive decimal "I" or "I.F" (at most 12 integer digits, 9 decimals;
 * no exponent, no sign, independent of the locale). */
int ug_parse_rate(const char *s, size_t n, double *out) UG_WUR;
/* RFC 3339 date-time -> Unix seconds: date 'T' time, an optional fraction
 * (dropped), 'Z' or +hh:mm / -hh:mm. */
int ug_parse_time(const char *s, size_t n, int64_t *out) UG_WUR;

/* A rollout's target: a version, or below one. */
typedef enum { UG_TARGET_EQ, UG_TARGET_LT, UG_TARGET_LE } ug_target_op;
typedef struct {
    ug_target_op op;
    ug_version v;
} ug_target;
/* "1.4.0", "<1.3", "<= 1.3". */
int ug_parse_target(const char *s, size_t n, ug_target *t) UG_WUR;
/* Canonical text of a target ("<=1.3"); 0, or -1 when cap is short. */
int ug_target_format(const ug_target *t, char *out, size_t cap) UG_WUR;

/* Decimal uid 1..UG_UID_MAX, no sign, no leading zero. */
int ug_parse_uid(const char *s, size_t n, uint64_t *out) UG_WUR;
/* An ISO 3166-1 alpha-2 country ("DE") or ISO 3166-2 subdivision
 * ("CN-BJ": country, '-', 1..3 letters or digits), either case; out gets
 * it in upper case, NUL-terminated. */
int ug_parse_region(const char *s, size_t n, char out[UG_REGION_MAX + 1]) UG_WUR;

/* ---- GeoIP (geo.c): where an address is, from a MaxMind DB (GeoIP2/GeoLite2
 * City or Country layout) read through libmaxminddb, as the `regions`
 * condition sees it ---- */

typedef struct ug_geo ug_geo; /* an open MaxMind DB */

#define UG_GEO_SUBS_MAX 4u /* subdivision levels looked at */
typedef struct {
    char country[3];              /* ISO 3166-1 alpha-2, "" when unknown */
    char sub[UG_GEO_SUBS_MAX][4]; /* subdivisions' ISO 3166-2 codes, minus the country */
    unsigned nsub;
} ug_place;

/* Opens the DB at path: a regular file (opened without blocking first, so
 * a FIFO cannot hang a reload), in the MaxMind DB format. A DB already
 * open for the same unchanged file (device, inode, size, mtime) is shared.
 * NULL with the reason in why. Lookups may run concurrently; close once
 * none runs (the last close unmaps it). */
ug_geo *ug_geo_open(const char *path, char *why, size_t whycap) UG_WUR;
void ug_geo_close(ug_geo *g);
/* The place of sa's address (an IPv4-mapped IPv6 one as IPv4): false when
 * the DB does not know it. */
bool ug_geo_lookup(const ug_geo *g, const struct sockaddr *sa, ug_place *out);
/* The IANA time zone of sa's address (a City DB's location.time_zone,
 * "Europe/Berlin") into out[0..cap): false, out "", when the DB has none. */
bool ug_geo_zone(const ug_geo *g, const struct sockaddr *sa, char *out, size_t cap);

#endif
