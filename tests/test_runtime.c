/* The runtime through the real plugin: rollouts and releases, WAIT before signatures, reloads, control, outcomes. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "plugin_entry.h"
#include "guard/guard.h"
#include "testutil.h"

static fx_t F;

/* A version 1 policy gets the fixture's release line; a version 2 one
 * (rollouts:) names its own. */
static void write_policy(const char *policy)
{
    if (strncmp(policy, "rollouts:", 9) == 0 || strncmp(policy, "release:", 8) == 0)
        fx_policy_bare(&F, policy);
    else
        fx_policy(&F, policy);
}

static void start(const char *policy)
{
    char err[512];
    fx_init(&F, 2);
    write_policy(policy);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "create failed: %s", err);
}

static void restart(void)
{
    char err[512];
    fx_stop(&F);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "restart failed: %s", err);
}

static void reload(const char *policy)
{
    char err[512];
    write_policy(policy);
    cr_assert_eq(F.api->reload(F.inst, NULL, err, sizeof err), 0, "reload: %s", err);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(runtime, .fini = teardown, .timeout = 120);

static bool hint(fx_reply r)
{
    return r.type == UG_TYPE_HINT;
}

static uint64_t why(fx_reply r)
{
    cr_assert_eq(r.type, UG_TYPE_WAIT, "want a WAIT, got type %d", r.type);
    return r.wait.why;
}

static json_t *control(const char *req, bool want_ok)
{
    int rc;
    const char *out = fx_control(&F, req, &rc);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    cr_assert_not_null(o, "%s: reply is not JSON (%s): %.200s", req, je.text, out);
    cr_assert_eq(json_is_true(json_object_get(o, "ok")), want_ok, "%s: %.300s", req, out);
    cr_assert_eq(rc, want_ok ? 0 : -1, "%s: rc %d", req, rc);
    return o;
}

/* The status of one stage: rollouts[r].stages[s].key */
static json_t *stage_status(json_t *status, size_t r, size_t s)
{
    return json_array_get(json_object_get(json_array_get(json_object_get(status, "rollouts"), r), "stages"), s);
}

/* ---- rule 4: no signature work for a WAIT ----------------------------------- */

Test(runtime, a_wait_costs_no_signature_check)
{
    /* verify: claims: a rollout with a uids stage verifies first by default
     * (issue 21 §3; defences::a_uids_stage_tells_a_stranger_nothing...) */
    start("targets: [\"1.4.0\"]\nverify: claims\nstages:\n  - {name: canary, uids: [7]}\n");
    for (uint64_t uid = 100; uid < 150; uid++)
        cr_assert_eq(why(fx_ask(&F, uid & 1, "10.0.0.1", uid, "1.4.0", NULL)), UG_WHY_NOT_SELECTED);
    cr_expect_eq(fx_stat(&F, "signature_checks"), 0, "50 returning peers told to wait: no Ed25519");
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 7, "1.4.0", NULL)));
    cr_expect_eq(fx_stat(&F, "signature_checks"), 2, "a HINT is verified: credential and HELLO");
    /* a forged credential on a peer that would be told to wait: the same
     * WAIT (nothing is given), no signature work; on a selected peer: dropped */
    fx_opts forged = {.cred_exp = F.now + 1};
    uint8_t hello[UG_DGRAM_MAX];
    size_t len = fx_hello(&F, hello, 200, "1.4.0", &forged);
    hello[len - 1] ^= 1; /* the HELLO's signature */
    cr_expect_eq(why(fx_send(&F, 0, "10.0.0.1", 4000, hello, len)), UG_WHY_NOT_SELECTED);
    len = fx_hello(&F, hello, 7, "1.4.0", &forged);
    hello[len - 1] ^= 1;
    cr_expect_eq(fx_send(&F, 0, "10.0.0.1", 4001, hello, len).v, UG_VERDICT_DROP, "a HINT needs rule 4");
}

Test(runtime, verify_always_checks_first)
{
    start("targets: [\"1.4.0\"]\nverify: always\nstages:\n  - {name: canary, uids: [7]}\n");
    cr_assert_eq(why(fx_ask(&F, 0, "10.0.0.1", 100, "1.4.0", NULL)), UG_WHY_NOT_SELECTED);
    cr_expect_eq(fx_stat(&F, "signature_checks"), 2);
    uint8_t hello[UG_DGRAM_MAX];
    size_t len = fx_hello(&F, hello, 200, "1.4.0", NULL);
    hello[len - 1] ^= 1;
    cr_expect_eq(fx_send(&F, 0, "10.0.0.1", 4000, hello, len).v, UG_VERDICT_DROP,
                 "verify: always drops a forged HELLO even where the answer would be WAIT");
}

/* ---- reloads: rate, retransmits, stage names ---------------------------------- */

Test(runtime, a_reload_does_not_refill_the_rate)
{
    const char *p = "targets: [\"1.4.0\"]\nstages:\n  - {name: slow, rate: 2}\n";
    start(p);
    unsigned hints = 0;
    for (uint64_t uid = 1; uid <= 10; uid++)
        hints += hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL));
    cr_assert_eq(hints, 2, "a burst of one second's worth");
    for (int i = 0; i < 20; i++) {
        reload(p);
        hints += hint(fx_ask(&F, 0, "10.0.0.1", 100 + (uint64_t)i, "1.4.0", NULL));
    }
    cr_expect_eq(hints, 2, "20 reloads in the same second gave %u offers", hints);
    F.now += 1;
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 200, "1.4.0", NULL)), "a second later the bucket refills");
}

Test(runtime, a_retransmit_does_not_outlive_a_pause)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - name: all\n");
    uint8_t hello[UG_DGRAM_MAX];
    size_t len = fx_hello(&F, hello, 5, "1.4.0", NULL);
    cr_assert(hint(fx_send(&F, 0, "10.0.0.1", 4000, hello, len)));
    cr_assert(hint(fx_send(&F, 0, "10.0.0.1", 4000, hello, len)));
    cr_assert_eq(fx_stat(&F, "retransmits_answered"), 1);
    reload("targets: [\"1.4.0\"]\npaused: true\nstages:\n  - name: all\n");
    cr_expect_eq(why(fx_send(&F, 0, "10.0.0.1", 4000, hello, len)), UG_WHY_PAUSED, "the old HINT is not resent");
    reload("targets: [\"1.4.0\"]\nstages:\n  - name: all\n");
    json_decref(control("{\"cmd\":\"halt\",\"rollout\":\"default\",\"why\":\"crash on start\"}", true));
    cr_expect_eq(why(fx_send(&F, 0, "10.0.0.1", 4000, hello, len)), UG_WHY_PAUSED, "nor after a halt");
}

Test(runtime, stage_names_beyond_1024_reloads)
{
    char p[256];
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: s-0, quota: 5}\n");
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)));
    for (int i = 1; i <= 1100; i++) {
        snprintf(p, sizeof p, "targets: [\"1.4.0\"]\nstages:\n  - {name: s-%d, quota: 5}\n", i);
        reload(p);
    }
    reload("targets: [\"1.4.0\"]\nstages:\n  - {name: s-0, quota: 5}\n");
    json_t *st = control("{\"cmd\":\"status\"}", true);
    cr_expect_eq(json_integer_value(json_object_get(stage_status(st, 0, 0), "granted")), 1,
                 "back to the first stage name, after 1,100 others: its grant is still counted");
    json_decref(st);
}

/* ---- rollouts and releases ----------------------------------------------------- */

Test(runtime, two_rollouts_two_platforms_two_manifests)
{
    fx_init(&F, 2);
    fx_manifest_at(&F, "win.manifest", "2.0.0");
    fx_manifest_at(&F, "linux.manifest", "2.1.0");
    write_policy("rollouts:\n"
                  "  - {name: win, release: win.manifest, targets: [\"1.4.0\"], plat: [windows-x86_64],\n"
                  "     stages: [{name: all, quota: 1}]}\n"
                  "  - {name: linux, release: linux.manifest, targets: [\"1.4.0\"], plat: [linux-x86_64],\n"
                  "     stages: [{name: all, quota: 1}]}\n");
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    fx_reply w = fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.plat = "windows-x86_64"});
    fx_reply l = fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", &(fx_opts){.plat = "linux-x86_64"});
    cr_assert(hint(w) && hint(l));
    cr_expect_eq(w.hint.rel.to.part[1], 0);
    cr_expect_eq(l.hint.rel.to.part[1], 1, "the linux peer gets the linux release");
    cr_expect(strstr(l.hint.rel.urls[0], "linux.manifest"));
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", &(fx_opts){.plat = "linux-x86_64"})), UG_WHY_QUOTA,
                 "each rollout has its own quota");
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 4, "1.4.0", NULL)), UG_WHY_NOT_TARGETED, "no plat: no rollout");
}

Test(runtime, a_new_release_starts_whole_and_the_old_one_returns)
{
    fx_init(&F, 1);
    fx_manifest_at(&F, "a.manifest", "2.0.0");
    fx_manifest_at(&F, "b.manifest", "2.0.1");
    const char *pa = "release: a.manifest\ntargets: [\"1.4.0\"]\nstages:\n  - {name: first, quota: 2}\n";
    const char *pb = "release: b.manifest\ntargets: [\"1.4.0\"]\nstages:\n  - {name: first, quota: 2}\n";
    char err[512];
    write_policy(pa);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)));
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL)));
    cr_assert_eq(why(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL)), UG_WHY_QUOTA);
    reload(pb);
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL)), "2.0.1: the quota is whole");
    cr_expect_eq(fx_stat(&F, "hints_new"), 3);
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)), "uid 1 is chosen again by the stage");
    cr_expect_eq(fx_stat(&F, "hints_new"), 4, "not sticky: a new grant for 2.0.1");
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 4, "1.4.0", NULL)), UG_WHY_QUOTA);
    reload(pa);
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL)), "back to 2.0.0: its grants are found again");
    cr_expect_eq(fx_stat(&F, "hints_sticky"), 1);
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 5, "1.4.0", NULL)), UG_WHY_QUOTA, "and its quota is still spent");
}

/* A ramp is a function of the clock: at four moments the selected uids are
 * exactly those of the bucket formula, and each set holds the one before. */
Test(runtime, a_ramp_nests_and_follows_the_formula)
{
    start("rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n    stages:\n"
          "      - {name: ramp, percent: {from: 1, to: 100, start: 2026-09-21T00:00:00Z, end: 2026-09-28T00:00:00Z}}\n");
    static bool prev[10001];
    int64_t start_t = 1789948800; /* 2026-09-21T00:00:00Z */
    int64_t at[4] = {start_t - 1, start_t, start_t + 2 * 86400 + 1234, start_t + 7 * 86400};
    for (int k = 0; k < 4; k++) {
        F.now = (uint64_t)at[k];
        uint32_t bp = at[k] < start_t ? 0 : at[k] >= start_t + 7 * 86400 ? 10000
                      : (uint32_t)(100 + (int64_t)9900 * (at[k] - start_t) / (7 * 86400));
        unsigned n = 0;
        for (uint64_t uid = 1; uid <= 10000; uid++) {
            ug_decision d = fx_decide(&F, uid, "1.4.0", "10.0.0.1", 0);
            bool sel = d.answer == UG_ANSWER_HINT;
            cr_assert_eq(sel, ug_percent_bucket("desk", 4, uid) < bp, "uid %lu at moment %d", (unsigned long)uid, k);
            cr_assert(!prev[uid] || sel, "uid %lu left the ramp at moment %d", (unsigned long)uid, k);
            prev[uid] = sel;
            n += sel;
        }
        cr_log_info("moment %d: %u.%02u%% in force, %u of 10000 selected", k, bp / 100, bp % 100, n);
    }
}

/* decide() for uid, with memo m (NULL: none), changing nothing. */
static ug_decision decide_memo(uint64_t uid, ug_bucket_memo *m)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000001)};
    ug_claims c = {.size = sizeof c, .kind = UG_CLAIM_HELLO, .uid = uid, .ver = "1.4.0",
                   .src = (struct sockaddr *)&sa, .srclen = sizeof sa, .memo = m};
    ug_decision d = {.size = sizeof d};
    cr_assert_eq(F.api->decide(F.inst, 0, &c, &d), 0);
    return d;
}

/* The first stage of six whose percent holds uid (salts a b c d a e, or
 * their permutation after the reload), by the formula. */
static const char *memo_formula(uint64_t uid, const char *const salts[6])
{
    static const char *const names[6] = {"p1", "p2", "p3", "p4", "p5", "p6"};
    static const uint32_t bp[6] = {300, 500, 700, 1100, 1300, 1700};
    for (int k = 0; k < 6; k++)
        if (ug_percent_bucket(salts[k], strlen(salts[k]), uid) < bp[k])
            return names[k];
    return NULL;
}

#define MEMO_POLICY(A, B, C, D, E)                                                                              \
    "targets: [\"1.4.0\"]\nstages:\n  - {name: p1, percent: 3, salt: " A "}\n"                                 \
    "  - {name: p2, percent: 5, salt: " B "}\n  - {name: p3, percent: 7, salt: " C "}\n"                          \
    "  - {name: p4, percent: 11, salt: " D "}\n  - {name: p5, percent: 13, salt: " A "}\n"                        \
    "  - {name: p6, percent: 17, salt: " E "}\n"

/* ABI minor 3's percent-bucket memo changes no answer: over 20,000 uids and
 * six percent stages on five salts (more than the memo's slots, one shared),
 * a fresh memo, a filled one, the same memos after a reload that permutes
 * the salts, and a memo handed to another uid all answer as no memo does,
 * and as the formula says. */
Test(runtime, a_bucket_memo_changes_no_answer)
{
    enum { N = 20000 };
    static ug_bucket_memo memo[N + 1];
    const char *const before[6] = {"sa", "sb", "sc", "sd", "sa", "se"}, *const after[6] = {"sc", "se", "sa", "sb", "sc", "sd"};
    start(MEMO_POLICY("sa", "sb", "sc", "sd", "se"));
    for (int round = 0; round < 2; round++) {
        const char *const *salts = round == 0 ? before : after;
        unsigned hinted = 0;
        for (uint64_t uid = 1; uid <= N; uid++) {
            ug_decision plain = decide_memo(uid, NULL);
            const char *want = memo_formula(uid, salts);
            cr_assert_eq(plain.answer == UG_ANSWER_HINT, want != NULL, "uid %lu round %d", (unsigned long)uid, round);
            cr_assert(!want || strcmp(plain.stage, want) == 0, "uid %lu: %s, formula %s", (unsigned long)uid, plain.stage, want);
            for (int again = 0; again < 2; again++) { /* round 0: fresh then filled; round 1: last build's memo */
                ug_decision m = decide_memo(uid, &memo[uid]);
                cr_assert_eq(m.answer, plain.answer, "uid %lu round %d pass %d", (unsigned long)uid, round, again);
                cr_assert_eq(m.why, plain.why, "uid %lu", (unsigned long)uid);
                cr_assert(m.stage == plain.stage || (m.stage && plain.stage && strcmp(m.stage, plain.stage) == 0),
                          "uid %lu: memo %s, none %s", (unsigned long)uid, m.stage, plain.stage);
            }
            cr_assert_neq(memo[uid].mark, 0u, "uid %lu: the memo was filled", (unsigned long)uid);
            hinted += plain.answer == UG_ANSWER_HINT;
        }
        cr_assert(hinted > N / 3 && hinted < 2 * N / 3, "about 46%% selected, got %u of %d", hinted, N);
        if (round == 0)
            reload(MEMO_POLICY("sc", "se", "sa", "sb", "sd"));
    }
    for (uint64_t uid = 1; uid < N; uid++) { /* uid + 1's memo for uid: misuse, still no other answer */
        ug_decision plain = decide_memo(uid, NULL), m = decide_memo(uid, &memo[uid + 1]);
        cr_assert_eq(m.answer, plain.answer, "uid %lu with another's memo", (unsigned long)uid);
        cr_assert(m.stage == plain.stage || strcmp(m.stage, plain.stage) == 0, "uid %lu", (unsigned long)uid);
    }
}

/* ABI minor 3's prefetch() changes nothing: with it called a few uids
 * ahead (as upgate-sim does), each of 2,000 uids gets the answer it got
 * without it, fresh grants and sticky ones alike, and the quota holds;
 * a worker out of range and uid 0 are ignored. */
Test(runtime, prefetch_changes_no_answer)
{
    enum { N = 2000, AHEAD = 4 };
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: some, percent: 50, quota: 300, salt: some}\n");
    void (*prefetch)(void *, unsigned, uint64_t) = UG_ENTRY(F.api, prefetch);
    cr_assert_not_null(prefetch, "ABI minor 3 has prefetch()");
    prefetch(F.inst, 99, 1);
    prefetch(F.inst, 0, 0);
    static ug_decision first[N + 1];
    unsigned fresh = 0;
    for (uint64_t uid = 1; uid <= N; uid++) {
        prefetch(F.inst, 0, uid + AHEAD);
        first[uid] = fx_decide(&F, uid, "1.4.0", "10.0.0.1", UG_DECIDE_SPEND | UG_DECIDE_ADDR_PROVED);
        fresh += first[uid].fresh;
        cr_assert_eq(first[uid].answer == UG_ANSWER_HINT, ug_percent_bucket("some", 4, uid) < 5000 && first[uid].fresh,
                     "uid %lu: a HINT exactly for a fresh grant", (unsigned long)uid);
    }
    cr_assert_eq(fresh, 300u, "the quota, exactly");
    for (uint64_t uid = 1; uid <= N; uid++) {
        prefetch(F.inst, 0, uid + AHEAD);
        ug_decision d = fx_decide(&F, uid, "1.4.0", "10.0.0.1", UG_DECIDE_SPEND | UG_DECIDE_ADDR_PROVED);
        cr_assert_eq(d.answer, first[uid].answer, "uid %lu", (unsigned long)uid);
        cr_assert_not(d.fresh, "uid %lu: sticky now", (unsigned long)uid);
    }
}

/* What batch_decides runs inside batch(): each uid of the range decided
 * (prefetch() a few ahead, as upgate-sim does), and a nested batch. */
typedef struct {
    uint64_t from, to;
    ug_decision *out;
    bool nest;
} batch_run;

static void batch_body(void *ctx)
{
    batch_run *b = ctx;
    if (b->nest) {
        b->nest = false;
        UG_ENTRY(F.api, batch)(F.inst, 0, &(ug_batch){.size = sizeof(ug_batch), .run = batch_body, .ctx = b});
        return;
    }
    for (uint64_t uid = b->from; uid <= b->to; uid++) {
        UG_ENTRY(F.api, prefetch)(F.inst, 0, uid + 4);
        b->out[uid] = fx_decide(&F, uid, "1.4.0", "10.0.0.1", UG_DECIDE_SPEND | UG_DECIDE_ADDR_PROVED);
    }
}

/* batch() changes no answer: 2,000 uids decided in batches of 100 (one
 * nested, the first on a worker out of range, which runs the body alone)
 * get what the same uids get one decide() at a time on a twin instance,
 * fresh grants and the quota alike; and after the batches a pause returns
 * (the batches left the policy) and takes effect. */
Test(runtime, batch_changes_no_answer)
{
    enum { N = 2000 };
    const char *pol = "targets: [\"1.4.0\"]\nstages:\n  - {name: some, percent: 50, quota: 300, salt: some}\n";
    start(pol);
    static ug_decision alone[N + 1], batched[N + 1];
    for (uint64_t uid = 1; uid <= N; uid++)
        alone[uid] = fx_decide(&F, uid, "1.4.0", "10.0.0.1", UG_DECIDE_SPEND | UG_DECIDE_ADDR_PROVED);
    teardown();
    start(pol);
    void (*batch)(void *, unsigned, const ug_batch *) = UG_ENTRY(F.api, batch);
    cr_assert_not_null(batch, "the plugin has batch()");
    for (uint64_t from = 1; from <= N; from += 100) { /* worker 99 first: the body runs alone */
        batch_run b = {.from = from, .to = from + 99, .out = batched, .nest = from == 101};
        batch(F.inst, from == 1 ? 99 : 0, &(ug_batch){.size = sizeof(ug_batch), .run = batch_body, .ctx = &b});
    }
    unsigned fresh = 0;
    for (uint64_t uid = 1; uid <= N; uid++) {
        cr_assert_eq(batched[uid].answer, alone[uid].answer, "uid %lu", (unsigned long)uid);
        cr_assert_eq(batched[uid].fresh, alone[uid].fresh, "uid %lu", (unsigned long)uid);
        cr_assert_eq(batched[uid].why, alone[uid].why, "uid %lu", (unsigned long)uid);
        fresh += batched[uid].fresh;
    }
    cr_assert_eq(fresh, 300u, "the quota, exactly");
    json_decref(control("{\"cmd\":\"pause\",\"rollout\":\"default\"}", true));
    cr_assert_eq(fx_decide(&F, 1, "1.4.0", "10.0.0.1", 0).why, UG_WHY_PAUSED);
}

Test(runtime, a_layout_1_folder_is_upgraded_by_the_plugin)
{
    fx_init(&F, 1);
    char cmd[512], out[512];
    snprintf(cmd, sizeof cmd, "%s/tests/mkstate-v1 %s/state canary:11,12", tu_build_dir(), F.dir);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: canary, quota: 2}\n");
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 11, "1.4.0", NULL)), "a grant of layout 1 is sticky");
    cr_expect_eq(fx_stat(&F, "hints_sticky"), 1);
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 13, "1.4.0", NULL)), UG_WHY_QUOTA, "and counts against the quota");
}

/* ---- control -------------------------------------------------------------------- */

Test(runtime, pause_halt_resume_are_durable_and_immediate)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: all, quota: 10}\n");
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)));
    json_decref(control("{\"cmd\":\"pause\",\"rollout\":\"default\"}", true));
    cr_expect_eq(why(fx_ask(&F, 1, "10.0.0.1", 2, "1.4.0", NULL)), UG_WHY_PAUSED);
    cr_expect_eq(why(fx_ask(&F, 1, "10.0.0.1", 1, "1.4.0", NULL)), UG_WHY_PAUSED, "granted peers too");
    restart();
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL)), UG_WHY_PAUSED, "a pause survives restart");
    json_decref(control("{\"cmd\":\"resume\",\"all\":true}", true));
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL)));
    json_decref(control("{\"cmd\":\"halt\",\"all\":true,\"why\":\"2.0.0 crashes on start\"}", true));
    restart();
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_t *r0 = json_array_get(json_object_get(st, "rollouts"), 0);
    cr_expect(json_is_true(json_object_get(r0, "halted")));
    cr_expect_str_eq(json_string_value(json_object_get(r0, "halted_why")), "2.0.0 crashes on start");
    json_decref(st);
    json_t *h = control("{\"cmd\":\"history\"}", true);
    char *text = json_dumps(h, 0);
    cr_expect(strstr(text, "pause rollout default") && strstr(text, "halt rollout default: 2.0.0 crashes on start"),
              "%s", text);
    free(text);
    json_decref(h);
    /* what the file says stays until the file changes */
    reload("targets: [\"1.4.0\"]\npaused: true\nstages:\n  - {name: all, quota: 10}\n");
    json_decref(control("{\"cmd\":\"resume\",\"rollout\":\"default\"}", true));
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL)), UG_WHY_PAUSED, "the policy's paused: true stays");
}

Test(runtime, control_refuses_what_it_cannot_do)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: all}\n");
    static const char *const bad[] = {
        "", "[]", "{\"cmd\":\"dance\"}", "{\"cmd\":\"pause\"}", "{\"cmd\":\"pause\",\"rollout\":\"nope\"}",
        "{\"cmd\":\"halt\",\"rollout\":\"default\"}", "{\"cmd\":\"status\",\"extra\":1}",
        "{\"cmd\":\"explain\",\"uid\":0,\"ver\":\"1.4.0\",\"src\":\"10.0.0.1\"}",
        "{\"cmd\":\"explain\",\"uid\":1,\"ver\":\"x\",\"src\":\"10.0.0.1\"}", "{\"cmd\":\"grants\",\"rollout\":\"nope\"}",
        "{\"cmd\":\"status\",\"cmd\":\"status\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc;
        const char *out = fx_control(&F, bad[i], &rc);
        cr_expect_eq(rc, -1, "%s was carried out: %s", bad[i], out);
        cr_expect(strstr(out, "\"ok\":false") && strstr(out, "\"error\""), "%s: %s", bad[i], out);
    }
    char err[512];
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: all, bogus: 1}\n");
    json_t *o = control("{\"cmd\":\"reload\"}", false);
    cr_expect(strstr(json_string_value(json_object_get(o, "error")), "bogus"));
    json_decref(o);
    (void)err;
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)), "the old policy stays");
}

Test(runtime, status_grants_explain_and_metrics)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: canary, uids: [1, 2, 3], quota: 2}\n"
          "  - {name: pct, percent: 12.5}\n");
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)));
    cr_assert(hint(fx_ask(&F, 1, "10.0.0.1", 2, "1.4.0", NULL)));
    cr_assert_eq(why(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL)), UG_WHY_QUOTA);
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_t *s0 = stage_status(st, 0, 0), *s1 = stage_status(st, 0, 1);
    cr_expect_eq(json_integer_value(json_object_get(s0, "granted")), 2);
    cr_expect_eq(json_integer_value(json_object_get(s0, "quota")), 2);
    cr_expect(json_is_null(json_object_get(s0, "percent")));
    cr_expect(json_real_value(json_object_get(s1, "percent")) == 12.5, "the percentage itself");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(s0, "offers"), "last_minute")), 2);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(s0, "waits"), "quota")), 1);
    json_t *rw = json_object_get(json_array_get(json_object_get(st, "rollouts"), 0), "waits");
    static const char *const keys[] = {"not_targeted", "not_selected", "quota", "clock", "paused", "rate", "too_small"};
    for (size_t i = 0; i < 7; i++)
        cr_expect(json_is_integer(json_object_get(rw, keys[i])), "waits.%s", keys[i]);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(s0, "outcomes"), "pending")), 2);
    json_decref(st);

    json_t *g = control("{\"cmd\":\"grants\",\"rollout\":\"default\",\"stage\":\"canary\"}", true);
    json_t *ga = json_object_get(g, "grants");
    cr_assert_eq(json_array_size(ga), 2);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(ga, 0), "uid")), 1);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(ga, 1), "at")), (json_int_t)F.now);
    json_decref(g);

    json_t *e = control("{\"cmd\":\"explain\",\"uid\":77,\"ver\":\"1.4.0\",\"src\":\"10.0.0.1\"}", true);
    json_t *pct = json_object_get(json_array_get(json_object_get(e, "trace"), 1), "percent");
    cr_expect_eq(json_integer_value(json_object_get(pct, "bucket")), (json_int_t)ug_percent_bucket("pct", 3, 77));
    cr_expect_eq(json_integer_value(json_object_get(pct, "in_force")), 1250);
    json_decref(e);

    const char *m = fx_control(&F, "{\"cmd\":\"metrics\"}", NULL);
    cr_expect(strstr(m, "# TYPE upgate_hints_total counter"), "%.300s", m);
    cr_expect(strstr(m, "upgate_stage_grants{rollout=\"default\",release=\"2.0.0\",stage=\"canary\"} 2"), "%.2000s", m);
    cr_expect(strstr(m, "upgate_stage_offers_total{rollout=\"default\",release=\"2.0.0\",stage=\"canary\",kind=\"new\"} 2"),
              "%.4000s", m);
    cr_expect(strstr(m, "upgate_manifest_expiry_timestamp_seconds{rollout=\"default\",release=\"2.0.0\"}"));
}

/* ---- outcomes ------------------------------------------------------------------------ */

static json_t *outcomes(size_t stage)
{
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_t *o = json_incref(json_object_get(stage_status(st, 0, stage), "outcomes"));
    json_decref(st);
    return o;
}

static json_int_t outcome(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

Test(runtime, outcomes_seen_at_login_and_reported)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: all}\n");
    for (uint64_t uid = 1; uid <= 6; uid++)
        cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL)));
    uint64_t checks = fx_stat(&F, "signature_checks");
    /* 1 upgrades, and says so at its next login (an untargeted version) */
    fx_reply r = fx_ask(&F, 0, "10.0.0.1", 1, "2.0.0", NULL);
    cr_expect_eq(r.v, UG_VERDICT_PASS);
    cr_expect_eq(fx_stat(&F, "signature_checks"), checks + 1, "verified once: its credential is cached");
    fx_ask(&F, 0, "10.0.0.1", 1, "2.0.0", NULL);
    cr_expect_eq(fx_stat(&F, "signature_checks"), checks + 1, "not again: nothing would change");
    fx_ask(&F, 0, "10.0.0.1", 99, "2.0.0", NULL);
    cr_expect_eq(fx_stat(&F, "signature_checks"), checks + 1, "a stranger at 2.0.0 costs nothing");
    /* 2 upgrades and then comes back at 1.4.0: rolled back, and (rule 11)
     * not offered 2.0.0 again */
    fx_ask(&F, 0, "10.0.0.1", 2, "2.0.1", NULL);
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL)), UG_WHY_NOT_SELECTED);
    /* 3 declines, 4 fails to download, 5 gets a bad file then installs */
    uint8_t rep[UG_DGRAM_MAX];
    size_t n = fx_report(&F, rep, 3, "1.4.0", "2.0.0", UG_RES_DECLINED);
    cr_expect_eq(fx_send(&F, 0, "10.0.0.1", 4000, rep, n).len, 0, "a REPORT is never answered");
    n = fx_report(&F, rep, 4, "1.4.0", "2.0.0", UG_RES_DOWNLOAD_FAILED);
    fx_send(&F, 0, "10.0.0.1", 4000, rep, n);
    fx_send(&F, 0, "10.0.0.1", 4000, rep, n);
    n = fx_report(&F, rep, 5, "1.4.0", "2.0.0", UG_RES_MISMATCH);
    fx_send(&F, 1, "10.0.0.1", 4000, rep, n);
    n = fx_report(&F, rep, 5, "2.0.0", "2.0.0", UG_RES_INSTALLED);
    fx_send(&F, 1, "10.0.0.1", 4000, rep, n);
    n = fx_report(&F, rep, 77, "1.4.0", "2.0.0", UG_RES_DECLINED);
    fx_send(&F, 1, "10.0.0.1", 4000, rep, n);
    cr_expect_eq(fx_stat(&F, "reports_not_offered"), 1, "a REPORT for a uid never offered changes nothing");
    cr_expect_eq(fx_stat(&F, "reports_counted"), 4);
    cr_expect_eq(fx_stat(&F, "reports_unchanged"), 1, "the repeated REPORT");
    json_t *o = outcomes(0);
    cr_expect_eq(outcome(o, "upgraded"), 2, "1 and 5");
    cr_expect_eq(outcome(o, "rolled_back"), 1);
    cr_expect_eq(outcome(o, "declined"), 1);
    cr_expect_eq(outcome(o, "failed"), 2, "download failed and rolled back");
    cr_expect_eq(outcome(o, "pending"), 1, "uid 6");
    cr_expect_eq(outcome(o, "not_taken"), 0);
    json_decref(o);
    F.now += 86401;
    o = outcomes(0);
    cr_expect_eq(outcome(o, "not_taken"), 1, "uid 6, a day later");
    cr_expect_eq(outcome(o, "pending"), 0);
    json_decref(o);
    restart();
    o = outcomes(0);
    cr_expect_eq(outcome(o, "upgraded"), 2, "outcomes are stored");
    cr_expect_eq(outcome(o, "rolled_back"), 1);
    json_decref(o);
}

static void report_from(const char *ip, uint64_t uid, const char *ver, ug_res res)
{
    uint8_t rep[UG_DGRAM_MAX];
    size_t n = fx_report(&F, rep, uid, ver, "2.0.0", res);
    cr_expect_eq(fx_send(&F, 0, ip, 4000, rep, n).len, 0, "a REPORT is never answered");
}

/* Protocol rule 11: a rollback yields only to an install, and a uid that
 * rolled the release back is not offered it again. */
Test(runtime, a_rollback_stands_until_an_install)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: all}\n");
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)));
    report_from("10.0.0.1", 1, "2.0.0", UG_RES_INSTALLED);
    F.now += 1;
    report_from("10.0.0.1", 1, "1.4.0", UG_RES_ROLLED_BACK);
    json_t *o = outcomes(0);
    cr_expect_eq(outcome(o, "rolled_back"), 1);
    json_decref(o);
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)), UG_WHY_NOT_SELECTED,
                 "a uid that rolled 2.0.0 back is not offered 2.0.0 again");
    uint64_t counted = fx_stat(&F, "reports_counted");
    static const ug_res later[] = {UG_RES_DECLINED, UG_RES_DOWNLOAD_FAILED, UG_RES_MISMATCH, UG_RES_INSTALL_FAILED};
    for (size_t i = 0; i < 4; i++) {
        F.now += 1;
        report_from("10.0.0.1", 1, "1.4.0", later[i]);
    }
    o = outcomes(0);
    cr_expect_eq(outcome(o, "rolled_back"), 1, "a decline or a failure does not erase the rollback");
    cr_expect_eq(outcome(o, "declined"), 0);
    json_decref(o);
    cr_expect_eq(fx_stat(&F, "reports_counted"), counted);
    restart();
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)), UG_WHY_NOT_SELECTED, "after a restart too");
    F.now += 1;
    report_from("10.0.0.1", 1, "2.0.0", UG_RES_INSTALLED);
    o = outcomes(0);
    cr_expect_eq(outcome(o, "rolled_back"), 0, "an install replaces it");
    cr_expect_eq(outcome(o, "upgraded"), 1);
    json_decref(o);
}

Test(runtime, a_bad_release_halts_itself)
{
    start("rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
          "    halt_when: {failed: 0.5, min_outcomes: 4}\n    stages:\n      - {name: all}\n");
    for (uint64_t uid = 1; uid <= 10; uid++)
        cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL)));
    uint8_t rep[UG_DGRAM_MAX];
    for (uint64_t uid = 1; uid <= 3; uid++) {
        size_t n = fx_report(&F, rep, uid, "1.4.0", "2.0.0", UG_RES_INSTALL_FAILED);
        fx_send(&F, 0, "10.0.0.1", 4000, rep, n);
    }
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 20, "1.4.0", NULL)), "3 failures: below min_outcomes");
    size_t n = fx_report(&F, rep, 4, "2.0.0", "2.0.0", UG_RES_INSTALLED);
    fx_send(&F, 0, "10.0.0.1", 4000, rep, n);
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 21, "1.4.0", NULL)), UG_WHY_PAUSED,
                 "3 of 4 known outcomes failed: halted at once");
    F.api->tick(F.inst); /* stores the halt */
    restart();
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 22, "1.4.0", NULL)), UG_WHY_PAUSED, "and stays halted");
    json_t *st = control("{\"cmd\":\"status\"}", true);
    const char *w = json_string_value(json_object_get(json_array_get(json_object_get(st, "rollouts"), 0), "halted_why"));
    cr_expect(w && strstr(w, "automatic") && strstr(w, "failed share"), "%s", w ? w : "(none)");
    json_decref(st);
    json_decref(control("{\"cmd\":\"resume\",\"rollout\":\"desk\"}", true));
    cr_expect(hint(fx_ask(&F, 0, "10.0.0.1", 22, "1.4.0", NULL)), "only an operator lifts it");
}

/* Issue 21 §2: captured REPORTs replayed from elsewhere cannot flip an
 * outcome; the newest REPORT by its own ts stands. */
Test(runtime, a_replayed_report_cannot_flip_an_outcome)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: all}\n");
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 100, "1.4.0", NULL)));
    uint8_t failed[UG_DGRAM_MAX], installed[UG_DGRAM_MAX];
    size_t nf = fx_report(&F, failed, 100, "1.4.0", "2.0.0", UG_RES_DOWNLOAD_FAILED);
    F.now += 5;
    size_t ni = fx_report(&F, installed, 100, "2.0.0", "2.0.0", UG_RES_INSTALLED);
    fx_send(&F, 0, "10.0.0.1", 4000, failed, nf);
    fx_send(&F, 0, "10.0.0.1", 4000, installed, ni);
    for (int i = 0; i < 10; i++) {
        F.now += 1;
        fx_send(&F, i % 2, "192.0.2.7", 5000 + i, failed, nf);
        json_t *o = outcomes(0);
        cr_expect_eq(outcome(o, "upgraded"), 1, "replay %d flipped it", i);
        cr_expect_eq(outcome(o, "failed"), 0, "replay %d", i);
        json_decref(o);
        fx_send(&F, i % 2, "192.0.2.7", 5000 + i, installed, ni);
    }
    restart();
    fx_send(&F, 0, "192.0.2.7", 6000, failed, nf);
    json_t *o = outcomes(0);
    cr_expect_eq(outcome(o, "upgraded"), 1, "nor after a restart");
    json_decref(o);
    /* "installed" while still running below `to` is an install (protocol.md:
     * res 0; a peer reports it before it restarts into `to`) */
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 101, "1.4.0", NULL)));
    report_from("10.0.0.1", 101, "1.4.0", UG_RES_INSTALLED);
    o = outcomes(0);
    cr_expect_eq(outcome(o, "upgraded"), 2);
    json_decref(o);
}

/* Issue 21 §2: one account alternating two signed REPORTs is one failed
 * outcome, not hundreds: a ramp does not hold on it. */
Test(runtime, health_counts_each_uid_once)
{
    start("rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
          "    halt_when: {failed: 0.8, min_outcomes: 1000}\n    hold_when_unhealthy: true\n    stages:\n"
          "      - {name: all}\n");
    for (uint64_t uid = 1; uid <= 10; uid++) {
        cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL)));
        report_from("10.0.0.1", uid, "2.0.0", UG_RES_INSTALLED);
    }
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 66, "1.4.0", NULL)));
    for (int i = 0; i < 40; i++) {
        report_from("198.51.100.1", 66, "1.4.0", i % 2 ? UG_RES_MISMATCH : UG_RES_DOWNLOAD_FAILED);
        F.now += 1;
    }
    F.api->tick(F.inst);
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_t *r0 = json_array_get(json_object_get(st, "rollouts"), 0);
    cr_expect(json_is_null(json_object_get(r0, "ramp_held_since")), "1 failed of 11 uids is healthy");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(r0, "outcomes"), "failed")), 1);
    json_decref(st);
}

/* Issue 20 item 4: what happens is counted by counters that only grow,
 * per rollout, release and stage; the outcome gauges move both ways. */
Test(runtime, stage_counters_only_grow)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: all}\n");
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)));
    cr_assert(hint(fx_ask(&F, 1, "10.0.0.1", 1, "1.4.0", NULL)));
    report_from("10.0.0.1", 1, "1.4.0", UG_RES_DOWNLOAD_FAILED);
    F.now += 1;
    report_from("10.0.0.1", 1, "2.0.0", UG_RES_INSTALLED);
    const char *m = fx_control(&F, "{\"cmd\":\"metrics\"}", NULL);
#define S "{rollout=\"default\",release=\"2.0.0\",stage=\"all\","
    static const char *const want[] = {
        "upgate_stage_offers_total" S "kind=\"new\"} 1\n",
        "upgate_stage_offers_total" S "kind=\"again\"} 1\n",
        "upgate_stage_reports_total" S "result=\"download_failed\"} 1\n",
        "upgate_stage_reports_total" S "result=\"installed\"} 1\n",
        "upgate_stage_outcome_changes_total" S "outcome=\"download_failed\"} 1\n",
        "upgate_stage_outcome_changes_total" S "outcome=\"upgraded\"} 1\n",
        "upgate_stage_outcomes" S "outcome=\"download_failed\"} 0\n",
        "upgate_stage_outcomes" S "outcome=\"upgraded\"} 1\n",
    };
#undef S
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(m, want[i]), "no %s in\n%.6000s", want[i], m);
}

/* Issue 20 item 7: status says each stage's next ramp step and when. */
Test(runtime, status_shows_the_next_ramp_step)
{
    start("targets: [\"1.4.0\"]\nstages:\n"
          "  - {name: steps, percent: [{at: 2026-09-21T00:00:00Z, percent: 1},"
          " {at: 2026-09-25T00:00:00Z, percent: 5.5}]}\n"
          "  - {name: line, percent: {from: 1, to: 50, start: 2026-09-21T00:00:00Z, end: 2026-09-28T00:00:00Z}}\n"
          "  - {name: flat, percent: 10}\n");
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_t *n0 = json_object_get(stage_status(st, 0, 0), "next_step");
    cr_expect_eq(json_integer_value(json_object_get(n0, "at")), 1790294400, "2026-09-25T00:00:00Z");
    cr_expect(json_real_value(json_object_get(n0, "percent")) == 5.5);
    json_t *n1 = json_object_get(stage_status(st, 0, 1), "next_step");
    cr_expect_eq(json_integer_value(json_object_get(n1, "at")), 1790553600, "the end of the line");
    cr_expect(json_real_value(json_object_get(n1, "percent")) == 50.0);
    cr_expect(json_is_null(json_object_get(stage_status(st, 0, 2), "next_step")), "a constant has none");
    json_decref(st);
}

static json_t *halt_when_status(void)
{
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_t *h = json_incref(json_object_get(json_array_get(json_object_get(st, "rollouts"), 0), "halt_when"));
    json_decref(st);
    return h;
}

static bool halted(void)
{
    json_t *st = control("{\"cmd\":\"status\"}", true);
    bool h = json_is_true(json_object_get(json_array_get(json_object_get(st, "rollouts"), 0), "halted"));
    json_decref(st);
    return h;
}

/* policy.md: a resume of a rollout that halted itself starts a new count,
 * of min_outcomes outcomes recorded after it; it holds across a restart. */
Test(runtime, a_resume_after_an_automatic_halt_counts_afresh)
{
    start("rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
          "    halt_when: {failed: 0.5, min_outcomes: 4}\n    stages:\n      - {name: all}\n");
    for (uint64_t uid = 1; uid <= 12; uid++)
        cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL)));
    for (uint64_t uid = 1; uid <= 3; uid++)
        report_from("10.0.0.1", uid, "1.4.0", UG_RES_INSTALL_FAILED);
    report_from("10.0.0.1", 4, "2.0.0", UG_RES_INSTALLED);
    F.api->tick(F.inst);
    cr_assert(halted(), "3 of 4 failed");
    F.now += 60;
    json_t *r = control("{\"cmd\":\"resume\",\"rollout\":\"desk\"}", true);
    json_t *c = json_object_get(json_object_get(r, "halt_when_counts_from"), "desk");
    cr_expect_eq(json_integer_value(json_object_get(c, "since")), (json_int_t)F.now, "the reply says so");
    cr_expect_eq(json_integer_value(json_object_get(c, "min_outcomes")), 4);
    json_decref(r);
    F.api->tick(F.inst);
    F.now += 11;
    F.api->tick(F.inst);
    cr_expect(!halted(), "the outcomes before the resume no longer halt it");
    json_t *h = halt_when_status();
    cr_expect_eq(json_integer_value(json_object_get(h, "since")), (json_int_t)F.now - 11);
    cr_expect_eq(json_integer_value(json_object_get(h, "known")), 0);
    cr_expect_eq(json_integer_value(json_object_get(h, "min_outcomes")), 4);
    cr_expect(json_real_value(json_object_get(h, "failed_pct")) == 50.0);
    json_decref(h);
    F.now += 1;
    for (uint64_t uid = 5; uid <= 7; uid++)
        report_from("10.0.0.1", uid, "1.4.0", UG_RES_DOWNLOAD_FAILED);
    cr_expect(!halted(), "3 outcomes since the resume: fewer than min_outcomes");
    restart();
    F.api->tick(F.inst);
    cr_expect(!halted(), "a restart keeps the count's start");
    h = halt_when_status();
    cr_expect_eq(json_integer_value(json_object_get(h, "known")), 3);
    cr_expect_eq(json_integer_value(json_object_get(h, "failed")), 3);
    json_decref(h);
    report_from("10.0.0.1", 8, "1.4.0", UG_RES_MISMATCH);
    cr_expect(halted(), "4 of 4 since the resume failed: halted again");
}

/* Gathers a control reply (control_by). */
static void gather(void *ctx, const char *data, size_t len)
{
    char *b = ctx;
    size_t at = strlen(b);
    if (at + len < 8192) {
        memcpy(b + at, data, len);
        b[at + len] = 0;
    }
}

/* The history's entries with this action, in order, as one string of their
 * actor kinds ("automatic,control"). */
static void history_of(const char *action, char *out, size_t cap)
{
    json_t *h = control("{\"cmd\":\"history\"}", true), *e;
    size_t i;
    out[0] = 0;
    json_array_foreach(json_object_get(h, "history"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "action")), action) != 0)
            continue;
        size_t at = strlen(out);
        snprintf(out + at, cap - at, "%s%s", at ? "," : "",
                 json_string_value(json_object_get(json_object_get(e, "actor"), "kind")));
    }
    json_decref(h);
}

/* A halt a worker raised, resumed before tick() stored it: the halt goes
 * to the history first, by "automatic", and does not come back after the
 * resume or a restart. The caller's kind travels through control_by (ABI
 * 1.3); control() is the host's own. */
Test(runtime, a_resume_before_the_tick_stores_the_automatic_halt_first)
{
    start("rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
          "    halt_when: {failed: 0.5, min_outcomes: 4}\n    stages:\n      - {name: all}\n");
    for (uint64_t uid = 1; uid <= 4; uid++)
        cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL)));
    for (uint64_t uid = 1; uid <= 4; uid++)
        report_from("10.0.0.1", uid, "1.4.0", UG_RES_INSTALL_FAILED);
    cr_assert(halted(), "raised by the worker, not stored yet");
    F.now += 60; /* halt_when counts the outcomes of the resume's second on */
    cr_assert(UG_HAS_FIELD(ug_plugin, F.api->size, control_by) && F.api->control_by);
    ug_caller by = {.size = sizeof by, .kind = UG_CALLER_CONTROL, .uid = 4321, .pid = 98765};
    static char reply[8192];
    reply[0] = 0;
    const char req[] = "{\"cmd\":\"resume\",\"rollout\":\"desk\",\"why\":\"fixed\"}";
    cr_assert_eq(F.api->control_by(F.inst, &by, req, sizeof req - 1, gather, reply), 0, "%s", reply);
    F.api->tick(F.inst);
    cr_assert(!halted(), "the tick after the resume does not halt it again");
    char kinds[256];
    history_of("halt", kinds, sizeof kinds);
    cr_assert_str_eq(kinds, "automatic");
    json_t *h = control("{\"cmd\":\"history\"}", true);
    json_t *list = json_object_get(h, "history");
    json_t *halt = json_array_get(list, json_array_size(list) - 2), *res = json_array_get(list, json_array_size(list) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(halt, "action")), "halt", "the halt, then the resume");
    cr_assert(strstr(json_string_value(json_object_get(halt, "reason")), "failed share"), "its cause");
    cr_assert_str_eq(json_string_value(json_object_get(res, "reason")), "fixed");
    json_t *who = json_object_get(res, "actor");
    cr_assert_str_eq(json_string_value(json_object_get(who, "kind")), "control");
    cr_assert_eq(json_integer_value(json_object_get(who, "uid")), 4321);
    cr_assert_eq(json_integer_value(json_object_get(who, "pid")), 98765);
    json_decref(h);
    json_decref(control("{\"cmd\":\"pause\",\"rollout\":\"desk\"}", true)); /* control(): the host's own */
    h = control("{\"cmd\":\"history\"}", true);
    list = json_object_get(h, "history");
    who = json_object_get(json_array_get(list, json_array_size(list) - 1), "actor");
    cr_assert_str_eq(json_string_value(json_object_get(who, "kind")), "host");
    cr_assert_eq(json_integer_value(json_object_get(who, "pid")), (json_int_t)getpid());
    json_decref(h);
    json_decref(control("{\"cmd\":\"resume\",\"rollout\":\"desk\"}", true));
    restart();
    F.api->tick(F.inst);
    cr_assert(!halted(), "no halt was left in the store after the resume");
    history_of("stop", kinds, sizeof kinds);
    cr_assert_str_eq(kinds, "host", "the restart's stop");
    history_of("start", kinds, sizeof kinds);
    cr_assert_str_eq(kinds, "host,host");
}

Test(runtime, an_unhealthy_rollout_holds_its_ramp)
{
    start("rollouts:\n  - name: desk\n    release: release.manifest\n    targets: [\"1.4.0\"]\n"
          "    halt_when: {failed: 0.8, min_outcomes: 1000}\n    hold_when_unhealthy: true\n    stages:\n"
          "      - {name: ramp, percent: {from: 10, to: 100, start: 2026-09-21T00:00:00Z, end: 2026-09-22T00:00:00Z}}\n");
    F.now = 1789948800 + 3600; /* one hour into a one-day ramp */
    json_t *st = control("{\"cmd\":\"status\"}", true);
    json_int_t before = json_integer_value(json_object_get(stage_status(st, 0, 0), "percent"));
    json_decref(st);
    unsigned granted = 0;
    uint8_t rep[UG_DGRAM_MAX];
    for (uint64_t uid = 1; granted < 4 && uid < 1000; uid++) {
        if (!hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL)))
            continue;
        granted++;
        size_t n = fx_report(&F, rep, uid, "1.4.0", "2.0.0", UG_RES_DOWNLOAD_FAILED);
        fx_send(&F, 0, "10.0.0.1", 4000, rep, n);
    }
    F.api->tick(F.inst); /* 4 of 4 failed in the last hour > 0.8 / 2: hold */
    F.now += 3600;
    st = control("{\"cmd\":\"status\"}", true);
    json_t *r0 = json_array_get(json_object_get(st, "rollouts"), 0);
    cr_expect_eq(json_integer_value(json_object_get(stage_status(st, 0, 0), "percent")), before, "held");
    cr_expect(json_is_integer(json_object_get(r0, "ramp_held_since")));
    json_decref(st);
    F.now += 3600; /* the failures are now over an hour old: healthy again */
    F.api->tick(F.inst);
    st = control("{\"cmd\":\"status\"}", true);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(json_object_get(st, "rollouts"), 0), "ramp_shift_s")),
                 7200, "the rest of the schedule moves by the time held");
    cr_expect_eq(json_integer_value(json_object_get(stage_status(st, 0, 0), "percent")), before,
                 "and goes on from where it was, never down");
    json_decref(st);
    restart();
    st = control("{\"cmd\":\"status\"}", true);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(json_object_get(st, "rollouts"), 0), "ramp_shift_s")),
                 7200, "the shift is stored");
    json_decref(st);
}

/* ---- the guard's caches ------------------------------------------------------------------ */

Test(runtime, credential_cache_keeps_100k_peers)
{
    ug_guard g;
    cr_assert_eq(ug_guard_init(&g, UG_CRED_SETS), 0);
    uint8_t key[UG_KEY_LEN];
    for (int round = 0; round < 2; round++) {
        unsigned hits = 0;
        for (uint32_t i = 0; i < 100000; i++) {
            uint8_t raw[8];
            memcpy(raw, &i, 4);
            memcpy(raw + 4, &round, 4);
            ug_signed s = {.raw = raw, .raw_len = 4};
            if (ug_credcache_has(&g, &s, 7, key))
                hits++;
            else
                ug_credcache_put(&g, key, 7);
        }
        if (round == 0)
            cr_expect_eq(hits, 0);
        else
            cr_expect_geq(hits, 99000, "%u of 100000 credentials still cached", hits);
    }
    ug_guard_free(&g);
}

/* Workers with a socket each split the peers (SO_REUSEPORT sends a peer
 * to one of them): they split the cache's sets too, and together keep as
 * many peers as one worker with all of them (issue 27 §2). Workers that
 * may each see any peer keep a whole cache each. */
Test(runtime, workers_that_split_the_peers_split_the_credential_cache)
{
    cr_assert_eq(ug_guard_cred_sets(1, false), UG_CRED_SETS);
    cr_assert_eq(ug_guard_cred_sets(2, true), UG_CRED_SETS, "roaming peers: each worker may see all");
    cr_assert_eq(ug_guard_cred_sets(2, false), UG_CRED_SETS / 2);
    cr_assert_eq(ug_guard_cred_sets(1000, false), UG_CRED_SETS_MIN);
    ug_guard g[2];
    for (int w = 0; w < 2; w++)
        cr_assert_eq(ug_guard_init(&g[w], ug_guard_cred_sets(2, false)), 0);
    uint8_t key[UG_KEY_LEN];
    for (int round = 0; round < 2; round++) {
        unsigned hits = 0;
        for (uint32_t i = 0; i < 100000; i++) {
            ug_signed s = {.raw = (const uint8_t *)&i, .raw_len = sizeof i};
            if (ug_credcache_has(&g[i % 2], &s, 7, key))
                hits++;
            else
                ug_credcache_put(&g[i % 2], key, 7);
        }
        if (round == 0)
            cr_expect_eq(hits, 0);
        else
            cr_expect_geq(hits, 99000, "%u of 100000 credentials still cached", hits);
    }
    for (int w = 0; w < 2; w++)
        ug_guard_free(&g[w]);
}

/* An entry keeps 12 bytes of the key's digest: another policy generation,
 * or one byte more or less of the credential, misses. */
Test(runtime, credential_cache_hits_only_the_same_bytes_and_generation)
{
    ug_guard g;
    cr_assert_eq(ug_guard_init(&g, UG_CRED_SETS), 0);
    uint8_t raw[96], key[UG_KEY_LEN];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 13);
    ug_signed s = {.raw = raw, .raw_len = sizeof raw};
    cr_assert(!ug_credcache_has(&g, &s, 7, key));
    ug_credcache_put(&g, key, 7);
    cr_assert(ug_credcache_has(&g, &s, 7, key));
    cr_assert(!ug_credcache_has(&g, &s, 8, key), "another generation");
    cr_assert(!ug_credcache_has(&g, &s, 0, key), "generation 0 never hits");
    raw[sizeof raw - 1] ^= 1;
    cr_assert(!ug_credcache_has(&g, &s, 7, key), "one bit of the signature");
    raw[sizeof raw - 1] ^= 1;
    s.raw_len--;
    cr_assert(!ug_credcache_has(&g, &s, 7, key), "one byte less");
    s.raw_len++;
    cr_assert(ug_credcache_has(&g, &s, 7, key), "still there");
    ug_guard_free(&g);
}

Test(runtime, two_networks_sharing_a_slot_keep_their_budgets)
{
    ug_guard g;
    cr_assert_eq(ug_guard_init(&g, UG_CRED_SETS), 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6}, b = a;
    inet_pton(AF_INET6, "2001:db8:0:100::1", &a.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:0:200::1", &b.sin6_addr);
    unsigned ok = 0;
    for (int i = 0; i < 1000; i++)
        ok += ug_budget_take(&g, (struct sockaddr *)(i % 2 ? &a : &b), 1000, 1.0);
    cr_expect_eq(ok, 2, "alternating two /56s of one /48 got %u checks, not one each", ok);
    ug_guard_free(&g);
}

Test(runtime, a_host_can_keep_its_own_state)
{
    fx_init(&F, 1);
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: all, quota: 1}\n");
    char own[160], err[512], path[200];
    snprintf(own, sizeof own, "%s/sim-state", F.dir);
    F.state_override = own;
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)));
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", own);
    cr_expect_eq(stat(path, &st), 0, "the host's folder holds the store");
    snprintf(path, sizeof path, "%s/state", F.dir);
    cr_expect_neq(stat(path, &st), 0, "the policy's state folder is untouched");
    json_t *i = control("{\"cmd\":\"info\"}", true);
    cr_expect_str_eq(json_string_value(json_object_get(i, "state")), own);
    json_decref(i);
    reload("targets: [\"1.4.0\"]\nstages:\n  - {name: all, quota: 1}\n");
}

/* A tracker that trusts the vectors' keys and has offered uid 4242 2.0.0
 * (by the tracker vectors' valid HELLO, hello[0..len)). */
static void vector_tracker(const uint8_t *hello, size_t len)
{
    char err[512];
    fx_stop(&F);
    fx_init_vectors(&F, 1);
    fx_policy(&F, "targets: [\"1.4.2\"]\nstages:\n  - {name: all}\n");
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    cr_assert(hint(fx_send(&F, 0, "10.0.0.1", 4000, hello, len)), "the valid HELLO of uid 4242 is offered 2.0.0");
}

/* report.json through the real plugin: every accepted REPORT sets the
 * outcome of an offer nothing was reported about yet (the vectors share
 * one ts, and rule 11 orders REPORTs by it), every other one is dropped
 * silently and changes nothing. */
Test(runtime, report_vectors_through_the_plugin)
{
    json_t *tv = tu_vectors("tracker.json");
    uint8_t hello[4096], buf[4096];
    size_t hlen = tu_unhex(
        json_string_value(json_object_get(json_array_get(json_object_get(tv, "vectors"), 0), "hex")), hello,
        sizeof hello);
    json_decref(tv);
    vector_tracker(hello, hlen);
    json_t *rv = tu_vectors("report.json");
    cr_assert_eq(json_integer_value(json_object_get(rv, "now")), (json_int_t)FX_NOW);
    static const char *const expect_of_res[] = {"upgraded", "declined", "failed", "failed", "failed", "rolled_back"};
    size_t i, accepted = 0;
    json_t *v;
    json_array_foreach(json_object_get(rv, "vectors"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        bool want = strcmp(json_string_value(json_object_get(v, "expect")), "accept") == 0;
        if (want)
            vector_tracker(hello, hlen);
        json_t *before = outcomes(0);
        uint64_t counted = fx_stat(&F, "reports_counted");
        size_t len = tu_unhex(json_string_value(json_object_get(v, "hex")), buf, sizeof buf);
        fx_reply r = fx_send(&F, 0, "10.0.0.1", 4000, buf, len);
        cr_expect_eq(r.len, 0, "%s: a REPORT is never answered", name);
        json_t *after = outcomes(0);
        if (want) {
            accepted++;
            json_int_t res = json_integer_value(json_object_get(json_object_get(v, "fields"), "res"));
            cr_expect_eq(fx_stat(&F, "reports_counted"), counted + 1, "%s: not counted", name);
            cr_expect_eq(outcome(after, expect_of_res[res]), 1, "%s: outcome %s", name, expect_of_res[res]);
        } else {
            cr_expect_eq(fx_stat(&F, "reports_counted"), counted, "%s: counted", name);
            cr_expect(json_equal(before, after), "%s: changed an outcome", name);
        }
        json_decref(before);
        json_decref(after);
    }
    cr_expect_eq(accepted, 7);
    json_decref(rv);
}

/* A REPORT flood from one network costs no more signature checks than the
 * network's budget allows. */
Test(runtime, a_report_flood_stays_in_the_budget)
{
    start("targets: [\"1.4.0\"]\nsource_budget: 10\nstages:\n  - {name: all}\n");
    /* every uid is offered first, within the budget: 5 a second per worker
     * and network */
    for (uint64_t uid = 1; uid <= 200; uid++) {
        if (uid % 5 == 0)
            F.now += 1;
        cr_assert(hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL)), "uid %llu", (unsigned long long)uid);
    }
    F.now += 5; /* the budgets refill */
    /* built first: buckets refill continuously, so the flood is sent in a
     * burst well under the 0.2 s that refills one more token */
    static uint8_t rep[200][UG_DGRAM_MAX];
    static size_t len[200];
    for (uint64_t uid = 1; uid <= 200; uid++)
        len[uid - 1] = fx_report(&F, rep[uid - 1], uid, "1.4.0", "2.0.0", uid % 2 ? UG_RES_DECLINED : UG_RES_MISMATCH);
    uint64_t checks = fx_stat(&F, "signature_checks");
    for (unsigned i = 0; i < 200; i++)
        fx_send(&F, 0, "10.0.0.77", 4000, rep[i], len[i]);
    /* one second's worth of one /24's budget (10 checks = 5 REPORTs) */
    cr_expect_leq(fx_stat(&F, "signature_checks") - checks, 10, "%llu checks for one network",
                  (unsigned long long)(fx_stat(&F, "signature_checks") - checks));
    cr_expect_eq(fx_stat(&F, "reports_counted"), 5);
    cr_expect_eq(fx_stat(&F, "drop_source_budget"), 195);
}

/* A manifest about to expire is warned about at load and once a day; its
 * expiry is logged once. */
Test(runtime, manifest_expiry_is_logged)
{
    fx_init(&F, 1);
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: all}\n");
    uint64_t exp = FX_NOW + 2 * 365 * 86400; /* the fixture's manifest */
    F.now = exp - 3 * 86400;
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(F.last_log, "expires in 72 h"), "at load: %s", F.last_log);
    F.last_log[0] = 0;
    F.now += 3600;
    F.api->tick(F.inst);
    cr_expect_str_eq(F.last_log, "", "not again within the day");
    F.now += 86400;
    F.api->tick(F.inst);
    cr_expect(strstr(F.last_log, "expires in 47 h"), "a day later: %s", F.last_log);
    F.now = exp;
    F.api->tick(F.inst);
    cr_expect(strstr(F.last_log, "expired"), "%s", F.last_log);
    F.last_log[0] = 0;
    F.now += 5;
    F.api->tick(F.inst);
    cr_expect_str_eq(F.last_log, "", "the expiry is logged once");
    cr_expect_eq(why(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL)), UG_WHY_PAUSED);
}
