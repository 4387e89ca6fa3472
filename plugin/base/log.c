/* What the plugin says and when: the host's log and clock, and the durable history. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "base/log.h"

void ug_logf(ug_inst *I, ug_log_level lvl, const char *fmt, ...)
{
    char msg[UG_ERR_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (I->host.log)
        I->host.log(I->host.ctx, lvl, msg);
}

uint64_t ug_default_now(void *ctx)
{
    (void)ctx;
    return (uint64_t)time(NULL);
}

uint64_t ug_inst_now(ug_inst *I)
{
    return I->host.now(I->host.ctx);
}

int ug_history(ug_inst *I, uint64_t at, const ug_event *e)
{
    if (!I->store)
        return 0;
    char line[UG_AUDIT_MAX + 1];
    ug_audit_encode(e, line, sizeof line);
    if (ug_store_history_add(I->store, at, line) == 0)
        return 0;
    ug_logf(I, UG_LOG_ERROR, "state folder %s: cannot store in the history: %s", I->state_dir, e->what);
    return -1;
}

int ug_history_note(ug_inst *I, const char *action, const char *rollout, const char *reason, const char *summary,
                    const char *what)
{
    ug_event e = {.by = I->caller, .action = action, .rollout = rollout, .reason = reason, .summary = summary,
                  .what = what};
    return ug_history(I, ug_inst_now(I), &e);
}
