/* Address cookies: a keyed MAC of source address, port and time slot; and the sources that showed one lately. */
#ifndef UG_COOKIEJAR_H
#define UG_COOKIEJAR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ug_proto.h"

/* Seconds per slot; a cookie is good in its slot and the next one. */
#define UG_COOKIE_SLOT 60u

#define UG_PROVEN_SLOTS 65536u /* sources remembered as having shown a cookie */

typedef struct {
    uint8_t *master; /* sodium_malloc'ed random key, never leaves the jar */
    _Atomic uint64_t *proven; /* a cookie's first 8 bytes per source, direct-mapped; shared by the workers */
} ug_cookiejar;

int ug_cookiejar_init(ug_cookiejar *j) UG_WUR;
void ug_cookiejar_free(ug_cookiejar *j);
/* The cookie for src at time now. The per-slot secret is derived from the
 * master key, so rotation needs no shared mutable state between workers. */
void ug_cookiejar_make(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now,
                       uint8_t cookie[UG_COOKIE_LEN]);
/* Valid for the current or the previous slot; constant-time compare. */
bool ug_cookiejar_check(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now,
                        const uint8_t cookie[UG_COOKIE_LEN]);

/* src showed a valid cookie at now: REPORTs from it are let through while
 * cookies are required (a REPORT cannot carry one: issue 21 §1). */
void ug_cookiejar_proved(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now);
/* Did src (address and port) show one in this slot or the last? A spoofer
 * would need the cookie itself: the table holds the MAC, not the source. */
bool ug_cookiejar_was_proved(const ug_cookiejar *j, const struct sockaddr *src, uint64_t now);

#endif
