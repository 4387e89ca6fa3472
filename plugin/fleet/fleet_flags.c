/* Fleet mode's flags: pause, halt, resume, ramp holds and promoted gates, written to Redis under a MAC only the fleet's trackers can make, and read back by every tracker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/gates.h"
#include "fleet/fleet_impl.h"

/*
 * A rollout's flags are one hash, written whole by a compare-and-set on its
 * version (the FLAGS script) and MACed with a key derived from the fleet's
 * password file: a local user, or a Redis user without that file, may
 * write the hash but not a state a tracker obeys. A tracker applies only
 * a version above the one it applied last (kept in its store), so an old
 * state replayed, or the hash deleted and written again, lifts nothing.
 */

#define CAS_TRIES 4

int fl_flag_key(ug_fleet *F, char *err, size_t errcap)
{
    if (!F->conf.password_file[0])
        return 0; /* no secret: the socket's folder keeps writers out (fleet.c, authenticated) */
    char why[256] = "";
    size_t len = 0;
    uint8_t *pw = sodium_malloc(1024), k0[32];
    F->flag_key = sodium_malloc(FLAG_KEY_LEN);
    if (!pw || !F->flag_key) {
        sodium_free(pw);
        return snprintf(err, errcap, "fleet: out of memory"), -1;
    }
    if (ug_file_read(F->conf.password_file, pw, 1024, &len, why, sizeof why) != 0) {
        sodium_free(pw);
        return snprintf(err, errcap, "fleet.password_file: cannot read %s: %s", F->conf.password_file, why), -1;
    }
    while (len && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
        len--;
    static const char ctx[] = "upgate fleet flags key v1";
    crypto_generichash(k0, sizeof k0, pw, len, NULL, 0);
    crypto_generichash(F->flag_key, FLAG_KEY_LEN, (const uint8_t *)ctx, sizeof ctx - 1, k0, sizeof k0);
    sodium_memzero(k0, sizeof k0);
    sodium_free(pw); /* wiped */
    return 0;
}

/* ---- reading ------------------------------------------------------------------------ */

/* The flags of f in Redis: 1 (st set; *valid when they parse and carry
 * our MAC, *gvalid when their gates carry our gmac too), 0 none yet (no
 * version), -1 Redis failed. */
static int read_flags(ug_fleet *F, const flagged_rollout *f, ug_fleet_flags *st, bool *valid, bool *gvalid)
{
    fr_args_reset(&F->a);
    fr_arg(&F->a, "HGETALL");
    fr_arg(&F->a, f->fkey);
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    const char *fv[32];
    size_t len[32];
    long n = fr_strings(rep, fv, len, 32);
    long long v;
    memset(st, 0, sizeof *st);
    bool ok = n >= 0 && ug_fleet_flags_parse(fv, len, (size_t)n, st) == 0;
    if (!ok) /* another program's hash, or a damaged one: its version still counts for the CAS */
        st->ver = fr_hash_int(rep, "ver", &v) && v > 0 ? (uint64_t)v : 0;
    freeReplyObject(rep);
    *valid = ok && (!F->flag_key || ug_fleet_flags_verify(F->flag_key, f->name, st));
    *gvalid = *valid && (!F->flag_key || ug_fleet_gates_verify(F->flag_key, f->name, st));
    return st->ver ? 1 : 0;
}

/* This tracker's own flags of a rollout. */
static void local_state(const ug_rollout_state *rt, ug_fleet_flags *st)
{
    memset(st, 0, sizeof *st);
    st->paused = atomic_load(&rt->ctl_paused);
    st->halted = atomic_load(&rt->halted);
    if (st->halted) {
        snprintf(st->why, sizeof st->why, "%s", rt->halted_why);
        st->at = rt->halted_at;
    }
    st->held = atomic_load(&rt->held_since);
    st->shift = atomic_load(&rt->shift);
}

/* ---- writing ------------------------------------------------------------------------ */

/* FLAGS: nw (its version set) replaces the hash if it still is at
 * version expected. 1 written, 0 it moved on, -1 Redis failed. */
static int cas(ug_fleet *F, const flagged_rollout *f, ug_fleet_flags *nw, uint64_t expected)
{
    char gates[UG_FLEET_GATES_TEXT];
    nw->mac[0] = nw->gmac[0] = '\0';
    if (F->flag_key)
        ug_fleet_flags_mac(F->flag_key, f->name, nw, nw->mac);
    if (F->flag_key && nw->ngates)
        ug_fleet_gates_mac(F->flag_key, f->name, nw, nw->gmac);
    ug_fleet_gates_format(nw, gates);
    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, f->fkey);
    fr_argu(a, expected);
    fr_argu(a, nw->ver);
    fr_arg(a, nw->paused ? "1" : "0");
    fr_arg(a, nw->halted ? "1" : "0");
    fr_arg(a, nw->why);
    fr_argu(a, nw->at);
    fr_argu(a, nw->held);
    fr_argu(a, nw->shift);
    fr_arg(a, nw->mac);
    fr_arg(a, gates);
    fr_arg(a, nw->gmac);
    redisReply *rep = fl_script(F, FR_FLAGS, 1);
    long long done = 0;
    if (rep && !fr_int_at(rep, 1, &done))
        done = 0;
    if (rep)
        freeReplyObject(rep);
    if (!rep)
        return -1;
    return done == 1 && fr_replicated(&F->r) == 0 ? 1 : fl_up(F) ? 0 : -1;
}

/* One queued change on top of the fleet's word (or, when that is not a
 * tracker's, this tracker's own). 1 done, 0 try again, -1 Redis failed. */
static int write_one(ug_fleet *F, const flagged_rollout *f, const ug_live_rollout *lr, const fflag *op)
{
    ug_fleet_flags cur, nw;
    bool valid, gvalid;
    int rc = read_flags(F, f, &cur, &valid, &gvalid);
    if (rc < 0)
        return -1;
    if (valid && rc == 1) {
        nw = cur;
        if (!gvalid) /* gates a tracker did not seal are not carried on */
            nw.ngates = 0;
    } else if (lr)
        local_state(lr->rt, &nw);
    else
        memset(&nw, 0, sizeof nw);
    if (op->op == FOP_PAUSE) {
        nw.paused = true;
    } else if (op->op == FOP_RESUME) {
        nw.paused = nw.halted = false, nw.why[0] = '\0', nw.at = 0;
    } else if (op->op == FOP_HALT) {
        nw.halted = true, nw.at = op->at;
        snprintf(nw.why, sizeof nw.why, "%s", op->why);
    } else if (op->op == FOP_PROMOTE) {
        int added = ug_fleet_gates_add(&nw, &op->gate);
        if (added < 0)
            fl_log(F, UG_LOG_ERROR,
                   "rollout %s: the promote of stage %s step %u cannot be told to the fleet (more than %u gates "
                   "promoted in release %s): promote it on each tracker",
                   f->name, op->gate.stage, op->gate.step, UG_FLEET_GATES_MAX, op->gate.to);
        if (added <= 0)
            return 1; /* the fleet knows it already, or never will */
    } else if (nw.held != op->was) {
        return 1; /* another hold decision came first: this one is moot */
    } else {
        nw.held = op->held, nw.shift = op->shift;
    }
    nw.ver = (cur.ver > f->ver ? cur.ver : f->ver) + 1;
    return cas(F, f, &nw, cur.ver);
}

static flagged_rollout *flagged(ug_fleet *F, const char *name)
{
    for (size_t i = 0; i < F->nro; i++)
        if (strcmp(F->ro[i].name, name) == 0)
            return &F->ro[i];
    return NULL;
}

static void write_flags(ug_fleet *F, const ug_live *l)
{
    fflag op;
    for (;;) {
        pthread_mutex_lock(&F->qmu);
        bool have = F->nflags > 0;
        if (have)
            op = F->flags[0];
        pthread_mutex_unlock(&F->qmu);
        if (!have)
            return;
        flagged_rollout tmp = {0}, *f = flagged(F, op.rollout);
        if (!f) { /* gone from the policy since: written on its own key all the same */
            snprintf(tmp.name, sizeof tmp.name, "%s", op.rollout);
            ug_fleet_key_rollout(tmp.fkey, op.rollout, "flags");
            f = &tmp;
        }
        int rc = 0;
        for (int i = 0; i < CAS_TRIES && rc == 0; i++)
            rc = write_one(F, f, ug_live_find(l, op.rollout), &op);
        if (rc <= 0)
            return; /* stays queued: Redis failed, or the hash kept moving */
        pthread_mutex_lock(&F->qmu);
        if (F->nflags && F->flags[0].seq == op.seq) {
            memmove(F->flags, F->flags + 1, (F->nflags - 1) * sizeof *F->flags);
            F->nflags--;
        }
        F->flag_done = op.seq > F->flag_done ? op.seq : F->flag_done;
        pthread_cond_broadcast(&F->done);
        pthread_mutex_unlock(&F->qmu);
    }
}

/* ---- applying ----------------------------------------------------------------------- */

/* The fleet's word on a rollout, applied here: what differs changes, is
 * stored, and stops remembered answers (the epoch). */
static void apply_flags(ug_fleet *F, const ug_live_rollout *lr, const ug_fleet_flags *st)
{
    ug_inst *I = F->I;
    ug_rollout_state *rt = lr->rt;
    bool changed = false;
    uint64_t now = ug_inst_now(I);
    char line[400];
    ug_event e = {.by = {.kind = UG_ACTOR_FLEET}, .rollout = rt->name, .what = line};
    if (st->paused != atomic_load(&rt->ctl_paused)) {
        ug_flags_pause(I, rt, st->paused);
        snprintf(line, sizeof line, "%s rollout %s (the fleet's word)", st->paused ? "pause" : "resume", rt->name);
        e.action = st->paused ? "pause" : "resume";
        (void)ug_history(I, now, &e);
        changed = true;
    }
    if (st->halted && !atomic_load(&rt->halted)) {
        ug_flags_halt(I, rt, st->why[0] ? st->why : "(the fleet's word)", st->at ? st->at : now, e.by);
        changed = true;
    } else if (!st->halted && atomic_load(&rt->halted)) {
        bool afresh;
        (void)ug_flags_resume_halt(I, rt, lr->r->has_halt_when, lr->sc, now, &afresh);
        snprintf(line, sizeof line, "resume rollout %s: lifts its halt (the fleet's word)%s", rt->name,
                 afresh ? "; halt_when now counts only the outcomes from here on" : "");
        e.action = "resume";
        (void)ug_history(I, now, &e);
        changed = true;
    }
    if (st->held != atomic_load(&rt->held_since) || st->shift != atomic_load(&rt->shift)) {
        ug_flags_set_hold(I, rt, st->held, st->shift);
        snprintf(line, sizeof line, "%s ramp of rollout %s, shifted %llu s (the fleet's word)",
                 st->held ? "hold" : "run", rt->name, (unsigned long long)st->shift);
        e.action = st->held ? "hold_ramp" : "run_ramp";
        (void)ug_history(I, now, &e);
        changed = true;
    }
    if (changed) {
        atomic_fetch_add(&I->epoch, 1); /* remembered answers no longer hold */
        fl_log(F, UG_LOG_INFO, "rollout %s: now %s%s, as the fleet says", rt->name,
               st->halted ? "halted" : st->paused ? "paused" : "running", st->held ? ", ramp held" : "");
    }
}

static void refuse(ug_fleet *F, flagged_rollout *f, const ug_fleet_flags *st, const char *what)
{
    if (st->ver != f->bad_ver)
        fl_log(F, UG_LOG_WARN,
               "rollout %s: the fleet's flags at version %llu (%s%s) are %s: ignored; this tracker keeps version "
               "%llu until a tracker of the fleet writes them again",
               f->name, (unsigned long long)st->ver, st->halted ? "halted" : "not halted",
               st->paused ? ", paused" : "", what, (unsigned long long)f->ver);
    f->bad_ver = st->ver;
}

/* The gates the fleet promoted, offered at every read of its flags: a gate
 * of this tracker that is that very gate and due now is released (one not
 * due yet is released at a later read, once it is). */
static void promote_gates(ug_fleet *F, flagged_rollout *f, const ug_live_rollout *lr, const ug_fleet_flags *st,
                          bool gvalid)
{
    if (!gvalid) {
        if (st->ver != f->bad_gver)
            fl_log(F, UG_LOG_WARN,
                   "rollout %s: the gates promoted in the fleet's flags at version %llu are not signed with this "
                   "fleet's key: ignored",
                   f->name, (unsigned long long)st->ver);
        f->bad_gver = st->ver;
        return;
    }
    unsigned n = 0;
    uint64_t now = ug_inst_now(F->I);
    for (size_t i = 0; i < st->ngates; i++) {
        const ug_fleet_gate *g = &st->gates[i];
        if (strcmp(g->to, lr->r->to) == 0 && ug_gates_fleet_promote(F->I, lr, g->stage, g->to, g->step, g->bp, now)) {
            fl_log(F, UG_LOG_INFO, "rollout %s stage %s: gate before step %u released, as the fleet says", f->name,
                   g->stage, g->step);
            n++;
        }
    }
    if (n)
        atomic_fetch_add(&F->I->epoch, 1); /* remembered answers no longer hold */
}

static int poll_flags(ug_fleet *F, flagged_rollout *f, const ug_live_rollout *lr)
{
    ug_fleet_flags st;
    bool valid, gvalid;
    int rc = read_flags(F, f, &st, &valid, &gvalid);
    if (rc < 0)
        return -1;
    if (rc == 0) { /* a fleet without flags for it yet starts from this tracker's */
        ug_fleet_flags mine;
        local_state(lr->rt, &mine);
        mine.ver = f->ver + 1;
        if (cas(F, f, &mine, 0) < 0)
            return -1;
        f->synced = true;
        return 0; /* applied from the next poll, which reads what was written */
    }
    f->synced = true;
    if (st.ver == f->ver) {
        if (valid && st.ngates)
            promote_gates(F, f, lr, &st, gvalid);
        return 0;
    }
    if (!valid)
        refuse(F, f, &st, F->flag_key ? "not signed with this fleet's key (written without its password_file?)"
                                      : "malformed");
    else if (st.ver < f->ver)
        refuse(F, f, &st, "older than those applied here (replayed, or a Redis that lost writes)");
    else {
        apply_flags(F, lr, &st);
        fl_keep_version(F, f, st.ver);
        promote_gates(F, f, lr, &st, gvalid);
    }
    return 0;
}

void fl_flags(ug_fleet *F, const ug_live *l)
{
    write_flags(F, l);
    for (size_t i = 0; i < F->nro && fl_up(F); i++) {
        flagged_rollout *f = &F->ro[i];
        const ug_live_rollout *lr = ug_live_find(l, f->name);
        if (lr)
            poll_flags(F, f, lr);
    }
}
