/* Policy file (spec/policy.md, versions 1 and 2): loaded whole, validated whole, then read-only. */
#ifndef UG_POLICY_H
#define UG_POLICY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "calendar/calendar.h"
#include "policy/ugpolicy.h"
#include "ug_proto2.h"

#define UG_NAME_MAX 32u   /* rollout and stage names: [a-z0-9-]{1,32} */
#define UG_STAGE_NAME_MAX UG_NAME_MAX
#define UG_SALT_MAX 64u
#define UG_PATH_MAX 1024u
#define UG_ERR_MAX 512u /* room for "file:line: key: message" */
#define UG_TRACKER_MAX 64u /* fleet tracker names */
#define UG_URL_TEXT_MAX 512u
#define UG_POLICY_FILE_MAX (16u << 20) /* big uid lists belong in a uids_file */

/* A set of IPv4 and IPv6 prefixes answering "is this address inside any of
 * them" in O(log prefixes), in memory linear in the prefixes. */
typedef struct ug_nets ug_nets;
ug_nets *ug_nets_new(void);
/* Adds "a.b.c.d/len" or "x:y::/len" (a bare address is a /32 or /128).
 * -1 on a malformed prefix or host bits set past len. */
int ug_nets_add(ug_nets *n, const char *cidr) UG_WUR;
/* Sorts and merges the prefixes added so far: a lookup is then one binary
 * search. Prefixes added since the last seal are still found, one by one.
 * The loader seals every set it builds. */
void ug_nets_seal(ug_nets *n);
/* An IPv4-mapped IPv6 source (::ffff:a.b.c.d) is looked up as IPv4. */
bool ug_nets_contains_sa(const ug_nets *n, const struct sockaddr *sa);
void ug_nets_free(ug_nets *n);

/* A read-only set of uids (hash set, O(1) lookup). */
typedef struct ug_uidset ug_uidset;
ug_uidset *ug_uidset_new(void);
int ug_uidset_add(ug_uidset *s, uint64_t uid) UG_WUR; /* -1 only on out of memory */
bool ug_uidset_has(const ug_uidset *s, uint64_t uid);
void ug_uidset_free(ug_uidset *s);

typedef enum { UG_COOKIE_NEVER, UG_COOKIE_ALWAYS, UG_COOKIE_AUTO } ug_cookie_mode;

/* What a stage condition looks at: a peer's claims and the clock. */
typedef struct {
    uint64_t uid;
    const ug_version *ver;
    const char *plat; /* "" when absent */
    const char *chan; /* "" when absent */
    const struct sockaddr *src;
    int64_t now;
} ug_peer;

/* Bits of ug_cond_kind.flags and ug_stage.cond_flags. */
#define UG_CONDF_ADDRESS 1u /* reads the source address: counts only once a
                               cookie proved it (policy.md, v2 semantics) */
#define UG_CONDF_SECRET 2u  /* a list an operator keeps secret (uids, uids_file): its
                               rollout verifies before any answer unless `verify: claims` */

/* One row of the condition table: a stage key and what it means. Adding a
 * condition is one row, its functions and its test (docs/conditions.md).
 * The loader side of a row (its YAML parser) lives beside the table in the
 * loader; the plugin only ever matches and describes. */
typedef struct ug_cond_kind {
    const char *key; /* "networks", "regions", "uids", ... */
    unsigned flags;  /* UG_CONDF_* */
    /* Does the condition hold for p? arg is what the row's loader built. */
    bool (*match)(const void *arg, const ug_peer *p);
    /* A short text of the condition for summaries and traces, e.g.
     * "uid % 3 == 1" or "regions CN-BJ, DE"; truncated to cap. */
    void (*describe)(const void *arg, char *out, size_t cap);
    void (*free)(void *arg);
} ug_cond_kind;

typedef struct {
    const ug_cond_kind *kind;
    void *arg;
    bool owns; /* false when an earlier stage's condition holds the same arg
                  (one YAML node aliased by both): ug_policy_free frees it once */
} ug_cond;

/* A percentage in force as a function of the clock (policy.md): constant,
 * steps (each in force from its `at` until the next; 0 before the first;
 * never decreasing), or linear from `from` at start to `to` at end (0
 * before start). Values are hundredths of a percent, 0..10000. */
typedef enum { UG_PCT_CONST, UG_PCT_STEPS, UG_PCT_LINEAR } ug_pct_kind;

/* Which outcomes health judges (docs/policy-v2-extensions.md "Gates and
 * windowed health"): each uid's latest one, set within the last `window`
 * seconds and/or among the `last` most recent; both 0: every one
 * (cumulative). */
typedef struct {
    uint64_t window; /* seconds; 0: no time limit */
    uint32_t last;   /* 0: no count limit */
} ug_health_window;

/* A promotion gate on a percent step: what must hold before the step comes
 * into force, judged on the outcomes known since the step before it came
 * into force (policy_gates.c). */
typedef struct {
    bool manual;            /* released only by `upgate-ctl promote` */
    uint64_t min_outcomes;  /* 0: none asked */
    bool has_upgraded, has_failed, has_baseline;
    uint32_t upgraded_ppm;  /* upgraded share at least this */
    uint32_t failed_ppm;    /* failed share at most this */
    uint32_t baseline_milli; /* failed share at most this/1000 x the previous release's */
    ug_health_window hw;
} ug_gate;

typedef struct {
    int64_t at;
    uint32_t bp;
    ug_gate *gate;       /* NULL: none */
    uint64_t hold_after; /* seconds this step is in force before any later one; 0: none */
} ug_pct_step;
typedef struct {
    ug_pct_kind kind;
    uint32_t bp;        /* CONST */
    ug_pct_step *steps; /* STEPS, in time order */
    size_t nsteps;
    uint32_t from_bp, to_bp; /* LINEAR */
    int64_t start, end;      /* LINEAR, start < end */
    bool gated;              /* STEPS: some step waits for a gate or a hold_after */
} ug_percent;

/* The value in force at t, in whole hundredths of a percent rounded down,
 * computed in integers. Non-decreasing in t. */
uint32_t ug_percent_at(const ug_percent *pc, int64_t t);
/* Steps: the index of the last step whose `at` has passed at t; -1: none. */
long ug_percent_index(const ug_percent *pc, int64_t t);

/* Off-peak windows of a rollout or stage (docs/policy-v2-extensions.md):
 * the calendar built at load, NULL when the key is absent (always open). */
typedef struct {
    ug_cal *cal;
    bool peer;  /* some window reads the peer's zone (a GeoIP lookup per decision) */
    size_t n;   /* windows named */
} ug_windows;

typedef struct {
    char name[UG_NAME_MAX + 1];
    size_t line;          /* where the stage starts in the policy file */
    ug_cond *conds;       /* every condition the stage names, cheapest first */
    size_t nconds;
    unsigned cond_flags;  /* OR of the conditions' kind flags */
    bool has_start, has_end;
    int64_t start, end;   /* Unix seconds; active when start <= now < end */
    bool has_percent;
    ug_percent percent;
    char salt[UG_SALT_MAX + 1]; /* resolved: the stage's own `salt`, else the
                                   rollout's salt (v2) or the stage name (v1) */
    size_t salt_len;
    bool has_quota;
    uint64_t quota;       /* fleet-wide; a shard holds ug_policy_share() of it */
    bool has_rate;
    double rate;          /* new offers per second on this tracker, > 0 */
    bool has_fleet_rate;
    double fleet_rate;    /* new offers per second over the fleet, > 0; a tracker
                             without a fleet is the whole fleet */
    char tz[UG_TZ_NAME_MAX + 1]; /* the stage's `tz`, "" when absent (the rollout's) */
    ug_windows win;       /* the stage offers only inside these */
} ug_stage;

typedef struct {
    char name[UG_NAME_MAX + 1]; /* "default" for a version 1 file */
    size_t line;
    char salt[UG_SALT_MAX + 1]; /* default: the name */
    size_t salt_len;
    char release_path[UG_PATH_MAX]; /* the v1 manifest's, else the v2 one's */
    uint8_t *manifest;          /* the release's signed object, raw, as in the file; NULL
                                   when the rollout has only a v2 manifest */
    size_t manifest_len;
    ug_manifest rel;            /* from the v1 manifest, else the v2 one's to, urls,
                                   size, hash and exp (kid zero) */
    char release2_path[UG_PATH_MAX]; /* `release_v2`, "" when none */
    uint8_t *manifest2;         /* the v2 manifest's multi-signed object, as in the file */
    size_t manifest2_len;
    ug2_manifest *rel2;         /* NULL: version 2 peers are not this rollout's */
    char to[UG_VER_MAX + 1];    /* rel.to as canonical text: names its grants */
    ug_target *targets;
    size_t ntargets;
    char (*plat)[UG_PLAT_MAX + 1]; /* NULL: any platform */
    size_t nplat;
    char (*chan)[UG_CHAN_MAX + 1]; /* NULL: any channel */
    size_t nchan;
    bool paused;                /* the file's `paused: true` */
    bool has_halt_when;
    uint32_t halt_failed_ppm;      /* halt_when.failed, parts per million; 0: not set */
    uint32_t halt_rolled_back_ppm; /* halt_when.rolled_back, parts per million; 0: not set */
    uint64_t halt_min_outcomes;
    ug_health_window halt_hw;   /* halt_when.window / halt_when.last */
    uint64_t outcome_window;    /* seconds; default 86400 */
    bool hold_when_unhealthy;
    bool deltas_off;            /* `deltas: off`: HINTs name the full package only */
    char tz[UG_TZ_NAME_MAX + 1]; /* `tz`: windows' default zone and peers' fallback; "" UTC */
    ug_windows win;             /* the rollout offers only inside these */
    ug_stage *stages;
    size_t nstages;
} ug_rollout;

/* The fleet section (docs/fleet.md); enabled only when present. */
typedef struct {
    bool enabled;
    char redis[UG_URL_TEXT_MAX];   /* redis://host:port/db, unix:///path, or sentinel://h:p[,h:p]/master[/db] */
    char tracker[UG_TRACKER_MAX + 1];
    char password_file[UG_PATH_MAX]; /* "" when none */
    char user[UG_TRACKER_MAX + 1];   /* Redis ACL user to AUTH as; "" : the default user */
    uint64_t lease;   /* slots leased per block; default 0: the fleet module picks */
    uint64_t lease_timeout; /* seconds a silent tracker keeps its lease counted; default 30 */
} ug_fleet_conf;

/* Protocol version 2 (docs/protocol-v2.md, docs/policy-v2-extensions.md):
 * the keyring served and the hint key's certificate, as checked at load
 * (protocol-v2.md 6.1), and what freshness tokens say. */
typedef struct {
    char keyring_path[UG_PATH_MAX], cert_path[UG_PATH_MAX];
    size_t line;                 /* of keys.keyring, for lint */
    uint8_t *keyring_doc;        /* the document as in the file, served on */
    size_t keyring_len;
    uint8_t *cert_obj;           /* the certificate object as issued */
    size_t cert_len;
    ug2_tracker_keys keys;       /* kr and cert decoded; pointers into the bytes above */
    char tracker[UG2_LABEL_MAX + 1]; /* the name tokens carry */
    uint64_t token_ttl;          /* seconds, 1..86400; default 3600 */
    uint8_t nseqs;               /* (app, chan) pairs of the rollouts' v2 manifests, */
    ug2_seq seqs[UG2_SEQS_MAX];  /* each with its highest seq: what tokens list */
    size_t seqs_left_out;        /* pairs past the 8 a token holds (lint) */
} ug_policy_v2;

typedef struct ug_policy {
    char path[UG_PATH_MAX];
    unsigned version; /* 1 or 2 */
    uint8_t *hint_sk; /* sodium_malloc'ed 64-byte secret key */
    ug_pubkey hint_pub;
    ug_pubkey *issuers;
    size_t nissuers;
    char state_dir[UG_PATH_MAX];
    char geoip_path[UG_PATH_MAX]; /* "" when none */
    ug_geo *geo;           /* opened at load, so a reload re-opens it */
    uint64_t clock_window; /* default 300 */
    uint64_t hint_ttl;     /* default 3600 */
    uint64_t retry;        /* default 3600 */
    ug_cookie_mode cookie; /* default auto */
    uint64_t cookie_threshold; /* auto: signature checks per second that switch cookies on; default 1000 */
    uint64_t source_budget;    /* signature checks per second per /24 or /56; 0: no limit; default 1000 */
    uint32_t shard_index, shard_count; /* default 0 of 1 */
    bool verify_always;    /* `verify: always`: both signatures before any answer */
    bool verify_claims;    /* `verify: claims`: a WAIT may come first even in a rollout
                              with a uids stage (issue 21 §3: that leaks who is listed) */
    bool census;           /* `census`, default true: HELLOs counted in the version census */
    ug_fleet_conf fleet;
    ug_policy_v2 *v2;      /* NULL: the tracker speaks version 1 only */
    ug_rollout *rollouts;
    size_t nrollouts;
} ug_policy;

/* A rollout or stage name: [a-z0-9-]{1,UG_NAME_MAX}. */
bool ug_name_valid(const char *s, size_t len);

/* Loads and validates the policy at path. On failure returns NULL and writes
 * one line "path:line: key: what is wrong" into err. */
ug_policy *ug_policy_load(const char *path, char *err, size_t errcap) UG_WUR;
/* The same, judging the version 2 keys and manifests (expiry, validity)
 * at now instead of the system clock. */
ug_policy *ug_policy_load_at(const char *path, uint64_t now, char *err, size_t errcap) UG_WUR;
void ug_policy_free(ug_policy *p);

/* The folder a policy file's relative paths resolve against (policy_path.c;
 * upgate-ctl --policy shares it): absolute when realpath() can make it so,
 * so that a path keeps its meaning if the host later changes its working
 * directory; "" for the root, joined as "" + "/" + rel. */
void ug_policy_dir(const char *path, char out[UG_PATH_MAX]);

/* The rollout that owns a peer at version v with plat and chan ("" when
 * absent): the first whose targets, plat and chan match. NULL: untargeted. */
const ug_rollout *ug_policy_route(const ug_policy *p, const ug_version *v, const char *plat, const char *chan);
/* Why rollout r does not own such a peer (ug_policy_route's test), as one
 * phrase in buf ("version 1.2.0 is not in its targets [1.4.0]", a
 * platform or channel not listed); NULL when it owns it. */
const char *ug_rollout_miss(const ug_rollout *r, const ug_version *v, const char *plat, const char *chan, char *buf,
                            size_t cap);
/* The rollout that owns a version 2 peer (app, plat, chan its HELLO's):
 * the first whose targets, plat and chan match and whose v2 manifest is
 * bound to that app, lists that plat and names that chan; NULL: none. */
const ug_rollout *ug_policy_route_v2(const ug_policy *p, const ug_version *v, const char *app, const char *plat,
                                     const char *chan);
/* The same for a version 1 peer: only rollouts with a v1 manifest. */
const ug_rollout *ug_policy_route_v1(const ug_policy *p, const ug_version *v, const char *plat, const char *chan);
/* Is v one of the rollout's targets (plat and chan aside)? */
bool ug_rollout_targets(const ug_rollout *r, const ug_version *v);
/* This tracker's share of a fleet-wide quota: floor(q / count), plus one when
 * index < q % count. */
uint64_t ug_policy_share(const ug_policy *p, uint64_t quota);
/* Does the stage limit new offers per second (rate, fleet_rate or both)? */
static inline bool ug_stage_rated(const ug_stage *s)
{
    return s->has_rate || s->has_fleet_rate;
}
/* The fast lane: the rollout's v2 manifest, signed by the release keys,
 * says urgency critical; its stages skip their percent schedule. */
static inline bool ug_rollout_critical(const ug_rollout *r)
{
    return r->rel2 && r->rel2->urgency == UG2_URGENCY_CRITICAL;
}
/* Is now inside the windows w (always, without any)? peer_zone: the
 * peer's IANA zone, "" or NULL when unknown. *next: when it next opens
 * (closed) or closes (open), UG_CAL_NEVER when not known. */
bool ug_windows_open(const ug_windows *w, const char *peer_zone, int64_t now, int64_t *next);
/* Moves the calendar's horizon (the host's tick: at most daily work). */
void ug_windows_tick(const ug_windows *w, int64_t now);
struct json_t;
/* For --check, status and explain: {"windows": n, "peer": b, "open": b,
 * "next": t or null} at now (peer windows read in the fallback zone);
 * JSON null without windows. */
struct json_t *ug_windows_json(const ug_windows *w, int64_t now);
/* start <= now < end, for the bounds the stage names. */
bool ug_stage_active(const ug_stage *s, int64_t now);
/* Every condition of the table the stage names holds for p. Percent, quota
 * and rate are the runtime's: they depend on more than the peer. */
bool ug_stage_matches(const ug_stage *s, const ug_peer *p);

/* Calls warn once per lint finding of `upgate-node --check` (a target that
 * includes the release's own version or a newer one, a stage no HELLO can
 * reach, a manifest that expires within 7 days of now, empty stages,
 * hold_when_unhealthy without halt_when.failed, fleet_rate without a fleet),
 * each one line "path:line: key: message". */
void ug_policy_lint(const ug_policy *p, int64_t now, void (*warn)(void *ctx, const char *msg), void *ctx);

/* The summary `upgate-node --check` prints (plugin/policy_json.c): keys,
 * settings, every rollout with its manifest and stages, and "warnings" (the
 * lint findings at now). No secret is in it. A new jansson object; NULL
 * only when out of memory. */
struct json_t *ug_policy_summary(const ug_policy *p, int64_t now);

/* What going from policy a to b changes, in one line of at most cap - 1
 * bytes (cut with "..."): rollouts removed and added; per rollout in both,
 * its release, paused, stages removed and added, and each stage's percent
 * in force at now and quota, e.g. "rollout beta: release 2.0.0 -> 2.0.1;
 * stage canary percent 5 -> 10, quota 100 -> 200". */
void ug_policy_diff(const ug_policy *a, const ug_policy *b, int64_t now, char *out, size_t cap);

#endif
