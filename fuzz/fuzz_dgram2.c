/* libFuzzer harness: version 2 datagrams: the peer's HINT check (as peer.json's peer), the tracker's HELLO
 * (parse and decode paths agree) and REPORT decoders, and HINT bodies re-encoded. */
#include <string.h>

#include "v2common.h"

static ug2_peer peer;
static const char *const hint_order[] = {"uid", "nonce", "ts", "exp", "mirror", "kv", "cert", "rel", "delta"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz2_init();
    fz2_peer(&peer);
    return 0;
}

/* An accepted HINT: section 5.4 re-checked from outside. */
static void check_hint(const ug2_hint *h)
{
    const ug2_manifest *m = &h->rel;
    FZ_CHECK(h->uid == peer.uid && memcmp(h->nonce, peer.nonce, UG_NONCE_LEN) == 0, "not ours");
    FZ_CHECK(h->exp > FZ_NOW && m->exp > FZ_NOW && h->cert.exp > FZ_NOW && h->cert.serial >= 5, "times or serial");
    FZ_CHECK(m->min_serial <= h->cert.serial, "revoked by its own manifest");
    FZ_CHECK(strcmp(m->app, peer.app) == 0 && strcmp(m->chan, peer.chan) == 0, "app or channel");
    FZ_CHECK(m->seq >= peer.seq_hi && h->mirror < m->nurls, "seq or mirror");
    int cmp = ug_version_cmp(&m->to, &peer.current);
    FZ_CHECK(cmp > 0 || (cmp < 0 && m->downgrade && m->seq > peer.seq_hi), "rollback");
    FZ_CHECK(!h->has_delta || (h->delta < m->ndeltas && ug_version_cmp(&m->deltas[h->delta].from, &peer.current) == 0),
             "delta");
    FZ_CHECK(ug2_multisig_count(&h->rel_obj, UG2_CTX_RELEASE, peer.kr.rel, peer.kr.nrel) >= peer.kr.rel_t, "rel");
    FZ_CHECK(ug2_multisig_count(&h->cert_obj, UG2_CTX_CERT, peer.kr.cert, peer.kr.ncert) >= peer.kr.cert_t, "cert");
}

static void hint_reencode(const ug2_hint *h, const uint8_t *body, size_t len)
{
    ug2_hint_fields f = {.uid = h->uid, .ts = h->ts, .exp = h->exp, .mirror = h->mirror, .kv = h->kv,
                         .cert = h->cert_obj.raw, .cert_len = h->cert_obj.raw_len, .rel = h->rel_obj.raw,
                         .rel_len = h->rel_obj.raw_len, .has_delta = h->has_delta, .delta = h->delta};
    memcpy(f.nonce, h->nonce, UG_NONCE_LEN);
    uint8_t out[UG_OBJ_MAX];
    size_t n = 0;
    FZ_CHECK(ug2_hint_encode_body(out, sizeof out, &n, &f) == 0, "HINT re-encode");
    fz2_same_bytes(out, n, body, len, hint_order, 9, "HINT");
}

/* The tracker's two paths through a HELLO give one verdict and reason. */
static void hello_paths(const uint8_t *data, size_t size)
{
    static ug2_hello a, b;
    ug_dgram d;
    ug_err ea = UG_OK, eb = UG_OK;
    int ra = ug2_hello_parse(&a, &d, data, size, &ea);
    if (ra == 0)
        ra = ug_hello_cred_decode(&a.base, &ea);
    int rb = ug2_dgram_decode(&d, data, size, &eb);
    if (rb == 0 && d.type != UG_TYPE_HELLO)
        rb = -1, eb = UG_E_HEADER;
    if (rb == 0)
        rb = ug2_hello_decode(&b, d.body, d.body_len, &eb);
    FZ_CHECK(ra == rb && (ra == 0 || ea == eb), "HELLO parse %d (%s), decode %d (%s)", ra, ug_err_name(ea), rb,
             ug_err_name(eb));
    if (ra == 0)
        FZ_CHECK(a.base.uid == b.base.uid && a.kv == b.kv && strcmp(a.app, b.app) == 0 && a.base.cred.exp == b.base.cred.exp,
                 "HELLO paths read different fields");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ug2_hint h;
    ug_err e = UG_OK;
    uint32_t need = 0;
    if (ug2_hint_verify(&h, data, size, &peer, &need, &e) == 0)
        check_hint(&h);
    else
        FZ_CHECK(e > UG_OK && e < UG_E2_COUNT_ && e != UG_E_COUNT_, "refused with err %d", (int)e);
    hello_paths(data, size);
    static ug2_report r;
    ug_dgram d;
    if (ug2_report_parse(&r, &d, data, size, &e) == 0)
        FZ_CHECK(r.via < UG2_VIA_COUNT_ && r.base.res < UG_RES_COUNT_ && r.base.uid >= 1, "REPORT ranges");
    if (ug2_hint_decode(&h, data, size, &e) == 0)
        hint_reencode(&h, data, size);
    return 0;
}
