/* upgate-sim's census population: `upgate-ctl census --json` read strictly (one line naming the file and field on bad input), and its counts apportioned to a population. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "simcensus.h"

static const char *const window_key[3] = {"hour", "day", "week"};

/* A string member of at most max bytes of printable ASCII (what the census
 * writes: it shows other bytes as '?'), "" when absent or null. */
static int text_member(const json_t *o, const char *key, size_t max, char *out, const char **why)
{
    const json_t *v = json_object_get(o, key);
    out[0] = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return *why = "not a string", -1;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n > max)
        return *why = "too long", -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return *why = "not printable ASCII", -1;
    memcpy(out, s, n + 1);
    return 0;
}

/* One bucket; *skip for "other" and for no uid in the window. */
static int bucket_of(const json_t *o, unsigned window, sim_cbucket *b, bool *skip, const char **field,
                     const char **why)
{
    static const char *const names[3] = {"plat", "chan", "region"};
    char *dst[3] = {b->plat, b->chan, b->region};
    static const size_t max[3] = {UG_PLAT_MAX, UG_CHAN_MAX, SIM_CENSUS_REGION_MAX};
    if (!json_is_object(o))
        return *field = "", *why = "not an object", -1;
    const json_t *other = json_object_get(o, "other"), *n = json_object_get(o, window_key[window]);
    if (other && !json_is_boolean(other))
        return *field = "other", *why = "not true or false", -1;
    if (!json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > SIM_CENSUS_UIDS_MAX)
        return *field = window_key[window], *why = "not a count of uids (0 to 50000000)", -1;
    b->n = (uint64_t)json_integer_value(n);
    *skip = json_is_true(other) || b->n == 0;
    const json_t *ver = json_object_get(o, "ver");
    ug_version v;
    *field = "ver";
    if (!json_is_string(ver))
        return *why = "not a string", -1;
    if (ug_version_parse(&v, json_string_value(ver), json_string_length(ver)) != 0 ||
        ug_version_format(&v, b->ver, sizeof b->ver) != 0)
        return *why = "not a version (1.4.0)", -1;
    for (int i = 0; i < 3; i++)
        if (text_member(o, names[i], max[i], dst[i], why) != 0)
            return *field = names[i], -1;
    return 0;
}

static int buckets_of(const json_t *arr, const char *name, unsigned window, sim_census *c, char *err,
                      size_t errcap)
{
    size_t n = json_array_size(arr);
    if (n > SIM_CENSUS_BUCKETS_MAX)
        return snprintf(err, errcap, "%s: buckets: more than %u", name, SIM_CENSUS_BUCKETS_MAX), -1;
    if (!(c->b = calloc(n ? n : 1, sizeof *c->b)))
        return snprintf(err, errcap, "%s: out of memory", name), -1;
    for (size_t i = 0; i < n; i++) {
        const char *field = "", *why = "";
        bool skip = false;
        sim_cbucket *b = &c->b[c->n];
        if (bucket_of(json_array_get(arr, i), window, b, &skip, &field, &why) != 0)
            return snprintf(err, errcap, "%s: buckets[%zu]%s%s: %s", name, i, field[0] ? "." : "", field, why), -1;
        if (skip)
            continue;
        c->total += b->n;
        if (c->total > SIM_CENSUS_UIDS_MAX)
            return snprintf(err, errcap, "%s: buckets: more than %u uids in all", name, SIM_CENSUS_UIDS_MAX), -1;
        c->n++;
    }
    if (c->total == 0)
        return snprintf(err, errcap, "%s: buckets: no uid counted over the %s", name, window_key[window]), -1;
    return 0;
}

int sim_census_parse(const char *text, size_t len, const char *name, unsigned window, sim_census *c, char *err,
                     size_t errcap)
{
    memset(c, 0, sizeof *c);
    if (window > SIM_CENSUS_WEEK)
        return snprintf(err, errcap, "%s: no such window", name), -1;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        /* jansson's message may quote the input's bytes: one printable line */
        for (char *q = je.text; *q; q++)
            *q = *q >= 0x20 && *q <= 0x7e ? *q : '?';
        return snprintf(err, errcap, "%s: line %d: not JSON: %s", name, je.line, je.text), -1;
    }
    const json_t *arr = json_object_get(root, "buckets");
    int rc = -1;
    if (!json_is_object(root))
        snprintf(err, errcap, "%s: not an object (upgate-ctl census --json)", name);
    else if (!json_is_array(arr))
        snprintf(err, errcap, "%s: buckets: missing, or not an array (upgate-ctl census --json)", name);
    else
        rc = buckets_of(arr, name, window, c, err, errcap);
    json_decref(root);
    if (rc != 0)
        sim_census_free(c);
    return rc;
}

int sim_census_load(const char *path, unsigned window, sim_census *c, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f)
        return snprintf(err, errcap, "%s: %s", path, strerror(errno)), -1;
    if (fstat(fileno(f), &st) != 0 || st.st_size > SIM_CENSUS_FILE_MAX) {
        fclose(f);
        return snprintf(err, errcap, "%s: not a file of at most %u bytes", path, SIM_CENSUS_FILE_MAX), -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return snprintf(err, errcap, "%s: %s", path, buf ? "read error" : "out of memory"), -1;
    }
    int rc = sim_census_parse(buf, got, path, window, c, err, errcap);
    free(buf);
    return rc;
}

void sim_census_free(sim_census *c)
{
    free(c->b);
    memset(c, 0, sizeof *c);
}

void sim_census_apportion(const sim_census *c, uint64_t total, uint64_t *out)
{
    if (total == 0 || total == c->total) {
        for (size_t i = 0; i < c->n; i++)
            out[i] = c->b[i].n;
        return;
    }
    uint64_t given = 0;
    for (size_t i = 0; i < c->n; i++) {
        out[i] = (uint64_t)((double)c->b[i].n * (double)total / (double)c->total);
        given += out[i];
    }
    /* the rest, one each, to the largest remainders (ties: the first) */
    while (given < total) {
        size_t best = 0;
        double most = -1;
        for (size_t i = 0; i < c->n; i++) {
            double r = (double)c->b[i].n * (double)total / (double)c->total - (double)out[i];
            if (r > most)
                most = r, best = i;
        }
        out[best]++;
        given++;
    }
}
