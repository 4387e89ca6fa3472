/* delta/ internals shared by make.c, apply.c and check.c: messages, whole-file reads, writes. */
#ifndef UG_DELTA_IMPL_H
#define UG_DELTA_IMPL_H

#include <stdbool.h>
#include <sys/types.h>

#include "ug_delta.h"

/* Fills err->msg (when err is not NULL) and returns rc. */
ug_delta_rc ug_delta_say_(ug_delta_err *err, ug_delta_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads the regular file fd whole (from offset 0) into *buf (malloc'ed, at
 * least one byte so an empty file still gets a buffer); what names it in
 * messages. Over UG_DELTA_FILE_MAX: UG_DELTA_E_LIMIT, nothing allocated. */
ug_delta_rc ug_delta_read_whole_(int fd, const char *what, uint8_t **buf, size_t *len,
                                 ug_delta_err *err) UG_DELTA_WUR;

/* Reads until n bytes or end of file, with read() when off < 0 (the fd's
 * offset moves), else pread() from off: how many came, or -1 with errno. */
ssize_t ug_delta_read_full_(int fd, uint8_t *buf, size_t n, int64_t off) UG_DELTA_WUR;

/* Writes all n bytes (retrying short writes and EINTR); -1 with errno. */
int ug_delta_write_(int fd, const void *data, size_t n) UG_DELTA_WUR;

#endif
