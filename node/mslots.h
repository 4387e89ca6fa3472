/* The /metrics server's connection slots: a new client always gets one, at the expense of the oldest client of the busiest address (issue 21 §4). */
#ifndef UG_MSLOTS_H
#define UG_MSLOTS_H

#include <sys/socket.h>

#include <microhttpd.h>

#define UG_MSLOTS_LIVE 64      /* connections served at once */
#define UG_MSLOTS_PER_ADDR 16  /* of them from one address */
#define UG_MSLOTS_TOTAL_MS 5000 /* for a whole request and its reply */
/* libmicrohttpd's own limit: room for the evicted until it closes them */
#define UG_MSLOTS_MHD_LIMIT (2 * UG_MSLOTS_LIVE)

/* MHD_OPTION_NOTIFY_CONNECTION: keeps the table of connections. */
void ug_mslots_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                      enum MHD_ConnectionNotificationCode toe);
/* The accept policy: shuts every connection past its total deadline, then
 * makes room for the new one (the oldest of its own address when that has
 * UG_MSLOTS_PER_ADDR, else the oldest of the busiest address when
 * UG_MSLOTS_LIVE are served); always accepts. */
enum MHD_Result ug_mslots_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);

#endif
