/* Fleet mode's flags: pause, halt, resume and ramp holds written to Redis and read back by every tracker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_impl.h"

/* ---- flags: pause, halt, resume and ramp holds, fleet-wide --------------------------------- */

/* The version the FLAGS script left, or -1. */
static long long flags_script(ug_fleet *F, const char *fkey, const fflag *f)
{
    static const char *const ops[] = {[FOP_PAUSE] = "pause", [FOP_RESUME] = "resume", [FOP_HALT] = "halt",
                                      [FOP_HOLD] = "hold"};
    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, fkey);
    fr_arg(a, ops[f->op]);
    if (f->op == FOP_HALT) {
        fr_arg(a, f->why);
        fr_argu(a, f->at);
    } else if (f->op == FOP_HOLD) {
        fr_argu(a, f->was);
        fr_argu(a, f->held);
        fr_argu(a, f->shift);
    }
    redisReply *rep = fl_script(F, FR_FLAGS, 1);
    long long ver = -1;
    if (rep && !fr_int_at(rep, 0, &ver))
        ver = -1;
    if (rep)
        freeReplyObject(rep);
    return rep ? ver : -1;
}

static void write_flags(ug_fleet *F)
{
    fflag f;
    for (;;) {
        pthread_mutex_lock(&F->qmu);
        bool have = F->nflags > 0;
        if (have)
            f = F->flags[0];
        pthread_mutex_unlock(&F->qmu);
        if (!have)
            return;
        char fkey[UG_FLEET_KEY_MAX];
        ug_fleet_key_rollout(fkey, f.rollout, "flags");
        if (flags_script(F, fkey, &f) < 0 && !fl_up(F))
            return; /* stays queued until Redis returns */
        if (fr_replicated(&F->r) != 0 && !fl_up(F))
            return;
        pthread_mutex_lock(&F->qmu);
        if (F->nflags && F->flags[0].seq == f.seq) {
            memmove(F->flags, F->flags + 1, (F->nflags - 1) * sizeof *F->flags);
            F->nflags--;
        }
        F->flag_done = f.seq > F->flag_done ? f.seq : F->flag_done;
        pthread_cond_broadcast(&F->done);
        pthread_mutex_unlock(&F->qmu);
    }
}

typedef struct {
    bool paused, halted;
    char why[256];
    uint64_t at, held, shift, ver;
} fstate;

static void field(const redisReply *k, const redisReply *v, fstate *st)
{
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
        return;
    char *end;
    unsigned long long n = strtoull(v->str, &end, 10);
    bool num = *end == '\0' && v->len > 0;
    if (strcmp(k->str, "paused") == 0)
        st->paused = num && n == 1;
    else if (strcmp(k->str, "halted") == 0)
        st->halted = num && n == 1;
    else if (strcmp(k->str, "why") == 0)
        snprintf(st->why, sizeof st->why, "%.200s", v->str);
    else if (strcmp(k->str, "at") == 0 && num)
        st->at = n;
    else if (strcmp(k->str, "held") == 0 && num)
        st->held = n;
    else if (strcmp(k->str, "shift") == 0 && num)
        st->shift = n;
    else if (strcmp(k->str, "ver") == 0 && num)
        st->ver = n;
}

/* The fleet's word on a rollout, applied here: what differs changes, is
 * stored, and stops remembered answers (the epoch). */
static void apply_flags(ug_fleet *F, const ug_live_rollout *lr, const fstate *st)
{
    ug_inst *I = F->I;
    ug_rollout_state *rt = lr->rt;
    bool changed = false;
    uint64_t now = ug_inst_now(I);
    char line[400];
    if (st->paused != atomic_load(&rt->ctl_paused)) {
        ug_flags_pause(I, rt, st->paused);
        snprintf(line, sizeof line, "%s rollout %s (the fleet's word)", st->paused ? "pause" : "resume", rt->name);
        ug_history(I, now, line);
        changed = true;
    }
    if (st->halted && !atomic_load(&rt->halted)) {
        ug_flags_halt(I, rt, st->why[0] ? st->why : "(the fleet's word)", st->at ? st->at : now, false);
        changed = true;
    } else if (!st->halted && atomic_load(&rt->halted)) {
        ug_flags_lift_halt(I, rt);
        snprintf(line, sizeof line, "resume rollout %s: lifts its halt (the fleet's word)", rt->name);
        ug_history(I, now, line);
        changed = true;
    }
    if (st->held != atomic_load(&rt->held_since) || st->shift != atomic_load(&rt->shift)) {
        ug_flags_set_hold(I, rt, st->held, st->shift);
        snprintf(line, sizeof line, "%s ramp of rollout %s, shifted %llu s (the fleet's word)",
                 st->held ? "hold" : "run", rt->name, (unsigned long long)st->shift);
        ug_history(I, now, line);
        changed = true;
    }
    if (changed) {
        atomic_fetch_add(&I->epoch, 1); /* remembered answers no longer hold */
        fl_log(F, UG_LOG_INFO, "rollout %s: now %s%s, as the fleet says", rt->name,
               st->halted ? "halted" : st->paused ? "paused" : "running", st->held ? ", ramp held" : "");
    }
}

/* A fleet without flags for the rollout yet starts from this tracker's. */
static void init_flags(ug_fleet *F, flagged_rollout *f, const ug_live_rollout *lr)
{
    ug_rollout_state *rt = lr->rt;
    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, f->fkey);
    fr_arg(a, "init");
    fr_arg(a, atomic_load(&rt->ctl_paused) ? "1" : "0");
    fr_arg(a, atomic_load(&rt->halted) ? "1" : "0");
    fr_arg(a, atomic_load(&rt->halted) ? rt->halted_why : "");
    fr_argu(a, rt->halted_at);
    fr_argu(a, atomic_load(&rt->held_since));
    fr_argu(a, atomic_load(&rt->shift));
    redisReply *rep = fl_script(F, FR_FLAGS, 1);
    if (rep)
        freeReplyObject(rep);
}

static int poll_flags(ug_fleet *F, flagged_rollout *f, const ug_live_rollout *lr)
{
    fr_args_reset(&F->a);
    fr_arg(&F->a, "HGETALL");
    fr_arg(&F->a, f->fkey);
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    fstate st = {0};
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
        field(rep->element[i], rep->element[i + 1], &st);
    freeReplyObject(rep);
    if (st.ver == 0) {
        init_flags(F, f, lr);
        f->synced = true;
        return 0; /* applied from the next poll, which reads what init wrote */
    }
    if (st.ver != f->ver || !f->synced)
        apply_flags(F, lr, &st);
    f->ver = st.ver;
    f->synced = true;
    return 0;
}

void fl_flags(ug_fleet *F, const ug_live *l)
{
    write_flags(F);
    for (size_t i = 0; i < F->nro && fl_up(F); i++) {
        flagged_rollout *f = &F->ro[i];
        const ug_live_rollout *lr = ug_live_find(l, f->name);
        if (lr)
            poll_flags(F, f, lr);
    }
}
