/* docs/metrics.md against the counters' tables (plugin/base/counters.def, node/counters.def): a counter without its doc line fails here. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/counters.h"

typedef struct {
    const char *name, *family, *labels, *help;
} row;

/* Every row of both tables, the plugin's then the node's. */
static const row plugin_rows[] = {
#define UG_COUNTER(id, name, family, labels, help) {name, family, labels, help},
#define UG_COUNTER_SPAN(id, n, key, namer)
#define UG_COUNTER_IN(id, value, name, family, labels, help) {name, family, labels, help},
#include "base/counters.def"
#undef UG_COUNTER
#undef UG_COUNTER_SPAN
#undef UG_COUNTER_IN
};

static const row node_rows[] = {
#define UG_NODE_COUNTER(id, stat, family, labels, help) {stat, family, labels, help},
#include "../node/counters.def"
#undef UG_NODE_COUNTER
};

#define NROWS(a) (sizeof(a) / sizeof(a)[0])

static char *doc;

static void load_doc(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/metrics.md", getenv("UG_ROOT") ? getenv("UG_ROOT") : ".");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s cannot be read", path);
    size_t cap = 1 << 20, n = 0;
    doc = calloc(1, cap);
    cr_assert_not_null(doc);
    n = fread(doc, 1, cap - 1, f);
    fclose(f);
    cr_assert(n > 0 && n < cap - 1, "%s: %zu bytes", path, n);
}

static void free_doc(void)
{
    free(doc);
}

/* The doc's table line that starts with "| `name` |", or NULL. */
static const char *doc_line(const char *name)
{
    char head[256];
    snprintf(head, sizeof head, "\n| `%s` |", name);
    return strstr(doc, head);
}

/* A family's line must say "counter" and end with its HELP, word for word. */
static void family_documented(const char *family, const char *help)
{
    const char *l = doc_line(family);
    cr_assert_not_null(l, "docs/metrics.md has no line for the family %s (add: | `%s` | counter | labels | %s |)",
                       family, family, help);
    const char *end = strchr(l + 1, '\n');
    char want[512];
    snprintf(want, sizeof want, "| %s |", help);
    size_t wl = strlen(want), ll = end ? (size_t)(end - l) : strlen(l);
    cr_assert(ll >= wl && memcmp(l + ll - wl, want, wl) == 0, "docs/metrics.md: %s's HELP is not \"%s\": %.*s",
              family, help, (int)ll, l);
    cr_assert(strstr(l, "| counter |") && strstr(l, "| counter |") < l + ll, "docs/metrics.md: %s is a counter",
              family);
}

/* Each family has its HELP on exactly one row; contiguous: its rows follow one another. */
static void check_table(const row *r, size_t n, const char *table, bool contiguous)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert(r[i].name && r[i].name[0], "%s: row %zu has no name", table, i);
        cr_assert(doc_line(r[i].name), "docs/metrics.md has no line for %s's name %s (add: | `%s` | what it counts |)",
                  table, r[i].name, r[i].name);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(r[i].name, r[j].name, "%s: the name %s twice", table, r[i].name);
        if (!r[i].family) {
            cr_assert_null(r[i].help, "%s: %s has a HELP but no family", table, r[i].name);
            continue;
        }
        const char *help = NULL;
        size_t first = n, helps = 0;
        for (size_t j = 0; j < n; j++) {
            if (!r[j].family || strcmp(r[j].family, r[i].family) != 0)
                continue;
            first = first < j ? first : j;
            bool after_own = j == first || (r[j - 1].family && !strcmp(r[j - 1].family, r[j].family));
            cr_assert(!contiguous || after_own, "%s: the rows of %s do not follow one another", table, r[i].family);
            if (r[j].help)
                help = r[j].help, helps++;
        }
        cr_assert_eq(helps, 1, "%s: %s has its HELP on %zu rows (one: the first)", table, r[i].family, helps);
        cr_assert(!contiguous || r[first].help, "%s: %s's HELP is not on its first row", table, r[i].family);
        family_documented(r[i].family, help);
    }
}

Test(metrics_doc, every_plugin_counter_is_documented, .init = load_doc, .fini = free_doc)
{
    check_table(plugin_rows, NROWS(plugin_rows), "plugin/base/counters.def", false);
    /* the enum has a row for each name: no row lost between the table and ST_COUNT */
    size_t named = 0;
    for (unsigned st = 0; st < ST_COUNT; st++)
        named += ug_counters[st].name != NULL;
    cr_assert_eq(named, NROWS(plugin_rows), "ug_counters names %zu counters, the table has %zu rows", named,
                 NROWS(plugin_rows));
}

Test(metrics_doc, every_node_counter_is_documented, .init = load_doc, .fini = free_doc)
{
    check_table(node_rows, NROWS(node_rows), "node/counters.def", true);
}

/* The other way: a name in the doc's tables of names is one a table has. */
Test(metrics_doc, every_documented_name_exists, .init = load_doc, .fini = free_doc)
{
    const char *s = strstr(doc, "\n## Names in stats()");
    cr_assert_not_null(s, "docs/metrics.md has no section \"## Names in stats()\"");
    size_t n = 0;
    for (const char *l = strstr(s, "\n| `"); l; l = strstr(l + 1, "\n| `")) {
        const char *a = l + 4, *b = strchr(a, '`');
        cr_assert_not_null(b);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(b - a), a);
        bool found = false;
        for (size_t i = 0; i < NROWS(plugin_rows); i++)
            found |= !strcmp(plugin_rows[i].name, name);
        for (size_t i = 0; i < NROWS(node_rows); i++)
            found |= !strcmp(node_rows[i].name, name);
        cr_assert(found, "docs/metrics.md names %s, which no counters table has", name);
        n++;
    }
    cr_assert_eq(n, NROWS(plugin_rows) + NROWS(node_rows), "docs/metrics.md lists %zu names", n);
}
