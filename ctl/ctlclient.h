/* upgate-ctl's side of the control socket (docs/control.md): one request, the reply read to the end within a deadline and a size limit. */
#ifndef UG_CTLCLIENT_H
#define UG_CTLCLIENT_H

#include <stddef.h>

#include "buf.h"
#include "ug_proto.h"

/* The largest reply upgate-ctl reads: a grants list of about six million
 * uids (each row is about 45 bytes). */
#define UG_CTLC_REPLY_MAX (256u << 20)

/* Connects to the Unix socket at path, writes req (len bytes, one line; a
 * newline is added), and reads until the server closes the connection: the
 * whole exchange within timeout_ms, the reply at most out->max bytes. 0
 * with the reply in out (NUL-terminated), or -1 with one line in err that
 * names path and what went wrong (no such socket, refused, permission, a server of the wrong user,
 * timeout, reply too long, no reply). */
int ug_ctlc_call(const char *path, const char *req, size_t len, long timeout_ms, ug_buf *out, char *err,
                 size_t errcap) UG_WUR;

#endif
