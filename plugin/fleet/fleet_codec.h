/* Fleet mode's texts in Redis (docs/fleet.md, "Key layout"): key names, grant values, stream events, tracker rows. Pure functions. */
#ifndef UG_FLEET_CODEC_H
#define UG_FLEET_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "store/store.h"

#define UG_FLEET_KEY_MAX 256u /* "ug:{" rollout "}:" to ":q:" stage, and the fleet's own keys */

/* A grant as the fleet holds it: the value of uid in the scope's hash,
 * "STAGE|TRACKER|AT|OUTCOME", and a stream event's fields. */
typedef struct {
    char stage[UG_NAME_MAX + 1];
    char tracker[UG_TRACKER_MAX + 1];
    uint32_t at;
    ug_outcome outcome;
} ug_fleet_grant;

/* 0, or -1 when v is not one (a name out of its alphabet or too long, a
 * time past 32 bits, an outcome that is not 0..6). */
int ug_fleet_grant_parse(const char *v, size_t n, ug_fleet_grant *g) UG_WUR;
/* "1..2^63-1" in decimal, nothing else. */
int ug_fleet_uid_parse(const char *s, size_t n, uint64_t *uid) UG_WUR;

typedef enum { UG_FEV_GRANT, UG_FEV_OUTCOME } ug_fleet_event_kind;
typedef struct {
    ug_fleet_event_kind kind;
    uint64_t uid;
    ug_fleet_grant g; /* OUTCOME: only tracker and outcome */
} ug_fleet_event;

/* A stream entry's fields, name then value (k, u, s, a, o, t; docs/fleet.md):
 * 0, or -1 when they are not an event (missing, repeated or bad fields). */
int ug_fleet_event_parse(const char *const *f, const size_t *len, size_t nf, ug_fleet_event *e) UG_WUR;

/* A row of the tracker registry, "SECONDS|STATE|ADDRESS" (STATE up or
 * stopped): 0 or -1. */
int ug_fleet_row_parse(const char *v, size_t n, uint64_t *seconds, bool *up) UG_WUR;

/* The fleet's flags of a rollout, as its hash `ug:{R}:flags` holds them. */
#define UG_FLEET_WHY_MAX 255u
#define UG_FLEET_MAC_HEX 64u
#define UG_FLEET_GATES_MAX 32u  /* gates promoted, kept per rollout (one release's) */
#define UG_FLEET_STEP_MAX 65535u
/* A gate promoted on some tracker: step `step` (percentage bp, hundredths)
 * of stage's schedule, in release `to` (docs/fleet.md, "Gates"). */
typedef struct {
    char stage[UG_NAME_MAX + 1];
    char to[UG_VER_MAX + 1];
    uint32_t step, bp;
} ug_fleet_gate;
typedef struct {
    bool paused, halted;
    char why[UG_FLEET_WHY_MAX + 1];
    uint64_t at, held, shift, ver;
    char mac[UG_FLEET_MAC_HEX + 1]; /* lowercase hex; "" when none */
    /* `gates` and `gmac`: sealed apart from mac, which stays the v1 MAC an
     * older tracker checks (and keeps when it rewrites the hash). */
    ug_fleet_gate gates[UG_FLEET_GATES_MAX]; /* ascending (stage, step), no two alike */
    size_t ngates;
    char gmac[UG_FLEET_MAC_HEX + 1];
} ug_fleet_flags;

/* HGETALL's name/value pairs (nf names and values, alternating): 0, or -1
 * when they are not flags (a value out of its range, a field twice, a
 * NUL in why). Unknown fields are skipped; absent ones stay 0 (ver 0:
 * no flags yet). */
int ug_fleet_flags_parse(const char *const *f, const size_t *len, size_t nf, ug_fleet_flags *out) UG_WUR;
/* The MAC (BLAKE2b under a 32-byte key) of every field of st but mac, and
 * of the rollout's name, in hex into out. */
void ug_fleet_flags_mac(const uint8_t *key, const char *rollout, const ug_fleet_flags *st,
                        char out[UG_FLEET_MAC_HEX + 1]);
/* Whether st->mac is that MAC (compared in constant time). */
bool ug_fleet_flags_verify(const uint8_t *key, const char *rollout, const ug_fleet_flags *st);

/* The `gates` field: "STAGE:STEP:BP:TO" entries in st's order, joined by
 * ','; "" for none. out holds UG_FLEET_GATES_TEXT bytes. */
#define UG_FLEET_GATES_TEXT (UG_FLEET_GATES_MAX * (UG_NAME_MAX + UG_VER_MAX + 16u) + 1u)
void ug_fleet_gates_format(const ug_fleet_flags *st, char *out);
/* gmac: BLAKE2b under the flags' key over the rollout's name and the
 * `gates` text, in hex; without a version in it, so a rewrite by a tracker
 * that knows no gates (it keeps both fields) leaves it valid. */
void ug_fleet_gates_mac(const uint8_t *key, const char *rollout, const ug_fleet_flags *st,
                        char out[UG_FLEET_MAC_HEX + 1]);
/* Whether st->gmac is that MAC; true for no gates and no gmac at all. */
bool ug_fleet_gates_verify(const uint8_t *key, const char *rollout, const ug_fleet_flags *st);
/* Adds g to st's gates in order, first dropping every gate of another
 * release (a rollout has one): 1 added, 0 there already, -1 full or g
 * out of bounds. */
int ug_fleet_gates_add(ug_fleet_flags *st, const ug_fleet_gate *g) UG_WUR;

/* The names a stage's quota key holds, "ug:{ROLLOUT}:TO:q:STAGE"; 0 or -1. */
int ug_fleet_qkey_parse(const char *k, size_t n, char rollout[UG_NAME_MAX + 1], char to[UG_VER_MAX + 1],
                        char stage[UG_NAME_MAX + 1]) UG_WUR;

/* A tracker's published census (docs/fleet.md, "The fleet's census"): one
 * string, "UGF1", a 32-byte MAC (BLAKE2b keyed with the flags' key, over
 * the tracker's name and every byte after the MAC; zeros without a key),
 * then buckets, each a 4-byte big-endian length and ug_census_export's
 * bytes. */
#define UG_FLEET_CENSUS_HEAD 36u
/* Seals buf (len bytes, the head's room first, buckets after it): writes
 * the magic and the MAC. */
void ug_fleet_census_seal(const uint8_t *key, const char *tracker, uint8_t *buf, size_t len);
/* Whether buf is a census tracker sealed under key (NULL: only its magic
 * is checked), in constant time. */
bool ug_fleet_census_open(const uint8_t *key, const char *tracker, const uint8_t *buf, size_t len) UG_WUR;
/* The bucket at *off of an opened census (start at UG_FLEET_CENSUS_HEAD):
 * 1 with rec/rlen set and *off past it, 0 at the end, -1 when a length
 * runs past the end (the rest is refused). */
int ug_fleet_census_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **rec, size_t *rlen) UG_WUR;

/* Key names: 0, or -1 when they do not fit UG_FLEET_KEY_MAX. */
int ug_fleet_key_scope(char *out, const char *rollout, const char *to, const char *what);
int ug_fleet_key_stage(char *out, const char *rollout, const char *to, const char *stage);
int ug_fleet_key_rollout(char *out, const char *rollout, const char *what);
int ug_fleet_key_fleet(char *out, const char *what, const char *tracker);

#endif
