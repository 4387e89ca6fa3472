/* upgate-sim's regions: the networks a MaxMind DB places in a country or subdivision, to draw peers' addresses from. */
#ifndef UG_SIMGEO_H
#define UG_SIMGEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "simspec.h"

typedef struct sim_geo sim_geo;

/* One region's networks: IPv4 ones when the DB has any for it (weighted by
 * size), else IPv6 ones. */
typedef struct {
    sim_net *v;
    double *cum; /* cumulative weights, for drawing */
    size_t n;
} sim_netlist;

/* Opens the DB (the same reader as the plugin's `regions`); NULL with
 * "PATH: why" in err. */
sim_geo *sim_geo_open(const char *path, char *err, size_t errcap);
void sim_geo_close(sim_geo *g);
/* Walks the DB's search tree once and fills out[i] with the networks whose
 * record matches regions[i] ("DE", "CN-BJ"). -1 with err on a DB fault or
 * out of memory; a region the DB does not know gets an empty list. */
int sim_geo_networks(sim_geo *g, const char (*regions)[SIM_KEY_MAX + 1], unsigned n, sim_netlist *out, char *err,
                     size_t errcap);
/* Does the DB place sa in region (the plugin's matching rule)? */
bool sim_geo_in(const sim_geo *g, const struct sockaddr *sa, const char *region);
void sim_netlist_free(sim_netlist *l);
/* A network of l drawn by weight with u in [0, 1). */
const sim_net *sim_netlist_pick(const sim_netlist *l, double u);

#endif
