/* libFuzzer harness: upgate-sim's census population file (sim/simcensus.c,
 * `upgate-sim --population`): any bytes are refused with one line naming the
 * field, or read into buckets whose counts add up; apportioning them to any
 * population size gives exactly that many peers. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "simcensus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned window = data[0] % 3;
    sim_census c;
    char err[512];
    err[0] = 0;
    if (sim_census_parse((const char *)data + 1, size - 1, "f.json", window, &c, err, sizeof err) != 0) {
        FZ_CHECK(strncmp(err, "f.json: ", 8) == 0 && !strchr(err, '\n'), "refusal '%s'", err);
        FZ_CHECK(c.b == NULL && c.n == 0, "a refusal leaves nothing");
        return 0;
    }
    FZ_CHECK(c.n >= 1 && c.n <= SIM_CENSUS_BUCKETS_MAX && c.total >= 1 && c.total <= SIM_CENSUS_UIDS_MAX,
             "%zu buckets, %llu uids", c.n, (unsigned long long)c.total);
    uint64_t sum = 0;
    for (size_t i = 0; i < c.n; i++) {
        const sim_cbucket *b = &c.b[i];
        ug_version v;
        FZ_CHECK(b->n >= 1 && ug_version_parse(&v, b->ver, strlen(b->ver)) == 0, "bucket %zu", i);
        FZ_CHECK(strlen(b->plat) <= UG_PLAT_MAX && strlen(b->chan) <= UG_CHAN_MAX &&
                     strlen(b->region) <= SIM_CENSUS_REGION_MAX,
                 "bucket %zu's key", i);
        sum += b->n;
    }
    FZ_CHECK(sum == c.total, "%llu != %llu", (unsigned long long)sum, (unsigned long long)c.total);
    uint64_t *out = calloc(c.n, sizeof *out);
    FZ_CHECK(out != NULL, "out of memory");
    static const uint64_t totals[] = {0, 1, 7, 1000, 50000000};
    for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++) {
        sim_census_apportion(&c, totals[t], out);
        uint64_t got = 0;
        for (size_t i = 0; i < c.n; i++)
            got += out[i];
        FZ_CHECK(got == (totals[t] ? totals[t] : c.total), "apportioned %llu of %llu", (unsigned long long)got,
                 (unsigned long long)totals[t]);
    }
    free(out);
    sim_census_free(&c);
    return 0;
}
