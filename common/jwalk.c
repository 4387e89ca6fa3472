/* A JSON object read member by member, one array of it element by element: replies of millions of rows without a tree of millions of nodes. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "jwalk.h"

/* The scanner only finds where each value ends; jansson then parses each
 * span, which is where the text is checked. */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at '"': just past the closing quote, or NULL. */
static const char *string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Just past the value starting at p (balanced brackets, strings skipped),
 * or NULL when it does not end. */
static const char *value_end(const char *p, const char *end)
{
    if (p >= end)
        return NULL;
    if (*p == '"')
        return string_end(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        for (; p < end; p++) {
            if (*p == '"') {
                if (!(p = string_end(p, end)))
                    return NULL;
                p--;
            } else if (*p == '{' || *p == '[') {
                depth++;
            } else if ((*p == '}' || *p == ']') && --depth == 0) {
                return p + 1;
            }
        }
        return NULL;
    }
    const char *q = p;
    while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
        q++;
    return q > p ? q : NULL;
}

typedef struct {
    const char *start, *end;
    char *err;
    size_t errcap;
} walk;

static int fail(walk *w, const char *at, const char *what)
{
    snprintf(w->err, w->errcap, "at byte %zu: %s", (size_t)(at - w->start), what);
    return -1;
}

/* The value at *p, parsed alone; *p moves past it. */
static json_t *take(walk *w, const char **p)
{
    const char *e = value_end(*p, w->end);
    if (!e)
        return fail(w, *p, "a value that does not end"), NULL;
    json_error_t je;
    json_t *v = json_loadb(*p, (size_t)(e - *p), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s", je.text);
        fail(w, *p + (je.position > 0 ? je.position - 1 : 0), msg);
        return NULL;
    }
    *p = e;
    return v;
}

static int walk_array(walk *w, const char **p, ug_jwalk_elem on_elem, void *ctx)
{
    const char *q = skip_ws(*p + 1, w->end);
    if (q < w->end && *q == ']') {
        *p = q + 1;
        return 0;
    }
    for (size_t i = 0;; i++) {
        json_t *v = take(w, &q);
        if (!v)
            return -1;
        int rc = on_elem(ctx, i, v);
        json_decref(v);
        if (rc != 0)
            return rc;
        q = skip_ws(q, w->end);
        if (q < w->end && *q == ']') {
            *p = q + 1;
            return 0;
        }
        if (q >= w->end || *q != ',')
            return fail(w, q, "expected , or ] in an array");
        q = skip_ws(q + 1, w->end);
    }
}

static int walk_members(walk *w, const char *p, const char *split, ug_jwalk_elem on_elem, void *ctx, json_t *members)
{
    p = skip_ws(p, w->end);
    if (p >= w->end || *p != '{')
        return fail(w, p, "not a JSON object");
    p = skip_ws(p + 1, w->end);
    bool first = true, split_seen = false;
    while (p < w->end && *p != '}') {
        if (!first) {
            if (*p != ',')
                return fail(w, p, "expected , or } in an object");
            p = skip_ws(p + 1, w->end);
        }
        first = false;
        if (p >= w->end || *p != '"')
            return fail(w, p, "expected a member name");
        json_t *key = take(w, &p);
        if (!key)
            return -1;
        p = skip_ws(p, w->end);
        if (p >= w->end || *p != ':') {
            json_decref(key);
            return fail(w, p, "expected : after a member name");
        }
        p = skip_ws(p + 1, w->end);
        int rc = 0;
        bool is_split = split && strcmp(json_string_value(key), split) == 0;
        /* a member named twice is refused (a second split array would hand
         * its rows over again, from 0) */
        if ((is_split && split_seen) || json_object_get(members, json_string_value(key))) {
            rc = fail(w, p, "a member named twice");
        } else if (is_split && p < w->end && *p == '[') {
            split_seen = true;
            rc = walk_array(w, &p, on_elem, ctx);
        } else {
            json_t *v = take(w, &p);
            rc = v ? json_object_set_new(members, json_string_value(key), v) == 0 ? 0 : fail(w, p, "out of memory")
                   : -1;
        }
        json_decref(key);
        if (rc != 0)
            return rc;
        p = skip_ws(p, w->end);
    }
    if (p >= w->end)
        return fail(w, p, "the object does not end");
    if (skip_ws(p + 1, w->end) != w->end)
        return fail(w, skip_ws(p + 1, w->end), "more after the object");
    return 0;
}

int ug_jwalk(const char *text, size_t len, const char *split, ug_jwalk_elem on_elem, void *ctx, json_t **members,
             char *err, size_t errcap)
{
    walk w = {.start = text, .end = text + len, .err = err, .errcap = errcap};
    *members = json_object();
    if (!*members)
        return snprintf(err, errcap, "out of memory"), -1;
    return walk_members(&w, text, split, on_elem, ctx, *members);
}
