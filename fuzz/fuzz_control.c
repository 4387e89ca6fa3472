/* libFuzzer harness: control requests (docs/control.md) into the real plugin through control(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "upgate_plugin.h"

/* Linked in statically, so the plugin's code is instrumented. */
extern const ug_plugin upgate_plugin;
static const ug_plugin *const api = &upgate_plugin;

/*
 * The input is one request, as a client would write it on the socket.
 * Invariants: control() never crashes, hangs or leaks; every reply but the
 * metrics one is exactly one JSON object with "ok" agreeing with the return
 * value, and "error" a one-line string when not ok; after any sequence of
 * requests the instance still answers a HELLO and a status.
 */

static fz_keys K;
static void *inst;
static uint64_t clock_now = FZ_NOW;

static const char policy[] =
    "keys: {hint: hint.key, issuers: [issuer.pub]}\n"
    "state: state\n"
    "rollouts:\n"
    "  - name: desk\n"
    "    release: release.manifest\n"
    "    targets: [\"1.4.2\", \"<1.0\"]\n"
    "    halt_when: {failed: 0.5, min_outcomes: 10}\n"
    "    stages:\n"
    "      - {name: canary, uids: [4242, 77], quota: 5}\n"
    "      - {name: ramp, percent: {from: 1, to: 50, start: 2026-01-01T00:00:00Z, end: 2027-01-01T00:00:00Z}}\n"
    "  - name: other\n"
    "    release: release.manifest\n"
    "    targets: [\"0.9\"]\n"
    "    stages: [{name: all, rate: 3}, {name: gated, percent: [{at: 2020-01-01T00:00:00Z, percent: 1},\n"
    "             {at: 2020-01-02T00:00:00Z, percent: 5, gate: manual}]}]\n";

typedef struct {
    char *buf;
    size_t n, cap;
} text;

static void emit(void *ctx, const char *data, size_t len)
{
    text *t = ctx;
    if (t->n + len + 1 > t->cap) {
        size_t cap = (t->n + len + 1) * 2;
        char *b = realloc(t->buf, cap);
        FZ_CHECK(b != NULL, "realloc");
        t->buf = b, t->cap = cap;
    }
    memcpy(t->buf + t->n, data, len);
    t->n += len;
    t->buf[t->n] = 0;
}

static uint64_t host_now(void *ctx)
{
    (void)ctx;
    return clock_now;
}

static void host_log(void *ctx, ug_log_level lvl, const char *msg)
{
    (void)ctx;
    FZ_CHECK((unsigned)lvl <= UG_LOG_DEBUG && msg && strchr(msg, '\n') == NULL, "log line");
}

static void done(void)
{
    if (inst)
        api->destroy(inst);
    inst = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_keys_init(&K);
    const char *dir = fz_tmpdir("control");
    uint8_t manifest[UG_OBJ_MAX];
    (void)fz_write_release(dir, &K, manifest, sizeof manifest);
    fz_write(dir, "policy.yaml", policy, strlen(policy));
    char path[300], err[512];
    snprintf(path, sizeof path, "%s/policy.yaml", dir);
    ug_host host = {.size = sizeof host, .log = host_log, .now = host_now, .nworkers = 1};
    inst = api->create(&host, path, err, sizeof err);
    FZ_CHECK(inst != NULL, "create: %s", err);
    atexit(done);
    return 0;
}

static void check_reply(const uint8_t *req, size_t len, int rc, const text *t)
{
    bool metrics = t->n > 0 && t->buf[0] == '#';
    if (metrics) {
        FZ_CHECK(rc == 0, "metrics with rc %d", rc);
        return;
    }
    json_error_t je;
    json_t *o = json_loadb(t->buf, t->n, 0, &je);
    FZ_CHECK(o && json_is_object(o), "reply to %.*s is not one JSON object (%s): %.200s", (int)(len < 80 ? len : 80),
             (const char *)req, je.text, t->buf ? t->buf : "");
    json_t *ok = json_object_get(o, "ok");
    FZ_CHECK(json_is_boolean(ok) && json_is_true(ok) == (rc == 0), "ok %d vs rc %d", json_is_true(ok), rc);
    if (!json_is_true(ok)) {
        const char *e = json_string_value(json_object_get(o, "error"));
        FZ_CHECK(e && e[0] && !strchr(e, '\n'), "error not one line");
    }
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 70000)
        return 0;
    text t = {0};
    int rc = api->control(inst, (const char *)data, size, emit, &t);
    check_reply(data, size, rc, &t);
    free(t.buf);
    /* the tracker still works: a status, and a resume so later inputs start
     * from a running rollout */
    text s = {0};
    static const char status[] = "{\"cmd\":\"status\"}", resume[] = "{\"cmd\":\"resume\",\"all\":true}";
    FZ_CHECK(api->control(inst, status, sizeof status - 1, emit, &s) == 0, "status refused after %zu bytes", size);
    free(s.buf);
    s = (text){0};
    FZ_CHECK(api->control(inst, resume, sizeof resume - 1, emit, &s) == 0, "resume refused");
    free(s.buf);
    clock_now += size & 1;
    return 0;
}
