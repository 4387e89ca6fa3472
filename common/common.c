/* Helpers every program shares: strict number and address parsing, one-line messages and exit codes, the version, the clock. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "upgate_plugin.h"

#ifndef UG_VERSION
#define UG_VERSION "0.0.0-unversioned"
#endif

const char *ug_prog = "upgate";
void (*ug_msg_hook)(const char *msg);

int ug_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int ug_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[256];
    const char *port;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = 0;
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host || strchr(s, ':') != colon)
            return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        port = colon + 1;
    }
    uint64_t p;
    if (ug_parse_u64(port, 0, 65535, &p) != 0 || host[0] == 0)
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void ug_format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
}

/* "PROG: message" and a tail on stderr: every program's one error line;
 * through ug_msg_hook when a program logs in a format of its own. */
__attribute__((format(printf, 1, 0))) static void vsay(const char *fmt, va_list ap, const char *tail)
{
    if (ug_msg_hook) {
        char msg[1024];
        int n = vsnprintf(msg, sizeof msg, fmt, ap);
        if (n >= 0 && (size_t)n < sizeof msg && tail[0] != '\n')
            snprintf(msg + n, sizeof msg - (size_t)n, "%.*s", (int)strcspn(tail, "\n"), tail);
        ug_msg_hook(msg);
        return;
    }
    fprintf(stderr, "%s: ", ug_prog);
    vfprintf(stderr, fmt, ap);
    fputs(tail, stderr);
}

int ug_complain(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap, "\n");
    va_end(ap);
    return code;
}

void ug_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap, "\n");
    va_end(ap);
    exit(code);
}

void ug_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(fmt, ap, " (see --help)\n");
    va_end(ap);
    exit(UG_EXIT_USAGE);
}

#ifndef UG_PLUGINDIR
#define UG_PLUGINDIR "/usr/local/lib/upgate"
#endif
#ifndef UG_PLUGIN_REL
#define UG_PLUGIN_REL "../lib/upgate"
#endif

/* Where the plugin is, in this order: beside the program (the build tree),
 * at PLUGINDIR as seen from the program's folder (an installed tree,
 * wherever it was staged or copied), at the PLUGINDIR it was built for. */
const char *ug_default_plugin(void)
{
    static char path[3][4096 + 64];
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        ug_die(UG_EXIT_FAIL, "cannot find this program's folder; give --plugin");
    exe[n] = 0;
    const char *dir = dirname(exe);
    snprintf(path[0], sizeof path[0], "%s/upgate.so", dir);
    snprintf(path[1], sizeof path[1], "%s/" UG_PLUGIN_REL "/upgate.so", dir);
    snprintf(path[2], sizeof path[2], "%s/upgate.so", UG_PLUGINDIR);
    for (int i = 0; i < 3; i++)
        if (access(path[i], F_OK) == 0)
            return path[i];
    return path[2]; /* its load error names the path the build meant */
}

uint64_t ug_now(void)
{
    return (uint64_t)time(NULL);
}

int64_t ug_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ug_build_version(void)
{
    return UG_VERSION;
}

int ug_print_version(void)
{
    printf("%s %s (plugin ABI %u.%u)\n", ug_prog, UG_VERSION, UG_PLUGIN_ABI_MAJOR, UG_PLUGIN_ABI_MINOR);
    return fflush(stdout) == 0 ? UG_EXIT_OK : UG_EXIT_FAIL;
}
