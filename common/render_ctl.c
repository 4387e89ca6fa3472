/* upgate-ctl's renderings of control replies (docs/control.md) for people: status tables, watch frames, history, grants. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "ug_proto.h"

/* Every accessor takes any JSON value: a reply of the wrong shape renders
 * as "-" or is left out, never a crash. */

static const json_t *get(const json_t *o, const char *k)
{
    return json_is_object(o) ? json_object_get(o, k) : NULL;
}

static bool int_at(const json_t *o, const char *k, json_int_t *v)
{
    const json_t *x = get(o, k);
    if (!json_is_integer(x))
        return false;
    *v = json_integer_value(x);
    return true;
}

/* The string member k, its control bytes as \xNN, into buf ("-" if none). */
static const char *text_at(const json_t *o, const char *k, char *buf, size_t cap)
{
    const json_t *x = get(o, k);
    if (!json_is_string(x)) {
        snprintf(buf, cap, "-");
        return buf;
    }
    FILE *f = fmemopen(buf, cap, "w");
    if (!f) {
        snprintf(buf, cap, "?");
        return buf;
    }
    setvbuf(f, NULL, _IONBF, 0);
    ug_render_text(json_string_value(x), json_string_length(x), f);
    fclose(f);
    buf[cap - 1] = 0;
    return buf;
}

/* "3d 4h", "2h 5m", "7m 3s", "12s". */
static const char *duration(int64_t s, char *buf, size_t cap)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(buf, cap, "%" PRId64 "d %" PRId64 "h", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(buf, cap, "%" PRId64 "h %" PRId64 "m", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(buf, cap, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
    else
        snprintf(buf, cap, "%" PRId64 "s", s);
    return buf;
}

/* "in 6 days", "in 3 hours", "in 12 minutes", "in 5 seconds", "2 days ago". */
static const char *relative(int64_t t, int64_t now, char *buf, size_t cap)
{
    if (t == now) /* not "in 0 seconds" */
        return snprintf(buf, cap, "now"), buf;
    bool past = t < now;
    int64_t d;
    if (past ? __builtin_sub_overflow(now, t, &d) : __builtin_sub_overflow(t, now, &d))
        d = INT64_MAX;
    int64_t n = d >= 86400 ? d / 86400 : d >= 3600 ? d / 3600 : d >= 60 ? d / 60 : d;
    const char *unit = d >= 86400 ? "day" : d >= 3600 ? "hour" : d >= 60 ? "minute" : "second";
    snprintf(buf, cap, "%s%" PRId64 " %s%s%s", past ? "" : "in ", n, unit, n == 1 ? "" : "s", past ? " ago" : "");
    return buf;
}

/* The non-zero integer members of o as "name N, name N", or "none". */
static const char *counts(const json_t *o, char *buf, size_t cap)
{
    size_t at = 0;
    const char *k;
    const json_t *v;
    buf[0] = 0;
    json_object_foreach((json_t *)o, k, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) == 0 || at >= cap)
            continue;
        char name[80];
        FILE *f = fmemopen(name, sizeof name, "w");
        if (!f)
            continue;
        setvbuf(f, NULL, _IONBF, 0);
        ug_render_text(k, strlen(k), f);
        fclose(f);
        name[sizeof name - 1] = 0;
        int n = snprintf(buf + at, cap - at, "%s%s %" JSON_INTEGER_FORMAT, at ? ", " : "", name, json_integer_value(v));
        at = n < 0 ? cap : at + (size_t)n;
    }
    if (!buf[0])
        snprintf(buf, cap, "none");
    return buf;
}

/* ---- tables ------------------------------------------------------------- */

#define CELL_MAX 512
#define COLS_MAX 16

typedef struct {
    size_t ncols, n, cap;
    char **cells; /* row-major; NULL when memory ran out */
    bool right[COLS_MAX];
} table;

__attribute__((format(printf, 2, 3))) static void cell(table *t, const char *fmt, ...)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **c = realloc(t->cells, cap * sizeof *c);
        if (!c)
            return; /* the row comes out short: better than no status */
        t->cells = c, t->cap = cap;
    }
    char s[CELL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof s, fmt, ap);
    va_end(ap);
    t->cells[t->n++] = strdup(s);
}

/* Columns on screen: UTF-8 continuation bytes take none. */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->cells[i]);
    free(t->cells);
    *t = (table){0};
}

/* Prints the table, each column as wide as its widest cell (no spaces at
 * the ends of lines), and frees it. */
static void table_print(table *t, FILE *out, int indent)
{
    size_t w[COLS_MAX] = {0};
    for (size_t i = 0; i < t->n; i++)
        if (width(t->cells[i]) > w[i % t->ncols])
            w[i % t->ncols] = width(t->cells[i]);
    static char line[COLS_MAX * (CELL_MAX + 2) + 256];
    size_t at = 0;
    for (size_t i = 0; i < t->n; i++) {
        size_t c = i % t->ncols, pad = w[c] - width(t->cells[i]);
        const char *s = t->cells[i] ? t->cells[i] : "?";
        int n = t->right[c] ? snprintf(line + at, sizeof line - at, "%*s%s  ", (int)pad, "", s)
                            : snprintf(line + at, sizeof line - at, "%s%*s  ", s, (int)pad, "");
        at = n < 0 || (size_t)n >= sizeof line - at ? sizeof line - 1 : at + (size_t)n;
        if (c + 1 == t->ncols || i + 1 == t->n) {
            while (at && line[at - 1] == ' ')
                at--;
            fprintf(out, "%*s%.*s\n", indent, "", (int)at, line);
            at = 0;
        }
    }
    table_free(t);
}

/* ---- status ------------------------------------------------------------- */

static bool known(const char *k, const char *const *names)
{
    for (; *names; names++)
        if (!strcmp(k, *names))
            return true;
    return false;
}

/* Members of o not in names, as "name: value" lines: nothing the plugin
 * adds is hidden. */
/* A non-empty object of integers only: a tally. */
static bool all_counts(const json_t *v)
{
    const char *k;
    const json_t *x;
    if (!json_is_object(v) || !json_object_size(v))
        return false;
    json_object_foreach((json_t *)v, k, x)
    {
        if (!json_is_integer(x))
            return false;
    }
    return true;
}

static void others(const json_t *o, const char *const *names, FILE *out, int indent, const char *prefix)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (known(k, names))
            continue;
        fprintf(out, "%*s%s", indent, "", prefix);
        ug_render_text(k, strlen(k), out);
        fputs(": ", out);
        char c[CELL_MAX];
        if (all_counts(v)) /* a tally reads as waits and drops do: "quota 3", or "none" */
            fputs(counts(v, c, sizeof c), out);
        else
            ug_render_value_key(k, v, out);
        fputc('\n', out);
    }
}

static void render_tracker(const json_t *tr, FILE *out)
{
    static const char *const names[] = {"uptime_s", "policy", "generation", "cookie", "cookie_under_load", "verify",
                                        "state", "fleet", "drops", "waits", "census", NULL};
    char a[64], b[CELL_MAX], c[CELL_MAX], d[CELL_MAX];
    json_int_t up = 0, gen = 0;
    fputs("tracker", out);
    if (int_at(tr, "uptime_s", &up))
        fprintf(out, " up %s", duration(up, a, sizeof a));
    fprintf(out, ", policy %s", text_at(tr, "policy", b, sizeof b));
    if (int_at(tr, "generation", &gen))
        fprintf(out, " (generation %" JSON_INTEGER_FORMAT ")", gen);
    if (json_is_string(get(tr, "state")))
        fprintf(out, ", state %s", text_at(tr, "state", c, sizeof c));
    fputc('\n', out);
    const char *mode = text_at(tr, "cookie", b, sizeof b);
    bool on = json_is_true(get(tr, "cookie_under_load"));
    fprintf(out, "  cookies %s", mode);
    if (!strcmp(mode, "auto"))
        fprintf(out, " (%s)", on ? "ON: load turned them on" : "off: load has not turned them on");
    fprintf(out, ", verify %s\n", text_at(tr, "verify", d, sizeof d));
    if (json_is_object(get(tr, "waits")))
        fprintf(out, "  waits: %s\n", counts(get(tr, "waits"), c, sizeof c));
    if (json_is_object(get(tr, "drops")))
        fprintf(out, "  drops: %s\n", counts(get(tr, "drops"), c, sizeof c));
    ug_render_census_brief(get(tr, "census"), out, 2);
    const json_t *fleet = get(tr, "fleet");
    if (fleet && !json_is_null(fleet)) {
        fputs("  fleet:\n", out);
        ug_render_members(fleet, out, 4);
    }
    others(tr, names, out, 2, "");
}

/* One share of halt_when: "failed 27.3% of 11, halts at 50%". */
static void halt_share(const json_t *h, const char *what, const char *key, FILE *out, bool *first)
{
    char k[32];
    json_int_t n = 0, known = 0;
    snprintf(k, sizeof k, "%s_pct", key);
    const json_t *at = get(h, k);
    if (!json_is_number(at) || !int_at(h, key, &n) || !int_at(h, "known", &known))
        return;
    fprintf(out, "%s%s %.1f%% of %" JSON_INTEGER_FORMAT ", halts at %g%%", *first ? "" : "; ", what,
            known ? 100.0 * (double)n / (double)known : 0.0, known, json_number_value(at));
    *first = false;
}

/* How far the rollout is from its automatic halt, and since when it counts. */
static void render_halt_when(const json_t *h, FILE *out, int64_t now)
{
    char b[64], c[64];
    json_int_t min = 0, since = 0;
    if (!json_is_object(h))
        return;
    bool first = true;
    fputs("  halt_when: ", out);
    halt_share(h, "failed", "failed", out, &first);
    halt_share(h, "rolled back", "rolled_back", out, &first);
    if (int_at(h, "min_outcomes", &min))
        fprintf(out, "%sat least %" JSON_INTEGER_FORMAT " outcomes", first ? "" : "; ", min);
    if (int_at(h, "since", &since))
        fprintf(out, ", counted since the resume %s (%s)", ug_render_time(since, b, sizeof b),
                relative(since, now, c, sizeof c));
    json_int_t win = 0, last = 0;
    if (int_at(h, "window_s", &win))
        fprintf(out, ", over the last %s", duration(win, b, sizeof b));
    if (int_at(h, "last", &last))
        fprintf(out, ", of the last %" JSON_INTEGER_FORMAT " outcomes", last);
    fputc('\n', out);
}

/* The reply's `failed` counts rollbacks too (the share halt_when judges);
 * shown beside `rolled_back`, failed leaves them out, as the stage table's
 * FAILED column does, so the line adds up to the outcomes known. */
static void render_outcomes(const json_t *o, FILE *out)
{
    char a[CELL_MAX];
    json_t *shown = json_is_object(o) ? json_deep_copy(o) : NULL;
    if (!shown)
        return;
    json_int_t rb = 0, f = 0;
    if (int_at(o, "rolled_back", &rb) && int_at(o, "failed", &f) && f >= rb)
        json_object_set_new(shown, "failed", json_integer(f - rb));
    fprintf(out, "  outcomes: %s", counts(shown, a, sizeof a));
    json_t *by = json_object_get(shown, "failed_by");
    if (json_is_object(by)) {
        json_object_del(by, "rolled_back");
        if (strcmp(counts(by, a, sizeof a), "none"))
            fprintf(out, " (failed: %s)", a);
    }
    fputc('\n', out);
    json_decref(shown);
}

static void render_rollout_head(const json_t *r, FILE *out, int64_t now)
{
    char a[CELL_MAX], b[64], c[64];
    json_int_t exp = 0, held = 0, shift = 0;
    fprintf(out, "\nrollout %s: release %s", text_at(r, "name", a, sizeof a), text_at(r, "release", b, sizeof b));
    if (int_at(r, "manifest_expires", &exp))
        fprintf(out, ", manifest %s %s (%s)", exp < now ? "EXPIRED" : "expires", ug_render_time(exp, b, sizeof b),
                relative(exp, now, c, sizeof c));
    fputc('\n', out);
    if (json_is_true(get(r, "paused")))
        fprintf(out, "  PAUSED by %s: every peer of it gets WAIT %s\n", text_at(r, "paused_by", a, sizeof a),
                ug_why_name(UG_WHY_PAUSED));
    if (json_is_true(get(r, "halted")))
        fprintf(out, "  HALTED: %s\n", text_at(r, "halted_why", a, sizeof a));
    if (!strcmp(text_at(r, "urgency", a, sizeof a), "critical"))
        fputs("  FAST LANE: its manifest says urgency critical: every targeted peer is selected, percent "
              "schedules skipped (quota, rate and fleet_rate still hold)\n", out);
    ug_render_window(get(r, "window"), out, 2, now);
    if (int_at(r, "ramp_held_since", &held))
        fprintf(out, "  ramp held since %s (%s): the percentages stop growing while outcomes look unhealthy\n",
                ug_render_time(held, b, sizeof b), relative(held, now, c, sizeof c));
    if (int_at(r, "ramp_shift_s", &shift) && shift > 0)
        fprintf(out, "  ramp delayed %s by holds so far\n", duration(shift, b, sizeof b));
    render_halt_when(get(r, "halt_when"), out, now);
    if (json_is_object(get(r, "waits")))
        fprintf(out, "  waits: %s\n", counts(get(r, "waits"), a, sizeof a));
    render_outcomes(get(r, "outcomes"), out);
}

static const char *const outcome_keys[] = {"upgraded", "rolled_back", "failed", "declined", "pending", "not_taken"};

static void stage_row(table *t, const json_t *s)
{
    char a[CELL_MAX], p[64];
    json_int_t g = 0, q = 0, m = 0, h = 0, v = 0;
    cell(t, "%s", text_at(s, "name", a, sizeof a));
    char gs[32] = "-";
    if (int_at(s, "granted", &g))
        snprintf(gs, sizeof gs, "%" JSON_INTEGER_FORMAT, g);
    if (int_at(s, "quota", &q))
        cell(t, "%s/%" JSON_INTEGER_FORMAT, gs, q);
    else
        cell(t, "%s", gs);
    cell(t, "%s", ug_render_percent(get(s, "percent"), p, sizeof p));
    const json_t *off = get(s, "offers");
    if (int_at(off, "last_minute", &m) && int_at(off, "last_hour", &h))
        cell(t, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, m, h);
    else
        cell(t, "-");
    const json_t *rate = get(s, "rate");
    if (json_is_number(rate))
        cell(t, "%g/s", json_number_value(rate));
    else
        cell(t, "-");
    const json_t *o = get(s, "outcomes");
    json_int_t rb = 0;
    bool has_rb = int_at(o, "rolled_back", &rb);
    for (size_t i = 0; i < sizeof outcome_keys / sizeof outcome_keys[0]; i++) {
        if (int_at(o, outcome_keys[i], &v)) /* FAILED leaves out the ROLLED BACK beside it: a row adds up */
            cell(t, "%" JSON_INTEGER_FORMAT, !strcmp(outcome_keys[i], "failed") && has_rb && v >= rb ? v - rb : v);
        else
            cell(t, "-");
    }
    const json_t *w = get(s, "waits");
    cell(t, "%s", json_is_object(w) && strcmp(counts(w, a, sizeof a), "none") ? a : "-");
}

static void render_stages(const json_t *stages, FILE *out, int64_t now)
{
    static const char *const head[] = {"STAGE",  "GRANTED", "PERCENT",  "OFFERS 1M/1H", "RATE",      "UPGRADED",
                                       "ROLLED BACK", "FAILED", "DECLINED", "PENDING", "NOT TAKEN", "WAITS"};
    table t = {.ncols = sizeof head / sizeof head[0]};
    for (size_t c = 1; c + 1 < t.ncols; c++)
        t.right[c] = true;
    for (size_t c = 0; c < t.ncols; c++)
        cell(&t, "%s", head[c]);
    size_t i;
    const json_t *s;
    json_array_foreach(stages, i, s)
        stage_row(&t, s);
    if (json_array_size(stages)) {
        table_print(&t, out, 2);
    } else {
        fputs("  no stages\n", out);
        table_free(&t);
    }
    static const char *const names[] = {"name", "granted", "quota", "percent", "rate", "offers", "waits",
                                        "outcomes", "next_step", "gate", NULL};
    json_array_foreach(stages, i, s)
    {
        char a[CELL_MAX], prefix[CELL_MAX + 16], p[64], b[64], c[64];
        json_int_t at;
        snprintf(prefix, sizeof prefix, "stage %s: ", text_at(s, "name", a, sizeof a));
        const json_t *next = get(s, "next_step");
        if (int_at(next, "at", &at))
            fprintf(out, "  %snext step %s at %s (%s)\n", prefix, ug_render_percent(get(next, "percent"), p, sizeof p),
                    ug_render_time(at, b, sizeof b), relative(at, now, c, sizeof c));
        ug_render_gate(get(s, "gate"), prefix, out, 2);
        if (json_is_object(s))
            others(s, names, out, 2, prefix);
    }
}

void ug_render_status(const json_t *st, FILE *out, int64_t now)
{
    render_tracker(get(st, "tracker"), out);
    size_t i;
    const json_t *r;
    json_array_foreach(get(st, "rollouts"), i, r)
    {
        render_rollout_head(r, out, now);
        render_stages(get(r, "stages"), out, now);
        static const char *const names[] = {"name", "release", "manifest_expires", "paused", "paused_by", "halted",
                                            "halted_why", "waits", "outcomes", "stages", "ramp_held_since",
                                            "ramp_shift_s", "halt_when", "urgency", "window", NULL};
        if (json_is_object(r))
            others(r, names, out, 2, "");
    }
    if (!json_array_size(get(st, "rollouts")))
        fputs("\nno rollouts\n", out);
    static const char *const names[] = {"ok", "tracker", "rollouts", NULL};
    if (json_is_object(st))
        others(st, names, out, 0, "");
}

/* ---- watch ---------------------------------------------------------------- */

#define BAR 24

/* "[#######.................]" for part of whole (clamped). */
static const char *bar(double part, double whole, char *buf)
{
    double f = whole > 0 ? part / whole : 0;
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    size_t n = (size_t)(f * BAR + 0.5);
    if (n == 0 && part > 0)
        n = 1; /* something happened: show it */
    buf[0] = '[';
    for (size_t i = 0; i < BAR; i++)
        buf[1 + i] = i < n ? '#' : '.';
    buf[BAR + 1] = ']';
    buf[BAR + 2] = 0;
    return buf;
}

static void watch_row(table *t, const json_t *s)
{
    char a[CELL_MAX], b[BAR + 3], p[64];
    json_int_t g = 0, q = 0, m = 0;
    int_at(s, "granted", &g);
    cell(t, "%s", text_at(s, "name", a, sizeof a));
    const json_t *pc = get(s, "percent");
    if (int_at(s, "quota", &q)) {
        cell(t, "%s", bar((double)g, (double)q, b));
        cell(t, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT " granted", g, q);
    } else if (json_is_number(pc)) { /* the percentage in force */
        cell(t, "%s", bar(json_number_value(pc), 100.0, b));
        cell(t, "%s in force, %" JSON_INTEGER_FORMAT " granted", ug_render_percent(get(s, "percent"), p, sizeof p), g);
    } else {
        cell(t, "%s", "(no quota or percentage)");
        cell(t, "%" JSON_INTEGER_FORMAT " granted", g);
    }
    if (int_at(get(s, "offers"), "last_minute", &m))
        cell(t, "+%" JSON_INTEGER_FORMAT "/min", m);
    else
        cell(t, "-");
    const json_t *w = get(s, "waits"); /* labelled: "quota 33" alone read as a quota of 33 */
    if (json_is_object(w) && strcmp(counts(w, a, sizeof a), "none"))
        cell(t, "waits: %s", a);
    else
        cell(t, "%s", "");
}

void ug_render_watch(const json_t *st, FILE *out, int64_t now)
{
    char a[CELL_MAX], b[64], c[64];
    const json_t *tr = get(st, "tracker");
    json_int_t up = 0, gen = 0;
    fprintf(out, "%s  tracker", ug_render_time(now, b, sizeof b));
    if (int_at(tr, "uptime_s", &up))
        fprintf(out, " up %s", duration(up, c, sizeof c));
    if (int_at(tr, "generation", &gen))
        fprintf(out, ", policy generation %" JSON_INTEGER_FORMAT, gen);
    if (json_is_true(get(tr, "cookie_under_load")))
        fputs(", COOKIES ON under load", out);
    fputc('\n', out);
    size_t i, j;
    const json_t *r, *s;
    json_array_foreach(get(st, "rollouts"), i, r)
    {
        fprintf(out, "rollout %s  release %s", text_at(r, "name", a, sizeof a), text_at(r, "release", b, sizeof b));
        if (json_is_true(get(r, "halted")))
            fprintf(out, "  HALTED: %s", text_at(r, "halted_why", a, sizeof a));
        else if (json_is_true(get(r, "paused")))
            fprintf(out, "  PAUSED by %s", text_at(r, "paused_by", a, sizeof a));
        if (json_is_integer(get(r, "ramp_held_since")))
            fputs("  ramp held", out);
        fputc('\n', out);
        table t = {.ncols = 5};
        json_array_foreach(get(r, "stages"), j, s)
            watch_row(&t, s);
        table_print(&t, out, 2);
    }
}

/* ---- history, grants, anything ------------------------------------------- */

/* Who made a change, for people: "uid 1000 pid 4242" (a control client),
 * "host pid 77", "signal", "automatic", "fleet"; "-" when not kept. */
static const char *actor_text(const json_t *h, char *buf, size_t cap)
{
    const json_t *who = get(h, "actor");
    char kind[32];
    json_int_t uid = 0, pid = 0;
    text_at(who, "kind", kind, sizeof kind);
    bool ids = int_at(who, "uid", &uid) && int_at(who, "pid", &pid);
    if (!strcmp(kind, "control") && ids)
        snprintf(buf, cap, "uid %" JSON_INTEGER_FORMAT " pid %" JSON_INTEGER_FORMAT, uid, pid);
    else if (!strcmp(kind, "host") && ids)
        snprintf(buf, cap, "host pid %" JSON_INTEGER_FORMAT, pid);
    else
        snprintf(buf, cap, "%s", !strcmp(kind, "unknown") ? "-" : kind);
    return buf;
}

void ug_render_history(const json_t *reply, FILE *out)
{
    size_t i;
    const json_t *h;
    char a[2 * CELL_MAX], b[64], who[64];
    json_int_t at = 0;
    int wide = 0;
    const json_t *list = get(reply, "history");
    json_array_foreach(list, i, h)
    {
        int n = (int)strlen(actor_text(h, who, sizeof who));
        wide = n > wide ? n : wide;
    }
    json_array_foreach(list, i, h)
    {
        fprintf(out, "%s  %-*s  %s\n", int_at(h, "at", &at) ? ug_render_time(at, b, sizeof b) : "-", wide,
                actor_text(h, who, sizeof who), text_at(h, "what", a, sizeof a));
    }
    if (!json_array_size(list))
        fputs("no changes yet\n", out);
}

void ug_render_census_brief(const json_t *c, FILE *out, int indent)
{
    char a[CELL_MAX];
    json_int_t n[3] = {0, 0, 0}, k = 0;
    static const char *const w[3] = {"hour", "day", "week"};
    if (!json_is_object(c))
        return;
    for (int i = 0; i < 3; i++)
        (void)int_at(c, w[i], &n[i]);
    char src[64] = "";
    if (!strcmp(text_at(c, "source", a, sizeof a), "fleet")) /* which census: the operator must know */
        snprintf(src, sizeof src, " (fleet, %" JSON_INTEGER_FORMAT " trackers)", int_at(c, "trackers", &k) ? k : 0);
    fprintf(out, "%*scensus%s: %" JSON_INTEGER_FORMAT " uids in the last hour, %" JSON_INTEGER_FORMAT
                 " in the day, %" JSON_INTEGER_FORMAT " in the week; top versions (day):",
            indent, "", src, n[0], n[1], n[2]);
    size_t i;
    const json_t *t;
    json_array_foreach(get(c, "top_day"), i, t)
    {
        fprintf(out, "%s %s %" JSON_INTEGER_FORMAT, i ? "," : "", text_at(t, "ver", a, sizeof a),
                int_at(t, "n", &k) ? k : 0);
    }
    fputs(json_array_size(get(c, "top_day")) ? "\n" : " none yet\n", out);
}

void ug_render_window(const json_t *w, FILE *out, int indent, int64_t now)
{
    char b[64], c[64];
    json_int_t next = 0;
    if (!json_is_object(w))
        return;
    bool open = json_is_true(get(w, "open")), known = int_at(w, "next", &next);
    fprintf(out, "%*swindow: %s", indent, "", open ? "OPEN" : "closed");
    if (known)
        fprintf(out, ", %s %s (%s)", open ? "closes" : "opens", ug_render_time(next, b, sizeof b),
                relative(next, now, c, sizeof c));
    else
        fputs(open ? "" : ", no opening within the precomputed days", out);
    fputs(json_is_true(get(w, "peer")) ? " (peer-zone windows read in the rollout's tz)\n" : "\n", out);
}

/* One window of a census: its total, how many versions, the top ones. */
static void census_window(const json_t *w, const char *name, FILE *out)
{
    char a[CELL_MAX];
    json_int_t total = 0, nv = 0, n = 0;
    fprintf(out, "  %-5s  %10" JSON_INTEGER_FORMAT "  %8" JSON_INTEGER_FORMAT "  ", name,
            int_at(w, "total", &total) ? total : 0, int_at(w, "versions", &nv) ? nv : 0);
    size_t i;
    const json_t *t;
    json_array_foreach(get(w, "top"), i, t)
    {
        fprintf(out, "%s%s %" JSON_INTEGER_FORMAT, i ? ", " : "", text_at(t, "ver", a, sizeof a),
                int_at(t, "n", &n) ? n : 0);
    }
    fputc('\n', out);
}

void ug_render_census(const json_t *reply, FILE *out)
{
    static const char *const windows[] = {"hour", "day", "week"};
    if (json_is_false(get(reply, "enabled")))
        fputs("the census is off (the policy says census: false)\n", out);
    fputs("distinct uids (HyperLogLog, about 0.6% standard error); hour: the last 60-70 min\n"
          "  window       total  versions  top versions\n",
          out);
    for (size_t k = 0; k < 3; k++)
        census_window(get(get(reply, "windows"), windows[k]), windows[k], out);
    const json_t *fl = get(reply, "fleet");
    if (json_is_object(fl)) {
        json_int_t n[3] = {0, 0, 0}, t = 0, r = 0;
        for (size_t k = 0; k < 3; k++)
            (void)int_at(fl, windows[k], &n[k]);
        fprintf(out,
                "  fleet: %" JSON_INTEGER_FORMAT " uids in the last hour, %" JSON_INTEGER_FORMAT " in the day, %"
                JSON_INTEGER_FORMAT " in the week (%" JSON_INTEGER_FORMAT " trackers merged; %" JSON_INTEGER_FORMAT
                " censuses refused)\n",
                n[0], n[1], n[2], int_at(fl, "trackers", &t) ? t : 0, int_at(fl, "refused", &r) ? r : 0);
    }
    size_t i;
    const json_t *b;
    const json_t *list = get(reply, "buckets");
    if (json_array_size(list))
        fprintf(out, "\n  %-14s %-16s %-10s %-8s %9s %9s %9s\n", "version", "plat", "chan", "region", "hour", "day",
                "week");
    json_array_foreach(list, i, b)
    {
        char v[CELL_MAX], pl[CELL_MAX], ch[CELL_MAX], rg[CELL_MAX];
        json_int_t n[3] = {0, 0, 0};
        for (size_t k = 0; k < 3; k++)
            (void)int_at(b, windows[k], &n[k]);
        fprintf(out, "  %-14s %-16s %-10s %-8s %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
                     "\n",
                json_is_true(get(b, "other")) ? "(other)" : text_at(b, "ver", v, sizeof v),
                text_at(b, "plat", pl, sizeof pl), text_at(b, "chan", ch, sizeof ch),
                text_at(b, "region", rg, sizeof rg), n[0], n[1], n[2]);
    }
}

void ug_render_grant(const json_t *row, FILE *out)
{
    char a[CELL_MAX], b[64];
    json_int_t uid = 0, at = 0;
    if (int_at(row, "uid", &uid))
        fprintf(out, "%-10" JSON_INTEGER_FORMAT, uid);
    else
        fprintf(out, "%-10s", "-");
    fprintf(out, "  %-16s  %s\n", text_at(row, "stage", a, sizeof a),
            int_at(row, "at", &at) ? ug_render_time(at, b, sizeof b) : "-");
}

void ug_render_members(const json_t *o, FILE *out, int indent)
{
    if (!json_is_object(o)) {
        fprintf(out, "%*s", indent, "");
        ug_render_value(o, out);
        fputc('\n', out);
        return;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (!strcmp(k, "ok") && indent == 0)
            continue;
        fprintf(out, "%*s", indent, "");
        ug_render_text(k, strlen(k), out);
        bool nest = json_is_object(v) && json_object_size(v);
        bool rows = json_is_array(v) && json_array_size(v) && json_is_object(json_array_get(v, 0));
        if (nest) {
            fputs(":\n", out);
            ug_render_members(v, out, indent + 2);
        } else if (rows) {
            fputs(":\n", out);
            size_t i;
            const json_t *e;
            json_array_foreach(v, i, e)
            {
                fprintf(out, "%*s- ", indent + 2, "");
                ug_render_value(e, out);
                fputc('\n', out);
            }
        } else {
            fputs(": ", out);
            ug_render_value_key(k, v, out);
            fputc('\n', out);
        }
    }
}

void ug_render_gate(const json_t *g, const char *prefix, FILE *out, int indent)
{
    char w[CELL_MAX];
    json_int_t step = -1, next;
    if (!json_is_object(g))
        return;
    (void)int_at(g, "step", &step);
    fprintf(out, "%*s%sstep %lld in force", indent, "", prefix, (long long)step);
    if (int_at(g, "next_gate", &next))
        fprintf(out, "; gate before step %lld", (long long)next);
    if (json_is_string(get(g, "waits_for")))
        fprintf(out, " waits for: %s", text_at(g, "waits_for", w, sizeof w));
    fputc('\n', out);
}
