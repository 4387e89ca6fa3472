/* UTF-8 validation and bounded msgpack writing on top of msgpack-c (proto-internal);
 * decoding is rd.h's. */
#ifndef UG_MP_H
#define UG_MP_H

#include <msgpack.h>

#include "ug_proto.h"

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

/* ---- shared by the version 1 and 2 datagram code (codec.c) ---------- */

/* [ "UG", version, type, body, sig|nil ]: signed over ctx with sk when ctx
 * is not NULL (then sk must be given), nil otherwise. */
int ug_dgram_seal(uint8_t *out, size_t cap, size_t *len, unsigned version, const char *ctx, ug_type type,
                  const uint8_t *body, size_t body_len, const uint8_t *sk) UG_WUR;
/* Bytes of a datagram around a body of body_len (same for both versions). */
size_t ug_dgram_len(size_t body_len, bool is_signed);
/* The largest pad p whose signed datagram (body of blen bytes without pad,
 * plus the "pad" key, a bin header and p bytes) is at most target and at
 * least floor; SIZE_MAX when none is. */
size_t ug_pad_for(size_t blen, size_t target, size_t floor);

#endif
