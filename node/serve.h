/* upgate-node's workers: one libev loop and one SO_REUSEPORT socket per worker and address. */
#ifndef UG_SERVE_H
#define UG_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "upgate/host.h"

/* Allocates n workers (1..256); exits on failure. */
void ug_serve_init(unsigned n);
/* Binds one socket per worker on ss (port 0: the first bind picks it, ss
 * is updated) and writes the bound address into shown; exits on failure. */
void ug_serve_bind(struct sockaddr_storage *ss, socklen_t sl, char *shown, size_t shown_cap);
/* Starts the worker threads (with the caller's signal mask); exits on failure. */
void ug_serve_start(void);
/* Stops and joins every worker, closes the sockets. */
void ug_serve_stop(void);
/* The adapter's `answered` hook for --capture: queues the record of a
 * HELLO the plugin answered, on the worker's thread. */
void ug_serve_capture(void *ctx, const ug_host_answer *ans);

#endif
