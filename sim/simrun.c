/* upgate-sim's engine: one policy, run by the real plugin through decide() on a simulated clock, over a population. */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "plugin_entry.h"
#include "sim.h"

/*
 * Time is a wheel of one-second buckets over the whole horizon; each peer
 * sits in at most one bucket (a stack of peers, or of their numbers: wheel_put), so a
 * simulated second costs nothing when no peer acts in it and one decide()
 * per HELLO or REPORT when some do. Per second with events the plugin gets
 * tick() (automatic halts, held ramps), per minute with events flush(0)
 * (grants go to LMDB as on a tracker; the state folder is a fresh
 * temporary one, on tmpfs when there is one).
 *
 * A peer's life: HELLO at its version -> WAIT: again after the retry the
 * plugin gave (jitter included), or at its next login when that is past
 * its session; HINT: the user answers after a think time; no -> REPORT
 * declined, done; yes -> the download runs at the peer's speed on the
 * hinted mirror; at its end, a failure (--fail) -> REPORT install_failed
 * and the peer asks again later; else a HELLO at the new version (the
 * plugin records "upgraded"), and with --rollback, an hour later a HELLO
 * at the old version (recorded "rolled back").
 */

volatile int sim_interrupted;

#define STATUS_MAX (64u << 20)

/* sim_peer.state: SIM_P_* in the low bits, and flags */
enum { F_TARGETED = 0x80, F_QUEUED = 0x40 }; /* seen targeted; in a bucket now */
#define STATE(q) ((q)->state & 0x3f)
#define SET_STATE(q, s) ((q)->state = (uint8_t)(((q)->state & (F_TARGETED | F_QUEUED)) | (s)))

typedef struct {
    const char *rollout, *stage; /* the plugin's pointers */
    unsigned idx;
} stage_cache;

typedef struct {
    const sim_plugin *pl;
    const sim_opts *o;
    sim_pop pop;        /* a copy: peers change as they run */
    const sim_pop *src; /* the names and tables (versions may grow in pop) */
    sim_result *r;
    void *inst;
    uint64_t now;
    int64_t start;
    uint32_t horizon;
    struct chunk **due; /* per second: NULL, or the top chunk of a stack of the peers acting then */
    uint32_t *ndue;     /* per second: how many */
    size_t esz;         /* a stack's entry: a sim_peer (synthetic), or its number in pop.peers (replay) */
    uint64_t next_at;   /* synthetic: where the peer deciding goes once its event is over (at); NONE: nowhere */
    bool oom;           /* a due stack could not grow */
    void (*prefetch)(void *, unsigned, uint64_t); /* the plugin's (ABI minor 3), or NULL */
    void (*batch)(void *, unsigned, const ug_batch *); /* likewise */
    uint32_t t;         /* the second being drained (drain_batch's) */
    ug_claims claims;   /* decide()'s, its constant fields set once (sim_run) */
    sim_addr addr;      /* claims.src */
    struct chunk *spare; /* chunks of drained stacks, for the next seconds to fill (no malloc per second) */
    int32_t *inflight;  /* per second: +1 at a download's first second, -1 after its last */
    uint32_t *upgrade_at; /* seconds of each upgrade, in order */
    size_t nupgrades, cap_upgrades;
    uint64_t retry;     /* the policy's WAIT retry (jittered) for peers that had no WAIT */
    stage_cache cache[128];
    unsigned ncache;
    unsigned nrollouts;
    uint32_t last_flush;
    sim_stepstat *cur;  /* the row of the second being simulated */
    unsigned cur_step;
    bool flushed_once;
} run;

/* ---- the plugin ----------------------------------------------------------------- */

int sim_plugin_load(sim_plugin *pl, const char *path, char *err, size_t errcap)
{
    char local[4096];
    if (!strchr(path, '/')) { /* a file here, not a name for the loader's search path */
        snprintf(local, sizeof local, "./%s", path);
        path = local;
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        return snprintf(err, errcap, "--plugin %s: %s", path, dlerror()), -1;
    const ug_plugin *p = dlsym(dl, UG_PLUGIN_SYMBOL);
    const char *why = NULL;
    if (!p)
        why = "no symbol " UG_PLUGIN_SYMBOL "; not an upgate plugin";
    else if (p->abi_major != UG_PLUGIN_ABI_MAJOR)
        why = "another plugin ABI major; rebuild one of them";
    else if (!UG_ENTRY(p, decide) || !UG_ENTRY(p, control) || !UG_ENTRY(p, check))
        why = "no decide(), control() or check(): a plugin of ABI 1.1 or later is needed";
    if (why) {
        dlclose(dl);
        return snprintf(err, errcap, "--plugin %s: %s", path, why), -1;
    }
    pl->dl = dl;
    pl->api = p;
    return 0;
}

static uint64_t host_now(void *ctx)
{
    return ((run *)ctx)->now;
}

/* The plugin's warnings and errors: the first few kept for the summary,
 * with the simulated moment they came at. */
static void host_log(void *ctx, ug_log_level lvl, const char *msg)
{
    run *R = ctx;
    if (lvl > UG_LOG_WARN || !R->r)
        return;
    sim_result *r = R->r;
    if (r->nlogs == sizeof r->logs / sizeof r->logs[0]) {
        r->logs_dropped++;
        return;
    }
    char at[32];
    sim_fmt_offset(R->now > (uint64_t)R->start ? R->now - (uint64_t)R->start : 0, true, at, sizeof at);
    snprintf(r->logs[r->nlogs++], sizeof r->logs[0], "%s %s: %s", at, lvl == UG_LOG_ERROR ? "error" : "warning", msg);
}

/* A fresh state folder: on tmpfs when there is one (nothing there needs to
 * survive, and fsync is free), else in TMPDIR or /tmp. */
static int state_dir(char *out, size_t cap, char *err, size_t errcap)
{
    const char *env = getenv("TMPDIR");
    const char *bases[] = {"/dev/shm", env && env[0] == '/' ? env : "/tmp", "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        struct stat st;
        if (stat(bases[i], &st) != 0 || !S_ISDIR(st.st_mode) || access(bases[i], W_OK | X_OK) != 0)
            continue;
        snprintf(out, cap, "%s/upgate-sim.XXXXXX", bases[i]);
        if (mkdtemp(out)) {
            sim_scratch_add(out);
            return 0;
        }
    }
    return snprintf(err, errcap, "cannot make a temporary state folder in /dev/shm, TMPDIR or /tmp: %s",
                    strerror(errno)), -1;
}

static void *create(run *R, const char *policy, char *dir, size_t dircap, char *err, size_t errcap)
{
    if (state_dir(dir, dircap, err, errcap) != 0)
        return NULL;
    ug_host h = {.size = sizeof h, .ctx = R, .log = host_log, .now = host_now, .nworkers = 1, .state_override = dir};
    char why[1024];
    void *inst = R->pl->api->create(&h, policy, why, sizeof why);
    if (!inst) {
        snprintf(err, errcap, "%s", why[0] ? why : "the plugin refused the policy");
        sim_scratch_remove(dir);
    }
    return inst;
}

static void drop(run *R, void *inst, const char *dir)
{
    char why[512];
    if (UG_ENTRY(R->pl->api, finish))
        (void)R->pl->api->finish(inst, why, sizeof why);
    R->pl->api->destroy(inst);
    sim_scratch_remove(dir);
}

int sim_policy_retry(const sim_plugin *pl, const char *policy, int64_t now, uint64_t *retry, char *err, size_t errcap)
{
    run R = {.pl = pl, .now = (uint64_t)now, .start = now};
    char dir[4096];
    void *inst = create(&R, policy, dir, sizeof dir, err, errcap);
    if (!inst)
        return -1;
    /* a version no target names: the answer is a WAIT, which carries the retry */
    struct sockaddr_in sa = {.sin_family = AF_INET};
    ug_claims c = {.size = sizeof c, .kind = UG_CLAIM_HELLO, .uid = 1, .ver = "4294967295.4294967295.4294967295",
                   .src = (struct sockaddr *)&sa, .srclen = sizeof sa};
    ug_decision d = {.size = sizeof d};
    int rc = pl->api->decide(inst, 0, &c, &d);
    drop(&R, inst, dir);
    if (rc != 0 || d.answer != UG_ANSWER_WAIT)
        return snprintf(err, errcap, "%s: the plugin gave no WAIT retry", policy), -1;
    *retry = d.retry ? d.retry : 1;
    return 0;
}

/* ---- the plugin's status: stages, quotas, outcomes ----------------------------------- */

static void buf_emit(void *ctx, const char *data, size_t len)
{
    ug_buf_emit(ctx, data, len);
}

static json_t *status(run *R)
{
    ug_buf b = {.max = STATUS_MAX};
    static const char req[] = "{\"cmd\":\"status\"}";
    int rc = R->pl->api->control(R->inst, req, sizeof req - 1, buf_emit, &b);
    json_t *j = rc == 0 && ug_buf_finish(&b) == 0 ? json_loads(b.data, 0, NULL) : NULL;
    ug_buf_free(&b);
    R->ncache = 0; /* the plugin's strings may move after control() */
    return j;
}

static void read_stages(run *R, json_t *st)
{
    sim_result *r = R->r;
    json_t *ros = json_object_get(st, "rollouts"), *ro;
    size_t i, j;
    R->nrollouts = (unsigned)json_array_size(ros);
    json_array_foreach(ros, i, ro)
    {
        const char *rname = json_string_value(json_object_get(ro, "name"));
        json_t *stages = json_object_get(ro, "stages"), *s;
        json_array_foreach(stages, j, s)
        {
            const char *sname = json_string_value(json_object_get(s, "name"));
            if (!rname || !sname || r->nstages == SIM_STAGES_MAX)
                continue;
            sim_stageinfo *si = &r->stages[r->nstages++];
            snprintf(si->rollout, sizeof si->rollout, "%s", rname);
            snprintf(si->stage, sizeof si->stage, "%s", sname);
            if (R->nrollouts > 1)
                snprintf(si->name, sizeof si->name, "%s/%s", rname, sname);
            else
                snprintf(si->name, sizeof si->name, "%s", sname);
            json_t *q = json_object_get(s, "quota");
            si->has_quota = json_is_integer(q);
            si->quota = si->has_quota ? (uint64_t)json_integer_value(q) : 0;
            si->spent_at = -1;
        }
    }
    /* the catch-all: offers of stages past SIM_STAGES_MAX */
    sim_stageinfo *other = &r->stages[r->nstages];
    *other = (sim_stageinfo){.spent_at = -1};
    snprintf(other->name, sizeof other->name, "other");
}

static void read_outcomes(run *R, json_t *st)
{
    uint64_t c[6] = {0};
    static const char *const keys[6] = {"upgraded", "declined", "failed", "rolled_back", "pending", "not_taken"};
    json_t *ro;
    size_t i;
    bool any = false;
    json_array_foreach(json_object_get(st, "rollouts"), i, ro)
    {
        json_t *o = json_object_get(ro, "outcomes");
        for (unsigned k = 0; k < 6 && o; k++) {
            json_t *v = json_object_get(o, keys[k]);
            any |= json_is_integer(v);
            c[k] += json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
        }
        json_t *h = json_object_get(ro, "halted_why");
        const char *name = json_string_value(json_object_get(ro, "name"));
        if (json_is_string(h) && !R->r->halted[0])
            snprintf(R->r->halted, sizeof R->r->halted, "rollout %.40s: %.256s", name ? name : "?",
                     json_string_value(h));
    }
    if (!any)
        return;
    char n[6][32];
    for (unsigned k = 0; k < 6; k++)
        sim_fmt_count(c[k], n[k], sizeof n[k]);
    snprintf(R->r->outcomes, sizeof R->r->outcomes,
             "upgraded %s, declined %s, failed %s (rolled back %s of them), pending %s, not taken %s", n[0], n[1],
             n[2], n[3], n[4], n[5]);
}

/* The series index of the stage the plugin named. */
static unsigned stage_of(run *R, const char *rollout, const char *stage)
{
    for (unsigned i = 0; i < R->ncache; i++)
        if (R->cache[i].stage == stage && R->cache[i].rollout == rollout)
            return R->cache[i].idx;
    unsigned idx = R->r->nstages; /* "other" */
    for (unsigned i = 0; i < R->r->nstages && stage && rollout; i++)
        if (strcmp(R->r->stages[i].stage, stage) == 0 && strcmp(R->r->stages[i].rollout, rollout) == 0) {
            idx = i;
            break;
        }
    if (R->ncache < sizeof R->cache / sizeof R->cache[0])
        R->cache[R->ncache++] = (stage_cache){rollout, stage, idx};
    return idx;
}

/* ---- the wheel ---------------------------------------------------------------------- */

/* A second's due peers: a stack (ndue[t] entries), taken from the top
 * (last in, first out, as the linked list it replaces). A synthetic peer
 * lives in its stack: the sim_peer itself is the entry, moved to the
 * stack of its next event when it is done with this one, so a second's
 * peers are read in a row, not from one random line (and page) of a peer
 * array each: on this VM the page walk of that line was a fifth of a
 * decision. A replay's peers stay in pop.peers (its records name them by
 * number) and the entry is that number. The counts sit in their own dense
 * array (a push reads no cold line). A stack is a chain of chunks of
 * CHUNK entries, due[t] its top: a push copies one entry, never the stack
 * (a stack of 56-byte peers grown by realloc copied each second's peers
 * five times), and a drained chunk is kept for the next push (R->spare). */
#define CHUNK 64u
#define NONE UINT64_MAX

typedef struct chunk {
    struct chunk *below;
    _Alignas(16) unsigned char e[]; /* CHUNK entries of esz bytes */
} chunk;

/* Copies one entry: a constant size per case, so no call to memcpy. */
static void entry_copy(run *R, void *to, const void *from)
{
    if (R->esz == sizeof(sim_peer))
        memcpy(to, from, sizeof(sim_peer));
    else
        memcpy(to, from, sizeof(uint32_t));
}

/* Entry k (0: the bottom) of second t's stack. */
static const void *wheel_at(const run *R, uint32_t t, uint32_t k)
{
    const chunk *c = R->due[t];
    for (uint32_t base = (R->ndue[t] - 1) / CHUNK * CHUNK; k < base; base -= CHUNK)
        c = c->below;
    return c->e + (size_t)(k % CHUNK) * R->esz;
}

/* Puts e on second t's stack. */
static void wheel_put(run *R, uint64_t t, const void *e)
{
    uint32_t n = R->ndue[t];
    if (n % CHUNK == 0) {
        chunk *c = R->spare;
        if (c)
            R->spare = c->below;
        else if (!(c = malloc(sizeof *c + CHUNK * R->esz))) {
            R->oom = true;
            return;
        }
        c->below = R->due[t];
        R->due[t] = c;
    }
    entry_copy(R, R->due[t]->e + (size_t)(n % CHUNK) * R->esz, e);
    R->ndue[t] = n + 1;
}

static void chunks_free(chunk *c)
{
    while (c) {
        chunk *below = c->below;
        free(c);
        c = below;
    }
}

/* Takes the top of second t's stack into out; an emptied chunk is kept. */
static void wheel_pop(run *R, uint32_t t, void *out)
{
    chunk *c = R->due[t];
    uint32_t k = --R->ndue[t];
    entry_copy(R, out, c->e + (size_t)(k % CHUNK) * R->esz);
    if (k % CHUNK == 0) {
        R->due[t] = c->below;
        c->below = R->spare;
        R->spare = c;
    }
}

/* Peer q acts next at second t: a replay's peer goes on t's stack now, a
 * synthetic one (the copy drain() is deciding) when its event is over. */
static void at(run *R, sim_peer *q, uint64_t t)
{
    if (t >= R->horizon || (q->state & F_QUEUED))
        return; /* past the end: this peer does nothing more that we see; or already due (one entry each) */
    if (R->pop.recs) {
        uint32_t i = (uint32_t)(q - R->pop.peers);
        wheel_put(R, t, &i);
        if (R->oom)
            return;
    } else {
        R->next_at = t;
    }
    q->state |= F_QUEUED;
}

/* The peer's next HELLO after a WAIT (or a failed install) at t; none in
 * a replay, whose recording says when each peer came back. */
static void again(run *R, sim_peer *q, uint32_t t, uint64_t retry)
{
    if (R->pop.recs)
        return;
    uint64_t next = t + (retry ? retry : 1);
    if (R->o->logins > 0 && next >= q->until) {
        uint32_t until;
        uint32_t login = sim_pop_next_login(R->o, q, (uint32_t)(next < q->until ? next : q->until), R->horizon, &until);
        if (login == UINT32_MAX)
            return;
        q->until = until;
        next = login;
    }
    at(R, q, next);
}

/* ---- counting --------------------------------------------------------------------- */

/* The row of second t: set once per simulated second (a division per
 * decision shows in the profile). */
static sim_stepstat *step_at(run *R, uint32_t t)
{
    (void)t;
    return R->cur;
}

/* Bytes of a download spread over the minutes it spans, on its mirror. */
static void account(run *R, unsigned mirror, double start, double end, double rate)
{
    sim_result *r = R->r;
    if (start >= R->horizon)
        return;
    end = fmin(end, R->horizon);
    for (double a = start; a < end;) {
        unsigned m = (unsigned)(a / 60);
        double b = fmin(end, (m + 1) * 60.0);
        r->minute_bytes[(size_t)m * SIM_MIRRORS_MAX + mirror] += (b - a) * rate;
        a = b;
    }
    uint32_t s = (uint32_t)start, e = (uint32_t)ceil(end);
    R->inflight[s]++;
    R->inflight[e > s ? e : s + 1]--;
}

static void upgraded(run *R, uint32_t t)
{
    if (R->nupgrades == R->cap_upgrades) {
        size_t cap = R->cap_upgrades ? R->cap_upgrades * 2 : 4096;
        uint32_t *v = realloc(R->upgrade_at, cap * sizeof *v);
        if (!v)
            return; /* the count stays right; only the share's timing loses this one */
        R->upgrade_at = v, R->cap_upgrades = cap;
    }
    R->upgrade_at[R->nupgrades++] = t;
}

/* ---- decisions -------------------------------------------------------------------- */

static int decide(run *R, sim_peer *q, unsigned kind, uint16_t ver, uint32_t net, uint8_t plat, uint8_t chan,
                  unsigned res, uint32_t t, ug_decision *d)
{
    /* the claims live in R (the plugin keeps no pointer to them): only
     * what changes between decisions is written, nothing is zeroed again */
    ug_claims *c = &R->claims;
    sim_pop_addr(&R->pop, q, net, &R->addr, &c->srclen);
    c->kind = kind;
    c->uid = q->uid;
    c->ver = R->pop.vers[ver];
    c->plat = plat ? R->pop.plats[plat - 1] : NULL;
    c->chan = chan ? R->pop.chans[chan - 1] : NULL;
    c->to = kind == UG_CLAIM_REPORT ? R->pop.vers[q->to] : NULL;
    c->res = res;
    c->memo = &q->memo;
    *d = (ug_decision){.size = sizeof *d};
    step_at(R, t)->decisions++;
    R->r->decisions++;
    if (R->pl->api->decide(R->inst, 0, c, d) == 0)
        return 0;
    R->r->errors++;
    return -1;
}

enum { D_ACCEPT = 32, D_THINK, D_FAIL, D_ROLLBACK }; /* draw purposes, per attempt */

/* A HINT the peer acts on: the user's answer, then the download. */
static void offered(run *R, sim_peer *q, uint32_t t, const ug_decision *d)
{
    const sim_opts *o = R->o;
    sim_result *r = R->r;
    int to = d->to ? sim_pop_version(&R->pop, d->to) : -1;
    if (to < 0) {
        r->errors++;
        SET_STATE(q, SIM_P_DONE);
        return;
    }
    q->to = (uint16_t)to;
    uint64_t k = (uint64_t)q->tries++ << 8;
    double think = o->think ? 2.0 * (double)o->think * sim_unit(sim_rand(o->seed, q->uid, k | D_THINK)) : 0;
    if (sim_unit(sim_rand(o->seed, q->uid, k | D_ACCEPT)) >= o->accept) {
        SET_STATE(q, SIM_P_CHOICE);
        at(R, q, t + (uint64_t)think);
        return;
    }
    unsigned mirror = d->nmirrors ? d->mirror % SIM_MIRRORS_MAX : 0;
    if (d->nmirrors > r->nmirrors)
        r->nmirrors = d->nmirrors < SIM_MIRRORS_MAX ? d->nmirrors : SIM_MIRRORS_MAX;
    if (!r->package_size)
        r->package_size = d->package_size;
    /* a version 2 peer fetches the delta its HINT names (an older plugin leaves fetch_size 0) */
    uint64_t bytes = d->fetch_size ? d->fetch_size : d->package_size;
    r->downloads++;
    if (d->delta) {
        r->delta_downloads++;
        r->delta_saved += (double)(d->package_size - bytes);
    }
    double start = t + think, end = start + (double)bytes / q->speed;
    account(R, mirror, start, end, q->speed);
    SET_STATE(q, SIM_P_DOWN);
    at(R, q, (uint64_t)ceil(end));
}

/* A HELLO and what the peer does with the answer (act: it is free to). */
static void hello(run *R, sim_peer *q, uint32_t t, uint16_t ver, uint32_t net, uint8_t plat, uint8_t chan, bool act)
{
    sim_result *r = R->r;
    ug_decision d;
    if (decide(R, q, UG_CLAIM_HELLO, ver, net, plat, chan, 0, t, &d) != 0) {
        SET_STATE(q, SIM_P_DONE);
        return;
    }
    sim_stepstat *st = step_at(R, t);
    if (d.answer != UG_ANSWER_WAIT || d.why != UG_WHY_NOT_TARGETED) {
        if (!(q->state & F_TARGETED))
            r->targeted++;
        q->state |= F_TARGETED;
    }
    switch (d.answer) {
    case UG_ANSWER_HINT: {
        unsigned s = stage_of(R, d.rollout, d.stage);
        sim_stageinfo *si = &r->stages[s];
        if (!si->package_size)
            si->package_size = d.package_size;
        if (d.fresh) {
            st->offers_new++;
            r->offers[(size_t)R->cur_step * (SIM_STAGES_MAX + 1) + s]++;
            si->offered++;
            si->last_offer_at = t;
            if (si->has_quota && si->offered == si->quota && si->spent_at < 0)
                si->spent_at = t;
        } else {
            st->offers_sticky++;
        }
        if (act)
            offered(R, q, t, &d);
        return;
    }
    case UG_ANSWER_WAIT:
        st->waits[d.why < UG_WHY_COUNT_ ? d.why : UG_WHY_NOT_SELECTED]++;
        if (d.why == UG_WHY_QUOTA && d.stage) {
            sim_stageinfo *si = &r->stages[stage_of(R, d.rollout, d.stage)];
            if (si->spent_at < 0)
                si->spent_at = (int64_t)si->last_offer_at; /* a share smaller than the quota (a fleet) */
            si->quota_wait_seen = true;
        }
        if (d.why == UG_WHY_PAUSED && !r->stopped_at && !r->stopped[0]) {
            r->stopped_at = t;
            snprintf(r->stopped, sizeof r->stopped,
                     "rollout %s stopped offering (paused, halted, or its release manifest expired)",
                     d.rollout ? d.rollout : "?");
        }
        if (d.why == UG_WHY_NOT_TARGETED && !(q->state & F_TARGETED)) {
            r->untargeted++;
            SET_STATE(q, SIM_P_DONE); /* routing never changes during a run: it would never be */
            return;
        }
        if (act)
            again(R, q, t, d.retry);
        return;
    case UG_ANSWER_COOKIE: /* with the address proved, the plugin should never ask */
    default:
        st->cookies++;
        r->cookies++;
        if (act)
            again(R, q, t, 60);
        return;
    }
}

/* A HELLO that only tells the plugin what became of an offer (at the new
 * version: upgraded; back at the old: rolled back); its answer is not the
 * peer's business and is not counted as an offer or a WAIT. */
static void confirm(run *R, sim_peer *q, uint32_t t)
{
    ug_decision d;
    (void)decide(R, q, UG_CLAIM_HELLO, q->ver, q->net, q->plat, q->chan, 0, t, &d);
}

static void report(run *R, sim_peer *q, uint32_t t, ug_res res)
{
    ug_decision d;
    (void)decide(R, q, UG_CLAIM_REPORT, q->ver, q->net, q->plat, q->chan, res, t, &d);
}

/* The event a peer's bucket held. */
static void event(run *R, sim_peer *q, uint32_t t)
{
    const sim_opts *o = R->o;
    sim_result *r = R->r;
    sim_stepstat *st = step_at(R, t);
    uint64_t k = (uint64_t)(q->tries ? q->tries - 1 : 0) << 8;
    switch (STATE(q)) {
    case SIM_P_ASK:
        hello(R, q, t, q->ver, q->net, q->plat, q->chan, true);
        return;
    case SIM_P_CHOICE: /* the user said no */
        report(R, q, t, UG_RES_DECLINED);
        st->declined++, r->declined++;
        SET_STATE(q, SIM_P_DONE);
        return;
    case SIM_P_DOWN:
        if (sim_unit(sim_rand(o->seed, q->uid, k | D_FAIL)) < o->fail) {
            report(R, q, t, UG_RES_INSTALL_FAILED);
            st->failed++, r->failed++;
            SET_STATE(q, SIM_P_ASK);
            again(R, q, t, R->retry); /* and tries again later */
            return;
        }
        q->ver = q->to;
        SET_STATE(q, SIM_P_INSTALLED);
        confirm(R, q, t); /* the plugin sees it upgraded */
        st->upgraded++, r->upgraded++;
        upgraded(R, t);
        if (o->rollback > 0 && sim_unit(sim_rand(o->seed, q->uid, k | D_ROLLBACK)) < o->rollback)
            at(R, q, (uint64_t)t + SIM_ROLLBACK_AFTER);
        else if (!R->pop.recs)
            SET_STATE(q, SIM_P_DONE);
        return;
    case SIM_P_INSTALLED: /* rolled back: the old version asks again, once */
        q->ver = q->old;
        confirm(R, q, t); /* the plugin sees it rolled back */
        st->rolled_back++, r->rolled_back++;
        SET_STATE(q, SIM_P_DONE);
        return;
    default:
        return;
    }
}

/* A recorded HELLO: sent as recorded, but at the new version once the
 * simulation upgraded the peer; acted on only by a peer free to act. */
static void replayed(run *R, const sim_rec *rec, uint32_t t)
{
    sim_peer *q = &R->pop.peers[rec->peer];
    bool moved = STATE(q) == SIM_P_INSTALLED || (STATE(q) == SIM_P_DONE && q->ver != q->old);
    hello(R, q, t, moved ? q->ver : rec->ver, rec->net, rec->plat, rec->chan, STATE(q) == SIM_P_ASK);
}

/* ---- the loop --------------------------------------------------------------------- */

/* Runs second t's due peers, the top first. A peer due again at t (no
 * think time) is pushed by its own event and so runs next, as before.
 * Ahead of the one deciding, the plugin's prefetch() starts the grant
 * slots of the peer AHEAD below; a replay's peers are also fetched from
 * pop.peers, AHEAD * 2 below. */
#define AHEAD 4u
static void drain_replay(run *R, uint32_t t)
{
    while (R->ndue[t]) {
        uint32_t k = R->ndue[t] - 1, i;
        if (k >= 2 * AHEAD) {
            const char *p = (const char *)&R->pop.peers[*(const uint32_t *)wheel_at(R, t, k - 2 * AHEAD)];
            __builtin_prefetch(p);
            __builtin_prefetch(p + sizeof(sim_peer) - 1);
        }
        if (k >= AHEAD && R->prefetch)
            R->prefetch(R->inst, 0, R->pop.peers[*(const uint32_t *)wheel_at(R, t, k - AHEAD)].uid);
        wheel_pop(R, t, &i);
        sim_peer *q = &R->pop.peers[i];
        q->state &= (uint8_t)~F_QUEUED;
        event(R, q, t);
    }
}

/* A synthetic peer is taken off the stack (a copy: its chunk is free to
 * be reused once popped), decided, and put on the stack at() named. */
static void drain_synth(run *R, uint32_t t)
{
    while (R->ndue[t]) {
        uint32_t k = R->ndue[t] - 1;
        if (k >= AHEAD && R->prefetch)
            R->prefetch(R->inst, 0, ((const sim_peer *)wheel_at(R, t, k - AHEAD))->uid);
        sim_peer q;
        wheel_pop(R, t, &q);
        q.state &= (uint8_t)~F_QUEUED;
        R->next_at = NONE;
        event(R, &q, t);
        if (R->next_at != NONE)
            wheel_put(R, R->next_at, &q);
    }
}

static void drain(run *R, uint32_t t)
{
    if (R->pop.recs)
        drain_replay(R, t);
    else
        drain_synth(R, t);
}

static void drain_batch(void *ctx)
{
    run *R = ctx;
    drain(R, R->t);
}

/* A second's decisions in one batch() when the plugin has it: the policy
 * is entered once for them all, not twice per decision (decide() and
 * prefetch() each enter and leave it otherwise). */
static void drain_second(run *R, uint32_t t)
{
    if (!R->batch) {
        drain(R, t);
        return;
    }
    R->t = t;
    R->batch(R->inst, 0, &(ug_batch){.size = sizeof(ug_batch), .run = drain_batch, .ctx = R});
}

static int loop(run *R, char *err, size_t errcap)
{
    const ug_plugin *api = R->pl->api;
    size_t rec = 0;
    const sim_rec *recs = R->pop.recs;
    for (uint32_t t = 0; t < R->horizon; t++) {
        bool records = recs && rec < R->pop.nrecs && recs[rec].at == t;
        if (!R->ndue[t] && !records)
            continue;
        if (sim_interrupted)
            return snprintf(err, errcap, "interrupted"), -1;
        R->now = (uint64_t)(R->start + t);
        R->cur_step = (unsigned)(t / R->r->step);
        R->cur = &R->r->steps[R->cur_step];
        if (!R->flushed_once || t / 60 != R->last_flush / 60) {
            if (api->flush(R->inst, 0) != 0)
                return snprintf(err, errcap, "the plugin could not store its grants (see its log)"), -1;
            api->tick(R->inst);
            R->last_flush = t;
            R->flushed_once = true;
        }
        for (; records && rec < R->pop.nrecs && recs[rec].at == t; rec++)
            replayed(R, &recs[rec], t);
        drain_second(R, t);
        if (R->oom)
            return snprintf(err, errcap, "out of memory"), -1;
    }
    R->now = (uint64_t)R->start + R->horizon;
    if (api->flush(R->inst, 0) != 0)
        return snprintf(err, errcap, "the plugin could not store its grants (see its log)"), -1;
    return 0;
}

/* An array visited at random, once per event: on huge pages where the
 * kernel gives them, so that a peer costs a cache miss but no TLB miss. */
static void *big_alloc(size_t n)
{
    size_t huge = (size_t)2 << 20, size = (n + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, size ? size : huge);
    if (p)
        (void)madvise(p, size, MADV_HUGEPAGE);
    return p;
}

static int alloc_run(run *R, const sim_opts *o, const sim_pop *pop, char *err, size_t errcap)
{
    sim_result *r = R->r;
    R->horizon = (uint32_t)o->horizon;
    r->horizon = o->horizon;
    r->step = o->step;
    r->nsteps = (unsigned)((o->horizon + o->step - 1) / o->step);
    r->nminutes = (unsigned)((o->horizon + 59) / 60);
    R->pop = *pop;
    R->esz = pop->recs ? sizeof(uint32_t) : sizeof(sim_peer);
    /* a replay's peers, changed as they run (a synthetic peer's copy is its stack entry) */
    R->pop.peers = pop->recs ? big_alloc(pop->npeers * sizeof *pop->peers) : NULL;
    R->due = calloc(R->horizon, sizeof *R->due);
    R->ndue = calloc(R->horizon, sizeof *R->ndue);
    R->inflight = calloc((size_t)R->horizon + 2, sizeof *R->inflight);
    r->steps = calloc(r->nsteps, sizeof *r->steps);
    r->offers = calloc((size_t)r->nsteps * (SIM_STAGES_MAX + 1), sizeof *r->offers);
    r->minute_bytes = calloc((size_t)r->nminutes * SIM_MIRRORS_MAX, sizeof *r->minute_bytes);
    if ((pop->recs && !R->pop.peers) || !R->due || !R->ndue || !R->inflight || !r->steps || !r->offers ||
        !r->minute_bytes)
        return snprintf(err, errcap, "out of memory"), -1;
    if (pop->recs) {
        memcpy(R->pop.peers, pop->peers, pop->npeers * sizeof *pop->peers);
        return 0;
    }
    for (uint32_t i = 0; i < pop->npeers && !R->oom; i++) {
        sim_peer q = pop->peers[i];
        uint32_t first = q.next;
        if (o->logins > 0 && (first = sim_pop_next_login(o, &q, 0, R->horizon, &q.until)) == UINT32_MAX)
            continue;
        if (first < R->horizon) {
            q.state |= F_QUEUED;
            wheel_put(R, first, &q);
        }
    }
    return R->oom ? (snprintf(err, errcap, "out of memory"), -1) : 0;
}

static void finish_counts(run *R)
{
    sim_result *r = R->r;
    /* every peer is in one of the three: the headline's counts add up to --peers */
    r->unasked = R->src->npeers - r->targeted - r->untargeted;
    int64_t live = 0;
    for (unsigned s = 0; s < r->nsteps; s++) {
        uint32_t a = s * (uint32_t)r->step, b = (uint32_t)fmin((double)a + r->step, R->horizon);
        int32_t mx = 0;
        for (uint32_t t = a; t < b; t++) {
            live += R->inflight[t];
            mx = live > mx ? (int32_t)live : mx;
        }
        r->steps[s].in_flight_max = (uint32_t)mx;
    }
    for (unsigned i = 0; i < r->nstages; i++) {
        sim_stageinfo *si = &r->stages[i];
        if (si->spent_at < 0 && si->has_quota && si->offered >= si->quota)
            si->spent_at = (int64_t)si->last_offer_at;
    }
}

int sim_run(const sim_plugin *pl, const sim_opts *o, const sim_pop *pop, const char *policy, uint64_t retry,
            sim_result *r, char *err, size_t errcap)
{
    memset(r, 0, sizeof *r);
    r->policy = policy;
    run R = {.pl = pl, .o = o, .src = pop, .r = r, .start = o->start, .now = (uint64_t)o->start};
    char dir[4096];
    int rc = -1;
    if (alloc_run(&R, o, pop, err, errcap) != 0)
        goto out;
    if (!(R.inst = create(&R, policy, dir, sizeof dir, err, errcap)))
        goto out;
    R.retry = retry;
    R.prefetch = UG_ENTRY(pl->api, prefetch);
    R.batch = UG_ENTRY(pl->api, batch);
    R.claims = (ug_claims){.size = sizeof R.claims, .flags = UG_DECIDE_SPEND | UG_DECIDE_ADDR_PROVED,
                           .src = &R.addr.sa};
    json_t *st = status(&R);
    if (!st) {
        snprintf(err, errcap, "%s: the plugin gave no status", policy);
        goto drop;
    }
    read_stages(&R, st);
    json_decref(st);
    struct timespec c0, c1, w0, w1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    clock_gettime(CLOCK_MONOTONIC, &w0);
    rc = loop(&R, err, errcap);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    clock_gettime(CLOCK_MONOTONIC, &w1);
    r->cpu_seconds = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    r->loop_seconds = (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9;
    if (rc == 0) {
        finish_counts(&R);
        if ((st = status(&R)) != NULL) {
            read_outcomes(&R, st);
            json_decref(st);
        }
        /* the share's clock: upgrade moments, kept with the result */
        r->upgrade_at = R.upgrade_at;
        r->nupgrade_at = R.nupgrades;
        R.upgrade_at = NULL;
    }
drop:
    drop(&R, R.inst, dir);
out:
    free(R.pop.peers);
    if (R.due)
        for (uint32_t t = 0; t < R.horizon; t++)
            chunks_free(R.due[t]);
    free(R.due);
    free(R.ndue);
    chunks_free(R.spare);
    free(R.inflight);
    free(R.upgrade_at);
    R.r = NULL;
    return rc;
}

void sim_result_free(sim_result *r)
{
    free(r->steps);
    free(r->offers);
    free(r->minute_bytes);
    free(r->upgrade_at);
    memset(r, 0, sizeof *r);
}

/* ---- reading the series ------------------------------------------------------------ */

double sim_minute_bps(const sim_result *r, unsigned i, unsigned m)
{
    const double *row = &r->minute_bytes[(size_t)i * SIM_MIRRORS_MAX];
    double b = 0;
    if (m < SIM_MIRRORS_MAX)
        b = row[m];
    else
        for (unsigned k = 0; k < SIM_MIRRORS_MAX; k++)
            b += row[k];
    double secs = fmin(60.0, (double)r->horizon - 60.0 * i); /* a short last minute */
    return b * 8 / secs;
}

double sim_peak_bps(const sim_result *r, unsigned m, unsigned *minute)
{
    double best = 0;
    unsigned at = 0;
    for (unsigned i = 0; i < r->nminutes; i++) {
        double v = sim_minute_bps(r, i, m);
        if (v > best)
            best = v, at = i;
    }
    if (minute)
        *minute = at;
    return best;
}

double sim_step_peak_bps(const sim_result *r, unsigned step, unsigned m)
{
    unsigned a = (unsigned)(step * r->step / 60), b = (unsigned)fmin(((double)step + 1) * r->step / 60, r->nminutes);
    double best = 0;
    for (unsigned i = a; i < b; i++)
        best = fmax(best, sim_minute_bps(r, i, m));
    return best;
}

double sim_step_bytes(const sim_result *r, unsigned step, unsigned m)
{
    unsigned a = (unsigned)(step * r->step / 60), b = (unsigned)fmin(((double)step + 1) * r->step / 60, r->nminutes);
    double bytes = 0;
    for (unsigned i = a; i < b; i++) {
        const double *row = &r->minute_bytes[(size_t)i * SIM_MIRRORS_MAX];
        for (unsigned k = 0; k < SIM_MIRRORS_MAX; k++)
            bytes += m == SIM_MIRRORS_MAX || m == k ? row[k] : 0;
    }
    return bytes;
}

double sim_step_avg_bps(const sim_result *r, unsigned step, unsigned m)
{
    double secs = fmin((double)r->step, (double)r->horizon - (double)step * r->step);
    return secs > 0 ? sim_step_bytes(r, step, m) * 8 / secs : 0;
}

int64_t sim_time_to_share(const sim_result *r, double share)
{
    if (!r->targeted)
        return -1;
    uint64_t need = (uint64_t)ceil(share * (double)r->targeted - 1e-9);
    need = need ? need : 1;
    if (need > r->nupgrade_at)
        return -1;
    return r->upgrade_at[need - 1];
}
