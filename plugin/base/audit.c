/* The history's records: who changed what, and why, coded as one line: RS, then fields parted by US (store/layout.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/audit.h"

#define RS '\x1e' /* a record of this layout starts so; an older one is bare text */
#define US '\x1f'
#define NFIELDS 8 /* kind, uid, pid, action, rollout, reason, summary, what */

static const char *const names[UG_ACTOR_COUNT] = {"unknown", "host", "control", "signal", "automatic", "fleet"};

const char *ug_actor_name(ug_actor_kind k)
{
    return (unsigned)k < UG_ACTOR_COUNT ? names[k] : "unknown";
}

ug_actor ug_actor_self(void)
{
    return (ug_actor){.kind = UG_ACTOR_HOST, .uid = (uint32_t)getuid(), .pid = (int32_t)getpid()};
}

/* Appends s (cut to at most max bytes, control bytes as '?'), then sep. */
static size_t put(char *out, size_t at, size_t cap, const char *s, size_t max, char sep)
{
    size_t i = 0;
    for (; s && s[i] && i < max && at + 2 < cap; i++)
        out[at++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    /* cut: not inside a multi-byte character (history's JSON would refuse it) */
    while (s && s[i] && i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
        i--, at--;
    if (sep && at + 1 < cap)
        out[at++] = sep;
    out[at] = 0;
    return at;
}

void ug_audit_encode(const ug_event *e, char *out, size_t cap)
{
    char num[48];
    size_t at = 0;
    out[at++] = RS;
    snprintf(num, sizeof num, "%u", (unsigned)e->by.kind);
    at = put(out, at, cap, num, sizeof num, US);
    snprintf(num, sizeof num, "%" PRIu32, e->by.uid);
    at = put(out, at, cap, num, sizeof num, US);
    snprintf(num, sizeof num, "%" PRId32, e->by.pid);
    at = put(out, at, cap, num, sizeof num, US);
    at = put(out, at, cap, e->action, 32, US);
    at = put(out, at, cap, e->rollout, 64, US);
    at = put(out, at, cap, e->reason, 200, US);
    at = put(out, at, cap, e->summary, 300, US);
    size_t room = UG_AUDIT_MAX > at ? UG_AUDIT_MAX - at : 0;
    (void)put(out, at, cap, e->what, room, 0);
}

void ug_audit_decode(char *line, ug_event *e)
{
    *e = (ug_event){.by = {.kind = UG_ACTOR_UNKNOWN}, .what = line};
    if (line[0] != RS)
        return;
    char *f[NFIELDS] = {0}, *p = line + 1;
    for (int i = 0; i < NFIELDS; i++) {
        f[i] = p;
        char *s = i + 1 < NFIELDS ? strchr(p, US) : NULL;
        if (!s && i + 1 < NFIELDS) { /* a cut record: what it has */
            for (int j = i + 1; j < NFIELDS; j++)
                f[j] = p + strlen(p);
            break;
        }
        if (s) {
            *s = 0;
            p = s + 1;
        }
    }
    unsigned long k = strtoul(f[0], NULL, 10);
    e->by.kind = k < UG_ACTOR_COUNT ? (ug_actor_kind)k : UG_ACTOR_UNKNOWN;
    e->by.uid = (uint32_t)strtoul(f[1], NULL, 10);
    e->by.pid = (int32_t)strtol(f[2], NULL, 10);
    e->action = f[3];
    e->rollout = f[4];
    e->reason = f[5];
    e->summary = f[6];
    e->what = f[7];
}
