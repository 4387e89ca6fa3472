/* libFuzzer: the plugin's whole datagram path through its ABI, from raw bytes,
 * from genuine signed HELLOs, and from genuine HELLOs with bytes flipped. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_env.h"
#include "upgate_plugin.h"

extern const ug_plugin upgate_plugin;

static fz_env env;
static void *inst;
static ug_pubkey hint_key, release_key;

static const char policy[] =
    "keys: {hint: hint.key, issuers: [issuer.pub]}\n"
    "release: release.manifest\n"
    "state: state\n"
    "targets: [\"<100\"]\n"
    "cookie: never\n"
    "source_budget: 0\n"
    "stages:\n"
    "  - {name: region, networks: [10.0.0.0/8, \"2001:db8::/32\"], uid_mod: {div: 3, rem: 1}, quota: 50}\n"
    "  - {name: canary, uids_file: uids.txt}\n"
    "  - {name: pct, percent: 30, quota: 200}\n"
    "  - {name: short, uid_digits_max: 4, plat: [linux-x86_64], chan: [stable]}\n";

static uint64_t fixed_now(void *ctx)
{
    (void)ctx;
    return FZ_NOW;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_env_init(&env, policy);
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/policy.yaml", env.dir);
    ug_host host = {.size = sizeof host, .now = fixed_now, .nworkers = 2};
    inst = upgate_plugin.create(&host, path, err, sizeof err);
    if (!inst) {
        fprintf(stderr, "fuzz_plugin: %s\n", err);
        return -1;
    }
    ug_pubkey_set(&hint_key, env.hint_pk);
    ug_pubkey_set(&release_key, env.release_pk);
    return 0;
}

static const char *const sources[8] = {"10.0.0.1", "10.1.2.3", "192.0.2.1", "127.0.0.1",
                                       "2001:db8::1", "::ffff:10.0.0.5", "2001:dead::1", "0.0.0.0"};
static const char *const versions[8] = {"1.4.2", "0.9", "1.4", "100", "99.9.9.9", "2.0.0", "0", "1.3.0"};

/* A reply must be one of ours, no longer than the request, and a HINT must
 * pass every check a peer will make against the HELLO it answers. */
static void check_reply(const uint8_t *req, size_t req_len, const uint8_t *out, size_t out_len)
{
    assert(out_len <= req_len);
    ug_dgram d;
    assert(ug_dgram_decode(&d, out, out_len, NULL) == 0);
    assert(d.type == UG_TYPE_HINT || d.type == UG_TYPE_WAIT || d.type == UG_TYPE_COOKIE);
    if (d.type != UG_TYPE_HINT)
        return;
    ug_dgram q;
    ug_hello h;
    assert(ug_dgram_decode(&q, req, req_len, NULL) == 0 && ug_hello_decode(&h, q.body, q.body_len, NULL) == 0);
    ug_peer_expect want = {.hint_keys = &hint_key, .nhint_keys = 1, .release_keys = &release_key,
                           .nrelease_keys = 1, .uid = h.uid, .now = FZ_NOW, .current = {.nparts = 1}};
    memcpy(want.nonce, h.nonce, UG_NONCE_LEN);
    ug_hint hint;
    ug_err e;
    assert(ug_hint_verify(&hint, out, out_len, &want, &e) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] & 3, src_i = (data[0] >> 2) & 7, worker = (data[0] >> 5) & 1;
    uint8_t req[UG_DGRAM_MAX + 64];
    size_t len;
    if (mode == 0 || size < 12) { /* raw bytes */
        len = size - 1 < sizeof req ? size - 1 : sizeof req;
        memcpy(req, data + 1, len);
    } else { /* a genuine HELLO, then (mode 2) bytes flipped at chosen places */
        uint64_t uid = 0;
        memcpy(&uid, data + 1, 8);
        uid = (uid & UG_UID_MAX) ? (uid & UG_UID_MAX) : 1;
        if (data[9] & 0x80)
            uid %= 10000; /* small uids reach the uid and digits stages */
        size_t target = UG_HELLO_MIN + (size_t)data[10] * 3;
        len = fz_hello(&env, req, uid, versions[data[9] & 7], target > UG_DGRAM_MAX ? UG_DGRAM_MAX : target,
                       (data[11] & 1) ? "linux-x86_64" : NULL);
        for (size_t i = 12; mode == 2 && i + 1 < size; i += 2)
            req[data[i] * 7u % len] ^= data[i + 1];
    }
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (strchr(sources[src_i], ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(4000);
        inet_pton(AF_INET6, sources[src_i], &s6->sin6_addr);
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(4000);
        inet_pton(AF_INET, sources[src_i], &s4->sin_addr);
        sl = sizeof *s4;
    }
    uint8_t out[UG_DGRAM_MAX];
    size_t out_len = 12345;
    ug_verdict v = upgate_plugin.handle(inst, worker, (struct sockaddr *)&ss, sl, req, len, out, sizeof out, &out_len);
    assert(v == UG_VERDICT_REPLY || v == UG_VERDICT_PASS || v == UG_VERDICT_DROP);
    if (v == UG_VERDICT_DROP)
        assert(out_len == 0);
    if (out_len)
        check_reply(req, len, out, out_len);
    assert(upgate_plugin.flush(inst, worker) == 0);
    return 0;
}
