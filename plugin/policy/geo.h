/* Where an address is: a MaxMind DB (GeoIP2/GeoLite2 City or Country
 * layout) read through libmaxminddb, for the `regions` condition. */
#ifndef UG_GEO_H
#define UG_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "policy/policy.h"

#define UG_GEO_SUBS_MAX 4u /* subdivision levels looked at */

typedef struct {
    char country[3];                  /* ISO 3166-1 alpha-2, "" when unknown */
    char sub[UG_GEO_SUBS_MAX][4];     /* subdivisions' ISO 3166-2 codes, minus the country */
    unsigned nsub;
} ug_place;

/* Opens the DB at path: a regular file (opened without blocking first, so
 * a FIFO cannot hang a reload), in the MaxMind DB format. A DB already
 * open for the same unchanged file (device, inode, size, mtime) is shared.
 * NULL with the reason in why. Lookups may run concurrently; close once
 * none runs (the last close unmaps it). */
ug_geo *ug_geo_open(const char *path, char *why, size_t whycap) UG_WUR;
void ug_geo_close(ug_geo *g);
/* The place of sa's address (an IPv4-mapped IPv6 one as IPv4): false when
 * the DB does not know it. */
bool ug_geo_lookup(const ug_geo *g, const struct sockaddr *sa, ug_place *out);

#endif
