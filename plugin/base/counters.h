/* The plugin's counters (base/counters.def): their enum, and the tables that name them for stats() and metrics. */
#ifndef UG_COUNTERS_H
#define UG_COUNTERS_H

#include <stddef.h>

#include "ug_proto2.h"

/* ST_DATAGRAMS, ...; ST_WAIT0 + ug_why; ST_DROP0 + ug_err; ST_COUNT. */
enum {
#define UG_COUNTER(id, name, family, labels, help) ST_##id,
#define UG_COUNTER_SPAN(id, n, key, namer) ST_##id, ST_##id##_LAST_ = ST_##id + (n) - 1,
#define UG_COUNTER_IN(id, value, name, family, labels, help)
#include "base/counters.def"
#undef UG_COUNTER
#undef UG_COUNTER_SPAN
#undef UG_COUNTER_IN
    ST_COUNT
};

/* One counter: stats() shows those with a name; the exposition those with
 * a family, family by family in the order of their first rows. */
typedef struct {
    const char *name;   /* in stats(); NULL: a span's value a tracker never meets */
    const char *family; /* Prometheus family; NULL: stats() alone */
    const char *labels; /* the sample's labels; NULL: its span's, if any */
    const char *help;   /* the family's HELP, on its first row */
} ug_counter_row;

extern const ug_counter_row ug_counters[ST_COUNT];

/* A span of counters, one per value of an enum: ST first + value. */
typedef struct {
    unsigned first, n;
    const char *key;                      /* label key of its rows without labels, or NULL */
    const char *(*namer)(unsigned value); /* ... and the value's name */
} ug_counter_span;

extern const ug_counter_span ug_counter_spans[];
extern const size_t ug_counter_nspans;

#endif
