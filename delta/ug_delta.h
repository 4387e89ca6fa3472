/* Delta packages: a plain zstd frame made with the old file as its prefix
 * (zstd's patch-from), made by the publisher, applied by the peer. A leaf:
 * libc, libzstd and libsodium only; no globals, no printing (docs/deltas.md). */
#ifndef UG_DELTA_H
#define UG_DELTA_H

#include <stddef.h>
#include <stdint.h>

#define UG_DELTA_WUR __attribute__((warn_unused_result))

/* Largest old or new file either side accepts: 1 GiB, so the window (the
 * smallest power of two covering the larger file) is at most 2^30, the
 * window limit libzstd keeps even on 32-bit machines. */
#define UG_DELTA_FILE_MAX (UINT64_C(1) << 30)
#define UG_DELTA_WLOG_MIN 10u /* zstd's smallest window */
#define UG_DELTA_WLOG_MAX 30u
#define UG_DELTA_LEVEL_DEFAULT 19
/* A delta is made only if it is smaller than this share of the package. */
#define UG_DELTA_PERCENT_DEFAULT 60u
#define UG_DELTA_HASH_LEN 32u /* BLAKE2b-256 */
#define UG_DELTA_MSG_MAX 200u
/* Beyond the old file and the window, what patching holds: libzstd's
 * context and its block buffers, and ours (measured: about 0.8 MiB). */
#define UG_DELTA_MEM_SLACK (UINT64_C(1) << 20)

typedef enum {
    UG_DELTA_OK = 0,
    UG_DELTA_E_ARG,         /* a NULL pointer, a level or percent out of range */
    UG_DELTA_E_IO,          /* a read, write or stat failed, or a file changed while read */
    UG_DELTA_E_NOMEM,       /* an allocation failed */
    UG_DELTA_E_LIMIT,       /* an old or new file over UG_DELTA_FILE_MAX */
    UG_DELTA_E_NOT_SMALLER, /* make: the delta would not be smaller than the share; nothing written */
    UG_DELTA_E_MISMATCH,    /* check: the delta's size or BLAKE2b-256 is not the manifest's */
    UG_DELTA_E_FORMAT,      /* apply: not exactly one zstd frame (magic, skippable, truncated, trailing bytes) */
    UG_DELTA_E_WINDOW,      /* apply: the frame asks for a window over 2^W (ug_delta_wlog) */
    UG_DELTA_E_CORRUPT,     /* apply: libzstd found the frame corrupt */
    UG_DELTA_E_OVERSIZE,    /* apply: the result would exceed the caller's expected size */
    UG_DELTA_E_ZSTD,        /* another libzstd failure */
    UG_DELTA_E_COUNT_       /* number of codes, not a code */
} ug_delta_rc;

/* One line, no newline, saying what failed and naming the role of the file
 * (old file, new file, delta, output): the caller adds the path. */
typedef struct {
    char msg[UG_DELTA_MSG_MAX];
} ug_delta_err;

typedef struct {
    int level;            /* zstd level, 1..ZSTD_maxCLevel(); 0: UG_DELTA_LEVEL_DEFAULT */
    unsigned max_percent; /* 1..100; 0: UG_DELTA_PERCENT_DEFAULT */
} ug_delta_opts;

/* What the manifest's deltas entry needs. */
typedef struct {
    uint64_t size;
    uint8_t hash[UG_DELTA_HASH_LEN];
} ug_delta_info;

/* What patching produced; the caller compares size and hash with the
 * manifest's full package before keeping anything. */
typedef struct {
    uint64_t size;
    uint8_t hash[UG_DELTA_HASH_LEN];
    uint64_t mem; /* bytes held at the peak: old file + libzstd's context + our buffers */
} ug_delta_result;

/* The window log both sides use: the smallest W >= UG_DELTA_WLOG_MIN with
 * 2^W >= max(old_size, new_size); 0 if either is over UG_DELTA_FILE_MAX. */
unsigned ug_delta_wlog(uint64_t old_size, uint64_t new_size);

/* The most ug_delta_apply holds while patching an old file of old_size
 * into at most out_max bytes: old_size + 2^W + UG_DELTA_MEM_SLACK. A
 * hostile frame cannot raise it: it is refused first. */
uint64_t ug_delta_mem_bound(uint64_t old_size, uint64_t out_max);

/* "not-smaller", ... : a stable name for logs and tests. */
const char *ug_delta_rc_name(ug_delta_rc rc);

/* Makes the delta from old to new in memory: *out (malloc'ed, the caller
 * frees it) holds one zstd frame of *out_len bytes, smaller than
 * max_percent of new_len, or the call returns UG_DELTA_E_NOT_SMALLER and
 * *out is NULL. old and new must not overlap (libzstd drops a prefix the
 * input overlaps): UG_DELTA_E_ARG. Level 19 on two 1 GiB files needs about 3.5 GiB (both
 * files, the output cap and libzstd's tables): a publisher's job. */
ug_delta_rc ug_delta_make_buf(const void *old, size_t old_len, const void *new_, size_t new_len,
                              const ug_delta_opts *opts, uint8_t **out, size_t *out_len,
                              ug_delta_err *err) UG_DELTA_WUR;

/* The same from two regular files (read whole, from offset 0) to out_fd,
 * written only once the delta is known to be worth it; info gets its size
 * and hash. opts may be NULL (the defaults). */
ug_delta_rc ug_delta_make(int old_fd, int new_fd, int out_fd, const ug_delta_opts *opts, ug_delta_info *info,
                          ug_delta_err *err) UG_DELTA_WUR;

/* The caller's duty before ug_delta_apply: is the regular file delta_fd
 * exactly size bytes whose BLAKE2b-256 is hash (the manifest's deltas
 * entry)? Reads it with pread (its offset does not move). */
ug_delta_rc ug_delta_check(int delta_fd, uint64_t size, const uint8_t hash[UG_DELTA_HASH_LEN],
                           ug_delta_err *err) UG_DELTA_WUR;

/* Patches old (old_len bytes, unchanged while this runs) with the delta
 * read from delta_fd's current offset to its end (a pipe will do), writing
 * the result to out_fd and hashing it as it goes. Refuses, before any
 * output, a delta that is not a zstd frame, one claiming more than out_max
 * bytes or a window over 2^ug_delta_wlog(old_len, out_max); stops as soon
 * as the output would pass out_max; refuses bytes after the frame. On any
 * failure a regular out_fd is cut back to the length it had (nothing of
 * the result is kept); another kind of fd keeps what was written. */
ug_delta_rc ug_delta_apply_buf(const void *old, size_t old_len, int delta_fd, int out_fd, uint64_t out_max,
                               ug_delta_result *res, ug_delta_err *err) UG_DELTA_WUR;

/* The same with the old file read whole from the regular file old_fd
 * (at most UG_DELTA_FILE_MAX bytes; read into memory, not mapped, so an
 * installed file replaced meanwhile cannot fault the process). */
ug_delta_rc ug_delta_apply(int old_fd, int delta_fd, int out_fd, uint64_t out_max, ug_delta_result *res,
                           ug_delta_err *err) UG_DELTA_WUR;

#endif
