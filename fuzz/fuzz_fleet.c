/* libFuzzer harness: fleet mode's texts read back from Redis (grant values, uids, stream
 * events, tracker rows, quota keys); what is accepted must write back to the same bytes. */
#include <stdio.h>
#include <string.h>

#include "fleet/fleet_codec.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

static void grant(const char *s, size_t n)
{
    ug_fleet_grant g;
    if (ug_fleet_grant_parse(s, n, &g) != 0)
        return;
    char back[256];
    int k = snprintf(back, sizeof back, "%s|%s|%u|%u", g.stage, g.tracker, g.at, (unsigned)g.outcome);
    FZ_CHECK(k > 0 && (size_t)k == n && memcmp(back, s, n) == 0, "grant value does not write back: %.*s", (int)n, s);
    FZ_CHECK((unsigned)g.outcome < UG_OUT_COUNT_, "outcome out of range");
}

static void uid(const char *s, size_t n)
{
    uint64_t u;
    if (ug_fleet_uid_parse(s, n, &u) != 0)
        return;
    char back[32];
    int k = snprintf(back, sizeof back, "%llu", (unsigned long long)u);
    FZ_CHECK(u >= 1 && u <= UG_UID_MAX, "uid out of range");
    FZ_CHECK((size_t)k == n && memcmp(back, s, n) == 0, "uid does not write back");
}

/* Fields separated by NUL bytes, as a stream entry's name/value list. */
static void event(const char *s, size_t n)
{
    const char *f[16];
    size_t len[16], nf = 0, start = 0;
    for (size_t i = 0; i <= n && nf < 16; i++)
        if (i == n || s[i] == '\0') {
            f[nf] = s + start;
            len[nf++] = i - start;
            start = i + 1;
        }
    ug_fleet_event e;
    if (ug_fleet_event_parse(f, len, nf, &e) != 0)
        return;
    FZ_CHECK(e.uid >= 1 && e.uid <= UG_UID_MAX && e.g.tracker[0], "event without uid or tracker");
    FZ_CHECK(e.kind == UG_FEV_OUTCOME || e.g.stage[0], "grant event without a stage");
}

static void row_and_key(const char *s, size_t n)
{
    uint64_t ts;
    bool up;
    (void)ug_fleet_row_parse(s, n, &ts, &up);
    char r[UG_NAME_MAX + 1], t[UG_VER_MAX + 1], st[UG_NAME_MAX + 1], key[UG_FLEET_KEY_MAX];
    if (ug_fleet_qkey_parse(s, n, r, t, st) != 0)
        return;
    FZ_CHECK(ug_fleet_key_stage(key, r, t, st) == 0 && strlen(key) == n && memcmp(key, s, n) == 0,
             "quota key does not write back: %.*s", (int)n, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 4) {
    case 0: grant(s, n); break;
    case 1: uid(s, n); break;
    case 2: event(s, n); break;
    default: row_and_key(s, n); break;
    }
    return 0;
}
