/* libupgate speaking protocol version 2 in process, on a fake clock: "updates may be blocked" after the
 * configured time without a valid token or HINT (and only signed times move the peer's clock), the state
 * file across handles, the keyring walk, and the configurations it refuses. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <upgate/client.h>

#include "testutil.h"
#include "v2world.h"

#define DAY 86400u

static vw_world W;
static vw_hint H;
static uint64_t fake;
static unsigned told;
static uint64_t told_fresh;

static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return fake;
}

static void on_blocked(void *ctx, uint64_t fresh_at, uint64_t now)
{
    (void)ctx, (void)now;
    told++;
    told_fresh = fresh_at;
}

static void setup(void)
{
    vw_init(&W);
    vw_cred(&W, 7);
    vw_cert(&W, "h.cert", 1, 1, false);
    vw_manifest(&W, "m.manifest", NULL);
    vw_hint_load(&W, &H, "hint.key", "h.cert", "m.manifest", 1);
    fake = (uint64_t)time(NULL);
    told = 0;
}

static void teardown(void)
{
    vw_hint_free(&H);
    vw_fini(&W);
}

TestSuite(client_v2, .init = setup, .fini = teardown, .timeout = 60);

static ug_client *client(const char *state)
{
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = 7;
    cfg.version = "1.4.0";
    cfg.app = VW_APP;
    cfg.plat = VW_PLAT;
    cfg.chan = VW_CHAN;
    cfg.root_threshold = 2;
    cfg.anchor_kv = 1;
    cfg.state_path = state ? vw_path(&W, state) : NULL;
    cfg.now = fake_now;
    cfg.blocked = on_blocked;
    ug_client *c;
    const char *msg;
    cr_assert_eq(ug_client_new(&cfg, &c, &msg), UG_CLIENT_OK, "%s", msg);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/keys/", W.http_port);
    cr_assert_eq(ug_client_load_key(c, vw_path(&W, "client.key")), UG_CLIENT_OK);
    cr_assert_eq(ug_client_load_cred(c, vw_path(&W, "c7.cred")), UG_CLIENT_OK);
    for (int i = 1; i <= 3; i++) {
        char root[16];
        snprintf(root, sizeof root, "r%d.pub", i);
        cr_assert_eq(ug_client_add_root_key_file(c, vw_path(&W, root)), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    }
    cr_assert_eq(ug_client_add_keyring_url(c, url), UG_CLIENT_OK);
    cr_assert_eq(ug_client_protocol(c), 2);
    return c;
}

/* One exchange: the client's HELLO answered by a WAIT (with a token when
 * tok) or a HINT, made at the fake clock. */
static const ug_client_event *exchange(ug_client *c, bool hint, bool tok)
{
    uint8_t hello[UG_CLIENT_DGRAM_MAX], reply[UG_CLIENT_DGRAM_MAX];
    size_t hl;
    cr_assert_eq(ug_client_hello(c, hello, sizeof hello, &hl), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    ug2_hello h;
    ug_dgram d;
    cr_assert_eq(ug2_hello_parse(&h, &d, hello, hl, NULL), 0, "a HELLO v2");
    H.ts = fake;
    size_t n = hint ? vw_hint_make(&H, &h, reply, sizeof reply) : vw_wait_make(&H, &h, tok, reply, sizeof reply);
    cr_assert_gt(n, 0);
    const ug_client_event *ev;
    cr_assert_eq(ug_client_receive(c, reply, n, &ev), UG_CLIENT_OK);
    ug_client_hello_reset(c);
    return ev;
}

static ug_client_trust_info trust(ug_client *c)
{
    ug_client_trust_info t;
    ug_client_trust_info_init(&t);
    cr_assert_eq(ug_client_trust(c, &t), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    return t;
}

Test(client_v2, a_frozen_peer_raises_its_event_after_the_configured_time)
{
    ug_client *c = client("s");
    uint64_t installed = fake;
    const ug_client_event *ev = exchange(c, false, false);
    cr_assert_eq(ev->type, UG_CLIENT_EV_WAIT);
    cr_assert(!ev->token && !ev->blocked && told == 0);
    fake += 6 * DAY; /* tokenless WAITs, day after day */
    ev = exchange(c, false, false);
    cr_assert(!ev->blocked && told == 0);
    fake += DAY;
    ev = exchange(c, false, false);
    cr_assert(ev->blocked, "7 days (the default) without a token or HINT");
    cr_assert_eq(told, 1);
    cr_assert_eq(told_fresh, installed, "counted from the installation");
    ev = exchange(c, false, false);
    cr_assert(ev->blocked && told == 1, "the application is told once");
    /* only signed times move the peer's clock: WAIT ts is advice */
    cr_assert_eq(trust(c).signed_time, 0);
    /* a valid token ends it, and moves the signed clock */
    ev = exchange(c, false, true);
    cr_assert(ev->token, "%s", ev->token_reason_name);
    cr_assert_eq(ev->newest_seq, 10);
    cr_assert(!ev->blocked);
    ug_client_trust_info t = trust(c);
    cr_assert_eq(t.fresh_at, fake);
    cr_assert_eq(t.signed_time, fake);
    cr_assert_eq(t.keyring_version, 1, "the token's keyring was walked to");
    /* a system clock set back does not take the peer's clock with it */
    uint64_t signed_at = fake;
    fake -= 3 * DAY;
    ev = exchange(c, false, false);
    cr_assert(!ev->blocked);
    cr_assert_eq(trust(c).signed_time, signed_at);
    fake = signed_at + 7 * DAY;
    ev = exchange(c, false, false);
    cr_assert(ev->blocked && told == 2, "blocked again, told again");
    ug_client_free(c);
}

Test(client_v2, what_the_peer_verified_survives_a_restart)
{
    ug_client *c = client("s");
    const ug_client_event *ev = exchange(c, true, false);
    cr_assert_eq(ev->type, UG_CLIENT_EV_OFFER, "%s", ev->reason_name);
    cr_assert_eq(ev->seq, 10);
    cr_assert_str_eq(ev->offer.to, "2.0.0");
    ug_client_free(c);
    /* a new handle on the same state file: seq 10 held, an older manifest refused */
    c = client("s");
    ug_client_trust_info t = trust(c);
    cr_assert_eq(t.seq, 10);
    cr_assert_eq(t.keyring_version, 1);
    cr_assert_eq(t.signed_time, fake);
    vw_hint_free(&H);
    vw_manifest_of(&W, "m5.manifest", "2.0.0", 5, NULL);
    vw_hint_load(&W, &H, "hint.key", "h.cert", "m5.manifest", 1);
    ev = exchange(c, true, false);
    cr_assert_eq(ev->type, UG_CLIENT_EV_IGNORED);
    cr_assert_eq(ev->reason, UG_CLIENT_R_SEQ);
    cr_assert(ev->hint && ev->authentic, "the tracker's own answer, not a forgery");
    /* a REPORT v2 */
    uint8_t rep[UG_CLIENT_DGRAM_MAX];
    size_t rl;
    cr_assert_eq(ug_client_report(c, UG_CLIENT_RES_DECLINED, "2.0.0", rep, sizeof rep, &rl), UG_CLIENT_OK);
    ug2_report r;
    ug_dgram d;
    cr_assert_eq(ug2_report_parse(&r, &d, rep, rl, NULL), 0);
    cr_assert_str_eq(r.app, VW_APP);
    ug_client_free(c);
}

Test(client_v2, the_keyring_walk_goes_as_far_as_is_served)
{
    vw_keys_ok(&W, "revoke --from www/keys/1.keyring --min-serial 3 --ttl 864000 --key r1.key --key r2.key "
                   "--out www/keys/2.keyring");
    ug_client *c = client(NULL);
    cr_assert_eq(ug_client_keyring_update(c), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    ug_client_trust_info t = trust(c);
    cr_assert_eq(t.keyring_version, 2);
    cr_assert_eq(t.min_serial, 3);
    /* the certificate of serial 1 is revoked now */
    const ug_client_event *ev = exchange(c, true, false);
    cr_assert_eq(ev->reason, UG_CLIENT_R_REVOKED, "%s", ev->reason_name);
    ug_client_free(c);
}

Test(client_v2, bad_state_files_and_configurations_are_named)
{
    const char *bad = "upgate-peer-state 2\nmin_serial 01\nfloor 0\nfresh_at 0\n"; /* a leading zero */
    tu_write_file(vw_path(&W, "bad"), bad, strlen(bad));
    ug_client *c = client("bad");
    uint8_t buf[UG_CLIENT_DGRAM_MAX];
    size_t len;
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_E_FORMAT);
    cr_assert_not_null(strstr(ug_client_errmsg(c), vw_path(&W, "bad")), "%s", ug_client_errmsg(c));
    /* roots and version 1 pins together */
    cr_assert_eq(ug_client_add_hint_key_file(c, vw_path(&W, "hint.pub")), UG_CLIENT_OK);
    cr_assert_eq(ug_client_protocol(c), 0);
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_E_INVALID);
    cr_assert_not_null(strstr(ug_client_errmsg(c), "not both"), "%s", ug_client_errmsg(c));
    ug_client_free(c);
    /* app without plat and chan; a label with a space */
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = 7;
    cfg.version = "1.0";
    cfg.app = "demo";
    const char *msg;
    cr_assert_eq(ug_client_new(&cfg, &c, &msg), UG_CLIENT_E_INVALID);
    cr_assert_not_null(strstr(msg, "plat"), "%s", msg);
    cfg.plat = "linux";
    cfg.chan = "sta ble";
    cr_assert_eq(ug_client_new(&cfg, &c, &msg), UG_CLIENT_E_INVALID);
    /* a keyring URL must end with "/" */
    cfg.chan = "stable";
    cr_assert_eq(ug_client_new(&cfg, &c, &msg), UG_CLIENT_OK);
    cr_assert_eq(ug_client_add_keyring_url(c, "http://127.0.0.1/keys"), UG_CLIENT_E_INVALID);
    cr_assert_eq(ug_client_keyring_update(c), UG_CLIENT_E_INVALID, "no roots pinned: not version 2");
    ug_client_free(c);
}
