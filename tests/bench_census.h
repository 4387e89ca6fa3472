/* make bench-census, its parts: bench_census.c runs the rounds and prints
 * the rows, bench_census_host.c the minimal UDP host it measures. */
#ifndef UG_BENCH_CENSUS_H
#define UG_BENCH_CENSUS_H

#include "bench.h"
#include "census/census.h"

/* How a host hands HELLOs to the plugin: as they came; each with its uid
 * rewritten to one never seen (the census's worst case). Whether the
 * plugin counts them is its policy's `census`. */
enum { CH_PLAIN, CH_DISTINCT };

/* Forks a host serving upgate.so (so) with policy on 127.0.0.1:0, which
 * ticks the plugin once a second as upgate-node does; its port in *port. */
pid_t ch_start(const char *so, const char *policy, int mode, unsigned *port);
/* Where a HELLO's uid (at least 2^16, below 2^32: msgpack's 0xce and four
 * bytes) is in datagram d, 0 when not found; and a new uid written there.
 * An untargeted HELLO is never verified, so the rewrite is what a flood of
 * new uids looks like to the plugin. */
size_t ch_uid_offset(const uint8_t *d, size_t len, uint64_t uid);
void ch_uid_set(uint8_t *d, size_t off, uint32_t uid);

#endif
