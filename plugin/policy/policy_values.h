/* The policy's value parsers beyond those programs share (ugpolicy.h): text in, value out, nothing else (no YAML,
 * no files, no messages). Each returns 0, or -1 when the text is not one. */
#ifndef UG_POLICY_VALUES_H
#define UG_POLICY_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "policy/ugpolicy.h"

/* A fleet's redis address, syntax only: redis://HOST[:PORT][/DB],
 * unix:///PATH, or sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]. HOST a
 * name or [IPv6]; PORT 1..65535 (redis:// defaults to 6379); DB 0..65535;
 * MASTER [A-Za-z0-9._-]{1,64}; at most 16 sentinels. No credentials
 * ("user:pass@"): why says so. why gets the reason; out (may be NULL) the
 * parts: a redis:// host is sentinels[0]. */
#define UG_SENTINELS_MAX 16u
typedef struct {
    char host[254]; /* a name or an IPv6 address without its brackets */
    unsigned port;
} ug_redis_endpoint;
typedef struct {
    enum { UG_REDIS_TCP, UG_REDIS_UNIX, UG_REDIS_SENTINEL } kind;
    ug_redis_endpoint sentinels[UG_SENTINELS_MAX]; /* TCP: [0] is the server */
    unsigned nsentinels;
    char path[UG_URL_TEXT_MAX]; /* UNIX */
    char master[65];            /* SENTINEL */
    unsigned db;
} ug_redis_url;
int ug_parse_redis_url(const char *s, size_t n, ug_redis_url *out, const char **why) UG_WUR;

#endif
