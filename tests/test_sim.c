/* upgate-sim through its command line: figures computed by hand, a real node's capture replayed, two policies, the plot, --suggest, usage and file errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "nodeutil.h"
#include "testutil.h"

#define OUT_MAX (1 << 20)

static nu_node N;

static void teardown(void)
{
    if (N.pid)
        nu_stop(&N, SIGKILL);
}

TestSuite(sim, .fini = teardown, .timeout = 300);

/* ---- a folder with keys, a package, a manifest and policies ------------------------- */

static char dir[256];
static int64_t S; /* the simulated start: a whole hour, so steps are clock hours */

/* Keys and a manifest for 2.0.0 of a package of size bytes, at nurls mirrors, valid 30 days. */
static void setup(size_t size, unsigned nurls)
{
    cr_assert(sodium_init() >= 0);
    snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    S = (int64_t)time(NULL) / 3600 * 3600;
    char urls[512] = "";
    for (unsigned i = 0; i < nurls; i++) {
        size_t n = strlen(urls);
        snprintf(urls + n, sizeof urls - n, " --url http://m%u.example.net/app.bin", i + 1);
    }
    const char *b = tu_build_dir();
    cr_assert_eq(nu_sh("cd %s && for k in hint issuer release; do %s/upgate-keys gen $k >/dev/null || exit 1; done && "
                       "head -c %zu /dev/zero > app.bin && %s/upgate-keys release --key release.key --version 2.0.0 "
                       "--file app.bin%s --ttl 2592000 --out release.manifest >/dev/null",
                       dir, b, size, b, urls),
                 0, "keys and manifest");
}

static const char *path(const char *name)
{
    static char p[4][512];
    static int k;
    char *s = p[k++ % 4];
    snprintf(s, 512, "%s/%s", dir, name);
    return s;
}

/* A version 1 policy: keys, release, state, targets 1.4.0, retry, then stages. */
static void policy_v1(const char *name, unsigned retry, const char *stages)
{
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "keys: {hint: hint.key, issuers: [issuer.pub]}\nrelease: release.manifest\nstate: state\n"
                     "targets: [\"1.4.0\"]\nretry: %u\ncookie: never\n%s",
                     retry, stages);
    tu_write_file(path(name), text, (size_t)n);
}

/* A version 2 policy: one rollout "main" of 2.0.0 for 1.4.0, extra top-level lines, then its stages. */
static void policy_v2(const char *name, unsigned retry, const char *top, const char *rollout)
{
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nretry: %u\ncookie: never\n%s"
                     "rollouts:\n  - name: main\n    release: release.manifest\n    targets: [\"1.4.0\"]\n%s",
                     retry, top, rollout);
    tu_write_file(path(name), text, (size_t)n);
}

static void iso(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Runs upgate-sim in dir with args; its stdout in out, its stderr in err; the exit code. */
static int sim(char *out, char *err, const char *fmt, ...)
{
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s/upgate-sim %s 2>sim.err", dir, tu_build_dir(), args);
    int rc = tu_run(cmd, out, out ? OUT_MAX : 0);
    if (err) {
        FILE *f = fopen(path("sim.err"), "r");
        size_t n = f ? fread(err, 1, 4095, f) : 0;
        err[n] = 0;
        if (f)
            fclose(f);
    }
    return rc;
}

static char *buf(void)
{
    char *b = calloc(1, OUT_MAX);
    cr_assert(b);
    return b;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- CSV -------------------------------------------------------------------------- */

typedef struct {
    char *text;
    char *cell[4096][160];
    int ncols, nrows;
} csv;

static void csv_load(csv *c, const char *file)
{
    FILE *f = fopen(path(file), "r");
    cr_assert(f, "%s", file);
    c->text = calloc(1, OUT_MAX);
    size_t n = fread(c->text, 1, OUT_MAX - 1, f);
    fclose(f);
    c->text[n] = 0;
    c->nrows = 0;
    for (char *line = c->text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        cr_assert_lt(c->nrows, 4096);
        int k = 0;
        for (char *f2 = line, *nf; f2; f2 = nf) {
            nf = strchr(f2, ',');
            if (nf)
                *nf++ = 0;
            cr_assert_lt(k, 160);
            c->cell[c->nrows][k++] = f2;
        }
        if (c->nrows == 0)
            c->ncols = k;
        else
            cr_assert_eq(k, c->ncols, "row %d has %d fields, the header %d", c->nrows, k, c->ncols);
        c->nrows++;
    }
}

static int col(const csv *c, const char *name)
{
    for (int i = 0; i < c->ncols; i++)
        if (strcmp(c->cell[0][i], name) == 0)
            return i;
    cr_assert_fail("no column %s", name);
    return -1;
}

/* The value of column name in data row r (1-based rows after the header). */
static double val(const csv *c, int r, const char *name)
{
    return strtod(c->cell[r][col(c, name)], NULL);
}

static double sum(const csv *c, const char *policy_suffix, const char *name)
{
    double s = 0;
    for (int r = 1; r < c->nrows; r++) {
        const char *p = c->cell[r][0];
        size_t lp = strlen(p), ls = policy_suffix ? strlen(policy_suffix) : 0;
        if (!policy_suffix || (lp >= ls && strcmp(p + lp - ls, policy_suffix) == 0))
            s += val(c, r, name);
    }
    return s;
}

static void csv_free(csv *c)
{
    free(c->text);
}

/* Common flags for figures by hand: answers at once, everyone accepts, nothing fails, 1 MB/s. */
#define EXACT "--think 0 --accept 1 --fail 0 --speed 8Mbit"

/* ---- usage and files ------------------------------------------------------------------ */

Test(sim, bad_usage_is_one_line_and_exit_2)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: all}\n");
    static const char *const cases[] = {
        "--policy p.yaml --peers 10 --versions 1.4.0 --bogus",
        "--policy p.yaml --peers 0 --versions 1.4.0",
        "--policy p.yaml --versions 1.4.0",
        "--peers 10 --versions 1.4.0",
        "--policy p.yaml --peers 10 --replay x.cap",
        "--policy p.yaml --peers 10 --versions 1.4.0 --speed 20",
        "--policy p.yaml --peers 10 --versions 1.4.0 --max-bandwidth 10Gb",
        "--policy p.yaml --peers 10 --versions 1.4.x",
        "--policy p.yaml --peers 10 --versions 1.4.0=0",
        "--policy p.yaml --peers 10 --versions 1.4.0,1.4.0",
        "--policy p.yaml --peers 10 --versions 1.4.0 --networks 10.1.0.1/16",
        "--policy p.yaml --peers 10 --versions 1.4.0 --plot x.jpg",
        "--policy p.yaml --peers 10 --versions 1.4.0 --suggest all",
        "--policy p.yaml --peers 10 --versions 1.4.0 --step 90s",
        "--policy p.yaml --peers 10 --versions 1.4.0 --days 91",
        "--policy p.yaml --peers 10 --versions 1.4.0 --accept 1.5",
        "--policy p.yaml --peers 10 --versions 1.4.0 --session 1h",
        "--policy p.yaml --replay x.cap --versions 1.4.0",
        "--policy p.yaml --peers 10 --versions 1.4.0 --time-scale 2",
        "--policy p.yaml --policy p.yaml --policy p.yaml --peers 10 --versions 1.4.0",
        "--policy p.yaml --peers 10 --versions 1.4.0 --regions DE",
        "--policy p.yaml --peers 10 --versions 1.4.0 stray",
    };
    char err[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = sim(NULL, err, "%s", cases[i]);
        cr_expect_eq(rc, 2, "%s: exit %d, want 2 (%s)", cases[i], rc, err);
        cr_expect_eq(lines(err), 1, "%s: one line on stderr, got:\n%s", cases[i], err);
        cr_expect(strncmp(err, "upgate-sim: ", 12) == 0, "%s: %s", cases[i], err);
    }
}

Test(sim, unreadable_or_malformed_files_name_the_file_and_exit_1)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: all}\n");
    policy_v1("bad.yaml", 600, "stages:\n  - {name: all, bogus: 1}\n");
    tu_write_file(path("garbage.cap"), "this is not a capture file", 26);
    tu_write_file(path("garbage.mmdb"), "nor a MaxMind DB", 16);
    tu_write_file(path("empty.cap"), "UGCAP1\n\x01", 8);
    static const struct {
        const char *args, *names;
    } cases[] = {
        {"--policy missing.yaml --peers 10 --versions 1.4.0", "missing.yaml"},
        {"--policy bad.yaml --peers 10 --versions 1.4.0", "bad.yaml"},
        {"--policy p.yaml --policy bad.yaml --peers 10 --versions 1.4.0", "bad.yaml"},
        {"--policy p.yaml --replay missing.cap", "missing.cap"},
        {"--policy p.yaml --replay garbage.cap", "garbage.cap"},
        {"--policy p.yaml --replay empty.cap", "empty.cap"},
        {"--policy p.yaml --peers 10 --versions 1.4.0 --regions DE --geoip garbage.mmdb", "garbage.mmdb"},
        {"--policy p.yaml --peers 10 --versions 1.4.0 --plugin missing.so", "missing.so"},
    };
    char err[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = sim(NULL, err, "%s", cases[i].args);
        cr_expect_eq(rc, 1, "%s: exit %d, want 1 (%s)", cases[i].args, rc, err);
        cr_expect_eq(lines(err), 1, "%s: one line on stderr, got:\n%s", cases[i].args, err);
        cr_expect(strstr(err, cases[i].names), "%s: the line names %s: %s", cases[i].args, cases[i].names, err);
    }
    /* no state folder of the policy's was made, no scratch left behind */
    struct stat st;
    cr_expect_neq(stat(path("state"), &st), 0, "the policy's state folder is never opened");
}

/* ---- figures by hand ---------------------------------------------------------------- */

/* 200 peers asking every 600-720 s; a stage that opens at S+3h with a quota
 * of 50: the 50 first to ask after 3:00 get it, in the hour from 3:00. */
Test(sim, quota_spent_in_the_hour_its_stage_opens)
{
    setup(1000000, 1);
    char at[40], stages[256];
    iso(S + 3 * 3600, at, sizeof at);
    snprintf(stages, sizeof stages, "stages:\n  - name: later\n    start: %s\n    quota: 50\n", at);
    policy_v1("p.yaml", 600, stages);
    char *out = buf(), err[4096];
    int rc = sim(out, err, "--policy p.yaml --peers 200 --versions 1.4.0 --start %lld --days 0.25 " EXACT
                           " --csv out.csv", (long long)S);
    cr_assert_eq(rc, 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    cr_assert_eq(c.nrows, 1 + 6, "six hourly rows");
    for (int r = 1; r <= 6; r++)
        cr_expect_eq(val(&c, r, "offers:later"), r == 4 ? 50 : 0, "hour %d", r - 1);
    cr_expect_eq(val(&c, 6, "upgraded_total"), 50);
    char *q = strstr(out, "quota of stage later (50): spent at +0d 03:");
    cr_assert(q, "%s", out);
    int mm = atoi(q + strlen("quota of stage later (50): spent at +0d 03:"));
    cr_expect(mm < 13, "every peer asks within 720 s of 3:00, so the quota is gone by 3:12: %s", q);
    csv_free(&c);
    free(out);
}

/* 2 mirrors, 100 offers of a 1,000,000-byte package: the mirrors move 100 x
 * 1,000,000 bytes in all, and each step's average is its bytes over 3600 s. */
Test(sim, bandwidth_is_size_times_downloads)
{
    setup(1000000, 2);
    policy_v1("p.yaml", 600, "stages:\n  - {name: all, quota: 100}\n");
    char err[4096];
    cr_assert_eq(sim(NULL, err, "--policy p.yaml --peers 300 --versions 1.4.0 --start %lld --days 0.125 " EXACT
                                " --csv out.csv", (long long)S), 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    double bytes = sum(&c, NULL, "bytes:m0") + sum(&c, NULL, "bytes:m1");
    cr_expect_eq(bytes, 100.0 * 1000000, "bytes moved: %.0f", bytes);
    cr_expect_gt(sum(&c, NULL, "bytes:m0"), 0, "the HINTs spread peers over both mirrors");
    cr_expect_gt(sum(&c, NULL, "bytes:m1"), 0, "the HINTs spread peers over both mirrors");
    for (int r = 1; r < c.nrows; r++) {
        double avg = val(&c, r, "avg_bps:all"), b = val(&c, r, "bytes:m0") + val(&c, r, "bytes:m1");
        cr_expect(fabs(avg - b * 8 / 3600) <= 1, "row %d: %.0f bit/s for %.0f bytes", r, avg, b);
        cr_expect_leq(val(&c, r, "peak_bps:m0"), val(&c, r, "peak_bps:all"));
    }
    /* 1-second downloads at 8 Mbit/s: a minute's peak is a whole number of them */
    double peak = val(&c, 1, "peak_bps:all");
    cr_expect_gt(peak, 0);
    double k = peak * 60 / 8e6;
    cr_expect(fabs(k - (double)(long long)(k + 0.5)) < 1e-6, "peak minute %.0f bit/s is not n x 1 MB / 60 s", peak);
    csv_free(&c);
}

/* The spec's bucket, computed here independently of the plugin. */
static unsigned bucket(const char *salt, uint64_t uid)
{
    uint8_t m[64], h[32];
    size_t n = strlen(salt);
    memcpy(m, salt, n);
    m[n] = 0;
    for (unsigned i = 0; i < 8; i++)
        m[n + 1 + i] = (uint8_t)(uid >> (8 * i));
    crypto_generichash(h, sizeof h, m, n + 9, NULL, 0);
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)h[i] << (8 * i);
    return (unsigned)(v % 10000);
}

/* A percent schedule of 10, 30, 60, 100% on the hours; peers ask every
 * 60-72 s: each hour offers exactly the uids whose bucket the new step
 * took in. */
Test(sim, ramp_offers_per_step_are_the_buckets_it_adds)
{
    setup(1000, 1);
    char t[4][40], stages[1024];
    for (int i = 0; i < 4; i++)
        iso(S + i * 3600, t[i], sizeof t[i]);
    snprintf(stages, sizeof stages,
             "    stages:\n      - name: ramp\n        salt: ramp-salt\n        percent:\n"
             "          - {at: %s, percent: 10}\n          - {at: %s, percent: 30}\n"
             "          - {at: %s, percent: 60}\n          - {at: %s, percent: 100}\n",
             t[0], t[1], t[2], t[3]);
    policy_v2("p.yaml", 60, "", stages);
    char err[4096];
    cr_assert_eq(sim(NULL, err, "--policy p.yaml --peers 1000 --versions 1.4.0 --start %lld --days 0.25 " EXACT
                                " --csv out.csv", (long long)S), 0, "%s", err);
    static const unsigned edge[] = {0, 1000, 3000, 6000, 10000};
    unsigned want[6] = {0};
    for (uint64_t uid = 1; uid <= 1000; uid++) {
        unsigned b = bucket("ramp-salt", uid);
        for (int k = 0; k < 4; k++)
            want[k] += b >= edge[k] && b < edge[k + 1];
    }
    csv c;
    csv_load(&c, "out.csv");
    for (int k = 0; k < 6; k++)
        cr_expect_eq(val(&c, k + 1, "offers:ramp"), want[k], "hour %d: %.0f offers, the buckets say %u", k,
                     val(&c, k + 1, "offers:ramp"), want[k]);
    cr_expect_eq(val(&c, 6, "upgraded_total"), 1000);
    csv_free(&c);
}

/* ---- two policies ----------------------------------------------------------------- */

Test(sim, two_policies_run_on_the_same_peers_side_by_side)
{
    setup(1000000, 1);
    policy_v1("a.yaml", 600, "stages:\n  - {name: all, quota: 20}\n");
    policy_v1("b.yaml", 600, "stages:\n  - {name: all, quota: 40}\n");
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy a.yaml --policy b.yaml --peers 200 --versions 1.4.0 --start %lld --days 0.125 "
                               EXACT " --csv out.csv --plot out.svg", (long long)S), 0, "%s", err);
    cr_expect(strstr(out, "policy A: a.yaml") && strstr(out, "policy B: b.yaml"), "%s", out);
    cr_expect(strstr(out, "quota of stage all (20): spent at") && strstr(out, "quota of stage all (40): spent at"),
              "%s", out);
    cr_expect(strstr(out, "200 targeted"), "%s", out);
    csv c;
    csv_load(&c, "out.csv");
    cr_expect_eq(c.nrows, 1 + 2 * 3, "three steps of each policy");
    cr_expect_eq(sum(&c, "a.yaml", "offers:all"), 20);
    cr_expect_eq(sum(&c, "b.yaml", "offers:all"), 40);
    cr_expect_eq(sum(&c, "a.yaml", "bytes:m0"), 20e6);
    cr_expect_eq(sum(&c, "b.yaml", "bytes:m0"), 40e6);
    cr_expect_geq(val(&c, 1, "waits:quota"), val(&c, 4, "waits:quota"),
                  "a quota of 20 turns more peers away than one of 40");
    csv_free(&c);
    free(out);
}

/* ---- replay ------------------------------------------------------------------------- */

static int peer(uint64_t uid)
{
    const char *b = tu_build_dir();
    return nu_sh("cd %s && %s/upgate-keys cred --issuer issuer.key --uid %llu --pub client.pub --ttl 3600 --out c.cred "
                 "&& %s/upgate-peer --tracker 127.0.0.1:%u --uid %llu --version 1.4.0 --key client.key --cred c.cred "
                 "--hint-pub hint.pub --release-pub release.pub --timeout 10 --no </dev/null >/dev/null 2>&1",
                 N.dir, b, (unsigned long long)uid, b, N.port, (unsigned long long)uid);
}

Test(sim, replays_a_capture_a_real_node_made)
{
    nu_init(&N, "stages:\n  - {name: all, quota: 4}\n");
    const char *extra[] = {"--capture", nu_path(&N, "hellos.cap"), NULL};
    nu_start(&N, extra, NULL);
    for (uint64_t uid = 1; uid <= 6; uid++)
        cr_assert_eq(peer(uid), 0, "peer %llu", (unsigned long long)uid);
    cr_assert_eq(nu_stop(&N, SIGTERM), 0);
    N.pid = 0;
    snprintf(dir, sizeof dir, "%s", N.dir);
    cr_assert_eq(nu_sh("cp %s/hellos.cap %s/hellos.cap.1", dir, dir), 0);
    char *out = buf(), err[4096];
    /* a fresh state: the simulation grants the quota again, to the first four */
    cr_assert_eq(sim(out, err, "--policy policy.yaml --replay hellos.cap " EXACT " --csv out.csv"), 0, "%s", err);
    cr_expect(strstr(out, "6 recorded HELLOs of 6 peers"), "%s", out);
    cr_expect(strstr(err, "hellos.cap.1 holds the older part"), "the rotated part is pointed out: %s", err);
    cr_expect(strstr(out, "quota of stage all (4): spent at +0d 00:00:"), "%s", out);
    csv c;
    csv_load(&c, "out.csv");
    cr_expect_eq(sum(&c, NULL, "offers:all"), 4);
    cr_expect_eq(sum(&c, NULL, "waits:quota"), 2);
    cr_expect_eq(sum(&c, NULL, "upgraded"), 4);
    cr_expect_eq(sum(&c, NULL, "bytes:m0"), 4 * 1000, "the node's package is 1000 bytes");
    csv_free(&c);
    /* a rotated pair in one flag, time-scaled: every record of both, the same offers */
    cr_assert_eq(sim(out, err, "--policy policy.yaml --replay hellos.cap.1,hellos.cap --time-scale 10 " EXACT
                               " --csv out2.csv"), 0, "%s", err);
    cr_expect(strstr(out, "12 recorded HELLOs of 6 peers"), "%s", out);
    csv_load(&c, "out2.csv");
    cr_expect_eq(sum(&c, NULL, "offers:all"), 4);
    cr_expect_eq(sum(&c, NULL, "decisions"), 12 + 4, "12 HELLOs and 4 HELLOs at the new version");
    csv_free(&c);
    free(out);
}

/* ---- the plot ------------------------------------------------------------------------ */

Test(sim, the_plot_is_well_formed_svg_with_the_peak_marked)
{
    setup(5000000, 2);
    policy_v1("a.yaml", 300, "stages:\n  - {name: canary, uid_mod: {div: 10, rem: 3}, quota: 30}\n"
                             "  - {name: rest, percent: 40, rate: 0.2}\n");
    policy_v1("b.yaml", 300, "stages:\n  - {name: canary, uid_mod: {div: 10, rem: 3}, quota: 30}\n"
                             "  - {name: rest, percent: 40, rate: 0.05}\n");
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy a.yaml --policy b.yaml --peers 2000 --versions 1.4.0 --days 0.5 "
                               "--max-bandwidth 50Mbit --plot out.svg"), 0, "%s", err);
    cr_expect(strstr(out, "plot: out.svg"), "%s", out);
    /* an XML parser of its own reads it: python3's */
    char res[4096];
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c \"\nimport sys, xml.etree.ElementTree as E\nns='{http://www.w3.org/2000/svg}'\n"
             "r = E.parse(sys.argv[1]).getroot()\nassert r.tag == ns + 'svg', r.tag\n"
             "w, h = float(r.get('width')), float(r.get('height'))\nlines = r.findall(ns + 'polyline')\n"
             "for l in lines:\n  for p in l.get('points').split():\n    x, y = map(float, p.split(','))\n"
             "    assert 0 <= x <= w and 0 <= y <= h, (x, y)\n"
             "texts = ' '.join(t.text or '' for t in r.iter(ns + 'text'))\n"
             "print(len(lines), len(r.findall(ns + 'circle')), 'peak' in texts, 'max 50.0 Mbit/s' in texts, "
             "'canary' in texts and 'rest' in texts, 'dasharray' in E.tostring(r).decode())\n\" %s 2>&1",
             path("out.svg"));
    cr_assert_eq(tu_run(cmd, res, sizeof res), 0, "the SVG does not parse: %s", res);
    int npoly = 0, ncirc = 0;
    char peak[8], maxl[8], legend[8], dashed[8];
    cr_assert_eq(sscanf(res, "%d %d %7s %7s %7s %7s", &npoly, &ncirc, peak, maxl, legend, dashed), 6, "%s", res);
    /* per policy: 2 stages, 2 mirrors, the share */
    cr_expect_geq(npoly, 2 * 5, "%s", res);
    cr_expect_eq(ncirc, 2, "one peak marked per policy: %s", res);
    cr_expect_str_eq(peak, "True");
    cr_expect_str_eq(maxl, "True", "the --max-bandwidth line is labelled");
    cr_expect_str_eq(legend, "True", "the stages are in the legend");
    cr_expect_str_eq(dashed, "True", "the second policy is dashed");
    if (tu_run("command -v rsvg-convert >/dev/null", NULL, 0) == 0) {
        cr_assert_eq(sim(NULL, err, "--policy a.yaml --peers 500 --versions 1.4.0 --days 0.1 --quiet --plot out.png"), 0,
                     "%s", err);
        FILE *f = fopen(path("out.png"), "rb");
        unsigned char magic[8] = {0};
        cr_assert(f);
        cr_assert_eq(fread(magic, 1, 8, f), 8);
        fclose(f);
        cr_expect_eq(memcmp(magic, "\x89PNG\r\n\x1a\n", 8), 0, "a PNG");
    } else {
        cr_log_info("rsvg-convert is not installed: the PNG is not checked");
    }
    free(out);
}

/* ---- the bound and the search -------------------------------------------------------------- */

/* The plot's time axis reads as clock time (UTC, the date where a day
 * starts), and no two series share a colour, across panels and policies. */
Test(sim, the_plot_shows_clock_time_and_a_colour_per_series)
{
    setup(1000000, 3);
    policy_v1("a.yaml", 300, "stages:\n  - {name: canary, uid_mod: {div: 10, rem: 3}, quota: 30}\n"
                             "  - {name: rest, percent: 40}\n");
    policy_v1("b.yaml", 300, "stages:\n  - {name: canary, uid_mod: {div: 10, rem: 3}, quota: 30}\n"
                             "  - {name: rest, percent: 20}\n");
    char err[4096];
    cr_assert_eq(sim(NULL, err, "--policy a.yaml --policy b.yaml --peers 500 --versions 1.4.0 --start %lld "
                                "--days 0.5 --quiet --plot out.svg", (long long)(S + 1800)), 0, "%s", err);
    char want[32], res[4096], cmd[1024];
    time_t tick = (time_t)((S + 1800) / (3 * 3600) + 1) * (3 * 3600); /* 3-hour ticks over half a day */
    struct tm tm;
    cr_assert(gmtime_r(&tick, &tm));
    strftime(want, sizeof want, "%m-%d %H:%M", &tm);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"\nimport sys, xml.etree.ElementTree as E\nns='{http://www.w3.org/2000/svg}'\n"
             "r = E.parse(sys.argv[1]).getroot()\nstrokes = [l.get('stroke') for l in r.findall(ns + 'polyline')]\n"
             "texts = [t.text or '' for t in r.iter(ns + 'text')]\n"
             "print(len(strokes), len(set(strokes)), sys.argv[2] in texts, 'UTC' in texts, "
             "any(t.startswith('+') for t in texts))\n\" %s '%s' 2>&1",
             path("out.svg"), want);
    cr_assert_eq(tu_run(cmd, res, sizeof res), 0, "the SVG does not parse: %s", res);
    int n = 0, distinct = 0;
    char first[8], utc[8], offset[8];
    cr_assert_eq(sscanf(res, "%d %d %7s %7s %7s", &n, &distinct, first, utc, offset), 5, "%s", res);
    cr_expect_eq(n, 2 * (2 + 3 + 1), "per policy: 2 stages, 3 mirrors, the share: %s", res);
    cr_expect_eq(distinct, n, "each series its own colour: %s", res);
    cr_expect_str_eq(first, "True", "the first tick reads %s: %s", want, res);
    cr_expect_str_eq(utc, "True", "the axis says UTC: %s", res);
    cr_expect_str_eq(offset, "False", "no +offset labels on the time axis: %s", res);
}

Test(sim, max_bandwidth_flags_the_steps_above_it)
{
    setup(1000000, 1);
    char at[40], stages[256];
    iso(S + 2 * 3600, at, sizeof at);
    snprintf(stages, sizeof stages, "stages:\n  - name: later\n    start: %s\n    quota: 100\n", at);
    policy_v1("p.yaml", 600, stages);
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 300 --versions 1.4.0 --start %lld --days 0.25 " EXACT
                               " --max-bandwidth 1Mbit --csv out.csv", (long long)S), 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    for (int r = 1; r < c.nrows; r++)
        cr_expect_eq(val(&c, r, "over_max"), r == 3 ? 1 : 0, "row %d", r);
    cr_expect(strstr(out, "exceeded in 1 step, the first from +0d 02:00"), "%s", out);
    cr_expect(strstr(out, "Mbit/s!"), "the table marks the step: %s", out);
    csv_free(&c);
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 300 --versions 1.4.0 --start %lld --days 0.25 " EXACT
                               " --max-bandwidth 1Gbit --quiet", (long long)S), 0, "%s", err);
    cr_expect(strstr(out, "every mirror stays under it"), "%s", out);
    free(out);
}

/* 6 MB at 1 MB/s: each offer is 6 s of 8 Mbit/s, so a minute of n offers is
 * 0.8 n Mbit/s; 2000 peers ask every minute. The answers are checked by
 * running them: the rate found keeps under the bound and 5% more does not
 * (the plugin's whole-second bucket makes any rate from 0.5 to 1 give one
 * offer in two seconds: the search finds the top of that step); the ramp
 * found keeps under it, at a length near 2000 peers x 0.8 Mbit/s / 30 Mbit/s
 * a minute, plus the minutes busier than the average. */
Test(sim, suggest_finds_the_rate_and_the_ramp)
{
    setup(6000000, 1);
    char a[40], b[40], stages[512];
    iso(S, a, sizeof a);
    iso(S + 600, b, sizeof b);
    snprintf(stages, sizeof stages,
             "    stages:\n      - name: ramp\n        percent: {from: 0, to: 100, start: %s, end: %s}\n"
             "        rate: 5   # the search rewrites this value only\n",
             a, b);
    policy_v2("p.yaml", 60, "# ünïcödé before the stage moves no byte offset\n", stages);
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 2000 --versions 1.4.0 --start %lld --days 0.1 " EXACT
                               " --max-bandwidth 30Mbit --suggest ramp --quiet", (long long)S), 0, "%s", err);
    const char *r = strstr(out, "suggest rate: at most ");
    cr_assert(r, "%s", out);
    cr_expect(strstr(r, "main/ramp"), "%s", r);
    const char *rv = strstr(r, ": rate: ");
    cr_assert(rv, "%s", r);
    double rate = strtod(rv + strlen(": rate: "), NULL);
    cr_expect(rate > 0.4 && rate < 1.0, "rate %g: %s", rate, r);
    const char *e = strstr(out, "suggest ramp: at least ");
    cr_assert(e, "%s", out);
    int d, hh, mm;
    cr_assert_eq(sscanf(e, "suggest ramp: at least %dd %d:%d", &d, &hh, &mm), 3, "%s", e);
    int minutes = d * 1440 + hh * 60 + mm;
    cr_expect(minutes >= 45 && minutes <= 120, "ramp of %d min: %s", minutes, e);
    const char *ev = strstr(e, ": end: ");
    cr_assert(ev, "%s", e);
    char end[32];
    cr_assert_eq(sscanf(ev, ": end: %31s", end), 1);
    /* run the answers */
    char stage[512];
    snprintf(stage, sizeof stage, "    stages:\n      - name: ramp\n        percent: {from: 0, to: 100, start: %s, end: %s}\n"
             "        rate: %.6f\n", a, b, rate);
    policy_v2("r1.yaml", 60, "", stage);
    snprintf(stage, sizeof stage, "    stages:\n      - name: ramp\n        percent: {from: 0, to: 100, start: %s, end: %s}\n"
             "        rate: %.6f\n", a, b, rate * 1.05);
    policy_v2("r2.yaml", 60, "", stage);
    snprintf(stage, sizeof stage, "    stages:\n      - name: ramp\n        percent: {from: 0, to: 100, start: %s, end: %s}\n"
             "        rate: 5\n", a, end);
    policy_v2("r3.yaml", 60, "", stage);
    static const struct {
        const char *policy, *want;
    } runs[] = {{"r1.yaml", "every mirror stays under it"}, {"r2.yaml", "exceeded"}, {"r3.yaml", "every mirror stays under it"}};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(sim(out, err, "--policy %s --peers 2000 --versions 1.4.0 --start %lld --days 0.1 " EXACT
                                   " --max-bandwidth 30Mbit --quiet", runs[i].policy, (long long)S), 0, "%s", err);
        cr_expect(strstr(out, runs[i].want), "%s: %s", runs[i].policy, out);
    }
    /* the trial copies were written beside the policy and are gone */
    cr_expect_eq(nu_sh("ls -a %s | grep -q '\\.sim-'", dir), 1, "a trial copy was left behind");
    /* the policy itself is untouched */
    char text[2048];
    FILE *f = fopen(path("p.yaml"), "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cr_expect(strstr(text, "rate: 5   # the search"), "%s", text);
    /* and the stage must exist */
    cr_expect_eq(sim(NULL, err, "--policy p.yaml --peers 10 --versions 1.4.0 --days 0.01 --max-bandwidth 1Gbit "
                                "--suggest nosuch --quiet"), 2, "%s", err);
    cr_expect(strstr(err, "no stage nosuch"), "%s", err);
    free(out);
}

/* ---- the peers ------------------------------------------------------------------------- */

Test(sim, the_same_seed_gives_the_same_forecast)
{
    setup(1000000, 2);
    policy_v1("p.yaml", 600, "stages:\n  - {name: some, percent: 30, rate: 0.1}\n");
    char err[4096];
    const char *args = "--policy p.yaml --peers 3000 --versions 1.4.0=2,1.3.0 --days 0.25 --accept 0.5 "
                       "--speed 1Mbit..50Mbit --start 1790000000";
    cr_assert_eq(sim(NULL, err, "%s --csv one.csv", args), 0, "%s", err);
    cr_assert_eq(sim(NULL, err, "%s --csv two.csv", args), 0, "%s", err);
    cr_assert_eq(sim(NULL, err, "%s --csv three.csv --seed 2", args), 0, "%s", err);
    cr_expect_eq(nu_sh("cmp -s %s %s", path("one.csv"), path("two.csv")), 0, "the same seed, the same series");
    cr_expect_neq(nu_sh("cmp -s %s %s", path("one.csv"), path("three.csv")), 0, "another seed, other peers");
}

/* The test DB (tests/mkgeo.pl) places 127.0.1.0/24 in CN-BJ, 127.0.2.0/24 in
 * DE and 2001:db8::/32 in US-CA: peers drawn from those regions are
 * selected by the stages naming them, never asked for a cookie. */
Test(sim, regions_draw_addresses_the_plugin_places_there)
{
    setup(1000, 1);
    cr_assert_eq(nu_sh("perl %s/tests/mkgeo.pl %s/geo.mmdb", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".", dir), 0);
    policy_v2("p.yaml", 600, "geoip: geo.mmdb\n",
              "    stages:\n      - {name: bj, regions: [CN-BJ]}\n      - {name: de, regions: [DE]}\n"
              "      - {name: us, regions: [US-CA]}\n");
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 400 --versions 1.4.0 --days 0.2 --regions CN-BJ=1,DE=1,US-CA=2 "
                               "--geoip geo.mmdb --csv out.csv"), 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    double bj = sum(&c, NULL, "offers:bj"), de = sum(&c, NULL, "offers:de"), us = sum(&c, NULL, "offers:us");
    cr_expect_eq(bj + de + us, 400, "every peer is in a region a stage names: %g %g %g", bj, de, us);
    cr_expect(bj > 60 && bj < 140 && de > 60 && de < 140 && us > 150 && us < 250, "%g %g %g", bj, de, us);
    cr_expect_eq(sum(&c, NULL, "cookies"), 0, "with the address proved, no COOKIE");
    cr_expect(!strstr(out, "anomalies"), "%s", out);
    csv_free(&c);
    /* a region the DB does not know: the file is named */
    cr_expect_eq(sim(NULL, err, "--policy p.yaml --peers 10 --versions 1.4.0 --regions FR --geoip geo.mmdb"), 1);
    cr_expect(strstr(err, "geo.mmdb") && strstr(err, "FR"), "%s", err);
    free(out);
}

/* Logins on a curve peaking at 12:00 UTC and empty at midnight. */
Test(sim, logins_follow_the_daily_curve)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: none, uids: [1]}\n");
    int64_t midnight = (int64_t)time(NULL) / 86400 * 86400;
    char err[4096];
    cr_assert_eq(sim(NULL, err, "--policy p.yaml --peers 3000 --versions 1.4.0 --start %lld --days 1 --logins 2 "
                                "--session 30m --peak-hour 12 --csv out.csv", (long long)midnight), 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    cr_assert_eq(c.nrows, 25);
    double noon = val(&c, 13, "decisions"), night = val(&c, 1, "decisions") + val(&c, 2, "decisions");
    cr_expect_gt(noon, 5 * night, "12:00 %g, 0:00-2:00 %g", noon, night);
    /* 2 logins of 30 minutes, a retry of 600-720 s: 3 HELLOs each, 6 a day */
    double all = sum(&c, NULL, "decisions");
    cr_expect(all > 3000 * 6 * 0.8 && all < 3000 * 6 * 1.2, "%g decisions", all);
    csv_free(&c);
}

/* Two rollouts of packages of different sizes: each download moves its own
 * rollout's package, and the header names both sizes. */
Test(sim, each_rollout_moves_its_own_package)
{
    setup(1000000, 1);
    cr_assert_eq(nu_sh("cd %s && head -c 250000 /dev/zero > small.bin && %s/upgate-keys release --key release.key "
                       "--version 1.9.0 --file small.bin --url http://m1.example.net/small.bin --ttl 2592000 "
                       "--out small.manifest >/dev/null", dir, tu_build_dir()), 0, "the small manifest");
    const char *text = "keys: {hint: hint.key, issuers: [issuer.pub]}\nstate: state\nretry: 600\ncookie: never\n"
                       "rollouts:\n"
                       "  - {name: big, release: release.manifest, targets: [\"1.4.0\"], stages: [{name: all, quota: 10}]}\n"
                       "  - {name: small, release: small.manifest, targets: [\"1.3.0\"], stages: [{name: all, quota: 20}]}\n";
    tu_write_file(path("p.yaml"), text, strlen(text));
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 200 --versions 1.4.0,1.3.0 --start %lld --days 0.25 " EXACT
                               " --csv out.csv", (long long)S), 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    cr_expect_eq(sum(&c, NULL, "offers:big/all"), 10);
    cr_expect_eq(sum(&c, NULL, "offers:small/all"), 20);
    cr_expect_eq(sum(&c, NULL, "bytes:m0"), 10 * 1e6 + 20 * 250e3, "%.0f bytes", sum(&c, NULL, "bytes:m0"));
    csv_free(&c);
    cr_expect(strstr(out, "packages: big 1.00 MB, small 250 kB"), "%s", out);
    free(out);
}

/* The table's headers are whole stage names, and its rows line up under them. */
Test(sim, table_headers_are_not_cut)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: early-adopters-in-the-west, quota: 5}\n");
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 20 --versions 1.4.0 --start %lld --days 0.125 " EXACT,
                     (long long)S), 0, "%s", err);
    char *head = strstr(out, "\ntime ");
    cr_assert(head, "%s", out);
    head++;
    char *eol = strchr(head, '\n');
    cr_assert(eol);
    *eol = 0;
    cr_expect(strstr(head, " early-adopters-in-the-west "), "header: %s", head);
    char *row = eol + 1, *row_end = strchr(row, '\n');
    cr_assert(row_end);
    cr_expect_eq(row_end - row, eol - head, "the row under the header is as wide:\n%s\n%.*s", head,
                 (int)(row_end - row), row);
    free(out);
}

/* Every simulated peer is counted once in the headline: targeted, not
 * targeted, or never asked (not online in a horizon shorter than a day). */
Test(sim, the_headline_counts_every_peer)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: all, percent: 100}\n");
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 1000 --versions 1.4.0=3,1.3.0 --start %lld --days 0.1 "
                               "--logins 1 --session 30m", (long long)S), 0, "%s", err);
    const char *p = strstr(out, "peers: ");
    cr_assert(p, "%s", out);
    unsigned tg = 0, ut = 0, un = 0;
    cr_assert_eq(sscanf(p, "peers: %u targeted, %u not targeted", &tg, &ut), 2, "%s", p);
    const char *q = strstr(p, "not targeted");
    const char *never = strstr(p, " never asked");
    cr_assert(never && never < strchr(p, '\n'), "no never asked count in: %.300s", p);
    const char *num = never;
    while (num > q && num[-1] >= '0' && num[-1] <= '9')
        num--;
    un = (unsigned)strtoul(num, NULL, 10);
    cr_expect_gt(ut, 0, "1.3.0 is not targeted: %.300s", p);
    cr_expect_gt(un, 0, "a login a day, a horizon of 2.4 hours: some peers never ask: %.300s", p);
    cr_expect_eq(tg + ut + un, 1000, "%u + %u + %u peers, 1000 simulated: %.300s", tg, ut, un, p);
    free(out);
}

/* Declines, failed installs and rollbacks reach the plugin as REPORTs and
 * HELLOs; the tracker's own count agrees with the simulation's. */
Test(sim, outcomes_reach_the_tracker)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: all}\n");
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 400 --versions 1.4.0 --days 0.5 --think 0 --accept 0.5 "
                               "--fail 0.3 --rollback 0.5 --csv out.csv --quiet"), 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    double declined = sum(&c, NULL, "declined"), rolled = sum(&c, NULL, "rolled_back"), failed = sum(&c, NULL, "failed");
    cr_expect(declined > 150 && declined < 250, "%g declined", declined);
    cr_expect_gt(failed, 0);
    cr_expect_gt(rolled, 0);
    char want[128];
    snprintf(want, sizeof want, "declined %.0f,", declined);
    cr_expect(strstr(out, want), "the tracker counts %s: %s", want, out);
    snprintf(want, sizeof want, "(rolled back %.0f of them)", rolled);
    cr_expect(strstr(out, want), "the tracker counts %s: %s", want, out);
    csv_free(&c);
    free(out);
}

/* halt_when stops the rollout the moment the failed share passes it. */
Test(sim, an_automatic_halt_stops_the_offers)
{
    setup(1000, 1);
    policy_v2("p.yaml", 600, "",
              "    halt_when: {failed: 0.2, min_outcomes: 20}\n    stages:\n      - {name: all}\n");
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --peers 1000 --versions 1.4.0 --days 0.25 " EXACT
                               " --fail 0.6 --csv out.csv --quiet"), 0, "%s", err);
    cr_expect(strstr(out, "halted at the end: rollout main: automatic:"), "%s", out);
    cr_expect(strstr(out, "stopped: rollout main stopped offering"), "%s", out);
    cr_expect(strstr(out, "plugin: +0d"), "the plugin's halt line is shown: %s", out);
    csv c;
    csv_load(&c, "out.csv");
    cr_expect_lt(sum(&c, NULL, "offers_new"), 200, "offers stop within minutes");
    cr_expect_gt(sum(&c, NULL, "waits:paused"), 0);
    csv_free(&c);
    free(out);
}

/* An off-peak window (issue 25): the real plugin answers WAIT with a retry
 * to the opening, so the forecast offers only inside it. */
Test(sim, offers_only_inside_the_window)
{
    setup(1000000, 1);
    char stages[256];
    int h = (int)((S / 3600 + 3) % 24);
    snprintf(stages, sizeof stages,
             "stages:\n  - name: w\n    windows: [{from: \"%02d:00\", to: \"%02d:00\", tz: UTC}]\n", h, (h + 2) % 24);
    policy_v1("p.yaml", 600, stages);
    char *out = buf(), err[4096];
    int rc = sim(out, err, "--policy p.yaml --peers 200 --versions 1.4.0 --start %lld --days 0.25 " EXACT
                           " --csv out.csv", (long long)S);
    cr_assert_eq(rc, 0, "%s", err);
    csv c;
    csv_load(&c, "out.csv");
    cr_assert_eq(c.nrows, 1 + 6, "six hourly rows");
    long inside = 0;
    for (int r = 1; r <= 6; r++) {
        long n = val(&c, r, "offers:w");
        if (r == 4 || r == 5)
            inside += n;
        else
            cr_expect_eq(n, 0, "hour %d is outside the window: %ld offers", r - 1, n);
    }
    cr_expect_eq(inside, 200, "every peer comes back when it opens: %ld", inside);
    csv_free(&c);
    free(out);
}

/* --population: a census (upgate-ctl census --json) as the peers. Its
 * buckets' week counts give the peers, "other" left out: 1.4.0 (targeted,
 * on two platforms) 900, 1.3.0 100. Everyone targeted is offered at 100%,
 * nobody else; --peers scales every bucket alike. */
#define CENSUS_JSON                                                                                              \
    "{\"ok\": true, \"enabled\": true, \"windows\": {}, \"stats\": {\"noted\": 5},\n\"buckets\": ["              \
    "{\"ver\": \"1.4.0\", \"plat\": \"linux-x86_64\", \"chan\": \"stable\", \"region\": \"\", \"other\": false, " \
    "\"p\": 15, \"hour\": 60, \"day\": 300, \"week\": 600},\n"                                                   \
    "{\"ver\": \"1.4\", \"plat\": \"windows\", \"chan\": \"\", \"region\": \"\", \"other\": false, \"p\": 15, "  \
    "\"hour\": 30, \"day\": 100, \"week\": 300},\n"                                                             \
    "{\"ver\": \"1.3.0\", \"plat\": \"linux-x86_64\", \"chan\": \"stable\", \"region\": \"\", \"other\": false, " \
    "\"p\": 15, \"hour\": 10, \"day\": 50, \"week\": 100},\n"                                                    \
    "{\"ver\": \"9.9.9\", \"plat\": \"\", \"chan\": \"\", \"region\": \"\", \"other\": true, \"p\": 15, "        \
    "\"hour\": 5, \"day\": 20, \"week\": 50}]}\n"

Test(sim, a_census_population_is_offered_by_its_targeted_versions)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: all, percent: 100}\n");
    tu_write_file(path("census.json"), CENSUS_JSON, strlen(CENSUS_JSON));
    static const unsigned peers[2] = {0, 2000};
    for (int k = 0; k < 2; k++) {
        char *out = buf(), err[4096], extra[32] = "";
        if (peers[k])
            snprintf(extra, sizeof extra, "--peers %u", peers[k]);
        cr_assert_eq(sim(out, err, "--policy p.yaml --population census.json %s --start %lld --days 0.5 " EXACT
                                   " --csv out.csv", extra, (long long)S),
                     0, "%s", err);
        unsigned tg = 0, ut = 0, scale = peers[k] ? peers[k] / 1000 : 1;
        const char *p = strstr(out, "peers: ");
        cr_assert(p, "%s", out);
        char line[512];
        size_t n = 0;
        for (const char *q = p; *q && *q != '\n' && n + 1 < sizeof line; q++)
            if (*q != ',' || q[1] < '0' || q[1] > '9')
                line[n++] = *q; /* "1,800" as 1800 */
        line[n] = 0;
        cr_assert_eq(sscanf(line, "peers: %u targeted, %u not targeted", &tg, &ut), 2, "%s", line);
        cr_expect_eq(tg, 900 * scale, "1.4.0's buckets (1.4 is 1.4.0): %.300s", p);
        cr_expect_eq(ut, 100 * scale, "1.3.0's bucket; 'other' left out: %.300s", p);
        csv c;
        csv_load(&c, "out.csv");
        cr_expect_eq(sum(&c, NULL, "offers:all"), 900 * scale, "offers to 1.4.0 only, every one");
        csv_free(&c);
        free(out);
    }
}

Test(sim, a_bad_census_names_the_file_and_the_field)
{
    setup(1000, 1);
    policy_v1("p.yaml", 600, "stages:\n  - {name: all}\n");
    static const char *const bad[][2] = {
        {"{\"buckets\": [{\"ver\": \"1.4.x\", \"week\": 3}]}", "c.json: buckets[0].ver: not a version"},
        {"{\"buckets\": [{\"ver\": \"1.4.0\", \"week\": 3}, {\"ver\": \"1.4.0\", \"week\": -1}]}",
         "c.json: buckets[1].week: not a count"},
        {"{\"buckets\": [{\"ver\": \"1.4.0\", \"plat\": 7, \"week\": 3}]}", "c.json: buckets[0].plat: not a string"},
        {"{\"buckets\": {}}", "c.json: buckets: missing, or not an array"},
        {"{\"buckets\": [{\"ver\": \"1.4.0\", \"week\": 0}]}", "c.json: buckets: no uid counted over the week"},
        {"[1, 2", "c.json: line 1: not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(path("c.json"), bad[i][0], strlen(bad[i][0]));
        char err[4096];
        int rc = sim(NULL, err, "--policy p.yaml --population c.json");
        cr_expect_eq(rc, 1, "%s: exit %d (%s)", bad[i][0], rc, err);
        cr_expect_eq(lines(err), 1, "%s: one line: %s", bad[i][0], err);
        cr_expect(strstr(err, bad[i][1]), "%s: want '%s' in: %s", bad[i][0], bad[i][1], err);
    }
    char err[4096];
    cr_expect_eq(sim(NULL, err, "--policy p.yaml --population c.json --versions 1.4.0"), 2, "%s", err);
    cr_expect_eq(sim(NULL, err, "--policy p.yaml --population c.json --replay x.cap"), 2, "%s", err);
}

/* A census's regions, with the policy's GeoIP database: each bucket's peers
 * come from its region's networks, exactly its count (a stage per region
 * offers to that bucket only); a bucket of no region matches no stage. */
Test(sim, a_census_population_comes_from_its_regions)
{
    setup(1000, 1);
    cr_assert_eq(nu_sh("perl %s/tests/mkgeo.pl %s/geo.mmdb", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".", dir), 0);
    policy_v2("p.yaml", 600, "geoip: geo.mmdb\n",
              "    stages:\n      - {name: bj, regions: [CN-BJ]}\n      - {name: de, regions: [DE]}\n");
    static const char census[] =
        "{\"buckets\": [{\"ver\": \"1.4.0\", \"region\": \"CN-BJ\", \"week\": 70},"
        " {\"ver\": \"1.4.0\", \"plat\": \"linux\", \"region\": \"DE\", \"week\": 30},"
        " {\"ver\": \"1.4.0\", \"region\": \"DE\", \"week\": 20}, {\"ver\": \"1.4.0\", \"week\": 15}]}";
    tu_write_file(path("census.json"), census, strlen(census));
    char *out = buf(), err[4096];
    cr_assert_eq(sim(out, err, "--policy p.yaml --population census.json --days 0.2 " EXACT " --csv out.csv"), 0, "%s",
                 err);
    csv c;
    csv_load(&c, "out.csv");
    cr_expect_eq(sum(&c, NULL, "offers:bj"), 70);
    cr_expect_eq(sum(&c, NULL, "offers:de"), 50, "DE's two buckets");
    csv_free(&c);
    free(out);
}
