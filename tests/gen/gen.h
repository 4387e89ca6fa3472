/* The version 2 vector generator's shared pieces: fixed keys, a map body
 * editor for refuse vectors, multi-signing with faults, JSON vectors. */
#ifndef UG_GEN_H
#define UG_GEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ug_proto2.h"

#define NOW UINT64_C(1790000000)
#define DAY UINT64_C(86400)
#define GEN_BUF 4600

enum {
    K_ROOT1, K_ROOT2, K_ROOT3, K_ROOT4,
    K_REL1, K_REL2, K_REL3,
    K_CERT1, K_CERT2,
    K_HINT1, K_HINT2,
    K_ISSUER, K_CLIENT, K_STRANGER,
    K_N
};
extern uint8_t g_sk[K_N][UG_SK_LEN];
extern uint8_t g_pk[K_N][UG_PK_LEN];
/* Derives every key from its fixed seed; aborts on failure. */
void gen_keys(json_t *keys_out);
void gen_die(const char *what) __attribute__((noreturn));

/* ---- a map body, edited entry by entry ---------------------------------- */
typedef struct {
    uint8_t k[40];
    size_t klen; /* the key's whole msgpack bytes */
    uint8_t v[4300];
    size_t vlen; /* the value's whole msgpack bytes */
} gen_ent;
typedef struct {
    gen_ent e[20];
    size_t n;
    int force_hdr; /* 0: canonical map header; else this byte then a 16-bit count (map16) */
} gen_map;

void gm_load(gen_map *m, const uint8_t *body, size_t len);
/* Replaces the value of key (appends it when absent). */
void gm_set(gen_map *m, const char *key, const uint8_t *v, size_t vlen);
void gm_set_hex(gen_map *m, const char *key, const char *hex);
void gm_set_uint(gen_map *m, const char *key, uint64_t v);
void gm_set_str(gen_map *m, const char *key, const char *s);
void gm_del(gen_map *m, const char *key);
/* Appends a second entry with key's key and value. */
void gm_dup(gen_map *m, const char *key);
/* Rewrites key's own encoding as a str8 (non-canonical). */
void gm_key_str8(gen_map *m, const char *key);
size_t gm_save(const gen_map *m, uint8_t *out, size_t cap);
/* A body with one edit: load, fn, save. */
typedef void (*gen_edit)(gen_map *m);
size_t gen_edit_body(uint8_t *body, size_t len, size_t cap, gen_edit fn);

/* ---- signing ---------------------------------------------------------- */
typedef struct {
    int key; /* whose kid the entry carries */
    int by;  /* who signs (-1: key) */
    int fault; /* 0 none, 1 S + L, 2 one bit of S flipped */
} gen_sig;
#define SG(k) ((gen_sig){(k), -1, 0})
size_t gen_multisig(uint8_t *out, size_t cap, const char *ctx, const uint8_t *body, size_t len,
                    const gen_sig *s, size_t n);
/* A signature with S + L: the same equation, a non-canonical S. */
void gen_plus_l(uint8_t sig[UG_SIG_LEN]);
size_t gen_seal(uint8_t *out, size_t cap, unsigned version, ug_type t, const uint8_t *body, size_t len,
                const char *ctx, int key, int fault);

/* ---- JSON ----------------------------------------------------------------- */
char *gen_hex(const uint8_t *p, size_t n); /* malloc'd */
/* Appends {name, expect, error?, hex} to arr and returns it for more fields. */
json_t *gen_vec(json_t *arr, const char *name, ug_err want, const uint8_t *bytes, size_t len);
void gen_write(const char *dir, const char *file, json_t *j);

/* ---- the objects everyone shares -------------------------------------- */
typedef struct {
    const char *name;
    uint32_t kv;
    uint64_t exp;
    int root[4], nroot, root_t;
    int rel[4], nrel, rel_t;
    int cert[4], ncert, cert_t;
    uint64_t min_serial;
    int signers[6], nsigners;
} gen_kr;
void gen_keyring_struct(ug2_keyring *k, const gen_kr *g);
size_t gen_keyring_doc(uint8_t *out, size_t cap, const gen_kr *g);
/* The keyrings every context names (kr1, kr2, kr3, variants), as a JSON dict. */
json_t *gen_keyrings(void);
extern const gen_kr G_KR[];
extern const size_t G_NKR;
const gen_kr *gen_kr_named(const char *name);

void gen_cert_default(ug2_cert *c);
size_t gen_cert_obj(uint8_t *out, size_t cap, const ug2_cert *c, const gen_sig *s, size_t n, gen_edit edit);
void gen_manifest_default(ug2_manifest *m);
size_t gen_manifest_obj(uint8_t *out, size_t cap, const ug2_manifest *m, const gen_sig *s, size_t n,
                        gen_edit edit);
json_t *gen_peer_ctx(void);
json_t *gen_anchor(void);

/* Each writes one vectors file into dir. */
void gen_file_keyring(const char *dir);
void gen_file_cert(const char *dir);
void gen_file_manifest(const char *dir);
void gen_file_peer(const char *dir);
void gen_file_wait(const char *dir);
void gen_file_tracker(const char *dir);
void gen_file_report(const char *dir);
/* sizes.json gathers rows as the files are made. */
void gen_size_row(const char *what, const char *file, const char *vector, size_t bytes);
void gen_file_sizes(const char *dir);

#endif
