/* upgate-sim --suggest: the largest rate, and the shortest linear ramp, of one stage that keep every mirror under --max-bandwidth. */
#ifndef UG_SIMSUGGEST_H
#define UG_SIMSUGGEST_H

#include "sim.h"

/* Searches on rewritten copies of o->policy[0] (written beside it, since
 * its relative paths resolve there, and removed after), running the same
 * population each time; prints each trial and the answer. base is the run
 * of the policy as it is. 0, or an exit code (1, 2) with err. */
int sim_suggest(const sim_plugin *pl, const sim_opts *o, const sim_pop *pop, uint64_t retry, const sim_result *base,
                char *err, size_t errcap);

/* The highest one-minute bandwidth of any single mirror in r. */
double sim_worst_mirror_bps(const sim_result *r, unsigned *mirror, unsigned *minute);

#endif
