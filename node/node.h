/* upgate-node's parts share this: the loaded plugin, its lock, the workers and their counters. */
#ifndef UG_NODE_H
#define UG_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "plugin_entry.h"
#include "upgate_plugin.h"

/* Host-side counters (counters.def), one set per worker, summed when shown. */
enum {
#define UG_NODE_COUNTER(id, stat, family, labels, help) NC_##id,
#include "counters.def"
#undef UG_NODE_COUNTER
    NC_COUNT
};

typedef struct {
    const char *stat;   /* name in the stats line */
    const char *metric; /* Prometheus family (without labels) */
    const char *label;  /* label set, or NULL */
    const char *help;
} ug_node_counter;

extern const ug_node_counter ug_node_counters[NC_COUNT];

/* The plugin and its instance, set once before any thread starts. */
extern const ug_plugin *ug_api;
extern void *ug_node_plugin_inst;
/* Serializes control(), tick(), reload() and stats() (the ABI's rule). */
extern pthread_mutex_t ug_plugin_mu;

/* dlopen()s path and checks the table's ABI; exits with a line naming path on failure. */
const ug_plugin *ug_node_load(const char *path);

/* Sum of counter c over every worker (serve.c). */
uint64_t ug_node_counter_sum(unsigned c);

/* One control request, under the lock; 0 or -1 as control() returned, -2
 * when the plugin has no control(). */
int ug_node_control(const char *req, size_t len, ug_emit emit, void *ctx);

#endif
