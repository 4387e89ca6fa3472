/* Fleet mode's Redis is no back door (issue 22): a Redis with the contrib ACL, a tracker without the password refused, forged and replayed flags ignored and logged, and the issue's three attacks failing for a second Unix user. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleetutil.h"
#include "testutil.h"

#define PASS "t3st-upgate-fleet-Pw"
#define OPS "0ps-has-its-own"

static fu_fleet F;

static void setup(void)
{
    if (!ru_available())
        cr_skip_test("redis-server is not installed (make deps installs it)");
}

static void teardown(void)
{
    fu_teardown(&F);
}

TestSuite(fleet_auth, .init = setup, .fini = teardown, .timeout = 120);

/* contrib/redis/upgate.acl with PASS in place of its placeholder hash, the
 * default user off, and an "ops" user allowed everything (an operator's
 * account: it can write the fleet's keys, but has no password_file). */
static void write_acl(const char *path, bool census)
{
    char src[512], text[4096];
    const char *root = getenv("UG_ROOT");
    snprintf(src, sizeof src, "%s/contrib/redis/upgate.acl", root ? root : ".");
    FILE *f = fopen(src, "r");
    cr_assert(f, "cannot read %s", src);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *line = strstr(text, "\nuser upgate on #");
    cr_assert(line, "the example names user upgate");
    char *cut = census ? NULL : strstr(line, " +set +getrange"); /* an ACL written before the census */
    if (cut)
        memmove(cut, cut + 15, strlen(cut + 15) + 1);
    char *hash = strchr(line + 1, '#'), out[4096];
    int k = snprintf(out, sizeof out, "user default off\nuser ops on >" OPS " ~* &* +@all\n%.*s>" PASS "%s",
                     (int)(hash - line - 1), line + 1, hash + 65);
    cr_assert(k > 0 && (size_t)k < sizeof out);
    tu_write_file(path, out, (size_t)k);
}

/* n trackers on a TCP Redis that asks for the contrib ACL's user, with the
 * password file pw (the right one, unless told otherwise). */
static void start_acl_as(unsigned n, const char *pw_text, const char *stages, bool census)
{
    fu_init(&F, n, "placeholder", NULL, stages);
    char *dir = (char *)tu_tmpdir(), acl[128], pw[128];
    snprintf(acl, sizeof acl, "%.100s/users.acl", dir);
    snprintf(pw, sizeof pw, "%.100s/redis.pass", dir);
    write_acl(acl, census);
    tu_write_file(pw, pw_text, strlen(pw_text));
    cr_assert_eq(chmod(pw, 0600), 0);
    ru_start_auth(&F.redis, tu_free_port(SOCK_STREAM), NULL, acl, "ops", OPS);
    snprintf(F.url, sizeof F.url, "%s", F.redis.url);
    snprintf(F.fleet_extra, sizeof F.fleet_extra, ", user: upgate, password_file: %s", pw);
    fu_start_all(&F);
}

static void start_acl(unsigned n, const char *pw_text, const char *stages)
{
    start_acl_as(n, pw_text, stages, true);
}

static const char *fleet_error(unsigned t, char *out, size_t cap)
{
    json_t *j = fu_ctl(&F, t, "{\"cmd\":\"status\"}");
    const char *e = json_string_value(json_object_get(json_object_get(json_object_get(j, "tracker"), "fleet"), "error"));
    snprintf(out, cap, "%s", e ? e : "");
    json_decref(j);
    return out;
}

/* Up to n new peers offered by tracker t (fewer once one hears the quota is spent). */
static unsigned offers(unsigned t, uint64_t *next, unsigned n)
{
    unsigned got = 0;
    bool spent = false;
    for (long long end = fu_mono_ms() + 15000; got < n && !spent && fu_mono_ms() < end; nu_sleep_ms(20)) {
        fu_req r[8];
        unsigned m = n - got < 8 ? n - got : 8;
        for (unsigned k = 0; k < m; k++)
            r[k] = (fu_req){.uid = (*next)++, .tracker = t};
        fu_fire(&F, r, m);
        fu_converse(&F, r, m);
        for (unsigned k = 0; k < m; k++) {
            got += r[k].done && r[k].a.type == UG_TYPE_HINT;
            spent |= fu_spent(r[k].a);
        }
    }
    return got;
}

/* The contrib ACL is enough for a tracker: it joins with user and password
 * and offers; one with a wrong password is refused by Redis and says so. */
Test(fleet_auth, the_acl_user_serves_and_a_wrong_password_is_refused)
{
    start_acl(1, PASS "\n", "  - {name: all, quota: 20}\n");
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offers(0, &next, 20), 20, "a tracker with the ACL user offers the quota");
    long long n = 0;
    for (long long end = fu_mono_ms() + 5000; (n = ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n")) != 20 &&
                                              fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert_eq(n, 20, "and tells Redis: every command it needs is in the ACL");
    char err[1 << 14];
    nu_stderr(&F.node[0], err, sizeof err);
    cr_assert_null(strstr(err, "NOPERM"), "no command refused: %s", err);
    fu_stop(&F, 0, SIGTERM);
    /* the same tracker with a wrong password */
    char pw[128];
    snprintf(pw, sizeof pw, "%s", strstr(F.fleet_extra, "password_file: ") + 15);
    tu_write_file(pw, "not-the-password\n", 17);
    fu_start(&F, 0);
    char e[400] = "";
    for (long long end = fu_mono_ms() + 5000; !strstr(fleet_error(0, e, sizeof e), "AUTH") && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    fprintf(stderr, "note: fleet.auth: a tracker with a wrong password: %s\n", e);
    cr_assert(strstr(e, "AUTH") && strstr(e, "WRONGPASS"), "Redis refuses it: %s", e);
    fu_answer a = fu_ask1(&F, 0, next++);
    cr_assert(a.type == UG_TYPE_WAIT, "and it offers nothing");
}

/* The flags hash as it stands, field by field, to write back later. */
static redisReply *flags_now(redisContext *c)
{
    redisReply *r = redisCommand(c, "HGETALL ug:{default}:flags");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 2);
    return r;
}

static bool paused_at(unsigned t)
{
    fu_answer a = fu_ask1(&F, t, 1);
    return a.type == UG_TYPE_WAIT && a.why == UG_WHY_PAUSED;
}

static int times_logged(unsigned t, const char *what)
{
    static char err[1 << 16];
    nu_stderr(&F.node[t], err, sizeof err);
    int n = 0;
    for (const char *p = strstr(err, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

/* A writer with Redis access but not the fleet's password file (the ops
 * user) lifts the halt in the hash: the trackers ignore it and log it
 * once; an older, genuine state written back (a replay) is refused too;
 * a tracker's own resume still works. */
Test(fleet_auth, forged_and_replayed_flags_are_ignored)
{
    start_acl(2, PASS "\n", "  - {name: all, quota: 20}\n");
    fu_wait_joined(&F);
    cr_assert_eq(fu_ask1(&F, 0, 1).type, UG_TYPE_HINT);
    redisContext *c = ru_connect(&F.redis);
    for (long long end = fu_mono_ms() + 5000; ru_int(&F.redis, "HGET ug:{default}:flags ver") < 1 && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    redisReply *before = flags_now(c); /* genuine, not halted */
    json_decref(fu_ctl(&F, 0, "{\"cmd\":\"halt\",\"rollout\":\"default\",\"why\":\"bad build\"}"));
    for (long long end = fu_mono_ms() + 5000; !paused_at(1) && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert(paused_at(1), "b obeys the halt");
    /* forged: the halt lifted by hand, version bumped */
    long long ver = ru_int(&F.redis, "HGET ug:{default}:flags ver");
    freeReplyObject(redisCommand(c, "HSET ug:{default}:flags halted 0 paused 0 why x ver %lld", ver + 5));
    nu_sleep_ms(1000); /* ten polls */
    cr_assert(paused_at(0) && paused_at(1), "the forged resume is ignored");
    for (long long end = fu_mono_ms() + 3000; times_logged(1, "not signed with this fleet's key") < 1 && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert_eq(times_logged(1, "not signed with this fleet's key"), 1, "logged, once");
    /* replayed: the genuine state from before the halt, written back at once */
    const char *argv[40] = {"HSET", "ug:{default}:flags"};
    size_t argc = 2;
    for (size_t i = 0; i < before->elements && argc < 40; i++)
        argv[argc++] = before->element[i]->str;
    freeReplyObject(redisCommand(c, "MULTI"));
    freeReplyObject(redisCommand(c, "DEL ug:{default}:flags"));
    freeReplyObject(redisCommandArgv(c, (int)argc, argv, NULL));
    freeReplyObject(redisCommand(c, "EXEC"));
    nu_sleep_ms(1000);
    cr_assert(paused_at(0) && paused_at(1), "the replayed state is ignored");
    cr_assert_geq(times_logged(1, "older than those applied here"), 1, "and logged");
    freeReplyObject(before);
    redisFree(c);
    /* the fleet's own word still goes through */
    json_decref(fu_ctl(&F, 0, "{\"cmd\":\"resume\",\"rollout\":\"default\"}"));
    for (long long end = fu_mono_ms() + 5000; paused_at(1) && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert(!paused_at(1), "a tracker's resume reaches b");
    fprintf(stderr, "note: fleet.flags: a forged resume and a replayed state ignored by both trackers (logged %d and "
                    "%d times on b); a tracker's resume obeyed\n",
            times_logged(1, "not signed with this fleet's key"), times_logged(1, "older than those applied here"));
}

static long long gate_step(unsigned t)
{
    return fu_gate_int(&F, t, "step");
}

/* Promote across the fleet under the password and the ACL (no command
 * more): a promote written by hand (no gmac, or a genuine one moved to a
 * later step) releases nothing; a tracker's promote releases b's gate. */
Test(fleet_auth, only_a_trackers_promote_releases_a_gate)
{
    start_acl(2, PASS "\n",
              "  - name: ramp\n    percent:\n      - {at: 2020-01-01T00:00:00Z, percent: 1}\n"
              "      - {at: 2020-01-02T00:00:00Z, percent: 50, gate: manual}\n"
              "      - {at: 2020-01-02T00:00:01Z, percent: 100, gate: manual}\n");
    fu_wait_joined(&F);
    for (long long end = fu_mono_ms() + 5000; ru_int(&F.redis, "HGET ug:{default}:flags ver") < 1 && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    redisContext *c = ru_connect(&F.redis);
    freeReplyObject(redisCommand(c, "HSET ug:{default}:flags gates ramp:1:5000:2.0.0"));
    nu_sleep_ms(1500);
    cr_assert_eq(gate_step(1), 0, "a promote without the fleet's seal releases nothing");
    cr_assert_eq(times_logged(1, "are not signed with this fleet's key: ignored"), 1, "logged, once");
    json_t *r = fu_ctl(&F, 0, "{\"cmd\":\"promote\",\"rollout\":\"default\"}");
    cr_assert_str_eq(json_string_value(json_object_get(r, "fleet")), "written", "%s",
                     json_string_value(json_object_get(r, "error")));
    json_decref(r);
    for (long long end = fu_mono_ms() + 5000; gate_step(1) != 1 && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert_eq(gate_step(1), 1, "a's promote releases b's gate");
    nu_sleep_ms(1500); /* b's step 2 comes due */
    freeReplyObject(redisCommand(c, "HSET ug:{default}:flags gates ramp:1:5000:2.0.0,ramp:2:10000:2.0.0"));
    nu_sleep_ms(1500);
    cr_assert_eq(gate_step(1), 1, "the sealed promote moved on by hand releases nothing more");
    redisFree(c);
}

static json_t *census_fleet_of(unsigned t)
{
    json_t *c = fu_ctl(&F, t, "{\"cmd\":\"census\"}");
    json_t *fl = json_incref(json_object_get(c, "fleet"));
    json_decref(c);
    return fl ? fl : json_object();
}

/* The fleet's census under the password: sealed censuses merge; a's real
 * census passed off as another tracker's (z) is refused: the seal names
 * its tracker. */
Test(fleet_auth, the_census_merges_only_what_a_tracker_sealed)
{
    setenv("UG_FLEET_CENSUS_SECONDS", "1", 1);
    start_acl(2, PASS "\n", "  - {name: all, quota: 20}\n");
    unsetenv("UG_FLEET_CENSUS_SECONDS");
    fu_wait_joined(&F);
    for (uint64_t uid = 1; uid <= 30; uid++)
        (void)fu_ask1(&F, uid % 2, uid);
    json_t *fl = NULL;
    for (long long end = fu_mono_ms() + 10000; fu_mono_ms() < end; nu_sleep_ms(100)) {
        json_decref(fl);
        fl = census_fleet_of(1);
        if (json_integer_value(json_object_get(fl, "trackers")) == 2 && json_integer_value(json_object_get(fl, "hour")) >= 30)
            break;
    }
    cr_assert_eq(json_integer_value(json_object_get(fl, "trackers")), 2, "both sealed censuses merge");
    cr_assert_eq(json_integer_value(json_object_get(fl, "hour")), 30, "30 uids, exactly at this size");
    cr_assert_eq(json_integer_value(json_object_get(fl, "refused")), 0);
    json_decref(fl);
    redisContext *c = ru_connect(&F.redis);
    redisReply *a = redisCommand(c, "GET ug:{_fleet}:census:a");
    cr_assert(a && a->type == REDIS_REPLY_STRING && a->len > 36, "a's census is published");
    freeReplyObject(redisCommand(c, "HSET ug:{_fleet}:trackers z 9999999999|up|x|00"));
    freeReplyObject(redisCommand(c, "SET ug:{_fleet}:census:z %b EX 60", a->str, a->len));
    freeReplyObject(a);
    redisFree(c);
    fl = NULL;
    for (long long end = fu_mono_ms() + 10000; fu_mono_ms() < end; nu_sleep_ms(100)) {
        json_decref(fl);
        fl = census_fleet_of(1);
        if (json_integer_value(json_object_get(fl, "refused")) > 0)
            break;
    }
    cr_assert_gt(json_integer_value(json_object_get(fl, "refused")), 0, "a census sealed for a is refused as z's");
    cr_assert_eq(json_integer_value(json_object_get(fl, "trackers")), 2);
    json_decref(fl);
    cr_assert_geq(times_logged(1, "census:z is refused: not sealed with this fleet's key"), 1, "and logged");
}

/* An ACL written before the census (no +set, +getrange): Redis refuses the
 * census's commands; the tracker says so and keeps the connection its
 * quota runs on (it used to close it on every refusal, every round). */
Test(fleet_auth, an_acl_without_the_census_commands_leaves_only_the_census_out)
{
    setenv("UG_FLEET_CENSUS_SECONDS", "1", 1);
    start_acl_as(1, PASS "\n", "  - {name: all, quota: 20}\n", false);
    unsetenv("UG_FLEET_CENSUS_SECONDS");
    fu_wait_joined(&F);
    for (long long end = fu_mono_ms() + 5000; times_logged(0, "Redis refused the census") < 1 && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert_geq(times_logged(0, "Redis refused the census"), 1, "the refusal is said");
    nu_sleep_ms(2500); /* two more census rounds */
    uint64_t next = 1;
    cr_assert_eq(offers(0, &next, 20), 20, "the quota is served");
    char e[400] = "";
    cr_assert_str_eq(fleet_error(0, e, sizeof e), "", "the fleet link is up");
    cr_assert_eq(times_logged(0, "Redis refused a command"), 0, "no command the quota needs was refused");
    cr_assert_eq(times_logged(0, "Redis refused the census"), 1, "said once a minute");
}

/* A command run as the second Unix user (nobody); its output. */
static void as_nobody(const char *cmd, char *out, size_t cap)
{
    char line[1024];
    snprintf(line, sizeof line, "setpriv --reuid=nobody --regid=nogroup --clear-groups -- sh -c '%s' 2>&1", cmd);
    tu_run(line, out, cap);
}

/* The issue's three attacks by an unprivileged local user, against a TCP
 * Redis with the ACL and against a Unix socket in a private folder: lift a
 * halt, inflate a quota of 20, cut this tracker's fleet_rate share. Each
 * fails at the door, and the fleet sees nothing of it. */
Test(fleet_auth, a_second_unix_user_cannot_use_redis_as_a_back_door)
{
    if (geteuid() != 0 || tu_run("id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null", NULL, 0) != 0)
        cr_skip_test("needs root, the user nobody and setpriv to act as a second Unix user");
    start_acl(1, PASS "\n", "  - {name: all, quota: 20, fleet_rate: 20}\n");
    fu_wait_joined(&F);
    char out[4096], cmd[600], pw[128];
    snprintf(pw, sizeof pw, "%s", strstr(F.fleet_extra, "password_file: ") + 15);
    as_nobody(strcat(strcpy(cmd, "cat "), pw), out, sizeof out);
    cr_assert(strstr(out, "Permission denied"), "nobody cannot read the password file: %s", out);
    /* 1: lift a halt */
    json_decref(fu_ctl(&F, 0, "{\"cmd\":\"halt\",\"rollout\":\"default\",\"why\":\"ops\"}"));
    snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %u HSET \"ug:{default}:flags\" halted 0; redis-cli -h "
             "127.0.0.1 -p %u HINCRBY \"ug:{default}:flags\" ver 1", F.redis.port, F.redis.port);
    as_nobody(cmd, out, sizeof out);
    cr_assert(strstr(out, "NOAUTH") && !strstr(out, "(integer)"), "refused: %s", out);
    nu_sleep_ms(500);
    cr_assert(paused_at(0), "the halt holds");
    json_decref(fu_ctl(&F, 0, "{\"cmd\":\"resume\",\"rollout\":\"default\"}"));
    /* 2: inflate the quota while peers ask */
    uint64_t next = 100;
    unsigned got = 0;
    snprintf(cmd, sizeof cmd, "for i in 1 2 3 4 5; do redis-cli -h 127.0.0.1 -p %u HSET \"ug:{default}:2.0.0:q:all\" "
             "n 0 leased 0; done", F.redis.port);
    for (int round = 0; round < 6; round++) {
        as_nobody(cmd, out, sizeof out);
        cr_assert(strstr(out, "NOAUTH") && !strstr(out, "(integer)"), "refused: %s", out);
        got += offers(0, &next, 13);
    }
    cr_assert_eq(got, 20, "quota 20 stays 20: %u offered", got);
    /* 3: cut this tracker's fleet_rate share with a fake busy tracker */
    snprintf(cmd, sizeof cmd, "redis-cli -h 127.0.0.1 -p %u HSET \"ug:{default}:rate:all\" ghost \"1000000|$(date +%%s)\"",
             F.redis.port);
    as_nobody(cmd, out, sizeof out);
    cr_assert(strstr(out, "NOAUTH") && !strstr(out, "(integer)"), "refused: %s", out);
    cr_assert_eq(ru_int(&F.redis, "HEXISTS ug:{default}:rate:all ghost"), 0, "no ghost demand");
    /* and a Unix socket in a folder only the service user can enter: no door at all */
    ru_redis u;
    ru_start(&u, 0, NULL);
    snprintf(cmd, sizeof cmd, "redis-cli -s %s HSET \"ug:{default}:flags\" halted 0", u.sock);
    as_nobody(cmd, out, sizeof out);
    ru_stop(&u, SIGKILL);
    cr_assert(strstr(out, "Permission denied") || strstr(out, "ould not connect"), "the socket is out of reach: %s", out);
    fprintf(stderr, "note: fleet.backdoor: as nobody: halt lifted no, quota 20 -> %u offered, ghost demand no, private "
                    "socket unreachable\n", got);
}
