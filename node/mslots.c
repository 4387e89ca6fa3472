/* The /metrics server's connection slots: a new client always gets one, at the expense of the oldest client of the busiest address (issue 21 §4).
 *
 * libmicrohttpd's own limits refuse the newcomer and restart a connection's
 * idle timeout at every byte, so 16 clients dripping a byte now and then
 * kept every scrape out. Here a connection holds its slot for at most
 * UG_MSLOTS_TOTAL_MS, and a newcomer evicts rather than being refused: an
 * honest scrape, answered within milliseconds, gets through. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "common.h"
#include "mslots.h"

typedef struct {
    int fd; /* -1: free */
    bool shut;
    int64_t since;
    unsigned char ip[16];
} mslot;

static mslot T[UG_MSLOTS_MHD_LIMIT];
static bool T_ready;
static pthread_mutex_t T_mu = PTHREAD_MUTEX_INITIALIZER;

/* The address bytes of sa (the port left out), as a 16-byte key. */
static void ip_key(const struct sockaddr *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa && sa->sa_family == AF_INET)
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    else if (sa && sa->sa_family == AF_INET6)
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

static void table_init(void)
{
    if (T_ready)
        return;
    for (size_t i = 0; i < UG_MSLOTS_MHD_LIMIT; i++)
        T[i].fd = -1;
    T_ready = true;
}

void ug_mslots_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe)
{
    (void)cls, (void)socket_context;
    const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ad = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!fd)
        return;
    pthread_mutex_lock(&T_mu);
    table_init();
    for (size_t i = 0; i < UG_MSLOTS_MHD_LIMIT; i++) {
        if (toe == MHD_CONNECTION_NOTIFY_STARTED && T[i].fd < 0) {
            T[i] = (mslot){.fd = fd->connect_fd, .since = ug_mono_ms()};
            ip_key(ad ? ad->client_addr : NULL, T[i].ip);
            break;
        }
        if (toe == MHD_CONNECTION_NOTIFY_CLOSED && T[i].fd == fd->connect_fd) {
            T[i].fd = -1;
            break;
        }
    }
    pthread_mutex_unlock(&T_mu);
}

/* Ends a connection's service: libmicrohttpd sees the end and closes it. */
static void shut(mslot *s)
{
    shutdown(s->fd, SHUT_RDWR);
    s->shut = true;
}

/* The oldest live connection of the address with the most of them (of ip
 * alone when ip is given). */
static mslot *victim(const unsigned char *ip)
{
    mslot *old = NULL;
    size_t most = 0;
    for (size_t i = 0; i < UG_MSLOTS_MHD_LIMIT; i++) {
        if (T[i].fd < 0 || T[i].shut || (ip && memcmp(T[i].ip, ip, 16) != 0))
            continue;
        size_t n = 0;
        for (size_t j = 0; j < UG_MSLOTS_MHD_LIMIT; j++)
            n += T[j].fd >= 0 && !T[j].shut && memcmp(T[j].ip, T[i].ip, 16) == 0;
        if (n > most || (n == most && T[i].since < old->since))
            old = &T[i], most = n;
    }
    return old;
}

enum MHD_Result ug_mslots_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)cls, (void)addrlen;
    unsigned char ip[16];
    ip_key(addr, ip);
    int64_t now = ug_mono_ms();
    pthread_mutex_lock(&T_mu);
    table_init();
    size_t live = 0, mine = 0;
    for (size_t i = 0; i < UG_MSLOTS_MHD_LIMIT; i++) {
        if (T[i].fd >= 0 && !T[i].shut && now - T[i].since >= UG_MSLOTS_TOTAL_MS)
            shut(&T[i]);
        if (T[i].fd >= 0 && !T[i].shut)
            live++, mine += memcmp(T[i].ip, ip, 16) == 0;
    }
    mslot *v = mine >= UG_MSLOTS_PER_ADDR ? victim(ip) : live >= UG_MSLOTS_LIVE ? victim(NULL) : NULL;
    if (v)
        shut(v);
    pthread_mutex_unlock(&T_mu);
    return MHD_YES;
}
