/* Policy file (spec/policy.md): loaded whole, validated whole, then read-only. */
#ifndef UG_POLICY_H
#define UG_POLICY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ug_proto.h"

#define UG_STAGE_NAME_MAX 32u
#define UG_SALT_MAX 64u
#define UG_PATH_MAX 1024u
#define UG_ERR_MAX 512u /* room for "file:line: key: message" */

/* A set of IPv4 and IPv6 prefixes answering "is this address inside any of
 * them" in O(address bits), whatever the number of prefixes. */
typedef struct ug_nets ug_nets;
ug_nets *ug_nets_new(void);
/* Adds "a.b.c.d/len" or "x:y::/len" (a bare address is a /32 or /128).
 * -1 on a malformed prefix or host bits set past len. */
int ug_nets_add(ug_nets *n, const char *cidr) UG_WUR;
/* family AF_INET (4 bytes) or AF_INET6 (16 bytes); an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is looked up as the IPv4 address. */
bool ug_nets_contains(const ug_nets *n, int family, const uint8_t *addr);
bool ug_nets_contains_sa(const ug_nets *n, const struct sockaddr *sa);
void ug_nets_free(ug_nets *n);

/* A read-only set of uids (hash set, O(1) lookup). */
typedef struct ug_uidset ug_uidset;
ug_uidset *ug_uidset_new(void);
int ug_uidset_add(ug_uidset *s, uint64_t uid) UG_WUR; /* -1 only on out of memory */
bool ug_uidset_has(const ug_uidset *s, uint64_t uid);
size_t ug_uidset_count(const ug_uidset *s);
void ug_uidset_free(ug_uidset *s);

typedef enum { UG_TARGET_EQ, UG_TARGET_LT, UG_TARGET_LE } ug_target_op;
typedef struct {
    ug_target_op op;
    ug_version v;
} ug_target;

typedef enum { UG_COOKIE_NEVER, UG_COOKIE_ALWAYS, UG_COOKIE_AUTO } ug_cookie_mode;

/* Bits of ug_stage.conds: which conditions a stage names. */
enum {
    UG_COND_NETWORKS = 1u << 0,
    UG_COND_UIDS = 1u << 1, /* uids and/or uids_file */
    UG_COND_DIGITS = 1u << 2,
    UG_COND_MOD = 1u << 3,
    UG_COND_PERCENT = 1u << 4,
    UG_COND_PLAT = 1u << 5,
    UG_COND_CHAN = 1u << 6,
    UG_COND_START = 1u << 7,
    UG_COND_END = 1u << 8,
};

typedef struct {
    char name[UG_STAGE_NAME_MAX + 1];
    char salt[UG_SALT_MAX + 1]; /* percent salt; default the name */
    size_t salt_len;
    unsigned conds;
    ug_nets *nets;
    ug_uidset *uids;
    uint32_t uid_digits_max; /* 1..19 */
    uint64_t mod_div, mod_rem; /* div >= 1, rem < div */
    uint32_t percent_bp;      /* percent * 100, 0..10000 */
    char (*plat)[UG_PLAT_MAX + 1];
    size_t nplat;
    char (*chan)[UG_CHAN_MAX + 1];
    size_t nchan;
    int64_t start, end; /* Unix seconds; active when start <= now < end */
    bool has_quota;
    uint64_t quota; /* fleet-wide; this tracker holds ug_policy_share() of it */
    bool has_rate;
    double rate; /* new offers per second, > 0 */
} ug_stage;

typedef struct {
    char path[UG_PATH_MAX];
    uint8_t *hint_sk; /* sodium_malloc'ed 64-byte secret key */
    ug_pubkey hint_pub;
    ug_pubkey *issuers;
    size_t nissuers;
    uint8_t *manifest; /* the release's signed object, raw, as in the file */
    size_t manifest_len;
    ug_manifest rel;
    ug_target *targets;
    size_t ntargets;
    char state_dir[UG_PATH_MAX];
    uint64_t clock_window; /* default 300 */
    uint64_t hint_ttl;     /* default 3600 */
    uint64_t retry;        /* default 3600 */
    ug_cookie_mode cookie; /* default auto */
    uint64_t cookie_threshold; /* auto: signature checks per second that switch cookies on; default 1000 */
    uint64_t source_budget;    /* signature checks per second per /24 or /56; 0: no limit; default 1000 */
    uint32_t shard_index, shard_count; /* default 0 of 1 */
    bool paused; /* extension: every targeted peer gets WAIT why=4 */
    ug_stage *stages;
    size_t nstages;
} ug_policy;

/* Loads and validates the policy at path. On failure returns NULL and writes
 * one line "path:line: key: what is wrong" into err. */
ug_policy *ug_policy_load(const char *path, char *err, size_t errcap) UG_WUR;
void ug_policy_free(ug_policy *p);

/* Is a peer at version v one to upgrade? */
bool ug_policy_targets(const ug_policy *p, const ug_version *v);
/* This tracker's share of a fleet-wide quota: floor(q / count), plus one when
 * index < q % count. */
uint64_t ug_policy_share(const ug_policy *p, uint64_t quota);
/* start <= now < end, for the bounds the stage names. */
bool ug_stage_active(const ug_stage *s, int64_t now);
/* Every condition the stage names, except quota and rate, holds for this
 * HELLO from src (time window included). */
bool ug_stage_matches(const ug_stage *s, const ug_hello *h, const struct sockaddr *src, int64_t now);

#endif
