/* The inside of a zone, shared by the TZif reader (tzif.c), the POSIX TZ
 * rule (tzrule.c) and the queries (tz.c). */
#ifndef UG_TZ_IMPL_H
#define UG_TZ_IMPL_H

#include "tz.h"

/* A rule's date: Jn (1..365, no Feb 29), n (0..365, Feb 29 counted) or
 * Mm.w.d (month, week 1..5 where 5 is the last, weekday 0 Sunday). */
enum { UG_TZ_DATE_JULIAN1 = 1, UG_TZ_DATE_JULIAN0, UG_TZ_DATE_MWD };

typedef struct {
    uint8_t kind;
    uint16_t n;         /* JULIAN1, JULIAN0 */
    uint8_t m, w, d;    /* MWD */
    int32_t time;       /* seconds after local midnight, -167h..167h */
} ug_tz_date;

typedef struct {
    int32_t std_off, dst_off; /* seconds east */
    bool has_dst;
    ug_tz_date start, end;    /* DST starts (in standard time), ends (in DST) */
} ug_tz_rule;

#define UG_TZ_TYPES_MAX 256u

struct ug_tz {
    char name[UG_TZ_NAME_MAX + 1];
    uint32_t ntrans, ntypes;
    int64_t *trans;  /* [ntrans], strictly ascending */
    uint8_t *type;   /* [ntrans]: the type of the period each begins */
    int32_t off[UG_TZ_TYPES_MAX];
    uint8_t dst[UG_TZ_TYPES_MAX];
    bool has_rule;
    ug_tz_rule rule;
};

/* Parses a POSIX TZ string (with RFC 8536's version 3 hours, -167..167,
 * in rule times) of len bytes. A DST name without a rule is refused. */
int ug_tz_rule_parse(ug_tz_rule *r, const char *s, size_t len, char *why, size_t whycap) UG_WUR;
/* The rule's period holding t (t within +-UG_TZ_T_MAX). */
void ug_tz_rule_period(const ug_tz_rule *r, int64_t t, ug_tz_period *p);

#endif
