/* An out-of-tree tracker host, built only from what `make install` put down (pkg-config upgate-plugin). */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <upgate/upgate_plugin.h>

#ifndef UG_PLUGIN_PATH
#error "build with -DUG_PLUGIN_PATH=\"$(pkg-config --variable=plugin upgate-plugin)\""
#endif

static void host_log(void *ctx, ug_log_level level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "plugin[%d]: %s\n", (int)level, msg);
}

static uint64_t host_now(void *ctx)
{
    (void)ctx;
    return (uint64_t)time(NULL);
}

/* One datagram through handle2 (ABI minor 1) or handle (1.0). */
static ug_verdict one(const ug_plugin *p, void *inst, const uint8_t *in, size_t len, size_t *out_len)
{
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons(40000)};
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint8_t out[1232];
    unsigned flags = 0;
    if (UG_HAS_FIELD(ug_plugin, p->size, handle2) && p->handle2)
        return p->handle2(inst, 0, (const struct sockaddr *)&src, sizeof src, in, len, out, sizeof out, out_len,
                          &flags);
    return p->handle(inst, 0, (const struct sockaddr *)&src, sizeof src, in, len, out, sizeof out, out_len);
}

/* usage: host POLICY. Prints what it found; exits 0 only if every check held. */
int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: host POLICY\n");
        return 2;
    }
    void *so = dlopen(UG_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!so) {
        fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    const ug_plugin *p = dlsym(so, UG_PLUGIN_SYMBOL);
    if (!p) {
        fprintf(stderr, "host: no %s in %s\n", UG_PLUGIN_SYMBOL, UG_PLUGIN_PATH);
        return 1;
    }
    printf("plugin %s %s abi %u.%u header %u.%u\n", p->name, p->version, p->abi_major, p->abi_minor,
           UG_PLUGIN_ABI_MAJOR, UG_PLUGIN_ABI_MINOR);
    if (p->abi_major != UG_PLUGIN_ABI_MAJOR || !UG_HAS_FIELD(ug_plugin, p->size, destroy)) {
        fprintf(stderr, "host: plugin ABI %u.%u (%u bytes) does not fit this header\n", p->abi_major, p->abi_minor,
                p->size);
        return 1;
    }
    if (dlsym(so, "plugin_create") || dlsym(so, "ug_policy_load")) {
        fprintf(stderr, "host: the plugin exports more than %s\n", UG_PLUGIN_SYMBOL);
        return 1;
    }
    ug_host host = {.size = sizeof host, .log = host_log, .now = host_now, .nworkers = 1};
    char err[512] = "";
    void *inst = p->create(&host, argv[1], err, sizeof err);
    if (!inst) {
        fprintf(stderr, "host: %s\n", err);
        return 1;
    }
    int rc = 0;
    static const uint8_t foreign[] = "GET / HTTP/1.0\r\n\r\n";
    static const uint8_t broken[] = {0x95, 0xa2, 0x55, 0x47, 0x01, 0x01, 0xc1};
    size_t n = 0;
    ug_verdict v = one(p, inst, foreign, sizeof foreign - 1, &n);
    printf("foreign datagram: verdict %d\n", (int)v);
    if (v != UG_VERDICT_PASS)
        rc = 1;
    v = one(p, inst, broken, sizeof broken, &n);
    printf("malformed upgate datagram: verdict %d, %zu bytes out\n", (int)v, n);
    if (v != UG_VERDICT_DROP || n != 0)
        rc = 1;
    size_t nstats = p->stats(inst, NULL, 0);
    printf("%zu counters\n", nstats);
    if (nstats == 0)
        rc = 1;
    if (UG_HAS_FIELD(ug_plugin, p->size, finish) && p->finish && p->finish(inst, err, sizeof err) != 0) {
        fprintf(stderr, "host: finish: %s\n", err);
        rc = 1;
    }
    p->destroy(inst);
    dlclose(so);
    if (rc == 0)
        printf("host ok\n");
    return rc;
}
