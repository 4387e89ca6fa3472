/* A source address as bytes: the one place that takes a sockaddr apart. */
#ifndef UG_ADDR_H
#define UG_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define UG_ADDR_KEY_MAX 19u

/* What says who sent a datagram: family (4 or 6), port, address; 7 bytes
 * for IPv4 (any family but AF_INET6 is read as AF_INET), 19 for IPv6.
 * Keys the cookie MAC and the retransmit cache. */
size_t ug_addr_key(const struct sockaddr *sa, uint8_t out[UG_ADDR_KEY_MAX]);

/* The IP address alone: 4 bytes for IPv4 and for an IPv4-mapped IPv6
 * address (::ffff:a.b.c.d is the IPv4 peer a.b.c.d on a dual-stack
 * socket), 16 for other IPv6; 0 for NULL or another family. */
size_t ug_addr_ip(const struct sockaddr *sa, uint8_t out[16]);

#endif
