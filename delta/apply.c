/* Applying a delta: the zstd frame decoded over the old file as prefix, streamed from the delta's fd to the output fd, hashed and capped as it goes. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "delta_impl.h"

#define MAGIC_LEN 4u
#define HEAD_MAX 18u /* zstd's largest frame header (ZSTD_FRAMEHEADERSIZE_MAX) */

/* One patch: where its output goes and what it has produced so far. */
typedef struct {
    ZSTD_DCtx *dc;
    int delta_fd, out_fd;
    uint64_t out_max;
    unsigned wlog;
    uint8_t *ibuf, *obuf;
    size_t icap, ocap;
    crypto_generichash_state st;
    ug_delta_result *res;
    ug_delta_err *err;
} patch;

static ug_delta_rc emit(patch *p, size_t n)
{
    if (n > p->out_max - p->res->size)
        return ug_delta_say_(p->err, UG_DELTA_E_OVERSIZE, "delta: its result passes the expected %llu bytes",
                             (unsigned long long)p->out_max);
    crypto_generichash_update(&p->st, p->obuf, n);
    if (ug_delta_write_(p->out_fd, p->obuf, n) != 0)
        return ug_delta_say_(p->err, UG_DELTA_E_IO, "output: %s", strerror(errno));
    p->res->size += n;
    return UG_DELTA_OK;
}

static ug_delta_rc zstd_rc(const patch *p, size_t r)
{
    switch (ZSTD_getErrorCode(r)) {
    case ZSTD_error_frameParameter_windowTooLarge:
        return ug_delta_say_(p->err, UG_DELTA_E_WINDOW, "delta: its frame asks for a window over 2^%u bytes",
                             p->wlog);
    case ZSTD_error_memory_allocation:
        return ug_delta_say_(p->err, UG_DELTA_E_NOMEM, "delta: no memory to decode it");
    case ZSTD_error_prefix_unknown:
    case ZSTD_error_version_unsupported:
    case ZSTD_error_frameParameter_unsupported:
        return ug_delta_say_(p->err, UG_DELTA_E_FORMAT, "delta: not a zstd frame this decoder takes (%s)",
                             ZSTD_getErrorName(r));
    default:
        return ug_delta_say_(p->err, UG_DELTA_E_CORRUPT, "delta: corrupt (%s)", ZSTD_getErrorName(r));
    }
}

/* Decodes what `in` holds, and flushes everything libzstd has ready; sets
 * *done when the frame has ended. */
static ug_delta_rc pump(patch *p, ZSTD_inBuffer *in, bool *done)
{
    for (;;) {
        ZSTD_outBuffer out = {p->obuf, p->ocap, 0};
        size_t r = ZSTD_decompressStream(p->dc, &out, in);
        if (ZSTD_isError(r))
            return zstd_rc(p, r);
        ug_delta_rc rc = emit(p, out.pos);
        if (rc != UG_DELTA_OK)
            return rc;
        if (r == 0) {
            *done = true;
            return UG_DELTA_OK;
        }
        if (in->pos == in->size && out.pos < out.size)
            return UG_DELTA_OK; /* libzstd wants more input */
    }
}

/* The first bytes, before libzstd sees any: one zstd frame that does not
 * claim more than the caller expects. */
static ug_delta_rc check_head(patch *p, size_t got)
{
    static const uint8_t magic[MAGIC_LEN] = {0x28, 0xb5, 0x2f, 0xfd}; /* ZSTD_MAGICNUMBER, little-endian */
    if (got == 0)
        return ug_delta_say_(p->err, UG_DELTA_E_FORMAT, "delta: empty");
    if (got < MAGIC_LEN || memcmp(p->ibuf, magic, MAGIC_LEN) != 0)
        return ug_delta_say_(p->err, UG_DELTA_E_FORMAT, "delta: not a zstd frame (bad magic)");
    unsigned long long fcs = ZSTD_getFrameContentSize(p->ibuf, got);
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR && fcs > p->out_max)
        return ug_delta_say_(p->err, UG_DELTA_E_OVERSIZE, "delta: claims %llu bytes, over the expected %llu", fcs,
                             (unsigned long long)p->out_max);
    return UG_DELTA_OK;
}

/* Bytes after the frame: in what `in` still holds, or still to be read. */
static ug_delta_rc check_tail(patch *p, const ZSTD_inBuffer *in)
{
    uint8_t one;
    ssize_t r = in->pos < in->size ? 1 : ug_delta_read_full_(p->delta_fd, &one, 1, -1);
    if (r < 0)
        return ug_delta_say_(p->err, UG_DELTA_E_IO, "delta: %s", strerror(errno));
    if (r > 0)
        return ug_delta_say_(p->err, UG_DELTA_E_FORMAT, "delta: bytes after its frame");
    return UG_DELTA_OK;
}

static ug_delta_rc run(patch *p)
{
    ssize_t got = ug_delta_read_full_(p->delta_fd, p->ibuf, HEAD_MAX, -1);
    if (got < 0)
        return ug_delta_say_(p->err, UG_DELTA_E_IO, "delta: %s", strerror(errno));
    ug_delta_rc rc = check_head(p, (size_t)got);
    ZSTD_inBuffer in = {p->ibuf, (size_t)got, 0};
    bool done = false;
    while (rc == UG_DELTA_OK) {
        rc = pump(p, &in, &done);
        if (rc != UG_DELTA_OK || done)
            break;
        if (in.size == 0) /* end of file, and what libzstd held is flushed */
            return ug_delta_say_(p->err, UG_DELTA_E_FORMAT, "delta: truncated (its frame does not end)");
        got = ug_delta_read_full_(p->delta_fd, p->ibuf, p->icap, -1);
        if (got < 0)
            return ug_delta_say_(p->err, UG_DELTA_E_IO, "delta: %s", strerror(errno));
        in = (ZSTD_inBuffer){p->ibuf, (size_t)got, 0};
    }
    return rc == UG_DELTA_OK ? check_tail(p, &in) : rc;
}

static ug_delta_rc setup(patch *p, const void *old, size_t old_len)
{
    p->icap = ZSTD_DStreamInSize();
    p->ocap = ZSTD_DStreamOutSize();
    p->ibuf = malloc(p->icap);
    p->obuf = malloc(p->ocap);
    p->dc = ZSTD_createDCtx();
    if (p->ibuf == NULL || p->obuf == NULL || p->dc == NULL)
        return ug_delta_say_(p->err, UG_DELTA_E_NOMEM, "delta: no memory to decode it");
    size_t r = ZSTD_DCtx_setParameter(p->dc, ZSTD_d_windowLogMax, (int)p->wlog);
    if (!ZSTD_isError(r))
        r = ZSTD_DCtx_refPrefix(p->dc, old_len ? old : NULL, old_len);
    if (ZSTD_isError(r))
        return ug_delta_say_(p->err, UG_DELTA_E_ZSTD, "delta: %s", ZSTD_getErrorName(r));
    crypto_generichash_init(&p->st, NULL, 0, UG_DELTA_HASH_LEN);
    return UG_DELTA_OK;
}

/* Cuts a regular out_fd back to where it started: nothing of a refused
 * result stays behind. */
static void cut_back(int fd, off_t start)
{
    struct stat st;
    if (start < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    if (ftruncate(fd, start) != 0 || lseek(fd, start, SEEK_SET) < 0) {
        /* the error that brought us here is the one to report */
    }
}

ug_delta_rc ug_delta_apply_buf(const void *old, size_t old_len, int delta_fd, int out_fd, uint64_t out_max,
                               ug_delta_result *res, ug_delta_err *err)
{
    if (res == NULL || (old == NULL && old_len))
        return ug_delta_say_(err, UG_DELTA_E_ARG, "apply: a NULL argument");
    memset(res, 0, sizeof *res);
    patch p = {.delta_fd = delta_fd, .out_fd = out_fd, .out_max = out_max, .res = res, .err = err};
    p.wlog = ug_delta_wlog(old_len, out_max);
    if (p.wlog == 0)
        return ug_delta_say_(err, UG_DELTA_E_LIMIT, "%s: over the %llu-byte limit",
                             old_len > UG_DELTA_FILE_MAX ? "old file" : "expected size",
                             (unsigned long long)UG_DELTA_FILE_MAX);
    off_t start = lseek(out_fd, 0, SEEK_CUR);
    ug_delta_rc rc = setup(&p, old, old_len);
    if (rc == UG_DELTA_OK)
        rc = run(&p);
    res->mem = old_len + ZSTD_sizeof_DCtx(p.dc) + p.icap + p.ocap;
    if (rc == UG_DELTA_OK) {
        crypto_generichash_final(&p.st, res->hash, sizeof res->hash);
    } else {
        cut_back(out_fd, start);
        res->size = 0;
    }
    ZSTD_freeDCtx(p.dc);
    free(p.ibuf);
    free(p.obuf);
    return rc;
}

ug_delta_rc ug_delta_apply(int old_fd, int delta_fd, int out_fd, uint64_t out_max, ug_delta_result *res,
                           ug_delta_err *err)
{
    uint8_t *old;
    size_t old_len;
    if (res != NULL)
        memset(res, 0, sizeof *res);
    ug_delta_rc rc = ug_delta_read_whole_(old_fd, "old file", &old, &old_len, err);
    if (rc != UG_DELTA_OK)
        return rc;
    rc = ug_delta_apply_buf(old, old_len, delta_fd, out_fd, out_max, res, err);
    free(old);
    return rc;
}
