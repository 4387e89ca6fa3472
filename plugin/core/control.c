/* Control (docs/control.md): one JSON request in, one reply out; the dispatch of a request to its command. */
#include <string.h>

#include "core/ctl_impl.h"

#define REQ_MAX (64u << 10)

typedef struct {
    const char *cmd;
    int (*run)(ug_inst *I, json_t *req, ug_emit emit, void *ctx); /* NULL: an add-on's (ug_ctl_ext) */
} ug_command;

/* The commands the plugin answers (control.def; their members: ug_ctl_members): the core's, and those an add-on may. */
#define ROW_CORE(name) {#name, ug_ctl_##name},
#define ROW_HOST(name) {#name, ug_ctl_##name},
#define ROW_ADDON(name) {#name, NULL},
#define ROW_CTL(name)
static const ug_command commands[] = {
#define UG_CONTROL(name, who, members, min, max, flags, usage, help) ROW_##who(name)
#include "control.def"
#undef UG_CONTROL
};

static const ug_command *command(const char *cmd)
{
    for (size_t i = 0; cmd && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].cmd, cmd) == 0)
            return &commands[i];
    return NULL;
}

/* The add-on that answers c, or NULL. */
static const ug_ctl_ext *added(const ug_inst *I, const ug_command *c)
{
    const ug_ctl_ext *x = I->ctl_ext;
    return c && !c->run && x && x->cmd && x->run && strcmp(x->cmd, c->cmd) == 0 ? x : NULL;
}

/* "status, info, ...": the commands this instance answers. */
static void answered(const ug_inst *I, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (!commands[i].run && !added(I, &commands[i]))
            continue;
        int n = snprintf(out + at, cap - at, "%s%s", at ? ", " : "", commands[i].cmd);
        if (n < 0 || (size_t)n >= cap - at)
            return;
        at += (size_t)n;
    }
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
    const ug_command *c = command(cmd);
    const ug_ctl_ext *x = added(I, c);
    int rc;
    const char *key;
    json_t *val;
    if (!c || (!c->run && !x)) {
        char want[256];
        answered(I, want, sizeof want);
        rc = ug_ctl_refuse(emit, ctx, "unknown command %s (want %s)", cmd ? cmd : "(no \"cmd\" string)", want);
        goto out;
    }
    json_object_foreach(o, key, val)
    {
        if (strcmp(key, "cmd") != 0 && !ug_ctl_member_ok(ug_ctl_members(c->cmd), key)) {
            rc = ug_ctl_refuse(emit, ctx, "%s: unknown member \"%.64s\"", cmd, key);
            goto out;
        }
    }
    rc = c->run ? c->run(I, o, emit, ctx) : x->run(x->ctx, I, o, emit, ctx);
out:
    json_decref(o);
    return rc;
}
