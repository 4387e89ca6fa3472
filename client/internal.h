/* libupgate internals shared by the client/ sources: the handle, messages, the wire codec underneath. */
#ifndef UG_CLIENT_INTERNAL_H
#define UG_CLIENT_INTERNAL_H

#include <stdarg.h>

#include "ug_proto.h"
#include "upgate/client.h"

#define UG_CLIENT_CRED_MAX 512       /* a credential's signed object */
#define UG_CLIENT_CRED_TEXT_MAX 1024 /* its base64 line */
#define UG_CLIENT_MSG_MAX 1024
#define UG_CLIENT_COOKIE_TTL_S 120u /* a cookie is good for its 60 s slot and the one after */
#define UG_CLIENT_RETRY_MIN_S 60u   /* protocol section 6: clamp a WAIT's retry */
#define UG_CLIENT_RETRY_MAX_S 86400u

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
};

/* Sets c's message (printf-style, truncated to one line) and returns code. */
ug_client_err ug_client_fail_(ug_client *c, ug_client_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same into any buffer. */
void ug_client_vsay_(char *buf, size_t cap, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
uint64_t ug_client_now_(const ug_client *c);
void ug_client_random_(const ug_client *c, uint8_t *buf, size_t len);
/* Is the handle ready to sign (key and credential) and to check (pins)? */
ug_client_err ug_client_ready_(ug_client *c);

/* Makes a rename in path's folder durable (fsync of the folder); best effort. */
void ug_client_sync_dir_(const char *path);

/* The state file's one line, "version=V\n", parsed strictly: V a valid
 * version of at most UG_VER_MAX bytes copied into out[0..cap). 0 or -1. */
int ug_client_state_parse_(const uint8_t *text, size_t len, char *out, size_t cap) UG_WUR;

#endif
