/* libupgate, protocol version 2: keyrings fetched over HTTP (libcurl, at most 4096 bytes, http and https
 * only, no redirects) and walked version by version through the chain step (protocol-v2.md 5.1). */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "internal.h"

typedef struct {
    uint8_t buf[UG2_KEYRING_MAX];
    size_t len;
    bool too_big;
} fetch_buf;

static size_t on_data(char *data, size_t size, size_t n, void *ctx)
{
    fetch_buf *f = ctx;
    size_t len = size * n;
    if (len > sizeof f->buf - f->len) { /* a longer answer is refused, not read on */
        f->too_big = true;
        return 0;
    }
    memcpy(f->buf + f->len, data, len);
    f->len += len;
    return len;
}

/* GET url into f; 0, or -1 with why[0..cap) set. */
static int fetch(const ug_client *c, const char *url, fetch_buf *f, char *why, size_t cap)
{
    CURL *e = curl_easy_init();
    char err[CURL_ERROR_SIZE] = "";
    f->len = 0;
    f->too_big = false;
    if (!e) {
        snprintf(why, cap, "libcurl failed to start");
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, c->kr_timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, c->kr_timeout);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)UG2_KEYRING_MAX);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "libupgate/" UG_CLIENT_VERSION);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    if (f->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(why, cap, "%s: longer than %u bytes", url, UG2_KEYRING_MAX);
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf(why, cap, "%s: %s", url, err[0] ? err : curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

/* The keyring URLs known now: the configuration's, the keyring's, the manifest's. */
static unsigned url_list(const ug_client *c, const ug2_manifest *m, const char *out[12])
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->nkr_urls; i++)
        out[n++] = c->kr_urls[i];
    for (unsigned i = 0; c->peer.has_keyring && i < c->peer.kr.nurls; i++)
        out[n++] = c->peer.kr.urls[i];
    for (unsigned i = 0; m && i < m->nkeyring; i++)
        out[n++] = m->keyring[i];
    return n;
}

/* Do two keyrings share a release key? (Else seq and min_serial restart.) */
static bool share_release_key(const ug2_keyring *a, const ug2_keyring *b)
{
    for (unsigned i = 0; i < a->nrel; i++)
        if (ug_pubkey_find(b->rel, b->nrel, a->rel[i].kid))
            return true;
    return false;
}

/* One chain step to version kv from the first URL whose document passes. */
static int step(ug_client *c, uint32_t kv, const ug2_manifest *m, ug_err *why, char *msg, size_t cap)
{
    const char *urls[12];
    unsigned n = url_list(c, m, urls);
    fetch_buf f;
    snprintf(msg, cap, "no keyring URL known");
    *why = UG_E_KEYRING;
    for (unsigned i = 0; i < n; i++) {
        char url[UG_URL_MAX + 32];
        if (ug2_keyring_url(url, sizeof url, urls[i], kv) != 0 || fetch(c, url, &f, msg, cap) != 0)
            continue;
        bool had = c->peer.has_keyring;
        ug2_keyring old = c->peer.kr;
        ug_err e = UG_OK;
        if (ug2_peer_keyring(&c->peer, f.buf, f.len, &e) != 0) {
            snprintf(msg, cap, "%s: refused: %s", url, ug_err_name(e));
            *why = e;
            continue;
        }
        memcpy(c->st.keyring, f.buf, f.len);
        c->st.keyring_len = f.len;
        if (had && !share_release_key(&old, &c->peer.kr))
            c->st.nseqs = 0; /* every release key replaced: recovery from a fast-forward */
        return 0;
    }
    return -1;
}

int ug_client_walk_(ug_client *c, uint32_t need, const ug2_manifest *m, ug_err *why)
{
    char msg[512] = "";
    unsigned steps = 0;
    int rc = 0;
    ug_err e = UG_OK;
    for (;;) {
        uint32_t next = ug2_peer_next_kv(&c->peer);
        bool done = need ? c->peer.has_keyring && c->peer.kr.kv >= need : false;
        if (done || (c->peer.has_keyring && next == c->peer.kr.kv)) /* held, or the last version */
            break;
        if (steps == UG_CLIENT_KEYRING_WALK_MAX || step(c, next, m, &e, msg, sizeof msg) != 0) {
            rc = need || !c->peer.has_keyring ? -1 : 0; /* updating: the end of what is served */
            break;
        }
        steps++;
    }
    if (steps && ug_client_v2_save_(c) != UG_CLIENT_OK)
        return -1;
    if (rc != 0) {
        *why = e;
        ug_client_fail_(c, UG_CLIENT_E_KEYRING, "keyring %u: %s", ug2_peer_next_kv(&c->peer), msg);
    }
    return rc;
}

ug_client_err ug_client_keyring_update(ug_client *c)
{
    if (!c)
        return UG_CLIENT_E_INVALID;
    if (ug_client_protocol(c) != 2)
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "keyrings are protocol version 2's: pin root keys");
    ug_client_err e = ug_client_v2_load_(c);
    if (e != UG_CLIENT_OK)
        return e;
    ug_err why;
    if (ug_client_walk_(c, 0, NULL, &why) != 0)
        return UG_CLIENT_E_KEYRING;
    c->peer.now = ug_client_now_(c);
    if (!c->peer.has_keyring || c->peer.kr.exp <= ug2_peer_now(&c->peer))
        return ug_client_fail_(c, UG_CLIENT_E_KEYRING, "keyring %u expired and no newer one is served",
                               c->peer.kr.kv);
    return UG_CLIENT_OK;
}
