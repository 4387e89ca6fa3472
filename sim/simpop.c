/* upgate-sim's peers: a synthetic population drawn from the flags, or the HELLOs a node captured. */
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "policy/ugpolicy.h"
#include "simcensus.h"
#include "sim.h"

/* Draw purposes: each attribute of a peer has its own stream. */
enum { D_VER = 1, D_PLAT, D_CHAN, D_PLACE, D_NET, D_HOST, D_SPEED, D_FIRST, D_LOGIN_COUNT, D_LOGIN_TIME };

int sim_pop_version(sim_pop *p, const char *v)
{
    for (unsigned i = 0; i < p->nvers; i++)
        if (strcmp(p->vers[i], v) == 0)
            return (int)i;
    if (p->nvers == SIM_VERSIONS_MAX || strlen(v) > UG_VER_MAX)
        return -1;
    snprintf(p->vers[p->nvers], sizeof p->vers[0], "%s", v);
    return (int)p->nvers++;
}

void sim_pop_addr(const sim_pop *p, const sim_peer *peer, uint32_t net, sim_addr *out, socklen_t *len)
{
    const sim_net *n = &p->nets[net];
    unsigned bits = n->family == 4 ? 32 : 128, host = bits - n->len < 32 ? bits - n->len : 32;
    uint32_t h = host == 32 ? peer->host : peer->host & ((UINT32_C(1) << host) - 1);
    /* the host bits are the address's last 32 at most: ORed into its last
     * 4 bytes as one big-endian word (once per decision: no byte loop) */
    uint32_t last;
    memcpy(&last, n->addr + bits / 8 - 4, 4);
    last |= htonl(h);
    if (n->family == 4) {
        out->in = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(40000), .sin_addr.s_addr = last};
        *len = sizeof out->in;
    } else {
        out->in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(40000)};
        memcpy(&out->in6.sin6_addr, n->addr, 12);
        memcpy((uint8_t *)&out->in6.sin6_addr + 12, &last, 4);
        *len = sizeof out->in6;
    }
}

/* ---- the login curve ------------------------------------------------------------ */

/* A moment of the day (seconds) drawn from a daily curve peaking at
 * peak_hour: density (1 + cos(2 pi (h - peak) / 24)) / 24, twice the mean
 * at the peak and nothing twelve hours away. Rejection sampling. */
static uint32_t curve_draw(uint64_t seed, uint64_t uid, uint64_t key, unsigned peak_hour)
{
    double h = 0;
    for (unsigned j = 0; j < 64; j++) {
        h = 24 * sim_unit(sim_rand(seed, uid, key * 128 + 2 * j));
        double keep = (1 + cos(2 * M_PI * (h - peak_hour) / 24)) / 2;
        if (sim_unit(sim_rand(seed, uid, key * 128 + 2 * j + 1)) < keep)
            break;
    }
    return (uint32_t)(h * 3600);
}

#define LOGINS_PER_DAY_MAX 48u

uint32_t sim_pop_next_login(const sim_opts *o, const sim_peer *peer, uint32_t t, uint32_t max, uint32_t *until)
{
    int64_t start = o->start;
    for (int64_t day = (start + t) / 86400;; day++) {
        int64_t day0 = day * 86400 - start; /* the day's midnight, UTC, from the start */
        if (day0 > (int64_t)max)
            return UINT32_MAX;
        uint64_t dkey = (uint64_t)day * 64;
        unsigned k = (unsigned)o->logins;
        if (sim_unit(sim_rand(o->seed, peer->uid, (uint64_t)D_LOGIN_COUNT << 56 | dkey)) < o->logins - k)
            k++;
        int64_t best = INT64_MAX;
        for (unsigned i = 0; i < k && i < LOGINS_PER_DAY_MAX; i++) {
            int64_t at = day0 + curve_draw(o->seed, peer->uid, (uint64_t)D_LOGIN_TIME << 56 | (dkey + i), o->peak_hour);
            if (at >= (int64_t)t && at < best)
                best = at;
        }
        if (best != INT64_MAX) {
            if (best > (int64_t)max)
                return UINT32_MAX;
            *until = (uint32_t)(best + (int64_t)o->session);
            return (uint32_t)best;
        }
    }
}

/* ---- synthetic ------------------------------------------------------------------- */

/* The address pool: every network named, every region's networks; where
 * each place's networks begin in it. */
static int make_nets(sim_pop *p, const sim_opts *o, sim_netlist *lists, size_t *first, char *err, size_t errcap)
{
    const sim_weights *w = &o->places;
    if (w->n == 0) {
        /* one address outside every network (TEST-NET-1): a stage with
         * `networks` or `regions` never selects these peers */
        if (!(p->nets = calloc(1, sizeof *p->nets)))
            return snprintf(err, errcap, "out of memory"), -1;
        p->nets[0] = (sim_net){.family = 4, .len = 32, .addr = {192, 0, 2, 1}};
        p->nnets = 1;
        return 0;
    }
    if (o->nregions) {
        sim_geo *g = sim_geo_open(o->geoip, err, errcap);
        if (!g)
            return -1;
        int rc = sim_geo_networks(g, w->key, o->nregions, lists, err, errcap);
        sim_geo_close(g);
        if (rc != 0)
            return -1;
        for (unsigned i = 0; i < o->nregions; i++)
            if (!lists[i].n)
                return snprintf(err, errcap, "%s: no network of region %s in it (--regions)", o->geoip, w->key[i]), -1;
    }
    size_t total = 0;
    for (unsigned i = 0; i < w->n; i++)
        total += i < o->nregions ? lists[i].n : 1;
    if (!(p->nets = calloc(total, sizeof *p->nets)))
        return snprintf(err, errcap, "out of memory"), -1;
    for (unsigned i = 0; i < w->n; i++) {
        first[i] = p->nnets;
        if (i < o->nregions) {
            memcpy(p->nets + p->nnets, lists[i].v, lists[i].n * sizeof *p->nets);
            p->nnets += lists[i].n;
        } else {
            p->nets[p->nnets++] = w->net[i];
        }
    }
    return 0;
}

/* What every synthetic peer draws alike: its host bits, speed, and first
 * HELLO, somewhere in the first retry period (always online). */
static void fill_peer(sim_peer *q, const sim_opts *o, uint64_t retry)
{
    uint64_t s = o->seed, uid = q->uid;
    q->host = (uint32_t)sim_rand(s, uid, D_HOST);
    double bps = o->speed_lo + (o->speed_hi - o->speed_lo) * sim_unit(sim_rand(s, uid, D_SPEED));
    q->speed = (uint32_t)fmin(bps / 8, 4e9);
    q->speed = q->speed ? q->speed : 1;
    q->state = SIM_P_ASK;
    q->until = UINT32_MAX;
    q->next = (uint32_t)(sim_unit(sim_rand(s, uid, D_FIRST)) * (double)retry);
}

int sim_pop_synth(sim_pop *p, const sim_opts *o, uint64_t retry, char *err, size_t errcap)
{
    memset(p, 0, sizeof *p);
    sim_netlist lists[SIM_WEIGHTS_MAX] = {0};
    size_t first[SIM_WEIGHTS_MAX] = {0};
    int rc = -1;
    for (unsigned i = 0; i < o->versions.n; i++)
        (void)sim_pop_version(p, o->versions.key[i]);
    for (unsigned i = 0; i < o->plats.n; i++)
        snprintf(p->plats[i], sizeof p->plats[0], "%s", o->plats.key[i]);
    for (unsigned i = 0; i < o->chans.n; i++)
        snprintf(p->chans[i], sizeof p->chans[0], "%s", o->chans.key[i]);
    p->nplats = o->plats.n, p->nchans = o->chans.n;
    if (make_nets(p, o, lists, first, err, errcap) != 0)
        goto out;
    if (!(p->peers = calloc(o->peers, sizeof *p->peers))) {
        snprintf(err, errcap, "out of memory for %llu peers", (unsigned long long)o->peers);
        goto out;
    }
    p->npeers = o->peers;
    uint64_t s = o->seed;
    for (size_t i = 0; i < o->peers; i++) {
        if (!(i & 0xffff) && sim_interrupted) {
            snprintf(err, errcap, "interrupted");
            goto out;
        }
        sim_peer *q = &p->peers[i];
        uint64_t uid = i + 1;
        q->uid = uid;
        q->ver = q->old = (uint16_t)sim_weights_pick(&o->versions, sim_unit(sim_rand(s, uid, D_VER)));
        q->plat = o->plats.n ? (uint8_t)(1 + sim_weights_pick(&o->plats, sim_unit(sim_rand(s, uid, D_PLAT)))) : 0;
        q->chan = o->chans.n ? (uint8_t)(1 + sim_weights_pick(&o->chans, sim_unit(sim_rand(s, uid, D_CHAN)))) : 0;
        if (o->places.n) {
            unsigned pl = sim_weights_pick(&o->places, sim_unit(sim_rand(s, uid, D_PLACE)));
            size_t k = 0;
            if (pl < o->nregions) {
                const sim_net *n = sim_netlist_pick(&lists[pl], sim_unit(sim_rand(s, uid, D_NET)));
                k = (size_t)(n - lists[pl].v);
            }
            q->net = (uint32_t)(first[pl] + k);
        }
        fill_peer(q, o, retry);
    }
    rc = 0;
out:
    for (unsigned i = 0; i < SIM_WEIGHTS_MAX; i++)
        sim_netlist_free(&lists[i]);
    if (rc != 0)
        sim_pop_free(p);
    return rc;
}

/* ---- a census ------------------------------------------------------------------- */

static int intern_name(char *tab, size_t w, unsigned *n, const char *s, uint8_t *out);

/* The census's regions as places (o2->places: each region, then one address
 * outside every network for peers of no region) when a GeoIP database is
 * at hand; place[i]: bucket i's place. Without a database, every peer comes
 * from that one address. */
static int census_places(const sim_census *c, sim_opts *o2, unsigned *place, char *err, size_t errcap)
{
    sim_weights *w = &o2->places;
    memset(w, 0, sizeof *w);
    o2->nregions = 0;
    if (!o2->geoip)
        return 0;
    for (size_t i = 0; i < c->n; i++) {
        char r[UG_REGION_MAX + 1];
        place[i] = SIM_WEIGHTS_MAX;
        if (!c->b[i].region[0])
            continue;
        if (ug_parse_region(c->b[i].region, strlen(c->b[i].region), r) != 0)
            return snprintf(err, errcap, "%s: region %s: not a region (DE, CN-BJ)", o2->population, c->b[i].region), -1;
        unsigned k = 0;
        while (k < w->n && strcmp(w->key[k], r) != 0)
            k++;
        if (k == w->n) {
            if (w->n == SIM_WEIGHTS_MAX - 1)
                return snprintf(err, errcap, "%s: more than %u regions", o2->population, SIM_WEIGHTS_MAX - 1), -1;
            snprintf(w->key[w->n], sizeof w->key[0], "%s", r);
            w->weight[w->n++] = 1;
        }
        place[i] = k;
    }
    o2->nregions = w->n;
    unsigned none = w->n++;
    snprintf(w->key[none], sizeof w->key[0], "192.0.2.1/32");
    w->net[none] = (sim_net){.family = 4, .len = 32, .addr = {192, 0, 2, 1}};
    w->weight[none] = 1;
    w->total = w->n;
    for (size_t i = 0; i < c->n; i++)
        if (place[i] == SIM_WEIGHTS_MAX)
            place[i] = none;
    return 0;
}

/* Bucket i's peers: uids from *uid on, its version, plat and chan. */
static int census_bucket(sim_pop *p, const sim_opts *o, const sim_cbucket *b, uint64_t count, uint32_t net0,
                         const sim_netlist *nets, uint64_t retry, char *err, size_t errcap)
{
    int v = sim_pop_version(p, b->ver);
    uint8_t plat, chan;
    if (v < 0 || intern_name(&p->plats[0][0], sizeof p->plats[0], &p->nplats, b->plat, &plat) != 0 ||
        intern_name(&p->chans[0][0], sizeof p->chans[0], &p->nchans, b->chan, &chan) != 0)
        return snprintf(err, errcap, "%s: more than %u versions, %u platforms or %u channels", o->population,
                        SIM_VERSIONS_MAX, SIM_WEIGHTS_MAX, SIM_WEIGHTS_MAX), -1;
    for (uint64_t k = 0; k < count; k++) {
        sim_peer *q = &p->peers[p->npeers];
        q->uid = ++p->npeers;
        q->ver = q->old = (uint16_t)v;
        q->plat = plat, q->chan = chan;
        q->net = net0;
        if (nets && nets->n)
            q->net += (uint32_t)(sim_netlist_pick(nets, sim_unit(sim_rand(o->seed, q->uid, D_NET))) - nets->v);
        fill_peer(q, o, retry);
    }
    return 0;
}

int sim_pop_census(sim_pop *p, const sim_opts *o, const sim_census *c, uint64_t retry, char *err, size_t errcap)
{
    memset(p, 0, sizeof *p);
    sim_opts o2 = *o;
    sim_netlist lists[SIM_WEIGHTS_MAX] = {0};
    size_t first[SIM_WEIGHTS_MAX] = {0};
    unsigned *place = calloc(c->n ? c->n : 1, sizeof *place);
    uint64_t *count = calloc(c->n ? c->n : 1, sizeof *count);
    uint64_t total = o->peers ? o->peers : c->total;
    int rc = -1;
    if (!place || !count || !(p->peers = calloc(total, sizeof *p->peers))) {
        snprintf(err, errcap, "out of memory for %llu peers", (unsigned long long)total);
        goto out;
    }
    if (census_places(c, &o2, place, err, errcap) != 0 || make_nets(p, &o2, lists, first, err, errcap) != 0)
        goto out;
    sim_census_apportion(c, o->peers, count);
    for (size_t i = 0; i < c->n; i++) {
        bool geo = o2.places.n != 0;
        uint32_t net0 = geo ? (uint32_t)first[place[i]] : 0;
        const sim_netlist *nets = geo && place[i] < o2.nregions ? &lists[place[i]] : NULL;
        if (census_bucket(p, o, &c->b[i], count[i], net0, nets, retry, err, errcap) != 0)
            goto out;
    }
    rc = 0;
out:
    for (unsigned i = 0; i < SIM_WEIGHTS_MAX; i++)
        sim_netlist_free(&lists[i]);
    free(place);
    free(count);
    if (rc != 0)
        sim_pop_free(p);
    return rc;
}

/* ---- replay ----------------------------------------------------------------------- */

typedef struct {
    sim_pop *p;
    const sim_opts *o;
    sim_map uids, addrs; /* uid -> peer, address -> net */
    size_t cap_peers, cap_nets, cap_recs, cap_ms;
    uint64_t *ms;    /* each record's time in ms, until scaled */
    uint64_t *order; /* tie-break: the order read */
    char *err;
    size_t errcap;
} loader;

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 4096;
    while (c < need)
        c *= 2;
    void *n = realloc(*v, c * size);
    if (!n)
        return -1;
    *v = n, *cap = c;
    return 0;
}

/* The index + 1 of s in tab[0..*n) (slots of width w), added if new; 0
 * for "" (absent). -1 when the table is full. */
static int intern_name(char *tab, size_t w, unsigned *n, const char *s, uint8_t *out)
{
    *out = 0;
    if (!s[0])
        return 0;
    for (unsigned i = 0; i < *n; i++)
        if (strcmp(tab + i * w, s) == 0)
            return *out = (uint8_t)(i + 1), 0;
    if (*n == SIM_WEIGHTS_MAX)
        return -1;
    snprintf(tab + *n * w, w, "%s", s);
    *out = (uint8_t)++*n;
    return 0;
}

static int add_record(loader *L, const ug_capture_rec *c, const char *file)
{
    sim_pop *p = L->p;
    if (p->nrecs == SIM_RECORDS_MAX)
        return snprintf(L->err, L->errcap, "%s: more than %u records in all", file, SIM_RECORDS_MAX), -1;
    if (grow((void **)&p->recs, &L->cap_recs, p->nrecs + 1, sizeof *p->recs) != 0)
        return snprintf(L->err, L->errcap, "out of memory"), -1;
    sim_rec *r = &p->recs[p->nrecs];
    int v = sim_pop_version(p, c->ver);
    uint8_t plat, chan;
    if (v < 0 || intern_name(&p->plats[0][0], sizeof p->plats[0], &p->nplats, c->plat, &plat) != 0 ||
        intern_name(&p->chans[0][0], sizeof p->chans[0], &p->nchans, c->chan, &chan) != 0)
        return snprintf(L->err, L->errcap, "%s: more than %u versions, %u platforms or %u channels", file,
                        SIM_VERSIONS_MAX, SIM_WEIGHTS_MAX, SIM_WEIGHTS_MAX), -1;
    /* the address, once per distinct one: an IPv4 one by its value, an
     * IPv6 one by a 64-bit hash (a collision, odds 1e-7 in a million
     * addresses, would give one peer another's address) */
    uint64_t a0, a1;
    memcpy(&a0, c->addr, 8);
    memcpy(&a1, c->addr + 8, 8);
    uint64_t akey = c->family == 4 ? UINT64_C(4) << 56 | (uint64_t)c->addr[0] << 24 | (uint64_t)c->addr[1] << 16 |
                                         (uint64_t)c->addr[2] << 8 | c->addr[3]
                                   : sim_mix(a0) ^ sim_mix(a1 + 1) ^ UINT64_C(6) << 56;
    uint32_t net, peer;
    bool added;
    uint64_t *slot = sim_map_get(&L->addrs, akey, p->nnets, &added);
    if (!slot || (added && grow((void **)&p->nets, &L->cap_nets, p->nnets + 1, sizeof *p->nets) != 0))
        return snprintf(L->err, L->errcap, "out of memory"), -1;
    net = (uint32_t)*slot;
    if (added) {
        sim_net *n = &p->nets[p->nnets++];
        *n = (sim_net){.family = c->family, .len = c->family == 4 ? 32 : 128};
        memcpy(n->addr, c->addr, c->family == 4 ? 4 : 16);
    }
    slot = sim_map_get(&L->uids, c->uid, p->npeers, &added);
    if (!slot || (added && grow((void **)&p->peers, &L->cap_peers, p->npeers + 1, sizeof *p->peers) != 0))
        return snprintf(L->err, L->errcap, "out of memory"), -1;
    peer = (uint32_t)*slot;
    if (added) {
        if (p->npeers == SIM_PEERS_MAX)
            return snprintf(L->err, L->errcap, "%s: more than %u distinct uids", file, SIM_PEERS_MAX), -1;
        sim_peer *q = &p->peers[p->npeers++];
        const sim_opts *o = L->o;
        double bps = o->speed_lo + (o->speed_hi - o->speed_lo) * sim_unit(sim_rand(o->seed, c->uid, D_SPEED));
        *q = (sim_peer){.uid = c->uid, .ver = (uint16_t)v, .old = (uint16_t)v, .net = net, .plat = plat,
                        .chan = chan, .speed = (uint32_t)fmax(1, fmin(bps / 8, 4e9)), .until = UINT32_MAX,
                        .state = SIM_P_ASK};
    }
    *r = (sim_rec){.peer = peer, .net = net, .ver = (uint16_t)v, .plat = plat, .chan = chan};
    p->nrecs++;
    return 0;
}

static const uint64_t *sort_ms;

static int by_time(const void *a, const void *b)
{
    size_t i = ((const sim_rec *)a)->at, j = ((const sim_rec *)b)->at; /* at holds the read order */
    if (sort_ms[i] != sort_ms[j])
        return sort_ms[i] < sort_ms[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

static int read_file(loader *L, const char *path)
{
    ug_capture_reader *r = ug_capture_open(path, L->err, L->errcap);
    if (!r)
        return -1;
    ug_capture_rec c;
    int rc;
    while ((rc = ug_capture_next(r, &c, L->err, L->errcap)) == 1) {
        if (!(L->p->nrecs & 0xffff) && sim_interrupted) {
            snprintf(L->err, L->errcap, "interrupted");
            rc = -1;
            break;
        }
        if (add_record(L, &c, path) != 0) {
            rc = -1;
            break;
        }
        if (grow((void **)&L->ms, &L->cap_ms, L->p->nrecs, sizeof *L->ms) != 0) {
            snprintf(L->err, L->errcap, "out of memory");
            rc = -1;
            break;
        }
        L->ms[L->p->nrecs - 1] = c.time_ms;
        L->p->recs[L->p->nrecs - 1].at = (uint32_t)(L->p->nrecs - 1);
    }
    ug_capture_close(r);
    return rc;
}

int sim_pop_replay(sim_pop *p, const sim_opts *o, char *err, size_t errcap)
{
    memset(p, 0, sizeof *p);
    loader L = {.p = p, .o = o, .err = err, .errcap = errcap};
    int rc = 0;
    for (unsigned i = 0; i < o->nreplay && rc == 0; i++)
        rc = read_file(&L, o->replay[i]);
    if (rc == 0 && p->nrecs == 0)
        rc = (snprintf(err, errcap, "%s: no HELLO recorded in it%s", o->replay[0], o->nreplay > 1 ? " (nor the others)" : ""),
              -1);
    if (rc == 0) {
        sort_ms = L.ms;
        qsort(p->recs, p->nrecs, sizeof *p->recs, by_time);
        uint64_t first = L.ms[p->recs[0].at];
        p->first = (int64_t)(first / 1000);
        for (size_t i = 0; i < p->nrecs; i++) {
            double at = (double)(L.ms[p->recs[i].at] - first) / 1000.0 / o->time_scale;
            p->recs[i].at = at < 4e9 ? (uint32_t)at : UINT32_MAX;
        }
        p->span = p->recs[p->nrecs - 1].at;
    }
    free(L.ms);
    sim_map_free(&L.uids);
    sim_map_free(&L.addrs);
    if (rc != 0)
        sim_pop_free(p);
    return rc;
}

void sim_pop_free(sim_pop *p)
{
    free(p->peers);
    free(p->nets);
    free(p->recs);
    memset(p, 0, sizeof *p);
}
