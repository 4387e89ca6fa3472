/* libFuzzer: the policy loader on arbitrary YAML, beside real key files. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_env.h"
#include "policy.h"

static fz_env env;
static char path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fz_env_init(&env, NULL);
    snprintf(path, sizeof path, "%s/policy.yaml", env.dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    char err[UG_ERR_MAX];
    err[0] = 0;
    ug_policy *p = ug_policy_load(path, err, sizeof err);
    if (p) {
        /* what the tracker relies on after a load */
        assert(p->shard_count >= 1 && p->shard_index < p->shard_count);
        assert(p->hint_sk != NULL && p->nissuers >= 1 && p->ntargets >= 1);
        assert(ug_hint_max_len(p->manifest_len) <= UG_DGRAM_MAX);
        for (size_t i = 0; i < p->nstages; i++)
            assert(p->stages[i].percent_bp <= 10000);
        ug_policy_free(p);
    } else {
        /* refused: one line that names the file */
        assert(strncmp(err, path, strlen(path)) == 0 || strstr(err, "uids_file") != NULL);
        assert(strchr(err, '\n') == NULL);
    }
    return 0;
}
