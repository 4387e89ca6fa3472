/* libupgate: delivery by delta (protocol-v2.md 5.7, issue 26): the delta the HINT names is downloaded
 * like a package, checked, applied to the installed file (delta/, zstd patch-from) and kept only when the
 * result is the package; any failure falls back to the full package in the same download. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "download.h"
#include "ug_delta.h"

const char *ug_client_via_name(unsigned via)
{
    return ug2_via_name(via);
}

unsigned ug_client_last_via(const ug_client *c, uint64_t *bytes)
{
    if (bytes)
        *bytes = c ? c->via_bytes : 0;
    return c ? c->via : UG_CLIENT_VIA_FULL;
}

void ug_client_offer_delta_(ug_client *c, ug_client_event *ev, const ug2_manifest *m, const ug2_hint *h)
{
    c->has_delta = false;
    c->via = UG_CLIENT_VIA_FULL;
    c->via_bytes = 0;
    if (!h->has_delta || h->delta >= m->ndeltas) /* the verifier refused that already */
        return;
    const ug2_delta *dl = &m->deltas[h->delta];
    ug_client_offer o; /* the delta's URLs in try order: from index mirror modulo their number */
    ug_client_offer_of_(&o, &dl->from, dl->urls, dl->nurls, h->mirror % dl->nurls, dl->size, dl->hash, 0, 0);
    ug_client_delta *out = &ev->delta;
    memcpy(out->from, o.to, sizeof out->from);
    out->size = o.size;
    memcpy(out->hash, o.hash, sizeof out->hash);
    out->nurls = o.nurls;
    memcpy(out->urls, o.urls, sizeof out->urls);
    ev->has_delta = true;
    c->delta = *out;
    memcpy(c->delta_for, m->hash, UG_HASH_LEN);
    c->has_delta = true;
}

void ug_client_patch_setup_(ug_client_transfer *d)
{
    const ug_client *c = d->c;
    const char *inst = d->cfg.installed;
    d->via = UG_CLIENT_VIA_FULL;
    snprintf(d->final_dest, sizeof d->final_dest, "%s", d->cfg.dest);
    if (!inst || !inst[0] || strlen(inst) >= sizeof d->installed || !c->has_delta ||
        sodium_memcmp(c->delta_for, d->offer.hash, UG_HASH_LEN) != 0 ||
        (size_t)snprintf(d->delta_dest, sizeof d->delta_dest, "%s.delta", d->final_dest) >= sizeof d->delta_dest)
        return;
    memcpy(d->installed, inst, strlen(inst) + 1);
    d->full = d->offer;
    d->offer.size = c->delta.size;
    memcpy(d->offer.hash, c->delta.hash, UG_HASH_LEN);
    d->offer.nurls = c->delta.nurls;
    memcpy(d->offer.urls, c->delta.urls, sizeof d->offer.urls);
    d->cfg.dest = d->delta_dest;
    d->delta_phase = true;
    d->via = UG_CLIENT_VIA_DELTA;
}

/* One line into why (truncated, never an error); -1. */
__attribute__((format(printf, 3, 4))) static int say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ug_client_vsay_(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* The patch of the installed file by the downloaded delta into DEST.patch,
 * renamed to DEST only when it is the package. 0, or -1 with why. */
static int patch(ug_client_transfer *d, int ofd, int dfd, char *why, size_t cap)
{
    char tmp[PATH_MAX + 8];
    ug_delta_err err;
    ug_delta_result res;
    snprintf(tmp, sizeof tmp, "%s.patch", d->final_dest);
    /* the delta's own size and hash before a byte is decoded (the caller's duty, ug_delta.h) */
    ug_delta_rc rc = ug_delta_check(dfd, d->offer.size, d->offer.hash, &err);
    if (rc != UG_DELTA_OK)
        return say(why, cap, "%s: %s", d->delta_dest, err.msg);
    int pfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (pfd < 0)
        return say(why, cap, "%s: %s", tmp, strerror(errno));
    rc = ug_delta_apply(ofd, dfd, pfd, d->full.size, &res, &err);
    int ok = rc == UG_DELTA_OK && res.size == d->full.size && sodium_memcmp(res.hash, d->full.hash, UG_HASH_LEN) == 0;
    if (rc != UG_DELTA_OK)
        say(why, cap, "patching %s: %s", d->installed, err.msg);
    else if (!ok)
        say(why, cap, "%s patched is not the package (size or hash): not the version the delta is from",
                 d->installed);
    else if (fsync(pfd) != 0 || rename(tmp, d->final_dest) != 0)
        ok = say(why, cap, "%s: %s", d->final_dest, strerror(errno)) + 1;
    close(pfd);
    if (!ok) {
        (void)unlink(tmp);
        return -1;
    }
    ug_client_sync_dir_(d->final_dest);
    return 0;
}

static int apply(ug_client_transfer *d, char *why, size_t cap)
{
    int ofd = open(d->installed, O_RDONLY | O_CLOEXEC);
    if (ofd < 0)
        return say(why, cap, "installed file %s: %s", d->installed, strerror(errno));
    int dfd = open(d->delta_dest, O_RDONLY | O_CLOEXEC);
    int rc = dfd < 0 ? say(why, cap, "%s: %s", d->delta_dest, strerror(errno)) : patch(d, ofd, dfd, why, cap);
    if (dfd >= 0)
        close(dfd);
    close(ofd);
    return rc;
}

ug_client_err ug_client_phase_end_(ug_client_transfer *d, ug_client_err e)
{
    if (!d->delta_phase)
        return e;
    d->delta_phase = false;
    char why[UG_CLIENT_MSG_MAX + 64];
    const char *url = d->offer.urls[d->mirror < d->offer.nurls ? d->mirror : d->offer.nurls - 1];
    size_t k = (size_t)snprintf(why, sizeof why, "delta failed: ");
    if (e == UG_CLIENT_OK) {
        int rc = apply(d, why + k, sizeof why - k);
        (void)unlink(d->delta_dest);
        if (rc == 0) {
            d->msg[0] = 0;
            return UG_CLIENT_OK;
        }
    } else {
        say(why + k, sizeof why - k, "%s", d->msg);
        ug_client_part_close_(d, false);
        (void)unlink(d->part); /* the package comes whole now: no resume of the delta */
        (void)unlink(d->id);
    }
    if (d->cfg.fallback)
        d->cfg.fallback(d->cfg.ctx, url, why);
    d->via = UG_CLIENT_VIA_DELTA_FALLBACK;
    d->offer = d->full;
    d->cfg.dest = d->final_dest;
    d->msg[0] = 0;
    return ug_client_dl_begin_(d);
}
