/* The protocol version 2 world of the program tests: keys and objects made by upgate-keys, keyrings and a
 * package served by busybox httpd, upgate-node on a v2 policy, a scripted tracker, upgate-peer runs. */
#ifndef UG_V2WORLD_H
#define UG_V2WORLD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "nodeutil.h"
#include "ug_proto2.h"

#define VW_APP "demo"
#define VW_PLAT "linux-x86_64"
#define VW_CHAN "stable"

typedef struct {
    char dir[128];   /* keys, objects, credentials */
    char www[160];   /* served: app.bin, keys/N.keyring */
    pid_t httpd;
    unsigned http_port;
} vw_world;

/* Makes the world: keys r1..r5 (roots), rel1, rel2 (release), c1, c2
 * (certificate), hint, hint2, issuer, client; www/app.bin (100 kB);
 * keyring 1 (roots r1 r2 r3 threshold 2, release rel1 rel2 threshold 2,
 * certificate c1 threshold 1) signed by r1 and r2, in www/keys/1.keyring;
 * busybox httpd on www. */
void vw_init(vw_world *w);
void vw_fini(vw_world *w);
/* Runs `upgate-keys ARGS` in w->dir (formatted, sh syntax): its exit code,
 * its output (both streams) in out when not NULL. */
int vw_keys(vw_world *w, char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same, asserting exit 0. */
void vw_keys_ok(vw_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* w->dir/name (a static buffer of four rotating). */
const char *vw_path(vw_world *w, const char *name);
/* A v2 manifest of app.bin at the mirror for version ver, seq, signed by
 * rel1 and rel2; `extra` adds options (--downgrade ...). */
void vw_manifest_of(vw_world *w, const char *out, const char *ver, unsigned seq, const char *extra);
/* The same for 2.0.0, seq 10. */
void vw_manifest(vw_world *w, const char *out, const char *extra);
/* A hint certificate of hint.pub (or hint2.pub when second) under keyring
 * kv, serial, signed by c1. */
void vw_cert(vw_world *w, const char *out, unsigned kv, unsigned serial, bool second);
/* Credential c<uid>.cred for client.pub. */
void vw_cred(vw_world *w, uint64_t uid);

/* upgate-node in w->dir/NAME on policy text (relative paths resolve from
 * there: keys are at ../); started, or the exit code and stderr when
 * expect_fail. */
void vw_node(vw_world *w, nu_node *n, const char *name, const char *policy);
int vw_node_fails(vw_world *w, nu_node *n, const char *name, const char *policy, char *err, size_t cap);
/* Writes policy text into a running node's folder and reloads it (SIGHUP). */
void vw_reload(nu_node *n, const char *policy);
/* A version 2 policy of one rollout targeting 1.4.0 with a stage that
 * selects everyone; keyring, cert and manifest files relative to ../. */
void vw_policy_text(char *out, size_t cap, const char *keyring, const char *cert, const char *manifest,
                    const char *extra_rollout);

typedef struct {
    int rc;
    char out[8192];
} vw_run;
/* upgate-peer, version 2: roots r1 r2 r3 (threshold 2, anchor version 1),
 * app demo, the keyring URL of the world, --tries 3 --timeout 10, --yes,
 * and args (formatted: tracker, uid, version, state, plat, chan, out ...). */
void vw_peer(vw_world *w, vw_run *r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- a scripted tracker, for what a real one never sends ---------------- */

typedef size_t (*vw_answer_fn)(void *ctx, const ug2_hello *h, uint8_t *out, size_t cap);
typedef struct {
    int fd;
    unsigned port;
    pthread_t th;
    atomic_bool stop;
    vw_answer_fn answer;
    void *ctx;
    atomic_uint hellos;
} vw_fake;

void vw_fake_start(vw_fake *f, vw_answer_fn answer, void *ctx);
void vw_fake_stop(vw_fake *f);

/* What a scripted HINT or WAIT is made of: the objects as files hold them. */
typedef struct {
    uint8_t *hint_sk; /* sodium_malloc'ed (ug_seckey_load) */
    uint8_t cert[UG_OBJ_MAX], rel[UG_OBJ_MAX];
    size_t cert_len, rel_len;
    uint32_t kv;
    uint64_t ts; /* 0: now */
} vw_hint;
/* Loads the hint key, a certificate and a manifest file of w->dir. */
void vw_hint_load(vw_world *w, vw_hint *h, const char *key, const char *cert, const char *rel, uint32_t kv);
void vw_hint_free(vw_hint *h);
/* A HINT v2 for h's HELLO; signed with h's key. */
size_t vw_hint_make(const vw_hint *h, const ug2_hello *hello, uint8_t *out, size_t cap);
/* A WAIT v2 (why 1, retry 120) for the HELLO, with a token of h when tok. */
size_t vw_wait_make(const vw_hint *h, const ug2_hello *hello, bool tok, uint8_t *out, size_t cap);

#endif
