/* The explain argument "uid=N,ver=V,src=ADDR[,plat=P][,chan=C]" of upgate-node --check and upgate-ctl explain. */
#ifndef UG_EXPLAIN_ARG_H
#define UG_EXPLAIN_ARG_H

#include <stddef.h>

#include <jansson.h>

#include "ug_proto.h"

/* Parses s strictly (known keys once each, uid a number, ver a version,
 * src an IPv4 or IPv6 address, uid, ver and src present). 0 with *out the
 * members of a control "explain" request ({"uid": N, "ver": V, "src":
 * ADDR, ...}; NULL out only checks), or -1 with a line in err naming the
 * key or text at fault. */
int ug_explain_arg(const char *s, json_t **out, char *err, size_t errcap) UG_WUR;

#endif
