/* Implementation of buf.h. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(struct buf *b) { b->rpos = b->wpos = 0; }

void buf_compact(struct buf *b)
{
    if (b->rpos == 0)
        return;
    size_t n = buf_len(b);
    if (n)
        memmove(b->data, b->data + b->rpos, n);
    b->rpos = 0;
    b->wpos = n;
}

char *buf_reserve(struct buf *b, size_t n)
{
    if (buf_room(b) >= n)
        return buf_wptr(b);
    /* Compact first when that alone makes room and the move is cheap
     * relative to what was already consumed. */
    if (b->rpos && b->cap - buf_len(b) >= n) {
        buf_compact(b);
        return buf_wptr(b);
    }
    buf_compact(b);
    size_t need = b->wpos + n;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return buf_wptr(b);
}

void buf_consume(struct buf *b, size_t n)
{
    ASSERT(n <= buf_len(b));
    b->rpos += n;
    if (b->rpos == b->wpos)
        b->rpos = b->wpos = 0;
}

void buf_append_slow(struct buf *b, const void *p, size_t n)
{
    if (!n)
        return;
    memcpy(buf_reserve(b, n), p, n);
    b->wpos += n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf_wptr(b), buf_room(b), fmt, ap);
    va_end(ap);
    ASSERT(n >= 0);
    if ((size_t)n >= buf_room(b)) {
        buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(buf_wptr(b), buf_room(b), fmt, ap);
        va_end(ap);
    }
    b->wpos += (size_t)n;
}

void buf_shrink_if_empty(struct buf *b, size_t keep)
{
    if (buf_len(b) == 0 && b->cap > keep) {
        free(b->data);
        buf_init(b);
    }
}
