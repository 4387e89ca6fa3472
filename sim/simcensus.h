/* upgate-sim's census population: the buckets of `upgate-ctl census --json` (version, plat, chan, region, distinct uids) read strictly, and counts apportioned to a population size. */
#ifndef UG_SIMCENSUS_H
#define UG_SIMCENSUS_H

#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

#define SIM_CENSUS_FILE_MAX (16u << 20) /* bytes of a census file */
#define SIM_CENSUS_BUCKETS_MAX 4097u    /* a tracker's cap (4096) and "other" */
#define SIM_CENSUS_REGION_MAX 15u       /* as the census's own */
#define SIM_CENSUS_UIDS_MAX 50000000u   /* uids of one bucket, and of all (SIM_PEERS_MAX) */

typedef struct {
    char ver[UG_VER_MAX + 1]; /* canonical: "1.4.0" */
    char plat[UG_PLAT_MAX + 1], chan[UG_CHAN_MAX + 1], region[SIM_CENSUS_REGION_MAX + 1]; /* "": absent */
    uint64_t n;               /* distinct uids over the window */
} sim_cbucket;

typedef struct {
    sim_cbucket *b; /* buckets with uids, "other" left out (it has no one key) */
    size_t n;
    uint64_t total;
} sim_census;

enum { SIM_CENSUS_HOUR, SIM_CENSUS_DAY, SIM_CENSUS_WEEK };

/* Reads the JSON text of `upgate-ctl census --json` (an object with a
 * "buckets" array of {"ver", "plat", "chan", "region", "other", "hour",
 * "day", "week"}; other members ignored), counting window's column. 0, or
 * -1 with one line "NAME: buckets[i].field: why" in err. */
int sim_census_parse(const char *text, size_t len, const char *name, unsigned window, sim_census *c, char *err,
                     size_t errcap) UG_WUR;
/* The same from a file (at most SIM_CENSUS_FILE_MAX bytes). */
int sim_census_load(const char *path, unsigned window, sim_census *c, char *err, size_t errcap) UG_WUR;
void sim_census_free(sim_census *c);
/* Peers per bucket for a population of total (0: the census's own
 * counts): largest remainders, so they add up to total exactly. out has
 * c->n entries. */
void sim_census_apportion(const sim_census *c, uint64_t total, uint64_t *out);

#endif
