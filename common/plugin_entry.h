/* For the hosts of the plugin (upgate-node, upgate-sim): an optional entry of its table. */
#ifndef UG_PLUGIN_ENTRY_H
#define UG_PLUGIN_ENTRY_H

#include "upgate_plugin.h"

/* Optional entries of ABI minor 1, NULL when the plugin's table is too short
 * or leaves them out. */
#define UG_ENTRY(p, m) (UG_HAS_FIELD(ug_plugin, (p)->size, m) ? (p)->m : NULL)

#endif
