/* Fleet mode end to end: real upgate-nodes on one real Redis (and Sentinel): exact shared quota, stickiness, halt, rate, Redis away, forget. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleetutil.h"
#include "testutil.h"

static fu_fleet F;
static ru_redis replica; /* the Sentinel test's */
static ru_sentinel sen;

static void setup(void)
{
    if (!ru_available())
        cr_skip_test("redis-server and redis-sentinel are not installed (make deps installs them)");
}

static void teardown(void)
{
    fu_teardown(&F);
    ru_sentinel_stop(&sen);
    ru_stop(&replica, SIGKILL);
}

TestSuite(fleet, .init = setup, .fini = teardown, .timeout = 120);

/* Redis's own count of a stage: distinct uids the fleet counted, plus slots still lent. */
static long long redis_field(const char *stage, const char *field)
{
    return ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:%s %s", stage, field);
}

/* "KIND:REASON" of tracker i's last halt in its history ("" if none). */
static const char *halt_actor(unsigned i)
{
    static char out[300];
    out[0] = 0;
    json_t *r = fu_ctl(&F, i, "{\"cmd\":\"history\"}"), *e;
    size_t k;
    json_array_foreach(json_object_get(r, "history"), k, e)
    {
        const char *act = json_string_value(json_object_get(e, "action"));
        if (act && !strcmp(act, "halt"))
            snprintf(out, sizeof out, "%s:%s", json_string_value(json_object_get(json_object_get(e, "actor"), "kind")),
                     json_string_value(json_object_get(e, "reason")));
    }
    json_decref(r);
    return out;
}

/* One quota of 500 over three trackers, peers skewed 80/15/5: exactly 500
 * offers, most by the busy tracker; a uid granted on a is offered again by
 * b and c without spending; a halt on c stops a and b. */
Test(fleet, skewed_quota_is_exact_sticky_and_halted_fleet_wide)
{
    fu_init(&F, 3, NULL, ", lease_timeout: 5", "  - {name: all, quota: 500}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    /* peers as a real one behaves: asked to come back soon (rate), it does */
    static uint64_t uid_of[4000];
    static fu_answer ans[4000];
    static int where[4000];
    static unsigned again[3][4000];
    size_t nagain[3] = {0};
    unsigned hints[3] = {0}, next = 0;
    long long end = fu_mono_ms() + 60000;
    while (hints[0] + hints[1] + hints[2] < 500 && fu_mono_ms() < end) {
        unsigned idx[3][4100];
        size_t nb[3] = {0};
        for (int t = 0; t < 3; t++) { /* those told "rate limited" ask again */
            memcpy(idx[t], again[t], nagain[t] * sizeof **again);
            nb[t] = nagain[t];
            nagain[t] = 0;
        }
        /* 50 new peers a round, skewed: of every 20, 16 ask a, 3 ask b, 1 asks c */
        for (unsigned k = 0; k < 50 && next < 4000; k++, next++) {
            uid_of[next] = 1000 + next;
            int t = next % 20 < 16 ? 0 : next % 20 < 19 ? 1 : 2;
            where[next] = t;
            idx[t][nb[t]++] = next;
        }
        for (int t = 0; t < 3; t++) {
            static uint64_t u[4100];
            static fu_answer a[4100];
            for (size_t k = 0; k < nb[t]; k++)
                u[k] = uid_of[idx[t][k]];
            fu_ask(&F, (unsigned)t, u, nb[t], a);
            for (size_t k = 0; k < nb[t]; k++) {
                ans[idx[t][k]] = a[k];
                hints[t] += a[k].type == UG_TYPE_HINT;
                if (fu_soon(a[k])) /* told to come back soon (a lease on its way) */
                    again[t][nagain[t]++] = idx[t][k];
            }
        }
        nu_sleep_ms(100);
    }
    unsigned total = hints[0] + hints[1] + hints[2];
    fprintf(stderr, "note: fleet.skewed: %u peers asked; offers a=%u b=%u c=%u (total %u)\n", next, hints[0], hints[1],
            hints[2], total);
    cr_assert_eq(total, 500, "exactly the quota is offered over the fleet: %u", total);
    cr_assert_gt(hints[0], 250, "the busy tracker makes most offers: a=%u of 500", hints[0]);
    /* Redis agrees once every tracker told it: 500 counted, nothing lent */
    long long n = 0;
    for (int i = 0; i < 50 && (n = redis_field("all", "n")) != 500; i++)
        nu_sleep_ms(100);
    cr_assert_eq(n, 500, "Redis counts %lld", n);
    cr_assert_eq(ru_int(&F.redis, "HLEN ug:{default}:2.0.0:g"), 500);
    /* every tracker shows the fleet's count */
    for (unsigned t = 0; t < 3; t++)
        cr_assert_eq(fu_wait_granted(&F, t, 500, 5000), 500, "tracker %s shows the fleet's 500", F.name[t]);
    /* a new peer finds the quota spent everywhere, once each tracker read
     * Redis's count (once a second): the policy's long retry */
    for (unsigned t = 0; t < 3; t++) {
        fu_answer a = fu_ask1(&F, t, 999999);
        for (long long until = fu_mono_ms() + 3000; fu_soon(a) && fu_mono_ms() < until; a = fu_ask1(&F, t, 999999))
            nu_sleep_ms(100);
        cr_assert(fu_spent(a), "tracker %s: type %d why %u retry %llu", F.name[t], a.type, a.why,
                  (unsigned long long)a.retry);
    }

    /* sticky: a uid granted on a is offered again by b and c, nothing spent */
    uint64_t granted_on_a = 0;
    for (unsigned k = 0; k < next && !granted_on_a; k++)
        if (where[k] == 0 && ans[k].type == UG_TYPE_HINT)
            granted_on_a = uid_of[k];
    cr_assert(granted_on_a);
    for (unsigned t = 1; t < 3; t++) {
        fu_answer a = fu_ask1(&F, t, granted_on_a);
        cr_assert_eq(a.type, UG_TYPE_HINT, "uid %llu granted on a: tracker %s answers %d (why %u)",
                     (unsigned long long)granted_on_a, F.name[t], a.type, a.why);
    }
    cr_assert_eq(redis_field("all", "n"), 500, "nothing spent");
    cr_assert_eq(ru_int(&F.redis, "HLEN ug:{default}:2.0.0:g"), 500);

    /* halt on c: a and b stop offering, even the sticky ones */
    json_t *r = fu_ctl(&F, 2, "{\"cmd\":\"halt\",\"rollout\":\"default\",\"why\":\"fleet test\"}");
    cr_assert(json_is_true(json_object_get(r, "ok")));
    cr_assert_str_eq(json_string_value(json_object_get(r, "fleet")), "written");
    json_decref(r);
    long long t0 = fu_mono_ms(), seen[2] = {-1, -1};
    while ((seen[0] < 0 || seen[1] < 0) && fu_mono_ms() - t0 < 10000) {
        for (unsigned t = 0; t < 2; t++)
            if (seen[t] < 0) {
                fu_answer a = fu_ask1(&F, t, granted_on_a);
                if (a.type == UG_TYPE_WAIT && a.why == UG_WHY_PAUSED)
                    seen[t] = fu_mono_ms() - t0;
            }
        nu_sleep_ms(20);
    }
    fprintf(stderr, "note: fleet.halt: a obeyed the halt issued on c after %lld ms, b after %lld ms (goal 2000)\n",
            seen[0], seen[1]);
    cr_assert(seen[0] >= 0 && seen[1] >= 0, "the halt reaches a and b within 10 s");
    r = fu_ctl(&F, 0, "{\"cmd\":\"status\"}");
    json_t *ro = json_array_get(json_object_get(r, "rollouts"), 0);
    cr_assert(json_is_true(json_object_get(ro, "halted")));
    cr_assert_str_eq(json_string_value(json_object_get(ro, "halted_why")), "fleet test");
    json_decref(r);
    /* the history says who halted: on c the operator, on a the fleet's word */
    cr_assert_str_eq(halt_actor(0), "fleet:fleet test");
    cr_assert_str_eq(halt_actor(2), "control:fleet test");
    /* resume on a lifts it on c */
    json_decref(fu_ctl(&F, 0, "{\"cmd\":\"resume\",\"rollout\":\"default\"}"));
    long long t1 = fu_mono_ms();
    fu_answer a;
    do
        a = fu_ask1(&F, 2, granted_on_a);
    while (a.type != UG_TYPE_HINT && fu_mono_ms() - t1 < 10000);
    cr_assert_eq(a.type, UG_TYPE_HINT, "resume reaches c");
}

/* Asks tracker t with fresh uids from *next until `hints` HINTs came back
 * (or the time is up); peers told "rate limited" ask again. The HINTs. */
static unsigned offer(unsigned t, uint64_t *next, unsigned hints, long ms)
{
    unsigned got = 0;
    long long end = fu_mono_ms() + ms;
    uint64_t again[64];
    size_t nagain = 0;
    while (got < hints && fu_mono_ms() < end) {
        uint64_t u[16];
        size_t n = 0;
        while (n < nagain && n < 16)
            u[n] = again[n], n++;
        memmove(again, again + n, (nagain - n) * sizeof *again);
        nagain -= n;
        while (n < 16 && n < hints - got + nagain)
            u[n++] = (*next)++;
        fu_answer a[16];
        fu_ask(&F, t, u, n, a);
        for (size_t k = 0; k < n; k++) {
            got += a[k].type == UG_TYPE_HINT;
            if (fu_soon(a[k]) && nagain < 64)
                again[nagain++] = u[k];
        }
        nu_sleep_ms(20);
    }
    return got;
}

static json_t *stage0(json_t *status)
{
    return json_array_get(json_object_get(json_array_get(json_object_get(status, "rollouts"), 0), "stages"), 0);
}

static long long stage_int(unsigned t, const char *key)
{
    json_t *j = fu_ctl(&F, t, "{\"cmd\":\"status\"}");
    long long v = (long long)json_integer_value(json_object_get(stage0(j), key));
    json_decref(j);
    return v;
}

static long long qfield(const char *field)
{
    return ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all %s", field);
}

/* Offers from tracker t until n, then one more try (1.5 s): the offers,
 * so n means "exactly n, no more". The last slots go one by one (each
 * peer held back once), hence the time. */
static unsigned offer_all(unsigned t, uint64_t *next, unsigned n, long ms)
{
    unsigned got = offer(t, next, n, ms);
    return got + offer(t, next, 1, 1500);
}

/* `fleet forget` of tracker a, asked of b; the reply, checked ok. */
static json_t *forget_a(bool force)
{
    json_t *r = fu_ctl(&F, 1, force ? "{\"cmd\":\"fleet\",\"sub\":\"forget\",\"tracker\":\"a\",\"force\":true}"
                                    : "{\"cmd\":\"fleet\",\"sub\":\"forget\",\"tracker\":\"a\"}");
    cr_assert(json_is_true(json_object_get(r, "ok")), "%s", json_dumps(r, 0));
    return r;
}

/* A tracker that dies keeps its lease counted until an operator forgets
 * it, which is refused while its heartbeat is fresh and says what it
 * frees: the slots the dead tracker had parked (quiet for a second, it
 * could no longer spend them without asking Redis). */
Test(fleet, forget_writes_off_a_dead_trackers_parked_lease)
{
    /* leases of 10 over two trackers: the fleet is short (and slots go back
     * at once, not parked) only below 20 lendable */
    fu_init(&F, 2, NULL, ", lease_timeout: 2, lease: 10", "  - {name: all, quota: 100}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    /* 5 of a's first lease (10: half of what is lendable per tracker,
     * capped): the other 5 are a's whatever the refills' timing */
    cr_assert_eq(offer(0, &next, 5, 10000), 5);
    /* a told its grants and, quiet for a second, parked what it holds */
    long long end = fu_mono_ms() + 5000;
    while ((qfield("n") != 5 || qfield("l:a") <= 0 || qfield("r:a") != qfield("l:a")) && fu_mono_ms() < end)
        nu_sleep_ms(20);
    fu_stop(&F, 0, SIGKILL);
    long long t_killed = fu_mono_ms(), held = qfield("l:a");
    cr_assert_gt(held, 0, "a held a lease when it died");
    cr_assert_eq(qfield("r:a"), held, "all of it parked");
    json_t *r = fu_ctl(&F, 1, "{\"cmd\":\"fleet\",\"sub\":\"forget\",\"tracker\":\"a\"}");
    cr_assert(json_is_false(json_object_get(r, "ok")), "refused while a's heartbeat is fresh: %s", json_dumps(r, 0));
    cr_assert(strstr(json_string_value(json_object_get(r, "error")), "lease_timeout"));
    json_decref(r);
    r = fu_ctl(&F, 1, "{\"cmd\":\"fleet\",\"sub\":\"forget\",\"tracker\":\"nobody\"}");
    cr_assert(json_is_false(json_object_get(r, "ok")));
    json_decref(r);
    /* b cannot use what a holds: 100 - 5 told - a's lease (the last slots
     * go one by one: each peer is held back once) */
    unsigned b_got = offer_all(1, &next, (unsigned)(95 - held), 20000);
    cr_assert_eq(b_got, (unsigned)(95 - held), "b offers what a does not hold: %u, a holds %lld", b_got, held);
    while (fu_mono_ms() - t_killed < 2200)
        nu_sleep_ms(50);
    r = forget_a(false);
    cr_assert_eq(json_integer_value(json_object_get(r, "slots")), held, "it says what it releases");
    cr_assert_eq(json_integer_value(json_object_get(r, "kept")), 0, "and that it keeps nothing");
    json_t *rel = json_array_get(json_object_get(r, "released"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(rel, "stage")), "all");
    cr_assert_str_eq(json_string_value(json_object_get(rel, "release")), "2.0.0");
    json_decref(r);
    cr_assert_eq(offer_all(1, &next, (unsigned)held, 15000), (unsigned)held, "b offers what a held");
    cr_assert_eq(qfield("n"), 100);
    /* a comes back: forgotten, it holds nothing and spends nothing */
    fu_start(&F, 0);
    fu_wait_joined(&F);
    fu_answer a = fu_ask1(&F, 0, next++);
    cr_assert(a.type == UG_TYPE_WAIT, "the quota is spent");
    cr_assert_eq(qfield("leased"), 0);
}

/* The slots a dead tracker could still spend (not parked) stay counted
 * through a forget: it may have granted them without telling. Only a
 * forced forget writes them off. */
Test(fleet, forget_keeps_what_a_tracker_could_have_spent)
{
    fu_init(&F, 2, NULL, ", lease_timeout: 2, lease: 40", "  - {name: all, quota: 100}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 10, 10000), 10);
    for (long long end = fu_mono_ms() + 5000; qfield("n") != 10 && fu_mono_ms() < end;)
        nu_sleep_ms(20);
    fu_stop(&F, 0, SIGKILL); /* busy a moment ago: what it holds is spendable */
    long long held = qfield("l:a"), parked = qfield("r:a");
    cr_assert_gt(held - parked, 0, "a could spend some of its lease when it died (%lld, %lld parked)", held, parked);
    nu_sleep_ms(2200);
    json_t *r = forget_a(false);
    cr_assert_eq(json_integer_value(json_object_get(r, "slots")), parked, "only the parked slots are released");
    cr_assert_eq(json_integer_value(json_object_get(r, "kept")), held - parked, "the rest stays counted");
    json_decref(r);
    unsigned b_got = offer_all(1, &next, (unsigned)(90 - (held - parked)), 20000);
    cr_assert_eq(b_got, (unsigned)(90 - (held - parked)), "b offers what a could not have spent: %u", b_got);
    r = forget_a(true);
    cr_assert_eq(json_integer_value(json_object_get(r, "slots")), held - parked, "force writes off the rest");
    json_decref(r);
    cr_assert_eq(offer_all(1, &next, (unsigned)(held - parked), 15000), (unsigned)(held - parked), "b offers them");
    cr_assert_eq(qfield("n"), 100);
}

/* Tracker i's metrics (the control request): does it hold the sample line? */
static bool metric_line(unsigned i, const char *line)
{
    static char out[1 << 20];
    static const char req[] = "{\"cmd\":\"metrics\"}\n";
    cr_assert_gt(nu_ctl(nu_path(&F.node[i], "ctl.sock"), req, sizeof req - 1, false, out, sizeof out), 0);
    char want[200];
    snprintf(want, sizeof want, "\n%s\n", line);
    return strstr(out, want) != NULL;
}

/* Redis away: the tracker serves from its lease and no further, shows and
 * logs the loss once, stops spending once its lease may be written off,
 * and tells the fleet on return. */
Test(fleet, redis_away_serves_the_lease_only)
{
    fu_init(&F, 1, NULL, ", lease_timeout: 4, lease: 15", "  - {name: all, quota: 200}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 20, 10000), 20);
    nu_sleep_ms(300); /* the lease refilled */
    long long unused = stage_int(0, "lease_unused_here");
    cr_assert_gt(unused, 0);
    cr_assert(metric_line(0, "upgate_fleet_redis_up 1") && metric_line(0, "upgate_fleet_redis_losses_total 0"));
    ru_stop(&F.redis, SIGKILL);
    nu_sleep_ms(300);
    /* the link as metrics (issue 20 §5): an alert reads the gauge */
    cr_assert(metric_line(0, "upgate_fleet_redis_up 0"), "the gauge shows the loss");
    cr_assert(metric_line(0, "upgate_fleet_redis_losses_total 1"), "one loss counted");
    json_t *j = fu_ctl(&F, 0, "{\"cmd\":\"status\"}");
    json_t *fl = json_object_get(json_object_get(j, "tracker"), "fleet");
    cr_assert(json_is_false(json_object_get(fl, "connected")), "status shows the loss");
    cr_assert(json_is_string(json_object_get(fl, "error")));
    json_decref(j);
    unsigned during = offer(0, &next, 100, 1500);
    cr_assert_eq(during, (unsigned)unused, "served exactly its lease while Redis was away: %u of %lld", during, unused);
    /* past the fence (lease_timeout 4 s less a quarter), nothing new even with slots */
    nu_sleep_ms(2500);
    cr_assert_eq(stage_int(0, "lease_unused_here"), 0, "no slot is spendable past the fence");
    ru_restart(&F.redis);
    fu_wait_joined(&F);
    cr_assert(metric_line(0, "upgate_fleet_redis_up 1") && metric_line(0, "upgate_fleet_redis_losses_total 1"),
              "back up, the loss still counted once");
    long long n = 0;
    for (int i = 0; i < 50 && (n = ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n")) != 20 + during; i++)
        nu_sleep_ms(100);
    cr_assert_eq(n, 20 + during, "what it granted meanwhile is told on return");
    char err[1 << 14];
    nu_stderr(&F.node[0], err, sizeof err);
    const char *p = strstr(err, "lost Redis");
    cr_assert(p && !strstr(p + 1, "lost Redis"), "the loss is logged once: %s", err);
    p = strstr(err, "reachable again");
    cr_assert(p && !strstr(p + 1, "reachable again"), "and the return once: %s", err);
}

/* A clean stop tells every grant and returns every unused slot. */
Test(fleet, clean_stop_returns_the_unused_lease)
{
    fu_init(&F, 1, NULL, ", lease: 30", "  - {name: all, quota: 200}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 25, 10000), 25);
    nu_sleep_ms(300);
    cr_assert_gt(ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all leased"), 0);
    cr_assert_eq(fu_stop(&F, 0, SIGTERM), 0);
    cr_assert_eq(ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all leased"), 0);
    cr_assert_eq(ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all l:a"), 0);
    cr_assert_eq(ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n"), 25);
    redisContext *c = ru_connect(&F.redis);
    redisReply *rep = redisCommand(c, "HGET ug:{_fleet}:trackers a");
    cr_assert(rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, "|stopped|"), "marked stopped");
    freeReplyObject(rep);
    redisFree(c);
}

/* A Redis that lost what a tracker told it (no persistence, a replica
 * promoted before it synced) is told again. */
Test(fleet, a_redis_that_lost_writes_is_told_again)
{
    fu_init(&F, 1, NULL, "", "  - {name: all, quota: 200}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 30, 10000), 30);
    cr_assert_eq(fu_stop(&F, 0, SIGTERM), 0);
    cr_assert_eq(ru_int(&F.redis, "FLUSHALL"), -1 + 0 * 0); /* a status reply */
    fu_start(&F, 0);
    fu_wait_joined(&F);
    long long n = 0;
    for (int i = 0; i < 50 && (n = ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n")) != 30; i++)
        nu_sleep_ms(100);
    cr_assert_eq(n, 30, "every grant told again");
    cr_assert_eq(ru_int(&F.redis, "HLEN ug:{default}:2.0.0:g"), 30);
    cr_assert_eq(fu_ask1(&F, 0, 1).type, UG_TYPE_HINT, "and still offered");
}

/* Sentinel: the tracker asks the sentinels for the master, and after a
 * failover follows them to the promoted replica, which holds every grant
 * told before (a lease or a grant counts once a replica holds it). */
Test(fleet, sentinel_failover_keeps_every_grant)
{
    unsigned pm = tu_free_port(SOCK_STREAM);
    fu_init(&F, 1, "placeholder", NULL, "  - {name: all, quota: 1000}\n");
    /* a TCP Redis needs a password (fleet.c, authenticated): the data nodes', not the sentinel's */
    char pw[128];
    snprintf(pw, sizeof pw, "%.100s/redis.pass", tu_tmpdir());
    tu_write_file(pw, "s3ntinel-data\n", 14);
    snprintf(F.fleet_extra, sizeof F.fleet_extra, ", lease_timeout: 10, password_file: %s", pw);
    ru_start_auth(&F.redis, pm, NULL, NULL, NULL, "s3ntinel-data");
    char of[64];
    snprintf(of, sizeof of, "127.0.0.1 %u", pm);
    ru_start_auth(&replica, tu_free_port(SOCK_STREAM), of, NULL, NULL, "s3ntinel-data");
    for (int i = 0; i < 100 && ru_int(&F.redis, "WAIT 1 100") < 1; i++)
        nu_sleep_ms(50); /* the replica in sync */
    ru_sentinel_start(&sen, pm, "s3ntinel-data");
    snprintf(F.url, sizeof F.url, "sentinel://127.0.0.1:%u/mymaster", sen.port);
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 20, 10000), 20);
    long long n = 0;
    for (int i = 0; i < 50 && (n = ru_int(&replica, "HGET ug:{default}:2.0.0:q:all n")) != 20; i++)
        nu_sleep_ms(100);
    cr_assert_eq(n, 20, "the replica holds what was told");
    long long t0 = fu_mono_ms();
    ru_stop(&F.redis, SIGKILL);
    while (ru_sentinel_master(&sen) != replica.port && fu_mono_ms() - t0 < 20000)
        nu_sleep_ms(100);
    cr_assert_eq(ru_sentinel_master(&sen), replica.port, "the sentinel promoted the replica");
    unsigned after = offer(0, &next, 20, 15000);
    fprintf(stderr, "note: fleet.sentinel: failover and the tracker back to offering in %lld ms\n",
            fu_mono_ms() - t0);
    cr_assert_eq(after, 20, "the tracker offers again through the new master");
    for (int i = 0; i < 50 && (n = ru_int(&replica, "HGET ug:{default}:2.0.0:q:all n")) != 40; i++)
        nu_sleep_ms(100);
    cr_assert_eq(n, 40, "the new master counts all 40");
    cr_assert_eq(ru_int(&replica, "HLEN ug:{default}:2.0.0:g"), 40);
    json_t *j = fu_ctl(&F, 0, "{\"cmd\":\"status\"}");
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", replica.port);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(j, "tracker"), "fleet"), "server")),
                     want);
    json_decref(j);
}

/* fleet_rate splits new offers per second over the trackers by demand:
 * the busy one gets most of it, and the fleet keeps to the total. */
Test(fleet, fleet_rate_follows_demand)
{
    fu_init(&F, 2, NULL, "", "  - {name: all, fleet_rate: 40}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    unsigned hints[2] = {0};
    long long t0 = fu_mono_ms(), counted_from = t0 + 2500;
    while (fu_mono_ms() - t0 < 6000) { /* a: 200 peers a second, b: 20 */
        for (unsigned t = 0; t < 2; t++) {
            uint64_t u[20];
            fu_answer a[20];
            size_t n = t == 0 ? 20 : 2;
            for (size_t k = 0; k < n; k++)
                u[k] = next++;
            fu_ask(&F, t, u, n, a);
            for (size_t k = 0; k < n && fu_mono_ms() >= counted_from; k++)
                hints[t] += a[k].type == UG_TYPE_HINT;
        }
        nu_sleep_ms(100);
    }
    double secs = (double)(fu_mono_ms() - counted_from) / 1000.0;
    fprintf(stderr, "note: fleet.rate: fleet_rate 40/s over %.1f s: a offered %.1f/s, b %.1f/s\n", secs,
            hints[0] / secs, hints[1] / secs);
    cr_assert_gt(hints[0], 3 * hints[1], "the busy tracker gets most of the rate: a %u, b %u", hints[0], hints[1]);
    cr_assert_gt(hints[1], 0, "the light one keeps some");
    cr_assert_leq((hints[0] + hints[1]) / secs, 40 * 1.3, "the fleet keeps to its rate (bursts aside)");
    cr_assert_geq((hints[0] + hints[1]) / secs, 40 * 0.5, "and uses most of it");
}

/* The issue's own trap: one policy copied to every tracker, tracker name
 * and all. The second to beat under a live name leases and tells nothing
 * (it would spend the first one's lease), and says why. */
Test(fleet, a_name_used_twice_keeps_the_quota)
{
    fu_init(&F, 2, NULL, ", lease: 5", "  - {name: all, quota: 20}\n");
    snprintf(F.name[1], sizeof F.name[1], "a");
    fu_start(&F, 0);
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 5, 5000), 5);
    fu_start(&F, 1);
    nu_sleep_ms(800);
    fu_answer a = fu_ask1(&F, 1, next++);
    cr_assert(a.type == UG_TYPE_WAIT && a.why == UG_WHY_QUOTA && a.retry <= 60,
              "the namesake offers nothing new, and asks to come back soon (%d, why %u, retry %llu)", a.type, a.why,
              (unsigned long long)a.retry);
    char err[1 << 14];
    nu_stderr(&F.node[1], err, sizeof err);
    cr_assert(strstr(err, "another tracker named a is alive"), "%s", err);
    json_t *j = fu_ctl(&F, 1, "{\"cmd\":\"status\"}");
    cr_assert(strstr(json_string_value(json_object_get(json_object_get(json_object_get(j, "tracker"), "fleet"),
                                                       "error")),
                     "in use"));
    json_decref(j);
    cr_assert_eq(offer(0, &next, 15, 5000), 15, "the first keeps the whole quota");
    long long n = 0;
    for (int i = 0; i < 50 && (n = ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n")) != 20; i++)
        nu_sleep_ms(100);
    cr_assert_eq(n, 20);
}

/* Outcomes are fleet-wide: failures reported to b about grants a made
 * reach a, an automatic halt stops both, and (another fleet) a ramp held
 * by the leader is held on every tracker. */
#define HEALTH_POLICY(failed, min)                                                                           \
    "rollouts:\n  - name: r\n    release: @FX@/release.manifest\n    targets: [\"1.4.0\"]\n"                     \
    "    halt_when: {failed: " failed ", min_outcomes: " min "}\n    hold_when_unhealthy: true\n"                 \
    "    stages:\n      - {name: all, quota: 100}\n"

static json_t *rollout_of(unsigned t)
{
    json_t *j = fu_ctl(&F, t, "{\"cmd\":\"status\"}");
    json_t *ro = json_incref(json_array_get(json_object_get(j, "rollouts"), 0));
    json_decref(j);
    return ro;
}

/* Grants uids 1..4 on a, waits until b knows them, reports failures to b. */
static void fail_four_on_b(void)
{
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 4, 5000), 4);
    cr_assert_geq(fu_wait_granted(&F, 1, 4, 5000), 4, "b learned a's grants");
    for (uint64_t uid = 1; uid <= 4; uid++)
        fu_report(&F, 1, uid, UG_RES_INSTALL_FAILED);
}

Test(fleet, outcomes_halt_the_fleet)
{
    fu_init(&F, 2, NULL, "", HEALTH_POLICY("0.5", "4"));
    fu_start_all(&F);
    fu_wait_joined(&F);
    fail_four_on_b();
    long long t0 = fu_mono_ms();
    bool both = false;
    while (!both && fu_mono_ms() - t0 < 10000) {
        json_t *a = rollout_of(0), *b = rollout_of(1);
        both = json_is_true(json_object_get(a, "halted")) && json_is_true(json_object_get(b, "halted"));
        if (both) {
            cr_assert(strstr(json_string_value(json_object_get(a, "halted_why")), "automatic"), "%s",
                      json_string_value(json_object_get(a, "halted_why")));
            json_t *out = json_object_get(a, "outcomes");
            cr_assert_eq(json_integer_value(json_object_get(out, "failed")), 4, "a counts the fleet's failures");
        }
        json_decref(a);
        json_decref(b);
        if (!both)
            nu_sleep_ms(100);
    }
    cr_assert(both, "an automatic halt on the fleet's outcomes stops every tracker");
    cr_assert_eq(fu_ask1(&F, 0, 1).why, UG_WHY_PAUSED);

    /* resume on a: b lifts its halt too, and its halt_when counts afresh
     * from then on, as a's does; on the old counts (4 failed of 4), b's
     * next outcome would raise the halt again, and the fleet with it.
     * Outcome times are whole seconds: the resume comes in a later second
     * than the failures, as an operator's does */
    nu_sleep_ms(1100);
    json_decref(fu_ctl(&F, 0, "{\"cmd\":\"resume\",\"rollout\":\"r\",\"why\":\"mirror fixed\"}"));
    bool lifted = false;
    for (t0 = fu_mono_ms(); !lifted && fu_mono_ms() - t0 < 10000; nu_sleep_ms(50)) {
        json_t *b = rollout_of(1);
        lifted = !json_is_true(json_object_get(b, "halted"));
        json_decref(b);
    }
    cr_assert(lifted, "a's resume reaches b");
    fu_report(&F, 1, 1, UG_RES_INSTALL_FAILED);
    fu_report(&F, 1, 2, UG_RES_INSTALL_FAILED);
    nu_sleep_ms(1500); /* past a tick and a flags round on both */
    for (unsigned t = 0; t < 2; t++) {
        json_t *ro = rollout_of(t);
        cr_assert(!json_is_true(json_object_get(ro, "halted")), "tracker %u: 2 failures since the resume, below "
                  "min_outcomes 4, halt nothing: %s", t, json_string_value(json_object_get(ro, "halted_why")));
        json_decref(ro);
    }
}

Test(fleet, a_held_ramp_is_held_everywhere)
{
    fu_init(&F, 2, NULL, "", HEALTH_POLICY("0.9", "1000"));
    fu_start_all(&F);
    fu_wait_joined(&F);
    fail_four_on_b();
    long long t0 = fu_mono_ms();
    json_int_t held[2] = {0, 0};
    while ((!held[0] || held[0] != held[1]) && fu_mono_ms() - t0 < 10000) {
        for (unsigned t = 0; t < 2; t++) {
            json_t *ro = rollout_of(t);
            held[t] = json_integer_value(json_object_get(ro, "ramp_held_since"));
            json_decref(ro);
        }
        nu_sleep_ms(100);
    }
    if (!held[0]) {
        json_t *j = fu_ctl(&F, 0, "{\"cmd\":\"status\"}");
        char *t = json_dumps(j, JSON_COMPACT);
        fprintf(stderr, "a's status: %s\n", t);
        free(t);
        json_decref(j);
    }
    cr_assert(held[0] && held[0] == held[1], "the leader's hold is every tracker's: a %lld, b %lld", (long long)held[0],
              (long long)held[1]);
    json_t *ro = rollout_of(0);
    cr_assert(json_is_false(json_object_get(ro, "halted")), "held, not halted");
    json_decref(ro);
}

/* A quota lowered by a reload is not spent from leases taken under the old
 * one: each tracker gives its unused slots back and leases anew. */
Test(fleet, a_lowered_quota_holds_after_reload)
{
    fu_init(&F, 2, NULL, ", lease: 30", "  - {name: all, quota: 100}\n");
    fu_start_all(&F);
    fu_wait_joined(&F);
    uint64_t next = 1;
    cr_assert_eq(offer(0, &next, 10, 5000), 10);
    cr_assert_eq(offer(1, &next, 5, 5000), 5);
    nu_sleep_ms(300); /* both hold leases of the old quota now */
    cr_assert_gt(ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all leased"), 5);
    snprintf(F.stages, sizeof F.stages, "  - {name: all, quota: 20}\n");
    fu_reload(&F, 0);
    fu_reload(&F, 1);
    unsigned more = offer(0, &next, 100, 1500) + offer(1, &next, 100, 1500);
    cr_assert_eq(more, 5, "15 offered before, 5 more under the new quota of 20: %u", more);
    long long n = 0;
    for (int i = 0; i < 50 && (n = ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n")) != 20; i++)
        nu_sleep_ms(100);
    cr_assert_eq(n, 20);
}
