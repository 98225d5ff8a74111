/* Growable byte buffers with a read and a write position (like Redis's
 * querybuf with qb_pos): data in [rpos, wpos) is pending, space after wpos
 * is free. Consuming only moves rpos; buf_compact() slides data down when
 * the front is wasted. Callers bound growth with their own limits. */
#ifndef FG_BUF_H
#define FG_BUF_H

#include "core/common.h"
#include "core/strutil.h"
#include <string.h>

struct buf {
    char *data;
    size_t cap;
    size_t rpos; /* first unread byte */
    size_t wpos; /* first free byte */
};

static inline void buf_init(struct buf *b) { memset(b, 0, sizeof *b); }
static inline size_t buf_len(const struct buf *b) { return b->wpos - b->rpos; }
static inline char *buf_rptr(const struct buf *b) { return b->data + b->rpos; }
static inline char *buf_wptr(const struct buf *b) { return b->data + b->wpos; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->wpos; }
static inline void buf_commit(struct buf *b, size_t n) { b->wpos += n; }

void buf_free(struct buf *b);
/* Ensures at least n free bytes after wpos (compacting or growing). */
char *buf_reserve(struct buf *b, size_t n);
/* Drops n bytes from the front; resets positions when empty. */
void buf_consume(struct buf *b, size_t n);
void buf_append_slow(struct buf *b, const void *p, size_t n);
/* Inline fast path: one compare and a memcpy when the bytes fit. */
static inline void buf_append(struct buf *b, const void *p, size_t n)
{
    if (likely(b->cap - b->wpos >= n)) {
        if (n)
            memcpy(b->data + b->wpos, p, n);
        b->wpos += n;
        return;
    }
    buf_append_slow(b, p, n);
}
static inline void buf_append_str(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }
/* Appends the decimal form of v, without printf: status codes, lengths
 * and counters on the request path. */
static inline void buf_append_u64(struct buf *b, uint64_t v)
{
    char tmp[U64_DEC_MAX];
    buf_append(b, tmp, u64_to_dec(tmp, v));
}
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_compact(struct buf *b);
void buf_reset(struct buf *b);
/* Frees the storage if empty and larger than keep bytes (idle connections
 * should not hold big buffers). */
void buf_shrink_if_empty(struct buf *b, size_t keep);

#endif
