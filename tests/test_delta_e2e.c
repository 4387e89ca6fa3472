/* Delta packages through the real programs (issue 26): upgate-keys release --delta-from writes and lists
 * them, upgate-node names the delta for a peer's version (or not, with deltas: off), upgate-peer patches
 * the installed file and keeps it only when it hashes to the package, else fetches the package in the
 * same run, and the tracker counts the REPORTs by via. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "httpserv.h"
#include "testutil.h"
#include "v2world.h"

static vw_world W;
static nu_node N;

static void setup(void)
{
    memset(&N, 0, sizeof N);
    vw_init(&W);
    /* the installed 1.4.0: the package with 2 kB changed in its middle */
    cr_assert_eq(nu_sh("cd %s && cp app.bin old.bin && head -c 2048 /dev/urandom | "
                       "dd of=old.bin bs=1 seek=40000 conv=notrunc 2>/dev/null && "
                       "head -c 100000 /dev/urandom > other.bin", W.www), 0);
}

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
    vw_fini(&W);
}

TestSuite(delta_e2e, .init = setup, .fini = teardown, .timeout = 180);

static void load_manifest(const char *name, ug2_manifest *m)
{
    static uint8_t obj[UG_OBJ_MAX];
    size_t len = 0;
    char why[256];
    ug2_multisig ms;
    cr_assert_eq(ug_file_read(vw_path(&W, name), obj, sizeof obj, &len, why, sizeof why), 0, "%s", why);
    cr_assert_eq(ug2_manifest_open(m, &ms, obj, len, NULL), 0, "%s is not a v2 manifest", name);
}

static void file_hash(const char *path, uint64_t *size, uint8_t hash[UG_HASH_LEN])
{
    static uint8_t buf[1 << 20];
    size_t len = 0;
    char why[256];
    cr_assert_eq(ug_file_read(path, buf, sizeof buf, &len, why, sizeof why), 0, "%s", why);
    crypto_generichash(hash, UG_HASH_LEN, buf, len, NULL, 0);
    *size = len;
}


/* ---- 1. making ------------------------------------------------------------ */

Test(delta_e2e, release_writes_each_delta_beside_the_package_and_lists_it)
{
    char out[4096];
    int rc = vw_keys(&W, out, sizeof out,
                     "release --app " VW_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq 10 --version 2.0.0 "
                     "--file www/app.bin --url http://127.0.0.1:%u/app.bin --url https://m2.example/d/app.bin "
                     "--ttl 86400 --key rel1.key --key rel2.key --delta-from www/old.bin=1.4.0 "
                     "--delta-from www/other.bin=1.3 --out d.manifest",
                     W.http_port);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_not_null(strstr(out, "no delta from 1.3 (www/other.bin)"), "%s", out);
    cr_assert_not_null(strstr(out, "delta from 1.4.0: www/app.bin.from-1.4.0.delta"), "%s", out);
    cr_assert_neq(access(vw_path(&W, "www/app.bin.from-1.3.delta"), F_OK), 0, "a useless delta is not kept");
    ug2_manifest m;
    load_manifest("d.manifest", &m);
    cr_assert_eq(m.ndeltas, 1, "only the delta worth it is listed");
    char ver[40];
    cr_assert_eq(ug_version_format(&m.deltas[0].from, ver, sizeof ver), 0);
    cr_assert_str_eq(ver, "1.4.0");
    uint64_t size;
    uint8_t hash[UG_HASH_LEN];
    file_hash(vw_path(&W, "www/app.bin.from-1.4.0.delta"), &size, hash);
    cr_assert_eq(m.deltas[0].size, size);
    cr_assert(size < m.size * 60 / 100 && size > 0, "delta %llu of %llu bytes", (unsigned long long)size,
              (unsigned long long)m.size);
    cr_assert_eq(memcmp(m.deltas[0].hash, hash, UG_HASH_LEN), 0);
    cr_assert_eq(m.deltas[0].nurls, 2);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%u/app.bin.from-1.4.0.delta", W.http_port);
    cr_assert_str_eq(m.deltas[0].urls[0], want);
    cr_assert_str_eq(m.deltas[0].urls[1], "https://m2.example/d/app.bin.from-1.4.0.delta");
    /* the CLI anchor patches it back into the package */
    cr_assert_eq(nu_sh("cd %s && zstd -q -d --long=17 --patch-from=old.bin app.bin.from-1.4.0.delta -o re.bin && "
                       "cmp -s re.bin app.bin", W.www), 0);
    rc = vw_keys(&W, out, sizeof out, "show d.manifest");
    cr_assert_not_null(strstr(out, "delta from 1.4.0, "), "%s", out);
}

Test(delta_e2e, release_refuses_bad_delta_options)
{
    static const char *bad[][2] = {
        {"www/old.bin", "not OLD_FILE=VERSION"},       {"www/old.bin=1.x", "not OLD_FILE=VERSION"},
        {"=1.4.0", "not OLD_FILE=VERSION"},            {"www/old.bin=2.0", "the release's own version"},
        {"www/nope.bin=1.4.0", "www/nope.bin: No such file"},
        {"www/old.bin=1.4.0 --delta-from www/old.bin=1.4", "version 1.4 given twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char out[4096];
        int rc = vw_keys(&W, out, sizeof out,
                         "release --app " VW_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq 10 --version 2.0.0 "
                         "--file www/app.bin --url http://127.0.0.1:%u/app.bin --ttl 86400 --key rel1.key "
                         "--delta-from %s --out bad.manifest",
                         W.http_port, bad[i][0]);
        cr_assert_neq(rc, 0, "--delta-from %s: %s", bad[i][0], out);
        cr_assert_not_null(strstr(out, bad[i][1]), "--delta-from %s: want \"%s\" in %s", bad[i][0], bad[i][1], out);
        cr_assert_neq(access(vw_path(&W, "bad.manifest"), F_OK), 0);
    }
}

/* ---- 2, 3. choosing and applying, through the node, the mirror and the peer ---- */

/* A node whose rollout (targets 1.4.0) offers 2.0.0 with a delta from `from`. */
static void node_with_delta(const char *from, const char *extra_rollout)
{
    char opt[128];
    snprintf(opt, sizeof opt, "--delta-from www/old.bin=%s", from);
    vw_manifest(&W, "d.manifest", opt);
    vw_cert(&W, "h.cert", 1, 1, false);
    char pol[4096];
    vw_policy_text(pol, sizeof pol, "www/keys/1.keyring", "h.cert", "d.manifest", extra_rollout);
    vw_node(&W, &N, "node", pol);
}

static void peer_run(vw_run *r, uint64_t uid, const char *installed, const char *out)
{
    vw_cred(&W, uid);
    char inst[200] = "";
    if (installed)
        snprintf(inst, sizeof inst, "--installed %s", installed);
    vw_peer(&W, r,
            "--tracker 127.0.0.1:%u --uid %llu --cred c%llu.cred --version 1.4.0 --state s%llu --plat " VW_PLAT
            " --chan " VW_CHAN " --pad --out %s %s",
            N.port, (unsigned long long)uid, (unsigned long long)uid, (unsigned long long)uid, out, inst);
}

static void assert_has(const vw_run *r, const char *needle)
{
    cr_assert_not_null(strstr(r->out, needle), "want \"%s\" in (exit %d):\n%s", needle, r->rc, r->out);
}

static void assert_got_package(const char *out)
{
    cr_assert_eq(nu_sh("cmp -s %s %s/app.bin", vw_path(&W, out), W.www), 0, "%s is not the package", out);
}

/* The bytes the peer said it fetched ("via V: N bytes fetched"). */
static uint64_t fetched(const vw_run *r, const char *via)
{
    char head[64];
    snprintf(head, sizeof head, "via %s: ", via);
    const char *s = strstr(r->out, head);
    cr_assert_not_null(s, "want \"%s\" in:\n%s", head, r->out);
    return strtoull(s + strlen(head), NULL, 10);
}

/* Waits (at most 3 s) until the node's stats line has name=want. */
static void stat_is(const char *name, uint64_t want)
{
    char line[8192];
    for (int i = 0; i < 60; i++) {
        nu_stats(&N, line, sizeof line);
        if (nu_stat(line, name) == want)
            return;
        nu_sleep_ms(50);
    }
    cr_assert_fail("%s is %llu, want %llu: %s", name, (unsigned long long)nu_stat(line, name),
                   (unsigned long long)want, line);
}

static uint64_t delta_size(void)
{
    uint64_t size;
    uint8_t hash[UG_HASH_LEN];
    file_hash(vw_path(&W, "www/app.bin.from-1.4.0.delta"), &size, hash);
    return size;
}

Test(delta_e2e, a_peer_with_a_delta_upgrades_by_patching_its_installed_file)
{
    node_with_delta("1.4.0", NULL);
    vw_run r;
    peer_run(&r, 7, "www/old.bin", "got.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "delta offered: from 1.4.0, ");
    cr_assert_eq(fetched(&r, "delta"), delta_size(), "%s", r.out);
    cr_assert(delta_size() < 100000 / 10, "a 2 kB change costs a small delta: %llu", (unsigned long long)delta_size());
    assert_got_package("got.bin");
    cr_assert_neq(access(vw_path(&W, "got.bin.delta"), F_OK), 0, "the delta is not left behind");
    cr_assert_neq(access(vw_path(&W, "got.bin.patch"), F_OK), 0);
    stat_is("offers_delta", 1);
    stat_is("offered_bytes_delta", delta_size());
    stat_is("offers_full", 0);
    stat_is("hints_new", 1); /* a delta is a way to deliver the same grant */
    stat_is("reports_via_delta", 1);
    stat_is("reports_via_full", 0);
}

Test(delta_e2e, a_tampered_delta_is_refused_before_patching_then_the_package_is_fetched)
{
    node_with_delta("1.4.0", NULL);
    /* one byte of the served delta changed: its hash no longer matches the manifest's */
    cr_assert_eq(nu_sh("cd %s && printf '\\377' | dd of=app.bin.from-1.4.0.delta bs=1 seek=20 conv=notrunc 2>/dev/null",
                       W.www), 0);
    vw_run r;
    peer_run(&r, 8, "www/old.bin", "got.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "delta failed: ");
    assert_has(&r, "hash mismatch");
    assert_has(&r, "fetching the full package");
    cr_assert_eq(fetched(&r, "delta-fallback"), delta_size() + 100000, "the delta's bytes, then the package's");
    assert_got_package("got.bin");
    stat_is("reports_via_delta_fallback", 1);
    stat_is("reports_via_delta", 0);
}

Test(delta_e2e, an_installed_file_that_is_not_its_version_fails_the_hash_then_the_package_is_fetched)
{
    node_with_delta("1.4.0", NULL);
    vw_run r;
    peer_run(&r, 9, "www/other.bin", "got.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "is not the package (size or hash)");
    cr_assert_eq(fetched(&r, "delta-fallback"), delta_size() + 100000);
    assert_got_package("got.bin");
    cr_assert_neq(access(vw_path(&W, "got.bin.patch"), F_OK), 0, "the wrong result is not kept");
    /* and one that is missing */
    peer_run(&r, 10, "www/nope.bin", "got10.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "installed file www/nope.bin: No such file");
    assert_got_package("got10.bin");
    stat_is("reports_via_delta_fallback", 2);
}

Test(delta_e2e, a_peer_whose_version_has_no_delta_gets_the_package)
{
    node_with_delta("1.3.0", NULL);
    vw_run r;
    peer_run(&r, 11, "www/old.bin", "got.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_null(strstr(r.out, "delta offered"), "%s", r.out);
    cr_assert_eq(fetched(&r, "full"), 100000);
    assert_got_package("got.bin");
    stat_is("offers_full", 1);
    stat_is("offered_bytes_full", 100000);
    stat_is("offers_delta", 0);
    stat_is("reports_via_full", 1);
}

Test(delta_e2e, deltas_off_names_the_package_and_keeps_grants)
{
    node_with_delta("1.4.0", "    deltas: off\n");
    vw_run r;
    peer_run(&r, 12, "www/old.bin", "got.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_null(strstr(r.out, "delta offered"), "%s", r.out);
    cr_assert_eq(fetched(&r, "full"), 100000);
    assert_got_package("got.bin");
    stat_is("offers_full", 1);
    stat_is("offers_delta", 0);
    stat_is("hints_new", 1);
}

/* ---- 4. forecast and a real run: the bytes the mirror serves ---------------------- */

#define PEERS 200u
#define ON_DELTA 140u /* 70% run 1.4.0 (a delta), 30% 1.3.0 (none) */

/* A policy of 2.0.0 for 1.4.0 and 1.3.0 on manifest m (relative to ../), deltas on or off. */
static void policy_mix(const char *name, const char *m, bool off)
{
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "keys: {hint: ../hint.key, issuers: [../issuer.pub], keyring: ../www/keys/1.keyring, "
                     "hint_cert: ../h.cert}\nstate: state-%s\nretry: 120\ncookie: never\nrollouts:\n"
                     "  - name: r\n    release_v2: ../%s\n    targets: [\"1.4.0\", \"1.3.0\"]\n%s"
                     "    stages:\n      - name: all\n",
                     name, m, off ? "    deltas: off\n" : "");
    cr_assert(n > 0 && (size_t)n < sizeof text);
    cr_assert_eq(nu_sh("mkdir -p %s/sim", W.dir), 0);
    char p[300];
    snprintf(p, sizeof p, "%s/sim/%s", W.dir, name);
    tu_write_file(p, text, (size_t)n);
}

/* The sum of a CSV column over the rows of one policy (its path's suffix). */
static double csv_sum(const char *file, const char *policy, const char *column)
{
    FILE *f = fopen(file, "r");
    cr_assert_not_null(f, "%s", file);
    static char line[65536];
    int col = -1, pcol = -1, i = 0;
    cr_assert_not_null(fgets(line, sizeof line, f));
    for (char *t = strtok(line, ",\n"); t; t = strtok(NULL, ",\n"), i++) {
        if (!strcmp(t, column))
            col = i;
        if (!strcmp(t, "policy"))
            pcol = i;
    }
    cr_assert(col >= 0 && pcol >= 0, "%s: no column %s or policy", file, column);
    double sum = 0;
    while (fgets(line, sizeof line, f)) {
        char *cell[256] = {0};
        int k = 0;
        for (char *s = line, *t; k < 256 && (t = strsep(&s, ",\n")); k++)
            cell[k] = t;
        if (cell[pcol] && strstr(cell[pcol], policy) && cell[col])
            sum += strtod(cell[col], NULL);
    }
    fclose(f);
    return sum;
}

Test(delta_e2e, the_forecast_and_a_real_run_of_200_peers_agree_on_the_bytes_deltas_save, .timeout = 600)
{
    hs_server hs = {0};
    hs_start(&hs, W.www, "mirror", "--log-sent");
    char out[4096];
    int rc = vw_keys(&W, out, sizeof out,
                     "release --app " VW_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq 10 --version 2.0.0 "
                     "--file www/app.bin --url http://127.0.0.1:%d/app.bin --ttl 86400 --key rel1.key --key rel2.key "
                     "--delta-from www/old.bin=1.4.0 --out mix.manifest",
                     hs.port);
    cr_assert_eq(rc, 0, "%s", out);
    vw_cert(&W, "h.cert", 1, 1, false);
    uint64_t D = delta_size(), P = 100000;

    /* the forecast: the same manifest, 70% of 200 peers on 1.4.0, with and without deltas */
    policy_mix("with.yaml", "mix.manifest", false);
    policy_mix("without.yaml", "mix.manifest", true);
    rc = nu_sh("cd %s/sim && %s/upgate-sim --policy with.yaml --policy without.yaml --peers %u "
               "--versions 1.4.0=70,1.3.0=30 --plat " VW_PLAT " --chan " VW_CHAN " --days 0.125 --think 0 --accept 1 --fail 0 --speed 8Mbit "
               "--csv out.csv > out.txt 2>&1",
               W.dir, tu_build_dir(), PEERS);
    if (rc != 0)
        nu_sh("cat %s/sim/out.txt >&2", W.dir);
    cr_assert_eq(rc, 0, "upgate-sim failed");
    char csv[300];
    snprintf(csv, sizeof csv, "%s/sim/out.csv", W.dir);
    double f_with = csv_sum(csv, "with.yaml", "bytes:m0"), f_without = csv_sum(csv, "without.yaml", "bytes:m0");
    cr_assert_eq(f_without, (double)PEERS * P, "without deltas every peer fetches the package: %.0f", f_without);

    /* the real run: 140 peers at 1.4.0 with the installed file, 60 at 1.3.0, through the node and the mirror */
    char pol[4096];
    vw_policy_text(pol, sizeof pol, "www/keys/1.keyring", "h.cert", "mix.manifest", NULL);
    char *t = strstr(pol, "targets: [\"1.4.0\"]");
    cr_assert_not_null(t);
    snprintf(t, sizeof pol - (size_t)(t - pol), "targets: [\"1.4.0\", \"1.3.0\"]\n    stages:\n      - name: all\n");
    vw_node(&W, &N, "node", pol);
    /* eight peers at a time (bounded: 200 runs, each with --timeout 10) */
    rc = nu_sh("cd %s && for i in $(seq 1 %u); do "
               "  %s/upgate-keys cred --issuer issuer.key --uid $((1000 + i)) --pub client.pub --ttl 86400 "
               "    --out r$i.cred >/dev/null || exit 1; "
               "done && for i in $(seq 1 %u); do "
               "  if [ $i -le %u ]; then v=1.4.0; inst='--installed www/old.bin'; else v=1.3.0; inst=; fi; "
               "  ( %s/upgate-peer --key client.key --root r1.pub --root r2.pub --root r3.pub --threshold 2 "
               "    --anchor-kv 1 --app " VW_APP " --keyring-url http://127.0.0.1:%u/keys/ --tries 3 --timeout 10 "
               "    --yes --tracker 127.0.0.1:%u --uid $((1000 + i)) --cred r$i.cred --version $v --state rs$i "
               "    --plat " VW_PLAT " --chan " VW_CHAN " --pad --out rgot$i.bin $inst </dev/null > r$i.out 2>&1 "
               "    && cmp -s rgot$i.bin www/app.bin && rm -f rgot$i.bin && touch ok$i ) & "
               "  [ $((i %% 8)) -eq 0 ] && wait; "
               "done; wait; [ $(ls ok* | wc -l) -eq %u ]",
               W.dir, PEERS, tu_build_dir(), PEERS, ON_DELTA, tu_build_dir(), W.http_port, N.port, PEERS);
    cr_assert_eq(rc, 0, "a peer failed (see %s/r*.out)", W.dir);
    static char log[1 << 20];
    hs_log(&hs, log, sizeof log);
    hs_stop(&hs);
    uint64_t served = 0, ndelta = 0, nfull = 0;
    for (const char *s = strstr(log, "SENT "); s; s = strstr(s + 1, "SENT ")) {
        const char *sp = strchr(s + 5, ' ');
        served += strtoull(sp + 1, NULL, 10);
        ndelta += strncmp(s + 5, "/app.bin.from-1.4.0.delta ", 26) == 0;
        nfull += strncmp(s + 5, "/app.bin ", 9) == 0;
    }
    cr_assert_eq(ndelta, ON_DELTA, "%s", log);
    cr_assert_eq(nfull, PEERS - ON_DELTA);
    cr_assert_eq(served, ON_DELTA * D + (PEERS - ON_DELTA) * P, "served %llu", (unsigned long long)served);
    stat_is("reports_via_delta", ON_DELTA);
    stat_is("reports_via_full", PEERS - ON_DELTA);
    stat_is("offered_bytes_delta", ON_DELTA * D);
    /* the forecast draws versions at random: its bytes are within 15% of the real run's, and so is its saving */
    double real = (double)served, saved = 1 - real / ((double)PEERS * P), f_saved = 1 - f_with / f_without;
    cr_log_info("mirror bytes: forecast %.0f with deltas, %.0f without; real run %.0f (saved %.1f%%, forecast %.1f%%)",
                f_with, f_without, real, 100 * saved, 100 * f_saved);
    cr_assert(fabs(f_with - real) <= 0.15 * real, "forecast %.0f, real %.0f", f_with, real);
    cr_assert(fabs(f_saved - saved) <= 0.10, "saved: forecast %.3f, real %.3f", f_saved, saved);
}
