/* Fleet mode's control subcommands, run on the fleet thread: `fleet status` (trackers, leases, demand) and `fleet forget TRACKER`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_impl.h"

static redisReply *run(ug_fleet *F, char *err, size_t errcap)
{
    redisReply *rep = fr_command(&F->r, &F->a);
    if (!rep)
        snprintf(err, errcap, "fleet: Redis: %.300s", F->r.err);
    else if (fr_is_error(rep, err, errcap)) {
        freeReplyObject(rep);
        rep = NULL;
    }
    return rep;
}

static redisReply *run_script(ug_fleet *F, int which, int nkeys, char *err, size_t errcap)
{
    redisReply *rep = fr_script(&F->r, which, nkeys, &F->a);
    if (!rep)
        snprintf(err, errcap, "fleet: Redis: %.300s", F->r.err);
    else if (fr_is_error(rep, err, errcap)) {
        freeReplyObject(rep);
        rep = NULL;
    }
    return rep;
}

/* Redis's clock, in seconds. */
static int redis_time(ug_fleet *F, uint64_t *now, char *err, size_t errcap)
{
    fr_args_reset(&F->a);
    fr_arg(&F->a, "TIME");
    redisReply *rep = run(F, err, errcap);
    long long t = 0;
    bool ok = rep && fr_int_at(rep, 0, &t) && t > 0;
    if (rep)
        freeReplyObject(rep);
    if (!ok && rep)
        snprintf(err, errcap, "fleet: Redis: TIME gave no time");
    *now = (uint64_t)t;
    return ok ? 0 : -1;
}

/* name -> {"address", "up", "heartbeat_age_s"} from the registry. */
static json_t *trackers(ug_fleet *F, uint64_t now, char *err, size_t errcap)
{
    fl_args_registry(F);
    redisReply *rep = run(F, err, errcap);
    if (!rep)
        return NULL;
    json_t *o = json_object();
    const redisReply *k, *v;
    for (size_t i = 0; i < fr_npairs(rep); i++) {
        uint64_t ts;
        bool up;
        if (!fr_pair(rep, i, &k, &v) || k->len > UG_TRACKER_MAX || ug_fleet_row_parse(v->str, v->len, &ts, &up) != 0)
            continue;
        /* SECONDS|STATE|ADDRESS|ID: the address and the state folder's id */
        const char *addr = strchr(strchr(v->str, '|') + 1, '|');
        const char *id = addr ? strchr(addr + 1, '|') : NULL;
        json_t *a = addr ? json_stringn(addr + 1, id ? (size_t)(id - addr - 1) : strlen(addr + 1)) : NULL;
        /* a row still marked up whose heartbeat is past lease_timeout is a
         * tracker that died or lost Redis without leaving: down */
        uint64_t age = now > ts ? now - ts : 0;
        bool stale = up && age >= F->conf.lease_timeout;
        json_t *row = json_pack("{s:s, s:b, s:I, s:o, s:o, s:[]}", "name", k->str, "up", up && !stale,
                                "heartbeat_age_s", (json_int_t)age, "address", a ? a : json_null(), "id",
                                id ? json_string(id + 1) : json_null(), "leases");
        if (row && stale)
            json_object_set_new(row, "down_why", json_string("heartbeat older than lease_timeout"));
        json_object_set_new(o, k->str, row);
    }
    freeReplyObject(rep);
    return o;
}

/* The hash of a stage's quota, and its rate demands, into the trackers'
 * rows and the stage's own. */
static json_t *stage_row(ug_fleet *F, const fscope *s, const fstage *t, json_t *trk, char *err, size_t errcap)
{
    fr_args_reset(&F->a);
    fr_arg(&F->a, "HGETALL");
    fr_arg(&F->a, t->qkey);
    redisReply *rep = run(F, err, errcap);
    if (!rep)
        return NULL;
    long long n = 0, leased = 0;
    json_t *lease = json_object(), *told = json_object();
    const redisReply *k, *kv;
    for (size_t i = 0; i < fr_npairs(rep); i++) {
        long long v;
        if (!fr_pair(rep, i, &k, &kv) || !fr_int_at(kv, 0, &v))
            continue;
        if (strcmp(k->str, "n") == 0)
            n = v;
        else if (strcmp(k->str, "leased") == 0)
            leased = v;
        else if (strncmp(k->str, "l:", 2) == 0 && v > 0) {
            json_object_set_new(lease, k->str + 2, json_integer(v));
            json_t *row = json_object_get(trk, k->str + 2);
            if (row)
                json_array_append_new(json_object_get(row, "leases"),
                                      json_pack("{s:s, s:s, s:s, s:I}", "rollout", s->rollout, "release", s->to,
                                                "stage", t->name, "slots", (json_int_t)v));
        } else if (strncmp(k->str, "p:", 2) == 0)
            json_object_set_new(told, k->str + 2, json_integer(v));
    }
    freeReplyObject(rep);
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:o, s:o}", "rollout", s->rollout, "release", s->to, "stage",
                          t->name, "quota", t->has_quota ? json_integer((json_int_t)t->quota) : json_null(), "counted",
                          (json_int_t)n, "leased", (json_int_t)leased, "lease", lease, "told", told);
    if (t->has_quota)
        json_object_set_new(o, "available",
                            json_integer((json_int_t)t->quota > n + leased ? (json_int_t)t->quota - n - leased : 0));
    if (!t->has_fleet_rate)
        return o;
    fr_args_reset(&F->a);
    fr_arg(&F->a, "HGETALL");
    fr_arg(&F->a, t->rkey);
    if (!(rep = run(F, err, errcap))) {
        json_decref(o);
        return NULL;
    }
    json_t *demand = json_object();
    for (size_t i = 0; i < fr_npairs(rep); i++)
        if (fr_pair(rep, i, &k, &kv))
            json_object_set_new(demand, k->str, json_real(strtod(kv->str, NULL)));
    freeReplyObject(rep);
    json_object_set_new(o, "fleet_rate", json_real(t->fleet_rate));
    json_object_set_new(o, "demand", demand);
    return o;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *fl_status_json(ug_fleet *F, const ug_live *l, char *err, size_t errcap)
{
    (void)l;
    uint64_t now;
    if (redis_time(F, &now, err, errcap) != 0)
        return NULL;
    json_t *trk = trackers(F, now, err, errcap);
    if (!trk)
        return NULL;
    json_t *stages = json_array();
    for (size_t i = 0; i < F->nsc; i++)
        for (size_t j = 0; j < F->sc[i].nst; j++) {
            json_t *row = stage_row(F, &F->sc[i], &F->sc[i].st[j], trk, err, errcap);
            if (!row) {
                json_decref(trk);
                json_decref(stages);
                return NULL;
            }
            json_array_append_new(stages, row);
        }
    json_t *list = json_array();
    size_t n = json_object_size(trk), k = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    const char *name;
    json_t *row;
    json_object_foreach(trk, name, row)
    {
        if (names)
            names[k++] = name;
    }
    if (k)
        qsort(names, k, sizeof *names, by_name);
    for (size_t i = 0; i < k; i++)
        json_array_append(list, json_object_get(trk, names[i]));
    free(names);
    json_decref(trk);
    pthread_mutex_lock(&F->qmu);
    bool leads = F->leads;
    pthread_mutex_unlock(&F->qmu);
    return json_pack("{s:s, s:s, s:s, s:b, s:I, s:o, s:o}", "tracker", F->conf.tracker, "redis", F->conf.redis,
                     "server", F->r.addr, "leads", leads, "lease_timeout_s", (json_int_t)F->conf.lease_timeout,
                     "trackers", list, "stages", stages);
}

/* Every quota key the tracker ever leased from (its index), plus this
 * policy's own (an index entry lost to a failover must not hide a lease). */
static json_t *lease_keys(ug_fleet *F, const char *tracker, char *err, size_t errcap)
{
    char key[UG_FLEET_KEY_MAX];
    ug_fleet_key_fleet(key, "leases", tracker);
    fr_args_reset(&F->a);
    fr_arg(&F->a, "SMEMBERS");
    fr_arg(&F->a, key);
    redisReply *rep = run(F, err, errcap);
    if (!rep)
        return NULL;
    json_t *keys = json_object();
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        const redisReply *k = fr_str_at(rep, i);
        if (k && k->len < UG_FLEET_KEY_MAX)
            json_object_set_new(keys, k->str, json_true());
    }
    freeReplyObject(rep);
    for (size_t i = 0; i < F->nsc; i++)
        for (size_t j = 0; j < F->sc[i].nst; j++)
            json_object_set_new(keys, F->sc[i].st[j].qkey, json_true());
    return keys;
}

/* FORGET on every key: written off what the tracker parked (all with
 * force); what it may have spent stays counted (kept). */
static int forget_all(ug_fleet *F, const char *tracker, bool force, json_t *keys, json_t *released, long long *total,
                      long long *kept, char *err, size_t errcap)
{
    const char *k;
    json_t *v;
    json_object_foreach(keys, k, v)
    {
        char rollout[UG_NAME_MAX + 1], to[UG_VER_MAX + 1], stage[UG_NAME_MAX + 1];
        if (ug_fleet_qkey_parse(k, strlen(k), rollout, to, stage) != 0)
            continue; /* not a key this code writes */
        fr_args_reset(&F->a);
        fr_arg(&F->a, k);
        fr_arg(&F->a, tracker);
        fr_arg(&F->a, force ? "1" : "0");
        redisReply *rep = run_script(F, FR_FORGET, 1, err, errcap);
        long long n = 0, left = 0;
        bool ok = rep && fr_int_at(rep, 0, &n) && fr_int_at(rep, 1, &left) && n >= 0 && left >= 0;
        if (rep)
            freeReplyObject(rep);
        if (!ok)
            return -1;
        if (n > 0 || left > 0) {
            json_array_append_new(released, json_pack("{s:s, s:s, s:s, s:I, s:I}", "rollout", rollout, "release", to,
                                                      "stage", stage, "slots", (json_int_t)n, "kept",
                                                      (json_int_t)left));
            *total += n;
            *kept += left;
        }
    }
    return fr_replicated(&F->r);
}

/* Marks the tracker forgotten (it drops what it holds at its next
 * heartbeat, if it lives) and stopped; drops its index when nothing of
 * its lease stays counted (else a forced forget must find it again). */
static int mark_forgotten(ug_fleet *F, const char *tracker, uint64_t now, bool drop_index, char *err, size_t errcap)
{
    char key[UG_FLEET_KEY_MAX], row[64];
    const char *steps[3][4] = {{"SADD", "forgot", tracker, NULL}, {"DEL", "leases", NULL, NULL},
                               {"HSET", "trackers", tracker, row}};
    snprintf(row, sizeof row, "%llu|stopped|forgotten", (unsigned long long)now);
    for (int i = 0; i < 3; i++) {
        if (i == 1 && !drop_index)
            continue;
        ug_fleet_key_fleet(key, steps[i][1], i == 1 ? tracker : NULL);
        fr_args_reset(&F->a);
        fr_arg(&F->a, steps[i][0]);
        fr_arg(&F->a, key);
        for (int j = 2; j < 4 && steps[i][j]; j++)
            fr_arg(&F->a, steps[i][j]);
        redisReply *rep = run(F, err, errcap);
        if (!rep)
            return -1;
        freeReplyObject(rep);
    }
    return 0;
}

json_t *fl_forget_json(ug_fleet *F, const ug_live *l, json_t *req, char *err, size_t errcap)
{
    (void)l;
    const char *t = json_string_value(json_object_get(req, "tracker"));
    bool force = json_is_true(json_object_get(req, "force"));
    uint64_t now;
    if (!t || strlen(t) > UG_TRACKER_MAX) {
        snprintf(err, errcap, "fleet forget: no such tracker name");
        return NULL;
    }
    if (strcmp(t, F->conf.tracker) == 0 && !force) {
        snprintf(err, errcap, "fleet forget: %s is this tracker; forget it from another (or add \"force\": true)", t);
        return NULL;
    }
    if (redis_time(F, &now, err, errcap) != 0)
        return NULL;
    json_t *trk = trackers(F, now, err, errcap);
    if (!trk)
        return NULL;
    json_t *row = json_object_get(trk, t);
    if (!row) {
        json_decref(trk);
        snprintf(err, errcap, "fleet forget: no tracker named %s has joined this fleet", t);
        return NULL;
    }
    bool up = json_is_true(json_object_get(row, "up"));
    json_int_t age = json_integer_value(json_object_get(row, "heartbeat_age_s"));
    json_decref(trk);
    if (up && (uint64_t)age < F->conf.lease_timeout && !force) {
        snprintf(err, errcap,
                 "fleet forget: %s beat %lld s ago, within lease_timeout (%llu s): it may be alive and spending its "
                 "lease. Stop it or wait; \"force\": true writes it off anyway (its unused slots may then be spent "
                 "twice, until its next heartbeat)",
                 t, (long long)age, (unsigned long long)F->conf.lease_timeout);
        return NULL;
    }
    json_t *keys = lease_keys(F, t, err, errcap);
    if (!keys)
        return NULL;
    json_t *released = json_array();
    long long total = 0, kept = 0;
    int rc = forget_all(F, t, force, keys, released, &total, &kept, err, errcap);
    json_decref(keys);
    if (rc != 0 || mark_forgotten(F, t, now, kept == 0, err, errcap) != 0) {
        if (!err[0])
            snprintf(err, errcap, "fleet forget: Redis: %.300s", F->r.err);
        json_decref(released);
        return NULL;
    }
    fl_log(F, UG_LOG_WARN, "forgot tracker %s%s: released %lld leased slots, %lld stay counted", t,
           force ? " (forced)" : "", total, kept);
    return json_pack("{s:s, s:b, s:I, s:b, s:o, s:I, s:I, s:s}", "tracker", t, "was_up", up, "heartbeat_age_s",
                     (json_int_t)age, "forced", force, "released", released, "slots", (json_int_t)total, "kept",
                     (json_int_t)kept, "note",
                     force ? "forced: grants it made and had not told the fleet are told, and counted, when it "
                             "returns, even past a quota"
                           : "released only the slots it had parked; the slots it could spend stay counted until it "
                             "returns and tells what it granted (force writes them off too)");
}
