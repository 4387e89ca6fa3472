/* upgate-ctl --policy: the control socket a policy's node serves by default, from the policy's top-level state key alone. */
#ifndef UG_CTLPOLICY_H
#define UG_CTLPOLICY_H

#include <stddef.h>

#include <yaml.h>

#include "policy/policy.h" /* the plugin's limits and path rule, linked in: UG_POLICY_FILE_MAX, UG_PATH_MAX */

/* upgate.ctl in the folder the policy's top-level `state` names, a
 * relative one resolved against the policy file's folder as the plugin
 * resolves it (ug_policy_dir). Reads the file (a regular file of at most
 * UG_POLICY_FILE_MAX bytes, opened O_NONBLOCK) only up to that key. 0 with
 * the path in out, or -1 with one line in err naming the file (and line). */
int ug_ctlp_socket(const char *policy, char *out, size_t cap, char *err, size_t errcap) UG_WUR;

/* The parse alone: the value of the top-level `state` of the YAML that
 * read (libyaml's reader) yields, into out (at most cap - 1 bytes); name is
 * the file's name for messages. 0, or -1 with err set. */
int ug_ctlp_state(yaml_read_handler_t *read, void *data, const char *name, char *out, size_t cap, char *err,
                  size_t errcap) UG_WUR;

#endif
