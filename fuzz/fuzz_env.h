/* A fixed tracker setup for the policy and plugin fuzzers: keys (the vectors'
 * issuer and client seeds, so the spec's HELLOs verify), a manifest, a policy. */
#ifndef UG_FUZZ_ENV_H
#define UG_FUZZ_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

#define FZ_NOW UINT64_C(1790000000)

typedef struct {
    char dir[64];
    uint8_t client_sk[UG_SK_LEN], client_pk[UG_PK_LEN];
    uint8_t issuer_sk[UG_SK_LEN], issuer_pk[UG_PK_LEN];
    uint8_t hint_pk[UG_PK_LEN], release_pk[UG_PK_LEN];
} fz_env;

/* Creates the temp dir with hint.key, issuer.pub, release.manifest and, when
 * policy is not NULL, policy.yaml holding it. Aborts on failure. */
void fz_env_init(fz_env *e, const char *policy);
/* A signed 1232-or-less HELLO from the vectors' client for uid at ver. */
size_t fz_hello(const fz_env *e, uint8_t *out, uint64_t uid, const char *ver, size_t target, const char *plat);

#endif
