/* check() with a user to drop to: what a reload as that user could not read. */
#ifndef UG_PRIVILEGES_H
#define UG_PRIVILEGES_H

#include <jansson.h>

#include "base/opener.h"
#include "policy/policy.h"

/* {"user", "folders": [the folders the opener would hold], "fails":
 * [{"file", "why"}]} for the policy p whose load lister recorded: a link
 * out of its folder, a folder beyond what the opener holds, and the GeoIP
 * database when user cannot read it by its path (libmaxminddb reopens a
 * changed one so). NULL when out of memory. */
json_t *ug_privileges_json(ug_opener *lister, const ug_policy *p, const char *user);

#endif
