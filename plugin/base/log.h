/* What the plugin says and when: the host's log and clock, and the durable history. */
#ifndef UG_LOG_H
#define UG_LOG_H

#include "base/audit.h"
#include "base/inst.h"

void ug_logf(ug_inst *I, ug_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t ug_inst_now(ug_inst *I);
uint64_t ug_default_now(void *ctx); /* time(NULL) */
/* Adds a change to the durable history (the log says so if it cannot). */
int ug_history(ug_inst *I, uint64_t at, const ug_event *e);
/* The same for the serialized call in flight (control, reload): by
 * I->caller, now. */
int ug_history_note(ug_inst *I, const char *action, const char *rollout, const char *reason, const char *summary,
                    const char *what);

#endif
