/* libupgate internals: one download's state, shared by download.c (the transfers) and part.c (the partial file). */
#ifndef UG_CLIENT_DOWNLOAD_H
#define UG_CLIENT_DOWNLOAD_H

#include <limits.h>

#include <sodium.h>

#include "internal.h"

struct ug_client_transfer {
    ug_client *c;
    ug_client_download_config cfg;
    ug_client_offer offer;
    char ua[128];
    uint64_t deadline_s, deadline_ms; /* whole download, monotonic ms */
    CURLM *multi;
    CURL *easy; /* the transfer running, or NULL */

    /* DEST.part: every byte in it is hashed into st */
    char part[PATH_MAX], id[PATH_MAX];
    int fd;          /* O_APPEND, flock'ed; -1 when closed */
    bool part_owned; /* we opened (and locked) it, so we may remove it */
    crypto_generichash_state st;
    uint64_t have;

    /* the mirror being tried */
    unsigned mirror;   /* index into offer.urls (try order) */
    bool new_mirror;   /* the next attempt starts its share of the time */
    uint64_t share_end_ms;
    unsigned resumes;  /* resumed attempts on it */
    bool fresh_tried;  /* it was asked for the whole package once */

    /* the transfer running */
    uint64_t from, got; /* where it started; bytes it brought */
    bool status_checked, too_big, bad_range, range_seen;
    bool too_slow;      /* its rate since the first byte cannot finish in its share */
    uint64_t first_ms;  /* when its first body byte came; 0 before */
    uint64_t range_start, range_total;
    int write_errno;
    char errbuf[CURL_ERROR_SIZE];

    char why[CURL_ERROR_SIZE + 128]; /* why the last mirror or attempt failed */
    bool mismatch_seen;              /* some mirror delivered wrong bytes */
    ug_client_err result;            /* UG_CLIENT_E_AGAIN while running */
    char msg[UG_CLIENT_MSG_MAX];

    /* a delta first (patch.c): d->offer is then the delta's, cfg.dest DEST.delta */
    bool delta_phase;
    ug_client_offer full;            /* the package's offer */
    char final_dest[PATH_MAX];       /* DEST */
    char delta_dest[PATH_MAX];       /* DEST.delta */
    char installed[PATH_MAX];        /* cfg.installed, copied */
    unsigned via;                    /* ug_client_via */
    uint64_t bytes;                  /* fetched from mirrors, both phases */
};

uint64_t ug_client_mono_ms_(void);
/* Starts d->offer into cfg.dest: the deadline, the partial file (a complete
 * one is verified and installed at once), the first attempt. OK with
 * d->easy NULL: it is already in place. */
ug_client_err ug_client_dl_begin_(ug_client_transfer *d);

/* patch.c: when the handle holds a delta for d->offer and cfg.installed is
 * set, makes d fetch the delta first (d->offer the delta's, cfg.dest
 * DEST.delta); else leaves d as it is. Sets d->via. */
void ug_client_patch_setup_(ug_client_transfer *d);
/* A phase of d ended with e (d->easy NULL): after the delta's download, the
 * patch, or the fall back to the full package (started with
 * ug_client_dl_begin_); after the package's, e itself. */
ug_client_err ug_client_phase_end_(ug_client_transfer *d, ug_client_err e);
/* Sets d->msg, one line. */
void ug_client_dl_say_(ug_client_transfer *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value of a Content-Range header, "bytes N-M/T" (T may be a star): where a
 * 206 starts and the whole size (0 for a star). 0, or -1 if it is not one. */
int ug_client_content_range_(const char *v, size_t n, uint64_t *start, uint64_t *total) UG_WUR;

/* Opens (creating, 0600) and locks DEST.part for d->offer: resumes it
 * (hashing what it holds) when DEST.part.id names this package's size and
 * hash and it is no longer than the package, else empties it and writes the
 * id. Sets d->msg on failure. */
ug_client_err ug_client_part_open_(ug_client_transfer *d);
/* Appends to it and hashes; -1 with d->write_errno set. */
int ug_client_part_append_(ug_client_transfer *d, const void *data, size_t n);
/* Empties it (its bytes proved wrong); -1 with d->write_errno and d->msg. */
int ug_client_part_discard_(ug_client_transfer *d);
/* Does what it holds match the package's size and BLAKE2b-256? */
bool ug_client_part_verify_(ug_client_transfer *d);
/* Syncs it, renames it to dest, removes the id, syncs the folder. */
ug_client_err ug_client_part_install_(ug_client_transfer *d);
/* Closes it; removes it and its id when remove_if_empty and it is empty. */
void ug_client_part_close_(ug_client_transfer *d, bool remove_if_empty);

#endif
