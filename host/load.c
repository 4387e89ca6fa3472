/* libupgate-host: loading upgate.so and checking its ABI before anything runs. */
#include <dlfcn.h>
#include <stdio.h>

#include "internal.h"

const ug_plugin *ug_host_load(const char *path, char *err, size_t errcap)
{
    /* RTLD_LOCAL: the plugin's own libraries never resolve the host's symbols */
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errcap, "%s: %s", path, dlerror());
        return NULL;
    }
    const ug_plugin *p = dlsym(dl, UG_PLUGIN_SYMBOL);
    if (!p) {
        snprintf(err, errcap, "%s: no symbol %s; not an upgate plugin", path, UG_PLUGIN_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    if (p->abi_major != UG_PLUGIN_ABI_MAJOR) {
        snprintf(err, errcap, "%s: plugin ABI %u.%u, this host speaks %u.x; rebuild one of them", path,
                 p->abi_major, p->abi_minor, UG_PLUGIN_ABI_MAJOR);
        dlclose(dl);
        return NULL;
    }
    if (!UG_HAS_FIELD(ug_plugin, p->size, destroy) || !p->create || !p->handle || !p->flush || !p->tick ||
        !p->reload || !p->stats || !p->destroy) {
        snprintf(err, errcap, "%s: plugin table of %u bytes lacks an ABI 1.0 entry", path, p->size);
        dlclose(dl);
        return NULL;
    }
    /* never dlclose()d once in use: the plugin's threads and thread-locals
     * may outlive destroy() by a moment at exit */
    return p;
}
