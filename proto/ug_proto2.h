/* upgate wire protocol version 2 (docs/protocol-v2.md): keyrings, hint
 * certificates, bound manifests, freshness tokens, and the v2 datagrams. */
#ifndef UG_PROTO2_H
#define UG_PROTO2_H

#include "ug_proto.h"

/* Bounds fixed by protocol-v2.md. */
#define UG2_VERSION 2u            /* the datagram's version byte */
#define UG2_KEYS_MAX 8u           /* keys in one keyring list */
#define UG2_SIGS_MAX 16u          /* signature entries of a multi-signed object */
#define UG2_KEYRING_MAX 4096u     /* bytes of a keyring document */
#define UG2_KR_URLS_MAX 4u        /* keyring URLs in a keyring or a manifest */
#define UG2_LABEL_MAX 32u         /* app, plat, tracker names */
#define UG2_CHAN_MAX 16u          /* channel names */
#define UG2_PLATS_MAX 8u          /* platforms of one manifest */
#define UG2_DELTAS_MAX 4u         /* deltas of one manifest */
#define UG2_SEQS_MAX 8u           /* channels in one freshness token */
#define UG2_CERT_LIFE_MAX 7776000u /* 90 days: exp - nbf of a certificate */
#define UG2_TOKEN_LIFE_MAX 86400u  /* one day: exp - ts of a token */
#define UG2_DEPTH_BODY 4u         /* containers nested in a body, its map included */
#define UG2_SEQ_MAX INT64_MAX     /* largest seq */
#define UG2_DEPTH_MULTISIG 3u     /* [body, [[kid, sig], ...]] */

#define UG2_CTX_KEYRING "UG2-KEYRING"
#define UG2_CTX_CERT "UG2-CERT"
#define UG2_CTX_RELEASE "UG2-RELEASE"
#define UG2_CTX_TOKEN "UG2-TOKEN"
#define UG2_CTX_HINT "UG2-HINT"
#define UG2_CTX_HELLO "UG2-HELLO"
#define UG2_CTX_REPORT "UG2-REPORT"
/* The credential inside a v2 HELLO or REPORT is the v1 one (UG_CTX_CRED). */

/* REPORT `via`: how the package arrived. */
typedef enum {
    UG2_VIA_FULL = 0,
    UG2_VIA_DELTA = 1,
    UG2_VIA_DELTA_FALLBACK = 2, /* a delta failed; the full package was fetched in the same run */
    UG2_VIA_COUNT_
} ug2_via;
/* "full", "delta", "delta-fallback" (status, metrics, upgate-peer); "unknown" beyond. */
const char *ug2_via_name(unsigned via);

typedef enum { UG2_URGENCY_NORMAL = 0, UG2_URGENCY_CRITICAL = 1 } ug2_urgency;

/* ---- multi-signed objects: [body: bin, [[kid: bin 8, sig: bin 64], ...]] --- */

typedef struct {
    const uint8_t *raw; /* the whole array, as received */
    size_t raw_len;
    const uint8_t *body;
    size_t body_len;
    uint8_t nsigs; /* 1..UG2_SIGS_MAX */
    const uint8_t *kid[UG2_SIGS_MAX];
    const uint8_t *sig[UG2_SIGS_MAX];
} ug2_multisig;

/* One signature entry, as a key holder makes it (upgate-keys: each holder
 * signs, one combines). */
typedef struct {
    uint8_t kid[UG_KID_LEN];
    uint8_t sig[UG_SIG_LEN];
} ug2_sig;

/* Decodes buf[0..len) as exactly one multi-signed object of at most max
 * bytes (UG_E_SIZE above), canonical msgpack nested at most 3 deep
 * (UG_E_MSGPACK), of the right shape (UG_E_SCHEMA). Checks no signature. */
int ug2_multisig_decode(ug2_multisig *m, const uint8_t *buf, size_t len, size_t max, ug_err *err) UG_WUR;
/* The threshold rule: the number of distinct keys of keys[0..n) with a
 * valid signature over ctx || 0 || body, where only the first entry of
 * each kid counts and entries of unlisted kids are ignored. */
size_t ug2_multisig_count(const ug2_multisig *m, const char *ctx, const ug_pubkey *keys, size_t n);
/* 0 when at least t keys signed, else UG_E_THRESHOLD. */
int ug2_multisig_check(const ug2_multisig *m, const char *ctx, const ug_pubkey *keys, size_t n, unsigned t,
                       ug_err *err) UG_WUR;
/* sig->kid = kid of sk's public key; sig->sig over ctx || 0 || body. */
int ug2_sig_make(ug2_sig *sig, const char *ctx, const uint8_t *body, size_t body_len,
                 const uint8_t sk[UG_SK_LEN]) UG_WUR;
/* Writes [body, [[kid, sig] for each of sigs[0..n)]] (1 <= n <= 16). */
int ug2_multisig_encode(uint8_t *out, size_t cap, size_t *len, const uint8_t *body, size_t body_len,
                        const ug2_sig *sigs, size_t n) UG_WUR;
/* The same, signed here by each of sks[0..n) in turn. */
int ug2_multisig_sign(uint8_t *out, size_t cap, size_t *len, const char *ctx, const uint8_t *body,
                      size_t body_len, const uint8_t *const *sks, size_t n) UG_WUR;

/* ---- names ------------------------------------------------------------ */

/* A label (app, plat, chan, tracker): 1..max bytes of A-Z a-z 0-9 . _ - + */
bool ug2_label_valid(const char *s, size_t len, size_t max);
/* A keyring URL: a manifest URL (ug_url_valid) that ends with "/". The
 * keyring of version N is fetched from URL followed by "N.keyring". */
bool ug2_keyring_url_valid(const char *url, size_t len);
/* url + "N.keyring" into out; -1 if it does not fit. */
int ug2_keyring_url(char *out, size_t cap, const char *base, uint32_t kv) UG_WUR;

/* ---- keyring --------------------------------------------------------- */

typedef struct {
    uint32_t kv; /* 1.. (an anchor may be 0) */
    uint64_t exp;
    uint8_t nroot, root_t;
    ug_pubkey root[UG2_KEYS_MAX];
    uint8_t nrel, rel_t;
    ug_pubkey rel[UG2_KEYS_MAX];
    uint8_t ncert, cert_t;
    ug_pubkey cert[UG2_KEYS_MAX];
    uint64_t min_serial;
    uint8_t nurls; /* 0: absent */
    char urls[UG2_KR_URLS_MAX][UG_URL_MAX + 1];
} ug2_keyring;

int ug2_keyring_decode(ug2_keyring *k, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug2_keyring_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_keyring *k) UG_WUR;
/* A whole keyring document (at most UG2_KEYRING_MAX bytes): the object and
 * its body, no signature checked. */
int ug2_keyring_open(ug2_keyring *k, ug2_multisig *m, const uint8_t *doc, size_t len, ug_err *err) UG_WUR;
/* The pinned trust anchor as a keyring with only its roots: version kv
 * (that of the keyring the roots come from, 0 if none), roots[0..n)
 * distinct, 1 <= t <= n <= 8. -1 otherwise. */
int ug2_anchor_set(ug2_keyring *k, uint32_t kv, const uint8_t (*roots)[UG_PK_LEN], size_t n, unsigned t) UG_WUR;
/* The chain step (protocol-v2.md 5.1): doc is accepted after held (a full
 * keyring, or only an anchor when held_is_anchor) when it is version
 * held+1 signed by a threshold of held's roots and of its own, or, after an
 * anchor only, the anchor's own version with the anchor's roots and
 * threshold, signed by them. Expiry is not checked here. *next gets it. */
int ug2_keyring_step(const ug2_keyring *held, bool held_is_anchor, const uint8_t *doc, size_t len,
                     ug2_keyring *next, ug_err *err) UG_WUR;
/* Keyring k signed by a threshold of its own roots (a tracker at load). */
int ug2_keyring_self_check(const ug2_keyring *k, const ug2_multisig *m, ug_err *err) UG_WUR;

/* ---- hint certificate ------------------------------------------------ */

typedef struct {
    uint8_t pk[UG_PK_LEN]; /* the hint key */
    uint8_t kid[UG_KID_LEN];
    uint64_t serial;
    uint64_t nbf, exp;
    uint32_t kv;
    char trk[UG2_LABEL_MAX + 1]; /* "" when absent */
} ug2_cert;

int ug2_cert_decode(ug2_cert *c, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug2_cert_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_cert *c) UG_WUR;
/* A whole certificate object (at most UG_OBJ_MAX bytes), nothing checked. */
int ug2_cert_open(ug2_cert *c, ug2_multisig *m, const uint8_t *obj, size_t len, ug_err *err) UG_WUR;

/* What a certificate is judged against (protocol-v2.md 5.2). */
typedef struct {
    const ug2_keyring *kr; /* the newest keyring held */
    uint64_t min_serial;   /* the minimum serial in force */
    const char *tracker;   /* the tracker's name, NULL or "" for any */
    uint64_t now;          /* the verifier's clock */
} ug2_cert_ctx;

/* The certificate rules at signed time ts: kv not newer than kr
 * (UG_E_KEYRING, *need_kv), threshold of kr's cert keys, lifetime <= 90
 * days, serial >= min, nbf <= ts, exp > max(now, ts), tracker name. */
int ug2_cert_check(const ug2_cert *c, const ug2_multisig *m, const ug2_cert_ctx *x, uint64_t ts,
                   uint32_t *need_kv, ug_err *err) UG_WUR;

/* ---- release manifest v2 -------------------------------------------- */

typedef struct {
    ug_version from;
    uint64_t size;
    uint8_t hash[UG_HASH_LEN];
    uint8_t nurls;
    char urls[UG_URLS_MAX][UG_URL_MAX + 1];
} ug2_delta;

typedef struct {
    ug_version to;
    uint8_t nurls;
    char urls[UG_URLS_MAX][UG_URL_MAX + 1];
    uint64_t size;
    uint8_t hash[UG_HASH_LEN];
    uint64_t exp;
    char app[UG2_LABEL_MAX + 1];
    uint8_t nplat;
    char plat[UG2_PLATS_MAX][UG2_LABEL_MAX + 1];
    char chan[UG2_CHAN_MAX + 1];
    uint64_t seq;
    uint8_t urgency;   /* ug2_urgency */
    bool downgrade;    /* `downgrade: true` present */
    uint64_t min_serial; /* 0: absent */
    uint8_t ndeltas;   /* 0: absent */
    ug2_delta deltas[UG2_DELTAS_MAX];
    uint8_t nkeyring;  /* 0: absent */
    char keyring[UG2_KR_URLS_MAX][UG_URL_MAX + 1];
} ug2_manifest;

int ug2_manifest_decode(ug2_manifest *m, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug2_manifest_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_manifest *m) UG_WUR;
int ug2_manifest_open(ug2_manifest *m, ug2_multisig *ms, const uint8_t *obj, size_t len, ug_err *err) UG_WUR;
/* Index of the delta from version v, or -1. */
int ug2_manifest_delta_for(const ug2_manifest *m, const ug_version *v);

/* ---- freshness token ------------------------------------------------- */

typedef struct {
    char app[UG2_LABEL_MAX + 1];
    char chan[UG2_CHAN_MAX + 1];
    uint64_t seq;
} ug2_seq;

typedef struct {
    char trk[UG2_LABEL_MAX + 1];
    uint64_t ts, exp;
    uint32_t kv;
    uint8_t nseqs;
    ug2_seq seqs[UG2_SEQS_MAX];
} ug2_token;

int ug2_token_decode(ug2_token *t, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug2_token_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_token *t) UG_WUR;
/* The signed token [body, sig] under the hint key (a tracker, once a minute). */
int ug2_token_sign(uint8_t *out, size_t cap, size_t *len, const ug2_token *t, const uint8_t sk[UG_SK_LEN]) UG_WUR;
/* The seq t lists for (app, chan), or 0. */
uint64_t ug2_token_seq(const ug2_token *t, const char *app, const char *chan);

/* ---- datagrams -------------------------------------------------------- */

/* [ "UG", 2, type, body, sig|nil ], as ug_dgram_decode is for version 1. */
int ug2_dgram_decode(ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;
/* The v2 datagram; sk (with its type's UG2 context) for HELLO, HINT and
 * REPORT, NULL for WAIT and COOKIE. */
int ug2_dgram_encode(uint8_t *out, size_t cap, size_t *len, ug_type type, const uint8_t *body, size_t body_len,
                     const uint8_t *sk) UG_WUR;

typedef struct {
    ug_hello base;   /* the v1 fields; plat and chan always set */
    char app[UG2_LABEL_MAX + 1];
    uint32_t kv;     /* the newest keyring the peer holds */
} ug2_hello;

typedef struct {
    uint64_t uid;
    uint8_t nonce[UG_NONCE_LEN];
    uint64_t ts, exp, mirror;
    uint32_t kv;
    bool has_delta;
    uint64_t delta;
    ug2_multisig cert_obj; /* points into the body */
    ug2_cert cert;
    ug2_multisig rel_obj;
    ug2_manifest rel;
} ug2_hint;

typedef struct {
    uint8_t nonce[UG_NONCE_LEN];
    uint64_t ts, retry, why;
    bool has_token;
    ug_signed tok_obj; /* points into the body */
    ug2_token tok;
    ug2_multisig cert_obj;
    ug2_cert cert;
} ug2_wait;

typedef struct {
    ug_report base;
    char app[UG2_LABEL_MAX + 1];
    uint8_t via; /* ug2_via */
} ug2_report;

/* Strict body decoders (canonical msgpack, exact key sets, the content
 * rules in table order); they check no signature. */
int ug2_hello_decode(ug2_hello *h, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug2_hint_decode(ug2_hint *h, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug2_wait_decode(ug2_wait *w, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
int ug2_report_decode(ug2_report *r, const uint8_t *body, size_t len, ug_err *err) UG_WUR;
/* A COOKIE v2 body is a v1 one: ug_cookie_decode. */

/* A whole HELLO v2 datagram (512..1232 bytes) in one strict pass, the
 * credential located but not decoded: ug_hello_cred_decode(&h->base)
 * before the checks, as for version 1. d as in ug_hello_parse. */
int ug2_hello_parse(ug2_hello *h, ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;
/* A whole REPORT v2 datagram, credential decoded. */
int ug2_report_parse(ug2_report *r, ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err) UG_WUR;

/* ---- encoders ---------------------------------------------------------- */

typedef struct {
    ug_hello_fields base; /* plat and chan required */
    const char *app;
    uint32_t kv;
} ug2_hello_fields;
int ug2_hello_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_hello_fields *h) UG_WUR;
/* A signed HELLO v2 padded to target bytes (512..1232), as ug_hello_build. */
int ug2_hello_build(uint8_t *out, size_t cap, size_t *len, ug2_hello_fields *h, size_t target,
                    const uint8_t sk[UG_SK_LEN]) UG_WUR;

typedef struct {
    uint64_t uid;
    uint8_t nonce[UG_NONCE_LEN];
    uint64_t ts, exp, mirror;
    uint32_t kv;
    const uint8_t *cert; /* the certificate object, as issued */
    size_t cert_len;
    const uint8_t *rel; /* the manifest object, as signed */
    size_t rel_len;
    bool has_delta;
    uint64_t delta;
} ug2_hint_fields;
int ug2_hint_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_hint_fields *h) UG_WUR;

typedef struct {
    ug_wait base;
    const uint8_t *tok; /* the signed token, NULL: none */
    size_t tok_len;
    const uint8_t *cert; /* required with tok */
    size_t cert_len;
} ug2_wait_fields;
int ug2_wait_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_wait_fields *w) UG_WUR;

typedef struct {
    ug_report_fields base;
    const char *app;
    ug2_via via;
} ug2_report_fields;
int ug2_report_encode_body(uint8_t *out, size_t cap, size_t *len, const ug2_report_fields *r) UG_WUR;
/* A signed REPORT v2 padded to at least target bytes (0: no pad). */
int ug2_report_build(uint8_t *out, size_t cap, size_t *len, ug2_report_fields *r, size_t target,
                     const uint8_t sk[UG_SK_LEN]) UG_WUR;

/* Longest HINT v2 datagram carrying these objects (uint64 uid, ts, exp, a
 * delta index): a policy is refused if it exceeds UG_DGRAM_MAX. */
size_t ug2_hint_max_len(size_t cert_len, size_t rel_len);
/* Longest WAIT v2 datagram carrying a token and certificate of these sizes
 * (0, 0: none). A tracker sends the token only where it fits. */
size_t ug2_wait_max_len(size_t tok_len, size_t cert_len);

/* ---- tracker side ----------------------------------------------------- */

/* Rule 4 for a HELLO v2: the credential (decoded first with
 * ug_hello_cred_decode) and the HELLO's own signature. */
int ug2_hello_sig_verify(const ug2_hello *h, const ug_dgram *d, ug_err *err) UG_WUR;
int ug2_hello_verify(ug2_hello *h, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers, uint64_t now,
                     ug_err *err) UG_WUR;
/* Rule 4 for a REPORT v2 (credential and signature; window and offer are
 * the tracker's). */
int ug2_report_verify(const ug2_report *r, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers,
                      uint64_t now, ug_err *err) UG_WUR;

/* What a tracker holds and checks when it loads its policy (6.1). */
typedef struct {
    ug2_keyring kr;
    ug2_cert cert;
    const uint8_t *keyring_doc; /* the caller's bytes, served on */
    size_t keyring_len;
    const uint8_t *cert_obj;
    size_t cert_len;
} ug2_tracker_keys;

/* The keyring signed by a threshold of its own roots and unexpired; the
 * certificate valid under it at now; its key hint_pk. */
int ug2_tracker_keys_check(ug2_tracker_keys *t, const uint8_t *keyring_doc, size_t keyring_len,
                           const uint8_t *cert_obj, size_t cert_len, const uint8_t hint_pk[UG_PK_LEN],
                           uint64_t now, ug_err *err) UG_WUR;
/* A manifest the tracker would serve: threshold of the keyring's release
 * keys, unexpired, and not revoking the tracker's own certificate. */
int ug2_tracker_manifest_check(ug2_manifest *m, const uint8_t *obj, size_t len, const ug2_tracker_keys *t,
                               uint64_t now, ug_err *err) UG_WUR;

/* ---- peer side -------------------------------------------------------- */

/* Everything a peer knows; the fields marked (persist) survive restarts. */
typedef struct {
    ug2_keyring kr;    /* (persist) the newest keyring verified, or the anchor */
    bool has_keyring;  /* (persist) false: kr holds only the pinned anchor */
    char app[UG2_LABEL_MAX + 1];
    char plat[UG2_LABEL_MAX + 1];
    char chan[UG2_CHAN_MAX + 1];
    char tracker[UG2_LABEL_MAX + 1]; /* the tracker's name; "" for any */
    ug_version current;
    uint64_t seq_hi;     /* (persist) highest seq verified for (app, chan) */
    uint64_t min_serial; /* (persist) minimum serial learned from manifests */
    uint64_t floor;      /* (persist) highest signed time verified */
    uint64_t fresh_at;   /* (persist) signed time of the newest valid token or HINT */
    uint64_t now;        /* the system clock */
    uint64_t uid;        /* this request */
    uint8_t nonce[UG_NONCE_LEN];
} ug2_peer;

/* The peer's clock: max(now, floor). Only signed times raise floor. */
uint64_t ug2_peer_now(const ug2_peer *p);
/* max(keyring's min_serial, learned min_serial). */
uint64_t ug2_peer_min_serial(const ug2_peer *p);
/* The keyring version to fetch next. */
uint32_t ug2_peer_next_kv(const ug2_peer *p);
/* The chain step from what p holds; on success p holds doc's keyring, and
 * when doc's release keys share none with the old keyring's, seq_hi and the
 * learned min_serial restart at 0 (recovery from fast-forward). */
int ug2_peer_keyring(ug2_peer *p, const uint8_t *doc, size_t len, ug_err *err) UG_WUR;
/* Every check of section 5.4 on a whole HINT v2 datagram, in order;
 * UG_E_KEYRING with *need_kv when a newer keyring must be walked to first. */
int ug2_hint_verify(ug2_hint *h, const uint8_t *dgram, size_t len, const ug2_peer *p, uint32_t *need_kv,
                    ug_err *err) UG_WUR;
/* After a verified HINT: seq_hi, min_serial, floor and fresh_at move up. */
void ug2_peer_note_hint(ug2_peer *p, const ug2_hint *h);
/* A whole WAIT v2 datagram for our nonce; its token, when it carries one,
 * verified as in section 5.5. A WAIT whose token fails is -1 with the
 * token's reason, w decoded (its retry still stands; nothing else moves). */
int ug2_wait_verify(ug2_wait *w, const uint8_t *dgram, size_t len, const ug2_peer *p, uint32_t *need_kv,
                     ug_err *err) UG_WUR;
/* The token checks alone, on a decoded WAIT that carries one. */
int ug2_token_verify(const ug2_wait *w, const ug2_peer *p, uint32_t *need_kv, ug_err *err) UG_WUR;
/* After a verified token: floor and fresh_at move up. */
void ug2_peer_note_token(ug2_peer *p, const ug2_wait *w);
/* "Updates may be blocked": no valid token or HINT for max_age seconds. */
bool ug2_peer_blocked(const ug2_peer *p, uint64_t max_age);

#endif
