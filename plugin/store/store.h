/* The durable state of a tracker: grants per rollout and release, quota
 * slots per stage, outcomes, operator flags and history, in one LMDB env. */
#ifndef UG_STORE_H
#define UG_STORE_H

#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

#define UG_QUOTA_UNLIMITED UINT64_MAX
#define UG_WORKERS_MAX 256u
#define UG_STORE_LAYOUT 3u /* what this code writes; 1 and 2 are upgraded on open */
#define UG_STORE_PATH_MAX 1024u

typedef struct ug_store ug_store;
typedef struct ug_scope ug_scope;   /* the grants of one rollout's release */
typedef struct ug_stage_quota ug_stage_quota; /* one stage's quota within a scope */

/* What became of an offer (docs/state.md). NOT_TAKEN is never stored: it is
 * PENDING older than the rollout's outcome window. */
typedef enum {
    UG_OUT_PENDING = 0,
    UG_OUT_UPGRADED = 1,
    UG_OUT_ROLLED_BACK = 2,
    UG_OUT_DECLINED = 3,
    UG_OUT_DOWNLOAD_FAILED = 4,
    UG_OUT_MISMATCH = 5,
    UG_OUT_INSTALL_FAILED = 6,
    UG_OUT_COUNT_ /* number of stored states, not a state */
} ug_outcome;

/* The log the store reports through (first commit failure, recovery,
 * upgrade of an old layout); level as ug_log_level. */
typedef void (*ug_store_log)(void *ctx, int level, const char *msg);

typedef struct {
    const char *dir;   /* the state folder; created (0700) if missing */
    unsigned nworkers; /* 1..UG_WORKERS_MAX */
    uint64_t now;      /* Unix seconds, stamped on records the upgrade writes */
    /* A layout-1 folder held grants per stage name, for one release the
     * folder does not name: they are upgraded into this rollout and
     * release (the policy's, at the first open by this code). */
    const char *upgrade_rollout, *upgrade_to;
    ug_store_log log;
    void *log_ctx;
} ug_store_opts;

/* Opens the state folder for this instance alone: takes its lock file
 * (`upgate.lock`, flock, held until close) and refuses, naming the holder's
 * pid, a folder another instance holds. Refuses a store that vanished
 * (`store.id` says one was made here, data.mdb is missing or empty), one
 * whose data file is shorter than LMDB's last page, and a disk too full to
 * start; upgrades a layout-1 folder in place. NULL with one line in err. */
ug_store *ug_store_open(const ug_store_opts *o, char *err, size_t errcap) UG_WUR;
/* Commits every worker's queue, then frees everything. 0, or -1 with the
 * cause in err when some grant could not be made durable (its HINT was
 * never sent, but the caller must not claim every grant is on disk). */
int ug_store_close(ug_store *s, char *err, size_t errcap);
const char *ug_store_dir(const ug_store *s);

/* The scope of a rollout's release, created on first use and loaded from
 * disk; lives until ug_store_release frees it. NULL with err set. */
ug_scope *ug_store_scope(ug_store *s, const char *rollout, const char *to, char *err, size_t errcap) UG_WUR;
/* The quota state of stage `name` in scope sc, created on first use with a
 * share of 0 (every new uid SPENT) until ug_stage_quota_set_limit. NULL with err
 * set (out of memory, or more stage names than the store can number). */
ug_stage_quota *ug_scope_quota(ug_scope *sc, const char *name, char *err, size_t errcap) UG_WUR;

/* Marks every scope and stage unused, so that the next ug_store_sweep frees
 * those not marked again (by ug_store_scope / ug_scope_quota) since. The
 * caller swaps in the policy that marked them and waits out every worker
 * still using the old one before it sweeps. Memory and handles are freed;
 * grants on disk stay (an earlier policy may come back). A scope with
 * grants still queued is kept until they are durable. */
void ug_store_unmark(ug_store *s);
void ug_store_sweep(ug_store *s);

/* ---- grants ------------------------------------------------------------ */

typedef struct {
    bool found;
    bool durable;      /* on disk; else queued on some worker */
    bool learned;      /* granted elsewhere, learned here (ug_scope_add_learned) */
    bool published;    /* this store's grant, marked published (ug_store_mark_published) */
    uint16_t stage;    /* the granting stage's id (ug_store_stage_name) */
    uint32_t at;       /* Unix seconds of the grant */
    ug_outcome outcome;
    uint32_t outcome_at; /* when the outcome was last set, this host's clock; 0: never */
    uint32_t outcome_ts; /* the peer's ts that set it (after a restart: outcome_at) */
} ug_grant_info;

typedef enum {
    UG_GRANT_NEW,     /* first offer to this uid in the scope: a slot was spent */
    UG_GRANT_ALREADY, /* offered before (sticky): nothing spent */
    UG_GRANT_SPENT,   /* no slot left in this store's share (or out of memory) */
} ug_grant;

/* Looks uid up in the scope: granted (by any stage), durable or not. */
bool ug_scope_lookup(ug_scope *sc, uint64_t uid, ug_grant_info *gi);
/* Starts fetching uid's home slot from memory, for a lookup that comes
 * soon (the plugin's prefetch()); changes nothing. */
void ug_scope_prefetch(ug_scope *sc, uint64_t uid);

/* Atomically: ALREADY if uid holds a grant in the scope; else NEW after
 * taking a slot from worker's shard (moving slots from other shards when it
 * is empty) and queueing the grant on worker; else SPENT. gi (may be NULL)
 * gets the grant as it stands. Workers may call it concurrently, each with
 * its own index. */
ug_grant ug_stage_quota_grant(ug_stage_quota *q, unsigned worker, uint64_t uid, uint32_t now, ug_grant_info *gi);

/* Makes sure worker's next commit writes uid's grant: a reply built on a
 * grant still queued on another worker then waits for this worker's flush
 * alone. No-op for a durable grant. -1 on out of memory. */
int ug_scope_make_durable(ug_scope *sc, unsigned worker, uint64_t uid) UG_WUR;

/* Sets uid's outcome to o, queued on worker for the next commit. Returns
 * 1 when it changed, 0 when uid has no grant or already had that outcome,
 * -1 on out of memory. *before (may be NULL) gets the state it replaced. */
int ug_scope_set_outcome(ug_scope *sc, unsigned worker, uint64_t uid, ug_outcome o, ug_outcome *before) UG_WUR;

/* An outcome as a peer's REPORT or HELLO tells it (ug_scope_put_outcome). */
typedef struct {
    ug_outcome o;
    uint32_t at; /* this host's clock */
    uint32_t ts; /* the REPORT's or HELLO's own ts, which orders them */
} ug_outcome_put;
/* Protocol rule 11, atomically per uid: sets uid's outcome to p->o (queued
 * on worker, stamped p->at) unless the recorded one was set by a later ts,
 * or by the same ts and p->o does not rank above it (ug_outcome_rank), or
 * is ROLLED_BACK and p->o is not UPGRADED. A newer ts of the same outcome
 * is kept in memory (it orders what follows) and changes nothing. So a
 * replayed REPORT cannot undo a newer one, and REPORTs of one second flip
 * an outcome at most once per rank. 1 changed, 0 not, -1 out of memory;
 * *before (may be NULL) gets the grant as it stood. */
int ug_scope_put_outcome(ug_scope *sc, unsigned worker, uint64_t uid, const ug_outcome_put *p,
                         ug_grant_info *before) UG_WUR;
/* Whether p would replace the outcome of the grant gi (the rules above). */
bool ug_outcome_may_replace(const ug_grant_info *gi, const ug_outcome_put *p);
/* The order of outcomes of one ts: pending, declined, download failed,
 * mismatch, install failed, upgraded, rolled back (a crash at start comes
 * after the install it undoes). */
unsigned ug_outcome_rank(ug_outcome o);
/* The outcome's name as status and metrics spell it ("rolled_back"). */
const char *ug_outcome_name(ug_outcome o);

/* Makes every record queued on worker durable: it joins the next group
 * commit, which appends the records of every worker that joined it to the
 * state folder's log in one synchronous write (docs/state.md "The log").
 * Workers may call it concurrently, each with its own index. 0 (also when
 * nothing is queued), or -1: the records stay queued and the next commit
 * retries them; the caller must not send the replies that depend on them.
 * The first failure and the recovery are logged. */
int ug_store_commit(ug_store *s, unsigned worker) UG_WUR;
/* Moves the log's records into data.mdb when the log is a second old or
 * past 1 MiB (tick() calls it; a commit does past 4 MiB). From any
 * thread, while workers commit. 0, or -1 (logged; retried later). */
int ug_store_checkpoint(ug_store *s);

/* Sets the stage's share of its quota (UG_QUOTA_UNLIMITED: none). Exact
 * while workers grant: slots spent stay spent. */
void ug_stage_quota_set_limit(ug_stage_quota *q, uint64_t share);
/* Distinct uids this stage granted in its scope, durable or queued. */
uint64_t ug_stage_quota_count(const ug_stage_quota *q);
/* Slots left in the share; UG_QUOTA_UNLIMITED when it has none. */
uint64_t ug_stage_quota_remaining(const ug_stage_quota *q);
uint16_t ug_stage_quota_id(const ug_stage_quota *q);
ug_scope *ug_stage_quota_scope(const ug_stage_quota *q);
/* Per stored outcome: how many of the scope's grants (its own and those it
 * learned) are in that state. Per stage: ug_scope_foreach. */
uint64_t ug_scope_outcomes(const ug_scope *sc, ug_outcome o);
/* New grants in the last 60 s and 3600 s before now. */
void ug_stage_quota_offers(const ug_stage_quota *q, uint64_t now, uint64_t *last_minute, uint64_t *last_hour);

/* Calls fn for every grant of the scope, stripe by stripe (each under its
 * lock, so fn must be quick and must not call back into the store). */
typedef void (*ug_grant_fn)(void *ctx, uint64_t uid, const ug_grant_info *gi);
void ug_scope_foreach(ug_scope *sc, ug_grant_fn fn, void *ctx);
/* Calls fn for every durable grant of rollout's release `to` as data.mdb
 * holds it (the log drained first), without loading the release: an
 * earlier release's grants. 1 when the store knows the release, 0 when it
 * never held it, -1 with err set. fn may take its time. */
int ug_store_read_release(ug_store *s, const char *rollout, const char *to, ug_grant_fn fn, void *ctx, char *err,
                          size_t errcap) UG_WUR;
/* Calls fn with every release of rollout the store has held grants of. */
void ug_store_releases(ug_store *s, const char *rollout, void (*fn)(void *ctx, const char *to), void *ctx);
/* The id of stage name (numbered once, durably); 0 with err set. */
uint16_t ug_store_stage_id(ug_store *s, const char *name, char *err, size_t errcap);
/* The stage name of a stage id, or "?" for one the store never numbered. */
const char *ug_store_stage_name(const ug_store *s, uint16_t id);

/* ---- slots from a source, grants learned elsewhere, published marks -------- */

/* Where the slots of a stage come from when they are not a share of its
 * quota: a source lends them (ug_stage_quota_add_slots) and may call them
 * back at any time, so the store asks it before each one is spent. */
typedef struct ug_slot_source ug_slot_source;
struct ug_slot_source {
    /* Whether slots held may be spent now: asked before one is taken and
     * by ug_stage_quota_remaining. Quick, from any thread. */
    bool (*spendable)(const ug_slot_source *src);
    /* A peer is held back for want of a slot of some stage of this source
     * (UG_SHORT_HOLD): bring slots now. Called by a worker, at most once
     * per hold window of a stage; quick (a flag and a wake-up). */
    void (*wanted)(const ug_slot_source *src);
};

/* A stage whose slots come from src instead of a share: it starts empty
 * (and says so with its outlook), slots arrive through
 * ug_stage_quota_add_slots and are spent only while src says so. The
 * slots it holds stay across reloads, unless the quota changed: then they
 * are dropped at once (the source settles what it lent). src is the same
 * for every sourced stage of a store and outlives it; set before workers
 * read q. */
void ug_stage_quota_set_sourced(ug_stage_quota *q, const ug_slot_source *src, uint64_t quota);
bool ug_stage_quota_is_sourced(const ug_stage_quota *q);
/* n slots arrived; false (nothing added) when q is not sourced. */
bool ug_stage_quota_add_slots(ug_stage_quota *q, uint64_t n);

/* What an empty stage tells the peer that found it so. */
typedef enum {
    UG_SHORT_SPENT = 0, /* the quota is spent: WAIT why=2 with the policy's retry */
    UG_SHORT_SOON,      /* slots may come later (held elsewhere, or the source is away):
                           WAIT why=2 with a short retry (UG_RETRY_SOON) */
    UG_SHORT_HOLD,      /* the source is bringing slots: hold the reply back (no answer;
                           the peer's resend of the same HELLO is decided again) */
} ug_shortfall;
#define UG_HOLD_MS 50u     /* a hold window: past it with no slots, HOLD becomes SOON */
#define UG_RETRY_SOON 50u  /* seconds before the jitter (+20%): at most 60, the peer's minimum */

/* The source's word on a sourced stage that runs dry (it starts SOON).
 * Any thread; the source's own. */
void ug_stage_quota_set_outlook(ug_stage_quota *q, ug_shortfall o);
/* What the stage tells a peer that finds it empty: SPENT for a share; for
 * a sourced stage its outlook, where HOLD becomes SOON while the source
 * may not spend (its fence) or once the stage's hold window is older than
 * UG_HOLD_MS. With ask, a HOLD counts the peer as wanted and opens the
 * window (telling the source) if none is open. Any thread, lock-free. */
ug_shortfall ug_stage_quota_short(ug_stage_quota *q, bool ask);
/* The peers held back since the last call, and closes the hold window:
 * the source calls it when it brought slots or knows it cannot. */
uint64_t ug_stage_quota_wanted(ug_stage_quota *q);

/* What a stage owes its source, exact: taken with every stripe of the
 * scope locked, so no grant is in flight. */
typedef struct {
    uint64_t unused;      /* slots in the shards (taken out when take) */
    uint64_t unpublished; /* this store's grants of the stage not yet marked published */
    uint64_t published;   /* and those marked */
} ug_slot_tally;
void ug_stage_quota_tally(ug_stage_quota *q, bool take, ug_slot_tally *t);

/* A grant made elsewhere and learned here (ug_grant_info.learned): sticky
 * here, never stored here, not in the stage's count. An entry already
 * held keeps its grant; a learned outcome other than PENDING replaces the
 * held one (in memory). 1 added, 0 held already, -1 out of memory. */
int ug_scope_add_learned(ug_scope *sc, uint64_t uid, uint16_t stage, uint32_t at, ug_outcome o) UG_WUR;
/* uid's outcome o was learned: set in memory, whoever granted it.
 * 1 changed, 0 not (no grant, same outcome, or PENDING). */
int ug_scope_learn_outcome(ug_scope *sc, uint64_t uid, ug_outcome o);
/* Marks uids (this store's grants) as published, in memory and in their
 * records (one transaction); 0, or -1 when the records could not be
 * written (memory holds the mark): then *marked says how many were to be
 * written and *why (when not NULL) names the cause. */
int ug_store_mark_published(ug_store *s, ug_scope *sc, const uint64_t *uids, size_t n, size_t *marked,
                            const char **why) UG_WUR;
/* Forgets every published mark of stage `stage` in sc (those who had them
 * lost them): they are published again. Memory only. */
void ug_scope_unpublish_stage(ug_scope *sc, uint16_t stage);
uint32_t ug_scope_id(const ug_scope *sc);
/* A scope the store holds by id, or NULL. Valid until the next sweep. */
ug_scope *ug_store_scope_by_id(ug_store *s, uint32_t id);

/* Called after every successful commit, on the committing thread, with
 * what it made durable (grant records and outcome changes alike). Must be
 * quick. Set once, before any commit. */
typedef struct ug_commit_batch ug_commit_batch;
typedef void (*ug_store_committed_fn)(void *ctx, const ug_commit_batch *b);
size_t ug_commit_batch_len(const ug_commit_batch *b);
void ug_commit_batch_at(const ug_commit_batch *b, size_t i, uint32_t *scope, uint64_t *uid);
void ug_store_on_commit(ug_store *s, ug_store_committed_fn fn, void *ctx);

/* ---- operator state and history ----------------------------------------- */

/* Small durable records (pause, halt, holds) under a text key; written in
 * their own transaction, synchronously. get returns the value length, 0
 * when absent, -1 on error (or when it does not fit cap). */
int ug_store_put(ug_store *s, const char *key, const void *val, size_t len) UG_WUR;
int ug_store_del(ug_store *s, const char *key) UG_WUR;
long ug_store_get(ug_store *s, const char *key, void *val, size_t cap);
/* Calls fn(ctx, key, val, len) for every record whose key starts with prefix. */
void ug_store_scan(ug_store *s, const char *prefix, void (*fn)(void *ctx, const char *key, const void *val, size_t len),
                   void *ctx);

/* A rollout's releases as the store numbered them (every `to` it ever had,
 * the one in force included): fn(ctx, to, scope id) each. 0 or -1. */
int ug_store_past(ug_store *s, const char *rollout, void (*fn)(void *ctx, const char *to, uint32_t id), void *ctx);
/* The grants of scope id on disk (after a checkpoint), by outcome, without
 * loading the scope. 0 or -1. */
int ug_store_past_outcomes(ug_store *s, uint32_t id, uint64_t counts[UG_OUT_COUNT_]);

#define UG_HISTORY_MAX 1000u
#define UG_HISTORY_LINE_MAX 1024u /* bytes of one entry's text, cut beyond */
/* Appends one line (at most 512 bytes) stamped at; keeps the last 1,000. */
int ug_store_history_add(ug_store *s, uint64_t at, const char *line) UG_WUR;
void ug_store_history(ug_store *s, void (*fn)(void *ctx, uint64_t at, const char *line), void *ctx);

#endif
