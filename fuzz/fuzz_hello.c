/* libFuzzer: HELLO bodies, credentials and signed objects, and the tracker's
 * accept/drop pipeline on whole datagrams under the vectors' trusted issuer. */
#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "ug_proto.h"

/* tracker.json: now, window and the one trusted issuer */
#define VEC_NOW UINT64_C(1790000000)
static const uint8_t vec_issuer[UG_PK_LEN] = {
    0x8a, 0x88, 0xe3, 0xdd, 0x74, 0x09, 0xf1, 0x95, 0xfd, 0x52, 0xdb, 0x2d, 0x3c, 0xba, 0x5d, 0x72,
    0xca, 0x67, 0x09, 0xbf, 0x1d, 0x94, 0x12, 0x1b, 0xf3, 0x74, 0x88, 0x01, 0xb4, 0x0f, 0x6f, 0x5c};
static ug_pubkey issuer;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (sodium_init() < 0)
        return -1;
    ug_pubkey_set(&issuer, vec_issuer);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the input as a body, a credential and a signed object */
    ug_hello h;
    if (ug_hello_decode(&h, data, size, NULL) == 0) {
        assert(h.uid >= 1 && h.uid <= UG_UID_MAX);
        assert(strlen(h.plat) <= UG_PLAT_MAX && strlen(h.chan) <= UG_CHAN_MAX);
        assert(h.cred_obj.raw >= data && h.cred_obj.raw + h.cred_obj.raw_len <= data + size);
        assert(h.cred_obj.body > h.cred_obj.raw && h.cred_obj.sig + UG_SIG_LEN == h.cred_obj.raw + h.cred_obj.raw_len);
    }
    ug_cred c;
    (void)ug_cred_decode(&c, data, size, NULL);
    ug_signed s;
    if (ug_signed_decode(&s, data, size, NULL) == 0)
        assert(s.raw == data && s.raw_len == size);

    /* the input as a datagram: what a tracker accepts */
    ug_dgram d;
    if (ug_dgram_decode(&d, data, size, NULL) == 0 && d.type == UG_TYPE_HELLO &&
        ug_hello_decode(&h, d.body, d.body_len, NULL) == 0 &&
        ug_hello_verify(&h, &d, &issuer, 1, VEC_NOW, NULL) == 0) {
        /* accepted: it must hold up to every rule the vectors test */
        assert(size >= UG_HELLO_MIN && size <= UG_DGRAM_MAX);
        assert(h.cred.uid == h.uid && memcmp(h.cred.pk, h.pk, UG_PK_LEN) == 0 && h.cred.exp > VEC_NOW);
        assert(ug_verify(d.sig, UG_CTX_HELLO, d.body, d.body_len, h.pk) == 0);
    }
    return 0;
}
