/* upgate-node's hold on the plugin: loading it, the lock the ABI asks for. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "node.h"

const ug_plugin *ug_api;
void *ug_node_plugin_inst;
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
    int rc = control(ug_node_plugin_inst, req, len, emit, ctx);
    pthread_mutex_unlock(&ug_plugin_mu);
    return rc;
}
