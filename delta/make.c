/* Making a delta: zstd's patch-from (the old file as the frame's prefix, long-distance matching, a window covering the larger file). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "delta_impl.h"

/* The largest delta worth shipping: strictly under pct% of new_len. */
static size_t cap_for(size_t new_len, unsigned pct)
{
    uint64_t share = (uint64_t)new_len * pct; /* new_len <= 2^30: no overflow */
    return share == 0 ? 0 : (size_t)((share + 99) / 100 - 1);
}

static ug_delta_rc zstd_fail(ug_delta_err *err, size_t r, const char *what)
{
    ZSTD_ErrorCode c = ZSTD_getErrorCode(r);
    ug_delta_rc rc = c == ZSTD_error_memory_allocation ? UG_DELTA_E_NOMEM : UG_DELTA_E_ZSTD;
    return ug_delta_say_(err, rc, "%s: %s", what, ZSTD_getErrorName(r));
}

/* The CLI's --patch-from settings, but no content checksum: the peer
 * checks the result's BLAKE2b-256 against the signed manifest. */
static size_t setup(ZSTD_CCtx *cc, int level, unsigned wlog, const void *old, size_t old_len)
{
    size_t r;
    if (ZSTD_isError(r = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(r = ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, (int)wlog)) ||
        ZSTD_isError(r = ZSTD_CCtx_setParameter(cc, ZSTD_c_enableLongDistanceMatching, 1)) ||
        ZSTD_isError(r = ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1)) ||
        ZSTD_isError(r = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0)))
        return r;
    /* raw content: an old file that starts with zstd's dictionary magic
     * is still just bytes */
    return ZSTD_CCtx_refPrefix(cc, old_len ? old : NULL, old_len);
}

static ug_delta_rc check_args(size_t old_len, size_t new_len, const ug_delta_opts *o, int *level,
                              unsigned *pct, ug_delta_err *err)
{
    *level = o && o->level ? o->level : UG_DELTA_LEVEL_DEFAULT;
    *pct = o && o->max_percent ? o->max_percent : UG_DELTA_PERCENT_DEFAULT;
    if (*level < 1 || *level > ZSTD_maxCLevel())
        return ug_delta_say_(err, UG_DELTA_E_ARG, "level %d: not within 1..%d", *level, ZSTD_maxCLevel());
    if (*pct > 100)
        return ug_delta_say_(err, UG_DELTA_E_ARG, "percent %u: not within 1..100", *pct);
    if (old_len > UG_DELTA_FILE_MAX || new_len > UG_DELTA_FILE_MAX)
        return ug_delta_say_(err, UG_DELTA_E_LIMIT, "%s file: %zu bytes, over the %llu-byte limit",
                             old_len > UG_DELTA_FILE_MAX ? "old" : "new",
                             old_len > UG_DELTA_FILE_MAX ? old_len : new_len,
                             (unsigned long long)UG_DELTA_FILE_MAX);
    return UG_DELTA_OK;
}

static bool overlap(const void *a, size_t an, const void *b, size_t bn)
{
    uintptr_t pa = (uintptr_t)a, pb = (uintptr_t)b;
    return pa < pb + bn && pb < pa + an;
}

ug_delta_rc ug_delta_make_buf(const void *old, size_t old_len, const void *new_, size_t new_len,
                              const ug_delta_opts *opts, uint8_t **out, size_t *out_len, ug_delta_err *err)
{
    int level;
    unsigned pct;
    if (out == NULL || out_len == NULL || (old == NULL && old_len) || (new_ == NULL && new_len))
        return ug_delta_say_(err, UG_DELTA_E_ARG, "make: a NULL buffer");
    *out = NULL;
    *out_len = 0;
    ug_delta_rc rc = check_args(old_len, new_len, opts, &level, &pct, err);
    if (rc != UG_DELTA_OK)
        return rc;
    if (old_len && new_len && overlap(old, old_len, new_, new_len))
        return ug_delta_say_(err, UG_DELTA_E_ARG, "make: the old and new buffers overlap");
    /* the output buffer is the share itself: zstd stops when it is full */
    size_t cap = cap_for(new_len, pct);
    if (cap == 0)
        return ug_delta_say_(err, UG_DELTA_E_NOT_SMALLER, "new file: %zu bytes, no delta is under %u%% of it",
                             new_len, pct);
    uint8_t *buf = malloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (buf == NULL || cc == NULL) {
        free(buf);
        ZSTD_freeCCtx(cc);
        return ug_delta_say_(err, UG_DELTA_E_NOMEM, "make: no memory");
    }
    size_t r = setup(cc, level, ug_delta_wlog(old_len, new_len), old, old_len);
    if (!ZSTD_isError(r))
        r = ZSTD_compress2(cc, buf, cap, new_, new_len);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r)) {
        free(buf);
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return ug_delta_say_(err, UG_DELTA_E_NOT_SMALLER,
                                 "delta: not under %u%% of the %zu-byte package (%zu bytes); none made", pct,
                                 new_len, cap + 1);
        return zstd_fail(err, r, "make");
    }
    *out = buf;
    *out_len = r;
    return UG_DELTA_OK;
}

ug_delta_rc ug_delta_make(int old_fd, int new_fd, int out_fd, const ug_delta_opts *opts, ug_delta_info *info,
                          ug_delta_err *err)
{
    uint8_t *old = NULL, *nw = NULL, *d = NULL;
    size_t old_len, new_len, d_len = 0;
    if (info == NULL)
        return ug_delta_say_(err, UG_DELTA_E_ARG, "make: no info");
    ug_delta_rc rc = ug_delta_read_whole_(old_fd, "old file", &old, &old_len, err);
    if (rc == UG_DELTA_OK)
        rc = ug_delta_read_whole_(new_fd, "new file", &nw, &new_len, err);
    if (rc == UG_DELTA_OK)
        rc = ug_delta_make_buf(old, old_len, nw, new_len, opts, &d, &d_len, err);
    if (rc == UG_DELTA_OK && ug_delta_write_(out_fd, d, d_len) != 0)
        rc = ug_delta_say_(err, UG_DELTA_E_IO, "delta: %s", strerror(errno));
    if (rc == UG_DELTA_OK) {
        info->size = d_len;
        crypto_generichash(info->hash, sizeof info->hash, d, d_len, NULL, 0);
    }
    free(old);
    free(nw);
    free(d);
    return rc;
}
