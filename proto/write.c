/* The tracker's hot unsigned replies, WAIT and COOKIE, written straight
 * into the reply buffer: no packer callbacks, no intermediate body. */
#include <string.h>

#include "ug_proto.h"

/* Bytes msgpack needs for the uint v in its shortest form. */
static size_t uint_len(uint64_t v)
{
    return v < 0x80 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffff ? 5 : 9;
}

static uint8_t *put_uint(uint8_t *p, uint64_t v)
{
    static const uint8_t tag[] = {0, 0xcc, 0xcd, 0, 0xce, 0, 0, 0, 0xcf};
    size_t n = uint_len(v) - 1;
    if (n == 0) {
        *p++ = (uint8_t)v;
        return p;
    }
    *p++ = tag[n];
    for (size_t i = n; i-- > 0;)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* A short key as a fixstr; key is a literal. */
#define PUT_KEY(p, k) (*(p)++ = (uint8_t)(0xa0 | (sizeof k - 1)), memcpy((p), k, sizeof k - 1), (p) += sizeof k - 1)

static uint8_t *put_bin16(uint8_t *p, const uint8_t v[16])
{
    *p++ = 0xc4;
    *p++ = 16;
    memcpy(p, v, 16);
    return p + 16;
}

/* "95 a2 55 47 01 TYPE c4 LEN": every body here is under 256 bytes. */
static uint8_t *put_head(uint8_t *p, ug_type t, size_t body_len)
{
    static const uint8_t head[] = {0x95, 0xa2, 'U', 'G', 0x01};
    memcpy(p, head, sizeof head);
    p += sizeof head;
    *p++ = (uint8_t)t;
    *p++ = 0xc4;
    *p++ = (uint8_t)body_len;
    return p;
}

#define HEAD_LEN 8u /* put_head's bytes */

int ug_wait_write(uint8_t *out, size_t cap, size_t *len, const ug_wait *w)
{
    /* map, nonce key + bin16, "ts", "retry", "why" keys and their uints */
    size_t body = 1 + 6 + 18 + 3 + uint_len(w->ts) + 6 + uint_len(w->retry) + 4 + uint_len(w->why);
    size_t total = HEAD_LEN + body + 1;
    if (total > cap)
        return -1;
    uint8_t *p = put_head(out, UG_TYPE_WAIT, body);
    *p++ = 0x84;
    PUT_KEY(p, "nonce");
    p = put_bin16(p, w->nonce);
    PUT_KEY(p, "ts");
    p = put_uint(p, w->ts);
    PUT_KEY(p, "retry");
    p = put_uint(p, w->retry);
    PUT_KEY(p, "why");
    p = put_uint(p, w->why);
    *p++ = 0xc0; /* unsigned: sig nil */
    *len = (size_t)(p - out);
    return 0;
}

int ug_cookie_write(uint8_t *out, size_t cap, size_t *len, const ug_cookie *c)
{
    size_t body = 1 + 6 + 18 + 7 + 18 + 3 + uint_len(c->ts);
    size_t total = HEAD_LEN + body + 1;
    if (total > cap)
        return -1;
    uint8_t *p = put_head(out, UG_TYPE_COOKIE, body);
    *p++ = 0x83;
    PUT_KEY(p, "nonce");
    p = put_bin16(p, c->nonce);
    PUT_KEY(p, "cookie");
    p = put_bin16(p, c->cookie);
    PUT_KEY(p, "ts");
    p = put_uint(p, c->ts);
    *p++ = 0xc0;
    *len = (size_t)(p - out);
    return 0;
}
