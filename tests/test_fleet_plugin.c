/* Fleet mode in-process (the plugin through its ABI): what it changes and what it does not, without Redis; the texts and replies it reads from Redis. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "fixture.h"
#include "fleet/fleet_codec.h"
#include "fleet/fleet_redis.h"
#include "fleetutil.h"
#include "testutil.h"

static json_t *stage0(json_t *status)
{
    return json_array_get(json_object_get(json_array_get(json_object_get(status, "rollouts"), 0), "stages"), 0);
}

/* ---- the plugin in-process: what fleet mode changes, and what it does not ---- */

static fx_t X;

static void xteardown(void)
{
    fx_stop(&X);
}

TestSuite(fleet_plugin, .fini = xteardown, .timeout = 60);

static json_t *xctl(const char *req, int *rc)
{
    const char *out = fx_control(&X, req, rc);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j, "reply is JSON: %s", out);
    return j;
}

static const char *unreachable = "fleet: {redis: \"unix:///nonexistent/redis.sock\", tracker: t1, lease_timeout: 5}\n";

Test(fleet_plugin, a_tracker_alone_has_no_fleet)
{
    fx_init(&X, 2);
    fx_policy(&X, "targets: [\"1.4.0\"]\nstages:\n  - {name: all, quota: 3}\n");
    char err[512];
    cr_assert_eq(fx_start(&X, err, sizeof err), 0, "%s", err);
    for (uint64_t uid = 1; uid <= 3; uid++)
        cr_assert_eq(fx_ask(&X, 0, "10.0.0.1", uid, "1.4.0", NULL).type, UG_TYPE_HINT);
    fx_reply r = fx_ask(&X, 1, "10.0.0.1", 4, "1.4.0", NULL);
    cr_assert(r.type == UG_TYPE_WAIT && r.wait.why == UG_WHY_QUOTA, "spent is spent alone: why %u", r.wait.why);
    int rc;
    json_t *j = xctl("{\"cmd\":\"status\"}", &rc);
    cr_assert(json_is_null(json_object_get(json_object_get(j, "tracker"), "fleet")));
    json_t *st = stage0(j);
    cr_assert_eq(json_integer_value(json_object_get(st, "granted")), 3);
    cr_assert_null(json_object_get(st, "granted_here"), "no fleet members in a lone tracker's status");
    json_decref(j);
    j = xctl("{\"cmd\":\"fleet\",\"sub\":\"status\"}", &rc);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(json_string_value(json_object_get(j, "error")), "alone"));
    json_decref(j);
    j = xctl("{\"cmd\":\"fleet\",\"sub\":\"bogus\"}", &rc);
    cr_assert_eq(rc, -1);
    json_decref(j);
    const char *g = fx_control(&X, "{\"cmd\":\"grants\",\"rollout\":\"default\"}", &rc);
    cr_assert_null(strstr(g, "remote"), "%s", g);
}

/* fleet_rate on a tracker alone: it is the whole fleet. */
Test(fleet_plugin, fleet_rate_alone_is_the_whole_rate)
{
    fx_init(&X, 1);
    fx_policy(&X, "targets: [\"1.4.0\"]\nstages:\n  - {name: all, fleet_rate: 2}\n");
    char err[512];
    cr_assert_eq(fx_start(&X, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fx_ask(&X, 0, "10.0.0.1", 1, "1.4.0", NULL).type, UG_TYPE_HINT);
    cr_assert_eq(fx_ask(&X, 0, "10.0.0.1", 2, "1.4.0", NULL).type, UG_TYPE_HINT);
    fx_reply r = fx_ask(&X, 0, "10.0.0.1", 3, "1.4.0", NULL);
    cr_assert(r.type == UG_TYPE_WAIT && r.wait.why == UG_WHY_RATE, "the third in one second waits: %u", r.wait.why);
    X.now++;
    cr_assert_eq(fx_ask(&X, 0, "10.0.0.1", 3, "1.4.0", NULL).type, UG_TYPE_HINT);
}

/* Redis unreachable from the start: the tracker runs, offers what it was
 * already granted... and nothing new; control still works, and says the
 * fleet hears it later; the fleet section cannot change on reload. */
Test(fleet_plugin, unreachable_redis_from_the_start)
{
    char pol[1024];
    fx_init(&X, 1);
    snprintf(pol, sizeof pol, "targets: [\"1.4.0\"]\n%sstages:\n  - {name: all, quota: 100}\n", unreachable);
    fx_policy(&X, pol);
    char err[512];
    cr_assert_eq(fx_start(&X, err, sizeof err), 0, "%s", err);
    fx_reply r = fx_ask(&X, 0, "10.0.0.1", 1, "1.4.0", NULL);
    cr_assert(r.type == UG_TYPE_WAIT && r.wait.why == UG_WHY_QUOTA && r.wait.retry <= 60,
              "no lease yet: come back soon, and not \"rate limited\" (why %u, retry %llu)", r.wait.why,
              (unsigned long long)r.wait.retry);
    int rc;
    json_t *j = xctl("{\"cmd\":\"status\"}", &rc);
    json_t *fl = json_object_get(json_object_get(j, "tracker"), "fleet");
    cr_assert(json_is_object(fl));
    cr_assert(json_is_false(json_object_get(fl, "connected")));
    cr_assert_str_eq(json_string_value(json_object_get(fl, "tracker")), "t1");
    cr_assert_eq(json_integer_value(json_object_get(stage0(j), "lease_unused_here")), 0);
    json_decref(j);
    j = xctl("{\"cmd\":\"halt\",\"rollout\":\"default\",\"why\":\"x\"}", &rc);
    cr_assert_eq(rc, 0, "halted here at once");
    cr_assert(strstr(json_string_value(json_object_get(j, "fleet")), "queued"));
    json_decref(j);
    r = fx_ask(&X, 0, "10.0.0.1", 1, "1.4.0", NULL);
    cr_assert(r.type == UG_TYPE_WAIT && r.wait.why == UG_WHY_PAUSED);
    j = xctl("{\"cmd\":\"fleet\",\"sub\":\"status\"}", &rc);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(json_string_value(json_object_get(j, "error")), "unreachable"), "%s",
              json_string_value(json_object_get(j, "error")));
    json_decref(j);
    /* the fleet section is fixed while running */
    snprintf(pol, sizeof pol, "targets: [\"1.4.0\"]\n%sstages:\n  - {name: all, quota: 200}\n", unreachable);
    fx_policy(&X, pol);
    cr_assert_eq(X.api->reload(X.inst, NULL, err, sizeof err), 0, "%s", err);
    fx_policy(&X, "targets: [\"1.4.0\"]\nfleet: {redis: \"unix:///nonexistent/redis.sock\", tracker: t2}\n"
                  "stages:\n  - {name: all, quota: 200}\n");
    cr_assert_eq(X.api->reload(X.inst, NULL, err, sizeof err), -1);
    cr_assert(strstr(err, "fleet: cannot change while running"), "%s", err);
    fx_policy(&X, "targets: [\"1.4.0\"]\nstages:\n  - {name: all, quota: 200}\n");
    cr_assert_eq(X.api->reload(X.inst, NULL, err, sizeof err), -1, "nor go");
    long long t0 = fu_mono_ms();
    cr_assert_eq(X.api->finish(X.inst, err, sizeof err), 0, "%s", err);
    cr_assert_lt(fu_mono_ms() - t0, 5000, "a stop without Redis is bounded");
}

/* Fleet mode trusts only a Redis other local users cannot reach: a TCP
 * Redis without a password, or a socket in a folder others can enter,
 * keeps the tracker from starting, and the error names the fix. */
Test(fleet_plugin, an_open_redis_is_refused_at_start)
{
    const char *open_ones[] = {"fleet: {redis: \"redis://127.0.0.1:6379\", tracker: t1}\n",
                               "fleet: {redis: \"sentinel://127.0.0.1:26379/m\", tracker: t1}\n",
                               "fleet: {redis: \"unix:///tmp/redis.sock\", tracker: t1}\n"};
    for (size_t i = 0; i < 3; i++) {
        char pol[1024], err[1024];
        fx_init(&X, 1);
        snprintf(pol, sizeof pol, "targets: [\"1.4.0\"]\n%sstages:\n  - {name: all, quota: 1}\n", open_ones[i]);
        fx_policy(&X, pol);
        cr_assert_eq(fx_start(&X, err, sizeof err), -1, "%s starts", open_ones[i]);
        cr_assert(strstr(err, "password_file") && strstr(err, "docs/fleet.md"), "the error names the fix: %s", err);
        if (i == 2)
            cr_assert(strstr(err, "/tmp") && strstr(err, "other users"), "and the folder: %s", err);
        fx_stop(&X);
    }
}

/* A host that gives its own state folder (a simulator) runs alone. */
Test(fleet_plugin, a_state_override_turns_the_fleet_off)
{
    char pol[1024];
    fx_init(&X, 1);
    snprintf(pol, sizeof pol, "targets: [\"1.4.0\"]\n%sstages:\n  - {name: all, quota: 1}\n", unreachable);
    fx_policy(&X, pol);
    X.state_override = tu_tmpdir();
    char err[512];
    cr_assert_eq(fx_start(&X, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fx_ask(&X, 0, "10.0.0.1", 1, "1.4.0", NULL).type, UG_TYPE_HINT, "its own quota, at once");
    int rc;
    json_t *j = xctl("{\"cmd\":\"status\"}", &rc);
    cr_assert(json_is_null(json_object_get(json_object_get(j, "tracker"), "fleet")));
    json_decref(j);
}

/* ---- the texts in Redis ---------------------------------------------------- */

TestSuite(fleet_codec, .timeout = 30);

Test(fleet_codec, grants_events_rows_and_keys)
{
    ug_fleet_grant g;
    cr_assert_eq(ug_fleet_grant_parse("canary|trk.1_A|1790000000|3", 27, &g), 0);
    cr_assert_str_eq(g.stage, "canary");
    cr_assert_str_eq(g.tracker, "trk.1_A");
    cr_assert_eq(g.at, 1790000000u);
    cr_assert_eq(g.outcome, UG_OUT_DECLINED);
    const char *bad[] = {"", "a|b|1", "a|b|1|0|x", "A|b|1|0", "a||1|0", "a|b|01|0", "a|b|4294967296|0", "a|b|1|7",
                         "a|b|1|", "a|b c|1|0", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|b|1|0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(ug_fleet_grant_parse(bad[i], strlen(bad[i]), &g), -1, "%s", bad[i]);

    uint64_t uid;
    cr_assert_eq(ug_fleet_uid_parse("9223372036854775807", 19, &uid), 0);
    cr_assert_eq(ug_fleet_uid_parse("9223372036854775808", 19, &uid), -1);
    cr_assert_eq(ug_fleet_uid_parse("0", 1, &uid), -1);
    cr_assert_eq(ug_fleet_uid_parse("012", 3, &uid), -1);

    ug_fleet_event e;
    const char *f1[] = {"k", "g", "u", "42", "s", "all", "a", "7", "o", "0", "t", "b"};
    size_t l1[12];
    for (int i = 0; i < 12; i++)
        l1[i] = strlen(f1[i]);
    cr_assert_eq(ug_fleet_event_parse(f1, l1, 12, &e), 0);
    cr_assert(e.kind == UG_FEV_GRANT && e.uid == 42 && e.g.at == 7 && !strcmp(e.g.stage, "all"));
    const char *f2[] = {"k", "o", "u", "42", "o", "1", "t", "b"};
    size_t l2[8];
    for (int i = 0; i < 8; i++)
        l2[i] = strlen(f2[i]);
    cr_assert_eq(ug_fleet_event_parse(f2, l2, 8, &e), 0);
    cr_assert(e.kind == UG_FEV_OUTCOME && e.g.outcome == UG_OUT_UPGRADED);
    cr_assert_eq(ug_fleet_event_parse(f2, l2, 7, &e), -1, "odd field count");
    cr_assert_eq(ug_fleet_event_parse(f1, l1, 10, &e), -1, "no tracker");
    const char *f3[] = {"k", "o", "k", "o", "u", "1", "o", "1", "t", "b"};
    size_t l3[10];
    for (int i = 0; i < 10; i++)
        l3[i] = strlen(f3[i]);
    cr_assert_eq(ug_fleet_event_parse(f3, l3, 10, &e), -1, "a repeated field");

    uint64_t ts;
    bool up;
    cr_assert_eq(ug_fleet_row_parse("1790000000|up|host pid 1", 24, &ts, &up), 0);
    cr_assert(up && ts == 1790000000u);
    cr_assert_eq(ug_fleet_row_parse("5|stopped|forgotten", 19, &ts, &up), 0);
    cr_assert(!up);
    cr_assert_eq(ug_fleet_row_parse("5|down|x", 8, &ts, &up), -1);
    cr_assert_eq(ug_fleet_row_parse("x|up|x", 6, &ts, &up), -1);

    char key[UG_FLEET_KEY_MAX], r[UG_NAME_MAX + 1], t[UG_VER_MAX + 1], s[UG_NAME_MAX + 1];
    cr_assert_eq(ug_fleet_key_stage(key, "desk-2", "2.0.0", "ramp"), 0);
    cr_assert_str_eq(key, "ug:{desk-2}:2.0.0:q:ramp");
    cr_assert_eq(ug_fleet_qkey_parse(key, strlen(key), r, t, s), 0);
    cr_assert(!strcmp(r, "desk-2") && !strcmp(t, "2.0.0") && !strcmp(s, "ramp"));
    const char *badk[] = {"ug:{x}:1:g", "ug:{}:1:q:s", "ug:{x}:1.a:q:s", "ug:{x}:1:q:", "ug:{_fleet}:leases:a",
                          "xx:{x}:1:q:s"};
    for (size_t i = 0; i < sizeof badk / sizeof *badk; i++)
        cr_assert_eq(ug_fleet_qkey_parse(badk[i], strlen(badk[i]), r, t, s), -1, "%s", badk[i]);
    cr_assert_eq(ug_fleet_key_fleet(key, "leases", "a"), 0);
    cr_assert_str_eq(key, "ug:{_fleet}:leases:a");
}

/* The flags hash's promoted gates (issue 25: promote across a fleet): one
 * text per list, their own MAC, one release at a time. */
Test(fleet_codec, promoted_gates_in_the_flags)
{
    static ug_fleet_flags st, back;
    const char *f[] = {"ver", "3", "gates", "beta:2:2000:2.0.0,ramp:1:500:2.0.0,ramp:4:10000:2.0.0", "gmac", ""};
    size_t l[6];
    for (int i = 0; i < 6; i++)
        l[i] = strlen(f[i]);
    cr_assert_eq(ug_fleet_flags_parse(f, l, 6, &st), 0);
    cr_assert_eq(st.ngates, 3);
    cr_assert(!strcmp(st.gates[1].stage, "ramp") && st.gates[1].step == 1 && st.gates[1].bp == 500 &&
              !strcmp(st.gates[1].to, "2.0.0"));
    char text[UG_FLEET_GATES_TEXT];
    ug_fleet_gates_format(&st, text);
    cr_assert_str_eq(text, f[3]);
    static const uint8_t key[32] = {7};
    cr_assert_not(ug_fleet_gates_verify(key, "r", &st), "gates without their gmac");
    ug_fleet_gates_mac(key, "r", &st, st.gmac);
    cr_assert(ug_fleet_gates_verify(key, "r", &st));
    cr_assert_not(ug_fleet_gates_verify(key, "q", &st), "sealed for one rollout only");
    char mac[UG_FLEET_MAC_HEX + 1];
    ug_fleet_flags_mac(key, "r", &st, mac);
    back = st;
    back.ngates = 0;
    ug_fleet_flags_mac(key, "r", &back, back.mac);
    cr_assert_str_eq(mac, back.mac, "the v1 MAC leaves the gates out: an older tracker still checks it");
    st.ver = 4; /* a rewrite by a tracker that knows no gates keeps gates and gmac: still valid */
    cr_assert(ug_fleet_gates_verify(key, "r", &st));
    st.gates[1].step = 2; /* a forger moving the promote to a later step */
    cr_assert_not(ug_fleet_gates_verify(key, "r", &st));
    st.gates[1].step = 1;

    ug_fleet_gate g = {.stage = "ramp", .to = "2.0.0", .step = 1, .bp = 500};
    cr_assert_eq(ug_fleet_gates_add(&st, &g), 0, "known already");
    g.bp = 600;
    cr_assert_eq(ug_fleet_gates_add(&st, &g), -1, "one step, one percentage");
    g = (ug_fleet_gate){.stage = "ramp", .to = "2.0.0", .step = 2, .bp = 1000};
    cr_assert_eq(ug_fleet_gates_add(&st, &g), 1);
    ug_fleet_gates_format(&st, text);
    cr_assert_str_eq(text, "beta:2:2000:2.0.0,ramp:1:500:2.0.0,ramp:2:1000:2.0.0,ramp:4:10000:2.0.0");
    g = (ug_fleet_gate){.stage = "ramp", .to = "2.1.0", .step = 1, .bp = 500};
    cr_assert_eq(ug_fleet_gates_add(&st, &g), 1);
    ug_fleet_gates_format(&st, text);
    cr_assert_str_eq(text, "ramp:1:500:2.1.0", "a new release drops the older one's gates");
    g.stage[0] = 'R';
    cr_assert_eq(ug_fleet_gates_add(&st, &g), -1, "what is written must read back");

    const char *bad[] = {"ramp:1:500:2.0.0,", ",ramp:1:500:2.0.0", "ramp:1:500", "ramp:1:10001:2.0.0",
                         "ramp:01:500:2.0.0", "ramp:65536:500:2.0.0", "Ramp:1:500:2.0.0", "ramp:1:500:2.0.0:x",
                         "ramp:2:500:2.0.0,ramp:1:500:2.0.0", "ramp:1:500:2.0.0,ramp:1:600:2.1.0", "ramp:1:500:"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *fb[] = {"gates", bad[i]};
        size_t lb[] = {5, strlen(bad[i])};
        cr_assert_eq(ug_fleet_flags_parse(fb, lb, 2, &back), -1, "%s", bad[i]);
    }
    const char *fe[] = {"gates", "", "gmac", "xyz"};
    size_t le[] = {5, 0, 4, 3};
    cr_assert_eq(ug_fleet_flags_parse(fe, le, 2, &back), 0, "no gates");
    cr_assert_eq(back.ngates, 0);
    cr_assert_eq(ug_fleet_flags_parse(fe, le, 4, &back), -1, "a gmac that is not one");
}

/* ---- Redis's replies read by shape: a reply of another shape is refused, never read past ---- */

/* One reply from RESP text, as hiredis makes it on a connection (the
 * same array cap). */
static redisReply *resp_n(const char *text, size_t n)
{
    redisReader *r = redisReaderCreate();
    cr_assert(r && fr_reader_cap(r) == 0);
    redisReply *rep = NULL;
    cr_assert_eq(redisReaderFeed(r, text, n), REDIS_OK);
    cr_assert(redisReaderGetReply(r, (void **)&rep) == REDIS_OK && rep, "%s", text);
    redisReaderFree(r);
    return rep;
}

static redisReply *resp(const char *text)
{
    return resp_n(text, strlen(text));
}

Test(fleet_reply, leases_are_believed_only_within_what_was_asked)
{
    fr_lease l;
    uint64_t g;
    redisReply *ok = resp("*3\r\n:4\r\n:10\r\n:6\r\n"), *big = resp("*3\r\n:1000000\r\n:10\r\n:1000000\r\n");
    cr_assert(fr_lease_reply(ok, 4, 40, &l) == 0 && l.given == 4 && l.n == 10 && l.leased == 6);
    cr_assert_eq(fr_lease_reply(ok, 3, 40, &l), -1, "more than asked");
    cr_assert_eq(fr_lease_reply(ok, 4, 15, &l), -1, "past the quota");
    cr_assert_eq(fr_lease_reply(big, 1000000, 40, &l), -1, "a rewritten reply");
    cr_assert_eq(fr_unpark_reply(big, 5, &g), -1);
    freeReplyObject(ok), freeReplyObject(big);
}

Test(fleet_reply, stream_entries_and_their_ids)
{
    redisReply *x = resp("*1\r\n*2\r\n$2\r\nev\r\n*3\r\n"
                         "*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nu\r\n$2\r\n17\r\n"
                         "*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nu\r\n:17\r\n"
                         ":5\r\n");
    const redisReply *ents = fr_xread_entries(x), *fv;
    cr_assert(ents && ents->elements == 3);
    const char *f[12], *id = fr_stream_entry(ents->element[0], &fv);
    size_t len[12];
    cr_assert_str_eq(id, "1-1");
    cr_assert_eq(fr_strings(fv, f, len, 12), 2);
    cr_assert(len[1] == 2 && memcmp(f[1], "17", 2) == 0);
    cr_assert_str_eq(fr_stream_entry(ents->element[1], &fv), "1-2");
    cr_assert_eq(fr_strings(fv, f, len, 12), -1, "an integer among the fields");
    cr_assert_eq(fr_strings(fv, f, len, 1), -1, "more fields than room");
    cr_assert_null(fr_stream_entry(ents->element[2], &fv), "not an entry");
    cr_assert_null(fr_stream_entry(x->element[0], &fv), "a stream's name is no entry id");
    char first[48] = "kept";
    cr_assert_eq(fr_entry_id(x, first, sizeof first), 0, "an XREAD reply is not a range's: ev is no id");
    cr_assert_str_eq(first, "kept");
    freeReplyObject(x);
    redisReply *r = resp("*1\r\n*2\r\n$15\r\n1700000000000-3\r\n*0\r\n");
    cr_assert_eq(fr_entry_id(r, first, sizeof first), 15);
    cr_assert_str_eq(first, "1700000000000-3");
    cr_assert_eq(fr_entry_id(r, first, 15), 0, "no room for it");
    freeReplyObject(r);
    const char *odd[] = {"*0\r\n", "$-1\r\n", ":1\r\n", "*1\r\n:1\r\n", "*1\r\n*2\r\n:1\r\n:2\r\n", "-ERR x\r\n"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        r = resp(odd[i]);
        cr_assert(!fr_xread_entries(r) && !fr_entry_id(r, first, sizeof first) && !fr_stream_entry(r, &fv), "%s",
                  odd[i]);
        freeReplyObject(r);
    }
}

Test(fleet_reply, scans_and_hashes)
{
    char cur[32];
    const redisReply *k, *v;
    long long n;
    redisReply *s = resp("*2\r\n$3\r\n128\r\n*5\r\n$2\r\n17\r\n$3\r\na|b\r\n$1\r\n9\r\n:4\r\n$1\r\nx\r\n");
    const redisReply *kv = fr_scan_reply(s, cur, sizeof cur);
    cr_assert(kv && strcmp(cur, "128") == 0);
    cr_assert_eq(fr_npairs(kv), 2, "an odd last field is no pair");
    cr_assert(fr_pair(kv, 0, &k, &v) && strcmp(k->str, "17") == 0 && strcmp(v->str, "a|b") == 0);
    cr_assert(!fr_pair(kv, 1, &k, &v), "an integer value");
    cr_assert(!fr_pair(kv, 2, &k, &v));
    cr_assert_null(fr_scan_reply(s, cur, 3), "a cursor past its room");
    freeReplyObject(s);
    s = resp("*2\r\n$2\r\n1x\r\n*0\r\n");
    cr_assert_null(fr_scan_reply(s, cur, sizeof cur), "a cursor of other than digits");
    freeReplyObject(s);
    redisReply *h = resp("*6\r\n$3\r\nver\r\n$1\r\n7\r\n$4\r\nverx\r\n$1\r\n9\r\n$1\r\nn\r\n$2\r\nno\r\n");
    cr_assert(fr_hash_int(h, "ver", &n) && n == 7);
    cr_assert(!fr_hash_int(h, "n", &n), "not a number");
    cr_assert(!fr_hash_int(h, "ve", &n));
    freeReplyObject(h);
}

Test(fleet_reply, rate_sentinel_role_info_and_scripts)
{
    double share;
    long long active;
    redisReply *r = resp("*3\r\n$3\r\n2.5\r\n:2\r\n$1\r\n5\r\n");
    cr_assert(fr_rate_reply(r, 20, &share, &active) && share == 2.5 && active == 2);
    cr_assert(!fr_rate_reply(r, 2, &share, &active), "a share past fleet_rate");
    freeReplyObject(r);
    const char *badrate[] = {"*3\r\n$3\r\nnan\r\n:2\r\n$1\r\n5\r\n", "*3\r\n$4\r\n2.5x\r\n:2\r\n$1\r\n5\r\n",
                             "*3\r\n$2\r\n-1\r\n:2\r\n$1\r\n5\r\n", "*3\r\n$1\r\n1\r\n:-2\r\n$1\r\n5\r\n",
                             "*2\r\n$1\r\n1\r\n:2\r\n", "$1\r\n1\r\n"};
    for (size_t i = 0; i < sizeof badrate / sizeof *badrate; i++) {
        r = resp(badrate[i]);
        cr_assert(!fr_rate_reply(r, 20, &share, &active), "%s", badrate[i]);
        freeReplyObject(r);
    }
    char host[16];
    unsigned port;
    r = resp("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n");
    cr_assert(fr_master_addr(r, host, sizeof host, &port) && strcmp(host, "127.0.0.1") == 0 && port == 6380);
    cr_assert(!fr_master_addr(r, host, 9, &port), "a host past its room");
    freeReplyObject(r);
    const char *badaddr[] = {"*2\r\n$1\r\nh\r\n$5\r\n70000\r\n", "*2\r\n$1\r\nh\r\n$1\r\n0\r\n",
                             "*2\r\n$1\r\nh\r\n$3\r\n12a\r\n", "*-1\r\n"};
    for (size_t i = 0; i < sizeof badaddr / sizeof *badaddr; i++) {
        r = resp(badaddr[i]);
        cr_assert(!fr_master_addr(r, host, sizeof host, &port), "%zu", i);
        freeReplyObject(r);
    }
    static const char nul[] = "*2\r\n$3\r\nh\0x\r\n$2\r\n12\r\n";
    r = resp_n(nul, sizeof nul - 1);
    cr_assert(!fr_master_addr(r, host, sizeof host, &port), "a host with a NUL in it");
    freeReplyObject(r);
    r = resp("*3\r\n$6\r\nmaster\r\n:1\r\n*0\r\n");
    cr_assert(fr_is_master(r));
    freeReplyObject(r);
    r = resp("*1\r\n$5\r\nslave\r\n");
    cr_assert(!fr_is_master(r));
    freeReplyObject(r);
    char v[8];
    r = resp("$46\r\n# S\r\nxrun_id:bad\r\nrun_id:abc\r\nlong:123456789\r\n\r\n");
    cr_assert(fr_info_field(r, "run_id", v, sizeof v) == 3 && strcmp(v, "abc") == 0, "a line of its own");
    cr_assert_eq(fr_info_field(r, "long", v, sizeof v), 0, "a value past its room");
    cr_assert_eq(fr_info_field(r, "none", v, sizeof v), 0);
    freeReplyObject(r);
    char sha[41];
    r = resp("$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff831\r\n");
    cr_assert(fr_sha_reply(r, sha) && strcmp(sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff831") == 0);
    freeReplyObject(r);
    r = resp("$40\r\nE0E1F9FABFC9D4800C877A703B823AC0578FF831\r\n");
    cr_assert(!fr_sha_reply(r, sha));
    freeReplyObject(r);
}
