/* Shared helpers for the Criterion suites: spec files, hex, temp dirs, keys, commands. */
#ifndef UG_TESTUTIL_H
#define UG_TESTUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "ug_proto.h"

/* The spec folder (UG_SPEC, else ../shared/spec) and the build folder
 * (UG_BUILD, else build). */
const char *tu_spec_dir(void);
const char *tu_build_dir(void);
/* Loads spec/vectors/NAME; aborts the test on failure. */
json_t *tu_vectors(const char *name);
/* Hex text to bytes; returns the length, aborts if it does not fit. */
size_t tu_unhex(const char *hex, uint8_t *out, size_t cap);
/* Seed of a keys.json key ("client", "issuer", ...) into a 64-byte sk and pk. */
void tu_vector_key(const char *name, uint8_t sk[UG_SK_LEN], uint8_t pk[UG_PK_LEN]);
/* A fresh directory under /tmp; the path stays valid until the process ends. */
const char *tu_tmpdir(void);
/* Runs a shell command; returns its exit status (or -1). Output to out if
 * not NULL (truncated to cap-1, NUL-terminated). */
int tu_run(const char *cmd, char *out, size_t cap);
/* Writes a whole file; aborts on failure. */
void tu_write_file(const char *path, const void *data, size_t len);
/* A loopback port of type (SOCK_STREAM or SOCK_DGRAM) the kernel just
 * freed: bound once and released, so nothing listens there until the test
 * starts something on it. */
unsigned tu_free_port(int type);
/* busybox httpd serving the folder www on such a port (another one if
 * someone took it first), ready when it accepts, killed with the test
 * (PR_SET_PDEATHSIG). Its PID, the port in *port; aborts the test if it
 * does not start. The caller stops it by PID. */
pid_t tu_httpd(const char *www, unsigned *port);

#endif
