/* make bench-decode: instructions per HELLO decode under callgrind, the old
 * path (fuzz/oracle: three pre-scans and three msgpack-c trees) against the
 * single pass (ug_hello_parse), with and without the credential.
 *
 *   build/bench-decode old|new|new+cred N   decodes N HELLOs in decode_loop */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../fuzz/oracle/oracle.h"
#include "ug_proto.h"

static void die(const char *what)
{
    fprintf(stderr, "bench-decode: %s\n", what);
    exit(1);
}

/* A typical 1232-byte HELLO (plat, chan, cookie, pad) under fixed keys. */
static size_t make_hello(uint8_t *out)
{
    uint8_t seed[32], isk[UG_SK_LEN], ipk[UG_PK_LEN], csk[UG_SK_LEN], cpk[UG_PK_LEN];
    memset(seed, 1, sizeof seed);
    crypto_sign_seed_keypair(ipk, isk, seed);
    memset(seed, 2, sizeof seed);
    crypto_sign_seed_keypair(cpk, csk, seed);
    ug_cred c = {.uid = 4242, .exp = 1790086400};
    memcpy(c.pk, cpk, UG_PK_LEN);
    ug_kid(c.kid, ipk);
    uint8_t cb[128], co[256];
    size_t cbl, col, len;
    static const uint8_t cookie[UG_COOKIE_LEN] = {0xaa};
    if (ug_cred_encode_body(cb, sizeof cb, &cbl, &c) || ug_signed_encode(co, sizeof co, &col, UG_CTX_CRED, cb, cbl, isk))
        die("cred");
    ug_hello_fields h = {.uid = 4242, .ver = "1.4.2", .ts = 1790000000, .cred = co, .cred_len = col,
                         .plat = "linux-x86_64", .chan = "stable", .cookie = cookie};
    memcpy(h.pk, cpk, UG_PK_LEN);
    if (ug_hello_build(out, UG_DGRAM_MAX, &len, &h, UG_DGRAM_MAX, csk))
        die("hello");
    return len;
}

enum { OLD, NEW, NEW_CRED };

/* The measured loop (callgrind --toggle-collect=decode_loop). */
__attribute__((noinline)) static uint64_t decode_loop(int mode, const uint8_t *buf, size_t len, long n)
{
    uint64_t sum = 0;
    for (long i = 0; i < n; i++) {
        ug_hello h;
        ug_dgram d;
        int rc;
        if (mode == OLD)
            rc = or_dgram_decode(&d, buf, len, NULL) != 0 || d.type != UG_TYPE_HELLO ||
                 or_hello_decode(&h, d.body, d.body_len, NULL) != 0;
        else
            rc = ug_hello_parse(&h, &d, buf, len, NULL) != 0 ||
                 (mode == NEW_CRED && ug_hello_cred_decode(&h, NULL) != 0);
        if (rc)
            die("decode failed");
        sum += h.uid + h.pad_len + (mode == NEW ? 0 : h.cred.exp);
    }
    return sum;
}

int main(int argc, char **argv)
{
    if (argc != 3 || sodium_init() < 0)
        die("usage: bench-decode old|new|new+cred N");
    int mode = !strcmp(argv[1], "old") ? OLD : !strcmp(argv[1], "new") ? NEW : !strcmp(argv[1], "new+cred") ? NEW_CRED : -1;
    long n = strtol(argv[2], NULL, 10);
    if (mode < 0 || n < 1)
        die("usage: bench-decode old|new|new+cred N");
    uint8_t buf[UG_DGRAM_MAX];
    size_t len = make_hello(buf);
    printf("%s: %zu-byte HELLO x %ld: %llu\n", argv[1], len, n, (unsigned long long)decode_loop(mode, buf, len, n));
    return 0;
}
