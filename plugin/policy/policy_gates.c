/* Promotion gates and windowed health in the policy (docs/policy-v2-extensions.md "Gates and windowed health"):
 * the `gate`, `hold_after`, `window` and `last` keys of a percent step and of halt_when, one parser each. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy_gates.h"
#include "policy/ugpolicy.h"

#define BASELINE_MAX 1000.0 /* the largest factor over the previous release's failed share */

int ug_policy_duration(const ug_ylog *y, const ug_ynode *v, const char *key, uint64_t *out)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_str(y, v, key, 1, 12, &s, &n) != 0)
        return -1;
    static const char units[] = "smhd";
    static const uint64_t mult[] = {1, 60, 3600, 86400};
    const char *u = memchr(units, s[n - 1], 4);
    uint64_t x = 0;
    bool ok = u && s[0] >= '1' && s[0] <= '9';
    for (size_t i = 0; ok && i + 1 < n; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        x = x * 10 + (uint64_t)(s[i] - '0');
        ok = ok && x <= UG_DURATION_MAX;
    }
    if (!ok || x * mult[u - units] > UG_DURATION_MAX)
        return UG_YFAIL(y, v, key, "\"%s\" is not a duration from 1s to 366d (90s, 30m, 6h, 2d)",
                        ug_yshow(buf, sizeof buf, s, n));
    *out = x * mult[u - units];
    return 0;
}

int ug_policy_health_window(const ug_ylog *y, const ug_yfield *window, const ug_yfield *last, const char *base,
                            ug_health_window *hw)
{
    char kp[UG_YAML_KEY_MAX];
    uint64_t n = 0;
    *hw = (ug_health_window){0};
    ug_ykey(kp, sizeof kp, base, "window", 6, 0);
    if (window->key && ug_policy_duration(y, window->val, kp, &hw->window) != 0)
        return -1;
    ug_ykey(kp, sizeof kp, base, "last", 4, 0);
    if (last->key && ug_yget_uint(y, last->val, kp, 1, UG_HEALTH_LAST_MAX, &n) != 0)
        return -1;
    hw->last = (uint32_t)n;
    return 0;
}

/* A share in 0..1 (failed: 0 asks for no failure at all). */
static int get_share(const ug_ylog *y, const ug_ynode *v, const char *key, uint32_t *ppm)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_plain(y, v, key, "fraction 0..1", &s, &n) != 0)
        return -1;
    if (ug_parse_ppm(s, n, ppm) != 0)
        return UG_YFAIL(y, v, key, "expected a fraction 0..1 with at most 6 decimals (0.02), got \"%s\"",
                        ug_yshow(buf, sizeof buf, s, n));
    return 0;
}

static int get_factor(const ug_ylog *y, const ug_ynode *v, const char *key, uint32_t *milli)
{
    const char *s;
    size_t n;
    double f = 0;
    char buf[UG_YAML_SHOW_MAX];
    if (ug_yget_plain(y, v, key, "factor above 0", &s, &n) != 0)
        return -1;
    if (ug_parse_rate(s, n, &f) != 0 || f < 0.001 || f > BASELINE_MAX)
        return UG_YFAIL(y, v, key, "expected a factor from 0.001 to 1000 (1.5: at most one and a half times the "
                        "previous release's failed share), got \"%s\"", ug_yshow(buf, sizeof buf, s, n));
    *milli = (uint32_t)(f * 1000.0 + 0.5);
    return 0;
}

enum { G_MIN, G_UPGRADED, G_FAILED, G_BASELINE, G_WINDOW, G_LAST, G_MANUAL, G_N };

static int gate_map(const ug_ylog *y, const ug_ynode *v, const char *key, ug_gate *g)
{
    ug_yfield f[G_N] = {[G_MIN] = {"min_outcomes", false, NULL, NULL}, [G_UPGRADED] = {"upgraded", false, NULL, NULL},
                        [G_FAILED] = {"failed", false, NULL, NULL},    [G_BASELINE] = {"baseline", false, NULL, NULL},
                        [G_WINDOW] = {"window", false, NULL, NULL},    [G_LAST] = {"last", false, NULL, NULL},
                        [G_MANUAL] = {"manual", false, NULL, NULL}};
    char kp[UG_YAML_KEY_MAX];
    if (ug_ycollect(y, v, key, f, G_N) != 0)
        return -1;
#define K(i) (ug_ykey(kp, sizeof kp, key, f[i].name, strlen(f[i].name), 0), kp)
    if ((f[G_MIN].key && ug_yget_uint(y, f[G_MIN].val, K(G_MIN), 1, UINT32_MAX, &g->min_outcomes) != 0) ||
        (f[G_UPGRADED].key && get_share(y, f[G_UPGRADED].val, K(G_UPGRADED), &g->upgraded_ppm) != 0) ||
        (f[G_FAILED].key && get_share(y, f[G_FAILED].val, K(G_FAILED), &g->failed_ppm) != 0) ||
        (f[G_BASELINE].key && get_factor(y, f[G_BASELINE].val, K(G_BASELINE), &g->baseline_milli) != 0) ||
        (f[G_MANUAL].key && ug_yget_bool(y, f[G_MANUAL].val, K(G_MANUAL), &g->manual) != 0) ||
        ug_policy_health_window(y, &f[G_WINDOW], &f[G_LAST], key, &g->hw) != 0)
        return -1;
#undef K
    g->has_upgraded = f[G_UPGRADED].key != NULL;
    g->has_failed = f[G_FAILED].key != NULL;
    g->has_baseline = f[G_BASELINE].key != NULL;
    if (!g->manual && !g->min_outcomes && !g->has_upgraded && !g->has_failed && !g->has_baseline)
        return UG_YFAIL(y, v, key, "names nothing to wait for: give min_outcomes, upgraded, failed, baseline or "
                        "manual: true (or write gate: manual)");
    return 0;
}

int ug_policy_gate(const ug_ylog *y, const ug_ynode *v, const char *key, ug_gate **out)
{
    ug_gate *g = calloc(1, sizeof *g);
    if (!g)
        return UG_YFAIL(y, v, key, "out of memory");
    int rc = 0;
    if (v && v->kind == UG_Y_SCALAR) {
        if (!ug_ytext_is(v, "manual"))
            rc = UG_YFAIL(y, v, key, "expected manual or a mapping {min_outcomes, upgraded, failed, baseline, "
                          "window, last, manual}");
        g->manual = true;
    } else if (v && v->kind == UG_Y_MAP) {
        rc = gate_map(y, v, key, g);
    } else {
        rc = UG_YFAIL(y, v, key, "expected manual or a mapping, got %s", ug_ykind_name(v));
    }
    if (rc != 0) {
        free(g);
        return -1;
    }
    *out = g;
    return 0;
}

bool ug_step_gated(const ug_percent *pc, size_t k)
{
    return pc->kind == UG_PCT_STEPS && k < pc->nsteps && (pc->steps[k].gate || (k && pc->steps[k - 1].hold_after));
}

json_t *ug_health_window_json(const ug_health_window *hw)
{
    if (!hw->window && !hw->last)
        return json_string("cumulative");
    return json_pack("{s:o, s:o}", "window_s", hw->window ? json_integer((json_int_t)hw->window) : json_null(), "last",
                     hw->last ? json_integer(hw->last) : json_null());
}

json_t *ug_step_gate_json(const ug_pct_step *st)
{
    const ug_gate *g = st->gate;
    json_t *o = json_object();
    if (g)
        json_object_set_new(
            o, "gate",
            json_pack("{s:b, s:o, s:o, s:o, s:o, s:o}", "manual", g->manual, "min_outcomes",
                      g->min_outcomes ? json_integer((json_int_t)g->min_outcomes) : json_null(), "upgraded_ppm",
                      g->has_upgraded ? json_integer(g->upgraded_ppm) : json_null(), "failed_ppm",
                      g->has_failed ? json_integer(g->failed_ppm) : json_null(), "baseline",
                      g->has_baseline ? json_real(g->baseline_milli / 1000.0) : json_null(), "judges",
                      ug_health_window_json(&g->hw)));
    if (st->hold_after)
        json_object_set_new(o, "hold_after_s", json_integer((json_int_t)st->hold_after));
    return o;
}
