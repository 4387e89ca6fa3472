/* Protocol version 2's vectors (tests/vectors-v2): the committed files are what the generator makes, every
 * vector gets its verdict, reason and needed keyring from the C codec, and the independent Python verifier
 * (tests/indep/verify2.py) agrees with both on every one. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "testutil.h"
#include "ug_proto2.h"

static char root[1024];

static void init(void)
{
    cr_assert(sodium_init() >= 0);
    const char *r = getenv("UG_ROOT");
    snprintf(root, sizeof root, "%s", r && *r ? r : ".");
}

TestSuite(vectors_v2, .init = init, .timeout = 300);

static json_t *load(const char *file)
{
    char path[1200];
    json_error_t e;
    snprintf(path, sizeof path, "%s/tests/vectors-v2/%s", root, file);
    json_t *j = json_load_file(path, 0, &e);
    cr_assert(j, "cannot load %s: %s", path, e.text);
    return j;
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

/* What a judge said about one vector. */
typedef struct {
    bool ok;
    ug_err err;
    uint32_t need_kv;
} verdict;

static verdict said(int rc, ug_err err, uint32_t need)
{
    return (verdict){rc == 0, rc == 0 ? UG_OK : err, rc == 0 || err != UG_E_KEYRING ? 0 : need};
}

/* ---- the contexts the files name ---------------------------------------- */

/* A keyring of the file's `keyrings`, trusted as held (no signature checked). */
static void held_keyring(json_t *file, const char *name, ug2_keyring *k)
{
    uint8_t doc[UG2_KEYRING_MAX];
    ug2_multisig m;
    size_t n = tu_unhex(jstr(json_object_get(file, "keyrings"), name), doc, sizeof doc);
    cr_assert_eq(ug2_keyring_open(k, &m, doc, n, NULL), 0, "keyring %s", name);
}

/* The file's anchor with the fields of over (may be NULL) on top. */
static void anchor_of(json_t *file, json_t *over, ug2_keyring *k)
{
    json_t *a = json_deep_copy(json_object_get(file, "anchor"));
    if (over)
        json_object_update(a, over);
    uint8_t roots[UG2_KEYS_MAX][UG_PK_LEN];
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(a, "root"), i, r) {
        cr_assert_lt(i, UG2_KEYS_MAX);
        cr_assert_eq(tu_unhex(json_string_value(r), roots[i], UG_PK_LEN), UG_PK_LEN);
    }
    cr_assert_eq(ug2_anchor_set(k, (uint32_t)jint(a, "kv"), (const uint8_t(*)[UG_PK_LEN])roots,
                                json_array_size(json_object_get(a, "root")), (unsigned)jint(a, "root_t")),
                 0);
    json_decref(a);
}

static void text(char *dst, size_t cap, json_t *o, const char *k)
{
    snprintf(dst, cap, "%s", jstr(o, k));
}

/* The file's peer with the vector's `peer` fields on top. */
static void peer_of(json_t *file, json_t *v, ug2_peer *p)
{
    json_t *c = json_deep_copy(json_object_get(file, "peer"));
    json_t *over = json_object_get(v, "peer");
    if (over)
        json_object_update(c, over);
    memset(p, 0, sizeof *p);
    json_t *kr = json_object_get(c, "keyring");
    if (json_is_null(kr))
        anchor_of(file, NULL, &p->kr);
    else
        held_keyring(file, json_string_value(kr), &p->kr);
    p->has_keyring = !json_is_null(kr);
    text(p->app, sizeof p->app, c, "app");
    text(p->plat, sizeof p->plat, c, "plat");
    text(p->chan, sizeof p->chan, c, "chan");
    text(p->tracker, sizeof p->tracker, c, "tracker");
    const char *cur = jstr(c, "current");
    cr_assert_eq(ug_version_parse(&p->current, cur, strlen(cur)), 0);
    p->seq_hi = jint(c, "seq_hi");
    p->min_serial = jint(c, "min_serial");
    p->floor = jint(c, "floor");
    p->now = jint(c, "now");
    p->uid = jint(c, "uid");
    cr_assert_eq(tu_unhex(jstr(c, "nonce"), p->nonce, UG_NONCE_LEN), UG_NONCE_LEN);
    json_decref(c);
}

/* ---- one judge per file ------------------------------------------------------ */

static json_t *vector_named(json_t *file, const char *name)
{
    json_t *v;
    size_t i;
    json_array_foreach(json_object_get(file, "vectors"), i, v) {
        if (strcmp(jstr(v, "name"), name) == 0)
            return v;
    }
    cr_assert_fail("no vector '%s'", name);
    return NULL;
}

static verdict judge_keyring(json_t *file, json_t *v, const uint8_t *buf, size_t len)
{
    ug2_keyring held, next;
    bool anchor = json_object_get(v, "held") == NULL;
    if (anchor) {
        anchor_of(file, json_object_get(v, "anchor"), &held);
    } else {
        uint8_t doc[UG2_KEYRING_MAX];
        ug2_multisig m;
        size_t n = tu_unhex(jstr(vector_named(file, jstr(v, "held")), "hex"), doc, sizeof doc);
        cr_assert_eq(ug2_keyring_open(&held, &m, doc, n, NULL), 0);
    }
    ug_err e = UG_OK;
    int rc = ug2_keyring_step(&held, anchor, buf, len, &next, &e);
    return said(rc, e, 0);
}

static verdict judge_cert(json_t *file, json_t *v, const uint8_t *buf, size_t len)
{
    ug2_peer p;
    ug2_cert c;
    ug2_multisig m;
    ug_err e = UG_OK;
    uint32_t need = 0;
    peer_of(file, v, &p);
    if (ug2_cert_open(&c, &m, buf, len, &e) != 0)
        return said(-1, e, 0);
    ug2_cert_ctx x = {.kr = &p.kr, .min_serial = ug2_peer_min_serial(&p), .tracker = p.tracker,
                      .now = ug2_peer_now(&p)};
    uint64_t ts = json_object_get(v, "ts") ? jint(v, "ts") : p.now;
    int rc = ug2_cert_check(&c, &m, &x, ts, &need, &e);
    return said(rc, e, need);
}

static verdict judge_manifest(json_t *file, json_t *v, const uint8_t *buf, size_t len)
{
    (void)v;
    ug2_tracker_keys t;
    ug2_manifest m;
    ug_err e = UG_OK;
    memset(&t, 0, sizeof t);
    held_keyring(file, jstr(file, "keyring"), &t.kr);
    t.cert.serial = jint(file, "cert_serial");
    int rc = ug2_tracker_manifest_check(&m, buf, len, &t, jint(file, "now"), &e);
    return said(rc, e, 0);
}

static verdict judge_peer(json_t *file, json_t *v, const uint8_t *buf, size_t len)
{
    ug2_peer p;
    static ug2_hint h;
    ug_err e = UG_OK;
    uint32_t need = 0;
    peer_of(file, v, &p);
    int rc = ug2_hint_verify(&h, buf, len, &p, &need, &e);
    return said(rc, e, need);
}

static verdict judge_wait(json_t *file, json_t *v, const uint8_t *buf, size_t len)
{
    ug2_peer p;
    static ug2_wait w;
    ug_dgram d;
    ug_err e = UG_OK;
    uint32_t need = 0;
    peer_of(file, v, &p);
    if (ug2_dgram_decode(&d, buf, len, &e) != 0)
        return said(-1, e, 0);
    if (d.type == UG_TYPE_COOKIE) {
        ug_cookie c;
        if (ug_cookie_decode(&c, d.body, d.body_len, &e) != 0)
            return said(-1, e, 0);
        return said(memcmp(c.nonce, p.nonce, UG_NONCE_LEN) == 0 ? 0 : -1, UG_E_NONCE, 0);
    }
    int rc = ug2_wait_verify(&w, buf, len, &p, &need, &e);
    return said(rc, e, need);
}

static size_t issuers_of(json_t *file, ug_pubkey *keys)
{
    json_t *k;
    size_t i;
    json_array_foreach(json_object_get(file, "trusted_issuers"), i, k) {
        uint8_t pk[UG_PK_LEN];
        cr_assert_eq(tu_unhex(json_string_value(k), pk, sizeof pk), UG_PK_LEN);
        ug_pubkey_set(&keys[i], pk);
    }
    return json_array_size(json_object_get(file, "trusted_issuers"));
}

static int in_window(json_t *file, uint64_t ts, ug_err *e)
{
    uint64_t now = jint(file, "now"), skew = ts > now ? ts - now : now - ts;
    if (skew <= jint(file, "window_s"))
        return 0;
    *e = UG_E_CLOCK;
    return -1;
}

/* Rule 4 and the window, on h once decoded. */
static int hello_checks(json_t *file, ug2_hello *h, const ug_dgram *d, ug_err *e)
{
    ug_pubkey iss[4];
    size_t n = issuers_of(file, iss);
    if (ug2_hello_verify(h, d, iss, n, jint(file, "now"), e) != 0)
        return -1;
    return in_window(file, h->base.ts, e);
}

static verdict judge_tracker(json_t *file, json_t *v, const uint8_t *buf, size_t len)
{
    ug2_hello h;
    ug_dgram d;
    ug_err e = UG_OK, e2 = UG_OK;
    int rc = ug2_hello_parse(&h, &d, buf, len, &e);
    if (rc == 0)
        rc = hello_checks(file, &h, &d, &e);
    /* the two-step path (datagram, then the body with its credential) agrees */
    int rc2 = ug2_dgram_decode(&d, buf, len, &e2);
    if (rc2 == 0 && d.type != UG_TYPE_HELLO)
        rc2 = -1, e2 = UG_E_HEADER;
    if (rc2 == 0)
        rc2 = ug2_hello_decode(&h, d.body, d.body_len, &e2);
    if (rc2 == 0)
        rc2 = hello_checks(file, &h, &d, &e2);
    cr_expect(rc == rc2 && (rc == 0 || e == e2), "%s: parse says %s, decode says %s", jstr(v, "name"),
              rc ? ug_err_name(e) : "accept", rc2 ? ug_err_name(e2) : "accept");
    return said(rc, e, 0);
}

static verdict judge_report(json_t *file, json_t *v, const uint8_t *buf, size_t len)
{
    (void)v;
    ug_pubkey iss[4];
    size_t n = issuers_of(file, iss);
    ug2_report r;
    ug_dgram d;
    ug_err e = UG_OK;
    int rc = ug2_report_parse(&r, &d, buf, len, &e);
    if (rc == 0)
        rc = ug2_report_verify(&r, &d, iss, n, jint(file, "now"), &e);
    if (rc == 0)
        rc = in_window(file, r.base.ts, &e);
    return said(rc, e, 0);
}

typedef verdict (*judge_fn)(json_t *file, json_t *v, const uint8_t *buf, size_t len);

static const struct {
    const char *file;
    judge_fn judge;
    size_t min_accept, min_refuse;
} files[] = {
    {"keyring.json", judge_keyring, 8, 30}, {"cert.json", judge_cert, 6, 20},
    {"manifest.json", judge_manifest, 5, 25}, {"peer.json", judge_peer, 10, 35},
    {"wait.json", judge_wait, 8, 18},         {"tracker.json", judge_tracker, 4, 15},
    {"report.json", judge_report, 5, 15},
};

static verdict expected(json_t *v)
{
    bool ok = strcmp(jstr(v, "expect"), "accept") == 0;
    json_t *need = json_object_get(v, "need_kv");
    if (ok)
        return (verdict){true, UG_OK, 0};
    const char *name = jstr(v, "error");
    for (int e = 1; e < UG_E2_COUNT_; e++)
        if (strcmp(ug_err_name((ug_err)e), name) == 0)
            return (verdict){false, (ug_err)e, need ? (uint32_t)json_integer_value(need) : 0};
    cr_assert_fail("unknown error name '%s'", name);
    return (verdict){false, UG_OK, 0};
}

static void judge_file(size_t f)
{
    json_t *file = load(files[f].file), *v;
    size_t i, accepted = 0, refused = 0;
    json_array_foreach(json_object_get(file, "vectors"), i, v) {
        static uint8_t buf[8192];
        size_t len = tu_unhex(jstr(v, "hex"), buf, sizeof buf);
        verdict want = expected(v), got = files[f].judge(file, v, buf, len);
        cr_expect(got.ok == want.ok && got.err == want.err && got.need_kv == want.need_kv,
                  "%s '%s': want %s %s (need %u), C says %s %s (need %u)", files[f].file, jstr(v, "name"),
                  want.ok ? "accept" : "refuse", ug_err_name(want.err), want.need_kv, got.ok ? "accept" : "refuse",
                  ug_err_name(got.err), got.need_kv);
        want.ok ? accepted++ : refused++;
    }
    cr_expect_geq(accepted, files[f].min_accept, "%s: %zu accepted", files[f].file, accepted);
    cr_expect_geq(refused, files[f].min_refuse, "%s: %zu refused", files[f].file, refused);
    json_decref(file);
}

Test(vectors_v2, keyring) { judge_file(0); }
Test(vectors_v2, cert) { judge_file(1); }
Test(vectors_v2, manifest) { judge_file(2); }
Test(vectors_v2, peer) { judge_file(3); }
Test(vectors_v2, wait) { judge_file(4); }
Test(vectors_v2, tracker) { judge_file(5); }
Test(vectors_v2, report) { judge_file(6); }

/* ---- the committed files are the generator's ---------------------------------- */

Test(vectors_v2, committed_files_are_the_generators)
{
    char cmd[4096], out[4096];
    const char *dir = tu_tmpdir();
    snprintf(cmd, sizeof cmd, "%s/gen-vectors-v2 %s && diff -r %s %s/tests/vectors-v2", tu_build_dir(), dir, dir, root);
    int rc = tu_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "tests/vectors-v2 differs from what the generator makes (make vectors-v2):\n%s", out);
}

/* Every datagram of the byte budget is a vector that is accepted, of the length stated, within its bound. */
Test(vectors_v2, sizes)
{
    json_t *s = load("sizes.json"), *row;
    size_t i;
    json_array_foreach(json_object_get(s, "rows"), i, row) {
        json_t *file = load(jstr(row, "file"));
        json_t *v = vector_named(file, jstr(row, "vector"));
        cr_assert_str_eq(jstr(v, "expect"), "accept");
        size_t bytes = strlen(jstr(v, "hex")) / 2;
        cr_assert_eq(bytes, jint(row, "bytes"), "%s", jstr(row, "what"));
        /* a HINT fits a datagram; a token-carrying WAIT fits the answer to a 512-byte HELLO */
        cr_assert_leq(bytes, strcmp(jstr(row, "file"), "wait.json") == 0 ? UG_HELLO_MIN : UG_DGRAM_MAX, "%s",
                      jstr(row, "what"));
        json_decref(file);
    }
    cr_assert_geq(i, 6);
    json_decref(s);
}

/* ---- the independent verifier agrees on every vector ---------------------------- */

Test(vectors_v2, independent_verifier_agrees)
{
    char cmd[2 * sizeof root + 64];
    snprintf(cmd, sizeof cmd, "python3 %s/tests/indep/verify2.py vectors %s/tests/vectors-v2", root, root);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "cannot run verify2.py");
    char line[1024];
    size_t n = 0;
    json_t *cache = json_object();
    while (fgets(line, sizeof line, p)) {
        char *file = strtok(line, "\t"), *name = strtok(NULL, "\t"), *verd = strtok(NULL, "\t"),
             *err = strtok(NULL, "\t"), *need = strtok(NULL, "\t\n");
        cr_assert(file && name && verd && err && need, "verify2.py printed a malformed line");
        json_t *f = json_object_get(cache, file);
        if (!f) {
            f = load(file);
            json_object_set_new(cache, file, f);
        }
        verdict want = expected(vector_named(f, name));
        bool ok = strcmp(verd, "accept") == 0;
        cr_expect(ok == want.ok && strcmp(err, want.ok ? "-" : ug_err_name(want.err)) == 0 &&
                      (uint32_t)strtoul(need, NULL, 10) == want.need_kv,
                  "%s '%s': want %s %s (need %u), verify2.py says %s %s (need %s)", file, name,
                  want.ok ? "accept" : "refuse", ug_err_name(want.err), want.need_kv, verd, err, need);
        n++;
    }
    cr_assert_eq(pclose(p), 0, "verify2.py failed");
    size_t total = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        json_t *j = load(files[f].file);
        total += json_array_size(json_object_get(j, "vectors"));
        json_decref(j);
    }
    cr_assert_eq(n, total, "verify2.py judged %zu of %zu vectors", n, total);
    json_decref(cache);
}
