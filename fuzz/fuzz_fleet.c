/* libFuzzer harness: fleet mode's texts read back from Redis (grant values, uids, stream
 * events, tracker rows, quota keys, the flags hash) and Redis's replies as hiredis parses them
 * and read by every reader of a reply (fleet_reply.c, fleet_redis.c): what is accepted must write back, or stay
 * within what was asked and the room it is given. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "census/census.h"
#include "fleet/fleet_codec.h"
#include "fleet/fleet_redis.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static void grant(const char *s, size_t n)
{
    ug_fleet_grant g;
    if (ug_fleet_grant_parse(s, n, &g) != 0)
        return;
    char back[256];
    int k = snprintf(back, sizeof back, "%s|%s|%u|%u", g.stage, g.tracker, g.at, (unsigned)g.outcome);
    FZ_CHECK(k > 0 && (size_t)k == n && memcmp(back, s, n) == 0, "grant value does not write back: %.*s", (int)n, s);
    FZ_CHECK((unsigned)g.outcome < UG_OUT_COUNT_, "outcome out of range");
}

static void uid(const char *s, size_t n)
{
    uint64_t u;
    if (ug_fleet_uid_parse(s, n, &u) != 0)
        return;
    char back[32];
    int k = snprintf(back, sizeof back, "%llu", (unsigned long long)u);
    FZ_CHECK(u >= 1 && u <= UG_UID_MAX, "uid out of range");
    FZ_CHECK((size_t)k == n && memcmp(back, s, n) == 0, "uid does not write back");
}

/* s split at its NUL bytes into at most cap fields, as Redis's name/value lists; their number. */
static size_t split(const char *s, size_t n, const char **f, size_t *len, size_t cap)
{
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= n && nf < cap; i++)
        if (i == n || s[i] == '\0') {
            f[nf] = s + start;
            len[nf++] = i - start;
            start = i + 1;
        }
    return nf;
}

/* Fields separated by NUL bytes, as a stream entry's name/value list. */
static void event(const char *s, size_t n)
{
    const char *f[16];
    size_t len[16], nf = split(s, n, f, len, 16);
    ug_fleet_event e;
    if (ug_fleet_event_parse(f, len, nf, &e) != 0)
        return;
    FZ_CHECK(e.uid >= 1 && e.uid <= UG_UID_MAX && e.g.tracker[0], "event without uid or tracker");
    FZ_CHECK(e.kind == UG_FEV_OUTCOME || e.g.stage[0], "grant event without a stage");
}

static void row_and_key(const char *s, size_t n)
{
    uint64_t ts;
    bool up;
    (void)ug_fleet_row_parse(s, n, &ts, &up);
    char r[UG_NAME_MAX + 1], t[UG_VER_MAX + 1], st[UG_NAME_MAX + 1], key[UG_FLEET_KEY_MAX];
    if (ug_fleet_qkey_parse(s, n, r, t, st) != 0)
        return;
    FZ_CHECK(ug_fleet_key_stage(key, r, t, st) == 0 && strlen(key) == n && memcmp(key, s, n) == 0,
             "quota key does not write back: %.*s", (int)n, s);
}

/* The promoted gates of accepted flags: their text reads back to them,
 * their gmac is theirs alone, and adding one they hold changes nothing. */
static void gates(ug_fleet_flags *st, const uint8_t *key)
{
    static char text[UG_FLEET_GATES_TEXT];
    static ug_fleet_flags back;
    FZ_CHECK(st->ngates <= UG_FLEET_GATES_MAX && (!st->gmac[0] || strlen(st->gmac) == UG_FLEET_MAC_HEX),
             "gates out of their bounds");
    ug_fleet_gates_format(st, text);
    const char *f[2] = {"gates", text};
    size_t len[2] = {5, strlen(text)};
    FZ_CHECK(ug_fleet_flags_parse(f, len, 2, &back) == 0 && back.ngates == st->ngates &&
                 memcmp(back.gates, st->gates, st->ngates * sizeof *st->gates) == 0,
             "gates do not read back: %s", text);
    ug_fleet_gates_mac(key, "r", st, st->gmac);
    FZ_CHECK(ug_fleet_gates_verify(key, "r", st), "a gates MAC does not verify");
    FZ_CHECK(!st->ngates || !ug_fleet_gates_verify(key, "q", st), "a gates MAC verifies for another rollout");
    if (st->ngates) {
        ug_fleet_gate g = st->gates[st->ngates - 1];
        size_t n0 = st->ngates;
        FZ_CHECK(ug_fleet_gates_add(st, &g) == 0 && st->ngates <= n0, "a gate held already is added again");
    }
}

/* The flags hash's fields, NUL-separated: accepted flags carry the MAC
 * they are given, and no other. */
static void flags(const char *s, size_t n)
{
    const char *f[32];
    size_t len[32], nf = split(s, n, f, len, 32);
    ug_fleet_flags st;
    if (ug_fleet_flags_parse(f, len, nf, &st) != 0)
        return;
    FZ_CHECK(strlen(st.why) <= UG_FLEET_WHY_MAX && (!st.mac[0] || strlen(st.mac) == UG_FLEET_MAC_HEX),
             "flags out of their bounds");
    static const uint8_t key[32] = {1, 2, 3};
    bool given = ug_fleet_flags_verify(key, "r", &st);
    ug_fleet_flags_mac(key, "r", &st, st.mac);
    FZ_CHECK(ug_fleet_flags_verify(key, "r", &st), "a flags MAC does not verify");
    FZ_CHECK(!ug_fleet_flags_verify(key, "q", &st), "a flags MAC verifies for another rollout");
    (void)given;
    gates(&st, key);
}

/* A string reply's bytes lie inside it, as its len says. */
static void inside(const redisReply *e)
{
    FZ_CHECK(e && e->type == REDIS_REPLY_STRING && e->str && e->str[e->len] == '\0', "a string that is not one");
}

/* The field/value list readers (HGETALL, HSCAN): only string pairs, and
 * an integer only where the list says so. */
static void pairs(const redisReply *rep)
{
    const redisReply *k, *v;
    for (size_t i = 0; i < fr_npairs(rep); i++)
        if (fr_pair(rep, i, &k, &v)) {
            inside(k), inside(v);
            uint64_t ts;
            bool up;
            (void)ug_fleet_row_parse(v->str, v->len, &ts, &up);
        }
    long long x;
    (void)fr_hash_int(rep, "ver", &x);
    const char *f[32];
    size_t len[32];
    long n = fr_strings(rep, f, len, 32);
    FZ_CHECK(n <= 32, "more strings than room");
    ug_fleet_flags st;
    if (n >= 0)
        (void)ug_fleet_flags_parse(f, len, (size_t)n, &st);
}

/* The stream readers: XREAD's entries, each [id, fields], the first id. */
static void stream(const redisReply *rep)
{
    char id[48];
    size_t n = fr_entry_id(rep, id, sizeof id);
    FZ_CHECK(!n || (n < sizeof id && strlen(id) == n), "an entry id past its room");
    const redisReply *ents = fr_xread_entries(rep), *fv;
    for (size_t i = 0; ents && i < ents->elements; i++) {
        const char *f[12], *eid = fr_stream_entry(ents->element[i], &fv);
        size_t len[12];
        long nf = eid ? fr_strings(fv, f, len, 12) : -1;
        ug_fleet_event ev;
        if (nf >= 0)
            (void)ug_fleet_event_parse(f, len, (size_t)nf, &ev);
    }
    char cursor[32];
    const redisReply *kv = fr_scan_reply(rep, cursor, sizeof cursor);
    if (kv) {
        FZ_CHECK(strlen(cursor) < sizeof cursor && strspn(cursor, "0123456789") == strlen(cursor), "a bad cursor");
        pairs(kv);
    }
}

/* The connection's readers: the master's address, ROLE, INFO, SCRIPT LOAD. */
static void server(const redisReply *rep)
{
    char host[64], v[48], sha[41];
    unsigned port;
    if (fr_master_addr(rep, host, sizeof host, &port))
        FZ_CHECK(port >= 1 && port <= 65535 && strlen(host) < sizeof host, "a master address out of bounds");
    (void)fr_is_master(rep);
    size_t n = fr_info_field(rep, "run_id", v, sizeof v);
    FZ_CHECK(!n || (n < sizeof v && strlen(v) == n), "an INFO field past its room");
    if (fr_sha_reply(rep, sha))
        FZ_CHECK(strlen(sha) == 40, "a script SHA of another length");
}

/* Raw RESP bytes as Redis would send them: the reply hiredis makes of
 * them, read by every reader of a reply (want, quota and the RATE
 * script's most from the first bytes). */
static void reply(const char *s, size_t n)
{
    if (n < 2)
        return;
    uint64_t want = (uint8_t)s[0], quota = (uint64_t)(uint8_t)s[1] * 4;
    redisReader *r = redisReaderCreate();
    if (!r)
        return;
    if (fr_reader_cap(r) != 0) {
        redisReaderFree(r);
        return;
    }
    redisReply *rep = NULL;
    if (redisReaderFeed(r, s + 2, n - 2) == REDIS_OK && redisReaderGetReply(r, (void **)&rep) == REDIS_OK && rep) {
        fr_lease l;
        if (fr_lease_reply(rep, want, quota, &l) == 0)
            FZ_CHECK(l.given <= want && l.given <= l.leased && l.n + l.leased <= quota, "a LEASE reply believed past "
                                                                                         "what was asked");
        uint64_t g;
        if (fr_unpark_reply(rep, want, &g) == 0)
            FZ_CHECK(g <= want, "an UNPARK reply believed past what was asked");
        double share;
        long long active;
        if (fr_rate_reply(rep, (double)quota, &share, &active))
            FZ_CHECK(share >= 0 && share <= (double)quota && active >= 0, "a RATE reply believed out of bounds");
        long long v;
        for (size_t i = 0; i < 4; i++)
            (void)fr_int_at(rep, i, &v);
        pairs(rep);
        stream(rep);
        server(rep);
        freeReplyObject(rep);
    }
    redisReaderFree(r);
}

/* A tracker's published census (fleet_census.c): the walk stays inside the
 * value, every bucket it yields goes to ug_census_merge (which validates
 * it); sealed under a key it opens for that tracker alone. */
static void census_blob(const uint8_t *b, size_t n)
{
    static const uint8_t key[32] = {7, 1, 9};
    if (ug_fleet_census_open(NULL, "a", b, n)) {
        ug_census_opts o = {.nworkers = 1, .ring = 1024};
        char why[200];
        ug_census *c = ug_census_create(&o, why, sizeof why);
        FZ_CHECK(c != NULL, "census: %s", why);
        size_t off = UG_FLEET_CENSUS_HEAD, rlen;
        const uint8_t *rec;
        int rc;
        while ((rc = ug_fleet_census_next(b, n, &off, &rec, &rlen)) == 1) {
            FZ_CHECK(rlen > 0 && rec >= b + UG_FLEET_CENSUS_HEAD && rec + rlen <= b + n && off <= n,
                     "a bucket outside the value");
            if (ug_census_merge(c, FZ_NOW - FZ_NOW % UG_CENSUS_SLOT, rec, rlen, why, sizeof why) != 0)
                FZ_CHECK(why[0] != '\0', "a refused bucket says why");
        }
        ug_census_free(c);
    }
    if (n >= UG_FLEET_CENSUS_HEAD) {
        static uint8_t copy[65536];
        memcpy(copy, b, n);
        FZ_CHECK(!ug_fleet_census_open(key, "a", b, n) || memcmp(b, "UGF1", 4) == 0, "opened without its magic");
        ug_fleet_census_seal(key, "a", copy, n);
        FZ_CHECK(ug_fleet_census_open(key, "a", copy, n), "a sealed census does not open");
        FZ_CHECK(!ug_fleet_census_open(key, "b", copy, n), "a census opens as another tracker's");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] == 0xce) { /* not a residue below: the corpus's older inputs keep their meaning */
        census_blob(data + 1, n);
        return 0;
    }
    switch (data[0] % 6) {
    case 0: grant(s, n); break;
    case 1: uid(s, n); break;
    case 2: event(s, n); break;
    case 3: row_and_key(s, n); break;
    case 4: flags(s, n); break;
    default: reply(s, n); break;
    }
    return 0;
}
