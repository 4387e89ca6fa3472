/* libupgate, protocol version 2: the pinned roots and keyring URLs, what the peer learned (the state file,
 * loaded once and saved atomically whenever it moves), and the "updates may be blocked" event. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "internal.h"

static bool label(const char *s, size_t max)
{
    return s && ug2_label_valid(s, strnlen(s, max + 1), max);
}

const char *ug_client_take_v2_(ug_client *c, const ug_client_config *cfg)
{
    if (cfg->app && !label(cfg->app, UG2_LABEL_MAX))
        return "config: app must be 1 to 32 of A-Z a-z 0-9 . _ - +";
    if (cfg->app && (!label(cfg->plat, UG2_LABEL_MAX) || !label(cfg->chan, UG2_CHAN_MAX)))
        return "config: with app, plat (1 to 32) and chan (1 to 16) of A-Z a-z 0-9 . _ - + are required";
    if (cfg->tracker_name && !label(cfg->tracker_name, UG2_LABEL_MAX))
        return "config: tracker_name must be 1 to 32 of A-Z a-z 0-9 . _ - +";
    if (cfg->root_threshold < 1 || cfg->root_threshold > UG_CLIENT_PINS_MAX)
        return "config: root_threshold must be 1..8";
    if (cfg->state_path && (!cfg->state_path[0] || strlen(cfg->state_path) >= sizeof c->state_path - 16))
        return "config: state_path is empty or too long";
    if (cfg->blocked_after_s < 1 || cfg->keyring_timeout_s < 1 || cfg->keyring_timeout_s > 3600)
        return "config: blocked_after_s must be at least 1, keyring_timeout_s 1..3600";
    snprintf(c->app, sizeof c->app, "%s", cfg->app ? cfg->app : "");
    snprintf(c->tracker, sizeof c->tracker, "%s", cfg->tracker_name ? cfg->tracker_name : "");
    snprintf(c->state_path, sizeof c->state_path, "%s", cfg->state_path ? cfg->state_path : "");
    c->root_t = cfg->root_threshold;
    c->anchor_kv = cfg->anchor_kv;
    c->blocked_after = cfg->blocked_after_s;
    c->blocked = cfg->blocked;
    c->blocked_ctx = cfg->blocked_ctx;
    c->kr_timeout = cfg->keyring_timeout_s;
    return NULL;
}

/* ---- pins ---------------------------------------------------------------- */

ug_client_err ug_client_add_root_key(ug_client *c, const uint8_t pk[32])
{
    if (!c || !pk)
        return UG_CLIENT_E_INVALID;
    if (c->v2_loaded)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "pin the root keys before the first HELLO");
    if (c->nroots == UG_CLIENT_PINS_MAX)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "at most %u pinned root keys", UG_CLIENT_PINS_MAX);
    for (unsigned i = 0; i < c->nroots; i++)
        if (sodium_memcmp(c->roots[i], pk, UG_PK_LEN) == 0)
            return ug_client_fail_(c, UG_CLIENT_E_INVALID, "this root key is pinned already");
    memcpy(c->roots[c->nroots++], pk, UG_PK_LEN);
    return UG_CLIENT_OK;
}

ug_client_err ug_client_add_root_key_file(ug_client *c, const char *path)
{
    uint8_t pk[UG_PK_LEN];
    ug_client_err e = ug_client_read_key_file_(c, path, pk);
    if (e != UG_CLIENT_OK)
        return e;
    e = ug_client_add_root_key(c, pk);
    return e == UG_CLIENT_OK ? e : ug_client_fail_(c, e, "%s: %s", path, ug_client_errmsg(c));
}

ug_client_err ug_client_add_keyring_url(ug_client *c, const char *url)
{
    if (!c || !url)
        return UG_CLIENT_E_INVALID;
    size_t n = strnlen(url, UG_URL_MAX + 1);
    if (!ug2_keyring_url_valid(url, n) || n > UG_URL_MAX)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID,
                               "keyring URL %.60s: not an http(s) URL ending with \"/\", of at most 200 printable bytes",
                               url);
    if (c->nkr_urls == UG_CLIENT_KEYRING_URLS_MAX)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "at most %u keyring URLs", UG_CLIENT_KEYRING_URLS_MAX);
    memcpy(c->kr_urls[c->nkr_urls++], url, n + 1);
    return UG_CLIENT_OK;
}

unsigned ug_client_protocol(const ug_client *c)
{
    if (!c)
        return 0;
    bool v1 = c->nhint || c->nrelease, v2 = c->nroots > 0;
    return v1 && v2 ? 0 : v1 ? 1 : v2 ? 2 : 0;
}

/* ---- the state file -------------------------------------------------------- */

/* The seq table's entry of this peer's (app, chan), or a new one (NULL when full). */
static ug_client_seq *seq_entry(ug_client_pstate *st, const char *app, const char *chan, bool add)
{
    for (unsigned i = 0; i < st->nseqs; i++)
        if (!strcmp(st->seqs[i].app, app) && !strcmp(st->seqs[i].chan, chan))
            return &st->seqs[i];
    if (!add)
        return NULL;
    if (st->nseqs == UG_CLIENT_SEQS_MAX) /* the oldest pair gives way */
        memmove(&st->seqs[0], &st->seqs[1], sizeof st->seqs[0] * --st->nseqs);
    ug_client_seq *q = &st->seqs[st->nseqs++];
    snprintf(q->app, sizeof q->app, "%s", app);
    snprintf(q->chan, sizeof q->chan, "%s", chan);
    q->seq = 0;
    return q;
}

ug_client_err ug_client_v2_save_(ug_client *c)
{
    ug2_peer *p = &c->peer;
    ug_client_pstate *st = &c->st;
    st->min_serial = p->min_serial;
    st->floor = p->floor;
    st->fresh_at = p->fresh_at;
    ug_client_seq *q = seq_entry(st, p->app, p->chan, p->seq_hi > 0);
    if (q)
        q->seq = p->seq_hi;
    if (q && !q->seq) /* back to 0 (every release key replaced): forget it */
        *q = st->seqs[--st->nseqs];
    if (!c->state_path[0])
        return UG_CLIENT_OK;
    char text[UG_CLIENT_PSTATE_MAX];
    size_t len;
    if (ug_client_pstate_format_(st, text, sizeof text, &len) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "%s: the state does not fit %u bytes", c->state_path,
                               UG_CLIENT_PSTATE_MAX);
    return ug_client_atomic_write_(c, c->state_path, text, len);
}

/* The keyring of a state file: decoded, signed by its own roots, not older
 * than the anchor (an application upgraded to newer roots starts again). */
static ug_client_err held_keyring(ug_client *c)
{
    ug_client_pstate *st = &c->st;
    ug2_keyring kr;
    ug2_multisig m;
    if (!st->keyring_len)
        return UG_CLIENT_OK;
    if (ug2_keyring_open(&kr, &m, st->keyring, st->keyring_len, NULL) != 0 ||
        ug2_keyring_self_check(&kr, &m, NULL) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_FORMAT, "%s: its keyring is not a keyring signed by its own roots",
                               c->state_path);
    if (kr.kv < c->anchor_kv) {
        st->keyring_len = 0;
        return UG_CLIENT_OK;
    }
    c->peer.kr = kr;
    c->peer.has_keyring = true;
    return UG_CLIENT_OK;
}

static ug_client_err read_state(ug_client *c, bool *found)
{
    uint8_t text[UG_CLIENT_PSTATE_MAX];
    size_t len;
    char why[256] = "";
    struct stat sb;
    *found = false;
    if (stat(c->state_path, &sb) != 0 && errno == ENOENT)
        return UG_CLIENT_OK;
    if (ug_file_read(c->state_path, text, sizeof text, &len, why, sizeof why) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_IO, "%s: %s (a state file holds at most %u bytes)", c->state_path, why,
                               UG_CLIENT_PSTATE_MAX);
    if (ug_client_pstate_parse_(text, len, &c->st) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_FORMAT, "%s: not an upgate peer state (version 2)", c->state_path);
    *found = true;
    return held_keyring(c);
}

ug_client_err ug_client_v2_load_(ug_client *c)
{
    if (c->v2_loaded)
        return UG_CLIENT_OK;
    ug2_peer *p = &c->peer;
    if (!c->app[0])
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "config: app (with plat and chan) is needed for protocol version 2");
    if (c->root_t > c->nroots)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "config: root_threshold %u, but %u root keys pinned", c->root_t,
                               c->nroots);
    memset(p, 0, sizeof *p);
    memset(&c->st, 0, sizeof c->st);
    if (ug2_anchor_set(&p->kr, c->anchor_kv, (const uint8_t(*)[UG_PK_LEN])c->roots, c->nroots, c->root_t) != 0)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "the pinned root keys and threshold do not make an anchor");
    snprintf(p->app, sizeof p->app, "%s", c->app);
    snprintf(p->plat, sizeof p->plat, "%s", c->plat);
    snprintf(p->chan, sizeof p->chan, "%s", c->chan);
    snprintf(p->tracker, sizeof p->tracker, "%s", c->tracker);
    p->current = c->running;
    bool found = false;
    ug_client_err e = c->state_path[0] ? read_state(c, &found) : UG_CLIENT_OK;
    if (e != UG_CLIENT_OK)
        return e;
    const ug_client_seq *q = seq_entry(&c->st, p->app, p->chan, false);
    p->seq_hi = q ? q->seq : 0;
    p->min_serial = c->st.min_serial;
    p->floor = c->st.floor;
    /* a new installation: the clock starts the wait for a first token */
    p->fresh_at = found ? c->st.fresh_at : ug_client_now_(c);
    c->v2_loaded = true;
    return found ? UG_CLIENT_OK : ug_client_v2_save_(c);
}

void ug_client_v2_blocked_(ug_client *c)
{
    ug2_peer *p = &c->peer;
    p->now = ug_client_now_(c);
    bool b = ug2_peer_blocked(p, c->blocked_after);
    c->ev.blocked = b;
    if (b && !c->blocked_told && c->blocked)
        c->blocked(c->blocked_ctx, p->fresh_at, ug2_peer_now(p));
    c->blocked_told = b;
}

void ug_client_trust_info_init(ug_client_trust_info *info)
{
    memset(info, 0, sizeof *info);
    info->size = sizeof *info;
}

ug_client_err ug_client_trust(ug_client *c, ug_client_trust_info *info)
{
    if (!c || !info || info->size < offsetof(ug_client_trust_info, blocked) + sizeof info->blocked)
        return UG_CLIENT_E_INVALID;
    ug_client_trust_info out;
    ug_client_trust_info_init(&out);
    out.protocol = ug_client_protocol(c);
    if (out.protocol == 2) {
        ug_client_err e = ug_client_v2_load_(c);
        if (e != UG_CLIENT_OK)
            return e;
        const ug2_peer *p = &c->peer;
        out.keyring_version = p->has_keyring ? p->kr.kv : 0;
        out.keyring_expires = p->has_keyring ? p->kr.exp : 0;
        out.seq = p->seq_hi;
        out.min_serial = ug2_peer_min_serial(p);
        out.signed_time = p->floor;
        out.fresh_at = p->fresh_at;
        c->peer.now = ug_client_now_(c);
        out.blocked = ug2_peer_blocked(&c->peer, c->blocked_after);
    }
    size_t n = info->size < sizeof out ? info->size : sizeof out;
    out.size = info->size;
    memcpy(info, &out, n);
    return UG_CLIENT_OK;
}
