/* Protocol version 2: what a real tracker never sends, scripted, against the real upgate-peer with keys,
 * keyrings, certificates and manifests from the real upgate-keys: a certificate past its time (a tracker
 * with a slow clock), manifests for another app, platform or channel, one release signature short, a
 * manifest revoking the certificate, a stale token; and a frozen peer raising "updates may be blocked". */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "v2world.h"

static vw_world W;
static vw_fake F;

typedef struct {
    vw_hint h;
    bool wait, token;
} script;

static script S;

static void setup(void)
{
    memset(&F, 0, sizeof F);
    memset(&S, 0, sizeof S);
    F.fd = -1;
    vw_init(&W);
    vw_cred(&W, 7);
}

static void teardown(void)
{
    vw_fake_stop(&F);
    vw_hint_free(&S.h);
    vw_fini(&W);
}

TestSuite(hostile, .init = setup, .fini = teardown, .timeout = 120);

static size_t answer(void *ctx, const ug2_hello *hello, uint8_t *out, size_t cap)
{
    script *s = ctx;
    return s->wait ? vw_wait_make(&s->h, hello, s->token, out, cap) : vw_hint_make(&s->h, hello, out, cap);
}

/* The scripted tracker answers with the certificate and manifest files given. */
static void serve(const char *cert, const char *manifest)
{
    vw_fake_stop(&F);
    vw_hint_free(&S.h);
    vw_hint_load(&W, &S.h, "hint.key", cert, manifest, 1);
    vw_fake_start(&F, answer, &S);
}

static void peer(vw_run *r, const char *state, const char *extra)
{
    vw_peer(&W, r, "--tracker 127.0.0.1:%u --uid 7 --cred c7.cred --version 1.4.0 --state %s --plat " VW_PLAT
                   " --chan " VW_CHAN " --pad --out got.bin %s",
            F.port, state, extra ? extra : "");
}

static void refused(const char *manifest, const char *why)
{
    serve("h.cert", manifest);
    vw_run r;
    peer(&r, "s", NULL);
    char want[128];
    snprintf(want, sizeof want, "HINT rejected: %s (", why);
    cr_assert_eq(r.rc, 3, "%s: exit %d: %s", manifest, r.rc, r.out);
    cr_assert_not_null(strstr(r.out, want), "%s: want \"%s\" in %s", manifest, want, r.out);
    cr_assert_neq(access(vw_path(&W, "got.bin"), F_OK), 0, "nothing downloaded");
}

Test(hostile, the_scripted_tracker_is_believed_when_it_is_right)
{
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_manifest(&W, "m.manifest", NULL);
    serve("h.cert", "m.manifest");
    vw_run r;
    peer(&r, "s", NULL);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_eq(nu_sh("cmp -s %s %s", vw_path(&W, "got.bin"), vw_path(&W, "www/app.bin")), 0);
}

Test(hostile, a_certificate_past_its_time_from_a_slow_tracker)
{
    uint64_t now = (uint64_t)time(NULL);
    vw_keys_ok(&W, "cert --hint hint.pub --serial 1 --kv 1 --nbf %llu --ttl 500 --key c1.key --out h.cert",
               (unsigned long long)(now - 1000));
    vw_manifest(&W, "m.manifest", NULL);
    serve("h.cert", "m.manifest");
    S.h.ts = now - 900; /* its clock is 15 minutes slow: the certificate still looks good to it */
    vw_run r;
    peer(&r, "s", NULL);
    cr_assert_eq(r.rc, 3, "%s", r.out);
    cr_assert_not_null(strstr(r.out, "HINT rejected: expired"), "%s", r.out);
}

Test(hostile, manifests_for_another_app_platform_or_channel)
{
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_keys_ok(&W, "release --app other --plat " VW_PLAT " --chan " VW_CHAN " --seq 10 --version 2.0.0 --file www/app.bin "
                   "--url http://127.0.0.1/app.bin --ttl 86400 --key rel1.key --key rel2.key --out app.manifest");
    vw_keys_ok(&W, "release --app " VW_APP " --plat windows-x86_64 --plat darwin --chan " VW_CHAN " --seq 10 --version "
                   "2.0.0 --file www/app.bin --url http://127.0.0.1/app.bin --ttl 86400 --key rel1.key --key rel2.key "
                   "--out plat.manifest");
    vw_keys_ok(&W, "release --app " VW_APP " --plat " VW_PLAT " --chan beta --seq 10 --version 2.0.0 --file www/app.bin "
                   "--url http://127.0.0.1/app.bin --ttl 86400 --key rel1.key --key rel2.key --out chan.manifest");
    refused("app.manifest", "app");
    refused("plat.manifest", "platform");
    refused("chan.manifest", "channel");
}

Test(hostile, a_release_threshold_one_signature_short)
{
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_keys_ok(&W, "release --app " VW_APP " --plat " VW_PLAT " --chan " VW_CHAN " --seq 10 --version 2.0.0 --file "
                   "www/app.bin --url http://127.0.0.1:%u/app.bin --ttl 86400 --key rel1.key --out one.manifest",
               W.http_port);
    refused("one.manifest", "threshold");
    /* the second holder signs the same body on their own machine; combined, it passes */
    vw_keys_ok(&W, "sign --key rel2.key --in one.manifest --out rel2.sig && %s/upgate-keys combine --in one.manifest "
                   "--sig rel2.sig --keyring www/keys/1.keyring --out two.manifest",
               tu_build_dir());
    serve("h.cert", "two.manifest");
    vw_run r;
    peer(&r, "s2", NULL);
    cr_assert_eq(r.rc, 0, "%s", r.out);
}

Test(hostile, a_manifest_that_revokes_the_certificate)
{
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_manifest(&W, "rev.manifest", "--min-serial 2");
    refused("rev.manifest", "revoked");
}

Test(hostile, a_frozen_peer_says_updates_may_be_blocked)
{
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_manifest(&W, "m.manifest", NULL);
    serve("h.cert", "m.manifest");
    S.wait = true; /* WAITs without tokens: an on-path attacker holding the peer back */
    vw_run r;
    peer(&r, "frozen", "--blocked-after 2");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_null(strstr(r.out, "updates may be blocked"), "a new installation starts its clock: %s", r.out);
    nu_sleep_ms(3000);
    peer(&r, "frozen", "--blocked-after 2");
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_not_null(strstr(r.out, "updates may be blocked: no valid freshness token or offer"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "no upgrade now"), "it keeps asking: %s", r.out);
    /* a signed token ends it */
    S.token = true;
    peer(&r, "frozen", "--blocked-after 2");
    cr_assert_not_null(strstr(r.out, "freshness token verified"), "%s", r.out);
    peer(&r, "frozen", "--blocked-after 2");
    cr_assert_null(strstr(r.out, "updates may be blocked"), "%s", r.out);
}

Test(hostile, a_token_behind_the_release_seen_moves_nothing)
{
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_manifest_of(&W, "m12.manifest", "2.0.0", 12, NULL);
    serve("h.cert", "m12.manifest");
    vw_run r;
    peer(&r, "s", NULL); /* seq 12 verified */
    cr_assert_eq(r.rc, 0, "%s", r.out);
    S.wait = S.token = true; /* a replayed token listing seq 10 */
    peer(&r, "s", NULL);
    cr_assert_eq(r.rc, 0, "%s", r.out);
    cr_assert_not_null(strstr(r.out, "freshness token refused: seq"), "%s", r.out);
}
