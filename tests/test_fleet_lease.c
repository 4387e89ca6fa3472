/* Fleet mode serves like one tracker (issue 22): a burst over three trackers, a raised quota with traffic at one, the WAIT a lease shortfall gives; real upgate-nodes on a real Redis. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fleetutil.h"
#include "testutil.h"

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

TestSuite(fleet_lease, .init = setup, .fini = teardown, .timeout = 120);

/* Until every tracker's first stage would hold a peer back for a lease
 * (joined, its release ready, the fleet with room): 10 s at most. */
static void wait_ready(void)
{
    fu_wait_joined(&F);
    for (unsigned t = 0; t < F.n; t++) {
        char o[16] = "";
        for (long long end = fu_mono_ms() + 10000; fu_mono_ms() < end; nu_sleep_ms(50)) {
            fu_outlook(&F, t, o, sizeof o);
            if (strcmp(o, "hold") == 0)
                break;
        }
        cr_assert_str_eq(o, "hold", "tracker %s ready to lease", F.name[t]);
    }
}

typedef struct {
    unsigned hints, soon, spent, rate, silent, other;
    unsigned by[FU_MAX];
} tally;

static void count(const fu_req *r, size_t n, tally *c)
{
    for (size_t k = 0; k < n; k++) {
        const fu_answer a = r[k].a;
        if (!r[k].done)
            c->silent++;
        else if (a.type == UG_TYPE_HINT)
            c->hints++, c->by[r[k].tracker]++;
        else if (a.type == UG_TYPE_WAIT && a.why == UG_WHY_RATE)
            c->rate++;
        else if (fu_soon(a))
            c->soon++;
        else if (fu_spent(a))
            c->spent++;
        else
            c->other++;
    }
}

/* Three trackers, one Redis, quota 200 and no rate; 600 eligible uids
 * send one HELLO each within 0.3 s, 80/15/5 over the trackers, and resend
 * it on silence as the reference peer does. One tracker alone offers 200:
 * the fleet offers at least 190 to these first HELLOs; a peer told to wait
 * while the fleet has room comes back within a minute, never an hour, and
 * never hears "rate limited"; the ones that come back get the rest. */
Test(fleet_lease, a_burst_is_served_like_one_tracker)
{
    fu_init(&F, 3, NULL, "", "  - {name: all, quota: 200}\n");
    fu_start_all(&F);
    wait_ready();
    static fu_req r[600];
    for (unsigned k = 0; k < 600; k++) {
        r[k].uid = 5000 + k;
        r[k].tracker = k % 20 < 16 ? 0 : k % 20 < 19 ? 1 : 2;
    }
    fu_build(&F, r, 600);
    long long t0 = fu_mono_ms();
    for (unsigned part = 0; part < 3; part++) { /* 200 HELLOs every 0.1 s */
        fu_resend(&F, r + 200 * part, 200);
        if (part < 2)
            nu_sleep_ms(100);
    }
    long long fired = fu_mono_ms() - t0;
    fu_converse(&F, r, 600);
    tally c = {0};
    count(r, 600, &c);
    long long held = fu_fleet_int(&F, 0, "held_for_lease") + fu_fleet_int(&F, 1, "held_for_lease") +
                     fu_fleet_int(&F, 2, "held_for_lease");
    fprintf(stderr,
            "note: fleet.burst: 600 first HELLOs in %lld ms (480/90/30 over a/b/c), quota 200: %u offered "
            "(a=%u b=%u c=%u; goal >= 190, one tracker alone: 200), %lld held back for a lease and served on "
            "resend or told; WAIT quota soon (retry <= 60 s): %u, spent: %u, rate: %u, unanswered: %u\n",
            fired, c.hints, c.by[0], c.by[1], c.by[2], held, c.soon, c.spent, c.rate, c.silent);
    cr_assert_leq(fired, 400, "the burst took %lld ms", fired);
    cr_assert_geq(c.hints, 190, "first HELLOs offered %u of 200", c.hints);
    cr_assert_leq(c.hints, 200);
    cr_assert_eq(c.rate, 0, "no rate is set: nobody hears \"rate limited\"");
    cr_assert_eq(c.other + c.silent, 0, "every peer got a HINT or a WAIT for the quota");
    if (c.hints < 200)
        cr_assert_eq(c.spent, 0, "the fleet had room left (%u offered), yet %u peers were told to come back in an "
                                 "hour", c.hints, c.spent);
    /* those told to come back soon do (now, not in a minute): the rest of the quota, and no more */
    static fu_req again[600];
    size_t n = 0;
    for (unsigned k = 0; k < 600; k++)
        if (r[k].a.type != UG_TYPE_HINT)
            again[n++] = (fu_req){.uid = r[k].uid, .tracker = r[k].tracker};
    unsigned total = c.hints;
    for (long long end = fu_mono_ms() + 20000; total < 200 && fu_mono_ms() < end;) {
        fu_fire(&F, again, n);
        fu_converse(&F, again, n);
        size_t m = 0;
        for (size_t k = 0; k < n; k++)
            if (again[k].done && again[k].a.type == UG_TYPE_HINT)
                total++;
            else if (!fu_spent(again[k].a))
                again[m++] = (fu_req){.uid = again[k].uid, .tracker = again[k].tracker};
        n = m;
    }
    fprintf(stderr, "note: fleet.burst: after the peers told \"soon\" came back: %u of 200 offered\n", total);
    cr_assert_eq(total, 200, "the whole quota, no more");
    long long counted = 0;
    for (long long end = fu_mono_ms() + 5000; (counted = ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n")) != 200 &&
                                              fu_mono_ms() < end;)
        nu_sleep_ms(50);
    cr_assert_eq(counted, 200, "Redis counts %lld", counted);
}

/* Asks tracker t with fresh uids from *next, as peers that come back at
 * once when told "soon", until `want` HINTs or ms pass; the HINTs. A peer
 * told to come back in an hour while the fleet has room fails the test. */
static unsigned ask_until(unsigned t, uint64_t *next, unsigned want, long ms, unsigned *spent)
{
    unsigned got = 0;
    fu_req r[8];
    size_t n = 0;
    for (long long end = fu_mono_ms() + ms; got < want && fu_mono_ms() < end;) {
        while (n < 8 && got + n < want)
            r[n++] = (fu_req){.uid = (*next)++, .tracker = t};
        fu_fire(&F, r, n);
        fu_converse(&F, r, n);
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
            cr_assert(!(r[k].a.type == UG_TYPE_WAIT && r[k].a.why == UG_WHY_RATE), "no rate is set");
            if (r[k].a.type == UG_TYPE_HINT)
                got++;
            else if (fu_spent(r[k].a))
                (*spent)++;
            else
                r[m++] = (fu_req){.uid = r[k].uid, .tracker = t};
        }
        n = m;
        nu_sleep_ms(20);
    }
    return got;
}

/* The stranded slots: a quota of 37 spent over three trackers, b
 * and c quiet with slots of their own, the quota raised to 40 with
 * traffic only at a: a offers the 3 new slots within 5 s, and tells no
 * peer "quota spent" meanwhile. */
Test(fleet_lease, a_raised_quota_is_fully_offered_within_5s)
{
    fu_init(&F, 3, NULL, "", "  - {name: all, quota: 37}\n");
    fu_start_all(&F);
    wait_ready();
    uint64_t next = 1;
    unsigned spent = 0;
    cr_assert_eq(ask_until(1, &next, 4, 10000, &spent), 4);
    cr_assert_eq(ask_until(2, &next, 4, 10000, &spent), 4);
    cr_assert_eq(ask_until(0, &next, 29, 20000, &spent), 29);
    cr_assert_eq(spent, 0, "room left, yet %u peers told \"quota spent\"", spent);
    long long end = fu_mono_ms() + 5000;
    while (ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all n") != 37 && fu_mono_ms() < end)
        nu_sleep_ms(50);
    cr_assert_eq(ask_until(0, &next, 1, 3000, &spent), 0, "37 of 37 offered");
    snprintf(F.stages, sizeof F.stages, "  - {name: all, quota: 40}\n");
    for (unsigned t = 0; t < 3; t++)
        fu_reload(&F, t);
    long long t0 = fu_mono_ms();
    spent = 0;
    unsigned got = ask_until(0, &next, 3, 5000, &spent);
    long long took = fu_mono_ms() - t0;
    fprintf(stderr, "note: fleet.raise: quota 37 -> 40 with traffic only at a: %u of 3 new slots offered in %lld ms "
                    "(goal 5000), %u peers told \"spent\" meanwhile\n", got, took, spent);
    cr_assert_eq(got, 3, "a offers the raised quota's 3 slots within 5 s (%u)", got);
    cr_assert_eq(spent, 0, "no peer hears \"quota spent\" while the fleet has room");
    cr_assert_eq(ask_until(0, &next, 1, 3000, &spent), 0, "40 of 40: no more");
}

/* Trackers with nothing to do hold nothing: their slots go back within a
 * few seconds, so another tracker can offer the whole quota. */
Test(fleet_lease, idle_slots_flow_back)
{
    fu_init(&F, 2, NULL, "", "  - {name: all, quota: 30}\n");
    fu_start_all(&F);
    wait_ready();
    uint64_t next = 1;
    unsigned spent = 0;
    cr_assert_eq(ask_until(1, &next, 5, 10000, &spent), 5);
    long long t0 = fu_mono_ms(), lb = -1;
    while ((lb = ru_int(&F.redis, "HGET ug:{default}:2.0.0:q:all l:b")) != 0 && fu_mono_ms() - t0 < 10000)
        nu_sleep_ms(50);
    fprintf(stderr, "note: fleet.idle: b quiet, its lease back to the fleet after %lld ms\n", fu_mono_ms() - t0);
    cr_assert_eq(lb, 0, "b returned what it held");
    cr_assert_eq(ask_until(0, &next, 25, 20000, &spent), 25, "a offers the rest of the quota");
    cr_assert_eq(spent, 0);
}
