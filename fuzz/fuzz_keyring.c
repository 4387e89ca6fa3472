/* libFuzzer harness: keyring documents (ug2_keyring_open) and the chain step from the vectors' anchor and
 * keyring 1, with every accepted document's counts checked again from outside. */
#include <string.h>

#include "v2common.h"

static ug2_keyring anchor, kr1;
static const char *const order[] = {"kv", "exp", "root", "root_t", "rel", "rel_t", "cert", "cert_t",
                                    "min_serial", "urls"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz2_init();
    fz2_anchor(&anchor);
    fz2_keyring(&kr1, 1);
    return 0;
}

static void check_lists(const ug2_keyring *k)
{
    const uint8_t n[3] = {k->nroot, k->nrel, k->ncert}, t[3] = {k->root_t, k->rel_t, k->cert_t};
    const ug_pubkey *l[3] = {k->root, k->rel, k->cert};
    for (int i = 0; i < 3; i++) {
        FZ_CHECK(n[i] >= 1 && n[i] <= UG2_KEYS_MAX && t[i] >= 1 && t[i] <= n[i], "list %d: %u keys, t %u", i,
                 n[i], t[i]);
        for (int a = 0; a < n[i]; a++)
            for (int b = 0; b < a; b++)
                FZ_CHECK(memcmp(l[i][a].kid, l[i][b].kid, UG_KID_LEN) != 0, "list %d: a key twice", i);
    }
    FZ_CHECK(k->kv >= 1 && k->nurls <= UG2_KR_URLS_MAX, "kv %u, %u urls", k->kv, k->nurls);
    for (unsigned i = 0; i < k->nurls; i++)
        FZ_CHECK(ug2_keyring_url_valid(k->urls[i], strlen(k->urls[i])), "keyring URL %u", i);
}

/* An accepted step: the version follows and the thresholds hold, counted again. */
static void check_step(const ug2_keyring *held, bool is_anchor, const ug2_keyring *next, const ug2_multisig *m)
{
    bool rotation = next->kv == held->kv + 1;
    FZ_CHECK(rotation || (is_anchor && next->kv == held->kv), "step from %u to %u", held->kv, next->kv);
    FZ_CHECK(ug2_multisig_count(m, UG2_CTX_KEYRING, held->root, held->nroot) >= held->root_t, "old roots");
    if (rotation)
        FZ_CHECK(ug2_multisig_count(m, UG2_CTX_KEYRING, next->root, next->nroot) >= next->root_t, "own roots");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ug2_keyring k, next;
    ug2_multisig m;
    ug_err e = UG_OK;
    if (ug2_keyring_open(&k, &m, data, size, &e) == 0) {
        check_lists(&k);
        FZ_CHECK(fz_inside(m.body, m.body_len, data, size), "body outside the input");
        uint8_t out[UG_OBJ_MAX];
        size_t n = 0;
        FZ_CHECK(ug2_keyring_encode_body(out, sizeof out, &n, &k) == 0, "keyring re-encode");
        fz2_same_bytes(out, n, m.body, m.body_len, order, 10, "keyring");
    } else {
        FZ_CHECK(e > UG_OK && e < UG_E2_COUNT_ && e != UG_E_COUNT_, "refused with err %d", (int)e);
    }
    if (ug2_keyring_step(&anchor, true, data, size, &next, &e) == 0)
        check_step(&anchor, true, &next, &m);
    if (ug2_keyring_step(&kr1, false, data, size, &next, &e) == 0)
        check_step(&kr1, false, &next, &m);
    /* the raw bytes as a keyring body */
    if (ug2_keyring_decode(&k, data, size, &e) == 0)
        check_lists(&k);
    return 0;
}
