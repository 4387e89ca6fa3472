/* upgate-node's hold on the plugin: loading it, the lock the ABI asks for, reply buffers. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "node.h"

const ug_plugin *ug_api;
void *ug_inst;
pthread_mutex_t ug_plugin_mu = PTHREAD_MUTEX_INITIALIZER;

const ug_plugin *ug_node_load(const char *path)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        ug_die(UG_EXIT_FAIL, "--plugin %s: %s", path, dlerror());
    const ug_plugin *p = dlsym(dl, UG_PLUGIN_SYMBOL);
    if (!p)
        ug_die(UG_EXIT_FAIL, "--plugin %s: no symbol %s; not an upgate plugin", path, UG_PLUGIN_SYMBOL);
    if (p->abi_major != UG_PLUGIN_ABI_MAJOR)
        ug_die(UG_EXIT_FAIL, "--plugin %s: plugin ABI %u.%u, this node speaks %u.x; rebuild one of them", path,
               p->abi_major, p->abi_minor, UG_PLUGIN_ABI_MAJOR);
    if (!UG_HAS_FIELD(ug_plugin, p->size, destroy))
        ug_die(UG_EXIT_FAIL, "--plugin %s: plugin table of %u bytes is too short", path, p->size);
    return p;
}

int ug_node_control(const char *req, size_t len, ug_emit emit, void *ctx)
{
    int (*control)(void *, const char *, size_t, ug_emit, void *) = UG_ENTRY(ug_api, control);
    if (!control)
        return -2;
    pthread_mutex_lock(&ug_plugin_mu);
    int rc = control(ug_inst, req, len, emit, ctx);
    pthread_mutex_unlock(&ug_plugin_mu);
    return rc;
}

void ug_buf_emit(void *ctx, const char *data, size_t len)
{
    ug_buf *b = ctx;
    if (b->overflow || !len)
        return;
    if (len > b->max - b->len) {
        b->overflow = true;
        return;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->overflow = true;
            return;
        }
        b->data = d, b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void ug_buf_printf(ug_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        ug_buf_emit(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int ug_buf_finish(ug_buf *b)
{
    if (!b->data) {
        b->data = malloc(1);
        b->cap = b->data ? 1 : 0;
    }
    if (!b->data || b->overflow)
        return -1;
    b->data[b->len] = 0;
    return 0;
}

void ug_buf_free(ug_buf *b)
{
    free(b->data);
    *b = (ug_buf){.max = b->max};
}
