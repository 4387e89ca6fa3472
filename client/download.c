/* libupgate: downloads an offer over libcurl's multi interface: mirrors in order, Range resume, a deadline, verify, then rename. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "download.h"

#define RESUMES_MAX 3u            /* resumed attempts per mirror after it broke off */
#define DEADLINE_CAP_S (30u * 86400u)
#define POLL_MAX_MS 1000
#define SLOW_GRACE_MS 10000u /* a mirror's rate is judged from this long after its first byte */

void ug_client_download_config_init(ug_client_download_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->deadline_base_s = 60;
    cfg->min_rate = 16384;
    cfg->low_speed_limit = 1024;
    cfg->low_speed_time = 30;
    cfg->connect_timeout_s = 10;
}

uint64_t ug_client_mono_ms_(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ug_client_dl_say_(ug_client_transfer *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ug_client_vsay_(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

/* Ends the download with result e (d->msg already says why). */
static void finish_with(ug_client_transfer *d, ug_client_err e)
{
    d->result = e;
    d->c->via = d->via;
    d->c->via_bytes = d->bytes;
    if (e != UG_CLIENT_OK)
        ug_client_part_close_(d, d->have == 0); /* an empty partial file is litter */
}

/* ---- one attempt ---------------------------------------------------- */

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    ug_client_transfer *d = arg;
    size_t n = size * nmemb;
    static const char cr[] = "content-range:";
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) /* a new response (a redirect's next one) */
        d->range_seen = false;
    else if (n > sizeof cr - 1 && strncasecmp(line, cr, sizeof cr - 1) == 0)
        d->range_seen = ug_client_content_range_(line + sizeof cr - 1, n - (sizeof cr - 1), &d->range_start,
                                                 &d->range_total) == 0;
    return n;
}

/* The first body bytes of a response: a 206 must start where we asked; a
 * 200 to a range request means the server sends it all again. */
static bool accept_response(ug_client_transfer *d)
{
    long code = 0;
    (void)curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &code);
    if (d->from == 0)
        return true;
    if (code == 206)
        return d->range_seen && d->range_start == d->from &&
               (d->range_total == 0 || d->range_total == d->offer.size);
    if (ug_client_part_discard_(d) != 0)
        return false;
    d->from = 0;
    d->fresh_tried = true;
    return true;
}

/* Issue 21 §6: a mirror that drips holds the download no longer than its
 * rate since the first byte allows. After SLOW_GRACE_MS, true when the rest
 * of the package at that rate would end past the mirror's share of the
 * deadline (it would time out there anyway, the time spent lost). */
static bool hopeless(ug_client_transfer *d)
{
    uint64_t now = ug_client_mono_ms_();
    if (!d->first_ms)
        d->first_ms = now;
    uint64_t spent = now - d->first_ms;
    if (spent < SLOW_GRACE_MS || d->have >= d->offer.size)
        return false;
    double rate = (double)d->got / (double)spent; /* bytes a millisecond */
    return (double)now + (double)(d->offer.size - d->have) / rate > (double)d->share_end_ms;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    ug_client_transfer *d = arg;
    size_t n = size * nmemb; /* size is 1 */
    if (!d->status_checked) {
        d->status_checked = true;
        if (!accept_response(d)) {
            d->bad_range = d->write_errno == 0;
            return 0; /* aborts the transfer */
        }
    }
    if (n > d->offer.size - d->have) {
        d->too_big = true;
        return 0;
    }
    if (ug_client_part_append_(d, data, n) != 0)
        return 0;
    d->got += n;
    d->bytes += n;
    if (hopeless(d)) {
        d->too_slow = true;
        return 0; /* aborts the transfer: the next mirror gets the time left */
    }
    if (d->cfg.progress)
        d->cfg.progress(d->cfg.ctx, d->have, d->offer.size, d->offer.urls[d->mirror]);
    return n;
}

static ug_client_err begin_attempt(ug_client_transfer *d);

ug_client_err ug_client_dl_begin_(ug_client_transfer *d)
{
    uint64_t s = d->cfg.deadline_s ? d->cfg.deadline_s : d->cfg.deadline_base_s + d->offer.size / d->cfg.min_rate;
    d->deadline_s = s < DEADLINE_CAP_S ? s : DEADLINE_CAP_S;
    d->deadline_ms = ug_client_mono_ms_() + d->deadline_s * 1000u;
    d->mirror = d->resumes = 0;
    d->new_mirror = true;
    d->fresh_tried = d->mismatch_seen = false;
    d->why[0] = 0;
    ug_client_err e = ug_client_part_open_(d);
    if (e == UG_CLIENT_OK && d->have == d->offer.size) { /* all there from an earlier run */
        if (ug_client_part_verify_(d))
            return ug_client_part_install_(d);
        if (ug_client_part_discard_(d) != 0)
            e = UG_CLIENT_E_IO;
    }
    return e == UG_CLIENT_OK ? begin_attempt(d) : e;
}

/* Starts the transfer from mirror d->mirror at byte d->have. */
static ug_client_err add_transfer(ug_client_transfer *d, uint64_t now)
{
    CURL *e = curl_easy_init();
    if (!e) {
        ug_client_dl_say_(d, "libcurl failed to start a transfer");
        return UG_CLIENT_E_CURL;
    }
    d->easy = e;
    d->from = d->have;
    d->got = 0;
    d->status_checked = d->too_big = d->bad_range = d->range_seen = d->too_slow = false;
    d->first_ms = 0;
    d->errbuf[0] = 0;
    if (d->have == 0)
        d->fresh_tried = true;
    char range[32];
    snprintf(range, sizeof range, "%llu-", (unsigned long long)d->have);
    long timeout = (long)(d->share_end_ms - now);
    curl_easy_setopt(e, CURLOPT_URL, d->offer.urls[d->mirror]);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, d->cfg.connect_timeout_s);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, d->cfg.low_speed_limit);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, d->cfg.low_speed_time);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout > 0 ? timeout : 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, d->ua);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, d);
    if (d->have > 0) /* not CURLOPT_RESUME_FROM: that refuses a 200, which we take as "start over" */
        curl_easy_setopt(e, CURLOPT_RANGE, range);
    else if (d->offer.size > 0 && d->offer.size <= (uint64_t)INT64_MAX) /* 0 would mean "no limit" */
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)d->offer.size);
    if (curl_multi_add_handle(d->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        d->easy = NULL;
        ug_client_dl_say_(d, "libcurl failed to start a transfer");
        return UG_CLIENT_E_CURL;
    }
    return UG_CLIENT_OK;
}

/* The next attempt: on the same mirror when d->mirror did not move, else
 * on a new one with its share of the time left. Ends the download when
 * there is no mirror or no time left. */
static ug_client_err begin_attempt(ug_client_transfer *d)
{
    uint64_t now = ug_client_mono_ms_();
    if (d->mirror >= d->offer.nurls) {
        const char *last = d->offer.urls[d->offer.nurls - 1];
        ug_client_dl_say_(d, "%s from %s%s", d->why, last, d->offer.nurls > 1 ? " (no mirror left)" : "");
        return d->mismatch_seen ? UG_CLIENT_E_MISMATCH
               : now >= d->deadline_ms ? UG_CLIENT_E_DEADLINE : UG_CLIENT_E_DOWNLOAD;
    }
    if (now >= d->deadline_ms) {
        ug_client_dl_say_(d, "the download deadline of %llu s passed (%s from %s)", (unsigned long long)d->deadline_s,
            d->why[0] ? d->why : "no answer", d->offer.urls[d->mirror]);
        return d->mismatch_seen ? UG_CLIENT_E_MISMATCH : UG_CLIENT_E_DEADLINE;
    }
    if (d->new_mirror) {
        d->new_mirror = false;
        d->share_end_ms = now + (d->deadline_ms - now) / (d->offer.nurls - d->mirror);
    }
    return add_transfer(d, now);
}

static ug_client_err next_mirror(ug_client_transfer *d)
{
    const char *url = d->offer.urls[d->mirror];
    d->mirror++;
    d->resumes = 0;
    d->fresh_tried = false;
    d->new_mirror = true;
    if (d->mirror < d->offer.nurls && d->cfg.fallback)
        d->cfg.fallback(d->cfg.ctx, url, d->why);
    return begin_attempt(d);
}

/* A mirror's bytes proved wrong: drop them and try the next one. */
static ug_client_err mirror_lied(ug_client_transfer *d)
{
    d->mismatch_seen = true;
    if (ug_client_part_discard_(d) != 0)
        return UG_CLIENT_E_IO;
    return next_mirror(d);
}

static ug_client_err after_transfer(ug_client_transfer *d, CURLcode cc)
{
    uint64_t now = ug_client_mono_ms_();
    if (d->write_errno)
        return UG_CLIENT_E_IO; /* d->msg names the file */
    if (d->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(d->why, sizeof d->why, "more than the %llu bytes the manifest allows",
                 (unsigned long long)d->offer.size);
        return mirror_lied(d);
    }
    if (d->too_slow) { /* its bytes are good: the next mirror resumes after them */
        snprintf(d->why, sizeof d->why, "too slow: %llu bytes a second since its first byte cannot finish within "
                 "its share of the %llu s deadline", (unsigned long long)(d->got * 1000u / (now - d->first_ms + 1)),
                 (unsigned long long)d->deadline_s);
        return next_mirror(d);
    }
    if (d->bad_range) { /* the server is broken, not our bytes: keep them for the next mirror */
        snprintf(d->why, sizeof d->why, "the server answered another range than bytes=%llu-",
                 (unsigned long long)d->from);
        return next_mirror(d);
    }
    if (cc == CURLE_OK) {
        if (d->have < d->offer.size) {
            snprintf(d->why, sizeof d->why, "size mismatch (%llu bytes, manifest says %llu)",
                     (unsigned long long)d->have, (unsigned long long)d->offer.size);
            return mirror_lied(d);
        }
        if (ug_client_part_verify_(d))
            return ug_client_part_install_(d);
        snprintf(d->why, sizeof d->why, "hash mismatch");
        if (d->from > 0 && !d->fresh_tried) {
            /* resumed over bytes of an earlier attempt: this mirror gets one try on its own */
            d->mismatch_seen = true;
            if (ug_client_part_discard_(d) != 0)
                return UG_CLIENT_E_IO;
            return begin_attempt(d);
        }
        return mirror_lied(d);
    }
    if (cc == CURLE_OPERATION_TIMEDOUT && now + 50 >= d->share_end_ms)
        snprintf(d->why, sizeof d->why, "no whole package within its share of the %llu s deadline",
                 (unsigned long long)d->deadline_s);
    else
        snprintf(d->why, sizeof d->why, "%s", d->errbuf[0] ? d->errbuf : curl_easy_strerror(cc));
    if (d->got > 0 && d->resumes < RESUMES_MAX && now < d->share_end_ms) {
        d->resumes++; /* it broke off after progress: pick up where it stopped */
        return begin_attempt(d);
    }
    return next_mirror(d);
}

/* Reaps a finished transfer and starts the next, or ends the download;
 * false when nothing had finished. */
static bool reap(ug_client_transfer *d)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(d->multi, &left))) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != d->easy)
            continue;
        CURLcode cc = m->data.result;
        curl_multi_remove_handle(d->multi, d->easy);
        curl_easy_cleanup(d->easy);
        d->easy = NULL;
        ug_client_err e = after_transfer(d, cc);
        if (!d->easy)
            e = ug_client_phase_end_(d, e); /* a delta done or failed: patch, or fetch the package */
        if (d->result == UG_CLIENT_E_AGAIN && (e != UG_CLIENT_OK || !d->easy))
            finish_with(d, e);
        return true; /* the handle list changed: ask curl again */
    }
    return false;
}

/* ---- the public API ------------------------------------------------- */

static const char *take_config(ug_client_transfer *d, const ug_client_download_config *in)
{
    ug_client_download_config_init(&d->cfg);
    if (!in || in->size < offsetof(ug_client_download_config, deadline_s))
        return "download config: size (use ug_client_download_config_init)";
    memcpy(&d->cfg, in, in->size < sizeof d->cfg ? in->size : sizeof d->cfg);
    const ug_client_download_config *c = &d->cfg;
    if (!c->dest || !c->dest[0] || strlen(c->dest) > PATH_MAX - 64)
        return "download config: dest is empty or too long a path";
    if (c->min_rate == 0 || c->low_speed_limit < 0 || c->low_speed_time < 0 || c->connect_timeout_s < 0)
        return "download config: min_rate must be > 0, the limits >= 0";
    snprintf(d->ua, sizeof d->ua, "%s", c->user_agent ? c->user_agent : "libupgate/" UG_CLIENT_VERSION);
    d->cfg.user_agent = d->ua;
    return NULL;
}

static const char *take_offer(ug_client_transfer *d, const ug_client_offer *o)
{
    if (!o || o->nurls < 1 || o->nurls > UG_URLS_MAX)
        return "offer: no URLs";
    d->offer = *o;
    for (unsigned i = 0; i < o->nurls; i++) {
        size_t n = strnlen(o->urls[i], sizeof o->urls[i]);
        if (n == sizeof o->urls[i] || !ug_url_valid(o->urls[i], n))
            return "offer: a URL is not an http(s) URL";
    }
    return NULL;
}

ug_client_err ug_client_download_start(ug_client *c, const ug_client_offer *offer,
                                       const ug_client_download_config *cfg, ug_client_transfer **out)
{
    if (!c || !out)
        return UG_CLIENT_E_INVALID;
    *out = NULL;
    ug_client_transfer *d = calloc(1, sizeof *d);
    if (!d)
        return ug_client_fail_(c, UG_CLIENT_E_NOMEM, "out of memory");
    d->c = c;
    d->fd = -1;
    d->result = UG_CLIENT_E_AGAIN;
    const char *why = take_config(d, cfg);
    if (!why)
        why = take_offer(d, offer);
    if (why) {
        free(d);
        return ug_client_fail_(c, UG_CLIENT_E_INVALID, "%s", why);
    }
    if (offer->exp <= ug_client_now_(c)) {
        free(d);
        return ug_client_fail_(c, UG_CLIENT_E_EXPIRED, "the offer of %s expired", offer->to);
    }
    d->multi = curl_multi_init();
    if (!d->multi) {
        free(d);
        return ug_client_fail_(c, UG_CLIENT_E_CURL, "libcurl failed to start");
    }
    ug_client_patch_setup_(d);
    ug_client_err e = ug_client_dl_begin_(d);
    if (!d->easy)
        e = ug_client_phase_end_(d, e);
    if (e == UG_CLIENT_OK && !d->easy)
        finish_with(d, UG_CLIENT_OK);
    if (e != UG_CLIENT_OK) {
        finish_with(d, e);
        ug_client_fail_(c, e, "%s", d->msg);
        ug_client_download_free(d);
        return e;
    }
    *out = d;
    return UG_CLIENT_OK;
}

CURLM *ug_client_download_multi(ug_client_transfer *d)
{
    return d ? d->multi : NULL;
}

ug_client_err ug_client_download_fdset(ug_client_transfer *d, fd_set *rd, fd_set *wr, fd_set *ex, int *maxfd)
{
    if (!d || !rd || !wr || !ex || !maxfd)
        return UG_CLIENT_E_INVALID;
    return curl_multi_fdset(d->multi, rd, wr, ex, maxfd) == CURLM_OK ? UG_CLIENT_OK : UG_CLIENT_E_CURL;
}

ug_client_err ug_client_download_timeout(ug_client_transfer *d, long *ms)
{
    if (!d || !ms)
        return UG_CLIENT_E_INVALID;
    *ms = -1;
    if (d->result != UG_CLIENT_E_AGAIN)
        return UG_CLIENT_OK;
    return curl_multi_timeout(d->multi, ms) == CURLM_OK ? UG_CLIENT_OK : UG_CLIENT_E_CURL;
}

ug_client_err ug_client_download_perform(ug_client_transfer *d, int *running)
{
    if (!d || !running)
        return UG_CLIENT_E_INVALID;
    /* bounded: each round either reaps a transfer (and starts at most one) or stops */
    for (unsigned round = 0; round < 16 && d->result == UG_CLIENT_E_AGAIN; round++) {
        int still = 0;
        if (curl_multi_perform(d->multi, &still) != CURLM_OK) {
            ug_client_dl_say_(d, "libcurl failed");
            finish_with(d, UG_CLIENT_E_CURL);
            break;
        }
        if (!reap(d))
            break;
    }
    *running = d->result == UG_CLIENT_E_AGAIN;
    return UG_CLIENT_OK;
}

unsigned ug_client_download_via(const ug_client_transfer *d)
{
    return d ? d->via : UG_CLIENT_VIA_FULL;
}

uint64_t ug_client_download_bytes(const ug_client_transfer *d)
{
    return d ? d->bytes : 0;
}

ug_client_err ug_client_download_result(const ug_client_transfer *d)
{
    return d ? d->result : UG_CLIENT_E_INVALID;
}

const char *ug_client_download_errmsg(const ug_client_transfer *d)
{
    return d ? d->msg : "no download";
}

void ug_client_download_free(ug_client_transfer *d)
{
    if (!d)
        return;
    if (d->easy) {
        curl_multi_remove_handle(d->multi, d->easy);
        curl_easy_cleanup(d->easy);
    }
    if (d->multi)
        curl_multi_cleanup(d->multi);
    ug_client_part_close_(d, d->have == 0 && d->result != UG_CLIENT_OK);
    sodium_memzero(d, sizeof *d);
    free(d);
}

ug_client_err ug_client_download(ug_client *c, const ug_client_offer *offer, const ug_client_download_config *cfg)
{
    ug_client_transfer *d;
    ug_client_err e = ug_client_download_start(c, offer, cfg, &d);
    if (e != UG_CLIENT_OK)
        return e;
    int running = 1;
    while (running) {
        long ms = -1;
        if (ug_client_download_timeout(d, &ms) != UG_CLIENT_OK || ms < 0 || ms > POLL_MAX_MS)
            ms = POLL_MAX_MS;
        if (ms > 0 && curl_multi_poll(d->multi, NULL, 0, (int)ms, NULL) != CURLM_OK)
            break;
        if (ug_client_download_perform(d, &running) != UG_CLIENT_OK)
            break;
    }
    e = ug_client_download_result(d);
    if (e == UG_CLIENT_E_AGAIN) {
        ug_client_dl_say_(d, "libcurl failed while waiting");
        e = UG_CLIENT_E_CURL;
    }
    if (e != UG_CLIENT_OK)
        ug_client_fail_(c, e, "%s", d->msg);
    ug_client_download_free(d);
    return e;
}
