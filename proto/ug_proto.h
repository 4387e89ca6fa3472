/* upgate v1 wire codec and signatures: the one API peers, trackers and tools share. */
#ifndef UG_PROTO_H
#define UG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UG_WUR __attribute__((warn_unused_result))

/* Sizes fixed by protocol.md. */
#define UG_DGRAM_MAX 1232u /* largest datagram anyone accepts */
#define UG_HELLO_MIN 512u  /* smallest HELLO a tracker accepts */
#define UG_SIG_LEN 64u
#define UG_PK_LEN 32u
#define UG_SK_LEN 64u   /* libsodium's expanded secret key (seed || pk) */
#define UG_SEED_LEN 32u /* what a secret key file holds */
#define UG_KID_LEN 8u
#define UG_NONCE_LEN 16u
#define UG_COOKIE_LEN 16u
#define UG_HASH_LEN 32u
#define UG_VER_MAX 32u  /* bytes of a version string */
#define UG_PLAT_MAX 32u
#define UG_CHAN_MAX 16u
#define UG_URLS_MAX 8u
#define UG_URL_MAX 200u
#define UG_UID_MAX INT64_MAX
/* Largest signed object or body we ever build or check; a manifest with 8
 * URLs of 200 bytes fits, a datagram always does. */
#define UG_OBJ_MAX 2048u

#define UG_CTX_HELLO "UG1-HELLO"
#define UG_CTX_HINT "UG1-HINT"
#define UG_CTX_CRED "UG1-CRED"
#define UG_CTX_RELEASE "UG1-RELEASE"
#define UG_CTX_REPORT "UG1-REPORT"

typedef enum {
    UG_TYPE_HELLO = 1,
    UG_TYPE_HINT = 2,
    UG_TYPE_WAIT = 3,
    UG_TYPE_COOKIE = 4,
    UG_TYPE_REPORT = 5,
} ug_type;

/* REPORT `res`: what a peer did with an offer (protocol.md, type 5). */
typedef enum {
    UG_RES_INSTALLED = 0,
    UG_RES_DECLINED = 1,
    UG_RES_DOWNLOAD_FAILED = 2,
    UG_RES_MISMATCH = 3,
    UG_RES_INSTALL_FAILED = 4,
    UG_RES_ROLLED_BACK = 5,
    UG_RES_COUNT_ /* number of results, not a result */
} ug_res;

typedef enum {
    UG_WHY_NOT_TARGETED = 0,
    UG_WHY_NOT_SELECTED = 1,
    UG_WHY_QUOTA = 2,
    UG_WHY_CLOCK = 3,
    UG_WHY_PAUSED = 4,
    UG_WHY_RATE = 5,
    UG_WHY_TOO_SMALL = 6,
    UG_WHY_COUNT_ /* number of reasons, not a reason */
} ug_why;

/* A WAIT reason's stable name, the one status, metrics, explain and
 * upgate-sim print ("not_targeted", "quota", "clock", ...); "unknown" for
 * a value outside ug_why (a newer tracker's reason). */
const char *ug_why_name(unsigned why);

/* Why a decode or a check failed. Each one names one rule of the spec, so a
 * tracker can count drops by reason and a peer can say which check failed. */
typedef enum {
    UG_OK = 0,
    UG_E_SIZE,      /* datagram or object outside its size limits */
    UG_E_MSGPACK,   /* not one canonical msgpack object, or trailing bytes */
    UG_E_HEADER,    /* outer array, magic, protocol version or type */
    UG_E_SCHEMA,    /* duplicate, unknown or missing key, wrong type or length */
    UG_E_VERSION,   /* malformed version string */
    UG_E_STRING,    /* invalid UTF-8, NUL, or bad URL in a str */
    UG_E_KEY,       /* signer's key id is not pinned / trusted */
    UG_E_SIG,       /* signature does not verify */
    UG_E_EXPIRED,   /* credential, hint or manifest past its exp */
    UG_E_BINDING,   /* credential uid/pk differ from the HELLO's */
    UG_E_UID,       /* HINT for another uid */
    UG_E_NONCE,     /* HINT for another nonce */
    UG_E_ROLLBACK,  /* manifest offers a version not newer than ours */
    UG_E_MIRROR,    /* mirror index outside urls */
    UG_E_BUFFER,    /* output buffer too small */
    UG_E_COUNT_,    /* number of version 1 reasons, not a reason */
    /* version 2 only (docs/protocol-v2.md, ug_proto2.h); version 1 code never returns them */
    UG_E_THRESHOLD, /* fewer than the threshold of distinct listed keys signed */
    UG_E_CHAIN,     /* keyring not the next version of the one held */
    UG_E_KEYRING,   /* needs a keyring newer than the one held, or it expired: fetch, then retry */
    UG_E_REVOKED,   /* certificate serial below the minimum */
    UG_E_NOT_YET,   /* certificate not valid yet at the signed time */
    UG_E_LIFETIME,  /* certificate or token valid for too long, or not at all */
    UG_E_TRACKER,   /* certificate or token of another tracker */
    UG_E_APP,       /* manifest for another application */
    UG_E_PLAT,      /* manifest for other platforms */
    UG_E_CHAN,      /* manifest or token for another channel */
    UG_E_SEQ,       /* seq below the highest verified */
    UG_E_DELTA,     /* delta index outside deltas, or from another version */
    UG_E_CLOCK,     /* ts outside the tracker's clock window */
    UG_E2_COUNT_    /* bound of the reasons of both versions (UG_E_COUNT_ itself is none) */
} ug_err;

/* Short stable name of an error ("signature", "expired", ...). */
const char *ug_err_name(ug_err e);

/* ---- versions ------------------------------------------------------- */

typedef struct {
    uint32_t part[4];
    uint8_t nparts; /* 1..4 as written; missing parts compare as 0 */
} ug_version;

/* Parses 1..4 dot-separated decimal parts, no sign, no leading zero, each
 * <= 4294967295, at most UG_VER_MAX bytes. */
int ug_version_parse(ug_version *v, const char *s, size_t len) UG_WUR;
/* <0, 0, >0 like strcmp; 1.4 == 1.4.0. */
int ug_version_cmp(const ug_version *a, const ug_version *b);
/* Writes the canonical text ("1.4.2") into out; 0, or -1 if cap is short. */
int ug_version_format(const ug_version *v, char *out, size_t cap) UG_WUR;

/* ---- keys and signatures -------------------------------------------- */

/* Key id: first 8 bytes of BLAKE2b-256(pk). */
void ug_kid(uint8_t kid[UG_KID_LEN], const uint8_t pk[UG_PK_LEN]);

/* Ed25519 over CTX || 0x00 || body. sk is libsodium's 64-byte secret key.
 * Returns -1 only if body is longer than UG_OBJ_MAX. */
int ug_sign(uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t body_len,
            const uint8_t sk[UG_SK_LEN]) UG_WUR;
int ug_verify(const uint8_t sig[UG_SIG_LEN], const char *ctx, const uint8_t *body, size_t body_len,
              const uint8_t pk[UG_PK_LEN]) UG_WUR;

/* A trusted or pinned public key with its precomputed id. */
typedef struct {
    uint8_t pk[UG_PK_LEN];
    uint8_t kid[UG_KID_LEN];
} ug_pubkey;

void ug_pubkey_set(ug_pubkey *k, const uint8_t pk[UG_PK_LEN]);
/* The key in keys[0..n) whose id is kid, or NULL. */
const ug_pubkey *ug_pubkey_find(const ug_pubkey *keys, size_t n, const uint8_t kid[UG_KID_LEN]);

/* ---- outer datagram ------------------------------------------------- */

/* A decoded datagram; body and sig point into the caller's bytes. */
typedef struct {
    ug_type type;
    const uint8_t *body;
    size_t body_len;
    const uint8_t *sig; /* NULL when the datagram carries nil */
} ug_dgram;

/* Checks the outer array: exactly [ "UG", 1, type, bin, bin(64)|nil ] with
 * nothing after it, 1..UG_DGRAM_MAX bytes, a known type, sig nil exactly for
 * the unsigned types. Does not look inside body. */
int ug_dgram_decode(ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;

/* A signed object [body: bin, sig: bin(64)]; pointers into the caller's bytes. */
typedef struct {
    const uint8_t *raw; /* the whole msgpack array, as received */
    size_t raw_len;
    const uint8_t *body;
    size_t body_len;
    const uint8_t *sig;
} ug_signed;

int ug_signed_decode(ug_signed *s, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;

/* ---- bodies --------------------------------------------------------- */

typedef struct {
    uint64_t uid;
    uint8_t pk[UG_PK_LEN];
    uint64_t exp;
    uint8_t kid[UG_KID_LEN];
} ug_cred;

typedef struct {
    uint64_t uid;
    ug_version ver;
    uint64_t ts;
    uint8_t nonce[UG_NONCE_LEN];
    uint8_t pk[UG_PK_LEN];
    ug_signed cred_obj; /* points into the body; shaped [bin, bin(64)] */
    ug_cred cred;       /* decoded from cred_obj.body when cred_decoded, not yet verified; zeros otherwise */
    bool cred_decoded;  /* ug_hello_parse leaves it false: see ug_hello_cred_decode */
    char plat[UG_PLAT_MAX + 1]; /* "" when absent */
    char chan[UG_CHAN_MAX + 1]; /* "" when absent */
    bool has_cookie;
    uint8_t cookie[UG_COOKIE_LEN];
    size_t pad_len;
} ug_hello;

typedef struct {
    ug_version to;
    uint8_t nurls;
    char urls[UG_URLS_MAX][UG_URL_MAX + 1];
    uint64_t size;
    uint8_t hash[UG_HASH_LEN];
    uint64_t exp;
    uint8_t kid[UG_KID_LEN];
} ug_manifest;

typedef struct {
    uint64_t uid;
    uint8_t nonce[UG_NONCE_LEN];
    uint64_t ts;
    uint64_t exp;
    uint64_t mirror;
    uint8_t kid[UG_KID_LEN];
    ug_signed rel_obj; /* points into the body */
    ug_manifest rel;   /* decoded from rel_obj.body, not yet verified */
} ug_hint;

typedef struct {
    uint8_t nonce[UG_NONCE_LEN];
    uint64_t ts;
    uint64_t retry;
    uint64_t why;
} ug_wait;

typedef struct {
    uint8_t nonce[UG_NONCE_LEN];
    uint8_t cookie[UG_COOKIE_LEN];
    uint64_t ts;
} ug_cookie;

/* A REPORT body; the credential as in a HELLO. */
typedef struct {
    uint64_t uid;
    ug_version ver; /* the version the peer runs now */
    ug_version to;  /* the offered version the report is about */
    ug_res res;
    uint64_t ts;
    uint8_t nonce[UG_NONCE_LEN];
    uint8_t pk[UG_PK_LEN];
    ug_signed cred_obj; /* points into the body */
    ug_cred cred;       /* decoded from cred_obj.body, not yet verified */
    size_t pad_len;
} ug_report;

/* Strict body decoders: exact key set, types and lengths, no duplicates, no
 * trailing bytes, canonical msgpack only. They check no signature. */
int ug_cred_decode(ug_cred *c, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug_hello_decode(ug_hello *h, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug_manifest_decode(ug_manifest *m, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug_hint_decode(ug_hint *h, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug_wait_decode(ug_wait *w, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug_cookie_decode(ug_cookie *c, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug_report_decode(ug_report *r, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
/* ug_hello_decode decodes the credential too (cred_decoded true). */

/* ---- whole datagrams in one pass (the tracker's hot path) ------------ */

/* A whole HELLO datagram in one strict pass with no heap: the outer array
 * exactly as ug_dgram_decode (sizes: 512..UG_DGRAM_MAX bytes), then every
 * HELLO field as ug_hello_decode, with the same verdicts and reasons; a
 * datagram of another type is UG_E_HEADER. The credential is located and
 * must be a signed object [bin, bin(64)], but its body is not decoded:
 * h->cred_decoded is false until ug_hello_cred_decode. *d is the outer
 * datagram whenever that decoded (d->body is NULL otherwise), so a caller
 * can tell a wrong type from garbage. Pointers in h and d point into buf. */
int ug_hello_parse(ug_hello *h, ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;
/* Strictly decodes h's credential body into h->cred (as ug_cred_decode),
 * once: a second call returns 0 at once. ug_cred_check fails closed with
 * UG_E_SCHEMA until this succeeded. */
int ug_hello_cred_decode(ug_hello *h, ug_err *err) UG_WUR;
/* A whole REPORT datagram in one strict pass: outer array as
 * ug_dgram_decode (no minimum size), then the body as ug_report_decode,
 * credential included; another type is UG_E_HEADER. *d as in
 * ug_hello_parse. */
int ug_report_parse(ug_report *r, ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;

/* ---- encoders ------------------------------------------------------- */
/* Each writes into out[0..cap) and sets *len; -1 (UG_E_BUFFER) if it does not
 * fit. Keys are emitted in the order of the spec's tables. */

int ug_cred_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_cred *c) UG_WUR;
/* `ver` is the version text to send as is (it must parse). */
typedef struct {
    uint64_t uid;
    const char *ver;
    uint64_t ts;
    uint8_t nonce[UG_NONCE_LEN];
    uint8_t pk[UG_PK_LEN];
    const uint8_t *cred; /* the credential's signed object, as issued */
    size_t cred_len;
    const char *plat; /* NULL: absent */
    const char *chan; /* NULL: absent */
    const uint8_t *cookie; /* NULL: absent */
    bool has_pad;
    size_t pad_len;
} ug_hello_fields;
int ug_hello_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_hello_fields *h) UG_WUR;
int ug_manifest_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_manifest *m) UG_WUR;
/* rel is the manifest's signed object, embedded as is. */
typedef struct {
    uint64_t uid;
    uint8_t nonce[UG_NONCE_LEN];
    uint64_t ts, exp, mirror;
    uint8_t kid[UG_KID_LEN];
    const uint8_t *rel;
    size_t rel_len;
} ug_hint_fields;
int ug_hint_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_hint_fields *h) UG_WUR;
int ug_wait_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_wait *w) UG_WUR;
int ug_cookie_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_cookie *c) UG_WUR;
/* The whole unsigned WAIT / COOKIE datagram written straight into
 * out[0..cap), no packer and no intermediate body: byte for byte what
 * ug_*_encode_body then ug_dgram_encode give. -1 (nothing promised about
 * out) when it does not fit in cap. */
int ug_wait_write(uint8_t *out, size_t cap, size_t *len, const ug_wait *w) UG_WUR;
int ug_cookie_write(uint8_t *out, size_t cap, size_t *len, const ug_cookie *c) UG_WUR;

typedef struct {
    uint64_t uid;
    const char *ver; /* sent as is (it must parse) */
    const char *to;
    ug_res res;
    uint64_t ts;
    uint8_t nonce[UG_NONCE_LEN];
    uint8_t pk[UG_PK_LEN];
    const uint8_t *cred; /* the credential's signed object, as issued */
    size_t cred_len;
    bool has_pad;
    size_t pad_len;
} ug_report_fields;
int ug_report_encode_body(uint8_t *out, size_t cap, size_t *len, const ug_report_fields *r) UG_WUR;
/* A signed REPORT datagram padded to at least `target` bytes (0: no pad;
 * else at most UG_DGRAM_MAX), like ug_hello_build. */
int ug_report_build(uint8_t *out, size_t cap, size_t *len, ug_report_fields *r, size_t target,
                    const uint8_t sk[UG_SK_LEN]) UG_WUR;

/* [body, sig] where sig = ug_sign(ctx, body, sk). */
int ug_signed_encode(uint8_t *out, size_t cap, size_t *len, const char *ctx, const uint8_t *body,
                     size_t body_len, const uint8_t sk[UG_SK_LEN]) UG_WUR;
/* [ "UG", 1, type, body, sig|nil ]; sk NULL for the unsigned types. */
int ug_dgram_encode(uint8_t *out, size_t cap, size_t *len, ug_type type, const uint8_t *body,
                    size_t body_len, const uint8_t *sk) UG_WUR;

/* Builds a signed HELLO datagram padded to exactly `target` bytes (at least
 * UG_HELLO_MIN, at most UG_DGRAM_MAX); h->has_pad/pad_len are chosen here. */
int ug_hello_build(uint8_t *out, size_t cap, size_t *len, ug_hello_fields *h, size_t target,
                   const uint8_t sk[UG_SK_LEN]) UG_WUR;

/* Longest HINT datagram that can carry a manifest of rel_len bytes: the
 * policy refuses a release whose HINT could not fit in UG_DGRAM_MAX. */
size_t ug_hint_max_len(size_t rel_len);

/* ---- tracker side --------------------------------------------------- */

/* Step 4 of the tracker rules in two halves, for a tracker that caches
 * credentials it has verified:
 * the credential's cheap checks (issuer trusted, exp, binding; UG_E_SCHEMA
 * if h's credential was never decoded) ... */
int ug_cred_check(const ug_hello *h, const ug_pubkey *issuers, size_t nissuers, uint64_t now,
                  const ug_pubkey **issuer, ug_err *err) UG_WUR;
/* The same cheap checks on a decoded credential c for (uid, pk): issuer
 * trusted (*issuer set), exp in the future, uid and pk bound. */
int ug_cred_bound(const ug_cred *c, uint64_t uid, const uint8_t pk[UG_PK_LEN], const ug_pubkey *issuers,
                  size_t nissuers, uint64_t now, const ug_pubkey **issuer, ug_err *err) UG_WUR;
/* ... its signature under that issuer, and the HELLO's own signature. */
int ug_cred_sig_verify(const ug_hello *h, const ug_pubkey *issuer, ug_err *err) UG_WUR;
int ug_hello_sig_verify(const ug_hello *h, const ug_dgram *d, ug_err *err) UG_WUR;

/* Rule 11: a REPORT gets every check of rule 4 (credential, both
 * signatures). Clock window and "was it offered" are the tracker's. */
int ug_report_verify(const ug_report *r, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers,
                     uint64_t now, ug_err *err) UG_WUR;
/* ug_report_verify in halves, for a tracker that caches credentials (after
 * ug_cred_bound): the credential's signature under issuer, and the
 * REPORT's own under its context (UG_CTX_REPORT, or UG2_CTX_REPORT). */
int ug_report_cred_sig_verify(const ug_report *r, const ug_pubkey *issuer, ug_err *err) UG_WUR;
int ug_report_sig_verify(const ug_report *r, const ug_dgram *d, const char *ctx, ug_err *err) UG_WUR;

/* ---- peer side ------------------------------------------------------ */

typedef struct {
    const ug_pubkey *hint_keys; /* pinned hint keys */
    size_t nhint_keys;
    const ug_pubkey *release_keys; /* pinned release keys */
    size_t nrelease_keys;
    uint64_t uid;
    uint8_t nonce[UG_NONCE_LEN];
    ug_version current;
    uint64_t now;
} ug_peer_expect;

/* Every check of protocol section 6 on a whole HINT datagram, in order; on
 * success *hint holds the offer. err names the first failed check. */
int ug_hint_verify(ug_hint *hint, const uint8_t *dgram, size_t len, const ug_peer_expect *want,
                   ug_err *err) UG_WUR;

/* ---- key files (cli.md) --------------------------------------------- */

/* Reads a one-line base64 file of exactly n bytes into out. On failure the
 * reason ("not base64", "wrong length", strerror) goes to why[0..whycap). */
int ug_keyfile_read(const char *path, uint8_t *out, size_t n, char *why, size_t whycap) UG_WUR;
/* Reads a public key file: an optional first line "# upgate public key KID"
 * (KID: 16 hex digits of pk's key id; the line in either case), then the
 * base64 line. Refuses, saying which in one line in why, a file whose
 * comment names a secret key, names another key id, or is any other
 * comment; accepts a file without a comment. Every reader of a public key
 * file uses this. */
int ug_pubkey_read(const char *path, uint8_t pk[UG_PK_LEN], char *why, size_t whycap) UG_WUR;
/* Writes a key file with its kind comment: "# upgate secret key KID" (key
 * is the seed, mode 0600) or "# upgate public key KID" (key is pk itself),
 * KID the lower-case hex id of pk. Refuses a pk that is not the key's, and
 * refuses to overwrite, like ug_keyfile_write. */
int ug_key_write(const char *path, bool secret, const uint8_t key[UG_SEED_LEN], const uint8_t pk[UG_PK_LEN],
                 char *why, size_t whycap) UG_WUR;
/* Reads a secret key file (32-byte seed; comment rules as ug_pubkey_read,
 * with "secret" and the id of the derived public key) into sodium_malloc'ed
 * memory holding libsodium's 64-byte secret key; free with ug_secret_free.
 * NULL on failure, the reason in why. */
uint8_t *ug_seckey_load(const char *path, char *why, size_t whycap) UG_WUR;
void ug_secret_free(uint8_t *sk);
/* Writes base64(data) and a newline; mode 0600 when secret; refuses to
 * overwrite an existing file (O_EXCL). */
int ug_keyfile_write(const char *path, const uint8_t *data, size_t n, bool secret, char *why,
                     size_t whycap) UG_WUR;
/* Writes all of data to fd, retrying on EINTR and short writes. 0, or -1
 * with errno set (EIO when write made no progress). */
int ug_write_all(int fd, const void *data, size_t len) UG_WUR;
/* Opens a file to read that must be a regular file of at most max bytes:
 * O_NONBLOCK, so a FIFO or a device named by mistake cannot hang the
 * caller, then fstat. The descriptor (close-on-exec; O_NONBLOCK means
 * nothing to a regular file), or -1 with the reason in why. size, when not
 * NULL, gets the file's size. */
int ug_file_open(const char *path, uint64_t max, uint64_t *size, char *why, size_t whycap) UG_WUR;
/* How the calling thread opens files by path: fn(ctx, path, why, whycap)
 * returns a descriptor to read, or -1 with the reason in why. ug_file_open
 * (and so every reader above) calls it instead of open(); NULL, NULL
 * restores open(). The plugin sets it around a policy load, so that a
 * reload after the host dropped privileges reads through the folders it
 * opened at start (plugin/base/opener.c). */
typedef int (*ug_file_opener)(void *ctx, const char *path, char *why, size_t whycap);
void ug_file_opener_set(ug_file_opener fn, void *ctx);
/* Reads a whole small file (at most cap bytes) into buf. Opens with
 * O_NONBLOCK and refuses anything but a regular file, so a FIFO or a
 * device named by mistake cannot hang the caller. */
int ug_file_read(const char *path, uint8_t *buf, size_t cap, size_t *len, char *why,
                 size_t whycap) UG_WUR;

/* A manifest URL as every decoder accepts it, and the only rule for one
 * (upgate-keys signs nothing else): http:// or https:// in either case, a
 * non-empty host after it (the authority up to "/", "?" or "#", less any
 * "user@" and ":port"; "[...]" for IPv6), printable ASCII only (no
 * controls, space or non-ASCII bytes), 1..UG_URL_MAX bytes. */
bool ug_url_valid(const char *url, size_t len);

/* BLAKE2b-256 of a 64-bit little-endian uid salted by a string: the policy's
 * sticky percent bucket, 0..9999. */
uint32_t ug_percent_bucket(const char *salt, size_t salt_len, uint64_t uid);

#endif
