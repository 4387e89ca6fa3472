/* make bench: throughput of the tracker's paths, single worker, in-process. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <sodium.h>

#include "upgate_plugin.h"
#include "ug_proto.h"

extern const ug_plugin upgate_plugin;

static char dir[64];
static uint8_t client_sk[UG_SK_LEN], client_pk[UG_PK_LEN], issuer_sk[UG_SK_LEN], issuer_pk[UG_PK_LEN];
static uint64_t clock_now = 1790000000;

static void die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

static void keypair(const char *name, uint8_t *sk, uint8_t *pk)
{
    uint8_t seed[32];
    char path[128], why[128];
    randombytes_buf(seed, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    if (ug_keyfile_write(path, seed, 32, true, why, sizeof why))
        die(why);
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    if (ug_keyfile_write(path, pk, 32, false, why, sizeof why))
        die(why);
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f))
        die(path);
}

static size_t hello(uint8_t *out, uint64_t uid, const char *ver)
{
    ug_cred c = {.uid = uid, .exp = clock_now + 86400};
    memcpy(c.pk, client_pk, 32);
    ug_kid(c.kid, issuer_pk);
    uint8_t cb[128], co[256];
    size_t cbl, col, len;
    if (ug_cred_encode_body(cb, sizeof cb, &cbl, &c) || ug_signed_encode(co, sizeof co, &col, UG_CTX_CRED, cb, cbl, issuer_sk))
        die("cred");
    ug_hello_fields h = {.uid = uid, .ver = ver, .ts = clock_now, .cred = co, .cred_len = col};
    randombytes_buf(h.nonce, 16);
    memcpy(h.pk, client_pk, 32);
    if (ug_hello_build(out, UG_DGRAM_MAX, &len, &h, 1232, client_sk))
        die("hello");
    return len;
}

static uint64_t host_now(void *ctx)
{
    (void)ctx;
    return clock_now;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Runs n datagrams (cycling through msgs) through handle()+flush() in
 * batches of 64, like the node, and prints datagrams per second. With
 * fresh_ports every datagram comes from another port, so none of them is a
 * retransmit the plugin remembers. */
static void run(void *inst, const char *name, uint8_t (*msgs)[UG_DGRAM_MAX], size_t *lens, size_t nmsgs, size_t n,
                bool fresh_ports)
{
    static uint16_t next_port = 1024;
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(4000)};
    inet_pton(AF_INET, "10.1.2.3", &src.sin_addr);
    uint8_t out[UG_DGRAM_MAX];
    double t0 = seconds();
    for (size_t i = 0; i < n; i++) {
        size_t out_len;
        if (fresh_ports)
            src.sin_port = htons(next_port++ | 1024);
        upgate_plugin.handle(inst, 0, (struct sockaddr *)&src, sizeof src, msgs[i % nmsgs], lens[i % nmsgs], out,
                             sizeof out, &out_len);
        if (i % 64 == 63 && upgate_plugin.flush(inst, 0) != 0)
            die("flush");
    }
    if (upgate_plugin.flush(inst, 0) != 0)
        die("flush");
    double dt = seconds() - t0;
    if (name)
        printf("  %-52s %9.0f /s  (%6.2f us each)\n", name, (double)n / dt, dt / (double)n * 1e6);
}

int main(void)
{
    if (sodium_init() < 0)
        die("sodium");
    snprintf(dir, sizeof dir, "/tmp/ugbench.XXXXXX");
    if (!mkdtemp(dir))
        die("mkdtemp");
    uint8_t hint_sk[64], hint_pk[32], rel_sk[64], rel_pk[32];
    keypair("hint", hint_sk, hint_pk);
    keypair("issuer", issuer_sk, issuer_pk);
    keypair("release", rel_sk, rel_pk);
    keypair("client", client_sk, client_pk);
    ug_manifest m = {.size = 1, .exp = clock_now + 86400 * 365, .nurls = 1};
    if (ug_version_parse(&m.to, "2.0", 3))
        die("version");
    snprintf(m.urls[0], sizeof m.urls[0], "https://dl.example.net/app-2.0.bin");
    ug_kid(m.kid, rel_pk);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t bl, ol;
    if (ug_manifest_encode_body(body, sizeof body, &bl, &m) ||
        ug_signed_encode(obj, sizeof obj, &ol, UG_CTX_RELEASE, body, bl, rel_sk))
        die("manifest");
    write_file("release.manifest", obj, ol);
    static const char policy[] = "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\n"
                                 "state: state\ntargets: [\"1.4.0\"]\ncookie: never\nsource_budget: 0\nstages:\n"
                                 "  - {name: q, networks: [10.0.0.0/8], uid_mod: {div: 3, rem: 1}, quota: 1000000}\n";
    write_file("policy.yaml", policy, sizeof policy - 1);
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/policy.yaml", dir);
    ug_host host = {.size = sizeof host, .now = host_now, .nworkers = 1};
    void *inst = upgate_plugin.create(&host, path, err, sizeof err);
    if (!inst)
        die(err);

    enum { N = 2000 };
    static uint8_t msgs[N][UG_DGRAM_MAX];
    static size_t lens[N];
    printf("upgate bench (1 worker, 1232-byte HELLOs, batches of 64)\n");

    for (size_t i = 0; i < N; i++)
        lens[i] = hello(msgs[i], 3 * i + 1, "1.9");
    run(inst, "untargeted -> WAIT (no signature check)", msgs, lens, N, 200000, true);

    static uint8_t junk[N][UG_DGRAM_MAX];
    static size_t jlens[N];
    for (size_t i = 0; i < N; i++) {
        memcpy(junk[i], msgs[i], lens[i]);
        junk[i][7 + i % 100] ^= 0x5a; /* malformed somewhere in the body */
        jlens[i] = lens[i];
    }
    run(inst, "malformed -> silent drop", junk, jlens, N, 200000, true);

    for (size_t i = 0; i < N; i++)
        lens[i] = hello(msgs[i], 3 * i + 2, "1.4.0"); /* 2 mod 3: verified, not selected */
    run(inst, "new peer: 2 Ed25519 checks -> WAIT", msgs, lens, N, N, true);
    run(inst, "known credential: 1 Ed25519 check -> WAIT", msgs, lens, N, N, true);
    /* 2000 peers in flight, each resending: answer once, then measure */
    run(inst, NULL, msgs, lens, N, N, false);
    run(inst, "retransmit of 2000 peers -> remembered answer", msgs, lens, N, 200000, false);

    for (size_t i = 0; i < N; i++)
        lens[i] = hello(msgs[i], 3 * i + 1, "1.4.0");
    run(inst, "new grant -> HINT (2 checks + sign + LMDB commit)", msgs, lens, N, N, true);
    run(inst, "sticky re-offer -> HINT (1 check + sign)", msgs, lens, N, 4 * N, true);

    ug_stat st[64];
    size_t k = upgate_plugin.stats(inst, st, 64);
    for (size_t j = 0; j < k && j < 64; j++)
        if (!strcmp(st[j].name, "retransmits_answered"))
            printf("  retransmits answered from memory: %llu of 200000\n", (unsigned long long)st[j].value);

    upgate_plugin.destroy(inst);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        die("cleanup");
    return 0;
}
