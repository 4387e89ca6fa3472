/* upgate-node's parts share this: the adapter (libupgate-host) that holds the plugin, the workers' counters. */
#ifndef UG_NODE_H
#define UG_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "plugin_entry.h"
#include "upgate/host.h"

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

/* The adapter holding the plugin, and the plugin's table: set once
 * before any worker starts. */
extern ug_host_adapter *ug_node_adapter;
extern const ug_plugin *ug_api;

/* dlopen()s path and checks the table's ABI (libupgate-host); exits with
 * a line naming path on failure. */
const ug_plugin *ug_node_load(const char *path);

/* Sum of counter c over every worker (serve.c): the node's own, or what
 * the adapter counted. */
uint64_t ug_node_counter_sum(unsigned c);
/* Control socket connections served (the adapter's). */
unsigned long long ug_ctl_served(void);

/* One control request (the adapter serializes it with tick, reload and
 * stats); 0 or -1 as control() returned, -2 when the plugin has none. */
int ug_node_control(const char *req, size_t len, ug_emit emit, void *ctx);

#endif
