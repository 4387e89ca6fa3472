/* The plugin's entry table: the one exported symbol, and the wiring of create, finish and destroy (where fleet mode is plugged in). */
#include "base/workers.h"
#include "core/control.h"
#include "core/instance.h"
#include "core/rules.h"
#include "fleet/fleet.h"

#ifndef UG_VERSION
#define UG_VERSION "1.1.0"
#endif

/* The policy loaded and its store open, fleet mode gets its say (its sink,
 * its leased slots and what it adds to control; or what a tracker alone
 * says of the fleet), then the policy goes live. */
static void *plugin_create(const ug_host *host, const char *policy_path, char *err, size_t errcap)
{
    ug_inst *I = ug_inst_new(host, err, errcap);
    if (!I)
        return NULL;
    ug_policy *p = ug_inst_open(I, policy_path, err, errcap);
    if (p && ug_fleet_attach(I, p, err, errcap) != 0) {
        ug_policy_free(p);
        p = NULL;
    }
    if (!p || ug_inst_start(I, p, err, errcap) != 0) {
        ug_inst_free(I);
        return NULL;
    }
    return I;
}

static void plugin_destroy(void *inst)
{
    ug_inst_free(inst);
}

static int plugin_finish(void *inst, char *err, size_t errcap)
{
    return ug_inst_finish(inst, err, errcap);
}

/* Who asks, as the history names them: the host itself unless by says
 * otherwise (as far as its size covers). */
static ug_actor actor_of(const ug_caller *by)
{
    if (!by || !UG_HAS_FIELD(ug_caller, by->size, kind) || by->kind == UG_CALLER_HOST)
        return ug_actor_self();
    if (by->kind == UG_CALLER_SIGNAL)
        return (ug_actor){.kind = UG_ACTOR_SIGNAL};
    if (by->kind != UG_CALLER_CONTROL || !UG_HAS_FIELD(ug_caller, by->size, pid))
        return (ug_actor){.kind = by->kind == UG_CALLER_CONTROL ? UG_ACTOR_CONTROL : UG_ACTOR_UNKNOWN};
    return (ug_actor){.kind = UG_ACTOR_CONTROL, .uid = by->uid, .pid = by->pid};
}

static int plugin_reload_by(void *inst, const ug_caller *by, const char *policy_path, char *err, size_t errcap)
{
    ug_inst *I = inst;
    I->caller = actor_of(by); /* reload and control are never concurrent (ABI) */
    int rc = ug_inst_reload(I, policy_path, err, errcap);
    I->caller = ug_actor_self();
    return rc;
}

static int plugin_reload(void *inst, const char *policy_path, char *err, size_t errcap)
{
    return plugin_reload_by(inst, NULL, policy_path, err, errcap);
}

static int plugin_flush(void *inst, unsigned worker)
{
    return ug_inst_flush(inst, worker);
}

static void plugin_tick(void *inst)
{
    ug_inst_tick(inst);
}

static size_t plugin_stats(void *inst, ug_stat *out, size_t cap)
{
    return ug_stats(inst, out, cap);
}

static ug_verdict plugin_handle2(void *inst, unsigned worker, const struct sockaddr *src, socklen_t srclen,
                                 const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len,
                                 unsigned *flags)
{
    (void)srclen;
    unsigned none;
    return ug_rules_handle(inst, worker, src, in, in_len, out, out_cap, out_len, flags ? flags : &none);
}

/* ABI 1.0 hosts treat every reply as waiting for flush(). */
static ug_verdict plugin_handle(void *inst, unsigned worker, const struct sockaddr *src, socklen_t srclen,
                                const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
    return plugin_handle2(inst, worker, src, srclen, in, in_len, out, out_cap, out_len, NULL);
}

static int plugin_decide(void *inst, unsigned worker, const ug_claims *claims, ug_decision *out)
{
    return ug_rules_decide(inst, worker, claims, out);
}

static void plugin_prefetch(void *inst, unsigned worker, uint64_t uid)
{
    ug_rules_prefetch(inst, worker, uid);
}

static void plugin_batch(void *inst, unsigned worker, const ug_batch *b)
{
    ug_inst *I = inst;
    if (!b || !UG_HAS_FIELD(ug_batch, b->size, ctx) || !b->run)
        return;
    if (!I || worker >= I->nworkers) {
        b->run(b->ctx); /* its calls answer as without a batch (decide() refuses the worker) */
        return;
    }
    ug_enter_batch(I, &I->workers[worker], b->run, b->ctx);
}

static int plugin_control_by(void *inst, const ug_caller *by, const char *req, size_t req_len, ug_emit emit,
                             void *ctx)
{
    ug_inst *I = inst;
    I->caller = actor_of(by);
    int rc = ug_control(I, req, req_len, emit, ctx);
    I->caller = ug_actor_self();
    return rc;
}

static int plugin_control(void *inst, const char *req, size_t req_len, ug_emit emit, void *ctx)
{
    return plugin_control_by(inst, NULL, req, req_len, emit, ctx);
}

__attribute__((visibility("default"))) const ug_plugin upgate_plugin = {
    .abi_major = UG_PLUGIN_ABI_MAJOR,
    .abi_minor = UG_PLUGIN_ABI_MINOR,
    .size = sizeof(ug_plugin),
    .name = "upgate",
    .version = UG_VERSION,
    .create = plugin_create,
    .handle = plugin_handle,
    .flush = plugin_flush,
    .tick = plugin_tick,
    .reload = plugin_reload,
    .stats = plugin_stats,
    .destroy = plugin_destroy,
    .handle2 = plugin_handle2,
    .finish = plugin_finish,
    .check = ug_check,
    .decide = plugin_decide,
    .control = plugin_control,
    .control_by = plugin_control_by,
    .reload_by = plugin_reload_by,
    .prefetch = plugin_prefetch,
    .batch = plugin_batch,
};
