/* Fleet mode's insides, shared by its files: the fleet's state, its thread's doors, and what each file offers the others. */
#ifndef UG_FLEET_IMPL_H
#define UG_FLEET_IMPL_H

#include <pthread.h>

#include <jansson.h>

#include "base/log.h"
#include "core/control.h"
#include "core/flags.h"
#include "core/instance.h"
#include "core/live.h"
#include "core/outcomes.h"
#include "core/sink.h"
#include "fleet/fleet.h"
#include "fleet/fleet_codec.h"
#include "fleet/fleet_redis.h"
#include "util/clock.h"

#define TICK_MS 100            /* one pass of the fleet thread */
#define BEAT_MS 500            /* heartbeat, and the fence it renews */
#define CUTOFF_BEATS 4         /* the fence: this many heartbeats after the last one Redis took */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 3200
#define CMD_TIMEOUT_MS 1000    /* connect, and each command */
#define QUEUE_MAX (1u << 20)   /* told-later items held while Redis is away */
#define FLAGS_MAX 64u
#define BATCH 256u             /* uids per script call */
#define STREAM_MAX 100000u     /* events a scope's stream keeps (MAXLEN ~) */
#define STREAM_READ 512u
#define PARK_MS 1000           /* a stage with no new grant nor held peer this long parks its unused slots */
#define IDLE_MS 3000           /* ... and this long returns every slot it holds to the fleet */
#define RATE_TTL_S 3           /* a demand older than this is a tracker gone */
#define LEADER_AGE_S 5
#define FLAG_KEY_LEN 32u       /* the key that MACs the fleet's flags (fleet_flags.c) */

typedef struct {
    uint32_t scope;
    uint64_t uid;
} queued_grant;

typedef struct {
    uint32_t scope;
    uint8_t o;
    uint64_t uid;
} queued_outcome;

enum { FOP_PAUSE = UG_FLAG_PAUSE, FOP_RESUME = UG_FLAG_RESUME, FOP_HALT = UG_FLAG_HALT, FOP_HOLD, FOP_PROMOTE };

typedef struct {
    char rollout[UG_NAME_MAX + 1];
    int op;
    char why[256];
    uint64_t at, was, held, shift;
    ug_fleet_gate gate; /* FOP_PROMOTE: the gate released here */
    uint64_t seq;
} fflag;

/* One stage of a scope, as the fleet thread follows it. */
typedef struct {
    char name[UG_NAME_MAX + 1];
    uint16_t id;
    char qkey[UG_FLEET_KEY_MAX], rkey[UG_FLEET_KEY_MAX];
    bool present, has_quota, has_fleet_rate;
    uint64_t quota;
    double fleet_rate;
    bool indexed;          /* its key is in this tracker's lease index (this connection) */
    bool requota;          /* a reload changed the quota: give back, then lease anew */
    uint64_t block;        /* slots a lease brings beyond the peers held back (follows demand) */
    bool spell;            /* busy since its first lease after a quiet spell (that one was a share) */
    uint64_t parked;       /* slots held here but not spendable: Redis's r:TRACKER (fleet_lease.c) */
    bool primed;           /* last_n and last_waits hold a first reading */
    uint64_t last_n, last_waits, pass_n, held_sec;
    int64_t last_active_ms, next_lease_ms; /* active: a new grant or a peer held back */
    bool known_avail;      /* avail and room hold Redis's word on this connection */
    uint64_t avail, room;  /* quota - n - leased (lendable now), quota - n (not yet counted) */
    double demand;         /* new offers wanted per second, smoothed */
    /* shown by status (qmu) */
    bool known;
    uint64_t r_n, r_leased, r_mine, r_told;
    double share;
    long long rate_trackers;
} fstage;

/* One rollout's release (a store scope). */
typedef struct {
    char rollout[UG_NAME_MAX + 1], to[UG_VER_MAX + 1];
    uint32_t id;
    char gkey[UG_FLEET_KEY_MAX], evkey[UG_FLEET_KEY_MAX], dupkey[UG_FLEET_KEY_MAX];
    char last_id[48];      /* the stream read so far */
    bool present, ready;   /* ready: snapshot, backlog and settle done (this connection) */
    fstage *st;
    size_t nst;
} fscope;

typedef struct {
    char name[UG_NAME_MAX + 1];
    char fkey[UG_FLEET_KEY_MAX];
    uint64_t ver;          /* the flags' version last applied here (kept in the store: no rollback) */
    uint64_t bad_ver;      /* the last version refused (logged once) */
    uint64_t bad_gver;     /* the last version whose gates were refused (logged once) */
    bool present, synced;
} flagged_rollout;

typedef struct ug_fleet ug_fleet;

struct ug_fleet {
    ug_inst *I;
    ug_fleet_conf conf;
    char self_addr[128];
    char self_id[17];    /* this state folder's id in the fleet (hex): tells a restart from a namesake */
    _Alignas(64) _Atomic int64_t fence; /* leased slots are spent only before it (ug_mono_ms) */
    ug_slot_source slots;                /* leases, as the store asks for them */
    _Atomic bool wanted;                 /* a worker holds a peer back for a lease: pass now */
    uint8_t *flag_key;                   /* sodium_malloc'ed FLAG_KEY_LEN, from password_file; NULL: none */
    ug_sink sink;                        /* what the core tells the fleet (fleet_hooks.c) */
    ug_ctl_ext ext;                      /* what the fleet adds to control */
    pthread_mutex_t qmu; /* queues, requests, what status shows */
    pthread_cond_t wake, done;
    pthread_t thread;
    bool running, stop;
    /* fed by other threads (qmu) */
    queued_grant *pub;
    size_t npub, cappub;
    bool pub_lost;
    queued_outcome *out;
    size_t nout, capout;
    bool out_lost;
    fflag flags[FLAGS_MAX];
    size_t nflags;
    uint64_t flag_seq, flag_done;
    json_t *req, *rep;
    char req_err[400];
    bool req_done;
    /* shown by status (qmu) */
    bool up, leads, taken; /* taken: our name beats elsewhere (status says so) */
    char fault[300];       /* a lease fault, shown by status until restart */
    uint64_t up_since, lost_since;
    uint64_t losses; /* times the connection went from up to lost (metrics) */
    char addr[300], last_err[300];
    long long trackers_up;
    /* the fleet thread's own */
    fr_conn r;
    fr_args a;
    bool lost_logged, ever_up, forgotten_logged;
    bool lease_fault;    /* Redis answered a lease it cannot have given: no more leases (said once) */
    int64_t last_pass_ms;
    bool name_taken;     /* another live tracker beats under our name */
    int backoff_ms;
    int64_t next_try_ms, last_beat_ms, last_second_ms;
    uint64_t redis_now; /* Redis's clock at the last heartbeat */
    int64_t redis_now_at;
    char last_run_id[48];
    fscope *sc;
    size_t nsc;
    flagged_rollout *ro;
    size_t nro;
    unsigned census_s;        /* seconds between census publishes (fleet_census.c) */
    int64_t census_next_ms;
    uint64_t census_cut;      /* buckets the last publish left out (over CENSUS_PUB_MAX) */
    int64_t census_quiet_ms;  /* a refused census is logged again from then */
};

/* fleet.c: the thread and the doors into it */
/* The fleet state of instance I for conf: queues and the fence, no thread
 * and no I/O yet (create() builds the live policy in between, which binds
 * stages with a quota to the fleet's slot source). NULL with err set. */
ug_fleet *ug_fleet_new(ug_inst *I, const ug_fleet_conf *conf, char *err, size_t errcap);
/* Starts the fleet thread (the one the ABI header names). 0 or -1 with err. */
int ug_fleet_start(ug_fleet *F, char *err, size_t errcap);
/* Stops it cleanly, at most a few seconds: tells the fleet the grants it
 * has not told, returns every unused slot, marks the tracker stopped, and
 * joins the thread. The caller has committed every worker and no worker
 * runs. Idempotent. */
void ug_fleet_stop(ug_fleet *F);
/* Frees F once stopped (after the store is closed: stages point at its slot source). */
void ug_fleet_free(ug_fleet *F);

/* Whether a reloaded policy's fleet section is the one running (it cannot
 * change without a restart). */
bool ug_fleet_same_conf(const ug_fleet *F, const ug_fleet_conf *c);

/* A worker changed uid's outcome in scope sc (any grant, its own or the
 * fleet's): told to the fleet. Quick; may run on a worker. */
void ug_fleet_outcome(ug_fleet *F, const ug_scope *sc, uint64_t uid, ug_outcome o);

/* An operator flag of a rollout (ug_flag_op: core/flags.h) changed here:
 * written to the fleet; waits up to wait_ms for Redis to hold it. 1
 * written, 0 queued (written when Redis returns). */
int ug_fleet_flag(ug_fleet *F, const char *rollout, ug_flag_op op, const char *why, uint64_t at, int wait_ms);
/* Whether this tracker decides ramp holds for the fleet (the first name
 * among live trackers); the others follow Redis. */
bool ug_fleet_leads(ug_fleet *F);
/* A ramp hold decided here (held_since 0: released), from `was`. */
void ug_fleet_hold(ug_fleet *F, const char *rollout, uint64_t was, uint64_t held_since, uint64_t shift);
/* upgate-ctl promote released gate g of rollout here: written to the
 * fleet's flags, so every tracker releases that gate; waits up to wait_ms
 * for Redis to hold it. 1 written, 0 queued. */
int ug_fleet_promote(ug_fleet *F, const char *rollout, const ug_fleet_gate *g, int wait_ms);

/* Status: the tracker's fleet object, and a stage's fleet counts (NULL
 * when none are known yet). New jansson references. */
json_t *ug_fleet_status(ug_fleet *F);
json_t *ug_fleet_stage_status(ug_fleet *F, const char *rollout, const char *to, const char *stage);
/* The control command `fleet` (sub: status, forget): a reply object
 * (ok set by the caller) or NULL with err set. */
json_t *ug_fleet_control(ug_fleet *F, json_t *req, char *err, size_t errcap);

/* The store's commit observer (ug_sink.granted): grants made durable, told on the next pass. */
void fl_on_commit(void *ctx, const ug_commit_batch *b);

/* fleet_conn.c: the connection as the passes see it */
__attribute__((format(printf, 3, 4))) void fl_log(ug_fleet *F, ug_log_level lvl, const char *fmt, ...);
/* Whether the connection is up; fl_lost: it broke during the pass (said once). */
bool fl_up(ug_fleet *F);
void fl_lost(ug_fleet *F);
/* Redis's clock now, from the last heartbeat. */
uint64_t fl_redis_now(ug_fleet *F);

/* fleet_sync.c: the policy as followed, Redis helpers, making a release
 * ready, telling and learning grants and outcomes */
void fl_sync_policy(ug_fleet *F, const ug_live *l);
const ug_live_rollout *fl_rollout_of(const ug_live *l, const fscope *s);
ug_stage_quota *fl_stage_q(const ug_live_rollout *lr, const fstage *t);
fstage *fl_stage_find(fscope *s, const char *name);
/* What an empty stage tells its peers now (ug_shortfall), from Redis's
 * last word and the connection. */
void fl_outlook(ug_fleet *F, const fstage *t, ug_stage_quota *q);
/* Every leased stage's outlook (after the connection broke). */
void fl_outlooks(ug_fleet *F, const ug_live *l);
/* Redis's counts of a stage (n, leased): what can still be lent. */
void fl_counts(ug_fleet *F, fstage *t, long long n, long long leased);
/* The flags' version of a rollout this state folder applied last (0:
 * none), and keeping a new one: a restart refuses older ones too. */
uint64_t fl_kept_version(ug_fleet *F, const char *rollout);
void fl_keep_version(ug_fleet *F, flagged_rollout *f, uint64_t ver);
/* Past the fence: this tracker may spend nothing it holds. */
bool fl_fenced(ug_fleet *F);
/* F->a as a script or a command; NULL when it failed (an error reply is
 * logged and closes the connection: the next one looks everything over). */
redisReply *fl_script(ug_fleet *F, int which, int nkeys);
redisReply *fl_command(ug_fleet *F);
/* F->a becomes HGETALL of the trackers' registry (name -> row). */
void fl_args_registry(ug_fleet *F);
/* SETTLE: this tracker's lease of t becomes exactly keep, of which parked
 * are parked (not spendable here); 0 or -1. */
int fl_settle(ug_fleet *F, fstage *t, uint64_t keep, uint64_t parked);
void fl_prepare(ug_fleet *F, const ug_live *l);
void fl_drain_pub(ug_fleet *F, const ug_live *l);
void fl_drain_out(ug_fleet *F, const ug_live *l);
void fl_follow(ug_fleet *F, const ug_live *l);
/* A tracker behind the stream's trim reads the whole hash again. */
int fl_check_gap(ug_fleet *F, fscope *s);

/* fleet_lease.c */
/* Every leased stage: slots for the peers held back and for the demand,
 * parked or returned when idle, and the stage's outlook. */
void fl_leases(ug_fleet *F, const ug_live *l, int64_t now_ms);

void fl_each_second(ug_fleet *F, const ug_live *l);
/* A forget reached this tracker: drops every unused slot, owes the rest. */
void fl_forgotten(ug_fleet *F, const ug_live *l);
/* Returns every unused slot of every stage; the slots returned. */
uint64_t fl_return_all(ug_fleet *F, const ug_live *l);

/* fleet_flags.c */
void fl_flags(ug_fleet *F, const ug_live *l);
/* The flags' MAC key from the password file (NULL key without one); 0 or -1 with err. */
int fl_flag_key(ug_fleet *F, char *err, size_t errcap);


/* fleet_census.c */
/* Seconds between census publishes: 60, or UG_FLEET_CENSUS_SECONDS (1..3600, for tests). */
unsigned fl_census_interval(void);
/* When due: publishes this tracker's census, reads every other tracker's,
 * and makes their union the instance's census_fleet. */
void fl_census(ug_fleet *F, const ug_live *l);

/* fleet_ctl.c: the control command's two subcommands, on the fleet thread */
json_t *fl_status_json(ug_fleet *F, const ug_live *l, char *err, size_t errcap);
json_t *fl_forget_json(ug_fleet *F, const ug_live *l, json_t *req, char *err, size_t errcap);

#endif
