/* Policy loader, stage evaluation, CIDR sets and uid sets (plugin/policy/: policy*.c, conds.c, nets.c). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "policy/policy.h"
#include "policy_fixture.h"
#include "testutil.h"

TestSuite(policy, .init = pf_setup, .fini = pf_teardown);
TestSuite(nets);
TestSuite(uidset);
TestSuite(eval, .init = pf_setup, .fini = pf_teardown);

static const char *example =
    "keys:\n"
    "  hint: keys/hint.key            # this tracker's hint signing key (secret)\n"
    "  issuers: [keys/issuer.pub]     # credential issuers trusted (public keys)\n"
    "release: releases/2.0.0.manifest # signed manifest, from `upgate-keys release`\n"
    "targets: [\"1.4.0\", \"1.4.1\", \"<1.3\"]  # the versions to upgrade: exact, or <, <=\n"
    "state: state/                    # where grants and quota counters persist\n"
    "clock_window: 300                # seconds of clock skew accepted (default 300)\n"
    "hint_ttl: 3600                   # a HINT's lifetime in seconds (default 3600)\n"
    "retry: 3600                      # WAIT's retry in seconds (default 3600)\n"
    "cookie: auto                     # always | never | auto (when under load)\n"
    "shard: {index: 0, count: 1}      # this tracker's share of every quota\n"
    "stages:                          # tried in order; the first that selects wins\n"
    "  - name: beijing-third          # unique, [a-z0-9-]{1,32}\n"
    "    networks: [1.2.0.0/16, \"2001:db8::/32\"]   # source address in any of these\n"
    "    uid_mod: {div: 3, rem: 1}    # uid % div == rem\n"
    "    quota: 1000000               # at most this many distinct uids offered, ever\n"
    "  - name: short-ids\n"
    "    uid_digits_max: 7            # uid has at most 7 decimal digits\n"
    "    quota: 500000\n"
    "  - name: canary\n"
    "    uids: [1001, 1002, 1003]     # or uids_file: a file of one uid a line\n"
    "  - name: one-percent\n"
    "    percent: 1.5                 # sticky hash bucket, see below\n"
    "    rate: 100                    # at most 100 new offers a second\n"
    "    plat: [windows-x86_64]       # optional: HELLO plat in this list\n"
    "    chan: [stable]               # optional: HELLO chan in this list\n"
    "    start: 2026-12-01T00:00:00Z  # optional: active from\n"
    "    end: 2026-12-31T00:00:00Z    # optional: active until\n";

/* The removed ug_nets_contains(family, bytes), kept here as the tests'
 * oracle: the address as a sockaddr of that family, through the one
 * lookup the plugin has. */
static bool contains(const ug_nets *n, int family, const uint8_t *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = (sa_family_t)family;
    if (family == AF_INET)
        memcpy(&((struct sockaddr_in *)&ss)->sin_addr, a, 4);
    else if (family == AF_INET6)
        memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, a, 16);
    return ug_nets_contains_sa(n, (const struct sockaddr *)&ss);
}

static bool has4(const ug_nets *n, const char *a)
{
    uint8_t b[4];
    cr_assert(inet_pton(AF_INET, a, b) == 1, "%s", a);
    return contains(n, AF_INET, b);
}

static bool has6(const ug_nets *n, const char *a)
{
    uint8_t b[16];
    cr_assert(inet_pton(AF_INET6, a, b) == 1, "%s", a);
    return contains(n, AF_INET6, b);
}


Test(policy, spec_example_loads_with_every_field)
{
    ug_policy *p = pf_load_ok(example);
    cr_assert_str_eq(p->path, pf_yaml);
    cr_assert_arr_eq(p->hint_pub.pk, pf_hint_pk, UG_PK_LEN);
    uint8_t kid[UG_KID_LEN];
    ug_kid(kid, pf_hint_pk);
    cr_assert_arr_eq(p->hint_pub.kid, kid, UG_KID_LEN);
    cr_assert_arr_eq(p->hint_sk + UG_SEED_LEN, pf_hint_pk, UG_PK_LEN);
    cr_assert_eq(p->nissuers, 1);
    cr_assert_arr_eq(p->issuers[0].pk, pf_issuer_pk, UG_PK_LEN);
    cr_assert_eq(p->version, 1);
    cr_assert_eq(p->nrollouts, 1);
    const ug_rollout *r = R0(p);
    cr_assert_str_eq(r->name, "default");
    cr_assert_eq(r->manifest_len, pf_manifest_len);
    cr_assert_arr_eq(r->manifest, pf_manifest, pf_manifest_len);
    cr_assert_eq(r->rel.to.part[0], 2);
    cr_assert_eq(r->rel.nurls, 2);
    cr_assert_eq(r->rel.size, 123456);
    cr_assert_str_eq(r->to, "2.0.0");

    cr_assert_eq(r->ntargets, 3);
    cr_assert_eq(r->targets[0].op, UG_TARGET_EQ);
    cr_assert_eq(r->targets[0].v.part[1], 4);
    cr_assert_eq(r->targets[1].v.part[2], 1);
    cr_assert_eq(r->targets[2].op, UG_TARGET_LT);
    cr_assert_eq(r->targets[2].v.part[1], 3);
    cr_assert_null(r->plat);
    cr_assert_null(r->chan);

    char want[600];
    snprintf(want, sizeof want, "%s/state/", pf_dir);
    cr_assert_str_eq(p->state_dir, want);
    cr_assert_eq(p->clock_window, 300);
    cr_assert_eq(p->hint_ttl, 3600);
    cr_assert_eq(p->retry, 3600);
    cr_assert_eq(p->cookie, UG_COOKIE_AUTO);
    cr_assert_eq(p->cookie_threshold, 1000);
    cr_assert_eq(p->shard_index, 0);
    cr_assert_eq(p->shard_count, 1);
    cr_assert_eq(r->paused, false);

    cr_assert_eq(r->nstages, 4);
    ug_stage *s = &r->stages[0];
    cr_assert_str_eq(s->name, "beijing-third");
    cr_assert_eq(s->line, 13);
    cr_assert_eq(s->salt_len, strlen("beijing-third"));
    cr_assert_eq(memcmp(s->salt, "beijing-third", s->salt_len), 0);
    cr_assert_str_eq(pf_cond_keys(s), "networks,uid_mod");
    cr_assert_eq(s->cond_flags, UG_CONDF_ADDRESS);
    cr_assert(!s->has_percent && !s->has_start && !s->has_end && !s->has_fleet_rate);
    cr_assert(pf_net_has(s, "1.2.255.1") && !pf_net_has(s, "1.3.0.0"));
    cr_assert(pf_net_has(s, "2001:db8:ffff::1") && !pf_net_has(s, "2001:db9::1"));
    cr_assert_str_eq(pf_describe(s, "networks"), "networks 1.2.0.0/16, 2001:db8::/32 (2)");
    cr_assert_str_eq(pf_describe(s, "uid_mod"), "uid % 3 == 1");
    cr_assert(s->has_quota && s->quota == 1000000);
    cr_assert(!s->has_rate);

    s = &r->stages[1];
    cr_assert_str_eq(s->name, "short-ids");
    cr_assert_str_eq(pf_cond_keys(s), "uid_digits_max");
    cr_assert_eq(s->cond_flags, 0);
    cr_assert_str_eq(pf_describe(s, "uid_digits_max"), "uid of at most 7 digits");
    cr_assert(s->has_quota && s->quota == 500000);

    s = &r->stages[2];
    cr_assert_str_eq(pf_cond_keys(s), "uids");
    cr_assert_str_eq(pf_describe(s, "uids"), "uid in a list of 3");
    cr_assert(pf_uid_in(s, 1002) && !pf_uid_in(s, 1004));
    cr_assert(!s->has_quota);

    s = &r->stages[3];
    cr_assert_str_eq(s->name, "one-percent");
    cr_assert_str_eq(pf_cond_keys(s), "chan,plat");
    cr_assert(s->has_percent && s->percent.kind == UG_PCT_CONST && s->percent.bp == 150);
    cr_assert(s->has_start && s->has_end);
    cr_assert(s->has_rate && s->rate == 100.0);
    cr_assert_str_eq(pf_describe(s, "plat"), "plat in windows-x86_64");
    cr_assert_str_eq(pf_describe(s, "chan"), "chan in stable");
    cr_assert_eq(s->start, 1796083200);
    cr_assert_eq(s->end, 1798675200);
    ug_policy_free(p);
}

Test(policy, embodiment_1_beijing_third)
{
    ug_policy *p = pf_load_ok(HEAD "stages:    # 1. a third of the peers logging in from Beijing, at most 1,000,000\n"
                                "  - {name: bj-third, networks: [10.0.0.0/8, 1.2.0.0/16], uid_mod: {div: 3, rem: 1}, quota: 1000000}\n");
    cr_assert_eq(R0(p)->nstages, 1);
    ug_stage *s = ST(p, 0);
    cr_assert_str_eq(s->name, "bj-third");
    cr_assert_str_eq(pf_cond_keys(s), "networks,uid_mod");
    cr_assert(pf_net_has(s, "10.9.8.7") && pf_net_has(s, "1.2.3.4") && !pf_net_has(s, "11.0.0.1"));
    cr_assert_str_eq(pf_describe(s, "uid_mod"), "uid % 3 == 1");
    cr_assert_eq(s->quota, 1000000);
    ug_policy_free(p);
}

Test(policy, embodiment_2_short_ids)
{
    ug_policy *p = pf_load_ok(HEAD "stages:    # 2. uids of at most 7 digits, at most 500,000\n"
                                "  - {name: short-ids, uid_digits_max: 7, quota: 500000}\n");
    cr_assert_str_eq(pf_cond_keys(ST(p, 0)), "uid_digits_max");
    cr_assert_str_eq(pf_describe(ST(p, 0), "uid_digits_max"), "uid of at most 7 digits");
    cr_assert_eq(ST(p, 0)->quota, 500000);
    ug_policy_free(p);
}

Test(policy, embodiment_3_ratio_region_count)
{
    ug_policy *p = pf_load_ok(HEAD "stages:    # 3. the ratio first, then the region, then the count\n"
                                "  - {name: third-bj, uid_mod: {div: 3, rem: 1}, networks: [10.0.0.0/8], quota: 1000000}\n");
    ug_stage *s = ST(p, 0);
    cr_assert_str_eq(pf_cond_keys(s), "networks,uid_mod");
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.1.1", &in.sin_addr);
    ug_hello h;
    memset(&h, 0, sizeof h);
    h.uid = 4; /* 4 % 3 == 1 */
    cr_assert(pf_selects(s, &h, (struct sockaddr *)&in, 0));
    h.uid = 5;
    cr_assert(!pf_selects(s, &h, (struct sockaddr *)&in, 0));
    h.uid = 4;
    inet_pton(AF_INET, "11.1.1.1", &in.sin_addr);
    cr_assert(!pf_selects(s, &h, (struct sockaddr *)&in, 0));
    ug_policy_free(p);
}

Test(policy, extensions_and_non_defaults)
{
    ug_policy *p = pf_load_ok(HEAD "clock_window: 0\nhint_ttl: 60\nretry: 0\ncookie: always\ncookie_threshold: 5\n"
                                "shard: {index: 2, count: 3}\npaused: true\n"
                                "stages:\n  - name: s\n    salt: \"reshuffle 2\"\n"
                                "    start: 2026-12-01T08:00:00+08:00\n    end: 2026-12-01T00:00:01.5-00:30\n"
                                "    rate: 0.5\n    quota: 0\n    uids_file: lists/canary.txt\n    uids: [7]\n");
    cr_assert_eq(p->clock_window, 0);
    cr_assert_eq(p->hint_ttl, 60);
    cr_assert_eq(p->retry, 0);
    cr_assert_eq(p->cookie, UG_COOKIE_ALWAYS);
    cr_assert_eq(p->cookie_threshold, 5);
    cr_assert_eq(p->shard_index, 2);
    cr_assert_eq(p->shard_count, 3);
    cr_assert(R0(p)->paused);
    ug_stage *s = ST(p, 0);
    cr_assert_eq(s->salt_len, 11);
    cr_assert_eq(memcmp(s->salt, "reshuffle 2", 11), 0);
    cr_assert_eq(s->start, 1796083200);
    cr_assert_eq(s->end, 1796083200 + 1 + 1800);
    cr_assert(s->has_rate && s->rate == 0.5);
    cr_assert(s->has_quota && s->quota == 0);
    cr_assert_str_eq(pf_describe(s, "uids"), "uid in a list of 4");
    cr_assert(pf_uid_in(s, 1003) && pf_uid_in(s, 7));
    ug_policy_free(p);

    p = pf_load_ok(HEAD "cookie: never\nstages: []\n");
    cr_assert_eq(p->cookie, UG_COOKIE_NEVER);
    cr_assert_eq(R0(p)->nstages, 0);
    ug_policy_free(p);
}

Test(policy, unquoted_versions_and_target_forms)
{
    ug_policy *p = pf_load_ok("keys: {hint: keys/hint.key, issuers: [keys/issuer.pub, keys/issuer2.pub]}\n"
                           "release: releases/2.0.0.manifest\nstate: state\nstages: []\n"
                           "targets: [1.4.0, 1.4, \"<= 1.2\", <=1.1.7, \"< 1\", 2.0.0.17]\n");
    cr_assert_eq(p->nissuers, 2);
    cr_assert_arr_eq(p->issuers[1].pk, pf_issuer2_pk, UG_PK_LEN);
    const ug_rollout *r = R0(p);
    cr_assert_eq(r->ntargets, 6);
    cr_assert_eq(r->targets[1].v.nparts, 2);
    cr_assert_eq(r->targets[2].op, UG_TARGET_LE);
    cr_assert_eq(r->targets[3].op, UG_TARGET_LE);
    cr_assert_eq(r->targets[4].op, UG_TARGET_LT);
    cr_assert_eq(r->targets[5].v.part[3], 17);
    ug_version v;
    cr_assert(ug_version_parse(&v, "1.2", 3) == 0);
    cr_assert(ug_rollout_targets(r, &v)); /* <= 1.2 */
    cr_assert_eq(ug_policy_route(p, &v, "", ""), r);
    ug_policy_free(p);
}

Test(policy, relative_paths_resolve_against_policy_folder)
{
    /* The policy lives in sub/, its paths point back up; cwd is elsewhere. */
    char sp[600], err[UG_ERR_MAX] = "", want[700];
    snprintf(sp, sizeof sp, "%s/sub/p.yaml", pf_dir);
    const char *text = "keys:\n  hint: ../keys/hint.key\n  issuers: [../keys/issuer.pub]\n"
                       "release: ../releases/2.0.0.manifest\ntargets: [1.4.0]\nstate: ../state\n"
                       "stages: [{name: c, uids_file: ../lists/canary.txt}]\n";
    cr_assert(chdir("/") == 0);
    ug_policy *p = pf_load_text(sp, text, err, sizeof err);
    cr_assert(p, "%s", err);
    snprintf(want, sizeof want, "%s/sub/../state", pf_dir);
    cr_assert_str_eq(p->state_dir, want);
    cr_assert_str_eq(pf_describe(ST(p, 0), "uids"), "uid in a list of 3");
    ug_policy_free(p);

    /* A relative policy path still yields an absolute state dir. */
    cr_assert(chdir(pf_dir) == 0);
    p = pf_load_text("sub/p.yaml", text, err, sizeof err);
    cr_assert(p, "%s", err);
    cr_assert_str_eq(p->state_dir, want);
    ug_policy_free(p);

    /* Absolute paths stay as they are. */
    char text2[2048];
    snprintf(text2, sizeof text2, "keys:\n  hint: %s/keys/hint.key\n  issuers: [keys/issuer.pub]\n"
                                  "release: releases/2.0.0.manifest\ntargets: [1.4.0]\nstate: /var/tmp/x\nstages: []\n", pf_dir);
    p = pf_load_text(pf_yaml, text2, err, sizeof err);
    cr_assert(p, "%s", err);
    cr_assert_str_eq(p->state_dir, "/var/tmp/x");
    ug_policy_free(p);
}

static uint32_t percent_of(const char *text)
{
    char t[1024];
    snprintf(t, sizeof t, HEAD "stages: [{name: p, percent: %s}]\n", text);
    ug_policy *p = pf_load_ok(t);
    cr_assert_eq(ST(p, 0)->percent.kind, UG_PCT_CONST);
    uint32_t bp = ST(p, 0)->percent.bp;
    ug_policy_free(p);
    return bp;
}

Test(policy, percent_is_parsed_exactly)
{
    cr_assert_eq(percent_of("1.5"), 150);
    cr_assert_eq(percent_of("1.15"), 115);
    cr_assert_eq(percent_of("0.29"), 29);
    cr_assert_eq(percent_of("0.57"), 57);
    cr_assert_eq(percent_of("100"), 10000);
    cr_assert_eq(percent_of("100.00"), 10000);
    cr_assert_eq(percent_of("0"), 0);
    cr_assert_eq(percent_of("0.01"), 1);
    cr_assert_eq(percent_of("99.99"), 9999);
    cr_assert_eq(percent_of("50.1"), 5010);
    const char *bad[] = {"1.234", "101", "100.01", "-1", "+1", "1.", ".5", "abc", "1e2", "'1.5'", "[1]", "1,5", "01.5", "1000"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char t[1024];
        snprintf(t, sizeof t, HEAD "stages:\n  - name: p\n    percent: %s\n", bad[i]);
        pf_fail_at(t, 9, "stages[0].percent");
    }
}

/* ---- refusals: each names file, line and key ----------------------------------- */

Test(policy, refuses_unreadable_and_malformed_yaml)
{
    char err[UG_ERR_MAX], missing[600], want[700];
    snprintf(missing, sizeof missing, "%s/nope.yaml", pf_dir);
    cr_assert_null(ug_policy_load(missing, err, sizeof err));
    snprintf(want, sizeof want, "%s:0: (file): ", missing);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);

    pf_fail_at(HEAD "stages: [a, b\nretry: 1\n", 8, "(yaml)");
    pf_fail_at(HEAD "stages:\n  - name: a\n   bad: 1\n", 9, "(yaml)");
    pf_fail_at("- a\n- b\n", 1, "(top)");
    pf_fail_at("just a string\n", 1, "(top)");
    pf_fail_at("", 1, "(top)");
    pf_fail_at("# only a comment\n", 1, "(top)");
    pf_fail_at(HEAD "stages: []\n---\nfoo: 1\n", 9, "(yaml)");
}

Test(policy, refuses_unknown_duplicate_and_missing_keys)
{
    pf_fail_at(HEAD "stagez: []\nstages: []\n", 7, "stagez");
    pf_fail_at(HEAD "stages:\n  - name: a\n    quotaa: 5\n", 9, "stages[0].quotaa");
    pf_fail_at(HEAD "stages:\n  - {name: a, uid_mod: {div: 3, rem: 1, mod: 2}}\n", 8, "stages[0].uid_mod.mod");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers: [keys/issuer.pub]\n  hnt: x\n" TAIL, 4, "keys.hnt");
    pf_fail_at(HEAD "shard: {index: 0, count: 1, cnt: 2}\nstages: []\n", 7, "shard.cnt");
    pf_fail_at(HEAD "retry: 1\nretry: 2\nstages: []\n", 8, "retry");
    pf_fail_at(HEAD "stages:\n  - name: a\n    quota: 1\n    quota: 2\n", 10, "stages[0].quota");
    pf_fail_at(HEAD "stages: []\nstages: []\n", 8, "stages");
    pf_fail_at(HEAD "? [a]\n: 1\nstages: []\n", 7, "(top)");

    pf_fail_at("keys:\n  issuers: [keys/issuer.pub]\n" TAIL, 2, "keys.hint");
    pf_fail_at("keys:\n  hint: keys/hint.key\n" TAIL, 2, "keys.issuers");
    pf_fail_at("keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\ntargets: [1.0]\nstate: s\nstages: []\n", 1, "release");
    pf_fail_at("keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nrelease: releases/2.0.0.manifest\nstate: s\nstages: []\n", 1, "targets");
    pf_fail_at("keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nrelease: releases/2.0.0.manifest\ntargets: [1.0]\nstages: []\n", 1, "state");
    pf_fail_at(HEAD "retry: 5\n", 1, "stages");
    pf_fail_at(HEAD "stages:\n  - quota: 5\n", 8, "stages[0].name");
    pf_fail_at(HEAD "stages:\n  - {name: a, uid_mod: {div: 3}}\n", 8, "stages[0].uid_mod.rem");
    pf_fail_at(HEAD "shard: {count: 3}\nstages: []\n", 7, "shard.index");
}

Test(policy, refuses_wrong_types)
{
    pf_fail_at(HEAD "retry: abc\nstages: []\n", 7, "retry");
    pf_fail_at(HEAD "retry: '3600'\nstages: []\n", 7, "retry");
    pf_fail_at(HEAD "retry: [1]\nstages: []\n", 7, "retry");
    pf_fail_at(HEAD "retry:\nstages: []\n", 7, "retry");
    pf_fail_at(HEAD "retry: -1\nstages: []\n", 7, "retry");
    pf_fail_at(HEAD "retry: 010\nstages: []\n", 7, "retry");
    pf_fail_at(HEAD "retry: 1_000\nstages: []\n", 7, "retry");
    pf_fail_at(HEAD "hint_ttl: 0\nstages: []\n", 7, "hint_ttl");
    pf_fail_at(HEAD "clock_window: 4294967296\nstages: []\n", 7, "clock_window");
    pf_fail_at(HEAD "paused: yes\nstages: []\n", 7, "paused");
    pf_fail_at(HEAD "paused: \"true\"\nstages: []\n", 7, "paused");
    pf_fail_at(HEAD "stages: {}\n", 7, "stages");
    pf_fail_at(HEAD "stages:\n", 7, "stages");
    pf_fail_at(HEAD "stages:\n  - just-a-name\n", 8, "stages[0]");
    pf_fail_at("keys: [a]\n" TAIL, 1, "keys");
    pf_fail_at("keys:\n  hint: [a]\n  issuers: [keys/issuer.pub]\n" TAIL, 2, "keys.hint");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers: keys/issuer.pub\n" TAIL, 3, "keys.issuers");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers: []\n" TAIL, 3, "keys.issuers");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers: [keys/issuer.pub, {a: 1}]\n" TAIL, 3, "keys.issuers[1]");
    pf_fail_at(HEAD "stages:\n  - {name: a, networks: 10.0.0.0/8}\n", 8, "stages[0].networks");
    pf_fail_at(HEAD "stages:\n  - {name: a, networks: []}\n", 8, "stages[0].networks");
    pf_fail_at(HEAD "stages:\n  - {name: a, plat: [[x]]}\n", 8, "stages[0].plat[0]");
    pf_fail_at(HEAD "stages:\n  - {name: a, chan: [a-channel-name-too-long]}\n", 8, "stages[0].chan[0]");
    pf_fail_at(HEAD "stages:\n  - {name: a, plat: [\"\"]}\n", 8, "stages[0].plat[0]");
    pf_fail_at(HEAD "stages:\n  - {name: a, uid_mod: 3}\n", 8, "stages[0].uid_mod");
    pf_fail_at(HEAD "stages:\n  - {name: a, salt: \"\"}\n", 8, "stages[0].salt");
    pf_fail_at(HEAD "stages:\n  - {name: a, salt: "
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n",
            8, "stages[0].salt");
}

Test(policy, refuses_bad_stage_names)
{
    pf_fail_at(HEAD "stages:\n  - name: a\n  - name: b\n  - name: a\n", 10, "stages[2].name");
    pf_fail_at(HEAD "stages:\n  - name: Bad_Name\n", 8, "stages[0].name");
    pf_fail_at(HEAD "stages:\n  - name: \"\"\n", 8, "stages[0].name");
    pf_fail_at(HEAD "stages:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 8, "stages[0].name");
    pf_fail_at(HEAD "stages:\n  - name: a b\n", 8, "stages[0].name");
    ug_policy *p = pf_load_ok(HEAD "stages:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n  - name: 0-9\n");
    cr_assert_eq(strlen(ST(p, 0)->name), 32);
    ug_policy_free(p);
}

Test(policy, refuses_bad_values)
{
    const char *cidrs[] = {"10.0.0.1/8", "10.0.0.0/33", "300.0.0.0/8", "2001:db8::1/32", "10.0.0.0/", "10.0.0.0/08",
                           "::/129", "10.0.0.0/8x", "fe80::1%eth0", "1.2.3"};
    for (size_t i = 0; i < sizeof cidrs / sizeof *cidrs; i++) {
        char t[1024], err[UG_ERR_MAX];
        snprintf(t, sizeof t, HEAD "stages:\n  - name: a\n    networks: [1.2.0.0/16, \"%s\"]\n", cidrs[i]);
        pf_fail_at(t, 9, "stages[0].networks[1]");
        cr_assert_null(pf_load_text(pf_yaml, t, err, sizeof err));
        cr_assert(strstr(err, cidrs[i]), "error does not name the value: %s", err);
    }
    const char *vers[] = {"1.x", "> 1.0", "01.2", "1.2.3.4.5", "", "<", "<=", "1..2", "=1.0"};
    for (size_t i = 0; i < sizeof vers / sizeof *vers; i++) {
        char t[1024];
        snprintf(t, sizeof t, HEAD "targets2: 1\n");
        snprintf(t, sizeof t, "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\n"
                              "release: releases/2.0.0.manifest\nstate: s\nstages: []\n"
                              "targets:\n  - 1.0\n  - \"%s\"\n", vers[i]);
        pf_fail_at(t, 7, "targets[1]");
    }
    pf_fail_at(HEAD "stages: [{name: a, uid_mod: {div: 0, rem: 0}}]\n", 7, "stages[0].uid_mod.div");
    pf_fail_at(HEAD "stages: [{name: a, uid_mod: {div: 3, rem: 3}}]\n", 7, "stages[0].uid_mod.rem");
    pf_fail_at(HEAD "stages: [{name: a, uid_mod: {div: 18446744073709551616, rem: 3}}]\n", 7, "stages[0].uid_mod.div");
    pf_fail_at(HEAD "stages: [{name: a, uid_digits_max: 0}]\n", 7, "stages[0].uid_digits_max");
    pf_fail_at(HEAD "stages: [{name: a, uid_digits_max: 20}]\n", 7, "stages[0].uid_digits_max");
    pf_fail_at(HEAD "stages: [{name: a, uids: [1, 0]}]\n", 7, "stages[0].uids[1]");
    pf_fail_at(HEAD "stages: [{name: a, uids: [9223372036854775808]}]\n", 7, "stages[0].uids[0]");
    pf_fail_at(HEAD "stages: [{name: a, uids: [-1]}]\n", 7, "stages[0].uids[0]");
    pf_fail_at(HEAD "stages: [{name: a, uids: []}]\n", 7, "stages[0].uids");
    pf_fail_at(HEAD "stages:\n  - name: a\n    quota: -1\n", 9, "stages[0].quota");
    pf_fail_at(HEAD "stages:\n  - name: a\n    quota: 1.5\n", 9, "stages[0].quota");
    pf_fail_at(HEAD "stages:\n  - name: a\n    quota: 18446744073709551616\n", 9, "stages[0].quota");
    pf_fail_at(HEAD "stages:\n  - name: a\n    quota: abc\n", 9, "stages[0].quota");
    pf_fail_at(HEAD "stages:\n  - name: a\n    rate: 0\n", 9, "stages[0].rate");
    pf_fail_at(HEAD "stages:\n  - name: a\n    rate: 0.0\n", 9, "stages[0].rate");
    pf_fail_at(HEAD "stages:\n  - name: a\n    rate: -5\n", 9, "stages[0].rate");
    pf_fail_at(HEAD "stages:\n  - name: a\n    rate: fast\n", 9, "stages[0].rate");
    pf_fail_at(HEAD "stages:\n  - name: a\n    rate: .nan\n", 9, "stages[0].rate");
    const char *times[] = {"2026-12-01", "2026-12-01T00:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                           "2026-12-01T24:00:00Z", "2026-12-01T00:00:00+8:00", "2026-12-01 00:00:00Z", "tomorrow",
                           "2026-12-01T00:00:00Zjunk", "1796083200"};
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        char t[1024];
        snprintf(t, sizeof t, HEAD "stages:\n  - name: a\n    start: %s\n", times[i]);
        pf_fail_at(t, 9, "stages[0].start");
    }
    pf_fail_at(HEAD "stages:\n  - name: a\n    start: 2026-12-01T00:00:00Z\n    end: 2026-12-01T00:00:00Z\n", 10, "stages[0].end");
    pf_fail_at(HEAD "stages:\n  - name: a\n    start: 2026-12-01T08:00:00+08:00\n    end: 2026-11-30T23:59:59Z\n", 10, "stages[0].end");
    pf_fail_at(HEAD "shard: {index: 3, count: 3}\nstages: []\n", 7, "shard.index");
    pf_fail_at(HEAD "shard: {index: 0, count: 0}\nstages: []\n", 7, "shard.count");
    pf_fail_at(HEAD "cookie: sometimes\nstages: []\n", 7, "cookie");
    pf_fail_at(HEAD "cookie: [auto]\nstages: []\n", 7, "cookie");
}

Test(policy, refuses_bad_files)
{
    pf_fail_at("keys:\n  hint: keys/missing.key\n  issuers: [keys/issuer.pub]\n" TAIL, 2, "keys.hint");
    pf_fail_at("keys:\n  hint: releases/2.0.0.manifest\n  issuers: [keys/issuer.pub]\n" TAIL, 2, "keys.hint");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers:\n    - keys/issuer.pub\n    - keys/nope.pub\n" TAIL, 5, "keys.issuers[1]");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers:\n    - keys/short.pub\n" TAIL, 4, "keys.issuers[0]");
    pf_fail_at("keys:\n  hint: keys/hint.key\n  issuers: [keys]\n" TAIL, 3, "keys.issuers[0]"); /* a folder */
    const char *k = "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\n";
    char t[1024];
    snprintf(t, sizeof t, "%srelease: releases/none.manifest\ntargets: [1.0]\nstate: s\nstages: []\n", k);
    pf_fail_at(t, 2, "release");
    snprintf(t, sizeof t, "%srelease: releases/garbage.manifest\ntargets: [1.0]\nstate: s\nstages: []\n", k);
    pf_fail_at(t, 2, "release");
    snprintf(t, sizeof t, "%srelease: keys/hint.pub\ntargets: [1.0]\nstate: s\nstages: []\n", k);
    pf_fail_at(t, 2, "release");
    snprintf(t, sizeof t, "%srelease: releases/big.manifest\ntargets: [1.0]\nstate: s\nstages: []\n", k);
    pf_fail_at(t, 2, "release");

    pf_fail_at(HEAD "stages:\n  - name: a\n    uids_file: lists/none.txt\n", 9, "stages[0].uids_file");
    char lf[600];
    pf_pathf(lf, sizeof lf, "lists/bad.txt");
    pf_put("lists/bad.txt", "1\n2\n# fine\n\n3x\n4\n", 17);
    pf_fail_at_file(HEAD "stages:\n  - name: a\n    uids_file: lists/bad.txt\n", lf, 5, "stages[0].uids_file");
    pf_put("lists/bad.txt", "1\n0\n", 4);
    pf_fail_at_file(HEAD "stages:\n  - name: a\n    uids_file: lists/bad.txt\n", lf, 2, "stages[0].uids_file");
    pf_put("lists/bad.txt", "1\n9223372036854775808", 21);
    pf_fail_at_file(HEAD "stages:\n  - name: a\n    uids_file: lists/bad.txt\n", lf, 2, "stages[0].uids_file");
    pf_put("lists/bad.txt", "1\n2\n00000000000000000000000000000000000000000000000001\n", 54);
    pf_fail_at_file(HEAD "stages:\n  - name: a\n    uids_file: lists/bad.txt\n", lf, 3, "stages[0].uids_file");
    pf_put("lists/bad.txt", "-5\n", 3);
    pf_fail_at_file(HEAD "stages:\n  - name: a\n    uids_file: lists/bad.txt\n", lf, 1, "stages[0].uids_file");
    /* not a regular file: refused at once, never read forever (found by fuzz_policy) */
    pf_fail_at(HEAD "stages:\n  - name: a\n    uids_file: /dev/zero\n", 9, "stages[0].uids_file");
    char fifo[600];
    pf_pathf(fifo, sizeof fifo, "lists/fifo");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    pf_fail_at(HEAD "stages:\n  - name: a\n    uids_file: lists/fifo\n", 9, "stages[0].uids_file");
}

Test(policy, errors_stay_one_line_and_bounded)
{
    char err[UG_ERR_MAX];
    /* A key with control characters and a huge name. */
    char t[8192];
    char longkey[3000];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    snprintf(t, sizeof t, HEAD "\"a\\nb\": 1\n%s: 2\nstages: []\n", longkey);
    cr_assert_null(pf_load_text(pf_yaml, t, err, sizeof err));
    cr_assert_null(strchr(err, '\n'), "%s", err);
    snprintf(t, sizeof t, HEAD "%s: 2\nstages: []\n", longkey);
    cr_assert_null(pf_load_text(pf_yaml, t, err, sizeof err));
    cr_assert(strlen(err) < sizeof err);
    /* A tiny buffer is filled, not overrun. */
    char small[16];
    cr_assert_null(pf_load_text(pf_yaml, HEAD "retry: x\nstages: []\n", small, sizeof small));
    cr_assert_eq(strlen(small), sizeof small - 1);
    /* NULL err is fine. */
    cr_assert_null(pf_load_text(pf_yaml, HEAD "retry: x\nstages: []\n", NULL, 0));
    cr_assert_null(ug_policy_load(NULL, err, sizeof err));
    ug_policy_free(NULL);
}

Test(policy, huge_uids_file_loads)
{
    char *buf = malloc(100000 * 12);
    cr_assert(buf);
    size_t len = 0;
    for (uint64_t i = 0; i < 100000; i++)
        len += (size_t)snprintf(buf + len, 100000 * 12 - len, "%" PRIu64 "\n", (uint64_t)1000000000 + i * 7);
    pf_put("lists/big.txt", buf, len);
    free(buf);
    ug_policy *p = pf_load_ok(HEAD "stages:\n  - {name: big, uids_file: lists/big.txt}\n");
    const ug_stage *s = ST(p, 0);
    cr_assert_str_eq(pf_describe(s, "uids"), "uid in a list of 100000");
    cr_assert(pf_uid_in(s, 1000000000ull));
    cr_assert(pf_uid_in(s, 1000000000ull + 99999 * 7));
    cr_assert(!pf_uid_in(s, 1000000001ull));
    ug_policy_free(p);
}

/* ---- nets ----------------------------------------------------------------- */

Test(nets, v4_v6_membership_and_prefixes)
{
    ug_nets *n = ug_nets_new();
    cr_assert(n);
    cr_assert(!has4(n, "1.2.3.4"));
    cr_assert(ug_nets_add(n, "10.0.0.0/8") == 0);
    cr_assert(ug_nets_add(n, "10.1.0.0/16") == 0); /* nested: still inside 10/8 */
    cr_assert(ug_nets_add(n, "192.168.1.7") == 0);  /* bare = /32 */
    cr_assert(ug_nets_add(n, "2001:db8::/32") == 0);
    cr_assert(ug_nets_add(n, "2001:db8:1::/48") == 0);
    cr_assert(ug_nets_add(n, "fe80::1") == 0);
    cr_assert(has4(n, "10.0.0.0") && has4(n, "10.255.255.255") && has4(n, "10.1.2.3"));
    cr_assert(!has4(n, "11.0.0.0") && !has4(n, "9.255.255.255"));
    cr_assert(has4(n, "192.168.1.7") && !has4(n, "192.168.1.6") && !has4(n, "192.168.1.8"));
    cr_assert(has6(n, "2001:db8::") && has6(n, "2001:db8:ffff:ffff::1") && !has6(n, "2001:db9::"));
    cr_assert(has6(n, "fe80::1") && !has6(n, "fe80::2"));
    /* IPv4 never matches v6 prefixes and the reverse */
    cr_assert(!has6(n, "::10.1.2.3"));
    /* mapped addresses are looked up as IPv4 */
    cr_assert(has6(n, "::ffff:10.1.2.3") && !has6(n, "::ffff:11.1.2.3"));
    cr_assert(!contains(n, AF_UNIX, (const uint8_t *)"abcd"));

    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "10.9.9.9", &in.sin_addr);
    cr_assert(ug_nets_contains_sa(n, (struct sockaddr *)&in));
    inet_pton(AF_INET, "11.9.9.9", &in.sin_addr);
    cr_assert(!ug_nets_contains_sa(n, (struct sockaddr *)&in));
    inet_pton(AF_INET6, "2001:db8::5", &in6.sin6_addr);
    cr_assert(ug_nets_contains_sa(n, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "::ffff:10.0.0.1", &in6.sin6_addr);
    cr_assert(ug_nets_contains_sa(n, (struct sockaddr *)&in6));
    inet_pton(AF_INET6, "::ffff:12.0.0.1", &in6.sin6_addr);
    cr_assert(!ug_nets_contains_sa(n, (struct sockaddr *)&in6));
    cr_assert(!ug_nets_contains_sa(n, NULL));
    ug_nets_free(n);
    ug_nets_free(NULL);
}

Test(nets, mapped_prefixes_and_zero_length)
{
    ug_nets *n = ug_nets_new();
    cr_assert(ug_nets_add(n, "::ffff:10.0.0.0/104") == 0); /* = 10.0.0.0/8 */
    cr_assert(has4(n, "10.2.3.4") && has6(n, "::ffff:10.2.3.4") && !has4(n, "11.0.0.0"));
    ug_nets_free(n);

    n = ug_nets_new();
    cr_assert(ug_nets_add(n, "0.0.0.0/0") == 0);
    cr_assert(has4(n, "1.2.3.4") && has6(n, "::ffff:1.2.3.4") && !has6(n, "2001:db8::1"));
    ug_nets_free(n);

    n = ug_nets_new();
    cr_assert(ug_nets_add(n, "::/0") == 0); /* all of v6, mapped ones included */
    cr_assert(has6(n, "2001:db8::1") && has6(n, "::ffff:1.2.3.4") && has4(n, "1.2.3.4"));
    ug_nets_free(n);

    n = ug_nets_new();
    cr_assert(ug_nets_add(n, "2000::/3") == 0); /* does not cover ::ffff:0:0/96 */
    cr_assert(has6(n, "2001:db8::1") && !has4(n, "1.2.3.4") && !has6(n, "::ffff:1.2.3.4"));
    ug_nets_free(n);
}

Test(nets, sealed_ranges_merge_at_the_edges)
{
    ug_nets *n = ug_nets_new();
    const char *in[] = {"10.0.0.0/9", "10.128.0.0/9", "10.64.0.0/10", "255.255.255.255", "255.255.255.254/32",
                        "0.0.0.0/32", "192.168.0.0/24", "192.168.2.0/24", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                        "::/128", "2001:db8::/33", "2001:db8:8000::/33", "2001:db8::/48"};
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        cr_assert(ug_nets_add(n, in[i]) == 0, "%s", in[i]);
    for (int round = 0; round < 3; round++) { /* unsealed, sealed, sealed twice */
        cr_assert(has4(n, "10.0.0.0") && has4(n, "10.127.255.255") && has4(n, "10.128.0.0") && has4(n, "10.255.255.255"));
        cr_assert(!has4(n, "9.255.255.255") && !has4(n, "11.0.0.0"));
        cr_assert(has4(n, "255.255.255.255") && has4(n, "255.255.255.254") && !has4(n, "255.255.255.253"));
        cr_assert(has4(n, "0.0.0.0") && !has4(n, "0.0.0.1"));
        cr_assert(has4(n, "192.168.0.255") && !has4(n, "192.168.1.0") && has4(n, "192.168.2.0"));
        cr_assert(has6(n, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff") && !has6(n, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"));
        cr_assert(has6(n, "::") && !has6(n, "::2"));
        cr_assert(has6(n, "2001:db8::") && has6(n, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff") && !has6(n, "2001:db9::"));
        ug_nets_seal(n);
    }
    ug_nets_seal(NULL);
    ug_nets_free(n);
}

Test(nets, rejects_malformed)
{
    ug_nets *n = ug_nets_new();
    const char *bad[] = {"", "/8", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0/8",
                         "10.0.0.0/8/8", "2001:db8::1/32", "::/129", "x", "10.0.0.0/0008", "1.2.3.4 ",
                         "::ffff:10.0.0.1/104"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(ug_nets_add(n, bad[i]) == -1, "accepted \"%s\"", bad[i]);
    cr_assert(ug_nets_add(NULL, "10.0.0.0/8") == -1);
    cr_assert(ug_nets_add(n, NULL) == -1);
    cr_assert(!has4(n, "10.0.0.0"));
    ug_nets_free(n);
}

typedef struct {
    uint8_t a[16];
    unsigned len;
    bool v6;
} pfx;

static bool naive(const pfx *ps, size_t n, bool v6, const uint8_t *a)
{
    for (size_t i = 0; i < n; i++) {
        if (ps[i].v6 != v6)
            continue;
        unsigned len = ps[i].len, full = len / 8, rest = len % 8;
        if (memcmp(ps[i].a, a, full) != 0)
            continue;
        if (rest && ((ps[i].a[full] ^ a[full]) & (uint8_t)(0xff << (8 - rest))))
            continue;
        return true;
    }
    return false;
}

Test(nets, random_prefixes_agree_with_naive_scan)
{
    enum { NP = 10000, NQ = 20000 };
    static pfx ps[NP];
    ug_nets *n = ug_nets_new();
    srand(12345);
    for (size_t i = 0; i < NP; i++) {
        pfx *p = &ps[i];
        p->v6 = rand() % 2;
        for (size_t j = 0; j < 16; j++)
            p->a[j] = (uint8_t)rand();
        if (p->v6) {
            p->a[0] = 0x20 | (p->a[0] & 0x0f); /* stay out of the mapped range */
            p->len = 8 + (unsigned)rand() % 121;
        } else {
            p->len = 8 + (unsigned)rand() % 25;
        }
        unsigned bits = p->v6 ? 128 : 32;
        for (unsigned b = p->len; b < bits; b++)
            p->a[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
        char txt[INET6_ADDRSTRLEN], cidr[64];
        inet_ntop(p->v6 ? AF_INET6 : AF_INET, p->a, txt, sizeof txt);
        snprintf(cidr, sizeof cidr, "%s/%u", txt, p->len);
        cr_assert(ug_nets_add(n, cidr) == 0, "%s", cidr);
        if (i == NP / 2)
            ug_nets_seal(n); /* the first half sorted, the rest scanned */
    }
    size_t hits = 0;
    for (size_t q = 0; q < 2 * NQ; q++) {
        if (q == NQ) {
            ug_nets_seal(n); /* now all of it sorted and merged: the same answers */
            srand(777);
        }
        bool v6 = rand() % 2;
        uint8_t a[16];
        if (q % 2) { /* near a stored prefix, so some queries hit */
            const pfx *p = &ps[(size_t)rand() % NP];
            v6 = p->v6;
            memcpy(a, p->a, 16);
            unsigned bits = v6 ? 128 : 32, b = (unsigned)rand() % bits;
            a[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
        } else {
            for (size_t j = 0; j < 16; j++)
                a[j] = (uint8_t)rand();
            if (v6)
                a[0] = 0x20 | (a[0] & 0x0f);
        }
        bool want = naive(ps, NP, v6, a);
        hits += want;
        cr_assert_eq(contains(n, v6 ? AF_INET6 : AF_INET, a), want, "query %zu", q);
    }
    cr_assert(hits > NQ / 5 && hits < 2 * NQ, "hits %zu", hits);
    ug_nets_free(n);
}

/* ---- uidset --------------------------------------------------------------- */

/* The removed ug_uidset_count, kept here as the test's oracle: the
 * distinct uids added, counted as they go in. */
static size_t uid_count;

static void add_uid(ug_uidset *s, uint64_t uid)
{
    bool had = ug_uidset_has(s, uid);
    cr_assert(ug_uidset_add(s, uid) == 0);
    cr_assert(ug_uidset_has(s, uid));
    uid_count += !had;
}

Test(uidset, million_entries)
{
    ug_uidset *s = ug_uidset_new();
    cr_assert(s);
    cr_assert(!ug_uidset_has(s, 1));
    uid_count = 0;
    for (uint64_t i = 1; i <= 1000000; i++)
        add_uid(s, i * 3);
    add_uid(s, 3); /* duplicate */
    cr_assert_eq(uid_count, 1000000);
    for (uint64_t i = 1; i <= 3000003; i++)
        if (ug_uidset_has(s, i) != (i % 3 == 0 && i <= 3000000))
            cr_assert_fail("uid %" PRIu64, i);
    add_uid(s, UINT64_MAX);
    cr_assert(!ug_uidset_has(s, 0));
    add_uid(s, 0);
    cr_assert_eq(uid_count, 1000002);
    ug_uidset_free(s);
    ug_uidset_free(NULL);
    cr_assert(!ug_uidset_has(NULL, 1));
}

/* ---- evaluation -------------------------------------------------------------- */

static ug_target tgt(ug_target_op op, const char *v)
{
    ug_target t = {.op = op};
    cr_assert(ug_version_parse(&t.v, v, strlen(v)) == 0);
    return t;
}

static bool targets(const ug_rollout *r, const char *v)
{
    ug_version ver;
    cr_assert(ug_version_parse(&ver, v, strlen(v)) == 0);
    return ug_rollout_targets(r, &ver);
}

Test(eval, targets_eq_lt_le)
{
    ug_target ts[3] = {tgt(UG_TARGET_EQ, "1.4"), tgt(UG_TARGET_LT, "1.3"), tgt(UG_TARGET_LE, "1.2.5")};
    ug_rollout p;
    memset(&p, 0, sizeof p);
    p.targets = ts;
    p.ntargets = 1;
    cr_assert(targets(&p, "1.4.0") && targets(&p, "1.4") && targets(&p, "1.4.0.0"));
    cr_assert(!targets(&p, "1.4.1") && !targets(&p, "1.3"));
    p.ntargets = 3;
    cr_assert(targets(&p, "1.2.9") && targets(&p, "0.1") && targets(&p, "1.2.5"));
    cr_assert(!targets(&p, "1.3") && !targets(&p, "1.3.0") && !targets(&p, "2.0"));
    p.targets = &ts[2];
    p.ntargets = 1;
    cr_assert(targets(&p, "1.2.5.0") && !targets(&p, "1.2.5.1") && !targets(&p, "1.2.9"));
    p.ntargets = 0;
    cr_assert(!targets(&p, "1.4"));
}

Test(eval, share_formula)
{
    ug_policy p;
    memset(&p, 0, sizeof p);
    p.shard_count = 3;
    uint64_t want[3] = {4, 3, 3};
    for (uint32_t i = 0; i < 3; i++) {
        p.shard_index = i;
        cr_assert_eq(ug_policy_share(&p, 10), want[i]);
    }
    uint64_t qs[] = {0, 1, 2, 5, 7, 99, 1000000, 1000001, UINT64_MAX - 1, UINT64_MAX};
    for (uint32_t count = 1; count <= 17; count++) {
        for (size_t k = 0; k < sizeof qs / sizeof *qs; k++) {
            uint64_t sum = 0, min = UINT64_MAX, max = 0;
            p.shard_count = count;
            for (uint32_t i = 0; i < count; i++) {
                p.shard_index = i;
                uint64_t s = ug_policy_share(&p, qs[k]);
                sum += s;
                min = s < min ? s : min;
                max = s > max ? s : max;
            }
            cr_assert_eq(sum, qs[k], "q %" PRIu64 " count %u", qs[k], count);
            cr_assert(max - min <= 1);
        }
    }
}


/* A policy with one stage naming one condition. */
static ug_policy *one_stage(const char *cond)
{
    char t[1024];
    snprintf(t, sizeof t, HEAD "stages: [{name: a, %s}]\n", cond);
    return pf_load_ok(t);
}

Test(eval, each_condition_alone)
{
    ug_stage s;
    memset(&s, 0, sizeof s);
    ug_hello h = pf_hello(1234567, "", "");
    struct sockaddr_in6 in = pf_addr6("::ffff:10.1.2.3"), out = pf_addr6("2001:db8::1");
    cr_assert(pf_selects(&s, &h, SA(in), 0), "no condition selects everyone");
    cr_assert(pf_selects(&s, &h, NULL, 0));

    ug_policy *p = one_stage("networks: [10.0.0.0/8]");
    const ug_stage *st = ST(p, 0);
    cr_assert(pf_selects(st, &h, SA(in), 0));
    cr_assert(!pf_selects(st, &h, SA(out), 0));
    cr_assert(!pf_selects(st, &h, NULL, 0));
    ug_policy_free(p);

    p = one_stage("uids: [1234567]");
    st = ST(p, 0);
    cr_assert(pf_selects(st, &h, NULL, 0));
    h.uid = 1234568;
    cr_assert(!pf_selects(st, &h, NULL, 0));
    ug_policy_free(p);

    p = one_stage("uid_digits_max: 7");
    st = ST(p, 0);
    uint64_t yes[] = {1, 9, 10, 9999999}, no[] = {10000000, 123456789012ull, UG_UID_MAX};
    for (size_t i = 0; i < 4; i++) {
        h.uid = yes[i];
        cr_assert(pf_selects(st, &h, NULL, 0), "%" PRIu64, yes[i]);
    }
    for (size_t i = 0; i < 3; i++) {
        h.uid = no[i];
        cr_assert(!pf_selects(st, &h, NULL, 0), "%" PRIu64, no[i]);
    }
    ug_policy_free(p);
    p = one_stage("uid_digits_max: 19");
    h.uid = UG_UID_MAX;
    cr_assert(pf_selects(ST(p, 0), &h, NULL, 0));
    ug_policy_free(p);

    p = one_stage("uid_mod: {div: 3, rem: 1}");
    for (uint64_t u = 1; u < 100; u++) {
        h.uid = u;
        cr_assert_eq(pf_selects(ST(p, 0), &h, NULL, 0), u % 3 == 1);
    }
    ug_policy_free(p);

    p = one_stage("plat: [windows-x86_64, linux-aarch64]");
    st = ST(p, 0);
    h = pf_hello(5, "linux-aarch64", "");
    cr_assert(pf_selects(st, &h, NULL, 0));
    h = pf_hello(5, "linux-x86_64", "");
    cr_assert(!pf_selects(st, &h, NULL, 0));
    h = pf_hello(5, "", "");
    cr_assert(!pf_selects(st, &h, NULL, 0), "a HELLO without plat fails a plat condition");
    ug_policy_free(p);

    p = one_stage("chan: [stable]");
    st = ST(p, 0);
    h = pf_hello(5, "", "stable");
    cr_assert(pf_selects(st, &h, NULL, 0));
    h = pf_hello(5, "", "beta");
    cr_assert(!pf_selects(st, &h, NULL, 0));
    h = pf_hello(5, "", "");
    cr_assert(!pf_selects(st, &h, NULL, 0));
    ug_policy_free(p);

    s.has_start = true;
    s.start = 1000;
    cr_assert(!pf_selects(&s, &h, NULL, 999) && !ug_stage_active(&s, 999));
    cr_assert(pf_selects(&s, &h, NULL, 1000) && ug_stage_active(&s, INT64_MAX));
    s.has_start = false;
    s.has_end = true;
    s.end = 2000;
    cr_assert(pf_selects(&s, &h, NULL, INT64_MIN) && pf_selects(&s, &h, NULL, 1999));
    cr_assert(!pf_selects(&s, &h, NULL, 2000) && !ug_stage_active(&s, 2000));
    s.has_start = true;
    cr_assert(!ug_stage_active(&s, 999) && ug_stage_active(&s, 1000) && ug_stage_active(&s, 1999) &&
              !ug_stage_active(&s, 2000));
}

Test(eval, percent_agrees_with_spec_vectors)
{
    json_t *j = tu_vectors("policy.json");
    json_t *arr = json_object_get(j, "buckets"), *v;
    size_t i, n = 0;
    json_array_foreach(arr, i, v) {
        const char *salt = json_string_value(json_object_get(v, "salt"));
        uint64_t uid = (uint64_t)json_integer_value(json_object_get(v, "uid"));
        uint32_t bucket = (uint32_t)json_integer_value(json_object_get(v, "bucket"));
        cr_assert(salt);
        ug_stage s;
        memset(&s, 0, sizeof s);
        s.has_percent = true;
        s.percent.kind = UG_PCT_CONST;
        s.salt_len = strlen(salt);
        memcpy(s.salt, salt, s.salt_len);
        ug_hello h = pf_hello(uid, "", "");
        s.percent.bp = bucket; /* bucket < pf_yaml*100 is strict */
        cr_assert(!pf_selects(&s, &h, NULL, 0), "salt %s uid %" PRIu64, salt, uid);
        s.percent.bp = bucket + 1;
        cr_assert(pf_selects(&s, &h, NULL, 0), "salt %s uid %" PRIu64, salt, uid);
        s.percent.bp = 10000;
        cr_assert(pf_selects(&s, &h, NULL, 0));
        s.percent.bp = 0;
        cr_assert(!pf_selects(&s, &h, NULL, 0));
        n++;
    }
    cr_assert(n >= 18);
    json_decref(j);
}

Test(policy, percent_salt_from_file_matches_vectors)
{
    /* Stage "one-percent" with 44.57%: uid 1 (bucket 4456) in, uid 3 (3938) in, 9999999 (6834) out. */
    ug_policy *p = pf_load_ok(HEAD "stages:\n  - {name: one-percent, percent: 44.57}\n"
                                "  - {name: x, salt: ten-pct, percent: 9.44}\n");
    ug_hello h = pf_hello(1, "", "");
    cr_assert(pf_selects(ST(p, 0), &h, NULL, 0));
    h.uid = 3;
    cr_assert(pf_selects(ST(p, 0), &h, NULL, 0));
    h.uid = 9999999;
    cr_assert(!pf_selects(ST(p, 0), &h, NULL, 0));
    h.uid = 1; /* ten-pct bucket 944: out at 9.44, in at 9.45 */
    cr_assert(!pf_selects(ST(p, 1), &h, NULL, 0));
    h.uid = 9999999; /* bucket 87 */
    cr_assert(pf_selects(ST(p, 1), &h, NULL, 0));
    ug_policy_free(p);
}

Test(eval, conditions_combined)
{
    ug_policy *p = pf_load_ok(HEAD "stages:\n"
                                "  - name: combo\n"
                                "    networks: [10.0.0.0/8, \"2001:db8::/32\"]\n"
                                "    uid_mod: {div: 2, rem: 0}\n"
                                "    uid_digits_max: 3\n"
                                "    uids: [2, 4, 6, 1000, 9]\n"
                                "    plat: [linux-x86_64]\n"
                                "    chan: [stable, beta]\n"
                                "    start: 2026-12-01T00:00:00Z\n"
                                "    end: 2026-12-31T00:00:00Z\n");
    const ug_stage *s = ST(p, 0);
    struct sockaddr_in6 in = pf_addr6("2001:db8::7"), out = pf_addr6("2001:db9::7");
    int64_t now = 1796083200 + 10;
    ug_hello h = pf_hello(4, "linux-x86_64", "beta");
    cr_assert(pf_selects(s, &h, SA(in), now));
    cr_assert(!pf_selects(s, &h, SA(out), now));          /* network */
    cr_assert(!pf_selects(s, &h, SA(in), 1796083199));    /* before start */
    cr_assert(!pf_selects(s, &h, SA(in), 1798675200));    /* at end */
    h.uid = 9;                                                  /* in uids, odd */
    cr_assert(!pf_selects(s, &h, SA(in), now));
    h.uid = 1000;                                               /* in uids, even, 4 digits */
    cr_assert(!pf_selects(s, &h, SA(in), now));
    h.uid = 8;                                                  /* even, short, not in uids */
    cr_assert(!pf_selects(s, &h, SA(in), now));
    h = pf_hello(6, "windows-x86_64", "beta");
    cr_assert(!pf_selects(s, &h, SA(in), now));
    h = pf_hello(6, "linux-x86_64", "nightly");
    cr_assert(!pf_selects(s, &h, SA(in), now));
    h = pf_hello(6, "linux-x86_64", "stable");
    cr_assert(pf_selects(s, &h, SA(in), now));
    ug_policy_free(p);
}

/* explain's "not targeted": which routing field of a rollout a peer fails (issue 20 §8). */
Test(policy, a_rollout_says_why_it_does_not_own_a_peer)
{
    ug_policy *p = pf_load_ok(HEAD2 "  - {name: a, release: releases/2.0.0.manifest, targets: [\"1.4.0\", \"1.4.1\", "
                                    "\"<1.3\"], plat: [linux-x86_64, windows-x86_64], chan: [stable], stages: []}\n");
    const ug_rollout *r = R0(p);
    char buf[600];
    ug_version v;
    cr_assert(ug_version_parse(&v, "1.3.5", 5) == 0);
    cr_assert_str_eq(ug_rollout_miss(r, &v, "linux-x86_64", "stable", buf, sizeof buf),
                     "version 1.3.5 is not in its targets [1.4.0, 1.4.1, <1.3]");
    cr_assert(ug_version_parse(&v, "2.0.0", 5) == 0);
    cr_assert_str_eq(ug_rollout_miss(r, &v, "linux-x86_64", "stable", buf, sizeof buf),
                     "version 2.0.0 is at or past its release 2.0.0 (targets [1.4.0, 1.4.1, <1.3])");
    cr_assert(ug_version_parse(&v, "1.4.1", 5) == 0);
    cr_assert_str_eq(ug_rollout_miss(r, &v, "linux-aarch64", "stable", buf, sizeof buf),
                     "platform linux-aarch64 is not in its platforms [linux-x86_64, windows-x86_64]");
    cr_assert_str_eq(ug_rollout_miss(r, &v, "", "stable", buf, sizeof buf),
                     "no platform given, and it targets the platforms [linux-x86_64, windows-x86_64]");
    cr_assert_str_eq(ug_rollout_miss(r, &v, "linux-x86_64", "beta", buf, sizeof buf),
                     "channel beta is not in its channels [stable]");
    cr_assert_null(ug_rollout_miss(r, &v, "windows-x86_64", "stable", buf, sizeof buf));
    cr_assert_eq(ug_policy_route(p, &v, "windows-x86_64", "stable"), r);
    ug_policy_free(p);
}
