/* upgate-node --check: the summary as text or JSON, explain, exit codes, and the fallback without check(). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "nodeutil.h"
#include "render.h"
#include "testutil.h"

static nu_node N;

TestSuite(node_check, .timeout = 60);

/* Runs upgate-node --check with args; exit code, stdout in out, stderr in err. */
static int check(const char *args, char *out, size_t cap, char *err, size_t errcap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s && %s/upgate-node --check --policy policy.yaml %s 2>check.err", N.dir,
             tu_build_dir(), args);
    int rc = tu_run(cmd, out, cap);
    snprintf(cmd, sizeof cmd, "cat %s/check.err", N.dir);
    tu_run(cmd, err, errcap);
    return rc;
}

Test(node_check, plugin_without_check_says_so)
{
    if (NU_REAL_HAS(check))
        cr_skip_test("the plugin has check(): the fallback is tested with the ABI 1.0 stand-in");
    nu_init(&N, "stages:\n  - {name: all}\n");
    char out[4096], err[4096];
    cr_assert_eq(check("", out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "has no check()"), "%s", err);
}

Test(node_check, abi_1_0_plugin_cannot_check)
{
    nu_init(&N, "");
    char args[512], out[4096], err[4096];
    snprintf(args, sizeof args, "--plugin %s", nu_hostplug(&N, "old", "-DMINOR0"));
    nu_plug_policy(&N, "");
    cr_assert_eq(check(args, out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "upgate-node: --check: the plugin") && strstr(err, "has no check()"), "%s", err);
    cr_assert_str_eq(out, "");
}

Test(node_check, summary_as_text_and_as_json)
{
    nu_init(&N, "");
    char args[512], out[16384], err[4096];
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    snprintf(args, sizeof args, "--plugin %s", so);
    cr_assert_eq(check(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    static const char *const want[] = {
        "rollout default\n", "  targets: 1.4.0, <1.3\n", "  channels: stable\n",
        "  manifest: release 2.0.0, 100000 bytes\n", "    signed by key: 0123456789abcdef\n",
        "    expires: 2026-09-21T", "    mirror 0: http://a.example/app.bin\n", "  stage canary\n",
        "    when uids [1001, 1002]\n", "    quota: 100\n", "    rate: 2.5\n", "  stage all\n",
        "    when: everyone\n", "    start: 2026-09-21T", "    percent: 1.5\n", "    shiny: new member\n",
        "hint key: fedcba9876543210\n", "issuer keys: 1111111111111111\n", "1 warning\n",
        "  warning: stage all: no quota\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(out, want[i]), "missing %s in:\n%s", want[i], out);
    cr_assert_null(strstr(out, "platforms"), "a null member is not shown:\n%s", out);
    cr_assert(strstr(err, "upgate-node: warning: stage all: no quota\n"), "warnings on stderr too: %s", err);

    snprintf(args, sizeof args, "--plugin %s --json", so);
    cr_assert_eq(check(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert(json_is_object(j), "--json prints the plugin's JSON: %s", je.text);
    cr_assert_eq(json_array_size(json_object_get(j, "rollouts")), 1);
    json_decref(j);
    cr_assert(strstr(err, "warning: stage all: no quota"), "%s", err);
}

Test(node_check, explain_and_usage)
{
    nu_init(&N, "");
    char args[512], out[16384], err[4096];
    const char *so = nu_hostplug(&N, "plug", "");
    nu_plug_policy(&N, "");
    snprintf(args, sizeof args, "--plugin %s --explain uid=5,ver=1.4.0,src=10.0.0.1,chan=beta", so);
    cr_assert_eq(check(args, out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "explain\n  answer: wait (not_selected)\n"), "%s", out);
    cr_assert(strstr(out, "    stage canary: does not select\n      uids [1001, 1002]: does not hold\n"), "%s", out);
    cr_assert(strstr(out, "asked: uid=5,ver=1.4.0,src=10.0.0.1,chan=beta"), "the plugin got the text: %s", out);

    static const char *const bad[] = {
        "--explain uid=5,ver=1.4.0",           "--explain uid=x,ver=1.4.0,src=10.0.0.1",
        "--explain uid=5,ver=1.x,src=1.2.3.4", "--explain uid=5,ver=1,src=nowhere",
        "--explain uid=5,ver=1,src=::1,os=x",  "--explain uid=5,uid=6,ver=1,src=::1",
        "--explain uid=5,,ver=1,src=::1",      "--bogus",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "--plugin %s %s", so, bad[i]);
        cr_assert_eq(check(args, out, sizeof out, err, sizeof err), 2, "%s: %s", bad[i], err);
    }
    snprintf(args, sizeof args, "%s/upgate-node --json --policy x 2>&1", tu_build_dir());
    cr_assert_eq(tu_run(args, out, sizeof out), 2, "--json without --check: %s", out);
    snprintf(args, sizeof args, "%s/upgate-node --check 2>&1", tu_build_dir());
    cr_assert_eq(tu_run(args, out, sizeof out), 2, "--check without --policy: %s", out);
}

Test(node_check, invalid_policy_exits_1_with_one_line)
{
    nu_init(&N, "");
    char args[512], out[4096], err[4096];
    snprintf(args, sizeof args, "--plugin %s", nu_hostplug(&N, "plug", ""));
    nu_plug_policy(&N, "invalid=1\n");
    cr_assert_eq(check(args, out, sizeof out, err, sizeof err), 1);
    cr_assert_str_eq(out, "", "nothing on stdout");
    cr_assert(strstr(err, "policy.yaml:1: invalid: refused on purpose\n"), "%s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
}

/* With the real plugin's check() (once it has one). */
Test(node_check, real_plugin_checks_a_policy_without_serving)
{
    if (!NU_REAL_HAS(check))
        cr_skip_test("the plugin has no check() yet (ABI 1.0 table or NULL entry)");
    nu_init(&N, "stages:\n  - {name: canary, uids: [1001, 1002], quota: 10}\n");
    char out[16384], err[4096];
    cr_assert_eq(check("--listen 127.0.0.1:1", out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "rollout default") && strstr(out, "stage canary"), "%s", out);
    cr_assert_neq(nu_sh("test -e %s/state", N.dir), 0, "no state folder made: nothing opened for writing");
    cr_assert_eq(check("--json", out, sizeof out, err, sizeof err), 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(json_is_array(json_object_get(j, "rollouts")), "%s", out);
    json_decref(j);
    cr_assert_eq(check("--explain uid=1001,ver=1.4.0,src=127.0.0.1", out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "answer"), "%s", out);
    nu_policy(&N, "stages:\n  - {name: Bad_Name}\n");
    cr_assert_eq(check("", out, sizeof out, err, sizeof err), 1);
    cr_assert(strstr(err, "policy.yaml:"), "%s", err);
}

/* ---- the renderer alone (upgate-ctl will reuse it) ------------------ */

static char *render(const char *json, int *rc)
{
    static char buf[8192];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    char err[256] = "";
    *rc = ug_render_check(json, strlen(json), f, NULL, err, sizeof err);
    fclose(f);
    return *rc ? strcpy(buf, err) : buf;
}

Test(node_check, render_shows_unknown_members_and_refuses_non_objects)
{
    int rc;
    const char *t = render("{\"rollouts\":[],\"warnings\":[],\"policy_version\":2,\"fleet\":{\"peers\":[\"a\",\"b\"],"
                           "\"on\":true}}",
                           &rc);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(t, "policy_version: 2\n"), "%s", t);
    cr_assert(strstr(t, "fleet: {peers: a, b, on: yes}\n"), "%s", t);
    cr_assert(strstr(t, "0 warnings\n"), "%s", t);
    t = render("[1]", &rc);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(t, "not one JSON object"), "%s", t);
    t = render("{\"rollouts\":[{\"name\":\"r\",\"manifest\":{\"to\":\"2.0\",\"expires\":0}}],\"warnings\":[]}", &rc);
    cr_assert(strstr(t, "expires: 1970-01-01T00:00:00Z"), "%s", t);
}

/* --check --user NAME: what a reload as NAME (after the node or host
 * dropped to it) could read. A file that is a link out of its folder is
 * refused then (the opener opens names beneath the folders it holds): the
 * check names it and exits 1; the same policy without the link is ok. */
Test(node_check, user_names_what_a_reload_as_that_user_could_not_read)
{
    nu_init(&N, "stages:\n  - {name: all}\n");
    char out[16384], err[4096];
    cr_assert_eq(check("--user nobody", out, sizeof out, err, sizeof err), 0, "%s", err);
    cr_assert(strstr(out, "reload as nobody: ok"), "%s", out);
    cr_assert_eq(check("--user nobody --json", out, sizeof out, err, sizeof err), 0, "%s", err);
    json_t *j = json_loads(out, 0, NULL), *p = json_object_get(j, "privileges");
    cr_assert(json_is_object(p), "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(p, "user")), "nobody");
    cr_assert_eq(json_array_size(json_object_get(p, "fails")), 0, "%s", out);
    cr_assert_geq(json_array_size(json_object_get(p, "folders")), 1, "%s", out);
    json_decref(j);
    const char *elsewhere = tu_tmpdir();
    cr_assert_eq(nu_sh("cd %s && mv release.manifest %s/ && ln -s %s/release.manifest release.manifest", N.dir,
                       elsewhere, elsewhere),
                 0);
    cr_assert_eq(check("--user nobody", out, sizeof out, err, sizeof err), 1, "%s", out);
    cr_assert(strstr(err, "a reload as nobody could not read") && strstr(err, "release.manifest") &&
              strstr(err, "link out of its folder"), "%s", err);
    cr_assert_eq(check("", out, sizeof out, err, sizeof err), 0, "without --user the policy is valid: %s", err);
    cr_assert_eq(check("--user no-such-user-here", out, sizeof out, err, sizeof err), 2);
    cr_assert(strstr(err, "no such user"), "%s", err);
}
