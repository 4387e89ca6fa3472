/* Fleet mode's census: each tracker publishes its census sketches, sealed, under a key that expires; each reads the others' and keeps the union (docs/fleet.md, "The fleet's census"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_impl.h"

#define CENSUS_S 60u               /* seconds between publishes */
#define CENSUS_TTL_PUBLISHES 3u    /* a key outlives this many missed publishes, then a dead tracker ages out */
#define CENSUS_PUB_MAX (4u << 20)  /* bytes of one tracker's published census, head included */
#define CENSUS_TRACKERS_MAX 64u    /* other trackers read per round */

unsigned fl_census_interval(void)
{
    const char *e = getenv("UG_FLEET_CENSUS_SECONDS");
    char *end;
    unsigned long v = e ? strtoul(e, &end, 10) : 0;
    return e && *e && !*end && v >= 1 && v <= 3600 ? (unsigned)v : CENSUS_S;
}

/* This tracker's census, sealed into buf (CENSUS_PUB_MAX bytes): its
 * length. Buckets past the bound are left out, counted in *cut. */
static size_t seal_own(ug_fleet *F, uint64_t now, uint8_t *buf, uint8_t *one, uint64_t *cut)
{
    size_t off = UG_FLEET_CENSUS_HEAD, len;
    *cut = 0;
    for (size_t i = 0; ug_census_export(F->I->census, now, i, one, UG_CENSUS_EXPORT_MAX, &len) == 0; i++) {
        if (CENSUS_PUB_MAX - off < 4 || len > CENSUS_PUB_MAX - off - 4) { /* off <= CENSUS_PUB_MAX always */
            (*cut)++;
            continue;
        }
        buf[off] = (uint8_t)(len >> 24), buf[off + 1] = (uint8_t)(len >> 16);
        buf[off + 2] = (uint8_t)(len >> 8), buf[off + 3] = (uint8_t)len;
        memcpy(buf + off + 4, one, len);
        off += 4 + len;
    }
    ug_fleet_census_seal(F->flag_key, F->conf.tracker, buf, off);
    return off;
}

/* Merges a published census into fc: 0, or -1 when any of it is refused
 * (why says so; the buckets before it stay merged: a union loses nothing). */
static int merge_blob(ug_fleet *F, ug_census *fc, uint64_t now, const char *tracker, const uint8_t *b, size_t n,
                      char *why, size_t cap)
{
    if (!ug_fleet_census_open(F->flag_key, tracker, b, n))
        return snprintf(why, cap, "%s", F->flag_key ? "not sealed with this fleet's key" : "not a census"), -1;
    size_t off = UG_FLEET_CENSUS_HEAD, rlen;
    const uint8_t *rec;
    int rc;
    while ((rc = ug_fleet_census_next(b, n, &off, &rec, &rlen)) == 1)
        if (ug_census_merge(fc, now, rec, rlen, why, cap) != 0)
            return -1;
    return rc == 0 ? 0 : (snprintf(why, cap, "a bucket runs past the end"), -1);
}

/* fl_command for the census: a command Redis refuses (an ACL written
 * before the census, without +set or +getrange) leaves the census out of
 * this round, said once a minute, and keeps the connection the quotas and
 * flags run on; fl_command would close it. NULL on either failure. */
static redisReply *census_command(ug_fleet *F)
{
    redisReply *rep = fr_command(&F->r, &F->a);
    char err[300];
    if (!rep || !fr_is_error(rep, err, sizeof err))
        return rep;
    freeReplyObject(rep);
    int64_t ms = ug_mono_ms();
    if (ms >= F->census_quiet_ms) {
        F->census_quiet_ms = ms + 60000;
        fl_log(F, UG_LOG_WARN, "Redis refused the census (%s): the fleet's census is left out; the ACL needs +set "
               "and +getrange (docs/fleet.md)", err);
    }
    return NULL;
}

static int publish(ug_fleet *F, const uint8_t *buf, size_t n)
{
    char key[UG_FLEET_KEY_MAX];
    if (ug_fleet_key_fleet(key, "census", F->conf.tracker) != 0)
        return 0;
    fr_args_reset(&F->a);
    fr_arg(&F->a, "SET");
    fr_arg(&F->a, key);
    fr_argn(&F->a, (const char *)buf, n);
    fr_arg(&F->a, "EX");
    fr_argu(&F->a, (uint64_t)F->census_s * CENSUS_TTL_PUBLISHES);
    redisReply *rep = census_command(F);
    if (!rep)
        return -1;
    freeReplyObject(rep);
    return 0;
}

/* The other trackers' names from the registry (at most CENSUS_TRACKERS_MAX): their number, or -1. */
static long others(ug_fleet *F, char (*name)[UG_TRACKER_MAX + 1])
{
    fl_args_registry(F);
    redisReply *rep = fl_command(F);
    if (!rep)
        return -1;
    long n = 0;
    const redisReply *k, *v;
    for (size_t i = 0; i < fr_npairs(rep) && n < (long)CENSUS_TRACKERS_MAX; i++)
        if (fr_pair(rep, i, &k, &v) && k->len <= UG_TRACKER_MAX && strlen(k->str) == k->len &&
            strcmp(k->str, F->conf.tracker) != 0)
            snprintf(name[n++], UG_TRACKER_MAX + 1, "%s", k->str);
    freeReplyObject(rep);
    return n;
}

/* Tracker t's published census merged into fc: 1 merged, 0 none (expired,
 * or too long to be one), -1 Redis failed; *refused counts a bad one. */
static int read_one(ug_fleet *F, ug_census *fc, uint64_t now, const char *t, uint64_t *refused)
{
    char key[UG_FLEET_KEY_MAX], why[200] = "";
    if (ug_fleet_key_fleet(key, "census", t) != 0)
        return 0;
    fr_args_reset(&F->a);
    fr_arg(&F->a, "GETRANGE"); /* never more than a census can be, whatever the key holds */
    fr_arg(&F->a, key);
    fr_arg(&F->a, "0");
    fr_argu(&F->a, CENSUS_PUB_MAX);
    redisReply *rep = census_command(F);
    if (!rep)
        return -1;
    int rc = 0;
    if (rep->type == REDIS_REPLY_STRING && rep->len > 0) {
        if (rep->len > CENSUS_PUB_MAX)
            snprintf(why, sizeof why, "over %u bytes", CENSUS_PUB_MAX);
        else if (merge_blob(F, fc, now, t, (const uint8_t *)rep->str, rep->len, why, sizeof why) == 0)
            rc = 1;
        int64_t ms = ug_mono_ms();
        if (rc == 0 && (*refused)++ == 0 && ms >= F->census_quiet_ms) { /* counted each time, said once a minute */
            F->census_quiet_ms = ms + 60000;
            fl_log(F, UG_LOG_WARN, "the census tracker %s published in %s is refused: %s", t, key, why);
        }
    }
    freeReplyObject(rep);
    return rc;
}

/* The fleet's census made whole (this tracker's sealed census, then every
 * other's), then swapped into the instance. */
static void gather(ug_fleet *F, uint64_t now, const uint8_t *own, size_t n)
{
    char why[200] = "", (*name)[UG_TRACKER_MAX + 1] = malloc(CENSUS_TRACKERS_MAX * sizeof *name);
    ug_census_opts o = {.nworkers = 1, .ring = 1024}; /* the census's defaults: 1000 buckets in 16 MiB */
    ug_census *fc = name ? ug_census_create(&o, why, sizeof why) : NULL;
    if (!fc)
        fl_log(F, UG_LOG_WARN, "cannot make the fleet's census: %s", name ? why : "out of memory");
    long nt = fc ? others(F, name) : -1;
    uint64_t refused = 0;
    unsigned merged = 1;
    if (nt >= 0 && merge_blob(F, fc, now, F->conf.tracker, own, n, why, sizeof why) != 0)
        fl_log(F, UG_LOG_WARN, "this tracker's own census does not merge: %s", why); /* cannot happen */
    for (long i = 0; i < nt; i++) {
        int rc = read_one(F, fc, now, name[i], &refused);
        if (rc < 0) {
            nt = -1;
            break;
        }
        merged += (unsigned)rc;
    }
    free(name);
    ug_inst *I = F->I;
    pthread_mutex_lock(&I->census_fleet_mu);
    I->census_fleet_refused += refused;
    if (nt >= 0) {
        ug_census *old = I->census_fleet;
        I->census_fleet = fc, fc = old;
        I->census_fleet_at = now;
        I->census_fleet_trackers = merged;
    }
    pthread_mutex_unlock(&I->census_fleet_mu);
    ug_census_free(fc);
}

void fl_census(ug_fleet *F, const ug_live *l)
{
    int64_t ms = ug_mono_ms();
    if (!l->pol->census || ms < F->census_next_ms)
        return;
    F->census_next_ms = ms + (int64_t)F->census_s * 1000;
    uint8_t *buf = malloc(CENSUS_PUB_MAX), *one = malloc(UG_CENSUS_EXPORT_MAX);
    if (!buf || !one) {
        free(buf), free(one);
        fl_log(F, UG_LOG_WARN, "out of memory for the census: not published this round");
        return;
    }
    uint64_t now = ug_inst_now(F->I), cut;
    ug_census_tick(F->I->census, now);
    size_t n = seal_own(F, now, buf, one, &cut);
    free(one);
    if (cut && cut != F->census_cut)
        fl_log(F, UG_LOG_WARN, "the census published leaves %llu buckets out: over %u bytes",
               (unsigned long long)cut, CENSUS_PUB_MAX);
    F->census_cut = cut;
    if (publish(F, buf, n) == 0)
        gather(F, now, buf, n);
    free(buf);
}
