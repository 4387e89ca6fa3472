/* upgate-ctl --policy: the control socket of the node serving that policy, from the record it keeps in a runtime folder (docs/control.md "Finding the socket"). */
#ifndef UG_CTLFIND_H
#define UG_CTLFIND_H

#include <stddef.h>

#include "ug_proto.h"

/* The socket the running node for policy recorded (ug_rundirs_list's
 * folders, in order; the policy is never read, so a policy being edited,
 * even its state key, still finds its node). A record whose node is gone
 * is skipped with a note on stderr. 0 with the path in out, or -1 with one
 * line in err naming the policy and the folders looked in. */
int ug_ctlf_socket(const char *policy, char *out, size_t cap, char *err, size_t errcap) UG_WUR;

#endif
