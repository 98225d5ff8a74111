/* HTTP/1.1 head parsers declared in http1.h.
 *
 * The head parsers make one forward pass over the buffer with a cursor and
 * decide each byte as it is seen, so invalid input is rejected as soon as
 * the offending byte arrives, not only once the head is complete. Every
 * decision depends only on the bytes before the cursor; a result other than
 * HTTP_INCOMPLETE for a prefix is therefore the result for any longer input
 * too (the fuzz harness checks this). Character classes come from one
 * 256-entry table. Nothing is allocated: headers are views into the
 * caller's buffer, stored in the caller's array.
 *
 * The chunked decoder is in http1_chunked.c, header lookups, reason
 * phrases and dates in http1_util.c. */
#include "core/http1.h"
#include "core/http1_int.h"

#include <limits.h>
#include <string.h>

/* Character classes, one bit each (see http1_int.h). */
/* clang-format off */
const uint8_t http__cc[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10 */
    0x42, 0x0f, 0x06, 0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x0e, 0x0f, 0x0f, 0x0e, 0x0f, 0x0f, 0x06, /* 20 */
    0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x3f, 0x0e, 0x0e, 0x06, 0x0e, 0x06, 0x06, /* 30 */
    0x06, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 40 */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0e, 0x06, 0x0e, 0x07, 0x0f, /* 50 */
    0x07, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, /* 60 */
    0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x06, 0x07, 0x06, 0x0f, 0x00, /* 70 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 80 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* 90 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* a0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* b0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* c0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* d0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* e0 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, /* f0 */
};
/* clang-format on */

/* Returns the first byte in [p, end) outside class cls, or end. Unrolled
 * because field values and targets are where a head's bytes are. */
static inline const char *scan(const char *p, const char *end, uint8_t cls)
{
    while (end - p >= 8) {
        if (!IS(p[0], cls))
            return p;
        if (!IS(p[1], cls))
            return p + 1;
        if (!IS(p[2], cls))
            return p + 2;
        if (!IS(p[3], cls))
            return p + 3;
        if (!IS(p[4], cls))
            return p + 4;
        if (!IS(p[5], cls))
            return p + 5;
        if (!IS(p[6], cls))
            return p + 6;
        if (!IS(p[7], cls))
            return p + 7;
        p += 8;
    }
    while (p < end && IS(*p, cls))
        p++;
    return p;
}

/* Case-insensitive comparison of n bytes with a lowercase literal made of
 * letters, digits and '-'. Folding with |0x20 is exact here because every
 * byte it is used on has passed CC_TCHAR or CC_VALUE: the only other bytes
 * that fold onto a letter, digit or '-' are CTLs (0x0d, 0x10-0x19), which
 * those classes exclude. */
static bool lit_ieq(const char *a, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((uint8_t)a[i] | 0x20) != (uint8_t)lit[i])
            return false;
    return true;
}

/* Parse state of one head. */
struct head {
    const char *p;            /* cursor */
    const char *end;          /* buf + min(len, max_head_bytes) */
    struct http_header *hdrs; /* caller's array */
    size_t max_headers;
    size_t n;                 /* headers stored so far */
    bool request;
    int minor;
    unsigned flags;           /* HTTP_F_* */
    int64_t cl;               /* Content-Length, -1 when absent */
    const char *host;         /* request Host value, NULL when absent */
    size_t host_len;
    bool te_chunked;          /* chunked was listed in Transfer-Encoding */
    bool te_last_chunked;     /* ... and is the last coding so far */
    bool te_other;            /* a coding other than chunked was listed */
};

static void head_init(struct head *h, const char *buf, size_t len, struct http_header *hdrs,
                      size_t max_headers, size_t max_head_bytes, bool request)
{
    memset(h, 0, sizeof *h);
    h->p = buf;
    /* The head length is returned as an int. */
    h->end = buf + FG_MIN(len, FG_MIN(max_head_bytes, (size_t)INT_MAX));
    h->hdrs = hdrs;
    h->max_headers = max_headers;
    h->request = request;
    h->cl = -1;
}

/* Consumes CR LF at the cursor. */
static int expect_crlf(struct head *h)
{
    if (h->p == h->end)
        return HTTP_INCOMPLETE;
    if (*h->p != '\r')
        return HTTP_EBAD;
    if (h->p + 1 == h->end)
        return HTTP_INCOMPLETE;
    if (h->p[1] != '\n')
        return HTTP_EBAD;
    h->p += 2;
    return 0;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive). Which versions
 * are served is for the caller to decide once the delimiter after the
 * version has been seen, so that "HTTP/2.0x" is malformed, not 505. */
static int parse_version(struct head *h, int *major, int *minor)
{
    static const char name[] = "HTTP/";
    const char *p = h->p;
    for (size_t i = 0; i < 8; i++, p++) {
        if (p == h->end)
            return HTTP_INCOMPLETE;
        bool ok = i < 5 ? *p == name[i] : i == 6 ? *p == '.' : IS(*p, CC_DIGIT) != 0;
        if (!ok)
            return HTTP_EBAD;
    }
    *major = h->p[5] - '0';
    *minor = h->p[7] - '0';
    h->p = p;
    return 0;
}

/* Skips a quoted-string starting at the DQUOTE at p; NULL when it does not
 * end before e. The bytes were already checked as field-value bytes. */
static const char *skip_quoted(const char *p, const char *e)
{
    for (p++; p < e; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && ++p == e)
            return NULL;
    }
    return NULL;
}

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && IS(*p, CC_WS))
        p++;
    return p;
}

/* Content-Length = 1*DIGIT. A request may carry it once; a response may
 * repeat it only with the same value (RFC 9110 8.6). Lists are refused in
 * both, and so is Transfer-Encoding alongside it (RFC 9112 6.1). */
static int on_content_length(struct head *h, const struct http_header *f)
{
    if (f->value_len == 0)
        return HTTP_EBAD;
    int64_t v = 0;
    for (size_t i = 0; i < f->value_len; i++) {
        if (!IS(f->value[i], CC_DIGIT))
            return HTTP_EBAD;
        int d = f->value[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return HTTP_EBAD;
        v = v * 10 + d;
    }
    if (h->flags & HTTP_F_HAS_CL) {
        if (h->request || v != h->cl)
            return HTTP_EBAD;
    }
    if (h->flags & HTTP_F_HAS_TE)
        return HTTP_EBAD;
    h->flags |= HTTP_F_HAS_CL;
    h->cl = v;
    return 0;
}

/* Transfer-Encoding = #transfer-coding, each coding a token with optional
 * parameters; several header lines form one list. Empty list elements are
 * refused: "chunked," must not be read as "chunked last" by one hop and
 * "empty last" by another. In a request anything after chunked (chunked
 * repeated included) is an error; in a response only a repeated chunked is.
 * Codings other than chunked are recorded for the end of the head. */
static int on_transfer_encoding(struct head *h, const struct http_header *f)
{
    if (h->flags & HTTP_F_HAS_CL)
        return HTTP_EBAD;
    /* RFC 9112 6.1: HTTP/1.0 framing with Transfer-Encoding is faulty. */
    if (h->minor == 0)
        return HTTP_EBAD;
    h->flags |= HTTP_F_HAS_TE;
    const char *p = f->value, *e = f->value + f->value_len;
    for (;;) {
        p = skip_ws(p, e);
        const char *name = p;
        p = scan(p, e, CC_TCHAR);
        if (p == name)
            return HTTP_EBAD;
        size_t name_len = (size_t)(p - name);
        bool params = false;
        for (;;) {
            p = skip_ws(p, e);
            if (p == e || *p != ';')
                break;
            params = true;
            p = skip_ws(p + 1, e);
            const char *pn = p;
            p = scan(p, e, CC_TCHAR);
            if (p == pn)
                return HTTP_EBAD;
            p = skip_ws(p, e);
            if (p == e || *p != '=')
                return HTTP_EBAD;
            p = skip_ws(p + 1, e);
            if (p < e && *p == '"') {
                p = skip_quoted(p, e);
                if (!p)
                    return HTTP_EBAD;
            } else {
                pn = p;
                p = scan(p, e, CC_TCHAR);
                if (p == pn)
                    return HTTP_EBAD;
            }
        }
        bool chunked = name_len == 7 && lit_ieq(name, "chunked", 7);
        if (h->te_chunked && (h->request || chunked))
            return HTTP_EBAD;
        if (chunked && params)
            return HTTP_EBAD;
        h->te_chunked |= chunked;
        h->te_other |= !chunked;
        h->te_last_chunked = chunked;
        if (p == e)
            return 0;
        if (*p != ',')
            return HTTP_EBAD;
        p++;
    }
}

/* Connection = #connection-option; empty elements are allowed (RFC 9110
 * 5.6.1), anything that is not a token is not. */
static int on_connection(struct head *h, const struct http_header *f)
{
    const char *p = f->value, *e = f->value + f->value_len;
    for (;;) {
        while (p < e && (IS(*p, CC_WS) || *p == ','))
            p++;
        if (p == e)
            return 0;
        const char *t = p;
        p = scan(p, e, CC_TCHAR);
        if (p == t)
            return HTTP_EBAD;
        size_t n = (size_t)(p - t);
        if (n == 5 && lit_ieq(t, "close", 5))
            h->flags |= HTTP_F_CONN_CLOSE;
        else if (n == 10 && lit_ieq(t, "keep-alive", 10))
            h->flags |= HTTP_F_CONN_KEEPALIVE;
        else if (n == 7 && lit_ieq(t, "upgrade", 7))
            h->flags |= HTTP_F_CONN_UPGRADE;
        else
            h->flags |= HTTP_F_CONN_OTHER;
        p = skip_ws(p, e);
        if (p < e && *p != ',')
            return HTTP_EBAD;
    }
}

/* Host = uri-host [ ":" port ], possibly empty; at most one (RFC 9112
 * 3.2). Only the byte set is checked: a gateway routes on this value, so
 * spaces, '/', '@' or '?' in it are refused rather than passed on. */
static int on_host(struct head *h, const struct http_header *f)
{
    if (h->host)
        return HTTP_EBAD;
    for (size_t i = 0; i < f->value_len; i++)
        if (!IS(f->value[i], CC_HOST))
            return HTTP_EBAD;
    h->host = f->value;
    h->host_len = f->value_len;
    return 0;
}

/* Acts on the fields that frame the message or the connection. */
static int on_field(struct head *h, const struct http_header *f)
{
    switch (f->name_len) {
    case 4:
        if (h->request && lit_ieq(f->name, "host", 4))
            return on_host(h, f);
        break;
    case 6:
        /* RFC 9110 10.1.1: ignore 100-continue from an HTTP/1.0 client. */
        if (h->request && h->minor == 1 && lit_ieq(f->name, "expect", 6) &&
            f->value_len == 12 && lit_ieq(f->value, "100-continue", 12))
            h->flags |= HTTP_F_EXPECT_CONTINUE;
        break;
    case 10:
        if (lit_ieq(f->name, "connection", 10))
            return on_connection(h, f);
        break;
    case 14:
        if (lit_ieq(f->name, "content-length", 14))
            return on_content_length(h, f);
        break;
    case 17:
        if (lit_ieq(f->name, "transfer-encoding", 17))
            return on_transfer_encoding(h, f);
        break;
    }
    return 0;
}

/* Parses field lines up to and including the empty line ending the head. */
static int parse_fields(struct head *h)
{
    for (;;) {
        const char *p = h->p, *end = h->end;
        if (p == end)
            return HTTP_INCOMPLETE;
        if (*p == '\r')
            return expect_crlf(h);
        /* A line starting with SP/HTAB is obs-fold (or whitespace after the
         * start line); a bare LF, ':' or any other non-token byte is no
         * field name either. */
        if (!IS(*p, CC_TCHAR))
            return HTTP_EBAD;
        if (h->n == h->max_headers)
            return HTTP_ETOOBIG;
        const char *name = p;
        p = scan(p, end, CC_TCHAR);
        if (p == end)
            return HTTP_INCOMPLETE;
        if (*p != ':')
            return HTTP_EBAD;
        size_t name_len = (size_t)(p - name);
        p = skip_ws(p + 1, end);
        const char *value = p;
        p = scan(p, end, CC_VALUE);
        if (p == end)
            return HTTP_INCOMPLETE;
        if (*p != '\r')
            return HTTP_EBAD;
        if (p + 1 == end)
            return HTTP_INCOMPLETE;
        if (p[1] != '\n')
            return HTTP_EBAD;
        const char *vend = p;
        while (vend > value && IS(vend[-1], CC_WS))
            vend--;
        h->p = p + 2;
        struct http_header *f = &h->hdrs[h->n++];
        f->name = name;
        f->name_len = name_len;
        f->value = value;
        f->value_len = (size_t)(vend - value);
        int r = on_field(h, f);
        if (r)
            return r;
    }
}

static enum http_method method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        if (!memcmp(m, "GET", 3))
            return HTTP_M_GET;
        if (!memcmp(m, "PUT", 3))
            return HTTP_M_PUT;
        break;
    case 4:
        if (!memcmp(m, "HEAD", 4))
            return HTTP_M_HEAD;
        if (!memcmp(m, "POST", 4))
            return HTTP_M_POST;
        break;
    case 5:
        if (!memcmp(m, "TRACE", 5))
            return HTTP_M_TRACE;
        if (!memcmp(m, "PATCH", 5))
            return HTTP_M_PATCH;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6))
            return HTTP_M_DELETE;
        break;
    case 7:
        if (!memcmp(m, "CONNECT", 7))
            return HTTP_M_CONNECT;
        if (!memcmp(m, "OPTIONS", 7))
            return HTTP_M_OPTIONS;
        break;
    }
    return HTTP_M_OTHER;
}

static int parse_request(struct head *h, const char *buf, struct http_request *req)
{
    const char *p = h->p, *end = h->end;
    /* RFC 9112 2.2: empty lines before the request-line are skipped. */
    for (;;) {
        if (p == end)
            return HTTP_INCOMPLETE;
        if (*p != '\r')
            break;
        if (p + 1 == end)
            return HTTP_INCOMPLETE;
        if (p[1] != '\n')
            return HTTP_EBAD;
        p += 2;
    }
    const char *m = p;
    p = scan(p, end, CC_TCHAR);
    if (p == end)
        return HTTP_INCOMPLETE;
    if (p == m || *p != ' ')
        return HTTP_EBAD;
    req->method = m;
    req->method_len = (size_t)(p - m);
    req->m = method_of(m, req->method_len);

    const char *t = ++p;
    p = scan(p, end, CC_TARGET);
    if (p == end)
        return HTTP_INCOMPLETE;
    if (p == t || *p != ' ')
        return HTTP_EBAD;
    req->target = t;
    req->target_len = (size_t)(p - t);

    h->p = p + 1;
    int major, minor;
    int r = parse_version(h, &major, &minor);
    if (r)
        return r;
    if ((r = expect_crlf(h)))
        return r;
    if (major != 1 || minor > 1)
        return HTTP_EVERSION;
    h->minor = req->minor = minor;

    if ((r = parse_fields(h)))
        return r;
    if (minor == 1 && !h->host)
        return HTTP_EBAD;
    if (h->te_other)
        return HTTP_ETE;
    if (h->te_chunked)
        h->flags |= HTTP_F_CHUNKED;
    req->nheaders = h->n;
    req->content_length = h->cl;
    req->flags = h->flags;
    req->host = h->host;
    req->host_len = h->host_len;
    return (int)(h->p - buf);
}

int http_parse_request(const char *buf, size_t len, struct http_request *req,
                       struct http_header *hdrs, size_t max_headers, size_t max_head_bytes)
{
    struct head h;
    head_init(&h, buf, len, hdrs, max_headers, max_head_bytes, true);
    memset(req, 0, sizeof *req);
    req->headers = hdrs;
    req->content_length = -1;
    int r = parse_request(&h, buf, req);
    if (r == HTTP_INCOMPLETE && (size_t)(h.end - buf) < len)
        r = HTTP_ETOOBIG;
    return r;
}

static int parse_response(struct head *h, const char *buf, struct http_response *resp)
{
    int major, minor;
    int r = parse_version(h, &major, &minor);
    if (r)
        return r;
    const char *p = h->p, *end = h->end;
    if (p == end)
        return HTTP_INCOMPLETE;
    if (*p++ != ' ')
        return HTTP_EBAD;
    if (major != 1 || minor > 1)
        return HTTP_EVERSION;
    h->minor = resp->minor = minor;

    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == end)
            return HTTP_INCOMPLETE;
        if (!IS(*p, CC_DIGIT))
            return HTTP_EBAD;
        status = status * 10 + (*p - '0');
    }
    if (status < 100)
        return HTTP_EBAD;
    resp->status = status;
    if (p == end)
        return HTTP_INCOMPLETE;
    /* The SP before an empty reason-phrase is often left out; accepting
     * its absence changes no framing. */
    if (*p == ' ')
        p++;
    else if (*p != '\r')
        return HTTP_EBAD;
    resp->reason = p;
    p = scan(p, end, CC_VALUE);
    resp->reason_len = (size_t)(p - resp->reason);
    h->p = p;
    if ((r = expect_crlf(h)))
        return r;

    if ((r = parse_fields(h)))
        return r;
    if (h->te_last_chunked)
        h->flags |= HTTP_F_CHUNKED;
    resp->nheaders = h->n;
    resp->content_length = h->cl;
    resp->flags = h->flags;
    return (int)(h->p - buf);
}

int http_parse_response(const char *buf, size_t len, struct http_response *resp,
                        struct http_header *hdrs, size_t max_headers, size_t max_head_bytes)
{
    struct head h;
    head_init(&h, buf, len, hdrs, max_headers, max_head_bytes, false);
    memset(resp, 0, sizeof *resp);
    resp->headers = hdrs;
    resp->content_length = -1;
    int r = parse_response(&h, buf, resp);
    if (r == HTTP_INCOMPLETE && (size_t)(h.end - buf) < len)
        r = HTTP_ETOOBIG;
    return r;
}

enum http_body http_request_body(const struct http_request *req)
{
    if (req->flags & HTTP_F_CHUNKED)
        return HTTP_BODY_CHUNKED;
    if ((req->flags & HTTP_F_HAS_CL) && req->content_length > 0)
        return HTTP_BODY_LENGTH;
    return HTTP_BODY_NONE;
}

enum http_body http_response_body(const struct http_response *resp, enum http_method req_m)
{
    int s = resp->status;
    if (req_m == HTTP_M_HEAD || s < 200 || s == 204 || s == 304)
        return HTTP_BODY_NONE;
    if (req_m == HTTP_M_CONNECT && s < 300)
        return HTTP_BODY_NONE;
    if (resp->flags & HTTP_F_CHUNKED)
        return HTTP_BODY_CHUNKED;
    /* RFC 9112 6.3 rule 4: a final coding other than chunked is read to
     * the end of the connection. */
    if (resp->flags & HTTP_F_HAS_TE)
        return HTTP_BODY_EOF;
    if (resp->flags & HTTP_F_HAS_CL)
        return resp->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    return HTTP_BODY_EOF;
}
