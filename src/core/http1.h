/* HTTP/1.1 message parsing (RFC 9110/9112), in the picohttpparser shape:
 * the parsers are stateless over the bytes received so far and return
 * views into the caller's buffer. Call again with more bytes after
 * HTTP_INCOMPLETE. Everything is strict, because a proxy that is lenient
 * where its upstream is strict (or the reverse) can be smuggled through:
 *   - lines end in CRLF; a bare LF or CR anywhere in the head is an error;
 *   - obs-fold (a header line starting with SP/HTAB) is an error;
 *   - no whitespace between a field name and its colon; names are tokens;
 *   - field values hold no CTL other than HTAB;
 *   - Content-Length: digits only, at most one header, no list; with
 *     Transfer-Encoding too it is an error (request and response);
 *   - Transfer-Encoding in requests must be exactly "chunked" (any other
 *     coding is HTTP_ETE -> 501; chunked not last or repeated -> 400), and
 *     is an error in an HTTP/1.0 request;
 *   - HTTP/1.1 requests need exactly one Host header (HTTP/1.0 ones at
 *     most one), and its value may only hold uri-host and port bytes;
 *   - the request-target is one or more VCHARs (no CTL, SP or non-ASCII);
 *   - empty elements in a Transfer-Encoding list are an error.
 * A result other than HTTP_INCOMPLETE for some bytes is the result for
 * any longer input starting with them: invalid bytes are refused as soon
 * as they are seen, before the head is complete.
 * The chunked decoder is incremental (it keeps state between calls) so a
 * proxy can stream a body of any size through a fixed buffer. */
#ifndef FG_HTTP1_H
#define FG_HTTP1_H

#include "core/common.h"

#include <time.h>

/* Parser results (negative); non-negative results are byte counts. */
#define HTTP_INCOMPLETE (-2) /* need more bytes */
#define HTTP_EBAD (-1)       /* malformed: 400 (502 for a response) */
#define HTTP_ETOOBIG (-3)    /* head over max_head_bytes or too many headers: 431 */
#define HTTP_EVERSION (-4)   /* HTTP/x.y other than 1.0/1.1: 505 */
#define HTTP_ETE (-5)        /* transfer coding we do not implement: 501 */

enum http_method {
    HTTP_M_OTHER = 0, HTTP_M_GET, HTTP_M_HEAD, HTTP_M_POST, HTTP_M_PUT, HTTP_M_DELETE,
    HTTP_M_CONNECT, HTTP_M_OPTIONS, HTTP_M_TRACE, HTTP_M_PATCH,
};

/* Message flags derived while parsing the head. */
#define HTTP_F_CHUNKED 0x0001         /* Transfer-Encoding: chunked */
#define HTTP_F_HAS_CL 0x0002          /* Content-Length present (value in content_length) */
#define HTTP_F_CONN_CLOSE 0x0004      /* Connection: close */
#define HTTP_F_CONN_KEEPALIVE 0x0008  /* Connection: keep-alive */
#define HTTP_F_CONN_UPGRADE 0x0010    /* Connection: upgrade */
#define HTTP_F_CONN_OTHER 0x0020      /* Connection lists other tokens (strip those headers) */
#define HTTP_F_EXPECT_CONTINUE 0x0040 /* Expect: 100-continue */
#define HTTP_F_HAS_TE 0x0080          /* a Transfer-Encoding header was present */

struct http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading/trailing OWS trimmed */
    size_t value_len;
};

struct http_request {
    const char *method;
    size_t method_len;
    enum http_method m;
    const char *target; /* request-target as sent */
    size_t target_len;
    int minor;          /* 0 or 1 (HTTP/1.x) */
    struct http_header *headers; /* caller's array, filled in order */
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    unsigned flags;         /* HTTP_F_* */
    const char *host;       /* value of Host, NULL when absent */
    size_t host_len;
};

struct http_response {
    int minor;
    int status;         /* 100..999 */
    const char *reason;
    size_t reason_len;
    struct http_header *headers;
    size_t nheaders;
    int64_t content_length;
    unsigned flags;
};

/* Parses a request head from buf[0..len).
 *   hdrs/max_headers: caller's header array (more headers: HTTP_ETOOBIG);
 *   max_head_bytes: limit on the whole head including the final CRLFCRLF
 *                   (HTTP_ETOOBIG as soon as it is exceeded, even while
 *                   incomplete).
 * Leading empty lines (CRLF) before the request line are skipped, as
 * RFC 9112 2.2 allows; they count in the returned length.
 * Returns the head's length in bytes (the body starts there) or an
 * HTTP_* error. req->headers points to hdrs. */
int http_parse_request(const char *buf, size_t len, struct http_request *req,
                       struct http_header *hdrs, size_t max_headers, size_t max_head_bytes);

/* Same for a response head. Transfer-Encoding in a response may list
 * other codings before chunked (passed through); HTTP_F_CHUNKED is set
 * only when chunked is the final coding; chunked listed twice is an error,
 * and so is Transfer-Encoding in an HTTP/1.0 response (RFC 9112 6.1 calls
 * that framing faulty). Content-Length may repeat only with equal values.
 * The SP before an empty reason phrase may be left out. */
int http_parse_response(const char *buf, size_t len, struct http_response *resp,
                        struct http_header *hdrs, size_t max_headers, size_t max_head_bytes);

/* How a message body is delimited. */
enum http_body { HTTP_BODY_NONE, HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED, HTTP_BODY_EOF };

/* Chunked; Content-Length; else none (a request is never read to EOF).
 * A Content-Length of 0 gives HTTP_BODY_NONE, in both functions. */
enum http_body http_request_body(const struct http_request *req);
/* Per RFC 9112 6.3: none for HEAD requests, 1xx, 204, 304 and 2xx to
 * CONNECT; chunked when it is the final coding; read until close when
 * another coding is final; Content-Length; else read until close. */
enum http_body http_response_body(const struct http_response *resp, enum http_method req_m);

/* Incremental chunked-body decoder. */
typedef void (*http_data_cb)(void *ud, const char *p, size_t n);

struct http_chunked {
    uint64_t left;       /* payload bytes left in the current chunk */
    size_t line_len;     /* bytes of the current size/ext/trailer line so far */
    size_t trailer_len;  /* total trailer bytes so far */
    size_t max_line;     /* limit on a size line incl. extensions */
    size_t max_trailer;  /* limit on the trailer section */
    uint8_t state;       /* internal */
    uint8_t ndigits;
    bool done;           /* set once the last chunk and trailers ended */
};

/* max_trailer bounds the trailer section (bytes of the trailer field
 * lines, CRLFs included; 0 allows none); chunk-size lines with extensions
 * are bounded at 4 KiB. A chunk size has at most 16 hex digits and is
 * below 2^62. */
void http_chunked_init(struct http_chunked *c, size_t max_trailer);
/* Feeds len bytes. Calls cb (if not NULL) with each span of payload
 * (views into buf, never empty).
 * Returns the number of bytes consumed: all of them, or fewer when the
 * body ends inside buf (the rest belongs to the next message); -1 when
 * the encoding is invalid (bad hex, size overflow, bare LF, missing CRLF
 * after data, line or trailer over its limit), and again on every later
 * call. After done, returns 0. */
ssize_t http_chunked_feed(struct http_chunked *c, const char *buf, size_t len,
                          http_data_cb cb, void *ud);

/* Finds a header by name (case-insensitive); NULL when absent. */
const struct http_header *http_find_header(const struct http_header *h, size_t n,
                                           const char *name);
/* True for the hop-by-hop fields a proxy must not forward: Connection,
 * Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade. */
bool http_is_hop_by_hop(const char *name, size_t len);
/* True when name appears as a token in any Connection header in h. */
bool http_connection_has(const struct http_header *h, size_t n, const char *name, size_t len);
/* Standard reason phrase for a status code ("Unknown" when none). */
const char *http_reason(int status);

/* Formats t as an IMF-fixdate (RFC 9110 5.6.7), "Sun, 06 Nov 1994
 * 08:49:37 GMT", into out with a NUL, independent of the locale. Returns
 * the length: 29 for any year of four digits. out needs HTTP_DATE_SIZE
 * bytes. Callers cache the result per second. */
#define HTTP_DATE_SIZE 40
size_t http_date(char *out, time_t t);

/* For a request head http_parse_request() refused with rc (an HTTP_E*
 * error): the status to answer (400, 431, 501, 505) and a short text for
 * the body or the log. */
int http_error_status(int rc);
const char *http_error_text(int rc);

#endif
