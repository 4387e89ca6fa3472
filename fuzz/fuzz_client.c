/* libFuzzer harness: libupgate's reply reader (ug_client_receive), state-file and Content-Range parsers, against their contracts. */
#include <string.h>

#include <sodium.h>

#include "../client/download.h"
#include "fuzz_common.h"

/* The peer of vectors/peer.json: every HELLO carries its nonce, so the
 * vector HINTs (the seeds) reach the offer. */
static const uint64_t PEER_UID = 4242;
static const char PEER_VERSION[] = "1.4.2";
static const uint8_t PEER_NONCE[UG_NONCE_LEN] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                                 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

static fz_keys K;
static ug_client *clients[2]; /* HELLOs of 1232 and of 512 bytes */
static ug_peer_expect want;

static uint64_t fixed_now(void *ctx)
{
    (void)ctx;
    return FZ_NOW;
}

static void fixed_nonce(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    memset(buf, 0, len);
    memcpy(buf, PEER_NONCE, len < UG_NONCE_LEN ? len : UG_NONCE_LEN);
}

static ug_client *make_client(size_t hello_size)
{
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = PEER_UID;
    cfg.version = PEER_VERSION;
    cfg.hello_size = hello_size;
    cfg.now = fixed_now;
    cfg.random = fixed_nonce;
    ug_client *c = NULL;
    FZ_CHECK(ug_client_new(&cfg, &c, NULL) == UG_CLIENT_OK, "client");
    ug_cred cred = {.uid = PEER_UID, .exp = FZ_NOW + 86400};
    memcpy(cred.pk, K.client.pub.pk, UG_PK_LEN);
    memcpy(cred.kid, K.issuer.pub.kid, UG_KID_LEN);
    uint8_t body[256], obj[512];
    size_t blen, olen;
    FZ_CHECK(ug_cred_encode_body(body, sizeof body, &blen, &cred) == 0, "cred body");
    FZ_CHECK(ug_signed_encode(obj, sizeof obj, &olen, UG_CTX_CRED, body, blen, K.issuer.sk) == 0, "cred");
    FZ_CHECK(ug_client_set_key(c, K.client.seed) == UG_CLIENT_OK, "key");
    FZ_CHECK(ug_client_set_cred(c, obj, olen) == UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    FZ_CHECK(ug_client_add_hint_key(c, K.hint.pub.pk) == UG_CLIENT_OK, "hint pin");
    FZ_CHECK(ug_client_add_release_key(c, K.release.pub.pk) == UG_CLIENT_OK, "release pin");
    return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_keys_init(&K);
    clients[0] = make_client(UG_DGRAM_MAX);
    clients[1] = make_client(UG_HELLO_MIN);
    want = (ug_peer_expect){.hint_keys = &K.hint.pub, .nhint_keys = 1, .release_keys = &K.release.pub,
                            .nrelease_keys = 1, .uid = PEER_UID, .now = FZ_NOW};
    memcpy(want.nonce, PEER_NONCE, UG_NONCE_LEN);
    FZ_CHECK(ug_version_parse(&want.current, PEER_VERSION, strlen(PEER_VERSION)) == 0, "version");
    return 0;
}

/* An OFFER is exactly what ug_hint_verify accepts, with its fields. */
static void check_offer(const ug_client_offer *o, const uint8_t *data, size_t size)
{
    ug_hint h;
    FZ_CHECK(ug_hint_verify(&h, data, size, &want, NULL) == 0, "an offer that ug_hint_verify refuses");
    FZ_CHECK(o->size == h.rel.size && memcmp(o->hash, h.rel.hash, UG_HASH_LEN) == 0, "offer size or hash");
    FZ_CHECK(o->nurls == h.rel.nurls && h.mirror < h.rel.nurls, "offer urls");
    FZ_CHECK(strcmp(o->urls[0], h.rel.urls[h.mirror]) == 0, "the hinted mirror is not first");
    FZ_CHECK(o->exp == (h.exp < h.rel.exp ? h.exp : h.rel.exp) && o->exp > FZ_NOW, "offer exp");
    ug_version to;
    FZ_CHECK(ug_version_parse(&to, o->to, strlen(o->to)) == 0 && ug_version_cmp(&to, &want.current) > 0,
             "offer version %s", o->to);
}

/* The HELLO after a COOKIE echoes it, under a new signature. */
static void check_cookie_echo(ug_client *c, const uint8_t *data, size_t size)
{
    ug_dgram d;
    ug_cookie k;
    FZ_CHECK(ug_dgram_decode(&d, data, size, NULL) == 0 && d.type == UG_TYPE_COOKIE &&
                 ug_cookie_decode(&k, d.body, d.body_len, NULL) == 0 &&
                 memcmp(k.nonce, PEER_NONCE, UG_NONCE_LEN) == 0,
             "a COOKIE event from something else");
    uint8_t hello[UG_DGRAM_MAX];
    size_t len;
    ug_hello h;
    FZ_CHECK(ug_client_hello(c, hello, sizeof hello, &len) == UG_CLIENT_OK, "HELLO after COOKIE");
    FZ_CHECK(ug_dgram_decode(&d, hello, len, NULL) == 0 && ug_hello_decode(&h, d.body, d.body_len, NULL) == 0 &&
                 h.has_cookie && memcmp(h.cookie, k.cookie, UG_COOKIE_LEN) == 0,
             "the next HELLO does not echo the cookie");
    FZ_CHECK(or_hello_verify(&h, &d, &K.issuer.pub, 1, FZ_NOW, NULL) == 0, "the next HELLO does not verify");
}

static void check_wait(const ug_client_event *ev, const uint8_t *data, size_t size)
{
    ug_dgram d;
    ug_wait w;
    FZ_CHECK(ug_dgram_decode(&d, data, size, NULL) == 0 && d.type == UG_TYPE_WAIT &&
                 ug_wait_decode(&w, d.body, d.body_len, NULL) == 0 &&
                 memcmp(w.nonce, PEER_NONCE, UG_NONCE_LEN) == 0,
             "a WAIT event from something else");
    FZ_CHECK(ev->done != ev->send_now, "a WAIT is final or asks for a resend");
    if (ev->send_now)
        FZ_CHECK(w.why == UG_WHY_TOO_SMALL && ev->retry == 0, "only why=6 asks for a resend");
    else
        FZ_CHECK(ev->retry >= 60 && ev->retry <= 86400, "retry %llu outside 60..86400",
                 (unsigned long long)ev->retry);
}

static void check_receive(ug_client *c, const uint8_t *data, size_t size)
{
    uint8_t a[UG_DGRAM_MAX], b[UG_DGRAM_MAX];
    size_t la, lb;
    ug_client_hello_reset(c);
    FZ_CHECK(ug_client_hello(c, a, sizeof a, &la) == UG_CLIENT_OK, "HELLO");
    const ug_client_event *ev = NULL;
    FZ_CHECK(ug_client_receive(c, data, size, &ev) == UG_CLIENT_OK && ev, "receive");
    switch (ev->type) {
    case UG_CLIENT_EV_OFFER:
        FZ_CHECK(ev->done && !ev->send_now, "an offer ends the exchange");
        check_offer(&ev->offer, data, size);
        break;
    case UG_CLIENT_EV_WAIT: check_wait(ev, data, size); break;
    case UG_CLIENT_EV_COOKIE:
        FZ_CHECK(ev->send_now && !ev->done, "a COOKIE asks for a new HELLO");
        check_cookie_echo(c, data, size);
        break;
    case UG_CLIENT_EV_IGNORED:
        FZ_CHECK(!ev->done && !ev->send_now, "an ignored datagram changed the exchange");
        FZ_CHECK(ev->reason != UG_CLIENT_R_NONE && strcmp(ev->reason_name, ug_err_name((ug_err)ev->reason)) == 0,
                 "reason %d named %s", (int)ev->reason, ev->reason_name);
        FZ_CHECK(!ev->authentic || ev->hint, "authentic but not a HINT");
        FZ_CHECK(ug_hint_verify(&(ug_hint){0}, data, size, &want, NULL) != 0, "ignored a HINT that verifies");
        /* still the same HELLO, byte for byte */
        FZ_CHECK(ug_client_hello(c, b, sizeof b, &lb) == UG_CLIENT_OK && la == lb && memcmp(a, b, la) == 0,
                 "an ignored datagram changed the HELLO");
        break;
    default: FZ_CHECK(0, "event type %d", (int)ev->type);
    }
}

/* The state file: accepted only as "version=V\n" exactly. */
static void check_state(const uint8_t *data, size_t size)
{
    char v[UG_VER_MAX + 1];
    if (ug_client_state_parse_(data, size, v, sizeof v) != 0)
        return;
    size_t n = strlen(v);
    ug_version ver;
    FZ_CHECK(ug_version_parse(&ver, v, n) == 0, "state version %s", v);
    FZ_CHECK(size == 8 + n + 1 && memcmp(data, "version=", 8) == 0 && memcmp(data + 8, v, n) == 0 &&
                 data[size - 1] == '\n',
             "state file accepted in another shape");
}

/* A Content-Range value: accepted only as "bytes N-..." with N its digits. */
static void check_content_range(const uint8_t *data, size_t size)
{
    uint64_t start = 1, total = 1;
    if (ug_client_content_range_((const char *)data, size, &start, &total) != 0)
        return;
    size_t i = 0;
    while (i < size && (data[i] == ' ' || data[i] == '\t'))
        i++;
    FZ_CHECK(size - i > 6 && strncasecmp((const char *)data + i, "bytes ", 6) == 0, "no unit");
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu-", (unsigned long long)start);
    /* leading zeros are the only other way to write N */
    for (i += 6; i < size && data[i] == '0' && data[i + 1 < size ? i + 1 : i] != '-'; i++)
        ;
    FZ_CHECK(size - i >= (size_t)n && memcmp(data + i, digits, (size_t)n) == 0, "start %s", digits);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_state(data, size);
    check_content_range(data, size);
    check_receive(clients[size & 1], data, size);
    return 0;
}
