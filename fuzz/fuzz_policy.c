/* libFuzzer harness: ug_policy_load on any file (versions 1 and 2), beside valid keys, manifests, lists, a
 * geoip DB and a FIFO, then its evaluators, its lint and its --check summary. */
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "policy/policy.h"

static fz_keys K;
static const char *dir;
static char policy_path[256];

/* A few peers to run every loaded stage against, so the condition
 * evaluators see what the loader built. */
static ug_hello peers[4];
static struct sockaddr_in src4[2];
static struct sockaddr_in6 src6[2];

static void manifest_file(const char *name, unsigned nurls, size_t url_len, uint64_t exp)
{
    ug_manifest m = {.nurls = (uint8_t)nurls, .size = 1, .exp = exp};
    FZ_CHECK(ug_version_parse(&m.to, "2.0.0", 5) == 0, "version");
    for (unsigned i = 0; i < nurls; i++) {
        int n = snprintf(m.urls[i], sizeof m.urls[i], "https://m%u.example.net/", i);
        FZ_CHECK(n > 0 && (size_t)n <= url_len && url_len <= UG_URL_MAX, "url");
        memset(m.urls[i] + n, 'a', url_len - (size_t)n);
        m.urls[i][url_len] = 0;
    }
    memcpy(m.kid, K.release.pub.kid, UG_KID_LEN);
    uint8_t body[UG_OBJ_MAX], obj[UG_OBJ_MAX];
    size_t blen, olen;
    FZ_CHECK(ug_manifest_encode_body(body, sizeof body, &blen, &m) == 0, "manifest body");
    FZ_CHECK(ug_signed_encode(obj, sizeof obj, &olen, UG_CTX_RELEASE, body, blen, K.release.sk) == 0, "manifest");
    fz_write(dir, name, obj, olen);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_keys_init(&K);
    dir = fz_tmpdir("policy");
    uint8_t rel[UG_OBJ_MAX];
    (void)fz_write_release(dir, &K, rel, sizeof rel);
    /* the loader's other outcomes: a release whose HINT cannot fit, an
     * expired one, and files that are not what their key says */
    manifest_file("huge.manifest", UG_URLS_MAX, UG_URL_MAX, FZ_NOW + 86400);
    manifest_file("stale.manifest", 1, 40, FZ_NOW - 1);
    fz_write(dir, "garbage.manifest", "\x92\xc4\x01", 3);
    fz_write(dir, "uids.txt", "1001\n# comment\n\n  1002\r\n9223372036854775807\n", 45);
    fz_write(dir, "bad-uids.txt", "1001\n0\n", 7);
    fz_write(dir, "pw.txt", "s3cret\n", 7);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/state", dir);
    FZ_CHECK(mkdir(sub, 0700) == 0, "mkdir state");
    /* a FIFO: any file the policy names may be one, and must not hang it */
    snprintf(sub, sizeof sub, "%s/fifo", dir);
    FZ_CHECK(mkfifo(sub, 0600) == 0, "mkfifo");
    /* regions need a DB: tests/mkgeo.pl writes one (from the repo's root, as
     * make runs us; without perl the geoip key just fails to load) */
    snprintf(sub, sizeof sub, "perl tests/mkgeo.pl %s/geo.mmdb >/dev/null 2>&1", dir);
    if (system(sub) != 0)
        fprintf(stderr, "fuzz_policy: no geo.mmdb (%s failed)\n", sub);
    snprintf(policy_path, sizeof policy_path, "%s/policy.yaml", dir);

    static const uint64_t uids[4] = {1, 1001, 4242, UINT64_C(9223372036854775807)};
    static const char *const plats[4] = {"", "linux-x86_64", "windows-x86_64", "x"};
    static const char *const chans[4] = {"", "stable", "beta", "stable"};
    for (unsigned i = 0; i < 4; i++) {
        peers[i].uid = uids[i];
        snprintf(peers[i].plat, sizeof peers[i].plat, "%s", plats[i]);
        snprintf(peers[i].chan, sizeof peers[i].chan, "%s", chans[i]);
        FZ_CHECK(ug_version_parse(&peers[i].ver, "1.4.2", 5) == 0, "version");
    }
    static const char *const v4[2] = {"1.2.3.4", "10.0.0.1"};
    static const char *const v6[2] = {"2001:db8::1", "::ffff:1.2.3.4"};
    for (unsigned i = 0; i < 2; i++) {
        src4[i].sin_family = AF_INET;
        FZ_CHECK(inet_pton(AF_INET, v4[i], &src4[i].sin_addr) == 1, "v4");
        src6[i].sin6_family = AF_INET6;
        FZ_CHECK(inet_pton(AF_INET6, v6[i], &src6[i].sin6_addr) == 1, "v6");
    }
    return 0;
}

static void check_stage(const ug_policy *p, const ug_rollout *r, size_t i)
{
    const ug_stage *s = &r->stages[i];
    FZ_CHECK(ug_name_valid(s->name, strlen(s->name)), "stage %zu name", i);
    for (size_t j = 0; j < i; j++)
        FZ_CHECK(strcmp(r->stages[j].name, s->name) != 0, "duplicate stage %s", s->name);
    FZ_CHECK(s->salt_len >= 1 && s->salt_len <= UG_SALT_MAX && s->salt[s->salt_len] == 0, "salt");
    FZ_CHECK(s->nconds == 0 || s->conds != NULL, "conds");
    unsigned flags = 0;
    for (size_t k = 0; k < s->nconds; k++) {
        FZ_CHECK(s->conds[k].kind && s->conds[k].kind->match && s->conds[k].kind->describe, "cond kind");
        flags |= s->conds[k].kind->flags;
        for (size_t m = 0; m < k; m++)
            FZ_CHECK(s->conds[m].kind != s->conds[k].kind, "condition %s twice", s->conds[k].kind->key);
    }
    FZ_CHECK(flags == s->cond_flags, "cond_flags");
    FZ_CHECK(!(s->has_start && s->has_end) || s->start < s->end, "start/end");
    if (s->has_percent) {
        const ug_percent *pc = &s->percent;
        FZ_CHECK(pc->kind != UG_PCT_CONST || pc->bp <= 10000, "percent");
        FZ_CHECK(pc->kind != UG_PCT_LINEAR || (pc->start < pc->end && pc->from_bp <= pc->to_bp && pc->to_bp <= 10000),
                 "linear percent");
        FZ_CHECK(pc->kind != UG_PCT_STEPS || (pc->nsteps >= 1 && pc->steps), "steps");
        for (size_t k = 0; pc->kind == UG_PCT_STEPS && k < pc->nsteps; k++)
            FZ_CHECK(pc->steps[k].bp <= 10000 && (k == 0 || (pc->steps[k].at > pc->steps[k - 1].at &&
                                                             pc->steps[k].bp >= pc->steps[k - 1].bp)),
                     "step %zu", k);
    }
    FZ_CHECK(!s->has_rate || (isfinite(s->rate) && s->rate > 0), "rate");
    FZ_CHECK(!s->has_fleet_rate || (isfinite(s->fleet_rate) && s->fleet_rate > 0), "fleet_rate");
    FZ_CHECK(!s->has_quota || ug_policy_share(p, s->quota) <= s->quota, "share");
}

/* What a loaded policy promises the plugin, which trusts it without checks. */
static void check_policy(const ug_policy *p)
{
    FZ_CHECK(p->version == 1 || p->version == 2, "version %u", p->version);
    FZ_CHECK(p->hint_sk != NULL && p->nissuers >= 1 && p->issuers != NULL, "keys");
    FZ_CHECK(p->shard_count >= 1 && p->shard_index < p->shard_count, "shard %u of %u", p->shard_index,
             p->shard_count);
    FZ_CHECK(p->hint_ttl >= 1, "hint_ttl");
    FZ_CHECK(p->cookie == UG_COOKIE_NEVER || p->cookie == UG_COOKIE_ALWAYS || p->cookie == UG_COOKIE_AUTO,
             "cookie");
    FZ_CHECK(p->state_dir[0] != 0, "state");
    FZ_CHECK(p->nrollouts >= 1 && p->rollouts != NULL, "rollouts");
    FZ_CHECK(p->version == 2 || (p->nrollouts == 1 && strcmp(p->rollouts[0].name, "default") == 0), "v1 rollout");
    for (size_t i = 0; i < p->nrollouts; i++) {
        const ug_rollout *r = &p->rollouts[i];
        FZ_CHECK(ug_name_valid(r->name, strlen(r->name)), "rollout %zu name", i);
        for (size_t j = 0; j < i; j++)
            FZ_CHECK(strcmp(p->rollouts[j].name, r->name) != 0, "duplicate rollout %s", r->name);
        FZ_CHECK(r->salt_len >= 1 && r->salt_len <= UG_SALT_MAX, "rollout salt");
        FZ_CHECK(r->manifest != NULL && r->manifest_len > 0, "manifest");
        FZ_CHECK(ug_hint_max_len(r->manifest_len) <= UG_DGRAM_MAX, "a HINT for this release cannot fit (rule 9)");
        FZ_CHECK(r->rel.nurls >= 1 && r->rel.nurls <= UG_URLS_MAX, "nurls");
        FZ_CHECK(r->to[0] != 0, "to");
        FZ_CHECK(r->ntargets >= 1 && r->targets != NULL, "targets");
        FZ_CHECK(!r->plat || r->nplat >= 1, "plat");
        FZ_CHECK(!r->chan || r->nchan >= 1, "chan");
        FZ_CHECK(!r->has_halt_when || ((r->halt_failed_ppm || r->halt_rolled_back_ppm) &&
                                       r->halt_failed_ppm <= 1000000 && r->halt_rolled_back_ppm <= 1000000 &&
                                       r->halt_min_outcomes >= 1),
                 "halt_when");
        FZ_CHECK(r->outcome_window >= 1, "outcome_window");
        FZ_CHECK(r->nstages == 0 || r->stages != NULL, "stages");
        for (size_t j = 0; j < r->nstages; j++)
            check_stage(p, r, j);
    }
}

/* Runs what the plugin runs on a loaded policy: routing and every stage
 * against a few peers from a few networks, at a few times. */
static void evaluate(const ug_policy *p)
{
    static const char *const vers[] = {"0", "1.3", "1.4.2", "4294967295.4294967295"};
    for (unsigned i = 0; i < 4; i++) {
        ug_version v;
        FZ_CHECK(ug_version_parse(&v, vers[i], strlen(vers[i])) == 0, "version");
        const ug_rollout *r = ug_policy_route(p, &v, peers[i].plat, peers[i].chan);
        FZ_CHECK(!r || ug_rollout_targets(r, &v), "routed to a rollout that does not target it");
    }
    const struct sockaddr *srcs[4] = {(const struct sockaddr *)&src4[0], (const struct sockaddr *)&src4[1],
                                      (const struct sockaddr *)&src6[0], (const struct sockaddr *)&src6[1]};
    static const int64_t times[3] = {INT64_MIN, (int64_t)FZ_NOW, INT64_MAX};
    static const char *const zones[3] = {NULL, "Europe/Berlin", "No/Such"};
    for (size_t r = 0; r < p->nrollouts; r++) {
        int64_t next;
        for (unsigned k = 0; k < 3; k++)
            (void)ug_windows_open(&p->rollouts[r].win, zones[k], times[k], &next);
        for (size_t i = 0; i < p->rollouts[r].nstages; i++) {
            const ug_stage *s = &p->rollouts[r].stages[i];
            (void)ug_windows_open(&s->win, zones[i % 3], (int64_t)FZ_NOW, &next);
            for (unsigned k = 0; k < 4; k++) {
                ug_peer peer = {.uid = peers[k].uid, .ver = &peers[k].ver, .plat = peers[k].plat,
                                .chan = peers[k].chan, .src = srcs[k], .now = times[(k + i) % 3]};
                (void)ug_stage_active(s, times[k % 3]);
                (void)ug_stage_matches(s, &peer);
                if (s->has_percent) {
                    int64_t t0 = times[k % 3], t1 = times[k % 3 < 2 ? k % 3 + 1 : 2];
                    uint32_t a = ug_percent_at(&s->percent, t0), b = ug_percent_at(&s->percent, t1);
                    FZ_CHECK(a <= 10000 && b <= 10000 && a <= b, "percent not monotonic: %u then %u", a, b);
                }
                char text[256];
                for (size_t c = 0; c < s->nconds; c++)
                    s->conds[c].kind->describe(s->conds[c].arg, text, sizeof text);
            }
        }
    }
}

/* Every lint finding is one line "PATH:LINE: KEY: message". */
static void lint_line(void *ctx, const char *msg)
{
    (void)ctx;
    size_t n = strlen(msg);
    FZ_CHECK(strncmp(msg, policy_path, strlen(policy_path)) == 0 && msg[strlen(policy_path)] == ':', "lint: %s", msg);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f, "control byte in a lint finding: %s", msg);
}

/* The summary: one JSON object with a rollout for every rollout, and not
 * the fleet password pw.txt holds (unless the policy text says it too). */
static void summarise(const ug_policy *p, const uint8_t *data, size_t size)
{
    json_t *j = ug_policy_summary(p, (int64_t)FZ_NOW);
    FZ_CHECK(j && json_is_object(j), "no summary");
    json_t *rs = json_object_get(j, "rollouts");
    FZ_CHECK(json_array_size(rs) == p->nrollouts, "rollouts in the summary");
    for (size_t i = 0; i < p->nrollouts; i++) {
        json_t *st = json_object_get(json_array_get(rs, i), "stages");
        FZ_CHECK(json_array_size(st) == p->rollouts[i].nstages, "stages of rollout %zu in the summary", i);
        for (size_t k = 0; k < p->rollouts[i].nstages; k++)
            FZ_CHECK(json_array_size(json_object_get(json_array_get(st, k), "conditions")) ==
                         p->rollouts[i].stages[k].nconds,
                     "conditions of stage %zu in the summary", k);
    }
    char *text = json_dumps(j, JSON_COMPACT);
    FZ_CHECK(text != NULL, "summary does not dump");
    FZ_CHECK(!strstr(text, "s3cret") || memmem(data, size, "s3cret", 6), "the fleet password in the summary");
    free(text);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(dir, "policy.yaml", data, size);
    char err[UG_ERR_MAX];
    memset(err, 0x55, sizeof err);
    ug_policy *p = ug_policy_load(policy_path, err, sizeof err);
    if (!p) {
        /* one line naming the file and line: "PATH:LINE: KEY: message" */
        size_t n = strnlen(err, sizeof err);
        FZ_CHECK(n > 0 && n < sizeof err, "error message of %zu bytes", n);
        FZ_CHECK(err[0] == '/', "error does not start with a path: %s", err);
        for (size_t i = 0; i < n; i++)
            FZ_CHECK((unsigned char)err[i] >= 0x20 && err[i] != 0x7f, "control byte in error: %s", err);
        FZ_CHECK(strstr(err, ": ") != NULL, "error without a key: %s", err);
        return 0;
    }
    check_policy(p);
    evaluate(p);
    ug_policy_lint(p, (int64_t)FZ_NOW, lint_line, NULL);
    summarise(p, data, size);
    ug_policy_free(p);
    return 0;
}
