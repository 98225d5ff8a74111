/* The chunked body decoder declared in http1.h: a byte-level state
 * machine whose whole state lives in struct http_chunked, so a body of any
 * size streams through buffers of any size, split anywhere. */
#include "core/http1.h"
#include "core/http1_int.h"
#include "core/strutil.h"

#include <string.h>

/* Largest chunk size accepted: below 2^62, so sizes never come near
 * overflowing the callers' offset arithmetic. */
#define CHUNK_SIZE_LIMIT (UINT64_C(1) << 62)
#define CHUNK_MAX_DIGITS 16
#define CHUNK_MAX_LINE 4096

/* Chunked decoder states. */
enum {
    CH_SIZE,     /* chunk-size hex digits */
    CH_SIZE_WS,  /* BWS after the size: only more BWS or ';' may follow */
    CH_EXT,      /* chunk extensions, up to CR */
    CH_SIZE_LF,  /* CR ending the size line seen */
    CH_DATA,     /* left payload bytes of the chunk */
    CH_DATA_CR,  /* CR after the payload */
    CH_DATA_LF,  /* LF after the payload */
    CH_TR_START, /* start of a trailer line, or of the final CRLF */
    CH_TR_NAME,  /* trailer field name, up to ':' */
    CH_TR_VALUE, /* trailer field value, up to CR */
    CH_TR_LF,    /* LF ending a trailer line */
    CH_END_LF,   /* LF of the final CRLF */
    CH_DONE,
    CH_ERROR,
};

void http_chunked_init(struct http_chunked *c, size_t max_trailer)
{
    memset(c, 0, sizeof *c);
    c->max_line = CHUNK_MAX_LINE;
    c->max_trailer = max_trailer;
    c->state = CH_SIZE;
}

/* One long function on purpose: it is the byte-level state machine of
 * the chunked coding, and each state's case reads only with the others
 * beside it (which state follows, which bytes count towards max_line or
 * max_trailer). Split into functions, the hot CH_DATA path would pay a
 * call per state change and the transitions would be scattered. */
ssize_t http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
                          http_data_cb cb, void *ud)
{
    const char *p = buf, *end = buf + len;
    if (c->state == CH_ERROR)
        return -1;
    if (c->done)
        return 0;
    while (p < end) {
        char ch = *p;
        switch (c->state) {
        case CH_DATA: {
            size_t n = (size_t)FG_MIN(c->left, (uint64_t)(end - p));
            if (cb)
                cb(ud, p, n);
            p += n;
            c->left -= n;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        case CH_SIZE:
            if (IS(ch, CC_HEX)) {
                if (c->ndigits == CHUNK_MAX_DIGITS || c->left >= CHUNK_SIZE_LIMIT >> 4)
                    goto fail;
                c->left = c->left << 4 | (uint64_t)hex_val(ch);
                c->ndigits++;
            } else if (c->ndigits == 0) {
                goto fail;
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
                p++;
                continue;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (IS(ch, CC_WS)) {
                c->state = CH_SIZE_WS;
            } else {
                goto fail;
            }
            break;
        case CH_SIZE_WS:
            if (ch == ';')
                c->state = CH_EXT;
            else if (!IS(ch, CC_WS))
                goto fail;
            break;
        case CH_EXT:
            if (ch == '\r') {
                c->state = CH_SIZE_LF;
                p++;
                continue;
            }
            if (!IS(ch, CC_VALUE))
                goto fail;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                goto fail;
            c->line_len = 0;
            c->ndigits = 0;
            c->state = c->left ? CH_DATA : CH_TR_START;
            p++;
            continue;
        case CH_DATA_CR:
            if (ch != '\r')
                goto fail;
            c->state = CH_DATA_LF;
            p++;
            continue;
        case CH_DATA_LF:
            if (ch != '\n')
                goto fail;
            c->state = CH_SIZE;
            p++;
            continue;
        case CH_TR_START:
            if (ch == '\r') {
                c->state = CH_END_LF;
                p++;
                continue;
            }
            /* obs-fold, an empty name or a bare LF are all refused here */
            if (!IS(ch, CC_TCHAR))
                goto fail;
            c->state = CH_TR_NAME;
            goto trailer;
        case CH_TR_NAME:
            if (ch == ':')
                c->state = CH_TR_VALUE;
            else if (!IS(ch, CC_TCHAR))
                goto fail;
            goto trailer;
        case CH_TR_VALUE:
            if (ch == '\r')
                c->state = CH_TR_LF;
            else if (!IS(ch, CC_VALUE))
                goto fail;
            goto trailer;
        case CH_TR_LF:
            if (ch != '\n')
                goto fail;
            c->state = CH_TR_START;
            goto trailer;
        case CH_END_LF:
            if (ch != '\n')
                goto fail;
            c->state = CH_DONE;
            c->done = true;
            return (ssize_t)(p + 1 - buf);
        default:
            goto fail;
        }
        /* Bytes of the size line before its CRLF (CH_SIZE, CH_SIZE_WS,
         * CH_EXT). */
        if (++c->line_len > c->max_line)
            goto fail;
        p++;
        continue;
    trailer:
        if (++c->trailer_len > c->max_trailer)
            goto fail;
        p++;
    }
    return (ssize_t)(p - buf);
fail:
    c->state = CH_ERROR;
    return -1;
}
