/* upgate-node --capture: workers queue HELLO records, one thread writes and rotates the file. */
#ifndef UG_CAPWRITE_H
#define UG_CAPWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "upgate_plugin.h"

#define UG_CAPTURE_MAX_DEFAULT (UINT64_C(64) << 20)
#define UG_CAPTURE_MAX_MIN UINT64_C(4096)

/* Opens (or continues) path, cutting a torn tail left by a crash, and starts
 * the writer thread. 0, or -1 with "PATH: why" in err. */
int ug_capw_start(const char *path, uint64_t max_bytes, unsigned nworkers, char *err, size_t errcap);
/* Is capture on? */
bool ug_capw_on(void);
/* From worker w: queues a record when in[0..len) is a HELLO the plugin
 * did not PASS. Never blocks on disk. 1 queued, 0 not a HELLO (or PASS),
 * -1 dropped (the buffer was full). */
int ug_capw_hello(unsigned w, uint64_t time_ms, const struct sockaddr *src, socklen_t srclen, const uint8_t *in,
                  size_t len, ug_verdict v, const uint8_t *out, size_t out_len);
/* Writes what is queued, stops the thread, closes the file. */
void ug_capw_stop(void);

#endif
