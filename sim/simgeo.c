/* upgate-sim's regions (simgeo.h): one walk of a MaxMind DB's search tree, each record's place read by the plugin's own lookup. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <maxminddb.h>

#include "policy/ugpolicy.h"
#include "simgeo.h"

/*
 * libmaxminddb has no iterator, but MMDB_read_node() gives a node's two
 * records: another node, nothing, or data. A depth-first walk from the
 * root therefore meets every network the DB knows, each once. Each data
 * record's place is asked of the plugin's reader (ug_geo_lookup on the
 * network's first address), so a peer drawn from a network matches
 * `regions` exactly as the plugin decides; records are shared by many
 * networks, so the answer is cached per record.
 *
 * In an IPv6 DB, IPv4 lives at ::/96; MaxMind aliases ::ffff:0:0/96 and
 * 2002::/16 to the same subtree, which the walk skips so that no IPv4
 * network is counted three times.
 */

struct sim_geo {
    MMDB_s db;
    ug_geo *geo;
    char path[4096];
};

sim_geo *sim_geo_open(const char *path, char *err, size_t errcap)
{
    char why[256];
    sim_geo *g = calloc(1, sizeof *g);
    if (!g)
        return snprintf(err, errcap, "%s: out of memory", path), NULL;
    snprintf(g->path, sizeof g->path, "%s", path);
    if (!(g->geo = ug_geo_open(path, why, sizeof why))) {
        snprintf(err, errcap, "%s: %s", path, why);
        free(g);
        return NULL;
    }
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
    if (rc != MMDB_SUCCESS) {
        snprintf(err, errcap, "%s: not a MaxMind DB: %s", path, MMDB_strerror(rc));
        ug_geo_close(g->geo);
        free(g);
        return NULL;
    }
    return g;
}

void sim_geo_close(sim_geo *g)
{
    if (!g)
        return;
    MMDB_close(&g->db);
    ug_geo_close(g->geo);
    free(g);
}

/* The plugin's rule (conds.c): "CN" matches the country, "CN-BJ" the
 * country and any level of its subdivisions. */
static bool place_in(const ug_place *at, const char *region)
{
    if (!at->country[0] || strncmp(region, at->country, 2) != 0)
        return false;
    if (!region[2])
        return true;
    for (unsigned k = 0; k < at->nsub; k++)
        if (strcmp(region + 3, at->sub[k]) == 0)
            return true;
    return false;
}

static void to_sockaddr(const sim_net *n, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (n->family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, n->addr, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, n->addr, 16);
    }
}

bool sim_geo_in(const sim_geo *g, const struct sockaddr *sa, const char *region)
{
    ug_place at;
    return ug_geo_lookup(g->geo, sa, &at) && place_in(&at, region);
}

/* ---- the walk ------------------------------------------------------------------ */

typedef struct {
    uint32_t node;
    uint8_t depth;
    uint8_t bits[16];
} frame;

typedef struct {
    sim_geo *g;
    const char (*regions)[SIM_KEY_MAX + 1];
    unsigned nregions;
    sim_netlist *out;     /* [nregions], IPv4 */
    sim_netlist *out6;    /* [nregions], IPv6 */
    size_t *cap, *cap6;
    sim_map cache;       /* data record -> the regions it matches (bit i: regions[i]) */
    unsigned ip_bits;     /* 32 or 128 */
} walk;

static int push_net(sim_netlist *l, size_t *cap, const sim_net *n)
{
    if (l->n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        sim_net *v = realloc(l->v, c * sizeof *v);
        if (!v)
            return -1;
        l->v = v, *cap = c;
    }
    l->v[l->n++] = *n;
    return 0;
}

/* A network of the walk, as sim_net: IPv4 when it lies in ::/96 of an IPv6 tree. */
static sim_net net_of(const walk *w, const frame *f)
{
    sim_net n = {.family = 6, .len = f->depth};
    if (w->ip_bits == 32) {
        n.family = 4;
        memcpy(n.addr, f->bits, 4);
        return n;
    }
    static const uint8_t zero[12];
    if (f->depth >= 96 && memcmp(f->bits, zero, 12) == 0) {
        n.family = 4;
        n.len = (uint8_t)(f->depth - 96);
        memcpy(n.addr, f->bits + 12, 4);
        return n;
    }
    memcpy(n.addr, f->bits, 16);
    return n;
}

static int data_record(walk *w, const frame *f, uint64_t record)
{
    bool fresh;
    uint64_t *mask = sim_map_get(&w->cache, record, 0, &fresh);
    if (!mask)
        return -1;
    sim_net n = net_of(w, f);
    if (fresh) {
        struct sockaddr_storage ss;
        to_sockaddr(&n, &ss);
        ug_place at;
        uint64_t m = 0;
        if (ug_geo_lookup(w->g->geo, (struct sockaddr *)&ss, &at))
            for (unsigned i = 0; i < w->nregions; i++)
                m |= place_in(&at, w->regions[i]) ? UINT64_C(1) << i : 0;
        *mask = m;
    }
    for (unsigned i = 0; i < w->nregions; i++)
        if (*mask >> i & 1) {
            int rc = n.family == 4 ? push_net(&w->out[i], &w->cap[i], &n) : push_net(&w->out6[i], &w->cap6[i], &n);
            if (rc != 0)
                return -1;
        }
    return 0;
}

/* The node the walk reaches after 96 zero bits (IPv4's subtree), or UINT32_MAX. */
static uint32_t ipv4_start(const MMDB_s *db)
{
    uint32_t node = 0;
    for (unsigned i = 0; i < 96; i++) {
        MMDB_search_node_s s;
        if (MMDB_read_node(db, node, &s) != MMDB_SUCCESS || s.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE)
            return UINT32_MAX;
        node = (uint32_t)s.left_record;
    }
    return node;
}

static int walk_tree(walk *w, char *err, size_t errcap)
{
    const MMDB_s *db = &w->g->db;
    uint32_t nodes = db->metadata.node_count, v4 = w->ip_bits == 128 ? ipv4_start(db) : UINT32_MAX;
    frame stack[130];
    size_t sp = 0;
    uint64_t visits = 0;
    stack[sp++] = (frame){.node = 0};
    while (sp) {
        frame f = stack[--sp];
        if (++visits > 2 * (uint64_t)nodes + 2)
            return snprintf(err, errcap, "%s: malformed search tree (a loop)", w->g->path), -1;
        MMDB_search_node_s s;
        if (MMDB_read_node(db, f.node, &s) != MMDB_SUCCESS || f.depth >= w->ip_bits)
            return snprintf(err, errcap, "%s: malformed search tree at node %u", w->g->path, f.node), -1;
        for (int side = 1; side >= 0; side--) { /* left (0) popped first: networks in address order */
            uint8_t type = side ? s.right_record_type : s.left_record_type;
            uint64_t rec = side ? s.right_record : s.left_record;
            frame c = f;
            c.depth = (uint8_t)(f.depth + 1);
            if (side)
                c.bits[f.depth / 8] |= (uint8_t)(0x80u >> (f.depth % 8));
            if (type == MMDB_RECORD_TYPE_SEARCH_NODE) {
                bool in_v4 = c.depth == 96 && memcmp(c.bits, (uint8_t[12]){0}, 12) == 0;
                if (rec == v4 && !in_v4)
                    continue; /* an alias of the IPv4 subtree */
                if (sp == sizeof stack / sizeof stack[0] || c.depth >= w->ip_bits)
                    return snprintf(err, errcap, "%s: malformed search tree (too deep)", w->g->path), -1;
                c.node = (uint32_t)rec;
                stack[sp++] = c;
            } else if (type == MMDB_RECORD_TYPE_DATA) {
                if (data_record(w, &c, rec) != 0)
                    return snprintf(err, errcap, "%s: out of memory", w->g->path), -1;
            } else if (type == MMDB_RECORD_TYPE_INVALID) {
                return snprintf(err, errcap, "%s: malformed search tree at node %u", w->g->path, f.node), -1;
            }
        }
    }
    return 0;
}

/* Cumulative weights: an IPv4 network by its size; IPv6 ones alike (their
 * sizes would drown everything else, and peers are not spread by size). */
static int weigh(sim_netlist *l)
{
    if (!l->n)
        return 0;
    if (!(l->cum = malloc(l->n * sizeof *l->cum)))
        return -1;
    double sum = 0;
    for (size_t i = 0; i < l->n; i++) {
        sum += l->v[i].family == 4 ? (double)(UINT64_C(1) << (32 - l->v[i].len)) : 1.0;
        l->cum[i] = sum;
    }
    return 0;
}

int sim_geo_networks(sim_geo *g, const char (*regions)[SIM_KEY_MAX + 1], unsigned n, sim_netlist *out, char *err,
                     size_t errcap)
{
    if (n > 64)
        return snprintf(err, errcap, "at most 64 regions"), -1;
    sim_netlist *out6 = calloc(n ? n : 1, sizeof *out6);
    size_t *cap = calloc(n ? n : 1, sizeof *cap), *cap6 = calloc(n ? n : 1, sizeof *cap6);
    walk w = {.g = g, .regions = regions, .nregions = n, .out = out, .out6 = out6, .cap = cap, .cap6 = cap6,
              .ip_bits = g->db.metadata.ip_version == 4 ? 32 : 128};
    memset(out, 0, n * sizeof *out);
    int rc = out6 && cap && cap6 ? walk_tree(&w, err, errcap) : (snprintf(err, errcap, "out of memory"), -1);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        if (!out[i].n) { /* no IPv4 network for it: its IPv6 ones */
            out[i] = out6[i];
            out6[i] = (sim_netlist){0};
        }
        if (weigh(&out[i]) != 0)
            rc = (snprintf(err, errcap, "out of memory"), -1);
    }
    for (unsigned i = 0; i < n; i++) {
        sim_netlist_free(&out6[i]);
        if (rc != 0)
            sim_netlist_free(&out[i]);
    }
    free(out6);
    free(cap);
    free(cap6);
    sim_map_free(&w.cache);
    return rc;
}

void sim_netlist_free(sim_netlist *l)
{
    free(l->v);
    free(l->cum);
    *l = (sim_netlist){0};
}

const sim_net *sim_netlist_pick(const sim_netlist *l, double u)
{
    if (!l->n)
        return NULL;
    double at = u * l->cum[l->n - 1];
    size_t lo = 0, hi = l->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (l->cum[mid] > at)
            hi = mid;
        else
            lo = mid + 1;
    }
    return &l->v[lo];
}
