/* A source address as bytes (addr.h). memcpy, not casts: a sockaddr from
 * the host carries no alignment promise. */
#include <netinet/in.h>
#include <string.h>

#include "policy/addr.h"

size_t ug_addr_key(const struct sockaddr *sa, uint8_t out[UG_ADDR_KEY_MAX])
{
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof s6);
        out[0] = 6;
        memcpy(out + 1, &s6.sin6_port, 2);
        memcpy(out + 3, &s6.sin6_addr, 16);
        return 19;
    }
    struct sockaddr_in s4;
    memcpy(&s4, sa, sizeof s4);
    out[0] = 4;
    memcpy(out + 1, &s4.sin_port, 2);
    memcpy(out + 3, &s4.sin_addr, 4);
    return 7;
}

size_t ug_addr_ip(const struct sockaddr *sa, uint8_t out[16])
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, sa, sizeof s4);
        memcpy(out, &s4.sin_addr, 4);
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, sa, sizeof s6);
        if (IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr)) {
            memcpy(out, s6.sin6_addr.s6_addr + 12, 4);
            return 4;
        }
        memcpy(out, s6.sin6_addr.s6_addr, 16);
        return 16;
    }
    return 0;
}
