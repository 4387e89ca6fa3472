/* upgate-node's log lines: RFC 3339 UTC time and level, or a syslog <N> prefix under journald. */
#ifndef UG_LOG_H
#define UG_LOG_H

#include <stdbool.h>

#include "upgate_plugin.h"

/* Reads JOURNAL_STREAM once: set (and not empty) means journald stamps our
 * lines itself, so they start with "<N>" and carry no time. */
void ug_log_init(void);
/* One line on stderr, whatever is in msg (newlines and control bytes become
 * spaces): "2026-12-01T14:44:44.123Z info upgate-node: msg" or "<6>upgate-node: msg". */
void ug_log(ug_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The plugin's log() callback. */
void ug_log_host(void *ctx, ug_log_level level, const char *msg);
/* Routes ug_die/ug_complain (common.c) through ug_log at level error. */
void ug_log_take_errors(void);
/* Is the journald format in use? */
bool ug_log_journal(void);

#endif
