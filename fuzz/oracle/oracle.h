/* The oracle: proto/'s decoders as they were before the single-pass reader
 * (msgpack-c behind a strict pre-scan, then schema matching), and the
 * comparisons that hold the new decoders to its verdicts. Linked only into
 * the fuzzers and the tests, never into a program or the plugin. */
#ifndef UG_ORACLE_H
#define UG_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

/* Rule 4 whole, the way a test states it: the credential's cheap checks,
 * its signature, the HELLO's signature (h's credential decoded). The plugin
 * runs the same three checks apart (it caches credentials); tests and
 * fuzzers hold it to this. */
int or_hello_verify(const ug_hello *h, const ug_dgram *d, const ug_pubkey *issuers, size_t nissuers, uint64_t now,
                    ug_err *err);

/* The old decoders, unchanged but for their names (or_ for ug_). */
int or_dgram_decode(ug_dgram *d, const uint8_t *buf, size_t len, ug_err *err);
int or_signed_decode(ug_signed *s, const uint8_t *buf, size_t len, ug_err *err);
int or_cred_decode(ug_cred *c, const uint8_t *body, size_t len, ug_err *err);
int or_hello_decode(ug_hello *h, const uint8_t *body, size_t len, ug_err *err);
/* or_hello_decode, with or without decoding the credential's body. */
int or_hello_decode_cred(ug_hello *h, const uint8_t *body, size_t len, bool with_cred, ug_err *err);
int or_manifest_decode(ug_manifest *m, const uint8_t *body, size_t len, ug_err *err);
int or_hint_decode(ug_hint *h, const uint8_t *body, size_t len, ug_err *err);
int or_wait_decode(ug_wait *w, const uint8_t *body, size_t len, ug_err *err);
int or_cookie_decode(ug_cookie *c, const uint8_t *body, size_t len, ug_err *err);
int or_report_decode(ug_report *r, const uint8_t *body, size_t len, ug_err *err);

/* Each decodes buf[0..len) with the new decoder and the oracle and returns
 * NULL when both give the same verdict, the same reason and the same
 * fields, else a one-line account of the first difference (in msg). */
typedef struct {
    char text[256];
} or_msg;

const char *or_cmp_dgram(const uint8_t *buf, size_t len, or_msg *msg);
const char *or_cmp_signed(const uint8_t *buf, size_t len, or_msg *msg);
const char *or_cmp_cred(const uint8_t *buf, size_t len, or_msg *msg);
const char *or_cmp_hello(const uint8_t *buf, size_t len, or_msg *msg);         /* a body */
const char *or_cmp_hello_parse(const uint8_t *buf, size_t len, or_msg *msg);   /* a datagram */
const char *or_cmp_report(const uint8_t *buf, size_t len, or_msg *msg);        /* a body */
const char *or_cmp_report_parse(const uint8_t *buf, size_t len, or_msg *msg);  /* a datagram */
const char *or_cmp_manifest(const uint8_t *buf, size_t len, or_msg *msg);
const char *or_cmp_hint(const uint8_t *buf, size_t len, or_msg *msg);
const char *or_cmp_wait(const uint8_t *buf, size_t len, or_msg *msg);
const char *or_cmp_cookie(const uint8_t *buf, size_t len, or_msg *msg);
/* Every comparison above, on the bytes as they are and, when they are a
 * datagram either side accepts, on its body as the body its type names. */
const char *or_cmp_all(const uint8_t *buf, size_t len, or_msg *msg);

#endif
