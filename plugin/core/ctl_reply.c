/* Control's replies, for the core's commands and an add-on's alike: a reply, a refusal, a note in the history; members checked. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "core/ctl_impl.h"

int ug_ctl_dump_cb(const char *buf, size_t size, void *data)
{
    void **e = data;
    ((ug_emit)e[0])(e[1], buf, size);
    return 0;
}

int ug_ctl_reply(ug_emit emit, void *ctx, json_t *o, bool ok)
{
    if (!o)
        o = json_object();
    json_object_set_new(o, "ok", json_boolean(ok));
    void *e[2] = {(void *)emit, ctx};
    /* reals are percentages of two decimals: 10 digits print them exactly
     * as written (12.34, not 12.339999999999999) */
    json_dump_callback(o, ug_ctl_dump_cb, e, JSON_COMPACT | JSON_REAL_PRECISION(10));
    emit(ctx, "\n", 1);
    json_decref(o);
    return ok ? 0 : -1;
}

int ug_ctl_refuse(ug_emit emit, void *ctx, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line of ASCII, whatever a request echoed into it (and a cut
     * multi-byte character would make jansson refuse the string) */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    return ug_ctl_reply(emit, ctx, json_pack("{s:s}", "error", msg), false);
}

int ug_ctl_note(ug_inst *I, const char *action, const char *rollout, const char *reason, const char *line)
{
    ug_logf(I, UG_LOG_INFO, "control: %s", line);
    return ug_history_note(I, action, rollout, reason, NULL, line);
}

const char *ug_ctl_members(const char *cmd)
{
    static const struct {
        const char *cmd, *members;
    } rows[] = {
#define UG_CONTROL(name, who, members, min, max, flags, usage, help) {#name, members},
#include "control.def"
#undef UG_CONTROL
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (strcmp(rows[i].cmd, cmd) == 0)
            return rows[i].members;
    return "";
}

bool ug_ctl_member_ok(const char *members, const char *key)
{
    size_t n = strlen(key);
    if (n == 0) /* strstr finds "" everywhere: it would never move on */
        return false;
    for (const char *p = members; (p = strstr(p, key)); p += n)
        if ((p == members || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0))
            return true;
    return false;
}
