/* A growable byte buffer with a hard maximum: plugin replies in upgate-node and upgate-sim, control replies in upgate-ctl. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void ug_buf_emit(void *ctx, const char *data, size_t len)
{
    ug_buf *b = ctx;
    if (b->overflow || !len)
        return;
    if (len > b->max - b->len) {
        b->overflow = true;
        return;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        if (cap > b->max + 1) /* doubling stops at the maximum (and its terminator) */
            cap = b->max + 1;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->overflow = true;
            return;
        }
        b->data = d, b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void ug_buf_printf(ug_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        ug_buf_emit(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

int ug_buf_finish(ug_buf *b)
{
    if (!b->data) {
        b->data = malloc(1);
        b->cap = b->data ? 1 : 0;
    }
    if (!b->data || b->overflow)
        return -1;
    b->data[b->len] = 0;
    return 0;
}

void ug_buf_free(ug_buf *b)
{
    free(b->data);
    *b = (ug_buf){.max = b->max};
}
