/* Checked access to a YAML tree: node kinds, mapping keys against a field
 * list, typed values, and the one-line "file:line: key: message" errors. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/yaml_doc.h"

void ug_yone_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

int ug_yfail(const ug_ylog *y, const char *file, size_t line, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (y && y->err && y->errcap) {
        snprintf(y->err, y->errcap, "%s:%zu: %s: %s", file, line, key, msg);
        ug_yone_line(y->err);
    }
    return -1;
}

size_t ug_yline(const ug_ynode *n)
{
    return n ? n->line : 0;
}

bool ug_ytext_is(const ug_ynode *n, const char *s)
{
    size_t l = strlen(s);
    return n && n->kind == UG_Y_SCALAR && n->n == l && memcmp(n->u.text, s, l) == 0;
}

bool ug_yis_null(const ug_ynode *n)
{
    return n && n->kind == UG_Y_SCALAR && n->plain &&
           (n->n == 0 || ug_ytext_is(n, "~") || ug_ytext_is(n, "null") || ug_ytext_is(n, "Null") ||
            ug_ytext_is(n, "NULL"));
}

bool ug_yis_plain(const ug_ynode *n)
{
    return n && n->kind == UG_Y_SCALAR && n->plain && !ug_yis_null(n);
}

const char *ug_ykind_name(const ug_ynode *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case UG_Y_MAP:
        return "a mapping";
    case UG_Y_SEQ:
        return "a list";
    default:
        return ug_yis_null(n) ? "null" : (n->plain ? "a scalar" : "a quoted string");
    }
}

const char *ug_yshow(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = len < cap - 4 ? len : cap - 4, i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n < len)
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

void ug_ykey(char *out, size_t cap, const char *base, const char *key, size_t klen, size_t i)
{
    char k[UG_YAML_SHOW_MAX];
    if (!key)
        snprintf(out, cap, "%s[%zu]", base, i);
    else if (base[0])
        snprintf(out, cap, "%s.%s", base, ug_yshow(k, sizeof k, key, klen));
    else
        snprintf(out, cap, "%s", ug_yshow(k, sizeof k, key, klen));
}

static int unknown_key(const ug_ylog *y, const ug_ynode *k, const char *kp, const ug_yfield *f, size_t nf)
{
    char known[256] = "";
    size_t off = 0;
    for (size_t j = 0; j < nf && off < sizeof known; j++) {
        int w = snprintf(known + off, sizeof known - off, "%s%s", j ? ", " : "", f[j].name);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return UG_YFAIL(y, k, kp, "unknown key (expected one of: %s)", known);
}

int ug_ycollect(const ug_ylog *y, const ug_ynode *m, const char *path, ug_yfield *f, size_t nf)
{
    const char *where = path[0] ? path : "(top)";
    if (!m || m->kind != UG_Y_MAP)
        return UG_YFAIL(y, m, where, "expected a mapping, got %s", ug_ykind_name(m));
    for (uint32_t p = 0; p < m->n; p++) {
        const ug_ynode *k = m->u.items[2 * p], *v = m->u.items[2 * p + 1];
        if (k->kind != UG_Y_SCALAR)
            return UG_YFAIL(y, k, where, "mapping keys must be strings, got %s", ug_ykind_name(k));
        char kp[UG_YAML_KEY_MAX];
        ug_ykey(kp, sizeof kp, path, k->u.text, k->n, 0);
        size_t i;
        for (i = 0; i < nf; i++)
            if (ug_ytext_is(k, f[i].name))
                break;
        if (i == nf)
            return unknown_key(y, k, kp, f, nf);
        if (f[i].key)
            return UG_YFAIL(y, k, kp, "duplicate key (first at line %zu)", ug_yline(f[i].key));
        f[i].key = k;
        f[i].val = v;
    }
    for (size_t i = 0; i < nf; i++) {
        if (f[i].required && !f[i].key) {
            char kp[UG_YAML_KEY_MAX];
            ug_ykey(kp, sizeof kp, path, f[i].name, strlen(f[i].name), 0);
            return UG_YFAIL(y, m, kp, "missing required key");
        }
    }
    return 0;
}

int ug_yget_uint(const ug_ylog *y, const ug_ynode *v, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    char buf[UG_YAML_SHOW_MAX];
    if (!ug_yis_plain(v))
        return UG_YFAIL(y, v, key, "expected an unquoted integer in %" PRIu64 "..%" PRIu64 ", got %s", min, max,
                        ug_ykind_name(v));
    const char *s = v->u.text;
    size_t n = v->n;
    bool ok = n >= 1 && n <= 20 && !(n > 1 && s[0] == '0');
    uint64_t x = 0;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        ok = d <= 9 && x <= (UINT64_MAX - d) / 10;
        x = x * 10 + d;
    }
    if (!ok || x < min || x > max)
        return UG_YFAIL(y, v, key, "expected an integer in %" PRIu64 "..%" PRIu64 ", got \"%s\"", min, max,
                        ug_yshow(buf, sizeof buf, s, n));
    *out = x;
    return 0;
}

int ug_yget_bool(const ug_ylog *y, const ug_ynode *v, const char *key, bool *out)
{
    if (ug_yis_plain(v) && (ug_ytext_is(v, "true") || ug_ytext_is(v, "True") || ug_ytext_is(v, "TRUE"))) {
        *out = true;
        return 0;
    }
    if (ug_yis_plain(v) && (ug_ytext_is(v, "false") || ug_ytext_is(v, "False") || ug_ytext_is(v, "FALSE"))) {
        *out = false;
        return 0;
    }
    char buf[UG_YAML_SHOW_MAX];
    if (v && v->kind == UG_Y_SCALAR && !ug_yis_null(v))
        return UG_YFAIL(y, v, key, "expected true or false, got \"%s\"", ug_yshow(buf, sizeof buf, v->u.text, v->n));
    return UG_YFAIL(y, v, key, "expected true or false, got %s", ug_ykind_name(v));
}

int ug_yget_str(const ug_ylog *y, const ug_ynode *v, const char *key, size_t minlen, size_t maxlen, const char **s,
                size_t *len)
{
    if (!v || v->kind != UG_Y_SCALAR || ug_yis_null(v))
        return UG_YFAIL(y, v, key, "expected a string, got %s", ug_ykind_name(v));
    if (memchr(v->u.text, '\0', v->n))
        return UG_YFAIL(y, v, key, "string contains a NUL byte");
    if (v->n < minlen || v->n > maxlen)
        return UG_YFAIL(y, v, key, "expected %zu..%zu bytes, got %u", minlen, maxlen, (unsigned)v->n);
    *s = v->u.text;
    *len = v->n;
    return 0;
}

int ug_yget_plain(const ug_ylog *y, const ug_ynode *v, const char *key, const char *what, const char **s, size_t *len)
{
    if (!ug_yis_plain(v))
        return UG_YFAIL(y, v, key, "expected an unquoted %s, got %s", what, ug_ykind_name(v));
    *s = v->u.text;
    *len = v->n;
    return 0;
}

int ug_yget_list(const ug_ylog *y, const ug_ynode *v, const char *key, size_t max, ug_ynode *const **items, size_t *n)
{
    if (!v || v->kind != UG_Y_SEQ)
        return UG_YFAIL(y, v, key, "expected a list, got %s", ug_ykind_name(v));
    if (v->n == 0)
        return UG_YFAIL(y, v, key, "empty list (leave the key out instead)");
    if (v->n > max)
        return UG_YFAIL(y, v, key, "%u items, at most %zu allowed", (unsigned)v->n, max);
    *items = v->u.items;
    *n = v->n;
    return 0;
}

int ug_yget_path(const ug_ylog *y, const ug_ynode *v, const char *key, const char *dir, char *out, size_t cap)
{
    const char *s;
    size_t n;
    if (ug_yget_str(y, v, key, 1, cap - 1, &s, &n) != 0)
        return -1;
    int w = s[0] == '/' ? snprintf(out, cap, "%s", s) : snprintf(out, cap, "%s/%s", dir, s);
    if (w < 0 || (size_t)w >= cap)
        return UG_YFAIL(y, v, key, "path too long once resolved (max %zu bytes)", cap - 1);
    return 0;
}
