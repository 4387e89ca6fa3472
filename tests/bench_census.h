/* make bench-census, its parts: bench_census.c runs the rounds and prints
 * the rows, bench_census_host.c the minimal UDP host it measures. */
#ifndef UG_BENCH_CENSUS_H
#define UG_BENCH_CENSUS_H

#include "bench.h"
#include "census/census.h"

/* How a host notes HELLOs: not at all; with their uids; each as a uid
 * never seen (the worst case: the workers' filter skips nothing). */
enum { CH_PLAIN, CH_CENSUS, CH_DISTINCT };

/* Forks a host serving upgate.so (so) with policy on 127.0.0.1:0, noting
 * HELLOs in a census as mode says; its port in *port. */
pid_t ch_start(const char *so, const char *policy, int mode, unsigned *port);

#endif
