/* libFuzzer: the peer's HINT checks (protocol section 6) with peer.json's pins,
 * and manifest bodies on their own. */
#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "ug_proto.h"

/* peer.json: pins, clock, uid, nonce, version */
static const uint8_t pin_hint[UG_PK_LEN] = {0xed, 0x49, 0x28, 0xc6, 0x28, 0xd1, 0xc2, 0xc6, 0xea, 0xe9, 0x03, 0x38, 0x90, 0x59, 0x95, 0x61, 0x29, 0x59, 0x27, 0x3a, 0x5c, 0x63, 0xf9, 0x36, 0x36, 0xc1, 0x46, 0x14, 0xac, 0x87, 0x37, 0xd1};
static const uint8_t pin_release[UG_PK_LEN] = {0xca, 0x93, 0xac, 0x17, 0x05, 0x18, 0x70, 0x71, 0xd6, 0x7b, 0x83, 0xc7, 0xff, 0x0e, 0xfe, 0x81, 0x08, 0xe8, 0xec, 0x45, 0x30, 0x57, 0x5d, 0x77, 0x26, 0x87, 0x93, 0x33, 0xdb, 0xda, 0xbe, 0x7c};
static ug_pubkey hint_keys[1], release_keys[1];
static ug_peer_expect want;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (sodium_init() < 0)
        return -1;
    ug_pubkey_set(&hint_keys[0], pin_hint);
    ug_pubkey_set(&release_keys[0], pin_release);
    want = (ug_peer_expect){.hint_keys = hint_keys, .nhint_keys = 1, .release_keys = release_keys,
                            .nrelease_keys = 1, .uid = 4242, .now = UINT64_C(1790000000)};
    for (unsigned i = 0; i < UG_NONCE_LEN; i++)
        want.nonce[i] = (uint8_t)i;
    return ug_version_parse(&want.current, "1.4.2", 5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug_hint h;
    if (ug_hint_verify(&h, data, size, &want, NULL) == 0) {
        /* an accepted HINT passed every check of section 6 */
        assert(h.uid == want.uid && memcmp(h.nonce, want.nonce, UG_NONCE_LEN) == 0);
        assert(h.exp > want.now && h.rel.exp > want.now);
        assert(ug_version_cmp(&h.rel.to, &want.current) > 0);
        assert(h.mirror < h.rel.nurls && h.rel.nurls <= UG_URLS_MAX);
        assert(memcmp(h.kid, hint_keys[0].kid, UG_KID_LEN) == 0);
        assert(memcmp(h.rel.kid, release_keys[0].kid, UG_KID_LEN) == 0);
    }
    ug_manifest m;
    if (ug_manifest_decode(&m, data, size, NULL) == 0) {
        assert(m.nurls >= 1 && m.nurls <= UG_URLS_MAX);
        for (unsigned i = 0; i < m.nurls; i++)
            assert(strlen(m.urls[i]) >= 1 && strlen(m.urls[i]) <= UG_URL_MAX);
    }
    return 0;
}
