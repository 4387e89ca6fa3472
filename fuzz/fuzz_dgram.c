/* libFuzzer: the outer datagram decoder, then the body decoder its type names. */
#include <assert.h>

#include "ug_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug_dgram d;
    if (ug_dgram_decode(&d, data, size, NULL) != 0)
        return 0;
    assert(size >= 1 && size <= UG_DGRAM_MAX);
    assert(d.body >= data && d.body + d.body_len <= data + size);
    assert((d.sig == NULL) == (d.type == UG_TYPE_WAIT || d.type == UG_TYPE_COOKIE));
    assert(d.type != UG_TYPE_HELLO || size >= UG_HELLO_MIN);
    if (d.sig)
        assert(d.sig >= data && d.sig + UG_SIG_LEN <= data + size);
    switch (d.type) {
    case UG_TYPE_HELLO: {
        ug_hello h;
        if (ug_hello_decode(&h, d.body, d.body_len, NULL) == 0)
            assert(h.uid >= 1 && h.uid <= UG_UID_MAX && h.pad_len <= UG_DGRAM_MAX);
        break;
    }
    case UG_TYPE_HINT: {
        ug_hint h;
        if (ug_hint_decode(&h, d.body, d.body_len, NULL) == 0)
            assert(h.rel.nurls >= 1 && h.rel.nurls <= UG_URLS_MAX);
        break;
    }
    case UG_TYPE_WAIT: {
        ug_wait w;
        (void)ug_wait_decode(&w, d.body, d.body_len, NULL);
        break;
    }
    case UG_TYPE_COOKIE: {
        ug_cookie c;
        (void)ug_cookie_decode(&c, d.body, d.body_len, NULL);
        break;
    }
    }
    return 0;
}
