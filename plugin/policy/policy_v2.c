/* Protocol version 2 in a policy (docs/policy-v2-extensions.md): the keyring the tracker serves, its hint
 * key's certificate, the rollouts' bound v2 manifests and what freshness tokens list, each checked at load
 * as protocol-v2.md 6.1 demands, with a one-line error naming the file, the line and the key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy_v2.h"

#define FAIL(c, node, key, ...) UG_YFAIL((c)->y, (node), (key), __VA_ARGS__)

/* A whole file of at most cap bytes into a new buffer. */
static int read_file(const ug_v2ld *c, const ug_ynode *v, const char *key, const char *what, const char *path,
                     size_t cap, uint8_t **out, size_t *len)
{
    char why[256] = "";
    if (!(*out = malloc(cap)))
        return FAIL(c, v, key, "out of memory");
    if (ug_file_read(path, *out, cap, len, why, sizeof why) != 0)
        return FAIL(c, v, key, "cannot read %s %s: %s", what, path, why);
    return 0;
}

/* The keyring on its own: a document signed by its own roots, unexpired. */
static int check_keyring(const ug_v2ld *c, const ug_policy_v2 *k, const ug_ynode *v)
{
    ug2_keyring kr;
    ug2_multisig m;
    ug_err e = UG_OK;
    if (ug2_keyring_open(&kr, &m, k->keyring_doc, k->keyring_len, &e) != 0)
        return FAIL(c, v, "keys.keyring", "%s is not a keyring document: %s", k->keyring_path, ug_err_name(e));
    if (ug2_keyring_self_check(&kr, &m, &e) != 0)
        return FAIL(c, v, "keys.keyring", "keyring %s (version %u) is not signed by %u of its own roots: %s",
                    k->keyring_path, kr.kv, kr.root_t, ug_err_name(e));
    if (kr.exp <= c->now)
        return FAIL(c, v, "keys.keyring", "keyring %s (version %u) has expired: publish and name a newer one",
                    k->keyring_path, kr.kv);
    return 0;
}

/* The name tokens carry: keys.tracker (which must be the certificate's
 * when it names one), else the certificate's; the fleet's name or
 * "upgate" once the whole policy is read (settle). */
static int tracker_name(const ug_v2ld *c, ug_policy *p, const ug_yfield *tracker)
{
    ug_policy_v2 *k = p->v2;
    const ug2_cert *cert = &k->keys.cert;
    const char *s = NULL;
    size_t n = 0;
    char buf[UG_YAML_SHOW_MAX];
    if (tracker->val) {
        if (ug_yget_str(c->y, tracker->val, "keys.tracker", 1, UG2_LABEL_MAX, &s, &n) != 0)
            return -1;
        if (!ug2_label_valid(s, n, UG2_LABEL_MAX))
            return FAIL(c, tracker->val, "keys.tracker", "\"%s\" is not a tracker name (1 to 32 of A-Z a-z 0-9 . _ - +)",
                        ug_yshow(buf, sizeof buf, s, n));
        if (cert->trk[0] && (strlen(cert->trk) != n || memcmp(cert->trk, s, n) != 0))
            return FAIL(c, tracker->val, "keys.tracker", "the certificate %s is for tracker %s, not %s", k->cert_path,
                        cert->trk, ug_yshow(buf, sizeof buf, s, n));
        memcpy(k->tracker, s, n);
        k->tracker[n] = 0;
    } else if (cert->trk[0]) {
        snprintf(k->tracker, sizeof k->tracker, "%s", cert->trk);
    }
    return 0;
}

int ug_policy_v2_keys(const ug_v2ld *c, ug_policy *p, const ug_yfield *keyring, const ug_yfield *cert,
                      const ug_yfield *tracker, const ug_ynode *keys)
{
    if (!keyring->val && !cert->val) {
        if (tracker->val)
            return FAIL(c, tracker->val, "keys.tracker", "names the tracker in version 2 tokens: give keys.keyring and keys.hint_cert too");
        return 0;
    }
    if (!keyring->val || !cert->val)
        return FAIL(c, keys, keyring->val ? "keys.hint_cert" : "keys.keyring",
                    "missing: keys.keyring and keys.hint_cert go together (protocol version 2)");
    ug_policy_v2 *k = p->v2 = calloc(1, sizeof *p->v2);
    if (!k)
        return FAIL(c, keys, "keys", "out of memory");
    k->line = ug_yline(keyring->val);
    k->token_ttl = 3600;
    if (ug_yget_path(c->y, keyring->val, "keys.keyring", c->dir, k->keyring_path, sizeof k->keyring_path) != 0 ||
        read_file(c, keyring->val, "keys.keyring", "keyring", k->keyring_path, UG2_KEYRING_MAX, &k->keyring_doc,
                  &k->keyring_len) != 0 ||
        check_keyring(c, k, keyring->val) != 0 ||
        ug_yget_path(c->y, cert->val, "keys.hint_cert", c->dir, k->cert_path, sizeof k->cert_path) != 0 ||
        read_file(c, cert->val, "keys.hint_cert", "certificate", k->cert_path, UG_OBJ_MAX, &k->cert_obj,
                  &k->cert_len) != 0)
        return -1;
    ug_err e = UG_OK;
    if (ug2_tracker_keys_check(&k->keys, k->keyring_doc, k->keyring_len, k->cert_obj, k->cert_len,
                               p->hint_pub.pk, c->now, &e) != 0)
        return FAIL(c, cert->val, "keys.hint_cert", "certificate %s refused under keyring %s: %s%s", k->cert_path,
                    k->keyring_path, ug_err_name(e),
                    e == UG_E_KEY ? " (it certifies another key than keys.hint)" : "");
    return tracker_name(c, p, tracker);
}

/* ---- a rollout's v2 manifest ------------------------------------------ */

/* A rollout with both manifests offers one release: same version, size and hash. */
static int same_release(const ug_v2ld *c, const ug_rollout *r, const ug_ynode *v, const char *key)
{
    const ug2_manifest *m = r->rel2;
    char a[UG_VER_MAX + 1];
    if (ug_version_cmp(&m->to, &r->rel.to) != 0) {
        if (ug_version_format(&m->to, a, sizeof a) != 0)
            a[0] = 0;
        return FAIL(c, v, key, "%s offers %s, but the rollout's release %s offers %s", r->release2_path, a,
                    r->release_path, r->to);
    }
    if (m->size != r->rel.size || memcmp(m->hash, r->rel.hash, UG_HASH_LEN) != 0)
        return FAIL(c, v, key, "%s and %s offer %s with different packages (size or hash)", r->release2_path,
                    r->release_path, r->to);
    return 0;
}

/* Without a v1 manifest the rollout's release is the v2 one's. */
static int release_of(const ug_v2ld *c, ug_rollout *r, const ug_ynode *v, const char *key)
{
    const ug2_manifest *m = r->rel2;
    memset(&r->rel, 0, sizeof r->rel);
    r->rel.to = m->to;
    r->rel.nurls = m->nurls;
    memcpy(r->rel.urls, m->urls, sizeof r->rel.urls);
    r->rel.size = m->size;
    memcpy(r->rel.hash, m->hash, UG_HASH_LEN);
    r->rel.exp = m->exp;
    snprintf(r->release_path, sizeof r->release_path, "%s", r->release2_path);
    if (ug_version_format(&m->to, r->to, sizeof r->to) != 0)
        return FAIL(c, v, key, "%s: version too long", r->release2_path);
    return 0;
}

int ug_policy_v2_release(const ug_v2ld *c, ug_policy *p, ug_rollout *r, const ug_ynode *v, const char *key)
{
    if (!v)
        return 0;
    if (!p->v2)
        return FAIL(c, v, key, "a version 2 manifest needs keys.keyring and keys.hint_cert");
    if (ug_yget_path(c->y, v, key, c->dir, r->release2_path, sizeof r->release2_path) != 0 ||
        read_file(c, v, key, "manifest", r->release2_path, UG_OBJ_MAX, &r->manifest2, &r->manifest2_len) != 0)
        return -1;
    if (!(r->rel2 = calloc(1, sizeof *r->rel2)))
        return FAIL(c, v, key, "out of memory");
    ug_err e = UG_OK;
    const ug_policy_v2 *k = p->v2;
    if (ug2_tracker_manifest_check(r->rel2, r->manifest2, r->manifest2_len, &k->keys, c->now, &e) != 0)
        return FAIL(c, v, key, "manifest %s refused under keyring %s%s: %s", r->release2_path, k->keyring_path,
                    e == UG_E_REVOKED ? " (its min_serial revokes keys.hint_cert)" : "", ug_err_name(e));
    size_t hint = ug2_hint_max_len(k->cert_len, r->manifest2_len);
    if (hint > UG_DGRAM_MAX)
        return FAIL(c, v, key, "manifest %s (%zu bytes) and certificate %s (%zu bytes) are too large: a HINT carrying them could take %zu bytes, over the %u-byte datagram limit",
                    r->release2_path, r->manifest2_len, k->cert_path, k->cert_len, hint, UG_DGRAM_MAX);
    return r->manifest ? same_release(c, r, v, key) : release_of(c, r, v, key);
}

/* ---- tokens ------------------------------------------------------------------ */

static void note_seq(ug_policy_v2 *k, const ug2_manifest *m)
{
    for (unsigned i = 0; i < k->nseqs; i++)
        if (!strcmp(k->seqs[i].app, m->app) && !strcmp(k->seqs[i].chan, m->chan)) {
            if (m->seq > k->seqs[i].seq)
                k->seqs[i].seq = m->seq;
            return;
        }
    if (k->nseqs == UG2_SEQS_MAX) {
        k->seqs_left_out++;
        return;
    }
    ug2_seq *s = &k->seqs[k->nseqs++];
    snprintf(s->app, sizeof s->app, "%s", m->app);
    snprintf(s->chan, sizeof s->chan, "%s", m->chan);
    s->seq = m->seq;
}

int ug_policy_v2_settle(const ug_v2ld *c, ug_policy *p, const ug_ynode *token_ttl)
{
    if (!p->v2)
        return token_ttl ? FAIL(c, token_ttl, "token_ttl", "version 2 tokens need keys.keyring and keys.hint_cert") : 0;
    if (token_ttl && ug_yget_uint(c->y, token_ttl, "token_ttl", 1, UG2_TOKEN_LIFE_MAX, &p->v2->token_ttl) != 0)
        return -1;
    ug_policy_v2 *k = p->v2;
    if (!k->tracker[0] && p->fleet.enabled && ug2_label_valid(p->fleet.tracker, strlen(p->fleet.tracker), UG2_LABEL_MAX))
        snprintf(k->tracker, sizeof k->tracker, "%s", p->fleet.tracker);
    else if (!k->tracker[0])
        snprintf(k->tracker, sizeof k->tracker, "upgate");
    for (size_t i = 0; i < p->nrollouts; i++)
        if (p->rollouts[i].rel2)
            note_seq(p->v2, p->rollouts[i].rel2);
    return 0;
}

void ug_policy_v2_free(ug_policy *p)
{
    for (size_t i = 0; i < p->nrollouts; i++) {
        free(p->rollouts[i].manifest2);
        free(p->rollouts[i].rel2);
    }
    if (p->v2) {
        free(p->v2->keyring_doc);
        free(p->v2->cert_obj);
        free(p->v2);
    }
}
