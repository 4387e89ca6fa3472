/* Health over a window (docs/policy-v2-extensions.md "Gates and windowed health"): one pass over a release's grants,
 * each uid's latest outcome once; and a gate's baseline, the previous release's failed share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/health.h"

bool ug_outcome_failed(ug_outcome o)
{
    return o == UG_OUT_ROLLED_BACK || o == UG_OUT_DOWNLOAD_FAILED || o == UG_OUT_MISMATCH || o == UG_OUT_INSTALL_FAILED;
}

#define NOT_TAKEN 7u /* beside the outcomes (0..6) in a heap item's low bits */

typedef struct {
    const ug_health_query *q;
    ug_health_counts c;
    uint64_t *heap; /* `last`: a min-heap of (time << 3 | outcome), the newest q->last */
    size_t n;
} hcount;

static void add(ug_health_counts *c, unsigned o)
{
    c->known++;
    c->failed += o != NOT_TAKEN && ug_outcome_failed((ug_outcome)o);
    c->upgraded += o == UG_OUT_UPGRADED;
    c->rolled_back += o == UG_OUT_ROLLED_BACK;
}

static void sift_down(uint64_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && h[l] < h[m])
            m = l;
        if (l + 1 < n && h[l + 1] < h[m])
            m = l + 1;
        if (m == i)
            return;
        uint64_t t = h[i];
        h[i] = h[m], h[m] = t, i = m;
    }
}

static void keep_newest(hcount *hc, uint64_t item)
{
    uint64_t *h = hc->heap;
    if (hc->n < hc->q->last) {
        size_t i = hc->n++;
        h[i] = item;
        while (i && h[(i - 1) / 2] > h[i]) {
            uint64_t t = h[i];
            h[i] = h[(i - 1) / 2], h[(i - 1) / 2] = t, i = (i - 1) / 2;
        }
    } else if (item > h[0]) {
        h[0] = item;
        sift_down(h, hc->n, 0);
    }
}

static void one(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    (void)uid;
    hcount *hc = ctx;
    const ug_health_query *q = hc->q;
    uint64_t t;
    unsigned o;
    if (gi->outcome != UG_OUT_PENDING)
        t = gi->outcome_at, o = gi->outcome;
    else if ((uint64_t)gi->at + q->outcome_window <= q->now)
        t = (uint64_t)gi->at + q->outcome_window, o = NOT_TAKEN;
    else
        return;
    if (t < q->from)
        return;
    if (hc->heap)
        keep_newest(hc, t << 3 | o);
    else
        add(&hc->c, o);
}

int ug_health_count(ug_scope *sc, const ug_health_query *q, ug_health_counts *c)
{
    hcount hc = {.q = q};
    if (q->last && !(hc.heap = malloc(q->last * sizeof *hc.heap)))
        return -1;
    ug_scope_foreach(sc, one, &hc);
    for (size_t i = 0; hc.heap && i < hc.n; i++)
        add(&hc.c, (unsigned)(hc.heap[i] & 7));
    free(hc.heap);
    *c = hc.c;
    return 0;
}

int ug_health_judged(const ug_live_rollout *lr, const ug_health_window *hw, uint64_t from, uint64_t now,
                     ug_health_counts *c)
{
    uint64_t w = hw->window && now > hw->window ? now - hw->window : 0;
    ug_health_query q = {.from = from > w ? from : w, .last = hw->last, .now = now,
                         .outcome_window = lr->r->outcome_window};
    *c = (ug_health_counts){0};
    return lr->sc ? ug_health_count(lr->sc, &q, c) : 0;
}

typedef struct {
    ug_version cur, best;
    char to[UG_VER_MAX + 1];
    uint32_t id;
} prev_find;

static void consider(void *ctx, const char *to, uint32_t id)
{
    prev_find *p = ctx;
    ug_version v;
    if (ug_version_parse(&v, to, strlen(to)) != 0 || ug_version_cmp(&v, &p->cur) >= 0 ||
        (p->id && ug_version_cmp(&v, &p->best) <= 0))
        return;
    p->best = v, p->id = id;
    snprintf(p->to, sizeof p->to, "%s", to);
}

bool ug_health_baseline(ug_inst *I, const ug_live_rollout *lr, uint64_t *failed, uint64_t *known, const char **to)
{
    ug_rollout_state *rt = lr->rt;
    if (strcmp(rt->base_for, lr->r->to) != 0 && I->store) { /* tick alone reads and writes these */
        prev_find p = {.cur = lr->r->rel.to};
        uint64_t c[UG_OUT_COUNT_] = {0};
        rt->base_to[0] = 0;
        if (ug_store_past(I->store, lr->r->name, consider, &p) == 0 && p.id &&
            ug_store_past_outcomes(I->store, p.id, c) == 0) {
            snprintf(rt->base_to, sizeof rt->base_to, "%s", p.to);
            rt->base_known = rt->base_failed = 0;
            for (unsigned o = 1; o < UG_OUT_COUNT_; o++)
                rt->base_known += c[o], rt->base_failed += ug_outcome_failed((ug_outcome)o) ? c[o] : 0;
        }
        snprintf(rt->base_for, sizeof rt->base_for, "%s", lr->r->to);
    }
    *failed = rt->base_failed, *known = rt->base_known, *to = rt->base_to;
    return rt->base_to[0] && rt->base_known > 0;
}
