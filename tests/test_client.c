/* Tests of libupgate's API on its own: the peer vectors as events, HELLOs, REPORTs, the state file, the exports. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <upgate/client.h>

#include "../fuzz/oracle/oracle.h"
#include "testutil.h"

#define VEC_NOW UINT64_C(1790000000)
#define VEC_UID 4242u

static uint64_t g_now = VEC_NOW;
static unsigned g_draws; /* nonces drawn: the first is the vectors' 00..0f */

static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return g_now;
}

/* Draw n of the fake generator: 00..0f for the first (the vectors'
 * nonce), then the same with the last bytes counting the draws. */
static void nth_draw(unsigned n, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)i;
    if (n > 0 && len >= 2) {
        buf[len - 2] = (uint8_t)(0x80 | (n >> 8));
        buf[len - 1] = (uint8_t)n;
    }
}

static void fake_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    nth_draw(g_draws++, buf, len);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    cr_assert(s, "field %s", k);
    return s;
}

static uint64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_integer(v), "field %s", k);
    return (uint64_t)json_integer_value(v);
}

/* The world of one test: a client key, an issuer, a credential. */
static struct {
    uint8_t seed[32], client_sk[64], client_pk[32];
    uint8_t issuer_sk[64], issuer_pk[32];
    uint8_t cred[512];
    size_t cred_len;
    ug_pubkey issuer;
} W;

static void make_cred(uint64_t uid, const uint8_t pk[32], uint64_t exp)
{
    ug_cred c = {.uid = uid, .exp = exp};
    memcpy(c.pk, pk, 32);
    ug_kid(c.kid, W.issuer_pk);
    uint8_t body[256];
    size_t blen;
    cr_assert_eq(ug_cred_encode_body(body, sizeof body, &blen, &c), 0);
    cr_assert_eq(ug_signed_encode(W.cred, sizeof W.cred, &W.cred_len, UG_CTX_CRED, body, blen, W.issuer_sk), 0);
}

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    g_now = VEC_NOW;
    g_draws = 0;
    randombytes_buf(W.seed, sizeof W.seed);
    crypto_sign_seed_keypair(W.client_pk, W.client_sk, W.seed);
    crypto_sign_keypair(W.issuer_pk, W.issuer_sk);
    ug_pubkey_set(&W.issuer, W.issuer_pk);
    make_cred(VEC_UID, W.client_pk, VEC_NOW + 86400);
}

TestSuite(client, .init = setup, .timeout = 60);

/* A client as the vectors' peer: uid, version, clock, first nonce, pins. */
static ug_client *vector_client(json_t *j, size_t hello_size)
{
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = jint(j, "uid");
    cfg.version = jstr(j, "current_version");
    cfg.now = fake_now;
    cfg.random = fake_random;
    if (hello_size)
        cfg.hello_size = hello_size;
    ug_client *c;
    const char *msg;
    cr_assert_eq(ug_client_new(&cfg, &c, &msg), UG_CLIENT_OK, "%s", msg);
    cr_assert_eq(ug_client_set_key(c, W.seed), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    cr_assert_eq(ug_client_set_cred(c, W.cred, W.cred_len), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "pinned_hint_keys"), i, v) {
        uint8_t pk[32];
        cr_assert_eq(tu_unhex(json_string_value(v), pk, sizeof pk), 32);
        cr_assert_eq(ug_client_add_hint_key(c, pk), UG_CLIENT_OK);
    }
    json_array_foreach(json_object_get(j, "pinned_release_keys"), i, v) {
        uint8_t pk[32];
        cr_assert_eq(tu_unhex(json_string_value(v), pk, sizeof pk), 32);
        cr_assert_eq(ug_client_add_release_key(c, pk), UG_CLIENT_OK);
    }
    return c;
}

/* A HELLO as a tracker reads it: decodes, and credential and signature verify. */
static void check_hello(const uint8_t *buf, size_t len, ug_hello *h)
{
    ug_dgram d;
    ug_err err = UG_OK;
    cr_assert_eq(ug_dgram_decode(&d, buf, len, &err), 0, "%s", ug_err_name(err));
    cr_assert_eq(d.type, UG_TYPE_HELLO);
    cr_assert_eq(ug_hello_decode(h, d.body, d.body_len, &err), 0, "%s", ug_err_name(err));
    cr_assert_eq(or_hello_verify(h, &d, &W.issuer, 1, g_now, &err), 0, "%s", ug_err_name(err));
}

static const ug_client_event *feed(ug_client *c, const uint8_t *buf, size_t len)
{
    const ug_client_event *ev = NULL;
    cr_assert_eq(ug_client_receive(c, buf, len, &ev), UG_CLIENT_OK);
    cr_assert_not_null(ev);
    return ev;
}

static const ug_client_event *feed_hex(ug_client *c, const char *hex)
{
    uint8_t buf[4096];
    size_t len = tu_unhex(hex, buf, sizeof buf);
    return feed(c, buf, len);
}

/* ---- the peer vectors ----------------------------------------------- */

/* What each rejected vector must be ignored for, and whether the tracker
 * itself (a pinned key, our uid and nonce) sent it. */
static const struct {
    const char *name;
    ug_client_reason reason;
    bool hint; /* decodes as a HINT datagram at all */
    bool authentic;
} rejected[] = {
    {"hint for another nonce", UG_CLIENT_R_NONCE, true, false},
    {"hint for another uid", UG_CLIENT_R_UID, true, false},
    {"hint expired", UG_CLIENT_R_EXPIRED, true, true},
    {"mirror out of range", UG_CLIENT_R_MIRROR, true, true},
    {"hint signed by an unpinned key", UG_CLIENT_R_KEY, true, false},
    {"manifest signed by the hint key", UG_CLIENT_R_KEY, true, true},
    {"manifest expired", UG_CLIENT_R_EXPIRED, true, true},
    {"rollback to 1.4.2", UG_CLIENT_R_ROLLBACK, true, true},
    {"rollback to 1.4", UG_CLIENT_R_ROLLBACK, true, true},
    {"rollback to 1.3.9", UG_CLIENT_R_ROLLBACK, true, true},
    {"hint signature under the HELLO context", UG_CLIENT_R_SIG, true, false},
    {"hint with sig nil", UG_CLIENT_R_HEADER, false, false}, /* not even a signed datagram */
    {"hint signature with S + L (non-canonical)", UG_CLIENT_R_SIG, true, false},
    {"manifest signature with S + L (non-canonical)", UG_CLIENT_R_SIG, true, true},
};

Test(client, every_rejected_vector_is_ignored_for_its_reason)
{
    json_t *j = tu_vectors("peer.json");
    ug_client *c = vector_client(j, 0);
    uint8_t hello[UG_CLIENT_DGRAM_MAX];
    size_t len;
    cr_assert_eq(ug_client_hello(c, hello, sizeof hello, &len), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    cr_assert_eq(len, UG_CLIENT_DGRAM_MAX, "default HELLO is %zu bytes", len);
    ug_hello h;
    check_hello(hello, len, &h);
    uint8_t want_nonce[16];
    tu_unhex(jstr(j, "nonce"), want_nonce, sizeof want_nonce);
    cr_assert_arr_eq(h.nonce, want_nonce, 16, "the injected nonce");

    json_t *v;
    size_t i, seen = 0;
    json_array_foreach(json_object_get(j, "vectors"), i, v) {
        if (strcmp(jstr(v, "expect"), "reject") != 0)
            continue;
        const char *name = jstr(v, "name");
        size_t k = 0;
        while (k < sizeof rejected / sizeof rejected[0] && strcmp(rejected[k].name, name) != 0)
            k++;
        cr_assert_lt(k, sizeof rejected / sizeof rejected[0], "no expectation for vector '%s'", name);
        const ug_client_event *ev = feed_hex(c, jstr(v, "hex"));
        cr_expect_eq(ev->type, UG_CLIENT_EV_IGNORED, "'%s' was not ignored", name);
        cr_expect_eq(ev->reason, rejected[k].reason, "'%s': reason %s", name, ev->reason_name);
        cr_expect_eq(ev->hint, rejected[k].hint, "'%s': hint", name);
        cr_expect_eq(ev->authentic, rejected[k].authentic, "'%s': authentic", name);
        cr_expect(!ev->done && !ev->send_now, "'%s' ended the exchange", name);
        seen++;
    }
    cr_assert_eq(seen, sizeof rejected / sizeof rejected[0]);

    /* forged HINTs never end the exchange: the real one still counts, then nothing more does */
    json_t *valid = json_array_get(json_object_get(j, "vectors"), 0);
    cr_assert_str_eq(jstr(valid, "expect"), "accept");
    cr_assert_eq(feed_hex(c, jstr(valid, "hex"))->type, UG_CLIENT_EV_OFFER);
    const ug_client_event *again = feed_hex(c, jstr(valid, "hex"));
    cr_assert_eq(again->type, UG_CLIENT_EV_IGNORED, "a repeated answer is stray");
    cr_assert_eq(again->reason, UG_CLIENT_R_NONCE);
    ug_client_free(c);
    json_decref(j);
}

Test(client, the_valid_vector_is_an_offer_with_its_fields)
{
    json_t *j = tu_vectors("peer.json");
    ug_client *c = vector_client(j, 0);
    uint8_t hello[UG_CLIENT_DGRAM_MAX];
    size_t len;
    cr_assert_eq(ug_client_hello(c, hello, sizeof hello, &len), UG_CLIENT_OK);
    json_t *v = json_array_get(json_object_get(j, "vectors"), 0);
    json_t *f = json_object_get(v, "fields");
    const ug_client_event *ev = feed_hex(c, jstr(v, "hex"));
    cr_assert_eq(ev->type, UG_CLIENT_EV_OFFER, "ignored: %s", ev->reason_name);
    cr_assert(ev->done);
    const ug_client_offer *o = &ev->offer;
    cr_assert_str_eq(o->to, jstr(f, "to"));
    cr_assert_eq(o->size, jint(f, "size"));
    uint8_t hash[32];
    tu_unhex(jstr(f, "hash"), hash, sizeof hash);
    cr_assert_arr_eq(o->hash, hash, 32);
    json_t *urls = json_object_get(f, "urls");
    cr_assert_eq(o->nurls, json_array_size(urls));
    /* try order: the hinted mirror, then the rest as listed */
    uint64_t mirror = jint(f, "mirror");
    cr_assert_str_eq(o->urls[0], json_string_value(json_array_get(urls, mirror)));
    cr_assert_str_eq(o->urls[0], jstr(f, "url"));
    cr_assert_str_eq(o->urls[1], json_string_value(json_array_get(urls, 0)));
    uint64_t exp = jint(f, "exp"), mexp = jint(f, "manifest_exp");
    cr_assert_eq(o->exp, exp < mexp ? exp : mexp);
    cr_assert_eq(o->tracker_ts, jint(f, "ts"));
    cr_assert_eq(ev->tracker_ts, jint(f, "ts"));

    /* the same HINT after its exp is ignored as expired */
    ug_client_hello_reset(c);
    g_draws = 0; /* the next HELLO gets the vectors' nonce again */
    g_now = exp;
    cr_assert_eq(ug_client_hello(c, hello, sizeof hello, &len), UG_CLIENT_OK);
    ev = feed_hex(c, jstr(v, "hex"));
    cr_assert_eq(ev->type, UG_CLIENT_EV_IGNORED);
    cr_assert_eq(ev->reason, UG_CLIENT_R_EXPIRED);
    ug_client_free(c);
    json_decref(j);
}

Test(client, unsigned_vectors_are_wait_and_cookie)
{
    json_t *j = tu_vectors("peer.json");
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(j, "unsigned_replies"), i, v) {
        g_draws = 0;
        ug_client *c = vector_client(j, 0);
        uint8_t first[UG_CLIENT_DGRAM_MAX], second[UG_CLIENT_DGRAM_MAX];
        size_t len1, len2;
        cr_assert_eq(ug_client_hello(c, first, sizeof first, &len1), UG_CLIENT_OK);
        const ug_client_event *ev = feed_hex(c, jstr(v, "hex"));
        json_t *f = json_object_get(v, "fields");
        if (strcmp(jstr(v, "name"), "wait") == 0) {
            cr_assert_eq(ev->type, UG_CLIENT_EV_WAIT);
            cr_assert(ev->done && !ev->send_now);
            cr_assert_eq(ev->why, jint(f, "why"));
            cr_assert_eq(ev->retry, jint(f, "retry")); /* 3600 is within the clamp */
            cr_assert_eq(ev->tracker_ts, jint(f, "ts"));
            cr_assert_eq(ev->hello_ts, VEC_NOW);
        } else {
            cr_assert_eq(ev->type, UG_CLIENT_EV_COOKIE);
            cr_assert(ev->send_now && !ev->done);
            /* the next HELLO: new nonce, the cookie echoed, signed again */
            cr_assert_eq(ug_client_hello(c, second, sizeof second, &len2), UG_CLIENT_OK);
            ug_hello h1, h2;
            check_hello(first, len1, &h1);
            check_hello(second, len2, &h2);
            cr_assert(!h1.has_cookie);
            cr_assert(h2.has_cookie);
            uint8_t cookie[16];
            tu_unhex(jstr(f, "cookie"), cookie, sizeof cookie);
            cr_assert_arr_eq(h2.cookie, cookie, 16);
            cr_assert_arr_neq(h1.nonce, h2.nonce, 16);
            cr_assert_eq(len2, UG_CLIENT_DGRAM_MAX);
            /* the old nonce's answers are stray now */
            ev = feed_hex(c, jstr(v, "hex"));
            cr_assert_eq(ev->type, UG_CLIENT_EV_IGNORED);
            cr_assert_eq(ev->reason, UG_CLIENT_R_NONCE);
        }
        ug_client_free(c);
    }
    json_decref(j);
}

/* ---- WAITs, built here ---------------------------------------------- */

/* The WAIT the tracker would send to the outstanding HELLO (nonce of draw 0). */
static size_t make_wait(uint8_t *out, uint64_t why, uint64_t retry, unsigned draw)
{
    ug_wait w = {.why = why, .retry = retry, .ts = g_now};
    nth_draw(draw, w.nonce, sizeof w.nonce);
    size_t len;
    cr_assert_eq(ug_wait_write(out, UG_DGRAM_MAX, &len, &w), 0);
    return len;
}

static ug_client *plain_client(size_t hello_size)
{
    json_t *j = tu_vectors("peer.json");
    ug_client *c = vector_client(j, hello_size);
    json_decref(j);
    return c;
}

Test(client, wait_retry_is_clamped)
{
    static const struct {
        uint64_t why, retry, want;
    } cases[] = {
        {1, 0, 60},     {1, 5, 60},       {2, 59, 60},          {2, 60, 60},    {4, 61, 61},
        {5, 86400, 86400}, {1, 86401, 86400}, {4, UINT64_MAX, 86400}, {9, 300, 300}, {3, 7200, 7200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        g_draws = 0;
        ug_client *c = plain_client(0);
        uint8_t buf[UG_CLIENT_DGRAM_MAX];
        size_t len;
        cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_OK);
        len = make_wait(buf, cases[i].why, cases[i].retry, 0);
        const ug_client_event *ev = feed(c, buf, len);
        cr_assert_eq(ev->type, UG_CLIENT_EV_WAIT, "case %zu", i);
        cr_assert(ev->done);
        cr_assert_eq(ev->why, cases[i].why);
        cr_assert_eq(ev->retry, cases[i].want, "retry %llu gave %llu", (unsigned long long)cases[i].retry,
                     (unsigned long long)ev->retry);
        ug_client_free(c);
    }
}

Test(client, wait_too_small_repads_to_1232_once)
{
    ug_client *c = plain_client(512);
    uint8_t buf[UG_CLIENT_DGRAM_MAX], w[UG_CLIENT_DGRAM_MAX];
    size_t len, wlen;
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_OK);
    cr_assert_eq(len, 512);
    wlen = make_wait(w, 6, 0, 0);
    const ug_client_event *ev = feed(c, w, wlen);
    cr_assert_eq(ev->type, UG_CLIENT_EV_WAIT);
    cr_assert(ev->send_now && !ev->done);
    cr_assert_eq(ev->why, 6);
    cr_assert_eq(ev->retry, 0, "the same HELLO again at once");
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_OK);
    cr_assert_eq(len, UG_CLIENT_DGRAM_MAX);
    ug_hello h;
    check_hello(buf, len, &h);
    uint8_t second[16];
    nth_draw(1, second, sizeof second);
    cr_assert_arr_eq(h.nonce, second, 16, "a new HELLO has a new nonce");
    /* too small even at 1232: nothing more to pad, the exchange is over */
    wlen = make_wait(w, 6, 0, 1);
    ev = feed(c, w, wlen);
    cr_assert_eq(ev->type, UG_CLIENT_EV_WAIT);
    cr_assert(ev->done && !ev->send_now);
    cr_assert_eq(ev->retry, 60);
    ug_client_free(c);
}

Test(client, retransmits_are_the_same_bytes)
{
    ug_client *c = plain_client(0);
    uint8_t a[UG_CLIENT_DGRAM_MAX], b[UG_CLIENT_DGRAM_MAX], junk[] = {0x95, 0xa2, 'U', 'G', 0x01, 0x03, 0xc0};
    size_t la, lb;
    cr_assert_eq(ug_client_hello(c, a, sizeof a, &la), UG_CLIENT_OK);
    g_now += 5; /* the clock moves; a retransmit does not */
    cr_assert_eq(ug_client_hello(c, b, sizeof b, &lb), UG_CLIENT_OK);
    cr_assert_eq(la, lb);
    cr_assert_arr_eq(a, b, la);
    /* ignored datagrams change nothing */
    cr_assert_eq(feed(c, junk, sizeof junk)->type, UG_CLIENT_EV_IGNORED);
    uint8_t w[UG_CLIENT_DGRAM_MAX];
    size_t wl = make_wait(w, 1, 600, 7); /* another nonce */
    const ug_client_event *ev = feed(c, w, wl);
    cr_assert_eq(ev->type, UG_CLIENT_EV_IGNORED);
    cr_assert_eq(ev->reason, UG_CLIENT_R_NONCE);
    cr_assert(!ev->hint);
    cr_assert_eq(ug_client_hello(c, b, sizeof b, &lb), UG_CLIENT_OK);
    cr_assert_arr_eq(a, b, la);
    /* a small buffer is refused, not overrun */
    cr_assert_eq(ug_client_hello(c, b, la - 1, &lb), UG_CLIENT_E_BUFFER);
    /* reset: a new HELLO, new nonce and clock */
    ug_client_hello_reset(c);
    cr_assert_eq(ug_client_hello(c, b, sizeof b, &lb), UG_CLIENT_OK);
    ug_hello ha, hb;
    check_hello(a, la, &ha);
    check_hello(b, lb, &hb);
    cr_assert_arr_neq(ha.nonce, hb.nonce, 16);
    cr_assert_eq(hb.ts, ha.ts + 5);
    ug_client_free(c);
}

Test(client, malformed_and_stray_datagrams_are_ignored)
{
    ug_client *c = plain_client(0);
    uint8_t buf[UG_CLIENT_DGRAM_MAX + 8];
    size_t len;
    /* nothing asked yet: even a well-formed WAIT is stray */
    len = make_wait(buf, 1, 100, 0);
    const ug_client_event *ev = feed(c, buf, len);
    cr_assert_eq(ev->type, UG_CLIENT_EV_IGNORED);
    cr_assert_eq(ev->reason, UG_CLIENT_R_NONCE);
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_OK);
    /* our own HELLO echoed back is not a reply */
    ev = feed(c, buf, len);
    cr_assert_eq(ev->type, UG_CLIENT_EV_IGNORED);
    cr_assert_eq(ev->reason, UG_CLIENT_R_HEADER);
    cr_assert_str_eq(ev->reason_name, "header");
    cr_assert_eq(feed(c, buf, 0)->reason, UG_CLIENT_R_SIZE);
    memset(buf, 0, sizeof buf);
    cr_assert_eq(feed(c, buf, UG_CLIENT_DGRAM_MAX + 1)->reason, UG_CLIENT_R_SIZE);
    cr_assert_eq(feed(c, (const uint8_t *)"hello", 5)->type, UG_CLIENT_EV_IGNORED);
    /* a WAIT whose body is not a WAIT */
    static const uint8_t bad_wait[] = {0x95, 0xa2, 'U', 'G', 0x01, 0x03, 0xc4, 0x01, 0x80, 0xc0};
    ev = feed(c, bad_wait, sizeof bad_wait);
    cr_assert_eq(ev->type, UG_CLIENT_EV_IGNORED);
    cr_assert_eq(ev->reason, UG_CLIENT_R_SCHEMA, "%s", ev->reason_name);
    /* and the real answer still counts */
    len = make_wait(buf, 2, 600, 0);
    cr_assert_eq(feed(c, buf, len)->type, UG_CLIENT_EV_WAIT);
    const ug_client_event *none = NULL;
    cr_assert_eq(ug_client_receive(c, NULL, 3, &none), UG_CLIENT_E_INVALID);
    cr_assert_eq(ug_client_receive(NULL, buf, len, &none), UG_CLIENT_E_INVALID);
    ug_client_free(c);
}

/* ---- setup errors --------------------------------------------------- */

Test(client, config_errors_name_the_field)
{
    static const struct {
        uint64_t uid;
        const char *version, *plat, *chan;
        size_t hello_size, report_size;
        const char *names;
    } cases[] = {
        {0, "1.0", NULL, NULL, 1232, 512, "uid"},
        {UINT64_C(1) << 63, "1.0", NULL, NULL, 1232, 512, "uid"},
        {1, NULL, NULL, NULL, 1232, 512, "version"},
        {1, "1.02", NULL, NULL, 1232, 512, "version"},
        {1, "1.2.3.4.5", NULL, NULL, 1232, 512, "version"},
        {1, "1.0", "linux\n", NULL, 1232, 512, "plat"},
        {1, "1.0", NULL, "", 1232, 512, "chan"},
        {1, "1.0", NULL, "01234567890123456", 1232, 512, "chan"},
        {1, "1.0", NULL, NULL, 511, 512, "hello_size"},
        {1, "1.0", NULL, NULL, 1233, 512, "hello_size"},
        {1, "1.0", NULL, NULL, 1232, 2000, "report_size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ug_client_config cfg;
        ug_client_config_init(&cfg);
        cfg.uid = cases[i].uid;
        cfg.version = cases[i].version;
        cfg.plat = cases[i].plat;
        cfg.chan = cases[i].chan;
        cfg.hello_size = cases[i].hello_size;
        cfg.report_size = cases[i].report_size;
        ug_client *c = (ug_client *)&cfg; /* must be cleared */
        const char *msg = NULL;
        cr_assert_eq(ug_client_new(&cfg, &c, &msg), UG_CLIENT_E_INVALID, "case %zu", i);
        cr_assert_null(c);
        cr_assert_not_null(strstr(msg, cases[i].names), "case %zu: '%s' should name %s", i, msg, cases[i].names);
    }
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = 1;
    cfg.version = "1";
    cfg.size = 8; /* not made by ug_client_config_init */
    ug_client *c;
    cr_assert_eq(ug_client_new(&cfg, &c, NULL), UG_CLIENT_E_INVALID);
    cr_assert_str_neq(ug_client_strerror(UG_CLIENT_E_MISMATCH), "unknown error");
    cr_assert_str_eq(ug_client_strerror((ug_client_err)999), "unknown error");
    /* the names the tracker's status and metrics use, one per wire value */
    static const char *const why[] = {"not_targeted", "not_selected", "quota", "clock", "paused", "rate", "too_small"};
    for (unsigned i = 0; i < sizeof why / sizeof why[0]; i++)
        cr_assert_str_eq(ug_client_why_name(i), why[i], "why=%u", i);
    cr_assert_str_eq(ug_client_why_name(7), "unknown", "a reason of a newer tracker");
    cr_assert_str_eq(ug_client_why_name(~0u), "unknown");
    cr_assert_str_eq(ug_client_version(), UG_CLIENT_VERSION);
}

Test(client, keys_and_credential_are_checked)
{
    const char *dir = tu_tmpdir();
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = VEC_UID;
    cfg.version = "1.4.2";
    ug_client *c;
    cr_assert_eq(ug_client_new(&cfg, &c, NULL), UG_CLIENT_OK);
    uint8_t buf[UG_CLIENT_DGRAM_MAX];
    size_t len;
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_E_NOKEY);
    cr_assert_not_null(strstr(ug_client_errmsg(c), "key"));
    cr_assert_eq(ug_client_report(c, UG_CLIENT_RES_DECLINED, "2.0", buf, sizeof buf, &len), UG_CLIENT_E_NOKEY);

    /* files: a missing key, a public key file as the secret, garbage as the credential */
    char path[256], why[128];
    snprintf(path, sizeof path, "%s/none.key", dir);
    cr_assert_eq(ug_client_load_key(c, path), UG_CLIENT_E_FORMAT);
    cr_assert_not_null(strstr(ug_client_errmsg(c), "none.key"), "%s", ug_client_errmsg(c));
    snprintf(path, sizeof path, "%s/client.pub", dir);
    cr_assert_eq(ug_key_write(path, false, W.client_pk, W.client_pk, why, sizeof why), 0, "%s", why);
    cr_assert_eq(ug_client_load_key(c, path), UG_CLIENT_E_FORMAT);
    cr_assert_eq(ug_client_load_cred(c, path), UG_CLIENT_E_FORMAT, "a public key is not a credential");
    cr_assert_not_null(strstr(ug_client_errmsg(c), "client.pub"));
    cr_assert_eq(ug_client_add_hint_key_file(c, path), UG_CLIENT_OK);
    snprintf(path, sizeof path, "%s/client.key", dir);
    cr_assert_eq(ug_key_write(path, true, W.seed, W.client_pk, why, sizeof why), 0, "%s", why);
    cr_assert_eq(ug_client_add_release_key_file(c, path), UG_CLIENT_E_FORMAT, "a secret key is not a pin");
    cr_assert_eq(ug_client_load_key(c, path), UG_CLIENT_OK, "%s", ug_client_errmsg(c));

    /* a credential for someone else, or for another key, is refused and the good one stays */
    make_cred(VEC_UID + 1, W.client_pk, VEC_NOW + 86400);
    cr_assert_eq(ug_client_set_cred(c, W.cred, W.cred_len), UG_CLIENT_E_CRED);
    cr_assert_not_null(strstr(ug_client_errmsg(c), "uid"));
    uint8_t other[32];
    randombytes_buf(other, sizeof other);
    make_cred(VEC_UID, other, VEC_NOW + 86400);
    cr_assert_eq(ug_client_set_cred(c, W.cred, W.cred_len), UG_CLIENT_E_CRED);
    cr_assert_eq(ug_client_cred_expiry(c), 0);
    make_cred(VEC_UID, W.client_pk, 12345);
    char text[1024];
    sodium_bin2base64(text, sizeof text, W.cred, W.cred_len, sodium_base64_VARIANT_ORIGINAL);
    strcat(text, "\n");
    snprintf(path, sizeof path, "%s/client.cred", dir);
    tu_write_file(path, text, strlen(text));
    cr_assert_eq(ug_client_load_cred(c, path), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    cr_assert_eq(ug_client_cred_expiry(c), 12345);
    /* a key that the credential does not name */
    uint8_t seed2[32];
    randombytes_buf(seed2, sizeof seed2);
    cr_assert_eq(ug_client_set_key(c, seed2), UG_CLIENT_E_CRED);
    cr_assert_eq(ug_client_set_key(c, W.seed), UG_CLIENT_OK);

    /* at most 8 pins of each kind */
    for (unsigned i = 1; i < UG_CLIENT_PINS_MAX; i++)
        cr_assert_eq(ug_client_add_hint_key(c, other), UG_CLIENT_OK);
    cr_assert_eq(ug_client_add_hint_key(c, other), UG_CLIENT_E_INVALID);
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_E_NOKEY, "no release key pinned yet");
    cr_assert_eq(ug_client_add_release_key(c, other), UG_CLIENT_OK);
    cr_assert_eq(ug_client_hello(c, buf, sizeof buf, &len), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    ug_client_free(c);
    ug_client_free(NULL);
}

Test(client, versions)
{
    int cmp = 9;
    cr_assert(ug_client_version_valid("1.4.2"));
    cr_assert(!ug_client_version_valid("1.04"));
    cr_assert(!ug_client_version_valid(""));
    cr_assert(!ug_client_version_valid(NULL));
    cr_assert(!ug_client_version_valid("1.2.3.4.5"));
    cr_assert_eq(ug_client_version_compare("1.4", "1.4.0", &cmp), UG_CLIENT_OK);
    cr_assert_eq(cmp, 0);
    cr_assert_eq(ug_client_version_compare("1.10", "1.9", &cmp), UG_CLIENT_OK);
    cr_assert_eq(cmp, 1);
    cr_assert_eq(ug_client_version_compare("0.9", "1", &cmp), UG_CLIENT_OK);
    cr_assert_eq(cmp, -1);
    cr_assert_eq(ug_client_version_compare("x", "1", &cmp), UG_CLIENT_E_INVALID);
}

/* ---- REPORT --------------------------------------------------------- */

static void check_report(const uint8_t *buf, size_t len, ug_client_res res, const char *ver, const char *to,
                         ug_report *r)
{
    ug_dgram d;
    ug_err err = UG_OK;
    cr_assert_eq(ug_report_parse(r, &d, buf, len, &err), 0, "%s", ug_err_name(err));
    cr_assert_eq(ug_report_verify(r, &d, &W.issuer, 1, g_now, &err), 0, "%s", ug_err_name(err));
    cr_assert_eq((int)r->res, (int)res);
    cr_assert_eq(r->uid, VEC_UID);
    cr_assert_eq(r->ts, g_now);
    ug_version v;
    cr_assert_eq(ug_version_parse(&v, ver, strlen(ver)), 0);
    cr_assert_eq(ug_version_cmp(&r->ver, &v), 0);
    cr_assert_eq(ug_version_parse(&v, to, strlen(to)), 0);
    cr_assert_eq(ug_version_cmp(&r->to, &v), 0);
}

Test(client, reports_are_signed_and_padded)
{
    ug_client *c = plain_client(0);
    uint8_t buf[UG_CLIENT_DGRAM_MAX];
    size_t len;
    uint8_t nonces[6][16];
    for (int res = UG_CLIENT_RES_INSTALLED; res <= UG_CLIENT_RES_INSTALL_FAILED; res++) {
        cr_assert_eq(ug_client_report(c, (ug_client_res)res, "2.0.0", buf, sizeof buf, &len), UG_CLIENT_OK, "%s",
                     ug_client_errmsg(c));
        cr_assert_eq(len, 512, "padded to 512 by default, got %zu", len);
        ug_report r;
        check_report(buf, len, (ug_client_res)res, "1.4.2", "2.0.0", &r);
        memcpy(nonces[res], r.nonce, 16);
        for (int k = 0; k < res; k++)
            cr_assert_arr_neq(nonces[k], nonces[res], 16, "a fresh nonce per REPORT");
    }
    /* a rolled-back report is about a newer version than ours */
    cr_assert_eq(ug_client_report(c, UG_CLIENT_RES_ROLLED_BACK, "1.4.2", buf, sizeof buf, &len), UG_CLIENT_E_INVALID);
    cr_assert_eq(ug_client_report(c, UG_CLIENT_RES_ROLLED_BACK, "2.0", buf, sizeof buf, &len), UG_CLIENT_OK);
    ug_report r;
    check_report(buf, len, UG_CLIENT_RES_ROLLED_BACK, "1.4.2", "2.0", &r);
    cr_assert_eq(ug_client_report(c, (ug_client_res)6, "2.0", buf, sizeof buf, &len), UG_CLIENT_E_INVALID);
    cr_assert_eq(ug_client_report(c, UG_CLIENT_RES_DECLINED, "2.x", buf, sizeof buf, &len), UG_CLIENT_E_INVALID);
    cr_assert_eq(ug_client_report(c, UG_CLIENT_RES_DECLINED, "2.0", buf, 100, &len), UG_CLIENT_E_BUFFER);
    ug_client_free(c);

    /* report_size 0: no padding */
    json_t *j = tu_vectors("peer.json");
    ug_client_config cfg;
    ug_client_config_init(&cfg);
    cfg.uid = VEC_UID;
    cfg.version = "1.4.2";
    cfg.report_size = 0;
    cfg.now = fake_now;
    cr_assert_eq(ug_client_new(&cfg, &c, NULL), UG_CLIENT_OK);
    cr_assert_eq(ug_client_set_key(c, W.seed), UG_CLIENT_OK);
    make_cred(VEC_UID, W.client_pk, VEC_NOW + 86400);
    cr_assert_eq(ug_client_set_cred(c, W.cred, W.cred_len), UG_CLIENT_OK);
    cr_assert_eq(ug_client_report(c, UG_CLIENT_RES_INSTALLED, "2.0", buf, sizeof buf, &len), UG_CLIENT_OK);
    cr_assert_lt(len, 512);
    check_report(buf, len, UG_CLIENT_RES_INSTALLED, "1.4.2", "2.0", &r);
    cr_assert_eq(r.pad_len, 0);
    ug_client_free(c);
    json_decref(j);

    cr_assert_eq(ug_client_res_of(UG_CLIENT_OK), UG_CLIENT_RES_INSTALLED);
    cr_assert_eq(ug_client_res_of(UG_CLIENT_E_MISMATCH), UG_CLIENT_RES_MISMATCH);
    cr_assert_eq(ug_client_res_of(UG_CLIENT_E_IO), UG_CLIENT_RES_INSTALL_FAILED);
    cr_assert_eq(ug_client_res_of(UG_CLIENT_E_DEADLINE), UG_CLIENT_RES_DOWNLOAD_FAILED);
    cr_assert_eq(ug_client_res_of(UG_CLIENT_E_DOWNLOAD), UG_CLIENT_RES_DOWNLOAD_FAILED);
}

/* ---- the state file ------------------------------------------------- */

Test(client, state_file_round_trip_and_rollback)
{
    const char *dir = tu_tmpdir();
    char path[256], ver[40];
    snprintf(path, sizeof path, "%s/state", dir);
    ug_client *c = plain_client(0); /* runs 1.4.2 */
    bool rb = true;
    cr_assert_eq(ug_client_state_load(c, path, ver, sizeof ver), UG_CLIENT_E_NOTFOUND);
    cr_assert_eq(ug_client_state_check(c, path, &rb, ver, sizeof ver), UG_CLIENT_OK);
    cr_assert(!rb, "no state: nothing installed");
    cr_assert_eq(ug_client_state_save(c, path, "2.0.0"), UG_CLIENT_OK, "%s", ug_client_errmsg(c));
    uint8_t text[64];
    size_t len;
    char why[64];
    cr_assert_eq(ug_file_read(path, text, sizeof text, &len, why, sizeof why), 0);
    cr_assert_eq(len, 14);
    cr_assert_arr_eq(text, "version=2.0.0\n", 14);
    cr_assert_eq(ug_client_state_load(c, path, ver, sizeof ver), UG_CLIENT_OK);
    cr_assert_str_eq(ver, "2.0.0");
    cr_assert_eq(ug_client_state_check(c, path, &rb, ver, sizeof ver), UG_CLIENT_OK);
    cr_assert(rb, "running 1.4.2 below the installed 2.0.0");
    cr_assert_str_eq(ver, "2.0.0");
    cr_assert_eq(ug_client_state_save(c, path, "1.4.2.0"), UG_CLIENT_OK);
    cr_assert_eq(ug_client_state_check(c, path, &rb, ver, sizeof ver), UG_CLIENT_OK);
    cr_assert(!rb, "1.4.2 is 1.4.2.0");
    cr_assert_eq(ug_client_state_save(c, path, "1.0"), UG_CLIENT_OK);
    cr_assert_eq(ug_client_state_check(c, path, &rb, ver, sizeof ver), UG_CLIENT_OK);
    cr_assert(!rb);
    cr_assert_eq(ug_client_state_save(c, path, "1.x"), UG_CLIENT_E_INVALID);
    cr_assert_eq(ug_client_state_load(c, path, ver, 3), UG_CLIENT_E_FORMAT, "too small a buffer is refused");

    static const char *const bad[] = {
        "", "version=2.0.0", "version=2.0.0\n\n", "version=02.0\n", "Version=1\n", "version=1.2.3.4.5\n",
        " version=1\n", "version=1\r\n", "version=\n", "version=1\nversion=2\n", "version=1 \n",
        "version=1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0\n", "# state\nversion=1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(path);
        tu_write_file(path, bad[i], strlen(bad[i]));
        cr_assert_eq(ug_client_state_load(c, path, ver, sizeof ver), UG_CLIENT_E_FORMAT, "accepted \"%s\"", bad[i]);
        cr_assert_not_null(strstr(ug_client_errmsg(c), path));
        cr_assert_eq(ug_client_state_check(c, path, &rb, ver, sizeof ver), UG_CLIENT_E_FORMAT);
    }
    /* a folder is not a state file */
    snprintf(path, sizeof path, "%s", dir);
    cr_assert_eq(ug_client_state_load(c, path, ver, sizeof ver), UG_CLIENT_E_IO);
    /* no temp files are left behind */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", dir);
    char out[64];
    tu_run(cmd, out, sizeof out);
    cr_assert_eq(atoi(out), 0, "temp files left: %s", out);
    ug_client_free(c);
}

/* ---- the built library ---------------------------------------------- */

static void run_ok(const char *cmd, char *out, size_t cap)
{
    int rc = tu_run(cmd, out, cap);
    cr_assert_eq(rc, 0, "%s: exit %d: %s", cmd, rc, out);
}

Test(client, shared_library_exports_only_ug_client)
{
    static char out[65536];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libupgate.so.%s", tu_build_dir(), UG_CLIENT_VERSION);
    run_ok(cmd, out, sizeof out);
    unsigned n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char addr[32], type[4], name[256];
        cr_assert_eq(sscanf(line, "%31s %3s %255s", addr, type, name), 3, "%s", line);
        if (strcmp(type, "A") == 0 && (strcmp(name, "LIBUPGATE_1") == 0 || strcmp(name, "LIBUPGATE_1.1") == 0 ||
                                       strcmp(name, "LIBUPGATE_1.2") == 0))
            continue; /* the version nodes: 1.0's symbols, 1.1's (protocol version 2), 1.2's (deltas) */
        cr_assert_eq(strncmp(name, "ug_client_", 10), 0, "libupgate.so exports %s", name);
        cr_assert_not_null(strstr(name, "@@LIBUPGATE_1"), "%s is not versioned", name);
        n++;
    }
    cr_assert_geq(n, 30, "only %u symbols exported", n);

    snprintf(cmd, sizeof cmd, "readelf -d %s/libupgate.so | grep SONAME", tu_build_dir());
    run_ok(cmd, out, sizeof out);
    cr_assert_not_null(strstr(out, "[libupgate.so.1]"), "%s", out);
    char link[256], target[64];
    snprintf(link, sizeof link, "%s/libupgate.so.1", tu_build_dir());
    ssize_t tl = readlink(link, target, sizeof target - 1);
    cr_assert_gt(tl, 0, "%s is not a symlink", link);
    target[tl] = 0;
    cr_assert_str_eq(target, "libupgate.so." UG_CLIENT_VERSION);
    /* libupgate 1.0's symbols keep their version node: an application built on 1.0 still links */
    static const char *const v10[] = {"ug_client_new", "ug_client_hello", "ug_client_receive", "ug_client_download",
                                      "ug_client_state_check", NULL};
    for (int i = 0; v10[i]; i++) {
        snprintf(cmd, sizeof cmd, "nm -D --defined-only %s/libupgate.so | grep -c ' %s@@LIBUPGATE_1$'",
                 tu_build_dir(), v10[i]);
        run_ok(cmd, out, sizeof out);
        cr_assert_eq(atoi(out), 1, "%s is not in LIBUPGATE_1", v10[i]);
    }
}

Test(client, static_library_hides_proto)
{
    static char out[262144];
    char cmd[1024];
    /* every global symbol the archive defines is the API's */
    snprintf(cmd, sizeof cmd, "nm -g --defined-only %s/libupgate.a | awk 'NF == 3 { print $3 }'", tu_build_dir());
    run_ok(cmd, out, sizeof out);
    unsigned n = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "__odr_asan", 10) == 0 || strncmp(line, "__asan", 6) == 0)
            continue; /* the sanitizer's own, in SAN=1 builds */
        cr_assert_eq(strncmp(line, "ug_client_", 10), 0, "libupgate.a exports %s", line);
        n++;
    }
    cr_assert_geq(n, 30);
}

Test(client, pkg_config_file)
{
    char cmd[1024], out[1024];
    snprintf(cmd, sizeof cmd, "PKG_CONFIG_PATH=%s pkg-config --cflags --libs upgate", tu_build_dir());
    run_ok(cmd, out, sizeof out);
    cr_assert_not_null(strstr(out, "-lupgate"), "%s", out);
    cr_assert_not_null(strstr(out, "/include"), "%s", out);
    cr_assert_not_null(strstr(out, "-lcurl"), "libcurl is a public dependency: %s", out);
    snprintf(cmd, sizeof cmd, "PKG_CONFIG_PATH=%s pkg-config --libs --static upgate", tu_build_dir());
    run_ok(cmd, out, sizeof out);
    cr_assert_not_null(strstr(out, "-lsodium"), "%s", out);
    snprintf(cmd, sizeof cmd, "PKG_CONFIG_PATH=%s pkg-config --modversion upgate", tu_build_dir());
    run_ok(cmd, out, sizeof out);
    cr_assert_eq(strncmp(out, UG_CLIENT_VERSION, strlen(UG_CLIENT_VERSION)), 0, "%s", out);
}
