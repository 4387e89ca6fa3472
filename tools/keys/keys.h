/* upgate-keys internals: what its command files share (options, files, secrets, objects). */
#ifndef UG_KEYS_H
#define UG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "ug_proto2.h"

#define KEYS_VALS_MAX 16u /* values of one repeatable option */

/* One option of a command: --name VALUE (once, or up to KEYS_VALS_MAX
 * times when many), or a bare --name when flag. */
typedef struct {
    const char *name;
    bool many, flag;
} keys_opt;

typedef struct {
    const char *v[KEYS_VALS_MAX];
    unsigned n; /* 0: not given */
} keys_val;

/* Parses argv (argv[0] is the command) against spec[0..n): vals[i] gets
 * the values of spec[i]. Bad usage (an unknown, repeated or incomplete
 * option, a stray argument) exits 2 naming it. */
void keys_getopt(int argc, char **argv, const keys_opt *spec, size_t n, keys_val *vals);
/* The one value of an option given at most once, or NULL. */
static inline const char *keys_one(const keys_val *v)
{
    return v->n ? v->v[0] : NULL;
}
/* A decimal option within [min, max]; def when absent. Exits 2 otherwise. */
uint64_t keys_u64(const keys_val *v, const char *flag, uint64_t min, uint64_t max, uint64_t def);

/* ---- secrets: every loaded secret key is wiped before the process ends ---- */

/* Loads a secret key file (sodium_malloc'ed, see ug_seckey_load); exits 1
 * naming the file on failure. It is registered: keys_secrets_wipe, which
 * runs at exit whatever the path (ug_die included), frees and wipes it. */
uint8_t *keys_secret(const char *path);
void keys_secrets_wipe(void);

/* ---- files ---------------------------------------------------------- */

void keys_public(const char *path, uint8_t pk[UG_PK_LEN]);
/* Reads a whole file of at most cap bytes; exits 1 naming it. */
size_t keys_read(const char *path, uint8_t *buf, size_t cap);
/* Writes path through a temporary file and a rename: a reader never sees
 * half a file. Exits 1 naming it. */
void keys_write(const char *path, const void *data, size_t len);
/* s as one printable line for a message (other bytes as \xNN, cut at 64). */
const char *keys_shown(const char *s, char *out, size_t cap);
/* Streams a file once for its size and BLAKE2b-256. */
void keys_hash_file(const char *path, uint64_t *size, uint8_t hash[UG_HASH_LEN]);

/* ---- version 2 objects ---------------------------------------------- */

typedef enum { KIND_KEYRING, KIND_CERT, KIND_MANIFEST, KIND_NONE } keys_kind;

/* A file of one version 2 object: either a multi-signed object, or only
 * its body (a proposal the holders sign). */
typedef struct {
    uint8_t raw[UG2_KEYRING_MAX];
    size_t raw_len;
    bool is_body;        /* raw is a bare body */
    ug2_multisig ms;     /* when !is_body */
    const uint8_t *body; /* points into raw */
    size_t body_len;
    keys_kind kind;
    union {
        ug2_keyring kr;
        ug2_cert cert;
        ug2_manifest man;
    } u;
} keys_obj;

/* Reads path as a version 2 object or body of any kind; exits 1 naming the
 * file and the codec's reason when it is neither. */
void keys_obj_read(keys_obj *o, const char *path);
/* The same for a file that must be a keyring (flag names the option). */
void keys_keyring_read(keys_obj *o, const char *path, const char *flag);
/* The signing context of a kind ("UG2-KEYRING", ...). */
const char *keys_ctx(keys_kind k);
const char *keys_kind_name(keys_kind k);
/* Writes body signed by the secret key files keys[0..n) to out, or the bare
 * body when n is 0, and says on stdout what was written. */
void keys_emit(const char *out, keys_kind kind, const uint8_t *body, size_t body_len, const keys_val *keys);
/* The key list a kind is checked against in keyring k (roots for a
 * keyring), its length and threshold. */
const ug_pubkey *keys_list_of(const ug2_keyring *k, keys_kind kind, unsigned *n, unsigned *t);

/* ---- commands ------------------------------------------------------- */

int keys_cmd_keyring(int argc, char **argv); /* keyring, rotate, revoke */
int keys_cmd_cert(int argc, char **argv);
int keys_cmd_release2(int argc, char **argv);
/* release --delta-from OLD_FILE=VERSION (v, repeatable): each delta made
 * from OLD_FILE to the package file, written to FILE.from-VERSION.delta and
 * listed in m (its URLs beside the package's); one not smaller than 60% of
 * the package is not listed (said on stderr). Exits naming what failed. */
void keys_deltas(ug2_manifest *m, const char *file, const keys_val *v);
int keys_cmd_sign(int argc, char **argv);
int keys_cmd_combine(int argc, char **argv);
int keys_cmd_verify(int argc, char **argv);
/* Prints "what TIME", t (Unix seconds) in RFC 3339 UTC as docs and logs write it. */
void keys_time_line(const char *what, uint64_t t);
/* Prints a version 2 object or body (show); 0, or -1 when path is none. */
int keys_show2(const char *path);

#endif
