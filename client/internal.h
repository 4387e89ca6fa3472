/* libupgate internals shared by the client/ sources: the handle, messages, the wire codec underneath. */
#ifndef UG_CLIENT_INTERNAL_H
#define UG_CLIENT_INTERNAL_H

#include <limits.h>
#include <stdarg.h>

#include "ug_proto2.h"
#include "upgate/client.h"

#define UG_CLIENT_CRED_MAX 512       /* a credential's signed object */
#define UG_CLIENT_CRED_TEXT_MAX 1024 /* its base64 line */
#define UG_CLIENT_MSG_MAX 1024
#define UG_CLIENT_COOKIE_TTL_S 120u /* a cookie is good for its 60 s slot and the one after */
#define UG_CLIENT_RETRY_MIN_S 60u   /* protocol section 6: clamp a WAIT's retry */
#define UG_CLIENT_RETRY_MAX_S 86400u
#define UG_CLIENT_SEQS_MAX 16u         /* (app, chan) pairs a state file remembers */
#define UG_CLIENT_PSTATE_MAX 8192u     /* bytes of a version 2 state file */
#define UG_CLIENT_BLOCKED_DEFAULT_S (7u * 86400u)

/* What a version 2 state file holds (pstate.c, docs in libupgate(3)). */
typedef struct {
    char app[UG2_LABEL_MAX + 1], chan[UG2_CHAN_MAX + 1];
    uint64_t seq;
} ug_client_seq;

typedef struct {
    uint8_t keyring[UG2_KEYRING_MAX]; /* the newest keyring document verified, as fetched */
    size_t keyring_len;               /* 0: only the pinned roots so far */
    unsigned nseqs;
    ug_client_seq seqs[UG_CLIENT_SEQS_MAX]; /* highest seq verified, per (app, chan) */
    uint64_t min_serial;              /* the highest min_serial learned from a manifest */
    uint64_t floor;                   /* the highest signed time verified */
    uint64_t fresh_at;                /* the signed time of the newest valid token or HINT */
} ug_client_pstate;

struct ug_client {
    uint64_t uid;
    char version[UG_VER_MAX + 1];
    ug_version running;
    char plat[UG_PLAT_MAX + 1], chan[UG_CHAN_MAX + 1]; /* "" when absent */
    size_t hello_size, report_size;
    ug_client_now_fn now;
    void *now_ctx;
    ug_client_random_fn random;
    void *random_ctx;

    uint8_t *sk; /* sodium_malloc'ed, read-only; NULL until set */
    uint8_t cred[UG_CLIENT_CRED_MAX];
    size_t cred_len; /* 0 until set */
    ug_cred cred_body;
    char cred_src[64]; /* "FILE" or "the credential", for messages */
    ug_pubkey hint_keys[UG_CLIENT_PINS_MAX], release_keys[UG_CLIENT_PINS_MAX];
    unsigned nhint, nrelease;

    /* the outstanding HELLO, resent byte for byte until answered */
    bool pending;
    uint8_t hello[UG_DGRAM_MAX];
    size_t hello_len;
    uint8_t nonce[UG_NONCE_LEN];
    uint64_t hello_ts;
    size_t target; /* pad target of the next HELLO */
    bool have_cookie;
    uint8_t cookie[UG_COOKIE_LEN];
    uint64_t cookie_at;

    ug_client_event ev;
    char msg[UG_CLIENT_MSG_MAX];

    /* protocol version 2 (trust.c, keyring.c, exchange2.c) */
    char app[UG2_LABEL_MAX + 1], tracker[UG2_LABEL_MAX + 1]; /* "" when absent */
    uint8_t roots[UG_CLIENT_PINS_MAX][UG_PK_LEN];
    unsigned nroots, root_t;
    uint32_t anchor_kv;
    char kr_urls[UG_CLIENT_KEYRING_URLS_MAX][UG_URL_MAX + 1];
    unsigned nkr_urls;
    char state_path[PATH_MAX]; /* "" when in memory only */
    uint64_t blocked_after;
    ug_client_blocked_fn blocked;
    void *blocked_ctx;
    long kr_timeout;
    bool v2_loaded;   /* the anchor is set and the state file was read */
    bool blocked_told; /* the application was told; cleared by a valid token or HINT */
    ug2_peer peer;    /* K, this (app, chan)'s seq_hi, Ms, F, fresh_at (protocol-v2.md 5.0) */
    ug_client_pstate st; /* what persists: the keyring document, every pair's seq */
    ug2_hint hint2;   /* the reply being checked (large: kept off the stack) */
    ug2_wait wait2;

    /* deltas (libupgate 1.2, patch.c) */
    bool has_delta;             /* the last offer's HINT named a delta */
    ug_client_delta delta;      /* ... this one */
    uint8_t delta_for[UG_HASH_LEN]; /* ... for the package of this hash */
    unsigned via;               /* the last finished download's ug_client_via */
    uint64_t via_bytes;         /* ... and the bytes it fetched */
};

/* Sets c's message (printf-style, truncated to one line) and returns code. */
ug_client_err ug_client_fail_(ug_client *c, ug_client_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same into any buffer. */
void ug_client_vsay_(char *buf, size_t cap, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
uint64_t ug_client_now_(const ug_client *c);
void ug_client_random_(const ug_client *c, uint8_t *buf, size_t len);
/* Is the handle ready to sign (key and credential) and to check (pins of
 * one protocol version)? */
ug_client_err ug_client_ready_(ug_client *c);

/* Reads a public key file into pk; the message names path. */
ug_client_err ug_client_read_key_file_(ug_client *c, const char *path, uint8_t pk[UG_PK_LEN])
    __attribute__((warn_unused_result));

/* Writes data to path atomically (temp file, fsync, rename, fsync of the
 * folder); the message names path. */
ug_client_err ug_client_atomic_write_(ug_client *c, const char *path, const void *data, size_t len);

/* ---- protocol version 2 ---------------------------------------------- */

/* The v2 state file's text, parsed strictly (pstate.c): 0 or -1. It says
 * nothing of the keyring's signatures: the loader checks them. */
int ug_client_pstate_parse_(const uint8_t *text, size_t len, ug_client_pstate *st) UG_WUR;
/* Its text; -1 when it does not fit cap. */
int ug_client_pstate_format_(const ug_client_pstate *st, char *out, size_t cap, size_t *len) UG_WUR;
/* The config's version 2 fields, checked (trust.c): NULL or the bad one. */
const char *ug_client_take_v2_(ug_client *c, const ug_client_config *cfg);
/* Sets the anchor and reads the state file, once. */
ug_client_err ug_client_v2_load_(ug_client *c);
/* Saves c->peer and c->st to the state file (no-op in memory). */
ug_client_err ug_client_v2_save_(ug_client *c);
/* Checks "updates may be blocked" now: sets ev->blocked, tells the
 * application once. */
void ug_client_v2_blocked_(ug_client *c);
/* Walks the keyrings after the one held up to version need (0: as far as
 * they are served), from the configured URLs, the keyring's and those of
 * m (may be NULL). 0 when need is reached (or, with need 0, the walk
 * ended); -1 with *why and the handle's message otherwise. Saves the
 * state after any step. */
int ug_client_walk_(ug_client *c, uint32_t need, const ug2_manifest *m, ug_err *why);
/* A new HELLO v2 into c->hello (exchange2.c). */
ug_client_err ug_client_hello2_(ug_client *c, uint64_t now);
/* The event of one received datagram, for a version 2 handle. */
const ug_client_event *ug_client_receive2_(ug_client *c, const uint8_t *buf, size_t len);
/* An IGNORED event (exchange.c). */
const ug_client_event *ug_client_ignored_(ug_client *c, ug_err why, bool hint, bool authentic);
/* The WAIT event of either version: the retry clamped, a WAIT why 6 asks
 * for a padded HELLO at once. */
const ug_client_event *ug_client_wait_event_(ug_client *c, uint64_t why, uint64_t retry, uint64_t ts);
/* An offer of either version: the manifest's fields, its URLs in try
 * order (urls[mirror] first, then the others as listed). */
void ug_client_offer_of_(ug_client_offer *o, const ug_version *to, const char (*urls)[UG_URL_MAX + 1],
                         unsigned nurls, uint64_t mirror, uint64_t size, const uint8_t hash[UG_HASH_LEN], uint64_t exp,
                         uint64_t ts);
/* The offer event's delta (version 2): remembered by the handle for the
 * offer's package, so a download given the installed file tries it. */
void ug_client_offer_delta_(ug_client *c, ug_client_event *ev, const ug2_manifest *m, const ug2_hint *h);
/* A COOKIE of either version (its body is version 1's) for our HELLO. */
const ug_client_event *ug_client_on_cookie_(ug_client *c, const ug_dgram *d);

/* Makes a rename in path's folder durable (fsync of the folder); best effort. */
void ug_client_sync_dir_(const char *path);

/* The state file's one line, "version=V\n", parsed strictly: V a valid
 * version of at most UG_VER_MAX bytes copied into out[0..cap). 0 or -1. */
int ug_client_state_parse_(const uint8_t *text, size_t len, char *out, size_t cap) UG_WUR;

#endif
