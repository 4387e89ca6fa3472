/* Policy loader (spec/policy.md, versions 1 and 2): the YAML tree in, one
 * validated read-only ug_policy out. Sections here; YAML access in
 * yaml_*.c, value parsers in policy_values.c, stage conditions in conds.c.
 *
 * Extensions to spec/policy.md (all optional):
 *   paused: bool                 version 1 only, default false: every
 *                                targeted peer gets WAIT why=4 (in version 2
 *                                each rollout has its own `paused`)
 *   cookie_threshold: uint       default 1000; cookie: auto turns cookies on above
 *                                this many signature checks per second
 *   source_budget: uint          default 1000; signature checks per second one
 *                                source network (IPv4 /24, IPv6 /56) may cost this
 *                                tracker; 0 for no limit
 *   stages[].salt: str           1..64 bytes: the percent bucket salt
 *   census: bool                 default true: count every HELLO in the version
 *                                census (docs/policy-v2-extensions.md)
 *   tz, windows (rollouts and stages): off-peak windows, policy_windows.c
 *   percent[].gate, percent[].hold_after, halt_when.window, halt_when.last:
 *                                promotion gates and windowed health, policy_gates.c
 *   keys.keyring, keys.hint_cert, keys.tracker, token_ttl, release_v2 (per rollout, or
 *                                top level in version 1 files): protocol version 2, in
 *                                policy_v2.c and docs/policy-v2-extensions.md; a rollout
 *                                needs release, release_v2 or both (one release)
 *   fleet: {redis, tracker, password_file, user, lease, lease_timeout}  (docs/fleet.md):
 *                                redis and tracker ([A-Za-z0-9._-]{1,64}) required;
 *                                the address is checked for syntax only and may
 *                                hold no credentials; password_file must be a
 *                                readable regular file of one non-empty line;
 *                                user (a Redis ACL user, [A-Za-z0-9._-]{1,64})
 *                                needs password_file
 * Rules the spec leaves open, decided here:
 *   - Integers, percent, fractions, rates and booleans must be unquoted;
 *     strings (names, paths, versions, CIDRs, regions, times) may be quoted
 *     or not. Integers are plain decimal: no sign, no leading zero, no "_".
 *   - Lists (issuers, targets, networks, regions, uids, plat, chan, percent
 *     steps) must not be empty; `stages` must be present but may be empty
 *     (then nobody is selected).
 *   - `shard` needs index and count; `uid_mod` div and rem; a linear percent
 *     from, to, start and end; a step at and percent; halt_when min_outcomes
 *     and failed or rolled_back (each above 0, at most 1).
 *   - Version 2 additions (geoip, verify, fleet, regions, fleet_rate, percent
 *     schedules) are accepted in version 1 files too; `rollouts` beside any
 *     of release, targets, stages or paused is refused, naming that key.
 *   - uids_file: one decimal uid a line; blank lines and lines starting with
 *     '#' are skipped, spaces/tabs/CR around a uid ignored.
 *   - Every file named is opened without blocking and must be a regular file.
 * Every error is one line "PATH:LINE: KEY: message": KEY is a dotted path
 * (rollouts[1].stages[0].percent[2].at); an unreadable policy file is
 * "PATH:0: (file): ...", a YAML syntax error "PATH:LINE: (yaml): ...", a bad
 * root "PATH:LINE: (top): ...", and a bad uids_file line names that file and
 * its own line. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "policy/conds.h"
#include "policy/ugpolicy.h"
#include "policy/policy.h"
#include "policy/policy_gates.h"
#include "policy/policy_v2.h"
#include "policy/policy_values.h"
#include "policy/policy_windows.h"
#include "policy/yaml_doc.h"

#define ISSUERS_MAX 64u
#define TARGETS_MAX 256u
#define NAMES_MAX 256u        /* a rollout's plat or chan list */
#define STEPS_MAX 1000u       /* a percent schedule */
#define ROLLOUTS_MAX 1000u
#define STAGES_MAX 100000u    /* in all rollouts together */
#define PASSWORD_MAX 1024u

typedef struct {
    ug_ylog y;
    uint64_t now;          /* version 2 keys and manifests are judged at this time */
    char dir[UG_PATH_MAX]; /* where relative paths resolve */
    ug_ydoc *doc;
    ug_policy *p;
    size_t work;    /* list items walked so far: see charge() */
    size_t nstages; /* in all rollouts so far */
} ldr;

#define FAIL(L, node, key, ...) UG_YFAIL(&(L)->y, (node), (key), __VA_ARGS__)

/* Counts the items of a list the loader is about to walk. An alias shares
 * a node, so a list can be walked once per alias (stages: *s in a thousand
 * rollouts); without aliases every item is a node walked once, so a budget
 * of the node cap refuses only what aliases blew up, and bounds the work
 * any document under the size cap can cost. */
static int charge(ldr *L, const ug_ynode *v, const char *key, size_t items)
{
    L->work += items;
    if (L->work > UG_YAML_NODES_MAX)
        return FAIL(L, v, key, "aliases make the loader walk more than %u items: share less, or use a uids_file",
                    UG_YAML_NODES_MAX);
    return 0;
}

static size_t items_of(const ug_ynode *v)
{
    return !v ? 0 : v->kind != UG_Y_SCALAR ? v->n : 1;
}

/* base.name */
static const char *sub(char out[UG_YAML_KEY_MAX], const char *base, const char *name)
{
    ug_ykey(out, UG_YAML_KEY_MAX, base, name, strlen(name), 0);
    return out;
}

/* base[i] */
static const char *idx(char out[UG_YAML_KEY_MAX], const char *base, size_t i)
{
    ug_ykey(out, UG_YAML_KEY_MAX, base, NULL, 0, i);
    return out;
}

static ug_v2ld v2ld(const ldr *L)
{
    return (ug_v2ld){&L->y, L->dir, L->now};
}

static int get_path(ldr *L, const ug_ynode *v, const char *key, char out[UG_PATH_MAX])
{
    return ug_yget_path(&L->y, v, key, L->dir, out, UG_PATH_MAX);
}

static int get_time(ldr *L, const ug_ynode *v, const char *key, int64_t *out)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_str(&L->y, v, key, 1, 64, &s, &n) != 0)
        return -1;
    if (ug_parse_time(s, n, out) != 0)
        return FAIL(L, v, key, "\"%s\" is not an RFC 3339 time like 2026-12-01T00:00:00Z", ug_yshow(buf, sizeof buf, s, n));
    return 0;
}

static int get_percent(ldr *L, const ug_ynode *v, const char *key, uint32_t *bp)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_plain(&L->y, v, key, "number 0..100 with at most two decimals", &s, &n) != 0)
        return -1;
    if (ug_parse_percent(s, n, bp) != 0)
        return FAIL(L, v, key, "expected a number 0..100 with at most two decimals, got \"%s\"",
                    ug_yshow(buf, sizeof buf, s, n));
    return 0;
}

static int get_rate(ldr *L, const ug_ynode *v, const char *key, double *out)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_plain(&L->y, v, key, "positive number", &s, &n) != 0)
        return -1;
    if (ug_parse_rate(s, n, out) != 0)
        return FAIL(L, v, key, "expected a positive number (offers per second), got \"%s\"",
                    ug_yshow(buf, sizeof buf, s, n));
    return 0;
}

/* A name [a-z0-9-]{1,32} into out. */
static int get_name(ldr *L, const ug_ynode *v, const char *key, const char *what, char out[UG_NAME_MAX + 1])
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_str(&L->y, v, key, 1, UG_NAME_MAX, &s, &n) != 0)
        return -1;
    if (!ug_name_valid(s, n))
        return FAIL(L, v, key, "\"%s\" is not a %s name ([a-z0-9-]{1,32})", ug_yshow(buf, sizeof buf, s, n), what);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* ---- unique names ------------------------------------------------------- */

/* The names of one list (a rollout's stages, the rollouts) as an
 * open-addressing table of item indices: a duplicate is found at once, not
 * by comparing with every name before it (100,000 stages). */
typedef struct {
    uint32_t *slot; /* index + 1; 0 is empty */
    size_t mask;
    const char *base; /* item i's name is at base + i * stride */
    size_t stride;
} names;

static int names_init(names *t, size_t n, const char *base, size_t stride)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    t->slot = calloc(cap, sizeof *t->slot);
    t->mask = cap - 1;
    t->base = base;
    t->stride = stride;
    return t->slot ? 0 : -1;
}

/* Records item i's name; the index of an earlier item of that name, or -1. */
static ptrdiff_t names_put(names *t, size_t i)
{
    const char *name = t->base + i * t->stride;
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * UINT64_C(1099511628211);
    for (size_t k = (size_t)h & t->mask;; k = (k + 1) & t->mask) {
        if (!t->slot[k]) {
            t->slot[k] = (uint32_t)i + 1;
            return -1;
        }
        if (strcmp(t->base + (t->slot[k] - 1) * t->stride, name) == 0)
            return (ptrdiff_t)t->slot[k] - 1;
    }
}

/* ---- percent -------------------------------------------------------------- */

static int percent_steps(ldr *L, const ug_ynode *v, const char *key, ug_percent *pc)
{
    ug_ynode *const *it;
    size_t n;
    if (ug_yget_list(&L->y, v, key, STEPS_MAX, &it, &n) != 0 || charge(L, v, key, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (it[i]->kind != UG_Y_MAP)
            return FAIL(L, v, key, "expected a number, a list of steps {at: TIME, percent: P} or {from, to, start, end}; step %zu is %s",
                        i, ug_ykind_name(it[i]));
    if (!(pc->steps = calloc(n, sizeof *pc->steps)))
        return FAIL(L, v, key, "out of memory");
    pc->kind = UG_PCT_STEPS;
    for (size_t i = 0; i < n; i++) {
        char kp[UG_YAML_KEY_MAX], ka[UG_YAML_KEY_MAX], kb[UG_YAML_KEY_MAX], kc[UG_YAML_KEY_MAX];
        ug_yfield f[4] = {{"at", true, NULL, NULL}, {"percent", true, NULL, NULL}, {"gate", false, NULL, NULL},
                          {"hold_after", false, NULL, NULL}};
        ug_pct_step *st = &pc->steps[i];
        idx(kp, key, i);
        pc->nsteps = i + 1; /* freed with its gate from here on */
        if (ug_ycollect(&L->y, it[i], kp, f, 4) != 0 || get_time(L, f[0].val, sub(ka, kp, "at"), &st->at) != 0 ||
            get_percent(L, f[1].val, sub(kb, kp, "percent"), &st->bp) != 0 ||
            (f[2].key && ug_policy_gate(&L->y, f[2].val, sub(kc, kp, "gate"), &st->gate) != 0) ||
            (f[3].key && ug_policy_duration(&L->y, f[3].val, sub(kc, kp, "hold_after"), &st->hold_after) != 0))
            return -1;
        pc->gated |= st->gate || st->hold_after;
        if (i && st->at <= st[-1].at)
            return FAIL(L, f[0].val, ka, "steps must be in time order: this one is not after step %zu", i - 1);
        if (i && st->bp < st[-1].bp)
            return FAIL(L, f[1].val, kb, "a schedule never decreases: %u.%02u is below step %zu's %u.%02u",
                        st->bp / 100, st->bp % 100, i - 1, st[-1].bp / 100, st[-1].bp % 100);
    }
    return 0;
}

static int percent_linear(ldr *L, const ug_ynode *v, const char *key, ug_percent *pc)
{
    ug_yfield f[4] = {{"from", true, NULL, NULL}, {"to", true, NULL, NULL}, {"start", true, NULL, NULL},
                      {"end", true, NULL, NULL}};
    char k[4][UG_YAML_KEY_MAX];
    if (ug_ycollect(&L->y, v, key, f, 4) != 0 || get_percent(L, f[0].val, sub(k[0], key, "from"), &pc->from_bp) != 0 ||
        get_percent(L, f[1].val, sub(k[1], key, "to"), &pc->to_bp) != 0 ||
        get_time(L, f[2].val, sub(k[2], key, "start"), &pc->start) != 0 ||
        get_time(L, f[3].val, sub(k[3], key, "end"), &pc->end) != 0)
        return -1;
    if (pc->end <= pc->start)
        return FAIL(L, f[3].val, k[3], "end must be after start");
    if (pc->to_bp < pc->from_bp)
        return FAIL(L, f[1].val, k[1], "a ramp never decreases: to must be at least from");
    pc->kind = UG_PCT_LINEAR;
    return 0;
}

/* A number, a list of steps or {from, to, start, end} (policy.md). */
static int load_percent(ldr *L, const ug_ynode *v, const char *key, ug_percent *pc)
{
    memset(pc, 0, sizeof *pc);
    if (v && v->kind == UG_Y_SEQ)
        return percent_steps(L, v, key, pc);
    if (v && v->kind == UG_Y_MAP)
        return percent_linear(L, v, key, pc);
    pc->kind = UG_PCT_CONST;
    return get_percent(L, v, key, &pc->bp);
}

/* ---- stages ---------------------------------------------------------------- */

enum { S_NAME, S_SALT, S_START, S_END, S_PERCENT, S_QUOTA, S_RATE, S_FLEET_RATE, S_TZ, S_WINDOWS, S_FIXED };
#define STAGE_FIELDS_MAX (S_FIXED + 2 * UG_COND_ROWS_MAX)

/* The stage's conditions, in table order (cheapest first). An arg built
 * from an aliased node is built once and shared (memo on the node). */
static int load_conds(ldr *L, ug_stage *st, const ug_yfield *f, size_t nf, const char *sp)
{
    const ug_ylog *y = &L->y;
    ug_cload c = {.y = y, .dir = L->dir, .p = L->p};
    size_t named = 0, fi = S_FIXED;
    for (size_t k = S_FIXED; k < nf; k++)
        named += f[k].key != NULL; /* uids and uids_file make one: room to spare */
    if (named && !(st->conds = calloc(named, sizeof *st->conds)))
        return FAIL(L, f[S_NAME].val, sp, "out of memory");
    for (size_t r = 0; r < ug_cond_nrows; r++) {
        const ug_cond_row *row = &ug_cond_rows[r];
        const ug_ynode *v[2] = {f[fi].val, row->also ? f[fi + 1].val : NULL};
        char k0[UG_YAML_KEY_MAX], k1[UG_YAML_KEY_MAX];
        const char *key[2] = {sub(k0, sp, row->kind.key), row->also ? sub(k1, sp, row->also) : NULL};
        fi += row->also ? 2 : 1;
        if (!v[0] && !v[1])
            continue;
        ug_cond *cd = &st->conds[st->nconds];
        const ug_ynode *one = v[0] && v[1] ? NULL : (v[0] ? v[0] : v[1]);
        const void *tag = v[0] ? (const void *)&row->kind : (const void *)&row->also;
        cd->kind = &row->kind;
        if (one && (cd->arg = ug_ydoc_memo_get(L->doc, one, tag))) {
            cd->owns = false;
        } else {
            if (charge(L, v[0] ? v[0] : v[1], key[v[0] ? 0 : 1], items_of(v[0]) + items_of(v[1])) != 0 ||
                row->load(&c, v, key, &cd->arg) != 0)
                return -1;
            cd->owns = true;
            if (one)
                ug_ydoc_memo_set(L->doc, one, tag, cd->arg);
        }
        st->nconds++;
        st->cond_flags |= row->kind.flags;
    }
    return 0;
}

static int load_limits(ldr *L, ug_stage *st, const ug_yfield *f, const char *sp)
{
    char kp[UG_YAML_KEY_MAX];
    if ((f[S_START].key && get_time(L, f[S_START].val, sub(kp, sp, "start"), &st->start) != 0) ||
        (f[S_END].key && get_time(L, f[S_END].val, sub(kp, sp, "end"), &st->end) != 0))
        return -1;
    st->has_start = f[S_START].key != NULL;
    st->has_end = f[S_END].key != NULL;
    if (st->has_start && st->has_end && st->end <= st->start)
        return FAIL(L, f[S_END].val, sub(kp, sp, "end"), "end must be after start");
    if (f[S_PERCENT].key) {
        if (load_percent(L, f[S_PERCENT].val, sub(kp, sp, "percent"), &st->percent) != 0)
            return -1;
        st->has_percent = true;
    }
    if (f[S_QUOTA].key) {
        if (ug_yget_uint(&L->y, f[S_QUOTA].val, sub(kp, sp, "quota"), 0, UINT64_MAX, &st->quota) != 0)
            return -1;
        st->has_quota = true;
    }
    if (f[S_RATE].key) {
        if (get_rate(L, f[S_RATE].val, sub(kp, sp, "rate"), &st->rate) != 0)
            return -1;
        st->has_rate = true;
    }
    if (f[S_FLEET_RATE].key) {
        if (get_rate(L, f[S_FLEET_RATE].val, sub(kp, sp, "fleet_rate"), &st->fleet_rate) != 0)
            return -1;
        st->has_fleet_rate = true;
    }
    return 0;
}

/* The salt: the stage's own, else the rollout's (version 2) or the stage's
 * name (version 1). */
static int load_salt(ldr *L, const ug_rollout *r, ug_stage *st, const ug_yfield *f, const char *sp)
{
    const char *s = L->p->version == 1 ? st->name : r->salt;
    size_t n = L->p->version == 1 ? strlen(st->name) : r->salt_len;
    char kp[UG_YAML_KEY_MAX];
    if (f[S_SALT].key && ug_yget_str(&L->y, f[S_SALT].val, sub(kp, sp, "salt"), 1, UG_SALT_MAX, &s, &n) != 0)
        return -1;
    memcpy(st->salt, s, n);
    st->salt[n] = '\0';
    st->salt_len = n;
    return 0;
}

/* The stage's `tz` (its windows' default, over the rollout's) and `windows`. */
static int load_stage_windows(ldr *L, const ug_rollout *r, ug_stage *st, const ug_yfield *f, const char *sp)
{
    char kp[UG_YAML_KEY_MAX];
    if (f[S_TZ].key && ug_policy_tz(&L->y, f[S_TZ].val, sub(kp, sp, "tz"), st->tz) != 0)
        return -1;
    if (!f[S_WINDOWS].key)
        return 0;
    return ug_policy_windows(&L->y, f[S_WINDOWS].val, sub(kp, sp, "windows"), st->tz[0] ? st->tz : r->tz, L->now,
                             &st->win);
}

static int load_stage(ldr *L, ug_rollout *r, names *seen, size_t i, const ug_ynode *node, const char *sp)
{
    ug_stage *st = &r->stages[i];
    ug_yfield f[STAGE_FIELDS_MAX] = {
        [S_NAME] = {"name", true, NULL, NULL},         [S_SALT] = {"salt", false, NULL, NULL},
        [S_START] = {"start", false, NULL, NULL},       [S_END] = {"end", false, NULL, NULL},
        [S_PERCENT] = {"percent", false, NULL, NULL},   [S_QUOTA] = {"quota", false, NULL, NULL},
        [S_RATE] = {"rate", false, NULL, NULL},         [S_FLEET_RATE] = {"fleet_rate", false, NULL, NULL},
        [S_TZ] = {"tz", false, NULL, NULL},             [S_WINDOWS] = {"windows", false, NULL, NULL},
    };
    size_t nf = S_FIXED;
    for (size_t k = 0; k < ug_cond_nrows; k++) {
        f[nf++] = (ug_yfield){ug_cond_rows[k].kind.key, false, NULL, NULL};
        if (ug_cond_rows[k].also)
            f[nf++] = (ug_yfield){ug_cond_rows[k].also, false, NULL, NULL};
    }
    char kp[UG_YAML_KEY_MAX];
    st->line = ug_yline(node);
    if (ug_ycollect(&L->y, node, sp, f, nf) != 0 || get_name(L, f[S_NAME].val, sub(kp, sp, "name"), "stage", st->name) != 0)
        return -1;
    ptrdiff_t j = names_put(seen, i);
    if (j >= 0)
        return FAIL(L, f[S_NAME].val, kp, "duplicate stage name \"%s\" (also stage %td, line %zu)", st->name, j,
                    r->stages[j].line);
    if (load_salt(L, r, st, f, sp) != 0 || load_conds(L, st, f, nf, sp) != 0 || load_limits(L, st, f, sp) != 0)
        return -1;
    return load_stage_windows(L, r, st, f, sp);
}

/* base is "" (version 1: stages[i]) or "rollouts[k]". */
static int load_stages(ldr *L, ug_rollout *r, const ug_ynode *v, const char *key)
{
    if (!v || v->kind != UG_Y_SEQ)
        return FAIL(L, v, key, "expected a list, got %s", ug_ykind_name(v));
    if (charge(L, v, key, v->n) != 0)
        return -1;
    if ((L->nstages += v->n) > STAGES_MAX)
        return FAIL(L, v, key, "more than %u stages in all", STAGES_MAX);
    names seen;
    if (!(r->stages = calloc(v->n ? v->n : 1, sizeof *r->stages)) ||
        names_init(&seen, v->n, r->stages[0].name, sizeof *r->stages) != 0)
        return FAIL(L, v, key, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < v->n; i++) {
        char sp[UG_YAML_KEY_MAX];
        r->nstages = i + 1; /* so ug_policy_free releases a half-built stage */
        rc = load_stage(L, r, &seen, i, v->u.items[i], idx(sp, key, i));
    }
    free(seen.slot);
    return rc;
}

/* ---- rollouts ------------------------------------------------------------------ */

static int load_release(ldr *L, ug_rollout *r, const ug_ynode *v, const char *key)
{
    char why[256];
    if (get_path(L, v, key, r->release_path) != 0)
        return -1;
    const char *path = r->release_path;
    if (!(r->manifest = malloc(UG_OBJ_MAX)))
        return FAIL(L, v, key, "out of memory");
    why[0] = '\0';
    if (ug_file_read(path, r->manifest, UG_OBJ_MAX, &r->manifest_len, why, sizeof why) != 0)
        return FAIL(L, v, key, "cannot read manifest %s: %s", path, why);
    ug_signed so;
    ug_err e = UG_OK;
    if (ug_signed_decode(&so, r->manifest, r->manifest_len, &e) != 0) /* whole file: no trailing bytes */
        return FAIL(L, v, key, "%s is not a signed manifest: %s", path, ug_err_name(e));
    if (ug_manifest_decode(&r->rel, so.body, so.body_len, &e) != 0)
        return FAIL(L, v, key, "%s holds an invalid manifest: %s", path, ug_err_name(e));
    size_t hint = ug_hint_max_len(r->manifest_len);
    if (hint > UG_DGRAM_MAX)
        return FAIL(L, v, key, "manifest %s (%zu bytes) is too large: a HINT carrying it could take %zu bytes, over the %u-byte datagram limit",
                    path, r->manifest_len, hint, UG_DGRAM_MAX);
    if (ug_version_format(&r->rel.to, r->to, sizeof r->to) != 0)
        return FAIL(L, v, key, "%s: version too long", path);
    return 0;
}

static int load_targets(ldr *L, ug_rollout *r, const ug_ynode *v, const char *key)
{
    ug_ynode *const *it;
    size_t n;
    char kp[UG_YAML_KEY_MAX], buf[UG_YAML_SHOW_MAX];
    if (ug_yget_list(&L->y, v, key, TARGETS_MAX, &it, &n) != 0 || charge(L, v, key, n) != 0)
        return -1;
    if (!(r->targets = calloc(n, sizeof *r->targets)))
        return FAIL(L, v, key, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        if (ug_yget_str(&L->y, it[i], idx(kp, key, i), 1, UG_VER_MAX + 8, &s, &len) != 0)
            return -1;
        if (ug_parse_target(s, len, &r->targets[i]) != 0)
            return FAIL(L, it[i], kp, "\"%s\" is not a version (1 to 4 numbers, like 1.4.0), optionally after < or <=",
                        ug_yshow(buf, sizeof buf, s, len));
        r->ntargets = i + 1;
    }
    return 0;
}

/* A rollout's plat or chan: NAMES_MAX strings of 1..width-1 bytes. */
static int load_names(ldr *L, const ug_ynode *v, const char *key, size_t width, char **out, size_t *count)
{
    ug_ynode *const *it;
    size_t n;
    if (ug_yget_list(&L->y, v, key, NAMES_MAX, &it, &n) != 0 || charge(L, v, key, n) != 0)
        return -1;
    if (!(*out = calloc(n, width)))
        return FAIL(L, v, key, "out of memory");
    *count = n;
    for (size_t i = 0; i < n; i++) {
        char kp[UG_YAML_KEY_MAX];
        const char *s;
        size_t len;
        if (ug_yget_str(&L->y, it[i], idx(kp, key, i), 1, width - 1, &s, &len) != 0)
            return -1;
        memcpy(*out + i * width, s, len);
    }
    return 0;
}

static int load_fraction(ldr *L, const ug_ynode *v, const char *key, uint32_t *ppm)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_plain(&L->y, v, key, "fraction above 0 and at most 1", &s, &n) != 0)
        return -1;
    if (ug_parse_ppm(s, n, ppm) != 0 || *ppm == 0)
        return FAIL(L, v, key, "expected a fraction above 0 and at most 1 with at most 6 decimals (0.05), got \"%s\"",
                    ug_yshow(buf, sizeof buf, s, n));
    return 0;
}

static int load_halt(ldr *L, ug_rollout *r, const ug_ynode *v, const char *key)
{
    ug_yfield f[5] = {{"failed", false, NULL, NULL}, {"rolled_back", false, NULL, NULL},
                      {"min_outcomes", true, NULL, NULL}, {"window", false, NULL, NULL}, {"last", false, NULL, NULL}};
    char kp[UG_YAML_KEY_MAX];
    if (ug_ycollect(&L->y, v, key, f, 5) != 0 || ug_policy_health_window(&L->y, &f[3], &f[4], key, &r->halt_hw) != 0)
        return -1;
    if (!f[0].key && !f[1].key)
        return FAIL(L, v, key, "name failed, rolled_back or both: the share of outcomes that halts the rollout");
    if ((f[0].key && load_fraction(L, f[0].val, sub(kp, key, "failed"), &r->halt_failed_ppm) != 0) ||
        (f[1].key && load_fraction(L, f[1].val, sub(kp, key, "rolled_back"), &r->halt_rolled_back_ppm) != 0) ||
        ug_yget_uint(&L->y, f[2].val, sub(kp, key, "min_outcomes"), 1, UINT64_MAX, &r->halt_min_outcomes) != 0)
        return -1;
    r->has_halt_when = true;
    return 0;
}

enum { R_NAME, R_RELEASE, R_TARGETS, R_PLAT, R_CHAN, R_SALT, R_PAUSED, R_HALT, R_WINDOW, R_HOLD, R_STAGES, R_RELEASE2,
       R_DELTAS, R_TZ, R_WINDOWS, R_N };

/* `release` (v1 manifest), `release_v2` (v2 manifest), or both for one release. */
static int load_releases(ldr *L, ug_rollout *r, const ug_yfield *rel, const ug_yfield *rel2, const ug_ynode *node,
                         const char *base)
{
    char k1[UG_YAML_KEY_MAX], k2[UG_YAML_KEY_MAX];
    ug_v2ld c = v2ld(L);
    ug_ykey(k1, sizeof k1, base, "release", 7, 0);
    ug_ykey(k2, sizeof k2, base, "release_v2", 10, 0);
    if (!rel->key && !rel2->key)
        return FAIL(L, node, k1, "missing required key (or release_v2, a version 2 manifest)");
    if (rel->key && load_release(L, r, rel->val, base[0] ? k1 : "release") != 0)
        return -1;
    return ug_policy_v2_release(&c, L->p, r, rel2->val, base[0] ? k2 : "release_v2");
}

/* `deltas: on|off` (docs/policy-v2-extensions.md): off, the HINT never
 * names a delta of the rollout's version 2 manifest. */
static int load_deltas(ldr *L, ug_rollout *r, const ug_ynode *v, const char *key)
{
    const char *s;
    size_t n;
    if (ug_yget_str(&L->y, v, key, 1, 8, &s, &n) != 0)
        return -1;
    if (!((n == 2 && !memcmp(s, "on", 2)) || (n == 3 && !memcmp(s, "off", 3))))
        return FAIL(L, v, key, "\"%.*s\" is neither on nor off", (int)n, s);
    r->deltas_off = n == 3;
    return 0;
}

static int load_rollout(ldr *L, names *seen, size_t i, const ug_ynode *node, const char *rp)
{
    ug_policy *p = L->p;
    ug_rollout *r = &p->rollouts[i];
    ug_yfield f[R_N] = {
        [R_NAME] = {"name", true, NULL, NULL},          [R_RELEASE] = {"release", false, NULL, NULL},
        [R_TARGETS] = {"targets", true, NULL, NULL},    [R_PLAT] = {"plat", false, NULL, NULL},
        [R_CHAN] = {"chan", false, NULL, NULL},         [R_SALT] = {"salt", false, NULL, NULL},
        [R_PAUSED] = {"paused", false, NULL, NULL},     [R_HALT] = {"halt_when", false, NULL, NULL},
        [R_WINDOW] = {"outcome_window", false, NULL, NULL}, [R_HOLD] = {"hold_when_unhealthy", false, NULL, NULL},
        [R_STAGES] = {"stages", true, NULL, NULL},      [R_RELEASE2] = {"release_v2", false, NULL, NULL},
        [R_DELTAS] = {"deltas", false, NULL, NULL},
        [R_TZ] = {"tz", false, NULL, NULL},             [R_WINDOWS] = {"windows", false, NULL, NULL},
    };
    char kp[UG_YAML_KEY_MAX];
    r->line = ug_yline(node);
    r->outcome_window = 86400;
    if (ug_ycollect(&L->y, node, rp, f, R_N) != 0 || get_name(L, f[R_NAME].val, sub(kp, rp, "name"), "rollout", r->name) != 0)
        return -1;
    ptrdiff_t j = names_put(seen, i);
    if (j >= 0)
        return FAIL(L, f[R_NAME].val, kp, "duplicate rollout name \"%s\" (also rollouts[%td], line %zu)", r->name, j,
                    p->rollouts[j].line);
    const char *s = r->name;
    size_t n = strlen(r->name);
    if (f[R_SALT].key && ug_yget_str(&L->y, f[R_SALT].val, sub(kp, rp, "salt"), 1, UG_SALT_MAX, &s, &n) != 0)
        return -1;
    memcpy(r->salt, s, n);
    r->salt_len = n;
    char *plat = NULL, *chan = NULL;
    int rc = 0;
    if (load_releases(L, r, &f[R_RELEASE], &f[R_RELEASE2], node, rp) != 0 ||
        load_targets(L, r, f[R_TARGETS].val, sub(kp, rp, "targets")) != 0)
        return -1;
    if (f[R_PLAT].key) {
        rc = load_names(L, f[R_PLAT].val, sub(kp, rp, "plat"), UG_PLAT_MAX + 1, &plat, &r->nplat);
        r->plat = (char(*)[UG_PLAT_MAX + 1])plat;
    }
    if (rc == 0 && f[R_CHAN].key) {
        rc = load_names(L, f[R_CHAN].val, sub(kp, rp, "chan"), UG_CHAN_MAX + 1, &chan, &r->nchan);
        r->chan = (char(*)[UG_CHAN_MAX + 1])chan;
    }
    if (rc != 0 || (f[R_PAUSED].key && ug_yget_bool(&L->y, f[R_PAUSED].val, sub(kp, rp, "paused"), &r->paused) != 0) ||
        (f[R_HALT].key && load_halt(L, r, f[R_HALT].val, sub(kp, rp, "halt_when")) != 0) ||
        (f[R_WINDOW].key &&
         ug_yget_uint(&L->y, f[R_WINDOW].val, sub(kp, rp, "outcome_window"), 1, UINT32_MAX, &r->outcome_window) != 0) ||
        (f[R_HOLD].key &&
         ug_yget_bool(&L->y, f[R_HOLD].val, sub(kp, rp, "hold_when_unhealthy"), &r->hold_when_unhealthy) != 0) ||
        (f[R_DELTAS].key && load_deltas(L, r, f[R_DELTAS].val, sub(kp, rp, "deltas")) != 0) ||
        (f[R_TZ].key && ug_policy_tz(&L->y, f[R_TZ].val, sub(kp, rp, "tz"), r->tz) != 0) ||
        (f[R_WINDOWS].key && ug_policy_windows(&L->y, f[R_WINDOWS].val, sub(kp, rp, "windows"), r->tz, L->now, &r->win) != 0))
        return -1;
    return load_stages(L, r, f[R_STAGES].val, sub(kp, rp, "stages"));
}

static int load_rollouts(ldr *L, const ug_ynode *v)
{
    ug_policy *p = L->p;
    if (!v || v->kind != UG_Y_SEQ)
        return FAIL(L, v, "rollouts", "expected a list, got %s", ug_ykind_name(v));
    if (v->n == 0)
        return FAIL(L, v, "rollouts", "empty list: a version 2 policy needs at least one rollout");
    if (v->n > ROLLOUTS_MAX)
        return FAIL(L, v, "rollouts", "%u rollouts, at most %u allowed", (unsigned)v->n, ROLLOUTS_MAX);
    names seen;
    if (!(p->rollouts = calloc(v->n, sizeof *p->rollouts)) ||
        names_init(&seen, v->n, p->rollouts[0].name, sizeof *p->rollouts) != 0)
        return FAIL(L, v, "rollouts", "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < v->n; i++) {
        char rp[UG_YAML_KEY_MAX];
        p->nrollouts = i + 1;
        rc = load_rollout(L, &seen, i, v->u.items[i], idx(rp, "rollouts", i));
    }
    free(seen.slot);
    return rc;
}

/* ---- top level -------------------------------------------------------------------- */

static int load_keys(ldr *L, ug_policy *p, const ug_ynode *node)
{
    ug_yfield f[5] = {{"hint", true, NULL, NULL},      {"issuers", true, NULL, NULL}, {"keyring", false, NULL, NULL},
                      {"hint_cert", false, NULL, NULL}, {"tracker", false, NULL, NULL}};
    char path[UG_PATH_MAX], why[256], kp[UG_YAML_KEY_MAX];
    if (ug_ycollect(&L->y, node, "keys", f, 5) != 0 || get_path(L, f[0].val, "keys.hint", path) != 0)
        return -1;
    why[0] = '\0';
    if (!(p->hint_sk = ug_seckey_load(path, why, sizeof why)))
        return FAIL(L, f[0].val, "keys.hint", "cannot load secret key %s: %s", path, why);
    /* libsodium's secret key is seed || pk */
    ug_pubkey_set(&p->hint_pub, p->hint_sk + UG_SEED_LEN);

    ug_ynode *const *it;
    size_t n;
    if (ug_yget_list(&L->y, f[1].val, "keys.issuers", ISSUERS_MAX, &it, &n) != 0)
        return -1;
    if (!(p->issuers = calloc(n, sizeof *p->issuers)))
        return FAIL(L, f[1].val, "keys.issuers", "out of memory");
    for (size_t i = 0; i < n; i++) {
        uint8_t pk[UG_PK_LEN];
        if (get_path(L, it[i], idx(kp, "keys.issuers", i), path) != 0)
            return -1;
        why[0] = '\0';
        if (ug_pubkey_read(path, pk, why, sizeof why) != 0)
            return FAIL(L, it[i], kp, "cannot load public key %s: %s", path, why);
        ug_pubkey_set(&p->issuers[i], pk);
        p->nissuers = i + 1;
    }
    ug_v2ld c = v2ld(L);
    return ug_policy_v2_keys(&c, p, &f[2], &f[3], &f[4], node);
}

static int load_cookie(ldr *L, ug_policy *p, const ug_ynode *v)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_str(&L->y, v, "cookie", 1, 64, &s, &n) != 0)
        return -1;
    if (ug_ytext_is(v, "always"))
        p->cookie = UG_COOKIE_ALWAYS;
    else if (ug_ytext_is(v, "never"))
        p->cookie = UG_COOKIE_NEVER;
    else if (ug_ytext_is(v, "auto"))
        p->cookie = UG_COOKIE_AUTO;
    else
        return FAIL(L, v, "cookie", "expected always, never or auto, got \"%s\"", ug_yshow(buf, sizeof buf, s, n));
    return 0;
}

static int load_shard(ldr *L, ug_policy *p, const ug_ynode *v)
{
    ug_yfield f[2] = {{"index", true, NULL, NULL}, {"count", true, NULL, NULL}};
    uint64_t i, n;
    if (ug_ycollect(&L->y, v, "shard", f, 2) != 0 || ug_yget_uint(&L->y, f[0].val, "shard.index", 0, UINT32_MAX, &i) != 0 ||
        ug_yget_uint(&L->y, f[1].val, "shard.count", 1, UINT32_MAX, &n) != 0)
        return -1;
    if (i >= n)
        return FAIL(L, f[0].val, "shard.index", "index %" PRIu64 " must be below count %" PRIu64, i, n);
    p->shard_index = (uint32_t)i;
    p->shard_count = (uint32_t)n;
    return 0;
}

static int load_verify(ldr *L, ug_policy *p, const ug_ynode *v)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_str(&L->y, v, "verify", 1, 64, &s, &n) != 0)
        return -1;
    if (ug_ytext_is(v, "claims")) {
        p->verify_claims = true;
        return 0;
    }
    if (!ug_ytext_is(v, "always"))
        return FAIL(L, v, "verify",
                    "always or claims (leave verify out to answer from claims first where no stage names uids), "
                    "got \"%s\"", ug_yshow(buf, sizeof buf, s, n));
    p->verify_always = true;
    return 0;
}

static int load_geoip(ldr *L, ug_policy *p, const ug_ynode *v)
{
    char why[256] = "";
    if (get_path(L, v, "geoip", p->geoip_path) != 0)
        return -1;
    if (!(p->geo = ug_geo_open(p->geoip_path, why, sizeof why)))
        return FAIL(L, v, "geoip", "cannot open %s: %s", p->geoip_path, why);
    return 0;
}

/* The password file must be there and hold one non-empty line; what it
 * holds is the fleet module's to read, and is wiped here. */
static int check_password_file(ldr *L, const ug_ynode *v, const char *path)
{
    char why[256] = "";
    uint8_t *buf = sodium_malloc(PASSWORD_MAX);
    size_t len = 0;
    if (!buf)
        return FAIL(L, v, "fleet.password_file", "out of memory");
    int rc = ug_file_read(path, buf, PASSWORD_MAX, &len, why, sizeof why);
    while (rc == 0 && len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    sodium_free(buf);
    if (rc != 0)
        return FAIL(L, v, "fleet.password_file", "cannot read %s: %s", path, why);
    if (len == 0)
        return FAIL(L, v, "fleet.password_file", "%s is empty", path);
    return 0;
}

static bool tracker_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '.' || s[i] == '_'))
            return false;
    return n > 0;
}

static int load_fleet(ldr *L, ug_policy *p, const ug_ynode *v)
{
    ug_yfield f[7] = {{"redis", true, NULL, NULL},        {"tracker", true, NULL, NULL},
                      {"password_file", false, NULL, NULL}, {"lease", false, NULL, NULL},
                      {"lease_timeout", false, NULL, NULL}, {"password", false, NULL, NULL},
                      {"user", false, NULL, NULL}};
    ug_fleet_conf *fc = &p->fleet;
    const char *s, *why;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_ycollect(&L->y, v, "fleet", f, 7) != 0)
        return -1;
    if (f[5].key)
        return FAIL(L, f[5].key, "fleet.password", "never inline: name a file holding it with password_file");
    if (ug_yget_str(&L->y, f[0].val, "fleet.redis", 1, sizeof fc->redis - 1, &s, &n) != 0)
        return -1;
    if (ug_parse_redis_url(s, n, NULL, &why) != 0)
        return FAIL(L, f[0].val, "fleet.redis", "\"%s\": %s", ug_yshow(buf, sizeof buf, s, n), why);
    memcpy(fc->redis, s, n);
    if (ug_yget_str(&L->y, f[1].val, "fleet.tracker", 1, UG_TRACKER_MAX, &s, &n) != 0)
        return -1;
    if (!tracker_name(s, n))
        return FAIL(L, f[1].val, "fleet.tracker", "\"%s\" is not a tracker name ([A-Za-z0-9._-]{1,64})",
                    ug_yshow(buf, sizeof buf, s, n));
    memcpy(fc->tracker, s, n);
    if (f[6].key && ug_yget_str(&L->y, f[6].val, "fleet.user", 1, UG_TRACKER_MAX, &s, &n) != 0)
        return -1;
    if (f[6].key && !tracker_name(s, n))
        return FAIL(L, f[6].val, "fleet.user", "\"%s\" is not a Redis user name ([A-Za-z0-9._-]{1,64})",
                    ug_yshow(buf, sizeof buf, s, n));
    if (f[6].key && !f[2].key)
        return FAIL(L, f[6].val, "fleet.user", "needs password_file (the user's password)");
    if (f[6].key)
        memcpy(fc->user, s, n);
    fc->lease_timeout = 30;
    if ((f[2].key && (get_path(L, f[2].val, "fleet.password_file", fc->password_file) != 0 ||
                      check_password_file(L, f[2].val, fc->password_file) != 0)) ||
        (f[3].key && ug_yget_uint(&L->y, f[3].val, "fleet.lease", 1, UINT32_MAX, &fc->lease) != 0) ||
        (f[4].key && ug_yget_uint(&L->y, f[4].val, "fleet.lease_timeout", 1, UINT32_MAX, &fc->lease_timeout) != 0))
        return -1;
    fc->enabled = true;
    return 0;
}

enum {
    T_KEYS, T_RELEASE, T_TARGETS, T_STATE, T_GEOIP, T_CLOCK, T_TTL, T_RETRY, T_COOKIE, T_COOKIE_TH, T_BUDGET,
    T_SHARD, T_VERIFY, T_FLEET, T_PAUSED, T_STAGES, T_ROLLOUTS, T_RELEASE2, T_TOKEN_TTL, T_CENSUS, T_N
};

/* Version 1: the top level's release, targets, paused and stages are one
 * rollout named "default". */
static int load_v1(ldr *L, const ug_ynode *root, const ug_yfield *f)
{
    ug_policy *p = L->p;
    if (!(p->rollouts = calloc(1, sizeof *p->rollouts)))
        return FAIL(L, root, "(top)", "out of memory");
    p->nrollouts = 1;
    ug_rollout *r = &p->rollouts[0];
    snprintf(r->name, sizeof r->name, "default");
    snprintf(r->salt, sizeof r->salt, "default");
    r->salt_len = strlen(r->salt);
    r->line = ug_yline(f[T_RELEASE].key ? f[T_RELEASE].key : f[T_RELEASE2].key);
    r->outcome_window = 86400;
    return load_releases(L, r, &f[T_RELEASE], &f[T_RELEASE2], root, "") != 0 ||
                   load_targets(L, r, f[T_TARGETS].val, "targets") != 0 ||
                   (f[T_PAUSED].key && ug_yget_bool(&L->y, f[T_PAUSED].val, "paused", &r->paused) != 0)
               ? -1
               : 0;
}

static int load_settings(ldr *L, ug_policy *p, const ug_yfield *f)
{
    const ug_ylog *y = &L->y;
    if ((f[T_CLOCK].key && ug_yget_uint(y, f[T_CLOCK].val, "clock_window", 0, UINT32_MAX, &p->clock_window) != 0) ||
        (f[T_TTL].key && ug_yget_uint(y, f[T_TTL].val, "hint_ttl", 1, UINT32_MAX, &p->hint_ttl) != 0) ||
        (f[T_RETRY].key && ug_yget_uint(y, f[T_RETRY].val, "retry", 0, UINT32_MAX, &p->retry) != 0) ||
        (f[T_COOKIE_TH].key &&
         ug_yget_uint(y, f[T_COOKIE_TH].val, "cookie_threshold", 0, UINT32_MAX, &p->cookie_threshold) != 0) ||
        (f[T_BUDGET].key && ug_yget_uint(y, f[T_BUDGET].val, "source_budget", 0, UINT32_MAX, &p->source_budget) != 0) ||
        (f[T_COOKIE].key && load_cookie(L, p, f[T_COOKIE].val) != 0) ||
        (f[T_SHARD].key && load_shard(L, p, f[T_SHARD].val) != 0) ||
        (f[T_VERIFY].key && load_verify(L, p, f[T_VERIFY].val) != 0) ||
        (f[T_FLEET].key && load_fleet(L, p, f[T_FLEET].val) != 0) ||
        (f[T_CENSUS].key && ug_yget_bool(y, f[T_CENSUS].val, "census", &p->census) != 0))
        return -1;
    return 0;
}

static int load_top(ldr *L, const ug_ynode *root)
{
    ug_policy *p = L->p;
    ug_yfield f[T_N] = {
        [T_KEYS] = {"keys", true, NULL, NULL},          [T_RELEASE] = {"release", false, NULL, NULL},
        [T_TARGETS] = {"targets", false, NULL, NULL},   [T_STATE] = {"state", true, NULL, NULL},
        [T_GEOIP] = {"geoip", false, NULL, NULL},       [T_CLOCK] = {"clock_window", false, NULL, NULL},
        [T_TTL] = {"hint_ttl", false, NULL, NULL},      [T_RETRY] = {"retry", false, NULL, NULL},
        [T_COOKIE] = {"cookie", false, NULL, NULL},     [T_COOKIE_TH] = {"cookie_threshold", false, NULL, NULL},
        [T_BUDGET] = {"source_budget", false, NULL, NULL}, [T_SHARD] = {"shard", false, NULL, NULL},
        [T_VERIFY] = {"verify", false, NULL, NULL},     [T_FLEET] = {"fleet", false, NULL, NULL},
        [T_PAUSED] = {"paused", false, NULL, NULL},     [T_STAGES] = {"stages", false, NULL, NULL},
        [T_ROLLOUTS] = {"rollouts", false, NULL, NULL}, [T_RELEASE2] = {"release_v2", false, NULL, NULL},
        [T_TOKEN_TTL] = {"token_ttl", false, NULL, NULL}, [T_CENSUS] = {"census", false, NULL, NULL},
    };
    if (!root || root->kind != UG_Y_MAP)
        return UG_YFAIL(&L->y, root, "(top)", "expected a mapping of policy keys, got %s", ug_ykind_name(root));
    if (ug_ycollect(&L->y, root, "", f, T_N) != 0)
        return -1;
    p->version = f[T_ROLLOUTS].key ? 2 : 1;
    if (p->version == 1) {
        static const int need[3] = {T_RELEASE, T_TARGETS, T_STAGES};
        for (size_t i = 0; i < 3; i++)
            if (!f[need[i]].key && !(need[i] == T_RELEASE && f[T_RELEASE2].key))
                return FAIL(L, root, f[need[i]].name, "missing required key (or give rollouts instead)");
    } else {
        static const int v1[5] = {T_RELEASE, T_TARGETS, T_STAGES, T_PAUSED, T_RELEASE2};
        for (size_t i = 0; i < 5; i++)
            if (f[v1[i]].key)
                return FAIL(L, f[v1[i]].key, f[v1[i]].name,
                            "not beside rollouts: a version 2 policy gives release, targets, paused and stages in each rollout");
    }
    /* sections load in the spec's order, so messages come in document order */
    if (load_keys(L, p, f[T_KEYS].val) != 0 || (p->version == 1 && load_v1(L, root, f) != 0) ||
        get_path(L, f[T_STATE].val, "state", p->state_dir) != 0 ||
        (f[T_GEOIP].key && load_geoip(L, p, f[T_GEOIP].val) != 0) || load_settings(L, p, f) != 0)
        return -1;
    int rc = p->version == 2 ? load_rollouts(L, f[T_ROLLOUTS].val)
                             : load_stages(L, &p->rollouts[0], f[T_STAGES].val, "stages");
    ug_v2ld c = v2ld(L);
    return rc != 0 ? rc : ug_policy_v2_settle(&c, p, f[T_TOKEN_TTL].val);
}

/* ---- load / free -------------------------------------------------------------------- */

static int parse_file(ldr *L)
{
    char why[128];
    int fd = ug_file_open(L->y.path, UG_POLICY_FILE_MAX, NULL, why, sizeof why);
    if (fd < 0)
        return ug_yfail(&L->y, L->y.path, 0, "(file)", "cannot read: %s (at most %u bytes)", why, UG_POLICY_FILE_MAX);
    L->doc = ug_ydoc_read(&L->y, fd, UG_POLICY_FILE_MAX);
    close(fd);
    if (!L->doc)
        return -1;
    const ug_ynode *root = ug_ydoc_root(L->doc);
    int rc = root ? load_top(L, root)
                  : ug_yfail(&L->y, L->y.path, 1, "(top)", "empty file: expected a mapping of policy keys");
    ug_ydoc_free(L->doc);
    L->doc = NULL;
    return rc;
}

ug_policy *ug_policy_load(const char *path, char *err, size_t errcap)
{
    return ug_policy_load_at(path, (uint64_t)time(NULL), err, errcap);
}

ug_policy *ug_policy_load_at(const char *path, uint64_t now, char *err, size_t errcap)
{
    ldr L = {.y = {.path = path ? path : "(null)", .err = err, .errcap = errcap}, .now = now};
    if (err && errcap)
        err[0] = '\0';
    if (!path || !path[0] || strlen(path) >= UG_PATH_MAX) {
        ug_yfail(&L.y, L.y.path, 0, "(file)", "no policy path, or longer than %u bytes", UG_PATH_MAX - 1);
        return NULL;
    }
    ug_policy *p = calloc(1, sizeof *p);
    if (!p) {
        ug_yfail(&L.y, L.y.path, 0, "(file)", "out of memory");
        return NULL;
    }
    snprintf(p->path, sizeof p->path, "%s", path);
    p->version = 1;
    p->clock_window = 300;
    p->hint_ttl = 3600;
    p->retry = 3600;
    p->cookie = UG_COOKIE_AUTO;
    p->cookie_threshold = 1000;
    p->source_budget = 1000;
    p->shard_count = 1;
    p->census = true;
    ug_policy_dir(path, L.dir);
    L.p = p;
    if (parse_file(&L) != 0) {
        ug_policy_free(p);
        return NULL;
    }
    return p;
}

static void stage_free(ug_stage *s)
{
    for (size_t i = 0; i < s->nconds; i++)
        if (s->conds[i].owns && s->conds[i].kind->free)
            s->conds[i].kind->free(s->conds[i].arg);
    free(s->conds);
    for (size_t i = 0; s->percent.steps && i < s->percent.nsteps; i++)
        free(s->percent.steps[i].gate);
    free(s->percent.steps);
    ug_windows_free(&s->win);
}

void ug_policy_free(ug_policy *p)
{
    if (!p)
        return;
    ug_secret_free(p->hint_sk);
    free(p->issuers);
    ug_policy_v2_free(p);
    for (size_t i = 0; i < p->nrollouts; i++) {
        ug_rollout *r = &p->rollouts[i];
        free(r->manifest);
        free(r->targets);
        free(r->plat);
        free(r->chan);
        ug_windows_free(&r->win);
        for (size_t j = 0; j < r->nstages; j++)
            stage_free(&r->stages[j]);
        free(r->stages);
    }
    free(p->rollouts);
    ug_geo_close(p->geo); /* after the conditions that point at it */
    free(p);
}
