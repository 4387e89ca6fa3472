/* Shared by the libFuzzer harnesses: the spec vectors' keys, scratch dirs, invariant checks. */
#ifndef UG_FUZZ_COMMON_H
#define UG_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oracle/oracle.h"
#include "ug_proto.h"

/* The vectors' clock (tracker.json and peer.json "now"). */
#define FZ_NOW UINT64_C(1790000000)

/* A failed invariant is a finding: say which and abort so libFuzzer keeps
 * the input and prints the stack. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                       \
    } while (0)

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* The new decoder and the oracle (fuzz/oracle: the old msgpack-c path) must
 * give the same verdict, reason and fields: cmp is one of or_cmp_*. */
#define FZ_ORACLE(cmp, buf, len)                                                                   \
    do {                                                                                           \
        or_msg fz_m_;                                                                              \
        const char *fz_d_ = cmp((buf), (len), &fz_m_);                                             \
        FZ_CHECK(fz_d_ == NULL, "oracle disagrees: %s", fz_d_);                                    \
    } while (0)

/* The five signers of vectors/keys.json, rebuilt from their published seeds
 * (01..01, 02..02, ...) so no harness reads a file at run time. */
typedef struct {
    uint8_t sk[UG_SK_LEN];
    uint8_t seed[UG_SEED_LEN];
    ug_pubkey pub;
} fz_key;

typedef struct {
    fz_key issuer, client, hint, release, stranger;
} fz_keys;

/* Fills k (libsodium initialised here) and aborts if a derived public key
 * differs from the one keys.json publishes. */
void fz_keys_init(fz_keys *k);

/* A fresh private dir, on tmpfs when there is one (the plugin commits to
 * LMDB and the policy harness rewrites a file on every input), removed at
 * exit. Aborts on failure: a harness without its files tests nothing. */
const char *fz_tmpdir(const char *tag);
/* dir/name with exactly these bytes (replacing any old file). */
void fz_write(const char *dir, const char *name, const void *data, size_t len);
/* dir/name as a key file, through the project's own writer. */
void fz_write_key(const char *dir, const char *name, const uint8_t *data, size_t n, bool secret);

/* Writes hint.key, issuer.pub, stranger.pub, release.pub and
 * release.manifest (2.0.0, two mirrors, signed by the release key) into dir;
 * returns the manifest's signed object length, its bytes in out. */
size_t fz_write_release(const char *dir, const fz_keys *k, uint8_t *out, size_t cap);

/* Is [p, p+n) inside [buf, buf+len)? */
static inline bool fz_inside(const void *p, size_t n, const void *buf, size_t len)
{
    const uint8_t *a = p, *b = buf;
    return a >= b && n <= len && (size_t)(a - b) <= len - n;
}

/* The keys of a msgpack map in wire order (pointers into body), for the
 * re-encoding checks; returns how many, or -1 if body is not a map. */
typedef struct {
    const char *ptr;
    size_t len;
} fz_key_ref;
int fz_map_keys(const uint8_t *body, size_t len, fz_key_ref *keys, size_t cap);
/* Do the keys appear in the order of the spec's table (a subsequence of
 * order[0..n))? */
bool fz_keys_in_order(const fz_key_ref *keys, int nkeys, const char *const *order, size_t n);
bool fz_has_key(const fz_key_ref *keys, int nkeys, const char *name);

#endif
