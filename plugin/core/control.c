/* Control (docs/control.md): one JSON request in, one reply out; the dispatch of a request to its command. */
#include <string.h>

#include "core/ctl_impl.h"

#define REQ_MAX (64u << 10)

typedef struct {
    const char *cmd;
    const char *members; /* allowed besides "cmd", space separated */
    int (*run)(ug_inst *I, json_t *req, ug_emit emit, void *ctx);
} ug_command;

static const ug_command commands[] = {
    {"status", "", ug_ctl_status},
    {"info", "", ug_ctl_info},
    {"pause", "rollout all", ug_ctl_pause},
    {"resume", "rollout all", ug_ctl_resume},
    {"halt", "rollout all why", ug_ctl_halt},
    {"reload", "", ug_ctl_reload},
    {"explain", "uid ver src plat chan", ug_ctl_explain},
    {"grants", "rollout stage", ug_ctl_grants},
    {"history", "", ug_ctl_history},
    {"metrics", "", ug_ctl_metrics},
};

/* The command an add-on added under cmd, or NULL. */
static const ug_ctl_ext *added(const ug_inst *I, const char *cmd)
{
    const ug_ctl_ext *x = I->ctl_ext;
    return cmd && x && x->cmd && x->run && strcmp(x->cmd, cmd) == 0 ? x : NULL;
}

int ug_control(ug_inst *I, const char *req, size_t len, ug_emit emit, void *ctx)
{
    if (len > REQ_MAX)
        return ug_ctl_refuse(emit, ctx, "request of %zu bytes, over the %u-byte limit", len, REQ_MAX);
    json_error_t je;
    json_t *o = json_loadb(req, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return ug_ctl_refuse(emit, ctx, "not a JSON object: %s", o ? "another JSON value" : je.text);
    }
    const char *cmd = json_string_value(json_object_get(o, "cmd"));
    const ug_command *c = NULL;
    for (size_t i = 0; cmd && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].cmd, cmd) == 0)
            c = &commands[i];
    const ug_ctl_ext *x = c ? NULL : added(I, cmd);
    const char *ext = I->ctl_ext && I->ctl_ext->cmd && I->ctl_ext->run ? I->ctl_ext->cmd : NULL;
    int rc;
    const char *key;
    json_t *val;
    if (!c && !x) {
        rc = ug_ctl_refuse(emit, ctx, "unknown command %s (want status, pause, resume, halt, reload, explain, grants, "
                                      "history, metrics%s%s)", cmd ? cmd : "(no \"cmd\" string)", ext ? ", " : "",
                           ext ? ext : "");
        goto out;
    }
    json_object_foreach(o, key, val)
    {
        if (strcmp(key, "cmd") != 0 && !ug_ctl_member_ok(c ? c->members : x->members, key)) {
            rc = ug_ctl_refuse(emit, ctx, "%s: unknown member \"%.64s\"", cmd, key);
            goto out;
        }
    }
    rc = c ? c->run(I, o, emit, ctx) : x->run(x->ctx, I, o, emit, ctx);
out:
    json_decref(o);
    return rc;
}
