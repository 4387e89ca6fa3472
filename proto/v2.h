/* Internal to proto/'s version 2 files: the pieces their decoders share. */
#ifndef UG_V2_H
#define UG_V2_H

#include "rd.h"
#include "ug_proto2.h"

#define F UG_RD_FIELD

/* The shape [bin, [[bin 8, bin 64] x 1..16]] of buf[0..len), already known
 * to be one canonical msgpack object; m points into buf. */
bool ug2_multisig_shape(ug2_multisig *m, const uint8_t *buf, size_t len);
/* A matched ARRAY value of 2 read as an embedded multi-signed object
 * (UG_E_SCHEMA if misshapen). */
int ug2_multisig_of(ug2_multisig *m, const ug_rd_val *v, ug_err *err) UG_WUR;
/* A str value copied NUL-terminated into dst (cap >= v->len + 1): 0, or
 * -1 when it is not a label of at most max bytes. */
int ug2_label_of(char *dst, const ug_rd_val *v, size_t max) UG_WUR;
/* The next str item of an array whose msgpack is known sound. */
int ug2_next_str(ug_rd *r, const uint8_t **p, size_t *len) UG_WUR;
/* The URLs of a STRARRAY value (its items start at v->ptr, end bounds
 * the enclosing body) into urls, each accepted by ok: 0 or UG_E_STRING. */
int ug2_urls_of(char (*urls)[UG_URL_MAX + 1], uint8_t *n, const ug_rd_val *v, const uint8_t *end,
                bool (*ok)(const char *, size_t), ug_err *err) UG_WUR;

#endif
