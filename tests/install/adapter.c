/* An out-of-tree tracker on libupgate-host, built only from what `make install` put down (pkg-config upgate-plugin). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <upgate/host.h>

#ifndef UG_PLUGIN_PATH
#error "build with -DUG_PLUGIN_PATH=\"$(pkg-config --variable=plugin upgate-plugin)\""
#endif

static void host_log(void *ctx, ug_log_level level, const char *line)
{
    (void)ctx;
    fprintf(stderr, "adapter[%d]: %s\n", (int)level, line);
}

typedef struct {
    char text[8192];
    size_t len;
} reply;

static void gather(void *ctx, const char *data, size_t len)
{
    reply *r = ctx;
    if (len < sizeof r->text - r->len) {
        memcpy(r->text + r->len, data, len);
        r->len += len;
        r->text[r->len] = 0;
    }
}

/* The peer sends buf to the host's socket; the host reads it and hands it
 * to the adapter, as a tracker's read loop does. */
static ug_host_result one(ug_host_adapter *a, int host, int peer, const void *buf, size_t len)
{
    if (send(peer, buf, len, 0) != (ssize_t)len)
        return (ug_host_result)-1;
    char in[2048];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(host, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
    return n > 0 ? ug_host_datagram(a, host, (struct sockaddr *)&from, fl, in, (size_t)n) : (ug_host_result)-1;
}

/* usage: adapter POLICY CONTROL. Prints what it found; exits 0 only if every check held. */
int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: adapter POLICY CONTROL\n");
        return 2;
    }
    static const char foreign[] = "\x00\x00\x04\x17\x27\x10\x19\x80 a BitTorrent connect";
    static const char broken[] = {(char)0x95, (char)0xa2, 0x55, 0x47, 0x01, 0x01, (char)0xc1};
    if (!ug_host_is_upgate(broken, sizeof broken) || ug_host_is_upgate(foreign, sizeof foreign - 1)) {
        fprintf(stderr, "adapter: the prefix test is wrong\n");
        return 1;
    }
    char err[1024] = "";
    ug_host_adapter *a = ug_host_open(&(ug_host_config){.size = sizeof(ug_host_config), .plugin = UG_PLUGIN_PATH,
                                                        .policy = argv[1], .control = argv[2],
                                                        .model = UG_HOST_ONE_AT_A_TIME, .name = "out-of-tree",
                                                        .log = host_log, .user = ""},
                                      err, sizeof err);
    if (!a) {
        fprintf(stderr, "adapter: %s\n", err);
        return 1;
    }
    const ug_plugin *p = ug_host_plugin(a);
    printf("libupgate-host %s, plugin %s %s abi %u.%u\n", UG_HOST_VERSION, p->name, p->version, p->abi_major,
           p->abi_minor);
    int host = socket(AF_INET, SOCK_DGRAM, 0), peer = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof at;
    int rc = 0;
    if (bind(host, (struct sockaddr *)&at, sizeof at) || getsockname(host, (struct sockaddr *)&at, &al) ||
        connect(peer, (struct sockaddr *)&at, sizeof at))
        rc = 1;
    ug_host_result r1 = one(a, host, peer, foreign, sizeof foreign - 1), r2 = one(a, host, peer, broken, sizeof broken);
    printf("foreign datagram: %d, malformed upgate datagram: %d\n", (int)r1, (int)r2);
    if (r1 != UG_HOST_NOT_MINE || r2 != UG_HOST_DROPPED)
        rc = 1;
    reply st = {.len = 0};
    static const char req[] = "{\"cmd\":\"status\"}";
    if (ug_host_control(a, req, sizeof req - 1, gather, &st) != 0 || !strstr(st.text, "\"rollouts\"") ||
        strcmp(ug_host_control_path(a), argv[2]) != 0 || access(argv[2], F_OK) != 0)
        rc = 1;
    ug_host_counters k;
    ug_host_counters_get(a, &k, sizeof k);
    printf("%llu upgate, %llu foreign, %llu dropped\n", (unsigned long long)k.upgate, (unsigned long long)k.foreign,
           (unsigned long long)k.dropped);
    if (k.upgate != 1 || k.foreign != 1 || k.dropped != 1)
        rc = 1;
    if (ug_host_close(a) != 0) {
        fprintf(stderr, "adapter: close: %s\n", ug_host_close_error(a));
        rc = 1;
    }
    ug_host_free(a);
    close(host);
    close(peer);
    if (rc == 0)
        printf("adapter ok\n");
    return rc;
}
