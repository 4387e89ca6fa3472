/* Protocol version 2 in the policy loader: the keys it names and the rollouts' v2 manifests (policy_v2.c). */
#ifndef UG_POLICY_V2_H
#define UG_POLICY_V2_H

#include "policy/policy.h"
#include "policy/yaml_doc.h"

/* What the v2 loader needs of the loader: where messages go, where
 * relative paths resolve, and the time keys and manifests are judged at. */
typedef struct {
    const ug_ylog *y;
    const char *dir;
    uint64_t now;
} ug_v2ld;

/* keys.keyring, keys.hint_cert and keys.tracker (fields of the keys
 * mapping; val NULL when absent): both files or neither; the keyring
 * signed by a threshold of its own roots and unexpired, the certificate
 * valid under it for p's hint key (protocol-v2.md 6.1 steps 1 to 3). */
int ug_policy_v2_keys(const ug_v2ld *c, ug_policy *p, const ug_yfield *keyring, const ug_yfield *cert,
                      const ug_yfield *tracker, const ug_ynode *keys) UG_WUR;
/* A rollout's `release_v2` (v may be NULL: none): checked as 6.1 steps 4
 * and 5 under p->v2; the same release as its v1 manifest, or r->rel made
 * from it when the rollout has none. key names the field in messages. */
int ug_policy_v2_release(const ug_v2ld *c, ug_policy *p, ug_rollout *r, const ug_ynode *v, const char *key) UG_WUR;
/* After the rollouts: `token_ttl` (node may be NULL) and what tokens list. */
int ug_policy_v2_settle(const ug_v2ld *c, ug_policy *p, const ug_ynode *token_ttl) UG_WUR;
void ug_policy_v2_free(ug_policy *p);

#endif
