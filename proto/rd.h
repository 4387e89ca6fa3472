/* The strict msgpack reader every decoder in proto/ uses (proto-internal):
 * one pass over the caller's bytes, no heap, canonical forms only. */
#ifndef UG_RD_H
#define UG_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

/* What one msgpack header said. */
typedef enum {
    UG_RD_UINT,  /* u: the value */
    UG_RD_NEG,   /* a negative int (never valid in upgate; its value is not kept) */
    UG_RD_NIL,
    UG_RD_BOOL,
    UG_RD_FLOAT, /* never valid in upgate */
    UG_RD_STR,   /* ptr, u bytes */
    UG_RD_BIN,   /* ptr, u bytes */
    UG_RD_ARRAY, /* u items follow */
    UG_RD_MAP,   /* u key/value pairs follow */
} ug_rd_kind;

typedef struct {
    ug_rd_kind kind;
    uint64_t u;
    const uint8_t *ptr;
} ug_rd_item;

/* Bytes not yet read: [p, end). */
typedef struct {
    const uint8_t *p, *end;
} ug_rd;

/* Big-endian n-byte number. */
static inline uint64_t ug_rd_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Smallest value each uint form may carry (below it a shorter form fits). */
static const uint64_t ug_rd_uint_floor[4] = {0x80, 0x100, 0x10000, UINT64_C(0x100000000)};
/* Largest value each int form may carry: signed forms are canonical only
 * for negatives too big for the next smaller form. */
static const int64_t ug_rd_int_ceiling[4] = {-33, -129, -32769, -INT64_C(2147483649)};

/* Reads the next object's header, and the payload of a str or bin. Refuses
 * (-1: UG_E_MSGPACK) what the bytes left cannot hold, any header longer than
 * the shortest for its value or length (ints, str, bin, array, map), a
 * signed int form holding a value a shorter form could, the reserved byte
 * 0xc1 and every ext form, and a container when depth is 0; a container's
 * items then follow, each read at depth - 1. Each container item takes at
 * least one byte, so a count beyond the bytes left is refused at once. */
static inline __attribute__((always_inline)) UG_WUR int ug_rd_head(ug_rd *r, unsigned depth, ug_rd_item *it)
{
    it->u = 0, it->ptr = NULL;
    if (r->p >= r->end)
        return -1;
    uint8_t b = *r->p++;
    size_t left = (size_t)(r->end - r->p);
    unsigned hdr;    /* length bytes after the type byte */
    uint64_t floor;  /* smallest canonical length for that header */

    if (b <= 0x7f) {
        it->kind = UG_RD_UINT, it->u = b;
        return 0;
    }
    if (b >= 0xe0) {
        it->kind = UG_RD_NEG;
        return 0;
    }
    if (b <= 0x8f || (b >= 0x90 && b <= 0x9f)) {
        it->kind = b <= 0x8f ? UG_RD_MAP : UG_RD_ARRAY, it->u = b & 0x0f;
        goto container;
    }
    if (b <= 0xbf) {
        it->kind = UG_RD_STR, it->u = b & 0x1f;
        goto raw;
    }
    switch (b) {
    case 0xc0:
        it->kind = UG_RD_NIL;
        return 0;
    case 0xc2: case 0xc3:
        it->kind = UG_RD_BOOL, it->u = b & 1;
        return 0;
    case 0xca: case 0xcb:
        hdr = b == 0xca ? 4 : 8;
        if (left < hdr)
            return -1;
        r->p += hdr;
        it->kind = UG_RD_FLOAT;
        return 0;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        hdr = 1u << (b - 0xcc);
        if (left < hdr)
            return -1;
        it->kind = UG_RD_UINT, it->u = ug_rd_be(r->p, hdr);
        r->p += hdr;
        return it->u < ug_rd_uint_floor[b - 0xcc] ? -1 : 0;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        hdr = 1u << (b - 0xd0);
        if (left < hdr)
            return -1;
        uint64_t v = ug_rd_be(r->p, hdr);
        if (hdr < 8 && ((v >> (8 * hdr - 1)) & 1))
            v |= ~UINT64_C(0) << (8 * hdr); /* sign-extend */
        r->p += hdr;
        it->kind = UG_RD_NEG;
        return (int64_t)v > ug_rd_int_ceiling[b - 0xd0] ? -1 : 0;
    }
    case 0xc4: case 0xc5: case 0xc6:
        hdr = 1u << (b - 0xc4), floor = hdr == 1 ? 0 : hdr == 2 ? 0x100 : 0x10000;
        it->kind = UG_RD_BIN;
        break;
    case 0xd9: case 0xda: case 0xdb:
        hdr = 1u << (b - 0xd9), floor = hdr == 1 ? 32 : hdr == 2 ? 0x100 : 0x10000;
        it->kind = UG_RD_STR;
        break;
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        hdr = (b & 1) ? 4 : 2, floor = hdr == 2 ? 16 : 0x10000;
        it->kind = b <= 0xdd ? UG_RD_ARRAY : UG_RD_MAP;
        break;
    default:
        return -1; /* 0xc1 and every ext form: never in upgate */
    }
    if (left < hdr)
        return -1;
    it->u = ug_rd_be(r->p, hdr);
    r->p += hdr;
    if (it->u < floor)
        return -1;
    if (it->kind != UG_RD_BIN && it->kind != UG_RD_STR)
        goto container;
raw:
    if (it->u > (uint64_t)(r->end - r->p))
        return -1;
    it->ptr = r->p;
    r->p += it->u;
    return 0;
container:
    if (depth == 0)
        return -1;
    /* every item takes a byte at least; u < 2^32, so 2u cannot overflow */
    return (it->kind == UG_RD_MAP ? 2 * it->u : it->u) > (uint64_t)(r->end - r->p) ? -1 : 0;
}


/* Reads (validating as ug_rd_head) the items of the container it, just read
 * at depth. 0 for a non-container (inline: most values are not). */
int ug_rd_skip_container(ug_rd *r, unsigned depth, const ug_rd_item *it) UG_WUR;
static inline UG_WUR int ug_rd_skip_items(ug_rd *r, unsigned depth, const ug_rd_item *it)
{
    return it->kind == UG_RD_ARRAY || it->kind == UG_RD_MAP ? ug_rd_skip_container(r, depth, it) : 0;
}
/* Reads one whole object at depth. */
int ug_rd_skip(ug_rd *r, unsigned depth) UG_WUR;

/* Checks buf[0..len) is exactly one msgpack object nested at most depth
 * deep, canonical throughout: 0, or -1 (a UG_E_MSGPACK fault). */
int ug_rd_whole(const uint8_t *buf, size_t len, unsigned depth) UG_WUR;

/* Sets *err (when the caller gave one) and returns -1. */
static inline int ug_fail(ug_err *err, ug_err e)
{
    if (err)
        *err = e;
    return -1;
}

/* ---- maps matched against a schema ------------------------------------ */

typedef enum {
    UG_RD_F_UINT,     /* positive integer */
    UG_RD_F_BIN,      /* bin of min..max bytes */
    UG_RD_F_STR,      /* UTF-8 str of min..max bytes, no NUL */
    UG_RD_F_SIGNED,   /* [bin, bin(64)] */
    UG_RD_F_STRARRAY, /* array of min..max str, each 1..UG_URL_MAX bytes, UTF-8, no NUL */
    UG_RD_F_ARRAY,    /* array of min..max items of any kind (the caller checks them) */
    UG_RD_F_TRUE,     /* the value true */
} ug_rd_fkind;

typedef struct {
    const char *key;
    uint8_t klen; /* strlen(key), fixed at compile time: no strlen per key */
    uint8_t kind;
    bool required;
    uint16_t min, max;
} ug_rd_field;

#define UG_RD_FIELD(k, kind, req, min, max) {k, sizeof k - 1, kind, req, min, max}

/* A matched value; pointers into the caller's bytes. */
typedef struct {
    bool present;
    uint64_t u;         /* UINT; ARRAY: its item count */
    const uint8_t *ptr; /* BIN, STR: payload; SIGNED, ARRAY: the whole array; STRARRAY: its first item */
    size_t len;         /* BIN, STR: bytes; SIGNED, ARRAY: the whole array's bytes; STRARRAY: items */
    ug_signed obj;      /* SIGNED */
} ug_rd_val;

/* Decodes buf[0..len) as exactly one map, containers nested at most depth
 * deep (the map counts), matching its entries against f[0..n): every key a
 * str listed once in f, every value of its field's kind, every required key
 * present. Errors, in the order a two-pass reader would give them: UG_E_SIZE
 * (len 0 or above UG_OBJ_MAX), UG_E_MSGPACK (anywhere in buf, even after a
 * schema fault), UG_E_SCHEMA. v[i] is f[i]'s value (present false if absent). */
int ug_rd_map(const uint8_t *buf, size_t len, unsigned depth, const ug_rd_field *f, size_t n, ug_rd_val *v,
              ug_err *err) UG_WUR;

/* ug_dgram_decode for the datagram version `version` (1 or 2). */
int ug_dgram_decode_v(ug_dgram *d, const uint8_t *buf, size_t len, unsigned version, ug_err *err) UG_WUR;
/* The outer datagram of a whole HELLO or REPORT of that version and type:
 * d->body stays NULL unless the outer array decoded, so a caller can tell a
 * wrong type (UG_E_HEADER with d->type set) from garbage. */
int ug_dgram_of(ug_dgram *d, unsigned version, ug_type want, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;

#endif
