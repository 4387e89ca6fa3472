/* Time zones from the system's tzdata, without setenv("TZ"): a strict,
 * bounded reader of TZif files (RFC 8536, version 2 and later) and of their
 * POSIX TZ footer, which answers for instants past the file's table. A
 * zone, once read, is immutable: any number of threads may query it. */
#ifndef UG_TZ_H
#define UG_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

#define UG_TZ_NAME_MAX 64u        /* bytes of a zone name, "Europe/Berlin" */
#define UG_TZ_FILE_MAX 65536u     /* bytes of a zone file (Debian's largest: 3872) */
#define UG_TZ_TRANS_MAX 4096u     /* transitions in a file's 64-bit table (largest: 310) */
#define UG_TZ_FOOTER_MAX 128u     /* bytes of the POSIX TZ footer */
#define UG_TZ_OFF_MAX (26 * 3600) /* |UT offset| accepted, seconds */
#define UG_TZ_DIR "/usr/share/zoneinfo"
/* Instants are Unix seconds; queries are clamped to +-2^58 (9 billion
 * years), periods open before the first or after the last known
 * transition end at these sentinels. */
#define UG_TZ_T_MAX (INT64_C(1) << 58)
#define UG_TZ_BEGIN (-(INT64_C(1) << 62))
#define UG_TZ_END (INT64_C(1) << 62)

typedef struct ug_tz ug_tz;

/* A stretch of time with one UT offset: [start, end), Unix seconds. */
typedef struct {
    int64_t start, end;
    int32_t off; /* seconds east of UTC: local = utc + off */
    bool dst;
} ug_tz_period;

/* Reads a TZif file's bytes. Refused, with the reason: version 1 only
 * (no 64-bit table), leap seconds (the right/ zones), any count, time,
 * offset or index out of bounds, times not ascending, a malformed or
 * truncated footer, trailing bytes. */
ug_tz *ug_tz_parse(const uint8_t *buf, size_t len, char *why, size_t whycap) UG_WUR;
/* The zone called name under dir (UG_TZ_DIR when NULL): "UTC" is built in;
 * any other name must be an IANA-style path ([A-Za-z0-9_+-] components
 * joined by '/', none starting with '.' or '-'), the file regular and at
 * most UG_TZ_FILE_MAX bytes (opened without blocking, so a FIFO cannot
 * hang the caller). Reads one small file: call it at load or under the
 * caller's own lock, never per request. */
ug_tz *ug_tz_load(const char *dir, const char *name, char *why, size_t whycap) UG_WUR;
ug_tz *ug_tz_utc(void) UG_WUR;
void ug_tz_free(ug_tz *z);
/* The zone's name as loaded ("" for parsed bytes). */
const char *ug_tz_name(const ug_tz *z);
bool ug_tz_name_ok(const char *name);

/* The period holding t: a binary search of the table, or the footer's
 * rule (a few date computations) past it. */
void ug_tz_period_at(const ug_tz *z, int64_t t, ug_tz_period *p);
int32_t ug_tz_offset(const ug_tz *z, int64_t t);
/* The instant a wall-clock reading `local` (seconds since 1970-01-01 00:00
 * on the zone's clock) names, as RFC 5545 3.3.5 reads one: a reading that
 * occurs twice (the clock set back) names its first occurrence; one the
 * clock skips (set forward) is read with the offset in force before the
 * gap, so 02:30 on a spring-forward night from +1 to +2 is 03:30 new time.
 * -1 when local is out of range. */
int ug_tz_local_to_utc(const ug_tz *z, int64_t local, int64_t *utc) UG_WUR;

#endif
