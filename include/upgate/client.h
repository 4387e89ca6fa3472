/* libupgate: the client side of upgate (protocol version 2, docs/protocol-v2.md, by default; version 1,
 * protocol.md, with pinned hint and release keys) as a library. */
#ifndef UPGATE_CLIENT_H
#define UPGATE_CLIENT_H

/*
 * What it does
 * ------------
 * A peer asks its tracker, over UDP, whether it should upgrade. libupgate
 * builds the signed HELLO datagrams, reads the replies, checks a HINT as
 * the protocol demands, downloads and verifies the offered package with
 * libcurl, and builds the signed REPORT that says what came of it.
 *
 * Two protocol versions. Version 2 (the default) trusts pinned root keys
 * and a threshold (ug_client_add_root_key_file, cfg.root_threshold): the
 * keyrings they sign, fetched over HTTP (at most 4096 bytes each) from the
 * keyring URLs of the configuration (ug_client_add_keyring_url), of the
 * keyring held and of the manifest being checked, and walked version by
 * version, name the release, certificate and root keys; every HINT carries
 * its hint key's certificate; manifests are bound to cfg.app, cfg.plat
 * and cfg.chan and carry a sequence number. What the peer learns (newest
 * keyring, highest seq per (app, chan), minimum certificate serial, the
 * highest signed time) persists in cfg.state_path. A peer that sees no
 * valid freshness token nor HINT for cfg.blocked_after_s raises "updates
 * may be blocked" (cfg.blocked, and ev->blocked). Version 1 is spoken
 * when hint and release keys are pinned instead (the API of libupgate
 * 1.0, unchanged). Pinning both kinds is refused.
 *
 * The application owns the UDP socket and its event loop, as with ngtcp2
 * or c-ares: libupgate performs no UDP I/O. It hands out the bytes of the
 * HELLO to send (ug_client_hello) and turns the bytes of each datagram the
 * application received into exactly one event (ug_client_receive):
 *
 *   UG_CLIENT_EV_WAIT     no upgrade now: `why` and `retry` (clamped to
 *                         60..86400 s, protocol section 6). A WAIT why=6
 *                         ("HELLO too small") sets send_now: the next HELLO,
 *                         padded to 1232 bytes, is ready at once.
 *   UG_CLIENT_EV_COOKIE   the tracker wants its cookie echoed; send_now is
 *                         set and the next HELLO carries it (new nonce,
 *                         signed again).
 *   UG_CLIENT_EV_OFFER    a HINT that passed every check (protocol.md
 *                         section 6, protocol-v2.md 5.4); the offer's
 *                         mirrors are in try order, the hinted one first.
 *   UG_CLIENT_EV_IGNORED  anything else: forged, stray (another nonce, or no
 *                         HELLO outstanding), malformed. `reason` says why.
 *                         An IGNORED event never ends the exchange: an
 *                         off-path sender can make one, so keep listening.
 *
 * Until an answer arrives, ug_client_hello returns the very same bytes
 * (retransmits of one HELLO must be identical); a fresh nonce is drawn only
 * for a new HELLO (after a COOKIE, a WAIT why=6, a final answer, or
 * ug_client_hello_reset).
 *
 * In version 2, ug_client_receive may block to fetch the keyrings a HINT
 * or token names (each fetch bounded by cfg.keyring_timeout_s, at most
 * UG_CLIENT_KEYRING_WALK_MAX versions a call), and writes the state file
 * whenever what the peer learned moves.
 *
 * Threads: a ug_client and a ug_client_transfer are used by one thread at a
 * time. Call curl_global_init() once before you start threads (libcurl's
 * rule); libupgate initialises libsodium itself.
 *
 * Errors: every function that can fail returns a ug_client_err; the handle
 * keeps a one-line message naming the file or value at fault
 * (ug_client_errmsg), and ug_client_strerror names a code.
 *
 * Structs passed in (configs) start with a `size` member: fill them with
 * the *_config_init function, which sets size = sizeof the struct your code
 * was compiled with, so a later library can grow them.
 *
 * Link with pkg-config: `cc app.c $(pkg-config --cflags --libs upgate)`.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>

#include <curl/curl.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define UG_CLIENT_API __attribute__((visibility("default")))
#define UG_CLIENT_WUR __attribute__((warn_unused_result))
#else
#define UG_CLIENT_API
#define UG_CLIENT_WUR
#endif

#define UG_CLIENT_VERSION "1.1.0"
#define UG_CLIENT_DGRAM_MAX 1232u /* no upgate datagram is longer: size your buffers with it */
#define UG_CLIENT_VER_MAX 32u     /* bytes of a version string, without its NUL */
#define UG_CLIENT_URLS_MAX 8u
#define UG_CLIENT_URL_MAX 200u
#define UG_CLIENT_PINS_MAX 8u /* pinned hint keys, and pinned release keys, each; pinned root keys */
#define UG_CLIENT_KEYRING_URLS_MAX 4u /* keyring URLs of the configuration */
#define UG_CLIENT_KEYRING_WALK_MAX 64u /* keyring versions fetched by one call */

/* The library's own version, "1.1.0". */
UG_CLIENT_API const char *ug_client_version(void);

/* ---- errors --------------------------------------------------------- */

typedef enum {
    UG_CLIENT_OK = 0,
    UG_CLIENT_E_INVALID,  /* a bad argument or config value, or a call out of order */
    UG_CLIENT_E_NOMEM,    /* out of (locked) memory */
    UG_CLIENT_E_IO,       /* a file could not be read, written or moved */
    UG_CLIENT_E_FORMAT,   /* a key, credential or state file is malformed */
    UG_CLIENT_E_NOTFOUND, /* no such state file (nothing installed yet) */
    UG_CLIENT_E_CRED,     /* the credential is for another uid or client key */
    UG_CLIENT_E_NOKEY,    /* no client key, credential, or pinned keys set yet */
    UG_CLIENT_E_BUFFER,   /* the output buffer is too small */
    UG_CLIENT_E_AGAIN,    /* the download is still running */
    UG_CLIENT_E_DOWNLOAD, /* no mirror delivered the package */
    UG_CLIENT_E_MISMATCH, /* a mirror delivered a wrong size or hash, and none the right one */
    UG_CLIENT_E_DEADLINE, /* the download's deadline passed */
    UG_CLIENT_E_EXPIRED,  /* the offer expired before the download started */
    UG_CLIENT_E_CURL,     /* libcurl could not start a transfer */
    /* libupgate 1.1 */
    UG_CLIENT_E_KEYRING,  /* no keyring signed by the pinned roots could be reached, or it expired */
    UG_CLIENT_E_COUNT_    /* number of codes, not a code */
} ug_client_err;

/* A short constant text for a code ("no mirror delivered the package"). */
UG_CLIENT_API const char *ug_client_strerror(ug_client_err e);

/* A WAIT reason's stable name (ug_client_event.why): "not_targeted",
 * "not_selected", "quota", "clock", "paused", "rate", "too_small", as the
 * tracker's status and metrics name it; "unknown" for any other value. */
UG_CLIENT_API const char *ug_client_why_name(unsigned why);

/* Why a datagram was IGNORED. The values and names are those of the wire
 * codec's reasons (protocol.md's rules, protocol-v2.md section 7):
 * "signature", "nonce", ... */
typedef enum {
    UG_CLIENT_R_NONE = 0,
    UG_CLIENT_R_SIZE,     /* datagram outside 1..1232 bytes */
    UG_CLIENT_R_MSGPACK,  /* not one canonical msgpack object */
    UG_CLIENT_R_HEADER,   /* not an upgate v1 reply (magic, version, type) */
    UG_CLIENT_R_SCHEMA,   /* a body with a missing, unknown or mistyped key */
    UG_CLIENT_R_VERSION,  /* a malformed version string */
    UG_CLIENT_R_STRING,   /* a malformed string or URL */
    UG_CLIENT_R_KEY,      /* signed by a key that is not pinned */
    UG_CLIENT_R_SIG,      /* a signature that does not verify */
    UG_CLIENT_R_EXPIRED,  /* hint or manifest expired */
    UG_CLIENT_R_BINDING,  /* (tracker side only) */
    UG_CLIENT_R_UID,      /* a HINT for another user */
    UG_CLIENT_R_NONCE,    /* not an answer to the outstanding HELLO */
    UG_CLIENT_R_ROLLBACK, /* offers a version not newer than ours */
    UG_CLIENT_R_MIRROR,   /* mirror index outside the manifest's URLs */
    /* libupgate 1.1: protocol version 2 (docs/protocol-v2.md section 7) */
    UG_CLIENT_R_THRESHOLD = 17, /* too few keys of a list signed the certificate or manifest */
    UG_CLIENT_R_CHAIN,    /* a keyring that is not the next of the one held */
    UG_CLIENT_R_KEYRING,  /* a newer keyring is needed and could not be fetched (or ours expired) */
    UG_CLIENT_R_REVOKED,  /* a hint certificate whose serial is revoked */
    UG_CLIENT_R_NOT_YET_VALID, /* a certificate not valid yet at the signed time */
    UG_CLIENT_R_LIFETIME, /* a certificate or token valid for too long, or for nothing */
    UG_CLIENT_R_TRACKER,  /* a certificate or token of another tracker */
    UG_CLIENT_R_APP,      /* a manifest for another application */
    UG_CLIENT_R_PLATFORM, /* a manifest for other platforms */
    UG_CLIENT_R_CHANNEL,  /* a manifest for another channel */
    UG_CLIENT_R_SEQ,      /* a manifest or token behind the highest seq verified (rollback) */
    UG_CLIENT_R_DELTA,    /* a delta index outside the manifest's deltas */
    UG_CLIENT_R_CLOCK_SKEW, /* (tracker side only) */
} ug_client_reason;

/* ---- versions ------------------------------------------------------- */

/* True when v is a protocol version string: 1 to 4 dot-separated decimal
 * parts, no sign, no leading zero, each <= 4294967295, <= 32 bytes. */
UG_CLIENT_API bool ug_client_version_valid(const char *v);
/* *cmp gets <0, 0 or >0 as a is older, equal (1.4 == 1.4.0) or newer than
 * b. UG_CLIENT_E_INVALID if either is not a version. */
UG_CLIENT_API ug_client_err ug_client_version_compare(const char *a, const char *b, int *cmp) UG_CLIENT_WUR;

/* ---- the client handle ---------------------------------------------- */

typedef struct ug_client ug_client;

/* Unix seconds; the default is time(NULL). */
typedef uint64_t (*ug_client_now_fn)(void *ctx);
/* Fills buf with len unpredictable bytes; the default is libsodium's
 * randombytes_buf. Replace it only to replay fixed test vectors. */
typedef void (*ug_client_random_fn)(void *ctx, uint8_t *buf, size_t len);
/* "Updates may be blocked" (protocol version 2): no valid freshness token
 * nor HINT since fresh_at, now (the peer's clock). Called once when it
 * starts, again only after a valid one ended it. */
typedef void (*ug_client_blocked_fn)(void *ctx, uint64_t fresh_at, uint64_t now);

typedef struct {
    size_t size;         /* sizeof(ug_client_config); set by ug_client_config_init */
    uint64_t uid;        /* user id, 1..2^63-1 (must match the credential) */
    const char *version; /* the version this application runs, e.g. "1.4.2" */
    const char *plat;    /* optional platform, 1..32 printable ASCII bytes, or NULL */
    const char *chan;    /* optional channel, 1..16 printable ASCII bytes, or NULL */
    size_t hello_size;   /* HELLO datagram size, 512..1232; default 1232 (no extra round trip) */
    size_t report_size;  /* REPORT padded to this size, 0 (none) or 64..1232; default 512 */
    ug_client_now_fn now;       /* clock; NULL: time(NULL) */
    void *now_ctx;
    ug_client_random_fn random; /* nonces; NULL: libsodium */
    void *random_ctx;
    /* ---- libupgate 1.1: protocol version 2 (with pinned root keys) ---- */
    const char *app;            /* the application, 1..32 of A-Z a-z 0-9 . _ - +; plat (1..32)
                                   and chan (1..16) are then required, of the same bytes */
    unsigned root_threshold;    /* pinned roots that must sign the first keyring; default 1 */
    uint32_t anchor_kv;         /* the keyring version the pinned roots come from; 0: none */
    const char *state_path;     /* where what the peer learned persists (written atomically);
                                   NULL: in memory only, for this handle's life */
    const char *tracker_name;   /* the tracker's name (certificates and tokens must agree), NULL: any */
    uint64_t blocked_after_s;   /* "updates may be blocked" after this long without a valid token
                                   or HINT; default 604800 (7 days) */
    ug_client_blocked_fn blocked; /* optional */
    void *blocked_ctx;
    long keyring_timeout_s;     /* one keyring fetch's limit; default 10 */
} ug_client_config;

/* Zeroes cfg and sets its size and defaults (hello_size 1232, report_size 512,
 * root_threshold 1, blocked_after_s 7 days, keyring_timeout_s 10). */
UG_CLIENT_API void ug_client_config_init(ug_client_config *cfg);

/* A new handle for cfg (its strings are copied). UG_CLIENT_E_INVALID names
 * the bad field in *msg when msg is not NULL (msg may then point to a static
 * text; a handle's messages are in ug_client_errmsg). */
UG_CLIENT_API ug_client_err ug_client_new(const ug_client_config *cfg, ug_client **out, const char **msg)
    UG_CLIENT_WUR;
/* Frees the handle and wipes its secret key. NULL is fine. */
UG_CLIENT_API void ug_client_free(ug_client *c);
/* The last failure's message on this handle, one line ("" if none). */
UG_CLIENT_API const char *ug_client_errmsg(const ug_client *c);

/* ---- keys and credential -------------------------------------------- */

/* The client secret key from a key file (cli.md: one base64 line of the
 * 32-byte seed, optionally after "# upgate secret key KID"). It lives in
 * sodium_malloc memory (locked, guarded, read-only), wiped on free. */
UG_CLIENT_API ug_client_err ug_client_load_key(ug_client *c, const char *path) UG_CLIENT_WUR;
/* The same from the 32-byte seed itself (the caller wipes its copy). */
UG_CLIENT_API ug_client_err ug_client_set_key(ug_client *c, const uint8_t seed[32]) UG_CLIENT_WUR;
/* The credential from a file (one base64 line of its signed object, as
 * `upgate-keys cred` writes) or from the raw signed object's bytes. It must
 * be for cfg.uid and, once both are set, for the client key
 * (UG_CLIENT_E_CRED otherwise). */
UG_CLIENT_API ug_client_err ug_client_load_cred(ug_client *c, const char *path) UG_CLIENT_WUR;
UG_CLIENT_API ug_client_err ug_client_set_cred(ug_client *c, const uint8_t *obj, size_t len) UG_CLIENT_WUR;
/* The credential's expiry (Unix seconds), 0 when none is set. A tracker
 * ignores HELLOs whose credential expired: renew it before then. */
UG_CLIENT_API uint64_t ug_client_cred_expiry(const ug_client *c);
/* Pins a tracker hint key, or a publisher release key: from a public key
 * file (cli.md) or from its 32 bytes. Up to UG_CLIENT_PINS_MAX of each. */
UG_CLIENT_API ug_client_err ug_client_add_hint_key_file(ug_client *c, const char *path) UG_CLIENT_WUR;
UG_CLIENT_API ug_client_err ug_client_add_hint_key(ug_client *c, const uint8_t pk[32]) UG_CLIENT_WUR;
UG_CLIENT_API ug_client_err ug_client_add_release_key_file(ug_client *c, const char *path) UG_CLIENT_WUR;
UG_CLIENT_API ug_client_err ug_client_add_release_key(ug_client *c, const uint8_t pk[32]) UG_CLIENT_WUR;

/* ---- protocol version 2: trust (libupgate 1.1) ------------------------ */

/* Pins a root key (protocol version 2), from a public key file or its 32
 * bytes; up to UG_CLIENT_PINS_MAX. cfg.root_threshold of them must sign
 * the first keyring (the anchor's, cfg.anchor_kv, or version 1). */
UG_CLIENT_API ug_client_err ug_client_add_root_key_file(ug_client *c, const char *path) UG_CLIENT_WUR;
UG_CLIENT_API ug_client_err ug_client_add_root_key(ug_client *c, const uint8_t pk[32]) UG_CLIENT_WUR;
/* A keyring URL: http(s), ending with "/"; keyring N is fetched from
 * URL + "N.keyring". Up to UG_CLIENT_KEYRING_URLS_MAX. */
UG_CLIENT_API ug_client_err ug_client_add_keyring_url(ug_client *c, const char *url) UG_CLIENT_WUR;
/* The protocol version the handle speaks: 2 with pinned roots, 1 with
 * pinned hint and release keys, 0 when nothing (or both kinds) is pinned. */
UG_CLIENT_API unsigned ug_client_protocol(const ug_client *c);
/* Fetches and walks the keyrings after the one held, version by version,
 * until one is not served (at most UG_CLIENT_KEYRING_WALK_MAX), and saves
 * the state. OK when the peer then holds an unexpired keyring;
 * UG_CLIENT_E_KEYRING when it does not (the message says why). */
UG_CLIENT_API ug_client_err ug_client_keyring_update(ug_client *c) UG_CLIENT_WUR;

/* What a version 2 peer knows (ug_client_trust). */
typedef struct {
    size_t size;              /* sizeof(ug_client_trust_info); set by ug_client_trust_info_init */
    unsigned protocol;        /* ug_client_protocol */
    uint32_t keyring_version; /* the newest keyring verified; 0: only the pinned roots so far */
    uint64_t keyring_expires;
    uint64_t seq;             /* the highest seq verified for (cfg.app, cfg.chan) */
    uint64_t min_serial;      /* the minimum certificate serial in force */
    uint64_t signed_time;     /* the highest signed time verified (the clock never goes below it) */
    uint64_t fresh_at;        /* the signed time of the newest valid token or HINT */
    bool blocked;             /* "updates may be blocked" now */
} ug_client_trust_info;

UG_CLIENT_API void ug_client_trust_info_init(ug_client_trust_info *info);
/* Loads the state file on first use (UG_CLIENT_E_FORMAT names it when it
 * is malformed: the application decides; libupgate never drops it). */
UG_CLIENT_API ug_client_err ug_client_trust(ug_client *c, ug_client_trust_info *info) UG_CLIENT_WUR;

/* ---- the exchange --------------------------------------------------- */

/* The HELLO to send now, into out[0..cap) (cap >= UG_CLIENT_DGRAM_MAX is
 * always enough). With a HELLO outstanding (sent, not yet answered) these
 * are its very bytes again: a retransmit. Otherwise a new HELLO: a fresh
 * nonce, the clock, the cookie the tracker last gave (within 2 minutes),
 * padded to cfg.hello_size, or to 1232 after a WAIT why=6. Needs the key,
 * the credential and at least one pinned hint and release key
 * (UG_CLIENT_E_NOKEY). */
UG_CLIENT_API ug_client_err ug_client_hello(ug_client *c, uint8_t *out, size_t cap, size_t *len) UG_CLIENT_WUR;
/* Forgets the outstanding HELLO, so the next ug_client_hello makes a new
 * one (say, when you ask again after a WAIT's retry). */
UG_CLIENT_API void ug_client_hello_reset(ug_client *c);

typedef enum {
    UG_CLIENT_EV_IGNORED = 0,
    UG_CLIENT_EV_WAIT,
    UG_CLIENT_EV_COOKIE,
    UG_CLIENT_EV_OFFER,
} ug_client_event_type;

/* An offer: a HINT that passed every check of protocol section 6. */
typedef struct {
    char to[UG_CLIENT_VER_MAX + 1]; /* the offered version */
    uint64_t size;                  /* exact byte size of the package */
    uint8_t hash[32];               /* its BLAKE2b-256 */
    unsigned nurls;                 /* 1..8 */
    char urls[UG_CLIENT_URLS_MAX][UG_CLIENT_URL_MAX + 1]; /* try order: the hinted mirror first */
    uint64_t exp;                   /* the offer is void from this instant (hint's or manifest's exp) */
    uint64_t tracker_ts;            /* the tracker's clock when it signed the HINT */
} ug_client_offer;

/* A delta the tracker named for this peer (protocol version 2, libupgate
 * 1.2): the running version's installed file patched into the offered
 * package. */
typedef struct {
    char from[UG_CLIENT_VER_MAX + 1]; /* the version it patches: cfg.version's */
    uint64_t size;                    /* exact byte size of the delta */
    uint8_t hash[32];                 /* its BLAKE2b-256 */
    unsigned nurls;                   /* 1..8 */
    char urls[UG_CLIENT_URLS_MAX][UG_CLIENT_URL_MAX + 1]; /* try order: the hinted mirror first */
} ug_client_delta;

/* REPORT `via` (protocol version 2): how the package arrived. */
typedef enum {
    UG_CLIENT_VIA_FULL = 0,           /* the full package was downloaded */
    UG_CLIENT_VIA_DELTA = 1,          /* a delta was downloaded and patched the installed file */
    UG_CLIENT_VIA_DELTA_FALLBACK = 2, /* the delta failed; the full package was fetched in the same run */
} ug_client_via;
/* "full", "delta", "delta-fallback" ("unknown" for other values). */
UG_CLIENT_API const char *ug_client_via_name(unsigned via);

typedef struct {
    ug_client_event_type type;
    bool done;     /* the exchange is over: a WAIT to honour or an OFFER */
    bool send_now; /* COOKIE, WAIT why=6: send the next HELLO (ug_client_hello) at once */
    /* IGNORED */
    ug_client_reason reason; /* why it was ignored */
    const char *reason_name; /* the reason as text: "signature", "nonce", ... */
    bool hint;               /* the ignored datagram was a HINT that failed `reason` */
    bool authentic;          /* ... signed by a pinned hint key and answering our HELLO
                                (uid and nonce): the tracker's own answer failed a check,
                                no forgery. Still nothing to act on. */
    /* WAIT */
    unsigned why;       /* the reason, 0..6 (ug_client_why_name names it; 6: HELLO too
                           small, see send_now); others: a newer tracker's */
    uint64_t retry;     /* seconds before asking again, clamped to 60..86400; 0 with send_now */
    /* WAIT, COOKIE, OFFER */
    uint64_t tracker_ts; /* the tracker's clock */
    uint64_t hello_ts;   /* our clock in the HELLO answered (tracker_ts - hello_ts: skew) */
    /* OFFER */
    ug_client_offer offer;
    /* ---- libupgate 1.1 ---- */
    unsigned protocol;   /* of the handle: 1 or 2 */
    bool blocked;        /* "updates may be blocked" (protocol version 2; cfg.blocked is told once) */
    /* WAIT (version 2) */
    bool token;          /* it carried a freshness token that passed every check */
    uint64_t newest_seq; /* that token's newest seq for (cfg.app, cfg.chan); 0: none listed */
    ug_client_reason token_reason; /* a token that failed: why (the WAIT stands, the token moves nothing) */
    const char *token_reason_name; /* ... as text; "" when none failed */
    /* OFFER (version 2) */
    uint64_t seq;        /* the manifest's sequence number */
    unsigned urgency;    /* 0 normal, 1 critical (the publisher's word) */
    /* ---- libupgate 1.2 ---- */
    /* OFFER (version 2): the HINT named a delta from cfg.version. The
     * handle remembers it for this offer: give the download the installed
     * file (ug_client_download_config.installed) and it is tried first. */
    bool has_delta;
    ug_client_delta delta;
} ug_client_event;

/* Reads one received datagram, buf[0..len), and points *ev at the one
 * event it makes (valid until the next call on c). Only a reply to the
 * outstanding HELLO counts; a WAIT or COOKIE is unsigned and only advice.
 * Returns UG_CLIENT_E_INVALID only for NULL arguments. */
UG_CLIENT_API ug_client_err ug_client_receive(ug_client *c, const uint8_t *buf, size_t len,
                                              const ug_client_event **ev) UG_CLIENT_WUR;

/* ---- REPORT and the installed-version state -------------------------- */

/* REPORT res (protocol.md, type 5). */
typedef enum {
    UG_CLIENT_RES_INSTALLED = 0,
    UG_CLIENT_RES_DECLINED = 1,
    UG_CLIENT_RES_DOWNLOAD_FAILED = 2,
    UG_CLIENT_RES_MISMATCH = 3,
    UG_CLIENT_RES_INSTALL_FAILED = 4,
    UG_CLIENT_RES_ROLLED_BACK = 5,
} ug_client_res;

/* A signed REPORT datagram into out[0..cap): "res, about the offered
 * version `to`", with ver = the version this application runs (cfg.version),
 * a fresh nonce and the clock, padded to cfg.report_size. In version 2 its
 * `via` is how the handle's last download of `to` went (ug_client_last_via),
 * full when it made none. Send it once to
 * the tracker; it is never answered. UG_CLIENT_RES_ROLLED_BACK needs `to`
 * newer than the running version. */
UG_CLIENT_API ug_client_err ug_client_report(ug_client *c, ug_client_res res, const char *to, uint8_t *out,
                                             size_t cap, size_t *len) UG_CLIENT_WUR;
/* The REPORT res that a download's result stands for: OK installed,
 * MISMATCH mismatch, IO install failed (the package could not be put in
 * place here), anything else download failed. */
UG_CLIENT_API ug_client_res ug_client_res_of(ug_client_err e);

/* The state file remembers the last version this application installed:
 * one line "version=V\n". ug_client_state_save writes it atomically
 * (temp file, fsync, rename, fsync of the folder). */
UG_CLIENT_API ug_client_err ug_client_state_save(ug_client *c, const char *path, const char *version)
    UG_CLIENT_WUR;
/* Reads it strictly (exactly that one line, a valid version) into
 * version[0..cap); UG_CLIENT_E_NOTFOUND when there is no file. */
UG_CLIENT_API ug_client_err ug_client_state_load(ug_client *c, const char *path, char *version, size_t cap)
    UG_CLIENT_WUR;
/* At start: *rolled_back is true when the state file names a version newer
 * than the one running, which is then in installed[0..cap): send a
 * UG_CLIENT_RES_ROLLED_BACK REPORT about it. No state file: OK, false. */
UG_CLIENT_API ug_client_err ug_client_state_check(ug_client *c, const char *path, bool *rolled_back,
                                                  char *installed, size_t cap) UG_CLIENT_WUR;

/* ---- download ------------------------------------------------------- */

/* Called as bytes arrive: `done` of `total` bytes are in the partial file
 * (resumed bytes included), from `url`. */
typedef void (*ug_client_progress_fn)(void *ctx, uint64_t done, uint64_t total, const char *url);
/* Called when a mirror is given up and the next one is tried: why, in one
 * line; or when a delta failed and the full package is fetched instead
 * (libupgate 1.2): why then starts with "delta failed: ". */
typedef void (*ug_client_fallback_fn)(void *ctx, const char *url, const char *why);

typedef struct {
    size_t size;          /* sizeof(ug_client_download_config); set by ..._config_init */
    const char *dest;     /* where the verified package goes (required) */
    uint64_t deadline_s;  /* the whole download's deadline; 0: base + size / min_rate. A mirror
                             whose rate since its first byte (judged 10 s after it) cannot
                             finish within its share of it is given up early */
    uint64_t deadline_base_s; /* default 60 */
    uint64_t min_rate;    /* bytes per second; default 16384 */
    long low_speed_limit; /* a mirror below this many bytes/s ... default 1024 */
    long low_speed_time;  /* ... for this many seconds is given up; default 30 */
    long connect_timeout_s; /* default 10 */
    ug_client_progress_fn progress; /* optional */
    ug_client_fallback_fn fallback; /* optional */
    void *ctx;                      /* for both */
    const char *user_agent;         /* default "libupgate/1.0.0" */
    /* ---- libupgate 1.2 ---- */
    const char *installed; /* the installed file of cfg.version, or NULL. With it, an offer
                              whose HINT named a delta is patched: see "Deltas" below */
} ug_client_download_config;

/* Zeroes cfg and sets its size and defaults. */
UG_CLIENT_API void ug_client_download_config_init(ug_client_download_config *cfg);

/*
 * How a download goes: the bytes go to DEST.part (mode 0600; DEST.part.id
 * beside it names the package's size and hash), from the offer's mirrors in
 * order (http and https only, redirects to nothing else), never more than
 * the manifest's size. A partial file whose id matches this package is
 * resumed with an HTTP Range request, after an interrupted transfer or at
 * a later start (a server that answers 200 instead of 206 sends it all
 * again); one of another package is discarded. A mirror that breaks off is
 * resumed up to 3 times, one that is slower than low_speed_limit for
 * low_speed_time, fails, or delivers a wrong size or hash is given up for
 * the next. The whole download has one deadline; each mirror may use an
 * equal share of the time left, so a dripping mirror cannot hold a peer for
 * hours and the next one still gets its turn (it resumes where the last
 * stopped). Only when size and BLAKE2b-256 match is the file renamed to
 * DEST and the folder synced. A failed download keeps a partial file whose
 * bytes may still be good (it is resumed next time) and removes one that is
 * empty or proved wrong.
 */
typedef struct ug_client_transfer ug_client_transfer;

/*
 * Deltas (protocol version 2, libupgate 1.2). When the offer's HINT named a
 * delta (ev->has_delta) and cfg.installed is set, the download first fetches
 * the delta (to DEST.delta, with resume, the one deadline and the mirror
 * fallback of a package, capped at the delta's size), keeps it only if its
 * size and BLAKE2b-256 are the manifest's delta entry's, then patches the
 * installed file with it (zstd patch-from) into DEST.patch and renames that
 * to DEST only if its size and BLAKE2b-256 are the package's. On any failure
 * (no mirror served the delta, a tampered delta, an installed file that is
 * missing or not the version it claims, a corrupt frame) it removes what the
 * delta left and downloads the full package in the same call, as above.
 * ug_client_download_via says which way it went; ug_client_report puts it in
 * the REPORT's `via`. Memory while patching: the installed file's size (read
 * whole) plus the window (the smallest power of two, at least 1 KiB,
 * covering the larger of the installed file and the package) plus 1 MiB;
 * within the old file's size plus the window plus 64 MiB. An installed file
 * or a package over 1 GiB is not patched (the full package is fetched).
 */

/* Downloads the offer, blocking until it is verified and in place or has
 * failed. c must be the handle the offer came from; its message says what
 * failed. The offer must still be valid (UG_CLIENT_E_EXPIRED). */
UG_CLIENT_API ug_client_err ug_client_download(ug_client *c, const ug_client_offer *offer,
                                               const ug_client_download_config *cfg) UG_CLIENT_WUR;

/* The same, driven from the application's loop: start it, then wait on
 * the libcurl multi handle (curl_multi_poll, curl_multi_wait, or
 * curl_multi_fdset with curl_multi_timeout; do not install socket or timer
 * callbacks on it) or on ug_client_download_fdset/_timeout, and call
 * ug_client_download_perform whenever it may have work, until *running is
 * 0. c must outlive d. A download that is already complete (a finished
 * partial file from an earlier run) finishes in ug_client_download_start. */
UG_CLIENT_API ug_client_err ug_client_download_start(ug_client *c, const ug_client_offer *offer,
                                                     const ug_client_download_config *cfg,
                                                     ug_client_transfer **out) UG_CLIENT_WUR;
/* The multi handle to wait on. */
UG_CLIENT_API CURLM *ug_client_download_multi(ug_client_transfer *d);
/* The descriptors to wait on (as curl_multi_fdset) and the longest wait
 * in ms before ug_client_download_perform is due (-1: none set). */
UG_CLIENT_API ug_client_err ug_client_download_fdset(ug_client_transfer *d, fd_set *rd, fd_set *wr, fd_set *ex,
                                                     int *maxfd);
UG_CLIENT_API ug_client_err ug_client_download_timeout(ug_client_transfer *d, long *ms);
/* Does whatever is due without blocking; *running is 0 once it is over. */
UG_CLIENT_API ug_client_err ug_client_download_perform(ug_client_transfer *d, int *running);
/* UG_CLIENT_E_AGAIN while running, then the outcome: OK (verified and in
 * place at dest) or why not. */
UG_CLIENT_API ug_client_err ug_client_download_result(const ug_client_transfer *d);
/* The outcome in one line ("" while running or after success). */
UG_CLIENT_API const char *ug_client_download_errmsg(const ug_client_transfer *d);
/* How it went, or goes (libupgate 1.2): UG_CLIENT_VIA_FULL, _DELTA,
 * _DELTA_FALLBACK; and the bytes it fetched from mirrors (the delta's and
 * the package's; resumed bytes fetched in an earlier run not included). */
UG_CLIENT_API unsigned ug_client_download_via(const ug_client_transfer *d);
UG_CLIENT_API uint64_t ug_client_download_bytes(const ug_client_transfer *d);
/* The same of the handle's last finished download (what its next REPORT
 * of that version says); *bytes gets its bytes when bytes is not NULL. A
 * new offer resets both (full, 0). */
UG_CLIENT_API unsigned ug_client_last_via(const ug_client *c, uint64_t *bytes);
/* Stops a running transfer (keeping the partial file for a resume) and
 * frees d. NULL is fine. */
UG_CLIENT_API void ug_client_download_free(ug_client_transfer *d);

/*
 * Example
 * -------
 * client/example.c, reproduced verbatim between the markers below
 * (tests/test_client_example.c checks that they match, then builds it and
 * runs it against upgate-node and a mirror). It asks once, downloads a
 * verified offer and reports the outcome.
 *
 * ---- BEGIN EXAMPLE ----
// libupgate example: ask a tracker once, download a verified offer, report what came of it.
// usage: example HOST PORT UID VERSION CLIENT.key CLIENT.cred HINT.pub RELEASE.pub OUT
#define _POSIX_C_SOURCE 200809L // getaddrinfo
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <upgate/client.h>

static int fail(ug_client *c, const char *what)
{
    fprintf(stderr, "example: %s: %s\n", what, ug_client_errmsg(c));
    ug_client_free(c);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: example HOST PORT UID VERSION KEY CRED HINT.pub RELEASE.pub OUT\n");
        return 2;
    }
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = strtoull(argv[3], NULL, 10);
    cfg.version = argv[4];
    ug_client *c;
    const char *msg;
    if (ug_client_new(&cfg, &c, &msg) != UG_CLIENT_OK) {
        fprintf(stderr, "example: %s\n", msg);
        return 2;
    }
    if (ug_client_load_key(c, argv[5]) != UG_CLIENT_OK || ug_client_load_cred(c, argv[6]) != UG_CLIENT_OK ||
        ug_client_add_hint_key_file(c, argv[7]) != UG_CLIENT_OK ||
        ug_client_add_release_key_file(c, argv[8]) != UG_CLIENT_OK)
        return fail(c, "setup");

    // The application owns the socket and the loop; libupgate only makes and reads datagrams.
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
        return fail(c, "cannot resolve the tracker");
    int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
    bool connected = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    freeaddrinfo(ai);
    if (!connected)
        return fail(c, "cannot reach the tracker");

    const ug_client_event *ev = NULL;
    for (int sends = 0; sends < 6 && !(ev && ev->done); sends++) {
        uint8_t buf[UG_CLIENT_DGRAM_MAX];
        size_t len;
        if (ug_client_hello(c, buf, sizeof buf, &len) != UG_CLIENT_OK)
            return fail(c, "hello");
        send(fd, buf, len, 0); // after a second of silence: the very same bytes again
        struct pollfd p = {.fd = fd, .events = POLLIN};
        for (ev = NULL; poll(&p, 1, 1000) > 0; ev = NULL) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0 && ug_client_receive(c, buf, (size_t)n, &ev) == UG_CLIENT_OK && (ev->done || ev->send_now))
                break; // an answer; an IGNORED datagram (forged, stray, malformed) is not one
        }
    }
    int rc = 1;
    if (!ev || !ev->done) {
        fprintf(stderr, "example: no answer\n");
    } else if (ev->type == UG_CLIENT_EV_WAIT) {
        printf("no upgrade now (why %u); ask again in %llu s\n", ev->why, (unsigned long long)ev->retry);
        rc = 0;
    } else {
        const ug_client_offer *o = &ev->offer;
        printf("offered %s: %llu bytes from %s\n", o->to, (unsigned long long)o->size, o->urls[0]);
        ug_client_download_config dc;
        ug_client_download_config_init(&dc);
        dc.dest = argv[9];
        ug_client_err e = ug_client_download(c, o, &dc);
        if (e == UG_CLIENT_OK)
            printf("verified and saved to %s\n", dc.dest);
        else
            fprintf(stderr, "example: download: %s\n", ug_client_errmsg(c));
        uint8_t rep[UG_CLIENT_DGRAM_MAX];
        size_t rlen;
        if (ug_client_report(c, ug_client_res_of(e), o->to, rep, sizeof rep, &rlen) == UG_CLIENT_OK)
            send(fd, rep, rlen, 0); // never answered
        rc = e == UG_CLIENT_OK ? 0 : 1;
    }
    close(fd);
    ug_client_free(c);
    return rc;
}
 * ---- END EXAMPLE ----
 */

#ifdef __cplusplus
}
#endif

#endif
