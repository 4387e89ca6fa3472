/* The `tz` and `windows` keys of a rollout or stage (policy_windows.c). */
#ifndef UG_POLICY_WINDOWS_H
#define UG_POLICY_WINDOWS_H

#include "policy/policy.h"
#include "policy/yaml_doc.h"

/* `tz`: UTC, an IANA zone tzdata has, or "peer"; refused naming key. */
int ug_policy_tz(const ug_ylog *y, const ug_ynode *v, const char *key, char out[UG_TZ_NAME_MAX + 1]) UG_WUR;
/* `windows`: a list of 1..16 {days, from, to, tz}; deftz ("" UTC, a zone
 * or "peer") for windows without a tz and, unless "peer", for peers the
 * GeoIP database does not place. The calendar is precomputed from now.
 * Each refusal names the field: key[i].to. */
int ug_policy_windows(const ug_ylog *y, const ug_ynode *v, const char *key, const char *deftz, uint64_t now,
                      ug_windows *out) UG_WUR;
void ug_windows_free(ug_windows *w);

#endif
