/* The byte classes that the HTTP/1 parsers share (http1.c for heads,
 * http1_chunked.c for the chunked coding, http1_util.c for header
 * lookups): one 256-entry table, a bit per class. Nothing outside
 * src/core/http1*.c includes this. */
#ifndef FG_CORE_HTTP1_INT_H
#define FG_CORE_HTTP1_INT_H

#include "core/common.h"

/* Character classes, one bit each in http__cc[] (http1.c). */
#define CC_TCHAR 0x01  /* token (RFC 9110 5.6.2): method, field name, coding */
#define CC_VALUE 0x02  /* field-value byte: HTAB, SP, VCHAR, obs-text */
#define CC_TARGET 0x04 /* request-target byte: VCHAR */
#define CC_HOST 0x08   /* uri-host and port byte (RFC 3986 3.2.2) */
#define CC_HEX 0x10    /* HEXDIG */
#define CC_DIGIT 0x20  /* DIGIT */
#define CC_WS 0x40     /* OWS byte: SP, HTAB */

extern const uint8_t http__cc[256];

#define IS(c, cls) (http__cc[(uint8_t)(c)] & (cls))

#endif
