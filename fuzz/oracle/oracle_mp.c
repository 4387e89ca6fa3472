/* The oracle's msgpack (see oracle_mp.h): the old pre-scan, tree and schema matching, unchanged. */
#include <string.h>

#include "oracle_mp.h"

static uint64_t be_read(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int64_t be_read_signed(const uint8_t *p, unsigned n)
{
    uint64_t v = be_read(p, n);
    if (n < 8 && ((v >> (8 * n - 1)) & 1))
        v |= ~UINT64_C(0) << (8 * n); /* sign-extend */
    return (int64_t)v;
}

/* Header classes the scanner distinguishes. */
enum { K_SCALAR, K_RAW, K_ARRAY, K_MAP };

/* Walks one object starting at *pp, refusing anything non-canonical, any
 * length or count the remaining bytes cannot hold, and nesting deeper than
 * depth containers. Recursion is bounded by depth, loops by the byte count. */
static int scan_obj(const uint8_t **pp, const uint8_t *end, unsigned depth)
{
    const uint8_t *p = *pp;
    if (p >= end)
        return -1;
    uint8_t b = *p++;
    size_t avail = (size_t)(end - p);
    uint64_t n = 0;
    unsigned hdr = 0; /* bytes of length/value after the type byte */
    int kind = K_SCALAR;

    if (b <= 0x7f || b >= 0xe0) {
        kind = K_SCALAR;
    } else if (b <= 0x8f) {
        kind = K_MAP, n = b & 0x0f;
    } else if (b <= 0x9f) {
        kind = K_ARRAY, n = b & 0x0f;
    } else if (b <= 0xbf) {
        kind = K_RAW, n = b & 0x1f;
    } else {
        switch (b) {
        case 0xc0: case 0xc2: case 0xc3:
            break;
        case 0xca: hdr = 4; break; /* float32: schema refuses it later */
        case 0xcb: hdr = 8; break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf: {
            hdr = 1u << (b - 0xcc);
            if (avail < hdr)
                return -1;
            uint64_t v = be_read(p, hdr);
            static const uint64_t min_for[4] = {0x80, 0x100, 0x10000, UINT64_C(0x100000000)};
            if (v < min_for[b - 0xcc])
                return -1;
            break;
        }
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            hdr = 1u << (b - 0xd0);
            if (avail < hdr)
                return -1;
            int64_t v = be_read_signed(p, hdr);
            /* signed forms are canonical only for negatives too big for the
             * next smaller form */
            static const int64_t max_for[4] = {-33, -129, -32769, -INT64_C(2147483649)};
            if (v > max_for[b - 0xd0])
                return -1;
            break;
        }
        case 0xc4: case 0xd9: hdr = 1; kind = K_RAW; break;
        case 0xc5: case 0xda: hdr = 2; kind = K_RAW; break;
        case 0xc6: case 0xdb: hdr = 4; kind = K_RAW; break;
        case 0xdc: hdr = 2; kind = K_ARRAY; break;
        case 0xdd: hdr = 4; kind = K_ARRAY; break;
        case 0xde: hdr = 2; kind = K_MAP; break;
        case 0xdf: hdr = 4; kind = K_MAP; break;
        default:
            return -1; /* 0xc1 and every ext form: never in upgate */
        }
        if (avail < hdr)
            return -1;
        if (kind != K_SCALAR) {
            n = be_read(p, hdr);
            /* shortest header: fixstr < 32 (bin has no fix form), fix
             * array/map < 16, 8-bit < 256, 16-bit < 65536 */
            uint64_t floor;
            if (hdr == 1)
                floor = (b == 0xd9) ? 32 : 0;
            else if (hdr == 2)
                floor = (kind == K_RAW) ? 0x100 : 16;
            else
                floor = 0x10000;
            if (n < floor)
                return -1;
        }
        p += hdr;
        avail -= hdr;
        if (kind == K_SCALAR) {
            *pp = p;
            return 0;
        }
    }

    switch (kind) {
    case K_RAW:
        if (n > avail)
            return -1;
        p += n;
        break;
    case K_ARRAY:
    case K_MAP: {
        if (depth == 0)
            return -1;
        uint64_t items = (kind == K_MAP) ? n * 2 : n; /* n < 2^32: no overflow */
        if (items > avail) /* every item takes at least one byte */
            return -1;
        for (uint64_t i = 0; i < items; i++)
            if (scan_obj(&p, end, depth - 1) != 0)
                return -1;
        break;
    }
    default:
        break;
    }
    *pp = p;
    return 0;
}

int or_mp_parse(or_mp_doc *doc, const uint8_t *buf, size_t len, unsigned max_depth, ug_err *err)
{
    if (len == 0 || len > UG_OBJ_MAX) {
        *err = UG_E_SIZE;
        return -1;
    }
    const uint8_t *p = buf;
    if (scan_obj(&p, buf + len, max_depth) != 0 || p != buf + len) {
        *err = UG_E_MSGPACK;
        return -1;
    }
    if (!msgpack_zone_init(&doc->zone, 1024)) {
        *err = UG_E_BUFFER;
        return -1;
    }
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack((const char *)buf, len, &off, &doc->zone, &doc->root);
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_zone_destroy(&doc->zone);
        *err = UG_E_MSGPACK;
        return -1;
    }
    return 0;
}

void or_mp_doc_free(or_mp_doc *doc)
{
    msgpack_zone_destroy(&doc->zone);
}

bool or_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        unsigned need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return false;
        if (len - i - 1 < need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

static bool str_ok(const msgpack_object *o, uint32_t min, uint32_t max)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size >= min && o->via.str.size <= max &&
           or_utf8_valid((const uint8_t *)o->via.str.ptr, o->via.str.size);
}

bool or_mp_is_signed(const msgpack_object *v)
{
    return v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size == 2 &&
           v->via.array.ptr[0].type == MSGPACK_OBJECT_BIN &&
           v->via.array.ptr[1].type == MSGPACK_OBJECT_BIN &&
           v->via.array.ptr[1].via.bin.size == UG_SIG_LEN;
}

static bool kind_ok(const msgpack_object *v, const or_field *f)
{
    switch (f->kind) {
    case OR_F_UINT:
        return v->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    case OR_F_BIN:
        return v->type == MSGPACK_OBJECT_BIN && v->via.bin.size >= f->min && v->via.bin.size <= f->max;
    case OR_F_STR:
        return str_ok(v, f->min, f->max);
    case OR_F_SIGNED:
        return or_mp_is_signed(v);
    case OR_F_STRARRAY:
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < f->min || v->via.array.size > f->max)
            return false;
        for (uint32_t i = 0; i < v->via.array.size; i++)
            if (!str_ok(&v->via.array.ptr[i], 1, UG_URL_MAX))
                return false;
        return true;
    }
    return false;
}

int or_mp_fields(const msgpack_object *map, const or_field *fields, size_t n,
                 const msgpack_object **vals, ug_err *err)
{
    *err = UG_E_SCHEMA;
    if (map->type != MSGPACK_OBJECT_MAP || n > 32)
        return -1;
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL;
    for (uint32_t e = 0; e < map->via.map.size; e++) {
        const msgpack_object *k = &map->via.map.ptr[e].key;
        const msgpack_object *v = &map->via.map.ptr[e].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return -1;
        size_t i = 0;
        while (i < n && !(strlen(fields[i].key) == k->via.str.size &&
                          memcmp(fields[i].key, k->via.str.ptr, k->via.str.size) == 0))
            i++;
        if (i == n || vals[i] != NULL || !kind_ok(v, &fields[i]))
            return -1; /* unknown key, duplicate key, or wrong kind */
        vals[i] = v;
    }
    for (size_t i = 0; i < n; i++)
        if (fields[i].required && vals[i] == NULL)
            return -1;
    *err = UG_OK;
    return 0;
}
