/* Strict msgpack reading and bounded writing on top of msgpack-c (proto-internal). */
#ifndef UG_MP_H
#define UG_MP_H

#include <msgpack.h>

#include "ug_proto.h"

/* A parsed msgpack object whose str/bin values point into the caller's bytes. */
typedef struct {
    msgpack_zone zone;
    msgpack_object root;
} ug_mp_doc;

/* Accepts exactly one canonical msgpack object spanning all of buf, nested at
 * most max_depth containers deep, then lets msgpack-c build the tree. Every
 * declared length and count is checked against the bytes that remain before
 * msgpack-c sees it, so nothing is allocated for an attacker's claim.
 * Canonical: ints, strings, bins, arrays and maps use their shortest header;
 * the reserved byte 0xc1 is refused. On success free with ug_mp_doc_free. */
int ug_mp_parse(ug_mp_doc *doc, const uint8_t *buf, size_t len, unsigned max_depth, ug_err *err) UG_WUR;
void ug_mp_doc_free(ug_mp_doc *doc);

typedef enum {
    UG_F_UINT,     /* positive integer */
    UG_F_BIN,      /* bin of min..max bytes */
    UG_F_STR,      /* UTF-8 str of min..max bytes, no NUL */
    UG_F_SIGNED,   /* [bin, bin(64)] */
    UG_F_STRARRAY, /* array of min..max str, each 1..UG_URL_MAX bytes */
} ug_field_kind;

typedef struct {
    const char *key;
    ug_field_kind kind;
    bool required;
    uint32_t min, max;
} ug_field;

/* Matches a map's entries against a schema: every key a str listed once in
 * fields, every value of its kind, every required key present. vals[i] gets
 * the value of fields[i], or NULL when an optional key is absent. */
int ug_mp_fields(const msgpack_object *map, const ug_field *fields, size_t n,
                 const msgpack_object **vals, ug_err *err) UG_WUR;

/* [bin, bin(64)]: the shape of a signed object. */
bool ug_mp_is_signed(const msgpack_object *v);

/* Strict UTF-8 with no NUL: no overlongs, surrogates or code points > 10FFFF. */
bool ug_utf8_valid(const uint8_t *s, size_t len);

/* A msgpack-c packer writing into a fixed buffer; overflow is sticky. */
typedef struct {
    uint8_t *p;
    size_t cap, len;
    bool overflow;
    msgpack_packer pk;
} ug_mp_out;

void ug_mp_out_init(ug_mp_out *o, uint8_t *buf, size_t cap);
void ug_mp_out_raw(ug_mp_out *o, const void *data, size_t len);
void ug_mp_out_str(ug_mp_out *o, const char *s, size_t len);
void ug_mp_out_key(ug_mp_out *o, const char *key);
void ug_mp_out_bin(ug_mp_out *o, const void *data, size_t len);
void ug_mp_out_uint(ug_mp_out *o, uint64_t v);
/* 0 and *len set, or -1 with UG_E_BUFFER semantics if anything overflowed. */
int ug_mp_out_done(ug_mp_out *o, size_t *len) UG_WUR;

#endif
