/* A tracker fixture for tests and fuzzers: keys, manifest, policy, and the
 * real upgate.so loaded through its ABI, on an injected clock. */
#ifndef UG_FIXTURE_H
#define UG_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "ug_proto.h"
#include "upgate_plugin.h"

#define FX_NOW UINT64_C(1790000000)

typedef struct {
    char dir[64];
    uint8_t hint_sk[UG_SK_LEN], hint_pk[UG_PK_LEN];
    uint8_t issuer_sk[UG_SK_LEN], issuer_pk[UG_PK_LEN];
    uint8_t rel_sk[UG_SK_LEN], rel_pk[UG_PK_LEN];
    uint8_t client_sk[UG_SK_LEN], client_pk[UG_PK_LEN];
    void *dl;
    const ug_plugin *api;
    void *inst;
    unsigned nworkers;
    _Atomic uint64_t now;
    char last_log[512];
    const char *state_override; /* passed to create() in ug_host */
    unsigned host_flags;        /* ug_host.flags (UG_HF_*) */
} fx_t;

typedef struct {
    const char *plat, *chan;
    const uint8_t *cookie;
    size_t target;     /* datagram size, default 1232 */
    int64_t ts_offset; /* peer clock minus tracker clock */
    uint64_t cred_exp; /* default now + 1 day */
    const uint8_t *nonce;
} fx_opts;

typedef struct {
    ug_verdict v;
    unsigned flags; /* handle2's UG_REPLY_* */
    int type; /* 0 when no reply */
    size_t len;
    uint8_t bytes[UG_DGRAM_MAX];
    ug_hint hint;  /* HINT: verified with the pinned keys */
    ug_err hint_err;
    ug_wait wait;
    ug_cookie cookie;
} fx_reply;

/* Temp dir with fresh keys and a manifest for 2.0.0 (2 mirrors, valid 2 years). */
void fx_init(fx_t *f, unsigned nworkers);
/* As fx_init, with the keys of the spec's keys.json (so the vectors' HELLOs
 * and REPORTs verify against this tracker). */
void fx_init_vectors(fx_t *f, unsigned nworkers);
/* Rewrites dir/release.manifest for 2.0.0 with nurls URLs, each url_len
 * bytes long (0: short loopback URLs). */
void fx_manifest(fx_t *f, unsigned nurls, size_t url_len);
/* Writes dir/policy.yaml: keys, release and state lines, then `rest`. */
void fx_policy(fx_t *f, const char *rest);
/* Writes dir/policy.yaml: keys and state lines, then `rest` (a version 2
 * policy, or one naming its own release). */
void fx_policy_bare(fx_t *f, const char *rest);
/* Path of dir/policy.yaml. */
const char *fx_policy_path(fx_t *f);
/* dlopen()s the plugin and creates an instance; 0, or -1 with err set. */
int fx_start(fx_t *f, char *err, size_t errcap);
void fx_stop(fx_t *f);
/* A signed HELLO datagram for uid at version ver. */
size_t fx_hello(fx_t *f, uint8_t *out, uint64_t uid, const char *ver, const fx_opts *o);
/* Feeds one datagram from ip:port on worker, flushes, decodes the reply. */
fx_reply fx_send(fx_t *f, unsigned worker, const char *ip, uint16_t port, const uint8_t *in, size_t len);
/* fx_hello + fx_send from ip port 4000. */
fx_reply fx_ask(fx_t *f, unsigned worker, const char *ip, uint64_t uid, const char *ver, const fx_opts *o);
/* fx_ask, and when the answer is a COOKIE, once more with it (as a peer
 * does: an address condition counts only for a proved address). *cookied
 * (may be NULL) says whether it took the second round. */
fx_reply fx_ask_proved(fx_t *f, unsigned worker, const char *ip, uint64_t uid, const char *ver, const fx_opts *o,
                       bool *cookied);
/* A signed REPORT datagram from the fixture's client. */
size_t fx_report(fx_t *f, uint8_t *out, uint64_t uid, const char *ver, const char *to, ug_res res);
/* Writes a manifest for version `to` at dir/name, signed with the release
 * key, with one URL naming it. */
void fx_manifest_at(fx_t *f, const char *name, const char *to);
/* One control request; returns the reply (static buffer), *rc the return. */
const char *fx_control(fx_t *f, const char *req, int *rc);
/* decide() without spending: the answer for claimed fields. */
ug_decision fx_decide(fx_t *f, uint64_t uid, const char *ver, const char *ip, unsigned flags);
/* A counter from stats(), by name; aborts if unknown. */
uint64_t fx_stat(fx_t *f, const char *name);

#endif
