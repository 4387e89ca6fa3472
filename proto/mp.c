/* UTF-8 validation and a fixed-buffer msgpack-c packer for the encoders. */
#include <string.h>

#include "mp.h"

bool ug_utf8_valid(const uint8_t *s, size_t len)
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

static int out_write(void *data, const char *buf, size_t len)
{
    ug_mp_out *o = data;
    if (o->overflow || len > o->cap - o->len) {
        o->overflow = true;
        return -1;
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    return 0;
}

void ug_mp_out_init(ug_mp_out *o, uint8_t *buf, size_t cap)
{
    o->p = buf;
    o->cap = cap;
    o->len = 0;
    o->overflow = false;
    msgpack_packer_init(&o->pk, o, out_write);
}

void ug_mp_out_raw(ug_mp_out *o, const void *data, size_t len)
{
    (void)out_write(o, data, len);
}

void ug_mp_out_str(ug_mp_out *o, const char *s, size_t len)
{
    (void)msgpack_pack_str_with_body(&o->pk, s, len);
}

void ug_mp_out_key(ug_mp_out *o, const char *key)
{
    ug_mp_out_str(o, key, strlen(key));
}

void ug_mp_out_bin(ug_mp_out *o, const void *data, size_t len)
{
    (void)msgpack_pack_bin_with_body(&o->pk, data, len);
}

void ug_mp_out_uint(ug_mp_out *o, uint64_t v)
{
    (void)msgpack_pack_uint64(&o->pk, v);
}

int ug_mp_out_done(ug_mp_out *o, size_t *len)
{
    if (o->overflow)
        return -1;
    *len = o->len;
    return 0;
}
