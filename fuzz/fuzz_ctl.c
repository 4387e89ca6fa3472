/* libFuzzer: what upgate-ctl reads from outside: a control reply (walked member by member, then rendered) and a policy up to its state key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctlpolicy.h"
#include "fuzz_common.h"
#include "jwalk.h"
#include "render.h"

static FILE *sink;

typedef struct {
    const uint8_t *p;
    size_t len, at;
} mem;

/* libyaml's reader over bytes, in small pieces so the parser's refills run. */
static int mem_read(void *data, unsigned char *buf, size_t size, size_t *got)
{
    mem *m = data;
    size_t n = m->len - m->at < size ? m->len - m->at : size;
    n = n > 7 ? 7 : n;
    memcpy(buf, m->p + m->at, n);
    m->at += n;
    *got = n;
    return 1;
}

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
    if (data[0] == 'Y') { /* a policy */
        mem m = {data + 1, size - 1, 0};
        char out[UG_PATH_MAX], err[512];
        if (ug_ctlp_state(mem_read, &m, "fuzz.yaml", out, sizeof out, err, sizeof err) == 0)
            FZ_CHECK(out[0] && strlen(out) < sizeof out, "a state path");
        else
            FZ_CHECK(err[0] && !strchr(err, '\n'), "one line: %s", err);
        return 0;
    }
    reply(data + 1, size - 1, data[0] == 'G');
    return 0;
}
