/* libFuzzer: what upgate-ctl reads from outside: a control reply (walked member by member, then rendered) and a node's record of its control socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "jwalk.h"
#include "render.h"
#include "runrec.h"

static FILE *sink;

static int row(void *ctx, size_t i, const json_t *elem)
{
    size_t *n = ctx;
    FZ_CHECK(i == *n, "rows in order: %zu after %zu", i, *n);
    (*n)++;
    ug_render_grant(elem, sink);
    return 0;
}

static size_t depth_marks(const uint8_t *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] == '[' || p[i] == '{';
    return n;
}

/* The walk accepts exactly the objects jansson accepts, with the same
 * members (split NULL), and the renderers take whatever it yields. */
static void reply(const uint8_t *p, size_t len, bool split)
{
    char err[256];
    json_t *members = NULL;
    size_t rows = 0;
    int rc = ug_jwalk((const char *)p, len, split ? "grants" : NULL, row, &rows, &members, err, sizeof err);
    json_t *whole = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
    if (depth_marks(p, len) < 1000) { /* jansson's depth limit counts the whole text, the walk each member */
        FZ_CHECK((rc == 0) == json_is_object(whole), "walk %d (%s), jansson %s", rc, rc ? err : "",
                 whole ? "an object" : "no object");
        if (rc == 0 && !split)
            FZ_CHECK(json_object_size(members) == json_object_size(whole), "members %zu vs %zu",
                     json_object_size(members), json_object_size(whole));
    }
    if (rc == 0) {
        ug_render_status(members, sink, FZ_NOW);
        ug_render_watch(members, sink, FZ_NOW);
        ug_render_history(members, sink);
        ug_render_explain(members, sink, 0);
        ug_render_members(members, sink, 0);
    }
    json_decref(whole);
    json_decref(members);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sink)
        sink = fopen("/dev/null", "w");
    if (size < 1)
        return 0;
    if (data[0] == 'P') { /* a node's record: what parses prints back to the same bytes */
        static ug_runrec r, again;
        static char text[UG_RUNREC_MAX + 1], why[256];
        if (ug_runrec_parse((const char *)data + 1, size - 1, &r, why, sizeof why) != 0) {
            FZ_CHECK(why[0] && !strchr(why, '\n'), "one line: %s", why);
            return 0;
        }
        int n = ug_runrec_format(&r, text, sizeof text);
        FZ_CHECK(n > 0 && (size_t)n == size - 1 && !memcmp(text, data + 1, size - 1), "the record prints back");
        FZ_CHECK(ug_runrec_parse(text, (size_t)n, &again, why, sizeof why) == 0 && again.pid == r.pid &&
                     !strcmp(again.policy, r.policy) && !strcmp(again.socket, r.socket),
                 "the printed record parses the same");
        return 0;
    }
    reply(data + 1, size - 1, data[0] == 'G');
    return 0;
}
