/* The hot path's work per HELLO, counted: a returning peer's HELLO looks its grant up once (issue 27), a sticky
 * re-offer once too. The plugin is linked in, and ug_scope_lookup() wrapped (-Wl,--wrap, see the Makefile). */
#include <criterion/criterion.h>

#include <stdatomic.h>

#include "fixture.h"
#include "store/store.h"

extern const ug_plugin upgate_plugin;

static _Atomic unsigned g_lookups;

bool __real_ug_scope_lookup(ug_scope *sc, uint64_t uid, ug_grant_info *gi);
bool __wrap_ug_scope_lookup(ug_scope *sc, uint64_t uid, ug_grant_info *gi);
bool __wrap_ug_scope_lookup(ug_scope *sc, uint64_t uid, ug_grant_info *gi)
{
    atomic_fetch_add(&g_lookups, 1);
    return __real_ug_scope_lookup(sc, uid, gi);
}

static void start(fx_t *f, const char *stages)
{
    char err[512];
    fx_init(f, 1);
    fx_policy(f, stages);
    f->dl = (void *)&upgate_plugin; /* linked in: fx_start uses it as is */
    f->api = &upgate_plugin;
    cr_assert_eq(fx_start(f, err, sizeof err), 0, "%s", err);
}

/* Lookups made while answering uid's HELLO, and the answer. */
static unsigned lookups(fx_t *f, uint64_t uid, int *type)
{
    atomic_store(&g_lookups, 0);
    fx_reply r = fx_ask(f, 0, "10.0.0.1", uid, "1.4.0", NULL);
    *type = r.type;
    return atomic_load(&g_lookups);
}

Test(hot_path, a_returning_hello_looks_its_grant_up_once)
{
    fx_t f;
    start(&f, "targets: [\"1.4.0\"]\nstages:\n  - {name: one-percent, percent: 1, quota: 100}\n");
    unsigned checked = 0;
    for (uint64_t uid = 1; uid <= 40; uid++) {
        int type;
        unsigned n = lookups(&f, uid, &type);
        if (type != UG_TYPE_WAIT)
            continue; /* the 1% it selects */
        cr_expect_eq(n, 1, "uid %llu: %u lookups for a WAIT", (unsigned long long)uid, n);
        checked++;
    }
    cr_expect_geq(checked, 30);
    fx_stop(&f);
}

Test(hot_path, a_sticky_re_offer_looks_its_grant_up_once)
{
    fx_t f;
    int type;
    start(&f, "targets: [\"1.4.0\"]\nstages:\n  - {name: everyone, quota: 100}\n");
    (void)lookups(&f, 7, &type); /* granted, and flushed: durable */
    cr_assert_eq(type, UG_TYPE_HINT);
    unsigned n = lookups(&f, 7, &type);
    cr_expect_eq(type, UG_TYPE_HINT);
    cr_expect_eq(n, 1, "%u lookups for a sticky HINT", n);
    fx_stop(&f);
}
