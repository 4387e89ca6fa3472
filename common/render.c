/* Policy summaries and decision traces (JSON from the plugin's check() and control()) as text for people. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "render.h"

static bool is_time_key(const char *k)
{
    static const char *const names[] = {"at", "start", "end", "expires", "exp", "manifest_expires", "from_time"};
    for (size_t i = 0; k && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(k, names[i]))
            return true;
    return false;
}

static void put_time(json_int_t t, FILE *out)
{
    char s[64];
    fputs(ug_render_time((int64_t)t, s, sizeof s), out);
}

const char *ug_render_percent(const json_t *v, char *buf, size_t cap)
{
    if (json_is_real(v) && json_real_value(v) >= 0) { /* status: the percentage itself */
        snprintf(buf, cap, "%.2f%%", json_real_value(v));
        return buf;
    }
    json_int_t h = json_integer_value(v); /* traces and summaries: hundredths of a percent */
    if (json_is_integer(v) && h >= 0)
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT ".%02" JSON_INTEGER_FORMAT "%%", h / 100, h % 100);
    else
        snprintf(buf, cap, "-");
    return buf;
}

void ug_render_text(const char *s, size_t len, FILE *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
}

void ug_render_value_key(const char *key, const json_t *v, FILE *out)
{
    size_t i;
    const char *k;
    const json_t *x;
    switch (json_typeof(v)) {
    case JSON_STRING: ug_render_text(json_string_value(v), json_string_length(v), out); break;
    case JSON_INTEGER:
        if (is_time_key(key))
            put_time(json_integer_value(v), out);
        else
            fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: fprintf(out, "%.15g", json_real_value(v)); break;
    case JSON_TRUE: fputs("yes", out); break;
    case JSON_FALSE: fputs("no", out); break;
    case JSON_NULL: fputs("none", out); break;
    case JSON_ARRAY:
        if (!json_array_size(v))
            fputs("none", out);
        json_array_foreach(v, i, x)
        {
            if (i)
                fputs(", ", out);
            if (json_is_array(x) || json_is_object(x))
                fputc('[', out), ug_render_value_key(key, x, out), fputc(']', out);
            else
                ug_render_value_key(key, x, out);
        }
        break;
    case JSON_OBJECT: {
        bool first = true;
        fputc('{', out);
        json_object_foreach((json_t *)v, k, x)
        {
            fputs(first ? "" : ", ", out);
            ug_render_text(k, strlen(k), out);
            fputs(": ", out);
            ug_render_value_key(k, x, out);
            first = false;
        }
        fputc('}', out);
        break;
    }
    }
}

void ug_render_value(const json_t *v, FILE *out)
{
    ug_render_value_key(NULL, v, out);
}

static bool known(const char *k, const char *const *names)
{
    for (; *names; names++)
        if (!strcmp(k, *names))
            return true;
    return false;
}

/* "label: value" when obj has member k. */
static void line(const json_t *obj, const char *k, const char *label, FILE *out, int indent)
{
    const json_t *v = json_object_get(obj, k);
    if (!v)
        return;
    fprintf(out, "%*s", indent, "");
    ug_render_text(label, strlen(label), out);
    fputs(": ", out);
    ug_render_value_key(k, v, out);
    fputc('\n', out);
}

/* Every member not in names, as "name: value". */
static void rest(const json_t *obj, const char *const *names, FILE *out, int indent)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!known(k, names))
            line(obj, k, k, out, indent);
    }
}

static void render_manifest(const json_t *m, FILE *out, int indent)
{
    static const char *const names[] = {"to", "expires", "kid", "size", "urls", NULL};
    fprintf(out, "%*smanifest: release ", indent, "");
    ug_render_value(json_object_get(m, "to") ? json_object_get(m, "to") : json_null(), out);
    if (json_object_get(m, "size"))
        fprintf(out, ", %" JSON_INTEGER_FORMAT " bytes", json_integer_value(json_object_get(m, "size")));
    fputc('\n', out);
    line(m, "kid", "signed by key", out, indent + 2);
    line(m, "expires", "expires", out, indent + 2);
    size_t i;
    const json_t *u;
    json_array_foreach(json_object_get(m, "urls"), i, u)
    {
        fprintf(out, "%*smirror %zu: ", indent + 2, "", i);
        ug_render_value(u, out);
        fputc('\n', out);
    }
    rest(m, names, out, indent + 2);
}

static void render_stage(const json_t *s, FILE *out, int indent)
{
    static const char *const names[] = {"name", "conditions", "start", "end", "percent", "quota", "rate", NULL};
    fprintf(out, "%*sstage ", indent, "");
    ug_render_value(json_object_get(s, "name") ? json_object_get(s, "name") : json_null(), out);
    fputc('\n', out);
    const json_t *conds = json_object_get(s, "conditions");
    if (json_is_array(conds) && json_array_size(conds)) {
        size_t i;
        const json_t *c;
        json_array_foreach(conds, i, c)
        {
            fprintf(out, "%*s%s ", indent + 2, "", i ? "and" : "when");
            ug_render_value(c, out);
            fputc('\n', out);
        }
    } else if (conds) {
        fprintf(out, "%*swhen: everyone\n", indent + 2, "");
    }
    for (const char *const *k = names + 2; *k; k++) {
        const json_t *v = json_object_get(s, *k);
        if (v && !json_is_null(v))
            line(s, *k, *k, out, indent + 2);
    }
    rest(s, names, out, indent + 2);
}

static void render_rollout(const json_t *r, FILE *out)
{
    static const char *const names[] = {"name", "targets", "plat", "chan", "paused", "manifest", "stages", "urgency",
                                        NULL};
    fputs("rollout ", out);
    ug_render_value(json_object_get(r, "name") ? json_object_get(r, "name") : json_null(), out);
    if (json_is_true(json_object_get(r, "paused")))
        fputs(" (paused)", out);
    const char *urg = json_string_value(json_object_get(r, "urgency"));
    if (urg && !strcmp(urg, "critical"))
        fputs(" (FAST LANE: urgency critical, percent schedules skipped; quota and rate still hold)", out);
    fputc('\n', out);
    line(r, "targets", "targets", out, 2);
    if (json_object_get(r, "plat") && !json_is_null(json_object_get(r, "plat")))
        line(r, "plat", "platforms", out, 2);
    if (json_object_get(r, "chan") && !json_is_null(json_object_get(r, "chan")))
        line(r, "chan", "channels", out, 2);
    const json_t *m = json_object_get(r, "manifest");
    if (json_is_object(m))
        render_manifest(m, out, 2);
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(r, "stages"), i, s)
    {
        if (json_is_object(s))
            render_stage(s, out, 2);
    }
    rest(r, names, out, 2);
}

/* "not targeted by rollout r: version 1.2.0 is not in its targets [1.4.0]", each rollout. */
static void render_untargeted(const json_t *ex, FILE *out, int indent)
{
    size_t k;
    const json_t *nt;
    json_array_foreach(json_object_get(ex, "not_targeted"), k, nt)
    {
        fprintf(out, "%*snot targeted by rollout ", indent, "");
        ug_render_value(json_object_get(nt, "rollout") ? json_object_get(nt, "rollout") : json_null(), out);
        fputs(": ", out);
        ug_render_value(json_object_get(nt, "why") ? json_object_get(nt, "why") : json_null(), out);
        fputc('\n', out);
    }
}

/* Why no rollout targets the peer, if so; then "already granted: yes
 * (2.0.0), stage canary at T, outcome upgraded": the release it was
 * granted, even when the uid runs it now. */
static void render_grant(const json_t *ex, FILE *out, int indent)
{
    render_untargeted(ex, out, indent);
    const json_t *g = json_object_get(ex, "grant");
    if (!json_is_object(g)) {
        line(ex, "granted", "already granted", out, indent);
        return;
    }
    static const char *const keys[] = {"release", "stage", "at", "outcome", "rollout"};
    static const char *const before[] = {"already granted: yes (", "), stage ", " at ", ", outcome ", ", rollout "};
    fprintf(out, "%*s", indent, "");
    const char *rn = json_string_value(json_object_get(ex, "rollout"));
    const char *gr = json_string_value(json_object_get(g, "rollout"));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (i == 4 && rn && gr && !strcmp(rn, gr))
            break; /* the rollout named above */
        fputs(before[i], out);
        const json_t *v = json_object_get(g, keys[i]);
        ug_render_value_key(keys[i], v ? v : json_null(), out);
    }
    fputs(json_is_true(json_object_get(g, "remote")) ? " (granted by another tracker)\n" : "\n", out);
}


void ug_render_explain(const json_t *ex, FILE *out, int indent)
{
    static const char *const names[] = {"ok",    "rollout", "release", "answer",       "why",    "why_name",
                                        "stage", "granted", "grant",   "not_targeted", "trace",  "urgency",
                                        "window", "window_opens", "census", "gates", NULL};
    fprintf(out, "%*sanswer: ", indent, "");
    ug_render_value(json_object_get(ex, "answer") ? json_object_get(ex, "answer") : json_null(), out);
    const json_t *wn = json_object_get(ex, "why_name");
    if (wn && !json_is_null(wn) && !(json_is_string(wn) && !json_string_length(wn))) {
        fputs(" (", out);
        ug_render_value(json_object_get(ex, "why_name"), out);
        fputc(')', out);
    }
    fputc('\n', out);
    line(ex, "rollout", "rollout", out, indent + 2);
    line(ex, "release", "release", out, indent + 2);
    line(ex, "stage", "stage", out, indent + 2);
    render_grant(ex, out, indent + 2);
    const char *urg = json_string_value(json_object_get(ex, "urgency"));
    if (urg && !strcmp(urg, "critical"))
        fprintf(out, "%*sFAST LANE: urgency critical, percent schedules skipped\n", indent + 2, "");
    json_int_t opens = json_integer_value(json_object_get(ex, "window_opens"));
    int64_t now = (int64_t)time(NULL);
    if (opens) {
        char tb[64];
        fprintf(out, "%*soutside its windows: the WAIT's retry brings it back after %s\n", indent + 2, "",
                ug_render_time(opens, tb, sizeof tb));
    }
    ug_render_window(json_object_get(ex, "window"), out, indent + 2, now);
    ug_render_census_brief(json_object_get(ex, "census"), out, indent + 2);
    size_t i, j;
    const json_t *t, *c;
    json_array_foreach(json_object_get(ex, "gates"), i, t)
    {
        char pre[96];
        snprintf(pre, sizeof pre, "stage %.64s: ", json_string_value(json_object_get(t, "stage")));
        ug_render_gate(json_object_get(t, "gate"), pre, out, indent + 2);
    }
    json_array_foreach(json_object_get(ex, "trace"), i, t)
    {
        fprintf(out, "%*sstage ", indent + 2, "");
        ug_render_value(json_object_get(t, "stage") ? json_object_get(t, "stage") : json_null(), out);
        fprintf(out, ": %s%s\n", json_is_false(json_object_get(t, "active")) ? "not active, " : "",
                json_is_true(json_object_get(t, "selects")) ? "selects" : "does not select");
        json_array_foreach(json_object_get(t, "conds"), j, c)
        {
            fprintf(out, "%*s", indent + 4, "");
            ug_render_value(json_object_get(c, "cond") ? json_object_get(c, "cond") : c, out);
            if (json_object_get(c, "holds"))
                fprintf(out, ": %s", json_is_true(json_object_get(c, "holds")) ? "holds" : "does not hold");
            fputc('\n', out);
        }
        const json_t *pc = json_object_get(t, "percent");
        if (json_is_object(pc)) {
            char b[64], f[64];
            fprintf(out, "%*spercent: bucket %s vs %s in force", indent + 4, "",
                    ug_render_percent(json_object_get(pc, "bucket"), b, sizeof b),
                    ug_render_percent(json_object_get(pc, "in_force"), f, sizeof f));
            if (json_object_get(pc, "holds"))
                fprintf(out, ": %s", json_is_true(json_object_get(pc, "holds")) ? "holds" : "does not hold");
            fputc('\n', out);
        } else {
            line(t, "percent", "percent", out, indent + 4);
        }
        line(t, "quota_left", "quota left", out, indent + 4);
        if (json_is_true(json_object_get(t, "fast_lane")))
            fprintf(out, "%*spercent: skipped (fast lane)\n", indent + 4, "");
        const json_t *tw = json_object_get(t, "window");
        if (json_is_object(tw)) {
            char tb[64];
            fprintf(out, "%*swindow: closed, opens %s\n", indent + 4, "",
                    ug_render_time(json_integer_value(json_object_get(tw, "opens")), tb, sizeof tb));
        }
        static const char *const tnames[] = {"stage", "active", "selects", "conds", "percent", "quota_left",
                                             "fast_lane", "window", NULL};
        rest(t, tnames, out, indent + 4);
    }
    rest(ex, names, out, indent + 2);
}

int ug_render_check(const char *json, size_t len, FILE *out, FILE *warn, char *err, size_t errcap)
{
    json_error_t je;
    json_t *j = json_loadb(json, len, 0, &je);
    if (!json_is_object(j)) {
        snprintf(err, errcap, "the plugin's summary is not one JSON object: %s", j ? "another value" : je.text);
        json_decref(j);
        return -1;
    }
    static const char *const names[] = {"rollouts", "hint_kid", "issuer_kids", "warnings", "explain", NULL};
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(j, "rollouts"), i, v)
    {
        if (json_is_object(v))
            render_rollout(v, out);
    }
    line(j, "hint_kid", "hint key", out, 0);
    line(j, "issuer_kids", "issuer keys", out, 0);
    rest(j, names, out, 0);
    const json_t *ex = json_object_get(j, "explain");
    if (json_is_object(ex)) {
        fputs("explain\n", out);
        ug_render_explain(ex, out, 2);
    }
    const json_t *w = json_object_get(j, "warnings");
    fprintf(out, "%zu warning%s\n", json_array_size(w), json_array_size(w) == 1 ? "" : "s");
    json_array_foreach(w, i, v)
    {
        fputs("  warning: ", out);
        ug_render_value(v, out);
        fputc('\n', out);
        if (warn) {
            fprintf(warn, "%s: warning: ", ug_prog);
            ug_render_value(v, warn);
            fputc('\n', warn);
        }
    }
    json_decref(j);
    return 0;
}
