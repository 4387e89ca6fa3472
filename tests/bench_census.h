/* make bench-census, its parts: bench_census.c runs the rounds and prints
 * the rows, bench_census_host.c the minimal UDP host it measures. */
#ifndef UG_BENCH_CENSUS_H
#define UG_BENCH_CENSUS_H

#include "bench.h"
#include "census/census.h"

/* Forks a host serving upgate.so (so) with policy on 127.0.0.1:0, noting
 * every HELLO in a census when with_census; its port in *port. */
pid_t ch_start(const char *so, const char *policy, bool with_census, unsigned *port);

#endif
