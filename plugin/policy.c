/* Policy file loader (spec/policy.md): YAML in, one validated read-only ug_policy out; plus stage evaluation.
 *
 * Extensions to spec/policy.md (all optional):
 *   paused: bool                 default false; every targeted peer gets WAIT why=4
 *   cookie_threshold: uint       default 1000; cookie: auto turns cookies on above
 *                                this many signature checks per second
 *   source_budget: uint          default 1000; signature checks per second one
 *                                source network (IPv4 /24, IPv6 /56) may cost this
 *                                tracker; 0 for no limit
 *   stages[].salt: str           1..64 bytes, default the stage name; the percent
 *                                bucket salt (change it to reshuffle a stage)
 * Rules the spec leaves open, decided here:
 *   - Integers, percent, rate and booleans must be unquoted; strings (names,
 *     paths, versions, CIDRs, times) may be quoted or not. Integers are plain
 *     decimal: no sign, no leading zero, no "_", no overflow.
 *   - Lists (issuers, targets, networks, uids, plat, chan) must not be empty;
 *     `stages` is required but may be empty (then nobody is selected).
 *   - `shard`, when present, needs both index and count; `uid_mod` both div and rem.
 *   - hint_ttl >= 1; clock_window, retry, cookie_threshold any uint32.
 *   - uids_file: one decimal uid a line; blank lines and lines starting with
 *     '#' are skipped, spaces/tabs/CR around a uid ignored.
 *   - start/end: RFC 3339 (date 'T' time, optional fraction (dropped), 'Z' or
 *     +hh:mm/-hh:mm).
 * Every error is one line "PATH:LINE: KEY: message": KEY is a dotted path
 * (stages[0] is the first stage); an unreadable policy file is
 * "PATH:0: (file): ...", a YAML syntax error "PATH:LINE: (yaml): ...", a bad
 * root "PATH:LINE: (top): ...", and a bad uids_file line names that file and
 * its own line. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "policy.h"

#define KEY_MAX 192u  /* a dotted key path; longer ones are truncated */
#define SHOW_MAX 64u  /* how much of a bad value an error message quotes */
#define POLICY_FILE_MAX (64u << 20) /* refuse absurd files before parsing them */

typedef struct {
    const char *path; /* the policy file, for messages */
    char dir[UG_PATH_MAX]; /* where relative paths resolve */
    yaml_document_t *doc;
    char *err;
    size_t errcap;
} ldr;

/* ---- errors -------------------------------------------------------------- */

/* Replaces control bytes so the message stays one line whatever the input. */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

__attribute__((format(printf, 5, 6))) static int failf(ldr *L, const char *file, size_t line,
                                                       const char *key, const char *fmt, ...)
{
    char msg[UG_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (L->err && L->errcap) {
        snprintf(L->err, L->errcap, "%s:%zu: %s: %s", file, line, key, msg);
        one_line(L->err);
    }
    return -1;
}

static size_t line_of(const yaml_node_t *n)
{
    return n ? n->start_mark.line + 1 : 0;
}

#define FAIL(L, node, key, ...) failf((L), (L)->path, line_of(node), (key), __VA_ARGS__)

static const char *errstr(int e, char *buf, size_t cap)
{
    return strerror_r(e, buf, cap); /* GNU variant (_GNU_SOURCE): returns the text */
}

/* A printable, bounded copy of s[0..len) for quoting in a message. */
static const char *show(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = len < cap - 4 ? len : cap - 4, i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n < len)
        memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

/* ---- YAML node access ---------------------------------------------------- */

static yaml_node_t *node_at(ldr *L, int idx)
{
    return yaml_document_get_node(L->doc, idx);
}

static const char *sval(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static size_t slen(const yaml_node_t *n)
{
    return n->data.scalar.length;
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool text_is(const yaml_node_t *n, const char *s)
{
    size_t l = strlen(s);
    return slen(n) == l && memcmp(sval(n), s, l) == 0;
}

static bool is_null(const yaml_node_t *n)
{
    return is_plain(n) && (slen(n) == 0 || text_is(n, "~") || text_is(n, "null") ||
                           text_is(n, "Null") || text_is(n, "NULL"));
}

static const char *kind(const yaml_node_t *n)
{
    if (!n)
        return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return is_null(n) ? "null" : (is_plain(n) ? "a scalar" : "a quoted string");
    default:
        return "nothing";
    }
}

/* out = base + "." + key (or just key at the top). */
static void join(char *out, size_t cap, const char *base, const char *key, size_t klen)
{
    char k[SHOW_MAX];
    show(k, sizeof k, key, klen);
    if (base[0])
        snprintf(out, cap, "%s.%s", base, k);
    else
        snprintf(out, cap, "%s", k);
}

typedef struct {
    const char *name;
    bool required;
    yaml_node_t *key, *val;
} field;

/* Matches the mapping m against the fields f[0..nf): every key must be a
 * known one, at most once; every required one present. Fills key/val. */
static int collect(ldr *L, yaml_node_t *m, const char *path, field *f, size_t nf)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return FAIL(L, m, path[0] ? path : "(top)", "expected a mapping, got %s", kind(m));
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(L, p->key), *v = node_at(L, p->value);
        if (!k || k->type != YAML_SCALAR_NODE)
            return FAIL(L, k ? k : m, path[0] ? path : "(top)", "mapping keys must be strings, got %s",
                        kind(k));
        char kp[KEY_MAX];
        join(kp, sizeof kp, path, sval(k), slen(k));
        size_t i;
        for (i = 0; i < nf; i++)
            if (text_is(k, f[i].name))
                break;
        if (i == nf) {
            char known[UG_ERR_MAX / 2] = "";
            size_t off = 0;
            for (size_t j = 0; j < nf && off < sizeof known; j++) {
                int w = snprintf(known + off, sizeof known - off, "%s%s", j ? ", " : "", f[j].name);
                if (w < 0)
                    break;
                off += (size_t)w;
            }
            return FAIL(L, k, kp, "unknown key (expected one of: %s)", known);
        }
        if (f[i].key)
            return FAIL(L, k, kp, "duplicate key (first at line %zu)", line_of(f[i].key));
        f[i].key = k;
        f[i].val = v;
    }
    for (size_t i = 0; i < nf; i++) {
        if (f[i].required && !f[i].key) {
            char kp[KEY_MAX];
            join(kp, sizeof kp, path, f[i].name, strlen(f[i].name));
            return FAIL(L, m, kp, "missing required key");
        }
    }
    return 0;
}

/* Unquoted decimal in [min, max]: digits only, no leading zero (YAML 1.1
 * would read 010 as octal), no overflow. */
static int get_uint(ldr *L, const yaml_node_t *v, const char *key, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    char buf[SHOW_MAX];
    if (!v || !is_plain(v) || is_null(v))
        return FAIL(L, v, key, "expected an unquoted integer in %" PRIu64 "..%" PRIu64 ", got %s", min,
                    max, kind(v));
    const char *s = sval(v);
    size_t n = slen(v);
    bool ok = n >= 1 && n <= 20 && !(n > 1 && s[0] == '0');
    for (size_t i = 0; ok && i < n; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    uint64_t x = 0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        unsigned long long r = strtoull(s, &end, 10);
        ok = errno == 0 && end == s + n;
        x = (uint64_t)r;
    }
    if (!ok || x < min || x > max)
        return FAIL(L, v, key, "expected an integer in %" PRIu64 "..%" PRIu64 ", got \"%s\"", min, max,
                    show(buf, sizeof buf, s, n));
    *out = x;
    return 0;
}

static int get_bool(ldr *L, const yaml_node_t *v, const char *key, bool *out)
{
    if (v && is_plain(v) && (text_is(v, "true") || text_is(v, "True") || text_is(v, "TRUE"))) {
        *out = true;
        return 0;
    }
    if (v && is_plain(v) && (text_is(v, "false") || text_is(v, "False") || text_is(v, "FALSE"))) {
        *out = false;
        return 0;
    }
    char buf[SHOW_MAX];
    if (v && v->type == YAML_SCALAR_NODE && !is_null(v))
        return FAIL(L, v, key, "expected true or false, got \"%s\"", show(buf, sizeof buf, sval(v), slen(v)));
    return FAIL(L, v, key, "expected true or false, got %s", kind(v));
}

/* A string of minlen..maxlen bytes without NUL; quoted or not, never null. */
static int get_str(ldr *L, const yaml_node_t *v, const char *key, size_t minlen, size_t maxlen,
                   const char **s, size_t *len)
{
    if (!v || v->type != YAML_SCALAR_NODE || is_null(v))
        return FAIL(L, v, key, "expected a string, got %s", kind(v));
    if (memchr(sval(v), '\0', slen(v)))
        return FAIL(L, v, key, "string contains a NUL byte");
    if (slen(v) < minlen || slen(v) > maxlen)
        return FAIL(L, v, key, "expected %zu..%zu bytes, got %zu", minlen, maxlen, slen(v));
    *s = sval(v);
    *len = slen(v);
    return 0;
}

/* A non-empty list; its items via items/n. */
static int get_list(ldr *L, const yaml_node_t *v, const char *key, yaml_node_item_t **items, size_t *n)
{
    if (!v || v->type != YAML_SEQUENCE_NODE)
        return FAIL(L, v, key, "expected a list, got %s", kind(v));
    *items = v->data.sequence.items.start;
    *n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (*n == 0)
        return FAIL(L, v, key, "empty list (leave the key out instead)");
    return 0;
}

/* A path, resolved against the policy's folder unless absolute. */
static int get_path(ldr *L, const yaml_node_t *v, const char *key, char out[UG_PATH_MAX])
{
    const char *s;
    size_t n;
    if (get_str(L, v, key, 1, UG_PATH_MAX - 1, &s, &n) != 0)
        return -1;
    int w = s[0] == '/' ? snprintf(out, UG_PATH_MAX, "%s", s) : snprintf(out, UG_PATH_MAX, "%s/%s", L->dir, s);
    if (w < 0 || (size_t)w >= UG_PATH_MAX)
        return FAIL(L, v, key, "path too long once resolved (max %u bytes)", UG_PATH_MAX - 1);
    return 0;
}

/* ---- value parsers (pure: text in, value out) ---------------------------- */

/* "P", "P.D" or "P.DD" with P in 0..100 → basis points, exactly (no double:
 * 1.15 must be 115, not 114). */
static int parse_percent(const char *s, size_t n, uint32_t *bp)
{
    size_t i = 0;
    uint32_t whole = 0, frac = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i < 3)
        whole = whole * 10 + (uint32_t)(s[i++] - '0');
    if (i == 0 || (i > 1 && s[0] == '0'))
        return -1;
    if (i < n) {
        if (s[i++] != '.')
            return -1;
        size_t d = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && d < 2)
            frac = frac * 10 + (uint32_t)(s[i++] - '0'), d++;
        if (d == 0 || i != n)
            return -1;
        if (d == 1)
            frac *= 10;
    }
    uint32_t v = whole * 100 + frac;
    if (v > 10000)
        return -1;
    *bp = v;
    return 0;
}

/* Positive decimal "I" or "I.F" (no exponent, no sign: locale-independent). */
static int parse_rate(const char *s, size_t n, double *out)
{
    size_t i = 0;
    double v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i < 12)
        v = v * 10 + (s[i++] - '0');
    if (i == 0)
        return -1;
    if (i < n) {
        if (s[i++] != '.')
            return -1;
        double scale = 1;
        size_t d = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && d < 9)
            scale /= 10, v += (s[i++] - '0') * scale, d++;
        if (d == 0 || i != n)
            return -1;
    }
    if (!(v > 0))
        return -1;
    *out = v;
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits_at(const char *s, size_t n, size_t at, size_t count, unsigned *out)
{
    if (at + count > n)
        return false;
    unsigned v = 0;
    for (size_t i = at; i < at + count; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* RFC 3339 date-time → Unix seconds. */
static int parse_time(const char *s, size_t n, int64_t *out)
{
    unsigned Y, M, D, h, m, sec, oh = 0, om = 0;
    if (!digits_at(s, n, 0, 4, &Y) || n < 20 || s[4] != '-' || !digits_at(s, n, 5, 2, &M) || s[7] != '-' ||
        !digits_at(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || !digits_at(s, n, 11, 2, &h) ||
        s[13] != ':' || !digits_at(s, n, 14, 2, &m) || s[16] != ':' || !digits_at(s, n, 17, 2, &sec))
        return -1;
    size_t i = 19;
    if (s[i] == '.') {
        size_t d = 0;
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            d++;
        if (d == 0)
            return -1;
    }
    if (i >= n)
        return -1;
    int sign = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        sign = s[i] == '+' ? 1 : -1;
        if (!digits_at(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' || !digits_at(s, n, i + 4, 2, &om))
            return -1;
        i += 6;
        if (oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    if (i != n)
        return -1;
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) || h > 23 || m > 59 ||
        sec > 60)
        return -1;
    int64_t t = days_from_civil(Y, M, D) * 86400 + (int64_t)h * 3600 + (int64_t)m * 60 + sec;
    t -= sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    *out = t;
    return 0;
}

/* "1.4.0", "<1.3", "<= 1.3". */
static int parse_target(const char *s, size_t n, ug_target *t)
{
    size_t i = 0;
    t->op = UG_TARGET_EQ;
    if (n >= 2 && s[0] == '<' && s[1] == '=')
        t->op = UG_TARGET_LE, i = 2;
    else if (n >= 1 && s[0] == '<')
        t->op = UG_TARGET_LT, i = 1;
    if (i)
        while (i < n && s[i] == ' ')
            i++;
    return ug_version_parse(&t->v, s + i, n - i) == 0 ? 0 : -1;
}

/* Decimal uid 1..2^63-1, no sign, no leading zero. */
static int parse_uid(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19 || s[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits < 2^64: no overflow */
    }
    if (v > (uint64_t)UG_UID_MAX)
        return -1;
    *out = v;
    return 0;
}

/* ---- sections -------------------------------------------------------------- */

static int uid_line(ldr *L, ug_stage *st, const char *file, size_t lineno, const char *key, char *line,
                    size_t ll, bool toolong)
{
    size_t a = 0, b = ll;
    while (a < b && (line[a] == ' ' || line[a] == '\t'))
        a++;
    while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t' || line[b - 1] == '\r'))
        b--;
    if (a < ll && line[a] == '#')
        return 0;
    if (a == b && !toolong)
        return 0;
    char buf[SHOW_MAX];
    uint64_t uid;
    if (toolong || parse_uid(line + a, b - a, &uid) != 0)
        return failf(L, file, lineno, key, "not a uid in 1..%" PRId64 ": \"%s%s\"", (int64_t)UG_UID_MAX,
                     show(buf, sizeof buf, line + a, b - a), toolong ? "..." : "");
    if (ug_uidset_add(st->uids, uid) != 0)
        return failf(L, file, lineno, key, "out of memory");
    return 0;
}

/* One uid a line, streamed: the file may hold millions. */
static int load_uids_file(ldr *L, ug_stage *st, const char *file, const yaml_node_t *v, const char *key)
{
    char eb[128];
    /* O_NONBLOCK: a FIFO must not block the open; then only a regular file
     * will do, or /dev/zero would feed the loop forever (and a reload with
     * it would hang the host) */
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return FAIL(L, v, key, "cannot read %s: %s", file, errstr(errno, eb, sizeof eb));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return FAIL(L, v, key, "cannot read %s: not a regular file", file);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return FAIL(L, v, key, "cannot read %s: %s", file, errstr(errno, eb, sizeof eb));
    }
    static const size_t chunk = 1u << 16;
    char *buf = malloc(chunk);
    if (!buf) {
        fclose(f);
        return FAIL(L, v, key, "out of memory");
    }
    char line[40];
    size_t ll = 0, lineno = 1, got;
    bool toolong = false;
    int rc = 0;
    while (rc == 0 && (got = fread(buf, 1, chunk, f)) > 0) {
        for (size_t i = 0; i < got && rc == 0; i++) {
            if (buf[i] == '\n') {
                rc = uid_line(L, st, file, lineno, key, line, ll, toolong);
                ll = 0;
                toolong = false;
                lineno++;
            } else if (ll < sizeof line) {
                line[ll++] = buf[i];
            } else {
                toolong = true;
            }
        }
    }
    if (rc == 0 && ferror(f))
        rc = FAIL(L, v, key, "cannot read %s: read error", file);
    if (rc == 0 && (ll || toolong))
        rc = uid_line(L, st, file, lineno, key, line, ll, toolong);
    free(buf);
    fclose(f);
    return rc;
}

static bool good_name(const char *s, size_t n)
{
    if (n < 1 || n > UG_STAGE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

enum {
    S_NAME, S_SALT, S_NETWORKS, S_UIDS, S_UIDS_FILE, S_DIGITS, S_MOD, S_PERCENT,
    S_PLAT, S_CHAN, S_START, S_END, S_QUOTA, S_RATE, S_N
};

/* A plat or chan list into a fixed-width array of strings. */
static int load_strlist(ldr *L, const yaml_node_t *v, const char *key, size_t maxlen, char **arr, size_t *count)
{
    yaml_node_item_t *it;
    size_t n;
    if (get_list(L, v, key, &it, &n) != 0)
        return -1;
    char *a = calloc(n, maxlen + 1);
    if (!a)
        return FAIL(L, v, key, "out of memory");
    *arr = a;
    *count = n;
    for (size_t i = 0; i < n; i++) {
        char kp[KEY_MAX];
        snprintf(kp, sizeof kp, "%s[%zu]", key, i);
        const char *s;
        size_t len;
        if (get_str(L, node_at(L, it[i]), kp, 1, maxlen, &s, &len) != 0)
            return -1;
        memcpy(a + i * (maxlen + 1), s, len);
    }
    return 0;
}

static int load_stage(ldr *L, ug_policy *p, size_t idx, yaml_node_t *node)
{
    ug_stage *st = &p->stages[idx];
    char sp[32], kp[KEY_MAX], buf[SHOW_MAX];
    snprintf(sp, sizeof sp, "stages[%zu]", idx);
    field f[S_N] = {
        [S_NAME] = {"name", true, NULL, NULL},        [S_SALT] = {"salt", false, NULL, NULL},
        [S_NETWORKS] = {"networks", false, NULL, NULL}, [S_UIDS] = {"uids", false, NULL, NULL},
        [S_UIDS_FILE] = {"uids_file", false, NULL, NULL}, [S_DIGITS] = {"uid_digits_max", false, NULL, NULL},
        [S_MOD] = {"uid_mod", false, NULL, NULL},     [S_PERCENT] = {"percent", false, NULL, NULL},
        [S_PLAT] = {"plat", false, NULL, NULL},       [S_CHAN] = {"chan", false, NULL, NULL},
        [S_START] = {"start", false, NULL, NULL},     [S_END] = {"end", false, NULL, NULL},
        [S_QUOTA] = {"quota", false, NULL, NULL},     [S_RATE] = {"rate", false, NULL, NULL},
    };
    if (collect(L, node, sp, f, S_N) != 0)
        return -1;
#define KP(name) (snprintf(kp, sizeof kp, "%s.%s", sp, (name)), kp)

    const char *s;
    size_t n;
    if (get_str(L, f[S_NAME].val, KP("name"), 1, UG_STAGE_NAME_MAX, &s, &n) != 0)
        return -1;
    if (!good_name(s, n))
        return FAIL(L, f[S_NAME].val, kp, "\"%s\" is not a stage name ([a-z0-9-]{1,32})", show(buf, sizeof buf, s, n));
    for (size_t j = 0; j < idx; j++)
        if (strlen(p->stages[j].name) == n && memcmp(p->stages[j].name, s, n) == 0)
            return FAIL(L, f[S_NAME].val, kp, "duplicate stage name \"%s\" (also stages[%zu])", p->stages[j].name, j);
    memcpy(st->name, s, n);
    memcpy(st->salt, s, n);
    st->salt_len = n;

    if (f[S_SALT].key) {
        if (get_str(L, f[S_SALT].val, KP("salt"), 1, UG_SALT_MAX, &s, &n) != 0)
            return -1;
        memset(st->salt, 0, sizeof st->salt);
        memcpy(st->salt, s, n);
        st->salt_len = n;
    }

    if (f[S_NETWORKS].key) {
        yaml_node_item_t *it;
        size_t cnt;
        if (get_list(L, f[S_NETWORKS].val, KP("networks"), &it, &cnt) != 0)
            return -1;
        if (!(st->nets = ug_nets_new()))
            return FAIL(L, f[S_NETWORKS].val, kp, "out of memory");
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_t *v = node_at(L, it[i]);
            snprintf(kp, sizeof kp, "%s.networks[%zu]", sp, i);
            if (get_str(L, v, kp, 1, 64, &s, &n) != 0)
                return -1;
            if (ug_nets_add(st->nets, s) != 0)
                return FAIL(L, v, kp, "\"%s\" is not a network (a.b.c.d/len or x:y::/len, no bits set past len)",
                            show(buf, sizeof buf, s, n));
        }
        st->conds |= UG_COND_NETWORKS;
    }

    if (f[S_UIDS].key || f[S_UIDS_FILE].key) {
        if (!(st->uids = ug_uidset_new()))
            return FAIL(L, node, sp, "out of memory");
        st->conds |= UG_COND_UIDS;
    }
    if (f[S_UIDS].key) {
        yaml_node_item_t *it;
        size_t cnt;
        if (get_list(L, f[S_UIDS].val, KP("uids"), &it, &cnt) != 0)
            return -1;
        for (size_t i = 0; i < cnt; i++) {
            uint64_t uid;
            snprintf(kp, sizeof kp, "%s.uids[%zu]", sp, i);
            if (get_uint(L, node_at(L, it[i]), kp, 1, (uint64_t)UG_UID_MAX, &uid) != 0)
                return -1;
            if (ug_uidset_add(st->uids, uid) != 0)
                return FAIL(L, node_at(L, it[i]), kp, "out of memory");
        }
    }
    if (f[S_UIDS_FILE].key) {
        char path[UG_PATH_MAX];
        if (get_path(L, f[S_UIDS_FILE].val, KP("uids_file"), path) != 0 ||
            load_uids_file(L, st, path, f[S_UIDS_FILE].val, kp) != 0)
            return -1;
    }

    uint64_t x;
    if (f[S_DIGITS].key) {
        if (get_uint(L, f[S_DIGITS].val, KP("uid_digits_max"), 1, 19, &x) != 0)
            return -1;
        st->uid_digits_max = (uint32_t)x;
        st->conds |= UG_COND_DIGITS;
    }

    if (f[S_MOD].key) {
        field mf[2] = {{"div", true, NULL, NULL}, {"rem", true, NULL, NULL}};
        if (collect(L, f[S_MOD].val, KP("uid_mod"), mf, 2) != 0)
            return -1;
        if (get_uint(L, mf[0].val, KP("uid_mod.div"), 1, UINT64_MAX, &st->mod_div) != 0 ||
            get_uint(L, mf[1].val, KP("uid_mod.rem"), 0, UINT64_MAX, &st->mod_rem) != 0)
            return -1;
        if (st->mod_rem >= st->mod_div)
            return FAIL(L, mf[1].val, kp, "rem %" PRIu64 " must be below div %" PRIu64, st->mod_rem, st->mod_div);
        st->conds |= UG_COND_MOD;
    }

    if (f[S_PERCENT].key) {
        yaml_node_t *v = f[S_PERCENT].val;
        KP("percent");
        if (!is_plain(v) || is_null(v))
            return FAIL(L, v, kp, "expected an unquoted number 0..100 with at most two decimals, got %s", kind(v));
        if (parse_percent(sval(v), slen(v), &st->percent_bp) != 0)
            return FAIL(L, v, kp, "expected a number 0..100 with at most two decimals, got \"%s\"",
                        show(buf, sizeof buf, sval(v), slen(v)));
        st->conds |= UG_COND_PERCENT;
    }

    if (f[S_PLAT].key) {
        char *a = NULL;
        int rc = load_strlist(L, f[S_PLAT].val, KP("plat"), UG_PLAT_MAX, &a, &st->nplat);
        st->plat = (char(*)[UG_PLAT_MAX + 1])a;
        if (rc != 0)
            return -1;
        st->conds |= UG_COND_PLAT;
    }
    if (f[S_CHAN].key) {
        char *a = NULL;
        int rc = load_strlist(L, f[S_CHAN].val, KP("chan"), UG_CHAN_MAX, &a, &st->nchan);
        st->chan = (char(*)[UG_CHAN_MAX + 1])a;
        if (rc != 0)
            return -1;
        st->conds |= UG_COND_CHAN;
    }

    static const struct {
        int field;
        const char *name;
        unsigned cond;
    } times[2] = {{S_START, "start", UG_COND_START}, {S_END, "end", UG_COND_END}};
    for (size_t t = 0; t < 2; t++) {
        yaml_node_t *v = f[times[t].field].val;
        if (!f[times[t].field].key)
            continue;
        int64_t when;
        if (get_str(L, v, KP(times[t].name), 1, 64, &s, &n) != 0)
            return -1;
        if (parse_time(s, n, &when) != 0)
            return FAIL(L, v, kp, "\"%s\" is not an RFC 3339 time like 2026-12-01T00:00:00Z",
                        show(buf, sizeof buf, s, n));
        *(t == 0 ? &st->start : &st->end) = when;
        st->conds |= times[t].cond;
    }
    if ((st->conds & UG_COND_START) && (st->conds & UG_COND_END) && st->end <= st->start)
        return FAIL(L, f[S_END].val, KP("end"), "end must be after start");

    if (f[S_QUOTA].key) {
        if (get_uint(L, f[S_QUOTA].val, KP("quota"), 0, UINT64_MAX, &st->quota) != 0)
            return -1;
        st->has_quota = true;
    }

    if (f[S_RATE].key) {
        yaml_node_t *v = f[S_RATE].val;
        KP("rate");
        if (!is_plain(v) || is_null(v))
            return FAIL(L, v, kp, "expected an unquoted positive number, got %s", kind(v));
        if (parse_rate(sval(v), slen(v), &st->rate) != 0)
            return FAIL(L, v, kp, "expected a positive number (offers per second), got \"%s\"",
                        show(buf, sizeof buf, sval(v), slen(v)));
        st->has_rate = true;
    }
#undef KP
    return 0;
}

static int load_keys(ldr *L, ug_policy *p, yaml_node_t *node)
{
    field f[2] = {{"hint", true, NULL, NULL}, {"issuers", true, NULL, NULL}};
    char path[UG_PATH_MAX], why[256], kp[KEY_MAX];
    if (collect(L, node, "keys", f, 2) != 0)
        return -1;
    if (get_path(L, f[0].val, "keys.hint", path) != 0)
        return -1;
    why[0] = '\0';
    if (!(p->hint_sk = ug_seckey_load(path, why, sizeof why)))
        return FAIL(L, f[0].val, "keys.hint", "cannot load secret key %s: %s", path, why);
    /* libsodium's secret key is seed || pk. */
    ug_pubkey_set(&p->hint_pub, p->hint_sk + UG_SEED_LEN);

    yaml_node_item_t *it;
    size_t n;
    if (get_list(L, f[1].val, "keys.issuers", &it, &n) != 0)
        return -1;
    if (!(p->issuers = calloc(n, sizeof *p->issuers)))
        return FAIL(L, f[1].val, "keys.issuers", "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *v = node_at(L, it[i]);
        uint8_t pk[UG_PK_LEN];
        snprintf(kp, sizeof kp, "keys.issuers[%zu]", i);
        if (get_path(L, v, kp, path) != 0)
            return -1;
        why[0] = '\0';
        if (ug_pubkey_read(path, pk, why, sizeof why) != 0)
            return FAIL(L, v, kp, "cannot load public key %s: %s", path, why);
        ug_pubkey_set(&p->issuers[i], pk);
        p->nissuers = i + 1;
    }
    return 0;
}

static int load_release(ldr *L, ug_policy *p, yaml_node_t *v)
{
    char path[UG_PATH_MAX], why[256];
    if (get_path(L, v, "release", path) != 0)
        return -1;
    if (!(p->manifest = malloc(UG_OBJ_MAX)))
        return FAIL(L, v, "release", "out of memory");
    why[0] = '\0';
    if (ug_file_read(path, p->manifest, UG_OBJ_MAX, &p->manifest_len, why, sizeof why) != 0)
        return FAIL(L, v, "release", "cannot read manifest %s: %s", path, why);
    ug_signed so;
    ug_err e = UG_OK;
    if (ug_signed_decode(&so, p->manifest, p->manifest_len, &e) != 0)
        return FAIL(L, v, "release", "%s is not a signed manifest: %s", path, ug_err_name(e));
    if (so.raw_len != p->manifest_len)
        return FAIL(L, v, "release", "%s has bytes after the signed manifest", path);
    if (ug_manifest_decode(&p->rel, so.body, so.body_len, &e) != 0)
        return FAIL(L, v, "release", "%s holds an invalid manifest: %s", path, ug_err_name(e));
    size_t hint = ug_hint_max_len(p->manifest_len);
    if (hint > UG_DGRAM_MAX)
        return FAIL(L, v, "release", "manifest %s (%zu bytes) is too large: a HINT carrying it could take %zu bytes, over the %u-byte datagram limit",
                    path, p->manifest_len, hint, UG_DGRAM_MAX);
    return 0;
}

static int load_targets(ldr *L, ug_policy *p, yaml_node_t *v)
{
    yaml_node_item_t *it;
    size_t n;
    char kp[KEY_MAX], buf[SHOW_MAX];
    if (get_list(L, v, "targets", &it, &n) != 0)
        return -1;
    if (!(p->targets = calloc(n, sizeof *p->targets)))
        return FAIL(L, v, "targets", "out of memory");
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *t = node_at(L, it[i]);
        const char *s;
        size_t len;
        snprintf(kp, sizeof kp, "targets[%zu]", i);
        if (get_str(L, t, kp, 1, UG_VER_MAX + 8, &s, &len) != 0)
            return -1;
        if (parse_target(s, len, &p->targets[i]) != 0)
            return FAIL(L, t, kp, "\"%s\" is not a version (1 to 4 numbers, like 1.4.0), optionally after < or <=",
                        show(buf, sizeof buf, s, len));
        p->ntargets = i + 1;
    }
    return 0;
}

enum {
    T_KEYS, T_RELEASE, T_TARGETS, T_STATE, T_CLOCK, T_TTL, T_RETRY, T_COOKIE, T_COOKIE_TH,
    T_BUDGET, T_SHARD, T_PAUSED, T_STAGES, T_N
};

static int load_top(ldr *L, ug_policy *p, yaml_node_t *root)
{
    field f[T_N] = {
        [T_KEYS] = {"keys", true, NULL, NULL},
        [T_RELEASE] = {"release", true, NULL, NULL},
        [T_TARGETS] = {"targets", true, NULL, NULL},
        [T_STATE] = {"state", true, NULL, NULL},
        [T_CLOCK] = {"clock_window", false, NULL, NULL},
        [T_TTL] = {"hint_ttl", false, NULL, NULL},
        [T_RETRY] = {"retry", false, NULL, NULL},
        [T_COOKIE] = {"cookie", false, NULL, NULL},
        [T_COOKIE_TH] = {"cookie_threshold", false, NULL, NULL},
        [T_BUDGET] = {"source_budget", false, NULL, NULL},
        [T_SHARD] = {"shard", false, NULL, NULL},
        [T_PAUSED] = {"paused", false, NULL, NULL},
        [T_STAGES] = {"stages", true, NULL, NULL},
    };
    if (!root || root->type != YAML_MAPPING_NODE)
        return FAIL(L, root, "(top)", "expected a mapping of policy keys, got %s", kind(root));
    if (collect(L, root, "", f, T_N) != 0)
        return -1;

    /* Cheap structural checks first would reorder messages; document order is
     * easier to reason about, so sections load in the spec's order. */
    if (load_keys(L, p, f[T_KEYS].val) != 0 || load_release(L, p, f[T_RELEASE].val) != 0 ||
        load_targets(L, p, f[T_TARGETS].val) != 0 || get_path(L, f[T_STATE].val, "state", p->state_dir) != 0)
        return -1;

    if ((f[T_CLOCK].key && get_uint(L, f[T_CLOCK].val, "clock_window", 0, UINT32_MAX, &p->clock_window) != 0) ||
        (f[T_TTL].key && get_uint(L, f[T_TTL].val, "hint_ttl", 1, UINT32_MAX, &p->hint_ttl) != 0) ||
        (f[T_RETRY].key && get_uint(L, f[T_RETRY].val, "retry", 0, UINT32_MAX, &p->retry) != 0) ||
        (f[T_COOKIE_TH].key &&
         get_uint(L, f[T_COOKIE_TH].val, "cookie_threshold", 0, UINT32_MAX, &p->cookie_threshold) != 0) ||
        (f[T_BUDGET].key && get_uint(L, f[T_BUDGET].val, "source_budget", 0, UINT32_MAX, &p->source_budget) != 0) ||
        (f[T_PAUSED].key && get_bool(L, f[T_PAUSED].val, "paused", &p->paused) != 0))
        return -1;

    if (f[T_COOKIE].key) {
        yaml_node_t *v = f[T_COOKIE].val;
        const char *s;
        size_t n;
        char buf[SHOW_MAX];
        if (get_str(L, v, "cookie", 1, 64, &s, &n) != 0)
            return -1;
        if (text_is(v, "always"))
            p->cookie = UG_COOKIE_ALWAYS;
        else if (text_is(v, "never"))
            p->cookie = UG_COOKIE_NEVER;
        else if (text_is(v, "auto"))
            p->cookie = UG_COOKIE_AUTO;
        else
            return FAIL(L, v, "cookie", "expected always, never or auto, got \"%s\"", show(buf, sizeof buf, s, n));
    }

    if (f[T_SHARD].key) {
        field sf[2] = {{"index", true, NULL, NULL}, {"count", true, NULL, NULL}};
        uint64_t idx, cnt;
        if (collect(L, f[T_SHARD].val, "shard", sf, 2) != 0 ||
            get_uint(L, sf[0].val, "shard.index", 0, UINT32_MAX, &idx) != 0 ||
            get_uint(L, sf[1].val, "shard.count", 1, UINT32_MAX, &cnt) != 0)
            return -1;
        if (idx >= cnt)
            return FAIL(L, sf[0].val, "shard.index", "index %" PRIu64 " must be below count %" PRIu64, idx, cnt);
        p->shard_index = (uint32_t)idx;
        p->shard_count = (uint32_t)cnt;
    }

    yaml_node_t *sv = f[T_STAGES].val;
    if (!sv || sv->type != YAML_SEQUENCE_NODE)
        return FAIL(L, sv, "stages", "expected a list, got %s", kind(sv));
    size_t n = (size_t)(sv->data.sequence.items.top - sv->data.sequence.items.start);
    if (!(p->stages = calloc(n ? n : 1, sizeof *p->stages)))
        return FAIL(L, sv, "stages", "out of memory");
    for (size_t i = 0; i < n; i++) {
        p->nstages = i + 1; /* so ug_policy_free releases a half-built stage */
        if (load_stage(L, p, i, node_at(L, sv->data.sequence.items.start[i])) != 0)
            return -1;
    }
    return 0;
}

/* ---- load / free ------------------------------------------------------------- */

/* The policy's folder, absolute when it can be made so: resolved paths must
 * not change meaning if the host later changes its working directory. */
static void policy_dir(const char *path, char out[UG_PATH_MAX])
{
    char d[UG_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(d, sizeof d, ".");
    else if (slash == path)
        snprintf(d, sizeof d, "/");
    else
        snprintf(d, sizeof d, "%.*s", (int)(slash - path), path);
    char *real = realpath(d, NULL);
    if (real && strlen(real) < UG_PATH_MAX)
        snprintf(out, UG_PATH_MAX, "%s", real);
    else
        snprintf(out, UG_PATH_MAX, "%s", d);
    free(real);
    if (strcmp(out, "/") == 0)
        out[0] = '\0'; /* joined as "" + "/" + rel */
}

static int parse_file(ldr *L, ug_policy *p)
{
    char eb[128];
    FILE *fp = fopen(L->path, "rb");
    if (!fp)
        return failf(L, L->path, 0, "(file)", "cannot open: %s", errstr(errno, eb, sizeof eb));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode) || (uintmax_t)sb.st_size > POLICY_FILE_MAX) {
        fclose(fp);
        return failf(L, L->path, 0, "(file)", "not a regular file of at most %u bytes", POLICY_FILE_MAX);
    }
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    int rc = -1;
    if (!yaml_parser_initialize(&parser)) {
        fclose(fp);
        return failf(L, L->path, 0, "(file)", "out of memory");
    }
    yaml_parser_set_input_file(&parser, fp);
    if (!yaml_parser_load(&parser, &doc)) {
        failf(L, L->path, parser.problem_mark.line + 1, "(yaml)", "%s%s%s", parser.problem ? parser.problem : "syntax error",
              parser.context ? " " : "", parser.context ? parser.context : "");
        goto out_parser;
    }
    L->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        failf(L, L->path, 1, "(top)", "empty file: expected a mapping of policy keys");
        goto out_doc;
    }
    /* A second document would be silently ignored: refuse it. */
    if (!yaml_parser_load(&parser, &extra)) {
        failf(L, L->path, parser.problem_mark.line + 1, "(yaml)", "%s%s%s", parser.problem ? parser.problem : "syntax error",
              parser.context ? " " : "", parser.context ? parser.context : "");
        goto out_doc;
    }
    yaml_node_t *root2 = yaml_document_get_root_node(&extra);
    size_t line2 = line_of(root2);
    yaml_document_delete(&extra);
    if (root2) {
        failf(L, L->path, line2, "(yaml)", "more than one YAML document");
        goto out_doc;
    }
    rc = load_top(L, p, root);
out_doc:
    yaml_document_delete(&doc);
    L->doc = NULL;
out_parser:
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

ug_policy *ug_policy_load(const char *path, char *err, size_t errcap)
{
    ldr L = {.path = path ? path : "(null)", .err = err, .errcap = errcap};
    if (err && errcap)
        err[0] = '\0';
    if (!path || !path[0] || strlen(path) >= UG_PATH_MAX) {
        failf(&L, L.path, 0, "(file)", "no policy path, or longer than %u bytes", UG_PATH_MAX - 1);
        return NULL;
    }
    ug_policy *p = calloc(1, sizeof *p);
    if (!p) {
        failf(&L, L.path, 0, "(file)", "out of memory");
        return NULL;
    }
    snprintf(p->path, sizeof p->path, "%s", path);
    p->clock_window = 300;
    p->hint_ttl = 3600;
    p->retry = 3600;
    p->cookie = UG_COOKIE_AUTO;
    p->cookie_threshold = 1000;
    p->source_budget = 1000;
    p->shard_index = 0;
    p->shard_count = 1;
    policy_dir(path, L.dir);
    if (parse_file(&L, p) != 0) {
        ug_policy_free(p);
        return NULL;
    }
    return p;
}

void ug_policy_free(ug_policy *p)
{
    if (!p)
        return;
    ug_secret_free(p->hint_sk);
    free(p->issuers);
    free(p->manifest);
    free(p->targets);
    for (size_t i = 0; i < p->nstages; i++) {
        ug_stage *s = &p->stages[i];
        ug_nets_free(s->nets);
        ug_uidset_free(s->uids);
        free(s->plat);
        free(s->chan);
    }
    free(p->stages);
    free(p);
}

/* ---- evaluation -------------------------------------------------------------- */

bool ug_policy_targets(const ug_policy *p, const ug_version *v)
{
    if (!p || !v)
        return false;
    for (size_t i = 0; i < p->ntargets; i++) {
        int c = ug_version_cmp(v, &p->targets[i].v);
        switch (p->targets[i].op) {
        case UG_TARGET_EQ:
            if (c == 0)
                return true;
            break;
        case UG_TARGET_LT:
            if (c < 0)
                return true;
            break;
        case UG_TARGET_LE:
            if (c <= 0)
                return true;
            break;
        }
    }
    return false;
}

uint64_t ug_policy_share(const ug_policy *p, uint64_t quota)
{
    uint64_t count = p && p->shard_count ? p->shard_count : 1, index = p ? p->shard_index : 0;
    return quota / count + (index < quota % count ? 1u : 0u);
}

bool ug_stage_active(const ug_stage *s, int64_t now)
{
    if ((s->conds & UG_COND_START) && now < s->start)
        return false;
    if ((s->conds & UG_COND_END) && now >= s->end)
        return false;
    return true;
}

static unsigned decimal_digits(uint64_t x)
{
    unsigned d = 1;
    while (x >= 10)
        x /= 10, d++;
    return d;
}

/* h->plat / h->chan against a fixed-width list; an absent field ("") never matches. */
static bool in_list(const char *v, const char *list, size_t n, size_t width)
{
    if (!v[0])
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, list + i * width) == 0)
            return true;
    return false;
}

bool ug_stage_matches(const ug_stage *s, const ug_hello *h, const struct sockaddr *src, int64_t now)
{
    if (!s || !h)
        return false;
    /* Cheapest conditions first; the percent hash last. */
    if (!ug_stage_active(s, now))
        return false;
    if ((s->conds & UG_COND_MOD) && h->uid % s->mod_div != s->mod_rem)
        return false;
    if ((s->conds & UG_COND_DIGITS) && decimal_digits(h->uid) > s->uid_digits_max)
        return false;
    if ((s->conds & UG_COND_PLAT) && !in_list(h->plat, (const char *)s->plat, s->nplat, UG_PLAT_MAX + 1))
        return false;
    if ((s->conds & UG_COND_CHAN) && !in_list(h->chan, (const char *)s->chan, s->nchan, UG_CHAN_MAX + 1))
        return false;
    if ((s->conds & UG_COND_NETWORKS) && !ug_nets_contains_sa(s->nets, src))
        return false;
    if ((s->conds & UG_COND_UIDS) && !ug_uidset_has(s->uids, h->uid))
        return false;
    if ((s->conds & UG_COND_PERCENT) && ug_percent_bucket(s->salt, s->salt_len, h->uid) >= s->percent_bp)
        return false;
    return true;
}
