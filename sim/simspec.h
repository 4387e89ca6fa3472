/* upgate-sim's values: strict parsers for its flags (rates, sizes, durations, weighted lists, networks) and the human formats it prints. */
#ifndef UG_SIMSPEC_H
#define UG_SIMSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto.h"

#define SIM_WEIGHTS_MAX 64u  /* entries of one weighted list */
#define SIM_KEY_MAX 48u      /* bytes of one entry's key ("2001:db8::/32", "1.4.0") */

/* An address block: family 4 or 6, the address (first 4 bytes for IPv4) with
 * the host bits cleared, and the prefix length. */
typedef struct {
    uint8_t family;
    uint8_t len;
    uint8_t addr[16];
} sim_net;

/* What the keys of a weighted list are. */
typedef enum { SIM_KEY_VERSION, SIM_KEY_PLAT, SIM_KEY_CHAN, SIM_KEY_REGION, SIM_KEY_NETWORK } sim_keykind;

/* "KEY=WEIGHT,KEY=WEIGHT,..." (a lone KEY weighs 1). */
typedef struct {
    unsigned n;
    char key[SIM_WEIGHTS_MAX][SIM_KEY_MAX + 1]; /* canonical: a version as ug_version_format, a region upper case */
    double weight[SIM_WEIGHTS_MAX];
    sim_net net[SIM_WEIGHTS_MAX];               /* SIM_KEY_NETWORK only */
    double total;
} sim_weights;

/* Bit rates and byte rates, decimal SI, with their unit always:
 * "10Gbit", "500Mbit/s", "2.5Gbit", "800kbit", "100MB/s", "1.5GB/s".
 * Out in bits per second (> 0). */
int sim_parse_bitrate(const char *s, double *bps) UG_WUR;
/* A rate or a range of rates "5Mbit..50Mbit" (lo <= hi). */
int sim_parse_bitrate_range(const char *s, double *lo, double *hi) UG_WUR;
/* Whole seconds: "3600", "90s", "15m", "1h", "1.5h", "2d"; within [min, max]. */
int sim_parse_duration(const char *s, uint64_t min, uint64_t max, uint64_t *secs) UG_WUR;
/* A decimal "I" or "I.F" (no sign, no exponent) within [min, max]. */
int sim_parse_decimal(const char *s, double min, double max, double *out) UG_WUR;
/* A share "0", "1", "0.25" (up to six decimals) -> 0..1. */
int sim_parse_share(const char *s, double *out) UG_WUR;
/* "now" (the given now), Unix seconds, or an RFC 3339 date-time. */
int sim_parse_when(const char *s, int64_t now, int64_t *out) UG_WUR;
/* "10.1.0.0/16", "2001:db8::/32", or one address (a /32 or /128). Host
 * bits must be clear. */
int sim_parse_cidr(const char *s, sim_net *out) UG_WUR;
/* A weighted list of kind; 0, or -1 with the reason in why. */
int sim_parse_weights(const char *s, sim_keykind kind, sim_weights *w, char *why, size_t whycap) UG_WUR;
/* Index of the entry whose draw u (in [0, 1)) falls in, by weight. */
unsigned sim_weights_pick(const sim_weights *w, double u);

/* "12.3 Gbit/s", "850 Mbit/s", "0 bit/s". */
void sim_fmt_bitrate(double bps, char *out, size_t cap);
/* "1.50 GB", "300 kB", "12 B". */
void sim_fmt_bytes(double bytes, char *out, size_t cap);
/* Seconds after the start: "+2d 03:15" (with_secs: "+2d 03:15:07"). */
void sim_fmt_offset(uint64_t secs, bool with_secs, char *out, size_t cap);
/* RFC 3339 UTC: "2026-12-01T00:00:00Z". */
void sim_fmt_time(int64_t t, char *out, size_t cap);
/* 1234567 -> "1,234,567". */
void sim_fmt_count(uint64_t n, char *out, size_t cap);

/* A map of 64-bit keys to 64-bit values, open addressing (uids to peers,
 * addresses to networks, GeoIP records to regions). */
typedef struct {
    uint64_t *key, *val;
    size_t cap, used;
    bool has_zero; /* key 0, kept aside: 0 marks an empty slot */
    uint64_t zero;
} sim_map;

/* The value slot of key; when new (*added set) it holds fresh. NULL when
 * out of memory. A slot stays valid until the next sim_map_get. */
uint64_t *sim_map_get(sim_map *m, uint64_t key, uint64_t fresh, bool *added);
void sim_map_free(sim_map *m);

/* Counter-based random numbers: the same (seed, a, b) always give the same
 * value, so two policies see the same peers make the same choices. */
static inline uint64_t sim_mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ x >> 30) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ x >> 27) * UINT64_C(0x94d049bb133111eb);
    return x ^ x >> 31;
}

static inline uint64_t sim_rand(uint64_t seed, uint64_t a, uint64_t b)
{
    return sim_mix(seed ^ sim_mix(a ^ sim_mix(b)));
}

/* A draw in [0, 1). */
static inline double sim_unit(uint64_t r)
{
    return (double)(r >> 11) * 0x1.0p-53;
}

#endif
