/* The tables of the plugin's counters, made from base/counters.def. */
#include "base/counters.h"

const ug_counter_row ug_counters[ST_COUNT] = {
#define UG_COUNTER(id, name, family, labels, help) [ST_##id] = {name, family, labels, help},
#define UG_COUNTER_SPAN(id, n, key, namer)
#define UG_COUNTER_IN(id, value, name, family, labels, help) [ST_##id + (value)] = {name, family, labels, help},
#include "base/counters.def"
#undef UG_COUNTER
#undef UG_COUNTER_SPAN
#undef UG_COUNTER_IN
};

const ug_counter_span ug_counter_spans[] = {
#define UG_COUNTER(id, name, family, labels, help)
#define UG_COUNTER_SPAN(id, n, key, namer) {ST_##id, n, key, namer},
#define UG_COUNTER_IN(id, value, name, family, labels, help)
#include "base/counters.def"
#undef UG_COUNTER
#undef UG_COUNTER_SPAN
#undef UG_COUNTER_IN
};

const size_t ug_counter_nspans = sizeof ug_counter_spans / sizeof ug_counter_spans[0];
