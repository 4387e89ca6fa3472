/* The YAML layer under hostile input (plugin/policy/yaml_tree.c and the loader's
 * work budget): every generated file is loaded or refused, in a forked
 * child whose peak memory (getrusage maxrss) must grow by less than
 * 256 MB. Times are printed, never asserted: `make test` is no benchmark. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy_fixture.h"
#include "testutil.h"

TestSuite(yaml, .init = pf_setup, .fini = pf_teardown, .timeout = 120);

/* ASan's redzones and quarantine roughly double what a load holds: the
 * bound is the plain build's; under `make test SAN=1` it is only reported. */
#if defined(__SANITIZE_ADDRESS__)
#define MEM_MAX_MB 1024
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_MAX_MB 1024
#endif
#endif
#ifndef MEM_MAX_MB
#define MEM_MAX_MB 256
#endif

/* A growing text. */
typedef struct {
    char *s;
    size_t n, cap;
} buf;

__attribute__((format(printf, 2, 3))) static void add(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        cr_assert(w >= 0);
        if ((size_t)w < b->cap - b->n) {
            b->n += (size_t)w;
            return;
        }
        b->cap = b->cap ? b->cap * 2 + (size_t)w : 4096 + (size_t)w;
        cr_assert(b->s = realloc(b->s, b->cap));
    }
}

static void repeat(buf *b, const char *s, size_t times)
{
    size_t l = strlen(s);
    while (b->cap - b->n <= l * times + 1) {
        b->cap = b->cap * 2 + l * times + 1;
        cr_assert(b->s = realloc(b->s, b->cap));
    }
    for (size_t i = 0; i < times; i++, b->n += l)
        memcpy(b->s + b->n, s, l);
    b->s[b->n] = '\0';
}

typedef struct {
    int accepted;
    double secs;
    long grew_kb;
    char err[UG_ERR_MAX + UG_PATH_MAX];
    char info[256];
} outcome;

typedef void (*probe_fn)(const ug_policy *p, char *info, size_t cap);

/* Writes the text as the policy, frees it, loads it in a child. */
static outcome load_in_child(const char *what, buf *b, probe_fn probe)
{
    pf_put("policy.yaml", b->s, b->n);
    size_t size = b->n;
    free(b->s);
    *b = (buf){0};
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        outcome o;
        memset(&o, 0, sizeof o);
        struct rusage ru;
        struct timespec t0, t1;
        getrusage(RUSAGE_SELF, &ru);
        long before = ru.ru_maxrss;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ug_policy *p = ug_policy_load(pf_yaml, o.err, sizeof o.err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        getrusage(RUSAGE_SELF, &ru);
        o.grew_kb = ru.ru_maxrss - before;
        o.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        o.accepted = p != NULL;
        if (p && probe)
            probe(p, o.info, sizeof o.info);
        ug_policy_free(p);
        _exit(write(fd[1], &o, sizeof o) == (ssize_t)sizeof o ? 0 : 1);
    }
    close(fd[1]);
    outcome o;
    size_t got = 0;
    while (got < sizeof o) {
        ssize_t r = read(fd[0], (char *)&o + got, sizeof o - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == sizeof o, "the loading child died: %d", status);
    fprintf(stderr, "  yaml %-34s %9zu bytes %-8s in %6.3f s, peak +%ld MB\n", what, size,
            o.accepted ? "loaded" : "refused", o.secs, o.grew_kb / 1024);
    cr_assert_lt(o.grew_kb / 1024, MEM_MAX_MB, "%s: peak memory grew by %ld MB", what, o.grew_kb / 1024);
    return o;
}

static void refused(const outcome *o, const char *line_key, const char *what)
{
    cr_assert(!o->accepted, "accepted");
    cr_assert(strstr(o->err, line_key) && strstr(o->err, what), "got \"%s\", want \"%s\" and \"%s\"", o->err,
              line_key, what);
    cr_assert_null(strchr(o->err, '\n'));
}

Test(yaml, deep_flow_nesting_is_refused_at_depth_32)
{
    buf b = {0};
    add(&b, HEAD "stages: [{name: a, uids: ");
    repeat(&b, "[", 4000000);
    repeat(&b, "]", 4000000);
    add(&b, "}]\n");
    outcome o = load_in_child("deep flow nesting", &b, NULL);
    refused(&o, ":7: stages[0].uids[0][0][0]", "nested deeper than 32 levels");
}

Test(yaml, deep_block_nesting_is_refused_at_depth_32)
{
    buf b = {0};
    add(&b, HEAD "stages: []\n");
    for (size_t i = 0; i < 1500; i++) {
        repeat(&b, " ", i);
        add(&b, "k%zu:\n", i);
    }
    outcome o = load_in_child("deep block nesting", &b, NULL);
    refused(&o, ":40: k0.k1.k2", "nested deeper than 32 levels");
    cr_assert(strstr(o.err, ".k30.k31: "), "%s", o.err);
}

Test(yaml, a_hundred_thousand_anchors_are_refused)
{
    buf b = {0};
    add(&b, HEAD "stages: [{name: a, uids: [");
    for (size_t i = 0; i < 100000; i++)
        add(&b, "&a%zu %zu, ", i, i + 1);
    add(&b, "1]}]\n");
    outcome o = load_in_child("100k anchors", &b, NULL);
    refused(&o, ":7: stages[0].uids[1000]: ", "more than 1000 anchors");
}

Test(yaml, a_hundred_thousand_aliases_are_refused)
{
    buf b = {0};
    add(&b, HEAD "stages:\n  - {name: a, uids: &u [1, 2, 3]}\n");
    for (size_t i = 0; i < 100000; i++)
        add(&b, "  - {name: s%zu, uids: *u}\n", i);
    outcome o = load_in_child("100k aliases", &b, NULL);
    refused(&o, ":1009: stages[1001].uids: ", "more than 1000 aliases");
}

Test(yaml, a_billion_laughs_costs_nothing_to_read)
{
    /* 10^9 "lol"s if copied; shared, the tree has 100 nodes. It is refused
     * where the loader meets it: a target is one string, not a list. */
    buf b = {0};
    add(&b, "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nrelease: releases/2.0.0.manifest\nstate: state/\n"
            "stages: []\nx0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < 10; i++)
        add(&b, "x%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i - 1, i - 1, i - 1,
            i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    add(&b, "targets: *l9\n");
    outcome o = load_in_child("billion laughs", &b, NULL);
    refused(&o, ":5: x0", "unknown key");

    add(&b, HEAD2 "  - name: a\n    release: releases/2.0.0.manifest\n    targets: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                  "    stages: []\n    plat: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\n");
    o = load_in_child("laughs in a rollout", &b, NULL);
    /* the line is where the shared node is written */
    refused(&o, ":6: rollouts[0].plat[0]: ", "expected a string, got a list");
}

/* A first stage s0 whose uids are 100,001 under the anchor &big. */
static void big_list_stage(buf *b)
{
    add(b, HEAD "stages:\n  - name: s0\n    uids: &big [");
    for (size_t i = 0; i < 100000; i++)
        add(b, "%zu, ", 1000000 + i * 7);
    add(b, "1]\n");
}

static void probe_shared(const ug_policy *p, char *info, size_t cap)
{
    const ug_rollout *r = R0(p);
    size_t owners = 0;
    for (size_t i = 0; i < r->nstages; i++)
        owners += r->stages[i].nconds == 1 && r->stages[i].conds[0].owns;
    char d[128];
    r->stages[r->nstages - 1].conds[0].kind->describe(r->stages[r->nstages - 1].conds[0].arg, d, sizeof d);
    snprintf(info, cap, "%zu stages, %zu owners, last: %s", r->nstages, owners, d);
}

Test(yaml, three_hundred_stages_share_one_aliased_uid_list)
{
    /* libyaml's document loader copied the list for every alias: 1 MB of
     * text took 620 MB. Here one set is built and 299 stages share it. */
    buf b = {0};
    big_list_stage(&b);
    for (size_t i = 1; i < 300; i++)
        add(&b, "  - {name: s%zu, uids: *big, quota: %zu}\n", i, i);
    outcome o = load_in_child("300 stages alias a 100k list", &b, probe_shared);
    cr_assert(o.accepted, "%s", o.err);
    cr_assert_str_eq(o.info, "300 stages, 1 owners, last: uid in a list of 100001");
}

Test(yaml, rollouts_aliasing_a_big_stage_list_hit_the_work_budget)
{
    /* 1000 rollouts sharing 2,100 stages would be 2.1 million stage loads */
    buf b = {0};
    add(&b, HEAD2 "  - name: r0\n    release: releases/2.0.0.manifest\n    targets: [1.0]\n    stages: &s\n");
    for (size_t i = 0; i < 2100; i++)
        add(&b, "      - {name: s%zu}\n", i);
    for (size_t i = 1; i < 999; i++)
        add(&b, "  - {name: r%zu, release: releases/2.0.0.manifest, targets: [1.0], stages: *s}\n", i);
    outcome o = load_in_child("999 rollouts alias 2100 stages", &b, NULL);
    refused(&o, "stages", "more than");
    cr_assert(strstr(o.err, "rollouts["), "%s", o.err);
}

Test(yaml, an_aliased_list_beside_a_uids_file_hits_the_work_budget)
{
    /* with both keys the set is built per stage: 300 x 100k uids walked */
    buf b = {0};
    big_list_stage(&b);
    for (size_t i = 1; i < 300; i++)
        add(&b, "  - {name: s%zu, uids: *big, uids_file: lists/canary.txt}\n", i);
    outcome o = load_in_child("300 stages: alias + uids_file", &b, NULL);
    refused(&o, ": stages[20].uids: ", "aliases make the loader walk more than 2097152 items");
}

Test(yaml, more_than_two_million_nodes_are_refused)
{
    buf b = {0};
    add(&b, HEAD "stages: [{name: a, uids: [");
    repeat(&b, "1,", (1u << 21) + 10);
    add(&b, "1]}]\n");
    outcome o = load_in_child("2.1M nodes", &b, NULL);
    refused(&o, ":7: stages[0].uids[", "more than 2097152 YAML nodes");
}

static void probe_count(const ug_policy *p, char *info, size_t cap)
{
    char d[128];
    ST(p, 0)->conds[0].kind->describe(ST(p, 0)->conds[0].arg, d, sizeof d);
    snprintf(info, cap, "%s", d);
}

Test(yaml, the_largest_uid_list_under_the_cap_loads)
{
    /* 16 MiB of distinct 7-digit uids: the biggest legitimate policy */
    buf b = {0};
    add(&b, HEAD "stages: [{name: a, uids: [");
    size_t n = 0;
    while (b.n < (16u << 20) - 64 && n < (1u << 21) - 64)
        add(&b, "%zu,", 1000000 + n++);
    add(&b, "1]}]\n");
    outcome o = load_in_child("largest uid list", &b, probe_count);
    cr_assert(o.accepted, "%s", o.err);
    char want[64];
    snprintf(want, sizeof want, "uid in a list of %zu", n + 1);
    cr_assert_str_eq(o.info, want);
}

Test(yaml, the_largest_network_list_under_the_cap_loads)
{
    /* IPv6 /128s: a trie of address bits would take GBs; ranges do not */
    buf b = {0};
    add(&b, HEAD "stages: [{name: a, networks: [");
    size_t n = 0;
    while (b.n < (16u << 20) - 64 && n < (1u << 21) - 64) {
        add(&b, "\"2001:%zx:%zx::1\",", (n * 7919) % 65536, n / 65536);
        n++;
    }
    add(&b, "\"::1\"]}]\n");
    outcome o = load_in_child("largest IPv6 network list", &b, probe_count);
    cr_assert(o.accepted, "%s", o.err);
    cr_assert(strstr(o.info, "networks 2001:0:0::1, 2001:1eef:0::1"), "%s", o.info);
}

static void count_warning(void *ctx, const char *msg)
{
    (void)msg;
    ++*(size_t *)ctx;
}

static void probe_stages(const ug_policy *p, char *info, size_t cap)
{
    size_t warnings = 0;
    ug_policy_lint(p, (int64_t)time(NULL), count_warning, &warnings);
    snprintf(info, cap, "%zu stages, %zu warnings", R0(p)->nstages, warnings);
}

Test(yaml, a_hundred_thousand_stages_load_and_one_more_is_refused)
{
    buf b = {0};
    add(&b, HEAD "stages:\n");
    for (size_t i = 0; i < 100000; i++)
        add(&b, "  - {name: s%zu, uids: [%zu]}\n", i, i + 1);
    outcome o = load_in_child("100k stages", &b, probe_stages);
    cr_assert(o.accepted, "%s", o.err);
    cr_assert_str_eq(o.info, "100000 stages, 1 warnings", "the manifest's expiry only");
    add(&b, HEAD "stages:\n");
    for (size_t i = 0; i < 100001; i++)
        add(&b, "  - {name: s%zu}\n", i);
    o = load_in_child("100001 stages", &b, NULL);
    refused(&o, ":8: stages: ", "more than 100000 stages");
}

Test(yaml, tags_unknown_aliases_and_loops_are_refused)
{
    buf b = {0};
    add(&b, HEAD "retry: !!int 5\nstages: []\n");
    outcome o = load_in_child("a tag", &b, NULL);
    refused(&o, ":7: retry", "tags");
    add(&b, HEAD "retry: *nothing\nstages: []\n");
    o = load_in_child("an unknown alias", &b, NULL);
    refused(&o, ":7: retry", "names no anchor");
    add(&b, HEAD "stages: &s [{name: a, x: *s}]\n");
    o = load_in_child("an alias inside its anchor", &b, NULL);
    refused(&o, ":7: stages[0].x", "inside its own anchor");
    /* a redefined anchor: the alias means the latest one */
    ug_policy *p = pf_load_ok(HEAD "retry: &r 5\nhint_ttl: &r 7\nclock_window: *r\nstages: []\n");
    cr_assert_eq(p->clock_window, 7);
    cr_assert_eq(p->retry, 5);
    ug_policy_free(p);
}

Test(yaml, aliases_share_conditions_and_free_them_once)
{
    ug_policy *p = pf_load_ok(HEAD "stages:\n"
                                   "  - {name: a, networks: &n [10.0.0.0/8], plat: &p [x, y], uid_mod: &m {div: 2, rem: 1}}\n"
                                   "  - {name: b, networks: *n, plat: *p, uid_mod: *m, uids: [5]}\n"
                                   "  - {name: c, chan: *p, uids_file: lists/canary.txt}\n");
    const ug_stage *a = ST(p, 0), *b = ST(p, 1), *c = ST(p, 2);
    cr_assert_eq(b->nconds, 4);
    for (size_t i = 0; i < a->nconds; i++) {
        cr_assert(a->conds[i].owns);
        const ug_cond *other = pf_cond(b, a->conds[i].kind->key);
        cr_assert_eq(other->arg, a->conds[i].arg, "%s not shared", a->conds[i].kind->key);
        cr_assert(!other->owns);
    }
    cr_assert(pf_cond(b, "uids")->owns);
    cr_assert(pf_cond(c, "chan")->owns, "the same node as another condition: its own arg");
    cr_assert_str_eq(pf_describe(c, "chan"), "chan in x, y");
    cr_assert_str_eq(pf_describe(c, "uids"), "uid in a list of 3");
    ug_policy_free(p); /* ASan (make test SAN=1) would see a double free */
}
