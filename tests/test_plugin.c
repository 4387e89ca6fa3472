/* The real upgate.so through its ABI: targets, conditions, stages, quota, reload. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "guard/cookiejar.h"
#include "fixture.h"
#include "testutil.h"

static fx_t F;

static void start(const char *policy)
{
    char err[512] = "";
    fx_stop(&F); /* a test may start over with another policy */
    fx_init(&F, 2);
    fx_policy(&F, policy);
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "create failed: %s", err);
}

static void teardown(void)
{
    fx_stop(&F);
}

TestSuite(plugin, .fini = teardown, .timeout = 60);

static void expect_hint(fx_reply r, const char *what)
{
    cr_assert_eq(r.v, UG_VERDICT_REPLY, "%s: verdict %d", what, r.v);
    cr_assert_eq(r.type, UG_TYPE_HINT, "%s: got type %d (why %llu), want HINT", what, r.type,
                 (unsigned long long)r.wait.why);
}

static void expect_wait(fx_reply r, ug_why why, const char *what)
{
    cr_assert_eq(r.type, UG_TYPE_WAIT, "%s: got type %d, want WAIT", what, r.type);
    cr_assert_eq(r.wait.why, (uint64_t)why, "%s: why %llu, want %d", what, (unsigned long long)r.wait.why, why);
}

Test(plugin, exports_one_symbol)
{
    char cmd[1200], out[4096];
    snprintf(cmd, sizeof cmd,
             "nm -D --defined-only %s/upgate.so | awk '{print $3}' "
             "| grep -v -E '^(_init|_fini|_edata|_end|__bss_start|__odr_asan\\..*)$'", /* ASan's own marker */
             tu_build_dir());
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0);
    cr_assert_str_eq(out, "upgate_plugin\n", "exported: %s", out);
}

Test(plugin, untargeted_gets_wait_0_without_signature_check)
{
    start("targets: [\"1.4.0\", \"<1.3\"]\nstages:\n  - name: all\n");
    fx_reply r = fx_ask(&F, 0, "10.0.0.1", 7, "1.5", NULL);
    cr_assert_eq(r.v, UG_VERDICT_PASS, "untargeted: the host may serve it as usual");
    expect_wait(r, UG_WHY_NOT_TARGETED, "1.5");
    /* a HELLO signed by nobody we trust is still just "not targeted" */
    uint8_t buf[UG_DGRAM_MAX];
    size_t len = fx_hello(&F, buf, 8, "1.3", NULL);
    buf[len - 1] ^= 1; /* break the signature */
    r = fx_send(&F, 0, "10.0.0.1", 1, buf, len);
    expect_wait(r, UG_WHY_NOT_TARGETED, "1.3 with a bad signature");
    cr_assert_eq(fx_stat(&F, "signature_checks"), 0);
    /* targeted ones: exact and below the bound */
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 9, "1.4.0", NULL), "1.4.0");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 9, "1.4", NULL), "1.4 == 1.4.0");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 9, "1.2.9", NULL), "1.2.9 < 1.3");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 9, "1.3", NULL), UG_WHY_NOT_TARGETED, "1.3 is not < 1.3");
}

Test(plugin, le_target)
{
    start("targets: [\"<=1.3\"]\nstages:\n  - name: all\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 9, "1.3", NULL), "1.3 <= 1.3");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 9, "1.3.0.0", NULL), "1.3.0.0 <= 1.3");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 9, "1.3.0.1", NULL), UG_WHY_NOT_TARGETED, "1.3.0.1");
}

/* The spec's tracker vectors, through the plugin: the accepted ones get an
 * answer, every other one is dropped without a reply. */
Test(plugin, tracker_vectors)
{
    json_t *j = tu_vectors("tracker.json");
    fx_init(&F, 1);
    F.now = (uint64_t)json_integer_value(json_object_get(j, "now"));
    uint8_t ipk[UG_PK_LEN];
    tu_unhex(json_string_value(json_array_get(json_object_get(j, "trusted_issuers"), 0)), ipk, sizeof ipk);
    char path[128], why[128];
    snprintf(path, sizeof path, "%s/vector-issuer.pub", F.dir);
    cr_assert_eq(ug_keyfile_write(path, ipk, sizeof ipk, false, why, sizeof why), 0);
    char policy[512];
    snprintf(policy, sizeof policy,
             "targets: [\"<100\"]\nclock_window: %lld\ncookie: never\nstages:\n  - name: all\n",
             (long long)json_integer_value(json_object_get(j, "window_s")));
    fx_policy(&F, policy);
    /* trust the vectors' issuer instead of the fixture's */
    char text[4096];
    snprintf(text, sizeof text,
             "keys:\n  hint: hint.key\n  issuers: [vector-issuer.pub]\nrelease: release.manifest\nstate: state\n%s",
             policy);
    tu_write_file(fx_policy_path(&F), text, strlen(text));
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        uint8_t buf[4096];
        size_t len = tu_unhex(json_string_value(json_object_get(v, "hex")), buf, sizeof buf);
        bool want = strcmp(json_string_value(json_object_get(v, "expect")), "accept") == 0;
        fx_reply r = fx_send(&F, 0, "192.0.2.1", 1000 + (uint16_t)i, buf, len);
        const char *name = json_string_value(json_object_get(v, "name"));
        if (want)
            expect_hint(r, name);
        else
            /* without the upgate prefix it is another protocol's (PASS, the
             * host's to serve); either way no reply of ours goes out */
            cr_expect(r.v != UG_VERDICT_REPLY && r.len == 0, "vector '%s' not dropped (verdict %d, %zu bytes)",
                      name, r.v, r.len);
    }
    json_decref(j);
}

/* Embodiment 1: a third of the peers from one region, at most N. */
Test(plugin, embodiment_region_third_quota)
{
    start("targets: [\"1.4.0\"]\nstages:\n"
          "  - {name: bj-third, networks: [10.1.0.0/16, \"2001:db8::/32\"], uid_mod: {div: 3, rem: 1}, quota: 5}\n");
    unsigned offered = 0;
    for (uint64_t uid = 1; uid <= 30; uid++) {
        bool cookied;
        fx_reply inside = fx_ask_proved(&F, 0, "10.1.2.3", uid, "1.4.0", NULL, &cookied);
        if (uid % 3 != 1) {
            expect_wait(inside, UG_WHY_NOT_SELECTED, "uid not 1 mod 3");
            cr_expect_not(cookied, "uid %lu: only a peer the stage would select pays the round trip",
                          (unsigned long)uid);
        } else if (offered < 5) {
            cr_expect(cookied, "uid %lu: the region counts only for a proved address", (unsigned long)uid);
            expect_hint(inside, "region, 1 mod 3, quota left");
            offered++;
        } else {
            expect_wait(inside, UG_WHY_QUOTA, "quota spent");
        }
    }
    cr_assert_eq(offered, 5);
    expect_wait(fx_ask(&F, 0, "10.2.0.1", 31, "1.4.0", NULL), UG_WHY_NOT_SELECTED, "outside the region");
    expect_hint(fx_ask(&F, 1, "2001:db8::5", 1, "1.4.0", NULL), "offered uid, now over IPv6: sticky, no cookie");
    cr_assert_eq(fx_stat(&F, "hints_new"), 5);
}

/* Embodiment 2: short user ids, at most N. */
Test(plugin, embodiment_short_ids)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: short-ids, uid_digits_max: 7, quota: 3}\n");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 12345678, "1.4.0", NULL), UG_WHY_NOT_SELECTED, "8 digits");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 9999999, "1.4.0", NULL), "7 digits");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "1 digit");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1000000, "1.4.0", NULL), "7 digits");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), UG_WHY_QUOTA, "quota of 3 spent");
}

/* Embodiment 3: the ratio first, then the region, then the count. */
Test(plugin, embodiment_ratio_region_count)
{
    start("targets: [\"1.4.0\"]\nstages:\n"
          "  - {name: third-bj, uid_mod: {div: 3, rem: 1}, networks: [10.1.0.0/16], quota: 2}\n");
    expect_wait(fx_ask_proved(&F, 0, "10.1.0.1", 2, "1.4.0", NULL, NULL), UG_WHY_NOT_SELECTED, "2 mod 3");
    expect_wait(fx_ask_proved(&F, 0, "10.9.0.1", 4, "1.4.0", NULL, NULL), UG_WHY_NOT_SELECTED, "elsewhere");
    expect_hint(fx_ask_proved(&F, 0, "10.1.0.1", 4, "1.4.0", NULL, NULL), "4");
    expect_hint(fx_ask_proved(&F, 0, "10.1.0.1", 7, "1.4.0", NULL, NULL), "7");
    expect_wait(fx_ask_proved(&F, 0, "10.1.0.1", 10, "1.4.0", NULL, NULL), UG_WHY_QUOTA, "third");
}

/* Every HINT is a grant now (its outcome is tracked), so a uid offered
 * once is offered again: each check below asks with a uid of its own. */
Test(plugin, each_condition_alone)
{
    char uids_file[128];
    fx_init(&F, 2);
    snprintf(uids_file, sizeof uids_file, "%s/uids.txt", F.dir);
    tu_write_file(uids_file, "500\n501\n", 8);
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n"
                  "  - {name: net6, networks: [\"2001:db8:1::/48\"]}\n"
                  "  - {name: canary, uids: [1001, 1002]}\n"
                  "  - {name: from-file, uids_file: uids.txt}\n"
                  "  - {name: plat, plat: [windows-x86_64]}\n"
                  "  - {name: chan, chan: [beta]}\n"
                  "  - {name: later, start: 2027-01-01T00:00:00Z}\n"
                  "  - {name: over, end: 2026-01-01T00:00:00Z}\n"
                  "  - {name: mod, uid_mod: {div: 1000, rem: 999}}\n");
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    const char *nobody = "10.0.0.1";
    expect_wait(fx_ask(&F, 0, nobody, 42, "1.4.0", NULL), UG_WHY_NOT_SELECTED, "no stage selects 42");
    expect_hint(fx_ask_proved(&F, 0, "2001:db8:1:ffff::1", 43, "1.4.0", NULL, NULL), "networks v6");
    expect_wait(fx_ask_proved(&F, 0, "2001:db8:2::1", 44, "1.4.0", NULL, NULL), UG_WHY_NOT_SELECTED, "outside v6 net");
    expect_hint(fx_ask(&F, 0, nobody, 1002, "1.4.0", NULL), "uids");
    expect_hint(fx_ask(&F, 0, nobody, 501, "1.4.0", NULL), "uids_file");
    expect_hint(fx_ask(&F, 0, nobody, 45, "1.4.0", &(fx_opts){.plat = "windows-x86_64"}), "plat");
    expect_wait(fx_ask(&F, 0, nobody, 46, "1.4.0", &(fx_opts){.plat = "linux-x86_64"}), UG_WHY_NOT_SELECTED,
                "other plat");
    expect_hint(fx_ask(&F, 0, nobody, 47, "1.4.0", &(fx_opts){.chan = "beta"}), "chan");
    expect_hint(fx_ask(&F, 0, nobody, 1999, "1.4.0", NULL), "uid_mod");
    F.now = 1798761600; /* 2027-01-01T00:00:00Z: the later stage opens */
    expect_hint(fx_ask(&F, 0, nobody, 48, "1.4.0", NULL), "start reached");
    F.now = 1798761599;
    expect_wait(fx_ask(&F, 0, nobody, 49, "1.4.0", NULL), UG_WHY_NOT_SELECTED, "one second before start");
    F.now = 1767225599; /* 2025-12-31T23:59:59Z: the over stage is still open */
    expect_hint(fx_ask(&F, 0, nobody, 50, "1.4.0", NULL), "before end");
}

/* percent against the formula of policy.md, on many uids. */
Test(plugin, percent_matches_formula)
{
    /* thousands of HELLOs from one address in one second: lift the per-network budget */
    start("targets: [\"1.4.0\"]\nsource_budget: 0\nstages:\n  - {name: pct, percent: 12.34, salt: my-salt}\n");
    unsigned hits = 0;
    for (uint64_t uid = 1; uid <= 2000; uid++) {
        bool want = ug_percent_bucket("my-salt", 7, uid) < 1234;
        fx_reply r = fx_ask(&F, uid & 1, "10.0.0.1", uid, "1.4.0", NULL);
        cr_assert_eq(r.type == UG_TYPE_HINT, want, "uid %llu", (unsigned long long)uid);
        hits += want;
    }
    cr_assert(hits > 150 && hits < 350, "12.34%% of 2000 is about 247, got %u", hits);
}

Test(plugin, stages_in_order_and_most_useful_reason)
{
    start("targets: [\"1.4.0\"]\nstages:\n"
          "  - {name: first, uids: [1, 2], quota: 1}\n"
          "  - {name: second, uids: [2, 3]}\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "first stage");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), "first spent, second selects");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 4, "1.4.0", NULL), UG_WHY_NOT_SELECTED, "nobody");
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: only, uids: [1, 2], quota: 1}\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "1");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), UG_WHY_QUOTA, "selected but spent");
    /* rate limited in one stage, quota spent in a later one: "come back soon" wins */
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: slow, uids: [5, 6], rate: 1}\n"
          "  - {name: spent, uids: [5, 6, 7], quota: 1}\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 5, "1.4.0", NULL), "5 takes slow's token");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 7, "1.4.0", NULL), "7 takes spent's slot");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 6, "1.4.0", NULL), UG_WHY_RATE, "rate before quota");
}

Test(plugin, sticky_offers_spend_nothing)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: two, quota: 2}\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 11, "1.4.0", NULL), "11");
    for (int i = 0; i < 5; i++)
        expect_hint(fx_ask(&F, i & 1, "10.0.0.1", 11, "1.4.0", NULL), "11 again");
    expect_hint(fx_ask(&F, 1, "10.0.0.1", 12, "1.4.0", NULL), "12");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 13, "1.4.0", NULL), UG_WHY_QUOTA, "13");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 12, "1.4.0", NULL), "12 again");
    cr_assert_eq(fx_stat(&F, "hints_new"), 2);
    cr_assert_eq(fx_stat(&F, "hints_sticky"), 6);
}

Test(plugin, retransmitted_hello_spends_nothing)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: one, quota: 1}\n");
    uint8_t buf[UG_DGRAM_MAX];
    size_t len = fx_hello(&F, buf, 5, "1.4.0", NULL);
    expect_hint(fx_send(&F, 0, "10.0.0.1", 9, buf, len), "first");
    expect_hint(fx_send(&F, 1, "10.0.0.1", 9, buf, len), "same bytes again");
    cr_assert_eq(fx_stat(&F, "hints_new"), 1);
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 6, "1.4.0", NULL), UG_WHY_QUOTA, "another uid");
}

/* Threads sharing one socket (UG_HF_ROAMING_PEERS): a peer's retransmit
 * lands on another worker than its first HELLO, yet spends nothing again,
 * signatures included (rule 8 across workers). The remembered HINT waited
 * for the first worker's commit: the second worker's flush covers it too. */
Test(plugin, a_retransmit_on_another_worker_spends_nothing_when_peers_roam)
{
    fx_init(&F, 2);
    F.host_flags = UG_HF_ROAMING_PEERS;
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: one, quota: 5}\n");
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    uint8_t buf[UG_DGRAM_MAX], first[UG_DGRAM_MAX];
    size_t len = fx_hello(&F, buf, 5, "1.4.0", NULL), first_len = 0;
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(0x0a000001)};
    unsigned flags = 0; /* worker 0 answers and never commits: its host is slow, or gone */
    cr_assert_eq(F.api->handle2(F.inst, 0, (struct sockaddr *)&src, sizeof src, buf, len, first, sizeof first,
                                &first_len, &flags),
                 UG_VERDICT_REPLY);
    cr_assert(flags & UG_REPLY_AFTER_FLUSH, "a new grant waits for worker 0's commit");
    uint64_t sigs = fx_stat(&F, "signature_checks");
    cr_assert_gt(sigs, 0);
    fx_reply again = fx_send(&F, 1, "10.0.0.1", 9, buf, len); /* and flushes worker 1 */
    expect_hint(again, "the same bytes on worker 1");
    cr_assert_eq(again.len, first_len);
    cr_assert_eq(memcmp(again.bytes, first, first_len), 0, "the remembered reply, byte for byte");
    cr_assert_eq(fx_stat(&F, "signature_checks"), sigs, "no signature work the second time");
    cr_assert_eq(fx_stat(&F, "retransmits_answered"), 1);
    cr_assert_eq(fx_stat(&F, "hints_new"), 1);
    cr_assert(again.flags & UG_REPLY_AFTER_FLUSH, "it still waits for a commit: worker 1's");
    /* worker 0 never committed; worker 1's flush made the grant durable: a
     * new HELLO of uid 5 gets its sticky HINT without waiting for a disk */
    fx_reply sticky = fx_ask(&F, 0, "10.0.0.1", 5, "1.4.0", NULL);
    expect_hint(sticky, "uid 5 again, a new HELLO");
    cr_assert_not(sticky.flags & UG_REPLY_AFTER_FLUSH, "the grant is durable already");
    cr_assert_eq(fx_stat(&F, "hints_sticky"), 1);
    F.host_flags = 0;
}

/* Without the flag each worker keeps its own memory (no lock on its path):
 * the same bytes on another worker are verified again, and still spend no
 * quota (the grant is sticky). */
Test(plugin, a_retransmit_on_another_worker_is_verified_again_when_peers_stay)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: one, quota: 5}\n");
    uint8_t buf[UG_DGRAM_MAX];
    size_t len = fx_hello(&F, buf, 5, "1.4.0", NULL);
    expect_hint(fx_send(&F, 0, "10.0.0.1", 9, buf, len), "first");
    uint64_t sigs = fx_stat(&F, "signature_checks");
    expect_hint(fx_send(&F, 1, "10.0.0.1", 9, buf, len), "worker 1");
    cr_assert_gt(fx_stat(&F, "signature_checks"), sigs);
    cr_assert_eq(fx_stat(&F, "retransmits_answered"), 0);
    expect_hint(fx_send(&F, 1, "10.0.0.1", 9, buf, len), "worker 1 again");
    cr_assert_eq(fx_stat(&F, "retransmits_answered"), 1, "its own memory");
    cr_assert_eq(fx_stat(&F, "hints_new"), 1);
}

typedef struct {
    unsigned worker;
    uint64_t offered[4000];
    size_t n;
} race_arg;

static void *race(void *p)
{
    race_arg *a = p;
    for (uint64_t k = 0; k < 1500; k++) {
        uint64_t uid = 1 + (k * 7919 + a->worker * 104729) % 600; /* heavy overlap between workers */
        fx_reply r = fx_ask(&F, a->worker, "10.0.0.1", uid, "1.4.0", NULL);
        if (r.type == UG_TYPE_HINT)
            a->offered[a->n++] = uid;
        else if (r.type != UG_TYPE_WAIT || r.wait.why != UG_WHY_QUOTA)
            return "unexpected answer";
    }
    return NULL;
}

/* Concurrent workers never over-issue: exactly min(Q, eligible) uids. */
Test(plugin, quota_exact_under_threads)
{
    fx_init(&F, 4);
    fx_policy(&F, "targets: [\"1.4.0\"]\nsource_budget: 0\nstages:\n  - {name: q, quota: 100}\n");
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    static race_arg args[4];
    pthread_t t[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i] = (race_arg){.worker = i};
        pthread_create(&t[i], NULL, race, &args[i]);
    }
    for (unsigned i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        cr_assert_null(res, "worker %u: %s", i, (char *)res);
    }
    static bool seen[601];
    size_t distinct = 0;
    for (unsigned i = 0; i < 4; i++)
        for (size_t k = 0; k < args[i].n; k++)
            if (!seen[args[i].offered[k]]) {
                seen[args[i].offered[k]] = true;
                distinct++;
            }
    cr_assert_eq(distinct, 100, "distinct uids offered: %zu", distinct);
    cr_assert_eq(fx_stat(&F, "hints_new"), 100);
}

Test(plugin, restart_keeps_grants)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 2}\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "1");
    expect_hint(fx_ask(&F, 1, "10.0.0.1", 2, "1.4.0", NULL), "2");
    fx_stop(&F);
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL), UG_WHY_QUOTA, "quota spent before the restart");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), "granted before the restart");
    cr_assert_eq(fx_stat(&F, "hints_new"), 0);
}

Test(plugin, reload_good_and_bad)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 1}\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "1");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), UG_WHY_QUOTA, "2");
    char err[512] = "";
    /* a bad policy is refused and the running one stays */
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: -3}\n");
    cr_assert_eq(F.api->reload(F.inst, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "policy.yaml") && strstr(err, "quota"), "error names file and key: %s", err);
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), UG_WHY_QUOTA, "old policy still in force");
    /* a good one takes over; the stage keeps its grants by name */
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 2}\n");
    cr_assert_eq(F.api->reload(F.inst, NULL, err, sizeof err), 0, "%s", err);
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 2, "1.4.0", NULL), "quota raised to 2");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL), UG_WHY_QUOTA, "and spent again");
    expect_hint(fx_ask(&F, 1, "10.0.0.1", 1, "1.4.0", NULL), "still sticky");
}

Test(plugin, reload_cannot_move_state)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 1}\n");
    char text[1024], err[512] = "";
    snprintf(text, sizeof text,
             "keys:\n  hint: hint.key\n  issuers: [issuer.pub]\nrelease: release.manifest\nstate: elsewhere\n"
             "targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 1}\n");
    tu_write_file(fx_policy_path(&F), text, strlen(text));
    cr_assert_eq(F.api->reload(F.inst, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "state") && strstr(err, "restart"), "says why: %s", err);
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "old policy and state still serve");
}

Test(plugin, rate_limits_new_offers)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - {name: slow, rate: 2}\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "1st this second");
    expect_hint(fx_ask(&F, 1, "10.0.0.1", 2, "1.4.0", NULL), "2nd this second");
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL), UG_WHY_RATE, "3rd this second");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "offered before: no token needed");
    F.now += 1;
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 3, "1.4.0", NULL), "next second");
}

Test(plugin, clock_skew_and_pause)
{
    start("targets: [\"1.4.0\"]\nclock_window: 300\nstages:\n  - name: all\n");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.ts_offset = -300}), "300 s behind");
    fx_reply r = fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.ts_offset = 301});
    expect_wait(r, UG_WHY_CLOCK, "301 s ahead");
    cr_assert_eq(r.wait.ts, F.now, "WAIT carries the tracker's clock");
    fx_policy(&F, "targets: [\"1.4.0\"]\npaused: true\nstages:\n  - name: all\n");
    char err[512];
    cr_assert_eq(F.api->reload(F.inst, NULL, err, sizeof err), 0, "%s", err);
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), UG_WHY_PAUSED, "paused");
}

Test(plugin, expired_manifest_offers_nothing)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - name: all\n");
    F.now = FX_NOW + 3 * 365 * 86400;
    expect_wait(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), UG_WHY_PAUSED, "manifest past its exp");
}

Test(plugin, bad_credentials_are_dropped)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - name: all\n");
    fx_reply r = fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.cred_exp = FX_NOW});
    cr_assert_eq(r.v, UG_VERDICT_DROP);
    cr_assert_eq(r.len, 0);
    cr_assert_eq(fx_stat(&F, "drop_expired"), 1);
}

Test(plugin, jittered_retry_per_uid)
{
    start("targets: [\"1.4.0\"]\nretry: 1000\nstages:\n  - {name: none, uids: [1]}\n");
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t uid = 2; uid < 200; uid++) {
        fx_reply r = fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL);
        expect_wait(r, UG_WHY_NOT_SELECTED, "not in uids");
        cr_assert(r.wait.retry >= 1000 && r.wait.retry <= 1200, "retry %llu", (unsigned long long)r.wait.retry);
        cr_assert_eq(fx_ask(&F, 1, "10.0.0.2", uid, "1.4.0", NULL).wait.retry, r.wait.retry, "fixed per uid");
        lo = r.wait.retry < lo ? r.wait.retry : lo;
        hi = r.wait.retry > hi ? r.wait.retry : hi;
    }
    cr_assert(hi - lo > 100, "retries spread: %llu..%llu", (unsigned long long)lo, (unsigned long long)hi);
}

Test(plugin, hint_too_big_for_small_hello)
{
    fx_init(&F, 1);
    fx_manifest(&F, 5, 150); /* long URLs: the HINT fits 1232 but not 512 */
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - {name: q, quota: 1}\n");
    char err[512];
    cr_assert_eq(fx_start(&F, err, sizeof err), 0, "%s", err);
    fx_reply r = fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.target = 512});
    expect_wait(r, UG_WHY_TOO_SMALL, "512-byte HELLO");
    cr_assert_eq(r.wait.retry, 0);
    cr_assert_eq(fx_stat(&F, "hints_new"), 0, "nothing spent on an answer not sent");
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.target = 1232}), "padded to 1232");
}

Test(plugin, manifest_too_big_for_any_hint_is_refused)
{
    fx_init(&F, 1);
    fx_manifest(&F, 8, 200); /* 8 URLs of 200 bytes: no HINT can carry it */
    fx_policy(&F, "targets: [\"1.4.0\"]\nstages:\n  - name: all\n");
    char err[512] = "";
    cr_assert_eq(fx_start(&F, err, sizeof err), -1);
    cr_assert(strstr(err, "release"), "error names the release: %s", err);
}

Test(plugin, cookies_always)
{
    start("targets: [\"1.4.0\"]\ncookie: always\nstages:\n  - name: all\n");
    fx_reply r = fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL);
    cr_assert_eq(r.type, UG_TYPE_COOKIE);
    cr_assert_eq(fx_stat(&F, "signature_checks"), 0, "cookie before any signature work");
    uint8_t cookie[UG_COOKIE_LEN];
    memcpy(cookie, r.cookie.cookie, sizeof cookie);
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.cookie = cookie}), "with the cookie");
    r = fx_ask(&F, 0, "10.0.0.2", 1, "1.4.0", &(fx_opts){.cookie = cookie});
    cr_assert_eq(r.type, UG_TYPE_COOKIE, "another address needs its own cookie");
    /* valid in its slot and the next, not after */
    F.now += UG_COOKIE_SLOT;
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.cookie = cookie}), "previous slot");
    F.now += UG_COOKIE_SLOT;
    cr_assert_eq(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", &(fx_opts){.cookie = cookie}).type, UG_TYPE_COOKIE,
                 "expired cookie");
}

Test(plugin, cookies_auto_under_load)
{
    start("targets: [\"1.4.0\"]\ncookie: auto\ncookie_threshold: 5\nstages:\n  - name: all\n");
    F.api->tick(F.inst);
    for (uint64_t uid = 1; uid <= 20; uid++)
        expect_hint(fx_ask(&F, 0, "10.0.0.1", uid, "1.4.0", NULL), "below threshold so far");
    F.now += 1;
    F.api->tick(F.inst); /* 20 checks in a second > 5 */
    cr_assert_eq(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL).type, UG_TYPE_COOKIE, "under load");
    F.now += 1;
    F.api->tick(F.inst); /* no checks in the last second */
    expect_hint(fx_ask(&F, 0, "10.0.0.1", 1, "1.4.0", NULL), "load gone");
}

Test(plugin, shard_share)
{
    start("targets: [\"1.4.0\"]\nshard: {index: 2, count: 3}\nstages:\n  - {name: q, quota: 10}\n");
    /* 10 over 3 trackers: 4, 3, 3; this is index 2 */
    unsigned offered = 0;
    for (uint64_t uid = 1; uid <= 10; uid++)
        offered += fx_ask(&F, uid & 1, "10.0.0.1", uid, "1.4.0", NULL).type == UG_TYPE_HINT;
    cr_assert_eq(offered, 3);
}

Test(plugin, foreign_datagrams_pass_malformed_drop)
{
    start("targets: [\"1.4.0\"]\nstages:\n  - name: all\n");
    fx_reply r = fx_send(&F, 0, "10.0.0.1", 1, (const uint8_t *)"GET / HTTP/1.0\r\n", 16);
    cr_assert_eq(r.v, UG_VERDICT_PASS);
    cr_assert_eq(r.len, 0);
    static const uint8_t bad[] = {0x95, 0xa2, 0x55, 0x47, 0x01, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff};
    r = fx_send(&F, 0, "10.0.0.1", 1, bad, sizeof bad);
    cr_assert_eq(r.v, UG_VERDICT_DROP);
    cr_assert_eq(fx_stat(&F, "not_upgate"), 1);
    cr_assert_eq(fx_stat(&F, "drop_msgpack") + fx_stat(&F, "drop_size"), 1);
}
