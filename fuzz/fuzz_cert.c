/* libFuzzer harness: hint certificates (ug2_cert_open, ug2_cert_decode) and the certificate rules under the
 * vectors' keyring 3, at the vectors' clock. */
#include <string.h>

#include "v2common.h"

static ug2_keyring kr3;
static const char *const order[] = {"pk", "kid", "serial", "nbf", "exp", "kv", "trk"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz2_init();
    fz2_keyring(&kr3, 3);
    return 0;
}

static void check_fields(const ug2_cert *c, const uint8_t *body, size_t len)
{
    uint8_t kid[UG_KID_LEN], out[UG_OBJ_MAX];
    size_t n = 0;
    ug_kid(kid, c->pk);
    FZ_CHECK(memcmp(kid, c->kid, UG_KID_LEN) == 0, "kid is not the key's");
    FZ_CHECK(c->kv >= 1, "kv 0");
    FZ_CHECK(!c->trk[0] || ug2_label_valid(c->trk, strlen(c->trk), UG2_LABEL_MAX), "tracker name");
    FZ_CHECK(ug2_cert_encode_body(out, sizeof out, &n, c) == 0, "certificate re-encode");
    fz2_same_bytes(out, n, body, len, order, 7, "certificate");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug2_cert c;
    ug2_multisig m;
    ug_err e = UG_OK;
    if (ug2_cert_open(&c, &m, data, size, &e) == 0) {
        check_fields(&c, m.body, m.body_len);
        ug2_cert_ctx x = {.kr = &kr3, .min_serial = kr3.min_serial, .tracker = "eu-1", .now = FZ_NOW};
        uint32_t need = 0;
        if (ug2_cert_check(&c, &m, &x, FZ_NOW, &need, &e) == 0) {
            FZ_CHECK(c.kv <= kr3.kv && c.serial >= 5 && c.nbf <= FZ_NOW && c.exp > FZ_NOW, "accepted out of bounds");
            FZ_CHECK(c.exp - c.nbf <= UG2_CERT_LIFE_MAX, "lifetime");
            FZ_CHECK(!c.trk[0] || strcmp(c.trk, "eu-1") == 0, "tracker");
            FZ_CHECK(ug2_multisig_count(&m, UG2_CTX_CERT, kr3.cert, kr3.ncert) >= 1, "threshold");
        } else {
            FZ_CHECK(e != UG_E_KEYRING || need == c.kv, "needs %u for a certificate of %u", need, c.kv);
        }
    }
    if (ug2_cert_decode(&c, data, size, &e) == 0)
        check_fields(&c, data, size);
    return 0;
}
