/* Fleet mode (docs/fleet.md): one rollout over many trackers through Redis; the one door the entry table opens. */
#ifndef UG_FLEET_H
#define UG_FLEET_H

#include "base/inst.h"

/* Plugs fleet mode into instance I (ug_inst_subscribe) for policy p, once
 * its store is open and before p is live: a policy with a fleet: section
 * gets the fleet's sink (events, leased slots, the Redis thread started
 * with the live policy) and its control (status members, `fleet`); a
 * tracker alone gets what it says of the fleet (none), and a reload that
 * would add one is refused. A state folder the host gives keeps fleet
 * mode off. 0, or -1 with err. */
int ug_fleet_attach(ug_inst *I, const ug_policy *p, char *err, size_t errcap);

#endif
