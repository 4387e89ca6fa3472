/* A stand-in plugin for the host's tests: it answers what a test asks, so
 * upgate-node's side of the ABI (handle2 flags, flush failures, finish,
 * check, control) can be driven where the real plugin cannot be made to
 * fail on cue. Built by the tests themselves; -DMINOR0 builds an ABI 1.0
 * table (no handle2, finish, check, decide, control).
 *
 * The policy file holds "key=value" lines: fail_flush=1, fail_finish=1,
 * state=/abs/dir (the info reply), invalid=1 (create and check refuse).
 * A datagram's first byte says what to do with it: 'L' echo it after
 * flush (UG_REPLY_AFTER_FLUSH), 'N' echo it at once, 'D' drop, 'P' pass,
 * 'X' exit(3) from inside handle() (a host's signal handler calling exit()
 * there), 'S' echo it after flush, having slept 300 ms first (a slow worker). After the upgate prefix (95 a2 55 47 01), the byte after it says
 * (libupgate-host passes on only datagrams that start so). */
#define _POSIX_C_SOURCE 200809L /* nanosleep under -std=c11 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "upgate_plugin.h"

typedef struct {
    ug_host host; /* for its log: a plugin says once that it reloaded */
    int fail_flush, fail_finish, invalid;
    char state[512];
    _Atomic uint64_t handled, controls, flushes, ticks, reloads;
} inst_t;

static int load(inst_t *I, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "%s: cannot open", path);
        return -1;
    }
    char line[600];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "fail_flush=1"))
            I->fail_flush = 1;
        else if (!strcmp(line, "fail_finish=1"))
            I->fail_finish = 1;
        else if (!strcmp(line, "invalid=1"))
            I->invalid = 1;
        else if (!strncmp(line, "state=", 6))
            snprintf(I->state, sizeof I->state, "%s", line + 6);
    }
    fclose(f);
    if (I->invalid) {
        snprintf(err, errcap, "%s:1: invalid: refused on purpose", path);
        return -1;
    }
    return 0;
}

static void *create(const ug_host *host, const char *path, char *err, size_t errcap)
{
    inst_t *I = calloc(1, sizeof *I);
    if (!I || load(I, path, err, errcap) != 0) {
        free(I);
        return NULL;
    }
    I->host = *host;
    host->log(host->ctx, UG_LOG_INFO, "hostplug: loaded\nwith a newline");
    return I;
}

static ug_verdict answer(inst_t *I, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len,
                         unsigned *flags)
{
    atomic_fetch_add(&I->handled, 1);
    *out_len = 0;
    *flags = 0;
    char op = in_len > 5 && !memcmp(in, "\x95\xa2UG\x01", 5) ? (char)in[5] : in_len ? (char)in[0] : 'D';
    if (op == 'X')
        exit(3);
    if (op == 'S')
        nanosleep(&(struct timespec){0, 300000000}, NULL);
    if (op == 'D')
        return UG_VERDICT_DROP;
    if (op == 'P')
        return UG_VERDICT_PASS;
    size_t n = in_len < cap ? in_len : cap;
    memcpy(out, in, n);
    *out_len = n;
    *flags = op == 'L' || op == 'S' ? UG_REPLY_AFTER_FLUSH : 0;
    return UG_VERDICT_REPLY;
}

static ug_verdict handle(void *inst, unsigned w, const struct sockaddr *src, socklen_t sl, const uint8_t *in,
                         size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
    (void)w, (void)src, (void)sl;
    unsigned flags;
    return answer(inst, in, in_len, out, cap, out_len, &flags);
}

static int flush(void *inst, unsigned w)
{
    (void)w;
    atomic_fetch_add(&((inst_t *)inst)->flushes, 1);
    return ((inst_t *)inst)->fail_flush ? -1 : 0;
}

static void tick(void *inst)
{
    atomic_fetch_add(&((inst_t *)inst)->ticks, 1);
}

static int reload(void *inst, const char *path, char *err, size_t errcap)
{
    (void)path, (void)err, (void)errcap;
    inst_t *I = inst;
    atomic_fetch_add(&I->reloads, 1);
    I->host.log(I->host.ctx, UG_LOG_INFO, "hostplug: reloaded");
    return 0;
}

static size_t stats(void *inst, ug_stat *out, size_t cap)
{
    inst_t *I = inst;
    ug_stat all[] = {{"hostplug_handled", atomic_load(&I->handled)}, {"hostplug_controls", atomic_load(&I->controls)},
                     {"hostplug_flushes", atomic_load(&I->flushes)},  {"hostplug_ticks", atomic_load(&I->ticks)},
                     {"hostplug_reloads", atomic_load(&I->reloads)}};
    size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = all[i];
    return n;
}

static void destroy(void *inst)
{
    free(inst);
}

#ifndef MINOR0
static ug_verdict handle2(void *inst, unsigned w, const struct sockaddr *src, socklen_t sl, const uint8_t *in,
                          size_t in_len, uint8_t *out, size_t cap, size_t *out_len, unsigned *flags)
{
    (void)w, (void)src, (void)sl;
    return answer(inst, in, in_len, out, cap, out_len, flags);
}

static int finish(void *inst, char *err, size_t errcap)
{
    if (((inst_t *)inst)->fail_finish) {
        snprintf(err, errcap, "state/grants.mdb: disk on fire");
        return -1;
    }
    return 0;
}

static const char summary[] =
    "{\"rollouts\":[{\"name\":\"default\",\"targets\":[\"1.4.0\",\"<1.3\"],\"plat\":null,\"chan\":[\"stable\"],"
    "\"paused\":false,\"manifest\":{\"to\":\"2.0.0\",\"expires\":1790000000,\"kid\":\"0123456789abcdef\","
    "\"size\":100000,\"urls\":[\"http://a.example/app.bin\",\"http://b.example/app.bin\"]},"
    "\"stages\":[{\"name\":\"canary\",\"conditions\":[\"uids [1001, 1002]\"],\"start\":null,\"end\":null,"
    "\"percent\":null,\"quota\":100,\"rate\":2.5},{\"name\":\"all\",\"conditions\":[],\"start\":1790000000,"
    "\"end\":null,\"percent\":1.5,\"quota\":null,\"rate\":null,\"shiny\":\"new member\"}]}],"
    "\"hint_kid\":\"fedcba9876543210\",\"issuer_kids\":[\"1111111111111111\"],"
    "\"warnings\":[\"stage all: no quota\"]";

static int check(const ug_host *host, const char *path, const char *explain, ug_emit emit, void *ctx, char *err,
                 size_t errcap)
{
    (void)host;
    inst_t I = {0};
    if (load(&I, path, err, errcap) != 0)
        return -1;
    emit(ctx, summary, 40);
    emit(ctx, summary + 40, sizeof summary - 1 - 40);
    if (explain) {
        char ex[512];
        snprintf(ex, sizeof ex,
                 ",\"explain\":{\"ok\":true,\"rollout\":\"default\",\"release\":\"2.0.0\",\"answer\":\"wait\","
                 "\"why\":1,\"why_name\":\"not_selected\",\"stage\":null,\"granted\":false,\"trace\":[{\"stage\":"
                 "\"canary\",\"active\":true,\"conds\":[{\"cond\":\"uids [1001, 1002]\",\"holds\":false}],"
                 "\"percent\":null,\"quota_left\":95,\"selects\":false}],\"asked\":\"%.200s\"}",
                 explain);
        emit(ctx, ex, strlen(ex));
    }
    emit(ctx, "}", 1);
    return 0;
}

static int decide(void *inst, unsigned w, const ug_claims *c, ug_decision *out)
{
    (void)inst, (void)w, (void)c, (void)out;
    return -1;
}

static int control(void *inst, const char *req, size_t len, ug_emit emit, void *ctx)
{
    inst_t *I = inst;
    atomic_fetch_add(&I->controls, 1);
    char r[256];
    snprintf(r, sizeof r, "%.*s", (int)(len < 255 ? len : 255), req);
    char out[1024];
    if (strstr(r, "\"info\"")) {
        snprintf(out, sizeof out, "{\"ok\":true,\"state\":\"%s\"}", I->state);
    } else if (strstr(r, "\"metrics\"")) {
        snprintf(out, sizeof out,
                 "# HELP hostplug_controls_total Control requests.\n# TYPE hostplug_controls_total counter\n"
                 "hostplug_controls_total %llu\n",
                 (unsigned long long)atomic_load(&I->controls));
    } else if (strstr(r, "\"big\"")) { /* 8 MiB, in 64 KiB pieces */
        static char chunk[65536];
        memset(chunk, 'x', sizeof chunk);
        emit(ctx, "{\"ok\":true,\"big\":\"", 18);
        for (int i = 0; i < 128; i++)
            emit(ctx, chunk, sizeof chunk);
        emit(ctx, "\"}", 2);
        return 0;
    } else if (strstr(r, "\"status\"")) { /* and what the host said of itself (ABI minor 2) */
        bool two = UG_HAS_FIELD(ug_host, I->host.size, run_as);
        snprintf(out, sizeof out, "{\"ok\":true,\"request_bytes\":%zu,\"host_flags\":%u,\"run_as\":\"%s\"}", len,
                 two ? I->host.flags : 0, two && I->host.run_as ? I->host.run_as : "");
    } else {
        emit(ctx, "{\"ok\":false,\"error\":\"unknown command\"}", 38);
        return -1;
    }
    emit(ctx, out, strlen(out));
    return 0;
}
#endif

__attribute__((visibility("default"))) const ug_plugin upgate_plugin = {
    .abi_major = UG_PLUGIN_ABI_MAJOR,
#ifdef MINOR0
    .abi_minor = 0,
    .size = offsetof(ug_plugin, handle2),
#else
    .abi_minor = UG_PLUGIN_ABI_MINOR,
    .size = sizeof(ug_plugin),
#endif
    .name = "hostplug",
    .version = "0.1",
    .create = create,
    .handle = handle,
    .flush = flush,
    .tick = tick,
    .reload = reload,
    .stats = stats,
    .destroy = destroy,
#ifndef MINOR0
    .handle2 = handle2,
    .finish = finish,
    .check = check,
    .decide = decide,
    .control = control,
#endif
};
