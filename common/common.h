/* Helpers every program shares: strict number and address parsing, one-line messages and exit codes, the version, the clock. */
#ifndef UG_COMMON_H
#define UG_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ug_proto.h"

/* Exit codes of cli.md. */
enum { UG_EXIT_OK = 0, UG_EXIT_FAIL = 1, UG_EXIT_USAGE = 2, UG_EXIT_CHECK = 3 };

/* Decimal digits only, no sign, no overflow, within [min, max]. */
int ug_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) UG_WUR;
/* "1.2.3.4:80", "[::1]:80", "localhost:80"; port 0..65535. */
int ug_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *sslen) UG_WUR;
/* "1.2.3.4:80" or "[::1]:80" */
void ug_format_addr(const struct sockaddr *sa, char *out, size_t cap);
/* Prints "PROG: message" on stderr and returns code, so a caller holding
 * secrets can unwind instead of exiting. */
int ug_complain(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "PROG: message" on stderr and exits with code. */
void ug_die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
/* Prints "PROG: message (see --help)" on stderr and exits 2: bad usage. */
void ug_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* The program name for messages, set by main. */
extern const char *ug_prog;
/* When set, the one-line messages above go here instead (without the
 * "PROG: " prefix and newline): upgate-node stamps them with time and level. */
extern void (*ug_msg_hook)(const char *msg);
/* The build's version (UG_VERSION), e.g. "1.1.0". */
const char *ug_build_version(void);
/* Prints "PROG VERSION (plugin ABI MAJOR.MINOR)" on stdout; returns the exit code. */
int ug_print_version(void);
/* upgate.so beside this program, for a missing --plugin (upgate-node,
 * upgate-sim); exits 1 when the program's folder cannot be found. */
const char *ug_default_plugin(void);
/* Unix seconds now. */
uint64_t ug_now(void);
/* Milliseconds of CLOCK_MONOTONIC: for deadlines. */
int64_t ug_mono_ms(void);

#endif
