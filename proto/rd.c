/* The strict single-pass msgpack reader and schema matching (see rd.h). */
#include <string.h>

#include "mp.h"
#include "rd.h"

int ug_rd_skip_container(ug_rd *r, unsigned depth, const ug_rd_item *it)
{
    uint64_t items = it->kind == UG_RD_MAP ? 2 * it->u : it->u; /* bounded by the bytes left */
    for (uint64_t i = 0; i < items; i++)
        if (ug_rd_skip(r, depth - 1) != 0)
            return -1;
    return 0;
}

int ug_rd_skip(ug_rd *r, unsigned depth)
{
    ug_rd_item it;
    /* recursion is bounded by depth (at most 2 in upgate), loops by the bytes */
    return ug_rd_head(r, depth, &it) == 0 ? ug_rd_skip_items(r, depth, &it) : -1;
}

int ug_rd_whole(const uint8_t *buf, size_t len, unsigned depth)
{
    ug_rd r = {buf, buf + len};
    return ug_rd_skip(&r, depth) == 0 && r.p == r.end ? 0 : -1;
}

/* A str value as upgate takes it: min..max bytes of UTF-8 without NUL. */
static bool str_ok(const ug_rd_item *it, uint64_t min, uint64_t max)
{
    return it->kind == UG_RD_STR && it->u >= min && it->u <= max && ug_utf8_valid(it->ptr, it->u);
}

/* Reads one value at depth into v and says (*ok) whether it has f's kind.
 * Always consumes the whole value; -1 only on a msgpack fault. */
static int read_value(ug_rd *r, unsigned depth, const ug_rd_field *f, ug_rd_val *v, bool *ok)
{
    const uint8_t *start = r->p;
    ug_rd_item it, a, b;
    *ok = false;
    if (ug_rd_head(r, depth, &it) != 0)
        return -1;
    switch (f->kind) {
    case UG_RD_F_UINT:
        *ok = it.kind == UG_RD_UINT;
        v->u = it.u;
        break;
    case UG_RD_F_BIN:
        *ok = it.kind == UG_RD_BIN && it.u >= f->min && it.u <= f->max;
        v->ptr = it.ptr, v->len = (size_t)it.u;
        break;
    case UG_RD_F_STR:
        *ok = str_ok(&it, f->min, f->max);
        v->ptr = it.ptr, v->len = (size_t)it.u;
        break;
    case UG_RD_F_SIGNED:
        if (it.kind != UG_RD_ARRAY || it.u != 2)
            break;
        if (ug_rd_head(r, depth - 1, &a) != 0 || ug_rd_skip_items(r, depth - 1, &a) != 0 ||
            ug_rd_head(r, depth - 1, &b) != 0 || ug_rd_skip_items(r, depth - 1, &b) != 0)
            return -1;
        *ok = a.kind == UG_RD_BIN && b.kind == UG_RD_BIN && b.u == UG_SIG_LEN;
        v->ptr = v->obj.raw = start;
        v->len = v->obj.raw_len = (size_t)(r->p - start);
        v->obj.body = a.ptr, v->obj.body_len = (size_t)a.u, v->obj.sig = b.ptr;
        return 0;
    case UG_RD_F_ARRAY:
        if (ug_rd_skip_items(r, depth, &it) != 0)
            return -1;
        *ok = it.kind == UG_RD_ARRAY && it.u >= f->min && it.u <= f->max;
        v->ptr = start, v->len = (size_t)(r->p - start), v->u = it.u;
        return 0;
    case UG_RD_F_TRUE:
        *ok = it.kind == UG_RD_BOOL && it.u == 1;
        break;
    case UG_RD_F_STRARRAY:
        if (it.kind != UG_RD_ARRAY || it.u < f->min || it.u > f->max)
            break;
        v->ptr = r->p, v->len = (size_t)it.u;
        *ok = true;
        for (uint64_t i = 0; i < it.u; i++) {
            if (ug_rd_head(r, depth - 1, &a) != 0 || ug_rd_skip_items(r, depth - 1, &a) != 0)
                return -1;
            *ok = *ok && str_ok(&a, 1, UG_URL_MAX);
        }
        return 0;
    }
    return ug_rd_skip_items(r, depth, &it); /* a wrong kind's items still have to be canonical */
}

static bool same_key(const char *a, const uint8_t *b, size_t len)
{
    for (size_t i = 0; i < len; i++) /* keys are a few bytes: no call to memcmp */
        if ((uint8_t)a[i] != b[i])
            return false;
    return true;
}

/* Index of the field named key[0..len) in f[0..n), or n. Senders emit the
 * spec's order, so the field after the last one found (*next) is tried
 * first; then every field, length before bytes. */
static size_t field_index(const ug_rd_field *f, size_t n, size_t *next, const uint8_t *key, uint64_t len)
{
    size_t i = *next;
    if (i < n && f[i].klen == len && same_key(f[i].key, key, len))
        return (*next = i + 1) - 1;
    for (i = 0; i < n; i++)
        if (f[i].klen == len && same_key(f[i].key, key, len))
            return (*next = i + 1) - 1;
    return n;
}

int ug_rd_map(const uint8_t *buf, size_t len, unsigned depth, const ug_rd_field *f, size_t n, ug_rd_val *v,
              ug_err *err)
{
    if (len == 0 || len > UG_OBJ_MAX) {
        *err = UG_E_SIZE;
        return -1;
    }
    ug_rd r = {buf, buf + len};
    ug_rd_item m, key;
    size_t next = 0;
    bool schema_ok = true; /* a schema fault is reported only if the msgpack is sound to the end */
    for (size_t i = 0; i < n; i++)
        v[i].present = false;
    if (ug_rd_head(&r, depth, &m) != 0)
        goto msgpack;
    if (m.kind != UG_RD_MAP) {
        schema_ok = false;
        if (ug_rd_skip_items(&r, depth, &m) != 0)
            goto msgpack;
    } else {
        for (uint64_t e = 0; e < m.u; e++) {
            if (ug_rd_head(&r, depth - 1, &key) != 0)
                goto msgpack;
            size_t i = schema_ok && key.kind == UG_RD_STR ? field_index(f, n, &next, key.ptr, key.u) : n;
            bool ok = false;
            if (i == n || v[i].present) { /* not a str, unknown, duplicate, or past a fault */
                schema_ok = false;
                if (ug_rd_skip_items(&r, depth - 1, &key) != 0 || ug_rd_skip(&r, depth - 1) != 0)
                    goto msgpack;
                continue;
            }
            if (read_value(&r, depth - 1, &f[i], &v[i], &ok) != 0)
                goto msgpack;
            v[i].present = true;
            schema_ok = schema_ok && ok;
        }
    }
    if (r.p != r.end)
        goto msgpack;
    for (size_t i = 0; i < n && schema_ok; i++)
        schema_ok = v[i].present || !f[i].required;
    *err = schema_ok ? UG_OK : UG_E_SCHEMA;
    return schema_ok ? 0 : -1;
msgpack:
    *err = UG_E_MSGPACK;
    return -1;
}
