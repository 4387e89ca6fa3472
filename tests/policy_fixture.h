/* The policy tests' fixture: a temp dir with keys, manifests and lists, a
 * loader that must accept or must refuse at file:line: key, and a stage's
 * conditions read through the condition table's interface. */
#ifndef UG_POLICY_FIXTURE_H
#define UG_POLICY_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "policy/policy.h"

/* Lines 1..6 of most test policies; extra text starts at line 7. */
#define HEAD                                                                                            \
    "keys:\n"                                                                                           \
    "  hint: keys/hint.key\n"                                                                           \
    "  issuers: [keys/issuer.pub]\n"                                                                    \
    "release: releases/2.0.0.manifest\n"                                                                \
    "targets: [\"1.4.0\", \"1.4.1\", \"<1.3\"]\n"                                                       \
    "state: state/\n"
/* What follows a test's own keys section. */
#define TAIL "release: releases/2.0.0.manifest\ntargets: [1.4.0]\nstate: state/\nstages: []\n"
/* Lines 1..3 of a version 2 policy: rollouts start at line 4. */
#define HEAD2 "keys: {hint: keys/hint.key, issuers: [keys/issuer.pub]}\nstate: state/\nrollouts:\n"

#define R0(p) (&(p)->rollouts[0])
#define ST(p, i) (&(p)->rollouts[0].stages[i])
#define SA(x) ((const struct sockaddr *)&(x))

/* The temp dir (keys/, releases/, state/, sub/, lists/) and D/policy.yaml. */
extern char pf_dir[256];
extern char pf_yaml[512];
extern uint8_t pf_hint_pk[UG_PK_LEN], pf_issuer_pk[UG_PK_LEN], pf_issuer2_pk[UG_PK_LEN];
/* releases/2.0.0.manifest (to 2.0.0, expires in a day); also there:
 * 2.1.0.manifest and 3.0.0.manifest (expire in 30 days), big.manifest
 * (too big for a HINT), garbage.manifest; keys/short.pub; lists/canary.txt
 * (1001, 1002, 1003). */
extern uint8_t pf_manifest[UG_OBJ_MAX];
extern size_t pf_manifest_len;

void pf_setup(void);
void pf_teardown(void);
void pf_pathf(char *out, size_t cap, const char *rel);
void pf_put(const char *rel, const void *data, size_t len);
void pf_put_b64(const char *rel, const uint8_t *bin, size_t len);
/* A signed manifest for `to`, nurls URLs of url_len bytes, expiring at exp. */
size_t pf_make_manifest(uint8_t *out, size_t cap, const char *to, unsigned nurls, size_t url_len, uint64_t exp);

ug_policy *pf_load_text(const char *path, const char *text, char *err, size_t cap);
ug_policy *pf_load_ok(const char *text);
/* The text must be refused with one line "file:line: key: message". */
void pf_fail_at_file(const char *text, const char *file, unsigned line, const char *key);
void pf_fail_at(const char *text, unsigned line, const char *key);

/* A stage's conditions through ug_cond_kind: the one named key (asserts it
 * is there), the sorted comma-separated keys, its describe text, its match. */
const ug_cond *pf_cond(const ug_stage *s, const char *key);
const char *pf_cond_keys(const ug_stage *s);
const char *pf_describe(const ug_stage *s, const char *key);
bool pf_holds(const ug_stage *s, const char *key, uint64_t uid, const struct sockaddr *src);
bool pf_net_has(const ug_stage *s, const char *addr);
bool pf_uid_in(const ug_stage *s, uint64_t uid);
/* What the plugin asks of a stage for a HELLO: its window, every
 * condition, and its percentage at now. */
bool pf_selects(const ug_stage *s, const ug_hello *h, const struct sockaddr *src, int64_t now);

ug_hello pf_hello(uint64_t uid, const char *plat, const char *chan);
struct sockaddr_in6 pf_addr6(const char *a);
struct sockaddr_in pf_addr4(const char *a);

#endif
