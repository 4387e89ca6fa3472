/* upgate-sim's values: strict flag parsers and human formats (simspec.h). */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/ugpolicy.h"
#include "simspec.h"

/* The decimal at the head of s: digits, optionally '.' and digits; its
 * length in *n (0 when s does not start with one). */
static int head_decimal(const char *s, size_t *n, double *out)
{
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0)
        return -1;
    if (s[i] == '.') {
        size_t j = i + 1;
        while (s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == i + 1)
            return -1;
        i = j;
    }
    *n = i;
    if (s[0] == '0' && i == 1) {
        *out = 0;
        return 0;
    }
    return ug_parse_rate(s, i, out); /* > 0, bounded digits, locale-free */
}

int sim_parse_decimal(const char *s, double min, double max, double *out)
{
    size_t n;
    double v;
    if (!s || head_decimal(s, &n, &v) != 0 || s[n] || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int sim_parse_bitrate(const char *s, double *bps)
{
    static const struct {
        const char *unit;
        double bits;
    } units[] = {
        {"bit", 1},        {"kbit", 1e3},     {"Kbit", 1e3},     {"Mbit", 1e6},     {"Gbit", 1e9},
        {"Tbit", 1e12},    {"bit/s", 1},      {"kbit/s", 1e3},   {"Kbit/s", 1e3},   {"Mbit/s", 1e6},
        {"Gbit/s", 1e9},   {"Tbit/s", 1e12},  {"B/s", 8},        {"kB/s", 8e3},     {"KB/s", 8e3},
        {"MB/s", 8e6},     {"GB/s", 8e9},     {"TB/s", 8e12},
    };
    size_t n;
    double v;
    if (!s || head_decimal(s, &n, &v) != 0 || !(v > 0))
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(s + n, units[i].unit) == 0) {
            *bps = v * units[i].bits;
            return *bps >= 1 && *bps <= 1e15 ? 0 : -1;
        }
    return -1;
}

int sim_parse_bitrate_range(const char *s, double *lo, double *hi)
{
    const char *dots = s ? strstr(s, "..") : NULL;
    if (!dots)
        return sim_parse_bitrate(s, lo) == 0 ? (*hi = *lo, 0) : -1;
    char a[64];
    if ((size_t)(dots - s) >= sizeof a)
        return -1;
    memcpy(a, s, (size_t)(dots - s));
    a[dots - s] = 0;
    if (sim_parse_bitrate(a, lo) != 0 || sim_parse_bitrate(dots + 2, hi) != 0 || *lo > *hi)
        return -1;
    return 0;
}

int sim_parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *secs)
{
    size_t n;
    double v;
    if (!s || head_decimal(s, &n, &v) != 0)
        return -1;
    double mult;
    if (!s[n] || strcmp(s + n, "s") == 0)
        mult = 1;
    else if (strcmp(s + n, "m") == 0)
        mult = 60;
    else if (strcmp(s + n, "h") == 0)
        mult = 3600;
    else if (strcmp(s + n, "d") == 0)
        mult = 86400;
    else
        return -1;
    double t = v * mult;
    if (t > (double)max || t < (double)min || t != floor(t))
        return -1; /* whole seconds only: the plugin's clock has no finer grain */
    *secs = (uint64_t)t;
    return 0;
}

int sim_parse_share(const char *s, double *out)
{
    uint32_t ppm;
    if (!s || ug_parse_ppm(s, strlen(s), &ppm) != 0)
        return -1;
    *out = ppm / 1e6;
    return 0;
}

int sim_parse_when(const char *s, int64_t now, int64_t *out)
{
    if (!s)
        return -1;
    if (strcmp(s, "now") == 0) {
        *out = now;
        return 0;
    }
    size_t n = strlen(s);
    if (n && strspn(s, "0123456789") == n) {
        double v;
        if (sim_parse_decimal(s, 0, 253402300799.0, &v) != 0) /* up to 9999-12-31 */
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    return ug_parse_time(s, n, out);
}

int sim_parse_cidr(const char *s, sim_net *out)
{
    char ip[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof ip)
        return -1;
    memcpy(ip, s, n);
    ip[n] = 0;
    sim_net net = {0};
    unsigned bits;
    if (inet_pton(AF_INET, ip, net.addr) == 1)
        net.family = 4, bits = 32;
    else if (inet_pton(AF_INET6, ip, net.addr) == 1)
        net.family = 6, bits = 128;
    else
        return -1;
    double len = bits;
    if (slash && sim_parse_decimal(slash + 1, 0, bits, &len) != 0)
        return -1;
    if (slash && (strchr(slash + 1, '.') || (slash[1] == '0' && slash[2])))
        return -1; /* a whole number, no leading zero */
    net.len = (uint8_t)len;
    for (unsigned b = net.len; b < bits; b++)
        if (net.addr[b / 8] & (0x80u >> (b % 8)))
            return -1; /* host bits set: say the network as it is */
    *out = net;
    return 0;
}

/* Is key acceptable as an entry of kind? Writes its canonical form. */
static int parse_key(const char *key, sim_keykind kind, char out[SIM_KEY_MAX + 1], sim_net *net)
{
    size_t n = strlen(key);
    switch (kind) {
    case SIM_KEY_VERSION: {
        ug_version v;
        return ug_version_parse(&v, key, n) == 0 && ug_version_format(&v, out, SIM_KEY_MAX + 1) == 0 ? 0 : -1;
    }
    case SIM_KEY_PLAT:
    case SIM_KEY_CHAN:
        if (n == 0 || n > (kind == SIM_KEY_PLAT ? UG_PLAT_MAX : UG_CHAN_MAX))
            return -1;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
                return -1; /* printable ASCII: what a peer would send */
        memcpy(out, key, n + 1);
        return 0;
    case SIM_KEY_REGION:
        return ug_parse_region(key, n, out);
    case SIM_KEY_NETWORK:
        if (n > SIM_KEY_MAX || sim_parse_cidr(key, net) != 0)
            return -1;
        memcpy(out, key, n + 1);
        return 0;
    }
    return -1;
}

int sim_parse_weights(const char *s, sim_keykind kind, sim_weights *w, char *why, size_t whycap)
{
    static const char *const what[] = {"a version (1.4.0)", "a platform (1-32 printable characters)",
                                       "a channel (1-16 printable characters)",
                                       "a region (DE, CN-BJ)", "a network (10.1.0.0/16)"};
    char buf[4096];
    memset(w, 0, sizeof *w);
    if (!s || !s[0] || strlen(s) >= sizeof buf)
        return snprintf(why, whycap, "empty or longer than %zu bytes", sizeof buf - 1), -1;
    memcpy(buf, s, strlen(s) + 1);
    for (char *item = buf, *next; item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = 0;
        if (w->n == SIM_WEIGHTS_MAX)
            return snprintf(why, whycap, "more than %u entries", SIM_WEIGHTS_MAX), -1;
        char *eq = strrchr(item, '=');
        double weight = 1;
        if (eq) {
            *eq = 0;
            if (sim_parse_decimal(eq + 1, 0, 1e12, &weight) != 0 || !(weight > 0))
                return snprintf(why, whycap, "\"%.40s\": the weight is not a positive number", eq + 1), -1;
        }
        unsigned i = w->n;
        if (parse_key(item, kind, w->key[i], &w->net[i]) != 0)
            return snprintf(why, whycap, "\"%.48s\" is not %s", item, what[kind]), -1;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(w->key[j], w->key[i]) == 0)
                return snprintf(why, whycap, "\"%.48s\" is named twice", item), -1;
        w->weight[i] = weight;
        w->total += weight;
        w->n++;
    }
    return 0;
}

unsigned sim_weights_pick(const sim_weights *w, double u)
{
    double at = u * w->total, sum = 0;
    for (unsigned i = 0; i + 1 < w->n; i++) {
        sum += w->weight[i];
        if (at < sum)
            return i;
    }
    return w->n ? w->n - 1 : 0;
}

/* ---- a map ------------------------------------------------------------------ */

static int map_grow(sim_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    uint64_t *k = calloc(cap, sizeof *k), *v = calloc(cap, sizeof *v);
    if (!k || !v) {
        free(k);
        free(v);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->key[i]) {
            size_t j = sim_mix(m->key[i]) & (cap - 1);
            while (k[j])
                j = (j + 1) & (cap - 1);
            k[j] = m->key[i], v[j] = m->val[i];
        }
    free(m->key);
    free(m->val);
    m->key = k, m->val = v, m->cap = cap;
    return 0;
}

uint64_t *sim_map_get(sim_map *m, uint64_t key, uint64_t fresh, bool *added)
{
    if (key == 0) {
        *added = !m->has_zero;
        if (*added)
            m->has_zero = true, m->zero = fresh;
        return &m->zero;
    }
    if ((m->used + 1) * 2 > m->cap && map_grow(m) != 0)
        return NULL;
    size_t j = sim_mix(key) & (m->cap - 1);
    while (m->key[j] && m->key[j] != key)
        j = (j + 1) & (m->cap - 1);
    *added = !m->key[j];
    if (*added) {
        m->key[j] = key;
        m->val[j] = fresh;
        m->used++;
    }
    return &m->val[j];
}

void sim_map_free(sim_map *m)
{
    free(m->key);
    free(m->val);
    *m = (sim_map){0};
}

/* ---- formats ---------------------------------------------------------------- */

static void fmt_si(double v, const char *const unit[5], char *out, size_t cap)
{
    unsigned k = 0;
    while (k < 4 && v >= 999.5)
        v /= 1000, k++;
    if (k == 0 || v >= 99.95)
        snprintf(out, cap, "%.0f %s", v, unit[k]);
    else if (v >= 9.995)
        snprintf(out, cap, "%.1f %s", v, unit[k]);
    else
        snprintf(out, cap, "%.2f %s", v, unit[k]);
}

void sim_fmt_bitrate(double bps, char *out, size_t cap)
{
    static const char *const u[5] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
    fmt_si(bps, u, out, cap);
}

void sim_fmt_bytes(double bytes, char *out, size_t cap)
{
    static const char *const u[5] = {"B", "kB", "MB", "GB", "TB"};
    fmt_si(bytes, u, out, cap);
}

void sim_fmt_offset(uint64_t secs, bool with_secs, char *out, size_t cap)
{
    unsigned long long d = secs / 86400, h = secs % 86400 / 3600, m = secs % 3600 / 60, s = secs % 60;
    if (with_secs)
        snprintf(out, cap, "+%llud %02llu:%02llu:%02llu", d, h, m, s);
    else
        snprintf(out, cap, "+%llud %02llu:%02llu", d, h, m);
}

void sim_fmt_time(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "%lld", (long long)t);
}

void sim_fmt_count(uint64_t n, char *out, size_t cap)
{
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n);
    size_t o = 0;
    for (int i = 0; i < len && o + 2 < cap; i++) {
        if (i && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o < cap ? o : cap - 1] = 0;
}
