/* Fleet mode's thread and the plugin's doors into it: queues fed by commits and outcomes, flags, status, the clean stop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "fleet/fleet_impl.h"

/*
 * Threads (upgate_plugin.h, "Threading"): workers only push onto two short
 * queues under qmu (grants made durable, outcomes changed) and never wait
 * for the fleet; control() and tick() push flag changes and may wait a
 * bounded time for Redis. The fleet thread owns the connection and does
 * all Redis I/O; it holds the live policy's lock (ug_live_lock) for a
 * whole pass (never while it sleeps), and reload takes it around swapping
 * and freeing policies, scopes and stages, so a pass sees one live policy
 * throughout.
 */

/* ---- doors for the other threads --------------------------------------------- */

/* Grants and outcomes a worker just made durable: told on the next pass.
 * Past QUEUE_MAX (Redis away long), the queue stops growing and the next
 * connection looks the whole store over instead. */
void fl_on_commit(void *ctx, const ug_commit_batch *b)
{
    ug_fleet *F = ctx;
    size_t n = ug_commit_batch_len(b);
    pthread_mutex_lock(&F->qmu);
    if (F->npub + n > F->cappub && !F->pub_lost) {
        size_t cap = F->cappub ? F->cappub : 1024;
        while (cap < F->npub + n && cap < QUEUE_MAX)
            cap *= 2;
        queued_grant *v = cap >= F->npub + n ? realloc(F->pub, cap * sizeof *v) : NULL;
        if (v)
            F->pub = v, F->cappub = cap;
        else
            F->pub_lost = true;
    }
    for (size_t i = 0; i < n && !F->pub_lost; i++, F->npub++)
        ug_commit_batch_at(b, i, &F->pub[F->npub].scope, &F->pub[F->npub].uid);
    pthread_mutex_unlock(&F->qmu);
}

void ug_fleet_outcome(ug_fleet *F, const ug_scope *sc, uint64_t uid, ug_outcome o)
{
    pthread_mutex_lock(&F->qmu);
    if (F->nout == F->capout && !F->out_lost) {
        size_t cap = F->capout ? F->capout * 2 : 256;
        queued_outcome *v = cap <= QUEUE_MAX ? realloc(F->out, cap * sizeof *v) : NULL;
        if (v)
            F->out = v, F->capout = cap;
        else
            F->out_lost = true;
    }
    if (!F->out_lost)
        F->out[F->nout++] = (queued_outcome){.scope = ug_scope_id(sc), .o = (uint8_t)o, .uid = uid};
    pthread_mutex_unlock(&F->qmu);
}

static int push_flag(ug_fleet *F, const fflag *f, int wait_ms)
{
    pthread_mutex_lock(&F->qmu);
    if (F->nflags == FLAGS_MAX) { /* only the latest word per rollout matters */
        memmove(F->flags, F->flags + 1, (FLAGS_MAX - 1) * sizeof *F->flags);
        F->nflags--;
    }
    uint64_t seq = ++F->flag_seq;
    F->flags[F->nflags] = *f;
    F->flags[F->nflags++].seq = seq;
    pthread_cond_signal(&F->wake);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += wait_ms / 1000;
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000)
        dl.tv_sec++, dl.tv_nsec -= 1000000000;
    while (wait_ms > 0 && F->flag_done < seq && F->running && F->up)
        if (pthread_cond_timedwait(&F->done, &F->qmu, &dl) != 0)
            break;
    int written = F->flag_done >= seq;
    pthread_mutex_unlock(&F->qmu);
    return written;
}

int ug_fleet_flag(ug_fleet *F, const char *rollout, ug_flag_op op, const char *why, uint64_t at, int wait_ms)
{
    fflag f = {.op = (int)op, .at = at};
    snprintf(f.rollout, sizeof f.rollout, "%s", rollout);
    snprintf(f.why, sizeof f.why, "%s", why ? why : "");
    return push_flag(F, &f, wait_ms);
}

void ug_fleet_hold(ug_fleet *F, const char *rollout, uint64_t was, uint64_t held_since, uint64_t shift)
{
    fflag f = {.op = FOP_HOLD, .was = was, .held = held_since, .shift = shift};
    snprintf(f.rollout, sizeof f.rollout, "%s", rollout);
    push_flag(F, &f, 0);
}

int ug_fleet_promote(ug_fleet *F, const char *rollout, const ug_fleet_gate *g, int wait_ms)
{
    fflag f = {.op = FOP_PROMOTE, .gate = *g};
    snprintf(f.rollout, sizeof f.rollout, "%s", rollout);
    return push_flag(F, &f, wait_ms);
}

bool ug_fleet_leads(ug_fleet *F)
{
    pthread_mutex_lock(&F->qmu);
    bool v = F->leads;
    pthread_mutex_unlock(&F->qmu);
    return v;
}

/* A leased slot is spent only before the fence: a tracker that cannot
 * tell Redis of its grants stops making them a few heartbeats after the
 * last one Redis took (docs/fleet.md, "The cutoff"). */
static bool spendable(const ug_slot_source *src)
{
    const ug_fleet *F = (const ug_fleet *)((const char *)src - offsetof(ug_fleet, slots));
    return ug_mono_ms() < atomic_load_explicit(&F->fence, memory_order_acquire);
}

/* A worker holds a peer back for a lease: the fleet thread passes now
 * rather than at its next tick. */
static void wanted(const ug_slot_source *src)
{
    ug_fleet *F = (ug_fleet *)((const char *)src - offsetof(ug_fleet, slots));
    if (atomic_exchange(&F->wanted, true))
        return; /* a wake-up is on its way */
    pthread_mutex_lock(&F->qmu);
    pthread_cond_signal(&F->wake);
    pthread_mutex_unlock(&F->qmu);
}

bool ug_fleet_same_conf(const ug_fleet *F, const ug_fleet_conf *c)
{
    const ug_fleet_conf *a = &F->conf;
    return c->enabled && strcmp(a->redis, c->redis) == 0 && strcmp(a->tracker, c->tracker) == 0 &&
           strcmp(a->password_file, c->password_file) == 0 && strcmp(a->user, c->user) == 0 && a->lease == c->lease &&
           a->lease_timeout == c->lease_timeout;
}

/* The cutoff: a few heartbeats, and well inside lease_timeout (forget
 * waits that long before it writes anything off). */
static int64_t cutoff_ms(const ug_fleet *F)
{
    int64_t ms = CUTOFF_BEATS * BEAT_MS, most = (int64_t)F->conf.lease_timeout * 1000 * 3 / 4;
    return ms < most ? ms : most;
}

/* ---- status ------------------------------------------------------------------ */

json_t *ug_fleet_status(ug_fleet *F)
{
    int64_t left = atomic_load(&F->fence) - ug_mono_ms();
    uint64_t held = 0; /* peers held back for a lease, over the workers */
    for (unsigned w = 0; w < F->I->nworkers; w++)
        held += atomic_load_explicit(&F->I->workers[w].c[ST_HELD_FOR_LEASE], memory_order_relaxed);
    pthread_mutex_lock(&F->qmu);
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:o}", "tracker",
                          F->conf.tracker, "redis", F->conf.redis, "server", F->addr, "connected", F->up, "leads",
                          F->leads, "since", F->up ? json_integer((json_int_t)F->up_since) : json_null(), "lost_since",
                          F->up ? json_null() : json_integer((json_int_t)F->lost_since), "error",
                          F->fault[0] ? json_string(F->fault)
                          : (F->up && !F->taken) || !F->last_err[0] ? json_null() : json_string(F->last_err),
                          "lease_timeout_s",
                          (json_int_t)F->conf.lease_timeout, "lease_valid_ms", (json_int_t)(left > 0 ? left : 0),
                          "queued", (json_int_t)F->npub, "trackers_up", (json_int_t)F->trackers_up, "queue_overflow",
                          json_boolean(F->pub_lost || F->out_lost));
    json_object_set_new(o, "held_for_lease", json_integer((json_int_t)held));
    json_object_set_new(o, "cutoff_ms", json_integer((json_int_t)cutoff_ms(F)));
    pthread_mutex_unlock(&F->qmu);
    return o;
}

json_t *ug_fleet_stage_status(ug_fleet *F, const char *rollout, const char *to, const char *stage)
{
    json_t *o = NULL;
    pthread_mutex_lock(&F->qmu);
    for (size_t i = 0; i < F->nsc && !o; i++) {
        const fscope *s = &F->sc[i];
        if (strcmp(s->rollout, rollout) != 0 || strcmp(s->to, to) != 0)
            continue;
        for (size_t j = 0; j < s->nst && !o; j++) {
            const fstage *t = &s->st[j];
            if (strcmp(t->name, stage) != 0 || !t->known)
                continue;
            o = json_pack("{s:I, s:I, s:I, s:I}", "counted", (json_int_t)t->r_n, "leased", (json_int_t)t->r_leased,
                          "lease_here", (json_int_t)t->r_mine, "told_here", (json_int_t)t->r_told);
            if (t->has_quota)
                json_object_set_new(o, "available",
                                    json_integer((json_int_t)(t->quota > t->r_n + t->r_leased
                                                                  ? t->quota - t->r_n - t->r_leased
                                                                  : 0)));
            if (t->has_fleet_rate)
                json_object_set_new(o, "rate_share", json_real(t->share));
        }
    }
    pthread_mutex_unlock(&F->qmu);
    return o;
}

/* Asked from control(): served by the fleet thread on its next pass, or
 * refused when Redis does not answer within a few seconds. */
json_t *ug_fleet_control(ug_fleet *F, json_t *req, char *err, size_t errcap)
{
    json_t *mine = json_deep_copy(req); /* the fleet thread may outlive our wait */
    if (!mine) {
        snprintf(err, errcap, "fleet: out of memory");
        return NULL;
    }
    pthread_mutex_lock(&F->qmu);
    F->req = mine;
    F->rep = NULL;
    F->req_done = false;
    F->req_err[0] = '\0';
    pthread_cond_signal(&F->wake);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 3 * CMD_TIMEOUT_MS / 1000 + 2;
    while (!F->req_done && F->running)
        if (pthread_cond_timedwait(&F->done, &F->qmu, &dl) != 0)
            break;
    json_t *rep = F->req_done ? F->rep : NULL;
    if (!rep)
        snprintf(err, errcap, "%s", F->req_done && F->req_err[0] ? F->req_err
                               : F->running ? "fleet: Redis did not answer in time"
                                            : "fleet: the fleet thread is stopped");
    F->req = NULL;
    F->rep = NULL;
    pthread_mutex_unlock(&F->qmu);
    json_decref(mine);
    return rep;
}

static void serve_request(ug_fleet *F, const ug_live *l)
{
    pthread_mutex_lock(&F->qmu);
    json_t *req = F->req && !F->req_done ? json_incref(F->req) : NULL;
    pthread_mutex_unlock(&F->qmu);
    if (!req)
        return;
    char err[400] = "";
    json_t *rep = NULL;
    const char *sub = json_string_value(json_object_get(req, "sub"));
    if (!fl_up(F))
        snprintf(err, sizeof err, "fleet: Redis at %.150s is unreachable: %.200s", F->conf.redis, F->r.err);
    else if (sub && strcmp(sub, "status") == 0)
        rep = fl_status_json(F, l, err, sizeof err);
    else if (sub && strcmp(sub, "forget") == 0)
        rep = fl_forget_json(F, l, req, err, sizeof err);
    else
        snprintf(err, sizeof err, "fleet: \"sub\" must be status or forget");
    if (!fl_up(F))
        fl_lost(F);
    pthread_mutex_lock(&F->qmu);
    if (F->req == req) {
        F->rep = rep;
        snprintf(F->req_err, sizeof F->req_err, "%s", err);
        F->req_done = true;
        pthread_cond_broadcast(&F->done);
    } else {
        json_decref(rep); /* the caller gave up waiting */
    }
    pthread_mutex_unlock(&F->qmu);
    json_decref(req);
}

/* ---- the connection ------------------------------------------------------------ */

static void try_connect(ug_fleet *F)
{
    int64_t now = ug_mono_ms();
    if (now < F->next_try_ms)
        return;
    if (fr_connect(&F->r) != 0) {
        F->backoff_ms = F->backoff_ms ? F->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (F->backoff_ms > BACKOFF_MAX_MS)
            F->backoff_ms = BACKOFF_MAX_MS;
        fl_lost(F);
        F->next_try_ms = now + F->backoff_ms;
        return;
    }
    uint64_t t = ug_inst_now(F->I);
    pthread_mutex_lock(&F->qmu);
    uint64_t away = F->lost_since && t > F->lost_since ? t - F->lost_since : 0;
    F->up = true;
    F->up_since = t;
    snprintf(F->addr, sizeof F->addr, "%s", F->r.addr);
    pthread_mutex_unlock(&F->qmu);
    if (!F->ever_up)
        fl_log(F, UG_LOG_INFO, "joined the fleet at %s (redis %s)", F->r.addr, F->conf.redis);
    else if (F->lost_logged)
        fl_log(F, UG_LOG_INFO, "Redis reachable again at %s after %llu s; telling the fleet what it missed", F->r.addr,
               (unsigned long long)away);
    if (F->last_run_id[0] && strcmp(F->last_run_id, F->r.run_id) != 0)
        fl_log(F, UG_LOG_INFO, "Redis at %s is a new server process (run id %s): checking it holds what this "
                               "tracker told it", F->r.addr, F->r.run_id);
    snprintf(F->last_run_id, sizeof F->last_run_id, "%s", F->r.run_id);
    F->ever_up = true;
    F->lost_logged = false;
    F->backoff_ms = 0;
    F->last_beat_ms = 0;
    for (size_t i = 0; i < F->nsc; i++) { /* everything is looked at again */
        F->sc[i].ready = false;
        for (size_t j = 0; j < F->sc[i].nst; j++)
            F->sc[i].st[j].indexed = F->sc[i].st[j].known_avail = false;
    }
    for (size_t i = 0; i < F->nro; i++)
        F->ro[i].synced = false;
}

/* The heartbeat renews the fence: a stage spends its slots only while the
 * fleet can still see this tracker alive (docs/fleet.md, "forget"). */
static void beat(ug_fleet *F, const ug_live *l, const char *state)
{
    char trackers[UG_FLEET_KEY_MAX], forgot[UG_FLEET_KEY_MAX];
    ug_fleet_key_fleet(trackers, "trackers", NULL);
    ug_fleet_key_fleet(forgot, "forgot", NULL);
    int64_t sent = ug_mono_ms();
    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, trackers);
    fr_arg(a, forgot);
    fr_arg(a, F->conf.tracker);
    fr_arg(a, state);
    fr_arg(a, F->self_addr);
    fr_arg(a, F->self_id);
    fr_argu(a, F->conf.lease_timeout);
    redisReply *rep = fr_script(&F->r, FR_BEAT, 2, a);
    long long was = 0, now = 0, taken = 0;
    bool ok = rep && fr_int_at(rep, 0, &was) && fr_int_at(rep, 1, &now) && fr_int_at(rep, 2, &taken);
    if (rep)
        freeReplyObject(rep);
    if (!ok)
        return;
    F->last_beat_ms = sent;
    F->redis_now = (uint64_t)now;
    F->redis_now_at = sent;
    if (taken) { /* the fence is not renewed: nothing is spent, nothing of the other's touched */
        if (!F->name_taken)
            fl_log(F, UG_LOG_ERROR,
                   "another tracker named %s is alive in the fleet (its heartbeat is younger than lease_timeout): "
                   "each tracker needs its own fleet.tracker; this one leases and tells nothing until that name "
                   "is free",
                   F->conf.tracker);
        F->name_taken = true;
        snprintf(F->r.err, sizeof F->r.err, "the name %.64s is in use by another live tracker", F->conf.tracker);
        pthread_mutex_lock(&F->qmu);
        snprintf(F->last_err, sizeof F->last_err, "%s", F->r.err);
        F->taken = true;
        pthread_mutex_unlock(&F->qmu);
        return;
    }
    if (F->name_taken) {
        fl_log(F, UG_LOG_INFO, "the name %s is free again: joining", F->conf.tracker);
        pthread_mutex_lock(&F->qmu);
        F->taken = false;
        pthread_mutex_unlock(&F->qmu);
    }
    F->name_taken = false;
    if (was && strcmp(state, "up") == 0)
        fl_forgotten(F, l);
    if (!fl_up(F))
        return;
    atomic_store(&F->fence, sent + cutoff_ms(F));
}

/* One pass: heartbeat, then make every scope ready, tell, learn, lease,
 * follow the flags; the slower work once a second. A worker holding a
 * peer back for a lease wakes a short pass: leases only. */
static void pass(ug_fleet *F)
{
    const ug_live *l = atomic_load(&F->I->live);
    int64_t now = ug_mono_ms();
    bool asked = atomic_exchange(&F->wanted, false);
    if (asked && now - F->last_pass_ms < TICK_MS && now - F->last_beat_ms < BEAT_MS && !F->name_taken) {
        fl_leases(F, l, now);
        if (!fl_up(F))
            fl_lost(F);
        return;
    }
    F->last_pass_ms = now;
    fl_sync_policy(F, l);
    if (now - F->last_beat_ms >= BEAT_MS)
        beat(F, l, "up");
    if (F->name_taken) { /* the other's lease is not ours to settle or spend */
        fl_leases(F, l, now); /* says so to the peers: come back later */
        serve_request(F, l);
        if (!fl_up(F))
            fl_lost(F);
        return;
    }
    if (fl_up(F))
        fl_prepare(F, l);
    if (fl_up(F))
        fl_drain_pub(F, l);
    if (fl_up(F))
        fl_drain_out(F, l);
    if (fl_up(F))
        fl_follow(F, l);
    if (fl_up(F))
        fl_flags(F, l);
    if (fl_up(F))
        fl_leases(F, l, now);
    if (fl_up(F) && now - F->last_second_ms >= 1000) {
        F->last_second_ms = now;
        fl_each_second(F, l);
    }
    if (fl_up(F))
        fl_census(F, l);
    serve_request(F, l);
    if (!fl_up(F))
        fl_lost(F);
}

/* Until the next pass (or, while Redis is away, the next try); a stop or a
 * control request wakes it, and so does a flag change when it can be told. */
static void sleep_until(ug_fleet *F, int64_t ms, bool for_flags)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    ms = ms < 1 ? 1 : ms > 10000 ? 10000 : ms;
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000)
        dl.tv_sec++, dl.tv_nsec -= 1000000000;
    pthread_mutex_lock(&F->qmu);
    while (!F->stop && !(F->req && !F->req_done) && !(for_flags && (F->nflags || atomic_load(&F->wanted))))
        if (pthread_cond_timedwait(&F->wake, &F->qmu, &dl) != 0)
            break;
    pthread_mutex_unlock(&F->qmu);
}

static bool stopping(ug_fleet *F)
{
    pthread_mutex_lock(&F->qmu);
    bool s = F->stop;
    pthread_mutex_unlock(&F->qmu);
    return s;
}

/* Everything told, every unused slot back, the tracker marked stopped;
 * when Redis is away, its lease stays counted until this tracker returns. */
static void stop_cleanly(ug_fleet *F)
{
    const ug_live *l = atomic_load(&F->I->live);
    if (!fl_up(F)) {
        F->next_try_ms = 0;
        try_connect(F);
    }
    if (fl_up(F)) {
        fl_sync_policy(F, l);
        beat(F, l, "up");
    }
    if (F->name_taken) {
        fl_log(F, UG_LOG_WARN, "stopped while another tracker holds the name %s: nothing told", F->conf.tracker);
        return;
    }
    if (fl_up(F))
        fl_prepare(F, l);
    if (fl_up(F))
        fl_drain_pub(F, l);
    if (fl_up(F))
        fl_drain_out(F, l);
    if (fl_up(F))
        fl_flags(F, l);
    uint64_t back = fl_up(F) ? fl_return_all(F, l) : 0;
    if (fl_up(F))
        beat(F, l, "stopped");
    atomic_store(&F->fence, 0);
    if (fl_up(F))
        fl_log(F, UG_LOG_INFO, "left the fleet cleanly: every grant told, %llu unused slots returned",
               (unsigned long long)back);
    else
        fl_log(F, UG_LOG_WARN,
               "stopped without reaching Redis at %s (%s): this tracker's lease stays counted until it returns, "
               "or until `upgate-ctl fleet forget %s`",
               F->conf.redis, F->r.err, F->conf.tracker);
}

static void *run(void *arg)
{
    ug_fleet *F = arg;
    if (F->I->opener) /* the password file, at each connect, after the host dropped privileges */
        ug_opener_use(F->I->opener);
    while (!stopping(F)) {
        ug_live_lock(F->I);
        if (!fl_up(F))
            try_connect(F);
        if (fl_up(F))
            pass(F);
        else
            serve_request(F, atomic_load(&F->I->live));
        if (!fl_up(F)) /* peers of empty stages come back later: Redis is away */
            fl_outlooks(F, atomic_load(&F->I->live));
        ug_live_unlock(F->I);
        if (fl_up(F))
            sleep_until(F, TICK_MS, true);
        else
            sleep_until(F, F->next_try_ms - ug_mono_ms(), false);
    }
    ug_live_lock(F->I);
    stop_cleanly(F);
    fr_close(&F->r);
    ug_live_unlock(F->I);
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------- */

/* This state folder's id in the fleet, made once and kept in the store: a
 * tracker restarted on its folder is itself; another folder under the same
 * name is a namesake, kept out until the name is free. */
static int self_id(ug_fleet *F, char *err, size_t errcap)
{
    char v[17];
    long n = ug_store_get(F->I->store, "fleet:id", v, sizeof v - 1);
    if (n == 16) {
        v[16] = '\0';
        memcpy(F->self_id, v, sizeof v);
        return 0;
    }
    uint8_t r[8];
    randombytes_buf(r, sizeof r);
    for (int i = 0; i < 8; i++)
        snprintf(F->self_id + 2 * i, 3, "%02x", r[i]);
    if (ug_store_put(F->I->store, "fleet:id", F->self_id, 16) != 0) {
        snprintf(err, errcap, "fleet: cannot store this tracker's id in %s", F->I->state_dir);
        return -1;
    }
    return 0;
}

/* Fleet mode trusts only a Redis other local users cannot reach: one that
 * asks for a password (password_file, an ACL user's), or a Unix socket in
 * a folder only this user can enter. A folder that does not exist yet is
 * checked again at each connect (fr_connect). */
static int authenticated(ug_fleet *F, char *err, size_t errcap)
{
    char why[400];
    if (F->conf.password_file[0])
        return 0;
    if (F->r.url.kind != UG_REDIS_UNIX) {
        snprintf(err, errcap,
                 "fleet.redis: %.200s without a password: any local user can reach it and rewrite the fleet's "
                 "quotas and flags. Give fleet.password_file (with fleet.user, a Redis ACL user; see "
                 "contrib/redis/upgate.acl and docs/fleet.md, \"Securing Redis\"), or use a unix:// socket in a "
                 "folder only this user can enter",
                 F->conf.redis);
        return -1;
    }
    if (fr_socket_private(F->r.url.path, why, sizeof why) != 0)
        return 0;
    snprintf(err, errcap,
             "fleet.redis: %.200s without a password: the socket's %.300s. Make that folder 0700 and owned by "
             "this user, or give fleet.password_file (docs/fleet.md, \"Securing Redis\")",
             F->conf.redis, why);
    return -1;
}

ug_fleet *ug_fleet_new(ug_inst *I, const ug_fleet_conf *conf, char *err, size_t errcap)
{
    ug_fleet *F = aligned_alloc(64, sizeof *F);
    if (!F) {
        snprintf(err, errcap, "fleet: out of memory");
        return NULL;
    }
    memset(F, 0, sizeof *F);
    F->I = I;
    F->conf = *conf;
    const char *why;
    if (ug_parse_redis_url(conf->redis, strlen(conf->redis), &F->r.url, &why) != 0) {
        snprintf(err, errcap, "fleet.redis: %s", why); /* the loader checked it: cannot happen */
        free(F);
        return NULL;
    }
    snprintf(F->r.url_text, sizeof F->r.url_text, "%s", conf->redis);
    snprintf(F->r.password_file, sizeof F->r.password_file, "%s", conf->password_file);
    snprintf(F->r.user, sizeof F->r.user, "%s", conf->user);
    F->r.timeout_ms = CMD_TIMEOUT_MS;
    F->census_s = fl_census_interval();
    char host[64] = "?";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    host[strcspn(host, "|")] = '\0';
    snprintf(F->self_addr, sizeof F->self_addr, "%s pid %ld", host, (long)getpid());
    (void)pthread_mutex_init(&F->qmu, NULL);
    (void)pthread_cond_init(&F->wake, NULL);
    (void)pthread_cond_init(&F->done, NULL);
    atomic_init(&F->fence, 0); /* nothing is spent before the first heartbeat */
    F->slots.spendable = spendable;
    F->slots.wanted = wanted;
    if (self_id(F, err, errcap) != 0 || authenticated(F, err, errcap) != 0 || fl_flag_key(F, err, errcap) != 0) {
        ug_fleet_free(F);
        return NULL;
    }
    return F;
}

int ug_fleet_start(ug_fleet *F, char *err, size_t errcap)
{
    F->running = true;
    if (pthread_create(&F->thread, NULL, run, F) != 0) {
        F->running = false;
        snprintf(err, errcap, "fleet: cannot start its thread");
        return -1;
    }
    return 0;
}

void ug_fleet_stop(ug_fleet *F)
{
    if (!F || !F->running)
        return;
    pthread_mutex_lock(&F->qmu);
    F->stop = true;
    pthread_cond_broadcast(&F->wake);
    pthread_mutex_unlock(&F->qmu);
    pthread_join(F->thread, NULL);
    pthread_mutex_lock(&F->qmu);
    F->running = false;
    pthread_cond_broadcast(&F->done);
    pthread_mutex_unlock(&F->qmu);
}

void ug_fleet_free(ug_fleet *F)
{
    if (!F)
        return;
    ug_fleet_stop(F);
    fr_close(&F->r);
    fr_args_free(&F->a);
    for (size_t i = 0; i < F->nsc; i++)
        free(F->sc[i].st);
    free(F->sc);
    free(F->ro);
    free(F->pub);
    free(F->out);
    if (F->flag_key)
        sodium_free(F->flag_key); /* wiped */
    pthread_mutex_destroy(&F->qmu);
    pthread_cond_destroy(&F->wake);
    pthread_cond_destroy(&F->done);
    free(F);
}
