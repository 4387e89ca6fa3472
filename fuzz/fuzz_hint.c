/* libFuzzer harness: the peer's whole HINT check (section 6) and the manifest/reply decoders. */
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "fuzz_common.h"

/* The peer of vectors/peer.json, copied here so the harness reads no file. */
static const uint64_t PEER_NOW = UINT64_C(1790000000);
static const uint64_t PEER_UID = 4242;
static const char PEER_VERSION[] = "1.4.2";
static const uint8_t PEER_NONCE[UG_NONCE_LEN] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                                 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
static const uint8_t PINNED_HINT[UG_PK_LEN] = {
    0xed, 0x49, 0x28, 0xc6, 0x28, 0xd1, 0xc2, 0xc6, 0xea, 0xe9, 0x03, 0x38, 0x90, 0x59, 0x95, 0x61,
    0x29, 0x59, 0x27, 0x3a, 0x5c, 0x63, 0xf9, 0x36, 0x36, 0xc1, 0x46, 0x14, 0xac, 0x87, 0x37, 0xd1};
static const uint8_t PINNED_RELEASE[UG_PK_LEN] = {
    0xca, 0x93, 0xac, 0x17, 0x05, 0x18, 0x70, 0x71, 0xd6, 0x7b, 0x83, 0xc7, 0xff, 0x0e, 0xfe, 0x81,
    0x08, 0xe8, 0xec, 0x45, 0x30, 0x57, 0x5d, 0x77, 0x26, 0x87, 0x93, 0x33, 0xdb, 0xda, 0xbe, 0x7c};

static ug_pubkey hint_key, release_key;
static ug_peer_expect want;

static const char *const manifest_order[] = {"to", "urls", "size", "hash", "exp", "kid"};
static const char *const hint_order[] = {"uid", "nonce", "ts", "exp", "mirror", "kid", "rel"};
static const char *const wait_order[] = {"nonce", "ts", "retry", "why"};
static const char *const cookie_order[] = {"nonce", "cookie", "ts"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    FZ_CHECK(sodium_init() >= 0, "libsodium");
    ug_pubkey_set(&hint_key, PINNED_HINT);
    ug_pubkey_set(&release_key, PINNED_RELEASE);
    want = (ug_peer_expect){.hint_keys = &hint_key, .nhint_keys = 1, .release_keys = &release_key,
                            .nrelease_keys = 1, .uid = PEER_UID, .now = PEER_NOW};
    memcpy(want.nonce, PEER_NONCE, UG_NONCE_LEN);
    FZ_CHECK(ug_version_parse(&want.current, PEER_VERSION, strlen(PEER_VERSION)) == 0, "version");
    return 0;
}

/* Same length re-encoded whatever the key order; same bytes in the spec's. */
static void same_bytes(const uint8_t *out, size_t n, const uint8_t *body, size_t len, const char *const *order,
                       size_t norder, const char *what)
{
    FZ_CHECK(n == len, "%s of %zu bytes re-encodes to %zu", what, len, n);
    fz_key_ref keys[16];
    int nk = fz_map_keys(body, len, keys, 16);
    FZ_CHECK(nk >= 0, "%s: accepted a non-map", what);
    if (fz_keys_in_order(keys, nk, order, norder))
        FZ_CHECK(memcmp(out, body, n) == 0, "canonical %s re-encodes differently", what);
}

static void check_manifest(const ug_manifest *m, const uint8_t *body, size_t len)
{
    FZ_CHECK(m->nurls >= 1 && m->nurls <= UG_URLS_MAX, "nurls %u", m->nurls);
    for (unsigned i = 0; i < m->nurls; i++) {
        size_t ul = strnlen(m->urls[i], UG_URL_MAX + 1);
        FZ_CHECK(ul >= 8 && ul <= UG_URL_MAX, "url %u of %zu bytes", i, ul);
        FZ_CHECK(strncasecmp(m->urls[i], "http://", 7) == 0 || strncasecmp(m->urls[i], "https://", 8) == 0,
                 "url %u scheme", i);
        for (size_t k = 0; k < ul; k++)
            FZ_CHECK(m->urls[i][k] > 0x20 && m->urls[i][k] < 0x7f, "url %u byte %zu", i, k);
    }
    uint8_t out[UG_OBJ_MAX];
    size_t n = 0;
    FZ_CHECK(ug_manifest_encode_body(out, sizeof out, &n, m) == 0, "manifest re-encode");
    same_bytes(out, n, body, len, manifest_order, 6, "manifest");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug_err e = UG_OK;
    /* the peer's decoders agree with the oracle (the old msgpack-c path) */
    FZ_ORACLE(or_cmp_dgram, data, size);
    FZ_ORACLE(or_cmp_manifest, data, size);
    FZ_ORACLE(or_cmp_hint, data, size);
    FZ_ORACLE(or_cmp_wait, data, size);
    FZ_ORACLE(or_cmp_cookie, data, size);
    ug_hint hint;
    if (ug_hint_verify(&hint, data, size, &want, &e) == 0) {
        FZ_CHECK(e == UG_OK, "accepted with err %d", (int)e);
        /* section 6, re-checked from the outside */
        FZ_CHECK(hint.mirror < hint.rel.nurls, "mirror %llu of %u urls", (unsigned long long)hint.mirror,
                 hint.rel.nurls);
        FZ_CHECK(ug_version_cmp(&hint.rel.to, &want.current) > 0, "offers a version not newer than ours");
        FZ_CHECK(hint.exp > PEER_NOW && hint.rel.exp > PEER_NOW, "expired");
        FZ_CHECK(hint.uid == PEER_UID && memcmp(hint.nonce, PEER_NONCE, UG_NONCE_LEN) == 0, "not ours");
        FZ_CHECK(memcmp(hint.kid, hint_key.kid, UG_KID_LEN) == 0, "HINT kid");
        FZ_CHECK(memcmp(hint.rel.kid, release_key.kid, UG_KID_LEN) == 0, "manifest kid");
        FZ_CHECK(fz_inside(hint.rel_obj.raw, hint.rel_obj.raw_len, data, size), "manifest outside input");
        FZ_CHECK(ug_verify(hint.rel_obj.sig, UG_CTX_RELEASE, hint.rel_obj.body, hint.rel_obj.body_len,
                           PINNED_RELEASE) == 0,
                 "manifest not signed by the pinned release key");
        check_manifest(&hint.rel, hint.rel_obj.body, hint.rel_obj.body_len);
    } else {
        FZ_CHECK(e > UG_OK && e < UG_E_COUNT_, "rejected with err %d", (int)e);
    }

    /* the raw bytes as a manifest body, a HINT body and the unsigned replies */
    ug_manifest m;
    if (ug_manifest_decode(&m, data, size, &e) == 0)
        check_manifest(&m, data, size);
    ug_hint h;
    if (ug_hint_decode(&h, data, size, &e) == 0) {
        FZ_CHECK(fz_inside(h.rel_obj.raw, h.rel_obj.raw_len, data, size), "manifest outside body");
        check_manifest(&h.rel, h.rel_obj.body, h.rel_obj.body_len);
        ug_hint_fields f = {.uid = h.uid, .ts = h.ts, .exp = h.exp, .mirror = h.mirror, .rel = h.rel_obj.raw,
                            .rel_len = h.rel_obj.raw_len};
        memcpy(f.nonce, h.nonce, UG_NONCE_LEN);
        memcpy(f.kid, h.kid, UG_KID_LEN);
        uint8_t out[UG_OBJ_MAX];
        size_t n = 0;
        FZ_CHECK(ug_hint_encode_body(out, sizeof out, &n, &f) == 0, "HINT re-encode");
        same_bytes(out, n, data, size, hint_order, 7, "HINT");
    }
    ug_wait w;
    if (ug_wait_decode(&w, data, size, &e) == 0) {
        uint8_t out[128];
        size_t n = 0;
        FZ_CHECK(ug_wait_encode_body(out, sizeof out, &n, &w) == 0, "WAIT re-encode");
        same_bytes(out, n, data, size, wait_order, 4, "WAIT");
    }
    ug_cookie c;
    if (ug_cookie_decode(&c, data, size, &e) == 0) {
        uint8_t out[128];
        size_t n = 0;
        FZ_CHECK(ug_cookie_encode_body(out, sizeof out, &n, &c) == 0, "COOKIE re-encode");
        same_bytes(out, n, data, size, cookie_order, 3, "COOKIE");
    }
    return 0;
}
