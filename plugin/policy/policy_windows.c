/* Off-peak windows in the policy (docs/policy-v2-extensions.md): the `tz`
 * and `windows` keys of a rollout or stage, one parser each, turned into a
 * calendar at load; and the question a decision asks of them. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy.h"
#include "policy/policy_windows.h"

#define WIN_TEXT_MAX 64u /* bytes of a days, from or to value */

/* "peer", or a zone tzdata has (its file read once, here at load). */
static int zone_check(const ug_ylog *y, const ug_ynode *v, const char *key, const char *name)
{
    char why[256], buf[UG_YAML_SHOW_MAX];
    if (strcmp(name, UG_CAL_PEER) == 0)
        return 0;
    if (!ug_tz_name_ok(name))
        return UG_YFAIL(y, v, key, "\"%s\" is not a zone name (UTC, Europe/Berlin, ... or peer)",
                        ug_yshow(buf, sizeof buf, name, strlen(name)));
    ug_tz *z = ug_tz_load(NULL, name, why, sizeof why);
    if (!z)
        return UG_YFAIL(y, v, key, "%s", why);
    ug_tz_free(z);
    return 0;
}

int ug_policy_tz(const ug_ylog *y, const ug_ynode *v, const char *key, char out[UG_TZ_NAME_MAX + 1])
{
    const char *s;
    size_t n;
    char name[UG_TZ_NAME_MAX + 1];
    if (ug_yget_str(y, v, key, 1, UG_TZ_NAME_MAX, &s, &n) != 0)
        return -1;
    memcpy(name, s, n);
    name[n] = '\0';
    if (zone_check(y, v, key, name) != 0)
        return -1;
    memcpy(out, name, n + 1);
    return 0;
}

/* A string field of a window into out ("" when absent). */
static int win_text(const ug_ylog *y, const ug_yfield *f, const char *key, char out[WIN_TEXT_MAX + 1])
{
    const char *s;
    size_t n;
    out[0] = '\0';
    if (!f->key)
        return 0;
    if (ug_yget_str(y, f->val, key, 1, WIN_TEXT_MAX, &s, &n) != 0)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* One item of `windows`: {days, from, to, tz}. A window without its own tz
 * takes deftz ("peer" makes it a peer window). The calendar's message
 * starts with the field it blames: the key names that field. */
static int load_window(const ug_ylog *y, const ug_ynode *v, const char *wk, const char *deftz, ug_cal_window *w)
{
    ug_yfield f[4] = {{"days", false, NULL, NULL}, {"from", true, NULL, NULL}, {"to", true, NULL, NULL},
                      {"tz", false, NULL, NULL}};
    char t[4][WIN_TEXT_MAX + 1], kp[UG_YAML_KEY_MAX], why[256];
    if (ug_ycollect(y, v, wk, f, 4) != 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        ug_ykey(kp, sizeof kp, wk, f[i].name, strlen(f[i].name), 0);
        if (win_text(y, &f[i], kp, t[i]) != 0 || (i == 3 && t[3][0] && zone_check(y, f[3].val, kp, t[3]) != 0))
            return -1;
    }
    const char *tz = t[3][0] ? t[3] : (strcmp(deftz, UG_CAL_PEER) == 0 ? deftz : "");
    if (ug_cal_window_parse(w, f[0].key ? t[0] : NULL, t[1], t[2], tz, why, sizeof why) == 0)
        return 0;
    const char *colon = strstr(why, ": ");
    int fi = 1;
    for (int i = 0; colon && i < 4; i++)
        if ((size_t)(colon - why) == strlen(f[i].name) && strncmp(why, f[i].name, strlen(f[i].name)) == 0)
            fi = i;
    ug_ykey(kp, sizeof kp, wk, f[fi].name, strlen(f[fi].name), 0);
    return UG_YFAIL(y, f[fi].val ? f[fi].val : v, kp, "%s", colon ? colon + 2 : why);
}

int ug_policy_windows(const ug_ylog *y, const ug_ynode *v, const char *key, const char *deftz, uint64_t now,
                      ug_windows *out)
{
    ug_ynode *const *it;
    size_t n;
    ug_cal_window w[UG_CAL_WINDOWS_MAX];
    char kp[UG_YAML_KEY_MAX], why[256];
    if (ug_yget_list(y, v, key, UG_CAL_WINDOWS_MAX, &it, &n) != 0)
        return -1;
    bool peer = false;
    for (size_t i = 0; i < n; i++) {
        ug_ykey(kp, sizeof kp, key, NULL, 0, i);
        if (load_window(y, it[i], kp, deftz, &w[i]) != 0)
            return -1;
        peer |= strcmp(w[i].tz, UG_CAL_PEER) == 0;
    }
    bool deftz_peer = strcmp(deftz, UG_CAL_PEER) == 0;
    ug_cal_opts o = {.tz = deftz[0] && !deftz_peer ? deftz : NULL};
    if (!(out->cal = ug_cal_create(w, n, &o, (int64_t)now, why, sizeof why)))
        return UG_YFAIL(y, v, key, "%s", why);
    out->peer = peer;
    out->n = n;
    return 0;
}

void ug_windows_free(ug_windows *w)
{
    ug_cal_free(w->cal);
    w->cal = NULL;
}

void ug_windows_tick(const ug_windows *w, int64_t now)
{
    if (w->cal)
        ug_cal_tick(w->cal, now);
}

bool ug_windows_open(const ug_windows *w, const char *peer_zone, int64_t now, int64_t *next)
{
    *next = UG_CAL_NEVER;
    if (!w->cal)
        return true;
    ug_cal_state s;
    ug_cal_at(w->cal, peer_zone, now, &s);
    *next = s.change;
    return s.open;
}

json_t *ug_windows_json(const ug_windows *w, int64_t now)
{
    int64_t next;
    if (!w->cal)
        return json_null();
    bool open = ug_windows_open(w, NULL, now, &next);
    return json_pack("{s:I, s:b, s:b, s:o}", "windows", (json_int_t)w->n, "peer", w->peer, "open", open, "next",
                     next == UG_CAL_NEVER ? json_null() : json_integer((json_int_t)next));
}
