/* The oracle's msgpack: the strict pre-scan, msgpack-c's tree and schema
 * matching that proto/ decoded with before its single-pass reader. Kept
 * unchanged (renamed or_*) so the fuzzers and tests can hold the new reader
 * to exactly the old verdicts. Never linked into the programs or the plugin. */
#ifndef UG_ORACLE_MP_H
#define UG_ORACLE_MP_H

#include <msgpack.h>

#include "ug_proto.h"

/* A parsed msgpack object whose str/bin values point into the caller's bytes. */
typedef struct {
    msgpack_zone zone;
    msgpack_object root;
} or_mp_doc;

/* Accepts exactly one canonical msgpack object spanning all of buf, nested at
 * most max_depth containers deep, then lets msgpack-c build the tree. Every
 * declared length and count is checked against the bytes that remain before
 * msgpack-c sees it, so nothing is allocated for an attacker's claim.
 * Canonical: ints, strings, bins, arrays and maps use their shortest header;
 * the reserved byte 0xc1 is refused. On success free with or_mp_doc_free. */
int or_mp_parse(or_mp_doc *doc, const uint8_t *buf, size_t len, unsigned max_depth, ug_err *err) UG_WUR;
void or_mp_doc_free(or_mp_doc *doc);

typedef enum {
    OR_F_UINT,     /* positive integer */
    OR_F_BIN,      /* bin of min..max bytes */
    OR_F_STR,      /* UTF-8 str of min..max bytes, no NUL */
    OR_F_SIGNED,   /* [bin, bin(64)] */
    OR_F_STRARRAY, /* array of min..max str, each 1..UG_URL_MAX bytes */
} or_field_kind;

typedef struct {
    const char *key;
    or_field_kind kind;
    bool required;
    uint32_t min, max;
} or_field;

/* Matches a map's entries against a schema: every key a str listed once in
 * fields, every value of its kind, every required key present. vals[i] gets
 * the value of fields[i], or NULL when an optional key is absent. */
int or_mp_fields(const msgpack_object *map, const or_field *fields, size_t n,
                 const msgpack_object **vals, ug_err *err) UG_WUR;

/* [bin, bin(64)]: the shape of a signed object. */
bool or_mp_is_signed(const msgpack_object *v);

/* Strict UTF-8 with no NUL: no overlongs, surrogates or code points > 10FFFF. */
bool or_utf8_valid(const uint8_t *s, size_t len);

#endif
