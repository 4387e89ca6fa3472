/* libFuzzer harness: the plugin's whole datagram path through its ABI (handle, flush, tick, stats, reload). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "policy/policy.h"
#include "upgate_plugin.h"

/* Linked in statically (the plugin sources are compiled into this binary), so the
 * plugin's code is instrumented; the host sees it only through the ABI. */
extern const ug_plugin upgate_plugin;
static const ug_plugin *const api = &upgate_plugin;

/*
 * Input layout: two header bytes, then a payload.
 *   h0 bits 0-2  source address (make_src() below)
 *      bit  3    worker 0 or 1
 *      bits 4-5  mode: 0 payload is a datagram; 1 payload is a HELLO body the
 *                harness signs with the vectors' client key; 2 payload is a
 *                field recipe the harness turns into a signed HELLO (so the
 *                policy path sees valid signatures); 3 datagram sent twice
 *                (rule 8: a retransmit gets the same answer, spends nothing;
 *                in the guarded instance the copy reaches the other worker)
 *      bit  6    instance: 0 "open" (cookie: never, no source budget; WAIT
 *                may come before the signatures, protocol rule 4), 1
 *                "guarded" (cookie: always, source budget, a shard,
 *                verify: always; its host says peers roam between workers,
 *                UG_HF_ROAMING_PEERS: one retransmit cache for both)
 *      bit  7    call tick() and stats() afterwards
 *   h1 bits 0-1  host clock: the vectors' now plus 0..3 s
 *      0xa4..a7  reload() the policy first
 */

#define RETRY 600u
#define WINDOW 300u
#define TTL 3600u
#define OUT_CAP UG_DGRAM_MAX /* the least the ABI lets a host give */

static const char policy_open[] =
    "keys: {hint: hint.key, issuers: [issuer.pub]}\n"
    "release: release.manifest\n"
    "state: state\n"
    "targets: [\"1.4.2\", \"0.9\", \"1.4.1\", \"<1.3\", \"<=0.5\"]\n"
    "clock_window: 300\n"
    "hint_ttl: 3600\n"
    "retry: 600\n"
    "cookie: never\n"
    "source_budget: 0\n"
    "stages:\n"
    "  - {name: lan, networks: [10.0.0.0/8, \"fd00::/8\"], uid_mod: {div: 3, rem: 1}, quota: 20}\n"
    "  - {name: short-ids, uid_digits_max: 4, plat: [linux-x86_64, windows-x86_64], chan: [stable], quota: 50}\n"
    "  - {name: canary, uids: [77, 4242], uids_file: uids.txt, quota: 3}\n"
    "  - {name: open-beta, chan: [beta]}\n"
    "  - {name: pct, percent: 25, rate: 5, start: 2026-01-01T00:00:00Z, end: 2027-01-01T00:00:00Z, quota: 1000}\n"
    "  - {name: big, uid_mod: {div: 7, rem: 3}, quota: 100000}\n";

static const char policy_guarded[] =
    "keys: {hint: hint.key, issuers: [issuer.pub, stranger.pub]}\n"
    "release: release.manifest\n"
    "state: state\n"
    "targets: [\"1.4.2\", \"0.9\", \"<1.3\"]\n"
    "clock_window: 300\n"
    "hint_ttl: 3600\n"
    "retry: 600\n"
    "cookie: always\n"
    "verify: always\n"
    "source_budget: 20\n"
    "shard: {index: 1, count: 3}\n"
    "stages:\n"
    "  - {name: lan, networks: [10.0.0.0/8, \"fd00::/8\"], quota: 10}\n"
    "  - {name: rest, rate: 2, quota: 100}\n";

typedef struct {
    const char *dir;
    void *inst;
    ug_policy *ref; /* the same file, loaded apart: what the plugin must obey */
    bool cookies, budget, verify_always;
    bool roaming; /* UG_HF_ROAMING_PEERS: a retransmit may reach the other worker */
    unsigned i_hints_new; /* index of "hints_new" in stats() */
} fz_inst;

static fz_keys K;
static fz_inst insts[2];
static uint8_t manifest[UG_OBJ_MAX];
static size_t manifest_len;
static ug_pubkey pinned_hint, pinned_release;
static uint64_t clock_now = FZ_NOW;
static uint8_t *out_buf; /* exactly OUT_CAP bytes on the heap: ASan sees any overrun */

static uint64_t host_now(void *ctx)
{
    (void)ctx;
    return clock_now;
}

static void host_log(void *ctx, ug_log_level lvl, const char *msg)
{
    (void)ctx;
    FZ_CHECK((unsigned)lvl <= UG_LOG_DEBUG && msg && strchr(msg, '\n') == NULL, "log line");
}

static unsigned stat_index(void *inst, const char *name)
{
    ug_stat st[128];
    size_t n = api->stats(inst, st, 128);
    for (size_t i = 0; i < n && i < 128; i++)
        if (strcmp(st[i].name, name) == 0)
            return (unsigned)i;
    FZ_CHECK(0, "no counter %s", name);
}

static uint64_t stat_value(void *inst, unsigned idx)
{
    ug_stat st[128];
    size_t n = api->stats(inst, st, 128);
    FZ_CHECK(idx < n && idx < 128, "counter %u gone", idx);
    return st[idx].value;
}

static uint64_t stat_of(const fz_inst *f, const char *name)
{
    return stat_value(f->inst, stat_index(f->inst, name));
}

static void destroy_all(void)
{
    for (unsigned i = 0; i < 2; i++) {
        if (insts[i].inst)
            api->destroy(insts[i].inst);
        insts[i].inst = NULL;
        ug_policy_free(insts[i].ref);
        insts[i].ref = NULL;
    }
    free(out_buf);
}

static void start(fz_inst *f, const char *tag, const char *policy, unsigned host_flags)
{
    f->dir = fz_tmpdir(tag);
    manifest_len = fz_write_release(f->dir, &K, manifest, sizeof manifest);
    fz_write(f->dir, "uids.txt", "1001\n1002\n", 10);
    fz_write(f->dir, "policy.yaml", policy, strlen(policy));
    char path[300], err[UG_ERR_MAX];
    snprintf(path, sizeof path, "%s/policy.yaml", f->dir);
    f->ref = ug_policy_load(path, err, sizeof err);
    FZ_CHECK(f->ref != NULL, "%s", err);
    ug_host host = {.size = sizeof host, .log = host_log, .now = host_now, .nworkers = 2, .flags = host_flags};
    f->roaming = host_flags & UG_HF_ROAMING_PEERS;
    f->inst = api->create(&host, path, err, sizeof err);
    FZ_CHECK(f->inst != NULL, "create: %s", err);
    f->cookies = f->ref->cookie == UG_COOKIE_ALWAYS;
    f->verify_always = f->ref->verify_always;
    f->budget = f->ref->source_budget != 0;
    f->i_hints_new = stat_index(f->inst, "hints_new");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_keys_init(&K);
    FZ_CHECK(api->abi_major == UG_PLUGIN_ABI_MAJOR && api->size >= sizeof(ug_plugin), "ABI");
    out_buf = malloc(OUT_CAP);
    FZ_CHECK(out_buf != NULL, "malloc");
    start(&insts[0], "plugin-open", policy_open, 0);
    start(&insts[1], "plugin-guarded", policy_guarded, UG_HF_ROAMING_PEERS);
    atexit(destroy_all); /* runs before the scratch dirs go */
    pinned_hint = K.hint.pub;
    pinned_release = K.release.pub;
    return 0;
}

/* ---- sources ---------------------------------------------------------- */

typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} fz_addr;

static void make_src(fz_addr *a, unsigned which)
{
    static const char *const ip[8] = {"10.0.0.1", "10.9.8.7", "192.0.2.1", "198.51.100.7",
                                      "fd00::1", "2001:db8::1", "::ffff:10.0.0.5", "::1"};
    static const uint16_t port[8] = {4000, 4001, 53, 4000, 4000, 4000, 4000, 0};
    memset(a, 0, sizeof *a);
    if (strchr(ip[which], ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port[which]);
        FZ_CHECK(inet_pton(AF_INET6, ip[which], &s6->sin6_addr) == 1, "v6");
        a->len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port[which]);
        FZ_CHECK(inet_pton(AF_INET, ip[which], &s4->sin_addr) == 1, "v4");
        a->len = sizeof *s4;
    }
}

/* ---- what the reply must be ------------------------------------------- */

typedef struct {
    const fz_inst *f;
    bool ours;     /* starts with 95 a2 55 47 01, or 02 (v2) */
    bool v2;       /* a version 2 datagram: the policy has no version 2 keys */
    bool decoded;  /* a HELLO datagram whose body decodes */
    bool verified; /* and passes rule 4 under the policy's issuers, now */
    bool targeted;
    ug_dgram d;
    ug_hello h;
} fz_expect;

static void analyse(const fz_inst *f, const uint8_t *in, size_t len, fz_expect *x)
{
    static const uint8_t prefix[5] = {0x95, 0xa2, 'U', 'G', 0x01};
    memset(x, 0, sizeof *x);
    x->f = f;
    x->v2 = len >= 5 && memcmp(in, prefix, 4) == 0 && in[4] == UG2_VERSION;
    x->ours = x->v2 || (len >= 5 && memcmp(in, prefix, 5) == 0);
    if (x->v2) {
        ug2_hello h2;
        x->decoded = ug2_hello_parse(&h2, &x->d, in, len, NULL) == 0;
        x->h = h2.base; /* its nonce: what a reply must echo */
        return;
    }
    /* the tracker reads a HELLO in one pass and its credential only when it
     * needs it (issue 10): a bad credential may still get an unsigned WAIT,
     * never anything that rule 4 guards */
    x->decoded = ug_hello_parse(&x->h, &x->d, in, len, NULL) == 0;
    if (!x->decoded)
        return;
    x->verified = ug_hello_cred_decode(&x->h, NULL) == 0 &&
                  or_hello_verify(&x->h, &x->d, f->ref->issuers, f->ref->nissuers, clock_now, NULL) == 0;
    x->targeted = ug_policy_route(f->ref, &x->h.ver, x->h.plat, x->h.chan) != NULL;
}

/* A retransmit is answered from memory for UG_REPLAY_TTL seconds, and our
 * clock moves by up to 3 s between inputs: judge a reply at the time it
 * says it was made, which must be now or a moment before. */
static bool made_at(const fz_expect *x, uint64_t t, bool *in_window)
{
    FZ_CHECK(t >= FZ_NOW && t <= clock_now, "reply made at %llu, now is %llu", (unsigned long long)t,
             (unsigned long long)clock_now);
    uint64_t ts = x->h.ts;
    *in_window = (ts > t ? ts - t : t - ts) <= WINDOW;
    return t == clock_now ? x->verified
                          : or_hello_verify(&x->h, &x->d, x->f->ref->issuers, x->f->ref->nissuers, t, NULL) == 0;
}

static void check_hint(const fz_expect *x, const uint8_t *out, size_t out_len)
{
    ug_peer_expect want = {.hint_keys = &pinned_hint, .nhint_keys = 1, .release_keys = &pinned_release,
                           .nrelease_keys = 1, .uid = x->h.uid, .current = x->h.ver, .now = clock_now};
    memcpy(want.nonce, x->h.nonce, UG_NONCE_LEN);
    ug_hint hint;
    ug_err e = UG_OK;
    FZ_CHECK(ug_hint_verify(&hint, out, out_len, &want, &e) == 0, "HINT a peer rejects: %s", ug_err_name(e));
    bool in_window;
    FZ_CHECK(made_at(x, hint.ts, &in_window), "HINT for a HELLO that fails rule 4");
    FZ_CHECK(x->targeted, "HINT for a version not targeted");
    FZ_CHECK(in_window, "HINT for a HELLO outside the clock window");
    FZ_CHECK(hint.exp <= hint.ts + TTL && hint.exp <= hint.rel.exp, "HINT outlives its ttl or manifest");
    FZ_CHECK(hint.rel_obj.raw_len == manifest_len && memcmp(hint.rel_obj.raw, manifest, manifest_len) == 0,
             "HINT carries another manifest");
}

static void check_wait(const fz_inst *f, const fz_expect *x, ug_verdict v, const ug_wait *w)
{
    FZ_CHECK(w->why < UG_WHY_COUNT_ && w->why != UG_WHY_PAUSED, "WAIT why %llu", (unsigned long long)w->why);
    if (w->why == UG_WHY_TOO_SMALL)
        FZ_CHECK(w->retry == 0, "WAIT why=6 with retry %llu", (unsigned long long)w->retry);
    else
        FZ_CHECK(w->retry >= RETRY && w->retry <= RETRY + RETRY / 5, "WAIT retry %llu outside rule 10",
                 (unsigned long long)w->retry);
    bool in_window;
    bool verified = made_at(x, w->ts, &in_window);
    if (w->why == UG_WHY_NOT_TARGETED) {
        FZ_CHECK(v == UG_VERDICT_PASS && !x->targeted && w->ts == clock_now, "WAIT why=0: verdict %d, targeted %d",
                 (int)v, x->targeted);
        return;
    }
    FZ_CHECK(v == UG_VERDICT_REPLY, "WAIT why=%llu with verdict %d", (unsigned long long)w->why, (int)v);
    FZ_CHECK(x->targeted, "WAIT why=%llu for an untargeted HELLO", (unsigned long long)w->why);
    /* rule 4: WAIT 1..5 may come before the signatures (nothing is given or
     * spent), unless the policy says verify: always; why=6 never does */
    if (f->verify_always || w->why == UG_WHY_TOO_SMALL)
        FZ_CHECK(verified, "WAIT why=%llu for an unverified HELLO", (unsigned long long)w->why);
    FZ_CHECK((w->why == UG_WHY_CLOCK) == !in_window, "WAIT why=%llu, clock in window %d",
             (unsigned long long)w->why, in_window);
    if (w->why == UG_WHY_QUOTA)
        FZ_CHECK(f->ref->rollouts[0].nstages > 0, "quota without stages");
}

/* A version 2 HELLO to a policy without version 2 keys: a plain v2 WAIT
 * "not targeted" the host may replace (PASS), or a v2 COOKIE first. */
static void check_v2_reply(const fz_inst *f, const fz_expect *x, ug_verdict v, const uint8_t *out, size_t out_len)
{
    ug_dgram d;
    ug_err e = UG_OK;
    FZ_CHECK(out_len > 0, "no answer to a version 2 HELLO");
    FZ_CHECK(ug2_dgram_decode(&d, out, out_len, &e) == 0, "malformed v2 reply: %s", ug_err_name(e));
    if (d.type == UG_TYPE_COOKIE) {
        ug_cookie c;
        FZ_CHECK(v == UG_VERDICT_REPLY && f->cookies && ug_cookie_decode(&c, d.body, d.body_len, &e) == 0 &&
                     memcmp(c.nonce, x->h.nonce, UG_NONCE_LEN) == 0,
                 "v2 COOKIE");
        return;
    }
    ug2_wait w;
    FZ_CHECK(d.type == UG_TYPE_WAIT && ug2_wait_decode(&w, d.body, d.body_len, &e) == 0, "v2 reply of type %d: %s",
             (int)d.type, ug_err_name(e));
    FZ_CHECK(v == UG_VERDICT_PASS && w.why == UG_WHY_NOT_TARGETED && !w.has_token &&
                 memcmp(w.nonce, x->h.nonce, UG_NONCE_LEN) == 0,
             "v2 WAIT: verdict %d, why %llu, token %d", (int)v, (unsigned long long)w.why, w.has_token);
}

/* Everything the ABI and the spec promise about one handle() call. */
static void check_reply(const fz_inst *f, const fz_expect *x, size_t in_len, ug_verdict v, const uint8_t *out,
                        size_t out_len)
{
    FZ_CHECK(v == UG_VERDICT_REPLY || v == UG_VERDICT_PASS || v == UG_VERDICT_DROP, "verdict %d", (int)v);
    FZ_CHECK(out_len <= in_len, "reply of %zu bytes to %zu (amplification)", out_len, in_len);
    FZ_CHECK(out_len <= OUT_CAP, "reply of %zu bytes in a %u-byte buffer", out_len, OUT_CAP);
    FZ_CHECK(v != UG_VERDICT_DROP || out_len == 0, "DROP with %zu bytes", out_len);
    FZ_CHECK(v != UG_VERDICT_REPLY || out_len > 0, "REPLY with nothing");
    if (!x->ours) {
        FZ_CHECK(v == UG_VERDICT_PASS && out_len == 0, "foreign datagram: verdict %d, %zu bytes", (int)v, out_len);
        return;
    }
    if (!x->decoded) {
        FZ_CHECK(v == UG_VERDICT_DROP, "answered a malformed HELLO: verdict %d", (int)v);
        return;
    }
    if (x->v2) {
        check_v2_reply(f, x, v, out, out_len);
        return;
    }
    /* liveness: the open instance answers every good HELLO */
    if (!f->cookies && !f->budget && (x->verified || !x->targeted))
        FZ_CHECK(out_len > 0, "no answer to a %s HELLO", x->targeted ? "verified" : "non-targeted");
    if (out_len == 0)
        return;
    ug_dgram d;
    ug_err e = UG_OK;
    FZ_CHECK(ug_dgram_decode(&d, out, out_len, &e) == 0, "malformed reply: %s", ug_err_name(e));
    switch (d.type) {
    case UG_TYPE_HINT:
        FZ_CHECK(v == UG_VERDICT_REPLY, "HINT with verdict %d", (int)v);
        check_hint(x, out, out_len);
        break;
    case UG_TYPE_WAIT: {
        ug_wait w;
        FZ_CHECK(ug_wait_decode(&w, d.body, d.body_len, &e) == 0, "WAIT body: %s", ug_err_name(e));
        FZ_CHECK(memcmp(w.nonce, x->h.nonce, UG_NONCE_LEN) == 0, "WAIT nonce");
        check_wait(f, x, v, &w);
        break;
    }
    case UG_TYPE_COOKIE: {
        ug_cookie c;
        FZ_CHECK(ug_cookie_decode(&c, d.body, d.body_len, &e) == 0, "COOKIE body: %s", ug_err_name(e));
        FZ_CHECK(memcmp(c.nonce, x->h.nonce, UG_NONCE_LEN) == 0 && c.ts == clock_now, "COOKIE fields");
        /* cookie: always asks everyone; otherwise only a stage with an
         * address condition that would select a targeted HELLO asks */
        FZ_CHECK(v == UG_VERDICT_REPLY && (f->cookies || x->targeted), "COOKIE for an untargeted HELLO from an "
                 "instance with cookie: never");
        break;
    }
    default:
        FZ_CHECK(0, "reply of type %d", (int)d.type);
    }
}

/* One datagram through handle() and flush(), checked; the reply stays in
 * out_buf, its length is returned. */
static size_t deliver(fz_inst *f, unsigned worker, const fz_addr *src, const uint8_t *in, size_t len,
                       ug_verdict *verdict)
{
    fz_expect x;
    analyse(f, in, len, &x);
    size_t out_len = (size_t)-1;
    memset(out_buf, 0xee, OUT_CAP);
    uint64_t granted = stat_of(f, "hints_new");
    ug_verdict v = api->handle(f->inst, worker, (const struct sockaddr *)&src->ss, src->len, in, len, out_buf,
                               OUT_CAP, &out_len);
    check_reply(f, &x, len, v, out_buf, out_len);
    FZ_CHECK(x.verified || stat_of(f, "hints_new") == granted, "a grant spent on an unverified HELLO");
    FZ_CHECK(api->flush(f->inst, worker) == 0, "flush failed");
    if (verdict)
        *verdict = v;
    return out_len;
}

/* ---- structured HELLOs ------------------------------------------------- */

/* Consumes the payload; past its end every read gives zeros. */
typedef struct {
    const uint8_t *p;
    size_t n;
} fz_reader;

static uint8_t rd8(fz_reader *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

static void rdn(fz_reader *r, void *dst, size_t n)
{
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++)
        d[i] = rd8(r);
}

/* A text field from the payload: length byte then bytes (may be any bytes
 * but NUL, which would end the C string the encoder takes). */
static void rdstr(fz_reader *r, char *dst, size_t cap)
{
    size_t n = rd8(r) % cap;
    size_t i = 0;
    for (; i < n; i++) {
        dst[i] = (char)rd8(r);
        if (!dst[i])
            break;
    }
    dst[i] = 0;
}

typedef struct {
    uint8_t flags;
    ug_hello_fields f;
    char ver[40], plat[40], chan[24];
    uint8_t cred[256], cookie[UG_COOKIE_LEN];
    size_t cred_len, target;
    const uint8_t *sk;
} fz_recipe;

/*
 * Recipe: flags, uid (8, LE), version choice, ts offset (2, signed), cred
 * exp offset (1, signed, hours), size choice, nonce (16), plat, chan.
 * flags: 1 plat, 2 chan, 4 cookie, 8 credential signed by the stranger,
 * 16 HELLO signed by the stranger, 32 credential for the stranger's key,
 * 64 credential for uid+1, 128 uid below 10000.
 */
static void read_recipe(fz_reader *r, fz_recipe *c)
{
    static const char *const vers[8] = {"1.4.2", "0.9", "1.4.1", "1.2.99", "0.5", "2.0.0", "1.4", "0"};
    memset(c, 0, sizeof *c);
    c->flags = rd8(r);
    uint64_t uid = 0;
    for (unsigned i = 0; i < 8; i++)
        uid |= (uint64_t)rd8(r) << (8 * i);
    if (c->flags & 128)
        uid %= 10000;
    uint8_t vc = rd8(r);
    if (vc & 0x80)
        rdstr(r, c->ver, UG_VER_MAX + 2);
    else
        snprintf(c->ver, sizeof c->ver, "%s", vers[vc & 7]);
    int16_t ts_off = (int16_t)(rd8(r) | (rd8(r) << 8));
    int8_t exp_off = (int8_t)rd8(r);
    uint8_t sz = rd8(r);
    c->target = sz == 0xff ? 0 : UG_HELLO_MIN + (size_t)sz * 3; /* 0: unpadded, maybe undersized */
    if (c->target > UG_DGRAM_MAX)
        c->target = UG_DGRAM_MAX;
    rdn(r, c->f.nonce, UG_NONCE_LEN);
    if (c->flags & 1)
        rdstr(r, c->plat, UG_PLAT_MAX + 2);
    if (c->flags & 2)
        rdstr(r, c->chan, UG_CHAN_MAX + 2);
    rdn(r, c->cookie, UG_COOKIE_LEN);

    const fz_key *issuer = (c->flags & 8) ? &K.stranger : &K.issuer;
    ug_cred cred = {.uid = (c->flags & 64) ? uid + 1 : uid,
                    .exp = (uint64_t)((int64_t)clock_now + 86400 + (int64_t)exp_off * 3600)};
    memcpy(cred.pk, (c->flags & 32) ? K.stranger.pub.pk : K.client.pub.pk, UG_PK_LEN);
    memcpy(cred.kid, issuer->pub.kid, UG_KID_LEN);
    uint8_t cbody[128];
    size_t cblen;
    FZ_CHECK(ug_cred_encode_body(cbody, sizeof cbody, &cblen, &cred) == 0, "cred body");
    FZ_CHECK(ug_signed_encode(c->cred, sizeof c->cred, &c->cred_len, UG_CTX_CRED, cbody, cblen, issuer->sk) == 0,
             "cred");
    c->f.uid = uid;
    c->f.ver = c->ver;
    c->f.ts = (uint64_t)((int64_t)clock_now + ts_off);
    c->f.cred = c->cred;
    c->f.cred_len = c->cred_len;
    c->f.plat = (c->flags & 1) ? c->plat : NULL;
    c->f.chan = (c->flags & 2) ? c->chan : NULL;
    c->f.cookie = (c->flags & 4) ? c->cookie : NULL;
    memcpy(c->f.pk, (c->flags & 32) ? K.stranger.pub.pk : K.client.pub.pk, UG_PK_LEN);
    c->sk = (c->flags & 16) ? K.stranger.sk : K.client.sk;
}

/* The recipe as a signed datagram; 0 when it cannot be one. */
static size_t build(fz_recipe *c, uint8_t *out)
{
    size_t len = 0;
    if (c->target)
        return ug_hello_build(out, UG_DGRAM_MAX, &len, &c->f, c->target, c->sk) == 0 ? len : 0;
    uint8_t body[UG_DGRAM_MAX];
    size_t blen;
    c->f.has_pad = false;
    if (ug_hello_encode_body(body, sizeof body, &blen, &c->f) != 0 ||
        ug_dgram_encode(out, UG_DGRAM_MAX, &len, UG_TYPE_HELLO, body, blen, c->sk) != 0)
        return 0;
    return len;
}

static void structured(fz_inst *f, unsigned worker, const fz_addr *src, const uint8_t *p, size_t n)
{
    fz_reader r = {p, n};
    fz_recipe c;
    read_recipe(&r, &c);
    uint8_t *dg = malloc(UG_DGRAM_MAX);
    FZ_CHECK(dg != NULL, "malloc");
    size_t len = build(&c, dg);
    if (len) {
        /* exact-size copy: a read past the datagram is an ASan report */
        uint8_t *in = malloc(len);
        FZ_CHECK(in != NULL, "malloc");
        memcpy(in, dg, len);
        ug_verdict v;
        size_t out_len = deliver(f, worker, src, in, len, &v);
        free(in);
        /* asked for a cookie: echo it in a re-signed HELLO, as a peer does */
        ug_dgram d;
        ug_cookie ck;
        if (out_len && (c.flags & 4) && ug_dgram_decode(&d, out_buf, out_len, NULL) == 0 &&
            d.type == UG_TYPE_COOKIE && ug_cookie_decode(&ck, d.body, d.body_len, NULL) == 0) {
            memcpy(c.cookie, ck.cookie, UG_COOKIE_LEN);
            len = build(&c, dg);
            if (len)
                (void)deliver(f, worker, src, dg, len, NULL);
        }
    }
    free(dg);
}

/* ---- the entry point ---------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t h0 = data[0], h1 = data[1];
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    fz_inst *f = &insts[(h0 >> 6) & 1];
    unsigned worker = (h0 >> 3) & 1, mode = (h0 >> 4) & 3;
    fz_addr src;
    make_src(&src, h0 & 7);
    clock_now = FZ_NOW + (h1 & 3);
    if ((h1 & 0xfc) == 0xa4) {
        char err[UG_ERR_MAX];
        FZ_CHECK(api->reload(f->inst, NULL, err, sizeof err) == 0, "reload of an unchanged policy: %s", err);
    }

    switch (mode) {
    case 0: /* the payload as received; p..p+n is the end of libFuzzer's buffer */
        (void)deliver(f, worker, &src, p, n, NULL);
        break;
    case 1: { /* a body, signed by the client key: reaches the HELLO checks */
        uint8_t dg[UG_DGRAM_MAX];
        size_t len;
        if (ug_dgram_encode(dg, sizeof dg, &len, UG_TYPE_HELLO, p, n, K.client.sk) == 0)
            (void)deliver(f, worker, &src, dg, len, NULL);
        break;
    }
    case 2:
        structured(f, worker, &src, p, n);
        break;
    case 3: { /* rule 8 */
        ug_verdict v1, v2;
        uint8_t first[UG_DGRAM_MAX];
        size_t l1 = deliver(f, worker, &src, p, n, &v1);
        FZ_CHECK(l1 <= sizeof first, "reply size");
        memcpy(first, out_buf, l1);
        uint64_t fresh = stat_value(f->inst, f->i_hints_new);
        size_t l2 = deliver(f, f->roaming ? worker ^ 1 : worker, &src, p, n, &v2);
        /* a budget may run dry between the two, and then the second drops */
        if (!(f->budget && v2 == UG_VERDICT_DROP))
            FZ_CHECK(v1 == v2 && l1 == l2 && memcmp(first, out_buf, l1) == 0,
                     "retransmit answered differently: verdict %d/%d, %zu/%zu bytes", (int)v1, (int)v2, l1, l2);
        FZ_CHECK(stat_value(f->inst, f->i_hints_new) == fresh, "a retransmit spent quota");
        break;
    }
    }

    if (h0 & 0x80) {
        api->tick(f->inst);
        ug_stat st[256];
        size_t total = api->stats(f->inst, NULL, 0);
        size_t got = api->stats(f->inst, st, 256);
        FZ_CHECK(total == got && got <= 256, "stats: %zu then %zu", total, got);
        for (size_t i = 0; i < got; i++)
            FZ_CHECK(st[i].name && st[i].name[0], "unnamed counter %zu", i);
    }
    return 0;
}
