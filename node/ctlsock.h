/* upgate-node's control socket (docs/control.md "Transport"): one thread polling every client, one request per connection. */
#ifndef UG_CTLSOCK_H
#define UG_CTLSOCK_H

#include <stddef.h>

#define UG_CTL_REQUEST_MAX 65536u /* bytes of one request line */
#define UG_CTL_READ_MS 5000       /* for the whole request */
#define UG_CTL_WRITE_MS 5000      /* for the whole reply */
#define UG_CTL_CLIENTS 128        /* attached at once; the longest reading one makes room */
#define UG_CTL_REPLY_MAX (256u << 20) /* bytes of one reply, as upgate-ctl reads */

/* Binds path (mode 0600, a stale socket replaced, a live one refused) and
 * starts the thread. 0, or -1 with a line naming the path in err. */
int ug_ctl_start(const char *path, char *err, size_t errcap);
/* Stops the thread and removes the socket file (if it is still ours). */
void ug_ctl_stop(void);
/* The number of requests served so far. */
unsigned long long ug_ctl_served(void);

#endif
