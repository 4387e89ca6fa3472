/* Fleet mode under faults (issue 22): a partition through a stalled relay and a forget, a tracker stopped past its lease timeout and forgotten, LEASE replies rewritten by a relay; distinct uids with a valid HINT never pass the quota. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fleetutil.h"
#include "relayutil.h"
#include "testutil.h"

#define UIDS 20000

static fu_fleet F;
static rl_relay relay;
static bool hinted[UIDS];
static unsigned char unheard[UIDS]; /* load()'s uids with no answer yet: tracker + 1 */
static unsigned nhinted, by[FU_MAX];
static uint64_t next_uid;
static unsigned QUOTA; /* the test's */

static void setup(void)
{
    if (!ru_available())
        cr_skip_test("redis-server is not installed (make deps installs it)");
    memset(hinted, 0, sizeof hinted);
    memset(unheard, 0, sizeof unheard);
    nhinted = 0;
    memset(by, 0, sizeof by);
    next_uid = 0;
}

static void teardown(void)
{
    rl_stop(&relay);
    fu_teardown(&F);
}

TestSuite(fleet_faults, .init = setup, .fini = teardown, .timeout = 150);

/* Two trackers a (through a relay of the given mode) and b. */
static void start(unsigned quota, const char *extra, rl_mode mode, unsigned knob, bool a_ready)
{
    char stages[64];
    QUOTA = quota;
    snprintf(stages, sizeof stages, "  - {name: all, quota: %u}\n", QUOTA);
    fu_init(&F, 2, NULL, extra, stages);
    rl_start(&relay, F.redis.sock, mode, knob);
    snprintf(F.url_of[0], sizeof F.url_of[0], "%s", relay.url);
    fu_start_all(&F);
    fu_wait_joined(&F);
    for (unsigned t = a_ready ? 0 : 1; t < 2; t++) { /* each release ready: an empty stage holds peers for a lease */
        char o[16] = "";
        for (long long end = fu_mono_ms() + 10000; strcmp(o, "hold") != 0 && fu_mono_ms() < end; nu_sleep_ms(50))
            fu_outlook(&F, t, o, sizeof o);
        cr_assert_str_eq(o, "hold", "tracker %s ready", F.name[t]);
    }
}

/* The HINTs among n answered requests to t. Every HINT is checked against
 * the quota over the whole test. */
static unsigned count_hints(unsigned t, const fu_req *r, unsigned n)
{
    unsigned got = 0;
    for (unsigned k = 0; k < n; k++) {
        if (r[k].done)
            unheard[r[k].uid] = 0;
        if (r[k].done && r[k].a.type == UG_TYPE_HINT && !hinted[r[k].uid]) {
            hinted[r[k].uid] = true;
            nhinted++, by[t]++, got++;
        }
    }
    cr_assert_leq(nhinted, QUOTA, "%u distinct uids hold a valid HINT, over the quota of %u", nhinted, QUOTA);
    return got;
}

/* n new peers ask tracker t as the reference peer does (resends on
 * silence); the HINTs among them. */
static unsigned ask(unsigned t, unsigned n)
{
    static fu_req r[64];
    cr_assert_leq(n, 64);
    for (unsigned k = 0; k < n; k++)
        r[k] = (fu_req){.uid = 1 + next_uid++, .tracker = t};
    cr_assert_lt(next_uid, UIDS);
    fu_fire(&F, r, n);
    fu_converse(&F, r, n);
    return count_hints(t, r, n);
}

/* load() reads answers for a while without resending: on a busy machine a
 * HINT can come later than that, and its uid would hold a grant the test
 * never counted. Each such peer asks its tracker again as the reference
 * peer does (a granted uid gets its HINT again), so the count compared
 * with Redis is what the peers really hold. */
static void reask_unheard(void)
{
    static fu_req r[64];
    for (unsigned t = 0; t < 2; t++) {
        unsigned n = 0;
        for (uint64_t uid = 1; uid <= next_uid; uid++) {
            if (unheard[uid] != t + 1)
                continue;
            r[n++] = (fu_req){.uid = uid, .tracker = t};
            if (n == 64)
                fu_fire(&F, r, n), fu_converse(&F, r, n), count_hints(t, r, n), n = 0;
        }
        if (n)
            fu_fire(&F, r, n), fu_converse(&F, r, n), count_hints(t, r, n);
    }
}

/* Load: n new peers fired at t, answers read for ms (no resend); the HINTs. */
static unsigned load(unsigned t, unsigned n, long ms)
{
    static fu_req r[64];
    for (unsigned k = 0; k < n; k++)
        r[k] = (fu_req){.uid = 1 + next_uid++, .tracker = t};
    cr_assert_lt(next_uid, UIDS);
    long long t0 = fu_mono_ms();
    fu_fire(&F, r, n);
    fu_collect(&F, r, n, ms);
    while (fu_mono_ms() - t0 < ms) /* a steady pace, whatever the answers */
        nu_sleep_ms(5);
    for (unsigned k = 0; k < n; k++)
        unheard[r[k].uid] = (unsigned char)(t + 1);
    return count_hints(t, r, n);
}

/* Asks t in rounds of 8 until the fleet has offered `total` or ms pass. */
static void fill(unsigned t, unsigned total, long ms)
{
    for (long long end = fu_mono_ms() + ms; nhinted < total && fu_mono_ms() < end; nu_sleep_ms(20))
        ask(t, 8);
}

static long long qfield(const char *field)
{
    return ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all %s", field);
}

/* Redis counts what was offered, once every tracker told it: the quota, no more. */
static void check_counted(void)
{
    long long n = -1;
    reask_unheard();
    for (long long end = fu_mono_ms() + 10000; (n = qfield("n")) != nhinted && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert_eq(n, nhinted, "Redis counts %lld, %u uids hold a HINT", n, nhinted);
    cr_assert_leq(n, (long long)QUOTA);
}

static bool logged(unsigned t, const char *what, int *times)
{
    static char err[1 << 16];
    nu_stderr(&F.node[t], err, sizeof err);
    *times = 0;
    for (const char *p = strstr(err, what); p; p = strstr(p + 1, what))
        (*times)++;
    return *times > 0;
}

/* A partition: a's connection to Redis stalls (the relay stops) while a is
 * busy. a stops offering within its cutoff (4 heartbeats, 2 s, after the
 * last one Redis took), not after lease_timeout; a forget once lease_timeout
 * passed writes off only what a cannot have spent; b offers the rest; when
 * the partition heals, a tells what it granted, and the fleet has offered
 * exactly the quota. */
Test(fleet_faults, a_partition_and_a_forget_keep_the_quota)
{
    start(400, ", lease_timeout: 4, lease: 10", RL_PASS, 0, true);
    for (long long end = fu_mono_ms() + 1500; fu_mono_ms() < end;) /* a busy: 16 peers every 0.1 s */
        load(0, 16, 100);
    long long held = qfield("l:a");
    rl_stall(&relay);
    long long t0 = fu_mono_ms(), last = -1;
    unsigned during = 0;
    while (fu_mono_ms() - t0 < 4500) { /* peers keep coming to a */
        unsigned got = load(0, 16, 100);
        during += got;
        if (got)
            last = fu_mono_ms() - t0;
    }
    fprintf(stderr, "note: fleet.partition: a held %lld slots (told or not) when its Redis connection stalled; it "
                    "offered %u more, the last %lld ms after the stall (cutoff 2000 ms after its last heartbeat)\n",
            held, during, last);
    cr_assert_leq(last, 2300, "a stopped offering within its cutoff (%lld ms after the stall)", last);
    cr_assert_leq(during, (unsigned)(held > 0 ? held : 0), "a offered only from what it held");
    json_t *r = fu_ctl(&F, 1, "{\"cmd\":\"fleet\",\"sub\":\"forget\",\"tracker\":\"a\"}");
    cr_assert(json_is_true(json_object_get(r, "ok")), "forget a after lease_timeout: %s", json_dumps(r, 0));
    long long freed = json_integer_value(json_object_get(r, "slots")), kept = json_integer_value(json_object_get(r, "kept"));
    json_decref(r);
    cr_assert_geq(kept, during, "the slots a spent in the partition stay counted (kept %lld, spent %u)", kept, during);
    unsigned before = nhinted;
    for (long long end = fu_mono_ms() + 20000; nhinted < QUOTA && fu_mono_ms() < end;)
        load(1, 32, 100);
    fill(1, QUOTA, 10000);
    fprintf(stderr, "note: fleet.partition: forget released %lld slots and kept %lld; b then offered %u\n", freed,
            kept, nhinted - before);
    cr_assert_eq(qfield("l:a"), kept, "b could not offer what a may have spent: its lease is intact");
    rl_heal(&relay);
    fill(1, QUOTA, 20000); /* a comes back, tells, returns the rest: b offers it */
    check_counted();
    int times;
    cr_assert(!logged(0, "beyond this tracker's lease", &times), "a told no grant Redis had written off");
    fprintf(stderr, "note: fleet.partition: healed: %u of %u offered in all (a %u, b %u), Redis counts %lld\n", nhinted,
            QUOTA, by[0], by[1], qfield("n"));
    cr_assert_eq(nhinted, QUOTA, "the whole quota is offered in the end, no more");
}

/* The cutoff itself: a partitioned tracker with unused slots offers from
 * them at first, and nothing once 4 heartbeats (2 s) passed since the last
 * one Redis took, long before lease_timeout; healed, it offers again. */
Test(fleet_faults, a_partitioned_tracker_stops_at_its_cutoff)
{
    start(100, ", lease_timeout: 10, lease: 10", RL_PASS, 0, true);
    long long unused = 0;
    for (long long end = fu_mono_ms() + 10000; unused < 2 && fu_mono_ms() < end;) {
        load(0, 4, 100); /* busy: it keeps a block */
        unused = fu_stage_int(&F, 0, "lease_unused_here");
    }
    cr_assert_geq(unused, 2, "a holds unused slots");
    rl_stall(&relay);
    long long t0 = fu_mono_ms();
    unsigned first = ask(0, 1);
    while (fu_mono_ms() - t0 < 2500)
        nu_sleep_ms(50);
    unsigned after = ask(0, 4);
    char o[16];
    fu_outlook(&F, 0, o, sizeof o);
    fprintf(stderr, "note: fleet.cutoff: a held %lld unused slots at the stall: offered %u at once, %u of 4 peers 2.5 s "
                    "later (outlook %s)\n", unused, first, after, o);
    cr_assert_eq(first, 1, "within its cutoff a spends what it holds");
    cr_assert_eq(after, 0, "past its cutoff a offers nothing, slots or not");
    cr_assert_str_eq(o, "soon", "its peers are asked back soon, not told the quota is spent");
    rl_heal(&relay);
    fu_wait_joined(&F);
    cr_assert_geq(ask(0, 4), 1, "healed, a offers again");
    check_counted();
}

/* A tracker stopped (SIGSTOP) with HELLOs in flight, past its lease
 * timeout, forgotten meanwhile, then resumed: it is fenced on resume, and
 * the grants it made before the stop were never written off, so telling
 * them passes no quota. */
Test(fleet_faults, a_tracker_stopped_past_its_lease_timeout_and_forgotten)
{
    start(300, ", lease_timeout: 3, lease: 10", RL_PASS, 0, true);
    for (long long end = fu_mono_ms() + 1500; fu_mono_ms() < end;) /* a busy */
        load(0, 16, 100);
    static fu_req r[16];
    for (unsigned k = 0; k < 16; k++)
        r[k] = (fu_req){.uid = 1 + next_uid++, .tracker = 0};
    fu_fire(&F, r, 16);
    nu_pause(&F.node[0]); /* mid-load */
    long long t0 = fu_mono_ms();
    while (fu_mono_ms() - t0 < 3500)
        nu_sleep_ms(100);
    json_t *j = fu_ctl(&F, 1, "{\"cmd\":\"fleet\",\"sub\":\"forget\",\"tracker\":\"a\"}");
    cr_assert(json_is_true(json_object_get(j, "ok")), "forget the stopped a: %s", json_dumps(j, 0));
    long long freed = json_integer_value(json_object_get(j, "slots")), kept = json_integer_value(json_object_get(j, "kept"));
    json_decref(j);
    for (long long end = fu_mono_ms() + 15000; nhinted < QUOTA && fu_mono_ms() < end;)
        load(1, 32, 100);
    fill(1, QUOTA, 5000);
    unsigned b_before = by[1];
    kill(F.node[0].pid, SIGCONT);
    fu_converse(&F, r, 16); /* what a answers the HELLOs it had when stopped */
    for (unsigned k = 0; k < 16; k++)
        if (r[k].done && r[k].a.type == UG_TYPE_HINT && !hinted[r[k].uid])
            hinted[r[k].uid] = true, nhinted++, by[0]++;
    cr_assert_leq(nhinted, QUOTA, "%u distinct uids hold a HINT", nhinted);
    for (long long end = fu_mono_ms() + 15000; nhinted < QUOTA && fu_mono_ms() < end;)
        load(1, 32, 100);
    fill(1, QUOTA, 10000);
    check_counted();
    int times;
    cr_assert(!logged(0, "beyond this tracker's lease", &times), "a told no grant Redis had written off");
    fprintf(stderr, "note: fleet.sigstop: a stopped 3.5 s (lease_timeout 3 s) and forgotten: released %lld, kept %lld; "
                    "b offered %u meanwhile; %u of %u offered in all, Redis counts %lld\n",
            freed, kept, b_before, nhinted, QUOTA, qfield("n"));
    cr_assert_eq(nhinted, QUOTA);
}

/* One LEASE reply rewritten to 1,000,000 slots: a believes none of it,
 * says so once and leases no more; the quota holds and b offers the rest. */
Test(fleet_faults, a_rewritten_lease_reply_stops_leasing)
{
    start(40, ", lease: 5", RL_LEASE_NTH, 3, true);
    for (long long end = fu_mono_ms() + 8000; fu_mono_ms() < end && nhinted < QUOTA; nu_sleep_ms(20))
        ask(0, 8);
    unsigned a_got = by[0];
    int times;
    for (long long end = fu_mono_ms() + 3000; !logged(0, "no script can give", &times) && fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert_eq(times, 1, "the bad reply is logged once (%d)", times);
    json_t *j = fu_ctl(&F, 0, "{\"cmd\":\"status\"}");
    const char *e = json_string_value(json_object_get(json_object_get(json_object_get(j, "tracker"), "fleet"), "error"));
    cr_assert(e && strstr(e, "leasing stopped"), "status says why: %s", e ? e : "(null)");
    json_decref(j);
    cr_assert_lt(a_got, QUOTA, "a stopped leasing (%u offers)", a_got);
    fill(1, QUOTA, 20000);
    check_counted();
    fprintf(stderr, "note: fleet.corrupt: LEASE reply #3 said 1000000: a offered %u and stopped leasing, b %u; %u of %u "
                    "in all\n", a_got, by[1], nhinted, QUOTA);
    cr_assert_eq(nhinted, QUOTA, "the slots a never took come back to the fleet (n %lld, leased %lld, l:a %lld, l:b %lld)",
                 qfield("n"), qfield("leased"), qfield("l:a"), qfield("l:b"));
}

/* 30% of a's replies from Redis get their integers rewritten at random:
 * a survives, and the fleet never offers more than the quota. */
Test(fleet_faults, corrupted_replies_never_pass_the_quota)
{
    start(40, ", lease: 5", RL_RANDOM, 30, false);
    for (long long end = fu_mono_ms() + 8000; fu_mono_ms() < end; nu_sleep_ms(20)) {
        ask(0, 8);
        ask(1, 2);
    }
    json_t *j = fu_ctl(&F, 0, "{\"cmd\":\"status\"}");
    cr_assert(json_is_object(json_object_get(j, "tracker")), "a still answers");
    json_decref(j);
    fprintf(stderr, "note: fleet.corrupt30: with 30%% of a's replies rewritten, a offered %u, b %u: %u of %u\n", by[0],
            by[1], nhinted, QUOTA);
    cr_assert_leq(nhinted, QUOTA);
    cr_assert_leq(qfield("n"), (long long)QUOTA, "Redis counts no more than the quota");
}

