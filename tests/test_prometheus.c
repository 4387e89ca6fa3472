/* contrib/prometheus and contrib/grafana held to promtool and to docs/metrics.md (the rules check and pass their unit tests, every alert is tested, every PromQL expression parses and names only documented families), and a real Prometheus scraping a real node. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nodeutil.h"
#include "testutil.h"

#define MAX_FILE (1 << 20)
#define OUT_CAP 65536

static const char *root(void)
{
    return getenv("UG_ROOT") ? getenv("UG_ROOT") : ".";
}

/* A whole file under the tree, NUL-terminated; aborts the test if it
 * cannot be read or passes MAX_FILE. The caller frees it. */
static char *slurp(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root(), rel);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s cannot be read", path);
    char *buf = malloc(MAX_FILE + 1);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    fclose(f);
    cr_assert_leq(n, MAX_FILE, "%s is larger than %d bytes", path, MAX_FILE);
    buf[n] = 0;
    return buf;
}

static void need_promtool(void)
{
    if (tu_run("command -v promtool >/dev/null 2>&1", NULL, 0) != 0)
        cr_skip_test("promtool is not installed (make deps installs the prometheus package)");
}

/* Runs promtool ARGS in contrib/prometheus; its exit status, output in out. */
static int promtool(const char *args, char *out, size_t cap)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s/contrib/prometheus' && promtool %s 2>&1", root(), args);
    return tu_run(cmd, out, cap);
}

/* The families docs/metrics.md lists: each table row's first cell. */
static bool documented(const char *doc, const char *name)
{
    char row[256];
    snprintf(row, sizeof row, "| `%s` |", name);
    return strstr(doc, row) != NULL;
}

/* Every upgate_ name in a PromQL expression is a family of docs/metrics.md;
 * returns how many it named. */
static int check_names(const char *doc, const char *expr, const char *where)
{
    int named = 0;
    for (const char *p = expr; (p = strstr(p, "upgate_")) != NULL;) {
        bool starts = p == expr || !(p[-1] == '_' || p[-1] == ':' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                                     (p[-1] >= 'A' && p[-1] <= 'Z') || (p[-1] >= '0' && p[-1] <= '9'));
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_:");
        char name[128];
        cr_assert_lt(len, sizeof name, "%s: a name too long", where);
        memcpy(name, p, len);
        name[len] = 0;
        if (starts) {
            cr_assert(documented(doc, name), "%s names %s, not a family of docs/metrics.md", where, name);
            named++;
        }
        p += len;
    }
    return named;
}

Test(prometheus, rules_check)
{
    need_promtool();
    char *rules = slurp("contrib/prometheus/upgate.rules.yml"), out[OUT_CAP], want[64];
    int alerts = 0;
    for (const char *p = rules; (p = strstr(p, "- alert: ")) != NULL; p++)
        alerts++;
    cr_assert_geq(alerts, 6, "the rules file has %d alerts", alerts);
    int rc = promtool("check rules upgate.rules.yml", out, sizeof out);
    cr_log_info("%s", out);
    snprintf(want, sizeof want, "SUCCESS: %d rules found", alerts);
    cr_assert(rc == 0 && strstr(out, want), "promtool check rules (exit %d):\n%s", rc, out);
    free(rules);
}

Test(prometheus, rules_unit_tests_pass)
{
    need_promtool();
    char out[OUT_CAP];
    int rc = promtool("test rules upgate.rules.test.yml", out, sizeof out);
    cr_log_info("%s", out);
    cr_assert(rc == 0 && strstr(out, "SUCCESS") && !strstr(out, "FAILED"), "promtool test rules (exit %d):\n%s", rc,
              out);
}

/* Each alert has a quiet case and a firing one in the unit tests. */
Test(prometheus, every_alert_is_tested)
{
    char *rules = slurp("contrib/prometheus/upgate.rules.yml");
    char *tests = slurp("contrib/prometheus/upgate.rules.test.yml");
    const char *want[] = {"UpgateRolloutHalted", "UpgateReleaseFailing", "UpgateRampStalled",
                          "UpgateTrackerDown",   "UpgateTrackerAbsent",  "UpgateFleetRedisLost"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "- alert: %s\n", want[i]);
        cr_assert(strstr(rules, key), "the rules lack %s", want[i]);
    }
    for (const char *p = rules; (p = strstr(p, "- alert: ")) != NULL;) {
        p += strlen("- alert: ");
        char name[128], key[160];
        size_t len = strcspn(p, "\n");
        cr_assert_lt(len, sizeof name);
        memcpy(name, p, len);
        name[len] = 0;
        snprintf(key, sizeof key, "alertname: %s\n", name);
        int cases = 0;
        for (const char *q = tests; (q = strstr(q, key)) != NULL; q++)
            cases++;
        cr_assert_geq(cases, 2, "%s has %d evaluation(s) in the unit tests, not a quiet and a firing one", name, cases);
    }
    free(rules);
    free(tests);
}

/* The rules' expressions name only documented families. */
Test(prometheus, rules_name_documented_families)
{
    char *doc = slurp("docs/metrics.md"), *rules = slurp("contrib/prometheus/upgate.rules.yml");
    cr_assert_gt(check_names(doc, rules, "upgate.rules.yml"), 6);
    free(doc);
    free(rules);
}

/* The dashboard's expressions: every target's, and the template query. */
static size_t dashboard_exprs(json_t *dash, const char **exprs, const char **titles, size_t cap)
{
    size_t n = 0, i, k;
    json_t *panel, *target;
    json_array_foreach(json_object_get(dash, "panels"), i, panel)
    {
        const char *title = json_string_value(json_object_get(panel, "title"));
        cr_assert_not_null(title, "panel %zu has no title", i);
        cr_assert_gt(json_array_size(json_object_get(panel, "targets")), 0, "panel %s has no query", title);
        json_array_foreach(json_object_get(panel, "targets"), k, target)
        {
            const char *e = json_string_value(json_object_get(target, "expr"));
            cr_assert(e && *e, "panel %s: a target without expr", title);
            cr_assert_lt(n, cap);
            titles[n] = title;
            exprs[n++] = e;
        }
    }
    return n;
}

static json_t *load_dashboard(void)
{
    char path[4096];
    json_error_t err;
    snprintf(path, sizeof path, "%s/contrib/grafana/upgate.json", root());
    json_t *dash = json_load_file(path, 0, &err);
    cr_assert_not_null(dash, "%s:%d: %s", path, err.line, err.text);
    return dash;
}

/* Offers per minute per stage, the outcomes, percent in force, quota left,
 * WAIT reasons: each has its family in some panel, and no panel names a
 * family docs/metrics.md does not list. */
Test(grafana, dashboard_names_documented_families)
{
    char *doc = slurp("docs/metrics.md");
    json_t *dash = load_dashboard();
    const char *exprs[64], *titles[64];
    size_t n = dashboard_exprs(dash, exprs, titles, 64);
    cr_assert_geq(n, 5);
    for (size_t i = 0; i < n; i++)
        check_names(doc, exprs[i], titles[i]);
    const char *q = json_string_value(
        json_object_get(json_object_get(json_array_get(json_object_get(json_object_get(dash, "templating"), "list"), 1),
                                        "query"),
                        "query"));
    cr_assert_not_null(q, "the rollout variable has no query");
    cr_assert_eq(check_names(doc, q, "the rollout variable"), 1);
    const char *need[] = {"upgate_stage_offers_total", "upgate_stage_outcomes", "upgate_stage_percent",
                          "upgate_stage_quota_left", "upgate_stage_waits_total"};
    for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strstr(exprs[i], need[k]) != NULL;
        cr_assert(found, "no panel shows %s", need[k]);
    }
    json_decref(dash);
    free(doc);
}

/* Every panel's PromQL parses: promtool checks them as recording rules,
 * the $rollout variable standing for what "All" gives. */
Test(grafana, dashboard_promql_parses)
{
    need_promtool();
    json_t *dash = load_dashboard();
    const char *exprs[64], *titles[64];
    size_t n = dashboard_exprs(dash, exprs, titles, 64);
    char path[4096], out[OUT_CAP], cmd[8192];
    snprintf(path, sizeof path, "%s/panels.rules.yml", tu_tmpdir());
    json_t *rules = json_array();
    for (size_t i = 0; i < n; i++) {
        char e[4096], rec[64];
        size_t o = 0;
        for (const char *p = exprs[i]; *p && o + 3 < sizeof e;) {
            if (strncmp(p, "$rollout", 8) == 0) {
                memcpy(e + o, ".*", 2);
                o += 2;
                p += 8;
            } else {
                e[o++] = *p++;
            }
        }
        cr_assert_lt(o + 3, sizeof e, "%s: an expression too long", titles[i]);
        e[o] = 0;
        snprintf(rec, sizeof rec, "upgate_panel_%zu", i);
        json_array_append_new(rules, json_pack("{s:s, s:s}", "record", rec, "expr", e));
    }
    /* JSON is YAML: promtool reads the file as it is written here. */
    json_t *file = json_pack("{s:[{s:s, s:o}]}", "groups", "name", "upgate-dashboard", "rules", rules);
    cr_assert_eq(json_dump_file(file, path, JSON_INDENT(1)), 0);
    snprintf(cmd, sizeof cmd, "promtool check rules '%s' 2>&1", path);
    int rc = tu_run(cmd, out, sizeof out);
    char want[64];
    snprintf(want, sizeof want, "SUCCESS: %zu rules found", n);
    cr_assert(rc == 0 && strstr(out, want), "the dashboard's PromQL (exit %d):\n%s", rc, out);
    json_decref(file);
    json_decref(dash);
}

/* ---- a real Prometheus against a real node ------------------------------------- */

static nu_node N;
static pid_t prom;
static unsigned prom_port;

static void live_fini(void)
{
    if (prom > 0) { /* SIGTERM, 10 s to close its TSDB, then SIGKILL */
        kill(prom, SIGTERM);
        int st;
        for (int i = 0; i < 100 && waitpid(prom, &st, WNOHANG) == 0; i++)
            nu_sleep_ms(100);
        if (kill(prom, 0) == 0) {
            kill(prom, SIGKILL);
            waitpid(prom, &st, 0);
        }
        prom = 0;
    }
    if (N.pid > 0)
        nu_stop(&N, SIGKILL);
}

TestSuite(prometheus_live, .fini = live_fini, .timeout = 120);

/* Starts prometheus on a free loopback port, scraping target every second,
 * its TSDB and log in the node's temp dir; waits (at most 30 s) until it
 * is ready. Killed with the test (PR_SET_PDEATHSIG) if the test dies. */
static void start_prometheus(unsigned target)
{
    char conf[8192];
    int len = snprintf(conf, sizeof conf,
                       "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                       "rule_files: ['%s/contrib/prometheus/upgate.rules.yml']\n"
                       "scrape_configs:\n  - job_name: upgate\n    static_configs:\n"
                       "      - targets: ['127.0.0.1:%u']\n",
                       root(), target);
    cr_assert_lt((size_t)len, sizeof conf);
    tu_write_file(nu_path(&N, "prometheus.yml"), conf, (size_t)len);
    prom_port = tu_free_port(SOCK_STREAM);
    static char a_conf[512], a_tsdb[512], a_listen[128], log[512];
    snprintf(a_conf, sizeof a_conf, "--config.file=%s", nu_path(&N, "prometheus.yml"));
    snprintf(a_tsdb, sizeof a_tsdb, "--storage.tsdb.path=%s", nu_path(&N, "tsdb"));
    snprintf(a_listen, sizeof a_listen, "--web.listen-address=127.0.0.1:%u", prom_port);
    snprintf(log, sizeof log, "%s", nu_path(&N, "prometheus.log"));
    prom = fork();
    cr_assert_neq(prom, -1);
    if (prom == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("prometheus", "prometheus", a_conf, a_tsdb, a_listen, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 300; i++) {
        if (nu_sh("curl -sf -o /dev/null http://127.0.0.1:%u/-/ready", prom_port) == 0)
            return;
        cr_assert_eq(waitpid(prom, NULL, WNOHANG), 0, "prometheus exited (%s)", log);
        nu_sleep_ms(100);
    }
    cr_assert_fail("prometheus not ready in 30 s (%s)", log);
}

/* The value of an instant query's first sample; false when it has none. */
static bool query(const char *promql, double *value)
{
    char cmd[2048], out[OUT_CAP];
    snprintf(cmd, sizeof cmd, "curl -sf --max-time 5 http://127.0.0.1:%u/api/v1/query --data-urlencode 'query=%s'",
             prom_port, promql);
    if (tu_run(cmd, out, sizeof out) != 0)
        return false;
    json_t *r = json_loads(out, 0, NULL);
    const char *v = json_string_value(json_array_get(
        json_object_get(json_array_get(json_object_get(json_object_get(r, "data"), "result"), 0), "value"), 1));
    bool ok = v != NULL;
    if (ok)
        *value = strtod(v, NULL);
    json_decref(r);
    return ok;
}

/* Polls promql (at most 30 s) until its value is at least min; the last value. */
static double await(const char *promql, double min)
{
    double v = -1;
    for (int i = 0; i < 150; i++) {
        if (query(promql, &v) && v >= min)
            return v;
        nu_sleep_ms(200);
    }
    cr_assert_fail("%s: %g after 30 s, waited for %g", promql, v, min);
    return v;
}

/* The alerting rules Prometheus evaluated without an error (at most 30 s
 * for each to be evaluated once). */
static void rules_healthy(void)
{
    char cmd[512], out[OUT_CAP];
    snprintf(cmd, sizeof cmd, "curl -sf --max-time 5 http://127.0.0.1:%u/api/v1/rules", prom_port);
    size_t ok = 0, n = 0;
    for (int t = 0; t < 150 && (ok < n || !n); t++, nu_sleep_ms(200)) {
        if (tu_run(cmd, out, sizeof out) != 0)
            continue;
        json_t *r = json_loads(out, 0, NULL), *g, *rule;
        size_t i, k;
        ok = n = 0;
        json_array_foreach(json_object_get(json_object_get(r, "data"), "groups"), i, g)
        {
            json_array_foreach(json_object_get(g, "rules"), k, rule)
            {
                const char *h = json_string_value(json_object_get(rule, "health"));
                cr_assert(!h || strcmp(h, "err"), "rule %s: %s", json_string_value(json_object_get(rule, "name")),
                          json_string_value(json_object_get(rule, "lastError")));
                n++;
                ok += h && !strcmp(h, "ok");
            }
        }
        json_decref(r);
    }
    cr_assert(n >= 6 && ok == n, "%zu of %zu rules evaluated: %s", ok, n, out);
}

/* upgate-peer for uid declines the offer it gets; aborts unless it exits 0. */
static void peer(uint64_t uid)
{
    const char *b = tu_build_dir();
    char out[4096], cmd[4096];
    cr_assert_eq(nu_sh("cd %s && %s/upgate-keys cred --issuer issuer.key --uid %llu --pub client.pub --ttl 3600 "
                       "--out c%llu.cred >/dev/null",
                       N.dir, b, (unsigned long long)uid, (unsigned long long)uid),
                 0);
    snprintf(cmd, sizeof cmd,
             "cd %s && %s/upgate-peer --tracker 127.0.0.1:%u --uid %llu --version 1.4.0 --key client.key "
             "--cred c%llu.cred --hint-pub hint.pub --release-pub release.pub --timeout 10 --no </dev/null 2>&1",
             N.dir, b, N.port, (unsigned long long)uid, (unsigned long long)uid);
    cr_assert_eq(tu_run(cmd, out, sizeof out), 0, "upgate-peer %llu: %s", (unsigned long long)uid, out);
}

/* An instant query's every sample as "{k=v,...} value; ..." into buf; how
 * many samples it gave, -1 when the query failed. */
static int query_all(const char *promql, char *buf, size_t cap)
{
    char cmd[8192], out[OUT_CAP];
    snprintf(cmd, sizeof cmd, "curl -sf --max-time 5 http://127.0.0.1:%u/api/v1/query --data-urlencode 'query=%s'",
             prom_port, promql);
    buf[0] = 0;
    if (tu_run(cmd, out, sizeof out) != 0)
        return -1;
    json_t *r = json_loads(out, 0, NULL), *sample;
    json_t *res = json_object_get(json_object_get(r, "data"), "result");
    size_t i, at = 0;
    json_array_foreach(res, i, sample)
    {
        const char *k;
        json_t *v;
        at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, "%s{", i ? "; " : "");
        bool first = true;
        json_object_foreach(json_object_get(sample, "metric"), k, v)
        {
            at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, "%s%s=%s", first ? "" : ",", k,
                                   json_string_value(v) ? json_string_value(v) : "?");
            first = false;
        }
        const char *val = json_string_value(json_array_get(json_object_get(sample, "value"), 1));
        at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, "} %s", val ? val : "?");
    }
    int n = json_is_array(res) ? (int)json_array_size(res) : -1;
    json_decref(r);
    return n;
}

/* Each Grafana panel's query through the HTTP API, "$rollout" as "All"
 * gives it: every one answers with samples after the small rollout, and
 * build/prometheus-panels.txt gets "panel | query | value" per query (the
 * issue's note quotes them). */
static void panels_answer(void)
{
    json_t *dash = load_dashboard();
    const char *exprs[64], *titles[64];
    size_t n = dashboard_exprs(dash, exprs, titles, 64);
    char path[4096], *text = malloc(MAX_FILE);
    cr_assert_not_null(text);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        char e[4096], vals[8192];
        size_t o = 0;
        for (const char *p = exprs[i]; *p && o + 3 < sizeof e;)
            if (strncmp(p, "$rollout", 8) == 0)
                memcpy(e + o, ".*", 2), o += 2, p += 8;
            else
                e[o++] = *p++;
        e[o] = 0;
        int got = -1;
        for (int t = 0; t < 50 && (got = query_all(e, vals, sizeof vals)) <= 0; t++)
            nu_sleep_ms(200); /* a rate over 5m wants two samples of the series */
        at += (size_t)snprintf(text + at, MAX_FILE - at, "%s | %s | %s\n", titles[i], e, got > 0 ? vals : "(none)");
        cr_assert_gt(got, 0, "panel %s: %s gave no sample (%d)", titles[i], e, got);
    }
    snprintf(path, sizeof path, "%s/prometheus-panels.txt", tu_build_dir());
    tu_write_file(path, text, at);
    cr_log_info("%s", text);
    free(text);
    json_decref(dash);
}

#define OFFERS "sum(upgate_stage_offers_total{job=\"upgate\",kind=\"new\"})"

/* A node with a small rollout, scraped each second: Prometheus sees the
 * offers counter rise by the peers that came, and rate() of it is above 0;
 * it evaluates contrib/prometheus's rules against the node without error. */
Test(prometheus_live, rate_of_offers_through_the_http_api)
{
    if (tu_run("command -v prometheus >/dev/null 2>&1", NULL, 0) != 0)
        cr_skip_test("prometheus is not installed (make deps installs it)");
    nu_init(&N, "stages:\n  - {name: all, quota: 100, percent: 100}\n"); /* every panel has a series */
    const char *extra[] = {"--metrics", "127.0.0.1:0", NULL};
    nu_start(&N, extra, NULL);
    const char *m = strstr(N.ready, "metrics on 127.0.0.1:");
    cr_assert(m, "%s", N.ready);
    start_prometheus((unsigned)strtoul(m + 21, NULL, 10));
    await("up{job=\"upgate\"}", 1);
    /* two peers first, so the series is scraped before the rest arrive:
     * rate() needs the counter to rise between samples it holds */
    for (uint64_t uid = 1; uid <= 2; uid++)
        peer(uid);
    cr_assert_eq(await(OFFERS, 2), 2);
    for (uint64_t uid = 3; uid <= 5; uid++)
        peer(uid);
    cr_assert_eq(await(OFFERS, 5), 5, "Prometheus counts 5 new offers");
    double rate = await("sum(rate(upgate_stage_offers_total{job=\"upgate\",kind=\"new\"}[1m]))", 1e-9);
    cr_log_info("rate(upgate_stage_offers_total{kind=\"new\"}[1m]) = %g per second", rate);
    cr_assert_gt(rate, 0);
    double declined = await("sum(upgate_stage_reports_total{job=\"upgate\",result=\"declined\"})", 5);
    cr_assert_eq(declined, 5, "the 5 declines reported");
    rules_healthy();
    panels_answer();
}
