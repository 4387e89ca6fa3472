/* libFuzzer: upgate-sim's parsers of outside text (sim/simspec.c: rates, durations, times, networks, weighted lists; sim/simedit.c: a policy's stage found and rewritten) on any bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "simedit.h"
#include "simspec.h"

/* The first byte picks the parser; the rest, cut at the first NUL, is its text. */
static void values(unsigned which, const char *s)
{
    double a, b;
    uint64_t u;
    int64_t t;
    sim_net n;
    sim_weights w;
    char why[256];
    switch (which % 8) {
    case 0:
        if (sim_parse_bitrate(s, &a) == 0)
            FZ_CHECK(a >= 1 && a <= 1e15, "rate %g out of bounds", a);
        break;
    case 1:
        if (sim_parse_bitrate_range(s, &a, &b) == 0)
            FZ_CHECK(a <= b && a >= 1, "range %g..%g", a, b);
        break;
    case 2:
        if (sim_parse_duration(s, 60, 90 * 86400, &u) == 0)
            FZ_CHECK(u >= 60 && u <= 90 * 86400, "duration %llu", (unsigned long long)u);
        break;
    case 3:
        if (sim_parse_share(s, &a) == 0)
            FZ_CHECK(a >= 0 && a <= 1, "share %g", a);
        if (sim_parse_decimal(s, 0, 90, &a) == 0)
            FZ_CHECK(a >= 0 && a <= 90, "decimal %g", a);
        break;
    case 4:
        (void)sim_parse_when(s, 0, &t);
        break;
    case 5:
        if (sim_parse_cidr(s, &n) == 0) {
            unsigned bits = n.family == 4 ? 32 : 128;
            FZ_CHECK((n.family == 4 || n.family == 6) && n.len <= bits, "family %u len %u", n.family, n.len);
            for (unsigned i = n.len; i < bits; i++)
                FZ_CHECK(!(n.addr[i / 8] & (0x80u >> (i % 8))), "host bit %u set", i);
        }
        break;
    default:
        if (sim_parse_weights(s, (sim_keykind)(which / 8 % 5), &w, why, sizeof why) == 0) {
            FZ_CHECK(w.n >= 1 && w.n <= SIM_WEIGHTS_MAX && w.total > 0, "%u entries, total %g", w.n, w.total);
            for (unsigned i = 0; i < w.n; i++)
                FZ_CHECK(w.weight[i] > 0 && strlen(w.key[i]) <= SIM_KEY_MAX, "entry %u", i);
            unsigned k = sim_weights_pick(&w, 0.999999);
            FZ_CHECK(k < w.n, "pick %u of %u", k, w.n);
        } else {
            FZ_CHECK(why[0], "a refusal says why");
        }
        break;
    }
}

/* The rewriter on a policy text: what it finds lies inside the text, and
 * the rewritten text keeps every byte around the change. */
static void rewrite(const char *text, size_t len)
{
    static const char *const stages[] = {"ramp", "canary", "a"};
    for (unsigned i = 0; i < 3; i++) {
        sim_stage_loc loc;
        char why[256];
        if (sim_edit_find(text, len, i == 2 ? "main" : NULL, stages[i], &loc, why, sizeof why) != 0) {
            FZ_CHECK(why[0], "a refusal says why");
            continue;
        }
        FZ_CHECK(loc.insert_at <= len, "insert at %zu of %zu", loc.insert_at, len);
        size_t n, at = loc.has_rate ? loc.rate_at : loc.insert_at, cut = loc.has_rate ? loc.rate_len : 0;
        FZ_CHECK(at <= len && cut <= len - at, "rate at %zu+%zu of %zu", at, cut, len);
        if (loc.linear)
            FZ_CHECK(loc.end_at <= len && loc.end_len <= len - loc.end_at, "end at %zu+%zu", loc.end_at, loc.end_len);
        char *out = sim_edit_apply(text, len, at, cut, "42", &n);
        FZ_CHECK(out, "out of memory");
        FZ_CHECK(n == len - cut + 2, "length %zu", n);
        FZ_CHECK(memcmp(out, text, at) == 0 && memcmp(out + at + 2, text + at + cut, len - at - cut) == 0,
                 "bytes outside the change moved");
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = malloc(size);
    FZ_CHECK(s, "out of memory");
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    if (data[0] & 0x80)
        rewrite(s, strlen(s));
    else
        values(data[0], s);
    free(s);
    return 0;
}
