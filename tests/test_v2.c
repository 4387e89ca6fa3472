/* Protocol version 2 through the real programs: keys, keyrings, certificates and manifests made by
 * upgate-keys, served by upgate-node (beside version 1) and busybox httpd, checked by upgate-peer:
 * a root rotation walked across three keyrings, a revoked and an expired certificate, an older seq and an
 * explicit downgrade, a threshold one signature short, status, metrics and --check, and the reply sizes. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "testutil.h"
#include "v2world.h"

static vw_world W;
static nu_node N, N2;

static void setup(void)
{
    memset(&N, 0, sizeof N);
    memset(&N2, 0, sizeof N2);
    vw_init(&W);
}

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
    if (N2.pid)
        nu_stop(&N2, SIGKILL);
    vw_fini(&W);
}

TestSuite(v2, .init = setup, .fini = teardown, .timeout = 180);

static void assert_has(const vw_run *r, const char *needle)
{
    cr_assert_not_null(strstr(r->out, needle), "want \"%s\" in (exit %d):\n%s", needle, r->rc, r->out);
}

static void assert_same_file(const char *a, const char *b)
{
    cr_assert_eq(nu_sh("cmp -s %s %s", a, b), 0, "%s differs from %s", a, b);
}

/* A node on keyring K, certificate C and manifest M (files of W.dir). */
static void node_on(nu_node *n, const char *name, const char *k, const char *c, const char *m, const char *extra)
{
    char pol[4096];
    vw_policy_text(pol, sizeof pol, k, c, m, extra);
    vw_node(&W, n, name, pol);
}

/* The keyring version a peer's state file holds, 0 when none. */
static unsigned state_kv(const char *state)
{
    char text[9000], *line;
    size_t len = 0;
    char why[128];
    cr_assert_eq(ug_file_read(vw_path(&W, state), (uint8_t *)text, sizeof text - 1, &len, why, sizeof why), 0, "%s",
                 why);
    text[len] = 0;
    if (!(line = strstr(text, "\nkeyring ")))
        return 0;
    line += 9;
    *strchr(line, '\n') = 0;
    uint8_t doc[UG2_KEYRING_MAX];
    size_t dlen;
    cr_assert_eq(sodium_base642bin(doc, sizeof doc, line, strlen(line), NULL, &dlen, NULL,
                                   sodium_base64_VARIANT_ORIGINAL), 0);
    ug2_keyring k;
    ug2_multisig m;
    cr_assert_eq(ug2_keyring_open(&k, &m, doc, dlen, NULL), 0);
    return k.kv;
}

/* ---- keyrings ------------------------------------------------------------ */

Test(v2, a_root_rotation_is_walked_across_three_keyrings)
{
    /* 2 replaces root r3 by r4, 3 replaces r1 by r5: each signed by a threshold of the old roots and the new */
    vw_keys_ok(&W, "rotate --from www/keys/1.keyring --replace r3.pub=r4.pub --ttl 864000 --key r1.key --key r2.key "
                   "--out www/keys/2.keyring");
    vw_keys_ok(&W, "rotate --from www/keys/2.keyring --replace r1.pub=r5.pub --ttl 864000 --key r2.key --key r4.key "
                   "--key r5.key --out www/keys/3.keyring");
    vw_keys_ok(&W, "verify www/keys/3.keyring --prev www/keys/2.keyring");
    vw_cert(&W, "h3.cert", 3, 1, false);
    vw_manifest(&W, "m.manifest", NULL);
    vw_cred(&W, 7);
    node_on(&N, "node", "www/keys/3.keyring", "h3.cert", "m.manifest", NULL);
    /* a peer pinned to keyring 1's roots walks 1 (bootstrap), 2 and 3, then takes the offer */
    vw_run r;
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 7 --cred c7.cred --version 1.4.0 --state s7 --plat " VW_PLAT
                    " --chan " VW_CHAN " --pad --out got.bin",
            N.port);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "upgrade offered: version 1.4.0 -> 2.0.0");
    assert_same_file(vw_path(&W, "got.bin"), vw_path(&W, "www/app.bin"));
    cr_assert_eq(state_kv("s7"), 3);
    /* without keyring 2 on the mirror, a new peer cannot skip to 3: refused, nothing downloaded */
    cr_assert_eq(nu_sh("mv %s/keys/2.keyring %s/keys/2.hidden", W.www, W.www), 0);
    vw_cred(&W, 8);
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 8 --cred c8.cred --version 1.4.0 --state s8 --plat " VW_PLAT
                    " --chan " VW_CHAN " --pad --out got8.bin",
            N.port);
    cr_assert_eq(r.rc, 3, "%s", r.out);
    assert_has(&r, "HINT rejected: keyring");
    cr_assert_neq(access(vw_path(&W, "got8.bin"), F_OK), 0);
    cr_assert_eq(state_kv("s8"), 1, "it walked what it could, and no further");
}

/* ---- version 1 beside version 2 ------------------------------------------ */

Test(v2, a_version_1_peer_is_served_unchanged_on_the_same_port)
{
    vw_cert(&W, "h1.cert", 1, 1, false);
    vw_manifest(&W, "m.manifest", NULL);
    vw_keys_ok(&W, "release --key rel1.key --version 2.0.0 --file www/app.bin --url http://127.0.0.1:%u/app.bin "
                   "--ttl 86400 --out v1.manifest",
               W.http_port);
    vw_cred(&W, 11);
    vw_cred(&W, 12);
    node_on(&N, "node", "www/keys/1.keyring", "h1.cert", "m.manifest", "    release: ../v1.manifest\n");
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/upgate-peer --tracker 127.0.0.1:%u --uid 11 --version 1.4.0 --key client.key --cred c11.cred "
             "--hint-pub hint.pub --release-pub rel1.pub --yes --pad --out v1.bin 2>&1",
             W.dir, tu_build_dir(), N.port);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "upgrade offered: version 1.4.0 -> 2.0.0, 97.7 KiB (100000 bytes) from 127.0.0.1\n"
                          "upgraded package saved to v1.bin (100000 bytes, BLAKE2b ok)\n");
    assert_same_file(vw_path(&W, "v1.bin"), vw_path(&W, "www/app.bin"));
    vw_run r;
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 12 --cred c12.cred --version 1.4.0 --state s12 --plat " VW_PLAT
                    " --chan " VW_CHAN " --pad --out v2.bin",
            N.port);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_same_file(vw_path(&W, "v2.bin"), vw_path(&W, "www/app.bin"));
    char line[4096];
    nu_stats(&N, line, sizeof line);
    cr_assert_eq(nu_stat(line, "hellos_v2"), 1, "%s", line);
    cr_assert_eq(nu_stat(line, "hints"), 2, "%s", line);
    cr_assert_eq(nu_stat(line, "reports_counted"), 2, "%s", line);
}

Test(v2, a_version_1_policy_answers_version_2_peers_with_a_plain_wait)
{
    vw_keys_ok(&W, "release --key rel1.key --version 2.0.0 --file www/app.bin --url http://127.0.0.1:%u/app.bin "
                   "--ttl 86400 --out v1.manifest",
               W.http_port);
    vw_cred(&W, 13);
    vw_node(&W, &N, "node",
            "keys: {hint: ../hint.key, issuers: [../issuer.pub]}\nstate: state\nrelease: ../v1.manifest\n"
            "targets: [\"1.4.0\"]\nstages: [{name: all}]\n");
    vw_run r;
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 13 --cred c13.cred --version 1.4.0 --state s13 --plat " VW_PLAT
                    " --chan " VW_CHAN " --out x.bin",
            N.port);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "your version is not being upgraded");
    cr_assert_null(strstr(r.out, "freshness token"), "no keys, no token: %s", r.out);
}

/* ---- certificates -------------------------------------------------------- */

Test(v2, a_revoked_hint_certificate_is_refused)
{
    /* the day hint.key leaked: keyring 2 raises min_serial to 2, hint2 gets certificate 2 */
    vw_keys_ok(&W, "revoke --from www/keys/1.keyring --min-serial 2 --ttl 864000 --key r1.key --key r2.key "
                   "--out www/keys/2.keyring");
    vw_cert(&W, "leaked.cert", 1, 1, false);
    vw_cert(&W, "new.cert", 2, 2, true);
    vw_manifest(&W, "m.manifest", NULL);
    char pol[4096];
    vw_policy_text(pol, sizeof pol, "www/keys/2.keyring", "new.cert", "m.manifest", NULL);
    char *hint2 = strstr(pol, "../hint.key");
    memcpy(hint2, "../hint2.ke", 11); /* hint2.key: same length, the key of new.cert */
    cr_assert_not_null(strstr(pol, "hint2.ke"));
    *strstr(pol, "hint2.ke") = 'h';
    cr_assert_eq(nu_sh("cp %s %s", vw_path(&W, "hint2.key"), vw_path(&W, "hint2.ke")), 0);
    vw_node(&W, &N2, "honest", pol);
    node_on(&N, "leaked", "www/keys/1.keyring", "leaked.cert", "m.manifest", NULL);
    vw_cred(&W, 21);
    vw_cred(&W, 22);
    /* before it hears of keyring 2, a peer takes the leaked key's offer ... */
    vw_run r;
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 22 --cred c22.cred --version 1.4.0 --state s22 --plat " VW_PLAT
                    " --chan " VW_CHAN " --pad --out ok.bin",
            N.port);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    /* ... one that met an honest tracker's token walked to keyring 2 and refuses it */
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 21 --cred c21.cred --version 2.0.0 --state s21 --plat " VW_PLAT
                    " --chan " VW_CHAN " --out none.bin",
            N2.port);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "freshness token verified");
    cr_assert_eq(state_kv("s21"), 2);
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 21 --cred c21.cred --version 1.4.0 --state s21 --plat " VW_PLAT
                    " --chan " VW_CHAN " --pad --out bad.bin",
            N.port);
    cr_assert_eq(r.rc, 3, "%s", r.out);
    assert_has(&r, "HINT rejected: revoked");
    cr_assert_neq(access(vw_path(&W, "bad.bin"), F_OK), 0);
}

Test(v2, an_expired_certificate_is_refused_by_the_tracker)
{
    vw_keys_ok(&W, "cert --hint hint.pub --serial 1 --kv 1 --ttl 2 --key c1.key --out short.cert");
    vw_manifest(&W, "m.manifest", NULL);
    vw_cred(&W, 31);
    node_on(&N, "node", "www/keys/1.keyring", "short.cert", "m.manifest", NULL);
    nu_sleep_ms(3000);
    /* the tracker never sends a certificate past its time: version 2 peers wait */
    vw_run r;
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 31 --cred c31.cred --version 1.4.0 --state s31 --plat " VW_PLAT
                    " --chan " VW_CHAN " --pad --out x.bin",
            N.port);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "no upgrade now for version 1.4.0: paused");
    char err[4096];
    nu_stderr(&N, err, sizeof err);
    cr_assert_not_null(strstr(err, "short.cert expired"), "%s", err);
    /* and it refuses to load one, naming the file, line and key */
    char pol[4096];
    vw_policy_text(pol, sizeof pol, "www/keys/1.keyring", "short.cert", "m.manifest", NULL);
    int rc = vw_node_fails(&W, &N2, "again", pol, err, sizeof err);
    cr_assert_eq(rc, 1, "%s", err);
    cr_assert_not_null(strstr(err, "policy.yaml:1: keys.hint_cert: certificate"), "%s", err);
    cr_assert_not_null(strstr(err, ": expired"), "%s", err);
}

/* ---- manifests --------------------------------------------------------------- */

Test(v2, an_older_seq_is_refused_and_an_explicit_downgrade_accepted)
{
    vw_cert(&W, "h1.cert", 1, 1, false);
    vw_manifest_of(&W, "m10.manifest", "2.0.0", 10, NULL);
    vw_manifest_of(&W, "m5.manifest", "2.0.0", 5, NULL);                /* an older one */
    vw_manifest_of(&W, "m11.manifest", "1.9.0", 11, NULL);              /* lower, no downgrade */
    vw_manifest_of(&W, "m12.manifest", "1.9.0", 12, "--downgrade");     /* lower, said so */
    vw_cred(&W, 41);
    node_on(&N, "node", "www/keys/1.keyring", "h1.cert", "m10.manifest", NULL);
#define PEER41 "--tracker 127.0.0.1:%u --uid 41 --cred c41.cred --version %s --state s41 --plat " VW_PLAT \
               " --chan " VW_CHAN " --pad --out %s"
    vw_run r;
    vw_peer(&W, &r, PEER41, N.port, "1.4.0", "a.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    char pol[4096];
    vw_policy_text(pol, sizeof pol, "www/keys/1.keyring", "h1.cert", "m5.manifest", NULL);
    vw_reload(&N, pol);
    /* uid 41 installed 2.0.0 and is back at 1.4.0: it rolled back, and is
     * not offered 2.0.0 again (protocol rule 11); uid 42 is */
    vw_cred(&W, 42);
    char cp[1024];
    snprintf(cp, sizeof cp, "cp %s %s", vw_path(&W, "s41"), vw_path(&W, "s42")); /* what it verified, not installed */
    cr_assert_eq(system(cp), 0);
    vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 42 --cred c42.cred --version %s --state s42 --plat " VW_PLAT
            " --chan " VW_CHAN " --pad --out %s", N.port, "1.4.0", "b.bin");
    cr_assert_eq(r.rc, 3, "%s", r.out);
    assert_has(&r, "HINT rejected: seq");
    /* a 2.0.0 peer offered 1.9.0: a rollback, unless a newer manifest says downgrade */
    vw_policy_text(pol, sizeof pol, "www/keys/1.keyring", "h1.cert", "m11.manifest", NULL);
    *strstr(pol, "[\"1.4.0\"]") = 0, strcat(pol, "[\"2.0.0\"]\n    stages:\n      - name: all\n");
    vw_reload(&N, pol);
    vw_peer(&W, &r, PEER41, N.port, "2.0.0", "c.bin");
    cr_assert_eq(r.rc, 3, "%s", r.out);
    assert_has(&r, "HINT rejected: rollback");
    vw_policy_text(pol, sizeof pol, "www/keys/1.keyring", "h1.cert", "m12.manifest", NULL);
    *strstr(pol, "[\"1.4.0\"]") = 0, strcat(pol, "[\"2.0.0\"]\n    stages:\n      - name: all\n");
    vw_reload(&N, pol);
    vw_peer(&W, &r, PEER41, N.port, "2.0.0", "d.bin");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    assert_has(&r, "upgrade offered: version 2.0.0 -> 1.9.0");
    assert_same_file(vw_path(&W, "d.bin"), vw_path(&W, "www/app.bin"));
}

Test(v2, the_tracker_offers_only_manifests_bound_to_the_peer)
{
    vw_cert(&W, "h1.cert", 1, 1, false);
    vw_manifest(&W, "m.manifest", NULL);
    vw_cred(&W, 51);
    node_on(&N, "node", "www/keys/1.keyring", "h1.cert", "m.manifest", NULL);
    vw_run r;
    const char *other[] = {"--plat windows-x86_64 --chan " VW_CHAN, "--plat " VW_PLAT " --chan beta"};
    for (int i = 0; i < 2; i++) {
        vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid 51 --cred c51.cred --version 1.4.0 --state s51 %s --out x.bin",
                N.port, other[i]);
        cr_assert_eq(r.rc, 0, "%s", r.out);
        assert_has(&r, "your version is not being upgraded");
    }
}

Test(v2, a_threshold_one_signature_short_is_refused_at_load)
{
    vw_cert(&W, "h1.cert", 1, 1, false);
    vw_keys_ok(&W, "release --app " VW_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq 1 --version 2.0.0 "
                   "--file www/app.bin --url http://127.0.0.1/app.bin --ttl 86400 --key rel1.key --out one.manifest");
    char pol[4096], err[4096];
    vw_policy_text(pol, sizeof pol, "www/keys/1.keyring", "h1.cert", "one.manifest", NULL);
    cr_assert_eq(vw_node_fails(&W, &N, "node", pol, err, sizeof err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "policy.yaml:6: rollouts[0].release_v2: manifest"), "%s", err);
    cr_assert_not_null(strstr(err, ": threshold"), "%s", err);
    /* a keyring one root short */
    vw_keys_ok(&W, "keyring --kv 1 --ttl 86400 --root r1.pub --root r2.pub --root-threshold 2 --release rel1.pub "
                   "--cert c1.pub --key r1.key --out short.keyring");
    vw_policy_text(pol, sizeof pol, "short.keyring", "h1.cert", "one.manifest", NULL);
    cr_assert_eq(vw_node_fails(&W, &N, "node2", pol, err, sizeof err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "policy.yaml:1: keys.keyring: keyring"), "%s", err);
    cr_assert_not_null(strstr(err, "threshold"), "%s", err);
}

/* ---- upgate-keys ------------------------------------------------------------------ */

/* upgate-keys ARGS exits rc and says words (one line when it fails). */
static void keys_says(int rc, const char *words, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void keys_says(int rc, const char *words, const char *fmt, ...)
{
    char args[2048], out[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    int got = vw_keys(&W, out, sizeof out, "%s", args);
    cr_assert_eq(got, rc, "upgate-keys %s: exit %d: %s", args, got, out);
    cr_assert_not_null(strstr(out, words), "upgate-keys %s: want \"%s\" in: %s", args, words, out);
}

Test(v2, upgate_keys_refuses_what_no_peer_would_take)
{
    keys_says(2, "--root-threshold: 3, but the list has 2 keys",
              "keyring --kv 2 --ttl 60 --root r1.pub --root r2.pub --root-threshold 3 --release rel1.pub --cert c1.pub "
              "--out x");
    keys_says(2, "already in the list", "keyring --kv 2 --ttl 60 --root r1.pub --root r1.pub --release rel1.pub "
                                        "--cert c1.pub --out x");
    keys_says(2, "a keyring after version 1 is version 2", "keyring --from www/keys/1.keyring --kv 5 --ttl 60 --out x");
    keys_says(2, "in none of the previous keyring's lists", "rotate --from www/keys/1.keyring --replace "
                                                            "hint.pub=r5.pub --ttl 60 --out x");
    keys_says(2, "does not raise keyring 1's 0", "revoke --from www/keys/1.keyring --min-serial 0 --ttl 60 --out x");
    keys_says(2, "--ttl", "cert --hint hint.pub --serial 1 --kv 1 --ttl 7776001 --key c1.key --out x");
    keys_says(2, "--url: not an http(s) URL ending with", "keyring --kv 1 --ttl 60 --root r1.pub --release rel1.pub "
                                                          "--cert c1.pub --url http://h/k --out x");
    keys_says(2, "--plat", "release --app a --plat 'b c' --chan s --seq 1 --version 1 --file www/app.bin --url "
                           "http://h/a --ttl 60 --out x");
    keys_says(2, "--seq", "release --app a --plat b --chan s --seq 0 --version 1 --file www/app.bin --url "
                          "http://h/a --ttl 60 --out x");
    /* a holder who signed another draft: combine says which file */
    keys_says(0, "unsigned keyring body", "revoke --from www/keys/1.keyring --min-serial 2 --ttl 60 --out a.body");
    keys_says(0, "unsigned keyring body", "revoke --from www/keys/1.keyring --min-serial 3 --ttl 60 --out b.body");
    keys_says(0, "signature of key", "sign --key r1.key --in a.body --out a.sig");
    keys_says(1, "a.sig: does not verify over this body", "combine --in b.body --sig a.sig --out b.keyring");
    keys_says(0, "min_serial 3", "show b.body");
    keys_says(0, "\nexp 20", "show b.body"); /* RFC 3339 (2026-...Z), not Unix seconds */
    /* and one that is not enough yet says so */
    keys_says(0, "not yet complete", "combine --in a.body --sig a.sig --prev www/keys/1.keyring --out a.keyring");
    keys_says(1, "refused after keyring 1: threshold", "verify a.keyring --prev www/keys/1.keyring");
}

/* ---- the policy ---------------------------------------------------------------- */

/* upgate-node --check on policy text: exit 1 and one line naming file:line: key and the words. */
static void check_refuses(const char *text, const char *where, const char *words)
{
    char out[4096], cmd[1024];
    tu_write_file(vw_path(&W, "p.yaml"), text, strlen(text));
    snprintf(cmd, sizeof cmd, "cd %s && %s/upgate-node --check --policy p.yaml 2>&1 >/dev/null", W.dir, tu_build_dir());
    int rc = tu_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 1, "%s: exit %d: %s", text, rc, out);
    cr_assert_not_null(strstr(out, where), "want %s in: %s", where, out);
    cr_assert_not_null(strstr(out, words), "want %s in: %s", words, out);
}

Test(v2, policy_errors_name_the_file_the_line_and_the_key)
{
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_keys_ok(&W, "cert --hint hint.pub --serial 1 --kv 1 --ttl 86400 --tracker eu-1 --key c1.key --out eu.cert");
    vw_manifest(&W, "m.manifest", NULL);
    vw_keys_ok(&W, "release --key rel1.key --version 2.1.0 --file www/app.bin --url http://127.0.0.1/a --ttl 86400 "
                   "--out v1.manifest");
#define K2 "keys: {hint: hint.key, issuers: [issuer.pub], keyring: www/keys/1.keyring, hint_cert: h.cert}\n"
#define RO "state: st\nrollouts:\n  - name: r\n    targets: [\"1.4.0\"]\n    stages: []\n"
    check_refuses("keys: {hint: hint.key, issuers: [issuer.pub], keyring: www/keys/1.keyring}\n" RO
                  "    release_v2: m.manifest\n", "p.yaml:1: keys.hint_cert:", "go together");
    check_refuses("keys: {hint: hint.key, issuers: [issuer.pub], keyring: www/keys/1.keyring, hint_cert: h.cert, "
                  "certs: x}\n" RO "    release_v2: m.manifest\n", "p.yaml:1: keys", "certs");
    check_refuses("keys: {hint: hint.key, issuers: [issuer.pub]}\n" RO "    release_v2: m.manifest\n",
                  "p.yaml:7: rollouts[0].release_v2:", "needs keys.keyring and keys.hint_cert");
    check_refuses("keys: {hint: hint2.key, issuers: [issuer.pub], keyring: www/keys/1.keyring, hint_cert: h.cert}\n" RO
                  "    release_v2: m.manifest\n", "p.yaml:1: keys.hint_cert:", "another key than keys.hint");
    check_refuses("keys: {hint: hint.key, issuers: [issuer.pub], keyring: www/keys/1.keyring, hint_cert: eu.cert, "
                  "tracker: us-1}\n" RO "    release_v2: m.manifest\n", "p.yaml:1: keys.tracker:", "for tracker eu-1");
    check_refuses(K2 RO "    release: v1.manifest\n    release_v2: m.manifest\n", "p.yaml:8: rollouts[0].release_v2:",
                  "offers 2.0.0, but the rollout's release");
    check_refuses(K2 "token_ttl: 86401\n" RO "    release_v2: m.manifest\n", "p.yaml:2: token_ttl:", "86400");
    check_refuses(K2 RO, "p.yaml:4: rollouts[0].release:", "release_v2");
    check_refuses(K2 RO "    release_v2: h.cert\n", "p.yaml:7: rollouts[0].release_v2:", "refused under keyring");
    /* a manifest whose HINT, with the certificate, cannot fit 1232 bytes */
    char urls[2048] = "", u[160];
    for (int i = 0; i < 8; i++) {
        snprintf(u, sizeof u, "--url http://127.0.0.1/%0113d ", i);
        strcat(urls, u);
    }
    vw_keys_ok(&W, "release --app " VW_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq 1 --version 2.0.0 --file "
                   "www/app.bin %s --ttl 86400 --key rel1.key --key rel2.key --out big.manifest",
               urls);
    check_refuses(K2 RO "    release_v2: big.manifest\n", "p.yaml:7: rollouts[0].release_v2:",
                  "over the 1232-byte datagram limit");
#undef K2
#undef RO
}

/* ---- operating it -------------------------------------------------------------- */

Test(v2, tokens_are_signed_once_a_minute_and_status_shows_the_expiries)
{
    vw_keys_ok(&W, "cert --hint hint.pub --serial 1 --kv 1 --ttl 856800 --key c1.key --out h1.cert"); /* 238 h */
    vw_manifest(&W, "m.manifest", NULL);
    node_on(&N, "node", "www/keys/1.keyring", "h1.cert", "m.manifest", NULL);
    for (uint64_t uid = 61; uid < 66; uid++) {
        vw_cred(&W, uid);
        vw_run r;
        vw_peer(&W, &r, "--tracker 127.0.0.1:%u --uid %llu --cred c%llu.cred --version 2.0.0 --state s%llu --plat "
                        VW_PLAT " --chan " VW_CHAN " --out x.bin",
                N.port, (unsigned long long)uid, (unsigned long long)uid, (unsigned long long)uid);
        cr_assert_eq(r.rc, 0, "%s", r.out);
        assert_has(&r, "freshness token verified: the tracker's newest release for demo/stable is seq 10");
    }
    char line[4096], out[16384], err[1024];
    nu_stats(&N, line, sizeof line);
    cr_assert_eq(nu_stat(line, "waits_with_token"), 5, "%s", line);
    cr_assert_leq(nu_stat(line, "tokens_signed"), 2, "one a minute, never one a WAIT: %s", line);
    cr_assert_eq(nu_upgate_ctl(&N, N.dir, out, sizeof out, err, sizeof err, "--socket state/upgate.ctl --json status"),
                 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    json_t *v2 = json_object_get(json_object_get(j, "tracker"), "v2");
    cr_assert(json_is_object(v2), "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(v2, "keyring")), 1);
    cr_assert_gt(json_integer_value(json_object_get(v2, "cert_expires")), (json_int_t)time(NULL) + 800000);
    json_decref(j);
    /* --check warns of a certificate with under 14 days left */
    cr_assert_eq(nu_sh("cd %s && %s/upgate-node --check --policy policy.yaml > check.out 2>&1", N.dir, tu_build_dir()), 0);
    char text[8192];
    size_t len;
    cr_assert_eq(ug_file_read(nu_path(&N, "check.out"), (uint8_t *)text, sizeof text - 1, &len, err, sizeof err), 0);
    text[len] = 0;
    cr_assert_not_null(strstr(text, "keys.hint_cert: certificate"), "%s", text);
    cr_assert_not_null(strstr(text, "h1.cert expires in 23"), "%s", text);
}

/* ---- sizes (issue 24's note) --------------------------------------------------- */

/* As the vectors of tests/vectors-v2/sizes.json: an app name of 11 bytes,
 * URLs of exactly 40, a tracker name of 4 (protocol-v2.md section 8). */
#define SIZE_APP "example-app"

/* A signed HELLO v2 of 1232 bytes for uid 4242 (a credential from issuer.key). */
static size_t hello_v2(uint8_t *out, size_t cap, const char *ver, const char *app)
{
    char why[256], text[1024];
    size_t tlen, clen = 0;
    uint8_t cred[512];
    vw_cred(&W, 4242);
    cr_assert_eq(ug_file_read(vw_path(&W, "c4242.cred"), (uint8_t *)text, sizeof text, &tlen, why, sizeof why), 0);
    cr_assert_eq(sodium_base642bin(cred, sizeof cred, text, tlen - 1, NULL, &clen, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    uint8_t *sk = ug_seckey_load(vw_path(&W, "client.key"), why, sizeof why);
    cr_assert_not_null(sk);
    ug2_hello_fields f = {.base = {.uid = 4242, .ver = ver, .ts = (uint64_t)time(NULL), .cred = cred, .cred_len = clen,
                                   .plat = VW_PLAT, .chan = VW_CHAN},
                          .app = app, .kv = 1};
    randombytes_buf(f.base.nonce, UG_NONCE_LEN);
    memcpy(f.base.pk, sk + UG_SEED_LEN, UG_PK_LEN);
    size_t len = 0;
    cr_assert_eq(ug2_hello_build(out, cap, &len, &f, UG_DGRAM_MAX, sk), 0);
    ug_secret_free(sk);
    return len;
}

/* The reply of the node to a 1232-byte HELLO v2: its length and type. */
static size_t ask(nu_node *n, const char *ver, ug_type want)
{
    uint8_t hello[UG_DGRAM_MAX];
    size_t hl = hello_v2(hello, sizeof hello, ver, SIZE_APP);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(sendto(fd, hello, hl, 0, (struct sockaddr *)&a, sizeof a), (ssize_t)hl);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint8_t reply[UG_DGRAM_MAX + 1];
    ssize_t got = recv(fd, reply, sizeof reply, 0);
    close(fd);
    ug_dgram d;
    cr_assert_gt(got, 0, "no reply");
    cr_assert_eq(ug2_dgram_decode(&d, reply, (size_t)got, NULL), 0);
    cr_assert_eq(d.type, want, "type %d", d.type);
    return (size_t)got;
}

/* URLs of exactly 40 bytes. */
static void url40(char *out, size_t cap, unsigned i)
{
    snprintf(out, cap, "--url http://mirror-%u.example.net/pkg/app.binx", i);
    cr_assert_eq(strlen(out) - 6, 40u);
}

static size_t hint_size(unsigned mirrors, unsigned t)
{
    char urls[1024] = "", u[64], keys[128];
    for (unsigned i = 0; i < mirrors; i++)
        url40(u, sizeof u, i), strcat(urls, u), strcat(urls, " ");
    snprintf(keys, sizeof keys, t == 1 ? "--key rel1.key" : "--key rel1.key --key rel2.key");
    vw_keys_ok(&W, "release --app " SIZE_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq 10 --version 2.0.0 --file "
                   "www/app.bin %s --ttl 86400 %s --out z.manifest && %s/upgate-keys release --app " SIZE_APP " --plat "
                   VW_PLAT " --chan beta --seq 11 --version 3.0.0 --file www/app.bin %s --ttl 86400 %s --out y.manifest",
               urls, keys, tu_build_dir(), urls, keys);
    vw_keys_ok(&W, "cert --hint hint.pub --serial 1 --kv 1 --ttl 864000 --tracker trk1 %s --out z.cert",
               t == 1 ? "--key c1.key" : "--key c1.key --key c2.key");
    vw_keys_ok(&W, "keyring --kv 1 --ttl 864000 --root r1.pub --root r2.pub --root-threshold 2 --release rel1.pub "
                   "--release rel2.pub --release-threshold %u --cert c1.pub --cert c2.pub --cert-threshold %u "
                   "--key r1.key --key r2.key --out z.keyring",
               t, t);
    char pol[4096];
    vw_policy_text(pol, sizeof pol, "z.keyring", "z.cert", "z.manifest", NULL);
    /* a second channel, so that the token lists two as the WAIT vector does */
    strcat(pol, "  - name: beta\n    release_v2: ../y.manifest\n    targets: [\"9.9.9\"]\n    stages: []\n");
    if (N.pid)
        nu_stop(&N, SIGTERM);
    cr_assert_eq(nu_sh("rm -rf %s/sizes", W.dir), 0);
    vw_node(&W, &N, "sizes", pol);
    return ask(&N, "1.4.0", UG_TYPE_HINT);
}

Test(v2, reply_sizes_as_the_tracker_sends_them)
{
    size_t h1t2 = hint_size(1, 2), h8t2 = hint_size(8, 2);
    size_t w2 = ask(&N, "2.0.0", UG_TYPE_WAIT); /* a token of 2 channels, certificate threshold 2 */
    size_t h1 = hint_size(1, 1), h8 = hint_size(8, 1);
    size_t w = ask(&N, "2.0.0", UG_TYPE_WAIT); /* 2 channels, certificate threshold 1 */
    FILE *f = fopen(vw_path(&W, "../v2-sizes.txt"), "w");
#define SIZES "v2 sizes as upgate-node sends them: HINT 1 mirror %zu (thresholds 1), %zu (thresholds 2); " \
              "HINT 8 mirrors %zu (thresholds 1), %zu (thresholds 2); WAIT with a token of 2 channels %zu " \
              "(certificate threshold 1), %zu (threshold 2)\n"
    fprintf(stderr, SIZES, h1, h1t2, h8, h8t2, w, w2);
    if (f)
        fprintf(f, SIZES, h1, h1t2, h8, h8t2, w, w2), fclose(f);
    /* byte for byte the codec's section 8 figures (tests/vectors-v2/sizes.json) */
    cr_assert(h1 == 575 && h1t2 == 729 && h8 == 870 && h8t2 == 1024, "%zu %zu %zu %zu", h1, h1t2, h8, h8t2);
    /* the WAIT's retry (jittered) and its token's names differ from the vector's by a few bytes */
    cr_assert(w >= 374 && w <= 394 && w2 <= UG_HELLO_MIN, "%zu %zu: a token WAIT answers a 512-byte HELLO", w, w2);
}
