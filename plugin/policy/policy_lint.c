/* Lint of a valid policy (upgate-node --check): what loads but is likely a
 * mistake. Each finding is one line "file:line: key: message". */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"
#include "policy/policy_values.h"
#include "policy/yaml_doc.h"

#define WEEK (7 * 86400)
/* Comparisons the overlap check of rollouts may spend: pairs of rollouts
 * times their targets grow fast, and a lint must not hang a --check. */
#define OVERLAP_BUDGET 20000000u

typedef struct {
    const ug_policy *p;
    void (*warn)(void *ctx, const char *msg);
    void *ctx;
    size_t spent; /* of OVERLAP_BUDGET; past it, no more overlap checks */
} linter;

__attribute__((format(printf, 4, 5))) static void say(const linter *l, size_t line, const char *key, const char *fmt,
                                                      ...)
{
    char msg[384], out[UG_PATH_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(out, sizeof out, "%s:%zu: %s: %s", l->p->path, line, key, msg);
    ug_yone_line(out); /* paths may hold any byte */
    l->warn(l->ctx, out);
}

/* The key of rollout i's member `what` (version 1: the top level's). */
static void rkey(const linter *l, size_t i, const char *what, char *out, size_t cap)
{
    if (l->p->version == 1)
        snprintf(out, cap, "%s", what);
    else
        snprintf(out, cap, "rollouts[%zu]%s%s", i, what[0] ? "." : "", what);
}

/* Does target a include every version target b includes? (Conservative:
 * false when only a union of several targets would cover b.) */
static bool covers(const ug_target *a, const ug_target *b)
{
    int c = ug_version_cmp(&b->v, &a->v);
    switch (a->op) {
    case UG_TARGET_EQ:
        return b->op == UG_TARGET_EQ && c == 0;
    case UG_TARGET_LT:
        return b->op == UG_TARGET_LE || b->op == UG_TARGET_EQ ? c < 0 : c <= 0;
    case UG_TARGET_LE:
        return c <= 0;
    }
    return false;
}

static bool names_cover(const char *a, size_t na, const char *b, size_t nb, size_t width)
{
    if (!a)
        return true; /* any value */
    if (!b)
        return false;
    for (size_t i = 0; i < nb; i++) {
        bool found = false;
        for (size_t j = 0; j < na && !found; j++)
            found = strcmp(b + i * width, a + j * width) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Every peer b would own is owned by a first. */
static bool rollout_covers(const ug_rollout *a, const ug_rollout *b)
{
    for (size_t i = 0; i < b->ntargets; i++) {
        bool found = false;
        for (size_t j = 0; j < a->ntargets && !found; j++)
            found = covers(&a->targets[j], &b->targets[i]);
        if (!found)
            return false;
    }
    return names_cover((const char *)a->plat, a->nplat, (const char *)b->plat, b->nplat, UG_PLAT_MAX + 1) &&
           names_cover((const char *)a->chan, a->nchan, (const char *)b->chan, b->nchan, UG_CHAN_MAX + 1);
}

static void lint_targets(const linter *l, size_t i)
{
    const ug_rollout *r = &l->p->rollouts[i];
    for (size_t t = 0; t < r->ntargets; t++) {
        const ug_target *g = &r->targets[t];
        int c = ug_version_cmp(&g->v, &r->rel.to);
        if (!(g->op == UG_TARGET_LT ? c > 0 : c >= 0))
            continue;
        char key[96], what[32], text[UG_VER_MAX + 8];
        snprintf(what, sizeof what, "targets[%zu]", t);
        rkey(l, i, what, key, sizeof key);
        if (ug_target_format(g, text, sizeof text) != 0)
            text[0] = '\0';
        say(l, r->line, key, "\"%s\" includes the release's own version %s or a newer one: those peers would be offered what they have",
            text, r->to);
    }
}

/* A stage that selects every HELLO, always, hides the stages after it. */
static bool selects_all(const ug_stage *s)
{
    return s->nconds == 0 && !s->has_quota && !s->has_rate && !s->has_fleet_rate && !s->has_percent &&
           !s->has_start && !s->has_end;
}

/* A soak that cannot do what it says: on the last step, nothing follows. */
static void lint_gates(const linter *l, const ug_stage *s, const char *key)
{
    const ug_percent *pc = &s->percent;
    if (!s->has_percent || !pc->gated)
        return;
    if (pc->steps[pc->nsteps - 1].hold_after)
        say(l, s->line, key, "hold_after on the last step of its percent schedule has no effect: no step follows");
}

static void lint_stages(const linter *l, size_t i)
{
    const ug_rollout *r = &l->p->rollouts[i];
    char key[96], what[48];
    if (r->nstages == 0) {
        rkey(l, i, "stages", key, sizeof key);
        say(l, r->line, key, "no stages: the rollout offers nothing");
    }
    const ug_stage *all = NULL;
    for (size_t j = 0; j < r->nstages; j++) {
        const ug_stage *s = &r->stages[j];
        snprintf(what, sizeof what, "stages[%zu]", j);
        rkey(l, i, what, key, sizeof key);
        if (all)
            say(l, s->line, key, "unreachable: stage %s (line %zu) before it selects every HELLO", all->name, all->line);
        else if (selects_all(s))
            all = s;
        if (s->has_fleet_rate && !l->p->fleet.enabled)
            say(l, s->line, key,
                "fleet_rate without a fleet section: this tracker alone is the fleet, so it caps its offers as rate "
                "would");
        lint_gates(l, s, key);
    }
}

/* Below this, a handful of accounts decide an automatic halt (issue 21 §2). */
#define HALT_MIN_OUTCOMES_SAFE 100

static void lint_rollout(linter *l, size_t i, int64_t now)
{
    const ug_policy *p = l->p;
    const ug_rollout *r = &p->rollouts[i];
    char key[96];
    lint_targets(l, i);
    for (size_t a = 0; a < i && l->spent <= OVERLAP_BUDGET; a++) {
        const ug_rollout *o = &p->rollouts[a];
        l->spent += r->ntargets * o->ntargets + r->nplat * o->nplat + r->nchan * o->nchan;
        if (l->spent > OVERLAP_BUDGET) {
            rkey(l, i, "", key, sizeof key);
            say(l, r->line, key, "too many rollouts and targets: overlaps from here on are not checked");
            break;
        }
        if (rollout_covers(o, r)) {
            rkey(l, i, "", key, sizeof key);
            say(l, r->line, key, "unreachable: every peer it targets is owned first by rollouts[%zu] (%s)", a,
                p->rollouts[a].name);
            break;
        }
    }
    rkey(l, i, r->manifest ? "release" : "release_v2", key, sizeof key);
    int64_t exp = r->rel.exp > INT64_MAX ? INT64_MAX : (int64_t)r->rel.exp;
    uint64_t left = exp > now ? (uint64_t)exp - (uint64_t)now : 0;
    if (left == 0)
        say(l, r->line, key, "manifest %s has expired: every peer this rollout owns is told to wait", r->release_path);
    else if (left < WEEK)
        say(l, r->line, key, "manifest %s expires in %" PRIu64 " hours: sign a fresh one", r->release_path, left / 3600);
    if (r->rel2 && r->manifest && r->rel2->exp < r->rel.exp) { /* the v2 manifest runs out first */
        rkey(l, i, "release_v2", key, sizeof key);
        uint64_t left2 = r->rel2->exp > (uint64_t)now ? r->rel2->exp - (uint64_t)now : 0;
        if (left2 == 0)
            say(l, r->line, key, "manifest %s has expired: every version 2 peer this rollout owns is told to wait",
                r->release2_path);
        else if (left2 < WEEK)
            say(l, r->line, key, "manifest %s expires in %" PRIu64 " hours: sign a fresh one", r->release2_path,
                left2 / 3600);
    }
    if (r->halt_min_outcomes && r->halt_min_outcomes < HALT_MIN_OUTCOMES_SAFE) {
        rkey(l, i, "halt_when.min_outcomes", key, sizeof key);
        say(l, r->line, key,
            "%" PRIu64 " is below %d: that few accounts' REPORTs can halt or hold this rollout (docs/design.md)",
            r->halt_min_outcomes, HALT_MIN_OUTCOMES_SAFE);
    }
    if (r->hold_when_unhealthy && !r->halt_failed_ppm) {
        rkey(l, i, "hold_when_unhealthy", key, sizeof key);
        say(l, r->line, key, "has no effect without halt_when.failed, the share it holds at");
    }
    lint_stages(l, i);
}

#define V2_NOTICE (14 * 86400)

/* The longest token WAIT this policy sends: ts and exp as uint64. */
static size_t token_wait_max(const ug_policy_v2 *k)
{
    ug2_token t = {.ts = UINT64_MAX, .exp = UINT64_MAX, .kv = k->keys.kr.kv, .nseqs = k->nseqs};
    uint8_t body[UG_OBJ_MAX];
    size_t len;
    snprintf(t.trk, sizeof t.trk, "%s", k->tracker);
    memcpy(t.seqs, k->seqs, sizeof t.seqs);
    if (ug2_token_encode_body(body, sizeof body, &len, &t) != 0)
        return SIZE_MAX;
    size_t tok = 1 + (len < 256 ? 2 : 3) + len + 2 + UG_SIG_LEN; /* [bin body, bin 64] */
    return ug2_wait_max_len(tok, k->cert_len);
}

/* Protocol version 2: the certificate and keyring expiring within two
 * weeks, a token WAIT only long HELLOs can carry, channels no token lists. */
static void lint_v2(const linter *l, int64_t now)
{
    const ug_policy_v2 *k = l->p->v2;
    const char *key[2] = {"keys.hint_cert", "keys.keyring"}, *path[2] = {k->cert_path, k->keyring_path};
    const char *what[2] = {"certificate", "keyring"};
    uint64_t exp[2] = {k->keys.cert.exp, k->keys.kr.exp};
    for (int i = 0; i < 2; i++) {
        uint64_t left = exp[i] > (uint64_t)now ? exp[i] - (uint64_t)now : 0;
        if (left == 0)
            say(l, k->line, key[i], "%s %s has expired: version 2 peers get no HINT and no token", what[i], path[i]);
        else if (left < V2_NOTICE)
            say(l, k->line, key[i], "%s %s expires in %" PRIu64 " hours: renew it (docs/keys.md)", what[i], path[i],
                left / 3600);
    }
    size_t wait = token_wait_max(k);
    if (wait > UG_HELLO_MIN)
        say(l, k->line, "keys.hint_cert",
            "a WAIT with a token takes up to %zu bytes: only HELLOs that long get tokens (fewer channels or "
            "certificate signatures make it fit 512)", wait);
    if (k->seqs_left_out)
        say(l, k->line, "keys.keyring", "%zu (app, chan) pairs of the rollouts beyond the 8 a token lists: tokens "
            "say nothing of them", k->seqs_left_out);
}

void ug_policy_lint(const ug_policy *p, int64_t now, void (*warn)(void *ctx, const char *msg), void *ctx)
{
    if (!p || !warn)
        return;
    linter l = {p, warn, ctx, 0};
    if (p->v2)
        lint_v2(&l, now);
    for (size_t i = 0; i < p->nrollouts; i++)
        lint_rollout(&l, i, now);
}
