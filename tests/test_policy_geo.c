/* `regions` and `geoip` (plugin/policy/geo.c and the regions row of conds.c),
 * against a small MaxMind DB that tests/mkgeo.pl writes. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "policy_fixture.h"
#include "testutil.h"

static void setup(void)
{
    pf_setup();
    const char *root = getenv("UG_ROOT") ? getenv("UG_ROOT") : ".";
    char cmd[1024], out[512], path[600];
    pf_pathf(path, sizeof path, "lists/geo.mmdb");
    snprintf(cmd, sizeof cmd, "perl %s/tests/mkgeo.pl %s 2>&1", root, path);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "mkgeo.pl: %s", out);
}

TestSuite(geo, .init = setup, .fini = pf_teardown);

#define GEO HEAD "geoip: lists/geo.mmdb\n"

static bool at(const ug_stage *s, const char *addr)
{
    if (strchr(addr, ':')) {
        struct sockaddr_in6 a = pf_addr6(addr);
        return pf_holds(s, "regions", 1, SA(a));
    }
    struct sockaddr_in a = pf_addr4(addr);
    return pf_holds(s, "regions", 1, SA(a));
}

Test(geo, countries_and_subdivisions_over_v4_v6_and_mapped)
{
    ug_policy *p = pf_load_ok(GEO "stages:\n  - {name: a, regions: [CN-BJ, DE, us-ca]}\n  - {name: b, regions: [GB-LND]}\n"
                                  "  - {name: c, regions: [CN, GB-SCT]}\n");
    char want[700];
    snprintf(want, sizeof want, "%s/lists/geo.mmdb", pf_dir);
    cr_assert_str_eq(p->geoip_path, want);
    cr_assert_not_null(p->geo);
    const ug_stage *a = ST(p, 0), *b = ST(p, 1), *c = ST(p, 2);
    cr_assert_str_eq(pf_cond_keys(a), "regions");
    cr_assert_eq(a->cond_flags, UG_CONDF_ADDRESS, "regions reads the source address");
    cr_assert_str_eq(pf_describe(a, "regions"), "regions CN-BJ, DE, US-CA");
    cr_assert(at(a, "127.0.1.5"), "CN-BJ over IPv4");
    cr_assert(at(a, "::ffff:127.0.1.5"), "an IPv4-mapped source is looked up as IPv4");
    cr_assert(at(a, "127.0.2.200"), "DE: the country alone");
    cr_assert(at(a, "2001:db8::1") && at(a, "2001:db8:ffff::9"), "US-CA over IPv6");
    cr_assert(!at(a, "127.0.3.1"), "GB is none of them");
    cr_assert(!at(a, "10.0.0.1") && !at(a, "2001:db9::1") && !at(a, "::ffff:10.0.0.1"), "unknown: nothing");
    cr_assert(!pf_holds(a, "regions", 1, NULL), "no source: nothing");
    cr_assert(at(b, "127.0.3.77"), "GB-LND at the second subdivision level");
    cr_assert(!at(b, "127.0.1.5"));
    cr_assert(at(c, "127.0.1.9"), "CN matches any subdivision of CN");
    cr_assert(!at(c, "127.0.3.77"), "GB-SCT is not one of the place's subdivisions");
    cr_assert(!at(c, "127.0.2.1"));
    ug_policy_free(p);
}

Test(geo, refusals_name_the_key_and_the_file)
{
    pf_fail_at(HEAD "stages:\n  - {name: a, regions: [DE]}\n", 8, "stages[0].regions");
    pf_fail_at(HEAD2 "  - {name: r, release: releases/2.0.0.manifest, targets: [1.0], stages: [{name: a, regions: [DE]}]}\n",
               4, "rollouts[0].stages[0].regions");
    const char *bad[] = {"D", "DEU", "CN-", "CN-ABCD", "C1", "1N-BJ", "CN_BJ", "CN-B J", "\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char t[512];
        snprintf(t, sizeof t, GEO "stages:\n  - name: a\n    regions: [DE, %s]\n", bad[i]);
        pf_fail_at(t, 10, "stages[0].regions[1]");
    }
    pf_fail_at(GEO "stages:\n  - name: a\n    regions: []\n", 10, "stages[0].regions");
    pf_fail_at(GEO "stages:\n  - name: a\n    regions: DE\n", 10, "stages[0].regions");
    char err[UG_ERR_MAX], t[512];
    pf_fail_at(HEAD "geoip: lists/none.mmdb\nstages: []\n", 7, "geoip");
    cr_assert_null(pf_load_text(pf_yaml, HEAD "geoip: lists/none.mmdb\nstages: []\n", err, sizeof err));
    cr_assert(strstr(err, "lists/none.mmdb"), "names the file: %s", err);
    pf_fail_at(HEAD "geoip: lists/canary.txt\nstages: []\n", 7, "geoip");
    cr_assert_null(pf_load_text(pf_yaml, HEAD "geoip: lists/canary.txt\nstages: []\n", err, sizeof err));
    cr_assert(strstr(err, "canary.txt") && strstr(err, "MaxMind"), "%s", err);
    pf_fail_at(HEAD "geoip: lists\nstages: []\n", 7, "geoip");
    snprintf(t, sizeof t, HEAD "geoip: [lists/geo.mmdb]\nstages: []\n");
    pf_fail_at(t, 7, "geoip");
}

static size_t open_fds(void)
{
    size_t n = 0;
    DIR *d = opendir("/proc/self/fd");
    cr_assert(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

Test(geo, each_load_opens_the_db_anew_and_free_closes_it)
{
    ug_policy *p = pf_load_ok(GEO "stages: [{name: a, regions: [DE]}]\n");
    ug_policy_free(p);
    size_t before = open_fds();
    for (int i = 0; i < 20; i++)
        ug_policy_free(pf_load_ok(GEO "stages: [{name: a, regions: [DE]}]\n"));
    cr_assert_eq(open_fds(), before, "a load leaks what it opened");

    /* the DB belongs to the load that opened it: gone from disk, the running
     * policy still reads it, and only the next load notices */
    p = pf_load_ok(GEO "stages: [{name: a, regions: [DE]}]\n");
    cr_assert(at(ST(p, 0), "127.0.2.1"));
    char path[600];
    pf_pathf(path, sizeof path, "lists/geo.mmdb");
    cr_assert_eq(unlink(path), 0);
    cr_assert(at(ST(p, 0), "127.0.2.1"), "the running policy keeps its mapping");
    char err[UG_ERR_MAX];
    cr_assert_null(pf_load_text(pf_yaml, GEO "stages: [{name: a, regions: [DE]}]\n", err, sizeof err));
    ug_policy_free(p);
}

/* Issue 21 §5: the DB truncated, then overwritten in place, under a running
 * policy: its lookups neither die of SIGBUS nor read garbage (the load's copy
 * is private and sealed); the next load reads the file as it is then. */
Test(geo, a_db_truncated_or_overwritten_in_place_changes_nothing_until_reload)
{
    ug_policy *p = pf_load_ok(GEO "stages: [{name: a, regions: [DE]}]\n");
    cr_assert(at(ST(p, 0), "127.0.2.1"));
    char path[600];
    pf_pathf(path, sizeof path, "lists/geo.mmdb");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(truncate(path, 0), 0);
    cr_assert(at(ST(p, 0), "127.0.2.1"), "truncated in place: the running policy still reads its copy");
    static char junk[1 << 20];
    memset(junk, 0x5a, sizeof junk);
    FILE *f = fopen(path, "r+");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(junk, 1, (size_t)st.st_size < sizeof junk ? (size_t)st.st_size : sizeof junk, f),
                 (size_t)st.st_size < sizeof junk ? (size_t)st.st_size : sizeof junk);
    fclose(f);
    cr_assert(at(ST(p, 0), "127.0.2.1"), "overwritten in place: the same answer");
    cr_assert_not(at(ST(p, 0), "127.0.3.1"), "and no other");
    char err[UG_ERR_MAX];
    cr_assert_null(pf_load_text(pf_yaml, GEO "stages: [{name: a, regions: [DE]}]\n", err, sizeof err));
    cr_assert(strstr(err, "not a MaxMind DB"), "the next load refuses the garbage: %s", err);
    ug_policy_free(p);
}
