/* A growable byte buffer with a hard maximum: plugin replies in upgate-node and upgate-sim, control replies in upgate-ctl. */
#ifndef UG_BUF_H
#define UG_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;
    size_t len, cap, max;
    bool overflow;
} ug_buf;

/* ug_emit into a ug_buf (ctx): appends, or sets overflow past max. The
 * allocation never grows past max + 1 bytes. */
void ug_buf_emit(void *ctx, const char *data, size_t len);
void ug_buf_printf(ug_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NUL-terminates (the terminator is not counted in len); -1 when out of memory or past max. */
int ug_buf_finish(ug_buf *b);
void ug_buf_free(ug_buf *b);

#endif
