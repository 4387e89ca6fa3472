/* libFuzzer harness: the census's fleet format (plugin/census/census_codec.c), as
 * read back from Redis: a merge is refused whole or accepted, the budget holds,
 * and what was merged exports and merges again to the same counts. */
#include <string.h>

#include "census/census.h"
#include "fuzz_common.h"

#define NOW (FZ_NOW - FZ_NOW % UG_CENSUS_SLOT)

static size_t tight; /* the least budget 4 buckets take: folds happen */

static ug_census *make(unsigned buckets, size_t budget);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    ug_census *c = make(4, 0);
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    tight = st.bytes + 5 * (((size_t)1 << UG_CENSUS_P_MIN) * 16) + 64;
    ug_census_free(c);
    return 0;
}

static ug_census *make(unsigned buckets, size_t budget)
{
    char why[256];
    ug_census_opts o = {.nworkers = 1, .max_buckets = buckets, .budget = budget, .ring = 1024};
    ug_census *c = ug_census_create(&o, why, sizeof why);
    FZ_CHECK(c != NULL, "create: %s", why);
    return c;
}

/* Every bucket of from, exported and merged into a fresh census. */
static ug_census *copy(ug_census *from)
{
    static uint8_t buf[UG_CENSUS_EXPORT_MAX];
    ug_census *to = make(8, 0);
    ug_census_stats st;
    ug_census_stats_get(from, &st);
    for (size_t i = 0; i < st.buckets; i++) {
        size_t len;
        char why[256];
        FZ_CHECK(ug_census_export(from, NOW, i, buf, sizeof buf, &len) == 0, "export %zu", i);
        FZ_CHECK(ug_census_merge(to, NOW, buf, len, why, sizeof why) == 0, "an export does not merge: %s", why);
    }
    return to;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ug_census *c = make(4, tight);
    ug_census_key k = {.ver = {.part = {1, 4, 0}, .nparts = 3}, .plat = "linux", .chan = "stable", .region = "DE"};
    for (uint64_t uid = 1; uid <= 50; uid++)
        ug_census_note(c, 0, &k, uid, NOW - 3600);
    ug_census_tick(c, NOW);
    char why[256] = "";
    if (ug_census_merge(c, NOW, data, size, why, sizeof why) != 0) {
        FZ_CHECK(why[0] && !memchr(why, '\n', strnlen(why, sizeof why)), "refusal without one line");
        ug_census_stats st;
        ug_census_stats_get(c, &st);
        FZ_CHECK(st.merged == 0 && st.buckets == 2, "a refused merge changed the census");
        ug_census_free(c);
        return 0;
    }
    ug_census_stats st;
    ug_census_stats_get(c, &st);
    FZ_CHECK(st.bytes <= tight, "over budget: %llu of %zu", (unsigned long long)st.bytes, tight);
    ug_census *d = copy(c);
    ug_census_row a[8], b[8];
    size_t na = ug_census_rows(c, NOW, a, 8), nb = ug_census_rows(d, NOW, b, 8);
    FZ_CHECK(na == nb && na <= 5, "%zu buckets became %zu", na, nb);
    for (size_t i = 0; i < na; i++)
        FZ_CHECK(a[i].n[0] == b[i].n[0] && a[i].n[1] == b[i].n[1] && a[i].n[2] == b[i].n[2],
                 "bucket %s: counts changed on export and merge", a[i].ver);
    ug_census_free(d);
    ug_census_free(c);
    return 0;
}
