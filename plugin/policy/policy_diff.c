/* What a reload changes, in one line for the history: rollouts added or removed, stages, percent in force, quota, release, pause. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

typedef struct {
    char *out;
    size_t cap, len;
    bool cut;
} line;

/* Appends to the line; past its end, it ends in "..." and takes no more. */
__attribute__((format(printf, 2, 3))) static void say(line *l, const char *fmt, ...)
{
    if (l->cut)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->out + l->len, l->cap - l->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < l->cap - l->len) {
        l->len += (size_t)n;
        return;
    }
    l->cut = true;
    l->len = l->cap > 4 ? l->cap - 4 : 0;
    snprintf(l->out + l->len, l->cap - l->len, "...");
}

/* The percent in force, as the policy writes it: "5", "12.5"; a stage
 * without one takes every peer it matches, 100. */
static const char *pct(const ug_stage *s, int64_t now, char *buf, size_t cap)
{
    uint32_t bp = s->has_percent ? ug_percent_at(&s->percent, now) : 10000;
    if (bp % 100)
        snprintf(buf, cap, "%" PRIu32 ".%02" PRIu32, bp / 100, bp % 100);
    else
        snprintf(buf, cap, "%" PRIu32, bp / 100);
    if (bp % 10 == 0 && bp % 100) /* 12.50 -> 12.5 */
        buf[strlen(buf) - 1] = 0;
    return buf;
}

static const ug_rollout *rollout_named(const ug_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nrollouts; i++)
        if (strcmp(p->rollouts[i].name, name) == 0)
            return &p->rollouts[i];
    return NULL;
}

static const ug_stage *stage_named(const ug_rollout *r, const char *name)
{
    for (size_t i = 0; i < r->nstages; i++)
        if (strcmp(r->stages[i].name, name) == 0)
            return &r->stages[i];
    return NULL;
}

/* "quota 100 -> 200" ("none" for a stage without one). */
static void quota(line *l, const char *sep, const ug_stage *a, const ug_stage *b)
{
    char x[24] = "none", y[24] = "none";
    if (a->has_quota)
        snprintf(x, sizeof x, "%" PRIu64, a->quota);
    if (b->has_quota)
        snprintf(y, sizeof y, "%" PRIu64, b->quota);
    say(l, "%squota %s -> %s", sep, x, y);
}

/* One rollout in both files: "; stage canary percent 5 -> 10, quota ...". */
static void rollout_diff(line *l, const ug_rollout *a, const ug_rollout *b, int64_t now)
{
    size_t at = l->len;
    char x[16], y[16];
    say(l, "; rollout %s:", b->name);
    size_t head = l->len;
    if (strcmp(a->to, b->to) != 0)
        say(l, " release %s -> %s;", a->to, b->to);
    if (a->paused != b->paused)
        say(l, " paused %s -> %s;", a->paused ? "true" : "false", b->paused ? "true" : "false");
    for (size_t i = 0; i < a->nstages; i++)
        if (!stage_named(b, a->stages[i].name))
            say(l, " stage %s removed;", a->stages[i].name);
    for (size_t i = 0; i < b->nstages; i++) {
        const ug_stage *s = &b->stages[i], *o = stage_named(a, s->name);
        if (!o) {
            say(l, " stage %s added (percent %s);", s->name, pct(s, now, y, sizeof y));
            continue;
        }
        bool p = strcmp(pct(o, now, x, sizeof x), pct(s, now, y, sizeof y)) != 0;
        bool q = o->has_quota != s->has_quota || o->quota != s->quota;
        if (!p && !q)
            continue;
        say(l, " stage %s", s->name);
        if (p)
            say(l, " percent %s -> %s", x, y);
        if (q)
            quota(l, p ? ", " : " ", o, s);
        say(l, ";");
    }
    if (l->len == head && !l->cut) { /* nothing it shows changed */
        l->len = at;
        l->out[at] = 0;
    } else if (!l->cut && l->out[l->len - 1] == ';') {
        l->out[--l->len] = 0;
    }
}

void ug_policy_diff(const ug_policy *a, const ug_policy *b, int64_t now, char *out, size_t cap)
{
    line l = {.out = out, .cap = cap};
    out[0] = 0;
    for (size_t i = 0; i < a->nrollouts; i++)
        if (!rollout_named(b, a->rollouts[i].name))
            say(&l, "; rollout %s removed", a->rollouts[i].name);
    for (size_t i = 0; i < b->nrollouts; i++) {
        const ug_rollout *r = &b->rollouts[i], *o = rollout_named(a, r->name);
        if (!o)
            say(&l, "; rollout %s added (release %s, %zu stage%s)", r->name, r->to, r->nstages,
                r->nstages == 1 ? "" : "s");
        else
            rollout_diff(&l, o, r, now);
    }
    if (!l.len)
        snprintf(out, cap, "no change to rollouts, stages, percent, quota or release");
    else
        memmove(out, out + 2, strlen(out + 2) + 1); /* the first "; " */
}
