/* Fleet mode's Redis connection (hiredis, synchronous, fleet thread only): Sentinel, password, master check, the Lua scripts. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "fleet/fleet_redis.h"

#define PASSWORD_MAX 1024u

/*
 * The scripts are the whole of the fleet's arithmetic (docs/fleet.md):
 * each runs atomically on the server, names every key it touches in KEYS,
 * and touches keys of one hash tag only, so a Cluster proxy can route it.
 * A stage's quota hash q holds n (distinct uids the fleet counts against
 * the stage), leased (slots lent and not yet turned into counted uids),
 * l:TRACKER (what one tracker holds of leased) and p:TRACKER (uids it
 * told). The invariant n + leased <= quota holds after every script.
 */
static const char *const scripts[FR_NSCRIPTS] = {
    /* LEASE q; tracker, want, quota -> {given, n, leased} */
    [FR_LEASE] = "local q, t = KEYS[1], ARGV[1]\n"
                 "local want, quota = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
                 "local n = tonumber(redis.call('HGET', q, 'n') or '0')\n"
                 "local leased = tonumber(redis.call('HGET', q, 'leased') or '0')\n"
                 "local give = quota - n - leased\n"
                 "if give > want then give = want end\n"
                 "if give < 0 then give = 0 end\n"
                 "if give > 0 then\n"
                 "  redis.call('HINCRBY', q, 'leased', give)\n"
                 "  redis.call('HINCRBY', q, 'l:' .. t, give)\n"
                 "end\n"
                 "return {give, n, leased + give}\n",
    /* PUBLISH g dup ev q; tracker, stage, maxlen, (uid, at, outcome)... ->
     * {new to the fleet, slots used, used beyond the tracker's lease}. A uid
     * first told here turns one leased slot into n; one the fleet has from
     * another tracker under this stage frees the slot; under another stage
     * it is counted here too (never fewer than offered); one this tracker
     * told before changes nothing (told twice after a crash). */
    [FR_PUBLISH] = "local g, dup, ev, q = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
                   "local t, s, maxlen = ARGV[1], ARGV[2], ARGV[3]\n"
                   "local used, counted, fresh = 0, 0, 0\n"
                   "for i = 4, #ARGV - 2, 3 do\n"
                   "  local u, at, o = ARGV[i], ARGV[i + 1], ARGV[i + 2]\n"
                   "  local v = redis.call('HGET', g, u)\n"
                   "  if not v then\n"
                   "    redis.call('HSET', g, u, s .. '|' .. t .. '|' .. at .. '|' .. o)\n"
                   "    redis.call('XADD', ev, 'MAXLEN', '~', maxlen, '*', 'k', 'g', 'u', u, 's', s, 'a', at, 'o', o, "
                   "'t', t)\n"
                   "    used, counted, fresh = used + 1, counted + 1, fresh + 1\n"
                   "  else\n"
                   "    local s0, t0, a0, o0 = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')\n"
                   "    if not s0 then s0, t0, a0, o0 = s, '?', at, '0' end\n"
                   "    if t0 ~= t and redis.call('SADD', dup, t .. '|' .. u) == 1 then\n"
                   "      used = used + 1\n"
                   "      if s0 ~= s then counted = counted + 1 end\n"
                   "    end\n"
                   "    if o ~= '0' and o ~= o0 then\n"
                   "      redis.call('HSET', g, u, s0 .. '|' .. t0 .. '|' .. a0 .. '|' .. o)\n"
                   "      redis.call('XADD', ev, 'MAXLEN', '~', maxlen, '*', 'k', 'o', 'u', u, 'o', o, 't', t)\n"
                   "    end\n"
                   "  end\n"
                   "end\n"
                   "if counted > 0 then redis.call('HINCRBY', q, 'n', counted) end\n"
                   "local lf = 'l:' .. t\n"
                   "local c = tonumber(redis.call('HGET', q, lf) or '0')\n"
                   "if c > used then c = used end\n"
                   "if c > 0 then\n"
                   "  redis.call('HINCRBY', q, lf, -c)\n"
                   "  redis.call('HINCRBY', q, 'leased', -c)\n"
                   "end\n"
                   "if used > 0 then redis.call('HINCRBY', q, 'p:' .. t, used) end\n"
                   "return {fresh, used, used - c}\n",
    /* OUTCOME g ev; tracker, maxlen, (uid, outcome)... -> changed */
    [FR_OUTCOME] = "local g, ev, t, maxlen = KEYS[1], KEYS[2], ARGV[1], ARGV[2]\n"
                   "local changed = 0\n"
                   "for i = 3, #ARGV - 1, 2 do\n"
                   "  local u, o = ARGV[i], ARGV[i + 1]\n"
                   "  local v = redis.call('HGET', g, u)\n"
                   "  if v and o ~= '0' then\n"
                   "    local s0, t0, a0, o0 = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)$')\n"
                   "    if s0 and o ~= o0 then\n"
                   "      redis.call('HSET', g, u, s0 .. '|' .. t0 .. '|' .. a0 .. '|' .. o)\n"
                   "      redis.call('XADD', ev, 'MAXLEN', '~', maxlen, '*', 'k', 'o', 'u', u, 'o', o, 't', t)\n"
                   "      changed = changed + 1\n"
                   "    end\n"
                   "  end\n"
                   "end\n"
                   "return changed\n",
    /* SETTLE q; tracker, keep, parked -> {held before, keep, n, leased}:
     * the tracker's lease becomes exactly what it owes (unused + untold),
     * parked of it parked (r:TRACKER: slots it may spend only after UNPARK). */
    [FR_SETTLE] = "local q, lf, rf = KEYS[1], 'l:' .. ARGV[1], 'r:' .. ARGV[1]\n"
                  "local keep, parked = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
                  "local old = tonumber(redis.call('HGET', q, lf) or '0')\n"
                  "local leased = tonumber(redis.call('HGET', q, 'leased') or '0') + keep - old\n"
                  "if leased < 0 then leased = 0 end\n"
                  "redis.call('HSET', q, 'leased', leased)\n"
                  "if keep > 0 then redis.call('HSET', q, lf, keep) else redis.call('HDEL', q, lf) end\n"
                  "if parked > 0 then redis.call('HSET', q, rf, parked) else redis.call('HDEL', q, rf) end\n"
                  "return {old, keep, tonumber(redis.call('HGET', q, 'n') or '0'), leased}\n",
    /* UNPARK q; tracker, k -> given: up to k parked slots become spendable
     * (a forget may have written them off meanwhile: then fewer). */
    [FR_UNPARK] = "local q, rf = KEYS[1], 'r:' .. ARGV[1]\n"
                  "local r = tonumber(redis.call('HGET', q, rf) or '0')\n"
                  "local g = tonumber(ARGV[2])\n"
                  "if g > r then g = r end\n"
                  "if g < 0 then g = 0 end\n"
                  "if r - g > 0 then redis.call('HSET', q, rf, r - g) else redis.call('HDEL', q, rf) end\n"
                  "return g\n",
    /* FORGET q; tracker, force -> {written off, kept}: only the parked slots
     * (the tracker cannot spend them without UNPARK), or all with force;
     * the rest stays counted: the tracker may have spent it. */
    [FR_FORGET] = "local q, lf, rf = KEYS[1], 'l:' .. ARGV[1], 'r:' .. ARGV[1]\n"
                  "local old = tonumber(redis.call('HGET', q, lf) or '0')\n"
                  "local free = tonumber(redis.call('HGET', q, rf) or '0')\n"
                  "if ARGV[2] == '1' or free > old then free = old end\n"
                  "if free > 0 then\n"
                  "  local leased = tonumber(redis.call('HGET', q, 'leased') or '0') - free\n"
                  "  if leased < 0 then leased = 0 end\n"
                  "  redis.call('HSET', q, 'leased', leased)\n"
                  "end\n"
                  "if old - free > 0 then redis.call('HSET', q, lf, old - free) else redis.call('HDEL', q, lf) end\n"
                  "redis.call('HDEL', q, rf)\n"
                  "return {free, old - free}\n",
    /* BEAT trackers forgot; tracker, state, address, instance id, lease
     * timeout -> {was forgotten, now, name taken}: a name beating from
     * another state folder within the lease timeout is another tracker
     * alive under the same name, and this one may not touch its lease. */
    [FR_BEAT] = "redis.replicate_commands()\n"
                "local now = tonumber(redis.call('TIME')[1])\n"
                "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
                "if old then\n"
                "  local ts, st, id = string.match(old, '^(%d+)|(%a+)|[^|]*|(%x+)$')\n"
                "  if st == 'up' and id and id ~= ARGV[4] and now - tonumber(ts) <= tonumber(ARGV[5]) then\n"
                "    return {0, now, 1}\n"
                "  end\n"
                "end\n"
                "local was = 0\n"
                "if ARGV[2] == 'up' then was = redis.call('SREM', KEYS[2], ARGV[1]) end\n"
                "redis.call('HSET', KEYS[1], ARGV[1], now .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])\n"
                "return {was, now, 0}\n",
    /* FLAGS flags; expected version, new version, paused, halted, why, at,
     * held, shift, mac, gates, gmac -> {version, written}: a compare-and-set
     * of the whole state, MACed by the writer (fleet_flags.c), so a reader
     * can tell a tracker's word from anybody's HSET. */
    [FR_FLAGS] = "local f = KEYS[1]\n"
                 "local cur = tonumber(redis.call('HGET', f, 'ver') or '0') or -1\n"
                 "if cur ~= tonumber(ARGV[1]) then return {cur, 0} end\n"
                 "redis.call('HSET', f, 'ver', ARGV[2], 'paused', ARGV[3], 'halted', ARGV[4], 'why', ARGV[5], "
                 "'at', ARGV[6], 'held', ARGV[7], 'shift', ARGV[8], 'mac', ARGV[9], 'gates', ARGV[10], "
                 "'gmac', ARGV[11])\n"
                 "return {tonumber(ARGV[2]), 1}\n",
    /* RATE rate; tracker, demand, ttl, fleet_rate -> {share, trackers, demand}:
     * Doorman's proportional share, demand + 1 so an idle tracker keeps a
     * trickle; entries older than ttl seconds are trackers gone. */
    [FR_RATE] = "redis.replicate_commands()\n"
                "local now = tonumber(redis.call('TIME')[1])\n"
                "local d, ttl, total = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
                "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. now)\n"
                "local all = redis.call('HGETALL', KEYS[1])\n"
                "local sum, active = 0, 0\n"
                "for i = 1, #all, 2 do\n"
                "  local dd, ts = string.match(all[i + 1], '^([^|]*)|([^|]*)$')\n"
                "  dd, ts = tonumber(dd), tonumber(ts)\n"
                "  if not dd or not ts or now - ts > ttl then redis.call('HDEL', KEYS[1], all[i])\n"
                "  else sum, active = sum + dd, active + 1 end\n"
                "end\n"
                "return {tostring(total * (d + 1) / (sum + active)), active, tostring(sum)}\n",
};

/* ---- arguments ----------------------------------------------------------- */

void fr_args_reset(fr_args *a)
{
    a->len = 0;
    a->n = 0;
    a->oom = false;
}

void fr_args_free(fr_args *a)
{
    free(a->buf);
    free(a->off);
    free(a->alen);
    *a = (fr_args){0};
}

void fr_argn(fr_args *a, const char *s, size_t n)
{
    if (a->oom)
        return;
    if (a->n == a->ncap) {
        size_t cap = a->ncap ? a->ncap * 2 : 64;
        size_t *o = realloc(a->off, cap * sizeof *o);
        if (o)
            a->off = o;
        size_t *l = o ? realloc(a->alen, cap * sizeof *l) : NULL;
        if (!o || !l) {
            a->oom = true;
            return;
        }
        a->alen = l;
        a->ncap = cap;
    }
    if (a->len + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->len + n)
            cap *= 2;
        char *b = realloc(a->buf, cap);
        if (!b) {
            a->oom = true;
            return;
        }
        a->buf = b;
        a->cap = cap;
    }
    if (n)
        memcpy(a->buf + a->len, s, n);
    a->off[a->n] = a->len;
    a->alen[a->n++] = n;
    a->len += n;
}

void fr_arg(fr_args *a, const char *s)
{
    fr_argn(a, s, strlen(s));
}

void fr_argu(fr_args *a, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    fr_argn(a, b, (size_t)n);
}

void fr_argf(fr_args *a, double v)
{
    char b[40];
    int n = snprintf(b, sizeof b, "%.6f", v);
    fr_argn(a, b, (size_t)n);
}

/* ---- replies: no allocation sized by a claim ------------------------------------- */

/* hiredis 0.14 allocates an array reply's elements as soon as it reads
 * the count ("*222330368" is 1.7 GB): a reply larger than any the fleet
 * asks for is refused instead, which hiredis reports as out of memory
 * and the connection closes (fuzz/fuzz_fleet.c found it). */
#define REPLY_ELEMENTS_MAX (1 << 20)

static redisReplyObjectFunctions capped;
static void *(*hiredis_array)(const redisReadTask *, int);
static pthread_once_t capped_once = PTHREAD_ONCE_INIT;

static void *capped_array(const redisReadTask *t, int len)
{
    return len > REPLY_ELEMENTS_MAX ? NULL : hiredis_array(t, len);
}

static void capped_init(void)
{
    redisReader *r = redisReaderCreate(); /* hiredis's own functions, which it does not export */
    if (!r)
        return;
    capped = *r->fn;
    hiredis_array = capped.createArray;
    capped.createArray = capped_array;
    redisReaderFree(r);
}

int fr_reader_cap(redisReader *r)
{
    pthread_once(&capped_once, capped_init);
    if (!hiredis_array)
        return -1;
    r->fn = &capped;
    return 0;
}

/* ---- connecting ------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static int fail(fr_conn *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return -1;
}

static struct timeval tv_of(int ms)
{
    return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

static redisContext *open_tcp(fr_conn *r, const char *host, unsigned port)
{
    redisContext *c = redisConnectWithTimeout(host, (int)port, tv_of(r->timeout_ms));
    if (!c) {
        fail(r, "%s:%u: out of memory", host, port);
        return NULL;
    }
    if (c->err) {
        fail(r, "%s:%u: %s", host, port, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv_of(r->timeout_ms)) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK ||
        fr_reader_cap(c->reader) != 0) {
        fail(r, "%s:%u: cannot set its timeout", host, port);
        redisFree(c);
        return NULL;
    }
    return c;
}

static redisReply *simple(redisContext *c, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    size_t n = a2 ? 3 : a1 ? 2 : 1, len[3];
    for (size_t i = 0; i < n; i++)
        len[i] = strlen(argv[i]);
    return redisCommandArgv(c, (int)n, argv, len);
}

/* Asks each sentinel in turn where the master is. */
static int ask_sentinels(fr_conn *r, char *host, size_t hcap, unsigned *port)
{
    char why[600] = "";
    for (unsigned i = 0; i < r->url.nsentinels; i++) {
        const ug_redis_endpoint *s = &r->url.sentinels[i];
        redisContext *c = open_tcp(r, s->host, s->port);
        if (!c) {
            snprintf(why, sizeof why, "%s", r->err);
            continue;
        }
        redisReply *rep = simple(c, "SENTINEL", "get-master-addr-by-name", r->url.master);
        bool ok = fr_master_addr(rep, host, hcap, port);
        snprintf(why, sizeof why, "sentinel %s:%u: %s", s->host, s->port,
                 !rep ? c->errstr : rep->type == REDIS_REPLY_ERROR ? rep->str : "does not know the master");
        if (rep)
            freeReplyObject(rep);
        redisFree(c);
        if (ok)
            return 0;
    }
    return fail(r, "no sentinel named master %s (%s)", r->url.master, why);
}

/* AUTH [user] with the password file's first line, held in guarded memory. */
static int authenticate(fr_conn *r)
{
    if (!r->password_file[0])
        return 0;
    char why[256] = "";
    char *pw = sodium_malloc(PASSWORD_MAX + 1);
    size_t len = 0;
    if (!pw)
        return fail(r, "password_file %s: out of memory", r->password_file);
    if (ug_file_read(r->password_file, (uint8_t *)pw, PASSWORD_MAX, &len, why, sizeof why) != 0) {
        sodium_free(pw);
        return fail(r, "password_file %s: %s", r->password_file, why);
    }
    while (len && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
        len--;
    const char *argv[3] = {"AUTH", r->user, pw};
    size_t lens[3] = {4, strlen(r->user), len};
    if (!r->user[0]) /* the default user: AUTH password */
        argv[1] = pw, lens[1] = len;
    redisReply *rep = redisCommandArgv(r->c, r->user[0] ? 3 : 2, argv, lens);
    sodium_free(pw); /* wiped */
    bool ok = rep && rep->type == REDIS_REPLY_STATUS;
    fail(r, "%s: AUTH%s%s: %s", r->addr, r->user[0] ? " as " : "", r->user,
         !rep ? r->c->errstr : rep->type == REDIS_REPLY_ERROR ? rep->str : "refused");
    if (rep)
        freeReplyObject(rep);
    return ok ? 0 : -1;
}

int fr_socket_private(const char *path, char *why, size_t cap)
{
    char dir[UG_PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t n = slash && slash > path ? (size_t)(slash - path) : 1;
    if (n >= sizeof dir)
        return snprintf(why, cap, "%s: path too long", path), -1;
    memcpy(dir, slash ? path : "/", n);
    dir[n] = '\0';
    struct stat st;
    if (stat(dir, &st) != 0)
        return snprintf(why, cap, "folder %s: %s", dir, strerror(errno)), -1;
    if (!S_ISDIR(st.st_mode))
        return snprintf(why, cap, "%s is not a folder", dir), -1;
    if (st.st_uid == geteuid() && !(st.st_mode & (S_IXGRP | S_IXOTH)))
        return 1;
    snprintf(why, cap, "folder %s (owner uid %u, mode %03o) can be entered by other users than uid %u", dir,
             (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777), (unsigned)geteuid());
    return 0;
}

static bool status_ok(redisReply *rep)
{
    bool ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep)
        freeReplyObject(rep);
    return ok;
}

/* The server must be a master (a sentinel's answer may be a step behind a
 * failover) and gives its run id; the scripts are loaded. */
static int prepare(fr_conn *r)
{
    char db[8];
    snprintf(db, sizeof db, "%u", r->url.db);
    if (r->url.db && !status_ok(simple(r->c, "SELECT", db, NULL)))
        return fail(r, "%s: SELECT %s failed", r->addr, db);
    redisReply *rep = simple(r->c, "ROLE", NULL, NULL);
    bool master = fr_is_master(rep);
    if (rep)
        freeReplyObject(rep);
    if (!master)
        return fail(r, "%s is not a master (read-only replica, or failing over)", r->addr);
    rep = simple(r->c, "INFO", "server", NULL);
    if (!fr_info_field(rep, "run_id", r->run_id, sizeof r->run_id))
        r->run_id[0] = '\0';
    if (rep)
        freeReplyObject(rep);
    for (int i = 0; i < FR_NSCRIPTS; i++) {
        rep = simple(r->c, "SCRIPT", "LOAD", scripts[i]);
        bool ok = fr_sha_reply(rep, r->sha[i]);
        if (!ok)
            fail(r, "%s: SCRIPT LOAD: %s", r->addr, !rep ? r->c->errstr : rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
        if (rep)
            freeReplyObject(rep);
        if (!ok)
            return -1;
    }
    return 0;
}

int fr_connect(fr_conn *r)
{
    fr_close(r);
    char host[256];
    unsigned port = 0;
    if (r->url.kind == UG_REDIS_UNIX) {
        snprintf(r->addr, sizeof r->addr, "%.299s", r->url.path);
        char why[400];
        /* without a password, the socket's folder is what keeps other local users out */
        if (!r->password_file[0] && fr_socket_private(r->url.path, why, sizeof why) != 1)
            return fail(r, "%.200s: not connecting without a password: %.250s", r->url.path, why);
        r->c = redisConnectUnixWithTimeout(r->url.path, tv_of(r->timeout_ms));
        if (!r->c || r->c->err || redisSetTimeout(r->c, tv_of(r->timeout_ms)) != REDIS_OK ||
            fr_reader_cap(r->c->reader) != 0) {
            fail(r, "%s: %s", r->url.path, r->c ? r->c->errstr : "out of memory");
            fr_close(r);
            return -1;
        }
    } else {
        if (r->url.kind == UG_REDIS_SENTINEL) {
            if (ask_sentinels(r, host, sizeof host, &port) != 0)
                return -1;
        } else {
            snprintf(host, sizeof host, "%s", r->url.sentinels[0].host);
            port = r->url.sentinels[0].port;
        }
        snprintf(r->addr, sizeof r->addr, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
        if (!(r->c = open_tcp(r, host, port)))
            return -1;
    }
    if (authenticate(r) != 0 || prepare(r) != 0) {
        fr_close(r);
        return -1;
    }
    r->err[0] = '\0';
    return 0;
}

void fr_close(fr_conn *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
}

/* ---- commands ---------------------------------------------------------------- */

static redisReply *argv_command(fr_conn *r, size_t n, const char **argv, const size_t *len)
{
    if (!r->c)
        return fail(r, "not connected"), NULL;
    redisReply *rep = redisCommandArgv(r->c, (int)n, argv, len);
    if (!rep) {
        fail(r, "%s: %s", r->addr, r->c->errstr[0] ? r->c->errstr : "connection lost");
        fr_close(r);
    }
    return rep;
}

/* Pointers into the argument buffer, with `pre` leading arguments. */
static int spread(const fr_args *a, const char **pre, const size_t *prelen, size_t npre, const char ***argv,
                  size_t **len)
{
    size_t n = npre + a->n;
    *argv = malloc(n * sizeof **argv);
    *len = malloc(n * sizeof **len);
    if (!*argv || !*len) {
        free(*argv);
        free(*len);
        return -1;
    }
    for (size_t i = 0; i < npre; i++)
        (*argv)[i] = pre[i], (*len)[i] = prelen[i];
    for (size_t i = 0; i < a->n; i++)
        (*argv)[npre + i] = a->buf + a->off[i], (*len)[npre + i] = a->alen[i];
    return 0;
}

static redisReply *with_prefix(fr_conn *r, const char **pre, const size_t *prelen, size_t npre, const fr_args *a)
{
    const char **argv;
    size_t *len;
    if (a->oom || spread(a, pre, prelen, npre, &argv, &len) != 0)
        return fail(r, "out of memory"), NULL;
    redisReply *rep = argv_command(r, npre + a->n, argv, len);
    free(argv);
    free(len);
    return rep;
}

redisReply *fr_command(fr_conn *r, const fr_args *a)
{
    return with_prefix(r, NULL, NULL, 0, a);
}

redisReply *fr_script(fr_conn *r, int script, int nkeys, const fr_args *a)
{
    char nk[12];
    snprintf(nk, sizeof nk, "%d", nkeys);
    const char *pre[3] = {"EVALSHA", r->sha[script], nk};
    size_t prelen[3] = {7, 40, strlen(nk)};
    redisReply *rep = with_prefix(r, pre, prelen, 3, a);
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep); /* a restarted or flushed server forgot it */
        pre[0] = "EVAL", prelen[0] = 4;
        pre[1] = scripts[script], prelen[1] = strlen(scripts[script]);
        rep = with_prefix(r, pre, prelen, 3, a);
    }
    return rep;
}

/* The replicas the master counts now (INFO replication), or -1. */
static long connected_replicas(fr_conn *r)
{
    redisReply *rep = simple(r->c, "INFO", "replication", NULL);
    char v[24];
    long n = fr_info_field(rep, "connected_slaves", v, sizeof v) ? strtol(v, NULL, 10) : -1;
    if (rep)
        freeReplyObject(rep);
    return n;
}

/* A master with no replica has nothing a failover could promote: its own
 * persistence (AOF) is what holds the write. */
int fr_replicated(fr_conn *r)
{
    if (r->url.kind != UG_REDIS_SENTINEL || !r->c)
        return 0;
    char ms[12];
    snprintf(ms, sizeof ms, "%d", r->timeout_ms / 2);
    redisReply *rep = simple(r->c, "WAIT", "1", ms);
    bool ok = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer >= 1;
    if (rep)
        freeReplyObject(rep);
    if (!rep) {
        fail(r, "%s: %s", r->addr, r->c->errstr);
        fr_close(r);
        return -1;
    }
    if (!ok && connected_replicas(r) == 0)
        return 0;
    if (!ok)
        fail(r, "%s: no replica acknowledged the write within %d ms", r->addr, r->timeout_ms / 2);
    return ok ? 0 : -1;
}
