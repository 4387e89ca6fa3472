/* upgate-node --check: validate a policy through the plugin's check(), without serving. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "common.h"
#include "explain_arg.h"
#include "node.h"
#include "render.h"

#define SUMMARY_MAX (16u << 20)

void ug_check_explain_syntax(const char *explain)
{
    char err[300];
    if (ug_explain_arg(explain, NULL, err, sizeof err) != 0)
        ug_usage_error("--explain: %s", err);
}

static void check_log(void *ctx, ug_log_level level, const char *msg)
{
    (void)ctx;
    static const char *const names[] = {"error: ", "warning: ", "", "debug: "};
    fprintf(stderr, "%s: %s%s\n", ug_prog, names[level <= UG_LOG_DEBUG ? level : UG_LOG_DEBUG], msg);
}

static uint64_t check_now(void *ctx)
{
    (void)ctx;
    return ug_now();
}

/* The warnings of the summary on stderr, for --json (the text rendering prints its own). */
static void warnings_to_stderr(const char *json, size_t len)
{
    json_t *j = json_loadb(json, len, 0, NULL);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(j, "warnings"), i, w)
    {
        fprintf(stderr, "%s: warning: ", ug_prog);
        ug_render_value(w, stderr);
        fputc('\n', stderr);
    }
    json_decref(j);
}

/* --user NAME: the summary's "privileges" says which files a reload as
 * NAME could not read; each is an error line, and the exit code 1. */
static int privileges(const char *json, size_t len, const char *user, bool text)
{
    json_t *j = json_loadb(json, len, 0, NULL), *p = json_object_get(j, "privileges");
    int code = UG_EXIT_OK;
    if (!json_is_object(p)) {
        code = ug_complain(UG_EXIT_FAIL, "--user %s: the plugin does not say what a reload as %s could read "
                                         "(it needs ABI 1.2)", user, user);
    } else {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(p, "fails"), i, f)
        code = ug_complain(UG_EXIT_FAIL, "--user %s: a reload as %s could not read %s: %s", user, user,
                           json_string_value(json_object_get(f, "file")),
                           json_string_value(json_object_get(f, "why")));
        if (text && code == UG_EXIT_OK)
            printf("reload as %s: ok (upgate's opener keeps %zu folders open for it)\n", user,
                   json_array_size(json_object_get(p, "folders")));
    }
    json_decref(j);
    return code;
}

int ug_check_run(const char *plugin_path, const char *policy, const char *explain, bool json, const char *user)
{
    struct passwd *pw = user ? getpwnam(user) : NULL;
    if (user && !pw)
        return ug_complain(UG_EXIT_USAGE, "--user %s: no such user", user);
    const ug_plugin *api = ug_node_load(plugin_path);
    int (*check)(const ug_host *, const char *, const char *, ug_emit, void *, char *, size_t) =
        UG_ENTRY(api, check);
    if (!check)
        return ug_complain(UG_EXIT_FAIL, "--check: the plugin %s (%s %s, ABI %u.%u) has no check(); it cannot "
                                         "validate a policy without serving", plugin_path, api->name,
                           api->version, api->abi_major, api->abi_minor);
    ug_host host = {.size = sizeof host, .log = check_log, .now = check_now, .nworkers = 1,
                    .flags = user ? UG_HF_DROPS_PRIVILEGES : 0, .run_as = user};
    ug_buf out = {.max = SUMMARY_MAX};
    char err[1024] = "";
    int rc = check(&host, policy, explain, ug_buf_emit, &out, err, sizeof err);
    if (rc != 0) {
        ug_buf_free(&out);
        return ug_complain(UG_EXIT_FAIL, "%s", err[0] ? err : "the policy is not valid (the plugin said no more)");
    }
    if (ug_buf_finish(&out) != 0) {
        ug_buf_free(&out);
        return ug_complain(UG_EXIT_FAIL, "--check: the plugin's summary is over %u bytes", SUMMARY_MAX);
    }
    int code = UG_EXIT_OK;
    if (json) {
        fwrite(out.data, 1, out.len, stdout);
        if (!out.len || out.data[out.len - 1] != '\n')
            fputc('\n', stdout);
        warnings_to_stderr(out.data, out.len);
    } else if (ug_render_check(out.data, out.len, stdout, stderr, err, sizeof err) != 0) {
        code = ug_complain(UG_EXIT_FAIL, "--check: %s", err);
    }
    if (user && code == UG_EXIT_OK)
        code = privileges(out.data, out.len, user, !json);
    ug_buf_free(&out);
    if (fflush(stdout) != 0)
        code = ug_complain(UG_EXIT_FAIL, "cannot write the summary");
    return code;
}
