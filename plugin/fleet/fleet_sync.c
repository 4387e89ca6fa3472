/* Fleet mode's passes: follow the policy, make each release ready (snapshot, backlog, settle), tell grants and outcomes, learn the fleet's from its stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_impl.h"

/*
 * Exactness (docs/fleet.md): for each stage, Redis keeps n + leased <=
 * quota, and this tracker's share of leased, l:T, never falls below what it
 * owes: slots unused here plus grants made here and not yet told. Every
 * step below keeps that:
 *  - a lease adds slots here only after Redis counted them (and, with
 *    Sentinel, a replica holds them);
 *  - telling a grant moves one slot from l:T to n (or frees it when the
 *    fleet counts that uid already), and is marked here only afterwards;
 *    telling twice changes nothing;
 *  - a settle sets l:T to exactly unused + untold, counted with every
 *    stripe of the scope locked, so no grant is in flight; any doubt (a
 *    lost reply, a new connection, a Redis that lost writes) ends in one.
 */

/* ---- the policy, as the fleet thread follows it --------------------------- */

static fscope *scope_find(ug_fleet *F, const char *rollout, const char *to)
{
    for (size_t i = 0; i < F->nsc; i++)
        if (strcmp(F->sc[i].rollout, rollout) == 0 && strcmp(F->sc[i].to, to) == 0)
            return &F->sc[i];
    return NULL;
}

fstage *fl_stage_find(fscope *s, const char *name)
{
    for (size_t j = 0; j < s->nst; j++)
        if (strcmp(s->st[j].name, name) == 0)
            return &s->st[j];
    return NULL;
}

static fscope *scope_add(ug_fleet *F, const char *rollout, const char *to)
{
    fscope *v = realloc(F->sc, (F->nsc + 1) * sizeof *v);
    if (!v)
        return NULL;
    F->sc = v;
    fscope *s = &F->sc[F->nsc];
    memset(s, 0, sizeof *s);
    snprintf(s->rollout, sizeof s->rollout, "%s", rollout);
    snprintf(s->to, sizeof s->to, "%s", to);
    if (ug_fleet_key_scope(s->gkey, rollout, to, "g") != 0 || ug_fleet_key_scope(s->evkey, rollout, to, "ev") != 0 ||
        ug_fleet_key_scope(s->dupkey, rollout, to, "dup") != 0)
        return NULL; /* names are bounded far below the key size: cannot happen */
    snprintf(s->last_id, sizeof s->last_id, "0-0");
    F->nsc++;
    return s;
}

static fstage *stage_add(fscope *s, const char *name)
{
    fstage *v = realloc(s->st, (s->nst + 1) * sizeof *v);
    if (!v)
        return NULL;
    s->st = v;
    fstage *t = &s->st[s->nst];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (ug_fleet_key_stage(t->qkey, s->rollout, s->to, name) != 0 || ug_fleet_key_rollout(t->rkey, s->rollout, "rate") != 0)
        return NULL;
    size_t k = strlen(t->rkey);
    snprintf(t->rkey + k, sizeof t->rkey - k, ":%s", name);
    t->last_active_ms = ug_mono_ms(); /* a new stage leases its first block at once */
    s->nst++;
    return t;
}

static void bind_rollout(ug_fleet *F, const ug_live_rollout *lr)
{
    fscope *s = scope_find(F, lr->r->name, lr->r->to);
    if (!s && !(s = scope_add(F, lr->r->name, lr->r->to)))
        return;
    s->present = true;
    s->id = ug_scope_id(lr->sc);
    for (size_t j = 0; j < lr->r->nstages; j++) {
        const ug_live_stage *ls = &lr->stages[j];
        fstage *t = fl_stage_find(s, ls->s->name);
        bool fresh = !t;
        if (!t && !(t = stage_add(s, ls->s->name)))
            continue;
        t->present = true;
        t->id = ug_stage_quota_id(ls->q);
        if (!fresh && (t->has_quota != ls->s->has_quota || t->quota != ls->s->quota))
            t->requota = true, t->known_avail = false; /* a reload changed it: lease again within the new one */
        t->has_quota = ls->s->has_quota;
        t->quota = ls->s->quota;
        t->has_fleet_rate = ls->s->has_fleet_rate;
        t->fleet_rate = ls->s->fleet_rate;
        if (fresh)
            s->ready = false; /* a new stage is settled before it leases */
    }
    bool found = false;
    for (size_t i = 0; i < F->nro && !found; i++)
        found = strcmp(F->ro[i].name, lr->r->name) == 0 && (F->ro[i].present = true);
    flagged_rollout *v = found ? NULL : realloc(F->ro, (F->nro + 1) * sizeof *v);
    if (v) {
        F->ro = v;
        memset(&F->ro[F->nro], 0, sizeof *v);
        snprintf(F->ro[F->nro].name, sizeof F->ro[F->nro].name, "%s", lr->r->name);
        ug_fleet_key_rollout(F->ro[F->nro].fkey, lr->r->name, "flags");
        F->ro[F->nro].ver = fl_kept_version(F, lr->r->name);
        F->ro[F->nro++].present = true;
    }
}

/* What the policy names now; a scope or stage it dropped is forgotten here
 * (a scope coming back is read again from Redis). Under qmu: status reads. */
void fl_sync_policy(ug_fleet *F, const ug_live *l)
{
    pthread_mutex_lock(&F->qmu);
    for (size_t i = 0; i < F->nsc; i++) {
        F->sc[i].present = false;
        for (size_t j = 0; j < F->sc[i].nst; j++)
            F->sc[i].st[j].present = false;
    }
    for (size_t i = 0; i < F->nro; i++)
        F->ro[i].present = false;
    for (size_t i = 0; i < l->pol->nrollouts; i++)
        if (l->ro[i].sc)
            bind_rollout(F, &l->ro[i]);
    size_t k = 0;
    for (size_t i = 0; i < F->nsc; i++) {
        fscope *s = &F->sc[i];
        if (!s->present) {
            free(s->st);
            continue;
        }
        size_t m = 0;
        for (size_t j = 0; j < s->nst; j++)
            if (s->st[j].present)
                s->st[m++] = s->st[j];
        s->nst = m;
        F->sc[k++] = *s;
    }
    F->nsc = k;
    k = 0;
    for (size_t i = 0; i < F->nro; i++)
        if (F->ro[i].present)
            F->ro[k++] = F->ro[i];
    F->nro = k;
    pthread_mutex_unlock(&F->qmu);
}

const ug_live_rollout *fl_rollout_of(const ug_live *l, const fscope *s)
{
    for (size_t i = 0; i < l->pol->nrollouts; i++) {
        const ug_live_rollout *lr = &l->ro[i];
        if (lr->sc && ug_scope_id(lr->sc) == s->id && strcmp(lr->r->name, s->rollout) == 0)
            return lr;
    }
    return NULL;
}

ug_stage_quota *fl_stage_q(const ug_live_rollout *lr, const fstage *t)
{
    const ug_live_stage *ls = lr ? ug_live_stage_named(lr, t->name) : NULL;
    return ls ? ls->q : NULL;
}

static fscope *scope_by_id(ug_fleet *F, uint32_t id)
{
    for (size_t i = 0; i < F->nsc; i++)
        if (F->sc[i].id == id && F->sc[i].present)
            return &F->sc[i];
    return NULL;
}

bool fl_fenced(ug_fleet *F)
{
    return ug_mono_ms() >= atomic_load(&F->fence);
}

/* ---- what a stage tells its peers, what the flags applied -------------------- */

void fl_counts(ug_fleet *F, fstage *t, long long n, long long leased)
{
    uint64_t un = n > 0 ? (uint64_t)n : 0, ul = leased > 0 ? (uint64_t)leased : 0;
    t->room = t->quota > un ? t->quota - un : 0;
    t->avail = t->quota > un + ul ? t->quota - un - ul : 0;
    t->known_avail = true;
    pthread_mutex_lock(&F->qmu);
    t->r_n = un, t->r_leased = ul;
    pthread_mutex_unlock(&F->qmu);
}

void fl_outlook(ug_fleet *F, const fstage *t, ug_stage_quota *q)
{
    ug_shortfall o = UG_SHORT_SOON; /* Redis away, a fault, our name taken: the fleet's room is unknown */
    if (!F->lease_fault && fl_up(F) && !fl_fenced(F) && !F->name_taken && t->known_avail)
        o = t->avail > 0 || t->parked > 0 ? UG_SHORT_HOLD : t->room > 0 ? UG_SHORT_SOON : UG_SHORT_SPENT;
    ug_stage_quota_set_outlook(q, o);
}

void fl_outlooks(ug_fleet *F, const ug_live *l)
{
    for (size_t i = 0; i < F->nsc; i++) {
        const ug_live_rollout *lr = fl_rollout_of(l, &F->sc[i]);
        for (size_t j = 0; lr && j < F->sc[i].nst; j++) {
            ug_stage_quota *q = F->sc[i].st[j].has_quota ? fl_stage_q(lr, &F->sc[i].st[j]) : NULL;
            if (q && ug_stage_quota_is_sourced(q))
                fl_outlook(F, &F->sc[i].st[j], q);
        }
    }
}

/* The version applied, kept so that a restart refuses older ones too. */
void fl_keep_version(ug_fleet *F, flagged_rollout *f, uint64_t ver)
{
    char key[UG_NAME_MAX + 16], v[24];
    f->ver = ver;
    snprintf(key, sizeof key, "fleet:flags:%s", f->name);
    int n = snprintf(v, sizeof v, "%llu", (unsigned long long)ver);
    if (ug_store_put(F->I->store, key, v, (size_t)n) != 0)
        fl_log(F, UG_LOG_WARN, "rollout %s: cannot store the flags' version %s in %s", f->name, v, F->I->state_dir);
}

uint64_t fl_kept_version(ug_fleet *F, const char *rollout)
{
    char key[UG_NAME_MAX + 16], v[24];
    snprintf(key, sizeof key, "fleet:flags:%s", rollout);
    long n = ug_store_get(F->I->store, key, v, sizeof v - 1);
    if (n <= 0)
        return 0;
    v[n] = '\0';
    return strtoull(v, NULL, 10);
}

/* ---- small Redis helpers --------------------------------------------------- */

redisReply *fl_script(ug_fleet *F, int which, int nkeys)
{
    redisReply *rep = fr_script(&F->r, which, nkeys, &F->a);
    char err[300];
    if (rep && fr_is_error(rep, err, sizeof err)) {
        fl_log(F, UG_LOG_ERROR, "Redis refused a script: %s", err);
        freeReplyObject(rep);
        snprintf(F->r.err, sizeof F->r.err, "script refused: %.250s", err);
        fr_close(&F->r); /* reconnect and look everything over again */
        return NULL;
    }
    return rep;
}

redisReply *fl_command(ug_fleet *F)
{
    redisReply *rep = fr_command(&F->r, &F->a);
    char err[300];
    if (rep && fr_is_error(rep, err, sizeof err)) {
        fl_log(F, UG_LOG_ERROR, "Redis refused a command: %s", err);
        freeReplyObject(rep);
        snprintf(F->r.err, sizeof F->r.err, "command refused: %.250s", err);
        fr_close(&F->r);
        return NULL;
    }
    return rep;
}

void fl_args_registry(ug_fleet *F)
{
    char key[UG_FLEET_KEY_MAX];
    ug_fleet_key_fleet(key, "trackers", NULL);
    fr_args_reset(&F->a);
    fr_arg(&F->a, "HGETALL");
    fr_arg(&F->a, key);
}

/* SETTLE: this tracker's lease of t becomes exactly keep, parked of it
 * parked; Redis's counts come back with it. */
int fl_settle(ug_fleet *F, fstage *t, uint64_t keep, uint64_t parked)
{
    fr_args_reset(&F->a);
    fr_arg(&F->a, t->qkey);
    fr_arg(&F->a, F->conf.tracker);
    fr_argu(&F->a, keep);
    fr_argu(&F->a, parked);
    redisReply *rep = fl_script(F, FR_SETTLE, 1);
    if (!rep)
        return -1;
    long long n, leased;
    if (t->has_quota && fr_int_at(rep, 2, &n) && fr_int_at(rep, 3, &leased))
        fl_counts(F, t, n, leased);
    freeReplyObject(rep);
    return fr_replicated(&F->r);
}

/* ---- telling grants ---------------------------------------------------------- */

typedef struct {
    uint64_t uid;
    uint32_t at;
    uint16_t stage;
    uint8_t o;
} fitem;

typedef struct {
    fitem *v;
    size_t n, cap;
    bool oom;
    bool published; /* collect told grants (outcome resync) instead of untold ones */
} fitems;

static void items_add(fitems *it, const fitem *x)
{
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 256;
        fitem *v = realloc(it->v, cap * sizeof *v);
        if (!v) {
            it->oom = true;
            return;
        }
        it->v = v, it->cap = cap;
    }
    it->v[it->n++] = *x;
}

static void collect(void *ctx, uint64_t uid, const ug_grant_info *gi)
{
    fitems *it = ctx;
    if (gi->learned || !gi->durable || gi->published != it->published)
        return;
    if (it->published && gi->outcome == UG_OUT_PENDING)
        return;
    items_add(it, &(fitem){.uid = uid, .at = gi->at, .stage = gi->stage, .o = (uint8_t)gi->outcome});
}

static int by_stage(const void *a, const void *b)
{
    const fitem *x = a, *y = b;
    if (x->stage != y->stage)
        return x->stage < y->stage ? -1 : 1;
    return (x->uid > y->uid) - (x->uid < y->uid);
}

/* Puts uids back on the queue (told again next pass). */
static void requeue(ug_fleet *F, uint32_t scope, const fitem *v, size_t n)
{
    pthread_mutex_lock(&F->qmu);
    if (F->npub + n > F->cappub) {
        size_t cap = F->npub + n + 256;
        queued_grant *p = cap <= QUEUE_MAX ? realloc(F->pub, cap * sizeof *p) : NULL;
        if (!p) {
            F->pub_lost = true;
            pthread_mutex_unlock(&F->qmu);
            return;
        }
        F->pub = p, F->cappub = cap;
    }
    for (size_t i = 0; i < n; i++)
        F->pub[F->npub++] = (queued_grant){.scope = scope, .uid = v[i].uid};
    pthread_mutex_unlock(&F->qmu);
}

/* One PUBLISH of up to BATCH grants of one stage, then the marks. */
static int publish_batch(ug_fleet *F, fscope *s, ug_scope *sc, const fitem *v, size_t n)
{
    ug_store *st = F->I->store;
    const char *stage = ug_store_stage_name(st, v[0].stage);
    char qkey[UG_FLEET_KEY_MAX];
    if (ug_fleet_key_stage(qkey, s->rollout, s->to, stage) != 0)
        return 0;
    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, s->gkey);
    fr_arg(a, s->dupkey);
    fr_arg(a, s->evkey);
    fr_arg(a, qkey);
    fr_arg(a, F->conf.tracker);
    fr_arg(a, stage);
    fr_argu(a, STREAM_MAX);
    for (size_t i = 0; i < n; i++) {
        fr_argu(a, v[i].uid);
        fr_argu(a, v[i].at);
        fr_argu(a, v[i].o);
    }
    redisReply *rep = fl_script(F, FR_PUBLISH, 4);
    long long fresh = 0, used = 0, over = 0;
    bool ok = rep && fr_int_at(rep, 0, &fresh) && fr_int_at(rep, 1, &used) && fr_int_at(rep, 2, &over);
    if (rep)
        freeReplyObject(rep);
    if (!ok)
        return -1;
    if (fr_replicated(&F->r) != 0) {
        requeue(F, s->id, v, n); /* told again once a replica holds it: telling twice is harmless */
        return fl_up(F) ? 0 : -1;
    }
    const fstage *t = fl_stage_find(s, stage);
    if (over > 0 && t && t->has_quota)
        fl_log(F, UG_LOG_WARN,
               "rollout %s stage %s: told %lld grants beyond this tracker's lease (an operator forgot it, or Redis "
               "lost its lease): the fleet counts them, and may exceed the quota by as many",
               s->rollout, stage, over);
    uint64_t uids[BATCH];
    for (size_t i = 0; i < n; i++)
        uids[i] = v[i].uid;
    size_t marked;
    const char *why;
    if (ug_store_mark_published(st, sc, uids, n, &marked, &why) != 0 && why) /* memory holds the marks */
        ug_logf(F->I, UG_LOG_WARN,
                "state folder %s: cannot mark %zu grants as told to the fleet (%s); a restart tells them again",
                ug_store_dir(st), marked, why);
    return 0;
}

static int publish_items(ug_fleet *F, fscope *s, ug_scope *sc, fitem *v, size_t n)
{
    if (n)
        qsort(v, n, sizeof *v, by_stage);
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        while (i + k < n && k < BATCH && v[i + k].stage == v[i].stage)
            k++;
        if (publish_batch(F, s, sc, v + i, k) != 0)
            return -1;
        i += k;
    }
    return 0;
}

/* ---- outcomes ---------------------------------------------------------------- */

static int outcome_batch(ug_fleet *F, const fscope *s, const fitem *v, size_t n)
{
    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, s->gkey);
    fr_arg(a, s->evkey);
    fr_arg(a, F->conf.tracker);
    fr_argu(a, STREAM_MAX);
    for (size_t i = 0; i < n; i++) {
        fr_argu(a, v[i].uid);
        fr_argu(a, v[i].o);
    }
    redisReply *rep = fl_script(F, FR_OUTCOME, 2);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

static int outcome_items(ug_fleet *F, const fscope *s, const fitem *v, size_t n)
{
    for (size_t i = 0; i < n; i += BATCH)
        if (outcome_batch(F, s, v + i, n - i < BATCH ? n - i : BATCH) != 0)
            return -1;
    return 0;
}

/* ---- learning the fleet's grants ------------------------------------------------ */

/* Nothing read from Redis is numbered in the store: a stage this policy
 * does not name gets id 0, which no stage has (the grant then belongs to
 * the release, as one of a stage gone from the policy does). */
static void learn_grant(ug_fleet *F, const ug_live_rollout *lr, uint64_t uid, const ug_fleet_grant *g, bool live)
{
    const ug_live_stage *ls = ug_live_stage_named(lr, g->stage);
    uint16_t sid = ls && ls->q ? ug_stage_quota_id(ls->q) : 0;
    int rc = ug_scope_add_learned(lr->sc, uid, sid, g->at, g->outcome);
    if (rc < 0)
        fl_log(F, UG_LOG_ERROR, "rollout %s: out of memory for the fleet's grant of uid %llu", lr->r->name,
               (unsigned long long)uid);
    else if (rc > 0 && live && g->outcome != UG_OUT_PENDING)
        ug_outcome_learned(F->I, lr, g->outcome, ug_inst_now(F->I));
}

static void learn_event(ug_fleet *F, const ug_live_rollout *lr, const ug_fleet_event *e)
{
    if (strcmp(e->g.tracker, F->conf.tracker) == 0)
        return; /* ours, held already */
    if (e->kind == UG_FEV_GRANT)
        learn_grant(F, lr, e->uid, &e->g, true);
    else if (ug_scope_learn_outcome(lr->sc, e->uid, e->g.outcome) == 1)
        ug_outcome_learned(F->I, lr, e->g.outcome, ug_inst_now(F->I));
}

/* Every grant the fleet holds for the release, from its hash (the source
 * of truth); the stream is followed from where it stood before. */
static int snapshot(ug_fleet *F, fscope *s, const ug_live_rollout *lr)
{

    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, "XREVRANGE");
    fr_arg(a, s->evkey);
    fr_arg(a, "+");
    fr_arg(a, "-");
    fr_arg(a, "COUNT");
    fr_arg(a, "1");
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    char last[48] = "0-0";
    (void)fr_entry_id(rep, last, sizeof last); /* none: an empty stream, read from its start */
    freeReplyObject(rep);
    char cursor[32] = "0";
    size_t bad = 0;
    for (unsigned round = 0; round < 1000000; round++) { /* bounded: the hash holds fewer than 10^9 grants */
        fr_args_reset(a);
        fr_arg(a, "HSCAN");
        fr_arg(a, s->gkey);
        fr_arg(a, cursor);
        fr_arg(a, "COUNT");
        fr_arg(a, "1000");
        if (!(rep = fl_command(F)))
            return -1;
        const redisReply *kv = fr_scan_reply(rep, cursor, sizeof cursor), *k, *v;
        bool ok = kv != NULL;
        if (ok) {
            for (size_t i = 0; i < fr_npairs(kv); i++) {
                uint64_t uid;
                ug_fleet_grant g;
                if (!fr_pair(kv, i, &k, &v) || ug_fleet_uid_parse(k->str, k->len, &uid) != 0 ||
                    ug_fleet_grant_parse(v->str, v->len, &g) != 0) {
                    bad++;
                    continue;
                }
                learn_grant(F, lr, uid, &g, false);
            }
        }
        freeReplyObject(rep);
        if (!ok || strcmp(cursor, "0") == 0)
            break;
    }
    if (bad)
        fl_log(F, UG_LOG_WARN, "rollout %s release %s: %zu entries of %s are not grants; skipped", s->rollout, s->to,
               bad, s->gkey);
    snprintf(s->last_id, sizeof s->last_id, "%s", last);
    return 0;
}

/* ---- making a release ready on this connection ---------------------------------- */

/* Redis must still hold every grant this tracker marked told: a Redis that
 * lost writes (no AOF, an unsynced replica promoted) is told them again. */
static int check_told(ug_fleet *F, fscope *s, const ug_live_rollout *lr)
{
    for (size_t j = 0; j < s->nst; j++) {
        fstage *t = &s->st[j];
        ug_stage_quota *q = fl_stage_q(lr, t);
        if (!q)
            continue;
        fr_args_reset(&F->a);
        fr_arg(&F->a, "HGET");
        fr_arg(&F->a, t->qkey);
        char f[UG_TRACKER_MAX + 3];
        snprintf(f, sizeof f, "p:%s", F->conf.tracker);
        fr_arg(&F->a, f);
        redisReply *rep = fl_command(F);
        if (!rep)
            return -1;
        long long told = 0;
        if (rep->type != REDIS_REPLY_NIL && !fr_int_at(rep, 0, &told))
            told = 0;
        freeReplyObject(rep);
        ug_slot_tally ta;
        ug_stage_quota_tally(q, false, &ta);
        if ((uint64_t)told < ta.published) {
            fl_log(F, UG_LOG_WARN,
                   "rollout %s stage %s: Redis holds %lld of the %llu grants this tracker told it (it lost "
                   "writes): telling them all again",
                   s->rollout, t->name, told, (unsigned long long)ta.published);
            ug_scope_unpublish_stage(lr->sc, t->id);
        }
    }
    return 0;
}

static int prepare_scope(ug_fleet *F, fscope *s, const ug_live_rollout *lr)
{
    ug_scope *sc = lr->sc;
    if (check_told(F, s, lr) != 0 || snapshot(F, s, lr) != 0)
        return -1;
    fitems it = {0};
    ug_scope_foreach(sc, collect, &it);
    int rc = it.oom ? -1 : publish_items(F, s, sc, it.v, it.n);
    it.n = 0;
    it.published = true; /* outcomes told before a crash may not have reached the fleet */
    if (rc == 0)
        ug_scope_foreach(sc, collect, &it);
    if (rc == 0 && !it.oom)
        rc = outcome_items(F, s, it.v, it.n);
    free(it.v);
    if (rc != 0 || it.oom)
        return -1;
    for (size_t j = 0; j < s->nst; j++) {
        fstage *t = &s->st[j];
        ug_stage_quota *q = fl_stage_q(lr, t);
        if (!q)
            continue;
        ug_slot_tally ta = {0};
        bool leased = ug_stage_quota_is_sourced(q);
        if (leased)
            ug_stage_quota_tally(q, false, &ta);
        t->parked = 0; /* parked slots go back: this connection starts from what the shards hold */
        if (fl_settle(F, t, leased ? ta.unused + ta.unpublished : 0, 0) != 0)
            return -1;
        if (leased)
            fl_outlook(F, t, q);
        t->next_lease_ms = 0;
    }
    s->ready = true;
    return 0;
}

void fl_prepare(ug_fleet *F, const ug_live *l)
{
    for (size_t i = 0; i < F->nsc && fl_up(F); i++) {
        fscope *s = &F->sc[i];
        const ug_live_rollout *lr = s->ready ? NULL : fl_rollout_of(l, s);
        if (lr && prepare_scope(F, s, lr) != 0 && fl_up(F)) {
            fl_log(F, UG_LOG_ERROR, "rollout %s release %s: cannot join the fleet yet: %s", s->rollout, s->to,
                   F->r.err[0] ? F->r.err : "out of memory");
            break;
        }
    }
}

/* ---- the queues -------------------------------------------------------------------- */

static int by_scope_uid(const void *a, const void *b)
{
    const queued_grant *x = a, *y = b;
    if (x->scope != y->scope)
        return x->scope < y->scope ? -1 : 1;
    return (x->uid > y->uid) - (x->uid < y->uid);
}

static void all_unready(ug_fleet *F)
{
    for (size_t i = 0; i < F->nsc; i++)
        F->sc[i].ready = false;
}

void fl_drain_pub(ug_fleet *F, const ug_live *l)
{
    pthread_mutex_lock(&F->qmu);
    queued_grant *v = F->pub;
    size_t n = F->npub;
    bool lost = F->pub_lost;
    F->pub = NULL, F->npub = F->cappub = 0, F->pub_lost = false;
    pthread_mutex_unlock(&F->qmu);
    if (lost) /* the queue overflowed: the next pass looks every grant over */
        all_unready(F);
    if (n)
        qsort(v, n, sizeof *v, by_scope_uid);
    fitems it = {0};
    for (size_t i = 0; i < n && fl_up(F);) {
        size_t k = i;
        while (k < n && v[k].scope == v[i].scope)
            k++;
        fscope *s = scope_by_id(F, v[i].scope);
        const ug_live_rollout *lr = s && s->ready ? fl_rollout_of(l, s) : NULL;
        it.n = 0;
        for (size_t j = i; lr && j < k; j++) {
            ug_grant_info gi;
            if ((j > i && v[j].uid == v[j - 1].uid) || !ug_scope_lookup(lr->sc, v[j].uid, &gi) || gi.learned ||
                !gi.durable || gi.published)
                continue;
            items_add(&it, &(fitem){.uid = v[j].uid, .at = gi.at, .stage = gi.stage, .o = (uint8_t)gi.outcome});
        }
        if (it.oom) {
            s->ready = false;
            it.oom = false;
        } else if (lr && it.n) {
            publish_items(F, s, lr->sc, it.v, it.n);
        }
        i = k;
    }
    free(it.v);
    free(v);
}

static void requeue_out(ug_fleet *F, const queued_outcome *v, size_t n)
{
    pthread_mutex_lock(&F->qmu);
    for (size_t i = 0; i < n && !F->out_lost; i++) {
        if (F->nout == F->capout) {
            size_t cap = F->capout ? F->capout * 2 : 256;
            queued_outcome *p = cap <= QUEUE_MAX ? realloc(F->out, cap * sizeof *p) : NULL;
            if (!p) {
                F->out_lost = true;
                break;
            }
            F->out = p, F->capout = cap;
        }
        F->out[F->nout++] = v[i];
    }
    pthread_mutex_unlock(&F->qmu);
}

void fl_drain_out(ug_fleet *F, const ug_live *l)
{
    pthread_mutex_lock(&F->qmu);
    queued_outcome *v = F->out;
    size_t n = F->nout;
    bool lost = F->out_lost;
    F->out = NULL, F->nout = F->capout = 0, F->out_lost = false;
    pthread_mutex_unlock(&F->qmu);
    if (lost)
        all_unready(F);
    fitem batch[BATCH];
    size_t i = 0;
    while (i < n && fl_up(F)) {
        fscope *s = scope_by_id(F, v[i].scope);
        size_t k = 0, j = i;
        for (; j < n && k < BATCH && v[j].scope == v[i].scope; j++)
            batch[k++] = (fitem){.uid = v[j].uid, .o = v[j].o};
        if (s && !s->ready) { /* told once the release is ready */
            requeue_out(F, v + i, j - i);
        } else if (s && fl_rollout_of(l, s) && outcome_items(F, s, batch, k) != 0) {
            requeue_out(F, v + i, n - i);
            break;
        }
        i = j;
    }
    free(v);
}

/* ---- following the fleet's stream ------------------------------------------------- */

/* One entry [id, [field, value, ...]]; the id it read, or NULL. */
static const char *apply_entry(ug_fleet *F, const ug_live_rollout *lr, const redisReply *e, size_t *bad)
{
    const redisReply *fv;
    const char *id = fr_stream_entry(e, &fv), *f[12];
    if (!id) {
        (*bad)++;
        return NULL;
    }
    size_t len[12];
    long nf = fr_strings(fv, f, len, 12);
    ug_fleet_event ev;
    if (nf >= 0 && ug_fleet_event_parse(f, len, (size_t)nf, &ev) == 0)
        learn_event(F, lr, &ev);
    else
        (*bad)++;
    return id;
}

static int follow_scope(ug_fleet *F, fscope *s, const ug_live_rollout *lr)
{
    size_t bad = 0;
    for (unsigned round = 0; round < 8; round++) {
        fr_args *a = &F->a;
        fr_args_reset(a);
        fr_arg(a, "XREAD");
        fr_arg(a, "COUNT");
        fr_argu(a, STREAM_READ);
        fr_arg(a, "STREAMS");
        fr_arg(a, s->evkey);
        fr_arg(a, s->last_id);
        redisReply *rep = fl_command(F);
        if (!rep)
            return -1;
        size_t got = 0;
        const redisReply *ents = fr_xread_entries(rep);
        if (ents) {
            for (size_t i = 0; i < ents->elements; i++) {
                const char *id = apply_entry(F, lr, ents->element[i], &bad);
                if (id && strlen(id) < sizeof s->last_id)
                    snprintf(s->last_id, sizeof s->last_id, "%s", id);
            }
            got = ents->elements;
        }
        freeReplyObject(rep);
        if (got < STREAM_READ)
            break;
    }
    if (bad)
        fl_log(F, UG_LOG_WARN, "rollout %s release %s: %zu entries of %s are not events; skipped", s->rollout, s->to,
               bad, s->evkey);
    return 0;
}

void fl_follow(ug_fleet *F, const ug_live *l)
{
    for (size_t i = 0; i < F->nsc && fl_up(F); i++) {
        fscope *s = &F->sc[i];
        const ug_live_rollout *lr = s->ready ? fl_rollout_of(l, s) : NULL;
        if (lr)
            follow_scope(F, s, lr);
    }
}

/* "MS-SEQ" ids, numerically. */
static bool id_before(const char *a, const char *b)
{
    unsigned long long am = 0, as = 0, bm = 0, bs = 0;
    if (sscanf(a, "%llu-%llu", &am, &as) != 2 || sscanf(b, "%llu-%llu", &bm, &bs) != 2)
        return false;
    return am < bm || (am == bm && as < bs);
}

/* A tracker that fell behind the stream's trimming reads the hash again. */
int fl_check_gap(ug_fleet *F, fscope *s)
{
    fr_args *a = &F->a;
    fr_args_reset(a);
    fr_arg(a, "XRANGE");
    fr_arg(a, s->evkey);
    fr_arg(a, "-");
    fr_arg(a, "+");
    fr_arg(a, "COUNT");
    fr_arg(a, "1");
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    char first[48];
    if (fr_entry_id(rep, first, sizeof first) && id_before(s->last_id, first)) {
        fl_log(F, UG_LOG_WARN, "rollout %s release %s: fell behind the fleet's stream; reading every grant again",
               s->rollout, s->to);
        s->ready = false;
    }
    freeReplyObject(rep);
    return 0;
}
