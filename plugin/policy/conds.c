/* The stage condition table (conds.h): for each condition its loader,
 * matcher, describer and destructor, then the one table listing them. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/conds.h"
#include "policy/ugpolicy.h"
#include "policy/policy_values.h"

/* ---- shared pieces ------------------------------------------------------ */

/* Appends "item", or ", item" when not the first, to out[0..cap); false
 * once it no longer fits (out then ends in "..."). */
static bool add_item(char *out, size_t cap, size_t *off, const char *item, bool first)
{
    int w = snprintf(out + *off, cap - *off, "%s%s", first ? "" : ", ", item);
    if (w < 0 || (size_t)w >= cap - *off) {
        if (cap >= 4)
            memcpy(out + cap - 4, "...", 4);
        *off = cap - 1;
        return false;
    }
    *off += (size_t)w;
    return true;
}

/* A list of short strings, each in a fixed-width slot (plat, chan, regions). */
typedef struct {
    size_t n, width;
    char *items; /* n slots of width bytes, NUL-padded */
    const ug_geo *geo; /* regions: the policy's DB, which outlives the arg */
} strlist;

static const char *item_at(const strlist *l, size_t i)
{
    return l->items + i * l->width;
}

/* One list item: 0 with its text in slot, or -1 after a message. */
typedef int (*item_fn)(const ug_cload *c, const ug_ynode *v, const char *key, char *slot, size_t width);

static int load_strlist(const ug_cload *c, const ug_ynode *v, const char *key, size_t width, item_fn item,
                        void **arg)
{
    ug_ynode *const *it;
    size_t n;
    if (ug_yget_list(c->y, v, key, UG_COND_LIST_MAX, &it, &n) != 0)
        return -1;
    strlist *l = calloc(1, sizeof *l);
    if (!l || !(l->items = calloc(n, width))) {
        free(l);
        return UG_YFAIL(c->y, v, key, "out of memory");
    }
    l->n = n;
    l->width = width;
    l->geo = c->p ? c->p->geo : NULL;
    for (size_t i = 0; i < n; i++) {
        char kp[UG_YAML_KEY_MAX];
        ug_ykey(kp, sizeof kp, key, NULL, 0, i);
        if (item(c, it[i], kp, l->items + i * width, width) != 0) {
            free(l->items);
            free(l);
            return -1;
        }
    }
    *arg = l;
    return 0;
}

static void strlist_free(void *arg)
{
    strlist *l = arg;
    if (l)
        free(l->items);
    free(l);
}

/* An absent plat or chan ("") matches no list. */
static bool strlist_has(const strlist *l, const char *v)
{
    if (!v || !v[0])
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(item_at(l, i), v) == 0)
            return true;
    return false;
}

static void strlist_describe(const strlist *l, const char *what, char *out, size_t cap)
{
    size_t off = 0;
    int w = snprintf(out, cap, "%s ", what);
    if (w < 0 || (size_t)w >= cap)
        return;
    off = (size_t)w;
    for (size_t i = 0; i < l->n && add_item(out, cap, &off, item_at(l, i), i == 0); i++)
        ;
}

/* ---- plat, chan ------------------------------------------------------------ */

static int plain_item(const ug_cload *c, const ug_ynode *v, const char *key, char *slot, size_t width)
{
    const char *s;
    size_t n;
    if (ug_yget_str(c->y, v, key, 1, width - 1, &s, &n) != 0)
        return -1;
    memcpy(slot, s, n);
    return 0;
}

static int plat_load(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2], void **arg)
{
    return load_strlist(c, v[0], key[0], UG_PLAT_MAX + 1, plain_item, arg);
}

static int chan_load(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2], void **arg)
{
    return load_strlist(c, v[0], key[0], UG_CHAN_MAX + 1, plain_item, arg);
}

static bool plat_match(const void *arg, const ug_peer *p)
{
    return strlist_has(arg, p->plat);
}

static bool chan_match(const void *arg, const ug_peer *p)
{
    return strlist_has(arg, p->chan);
}

static void plat_describe(const void *arg, char *out, size_t cap)
{
    strlist_describe(arg, "plat in", out, cap);
}

static void chan_describe(const void *arg, char *out, size_t cap)
{
    strlist_describe(arg, "chan in", out, cap);
}

/* ---- regions --------------------------------------------------------------- */

static int region_item(const ug_cload *c, const ug_ynode *v, const char *key, char *slot, size_t width)
{
    const char *s;
    size_t n;
    char buf[UG_YAML_SHOW_MAX];
    (void)width;
    if (ug_yget_str(c->y, v, key, 1, 64, &s, &n) != 0)
        return -1;
    if (ug_parse_region(s, n, slot) != 0)
        return UG_YFAIL(c->y, v, key,
                        "\"%s\" is not a region: an ISO 3166-1 country (DE) or ISO 3166-2 subdivision (CN-BJ)",
                        ug_yshow(buf, sizeof buf, s, n));
    return 0;
}

static int regions_load(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2], void **arg)
{
    if (!c->p || !c->p->geo)
        return UG_YFAIL(c->y, v[0], key[0], "regions needs a geoip database: name one with the top-level geoip key");
    return load_strlist(c, v[0], key[0], UG_REGION_MAX + 1, region_item, arg);
}

/* "CN" matches the country; "CN-BJ" the country and one subdivision. */
static bool regions_match(const void *arg, const ug_peer *p)
{
    const strlist *l = arg;
    ug_place at;
    if (!ug_geo_lookup(l->geo, p->src, &at))
        return false;
    for (size_t i = 0; i < l->n; i++) {
        const char *code = item_at(l, i);
        if (strncmp(code, at.country, 2) != 0 || !at.country[0])
            continue;
        if (!code[2])
            return true;
        for (unsigned k = 0; k < at.nsub; k++)
            if (strcmp(code + 3, at.sub[k]) == 0)
                return true;
    }
    return false;
}

static void regions_describe(const void *arg, char *out, size_t cap)
{
    strlist_describe(arg, "regions", out, cap);
}

/* ---- uid_mod, uid_digits_max ------------------------------------------------ */

typedef struct {
    uint64_t div, rem;
} modarg;

static int mod_load(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2], void **arg)
{
    ug_yfield f[2] = {{"div", true, NULL, NULL}, {"rem", true, NULL, NULL}};
    char kd[UG_YAML_KEY_MAX], kr[UG_YAML_KEY_MAX];
    modarg m;
    ug_ykey(kd, sizeof kd, key[0], "div", 3, 0);
    ug_ykey(kr, sizeof kr, key[0], "rem", 3, 0);
    if (ug_ycollect(c->y, v[0], key[0], f, 2) != 0 || ug_yget_uint(c->y, f[0].val, kd, 1, UINT64_MAX, &m.div) != 0 ||
        ug_yget_uint(c->y, f[1].val, kr, 0, UINT64_MAX, &m.rem) != 0)
        return -1;
    if (m.rem >= m.div)
        return UG_YFAIL(c->y, f[1].val, kr, "rem %" PRIu64 " must be below div %" PRIu64, m.rem, m.div);
    modarg *a = malloc(sizeof *a);
    if (!a)
        return UG_YFAIL(c->y, v[0], key[0], "out of memory");
    *a = m;
    *arg = a;
    return 0;
}

static bool mod_match(const void *arg, const ug_peer *p)
{
    const modarg *m = arg;
    return p->uid % m->div == m->rem;
}

static void mod_describe(const void *arg, char *out, size_t cap)
{
    const modarg *m = arg;
    snprintf(out, cap, "uid %% %" PRIu64 " == %" PRIu64, m->div, m->rem);
}

typedef struct {
    uint32_t digits;
    uint64_t below; /* 10^digits: a uid has at most `digits` digits iff it is below */
} digitsarg;

static int digits_load(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2], void **arg)
{
    uint64_t d;
    if (ug_yget_uint(c->y, v[0], key[0], 1, 19, &d) != 0)
        return -1;
    digitsarg *a = malloc(sizeof *a);
    if (!a)
        return UG_YFAIL(c->y, v[0], key[0], "out of memory");
    a->digits = (uint32_t)d;
    a->below = 1;
    for (uint64_t i = 0; i < d; i++)
        a->below *= 10; /* 10^19 < 2^64 */
    *arg = a;
    return 0;
}

static bool digits_match(const void *arg, const ug_peer *p)
{
    return p->uid < ((const digitsarg *)arg)->below;
}

static void digits_describe(const void *arg, char *out, size_t cap)
{
    snprintf(out, cap, "uid of at most %u digits", (unsigned)((const digitsarg *)arg)->digits);
}

/* ---- uids, uids_file --------------------------------------------------------- */

typedef struct {
    ug_uidset *set;
    uint64_t count; /* distinct uids */
} uidsarg;

static int uid_add(const ug_cload *c, uidsarg *a, uint64_t uid, const char *file, size_t line, const char *key)
{
    if (ug_uidset_has(a->set, uid))
        return 0;
    if (ug_uidset_add(a->set, uid) != 0)
        return ug_yfail(c->y, file, line, key, "out of memory");
    a->count++;
    return 0;
}

/* One line of a uids_file: blank and '#' lines are skipped, spaces, tabs
 * and a CR around the uid ignored. */
static int uid_line(const ug_cload *c, uidsarg *a, const char *file, size_t lineno, const char *key, const char *line,
                    size_t ll, bool toolong)
{
    size_t x = 0, y = ll;
    while (x < y && (line[x] == ' ' || line[x] == '\t'))
        x++;
    while (y > x && (line[y - 1] == ' ' || line[y - 1] == '\t' || line[y - 1] == '\r'))
        y--;
    if ((x < ll && line[x] == '#') || (x == y && !toolong))
        return 0;
    char buf[UG_YAML_SHOW_MAX];
    uint64_t uid;
    if (toolong || ug_parse_uid(line + x, y - x, &uid) != 0)
        return ug_yfail(c->y, file, lineno, key, "not a uid in 1..%" PRId64 ": \"%s%s\"", (int64_t)UG_UID_MAX,
                        ug_yshow(buf, sizeof buf, line + x, y - x), toolong ? "..." : "");
    return uid_add(c, a, uid, file, lineno, key);
}

/* One uid a line, streamed: the file may hold millions. */
static int uids_file(const ug_cload *c, uidsarg *a, const ug_ynode *v, const char *key)
{
    char file[UG_PATH_MAX], why[128];
    if (ug_yget_path(c->y, v, key, c->dir, file, sizeof file) != 0)
        return -1;
    int fd = ug_file_open(file, UINT64_MAX, NULL, why, sizeof why);
    if (fd < 0)
        return UG_YFAIL(c->y, v, key, "cannot read %s: %s", file, why);
    static const size_t chunk = 1u << 16;
    char *buf = malloc(chunk), line[40];
    size_t ll = 0, lineno = 1;
    bool toolong = false;
    int rc = buf ? 0 : UG_YFAIL(c->y, v, key, "out of memory");
    while (rc == 0) {
        ssize_t got = read(fd, buf, chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = UG_YFAIL(c->y, v, key, "cannot read %s: %s", file, strerror(errno));
        if (got <= 0)
            break;
        for (size_t i = 0; i < (size_t)got && rc == 0; i++) {
            if (buf[i] == '\n') {
                rc = uid_line(c, a, file, lineno++, key, line, ll, toolong);
                ll = 0;
                toolong = false;
            } else if (ll < sizeof line) {
                line[ll++] = buf[i];
            } else {
                toolong = true;
            }
        }
    }
    if (rc == 0 && (ll || toolong))
        rc = uid_line(c, a, file, lineno, key, line, ll, toolong);
    free(buf);
    close(fd);
    return rc;
}

static int uids_list(const ug_cload *c, uidsarg *a, const ug_ynode *v, const char *key)
{
    ug_ynode *const *it;
    size_t n;
    if (ug_yget_list(c->y, v, key, SIZE_MAX, &it, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char kp[UG_YAML_KEY_MAX];
        uint64_t uid;
        /* the list may hold two million: the key is only written for a message */
        if (ug_yis_plain(it[i]) && ug_parse_uid(it[i]->u.text, it[i]->n, &uid) == 0 &&
            !ug_uidset_has(a->set, uid)) {
            if (ug_uidset_add(a->set, uid) != 0)
                return UG_YFAIL(c->y, it[i], key, "out of memory");
            a->count++;
            continue;
        }
        ug_ykey(kp, sizeof kp, key, NULL, 0, i);
        if (ug_yget_uint(c->y, it[i], kp, 1, (uint64_t)UG_UID_MAX, &uid) != 0 ||
            uid_add(c, a, uid, c->y->path, ug_yline(it[i]), kp) != 0)
            return -1;
    }
    return 0;
}

static void uids_free(void *arg)
{
    uidsarg *a = arg;
    if (a)
        ug_uidset_free(a->set);
    free(a);
}

/* `uids` and `uids_file` feed one set: a stage naming both selects a uid in
 * either, with one lookup. */
static int uids_load(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2], void **arg)
{
    uidsarg *a = calloc(1, sizeof *a);
    if (!a || !(a->set = ug_uidset_new())) {
        free(a);
        return UG_YFAIL(c->y, v[0] ? v[0] : v[1], key[0], "out of memory");
    }
    if ((v[0] && uids_list(c, a, v[0], key[0]) != 0) || (v[1] && uids_file(c, a, v[1], key[1]) != 0)) {
        uids_free(a);
        return -1;
    }
    *arg = a;
    return 0;
}

static bool uids_match(const void *arg, const ug_peer *p)
{
    return ug_uidset_has(((const uidsarg *)arg)->set, p->uid);
}

static void uids_describe(const void *arg, char *out, size_t cap)
{
    snprintf(out, cap, "uid in a list of %" PRIu64, ((const uidsarg *)arg)->count);
}

/* ---- networks ------------------------------------------------------------------ */

typedef struct {
    ug_nets *nets;
    size_t count;
    char text[160]; /* the first prefixes, as written, for describe */
} netsarg;

static void nets_free(void *arg)
{
    netsarg *a = arg;
    if (a)
        ug_nets_free(a->nets);
    free(a);
}

static int nets_load(const ug_cload *c, const ug_ynode *const v[2], const char *const key[2], void **arg)
{
    ug_ynode *const *it;
    size_t n;
    if (ug_yget_list(c->y, v[0], key[0], SIZE_MAX, &it, &n) != 0)
        return -1;
    netsarg *a = calloc(1, sizeof *a);
    if (!a || !(a->nets = ug_nets_new())) {
        free(a);
        return UG_YFAIL(c->y, v[0], key[0], "out of memory");
    }
    size_t off = 0;
    bool room = true;
    for (size_t i = 0; i < n; i++) {
        char kp[UG_YAML_KEY_MAX], buf[UG_YAML_SHOW_MAX];
        const char *s = it[i]->u.text;
        size_t len = it[i]->n;
        if (it[i]->kind == UG_Y_SCALAR && !ug_yis_null(it[i]) && len >= 1 && len <= 64 && !memchr(s, 0, len) &&
            ug_nets_add(a->nets, s) == 0) {
            /* the usual case: no key to write */
        } else {
            ug_ykey(kp, sizeof kp, key[0], NULL, 0, i);
            if (ug_yget_str(c->y, it[i], kp, 1, 64, &s, &len) == 0)
                UG_YFAIL(c->y, it[i], kp, "\"%s\" is not a network (a.b.c.d/len or x:y::/len, no bits set past len)",
                         ug_yshow(buf, sizeof buf, s, len));
            nets_free(a);
            return -1;
        }
        if (room)
            room = add_item(a->text, sizeof a->text, &off, s, i == 0);
    }
    ug_nets_seal(a->nets);
    a->count = n;
    *arg = a;
    return 0;
}

static bool nets_match(const void *arg, const ug_peer *p)
{
    return ug_nets_contains_sa(((const netsarg *)arg)->nets, p->src);
}

static void nets_describe(const void *arg, char *out, size_t cap)
{
    const netsarg *a = arg;
    snprintf(out, cap, "networks %s (%zu)", a->text, a->count);
}

/* ---- the table ----------------------------------------------------------------------- */

const ug_cond_row ug_cond_rows[] = {
    {{"uid_mod", 0, mod_match, mod_describe, free}, NULL, mod_load},
    {{"uid_digits_max", 0, digits_match, digits_describe, free}, NULL, digits_load},
    {{"plat", 0, plat_match, plat_describe, strlist_free}, NULL, plat_load},
    {{"chan", 0, chan_match, chan_describe, strlist_free}, NULL, chan_load},
    {{"uids", UG_CONDF_SECRET, uids_match, uids_describe, uids_free}, "uids_file", uids_load},
    {{"networks", UG_CONDF_ADDRESS, nets_match, nets_describe, nets_free}, NULL, nets_load},
    {{"regions", UG_CONDF_ADDRESS, regions_match, regions_describe, strlist_free}, NULL, regions_load},
};
const size_t ug_cond_nrows = sizeof ug_cond_rows / sizeof *ug_cond_rows;
_Static_assert(sizeof ug_cond_rows / sizeof *ug_cond_rows <= UG_COND_ROWS_MAX, "raise UG_COND_ROWS_MAX");
