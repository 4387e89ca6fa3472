/* libFuzzer harness: version 2 release manifests (ug2_manifest_open, ug2_manifest_decode, the deltas) and the
 * tracker's load check under the vectors' keyring 3. */
#include <string.h>

#include "v2common.h"

static ug2_tracker_keys keys;
static const char *const order[] = {"to", "urls", "size", "hash", "exp", "app", "plat", "chan", "seq",
                                    "urgency", "downgrade", "min_serial", "deltas", "keyring"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz2_init();
    fz2_keyring(&keys.kr, 3);
    keys.cert.serial = 7;
    return 0;
}

static void check_fields(const ug2_manifest *m, const uint8_t *body, size_t len)
{
    FZ_CHECK(m->nurls >= 1 && m->nurls <= UG_URLS_MAX && m->nplat >= 1 && m->nplat <= UG2_PLATS_MAX, "counts");
    FZ_CHECK(m->seq >= 1 && m->seq <= UG2_SEQ_MAX && m->urgency <= 1 && m->ndeltas <= UG2_DELTAS_MAX, "ranges");
    FZ_CHECK(ug2_label_valid(m->app, strlen(m->app), UG2_LABEL_MAX) &&
                 ug2_label_valid(m->chan, strlen(m->chan), UG2_CHAN_MAX), "labels");
    for (unsigned i = 0; i < m->nurls; i++)
        FZ_CHECK(ug_url_valid(m->urls[i], strlen(m->urls[i])), "URL %u", i);
    for (unsigned i = 0; i < m->nplat; i++) {
        FZ_CHECK(ug2_label_valid(m->plat[i], strlen(m->plat[i]), UG2_LABEL_MAX), "platform %u", i);
        for (unsigned j = 0; j < i; j++)
            FZ_CHECK(strcmp(m->plat[i], m->plat[j]) != 0, "platform twice");
    }
    for (unsigned i = 0; i < m->ndeltas; i++) {
        FZ_CHECK(ug_version_cmp(&m->deltas[i].from, &m->to) != 0, "a delta from `to`");
        FZ_CHECK(ug2_manifest_delta_for(m, &m->deltas[i].from) == (int)i, "two deltas from one version");
        for (unsigned u = 0; u < m->deltas[i].nurls; u++)
            FZ_CHECK(ug_url_valid(m->deltas[i].urls[u], strlen(m->deltas[i].urls[u])), "delta URL");
    }
    for (unsigned i = 0; i < m->nkeyring; i++)
        FZ_CHECK(ug2_keyring_url_valid(m->keyring[i], strlen(m->keyring[i])), "keyring URL %u", i);
    static uint8_t out[UG_OBJ_MAX];
    size_t n = 0;
    FZ_CHECK(ug2_manifest_encode_body(out, sizeof out, &n, m) == 0, "manifest re-encode");
    fz2_same_bytes(out, n, body, len, order, 14, "manifest");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ug2_manifest m;
    ug2_multisig ms;
    ug_err e = UG_OK;
    if (ug2_manifest_open(&m, &ms, data, size, &e) == 0)
        check_fields(&m, ms.body, ms.body_len);
    if (ug2_tracker_manifest_check(&m, data, size, &keys, FZ_NOW, &e) == 0) {
        FZ_CHECK(m.exp > FZ_NOW && m.min_serial <= 7, "accepted out of bounds");
        FZ_CHECK(ug2_multisig_count(&ms, UG2_CTX_RELEASE, keys.kr.rel, keys.kr.nrel) >= 2, "threshold");
    }
    if (ug2_manifest_decode(&m, data, size, &e) == 0)
        check_fields(&m, data, size);
    return 0;
}
