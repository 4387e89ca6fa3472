/* What a loaded policy says about a peer: which rollout owns it, whether a
 * stage's window, conditions and percentage hold, a shard's quota share. */
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

bool ug_name_valid(const char *s, size_t len)
{
    if (!s || len < 1 || len > UG_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

bool ug_rollout_targets(const ug_rollout *r, const ug_version *v)
{
    if (!r || !v)
        return false;
    for (size_t i = 0; i < r->ntargets; i++) {
        int c = ug_version_cmp(v, &r->targets[i].v);
        switch (r->targets[i].op) {
        case UG_TARGET_EQ:
            if (c == 0)
                return true;
            break;
        case UG_TARGET_LT:
            if (c < 0)
                return true;
            break;
        case UG_TARGET_LE:
            if (c <= 0)
                return true;
            break;
        }
    }
    return false;
}

/* A rollout's plat or chan list; NULL is any value, and an absent field
 * ("") matches only that. */
static bool listed(const char *v, const char *list, size_t n, size_t width)
{
    if (!list)
        return true;
    if (!v || !v[0])
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, list + i * width) == 0)
            return true;
    return false;
}

/* Which rollouts a route looks at: all (claims), those with a v1
 * manifest, or those whose v2 manifest is bound to the peer. */
typedef struct {
    int proto; /* 0, 1 or 2 */
    const char *app, *plat, *chan;
} route_filter;

static bool bound(const ug2_manifest *m, const route_filter *f)
{
    if (strcmp(m->app, f->app) != 0 || strcmp(m->chan, f->chan) != 0)
        return false;
    for (unsigned i = 0; i < m->nplat; i++)
        if (strcmp(m->plat[i], f->plat) == 0)
            return true;
    return false;
}

static const ug_rollout *route(const ug_policy *p, const ug_version *v, const char *plat, const char *chan,
                               const route_filter *f)
{
    if (!p || !v)
        return NULL;
    for (size_t i = 0; i < p->nrollouts; i++) {
        const ug_rollout *r = &p->rollouts[i];
        if ((f->proto == 1 && !r->manifest) || (f->proto == 2 && (!r->rel2 || !bound(r->rel2, f))))
            continue;
        if (ug_rollout_targets(r, v) && listed(plat, (const char *)r->plat, r->nplat, UG_PLAT_MAX + 1) &&
            listed(chan, (const char *)r->chan, r->nchan, UG_CHAN_MAX + 1))
            return r;
    }
    return NULL;
}

/* "[a, b]": a rollout's targets (list NULL) or its plat or chan list. */
static void list_text(const ug_rollout *r, const char *list, size_t n, size_t width, char *buf, size_t cap)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    size_t count = list ? n : r->ntargets;
    for (size_t i = 0; i < count && at < cap; i++) {
        char t[UG_VER_MAX + 8];
        const char *item = list ? list + i * width : t;
        if (!list && ug_target_format(&r->targets[i], t, sizeof t) != 0)
            snprintf(t, sizeof t, "?");
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", i ? ", " : "", item);
    }
    if (at < cap)
        snprintf(buf + at, cap - at, "]");
}

/* Which of a rollout's routing fields a value fails, as a phrase. */
static const char *miss_field(const ug_rollout *r, const char *what, const char *v, const char *list, size_t n,
                              size_t width, char *buf, size_t cap)
{
    char l[512];
    list_text(r, list, n, width, l, sizeof l);
    if (!v || !v[0])
        snprintf(buf, cap, "no %s given, and it targets the %ss %s", what, what, l);
    else
        snprintf(buf, cap, "%s %s is not in its %ss %s", what, v, what, l);
    return buf;
}

const char *ug_rollout_miss(const ug_rollout *r, const ug_version *v, const char *plat, const char *chan, char *buf,
                            size_t cap)
{
    char vt[UG_VER_MAX + 1] = "?", l[512];
    if (!r || !v)
        return NULL;
    if (!ug_rollout_targets(r, v)) {
        if (ug_version_format(v, vt, sizeof vt) != 0)
            snprintf(vt, sizeof vt, "?");
        list_text(r, NULL, 0, 0, l, sizeof l);
        if (ug_version_cmp(v, &r->rel.to) >= 0)
            snprintf(buf, cap, "version %s is at or past its release %s (targets %s)", vt, r->to, l);
        else
            snprintf(buf, cap, "version %s is not in its targets %s", vt, l);
        return buf;
    }
    if (!listed(plat, (const char *)r->plat, r->nplat, UG_PLAT_MAX + 1))
        return miss_field(r, "platform", plat, (const char *)r->plat, r->nplat, UG_PLAT_MAX + 1, buf, cap);
    if (!listed(chan, (const char *)r->chan, r->nchan, UG_CHAN_MAX + 1))
        return miss_field(r, "channel", chan, (const char *)r->chan, r->nchan, UG_CHAN_MAX + 1, buf, cap);
    return NULL;
}

const ug_rollout *ug_policy_route(const ug_policy *p, const ug_version *v, const char *plat, const char *chan)
{
    return route(p, v, plat, chan, &(route_filter){0, NULL, NULL, NULL});
}

const ug_rollout *ug_policy_route_v1(const ug_policy *p, const ug_version *v, const char *plat, const char *chan)
{
    return route(p, v, plat, chan, &(route_filter){1, NULL, NULL, NULL});
}

const ug_rollout *ug_policy_route_v2(const ug_policy *p, const ug_version *v, const char *app, const char *plat,
                                     const char *chan)
{
    if (!app || !plat || !chan)
        return NULL;
    return route(p, v, plat, chan, &(route_filter){2, app, plat, chan});
}

uint64_t ug_policy_share(const ug_policy *p, uint64_t quota)
{
    uint64_t count = p && p->shard_count ? p->shard_count : 1, index = p ? p->shard_index : 0;
    return quota / count + (index < quota % count ? 1u : 0u);
}

bool ug_stage_active(const ug_stage *s, int64_t now)
{
    return !(s->has_start && now < s->start) && !(s->has_end && now >= s->end);
}

bool ug_stage_matches(const ug_stage *s, const ug_peer *p)
{
    if (!s || !p)
        return false;
    for (size_t i = 0; i < s->nconds; i++) /* cheapest first: the table's order */
        if (!s->conds[i].kind->match(s->conds[i].arg, p))
            return false;
    return true;
}

/* from + (to - from) * (t - start) / (end - start), rounded down: t - start
 * may take all 64 bits, so the product is done in 128. */
static uint32_t linear_at(const ug_percent *pc, int64_t t)
{
    if (t < pc->start)
        return 0;
    if (t >= pc->end)
        return pc->to_bp;
    uint64_t done = (uint64_t)t - (uint64_t)pc->start, span = (uint64_t)pc->end - (uint64_t)pc->start;
    unsigned __int128 rise = (unsigned __int128)(pc->to_bp - pc->from_bp) * done / span;
    return pc->from_bp + (uint32_t)rise;
}

uint32_t ug_percent_at(const ug_percent *pc, int64_t t)
{
    switch (pc->kind) {
    case UG_PCT_CONST:
        return pc->bp;
    case UG_PCT_LINEAR:
        return linear_at(pc, t);
    case UG_PCT_STEPS: {
        long i = ug_percent_index(pc, t);
        return i >= 0 ? pc->steps[i].bp : 0;
    }
    }
    return 0;
}

long ug_percent_index(const ug_percent *pc, int64_t t)
{
    /* steps are in time order: steps[0..lo) have passed, steps[hi..) have not */
    size_t lo = 0, hi = pc->nsteps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pc->steps[mid].at <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long)lo - 1;
}
