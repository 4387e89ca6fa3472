/* delta/: the window rule, the memory bound, code names, messages and the file I/O the other parts share. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delta_impl.h"

unsigned ug_delta_wlog(uint64_t old_size, uint64_t new_size)
{
    uint64_t big = old_size > new_size ? old_size : new_size;
    if (big > UG_DELTA_FILE_MAX)
        return 0;
    unsigned w = UG_DELTA_WLOG_MIN;
    while ((UINT64_C(1) << w) < big)
        w++;
    return w;
}

uint64_t ug_delta_mem_bound(uint64_t old_size, uint64_t out_max)
{
    unsigned w = ug_delta_wlog(old_size, out_max);
    if (w == 0)
        return 0;
    return old_size + (UINT64_C(1) << w) + UG_DELTA_MEM_SLACK;
}

const char *ug_delta_rc_name(ug_delta_rc rc)
{
    static const char *const names[UG_DELTA_E_COUNT_] = {
        [UG_DELTA_OK] = "ok",
        [UG_DELTA_E_ARG] = "argument",
        [UG_DELTA_E_IO] = "io",
        [UG_DELTA_E_NOMEM] = "nomem",
        [UG_DELTA_E_LIMIT] = "limit",
        [UG_DELTA_E_NOT_SMALLER] = "not-smaller",
        [UG_DELTA_E_MISMATCH] = "mismatch",
        [UG_DELTA_E_FORMAT] = "format",
        [UG_DELTA_E_WINDOW] = "window",
        [UG_DELTA_E_CORRUPT] = "corrupt",
        [UG_DELTA_E_OVERSIZE] = "oversize",
        [UG_DELTA_E_ZSTD] = "zstd",
    };
    return (unsigned)rc < UG_DELTA_E_COUNT_ ? names[rc] : "unknown";
}

ug_delta_rc ug_delta_say_(ug_delta_err *err, ug_delta_rc rc, const char *fmt, ...)
{
    if (err == NULL)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return rc;
}

ssize_t ug_delta_read_full_(int fd, uint8_t *buf, size_t n, int64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = off < 0 ? read(fd, buf + got, n - got) : pread(fd, buf + got, n - got, (off_t)off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

ug_delta_rc ug_delta_read_whole_(int fd, const char *what, uint8_t **buf, size_t *len, ug_delta_err *err)
{
    struct stat st;
    *buf = NULL;
    *len = 0;
    if (fstat(fd, &st) != 0)
        return ug_delta_say_(err, UG_DELTA_E_IO, "%s: %s", what, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ug_delta_say_(err, UG_DELTA_E_IO, "%s: not a regular file", what);
    if ((uint64_t)st.st_size > UG_DELTA_FILE_MAX)
        return ug_delta_say_(err, UG_DELTA_E_LIMIT, "%s: %llu bytes, over the %llu-byte limit", what,
                             (unsigned long long)st.st_size, (unsigned long long)UG_DELTA_FILE_MAX);
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n + 1); /* one more: a file that grew shows here */
    if (b == NULL)
        return ug_delta_say_(err, UG_DELTA_E_NOMEM, "%s: no memory for %zu bytes", what, n);
    ssize_t got = ug_delta_read_full_(fd, b, n + 1, 0);
    if (got < 0 || (size_t)got != n) {
        int e = errno;
        free(b);
        if (got < 0)
            return ug_delta_say_(err, UG_DELTA_E_IO, "%s: %s", what, strerror(e));
        return ug_delta_say_(err, UG_DELTA_E_IO, "%s: changed while read", what);
    }
    *buf = b;
    *len = n;
    return UG_DELTA_OK;
}

int ug_delta_write_(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
