/* Address cookies: a keyed MAC of source address, port and time slot. */
#ifndef UG_COOKIEJAR_H
#define UG_COOKIEJAR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ug_proto.h"

/* Seconds per slot; a cookie is good in its slot and the next one. */
#define UG_COOKIE_SLOT 60u

typedef struct {
    uint8_t *master; /* sodium_malloc'ed random key, never leaves the jar */
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

#endif
