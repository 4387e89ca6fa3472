/* A wrapper around the real upgate.so for the hosts' tests: the host dies by SIGKILL between handle and commit.
 *
 * It loads the plugin named by UG_KILLPLUG_REAL and passes every entry
 * through, but the UG_KILLPLUG_AT-th flush() that has a reply waiting on it
 * (one handle2() flagged UG_REPLY_AFTER_FLUSH since the worker's last
 * flush) raises SIGKILL before the real flush runs: the grants behind the
 * held replies are queued, not durable, and the host never sends those
 * replies. Built by the tests themselves (tests/test_hosts.c). */
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upgate_plugin.h"

static ug_plugin real;
static _Atomic unsigned waiting[256], flushes;
static unsigned kill_at;

static ug_verdict handle2(void *inst, unsigned w, const struct sockaddr *src, socklen_t sl, const uint8_t *in,
                          size_t in_len, uint8_t *out, size_t cap, size_t *out_len, unsigned *flags)
{
    ug_verdict v = real.handle2(inst, w, src, sl, in, in_len, out, cap, out_len, flags);
    if ((*flags & UG_REPLY_AFTER_FLUSH) && w < 256)
        atomic_fetch_add(&waiting[w], 1);
    return v;
}

static int flush(void *inst, unsigned w)
{
    if (w < 256 && atomic_exchange(&waiting[w], 0) && atomic_fetch_add(&flushes, 1) + 1 == kill_at)
        raise(SIGKILL);
    return real.flush(inst, w);
}

static void *create(const ug_host *host, const char *policy, char *err, size_t errcap)
{
    const char *path = getenv("UG_KILLPLUG_REAL"), *at = getenv("UG_KILLPLUG_AT");
    void *dl = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    const ug_plugin *p = dl ? dlsym(dl, UG_PLUGIN_SYMBOL) : NULL;
    if (!p || p->size < sizeof(ug_plugin) || !at) {
        snprintf(err, errcap, "killplug: set UG_KILLPLUG_REAL (a plugin of ABI 1.1) and UG_KILLPLUG_AT");
        return NULL;
    }
    memcpy(&real, p, sizeof real);
    kill_at = (unsigned)strtoul(at, NULL, 10);
    return real.create(host, policy, err, errcap);
}

/* handle() (ABI 1.0) is never called by a host of this ABI; pass it on all the same */
static ug_verdict handle(void *inst, unsigned w, const struct sockaddr *src, socklen_t sl, const uint8_t *in,
                         size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
    unsigned flags;
    return handle2(inst, w, src, sl, in, in_len, out, cap, out_len, &flags);
}

static void tick(void *inst) { real.tick(inst); }
static int reload(void *inst, const char *p, char *err, size_t cap) { return real.reload(inst, p, err, cap); }
static size_t stats(void *inst, ug_stat *out, size_t cap) { return real.stats(inst, out, cap); }
static void destroy(void *inst) { real.destroy(inst); }
static int finish(void *inst, char *err, size_t cap) { return real.finish(inst, err, cap); }
static int control(void *inst, const char *req, size_t len, ug_emit emit, void *ctx)
{
    return real.control(inst, req, len, emit, ctx);
}

__attribute__((visibility("default"))) const ug_plugin upgate_plugin = {
    .abi_major = UG_PLUGIN_ABI_MAJOR, .abi_minor = 1, .size = offsetof(ug_plugin, control) + sizeof(void *),
    .name = "killplug", .version = "0.1", .create = create, .handle = handle, .flush = flush, .tick = tick,
    .reload = reload, .stats = stats, .destroy = destroy, .handle2 = handle2, .finish = finish, .control = control,
};
