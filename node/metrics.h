/* upgate-node --metrics: Prometheus text at GET /metrics, from libmicrohttpd's own thread. */
#ifndef UG_METRICS_H
#define UG_METRICS_H

#include <stddef.h>
#include <sys/socket.h>

#include "node.h"

/* Binds ss (port 0 picks one; ss is updated) and starts serving; 0, or -1
 * with a line naming the address in err. */
int ug_metrics_start(struct sockaddr_storage *ss, socklen_t sl, char *err, size_t errcap);
void ug_metrics_stop(void);
/* The whole exposition: the plugin's control("metrics") reply, then the
 * node's own families. 0, or -1 when out of memory. */
int ug_metrics_text(ug_buf *out);

#endif
