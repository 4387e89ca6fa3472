/* A fleet for tests: real upgate-nodes sharing keys, a release and one real Redis; HELLOs sent over UDP, answers checked. */
#ifndef UG_FLEETUTIL_H
#define UG_FLEETUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fixture.h"
#include "nodeutil.h"
#include "redisutil.h"

#define FU_MAX 4

typedef struct {
    fx_t fx;         /* keys, manifest and signed HELLOs */
    ru_redis redis;  /* started by fu_init unless a URL was given */
    char url[200];   /* fleet.redis */
    char url_of[FU_MAX][200]; /* tracker i's own fleet.redis when set (a relay) */
    nu_node node[FU_MAX];
    char name[FU_MAX][8];
    unsigned n;
    char fleet_extra[256], stages[2048];
    unsigned workers[FU_MAX];
    int sock;        /* the peers' UDP socket */
} fu_fleet;

/* n trackers named a, b, c...; a Redis of its own on a Unix socket when url
 * is NULL. Policies name the fleet section's extra members (", lease_timeout:
 * 3") and the stages given (or, for version 2, a "rollouts:" list where
 * @FX@ is the folder of the keys and release.manifest); nothing runs yet. */
void fu_init(fu_fleet *f, unsigned n, const char *url, const char *fleet_extra, const char *stages);
/* (Re)writes tracker i's policy and starts it (its control socket at
 * dir/ctl.sock); waits for its ready line. */
void fu_start(fu_fleet *f, unsigned i);
void fu_start_all(fu_fleet *f);
/* Rewrites tracker i's policy (f->stages may have changed) and reloads it. */
void fu_reload(fu_fleet *f, unsigned i);
/* Sends sig to tracker i and reaps it; its exit code. */
int fu_stop(fu_fleet *f, unsigned i, int sig);
/* Kills every tracker still running (SIGKILL) and the Redis it started. */
void fu_teardown(fu_fleet *f);

typedef struct {
    int type;       /* UG_TYPE_HINT, _WAIT, _COOKIE; 0: no answer */
    unsigned why;   /* WAIT */
    uint64_t retry; /* WAIT: seconds */
} fu_answer;

/* A WAIT that asks the peer back soon: "rate limited", or "quota" with a
 * retry of at most a minute (the fleet expects slots back). */
static inline bool fu_soon(fu_answer a)
{
    return a.type == UG_TYPE_WAIT && (a.why == UG_WHY_RATE || (a.why == UG_WHY_QUOTA && a.retry <= 60));
}
/* A WAIT for good: "quota" with the policy's long retry. */
static inline bool fu_spent(fu_answer a)
{
    return a.type == UG_TYPE_WAIT && a.why == UG_WHY_QUOTA && a.retry > 60;
}

/* Each uid asks tracker i once (a fresh HELLO at 1.4.0), in batches; a
 * HINT is checked against the pinned keys as a peer would (the test fails
 * on one that does not verify). Unanswered HELLOs are sent again as the
 * reference peer does, after 0.5, 1 and 2 s (4 sends). out[k] is uids[k]'s
 * answer. */
void fu_ask(fu_fleet *f, unsigned i, const uint64_t *uids, size_t n, fu_answer *out);
fu_answer fu_ask1(fu_fleet *f, unsigned i, uint64_t uid);
/* Peers in flight: fired at their trackers, answers collected later (a
 * tracker may be killed in between). */
typedef struct {
    uint64_t uid;
    unsigned tracker;
    uint8_t nonce[UG_NONCE_LEN];
    uint8_t dgram[UG_DGRAM_MAX];
    size_t len;
    bool done;
    fu_answer a;
} fu_req;
void fu_fire(fu_fleet *f, fu_req *r, size_t n);
/* fu_fire in two steps: the signed HELLOs made (slow: signatures), then
 * sent (fast: a burst). */
void fu_build(fu_fleet *f, fu_req *r, size_t n);
/* Reads answers until every request has one or ms passed. */
void fu_collect(fu_fleet *f, fu_req *r, size_t n, long ms);
/* Sends the unanswered requests again, the same bytes (a peer's resend). */
void fu_resend(fu_fleet *f, fu_req *r, size_t n);
/* Requests already fired, answered as the reference peer waits: the
 * unanswered ones resent after 0.5, 1 and 2 s (4 sends in all). */
void fu_converse(fu_fleet *f, fu_req *r, size_t n);
/* Tracker i's first stage: its status member key (an integer). */
long long fu_stage_int(fu_fleet *f, unsigned i, const char *key);
/* Tracker i's first stage's gate (status: stage.gate), its member key as an
 * integer; -1 for null or no gate. */
long long fu_gate_int(fu_fleet *f, unsigned i, const char *key);
/* Tracker i's first stage's lease_outlook ("hold", "soon", "spent"), copied into out. */
void fu_outlook(fu_fleet *f, unsigned i, char *out, size_t cap);
/* An integer of tracker i's fleet status (tracker.fleet.KEY). */
long long fu_fleet_int(fu_fleet *f, unsigned i, const char *key);

/* A signed REPORT of uid (at 1.4.0, about 2.0.0) to tracker i; no answer comes. */
void fu_report(fu_fleet *f, unsigned i, uint64_t uid, ug_res res);
/* One control request to tracker i; the reply parsed (the caller owns it). */
json_t *fu_ctl(fu_fleet *f, unsigned i, const char *req);
/* The first stage's "granted" in tracker i's status (fleet-wide in fleet mode). */
long long fu_granted(fu_fleet *f, unsigned i);
/* Polls until tracker i's status shows `granted` == want (at most ms); the last value. */
long long fu_wait_granted(fu_fleet *f, unsigned i, long long want, long ms);
long long fu_mono_ms(void);
/* Polls every running tracker's status until its fleet connection is up (10 s at most). */
void fu_wait_joined(fu_fleet *f);

#endif
