/* The policy's value parsers: text in, value out, nothing else (no YAML, no
 * files, no messages). Each returns 0, or -1 when the text is not one. */
#ifndef UG_POLICY_VALUES_H
#define UG_POLICY_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

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
/* A fleet's redis address, syntax only: redis://HOST[:PORT][/DB],
 * unix:///PATH, or sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]. HOST a
 * name or [IPv6]; PORT 1..65535 (redis:// defaults to 6379); DB 0..65535;
 * MASTER [A-Za-z0-9._-]{1,64}; at most 16 sentinels. No credentials
 * ("user:pass@"): why says so. why gets the reason; out (may be NULL) the
 * parts: a redis:// host is sentinels[0]. */
#define UG_SENTINELS_MAX 16u
typedef struct {
    char host[254]; /* a name or an IPv6 address without its brackets */
    unsigned port;
} ug_redis_endpoint;
typedef struct {
    enum { UG_REDIS_TCP, UG_REDIS_UNIX, UG_REDIS_SENTINEL } kind;
    ug_redis_endpoint sentinels[UG_SENTINELS_MAX]; /* TCP: [0] is the server */
    unsigned nsentinels;
    char path[UG_URL_TEXT_MAX]; /* UNIX */
    char master[65];            /* SENTINEL */
    unsigned db;
} ug_redis_url;
int ug_parse_redis_url(const char *s, size_t n, ug_redis_url *out, const char **why) UG_WUR;

#endif
