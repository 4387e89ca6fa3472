/* upgate-sim's parts share this: the options, the population, one policy's run and what it measured. */
#ifndef UG_SIM_H
#define UG_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "simcensus.h"
#include "simgeo.h"
#include "simspec.h"
#include "upgate_plugin.h"

#define SIM_POLICIES_MAX 2u
#define SIM_PEERS_MAX 50000000u   /* synthetic peers, and distinct uids of a replay */
#define SIM_RECORDS_MAX 200000000u /* records of a replay */
#define SIM_DAYS_MAX 90u
#define SIM_STAGES_MAX 64u        /* stages shown as their own series (more: "other") */
#define SIM_MIRRORS_MAX UG_URLS_MAX
#define SIM_VERSIONS_MAX 256u     /* distinct versions a population runs, releases included */
#define SIM_REPLAY_FILES_MAX 16u
#define SIM_ROLLBACK_AFTER 3600u  /* seconds from an install to its rollback */

/* Everything the command line says. */
typedef struct {
    const char *policy[SIM_POLICIES_MAX];
    unsigned npolicies;
    const char *plugin;
    uint64_t peers;
    const char *population; /* --population: a census file (upgate-ctl census --json) */
    const char *replay[SIM_REPLAY_FILES_MAX];
    unsigned nreplay;
    double time_scale;
    uint64_t seed;
    int64_t start;       /* Unix seconds */
    bool start_given;
    uint64_t horizon;    /* seconds simulated */
    bool horizon_given;
    uint64_t step;       /* seconds per table row */
    sim_weights versions, plats, chans, places; /* places: regions and networks, one list */
    bool have_versions, have_plats, have_chans;
    unsigned nregions;   /* places.key[0..nregions) are regions, the rest networks */
    const char *geoip;
    double logins;       /* per peer per day; 0: always online */
    uint64_t session;
    unsigned peak_hour;
    double accept, fail, rollback;
    uint64_t think;      /* mean seconds before the user's answer */
    double speed_lo, speed_hi; /* bits per second */
    const char *csv, *plot;
    double max_bw;       /* bits per second; 0: none */
    const char *suggest;
    bool quiet, bench;
} sim_opts;

/* The command line into o (its defaults set by the caller); --help and
 * --version print and exit 0, bad usage exits 2 with one line (simargs.c). */
void sim_parse_args(int argc, char **argv, sim_opts *o);
/* The forecast's default start, "now": the next whole minute, so that a key
 * or certificate issued a moment ago is already valid at the first step
 * (the policy is loaded at the simulated start). */
int64_t sim_now_minute(void);

/* ---- the population (simpop.c) ---------------------------------------------- */

/* One peer: what it is (fixed) and where it stands (per run). */
typedef struct {
    uint64_t uid;
    uint32_t next;    /* its first HELLO, seconds from the start (simpop.c) */
    uint32_t until;   /* end of the online session, seconds from the start; UINT32_MAX: always online */
    uint32_t net;     /* index into sim_pop.nets */
    uint32_t host;    /* random host bits inside that network */
    uint32_t speed;   /* bytes per second */
    uint16_t ver;     /* the version it runs now: index into sim_pop.vers */
    uint16_t old;     /* the version it started at */
    uint16_t to;      /* the release it was offered */
    uint8_t plat, chan; /* index + 1 into the weights' keys; 0: absent */
    uint8_t state;    /* SIM_P_* */
    uint8_t tries;    /* offers it acted on: a draw's counter */
    ug_bucket_memo memo;     /* the plugin's percent buckets for uid (zeroed: empty), so each is hashed once */
} sim_peer;

enum { SIM_P_ASK, SIM_P_CHOICE, SIM_P_DOWN, SIM_P_INSTALLED, SIM_P_DONE };

/* A recorded HELLO of a replay. */
typedef struct {
    uint32_t at;      /* seconds from the start, scaled */
    uint32_t peer;    /* index into sim_pop.peers */
    uint32_t net;     /* its address, as a /32 or /128 in nets */
    uint16_t ver;
    uint8_t plat, chan;
} sim_rec;

typedef struct {
    sim_peer *peers;
    size_t npeers;
    sim_net *nets;    /* addresses or networks peers are drawn from */
    size_t nnets;
    char vers[SIM_VERSIONS_MAX][UG_VER_MAX + 1];
    unsigned nvers;
    char plats[SIM_WEIGHTS_MAX][UG_PLAT_MAX + 1], chans[SIM_WEIGHTS_MAX][UG_CHAN_MAX + 1];
    unsigned nplats, nchans;
    sim_rec *recs;    /* replay only, in time order */
    size_t nrecs;
    uint64_t span;    /* replay: seconds from the first record to the last, scaled */
    int64_t first;    /* replay: Unix time of the first record */
} sim_pop;

/* The peers of a synthetic population (uids 1..N), drawn from o's seed;
 * retry is the policy's WAIT retry (first HELLOs spread over it). 0, or -1
 * with err (a region the DB does not know, a DB fault, out of memory). */
int sim_pop_synth(sim_pop *p, const sim_opts *o, uint64_t retry, char *err, size_t errcap);
/* Peers drawn from a census (simcensus.h): each bucket's share of o->peers
 * (0: its own count), with its version, plat and chan, from its region's
 * networks when o->geoip is set (else one address outside every network). 0,
 * or -1 with err. */
int sim_pop_census(sim_pop *p, const sim_opts *o, const sim_census *c, uint64_t retry, char *err, size_t errcap);
/* The recorded HELLOs of files (a rotated FILE.1 and FILE alike), merged in
 * time order and scaled. 0, or -1 with "FILE: why" in err. */
int sim_pop_replay(sim_pop *p, const sim_opts *o, char *err, size_t errcap);
/* The index of version text v in p->vers, added if new; -1 when full. */
int sim_pop_version(sim_pop *p, const char *v);
/* A peer's source address, IPv4 or IPv6. */
typedef union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} sim_addr;

/* The peer's address: a host of network net. */
void sim_pop_addr(const sim_pop *p, const sim_peer *peer, uint32_t net, sim_addr *a, socklen_t *len);
/* The peer's next login strictly after t (seconds from the start), and the
 * end of that session; UINT32_MAX when past max. */
uint32_t sim_pop_next_login(const sim_opts *o, const sim_peer *peer, uint32_t t, uint32_t max, uint32_t *until);
void sim_pop_free(sim_pop *p);

/* ---- one policy's run (simrun.c) ---------------------------------------------- */

/* The loaded plugin. */
typedef struct {
    void *dl;
    const ug_plugin *api;
} sim_plugin;

/* What a step (a table row) counted. */
typedef struct {
    uint64_t decisions;
    uint64_t offers_new, offers_sticky, cookies;
    uint64_t waits[UG_WHY_COUNT_];
    uint64_t upgraded, declined, failed, rolled_back; /* in this step */
    uint32_t in_flight_max;
} sim_stepstat;

typedef struct {
    char name[2 * 33 + 2]; /* "stage", or "rollout/stage" when the policy has several rollouts */
    char rollout[33];
    char stage[33];
    bool has_quota;
    uint64_t quota;
    uint64_t offered;      /* fresh offers */
    int64_t spent_at;      /* seconds from the start when its quota ran out; -1: never */
    uint64_t last_offer_at;
    bool quota_wait_seen;
    uint64_t package_size; /* its rollout's package, from its first offer; 0: none offered */
} sim_stageinfo;

/* Everything one policy's run measured. */
typedef struct {
    const char *policy;
    unsigned nsteps;
    uint64_t horizon, step;
    sim_stepstat *steps;       /* [nsteps] */
    uint64_t *offers;          /* [nsteps * nstages] fresh offers per stage */
    double *minute_bytes;      /* [nminutes * nmirrors] bytes moved in each minute */
    unsigned nminutes;
    sim_stageinfo stages[SIM_STAGES_MAX + 1]; /* the last one collects what has no stage of its own */
    unsigned nstages;
    unsigned nmirrors;
    char mirror[SIM_MIRRORS_MAX][128]; /* the URL's host when known, else "mirror N" */
    uint64_t package_size;
    uint64_t downloads, delta_downloads; /* started; by a delta the HINT named (ug_decision.delta) */
    double delta_saved;        /* bytes those deltas spared the mirrors against full packages */
    uint64_t targeted, untargeted, upgraded, declined, failed, rolled_back, cookies, errors;
    uint64_t unasked;          /* peers with no HELLO answered in the horizon (never online, or refused) */
    uint64_t decisions;
    uint32_t *upgrade_at;      /* seconds from the start of each upgrade, in order */
    size_t nupgrade_at;
    double cpu_seconds;        /* in the simulation loop */
    double loop_seconds;
    char stopped[256];         /* why a rollout stopped offering, once seen; "" when it did not */
    int64_t stopped_at;
    char halted[320];          /* a rollout halted at the end, and why (the plugin's word) */
    char outcomes[512];        /* the tracker's own count at the end, as text */
    char logs[8][256];         /* the plugin's first warnings and errors */
    unsigned nlogs, logs_dropped;
} sim_result;

/* Loads the plugin at path; 0, or -1 with "PATH: why" in err. */
int sim_plugin_load(sim_plugin *pl, const char *path, char *err, size_t errcap);
/* The WAIT retry a policy gives (jitter included), asked of a throwaway
 * instance; 0, or -1 with err naming the policy. */
int sim_policy_retry(const sim_plugin *pl, const char *policy, int64_t now, uint64_t *retry, char *err,
                     size_t errcap);
/* Runs policy on a copy of pop for o's horizon (retry: the policy's, from
 * sim_policy_retry, for peers that ask again after a failed install). 0, or -1 with err (the
 * policy does not load, the state folder cannot be made, interrupted). */
int sim_run(const sim_plugin *pl, const sim_opts *o, const sim_pop *pop, const char *policy, uint64_t retry,
            sim_result *r, char *err, size_t errcap);
void sim_result_free(sim_result *r);
/* Bits per second of mirror m (SIM_MIRRORS_MAX: all) in minute i. */
double sim_minute_bps(const sim_result *r, unsigned i, unsigned m);
/* The busiest minute of mirror m (SIM_MIRRORS_MAX: all mirrors together). */
double sim_peak_bps(const sim_result *r, unsigned m, unsigned *minute);
/* The step's busiest minute on mirror m (SIM_MIRRORS_MAX: all). */
double sim_step_peak_bps(const sim_result *r, unsigned step, unsigned m);
/* Bytes moved in the step on mirror m (SIM_MIRRORS_MAX: all). */
double sim_step_bytes(const sim_result *r, unsigned step, unsigned m);
/* The step's average on mirror m (SIM_MIRRORS_MAX: all). */
double sim_step_avg_bps(const sim_result *r, unsigned step, unsigned m);
/* Seconds from the start until share (0..1) of the targeted peers had
 * upgraded, or -1. */
int64_t sim_time_to_share(const sim_result *r, double share);

/* Set by SIGINT/SIGTERM: the run stops at its next simulated second. */
extern volatile int sim_interrupted;

/* ---- output (simout.c, simplot.c) ---------------------------------------------- */

void sim_print_header(const sim_opts *o, const sim_pop *pop, const sim_result *r, unsigned n);
void sim_print_table(const sim_opts *o, const sim_result *r, unsigned n);
void sim_print_headline(const sim_opts *o, const sim_result *r, unsigned n);
/* 0, or -1 with "FILE: why" in err. */
int sim_write_csv(const sim_opts *o, const sim_result *r, unsigned n, const char *path, char *err, size_t errcap);
int sim_write_plot(const sim_opts *o, const sim_result *r, unsigned n, const char *path, char *err, size_t errcap);

/* ---- scratch files, removed at exit (sim.c) ------------------------------------ */

/* Remembers a file or folder to remove (a folder with what it holds) at
 * exit, failures and interruptions included. */
void sim_scratch_add(const char *path);
void sim_scratch_remove(const char *path);

#endif
